"""When AWS and people misbehave (issue 10): each case produces the situation through public AWS
APIs (and the local cloud's fault injection where only AWS itself could cause it) and asserts what
deckhand guarantees. No sleep dodges a race: every wait is on an observable state."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from typing import Any, Iterator

import pytest

from .aws import Aws, unique, wait_until
from .test_failures import api_service, failed_with

pytestmark = pytest.mark.timeout(300)


def terminal_event(events: Any, execution_arn: str) -> dict:
    found = [e for e in events.for_execution(execution_arn) if e["status"] != "STARTED"]
    assert len(found) == 1, found
    return found[0]


def lock_item(localcloud: Any, aws: Aws, cluster: str, service: str) -> dict:
    table = localcloud.stack_outputs["StateTableName"]
    service_arn = aws.describe(cluster, service)["serviceArn"]
    return localcloud.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": service_arn}}).get("Item", {})


def task_errors(aws: Aws, execution_arn: str) -> list[str]:
    """The errors its Task states failed with (a Lambda resource reports LambdaFunctionFailed)."""
    details = ("taskFailedEventDetails", "lambdaFunctionFailedEventDetails")
    return [e[key].get("error", "") for e in aws.history(execution_arn) for key in details if key in e]


def wait_for_deckhands_update(aws: Aws, cluster: str, service: str, digest: str) -> str:
    """Until deckhand's UpdateService put the pushed digest on the service; returns that revision."""
    def updated() -> str | None:
        revision = aws.describe(cluster, service)["taskDefinition"]
        return revision if digest in json.dumps(aws.images(revision)) else None
    return wait_until("deckhand's UpdateService", updated, 60, interval=0.2)


def test_a_holder_past_its_lease_that_still_runs_keeps_the_lock(aws: Aws, localcloud, events) -> None:
    api = api_service(aws, grace=20)
    slow = aws.push(api.repository, "main", ready_seconds=6)
    first = aws.execution_for_push(slow)
    # The lock is held by the service's own execution, which the push's execution started.
    holder = wait_until("the service execution", lambda: aws.service_executions(first))[0]
    wait_until("the first execution to hold the lock",
               lambda: lock_item(localcloud, aws, api.cluster, api.service).get("lockOwner", {}).get("S") == holder)
    # The lease runs out while the rollout is still watched (rollouts may legally outlast it).
    table = localcloud.stack_outputs["StateTableName"]
    item = lock_item(localcloud, aws, api.cluster, api.service)
    record = json.loads(item["record"]["S"])
    record["lock"]["expiresAt"] = 1.0
    item["record"] = {"S": json.dumps(record)}
    localcloud.client("dynamodb").put_item(TableName=table, Item=item)

    newer = aws.push(api.repository, "main")
    second = aws.execution_for_push(newer)
    outcomes = [aws.finish(arn) for arn in (first, second)]
    assert [o["status"] for o in outcomes] == ["SUCCEEDED", "SUCCEEDED"], outcomes
    assert terminal_event(events, first)["status"] == "SUCCEEDED", "the running holder was not disturbed"
    assert "LockBusy" in task_errors(aws, second), "the second execution waited for the live holder instead of taking its expired lease"
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, newer)


def test_two_pushes_of_one_tag_back_to_back_end_on_the_newer(aws: Aws, events) -> None:
    api = api_service(aws)
    older = aws.push(api.repository, "main", ready_seconds=2)
    newer = aws.push(api.repository, "main")  # same second as the older one, most likely
    executions = [aws.finish(aws.execution_for_push(d)) for d in (older, newer)]
    assert all(e["status"] == "SUCCEEDED" for e in executions), executions
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, newer)
    older_end = terminal_event(events, executions[0]["executionArn"])
    if older_end["status"] == "SKIPPED":
        assert "superseded" in older_end["reason"], older_end
    assert terminal_event(events, executions[1]["executionArn"])["status"] == "SUCCEEDED"


# When, in deckhand's rollout, someone else's UpdateService lands: each moment is an observable
# state of deckhand's deployment (the simulator moves on every 0.2 s, so timing them by the clock
# would test whatever the machine's load made of it).
MOMENTS = ("visible", "launching", "running", "completed")


