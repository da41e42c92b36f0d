//! Lock: acquire or release a service's deployment lock; release records the known-good revision.

use deckhand_core::app::lock::{acquire, release};
use deckhand_core::app::settings::{lock_ttl_seconds, state_table};
use deckhand_core::aws::{dynamodb::DynamoLedger, load_config, sfn::SfnAdapter};
use deckhand_core::domain::model::Target;
use deckhand_core::{runtime, DeckhandError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
enum Request {
    #[serde(rename_all = "camelCase")]
    Acquire { target: Target, execution_arn: String },
    #[serde(rename_all = "camelCase")]
    Release {
        target: Target,
        execution_arn: String,
        #[serde(default)]
        verified_task_definition: Option<String>,
    },
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let ttl = lock_ttl_seconds()? as f64;
    let config = load_config().await;
    let (ledger, executions) = (DynamoLedger::new(&config, state_table()?), SfnAdapter::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ledger, executions) = (&ledger, &executions);
        async move {
            let request: Request = runtime::input(event.payload)?;
            match request {
                Request::Acquire { target, execution_arn } => {
                    let result = acquire(ledger, executions, &target, &execution_arn, runtime::now(), ttl).await?;
                    runtime::output(result)
                }
                Request::Release { target, execution_arn, verified_task_definition } => {
                    release(ledger, &target, &execution_arn, verified_task_definition.as_deref(), runtime::now())
                        .await?;
                    Ok::<Value, DeckhandError>(json!({"released": true}))
                }
            }
        }
    }))
    .await
}
