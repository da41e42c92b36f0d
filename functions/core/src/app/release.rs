//! Release policies applied to one service: is the push newer than what it runs, and may its
//! alarm gate be held.

use crate::domain::image::ImageRef;
use crate::domain::model::{ContainerChange, Target};
use crate::domain::release::{Pushed, RunningImage};
use crate::domain::snapshot::ServiceSnapshot;
use crate::domain::track::{parse_track, Tracked, TRACK_TAG};
use crate::error::Result;
use crate::ports::{Alarms, ImageSelector, Registry};
use aws_sdk_ecs::types::TaskDefinition;

/// Why the push `target` deploys is not newer than what `service` runs (by each changed
/// container's track rule), if it is not. `definition` is the service's task definition.
pub async fn push_not_newer(
    registry: &impl Registry,
    service: &ServiceSnapshot,
    target: &Target,
    definition: &TaskDefinition,
) -> Result<Option<String>> {
    let Some(pushed_tag) = &target.pushed_tag else { return Ok(None) };
    let pushed = Pushed { tag: pushed_tag.tag.clone(), digest: pushed_tag.digest.clone(), pushed_at: target.pushed_at };
    for (change, item) in pattern_items(service, target) {
        let running = running_image(registry, definition, &change.name, &change.image, &pushed_tag.repository).await?;
        if let Err(why) = item.rule.is_newer(&pushed, &running) {
            return Ok(Some(format!("container {} tracks {}:{}: {why}", change.name, item.repository, item.rule)));
        }
    }
    Ok(None)
}

/// Whether any container whose image changes follows a prefix or a range: only then does the
/// push need comparing with what runs (an exact tag is ordered by ECR's tag alone), and only
/// then is the task definition worth describing.
pub fn needs_comparing(service: &ServiceSnapshot, target: &Target) -> bool {
    target.pushed_tag.is_some() && !pattern_items(service, target).is_empty()
}

/// The changed containers that track the pushed repository with a prefix or a range, with
/// their track item.
fn pattern_items<'a>(service: &ServiceSnapshot, target: &'a Target) -> Vec<(&'a ContainerChange, Tracked)> {
    let tracked = parse_track(service.tags.get(TRACK_TAG).map(String::as_str).unwrap_or_default()).unwrap_or_default();
    target
        .containers
        .iter()
        .filter_map(|change| {
            let item = tracked.iter().find(|t| t.container == change.name && t.rule.is_pattern())?;
            Some((change, item.clone()))
        })
        .collect()
}

/// What ECR knows of the image `container` runs in `definition`. Only an image of the pushed
/// repository in the pushed image's registry can be compared; anything else compares as
/// nothing (the first push to match deploys).
pub(crate) async fn running_image(
    registry: &impl Registry,
    definition: &TaskDefinition,
    container: &str,
    pushed_image: &str,
    repository: &str,
) -> Result<RunningImage> {
    let image = definition
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(container))
        .and_then(|c| c.image())
        .and_then(|image| ImageRef::parse("image", image).ok());
    // `repository` is the pushed repository's key (a URI for another registry); what the
    // container runs compares by registry host and repository name.
    let pushed = ImageRef::parse("image", pushed_image).ok();
    let same = |i: &ImageRef| pushed.as_ref().is_some_and(|p| i.repository == p.repository && i.registry == p.registry);
    let Some(image) = image.filter(same) else {
        return Ok(RunningImage::default());
    };
    let selector = match (&image.digest, &image.tag) {
        (Some(digest), _) => ImageSelector::Digest(digest),
        (None, Some(tag)) => ImageSelector::Tag(tag),
        (None, None) => return Ok(RunningImage::default()),
    };
    let detail = registry.describe_image(repository, selector).await?;
    let mut running = RunningImage {
        // Pinned by digest, as deckhand deploys: its version tags are the baseline. A service
        // still on a moving tag (`:latest`, before its first deckhand deployment) has none.
        of_the_repository: image.digest.is_some(),
        digest: image.digest.clone(),
        tags: image.tag.iter().cloned().collect(),
        pushed_at: None,
    };
    if let Some(detail) = detail {
        running.digest = Some(detail.digest);
        running.pushed_at = detail.pushed_at;
        running.tags.extend(detail.tags);
    }
    Ok(running)
}

/// The alarm gate before a rollout starts: an alarm the tag names that CloudWatch does not have
/// holds the service back (a gate that cannot be watched is not a gate); alarms already in ALARM
/// are reported, and not counted until they fire again
/// ([`crate::domain::gates::judge_alarms`]).
pub async fn alarm_gate_before_start(alarms: &impl Alarms, target: &Target) -> Result<AlarmGate> {
    let watched = &target.policy.gates.alarms;
    if watched.is_empty() {
        return Ok(AlarmGate::default());
    }
    let observed = alarms.describe_alarms(watched).await?;
    let missing: Vec<&str> =
        watched.iter().filter(|name| !observed.iter().any(|a| &a.name == *name)).map(String::as_str).collect();
    let hold = (!missing.is_empty())
        .then(|| format!("its deckhand:alarms names alarm(s) CloudWatch does not have: {}", missing.join(", ")));
    let warnings = observed
        .iter()
        .filter(|alarm| alarm.in_alarm && watched.contains(&alarm.name))
        .map(|alarm| {
            format!(
                "service {}: alarm {} is already in ALARM; it counts against the rollout only if it goes back to OK and fires again",
                target.service, alarm.name
            )
        })
        .collect();
    Ok(AlarmGate { hold, warnings })
}

#[derive(Debug, Default)]
pub struct AlarmGate {
    pub hold: Option<String>,
    pub warnings: Vec<String>,
}
