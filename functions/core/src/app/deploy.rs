//! Deploy: register the new revision and point the service at it.

use crate::domain::model::{Rollout, RolloutOutcome, Target};
use crate::domain::snapshot::ServiceSnapshot;
use crate::domain::taskdef::{registrable_tags, retarget};
use crate::error::{DeckhandError, Result};
use crate::ports::Ecs;

pub async fn deploy(ecs: &impl Ecs, target: &Target, now: f64) -> Result<Rollout> {
    let service = describe_one(ecs, target).await?;
    let current = service.task_definition.clone();
    let completed = service.completed_task_definition().map(str::to_string);
    let (definition, tags) = ecs.describe_task_definition(&current).await?;
    let (next, changes) = retarget(&definition, &target.containers)?;

    if changes.is_empty() && !target.force_new_deployment {
        if completed.as_deref() == Some(current.as_str()) {
            return Ok(Rollout {
                outcome: RolloutOutcome::UpToDate,
                task_definition: current.clone(),
                previous_task_definition: completed,
                deployment_id: service.primary().map(|d| d.id.clone()),
                started_at: now,
                reason: format!("{} already runs this image on {}", target.service, short(&current)),
            });
        }
        // The service is already rolling out exactly this revision: watch that deployment.
        return Ok(Rollout {
            outcome: RolloutOutcome::Started,
            task_definition: current.clone(),
            previous_task_definition: completed,
            deployment_id: service.primary().map(|d| d.id.clone()),
            started_at: now,
            reason: format!("{} is already rolling out {}; watching it", target.service, short(&current)),
        });
    }

    let revision = if changes.is_empty() {
        current.clone()
    } else {
        let arn = ecs.register_task_definition(&next, &registrable_tags(&tags)).await?;
        tracing::info!(task_definition = %arn, changed = changes.len(), "registered new revision");
        arn
    };
    let updated =
        ecs.update_service(&target.cluster_arn, &target.service, &revision, target.force_new_deployment).await?;
    let deployment = updated.primary().filter(|d| d.task_definition == revision).ok_or_else(|| {
        DeckhandError::AwsRequestFailed(format!(
            "UpdateService of {} returned no PRIMARY deployment of {revision}",
            target.service
        ))
    })?;
    tracing::info!(service = %target.service_arn, deployment = %deployment.id, "service updated");
    Ok(Rollout {
        outcome: RolloutOutcome::Started,
        task_definition: revision.clone(),
        previous_task_definition: completed,
        deployment_id: Some(deployment.id.clone()),
        started_at: now,
        reason: format!("deployment {} of {} started", deployment.id, short(&revision)),
    })
}

pub(crate) async fn describe_one(ecs: &impl Ecs, target: &Target) -> Result<ServiceSnapshot> {
    ecs.describe_services(&target.cluster_arn, std::slice::from_ref(&target.service_arn))
        .await?
        .into_iter()
        .find(|s| s.status == "ACTIVE")
        .ok_or_else(|| DeckhandError::ResourceNotFound(format!("service {} in {}", target.service, target.cluster)))
}

pub(crate) fn short(arn: &str) -> &str {
    crate::domain::health::short_td(arn)
}
