//! Rollback: point the service back at its last known-good revision.

use deckhand_core::app::rollback::rollback;
use deckhand_core::app::settings::state_table;
use deckhand_core::aws::{dynamodb::DynamoLedger, ecs::EcsAdapter, load_config};
use deckhand_core::domain::model::{Rollout, Target};
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    target: Target,
    /// The failed deployment; absent or `{}` when the failure came before UpdateService.
    #[serde(default, deserialize_with = "rollout_if_any")]
    failed: Option<Rollout>,
    #[serde(default)]
    dry_run: bool,
}

fn rollout_if_any<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Rollout>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(deserializer)?).ok())
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let (ecs, ledger) = (EcsAdapter::new(&config), DynamoLedger::new(&config, state_table()?));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ecs, ledger) = (&ecs, &ledger);
        async move {
            let request: Request = runtime::input(event.payload)?;
            let rollout =
                rollback(ecs, ledger, &request.target, request.failed.as_ref(), request.dry_run, runtime::now())
                    .await?;
            runtime::output(rollout)
        }
    }))
    .await
}
