//! What deckhand observes of AWS, reduced to the fields its decisions use (SDK-free).

use super::status::{
    DeploymentController, DeploymentStatus, DeploymentStrategy, RolloutState, ServiceDeploymentStatus, ServiceStatus,
    StopCode, TargetState, TaskHealth, TaskStatus,
};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceSnapshot {
    pub arn: String,
    pub name: String,
    pub cluster_arn: String,
    pub status: ServiceStatus,
    pub task_definition: String,
    pub desired_count: i64,
    pub running_count: i64,
    pub health_check_grace_period_seconds: u64,
    pub deployments: Vec<DeploymentSnapshot>,
    pub load_balancers: Vec<LoadBalancerRef>,
    pub tags: BTreeMap<String, String>,
    /// `deploymentController.type`; ECS when absent.
    pub deployment_controller: DeploymentController,
    /// `deploymentConfiguration.strategy`; ROLLING when absent.
    pub deployment_strategy: DeploymentStrategy,
    /// Whether the service's tasks get their own network interface (`awsvpcConfiguration`), so
    /// that their targets are registered by IP address.
    pub awsvpc: bool,
    /// ECS-native strategies: the service deployment under way or last run
    /// (`currentServiceDeployment`).
    pub current_service_deployment: Option<String>,
    /// ECS-native strategies: how long ECS itself waits in a deployment by its configuration
    /// (bake, linear step bakes, canary bake), which a rollout's deadline must allow for.
    pub ecs_wait_seconds: u64,
    /// ECS-native strategies: the Lambda lifecycle hooks of `deploymentConfiguration`.
    pub lifecycle_hooks: Vec<LifecycleHookRef>,
}

/// A Lambda lifecycle hook of a service (`deploymentConfiguration.lifecycleHooks[]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LifecycleHookRef {
    pub target_arn: String,
    pub role_arn: Option<String>,
    pub stages: Vec<String>,
}

impl LifecycleHookRef {
    /// Whether the hook invokes `function_arn` (a qualified ARN, `…:function:NAME:ALIAS`, names
    /// the same function).
    pub fn invokes(&self, function_arn: &str) -> bool {
        let unqualified = |arn: &str| arn.split(':').take(7).collect::<Vec<_>>().join(":");
        !function_arn.is_empty() && unqualified(&self.target_arn) == unqualified(function_arn)
    }
}

impl ServiceSnapshot {
    /// deckhand's own lifecycle hook on this service (the hook function `function_arn`), if any.
    pub fn deckhand_hook(&self, function_arn: Option<&str>) -> Option<&LifecycleHookRef> {
        let function_arn = function_arn?;
        self.lifecycle_hooks.iter().find(|hook| hook.invokes(function_arn))
    }
}

/// An ECS service deployment (DescribeServiceDeployments), for the native strategies: where it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceDeploymentSnapshot {
    pub arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    /// When ECS started it (epoch seconds).
    pub started_at: Option<f64>,
    pub status: ServiceDeploymentStatus,
    pub status_reason: Option<String>,
    pub lifecycle_stage: Option<String>,
    /// The share of production and test traffic ECS sends to the new (target) revision.
    pub production_percent: Option<f64>,
    pub test_percent: Option<f64>,
}

impl ServiceDeploymentSnapshot {
    /// Where the deployment is, for a progress line: "PRODUCTION_TRAFFIC_SHIFT, 25% of production traffic".
    pub fn describe(&self) -> String {
        let mut parts = vec![self.status.as_str().to_string()];
        if let Some(stage) = &self.lifecycle_stage {
            parts.push(format!("at {stage}"));
        }
        if let Some(percent) = self.production_percent {
            parts.push(format!("{percent}% of production traffic on the new revision"));
        }
        if let Some(percent) = self.test_percent.filter(|p| *p > 0.0) {
            parts.push(format!("{percent}% of test traffic"));
        }
        parts.join(", ")
    }
}

/// What ECS itself waits, in seconds, in a native deployment configured so: the bake after the
/// shift, plus the step bakes between LINEAR steps (none after the last) or the CANARY bake.
pub fn native_wait_seconds(
    strategy: &DeploymentStrategy,
    bake_minutes: Option<i32>,
    linear: Option<(f64, i32)>,
    canary_bake_minutes: Option<i32>,
) -> u64 {
    let minutes = |m: Option<i32>| m.unwrap_or(0).max(0) as u64;
    let shift = match strategy {
        DeploymentStrategy::Linear => linear.map_or(0, |(step_percent, step_bake)| {
            let steps = if step_percent > 0.0 { (100.0 / step_percent).ceil() as u64 } else { 1 };
            steps.saturating_sub(1) * minutes(Some(step_bake))
        }),
        DeploymentStrategy::Canary => minutes(canary_bake_minutes),
        _ => 0,
    };
    match strategy {
        DeploymentStrategy::BlueGreen | DeploymentStrategy::Linear | DeploymentStrategy::Canary => {
            (shift + minutes(bake_minutes)) * 60
        }
        _ => 0,
    }
}

