//! Check: judge a rollout PENDING, HEALTHY or FAILED from ECS and the load balancer.

use deckhand_core::app::check::check;
use deckhand_core::aws::{ecs::EcsAdapter, elb::ElbAdapter, load_config};
use deckhand_core::domain::model::{Health, Rollout, Target};
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Request {
    target: Target,
    rollout: Rollout,
    #[serde(default)]
    health: Health,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let (ecs, elb) = (EcsAdapter::new(&config), ElbAdapter::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ecs, elb) = (&ecs, &elb);
        async move {
            let request: Request = runtime::input(event.payload)?;
            let health = check(ecs, elb, &request.target, &request.rollout, &request.health, runtime::now()).await?;
            runtime::output(health)
        }
    }))
    .await
}
