//! The fan-out's verdict: one push's services, counted, with the first failures named, so that
//! the push's execution output stays small however many services it deployed.
//!
//! Each Map iteration hands back only its service's status (a few bytes: a thousand services
//! that all roll back stay far below Step Functions' 256 KiB payload quota). The service and its
//! execution are found again here: results come in the order of the plan's `services`, and the
//! fan-out names each service execution `States.Hash(States.Format('{}|{}', push execution,
//! service), 'SHA-1')`, the lowercase hexadecimal SHA-1 of that text.

use super::notify::{outcome_of, Outcome};
use crate::domain::events::Status;
use crate::domain::model::{Mode, PlanAction};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;

/// Failures named in a summary: the rest are counted (each names its service execution).
pub const FAILURES_LISTED: usize = 10;

/// What the fan-out hands the summary.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOut {
    pub reason: String,
    /// The plan's action: a requested rollback that rolled back is a success.
    #[serde(default)]
    pub action: Option<PlanAction>,
    /// One per service, in the order of `services`.
    pub results: Vec<IterationResult>,
    /// The plan's services (ARNs), which the Map iterated over.
    #[serde(default)]
    pub services: Vec<String>,
    /// The push's execution, which started the service executions.
    #[serde(default)]
    pub execution: Option<String>,
    /// The service state machine, whose executions the Map started.
    #[serde(default)]
    pub service_state_machine: Option<String>,
}

/// One Map iteration's result: the service execution's status, and for an end without the
/// service's own verdict (stopped, timed out, outside the contract, not started) why. Older
/// definitions also carried the outcome, the service and its execution: then they are taken.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IterationResult {
    pub status: String,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub execution: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// False when the service execution could not be started: there is none to name.
    #[serde(default = "started")]
    pub started: bool,
}

fn started() -> bool {
    true
}

/// A failure as the summary lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOutcome {
    pub status: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub reason: String,
    pub services: usize,
    /// Services per status (SUCCEEDED, SKIPPED, SUPERSEDED, ROLLED_BACK, ...).
    pub counts: BTreeMap<String, usize>,
    /// The worst outcome: what the execution ends with.
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<ServiceOutcome>,
}

pub fn summarize(fan_out: &FanOut) -> Summary {
    let mode = if fan_out.action == Some(PlanAction::Rollback) { Mode::Rollback } else { Mode::Deploy };
    let mut counts = BTreeMap::new();
    let mut worst = Outcome::Ok;
    let mut failures = Vec::new();
    for (index, result) in fan_out.results.iter().enumerate() {
        *counts.entry(result.status.clone()).or_insert(0) += 1;
        let outcome = result.outcome.unwrap_or_else(|| outcome_for(&result.status, mode));
        if severity(outcome) > severity(worst) {
            worst = outcome;
        }
        if outcome == Outcome::Ok || failures.len() == FAILURES_LISTED {
            continue;
        }
        let service = result.service.clone().or_else(|| fan_out.services.get(index).cloned());
        let execution = result.execution.clone().or_else(|| {
            let (machine, parent, service) =
                (fan_out.service_state_machine.as_deref()?, fan_out.execution.as_deref()?, service.as_deref()?);
            result.started.then(|| child_execution_arn(machine, parent, service)).flatten()
        });
        failures.push(ServiceOutcome {
            status: result.status.clone(),
            outcome,
            service,
            execution,
            error: result.error.clone(),
        });
    }
    Summary { reason: fan_out.reason.clone(), services: fan_out.results.len(), counts, outcome: worst, failures }
}

/// How a service's status counts: as its own execution counted it; a status that is not a
/// terminal one (or not one at all) is a failure.
fn outcome_for(status: &str, mode: Mode) -> Outcome {
    match serde_json::from_value::<Status>(serde_json::Value::String(status.to_string())) {
        Ok(status) if status.is_terminal() => outcome_of(status, mode),
        _ => Outcome::Failed,
    }
}

