//! Following executions live: each execution's new history events (and those of the service
//! executions it starts) are narrated as they happen, with a spinner on a terminal and plain
//! lines otherwise, until every execution followed has ended.

use crate::cloud::{sdk_error, Cloud};
use crate::output::{self, short, Exit, Result};
use crate::steps::{Event, Narration, Step};
use crate::Format;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::time::Duration;

/// How often the histories are read again (GetExecutionHistory is throttled at a 250 bucket
/// refilling 5 per second per account: one call per execution per second leaves room).
const POLL: Duration = Duration::from_secs(1);

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Ended {
    pub execution: String,
    pub status: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub output: Option<Value>,
}

impl Ended {
    pub fn exit(&self) -> Exit {
        match (self.status.as_str(), self.error.as_deref()) {
            ("SUCCEEDED", _) => Exit::Ok,
            (_, Some("InvalidInput")) => Exit::BadInput,
            _ => Exit::Failed,
        }
    }

    /// The summary (or plan, or preview) the execution ended with: its output or its cause.
    pub fn document(&self) -> Option<Value> {
        self.output.clone().or_else(|| self.cause.as_deref().and_then(|c| serde_json::from_str(c).ok()))
    }
}

struct Followed {
    arn: String,
    label: String,
    seen: i64,
    state: Option<String>,
    narration: Narration,
    root: bool,
}

/// Where the narration goes.
struct Printer {
    bar: ProgressBar,
    lines: bool,
}

impl Printer {
    fn new(format: Format) -> Self {
        let terminal = format == Format::Text && std::io::stdout().is_terminal();
        let bar = if terminal { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
        if terminal {
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}").unwrap_or(ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Printer { bar, lines: format == Format::Text }
    }

    fn line(&self, at: f64, label: &str, text: &str) {
        if !self.lines {
            return;
        }
        let clock = output::time(at);
        let line = format!("{} {label:<14} {text}", clock.get(11..19).unwrap_or(&clock));
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
            self.bar.set_message(format!("{label}: {text}"));
        }
    }
}

