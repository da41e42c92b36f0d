//! The approval gate's two halves: a push's deployment parks on a task token and announces what
//! it would change (`AWAITING_APPROVAL`); a person's decision completes the token.

use crate::domain::approval::{
    approval_key, parking, Approved, Parking, PendingApproval, REJECTED_ERROR, SUPERSEDED_ERROR,
};
use crate::domain::events::{DeploymentEvent, Status};
use crate::domain::model::Target;
use crate::domain::taskdef::{describe_changes, retarget};
use crate::error::{DeckhandError, Result};
use crate::ports::{Approvals, Ecs, EventSink, TaskTokens, TokenOutcome};

/// Where a push's wait for approval stands once parked.
#[derive(Debug, Clone, PartialEq)]
pub enum Waiting {
    /// Parked; the AWAITING_APPROVAL event is out.
    Parked(PendingApproval),
    /// A newer push is already waiting: this one's token was failed with `Superseded`.
    Superseded(String),
}

/// The execution that waits, and where its events belong.
#[derive(Debug, Clone)]
pub struct Waiter<'a> {
    pub execution_arn: &'a str,
    pub parent_execution_arn: Option<&'a str>,
    pub token: &'a str,
}

pub async fn await_approval(
    approvals: &impl Approvals,
    tokens: &impl TaskTokens,
    ecs: &impl Ecs,
    sink: &impl EventSink,
    target: &Target,
    waiter: &Waiter<'_>,
    now: f64,
) -> Result<Waiting> {
    let timeout = target
        .policy
        .gates
        .approval_timeout_seconds
        .ok_or_else(|| DeckhandError::invalid("target", format!("{} does not require approval", target.service)))?;
    let (definition, _) = ecs.describe_task_definition(&target.task_definition).await?;
    let (_, changes) = retarget(&definition, &target.containers)?;
    let arriving = PendingApproval {
        token: waiter.token.to_string(),
        cluster: target.cluster.clone(),
        service: target.service.clone(),
        service_arn: target.service_arn.clone(),
        image: target.image.clone(),
        changes: describe_changes(definition.family().unwrap_or(&target.service), &changes),
        containers: target.containers.iter().map(|c| c.name.clone()).collect(),
        execution_arn: waiter.execution_arn.to_string(),
        pushed_at: target.pushed_at,
        requested_at: now,
        expires_at: now + timeout as f64,
    };
    let key = approval_key(target.service_key());
    // Two pushes may park at once; the conditional write makes one of them re-read.
    for _ in 0..5 {
        let (existing, version) = approvals.find_approvals(&key).await?;
        match parking(&existing, &arriving, now) {
            Parking::Superseded { by } => {
                let why = format!("superseded: a newer push ({}) is already awaiting approval", by.image);
                tokens.fail(waiter.token, SUPERSEDED_ERROR, &why).await?;
                return Ok(Waiting::Superseded(why));
            }
            Parking::Park { pending, superseded } => {
                // Their tokens are failed before they leave the list: a failure to fail one
                // (throttled, say) fails this invocation, whose retry finds them still listed
                // and fails them again. None is left stranded until its timeout.
                for older in &superseded {
                    let why = format!("superseded: a newer push ({}) is awaiting approval instead", arriving.image);
                    tokens.fail(&older.token, SUPERSEDED_ERROR, &why).await?;
                }
                if !approvals.save_approvals(&key, &pending, version).await? {
                    continue;
                }
            }
        }
        sink.publish(&awaiting_event(&arriving, target, waiter)).await?;
        tracing::info!(service = %target.service_arn, "awaiting approval");
        return Ok(Waiting::Parked(arriving));
    }
    Err(DeckhandError::AwsThrottled(format!("approval of {} kept changing while parking", target.service)))
}

fn awaiting_event(pending: &PendingApproval, target: &Target, waiter: &Waiter<'_>) -> DeploymentEvent {
    DeploymentEvent {
        cluster: target.cluster.clone(),
        service: target.service.clone(),
        image: target.image.clone(),
        status: Status::AwaitingApproval,
        reason: format!(
            "{} waits for approval until {}: deckhand approve {} {} (or reject)",
            target.service,
            crate::domain::release::rfc3339(pending.expires_at),
            target.cluster,
            target.service
        ),
        task_definition: None,
        previous_task_definition: Some(target.task_definition.clone()),
        execution_arn: waiter.parent_execution_arn.unwrap_or(waiter.execution_arn).to_string(),
        service_execution_arn: Some(waiter.execution_arn.to_string()),
        trigger: target.trigger,
        changes: Some(pending.changes.clone()),
        ecs_deployment: None,
        timings: Default::default(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// Decides every push waiting for approval on the service `service_key` (its ARN): pushes of
/// different containers may wait side by side, and a person approves the service's pending
/// changes. Returns them, oldest first.
pub async fn decide(
    approvals: &impl Approvals,
    tokens: &impl TaskTokens,
    service_key: &str,
    decision: Decision,
    by: &str,
    reason: &str,
    now: f64,
) -> Result<Vec<PendingApproval>> {
    let key = approval_key(service_key);
    for _ in 0..5 {
        let (pending, version) = approvals.find_approvals(&key).await?;
        let (live, _expired): (Vec<PendingApproval>, Vec<PendingApproval>) =
            pending.into_iter().partition(|p| !p.is_expired(now));
        if live.is_empty() {
            return Err(DeckhandError::invalid("service", format!("no push to {service_key} is awaiting approval")));
        }
        let mut decided = Vec::new();
        for approval in &live {
            let outcome = match decision {
                Decision::Approve => {
                    let approved = Approved { approved_by: by.to_string(), reason: reason.to_string(), at: now };
                    let output =
                        serde_json::to_value(&approved).map_err(|e| DeckhandError::AwsRequestFailed(e.to_string()))?;
                    tokens.complete(&approval.token, &output).await?
                }
                Decision::Reject => {
                    let cause = if reason.is_empty() {
                        format!("rejected by {by}")
                    } else {
                        format!("rejected by {by}: {reason}")
                    };
                    tokens.fail(&approval.token, REJECTED_ERROR, &cause).await?
                }
            };
            if outcome == TokenOutcome::Completed {
                decided.push(approval.clone());
            }
        }
        // Every listed wait was answered (or had already ended): none stays pending.
        if !approvals.save_approvals(&key, &[], version).await? {
            continue;
        }
        if decided.is_empty() {
            return Err(DeckhandError::invalid(
                "service",
                format!("the wait of {} had already ended (timed out, superseded or stopped)", live[0].service),
            ));
        }
        decided.sort_by(|a, b| a.pushed_at.total_cmp(&b.pushed_at));
        return Ok(decided);
    }
    Err(DeckhandError::AwsThrottled(format!("the approvals of {service_key} kept changing while deciding")))
}
