"""Paths through the state machines that only operators open (issue 20): a service execution
stopped by hand, someone else's update while deckhand rolls back. Each is reached through public
AWS APIs (StopExecution, UpdateService); every wait is on an observable state, never a sleep."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .aws import Aws, Network, unique, wait_until

pytestmark = pytest.mark.timeout(300)


def own_states(aws: Aws, execution_arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in aws.own_history(execution_arn) if "stateEnteredEventDetails" in e]


def terminal_events(events: Any, execution_arn: str, service: str | None = None) -> list[dict]:
    return [e for e in events.for_execution(execution_arn)
            if e["status"] not in ("STARTED", "AWAITING_APPROVAL") and (service is None or e["service"] == service)]


def service_behind_a_balancer(aws: Aws, cluster: str, network: Network, repository: str, name: str,
                              image: str, grace: int = 30) -> str:
    group = aws.target_group(unique(name), network, 5000)
    aws.load_balancer(network, {80: group})
    td = aws.task_definition(unique(name), [("web", aws.pinned(repository, image), 5000)])
    return aws.service(cluster, name, td, network, [(group, "web", 5000)], track=f"web={repository}:main", grace=grace)


def child_of(aws: Aws, push_execution: str, service_arn: str) -> str:
    """The service execution the push started for `service_arn` (its input names the service)."""
    def found() -> str | None:
        for child in aws.service_executions(push_execution):
            if json.loads(aws.sfn.describe_execution(executionArn=child)["input"]).get("service") == service_arn:
                return child
        return None
    return wait_until(f"the service execution of {service_arn}", found, 60, interval=0.3)


def test_stopping_one_service_execution_leaves_its_sibling_to_finish(aws: Aws, events) -> None:
    """An ABORTED child's failure has no Error: reading it used to fail the Map with States.Runtime,
    which stopped every sibling mid-rollout and ended the push without its summary."""
    network, cluster = aws.network(), aws.cluster()
    repository = aws.repository(unique("pair"))
    first = aws.push(repository, "main")
    stopped_arn = service_behind_a_balancer(aws, cluster, network, repository, "api", first)
    sibling_arn = service_behind_a_balancer(aws, cluster, network, repository, "worker", first)

    slow = aws.push(repository, "main", ready_seconds=6)  # both rollouts take a while
    push = aws.execution_for_push(slow)
    stopped, sibling = child_of(aws, push, stopped_arn), child_of(aws, push, sibling_arn)
    # Mid-rollout: deckhand's UpdateService of the service to be stopped went through.
    wait_until("deckhand's update of api", lambda: slow in json.dumps(aws.running_images(cluster, "api")), 90, interval=0.2)
    aws.sfn.stop_execution(executionArn=stopped)  # an operator stops it, giving no error

    execution = aws.finish(push)
    assert aws.sfn.describe_execution(executionArn=stopped)["status"] == "ABORTED"
    assert aws.sfn.describe_execution(executionArn=sibling)["status"] == "SUCCEEDED", "the sibling was not stopped"
    assert aws.running_images(cluster, "worker")["web"] == aws.pinned(repository, slow)
    assert [e["status"] for e in terminal_events(events, push, "worker")] == ["SUCCEEDED"]

    # The push ends with its summary: one service failed (stopped), one succeeded.
    assert (execution["status"], execution.get("error")) == ("FAILED", "DeploymentFailed"), execution
    summary = json.loads(execution["cause"])
    assert summary["services"] == 2 and summary["counts"] == {"FAILED": 1, "SUCCEEDED": 1}, summary
    assert summary["outcome"] == "failed"
    (failure,) = summary["failures"]
    assert failure["service"] == stopped_arn and failure["error"] == "ABORTED", failure
    # The summary names the stopped execution, rebuilt from the name the Map gave it.
    assert failure["execution"] == stopped, (failure, stopped)
    states = own_states(aws, push)
    assert "Child stopped" in states and "Sum up the services" in states, states


def test_someone_elses_update_during_the_rollback_ends_superseded_and_is_left_alone(aws: Aws, localcloud, events) -> None:
    """The rollback's check answers SUPERSEDED: the execution used to fall back to waiting, be woken
    at once, and loop until the 25,000-event history quota; now it releases the lock and ends
    SUPERSEDED, leaving their deployment alone."""
    network, cluster = aws.network(), aws.cluster()
    repository = aws.repository(unique("flask"))
    service_arn = service_behind_a_balancer(aws, cluster, network, repository, "api", aws.push(repository, "main"), grace=20)
    # The known-good revision becomes healthy slowly, so that its rollback takes a while.
    good = aws.push(repository, "main", ready_seconds=12)
    assert aws.finish(aws.execution_for_push(good))["status"] == "SUCCEEDED"
    good_revision = aws.describe(cluster, "api")["taskDefinition"]

    bad = aws.push(repository, "main", health="unhealthy")
    push = aws.execution_for_push(bad)
    child = child_of(aws, push, service_arn)
    # deckhand's rollback started (the rollback's UpdateService is back on the known-good revision).
    wait_until("the rollback", lambda: "Anything to roll back?" in own_states(aws, child), 180, interval=0.2)
    # ECS reads lag behind writes (the local cloud's ecs/consistency): wait until it shows.
    wait_until("the rollback's revision", lambda: aws.describe(cluster, "api")["taskDefinition"] == good_revision, 30,
               interval=0.2)
    hotfix = aws.push(repository, "hotfix")
    theirs = aws.task_definition(unique("api"), [("web", aws.pinned(repository, hotfix), 5000)])
    aws.ecs.update_service(cluster=cluster, service="api", taskDefinition=theirs)

    execution = aws.finish(push)
    service_execution = aws.sfn.describe_execution(executionArn=child)
    assert service_execution["status"] == "SUCCEEDED", service_execution
    assert json.loads(service_execution["output"])["status"] == "SUPERSEDED"
    (end,) = terminal_events(events, push)
    assert end["status"] == "SUPERSEDED", end
    assert aws.describe(cluster, "api")["taskDefinition"] == theirs, "their change is left alone"
    states = own_states(aws, child)
    assert "Release lock (superseded)" in states and len(states) < 200, states[-20:]
    table = localcloud.stack_outputs["StateTableName"]
    item = localcloud.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": service_arn}}).get("Item", {})
    assert "lockOwner" not in item, "lock released"
    assert execution["status"] == "SUCCEEDED", execution
