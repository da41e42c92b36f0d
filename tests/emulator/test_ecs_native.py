"""ECS-native blue/green, linear and canary deployments in the local cloud (ecs_native.py and the
modules it uses: ecs_native_rules, ecs_traffic, ecs_hooks, ecs_service_deployments), each behaviour
shown through the public AWS APIs, boto3 against moto in this process, like test_ecs_sim.py.

Time: ECS's own waits (bakes, step bakes, hook callBackDelay, hook timeouts) are scaled by
``ecs_native.WAIT_SCALE``; these tests set it to ``SCALE`` (one ECS minute = 0.6 s, a 30 s
callBackDelay = 0.3 s). Task timings are the simulator's usual ones.

Lifecycle hooks are invoked through the simulator's ``invoke_function``; here a scripted Python
stand-in (``Hooks``) answers in place of Lambda and records every event. The hook's role is
evaluated for real (moto's IAM, iam.py). That the local cloud wires ``invoke_function`` to its Lambda
runtime is shown by the last test, which runs against the whole local cloud with a fake function.

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
        for balancer in self.elb.describe_load_balancers()["LoadBalancers"]:
            for listener in self.elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]:
                actions = listener["DefaultActions"]
                if actions and actions[0].get("TargetGroupArn") == self.target_group:
                    return listener["ListenerArn"]
        raise AssertionError("no listener for the world's target group")

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
