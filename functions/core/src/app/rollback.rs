//! Rollback: return the service to its last known-good revision.

use super::deploy::{describe_one, short};
use crate::domain::ledger::rollback_candidates;
use crate::domain::model::{Mode, Rollout, RolloutOutcome, Target};
use crate::domain::snapshot::ServiceSnapshot;
use crate::domain::status::{RolloutState, TaskDefinitionStatus};
use crate::error::{DeckhandError, Result};
use crate::ports::{Ecs, Ledger};

/// What a rollback knows of the deployment it undoes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Undo<'a> {
    /// The deployment that failed, when the failure came after the Deploy step returned.
    pub failed: Option<&'a Rollout>,
    /// The revision COMPLETED when the lock was taken (the fallback when nothing was verified).
    pub previous: Option<&'a str>,
}

pub async fn rollback(
    ecs: &impl Ecs,
    ledger: &impl Ledger,
    target: &Target,
    undo: Undo<'_>,
    dry_run: bool,
    now: f64,
) -> Result<Rollout> {
    let failed = undo.failed;
    let service = describe_one(ecs, target).await?;
    let primary = service.primary().cloned();
    if target.mode == Mode::Deploy && failed.is_none() && !deckhand_changed_it(ecs, target, &service).await? {
        // The deployment failed before it changed the service; whatever runs now is someone
        // else's (or what ran before): nothing of deckhand's to undo.
        return Ok(Rollout {
            outcome: RolloutOutcome::UpToDate,
            task_definition: service.task_definition.clone(),
            previous_task_definition: None,
            deployment_id: primary.map(|d| d.id),
            started_at: now,
            deadline: None,
            reason: "the deployment failed before deckhand changed the service; nothing to roll back".into(),
        });
    }
    let leaving = failed.map_or(service.task_definition.as_str(), |f| f.task_definition.as_str()).to_string();
    let completed_at_start = failed.and_then(|f| f.previous_task_definition.as_deref()).or(undo.previous);
    let (record, _) = ledger.load(target.service_key()).await?;
    let (revision, why) =
        first_registered(ecs, rollback_candidates(&record, &leaving, completed_at_start)).await?.ok_or_else(|| {
            DeckhandError::NoKnownGoodRevision(format!("{} (leaving {})", target.service, short(&leaving)))
        })?;

    let mut rollout = Rollout {
        outcome: RolloutOutcome::Started,
        task_definition: revision.clone(),
        previous_task_definition: Some(leaving.clone()),
        deployment_id: None,
        started_at: now,
        deadline: Some(target.policy.deadline(now, service.health_check_grace_period_seconds)),
        reason: format!("rolling back {} from {} to {} ({why})", target.service, short(&leaving), short(&revision)),
    };
    if dry_run {
        rollout.outcome = RolloutOutcome::UpToDate;
        rollout.reason = format!(
            "dry run: would roll back {} from {} to {} ({why})",
            target.service,
            short(&leaving),
            short(&revision)
        );
        return Ok(rollout);
    }
    if let Some(primary) = primary.filter(|p| p.task_definition == revision && p.rollout_state != RolloutState::Failed)
    {
        // ECS's circuit breaker already went back there: watch its deployment instead of a new one.
        rollout.deployment_id = Some(primary.id.clone());
        rollout.reason = format!(
            "{} is already back on {} (deployment {}); watching it",
            target.service,
            short(&revision),
            primary.id
        );
        return Ok(rollout);
    }
    let updated = ecs.update_service(&target.cluster_arn, &target.service, &revision, false).await?;
    rollout.deployment_id = updated.primary().filter(|d| d.task_definition == revision).map(|d| d.id.clone());
    tracing::warn!(service = %target.service_arn, to = %revision, "rolled back");
    Ok(rollout)
}

/// Whether the service runs what this deployment would have put there (a Deploy that failed or
/// was retried after its UpdateService went through), as opposed to what ran before or someone
/// else's revision.
async fn deckhand_changed_it(ecs: &impl Ecs, target: &Target, service: &ServiceSnapshot) -> Result<bool> {
    if service.task_definition == target.task_definition || target.containers.is_empty() {
        return Ok(false);
    }
    let (running, _) = ecs.describe_task_definition(&service.task_definition).await?;
    Ok(target.containers.iter().all(|change| {
        running
            .container_definitions()
            .iter()
            .any(|c| c.name() == Some(change.name.as_str()) && c.image() == Some(change.image.as_str()))
    }))
}

/// The first candidate that can still be deployed: a deregistered (INACTIVE) or deleted revision
/// cannot be the target of UpdateService, so the next one is tried, and the reason says why.
async fn first_registered(ecs: &impl Ecs, candidates: Vec<(String, String)>) -> Result<Option<(String, String)>> {
    let mut passed_over = Vec::new();
    for (revision, why) in candidates {
        let unusable = match ecs.describe_task_definition(&revision).await {
            Ok((definition, _)) => {
                match definition.status().map_or(TaskDefinitionStatus::Active, |s| s.as_str().into()) {
                    TaskDefinitionStatus::Active => None,
                    status => Some(format!("it is {status}")),
                }
            }
            Err(DeckhandError::ResourceNotFound(_)) => Some("it no longer exists".to_string()),
            Err(other) => return Err(other),
        };
        match unusable {
            None => {
                let why = if passed_over.is_empty() { why } else { format!("{why}; {}", passed_over.join("; ")) };
                return Ok(Some((revision, why)));
            }
            Some(reason) => passed_over.push(format!("{} passed over: {reason}", short(&revision))),
        }
    }
    Ok(None)
}
