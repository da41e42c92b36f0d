//! Serialising deployments per service: acquire and release the service lock.

use super::deploy::describe_one;
use crate::domain::events::Status;
use crate::domain::ledger::{
    decide_acquire, known_good_recorded, other_holder, release as release_record, renew as renew_record, Acquire,
    Ending, HolderStatus, KnownGood,
};
use crate::domain::model::{Mode, Target};
use crate::domain::protect::{pinned_images, plan_protection, PinnedImage};
use crate::error::{DeckhandError, Result};
use crate::ports::{Ecs, Executions, Ledger, Registry, Tagging};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockDecision {
    Acquired,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockResult {
    pub decision: LockDecision,
    pub reason: String,
    /// The revision COMPLETED on the service when the lock was taken (see [`LockHold`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_task_definition: Option<String>,
    /// When the lease runs out unless renewed (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<f64>,
    /// The lease's length (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<f64>,
}

impl LockResult {
    /// Whether the lease is past half its length at `now` (renewing then keeps a holder whose
    /// liveness cannot be checked from being taken over).
    pub fn needs_renewal(&self, now: f64) -> bool {
        match (self.expires_at, self.lease_seconds) {
            (Some(expires_at), Some(lease)) => expires_at - now < lease / 2.0,
            _ => false,
        }
    }
}

/// Optimistic writes race only with other deckhand executions; a few rounds settle it.
const WRITE_ATTEMPTS: usize = 5;

pub async fn acquire(
    ledger: &impl Ledger,
    executions: &impl Executions,
    ecs: &impl Ecs,
    target: &Target,
    owner: &str,
    now: f64,
    ttl_seconds: f64,
) -> Result<LockResult> {
    let completed = match target.mode {
        Mode::Deploy => describe_one(ecs, target).await?.completed_task_definition().map(str::to_string),
        Mode::Rollback => None,
    };
    for _ in 0..WRITE_ATTEMPTS {
        let (record, version) = ledger.load(target.service_key()).await?;
        let holder = match other_holder(&record, owner) {
            Some(hold) => Some(holder_status(executions, &hold.owner).await?),
            None => None,
        };
        let (decision, mut next) = decide_acquire(&record, target, owner, holder, now, ttl_seconds);
        if let Some(hold) = next.lock.as_mut().filter(|hold| hold.owner == owner) {
            // Set once, by the first attempt that took the lock: a retry keeps what it saw.
            hold.previous_task_definition = hold.previous_task_definition.take().or_else(|| completed.clone());
        }
        if next != record && !ledger.save(target.service_key(), &next, version).await? {
            continue;
        }
        return match decision {
            Acquire::Acquired => {
                tracing::info!(service = %target.service_arn, "lock acquired");
                let hold = next.lock.as_ref();
                Ok(LockResult {
                    decision: LockDecision::Acquired,
                    reason: "lock acquired".into(),
                    previous_task_definition: hold.and_then(|h| h.previous_task_definition.clone()),
                    expires_at: hold.map(|h| h.expires_at),
                    lease_seconds: Some(ttl_seconds),
                })
            }
            Acquire::Skip(reason) => {
                tracing::info!(service = %target.service_arn, %reason, "skipping");
                Ok(LockResult {
                    decision: LockDecision::Skipped,
                    reason,
                    previous_task_definition: None,
                    expires_at: None,
                    lease_seconds: None,
                })
            }
            Acquire::Busy { holder } => Err(DeckhandError::LockBusy { service: target.service_arn.clone(), holder }),
        };
    }
    Err(DeckhandError::AwsTransient(format!("state of {} kept changing under concurrent writers", target.service_arn)))
}

/// Asks Step Functions whether the holder still runs. A refusal that retrying cannot fix means
/// "cannot be known" (the lease's expiry then decides); throttling and faults are retried.
async fn holder_status(executions: &impl Executions, holder: &str) -> Result<HolderStatus> {
    match executions.status(holder).await {
        Ok(status) => Ok(status),
        Err(error) if error.is_retryable() => Err(error),
        Err(error) => {
            tracing::warn!(%holder, %error, "cannot tell whether the lock holder runs; its lease decides");
            Ok(HolderStatus::Unknown)
        }
    }
}

/// Extends `owner`'s lease while it watches a long rollout. Fails with `LockLost` when the lock
/// was taken over (its holder was judged dead): the caller must not go on changing the service.
pub async fn renew(ledger: &impl Ledger, target: &Target, owner: &str, now: f64, ttl_seconds: f64) -> Result<f64> {
    for _ in 0..WRITE_ATTEMPTS {
        let (record, version) = ledger.load(target.service_key()).await?;
        let next = renew_record(&record, owner, now, ttl_seconds).ok_or_else(|| DeckhandError::LockLost {
            service: target.service_arn.clone(),
            holder: record.lock.as_ref().map_or_else(|| "nobody".to_string(), |hold| hold.owner.clone()),
        })?;
        let expires_at = next.lock.as_ref().map_or(now, |hold| hold.expires_at);
        if next == record || ledger.save(target.service_key(), &next, version).await? {
            tracing::info!(service = %target.service_arn, expires_at, "lease renewed");
            return Ok(expires_at);
        }
    }
    Err(DeckhandError::AwsTransient(format!("state of {} kept changing under concurrent writers", target.service_arn)))
}

/// The known-good history after a release, and what left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// The known-good revisions now recorded, newest first.
    pub known_good: Vec<String>,
    /// Revisions that were known-good before this release and no longer are (pushed out of the
    /// history by the verified one).
    pub left: Vec<String>,
}

