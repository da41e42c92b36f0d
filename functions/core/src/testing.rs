//! An in-memory implementation of every port, for unit tests of the use cases.

use crate::domain::approval::PendingApproval;
use crate::domain::events::DeploymentEvent;
use crate::domain::gates::AlarmSnapshot;
use crate::domain::ledger::{HolderStatus, ServiceRecord};
use crate::domain::snapshot::{DeploymentSnapshot, ImageDetail, ServiceSnapshot, TargetSnapshot, TaskSnapshot};
use crate::domain::wake::{Claim, Release, Waiter};
use crate::error::{DeckhandError, Result};
use crate::ports::{
    Alarms, Approvals, Ecs, EventSink, Executions, HookFailures, ImageSelector, Ledger, LoadBalancer, Registry,
    Tagging, TaskTokens, TokenOutcome, Version, Waiters,
};
use aws_sdk_ecs::types::{ContainerDefinition, Tag, TaskDefinition};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub const ACCOUNT: &str = "123456789012";
pub const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

pub fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

pub fn td_arn(family: &str, revision: u32) -> String {
    format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{family}:{revision}")
}

#[derive(Default)]
pub struct State {
    pub services: Vec<ServiceSnapshot>,
    pub task_definitions: BTreeMap<String, (TaskDefinition, Vec<Tag>)>,
    /// (repository, tag or digest) → image.
    pub images: BTreeMap<(String, String), ImageDetail>,
    pub tasks: Vec<TaskSnapshot>,
    pub targets: BTreeMap<String, Vec<TargetSnapshot>>,
    pub records: BTreeMap<String, (ServiceRecord, Version)>,
    pub executions: BTreeMap<String, HolderStatus>,
    pub events: Vec<DeploymentEvent>,
    /// Every call made, as "Operation target", to assert what changed (or did not).
    pub calls: Vec<String>,
    pub next_deployment: u32,
    pub waiters: BTreeMap<String, Waiter>,
    /// Task tokens completed, with their output; a token completed twice is closed.
    pub completed_tokens: Vec<(String, serde_json::Value)>,
    pub alarms: Vec<AlarmSnapshot>,
    pub approvals: BTreeMap<String, (Vec<PendingApproval>, Version)>,
    /// Task tokens failed, with their error name and cause.
    pub failed_tokens: Vec<(String, String, String)>,
    /// SendTaskFailure calls still to answer with throttling (then they go through).
    pub throttle_token_failures: usize,
    /// ECR tagging calls (PutImage, BatchDeleteImage) still to fail with an access denial.
    pub deny_image_tagging: usize,
    /// Lagging reads: DescribeServices answers these older snapshots first, one per call (ECS
    /// reads are eventually consistent).
    pub stale_service_reads: std::collections::VecDeque<ServiceSnapshot>,
    /// Revisions deregistered so recently that DescribeTaskDefinition still reads them ACTIVE:
    /// UpdateService refuses them as ECS does ("TaskDefinition is inactive").
    pub deregistered_unseen: Vec<String>,
    /// ECS-native service deployments by ARN; a rollback request sets ROLLBACK_REQUESTED.
    pub service_deployments: BTreeMap<String, crate::domain::snapshot::ServiceDeploymentSnapshot>,
    /// Judging claims on waiters: key → (token, claimed until, another look asked for).
    pub judging: BTreeMap<String, (String, f64, bool)>,
    /// Service records loaded (Ledger::load), to count the sweep's reads of the state table.
    pub state_reads: usize,
    pub hook_failures: BTreeMap<String, crate::domain::hook::HookFailure>,
    /// Chat messages posted (SNS Publish).
    pub chat: Vec<serde_json::Value>,
}

#[derive(Default)]
pub struct FakeCloud {
    pub state: Mutex<State>,
}

