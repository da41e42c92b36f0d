//! Check: observe the service, its tasks and its targets, and judge the rollout.

use super::deploy::describe_one;
use super::lock::LockResult;
use crate::domain::health::{assess, Observation};
use crate::domain::model::{Health, Rollout, Target, Verdict};
use crate::error::Result;
use crate::ports::{Ecs, LoadBalancer};
use std::collections::BTreeMap;

pub async fn check(
    ecs: &impl Ecs,
    elb: &impl LoadBalancer,
    target: &Target,
    rollout: &Rollout,
    previous: &Health,
    lock: Option<&LockResult>,
    now: f64,
) -> Result<Health> {
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
    health.renew_lease = health.verdict == Verdict::Pending && lock.is_some_and(|l| l.needs_renewal(now));
    tracing::info!(service = %target.service_arn, verdict = ?health.verdict, reason = %health.reason, "health checked");
    Ok(health)
}
