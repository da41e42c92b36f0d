//! Rollback: point the service back at its last known-good revision.

use deckhand_core::app::lock::LockResult;
use deckhand_core::app::rollback::{rollback, Images, Undo};
use deckhand_core::app::settings::{account_registry, state_table};
use deckhand_core::aws::{dynamodb::DynamoLedger, ecr::EcrAdapter, ecs::EcsAdapter, load_config};
use deckhand_core::domain::model::{Rollout, Target};
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    target: Target,
    /// The failed deployment; absent or `{}` when the failure came before UpdateService.
    #[serde(default, deserialize_with = "runtime::absent_or_parse")]
    failed: Option<Rollout>,
    /// The lock the deployment holds, with the revision COMPLETED when it was taken.
    #[serde(default, deserialize_with = "runtime::absent_or_parse")]
    lock: Option<LockResult>,
    #[serde(default)]
    dry_run: bool,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let (ecs, ledger) = (EcsAdapter::new(&config), DynamoLedger::new(&config, state_table()?));
    // A candidate whose image is gone from the account's registry is passed over.
    let (registry, account_registry) = (EcrAdapter::new(&config), account_registry().unwrap_or_default());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ecs, ledger) = (&ecs, &ledger);
        let images = Images::new(&registry, account_registry.as_str());
        async move {
            let request: Request = runtime::input(event.payload)?;
            let undo = Undo {
                failed: request.failed.as_ref(),
                previous: request.lock.as_ref().and_then(|l| l.previous_task_definition.as_deref()),
            };
            let rollout = rollback(ecs, ledger, images, &request.target, undo, request.dry_run, runtime::now()).await?;
            runtime::output(rollout)
        }
    }))
    .await
}
