"""The failure matrix: each case asserts the service's final revision, the execution's status
and error name, and the deployment events seen on the bus."""

from __future__ import annotations

import json
import time

import pytest

from .aws import Aws, api_service, unique, wait_until

pytestmark = pytest.mark.timeout(300)


def failed_with(aws: Aws, execution: dict, error: str) -> list[dict]:
    """The failed services' lines of an execution that failed with `error`."""
    assert execution["status"] == "FAILED", execution
    assert execution.get("error") == error, execution
    return aws.failed_services(execution)


def test_unhealthy_image_is_rolled_back_to_the_last_known_good_revision(aws: Aws, events) -> None:
    api = api_service(aws)
    bad = aws.push(api.repository, "main", health="unhealthy")
    execution = aws.finish(aws.execution_for_push(bad))
    results = failed_with(aws, execution, "DeploymentRolledBack")
    assert results[0]["status"] == "ROLLED_BACK" and results[0]["taskDefinition"] == api.good_revision
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision
    assert set(aws.target_states(api.group)) == {"healthy"}
    detail = events.for_execution(execution["executionArn"])
    assert [e["status"] for e in detail] == ["STARTED", "ROLLED_BACK"]
    assert "health check" in detail[-1]["reason"], detail[-1]["reason"]
    assert detail[-1]["previousTaskDefinition"] != api.good_revision, "the event names the failed revision"


def test_crashing_image_is_rolled_back(aws: Aws, events) -> None:
    api = api_service(aws)
    bad = aws.push(api.repository, "main", health="crash")
    execution = aws.finish(aws.execution_for_push(bad))
    failed_with(aws, execution, "DeploymentRolledBack")
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision
    assert events.statuses(execution["executionArn"]) == ["STARTED", "ROLLED_BACK"]


def test_slow_image_healthy_inside_the_grace_period_is_not_rolled_back(aws: Aws, events) -> None:
    # deckhand:timeout=2 would time out a rollout that takes 5 s, but the service's 15 s grace
    # period extends the budget: the timeout must count it.
    api = api_service(aws, grace=15, tags={"deckhand:timeout": "2"}, verified=False)
    slow = aws.push(api.repository, "main", ready_seconds=5)
    execution = aws.finish(aws.execution_for_push(slow))
    assert execution["status"] == "SUCCEEDED", execution
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, slow)
    assert events.statuses(execution["executionArn"]) == ["STARTED", "SUCCEEDED"]


def test_circuit_breaker_rollback_by_ecs_is_reported_as_failed_never_as_success(aws: Aws, events) -> None:
    # deckhand tolerates many failed tasks here, so ECS's circuit breaker acts first.
    api = api_service(aws, circuit_breaker={"enable": True, "rollback": True}, tags={"deckhand:max-failed-tasks": "50"})
    bad = aws.push(api.repository, "main", health="crash")
    execution = aws.finish(aws.execution_for_push(bad))
    results = failed_with(aws, execution, "DeploymentRolledBack")
    assert "ECS" in results[0]["reason"], results[0]["reason"]
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision
    statuses = events.statuses(execution["executionArn"])
    assert "SUCCEEDED" not in statuses and statuses[-1] == "ROLLED_BACK", statuses


def test_the_same_push_delivered_twice_deploys_once(aws: Aws, events) -> None:
    api = api_service(aws)
    digest = aws.push(api.repository, "main")
    first = aws.execution_for_push(digest)
    # EventBridge delivers at least once: a second delivery is the same event, started again.
    event = aws.sfn.describe_execution(executionArn=first)["input"]
    second = aws.sfn.start_execution(stateMachineArn=aws.state_machine, name=unique("redelivery"), input=event)["executionArn"]
    outcomes = [aws.finish(arn) for arn in (first, second)]
    assert [o["status"] for o in outcomes] == ["SUCCEEDED", "SUCCEEDED"]
    terminal = sorted(events.statuses(first)[-1:] + events.statuses(second)[-1:])
    assert terminal == ["SKIPPED", "SUCCEEDED"], terminal
    family = api.good_revision.rsplit("/", 1)[1].split(":")[0]
    revisions = aws.ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert len(revisions) == 3, f"one revision for the duplicate pair, got {revisions}"


def test_two_pushes_seconds_apart_end_on_the_newer(aws: Aws, events) -> None:
    api = api_service(aws)
    older = aws.push(api.repository, "main", ready_seconds=2)
    time.sleep(1.1)
    newer = aws.push(api.repository, "main")
    executions = [aws.finish(aws.execution_for_push(d)) for d in (older, newer)]
    assert all(e["status"] == "SUCCEEDED" for e in executions), executions
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, newer)
    assert events.statuses(executions[1]["executionArn"])[-1] == "SUCCEEDED"