impl FakeCloud {
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn calls(&self) -> Vec<String> {
        self.with(|s| s.calls.clone())
    }

    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with("Register") || c.starts_with("Update") || c.starts_with("Put"))
            .collect()
    }

    /// Adds a task definition with the given containers (name, image) and returns its ARN.
    pub fn add_task_definition(&self, family: &str, revision: u32, containers: &[(&str, &str)]) -> String {
        let arn = td_arn(family, revision);
        let mut builder = TaskDefinition::builder().task_definition_arn(&arn).family(family).revision(revision as i32);
        for (name, image) in containers {
            builder = builder.container_definitions(
                ContainerDefinition::builder().name(*name).image(*image).essential(true).build(),
            );
        }
        let tags = vec![Tag::builder().key("team").value("web").build()];
        self.with(|s| s.task_definitions.insert(arn.clone(), (builder.build(), tags)));
        arn
    }

    /// Adds an ACTIVE service settled (COMPLETED) on `task_definition`.
    pub fn add_service(&self, cluster: &str, name: &str, task_definition: &str, tags: &[(&str, &str)]) -> String {
        let arn = format!("arn:aws:ecs:us-east-1:{ACCOUNT}:service/{cluster}/{name}");
        self.with(|s| {
            s.next_deployment += 1;
            s.services.push(ServiceSnapshot {
                arn: arn.clone(),
                name: name.into(),
                cluster_arn: format!("arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{cluster}"),
                status: "ACTIVE".into(),
                task_definition: task_definition.into(),
                desired_count: 1,
                running_count: 1,
                health_check_grace_period_seconds: 0,
                deployments: vec![DeploymentSnapshot {
                    id: format!("ecs-svc/{}", s.next_deployment),
                    status: "PRIMARY".into(),
                    task_definition: task_definition.into(),
                    rollout_state: "COMPLETED".into(),
                    desired_count: 1,
                    running_count: 1,
                    ..Default::default()
                }],
                load_balancers: vec![],
                tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                awsvpc: true,
                ..Default::default()
            })
        });
        arn
    }

    pub fn add_image(&self, repository: &str, tag: &str, digest: &str) {
        self.add_image_pushed_at(repository, tag, digest, 1.0);
    }

    /// An image pushed at `pushed_at` (epoch seconds), tagged `tag`.
    pub fn add_image_pushed_at(&self, repository: &str, tag: &str, digest: &str, pushed_at: f64) {
        let detail = ImageDetail { digest: digest.into(), pushed_at: Some(pushed_at), tags: vec![tag.into()] };
        self.with(|s| {
            s.images.insert((repository.into(), tag.into()), detail.clone());
            s.images.insert((repository.into(), digest.into()), detail);
        });
    }

    /// An image known by its digest, with `tags` on it (but not findable by them).
    pub fn add_image_by_digest(&self, repository: &str, digest: &str, tags: &[&str]) {
        let tags = tags.iter().map(|t| t.to_string()).collect();
        let detail = ImageDetail { digest: digest.into(), pushed_at: Some(1.0), tags };
        self.with(|s| s.images.insert((repository.into(), digest.into()), detail));
    }

    /// BatchDeleteImage by digest: the image and every tag of it are gone.
    pub fn delete_image(&self, repository: &str, digest: &str) {
        self.with(|s| s.images.retain(|(repo, _), detail| !(repo == repository && detail.digest == digest)))
    }

    /// The tags of the image `digest` in `repository`.
    pub fn image_tags(&self, repository: &str, digest: &str) -> Vec<String> {
        self.with(|s| s.images.get(&(repository.to_string(), digest.to_string())).map(|d| d.tags.clone()))
            .unwrap_or_default()
    }

    /// DeregisterTaskDefinition: the revision stays describable, as INACTIVE.
    pub fn deregister(&self, arn: &str) {
        self.with(|s| {
            let (definition, _) = s.task_definitions.get_mut(arn).expect("task definition");
            definition.status = Some(aws_sdk_ecs::types::TaskDefinitionStatus::Inactive);
        })
    }

    pub fn service(&self, name: &str) -> ServiceSnapshot {
        self.with(|s| s.services.iter().find(|x| x.name == name).cloned().expect("service"))
    }

    /// The next `reads` DescribeServices of `name` still answer what it is now, whatever changes.
    pub fn lag_service_reads(&self, name: &str, reads: usize) {
        let now = self.service(name);
        self.with(|s| s.stale_service_reads.extend(std::iter::repeat_n(now, reads)));
    }

    pub fn set_service(&self, service: ServiceSnapshot) {
        self.with(|s| {
            let slot = s.services.iter_mut().find(|x| x.arn == service.arn).expect("service");
            *slot = service;
        })
    }
}

fn cluster_matches(service: &ServiceSnapshot, cluster: &str) -> bool {
    service.cluster_arn == cluster || service.cluster_arn.ends_with(&format!("/{cluster}"))
}

impl Ecs for FakeCloud {
    async fn list_clusters(&self) -> Result<Vec<String>> {
        let mut clusters: Vec<String> = self.with(|s| s.services.iter().map(|x| x.cluster_arn.clone()).collect());
        clusters.dedup();
        Ok(clusters)
    }

