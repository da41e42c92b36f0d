//! The health verdict: is a deployment done, still going, or failed?
//!
//! HEALTHY needs both ECS and the load balancer: the deployment is PRIMARY and COMPLETED on ECS
//! *and* every running task of it is `healthy` in every target group of the service. "Service
//! stable" alone proves nothing about the targets.

use super::model::{Health, Policy, Rollout, Verdict};
use super::snapshot::{DeploymentSnapshot, ServiceSnapshot, TargetSnapshot, TaskSnapshot};
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

pub fn assess(observation: &Observation, rollout: &Rollout, policy: &Policy, previous: &Health, now: f64) -> Health {
    let checks = previous.checks + 1;
    let verdict = |verdict: Verdict, reason: String, unhealthy_strikes: u64| Health {
        verdict,
        reason,
        unhealthy_strikes,
        checks,
    };
    let service = &observation.service;
    let grace = service.health_check_grace_period_seconds as f64;

    let Some(deployment) = find_deployment(service, rollout) else {
        return verdict(
            Verdict::Failed,
            format!(
                "deployment {} of {} is gone: the service is now on {} (rolled back by ECS or replaced by another deployment)",
                rollout.deployment_id.as_deref().unwrap_or("?"),
                short_td(&rollout.task_definition),
                short_td(&service.task_definition)
            ),
            0,
        );
    };
    if deployment.rollout_state.as_deref() == Some("FAILED") {
        let why = deployment.rollout_state_reason.as_deref().unwrap_or("no reason given");
        return verdict(Verdict::Failed, format!("ECS marked deployment {} FAILED: {why}", deployment.id), 0);
    }
    if deployment.status != "PRIMARY" {
        let now_on = service.primary().map_or("?", |p| p.task_definition.as_str());
        return verdict(
            Verdict::Failed,
            format!("deployment {} is no longer PRIMARY: ECS moved the service to {}", deployment.id, short_td(now_on)),
            0,
        );
    }

    let ours: Vec<&TaskSnapshot> = observation.tasks.iter().filter(|t| belongs_to(t, deployment, rollout)).collect();
    let failed: Vec<&&TaskSnapshot> = ours.iter().filter(|t| is_failed_stop(t)).collect();
    let failed_count = (failed.len() as i64).max(deployment.failed_tasks) as u64;
    if failed_count >= policy.max_failed_tasks {
        let example = failed.first().map_or(String::new(), |t| format!(" (last: {})", stop_description(t)));
        return verdict(
            Verdict::Failed,
            format!("{failed_count} task(s) of {} stopped with a failure{example}", short_td(&rollout.task_definition)),
            0,
        );
    }

    let running: Vec<&&TaskSnapshot> =
        ours.iter().filter(|t| t.last_status == "RUNNING" && t.desired_status == "RUNNING").collect();
    let mut waiting_on = Vec::new();
    let mut unhealthy_after_grace = Vec::new();
    let mut healthy_targets = 0;
    let mut expected_targets = 0;
    for lb in service.load_balancers.iter().filter(|lb| lb.target_group_arn.is_some()) {
        let group = lb.target_group_arn.as_deref().unwrap_or_default();
        let targets = observation.targets.get(group).map(Vec::as_slice).unwrap_or_default();
        for task in &running {
            expected_targets += 1;
            let target = task.private_ip.as_deref().and_then(|ip| {
                targets.iter().find(|t| t.id == ip && (t.port.is_none() || t.port == lb.container_port))
            });
            match target.map(|t| t.state.as_str()) {
                Some("healthy") => healthy_targets += 1,
                Some("unhealthy") if task.started_at.is_some_and(|s| now - s >= grace) => {
                    let why = target.and_then(|t| t.reason.clone()).unwrap_or_default();
                    unhealthy_after_grace.push(format!(
                        "{}:{} in {} ({why})",
                        target.map_or("", |t| &t.id),
                        lb.container_port.unwrap_or(0),
                        short_group(group)
                    ));
                }
                Some(state) => waiting_on.push(format!(
                    "target {} {state} in {}",
                    task.private_ip.as_deref().unwrap_or("?"),
                    short_group(group)
                )),
                None => {
                    waiting_on.push(format!("task {} not registered in {}", short_task(&task.arn), short_group(group)))
                }
            }
        }
    }
    let strikes = if unhealthy_after_grace.is_empty() { 0 } else { previous.unhealthy_strikes + 1 };
    if strikes >= policy.unhealthy_checks {
        return verdict(
            Verdict::Failed,
            format!(
                "target(s) unhealthy for {strikes} consecutive checks after the {grace}s grace period: {}",
                unhealthy_after_grace.join(", ")
            ),
            strikes,
        );
    }

    let elapsed = now - rollout.started_at;
    let budget = policy.timeout_seconds as f64 + grace;
    let settled = match deployment.rollout_state.as_deref() {
        Some(state) => state == "COMPLETED",
        None => service.deployments.len() == 1 && deployment.running_count == deployment.desired_count,
    };
    let container_unhealthy = running.iter().filter(|t| t.health_status.as_deref() == Some("UNHEALTHY")).count();
    let enough_running = running.len() as i64 >= deployment.desired_count;
    if settled
        && enough_running
        && container_unhealthy == 0
        && healthy_targets == expected_targets
        && unhealthy_after_grace.is_empty()
    {
        let lb_note = if expected_targets > 0 {
            format!(", {healthy_targets}/{expected_targets} targets healthy")
        } else {
            String::new()
        };
        return verdict(
            Verdict::Healthy,
            format!(
                "deployment {} COMPLETED: {}/{} tasks running{lb_note}",
                deployment.id,
                running.len(),
                deployment.desired_count
            ),
            0,
        );
    }

    let mut progress = vec![format!(
        "rollout {}: {}/{} new tasks running",
        deployment.rollout_state.as_deref().unwrap_or("IN_PROGRESS"),
        running.len(),
        deployment.desired_count
    )];
    if expected_targets > 0 {
        progress.push(format!("{healthy_targets}/{expected_targets} targets healthy"));
    }
    if container_unhealthy > 0 {
        progress.push(format!("{container_unhealthy} task(s) failing container health checks"));
    }
    let older = service.deployments.len().saturating_sub(1);
    if older > 0 {
        progress.push(format!("{older} older deployment(s) still draining"));
    }
    progress.extend(unhealthy_after_grace.iter().map(|t| format!("unhealthy {t}")));
    progress.extend(waiting_on.into_iter().take(3));
    let status = progress.join("; ");
    if elapsed >= budget {
        return verdict(
            Verdict::Failed,
            format!(
                "timed out after {elapsed:.0}s (timeout {}s + grace period {grace}s): {status}",
                policy.timeout_seconds
            ),
            strikes,
        );
    }
    verdict(Verdict::Pending, status, strikes)
}

