//! Plan: normalise the request and list the services to deploy. Reads ECS and ECR only.

use deckhand_core::app::plan::{plan, unwrap_invocation};
use deckhand_core::app::settings::PlanSettings;
use deckhand_core::aws::{ecr::EcrAdapter, ecs::EcsAdapter, load_config};
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let settings = PlanSettings::from_env()?;
    let config = load_config().await;
    let (ecs, ecr) = (EcsAdapter::new(&config), EcrAdapter::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (settings, ecs, ecr) = (&settings, &ecs, &ecr);
        async move {
            let (request, execution) = unwrap_invocation(event.payload, &event.context.request_id, runtime::now());
            let plan = plan(ecs, ecr, settings, &request, &execution).await?;
            runtime::output(plan)
        }
    }))
    .await
}
