//! Adapters: the ports implemented with the AWS SDK for Rust.
//!
//! The SDK honours `AWS_ENDPOINT_URL` (and per-service variants), which is how the functions
//! reach the local cloud in tests.

pub mod cloudwatch;
pub mod dynamodb;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod eventbridge;
pub mod sfn;
pub mod sns;

use crate::error::DeckhandError;
use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Shared SDK configuration, loaded once per cold start.
pub async fn load_config() -> SdkConfig {
    // Standard retry mode: exponential backoff with jitter on throttling and transient faults,
    // and a client-side retry quota so a struggling service is not hammered. Four attempts (up
    // to ~7 s of backoff) absorb a bucket's refill (ECS refills its read buckets at 20/s) inside
    // the functions' 30 s timeout; what the SDK gives up on reaches the state machine as
    // AwsThrottled/AwsTransient, whose Retry waits longer. Not the adaptive mode: its client-side
    // rate limiter lives in one process, and each Lambda sandbox is its own process, so it would
    // only slow the first calls of every cold start without seeing the account's real rate.
    aws_config::from_env().retry_config(RetryConfig::standard().with_max_attempts(4)).load().await
}

const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "SlowDown",
];
const TRANSIENT: &[&str] = &[
    "ServerException",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
];
const NOT_FOUND: &[&str] = &[
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "ResourceNotFoundException",
    "TargetGroupNotFound",
    "RepositoryNotFoundException",
    "ImageNotFoundException",
];

/// Maps an SDK error onto deckhand's error names (what Step Functions retries or catches).
pub(crate) fn classify<E, R>(operation: &str, error: SdkError<E, R>) -> DeckhandError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let message = format!("{operation}: {}", DisplayErrorContext(&error));
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            DeckhandError::AwsTransient(message)
        }
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) if THROTTLING.contains(&code) => DeckhandError::AwsThrottled(message),
            Some(code) if TRANSIENT.contains(&code) => DeckhandError::AwsTransient(message),
            Some(code) if NOT_FOUND.contains(&code) => DeckhandError::ResourceNotFound(message),
            _ => DeckhandError::AwsRequestFailed(message),
        },
        _ => DeckhandError::AwsRequestFailed(message),
    }
}

/// Epoch seconds of an SDK timestamp.
pub(crate) fn seconds(time: Option<&aws_smithy_types::DateTime>) -> Option<f64> {
    time.map(aws_smithy_types::DateTime::as_secs_f64)
}
