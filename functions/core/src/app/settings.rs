//! Function configuration from the environment the template sets.

use crate::domain::image::RegistryPolicy;
use crate::domain::model::Policy;
use crate::error::{DeckhandError, Result};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn required(name: &str) -> Result<String> {
    var(name).ok_or_else(|| DeckhandError::ConfigurationError(format!("environment variable {name} is not set")))
}

fn number(name: &str, default: u64) -> Result<u64> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| DeckhandError::ConfigurationError(format!("{name} must be a whole number"))),
    }
}

fn list(name: &str) -> Vec<String> {
    var(name).map(|v| v.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

/// What the plan function needs.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// Clusters to watch; empty means every cluster of the region.
    pub clusters: Vec<String>,
    pub registry: RegistryPolicy,
    pub account: String,
    pub region: String,
    pub defaults: Policy,
    pub max_concurrency: u64,
    /// Repositories whose pushes deploy (the push rule's filter); empty means every one. The
    /// sweep deploys only what a push of them would.
    pub repositories: Vec<String>,
    /// deckhand's lifecycle hook function (ECS-native strategies), to recognise it on a service.
    pub hook_function_arn: Option<String>,
}

impl PlanSettings {
    pub fn watches_repository(&self, repository: &str) -> bool {
        self.repositories.is_empty() || self.repositories.iter().any(|r| r == repository)
    }

    /// What the `deckhand` command needs to show a service's drift (`app::reconcile`): the
    /// account's registry, read from one of its ARNs (`arn:PARTITION:ecs:REGION:ACCOUNT:…`).
    pub fn for_drift_of(arn: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.split(':').collect();
        let (region, account) = (parts.get(3)?.to_string(), parts.get(4)?.to_string());
        let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        Some(Self {
            clusters: vec![],
            repositories: vec![],
            registry: RegistryPolicy {
                account_registry: format!("{account}.dkr.ecr.{region}.{suffix}"),
                allowed: vec![],
                // The command reads any registry the service's track tag names.
                registry_accounts: vec![],
            },
            hook_function_arn: None,
            account,
            region,
            max_concurrency: 1,
            defaults: Policy {
                poll_seconds: 1,
                recheck_seconds: 1,
                timeout_seconds: 0,
                bake_seconds: 0,
                max_failed_tasks: 1,
                unhealthy_checks: 1,
                gates: Default::default(),
                gated_by_hook: false,
                hook_bake_seconds: 0,
            },
        })
    }

    pub fn from_env() -> Result<Self> {
        let account = required("DECKHAND_ACCOUNT_ID")?;
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
        let suffix = var("DECKHAND_REGISTRY_SUFFIX").unwrap_or_else(|| "amazonaws.com".into());
        Ok(Self {
            clusters: list("DECKHAND_CLUSTERS"),
            repositories: list("DECKHAND_REPOSITORIES"),
            registry: RegistryPolicy {
                account_registry: format!("{account}.dkr.ecr.{region}.{suffix}"),
                allowed: list("DECKHAND_ALLOWED_REGISTRIES"),
                registry_accounts: list("DECKHAND_REGISTRY_ACCOUNTS"),
            },
            account,
            region,
            max_concurrency: number("DECKHAND_MAX_CONCURRENCY", 10)?.max(1),
            defaults: default_policy()?,
            hook_function_arn: var("DECKHAND_HOOK_FUNCTION_ARN"),
        })
    }
}

/// The stack's defaults of the policy tags (the plan function's and the hook function's).
pub fn default_policy() -> Result<Policy> {
    Ok(Policy {
        poll_seconds: number("DECKHAND_POLL_INTERVAL_SECONDS", 15)?.max(1),
        recheck_seconds: number("DECKHAND_RECHECK_SECONDS", 300)?.max(1),
        timeout_seconds: number("DECKHAND_DEPLOYMENT_TIMEOUT_SECONDS", 900)?,
        bake_seconds: number("DECKHAND_BAKE_SECONDS", 0)?,
        max_failed_tasks: number("DECKHAND_MAX_FAILED_TASKS", 2)?.max(1),
        unhealthy_checks: number("DECKHAND_UNHEALTHY_CHECKS", 3)?.max(1),
        gates: Default::default(),
        gated_by_hook: false,
        hook_bake_seconds: 0,
    })
}

/// The account's own ECR registry host (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`), when the
/// function knows its account (`DECKHAND_ACCOUNT_ID`).
pub fn account_registry() -> Option<String> {
    let account = var("DECKHAND_ACCOUNT_ID")?;
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
    let suffix = var("DECKHAND_REGISTRY_SUFFIX").unwrap_or_else(|| "amazonaws.com".into());
    Some(format!("{account}.dkr.ecr.{region}.{suffix}"))
}

/// The state table's name (lock, lock and rollback functions).
pub fn state_table() -> Result<String> {
    required("DECKHAND_STATE_TABLE")
}

/// How long a lock stays valid without its holder releasing it.
pub fn lock_ttl_seconds() -> Result<u64> {
    number("DECKHAND_LOCK_TTL_SECONDS", 3 * 3600)
}

/// The event bus for deployment events.
pub fn event_bus() -> String {
    var("DECKHAND_EVENT_BUS").unwrap_or_else(|| "default".into())
}

/// The SNS topic chat messages go to (Amazon Q Developer in chat applications), if any.
pub fn chat_topic() -> Option<String> {
    var("DECKHAND_CHAT_TOPIC_ARN")
}