/// Follows `roots` (and the service executions they start) until all have ended.
pub async fn follow(cloud: &Cloud, format: Format, roots: &[String]) -> Result<Vec<Ended>> {
    let printer = Printer::new(format);
    let label =
        |arn: &str| if roots.len() == 1 { "deckhand".to_string() } else { short(arn).chars().take(14).collect() };
    let mut followed: Vec<Followed> = roots
        .iter()
        .map(|arn| Followed {
            arn: arn.clone(),
            label: label(arn),
            seen: 0,
            state: None,
            narration: Narration::default(),
            root: true,
        })
        .collect();
    loop {
        // Ended is decided before the histories are read, so that the last events are printed.
        let mut ended = Vec::new();
        for arn in roots {
            let described = describe(cloud, arn).await?;
            if described.status != "RUNNING" {
                ended.push(described);
            }
        }
        let mut index = 0;
        while index < followed.len() {
            let mut started = Vec::new();
            let current = &mut followed[index];
            for event in new_events(cloud, current).await? {
                for step in current.narration.narrate(&event) {
                    match step {
                        Step::Line(text) => printer.line(event.at, &current.label, &text),
                        Step::Label(label) => current.label = label,
                        Step::Child(arn) => started.push(arn),
                    }
                }
            }
            for arn in started {
                if !followed.iter().any(|f| f.arn == arn) {
                    let label = "service".to_string();
                    followed.push(Followed {
                        arn,
                        label,
                        seen: 0,
                        state: None,
                        narration: Narration::default(),
                        root: false,
                    });
                }
            }
            index += 1;
        }
        if ended.len() == roots.len() {
            printer.bar.finish_and_clear();
            for root in followed.iter().filter(|f| f.root) {
                let end = ended.iter().find(|e| e.execution == root.arn);
                if let Some(end) = end {
                    let what = end.error.as_deref().map_or(end.status.clone(), |e| format!("{} ({e})", end.status));
                    printer.line(output::now(), &root.label, &format!("execution {what}"));
                }
            }
            return Ok(ended);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The service executions a finished root started, each as it ended.
pub async fn children(cloud: &Cloud, root: &str) -> Result<Vec<Ended>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = cloud
            .sfn
            .get_execution_history()
            .execution_arn(root)
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("GetExecutionHistory", e))?;
        for event in page.events() {
            let arn = event
                .task_submitted_event_details()
                .and_then(|d| d.output())
                .and_then(|o| serde_json::from_str::<Value>(o).ok())
                .and_then(|o| o.get("ExecutionArn").and_then(Value::as_str).map(str::to_string));
            if let Some(arn) = arn.filter(|a| !found.iter().any(|e: &Ended| &e.execution == a)) {
                found.push(describe(cloud, &arn).await?);
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(found);
        }
    }
}

pub async fn describe(cloud: &Cloud, arn: &str) -> Result<Ended> {
    let described = cloud
        .sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeExecution", e))?;
    Ok(Ended {
        execution: arn.to_string(),
        status: described.status().as_str().to_string(),
        error: described.error().map(str::to_string),
        cause: described.cause().map(str::to_string),
        output: described.output().and_then(|o| serde_json::from_str(o).ok()),
    })
}

/// The events after the last one seen, oldest first: read newest first and only as far back as
/// needed, so that following a long rollout does not read its whole history every second.
async fn new_events(cloud: &Cloud, followed: &mut Followed) -> Result<Vec<Event>> {
    let mut fresh: Vec<HistoryEvent> = Vec::new();
    let mut token = None;
    'pages: loop {
        let page = cloud
            .sfn
            .get_execution_history()
            .execution_arn(&followed.arn)
            .reverse_order(true)
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("GetExecutionHistory", e))?;
        for event in page.events() {
            if event.id() <= followed.seen {
                break 'pages;
            }
            fresh.push(event.clone());
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    fresh.reverse();
    let mut events = Vec::with_capacity(fresh.len());
    for raw in &fresh {
        let mut event = reduce(raw);
        if event.kind.ends_with("StateEntered") {
            followed.state.clone_from(&event.state);
        } else if event.state.is_none() {
            event.state.clone_from(&followed.state);
        }
        followed.seen = followed.seen.max(raw.id());
        events.push(event);
    }
    Ok(events)
}

fn parse(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// A Lambda error's cause is `{"errorMessage": …, "errorType": …}`: its message is what to show.
fn message(cause: Option<&str>) -> Option<String> {
    let cause = cause?;
    Some(match serde_json::from_str::<Value>(cause) {
        Ok(doc) => doc.get("errorMessage").and_then(Value::as_str).unwrap_or(cause).to_string(),
        Err(_) => cause.to_string(),
    })
}

fn reduce(raw: &HistoryEvent) -> Event {
    let mut event = Event {
        id: raw.id(),
        kind: raw.r#type().as_str().to_string(),
        at: raw.timestamp().as_secs_f64(),
        ..Event::default()
    };
    if let Some(d) = raw.state_entered_event_details() {
        event.state = Some(d.name().to_string());
        event.document = parse(d.input());
    } else if let Some(d) = raw.state_exited_event_details() {
        event.state = Some(d.name().to_string());
        event.document = parse(d.output());
    } else if let Some(d) = raw.execution_started_event_details() {
        event.document = parse(d.input());
    } else if let Some(d) = raw.task_submitted_event_details() {
        event.document = parse(d.output());
    } else if let Some(d) = raw.task_failed_event_details() {
        (event.error, event.cause) = (d.error().map(str::to_string), message(d.cause()));
    } else if let Some(d) = raw.lambda_function_failed_event_details() {
        (event.error, event.cause) = (d.error().map(str::to_string), message(d.cause()));
    }
    event
}

/// `deckhand watch [EXECUTION]`: one execution, or every running one of the deploy machine.
pub async fn watch(cloud: &Cloud, format: Format, execution: Option<String>) -> Result<Exit> {
    let roots = match execution {
        Some(arn) => vec![arn],
        None => {
            let machine = &cloud.outputs().await?.deploy_machine;
            let mut running = Vec::new();
            let mut pages = cloud
                .sfn
                .list_executions()
                .state_machine_arn(machine)
                .status_filter(ExecutionStatus::Running)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| sdk_error("ListExecutions", e))?;
                running.extend(page.executions().iter().map(|e| e.execution_arn().to_string()));
            }
            running
        }
    };
    if roots.is_empty() {
        match format {
            Format::Text => println!("no running deployments"),
            Format::Json => output::json(&json!([])),
        }
        return Ok(Exit::Ok);
    }
    let ended = follow(cloud, format, &roots).await?;
    if format == Format::Json {
        output::json(&Value::Array(ended.iter().map(ended_document).collect()));
    }
    Ok(if ended.iter().all(|e| e.exit() == Exit::Ok) { Exit::Ok } else { Exit::Failed })
}

pub fn ended_document(ended: &Ended) -> Value {
    json!({
        "executionArn": ended.execution,
        "status": ended.status,
        "error": ended.error,
        "result": ended.document().or_else(|| ended.cause.clone().map(Value::String)),
    })
}