    async fn list_services(&self, cluster: &str) -> Result<Vec<String>> {
        Ok(self.with(|s| s.services.iter().filter(|x| cluster_matches(x, cluster)).map(|x| x.arn.clone()).collect()))
    }

    async fn describe_services(&self, cluster: &str, services: &[String]) -> Result<Vec<ServiceSnapshot>> {
        self.with(|s| s.calls.push(format!("DescribeServices {}", services.join(","))));
        Ok(self.with(|s| {
            if let Some(stale) = s.stale_service_reads.pop_front() {
                return vec![stale];
            }
            s.services
                .iter()
                .filter(|x| cluster_matches(x, cluster) && services.iter().any(|n| n == &x.arn || n == &x.name))
                .cloned()
                .collect()
        }))
    }

    async fn describe_task_definition(&self, arn: &str) -> Result<(TaskDefinition, Vec<Tag>)> {
        self.with(|s| s.task_definitions.get(arn).cloned()).ok_or_else(|| DeckhandError::ResourceNotFound(arn.into()))
    }

    async fn register_task_definition(&self, definition: &TaskDefinition, tags: &[Tag]) -> Result<String> {
        let family = definition.family().unwrap_or_default().to_string();
        self.with(|s| {
            let revision = s.task_definitions.keys().filter(|k| k.contains(&format!("/{family}:"))).count() as u32 + 1;
            let arn = td_arn(&family, revision);
            let mut stored = definition.clone();
            stored.task_definition_arn = Some(arn.clone());
            stored.revision = revision as i32;
            s.task_definitions.insert(arn.clone(), (stored, tags.to_vec()));
            s.calls.push(format!("RegisterTaskDefinition {arn}"));
            Ok(arn)
        })
    }

    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
        force: bool,
    ) -> Result<ServiceSnapshot> {
        self.with(|s| {
            s.calls.push(format!("UpdateService {service} {task_definition} force={force}"));
            if s.deregistered_unseen.iter().any(|r| r == task_definition) {
                return Err(DeckhandError::AwsRequestFailed(
                    "UpdateService: ClientException: TaskDefinition is inactive".into(),
                ));
            }
            s.next_deployment += 1;
            let id = format!("ecs-svc/{}", s.next_deployment);
            let svc = s
                .services
                .iter_mut()
                .find(|x| cluster_matches(x, cluster) && (x.name == service || x.arn == service))
                .ok_or_else(|| DeckhandError::ResourceNotFound(service.into()))?;
            for d in &mut svc.deployments {
                d.status = "ACTIVE".into();
            }
            svc.deployments.insert(
                0,
                DeploymentSnapshot {
                    id,
                    status: "PRIMARY".into(),
                    task_definition: task_definition.into(),
                    rollout_state: "IN_PROGRESS".into(),
                    desired_count: svc.desired_count,
                    ..Default::default()
                },
            );
            svc.task_definition = task_definition.into();
            Ok(svc.clone())
        })
    }

    async fn service_tasks(&self, _cluster: &str, _service: &str) -> Result<Vec<TaskSnapshot>> {
        Ok(self.with(|s| s.tasks.clone()))
    }

    async fn service_deployment(
        &self,
        arn: &str,
    ) -> Result<Option<crate::domain::snapshot::ServiceDeploymentSnapshot>> {
        Ok(self.with(|s| s.service_deployments.get(arn).cloned()))
    }

    async fn roll_back_service_deployment(&self, arn: &str) -> Result<bool> {
        use crate::domain::status::ServiceDeploymentStatus;
        self.with(|s| {
            s.calls.push(format!("StopServiceDeployment {arn} ROLLBACK"));
            Ok(match s.service_deployments.get_mut(arn) {
                Some(d)
                    if matches!(d.status, ServiceDeploymentStatus::Pending | ServiceDeploymentStatus::InProgress) =>
                {
                    d.status = ServiceDeploymentStatus::RollbackRequested;
                    true
                }
                _ => false,
            })
        })
    }
}

impl Registry for FakeCloud {
    async fn describe_image(&self, repository: &str, selector: ImageSelector<'_>) -> Result<Option<ImageDetail>> {
        let key = match selector {
            ImageSelector::Tag(t) | ImageSelector::Digest(t) => t,
        };
        self.with(|s| {
            s.calls.push(format!("DescribeImages {repository}:{key}"));
            Ok(s.images.get(&(repository.to_string(), key.to_string())).cloned())
        })
    }

