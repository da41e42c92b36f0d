//! Waiting on ECS events instead of a clock: a rollout's watcher parks on a Step Functions task
//! token (stored as a [`Waiter`]); ECS events about the service wake it. Pure: which events
//! concern a waiter, and the waiter's key in the state table.
//!
//! EventBridge delivers at least once and in no guaranteed order, so nothing here trusts an
//! event's content beyond "something may have changed on this service": the watcher always
//! judges the live state, which makes duplicates and stale events harmless by construction.

use super::status::TaskStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A parked watcher: the token to complete and the check request it was parked with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiter {
    pub token: String,
    /// The ECS deployment being watched (`ecs-svc/…`), when Deploy or Rollback knew it.
    #[serde(default)]
    pub deployment_id: Option<String>,
    /// The check function's input (target, rollout, health, lock), replayed by the signal.
    pub check: Value,
    pub parked_at: f64,
}

/// Asking to judge a parked watcher. A burst of ECS events about one service (a rollout of
/// twenty tasks sends dozens) would otherwise make as many invocations judge it at once, each
/// with its own DescribeServices, DescribeTasks and DescribeTargetHealth: one invocation
/// judges at a time, and the events that come meanwhile ask it for one more look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This invocation judges.
    Claimed,
    /// Another invocation is judging; it was asked to look once more, after its judgement.
    Coalesced,
    /// The watcher is no longer parked (woken, or replaced by a newer one).
    Gone,
}

/// Giving a judging claim back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    Released,
    /// An event came during the judgement: the claim was kept for one more look.
    JudgeAgain,
    Gone,
}

/// The state table key of a service's waiter (next to its ledger record, `service_key`).
pub fn waiter_key(service_key: &str) -> String {
    format!("waiter#{service_key}")
}

/// What an ECS event says about which service, stripped to what routing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcsSignal {
    /// `ECS Deployment State Change` (IN_PROGRESS, COMPLETED, FAILED) of a service.
    Deployment { service_arn: String, deployment_id: String, event_name: String },
    /// `ECS Task State Change` of a service's task that is stopping or stopped ([`is_stopping`]).
    TaskStopped { service_arn: String, started_by: Option<String>, task_arn: String },
}

impl EcsSignal {
    pub fn service_arn(&self) -> &str {
        match self {
            Self::Deployment { service_arn, .. } | Self::TaskStopped { service_arn, .. } => service_arn,
        }
    }

    /// Could this event change the verdict of `waiter`? A deployment event always may (another
    /// deployment starting means someone else updated the service). A stopped task matters only
    /// when it belongs to the watched deployment: older tasks stopping is what a rollout does.
    pub fn concerns(&self, waiter: &Waiter) -> bool {
        match self {
            Self::Deployment { .. } => true,
            Self::TaskStopped { started_by, .. } => match (&waiter.deployment_id, started_by) {
                (Some(watched), Some(started_by)) => watched == started_by,
                // Without both ids nothing proves it stale: let the live check decide.
                _ => true,
            },
        }
    }

    /// Does this event report a change the watcher's verdict should already reflect (its
    /// deployment ended, another deployment began, one of its tasks stopped)? Only the watched
    /// deployment's own IN_PROGRESS announces nothing new.
    pub fn announces_a_change(&self, waiter: &Waiter) -> bool {
        match self {
            Self::Deployment { deployment_id, event_name, .. } => {
                event_name != "SERVICE_DEPLOYMENT_IN_PROGRESS" || waiter.deployment_id.as_ref() != Some(deployment_id)
            }
            Self::TaskStopped { .. } => self.concerns(waiter),
        }
    }
}

