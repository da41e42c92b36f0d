//! Plan: normalise the request and list the services to deploy (the fan-out), or plan one
//! service's target again (that service's own execution). Reads ECS, ECR and CloudWatch
//! alarms; the reconciliation sweep also reads the state table and marks what it starts.

use deckhand_core::app::plan::{plan, plan_service, unwrap_invocation, Invocation};
use deckhand_core::app::reconcile::{sweep, sweep_requested, sweep_service};
use deckhand_core::app::settings::{state_table, PlanSettings};
use deckhand_core::aws::{
    cloudwatch::CloudWatchAdapter, dynamodb::DynamoLedger, ecr::EcrAdapter, ecs::EcsAdapter, load_config,
};
use deckhand_core::runtime;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let settings = PlanSettings::from_env()?;
    let config = load_config().await;
    let (ecs, ecr, alarms) = (EcsAdapter::new(&config), EcrAdapter::new(&config), CloudWatchAdapter::new(&config));
    let state = DynamoLedger::new(&config, state_table()?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (settings, ecs, ecr, alarms, state) = (&settings, &ecs, &ecr, &alarms, &state);
        async move {
            let now = runtime::now();
            match unwrap_invocation(event.payload, &event.context.request_id, now) {
                Invocation::Fan { request, execution } => {
                    let plan = match sweep_requested(&request) {
                        Some(dry_run) => sweep(ecs, ecr, state, settings, &execution, dry_run, now).await?,
                        None => plan(ecs, ecr, settings, &request, &execution).await?,
                    };
                    runtime::output(plan.for_fan_out())
                }
                Invocation::Service { request, part } => match sweep_requested(&request) {
                    Some(_) => runtime::output(sweep_service(ecs, ecr, alarms, state, settings, &part, now).await?),
                    None => runtime::output(plan_service(ecs, ecr, alarms, settings, &request, &part).await?),
                },
            }
        }
    }))
    .await
}
