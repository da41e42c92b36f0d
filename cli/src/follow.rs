//! Following executions live: each execution's new history events (and those of the service
//! executions it starts) are narrated as they happen, with a spinner on a terminal and plain
//! lines otherwise, until every execution followed has ended. Which history is read when is
//! `schedule`'s decision (one budget of GetExecutionHistory calls, round-robin over the service
//! executions while they run, backing off when throttled); what the end means, `verdict`'s.

use crate::cloud::{sdk_error, Cloud};
use crate::output::{self, short, Exit, Result};
use crate::schedule::{Next, Scheduler, PACING};
use crate::steps::{Details, Event, Narration, Step};
use crate::verdict::{self, Ended, ServiceLine};
use crate::Format;
use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;
use tokio::time::Instant;

/// The history events that end an execution.
const TERMINAL: [&str; 4] = ["ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"];

/// Events read per GetExecutionHistory page (newest first, only as far back as needed).
const PAGE: i32 = 100;

/// Service lines printed at the end of a wide push; the rest are counted.
const LINES_LISTED: usize = 20;

/// An execution followed to its end, and the results of the service executions it started.
#[derive(Debug, Clone)]
pub struct Watched {
    pub ended: Ended,
    pub services: Vec<ServiceLine>,
}

struct Followed {
    label: String,
    seen: i64,
    state: Option<String>,
    narration: Narration,
    /// The index of the root this is (or that started it) in the roots followed.
    root: usize,
    is_root: bool,
}

/// Why a read did not finish.
enum ReadError {
    /// Throttled (after the SDK's own retries): back off and read again later.
    Throttled,
    Failed(output::Error),
}

