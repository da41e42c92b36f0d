//! Watching a rollout on ECS events: the check function parks the watcher on a task token and
//! judges once right away (an event may have come before the token was stored); the signal
//! function judges again whenever ECS says something about the service. Either completes the
//! token when the judgement is one the state machine acts on ([`Health::wakes_the_watcher`]).

use super::check::{check, CheckRequest};
use crate::domain::model::Health;
use crate::domain::wake::{parse_ecs_event, waiter_key, Claim, EcsSignal, Release, Waiter};
use crate::error::Result;
use crate::ports::{Alarms, Ecs, HookFailures, LoadBalancer, TaskTokens, TokenOutcome, Waiters};
use serde_json::Value;
use std::time::Duration;

/// ECS reads are eventually consistent ("Amazon ECS API Reference: Eventual consistency"), and
/// EventBridge can deliver the event of a change before DescribeServices shows it. Judged only
/// once, such an event leaves the watcher parked until its heartbeat (RecheckSeconds, a minute by
/// default) although the rollout is over. So an event that reports a change the first look
/// does not see is judged again after these pauses (7 s in all, well inside the function's
/// timeout).
pub const REREAD_AFTER: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)];

/// How long a judging claim lasts: past the judgement and its re-reads (7 s), inside the
/// signal function's timeout (30 s), so that the claim of an invocation that died lapses
/// before the next events give up on it.
pub const CLAIM_SECONDS: f64 = 25.0;
/// Looks one claim holder takes for events that came during its judgements. A burst longer
/// than this is judged again by the next event after it (or the watcher's own recheck).
pub const MAX_LOOKS_PER_CLAIM: usize = 5;

/// What became of a watcher after a judgement.
#[derive(Debug, Clone, PartialEq)]
pub enum Woken {
    /// The token was completed with this health.
    Woke(Health),
    /// Still pending in a way ECS will announce: the watcher stays parked.
    StillWaiting(Health),
    /// The event was not about a parked watcher (or the task had already ended).
    Ignored(String),
}

/// Parks the watcher of `request` on `token`, then judges the rollout once.
#[allow(clippy::too_many_arguments)]
pub async fn park(
    waiters: &(impl Waiters + HookFailures),
    tokens: &impl TaskTokens,
    ecs: &impl Ecs,
    elb: &impl LoadBalancer,
    alarms: &impl Alarms,
    request: &CheckRequest,
    token: &str,
    now: f64,
) -> Result<Woken> {
    let key = waiter_key(request.target.service_key());
    let waiter = Waiter {
        token: token.to_string(),
        deployment_id: request.rollout.deployment_id.clone(),
        check: serde_json::to_value(request)
            .map_err(|e| crate::error::DeckhandError::invalid("input", e.to_string()))?,
        parked_at: now,
    };
    // Stored before the first look: an event after this point finds the waiter, and one
    // before it changed what this look sees. Nothing falls between the two.
    waiters.park(&key, &waiter).await?;
    judge(waiters, tokens, ecs, elb, alarms, &key, &waiter, request, now).await
}

/// Routes an ECS event to the watcher parked on its service, if any. When the event reports a
/// change the live state does not show yet, it is judged again after each of `rereads`.
#[allow(clippy::too_many_arguments)]
pub async fn signal(
    waiters: &(impl Waiters + HookFailures),
    tokens: &impl TaskTokens,
    ecs: &impl Ecs,
    elb: &impl LoadBalancer,
    alarms: &impl Alarms,
    event: &Value,
    now: f64,
    rereads: &[Duration],
) -> Result<Woken> {
    let signal = match parse_ecs_event(event) {
        Ok(signal) => signal,
        Err(ignored) => return Ok(Woken::Ignored(ignored.0)),
    };
    let mut key = waiter_key(signal.service_arn());
    let mut found = waiters.find(&key).await?;
    if let (None, Some(short)) = (&found, legacy_service_arn(&signal)) {
        key = waiter_key(&short);
        found = waiters.find(&key).await?;
    }
    let Some(waiter) = found else {
        return Ok(Woken::Ignored(format!("no rollout of {} is waiting", signal.service_arn())));
    };
    if !signal.concerns(&waiter) {
        return Ok(Woken::Ignored(format!("{signal:?} is not about the watched deployment")));
    }
    let request: CheckRequest = serde_json::from_value(waiter.check.clone())
        .map_err(|e| crate::error::DeckhandError::AwsRequestFailed(format!("waiter {key} is unreadable: {e}")))?;
    match waiters.claim(&key, &waiter.token, now, now + CLAIM_SECONDS).await? {
        Claim::Claimed => {}
        Claim::Coalesced => {
            return Ok(Woken::Ignored("coalesced: the invocation judging this rollout looks once more".into()))
        }
        Claim::Gone => return Ok(Woken::Ignored("the watcher was woken meanwhile".into())),
    }
    let judged =
        judge_while_claimed(waiters, tokens, ecs, elb, alarms, &key, &waiter, &request, &signal, now, rereads).await;
    if judged.is_err() {
        // The event is retried (Lambda retries a failed asynchronous invocation): free the
        // claim now rather than let the events meanwhile wait for it to lapse.
        let _ = waiters.abandon(&key, &waiter.token).await;
    }
    judged
}

