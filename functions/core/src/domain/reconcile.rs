//! The reconciliation sweep's decisions (pure): what a service's track rule names in ECR now,
//! and whether the service missed that push, so that the sweep deploys it as the push would
//! have, or must leave it alone, and why.
//!
//! The sweep deploys only pushes deckhand never handled: an image the rule names that is newer
//! than anything deckhand deployed to the container, that no rollback rejected, and that no
//! earlier sweep already started. A service running something else for any other reason (a
//! person's rollback or hotfix, a rejected image) is drift to show, not to undo.

use super::events::Status;
use super::ledger::{ServiceRecord, SweepMark};
use super::model::Mode;
use super::protect;
use super::release::{parse_version, rfc3339, Pushed, RunningImage, TagRule};
use super::snapshot::{ImageDetail, ServiceSnapshot};
use super::status::RolloutState;

/// The push a rule names now: a tag of the repository and the image it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub tag: String,
    pub digest: String,
    /// ECR's `imagePushedAt`, epoch seconds (0 when ECR did not say).
    pub pushed_at: f64,
}

impl Named {
    pub fn as_pushed(&self) -> Pushed {
        Pushed { tag: self.tag.clone(), digest: self.digest.clone(), pushed_at: self.pushed_at }
    }
}

/// What `rule` names among `images` (the repository's tagged images): the image an exact tag
/// names; the newest push with a tag that starts with the prefix; the highest version in the
/// range (newest push among equal precedence). deckhand's own protection tags never count.
pub fn named_by_rule(rule: &TagRule, images: &[ImageDetail]) -> Option<Named> {
    let tagged = images.iter().flat_map(|image| {
        image.tags.iter().filter(|tag| !tag.starts_with(protect::TAG_PREFIX)).map(move |tag| (image, tag))
    });
    let named = |(image, tag): (&ImageDetail, &String)| Named {
        tag: tag.clone(),
        digest: image.digest.clone(),
        pushed_at: image.pushed_at.unwrap_or(0.0),
    };
    match rule {
        TagRule::Exact(exact) => tagged.filter(|(_, tag)| *tag == exact).map(named).next(),
        TagRule::Prefix(prefix) => tagged
            .filter(|(_, tag)| tag.starts_with(prefix.as_str()))
            .map(named)
            // Newest push first; the tag breaks ties so that every sweep names the same one.
            .max_by(|a, b| a.pushed_at.total_cmp(&b.pushed_at).then_with(|| a.tag.cmp(&b.tag))),
        TagRule::Semver(range) => tagged.filter(|(_, tag)| range.admits(tag).is_ok()).map(named).max_by(|a, b| {
            let (va, vb) = (parse_version(&a.tag), parse_version(&b.tag));
            let by_version = match (va, vb) {
                (Some(va), Some(vb)) => va.cmp_precedence(&vb),
                _ => std::cmp::Ordering::Equal,
            };
            by_version.then_with(|| a.pushed_at.total_cmp(&b.pushed_at)).then_with(|| a.tag.cmp(&b.tag))
        }),
    }
}

/// Why a service as a whole must not be swept now, if it must not: someone's deployment holds
/// its lock, its own rollout is running, or a push of it waits for approval.
pub fn service_hold(
    service: &ServiceSnapshot,
    record: &ServiceRecord,
    awaiting_approval: bool,
    now: f64,
) -> Option<String> {
    // A lease that has not run out counts as held: the sweep has no business asking Step
    // Functions whether the holder lives (the lock function does that when it takes over).
    if let Some(hold) = record.lock.as_ref().filter(|hold| hold.expires_at > now) {
        return Some(format!("a deployment is in progress ({} holds its lock)", hold.owner));
    }
    let rolling =
        service.deployments.len() > 1 || service.primary().is_some_and(|d| d.rollout_state == RolloutState::InProgress);
    if rolling {
        return Some("its own rollout is in progress".into());
    }
    awaiting_approval.then(|| "a push of it is awaiting approval".into())
}

/// What the sweep makes of one tracked container.
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    /// The container runs what its rule names (or something newer by the rule).
    InSync,
    /// The rule names a push deckhand never handled: the sweep deploys it.
    Missed(Named),
    /// The container runs something else, which the sweep leaves alone: why.
    Held { named: Named, why: String },
}

/// Judges one container. `image` is the pinned reference of `named`; `running` what the
/// container runs now; `sweep` the sweep's execution (its own mark is not a reason to hold).
pub fn judge_container(
    container: &str,
    rule: &TagRule,
    named: Named,
    image: &str,
    running: &RunningImage,
    record: &ServiceRecord,
    sweep: &str,
) -> Drift {
    if running.digest.as_deref() == Some(named.digest.as_str()) {
        return Drift::InSync;
    }
    // Never a downgrade, never an older push: what the push itself would have been refused.
    if rule.is_newer(&named.as_pushed(), running).is_err() {
        return Drift::InSync;
    }
    let held = |why: String| Drift::Held { named: named.clone(), why };
    if let Some(failed) = rejected(record, container, image) {
        return held(failed);
    }
    if let Some(newest) = record.newest.get(container) {
        if newest.image == image {
            return held(format!(
                "deckhand handled this push already (latest for {container}); a new push deploys it again"
            ));
        }
        if newest.pushed_at >= named.pushed_at {
            return held(format!(
                "deckhand deployed {} at {}, after {}:{} was pushed ({}): not a missed push",
                newest.image,
                rfc3339(newest.pushed_at),
                named.tag,
                named.digest,
                rfc3339(named.pushed_at)
            ));
        }
    }
    if let Some(mark) = record.reconciled.get(container).filter(|m| m.image == image && m.execution != sweep) {
        return held(format!(
            "an earlier sweep ({}) already started it at {}; a new push deploys it again",
            mark.execution,
            rfc3339(mark.at)
        ));
    }
    Drift::Missed(named)
}

/// The failure of the newest deployment of `image` to `container`, if it failed: a digest that
/// was rolled back is never retried by the sweep.
fn rejected(record: &ServiceRecord, container: &str, image: &str) -> Option<String> {
    let last = record
        .deployments
        .iter()
        .filter(|d| d.mode == Mode::Deploy)
        .find(|d| d.containers.iter().any(|c| c.name == container && c.image == image))?;
    matches!(last.status, Status::RolledBack | Status::RollbackFailed | Status::Failed).then(|| {
        format!(
            "its deployment by {} ended {} at {}; the sweep never retries it (a new push does)",
            last.execution,
            last.status.as_str(),
            rfc3339(last.finished_at)
        )
    })
}

/// Marks that the sweep `execution` starts `image` on `container` (so that later sweeps do not
/// start it again, whatever its end).
pub fn mark_swept(record: &ServiceRecord, container: &str, image: &str, execution: &str, now: f64) -> ServiceRecord {
    let mut next = record.clone();
    next.reconciled.insert(
        container.to_string(),
        SweepMark { image: image.to_string(), execution: execution.to_string(), at: now },
    );
    next
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
