//! Rollback: return the service to its last known-good revision.

use super::deploy::{describe_one, short};
use crate::domain::health::is_ecs_rollback;
use crate::domain::ledger::rollback_candidates;
use crate::domain::model::{Mode, Rollout, RolloutOutcome, Target};
use crate::domain::protect::pinned_images;
use crate::domain::snapshot::{DeploymentSnapshot, ServiceSnapshot};
use crate::domain::status::{RolloutState, TaskDefinitionStatus};
use crate::error::{DeckhandError, Result};
use crate::ports::{Ecs, ImageSelector, Ledger, Registry};

/// Where a rollback checks that a candidate's images still exist: the account's ECR registry
/// (`REGISTRY` host, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`; empty: no check).
pub struct Images<'a, R> {
    pub registry: &'a R,
    pub account_registry: &'a str,
}

// Shared references only: copyable whatever `R` is (a derive would ask `R: Copy`).
impl<R> Clone for Images<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Images<'_, R> {}

impl<'a, R: Registry> Images<'a, R> {
    pub fn new(registry: &'a R, account_registry: &'a str) -> Self {
        Self { registry, account_registry }
    }
}

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
    images: Images<'_, impl Registry>,
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
        return Ok(unchanged(
            &service,
            RolloutOutcome::UpToDate,
            now,
            "the deployment failed before deckhand changed the service; nothing to roll back".into(),
        ));
    }
    if let (Some(failed), Some(primary)) = (failed, primary.as_ref()) {
        if let Some(theirs) = someone_elses(failed, primary) {
            // Also on paths without a verdict (a check that could not tell, the deadline): the
            // service moved on to someone else's deployment, which deckhand leaves alone.
            return Ok(unchanged(&service, RolloutOutcome::Superseded, now, theirs));
        }
        if failed.previous_task_definition.as_deref() == Some(failed.task_definition.as_str()) {
            // A forced new deployment of the revision that already ran: there is no change of
            // deckhand's to undo, and going back to an older image nobody asked for is worse.
            return Ok(unchanged(
                &service,
                RolloutOutcome::UpToDate,
                now,
                format!(
                    "the forced deployment of {} (the revision that already ran) failed; deckhand changed no revision, so it rolls nothing back",
                    short(&failed.task_definition)
                ),
            ));
        }
    }
    let leaving = failed.map_or(service.task_definition.as_str(), |f| f.task_definition.as_str()).to_string();
    let completed_at_start = failed.and_then(|f| f.previous_task_definition.as_deref()).or(undo.previous);
    let (record, _) = ledger.load(target.service_key()).await?;
    let candidates = completed_first(rollback_candidates(&record, &leaving, completed_at_start), completed_at_start);
    let mut remaining = candidates;
    let mut refused: Vec<String> = Vec::new();
    loop {
        let Some((revision, found_why, rest)) = first_registered(ecs, images, remaining).await? else {
            let refused = if refused.is_empty() { String::new() } else { format!(" ({})", refused.join("; ")) };
            if target.mode == Mode::Rollback {
                // A manual rollback with nowhere to go changed nothing: not a failed rollback.
                return Ok(unchanged(
                    &service,
                    RolloutOutcome::Nothing,
                    now,
                    format!(
                        "nothing to roll back to: {} has no known-good revision other than {}{refused}",
                        target.service,
                        short(&leaving)
                    ),
                ));
            }
            return Err(DeckhandError::NoKnownGoodRevision(format!(
                "{} (leaving {}){refused}",
                target.service,
                short(&leaving)
            )));
        };
        let why = if refused.is_empty() { found_why } else { format!("{found_why}; {}", refused.join("; ")) };
        // A PRIMARY only counts as ECS's own rollback with evidence; a stale read shows none.
        let went_back = primary.as_ref().filter(|p| ecs_went_back_already(&service, p, failed));
        match roll_to(ecs, target, &service, went_back, &leaving, revision.clone(), why, dry_run, now).await {
            Err(DeckhandError::AwsRequestFailed(message)) if refuses_inactive(&message) => {
                // Deregistered moments ago: ECS reads lag, so DescribeTaskDefinition still said
                // ACTIVE, but UpdateService refuses it. The next candidate is tried.
                refused.push(format!("{} passed over: UpdateService refused it as inactive", short(&revision)));
                remaining = rest;
            }
            other => return other,
        }
    }
}

