//! What a deployment's Step Functions history says, as lines a person follows: the plan, the
//! lock, the new revision and UpdateService, the health checks with their task and target
//! counts, the bake, the rollback. Pure: `follow` feeds it the events it reads.

use crate::output::short;
use crate::verdict::Ended;
use serde_json::Value;

/// One history event, reduced to what the narration uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub id: i64,
    /// The event type, e.g. `TaskStateExited`.
    pub kind: String,
    /// The state's name (state entered and exited events).
    pub state: Option<String>,
    /// The state's input (entered) or output (exited), the task's output (submitted, succeeded)
    /// or its cause when that is JSON (failed).
    pub document: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub at: f64,
}

/// The details of a history event that matter here, whichever kind of event carries them (the
/// SDK's typed details and a recorded history's JSON both reduce through this).
#[derive(Debug, Clone, Copy, Default)]
pub struct Details<'a> {
    /// The state's name (state entered and exited events).
    pub name: Option<&'a str>,
    pub input: Option<&'a str>,
    pub output: Option<&'a str>,
    pub error: Option<&'a str>,
    pub cause: Option<&'a str>,
}

impl Event {
    pub fn reduced(id: i64, kind: &str, at: f64, details: Details) -> Event {
        // A task's or a function's cause is Lambda's `{"errorMessage": …}`: its message is what a
        // person reads. An execution's cause is kept whole: it is the summary or the service line.
        let from_lambda = matches!(kind, "TaskFailed" | "LambdaFunctionFailed");
        let cause_document = if kind == "LambdaFunctionFailed" { None } else { parse(details.cause) };
        Event {
            id,
            kind: kind.to_string(),
            state: details.name.map(str::to_string),
            document: parse(details.input).or_else(|| parse(details.output)).or(cause_document),
            error: details.error.map(str::to_string),
            cause: if from_lambda { message(details.cause) } else { details.cause.map(str::to_string) },
            at,
        }
    }
}

fn parse(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// A Lambda error's cause is `{"errorMessage": …, "errorType": …}`: its message is what to show.
fn message(cause: Option<&str>) -> Option<String> {
    let cause = cause?;
    Some(match serde_json::from_str::<Value>(cause) {
        Ok(doc) => doc.get("errorMessage").and_then(Value::as_str).unwrap_or(cause).to_string(),
        Err(_) => cause.to_string(),
    })
}

/// What an event means for the person following.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A line to print.
    Line(String),
    /// A service execution was started: follow it too.
    Child(String),
    /// Whose steps these are (a service execution's service, from its input).
    Label(String),
    /// A service execution this one started has ended (the `startExecution.sync:2` task's
    /// result or failure): its result, whether or not its own history was read.
    ChildEnded(Ended),
    /// This execution is failing (a FAILED verdict, a rollback): worth following closely.
    Failing,
}

/// The narration of one execution: remembers the last line so that repeated checks that saw the
/// same thing print once.
#[derive(Debug, Default)]
pub struct Narration {
    last: Option<String>,
}

impl Narration {
    pub fn narrate(&mut self, event: &Event) -> Vec<Step> {
        let mut steps = Vec::new();
        for step in describe(event) {
            if let Step::Line(line) = &step {
                if self.last.as_ref() == Some(line) {
                    continue;
                }
                self.last = Some(line.clone());
            }
            steps.push(step);
        }
        steps
    }
}

