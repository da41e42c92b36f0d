//! deckhand as an ECS lifecycle hook: its gates judged *inside* ECS's traffic shift.
//!
//! ECS invokes a Lambda hook at the lifecycle stages it is configured for and waits for its
//! answer: `hookStatus` SUCCEEDED (go on), FAILED (ECS rolls back) or IN_PROGRESS (ask again
//! after `callBackDelay` seconds, 30 by default), with `hookDetails` handed back on the next
//! call of the same hook ("Lambda hooks for Amazon ECS service deployments",
//! <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html>).
//!
//! What deckhand answers, per stage:
//! - before the new tasks exist (RECONCILE_SERVICE, PRE_SCALE_UP): SUCCEEDED, nothing to judge;
//! - from POST_SCALE_UP on: FAILED when the new revision's tasks stop with failures
//!   (`deckhand:max-failed-tasks`), a watched alarm fired since ECS started the deployment
//!   (`deckhand:alarms`) or a new target stays unhealthy after the grace period; IN_PROGRESS
//!   until every new task is running and healthy in its target group (FAILED when that takes
//!   longer than the timeout and grace period);
//! - POST_PRODUCTION_TRAFFIC_SHIFT: deckhand's bake (`deckhand:bake`), with all production
//!   traffic on the new revision and the old one still up, so a rollback is one listener change:
//!   IN_PROGRESS until the bake is over, the gates checked at every call;
//! - while ECS rolls back or stops the deployment (it calls the traffic-shift hooks again to
//!   shift traffic back): SUCCEEDED, never stand in the way of a rollback.

use super::gates::AlarmVerdict;
use super::health::TargetTally;
use super::model::Policy;
use super::snapshot::LifecycleHookRef;
use super::status::{LifecycleStage, ServiceDeploymentStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The stages `deckhand track --hook` configures: after test traffic reaches the new revision,
/// at each production shift, and after all production traffic moved (deckhand's bake).
pub const HOOK_STAGES: [&str; 3] =
    ["POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"];

/// What ECS sends a Lambda lifecycle hook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookEvent {
    pub execution_id: String,
    pub lifecycle_stage: String,
    /// The service deployment.
    pub resource_arn: String,
    #[serde(default)]
    pub execution_details: ExecutionDetails,
    /// The hook configuration's own details plus what deckhand handed back last time.
    #[serde(default)]
    pub hook_details: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDetails {
    #[serde(default)]
    pub service_arn: String,
    #[serde(default)]
    pub target_service_revision_arn: String,
    /// Service revision ARN → percentage of test traffic.
    #[serde(default)]
    pub test_traffic_weights: BTreeMap<String, f64>,
    /// Service revision ARN → percentage of production traffic.
    #[serde(default)]
    pub production_traffic_weights: BTreeMap<String, f64>,
}

impl HookEvent {
    /// Whether an invocation's payload is ECS calling a lifecycle hook (the hook function shares
    /// its binary with the check function).
    pub fn is_hook_event(payload: &Value) -> bool {
        ["executionId", "lifecycleStage", "resourceArn"]
            .iter()
            .all(|key| payload.get(key).is_some_and(Value::is_string))
    }

    pub fn stage(&self) -> LifecycleStage {
        self.lifecycle_stage.as_str().into()
    }

    /// The share of production traffic ECS sends to the new revision at this call, if it said.
    pub fn production_percent(&self) -> Option<f64> {
        let details = &self.execution_details;
        details.production_traffic_weights.get(&details.target_service_revision_arn).copied()
    }

    /// What deckhand remembered at its last answer to this hook, if that was at the same stage.
    pub fn memory(&self) -> Option<HookMemory> {
        let details = self.hook_details.as_ref()?;
        let memory = HookMemory {
            stage: details.get(MEMORY_STAGE)?.as_str()?.to_string(),
            since: details.get(MEMORY_SINCE)?.as_f64()?,
            strikes: details.get(MEMORY_STRIKES).and_then(Value::as_u64).unwrap_or(0),
        };
        (memory.stage == self.lifecycle_stage).then_some(memory)
    }
}

const MEMORY_STAGE: &str = "deckhandStage";
const MEMORY_SINCE: &str = "deckhandSince";
const MEMORY_STRIKES: &str = "deckhandStrikes";

/// What deckhand keeps between the calls of one hook at one stage (in `hookDetails`, under keys
/// of its own so that the configuration's details are left alone).
#[derive(Debug, Clone, PartialEq)]
pub struct HookMemory {
    pub stage: String,
    /// When deckhand was first asked at this stage (epoch seconds): the start of its deadline
    /// and of its bake.
    pub since: f64,
    /// Consecutive calls that saw a new target unhealthy after the grace period.
    pub strikes: u64,
}

impl HookMemory {
    fn details(&self) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert(MEMORY_STAGE.into(), Value::from(self.stage.clone()));
        details.insert(MEMORY_SINCE.into(), Value::from(self.since));
        details.insert(MEMORY_STRIKES.into(), Value::from(self.strikes));
        details
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HookStatus {
    Succeeded,
    Failed,
    InProgress,
}

/// The hook's answer to ECS. `reason` is deckhand's own (logged and, for FAILED, recorded for
/// the rollout's verdict); ECS reads only the documented fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookAnswer {
    pub hook_status: HookStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_back_delay: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_details: Option<Map<String, Value>>,
    #[serde(skip)]
    pub reason: String,
}

impl HookAnswer {
    pub fn succeeded(reason: impl Into<String>) -> Self {
        Self { hook_status: HookStatus::Succeeded, call_back_delay: None, hook_details: None, reason: reason.into() }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        Self { hook_status: HookStatus::Failed, call_back_delay: None, hook_details: None, reason: reason.into() }
    }

    pub fn look_again(delay: u64, memory: &HookMemory, reason: String) -> Self {
        Self {
            hook_status: HookStatus::InProgress,
            call_back_delay: Some(delay.max(1)),
            hook_details: Some(memory.details()),
            reason,
        }
    }
}

/// A failure the hook answered FAILED for, kept next to the service's record so that the
/// rollout's verdict can say why ECS rolled back ("hook execution failure(s) detected" is all
/// ECS says).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookFailure {
    pub service_deployment_arn: String,
    pub stage: String,
    pub reason: String,
    /// Epoch seconds.
    pub at: f64,
}

