use super::*;
use crate::domain::model::RolloutOutcome;
use crate::domain::snapshot::{ContainerSnapshot, LoadBalancerRef, PortBinding};

const NEW_TD: &str = "arn:aws:ecs:us-east-1:1:task-definition/api:8";
const OLD_TD: &str = "arn:aws:ecs:us-east-1:1:task-definition/api:7";
const TG_API: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/api/1";
const TG_ADMIN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/admin/2";
const START: f64 = 1_000.0;

fn policy() -> Policy {
    Policy {
        poll_seconds: 5,
        recheck_seconds: 60,
        timeout_seconds: 300,
        bake_seconds: 0,
        max_failed_tasks: 2,
        unhealthy_checks: 3,
        gates: Default::default(),
        gated_by_hook: false,
        hook_bake_seconds: 0,
    }
}

fn rollout() -> Rollout {
    Rollout {
        outcome: RolloutOutcome::Started,
        task_definition: NEW_TD.into(),
        previous_task_definition: Some(OLD_TD.into()),
        deployment_id: Some("ecs-svc/2".into()),
        started_at: START,
        deadline: None,
        reason: String::new(),
    }
}

fn deployment(id: &str, status: &str, td: &str, state: &str, running: i64) -> DeploymentSnapshot {
    DeploymentSnapshot {
        id: id.into(),
        status: status.into(),
        task_definition: td.into(),
        rollout_state: state.into(),
        desired_count: 2,
        running_count: running,
        ..Default::default()
    }
}

fn task(n: u8, status: &str) -> TaskSnapshot {
    TaskSnapshot {
        arn: format!("arn:aws:ecs:us-east-1:1:task/prod/t{n}"),
        task_definition: NEW_TD.into(),
        started_by: Some("ecs-svc/2".into()),
        last_status: status.into(),
        desired_status: if status == "STOPPED" { "STOPPED".into() } else { "RUNNING".into() },
        started_at: Some(START + 1.0),
        private_ip: Some(format!("10.0.0.{n}")),
        ..Default::default()
    }
}

fn target(n: u8, state: &str) -> TargetSnapshot {
    TargetSnapshot { id: format!("10.0.0.{n}"), port: Some(5000), state: state.into(), reason: None }
}

/// A service with the new deployment COMPLETED, two running tasks and one target group.
fn completed(states: [&str; 2]) -> Observation {
    let service = ServiceSnapshot {
        arn: "arn:aws:ecs:us-east-1:1:service/prod/api".into(),
        name: "api".into(),
        status: "ACTIVE".into(),
        task_definition: NEW_TD.into(),
        desired_count: 2,
        running_count: 2,
        health_check_grace_period_seconds: 60,
        deployments: vec![deployment("ecs-svc/2", "PRIMARY", NEW_TD, "COMPLETED", 2)],
        load_balancers: vec![LoadBalancerRef {
            target_group_arn: Some(TG_API.into()),
            container_name: Some("web".into()),
            container_port: Some(5000),
            ..Default::default()
        }],
        ..Default::default()
    };
    Observation {
        service,
        tasks: vec![task(1, "RUNNING"), task(2, "RUNNING")],
        targets: [(TG_API.to_string(), vec![target(1, states[0]), target(2, states[1])])].into(),
        ..Default::default()
    }
}

fn judge(observation: &Observation, now: f64) -> Health {
    assess(observation, &rollout(), &policy(), &Health::default(), now)
}

#[test]
fn healthy_needs_ecs_completed_and_every_target_healthy() {
    let health = judge(&completed(["healthy", "healthy"]), START + 30.0);
    assert_eq!(health.verdict, Verdict::Healthy, "{}", health.reason);
    assert!(health.reason.contains("2/2 targets healthy"));
}

#[test]
fn ecs_completed_is_not_enough_while_a_target_is_still_initial() {
    let health = judge(&completed(["healthy", "initial"]), START + 30.0);
    assert_eq!(health.verdict, Verdict::Pending, "{}", health.reason);
    assert!(health.reason.contains("1/2 targets healthy"), "{}", health.reason);
}

