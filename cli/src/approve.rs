//! `deckhand approve|reject CLUSTER SERVICE`: decide the push waiting for approval on a service
//! (`deckhand:approval=required`). Approving lets its deployment go on; rejecting ends it SKIPPED.

use crate::cloud::Cloud;
use crate::output::{self, Error, Exit, Result};
use crate::status::services;
use crate::Format;
use deckhand_core::app::approval::{decide, Decision};
use serde_json::json;

pub async fn run(
    cloud: &Cloud,
    format: Format,
    cluster: &str,
    service: &str,
    decision: Decision,
    reason: &str,
) -> Result<Exit> {
    let snapshot =
        services(cloud, cluster, Some(service)).await?.into_iter().find(|s| s.is_active()).ok_or_else(|| {
            Error::InvalidInput(format!("service: no active service {service:?} in cluster {cluster:?}"))
        })?;
    let by = who(cloud).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let decided = decide(cloud.ledger().await?, &cloud.executions, &snapshot.arn, decision, &by, reason, now).await?;
    let verb = match decision {
        Decision::Approve => "approved",
        Decision::Reject => "rejected",
    };
    match format {
        Format::Json => output::json(&json!({
            "service": snapshot.name,
            "cluster": cluster,
            "decision": verb,
            "by": by,
            "pushes": decided.iter().map(|d| json!({
                "image": d.image,
                "changes": d.changes,
                "execution": d.execution_arn,
            })).collect::<Vec<_>>(),
        })),
        Format::Text => {
            // Pushes of different containers wait side by side; a decision answers all of them.
            for push in &decided {
                println!("{verb} {} on {} (by {by})", push.image, push.service);
                for change in &push.changes {
                    println!("  {change}");
                }
                println!("follow it: deckhand watch {}", push.execution_arn);
            }
        }
    }
    Ok(Exit::Ok)
}

/// Who decides, for the record: the caller's identity (STS GetCallerIdentity needs no
/// permission), else the local user.
async fn who(cloud: &Cloud) -> String {
    let local = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    match aws_sdk_sts::Client::new(&cloud.config).get_caller_identity().send().await {
        Ok(identity) => identity.arn().map_or(local, str::to_string),
        Err(_) => local,
    }
}
