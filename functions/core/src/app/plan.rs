//! Plan: from a request to the list of services to deploy, changing nothing.

use super::release::{alarm_gate_before_start, needs_comparing, push_not_newer};
use super::settings::PlanSettings;
use crate::domain::gates::gates_from_tags;
use crate::domain::image::ImageRef;
use crate::domain::model::{ContainerChange, Mode, Plan, PlanAction, PushedTag, Target, Trigger};
use crate::domain::request::{parse_request, ManualDeploy, ManualRollback, Push, Request};
use crate::domain::snapshot::ServiceSnapshot;
use crate::domain::status::DeploymentController;
use crate::domain::status::LifecycleStage;
use crate::domain::taskdef::{describe_changes, retarget};
use crate::domain::track::{parse_track, policy_from_tags, Tracked, TRACK_TAG};
use crate::error::{DeckhandError, Result};
use crate::ports::{Alarms, Ecs, ImageSelector, Registry};
use serde_json::Value;

/// The execution the plan belongs to (manual requests are identified and ordered by it).
#[derive(Debug, Clone)]
pub struct Execution {
    pub arn: String,
    /// Epoch seconds.
    pub started_at: f64,
}

pub async fn plan(
    ecs: &impl Ecs,
    registry: &impl Registry,
    settings: &PlanSettings,
    input: &Value,
    execution: &Execution,
) -> Result<Plan> {
    let plan = match parse_request(input)? {
        Request::Ignored { reason } => nothing(settings, reason),
        Request::Push(push) => plan_push(ecs, registry, settings, &push).await?,
        Request::Deploy(deploy) => plan_manual_deploy(ecs, registry, settings, &deploy, execution).await?,
        Request::Rollback(rollback) => plan_manual_rollback(ecs, settings, &rollback, execution).await?,
        Request::Reconcile { .. } => return Err(sweep_elsewhere()),
    };
    with_diffs(ecs, plan).await
}

/// A sweep needs the state table, which only the sweep's own planning reads (`app::reconcile`).
fn sweep_elsewhere() -> DeckhandError {
    DeckhandError::invalid("reconcile", "a sweep is planned by app::reconcile, not by plan")
}

/// A dry run shows each deployment's task-definition diff.
pub(crate) async fn with_diffs(ecs: &impl Ecs, mut plan: Plan) -> Result<Plan> {
    if plan.dry_run {
        for target in plan.targets.iter_mut().filter(|t| t.mode == Mode::Deploy) {
            let (current, _) = ecs.describe_task_definition(&target.task_definition).await?;
            let (_, changes) = retarget(&current, &target.containers)?;
            target.diff = Some(describe_changes(current.family().unwrap_or(&target.service), &changes));
        }
    }
    Ok(plan)
}

fn nothing(settings: &PlanSettings, reason: String) -> Plan {
    Plan { reason, ..Plan::empty(settings.max_concurrency) }
}

async fn plan_push(ecs: &impl Ecs, registry: &impl Registry, settings: &PlanSettings, push: &Push) -> Result<Plan> {
    let Some(push) = keyed(settings, push) else {
        let reason = format!(
            "push to {}/{} comes from account {}, which is neither deckhand's ({}) nor listed in RegistryAccounts",
            push.account, push.region, push.account, settings.account
        );
        tracing::warn!(account = %push.account, region = %push.region, repository = %push.repository, "{reason}");
        return Ok(nothing(settings, reason));
    };
    let push = &push;
    let image = settings.registry.pin(&push.repository, &push.digest);
    let mut targets = Vec::new();
    let mut warnings = Vec::new();
    for service in watched_services(ecs, settings).await? {
        match push_target(&service, settings, push, &image) {
            Ok(Some((target, policy_warnings))) => {
                warnings.extend(policy_warnings);
                targets.push(target);
            }
            Ok(None) => {}
            Err(why) => warnings.push(why),
        }
    }
    let mut pushed_at = None;
    if !targets.is_empty() {
        let at = push_time(registry, push).await?;
        targets.iter_mut().for_each(|t| t.pushed_at = at);
        pushed_at = Some(at);
    }
    let skipped = targets.iter().filter(|t| t.skip_reason.is_some()).count();
    let reason = if targets.is_empty() {
        format!("nothing to deploy: no service tracks {}:{}", push.repository, push.tag)
    } else {
        let skipped = if skipped > 0 { format!(" ({skipped} skipped)") } else { String::new() };
        format!(
            "{}:{} pushed as {}: {} service(s) track it{skipped}",
            push.repository,
            push.tag,
            push.digest,
            targets.len()
        )
    };
    let action = if targets.is_empty() { PlanAction::Nothing } else { PlanAction::Deploy };
    Ok(Plan { action, reason, targets, pushed_at, ..Plan::empty(settings.max_concurrency) }.with_warnings(warnings))
}

