//! Per-service durable state (the lock, the newest push seen, the known-good history) and the
//! decisions made on it. Pure: the storage adapter only loads and conditionally saves it.

use super::model::{ContainerChange, Mode, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many verified revisions are remembered per service.
pub const KNOWN_GOOD_HISTORY: usize = 5;

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
}

#[derive(Debug, Clone, PartialEq)]
pub enum Acquire {
    Acquired,
    Skip(String),
    Busy { holder: String },
}

/// The live holder other than `owner`, if any, after expiry is taken into account.
pub fn other_holder<'a>(record: &'a ServiceRecord, owner: &str, now: f64) -> Option<&'a LockHold> {
    record.lock.as_ref().filter(|hold| hold.owner != owner && hold.expires_at > now)
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
    if let (Some(hold), Some(HolderStatus::Running)) = (other_holder(record, owner, now), holder) {
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
    });
    (Acquire::Acquired, next)
}

fn superseding_push(record: &ServiceRecord, target: &Target) -> Option<String> {
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

/// Releases `owner`'s lock, recording `verified` as known-good and the request as finished.
/// Releasing a lock one does not hold changes nothing but the history (idempotent retries).
pub fn release(record: &ServiceRecord, owner: &str, request_id: &str, verified: Option<KnownGood>) -> ServiceRecord {
    let mut next = record.clone();
    if next.lock.as_ref().is_some_and(|hold| hold.owner == owner) {
        next.lock = None;
    }
    if let Some(good) = verified {
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

/// Where a rollback goes: the newest revision deckhand verified healthy, other than the one that
/// failed (or, for a manual rollback, the one running now); for a service deckhand never verified,
/// the revision that was COMPLETED when the failed deployment started. Never "revision − 1".
pub fn rollback_target(
    record: &ServiceRecord,
    leaving: &str,
    completed_at_start: Option<&str>,
) -> Option<(String, String)> {
    if let Some(good) = record.known_good.iter().find(|k| k.task_definition != leaving) {
        return Some((good.task_definition.clone(), format!("last known-good (verified by {})", good.execution)));
    }
    completed_at_start
        .filter(|td| *td != leaving)
        .map(|td| (td.to_string(), "the revision that was COMPLETED when the deployment started".to_string()))
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
