//! The lifecycle hook: ECS asks, at a stage of its service deployment, whether to go on.
//! Observes the new revision's tasks, their targets and the service's alarms, and answers with
//! [`judge_hook`]; a FAILED answer is recorded for the rollout's verdict.

use crate::domain::gates::{gates_from_tags, judge_alarms};
use crate::domain::health::{
    belongs_to, is_failed_stop, is_running, stop_description, TargetTally, UNSEEN_GRACE_SECONDS,
};
use crate::domain::hook::{
    hook_failure_key, judge_hook, HookAnswer, HookEvent, HookFailure, HookMemory, HookObservation, HookStatus, NewTasks,
};
use crate::domain::model::Policy;
use crate::domain::snapshot::{ServiceSnapshot, TaskSnapshot};
use crate::domain::status::TaskHealth;
use crate::domain::track::policy_from_tags;
use crate::error::{DeckhandError, Result};
use crate::ports::{Alarms, Ecs, HookFailures, LoadBalancer};
use std::collections::BTreeMap;

/// How soon to ask again when ECS does not show the service deployment yet (its reads lag).
const UNSEEN_CALL_BACK_SECONDS: u64 = 5;
/// How soon to ask again after a throttled or transient failure of a read.
const TRANSIENT_CALL_BACK_SECONDS: u64 = 10;

pub async fn answer_hook(
    ecs: &impl Ecs,
    elb: &impl LoadBalancer,
    alarms: &impl Alarms,
    failures: &impl HookFailures,
    defaults: &Policy,
    event: &HookEvent,
    now: f64,
) -> Result<HookAnswer> {
    let answer = match judge(ecs, elb, alarms, defaults, event, now).await {
        Ok(answer) => answer,
        // An error answer is FAILED to ECS, which rolls back: a throttled or failed read must
        // not roll back a healthy deployment, so the hook asks to be called again instead.
        // ECS's hook timeout bounds how long that can go on.
        Err(error @ (DeckhandError::AwsThrottled(_) | DeckhandError::AwsTransient(_))) => {
            let memory =
                event.memory().unwrap_or(HookMemory { stage: event.lifecycle_stage.clone(), since: now, strikes: 0 });
            HookAnswer::look_again(TRANSIENT_CALL_BACK_SECONDS, &memory, format!("could not judge yet: {error}"))
        }
        Err(error) => return Err(error),
    };
    let service_arn = &event.execution_details.service_arn;
    if answer.hook_status == HookStatus::Failed && !service_arn.is_empty() {
        let failure = HookFailure {
            service_deployment_arn: event.resource_arn.clone(),
            stage: event.lifecycle_stage.clone(),
            reason: answer.reason.clone(),
            at: now,
        };
        // The answer is what rolls back; a verdict without the hook's reason still says that ECS
        // rolled back after a hook failure.
        if let Err(error) = failures.record_hook_failure(&hook_failure_key(service_arn), &failure).await {
            tracing::warn!(service = %service_arn, %error, "could not record the hook's failure");
        }
    }
    tracing::info!(
        service = %service_arn,
        service_deployment = %event.resource_arn,
        stage = %event.lifecycle_stage,
        production_percent = ?event.production_percent(),
        hook_status = ?answer.hook_status,
        call_back_delay = ?answer.call_back_delay,
        reason = %answer.reason,
        "lifecycle hook answered"
    );
    Ok(answer)
}

async fn judge(
    ecs: &impl Ecs,
    elb: &impl LoadBalancer,
    alarms: &impl Alarms,
    defaults: &Policy,
    event: &HookEvent,
    now: f64,
) -> Result<HookAnswer> {
    let memory = event.memory();
    let since = memory.as_ref().map_or(now, |m| m.since);
    let not_seen_yet = |what: String| {
        if now - since < UNSEEN_GRACE_SECONDS {
            let memory = HookMemory { stage: event.lifecycle_stage.clone(), since, strikes: 0 };
            HookAnswer::look_again(UNSEEN_CALL_BACK_SECONDS, &memory, format!("{what} (ECS's reads lag its writes)"))
        } else {
            HookAnswer::failed(format!("{what} after {UNSEEN_GRACE_SECONDS:.0}s"))
        }
    };
    let Some(deployment) = ecs.service_deployment(&event.resource_arn).await? else {
        return Ok(not_seen_yet(format!("ECS does not show service deployment {}", event.resource_arn)));
    };
    let service_arn =
        if deployment.service_arn.is_empty() { &event.execution_details.service_arn } else { &deployment.service_arn };
    let cluster =
        if deployment.cluster_arn.is_empty() { cluster_of(service_arn) } else { deployment.cluster_arn.clone() };
    let Some(service) = ecs
        .describe_services(&cluster, std::slice::from_ref(service_arn))
        .await?
        .into_iter()
        .find(ServiceSnapshot::is_active)
    else {
        return Ok(not_seen_yet(format!("ECS does not show service {service_arn}")));
    };
    let (mut policy, _) = policy_from_tags(defaults, &service.tags);
    policy.gates = match gates_from_tags(&service.tags) {
        Ok(gates) => gates,
        // A gate asked for and unreadable must not become no gate.
        Err(why) => return Ok(HookAnswer::failed(format!("the service's release gates are malformed: {why}"))),
    };
    let tasks = new_tasks(ecs, elb, &service, now).await?;
    let alarms = if policy.gates.alarms.is_empty() {
        None
    } else {
        let observed = alarms.describe_alarms(&policy.gates.alarms).await?;
        Some(judge_alarms(&policy.gates.alarms, &observed, deployment.started_at.unwrap_or(since)))
    };
    let observation = HookObservation {
        stage: event.stage(),
        deployment_status: deployment.status,
        tasks,
        alarms,
        grace_seconds: service.health_check_grace_period_seconds,
    };
    Ok(judge_hook(&observation, &policy, memory, now))
}

/// The new revision's tasks (those of the PRIMARY deployment: ECS's green) and their targets.
async fn new_tasks(ecs: &impl Ecs, elb: &impl LoadBalancer, service: &ServiceSnapshot, now: f64) -> Result<NewTasks> {
    let Some(green) = service.primary() else { return Ok(NewTasks::default()) };
    let all = ecs.service_tasks(&service.cluster_arn, &service.name).await?;
    let ours: Vec<&TaskSnapshot> = all.iter().filter(|task| belongs_to(task, green, &green.task_definition)).collect();
    let running: Vec<&TaskSnapshot> = ours.iter().copied().filter(|task| is_running(task)).collect();
    let mut targets = BTreeMap::new();
    for group in service.load_balancers.iter().flat_map(|lb| lb.target_groups()) {
        if !targets.contains_key(group) {
            targets.insert(group.to_string(), elb.target_health(group).await?);
        }
    }
    Ok(NewTasks {
        desired: green.desired_count,
        running: running.len(),
        failed: ours.iter().filter(|task| is_failed_stop(task)).map(|task| stop_description(task)).collect(),
        container_unhealthy: running.iter().filter(|task| task.health_status == TaskHealth::Unhealthy).count(),
        targets: TargetTally::count(service, &running, &targets, now),
    })
}

/// `arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME` → the cluster's ARN.
fn cluster_of(service_arn: &str) -> String {
    match service_arn.split_once(":service/") {
        Some((prefix, rest)) => {
            format!("{prefix}:cluster/{}", rest.split('/').next().unwrap_or_default())
        }
        None => String::new(),
    }
}

#[cfg(test)]
#[path = "hook_tests.rs"]
mod tests;
