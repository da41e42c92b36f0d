//! Use-case tests over the in-memory cloud: what each function does, and what it must not touch.

use super::deploy::deploy;
use super::lock::{acquire, release, LockDecision};
use super::notify::{notify, Branch, Outcome};
use super::plan::{plan, plan_service, unwrap_invocation, Execution, Invocation, ServicePart};
use super::rollback::{rollback, Images, Undo};
use super::settings::PlanSettings;
use crate::domain::events::Status;
use crate::domain::image::RegistryPolicy;
use crate::domain::ledger::HolderStatus;
use crate::domain::model::{Mode, PlanAction, Policy, RolloutOutcome, Target};
use crate::error::DeckhandError;
use crate::testing::*;
use serde_json::{json, Value};

pub(super) fn settings() -> PlanSettings {
    PlanSettings {
        repositories: vec![],
        clusters: vec![],
        registry: RegistryPolicy {
            account_registry: REGISTRY.into(),
            allowed: vec!["public.ecr.aws".into()],
            registry_accounts: vec!["210987654321".into()],
        },
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        defaults: Policy {
            poll_seconds: 5,
            recheck_seconds: 60,
            timeout_seconds: 600,
            bake_seconds: 0,
            max_failed_tasks: 2,
            unhealthy_checks: 3,
            gates: Default::default(),
            gated_by_hook: false,
            hook_bake_seconds: 0,
        },
        max_concurrency: 4,
        hook_function_arn: Some(HOOK_FUNCTION.into()),
    }
}

pub(super) const HOOK_FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:deckhand-hook";

pub(super) fn execution() -> Execution {
    Execution {
        arn: "arn:aws:states:us-east-1:123456789012:execution:deckhand-deploy:manual-1".into(),
        started_at: 5_000.0,
    }
}

pub(super) fn push(repository: &str, tag: &str, digest: &str) -> Value {
    json!({"version":"0","id":format!("event-{repository}-{digest}"),"detail-type":"ECR Image Action","source":"aws.ecr",
        "account":ACCOUNT,"time":"2026-11-23T10:00:00Z","region":"us-east-1","resources":[],
        "detail":{"result":"SUCCESS","repository-name":repository,"image-digest":digest,"action-type":"PUSH","image-tag":tag}})
}

/// Two clusters: a Flask API and a React front end in prod, a two-container todo service, an
/// untracked service and a staging API tracking another tag.
pub(super) fn seeded() -> FakeCloud {
    let cloud = FakeCloud::default();
    let api = cloud.add_task_definition("api", 1, &[("web", "flask-backend:old")]);
    let front = cloud.add_task_definition("front", 1, &[("ui", "react-front:old")]);
    let todo = cloud.add_task_definition("todo", 1, &[("app", "todo/main:old"), ("files", "todo/files:old")]);
    let legacy = cloud.add_task_definition("legacy", 1, &[("web", "flask-backend:old")]);
    cloud.add_service("prod", "api", &api, &[("deckhand:track", "web=flask-backend:main")]);
    cloud.add_service("prod", "front", &front, &[("deckhand:track", "ui=react-front:main")]);
    cloud.add_service("prod", "todo", &todo, &[("deckhand:track", "app=todo/main:prod files=todo/files:prod")]);
    cloud.add_service("prod", "legacy", &legacy, &[("owner", "someone")]);
    cloud.add_service(
        "staging",
        "api",
        &api,
        &[("deckhand:track", "web=flask-backend:dev"), ("deckhand:timeout", "120")],
    );
    cloud
}

#[tokio::test]
async fn a_push_targets_exactly_the_services_tracking_that_repository_and_tag() {
    let cloud = seeded();
    let plan =
        plan(&cloud, &cloud, &settings(), &push("flask-backend", "main", &digest(1)), &execution()).await.unwrap();
    assert_eq!(plan.action, PlanAction::Deploy);
    assert_eq!(plan.targets.len(), 1, "{:?}", plan.targets);
    let target = &plan.targets[0];
    assert_eq!((target.cluster.as_str(), target.service.as_str()), ("prod", "api"));
    assert_eq!(target.containers[0].image, format!("{REGISTRY}/flask-backend@{}", digest(1)), "pinned by digest");
    assert_eq!(target.request_id, format!("event-flask-backend-{}", digest(1)));
    assert!(cloud.mutating_calls().is_empty(), "planning changes nothing");

    let staging = plan_for(&cloud, push("flask-backend", "dev", &digest(2))).await;
    assert_eq!(staging.targets[0].cluster, "staging");
    assert_eq!(staging.targets[0].policy.timeout_seconds, 120, "policy tags apply");
}

pub(super) async fn plan_for(cloud: &FakeCloud, input: Value) -> crate::domain::model::Plan {
    plan(cloud, cloud, &settings(), &input, &execution()).await.unwrap()
}

#[tokio::test]
async fn several_services_and_several_containers() {
    let cloud = seeded();
    let other = cloud.add_task_definition("worker", 1, &[("web", "flask-backend:old"), ("cron", "flask-backend:old")]);
    cloud.add_service(
        "prod",
        "worker",
        &other,
        &[("deckhand:track", "web=flask-backend:main cron=flask-backend:main")],
    );
    let plan = plan_for(&cloud, push("flask-backend", "main", &digest(3))).await;
    assert_eq!(plan.targets.len(), 2);
    let worker = plan.targets.iter().find(|t| t.service == "worker").unwrap();
    assert_eq!(worker.containers.len(), 2, "both containers of one task definition");

    let files = plan_for(&cloud, push("todo/files", "prod", &digest(4))).await;
    assert_eq!(files.targets.len(), 1);
    assert_eq!(files.targets[0].containers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["files"]);
}

#[tokio::test]
async fn untracked_tags_other_accounts_and_non_pushes_deploy_nothing() {
    let cloud = seeded();
    for input in [
        push("flask-backend", "feature-x", &digest(1)),
        push("unknown-repo", "main", &digest(1)),
        {
            let mut p = push("flask-backend", "main", &digest(1));
            p["account"] = json!("999999999999");
            p
        },
        {
            let mut p = push("flask-backend", "main", &digest(1));
            p["detail"]["action-type"] = json!("DELETE");
            p
        },
    ] {
        let plan = plan_for(&cloud, input.clone()).await;
        assert_eq!(plan.action, PlanAction::Nothing, "{input}");
        assert!(plan.targets.is_empty());
    }
}

#[tokio::test]
async fn a_malformed_track_tag_is_reported_and_never_guessed() {
    let cloud = seeded();
    let td = cloud.add_task_definition("broken", 1, &[("web", "flask-backend:old")]);
    cloud.add_service("prod", "broken", &td, &[("deckhand:track", "web=flask-backend")]);
    let plan = plan_for(&cloud, push("flask-backend", "main", &digest(1))).await;
    assert_eq!(plan.targets.len(), 1);
    assert!(plan.warnings.iter().any(|w| w.contains("broken")), "{:?}", plan.warnings);
}