fn describe(event: &Event) -> Vec<Step> {
    let doc = event.document.as_ref();
    let text = |path: &str| doc.and_then(|d| d.pointer(path)).and_then(Value::as_str).unwrap_or_default().to_string();
    match (event.kind.as_str(), event.state.as_deref()) {
        ("ExecutionStarted", _) => match doc.and_then(|d| d.get("service")).and_then(Value::as_str) {
            Some(service) => vec![Step::Label(short(service).to_string())],
            None => vec![],
        },
        ("TaskSubmitted", _) => match doc.and_then(|d| d.get("ExecutionArn")).and_then(Value::as_str) {
            Some(child) => vec![Step::Child(child.to_string())],
            None => vec![],
        },
        // A service execution's end, as the fan-out's task saw it (its own narration, if it
        // was read, has said why).
        ("TaskSucceeded" | "TaskFailed", _) if doc.and_then(|d| d.get("ExecutionArn")).is_some() => {
            doc.and_then(Ended::from_sync).map(Step::ChildEnded).into_iter().collect()
        }
        (kind, Some(state)) if kind.ends_with("StateExited") => {
            let mut steps = exited(state, doc, &text);
            let failed_check = doc.and_then(|d| d.pointer("/health/verdict")).and_then(Value::as_str) == Some("FAILED");
            if failed_check || state == "Roll back to last known-good" {
                steps.push(Step::Failing);
            }
            steps
        }
        (kind, Some("Bake")) if kind.ends_with("StateEntered") => {
            let seconds = doc.and_then(|d| d.pointer("/target/policy/bakeSeconds")).and_then(Value::as_u64);
            vec![line(format!(
                "bake: healthy; watching it {}s more before it counts as known-good",
                seconds.unwrap_or(0)
            ))]
        }
        // A service execution's failure: its own narration has said why.
        ("TaskFailed", Some("Deploy the service")) => vec![],
        ("TaskFailed" | "LambdaFunctionFailed", state) => {
            let error = event.error.as_deref().unwrap_or("error");
            // Contention is retried by the state machine: say what is waited for, once.
            if error == "LockBusy" {
                return vec![line(format!("waiting: {}", event.cause.as_deref().unwrap_or("the service is locked")))];
            }
            vec![line(format!("{}: {error}", state.unwrap_or("a step")))]
        }
        _ => vec![],
    }
}

fn exited(state: &str, doc: Option<&Value>, text: &dyn Fn(&str) -> String) -> Vec<Step> {
    match state {
        "Plan deployment" => {
            let mut lines = vec![line(format!("plan: {}", text("/reason")))];
            for target in doc.and_then(|d| d.get("targets")).and_then(Value::as_array).into_iter().flatten() {
                for change in target.get("diff").and_then(Value::as_array).into_iter().flatten() {
                    lines.push(line(format!("would change: {}", change.as_str().unwrap_or_default())));
                }
            }
            for warning in doc.and_then(|d| d.get("warnings")).and_then(Value::as_array).into_iter().flatten() {
                lines.push(line(format!("warning: {}", warning.as_str().unwrap_or_default())));
            }
            lines
        }
        "Preview rollback" => vec![line(text("/preview/reason"))],
        "Acquire service lock" => vec![line(format!("lock: {}", text("/lock/reason")))],
        "Register revision and update service" => match text("/rollout/outcome").as_str() {
            "STARTED" => vec![
                line(format!(
                    "register: new revision {} from {}, image pinned by digest",
                    short(&text("/rollout/taskDefinition")),
                    short(&text("/rollout/previousTaskDefinition"))
                )),
                line(format!("update: UpdateService started deployment {}", text("/rollout/deploymentId"))),
            ],
            _ => vec![line(format!("update: {}", text("/rollout/reason")))],
        },
        "Check rollout health" | "Wait for ECS events" | "Final health check" => {
            vec![line(format!("health: {} {}", text("/health/verdict"), text("/health/reason")))]
        }
        "Roll back to last known-good" => vec![line(format!(
            "rollback: {} (deployment {})",
            text("/rollback/reason"),
            text("/rollback/deploymentId")
        ))],
        "Check rollback health" | "Wait for rollback events" => {
            vec![line(format!(
                "rollback health: {} {}",
                text("/rollbackHealth/verdict"),
                text("/rollbackHealth/reason")
            ))]
        }
        "Record known-good and release lock" => vec![line(format!(
            "known-good: {} verified healthy and recorded; lock released",
            short(&text("/rollout/taskDefinition"))
        ))],
        _ => vec![],
    }
}

