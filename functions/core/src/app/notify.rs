//! Notify: turn a service branch's state into its deployment event and its result.

use super::lock::LockResult;
use crate::domain::events::{DeploymentEvent, Status};
use crate::domain::model::{Health, Mode, Rollout, RolloutOutcome, Target, Verdict};
use crate::error::Result;
use crate::ports::EventSink;
use crate::runtime::absent_or_parse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The state of one service's branch of the state machine, as far as it got. Every part but the
/// target is optional: a failure can happen at any step.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Branch {
    pub target: Target,
    /// The execution deploying this service (the lock holder).
    pub execution_arn: String,
    /// The execution the push or the user started, which fanned out to this one: the
    /// event's `executionArn`, so that one push's events share it.
    #[serde(default)]
    pub parent_execution_arn: Option<String>,
    #[serde(default, deserialize_with = "absent_or_parse")]
    pub lock: Option<LockResult>,
    #[serde(default, deserialize_with = "absent_or_parse")]
    pub rollout: Option<Rollout>,
    #[serde(default, deserialize_with = "absent_or_parse")]
    pub health: Option<Health>,
    #[serde(default, deserialize_with = "absent_or_parse")]
    pub failure: Option<Failure>,
    #[serde(default, deserialize_with = "absent_or_parse")]
    pub rollback: Option<Rollout>,
    #[serde(default, deserialize_with = "absent_or_parse")]
    pub rollback_health: Option<Health>,
    #[serde(default, deserialize_with = "absent_or_parse")]
    pub rollback_failure: Option<Failure>,
    /// How the wait for approval ended when it did not end approved (timed out, rejected,
    /// superseded by a newer push).
    #[serde(default, deserialize_with = "absent_or_parse")]
    pub approval_failure: Option<Failure>,
}

/// What a Catch puts in the state: `{"Error": ..., "Cause": ...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Failure {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl Failure {
    fn describe(&self) -> String {
        // Lambda failures carry a JSON cause: {"errorType": ..., "errorMessage": ...}.
        let message = self
            .cause
            .as_deref()
            .and_then(|c| serde_json::from_str::<Value>(c).ok())
            .and_then(|v| v.get("errorMessage").and_then(Value::as_str).map(str::to_string))
            .or_else(|| self.cause.clone())
            .unwrap_or_default();
        if message.is_empty() {
            self.error.clone()
        } else {
            format!("{}: {message}", self.error)
        }
    }
}

/// How a service's result counts towards the execution's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Ok,
    RolledBack,
    RollbackFailed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceResult {
    pub cluster: String,
    pub service: String,
    pub image: String,
    pub status: Status,
    pub outcome: Outcome,
    pub reason: String,
    pub task_definition: Option<String>,
    pub previous_task_definition: Option<String>,
}