#[tokio::test]
async fn manual_deploy_resolves_the_tag_to_a_digest() {
    let cloud = seeded();
    cloud.add_image("flask-backend", "v2", &digest(9));
    let plan = plan_for(&cloud, json!({"cluster":"prod","service":"api","image":"flask-backend:v2"})).await;
    assert_eq!(plan.targets[0].containers[0].image, format!("{REGISTRY}/flask-backend@{}", digest(9)));
    assert_eq!(plan.targets[0].request_id, execution().arn);
    assert_eq!(plan.targets[0].pushed_at, execution().started_at);
    assert_eq!(plan.targets[0].trigger, crate::domain::model::Trigger::Manual);
    let rollback = plan_for(&cloud, json!({"cluster":"prod","service":"api","rollback":true})).await;
    assert_eq!(rollback.targets[0].trigger, crate::domain::model::Trigger::Manual);
    let pushed = plan_for(&cloud, push("flask-backend", "main", &digest(9))).await;
    assert_eq!(pushed.targets[0].trigger, crate::domain::model::Trigger::Push);
}

#[tokio::test]
async fn manual_requests_that_must_be_refused() {
    let cloud = seeded();
    cloud.add_image("flask-backend", "v2", &digest(9));
    let cases = [
        (json!({"cluster":"prod","service":"legacy","image":"flask-backend:v2"}), "service"),
        (json!({"cluster":"prod","service":"nope","image":"flask-backend:v2"}), "service"),
        (json!({"cluster":"prod","service":"api","image":"docker.io/library/flask:v2"}), "image"),
        (
            json!({"cluster":"prod","service":"api","image":"999999999999.dkr.ecr.us-east-1.amazonaws.com/flask-backend:v2"}),
            "image",
        ),
        (json!({"cluster":"prod","service":"api","image":"public.ecr.aws/x/flask:v2"}), "image"),
        (json!({"cluster":"prod","service":"api","image":"flask-backend:v404"}), "image"),
        (json!({"cluster":"prod","service":"api","image":"other-repo:v2"}), "image"),
        (json!({"cluster":"prod","service":"api","image":"flask-backend:v2","container":"sidecar"}), "container"),
        (json!({"cluster":"prod","service":"legacy","rollback":true}), "service"),
    ];
    for (input, field) in cases {
        match plan(&cloud, &cloud, &settings(), &input, &execution()).await {
            Err(DeckhandError::InvalidInput { field: got, .. }) => assert_eq!(got, field, "{input}"),
            other => panic!("{input}: expected InvalidInput({field}), got {other:?}"),
        }
    }
    let mut watched = settings();
    watched.clusters = vec!["staging".into()];
    let refused = plan(
        &cloud,
        &cloud,
        &watched,
        &json!({"cluster":"prod","service":"api","image":"flask-backend:v2"}),
        &execution(),
    )
    .await;
    assert!(matches!(refused, Err(DeckhandError::InvalidInput { ref field, .. }) if field == "cluster"), "{refused:?}");
    assert!(cloud.mutating_calls().is_empty());
}

#[tokio::test]
async fn allow_listed_registries_need_a_digest() {
    let cloud = seeded();
    let input = json!({"cluster":"prod","service":"api","container":"web","image":format!("public.ecr.aws/x/flask@{}", digest(5))});
    let plan = plan_for(&cloud, input).await;
    assert_eq!(plan.targets[0].containers[0].image, format!("public.ecr.aws/x/flask@{}", digest(5)));
}

#[tokio::test]
async fn dry_run_shows_the_diff_and_changes_nothing() {
    let cloud = seeded();
    cloud.add_image("flask-backend", "v2", &digest(9));
    let plan =
        plan_for(&cloud, json!({"cluster":"prod","service":"api","image":"flask-backend:v2","dryRun":true})).await;
    assert!(plan.dry_run);
    let diff = plan.targets[0].diff.as_ref().unwrap().join("\n");
    assert!(diff.contains("container web: image flask-backend:old ->"), "{diff}");
    assert!(cloud.mutating_calls().is_empty());
}

#[test]
fn the_state_machine_wrapper_is_unwrapped_and_raw_events_pass_through() {
    let wrapped =
        json!({"request": {"cluster":"prod"}, "execution": {"arn": "arn:x", "startTime": "2026-11-23T10:00:00.123Z"}});
    let Invocation::Fan { request, execution } = unwrap_invocation(wrapped, "req-1", 1.0) else { panic!("fan") };
    assert_eq!(request, json!({"cluster":"prod"}));
    assert_eq!(execution.arn, "arn:x");
    assert!((execution.started_at - 1_795_428_000.123).abs() < 1e-3);
    let Invocation::Fan { request, execution } = unwrap_invocation(json!({"cluster":"prod"}), "req-1", 1.0) else {
        panic!("fan")
    };
    assert_eq!((request, execution.arn.as_str()), (json!({"cluster":"prod"}), "req-1"));
    let child = json!({"request": {"cluster":"prod"}, "execution": {"arn": "arn:parent"}, "service": "arn:svc", "pushedAt": 5.5});
    let Invocation::Service { part, .. } = unwrap_invocation(child, "req-1", 1.0) else { panic!("service") };
    assert_eq!(
        (part.service.as_str(), part.execution.arn.as_str(), part.pushed_at),
        ("arn:svc", "arn:parent", Some(5.5))
    );
}

#[tokio::test]
async fn the_fan_out_carries_service_arns_and_each_service_plans_its_own_target_again() {
    let cloud = seeded();
    let fan = plan_for(&cloud, push("todo/files", "prod", &digest(7))).await;
    let whole = fan.targets.clone();
    let fan = fan.for_fan_out();
    assert!(fan.targets.is_empty(), "the fan-out's payload must not grow with whole targets");
    assert_eq!(fan.services, whole.iter().map(|t| t.service_arn.clone()).collect::<Vec<_>>());
    for (service, planned) in fan.services.iter().zip(&whole) {
        let part = ServicePart {
            service: service.clone(),
            execution: Execution { arn: "arn:parent".into(), started_at: 1.0 },
            pushed_at: fan.pushed_at,
        };
        let again = plan_service(&cloud, &cloud, &cloud, &settings(), &push("todo/files", "prod", &digest(7)), &part)
            .await
            .unwrap();
        assert_eq!(again.targets, vec![planned.clone()], "the child's target is the one the fan-out planned");
    }
}

#[tokio::test]
async fn a_service_that_stopped_tracking_the_push_is_nothing_to_its_own_execution() {
    let cloud = seeded();
    let fan = plan_for(&cloud, push("todo/files", "prod", &digest(7))).await.for_fan_out();
    let part = ServicePart {
        service: fan.services[0].clone(),
        execution: Execution { arn: "arn:parent".into(), started_at: 1.0 },
        pushed_at: fan.pushed_at,
    };
    let again = plan_service(&cloud, &cloud, &cloud, &settings(), &push("todo/files", "other", &digest(7)), &part)
        .await
        .unwrap();
    assert!(again.targets.is_empty() && again.reason.contains("no longer tracks"), "{}", again.reason);
}

