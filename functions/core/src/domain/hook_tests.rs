use super::*;
use crate::domain::gates::{AlarmVerdict, Gates};
use serde_json::json;

fn policy(bake_seconds: u64) -> Policy {
    Policy {
        poll_seconds: 15,
        recheck_seconds: 300,
        timeout_seconds: 600,
        bake_seconds,
        max_failed_tasks: 2,
        unhealthy_checks: 3,
        gates: Gates::default(),
        gated_by_hook: false,
        hook_bake_seconds: 0,
    }
}

fn healthy_tasks() -> NewTasks {
    NewTasks {
        desired: 2,
        running: 2,
        targets: TargetTally { healthy: 2, expected: 2, ..TargetTally::default() },
        ..NewTasks::default()
    }
}

fn at(stage: LifecycleStage, tasks: NewTasks) -> HookObservation {
    HookObservation {
        stage,
        deployment_status: ServiceDeploymentStatus::InProgress,
        tasks,
        alarms: None,
        grace_seconds: 60,
    }
}

fn memory(stage: &str, since: f64, strikes: u64) -> Option<HookMemory> {
    Some(HookMemory { stage: stage.into(), since, strikes })
}

#[test]
fn healthy_new_tasks_pass_the_stages_of_the_shift() {
    for stage in
        [LifecycleStage::PostScaleUp, LifecycleStage::PostTestTrafficShift, LifecycleStage::ProductionTrafficShift]
    {
        let answer = judge_hook(&at(stage.clone(), healthy_tasks()), &policy(0), None, 100.0);
        assert_eq!(answer.hook_status, HookStatus::Succeeded, "{stage}: {}", answer.reason);
        assert!(answer.reason.contains("2/2 targets healthy"), "{}", answer.reason);
    }
    let before = judge_hook(&at(LifecycleStage::PreScaleUp, NewTasks::default()), &policy(0), None, 100.0);
    assert_eq!(before.hook_status, HookStatus::Succeeded, "no new tasks to judge yet");
}

#[test]
fn new_tasks_not_yet_healthy_are_waited_for_until_the_timeout_and_grace_period() {
    let waiting = NewTasks {
        targets: TargetTally {
            healthy: 1,
            expected: 2,
            waiting_on: vec!["target 10.0.0.7 initial in green".into()],
            ..TargetTally::default()
        },
        ..healthy_tasks()
    };
    let first = judge_hook(&at(LifecycleStage::PostTestTrafficShift, waiting), &policy(0), None, 100.0);
    assert_eq!((first.hook_status, first.call_back_delay), (HookStatus::InProgress, Some(15)));
    let details = first.hook_details.clone().unwrap();
    assert_eq!(details["deckhandSince"], json!(100.0), "the deadline counts from the first call");
    let waiting =
        || NewTasks { targets: TargetTally { healthy: 1, expected: 2, ..TargetTally::default() }, ..healthy_tasks() };
    let near = judge_hook(
        &at(LifecycleStage::PostTestTrafficShift, waiting()),
        &policy(0),
        memory("POST_TEST_TRAFFIC_SHIFT", 100.0, 0),
        750.0,
    );
    assert_eq!((near.hook_status, near.call_back_delay), (HookStatus::InProgress, Some(10)), "never past the deadline");
    let late = judge_hook(
        &at(LifecycleStage::PostTestTrafficShift, waiting()),
        &policy(0),
        memory("POST_TEST_TRAFFIC_SHIFT", 100.0, 0),
        760.0,
    );
    assert_eq!(late.hook_status, HookStatus::Failed);
    assert!(late.reason.contains("timeout 600s + grace period 60s"), "{}", late.reason);
}

#[test]
fn a_fired_alarm_or_failed_tasks_fail_the_hook_at_any_stage_after_scale_up() {
    let mut fired = at(LifecycleStage::PostProductionTrafficShift, healthy_tasks());
    fired.alarms =
        Some(AlarmVerdict { failure: Some("CloudWatch alarm in ALARM: api-5xx".into()), ..AlarmVerdict::default() });
    let answer = judge_hook(&fired, &policy(300), memory("POST_PRODUCTION_TRAFFIC_SHIFT", 100.0, 0), 150.0);
    assert_eq!(
        (answer.hook_status, answer.reason.as_str()),
        (HookStatus::Failed, "CloudWatch alarm in ALARM: api-5xx")
    );
    assert_eq!(serde_json::to_value(&answer).unwrap(), json!({"hookStatus": "FAILED"}), "ECS reads only its fields");
    let crashed = NewTasks { failed: vec!["EssentialContainerExited: web exited 1".into(); 2], ..healthy_tasks() };
    let answer = judge_hook(&at(LifecycleStage::PostScaleUp, crashed), &policy(0), None, 100.0);
    assert_eq!(answer.hook_status, HookStatus::Failed);
    assert!(answer.reason.contains("2 new task(s) stopped with a failure"), "{}", answer.reason);
}