/// Whether a task event is one of a stop. The stop is decided (desiredStatus STOPPED) long before
/// the task is STOPPED: a target failing its health checks drains for the deregistration delay
/// first (300 s by default). ECS's task lifecycle (ECS Developer Guide, "Amazon ECS task
/// lifecycle") passes a stopping task through DEACTIVATING (load-balancer targets deregistered),
/// STOPPING (containers stopped) and DEPROVISIONING (network interface detached) to STOPPED, and
/// each lastStatus change is a task state change event. EventBridge may lose, repeat or reorder
/// them, so any of them (the first that arrives) wakes the watcher, not only the two that carry
/// STOPPED.
pub fn is_stopping(last: &TaskStatus, desired: &TaskStatus) -> bool {
    *desired == TaskStatus::Stopped
        || matches!(
            last,
            TaskStatus::Deactivating | TaskStatus::Stopping | TaskStatus::Deprovisioning | TaskStatus::Stopped
        )
}

/// Why an event was not routed (logged, never an error: EventBridge would retry it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored(pub String);

/// Reads an EventBridge event from `aws.ecs`. Events of other kinds, of tasks that are not a
/// service's or are not stopping, are ignored with the reason.
pub fn parse_ecs_event(event: &Value) -> Result<EcsSignal, Ignored> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let kind = text(event, "detail-type").unwrap_or_default();
    let detail = event.get("detail").cloned().unwrap_or(Value::Null);
    match kind.as_str() {
        "ECS Deployment State Change" => {
            let service_arn = event
                .get("resources")
                .and_then(Value::as_array)
                .and_then(|r| r.iter().filter_map(Value::as_str).find(|arn| arn.contains(":service/")))
                .map(str::to_string)
                .ok_or_else(|| Ignored("deployment event names no service".into()))?;
            Ok(EcsSignal::Deployment {
                service_arn,
                deployment_id: text(&detail, "deploymentId").unwrap_or_default(),
                event_name: text(&detail, "eventName").unwrap_or_default(),
            })
        }
        "ECS Task State Change" => {
            let last = TaskStatus::from(text(&detail, "lastStatus").unwrap_or_default());
            let desired = TaskStatus::from(text(&detail, "desiredStatus").unwrap_or_default());
            if !is_stopping(&last, &desired) {
                return Err(Ignored(format!("task is not stopping (lastStatus {last}, desiredStatus {desired})")));
            }
            let group = text(&detail, "group").unwrap_or_default();
            let Some(service) = group.strip_prefix("service:") else {
                return Err(Ignored(format!("task group {group:?} is not a service")));
            };
            let cluster_arn = text(&detail, "clusterArn").unwrap_or_default();
            let Some((prefix, cluster)) = cluster_arn.split_once(":cluster/") else {
                return Err(Ignored(format!("task event has no cluster ARN ({cluster_arn:?})")));
            };
            Ok(EcsSignal::TaskStopped {
                service_arn: format!("{prefix}:service/{cluster}/{service}"),
                started_by: text(&detail, "startedBy"),
                task_arn: text(&detail, "taskArn").unwrap_or_default(),
            })
        }
        other => Err(Ignored(format!("not an ECS deployment or task event ({other:?})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SERVICE: &str = "arn:aws:ecs:us-east-1:123456789012:service/prod/api";

    fn waiter(deployment: Option<&str>) -> Waiter {
        Waiter { token: "t".into(), deployment_id: deployment.map(str::to_string), check: json!({}), parked_at: 0.0 }
    }

    fn task_event(last_status: &str, started_by: &str) -> Value {
        json!({"detail-type": "ECS Task State Change", "source": "aws.ecs",
               "resources": ["arn:aws:ecs:us-east-1:123456789012:task/prod/abc"],
               "detail": {"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod", "group": "service:api",
                          "lastStatus": last_status, "startedBy": started_by,
                          "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/prod/abc"}})
    }

    #[test]
    fn a_deployment_event_names_its_service_and_deployment() {
        let event = json!({"detail-type": "ECS Deployment State Change", "source": "aws.ecs", "resources": [SERVICE],
                           "detail": {"eventName": "SERVICE_DEPLOYMENT_COMPLETED", "deploymentId": "ecs-svc/1"}});
        let signal = parse_ecs_event(&event).unwrap();
        assert_eq!(signal.service_arn(), SERVICE);
        assert!(signal.concerns(&waiter(Some("ecs-svc/2"))), "another deployment may mean SUPERSEDED");
    }

    #[test]
    fn a_stopped_task_is_routed_to_its_service() {
        let signal = parse_ecs_event(&task_event("STOPPED", "ecs-svc/1")).unwrap();
        assert_eq!(signal.service_arn(), SERVICE);
        assert!(signal.concerns(&waiter(Some("ecs-svc/1"))));
        assert!(signal.concerns(&waiter(None)), "no id to compare: the live check decides");
    }

    #[test]
    fn a_task_whose_stop_is_decided_wakes_the_watcher_before_it_has_drained() {
        let mut stopping = task_event("RUNNING", "ecs-svc/1");
        stopping["detail"]["desiredStatus"] = json!("STOPPED");
        let signal = parse_ecs_event(&stopping).unwrap();
        assert!(signal.concerns(&waiter(Some("ecs-svc/1"))));
        let mut running = task_event("RUNNING", "ecs-svc/1");
        running["detail"]["desiredStatus"] = json!("RUNNING");
        assert!(parse_ecs_event(&running).is_err());
    }

    #[test]
    fn every_stopping_state_wakes_the_watcher() {
        // ECS's task lifecycle: RUNNING → DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED.
        // The first of these events to arrive may be any of them (EventBridge loses and reorders).
        for last_status in ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"] {
            for desired_status in [Some("STOPPED"), Some("RUNNING"), None] {
                let mut event = task_event(last_status, "ecs-svc/1");
                if let Some(desired) = desired_status {
                    event["detail"]["desiredStatus"] = json!(desired);
                }
                let signal = parse_ecs_event(&event)
                    .unwrap_or_else(|e| panic!("{last_status} (desired {desired_status:?}) ignored: {e:?}"));
                assert_eq!(signal.service_arn(), SERVICE, "{last_status}");
                assert!(signal.concerns(&waiter(Some("ecs-svc/1"))), "{last_status}");
            }
        }
    }

    #[test]
    fn a_stop_decided_before_the_task_ran_wakes_the_watcher() {
        // Scaled in or replaced while still starting: desiredStatus STOPPED, lastStatus not yet RUNNING.
        for last_status in ["PROVISIONING", "PENDING", "ACTIVATING"] {
            let mut event = task_event(last_status, "ecs-svc/1");
            event["detail"]["desiredStatus"] = json!("STOPPED");
            assert!(parse_ecs_event(&event).is_ok(), "{last_status}");
        }
    }

    #[test]
    fn starting_and_running_tasks_do_not_wake_the_watcher() {
        for last_status in ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "", "SOMETHING_NEW"] {
            let mut event = task_event(last_status, "ecs-svc/1");
            event["detail"]["desiredStatus"] = json!("RUNNING");
            assert!(parse_ecs_event(&event).is_err(), "{last_status:?}");
        }
    }

    #[test]
    fn a_task_of_an_older_deployment_stopping_is_stale() {
        let signal = parse_ecs_event(&task_event("STOPPED", "ecs-svc/old")).unwrap();
        assert!(!signal.concerns(&waiter(Some("ecs-svc/new"))));
    }

    #[test]
    fn running_tasks_standalone_tasks_and_other_events_are_ignored() {
        assert!(parse_ecs_event(&task_event("RUNNING", "ecs-svc/1")).is_err());
        let mut standalone = task_event("STOPPED", "me");
        standalone["detail"]["group"] = json!("family:batch");
        assert!(parse_ecs_event(&standalone).is_err());
        assert!(parse_ecs_event(&json!({"detail-type": "ECR Image Action"})).is_err());
        let no_service = json!({"detail-type": "ECS Deployment State Change", "resources": [], "detail": {}});
        assert!(parse_ecs_event(&no_service).is_err());
    }
}
