"""Eventual consistency of ECS reads in the local cloud (ecs_consistency.py): reads show the state
of `lagSeconds` ago, writes answer with the new state at once, and the control route that sets
the lag.

Run: .venv/bin/python -m pytest tests/emulator/test_consistency.py -q
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the ECS simulator's fixtures

from localcloud import ecs_consistency  # noqa: E402
from test_ecs_sim import endpoint, sim, wait_until, world  # noqa: E402,F401 - fixtures by name
from test_mishaps import control  # noqa: E402

pytestmark = pytest.mark.timeout(60)

LAG = 2.0


def primary(world: Any) -> dict[str, Any]:
    return world.service()["deployments"][0]


def test_a_read_right_after_update_service_shows_the_previous_deployment(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.3))
    world.create_service(td1, desired=1)
    first = world.wait_completed(td1)["deployments"][0]["id"]
    sim.simulator.consistency.lag_seconds = LAG
    td2 = world.task_definition(world.push("v2", ready=0.3))

    before = time.monotonic()
    answer = world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)["service"]
    # The write answers with the new state at once...
    second = answer["deployments"][0]["id"]
    assert second != first and answer["deployments"][0]["taskDefinition"] == td2
    assert answer["taskDefinition"] == td2
    # ...a read right after it does not show it: the previous deployment is still the only one.
    read = world.service()
    assert [d["id"] for d in read["deployments"]] == [first], read["deployments"]
    assert read["taskDefinition"] == td1

    wait_until("the new deployment visible", lambda: primary(world)["id"] == second, timeout=LAG + 10)
    seen_after = time.monotonic() - before
    assert seen_after >= LAG, f"visible after {seen_after:.2f} s, before the {LAG} s lag"
    assert seen_after < LAG + 5, f"visible only after {seen_after:.2f} s"


def test_tasks_and_task_definitions_lag_too(world, sim):
    sim.simulator.consistency.lag_seconds = LAG
    td1 = world.task_definition(world.push("v1", ready=0.3))
    world.create_service(td1, desired=1)
    world.wait_completed(td1)
    td2 = world.task_definition(world.push("v2", ready=0.3))
    world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)
    world.wait_completed(td2)  # as of LAG ago: the task has run for LAG at least
    [task] = world.tasks()
    assert task["lastStatus"] == "RUNNING" and task["taskDefinitionArn"] == td2

    before = time.monotonic()
    stopped = world.ecs.stop_task(cluster=world.cluster, task=task["taskArn"], reason="test")["task"]
    assert stopped["desiredStatus"] == "STOPPED"  # StopTask's own answer is the new state
    world.ecs.deregister_task_definition(taskDefinition=td1)
    # Right after: still listed and described as running, the revision still ACTIVE.
    assert task["taskArn"] in world.ecs.list_tasks(cluster=world.cluster, serviceName="web")["taskArns"]
    [described] = world.ecs.describe_tasks(cluster=world.cluster, tasks=[task["taskArn"]])["tasks"]
    assert (described["lastStatus"], described["desiredStatus"]) == ("RUNNING", "RUNNING")
    assert world.ecs.describe_task_definition(taskDefinition=td1)["taskDefinition"]["status"] == "ACTIVE"

    def stop_seen() -> bool:
        [now] = world.ecs.describe_tasks(cluster=world.cluster, tasks=[task["taskArn"]])["tasks"]
        return now["desiredStatus"] == "STOPPED"

    wait_until("the stop visible", stop_seen, timeout=LAG + 10)
    assert time.monotonic() - before >= LAG
    assert task["taskArn"] not in world.ecs.list_tasks(cluster=world.cluster, serviceName="web")["taskArns"]
    assert task["taskArn"] in world.ecs.list_tasks(
        cluster=world.cluster, serviceName="web", desiredStatus="STOPPED"
    )["taskArns"]
    wait_until(
        "the deregistration visible",
        lambda: world.ecs.describe_task_definition(taskDefinition=td1)["taskDefinition"]["status"] == "INACTIVE",
        timeout=LAG + 10,
    )


def test_a_new_service_is_described_as_created_not_hidden(world, sim):
    """A service younger than the lag is shown as CreateService made it (every setting given),
    not as MISSING (ecs_consistency's docstring says why)."""
    sim.simulator.consistency.lag_seconds = 30
    td = world.task_definition(world.push("v1", ready=0.3))
    world.create_service(
        td, desired=2, deployment_configuration={"minimumHealthyPercent": 50, "maximumPercent": 150}
    )
    service = world.service()
    assert service["desiredCount"] == 2 and service["taskDefinition"] == td
    assert service["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert service["deploymentConfiguration"]["maximumPercent"] == 150
    [deployment] = service["deployments"]
    assert deployment["rolloutState"] == "IN_PROGRESS" and deployment["runningCount"] == 0
