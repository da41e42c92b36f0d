//! Deploy: register the new task-definition revision and update the service.

use deckhand_core::app::deploy::deploy;
use deckhand_core::app::lock::LockResult;
use deckhand_core::aws::{ecr::EcrAdapter, ecs::EcsAdapter, load_config};
use deckhand_core::domain::model::Target;
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Request {
    target: Target,
    /// The lock this deployment holds, with the revision that was COMPLETED when it was taken.
    #[serde(default, deserialize_with = "runtime::absent_or_parse")]
    lock: Option<LockResult>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let (ecs, registry) = (EcsAdapter::new(&config), EcrAdapter::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ecs, registry) = (&ecs, &registry);
        async move {
            let request: Request = runtime::input(event.payload)?;
            let previous = request.lock.as_ref().and_then(|l| l.previous_task_definition.as_deref());
            let rollout = deploy(ecs, registry, &request.target, previous, runtime::now()).await?;
            runtime::output(rollout)
        }
    }))
    .await
}
