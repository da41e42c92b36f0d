//! The fan-out's verdict: one push's services, counted, with the first failures named, so that
//! the push's execution output stays small however many services it deployed.

use super::notify::Outcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Failures named in a summary: the rest are counted (each names its service execution).
pub const FAILURES_LISTED: usize = 10;

/// One Map iteration's result: the service execution's status and outcome, and for a failure
/// the service and its execution (or the error that kept it from starting).
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

pub fn summarize(reason: String, results: &[ServiceOutcome]) -> Summary {
    let mut counts = BTreeMap::new();
    for result in results {
        *counts.entry(result.status.clone()).or_insert(0) += 1;
    }
    let outcome = results.iter().map(|r| r.outcome).max_by_key(|o| severity(*o)).unwrap_or(Outcome::Ok);
    let failures = results.iter().filter(|r| r.outcome != Outcome::Ok).take(FAILURES_LISTED).cloned().collect();
    Summary { reason, services: results.len(), counts, outcome, failures }
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

    fn result(status: &str, outcome: Outcome, n: usize) -> ServiceOutcome {
        let failed = outcome != Outcome::Ok;
        ServiceOutcome {
            status: status.into(),
            outcome,
            service: failed.then(|| format!("arn:svc/{n}")),
            execution: failed.then(|| format!("arn:exec/{n}")),
            error: None,
        }
    }

    #[test]
    fn counts_by_status_and_ends_with_the_worst_outcome() {
        let results = vec![
            result("SUCCEEDED", Outcome::Ok, 0),
            result("SKIPPED", Outcome::Ok, 1),
            result("ROLLED_BACK", Outcome::RolledBack, 2),
            result("SUCCEEDED", Outcome::Ok, 3),
            result("FAILED", Outcome::Failed, 4),
        ];
        let summary = summarize("push".into(), &results);
        assert_eq!(summary.services, 5);
        assert_eq!(summary.counts["SUCCEEDED"], 2);
        assert_eq!(summary.outcome, Outcome::Failed, "failed outranks rolled back");
        let named: Vec<_> = summary.failures.iter().map(|f| f.execution.clone().unwrap()).collect();
        assert_eq!(named, ["arn:exec/2", "arn:exec/4"]);
        assert_eq!(summarize("none".into(), &[]).outcome, Outcome::Ok);
    }

    #[test]
    fn a_thousand_failures_are_counted_but_only_the_first_are_listed() {
        let results: Vec<_> = (0..1000).map(|n| result("ROLLBACK_FAILED", Outcome::RollbackFailed, n)).collect();
        let summary = summarize("push".into(), &results);
        assert_eq!((summary.services, summary.failures.len()), (1000, FAILURES_LISTED));
        assert!(serde_json::to_string(&summary).unwrap().len() < 4096, "a bounded output");
    }
}
