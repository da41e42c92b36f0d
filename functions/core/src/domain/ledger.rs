//! Per-service durable state (the lock, the newest push seen, the known-good history) and the
//! decisions made on it. Pure: the storage adapter only loads and conditionally saves it.

use super::events::Status;
use super::model::{ContainerChange, Mode, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many verified revisions are remembered per service.
pub const KNOWN_GOOD_HISTORY: usize = 5;
/// How many finished deployments are remembered per service (`deckhand history`); a few KiB.
pub const DEPLOYMENT_HISTORY: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    #[serde(default)]
    pub lock: Option<LockHold>,
    /// Newest push seen per tracked container; older pushes arriving later are skipped.
    #[serde(default)]
    pub newest: BTreeMap<String, PushMark>,
    /// Revisions deckhand verified healthy on this service, newest first.
    #[serde(default)]
    pub known_good: Vec<KnownGood>,
    /// Request ids (ECR event ids) whose handling finished, newest first, to drop duplicates.
    #[serde(default)]
    pub finished_requests: Vec<String>,
    /// Deployments and rollbacks that held the lock, newest first, as they ended.
    #[serde(default)]
    pub deployments: Vec<FinishedDeployment>,
    /// Per tracked container, the image the reconciliation sweep last started: a sweep starts a
    /// missed push once, whatever its end (`domain::reconcile`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reconciled: BTreeMap<String, SweepMark>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepMark {
    pub image: String,
    /// The sweep's execution.
    pub execution: String,
    pub at: f64,
}

/// One deployment (or rollback) of a service, as it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishedDeployment {
    /// The service's execution that held the lock.
    pub execution: String,
    pub request_id: String,
    pub mode: Mode,
    pub containers: Vec<ContainerChange>,
    pub status: Status,
    pub started_at: f64,
    pub finished_at: f64,
    /// The revision the service was left running (verified ones only), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_task_definition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHold {
    /// The Step Functions execution holding the lock.
    pub owner: String,
    pub request_id: String,
    pub mode: Mode,
    pub containers: Vec<ContainerChange>,
    pub acquired_at: f64,
    pub expires_at: f64,
    /// The revision that was COMPLETED on the service when the lock was taken: what the
    /// deployment replaces, kept here so that a retried step cannot lose it.
    #[serde(default)]
    pub previous_task_definition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushMark {
    pub image: String,
    pub pushed_at: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnownGood {
    pub task_definition: String,
    pub verified_at: f64,
    pub execution: String,
}

/// Is the current holder still working? Decided by the caller (it asks Step Functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderStatus {
    Running,
    /// The holder's execution ended (failed, aborted, timed out) without releasing.
    Gone,
    /// Step Functions could not tell (e.g. the holder is an execution of another state machine
    /// this role may not describe): only then does the lease's expiry decide.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Acquire {
    Acquired,
    Skip(String),
    Busy { holder: String },
}

/// The holder other than `owner`, if any, expired or not: a rollout may legally run longer than
/// the lease (hours of timeout, then rollback, grace and bake), so whether the holding execution
/// still runs decides, not the clock.
pub fn other_holder<'a>(record: &'a ServiceRecord, owner: &str) -> Option<&'a LockHold> {
    record.lock.as_ref().filter(|hold| hold.owner != owner)
}

/// Whether a holder in `status` still holds the lock at `now`.
fn still_holds(hold: &LockHold, status: HolderStatus, now: f64) -> bool {
    match status {
        HolderStatus::Running => true,
        HolderStatus::Gone => false,
        HolderStatus::Unknown => hold.expires_at > now,
    }
}

/// Decides whether `owner` may deploy `target` now, and returns the record to save.
/// `holder` is the status of the other live holder returned by [`other_holder`], if any.
pub fn decide_acquire(
    record: &ServiceRecord,
    target: &Target,
    owner: &str,
    holder: Option<HolderStatus>,
    now: f64,
    ttl_seconds: f64,
) -> (Acquire, ServiceRecord) {
    let mut next = record.clone();
    if record.lock.as_ref().is_some_and(|hold| hold.owner == owner) {
        return (Acquire::Acquired, next);
    }
    if target.mode == Mode::Deploy {
        if record.finished_requests.iter().any(|r| r == &target.request_id) {
            return (
                Acquire::Skip(format!("duplicate delivery: request {} was already handled", target.request_id)),
                next,
            );
        }
        if let Some(newer) = superseding_push(record, target) {
            return (Acquire::Skip(newer), next);
        }
        remember_push(&mut next, target);
    }
    let live_holder = other_holder(record, owner).filter(|hold| {
        // A holder nobody asked about is treated as unknown: its lease decides.
        still_holds(hold, holder.unwrap_or(HolderStatus::Unknown), now)
    });
    if let Some(hold) = live_holder {
        if target.mode == Mode::Deploy
            && hold.mode == Mode::Deploy
            && (hold.request_id == target.request_id || hold.containers == target.containers)
        {
            return (
                Acquire::Skip(format!("duplicate: execution {} is already deploying this image", hold.owner)),
                next,
            );
        }
        return (Acquire::Busy { holder: hold.owner.clone() }, next);
    }
    next.lock = Some(LockHold {
        owner: owner.to_string(),
        request_id: target.request_id.clone(),
        mode: target.mode,
        containers: target.containers.clone(),
        acquired_at: now,
        expires_at: now + ttl_seconds,
        previous_task_definition: None,
    });
    (Acquire::Acquired, next)
}

