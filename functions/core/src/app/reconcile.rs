//! The reconciliation sweep (`{"reconcile": true}`, started on a schedule): every tracked
//! service whose rule names a push deckhand never handled (the ECR event was lost, or arrived
//! while deckhand's stack was being updated) gets the deployment that push would have started.
//!
//! Cost: one pass makes the fan-out's own reads (ListServices, DescribeServices by ten), one
//! DescribeTaskDefinition per distinct revision, one DescribeImages per distinct exact rule or
//! per repository with a prefix or range rule, and reads the state table only for services that
//! run something else than their rule names.

use super::plan::{
    describe_by_arn, target_for, tracked_items, unverifiable, watched_services, with_diffs, Execution, ServicePart,
};
use super::release::{alarm_gate_before_start, running_image};
use super::settings::PlanSettings;
use crate::domain::approval::approval_key;
use crate::domain::ledger::ServiceRecord;
use crate::domain::model::{ContainerChange, Mode, Plan, PlanAction, PushedTag, Target, Trigger};
use crate::domain::reconcile::{judge_container, mark_swept, named_by_rule, service_hold, Drift, Named};
use crate::domain::release::{RunningImage, TagRule};
use crate::domain::request::{parse_request, Request};
use crate::domain::snapshot::{ImageDetail, ServiceSnapshot};
use crate::domain::track::{Tracked, TRACK_TAG};
use crate::error::Result;
use crate::ports::{Alarms, Approvals, Ecs, ImageSelector, Ledger, Registry, Version};
use aws_sdk_ecs::types::TaskDefinition;
use std::collections::HashMap;

/// Whether `request` asks for a sweep, and whether as a dry run. Anything else (a malformed
/// sweep request included) is planned, and refused, by `app::plan`.
pub fn sweep_requested(request: &serde_json::Value) -> Option<bool> {
    match parse_request(request) {
        Ok(Request::Reconcile { dry_run }) => Some(dry_run),
        _ => None,
    }
}

/// Where one tracked service stands against what its rules name now.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDrift {
    pub service: ServiceSnapshot,
    /// Each tracked container the sweep looked at, and what it made of it.
    pub containers: Vec<(Tracked, Drift)>,
    /// Why the service as a whole is left alone this time, if it is.
    pub hold: Option<String>,
    /// The state record read (only when something drifted) and its version.
    record: Option<(ServiceRecord, Option<Version>)>,
}

impl ServiceDrift {
    /// The missed pushes the sweep deploys: none while the service is held.
    pub fn missed(&self) -> Vec<(&Tracked, &Named)> {
        if self.hold.is_some() {
            return vec![];
        }
        self.containers
            .iter()
            .filter_map(|(item, drift)| match drift {
                Drift::Missed(named) => Some((item, named)),
                _ => None,
            })
            .collect()
    }

    /// One line per container that runs something else than its rule names, and why it stays.
    pub fn held(&self) -> Vec<String> {
        let hold = self.hold.as_deref();
        self.containers
            .iter()
            .filter_map(|(item, drift)| match (drift, hold) {
                (Drift::Held { named, why }, _) => Some(describe(item, named, why)),
                (Drift::Missed(named), Some(why)) => Some(describe(item, named, why)),
                _ => None,
            })
            .collect()
    }
}

fn describe(item: &Tracked, named: &Named, why: &str) -> String {
    format!("{}: {}:{} names {} ({}); held: {why}", item.container, item.repository, item.rule, named.digest, named.tag)
}

/// Reads shared by a pass: each revision, exact tag and repository listing is read once.
#[derive(Default)]
pub struct SweepCache {
    definitions: HashMap<String, TaskDefinition>,
    tags: HashMap<(String, String), Option<ImageDetail>>,
    listings: HashMap<String, Vec<ImageDetail>>,
}

impl SweepCache {
    async fn named(&mut self, registry: &impl Registry, item: &Tracked) -> Result<Option<Named>> {
        if let TagRule::Exact(tag) = &item.rule {
            let key = (item.repository.clone(), tag.clone());
            if !self.tags.contains_key(&key) {
                let found = registry.describe_image(&item.repository, ImageSelector::Tag(tag)).await?;
                self.tags.insert(key.clone(), found);
            }
            return Ok(self.tags[&key].as_ref().map(|image| Named {
                tag: tag.clone(),
                digest: image.digest.clone(),
                pushed_at: image.pushed_at.unwrap_or(0.0),
            }));
        }
        if !self.listings.contains_key(&item.repository) {
            let images = registry.list_images(&item.repository).await?;
            self.listings.insert(item.repository.clone(), images);
        }
        Ok(named_by_rule(&item.rule, &self.listings[&item.repository]))
    }

