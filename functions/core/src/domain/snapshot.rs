//! What deckhand observes of AWS, reduced to the fields its decisions use (SDK-free).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceSnapshot {
    pub arn: String,
    pub name: String,
    pub cluster_arn: String,
    pub status: String,
    pub task_definition: String,
    pub desired_count: i64,
    pub running_count: i64,
    pub health_check_grace_period_seconds: u64,
    pub deployments: Vec<DeploymentSnapshot>,
    pub load_balancers: Vec<LoadBalancerRef>,
    pub tags: BTreeMap<String, String>,
}

impl ServiceSnapshot {
    pub fn primary(&self) -> Option<&DeploymentSnapshot> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }

    /// The revision the service was settled on: the PRIMARY deployment when it is COMPLETED
    /// (or, without rollout states, alone and at desired count).
    pub fn completed_task_definition(&self) -> Option<&str> {
        let primary = self.primary()?;
        let settled = match primary.rollout_state.as_deref() {
            Some(state) => state == "COMPLETED",
            None => self.deployments.len() == 1 && primary.running_count == primary.desired_count,
        };
        settled.then_some(primary.task_definition.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeploymentSnapshot {
    pub id: String,
    pub status: String,
    pub task_definition: String,
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub desired_count: i64,
    pub running_count: i64,
    pub pending_count: i64,
    pub failed_tasks: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadBalancerRef {
    pub target_group_arn: Option<String>,
    pub container_name: Option<String>,
    pub container_port: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskSnapshot {
    pub arn: String,
    pub task_definition: String,
    pub started_by: Option<String>,
    pub last_status: String,
    pub desired_status: String,
    /// Epoch seconds.
    pub started_at: Option<f64>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// Task-level container health (`HEALTHY`, `UNHEALTHY`, `UNKNOWN`).
    pub health_status: Option<String>,
    pub private_ip: Option<String>,
    pub containers: Vec<ContainerSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSnapshot {
    pub name: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetSnapshot {
    pub id: String,
    pub port: Option<i32>,
    pub state: String,
    pub reason: Option<String>,
}

/// An image as the registry knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetail {
    pub digest: String,
    /// Epoch seconds.
    pub pushed_at: Option<f64>,
}
