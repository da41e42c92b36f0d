//! The documents that flow between the functions through the state machine (camelCase JSON).

use super::gates::Gates;
use serde::{Deserialize, Serialize};

/// How a service's deployment is judged; defaults come from the stack, overrides from tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Seconds between two health checks while a rollout is in a phase ECS announces nothing
    /// about (ECS says COMPLETED but targets are still `initial`, or targets are failing).
    pub poll_seconds: u64,
    /// Longest wait on ECS events before the rollout is checked anyway (a lost event, or a
    /// deadline that passes while nothing happens); the task token's heartbeat.
    #[serde(default = "default_recheck_seconds")]
    pub recheck_seconds: u64,
    /// Time allowed for the rollout to become healthy, on top of the health-check grace period.
    pub timeout_seconds: u64,
    /// Time to keep watching a healthy deployment before it counts as known-good.
    pub bake_seconds: u64,
    /// New-revision tasks that may stop with a failure before the deployment is failed.
    pub max_failed_tasks: u64,
    /// Consecutive checks a new target may be `unhealthy` (after the grace period) before failing.
    pub unhealthy_checks: u64,
    /// The alarm and approval gates the service's tags ask for.
    #[serde(default)]
    pub gates: Gates,
    /// ECS-native strategies with deckhand's lifecycle hook on the service: the gates are judged
    /// by the hook inside ECS's deployment (ECS rolls back on its FAILED), not by the check.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gated_by_hook: bool,
    /// The bake the hook runs inside ECS's deployment (at POST_PRODUCTION_TRAFFIC_SHIFT, all
    /// production traffic on the new revision, the old one still up) instead of after it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hook_bake_seconds: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn default_recheck_seconds() -> u64 {
    300
}

impl Policy {
    /// The RFC 3339 time (whole seconds, UTC) when a rollout started at `started_at` is out of
    /// time even counting its grace period and bake: the bound for checks that could not tell.
    pub fn deadline(&self, started_at: f64, grace_seconds: u64) -> String {
        let at =
            started_at + (self.timeout_seconds + grace_seconds + self.bake_seconds + self.hook_bake_seconds) as f64;
        aws_smithy_types::DateTime::from_secs(at.ceil() as i64)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Deploy,
    Rollback,
}

/// What started a deployment, as its events say (`trigger`): an ECR push, a person's
/// StartExecution (deploy or roll back), or the scheduled sweep that deploys a missed push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    #[default]
    Push,
    Manual,
    Reconcile,
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
    /// Targets planned before `trigger` existed came from pushes or people; push is the default.
    #[serde(default)]
    pub trigger: Trigger,
    #[serde(default)]
    pub force_new_deployment: bool,
    pub policy: Policy,
    /// dryRun only: what would change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<Vec<String>>,
    /// Set when the plan refuses to deploy this service (e.g. deckhand cannot verify its
    /// rollouts): the service is reported SKIPPED with this reason and left untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// The pushed `REPOSITORY:TAG` this deployment comes from, re-resolved before the service is
    /// changed so that an older push never lands after a newer one of the same tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_tag: Option<PushedTag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushedTag {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// Every container this push changes tracks the tag exactly: then what the tag names when
    /// the service is changed decides which push is newest (a re-tag of an older image keeps
    /// ECR's first `imagePushedAt`), not the push times.
    #[serde(default)]
    pub exact: bool,
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
    /// The ARNs of the targets' services: what the fan-out hands each service's own execution
    /// (see [`Plan::for_fan_out`]).
    #[serde(default)]
    pub services: Vec<String>,
    /// When the push happened (ECR's `imagePushedAt`), found once for every service.
    /// Always present (null for manual requests): the fan-out passes it on by path.
    #[serde(default)]
    pub pushed_at: Option<f64>,
}

/// Warnings kept in a plan: one per misconfigured service could otherwise grow the payload
/// without bound (Step Functions refuses state payloads over 256 KiB).
pub const MAX_PLAN_WARNINGS: usize = 20;

