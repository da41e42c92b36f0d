//! Deployment events published to EventBridge (the DESIGN.md contract).

use super::model::{EcsDeploymentProgress, Trigger};
use serde::{Deserialize, Serialize};

pub const EVENT_SOURCE: &str = "deckhand";
pub const EVENT_DETAIL_TYPE: &str = "Deckhand Deployment State Change";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Started,
    Succeeded,
    RolledBack,
    RollbackFailed,
    Skipped,
    Failed,
    /// Someone else updated the service during the rollout; deckhand left their change alone.
    Superseded,
    /// A push waits for a person's approval (`deckhand:approval=required`); not terminal.
    AwaitingApproval,
}

impl Status {
    /// The status as events and the command show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Started => "STARTED",
            Status::Succeeded => "SUCCEEDED",
            Status::RolledBack => "ROLLED_BACK",
            Status::RollbackFailed => "ROLLBACK_FAILED",
            Status::Skipped => "SKIPPED",
            Status::Failed => "FAILED",
            Status::Superseded => "SUPERSEDED",
            Status::AwaitingApproval => "AWAITING_APPROVAL",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Started | Status::AwaitingApproval)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentEvent {
    pub cluster: String,
    pub service: String,
    pub image: String,
    pub status: Status,
    pub reason: String,
    #[serde(default)]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub previous_task_definition: Option<String>,
    pub execution_arn: String,
    /// The service's own (child) execution, where its steps can be followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_execution_arn: Option<String>,
    /// What started the deployment: `push`, `manual` or `reconcile`.
    #[serde(default)]
    pub trigger: Trigger,
    /// AWAITING_APPROVAL: what would change, one line per container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<String>>,
    /// ECS-native strategies: ECS's service deployment at the last check (lifecycle stage,
    /// share of production traffic on the new revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_deployment: Option<EcsDeploymentProgress>,
    /// When it happened (epoch seconds): the push, the rollout's start, the first HEALTHY
    /// judgement, and the judgement that ended it. Terminal events; what is unknown is absent.
    #[serde(default, skip_serializing_if = "Timings::is_empty")]
    pub timings: Timings,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_at: Option<f64>,
}

impl Timings {
    pub fn is_empty(&self) -> bool {
        self == &Timings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn each_status_reads_as_it_is_published() {
        for status in [
            Status::Started,
            Status::Succeeded,
            Status::RolledBack,
            Status::RollbackFailed,
            Status::Skipped,
            Status::Failed,
            Status::Superseded,
            Status::AwaitingApproval,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str(), "{status:?}");
        }
    }
}
