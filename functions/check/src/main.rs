//! Check: judge a rollout PENDING, HEALTHY or FAILED from ECS and the load balancer. Given a
//! `taskToken` (the `.waitForTaskToken` watch), it parks the watcher on ECS events and judges
//! once at once; the state machine then waits until the token is completed.
//!
//! The same binary is deckhand's ECS lifecycle hook (the stack's HookFunction): invoked by ECS
//! with a lifecycle-hook event, it answers `hookStatus` from the same observations and gates.

use deckhand_core::app::check::{check, CheckRequest};
use deckhand_core::app::hook::answer_hook;
use deckhand_core::app::settings::{default_policy, state_table};
use deckhand_core::app::watch::{park, Woken};
use deckhand_core::aws::{
    cloudwatch::CloudWatchAdapter, dynamodb::DynamoLedger, ecs::EcsAdapter, elb::ElbAdapter, load_config,
    sfn::SfnAdapter,
};
use deckhand_core::domain::hook::HookEvent;
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
    let defaults = default_policy()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ecs, elb, alarms, waiters, tokens, defaults) = (&ecs, &elb, &alarms, &waiters, &tokens, &defaults);
        async move {
            if HookEvent::is_hook_event(&event.payload) {
                let hook: HookEvent = runtime::input(event.payload)?;
                return runtime::output(answer_hook(ecs, elb, alarms, waiters, defaults, &hook, runtime::now()).await?);
            }
            let request: Request = runtime::input(event.payload)?;
            match request.task_token {
                None => runtime::output(check(ecs, elb, alarms, waiters, &request.check, runtime::now()).await?),
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
