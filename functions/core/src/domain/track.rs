//! The opt-in contract: ECS service tags `deckhand:track` and per-service policy tags.

use super::gates::Gates;
use super::image::is_valid_repository;
use super::model::Policy;
use super::registry::EcrRegistry;
use super::release::TagRule;
use std::collections::BTreeMap;

pub const TRACK_TAG: &str = "deckhand:track";
pub const TIMEOUT_TAG: &str = "deckhand:timeout";
pub const BAKE_TAG: &str = "deckhand:bake";
pub const MAX_FAILED_TASKS_TAG: &str = "deckhand:max-failed-tasks";

/// One `CONTAINER=REPOSITORY:RULE` item of `deckhand:track` (RULE: a tag, `prefix:P` or
/// `semver:RANGE`; REPOSITORY a name in deckhand's own registry, or the repository URI
/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME` of another account's or Region's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub container: String,
    pub repository: String,
    pub rule: TagRule,
}

/// Parses `deckhand:track`: items separated by single spaces. Returns the items or a message
/// saying which item is wrong; a malformed tag tracks nothing (never a partial guess).
pub fn parse_track(value: &str) -> Result<Vec<Tracked>, String> {
    if value.trim().is_empty() {
        return Err("is empty".into());
    }
    let mut items: Vec<Tracked> = Vec::new();
    for item in value.split(' ') {
        let (container, image) =
            item.split_once('=').ok_or_else(|| format!("item {item:?} is not CONTAINER=REPOSITORY:TAG"))?;
        // Repository names have no ':', so the first one ends it (`shop/api:semver:1.x`).
        let (repository, tag) =
            image.split_once(':').ok_or_else(|| format!("item {item:?} has no :TAG after the repository"))?;
        if container.is_empty() || !container.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
            return Err(format!("item {item:?}: container name must be letters, digits, '_' or '-'"));
        }
        // Another account's or Region's registry is named by its host (the repository URI).
        let name = match repository.split_once('/') {
            Some((host, name)) if host.contains('.') => {
                if EcrRegistry::parse(host).is_none() {
                    return Err(format!(
                        "item {item:?}: {host:?} is not an ECR registry (ACCOUNT.dkr.ecr.REGION.amazonaws.com)"
                    ));
                }
                name
            }
            _ => repository,
        };
        if !is_valid_repository(name) {
            return Err(format!("item {item:?}: {name:?} is not a valid ECR repository name"));
        }
        let rule = TagRule::parse(tag).map_err(|why| format!("item {item:?}: {why}"))?;
        if items.iter().any(|t| t.container == container) {
            return Err(format!("container {container:?} is tracked twice"));
        }
        items.push(Tracked { container: container.into(), repository: repository.into(), rule });
    }
    Ok(items)
}

/// The service's policy: deployment defaults overridden by its `deckhand:*` tags.
/// Unparseable values are reported, and the default is kept.
pub fn policy_from_tags(defaults: &Policy, tags: &BTreeMap<String, String>) -> (Policy, Vec<String>) {
    let mut policy = defaults.clone();
    let mut warnings = Vec::new();
    let mut read = |key: &str, slot: &mut u64, max: u64| {
        if let Some(raw) = tags.get(key) {
            match raw.parse::<u64>() {
                Ok(v) if v <= max => *slot = v,
                _ => warnings.push(format!("tag {key}={raw:?} ignored: expected a whole number up to {max}")),
            }
        }
    };
    read(TIMEOUT_TAG, &mut policy.timeout_seconds, 6 * 3600);
    read(BAKE_TAG, &mut policy.bake_seconds, 3600);
    read(MAX_FAILED_TASKS_TAG, &mut policy.max_failed_tasks, 1000);
    policy.max_failed_tasks = policy.max_failed_tasks.max(1);
    (policy, warnings)
}

/// What is wrong with a service's policy tags: the warnings [`policy_from_tags`] gives for them,
/// whatever the defaults (the `deckhand` command validates tags it is asked to set with this).
pub fn policy_tag_warnings(tags: &BTreeMap<String, String>) -> Vec<String> {
    let any = Policy {
        poll_seconds: 0,
        recheck_seconds: 0,
        timeout_seconds: 0,
        bake_seconds: 0,
        max_failed_tasks: 1,
        unhealthy_checks: 0,
        gates: Gates::default(),
        gated_by_hook: false,
        hook_bake_seconds: 0,
    };
    policy_from_tags(&any, tags).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_multi_container_tags() {
        assert_eq!(
            parse_track("web=flask-backend:main").unwrap(),
            vec![Tracked {
                container: "web".into(),
                repository: "flask-backend".into(),
                rule: TagRule::Exact("main".into())
            }]
        );
        let ranged = parse_track("app=shop/api:semver:1.x edge=shop/edge:prefix:release-").unwrap();
        assert_eq!(ranged[0].rule.to_string(), "semver:1.x");
        assert_eq!(ranged[1].rule, TagRule::Prefix("release-".into()));
        let two = parse_track("app=todo/main:prod files=todo/files:prod").unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].repository, "todo/files");
        let central = parse_track("app=210987654321.dkr.ecr.eu-west-1.amazonaws.com/shop/api:semver:1.x").unwrap();
        assert_eq!(central[0].repository, "210987654321.dkr.ecr.eu-west-1.amazonaws.com/shop/api");
        assert_eq!(central[0].rule.to_string(), "semver:1.x");
    }

    #[test]
    fn rejects_malformed_tags_with_a_reason() {
        for bad in [
            "",
            "web",
            "web=flask",
            "=flask:main",
            "web=Flask:main",
            "web=a:b web=c:d",
            "web=flask:main  api=x:y",
            "app=shop/api:semver:^1.2",
            "app=shop/api:semver:1.*",
            "app=shop/api:prefix:",
            "app=shop/api:main:extra",
            "app=ghcr.io/shop/api:main",
            "app=210987654321.dkr.ecr.eu-west-1.amazonaws.com/Shop:main",
        ] {
            assert!(parse_track(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policy_tags_override_defaults_and_report_bad_values() {
        let defaults = Policy {
            poll_seconds: 5,
            recheck_seconds: 60,
            timeout_seconds: 600,
            bake_seconds: 0,
            max_failed_tasks: 2,
            unhealthy_checks: 3,
            gates: Gates::default(),
            gated_by_hook: false,
            hook_bake_seconds: 0,
        };
        let tags: BTreeMap<String, String> = [
            (TIMEOUT_TAG.to_string(), "900".to_string()),
            (BAKE_TAG.to_string(), "soon".to_string()),
            (MAX_FAILED_TASKS_TAG.to_string(), "0".to_string()),
        ]
        .into();
        let (policy, warnings) = policy_from_tags(&defaults, &tags);
        assert_eq!(policy.timeout_seconds, 900);
        assert_eq!(policy.bake_seconds, 0);
        assert_eq!(policy.max_failed_tasks, 1, "zero would fail every deployment; clamp to 1");
        assert_eq!(warnings.len(), 1);
    }
}