def test_manual_deploy_rollback_and_dry_run(aws: Aws, events) -> None:
    api = api_service(aws)
    v2 = aws.push(api.repository, "v2")  # a tag the service does not track: only a manual deploy takes it
    revisions_before = aws.ecs.list_task_definitions()["taskDefinitionArns"]

    dry = aws.finish(aws.start({"cluster": api.cluster, "service": api.service, "image": f"{api.repository}:v2", "dryRun": True}))
    assert dry["status"] == "SUCCEEDED"
    output = json.loads(dry["output"])
    assert output["dryRun"] is True and v2 in "\n".join(output["targets"][0]["diff"])
    assert aws.ecs.list_task_definitions()["taskDefinitionArns"] == revisions_before, "dry run registers nothing"
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision

    deploy = aws.finish(aws.start({"cluster": api.cluster, "service": api.service, "image": f"{api.repository}:v2"}))
    assert deploy["status"] == "SUCCEEDED", deploy
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, v2)
    assert events.statuses(deploy["executionArn"]) == ["STARTED", "SUCCEEDED"]

    preview = aws.finish(aws.start({"cluster": api.cluster, "service": api.service, "rollback": True, "dryRun": True}))
    assert preview["status"] == "SUCCEEDED"
    assert json.loads(preview["output"])["preview"]["taskDefinition"] == api.good_revision

    back = aws.finish(aws.start({"cluster": api.cluster, "service": api.service, "rollback": True}))
    assert back["status"] == "SUCCEEDED", back
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision
    assert events.statuses(back["executionArn"]) == ["STARTED", "ROLLED_BACK"]
    # A person started both: their events say so (a push's say "push").
    assert {e["trigger"] for e in events.for_execution(deploy["executionArn"]) + events.for_execution(back["executionArn"])} == {"manual"}


@pytest.mark.parametrize("request_for", [
    lambda api: {"cluster": api.cluster, "service": "untracked", "image": f"{api.repository}:main"},
    lambda api: {"cluster": api.cluster, "service": api.service, "image": f"999999999999.dkr.ecr.us-east-1.amazonaws.com/{api.repository}:main"},
    lambda api: {"cluster": api.cluster, "service": api.service, "image": "docker.io/library/nginx:latest"},
    lambda api: {"cluster": api.cluster, "service": api.service, "image": f"{api.repository}:main", "dryrun": True},
], ids=["service-without-track-tag", "other-account-registry", "docker-hub", "mistyped-field"])
def test_refused_manual_requests_fail_with_invalid_input_and_change_nothing(aws: Aws, events, request_for) -> None:
    api = api_service(aws, verified=False)
    td = aws.describe(api.cluster, api.service)["taskDefinition"]
    aws.service(api.cluster, "untracked", td, api.network)
    revisions_before = aws.ecs.list_task_definitions()["taskDefinitionArns"]
    execution = aws.finish(aws.start(request_for(api)))
    assert execution["status"] == "FAILED" and execution["error"] == "InvalidInput", execution
    assert aws.ecs.list_task_definitions()["taskDefinitionArns"] == revisions_before
    for service in ("untracked", api.service):
        assert aws.describe(api.cluster, service)["taskDefinition"] == td
    assert events.for_execution(execution["executionArn"]) == []


def test_a_failing_rollback_ends_rollback_failed_on_a_recorded_revision_with_the_lock_released(aws: Aws, localcloud, events) -> None:
    api = api_service(aws)
    bad = aws.push(api.repository, "main", health="unhealthy")
    # The dependency the known-good revision needs goes down too: its new tasks never pass.
    localcloud.sim.set_image_behaviour(api.good_digest, health="unhealthy")
    execution = aws.finish(aws.execution_for_push(bad))
    results = failed_with(aws, execution, "RollbackFailed")
    assert results[0]["status"] == "ROLLBACK_FAILED"
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision, "left on the recorded revision"
    assert events.statuses(execution["executionArn"]) == ["STARTED", "ROLLBACK_FAILED"]

    table = localcloud.stack_outputs["StateTableName"]
    service_arn = aws.describe(api.cluster, api.service)["serviceArn"]
    item = localcloud.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": service_arn}})["Item"]
    assert "lockOwner" not in item, "lock released"
    # …so the next deployment proceeds at once.
    localcloud.sim.set_image_behaviour(api.good_digest, health="healthy")
    fixed = aws.push(api.repository, "main")
    assert aws.finish(aws.execution_for_push(fixed))["status"] == "SUCCEEDED"
    wait_until("the fix to run", lambda: aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, fixed))


def test_a_lock_left_by_a_dead_execution_is_recovered(aws: Aws, localcloud, events) -> None:
    api = api_service(aws, grace=20)
    slow = aws.push(api.repository, "main", ready_seconds=8)
    stuck = aws.execution_for_push(slow)
    table = localcloud.stack_outputs["StateTableName"]
    service_arn = aws.describe(api.cluster, api.service)["serviceArn"]
    dynamodb = localcloud.client("dynamodb")

    def lock_owner() -> str | None:
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": service_arn}}).get("Item", {})
        return item.get("lockOwner", {}).get("S")

    # The lock is held by the service's own execution, which the push's execution started.
    holder = wait_until("the service execution", lambda: aws.service_executions(stuck))[0]
    wait_until("the service execution to hold the lock", lambda: lock_owner() == holder)
    aws.sfn.stop_execution(executionArn=stuck, error="Operator", cause="killed mid-deployment")
    # Stopping the push's execution stops the service's (a .sync:2 child); the holder is dead but
    # its lock is still there: the next push must not wait for the TTL.
    wait_until("the service execution to stop", lambda: aws.sfn.describe_execution(executionArn=holder)["status"] == "ABORTED")
    assert lock_owner() == holder
    fixed = aws.push(api.repository, "main")
    execution = aws.finish(aws.execution_for_push(fixed), timeout=120)
    assert execution["status"] == "SUCCEEDED", execution
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, fixed)
    assert lock_owner() is None


def test_bake_time_watches_a_healthy_rollout_again_before_recording_it(aws: Aws, events) -> None:
    api = api_service(aws, tags={"deckhand:bake": "2"}, verified=False)
    digest = aws.push(api.repository, "main")
    arn = aws.execution_for_push(digest)
    execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    entered = [e["stateEnteredEventDetails"]["name"] for e in aws.history(arn) if "stateEnteredEventDetails" in e]
    assert entered.index("Bake") < entered.index("Final health check") < entered.index("Record known-good and release lock")
