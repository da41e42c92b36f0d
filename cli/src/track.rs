//! `deckhand track` and `deckhand untrack`: set or remove a service's opt-in tag, validated as
//! the plan function validates it (a tag it would refuse is never written). `track` owns every
//! `deckhand:*` tag: what it does not set this time is removed (a gate dropped from the command
//! line must not stay in force); `untrack` removes them all.

use crate::cloud::{sdk_error, Cloud};
use crate::hook::set_hook;
use crate::output::{self, Error, Exit, Result};
use crate::status::services;
use crate::Format;
use aws_sdk_ecs::types::Tag;
use deckhand_core::domain::gates::{gates_from_tags, ALARMS_TAG, APPROVAL_TAG, APPROVAL_TIMEOUT_TAG};
use deckhand_core::domain::snapshot::ServiceSnapshot;
use deckhand_core::domain::track::{
    parse_track, policy_tag_warnings, BAKE_TAG, MAX_FAILED_TASKS_TAG, TIMEOUT_TAG, TRACK_TAG,
};
use deckhand_core::ports::Ecs;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Every deckhand tag key starts so (deckhand itself writes no tags: they are all the user's).
const PREFIX: &str = "deckhand:";

/// The keys `track` sets, removed when not set this time even if a lagging read missed them.
const KNOWN_KEYS: [&str; 7] =
    [TRACK_TAG, TIMEOUT_TAG, BAKE_TAG, MAX_FAILED_TASKS_TAG, ALARMS_TAG, APPROVAL_TAG, APPROVAL_TIMEOUT_TAG];

/// The `deckhand:*` keys to remove: those the service has, or `track` may have set, and `keep`
/// does not set.
fn stale_keys<'a>(current: impl IntoIterator<Item = &'a str>, keep: &BTreeMap<String, String>) -> Vec<String> {
    let candidates: BTreeSet<&str> =
        current.into_iter().filter(|key| key.starts_with(PREFIX)).chain(KNOWN_KEYS).collect();
    candidates.into_iter().filter(|key| !keep.contains_key(*key)).map(str::to_string).collect()
}

/// The service's tag keys as ListTagsForResource gives them (DescribeServices may lag).
async fn tag_keys(cloud: &Cloud, arn: &str) -> Result<Vec<String>> {
    let listed = cloud
        .ecs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| sdk_error("ListTagsForResource", e))?;
    Ok(listed.tags().iter().filter_map(|t| t.key().map(str::to_string)).collect())
}

/// UntagResource of `keys` (nothing to do when there are none).
async fn untag(cloud: &Cloud, arn: &str, keys: &[String]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    cloud
        .ecs
        .untag_resource()
        .resource_arn(arn)
        .set_tag_keys(Some(keys.to_vec()))
        .send()
        .await
        .map_err(|e| sdk_error("UntagResource", e))?;
    Ok(())
}

pub struct PolicyTags {
    pub timeout: Option<u64>,
    pub bake: Option<u64>,
    pub max_failed_tasks: Option<u64>,
    /// deckhand:alarms, alarm names.
    pub alarms: Vec<String>,
    /// deckhand:approval=required, with deckhand:approval-timeout when given.
    pub approval: bool,
    pub approval_timeout: Option<u64>,
    /// deckhand's ECS lifecycle hook on the service (ECS-native strategies).
    pub hook: bool,
}

async fn active_service(cloud: &Cloud, cluster: &str, service: &str) -> Result<ServiceSnapshot> {
    services(cloud, cluster, Some(service))
        .await?
        .into_iter()
        .find(ServiceSnapshot::is_active)
        .ok_or_else(|| Error::InvalidInput(format!("service: no active service {service:?} in cluster {cluster:?}")))
}