    async fn list_images(&self, repository: &str) -> Result<Vec<ImageDetail>> {
        self.with(|s| {
            s.calls.push(format!("DescribeImages {repository} (all tagged)"));
            let mut images: Vec<ImageDetail> = Vec::new();
            for ((repo, _), detail) in &s.images {
                if repo == repository && !detail.tags.is_empty() && !images.iter().any(|i| i.digest == detail.digest) {
                    images.push(detail.clone());
                }
            }
            Ok(images)
        })
    }

    async fn tag_image(&self, repository: &str, digest: &str, tag: &str) -> Result<Tagging> {
        self.with(|s| {
            s.calls.push(format!("PutImage {repository}@{digest} {tag}"));
            if s.deny_image_tagging > 0 {
                s.deny_image_tagging -= 1;
                return Err(DeckhandError::AwsRequestFailed("PutImage: AccessDeniedException".into()));
            }
            let repo = repository.to_string();
            let Some(mut detail) = s.images.get(&(repo.clone(), digest.to_string())).cloned() else {
                return Ok(Tagging::ImageGone);
            };
            if detail.tags.iter().any(|t| t == tag) {
                return Ok(Tagging::AlreadyTagged);
            }
            detail.tags.push(tag.to_string());
            // Every key of the image (its digest and each tag) sees the new tag list.
            for (key, value) in s.images.iter_mut() {
                if key.0 == repo && value.digest == detail.digest {
                    *value = detail.clone();
                }
            }
            s.images.insert((repo, tag.to_string()), detail);
            Ok(Tagging::Tagged)
        })
    }

    async fn untag_image(&self, repository: &str, tag: &str) -> Result<()> {
        self.with(|s| {
            s.calls.push(format!("BatchDeleteImage {repository}:{tag}"));
            if s.deny_image_tagging > 0 {
                s.deny_image_tagging -= 1;
                return Err(DeckhandError::AwsRequestFailed("BatchDeleteImage: AccessDeniedException".into()));
            }
            let repo = repository.to_string();
            let Some(detail) = s.images.remove(&(repo.clone(), tag.to_string())) else { return Ok(()) };
            let tags: Vec<String> = detail.tags.iter().filter(|t| *t != tag).cloned().collect();
            if tags.is_empty() {
                // The last tag: the image goes with it.
                s.images.retain(|(r, _), d| !(*r == repo && d.digest == detail.digest));
            } else {
                for (key, value) in s.images.iter_mut() {
                    if key.0 == repo && value.digest == detail.digest {
                        value.tags = tags.clone();
                    }
                }
            }
            Ok(())
        })
    }
}

impl Approvals for FakeCloud {
    async fn find_approvals(&self, key: &str) -> Result<(Vec<PendingApproval>, Option<Version>)> {
        Ok(self.with(|s| s.approvals.get(key).cloned().map_or((vec![], None), |(list, v)| (list, Some(v)))))
    }

    async fn save_approvals(
        &self,
        key: &str,
        approvals: &[PendingApproval],
        expected: Option<Version>,
    ) -> Result<bool> {
        self.with(|s| {
            if s.approvals.get(key).map(|(_, v)| *v) != expected {
                return Ok(false);
            }
            if approvals.is_empty() {
                s.approvals.remove(key);
            } else {
                s.approvals.insert(key.to_string(), (approvals.to_vec(), expected.unwrap_or(0) + 1));
            }
            Ok(true)
        })
    }
}

impl Alarms for FakeCloud {
    async fn describe_alarms(&self, names: &[String]) -> Result<Vec<AlarmSnapshot>> {
        self.with(|s| {
            s.calls.push(format!("DescribeAlarms {}", names.join(",")));
            Ok(s.alarms.iter().filter(|a| names.contains(&a.name)).cloned().collect())
        })
    }
}

impl LoadBalancer for FakeCloud {
    async fn target_health(&self, target_group_arn: &str) -> Result<Vec<TargetSnapshot>> {
        Ok(self.with(|s| s.targets.get(target_group_arn).cloned().unwrap_or_default()))
    }
}

impl Ledger for FakeCloud {
    async fn load(&self, key: &str) -> Result<(ServiceRecord, Option<Version>)> {
        Ok(self.with(|s| {
            s.state_reads += 1;
            match s.records.get(key) {
                Some((record, version)) => (record.clone(), Some(*version)),
                None => (ServiceRecord::default(), None),
            }
        }))
    }