impl ServiceSnapshot {
    pub fn primary(&self) -> Option<&DeploymentSnapshot> {
        self.deployments.iter().find(|d| d.status == DeploymentStatus::Primary)
    }

    /// The revision the service was settled on: the PRIMARY deployment when it is COMPLETED
    /// (or, without rollout states, alone and at desired count).
    pub fn completed_task_definition(&self) -> Option<&str> {
        let primary = self.primary()?;
        self.is_settled(primary).then_some(primary.task_definition.as_str())
    }

    /// A deployment is settled when ECS says COMPLETED or, for services without rollout states,
    /// when it is the only one and runs its desired count.
    pub fn is_settled(&self, deployment: &DeploymentSnapshot) -> bool {
        match deployment.rollout_state {
            RolloutState::Absent => self.deployments.len() == 1 && deployment.running_count == deployment.desired_count,
            ref state => *state == RolloutState::Completed,
        }
    }

    /// The revision the service was settled on when `deployment` started: the newest other
    /// deployment (the PRIMARY the update demoted to ACTIVE) when it is COMPLETED. Read from
    /// UpdateService's answer, which is current where DescribeServices may show an older state.
    pub fn completed_before(&self, deployment: &str) -> Option<&str> {
        self.deployments
            .iter()
            .enumerate()
            .filter(|(_, d)| d.id != deployment)
            // Newest by creation time where ECS gives it, else by ECS's order (newest first).
            .max_by(|(i, a), (j, b)| {
                let by_time = a.created_at.unwrap_or(f64::MIN).total_cmp(&b.created_at.unwrap_or(f64::MIN));
                by_time.then(j.cmp(i))
            })
            .filter(|(_, d)| d.rollout_state == RolloutState::Completed)
            .map(|(_, d)| d.task_definition.as_str())
    }

    pub fn is_active(&self) -> bool {
        self.status == ServiceStatus::Active
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeploymentSnapshot {
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition: String,
    pub rollout_state: RolloutState,
    pub rollout_state_reason: Option<String>,
    pub desired_count: i64,
    pub running_count: i64,
    pub pending_count: i64,
    pub failed_tasks: i64,
    /// When ECS created the deployment (epoch seconds): tells a deployment started after
    /// deckhand's UpdateService from one that was there before it.
    pub created_at: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadBalancerRef {
    pub target_group_arn: Option<String>,
    /// ECS-native blue/green, linear and canary (`advancedConfiguration.alternateTargetGroupArn`):
    /// the two groups swap roles on every deployment, and the new revision's tasks are registered
    /// in whichever of them is not serving production.
    pub alternate_target_group_arn: Option<String>,
    pub container_name: Option<String>,
    pub container_port: Option<i32>,
}

impl LoadBalancerRef {
    /// The target groups a task of this load balancer may be registered in.
    pub fn target_groups(&self) -> impl Iterator<Item = &str> {
        self.target_group_arn.iter().chain(&self.alternate_target_group_arn).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskSnapshot {
    pub arn: String,
    pub task_definition: String,
    pub started_by: Option<String>,
    pub last_status: TaskStatus,
    pub desired_status: TaskStatus,
    /// Epoch seconds.
    pub started_at: Option<f64>,
    pub stop_code: StopCode,
    pub stopped_reason: Option<String>,
    /// Task-level container health.
    pub health_status: TaskHealth,
    /// awsvpc network mode: the task's own IPv4 address (its targets are registered by IP).
    pub private_ip: Option<String>,
    /// EC2 launch type: the container instance the task runs on.
    pub container_instance_arn: Option<String>,
    /// Bridge and host network modes: the EC2 instance behind `container_instance_arn` (their
    /// targets are registered by instance id and host port).
    pub ec2_instance_id: Option<String>,
    pub containers: Vec<ContainerSnapshot>,
}

impl TaskSnapshot {
    /// The host port a bridge/host-mode task bound for `container`'s `container_port`.
    pub fn host_port(&self, container: Option<&str>, container_port: Option<i32>) -> Option<i32> {
        self.containers
            .iter()
            .filter(|c| container.is_none_or(|name| c.name == name))
            .flat_map(|c| &c.network_bindings)
            .find(|b| container_port.is_none_or(|port| b.container_port == port))
            .map(|b| b.host_port)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSnapshot {
    pub name: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// Bridge and host network modes: the ports the container bound on its instance.
    pub network_bindings: Vec<PortBinding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortBinding {
    pub container_port: i32,
    pub host_port: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetSnapshot {
    pub id: String,
    pub port: Option<i32>,
    pub state: TargetState,
    pub reason: Option<String>,
}

/// An image as the registry knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetail {
    pub digest: String,
    /// Epoch seconds.
    pub pushed_at: Option<f64>,
    /// Every tag that names the image now.
    pub tags: Vec<String>,
}
