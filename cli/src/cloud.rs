//! The AWS side of the command: one SDK configuration (region, profile, `AWS_ENDPOINT_URL`), the
//! stack's outputs, and the clients and core adapters the commands share.

use crate::output::{Error, Result};
use aws_config::{retry::RetryConfig, BehaviorVersion, Region, SdkConfig};
use deckhand_core::aws::{dynamodb::DynamoLedger, ecs::EcsAdapter, sfn::SfnAdapter};
use tokio::sync::OnceCell;

/// What `sam deploy` left in the stack's outputs (template.yaml `Outputs`).
#[derive(Debug, Clone)]
pub struct StackOutputs {
    pub deploy_machine: String,
    pub table: String,
    /// deckhand's ECS lifecycle hook and the role ECS invokes it with (stacks before the hook
    /// have neither).
    pub hook_function: Option<String>,
    pub hook_role: Option<String>,
}

pub struct Cloud {
    pub config: SdkConfig,
    pub stack: String,
    outputs: OnceCell<StackOutputs>,
    ledger: OnceCell<DynamoLedger>,
    pub ecs: aws_sdk_ecs::Client,
    pub ecs_adapter: EcsAdapter,
    pub sfn: aws_sdk_sfn::Client,
    pub executions: SfnAdapter,
}

impl Cloud {
    pub async fn connect(region: Option<String>, profile: Option<String>, stack: String) -> Self {
        // Standard retry mode, 3 attempts (the SDK's defaults, made explicit): throttling and
        // transient errors are retried with exponential backoff and full jitter, bounded by the
        // client's retry quota so that an endpoint in trouble is not hammered, and a person
        // waiting on the command sees an outage within seconds. Not adaptive mode: its
        // client-side rate limiter sleeps inside `send()`, out of sight of `watch`'s scheduler
        // (schedule.rs), which paces GetExecutionHistory against the account's bucket itself
        // and, when a call is throttled all the same, pauses every read with its own jittered
        // backoff instead of giving up.
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(region) = region {
            loader = loader.region(Region::new(region));
        }
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        let config = loader.load().await;
        Cloud {
            ecs: aws_sdk_ecs::Client::new(&config),
            ecs_adapter: EcsAdapter::new(&config),
            sfn: aws_sdk_sfn::Client::new(&config),
            executions: SfnAdapter::new(&config),
            outputs: OnceCell::new(),
            ledger: OnceCell::new(),
            stack,
            config,
        }
    }

    /// The stack's outputs, read once (DescribeStacks).
    pub async fn outputs(&self) -> Result<&StackOutputs> {
        self.outputs.get_or_try_init(|| self.describe_stack()).await
    }

    /// The state table (locks, known-good revisions, deployment history).
    pub async fn ledger(&self) -> Result<&DynamoLedger> {
        self.ledger
            .get_or_try_init(|| async { Ok(DynamoLedger::new(&self.config, self.outputs().await?.table.clone())) })
            .await
    }

    async fn describe_stack(&self) -> Result<StackOutputs> {
        let client = aws_sdk_cloudformation::Client::new(&self.config);
        let region = self.config.region().map_or_else(|| "the default Region".to_string(), ToString::to_string);
        let answer = client.describe_stacks().stack_name(&self.stack).send().await.map_err(|error| {
            Error::Other(format!(
                "cannot read stack {:?} in {region} (--stack names the stack `sam deploy` created): {}",
                self.stack,
                aws_sdk_cloudformation::error::DisplayErrorContext(&error)
            ))
        })?;
        let stack = answer.stacks().first().ok_or_else(|| Error::Other(format!("stack {:?} not found", self.stack)))?;
        let output = |key: &str| {
            stack
                .outputs()
                .iter()
                .find(|o| o.output_key() == Some(key))
                .and_then(|o| o.output_value())
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::Other(format!("stack {:?} has no output {key}: is it a deckhand stack?", self.stack))
                })
        };
        Ok(StackOutputs {
            deploy_machine: output("StateMachineArn")?,
            table: output("StateTableName")?,
            hook_function: output("HookFunctionArn").ok(),
            hook_role: output("HookRoleArn").ok(),
        })
    }
}

/// An SDK error as one line (what failed, and AWS's code and message).
pub fn sdk_error<E: std::error::Error>(operation: &str, error: E) -> Error {
    Error::Other(format!("{operation}: {}", aws_sdk_sfn::error::DisplayErrorContext(&error)))
}