pub(super) async fn deploy_target(cloud: &FakeCloud, n: u8) -> Target {
    // The pushed image exists (by digest only: what the tag names is each test's business).
    cloud.add_image_by_digest("todo/files", &digest(n), &[]);
    let mut plan = plan_for(cloud, push("todo/files", "prod", &digest(n))).await;
    plan.targets.remove(0)
}

#[tokio::test]
async fn deploy_registers_a_clone_and_updates_the_service() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let rollout = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    assert_eq!(rollout.outcome, RolloutOutcome::Started);
    assert_eq!(rollout.task_definition, td_arn("todo", 2));
    assert_eq!(rollout.previous_task_definition.as_deref(), Some(td_arn("todo", 1).as_str()));
    let (registered, tags) = cloud.with(|s| s.task_definitions[&td_arn("todo", 2)].clone());
    let images: Vec<_> = registered.container_definitions().iter().map(|c| c.image().unwrap().to_string()).collect();
    assert_eq!(images, ["todo/main:old".to_string(), format!("{REGISTRY}/todo/files@{}", digest(7))]);
    assert_eq!(tags[0].key(), Some("team"));
    let service = cloud.service("todo");
    assert_eq!(service.task_definition, td_arn("todo", 2));
    assert_eq!(rollout.deployment_id.as_deref(), Some(service.deployments[0].id.as_str()));
}

#[tokio::test]
async fn deploying_what_already_runs_changes_nothing_unless_forced() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let first = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    // Settle the rollout, then the same push again.
    let mut service = cloud.service("todo");
    service.deployments.truncate(1);
    service.deployments[0].rollout_state = "COMPLETED".into();
    cloud.set_service(service);
    let mut again = deploy_target(&cloud, 7).await;
    let calls = cloud.mutating_calls().len();
    let second = deploy(&cloud, &cloud, &again, None, 200.0).await.unwrap();
    assert_eq!(second.outcome, RolloutOutcome::UpToDate);
    assert_eq!(cloud.mutating_calls().len(), calls, "nothing registered or updated");

    again.force_new_deployment = true;
    let forced = deploy(&cloud, &cloud, &again, None, 300.0).await.unwrap();
    assert_eq!(forced.outcome, RolloutOutcome::Started);
    assert_eq!(forced.task_definition, first.task_definition, "same revision, new deployment");
    assert!(cloud.mutating_calls().last().unwrap().ends_with("force=true"));
}

#[tokio::test]
async fn rollback_goes_to_the_verified_revision() {
    let cloud = seeded();
    let owner = "arn:aws:states:us-east-1:1:execution:d:e1";
    let good = deploy_target(&cloud, 7).await;
    let good_rollout = deploy(&cloud, &cloud, &good, None, 100.0).await.unwrap();
    acquire(&cloud, &cloud, &cloud, &good, owner, 100.0, 3600.0).await.unwrap();
    release(&cloud, &good, owner, Some(&good_rollout.task_definition), Some(Status::Succeeded), 150.0).await.unwrap();
    // An unverified revision 3 got deployed out of band, then revision 4 fails.
    let bad = deploy_target(&cloud, 8).await;
    let _unverified = deploy(&cloud, &cloud, &bad, None, 200.0).await.unwrap();
    let worse = deploy_target(&cloud, 9).await;
    let failed = deploy(&cloud, &cloud, &worse, None, 300.0).await.unwrap();
    assert_eq!(failed.task_definition, td_arn("todo", 4));

    let back = roll_back_failed(&cloud, &worse, &failed, 400.0).await;
    assert_eq!(back.task_definition, td_arn("todo", 2), "the verified revision, not revision − 1");
    assert_eq!(cloud.service("todo").task_definition, td_arn("todo", 2));
}

#[tokio::test]
async fn rollback_of_a_first_deployment_uses_the_revision_completed_at_start() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let failed = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    let back = roll_back_failed(&cloud, &target, &failed, 200.0).await;
    assert_eq!(back.task_definition, td_arn("todo", 1));
}

#[tokio::test]
async fn rollback_with_nothing_known_good_fails_with_a_clear_error() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let mut failed = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    failed.previous_task_definition = None;
    let error = rollback(
        &cloud,
        &cloud,
        Images::new(&cloud, REGISTRY),
        &target,
        Undo { failed: Some(&failed), previous: None },
        false,
        200.0,
    )
    .await
    .unwrap_err();
    assert_eq!(error.name(), "NoKnownGoodRevision");
}

#[tokio::test]
async fn rollback_watches_a_circuit_breaker_rollback_instead_of_starting_another() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let failed = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    let mut service = cloud.service("todo");
    service.deployments[0].status = "ACTIVE".into();
    service.deployments[0].rollout_state = "FAILED".into();
    service.deployments[1].status = "PRIMARY".into();
    service.deployments[1].rollout_state = "IN_PROGRESS".into();
    service.task_definition = td_arn("todo", 1);
    cloud.set_service(service);
    let updates_before = cloud.mutating_calls().iter().filter(|c| c.starts_with("UpdateService")).count();
    let back = roll_back_failed(&cloud, &target, &failed, 200.0).await;
    assert_eq!(back.task_definition, td_arn("todo", 1));
    assert!(back.reason.contains("already back"), "{}", back.reason);
    assert_eq!(cloud.mutating_calls().iter().filter(|c| c.starts_with("UpdateService")).count(), updates_before);
}

/// A native (BLUE_GREEN) service whose service deployment of the failed revision is in progress.
fn native_in_progress(cloud: &FakeCloud) -> &'static str {
    const ARN: &str = "arn:aws:ecs:us-east-1:1:service-deployment/prod/todo/abc";
    let mut service = cloud.service("todo");
    service.deployment_strategy = crate::domain::status::DeploymentStrategy::BlueGreen;
    service.current_service_deployment = Some(ARN.into());
    service.deployments[0].rollout_state = "IN_PROGRESS".into();
    cloud.set_service(service);
    cloud.with(|s| {
        s.service_deployments.insert(
            ARN.into(),
            crate::domain::snapshot::ServiceDeploymentSnapshot {
                arn: ARN.into(),
                status: "IN_PROGRESS".into(),
                ..Default::default()
            },
        )
    });
    ARN
}

#[tokio::test]
async fn a_native_deployment_in_progress_is_rolled_back_by_ecs_not_by_another_update() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let failed = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    let arn = native_in_progress(&cloud);
    let updates_before = cloud.mutating_calls().iter().filter(|c| c.starts_with("UpdateService")).count();
    let back = roll_back_failed(&cloud, &target, &failed, 200.0).await;
    assert_eq!(back.task_definition, td_arn("todo", 1));
    assert!(back.reason.contains("asked ECS to roll back its BLUE_GREEN deployment"), "{}", back.reason);
    assert!(cloud.with(|s| s.calls.contains(&format!("StopServiceDeployment {arn} ROLLBACK"))));
    assert_eq!(cloud.mutating_calls().iter().filter(|c| c.starts_with("UpdateService")).count(), updates_before);
}

