//! The lifecycle hook over the in-memory cloud, and what the check makes of its failures.

use super::*;
use crate::app::check::{check, CheckRequest};
use crate::app::deploy::deploy;
use crate::app::plan::target_for;
use crate::app::tests::{settings, HOOK_FUNCTION};
use crate::domain::gates::AlarmSnapshot;
use crate::domain::model::{ContainerChange, Health, Mode, Verdict};
use crate::domain::snapshot::{LifecycleHookRef, LoadBalancerRef, ServiceDeploymentSnapshot, TargetSnapshot};
use crate::domain::status::{DeploymentStrategy, TargetState};
use crate::testing::*;
use serde_json::json;

const SERVICE_DEPLOYMENT: &str = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/api/sd1";
const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1";
const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/2";

/// A BLUE_GREEN service with deckhand's hook at its three stages, watching `api-5xx`, one task
/// of its PRIMARY deployment running and healthy in the green group.
fn hooked_service(bake: &str) -> FakeCloud {
    let cloud = FakeCloud::default();
    let definition = cloud.add_task_definition("api", 1, &[("web", &format!("{REGISTRY}/shop:main"))]);
    let tags = [("deckhand:track", "web=shop:main"), ("deckhand:alarms", "api-5xx"), ("deckhand:bake", bake)];
    cloud.add_service("prod", "api", &definition, &tags);
    let mut service = cloud.service("api");
    service.deployment_strategy = DeploymentStrategy::BlueGreen;
    service.current_service_deployment = Some(SERVICE_DEPLOYMENT.into());
    service.load_balancers = vec![LoadBalancerRef {
        target_group_arn: Some(BLUE.into()),
        alternate_target_group_arn: Some(GREEN.into()),
        container_name: Some("web".into()),
        container_port: Some(5000),
    }];
    service.lifecycle_hooks = vec![LifecycleHookRef {
        target_arn: format!("{HOOK_FUNCTION}:live"),
        role_arn: Some("arn:aws:iam::123456789012:role/deckhand-hook".into()),
        stages: crate::domain::hook::HOOK_STAGES.iter().map(|s| s.to_string()).collect(),
    }];
    let deployment_id = service.deployments[0].id.clone();
    let service_arn = service.arn.clone();
    let cluster_arn = service.cluster_arn.clone();
    cloud.set_service(service);
    cloud.with(|s| {
        s.service_deployments.insert(
            SERVICE_DEPLOYMENT.into(),
            ServiceDeploymentSnapshot {
                arn: SERVICE_DEPLOYMENT.into(),
                service_arn,
                cluster_arn,
                status: "IN_PROGRESS".into(),
                started_at: Some(50.0),
                ..Default::default()
            },
        );
        s.tasks.push(TaskSnapshot {
            arn: "arn:aws:ecs:us-east-1:123456789012:task/prod/t1".into(),
            task_definition: definition.clone(),
            started_by: Some(deployment_id),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            started_at: Some(60.0),
            private_ip: Some("10.0.0.7".into()),
            ..Default::default()
        });
        let target =
            TargetSnapshot { id: "10.0.0.7".into(), port: Some(5000), state: TargetState::Healthy, reason: None };
        s.targets.insert(GREEN.into(), vec![target]);
        s.alarms.push(AlarmSnapshot {
            name: "api-5xx".into(),
            in_alarm: false,
            state_changed_at: Some(1.0),
            state_reason: String::new(),
        });
    });
    cloud
}

fn event(stage: &str, hook_details: serde_json::Value) -> HookEvent {
    serde_json::from_value(json!({
        "executionId": "hook-1",
        "lifecycleStage": stage,
        "resourceArn": SERVICE_DEPLOYMENT,
        "executionDetails": {"serviceArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/api"),
                              "targetServiceRevisionArn": "arn:rev:2", "productionTrafficWeights": {"arn:rev:2": 100.0}},
        "hookDetails": hook_details
    }))
    .unwrap()
}

#[tokio::test]
async fn the_hook_bakes_with_the_services_own_tags_and_fails_on_its_alarm() {
    let cloud = hooked_service("30");
    let defaults = settings().defaults;
    let first = answer_hook(
        &cloud,
        &cloud,
        &cloud,
        &cloud,
        &defaults,
        &event("POST_PRODUCTION_TRAFFIC_SHIFT", json!({})),
        100.0,
    )
    .await
    .unwrap();
    assert_eq!(first.hook_status, HookStatus::InProgress, "{}", first.reason);
    assert!(first.reason.contains("0s of 30s"), "deckhand:bake of the service: {}", first.reason);
    let details = serde_json::Value::Object(first.hook_details.unwrap());
    cloud.with(|s| {
        s.alarms[0] = AlarmSnapshot {
            name: "api-5xx".into(),
            in_alarm: true,
            state_changed_at: Some(110.0),
            state_reason: "5xx > 1%".into(),
        }
    });
    let second =
        answer_hook(&cloud, &cloud, &cloud, &cloud, &defaults, &event("POST_PRODUCTION_TRAFFIC_SHIFT", details), 115.0)
            .await
            .unwrap();
    assert_eq!(second.hook_status, HookStatus::Failed);
    let recorded = cloud.with(|s| s.hook_failures.get(&hook_failure_key(&cloud_service_arn())).cloned()).unwrap();
    assert_eq!(
        (recorded.stage.as_str(), recorded.reason.as_str()),
        ("POST_PRODUCTION_TRAFFIC_SHIFT", "CloudWatch alarm in ALARM: api-5xx (5xx > 1%)")
    );
    assert!(
        !cloud
            .mutating_calls()
            .iter()
            .any(|c| c.starts_with("UpdateService") || c.starts_with("StopServiceDeployment")),
        "ECS rolls back, not deckhand"
    );
}