def reach(aws: Aws, api: Any, moment: str) -> str:
    """Waits until deckhand's deployment of `api` has reached `moment`; returns its id.
    visible: UpdateService is done and the deployment is PRIMARY (no task started yet, most likely);
    launching: its first tasks exist, not yet RUNNING; running: a task of it is RUNNING while its
    targets are not healthy yet; completed: ECS calls it COMPLETED (deckhand is baking)."""
    deployment = primary_id(aws, api.cluster, api.service)
    if moment == "launching":
        wait_until("deckhand's first tasks", lambda: new_tasks(aws, api.cluster, deployment), 60, interval=0.05)
    elif moment == "running":
        def running() -> bool:
            arns = new_tasks(aws, api.cluster, deployment)
            tasks = aws.ecs.describe_tasks(cluster=api.cluster, tasks=arns)["tasks"] if arns else []
            return any(t["lastStatus"] == "RUNNING" for t in tasks)
        wait_until("a task of deckhand's deployment RUNNING", running, 60, interval=0.1)
    elif moment == "completed":
        def completed() -> bool:
            found = [d for d in aws.describe(api.cluster, api.service)["deployments"] if d["id"] == deployment]
            return bool(found) and found[0].get("rolloutState") == "COMPLETED"
        wait_until("deckhand's deployment COMPLETED", completed, 90, interval=0.1)
    return deployment


def scaled_api(aws: Aws, desired: int, **kwargs: Any) -> Any:
    """api_service, then scaled to `desired` tasks and steady again."""
    api = api_service(aws, **kwargs)
    if desired != 2:
        aws.ecs.update_service(cluster=api.cluster, service=api.service, desiredCount=desired)
        aws.wait_steady(api.cluster, api.service)
    return api


@pytest.mark.parametrize("theirs", ["new", "previous"])
@pytest.mark.parametrize("moment", MOMENTS)
def test_someone_elses_update_service_mid_rollout_supersedes_deckhand(
        aws: Aws, localcloud, events, moment: str, theirs: str) -> None:
    """Their own revision, or the revision deckhand replaced (a person going back by hand is not
    ECS rolling back), at any moment of deckhand's rollout: SUPERSEDED, their change left alone."""
    desired = 4 if moment in ("launching", "completed") else 2
    api = scaled_api(aws, desired, grace=30, tags={"deckhand:bake": "4"} if moment == "completed" else None)
    slow = aws.push(api.repository, "main", ready_seconds=1 if moment == "completed" else 6)
    arn = aws.execution_for_push(slow)
    ours = wait_for_deckhands_update(aws, api.cluster, api.service, slow)
    reach(aws, api, moment)
    if theirs == "new":
        hotfix = aws.push(api.repository, "hotfix")
        revision = aws.task_definition(unique("api"), [("web", aws.pinned(api.repository, hotfix), 5000)])
    else:
        revision = api.good_revision
    aws.ecs.update_service(cluster=api.cluster, service=api.service, taskDefinition=revision)

    execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    end = terminal_event(events, arn)
    assert end["status"] == "SUPERSEDED", end
    assert end["previousTaskDefinition"] == ours
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == revision, "their change is left alone"
    assert "lockOwner" not in lock_item(localcloud, aws, api.cluster, api.service), "lock released"
    assert "ROLLED_BACK" not in events.statuses(arn)
    assert "Roll back to last known-good" not in entered_states(aws, arn)


@pytest.mark.parametrize("moment", ["visible", "running", "completed"])
def test_a_forced_new_deployment_of_deckhands_revision_is_still_deckhands_rollout(
        aws: Aws, localcloud, events, moment: str) -> None:
    """UpdateService --force-new-deployment by hand restarts deckhand's own revision: the service
    still rolls out exactly what deckhand deployed, so deckhand watches the new deployment to its
    end (neither SUPERSEDED nor, worse, rolled back)."""
    api = api_service(aws, grace=30, tags={"deckhand:bake": "4"} if moment == "completed" else None)
    pushed = aws.push(api.repository, "main", ready_seconds=1 if moment == "completed" else 4)
    arn = aws.execution_for_push(pushed)
    ours = wait_for_deckhands_update(aws, api.cluster, api.service, pushed)
    first = reach(aws, api, moment)
    # ECS reads lag behind writes (the local cloud's ecs/consistency): the forced deployment is
    # known from UpdateService's own answer, not from a DescribeServices right after it.
    answer = aws.ecs.update_service(cluster=api.cluster, service=api.service, forceNewDeployment=True)["service"]
    forced = answer["deployments"][0]["id"]
    assert forced != first

    execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    end = terminal_event(events, arn)
    assert end["status"] == "SUCCEEDED" and end["taskDefinition"] == ours, end
    assert "Roll back to last known-good" not in entered_states(aws, arn)
    service = aws.describe(api.cluster, api.service)
    assert service["taskDefinition"] == ours and service["deployments"][0]["id"] == forced


