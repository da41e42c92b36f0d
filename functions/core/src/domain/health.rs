//! The health verdict: is a deployment done, still going, failed, or taken over by someone else?
//!
//! HEALTHY needs both ECS and the load balancer: the deployment is PRIMARY and COMPLETED on ECS
//! *and* every running task of it is `healthy` in every target group of the service. "Service
//! stable" alone proves nothing about the targets.
//!
//! [`assess`] runs the steps below in order; each step either settles the verdict or hands on.

use super::model::{Health, Policy, Rollout, Verdict};
use super::snapshot::{DeploymentSnapshot, LoadBalancerRef, ServiceSnapshot, TargetSnapshot, TaskSnapshot};
use super::status::{DeploymentStatus, RolloutState, StopCode, TargetState, TaskHealth, TaskStatus};
use std::collections::BTreeMap;

/// Everything one check observed.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub service: ServiceSnapshot,
    /// Tasks of the service (running and recently stopped).
    pub tasks: Vec<TaskSnapshot>,
    /// Target health per target group ARN.
    pub targets: BTreeMap<String, Vec<TargetSnapshot>>,
}

/// A settled verdict with its reason (the unhealthy strikes are added by [`assess`]).
type Settled = (Verdict, String);

pub fn assess(observation: &Observation, rollout: &Rollout, policy: &Policy, previous: &Health, now: f64) -> Health {
    let checks = previous.checks + 1;
    let health = |(verdict, reason): Settled, unhealthy_strikes: u64| Health {
        verdict,
        reason,
        unhealthy_strikes,
        checks,
        baked: previous.baked,
        renew_lease: false,
        needs_poll: false,
        recheck_seconds: policy.recheck_seconds.max(1),
        healthy_since: None,
    };
    let service = &observation.service;
    let deployment = match our_deployment(service, rollout) {
        Ok(deployment) => deployment,
        Err(settled) => return health(settled, 0),
    };
    let ours: Vec<&TaskSnapshot> = observation.tasks.iter().filter(|t| belongs_to(t, deployment, rollout)).collect();
    if let Some(settled) = too_many_failed_tasks(&ours, deployment, rollout, policy) {
        return health(settled, 0);
    }
    let running: Vec<&TaskSnapshot> = ours.into_iter().filter(|t| is_running(t)).collect();
    let targets = TargetTally::count(service, &running, &observation.targets, now);
    let strikes = if targets.unhealthy_after_grace.is_empty() { 0 } else { previous.unhealthy_strikes + 1 };
    if strikes >= policy.unhealthy_checks {
        let reason = format!(
            "target(s) unhealthy for {strikes} consecutive checks after the {}s grace period: {}",
            service.health_check_grace_period_seconds,
            targets.unhealthy_after_grace.join(", ")
        );
        return health((Verdict::Failed, reason), strikes);
    }
    let container_unhealthy = running.iter().filter(|t| t.health_status == TaskHealth::Unhealthy).count();
    let complete = service.is_settled(deployment)
        && running.len() as i64 >= deployment.desired_count
        && container_unhealthy == 0
        && targets.all_healthy();
    if complete {
        let lb_note = if targets.expected > 0 {
            format!(", {}/{} targets healthy", targets.healthy, targets.expected)
        } else {
            String::new()
        };
        let reason = format!(
            "deployment {} COMPLETED: {}/{} tasks running{lb_note}",
            deployment.id,
            running.len(),
            deployment.desired_count
        );
        return health((Verdict::Healthy, reason), 0);
    }
    let progress = progress(service, deployment, running.len(), container_unhealthy, &targets);
    let mut pending = health(deadline(rollout, policy, service, previous, progress, now), strikes);
    // ECS announces its deployment's progress and failed tasks; it says nothing more once it
    // calls the deployment COMPLETED, and load balancers publish no health events at all.
    pending.needs_poll = pending.verdict == Verdict::Pending
        && (service.is_settled(deployment) || strikes > 0 || container_unhealthy > 0);
    // The next wait on events ends at the deadline at the latest (its heartbeat).
    let left = seconds_left(rollout, policy, service, previous, now).ceil().max(1.0) as u64;
    pending.recheck_seconds = policy.recheck_seconds.min(left).max(1);
    pending
}