fn cloud_service_arn() -> String {
    format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/prod/api")
}

#[tokio::test]
async fn a_service_deployment_ecs_does_not_show_yet_is_asked_about_again() {
    let cloud = hooked_service("0");
    cloud.with(|s| s.service_deployments.clear());
    let defaults = settings().defaults;
    let answer =
        answer_hook(&cloud, &cloud, &cloud, &cloud, &defaults, &event("POST_TEST_TRAFFIC_SHIFT", json!({})), 100.0)
            .await
            .unwrap();
    assert_eq!((answer.hook_status, answer.call_back_delay), (HookStatus::InProgress, Some(5)));
    let details = serde_json::Value::Object(answer.hook_details.unwrap());
    let later =
        answer_hook(&cloud, &cloud, &cloud, &cloud, &defaults, &event("POST_TEST_TRAFFIC_SHIFT", details), 140.0)
            .await
            .unwrap();
    assert_eq!(later.hook_status, HookStatus::Failed, "{}", later.reason);
}

#[tokio::test]
async fn the_plan_moves_the_gates_and_the_bake_into_the_hook() {
    let cloud = hooked_service("30");
    let (target, _) = target_for(&cloud.service("api"), &settings(), Mode::Deploy, vec![]);
    assert!(target.policy.gated_by_hook);
    assert_eq!((target.policy.bake_seconds, target.policy.hook_bake_seconds), (0, 30));
    let mut unhooked = settings();
    unhooked.hook_function_arn = Some("arn:aws:lambda:us-east-1:123456789012:function:someone-elses".into());
    let (target, _) = target_for(&cloud.service("api"), &unhooked, Mode::Deploy, vec![]);
    assert!(!target.policy.gated_by_hook && target.policy.bake_seconds == 30);
}

#[tokio::test]
async fn the_check_leaves_the_gates_to_the_hook_and_quotes_its_failure_once_ecs_rolled_back() {
    let cloud = hooked_service("30");
    let change = ContainerChange { name: "web".into(), image: format!("{REGISTRY}/shop@{}", digest(2)) };
    let (target, _) = target_for(&cloud.service("api"), &settings(), Mode::Deploy, vec![change]);
    let rollout = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    let request = CheckRequest {
        target: target.clone(),
        rollout,
        health: Health::default(),
        lock: None,
        after_bake: false,
        rollback: false,
    };
    cloud.with(|s| {
        s.alarms[0] = AlarmSnapshot {
            name: "api-5xx".into(),
            in_alarm: true,
            state_changed_at: Some(110.0),
            state_reason: String::new(),
        }
    });
    let mut service = cloud.service("api");
    service.current_service_deployment = Some(SERVICE_DEPLOYMENT.into());
    cloud.set_service(service);
    let during = check(&cloud, &cloud, &cloud, &cloud, &request, 120.0).await.unwrap();
    assert_eq!(
        during.verdict,
        Verdict::Pending,
        "the hook judges the alarm inside ECS's deployment: {}",
        during.reason
    );
    assert!(!cloud.with(|s| s.calls.iter().any(|c| c.starts_with("DescribeAlarms"))));
    // The hook failed; ECS rolled back to the revision that ran before.
    let failure = HookFailure {
        service_deployment_arn: SERVICE_DEPLOYMENT.into(),
        stage: "POST_PRODUCTION_TRAFFIC_SHIFT".into(),
        reason: "CloudWatch alarm in ALARM: api-5xx".into(),
        at: 130.0,
    };
    cloud.with(|s| s.hook_failures.insert(hook_failure_key(&target.service_arn), failure));
    cloud.with(|s| s.service_deployments.get_mut(SERVICE_DEPLOYMENT).unwrap().status = "ROLLBACK_SUCCESSFUL".into());
    let mut service = cloud.service("api");
    service.deployments.retain(|d| d.task_definition != request.rollout.task_definition);
    service.deployments[0].status = "PRIMARY".into();
    service.deployments[0].rollout_state_reason = Some("ECS deployment rolling back to deploymentId ecs-svc/1".into());
    service.task_definition = service.deployments[0].task_definition.clone();
    cloud.set_service(service);
    let after = check(&cloud, &cloud, &cloud, &cloud, &request, 200.0).await.unwrap();
    assert_eq!(after.verdict, Verdict::Failed);
    assert!(after.reason.starts_with("deckhand's lifecycle hook failed the deployment at POST_PRODUCTION_TRAFFIC_SHIFT: CloudWatch alarm in ALARM: api-5xx; "), "{}", after.reason);
}
