//! Serialising deployments per service: acquire and release the service lock.

use crate::domain::ledger::{decide_acquire, other_holder, release as release_record, Acquire, KnownGood};
use crate::domain::model::Target;
use crate::error::{DeckhandError, Result};
use crate::ports::{Executions, Ledger};
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
}

/// Optimistic writes race only with other deckhand executions; a few rounds settle it.
const WRITE_ATTEMPTS: usize = 5;

pub async fn acquire(
    ledger: &impl Ledger,
    executions: &impl Executions,
    target: &Target,
    owner: &str,
    now: f64,
    ttl_seconds: f64,
) -> Result<LockResult> {
    for _ in 0..WRITE_ATTEMPTS {
        let (record, version) = ledger.load(target.service_key()).await?;
        let holder = match other_holder(&record, owner, now) {
            Some(hold) => Some(executions.status(&hold.owner).await?),
            None => None,
        };
        let (decision, next) = decide_acquire(&record, target, owner, holder, now, ttl_seconds);
        if next != record && !ledger.save(target.service_key(), &next, version).await? {
            continue;
        }
        return match decision {
            Acquire::Acquired => {
                tracing::info!(service = %target.service_arn, "lock acquired");
                Ok(LockResult { decision: LockDecision::Acquired, reason: "lock acquired".into() })
            }
            Acquire::Skip(reason) => {
                tracing::info!(service = %target.service_arn, %reason, "skipping");
                Ok(LockResult { decision: LockDecision::Skipped, reason })
            }
            Acquire::Busy { holder } => Err(DeckhandError::LockBusy { service: target.service_arn.clone(), holder }),
        };
    }
    Err(DeckhandError::AwsTransient(format!("state of {} kept changing under concurrent writers", target.service_arn)))
}

/// Releases `owner`'s lock; with `verified`, records that revision as known-good.
pub async fn release(
    ledger: &impl Ledger,
    target: &Target,
    owner: &str,
    verified: Option<&str>,
    now: f64,
) -> Result<()> {
    let verified = verified.map(|td| KnownGood {
        task_definition: td.to_string(),
        verified_at: now,
        execution: owner.to_string(),
    });
    for _ in 0..WRITE_ATTEMPTS {
        let (record, version) = ledger.load(target.service_key()).await?;
        let next = release_record(&record, owner, &target.request_id, verified.clone());
        if next == record || ledger.save(target.service_key(), &next, version).await? {
            tracing::info!(service = %target.service_arn, known_good = verified.is_some(), "lock released");
            return Ok(());
        }
    }
    Err(DeckhandError::AwsTransient(format!("state of {} kept changing under concurrent writers", target.service_arn)))
}
