//! The health verdict: is a deployment done, still going, failed, or taken over by someone else?
//!
//! HEALTHY needs both ECS and the load balancer: the deployment is PRIMARY and COMPLETED on ECS
//! *and* every running task of it is `healthy` in every target group of the service. "Service
//! stable" alone proves nothing about the targets.
//!
//! [`assess`] runs the steps below in order; each step either settles the verdict or hands on.

use super::model::{EcsDeploymentProgress, Health, Policy, Rollout, Verdict};
use super::snapshot::{
    DeploymentSnapshot, LoadBalancerRef, ServiceDeploymentSnapshot, ServiceSnapshot, TargetSnapshot, TaskSnapshot,
};
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
    /// ECS-native strategies: the service deployment ECS runs (its lifecycle stage and traffic).
    pub service_deployment: Option<ServiceDeploymentSnapshot>,
}

/// A settled verdict with its reason (the unhealthy strikes are added by [`assess`]).
type Settled = (Verdict, String);

pub fn assess(observation: &Observation, rollout: &Rollout, policy: &Policy, previous: &Health, now: f64) -> Health {
    let ecs_deployment = observation.service_deployment.as_ref().map(|d| EcsDeploymentProgress {
        strategy: observation.service.deployment_strategy.to_string(),
        service_deployment_arn: d.arn.clone(),
        status: d.status.to_string(),
        lifecycle_stage: d.lifecycle_stage.clone(),
        production_traffic_percent: d.production_percent,
        test_traffic_percent: d.test_percent,
    });
    Health { ecs_deployment, ..judge(observation, rollout, policy, previous, now) }
}

fn judge(observation: &Observation, rollout: &Rollout, policy: &Policy, previous: &Health, now: f64) -> Health {
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
        ecs_deployment: None,
        judged_at: None,
        healthy_at: None,
    };
    let service = &observation.service;
    let deployment = match our_deployment(service, rollout, now) {
        Ok(deployment) => deployment,
        // Not listed yet: nothing ECS announces will say when it is, so look again soon.
        Err(settled @ (Verdict::Pending, _)) => return Health { needs_poll: true, ..health(settled, 0) },
        Err(settled) => return health(settled, 0),
    };
    let ours: Vec<&TaskSnapshot> =
        observation.tasks.iter().filter(|t| belongs_to(t, deployment, &rollout.task_definition)).collect();
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
    // ECS-native strategies: done only once ECS's service deployment is (a read of it that lags
    // may show the one before, already ended: then ECS's deployments list decides, as for rolling).
    let ecs_under_way = observation.service_deployment.as_ref().is_some_and(|d| d.status.is_under_way());
    let complete = !ecs_under_way
        && service.is_settled(deployment)
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
    let mut progress = progress(service, deployment, running.len(), container_unhealthy, &targets);
    if let Some(native) = &observation.service_deployment {
        progress.push_str(&format!("; ECS {} deployment {}", service.deployment_strategy, native.describe()));
    }
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

/// How long a deployment deckhand started may be missing from DescribeServices before its
/// absence counts. The ECS API is eventually consistent ("Eventual consistency" in the Amazon ECS
/// API reference: the result of a call that changes a resource may not be visible to the calls
/// right after it), so a DescribeServices just after UpdateService may not list the new deployment
/// yet, and the service then looks exactly as it did before deckhand changed it.
pub const UNSEEN_GRACE_SECONDS: f64 = 30.0;

