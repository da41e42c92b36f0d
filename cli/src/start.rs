//! `deckhand deploy` and `deckhand rollback`: the manual request, checked as the plan function
//! checks it before anything starts, then started and followed.

use crate::cloud::{sdk_error, Cloud};
use crate::follow;
use crate::output::{self, Error, Exit, Result};
use crate::verdict;
use crate::Format;
use deckhand_core::app::plan::{check_opted_in, choose_container};
use deckhand_core::domain::image::ImageRef;
use deckhand_core::domain::request::parse_request;
use deckhand_core::ports::Ecs;
use deckhand_core::DeckhandError;
use serde_json::{json, Map, Value};

pub enum Request {
    Deploy { image: String, container: Option<String>, force_new_deployment: bool },
    Rollback,
}

pub struct Start {
    pub cluster: String,
    pub service: String,
    pub request: Request,
    pub dry_run: bool,
    pub no_wait: bool,
}

impl Start {
    /// The state machine's manual input (README "Manual executions").
    fn input(&self) -> Value {
        let mut input = Map::new();
        input.insert("cluster".into(), json!(self.cluster));
        input.insert("service".into(), json!(self.service));
        match &self.request {
            Request::Deploy { image, container, force_new_deployment } => {
                input.insert("image".into(), json!(image));
                if let Some(container) = container {
                    input.insert("container".into(), json!(container));
                }
                if *force_new_deployment {
                    input.insert("forceNewDeployment".into(), json!(true));
                }
            }
            Request::Rollback => {
                input.insert("rollback".into(), json!(true));
            }
        }
        if self.dry_run {
            input.insert("dryRun".into(), json!(true));
        }
        Value::Object(input)
    }
}

fn invalid(error: DeckhandError) -> Error {
    Error::InvalidInput(match error {
        DeckhandError::InvalidInput { field, message } => format!("{field}: {message}"),
        other => other.to_string(),
    })
}

/// The checks the plan function makes that need no stack: the request's shape, the service
/// being active, opted in and verifiable, and the container the image goes to.
async fn check(cloud: &Cloud, start: &Start, input: &Value) -> Result<()> {
    parse_request(input).map_err(invalid)?;
    let found =
        cloud.ecs_adapter.describe_services(&start.cluster, std::slice::from_ref(&start.service)).await.map_err(
            |error| match error {
                DeckhandError::ResourceNotFound(_) => {
                    Error::InvalidInput(format!("cluster: cluster {:?} not found", start.cluster))
                }
                other => Error::Aws(other),
            },
        )?;
    let (_, tracked) = check_opted_in(found, &start.cluster, &start.service).map_err(invalid)?;
    if let Request::Deploy { image, container, .. } = &start.request {
        let image = ImageRef::parse("image", image).map_err(invalid)?;
        choose_container(&tracked, container.as_deref(), &image.repository).map_err(invalid)?;
    }
    Ok(())
}

pub async fn run(cloud: &Cloud, format: Format, start: Start) -> Result<Exit> {
    let input = start.input();
    check(cloud, &start, &input).await?;
    let machine = &cloud.outputs().await?.deploy_machine;
    // Execution names: 1–80 of [A-Za-z0-9_-], unique per state machine for 90 days.
    let service: String = start.service.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect();
    let name = format!("cli-{service}-{}", (output::now() * 1000.0) as u64);
    let started = cloud
        .sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| sdk_error("StartExecution", e))?;
    let execution = started.execution_arn().to_string();
    if start.no_wait {
        match format {
            Format::Text => println!("started {execution}\nfollow it with: deckhand watch {execution}"),
            Format::Json => output::json(&json!({"executionArn": execution, "status": "RUNNING"})),
        }
        return Ok(Exit::Ok);
    }
    if format == Format::Text {
        println!("execution {execution}");
    }
    let watched = follow::follow(cloud, format, std::slice::from_ref(&execution)).await?;
    let Some(watched) = watched.into_iter().next() else { return Err(Error::Other("the execution vanished".into())) };
    // The exit code and the last line come from the services' results (verdict.rs), not only
    // from the execution's status: a SKIPPED or SUPERSEDED service ends the execution SUCCEEDED.
    match format {
        Format::Json => output::json(&verdict::json(&watched.ended, &watched.services)),
        Format::Text => follow::report(std::slice::from_ref(&watched)),
    }
    Ok(verdict::verdict(&watched.ended, &watched.services).exit)
}
