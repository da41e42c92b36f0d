//! `deckhand deploy` and `deckhand rollback`: the manual request, checked as the plan function
//! checks it before anything starts, then started and followed.

use crate::cloud::{sdk_error, Cloud};
use crate::follow::{self, Ended};
use crate::output::{self, short, Error, Exit, Result};
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
    let ended = follow::follow(cloud, format, std::slice::from_ref(&execution)).await?;
    let Some(ended) = ended.into_iter().next() else { return Err(Error::Other("the execution vanished".into())) };
    let services = follow::children(cloud, &execution).await?;
    report(format, &start, &ended, &services);
    Ok(ended.exit())
}

/// A service execution's result: its deployment's status and reason.
fn service_result(child: &Ended) -> Value {
    let doc = child.document().unwrap_or(Value::Null);
    let field =
        |name: &str| doc.pointer(&format!("/final/{name}")).or_else(|| doc.get(name)).cloned().unwrap_or(Value::Null);
    let target = doc.pointer("/target/service").cloned().or_else(|| doc.get("service").cloned());
    json!({
        "service": target.unwrap_or(Value::Null),
        "status": field("status"),
        "reason": field("reason"),
        "taskDefinition": field("taskDefinition"),
        "execution": child.execution,
    })
}

fn report(format: Format, start: &Start, ended: &Ended, services: &[Ended]) {
    let results: Vec<Value> = services.iter().map(service_result).collect();
    if format == Format::Json {
        let mut doc = follow::ended_document(ended);
        doc["services"] = Value::Array(results);
        output::json(&doc);
        return;
    }
    for result in &results {
        let service = result["service"].as_str().unwrap_or("service");
        println!(
            "{}: {} {}",
            short(service),
            result["status"].as_str().unwrap_or("?"),
            result["reason"].as_str().unwrap_or_default()
        );
    }
    let summary = ended.document().unwrap_or(Value::Null);
    let reason = summary.get("reason").and_then(Value::as_str).map(str::to_string);
    match (ended.exit(), start.dry_run) {
        (Exit::Ok, true) => println!("dry run: nothing changed"),
        (Exit::Ok, false) => println!("deployed: {}", reason.unwrap_or_else(|| "done".into())),
        (Exit::BadInput, _) => {
            println!("refused (InvalidInput): {}", ended.cause.as_deref().unwrap_or_default());
        }
        (Exit::Failed, _) => {
            let what = match ended.error.as_deref() {
                Some("DeploymentRolledBack") => "rolled back",
                Some("RollbackFailed") => "rollback failed",
                _ => "failed",
            };
            let detail = reason.or_else(|| ended.cause.clone()).unwrap_or_default();
            println!("{what} ({}): {detail}", ended.error.as_deref().unwrap_or(&ended.status));
        }
    }
}