/// What became of the deployment a rollout watches, when it is not the service's PRIMARY.
#[derive(Debug)]
enum Replaced<'a> {
    /// Not listed yet, and nothing after deckhand's UpdateService either: ECS's reads lag.
    NotYetVisible,
    /// A newer deployment of deckhand's own revision (UpdateService --force-new-deployment by
    /// hand): the service still rolls out exactly what deckhand deployed, so it is watched.
    SameRevision(&'a DeploymentSnapshot),
    /// ECS went back by itself (the circuit breaker or a deployment alarm).
    ByEcs(&'a DeploymentSnapshot),
    /// Someone else's UpdateService: their change, not deckhand's to judge or undo.
    BySomeoneElse(&'a DeploymentSnapshot),
    /// No PRIMARY deployment at all.
    Gone,
}

/// Step 1: the deployment this rollout started must still be there, PRIMARY and not FAILED.
/// When it is not, ECS failed or rolled it back (a failure), someone else updated the service
/// (SUPERSEDED: their change is theirs, deckhand leaves it alone), or ECS does not show it yet
/// (PENDING, for a bounded time).
fn our_deployment<'a>(
    service: &'a ServiceSnapshot,
    rollout: &Rollout,
    now: f64,
) -> Result<&'a DeploymentSnapshot, Settled> {
    let found = match &rollout.deployment_id {
        Some(id) => service.deployments.iter().find(|d| &d.id == id),
        // Without an id (e.g. ECS had already rolled back before we looked), accept the PRIMARY
        // only when it runs the expected revision.
        None => service.primary().filter(|d| d.task_definition == rollout.task_definition),
    };
    let ours = rollout.deployment_id.as_deref().unwrap_or("(id unknown)");
    if let Some(deployment) = found {
        // ECS's own verdict on it: the circuit breaker (rolloutStateReason "ECS deployment circuit
        // breaker: …") or a deployment alarm failed it, whether or not ECS then rolled back.
        if deployment.rollout_state == RolloutState::Failed {
            return Err(failed_by_ecs(deployment));
        }
        if deployment.status == DeploymentStatus::Primary {
            return Ok(deployment);
        }
    }
    match replaced(service, rollout, found.is_some(), now) {
        Replaced::SameRevision(primary) if primary.rollout_state == RolloutState::Failed => {
            Err(failed_by_ecs(primary))
        }
        Replaced::SameRevision(primary) => Ok(primary),
        Replaced::NotYetVisible => Err((
            Verdict::Pending,
            format!(
                "deployment {ours} of {} is not listed by ECS yet (its reads lag its writes); waiting up to {UNSEEN_GRACE_SECONDS:.0}s for it",
                short_td(&rollout.task_definition)
            ),
        )),
        Replaced::Gone => Err((
            Verdict::Failed,
            format!("deployment {ours} is gone and the service has no PRIMARY deployment"),
        )),
        Replaced::ByEcs(primary) => Err((
            Verdict::Failed,
            format!(
                "deployment {ours} of {} was rolled back by ECS: the service is back on {} (deployment {}{})",
                short_td(&rollout.task_definition),
                short_td(&primary.task_definition),
                primary.id,
                primary.rollout_state_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
        )),
        Replaced::BySomeoneElse(primary) => Err((
            Verdict::Superseded,
            format!(
                "someone else updated the service during the rollout: deployment {} of {} replaced deckhand's {ours} of {}",
                primary.id,
                short_td(&primary.task_definition),
                short_td(&rollout.task_definition)
            ),
        )),
    }
}

fn failed_by_ecs(deployment: &DeploymentSnapshot) -> Settled {
    let why = deployment.rollout_state_reason.as_deref().unwrap_or("no reason given");
    (Verdict::Failed, format!("ECS marked deployment {} FAILED: {why}", deployment.id))
}

/// Who replaced the rollout's deployment as PRIMARY. `listed`: the deployment is still in the
/// service's list (ACTIVE, not FAILED), so it was certainly replaced by a newer deployment.
///
/// ECS's own rollback and a person going back by hand both leave the service on the revision
/// that ran before, so the revision alone cannot tell them apart (a person re-applying the
/// previous revision is not a failure of deckhand's). ECS marks what it does: the deployment it
/// gives up on is FAILED (handled before this), and the deployment it rolls back with says so in
/// its rolloutStateReason ("ECS deployment circuit breaker: rolling back to deploymentId …").
/// A deployment of the previous revision that says neither is someone's UpdateService.
fn replaced<'a>(service: &'a ServiceSnapshot, rollout: &Rollout, listed: bool, now: f64) -> Replaced<'a> {
    let waited = now - rollout.started_at;
    let Some(primary) = service.primary() else {
        return if !listed && waited < UNSEEN_GRACE_SECONDS { Replaced::NotYetVisible } else { Replaced::Gone };
    };
    if primary.task_definition == rollout.task_definition {
        return Replaced::SameRevision(primary);
    }
    if listed {
        // Ours is there and not FAILED: whatever came after it, ECS did not give up on ours. Even
        // a PRIMARY that is ECS's rollback went back from someone else's (later) deployment.
        return Replaced::BySomeoneElse(primary);
    }
    if is_ecs_rollback(primary) {
        return Replaced::ByEcs(primary);
    }
    // Created after deckhand's UpdateService (whose time `started_at` precedes it): the service
    // moved on after deckhand's change, whether or not ours ever showed up.
    if primary.created_at.is_some_and(|created| created > rollout.started_at) {
        return Replaced::BySomeoneElse(primary);
    }
    if waited < UNSEEN_GRACE_SECONDS {
        return Replaced::NotYetVisible;
    }
    // Never seen, or gone, for longer than ECS's reads lag, and nothing newer in its place: the
    // service is on what ran before. ECS went back (its rollback completed and ours was dropped
    // from the list before a check saw it) unless the PRIMARY is some other revision.
    if rollout.previous_task_definition.as_deref() == Some(primary.task_definition.as_str()) {
        Replaced::ByEcs(primary)
    } else {
        Replaced::BySomeoneElse(primary)
    }
}

/// ECS's own rollback deployment: its rolloutStateReason is the only mark ECS leaves on it
/// (there is no typed field), e.g. "ECS deployment circuit breaker: rolling back to deploymentId
/// ecs-svc/…". A reason is not an error message: nothing else carries this fact.
pub fn is_ecs_rollback(deployment: &DeploymentSnapshot) -> bool {
    deployment.rollout_state_reason.as_deref().is_some_and(|reason| {
        let reason = reason.to_ascii_lowercase();
        reason.contains("circuit breaker") || reason.contains("rolling back")
    })
}

