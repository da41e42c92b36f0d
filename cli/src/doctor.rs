//! `deckhand doctor CLUSTER SERVICE`: why a service would or would not deploy well, one line
//! per check. Uses the same rules as the functions where they decide (opt-in tag, policy tags,
//! what deckhand can verify) and says what else an ECS rollout depends on.

use crate::cloud::{sdk_error, Cloud};
use crate::output::{self, short, Error, Exit, Result};
use crate::Format;
use aws_sdk_ecs::types::{Service, ServiceField, TaskDefinition};
use deckhand_core::app::plan::unverifiable;
use deckhand_core::aws::ecr::EcrAdapter;
use deckhand_core::aws::ecs::service_snapshot;
use deckhand_core::domain::gates::gates_from_tags;
use deckhand_core::domain::hook::hook_setup_problems;
use deckhand_core::domain::ledger::{HolderStatus, ServiceRecord};
use deckhand_core::domain::protect::{pinned_images, protection_tag, rule_threatens_known_good};
use deckhand_core::domain::registry::{policy_grants, split_key};
use deckhand_core::domain::snapshot::ServiceSnapshot;
use deckhand_core::domain::track::{parse_track, policy_tag_warnings, TRACK_TAG};
use deckhand_core::ports::{Ecs, Executions, ImageSelector, Ledger, Registry};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

struct Finding {
    level: Level,
    check: &'static str,
    detail: String,
}

fn finding(level: Level, check: &'static str, detail: impl Into<String>) -> Finding {
    Finding { level, check, detail: detail.into() }
}

pub async fn run(cloud: &Cloud, format: Format, cluster: &str, service: &str) -> Result<Exit> {
    let described = cloud
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeServices", e))?;
    // One DescribeServices: the snapshot the functions decide on, and the raw answer for what
    // only the doctor reads (circuit breaker, minimum and maximum percent).
    let Some(raw) = described.services().iter().find(|s| s.status() == Some("ACTIVE")) else {
        return Err(Error::InvalidInput(format!("service: no active service {service:?} in cluster {cluster:?}")));
    };
    let snapshot = service_snapshot(raw);
    let (definition, _) = cloud.ecs_adapter.describe_task_definition(&snapshot.task_definition).await?;
    let mut findings = service_checks(&snapshot, raw, &definition);
    findings.push(hook_check(cloud, &snapshot).await);
    findings.extend(state_checks(cloud, &snapshot).await);
    let failed = findings.iter().any(|f| f.level == Level::Fail);
    match format {
        Format::Text => {
            for f in &findings {
                println!("{:<4} {:<22} {}", f.level.as_str(), f.check, f.detail);
            }
        }
        Format::Json => output::json(&json!(findings
            .iter()
            .map(|f| json!({"level": f.level.as_str().to_lowercase(), "check": f.check, "detail": f.detail}))
            .collect::<Vec<_>>())),
    }
    Ok(if failed { Exit::Failed } else { Exit::Ok })
}