    async fn definition(&mut self, ecs: &impl Ecs, arn: &str) -> Result<&TaskDefinition> {
        if !self.definitions.contains_key(arn) {
            let (definition, _) = ecs.describe_task_definition(arn).await?;
            self.definitions.insert(arn.to_string(), definition);
        }
        Ok(&self.definitions[arn])
    }
}

/// Where `service` stands; None when it is not a service the sweep looks at (not tracked, a bad
/// track tag, or nothing it tracks lives in this account's registry and watched repositories).
/// `sweep` is the sweep's execution.
#[allow(clippy::too_many_arguments)]
pub async fn service_drift(
    ecs: &impl Ecs,
    registry: &impl Registry,
    state: &(impl Ledger + Approvals),
    settings: &PlanSettings,
    cache: &mut SweepCache,
    service: &ServiceSnapshot,
    sweep: &str,
    now: f64,
) -> Result<Option<ServiceDrift>> {
    let Some(Ok(tracked)) = service.tags.get(TRACK_TAG).map(|tag| tracked_items(settings, tag)) else {
        return Ok(None);
    };
    let swept: Vec<Tracked> =
        tracked.into_iter().filter(|item| settings.watches_repository(&item.repository)).collect();
    if swept.is_empty() || !service.is_active() {
        return Ok(None);
    }
    let mut drift = ServiceDrift { service: service.clone(), containers: vec![], hold: None, record: None };
    if let Some(why) = unverifiable(service) {
        drift.hold = Some(format!("deckhand cannot verify its rollouts: {why}"));
        return Ok(Some(drift));
    }
    let mut candidates: Vec<(Tracked, Named, String, RunningImage)> = Vec::new();
    for item in swept {
        let Some(named) = cache.named(registry, &item).await? else { continue };
        let image = settings.registry.pin(&item.repository, &named.digest);
        let definition = cache.definition(ecs, &service.task_definition).await?;
        let reference = definition
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(item.container.as_str()))
            .and_then(|c| c.image())
            .map(str::to_string);
        // Pinned to the named image already: in sync without asking ECR about it.
        if reference.as_deref() == Some(image.as_str()) {
            drift.containers.push((item, Drift::InSync));
            continue;
        }
        let definition = definition.clone();
        let running = running_image(registry, &definition, &item.container, &image, &item.repository).await?;
        // What needs no memory (the same digest, or an image newer by the rule) is settled
        // here: the state table is read only for what may be a missed push.
        let unseen = judge_container(
            &item.container,
            &item.rule,
            named.clone(),
            &image,
            &running,
            &ServiceRecord::default(),
            sweep,
        );
        if unseen == Drift::InSync {
            drift.containers.push((item, Drift::InSync));
        } else {
            candidates.push((item, named, image, running));
        }
    }
    if candidates.is_empty() {
        return Ok(Some(drift));
    }
    let (record, version) = state.load(service.arn.as_str()).await?;
    let (approvals, _) = state.find_approvals(&approval_key(&service.arn)).await?;
    let awaiting = approvals.iter().any(|pending| !pending.is_expired(now));
    drift.hold = service_hold(service, &record, awaiting, now);
    for (item, named, image, running) in candidates {
        let judged = judge_container(&item.container, &item.rule, named, &image, &running, &record, sweep);
        drift.containers.push((item, judged));
    }
    drift.record = Some((record, version));
    Ok(Some(drift))
}