#[tokio::test]
async fn a_native_deployment_that_already_ended_is_rolled_back_by_a_new_deployment() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let failed = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    let arn = native_in_progress(&cloud);
    // ECS finished (SUCCESSFUL) before deckhand's gate failed: StopServiceDeployment is refused.
    cloud.with(|s| s.service_deployments.get_mut(arn).unwrap().status = "SUCCESSFUL".into());
    let back = roll_back_failed(&cloud, &target, &failed, 200.0).await;
    assert_eq!(back.task_definition, td_arn("todo", 1));
    assert_eq!(cloud.service("todo").task_definition, td_arn("todo", 1), "an UpdateService went back");
}

#[tokio::test]
async fn a_read_from_before_the_update_is_not_taken_for_ecs_having_gone_back() {
    // Found by the e2e alarm test: the alarm fired within ECS's read lag of deckhand's
    // UpdateService, and the rollback's DescribeServices still showed the service on todo:1.
    let cloud = seeded();
    let before = cloud.service("todo");
    let target = deploy_target(&cloud, 7).await;
    let failed = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    cloud.with(|s| s.stale_service_reads.push_back(before));
    let back = roll_back_failed(&cloud, &target, &failed, 101.0).await;
    assert_eq!(back.task_definition, td_arn("todo", 1));
    assert!(!back.reason.contains("already back"), "{}", back.reason);
    assert_eq!(cloud.service("todo").task_definition, td_arn("todo", 1), "deckhand's own UpdateService went back");
}

#[tokio::test]
async fn a_failure_before_the_service_changed_needs_no_rollback() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let result =
        rollback(&cloud, &cloud, Images::new(&cloud, REGISTRY), &target, Undo::default(), false, 200.0).await.unwrap();
    assert_eq!(result.outcome, RolloutOutcome::UpToDate);
    assert!(cloud.mutating_calls().is_empty());
}

#[tokio::test]
async fn manual_rollback_dry_run_names_the_target_and_changes_nothing() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let rollout = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    acquire(&cloud, &cloud, &cloud, &target, "e1", 100.0, 3600.0).await.unwrap();
    release(&cloud, &target, "e1", Some(&rollout.task_definition), Some(Status::Succeeded), 150.0).await.unwrap();
    let newer = deploy_target(&cloud, 8).await;
    let newer_rollout = deploy(&cloud, &cloud, &newer, None, 200.0).await.unwrap();
    acquire(&cloud, &cloud, &cloud, &newer, "e2", 200.0, 3600.0).await.unwrap();
    release(&cloud, &newer, "e2", Some(&newer_rollout.task_definition), Some(Status::Succeeded), 250.0).await.unwrap();
    let mut manual = newer.clone();
    manual.mode = Mode::Rollback;
    manual.containers.clear();
    let calls = cloud.mutating_calls().len();
    let preview =
        rollback(&cloud, &cloud, Images::new(&cloud, REGISTRY), &manual, Undo::default(), true, 300.0).await.unwrap();
    assert_eq!(preview.task_definition, td_arn("todo", 2), "the verified one before the current");
    assert!(preview.reason.starts_with("dry run"));
    assert_eq!(cloud.mutating_calls().len(), calls);
}

#[tokio::test]
async fn the_lock_serialises_and_recovers() {
    let cloud = seeded();
    let first = deploy_target(&cloud, 7).await;
    let second = deploy_target(&cloud, 8).await;
    let (a, b) = ("arn:exec:a", "arn:exec:b");
    cloud.with(|s| s.executions.insert(a.into(), HolderStatus::Running));
    assert_eq!(
        acquire(&cloud, &cloud, &cloud, &first, a, 100.0, 3600.0).await.unwrap().decision,
        LockDecision::Acquired
    );
    let busy = acquire(&cloud, &cloud, &cloud, &second, b, 101.0, 3600.0).await.unwrap_err();
    assert_eq!(busy.name(), "LockBusy");
    let duplicate = acquire(&cloud, &cloud, &cloud, &first, b, 102.0, 3600.0).await.unwrap();
    assert_eq!(duplicate.decision, LockDecision::Skipped);
    // The holder dies without releasing: the next attempt takes over.
    cloud.with(|s| s.executions.insert(a.into(), HolderStatus::Gone));
    assert_eq!(
        acquire(&cloud, &cloud, &cloud, &second, b, 103.0, 3600.0).await.unwrap().decision,
        LockDecision::Acquired
    );
}

