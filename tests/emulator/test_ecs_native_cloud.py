"""ECS-native deployments in the whole local cloud (the session's, with its Lambda runtime and
IAM): hooks run as Lambda functions, the native-timing route, IAM on service deployment ARNs.
The mechanics are in test_ecs_native.py, which serves moto in its own process."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from control import control  # noqa: E402
from localcloud import ecs_native  # noqa: E402
from test_ecs_native import (  # noqa: E402
    ACCOUNT,
    FAILED,
    REGION,
    SCALE,
    SUCCEEDED,
    NativeWorld,
    deployed,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def fast_waits(monkeypatch):
    monkeypatch.setattr(ecs_native, "WAIT_SCALE", SCALE)


# ------------------------------------------------------------------------------------------
# 7. The whole local cloud: hooks run as Lambda functions, the timing route, IAM
# ------------------------------------------------------------------------------------------


@pytest.fixture
def cloud_world(cloud, monkeypatch):
    """A NativeWorld in the session's local cloud, read without ECS's lag (as the mechanics tests
    above read it)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    assert control(cloud, "POST", "ecs/consistency", {"lagSeconds": 0})[0] == 200
    try:
        w = NativeWorld(cloud.endpoint, sim=None)
        yield w
        w.close()
    finally:  # the session's cloud goes back to its default lag, whatever happened here
        control(cloud, "DELETE", "ecs/consistency")


def records_of(function: dict[str, Any]) -> list[dict[str, Any]]:
    path = function["RecordFile"]
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_local_cloud_invokes_hooks_through_its_lambda_runtime(cloud, cloud_world, make_function):
    world = cloud_world
    approve = make_function(env={"FAKE_RESULT": json.dumps(SUCCEEDED)})
    reject = make_function(env={"FAKE_RESULT": json.dumps(FAILED)})
    world.create_native(deployed(world), hooks=[world.hook(approve["FunctionArn"], "POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT",
                                                           hookDetails={"suite": "smoke"})])
    first = world.wait_status("SUCCESSFUL", "ROLLBACK_FAILED", timeout=60)
    assert first["status"] == "SUCCESSFUL"
    events = records_of(approve)
    assert [e["lifecycleStage"] for e in events] == ["POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT"]
    assert events[0]["resourceArn"] == first["serviceDeploymentArn"]
    assert events[0]["hookDetails"] == {"suite": "smoke"}
    assert events[1]["executionDetails"]["productionTrafficWeights"] == {first["targetServiceRevision"]["arn"]: 100}

    world.update(taskDefinition=deployed(world, "v2"), deploymentConfiguration={
        "lifecycleHooks": [world.hook(reject["FunctionArn"], "POST_TEST_TRAFFIC_SHIFT")]})
    rolled = world.wait_status("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED", timeout=60)
    assert rolled["status"] == "ROLLBACK_SUCCESSFUL"
    assert [e["lifecycleStage"] for e in records_of(reject)] == ["POST_TEST_TRAFFIC_SHIFT"]


def test_the_native_timing_route_scales_ecs_waits(cloud):
    assert control(cloud, "POST", "ecs/native-timing", {"scale": 0.5}) == (200, {"scale": 0.5})
    assert ecs_native.WAIT_SCALE == 0.5
    assert control(cloud, "GET", "ecs/native-timing") == (200, {"scale": 0.5})
    assert control(cloud, "POST", "ecs/native-timing", {"scale": 0})[0] == 400
    assert control(cloud, "POST", "ecs/native-timing", {"speed": 2})[0] == 400
    assert control(cloud, "DELETE", "ecs/native-timing") == (200, {"scale": 1.0})


def test_a_functions_role_is_evaluated_on_service_deployment_arns(cloud, cloud_world):
    from localcloud.iam import mint_role_credentials

    world = cloud_world
    world.create_native(deployed(world))
    arn = world.wait_status("SUCCESSFUL", timeout=60)["serviceDeploymentArn"]
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

    def client_allowed(resource: str) -> Any:
        name = f"reader-{uuid.uuid4().hex[:8]}"
        role = world.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        world.iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ecs:DescribeServiceDeployments", "ecs:ListServiceDeployments"], "Resource": resource}]}))
        credentials = mint_role_credentials(role, "fn", REGION)
        return boto3.client("ecs", endpoint_url=cloud.endpoint, region_name=REGION,
                            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"])

    mine = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{world.cluster}/*"
    assert client_allowed(mine).describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"]
    with pytest.raises(ClientError) as denied:
        client_allowed(f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/other/*").describe_service_deployments(
            serviceDeploymentArns=[arn])
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    # ListServiceDeployments is authorized on the service itself.
    with pytest.raises(ClientError) as listing:
        client_allowed(mine).list_service_deployments(cluster=world.cluster, service="web")
    assert listing.value.response["Error"]["Code"] == "AccessDeniedException"
    service = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{world.cluster}/web"
    assert client_allowed(service).list_service_deployments(cluster=world.cluster, service="web")["serviceDeployments"]