#[test]
fn a_task_missing_from_the_target_group_is_not_healthy() {
    let mut observation = completed(["healthy", "healthy"]);
    observation.targets.get_mut(TG_API).unwrap().pop();
    assert_eq!(judge(&observation, START + 30.0).verdict, Verdict::Pending);
}

#[test]
fn every_target_group_of_the_service_counts() {
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.load_balancers.push(LoadBalancerRef {
        target_group_arn: Some(TG_ADMIN.into()),
        container_name: Some("web".into()),
        container_port: Some(5000),
        ..Default::default()
    });
    observation.targets.insert(TG_ADMIN.into(), vec![target(1, "healthy"), target(2, "unhealthy")]);
    assert_eq!(judge(&observation, START + 30.0).verdict, Verdict::Pending, "inside the grace period");
    let mut previous = Health { unhealthy_strikes: 2, ..Default::default() };
    previous.checks = 5;
    let health = assess(&observation, &rollout(), &policy(), &previous, START + 120.0);
    assert_eq!(health.verdict, Verdict::Failed);
    assert!(health.reason.contains("admin"), "{}", health.reason);
}

/// Two bridge-mode tasks on one EC2 instance, each with its own dynamic host port for web:5000.
fn bridge_mode(states: [&str; 2]) -> Observation {
    let mut observation = completed(["healthy", "healthy"]);
    for (task, host_port) in observation.tasks.iter_mut().zip([32768, 32769]) {
        task.private_ip = None;
        task.ec2_instance_id = Some("i-0abc".into());
        task.containers = vec![ContainerSnapshot {
            name: "web".into(),
            network_bindings: vec![PortBinding { container_port: 5000, host_port }],
            ..Default::default()
        }];
    }
    let targets = [(32768, states[0]), (32769, states[1])].map(|(port, state)| TargetSnapshot {
        id: "i-0abc".into(),
        port: Some(port),
        state: state.into(),
        reason: None,
    });
    observation.targets.insert(TG_API.into(), targets.to_vec());
    observation
}

#[test]
fn bridge_mode_tasks_are_matched_to_their_targets_by_instance_and_host_port() {
    let health = judge(&bridge_mode(["healthy", "healthy"]), START + 30.0);
    assert_eq!(health.verdict, Verdict::Healthy, "{}", health.reason);
    assert!(health.reason.contains("2/2 targets healthy"), "{}", health.reason);
    // Same instance, same container port: only the host port tells the second task's target apart.
    let health = judge(&bridge_mode(["healthy", "initial"]), START + 30.0);
    assert_eq!(health.verdict, Verdict::Pending, "{}", health.reason);
    assert!(health.reason.contains("1/2 targets healthy"), "{}", health.reason);
}

#[test]
fn a_bridge_mode_target_on_another_host_port_is_not_the_tasks() {
    let mut observation = bridge_mode(["healthy", "healthy"]);
    observation.targets.get_mut(TG_API).unwrap()[1].port = Some(40000); // a task of another service
    let health = judge(&observation, START + 30.0);
    assert_eq!(health.verdict, Verdict::Pending, "{}", health.reason);
    assert!(health.reason.contains("not registered"), "{}", health.reason);
}

#[test]
fn in_progress_rollout_is_pending_with_progress() {
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.deployments = vec![
        deployment("ecs-svc/2", "PRIMARY", NEW_TD, "IN_PROGRESS", 1),
        deployment("ecs-svc/1", "ACTIVE", OLD_TD, "COMPLETED", 2),
    ];
    let health = judge(&observation, START + 30.0);
    assert_eq!(health.verdict, Verdict::Pending);
    assert!(health.reason.contains("older deployment"), "{}", health.reason);
}

#[test]
fn ecs_marking_the_deployment_failed_fails_it() {
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.deployments[0].rollout_state = "FAILED".into();
    observation.service.deployments[0].rollout_state_reason =
        Some("ECS deployment circuit breaker: tasks failed to start.".into());
    let health = judge(&observation, START + 30.0);
    assert_eq!(health.verdict, Verdict::Failed);
    assert!(health.reason.contains("circuit breaker"));
}

