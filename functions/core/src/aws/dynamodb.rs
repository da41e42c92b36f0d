//! DynamoDB adapter: one item per service holding its record, written with optimistic
//! concurrency (a version number checked by a condition expression).

use super::classify;
use crate::domain::approval::PendingApproval;
use crate::domain::hook::HookFailure;
use crate::domain::ledger::ServiceRecord;
use crate::domain::wake::{Claim, Release, Waiter};
use crate::error::{DeckhandError, Result};
use crate::ports::{Approvals, HookFailures, Ledger, Version, Waiters};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Records of services nobody deploys any more expire (DynamoDB TTL) after this long.
const RECORD_RETENTION_SECONDS: u64 = 400 * 24 * 3600;

pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(config: &aws_config::SdkConfig, table: String) -> Self {
        Self { client: Client::new(config), table }
    }

    /// The item under `key`, read consistently (a lock decision must see the last write).
    async fn item(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        Ok(output.item)
    }
}

impl Ledger for DynamoLedger {
    async fn load(&self, key: &str) -> Result<(ServiceRecord, Option<Version>)> {
        let Some(item) = self.item(key).await? else { return Ok((ServiceRecord::default(), None)) };
        let version = match item.get("version") {
            None => None,
            Some(value) => Some(value.as_n().ok().and_then(|n| n.parse().ok()).ok_or_else(|| {
                DeckhandError::AwsRequestFailed(format!("state of {key} has an unreadable version: {value:?}"))
            })?),
        };
        let record = match item.get("record").and_then(|v| v.as_s().ok()) {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| DeckhandError::AwsRequestFailed(format!("state of {key} is unreadable: {e}")))?,
            None => ServiceRecord::default(),
        };
        Ok((record, version))
    }

    async fn save(&self, key: &str, record: &ServiceRecord, expected: Option<Version>) -> Result<bool> {
        let json = serde_json::to_string(record).map_err(|e| DeckhandError::AwsRequestFailed(e.to_string()))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let next_version = expected.unwrap_or(0) + 1;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("version", AttributeValue::N(next_version.to_string()))
            .item("record", AttributeValue::S(json))
            .item("expiresAt", AttributeValue::N((now + RECORD_RETENTION_SECONDS).to_string()));
        // The lock holder and known-good revision as plain attributes, for people reading the table.
        if let Some(hold) = &record.lock {
            request = request.item("lockOwner", AttributeValue::S(hold.owner.clone()));
        }
        if let Some(good) = record.known_good.first() {
            request = request.item("knownGood", AttributeValue::S(good.task_definition.clone()));
        }
        request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("#version = :version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", AttributeValue::N(version.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(classify("PutItem", error)),
            },
        }
    }
}

/// A parked watcher outlives its rollout only by accident (an execution stopped while parked):
/// such items expire with the longest rollout a deployment could still be in.
const WAITER_RETENTION_SECONDS: u64 = 2 * 24 * 3600;

impl Waiters for DynamoLedger {
    async fn park(&self, key: &str, waiter: &Waiter) -> Result<()> {
        let json = serde_json::to_string(waiter).map_err(|e| DeckhandError::AwsRequestFailed(e.to_string()))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("waiter", AttributeValue::S(json))
            .item("token", AttributeValue::S(waiter.token.clone()))
            .item("expiresAt", AttributeValue::N((now + WAITER_RETENTION_SECONDS).to_string()))
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        Ok(())
    }

    async fn find(&self, key: &str) -> Result<Option<Waiter>> {
        let item = self.item(key).await?;
        let Some(json) = item.as_ref().and_then(|item| item.get("waiter")) else { return Ok(None) };
        let json = json
            .as_s()
            .map_err(|_| DeckhandError::AwsRequestFailed(format!("waiter {key} is not a string: {json:?}")))?;
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| DeckhandError::AwsRequestFailed(format!("waiter {key} is unreadable: {e}")))
    }

    async fn clear(&self, key: &str, token: &str) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", AttributeValue::S(token.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A newer watcher parked since: it is not ours to remove.
            Err(error)
                if matches!(error.as_service_error(), Some(DeleteItemError::ConditionalCheckFailedException(_))) =>
            {
                Ok(())
            }
            Err(error) => Err(classify("DeleteItem", error)),
        }
    }

    async fn claim(&self, key: &str, token: &str, now: f64, until: f64) -> Result<Claim> {
        // Two rounds: a claim that lapsed between the two writes of the first is taken in the
        // second; a waiter that matches neither write is gone.
        for _ in 0..2 {
            let taken = self
                .update_waiter(
                    key,
                    token,
                    "SET judgingUntil = :until, lookAgain = :no",
                    "#token = :token AND (attribute_not_exists(judgingUntil) OR judgingUntil < :now)",
                    &[(":until", number(until)), (":now", number(now)), (":no", AttributeValue::Bool(false))],
                )
                .await?;
            if taken {
                return Ok(Claim::Claimed);
            }
            let asked = self
                .update_waiter(
                    key,
                    token,
                    "SET lookAgain = :yes",
                    "#token = :token AND judgingUntil >= :now",
                    &[(":now", number(now)), (":yes", AttributeValue::Bool(true))],
                )
                .await?;
            if asked {
                return Ok(Claim::Coalesced);
            }
        }
        Ok(Claim::Gone)
    }

    async fn release(&self, key: &str, token: &str, until: f64) -> Result<Release> {
        let released = self
            .update_waiter(
                key,
                token,
                "REMOVE judgingUntil, lookAgain",
                "#token = :token AND (attribute_not_exists(lookAgain) OR lookAgain = :no)",
                &[(":no", AttributeValue::Bool(false))],
            )
            .await?;
        if released {
            return Ok(Release::Released);
        }
        let kept = self
            .update_waiter(
                key,
                token,
                "SET lookAgain = :no, judgingUntil = :until",
                "#token = :token AND lookAgain = :yes",
                &[
                    (":no", AttributeValue::Bool(false)),
                    (":yes", AttributeValue::Bool(true)),
                    (":until", number(until)),
                ],
            )
            .await?;
        Ok(if kept { Release::JudgeAgain } else { Release::Gone })
    }

    async fn abandon(&self, key: &str, token: &str) -> Result<()> {
        self.update_waiter(key, token, "REMOVE judgingUntil, lookAgain", "#token = :token", &[]).await?;
        Ok(())
    }
}