/// Step 1: the deployment this rollout started must still be there, PRIMARY and not FAILED.
/// When it is not, ECS failed or rolled it back (a failure), or someone else updated the service
/// (SUPERSEDED: their change is theirs, deckhand leaves it alone).
fn our_deployment<'a>(service: &'a ServiceSnapshot, rollout: &Rollout) -> Result<&'a DeploymentSnapshot, Settled> {
    let found = match &rollout.deployment_id {
        Some(id) => service.deployments.iter().find(|d| &d.id == id),
        // Without an id (e.g. ECS had already rolled back before we looked), accept the PRIMARY
        // only when it runs the expected revision.
        None => service.primary().filter(|d| d.task_definition == rollout.task_definition),
    };
    if let Some(deployment) = found {
        if deployment.rollout_state == RolloutState::Failed {
            let why = deployment.rollout_state_reason.as_deref().unwrap_or("no reason given");
            return Err((Verdict::Failed, format!("ECS marked deployment {} FAILED: {why}", deployment.id)));
        }
        if deployment.status == DeploymentStatus::Primary {
            return Ok(deployment);
        }
    }
    let ours = rollout.deployment_id.as_deref().unwrap_or("?");
    let Some(now_primary) = service.primary() else {
        return Err((Verdict::Failed, format!("deployment {ours} is gone and the service has no PRIMARY deployment")));
    };
    let back_to_previous = rollout.previous_task_definition.as_deref() == Some(now_primary.task_definition.as_str());
    if back_to_previous {
        // The circuit breaker's rollback (or anyone's) to what ran before: this revision failed.
        return Err((
            Verdict::Failed,
            format!(
                "deployment {ours} of {} was replaced: the service is back on {} (rolled back by ECS)",
                short_td(&rollout.task_definition),
                short_td(&now_primary.task_definition)
            ),
        ));
    }
    Err((
        Verdict::Superseded,
        format!(
            "someone else updated the service during the rollout: deployment {} of {} replaced deckhand's {ours} of {}",
            now_primary.id,
            short_td(&now_primary.task_definition),
            short_td(&rollout.task_definition)
        ),
    ))
}

/// Step 2: new tasks stopping with a real failure (not a scale-in, Spot or manual stop).
fn too_many_failed_tasks(
    ours: &[&TaskSnapshot],
    deployment: &DeploymentSnapshot,
    rollout: &Rollout,
    policy: &Policy,
) -> Option<Settled> {
    let failed: Vec<&&TaskSnapshot> = ours.iter().filter(|t| is_failed_stop(t)).collect();
    let failed_count = (failed.len() as i64).max(deployment.failed_tasks) as u64;
    (failed_count >= policy.max_failed_tasks).then(|| {
        let example = failed.first().map_or(String::new(), |t| format!(" (last: {})", stop_description(t)));
        (
            Verdict::Failed,
            format!("{failed_count} task(s) of {} stopped with a failure{example}", short_td(&rollout.task_definition)),
        )
    })
}

/// Step 3: each running task of the deployment in each target group of the service.
#[derive(Debug, Default)]
struct TargetTally {
    healthy: usize,
    expected: usize,
    unhealthy_after_grace: Vec<String>,
    waiting_on: Vec<String>,
}

impl TargetTally {
    fn count(
        service: &ServiceSnapshot,
        running: &[&TaskSnapshot],
        targets: &BTreeMap<String, Vec<TargetSnapshot>>,
        now: f64,
    ) -> Self {
        let grace = service.health_check_grace_period_seconds as f64;
        let mut tally = Self::default();
        for lb in &service.load_balancers {
            let Some(group) = lb.target_group_arn.as_deref() else { continue };
            let registered = targets.get(group).map(Vec::as_slice).unwrap_or_default();
            for task in running {
                tally.expected += 1;
                match find_target(registered, task, lb) {
                    Some(target) if target.state == TargetState::Healthy => tally.healthy += 1,
                    Some(target)
                        if target.state == TargetState::Unhealthy
                            && task.started_at.is_some_and(|s| now - s >= grace) =>
                    {
                        tally.unhealthy_after_grace.push(format!(
                            "{}:{} in {} ({})",
                            target.id,
                            lb.container_port.unwrap_or(0),
                            short_group(group),
                            target.reason.as_deref().unwrap_or_default()
                        ));
                    }
                    Some(target) => tally.waiting_on.push(format!(
                        "target {} {} in {}",
                        target.id,
                        target.state,
                        short_group(group)
                    )),
                    None => tally.waiting_on.push(format!(
                        "task {} not registered in {}",
                        short_task(&task.arn),
                        short_group(group)
                    )),
                }
            }
        }
        tally
    }

    fn all_healthy(&self) -> bool {
        self.healthy == self.expected && self.unhealthy_after_grace.is_empty()
    }
}

/// The task's target in a group: registered by its awsvpc IPv4 address on the container port.
fn find_target<'a>(
    registered: &'a [TargetSnapshot],
    task: &TaskSnapshot,
    lb: &LoadBalancerRef,
) -> Option<&'a TargetSnapshot> {
    let ip = task.private_ip.as_deref()?;
    registered.iter().find(|t| t.id == ip && (t.port.is_none() || t.port == lb.container_port))
}