#[test]
fn ecs_rolling_back_by_itself_is_a_failure_never_a_success() {
    // The circuit breaker failed ours (rolloutState FAILED, its reason names the breaker) and
    // rolled back: a new PRIMARY on the old revision, whose reason says so.
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.task_definition = OLD_TD.into();
    let mut back = deployment("ecs-svc/3", "PRIMARY", OLD_TD, "IN_PROGRESS", 0);
    back.rollout_state_reason = Some("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1.".into());
    back.created_at = Some(START + 20.0);
    let mut ours = deployment("ecs-svc/2", "ACTIVE", NEW_TD, "FAILED", 0);
    ours.rollout_state_reason = Some("ECS deployment circuit breaker: tasks failed to start.".into());
    observation.service.deployments = vec![back, ours];
    let health = judge(&observation, START + 30.0);
    assert_eq!(health.verdict, Verdict::Failed, "{}", health.reason);
    assert!(health.reason.contains("circuit breaker"), "{}", health.reason);
    // …and once ECS has dropped ours from the list, its rollback deployment still says what it is,
    // even though it was created after deckhand's UpdateService.
    observation.service.deployments.truncate(1);
    let health = judge(&observation, START + 31.0);
    assert_eq!(health.verdict, Verdict::Failed, "{}", health.reason);
    assert!(health.reason.contains("rolled back by ECS") && health.reason.contains("api:7"), "{}", health.reason);
    // …and once that rollback COMPLETED too (its reason no longer tells), the service is on what
    // ran before with nothing after deckhand's UpdateService but ECS's own: a failure once ours
    // has been missing for longer than ECS's reads lag.
    observation.service.deployments[0] = deployment("ecs-svc/1", "PRIMARY", OLD_TD, "COMPLETED", 2);
    observation.service.deployments[0].created_at = Some(START - 600.0);
    assert_eq!(judge(&observation, START + UNSEEN_GRACE_SECONDS + 1.0).verdict, Verdict::Failed);
}

#[test]
fn ecs_rolling_back_to_the_same_deployment_is_a_failure_too() {
    // ECS may return to the last COMPLETED deployment itself (same id, IN_PROGRESS again): ours is
    // FAILED and demoted, whatever the PRIMARY's id.
    let mut observation = completed(["healthy", "healthy"]);
    let mut back = deployment("ecs-svc/1", "PRIMARY", OLD_TD, "IN_PROGRESS", 2);
    back.rollout_state_reason = Some("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1.".into());
    back.created_at = Some(START - 600.0);
    observation.service.deployments = vec![back, deployment("ecs-svc/2", "ACTIVE", NEW_TD, "FAILED", 0)];
    assert_eq!(judge(&observation, START + 5.0).verdict, Verdict::Failed);
}

#[test]
fn a_person_going_back_to_the_previous_revision_supersedes_the_rollout() {
    // UpdateService to the revision deckhand replaced, by hand: same revision as an ECS rollback,
    // but ours is not FAILED and the new PRIMARY does not say it is ECS's rollback.
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.task_definition = OLD_TD.into();
    let mut theirs = deployment("ecs-svc/4", "PRIMARY", OLD_TD, "IN_PROGRESS", 0);
    theirs.rollout_state_reason = Some("ECS deployment ecs-svc/4 in progress.".into());
    theirs.created_at = Some(START + 3.0);
    observation.service.deployments = vec![theirs, deployment("ecs-svc/2", "ACTIVE", NEW_TD, "IN_PROGRESS", 1)];
    let health = judge(&observation, START + 4.0);
    assert_eq!(health.verdict, Verdict::Superseded, "{}", health.reason);
    assert!(health.reason.contains("ecs-svc/4") && health.reason.contains("api:7"), "{}", health.reason);
    // Still theirs once ours has drained away and theirs COMPLETED: it was created after
    // deckhand's UpdateService, inside or past the grace for unseen deployments.
    observation.service.deployments = vec![deployment("ecs-svc/4", "PRIMARY", OLD_TD, "COMPLETED", 2)];
    observation.service.deployments[0].created_at = Some(START + 3.0);
    for now in [START + 10.0, START + UNSEEN_GRACE_SECONDS + 60.0] {
        assert_eq!(judge(&observation, now).verdict, Verdict::Superseded, "at {now}");
    }
}