/// ECS's refusal of an INACTIVE revision ("TaskDefinition is inactive").
fn refuses_inactive(message: &str) -> bool {
    message.to_ascii_lowercase().contains("is inactive")
}

/// Puts the service on `revision` (or watches ECS's own rollback that already did).
#[allow(clippy::too_many_arguments)]
async fn roll_to(
    ecs: &impl Ecs,
    target: &Target,
    service: &ServiceSnapshot,
    primary: Option<&DeploymentSnapshot>,
    leaving: &str,
    revision: String,
    why: String,
    dry_run: bool,
    now: f64,
) -> Result<Rollout> {
    let leaving = leaving.to_string();
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
    if let Some(arn) = native_rollback(service, &leaving, &revision) {
        // ECS-native strategies: ECS's own rollback puts production traffic back on the revision
        // still running next to the new one; a second UpdateService would start another
        // deployment on top of this one instead.
        if ecs.roll_back_service_deployment(arn).await? {
            rollout.reason = format!(
                "asked ECS to roll back its {} deployment of {} to {} ({why})",
                service.deployment_strategy,
                short(&leaving),
                short(&revision)
            );
            tracing::warn!(service = %target.service_arn, to = %revision, deployment = %arn, "asked ECS to roll back");
            return Ok(rollout);
        }
    }
    let updated = ecs.update_service(&target.cluster_arn, &target.service, &revision, false).await?;
    rollout.deployment_id = updated.primary().filter(|d| d.task_definition == revision).map(|d| d.id.clone());
    tracing::warn!(service = %target.service_arn, to = %revision, "rolled back");
    Ok(rollout)
}

/// The service deployment to ask ECS to roll back, if any: a native strategy's deployment of the
/// revision being left, still in progress (PRIMARY, not COMPLETED or FAILED), with the rollback's
/// revision still deployed next to it (ECS rolls back to that one only).
fn native_rollback<'a>(service: &'a ServiceSnapshot, leaving: &str, revision: &str) -> Option<&'a str> {
    let arn = service.current_service_deployment.as_deref()?;
    let primary = service.primary()?;
    let in_progress = primary.task_definition == leaving && primary.rollout_state == RolloutState::InProgress;
    let blue_still_there = service.deployments.iter().any(|d| d.id != primary.id && d.task_definition == revision);
    (service.deployment_strategy.is_native() && in_progress && blue_still_there).then_some(arn)
}

/// Whether a PRIMARY on the rollback's revision is ECS's own rollback of the failed deployment,
/// not a read from before deckhand's UpdateService (ECS reads lag its writes: the service as it
/// was, still on the revision deckhand is about to go back to). ECS marks its rollback deployment
/// (its reason) and keeps the failed one listed as it rolls back; a read that shows neither
/// proves nothing, and deckhand's own UpdateService, a write, is then the safe move.
fn ecs_went_back_already(service: &ServiceSnapshot, primary: &DeploymentSnapshot, failed: Option<&Rollout>) -> bool {
    let Some(failed) = failed else { return true };
    let failed_listed = failed
        .deployment_id
        .as_deref()
        .is_some_and(|id| id != primary.id && service.deployments.iter().any(|d| d.id == id));
    is_ecs_rollback(primary) || failed_listed
}

/// A rollback that changed nothing, with why.
fn unchanged(service: &ServiceSnapshot, outcome: RolloutOutcome, now: f64, reason: String) -> Rollout {
    Rollout {
        outcome,
        task_definition: service.task_definition.clone(),
        previous_task_definition: None,
        deployment_id: service.primary().map(|d| d.id.clone()),
        started_at: now,
        deadline: None,
        reason,
    }
}

