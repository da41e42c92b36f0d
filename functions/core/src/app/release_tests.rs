//! Release policies over the in-memory cloud: tag patterns, the alarm gate, the approval gate.

use super::approval::{await_approval, decide, Decision, Waiter, Waiting};
use super::check::{check, CheckRequest};
use super::deploy::deploy;
use super::plan::{plan_service, Execution, ServicePart};
use super::tests::{plan_for, push, settings};
use crate::domain::approval::approval_key;
use crate::domain::events::Status;
use crate::domain::gates::AlarmSnapshot;
use crate::domain::model::{Health, RolloutOutcome, Target, Verdict};
use crate::testing::*;

const SHOP: &str = "shop/api";

/// A service tracking shop/api by `rule`, running `running` (an image reference of shop/api).
fn shop(rule: &str, running: &str, extra: &[(&str, &str)]) -> FakeCloud {
    let cloud = FakeCloud::default();
    let image = format!("{REGISTRY}/{running}");
    let definition = cloud.add_task_definition("api", 1, &[("app", &image)]);
    let mut tags = vec![("deckhand:track", format!("app={SHOP}:{rule}"))];
    tags.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cloud.add_service("prod", "api", &definition, &tags);
    cloud
}

async fn child_plan(cloud: &FakeCloud, tag: &str, n: u8, pushed_at: f64) -> crate::domain::model::Plan {
    let fan = plan_for(cloud, push(SHOP, tag, &digest(n))).await.for_fan_out();
    let service = fan.services.first().cloned().unwrap_or_else(|| cloud.service("api").arn);
    let part = ServicePart {
        service,
        execution: Execution { arn: "arn:parent".into(), started_at: pushed_at },
        pushed_at: Some(pushed_at),
    };
    plan_service(cloud, cloud, cloud, &settings(), &push(SHOP, tag, &digest(n)), &part).await.unwrap()
}

#[tokio::test]
async fn a_range_deploys_newer_versions_and_skips_the_rest_with_a_reason() {
    let cloud = shop("semver:1.x", &format!("{SHOP}@{}", digest(1)), &[]);
    cloud.add_image(SHOP, "1.4.2", &digest(1));
    let newer = child_plan(&cloud, "v1.5.0", 2, 10.0).await;
    assert_eq!(newer.targets[0].skip_reason, None, "{:?}", newer.targets[0].skip_reason);

    for (tag, why) in [
        ("1.4.1", "not newer than 1.4.2"),
        ("2.0.0", "outside the range 1.x"),
        ("1.6.0-rc.1", "pre-release"),
        ("latest", "not a semantic version"),
    ] {
        let plan = child_plan(&cloud, tag, 3, 10.0).await;
        let skip = plan.targets[0].skip_reason.clone().unwrap_or_default();
        assert!(skip.contains(why), "{tag}: {skip}");
    }
    // An exact-tag service is not told about pushes of other tags.
    let exact = shop("main", &format!("{SHOP}:main"), &[]);
    assert!(plan_for(&exact, push(SHOP, "dev", &digest(4))).await.targets.is_empty());
}

#[tokio::test]
async fn a_prefix_deploys_later_pushes_only() {
    let cloud = shop("prefix:release-", &format!("{SHOP}@{}", digest(1)), &[]);
    cloud.add_image_pushed_at(SHOP, "release-1", &digest(1), 100.0);
    assert_eq!(child_plan(&cloud, "release-2", 2, 200.0).await.targets[0].skip_reason, None);
    let stale = child_plan(&cloud, "release-0", 3, 50.0).await.targets[0].skip_reason.clone().unwrap();
    assert!(stale.contains("not after the image the service runs"), "{stale}");
    let other = child_plan(&cloud, "main", 4, 300.0).await.targets[0].skip_reason.clone().unwrap();
    assert!(other.contains("does not start with"), "{other}");
}

#[tokio::test]
async fn a_version_that_landed_first_supersedes_an_older_one_under_the_lock() {
    let cloud = shop("semver:1.x", &format!("{SHOP}@{}", digest(1)), &[]);
    cloud.add_image(SHOP, "1.4.2", &digest(1));
    cloud.add_image(SHOP, "1.5.0", &digest(2));
    cloud.add_image(SHOP, "1.6.0", &digest(3));
    let older = child_plan(&cloud, "1.5.0", 2, 10.0).await.targets.remove(0);
    let newest = child_plan(&cloud, "1.6.0", 3, 11.0).await.targets.remove(0);
    assert_eq!(deploy(&cloud, &cloud, &newest, None, 100.0).await.unwrap().outcome, RolloutOutcome::Started);
    let late = deploy(&cloud, &cloud, &older, None, 200.0).await.unwrap();
    assert_eq!(late.outcome, RolloutOutcome::Superseded, "{}", late.reason);
    assert!(late.reason.contains("not newer than 1.6.0"), "{}", late.reason);
}