    async fn save(&self, key: &str, record: &ServiceRecord, expected: Option<Version>) -> Result<bool> {
        Ok(self.with(|s| {
            let current = s.records.get(key).map(|(_, v)| *v);
            if current != expected {
                return false;
            }
            s.records.insert(key.to_string(), (record.clone(), expected.unwrap_or(0) + 1));
            s.calls.push(format!("PutItem {key}"));
            true
        }))
    }
}

impl Executions for FakeCloud {
    async fn status(&self, execution_arn: &str) -> Result<HolderStatus> {
        Ok(self.with(|s| s.executions.get(execution_arn).copied().unwrap_or(HolderStatus::Gone)))
    }
}

impl EventSink for FakeCloud {
    async fn publish(&self, event: &DeploymentEvent) -> Result<()> {
        self.with(|s| s.events.push(event.clone()));
        Ok(())
    }
}

impl Waiters for FakeCloud {
    async fn park(&self, key: &str, waiter: &Waiter) -> Result<()> {
        self.with(|s| s.waiters.insert(key.to_string(), waiter.clone()));
        Ok(())
    }

    async fn find(&self, key: &str) -> Result<Option<Waiter>> {
        Ok(self.with(|s| s.waiters.get(key).cloned()))
    }

    async fn clear(&self, key: &str, token: &str) -> Result<()> {
        self.with(|s| {
            if s.waiters.get(key).is_some_and(|w| w.token == token) {
                s.waiters.remove(key);
                s.judging.remove(key);
            }
        });
        Ok(())
    }

    async fn claim(&self, key: &str, token: &str, now: f64, until: f64) -> Result<Claim> {
        Ok(self.with(|s| {
            if s.waiters.get(key).is_none_or(|w| w.token != token) {
                return Claim::Gone;
            }
            match s.judging.get_mut(key) {
                Some((held, claimed_until, again)) if held == token && *claimed_until >= now => {
                    *again = true;
                    Claim::Coalesced
                }
                _ => {
                    s.judging.insert(key.to_string(), (token.to_string(), until, false));
                    Claim::Claimed
                }
            }
        }))
    }

    async fn release(&self, key: &str, token: &str, until: f64) -> Result<Release> {
        Ok(self.with(|s| {
            if s.waiters.get(key).is_none_or(|w| w.token != token) {
                return Release::Gone;
            }
            match s.judging.get_mut(key) {
                Some((held, claimed_until, again)) if held == token && *again => {
                    *again = false;
                    *claimed_until = until;
                    Release::JudgeAgain
                }
                _ => {
                    s.judging.remove(key);
                    Release::Released
                }
            }
        }))
    }

    async fn abandon(&self, key: &str, _token: &str) -> Result<()> {
        self.with(|s| s.judging.remove(key));
        Ok(())
    }
}

impl TaskTokens for FakeCloud {
    async fn complete(&self, token: &str, output: &serde_json::Value) -> Result<TokenOutcome> {
        Ok(self.with(|s| {
            if s.completed_tokens.iter().any(|(t, _)| t == token) {
                return TokenOutcome::AlreadyClosed;
            }
            s.completed_tokens.push((token.to_string(), output.clone()));
            TokenOutcome::Completed
        }))
    }

    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<TokenOutcome> {
        let throttled = self.with(|s| {
            let throttled = s.throttle_token_failures > 0;
            s.throttle_token_failures = s.throttle_token_failures.saturating_sub(1);
            throttled
        });
        if throttled {
            return Err(DeckhandError::AwsThrottled("SendTaskFailure: Rate exceeded".into()));
        }
        Ok(self.with(|s| {
            let closed = s.completed_tokens.iter().any(|(t, _)| t == token)
                || s.failed_tokens.iter().any(|(t, _, _)| t == token);
            if closed {
                return TokenOutcome::AlreadyClosed;
            }
            s.failed_tokens.push((token.to_string(), error.to_string(), cause.to_string()));
            TokenOutcome::Completed
        }))
    }
}

impl HookFailures for FakeCloud {
    async fn record_hook_failure(&self, key: &str, failure: &crate::domain::hook::HookFailure) -> Result<()> {
        self.with(|s| {
            s.calls.push(format!("PutItem {key}"));
            s.hook_failures.insert(key.to_string(), failure.clone());
        });
        Ok(())
    }

    async fn hook_failure(&self, key: &str) -> Result<Option<crate::domain::hook::HookFailure>> {
        Ok(self.with(|s| s.hook_failures.get(key).cloned()))
    }
}

impl crate::ports::Chat for FakeCloud {
    async fn post(&self, message: &serde_json::Value) -> Result<()> {
        self.with(|s| s.chat.push(message.clone()));
        Ok(())
    }
}