/// Judges the claimed watcher (again after `rereads` when the event reports a change the reads
/// do not show yet), then once more for each time other events asked while it judged.
#[allow(clippy::too_many_arguments)]
async fn judge_while_claimed(
    waiters: &(impl Waiters + HookFailures),
    tokens: &impl TaskTokens,
    ecs: &impl Ecs,
    elb: &impl LoadBalancer,
    alarms: &impl Alarms,
    key: &str,
    waiter: &Waiter,
    request: &CheckRequest,
    signal: &EcsSignal,
    now: f64,
    rereads: &[Duration],
) -> Result<Woken> {
    let mut woken = judge(waiters, tokens, ecs, elb, alarms, key, waiter, request, now).await?;
    let mut waited = 0.0;
    for pause in rereads {
        if !matches!(woken, Woken::StillWaiting(_)) || !signal.announces_a_change(waiter) {
            break;
        }
        tokio::time::sleep(*pause).await;
        waited += pause.as_secs_f64();
        // Another event may have woken the watcher meanwhile, or a new one parked: judge only
        // the watcher this event found.
        match waiters.find(key).await? {
            Some(still) if still.token == waiter.token => {}
            _ => return Ok(Woken::Ignored("the watcher was woken meanwhile".into())),
        }
        woken = judge(waiters, tokens, ecs, elb, alarms, key, waiter, request, now + waited).await?;
    }
    for _ in 0..MAX_LOOKS_PER_CLAIM {
        // A woken watcher is cleared with its claim; only a parked one has a claim to give back.
        if !matches!(woken, Woken::StillWaiting(_)) {
            return Ok(woken);
        }
        match waiters.release(key, &waiter.token, now + waited + CLAIM_SECONDS).await? {
            Release::Released | Release::Gone => return Ok(woken),
            Release::JudgeAgain => {
                woken = judge(waiters, tokens, ecs, elb, alarms, key, waiter, request, now + waited).await?
            }
        }
    }
    if matches!(woken, Woken::StillWaiting(_)) {
        waiters.abandon(key, &waiter.token).await?;
    }
    Ok(woken)
}

/// A task event names its service by cluster and name (`…:service/CLUSTER/NAME`); a service
/// created before ECS's long ARN format is parked under its short ARN (`…:service/NAME`).
fn legacy_service_arn(signal: &EcsSignal) -> Option<String> {
    let EcsSignal::TaskStopped { service_arn, .. } = signal else { return None };
    let (prefix, path) = service_arn.split_once(":service/")?;
    let (_, name) = path.split_once('/')?;
    Some(format!("{prefix}:service/{name}"))
}

#[allow(clippy::too_many_arguments)]
async fn judge(
    waiters: &(impl Waiters + HookFailures),
    tokens: &impl TaskTokens,
    ecs: &impl Ecs,
    elb: &impl LoadBalancer,
    alarms: &impl Alarms,
    key: &str,
    waiter: &Waiter,
    request: &CheckRequest,
    now: f64,
) -> Result<Woken> {
    let health = check(ecs, elb, alarms, waiters, request, now).await?;
    if !health.wakes_the_watcher() {
        return Ok(Woken::StillWaiting(health));
    }
    let output =
        serde_json::to_value(&health).map_err(|e| crate::error::DeckhandError::AwsRequestFailed(e.to_string()))?;
    let outcome = tokens.complete(&waiter.token, &output).await?;
    waiters.clear(key, &waiter.token).await?;
    Ok(match outcome {
        TokenOutcome::Completed => Woken::Woke(health),
        TokenOutcome::AlreadyClosed => Woken::Ignored("the watcher's task had already ended".into()),
    })
}
