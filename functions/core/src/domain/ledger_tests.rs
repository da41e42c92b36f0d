use super::*;
use crate::domain::events::Status;
use crate::domain::model::Policy;

const ME: &str = "arn:aws:states:us-east-1:1:execution:deckhand-deploy:me";
const OTHER: &str = "arn:aws:states:us-east-1:1:execution:deckhand-deploy:other";
const NOW: f64 = 10_000.0;
const TTL: f64 = 3_600.0;

fn target(image: &str, pushed_at: f64, request: &str) -> Target {
    Target {
        cluster: "prod".into(),
        cluster_arn: "arn:aws:ecs:us-east-1:1:cluster/prod".into(),
        service: "api".into(),
        service_arn: "arn:aws:ecs:us-east-1:1:service/prod/api".into(),
        mode: Mode::Deploy,
        image: image.into(),
        containers: vec![ContainerChange { name: "web".into(), image: image.into() }],
        task_definition: "arn:aws:ecs:us-east-1:1:task-definition/api:1".into(),
        pushed_at,
        request_id: request.into(),
        trigger: Default::default(),
        force_new_deployment: false,
        policy: Policy {
            poll_seconds: 5,
            recheck_seconds: 60,
            timeout_seconds: 300,
            bake_seconds: 0,
            max_failed_tasks: 2,
            unhealthy_checks: 3,
            gates: Default::default(),
            gated_by_hook: false,
            hook_bake_seconds: 0,
        },
        diff: None,
        skip_reason: None,
        pushed_tag: None,
    }
}

fn held_by(owner: &str, t: &Target, expires_at: f64) -> ServiceRecord {
    ServiceRecord {
        lock: Some(LockHold {
            owner: owner.into(),
            request_id: t.request_id.clone(),
            mode: t.mode,
            containers: t.containers.clone(),
            acquired_at: NOW - 10.0,
            expires_at,
            previous_task_definition: None,
        }),
        ..Default::default()
    }
}

#[test]
fn a_free_service_is_acquired_and_the_push_remembered() {
    let t = target("r/api@sha256:a", 100.0, "e1");
    let (decision, next) = decide_acquire(&ServiceRecord::default(), &t, ME, None, NOW, TTL);
    assert_eq!(decision, Acquire::Acquired);
    assert_eq!(next.lock.as_ref().unwrap().owner, ME);
    assert_eq!(next.lock.as_ref().unwrap().expires_at, NOW + TTL);
    assert_eq!(next.newest["web"].image, "r/api@sha256:a");
}

#[test]
fn acquiring_twice_is_idempotent() {
    let t = target("r/api@sha256:a", 100.0, "e1");
    let record = held_by(ME, &t, NOW + 100.0);
    assert_eq!(decide_acquire(&record, &t, ME, None, NOW, TTL).0, Acquire::Acquired);
}

#[test]
fn a_live_holder_deploying_something_else_makes_us_wait() {
    let running = target("r/api@sha256:a", 100.0, "e1");
    let ours = target("r/api@sha256:b", 200.0, "e2");
    let record = held_by(OTHER, &running, NOW + 100.0);
    let (decision, next) = decide_acquire(&record, &ours, ME, Some(HolderStatus::Running), NOW, TTL);
    assert_eq!(decision, Acquire::Busy { holder: OTHER.into() });
    assert_eq!(next.newest["web"].image, "r/api@sha256:b", "a waiting newer push is remembered");
}

#[test]
fn a_duplicate_delivery_is_skipped_while_the_first_runs_and_after_it_finished() {
    let first = target("r/api@sha256:a", 100.0, "e1");
    let record = held_by(OTHER, &first, NOW + 100.0);
    let (decision, _) = decide_acquire(&record, &first, ME, Some(HolderStatus::Running), NOW, TTL);
    assert!(matches!(decision, Acquire::Skip(ref why) if why.contains("duplicate")), "{decision:?}");

    let finished = release(&record, OTHER, "e1", None, None);
    let (decision, _) = decide_acquire(&finished, &first, ME, None, NOW, TTL);
    assert!(matches!(decision, Acquire::Skip(ref why) if why.contains("already handled")), "{decision:?}");
}

#[test]
fn an_older_push_arriving_after_a_newer_one_is_never_deployed() {
    let newer = target("r/api@sha256:b", 200.0, "e2");
    let older = target("r/api@sha256:a", 100.0, "e1");
    let (_, record) = decide_acquire(&ServiceRecord::default(), &newer, OTHER, None, NOW, TTL);
    let record = release(
        &record,
        OTHER,
        "e2",
        Some(KnownGood { task_definition: "td:2".into(), verified_at: NOW, execution: OTHER.into() }),
        None,
    );
    let (decision, _) = decide_acquire(&record, &older, ME, None, NOW + 5.0, TTL);
    assert!(matches!(decision, Acquire::Skip(ref why) if why.contains("superseded")), "{decision:?}");
}