/// Releases `owner`'s lock; with `verified`, records that revision as known-good; with
/// `outcome`, records how the deployment ended in the service's history.
pub async fn release(
    ledger: &impl Ledger,
    target: &Target,
    owner: &str,
    verified: Option<&str>,
    outcome: Option<Status>,
    now: f64,
) -> Result<Released> {
    let ending = outcome.map(|status| Ending { status, now });
    let verified = verified.map(|td| KnownGood {
        task_definition: td.to_string(),
        verified_at: now,
        execution: owner.to_string(),
    });
    for _ in 0..WRITE_ATTEMPTS {
        let (record, version) = ledger.load(target.service_key()).await?;
        let next = release_record(&record, owner, &target.request_id, verified.clone(), ending);
        if next == record || ledger.save(target.service_key(), &next, version).await? {
            if let Some(good) = &verified {
                if !known_good_recorded(&next, owner, &good.task_definition) {
                    // Never swallowed: the state machine reports the deployment without a
                    // known-good record, and the next rollback still finds the revision as the
                    // one COMPLETED when its deployment started.
                    return Err(DeckhandError::LockLost {
                        service: target.service_arn.clone(),
                        holder: record.lock.as_ref().map_or_else(|| "nobody".to_string(), |hold| hold.owner.clone()),
                    });
                }
            }
            tracing::info!(service = %target.service_arn, known_good = verified.is_some(), "lock released");
            let known_good: Vec<String> = next.known_good.iter().map(|k| k.task_definition.clone()).collect();
            let left = record
                .known_good
                .iter()
                .map(|k| k.task_definition.clone())
                .filter(|td| !known_good.contains(td))
                .collect();
            return Ok(Released { known_good, left });
        }
    }
    Err(DeckhandError::AwsTransient(format!("state of {} kept changing under concurrent writers", target.service_arn)))
}

/// What protecting the known-good images from ECR lifecycle policies came to
/// ([`crate::domain::protect`]). Never a failure of the deployment: what could not be done is in
/// `warnings` (logged, and in the lock function's output).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Protection {
    /// `REPOSITORY:TAG` added (or already there).
    pub tagged: Vec<String>,
    /// `REPOSITORY:TAG` removed.
    pub untagged: Vec<String>,
    pub warnings: Vec<String>,
}

/// Tags the ECR images of the `verified` revision (pinned by digest, in `account_registry`) so
/// that "expire untagged" lifecycle rules leave them, and removes the tags of revisions that left
/// the known-good history, unless a revision still in it runs the same image.
pub async fn protect_known_good(
    ecs: &impl Ecs,
    registry: &impl Registry,
    account_registry: &str,
    target: &Target,
    verified: &str,
    released: &Released,
) -> Protection {
    let mut protection = Protection::default();
    let images_of = |td: String| async move {
        ecs.describe_task_definition(&td).await.map(|(definition, _)| {
            pinned_images(definition.container_definitions().iter().filter_map(|c| c.image()), account_registry)
        })
    };
    let verified_images = match images_of(verified.to_string()).await {
        Ok(images) => images,
        Err(error) => {
            protection.warnings.push(format!("cannot read the images of {verified}: {error}"));
            vec![]
        }
    };
    let (mut left, mut kept): (Vec<PinnedImage>, Vec<PinnedImage>) = (vec![], vec![]);
    let mut untag = true;
    if !released.left.is_empty() {
        for td in &released.left {
            match images_of(td.clone()).await {
                Ok(images) => left.extend(images),
                // Deleted: its images cannot be known; their tags stay (harmless, just kept).
                Err(error) => protection.warnings.push(format!("cannot read the images of {td}: {error}")),
            }
        }
        for td in released.known_good.iter().filter(|td| *td != verified) {
            match images_of(td.clone()).await {
                Ok(images) => kept.extend(images),
                Err(error) => {
                    // Which images are still known-good is unknown: untag nothing rather than
                    // expose one of them.
                    protection.warnings.push(format!("cannot read the images of {td}: {error}; no tag removed"));
                    untag = false;
                }
            }
        }
    }
    let plan = plan_protection(&target.service_arn, &verified_images, &left, &kept);
    for ((repository, digest), tag) in &plan.tag {
        match registry.tag_image(repository, digest, tag).await {
            Ok(Tagging::Tagged | Tagging::AlreadyTagged) => protection.tagged.push(format!("{repository}:{tag}")),
            Ok(Tagging::ImageGone) => {
                protection.warnings.push(format!("image {repository}@{digest} is gone: it cannot be protected"))
            }
            Err(error) => protection.warnings.push(format!("cannot tag {repository}@{digest} {tag}: {error}")),
        }
    }
    for (repository, tag) in plan.untag.iter().filter(|_| untag) {
        match registry.untag_image(repository, tag).await {
            Ok(()) => protection.untagged.push(format!("{repository}:{tag}")),
            Err(error) => protection.warnings.push(format!("cannot remove {repository}:{tag}: {error}")),
        }
    }
    if protection.warnings.is_empty() {
        tracing::info!(service = %target.service_arn, tagged = ?protection.tagged, untagged = ?protection.untagged, "known-good images protected");
    } else {
        tracing::warn!(
            service = %target.service_arn,
            warnings = ?protection.warnings,
            "known-good images not (all) protected from ECR lifecycle policies: a rollback to them may find them expired"
        );
    }
    protection
}
