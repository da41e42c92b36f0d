//! `deckhand track` and `deckhand untrack`: set or remove a service's opt-in tag, validated as
//! the plan function validates it (a tag it would refuse is never written).

use crate::cloud::{sdk_error, Cloud};
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
use std::collections::BTreeMap;

pub struct PolicyTags {
    pub timeout: Option<u64>,
    pub bake: Option<u64>,
    pub max_failed_tasks: Option<u64>,
    /// deckhand:alarms, alarm names.
    pub alarms: Vec<String>,
    /// deckhand:approval=required, with deckhand:approval-timeout when given.
    pub approval: bool,
    pub approval_timeout: Option<u64>,
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
    let ecs_tags: Vec<Tag> = tags.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect();
    cloud
        .ecs
        .tag_resource()
        .resource_arn(&snapshot.arn)
        .set_tags(Some(ecs_tags))
        .send()
        .await
        .map_err(|e| sdk_error("TagResource", e))?;
    match format {
        Format::Text => {
            for (key, value) in &tags {
                println!("{}: {key}={value}", snapshot.name);
            }
        }
        Format::Json => output::json(&json!({"serviceArn": snapshot.arn, "tags": tags})),
    }
    Ok(Exit::Ok)
}

pub async fn untrack(cloud: &Cloud, format: Format, cluster: &str, service: &str) -> Result<Exit> {
    let snapshot = active_service(cloud, cluster, service).await?;
    cloud
        .ecs
        .untag_resource()
        .resource_arn(&snapshot.arn)
        .tag_keys(TRACK_TAG)
        .send()
        .await
        .map_err(|e| sdk_error("UntagResource", e))?;
    match format {
        Format::Text => println!("{}: {TRACK_TAG} removed; deckhand will not modify it again", snapshot.name),
        Format::Json => output::json(&json!({"serviceArn": snapshot.arn, "removed": [TRACK_TAG]})),
    }
    Ok(Exit::Ok)
}
