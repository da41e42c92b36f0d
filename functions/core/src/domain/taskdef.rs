//! The task-definition rewrite: a new revision identical to the current one but for the images
//! of the tracked containers, pinned by digest.

use super::model::ContainerChange;
use crate::error::{DeckhandError, Result};
use aws_sdk_ecs::types::{ContainerDefinition, Tag, TaskDefinition};

/// One container whose image the rewrite changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChange {
    pub container: String,
    pub from: String,
    pub to: String,
}

/// Returns `current` with the images of `changes` replaced, and what changed.
/// Every container named in `changes` must exist; nothing else is touched.
pub fn retarget(current: &TaskDefinition, changes: &[ContainerChange]) -> Result<(TaskDefinition, Vec<ImageChange>)> {
    let containers = current.container_definitions();
    for change in changes {
        if !containers.iter().any(|c| c.name() == Some(change.name.as_str())) {
            let known: Vec<&str> = containers.iter().filter_map(ContainerDefinition::name).collect();
            return Err(DeckhandError::invalid(
                "container",
                format!(
                    "{:?} is not a container of {} (containers: {})",
                    change.name,
                    current.task_definition_arn().unwrap_or("the task definition"),
                    known.join(", ")
                ),
            ));
        }
    }
    let mut applied = Vec::new();
    let rewritten: Vec<ContainerDefinition> = containers
        .iter()
        .map(|container| match changes.iter().find(|c| Some(c.name.as_str()) == container.name()) {
            Some(change) => {
                let from = container.image().unwrap_or_default().to_string();
                if from != change.image {
                    applied.push(ImageChange { container: change.name.clone(), from, to: change.image.clone() });
                }
                // Rebuilding from the existing definition keeps every other container field.
                let mut updated = container.clone();
                updated.image = Some(change.image.clone());
                updated
            }
            None => container.clone(),
        })
        .collect();
    let mut next = current.clone();
    next.container_definitions = Some(rewritten);
    Ok((next, applied))
}

/// Tags to carry over to the new revision. `aws:`-prefixed tags are reserved (CloudFormation
/// adds some) and RegisterTaskDefinition refuses them.
pub fn registrable_tags(tags: &[Tag]) -> Vec<Tag> {
    tags.iter().filter(|t| !t.key().unwrap_or_default().starts_with("aws:")).cloned().collect()
}

/// Human-readable diff lines for a dry run. Only images are shown: other fields are copied as
/// they are, and environment values or secrets must never appear in output.
pub fn describe_changes(family: &str, changes: &[ImageChange]) -> Vec<String> {
    if changes.is_empty() {
        return vec![format!("{family}: no image changes")];
    }
    changes.iter().map(|c| format!("{family}: container {}: image {} -> {}", c.container, c.from, c.to)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{KeyValuePair, Secret};

    fn container(name: &str, image: &str) -> ContainerDefinition {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .essential(true)
            .environment(KeyValuePair::builder().name("DB_PASSWORD").value("hunter2").build())
            .secrets(
                Secret::builder().name("API_KEY").value_from("arn:aws:ssm:us-east-1:1:parameter/k").build().unwrap(),
            )
            .build()
    }

    fn two_container_definition() -> TaskDefinition {
        TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/todo:7")
            .family("todo")
            .container_definitions(container("app", "repo/main:prod"))
            .container_definitions(container("files", "repo/files:prod"))
            .build()
    }

    #[test]
    fn changes_only_the_named_container_image() {
        let current = two_container_definition();
        let change = ContainerChange { name: "files".into(), image: "r/files@sha256:new".into() };
        let (next, applied) = retarget(&current, &[change]).unwrap();
        assert_eq!(next.container_definitions()[0], current.container_definitions()[0]);
        assert_eq!(next.container_definitions()[1].image(), Some("r/files@sha256:new"));
        assert_eq!(next.container_definitions()[1].environment(), current.container_definitions()[1].environment());
        assert_eq!(
            applied,
            vec![ImageChange {
                container: "files".into(),
                from: "repo/files:prod".into(),
                to: "r/files@sha256:new".into()
            }]
        );
    }

    #[test]
    fn unknown_container_is_invalid_input() {
        let change = ContainerChange { name: "worker".into(), image: "x@sha256:1".into() };
        let error = retarget(&two_container_definition(), &[change]).unwrap_err();
        assert!(matches!(error, DeckhandError::InvalidInput { ref field, .. } if field == "container"), "{error}");
    }

    #[test]
    fn same_image_means_no_change() {
        let change = ContainerChange { name: "app".into(), image: "repo/main:prod".into() };
        let (_, applied) = retarget(&two_container_definition(), &[change]).unwrap();
        assert!(applied.is_empty());
    }

    #[test]
    fn reserved_tags_are_dropped() {
        let tags = vec![
            Tag::builder().key("team").value("web").build(),
            Tag::builder().key("aws:cloudformation:stack-name").value("x").build(),
        ];
        assert_eq!(registrable_tags(&tags), vec![tags[0].clone()]);
    }

    #[test]
    fn dry_run_diff_never_shows_environment_values() {
        let change = ContainerChange { name: "app".into(), image: "r/main@sha256:n".into() };
        let (_, applied) = retarget(&two_container_definition(), &[change]).unwrap();
        let lines = describe_changes("todo", &applied).join("\n");
        assert!(lines.contains("repo/main:prod -> r/main@sha256:n"));
        assert!(!lines.contains("hunter2") && !lines.contains("API_KEY"));
    }
}
