//! What every function's `main` shares: logging setup and the clock.

use crate::error::{DeckhandError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// Structured logs: JSON when Lambda's log format says so (`AWS_LAMBDA_LOG_FORMAT=JSON`), text
/// otherwise. Never log environment values or task-definition contents.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Epoch seconds now.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A function's input document; a shape error is the caller's fault (`InvalidInput`).
pub fn input<T: DeserializeOwned>(payload: Value) -> Result<T> {
    serde_json::from_value(payload).map_err(|e| DeckhandError::invalid("input", e.to_string()))
}

/// A function's output document.
pub fn output<T: Serialize>(value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| DeckhandError::AwsRequestFailed(format!("unserialisable output: {e}")))
}