fn branch(target: Target, extra: Value) -> Branch {
    let mut value = json!({"target": target, "executionArn": "arn:exec:1", "rollout": {}, "health": {}, "failure": {}, "rollback": {}, "rollbackHealth": {}});
    for (k, v) in extra.as_object().unwrap() {
        value[k] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn notify_publishes_one_event_with_the_contract_fields() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let failed = json!({"outcome":"STARTED","taskDefinition":td_arn("todo",2),"previousTaskDefinition":td_arn("todo",1),"deploymentId":"ecs-svc/9","startedAt":1.0});
    let rolled = json!({"outcome":"STARTED","taskDefinition":td_arn("todo",1),"previousTaskDefinition":td_arn("todo",2),"startedAt":2.0,"reason":"rolling back"});
    let b = branch(
        target.clone(),
        json!({"rollout": failed, "health": {"verdict":"FAILED","reason":"2 task(s) stopped"}, "rollback": rolled}),
    );
    let result = notify(&cloud, Status::RolledBack, &b).await.unwrap();
    assert_eq!(result.outcome, Outcome::RolledBack);
    let events = cloud.with(|s| s.events.clone());
    assert_eq!(events.len(), 1);
    let event = serde_json::to_value(&events[0]).unwrap();
    for field in [
        "cluster",
        "service",
        "image",
        "status",
        "reason",
        "taskDefinition",
        "previousTaskDefinition",
        "executionArn",
        "trigger",
    ] {
        assert!(event.get(field).is_some_and(|v| !v.is_null()), "missing {field}: {event}");
    }
    assert_eq!(event["status"], "ROLLED_BACK");
    assert_eq!(event["trigger"], "push", "the target came from a push");
    assert_eq!(event["taskDefinition"], td_arn("todo", 1));
    assert_eq!(event["previousTaskDefinition"], td_arn("todo", 2));
    assert!(event["reason"].as_str().unwrap().contains("2 task(s) stopped"));

    // A Lambda error caught by the state machine reads as its message.
    let caught = branch(
        target.clone(),
        json!({"failure": {"Error":"AwsRequestFailed","Cause":"{\"errorType\":\"AwsRequestFailed\",\"errorMessage\":\"UpdateService: denied\"}"}}),
    );
    let failed = notify(&cloud, Status::Failed, &caught).await.unwrap();
    assert_eq!(failed.outcome, Outcome::Failed);
    assert!(failed.reason.contains("UpdateService: denied"), "{}", failed.reason);

    let mut manual = target;
    manual.mode = Mode::Rollback;
    let manual_back = branch(manual, json!({"rollback": rolled}));
    assert_eq!(
        notify(&cloud, Status::RolledBack, &manual_back).await.unwrap().outcome,
        Outcome::Ok,
        "a requested rollback is a success"
    );
}

#[tokio::test]
async fn a_cluster_named_by_name_and_by_arn_yields_one_target_per_service() {
    let cloud = seeded();
    let mut twice = settings();
    twice.clusters = vec!["prod".into(), format!("arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/prod")];
    let plan = plan(&cloud, &cloud, &twice, &push("flask-backend", "main", &digest(1)), &execution()).await.unwrap();
    assert_eq!(plan.targets.len(), 1, "{:?}", plan.targets.iter().map(|t| &t.service_arn).collect::<Vec<_>>());
}

#[tokio::test]
async fn services_deckhand_cannot_verify_are_skipped_with_a_reason_and_refused_manually() {
    use crate::domain::status::{DeploymentController, DeploymentStrategy};
    type Change = fn(&mut crate::domain::snapshot::ServiceSnapshot);
    let cases: [(&str, Change); 3] = [
        ("CODE_DEPLOY", |s| s.deployment_controller = DeploymentController::CodeDeploy),
        ("EXTERNAL", |s| s.deployment_controller = DeploymentController::External),
        ("BLUE_GREEN", |s| {
            // A native strategy behind a load balancer without the alternate target group.
            s.deployment_strategy = DeploymentStrategy::BlueGreen;
            s.load_balancers = cloud_load_balancer();
        }),
    ];
    for (why, change) in cases {
        let cloud = seeded();
        let mut service = cloud.service("api");
        change(&mut service);
        cloud.set_service(service);
        let planned = plan_for(&cloud, push("flask-backend", "main", &digest(1))).await;
        assert_eq!(planned.targets.len(), 1);
        let reason = planned.targets[0].skip_reason.as_deref().unwrap_or_else(|| panic!("{why}: not skipped"));
        assert!(reason.contains(why), "{why}: {reason}");
        assert!(planned.reason.contains("1 skipped"), "{}", planned.reason);

        let manual = json!({"cluster": "prod", "service": "api", "image": "flask-backend:main"});
        cloud.add_image("flask-backend", "main", &digest(1));
        let error = plan(&cloud, &cloud, &settings(), &manual, &execution()).await.unwrap_err();
        assert_eq!(error.name(), "InvalidInput", "{why}");
        assert!(error.to_string().contains(why), "{why}: {error}");
    }
    // Bridge and host network modes, with or without a load balancer: their targets are matched
    // by instance id and host port (health.rs), so they deploy like awsvpc services.
    for load_balancers in [vec![], cloud_load_balancer()] {
        let cloud = seeded();
        let mut service = cloud.service("api");
        service.awsvpc = false;
        service.load_balancers = load_balancers;
        cloud.set_service(service);
        let planned = plan_for(&cloud, push("flask-backend", "main", &digest(1))).await;
        assert!(planned.targets[0].skip_reason.is_none(), "{:?}", planned.targets[0].skip_reason);
    }
}

#[tokio::test]
async fn controllers_outside_ecs_are_told_the_migration_path() {
    use crate::domain::status::DeploymentController;
    let cloud = seeded();
    let mut service = cloud.service("api");
    service.deployment_controller = DeploymentController::CodeDeploy;
    cloud.set_service(service);
    let planned = plan_for(&cloud, push("flask-backend", "main", &digest(1))).await;
    let reason = planned.targets[0].skip_reason.clone().unwrap();
    assert!(reason.contains("ECS-native BLUE_GREEN"), "{reason}");
}

fn cloud_load_balancer() -> Vec<crate::domain::snapshot::LoadBalancerRef> {
    vec![crate::domain::snapshot::LoadBalancerRef {
        target_group_arn: Some("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/api/1".into()),
        container_name: Some("web".into()),
        container_port: Some(5000),
        ..Default::default()
    }]
}

#[tokio::test]
async fn push_order_comes_from_ecr_not_from_the_one_second_event_time() {
    let cloud = seeded();
    cloud.with(|s| {
        s.images.insert(
            ("flask-backend".into(), digest(1)),
            crate::domain::snapshot::ImageDetail {
                digest: digest(1),
                pushed_at: Some(1_800_000_000.25),
                tags: vec!["main".into()],
            },
        )
    });
    let plan = plan_for(&cloud, push("flask-backend", "main", &digest(1))).await;
    assert_eq!(plan.targets[0].pushed_at, 1_800_000_000.25);
    let pushed = plan.targets[0].pushed_tag.as_ref().unwrap();
    assert_eq!((pushed.repository.as_str(), pushed.tag.as_str()), ("flask-backend", "main"));
}

#[tokio::test]
async fn an_older_push_whose_tag_moved_on_is_superseded_before_anything_changes() {
    let cloud = seeded();
    let older = deploy_target(&cloud, 7).await;
    // The tag was pushed again (same second or not): ECR now names another digest.
    cloud.add_image("todo/files", "prod", &digest(8));
    let rollout = deploy(&cloud, &cloud, &older, None, 100.0).await.unwrap();
    assert_eq!(rollout.outcome, RolloutOutcome::Superseded);
    assert!(rollout.reason.contains(&digest(8)), "{}", rollout.reason);
    assert!(cloud.mutating_calls().is_empty(), "nothing registered or updated");
    // The newest push itself deploys.
    let newest = deploy_target(&cloud, 8).await;
    assert_eq!(deploy(&cloud, &cloud, &newest, None, 200.0).await.unwrap().outcome, RolloutOutcome::Started);
}

#[tokio::test]
async fn a_deploy_retried_after_its_update_went_through_keeps_the_previous_revision() {
    let cloud = seeded();
    let owner = "arn:aws:states:us-east-1:1:execution:d:e1";
    let target = deploy_target(&cloud, 7).await;
    let lock = acquire(&cloud, &cloud, &cloud, &target, owner, 50.0, 3600.0).await.unwrap();
    assert_eq!(lock.previous_task_definition.as_deref(), Some(td_arn("todo", 1).as_str()));
    let previous = lock.previous_task_definition.as_deref();
    let first = deploy(&cloud, &cloud, &target, previous, 100.0).await.unwrap();
    // The Lambda timed out after UpdateService: Step Functions retries the Deploy.
    let retried = deploy(&cloud, &cloud, &target, previous, 110.0).await.unwrap();
    assert_eq!(retried.task_definition, first.task_definition);
    assert_eq!(retried.previous_task_definition.as_deref(), Some(td_arn("todo", 1).as_str()));
    // The lock's own retry returns what the first attempt saw, not the new revision.
    let again = acquire(&cloud, &cloud, &cloud, &target, owner, 120.0, 3600.0).await.unwrap();
    assert_eq!(again.previous_task_definition.as_deref(), Some(td_arn("todo", 1).as_str()));
}

#[tokio::test]
async fn a_failed_deploy_does_not_undo_someone_elses_revision_but_does_undo_its_own() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    // Someone else moved the service to their own revision before deckhand's UpdateService.
    let theirs = cloud.add_task_definition("todo", 5, &[("app", "todo/main:hotfix"), ("files", "todo/files:hotfix")]);
    let mut service = cloud.service("todo");
    service.task_definition = theirs.clone();
    cloud.set_service(service);
    let result =
        rollback(&cloud, &cloud, Images::new(&cloud, REGISTRY), &target, Undo::default(), false, 200.0).await.unwrap();
    assert_eq!(result.outcome, RolloutOutcome::UpToDate, "{}", result.reason);
    assert!(cloud.mutating_calls().is_empty());

    // A Deploy whose UpdateService went through but which then failed is deckhand's to undo.
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    let undo = Undo { failed: None, previous: Some(&td_arn("todo", 1)) };
    let result = rollback(&cloud, &cloud, Images::new(&cloud, REGISTRY), &target, undo, false, 200.0).await.unwrap();
    assert_eq!(result.outcome, RolloutOutcome::Started, "{}", result.reason);
    assert_eq!(cloud.service("todo").task_definition, td_arn("todo", 1));
}