impl Plan {
    pub fn empty(max_concurrency: u64) -> Self {
        Plan {
            action: PlanAction::Nothing,
            dry_run: false,
            reason: String::new(),
            targets: vec![],
            max_concurrency,
            warnings: vec![],
            services: vec![],
            pushed_at: None,
        }
    }

    pub fn with_warnings(mut self, mut warnings: Vec<String>) -> Self {
        if warnings.len() > MAX_PLAN_WARNINGS {
            let more = warnings.len() - MAX_PLAN_WARNINGS + 1;
            warnings.truncate(MAX_PLAN_WARNINGS - 1);
            warnings.push(format!("… and {more} more warnings"));
        }
        self.warnings = warnings;
        self
    }

    /// The plan as the fan-out carries it: service ARNs instead of whole targets (each service's
    /// execution plans its own target again), except in a dry run, whose targets are the answer.
    pub fn for_fan_out(mut self) -> Self {
        self.services = self.targets.iter().map(|t| t.service_arn.clone()).collect();
        if !self.dry_run {
            self.targets.clear();
        }
        self
    }
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
    /// RFC 3339 time after which checks that could not tell (a timed-out or throttled check)
    /// stop being "don't know yet": the timeout, the grace period and the bake after `started_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
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
    /// A newer push of the same tag exists, or (for a rollback) someone else's deployment took
    /// the service over; nothing was changed.
    Superseded,
    /// A manual rollback found no revision to go back to; nothing was changed.
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    #[default]
    Pending,
    Healthy,
    Failed,
    /// Someone else updated the service during the rollout: not deckhand's to judge or undo.
    Superseded,
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
    /// The bake is over and sent the rollout back to waiting: its time is added to the deadline.
    #[serde(default)]
    pub baked: bool,
    /// The service lock's lease is past half its length: renew it before waiting again.
    #[serde(default)]
    pub renew_lease: bool,
    /// Still pending, in a phase that produces no ECS event (ECS COMPLETED while targets are
    /// `initial`, targets or containers failing checks): poll instead of waiting on events.
    #[serde(default)]
    pub needs_poll: bool,
    /// The longest the next wait on ECS events may last: the heartbeat that re-checks, never
    /// past the rollout's deadline.
    #[serde(default = "default_recheck_seconds")]
    pub recheck_seconds: u64,
    /// A rollout with an alarm gate bakes by watching: when it first looked HEALTHY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<f64>,
    /// ECS-native strategies: where ECS's service deployment was at this check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_deployment: Option<EcsDeploymentProgress>,
    /// When this judgement was made (epoch seconds): a failure's time to detect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_at: Option<f64>,
    /// When the rollout was first judged HEALTHY (kept through the bake): push to healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_at: Option<f64>,
}

/// ECS-native strategies: ECS's service deployment as a check saw it (events carry the last one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EcsDeploymentProgress {
    /// BLUE_GREEN, LINEAR or CANARY.
    pub strategy: String,
    pub service_deployment_arn: String,
    /// The service deployment's status (IN_PROGRESS, SUCCESSFUL, ROLLBACK_SUCCESSFUL, …).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<String>,
    /// The share of production traffic on the new revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_traffic_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_traffic_percent: Option<f64>,
}

impl Health {
    /// Whether a watcher parked on ECS events should be woken with this observation: anything
    /// the state machine acts on (a verdict, a lease to renew, a phase that needs polling).
    pub fn wakes_the_watcher(&self) -> bool {
        self.verdict != Verdict::Pending || self.renew_lease || self.needs_poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_counts_timeout_grace_and_bake_in_whole_utc_seconds() {
        let policy = Policy {
            poll_seconds: 5,
            recheck_seconds: 60,
            timeout_seconds: 600,
            bake_seconds: 120,
            max_failed_tasks: 2,
            unhealthy_checks: 3,
            gates: Gates::default(),
            gated_by_hook: false,
            hook_bake_seconds: 0,
        };
        // 2026-11-29T00:00:00Z + 600 + 180 + 120 s (+ the fraction rounded up).
        assert_eq!(policy.deadline(1_795_910_400.2, 180), "2026-11-29T00:15:01Z");
    }
}