/// Step Functions' throttling error codes (and the SDK's generic ones).
pub fn throttling<E: ProvideErrorMetadata>(error: &E) -> bool {
    matches!(
        error.code(),
        Some("ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded")
    )
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

/// The clock the scheduler runs on: seconds since the command started following.
struct Clock(Instant);

impl Clock {
    fn now(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    async fn until(&self, at: f64) {
        let at = at.clamp(0.0, 3600.0);
        tokio::time::sleep_until(self.0 + Duration::from_secs_f64(at)).await;
    }
}

/// Follows `roots` (and the service executions they start) until all have ended.
pub async fn follow(cloud: &Cloud, format: Format, roots: &[String]) -> Result<Vec<Watched>> {
    let printer = Printer::new(format);
    let clock = Clock(Instant::now());
    let seed = (output::now() * 1e6) as u64 ^ u64::from(std::process::id()).rotate_left(32);
    let mut scheduler = Scheduler::new(PACING, clock.now(), seed);
    let label =
        |arn: &str| if roots.len() == 1 { "deckhand".to_string() } else { short(arn).chars().take(14).collect() };
    let mut followed: HashMap<String, Followed> = HashMap::new();
    for (index, arn) in roots.iter().enumerate() {
        scheduler.follow(arn, true);
        let root = Followed {
            label: label(arn),
            seen: 0,
            state: None,
            narration: Narration::default(),
            root: index,
            is_root: true,
        };
        followed.insert(arn.clone(), root);
    }
    let mut ends: Vec<Option<Ended>> = vec![None; roots.len()];
    let mut children: Vec<Vec<String>> = vec![Vec::new(); roots.len()];
    let mut results: HashMap<String, Ended> = HashMap::new();
    loop {
        let arn = match scheduler.next(clock.now()) {
            Next::Done => break,
            Next::Wait(until) => {
                clock.until(until).await;
                continue;
            }
            Next::Read(arn) => arn,
        };
        let Some(current) = followed.get_mut(&arn) else { continue };
        let events = match new_events(cloud, &mut scheduler, &clock, &arn, current).await {
            Ok(events) => events,
            Err(ReadError::Throttled) => {
                scheduler.throttled(clock.now());
                continue;
            }
            Err(ReadError::Failed(error)) => return Err(error),
        };
        let (root, is_root) = (current.root, current.is_root);
        let mut started = Vec::new();
        let mut finished = Vec::new();
        let mut terminal = false;
        for event in &events {
            terminal |= TERMINAL.contains(&event.kind.as_str());
            for step in current.narration.narrate(event) {
                match step {
                    Step::Line(text) => printer.line(event.at, &current.label, &text),
                    Step::Label(label) => current.label = label,
                    Step::Child(child) => started.push(child),
                    Step::ChildEnded(end) => finished.push((event.at, end)),
                    Step::Failing => scheduler.failing(&arn),
                }
            }
        }
        scheduler.read(&arn, terminal);
        for child in started {
            if scheduler.follow(&child, false) {
                children[root].push(child.clone());
                let label = "service".to_string();
                followed.insert(
                    child,
                    Followed { label, seen: 0, state: None, narration: Narration::default(), root, is_root: false },
                );
            }
        }
        for (at, end) in finished {
            if !scheduler.ended(&end.execution) && never_read(&followed, &end.execution) {
                // Never read: its result is all there is to say of it.
                let line = ServiceLine::of(&end);
                let label: String = line.service.as_deref().map_or("service", short).chars().take(14).collect();
                printer.line(at, &label, &format!("{} {}", line.status, line.reason));
            }
            results.insert(end.execution.clone(), end);
        }
        if terminal && is_root {
            ends[root] = Some(describe_patiently(cloud, &mut scheduler, &clock, &arn).await?);
            // The push has ended, so have its service executions: each read once more at most.
            for child in &children[root] {
                scheduler.ended(child);
            }
        }
    }
    printer.bar.finish_and_clear();
    let mut watched = Vec::with_capacity(roots.len());
    for (index, arn) in roots.iter().enumerate() {
        let ended = match ends[index].take() {
            Some(ended) => ended,
            None => describe_patiently(cloud, &mut scheduler, &clock, arn).await?,
        };
        let what = ended.error.as_deref().map_or(ended.status.clone(), |e| format!("{} ({e})", ended.status));
        let label = followed.get(arn).map_or_else(|| label(arn), |f| f.label.clone());
        printer.line(output::now(), &label, &format!("execution {what}"));
        let mut services = Vec::with_capacity(children[index].len());
        for child in &children[index] {
            let end = match results.remove(child) {
                Some(end) => end,
                // Its end was not in the parent's history (the parent was stopped): ask.
                None => describe_patiently(cloud, &mut scheduler, &clock, child).await?,
            };
            services.push(ServiceLine::of(&end));
        }
        // A service execution followed by itself is its own service line.
        let own = ended.document().filter(|d| d.get("outcome").is_some() && d.get("counts").is_none());
        if services.is_empty() && own.is_some() {
            services.push(ServiceLine::of(&ended));
        }
        watched.push(Watched { ended, services });
    }
    Ok(watched)
}

/// Whether the service execution `arn` never had its history read (its lines were never
/// printed): only its result line can say what happened.
fn never_read(followed: &HashMap<String, Followed>, arn: &str) -> bool {
    followed.get(arn).is_none_or(|f| f.seen == 0)
}

/// DescribeExecution, waiting out throttling as the history reads do.
async fn describe_patiently(cloud: &Cloud, scheduler: &mut Scheduler, clock: &Clock, arn: &str) -> Result<Ended> {
    loop {
        match cloud.sfn.describe_execution().execution_arn(arn).send().await {
            Ok(described) => return Ok(ended_from(arn, &described)),
            Err(error) if throttling(&error) => clock.until(scheduler.throttled(clock.now())).await,
            Err(error) => return Err(sdk_error("DescribeExecution", error)),
        }
    }
}

fn ended_from(arn: &str, described: &aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput) -> Ended {
    Ended {
        execution: arn.to_string(),
        status: described.status().as_str().to_string(),
        error: described.error().map(str::to_string),
        cause: described.cause().map(str::to_string),
        output: described.output().and_then(|o| serde_json::from_str(o).ok()),
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
    Ok(ended_from(arn, &described))
}

/// The events after the last one seen, oldest first: read newest first and only as far back as
/// needed, so that following a long rollout does not read its whole history every time. Each
/// page after the first spends from the scheduler's budget; a throttled read keeps nothing
/// (the next one starts over from the last event seen).
async fn new_events(
    cloud: &Cloud,
    scheduler: &mut Scheduler,
    clock: &Clock,
    arn: &str,
    followed: &mut Followed,
) -> std::result::Result<Vec<Event>, ReadError> {
    let mut fresh: Vec<HistoryEvent> = Vec::new();
    let mut token: Option<String> = None;
    'pages: loop {
        if token.is_some() {
            while let Some(until) = scheduler.page(clock.now()) {
                clock.until(until).await;
            }
        }
        let page = cloud
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .reverse_order(true)
            .max_results(PAGE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|error| {
                if throttling(&error) {
                    ReadError::Throttled
                } else {
                    ReadError::Failed(sdk_error("GetExecutionHistory", error))
                }
            })?;
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

/// A history event as the SDK returns it, reduced to what the narration and the report use.
pub fn reduce(raw: &HistoryEvent) -> Event {
    let mut details = Details::default();
    if let Some(d) = raw.state_entered_event_details() {
        details = Details { name: Some(d.name()), input: d.input(), ..details };
    } else if let Some(d) = raw.state_exited_event_details() {
        details = Details { name: Some(d.name()), output: d.output(), ..details };
    } else if let Some(d) = raw.execution_started_event_details() {
        details.input = d.input();
    } else if let Some(d) = raw.task_submitted_event_details() {
        details.output = d.output();
    } else if let Some(d) = raw.task_succeeded_event_details() {
        details.output = d.output();
    } else if let Some(d) = raw.task_failed_event_details() {
        (details.error, details.cause) = (d.error(), d.cause());
    } else if let Some(d) = raw.lambda_function_failed_event_details() {
        (details.error, details.cause) = (d.error(), d.cause());
    } else if let Some(d) = raw.execution_succeeded_event_details() {
        details.output = d.output();
    } else if let Some(d) = raw.execution_failed_event_details() {
        (details.error, details.cause) = (d.error(), d.cause());
    } else if let Some(d) = raw.execution_aborted_event_details() {
        (details.error, details.cause) = (d.error(), d.cause());
    } else if let Some(d) = raw.execution_timed_out_event_details() {
        (details.error, details.cause) = (d.error(), d.cause());
    }
    Event::reduced(raw.id(), raw.r#type().as_str(), raw.timestamp().as_secs_f64(), details)
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
    let watched = follow(cloud, format, &roots).await?;
    match format {
        Format::Json => {
            output::json(&Value::Array(watched.iter().map(|w| verdict::json(&w.ended, &w.services)).collect()));
        }
        Format::Text => report(&watched),
    }
    Ok(Exit::worst(watched.iter().map(|w| verdict::verdict(&w.ended, &w.services).exit)))
}

/// What `deploy`, `rollback` and `watch` print at the end in text: each service's line (on a
/// wide push, those not SUCCEEDED first, at most [`LINES_LISTED`]) and the verdict.
pub fn report(watched: &[Watched]) {
    for w in watched {
        let mut lines: Vec<&ServiceLine> = w.services.iter().collect();
        if lines.len() > LINES_LISTED {
            lines.sort_by_key(|s| s.status == "SUCCEEDED");
        }
        for line in lines.iter().take(LINES_LISTED) {
            println!("{}", line.text());
        }
        if lines.len() > LINES_LISTED {
            println!("… and {} more services", lines.len() - LINES_LISTED);
        }
        let said = verdict::verdict(&w.ended, &w.services).line;
        if watched.len() > 1 {
            println!("{}: {said}", short(&w.ended.execution));
        } else {
            println!("{said}");
        }
    }
}
