//! Check: observe the service, its tasks and its targets, and judge the rollout.

use super::deploy::describe_one;
use super::lock::LockResult;
use crate::domain::health::{assess, Observation};
use crate::domain::model::{Health, Rollout, Target, Verdict};
use crate::error::Result;
use crate::ports::{Ecs, LoadBalancer};
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
}

pub async fn check(ecs: &impl Ecs, elb: &impl LoadBalancer, request: &CheckRequest, now: f64) -> Result<Health> {
    let CheckRequest { target, rollout, health: previous, lock, after_bake } = request;
    let previous = &Health { baked: previous.baked || *after_bake, ..previous.clone() };
    let service = describe_one(ecs, target).await?;
    let tasks = ecs.service_tasks(&target.cluster_arn, &target.service).await?;
    let mut targets = BTreeMap::new();
    let groups: Vec<&str> = service.load_balancers.iter().filter_map(|lb| lb.target_group_arn.as_deref()).collect();
    for group in groups {
        if !targets.contains_key(group) {
            targets.insert(group.to_string(), elb.target_health(group).await?);
        }
    }
    let observation = Observation { service, tasks, targets };
    let mut health = assess(&observation, rollout, &target.policy, previous, now);
    health.renew_lease = health.verdict == Verdict::Pending && lock.as_ref().is_some_and(|l| l.needs_renewal(now));
    tracing::info!(service = %target.service_arn, verdict = ?health.verdict, reason = %health.reason, "health checked");
    Ok(health)
}
