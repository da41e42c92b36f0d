"""Issue 23, item 3: EC2 services in bridge and host network mode behind a load balancer.

Their targets are registered by EC2 instance id and host port (a dynamic port in bridge mode), not
by a task IP: deckhand maps each target to its task through DescribeTasks (containerInstanceArn,
networkBindings) and DescribeContainerInstances (ec2InstanceId), and judges health per task as
for awsvpc services."""

from __future__ import annotations

import json

import pytest

from .aws import REGION, Aws, unique

pytestmark = pytest.mark.timeout(300)


def instance_target_group(aws: Aws, vpc: str) -> str:
    return aws.elb.create_target_group(Name=unique("inst"), Protocol="HTTP", Port=80, VpcId=vpc,
                                       TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]


def ec2_task_definition(aws: Aws, family: str, image: str, network_mode: str) -> str:
    host_port = 0 if network_mode == "bridge" else 5000  # bridge: a dynamic host port
    return aws.ecs.register_task_definition(
        family=family, networkMode=network_mode, requiresCompatibilities=["EC2"],
        containerDefinitions=[{"name": "web", "image": image, "essential": True, "memory": 256,
                               "portMappings": [{"containerPort": 5000, "hostPort": host_port}],
                               "environment": [{"name": "SECRET_TOKEN", "value": "not-for-logs"}]}],
    )["taskDefinition"]["taskDefinitionArn"]


def register_instance(aws: Aws, cluster: str) -> str:
    """An EC2 instance joined to the cluster (the ECS agent's RegisterContainerInstance)."""
    image_id = aws.ec2.describe_images()["Images"][0]["ImageId"]
    instance = aws.ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    document = json.dumps({"instanceId": instance, "region": REGION})
    aws.ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=document)
    return instance


def targets(aws: Aws, group: str) -> dict[tuple[str, int], str]:
    described = aws.elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]["State"] for d in described}


def task_endpoints(aws: Aws, cluster: str, service: str) -> set[tuple[str, int]]:
    """(EC2 instance id, host port) of the service's running tasks, as ECS says."""
    arns = aws.ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
    tasks = aws.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    instances = {t["containerInstanceArn"] for t in tasks}
    ids = {i["containerInstanceArn"]: i["ec2InstanceId"]
           for i in aws.ecs.describe_container_instances(cluster=cluster, containerInstances=list(instances))["containerInstances"]} \
        if instances else {}
    return {(ids[t["containerInstanceArn"]], b["hostPort"]) for t in tasks for c in t["containers"]
            for b in c.get("networkBindings", [])}


@pytest.mark.parametrize("network_mode", ["bridge", "host"])
def test_an_ec2_service_in_bridge_or_host_mode_is_deployed_and_rolled_back(aws: Aws, events, network_mode: str) -> None:
    net = aws.network()
    repository = aws.repository(unique("flask"))
    cluster = aws.cluster()
    registered = register_instance(aws, cluster)
    group = instance_target_group(aws, net.vpc)
    aws.load_balancer(net, {80: group})
    initial = aws.push(repository, "main")
    td = ec2_task_definition(aws, unique("api"), aws.pinned(repository, initial), network_mode)
    aws.ecs.create_service(
        cluster=cluster, serviceName="api", taskDefinition=td, desiredCount=2, launchType="EC2",
        loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 5000}],
        deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200,
                                 "deploymentCircuitBreaker": {"enable": False, "rollback": False}},
        tags=[{"key": "deckhand:track", "value": f"web={repository}:main"}],
    )
    aws.wait_steady(cluster, "api")

    good = aws.push(repository, "main")
    execution = aws.finish(aws.execution_for_push(good))
    assert execution["status"] == "SUCCEEDED", execution
    assert events.statuses(execution["executionArn"]) == ["STARTED", "SUCCEEDED"]
    good_revision = aws.describe(cluster, "api")["taskDefinition"]
    assert good_revision != td
    assert aws.running_images(cluster, "api")["web"] == aws.pinned(repository, good)
    endpoints = task_endpoints(aws, cluster, "api")
    # Every task on a container instance of the cluster: the one registered here, or one the
    # cluster scaled out (capacity provider) when a task found no free instance.
    joined = aws.ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    instances = {i["ec2InstanceId"] for i in aws.ecs.describe_container_instances(
        cluster=cluster, containerInstances=joined)["containerInstances"]}
    assert registered in instances and len(endpoints) == 2 and {i for i, _ in endpoints} <= instances, (endpoints, instances)
    if network_mode == "host":
        assert {port for _, port in endpoints} == {5000}
    healthy = {key for key, state in targets(aws, group).items() if state == "healthy"}
    assert endpoints <= healthy, (endpoints, targets(aws, group))

    bad = aws.push(repository, "main", health="unhealthy")
    execution = aws.finish(aws.execution_for_push(bad))
    assert execution["status"] == "FAILED" and execution.get("error") == "DeploymentRolledBack", execution
    assert events.statuses(execution["executionArn"]) == ["STARTED", "ROLLED_BACK"]
    (end,) = [e for e in events.for_execution(execution["executionArn"]) if e["status"] == "ROLLED_BACK"]
    assert end["taskDefinition"] == good_revision, end
    assert "ELB health checks" in end["reason"] or "unhealthy" in end["reason"], end["reason"]
    service = aws.wait_steady(cluster, "api")
    assert service["taskDefinition"] == good_revision
    assert aws.running_images(cluster, "api")["web"] == aws.pinned(repository, good)