/// The target of `service` for `push`, if it tracks the pushed repository with a rule the tag
/// matches, or with a prefix or range it does not (then the target is SKIPPED, with why); a
/// malformed track tag is the warning returned as the error.
fn push_target(
    service: &ServiceSnapshot,
    settings: &PlanSettings,
    push: &Push,
    image: &str,
) -> std::result::Result<Option<(Target, Vec<String>)>, String> {
    let Some(tag) = service.tags.get(TRACK_TAG) else { return Ok(None) };
    let tracked =
        tracked_items(settings, tag).map_err(|why| format!("service {} ignored: {TRACK_TAG} {why}", service.name))?;
    let mut containers = Vec::new();
    let mut refused = Vec::new();
    for item in tracked.iter().filter(|t| t.repository == push.repository) {
        match item.rule.matches(&push.tag) {
            Ok(()) => containers.push(ContainerChange { name: item.container.clone(), image: image.to_string() }),
            Err(why) if item.rule.is_pattern() => refused.push((item, why)),
            Err(_) => {}
        }
    }
    if !service.is_active() || (containers.is_empty() && refused.is_empty()) {
        return Ok(None);
    }
    let not_matching: Vec<String> = refused
        .iter()
        .map(|(item, why)| format!("container {} tracks {}:{}: {why}", item.container, item.repository, item.rule))
        .collect();
    let mut warnings = Vec::new();
    let skip_reason = if containers.is_empty() {
        // Nothing matches: report the push against what the service would have deployed.
        containers = refused
            .iter()
            .map(|(item, _)| ContainerChange { name: item.container.clone(), image: image.to_string() })
            .collect();
        Some(format!("push of {}:{} does not qualify: {}", push.repository, push.tag, not_matching.join("; ")))
    } else {
        warnings.extend(not_matching.iter().map(|why| format!("service {}: {why}", service.name)));
        None
    };
    let (mut target, policy_warnings) = target_for(service, settings, Mode::Deploy, containers);
    warnings.extend(policy_warnings);
    target.request_id = push.event_id.clone();
    target.skip_reason = skip_reason.or_else(|| unverifiable(service)).or(target.skip_reason);
    let exact = tracked
        .iter()
        .filter(|t| t.repository == push.repository && target.containers.iter().any(|c| c.name == t.container))
        .all(|t| !t.rule.is_pattern());
    target.pushed_tag = Some(PushedTag {
        repository: push.repository.clone(),
        tag: push.tag.clone(),
        digest: push.digest.clone(),
        exact,
    });
    Ok(Some((target, warnings)))
}

/// Every service of the watched clusters (all clusters when none are configured), described
/// by ten, each once: a cluster configured twice, or once by name and once by ARN, lists the
/// same services twice.
pub(crate) async fn watched_services(ecs: &impl Ecs, settings: &PlanSettings) -> Result<Vec<ServiceSnapshot>> {
    let mut clusters =
        if settings.clusters.is_empty() { ecs.list_clusters().await? } else { settings.clusters.clone() };
    clusters.sort();
    clusters.dedup();
    let mut seen = std::collections::BTreeSet::new();
    let mut services = Vec::new();
    for cluster in &clusters {
        let arns: Vec<String> =
            ecs.list_services(cluster).await?.into_iter().filter(|arn| seen.insert(arn.clone())).collect();
        for batch in arns.chunks(10) {
            services.extend(ecs.describe_services(cluster, batch).await?);
        }
    }
    Ok(services)
}

/// The push with its repository key (`NAME` in deckhand's own registry, the repository URI in
/// another), or None when its account's pushes do not deploy.
fn keyed(settings: &PlanSettings, push: &Push) -> Option<Push> {
    settings.registry.accepts_pushes_from(&push.account).then(|| Push {
        repository: settings.registry.push_key(&push.account, &push.region, &push.repository),
        ..push.clone()
    })
}

