use super::*;
use crate::domain::ledger::{FinishedDeployment, LockHold, PushMark};
use crate::domain::model::ContainerChange;
use crate::domain::snapshot::DeploymentSnapshot;
use crate::domain::status::DeploymentStatus;

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const SWEEP: &str = "arn:aws:states:us-east-1:123456789012:execution:deckhand-deploy:sweep-2";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn pinned(n: u8) -> String {
    format!("{REGISTRY}/shop/api@{}", digest(n))
}

fn image(n: u8, pushed_at: f64, tags: &[&str]) -> ImageDetail {
    ImageDetail { digest: digest(n), pushed_at: Some(pushed_at), tags: tags.iter().map(|t| t.to_string()).collect() }
}

fn rule(text: &str) -> TagRule {
    TagRule::parse(text).unwrap()
}

fn named(n: u8, tag: &str, pushed_at: f64) -> Named {
    Named { tag: tag.into(), digest: digest(n), pushed_at }
}

/// The container runs image `n` (pinned by digest), pushed at `pushed_at` with `tags`.
fn running(n: u8, pushed_at: f64, tags: &[&str]) -> RunningImage {
    RunningImage {
        of_the_repository: true,
        digest: Some(digest(n)),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed_at: Some(pushed_at),
    }
}

fn finished(n: u8, status: Status) -> FinishedDeployment {
    FinishedDeployment {
        execution: "arn:push-execution".into(),
        request_id: "event-1".into(),
        mode: Mode::Deploy,
        containers: vec![ContainerChange { name: "app".into(), image: pinned(n) }],
        status,
        started_at: 100.0,
        finished_at: 200.0,
        task_definition: None,
        previous_task_definition: None,
    }
}

fn judge(rule_text: &str, named: Named, n: u8, running: &RunningImage, record: &ServiceRecord) -> Drift {
    judge_container("app", &rule(rule_text), named, &pinned(n), running, record, SWEEP)
}

#[test]
fn an_exact_tag_names_the_image_that_carries_it() {
    let images = [image(1, 10.0, &["v1", "main-old"]), image(2, 20.0, &["main"])];
    assert_eq!(named_by_rule(&rule("main"), &images), Some(named(2, "main", 20.0)));
    assert_eq!(named_by_rule(&rule("prod"), &images), None);
}

#[test]
fn a_prefix_names_the_newest_push_and_never_deckhands_protection_tags() {
    let protection = format!("{}0000abcd-1", protect::TAG_PREFIX);
    let images = [
        image(1, 10.0, &["release-1"]),
        image(2, 30.0, &["release-2"]),
        image(3, 20.0, &["release-10"]),
        image(4, 99.0, &[protection.as_str()]),
    ];
    assert_eq!(named_by_rule(&rule("prefix:release-"), &images), Some(named(2, "release-2", 30.0)));
    assert_eq!(named_by_rule(&rule("prefix:deckhand"), &images), None, "protection tags are not pushes");
}

#[test]
fn a_range_names_its_highest_release_whatever_the_push_order() {
    let images = [
        image(1, 50.0, &["1.4.2"]),
        image(2, 10.0, &["v1.10.0"]),
        image(3, 60.0, &["1.11.0-rc.1"]),
        image(4, 70.0, &["2.0.0"]),
        image(5, 80.0, &["latest"]),
    ];
    assert_eq!(named_by_rule(&rule("semver:1.x"), &images), Some(named(2, "v1.10.0", 10.0)));
    assert_eq!(named_by_rule(&rule("semver:1.4.x"), &images), Some(named(1, "1.4.2", 50.0)));
    assert_eq!(named_by_rule(&rule("semver:3.x"), &images), None);
}

#[test]
fn a_push_deckhand_never_saw_is_missed_and_deployed() {
    let record = ServiceRecord::default();
    let drift = judge("main", named(2, "main", 20.0), 2, &running(1, 10.0, &[]), &record);
    assert_eq!(drift, Drift::Missed(named(2, "main", 20.0)));

    let mut seen_older = ServiceRecord::default();
    seen_older.newest.insert("app".into(), PushMark { image: pinned(1), pushed_at: 10.0 });
    let drift = judge("main", named(2, "main", 20.0), 2, &running(1, 10.0, &[]), &seen_older);
    assert!(matches!(drift, Drift::Missed(_)), "{drift:?}");
}

#[test]
fn running_the_named_image_or_a_higher_version_is_in_sync() {
    let record = ServiceRecord::default();
    assert_eq!(judge("main", named(2, "main", 20.0), 2, &running(2, 20.0, &["main"]), &record), Drift::InSync);
    // The service runs 1.5.0 (a person deployed it); the range's highest tag is 1.4.2: never a downgrade.
    let drift = judge("semver:1.x", named(1, "1.4.2", 50.0), 1, &running(9, 40.0, &["1.5.0"]), &record);
    assert_eq!(drift, Drift::InSync);
    // A prefix: the service runs a push newer than the one named.
    let drift = judge("prefix:release-", named(1, "release-1", 10.0), 1, &running(9, 40.0, &[]), &record);
    assert_eq!(drift, Drift::InSync);
}

