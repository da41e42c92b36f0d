"""ECS-native blue/green, linear and canary deployments in the local cloud (ecs_native.py and the
modules it uses: ecs_native_rules, ecs_traffic, ecs_hooks, ecs_service_deployments), each behaviour
shown through the public AWS APIs, boto3 against moto in this process, like test_ecs_sim.py.

Time: ECS's own waits (bakes, step bakes, hook callBackDelay, hook timeouts) are scaled by
``ecs_native.WAIT_SCALE``; these tests set it to ``SCALE`` (one ECS minute = 0.6 s, a 30 s
callBackDelay = 0.3 s). Task timings are the simulator's usual ones.

Lifecycle hooks are invoked through the simulator's ``invoke_function``; here a scripted Python
stand-in (``Hooks``) answers in place of Lambda and records every event. The hook's role is
evaluated for real (moto's IAM, iam.py). That the local cloud wires ``invoke_function`` to its Lambda
runtime is shown by test_ecs_native_cloud.py, against the whole local cloud with a fake function.

Run: .venv/bin/python -m pytest tests/emulator/test_ecs_native.py -q
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the ECS simulator's fixtures

from control import control  # noqa: E402
from test_ecs_sim import (  # noqa: E402,F401 - fixtures are used by name
    ACCOUNT,
    CONTAINER_PORT,
    REGION,
    World,
    endpoint,
    sim,
    wait_until,
    world,
)
from localcloud import ecs_native  # noqa: E402

pytestmark = pytest.mark.timeout(90)

SCALE = 0.01  # ECS minute → 0.6 s of the test's clock (ecs_native.WAIT_SCALE)
LAMBDA_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
ALL_HOOK_STAGES = [
    "RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT",
]


@pytest.fixture(autouse=True)
def fast_waits(monkeypatch):
    monkeypatch.setattr(ecs_native, "WAIT_SCALE", SCALE)


# ------------------------------------------------------------------------------------------
# Lifecycle hook functions: a scripted stand-in for Lambda
# ------------------------------------------------------------------------------------------


class Hooks:
    """Answers hook invocations as scripted per function name, records each (time, event, what
    the production and test listener rules forwarded at that moment)."""

    def __init__(self, world: "NativeWorld") -> None:
        self.world = world
        self.calls: list[dict[str, Any]] = []
        self.scripts: dict[str, Callable[[dict[str, Any], int], Any]] = {}
        self._lock = threading.Lock()

    def function(self, name: str, answer: Callable[[dict[str, Any], int], Any] | dict | list) -> str:
        """Registers function `name`; `answer` is a fixed answer, a list (one per call, the last
        repeating) or a callable (event, call number) -> answer. Answers that are exceptions are
        raised (Invoke fails); ("error", payload) answers a function error."""
        if isinstance(answer, list):
            answers = list(answer)
            self.scripts[name] = lambda event, n: answers[min(n, len(answers) - 1)]
        elif callable(answer):
            self.scripts[name] = answer
        else:
            self.scripts[name] = lambda event, n: answer
        return LAMBDA_ARN + name

    def __call__(self, function_arn: str, payload: bytes) -> tuple[bytes, str | None]:
        name = function_arn.split(":")[6]
        event = json.loads(payload)
        with self._lock:
            number = sum(1 for c in self.calls if c["function"] == name)
            self.calls.append({
                "function": name, "at": time.monotonic(), "event": event,
                "production": self.world.weights(self.world.production_rule),
                "test": self.world.weights(self.world.test_rule),
            })
        answer = self.scripts[name](event, number)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, tuple) and answer[0] == "error":
            return json.dumps(answer[1]).encode(), "Unhandled"
        return json.dumps(answer).encode(), None

    def of(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self.calls if c["function"] == name]

    def stages(self, name: str) -> list[str]:
        return [c["event"]["lifecycleStage"] for c in self.of(name)]


SUCCEEDED = {"hookStatus": "SUCCEEDED"}
FAILED = {"hookStatus": "FAILED"}


# ------------------------------------------------------------------------------------------
# A world with two target groups and the production and test listener rules
# ------------------------------------------------------------------------------------------


class NativeWorld(World):
    """test_ecs_sim's World plus what blue/green needs ("Application Load Balancer resources for
    blue/green, linear, and canary deployments"): an alternate target group, a production listener
    rule and a test listener rule (header X-Environment: test) on the listener, both forwarding
    to the primary target group, and the role ECS uses."""

    def __init__(self, endpoint: str, sim: Any) -> None:
        super().__init__(endpoint, sim)
        self.iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
        self.cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=REGION)
        suffix = uuid.uuid4().hex[:8]
        self.alternate_group = self.elb.create_target_group(
            Name=f"alt-{suffix}", Protocol="HTTP", Port=CONTAINER_PORT, VpcId=self.vpc, TargetType="ip",
            HealthCheckPath="/health",
        )["TargetGroups"][0]["TargetGroupArn"]
        listener = self._listener()
        forward = [{"Type": "forward", "TargetGroupArn": self.target_group}]
        self.production_rule = self.elb.create_rule(
            ListenerArn=listener, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/*"]}], Actions=forward,
        )["Rules"][0]["RuleArn"]
        self.test_rule = self.elb.create_rule(
            ListenerArn=listener, Priority=5,
            Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Environment", "Values": ["test"]}}],
            Actions=forward,
        )["Rules"][0]["RuleArn"]
        self.infrastructure_role = self.role(f"ecs-infra-{suffix}", [])
        self.hook_role = self.role(f"ecs-hooks-{suffix}", [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                                            "Resource": "arn:aws:lambda:*:*:function:*"}])

    def _listener(self) -> str:
        # The world's own (test_ecs_sim.World): a busy account lists more balancers than one page.
        return self.listener

    def role(self, name: str, statements: list[dict[str, Any]], trusted: str = "ecs.amazonaws.com") -> str:
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": trusted}, "Action": "sts:AssumeRole"}],
        }))["Role"]["Arn"]
        if statements:
            self.iam.put_role_policy(RoleName=name, PolicyName="hooks", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": statements}))
        return arn

    def load_balancers(self, test_rule: bool = True, **advanced: Any) -> list[dict[str, Any]]:
        config = {
            "alternateTargetGroupArn": self.alternate_group,
            "productionListenerRule": self.production_rule,
            "roleArn": self.infrastructure_role,
        }
        if test_rule:
            config["testListenerRule"] = self.test_rule
        config.update(advanced)
        return [{"targetGroupArn": self.target_group, "containerName": "web", "containerPort": CONTAINER_PORT,
                 "advancedConfiguration": config}]

    def hook(self, function_arn: str, *stages: str, role: str | None = None, **extra: Any) -> dict[str, Any]:
        return {"hookTargetArn": function_arn, "roleArn": role or self.hook_role, "lifecycleStages": list(stages), **extra}

    def create_native(self, task_definition: str, strategy: str = "BLUE_GREEN", desired: int = 2,
                      bake: int | None = 0, hooks: list[dict] | None = None, test_rule: bool = True,
                      **configuration: Any) -> dict[str, Any]:
        config: dict[str, Any] = {"strategy": strategy, **configuration}
        if bake is not None:
            config["bakeTimeInMinutes"] = bake
        if hooks:
            config["lifecycleHooks"] = hooks
        service = self.ecs.create_service(
            cluster=self.cluster, serviceName="web", taskDefinition=task_definition, desiredCount=desired,
            launchType="FARGATE", deploymentConfiguration=config, loadBalancers=self.load_balancers(test_rule),
            networkConfiguration={"awsvpcConfiguration": {"subnets": self.subnets, "securityGroups": [self.security_group]}},
        )["service"]
        self.services.append("web")
        return service

    # ----- observing ----------------------------------------------------------------------------

    def weights(self, rule_arn: str) -> dict[str, int]:
        """{"primary"|"alternate": weight} of what the rule forwards to."""
        [rule] = self.elb.describe_rules(RuleArns=[rule_arn])["Rules"]
        names = {self.target_group: "primary", self.alternate_group: "alternate"}
        found: dict[str, int] = {}
        for action in rule["Actions"]:
            if action.get("ForwardConfig"):
                for group in action["ForwardConfig"]["TargetGroups"]:
                    found[names.get(group["TargetGroupArn"], group["TargetGroupArn"])] = group.get("Weight", 1)
            elif action.get("TargetGroupArn"):
                found[names.get(action["TargetGroupArn"], action["TargetGroupArn"])] = 1
        return found

    def group_targets(self, group: str) -> dict[str, str]:
        arn = self.target_group if group == "primary" else self.alternate_group
        described = self.elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in described}

    def deployments(self, name: str = "web", **filters: Any) -> list[dict[str, Any]]:
        briefs = self.ecs.list_service_deployments(cluster=self.cluster, service=name, **filters)["serviceDeployments"]
        if not briefs:
            return []
        return self.ecs.describe_service_deployments(
            serviceDeploymentArns=[b["serviceDeploymentArn"] for b in briefs])["serviceDeployments"]

    def latest(self, name: str = "web") -> dict[str, Any]:
        return self.deployments(name)[0]

    def wait_status(self, *statuses: str, name: str = "web", timeout: float = 40, arn: str | None = None) -> dict[str, Any]:
        def reached():
            described = (
                self.ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]
                if arn else self.latest(name)
            )
            return described if described["status"] in statuses else None

        return wait_until(f"a service deployment {'/'.join(statuses)}", reached, timeout)

    def wait_stage(self, stage: str, timeout: float = 30) -> dict[str, Any]:
        return wait_until(f"lifecycle stage {stage}", lambda: (d := self.latest()).get("lifecycleStage") == stage and d, timeout)

    def update(self, **kwargs: Any) -> dict[str, Any]:
        return self.ecs.update_service(cluster=self.cluster, service="web", **kwargs)["service"]


@pytest.fixture
def native(endpoint, sim):
    w = NativeWorld(endpoint, sim)
    hooks = Hooks(w)
    sim.simulator.invoke_function = hooks
    yield w, hooks
    w.close()


def deployed(world: NativeWorld, image: str = "v1", health: str | None = None, ready: float = 0.3) -> str:
    return world.task_definition(world.push(image, health=health, ready=ready))


def first_deployment(world: NativeWorld, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """A native service whose first deployment succeeded; (task definition, its deployment)."""
    td = deployed(world)
    world.create_native(td, **kwargs)
    return td, world.wait_status("SUCCESSFUL")


# ------------------------------------------------------------------------------------------
# 1. Blue/green: stages, traffic, target groups alternating
# ------------------------------------------------------------------------------------------


def test_blue_green_runs_every_stage_shifts_at_once_and_alternates_target_groups(native, sim):
    world, hooks = native
    recorder = hooks.function("recorder", SUCCEEDED)
    td1, first = first_deployment(world, hooks=[world.hook(recorder, *ALL_HOOK_STAGES)])
    # The first deployment has no blue: green went into the group production did not forward to,
    # and production moved to it.
    assert world.weights(world.production_rule) == {"alternate": 100, "primary": 0}
    assert world.weights(world.test_rule) == {"alternate": 100, "primary": 0}
    assert set(world.group_targets("alternate").values()) == {"healthy"} and len(world.group_targets("alternate")) == 2
    assert world.group_targets("primary") == {}
    assert first["sourceServiceRevisions"] == []
    assert "RECONCILE_SERVICE" not in hooks.stages("recorder")

    calls_before = len(hooks.of("recorder"))
    td2 = deployed(world, "v2")
    world.update(taskDefinition=td2)
    second = world.wait_status("SUCCESSFUL")
    assert second["serviceDeploymentArn"] != first["serviceDeploymentArn"]
    stages = [c["event"]["lifecycleStage"] for c in hooks.of("recorder")[calls_before:]]
    assert stages == [
        "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
        "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT",
    ]
    # The second deployment went the other way round: green into the primary group.
    assert world.weights(world.production_rule) == {"primary": 100, "alternate": 0}
    assert world.weights(world.test_rule) == {"primary": 100, "alternate": 0}
    assert world.group_targets("alternate") == {}  # blue deregistered at CLEAN_UP
    assert set(world.group_targets("primary").values()) == {"healthy"}

    # What each stage's hook saw: production still on blue until the shift, all at once.
    calls = {c["event"]["lifecycleStage"]: c for c in hooks.of("recorder")[calls_before:]}
    green, blue = second["targetServiceRevision"]["arn"], second["sourceServiceRevisions"][0]["arn"]
    assert calls["POST_SCALE_UP"]["production"] == {"alternate": 100, "primary": 0}
    assert calls["TEST_TRAFFIC_SHIFT"]["event"]["executionDetails"]["testTrafficWeights"] == {green: 100, blue: 0}
    assert calls["TEST_TRAFFIC_SHIFT"]["test"] == {"primary": 100, "alternate": 0}
    assert calls["PRE_PRODUCTION_TRAFFIC_SHIFT"]["event"]["executionDetails"]["productionTrafficWeights"] == {green: 0, blue: 100}
    assert calls["PRODUCTION_TRAFFIC_SHIFT"]["event"]["executionDetails"]["productionTrafficWeights"] == {green: 100, blue: 0}
    assert calls["PRODUCTION_TRAFFIC_SHIFT"]["production"] == {"primary": 100, "alternate": 0}
    event = calls["POST_SCALE_UP"]["event"]
    assert set(event) == {"executionId", "lifecycleStage", "resourceArn", "executionDetails"}
    assert event["resourceArn"] == second["serviceDeploymentArn"]
    assert event["executionDetails"] == {
        "serviceArn": second["serviceArn"], "targetServiceRevisionArn": green,
        "testTrafficWeights": {}, "productionTrafficWeights": {},
    }

    assert second["lifecycleStage"] == "CLEAN_UP"
    assert second["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100.0
    assert second["sourceServiceRevisions"][0]["requestedProductionTrafficWeight"] == 0.0
    service = world.service()
    [deployment] = service["deployments"]
    assert (deployment["taskDefinition"], deployment["rolloutState"]) == (td2, "COMPLETED")
    assert service["currentServiceDeployment"] == second["serviceDeploymentArn"]
    assert [r["arn"] for r in service["currentServiceRevisions"]] == [green]
    names = [json.loads(e["Detail"])["eventName"] for e in sim.events if e["DetailType"] == "ECS Deployment State Change"]
    assert names == ["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_COMPLETED"] * 2


# ------------------------------------------------------------------------------------------
# 2. Linear and canary: production weights step by step, step bakes between
# ------------------------------------------------------------------------------------------


def shifts_of(hooks: Hooks, name: str, since: int = 0) -> list[dict[str, Any]]:
    return [c for c in hooks.of(name)[since:] if c["event"]["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"]


def test_linear_shifts_production_in_steps_with_a_step_bake_between(native):
    world, hooks = native
    watcher = hooks.function("watcher", SUCCEEDED)
    td1, _ = first_deployment(world, strategy="LINEAR", linearConfiguration={"stepPercent": 25.0, "stepBakeTimeInMinutes": 1},
                              hooks=[world.hook(watcher, "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")])
    before = len(hooks.of("watcher"))
    world.update(taskDefinition=deployed(world, "v2"))
    done = world.wait_status("SUCCESSFUL")

    shifts = shifts_of(hooks, "watcher", before)
    # The listener rule as each PRODUCTION_TRAFFIC_SHIFT hook saw it: 25 % steps into the primary
    # group (this second deployment's green).
    assert [c["production"] for c in shifts] == [
        {"primary": 25, "alternate": 75}, {"primary": 50, "alternate": 50},
        {"primary": 75, "alternate": 25}, {"primary": 100, "alternate": 0},
    ]
    green = done["targetServiceRevision"]["arn"]
    assert [c["event"]["executionDetails"]["productionTrafficWeights"][green] for c in shifts] == [25, 50, 75, 100]
    # A PRE_PRODUCTION_TRAFFIC_SHIFT hook before every step, with the weights before it.
    pre = [c for c in hooks.of("watcher")[before:] if c["event"]["lifecycleStage"] == "PRE_PRODUCTION_TRAFFIC_SHIFT"]
    assert [c["event"]["executionDetails"]["productionTrafficWeights"][green] for c in pre] == [0, 25, 50, 75]
    # One step bake (1 minute, scaled) between steps, none after the last.
    gaps = [b["at"] - a["at"] for a, b in zip(shifts, shifts[1:])]
    assert all(gap >= 60 * SCALE * 0.95 for gap in gaps), gaps


def test_linear_step_with_a_tenth_is_written_as_weights_out_of_a_thousand(native):
    # Whole percentages are weights out of 100; 37.5 % needs a thousand (ALB weights are integers).
    world, hooks = native
    watcher = hooks.function("watcher", SUCCEEDED)
    first_deployment(world, strategy="LINEAR", linearConfiguration={"stepPercent": 37.5, "stepBakeTimeInMinutes": 0},
                     hooks=[world.hook(watcher, "PRODUCTION_TRAFFIC_SHIFT")])
    assert [c["production"] for c in shifts_of(hooks, "watcher")] == [
        {"alternate": 375, "primary": 625}, {"alternate": 75, "primary": 25}, {"alternate": 100, "primary": 0},
    ]


def test_canary_shifts_the_canary_percent_bakes_then_shifts_the_rest(native):
    world, hooks = native
    watcher = hooks.function("watcher", SUCCEEDED)
    first_deployment(world, strategy="CANARY", canaryConfiguration={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2},
                     hooks=[world.hook(watcher, "PRODUCTION_TRAFFIC_SHIFT")])
    before = len(hooks.of("watcher"))
    world.update(taskDefinition=deployed(world, "v2"))
    world.wait_stage("PRODUCTION_TRAFFIC_SHIFT")
    # During the canary bake: 10 % on green, the service deployment still shifting.
    wait_until("the canary step", lambda: world.weights(world.production_rule) == {"primary": 10, "alternate": 90})
    assert world.latest()["status"] == "IN_PROGRESS"
    world.wait_status("SUCCESSFUL")
    shifts = shifts_of(hooks, "watcher", before)
    assert [c["production"] for c in shifts] == [{"primary": 10, "alternate": 90}, {"primary": 100, "alternate": 0}]
    assert shifts[1]["at"] - shifts[0]["at"] >= 2 * 60 * SCALE * 0.95


def test_bake_time_keeps_blue_running_after_the_shift(native, monkeypatch):
    world, hooks = native
    td1, _ = first_deployment(world, bake=1)
    blue_targets = world.group_targets("alternate")
    world.update(taskDefinition=deployed(world, "v2"))
    world.wait_stage("BAKE_TIME")
    # Production is on green, blue still registered and running until the bake is over.
    assert world.weights(world.production_rule) == {"primary": 100, "alternate": 0}
    assert world.group_targets("alternate") == blue_targets
    assert len(world.service()["deployments"]) == 2
    world.wait_status("SUCCESSFUL")
    assert world.group_targets("alternate") == {}


# ------------------------------------------------------------------------------------------
# 3. Lifecycle hooks: answers, delays, details, roles
# ------------------------------------------------------------------------------------------


def test_a_hook_answering_in_progress_is_invoked_again_after_its_callback_delay(native):
    world, hooks = native
    poller = hooks.function("poller", [
        {"hookStatus": "IN_PROGRESS", "callBackDelay": 60, "hookDetails": {"attempt": 1}},
        {"hookStatus": "IN_PROGRESS", "hookDetails": {"attempt": 2}},  # default delay: 30 s
        SUCCEEDED,
    ])
    first_deployment(world, hooks=[world.hook(poller, "POST_SCALE_UP", hookDetails={"bucket": "approvals"})])
    calls = hooks.of("poller")
    assert [c["event"]["lifecycleStage"] for c in calls] == ["POST_SCALE_UP"] * 3
    # The same hook execution each time; configured hookDetails, then merged with the answers'.
    assert len({c["event"]["executionId"] for c in calls}) == 1
    assert [c["event"]["hookDetails"] for c in calls] == [
        {"bucket": "approvals"}, {"bucket": "approvals", "attempt": 1}, {"bucket": "approvals", "attempt": 2},
    ]
    assert calls[1]["at"] - calls[0]["at"] >= 60 * SCALE * 0.95
    assert calls[2]["at"] - calls[1]["at"] >= 30 * SCALE * 0.95


def test_a_hook_in_progress_shows_in_lifecycle_hook_details(native):
    world, hooks = native
    slow = hooks.function("slow", {"hookStatus": "IN_PROGRESS", "callBackDelay": 3000})
    world.create_native(deployed(world), hooks=[world.hook(slow, "PRE_SCALE_UP")])
    wait_until("the first call", lambda: hooks.of("slow"))
    described = world.latest()
    assert (described["status"], described["lifecycleStage"]) == ("IN_PROGRESS", "PRE_SCALE_UP")
    [detail] = described["lifecycleHookDetails"]
    assert detail["targetType"] == "AWS_LAMBDA" and detail["targetArn"] == slow
    assert detail["status"] == "IN_PROGRESS" and detail["timeoutAction"] == "ROLLBACK"
    assert detail["hookId"] == hooks.of("slow")[0]["event"]["executionId"]
    # Nothing is launched while PRE_SCALE_UP waits.
    assert world.tasks() == []


@pytest.mark.parametrize("answer", [
    FAILED,
    ("error", {"errorType": "RuntimeError", "errorMessage": "boom"}),  # the function fails
    {"status": "SUCCEEDED"},  # no valid hookStatus
    RuntimeError("ResourceNotFoundException: Function not found"),  # Invoke itself fails
])
def test_a_hook_that_fails_in_any_way_rolls_the_deployment_back(native, answer):
    world, hooks = native
    behaviour = {"answer": SUCCEEDED}
    gate = hooks.function("gate", lambda event, n: behaviour["answer"])
    first_deployment(world, hooks=[world.hook(gate, "POST_SCALE_UP")])
    behaviour["answer"] = answer
    world.update(taskDefinition=deployed(world, "v2"))
    rolled = world.wait_status("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
    assert rolled["status"] == "ROLLBACK_SUCCESSFUL"
    assert rolled["lifecycleHookDetails"] == [] or rolled["lifecycleHookDetails"][0]["status"] == "FAILED"


def test_a_failed_hook_in_the_first_deployment_has_nothing_to_roll_back_to(native):
    world, hooks = native
    gate = hooks.function("gate", FAILED)
    world.create_native(deployed(world), hooks=[world.hook(gate, "POST_SCALE_UP")])
    failed = world.wait_status("ROLLBACK_FAILED", "ROLLBACK_SUCCESSFUL")
    assert failed["status"] == "ROLLBACK_FAILED"
    assert failed["statusReason"] == "There is no previous service revision to roll back to."


def test_a_failed_hook_after_the_test_shift_rolls_back_to_blue(native, sim):
    world, hooks = native
    gate = hooks.function("gate", lambda event, n: FAILED if event["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT" and n >= 3 else SUCCEEDED)
    td1, first = first_deployment(world, hooks=[world.hook(gate, "POST_TEST_TRAFFIC_SHIFT", "TEST_TRAFFIC_SHIFT")])
    blue_targets = world.group_targets("alternate")
    before = len(hooks.of("gate"))
    td2 = deployed(world, "v2")
    world.update(taskDefinition=td2)
    rolled = world.wait_status("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
    assert rolled["status"] == "ROLLBACK_SUCCESSFUL"
    assert rolled["rollback"]["reason"] == "deployment failed: hook execution failure(s) detected."
    assert rolled["rollback"]["serviceRevisionArn"] == first["targetServiceRevision"]["arn"]
    # The TEST_TRAFFIC_SHIFT hook ran again during the rollback, with test traffic going back.
    stages = hooks.stages("gate")[before:]
    assert stages == ["TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT", "TEST_TRAFFIC_SHIFT"]
    blue, green = first["targetServiceRevision"]["arn"], rolled["targetServiceRevision"]["arn"]
    assert hooks.of("gate")[-1]["event"]["executionDetails"]["testTrafficWeights"] == {green: 0, blue: 100}
    # Production never left blue; test traffic is back on it; green is gone.
    assert world.weights(world.production_rule) == {"alternate": 100, "primary": 0}
    assert world.weights(world.test_rule) == {"alternate": 100, "primary": 0}
    wait_until("green deregistered", lambda: world.group_targets("primary") == {})
    assert world.group_targets("alternate") == blue_targets
    [deployment] = world.service()["deployments"]
    assert deployment["taskDefinition"] == td1 and deployment["rolloutState"] == "COMPLETED"


def test_a_failed_hook_during_a_linear_shift_puts_production_back_on_blue(native, sim):
    world, hooks = native
    shifter = hooks.function("shifter", lambda event, n: FAILED if n == 3 else SUCCEEDED)
    first_deployment(world, strategy="LINEAR", linearConfiguration={"stepPercent": 50.0, "stepBakeTimeInMinutes": 0},
                     hooks=[world.hook(shifter, "PRODUCTION_TRAFFIC_SHIFT")])
    assert len(hooks.of("shifter")) == 2  # 50, 100
    world.update(taskDefinition=deployed(world, "v2"))
    rolled = world.wait_status("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
    assert rolled["status"] == "ROLLBACK_SUCCESSFUL"
    calls = hooks.of("shifter")[2:]
    # 50 %, then 100 % answered FAILED, then the rollback's PRODUCTION_TRAFFIC_SHIFT back to blue.
    assert [c["production"] for c in calls] == [
        {"primary": 50, "alternate": 50}, {"primary": 100, "alternate": 0}, {"primary": 0, "alternate": 100},
    ]
    green = rolled["targetServiceRevision"]["arn"]
    assert calls[-1]["event"]["executionDetails"]["productionTrafficWeights"][green] == 0
    assert world.weights(world.production_rule) == {"primary": 0, "alternate": 100}
    names = [json.loads(e["Detail"]) for e in sim.events if e["DetailType"] == "ECS Deployment State Change"]
    # The rollback is announced as a deployment of blue; no FAILED event for a hook failure.
    assert [n["eventName"] for n in names[-3:]] == [
        "SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_COMPLETED"]
    assert "rolling back" in names[-2]["reason"]


def test_a_hook_role_that_cannot_invoke_the_function_rolls_back(native):
    world, hooks = native
    gate = hooks.function("gate", SUCCEEDED)
    td1, _ = first_deployment(world, hooks=[world.hook(gate, "POST_SCALE_UP")])
    powerless = world.role(f"powerless-{uuid.uuid4().hex[:6]}", [])
    calls = len(hooks.of("gate"))
    world.update(taskDefinition=deployed(world, "v2"), deploymentConfiguration={
        "lifecycleHooks": [world.hook(gate, "POST_SCALE_UP", role=powerless)]})
    rolled = world.wait_status("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
    assert rolled["status"] == "ROLLBACK_SUCCESSFUL"
    assert len(hooks.of("gate")) == calls  # the function was never called


def test_a_hook_timing_out_takes_its_timeout_action(native):
    world, hooks = native
    stuck = hooks.function("stuck", {"hookStatus": "IN_PROGRESS", "callBackDelay": 10})
    world.create_native(deployed(world), hooks=[world.hook(
        stuck, "POST_SCALE_UP", timeoutConfiguration={"timeoutInMinutes": 1, "action": "CONTINUE"})])
    done = world.wait_status("SUCCESSFUL", "ROLLBACK_FAILED")
    assert done["status"] == "SUCCESSFUL"
    assert len(hooks.of("stuck")) >= 2


def test_a_pause_hook_waits_for_continue_service_deployment(native):
    world, hooks = native
    td1, first = first_deployment(world)
    world.update(taskDefinition=deployed(world, "v2"), deploymentConfiguration={
        "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]})
    paused = world.wait_stage("POST_TEST_TRAFFIC_SHIFT")
    time.sleep(0.5)
    paused = world.latest()
    [detail] = paused["lifecycleHookDetails"]
    assert (paused["status"], detail["status"], detail["targetType"]) == ("IN_PROGRESS", "AWAITING_ACTION", "PAUSE")
    assert "targetArn" not in detail
    with pytest.raises(ClientError) as refused:
        world.ecs.continue_service_deployment(serviceDeploymentArn=paused["serviceDeploymentArn"], hookId="nope")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    world.ecs.continue_service_deployment(serviceDeploymentArn=paused["serviceDeploymentArn"], hookId=detail["hookId"])
    assert world.wait_status("SUCCESSFUL")["serviceDeploymentArn"] == paused["serviceDeploymentArn"]

    world.update(taskDefinition=deployed(world, "v3"))
    paused = world.wait_stage("POST_TEST_TRAFFIC_SHIFT")
    time.sleep(0.3)
    hook_id = world.latest()["lifecycleHookDetails"][0]["hookId"]
    world.ecs.continue_service_deployment(serviceDeploymentArn=paused["serviceDeploymentArn"], hookId=hook_id, action="ROLLBACK")
    assert world.wait_status("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")["status"] == "ROLLBACK_SUCCESSFUL"


# ------------------------------------------------------------------------------------------
# 4. ECS's own rollbacks: circuit breaker, alarms, StopServiceDeployment
# ------------------------------------------------------------------------------------------


def test_the_circuit_breaker_rolls_back_green_tasks_that_fail_health_checks(native, sim):
    world, hooks = native
    td1, first = first_deployment(world, deploymentCircuitBreaker={"enable": True, "rollback": True})
    td2 = world.task_definition(world.push("v2", health="unhealthy", ready=0.3))
    world.update(taskDefinition=td2)
    rolled = world.wait_status("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED", timeout=60)
    assert rolled["status"] == "ROLLBACK_SUCCESSFUL"
    assert rolled["lifecycleStage"] == "CLEAN_UP"
    breaker = rolled["deploymentCircuitBreaker"]
    assert breaker["status"] == "TRIGGERED" and breaker["failureCount"] >= breaker["threshold"] == 3
    assert rolled["rollback"]["reason"] == "ECS deployment circuit breaker: task failed to start."
    # Production never moved; blue serves as before.
    assert world.weights(world.production_rule) == {"alternate": 100, "primary": 0}
    names = [json.loads(e["Detail"])["eventName"] for e in sim.events if e["DetailType"] == "ECS Deployment State Change"]
    assert names[-3:] == ["SERVICE_DEPLOYMENT_FAILED", "SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_COMPLETED"]


def test_the_circuit_breaker_without_rollback_stops_the_deployment(native):
    world, hooks = native
    first_deployment(world, deploymentCircuitBreaker={"enable": True, "rollback": False})
    world.update(taskDefinition=world.task_definition(world.push("v2", health="crash", ready=0.3)))
    stopped = world.wait_status("STOPPED", timeout=60)
    assert stopped["statusReason"] == "ECS deployment circuit breaker: task failed to start."
    assert "stoppedAt" in stopped and "rollback" not in stopped
    assert world.weights(world.production_rule) == {"alternate": 100, "primary": 0}
    primary = world.service()["deployments"][0]
    assert primary["rolloutState"] == "FAILED"


def test_an_alarm_in_alarm_during_the_bake_rolls_back_after_the_shift(native):
    world, hooks = native
    alarm = f"errors-{uuid.uuid4().hex[:6]}"
    world.cloudwatch.put_metric_alarm(AlarmName=alarm, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                                      Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                      ComparisonOperator="GreaterThanOrEqualToThreshold")
    alarms = {"alarmNames": [alarm], "enable": True, "rollback": True}
    first_deployment(world, alarms=alarms)
    world.update(taskDefinition=deployed(world, "v2"), deploymentConfiguration={"bakeTimeInMinutes": 30})
    world.wait_stage("BAKE_TIME")
    assert world.weights(world.production_rule) == {"primary": 100, "alternate": 0}
    world.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx")
    rolled = world.wait_status("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
    assert rolled["status"] == "ROLLBACK_SUCCESSFUL"
    assert rolled["alarms"] == {"status": "TRIGGERED", "alarmNames": [alarm], "triggeredAlarmNames": [alarm]}
    assert world.weights(world.production_rule) == {"primary": 0, "alternate": 100}


def test_stop_service_deployment_rolls_back_through_rollback_requested(native):
    world, hooks = native
    td1, first = first_deployment(world)
    world.update(taskDefinition=deployed(world, "v2"), deploymentConfiguration={"bakeTimeInMinutes": 60})
    baking = world.wait_stage("BAKE_TIME")
    arn = baking["serviceDeploymentArn"]
    answer = world.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert answer["serviceDeploymentArn"] == arn
    requested = world.ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]
    assert requested["status"] in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
    rolled = world.wait_status("ROLLBACK_SUCCESSFUL", arn=arn)
    assert rolled["rollback"]["reason"].startswith("Rollback requested by the user")
    assert world.weights(world.production_rule) == {"primary": 0, "alternate": 100}

    # A finished deployment cannot be stopped; ABORT is not a documented stop type.
    with pytest.raises(ClientError) as conflict:
        world.ecs.stop_service_deployment(serviceDeploymentArn=arn)
    assert conflict.value.response["Error"]["Code"] == "ConflictException"
    assert conflict.value.response["resourceIds"] == [arn]
    with pytest.raises(ClientError) as abort:
        world.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ABORT")
    assert abort.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as missing:
        world.ecs.stop_service_deployment(serviceDeploymentArn=arn[:-3] + "zzz")
    assert missing.value.response["Error"]["Code"] == "ServiceDeploymentNotFoundException"


def test_another_update_during_a_deployment_stops_it_and_reconciles(native, sim):
    world, hooks = native
    recorder = hooks.function("recorder", SUCCEEDED)
    td1, first = first_deployment(world, hooks=[world.hook(recorder, "RECONCILE_SERVICE", "PRE_SCALE_UP")])
    world.update(taskDefinition=deployed(world, "v2"), deploymentConfiguration={"bakeTimeInMinutes": 60})
    interrupted = world.wait_stage("BAKE_TIME")
    assert world.weights(world.production_rule) == {"primary": 100, "alternate": 0}
    calls = len(hooks.of("recorder"))
    td3 = deployed(world, "v3")
    world.update(taskDefinition=td3, deploymentConfiguration={"bakeTimeInMinutes": 0})
    stopped = world.ecs.describe_service_deployments(serviceDeploymentArns=[interrupted["serviceDeploymentArn"]])
    assert stopped["serviceDeployments"][0]["status"] == "STOPPED"
    done = world.wait_status("SUCCESSFUL")
    assert hooks.stages("recorder")[calls:] == ["RECONCILE_SERVICE", "PRE_SCALE_UP"]
    # Two revisions were running (v1 blue, v2 with all of production): v2 was kept, v1 stopped,
    # and v3 went into the other group.
    assert len(done["sourceServiceRevisions"]) == 2
    assert world.weights(world.production_rule) == {"alternate": 100, "primary": 0}
    [deployment] = world.service()["deployments"]
    assert deployment["taskDefinition"] == td3
    assert len(world.tasks()) == 2


# ------------------------------------------------------------------------------------------
# 5. What CreateService and UpdateService refuse
# ------------------------------------------------------------------------------------------


def refused(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == "InvalidParameterException", error.value.response
    return error.value.response["Error"]["Message"]


@pytest.mark.parametrize("change", [
    "no advanced configuration",
    "no bake time",
    "step percent below 3",
    "step percent not a tenth",
    "canary percent 0",
    "step bake above a day",
    "linear configuration with blue/green",
    "a stage hooks cannot run at",
    "a pause hook at a traffic shift",
    "a hook target that is not a function",
    "a lambda hook without a role",
    "a rule forwarding elsewhere",
    "the same rule twice",
    "an unknown alternate group",
])
def test_create_service_refuses_what_ecs_refuses(native, change):
    world, hooks = native
    td = deployed(world)
    config: dict[str, Any] = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0}
    lbs = world.load_balancers()
    fn = hooks.function("f", SUCCEEDED)
    if change == "no advanced configuration":
        del lbs[0]["advancedConfiguration"]
    elif change == "no bake time":
        del config["bakeTimeInMinutes"]
    elif change == "step percent below 3":
        config.update(strategy="LINEAR", linearConfiguration={"stepPercent": 2.5})
    elif change == "step percent not a tenth":
        config.update(strategy="LINEAR", linearConfiguration={"stepPercent": 33.33})
    elif change == "canary percent 0":
        config.update(strategy="CANARY", canaryConfiguration={"canaryPercent": 0.0})
    elif change == "step bake above a day":
        config.update(strategy="LINEAR", linearConfiguration={"stepPercent": 10.0, "stepBakeTimeInMinutes": 1441})
    elif change == "linear configuration with blue/green":
        config["linearConfiguration"] = {"stepPercent": 10.0}
    elif change == "a stage hooks cannot run at":
        config["lifecycleHooks"] = [world.hook(fn, "BAKE_TIME")]
    elif change == "a pause hook at a traffic shift":
        config["lifecycleHooks"] = [{"targetType": "PAUSE", "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"]}]
    elif change == "a hook target that is not a function":
        config["lifecycleHooks"] = [world.hook("arn:aws:sns:us-east-1:123456789012:topic", "PRE_SCALE_UP")]
    elif change == "a lambda hook without a role":
        config["lifecycleHooks"] = [{"hookTargetArn": fn, "lifecycleStages": ["PRE_SCALE_UP"]}]
    elif change == "a rule forwarding elsewhere":
        other = world.elb.create_target_group(Name=f"o-{uuid.uuid4().hex[:8]}", Protocol="HTTP", Port=80,
                                              VpcId=world.vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        world.elb.modify_rule(RuleArn=world.test_rule, Actions=[{"Type": "forward", "TargetGroupArn": other}])
    elif change == "the same rule twice":
        lbs[0]["advancedConfiguration"]["testListenerRule"] = world.production_rule
    elif change == "an unknown alternate group":
        lbs[0]["advancedConfiguration"]["alternateTargetGroupArn"] = world.target_group.replace("/tg-", "/gone-")
    refused(lambda: world.ecs.create_service(
        cluster=world.cluster, serviceName="web", taskDefinition=td, desiredCount=1, launchType="FARGATE",
        deploymentConfiguration=config, loadBalancers=lbs,
        networkConfiguration={"awsvpcConfiguration": {"subnets": world.subnets}}))
    assert world.ecs.describe_services(cluster=world.cluster, services=["web"])["services"] == []


def test_update_service_refuses_a_strategy_switch_without_advanced_configuration(native):
    world, hooks = native
    td = deployed(world)
    world.create_service(td, desired=1)  # rolling, one target group
    world.wait_completed(td)
    message = refused(lambda: world.update(deploymentConfiguration={"strategy": "LINEAR", "bakeTimeInMinutes": 0}))
    assert "advancedConfiguration" in message
    # With the alternate group and the rules, the switch is accepted and the next deployment is linear.
    world.update(deploymentConfiguration={"strategy": "LINEAR", "bakeTimeInMinutes": 0,
                                          "linearConfiguration": {"stepPercent": 50.0, "stepBakeTimeInMinutes": 0}},
                 loadBalancers=world.load_balancers(), taskDefinition=deployed(world, "v2"))
    done = world.wait_status("SUCCESSFUL")
    assert done["deploymentConfiguration"]["strategy"] == "LINEAR"
    assert world.weights(world.production_rule) == {"alternate": 100, "primary": 0}


# ------------------------------------------------------------------------------------------
# 6. The API: ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions,
#    DescribeServices, as boto3's model has them
# ------------------------------------------------------------------------------------------


def test_service_deployments_and_revisions_are_listed_and_described(native):
    world, hooks = native
    gate = hooks.function("gate", SUCCEEDED)
    hook = world.hook(gate, "POST_SCALE_UP", hookDetails={"suite": "smoke"})
    td1, first = first_deployment(world, hooks=[hook], deploymentCircuitBreaker={"enable": True, "rollback": True})
    td2 = deployed(world, "v2")
    world.update(taskDefinition=td2)
    second = world.wait_status("SUCCESSFUL")

    # DescribeServices echoes the strategy, the hooks and the advanced configuration.
    service = world.service()
    config = service["deploymentConfiguration"]
    assert (config["strategy"], config["bakeTimeInMinutes"]) == ("BLUE_GREEN", 0)
    assert config["lifecycleHooks"] == [hook]
    assert service["loadBalancers"] == world.load_balancers()
    assert service["currentServiceDeployment"] == second["serviceDeploymentArn"]
    [current] = service["currentServiceRevisions"]
    assert current == {"arn": second["targetServiceRevision"]["arn"], "requestedTaskCount": 2,
                       "runningTaskCount": 2, "pendingTaskCount": 0}

    # ListServiceDeployments: newest first, with status and createdAt filters and pages.
    listed = world.ecs.list_service_deployments(cluster=world.cluster, service="web")["serviceDeployments"]
    assert [b["serviceDeploymentArn"] for b in listed] == [second["serviceDeploymentArn"], first["serviceDeploymentArn"]]
    assert set(listed[0]) == {"serviceDeploymentArn", "serviceArn", "clusterArn", "startedAt", "createdAt",
                              "finishedAt", "targetServiceRevisionArn", "status"} | ({"statusReason"} & set(listed[0]))
    assert listed[0]["targetServiceRevisionArn"] == second["targetServiceRevision"]["arn"]
    page = world.ecs.list_service_deployments(cluster=world.cluster, service=service["serviceArn"], maxResults=1)
    assert len(page["serviceDeployments"]) == 1 and page["nextToken"]
    rest = world.ecs.list_service_deployments(cluster=world.cluster, service="web", maxResults=1, nextToken=page["nextToken"])
    assert rest["serviceDeployments"][0]["serviceDeploymentArn"] == first["serviceDeploymentArn"] and "nextToken" not in rest
    assert world.ecs.list_service_deployments(cluster=world.cluster, service="web", status=["ROLLBACK_SUCCESSFUL"])[
        "serviceDeployments"] == []
    after = world.ecs.list_service_deployments(cluster=world.cluster, service="web",
                                               createdAt={"after": second["createdAt"]})["serviceDeployments"]
    assert [b["serviceDeploymentArn"] for b in after] == [second["serviceDeploymentArn"]]
    with pytest.raises(ClientError) as too_many:
        world.ecs.list_service_deployments(cluster=world.cluster, service="web", maxResults=101)
    assert too_many.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as no_service:
        world.ecs.list_service_deployments(cluster=world.cluster, service="nope")
    assert no_service.value.response["Error"]["Code"] == "ServiceNotFoundException"

    # DescribeServiceDeployments: the whole record; unknown ARNs are failures, MISSING.
    assert second["serviceDeploymentArn"].startswith(
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{world.cluster}/web/")
    assert len(second["serviceDeploymentArn"].split("/")[-1]) == 21
    assert second["clusterArn"].endswith(f":cluster/{world.cluster}")
    assert second["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    assert second["deploymentCircuitBreaker"] == {"status": "MONITORING_COMPLETE", "failureCount": 0, "threshold": 3}
    assert second["alarms"] == {"status": "DISABLED", "alarmNames": [], "triggeredAlarmNames": []}
    assert second["startedAt"] <= second["finishedAt"] and "stoppedAt" not in second
    [source] = second["sourceServiceRevisions"]
    assert source["arn"] == first["targetServiceRevision"]["arn"] and source["requestedTaskCount"] == 0
    assert second["targetServiceRevision"]["requestedTaskCount"] == 2
    assert second["lifecycleHookDetails"][0]["status"] == "SUCCEEDED"
    missing = second["serviceDeploymentArn"][:-4] + "AAAA"
    described = world.ecs.describe_service_deployments(serviceDeploymentArns=[second["serviceDeploymentArn"], missing])
    assert len(described["serviceDeployments"]) == 1
    assert described["failures"] == [{"arn": missing, "reason": "MISSING"}]
    with pytest.raises(ClientError) as over:
        world.ecs.describe_service_deployments(serviceDeploymentArns=[missing] * 21)
    assert over.value.response["Error"]["Code"] == "InvalidParameterException"

    # DescribeServiceRevisions: what each revision runs and which target group serves it.
    revisions = world.ecs.describe_service_revisions(serviceRevisionArns=[
        second["targetServiceRevision"]["arn"], first["targetServiceRevision"]["arn"], missing.replace("deployment", "revision")])
    green, blue = revisions["serviceRevisions"]
    assert revisions["failures"][0]["reason"] == "MISSING"
    assert green["taskDefinition"] == td2 and blue["taskDefinition"] == td1
    assert green["serviceRevisionArn"].split("/")[-1] == service["deployments"][0]["id"].split("/")[-1]
    assert green["resolvedConfiguration"] == {"loadBalancers": [
        {"targetGroupArn": world.target_group, "productionListenerRule": world.production_rule}]}
    assert blue["resolvedConfiguration"]["loadBalancers"][0]["targetGroupArn"] == world.alternate_group
    assert green["loadBalancers"] == world.load_balancers()
    [image] = green["containerImages"]
    assert image["containerName"] == "web" and image["imageDigest"].startswith("sha256:")
    assert green["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == world.subnets
    assert (green["launchType"], green["platformVersion"]) == ("FARGATE", "1.4.0")


def test_rolling_updates_have_service_deployments_too(world, sim):
    """Every ECS deployment is a service deployment: the rolling simulator's as well."""
    td1 = world.task_definition(world.push("v1", ready=0.3))
    world.create_service(td1, desired=2, deployment_configuration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    world.wait_completed(td1)
    td2 = world.task_definition(world.push("v2", health="unhealthy", ready=0.3))
    world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)
    world.wait_completed(td1, timeout=60)

    def listed():
        briefs = world.ecs.list_service_deployments(cluster=world.cluster, service="web")["serviceDeployments"]
        return world.ecs.describe_service_deployments(
            serviceDeploymentArns=[b["serviceDeploymentArn"] for b in briefs])["serviceDeployments"]

    failed, first = wait_until("the rollback recorded", lambda: (d := listed())[0]["status"] == "ROLLBACK_SUCCESSFUL" and d)
    assert first["status"] == "SUCCESSFUL" and first["sourceServiceRevisions"] == []
    assert failed["rollback"]["serviceRevisionArn"] == first["targetServiceRevision"]["arn"]
    assert failed["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert "lifecycleStage" not in failed and "lifecycleHookDetails" not in failed

    # StopServiceDeployment(ROLLBACK) of a rolling update goes back to the completed revision.
    td3 = world.task_definition(world.push("v3", ready=5))
    world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td3)
    ongoing = listed()[0]
    assert ongoing["status"] == "IN_PROGRESS"
    world.ecs.stop_service_deployment(serviceDeploymentArn=ongoing["serviceDeploymentArn"])
    world.wait_completed(td1, timeout=60)
    assert wait_until("ROLLBACK_SUCCESSFUL", lambda: listed()[0]["status"] == "ROLLBACK_SUCCESSFUL")

    # A superseded rolling update is STOPPED.
    world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td3)
    world.ecs.update_service(cluster=world.cluster, service="web", forceNewDeployment=True)
    newest, superseded = listed()[:2]
    assert (newest["status"], superseded["status"]) == ("IN_PROGRESS", "STOPPED")
