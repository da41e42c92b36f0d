//! Deploy: register the new revision and point the service at it.

use super::release::{needs_comparing, push_not_newer};
use crate::domain::model::{Rollout, RolloutOutcome, Target};
use crate::domain::snapshot::ServiceSnapshot;
use crate::domain::taskdef::{registrable_tags, retarget};
use crate::error::{DeckhandError, Result};
use crate::ports::{Ecs, ImageSelector, Registry};

/// `previous` is the revision that was COMPLETED when the lock was taken: a Deploy retried after
/// its UpdateService went through finds its own revision rolling out and must still know it.
pub async fn deploy(
    ecs: &impl Ecs,
    registry: &impl Registry,
    target: &Target,
    previous: Option<&str>,
    now: f64,
) -> Result<Rollout> {
    let service = describe_one(ecs, target).await?;
    let current = service.task_definition.clone();
    let completed = previous.map(str::to_string).or_else(|| service.completed_task_definition().map(str::to_string));
    if let Some(newer) = newer_push_of_the_tag(registry, target).await? {
        return Ok(superseded(current, completed, now, newer));
    }
    let deadline = target.policy.deadline(now, service.health_check_grace_period_seconds);
    let (definition, tags) = ecs.describe_task_definition(&current).await?;
    // Judged again under the lock: a newer version of a range (or a later push of a prefix) may
    // have landed since this one was planned, and going back to this one would be a downgrade.
    if needs_comparing(&service, target) {
        if let Some(why) = push_not_newer(registry, &service, target, &definition).await? {
            return Ok(superseded(current, completed, now, format!("superseded: {why}")));
        }
    }
    let (next, changes) = retarget(&definition, &target.containers)?;

    if changes.is_empty() && !target.force_new_deployment {
        if completed.as_deref() == Some(current.as_str()) {
            return Ok(Rollout {
                outcome: RolloutOutcome::UpToDate,
                task_definition: current.clone(),
                previous_task_definition: completed,
                deployment_id: service.primary().map(|d| d.id.clone()),
                started_at: now,
                deadline: None,
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
            deadline: Some(deadline),
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
    // What ran before, from the update's own answer: the reads behind `completed` (at the lock
    // and above) may show the service as it was seconds ago, before a deployment that completed
    // since, and the rollback would then skip past it to an older revision.
    let completed = updated.completed_before(&deployment.id).map(str::to_string).or(completed);
    Ok(Rollout {
        outcome: RolloutOutcome::Started,
        task_definition: revision.clone(),
        previous_task_definition: completed,
        deployment_id: Some(deployment.id.clone()),
        started_at: now,
        deadline: Some(deadline),
        reason: format!("deployment {} of {} started", deployment.id, short(&revision)),
    })
}

/// Nothing was changed: a newer push (or version) takes this one's place.
fn superseded(current: String, completed: Option<String>, now: f64, reason: String) -> Rollout {
    Rollout {
        outcome: RolloutOutcome::Superseded,
        task_definition: current,
        previous_task_definition: completed,
        deployment_id: None,
        started_at: now,
        deadline: None,
        reason,
    }
}

/// Whether the pushed tag now names another image: ECR moved it to a newer push, which wins even
/// when both pushes happened within the same second.
async fn newer_push_of_the_tag(registry: &impl Registry, target: &Target) -> Result<Option<String>> {
    let Some(pushed) = &target.pushed_tag else { return Ok(None) };
    let now_tagged = registry.describe_image(&pushed.repository, ImageSelector::Tag(&pushed.tag)).await?;
    Ok(now_tagged.filter(|image| image.digest != pushed.digest).map(|image| {
        format!(
            "superseded: {}:{} now names {} (a newer push) instead of {}",
            pushed.repository, pushed.tag, image.digest, pushed.digest
        )
    }))
}

pub(crate) async fn describe_one(ecs: &impl Ecs, target: &Target) -> Result<ServiceSnapshot> {
    ecs.describe_services(&target.cluster_arn, std::slice::from_ref(&target.service_arn))
        .await?
        .into_iter()
        .find(ServiceSnapshot::is_active)
        .ok_or_else(|| DeckhandError::ResourceNotFound(format!("service {} in {}", target.service, target.cluster)))
}

pub(crate) fn short(arn: &str) -> &str {
    crate::domain::health::short_td(arn)
}
