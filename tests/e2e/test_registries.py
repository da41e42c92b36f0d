"""Issue 22, items 2 to 4: images in a registry of another account or Region. The session's stack
lists 210987654321 in RegistryAccounts (tests/conftest.py), so the local cloud deployed
registry.yaml there (tests/localcloud/server.py); pushes are made with that account's own
credentials (sts:AssumeRole into a role of it), and deckhand reads them across accounts only
as the repository's policy allows (tests/localcloud/registries.py)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from .aws import ACCOUNT, Aws, unique
from .test_cli import deckhand  # noqa: F401 - the `deckhand` command fixture

pytestmark = pytest.mark.timeout(300)

CENTRAL = "210987654321"
STRANGER = "999999999999"


def central_repository(localcloud, account: str = CENTRAL, region: str = "us-east-1",
                       readable_by: str | None = ACCOUNT) -> tuple[object, str, str]:
    """A repository in `account`'s registry in `region`; returns (its ECR client, name, host)."""
    ecr = localcloud.account_client(account, "ecr", region)
    name = unique("shop/api")
    ecr.create_repository(repositoryName=name)
    if readable_by:
        ecr.set_repository_policy(repositoryName=name, policyText=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Sid": "deckhand", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{readable_by}:root"},
                           "Action": ["ecr:DescribeImages", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                      "ecr:BatchCheckLayerAvailability"]}]}))
    return ecr, name, f"{account}.dkr.ecr.{region}.amazonaws.com"


def service_on(aws: Aws, ecr, name: str, host: str) -> tuple[str, str]:
    """A service of deckhand's account running `host/name` (pinned) and tracking it; (cluster, service)."""
    initial = aws.push(name, "main", ecr=ecr)
    net = aws.network()
    group = aws.target_group(unique("shop"), net, 8080)
    aws.load_balancer(net, {80: group})
    cluster = aws.cluster()
    td = aws.task_definition(unique("shop"), [("app", f"{host}/{name}@{initial}", 8080)])
    aws.service(cluster, "shop", td, net, [(group, "app", 8080)], track=f"app={host}/{name}:main")
    return cluster, "shop"


def doctor_says(deckhand, cluster: str, service: str) -> dict:
    done = deckhand("--output", "json", "doctor", cluster, service)
    (access,) = [f for f in json.loads(done.stdout) if f["check"] == "registry access"]
    return access


def test_a_push_in_a_registry_account_deploys_into_deckhands_account(aws: Aws, localcloud, events, deckhand) -> None:
    ecr, name, host = central_repository(localcloud)
    cluster, service = service_on(aws, ecr, name, host)
    assert doctor_says(deckhand, cluster, service)["level"] == "ok"
    digest = aws.push(name, "main", ecr=ecr)
    execution = aws.finish(aws.execution_for_push(digest))
    assert execution["status"] == "SUCCEEDED", execution
    assert aws.running_images(cluster, service)["app"] == f"{host}/{name}@{digest}"
    statuses = [(e["status"], e["trigger"]) for e in events.for_execution(execution["executionArn"]) if e["cluster"] == cluster]
    assert statuses == [("STARTED", "push"), ("SUCCEEDED", "push")], statuses


def test_without_the_repository_policy_deckhand_cannot_read_the_image(aws: Aws, localcloud, deckhand) -> None:
    ecr, name, host = central_repository(localcloud, readable_by=None)
    cluster, service = service_on(aws, ecr, name, host)
    access = doctor_says(deckhand, cluster, service)
    assert access["level"] == "fail" and "no repository policy" in access["detail"], access
    before = aws.describe(cluster, service)["taskDefinition"]
    digest = aws.push(name, "main", ecr=ecr)
    execution = aws.finish(aws.execution_for_push(digest))
    assert execution["status"] == "FAILED", execution
    # The plan could not read the pushed image, and says why, as AWS words it.
    assert execution["error"] == "DeploymentFailed", execution
    assert "no resource-based policy allows the ecr:DescribeImages action" in execution["cause"], execution["cause"]
    assert aws.describe(cluster, service)["taskDefinition"] == before, "nothing deployed"


def test_a_push_from_an_account_not_listed_does_nothing(aws: Aws, localcloud, caplog) -> None:
    # Someone deploys the registry side in an account deckhand does not list: the bus refuses it.
    localcloud.deploy_registry_side(STRANGER)
    ecr, name, host = central_repository(localcloud, account=STRANGER)
    service_on(aws, ecr, name, host)
    failed_before = localcloud.delivery.failed
    digest = aws.push(name, "main", ecr=ecr)
    localcloud.wait_for_deliveries()
    time.sleep(2)
    assert aws.executions_for(digest) == [], "no execution for a push of an account not listed"
    assert localcloud.delivery.failed > failed_before, "the forwarded event was refused by deckhand's bus"
    assert any(STRANGER in r.getMessage() and "not authorized" in r.getMessage() for r in caplog.records), \
        "the refusal is in the local cloud's log"


def test_a_push_in_another_region_deploys(aws: Aws, localcloud, deckhand) -> None:
    localcloud.deploy_registry_side(ACCOUNT, "us-west-2")
    ecr, name, host = central_repository(localcloud, account=ACCOUNT, region="us-west-2", readable_by=None)
    cluster, service = service_on(aws, ecr, name, host)
    # `deckhand track` takes the repository URI as the tag does.
    tracked = deckhand("track", cluster, service, f"app={host}/{name}:main")
    assert tracked.returncode == 0, tracked.stderr
    assert {t["key"]: t["value"] for t in aws.describe(cluster, service)["tags"]}["deckhand:track"] == f"app={host}/{name}:main"
    digest = aws.push(name, "main", ecr=ecr)
    execution = aws.finish(aws.execution_for_push(digest))
    assert execution["status"] == "SUCCEEDED", execution
    assert aws.running_images(cluster, service)["app"] == f"{host}/{name}@{digest}"