pub fn event_for(status: Status, branch: &Branch) -> DeploymentEvent {
    let target = &branch.target;
    let failed_rollout = branch.rollout.as_ref().filter(|r| r.outcome == RolloutOutcome::Started);
    let failure_reason = || why_failed(branch.health.as_ref(), branch.failure.as_ref(), "deployment failed");
    let rollback_failure =
        || why_failed(branch.rollback_health.as_ref(), branch.rollback_failure.as_ref(), "rollback failed");
    let (task_definition, previous, reason) = match status {
        Status::Started => (
            None,
            Some(target.task_definition.clone()),
            match target.mode {
                Mode::Deploy => format!("deploying {} to {}", target.image, target.service),
                Mode::Rollback => format!("rolling {} back to its last known-good revision", target.service),
            },
        ),
        Status::Succeeded => (
            branch.rollout.as_ref().map(|r| r.task_definition.clone()),
            branch
                .rollout
                .as_ref()
                .and_then(|r| r.previous_task_definition.clone())
                .or(Some(target.task_definition.clone())),
            branch.health.as_ref().map_or_else(|| "healthy".into(), |h| h.reason.clone()),
        ),
        Status::Skipped => (
            Some(branch.rollout.as_ref().map_or(target.task_definition.clone(), |r| r.task_definition.clone())),
            None,
            target
                .skip_reason
                .as_ref()
                .map(|why| format!("{} skipped: {why}", target.service))
                .or_else(|| branch.approval_failure.as_ref().map(|f| approval_ended(f, target)))
                .or_else(|| {
                    branch
                        .rollout
                        .as_ref()
                        .filter(|r| matches!(r.outcome, RolloutOutcome::UpToDate | RolloutOutcome::Superseded))
                        .map(|r| r.reason.clone())
                })
                .or_else(|| branch.lock.as_ref().map(|l| l.reason.clone()))
                .unwrap_or_else(|| "skipped".into()),
        ),
        Status::Superseded => (
            None,
            failed_rollout.map(|r| r.task_definition.clone()),
            branch.approval_failure.as_ref().and_then(|f| f.cause.clone()).unwrap_or_else(|| {
                branch
                    .health
                    .as_ref()
                    .map_or_else(|| "superseded by another update of the service".into(), |h| h.reason.clone())
            }),
        ),
        // Published by the approval gate itself (`app::approval`), never at a branch's end.
        Status::AwaitingApproval => (None, Some(target.task_definition.clone()), "awaiting approval".into()),
        Status::RolledBack if target.mode == Mode::Rollback => (
            branch.rollback.as_ref().map(|r| r.task_definition.clone()),
            branch.rollback.as_ref().and_then(|r| r.previous_task_definition.clone()),
            branch.rollback.as_ref().map_or_else(|| "rolled back".into(), |r| r.reason.clone()),
        ),
        Status::RolledBack => (
            branch.rollback.as_ref().map(|r| r.task_definition.clone()),
            failed_rollout.map(|r| r.task_definition.clone()),
            format!("{}; {}", failure_reason(), branch.rollback.as_ref().map_or("rolled back", |r| r.reason.as_str())),
        ),
        Status::RollbackFailed => (
            branch.rollback.as_ref().map(|r| r.task_definition.clone()),
            failed_rollout.map(|r| r.task_definition.clone()),
            match target.mode {
                Mode::Rollback => format!("rollback failed: {}", rollback_failure()),
                Mode::Deploy => format!("{}; rollback failed: {}", failure_reason(), rollback_failure()),
            },
        ),
        Status::Failed => (
            failed_rollout.map(|r| r.task_definition.clone()),
            Some(target.task_definition.clone()),
            branch.rollback.as_ref().map_or_else(failure_reason, |r| format!("{}; {}", failure_reason(), r.reason)),
        ),
    };
    let image = match (target.mode, &branch.rollback) {
        (Mode::Rollback, Some(r)) => r.task_definition.clone(),
        _ => target.image.clone(),
    };
    DeploymentEvent {
        cluster: target.cluster.clone(),
        service: target.service.clone(),
        image,
        status,
        reason,
        task_definition,
        previous_task_definition: previous,
        execution_arn: branch.parent_execution_arn.clone().unwrap_or_else(|| branch.execution_arn.clone()),
        service_execution_arn: Some(branch.execution_arn.clone()),
        changes: None,
    }
}

/// Why a wait for approval ended without an approval.
fn approval_ended(failure: &Failure, target: &Target) -> String {
    match failure.error.as_str() {
        "States.Timeout" => format!(
            "{} skipped: nobody approved the push within {}s",
            target.service,
            target.policy.gates.approval_timeout_seconds.unwrap_or_default()
        ),
        _ => format!("{} skipped: {}", target.service, failure.cause.clone().unwrap_or_else(|| failure.error.clone())),
    }
}

/// A failed verdict's reason, else the caught error's message.
fn why_failed(health: Option<&Health>, failure: Option<&Failure>, fallback: &str) -> String {
    health
        .filter(|h| h.verdict == Verdict::Failed)
        .map(|h| h.reason.clone())
        .or_else(|| failure.map(Failure::describe))
        .unwrap_or_else(|| fallback.to_string())
}

pub fn outcome_of(status: Status, mode: Mode) -> Outcome {
    match (status, mode) {
        (Status::RolledBack, Mode::Rollback) => Outcome::Ok,
        (Status::RolledBack, Mode::Deploy) => Outcome::RolledBack,
        (Status::RollbackFailed, _) => Outcome::RollbackFailed,
        (Status::Failed, _) => Outcome::Failed,
        _ => Outcome::Ok,
    }
}

/// Publishes the event for `status` and returns the service's result.
pub async fn notify(sink: &impl EventSink, status: Status, branch: &Branch) -> Result<ServiceResult> {
    let event = event_for(status, branch);
    sink.publish(&event).await?;
    tracing::info!(service = %event.service, status = ?event.status, reason = %event.reason, "deployment event published");
    Ok(ServiceResult {
        cluster: event.cluster,
        service: event.service,
        image: event.image,
        status,
        outcome: outcome_of(status, branch.target.mode),
        reason: event.reason,
        task_definition: event.task_definition,
        previous_task_definition: event.previous_task_definition,
    })
}
