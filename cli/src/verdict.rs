//! What an execution's end means for the person or pipeline that started it: each service's
//! line, and the command's exit code and last line. Both come from the services' results (the
//! parent's summary `counts`, the service executions' outputs), not only from the execution's
//! status: a push whose only service was SKIPPED or SUPERSEDED ends SUCCEEDED, yet deployed
//! nothing. Pure: `follow` and `start` feed it what they read.

use crate::output::{short, Exit};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub execution: String,
    pub status: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub output: Option<Value>,
}

impl Ended {
    /// The summary (or plan, or preview, or service line) the execution ended with: its output,
    /// else its cause when that is a JSON document.
    pub fn document(&self) -> Option<Value> {
        self.output.clone().or_else(|| self.cause.as_deref().and_then(|c| serde_json::from_str(c).ok()))
    }

    /// A service execution's end as its parent's history holds it: the `startExecution.sync:2`
    /// task's result (TaskSucceeded's output) or failure (TaskFailed's cause), both
    /// DescribeExecution's answer with PascalCase keys and `Output` as JSON.
    pub fn from_sync(doc: &Value) -> Option<Ended> {
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_string);
        let output = match doc.get("Output") {
            Some(Value::String(text)) => serde_json::from_str(text).ok(),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.clone()),
        };
        Some(Ended {
            execution: text("ExecutionArn")?,
            status: text("Status")?,
            error: text("Error"),
            cause: text("Cause"),
            output,
        })
    }

    /// `executionArn, status, error, result` (`--output json`).
    pub fn json(&self) -> Value {
        json!({
            "executionArn": self.execution,
            "status": self.status,
            "error": self.error,
            "result": self.document().or_else(|| self.cause.clone().map(Value::String)),
        })
    }
}

/// One service's result: its service execution's output (the published event's detail), or
/// what can be said of an execution that ended without one (stopped, timed out, failed before
/// it had a target).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceLine {
    pub cluster: Option<String>,
    pub service: Option<String>,
    /// The deployment's status: SUCCEEDED, ROLLED_BACK, ROLLBACK_FAILED, SKIPPED, FAILED,
    /// SUPERSEDED.
    pub status: String,
    /// How it counts: ok, rolledBack, rollbackFailed, failed.
    pub outcome: String,
    pub reason: String,
    pub task_definition: Option<String>,
    pub execution: String,
}

impl ServiceLine {
    pub fn of(child: &Ended) -> ServiceLine {
        let doc = child.document().filter(|d| d.get("status").is_some());
        let field = |name: &str| doc.as_ref().and_then(|d| d.get(name)).and_then(Value::as_str).map(str::to_string);
        let succeeded = child.status == "SUCCEEDED";
        let service = field("service");
        let cluster = field("cluster").or_else(|| service.as_deref().and_then(cluster_of));
        ServiceLine {
            cluster,
            status: field("status").unwrap_or_else(|| if succeeded { "SUCCEEDED" } else { "FAILED" }.into()),
            outcome: field("outcome").unwrap_or_else(|| if succeeded { "ok" } else { "failed" }.into()),
            reason: field("reason").unwrap_or_else(|| match (&child.error, &child.cause) {
                (_, Some(cause)) if doc.is_none() => format!("service execution {}: {cause}", child.status),
                (Some(error), _) => format!("service execution {} ({error})", child.status),
                _ => format!("service execution {}", child.status),
            }),
            service,
            task_definition: field("taskDefinition"),
            execution: child.execution.clone(),
        }
    }

    /// `cluster, service, status, outcome, reason, taskDefinition, execution`.
    pub fn json(&self) -> Value {
        json!({
            "cluster": self.cluster,
            "service": self.service,
            "status": self.status,
            "outcome": self.outcome,
            "reason": self.reason,
            "taskDefinition": self.task_definition,
            "execution": self.execution,
        })
    }

    /// `api: SUCCEEDED deployment … COMPLETED: …`.
    pub fn text(&self) -> String {
        format!("{}: {} {}", self.service.as_deref().map_or("service", short), self.status, self.reason)
    }

    fn failed(&self) -> bool {
        self.outcome != "ok"
    }
}

/// `arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME` → CLUSTER.
fn cluster_of(service: &str) -> Option<String> {
    let (_, path) = service.split_once(":service/")?;
    path.split_once('/').map(|(cluster, _)| cluster.to_string())
}

/// Statuses that mean the service now runs what was asked: deployed, or rolled back on request
/// (a requested rollback's ROLLED_BACK counts `ok`; a deployment's counts `rolledBack`).
const DONE: [&str; 2] = ["SUCCEEDED", "ROLLED_BACK"];

