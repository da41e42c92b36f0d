//! What people see of a deployment outside the terminal: a chat message in the custom
//! notification format of Amazon Q Developer in chat applications (formerly AWS Chatbot), and
//! CloudWatch metrics as an Embedded Metric Format record.
//!
//! Both are made from deckhand's own event only (cluster, service, image, revisions, status,
//! reason, timings): never from a task definition, so no environment value or secret can reach
//! a chat channel or a metric.
//!
//! Custom notifications: `{"version": "1.0", "source": "custom", "content": {"textType":
//! "client-markdown", "title", "description", "nextSteps", "keywords"}, "metadata": {"threadId",
//! "summary", "eventType", "relatedResources", "additionalContext"}}` ("Custom notifications using
//! Amazon Q Developer in chat applications", chatbot/latest/adminguide/custom-notifs.html).
//! EMF: a JSON log line with `_aws.Timestamp` (milliseconds) and `_aws.CloudWatchMetrics`
//! directives naming the namespace, dimension sets and metrics found as members of the same
//! object ("Specification: Embedded metric format", AmazonCloudWatch/latest/monitoring/
//! CloudWatch_Embedded_Metric_Format_Specification.html).

use super::events::{DeploymentEvent, Status};
use super::health::short_td;
use serde_json::{json, Map, Value};

/// The CloudWatch namespace of deckhand's metrics (the stack's dashboard and alarm read it).
pub const METRICS_NAMESPACE: &str = "Deckhand";

/// Where the event was published (the EventBridge envelope's `region`).
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub region: &'a str,
}

/// Whether a status is worth a chat message: the start, a wait for a person, and every end.
pub fn is_chat_worthy(status: Status) -> bool {
    matches!(status, Status::Started | Status::AwaitingApproval) || status.is_terminal()
}

fn title_mark(status: Status) -> &'static str {
    match status {
        Status::Started => ":rocket:",
        Status::AwaitingApproval => ":raised_hand:",
        Status::Succeeded => ":white_check_mark:",
        Status::RolledBack => ":leftwards_arrow_with_hook:",
        Status::RollbackFailed => ":rotating_light:",
        Status::Failed => ":x:",
        Status::Skipped => ":fast_forward:",
        Status::Superseded => ":twisted_rightwards_arrows:",
    }
}

/// The chat message for an event (custom notification format).
pub fn chat_message(event: &DeploymentEvent, origin: &Origin<'_>) -> Value {
    let status = event.status;
    let (cluster, service) = (&event.cluster, &event.service);
    let mut lines = vec![format!("*Image:* `{}`", event.image)];
    if let Some(revision) = &event.task_definition {
        lines.push(format!("*Revision:* `{}`", short_td(revision)));
    }
    if let Some(previous) = &event.previous_task_definition {
        lines.push(format!("*Previous revision:* `{}`", short_td(previous)));
    }
    if let Some(changes) = &event.changes {
        lines.push(format!(
            "*Would change:* {}",
            changes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(ecs) = &event.ecs_deployment {
        let stage = ecs.lifecycle_stage.as_deref().map(|s| format!(" at {s}")).unwrap_or_default();
        let traffic = ecs
            .production_traffic_percent
            .map(|p| format!(", {p}% of production traffic on the new revision"))
            .unwrap_or_default();
        lines.push(format!("*ECS {} deployment:* {}{stage}{traffic}", ecs.strategy, ecs.status));
    }
    if !event.reason.is_empty() {
        lines.push(format!("*Reason:* {}", event.reason));
    }
    lines.push(format!(
        "*Trigger:* {}",
        serde_json::to_value(event.trigger).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    ));
    let execution = event.service_execution_arn.as_deref().unwrap_or(&event.execution_arn);
    let mut next_steps = match status {
        Status::AwaitingApproval => vec![
            format!("Approve: `deckhand approve {cluster} {service}`"),
            format!("Reject: `deckhand reject {cluster} {service}`"),
        ],
        Status::Started => vec![format!("Follow it: `deckhand watch {}`", event.execution_arn)],
        Status::Succeeded => vec![format!("If it misbehaves later: `deckhand rollback {cluster} {service}`")],
        Status::RolledBack | Status::Failed => vec![
            format!("What happened: `deckhand report {}`", event.execution_arn),
            format!("Past deployments: `deckhand history {cluster} {service}`"),
        ],
        Status::RollbackFailed => vec![
            format!("The service may still run the failed revision: `deckhand doctor {cluster} {service}`"),
            format!("Then roll back by hand: `deckhand rollback {cluster} {service}`"),
        ],
        Status::Skipped | Status::Superseded => vec![format!("Service state: `deckhand status {cluster} {service}`")],
    };
    if let Some(link) = console_link(execution, origin.region) {
        next_steps.push(format!("The execution in the console: {link}"));
    }
    json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": format!("{} {} {}/{}", title_mark(status), status.as_str(), cluster, service),
            "description": lines.join("\n"),
            "nextSteps": next_steps,
            "keywords": [status.as_str(), cluster, service],
        },
        "metadata": {
            // One thread per deployment of a service: its start, approval and end together.
            "threadId": format!("deckhand-{}", thread_key(execution)),
            "summary": format!("{service} {}", status.as_str()),
            "eventType": format!("Deckhand{}", camel(status.as_str())),
            "relatedResources": [execution],
            "additionalContext": {"cluster": cluster, "service": service, "status": status.as_str()},
        }
    })
}

