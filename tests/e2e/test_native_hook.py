"""Issue 23, item 2: deckhand as an ECS lifecycle hook. `deckhand track --hook` sets deckhand's
hook function (the stack's HookFunction, invoked with its HookInvokeRole) on a BLUE_GREEN, LINEAR or
CANARY service at POST_TEST_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT.
ECS then asks the hook at each of those stages; the hook answers from deckhand's gates (new tasks
and their targets, `deckhand:alarms`, failed tasks) and runs deckhand's bake (`deckhand:bake`) after
the production shift, with the old revision still up. A FAILED answer makes ECS roll back
(tests/localcloud/ecs_hooks.py invokes the hook as ECS does), and deckhand's verdict says why."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from .aws import Aws, api_service, wait_until
from .test_cli import deckhand  # noqa: F401 - the `deckhand` command fixture
from .test_native_strategies import (  # noqa: F401 - scaled_ecs_waits is an autouse fixture
    STRATEGIES,
    native_service,
    rolled_back_by_ecs,
    scaled_ecs_waits,
    service_deployments,
)
from .test_release_policies import alarm, set_alarm

pytestmark = pytest.mark.timeout(400)

BAKE_SECONDS = 12
HOOK_FAILURE = "hook execution failure"


def hooked(deckhand: Any, aws: Aws, strategy: str, watched: str) -> Any:
    """A native service deckhand deployed once, then tracked with its hook, alarm and bake."""
    service = native_service(aws, strategy, alarms=[watched])
    done = deckhand("track", service.cluster, "api", f"web={service.repository}:main", "--alarm", watched,
                    "--bake", str(BAKE_SECONDS), "--hook")
    assert done.returncode == 0 and "deckhand lifecycle hook set" in done.stdout, done.stdout + done.stderr

    def doctor_sees_the_hook() -> bool:  # ECS's reads lag its writes: the doctor may read the old service
        doctor = deckhand("doctor", service.cluster, "api")
        return any(line.startswith("ok") and "lifecycle hook" in line for line in doctor.stdout.splitlines())

    wait_until("deckhand doctor to see the hook", doctor_sees_the_hook, timeout=60)
    return service


class HookWatcher:
    """Reads the service deployments in the background and keeps every (stage, hook status)
    DescribeServiceDeployments showed for deckhand's hook."""

    def __init__(self, aws: Aws, cluster: str, function_arn: str) -> None:
        self.seen: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(aws, cluster, function_arn), daemon=True)
        self._thread.start()

    def _watch(self, aws: Aws, cluster: str, function_arn: str) -> None:
        while not self._stop.is_set():
            try:
                for found in service_deployments(aws, cluster)[:1]:
                    for hook in found.get("lifecycleHookDetails") or []:
                        if hook.get("targetArn") == function_arn:
                            self.seen.add((found.get("lifecycleStage", ""), hook["status"]))
            except Exception:  # noqa: BLE001 - a throttled read is only a missed sample
                pass
            self._stop.wait(0.3)

    def stop(self) -> set[tuple[str, str]]:
        self._stop.set()
        self._thread.join(5)
        return self.seen


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_alarm_during_deckhands_bake_is_rolled_back_through_its_hook(aws: Aws, events, deckhand, localcloud,
                                                                         strategy: str) -> None:
    watched = alarm(aws)
    service = hooked(deckhand, aws, strategy, watched)
    before = len(service_deployments(aws, service.cluster))
    digest = aws.push(service.repository, "main")  # healthy-looking: only the alarm says otherwise
    execution_arn = aws.execution_for_push(digest)
    function = localcloud.stack_outputs["HookFunctionArn"]

    def baking() -> bool:
        found = service_deployments(aws, service.cluster)
        return bool(found) and len(found) > before and found[0].get("lifecycleStage") == "POST_PRODUCTION_TRAFFIC_SHIFT" \
            and any(h.get("targetArn") == function and h["status"] == "IN_PROGRESS"
                    for h in found[0].get("lifecycleHookDetails") or [])

    wait_until("deckhand's hook baking after the production shift", baking, timeout=150)
    set_alarm(aws, watched, "ALARM")
    execution = aws.finish(execution_arn)
    rolled_back_by_ecs(aws, events, service, execution, before)
    newest = service_deployments(aws, service.cluster)[0]
    assert HOOK_FAILURE in (newest.get("statusReason") or ""), newest  # ECS's rollback, not StopServiceDeployment
    (end,) = [e for e in events.for_execution(execution["executionArn"]) if e["status"] != "STARTED"]
    assert "deckhand's lifecycle hook failed the deployment at POST_PRODUCTION_TRAFFIC_SHIFT: CloudWatch alarm in ALARM" \
        in end["reason"], end["reason"]


