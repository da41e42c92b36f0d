//! Step Functions adapter: is a lock holder's execution still running?

use super::classify;
use crate::domain::ledger::HolderStatus;
use crate::error::{DeckhandError, Result};
use crate::ports::Executions;
use aws_sdk_sfn::types::ExecutionStatus;
use aws_sdk_sfn::Client;

pub struct SfnAdapter {
    client: Client,
}

impl SfnAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: Client::new(config) }
    }
}

impl Executions for SfnAdapter {
    async fn status(&self, execution_arn: &str) -> Result<HolderStatus> {
        match self.client.describe_execution().execution_arn(execution_arn).send().await {
            Ok(output) if output.status() == &ExecutionStatus::Running => Ok(HolderStatus::Running),
            Ok(_) => Ok(HolderStatus::Gone),
            Err(error) => match classify("DescribeExecution", error) {
                // An execution that no longer exists cannot hold a lock.
                DeckhandError::ResourceNotFound(_) => Ok(HolderStatus::Gone),
                DeckhandError::AwsRequestFailed(m) if m.contains("ExecutionDoesNotExist") => Ok(HolderStatus::Gone),
                other => Err(other),
            },
        }
    }
}