#[tokio::test]
async fn rollback_passes_over_a_revision_deregistered_too_recently_to_read_inactive() {
    let cloud = seeded();
    let owner = "arn:aws:states:us-east-1:1:execution:d:e1";
    for n in [7, 8] {
        let good = deploy_target(&cloud, n).await;
        let rollout = deploy(&cloud, &cloud, &good, None, 100.0 * f64::from(n)).await.unwrap();
        acquire(&cloud, &cloud, &cloud, &good, owner, 100.0 * f64::from(n), 3600.0).await.unwrap();
        let done = 100.0 * f64::from(n) + 50.0;
        release(&cloud, &good, owner, Some(&rollout.task_definition), Some(Status::Succeeded), done).await.unwrap();
    }
    let bad = deploy_target(&cloud, 9).await;
    let failed = deploy(&cloud, &cloud, &bad, None, 1000.0).await.unwrap();
    // The last known-good was deregistered a moment ago: its read still says ACTIVE, but
    // UpdateService refuses it.
    cloud.with(|s| s.deregistered_unseen.push(td_arn("todo", 3)));
    let back = roll_back_failed(&cloud, &bad, &failed, 1100.0).await;
    assert_eq!(back.outcome, RolloutOutcome::Started, "{}", back.reason);
    assert_eq!(back.task_definition, td_arn("todo", 2), "the next verified one");
    assert_eq!(cloud.service("todo").task_definition, td_arn("todo", 2));
    assert!(back.reason.contains("todo:3 passed over: UpdateService refused it as inactive"), "{}", back.reason);
}

#[tokio::test]
async fn rollback_passes_over_a_deregistered_known_good_revision() {
    let cloud = seeded();
    let owner = "arn:aws:states:us-east-1:1:execution:d:e1";
    for n in [7, 8] {
        let good = deploy_target(&cloud, n).await;
        let rollout = deploy(&cloud, &cloud, &good, None, 100.0 * f64::from(n)).await.unwrap();
        acquire(&cloud, &cloud, &cloud, &good, owner, 100.0 * f64::from(n), 3600.0).await.unwrap();
        release(
            &cloud,
            &good,
            owner,
            Some(&rollout.task_definition),
            Some(Status::Succeeded),
            100.0 * f64::from(n) + 50.0,
        )
        .await
        .unwrap();
    }
    let bad = deploy_target(&cloud, 9).await;
    let failed = deploy(&cloud, &cloud, &bad, None, 1000.0).await.unwrap();
    cloud.deregister(&td_arn("todo", 3)); // the last known-good
    let back = roll_back_failed(&cloud, &bad, &failed, 1100.0).await;
    assert_eq!(back.task_definition, td_arn("todo", 2), "the next verified one");
    assert!(back.reason.contains("todo:3 passed over: it is INACTIVE"), "{}", back.reason);

    // The same failed deployment judged again, as if the first rollback had not happened.
    let mut service = cloud.service("todo");
    service.task_definition = failed.task_definition.clone();
    service.deployments = vec![crate::domain::snapshot::DeploymentSnapshot {
        id: failed.deployment_id.clone().unwrap(),
        status: "PRIMARY".into(),
        task_definition: failed.task_definition.clone(),
        rollout_state: "IN_PROGRESS".into(),
        ..Default::default()
    }];
    cloud.set_service(service);
    cloud.deregister(&td_arn("todo", 2));
    let mut failed_again = failed.clone();
    failed_again.previous_task_definition = Some(td_arn("todo", 1));
    let back = rollback(
        &cloud,
        &cloud,
        Images::new(&cloud, REGISTRY),
        &bad,
        Undo { failed: Some(&failed_again), previous: None },
        true,
        1200.0,
    )
    .await
    .unwrap();
    assert_eq!(back.task_definition, td_arn("todo", 1), "then the one COMPLETED at start");
    cloud.deregister(&td_arn("todo", 1));
    let error = rollback(
        &cloud,
        &cloud,
        Images::new(&cloud, REGISTRY),
        &bad,
        Undo { failed: Some(&failed_again), previous: None },
        true,
        1300.0,
    )
    .await
    .unwrap_err();
    assert_eq!(error.name(), "NoKnownGoodRevision");
}

#[tokio::test]
async fn the_lease_is_renewed_only_by_its_holder() {
    use super::lock::renew;
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let (a, b) = ("arn:aws:states:us-east-1:1:execution:d:a", "arn:aws:states:us-east-1:1:execution:d:b");
    let lock = acquire(&cloud, &cloud, &cloud, &target, a, 100.0, 600.0).await.unwrap();
    assert!(!lock.needs_renewal(200.0) && lock.needs_renewal(450.0));
    assert_eq!(renew(&cloud, &target, a, 450.0, 600.0).await.unwrap(), 1050.0);
    assert_eq!(renew(&cloud, &target, b, 450.0, 600.0).await.unwrap_err().name(), "LockLost");
}