def test_a_healthy_push_passes_every_stage_of_deckhands_hook_and_bakes_inside_ecs(aws: Aws, events, deckhand,
                                                                                  localcloud) -> None:
    watched = alarm(aws)
    service = hooked(deckhand, aws, "LINEAR", watched)
    function = localcloud.stack_outputs["HookFunctionArn"]
    watcher = HookWatcher(aws, service.cluster, function)
    try:
        digest = aws.push(service.repository, "main")
        execution = aws.finish(aws.execution_for_push(digest))
    finally:
        seen = watcher.stop()
    assert execution["status"] == "SUCCEEDED", execution
    assert events.statuses(execution["executionArn"]) == ["STARTED", "SUCCEEDED"]
    assert aws.running_images(service.cluster, "api")["web"] == aws.pinned(service.repository, digest)
    newest = service_deployments(aws, service.cluster)[0]
    assert newest["status"] == "SUCCESSFUL", newest
    # Sampled every 0.3 s: a stage the hook passes at its first call may be missed, the bake not.
    stages = {stage for stage, _ in seen}
    assert stages & {"POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"}, seen
    assert ("POST_PRODUCTION_TRAFFIC_SHIFT", "IN_PROGRESS") in seen, f"deckhand's bake ran inside ECS: {seen}"
    # The bake ran in the hook: the service execution did not bake again after ECS finished.
    entered = [e["stateEnteredEventDetails"]["name"] for e in aws.history(execution["executionArn"])
               if "stateEnteredEventDetails" in e]
    assert "Wait for ECS events" in entered or "Check" in " ".join(entered), entered
    assert "Bake" not in entered, f"baked twice: {entered}"


def test_track_refuses_the_hook_on_a_rolling_service_and_untrack_removes_it(aws: Aws, deckhand, localcloud) -> None:
    watched = alarm(aws)
    service = hooked(deckhand, aws, "BLUE_GREEN", watched)
    function = localcloud.stack_outputs["HookFunctionArn"]

    def hooks() -> list[dict]:
        configuration = aws.describe(service.cluster, "api").get("deploymentConfiguration") or {}
        return [h for h in configuration.get("lifecycleHooks") or [] if h["hookTargetArn"] == function]

    assert [sorted(h["lifecycleStages"]) for h in hooks()] == [
        sorted(["POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"])]
    assert hooks()[0]["roleArn"] == localcloud.stack_outputs["HookRoleArn"]
    deployments = len(service_deployments(aws, service.cluster))
    done = deckhand("untrack", service.cluster, "api")
    assert done.returncode == 0 and "deckhand lifecycle hook removed" in done.stdout, done.stdout + done.stderr
    wait_until("the hook gone", lambda: not hooks(), timeout=30)
    assert len(service_deployments(aws, service.cluster)) == deployments, "changing hooks starts no deployment"
    rolling = api_service(aws, verified=False, settled=True)
    refused = deckhand("track", rolling.cluster, "api", f"web={rolling.repository}:main", "--hook")
    assert refused.returncode != 0 and "lifecycle hooks run in ECS-native" in refused.stderr, refused.stdout + refused.stderr
