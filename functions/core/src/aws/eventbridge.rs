//! EventBridge adapter: publishes deployment events.

use super::classify;
use crate::domain::events::{DeploymentEvent, EVENT_DETAIL_TYPE, EVENT_SOURCE};
use crate::error::{DeckhandError, Result};
use crate::ports::EventSink;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

pub struct EventBridgeAdapter {
    client: Client,
    bus: String,
}

impl EventBridgeAdapter {
    pub fn new(config: &aws_config::SdkConfig, bus: String) -> Self {
        Self { client: Client::new(config), bus }
    }
}

impl EventSink for EventBridgeAdapter {
    async fn publish(&self, event: &DeploymentEvent) -> Result<()> {
        let detail = serde_json::to_string(event).map_err(|e| DeckhandError::AwsRequestFailed(e.to_string()))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(EVENT_DETAIL_TYPE)
            .resources(&event.execution_arn)
            .detail(detail)
            .build();
        let output = self.client.put_events().entries(entry).send().await.map_err(|e| classify("PutEvents", e))?;
        if output.failed_entry_count() > 0 {
            let why = output.entries().iter().find_map(|e| e.error_message()).unwrap_or("unknown").to_string();
            // PutEvents reports throttling per entry; let the state machine retry it.
            return Err(DeckhandError::AwsTransient(format!("PutEvents rejected the event: {why}")));
        }
        Ok(())
    }
}
