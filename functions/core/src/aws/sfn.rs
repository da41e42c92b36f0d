//! Step Functions adapter: is a lock holder's execution still running? And completing the task
//! token a rollout watcher waits on.

use super::classify;
use crate::domain::ledger::HolderStatus;
use crate::error::{DeckhandError, Result};
use crate::ports::{Executions, TaskTokens, TokenOutcome};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use aws_sdk_sfn::types::ExecutionStatus;
use aws_sdk_sfn::Client;
use serde_json::Value;

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

impl TaskTokens for SfnAdapter {
    async fn complete(&self, token: &str, output: &Value) -> Result<TokenOutcome> {
        let output = serde_json::to_string(output).map_err(|e| DeckhandError::AwsRequestFailed(e.to_string()))?;
        match self.client.send_task_success().task_token(token).output(output).send().await {
            Ok(_) => Ok(TokenOutcome::Completed),
            // SendTaskSuccess answers TaskTimedOut for a task that already ended and
            // TaskDoesNotExist for an unknown one (API reference, SendTaskSuccess "Errors").
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(SendTaskSuccessError::TaskTimedOut(_) | SendTaskSuccessError::TaskDoesNotExist(_))
                ) =>
            {
                Ok(TokenOutcome::AlreadyClosed)
            }
            Err(error) => Err(classify("SendTaskSuccess", error)),
        }
    }

    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<TokenOutcome> {
        match self.client.send_task_failure().task_token(token).error(error).cause(cause).send().await {
            Ok(_) => Ok(TokenOutcome::Completed),
            // The same two answers as SendTaskSuccess (API reference, SendTaskFailure "Errors").
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(SendTaskFailureError::TaskTimedOut(_) | SendTaskFailureError::TaskDoesNotExist(_))
                ) =>
            {
                Ok(TokenOutcome::AlreadyClosed)
            }
            Err(error) => Err(classify("SendTaskFailure", error)),
        }
    }
}
