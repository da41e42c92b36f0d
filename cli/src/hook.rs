//! `deckhand track --hook`: deckhand's ECS lifecycle hook on a service with an ECS-native
//! strategy (BLUE_GREEN, LINEAR, CANARY), so that its gates run inside ECS's traffic shift.
//! The service's other lifecycle hooks are left as they are.

use crate::cloud::{sdk_error, Cloud};
use crate::output::{Error, Result};
use aws_sdk_ecs::types::{DeploymentConfiguration, DeploymentLifecycleHook, DeploymentLifecycleHookStage};
use deckhand_core::domain::hook::HOOK_STAGES;
use deckhand_core::domain::snapshot::{LifecycleHookRef, ServiceSnapshot};

/// What `track` did to deckhand's hook on the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookChange {
    Added,
    /// Already there with the stack's role at deckhand's stages.
    Kept,
    Removed,
    /// Not asked for and not there.
    None,
}

impl HookChange {
    pub fn describe(self) -> Option<&'static str> {
        match self {
            HookChange::Added => Some("deckhand lifecycle hook set at POST_TEST_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT"),
            HookChange::Kept => Some("deckhand lifecycle hook in place"),
            HookChange::Removed => Some("deckhand lifecycle hook removed"),
            HookChange::None => None,
        }
    }
}

/// Sets (`wanted`) or removes deckhand's hook on the service, with one UpdateService of its
/// deployment configuration (which starts no deployment) when something changes.
pub async fn set_hook(cloud: &Cloud, snapshot: &ServiceSnapshot, wanted: bool) -> Result<HookChange> {
    let outputs = cloud.outputs().await?;
    let (function, role) = match (&outputs.hook_function, &outputs.hook_role) {
        (Some(function), Some(role)) => (function.as_str(), role.as_str()),
        _ if wanted => {
            return Err(Error::InvalidInput(format!(
                "--hook: stack {:?} has no HookFunctionArn/HookRoleArn outputs (deploy a newer deckhand)",
                cloud.stack
            )))
        }
        _ => return Ok(HookChange::None),
    };
    if wanted && !snapshot.deployment_strategy.is_native() {
        return Err(Error::InvalidInput(format!(
            "--hook: service {} uses the {} strategy; lifecycle hooks run in ECS-native BLUE_GREEN, LINEAR and CANARY deployments",
            snapshot.name,
            if snapshot.deployment_strategy.as_str().is_empty() { "ROLLING" } else { snapshot.deployment_strategy.as_str() }
        )));
    }
    let ours = snapshot.deckhand_hook(Some(function));
    let complete = ours.is_some_and(|hook| {
        hook.role_arn.as_deref() == Some(role) && HOOK_STAGES.iter().all(|stage| hook.stages.iter().any(|s| s == stage))
    });
    let change = match (wanted, ours.is_some()) {
        (true, _) if complete => return Ok(HookChange::Kept),
        (true, _) => HookChange::Added,
        (false, true) => HookChange::Removed,
        (false, false) => return Ok(HookChange::None),
    };
    let described = cloud
        .ecs
        .describe_services()
        .cluster(&snapshot.cluster_arn)
        .services(&snapshot.arn)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeServices", e))?;
    let current = described.services().first().and_then(|s| s.deployment_configuration()).cloned();
    let current = current.unwrap_or_else(|| DeploymentConfiguration::builder().build());
    let mut hooks: Vec<DeploymentLifecycleHook> = current
        .lifecycle_hooks()
        .iter()
        .filter(|hook| {
            let target = LifecycleHookRef {
                target_arn: hook.hook_target_arn().unwrap_or_default().to_string(),
                ..Default::default()
            };
            !target.invokes(function)
        })
        .cloned()
        .collect();
    if wanted {
        hooks.push(
            DeploymentLifecycleHook::builder()
                .hook_target_arn(function)
                .role_arn(role)
                .set_lifecycle_stages(Some(
                    HOOK_STAGES.iter().map(|s| DeploymentLifecycleHookStage::from(*s)).collect(),
                ))
                .build(),
        );
    }
    // UpdateService takes the deployment configuration whole: everything else is sent back as is.
    let configuration = DeploymentConfiguration::builder()
        .set_deployment_circuit_breaker(current.deployment_circuit_breaker().cloned())
        .set_maximum_percent(current.maximum_percent())
        .set_minimum_healthy_percent(current.minimum_healthy_percent())
        .set_alarms(current.alarms().cloned())
        .set_strategy(current.strategy().cloned())
        .set_bake_time_in_minutes(current.bake_time_in_minutes())
        .set_linear_configuration(current.linear_configuration().cloned())
        .set_canary_configuration(current.canary_configuration().cloned())
        .set_early_success_criteria(current.early_success_criteria().cloned())
        .set_lifecycle_hooks(Some(hooks))
        .build();
    cloud
        .ecs
        .update_service()
        .cluster(&snapshot.cluster_arn)
        .service(&snapshot.arn)
        .deployment_configuration(configuration)
        .send()
        .await
        .map_err(|e| sdk_error("UpdateService", e))?;
    Ok(change)
}
