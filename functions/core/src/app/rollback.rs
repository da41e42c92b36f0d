//! Rollback: return the service to its last known-good revision.

use super::deploy::{describe_one, short};
use crate::domain::ledger::rollback_target;
use crate::domain::model::{Mode, Rollout, RolloutOutcome, Target};
use crate::error::{DeckhandError, Result};
use crate::ports::{Ecs, Ledger};

/// `failed` is the deployment that failed, when the failure came after UpdateService.
pub async fn rollback(
    ecs: &impl Ecs,
    ledger: &impl Ledger,
    target: &Target,
    failed: Option<&Rollout>,
    dry_run: bool,
    now: f64,
) -> Result<Rollout> {
    let service = describe_one(ecs, target).await?;
    let primary = service.primary().cloned();
    if target.mode == Mode::Deploy && failed.is_none() && service.task_definition == target.task_definition {
        // The deployment failed before it changed the service: nothing to undo.
        return Ok(Rollout {
            outcome: RolloutOutcome::UpToDate,
            task_definition: service.task_definition.clone(),
            previous_task_definition: None,
            deployment_id: primary.map(|d| d.id),
            started_at: now,
            reason: "the deployment failed before the service was changed; nothing to roll back".into(),
        });
    }
    let leaving = failed.map_or(service.task_definition.as_str(), |f| f.task_definition.as_str()).to_string();
    let completed_at_start = failed.and_then(|f| f.previous_task_definition.as_deref());
    let (record, _) = ledger.load(target.service_key()).await?;
    let (revision, why) = rollback_target(&record, &leaving, completed_at_start).ok_or_else(|| {
        DeckhandError::NoKnownGoodRevision(format!("{} (leaving {})", target.service, short(&leaving)))
    })?;

    let mut rollout = Rollout {
        outcome: RolloutOutcome::Started,
        task_definition: revision.clone(),
        previous_task_definition: Some(leaving.clone()),
        deployment_id: None,
        started_at: now,
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
    if let Some(primary) =
        primary.filter(|p| p.task_definition == revision && p.rollout_state.as_deref() != Some("FAILED"))
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
