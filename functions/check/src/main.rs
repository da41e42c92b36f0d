//! Check: judge a rollout PENDING, HEALTHY or FAILED from ECS and the load balancer.

use deckhand_core::app::check::check;
use deckhand_core::app::lock::LockResult;
use deckhand_core::aws::{ecs::EcsAdapter, elb::ElbAdapter, load_config};
use deckhand_core::domain::model::{Health, Rollout, Target};
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    target: Target,
    rollout: Rollout,
    #[serde(default)]
    health: Health,
    #[serde(default, deserialize_with = "runtime::absent_or_parse")]
    lock: Option<LockResult>,
    /// The check that ends a bake: if it is not HEALTHY the rollout goes back to waiting, and
    /// from then on its deadline includes the bake.
    #[serde(default)]
    after_bake: bool,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let config = load_config().await;
    let (ecs, elb) = (EcsAdapter::new(&config), ElbAdapter::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ecs, elb) = (&ecs, &elb);
        async move {
            let mut request: Request = runtime::input(event.payload)?;
            request.health.baked |= request.after_bake;
            let health = check(
                ecs,
                elb,
                &request.target,
                &request.rollout,
                &request.health,
                request.lock.as_ref(),
                runtime::now(),
            )
            .await?;
            runtime::output(health)
        }
    }))
    .await
}