fn number(value: f64) -> AttributeValue {
    AttributeValue::N(format!("{value:.3}"))
}

impl DynamoLedger {
    /// A conditional update of the waiter holding `token`; false when the condition failed
    /// (another invocation's write came first, or the waiter is gone). Never creates an item.
    async fn update_waiter(
        &self,
        key: &str,
        token: &str,
        update: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", AttributeValue::S(token.to_string()));
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        let result: std::result::Result<UpdateItemOutput, _> = request.send().await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(error.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) =>
            {
                Ok(false)
            }
            Err(error) => Err(classify("UpdateItem", error)),
        }
    }
}

impl Approvals for DynamoLedger {
    async fn find_approvals(&self, key: &str) -> Result<(Vec<PendingApproval>, Option<Version>)> {
        let Some(item) = self.item(key).await? else { return Ok((vec![], None)) };
        let unreadable =
            |e: serde_json::Error| DeckhandError::AwsRequestFailed(format!("approval {key} is unreadable: {e}"));
        let version = item.get("version").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
        if let Some(json) = item.get("approvals").and_then(|v| v.as_s().ok()) {
            return Ok((serde_json::from_str(json).map_err(unreadable)?, version));
        }
        // An item written before approvals were kept as a list: one pending push, no version.
        match item.get("approval").and_then(|v| v.as_s().ok()) {
            Some(json) => Ok((vec![serde_json::from_str(json).map_err(unreadable)?], None)),
            None => Ok((vec![], None)),
        }
    }

    async fn save_approvals(
        &self,
        key: &str,
        approvals: &[PendingApproval],
        expected: Option<Version>,
    ) -> Result<bool> {
        let (condition, values) = match expected {
            None => ("attribute_not_exists(#version)", None),
            Some(version) => ("#version = :version", Some(AttributeValue::N(version.to_string()))),
        };
        if approvals.is_empty() {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(key.to_string()))
                .condition_expression(condition)
                .expression_attribute_names("#version", "version")
                .set_expression_attribute_values(values.map(|v| HashMap::from([(":version".to_string(), v)])))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(true),
                Err(error) => match error.as_service_error() {
                    Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(false),
                    _ => Err(classify("DeleteItem", error)),
                },
            };
        }
        let json = serde_json::to_string(approvals).map_err(|e| DeckhandError::AwsRequestFailed(e.to_string()))?;
        // Expires (DynamoDB TTL) a day after its last wait: timed-out waits leave their item behind.
        let last = approvals.iter().map(|a| a.expires_at).fold(0.0, f64::max);
        let expires = last.ceil() as u64 + 24 * 3600;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("approvals", AttributeValue::S(json))
            .item("version", AttributeValue::N((expected.unwrap_or(0) + 1).to_string()))
            .item("expiresAt", AttributeValue::N(expires.to_string()))
            .condition_expression(condition)
            .expression_attribute_names("#version", "version")
            .set_expression_attribute_values(values.map(|v| HashMap::from([(":version".to_string(), v)])))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(classify("PutItem", error)),
            },
        }
    }
}

/// A hook failure matters to the rollout it ended, which lasts at most days.
const HOOK_FAILURE_RETENTION_SECONDS: u64 = 2 * 24 * 3600;

impl HookFailures for DynamoLedger {
    async fn record_hook_failure(&self, key: &str, failure: &HookFailure) -> Result<()> {
        let json = serde_json::to_string(failure).map_err(|e| DeckhandError::AwsRequestFailed(e.to_string()))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_string()))
            .item("hookFailure", AttributeValue::S(json))
            .item("expiresAt", AttributeValue::N((now + HOOK_FAILURE_RETENTION_SECONDS).to_string()))
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        Ok(())
    }

    async fn hook_failure(&self, key: &str) -> Result<Option<HookFailure>> {
        let Some(item) = self.item(key).await? else { return Ok(None) };
        Ok(item.get("hookFailure").and_then(|v| v.as_s().ok()).and_then(|json| serde_json::from_str(json).ok()))
    }
}