#[test]
fn a_digest_that_was_rolled_back_is_never_retried_by_the_sweep() {
    for status in [Status::RolledBack, Status::RollbackFailed, Status::Failed] {
        let record = ServiceRecord { deployments: vec![finished(2, status)], ..Default::default() };
        // Even with no push mark (an older record), the history says no.
        let drift = judge("main", named(2, "main", 20.0), 2, &running(1, 10.0, &[]), &record);
        let Drift::Held { why, .. } = drift else { panic!("{status:?} retried: {drift:?}") };
        assert!(why.contains(status.as_str()) && why.contains("never retries"), "{why}");
    }
    // A success of the same image that a person later rolled back by hand is not a failure,
    // but it is a push deckhand handled: held all the same.
    let mut record = ServiceRecord { deployments: vec![finished(2, Status::Succeeded)], ..Default::default() };
    record.newest.insert("app".into(), PushMark { image: pinned(2), pushed_at: 20.0 });
    let drift = judge("main", named(2, "main", 20.0), 2, &running(1, 10.0, &[]), &record);
    assert!(matches!(&drift, Drift::Held { why, .. } if why.contains("handled this push already")), "{drift:?}");
}

#[test]
fn a_hotfix_deployed_after_the_push_is_left_alone() {
    // main was pushed at 20; a person deployed a hotfix (image 3) at 30: the sweep must not undo it.
    let mut record = ServiceRecord::default();
    record.newest.insert("app".into(), PushMark { image: pinned(3), pushed_at: 30.0 });
    let drift = judge("main", named(2, "main", 20.0), 2, &running(3, 25.0, &[]), &record);
    assert!(matches!(&drift, Drift::Held { why, .. } if why.contains("not a missed push")), "{drift:?}");
}

#[test]
fn a_sweep_starts_a_missed_push_once() {
    let earlier = mark_swept(&ServiceRecord::default(), "app", &pinned(2), "arn:sweep-1", 300.0);
    let drift = judge("main", named(2, "main", 20.0), 2, &running(1, 10.0, &[]), &earlier);
    assert!(matches!(&drift, Drift::Held { why, .. } if why.contains("arn:sweep-1")), "{drift:?}");
    // The sweep's own mark (its service execution plans again) does not hold it back.
    let own = mark_swept(&ServiceRecord::default(), "app", &pinned(2), SWEEP, 300.0);
    assert!(matches!(judge("main", named(2, "main", 20.0), 2, &running(1, 10.0, &[]), &own), Drift::Missed(_)));
    // A newer push than the one an earlier sweep started is missed again.
    let drift = judge("main", named(4, "main", 40.0), 4, &running(1, 10.0, &[]), &earlier);
    assert!(matches!(drift, Drift::Missed(_)), "{drift:?}");
}

fn service(deployments: &[(DeploymentStatus, RolloutState)]) -> ServiceSnapshot {
    ServiceSnapshot {
        deployments: deployments
            .iter()
            .enumerate()
            .map(|(i, (status, rollout_state))| DeploymentSnapshot {
                id: format!("ecs-svc/{i}"),
                status: status.clone(),
                rollout_state: rollout_state.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn a_service_is_held_while_locked_rolling_out_or_awaiting_approval() {
    let settled = service(&[(DeploymentStatus::Primary, RolloutState::Completed)]);
    let free = ServiceRecord::default();
    assert_eq!(service_hold(&settled, &free, false, 1000.0), None);

    let locked = ServiceRecord {
        lock: Some(LockHold {
            owner: "arn:push-child".into(),
            request_id: "e".into(),
            mode: Mode::Deploy,
            containers: vec![],
            acquired_at: 900.0,
            expires_at: 1100.0,
            previous_task_definition: None,
        }),
        ..Default::default()
    };
    assert!(service_hold(&settled, &locked, false, 1000.0).unwrap().contains("arn:push-child"));
    assert_eq!(service_hold(&settled, &locked, false, 1200.0), None, "an expired lease is not held");

    let rolling = service(&[(DeploymentStatus::Primary, RolloutState::InProgress)]);
    assert!(service_hold(&rolling, &free, false, 1000.0).unwrap().contains("rollout"));
    let two = service(&[
        (DeploymentStatus::Primary, RolloutState::Completed),
        (DeploymentStatus::Active, RolloutState::Completed),
    ]);
    assert!(service_hold(&two, &free, false, 1000.0).is_some());
    assert!(service_hold(&settled, &free, true, 1000.0).unwrap().contains("approval"));
}