def test_rollback_passes_over_a_deregistered_known_good_revision(aws: Aws, events) -> None:
    api = api_service(aws)  # api.good_revision is verified
    second = aws.push(api.repository, "main")
    assert aws.finish(aws.execution_for_push(second))["status"] == "SUCCEEDED"
    newest_good = aws.describe(api.cluster, api.service)["taskDefinition"]
    aws.ecs.deregister_task_definition(taskDefinition=newest_good)

    bad = aws.push(api.repository, "main", health="unhealthy")
    execution = aws.finish(aws.execution_for_push(bad))
    results = failed_with(aws, execution, "DeploymentRolledBack")
    assert results[0]["taskDefinition"] == api.good_revision, results
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision
    end = terminal_event(events, execution["executionArn"])
    assert end["status"] == "ROLLED_BACK" and "passed over" in end["reason"], end


@pytest.mark.parametrize("controller", ["CODE_DEPLOY", "EXTERNAL"])
def test_a_service_deckhand_cannot_drive_is_skipped_with_a_reason(aws: Aws, events, controller: str) -> None:
    net = aws.network()
    repository = aws.repository(unique("flask"))
    cluster = aws.cluster()
    initial = aws.push(repository, "main")
    td = aws.task_definition(unique("api"), [("web", aws.pinned(repository, initial), 5000)])
    aws.ecs.create_service(
        cluster=cluster, serviceName="api", taskDefinition=td, desiredCount=1, launchType="FARGATE",
        deploymentController={"type": controller},
        networkConfiguration={"awsvpcConfiguration": {"subnets": net.subnets, "securityGroups": [net.security_group]}},
        tags=[{"key": "deckhand:track", "value": f"web={repository}:main"}],
    )
    revisions_before = aws.ecs.list_task_definitions()["taskDefinitionArns"]
    pushed = aws.push(repository, "main")
    execution = aws.finish(aws.execution_for_push(pushed))
    assert execution["status"] == "SUCCEEDED", execution
    end = terminal_event(events, execution["executionArn"])
    assert end["status"] == "SKIPPED" and controller in end["reason"], end
    assert aws.ecs.list_task_definitions()["taskDefinitionArns"] == revisions_before, "nothing registered"
    assert aws.describe(cluster, "api")["taskDefinition"] == td

    manual = aws.finish(aws.start({"cluster": cluster, "service": "api", "image": f"{repository}:main"}))
    assert manual["status"] == "FAILED" and manual["error"] == "InvalidInput", manual
    assert controller in manual["cause"]


# ------------------------------------------------------------------------------------------
# helpers for the cases AWS itself must cause (the local cloud's control routes)
# ------------------------------------------------------------------------------------------


