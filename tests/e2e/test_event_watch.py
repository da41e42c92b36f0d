"""Issue 11 end to end: one execution per service, rollouts watched on ECS events (a task token)
instead of a clock, and EventBridge's misbehaviour (duplicates, reordering, loss) harmless."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any, Iterator

import pytest

from .aws import Aws, unique
from .aws import api_service
from .test_failures import failed_with
from .test_misbehaviour import control

pytestmark = pytest.mark.timeout(300)

ECS_EVENTS = ["ECS Deployment State Change", "ECS Task State Change"]


@contextlib.contextmanager
def chaos(localcloud: Any, **settings: Any) -> Iterator[None]:
    """EventBridge delivers the ECS events as `settings` say (events.py's DeliveryChaos)."""
    control(localcloud, "POST", "events/chaos", {"detailTypes": ECS_EVENTS, **settings})
    try:
        yield
    finally:
        counts = control(localcloud, "DELETE", "events/chaos")
        print("chaos:", counts)


def state_counts(aws: Aws, execution_arn: str) -> dict[str, int]:
    """How often each state of the service execution was entered."""
    (child,) = aws.service_executions(execution_arn)
    counts: dict[str, int] = {}
    for event in aws.own_history(child):
        if "stateEnteredEventDetails" in event:
            name = event["stateEnteredEventDetails"]["name"]
            counts[name] = counts.get(name, 0) + 1
    return counts


def seconds_in_state(aws: Aws, execution_arn: str, state: str) -> float:
    """How long the service execution spent in `state`, over all its entries: from each entry to
    the next state entered (a wait ended by its heartbeat is caught, not exited)."""
    (child,) = aws.service_executions(execution_arn)
    total, entered = 0.0, None
    for event in aws.own_history(child):
        name = event.get("stateEnteredEventDetails", {}).get("name")
        if name is None:
            continue
        if entered is not None:
            total += (event["timestamp"] - entered).total_seconds()
        entered = event["timestamp"] if name == state else None
    return total


def test_each_service_runs_in_its_own_execution_and_the_push_keeps_a_bounded_summary(aws: Aws, events) -> None:
    net = aws.network()
    repository = aws.repository(unique("shop"))
    cluster = aws.cluster()
    initial = aws.push(repository, "main")
    for name in ("orders", "billing", "search"):
        group = aws.target_group(unique(name), net, 8080)
        aws.load_balancer(net, {80: group})
        td = aws.task_definition(unique(name), [("app", aws.pinned(repository, initial), 8080)])
        aws.service(cluster, name, td, net, [(group, "app", 8080)], track=f"app={repository}:main")
    digest = aws.push(repository, "main")
    execution = aws.finish(aws.execution_for_push(digest))
    assert execution["status"] == "SUCCEEDED", execution
    summary = json.loads(execution["output"])
    assert summary["services"] == 3 and summary["counts"] == {"SUCCEEDED": 3}, summary
    assert "results" not in summary, "the push's output never lists every target"
    children = aws.service_executions(execution["executionArn"])
    assert len(children) == 3
    for child in children:
        described = aws.sfn.describe_execution(executionArn=child)
        assert described["status"] == "SUCCEEDED"
        line = json.loads(described["output"])
        assert line["status"] == "SUCCEEDED" and digest in line["image"], line
    # The events keep the push's execution as executionArn and name the service's own.
    detail = events.for_execution(execution["executionArn"])
    assert sorted(e["status"] for e in detail) == ["STARTED"] * 3 + ["SUCCEEDED"] * 3
    assert {e["serviceExecutionArn"] for e in detail} == set(children)
    assert {e["trigger"] for e in detail} == {"push"}


def test_a_rollout_waits_on_ecs_events_so_its_cost_does_not_grow_with_its_length(aws: Aws) -> None:
    api = api_service(aws, grace=40)  # tasks not ready yet are unhealthy behind the ALB: tolerated in grace
    quick = aws.finish(aws.execution_for_push(aws.push(api.repository, "main", ready_seconds=1)))
    slow = aws.finish(aws.execution_for_push(aws.push(api.repository, "main", ready_seconds=15)))
    assert quick["status"] == slow["status"] == "SUCCEEDED", (quick, slow)
    quick_states, slow_states = state_counts(aws, quick["executionArn"]), state_counts(aws, slow["executionArn"])
    # A 15 s rollout polled every second (PollIntervalSeconds=1 here) costs 3 states per poll,
    # 45 more than a 1 s one. Parked on a token it is woken by ECS events and by the heartbeat
    # re-check only (RecheckSeconds=5 in the tests: a re-check of 3 states per 5 s parked), plus
    # one wake. The time parked is measured, not assumed: on a loaded machine the same rollout
    # takes longer, which adds re-checks but never a poll.
    assert "Wait for ECS events" in slow_states, slow_states
    parked = seconds_in_state(aws, slow["executionArn"], "Wait for ECS events")
    assert parked >= 10, (parked, slow_states)  # the slow rollout really did wait
    rechecks = math.ceil(parked / 5)
    extra = sum(slow_states.values()) - sum(quick_states.values())
    assert extra <= 3 * (rechecks + 1), (extra, parked, quick_states, slow_states)


def test_duplicate_and_reordered_ecs_events_change_nothing(aws: Aws, events, localcloud) -> None:
    api = api_service(aws)
    with chaos(localcloud, duplicate=True, reorderWithinSeconds=1.5):
        good = aws.finish(aws.execution_for_push(aws.push(api.repository, "main")))
        bad = aws.finish(aws.execution_for_push(aws.push(api.repository, "main", health="unhealthy")))
    assert good["status"] == "SUCCEEDED", good
    assert events.statuses(good["executionArn"]) == ["STARTED", "SUCCEEDED"]
    results = failed_with(aws, bad, "DeploymentRolledBack")
    assert results[0]["taskDefinition"] == json.loads(
        aws.sfn.describe_execution(executionArn=aws.service_executions(good["executionArn"])[0])["output"]
    )["taskDefinition"], "rolled back to the revision verified under the same chaos"
    assert events.statuses(bad["executionArn"]) == ["STARTED", "ROLLED_BACK"]


def test_lost_ecs_events_are_made_up_for_by_the_heartbeat_recheck(aws: Aws, events, localcloud) -> None:
    api = api_service(aws)
    with chaos(localcloud, drop=True):
        execution = aws.finish(aws.execution_for_push(aws.push(api.repository, "main")))
    assert execution["status"] == "SUCCEEDED", execution
    errors = [details.get("error") for e in aws.history(execution["executionArn"])
              for key, details in e.items() if key.endswith("EventDetails") and isinstance(details, dict)]
    assert "States.HeartbeatTimeout" in errors, "no event came: the heartbeat woke the watcher"
    assert events.statuses(execution["executionArn"]) == ["STARTED", "SUCCEEDED"]
