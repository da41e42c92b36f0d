//! The documents that flow between the functions through the state machine (camelCase JSON).

use serde::{Deserialize, Serialize};

/// How a service's deployment is judged; defaults come from the stack, overrides from tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Seconds between two health checks of a rollout.
    pub poll_seconds: u64,
    /// Time allowed for the rollout to become healthy, on top of the health-check grace period.
    pub timeout_seconds: u64,
    /// Time to keep watching a healthy deployment before it counts as known-good.
    pub bake_seconds: u64,
    /// New-revision tasks that may stop with a failure before the deployment is failed.
    pub max_failed_tasks: u64,
    /// Consecutive checks a new target may be `unhealthy` (after the grace period) before failing.
    pub unhealthy_checks: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Deploy,
    Rollback,
}

/// A container whose image changes, and to what (pinned by digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerChange {
    pub name: String,
    pub image: String,
}

/// One service to deploy (or roll back): the unit of the state machine's Map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub cluster: String,
    pub cluster_arn: String,
    pub service: String,
    pub service_arn: String,
    pub mode: Mode,
    /// Human-readable summary of what is deployed, e.g. `web=…/flask@sha256:…`.
    pub image: String,
    #[serde(default)]
    pub containers: Vec<ContainerChange>,
    /// The service's task definition when the plan was made.
    pub task_definition: String,
    /// When the image was pushed (epoch seconds); orders pushes of the same tag.
    pub pushed_at: f64,
    /// Identity of the triggering request: the EventBridge event id, or the execution for manual runs.
    pub request_id: String,
    #[serde(default)]
    pub force_new_deployment: bool,
    pub policy: Policy,
    /// dryRun only: what would change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<Vec<String>>,
}

impl Target {
    /// The key of the service in the state table (lock and known-good history).
    pub fn service_key(&self) -> &str {
        &self.service_arn
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    Deploy,
    Rollback,
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub action: PlanAction,
    pub dry_run: bool,
    pub reason: String,
    pub targets: Vec<Target>,
    /// How many services the state machine deploys at once.
    pub max_concurrency: u64,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// What the deploy (or rollback) step started, as the health checks need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub outcome: RolloutOutcome,
    pub task_definition: String,
    /// The revision that was COMPLETED on the service when this deployment started, if any.
    #[serde(default)]
    pub previous_task_definition: Option<String>,
    /// The ECS deployment id (`ecs-svc/…`) created by UpdateService.
    #[serde(default)]
    pub deployment_id: Option<String>,
    /// Epoch seconds when the deployment was started.
    pub started_at: f64,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RolloutOutcome {
    /// A new deployment was started and must be watched.
    Started,
    /// The service already runs exactly this; nothing was changed.
    UpToDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    #[default]
    Pending,
    Healthy,
    Failed,
}

/// The health watch's state, carried from one check to the next by the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    #[serde(default)]
    pub verdict: Verdict,
    #[serde(default)]
    pub reason: String,
    /// Consecutive checks that saw a new target unhealthy after its grace period.
    #[serde(default)]
    pub unhealthy_strikes: u64,
    #[serde(default)]
    pub checks: u64,
}
