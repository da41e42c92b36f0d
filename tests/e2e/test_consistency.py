"""deckhand under stale ECS reads (issue 21, item 1): with DescribeServices, DescribeTasks,
ListTasks and DescribeTaskDefinition showing the state of 5 s ago (the local cloud's
`/_localcloud/ecs/consistency`, tests/localcloud/ecs_consistency.py), deckhand's verdicts are the
ones it reaches without the lag. Right after deckhand's UpdateService, a read does not show
deckhand's deployment yet: that must read as "not visible yet", never as "rolled back by ECS".

No sleep dodges a race: every wait is on an observable state (which, here, arrives 5 s late)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Iterator

import pytest

from .aws import Aws, api_service, unique, wait_until
from .test_failures import failed_with

pytestmark = pytest.mark.timeout(300)

LAG_SECONDS = 5


def consistency(localcloud: Any, method: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{localcloud.endpoint}/_localcloud/ecs/consistency", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def lagging(localcloud: Any) -> Iterator[None]:
    """ECS reads 5 s behind for one test (the services are made first, under the default lag)."""
    try:
        yield lambda: consistency(localcloud, "POST", {"lagSeconds": LAG_SECONDS})
    finally:
        consistency(localcloud, "DELETE")


def ends(events: Any, execution_arn: str) -> list[dict]:
    return [e for e in events.for_execution(execution_arn) if e["status"] != "STARTED"]


def entered_states(aws: Aws, execution_arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in aws.history(execution_arn) if "stateEnteredEventDetails" in e]


def test_a_healthy_push_succeeds_without_a_rollback(aws: Aws, events, lagging) -> None:
    api = api_service(aws)
    assert lagging()["lagSeconds"] == LAG_SECONDS
    good = aws.push(api.repository, "main")
    arn = aws.execution_for_push(good)
    execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    [end] = ends(events, arn)
    assert end["status"] == "SUCCEEDED", end
    assert "Roll back to last known-good" not in entered_states(aws, arn)
    wait_until("the service on the new image (5 s late)",
               lambda: aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, good), 30)
    assert end["taskDefinition"] == aws.describe(api.cluster, api.service)["taskDefinition"]


def test_a_broken_push_is_still_rolled_back(aws: Aws, events, lagging) -> None:
    api = api_service(aws)
    lagging()
    bad = aws.push(api.repository, "main", health="unhealthy")
    execution = aws.finish(aws.execution_for_push(bad))
    results = failed_with(aws, execution, "DeploymentRolledBack")
    assert results[0]["status"] == "ROLLED_BACK" and results[0]["taskDefinition"] == api.good_revision, results
    [end] = ends(events, execution["executionArn"])
    assert end["status"] == "ROLLED_BACK", end
    wait_until("the known-good revision back (5 s late)",
               lambda: aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision, 30)


def test_someone_elses_update_mid_rollout_still_supersedes_deckhand(aws: Aws, localcloud, events, lagging) -> None:
    api = api_service(aws, grace=60)
    lagging()
    # Slow enough that deckhand's rollout is still in progress when their change lands and when
    # deckhand sees it: we see deckhand's update 5 s late, deckhand sees theirs 5 s late.
    slow = aws.push(api.repository, "main", ready_seconds=4 * LAG_SECONDS)
    arn = aws.execution_for_push(slow)

    def deckhands_revision() -> str | None:
        revision = aws.describe(api.cluster, api.service)["taskDefinition"]
        return revision if slow in json.dumps(aws.images(revision)) else None

    ours = wait_until("deckhand's UpdateService (5 s late)", deckhands_revision, 60, interval=0.2)
    hotfix = aws.push(api.repository, "hotfix")
    theirs = aws.task_definition(unique("api"), [("web", aws.pinned(api.repository, hotfix), 5000)])
    answer = aws.ecs.update_service(cluster=api.cluster, service=api.service, taskDefinition=theirs)["service"]
    assert answer["taskDefinition"] == theirs  # a write answers with the new state at once

    execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    [end] = ends(events, arn)
    assert end["status"] == "SUPERSEDED", end
    assert end["previousTaskDefinition"] == ours
    assert "Roll back to last known-good" not in entered_states(aws, arn)
    wait_until("their revision left alone",
               lambda: aws.describe(api.cluster, api.service)["taskDefinition"] == theirs, 30)
    table = localcloud.stack_outputs["StateTableName"]
    service_arn = aws.describe(api.cluster, api.service)["serviceArn"]
    item = localcloud.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": service_arn}}).get("Item", {})
    assert "lockOwner" not in item, "lock released"