#[test]
fn ecs_rolling_back_someone_elses_later_deployment_supersedes_ours() {
    // Ours was replaced by theirs, theirs failed and ECS rolled it back: ours is listed and not
    // FAILED, so the rollback was not of deckhand's deployment.
    let mut observation = completed(["healthy", "healthy"]);
    let mut back = deployment("ecs-svc/5", "PRIMARY", OLD_TD, "IN_PROGRESS", 0);
    back.rollout_state_reason = Some("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1.".into());
    let other = "arn:aws:ecs:us-east-1:1:task-definition/api:9";
    observation.service.deployments = vec![
        back,
        deployment("ecs-svc/4", "ACTIVE", other, "FAILED", 0),
        deployment("ecs-svc/2", "ACTIVE", NEW_TD, "IN_PROGRESS", 1),
    ];
    assert_eq!(judge(&observation, START + 20.0).verdict, Verdict::Superseded);
}

#[test]
fn a_deployment_ecs_does_not_list_yet_is_pending_for_a_bounded_time() {
    // Right after UpdateService, DescribeServices may still answer what it did before (ECS reads
    // are eventually consistent): only the old deployment, PRIMARY, on the previous revision.
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.task_definition = OLD_TD.into();
    let mut old = deployment("ecs-svc/1", "PRIMARY", OLD_TD, "COMPLETED", 2);
    old.created_at = Some(START - 600.0);
    observation.service.deployments = vec![old];
    observation.tasks.clear();
    for now in [START + 0.5, START + 10.0, START + UNSEEN_GRACE_SECONDS - 1.0] {
        let health = judge(&observation, now);
        assert_eq!(health.verdict, Verdict::Pending, "at {now}: {}", health.reason);
        assert!(health.needs_poll, "ECS announces nothing about its reads catching up: poll");
        assert!(health.reason.contains("not listed by ECS yet"), "{}", health.reason);
    }
    // Missing for longer than that, with nothing after it: ours is gone, the service is on what
    // ran before.
    let health = judge(&observation, START + UNSEEN_GRACE_SECONDS + 1.0);
    assert_eq!(health.verdict, Verdict::Failed, "{}", health.reason);
    // A service with no PRIMARY at all reads the same way: pending first, gone after the grace.
    observation.service.deployments.clear();
    assert_eq!(judge(&observation, START + 1.0).verdict, Verdict::Pending);
    assert_eq!(judge(&observation, START + UNSEEN_GRACE_SECONDS + 1.0).verdict, Verdict::Failed);
}

#[test]
fn a_newer_deployment_than_deckhands_update_supersedes_even_before_ours_is_listed() {
    let other = "arn:aws:ecs:us-east-1:1:task-definition/api:9";
    let mut observation = completed(["healthy", "healthy"]);
    let mut theirs = deployment("ecs-svc/4", "PRIMARY", other, "IN_PROGRESS", 0);
    theirs.created_at = Some(START + 2.0);
    let mut old = deployment("ecs-svc/1", "ACTIVE", OLD_TD, "COMPLETED", 2);
    old.created_at = Some(START - 600.0);
    observation.service.deployments = vec![theirs, old];
    let health = judge(&observation, START + 3.0);
    assert_eq!(health.verdict, Verdict::Superseded, "{}", health.reason);
    // Theirs going back to the previous revision, created after deckhand's UpdateService, too.
    observation.service.deployments[0].task_definition = OLD_TD.into();
    assert_eq!(judge(&observation, START + 3.0).verdict, Verdict::Superseded);
}

