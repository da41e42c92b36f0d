//! The AWS APIs deckhand uses, as small traits. The domain and use cases depend on these; the
//! adapters in `aws/` implement them with the AWS SDK, and tests implement them in memory.

use crate::domain::approval::PendingApproval;
use crate::domain::events::DeploymentEvent;
use crate::domain::gates::AlarmSnapshot;
use crate::domain::hook::HookFailure;
use crate::domain::ledger::{HolderStatus, ServiceRecord};
use crate::domain::snapshot::{ImageDetail, ServiceDeploymentSnapshot, ServiceSnapshot, TargetSnapshot, TaskSnapshot};
use crate::domain::wake::{Claim, Release, Waiter};
use crate::error::Result;
use aws_sdk_ecs::types::{Tag, TaskDefinition};
use std::future::Future;

pub trait Ecs: Send + Sync {
    fn list_clusters(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Service ARNs of a cluster.
    fn list_services(&self, cluster: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Services (with tags) by name or ARN; services that do not exist are left out.
    fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> impl Future<Output = Result<Vec<ServiceSnapshot>>> + Send;
    /// A task definition and its tags.
    fn describe_task_definition(&self, arn: &str) -> impl Future<Output = Result<(TaskDefinition, Vec<Tag>)>> + Send;
    /// Registers `definition` as a new revision of its family; returns the new ARN.
    fn register_task_definition(
        &self,
        definition: &TaskDefinition,
        tags: &[Tag],
    ) -> impl Future<Output = Result<String>> + Send;
    fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
        force_new_deployment: bool,
    ) -> impl Future<Output = Result<ServiceSnapshot>> + Send;
    /// Running and recently stopped tasks of a service.
    fn service_tasks(&self, cluster: &str, service: &str) -> impl Future<Output = Result<Vec<TaskSnapshot>>> + Send;
    /// ECS-native strategies: a service deployment (DescribeServiceDeployments), None when ECS
    /// does not know it (any more).
    fn service_deployment(&self, arn: &str) -> impl Future<Output = Result<Option<ServiceDeploymentSnapshot>>> + Send;
    /// ECS-native strategies: asks ECS to roll back a service deployment in progress
    /// (StopServiceDeployment, stopType ROLLBACK). Ok(false) when it is no longer in progress.
    fn roll_back_service_deployment(&self, arn: &str) -> impl Future<Output = Result<bool>> + Send;
}

/// Which image an ECR lookup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSelector<'a> {
    Tag(&'a str),
    Digest(&'a str),
}

/// What adding a tag to an image came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagging {
    Tagged,
    /// The image already carried the tag (ECR: `ImageAlreadyExistsException`).
    AlreadyTagged,
    /// No such image (expired or deleted) or repository.
    ImageGone,
}

/// ECR. `repository` is a repository key (`domain::registry`): a name in deckhand's own
/// registry, or the repository URI (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME`) of another
/// account's or Region's registry, read with what its repository policy grants.
pub trait Registry: Send + Sync {
    /// The image, or None when the repository or image is absent.
    fn describe_image(
        &self,
        repository: &str,
        selector: ImageSelector<'_>,
    ) -> impl Future<Output = Result<Option<ImageDetail>>> + Send;
    /// Every tagged image of the repository (DescribeImages, all pages), none when the
    /// repository is absent. For the sweep's prefix and range rules.
    fn list_images(&self, repository: &str) -> impl Future<Output = Result<Vec<ImageDetail>>> + Send;
    /// Adds `tag` to the image `digest` (BatchGetImage of its manifest, then PutImage of the same
    /// manifest with the tag).
    fn tag_image(&self, repository: &str, digest: &str, tag: &str) -> impl Future<Output = Result<Tagging>> + Send;
    /// Removes `tag` (BatchDeleteImage by tag: ECR removes only the tag while the image has
    /// another one, and the image with its last tag). A tag that is not there is not an error.
    fn untag_image(&self, repository: &str, tag: &str) -> impl Future<Output = Result<()>> + Send;
}

/// CloudWatch alarms, for the alarm gate.
pub trait Alarms: Send + Sync {
    /// The named alarms that exist (metric and composite), in no particular order.
    fn describe_alarms(&self, names: &[String]) -> impl Future<Output = Result<Vec<AlarmSnapshot>>> + Send;
}

pub trait LoadBalancer: Send + Sync {
    fn target_health(&self, target_group_arn: &str) -> impl Future<Output = Result<Vec<TargetSnapshot>>> + Send;
}

/// A version token for optimistic concurrency on a service record.
pub type Version = u64;

pub trait Ledger: Send + Sync {
    fn load(&self, key: &str) -> impl Future<Output = Result<(ServiceRecord, Option<Version>)>> + Send;
    /// Saves only if the stored version is still `expected` (None: the record must not exist).
    /// Returns false when another writer got there first.
    fn save(
        &self,
        key: &str,
        record: &ServiceRecord,
        expected: Option<Version>,
    ) -> impl Future<Output = Result<bool>> + Send;
}

pub trait Executions: Send + Sync {
    fn status(&self, execution_arn: &str) -> impl Future<Output = Result<HolderStatus>> + Send;
}

pub trait EventSink: Send + Sync {
    fn publish(&self, event: &DeploymentEvent) -> impl Future<Output = Result<()>> + Send;
}

/// Parked rollout watchers (one per service), next to the ledger in the state table.
pub trait Waiters: Send + Sync {
    fn park(&self, key: &str, waiter: &Waiter) -> impl Future<Output = Result<()>> + Send;
    fn find(&self, key: &str) -> impl Future<Output = Result<Option<Waiter>>> + Send;
    /// Removes the waiter only if it still holds `token` (a newer one parked since stays).
    fn clear(&self, key: &str, token: &str) -> impl Future<Output = Result<()>> + Send;
    /// Claims the judging of the waiter holding `token` until `until` (epoch seconds; a claim
    /// whose holder died lapses then), or, when another invocation holds an unexpired claim,
    /// asks that one to judge once more.
    fn claim(&self, key: &str, token: &str, now: f64, until: f64) -> impl Future<Output = Result<Claim>> + Send;
    /// Gives the claim back, unless an event asked for another look meanwhile: then the claim
    /// is kept until `until` and the answer is [`Release::JudgeAgain`].
    fn release(&self, key: &str, token: &str, until: f64) -> impl Future<Output = Result<Release>> + Send;
    /// Gives the claim back whatever was asked meanwhile (after an error: the event is retried).
    fn abandon(&self, key: &str, token: &str) -> impl Future<Output = Result<()>> + Send;
}

/// Whether a task token was completed by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOutcome {
    Completed,
    /// The task already ended (completed by a duplicate event, timed out, execution stopped):
    /// nothing to do, which is what makes duplicate and late events harmless.
    AlreadyClosed,
}

