//! The event-driven watch over the in-memory cloud: a parked watcher is woken only by a
//! judgement the state machine acts on; duplicate, stale and early events are harmless.

use super::check::CheckRequest;
use super::deploy::deploy;
use super::tests::{deploy_target, seeded};
use super::watch::{park, signal, Woken};
use crate::domain::model::{Health, Verdict};
use crate::domain::wake::waiter_key;
use crate::testing::FakeCloud;
use serde_json::{json, Value};

async fn started(cloud: &FakeCloud) -> CheckRequest {
    let target = deploy_target(cloud, 7).await;
    let rollout = deploy(cloud, cloud, &target, None, 100.0).await.unwrap();
    CheckRequest { target, rollout, health: Health::default(), lock: None, after_bake: false, rollback: false }
}

fn deployment_event(service_arn: &str, name: &str) -> Value {
    json!({"detail-type": "ECS Deployment State Change", "source": "aws.ecs", "resources": [service_arn],
           "detail": {"eventName": name, "deploymentId": "ecs-svc/whatever"}})
}

fn fail_the_rollout(cloud: &FakeCloud) {
    let mut service = cloud.service("todo");
    service.deployments[0].rollout_state = "FAILED".into();
    cloud.set_service(service);
}

#[tokio::test]
async fn a_pending_rollout_parks_until_an_event_brings_a_verdict() {
    let cloud = seeded();
    let request = started(&cloud).await;
    let parked = park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    assert!(matches!(parked, Woken::StillWaiting(ref h) if h.verdict == Verdict::Pending), "{parked:?}");
    assert!(cloud.with(|s| s.completed_tokens.is_empty()), "nothing to act on yet");

    // An event while nothing changed: judged again, still parked.
    let service_arn = request.target.service_arn.clone();
    let nothing_new =
        signal(&cloud, &cloud, &cloud, &cloud, &cloud, &deployment_event(&service_arn, "X"), 102.0, &[]).await.unwrap();
    assert!(matches!(nothing_new, Woken::StillWaiting(_)), "{nothing_new:?}");

    fail_the_rollout(&cloud);
    let event = deployment_event(&service_arn, "SERVICE_DEPLOYMENT_FAILED");
    let woke = signal(&cloud, &cloud, &cloud, &cloud, &cloud, &event, 103.0, &[]).await.unwrap();
    assert!(matches!(woke, Woken::Woke(ref h) if h.verdict == Verdict::Failed), "{woke:?}");
    let completed = cloud.with(|s| s.completed_tokens.clone());
    assert_eq!(completed.len(), 1);
    assert_eq!((completed[0].0.as_str(), &completed[0].1["verdict"]), ("token-1", &json!("FAILED")));
    assert!(cloud.with(|s| s.waiters.is_empty()), "a woken watcher is cleared");

    // The same event delivered again (EventBridge is at-least-once): nobody is waiting.
    let duplicate = signal(&cloud, &cloud, &cloud, &cloud, &cloud, &event, 104.0, &[]).await.unwrap();
    assert!(matches!(duplicate, Woken::Ignored(_)), "{duplicate:?}");
    assert_eq!(cloud.with(|s| s.completed_tokens.len()), 1);
}

#[tokio::test]
async fn an_event_that_came_before_the_token_was_stored_is_not_lost() {
    let cloud = seeded();
    let request = started(&cloud).await;
    fail_the_rollout(&cloud); // ECS's FAILED event went out before the watcher parked
    let parked = park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    assert!(matches!(parked, Woken::Woke(ref h) if h.verdict == Verdict::Failed), "{parked:?}");
    assert_eq!(cloud.with(|s| s.completed_tokens.len()), 1);
}

