//! `deckhand history CLUSTER SERVICE`: the service's past deployments, newest first, from the
//! state table (each deployment as it ended) and Step Functions (the one running now).

use crate::cloud::Cloud;
use crate::follow;
use crate::output::{self, short, Error, Exit, Result};
use crate::status::{services, short_image};
use crate::Format;
use deckhand_core::domain::ledger::FinishedDeployment;
use deckhand_core::domain::model::{ContainerChange, Mode};
use deckhand_core::ports::Ledger;
use serde_json::{json, Value};

struct Entry {
    started_at: f64,
    finished_at: Option<f64>,
    mode: Mode,
    containers: Vec<ContainerChange>,
    status: String,
    task_definition: Option<String>,
    execution: String,
}

impl From<&FinishedDeployment> for Entry {
    fn from(done: &FinishedDeployment) -> Self {
        Entry {
            started_at: done.started_at,
            finished_at: Some(done.finished_at),
            mode: done.mode,
            containers: done.containers.clone(),
            status: serde_json::to_value(done.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            task_definition: done.task_definition.clone(),
            execution: done.execution.clone(),
        }
    }
}

pub async fn run(cloud: &Cloud, format: Format, cluster: &str, service: &str, limit: usize) -> Result<Exit> {
    let found = services(cloud, cluster, Some(service)).await?;
    let snapshot = found
        .into_iter()
        .find(|s| s.is_active())
        .ok_or_else(|| Error::InvalidInput(format!("service: no active service {service:?} in cluster {cluster:?}")))?;
    let (record, _) = cloud.ledger().await?.load(&snapshot.arn).await?;
    let mut entries = Vec::new();
    if let Some(hold) = &record.lock {
        // The lock's holder, as Step Functions sees it now (a holder that died shows as such).
        let status = follow::describe(cloud, &hold.owner).await.map_or_else(|_| "UNKNOWN".into(), |e| e.status);
        entries.push(Entry {
            started_at: hold.acquired_at,
            finished_at: None,
            mode: hold.mode,
            containers: hold.containers.clone(),
            status: if status == "RUNNING" { "RUNNING".into() } else { format!("LOCK HELD ({status})") },
            task_definition: None,
            execution: hold.owner.clone(),
        });
    }
    entries.extend(record.deployments.iter().map(Entry::from));
    entries.truncate(limit);
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                output::time(e.started_at),
                mode(e.mode).into(),
                images(&e.containers),
                e.status.clone(),
                e.finished_at.map_or("-".into(), |end| output::duration(end - e.started_at)),
                e.task_definition.as_deref().map_or("-".into(), |td| short(td).to_string()),
                short(&e.execution).to_string(),
            ]
        })
        .collect();
    let documents = entries.iter().map(document).collect();
    output::listing(
        format,
        &["STARTED", "MODE", "IMAGE", "OUTCOME", "DURATION", "ENDED ON", "EXECUTION"],
        rows,
        documents,
    );
    Ok(Exit::Ok)
}

fn mode(mode: Mode) -> &'static str {
    match mode {
        Mode::Deploy => "deploy",
        Mode::Rollback => "rollback",
    }
}

fn images(containers: &[ContainerChange]) -> String {
    if containers.is_empty() {
        return "(last known-good)".into();
    }
    containers.iter().map(|c| format!("{}={}", c.name, short_image(&c.image))).collect::<Vec<_>>().join(" ")
}

fn document(e: &Entry) -> Value {
    json!({
        "startedAt": output::time(e.started_at),
        "finishedAt": e.finished_at.map(output::time),
        "durationSeconds": e.finished_at.map(|end| (end - e.started_at).round()),
        "mode": mode(e.mode),
        "containers": e.containers.iter().map(|c| json!({"name": c.name, "image": c.image})).collect::<Vec<_>>(),
        "outcome": e.status,
        "taskDefinition": e.task_definition,
        "execution": e.execution,
    })
}