/// The sweep's fan-out: every tracked service that missed a push, marked as started by this
/// sweep (unless `dry_run`), with the held ones as warnings.
pub async fn sweep(
    ecs: &impl Ecs,
    registry: &impl Registry,
    state: &(impl Ledger + Approvals),
    settings: &PlanSettings,
    execution: &Execution,
    dry_run: bool,
    now: f64,
) -> Result<Plan> {
    let mut cache = SweepCache::default();
    let (mut looked_at, mut warnings, mut targets) = (0, Vec::new(), Vec::new());
    for service in watched_services(ecs, settings).await? {
        let drift = service_drift(ecs, registry, state, settings, &mut cache, &service, &execution.arn, now).await?;
        let Some(drift) = drift else { continue };
        looked_at += 1;
        warnings.extend(drift.held().into_iter().map(|line| format!("service {}: {line}", service.name)));
        let Some(target) = swept_target(settings, &drift, &execution.arn) else { continue };
        if !dry_run && !mark(state, &drift, &target, &execution.arn, now).await? {
            warnings.push(format!(
                "service {}: its state changed while sweeping; the next sweep looks again",
                service.name
            ));
            continue;
        }
        targets.push(target);
    }
    let reason = format!(
        "reconcile: {looked_at} tracked service(s) looked at, {} missed a push{}",
        targets.len(),
        if warnings.is_empty() { String::new() } else { format!(", {} drift(s) held", warnings.len()) }
    );
    let action = if targets.is_empty() { PlanAction::Nothing } else { PlanAction::Deploy };
    let plan = Plan { action, dry_run, reason, targets, ..Plan::empty(settings.max_concurrency) };
    with_diffs(ecs, plan.with_warnings(warnings)).await
}

/// Records that this sweep starts the target's images; false when another writer changed the
/// service's state since it was read (the service is looked at again by the next sweep).
async fn mark(ledger: &impl Ledger, drift: &ServiceDrift, target: &Target, sweep: &str, now: f64) -> Result<bool> {
    let Some((record, version)) = &drift.record else { return Ok(false) };
    let marked = target
        .containers
        .iter()
        .fold(record.clone(), |record, change| mark_swept(&record, &change.name, &change.image, sweep, now));
    ledger.save(&drift.service.arn, &marked, *version).await
}

/// The deployment the missed pushes of `drift` start, as a push of them would have planned it.
fn swept_target(settings: &PlanSettings, drift: &ServiceDrift, sweep: &str) -> Option<Target> {
    let missed = drift.missed();
    if missed.is_empty() {
        return None;
    }
    let containers = missed
        .iter()
        .map(|(item, named)| ContainerChange {
            name: item.container.clone(),
            image: settings.registry.pin(&item.repository, &named.digest),
        })
        .collect();
    let (mut target, _) = target_for(&drift.service, settings, Mode::Deploy, containers);
    target.trigger = Trigger::Reconcile;
    target.request_id = format!("reconcile:{sweep}");
    target.pushed_at = missed.iter().map(|(_, named)| named.pushed_at).fold(0.0, f64::max);
    // One pushed tag is checked again under the lock (a newer push of it wins); several
    // containers at once are judged by their push times.
    if let [(item, named)] = missed.as_slice() {
        target.pushed_tag = Some(PushedTag {
            repository: item.repository.clone(),
            tag: named.tag.clone(),
            digest: named.digest.clone(),
            exact: !item.rule.is_pattern(),
        });
    }
    Some(target)
}

/// One service's share of a sweep, planned again by its own execution: the service is judged
/// afresh (a push may have deployed it since), and only this sweep's own mark is not a hold.
#[allow(clippy::too_many_arguments)]
pub async fn sweep_service(
    ecs: &impl Ecs,
    registry: &impl Registry,
    alarms: &impl Alarms,
    state: &(impl Ledger + Approvals),
    settings: &PlanSettings,
    part: &ServicePart,
    now: f64,
) -> Result<Plan> {
    let nothing = |reason: String| Plan { reason, ..Plan::empty(1) };
    let Some(service) = describe_by_arn(ecs, settings, &part.service).await?.into_iter().next() else {
        return Ok(nothing(format!("{} no longer exists", part.service)));
    };
    let mut cache = SweepCache::default();
    let drift = service_drift(ecs, registry, state, settings, &mut cache, &service, &part.execution.arn, now).await?;
    let Some(drift) = drift else { return Ok(nothing(format!("{} is no longer tracked", service.name))) };
    let Some(mut target) = swept_target(settings, &drift, &part.execution.arn) else {
        let why = drift.hold.clone().or_else(|| drift.held().into_iter().next());
        return Ok(nothing(format!(
            "{} no longer misses a push{}",
            service.name,
            why.map(|why| format!(" ({why})")).unwrap_or_default()
        )));
    };
    let gate = alarm_gate_before_start(alarms, &target).await?;
    target.skip_reason = gate.hold;
    let reason = format!("reconcile: {} missed the push of {}", service.name, target.image);
    Ok(Plan { action: PlanAction::Deploy, reason, targets: vec![target], ..Plan::empty(1) }
        .with_warnings(gate.warnings))
}
