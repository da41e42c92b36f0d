//! Notify: turn a service branch's state into its deployment event and its result.

use super::lock::LockResult;
use crate::domain::events::{DeploymentEvent, Status, Timings};
use crate::domain::model::{Health, Mode, Rollout, RolloutOutcome, Target, Trigger, Verdict};
use crate::domain::request::{parse_request, Request};
use crate::error::Result;
use crate::ports::EventSink;
use crate::runtime::absent_or_parse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The state of one service's branch of the state machine, as far as it got. Every part is
/// optional: a failure can happen at any step, even before there is a target.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Branch {
    /// Absent at the two ends that come before one (the service is no longer tracked, or its
    /// planning failed): then `service_arn` names the service.
    #[serde(default)]
    pub target: Option<Target>,
    /// The service's ARN, for an end without a target.
    #[serde(default)]
    pub service_arn: Option<String>,
    /// Why an end without a target came (the plan's reason for a service no longer tracked).
    #[serde(default)]
    pub reason: Option<String>,
    /// The request the push or the user made, for an end without a target: what it would have
    /// deployed names the event's image.
    #[serde(default)]
    pub request: Option<Value>,
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
    /// Why a verified revision could not be recorded as known-good (the lock was taken over,
    /// or the state table kept failing): the outcome stands, and the event says so.
    #[serde(default, deserialize_with = "absent_or_parse")]
    pub known_good_failure: Option<Failure>,
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
    let Some(target) = &branch.target else { return untargeted(status, branch) };
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
                // A manual rollback with nothing to roll back to: the rollback's own reason.
                .or_else(|| {
                    branch.rollback.as_ref().filter(|_| target.mode == Mode::Rollback).map(|r| r.reason.clone())
                })
                .or_else(|| branch.lock.as_ref().map(|l| l.reason.clone()))
                .unwrap_or_else(|| "skipped".into()),
        ),
        Status::Superseded => (
            None,
            failed_rollout.map(|r| r.task_definition.clone()),
            branch
                .approval_failure
                .as_ref()
                .and_then(|f| f.cause.clone())
                // Someone else's update during deckhand's rollback, seen by its check or by the
                // rollback itself (the service no longer ran deckhand's deployment).
                .or_else(|| {
                    branch
                        .rollback_health
                        .as_ref()
                        .filter(|h| h.verdict == Verdict::Superseded)
                        .map(|h| h.reason.clone())
                })
                .or_else(|| {
                    branch
                        .rollback
                        .as_ref()
                        .filter(|r| r.outcome == RolloutOutcome::Superseded)
                        .map(|r| r.reason.clone())
                })
                .unwrap_or_else(|| {
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
    let reason = match &branch.known_good_failure {
        // Never swallowed: a later rollback would skip past this revision without knowing why.
        Some(failure) => format!("{reason} (not recorded as known-good: {})", failure.describe()),
        None => reason,
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
        trigger: target.trigger,
        changes: None,
        ecs_deployment: branch.health.as_ref().and_then(|h| h.ecs_deployment.clone()),
        timings: Timings {
            pushed_at: (target.pushed_at > 0.0).then_some(target.pushed_at),
            started_at: branch.rollout.as_ref().map(|r| r.started_at).filter(|t| *t > 0.0),
            healthy_at: branch.health.as_ref().and_then(|h| h.healthy_at),
            judged_at: branch.health.as_ref().and_then(|h| h.judged_at),
        },
    }
}

/// The event of an end that came before there was a target: the service no longer tracks what
/// was pushed (SKIPPED with the plan's reason), or its planning failed (FAILED with the error).
/// The service is named by its ARN, the image by what the request would have deployed.
fn untargeted(status: Status, branch: &Branch) -> DeploymentEvent {
    let arn = branch.service_arn.clone().unwrap_or_default();
    let (cluster, service) = cluster_and_service(&arn);
    let reason = match (&branch.reason, &branch.failure) {
        (Some(reason), _) => reason.clone(),
        (None, Some(failure)) => format!("planning {service} failed: {}", failure.describe()),
        (None, None) => format!("{service} ended before it was planned"),
    };
    let (image, trigger) = branch.request.as_ref().map(requested).unwrap_or_default();
    DeploymentEvent {
        cluster,
        service,
        image,
        status,
        reason,
        task_definition: None,
        previous_task_definition: None,
        execution_arn: branch.parent_execution_arn.clone().unwrap_or_else(|| branch.execution_arn.clone()),
        service_execution_arn: Some(branch.execution_arn.clone()),
        trigger,
        changes: None,
        ecs_deployment: None,
        timings: Timings::default(),
    }
}

/// The cluster and service names of an ECS service ARN (`…:service/CLUSTER/SERVICE`); the
/// legacy form (`…:service/SERVICE`) names no cluster.
fn cluster_and_service(arn: &str) -> (String, String) {
    let resource = arn.split_once(":service/").map_or(arn, |(_, resource)| resource);
    match resource.split_once('/') {
        Some((cluster, service)) => (cluster.to_string(), service.to_string()),
        None => (String::new(), resource.to_string()),
    }
}

/// What a request that never became a target asked for (the pushed digest, or the image asked
/// for), and who started it.
fn requested(request: &Value) -> (String, Trigger) {
    match parse_request(request) {
        Ok(Request::Push(push)) => (format!("{}@{}", push.repository, push.digest), Trigger::Push),
        Ok(Request::Deploy(deploy)) => (deploy.image.to_string(), Trigger::Manual),
        Ok(Request::Rollback(_)) => (String::new(), Trigger::Manual),
        Ok(Request::Reconcile { .. }) => (String::new(), Trigger::Reconcile),
        _ => (String::new(), Trigger::Push),
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
        outcome: outcome_of(status, branch.target.as_ref().map_or(Mode::Deploy, |t| t.mode)),
        reason: event.reason,
        task_definition: event.task_definition,
        previous_task_definition: event.previous_task_definition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::future::Future;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Sink(Mutex<Vec<DeploymentEvent>>);

    impl EventSink for Sink {
        fn publish(&self, event: &DeploymentEvent) -> impl Future<Output = Result<()>> + Send {
            self.0.lock().unwrap().push(event.clone());
            async { Ok(()) }
        }
    }

    fn branch(value: Value) -> Branch {
        serde_json::from_value(value).unwrap()
    }

    fn target(mode: &str) -> Value {
        json!({
            "cluster": "prod", "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
            "service": "api", "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
            "mode": mode, "image": "web=flask@sha256:1", "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/api:3",
            "pushedAt": 0.0, "requestId": "r",
            "policy": {"pollSeconds": 5, "timeoutSeconds": 60, "bakeSeconds": 0, "maxFailedTasks": 1, "unhealthyChecks": 2}
        })
    }

    const DIGEST: &str = "sha256:4f1d2c7b8a9e0d3c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180f7e6d5c4b3a2918";

    #[tokio::test]
    async fn a_service_no_longer_tracked_publishes_skipped_named_by_its_arn() {
        let sink = Sink::default();
        let no_target = branch(json!({
            "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
            "executionArn": "arn:exec:service", "parentExecutionArn": "arn:exec:push",
            "reason": "nothing to deploy: api no longer tracks flask:main",
            "request": {"cluster": "prod", "service": "api", "image": "flask:v2"},
            "final": {"status": "SKIPPED", "outcome": "ok"}
        }));
        let result = notify(&sink, Status::Skipped, &no_target).await.unwrap();
        assert_eq!((result.cluster.as_str(), result.service.as_str()), ("prod", "api"));
        assert_eq!((result.status, result.outcome), (Status::Skipped, Outcome::Ok));
        assert_eq!(result.reason, "nothing to deploy: api no longer tracks flask:main");
        let events = sink.0.lock().unwrap().clone();
        assert_eq!(events.len(), 1, "exactly one terminal event");
        assert_eq!(events[0].image, "flask:v2", "what the request asked for");
        assert_eq!(events[0].execution_arn, "arn:exec:push");
        assert_eq!(events[0].service_execution_arn.as_deref(), Some("arn:exec:service"));
        assert_eq!(events[0].trigger, Trigger::Manual, "a person's request");
    }

    #[tokio::test]
    async fn a_service_whose_planning_failed_publishes_failed_with_the_cause() {
        let sink = Sink::default();
        let push = json!({
            "version": "0", "id": "e1", "detail-type": "ECR Image Action", "source": "aws.ecr",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"result": "SUCCESS", "repository-name": "flask", "image-digest": DIGEST,
                       "action-type": "PUSH", "image-tag": "main"}
        });
        let failed = branch(json!({
            // A legacy (short) service ARN names no cluster.
            "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/api",
            "executionArn": "arn:exec:service", "parentExecutionArn": "arn:exec:push", "request": push,
            "failure": {"Error": "Sandbox.Timedout",
                        "Cause": "{\"errorType\":\"Sandbox.Timedout\",\"errorMessage\":\"Task timed out after 30.00 seconds\"}"},
            "final": {"status": "FAILED", "outcome": "failed"}
        }));
        let result = notify(&sink, Status::Failed, &failed).await.unwrap();
        assert_eq!((result.cluster.as_str(), result.service.as_str()), ("", "api"));
        assert_eq!(result.outcome, Outcome::Failed);
        assert_eq!(result.reason, "planning api failed: Sandbox.Timedout: Task timed out after 30.00 seconds");
        assert_eq!(result.image, format!("flask@{DIGEST}"));
        let events = sink.0.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].trigger, Trigger::Push);
    }

    #[test]
    fn someone_elses_update_during_the_rollback_is_the_superseded_events_reason() {
        let rollout =
            json!({"outcome": "STARTED", "taskDefinition": "td:4", "previousTaskDefinition": "td:3", "startedAt": 1.0});
        let seen_by_the_check = branch(json!({
            "target": target("deploy"), "executionArn": "arn:exec:service", "rollout": rollout,
            "health": {"verdict": "FAILED", "reason": "2 task(s) stopped"},
            "rollback": {"outcome": "STARTED", "taskDefinition": "td:3", "startedAt": 2.0, "reason": "rolling back"},
            "rollbackHealth": {"verdict": "SUPERSEDED", "reason": "someone else updated the service to td:9"}
        }));
        let event = event_for(Status::Superseded, &seen_by_the_check);
        assert_eq!(event.reason, "someone else updated the service to td:9");
        assert_eq!(event.previous_task_definition.as_deref(), Some("td:4"));
        let seen_by_the_rollback = branch(json!({
            "target": target("deploy"), "executionArn": "arn:exec:service", "rollout": rollout,
            "health": {"verdict": "PENDING", "reason": "1/2 targets healthy"},
            "rollback": {"outcome": "SUPERSEDED", "taskDefinition": "td:9", "startedAt": 2.0,
                         "reason": "someone else updated the service: deckhand leaves it alone"}
        }));
        assert_eq!(
            event_for(Status::Superseded, &seen_by_the_rollback).reason,
            "someone else updated the service: deckhand leaves it alone"
        );
    }

    #[test]
    fn a_manual_rollback_with_nothing_to_roll_back_to_is_skipped_with_the_rollbacks_reason() {
        let nothing = branch(json!({
            "target": target("rollback"), "executionArn": "arn:exec:service",
            "lock": {"decision": "ACQUIRED", "reason": "lock acquired"},
            "rollback": {"outcome": "UP_TO_DATE", "taskDefinition": "td:3", "startedAt": 2.0,
                         "reason": "nothing to roll back to: api has no known-good revision other than td:3"}
        }));
        let event = event_for(Status::Skipped, &nothing);
        assert_eq!(event.reason, "nothing to roll back to: api has no known-good revision other than td:3");
        assert_eq!(outcome_of(Status::Skipped, Mode::Rollback), Outcome::Ok);
    }

    #[test]
    fn a_known_good_that_could_not_be_recorded_is_said_in_the_event() {
        let rollout =
            json!({"outcome": "STARTED", "taskDefinition": "td:4", "previousTaskDefinition": "td:3", "startedAt": 1.0});
        let deployed = branch(json!({
            "target": target("deploy"), "executionArn": "arn:exec:service", "rollout": rollout,
            "health": {"verdict": "HEALTHY", "reason": "2/2 targets healthy"},
            "knownGoodFailure": {"Error": "LockLost", "Cause": "the lock of api is held by arn:other"}
        }));
        let event = event_for(Status::Succeeded, &deployed);
        assert!(
            event.reason.starts_with("2/2 targets healthy (not recorded as known-good: LockLost"),
            "{}",
            event.reason
        );
        assert!(event.reason.contains("arn:other"), "{}", event.reason);
    }
}
