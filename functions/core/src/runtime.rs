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

/// For optional parts of a function's input that a state may leave empty: `null` and `{}` are
/// "absent"; anything else must parse, so a malformed document is an error, never silently None.
pub fn absent_or_parse<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize;
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Object(map) if map.is_empty() => Ok(None),
        value => serde_json::from_value(value).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Health;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(default, deserialize_with = "absent_or_parse")]
        health: Option<Health>,
    }

    #[test]
    fn only_absent_null_or_empty_parts_are_none() {
        for absent in [json_doc("{}"), json_doc(r#"{"health": null}"#), json_doc(r#"{"health": {}}"#)] {
            assert!(absent.unwrap().health.is_none());
        }
        let present = json_doc(r#"{"health": {"verdict": "HEALTHY", "reason": "ok"}}"#).unwrap();
        assert_eq!(present.health.unwrap().reason, "ok");
    }

    #[test]
    fn a_malformed_part_is_an_error_not_none() {
        let error = json_doc(r#"{"health": {"verdict": "MAYBE"}}"#).err().expect("refused");
        assert!(error.to_string().contains("MAYBE"), "{error}");
    }

    fn json_doc(text: &str) -> serde_json::Result<Doc> {
        serde_json::from_str(text)
    }
}