fn superseding_push(record: &ServiceRecord, target: &Target) -> Option<String> {
    if target.pushed_tag.as_ref().is_some_and(|pushed| pushed.exact) {
        // One tag: whether it still names this digest is asked of ECR under the lock (Deploy);
        // push times would call a re-tag of an older image (rolling back by tag) stale.
        return None;
    }
    target.containers.iter().find_map(|change| {
        let newest = record.newest.get(&change.name)?;
        (newest.pushed_at > target.pushed_at && newest.image != change.image).then(|| {
            format!(
                "superseded: container {} has a newer push ({}) than this one ({})",
                change.name, newest.image, change.image
            )
        })
    })
}

fn remember_push(record: &mut ServiceRecord, target: &Target) {
    for change in &target.containers {
        let newer = record.newest.get(&change.name).is_none_or(|seen| target.pushed_at >= seen.pushed_at);
        if newer {
            record
                .newest
                .insert(change.name.clone(), PushMark { image: change.image.clone(), pushed_at: target.pushed_at });
        }
    }
}

/// Extends `owner`'s lease to `now + ttl_seconds` while it watches a long rollout. None when
/// `owner` no longer holds the lock (it was taken over as dead: the caller must stop).
pub fn renew(record: &ServiceRecord, owner: &str, now: f64, ttl_seconds: f64) -> Option<ServiceRecord> {
    let mut next = record.clone();
    let hold = next.lock.as_mut().filter(|hold| hold.owner == owner)?;
    hold.expires_at = hold.expires_at.max(now + ttl_seconds);
    Some(next)
}

/// How a lock holder ended, for the deployment history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ending {
    pub status: Status,
    pub now: f64,
}

/// Releases `owner`'s lock, recording `verified` as known-good, the request as finished and,
/// with `ending`, the deployment in the history. Releasing a lock one does not hold changes
/// nothing but the request list (idempotent retries: a retried release records no second entry),
/// and records no known-good: a holder whose lock was taken over no longer knows what the
/// service runs, so its verdict is not the service's.
pub fn release(
    record: &ServiceRecord,
    owner: &str,
    request_id: &str,
    verified: Option<KnownGood>,
    ending: Option<Ending>,
) -> ServiceRecord {
    let mut next = record.clone();
    let held = next.lock.as_ref().is_some_and(|hold| hold.owner == owner);
    if let Some(hold) = next.lock.take_if(|hold| hold.owner == owner) {
        if let Some(ending) = ending {
            next.deployments.insert(
                0,
                FinishedDeployment {
                    execution: hold.owner,
                    request_id: hold.request_id,
                    mode: hold.mode,
                    containers: hold.containers,
                    status: ending.status,
                    started_at: hold.acquired_at,
                    finished_at: ending.now,
                    task_definition: verified.as_ref().map(|good| good.task_definition.clone()),
                    previous_task_definition: hold.previous_task_definition,
                },
            );
            next.deployments.truncate(DEPLOYMENT_HISTORY);
        }
    }
    if let Some(good) = verified.filter(|_| held) {
        next.known_good.retain(|k| k.task_definition != good.task_definition);
        next.known_good.insert(0, good);
        next.known_good.truncate(KNOWN_GOOD_HISTORY);
    }
    if !next.finished_requests.iter().any(|r| r == request_id) {
        next.finished_requests.insert(0, request_id.to_string());
        next.finished_requests.truncate(20);
    }
    next
}

/// Whether `verified` stands recorded as known-good by `owner`: after a release, false means the
/// lock was no longer `owner`'s (taken over as dead), so the revision was not recorded.
pub fn known_good_recorded(record: &ServiceRecord, owner: &str, verified: &str) -> bool {
    record.known_good.iter().any(|k| k.task_definition == verified && k.execution == owner)
}

/// Where a rollback may go, best first: the revisions deckhand verified healthy, newest first,
/// other than the one that failed (or, for a manual rollback, the one running now); then the
/// revision that was COMPLETED when the failed deployment started. Never "revision − 1". The
/// caller takes the first that still exists (a deregistered revision cannot be deployed).
pub fn rollback_candidates(
    record: &ServiceRecord,
    leaving: &str,
    completed_at_start: Option<&str>,
) -> Vec<(String, String)> {
    let mut candidates: Vec<(String, String)> = record
        .known_good
        .iter()
        .filter(|k| k.task_definition != leaving)
        .enumerate()
        .map(|(i, good)| {
            let which = if i == 0 { "last known-good" } else { "an earlier known-good" };
            (good.task_definition.clone(), format!("{which} (verified by {})", good.execution))
        })
        .collect();
    if let Some(td) = completed_at_start.filter(|td| *td != leaving) {
        if !candidates.iter().any(|(c, _)| c == td) {
            candidates
                .push((td.to_string(), "the revision that was COMPLETED when the deployment started".to_string()));
        }
    }
    candidates
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
