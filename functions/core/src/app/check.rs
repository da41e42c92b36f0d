//! Check: observe the service, its tasks and its targets, and judge the rollout.

use super::deploy::describe_one;
use super::lock::LockResult;
use crate::domain::gates::{gate_health, judge_alarms};
use crate::domain::health::{assess, Observation};
use crate::domain::hook::hook_failure_key;
use crate::domain::model::{Health, Rollout, Target, Verdict};
use crate::error::Result;
use crate::ports::{Alarms, Ecs, HookFailures, LoadBalancer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The check function's input: the rollout to judge and what the last judgement left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRequest {
    pub target: Target,
    pub rollout: Rollout,
    #[serde(default)]
    pub health: Health,
    #[serde(default, deserialize_with = "crate::runtime::absent_or_parse")]
    pub lock: Option<LockResult>,
    /// The check that ends a bake: if it is not HEALTHY the rollout goes back to waiting, and
    /// from then on its deadline includes the bake.
    #[serde(default)]
    pub after_bake: bool,
    /// A check of the rollback: the alarm gate does not apply (the alarm that caused it may
    /// well still be in ALARM while the known-good revision comes back).
    #[serde(default)]
    pub rollback: bool,
}

pub async fn check(
    ecs: &impl Ecs,
    elb: &impl LoadBalancer,
    alarms: &impl Alarms,
    hook_failures: &impl HookFailures,
    request: &CheckRequest,
    now: f64,
) -> Result<Health> {
    let CheckRequest { target, rollout, health: previous, lock, after_bake, rollback } = request;
    let previous = &Health { baked: previous.baked || *after_bake, ..previous.clone() };
    let service = describe_one(ecs, target).await?;
    let tasks = ecs.service_tasks(&target.cluster_arn, &target.service).await?;
    let mut targets = BTreeMap::new();
    let groups: Vec<&str> = service.load_balancers.iter().flat_map(|lb| lb.target_groups()).collect();
    for group in groups {
        if !targets.contains_key(group) {
            targets.insert(group.to_string(), elb.target_health(group).await?);
        }
    }
    let service_deployment = match service.current_service_deployment.as_deref() {
        Some(arn) if service.deployment_strategy.is_native() => ecs.service_deployment(arn).await?,
        _ => None,
    };
    // With deckhand's lifecycle hook, the gates are judged inside ECS's deployment while it runs
    // (a FAILED answer makes ECS roll back): one judge, not two racing to roll back.
    let hook_judges =
        target.policy.gated_by_hook && service_deployment.as_ref().is_some_and(|d| d.status.is_under_way());
    let observation = Observation { service, tasks, targets, service_deployment };
    let mut health = assess(&observation, rollout, &target.policy, previous, now);
    if health.verdict == Verdict::Failed && target.policy.gated_by_hook {
        // ECS says only that a hook failed; the hook recorded why.
        let recorded = hook_failures.hook_failure(&hook_failure_key(target.service_key())).await?;
        if let Some(failure) = recorded.filter(|f| f.at + 1.0 >= rollout.started_at) {
            health.reason = format!("{}; {}", failure.describe(), health.reason);
        }
    }
    let watched = &target.policy.gates.alarms;
    if !watched.is_empty() && !rollback && !hook_judges && matches!(health.verdict, Verdict::Pending | Verdict::Healthy)
    {
        let verdict = judge_alarms(watched, &alarms.describe_alarms(watched).await?, rollout.started_at);
        health = gate_health(health, &verdict, &target.policy, previous, now);
    }
    health.judged_at = Some(now);
    health.healthy_at = previous.healthy_at.or((health.verdict == Verdict::Healthy).then_some(now));
    health.renew_lease = health.verdict == Verdict::Pending && lock.as_ref().is_some_and(|l| l.needs_renewal(now));
    tracing::info!(service = %target.service_arn, verdict = ?health.verdict, reason = %health.reason, "health checked");
    Ok(health)
}