#[test]
fn an_unhealthy_target_fails_only_after_consecutive_calls_remember_it() {
    let unhealthy = || NewTasks {
        targets: TargetTally {
            healthy: 1,
            expected: 2,
            unhealthy_after_grace: vec!["10.0.0.7:5000 in green (Target.ResponseCodeMismatch)".into()],
            ..TargetTally::default()
        },
        ..healthy_tasks()
    };
    let mut remembered = None;
    for call in 0..2 {
        let answer = judge_hook(
            &at(LifecycleStage::PostTestTrafficShift, unhealthy()),
            &policy(0),
            remembered,
            100.0 + call as f64,
        );
        assert_eq!(answer.hook_status, HookStatus::InProgress);
        let details = answer.hook_details.unwrap();
        assert_eq!(details["deckhandStrikes"], json!(call + 1));
        remembered = memory("POST_TEST_TRAFFIC_SHIFT", 100.0, call + 1);
    }
    let third = judge_hook(&at(LifecycleStage::PostTestTrafficShift, unhealthy()), &policy(0), remembered, 103.0);
    assert_eq!(third.hook_status, HookStatus::Failed);
    assert!(third.reason.contains("unhealthy for 3 consecutive calls"), "{}", third.reason);
}

#[test]
fn deckhands_bake_runs_after_the_production_shift_with_the_gates_checked_at_every_call() {
    let stage = LifecycleStage::PostProductionTrafficShift;
    let first = judge_hook(&at(stage.clone(), healthy_tasks()), &policy(40), None, 100.0);
    assert_eq!((first.hook_status, first.call_back_delay), (HookStatus::InProgress, Some(15)));
    assert!(first.reason.contains("baking"), "{}", first.reason);
    let last = judge_hook(
        &at(stage.clone(), healthy_tasks()),
        &policy(40),
        memory("POST_PRODUCTION_TRAFFIC_SHIFT", 100.0, 0),
        130.0,
    );
    assert_eq!(last.call_back_delay, Some(10), "the last call comes when the bake ends");
    let done =
        judge_hook(&at(stage, healthy_tasks()), &policy(40), memory("POST_PRODUCTION_TRAFFIC_SHIFT", 100.0, 0), 140.0);
    assert_eq!(done.hook_status, HookStatus::Succeeded);
    assert!(done.reason.contains("baked 40s"), "{}", done.reason);
}

#[test]
fn the_hook_never_stands_in_the_way_of_a_rollback() {
    let mut rolling_back = at(LifecycleStage::ProductionTrafficShift, NewTasks::default());
    rolling_back.deployment_status = ServiceDeploymentStatus::RollbackInProgress;
    rolling_back.alarms =
        Some(AlarmVerdict { failure: Some("CloudWatch alarm in ALARM: x".into()), ..AlarmVerdict::default() });
    assert_eq!(judge_hook(&rolling_back, &policy(0), None, 100.0).hook_status, HookStatus::Succeeded);
}

#[test]
fn the_event_is_recognised_and_its_memory_kept_per_stage() {
    let event = json!({
        "executionId": "hook-1",
        "lifecycleStage": "POST_PRODUCTION_TRAFFIC_SHIFT",
        "resourceArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/api/abc",
        "executionDetails": {
            "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
            "targetServiceRevisionArn": "arn:rev:2",
            "testTrafficWeights": {},
            "productionTrafficWeights": {"arn:rev:2": 100.0, "arn:rev:1": 0.0}
        },
        "hookDetails": {"team": "payments", "deckhandStage": "POST_PRODUCTION_TRAFFIC_SHIFT", "deckhandSince": 90.0, "deckhandStrikes": 1}
    });
    assert!(HookEvent::is_hook_event(&event));
    assert!(!HookEvent::is_hook_event(&json!({"target": {}, "rollout": {}})), "a check request is not a hook event");
    let parsed: HookEvent = serde_json::from_value(event.clone()).unwrap();
    assert_eq!(parsed.stage(), LifecycleStage::PostProductionTrafficShift);
    assert_eq!(parsed.production_percent(), Some(100.0));
    assert_eq!(parsed.memory(), memory("POST_PRODUCTION_TRAFFIC_SHIFT", 90.0, 1));
    let mut other_stage = event;
    other_stage["lifecycleStage"] = json!("PRODUCTION_TRAFFIC_SHIFT");
    let parsed: HookEvent = serde_json::from_value(other_stage).unwrap();
    assert_eq!(parsed.memory(), None, "a stage's deadline and bake start at its own first call");
}

#[test]
fn a_hook_missing_stages_or_invoked_with_another_role_is_reported() {
    let role = "arn:aws:iam::123456789012:role/deckhand-HookInvokeRole";
    let complete = LifecycleHookRef {
        target_arn: "arn:aws:lambda:us-east-1:123456789012:function:deckhand-hook".into(),
        role_arn: Some(role.into()),
        stages: HOOK_STAGES.iter().map(|s| s.to_string()).collect(),
    };
    assert!(hook_setup_problems(&complete, Some(role)).is_empty());
    let partial = LifecycleHookRef {
        stages: vec!["POST_TEST_TRAFFIC_SHIFT".into()],
        role_arn: Some("arn:aws:iam::123456789012:role/other".into()),
        ..complete.clone()
    };
    let problems = hook_setup_problems(&partial, Some(role));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT"), "{problems:?}");
    assert!(
        complete.invokes("arn:aws:lambda:us-east-1:123456789012:function:deckhand-hook:live"),
        "a qualified ARN is the same function"
    );
    assert!(!complete.invokes("arn:aws:lambda:us-east-1:123456789012:function:deckhand-hook-2"));
}
