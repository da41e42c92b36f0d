//! Errors whose variant names are the Step Functions error names that Retry/Catch match.
//!
//! `lambda_runtime` reports `Diagnostic::error_type` as the Lambda `errorType`, which Step
//! Functions uses as the error name of a failed Task state. Renaming a variant is therefore a
//! breaking change of the state machine contract.

use lambda_runtime::Diagnostic;

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DeckhandError {
    /// The request is malformed or refers to something deckhand must not touch. Never retried.
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    /// Another execution holds the service lock. Retried by the state machine with backoff.
    #[error("service {service} is locked by {holder}")]
    LockBusy { service: String, holder: String },
    /// The service lock this execution held was taken over (its holder was judged dead).
    #[error("lost the lock of {service} to {holder}")]
    LockLost { service: String, holder: String },
    /// AWS throttled us. Retried with backoff (after the SDK's own retries).
    #[error("throttled by AWS: {0}")]
    AwsThrottled(String),
    /// A transient AWS or network fault (5xx, timeout, connection reset). Retried.
    #[error("transient AWS fault: {0}")]
    AwsTransient(String),
    /// AWS refused the call for a reason retrying will not fix.
    #[error("AWS call failed: {0}")]
    AwsRequestFailed(String),
    /// Something the deployment needs does not exist (any more).
    #[error("not found: {0}")]
    ResourceNotFound(String),
    /// There is no verified or previously completed revision to roll back to.
    #[error("no known-good revision for {0}")]
    NoKnownGoodRevision(String),
    /// The function's own configuration (environment) is wrong.
    #[error("configuration: {0}")]
    ConfigurationError(String),
}

impl DeckhandError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput { field: field.into(), message: message.into() }
    }

    /// The stable error name seen by Step Functions.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidInput { .. } => "InvalidInput",
            Self::LockBusy { .. } => "LockBusy",
            Self::LockLost { .. } => "LockLost",
            Self::AwsThrottled(_) => "AwsThrottled",
            Self::AwsTransient(_) => "AwsTransient",
            Self::AwsRequestFailed(_) => "AwsRequestFailed",
            Self::ResourceNotFound(_) => "ResourceNotFound",
            Self::NoKnownGoodRevision(_) => "NoKnownGoodRevision",
            Self::ConfigurationError(_) => "ConfigurationError",
        }
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::LockBusy { .. } | Self::AwsThrottled(_) | Self::AwsTransient(_))
    }
}

impl From<DeckhandError> for Diagnostic {
    fn from(error: DeckhandError) -> Self {
        Diagnostic { error_type: error.name().to_string(), error_message: error.to_string() }
    }
}

pub type Result<T, E = DeckhandError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_carries_the_step_functions_error_name() {
        let diagnostic: Diagnostic = DeckhandError::invalid("cluster", "must be a string").into();
        assert_eq!(diagnostic.error_type, "InvalidInput");
        assert_eq!(diagnostic.error_message, "cluster: must be a string");
        let busy: Diagnostic = DeckhandError::LockBusy { service: "prod/api".into(), holder: "arn:x".into() }.into();
        assert_eq!(busy.error_type, "LockBusy");
    }

    #[test]
    fn only_contention_and_transient_faults_are_retryable() {
        assert!(DeckhandError::AwsThrottled("x".into()).is_retryable());
        assert!(DeckhandError::AwsTransient("x".into()).is_retryable());
        assert!(!DeckhandError::invalid("a", "b").is_retryable());
        assert!(!DeckhandError::AwsRequestFailed("x".into()).is_retryable());
    }
}
