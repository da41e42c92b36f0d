//! Signal: an ECS deployment or task state change (EventBridge) wakes the rollout watcher
//! parked on that service, if the live state is one the state machine acts on. Events that
//! concern no watcher, duplicates and stale ones change nothing.

use deckhand_core::app::settings::state_table;
use deckhand_core::app::watch::{signal, Woken, REREAD_AFTER};
use deckhand_core::aws::{
    cloudwatch::CloudWatchAdapter, dynamodb::DynamoLedger, ecs::EcsAdapter, elb::ElbAdapter, load_config,
    sfn::SfnAdapter,
};
use deckhand_core::error::DeckhandError;
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let (ecs, elb, alarms) = (EcsAdapter::new(&config), ElbAdapter::new(&config), CloudWatchAdapter::new(&config));
    let (waiters, tokens) = (DynamoLedger::new(&config, state_table()?), SfnAdapter::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ecs, elb, alarms, waiters, tokens) = (&ecs, &elb, &alarms, &waiters, &tokens);
        async move {
            if !event.payload.is_object() {
                return Err(DeckhandError::invalid("input", "expected an EventBridge event (a JSON object)"));
            }
            let woken =
                signal(waiters, tokens, ecs, elb, alarms, &event.payload, runtime::now(), &REREAD_AFTER).await?;
            let answer = match woken {
                Woken::Woke(health) => json!({"woke": true, "verdict": health.verdict, "reason": health.reason}),
                Woken::StillWaiting(health) => json!({"woke": false, "reason": health.reason}),
                Woken::Ignored(why) => json!({"woke": false, "ignored": why}),
            };
            tracing::info!(%answer, "ECS event handled");
            runtime::output(answer)
        }
    }))
    .await
}