pub async fn track(
    cloud: &Cloud,
    format: Format,
    cluster: &str,
    service: &str,
    items: &[String],
    policy: &PolicyTags,
) -> Result<Exit> {
    let value = items.join(" ");
    let tracked = parse_track(&value).map_err(|why| Error::InvalidInput(format!("{TRACK_TAG}: {why}")))?;
    let mut tags = BTreeMap::from([(TRACK_TAG.to_string(), value.clone())]);
    for (key, seconds) in
        [(TIMEOUT_TAG, policy.timeout), (BAKE_TAG, policy.bake), (MAX_FAILED_TASKS_TAG, policy.max_failed_tasks)]
    {
        if let Some(seconds) = seconds {
            tags.insert(key.to_string(), seconds.to_string());
        }
    }
    if !policy.alarms.is_empty() {
        tags.insert(ALARMS_TAG.to_string(), policy.alarms.join(" "));
    }
    if policy.approval {
        tags.insert(APPROVAL_TAG.to_string(), "required".to_string());
    }
    if let Some(seconds) = policy.approval_timeout {
        tags.insert(APPROVAL_TIMEOUT_TAG.to_string(), seconds.to_string());
    }
    if let Some(problem) = policy_tag_warnings(&tags).into_iter().next() {
        return Err(Error::InvalidInput(problem));
    }
    gates_from_tags(&tags).map_err(Error::InvalidInput)?;
    let snapshot = active_service(cloud, cluster, service).await?;
    // A tracked container the task definition lacks would fail every deployment of the image.
    let (definition, _) = cloud.ecs_adapter.describe_task_definition(&snapshot.task_definition).await?;
    let names: Vec<&str> = definition.container_definitions().iter().filter_map(|c| c.name()).collect();
    if let Some(missing) = tracked.iter().find(|t| !names.contains(&t.container.as_str())) {
        return Err(Error::InvalidInput(format!(
            "{TRACK_TAG}: container {:?} is not in task definition {} (containers: {})",
            missing.container,
            output::short(&snapshot.task_definition),
            names.join(", ")
        )));
    }
    // Before any tag changes: a --hook the service cannot take refuses the whole command.
    let hook = set_hook(cloud, &snapshot, policy.hook).await?;
    let had = tag_keys(cloud, &snapshot.arn).await?;
    let ecs_tags: Vec<Tag> = tags.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect();
    // Set first, then remove: in between the old gates still hold (stricter), never none.
    cloud
        .ecs
        .tag_resource()
        .resource_arn(&snapshot.arn)
        .set_tags(Some(ecs_tags))
        .send()
        .await
        .map_err(|e| sdk_error("TagResource", e))?;
    let stale = stale_keys(had.iter().map(String::as_str), &tags);
    untag(cloud, &snapshot.arn, &stale).await?;
    // Only what was there is reported removed (the known keys are removed blindly, in case
    // the read lagged).
    let removed: Vec<&String> = stale.iter().filter(|key| had.contains(key)).collect();
    match format {
        Format::Text => {
            for (key, value) in &tags {
                println!("{}: {key}={value}", snapshot.name);
            }
            for key in &removed {
                println!("{}: {key} removed", snapshot.name);
            }
            if let Some(line) = hook.describe() {
                println!("{}: {line}", snapshot.name);
            }
        }
        Format::Json => output::json(
            &json!({"serviceArn": snapshot.arn, "tags": tags, "removed": removed, "hook": format!("{hook:?}").to_lowercase()}),
        ),
    }
    Ok(Exit::Ok)
}

pub async fn untrack(cloud: &Cloud, format: Format, cluster: &str, service: &str) -> Result<Exit> {
    let snapshot = active_service(cloud, cluster, service).await?;
    let hook = set_hook(cloud, &snapshot, false).await?;
    let had = tag_keys(cloud, &snapshot.arn).await?;
    let keys = stale_keys(had.iter().map(String::as_str), &BTreeMap::new());
    untag(cloud, &snapshot.arn, &keys).await?;
    let removed: Vec<&String> = keys.iter().filter(|key| had.contains(key)).collect();
    match format {
        Format::Text => {
            let names: Vec<&str> = removed.iter().map(|k| k.as_str()).collect();
            println!(
                "{}: {} removed; deckhand will not modify it again",
                snapshot.name,
                if names.is_empty() { TRACK_TAG.to_string() } else { names.join(", ") }
            );
            if let Some(line) = hook.describe() {
                println!("{}: {line}", snapshot.name);
            }
        }
        Format::Json => output::json(&json!({"serviceArn": snapshot.arn, "removed": removed})),
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_removes_the_deckhand_keys_it_does_not_set_this_time_and_nothing_else() {
        let keep = BTreeMap::from([(TRACK_TAG.to_string(), "web=flask:main".to_string())]);
        let current = ["deckhand:track", "deckhand:alarms", "deckhand:approval", "deckhand:bakee", "team", "Name"];
        let stale = stale_keys(current, &keep);
        for key in [ALARMS_TAG, APPROVAL_TAG, APPROVAL_TIMEOUT_TAG, TIMEOUT_TAG, BAKE_TAG, MAX_FAILED_TASKS_TAG] {
            assert!(stale.contains(&key.to_string()), "{key}: {stale:?}");
        }
        assert!(stale.contains(&"deckhand:bakee".to_string()), "an unknown deckhand key is deckhand's too");
        assert!(!stale.iter().any(|k| k == TRACK_TAG || k == "team" || k == "Name"), "{stale:?}");
        let gated = BTreeMap::from([
            (TRACK_TAG.to_string(), "web=flask:main".to_string()),
            (ALARMS_TAG.to_string(), "api-5xx".to_string()),
        ]);
        assert!(!stale_keys(current, &gated).contains(&ALARMS_TAG.to_string()));
    }

    #[test]
    fn untrack_removes_every_deckhand_key() {
        let stale = stale_keys(["deckhand:track", "deckhand:custom", "owner"], &BTreeMap::new());
        assert!(stale.contains(&TRACK_TAG.to_string()) && stale.contains(&"deckhand:custom".to_string()));
        assert!(!stale.contains(&"owner".to_string()));
        assert!(stale.len() <= 50, "UntagResource takes at most 50 keys");
    }
}
