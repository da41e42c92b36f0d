"""Situations issue 10 needs the local cloud to produce, each through public AWS APIs (plus the
local cloud's control routes for what no AWS API can cause): scale-in and Spot stops during a
rollout or bake, a stopped task replaced during the bake, another party's UpdateService, services
deckhand must refuse, deregistered revisions, and injected API faults (throttling, 5xx).

Run: .venv/bin/python -m pytest tests/emulator/test_mishaps.py -q
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the ECS simulator's fixtures

from control import control  # noqa: E402
from test_ecs_sim import (  # noqa: E402,F401 - fixtures are used by name
    CONTAINER_PORT,
    REGION,
    endpoint,
    ip_of,
    sim,
    wait_until,
    world,
)

pytestmark = pytest.mark.timeout(60)

SCALING = "Scaling activity initiated by (deployment {})"


def update(world, **kwargs: Any) -> dict[str, Any]:
    return world.ecs.update_service(cluster=world.cluster, service="web", **kwargs)["service"]


def running_of(world, deployment_id: str) -> list[dict[str, Any]]:
    return [t for t in world.tasks(startedBy=deployment_id) if t["lastStatus"] == "RUNNING"]


# ------------------------------------------------------------------------------------------
# 1. Scale-in during a rollout or a bake; Spot-style stops
# ------------------------------------------------------------------------------------------


def test_scale_in_during_a_rollout_stops_surplus_tasks_and_the_rollout_completes(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.3))
    world.create_service(td1, desired=4, grace=60)  # v2 is slower than the first ELB verdict
    world.wait_completed(td1)

    td2 = world.task_definition(world.push("v2", ready=3))
    new = update(world, taskDefinition=td2)["deployments"][0]["id"]
    # Every new task RUNNING and registered, none healthy yet: the rollout is IN_PROGRESS.
    wait_until("4 new tasks running", lambda: len(running_of(world, new)) == 4 or None)
    assert world.deployment(new)["rolloutState"] == "IN_PROGRESS"
    registered = {ip_of(t) for t in running_of(world, new)}
    wait_until("new targets registered", lambda: registered <= set(world.targets()) or None)

    # Someone scales the service in; the call names only desiredCount.
    after = update(world, desiredCount=2)
    assert after["desiredCount"] == 2
    assert after["deployments"][0]["id"] == new  # no new deployment

    def stopped_new():
        stopped = world.tasks(startedBy=new, desiredStatus="STOPPED")
        return stopped if len(stopped) == 2 else None

    stopped = wait_until("2 surplus new tasks stopped", stopped_new)
    for task in stopped:
        assert task["stopCode"] == "ServiceSchedulerInitiated"
        assert task["stoppedReason"] == SCALING.format(new)
    # Their targets drain and leave the target group.
    gone = {ip_of(t) for t in stopped}
    seen_draining = wait_until(
        "stopped targets draining",
        lambda: {ip for ip, s in world.target_states().items() if ip in gone and s == "draining"} or None,
    )
    assert seen_draining <= gone
    wait_until("stopped targets deregistered", lambda: not gone & set(world.targets()) or None)
    wait_until("stopped tasks STOPPED", lambda: all(
        t["lastStatus"] == "STOPPED" for t in world.tasks(startedBy=new, desiredStatus="STOPPED")
    ) or None)
    for task in world.tasks(startedBy=new, desiredStatus="STOPPED"):
        assert task["containers"][0]["exitCode"] == 143  # SIGTERM, not a failure of the image

    service = world.wait_completed(td2)
    [deployment] = service["deployments"]
    assert deployment["id"] == new and deployment["desiredCount"] == 2
    assert deployment["failedTasks"] == 0
    assert len(world.tasks()) == 2
    assert set(world.target_states().values()) == {"healthy"}


def test_scale_in_during_the_bake_stops_tasks_of_the_completed_deployment(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.3))
    world.create_service(td1, desired=3)
    deployment = world.wait_completed(td1)["deployments"][0]["id"]

    update(world, desiredCount=1)
    stopped = wait_until(
        "2 tasks stopped",
        lambda: (lambda s: s if len(s) == 2 and all(t["lastStatus"] == "STOPPED" for t in s) else None)(
            world.tasks(desiredStatus="STOPPED")
        ),
    )
    for task in stopped:
        assert task["startedBy"] == deployment
        assert task["stopCode"] == "ServiceSchedulerInitiated"
        assert task["stoppedReason"] == SCALING.format(deployment)
        assert task["containers"][0]["exitCode"] == 143
    [after] = world.service()["deployments"]
    assert (after["id"], after["rolloutState"], after["desiredCount"]) == (deployment, "COMPLETED", 1)


def test_stop_task_with_a_reason_is_user_initiated_and_exits_as_the_image_does(world, sim):
    # An application that ignores SIGTERM is killed after stopTimeout: exit 137.
    td = world.task_definition(world.push("v1", ready=0.3))
    image = world.ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]["containerDefinitions"][0]["image"]
    sim.simulator.set_image_behaviour(image, stop_exit_code=137)
    world.create_service(td, desired=2)
    world.wait_completed(td)
    victim = world.tasks()[0]["taskArn"]

    world.ecs.stop_task(cluster=world.cluster, task=victim, reason="Spot capacity reclaimed (test)")

    def stopped():
        [task] = world.ecs.describe_tasks(cluster=world.cluster, tasks=[victim])["tasks"]
        return task if task["lastStatus"] == "STOPPED" else None

    task = wait_until("the task stopped", stopped)
    assert task["stopCode"] == "UserInitiated"
    assert task["stoppedReason"] == "Spot capacity reclaimed (test)"
    assert task["containers"][0]["exitCode"] == 137


def test_spot_interruption_is_only_a_control_route_away(world, sim):
    td = world.task_definition(world.push("v1", ready=0.3))
    world.create_service(td, desired=2)
    deployment = world.wait_completed(td)["deployments"][0]["id"]
    victim = world.tasks()[0]["taskArn"]

    shown = sim.simulator.interrupt_spot_task(victim)
    assert shown["stopCode"] == "SpotInterruption" and shown["desiredStatus"] == "STOPPED"
    with pytest.raises(KeyError):
        sim.simulator.interrupt_spot_task(victim.rsplit("/", 1)[0] + "/0000")

    def stopped():
        [task] = world.ecs.describe_tasks(cluster=world.cluster, tasks=[victim])["tasks"]
        return task if task["lastStatus"] == "STOPPED" else None

    task = wait_until("the task stopped", stopped)
    assert task["stoppedReason"] == "Your Spot Task was interrupted."
    assert task["containers"][0]["exitCode"] == 143
    # The scheduler replaces it within the same deployment, which stays COMPLETED.
    wait_until("a replacement running", lambda: len(running_of(world, deployment)) == 2 or None)
    assert world.service()["deployments"][0]["rolloutState"] == "COMPLETED"


# ------------------------------------------------------------------------------------------
# 2. A task of the new deployment stopped after it became healthy
# ------------------------------------------------------------------------------------------


def test_stopped_healthy_task_is_replaced_by_one_that_starts_initial(world, sim):
    td = world.task_definition(world.push("v1", ready=1.5))
    world.create_service(td, desired=2)
    deployment = world.wait_completed(td)["deployments"][0]["id"]
    before = {t["taskArn"]: ip_of(t) for t in world.tasks()}
    victim = next(iter(before))

    world.ecs.stop_task(cluster=world.cluster, task=victim)

    # The replacement belongs to the same deployment and is checked afresh by the load balancer.
    def replacement():
        fresh = [t for t in world.tasks(startedBy=deployment) if t["taskArn"] not in before]
        return fresh[0] if fresh else None

    task = wait_until("a replacement task", replacement)
    assert task["startedBy"] == deployment
    first_seen = wait_until(
        "the replacement registered",
        lambda: (lambda t: t and t["State"])(world.targets().get(ip_of(wait_until("an ip", replacement)))),
    )
    assert first_seen == "initial"
    new_ip = ip_of(replacement())
    wait_until("the replacement healthy", lambda: world.target_states().get(new_ip) == "healthy" or None)
    [after] = world.service()["deployments"]
    assert (after["id"], after["rolloutState"], after["failedTasks"]) == (deployment, "COMPLETED", 0)
    [stopped] = world.ecs.describe_tasks(cluster=world.cluster, tasks=[victim])["tasks"]
    assert stopped["stopCode"] == "UserInitiated"


# ------------------------------------------------------------------------------------------
# 3. Another party's UpdateService during a rollout
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["taskDefinition", "forceNewDeployment"])
def test_another_update_supersedes_a_rollout_without_failing_it(world, sim, how):
    td1 = world.task_definition(world.push("v1", ready=0.3))
    arn = world.create_service(
        td1, desired=2, deployment_configuration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    )["serviceArn"]
    first = world.wait_completed(td1)["deployments"][0]["id"]
    td2 = world.task_definition(world.push("v2", ready=2))
    second = update(world, taskDefinition=td2)["deployments"][0]["id"]

    if how == "taskDefinition":
        theirs = world.task_definition(world.push("theirs", ready=0.3))
        third = update(world, taskDefinition=theirs)["deployments"]
    else:
        theirs = td2
        third = update(world, forceNewDeployment=True)["deployments"]
    by_id = {d["id"]: d for d in third}
    assert third[0]["status"] == "PRIMARY" and third[0]["id"] not in (first, second)
    assert third[0]["taskDefinition"] == theirs and third[0]["rolloutState"] == "IN_PROGRESS"
    # The superseded deployment is ACTIVE and still IN_PROGRESS, never FAILED.
    assert by_id[second]["status"] == "ACTIVE"
    assert by_id[second]["rolloutState"] == "IN_PROGRESS"
    assert by_id[first]["status"] == "ACTIVE"

    world.wait_completed(theirs)
    names = [e["eventName"] for e in sim.deployment_events(arn)]
    assert "SERVICE_DEPLOYMENT_FAILED" not in names


# The circuit breaker's own rollback marking the failed deployment FAILED with a reason is
# test_ecs_sim.py::test_unhealthy_image_keeps_old_tasks_serving_and_breaker_rolls_back.


# ------------------------------------------------------------------------------------------
# 4. Services deckhand must refuse: described exactly as created, never crashing the simulator
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("controller", ["CODE_DEPLOY", "EXTERNAL"])
def test_code_deploy_and_external_services_are_described_as_created(world, sim, controller):
    td = world.task_definition(world.push("v1", ready=0.3))
    config = {"maximumPercent": 200, "minimumHealthyPercent": 100}
    world.create_service(
        td, desired=1, deploymentController={"type": controller}, deployment_configuration=config
    )
    sim.simulator.tick()
    service = world.service()
    assert service["deploymentController"] == {"type": controller}
    assert service["deploymentConfiguration"] == config
    assert service["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == world.subnets


STRATEGIES = ["BLUE_GREEN", "LINEAR", "CANARY"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_native_blue_green_linear_and_canary_strategies_are_described_as_created(world, sim, strategy):
    """A service without a load balancer may use them ("Services that don't use ... Elastic Load
    Balancing can also use blue/green deployments, but don't get any of the managed traffic shifting
    benefits"); what they do with load balancers, hooks and rollbacks is tests/emulator/test_ecs_native.py."""
    td = world.task_definition(world.push("v1", ready=0.3))
    config: dict[str, Any] = {"strategy": strategy, "bakeTimeInMinutes": 0}  # real minutes: keep them 0
    if strategy == "LINEAR":
        config["linearConfiguration"] = {"stepPercent": 25.0, "stepBakeTimeInMinutes": 0}
    if strategy == "CANARY":
        config["canaryConfiguration"] = {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 0}
    world.create_service(td, desired=1, deployment_configuration=config, load_balanced=False)
    service = world.service()
    assert service["deploymentController"] == {"type": "ECS"}
    for key, value in config.items():
        assert service["deploymentConfiguration"][key] == value
    world.wait_completed(td)
    assert world.service()["deploymentConfiguration"]["strategy"] == strategy
    [deployment] = world.ecs.list_service_deployments(cluster=world.cluster, service="web")["serviceDeployments"]
    assert deployment["status"] == "SUCCESSFUL"


def test_native_strategies_with_a_load_balancer_need_its_advanced_configuration(world, sim):
    td = world.task_definition(world.push("v1", ready=0.3))
    with pytest.raises(ClientError) as refused:
        world.create_service(td, desired=1, deployment_configuration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def create_ec2_service_behind_an_instance_target_group(world, task_definition: str, desired: int) -> str:
    """Service "web" (EC2 launch type) behind a new instance target group; returns the group's ARN."""
    instance_tg = world.elb.create_target_group(
        Name="inst-" + world.cluster[-8:], Protocol="HTTP", Port=80, VpcId=world.vpc, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    world.ecs.create_service(
        cluster=world.cluster,
        serviceName="web",
        taskDefinition=task_definition,
        desiredCount=desired,
        launchType="EC2",
        loadBalancers=[{"targetGroupArn": instance_tg, "containerName": "web", "containerPort": CONTAINER_PORT}],
    )
    world.services.append("web")
    return instance_tg


def test_bridge_service_behind_an_instance_target_group(world, sim):
    td = world.ecs.register_task_definition(
        family=world.family + "-bridge",
        networkMode="bridge",
        requiresCompatibilities=["EC2"],
        containerDefinitions=[
            {
                "name": "web",
                "image": world.push("v1", ready=0.3),
                "memory": 256,
                "essential": True,
                "portMappings": [{"containerPort": CONTAINER_PORT, "hostPort": 0, "protocol": "tcp"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    instance_tg = create_ec2_service_behind_an_instance_target_group(world, td, desired=2)
    service = world.service()
    assert "networkConfiguration" not in service
    assert service["loadBalancers"][0]["targetGroupArn"] == instance_tg
    world.wait_completed(td)
    tasks = world.tasks()
    assert len(tasks) == 2
    targets = {
        (d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]["State"]
        for d in world.elb.describe_target_health(TargetGroupArn=instance_tg)["TargetHealthDescriptions"]
    }
    for task in tasks:
        assert task["attachments"] == []  # no awsvpc ENI, no IP address
        [binding] = task["containers"][0]["networkBindings"]
        assert binding["containerPort"] == CONTAINER_PORT
        assert 32768 <= binding["hostPort"] <= 60999  # dynamic host port
        matching = [key for key in targets if key[1] == binding["hostPort"]]
        assert len(matching) == 1 and matching[0][0].startswith("i-")
    assert set(targets.values()) == {"healthy"}
    assert len({key[0] for key in targets}) == 2


def test_bridge_tasks_are_placed_on_registered_container_instances(world, sim):
    image_id = world.ec2.describe_images()["Images"][0]["ImageId"]
    instance = world.ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    document = json.dumps({"instanceId": instance, "region": REGION, "accountId": "123456789012"})
    registered = world.ecs.register_container_instance(
        cluster=world.cluster, instanceIdentityDocument=document
    )["containerInstance"]["containerInstanceArn"]
    td = world.ecs.register_task_definition(
        family=world.family + "-bridge",
        networkMode="bridge",
        containerDefinitions=[
            {
                "name": "web",
                "image": world.push("v1", ready=0.3),
                "memory": 256,
                "portMappings": [{"containerPort": CONTAINER_PORT, "hostPort": 8081}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    instance_tg = create_ec2_service_behind_an_instance_target_group(world, td, desired=1)
    world.wait_completed(td)
    [task] = world.tasks()
    assert task["containerInstanceArn"] == registered
    [described] = world.elb.describe_target_health(TargetGroupArn=instance_tg)["TargetHealthDescriptions"]
    assert described["Target"] == {"Id": instance, "Port": 8081}
    assert described["TargetHealth"]["State"] == "healthy"


# ------------------------------------------------------------------------------------------
# 5. A deregistered revision
# ------------------------------------------------------------------------------------------


def test_deregistered_revision_is_inactive_and_cannot_be_deployed_again(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.3))
    world.create_service(td1, desired=1)
    world.wait_completed(td1)
    td2 = world.task_definition(world.push("v2", ready=0.3))
    update(world, taskDefinition=td2)
    world.wait_completed(td2)

    world.ecs.deregister_task_definition(taskDefinition=td1)

    described = world.ecs.describe_task_definition(taskDefinition=td1)["taskDefinition"]
    assert described["status"] == "INACTIVE"
    assert described["taskDefinitionArn"] == td1
    with pytest.raises(ClientError) as refused:
        update(world, taskDefinition=td1)
    assert refused.value.response["Error"]["Code"] == "ClientException"
    assert "inactive" in refused.value.response["Error"]["Message"].lower()
    # The running revision is untouched.
    [deployment] = world.service()["deployments"]
    assert deployment["taskDefinition"] == td2 and deployment["rolloutState"] == "COMPLETED"


# ------------------------------------------------------------------------------------------
# 6. Injected API faults (the local cloud's /_localcloud/faults control route)
# ------------------------------------------------------------------------------------------


NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})  # one attempt


def plain_client(cloud: Any, service: str) -> Any:
    return cloud.client(service, config=NO_RETRIES)


@pytest.fixture
def faults(localcloud_server: Any):
    yield localcloud_server
    control(localcloud_server, "DELETE", "faults")


def error_of(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


# (action, error, the call a boto3 client makes) for each protocol deckhand's functions use.
PROTOCOL_CASES = {
    "ecs (JSON 1.1)": ("ecs:DescribeServices", "ThrottlingException",
                       lambda c: c("ecs").describe_services(cluster="default", services=["x"])),
    "elbv2 (query/XML)": ("elasticloadbalancing:DescribeTargetHealth", "Throttling",
                          lambda c: c("elbv2").describe_target_health(
                              TargetGroupArn="arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                              "targetgroup/x/0123456789abcdef")),
    "dynamodb (JSON 1.0)": ("dynamodb:GetItem", "ThrottlingException",
                            lambda c: c("dynamodb").get_item(TableName="x", Key={"k": {"S": "v"}})),
    "events PutEvents": ("events:PutEvents", "ThrottlingException",
                         lambda c: c("events").put_events(Entries=[{"Source": "t", "DetailType": "t", "Detail": "{}"}])),
    "states (JSON 1.0)": ("states:DescribeExecution", "ThrottlingException",
                          lambda c: c("stepfunctions").describe_execution(
                              executionArn="arn:aws:states:us-east-1:123456789012:execution:x:y")),
    "ecr (JSON 1.1)": ("ecr:DescribeImages", "ThrottlingException",
                       lambda c: c("ecr").describe_images(repositoryName="missing")),
    "ec2 (EC2 query)": ("ec2:DescribeSubnets", "RequestLimitExceeded",
                        lambda c: c("ec2").describe_subnets()),
}


@pytest.mark.parametrize("case", list(PROTOCOL_CASES))
def test_an_injected_fault_answers_the_protocols_error(faults, case):
    action, error, call = PROTOCOL_CASES[case]
    status, added = control(faults, "POST", "faults", {"action": action, "error": error, "count": 1})
    assert status == 200 and added["remaining"] == 1

    code, http_status, message = error_of(lambda: call(lambda s: plain_client(faults, s)))
    assert (code, http_status, message) == (error, 400, "Rate exceeded")
    # count 1: the next request reaches the service again (whatever it answers).
    try:
        call(lambda s: plain_client(faults, s))
    except ClientError as error_after:
        assert error_after.response["Error"]["Code"] != error
    [listed] = control(faults, "GET", "faults")[1]["faults"]
    assert (listed["hits"], listed["active"]) == (1, False)


def test_server_errors_windows_globs_and_clearing(faults):
    client = plain_client(faults, "ecs")
    ecs = lambda: client.list_clusters()  # noqa: E731
    # Long enough for two calls on a loaded machine (it failed at 0.5 s with the suite running).
    control(faults, "POST", "faults", {"action": "ecs:List*", "error": "ServiceUnavailableException", "seconds": 3})
    assert error_of(ecs)[:2] == ("ServiceUnavailableException", 503)
    assert error_of(ecs)[:2] == ("ServiceUnavailableException", 503)  # a window, not a count

    def window_over():
        try:
            return ecs()
        except ClientError:
            return None

    wait_until("the 3 s window to end", window_over, timeout=10)
    elb = lambda: plain_client(faults, "elbv2").describe_load_balancers()  # noqa: E731
    control(faults, "POST", "faults", {"action": "elasticloadbalancing:*", "error": "ServiceUnavailable"})
    code, http_status, _ = error_of(elb)
    assert (code, http_status) == ("ServiceUnavailable", 503)
    assert control(faults, "DELETE", "faults")[1]["cleared"] == 2
    elb()


@pytest.mark.parametrize(
    "spec",
    [
        {"action": "DescribeServices", "error": "ThrottlingException"},
        {"action": "ecs:DescribeServices"},
        {"action": "ecs:DescribeServices", "error": "X", "count": 0},
        {"action": "ecs:DescribeServices", "error": "X", "seconds": -1},
        {"action": "ecs:DescribeServices", "error": "X", "status": 200},
        {"action": "ecs:DescribeServices", "error": "X", "typo": 1},
        {"action": "ecs:DescribeServices", "delaySeconds": -1},
        {"action": "ecs:DescribeServices", "delaySeconds": 0},
        {"action": "ecs:DescribeServices", "error": "X", "respondAfterSeconds": 1},
    ],
)
def test_a_malformed_fault_is_refused(faults, spec):
    status, answer = control(faults, "POST", "faults", spec)
    assert status == 400 and answer["error"]
    assert control(faults, "GET", "faults")[1]["faults"] == []


def test_a_latency_fault_answers_late_and_then_goes_through(faults):
    """A latency spike (delaySeconds without an error): the call succeeds, only later, so that a
    caller with a shorter timeout gives up first."""
    import time

    control(faults, "POST", "faults", {"action": "ecs:ListClusters", "delaySeconds": 1.0, "count": 1})
    started = time.monotonic()
    assert "clusterArns" in plain_client(faults, "ecs").list_clusters()
    assert time.monotonic() - started >= 1.0
    # count 1: spent, so the next call is neither delayed nor counted (no timing needed to tell).
    plain_client(faults, "ecs").list_clusters()
    [listed] = control(faults, "GET", "faults")[1]["faults"]
    assert (listed["hits"], listed["active"]) == (1, False)


def test_a_late_answer_fault_carries_the_call_out_at_once(faults):
    """respondAfterSeconds: the change happens at once, the answer comes later (a caller that
    times out meanwhile never learns that its call succeeded)."""
    import threading
    import time

    name = f"late-{uuid.uuid4().hex[:6]}"
    # A wide margin between the change and the answer: a busy machine must not close it.
    control(faults, "POST", "faults", {"action": "ecs:CreateCluster", "respondAfterSeconds": 6, "count": 1})
    caller = threading.Thread(target=lambda: plain_client(faults, "ecs").create_cluster(clusterName=name))
    started = time.monotonic()
    caller.start()
    assert wait_until("the cluster to exist", lambda: plain_client(faults, "ecs").describe_clusters(
        clusters=[name])["clusters"], timeout=5.0, interval=0.05), "carried out before the answer"
    seen = time.monotonic() - started
    caller.join()
    assert time.monotonic() - started >= 6 > seen


def test_caller_role_faults_strike_only_the_functions(faults):
    from localcloud.iam import mint_role_credentials

    iam = faults.client("iam")
    name = "deckhand-CheckFunctionRole-" + uuid.uuid4().hex[:8]
    role = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]}))
    credentials = mint_role_credentials(role, "CheckFunction", REGION)
    function_ecs = boto3.session.Session().client(
        "ecs", region_name=REGION, endpoint_url=faults.endpoint, config=NO_RETRIES,
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"])

    control(faults, "POST", "faults",
            {"action": "ecs:ListClusters", "error": "ThrottlingException", "callerRole": "deckhand-Check*"})
    assert error_of(function_ecs.list_clusters)[0] == "ThrottlingException"
    plain_client(faults, "ecs").list_clusters()  # the test's own client still observes
    control(faults, "DELETE", "faults")
    control(faults, "POST", "faults",
            {"action": "ecs:ListClusters", "error": "ThrottlingException", "callerRole": "SomeOtherFunction"})
    function_ecs.list_clusters()


def test_spot_interruption_and_stop_exit_code_control_routes(faults):
    status, answer = control(faults, "POST", "sim/spot-interruption", {"task": "arn:aws:ecs:us-east-1:1:task/c/none"})
    assert status == 404 and "no simulated task" in answer["error"]
    status, _ = control(faults, "POST", "sim/image-behaviour", {"image": "nginx:latest", "stopExitCode": 0})
    assert status == 200