/// A `deckhand:track` tag's items with repository keys (deckhand's own registry written out is
/// its bare name), so that they compare with a push's key.
pub(crate) fn tracked_items(settings: &PlanSettings, tag: &str) -> std::result::Result<Vec<Tracked>, String> {
    parse_track(tag).map(|tracked| keyed_items(settings, tracked))
}

fn keyed_items(settings: &PlanSettings, tracked: Vec<Tracked>) -> Vec<Tracked> {
    tracked.into_iter().map(|item| Tracked { repository: settings.registry.key(&item.repository), ..item }).collect()
}

/// One service's share of a plan, made again by that service's own deployment (a child
/// execution): the fan-out carries service ARNs only, so that its payload stays small.
pub async fn plan_service(
    ecs: &impl Ecs,
    registry: &impl Registry,
    alarms: &impl Alarms,
    settings: &PlanSettings,
    input: &Value,
    part: &ServicePart,
) -> Result<Plan> {
    let mut plan = match parse_request(input)? {
        Request::Ignored { reason } => return Ok(nothing(settings, reason)),
        Request::Push(push) => {
            let Some(push) = keyed(settings, &push) else {
                return Ok(nothing(
                    settings,
                    format!("push from account {} is not deckhand's to deploy", push.account),
                ));
            };
            let image = settings.registry.pin(&push.repository, &push.digest);
            let found = describe_by_arn(ecs, settings, &part.service).await?;
            let planned = match found.first() {
                Some(service) => push_target(service, settings, &push, &image)
                    .map_err(|why| DeckhandError::invalid("service", why))?
                    .map(|planned| (service, planned)),
                None => None,
            };
            let Some((service, (mut target, warnings))) = planned else {
                return Ok(nothing(
                    settings,
                    format!("{} no longer tracks {}:{}", part.service, push.repository, push.tag),
                ));
            };
            target.pushed_at = part.pushed_at.unwrap_or(push.time);
            if target.skip_reason.is_none() && needs_comparing(service, &target) {
                let (definition, _) = ecs.describe_task_definition(&service.task_definition).await?;
                target.skip_reason = push_not_newer(registry, service, &target, &definition)
                    .await?
                    .map(|why| format!("push of {}:{} does not qualify: {why}", push.repository, push.tag));
            }
            let reason = format!("{}:{} pushed as {} to {}", push.repository, push.tag, push.digest, target.service);
            Plan { action: PlanAction::Deploy, reason, targets: vec![target], ..Plan::empty(1) }.with_warnings(warnings)
        }
        Request::Deploy(deploy) => plan_manual_deploy(ecs, registry, settings, &deploy, &part.execution).await?,
        Request::Rollback(rollback) => return plan_manual_rollback(ecs, settings, &rollback, &part.execution).await,
        Request::Reconcile { .. } => return Err(sweep_elsewhere()),
    };
    // The alarm gate is looked at once the service's own deployment is about to start (the
    // fan-out's plan would make one CloudWatch call per service).
    if let Some(target) = plan.targets.first_mut().filter(|t| t.skip_reason.is_none() && !plan.dry_run) {
        let gate = alarm_gate_before_start(alarms, target).await?;
        target.skip_reason = gate.hold;
        let mut warnings = std::mem::take(&mut plan.warnings);
        warnings.extend(gate.warnings);
        plan = plan.with_warnings(warnings);
    }
    Ok(plan)
}

/// What a child execution is given besides the request: its service and the parent's facts.
#[derive(Debug, Clone)]
pub struct ServicePart {
    pub service: String,
    /// The execution that planned the fan-out (manual requests are identified by it).
    pub execution: Execution,
    pub pushed_at: Option<f64>,
}

/// The service named by `arn`, described in its cluster. A long ARN
/// (`…:service/CLUSTER/NAME`) names its cluster; a service created before ECS's long ARN format
/// (`…:service/NAME`, still in use where accounts never opted in) is looked for in the watched
/// clusters, one DescribeServices each.
pub(crate) async fn describe_by_arn(
    ecs: &impl Ecs,
    settings: &PlanSettings,
    arn: &str,
) -> Result<Vec<ServiceSnapshot>> {
    let (prefix, path) = arn
        .split_once(":service/")
        .ok_or_else(|| DeckhandError::invalid("service", format!("{arn:?} is not a service ARN")))?;
    let wanted = vec![arn.to_string()];
    if let Some((cluster, _)) = path.split_once('/') {
        return ecs.describe_services(&format!("{prefix}:cluster/{cluster}"), &wanted).await;
    }
    let clusters = if settings.clusters.is_empty() { ecs.list_clusters().await? } else { settings.clusters.clone() };
    for cluster in clusters {
        let found = ecs.describe_services(&cluster, &wanted).await?;
        if found.iter().any(|s| s.arn == arn) {
            return Ok(found);
        }
    }
    Ok(vec![])
}

