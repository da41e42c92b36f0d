"""Issue 23, item 1: services on ECS-native BLUE_GREEN, LINEAR and CANARY deployments, driven and
judged by deckhand. deckhand registers the revision and updates the service as for a rolling
update; ECS then shifts traffic between the blue and green target groups and bakes
(tests/localcloud/ecs_native.py). deckhand follows ECS's service deployment, judges the new tasks
in whichever target group of the pair they are registered in, and rolls back through ECS
(StopServiceDeployment, ROLLBACK), never by an UpdateService on top of ECS's own rollback.

ECS's waits are minutes; the local cloud's `ecs/native-timing` route scales them for these tests
(one ECS minute = 3 s here)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from .aws import Aws, Network, unique, wait_until
from .test_misbehaviour import control
from .test_release_policies import alarm, child_checks, set_alarm

pytestmark = pytest.mark.timeout(300)

SCALE = 0.05  # one ECS minute = 3 s
STRATEGIES = {
    "BLUE_GREEN": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1},
    "LINEAR": {"strategy": "LINEAR", "bakeTimeInMinutes": 1,
               "linearConfiguration": {"stepPercent": 50.0, "stepBakeTimeInMinutes": 1}},
    "CANARY": {"strategy": "CANARY", "bakeTimeInMinutes": 1,
               "canaryConfiguration": {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 1}},
}


@pytest.fixture(autouse=True)
def scaled_ecs_waits(localcloud: Any) -> Iterator[None]:
    assert control(localcloud, "POST", "ecs/native-timing", {"scale": SCALE})["scale"] == SCALE
    yield
    control(localcloud, "DELETE", "ecs/native-timing")


@dataclass
class NativeService:
    cluster: str
    repository: str
    groups: tuple[str, str]
    production_rule: str
    good_digest: str
    good_revision: str


def native_service(aws: Aws, strategy: str, alarms: list[str] | None = None) -> NativeService:
    """A Fargate service on `strategy` behind an ALB (production rule, test rule, two target
    groups), tracking `<repository>:main`, deployed once by deckhand."""
    net: Network = aws.network()
    repository = aws.repository(unique("shop"))
    blue = aws.target_group(unique("blue"), net, 5000)
    green = aws.target_group(unique("green"), net, 5000)
    balancer = aws.load_balancer(net, {80: blue})
    forward = [{"Type": "forward", "TargetGroupArn": blue}]
    production = aws.elb.create_rule(ListenerArn=balancer.listeners[80], Priority=10, Actions=forward,
                                     Conditions=[{"Field": "path-pattern", "Values": ["/*"]}])["Rules"][0]["RuleArn"]
    test = aws.elb.create_rule(ListenerArn=balancer.listeners[80], Priority=5, Actions=forward, Conditions=[
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Environment", "Values": ["test"]}}])["Rules"][0]["RuleArn"]
    role = aws.cloud.client("iam").create_role(RoleName=unique("ecs-infra"), AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    cluster = aws.cluster()
    initial = aws.push(repository, "main")
    td = aws.task_definition(unique("api"), [("web", aws.pinned(repository, initial), 5000)])
    tags = [{"key": "deckhand:track", "value": f"web={repository}:main"}]
    if alarms:
        tags.append({"key": "deckhand:alarms", "value": " ".join(alarms)})
    aws.ecs.create_service(
        cluster=cluster, serviceName="api", taskDefinition=td, desiredCount=2, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": net.subnets, "securityGroups": [net.security_group],
                                                      "assignPublicIp": "DISABLED"}},
        loadBalancers=[{"targetGroupArn": blue, "containerName": "web", "containerPort": 5000,
                        "advancedConfiguration": {"alternateTargetGroupArn": green, "productionListenerRule": production,
                                                  "testListenerRule": test, "roleArn": role}}],
        deploymentConfiguration={**STRATEGIES[strategy], "minimumHealthyPercent": 100, "maximumPercent": 200,
                                 "deploymentCircuitBreaker": {"enable": True, "rollback": True}},
        tags=tags,
    )
    settled(aws, cluster)
    good = aws.push(repository, "main")
    execution = aws.finish(aws.execution_for_push(good))
    assert execution["status"] == "SUCCEEDED", execution
    return NativeService(cluster, repository, (blue, green), production, good, aws.describe(cluster, "api")["taskDefinition"])


def service_deployments(aws: Aws, cluster: str) -> list[dict]:
    briefs = aws.ecs.list_service_deployments(cluster=cluster, service="api")["serviceDeployments"]
    if not briefs:
        return []
    return aws.ecs.describe_service_deployments(
        serviceDeploymentArns=[b["serviceDeploymentArn"] for b in briefs])["serviceDeployments"]


def settled(aws: Aws, cluster: str, timeout: float = 120) -> list[dict]:
    def done() -> list[dict] | None:
        found = service_deployments(aws, cluster)
        return found if found and found[0]["status"] not in ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED",
                                                             "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED") else None

    return wait_until("the service deployment to end", done, timeout)


def production_weights(aws: Aws, rule: str) -> dict[str, int]:
    [found] = aws.elb.describe_rules(RuleArns=[rule])["Rules"]
    weights: dict[str, int] = {}
    for action in found["Actions"]:
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups", []):
            weights[group["TargetGroupArn"]] = group.get("Weight", 1)
        if action.get("TargetGroupArn") and not action.get("ForwardConfig"):
            weights[action["TargetGroupArn"]] = 1
    return weights


def group_of_running_tasks(aws: Aws, service: NativeService) -> str:
    """The target group of the pair where every running task of the service is healthy."""
    running = {ip for ip in running_ips(aws, service.cluster)}
    for group in service.groups:
        healthy = {d["Target"]["Id"] for d in aws.elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
                   if d["TargetHealth"]["State"] == "healthy"}
        if running and running <= healthy:
            return group
    raise AssertionError(f"no group of the pair has every running task healthy: {running}")


def running_ips(aws: Aws, cluster: str) -> list[str]:
    arns = aws.ecs.list_tasks(cluster=cluster, serviceName="api", desiredStatus="RUNNING")["taskArns"]
    tasks = aws.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    return [d["value"] for t in tasks for a in t.get("attachments", []) for d in a.get("details", [])
            if d["name"] == "privateIPv4Address"]


def rolled_back_by_ecs(aws: Aws, events: Any, service: NativeService, execution: dict, before: int) -> None:
    """The push ended ROLLED_BACK to the known-good revision, through ECS's own rollback of the one
    service deployment the push started (no second deployment of deckhand's on top of it)."""
    assert execution["status"] == "FAILED" and execution.get("error") == "DeploymentRolledBack", execution
    (end,) = [e for e in events.for_execution(execution["executionArn"]) if e["status"] != "STARTED"]
    assert end["status"] == "ROLLED_BACK" and end["taskDefinition"] == service.good_revision, end
    found = settled(aws, service.cluster)
    assert len(found) == before + 1 and found[0]["status"] == "ROLLBACK_SUCCESSFUL", found[:2]
    assert aws.describe(service.cluster, "api")["taskDefinition"] == service.good_revision
    assert aws.running_images(service.cluster, "api")["web"] == aws.pinned(service.repository, service.good_digest)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_healthy_push_ends_with_all_production_traffic_on_the_new_revision(aws: Aws, events, strategy: str) -> None:
    service = native_service(aws, strategy)
    digest = aws.push(service.repository, "main")
    execution = aws.finish(aws.execution_for_push(digest))
    assert execution["status"] == "SUCCEEDED", execution
    assert events.statuses(execution["executionArn"]) == ["STARTED", "SUCCEEDED"]
    (end,) = [e for e in events.for_execution(execution["executionArn"]) if e["status"] == "SUCCEEDED"]
    ecs = end.get("ecsDeployment") or {}
    assert (ecs.get("strategy"), ecs.get("status"), ecs.get("productionTrafficPercent")) == (strategy, "SUCCESSFUL", 100.0), end
    assert aws.running_images(service.cluster, "api")["web"] == aws.pinned(service.repository, digest)
    newest = service_deployments(aws, service.cluster)[0]
    assert newest["status"] == "SUCCESSFUL", newest
    live = group_of_running_tasks(aws, service)
    weights = production_weights(aws, service.production_rule)
    assert weights.get(live) == max(weights.values()) and sum(w for g, w in weights.items() if g != live) == 0, weights
    # Followed, not polled blind: a check saw ECS's lifecycle stages on the way.
    reasons = " ".join(h.get("reason", "") for h in child_checks(aws, execution["executionArn"]))
    assert f"ECS {strategy} deployment" in reasons, reasons


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_broken_image_is_rolled_back_by_ecs_and_reported_rolled_back(aws: Aws, events, strategy: str) -> None:
    service = native_service(aws, strategy)
    before = len(service_deployments(aws, service.cluster))
    bad = aws.push(service.repository, "main", health="unhealthy")
    rolled_back_by_ecs(aws, events, service, aws.finish(aws.execution_for_push(bad)), before)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_alarm_during_ecs_traffic_shift_or_bake_makes_deckhand_ask_ecs_to_roll_back(aws: Aws, events, strategy: str) -> None:
    watched = alarm(aws)
    service = native_service(aws, strategy, alarms=[watched])
    before = len(service_deployments(aws, service.cluster))
    digest = aws.push(service.repository, "main")  # healthy-looking: only the alarm says otherwise
    execution_arn = aws.execution_for_push(digest)
    wait_until("ECS shifting traffic or baking", lambda: (found := service_deployments(aws, service.cluster))
               and len(found) > before and found[0].get("lifecycleStage") in ("PRODUCTION_TRAFFIC_SHIFT",
                                                                               "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME"),
               timeout=120)
    set_alarm(aws, watched, "ALARM")
    rolled_back_by_ecs(aws, events, service, aws.finish(execution_arn), before)
    live = group_of_running_tasks(aws, service)
    weights = production_weights(aws, service.production_rule)
    assert sum(w for g, w in weights.items() if g != live) == 0, weights

