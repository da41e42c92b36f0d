//! Deploy: register the new task-definition revision and update the service.

use deckhand_core::app::deploy::deploy;
use deckhand_core::aws::{ecs::EcsAdapter, load_config};
use deckhand_core::domain::model::Target;
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Request {
    target: Target,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let ecs = EcsAdapter::new(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let ecs = &ecs;
        async move {
            let request: Request = runtime::input(event.payload)?;
            let rollout = deploy(ecs, &request.target, runtime::now()).await?;
            runtime::output(rollout)
        }
    }))
    .await
}