#[test]
fn a_lock_whose_holder_died_is_taken_over() {
    let dead = target("r/api@sha256:a", 100.0, "e1");
    let ours = target("r/api@sha256:b", 200.0, "e2");
    let record = held_by(OTHER, &dead, NOW + 1000.0);
    let (decision, next) = decide_acquire(&record, &ours, ME, Some(HolderStatus::Gone), NOW, TTL);
    assert_eq!(decision, Acquire::Acquired);
    assert_eq!(next.lock.unwrap().owner, ME);
}

#[test]
fn a_holder_past_its_lease_that_still_runs_keeps_the_lock() {
    let long = target("r/api@sha256:a", 100.0, "e1");
    let record = held_by(OTHER, &long, NOW - 1.0);
    assert!(other_holder(&record, ME).is_some(), "expiry alone frees nothing");
    let ours = target("r/api@sha256:b", 200.0, "e2");
    assert!(matches!(
        decide_acquire(&record, &ours, ME, Some(HolderStatus::Running), NOW, TTL).0,
        Acquire::Busy { .. }
    ));
    assert_eq!(decide_acquire(&record, &ours, ME, Some(HolderStatus::Gone), NOW, TTL).0, Acquire::Acquired);
}

#[test]
fn expiry_decides_only_when_liveness_cannot_be_known() {
    let other = target("r/api@sha256:a", 100.0, "e1");
    let ours = target("r/api@sha256:b", 200.0, "e2");
    let live_lease = held_by(OTHER, &other, NOW + 1.0);
    assert!(matches!(
        decide_acquire(&live_lease, &ours, ME, Some(HolderStatus::Unknown), NOW, TTL).0,
        Acquire::Busy { .. }
    ));
    let expired = held_by(OTHER, &other, NOW - 1.0);
    assert_eq!(decide_acquire(&expired, &ours, ME, Some(HolderStatus::Unknown), NOW, TTL).0, Acquire::Acquired);
}

#[test]
fn only_the_holder_renews_its_lease_and_never_shortens_it() {
    let t = target("r/api@sha256:a", 100.0, "e1");
    let record = held_by(ME, &t, NOW + 10.0);
    let renewed = renew(&record, ME, NOW, TTL).expect("ours");
    assert_eq!(renewed.lock.unwrap().expires_at, NOW + TTL);
    assert_eq!(renew(&record, ME, NOW, 1.0).unwrap().lock.unwrap().expires_at, NOW + 10.0);
    assert!(renew(&record, OTHER, NOW, TTL).is_none(), "a taken-over lock is not renewed");
}

#[test]
fn manual_rollbacks_wait_for_a_running_deployment() {
    let running = target("r/api@sha256:a", 100.0, "e1");
    let mut rollback = target("", 300.0, "manual");
    rollback.mode = Mode::Rollback;
    rollback.containers.clear();
    let record = held_by(OTHER, &running, NOW + 100.0);
    assert!(matches!(
        decide_acquire(&record, &rollback, ME, Some(HolderStatus::Running), NOW, TTL).0,
        Acquire::Busy { .. }
    ));
}

#[test]
fn release_only_frees_our_own_lock_and_keeps_a_bounded_history() {
    let t = target("r/api@sha256:a", 100.0, "e1");
    let record = held_by(OTHER, &t, NOW + 100.0);
    assert!(release(&record, ME, "x", None, None).lock.is_some(), "not ours to release");
    let mut record = held_by(ME, &t, NOW + 100.0);
    for i in 0..8 {
        record.lock = held_by(ME, &t, NOW + 100.0).lock;
        record = release(
            &record,
            ME,
            &format!("e{i}"),
            Some(KnownGood { task_definition: format!("td:{i}"), verified_at: NOW, execution: ME.into() }),
            None,
        );
    }
    assert!(record.lock.is_none());
    assert_eq!(record.known_good.len(), KNOWN_GOOD_HISTORY);
    assert_eq!(record.known_good[0].task_definition, "td:7");
}

#[test]
fn rollback_goes_to_the_last_verified_revision_not_revision_minus_one() {
    let record = verified(&["api:3", "api:5"]);
    // api:6 failed; api:5 was verified; the revision before (api:5) is right here, but after a
    // failed api:7 that followed an unverified api:6, the answer is still api:5.
    assert_eq!(first(&record, "api:7", Some("api:6")), Some("api:5".into()));
    assert_eq!(
        first(&record, "api:5", None),
        Some("api:3".into()),
        "leaving a known-good one goes to the one before it"
    );
}

/// A record in which deckhand verified `revisions`, oldest first.
fn verified(revisions: &[&str]) -> ServiceRecord {
    revisions.iter().fold(ServiceRecord::default(), |mut record, td| {
        record.lock = held_by(ME, &target("img", NOW, td), NOW + 100.0).lock;
        let good = KnownGood { task_definition: td.to_string(), verified_at: NOW, execution: ME.into() };
        release(&record, ME, td, Some(good), None)
    })
}