#[tokio::test]
async fn a_stopped_task_of_an_older_deployment_is_stale_and_a_late_duplicate_is_harmless() {
    let cloud = seeded();
    let request = started(&cloud).await;
    park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    let cluster_arn = request.target.cluster_arn.clone();
    let task_event = |started_by: &str| {
        json!({"detail-type": "ECS Task State Change", "source": "aws.ecs",
               "detail": {"clusterArn": cluster_arn, "group": "service:todo", "lastStatus": "STOPPED",
                          "startedBy": started_by, "taskArn": "arn:task/1"}})
    };
    let stale = signal(&cloud, &cloud, &cloud, &cloud, &cloud, &task_event("ecs-svc/older"), 102.0, &[]).await.unwrap();
    assert!(matches!(stale, Woken::Ignored(ref why) if why.contains("not about")), "{stale:?}");

    // The token was completed elsewhere (the heartbeat re-check) but the waiter is still stored:
    // completing it again answers TaskTimedOut, which is no error.
    fail_the_rollout(&cloud);
    cloud.with(|s| s.completed_tokens.push(("token-1".into(), json!({}))));
    let watched = request.rollout.deployment_id.clone().unwrap();
    let late = signal(&cloud, &cloud, &cloud, &cloud, &cloud, &task_event(&watched), 103.0, &[]).await.unwrap();
    assert!(matches!(late, Woken::Ignored(_)), "{late:?}");
    assert!(cloud.with(|s| !s.waiters.contains_key(&waiter_key(&request.target.service_arn))));
}

#[tokio::test]
async fn a_newer_watcher_is_never_cleared_by_an_older_token() {
    let cloud = seeded();
    let request = started(&cloud).await;
    park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-2", 102.0).await.unwrap();
    fail_the_rollout(&cloud);
    let event = deployment_event(&request.target.service_arn, "SERVICE_DEPLOYMENT_FAILED");
    signal(&cloud, &cloud, &cloud, &cloud, &cloud, &event, 103.0, &[]).await.unwrap();
    assert_eq!(cloud.with(|s| s.completed_tokens[0].0.clone()), "token-2", "the newest parked watcher is woken");
}

#[tokio::test]
async fn a_stopped_task_wakes_the_watcher_of_a_service_with_a_legacy_short_arn() {
    let cloud = seeded();
    let mut request = started(&cloud).await;
    // The service predates ECS's long ARN format: its watcher parks under the short ARN, while
    // task events name the service by cluster and name.
    let short = request.target.service_arn.replace("service/prod/todo", "service/todo");
    cloud.with(|s| s.services.iter_mut().find(|x| x.name == "todo").unwrap().arn = short.clone());
    request.target.service_arn = short.clone();
    park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    fail_the_rollout(&cloud);
    let watched = request.rollout.deployment_id.clone().unwrap();
    let event = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs",
                       "detail": {"clusterArn": request.target.cluster_arn, "group": "service:todo",
                                  "lastStatus": "STOPPED", "startedBy": watched, "taskArn": "arn:task/1"}});
    let woke = signal(&cloud, &cloud, &cloud, &cloud, &cloud, &event, 102.0, &[]).await.unwrap();
    assert!(matches!(woke, Woken::Woke(ref h) if h.verdict == Verdict::Failed), "{woke:?}");
    assert!(cloud.with(|s| !s.waiters.contains_key(&waiter_key(&short))));
}

#[tokio::test(start_paused = true)]
async fn an_event_that_comes_before_the_read_shows_it_is_judged_again() {
    use super::watch::REREAD_AFTER;
    let cloud = seeded();
    let request = started(&cloud).await;
    park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    // ECS failed the rollout and said so, but the next two reads still show it in progress.
    cloud.lag_service_reads("todo", 2);
    fail_the_rollout(&cloud);
    let event = deployment_event(&request.target.service_arn, "SERVICE_DEPLOYMENT_FAILED");
    let once = signal(&cloud, &cloud, &cloud, &cloud, &cloud, &event, 103.0, &[]).await.unwrap();
    assert!(matches!(once, Woken::StillWaiting(_)), "one stale look parks it: {once:?}");
    let woke = signal(&cloud, &cloud, &cloud, &cloud, &cloud, &event, 103.0, &REREAD_AFTER).await.unwrap();
    assert!(matches!(woke, Woken::Woke(ref h) if h.verdict == Verdict::Failed), "{woke:?}");
    assert_eq!(cloud.with(|s| s.completed_tokens.len()), 1);
}

#[tokio::test(start_paused = true)]
async fn the_watched_deployments_own_progress_is_not_judged_again() {
    use super::watch::REREAD_AFTER;
    let cloud = seeded();
    let request = started(&cloud).await;
    park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    let own = request.rollout.deployment_id.clone().expect("deployment id");
    let event = json!({"detail-type": "ECS Deployment State Change", "source": "aws.ecs",
                       "resources": [request.target.service_arn],
                       "detail": {"eventName": "SERVICE_DEPLOYMENT_IN_PROGRESS", "deploymentId": own}});
    let reads = || cloud.calls().iter().filter(|c| c.starts_with("DescribeServices")).count();
    let before = reads();
    let still = signal(&cloud, &cloud, &cloud, &cloud, &cloud, &event, 102.0, &REREAD_AFTER).await.unwrap();
    assert!(matches!(still, Woken::StillWaiting(_)), "{still:?}");
    assert_eq!(reads() - before, 1, "one look: the event announces nothing new");
}