#[test]
fn a_forced_new_deployment_of_deckhands_revision_is_watched_to_its_end() {
    // UpdateService --force-new-deployment by hand: a new PRIMARY of deckhand's own revision.
    let mut observation = completed(["healthy", "healthy"]);
    let mut forced = deployment("ecs-svc/6", "PRIMARY", NEW_TD, "IN_PROGRESS", 0);
    forced.created_at = Some(START + 5.0);
    observation.service.deployments = vec![forced, deployment("ecs-svc/2", "ACTIVE", NEW_TD, "IN_PROGRESS", 2)];
    let health = judge(&observation, START + 6.0);
    assert_eq!(health.verdict, Verdict::Pending, "{}", health.reason);
    assert!(
        health.reason.contains("0/2 new tasks running"),
        "the forced deployment's own tasks count: {}",
        health.reason
    );
    // Its tasks become healthy and ECS calls it COMPLETED (ours gone): HEALTHY.
    observation.service.deployments = vec![deployment("ecs-svc/6", "PRIMARY", NEW_TD, "COMPLETED", 2)];
    for task in &mut observation.tasks {
        task.started_by = Some("ecs-svc/6".into());
    }
    let health = judge(&observation, START + 20.0);
    assert_eq!(health.verdict, Verdict::Healthy, "{}", health.reason);
    assert!(health.reason.contains("ecs-svc/6"), "{}", health.reason);
    // …and FAILED by ECS is a failure like ours would have been.
    observation.service.deployments[0].rollout_state = "FAILED".into();
    assert_eq!(judge(&observation, START + 20.0).verdict, Verdict::Failed);
}

#[test]
fn tasks_that_keep_stopping_fail_the_deployment() {
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.deployments[0].rollout_state = "IN_PROGRESS".into();
    let mut crashed = task(3, "STOPPED");
    crashed.stop_code = "EssentialContainerExited".into();
    crashed.containers =
        vec![ContainerSnapshot { name: "web".into(), exit_code: Some(1), reason: None, ..Default::default() }];
    observation.tasks.push(crashed.clone());
    assert_eq!(judge(&observation, START + 10.0).verdict, Verdict::Pending, "one crash is below the threshold");
    crashed.arn.push('b');
    observation.tasks.push(crashed);
    let health = judge(&observation, START + 12.0);
    assert_eq!(health.verdict, Verdict::Failed);
    assert!(health.reason.contains("web exited 1"), "{}", health.reason);
}

#[test]
fn scale_in_and_old_revision_stops_are_not_failures() {
    let mut observation = completed(["healthy", "healthy"]);
    let mut scaled = task(4, "STOPPED");
    scaled.stop_code = "ServiceSchedulerInitiated".into();
    scaled.stopped_reason = Some("Scaling activity initiated by (deployment ecs-svc/2)".into());
    scaled.containers =
        vec![ContainerSnapshot { name: "web".into(), exit_code: Some(0), reason: None, ..Default::default() }];
    let mut old = task(5, "STOPPED");
    old.started_by = Some("ecs-svc/1".into());
    old.task_definition = OLD_TD.into();
    old.stop_code = "EssentialContainerExited".into();
    observation.tasks.extend([scaled.clone(), scaled, old.clone(), old]);
    assert_eq!(judge(&observation, START + 30.0).verdict, Verdict::Healthy);
}

#[test]
fn ecs_failed_task_counter_counts_too() {
    let mut observation = completed(["initial", "initial"]);
    observation.service.deployments[0].rollout_state = "IN_PROGRESS".into();
    observation.service.deployments[0].failed_tasks = 2;
    assert_eq!(judge(&observation, START + 10.0).verdict, Verdict::Failed);
}

