"""API throttling at AWS's rates in the local cloud (tests/localcloud/throttling.py, where each
rate is cited), shown biting: deckhand's functions are refused once a bucket is empty, the
tests' own clients are counted but never refused, tokens come back at the refill rate."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from control import control as control_route
from localcloud.iam import mint_role_credentials
from localcloud.throttling import RATES

REGION = "us-east-1"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def control(cloud: Any, method: str, body: dict | None = None) -> tuple[int, Any]:
    return control_route(cloud, method, "throttling", body)


@pytest.fixture
def throttling(localcloud_server: Any) -> Iterator[Any]:
    control(localcloud_server, "DELETE")  # full buckets, no counts
    yield localcloud_server
    control(localcloud_server, "DELETE")


@pytest.fixture
def function_client(throttling: Any) -> Any:
    """A client signed with a function role's credentials, as deckhand's functions call."""
    iam = throttling.client("iam")
    name = "deckhand-CheckFunctionRole-" + uuid.uuid4().hex[:8]
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["ecs:*", "elasticloadbalancing:*"],
                                                 "Resource": "*"}]}))
    credentials = mint_role_credentials(role, "CheckFunction", REGION)

    def client(service: str) -> Any:
        return boto3.session.Session().client(
            service, region_name=REGION, endpoint_url=throttling.endpoint, config=NO_RETRIES,
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"])

    return client


def refused(call: Any) -> tuple[str, int] | None:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    return None


def test_a_function_is_refused_once_the_bucket_is_empty_and_served_again_after_the_refill(
    throttling: Any, function_client: Any
) -> None:
    control(throttling, "POST", {"rates": {"ecs:ListClusters": {"capacity": 3, "refillPerSecond": 2}}})
    ecs = function_client("ecs")
    answers = [refused(ecs.list_clusters) for _ in range(5)]
    assert answers[:3] == [None, None, None]
    assert answers[3] == ("ThrottlingException", 400)

    # The test's own client takes tokens too (one account's budget) but observes the truth.
    throttling.client("ecs").list_clusters()
    time.sleep(1.2)  # two tokens back
    assert refused(ecs.list_clusters) is None

    _, counts = control(throttling, "GET")
    assert counts["seen"]["ecs:ListClusters"] >= 7 and counts["refused"]["ecs:ListClusters"] >= 2


def test_the_load_balancer_throttles_in_its_query_protocol(throttling: Any, function_client: Any) -> None:
    control(throttling, "POST", {"rates": {"elasticloadbalancing:DescribeLoadBalancers":
                                           {"capacity": 1, "refillPerSecond": 0.1}}})
    elb = function_client("elbv2")
    assert refused(elb.describe_load_balancers) is None
    assert refused(elb.describe_load_balancers) == ("Throttling", 400)


def test_the_documented_rate_of_describe_services_bites_a_burst(throttling: Any, function_client: Any) -> None:
    rate = RATES["ecs:DescribeServices"]
    ecs = function_client("ecs")
    cluster = throttling.client("ecs").create_cluster(clusterName=f"throttle-{uuid.uuid4().hex[:6]}")["cluster"]["clusterName"]
    started = time.monotonic()
    # From several threads, as a fan-out calls: one caller on a loaded machine may be slower
    # than the refill, and a rate is only ever exceeded by callers faster than it.
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: refused(lambda: ecs.describe_services(cluster=cluster, services=["x"])),
                                range(int(rate.capacity) + 60)))
    elapsed = time.monotonic() - started
    served = answers.count(None)
    # The burst, plus what came back while the burst was made, and not one more.
    assert served <= rate.capacity + rate.refill_per_second * elapsed + 1, (served, elapsed)
    assert ("ThrottlingException", 400) in answers


def test_off_refuses_nothing_and_the_route_refuses_nonsense(throttling: Any, function_client: Any) -> None:
    control(throttling, "POST", {"enabled": False, "rates": {"ecs:ListClusters": {"capacity": 1, "refillPerSecond": 0.1}}})
    ecs = function_client("ecs")
    assert [refused(ecs.list_clusters) for _ in range(3)] == [None, None, None]
    assert control(throttling, "POST", {"scale": 0})[0] == 400
    assert control(throttling, "POST", {"rates": {"ListClusters": {"capacity": 1, "refillPerSecond": 1}}})[0] == 400
    assert control(throttling, "POST", {"burst": 3})[0] == 400