fn line(text: String) -> Step {
    Step::Line(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exited(state: &str, document: Value) -> Event {
        Event {
            kind: "TaskStateExited".into(),
            state: Some(state.into()),
            document: Some(document),
            ..Event::default()
        }
    }

    fn lines(steps: Vec<Step>) -> Vec<String> {
        steps.into_iter().filter_map(|s| if let Step::Line(l) = s { Some(l) } else { None }).collect()
    }

    #[test]
    fn a_rollout_reads_as_register_update_and_health_with_counts() {
        let mut narration = Narration::default();
        let rollout = json!({"rollout": {"outcome": "STARTED", "deploymentId": "ecs-svc/1",
            "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/api:8",
            "previousTaskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/api:7"}});
        let said = lines(narration.narrate(&exited("Register revision and update service", rollout)));
        assert_eq!(
            said,
            [
                "register: new revision api:8 from api:7, image pinned by digest",
                "update: UpdateService started deployment ecs-svc/1"
            ]
        );
        let health = json!({"health": {"verdict": "PENDING", "reason": "rollout IN_PROGRESS: 1/2 new tasks running, 0/2 targets healthy"}});
        let said = lines(narration.narrate(&exited("Check rollout health", health.clone())));
        assert_eq!(said, ["health: PENDING rollout IN_PROGRESS: 1/2 new tasks running, 0/2 targets healthy"]);
        assert!(narration.narrate(&exited("Wait for ECS events", health)).is_empty(), "the same check prints once");
    }

    #[test]
    fn a_dry_run_prints_the_task_definition_diff() {
        let plan = json!({"reason": "manual deploy of web=x to api", "dryRun": true,
            "targets": [{"diff": ["api: container web image a -> b"]}]});
        let said = lines(Narration::default().narrate(&exited("Plan deployment", plan)));
        assert_eq!(said[1], "would change: api: container web image a -> b");
    }

    #[test]
    fn service_executions_are_found_and_labelled_and_lock_waits_named() {
        let submitted = Event {
            kind: "TaskSubmitted".into(),
            document: Some(json!({"ExecutionArn": "arn:aws:states:us-east-1:1:execution:s:abc"})),
            ..Event::default()
        };
        assert_eq!(describe(&submitted), [Step::Child("arn:aws:states:us-east-1:1:execution:s:abc".into())]);
        let started = Event {
            kind: "ExecutionStarted".into(),
            document: Some(json!({"service": "arn:aws:ecs:us-east-1:1:service/prod/api"})),
            ..Event::default()
        };
        assert_eq!(describe(&started), [Step::Label("api".into())]);
        let busy = Event {
            kind: "TaskFailed".into(),
            error: Some("LockBusy".into()),
            cause: Some("locked by x".into()),
            ..Event::default()
        };
        assert_eq!(lines(describe(&busy)), ["waiting: locked by x"]);
    }

    #[test]
    fn a_service_executions_end_is_read_from_the_fan_out_task() {
        let succeeded = Event {
            kind: "TaskSucceeded".into(),
            document: Some(json!({"ExecutionArn": "arn:c", "Status": "SUCCEEDED",
                "Output": {"service": "arn:aws:ecs:us-east-1:1:service/prod/api", "status": "SKIPPED", "outcome": "ok"}})),
            ..Event::default()
        };
        let Ok([Step::ChildEnded(child)]) = <[Step; 1]>::try_from(describe(&succeeded)) else {
            panic!("one child end")
        };
        assert_eq!((child.execution.as_str(), child.status.as_str()), ("arn:c", "SUCCEEDED"));
        assert_eq!(child.output.unwrap()["status"], "SKIPPED");
        let failed = Event {
            kind: "TaskFailed".into(),
            state: Some("Deploy the service".into()),
            error: Some("States.TaskFailed".into()),
            document: Some(json!({"ExecutionArn": "arn:d", "Status": "ABORTED"})),
            ..Event::default()
        };
        assert!(matches!(&describe(&failed)[..], [Step::ChildEnded(c)] if c.status == "ABORTED"));
        let lambda = Event { kind: "TaskSucceeded".into(), document: Some(json!({"ok": 1})), ..Event::default() };
        assert!(describe(&lambda).is_empty());
    }

    #[test]
    fn a_failed_check_or_a_rollback_marks_the_execution_failing() {
        let failed = exited("Check rollout health", json!({"health": {"verdict": "FAILED", "reason": "crash"}}));
        assert!(describe(&failed).contains(&Step::Failing));
        let pending = exited("Check rollout health", json!({"health": {"verdict": "PENDING", "reason": "1/2"}}));
        assert!(!describe(&pending).contains(&Step::Failing));
        let rollback =
            exited("Roll back to last known-good", json!({"rollback": {"reason": "r", "deploymentId": "d"}}));
        assert!(describe(&rollback).contains(&Step::Failing));
    }
}