impl HookFailure {
    /// How a verdict quotes it.
    pub fn describe(&self) -> String {
        format!("deckhand's lifecycle hook failed the deployment at {}: {}", self.stage, self.reason)
    }
}

/// The state table key of a service's last hook failure (next to its ledger record).
pub fn hook_failure_key(service_key: &str) -> String {
    format!("hook#{service_key}")
}

/// What is wrong with deckhand's hook as a service has it (nothing: empty): stages it misses
/// and a role other than the stack's (which ECS must be able to assume and invoke it with).
pub fn hook_setup_problems(hook: &LifecycleHookRef, stack_role: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let missing: Vec<&str> =
        HOOK_STAGES.iter().copied().filter(|stage| !hook.stages.iter().any(|s| s == stage)).collect();
    if !missing.is_empty() {
        problems.push(format!("it does not run at {} (deckhand track --hook sets all three)", missing.join(", ")));
    }
    match (hook.role_arn.as_deref(), stack_role) {
        (None, _) => problems.push("it has no roleArn: ECS cannot invoke it".to_string()),
        (Some(role), Some(expected)) if role != expected => problems.push(format!(
            "ECS invokes it as {role}, not the stack's HookRoleArn {expected}: that role must trust ecs.amazonaws.com and allow lambda:InvokeFunction on the hook"
        )),
        _ => {}
    }
    problems
}

/// The new revision's tasks, as the hook sees them at one call.
#[derive(Debug, Default)]
pub struct NewTasks {
    pub desired: i64,
    pub running: usize,
    /// Descriptions of the new tasks that stopped with a failure.
    pub failed: Vec<String>,
    pub container_unhealthy: usize,
    pub targets: TargetTally,
}

/// Everything one call of the hook observed.
#[derive(Debug)]
pub struct HookObservation {
    pub stage: LifecycleStage,
    pub deployment_status: ServiceDeploymentStatus,
    pub tasks: NewTasks,
    /// The alarm gate's verdict (None when the service watches no alarm).
    pub alarms: Option<AlarmVerdict>,
    pub grace_seconds: u64,
}

