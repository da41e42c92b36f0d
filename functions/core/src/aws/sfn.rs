//! Step Functions adapter: is a lock holder's execution still running?

use super::classify;
use crate::domain::ledger::HolderStatus;
use crate::error::Result;
use crate::ports::Executions;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
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
            // An execution that no longer exists (history past retention) cannot hold a lock.
            Err(error)
                if matches!(error.as_service_error(), Some(DescribeExecutionError::ExecutionDoesNotExist(_))) =>
            {
                Ok(HolderStatus::Gone)
            }
            Err(error) => Err(classify("DescribeExecution", error)),
        }
    }
}