/// The console page of a Step Functions execution, in the ARN's partition.
pub fn console_link(execution_arn: &str, region: &str) -> Option<String> {
    let partition = execution_arn.split(':').nth(1)?;
    let host = match partition {
        "aws" => format!("{region}.console.aws.amazon.com"),
        "aws-cn" => "console.amazonaws.cn".to_string(),
        "aws-us-gov" => "console.amazonaws-us-gov.com".to_string(),
        _ => return None,
    };
    Some(format!("https://{host}/states/home?region={region}#/v2/executions/details/{}", percent_encode(execution_arn)))
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn thread_key(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or(arn).chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

fn camel(status: &str) -> String {
    status
        .split('_')
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The EMF record of a terminal event: deployments by outcome (per service and account-wide),
/// rollbacks, time from push to healthy (SUCCEEDED) and time to detect a failure.
pub fn metrics_record(event: &DeploymentEvent, now_ms: i64) -> Option<Value> {
    let status = event.status;
    if !status.is_terminal() {
        return None;
    }
    let timings = &event.timings;
    let mut members = Map::new();
    members.insert("Cluster".into(), json!(event.cluster));
    members.insert("Service".into(), json!(event.service));
    members.insert("Outcome".into(), json!(status.as_str()));
    members.insert("Deployments".into(), json!(1));
    let rolled_back = matches!(status, Status::RolledBack | Status::RollbackFailed);
    members.insert("Rollbacks".into(), json!(u8::from(rolled_back)));
    let mut timing_metrics = vec![json!({"Name": "Rollbacks", "Unit": "Count"})];
    if status == Status::Succeeded {
        let from = timings.pushed_at.or(timings.started_at);
        if let (Some(from), Some(healthy)) = (from, timings.healthy_at) {
            members.insert("PushToHealthy".into(), json!(round((healthy - from).max(0.0))));
            timing_metrics.push(json!({"Name": "PushToHealthy", "Unit": "Seconds"}));
        }
    }
    if matches!(status, Status::Failed | Status::RolledBack | Status::RollbackFailed) {
        if let (Some(started), Some(judged)) = (timings.started_at, timings.judged_at) {
            members.insert("TimeToDetectFailure".into(), json!(round((judged - started).max(0.0))));
            timing_metrics.push(json!({"Name": "TimeToDetectFailure", "Unit": "Seconds"}));
        }
    }
    members.insert("executionArn".into(), json!(event.execution_arn));
    members.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [
                {"Namespace": METRICS_NAMESPACE, "Dimensions": [["Cluster", "Service", "Outcome"], ["Outcome"]],
                 "Metrics": [{"Name": "Deployments", "Unit": "Count"}]},
                {"Namespace": METRICS_NAMESPACE, "Dimensions": [["Cluster", "Service"], ["Cluster"]],
                 "Metrics": timing_metrics},
            ]
        }),
    );
    Some(Value::Object(members))
}

fn round(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
#[path = "announce_tests.rs"]
mod tests;
