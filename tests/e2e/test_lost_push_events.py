"""Issue 21, item 4: ECR emits its events "on a best effort basis" (Amazon ECR User Guide,
"Amazon ECR events and EventBridge"), and EventBridge delivers at least once. A push event that
never arrives, or arrives twice, must break nothing: no execution, no lock and no event for the
lost one, exactly one deployment for the repeated one, and the next push deploys as usual.
(Recovering the lost push itself is reconciliation, issue 22.)"""

from __future__ import annotations

import time

import pytest

from .aws import Aws, wait_until
from .test_failures import api_service
from .test_misbehaviour import control, lock_item

pytestmark = pytest.mark.timeout(300)

ECR_EVENTS = ["ECR Image Action"]


def push_with_its_event_lost(aws: Aws, localcloud, repository: str, tag: str) -> str:
    """Pushes `repository:tag` while EventBridge drops ECR's events; returns the digest."""
    control(localcloud, "POST", "events/chaos", {"detailTypes": ECR_EVENTS, "drop": True})
    try:
        digest = aws.push(repository, tag)
        wait_until("the event dropped", lambda: control(localcloud, "GET", "events/chaos").get("dropped", 0) >= 1, 30)
    finally:
        dropped = control(localcloud, "DELETE", "events/chaos")
    assert dropped["dropped"] >= 1, dropped
    return digest


def test_a_lost_push_event_breaks_nothing_and_the_next_push_deploys(aws: Aws, localcloud, events) -> None:
    # Settled: the setup push's own execution may hold the lock for a moment (a busy account).
    api = api_service(aws, verified=False, settled=True)
    lost = push_with_its_event_lost(aws, localcloud, api.repository, "main")
    time.sleep(2)  # a lost event stays lost: nothing may start late
    assert aws.executions_for(lost) == [], "no execution for a push nobody heard of"
    assert "lockOwner" not in lock_item(localcloud, aws, api.cluster, api.service), "no lock taken"

    later = aws.push(api.repository, "main")
    execution = aws.finish(aws.execution_for_push(later))
    assert execution["status"] == "SUCCEEDED", execution
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, later)
    assert "lockOwner" not in lock_item(localcloud, aws, api.cluster, api.service), "lock released"
    terminal = [e for e in events.for_execution(execution["executionArn"]) if e["status"] not in ("STARTED", "AWAITING_APPROVAL")]
    assert [e["status"] for e in terminal] == ["SUCCEEDED"], terminal


def test_a_repeated_push_event_deploys_once(aws: Aws, localcloud, events) -> None:
    api = api_service(aws, verified=False)
    control(localcloud, "POST", "events/chaos", {"detailTypes": ECR_EVENTS, "duplicate": True, "duplicateAfterSeconds": 0.5})
    try:
        digest = aws.push(api.repository, "main")
        runs = wait_until("both deliveries' executions", lambda: aws.executions_for(digest) if len(aws.executions_for(digest)) >= 2 else None, 60)
    finally:
        control(localcloud, "DELETE", "events/chaos")
    finished = [aws.finish(run["executionArn"]) for run in runs]
    assert all(f["status"] == "SUCCEEDED" for f in finished), finished
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, digest)
    statuses = sorted(e["status"] for f in finished for e in events.for_execution(f["executionArn"])
                      if e["status"] not in ("STARTED", "AWAITING_APPROVAL"))
    # One terminal event per service execution, none a failure; the second delivery finds the
    # digest already running and changes nothing (one new revision below).
    assert len(statuses) == len(finished) and set(statuses) <= {"SUCCEEDED", "SKIPPED"}, statuses
    revisions = aws.ecs.list_task_definitions(familyPrefix=api.good_revision.rsplit("/", 1)[-1].split(":")[0])["taskDefinitionArns"]
    assert len(revisions) == 2, f"one new revision, not two: {revisions}"
    assert "lockOwner" not in lock_item(localcloud, aws, api.cluster, api.service), "lock released"
