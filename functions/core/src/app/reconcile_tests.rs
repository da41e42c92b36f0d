//! The reconciliation sweep over the in-memory cloud.

use super::plan::{Execution, ServicePart};
use super::reconcile::{sweep, sweep_requested, sweep_service};
use super::tests::{seeded, settings};
use crate::domain::events::Status;
use crate::domain::ledger::{FinishedDeployment, PushMark, ServiceRecord};
use crate::domain::model::{ContainerChange, Mode, Plan, PlanAction, Trigger};
use crate::ports::Ledger;
use crate::testing::*;
use serde_json::json;

const API: &str = "arn:aws:ecs:us-east-1:123456789012:service/prod/api";
const NOW: f64 = 10_000.0;

fn sweep_execution(n: u32) -> Execution {
    Execution {
        arn: format!("arn:aws:states:us-east-1:123456789012:execution:deckhand-deploy:sweep-{n}"),
        started_at: NOW,
    }
}

async fn sweep_once(cloud: &FakeCloud, n: u32) -> Plan {
    sweep(cloud, cloud, cloud, &settings(), &sweep_execution(n), false, NOW).await.unwrap()
}

fn pinned(n: u8) -> String {
    format!("{REGISTRY}/flask-backend@{}", digest(n))
}

#[tokio::test]
async fn a_missed_push_is_deployed_by_the_sweep_once() {
    let cloud = seeded();
    // main was pushed (its event lost): prod/api tracks flask-backend:main and still runs :old.
    cloud.add_image_pushed_at("flask-backend", "main", &digest(2), 100.0);
    let plan = sweep_once(&cloud, 1).await;
    assert_eq!(plan.action, PlanAction::Deploy, "{}", plan.reason);
    assert_eq!(plan.targets.len(), 1, "only prod/api tracks a tag that names an image: {:?}", plan.targets);
    let target = &plan.targets[0];
    assert_eq!((target.cluster.as_str(), target.service.as_str()), ("prod", "api"));
    assert_eq!(target.trigger, Trigger::Reconcile);
    assert_eq!(target.containers, vec![ContainerChange { name: "web".into(), image: pinned(2) }]);
    assert_eq!(target.pushed_at, 100.0, "ordered as the push it stands for");
    let pushed = target.pushed_tag.as_ref().unwrap();
    assert_eq!((pushed.tag.as_str(), pushed.digest.as_str(), pushed.exact), ("main", digest(2).as_str(), true));
    assert!(cloud.mutating_calls().iter().all(|c| c.starts_with("PutItem")), "only the sweep's mark is written");

    // The service's own execution plans it again and deploys it.
    let part = ServicePart { service: API.into(), execution: sweep_execution(1), pushed_at: None };
    let child = sweep_service(&cloud, &cloud, &cloud, &cloud, &settings(), &part, NOW + 1.0).await.unwrap();
    assert_eq!(child.action, PlanAction::Deploy, "{}", child.reason);
    assert_eq!(child.targets[0].containers[0].image, pinned(2));
    assert_eq!(child.targets[0].trigger, Trigger::Reconcile);

    // The next sweep does not start it again, whatever became of it, and says why.
    let again = sweep_once(&cloud, 2).await;
    assert_eq!(again.action, PlanAction::Nothing, "{:?}", again.targets);
    assert!(again.warnings.iter().any(|w| w.contains("sweep-1")), "{:?}", again.warnings);
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_shows_the_diff() {
    let cloud = seeded();
    cloud.add_image_pushed_at("flask-backend", "main", &digest(2), 100.0);
    let plan = sweep(&cloud, &cloud, &cloud, &settings(), &sweep_execution(1), true, NOW).await.unwrap();
    assert!(plan.dry_run);
    assert_eq!(plan.targets.len(), 1);
    assert!(plan.targets[0].diff.as_ref().is_some_and(|d| d.iter().any(|line| line.contains("web"))), "{plan:?}");
    assert!(cloud.mutating_calls().is_empty(), "{:?}", cloud.mutating_calls());
    assert_eq!(sweep_once(&cloud, 2).await.targets.len(), 1, "a dry run is not an attempt");
}

#[tokio::test]
async fn a_digest_rolled_back_on_the_service_is_not_swept_again() {
    let cloud = seeded();
    cloud.add_image_pushed_at("flask-backend", "main", &digest(2), 100.0);
    let mut record = ServiceRecord::default();
    record.newest.insert("web".into(), PushMark { image: pinned(2), pushed_at: 100.0 });
    record.deployments.push(FinishedDeployment {
        execution: "arn:push-child".into(),
        request_id: "event-1".into(),
        mode: Mode::Deploy,
        containers: vec![ContainerChange { name: "web".into(), image: pinned(2) }],
        status: Status::RolledBack,
        started_at: 110.0,
        finished_at: 200.0,
        task_definition: None,
        previous_task_definition: None,
    });
    assert!(cloud.save(API, &record, None).await.unwrap());
    let plan = sweep_once(&cloud, 1).await;
    assert_eq!(plan.action, PlanAction::Nothing);
    assert!(
        plan.warnings.iter().any(|w| w.contains("ROLLED_BACK") && w.contains("never retries")),
        "{:?}",
        plan.warnings
    );
    // A new push of main is missed again, and deployed.
    cloud.add_image_pushed_at("flask-backend", "main", &digest(3), 300.0);
    assert_eq!(sweep_once(&cloud, 2).await.targets[0].containers[0].image, pinned(3));
}

#[tokio::test]
async fn a_service_held_by_a_lock_or_a_rollout_is_left_for_a_later_sweep() {
    let cloud = seeded();
    cloud.add_image_pushed_at("flask-backend", "main", &digest(2), 100.0);
    // The push's own deployment holds the lock: the sweep holds back (and marks nothing).
    let locked = ServiceRecord {
        lock: Some(crate::domain::ledger::LockHold {
            owner: "arn:push-child".into(),
            request_id: "event-1".into(),
            mode: Mode::Deploy,
            containers: vec![ContainerChange { name: "web".into(), image: pinned(2) }],
            acquired_at: NOW - 10.0,
            expires_at: NOW + 3600.0,
            previous_task_definition: None,
        }),
        ..Default::default()
    };
    assert!(cloud.save(API, &locked, None).await.unwrap());
    let plan = sweep_once(&cloud, 1).await;
    assert_eq!(plan.action, PlanAction::Nothing);
    assert!(plan.warnings.iter().any(|w| w.contains("arn:push-child")), "{:?}", plan.warnings);
    let (record, _) = cloud.load(API).await.unwrap();
    assert!(record.reconciled.is_empty(), "a held service is not marked");

    // The lock released, but the service's rollout still runs.
    let (mut record, version) = cloud.load(API).await.unwrap();
    record.lock = None;
    assert!(cloud.save(API, &record, version).await.unwrap());
    let mut api = cloud.service("api");
    api.deployments[0].rollout_state = "IN_PROGRESS".into();
    cloud.set_service(api);
    let plan = sweep_once(&cloud, 2).await;
    assert_eq!(plan.action, PlanAction::Nothing);
    assert!(plan.warnings.iter().any(|w| w.contains("rollout is in progress")), "{:?}", plan.warnings);
}

#[tokio::test]
async fn a_pass_reads_each_rule_once_and_the_state_table_only_for_drift() {
    let cloud = seeded();
    cloud.add_image_pushed_at("flask-backend", "main", &digest(2), 100.0);
    // Ten more services on main, already pinned to it.
    let pinned_td = cloud.add_task_definition("fleet", 1, &[("web", &pinned(2))]);
    for n in 0..10 {
        cloud.add_service("prod", &format!("fleet-{n}"), &pinned_td, &[("deckhand:track", "web=flask-backend:main")]);
    }
    let plan = sweep_once(&cloud, 1).await;
    assert_eq!(plan.targets.len(), 1, "only prod/api drifted");
    let tag_reads = cloud.calls().iter().filter(|c| *c == "DescribeImages flask-backend:main").count();
    assert_eq!(tag_reads, 1, "one DescribeImages per distinct rule");
    assert_eq!(cloud.with(|s| s.state_reads), 1, "the state table is read for the drifted service only");
}

#[tokio::test]
async fn a_range_is_swept_to_its_highest_version_and_never_down() {
    let cloud = FakeCloud::default();
    cloud.add_image_by_digest("shop/api", &digest(1), &["1.4.0"]);
    cloud.add_image_by_digest("shop/api", &digest(2), &["1.5.0"]);
    cloud.add_image_by_digest("shop/api", &digest(3), &["2.0.0"]);
    let on_14 = cloud.add_task_definition("api", 1, &[("app", &format!("{REGISTRY}/shop/api@{}", digest(1)))]);
    let on_16 = cloud.add_task_definition("hot", 1, &[("app", &format!("{REGISTRY}/shop/api@{}", digest(9)))]);
    cloud.add_image_by_digest("shop/api", &digest(9), &["1.6.0-hotfix"]);
    cloud.add_service("prod", "api", &on_14, &[("deckhand:track", "app=shop/api:semver:1.x")]);
    cloud.add_service("prod", "hot", &on_16, &[("deckhand:track", "app=shop/api:semver:1.x")]);
    let plan = sweep_once(&cloud, 1).await;
    let api = plan.targets.iter().find(|t| t.service == "api").expect("api is behind 1.5.0");
    assert_eq!(api.containers[0].image, format!("{REGISTRY}/shop/api@{}", digest(2)), "1.5.0, not 2.0.0");
    assert_eq!(api.pushed_tag.as_ref().map(|p| p.exact), Some(false));
    // `hot` runs 1.6.0-hotfix (a person's pre-release of 1.6.0): 1.5.0 would be a downgrade.
    assert!(plan.targets.iter().all(|t| t.service != "hot"), "{:?}", plan.targets);
}

#[test]
fn only_a_well_formed_sweep_request_is_a_sweep() {
    assert_eq!(sweep_requested(&json!({"reconcile": true})), Some(false));
    assert_eq!(sweep_requested(&json!({"reconcile": true, "dryRun": true})), Some(true));
    assert_eq!(sweep_requested(&json!({"reconcile": "yes"})), None, "planned, and refused, by plan");
    assert_eq!(sweep_requested(&json!({"cluster": "prod", "service": "api", "rollback": true})), None);
}