#[tokio::test]
async fn malformed_gates_skip_a_push_and_refuse_a_manual_deploy() {
    let cloud = shop("main", &format!("{SHOP}:main"), &[("deckhand:approval", "yes")]);
    let plan = plan_for(&cloud, push(SHOP, "main", &digest(2))).await;
    assert!(plan.targets[0].skip_reason.as_deref().unwrap_or_default().contains("deckhand:approval"));
    let manual = serde_json::json!({"cluster": "prod", "service": "api", "image": format!("{SHOP}:main")});
    cloud.add_image(SHOP, "main", &digest(2));
    let refused = super::plan::plan(&cloud, &cloud, &settings(), &manual, &super::tests::execution()).await;
    assert!(matches!(refused, Err(crate::DeckhandError::InvalidInput { .. })), "{refused:?}");
}

fn alarm(name: &str, in_alarm: bool, at: f64) -> AlarmSnapshot {
    AlarmSnapshot { name: name.into(), in_alarm, state_changed_at: Some(at), state_reason: "threshold crossed".into() }
}

#[tokio::test]
async fn a_missing_alarm_holds_the_push_and_one_already_firing_is_reported() {
    let cloud = shop("main", &format!("{SHOP}:main"), &[("deckhand:alarms", "api-5xx api-latency")]);
    cloud.with(|s| s.alarms.push(alarm("api-5xx", true, 1.0)));
    let held = child_plan(&cloud, "main", 2, 10.0).await;
    assert!(held.targets[0].skip_reason.as_deref().unwrap_or_default().contains("api-latency"));
    cloud.with(|s| s.alarms.push(alarm("api-latency", false, 1.0)));
    let going = child_plan(&cloud, "main", 2, 10.0).await;
    assert_eq!(going.targets[0].skip_reason, None);
    assert!(going.warnings.iter().any(|w| w.contains("api-5xx is already in ALARM")), "{:?}", going.warnings);
}

async fn started(cloud: &FakeCloud, target: &Target) -> CheckRequest {
    let rollout = deploy(cloud, cloud, target, None, 100.0).await.unwrap();
    CheckRequest {
        target: target.clone(),
        rollout,
        health: Health::default(),
        lock: None,
        after_bake: false,
        rollback: false,
    }
}

#[tokio::test]
async fn an_alarm_that_fires_during_the_rollout_fails_it_but_not_its_rollback() {
    let cloud = shop("main", &format!("{SHOP}:main"), &[("deckhand:alarms", "api-5xx")]);
    cloud.with(|s| s.alarms.push(alarm("api-5xx", false, 1.0)));
    let target = child_plan(&cloud, "main", 2, 10.0).await.targets.remove(0);
    let request = started(&cloud, &target).await;
    let quiet = check(&cloud, &cloud, &cloud, &cloud, &request, 110.0).await.unwrap();
    assert_eq!(quiet.verdict, Verdict::Pending);
    assert!(quiet.needs_poll, "alarms publish no ECS event: the rollout is polled");
    cloud.with(|s| s.alarms[0] = alarm("api-5xx", true, 120.0));
    let fired = check(&cloud, &cloud, &cloud, &cloud, &request, 121.0).await.unwrap();
    assert_eq!(fired.verdict, Verdict::Failed);
    assert!(fired.reason.contains("api-5xx"), "{}", fired.reason);
    let rollback = CheckRequest { rollback: true, ..request };
    assert_ne!(check(&cloud, &cloud, &cloud, &cloud, &rollback, 122.0).await.unwrap().verdict, Verdict::Failed);
}

fn approval_cloud() -> FakeCloud {
    shop(
        "semver:x",
        &format!("{SHOP}:1.0.0"),
        &[("deckhand:approval", "required"), ("deckhand:approval-timeout", "600")],
    )
}

#[tokio::test]
async fn a_push_waits_for_approval_and_a_newer_push_takes_its_place() {
    let cloud = approval_cloud();
    let first = child_plan(&cloud, "1.1.0", 2, 10.0).await.targets.remove(0);
    assert_eq!(first.policy.gates.approval_timeout_seconds, Some(600));
    let waiter = |execution: &'static str, token: &'static str| Waiter {
        execution_arn: execution,
        parent_execution_arn: Some("arn:parent"),
        token,
    };
    let parked = await_approval(&cloud, &cloud, &cloud, &cloud, &first, &waiter("arn:one", "t1"), 20.0).await.unwrap();
    let Waiting::Parked(pending) = parked else { panic!("{parked:?}") };
    assert_eq!(pending.expires_at, 620.0);
    assert!(pending.changes[0].contains("1.0.0 ->"), "{:?}", pending.changes);
    let event = cloud.with(|s| s.events.last().cloned()).unwrap();
    assert_eq!(event.status, Status::AwaitingApproval);
    assert_eq!(event.changes, Some(pending.changes.clone()));

    let second = child_plan(&cloud, "1.2.0", 3, 30.0).await.targets.remove(0);
    await_approval(&cloud, &cloud, &cloud, &cloud, &second, &waiter("arn:two", "t2"), 40.0).await.unwrap();
    let failed = cloud.with(|s| s.failed_tokens.clone());
    assert_eq!((failed[0].0.as_str(), failed[0].1.as_str()), ("t1", "Superseded"));

    // The first push, retried late, does not take the wait back.
    let late = await_approval(&cloud, &cloud, &cloud, &cloud, &first, &waiter("arn:one", "t3"), 50.0).await.unwrap();
    assert!(matches!(late, Waiting::Superseded(_)), "{late:?}");

    let key = cloud.service("api").arn;
    let decided = decide(&cloud, &cloud, &key, Decision::Approve, "alice", "looks good", 60.0).await.unwrap();
    assert_eq!(decided.iter().map(|d| d.token.as_str()).collect::<Vec<_>>(), ["t2"]);
    assert_eq!(cloud.with(|s| s.completed_tokens[0].0.clone()), "t2");
    assert!(cloud.with(|s| !s.approvals.contains_key(&approval_key(&key))), "decided: no longer pending");
    let again = decide(&cloud, &cloud, &key, Decision::Reject, "bob", "", 61.0).await;
    assert!(matches!(again, Err(crate::DeckhandError::InvalidInput { .. })), "{again:?}");
}

