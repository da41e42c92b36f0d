//! ECS adapter.

use super::{classify, seconds};
use crate::domain::snapshot::{
    native_wait_seconds, ContainerSnapshot, DeploymentSnapshot, LifecycleHookRef, LoadBalancerRef, PortBinding,
    ServiceDeploymentSnapshot, ServiceSnapshot, TaskSnapshot,
};
use crate::domain::status::DeploymentStrategy;
use crate::error::{DeckhandError, Result};
use crate::ports::Ecs;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types::{
    DesiredStatus, Service, ServiceDeployment, ServiceField, StopServiceDeploymentStopType, Tag, Task, TaskDefinition,
    TaskDefinitionField,
};
use aws_sdk_ecs::Client;
use std::collections::BTreeMap;

pub struct EcsAdapter {
    client: Client,
}

impl EcsAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: Client::new(config) }
    }
}

/// Fills RegisterTaskDefinition with every registrable field of `definition`. Read-only fields
/// (ARN, revision, status, requiresAttributes, compatibilities, registeredAt/By, …) are the only
/// ones left out; the test `register_keeps_every_registrable_field` guards this list.
// Inference accelerators are deprecated by AWS, but a definition that has them must keep them.
#[allow(deprecated)]
pub fn register_request(
    builder: RegisterTaskDefinitionFluentBuilder,
    definition: &TaskDefinition,
    tags: &[Tag],
) -> RegisterTaskDefinitionFluentBuilder {
    let d = definition.clone();
    builder
        .set_family(d.family)
        .set_task_role_arn(d.task_role_arn)
        .set_execution_role_arn(d.execution_role_arn)
        .set_network_mode(d.network_mode)
        .set_container_definitions(d.container_definitions)
        .set_volumes(d.volumes)
        .set_placement_constraints(d.placement_constraints)
        .set_requires_compatibilities(d.requires_compatibilities)
        .set_cpu(d.cpu)
        .set_memory(d.memory)
        .set_pid_mode(d.pid_mode)
        .set_ipc_mode(d.ipc_mode)
        .set_proxy_configuration(d.proxy_configuration)
        .set_inference_accelerators(d.inference_accelerators)
        .set_ephemeral_storage(d.ephemeral_storage)
        .set_runtime_platform(d.runtime_platform)
        .set_enable_fault_injection(d.enable_fault_injection)
        .set_tags((!tags.is_empty()).then(|| tags.to_vec()))
}