#[tokio::test]
async fn a_rollback_without_a_verdict_leaves_someone_elses_deployment_alone() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let failed = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    // While deckhand's checks could not tell, someone applied their own revision.
    let theirs = cloud.add_task_definition("todo", 9, &[("app", "todo/main:hotfix"), ("files", "todo/files:hotfix")]);
    let mut service = cloud.service("todo");
    service.deployments[0].status = "ACTIVE".into();
    service.deployments.insert(
        0,
        crate::domain::snapshot::DeploymentSnapshot {
            id: "ecs-svc/theirs".into(),
            status: "PRIMARY".into(),
            task_definition: theirs.clone(),
            rollout_state: "IN_PROGRESS".into(),
            ..Default::default()
        },
    );
    service.task_definition = theirs.clone();
    cloud.set_service(service);
    let calls = cloud.mutating_calls().len();
    let result = roll_back_failed(&cloud, &target, &failed, 200.0).await;
    assert_eq!(result.outcome, RolloutOutcome::Superseded, "{}", result.reason);
    assert!(result.reason.contains("ecs-svc/theirs"), "{}", result.reason);
    assert_eq!(cloud.mutating_calls().len(), calls, "nothing changed");
    assert_eq!(cloud.service("todo").task_definition, theirs);
}

#[tokio::test]
async fn a_failed_forced_deployment_of_the_running_revision_goes_back_to_no_older_image() {
    let cloud = seeded();
    let owner = "arn:aws:states:us-east-1:1:execution:d:e1";
    for n in [7, 8] {
        let good = deploy_target(&cloud, n).await;
        let rollout = deploy(&cloud, &cloud, &good, None, 100.0 * f64::from(n)).await.unwrap();
        acquire(&cloud, &cloud, &cloud, &good, owner, 100.0 * f64::from(n), 3600.0).await.unwrap();
        release(&cloud, &good, owner, Some(&rollout.task_definition), Some(Status::Succeeded), 100.0 * f64::from(n))
            .await
            .unwrap();
    }
    let mut forced = deploy_target(&cloud, 8).await;
    forced.force_new_deployment = true;
    let running = cloud.service("todo").task_definition;
    let mut failed = deploy(&cloud, &cloud, &forced, Some(&running), 1000.0).await.unwrap();
    failed.previous_task_definition = Some(running.clone());
    assert_eq!(failed.task_definition, running, "a forced deployment of the same revision");
    let calls = cloud.mutating_calls().len();
    let result = roll_back_failed(&cloud, &forced, &failed, 1100.0).await;
    assert_eq!(result.outcome, RolloutOutcome::UpToDate, "{}", result.reason);
    assert_eq!(cloud.mutating_calls().len(), calls);
    assert_eq!(cloud.service("todo").task_definition, running);
}

#[tokio::test]
async fn rollback_keeps_someones_newer_configuration_change_that_ran_before() {
    let cloud = seeded();
    let owner = "arn:aws:states:us-east-1:1:execution:d:e1";
    let good = deploy_target(&cloud, 7).await;
    let rollout = deploy(&cloud, &cloud, &good, None, 100.0).await.unwrap();
    acquire(&cloud, &cloud, &cloud, &good, owner, 100.0, 3600.0).await.unwrap();
    release(&cloud, &good, owner, Some(&rollout.task_definition), Some(Status::Succeeded), 150.0).await.unwrap();
    // Someone's configuration change (todo:5) reached COMPLETED after deckhand's todo:2.
    let theirs = cloud.add_task_definition("todo", 5, &[("app", "todo/main:old"), ("files", "todo/files:cfg")]);
    let mut service = cloud.service("todo");
    service.task_definition = theirs.clone();
    service.deployments = vec![crate::domain::snapshot::DeploymentSnapshot {
        id: "ecs-svc/cfg".into(),
        status: "PRIMARY".into(),
        task_definition: theirs.clone(),
        rollout_state: "COMPLETED".into(),
        ..Default::default()
    }];
    cloud.set_service(service);
    let bad = deploy_target(&cloud, 9).await;
    let failed = deploy(&cloud, &cloud, &bad, Some(&theirs), 300.0).await.unwrap();
    assert_eq!(failed.previous_task_definition.as_deref(), Some(theirs.as_str()));
    let back = roll_back_failed(&cloud, &bad, &failed, 400.0).await;
    assert_eq!(back.task_definition, theirs, "{}", back.reason);
    assert!(back.reason.contains("what ran before deckhand's change"), "{}", back.reason);
    assert_eq!(cloud.service("todo").task_definition, theirs);
}

/// The service is running `revision`, its deployment COMPLETED (what ECS shows once a
/// person's UpdateService has finished rolling out).
fn completed_on(cloud: &FakeCloud, revision: &str) {
    let mut service = cloud.service("todo");
    service.task_definition = revision.to_string();
    service.deployments = vec![crate::domain::snapshot::DeploymentSnapshot {
        id: format!("ecs-svc/{revision}"),
        status: "PRIMARY".into(),
        task_definition: revision.to_string(),
        rollout_state: "COMPLETED".into(),
        ..Default::default()
    }];
    cloud.set_service(service);
}

#[tokio::test]
async fn a_stale_read_at_the_lock_does_not_send_the_rollback_past_what_ran_before() {
    // Found by the consistency e2e test under a 5 s lag: deckhand verified todo:2 moments ago,
    // and the next push's lock read the service as it was before, settled on todo:1.
    let cloud = seeded();
    let owner = "arn:aws:states:us-east-1:1:execution:d:e1";
    let stale = cloud.service("todo");
    let good = deploy_target(&cloud, 7).await;
    let verified = deploy(&cloud, &cloud, &good, None, 100.0).await.unwrap();
    acquire(&cloud, &cloud, &cloud, &good, owner, 100.0, 3600.0).await.unwrap();
    release(&cloud, &good, owner, Some(&verified.task_definition), Some(Status::Succeeded), 150.0).await.unwrap();
    completed_on(&cloud, &verified.task_definition);

    let bad = deploy_target(&cloud, 9).await;
    cloud.with(|s| s.stale_service_reads.extend([stale.clone(), stale]));
    let lock = acquire(&cloud, &cloud, &cloud, &bad, "arn:aws:states:us-east-1:1:execution:d:e2", 200.0, 3600.0)
        .await
        .unwrap();
    assert_eq!(lock.previous_task_definition.as_deref(), Some(td_arn("todo", 1).as_str()), "the stale read");
    let failed = deploy(&cloud, &cloud, &bad, lock.previous_task_definition.as_deref(), 200.0).await.unwrap();
    assert_eq!(failed.previous_task_definition.as_deref(), Some(verified.task_definition.as_str()));

    let back = roll_back_failed(&cloud, &bad, &failed, 300.0).await;
    assert_eq!(back.task_definition, verified.task_definition, "{}", back.reason);
    assert_eq!(cloud.service("todo").task_definition, verified.task_definition);
}