/// The name the fan-out gives a service's execution: `States.Hash(States.Format('{}|{}',
/// parent, service), 'SHA-1')`, the lowercase hexadecimal SHA-1 of the UTF-8 text.
pub fn child_execution_name(parent: &str, service: &str) -> String {
    Sha1::digest(format!("{parent}|{service}").as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The ARN of an execution named `name` of `state_machine`
/// (`arn:PARTITION:states:REGION:ACCOUNT:execution:MACHINE:NAME`).
fn child_execution_arn(state_machine: &str, parent: &str, service: &str) -> Option<String> {
    let (head, machine) = state_machine.split_once(":stateMachine:")?;
    Some(format!("{head}:execution:{machine}:{}", child_execution_name(parent, service)))
}

/// A failed rollback leaves a service broken: worse than a deployment that failed before
/// changing anything, which is worse than one rolled back to health.
fn severity(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Ok => 0,
        Outcome::RolledBack => 1,
        Outcome::Failed => 2,
        Outcome::RollbackFailed => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:deckhand-service";
    const PARENT: &str = "arn:aws:states:us-east-1:123456789012:execution:deckhand-deploy:push-1";

    fn fan_out(statuses: &[&str], action: &str) -> FanOut {
        serde_json::from_value(json!({
            "reason": "push",
            "action": action,
            "results": statuses.iter().map(|s| json!({"status": s})).collect::<Vec<_>>(),
            "services": (0..statuses.len()).map(|n| format!("arn:aws:ecs:us-east-1:123456789012:service/prod/svc-{n}")).collect::<Vec<_>>(),
            "execution": PARENT,
            "serviceStateMachine": MACHINE,
        }))
        .unwrap()
    }

    #[test]
    fn counts_by_status_and_ends_with_the_worst_outcome() {
        let summary = summarize(&fan_out(&["SUCCEEDED", "SKIPPED", "ROLLED_BACK", "SUCCEEDED", "FAILED"], "deploy"));
        assert_eq!(summary.services, 5);
        assert_eq!(summary.counts["SUCCEEDED"], 2);
        assert_eq!(summary.outcome, Outcome::Failed, "failed outranks rolled back");
        let named: Vec<_> = summary.failures.iter().map(|f| f.service.clone().unwrap()).collect();
        assert!(named[0].ends_with("/svc-2") && named[1].ends_with("/svc-4"), "{named:?}");
        let none = FanOut { results: vec![], ..fan_out(&[], "deploy") };
        assert_eq!(summarize(&none).outcome, Outcome::Ok);
    }

    #[test]
    fn each_failure_names_the_execution_the_fan_out_started_for_its_service() {
        let summary = summarize(&fan_out(&["SUCCEEDED", "ROLLBACK_FAILED"], "deploy"));
        let failure = &summary.failures[0];
        assert_eq!(failure.service.as_deref(), Some(SERVICE_1));
        assert_eq!(
            failure.execution.as_deref(),
            Some(format!("arn:aws:states:us-east-1:123456789012:execution:deckhand-service:{STATES_HASH_OF_PARENT_AND_SERVICE_1}").as_str())
        );
        assert_eq!((failure.status.as_str(), failure.outcome), ("ROLLBACK_FAILED", Outcome::RollbackFailed));
    }

    /// States.Hash(States.Format('{}|{}', PARENT, SERVICE_1), 'SHA-1') as the local cloud's
    /// interpreter computes it (hashlib.sha1(text.encode()).hexdigest());
    /// tests/test_statemachine_source.py checks this constant against that implementation.
    const SERVICE_1: &str = "arn:aws:ecs:us-east-1:123456789012:service/prod/svc-1";
    const STATES_HASH_OF_PARENT_AND_SERVICE_1: &str = "c7d4cd5727987f84ae823d0bd9c3ed2b8f0d2b8d";

    #[test]
    fn the_execution_name_is_the_hex_sha1_that_states_hash_computes() {
        assert_eq!(child_execution_name(PARENT, SERVICE_1), STATES_HASH_OF_PARENT_AND_SERVICE_1);
        // SHA-1 test vector (FIPS 180-2): lowercase hexadecimal of the UTF-8 bytes.
        assert_eq!(child_execution_name("a", "bc"), "d463aeca59096301899ff93226820dabbbefd3aa");
        assert_eq!(child_execution_name("é", "ü"), "4124aa073598c8051a5a241f305e622f75030269");
        assert_eq!(
            Sha1::digest(b"abc").iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn a_stopped_or_unstarted_service_is_a_failure_of_that_service_only() {
        let mut stopped = fan_out(&["SUCCEEDED", "FAILED", "FAILED"], "deploy");
        stopped.results[1].error = Some("ABORTED".into());
        stopped.results[2].error = Some("StepFunctions.ExecutionLimitExceeded".into());
        stopped.results[2].started = false;
        let summary = summarize(&stopped);
        assert_eq!(summary.counts["SUCCEEDED"], 1);
        assert_eq!(summary.failures[0].error.as_deref(), Some("ABORTED"));
        assert!(summary.failures[0].execution.is_some(), "a stopped execution is named");
        assert_eq!(summary.failures[1].execution, None, "no execution was started");
        assert!(summary.failures[1].service.is_some());
    }

    #[test]
    fn a_requested_rollback_that_rolled_back_succeeds_and_an_unknown_status_fails() {
        assert_eq!(summarize(&fan_out(&["ROLLED_BACK"], "rollback")).outcome, Outcome::Ok);
        assert_eq!(summarize(&fan_out(&["ROLLED_BACK"], "deploy")).outcome, Outcome::RolledBack);
        assert_eq!(summarize(&fan_out(&["SKIPPED", "SUPERSEDED"], "deploy")).outcome, Outcome::Ok);
        assert_eq!(summarize(&fan_out(&["STARTED"], "deploy")).outcome, Outcome::Failed, "not a terminal status");
        assert_eq!(summarize(&fan_out(&["MYSTERY"], "deploy")).outcome, Outcome::Failed);
    }

    #[test]
    fn results_of_older_definitions_are_read_as_they_were() {
        let old: FanOut = serde_json::from_value(json!({
            "reason": "push",
            "results": [{"status": "ROLLED_BACK", "outcome": "ok", "service": "arn:svc/1", "execution": "arn:exec/1"}],
        }))
        .unwrap();
        let summary = summarize(&old);
        assert_eq!(summary.outcome, Outcome::Ok);
        assert_eq!(summary.failures, vec![]);
        let old_failed = FanOut {
            results: vec![IterationResult { outcome: Some(Outcome::RolledBack), ..old.results[0].clone() }],
            ..old
        };
        assert_eq!(summarize(&old_failed).failures[0].execution.as_deref(), Some("arn:exec/1"));
    }

    #[test]
    fn a_thousand_failures_are_counted_but_only_the_first_are_listed() {
        let summary = summarize(&fan_out(&["ROLLBACK_FAILED"; 1000], "deploy"));
        assert_eq!((summary.services, summary.failures.len()), (1000, FAILURES_LISTED));
        assert!(serde_json::to_string(&summary).unwrap().len() < 4096, "a bounded output");
    }
}
