//! `deckhand status [CLUSTER [SERVICE]]`: every tracked service, what it tracks and runs, its
//! drift (what its rules name now that it does not run, and whether the sweep deploys it), its
//! last known-good revision, a held lock and its holder, and a running execution.

use crate::cloud::Cloud;
use crate::output::{self, short, Exit, Result};
use crate::Format;
use deckhand_core::app::reconcile::{service_drift, ServiceDrift, SweepCache};
use deckhand_core::app::settings::PlanSettings;
use deckhand_core::aws::ecr::EcrAdapter;
use deckhand_core::domain::ledger::{HolderStatus, ServiceRecord};
use deckhand_core::domain::snapshot::ServiceSnapshot;
use deckhand_core::domain::track::{parse_track, TRACK_TAG};
use deckhand_core::ports::{Ecs, Executions, Ledger};
use serde_json::{json, Value};
use std::collections::HashMap;

/// DescribeServices takes at most 10 services per call.
const DESCRIBE_BATCH: usize = 10;

/// The services of `cluster` (all, or the one named), described with their tags.
pub async fn services(cloud: &Cloud, cluster: &str, service: Option<&str>) -> Result<Vec<ServiceSnapshot>> {
    let names = match service {
        Some(name) => vec![name.to_string()],
        None => cloud.ecs_adapter.list_services(cluster).await?,
    };
    let mut found = Vec::new();
    for batch in names.chunks(DESCRIBE_BATCH) {
        found.extend(cloud.ecs_adapter.describe_services(cluster, batch).await?);
    }
    Ok(found)
}

/// `repo@sha256:0123456789ab` for `123….dkr.ecr….amazonaws.com/repo@sha256:…` (whole tags kept).
pub fn short_image(image: &str) -> String {
    let without_registry = image.split_once('/').filter(|(host, _)| host.contains('.')).map_or(image, |(_, rest)| rest);
    match without_registry.split_once("@sha256:") {
        Some((repository, digest)) => format!("{repository}@sha256:{}", digest.get(..12).unwrap_or(digest)),
        None => without_registry.to_string(),
    }
}

struct Row {
    snapshot: ServiceSnapshot,
    images: Vec<(String, String)>,
    record: ServiceRecord,
    running_execution: Option<String>,
    drift: Option<ServiceDrift>,
}

pub async fn run(cloud: &Cloud, format: Format, cluster: Option<String>, service: Option<String>) -> Result<Exit> {
    let clusters = match cluster {
        Some(cluster) => vec![cluster],
        None => cloud.ecs_adapter.list_clusters().await?,
    };
    let ledger = cloud.ledger().await?;
    let ecr = EcrAdapter::new(&cloud.config);
    let mut sweep_cache = SweepCache::default();
    let now = output::now();
    // Services of a fleet often share a revision: each is described once.
    let mut images_of: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut rows = Vec::new();
    for cluster in &clusters {
        for snapshot in services(cloud, cluster, service.as_deref()).await? {
            // A service named on the command line is shown even when it is not tracked.
            if service.is_none() && !snapshot.tags.contains_key(TRACK_TAG) {
                continue;
            }
            let images = match images_of.get(&snapshot.task_definition) {
                Some(images) => images.clone(),
                None => {
                    let (definition, _) = cloud.ecs_adapter.describe_task_definition(&snapshot.task_definition).await?;
                    let images: Vec<(String, String)> = definition
                        .container_definitions()
                        .iter()
                        .map(|c| (c.name().unwrap_or_default().to_string(), c.image().unwrap_or_default().to_string()))
                        .collect();
                    images_of.insert(snapshot.task_definition.clone(), images.clone());
                    images
                }
            };
            let (record, _) = ledger.load(&snapshot.arn).await?;
            let running_execution = match &record.lock {
                Some(hold) if cloud.executions.status(&hold.owner).await? == HolderStatus::Running => {
                    Some(hold.owner.clone())
                }
                _ => None,
            };
            // What a sweep would make of it (no sweep of its own: every earlier sweep's mark counts).
            let drift = match PlanSettings::for_drift_of(&snapshot.arn) {
                Some(settings) => {
                    service_drift(&cloud.ecs_adapter, &ecr, ledger, &settings, &mut sweep_cache, &snapshot, "", now)
                        .await?
                }
                None => None,
            };
            rows.push(Row { snapshot, images, record, running_execution, drift });
        }
    }
    let table = rows.iter().map(text_row).collect();
    let documents = rows.iter().map(document).collect();
    output::listing(
        format,
        &["CLUSTER", "SERVICE", "TRACKS", "RUNS", "IMAGES", "DRIFT", "KNOWN-GOOD", "LOCK", "EXECUTION"],
        table,
        documents,
    );
    Ok(Exit::Ok)
}

