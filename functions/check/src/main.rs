//! Check: judge a rollout PENDING, HEALTHY or FAILED from ECS and the load balancer. Given a
//! `taskToken` (the `.waitForTaskToken` watch), it parks the watcher on ECS events and judges
//! once at once; the state machine then waits until the token is completed.

use deckhand_core::app::check::{check, CheckRequest};
use deckhand_core::app::settings::state_table;
use deckhand_core::app::watch::{park, Woken};
use deckhand_core::aws::{
    cloudwatch::CloudWatchAdapter, dynamodb::DynamoLedger, ecs::EcsAdapter, elb::ElbAdapter, load_config,
    sfn::SfnAdapter,
};
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    #[serde(flatten)]
    check: CheckRequest,
    #[serde(default)]
    task_token: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let (ecs, elb, alarms) = (EcsAdapter::new(&config), ElbAdapter::new(&config), CloudWatchAdapter::new(&config));
    let (waiters, tokens) = (DynamoLedger::new(&config, state_table()?), SfnAdapter::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ecs, elb, alarms, waiters, tokens) = (&ecs, &elb, &alarms, &waiters, &tokens);
        async move {
            let request: Request = runtime::input(event.payload)?;
            match request.task_token {
                None => runtime::output(check(ecs, elb, alarms, &request.check, runtime::now()).await?),
                Some(token) => {
                    let woken = park(waiters, tokens, ecs, elb, alarms, &request.check, &token, runtime::now()).await?;
                    let parked = matches!(woken, Woken::StillWaiting(_));
                    runtime::output(serde_json::json!({ "parked": parked }))
                }
            }
        }
    }))
    .await
}