fn first(record: &ServiceRecord, leaving: &str, completed: Option<&str>) -> Option<String> {
    rollback_candidates(record, leaving, completed).into_iter().next().map(|(td, _)| td)
}

#[test]
fn rollback_candidates_run_from_newest_verified_to_completed_at_start_without_repeats() {
    let record = verified(&["api:3", "api:5"]);
    let order: Vec<String> = rollback_candidates(&record, "api:7", Some("api:6")).into_iter().map(|c| c.0).collect();
    assert_eq!(order, ["api:5", "api:3", "api:6"]);
    let order: Vec<String> = rollback_candidates(&record, "api:7", Some("api:5")).into_iter().map(|c| c.0).collect();
    assert_eq!(order, ["api:5", "api:3"], "completed-at-start already listed");
}

#[test]
fn a_first_deployment_rolls_back_to_what_was_completed_when_it_started() {
    let record = ServiceRecord::default();
    assert_eq!(first(&record, "api:9", Some("api:4")), Some("api:4".into()));
    assert!(first(&record, "api:9", None).is_none());
    assert!(first(&record, "api:9", Some("api:9")).is_none());
}

#[test]
fn a_release_records_the_deployment_once_newest_first_and_keeps_the_last_twenty() {
    let t = target("img:1", NOW, "r1");
    let ending = |status| Some(Ending { status, now: NOW + 60.0 });
    let mut record = release(&held_by(ME, &t, NOW + 100.0), ME, "r1", None, ending(Status::RolledBack));
    assert_eq!(record.deployments.len(), 1);
    let entry = &record.deployments[0];
    assert_eq!((entry.status, entry.execution.as_str(), entry.finished_at), (Status::RolledBack, ME, NOW + 60.0));
    assert_eq!((entry.started_at, &entry.containers), (NOW - 10.0, &t.containers));
    // A retried release (the lock is already gone) adds no second entry.
    assert_eq!(release(&record, ME, "r1", None, ending(Status::RolledBack)).deployments.len(), 1);
    for i in 0..30 {
        let owner = format!("e{i}");
        record.lock = held_by(&owner, &t, NOW + 100.0).lock;
        let good = KnownGood { task_definition: format!("td:{i}"), verified_at: NOW, execution: owner.clone() };
        record = release(&record, &owner, "r1", Some(good), ending(Status::Succeeded));
    }
    assert_eq!(record.deployments.len(), DEPLOYMENT_HISTORY);
    assert_eq!(record.deployments[0].execution, "e29");
    assert_eq!(record.deployments[0].task_definition.as_deref(), Some("td:29"));
}

#[test]
fn only_the_lock_holder_records_known_good() {
    let t = target("r/api@sha256:a", 100.0, "e1");
    let good = || Some(KnownGood { task_definition: "api:7".into(), verified_at: NOW, execution: ME.into() });
    // Taken over while it watched: its verdict is not recorded, and it can tell.
    let taken = release(&held_by(OTHER, &t, NOW + 100.0), ME, "e1", good(), None);
    assert!(taken.known_good.is_empty());
    assert!(!known_good_recorded(&taken, ME, "api:7"));
    // Held: recorded; a retried release (lock already gone) keeps it and still reports it.
    let released = release(&held_by(ME, &t, NOW + 100.0), ME, "e1", good(), None);
    assert!(known_good_recorded(&released, ME, "api:7"));
    let retried = release(&released, ME, "e1", good(), None);
    assert_eq!(retried.known_good.len(), 1);
    assert!(known_good_recorded(&retried, ME, "api:7"));
}

#[test]
fn a_re_tag_of_an_older_image_is_not_skipped_by_push_times() {
    // main → A, main → B (deployed), then main pointed back at A: ECR keeps A's first push time.
    let b = target("r/api@sha256:b", 200.0, "e2");
    let (_, record) = decide_acquire(&ServiceRecord::default(), &b, OTHER, None, NOW, TTL);
    let record = release(&record, OTHER, "e2", None, None);
    let mut a_again = target("r/api@sha256:a", 100.0, "e3");
    a_again.pushed_tag = Some(crate::domain::model::PushedTag {
        repository: "r/api".into(),
        tag: "main".into(),
        digest: "sha256:a".into(),
        exact: true,
    });
    let (decision, _) = decide_acquire(&record, &a_again, ME, None, NOW, TTL);
    assert_eq!(decision, Acquire::Acquired, "the tag decides under the lock, not the push times");
    // A prefix or range push is still ordered by its push time.
    a_again.pushed_tag.as_mut().unwrap().exact = false;
    assert!(matches!(decide_acquire(&record, &a_again, ME, None, NOW, TTL).0, Acquire::Skip(_)));
}