/// Step 4: not healthy yet; failed only once the timeout (plus grace, plus a bake that sent the
/// rollout back to waiting) has run out.
fn deadline(
    rollout: &Rollout,
    policy: &Policy,
    service: &ServiceSnapshot,
    previous: &Health,
    status: String,
    now: f64,
) -> Settled {
    let grace = service.health_check_grace_period_seconds as f64;
    let elapsed = now - rollout.started_at;
    if seconds_left(rollout, policy, service, previous, now) <= 0.0 {
        let bake_note = if previous.baked { format!(" + bake {}s", policy.bake_seconds) } else { String::new() };
        let reason = format!(
            "timed out after {elapsed:.0}s (timeout {}s + grace period {grace}s{bake_note}): {status}",
            policy.timeout_seconds
        );
        return (Verdict::Failed, reason);
    }
    (Verdict::Pending, status)
}

/// Seconds until the rollout is out of time (timeout + grace + a bake that sent it back).
fn seconds_left(rollout: &Rollout, policy: &Policy, service: &ServiceSnapshot, previous: &Health, now: f64) -> f64 {
    let grace = service.health_check_grace_period_seconds as f64;
    let baking = if previous.baked { policy.bake_seconds as f64 } else { 0.0 };
    rollout.started_at + policy.timeout_seconds as f64 + grace + baking - now
}

fn progress(
    service: &ServiceSnapshot,
    deployment: &DeploymentSnapshot,
    running: usize,
    container_unhealthy: usize,
    targets: &TargetTally,
) -> String {
    let state = match &deployment.rollout_state {
        RolloutState::Absent => "IN_PROGRESS",
        state => state.as_str(),
    };
    let mut progress = vec![format!("rollout {state}: {running}/{} new tasks running", deployment.desired_count)];
    if targets.expected > 0 {
        progress.push(format!("{}/{} targets healthy", targets.healthy, targets.expected));
    }
    if container_unhealthy > 0 {
        progress.push(format!("{container_unhealthy} task(s) failing container health checks"));
    }
    let older = service.deployments.len().saturating_sub(1);
    if older > 0 {
        progress.push(format!("{older} older deployment(s) still draining"));
    }
    progress.extend(targets.unhealthy_after_grace.iter().map(|t| format!("unhealthy {t}")));
    progress.extend(targets.waiting_on.iter().take(3).cloned());
    progress.join("; ")
}

fn belongs_to(task: &TaskSnapshot, deployment: &DeploymentSnapshot, rollout: &Rollout) -> bool {
    match task.started_by.as_deref() {
        Some(started_by) if started_by.starts_with("ecs-svc/") => started_by == deployment.id,
        _ => task.task_definition == rollout.task_definition,
    }
}

fn is_running(task: &TaskSnapshot) -> bool {
    task.last_status == TaskStatus::Running && task.desired_status == TaskStatus::Running
}

/// A stop that means the revision is bad. Failing a load-balancer or container health check is
/// one whoever stopped the task (ECS stops such tasks itself, as `ServiceSchedulerInitiated`);
/// otherwise a stop made from outside the task (scale-in, a replaced deployment, Spot, StopTask)
/// is not, even though its containers exit 137 or 143; what is left fails on its stop code or
/// on a non-zero exit.
pub fn is_failed_stop(task: &TaskSnapshot) -> bool {
    if task.last_status != TaskStatus::Stopped && task.desired_status != TaskStatus::Stopped {
        return false;
    }
    let failed_health_check =
        task.stopped_reason.as_deref().is_some_and(|r| r.to_ascii_lowercase().contains("health check"));
    if failed_health_check {
        return true;
    }
    if task.stop_code.is_external() {
        return false;
    }
    let by_code = matches!(task.stop_code, StopCode::TaskFailedToStart | StopCode::EssentialContainerExited);
    let by_exit = task.containers.iter().any(|c| c.exit_code.is_some_and(|code| code != 0));
    by_code || by_exit
}

fn stop_description(task: &TaskSnapshot) -> String {
    let exit = task
        .containers
        .iter()
        .find_map(|c| c.exit_code.filter(|code| *code != 0).map(|code| format!("{} exited {code}", c.name)));
    let code = (task.stop_code != StopCode::Absent).then(|| task.stop_code.to_string());
    [code, task.stopped_reason.clone(), exit].into_iter().flatten().collect::<Vec<_>>().join(": ")
}

/// `arn:…:task-definition/web:12` → `web:12`.
pub fn short_td(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn short_group(arn: &str) -> &str {
    arn.split('/').nth(1).unwrap_or(arn)
}

fn short_task(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
