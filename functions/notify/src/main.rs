//! Notify: publish a service's deployment event and return its result; or, at the end of a
//! push's fan-out, sum up what became of its services.
//!
//! The same binary is the stack's AnnounceFunction: given one of deckhand's own events (as the
//! EventBridge rule on them delivers it), it posts the chat message (when the stack has a chat
//! topic) and writes the metrics record of an end to its log (Embedded Metric Format).

use deckhand_core::app::announce::{announce, EventEnvelope};
use deckhand_core::app::notify::{notify, Branch};
use deckhand_core::app::settings::{chat_topic, event_bus};
use deckhand_core::app::summary::{summarize, FanOut};
use deckhand_core::aws::{eventbridge::EventBridgeAdapter, load_config, sns::SnsAdapter};
use deckhand_core::domain::events::Status;
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum Request {
    Event { status: Status, branch: Box<Branch> },
    Summary { summary: FanOut },
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let sink = EventBridgeAdapter::new(&config, event_bus());
    let chat = chat_topic().map(|topic| SnsAdapter::new(&config, topic));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (sink, chat) = (&sink, chat.as_ref());
        async move {
            if EventEnvelope::is_deckhand_event(&event.payload) {
                let envelope: EventEnvelope = runtime::input(event.payload)?;
                let announced = announce(chat, &envelope, (runtime::now() * 1000.0) as i64).await?;
                // The record is its own log line: CloudWatch Logs turns it into metrics.
                if let Some(record) = &announced.metrics {
                    println!("{record}");
                }
                return runtime::output(
                    serde_json::json!({"chatted": announced.chatted, "metrics": announced.metrics.is_some()}),
                );
            }
            match runtime::input(event.payload)? {
                Request::Event { status, branch } => runtime::output(notify(sink, status, &branch).await?),
                Request::Summary { summary } => runtime::output(summarize(&summary)),
            }
        }
    }))
    .await
}