fn tracks(snapshot: &ServiceSnapshot) -> String {
    match snapshot.tags.get(TRACK_TAG) {
        None => "(not tracked)".into(),
        Some(value) => match parse_track(value) {
            Ok(_) => value.clone(),
            Err(why) => format!("(bad {TRACK_TAG}: {why})"),
        },
    }
}

fn runs(snapshot: &ServiceSnapshot) -> String {
    let rollout = snapshot.primary().map(|d| d.rollout_state.as_str().to_string()).unwrap_or_default();
    format!("{} {rollout}", short(&snapshot.task_definition)).trim().to_string()
}

fn lock(record: &ServiceRecord) -> String {
    record.lock.as_ref().map_or_else(
        || "free".to_string(),
        |hold| format!("held by {} until {}", short(&hold.owner), output::time(hold.expires_at)),
    )
}

fn text_row(row: &Row) -> Vec<String> {
    let images: Vec<String> = row.images.iter().map(|(name, image)| format!("{name}={}", short_image(image))).collect();
    vec![
        short(&row.snapshot.cluster_arn).to_string(),
        row.snapshot.name.clone(),
        tracks(&row.snapshot),
        runs(&row.snapshot),
        images.join(" "),
        drift_text(row.drift.as_ref()),
        row.record.known_good.first().map_or("-".into(), |good| short(&good.task_definition).to_string()),
        lock(&row.record),
        row.running_execution.as_deref().map_or("-".into(), |arn| short(arn).to_string()),
    ]
}

fn document(row: &Row) -> Value {
    let s = &row.snapshot;
    json!({
        "cluster": s.cluster_arn,
        "service": s.name,
        "serviceArn": s.arn,
        "tracks": s.tags.get(TRACK_TAG),
        "taskDefinition": s.task_definition,
        "rolloutState": s.primary().map(|d| d.rollout_state.as_str().to_string()),
        "images": row.images.iter().map(|(name, image)| (name.clone(), json!(image))).collect::<serde_json::Map<_, _>>(),
        "knownGood": row.record.known_good.first().map(|good| json!({
            "taskDefinition": good.task_definition, "verifiedAt": output::time(good.verified_at), "execution": good.execution,
        })),
        "lock": row.record.lock.as_ref().map(|hold| json!({
            "holder": hold.owner, "mode": hold.mode, "acquiredAt": output::time(hold.acquired_at),
            "expiresAt": output::time(hold.expires_at),
        })),
        "runningExecution": row.running_execution,
        "drift": row.drift.as_ref().map(|drift| json!({
            "missed": drift.missed().iter().map(|(item, named)| json!({
                "container": item.container, "tag": named.tag, "digest": named.digest,
            })).collect::<Vec<_>>(),
            "held": drift.held(),
            "hold": drift.hold,
        })),
    })
}

/// `in sync`, `sweep deploys web=sha256:0123…(main)`, or `held: …` per container.
fn drift_text(drift: Option<&ServiceDrift>) -> String {
    let Some(drift) = drift else { return "-".into() };
    let missed: Vec<String> = drift
        .missed()
        .iter()
        .map(|(item, named)| format!("{}={}({})", item.container, short_digest(&named.digest), named.tag))
        .collect();
    let mut parts = Vec::new();
    if !missed.is_empty() {
        parts.push(format!("sweep deploys {}", missed.join(" ")));
    }
    parts.extend(drift.held());
    match (&drift.hold, parts.is_empty()) {
        // Held before any image was read (deckhand cannot verify its rollouts): not "in sync".
        (Some(hold), true) => format!("held: {hold}"),
        (None, true) => "in sync".into(),
        _ => parts.join("; "),
    }
}

fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::short_image;

    #[test]
    fn images_are_shown_without_registry_and_with_a_short_digest() {
        let pinned = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/api@sha256:{}", "ab".repeat(32));
        assert_eq!(short_image(&pinned), "shop/api@sha256:abababababab");
        assert_eq!(short_image("nginx:1.27"), "nginx:1.27");
        assert_eq!(short_image("library/nginx:1"), "library/nginx:1");
    }
}