pub trait TaskTokens: Send + Sync {
    fn complete(&self, token: &str, output: &serde_json::Value) -> impl Future<Output = Result<TokenOutcome>> + Send;
    /// Fails the task with `error` (the name its Catch matches) and `cause`.
    fn fail(&self, token: &str, error: &str, cause: &str) -> impl Future<Output = Result<TokenOutcome>> + Send;
}

/// Pushes waiting for approval (a list per service: pushes of different containers wait side
/// by side), next to the ledger in the state table, written with optimistic concurrency.
pub trait Approvals: Send + Sync {
    fn find_approvals(&self, key: &str)
        -> impl Future<Output = Result<(Vec<PendingApproval>, Option<Version>)>> + Send;
    /// Stores `approvals` only if the stored version is still `expected` (None: no list may be
    /// stored); an empty list removes it. Returns false when another writer got there first.
    fn save_approvals(
        &self,
        key: &str,
        approvals: &[PendingApproval],
        expected: Option<Version>,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// What deckhand's lifecycle hook failed a service deployment for, next to the ledger in the
/// state table: ECS says only that a hook failed, the rollout's verdict says why.
pub trait HookFailures: Send + Sync {
    fn record_hook_failure(&self, key: &str, failure: &HookFailure) -> impl Future<Output = Result<()>> + Send;
    fn hook_failure(&self, key: &str) -> impl Future<Output = Result<Option<HookFailure>>> + Send;
}

/// A chat channel's topic (Amazon Q Developer in chat applications reads SNS).
pub trait Chat: Send + Sync {
    fn post(&self, message: &serde_json::Value) -> impl Future<Output = Result<()>> + Send;
}
