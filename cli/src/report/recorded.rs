//! Recorded histories (`deckhand report --from-history FILE`): executions' histories as
//! GetExecutionHistory answers them (the AWS CLI's `get-execution-history` output, or boto3's
//! with its timestamps as epoch seconds), so that a push can be drawn without AWS.
//!
//! ```json
//! {"executions": [{"executionArn": "arn:…", "events": [{"id": 1, "type": "ExecutionStarted",
//!   "timestamp": 1796000000.25, "executionStartedEventDetails": {"input": "{…}"}}, …]}]}
//! ```

use super::timeline::Recorded;
use crate::output::{Error, Result};
use crate::steps::{Details, Event};
use aws_smithy_types::date_time::{DateTime, Format};
use serde_json::Value;

pub fn parse(text: &str) -> Result<Vec<Recorded>> {
    let bad = |why: &str| Error::InvalidInput(format!("recorded history: {why}"));
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let executions = doc.get("executions").and_then(Value::as_array).ok_or_else(|| bad("no \"executions\" list"))?;
    executions
        .iter()
        .map(|execution| {
            let arn = execution.get("executionArn").and_then(Value::as_str).ok_or_else(|| bad("no executionArn"))?;
            let raw = execution.get("events").and_then(Value::as_array).ok_or_else(|| bad("no events"))?;
            let mut events = raw
                .iter()
                .map(event)
                .collect::<Option<Vec<Event>>>()
                .ok_or_else(|| bad(&format!("{arn}: every event needs an id, a type and a timestamp")))?;
            events.sort_by_key(|e| e.id);
            Ok(Recorded { execution: arn.to_string(), events })
        })
        .collect()
}

fn event(raw: &Value) -> Option<Event> {
    let text = |doc: &Value, key: &str| doc.get(key).and_then(Value::as_str).map(str::to_string);
    let details = raw.as_object()?.iter().find(|(key, _)| key.ends_with("EventDetails")).map(|(_, d)| d);
    let (name, input, output, error, cause) = match details {
        Some(d) => (text(d, "name"), text(d, "input"), text(d, "output"), text(d, "error"), text(d, "cause")),
        None => (None, None, None, None, None),
    };
    let details = Details {
        name: name.as_deref(),
        input: input.as_deref(),
        output: output.as_deref(),
        error: error.as_deref(),
        cause: cause.as_deref(),
    };
    Some(Event::reduced(
        raw.get("id")?.as_i64()?,
        raw.get("type")?.as_str()?,
        timestamp(raw.get("timestamp")?)?,
        details,
    ))
}

/// Epoch seconds, or an RFC 3339 time (the AWS CLI's).
fn timestamp(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => DateTime::from_str(text, Format::DateTime).ok().map(|t| t.as_secs_f64()),
        _ => None,
    }
}