/// The exit code and the last line of `deploy`, `rollback` and `watch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub exit: Exit,
    pub line: String,
}

/// Decides, in this order:
/// 1. refused as `InvalidInput` → 2;
/// 2. the execution did not succeed, or a service's outcome is not ok (rolled back, rollback
///    failed, failed, its execution stopped) → 1;
/// 3. a dry run → 0;
/// 4. every service SUCCEEDED (or ROLLED_BACK on request) → 0;
/// 5. otherwise nothing failed but something was not deployed: no service to deploy, or one
///    SKIPPED (already on its image, held by a gate, rejected, no longer tracked) or SUPERSEDED
///    (someone else's change, or a newer push) → 3.
///
/// `root` is the execution followed (a deploy execution, whose document is the summary or the
/// plan, or a service execution); `services` the service lines learned. The counts are the
/// summary's when it has them (they include services whose execution never started).
pub fn verdict(root: &Ended, services: &[ServiceLine]) -> Verdict {
    let doc = root.document().unwrap_or(Value::Null);
    let reason = doc.get("reason").and_then(Value::as_str).map(str::to_string);
    if root.status == "FAILED" && root.error.as_deref() == Some("InvalidInput") {
        let cause = root.cause.clone().unwrap_or_default();
        return Verdict { exit: Exit::BadInput, line: format!("refused (InvalidInput): {cause}") };
    }
    let summary_failed = doc.get("counts").is_some() && doc.get("outcome").and_then(Value::as_str) != Some("ok");
    if root.status != "SUCCEEDED" || summary_failed || services.iter().any(ServiceLine::failed) {
        let what = match (root.status.as_str(), root.error.as_deref()) {
            (_, Some("DeploymentRolledBack")) => "rolled back",
            (_, Some("RollbackFailed")) => "rollback failed",
            ("ABORTED", _) => "stopped",
            ("TIMED_OUT", _) => "timed out",
            _ => "failed",
        };
        let failing = services.iter().find(|s| s.failed()).map(ServiceLine::text);
        let detail = reason.or(failing).or_else(|| root.cause.clone()).unwrap_or_default();
        let named = root.error.as_deref().unwrap_or(&root.status);
        return Verdict { exit: Exit::Failed, line: format!("{what} ({named}): {detail}") };
    }
    if doc.get("dryRun").and_then(Value::as_bool) == Some(true) {
        return Verdict { exit: Exit::Ok, line: "dry run: nothing changed".into() };
    }
    let counts: BTreeMap<String, u64> = match doc.get("counts").and_then(Value::as_object) {
        Some(counts) => counts.iter().map(|(status, n)| (status.clone(), n.as_u64().unwrap_or(0))).collect(),
        None => services.iter().fold(BTreeMap::new(), |mut counts, s| {
            *counts.entry(s.status.clone()).or_insert(0) += 1;
            counts
        }),
    };
    let total: u64 = counts.values().sum();
    let done: u64 = DONE.iter().map(|status| counts.get(*status).copied().unwrap_or(0)).sum();
    if total == 0 {
        let why = reason.filter(|r| !r.is_empty()).unwrap_or_else(|| "no service to deploy".into());
        return Verdict { exit: Exit::NothingDeployed, line: format!("nothing deployed: {why}") };
    }
    if done == total {
        let rolled_back = counts.get("ROLLED_BACK").copied().unwrap_or(0) == total;
        let what = if rolled_back { "rolled back" } else { "deployed" };
        let reason = reason.or_else(|| services.first().map(|s| s.reason.clone())).unwrap_or_else(|| "done".into());
        return Verdict { exit: Exit::Ok, line: format!("{what}: {reason}") };
    }
    let held: Vec<String> = counts
        .iter()
        .filter(|(status, n)| !DONE.contains(&status.as_str()) && **n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let example = services.iter().find(|s| !DONE.contains(&s.status.as_str()));
    let line = match (done, total, example) {
        (0, 1, Some(only)) => format!("nothing deployed: {} ({})", only.status, only.reason),
        (0, _, Some(first)) => format!("nothing deployed: {} (first: {})", held.join(", "), first.text()),
        (0, _, None) => format!("nothing deployed: {}", held.join(", ")),
        (_, _, example) => {
            let first = example.map_or_else(String::new, |e| format!(" (first: {})", e.text()));
            format!("partly deployed: {done} of {total}; not deployed: {}{first}", held.join(", "))
        }
    };
    Verdict { exit: Exit::NothingDeployed, line }
}

/// A root's `--output json` document: the execution, its services, and the verdict.
pub fn json(root: &Ended, services: &[ServiceLine]) -> Value {
    let verdict = verdict(root, services);
    let mut doc = root.json();
    doc["services"] = Value::Array(services.iter().map(ServiceLine::json).collect());
    doc["exitCode"] = json!(verdict.exit as u8);
    doc["verdict"] = json!(verdict.line);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "arn:aws:ecs:us-east-1:1:service/prod/api";

    fn ended(status: &str, error: Option<&str>, output: Option<Value>, cause: Option<Value>) -> Ended {
        Ended {
            execution: "arn:aws:states:us-east-1:1:execution:deckhand-deploy:cli-api-1".into(),
            status: status.into(),
            error: error.map(str::to_string),
            cause: cause.map(|c| c.to_string()),
            output,
        }
    }

    fn summary(counts: Value, outcome: &str) -> Value {
        json!({"reason": "manual deploy of web=x to api", "services": 1, "counts": counts, "outcome": outcome})
    }

    fn line(status: &str, outcome: &str, reason: &str) -> ServiceLine {
        ServiceLine::of(&Ended {
            execution: "arn:aws:states:us-east-1:1:execution:deckhand-service:abc".into(),
            status: if outcome == "ok" { "SUCCEEDED" } else { "FAILED" }.into(),
            error: None,
            cause: None,
            output: Some(json!({"cluster": "prod", "service": SERVICE, "status": status, "outcome": outcome,
                "reason": reason, "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/api:8"})),
        })
    }

    fn decide(root: &Ended, services: &[ServiceLine]) -> (Exit, String) {
        let v = verdict(root, services);
        (v.exit, v.line)
    }

    #[test]
    fn every_service_succeeded_is_0_deployed() {
        let root = ended("SUCCEEDED", None, Some(summary(json!({"SUCCEEDED": 1}), "ok")), None);
        let (exit, said) = decide(&root, &[line("SUCCEEDED", "ok", "healthy")]);
        assert_eq!((exit, said.as_str()), (Exit::Ok, "deployed: manual deploy of web=x to api"));
    }

    #[test]
    fn a_requested_rollback_that_rolled_back_is_0() {
        let mut doc = summary(json!({"ROLLED_BACK": 1}), "ok");
        doc["reason"] = json!("manual rollback of api to its last known-good revision");
        let root = ended("SUCCEEDED", None, Some(doc), None);
        let (exit, said) = decide(&root, &[line("ROLLED_BACK", "ok", "rolling back api")]);
        assert_eq!(exit, Exit::Ok);
        assert!(said.starts_with("rolled back: manual rollback"), "{said}");
    }

    #[test]
    fn skipped_or_superseded_alone_is_3_nothing_deployed_with_the_reason() {
        let root = ended("SUCCEEDED", None, Some(summary(json!({"SKIPPED": 1}), "ok")), None);
        let skipped = line("SKIPPED", "ok", "api skipped: already on its image");
        assert_eq!(
            decide(&root, &[skipped]),
            (Exit::NothingDeployed, "nothing deployed: SKIPPED (api skipped: already on its image)".into())
        );
        let root = ended("SUCCEEDED", None, Some(summary(json!({"SUPERSEDED": 1}), "ok")), None);
        let superseded = line("SUPERSEDED", "ok", "superseded by another update of the service");
        assert_eq!(
            decide(&root, &[superseded]),
            (
                Exit::NothingDeployed,
                "nothing deployed: SUPERSEDED (superseded by another update of the service)".into()
            )
        );
    }

    #[test]
    fn counts_come_from_the_summary_even_for_services_not_learned() {
        // A wide push: the summary counts every service; the lines learned are only some.
        let root = ended("SUCCEEDED", None, Some(summary(json!({"SUCCEEDED": 198, "SKIPPED": 2}), "ok")), None);
        let (exit, said) = decide(&root, &[line("SUCCEEDED", "ok", "healthy")]);
        assert_eq!(exit, Exit::NothingDeployed);
        assert_eq!(said, "partly deployed: 198 of 200; not deployed: 2 SKIPPED");
        let (_, said) = decide(&root, &[line("SKIPPED", "ok", "api skipped: held by alarm x")]);
        assert!(said.ends_with("(first: api: SKIPPED api skipped: held by alarm x)"), "{said}");
        let root = ended("SUCCEEDED", None, Some(summary(json!({"SKIPPED": 3, "SUPERSEDED": 1}), "ok")), None);
        assert_eq!(decide(&root, &[]), (Exit::NothingDeployed, "nothing deployed: 3 SKIPPED, 1 SUPERSEDED".into()));
    }

    #[test]
    fn no_service_to_deploy_is_3_with_the_plans_reason() {
        let plan = json!({"action": "nothing", "dryRun": false, "reason": "no service tracks flask:v9", "targets": []});
        let root = ended("SUCCEEDED", None, Some(plan), None);
        assert_eq!(decide(&root, &[]), (Exit::NothingDeployed, "nothing deployed: no service tracks flask:v9".into()));
    }

    #[test]
    fn a_dry_run_is_0() {
        let plan = json!({"action": "deploy", "dryRun": true, "reason": "manual deploy", "targets": [{}]});
        assert_eq!(
            decide(&ended("SUCCEEDED", None, Some(plan), None), &[]),
            (Exit::Ok, "dry run: nothing changed".into())
        );
    }

    #[test]
    fn rolled_back_failed_stopped_are_1_and_bad_input_2() {
        let cause = summary(json!({"ROLLED_BACK": 1}), "rolledBack");
        let root = ended("FAILED", Some("DeploymentRolledBack"), None, Some(cause));
        let (exit, said) = decide(&root, &[line("ROLLED_BACK", "rolledBack", "unhealthy; rolling back")]);
        assert_eq!(
            (exit, said.as_str()),
            (Exit::Failed, "rolled back (DeploymentRolledBack): manual deploy of web=x to api")
        );
        let root = ended(
            "FAILED",
            Some("RollbackFailed"),
            None,
            Some(summary(json!({"ROLLBACK_FAILED": 1}), "rollbackFailed")),
        );
        assert!(decide(&root, &[]).1.starts_with("rollback failed (RollbackFailed)"));
        let root = ended("ABORTED", None, None, None);
        assert_eq!(decide(&root, &[]), (Exit::Failed, "stopped (ABORTED): ".into()));
        let root = Ended { cause: Some("image: bad".into()), ..ended("FAILED", Some("InvalidInput"), None, None) };
        assert_eq!(decide(&root, &[]), (Exit::BadInput, "refused (InvalidInput): image: bad".into()));
        // A succeeded execution whose service failed still fails the command.
        let root = ended("SUCCEEDED", None, None, None);
        assert_eq!(decide(&root, &[line("FAILED", "failed", "boom")]).0, Exit::Failed);
    }

    #[test]
    fn a_watched_service_execution_is_its_own_line() {
        let output = json!({"cluster": "prod", "service": SERVICE, "status": "SKIPPED", "outcome": "ok",
            "reason": "api skipped: already on its image"});
        let root = ended("SUCCEEDED", None, Some(output), None);
        let lines = [ServiceLine::of(&root)];
        assert_eq!(decide(&root, &lines).0, Exit::NothingDeployed);
    }

    #[test]
    fn service_lines_from_outputs_causes_and_bare_ends() {
        let sync = json!({"ExecutionArn": "arn:x", "Status": "FAILED", "Error": "DeploymentRolledBack",
            "Cause": json!({"service": SERVICE, "status": "ROLLED_BACK", "outcome": "rolledBack", "reason": "r"}).to_string()});
        let child = Ended::from_sync(&sync).unwrap();
        let service = ServiceLine::of(&child);
        assert_eq!((service.status.as_str(), service.outcome.as_str()), ("ROLLED_BACK", "rolledBack"));
        assert_eq!(service.cluster.as_deref(), Some("prod"), "the cluster is read from the service ARN");
        let done =
            json!({"ExecutionArn": "arn:y", "Status": "SUCCEEDED", "Output": {"status": "SUCCEEDED", "outcome": "ok"}});
        assert_eq!(Ended::from_sync(&done).unwrap().output, Some(json!({"status": "SUCCEEDED", "outcome": "ok"})));
        let stopped =
            ServiceLine::of(&Ended::from_sync(&json!({"ExecutionArn": "arn:z", "Status": "ABORTED"})).unwrap());
        assert_eq!((stopped.status.as_str(), stopped.outcome.as_str()), ("FAILED", "failed"));
        assert_eq!(stopped.reason, "service execution ABORTED");
        let planning = Ended {
            cause: Some("planning arn:svc failed: boom".into()),
            error: Some("DeploymentFailed".into()),
            ..ended("FAILED", None, None, None)
        };
        assert_eq!(ServiceLine::of(&planning).reason, "service execution FAILED: planning arn:svc failed: boom");
        assert!(Ended::from_sync(&json!({"Status": "SUCCEEDED"})).is_none(), "no execution, no child");
        let doc = line("SUCCEEDED", "ok", "healthy").json();
        for key in ["cluster", "service", "status", "outcome", "reason", "taskDefinition", "execution"] {
            assert!(doc.get(key).is_some(), "{key}");
        }
    }
}