def control(localcloud: Any, method: str, route: str, body: dict | None = None) -> Any:
    request = urllib.request.Request(f"{localcloud.endpoint}/_localcloud/{route}", method=method,
                                     data=json.dumps(body or {}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


@contextlib.contextmanager
def fault(localcloud: Any, **spec: Any) -> Iterator[None]:
    """Makes matching AWS calls of deckhand's functions fail (faults.py), until the block ends."""
    added = control(localcloud, "POST", "faults", spec)
    try:
        yield
    finally:
        control(localcloud, "DELETE", "faults", {"id": added.get("id")} if added.get("id") else {})


@contextlib.contextmanager
def function_timeout(localcloud: Any, logical_id: str, seconds: int) -> Iterator[None]:
    """The stack's function `logical_id` gets a shorter Timeout (UpdateFunctionConfiguration)."""
    lam = localcloud.client("lambda")
    name = localcloud.stack.describe()["Resources"][logical_id]["PhysicalResourceId"]
    before = lam.get_function_configuration(FunctionName=name)["Timeout"]
    lam.update_function_configuration(FunctionName=name, Timeout=seconds)
    try:
        yield
    finally:
        lam.update_function_configuration(FunctionName=name, Timeout=before)


def entered_states(aws: Aws, execution_arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in aws.history(execution_arn) if "stateEnteredEventDetails" in e]


def new_tasks(aws: Aws, cluster: str, deployment_id: str) -> list[str]:
    return aws.ecs.list_tasks(cluster=cluster, startedBy=deployment_id, desiredStatus="RUNNING")["taskArns"]


def primary_id(aws: Aws, cluster: str, service: str) -> str:
    return next(d["id"] for d in aws.describe(cluster, service)["deployments"] if d["status"] == "PRIMARY")


# ------------------------------------------------------------------------------------------
# only real failures count; the bake ends in a verdict
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["launching", "running", "completed"])
@pytest.mark.parametrize("sizes", [(2, 1), (4, 2), (3, 1)], ids=lambda s: f"{s[0]}to{s[1]}")
def test_scale_in_and_stop_task_during_a_rollout_are_not_failed_tasks(
        aws: Aws, events, sizes: tuple[int, int], moment: str) -> None:
    """A scale-in (ServiceSchedulerInitiated, exit 143) and an operator's StopTask (UserInitiated)
    at any moment of the rollout: stops of new tasks, as many as MaxFailedTasks or more, and none
    is a failure of the revision."""
    before, after = sizes
    api = scaled_api(aws, before, grace=30, tags={"deckhand:bake": "4"} if moment == "completed" else None)
    slow = aws.push(api.repository, "main", ready_seconds=1 if moment == "completed" else 5)
    arn = aws.execution_for_push(slow)
    wait_for_deckhands_update(aws, api.cluster, api.service, slow)
    deployment = reach(aws, api, moment)
    running = wait_until("new tasks", lambda: new_tasks(aws, api.cluster, deployment) or None, 60, interval=0.1)
    aws.ecs.update_service(cluster=api.cluster, service=api.service, desiredCount=after)
    aws.ecs.stop_task(cluster=api.cluster, task=running[0], reason="operator restarts it")
    execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    assert terminal_event(events, arn)["status"] == "SUCCEEDED"
    assert "Roll back to last known-good" not in entered_states(aws, arn)
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, slow)
    service = aws.wait_steady(api.cluster, api.service)
    assert service["desiredCount"] == after, "their scale-in is left alone"


def test_a_task_replaced_during_the_bake_sends_the_rollout_back_to_waiting(aws: Aws, events) -> None:
    api = api_service(aws, grace=30, tags={"deckhand:bake": "3"}, verified=False)
    pushed = aws.push(api.repository, "main", ready_seconds=6)
    arn = aws.execution_for_push(pushed)
    wait_until("the bake", lambda: "Bake" in entered_states(aws, arn), 90, interval=0.2)
    deployment = primary_id(aws, api.cluster, api.service)
    # A task replaced mid-bake: its replacement is `initial` for 6 s, past the end of the bake.
    aws.ecs.stop_task(cluster=api.cluster, task=new_tasks(aws, api.cluster, deployment)[0], reason="replaced")
    execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    states = entered_states(aws, arn)
    after_bake = states[states.index("Still healthy after bake?") + 1]
    # PENDING goes through "How to wait for the rollout?" (lease, poll or park); never a rollback.
    assert after_bake in ("How to wait for the rollout?", "Record known-good and release lock"), states
    if after_bake == "How to wait for the rollout?":  # the replacement was still initial: waited
        assert "Roll back to last known-good" not in states, states
    assert terminal_event(events, arn)["status"] == "SUCCEEDED"


def test_a_check_that_times_out_is_not_a_failure(aws: Aws, localcloud, events) -> None:
    """A Check that runs past its function timeout reaches the state machine as Sandbox.Timedout,
    Lambda's own name for it (older pages say Lambda.Unknown; both are handled), and throttling
    past its retries as AwsThrottled: "don't know yet", never a rollback."""
    api = api_service(aws, grace=60)
    # Two checks in a row meet a load balancer API slower than the function's timeout.
    with function_timeout(localcloud, "CheckFunction", 3), fault(
            localcloud, action="elasticloadbalancing:DescribeTargetHealth", delaySeconds=6, count=2,
            callerRole="*Check*"):
        pushed = aws.push(api.repository, "main")
        arn = aws.execution_for_push(pushed)
        execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    states = entered_states(aws, arn)
    assert states.count("Note inconclusive rollout check") == 2, states
    assert "Roll back to last known-good" not in states
    assert "Sandbox.Timedout" in task_errors(aws, arn)
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, pushed)