async fn plan_manual_deploy(
    ecs: &impl Ecs,
    registry: &impl Registry,
    settings: &PlanSettings,
    request: &ManualDeploy,
    execution: &Execution,
) -> Result<Plan> {
    let (service, tracked) = opted_in_service(ecs, settings, &request.cluster, &request.service).await?;
    let image = &request.image;
    if !settings.registry.permits(image.registry.as_deref()) {
        return Err(DeckhandError::invalid(
            "image",
            format!(
                "registry {} is neither this account's ECR registry ({}) nor in the allow-list",
                image.registry.as_deref().unwrap_or_default(),
                settings.registry.account_registry
            ),
        ));
    }
    let image_key = settings.registry.key(
        &image
            .registry
            .as_ref()
            .map_or_else(|| image.repository.clone(), |host| format!("{host}/{}", image.repository)),
    );
    let container = choose_container(&keyed_items(settings, tracked), request.container.as_deref(), &image_key)?;
    let pinned = pin(registry, settings, image).await?;
    let (mut target, warnings) =
        target_for(&service, settings, Mode::Deploy, vec![ContainerChange { name: container, image: pinned }]);
    target.pushed_at = execution.started_at;
    target.request_id = execution.arn.clone();
    target.trigger = Trigger::Manual;
    target.force_new_deployment = request.force_new_deployment;
    let reason = format!("manual deploy of {} to {}", target.image, service.name);
    Ok(Plan { action: PlanAction::Deploy, dry_run: request.dry_run, reason, targets: vec![target], ..Plan::empty(1) }
        .with_warnings(warnings))
}

async fn plan_manual_rollback(
    ecs: &impl Ecs,
    settings: &PlanSettings,
    request: &ManualRollback,
    execution: &Execution,
) -> Result<Plan> {
    let (service, _) = opted_in_service(ecs, settings, &request.cluster, &request.service).await?;
    let (mut target, warnings) = target_for(&service, settings, Mode::Rollback, vec![]);
    target.pushed_at = execution.started_at;
    target.request_id = execution.arn.clone();
    target.trigger = Trigger::Manual;
    let reason = format!("manual rollback of {} to its last known-good revision", service.name);
    Ok(Plan { action: PlanAction::Rollback, dry_run: request.dry_run, reason, targets: vec![target], ..Plan::empty(1) }
        .with_warnings(warnings))
}

/// When the push happened, to order pushes: ECR's `imagePushedAt` (the event's `time` has
/// one-second resolution, so two pushes of a tag in the same second would compare equal), or the
/// event's own time when that is later: ECR keeps an image's first `imagePushedAt` when an older
/// image is tagged again (PutImage of its manifest), and that re-tag is a new push.
async fn push_time(registry: &impl Registry, push: &Push) -> Result<f64> {
    let detail = registry.describe_image(&push.repository, ImageSelector::Digest(&push.digest)).await?;
    Ok(detail.and_then(|d| d.pushed_at).map_or(push.time, |first| first.max(push.time)))
}

/// Why deckhand cannot verify (or drive) this service's rollouts, if it cannot: such services are
/// reported and left alone rather than deployed into a timeout and a rollback.
pub fn unverifiable(service: &ServiceSnapshot) -> Option<String> {
    if service.deployment_controller != DeploymentController::Ecs
        && service.deployment_controller != DeploymentController::Absent
    {
        return Some(format!(
            "its deployment controller is {}: its deployments are driven outside ECS's UpdateService, which deckhand does not drive; \
             to deploy it with deckhand, move it to the ECS controller with the ECS-native BLUE_GREEN strategy (AWS's migration path from CodeDeploy blue/green)",
            service.deployment_controller
        ));
    }
    if service.deployment_strategy.is_native()
        && service
            .load_balancers
            .iter()
            .any(|lb| lb.target_group_arn.is_some() && lb.alternate_target_group_arn.is_none())
    {
        // ECS refuses this configuration itself; a service left so by an older API is not guessed at.
        return Some(format!(
            "its ECS-native {} deployment strategy has a load balancer without advancedConfiguration.alternateTargetGroupArn",
            service.deployment_strategy
        ));
    }
    None
}