/// Step 2: new tasks stopping with a real failure (not a scale-in, Spot or manual stop).
///
/// deckhand classifies each task it can see ([`is_failed_stop`]). ECS's own `failedTasks` counts
/// what its circuit breaker counts: by the API reference, a task that "doesn't transition to a
/// RUNNING state" is one, and a scale-in or StopTask of a task still starting is such a task, so
/// the counter may include stops that say nothing about the revision (and it resets once a task
/// runs). It counts only for the failures deckhand cannot see or explain: what is left of it once
/// the external stops of the deployment's tasks are taken off.
fn too_many_failed_tasks(
    ours: &[&TaskSnapshot],
    deployment: &DeploymentSnapshot,
    rollout: &Rollout,
    policy: &Policy,
) -> Option<Settled> {
    let failed: Vec<&&TaskSnapshot> = ours.iter().filter(|t| is_failed_stop(t)).collect();
    let external = ours.iter().filter(|t| is_external_stop(t)).count() as i64;
    let unexplained_by_ecs = (deployment.failed_tasks - external).max(0);
    let failed_count = (failed.len() as i64).max(unexplained_by_ecs) as u64;
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
pub struct TargetTally {
    pub healthy: usize,
    pub expected: usize,
    pub unhealthy_after_grace: Vec<String>,
    pub waiting_on: Vec<String>,
}

impl TargetTally {
    pub fn count(
        service: &ServiceSnapshot,
        running: &[&TaskSnapshot],
        targets: &BTreeMap<String, Vec<TargetSnapshot>>,
        now: f64,
    ) -> Self {
        let grace = service.health_check_grace_period_seconds as f64;
        let mut tally = Self::default();
        for lb in &service.load_balancers {
            // Blue/green pairs: a task counts in whichever group of the pair it is registered in.
            let groups: Vec<&str> = lb.target_groups().collect();
            let Some(&first) = groups.first() else { continue };
            for task in running {
                tally.expected += 1;
                let found = groups.iter().find_map(|group| {
                    let registered = targets.get(*group).map(Vec::as_slice).unwrap_or_default();
                    find_target(registered, task, lb).map(|target| (*group, target))
                });
                let group = found.map_or(first, |(group, _)| group);
                match found.map(|(_, target)| target) {
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
                        groups.iter().map(|g| short_group(g)).collect::<Vec<_>>().join(" or ")
                    )),
                }
            }
        }
        tally
    }

    pub fn all_healthy(&self) -> bool {
        self.healthy == self.expected && self.unhealthy_after_grace.is_empty()
    }
}

/// The task's target in a group. awsvpc: registered by the task's IPv4 address on the container
/// port. Bridge and host network modes (EC2): registered by the instance id on the host port the
/// container bound (a dynamic port in bridge mode), so two tasks on one instance are told apart.
fn find_target<'a>(
    registered: &'a [TargetSnapshot],
    task: &TaskSnapshot,
    lb: &LoadBalancerRef,
) -> Option<&'a TargetSnapshot> {
    if let Some(ip) = task.private_ip.as_deref() {
        return registered.iter().find(|t| t.id == ip && (t.port.is_none() || t.port == lb.container_port));
    }
    let instance = task.ec2_instance_id.as_deref()?;
    let host_port = task.host_port(lb.container_name.as_deref(), lb.container_port)?;
    registered.iter().find(|t| t.id == instance && t.port == Some(host_port))
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
        let ecs_note = if service.ecs_wait_seconds > 0 {
            format!(" + ECS bakes {}s", service.ecs_wait_seconds)
        } else {
            String::new()
        };
        let reason = format!(
            "timed out after {elapsed:.0}s (timeout {}s + grace period {grace}s{ecs_note}{bake_note}): {status}",
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
    // ECS-native strategies shift traffic and bake on ECS's own schedule before they complete.
    let ecs_waits = (service.ecs_wait_seconds + policy.hook_bake_seconds) as f64;
    rollout.started_at + policy.timeout_seconds as f64 + grace + ecs_waits + baking - now
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

/// A task of `deployment`: started by it (`ecs-svc/…`), or, when something else started it,
/// running `task_definition` (the revision the deployment rolls out).
pub(crate) fn belongs_to(task: &TaskSnapshot, deployment: &DeploymentSnapshot, task_definition: &str) -> bool {
    match task.started_by.as_deref() {
        Some(started_by) if started_by.starts_with("ecs-svc/") => started_by == deployment.id,
        _ => task.task_definition == task_definition,
    }
}

pub(crate) fn is_running(task: &TaskSnapshot) -> bool {
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

/// A stop made from outside the task that is not a failure: a scale-in, a replaced deployment,
/// Spot, StopTask.
fn is_external_stop(task: &TaskSnapshot) -> bool {
    let stopping = task.last_status == TaskStatus::Stopped || task.desired_status == TaskStatus::Stopped;
    stopping && task.stop_code.is_external() && !is_failed_stop(task)
}

pub(crate) fn stop_description(task: &TaskSnapshot) -> String {
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