def test_a_deploy_retried_after_its_update_went_through_keeps_the_previous_revision(aws: Aws, localcloud, events) -> None:
    """The Deploy function times out after its UpdateService was carried out (the answer came
    back too late): Step Functions retries it, and the retry must watch the deployment it
    started, knowing what it replaced from the lock, not register and start another."""
    api = api_service(aws, verified=False)  # nothing verified yet: only the lock's capture knows
    original = api.good_revision
    with function_timeout(localcloud, "DeployFunction", 3), fault(
            localcloud, action="ecs:UpdateService", respondAfterSeconds=6, count=1, callerRole="*Deploy*"):
        pushed = aws.push(api.repository, "main")
        arn = aws.execution_for_push(pushed)
        execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    assert "Sandbox.Timedout" in task_errors(aws, arn), "the first Deploy timed out"
    end = terminal_event(events, arn)
    assert end["status"] == "SUCCEEDED" and end["previousTaskDefinition"] == original, end
    family = original.rsplit("/", 1)[1].split(":")[0]
    revisions = aws.ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert len(revisions) == 2, f"the retry registered nothing new: {revisions}"
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, pushed)


# ------------------------------------------------------------------------------------------
# a lost event, someone else's change, a cluster named twice
# ------------------------------------------------------------------------------------------


def test_a_lost_event_never_changes_the_outcome(aws: Aws, localcloud, events) -> None:
    api = api_service(aws)
    bad = aws.push(api.repository, "main", health="unhealthy")
    localcloud.sim.set_image_behaviour(api.good_digest, health="unhealthy")
    try:
        with fault(localcloud, action="events:PutEvents", error="AccessDeniedException", callerRole="*Notify*"):
            execution = aws.finish(aws.execution_for_push(bad))
    finally:
        localcloud.sim.set_image_behaviour(api.good_digest, health="healthy")
    results = failed_with(aws, execution, "RollbackFailed")
    assert results[0]["status"] == "ROLLBACK_FAILED" and results[0]["outcome"] == "rollbackFailed", results
    assert results[0]["eventLost"] is True and "lost" in results[0]["reason"], results
    assert events.for_execution(execution["executionArn"]) == [], "no event was published"


def test_a_failure_before_deckhands_update_leaves_someone_elses_revision_alone(aws: Aws, localcloud, events) -> None:
    api = api_service(aws, grace=30)
    slow = aws.push(api.repository, "main", ready_seconds=8)
    first = aws.execution_for_push(slow)
    wait_for_deckhands_update(aws, api.cluster, api.service, slow)
    with fault(localcloud, action="ecs:RegisterTaskDefinition", error="ClientException", callerRole="*Deploy*"):
        # A second push waits for the lock; meanwhile an operator ships their own revision
        # (superseding the first deployment, which releases the lock) ...
        waiting = aws.push(api.repository, "main")
        second = aws.execution_for_push(waiting)
        wait_until("the second execution to wait for the lock",
                   lambda: "LockBusy" in task_errors(aws, second),
                   60, interval=0.2)
        hotfix = aws.push(api.repository, "hotfix")
        theirs = aws.task_definition(unique("api"), [("web", aws.pinned(api.repository, hotfix), 5000)])
        aws.ecs.update_service(cluster=api.cluster, service=api.service, taskDefinition=theirs)
        # ... and the second deployment then fails before its own UpdateService.
        execution = aws.finish(second)
    assert terminal_event(events, first)["status"] == "SUPERSEDED"
    assert execution["status"] == "FAILED", execution
    assert terminal_event(events, second)["status"] == "FAILED"
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == theirs, "their revision was not undone"


def test_a_cluster_watched_by_name_and_by_arn_deploys_each_service_once(aws: Aws, localcloud, events) -> None:
    api = api_service(aws, verified=False)
    lam = localcloud.client("lambda")
    plan_function = localcloud.stack.describe()["Resources"]["PlanFunction"]["PhysicalResourceId"]
    config = lam.get_function_configuration(FunctionName=plan_function)
    env = dict(config["Environment"]["Variables"])
    cluster_arn = aws.describe(api.cluster, api.service)["clusterArn"]
    lam.update_function_configuration(FunctionName=plan_function, Environment={
        "Variables": {**env, "DECKHAND_CLUSTERS": f"{api.cluster},{cluster_arn}"}})
    try:
        execution = aws.finish(aws.execution_for_push(aws.push(api.repository, "main")))
    finally:
        lam.update_function_configuration(FunctionName=plan_function, Environment={"Variables": env})
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"])["services"] == 1, execution["output"]
    assert events.statuses(execution["executionArn"]) == ["STARTED", "SUCCEEDED"]
