//! The ECS and Elastic Load Balancing states deckhand decides on, as enums rather than strings.
//!
//! Each keeps the value AWS sent when it is one deckhand does not know (`Other`), so a new value
//! added by AWS is reported as it is and never mistaken for a known one.

use std::fmt;

/// Defines a string-backed enum with `From<&str>`, `as_str` and `Display`.
macro_rules! aws_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value deckhand does not know (kept as AWS sent it).
            Other(String),
            /// No value was given.
            #[default]
            Absent,
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                    Self::Absent => "",
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    "" => Self::Absent,
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                Self::from(text.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

aws_enum! {
    /// A service's status (`DescribeServices`).
    ServiceStatus { Active = "ACTIVE", Draining = "DRAINING", Inactive = "INACTIVE" }
}

aws_enum! {
    /// A deployment's status within a service: the PRIMARY one is the newest.
    DeploymentStatus { Primary = "PRIMARY", Active = "ACTIVE", Inactive = "INACTIVE" }
}

aws_enum! {
    /// A deployment's rollout state (set for rolling-update deployments).
    RolloutState { InProgress = "IN_PROGRESS", Completed = "COMPLETED", Failed = "FAILED" }
}

aws_enum! {
    /// A task's last or desired status.
    TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
    }
}

aws_enum! {
    /// Why a task stopped (`stopCode`), see "Amazon ECS stopped task error codes".
    StopCode {
        TaskFailedToStart = "TaskFailedToStart",
        EssentialContainerExited = "EssentialContainerExited",
        UserInitiated = "UserInitiated",
        ServiceSchedulerInitiated = "ServiceSchedulerInitiated",
        SpotInterruption = "SpotInterruption",
        TerminationNotice = "TerminationNotice",
    }
}

impl StopCode {
    /// Stops that ECS, Spot or a person made on a working task (scale-in, a replaced deployment,
    /// a reclaimed Spot capacity, `StopTask`): they say nothing about the revision's health, even
    /// though its containers then exit 137 (SIGKILL) or 143 (SIGTERM).
    pub fn is_external(&self) -> bool {
        matches!(
            self,
            Self::UserInitiated | Self::ServiceSchedulerInitiated | Self::SpotInterruption | Self::TerminationNotice
        )
    }
}

aws_enum! {
    /// A task's container health (`healthStatus`).
    TaskHealth { Healthy = "HEALTHY", Unhealthy = "UNHEALTHY", Unknown = "UNKNOWN" }
}

aws_enum! {
    /// A load-balancer target's state (`DescribeTargetHealth`).
    TargetState {
        Initial = "initial",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
        UnhealthyDraining = "unhealthy.draining",
        Unused = "unused",
        Draining = "draining",
        Unavailable = "unavailable",
    }
}

aws_enum! {
    /// How a service's deployments are driven (`deploymentController.type`).
    DeploymentController { Ecs = "ECS", CodeDeploy = "CODE_DEPLOY", External = "EXTERNAL" }
}

aws_enum! {
    /// The ECS-native deployment strategy (`deploymentConfiguration.strategy`).
    DeploymentStrategy { Rolling = "ROLLING", BlueGreen = "BLUE_GREEN", Linear = "LINEAR", Canary = "CANARY" }
}

aws_enum! {
    /// An ECS service deployment's status (DescribeServiceDeployments).
    ServiceDeploymentStatus {
        Pending = "PENDING", InProgress = "IN_PROGRESS", Successful = "SUCCESSFUL", Stopped = "STOPPED",
        StopRequested = "STOP_REQUESTED", RollbackRequested = "ROLLBACK_REQUESTED",
        RollbackInProgress = "ROLLBACK_IN_PROGRESS", RollbackSuccessful = "ROLLBACK_SUCCESSFUL",
        RollbackFailed = "ROLLBACK_FAILED"
    }
}

aws_enum! {
    /// A lifecycle stage of an ECS service deployment ("Lifecycle stages" in the ECS developer
    /// guide's blue/green pages; also the stages a lifecycle hook runs at).
    LifecycleStage {
        ReconcileService = "RECONCILE_SERVICE", PreScaleUp = "PRE_SCALE_UP", ScaleUp = "SCALE_UP",
        PostScaleUp = "POST_SCALE_UP", TestTrafficShift = "TEST_TRAFFIC_SHIFT",
        PostTestTrafficShift = "POST_TEST_TRAFFIC_SHIFT", PreProductionTrafficShift = "PRE_PRODUCTION_TRAFFIC_SHIFT",
        ProductionTrafficShift = "PRODUCTION_TRAFFIC_SHIFT", PostProductionTrafficShift = "POST_PRODUCTION_TRAFFIC_SHIFT",
        BakeTime = "BAKE_TIME", CleanUp = "CLEAN_UP"
    }
}

impl ServiceDeploymentStatus {
    /// ECS is still shifting, baking, stopping or rolling back: nothing it shows is final yet.
    pub fn is_under_way(&self) -> bool {
        matches!(
            self,
            Self::Pending | Self::InProgress | Self::StopRequested | Self::RollbackRequested | Self::RollbackInProgress
        )
    }
}

impl DeploymentStrategy {
    /// BLUE_GREEN, LINEAR or CANARY: ECS shifts traffic between two target groups and bakes,
    /// through a service deployment with lifecycle stages.
    pub fn is_native(&self) -> bool {
        matches!(self, Self::BlueGreen | Self::Linear | Self::Canary)
    }
}

aws_enum! {
    /// A task definition revision's status: INACTIVE ones were deregistered.
    TaskDefinitionStatus { Active = "ACTIVE", Inactive = "INACTIVE", DeleteInProgress = "DELETE_IN_PROGRESS" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_parse_and_print_back() {
        assert_eq!(RolloutState::from("COMPLETED"), RolloutState::Completed);
        assert_eq!(TargetState::from("unhealthy.draining"), TargetState::UnhealthyDraining);
        assert_eq!(StopCode::from("SpotInterruption").as_str(), "SpotInterruption");
        assert_eq!(DeploymentStatus::Primary.to_string(), "PRIMARY");
    }

    #[test]
    fn unknown_values_are_kept_and_never_taken_for_known_ones() {
        let odd = TargetState::from("Healthy");
        assert_eq!(odd, TargetState::Other("Healthy".into()));
        assert_ne!(odd, TargetState::Healthy);
        assert_eq!(odd.as_str(), "Healthy");
        assert_eq!(TaskStatus::from(""), TaskStatus::Absent);
    }

    #[test]
    fn only_stops_made_from_outside_the_task_are_external() {
        for code in ["UserInitiated", "ServiceSchedulerInitiated", "SpotInterruption", "TerminationNotice"] {
            assert!(StopCode::from(code).is_external(), "{code}");
        }
        for code in ["TaskFailedToStart", "EssentialContainerExited", "SomethingNew", ""] {
            assert!(!StopCode::from(code).is_external(), "{code}");
        }
    }
}