impl Ecs for EcsAdapter {
    async fn list_clusters(&self) -> Result<Vec<String>> {
        let mut clusters = Vec::new();
        let mut pages = self.client.list_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            clusters.extend(page.map_err(|e| classify("ListClusters", e))?.cluster_arns().iter().cloned());
        }
        // A deleted cluster is INACTIVE and "might remain discoverable in your account for a
        // period of time" (DeleteCluster, ECS API Reference): one DescribeClusters per 100 leaves
        // them out, where listing each one's services would cost a call per cluster on every push.
        let mut active = Vec::with_capacity(clusters.len());
        for batch in clusters.chunks(100) {
            let output = self
                .client
                .describe_clusters()
                .set_clusters(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("DescribeClusters", e))?;
            let inactive: Vec<&str> = output
                .clusters()
                .iter()
                .filter(|c| c.status() == Some("INACTIVE"))
                .filter_map(|c| c.cluster_arn())
                .collect();
            // A cluster DescribeClusters did not answer for (a failure) stays in: better one call
            // too many than a tracked service missed.
            active.extend(batch.iter().filter(|arn| !inactive.contains(&arn.as_str())).cloned());
        }
        Ok(active)
    }

    async fn list_services(&self, cluster: &str) -> Result<Vec<String>> {
        let mut services = Vec::new();
        // 100 per page (the API's maximum; its default is 10): a tenth of the calls on big clusters.
        let mut pages = self.client.list_services().cluster(cluster).max_results(100).into_paginator().send();
        while let Some(page) = pages.next().await {
            services.extend(page.map_err(|e| classify("ListServices", e))?.service_arns().iter().cloned());
        }
        Ok(services)
    }

    async fn describe_services(&self, cluster: &str, services: &[String]) -> Result<Vec<ServiceSnapshot>> {
        let output = self
            .client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(services.to_vec()))
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(|e| classify("DescribeServices", e))?;
        if let Some(failure) = output.failures().iter().find(|f| f.reason() != Some("MISSING")) {
            return Err(DeckhandError::AwsRequestFailed(format!(
                "DescribeServices: {} {}",
                failure.arn().unwrap_or_default(),
                failure.reason().unwrap_or_default()
            )));
        }
        Ok(output.services().iter().map(service_snapshot).collect())
    }

    async fn describe_task_definition(&self, arn: &str) -> Result<(TaskDefinition, Vec<Tag>)> {
        let output = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|error| match error.as_service_error() {
                // ECS answers ClientException "Unable to describe task definition" for a revision
                // that was deleted: for deckhand that revision does not exist any more.
                Some(DescribeTaskDefinitionError::ClientException(_)) => {
                    DeckhandError::ResourceNotFound(format!("task definition {arn}"))
                }
                _ => classify("DescribeTaskDefinition", error),
            })?;
        let definition =
            output.task_definition.ok_or_else(|| DeckhandError::ResourceNotFound(format!("task definition {arn}")))?;
        Ok((definition, output.tags.unwrap_or_default()))
    }

    async fn register_task_definition(&self, definition: &TaskDefinition, tags: &[Tag]) -> Result<String> {
        let output = register_request(self.client.register_task_definition(), definition, tags)
            .send()
            .await
            .map_err(|e| classify("RegisterTaskDefinition", e))?;
        output
            .task_definition()
            .and_then(TaskDefinition::task_definition_arn)
            .map(str::to_string)
            .ok_or_else(|| DeckhandError::AwsRequestFailed("RegisterTaskDefinition returned no ARN".into()))
    }

    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
        force_new_deployment: bool,
    ) -> Result<ServiceSnapshot> {
        let output = self
            .client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition)
            .force_new_deployment(force_new_deployment)
            .send()
            .await
            .map_err(|e| classify("UpdateService", e))?;
        output
            .service()
            .map(service_snapshot)
            .ok_or_else(|| DeckhandError::AwsRequestFailed("UpdateService returned no service".into()))
    }

    async fn service_tasks(&self, cluster: &str, service: &str) -> Result<Vec<TaskSnapshot>> {
        let mut arns = Vec::new();
        for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let mut pages = self
                .client
                .list_tasks()
                .cluster(cluster)
                .service_name(service)
                .desired_status(desired)
                .max_results(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                arns.extend(page.map_err(|e| classify("ListTasks", e))?.task_arns().iter().cloned());
            }
        }
        let mut tasks = Vec::with_capacity(arns.len());
        for batch in arns.chunks(100) {
            let output = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("DescribeTasks", e))?;
            tasks.extend(output.tasks().iter().map(task_snapshot));
        }
        self.name_instances(cluster, &mut tasks).await?;
        Ok(tasks)
    }

    async fn service_deployment(&self, arn: &str) -> Result<Option<ServiceDeploymentSnapshot>> {
        let output = self
            .client
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .send()
            .await
            .map_err(|e| classify("DescribeServiceDeployments", e))?;
        Ok(output.service_deployments().first().map(service_deployment_snapshot))
    }

    async fn roll_back_service_deployment(&self, arn: &str) -> Result<bool> {
        let stopped = self
            .client
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(StopServiceDeploymentStopType::Rollback)
            .send()
            .await;
        match stopped {
            Ok(_) => Ok(true),
            // "ConflictException: The request could not be processed because of conflict in the
            // current state of the resource": the deployment already ended (or is rolling back).
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conflict_exception()) => Ok(false),
            Err(e) => Err(classify("StopServiceDeployment", e)),
        }
    }
}

fn service_deployment_snapshot(deployment: &ServiceDeployment) -> ServiceDeploymentSnapshot {
    let target = deployment.target_service_revision();
    ServiceDeploymentSnapshot {
        arn: deployment.service_deployment_arn().unwrap_or_default().to_string(),
        service_arn: deployment.service_arn().unwrap_or_default().to_string(),
        cluster_arn: deployment.cluster_arn().unwrap_or_default().to_string(),
        started_at: seconds(deployment.started_at().or(deployment.created_at())),
        status: deployment.status().map_or_else(Default::default, |s| s.as_str().into()),
        status_reason: deployment.status_reason().map(str::to_string),
        lifecycle_stage: deployment.lifecycle_stage().map(|s| s.as_str().to_string()),
        production_percent: target.and_then(|t| t.requested_production_traffic_weight()),
        test_percent: target.and_then(|t| t.requested_test_traffic_weight()),
    }
}