/// A manually named service must exist, be in a watched cluster and be opted in.
async fn opted_in_service(
    ecs: &impl Ecs,
    settings: &PlanSettings,
    cluster: &str,
    service: &str,
) -> Result<(ServiceSnapshot, Vec<Tracked>)> {
    let cluster_name = cluster.rsplit('/').next().unwrap_or(cluster);
    if !settings.clusters.is_empty() && !settings.clusters.iter().any(|c| c == cluster || c == cluster_name) {
        return Err(DeckhandError::invalid(
            "cluster",
            format!("{cluster:?} is not one of the watched clusters ({})", settings.clusters.join(", ")),
        ));
    }
    let found = ecs.describe_services(cluster, &[service.to_string()]).await.map_err(|e| match e {
        DeckhandError::ResourceNotFound(_) => {
            DeckhandError::invalid("cluster", format!("cluster {cluster:?} not found"))
        }
        other => other,
    })?;
    check_opted_in(found, cluster, service)
}

/// Whether a manually named service (as DescribeServices `found` it) may be deployed: it is
/// active, opted in with a well-formed `deckhand:track` tag, and deckhand can verify its
/// rollouts. Returns it and what it tracks. The `deckhand` command checks the same way.
pub fn check_opted_in(
    found: Vec<ServiceSnapshot>,
    cluster: &str,
    service: &str,
) -> Result<(ServiceSnapshot, Vec<Tracked>)> {
    let Some(snapshot) = found.into_iter().find(ServiceSnapshot::is_active) else {
        return Err(DeckhandError::invalid("service", format!("no active service {service:?} in cluster {cluster:?}")));
    };
    let tag = snapshot.tags.get(TRACK_TAG).ok_or_else(|| {
        DeckhandError::invalid(
            "service",
            format!("{service:?} is not opted in: it has no {TRACK_TAG} tag, so deckhand never modifies it"),
        )
    })?;
    let tracked = parse_track(tag)
        .map_err(|why| DeckhandError::invalid("service", format!("{service:?} has a bad {TRACK_TAG} tag: {why}")))?;
    if let Some(why) = unverifiable(&snapshot) {
        return Err(DeckhandError::invalid("service", format!("deckhand cannot deploy {service:?}: {why}")));
    }
    gates_from_tags(&snapshot.tags)
        .map_err(|why| DeckhandError::invalid("service", format!("{service:?} has a malformed release gate: {why}")))?;
    Ok((snapshot, tracked))
}

/// The tracked container a manual deploy of an image of `repository` goes to.
pub fn choose_container(tracked: &[Tracked], requested: Option<&str>, repository: &str) -> Result<String> {
    if let Some(name) = requested {
        return tracked.iter().find(|t| t.container == name).map(|t| t.container.clone()).ok_or_else(|| {
            let names: Vec<&str> = tracked.iter().map(|t| t.container.as_str()).collect();
            DeckhandError::invalid(
                "container",
                format!("{name:?} is not a tracked container (tracked: {})", names.join(", ")),
            )
        });
    }
    let same_repository: Vec<&Tracked> = tracked.iter().filter(|t| t.repository == repository).collect();
    match same_repository.as_slice() {
        [only] => Ok(only.container.clone()),
        [] => Err(DeckhandError::invalid(
            "image",
            format!(
                "repository {repository:?} is not tracked by this service; name the \"container\" to deploy it anyway"
            ),
        )),
        _ => Err(DeckhandError::invalid(
            "container",
            format!("ambiguous: several containers track {repository:?}; name one"),
        )),
    }
}