fn task_stopped_event(request: &CheckRequest) -> Value {
    json!({"detail-type": "ECS Task State Change", "source": "aws.ecs",
           "detail": {"clusterArn": request.target.cluster_arn, "group": "service:todo", "lastStatus": "STOPPED",
                      "startedBy": request.rollout.deployment_id, "taskArn": "arn:task/1"}})
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_events_about_one_rollout_is_judged_a_few_times_not_once_per_event() {
    use super::watch::REREAD_AFTER;
    let cloud = seeded();
    let request = started(&cloud).await;
    park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    // Every read lags: each event announces a change no look shows, so each judgement re-reads
    // (the longest a claim is held) while the other events arrive.
    cloud.lag_service_reads("todo", 1_000);
    let event = deployment_event(&request.target.service_arn, "SERVICE_DEPLOYMENT_FAILED");
    let reads = |cloud: &FakeCloud| cloud.calls().iter().filter(|c| c.starts_with("DescribeServices")).count();
    let before = reads(&cloud);

    // Twenty invocations at once, interleaved at their awaits (the re-reads' pauses).
    let cloud = std::sync::Arc::new(cloud);
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (cloud, event) = (cloud.clone(), event.clone());
        burst.spawn(async move {
            let c = &*cloud;
            signal(c, c, c, c, c, &event, 103.0, &REREAD_AFTER).await
        });
    }
    let answers = burst.join_all().await;

    let coalesced =
        answers.iter().filter(|a| matches!(a, Ok(Woken::Ignored(why)) if why.starts_with("coalesced"))).count();
    assert_eq!(coalesced, 19, "{answers:?}");
    // One claim holder: its look, three re-reads, one more look for the nineteen others.
    assert_eq!(reads(&cloud) - before, 5);
    assert!(cloud.with(|s| s.judging.is_empty()), "the claim was given back");
    assert!(cloud.with(|s| s.waiters.contains_key(&waiter_key(request.target.service_key()))));
}

#[tokio::test]
async fn an_event_during_a_claim_is_looked_at_by_the_claim_holder() {
    let cloud = seeded();
    let request = started(&cloud).await;
    park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    let key = waiter_key(request.target.service_key());
    // Another invocation is judging (its claim runs until 130).
    cloud.with(|s| s.judging.insert(key.clone(), ("token-1".into(), 130.0, false)));
    fail_the_rollout(&cloud);
    let calls = cloud.calls().len();

    let answer =
        signal(&cloud, &cloud, &cloud, &cloud, &cloud, &task_stopped_event(&request), 102.0, &[]).await.unwrap();

    assert!(matches!(answer, Woken::Ignored(ref why) if why.starts_with("coalesced")), "{answer:?}");
    assert_eq!(cloud.calls().len(), calls, "no ECS call: the claim holder looks again");
    assert_eq!(cloud.with(|s| s.judging.get(&key).cloned()), Some(("token-1".into(), 130.0, true)));
}

#[tokio::test]
async fn a_claim_whose_holder_died_lapses() {
    let cloud = seeded();
    let request = started(&cloud).await;
    park(&cloud, &cloud, &cloud, &cloud, &cloud, &request, "token-1", 101.0).await.unwrap();
    let key = waiter_key(request.target.service_key());
    cloud.with(|s| s.judging.insert(key.clone(), ("token-1".into(), 110.0, true)));
    fail_the_rollout(&cloud);

    let event = deployment_event(&request.target.service_arn, "SERVICE_DEPLOYMENT_FAILED");
    let woke = signal(&cloud, &cloud, &cloud, &cloud, &cloud, &event, 111.0, &[]).await.unwrap();

    assert!(matches!(woke, Woken::Woke(ref h) if h.verdict == Verdict::Failed), "{woke:?}");
    assert!(cloud.with(|s| s.judging.is_empty() && s.waiters.is_empty()));
}