/// Why the service's PRIMARY deployment is someone else's, if it is: neither deckhand's failed
/// deployment (by id or revision) nor ECS's own rollback of it to the revision that ran before.
/// ECS marks its rollback deployment (its reason), or rolls back by returning the deployment that
/// ran before to IN_PROGRESS (created before deckhand's); a deployment of the previous revision
/// created since, unmarked, is a person's re-apply, theirs to keep.
fn someone_elses(failed: &Rollout, primary: &DeploymentSnapshot) -> Option<String> {
    let ours = failed.deployment_id.as_deref() == Some(primary.id.as_str())
        || primary.task_definition == failed.task_definition;
    let ecs_went_back = failed.previous_task_definition.as_deref() == Some(primary.task_definition.as_str())
        && (is_ecs_rollback(primary) || primary.created_at.is_none_or(|created| created <= failed.started_at));
    (!ours && !ecs_went_back).then(|| {
        format!(
            "someone else updated the service: deployment {} of {} replaced deckhand's {} of {}; deckhand leaves it alone",
            primary.id,
            short(&primary.task_definition),
            failed.deployment_id.as_deref().unwrap_or("deployment"),
            short(&failed.task_definition)
        )
    })
}

/// What ran before deckhand's change goes first: its deployment was COMPLETED when this one
/// started, so it is the service's last stable state, whatever its revision number: someone's
/// configuration change made after deckhand's last deployment, or an older revision a person
/// went back to by hand (going past either would undo their change). ECS's own rollback picks
/// the same ("the last deployment that completed", deployment circuit breaker). The known-good
/// revisions follow, for when it cannot be deployed any more.
fn completed_first(mut candidates: Vec<(String, String)>, completed: Option<&str>) -> Vec<(String, String)> {
    let Some(completed) = completed else { return candidates };
    let Some(at) = candidates.iter().position(|(td, _)| td == completed) else { return candidates };
    if at > 0 {
        let (td, _) = candidates.remove(at);
        let why = "what ran before deckhand's change: its deployment was COMPLETED when this one started".to_string();
        candidates.insert(0, (td, why));
    }
    candidates
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
/// cannot be the target of UpdateService, and a revision whose image is gone from the account's
/// ECR registry (expired by a lifecycle policy, deleted by hand) cannot start a task, so the next
/// one is tried, and the reason says why. Also gives the candidates after it.
async fn first_registered(
    ecs: &impl Ecs,
    images: Images<'_, impl Registry>,
    candidates: Vec<(String, String)>,
) -> Result<Option<(String, String, Vec<(String, String)>)>> {
    let mut passed_over = Vec::new();
    let mut candidates = candidates.into_iter();
    while let Some((revision, why)) = candidates.next() {
        let unusable = match ecs.describe_task_definition(&revision).await {
            Ok((definition, _)) => {
                match definition.status().map_or(TaskDefinitionStatus::Active, |s| s.as_str().into()) {
                    TaskDefinitionStatus::Active => missing_image(images, &definition).await?,
                    status => Some(format!("it is {status}")),
                }
            }
            Err(DeckhandError::ResourceNotFound(_)) => Some("it no longer exists".to_string()),
            Err(other) => return Err(other),
        };
        match unusable {
            None => {
                let why = if passed_over.is_empty() { why } else { format!("{why}; {}", passed_over.join("; ")) };
                return Ok(Some((revision, why, candidates.collect())));
            }
            Some(reason) => passed_over.push(format!("{} passed over: {reason}", short(&revision))),
        }
    }
    Ok(None)
}

/// Why a revision cannot run for want of an image: the first of its images of the account's ECR
/// registry, pinned by digest, that DescribeImages no longer finds. A check that cannot be made
/// (other than throttling and faults, which are retried) does not pass the revision over.
async fn missing_image(
    images: Images<'_, impl Registry>,
    definition: &aws_sdk_ecs::types::TaskDefinition,
) -> Result<Option<String>> {
    let pinned =
        pinned_images(definition.container_definitions().iter().filter_map(|c| c.image()), images.account_registry);
    for (repository, digest) in pinned {
        match images.registry.describe_image(&repository, ImageSelector::Digest(&digest)).await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(Some(format!("image {repository}@{digest} expired/deleted"))),
            Err(error) if error.is_retryable() => return Err(error),
            Err(error) => tracing::warn!(%repository, %digest, %error, "cannot tell whether the image still exists"),
        }
    }
    Ok(None)
}