/// Pins a manually given image to a digest, verifying it exists when it is in an ECR registry
/// whose pushes deploy (deckhand's own, any Region of its account, a listed registry account).
async fn pin(registry: &impl Registry, settings: &PlanSettings, image: &ImageRef) -> Result<String> {
    let host = image.registry.clone().unwrap_or_else(|| settings.registry.account_registry.clone());
    if !settings.registry.is_account_registry(image.registry.as_deref()) && !settings.registry.is_trusted_ecr(&host) {
        let digest = image.digest.as_deref().ok_or_else(|| {
            DeckhandError::invalid("image", format!("images from {host} must be given by digest (REPO@sha256:...)"))
        })?;
        return Ok(ImageRef::pinned(&host, &image.repository, digest));
    }
    let key = settings.registry.key(&format!("{host}/{}", image.repository));
    let selector = match (&image.digest, &image.tag) {
        (Some(digest), _) => ImageSelector::Digest(digest),
        (None, Some(tag)) => ImageSelector::Tag(tag),
        (None, None) => return Err(DeckhandError::invalid("image", "needs a tag or a digest")),
    };
    let detail = registry
        .describe_image(&key, selector)
        .await?
        .ok_or_else(|| DeckhandError::invalid("image", format!("{image} was not found in ECR repository {key:?}")))?;
    Ok(settings.registry.pin(&key, &detail.digest))
}

pub(crate) fn target_for(
    service: &ServiceSnapshot,
    settings: &PlanSettings,
    mode: Mode,
    containers: Vec<ContainerChange>,
) -> (Target, Vec<String>) {
    let (mut policy, warnings) = policy_from_tags(&settings.defaults, &service.tags);
    let warnings = warnings.into_iter().map(|w| format!("service {}: {w}", service.name)).collect();
    // A gate that cannot be read holds the service back (never "no gate"); a manual request
    // was refused for it already (`check_opted_in`).
    let skip_reason = match gates_from_tags(&service.tags) {
        Ok(gates) => {
            policy.gates = gates;
            None
        }
        Err(why) => Some(format!("its release gates are malformed: {why}")),
    };
    if let Some(hook) = service.deckhand_hook(settings.hook_function_arn.as_deref()) {
        policy.gated_by_hook = true;
        // The hook bakes inside ECS's deployment, where going back is one listener change.
        if hook.stages.iter().any(|stage| stage == LifecycleStage::PostProductionTrafficShift.as_str()) {
            policy.hook_bake_seconds = std::mem::take(&mut policy.bake_seconds);
        }
    }
    let image = containers.iter().map(|c| format!("{}={}", c.name, c.image)).collect::<Vec<_>>().join(" ");
    let cluster = service.cluster_arn.rsplit('/').next().unwrap_or(&service.cluster_arn).to_string();
    let target = Target {
        cluster,
        cluster_arn: service.cluster_arn.clone(),
        service: service.name.clone(),
        service_arn: service.arn.clone(),
        mode,
        image,
        containers,
        task_definition: service.task_definition.clone(),
        pushed_at: 0.0,
        request_id: String::new(),
        trigger: Trigger::Push,
        force_new_deployment: false,
        policy,
        diff: None,
        skip_reason,
        pushed_tag: None,
    };
    (target, warnings)
}

/// How the plan function was invoked.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// The fan-out's plan: every service the request concerns.
    Fan { request: Value, execution: Execution },
    /// One service's deployment planning its own target again.
    Service { request: Value, part: ServicePart },
}

/// The state machines wrap the request with its execution (`{"request": …, "execution": {…}}`,
/// plus `"service"` and `"pushedAt"` from a service's own execution); invoked directly (`cargo
/// lambda invoke`), the event is the request itself.
pub fn unwrap_invocation(event: Value, invocation_id: &str, now: f64) -> Invocation {
    let direct = |request: Value| Invocation::Fan {
        request,
        execution: Execution { arn: invocation_id.to_string(), started_at: now },
    };
    let Value::Object(mut map) = event else { return direct(event) };
    let wrapper_keys = ["request", "execution", "service", "pushedAt"];
    let is_wrapper = map.contains_key("request")
        && matches!(map.get("execution"), Some(Value::Object(_)))
        && map.keys().all(|k| wrapper_keys.contains(&k.as_str()));
    if !is_wrapper {
        return direct(Value::Object(map));
    }
    let execution = map.remove("execution").unwrap_or_default();
    let execution = Execution {
        arn: execution.get("arn").and_then(Value::as_str).unwrap_or(invocation_id).to_string(),
        started_at: execution
            .get("startTime")
            .and_then(Value::as_str)
            .and_then(crate::domain::request::parse_time)
            .unwrap_or(now),
    };
    let request = map.remove("request").unwrap_or(Value::Null);
    match map.remove("service") {
        Some(Value::String(service)) => {
            let pushed_at = map.get("pushedAt").and_then(Value::as_f64);
            Invocation::Service { request, part: ServicePart { service, execution, pushed_at } }
        }
        _ => Invocation::Fan { request, execution },
    }
}
