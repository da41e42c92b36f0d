//! Lock: acquire, renew or release a service's deployment lock; release records the known-good
//! revision. Also parks a push on its approval (the approval gate, which comes before the lock).

use deckhand_core::app::approval::{await_approval, Waiter, Waiting};
use deckhand_core::app::lock::{acquire, protect_known_good, release, renew};
use deckhand_core::app::settings::{account_registry, event_bus, lock_ttl_seconds, state_table};
use deckhand_core::aws::ecr::EcrAdapter;
use deckhand_core::aws::eventbridge::EventBridgeAdapter;
use deckhand_core::aws::{dynamodb::DynamoLedger, ecs::EcsAdapter, load_config, sfn::SfnAdapter};
use deckhand_core::domain::events::Status;
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
    /// Extends the lease while a long rollout is watched.
    #[serde(rename_all = "camelCase")]
    Renew { target: Target, execution_arn: String },
    /// Parks a push on its approval (`lambda:invoke.waitForTaskToken`) and announces it.
    #[serde(rename_all = "camelCase")]
    AwaitApproval {
        target: Target,
        execution_arn: String,
        #[serde(default)]
        parent_execution_arn: Option<String>,
        task_token: String,
    },
    #[serde(rename_all = "camelCase")]
    Release {
        target: Target,
        execution_arn: String,
        #[serde(default)]
        verified_task_definition: Option<String>,
        /// How the deployment ended (an event status), for the service's history.
        #[serde(default)]
        outcome: Option<Status>,
    },
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let ttl = lock_ttl_seconds()? as f64;
    let config = load_config().await;
    let ledger = DynamoLedger::new(&config, state_table()?);
    let (executions, ecs) = (SfnAdapter::new(&config), EcsAdapter::new(&config));
    let sink = EventBridgeAdapter::new(&config, event_bus());
    let (registry, account_registry) = (EcrAdapter::new(&config), account_registry().unwrap_or_default());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ledger, executions, ecs, sink) = (&ledger, &executions, &ecs, &sink);
        let (registry, account_registry) = (&registry, account_registry.as_str());
        async move {
            let request: Request = runtime::input(event.payload)?;
            match request {
                Request::Acquire { target, execution_arn } => {
                    let result = acquire(ledger, executions, ecs, &target, &execution_arn, runtime::now(), ttl).await?;
                    runtime::output(result)
                }
                Request::Renew { target, execution_arn } => {
                    let expires_at = renew(ledger, &target, &execution_arn, runtime::now(), ttl).await?;
                    // A bare number: the state machine writes it over the lock's `expiresAt`.
                    Ok::<Value, DeckhandError>(json!(expires_at))
                }
                Request::AwaitApproval { target, execution_arn, parent_execution_arn, task_token } => {
                    let waiter = Waiter {
                        execution_arn: &execution_arn,
                        parent_execution_arn: parent_execution_arn.as_deref(),
                        token: &task_token,
                    };
                    let waiting =
                        await_approval(ledger, executions, ecs, sink, &target, &waiter, runtime::now()).await?;
                    Ok(json!({ "parked": matches!(waiting, Waiting::Parked(_)) }))
                }
                Request::Release { target, execution_arn, verified_task_definition, outcome } => {
                    let verified = verified_task_definition.as_deref();
                    let released = release(ledger, &target, &execution_arn, verified, outcome, runtime::now()).await?;
                    let Some(verified) = verified else { return Ok(json!({"released": true})) };
                    // Known-good images get a tag of their own so that ECR lifecycle rules that
                    // expire untagged images keep them; a failure is a warning (logged and in
                    // this output), never a failed deployment.
                    let protection =
                        protect_known_good(ecs, registry, account_registry, &target, verified, &released).await;
                    Ok(json!({"released": true, "protection": protection}))
                }
            }
        }
    }))
    .await
}
