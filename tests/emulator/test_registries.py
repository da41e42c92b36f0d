"""Registries in other accounts (tests/localcloud/registries.py): a function reads another
account's ECR repository only as the repository's policy allows, and a rule forwards events to
another account's bus only as that bus's policy allows, keeping where the event came from."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud.iam import mint_role_credentials
from polling import wait_until

pytestmark = pytest.mark.timeout(120)

OTHER = "210987654321"
REGION = "us-east-1"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def function_client(cloud: Any, service: str, statements: list[dict[str, Any]]) -> Any:
    """A client signed with a session of a new role of the cloud's account (as a function's)."""
    iam = cloud.client("iam")
    name = unique("registry-test")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="inline",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    credentials = mint_role_credentials(arn, "fn-under-test", REGION)
    return boto3.session.Session().client(
        service, region_name=REGION, endpoint_url=cloud.endpoint,
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], config=Config(retries={"mode": "standard", "max_attempts": 5}))


def manifest() -> str:
    nonce = uuid.uuid4().hex
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + nonce.ljust(64, "0")},
                       "layers": [], "annotations": {"n": nonce}})


def test_a_function_reads_another_accounts_repository_only_as_its_policy_allows(cloud: Any) -> None:
    central = cloud.account_client(OTHER, "ecr")
    name = unique("central/api")
    central.create_repository(repositoryName=name)
    digest = central.put_image(repositoryName=name, imageManifest=manifest(), imageTag="main",
                               imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")["image"]["imageId"]["imageDigest"]
    ecr = function_client(cloud, "ecr", [{"Effect": "Allow", "Action": "ecr:DescribeImages",
                                           "Resource": "arn:aws:ecr:*:*:repository/*"}])
    with pytest.raises(ClientError) as refused:
        ecr.describe_images(registryId=OTHER, repositoryName=name)
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException", error
    assert "no resource-based policy allows the ecr:DescribeImages action" in error["Message"], error

    central.set_repository_policy(repositoryName=name, policyText=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "reader", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{cloud.account_id}:root"},
         "Action": ["ecr:DescribeImages"]}]}))
    (image,) = ecr.describe_images(registryId=OTHER, repositoryName=name, imageIds=[{"imageTag": "main"}])["imageDetails"]
    assert (image["registryId"], image["imageDigest"]) == (OTHER, digest)
    with pytest.raises(ClientError) as missing:
        ecr.describe_images(repositoryName=name)
    assert missing.value.response["Error"]["Code"] == "RepositoryNotFoundException", "the caller's own registry has none"


def test_a_rule_forwards_to_another_accounts_bus_only_when_that_bus_lets_the_sender_in(cloud: Any) -> None:
    source = unique("test.forward")
    bus = f"arn:aws:events:{REGION}:{cloud.account_id}:event-bus/default"
    # In the receiving (cloud's) account: a rule on the default bus into a queue.
    sqs, events = cloud.client("sqs"), cloud.client("events")
    url = sqs.create_queue(QueueName=unique("forwarded"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    receive = unique("receive")
    events.put_rule(Name=receive, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=receive, Targets=[{"Id": "q", "Arn": queue_arn}])
    # In the sending account: a role that may put events there, and a rule forwarding to it.
    iam_x, events_x = cloud.account_client(OTHER, "iam"), cloud.account_client(OTHER, "events")
    role = iam_x.create_role(RoleName=unique("forward"), AssumeRolePolicyDocument=TRUST)["Role"]
    iam_x.put_role_policy(RoleName=role["RoleName"], PolicyName="put", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}]}))
    forward = unique("forward")
    events_x.put_rule(Name=forward, EventPattern=json.dumps({"source": [source]}))
    events_x.put_targets(Rule=forward, Targets=[{"Id": "bus", "Arn": bus, "RoleArn": role["Arn"]}])

    def received() -> list[dict[str, Any]]:
        cloud.wait_for_deliveries()
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in messages]

    failed = cloud.delivery.failed
    events_x.put_events(Entries=[{"Source": source, "DetailType": "Push", "Detail": json.dumps({"n": 1})}])
    cloud.wait_for_deliveries()
    time.sleep(0.5)
    assert received() == [] and cloud.delivery.failed > failed, "no bus policy: the bus refuses the sender"

    statement = unique("sender")
    events.put_permission(EventBusName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": statement, "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "events:PutEvents",
         "Resource": bus, "Condition": {"StringEquals": {"events:source": source}}}]}))
    try:
        events_x.put_events(Entries=[{"Source": source, "DetailType": "Push", "Detail": json.dumps({"n": 2})}])
        (event,) = wait_until("the forwarded event", received, timeout=20)
        assert (event["account"], event["region"], event["detail"]) == (OTHER, REGION, {"n": 2}), event
    finally:
        events.remove_permission(EventBusName="default", StatementId=statement)