#[test]
fn ecs_counting_scaled_in_tasks_that_never_ran_is_not_a_failure() {
    // desired 4 → 2 (or 3 → 1) while the new tasks are still starting: the scheduler stops two
    // of them before they reach RUNNING, and ECS's failedTasks ("the task doesn't transition to a
    // RUNNING state") may count both: as many as MaxFailedTasks.
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.deployments[0].rollout_state = "IN_PROGRESS".into();
    observation.service.deployments[0].failed_tasks = 2;
    for n in [3, 4] {
        let mut scaled = task(n, "STOPPED");
        scaled.stop_code = "ServiceSchedulerInitiated".into();
        scaled.stopped_reason = Some("Scaling activity initiated by (deployment ecs-svc/2)".into());
        scaled.started_at = None;
        scaled.private_ip = None;
        observation.tasks.push(scaled);
    }
    let health = judge(&observation, START + 10.0);
    assert_eq!(health.verdict, Verdict::Pending, "{}", health.reason);
    // …and the rollout completes: HEALTHY, ECS's counter notwithstanding.
    observation.service.deployments[0].rollout_state = "COMPLETED".into();
    assert_eq!(judge(&observation, START + 12.0).verdict, Verdict::Healthy);
    // A failure ECS counts beyond what the external stops explain still counts.
    observation.service.deployments[0].rollout_state = "IN_PROGRESS".into();
    observation.service.deployments[0].failed_tasks = 4;
    let health = judge(&observation, START + 14.0);
    assert_eq!(health.verdict, Verdict::Failed, "{}", health.reason);
}

#[test]
fn a_scale_in_leaves_fewer_tasks_to_wait_for() {
    // desired 4 → 2 mid-rollout: the deployment's desired count follows the service's, and the
    // two tasks still running are all the rollout needs.
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.desired_count = 2;
    observation.service.deployments[0].desired_count = 2;
    let mut scaled = task(3, "RUNNING");
    scaled.desired_status = "STOPPED".into();
    scaled.stop_code = "ServiceSchedulerInitiated".into();
    scaled.stopped_reason = Some("Scaling activity initiated by (deployment ecs-svc/2)".into());
    observation.tasks.push(scaled);
    let health = judge(&observation, START + 10.0);
    assert_eq!(health.verdict, Verdict::Healthy, "{}", health.reason);
    assert!(health.reason.contains("2/2 tasks running"), "{}", health.reason);
}

#[test]
fn unhealthy_targets_are_tolerated_during_the_grace_period_then_fail_after_strikes() {
    let observation = completed(["unhealthy", "unhealthy"]);
    let inside_grace = judge(&observation, START + 30.0);
    assert_eq!((inside_grace.verdict, inside_grace.unhealthy_strikes), (Verdict::Pending, 0));

    let mut health = Health::default();
    for (i, expected) in [Verdict::Pending, Verdict::Pending, Verdict::Failed].into_iter().enumerate() {
        health = assess(&observation, &rollout(), &policy(), &health, START + 70.0 + i as f64 * 5.0);
        assert_eq!(health.verdict, expected, "check {i}: {}", health.reason);
    }
    assert!(health.reason.contains("unhealthy for 3 consecutive checks"), "{}", health.reason);
}

#[test]
fn a_healthy_check_resets_the_strikes() {
    let previous = Health { unhealthy_strikes: 2, ..Default::default() };
    let health = assess(&completed(["healthy", "initial"]), &rollout(), &policy(), &previous, START + 100.0);
    assert_eq!((health.verdict, health.unhealthy_strikes), (Verdict::Pending, 0));
}

#[test]
fn timeout_counts_the_health_check_grace_period() {
    let mut observation = completed(["initial", "initial"]);
    observation.service.deployments[0].rollout_state = "IN_PROGRESS".into();
    // timeout 300 s + grace 60 s: still pending at 330 s, failed at 361 s.
    assert_eq!(judge(&observation, START + 330.0).verdict, Verdict::Pending);
    let health = judge(&observation, START + 361.0);
    assert_eq!(health.verdict, Verdict::Failed);
    assert!(health.reason.contains("timed out"), "{}", health.reason);
}

#[test]
fn without_a_load_balancer_ecs_and_container_health_decide() {
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.load_balancers.clear();
    observation.targets.clear();
    assert_eq!(judge(&observation, START + 10.0).verdict, Verdict::Healthy);
    observation.tasks[0].health_status = "UNHEALTHY".into();
    assert_eq!(judge(&observation, START + 10.0).verdict, Verdict::Pending);
}

