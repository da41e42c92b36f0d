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

/// What parking a new approval does to the one already pending for the service, if any.
#[derive(Debug, Clone, PartialEq)]
pub enum Parking {
    /// Nothing else is pending: park.
    Park,
    /// An older push is pending: it is superseded (its token failed) and this one parks.
    Supersede { older: PendingApproval },
    /// A newer push is already pending: this one is superseded itself.
    Superseded { by: PendingApproval },
}

pub fn parking(existing: Option<PendingApproval>, arriving: &PendingApproval, now: f64) -> Parking {
    match existing {
        None => Parking::Park,
        // Its execution re-parking (a retried invocation): replace it.
        Some(pending) if pending.execution_arn == arriving.execution_arn => Parking::Park,
        Some(pending) if pending.is_expired(now) => Parking::Park,
        Some(pending) if pending.pushed_at > arriving.pushed_at => Parking::Superseded { by: pending },
        Some(pending) => Parking::Supersede { older: pending },
    }
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
        PendingApproval {
            token: format!("token-{execution}"),
            cluster: "c".into(),
            service: "api".into(),
            service_arn: "arn".into(),
            image: "api=x".into(),
            changes: vec![],
            execution_arn: execution.into(),
            pushed_at,
            requested_at: pushed_at,
            expires_at: pushed_at + 600.0,
        }
    }

    #[test]
    fn the_newer_push_wins_the_wait() {
        assert_eq!(parking(None, &pending("a", 10.0), 11.0), Parking::Park);
        let older = pending("a", 10.0);
        assert_eq!(
            parking(Some(older.clone()), &pending("b", 20.0), 21.0),
            Parking::Supersede { older: older.clone() }
        );
        let newer = pending("b", 20.0);
        assert_eq!(parking(Some(newer.clone()), &older, 21.0), Parking::Superseded { by: newer });
    }

    #[test]
    fn a_retry_or_an_expired_wait_parks_again() {
        assert_eq!(parking(Some(pending("a", 10.0)), &pending("a", 10.0), 11.0), Parking::Park);
        assert_eq!(parking(Some(pending("b", 20.0)), &pending("a", 10.0), 700.0), Parking::Park);
    }
}
