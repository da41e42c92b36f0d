//! Notify: publish a service's deployment event and return its result.

use deckhand_core::app::notify::{notify, Branch};
use deckhand_core::app::settings::event_bus;
use deckhand_core::aws::{eventbridge::EventBridgeAdapter, load_config};
use deckhand_core::domain::events::Status;
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Request {
    status: Status,
    branch: Branch,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let sink = EventBridgeAdapter::new(&config, event_bus());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let sink = &sink;
        async move {
            let request: Request = runtime::input(event.payload)?;
            let result = notify(sink, request.status, &request.branch).await?;
            runtime::output(result)
        }
    }))
    .await
}