#[test]
fn too_few_running_tasks_is_not_healthy() {
    let mut observation = completed(["healthy", "healthy"]);
    observation.tasks.pop();
    observation.targets.get_mut(TG_API).unwrap().pop();
    assert_eq!(judge(&observation, START + 10.0).verdict, Verdict::Pending);
}

#[test]
fn someone_elses_update_service_supersedes_the_rollout() {
    // Another UpdateService to a revision that is neither ours nor the one we replaced.
    let other = "arn:aws:ecs:us-east-1:1:task-definition/api:9";
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.task_definition = other.into();
    observation.service.deployments = vec![
        deployment("ecs-svc/4", "PRIMARY", other, "IN_PROGRESS", 0),
        deployment("ecs-svc/2", "ACTIVE", NEW_TD, "IN_PROGRESS", 2),
    ];
    let health = judge(&observation, START + 30.0);
    assert_eq!(health.verdict, Verdict::Superseded, "{}", health.reason);
    assert!(health.reason.contains("api:9"), "{}", health.reason);
    // Still superseded once ours has drained away.
    observation.service.deployments.truncate(1);
    assert_eq!(judge(&observation, START + 60.0).verdict, Verdict::Superseded);
}

#[test]
fn scale_in_and_spot_stops_with_sigkill_or_sigterm_exits_are_not_failures() {
    let mut observation = completed(["healthy", "healthy"]);
    for (n, code, exit) in
        [(6, "ServiceSchedulerInitiated", 143), (7, "SpotInterruption", 137), (8, "UserInitiated", 137)]
    {
        let mut stopped = task(n, "STOPPED");
        stopped.stop_code = code.into();
        stopped.stopped_reason = Some("Scaling activity initiated by (deployment ecs-svc/2)".into());
        stopped.containers =
            vec![ContainerSnapshot { name: "web".into(), exit_code: Some(exit), reason: None, ..Default::default() }];
        assert!(!is_failed_stop(&stopped), "{code} exit {exit}");
        observation.tasks.push(stopped);
    }
    assert_eq!(judge(&observation, START + 30.0).verdict, Verdict::Healthy);
}

#[test]
fn a_task_ecs_stopped_for_failing_elb_health_checks_is_a_failure() {
    let mut stopped = task(9, "STOPPED");
    stopped.stop_code = "ServiceSchedulerInitiated".into();
    stopped.stopped_reason = Some("Task failed ELB health checks in (target-group arn:…/api/1)".into());
    stopped.containers =
        vec![ContainerSnapshot { name: "web".into(), exit_code: Some(137), reason: None, ..Default::default() }];
    assert!(is_failed_stop(&stopped));
    let mut crashed = task(10, "STOPPED");
    crashed.containers =
        vec![ContainerSnapshot { name: "web".into(), exit_code: Some(2), reason: None, ..Default::default() }];
    assert!(is_failed_stop(&crashed), "a non-zero exit without a stop code still counts");
    assert!(!is_failed_stop(&task(11, "RUNNING")));
}

#[test]
fn a_bake_that_sends_the_rollout_back_to_waiting_extends_the_deadline_by_the_bake() {
    let mut observation = completed(["healthy", "initial"]);
    observation.service.deployments[0].rollout_state = "IN_PROGRESS".into();
    let baking = Policy { bake_seconds: 120, ..policy() };
    let after_bake = Health { baked: true, ..Default::default() };
    // timeout 300 + grace 60 + bake 120 = 480 s.
    let pending = assess(&observation, &rollout(), &baking, &after_bake, START + 470.0);
    assert_eq!(pending.verdict, Verdict::Pending, "{}", pending.reason);
    assert!(pending.baked, "the flag is carried to the next check");
    let failed = assess(&observation, &rollout(), &baking, &after_bake, START + 481.0);
    assert_eq!(failed.verdict, Verdict::Failed);
    assert!(failed.reason.contains("bake 120s"), "{}", failed.reason);
    // Without a bake behind it the usual budget applies.
    assert_eq!(assess(&observation, &rollout(), &baking, &Health::default(), START + 470.0).verdict, Verdict::Failed);
}