#[tokio::test]
async fn a_rejected_or_expired_wait_cannot_be_approved() {
    let cloud = approval_cloud();
    let target = child_plan(&cloud, "1.1.0", 2, 10.0).await.targets.remove(0);
    let waiter = Waiter { execution_arn: "arn:one", parent_execution_arn: None, token: "t1" };
    await_approval(&cloud, &cloud, &cloud, &cloud, &target, &waiter, 20.0).await.unwrap();
    let key = cloud.service("api").arn;
    assert!(decide(&cloud, &cloud, &key, Decision::Approve, "alice", "", 700.0).await.is_err(), "expired");
    decide(&cloud, &cloud, &key, Decision::Reject, "bob", "not today", 30.0).await.unwrap();
    let failed = cloud.with(|s| s.failed_tokens.clone());
    assert_eq!(failed[0], ("t1".into(), "Rejected".into(), "rejected by bob: not today".into()));
}

#[tokio::test]
async fn a_superseded_wait_whose_token_could_not_be_failed_is_failed_by_the_retry() {
    let cloud = approval_cloud();
    let first = child_plan(&cloud, "1.1.0", 2, 10.0).await.targets.remove(0);
    await_approval(&cloud, &cloud, &cloud, &cloud, &first, &waiter("arn:one", "t1"), 20.0).await.unwrap();
    let second = child_plan(&cloud, "1.2.0", 3, 30.0).await.targets.remove(0);
    cloud.with(|s| s.throttle_token_failures = 1);
    let throttled = await_approval(&cloud, &cloud, &cloud, &cloud, &second, &waiter("arn:two", "t2"), 40.0).await;
    assert_eq!(throttled.unwrap_err().name(), "AwsThrottled");
    // The older wait is still listed, so the retry (Step Functions retries AwsThrottled) fails it.
    let key = approval_key(&cloud.service("api").arn);
    assert!(cloud.with(|s| s.approvals[&key].0.iter().any(|a| a.token == "t1")));
    await_approval(&cloud, &cloud, &cloud, &cloud, &second, &waiter("arn:two", "t2"), 41.0).await.unwrap();
    assert_eq!(cloud.with(|s| s.failed_tokens[0].0.clone()), "t1");
    assert_eq!(cloud.with(|s| s.approvals[&key].0.iter().map(|a| a.token.clone()).collect::<Vec<_>>()), ["t2"]);
}

#[tokio::test]
async fn pushes_of_different_containers_wait_side_by_side_and_are_approved_together() {
    let cloud = approval_cloud();
    let image = format!("{REGISTRY}/{SHOP}:1.0.0");
    cloud.add_task_definition("api", 1, &[("app", &image), ("sidecar", "envoy:1")]);
    let app = child_plan(&cloud, "1.1.0", 2, 10.0).await.targets.remove(0);
    await_approval(&cloud, &cloud, &cloud, &cloud, &app, &waiter("arn:one", "t1"), 20.0).await.unwrap();
    // A later push changing another container of the service does not drop the first.
    let mut sidecar = app.clone();
    sidecar.containers[0].name = "sidecar".into();
    sidecar.pushed_at = 30.0;
    let parked = await_approval(&cloud, &cloud, &cloud, &cloud, &sidecar, &waiter("arn:two", "t2"), 40.0).await;
    assert!(matches!(parked, Ok(Waiting::Parked(_))), "{parked:?}");
    assert!(cloud.with(|s| s.failed_tokens.is_empty()), "nothing superseded");
    let key = cloud.service("api").arn;
    let decided = decide(&cloud, &cloud, &key, Decision::Approve, "alice", "", 50.0).await.unwrap();
    assert_eq!(decided.iter().map(|d| d.token.as_str()).collect::<Vec<_>>(), ["t1", "t2"]);
}

/// The waiting execution `execution` parked on `token`.
fn waiter(execution: &'static str, token: &'static str) -> Waiter<'static> {
    Waiter { execution_arn: execution, parent_execution_arn: None, token }
}