fn service_checks(snapshot: &ServiceSnapshot, raw: &Service, definition: &TaskDefinition) -> Vec<Finding> {
    let mut findings = Vec::new();
    let containers: Vec<&str> = definition.container_definitions().iter().filter_map(|c| c.name()).collect();
    findings.push(match snapshot.tags.get(TRACK_TAG).map(|v| (v, parse_track(v))) {
        None => finding(
            Level::Fail,
            "tracked",
            format!("no {TRACK_TAG} tag: deckhand never modifies this service (deckhand track …)"),
        ),
        Some((value, Err(why))) => finding(Level::Fail, "tracked", format!("{TRACK_TAG}={value:?} is refused: {why}")),
        Some((value, Ok(tracked))) => match tracked.iter().find(|t| !containers.contains(&t.container.as_str())) {
            Some(missing) => finding(
                Level::Fail,
                "tracked",
                format!(
                    "container {:?} is not in {} (containers: {})",
                    missing.container,
                    short(&snapshot.task_definition),
                    containers.join(", ")
                ),
            ),
            None => finding(Level::Ok, "tracked", value.clone()),
        },
    });
    let warnings = policy_tag_warnings(&snapshot.tags);
    findings.push(if warnings.is_empty() {
        finding(Level::Ok, "policy tags", "well-formed (or none: the stack's defaults apply)")
    } else {
        finding(Level::Warn, "policy tags", warnings.join("; "))
    });
    // A malformed gate holds every push back (SKIPPED), so it fails the check.
    findings.push(match gates_from_tags(&snapshot.tags) {
        Err(why) => finding(Level::Fail, "release gates", format!("pushes are skipped: {why}")),
        Ok(gates) => {
            let alarms = if gates.alarms.is_empty() { "no alarms".to_string() } else { gates.alarms.join(", ") };
            let approval = gates
                .approval_timeout_seconds
                .map_or("no approval".to_string(), |s| format!("approval required (waits {s}s)"));
            finding(Level::Ok, "release gates", format!("{alarms}; {approval}"))
        }
    });
    findings.push(match unverifiable(snapshot) {
        Some(why) => finding(Level::Fail, "deployable", format!("deckhand skips this service: {why}")),
        None if snapshot.deployment_strategy.is_native() => finding(
            Level::Ok,
            "deployable",
            format!(
                "ECS deployment controller, ECS-native {} deployment followed and judged by deckhand",
                snapshot.deployment_strategy
            ),
        ),
        None => finding(Level::Ok, "deployable", "ECS deployment controller, rolling update"),
    });
    let mode = definition.network_mode().map_or("(default: bridge)".to_string(), |m| m.as_str().to_string());
    findings.push(if snapshot.awsvpc {
        finding(Level::Ok, "network mode", format!("{mode}: targets are matched to tasks by IP address"))
    } else {
        finding(
            Level::Ok,
            "network mode",
            format!("{mode}: targets are matched to tasks by EC2 instance and host port (DescribeContainerInstances)"),
        )
    });
    let groups = snapshot.load_balancers.iter().filter(|lb| lb.target_group_arn.is_some()).count();
    findings.push(if groups == 0 {
        finding(
            Level::Warn,
            "load balancer",
            "none: health is judged by ECS task state and container health checks only",
        )
    } else {
        finding(Level::Ok, "load balancer", format!("{groups} target group(s): every new task must be healthy in each"))
    });
    let grace = snapshot.health_check_grace_period_seconds;
    findings.push(match (groups, grace) {
        (0, _) => finding(Level::Ok, "grace period", "not used without a load balancer"),
        (_, 0) => finding(
            Level::Warn,
            "grace period",
            "0 s: a slow-starting task can be killed by ECS for failing its first target health checks",
        ),
        (_, seconds) => finding(Level::Ok, "grace period", format!("{seconds} s, added to the rollout's timeout")),
    });
    let configuration = raw.deployment_configuration();
    findings.push(match configuration.and_then(|c| c.deployment_circuit_breaker()) {
        Some(breaker) if breaker.enable() && breaker.rollback() => finding(
            Level::Warn,
            "circuit breaker",
            "enabled with rollback: ECS rolls back by itself; deckhand sees the rollout FAILED and rolls back to its known-good too",
        ),
        Some(breaker) if breaker.enable() => {
            finding(Level::Ok, "circuit breaker", "enabled: ECS marks a failing rollout FAILED, which deckhand acts on at once")
        }
        _ => finding(Level::Ok, "circuit breaker", "off: deckhand's deckhand:max-failed-tasks decides when failed tasks fail a rollout"),
    });
    let (minimum, maximum) = (
        configuration.and_then(|c| c.minimum_healthy_percent()).unwrap_or(100),
        configuration.and_then(|c| c.maximum_percent()).unwrap_or(200),
    );
    findings.push(if maximum <= 100 && minimum >= 100 {
        finding(
            Level::Fail,
            "deployment config",
            format!("minimum {minimum}% and maximum {maximum}%: ECS can neither start nor stop a task"),
        )
    } else {
        finding(Level::Ok, "deployment config", format!("minimum healthy {minimum}%, maximum {maximum}%"))
    });
    findings.push(match definition.execution_role_arn() {
        Some(role) => finding(Level::Ok, "execution role", short(role).to_string()),
        None => finding(Level::Fail, "execution role", "none: Fargate needs one to pull images from ECR and send logs"),
    });
    findings.push(match definition.task_role_arn() {
        Some(role) => finding(Level::Ok, "task role", short(role).to_string()),
        None => finding(Level::Ok, "task role", "none: the application gets no AWS credentials"),
    });
    findings
}

