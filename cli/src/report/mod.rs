//! `deckhand report EXECUTION… --html FILE | --svg FILE`: a push drawn as a timeline, one row per
//! service (see `timeline` for what is drawn, `svg` for how). The histories are read from Step
//! Functions, or from a recorded file (`--from-history`).

pub mod recorded;
pub mod svg;
pub mod timeline;

use crate::cloud::{sdk_error, Cloud};
use crate::follow::{reduce, throttling};
use crate::output::{self, short, Error, Exit, Result};
use crate::Format;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use timeline::{Recorded, Timeline};

/// What to draw and where to write it.
pub struct Request {
    pub executions: Vec<String>,
    pub html: Option<PathBuf>,
    pub svg: Option<PathBuf>,
    pub from_history: Option<PathBuf>,
}

/// Tries of one GetExecutionHistory page when Step Functions throttles (after the SDK's own).
const THROTTLED_TRIES: u32 = 6;

pub async fn run(cloud: &Cloud, format: Format, request: Request) -> Result<Exit> {
    let timelines = match &request.from_history {
        Some(file) => from_file(file, &request.executions)?,
        None => {
            let mut timelines = Vec::with_capacity(request.executions.len());
            for execution in &request.executions {
                timelines.push(from_cloud(cloud, execution).await?);
            }
            timelines
        }
    };
    let mut written = Vec::new();
    if let Some(path) = &request.svg {
        write(path, &svg::render(&timelines))?;
        written.push(("svg", path));
    }
    if let Some(path) = &request.html {
        write(path, &svg::page(&timelines))?;
        written.push(("html", path));
    }
    match format {
        Format::Text => {
            for timeline in &timelines {
                let services = timeline.rows.len();
                let plural = if services == 1 { "" } else { "s" };
                println!("{}: {} ({services} service{plural})", short(&timeline.execution), timeline.verdict);
            }
            for (_, path) in &written {
                println!("wrote {}", path.display());
            }
        }
        Format::Json => output::json(&json!({
            "files": written.iter().map(|(kind, path)| json!({"kind": kind, "path": path.display().to_string()})).collect::<Vec<_>>(),
            "executions": timelines.iter().map(|t| json!({
                "executionArn": t.execution, "status": t.status, "verdict": t.verdict,
                "services": t.rows.iter().map(|r| json!({"service": r.name, "status": r.status, "reason": r.reason,
                    "seconds": r.seconds().round()})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })),
    }
    Ok(Exit::Ok)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))
}

/// The timelines of a recorded file: of the executions named (by ARN or name), else of every
/// execution in it that no other started.
fn from_file(file: &Path, wanted: &[String]) -> Result<Vec<Timeline>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::InvalidInput(format!("--from-history: cannot read {}: {e}", file.display())))?;
    let recorded = recorded::parse(&text)?;
    let histories: HashMap<String, Recorded> = recorded.iter().map(|r| (r.execution.clone(), r.clone())).collect();
    let started: Vec<String> = recorded.iter().flat_map(timeline::children).collect();
    let roots: Vec<&Recorded> = if wanted.is_empty() {
        recorded.iter().filter(|r| !started.contains(&r.execution)).collect()
    } else {
        wanted
            .iter()
            .map(|name| {
                recorded.iter().find(|r| r.execution == *name || short(&r.execution) == name).ok_or_else(|| {
                    Error::InvalidInput(format!("--from-history: no execution {name:?} in {}", file.display()))
                })
            })
            .collect::<Result<_>>()?
    };
    Ok(roots.into_iter().map(|root| timeline::build(root, &histories)).collect())
}

async fn from_cloud(cloud: &Cloud, execution: &str) -> Result<Timeline> {
    let arn = execution_arn(cloud, execution).await?;
    let root = history(cloud, &arn).await?;
    let mut histories = HashMap::new();
    for child in timeline::children(&root) {
        let read = history(cloud, &child).await?;
        histories.insert(child, read);
    }
    Ok(timeline::build(&root, &histories))
}

/// An execution's ARN, or its name in the stack's deploy state machine.
async fn execution_arn(cloud: &Cloud, execution: &str) -> Result<String> {
    if execution.starts_with("arn:") {
        return Ok(execution.to_string());
    }
    let machine = &cloud.outputs().await?.deploy_machine;
    let (prefix, name) = machine
        .split_once(":stateMachine:")
        .ok_or_else(|| Error::Other(format!("unexpected state machine ARN {machine:?}")))?;
    Ok(format!("{prefix}:execution:{name}:{execution}"))
}

/// An execution's whole history, oldest first. Throttling is waited out (a wide push's report
/// reads one history per service).
async fn history(cloud: &Cloud, arn: &str) -> Result<Recorded> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut tries = 0;
        let page = loop {
            let answer = cloud
                .sfn
                .get_execution_history()
                .execution_arn(arn)
                .max_results(1000)
                .set_next_token(token.clone())
                .send()
                .await;
            match answer {
                Ok(page) => break page,
                Err(error) if throttling(&error) && tries + 1 < THROTTLED_TRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(500 << tries)).await;
                }
                Err(error) => return Err(sdk_error("GetExecutionHistory", error)),
            }
        };
        events.extend(page.events().iter().map(reduce));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(Recorded { execution: arn.to_string(), events });
        }
    }
}