#[test]
fn ecs_native_bakes_extend_the_deadline_and_show_in_the_progress() {
    use crate::domain::snapshot::{native_wait_seconds, ServiceDeploymentSnapshot};
    use crate::domain::status::DeploymentStrategy;
    assert_eq!(native_wait_seconds(&DeploymentStrategy::BlueGreen, Some(5), None, None), 300);
    // 4 linear steps of 25 %: three step bakes (none after the last), then the bake.
    assert_eq!(native_wait_seconds(&DeploymentStrategy::Linear, Some(1), Some((25.0, 2)), None), (3 * 2 + 1) * 60);
    assert_eq!(native_wait_seconds(&DeploymentStrategy::Canary, Some(1), None, Some(3)), 4 * 60);
    assert_eq!(native_wait_seconds(&DeploymentStrategy::Rolling, Some(5), None, None), 0);

    let mut observation = completed(["healthy", "initial"]);
    observation.service.deployments[0].rollout_state = "IN_PROGRESS".into();
    observation.service.deployment_strategy = DeploymentStrategy::Canary;
    observation.service.ecs_wait_seconds = 240;
    observation.service_deployment = Some(ServiceDeploymentSnapshot {
        status: "IN_PROGRESS".into(),
        lifecycle_stage: Some("PRODUCTION_TRAFFIC_SHIFT".into()),
        production_percent: Some(20.0),
        ..Default::default()
    });
    // Past timeout + grace (see policy()), within ECS's own bakes: still pending, not timed out.
    let health = judge(&observation, START + (policy().timeout_seconds + 60 + 100) as f64);
    assert_eq!(health.verdict, Verdict::Pending, "{}", health.reason);
    assert!(
        health
            .reason
            .contains("ECS CANARY deployment IN_PROGRESS, at PRODUCTION_TRAFFIC_SHIFT, 20% of production traffic"),
        "{}",
        health.reason
    );
    let health = judge(&observation, START + (policy().timeout_seconds + 60 + 241) as f64);
    assert_eq!(health.verdict, Verdict::Failed, "{}", health.reason);
    assert!(health.reason.contains("ECS bakes 240s"), "{}", health.reason);
}

#[test]
fn a_blue_green_task_counts_in_whichever_group_of_the_pair_it_is_registered_in() {
    let mut observation = completed(["healthy", "healthy"]);
    let green = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/green/3";
    observation.service.load_balancers[0].alternate_target_group_arn = Some(green.into());
    let registered = observation.targets.remove(TG_API).unwrap();
    observation.targets.insert(TG_API.into(), vec![]);
    observation.targets.insert(green.into(), registered);
    let health = judge(&observation, START + 30.0);
    assert_eq!(health.verdict, Verdict::Healthy, "{}", health.reason);
    observation.targets.insert(green.into(), vec![]);
    let health = judge(&observation, START + 30.0);
    assert_eq!(health.verdict, Verdict::Pending);
    assert!(health.reason.contains("not registered in api or green"), "{}", health.reason);
}

#[test]
fn a_native_deployment_is_not_healthy_while_ecs_still_bakes_it() {
    use crate::domain::snapshot::ServiceDeploymentSnapshot;
    use crate::domain::status::DeploymentStrategy;
    let mut observation = completed(["healthy", "healthy"]);
    observation.service.deployment_strategy = DeploymentStrategy::BlueGreen;
    observation.service_deployment = Some(ServiceDeploymentSnapshot {
        status: "IN_PROGRESS".into(),
        lifecycle_stage: Some("BAKE_TIME".into()),
        production_percent: Some(100.0),
        ..Default::default()
    });
    let health = judge(&observation, START + 30.0);
    assert_eq!(health.verdict, Verdict::Pending, "{}", health.reason);
    assert!(health.reason.contains("at BAKE_TIME"), "{}", health.reason);
    observation.service_deployment.as_mut().unwrap().status = "SUCCESSFUL".into();
    assert_eq!(judge(&observation, START + 30.0).verdict, Verdict::Healthy);
}
