//! Plan: normalise the request and list the services to deploy (the fan-out), or plan one
//! service's target again (that service's own execution). Reads ECS, ECR and
//! CloudWatch alarms only.

use deckhand_core::app::plan::{plan, plan_service, unwrap_invocation, Invocation};
use deckhand_core::app::settings::PlanSettings;
use deckhand_core::aws::{cloudwatch::CloudWatchAdapter, ecr::EcrAdapter, ecs::EcsAdapter, load_config};
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let settings = PlanSettings::from_env()?;
    let config = load_config().await;
    let (ecs, ecr, alarms) = (EcsAdapter::new(&config), EcrAdapter::new(&config), CloudWatchAdapter::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (settings, ecs, ecr, alarms) = (&settings, &ecs, &ecr, &alarms);
        async move {
            match unwrap_invocation(event.payload, &event.context.request_id, runtime::now()) {
                Invocation::Fan { request, execution } => {
                    runtime::output(plan(ecs, ecr, settings, &request, &execution).await?.for_fan_out())
                }
                Invocation::Service { request, part } => {
                    runtime::output(plan_service(ecs, ecr, alarms, settings, &request, &part).await?)
                }
            }
        }
    }))
    .await
}
