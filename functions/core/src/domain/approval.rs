//! The approval gate: a push to a service tagged `deckhand:approval=required` waits, parked on a
//! Step Functions task token, until a person approves or rejects it, it times out, or a newer
//! push takes its place. Pure: the pending approval's record and who supersedes whom.

use serde::{Deserialize, Serialize};

/// The state table key of a service's pending approval (next to its ledger record).
pub fn approval_key(service_key: &str) -> String {
    format!("approval#{service_key}")
}

/// A push waiting for its approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingApproval {
    pub token: String,
    pub cluster: String,
    pub service: String,
    pub service_arn: String,
    /// What would be deployed (`container=image` items).
    pub image: String,
    /// What would change, one line per container (`web: …:v1 -> …@sha256:…`).
    pub changes: Vec<String>,
    /// The containers the push changes: a later push supersedes this one only when it changes
    /// every one of them. Empty (records from before containers were kept) means all.
    #[serde(default)]
    pub containers: Vec<String>,
    /// The service's own execution, waiting.
    pub execution_arn: String,
    /// When the image was pushed (epoch seconds): the newer push wins.
    pub pushed_at: f64,
    pub requested_at: f64,
    /// When the wait times out (epoch seconds) and the push ends SKIPPED.
    pub expires_at: f64,
}

impl PendingApproval {
    pub fn is_expired(&self, now: f64) -> bool {
        now >= self.expires_at
    }
}

impl PendingApproval {
    /// Whether a push changing `self`'s containers changes every container of `other` too.
    fn covers(&self, other: &PendingApproval) -> bool {
        self.containers.is_empty() || other.containers.iter().all(|c| self.containers.contains(c))
    }
}

/// What parking a new approval does to those already pending for the service.
#[derive(Debug, Clone, PartialEq)]
pub enum Parking {
    /// Park: `pending` is the list to store (the arriving push last); `superseded` are older
    /// pushes the arriving one covers, whose tokens must be failed before they leave the list.
    Park { pending: Vec<PendingApproval>, superseded: Vec<PendingApproval> },
    /// A newer push that covers this one is already pending: this one is superseded itself.
    Superseded { by: PendingApproval },
}

/// Parks `arriving` among the approvals `existing` for its service. A push supersedes only what
/// it covers: a pending `app` push stays when a `sidecar` push of the same service arrives.
pub fn parking(existing: &[PendingApproval], arriving: &PendingApproval, now: f64) -> Parking {
    // Its own execution re-parking (a retried invocation) replaces itself; expired waits are over.
    let live: Vec<&PendingApproval> =
        existing.iter().filter(|p| p.execution_arn != arriving.execution_arn && !p.is_expired(now)).collect();
    if let Some(by) = live.iter().find(|p| p.pushed_at > arriving.pushed_at && p.covers(arriving)) {
        return Parking::Superseded { by: (*by).clone() };
    }
    let (superseded, mut pending): (Vec<PendingApproval>, Vec<PendingApproval>) =
        live.into_iter().cloned().partition(|p| arriving.covers(p));
    pending.push(arriving.clone());
    Parking::Park { pending, superseded }
}

/// The output a decided approval gives the waiting execution (SendTaskSuccess).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approved {
    pub approved_by: String,
    #[serde(default)]
    pub reason: String,
    pub at: f64,
}

/// The error names the waiting task fails with (SendTaskFailure), which its Catch matches.
pub const REJECTED_ERROR: &str = "Rejected";
pub const SUPERSEDED_ERROR: &str = "Superseded";

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(execution: &str, pushed_at: f64) -> PendingApproval {
        for_containers(execution, pushed_at, &["app"])
    }

    fn for_containers(execution: &str, pushed_at: f64, containers: &[&str]) -> PendingApproval {
        PendingApproval {
            token: format!("token-{execution}"),
            cluster: "c".into(),
            service: "api".into(),
            service_arn: "arn".into(),
            image: "api=x".into(),
            changes: vec![],
            containers: containers.iter().map(|c| c.to_string()).collect(),
            execution_arn: execution.into(),
            pushed_at,
            requested_at: pushed_at,
            expires_at: pushed_at + 600.0,
        }
    }

    fn parked(pending: Vec<PendingApproval>, superseded: Vec<PendingApproval>) -> Parking {
        Parking::Park { pending, superseded }
    }

    #[test]
    fn the_newer_push_wins_the_wait() {
        let (older, newer) = (pending("a", 10.0), pending("b", 20.0));
        assert_eq!(parking(&[], &older, 11.0), parked(vec![older.clone()], vec![]));
        assert_eq!(
            parking(std::slice::from_ref(&older), &newer, 21.0),
            parked(vec![newer.clone()], vec![older.clone()])
        );
        assert_eq!(parking(std::slice::from_ref(&newer), &older, 21.0), Parking::Superseded { by: newer });
    }

    #[test]
    fn a_retry_or_an_expired_wait_parks_again() {
        let a = pending("a", 10.0);
        assert_eq!(parking(std::slice::from_ref(&a), &a, 11.0), parked(vec![a.clone()], vec![]));
        assert_eq!(parking(&[pending("b", 20.0)], &a, 700.0), parked(vec![a], vec![]));
    }

    #[test]
    fn a_push_supersedes_only_the_containers_it_covers() {
        let app = for_containers("a", 10.0, &["app"]);
        let sidecar = for_containers("b", 20.0, &["sidecar"]);
        assert_eq!(
            parking(std::slice::from_ref(&app), &sidecar, 21.0),
            parked(vec![app.clone(), sidecar.clone()], vec![])
        );
        // A push of both supersedes each older one; an older push of both is not superseded by
        // a newer push of one of them (it would lose the other container's change).
        let both = for_containers("c", 30.0, &["app", "sidecar"]);
        assert_eq!(
            parking(&[app.clone(), sidecar.clone()], &both, 31.0),
            parked(vec![both.clone()], vec![app.clone(), sidecar.clone()])
        );
        let older_both = for_containers("d", 5.0, &["app", "sidecar"]);
        assert_eq!(
            parking(std::slice::from_ref(&older_both), &app, 11.0),
            parked(vec![older_both.clone(), app.clone()], vec![])
        );
        // A newer pending push of both covers an older single-container arrival.
        assert_eq!(parking(std::slice::from_ref(&both), &app, 31.0), Parking::Superseded { by: both });
    }
}