/// What the state table says: the lock and the revision a rollback would go to.
async fn state_checks(cloud: &Cloud, snapshot: &ServiceSnapshot) -> Vec<Finding> {
    let record = match cloud.ledger().await {
        Ok(ledger) => ledger.load(&snapshot.arn).await.map(|(record, _)| record).map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let record = match record {
        Ok(record) => record,
        Err(why) => return vec![finding(Level::Warn, "state", format!("cannot read deckhand's state table: {why}"))],
    };
    let lock = match &record.lock {
        None => finding(Level::Ok, "lock", "free"),
        Some(hold) => match cloud.executions.status(&hold.owner).await {
            Ok(HolderStatus::Running) => {
                finding(Level::Ok, "lock", format!("held by running execution {}", short(&hold.owner)))
            }
            _ => finding(
                Level::Warn,
                "lock",
                format!("held by {}, which has ended: the next deployment takes the lock over", short(&hold.owner)),
            ),
        },
    };
    let known_good = match record.known_good.first() {
        Some(good) => finding(
            Level::Ok,
            "known-good",
            format!("{} (verified {})", short(&good.task_definition), output::time(good.verified_at)),
        ),
        None => finding(
            Level::Warn,
            "known-good",
            "none yet: a failed deployment rolls back to the revision that was COMPLETED when it started",
        ),
    };
    let lifecycle = lifecycle_check(cloud, snapshot, &record).await;
    let mut findings = vec![lock, known_good, lifecycle];
    findings.extend(registry_access_checks(cloud, snapshot).await);
    findings
}

/// The actions deckhand's functions call on a tracked repository of another account.
const REGISTRY_READS: [&str; 2] = ["ecr:DescribeImages", "ecr:BatchGetImage"];

/// For each tracked repository in another account's registry: whether its repository policy
/// lets deckhand's account read it (without it, deckhand's reads are denied, as on AWS).
async fn registry_access_checks(cloud: &Cloud, snapshot: &ServiceSnapshot) -> Vec<Finding> {
    const CHECK: &str = "registry access";
    let account = snapshot.arn.split(':').nth(4).unwrap_or_default().to_string();
    let tracked = snapshot.tags.get(TRACK_TAG).and_then(|v| parse_track(v).ok()).unwrap_or_default();
    let ecr = EcrAdapter::new(&cloud.config);
    let mut findings = Vec::new();
    for item in tracked {
        let (Some(registry), _) = split_key(&item.repository) else { continue };
        if registry.account == account {
            continue; // another Region of deckhand's own account: its IAM policies decide
        }
        let finding = match ecr.repository_policy(&item.repository).await {
            Ok(Some(policy)) => {
                let missing: Vec<&str> =
                    REGISTRY_READS.iter().copied().filter(|action| !policy_grants(&policy, &account, action)).collect();
                if missing.is_empty() {
                    finding(Level::Ok, CHECK, format!("{} lets account {account} read its images", item.repository))
                } else {
                    finding(
                        Level::Fail,
                        CHECK,
                        format!(
                            "the repository policy of {} does not grant account {account} {}: deckhand cannot read its pushes (README: images in a central registry account)",
                            item.repository,
                            missing.join(", ")
                        ),
                    )
                }
            }
            Ok(None) => finding(
                Level::Fail,
                CHECK,
                format!(
                    "{} has no repository policy: account {account} cannot read its images; grant it {}",
                    item.repository,
                    REGISTRY_READS.join(", ")
                ),
            ),
            Err(why) => finding(
                Level::Warn,
                CHECK,
                format!("cannot read the repository policy of {} with your credentials: {why}", item.repository),
            ),
        };
        findings.push(finding);
    }
    findings
}

/// ECR lifecycle rules of the tracked repositories (of the account's own registry) that could
/// delete a known-good image: an untagged-expiry rule when the known-good image does not carry
/// deckhand's protection tag (`deckhand-kg-…`, added when a revision is recorded known-good), a
/// tagged rule whose prefixes or patterns select that tag, an `any` rule.
async fn lifecycle_check(cloud: &Cloud, snapshot: &ServiceSnapshot, record: &ServiceRecord) -> Finding {
    const CHECK: &str = "image lifecycle";
    // arn:aws:ecs:REGION:ACCOUNT:service/…: the account's registry is where deckhand protects.
    let parts: Vec<&str> = snapshot.arn.split(':').collect();
    let (Some(region), Some(account)) = (parts.get(3), parts.get(4)) else {
        return finding(Level::Warn, CHECK, format!("cannot tell the account of {}", snapshot.arn));
    };
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    let registry = format!("{account}.dkr.ecr.{region}.{suffix}");
    let ecr = EcrAdapter::new(&cloud.config);
    let mut repositories: Vec<String> = snapshot
        .tags
        .get(TRACK_TAG)
        .and_then(|v| parse_track(v).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| match t.repository.split_once('/') {
            Some((host, rest)) if host.contains('.') => (host == registry).then(|| rest.to_string()),
            _ => Some(t.repository),
        })
        .collect();
    repositories.sort();
    repositories.dedup();
    // The known-good revision's images, and whether each carries the protection tag.
    let mut images = Vec::new();
    if let Some(good) = record.known_good.first() {
        if let Ok((definition, _)) = cloud.ecs_adapter.describe_task_definition(&good.task_definition).await {
            for (repository, digest) in
                pinned_images(definition.container_definitions().iter().filter_map(|c| c.image()), &registry)
            {
                let tag = protection_tag(&snapshot.arn, &digest);
                let tagged = match ecr.describe_image(&repository, ImageSelector::Digest(&digest)).await {
                    Ok(Some(detail)) => Some(detail.tags.contains(&tag)),
                    Ok(None) => None,
                    Err(_) => Some(false),
                };
                images.push((repository, digest, tag, tagged));
            }
        }
    }
    let mut threats = Vec::new();
    for (repository, digest, _, tagged) in &images {
        if tagged.is_none() {
            threats.push(format!("known-good image {repository}@{digest} is gone: a rollback passes over it"));
        }
    }
    for repository in &repositories {
        let text = match ecr.lifecycle_policy(repository).await {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(error) => {
                threats.push(format!("{repository}: cannot read its lifecycle policy: {error}"));
                continue;
            }
        };
        let policy: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let known = images.iter().find(|(r, ..)| r == repository);
        let sample =
            known.map_or_else(|| protection_tag(&snapshot.arn, "sha256:000000000000"), |(_, _, t, _)| t.clone());
        // Protection is on when the known-good image carries the tag (none yet: assume it will).
        let protected = known.is_none_or(|(.., tagged)| *tagged == Some(true));
        for rule in policy["rules"].as_array().into_iter().flatten() {
            let selection = &rule["selection"];
            let list = |key: &str| -> Vec<String> {
                selection[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
            };
            let status = selection["tagStatus"].as_str().unwrap_or_default();
            let expires = rule["action"]["type"].as_str().unwrap_or("expire") == "expire";
            if expires
                && rule_threatens_known_good(
                    status,
                    &list("tagPrefixList"),
                    &list("tagPatternList"),
                    &sample,
                    protected,
                )
            {
                let why = match status {
                    "untagged" => "expires untagged images and the known-good image lacks deckhand's tag",
                    "any" => "can expire any image, deckhand's protected ones included",
                    _ => "selects deckhand's protection tag",
                };
                threats.push(format!("{repository}: rule {} {why}", rule["rulePriority"]));
            }
        }
    }
    if threats.is_empty() {
        finding(
            Level::Ok,
            CHECK,
            format!("no lifecycle rule can delete a known-good image ({} repositories)", repositories.len()),
        )
    } else {
        finding(Level::Warn, CHECK, threats.join("; "))
    }
}

/// ECS-native strategies: is deckhand's lifecycle hook on the service, at its stages, with a role
/// ECS can invoke it with?
async fn hook_check(cloud: &Cloud, snapshot: &ServiceSnapshot) -> Finding {
    if !snapshot.deployment_strategy.is_native() {
        return finding(Level::Ok, "lifecycle hook", "not used by rolling updates (deckhand judges from outside ECS)");
    }
    let outputs = match cloud.outputs().await {
        Ok(outputs) => outputs,
        Err(error) => {
            return finding(Level::Warn, "lifecycle hook", format!("cannot read the stack's outputs: {error}"))
        }
    };
    let Some(function) = outputs.hook_function.as_deref() else {
        return finding(
            Level::Warn,
            "lifecycle hook",
            "this deckhand stack has no lifecycle hook (deploy a newer one)",
        );
    };
    match snapshot.deckhand_hook(Some(function)) {
        None => finding(
            Level::Warn,
            "lifecycle hook",
            "not set: deckhand judges ECS's deployment from outside and asks ECS to roll back (StopServiceDeployment); \
             `deckhand track … --hook` runs the gates and the bake inside ECS's traffic shift",
        ),
        Some(hook) => {
            let problems = hook_setup_problems(hook, outputs.hook_role.as_deref());
            if problems.is_empty() {
                finding(Level::Ok, "lifecycle hook", format!("deckhand's hook at {}", hook.stages.join(", ")))
            } else {
                finding(Level::Fail, "lifecycle hook", problems.join("; "))
            }
        }
    }
}
