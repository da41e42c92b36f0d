//! Notify: publish a service's deployment event and return its result; or, at the end of a
//! push's fan-out, sum up what became of its services.

use deckhand_core::app::notify::{notify, Branch};
use deckhand_core::app::settings::event_bus;
use deckhand_core::app::summary::{summarize, FanOut};
use deckhand_core::aws::{eventbridge::EventBridgeAdapter, load_config};
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
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let sink = &sink;
        async move {
            match runtime::input(event.payload)? {
                Request::Event { status, branch } => runtime::output(notify(sink, status, &branch).await?),
                Request::Summary { summary } => runtime::output(summarize(&summary)),
            }
        }
    }))
    .await
}