/// The hook's answer at one call.
pub fn judge_hook(observation: &HookObservation, policy: &Policy, memory: Option<HookMemory>, now: f64) -> HookAnswer {
    let stage = &observation.stage;
    let memory = memory.unwrap_or(HookMemory { stage: stage.as_str().to_string(), since: now, strikes: 0 });
    if matches!(
        observation.deployment_status,
        ServiceDeploymentStatus::RollbackRequested
            | ServiceDeploymentStatus::RollbackInProgress
            | ServiceDeploymentStatus::StopRequested
            | ServiceDeploymentStatus::Stopped
    ) {
        return HookAnswer::succeeded(format!(
            "ECS is {} the deployment: the hook does not stand in its way",
            if matches!(
                observation.deployment_status,
                ServiceDeploymentStatus::StopRequested | ServiceDeploymentStatus::Stopped
            ) {
                "stopping"
            } else {
                "rolling back"
            }
        ));
    }
    if matches!(stage, LifecycleStage::ReconcileService | LifecycleStage::PreScaleUp) {
        return HookAnswer::succeeded(format!("{stage}: the new revision has no tasks yet, nothing to judge"));
    }
    let tasks = &observation.tasks;
    if tasks.failed.len() as u64 >= policy.max_failed_tasks {
        let last = tasks.failed.last().map(|t| format!(" (last: {t})")).unwrap_or_default();
        return HookAnswer::failed(format!("{} new task(s) stopped with a failure{last}", tasks.failed.len()));
    }
    if let Some(failure) = observation.alarms.as_ref().and_then(|a| a.failure.clone()) {
        return HookAnswer::failed(failure);
    }
    let unhealthy = &tasks.targets.unhealthy_after_grace;
    let strikes = if unhealthy.is_empty() { 0 } else { memory.strikes + 1 };
    if strikes >= policy.unhealthy_checks {
        return HookAnswer::failed(format!(
            "target(s) unhealthy for {strikes} consecutive calls after the {}s grace period: {}",
            observation.grace_seconds,
            unhealthy.join(", ")
        ));
    }
    let memory = HookMemory { strikes, ..memory };
    let waited = now - memory.since;
    let healthy =
        tasks.running as i64 >= tasks.desired && tasks.container_unhealthy == 0 && tasks.targets.all_healthy();
    if !healthy {
        let allowed = (policy.timeout_seconds + observation.grace_seconds) as f64;
        let progress = tasks.progress();
        if waited >= allowed {
            return HookAnswer::failed(format!(
                "the new tasks were not healthy {waited:.0}s into {stage} (timeout {}s + grace period {}s): {progress}",
                policy.timeout_seconds, observation.grace_seconds
            ));
        }
        let delay = policy.poll_seconds.min((allowed - waited).ceil() as u64);
        return HookAnswer::look_again(delay, &memory, format!("{stage}: waiting for the new tasks: {progress}"));
    }
    if *stage == LifecycleStage::PostProductionTrafficShift && waited < policy.bake_seconds as f64 {
        let left = (policy.bake_seconds as f64 - waited).ceil() as u64;
        return HookAnswer::look_again(
            policy.poll_seconds.min(left),
            &memory,
            format!(
                "baking with all production traffic on the new revision: {waited:.0}s of {}s, gates hold",
                policy.bake_seconds
            ),
        );
    }
    let baked = if *stage == LifecycleStage::PostProductionTrafficShift && policy.bake_seconds > 0 {
        format!(", baked {}s", policy.bake_seconds)
    } else {
        String::new()
    };
    HookAnswer::succeeded(format!("{stage}: {}{baked}", tasks.progress()))
}

impl NewTasks {
    fn progress(&self) -> String {
        let mut parts = vec![format!("{}/{} new tasks running", self.running, self.desired)];
        if self.targets.expected > 0 {
            parts.push(format!("{}/{} targets healthy", self.targets.healthy, self.targets.expected));
        }
        if self.container_unhealthy > 0 {
            parts.push(format!("{} failing container health checks", self.container_unhealthy));
        }
        parts.extend(self.targets.waiting_on.iter().take(3).cloned());
        parts.join("; ")
    }
}

#[cfg(test)]
#[path = "hook_tests.rs"]
mod tests;
