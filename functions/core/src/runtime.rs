//! What every function's `main` shares: logging setup and the clock.

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
