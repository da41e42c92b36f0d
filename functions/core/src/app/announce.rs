//! Announce: deckhand's own events, as EventBridge delivers them, turned into a chat message
//! (when the stack has a chat topic) and, for an end, an EMF metrics record for the log.

use crate::domain::announce::{chat_message, is_chat_worthy, metrics_record, Origin};
use crate::domain::events::{DeploymentEvent, EVENT_DETAIL_TYPE, EVENT_SOURCE};
use crate::error::{DeckhandError, Result};
use crate::ports::Chat;
use serde::Deserialize;
use serde_json::Value;

/// An EventBridge event as a rule delivers it to a function.
#[derive(Debug, Clone, Deserialize)]
pub struct EventEnvelope {
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub region: String,
    pub detail: Value,
}

impl EventEnvelope {
    /// Whether an invocation's payload is one of deckhand's deployment events (the announce
    /// function shares its binary with the notify function).
    pub fn is_deckhand_event(payload: &Value) -> bool {
        payload.get("source").and_then(Value::as_str) == Some(EVENT_SOURCE)
            && payload.get("detail-type").and_then(Value::as_str) == Some(EVENT_DETAIL_TYPE)
    }
}

/// What was done with one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Announced {
    pub chatted: bool,
    /// The EMF record to write to the function's log (CloudWatch makes metrics of it).
    pub metrics: Option<Value>,
}

pub async fn announce(chat: Option<&impl Chat>, envelope: &EventEnvelope, now_ms: i64) -> Result<Announced> {
    if envelope.source != EVENT_SOURCE || envelope.detail_type != EVENT_DETAIL_TYPE {
        return Err(DeckhandError::invalid(
            "source",
            format!("not a deckhand event: {} / {}", envelope.source, envelope.detail_type),
        ));
    }
    let event: DeploymentEvent =
        serde_json::from_value(envelope.detail.clone()).map_err(|e| DeckhandError::invalid("detail", e.to_string()))?;
    let mut chatted = false;
    if let Some(chat) = chat.filter(|_| is_chat_worthy(event.status)) {
        chat.post(&chat_message(&event, &Origin { region: &envelope.region })).await?;
        chatted = true;
    }
    Ok(Announced { chatted, metrics: metrics_record(&event, now_ms) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeCloud;
    use serde_json::json;

    fn envelope(status: &str) -> EventEnvelope {
        serde_json::from_value(json!({
            "version": "0", "id": "e1", "source": "deckhand", "detail-type": "Deckhand Deployment State Change",
            "account": "123456789012", "region": "eu-west-1", "time": "2026-12-07T03:00:00Z", "resources": [],
            "detail": {"cluster": "prod", "service": "api", "image": "web=shop@sha256:ab", "status": status, "reason": "ok",
                       "executionArn": "arn:aws:states:eu-west-1:123456789012:execution:deckhand:e1", "trigger": "push"}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn an_end_is_chatted_and_counted_a_start_only_chatted() {
        let cloud = FakeCloud::default();
        let done = announce(Some(&cloud), &envelope("SUCCEEDED"), 5).await.unwrap();
        assert!(done.chatted && done.metrics.is_some());
        let started = announce(Some(&cloud), &envelope("STARTED"), 5).await.unwrap();
        assert!(started.chatted && started.metrics.is_none());
        let posted = cloud.with(|s| s.chat.clone());
        assert_eq!(posted.len(), 2);
        assert!(posted[0]["content"]["nextSteps"].to_string().contains("region=eu-west-1"), "{}", posted[0]);
        let quiet = announce(None::<&FakeCloud>, &envelope("ROLLED_BACK"), 5).await.unwrap();
        assert!(!quiet.chatted && quiet.metrics.is_some(), "no topic: metrics only");
    }

    #[tokio::test]
    async fn anything_else_is_refused_as_invalid_input() {
        let mut other = envelope("SUCCEEDED");
        other.source = "aws.ecs".into();
        let error = announce(None::<&FakeCloud>, &other, 5).await.unwrap_err();
        assert_eq!(error.name(), "InvalidInput");
        assert!(EventEnvelope::is_deckhand_event(
            &json!({"source": "deckhand", "detail-type": "Deckhand Deployment State Change"})
        ));
    }
}