fn find_deployment<'a>(service: &'a ServiceSnapshot, rollout: &Rollout) -> Option<&'a DeploymentSnapshot> {
    match &rollout.deployment_id {
        Some(id) => service.deployments.iter().find(|d| &d.id == id),
        // Without an id (e.g. ECS had already rolled back before we looked), accept the PRIMARY
        // only when it runs the expected revision.
        None => service.primary().filter(|d| d.task_definition == rollout.task_definition),
    }
}

fn belongs_to(task: &TaskSnapshot, deployment: &DeploymentSnapshot, rollout: &Rollout) -> bool {
    match task.started_by.as_deref() {
        Some(started_by) if started_by.starts_with("ecs-svc/") => started_by == deployment.id,
        _ => task.task_definition == rollout.task_definition,
    }
}

/// A stop that means the revision is bad (not a scale-in or a replaced deployment).
pub fn is_failed_stop(task: &TaskSnapshot) -> bool {
    if task.last_status != "STOPPED" && task.desired_status != "STOPPED" {
        return false;
    }
    let by_code = matches!(task.stop_code.as_deref(), Some("TaskFailedToStart" | "EssentialContainerExited"));
    let by_reason = task.stopped_reason.as_deref().is_some_and(|r| r.to_ascii_lowercase().contains("health check"));
    let by_exit = task.containers.iter().any(|c| c.exit_code.is_some_and(|code| code != 0));
    by_code || by_reason || by_exit
}

fn stop_description(task: &TaskSnapshot) -> String {
    let exit = task
        .containers
        .iter()
        .find_map(|c| c.exit_code.filter(|code| *code != 0).map(|code| format!("{} exited {code}", c.name)));
    [task.stop_code.clone(), task.stopped_reason.clone(), exit].into_iter().flatten().collect::<Vec<_>>().join(": ")
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