#[tokio::test]
async fn rollback_returns_to_an_older_revision_a_person_went_back_to_by_hand() {
    // Found by the chaos run: deckhand verified todo:2 then todo:3; todo:3 misbehaved in
    // production and a person re-applied todo:2 by hand. A broken push after that must roll
    // back to todo:2, not to todo:3, the newest known-good the person had just left.
    let cloud = seeded();
    let mut previous = None;
    for (n, owner, at) in [
        (7, "arn:aws:states:us-east-1:1:execution:d:e1", 100.0),
        (8, "arn:aws:states:us-east-1:1:execution:d:e2", 200.0),
    ] {
        let target = deploy_target(&cloud, n).await;
        let rollout = deploy(&cloud, &cloud, &target, previous.as_deref(), at).await.unwrap();
        acquire(&cloud, &cloud, &cloud, &target, owner, at, 3600.0).await.unwrap();
        release(&cloud, &target, owner, Some(&rollout.task_definition), Some(Status::Succeeded), at + 50.0)
            .await
            .unwrap();
        completed_on(&cloud, &rollout.task_definition);
        previous = Some(rollout.task_definition);
    }
    let (older, newest) = (td_arn("todo", 2), td_arn("todo", 3));
    assert_eq!(previous.as_deref(), Some(newest.as_str()));
    completed_on(&cloud, &older);

    let bad = deploy_target(&cloud, 9).await;
    let failed = deploy(&cloud, &cloud, &bad, Some(&older), 300.0).await.unwrap();
    let back = roll_back_failed(&cloud, &bad, &failed, 400.0).await;

    assert_eq!(back.task_definition, older, "{}", back.reason);
    assert!(back.reason.contains("what ran before deckhand's change"), "{}", back.reason);
    assert_eq!(cloud.service("todo").task_definition, older);
}

#[tokio::test]
async fn a_manual_rollback_with_nowhere_to_go_changes_nothing_and_says_so() {
    let cloud = seeded();
    let mut manual = deploy_target(&cloud, 7).await;
    manual.mode = Mode::Rollback;
    manual.containers.clear();
    let result =
        rollback(&cloud, &cloud, Images::new(&cloud, REGISTRY), &manual, Undo::default(), false, 100.0).await.unwrap();
    assert_eq!(result.outcome, RolloutOutcome::Nothing, "{}", result.reason);
    assert!(result.reason.starts_with("nothing to roll back to"), "{}", result.reason);
    assert!(cloud.mutating_calls().is_empty());
}

#[tokio::test]
async fn a_release_after_the_lock_was_taken_over_reports_the_lost_known_good() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let (a, b) = ("arn:aws:states:us-east-1:1:execution:d:a", "arn:aws:states:us-east-1:1:execution:d:b");
    acquire(&cloud, &cloud, &cloud, &target, a, 100.0, 600.0).await.unwrap();
    // b took the lock over (a was judged dead).
    cloud.with(|s| s.executions.insert(a.into(), HolderStatus::Gone));
    let mut other = target.clone();
    other.request_id = "other".into();
    acquire(&cloud, &cloud, &cloud, &other, b, 200.0, 600.0).await.unwrap();
    let error =
        release(&cloud, &target, a, Some(&td_arn("todo", 2)), Some(Status::Succeeded), 300.0).await.unwrap_err();
    assert_eq!(error.name(), "LockLost");
}

#[tokio::test]
async fn a_service_with_a_legacy_short_arn_is_planned_in_its_cluster() {
    let cloud = seeded();
    // Created before ECS's long ARN format: arn:aws:ecs:REGION:ACCOUNT:service/NAME.
    let mut legacy = cloud.service("todo");
    let short = format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/todo");
    cloud.with(|s| s.services.iter_mut().find(|x| x.arn == legacy.arn).unwrap().arn = short.clone());
    legacy.arn = short.clone();
    let fan = plan_for(&cloud, push("todo/files", "prod", &digest(7))).await.for_fan_out();
    assert_eq!(fan.services, vec![short.clone()]);
    let part = ServicePart {
        service: short.clone(),
        execution: Execution { arn: "arn:parent".into(), started_at: 1.0 },
        pushed_at: fan.pushed_at,
    };
    let plan = plan_service(&cloud, &cloud, &cloud, &settings(), &push("todo/files", "prod", &digest(7)), &part)
        .await
        .unwrap();
    assert_eq!(plan.targets.len(), 1, "{}", plan.reason);
    assert_eq!(plan.targets[0].service_arn, short);
    assert_eq!(plan.targets[0].cluster, "prod");
}

#[tokio::test]
async fn a_re_tag_orders_by_the_event_time_when_ecr_keeps_the_first_push_time() {
    let cloud = seeded();
    // The image was first pushed long ago; its re-tag as `prod` is the event at 10:00:00Z.
    cloud.add_image_pushed_at("todo/files", "prod", &digest(7), 1_000.0);
    let plan = plan_for(&cloud, push("todo/files", "prod", &digest(7))).await;
    assert!(plan.targets[0].pushed_at > 1_000.0, "the event's own time: {}", plan.targets[0].pushed_at);
    assert!(plan.targets[0].pushed_tag.as_ref().unwrap().exact, "todo tracks files=todo/files:prod exactly");
}

#[tokio::test]
async fn a_person_re_applying_the_previous_revision_is_theirs_not_ecs_rolling_back() {
    let cloud = seeded();
    let target = deploy_target(&cloud, 7).await;
    let failed = deploy(&cloud, &cloud, &target, None, 100.0).await.unwrap();
    let previous = failed.previous_task_definition.clone().unwrap();
    let mut service = cloud.service("todo");
    service.deployments[0].status = "ACTIVE".into();
    service.deployments.insert(
        0,
        crate::domain::snapshot::DeploymentSnapshot {
            id: "ecs-svc/by-hand".into(),
            status: "PRIMARY".into(),
            task_definition: previous.clone(),
            rollout_state: "IN_PROGRESS".into(),
            created_at: Some(150.0),
            ..Default::default()
        },
    );
    service.task_definition = previous.clone();
    cloud.set_service(service.clone());
    let calls = cloud.mutating_calls().len();
    let result = roll_back_failed(&cloud, &target, &failed, 200.0).await;
    assert_eq!(result.outcome, RolloutOutcome::Superseded, "{}", result.reason);
    assert_eq!(cloud.mutating_calls().len(), calls);

    // The same revision brought back by ECS's circuit breaker is ECS's rollback: watched.
    service.deployments[0].rollout_state_reason =
        Some("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1".into());
    cloud.set_service(service);
    let result = roll_back_failed(&cloud, &target, &failed, 200.0).await;
    assert_eq!(result.outcome, RolloutOutcome::Started, "{}", result.reason);
}

/// Rolls back `failed`, a deployment of `target`, as the state machine does after its verdict.
async fn roll_back_failed(
    cloud: &FakeCloud,
    target: &Target,
    failed: &crate::domain::model::Rollout,
    now: f64,
) -> crate::domain::model::Rollout {
    rollback(
        cloud,
        cloud,
        Images::new(cloud, REGISTRY),
        target,
        Undo { failed: Some(failed), previous: None },
        false,
        now,
    )
    .await
    .unwrap()
}