impl EcsAdapter {
    /// Bridge and host network modes register a task's targets by EC2 instance id and host port;
    /// DescribeTasks names only the container instance. One DescribeContainerInstances per 100
    /// instances, and none for awsvpc tasks (they have their own address).
    async fn name_instances(&self, cluster: &str, tasks: &mut [TaskSnapshot]) -> Result<()> {
        let wanted: Vec<String> = tasks
            .iter()
            .filter(|t| t.private_ip.is_none())
            .filter_map(|t| t.container_instance_arn.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut instances = BTreeMap::new();
        for batch in wanted.chunks(100) {
            let output = self
                .client
                .describe_container_instances()
                .cluster(cluster)
                .set_container_instances(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("DescribeContainerInstances", e))?;
            for instance in output.container_instances() {
                if let (Some(arn), Some(id)) = (instance.container_instance_arn(), instance.ec2_instance_id()) {
                    instances.insert(arn.to_string(), id.to_string());
                }
            }
        }
        for task in tasks.iter_mut().filter(|t| t.private_ip.is_none()) {
            task.ec2_instance_id = task.container_instance_arn.as_ref().and_then(|arn| instances.get(arn)).cloned();
        }
        Ok(())
    }
}

/// What deckhand's decisions use of a DescribeServices answer (the `deckhand` command reads the
/// rest of the same answer too, rather than describing the service twice).
pub fn service_snapshot(service: &Service) -> ServiceSnapshot {
    ServiceSnapshot {
        arn: service.service_arn().unwrap_or_default().to_string(),
        name: service.service_name().unwrap_or_default().to_string(),
        cluster_arn: service.cluster_arn().unwrap_or_default().to_string(),
        status: service.status().unwrap_or_default().into(),
        task_definition: service.task_definition().unwrap_or_default().to_string(),
        desired_count: service.desired_count().into(),
        running_count: service.running_count().into(),
        health_check_grace_period_seconds: service.health_check_grace_period_seconds().unwrap_or(0).max(0) as u64,
        deployments: service
            .deployments()
            .iter()
            .map(|d| DeploymentSnapshot {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().into(),
                task_definition: d.task_definition().unwrap_or_default().to_string(),
                rollout_state: d.rollout_state().map_or_else(Default::default, |s| s.as_str().into()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_string),
                desired_count: d.desired_count().into(),
                running_count: d.running_count().into(),
                pending_count: d.pending_count().into(),
                failed_tasks: d.failed_tasks().into(),
                created_at: seconds(d.created_at()),
            })
            .collect(),
        load_balancers: service
            .load_balancers()
            .iter()
            .map(|lb| LoadBalancerRef {
                target_group_arn: lb.target_group_arn().map(str::to_string),
                alternate_target_group_arn: lb
                    .advanced_configuration()
                    .and_then(|a| a.alternate_target_group_arn())
                    .map(str::to_string),
                container_name: lb.container_name().map(str::to_string),
                container_port: lb.container_port(),
            })
            .collect(),
        tags: service
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect(),
        deployment_controller: service
            .deployment_controller()
            .map_or_else(Default::default, |c| c.r#type().as_str().into()),
        deployment_strategy: service
            .deployment_configuration()
            .and_then(|c| c.strategy())
            .map_or_else(Default::default, |s| s.as_str().into()),
        awsvpc: service.network_configuration().and_then(|n| n.awsvpc_configuration()).is_some(),
        current_service_deployment: service.current_service_deployment().map(str::to_string),
        lifecycle_hooks: service
            .deployment_configuration()
            .map(|c| c.lifecycle_hooks())
            .unwrap_or_default()
            .iter()
            .filter_map(|hook| {
                Some(LifecycleHookRef {
                    target_arn: hook.hook_target_arn()?.to_string(),
                    role_arn: hook.role_arn().map(str::to_string),
                    stages: hook.lifecycle_stages().iter().map(|s| s.as_str().to_string()).collect(),
                })
            })
            .collect(),
        ecs_wait_seconds: service.deployment_configuration().map_or(0, |c| {
            let strategy: DeploymentStrategy = c.strategy().map_or_else(Default::default, |s| s.as_str().into());
            native_wait_seconds(
                &strategy,
                c.bake_time_in_minutes(),
                c.linear_configuration()
                    .map(|l| (l.step_percent().unwrap_or(100.0), l.step_bake_time_in_minutes().unwrap_or(0))),
                c.canary_configuration().and_then(|k| k.canary_bake_time_in_minutes()),
            )
        }),
    }
}

fn task_snapshot(task: &Task) -> TaskSnapshot {
    // The awsvpc address is in the ENI attachment; the container's interface has it too.
    let attachment_ip = task
        .attachments()
        .iter()
        .filter(|a| a.r#type() == Some("ElasticNetworkInterface"))
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some("privateIPv4Address"))
        .and_then(|d| d.value())
        .map(str::to_string);
    let container_ip = task
        .containers()
        .iter()
        .flat_map(|c| c.network_interfaces())
        .find_map(|n| n.private_ipv4_address())
        .map(str::to_string);
    TaskSnapshot {
        arn: task.task_arn().unwrap_or_default().to_string(),
        task_definition: task.task_definition_arn().unwrap_or_default().to_string(),
        started_by: task.started_by().map(str::to_string),
        last_status: task.last_status().unwrap_or_default().into(),
        desired_status: task.desired_status().unwrap_or_default().into(),
        started_at: seconds(task.started_at()),
        stop_code: task.stop_code().map_or_else(Default::default, |c| c.as_str().into()),
        stopped_reason: task.stopped_reason().map(str::to_string),
        health_status: task.health_status().map_or_else(Default::default, |h| h.as_str().into()),
        private_ip: attachment_ip.or(container_ip),
        container_instance_arn: task.container_instance_arn().map(str::to_string),
        ec2_instance_id: None,
        containers: task
            .containers()
            .iter()
            .map(|c| ContainerSnapshot {
                name: c.name().unwrap_or_default().to_string(),
                exit_code: c.exit_code(),
                reason: c.reason().map(str::to_string),
                network_bindings: c
                    .network_bindings()
                    .iter()
                    .filter_map(|b| {
                        Some(PortBinding { container_port: b.container_port()?, host_port: b.host_port()? })
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
#[path = "ecs_tests.rs"]
mod tests;
