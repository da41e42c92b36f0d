"""Issue 14 end to end: release policies. Which pushes deploy (exact tags, prefixes, semver
X-ranges), the alarm gate (CloudWatch alarms driven with SetAlarmState during a rollout and a
bake) and the approval gate (`deckhand approve` / `deckhand reject`, timeouts, a newer push)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError

from .aws import Aws, Network, unique, wait_until
from .test_cli import deckhand  # noqa: F401  (the fixture running the built command)

pytestmark = pytest.mark.timeout(600)


@dataclass
class Shop:
    cluster: str
    service: str
    repository: str
    network: Network
    group: str


def shop(aws: Aws, track_rule: str, first_tag: str, tags: dict[str, str] | None = None, desired: int = 1) -> Shop:
    """A service behind an ALB running `first_tag` of a new repository, pinned by digest (as deckhand
    pins it), tracking the repository with `track_rule`."""
    net = aws.network()
    repository = aws.repository(unique("shop/api"))
    group = aws.target_group(unique("shop"), net, 8080)
    aws.load_balancer(net, {80: group})
    cluster = aws.cluster()
    first = aws.push(repository, first_tag)
    td = aws.task_definition(unique("shop"), [("app", aws.pinned(repository, first), 8080)])
    aws.service(cluster, "api", td, net, [(group, "app", 8080)], track=f"app={repository}:{track_rule}",
                desired=desired, extra_tags=tags)
    return Shop(cluster, "api", repository, net, group)


def pushed(aws: Aws, events, shop_: Shop, tag: str, **behaviour) -> tuple[dict, list[dict]]:
    """Pushes `tag`; returns the execution it started, finished, and its deployment events."""
    digest = aws.push(shop_.repository, tag, **behaviour)
    execution = aws.finish(aws.execution_for_push(digest))
    return execution, events.for_execution(execution["executionArn"])


def only(found: list[dict]) -> dict:
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------------------------------------- tags


def test_a_semver_range_deploys_newer_releases_only_and_says_why_it_skips(aws: Aws, events) -> None:
    api = shop(aws, "semver:1.x", "1.0.0")
    execution, seen = pushed(aws, events, api, "v1.1.0")
    assert execution["status"] == "SUCCEEDED", execution
    assert [e["status"] for e in seen] == ["STARTED", "SUCCEEDED"]
    running = aws.running_images(api.cluster, api.service)["app"]
    for tag, why in [("1.0.5", "not newer than 1.1.0"), ("2.0.0", "outside the range 1.x"),
                     ("1.2.0-rc.1", "pre-release"), ("latest", "not a semantic version")]:
        execution, seen = pushed(aws, events, api, tag)
        event = only(seen)
        assert event["status"] == "SKIPPED" and why in event["reason"], (tag, event)
        assert aws.running_images(api.cluster, api.service)["app"] == running, f"{tag} changed nothing"
    execution, seen = pushed(aws, events, api, "1.10.0")
    assert [e["status"] for e in seen] == ["STARTED", "SUCCEEDED"], "1.10.0 > 1.2: precedence, not text"


def test_a_prefix_deploys_each_later_push_of_a_matching_tag(aws: Aws, events) -> None:
    api = shop(aws, "prefix:release-", "release-1")
    execution, seen = pushed(aws, events, api, "release-2")
    assert [e["status"] for e in seen] == ["STARTED", "SUCCEEDED"], seen
    execution, seen = pushed(aws, events, api, "main")
    event = only(seen)
    assert event["status"] == "SKIPPED" and 'does not start with "release-"' in event["reason"], event


def test_ecs_refuses_range_operators_in_tag_values_and_deckhand_refuses_what_is_not_an_x_range(aws: Aws, events, deckhand) -> None:  # noqa: F811
    api = shop(aws, "semver:1.x", "1.0.0")
    arn = aws.describe(api.cluster, api.service)["serviceArn"]
    for value in ("app=x:semver:^1.2", "app=x:semver:~1.2", "app=x:semver:>=1", "app=x:semver:1.*", "app=x:semver:<2"):
        with pytest.raises(ClientError) as refused:
            aws.ecs.tag_resource(resourceArn=arn, tags=[{"key": "deckhand:track", "value": value}])
        assert refused.value.response["Error"]["Code"] == "InvalidParameterException", value
    # Allowed characters, but not an X-range: the push is not deployed, and the command refuses it.
    aws.ecs.tag_resource(resourceArn=arn, tags=[{"key": "deckhand:track", "value": f"app={api.repository}:semver:1.2.3"}])
    digest = aws.push(api.repository, "1.2.3")
    plan = aws.finish(aws.execution_for_push(digest))
    assert plan["status"] == "SUCCEEDED" and "ignored" in plan["output"], plan["output"]
    refused = deckhand("track", api.cluster, api.service, f"app={api.repository}:semver:1.2.3")
    assert refused.returncode == 2 and "X-range" in refused.stderr, refused.stderr


# ---------------------------------------------------------------------------------------------- gates


def test_malformed_gates_skip_a_push_and_refuse_a_manual_deploy(aws: Aws, events, deckhand) -> None:  # noqa: F811
    api = shop(aws, "main", "main", tags={"deckhand:approval": "yes"})
    execution, seen = pushed(aws, events, api, "main")
    event = only(seen)
    assert event["status"] == "SKIPPED" and "deckhand:approval" in event["reason"], event
    manual = deckhand("deploy", api.cluster, api.service, f"{api.repository}:main")
    assert manual.returncode == 2 and "InvalidInput" in manual.stderr and "deckhand:approval" in manual.stderr
    missing = shop(aws, "main", "main", tags={"deckhand:alarms": unique("no-such-alarm")})
    execution, seen = pushed(aws, events, missing, "main")
    event = only(seen)
    assert event["status"] == "SKIPPED" and "CloudWatch does not have" in event["reason"], event


def alarm(aws: Aws, state: str = "OK") -> str:
    cloudwatch = aws.cloud.client("cloudwatch")
    name = unique("shop-5xx")
    cloudwatch.put_metric_alarm(AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5,
                                ComparisonOperator="GreaterThanThreshold")
    set_alarm(aws, name, state)
    return name


def set_alarm(aws: Aws, name: str, state: str) -> None:
    aws.cloud.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"test sets {state}")


def child_checks(aws: Aws, execution_arn: str) -> list[dict]:
    """The health the service execution's checks returned, in order."""
    (child,) = aws.service_executions(execution_arn)
    found = []
    for event in aws.own_history(child):
        details = event.get("taskSucceededEventDetails") or event.get("lambdaFunctionSucceededEventDetails") or {}
        output = json.loads(details.get("output") or "null")
        if isinstance(output, dict) and "verdict" in output:
            found.append(output)
    return found


def test_an_alarm_that_fires_during_the_rollout_rolls_it_back(aws: Aws, events) -> None:
    name = alarm(aws)
    api = shop(aws, "main", "main", tags={"deckhand:alarms": name})
    digest = aws.push(api.repository, "main", ready_seconds=8)
    execution_arn = aws.execution_for_push(digest)
    wait_until("the rollout to start", lambda: "STARTED" in events.statuses(execution_arn), 60)
    set_alarm(aws, name, "ALARM")
    execution = aws.finish(execution_arn)
    set_alarm(aws, name, "OK")
    statuses = events.statuses(execution_arn)
    assert statuses == ["STARTED", "ROLLED_BACK"], statuses
    rolled_back = events.for_execution(execution_arn)[-1]
    assert f"CloudWatch alarm in ALARM: {name}" in rolled_back["reason"], rolled_back
    assert execution["status"] == "FAILED"
    # DescribeServices lags UpdateService (the local cloud's read lag, as ECS's): the rollback's
    # revision shows within that lag, not necessarily at the first read.
    wait_until("the service back on the previous image",
               lambda: not aws.running_images(api.cluster, api.service)["app"].endswith(digest), 20)


def test_an_alarm_that_fires_during_the_bake_rolls_it_back(aws: Aws, events) -> None:
    name = alarm(aws)
    api = shop(aws, "main", "main", tags={"deckhand:alarms": name, "deckhand:bake": "30"})
    digest = aws.push(api.repository, "main")
    execution_arn = aws.execution_for_push(digest)

    def baking() -> bool:
        children = aws.service_executions(execution_arn)
        return bool(children) and any("baking" in c["reason"] for c in child_checks(aws, execution_arn))

    wait_until("the bake to start", baking, 90)
    set_alarm(aws, name, "ALARM")
    aws.finish(execution_arn)
    set_alarm(aws, name, "OK")
    assert events.statuses(execution_arn) == ["STARTED", "ROLLED_BACK"]
    assert name in events.for_execution(execution_arn)[-1]["reason"]


def test_an_alarm_already_in_alarm_when_the_rollout_starts_is_not_held_against_it(aws: Aws, events) -> None:
    name = alarm(aws, "ALARM")
    api = shop(aws, "main", "main", tags={"deckhand:alarms": name})
    execution, seen = pushed(aws, events, api, "main")
    set_alarm(aws, name, "OK")
    assert [e["status"] for e in seen] == ["STARTED", "SUCCEEDED"], seen
    checks = child_checks(aws, execution["executionArn"])
    assert checks and all(c["verdict"] != "FAILED" for c in checks)


def awaiting(events, execution_arn: str) -> dict:
    return wait_until("AWAITING_APPROVAL", lambda: next(
        (e for e in events.for_execution(execution_arn) if e["status"] == "AWAITING_APPROVAL"), None), 60)


def test_a_push_waits_for_approval_then_deploys_and_a_rejected_one_changes_nothing(aws: Aws, events, deckhand) -> None:  # noqa: F811
    api = shop(aws, "main", "main", tags={"deckhand:approval": "required", "deckhand:approval-timeout": "300"})
    before = aws.describe(api.cluster, api.service)["taskDefinition"]
    digest = aws.push(api.repository, "main")
    execution_arn = aws.execution_for_push(digest)
    asked = awaiting(events, execution_arn)
    assert asked["changes"] and digest in asked["changes"][0], asked
    assert f"deckhand approve {api.cluster} {api.service}" in asked["reason"]
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == before, "nothing changes before approval"
    approved = deckhand("approve", api.cluster, api.service, "--reason", "release notes read")
    assert approved.returncode == 0 and "approved" in approved.stdout, approved.stderr
    assert aws.finish(execution_arn)["status"] == "SUCCEEDED"
    assert events.statuses(execution_arn) == ["AWAITING_APPROVAL", "STARTED", "SUCCEEDED"]
    assert aws.running_images(api.cluster, api.service)["app"].endswith(digest)

    deployed = aws.describe(api.cluster, api.service)["taskDefinition"]
    rejected_arn = aws.execution_for_push(aws.push(api.repository, "main"))
    awaiting(events, rejected_arn)
    rejected = deckhand("reject", api.cluster, api.service, "--reason", "not on a Friday")
    assert rejected.returncode == 0, rejected.stderr
    aws.finish(rejected_arn)
    final = events.for_execution(rejected_arn)[-1]
    assert final["status"] == "SKIPPED" and "not on a Friday" in final["reason"], final
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == deployed
    again = deckhand("approve", api.cluster, api.service)
    assert again.returncode == 2 and "awaiting approval" in again.stderr, "nothing is pending any more"


def test_an_approval_times_out_skipped_and_a_newer_push_supersedes_a_pending_one(aws: Aws, events, deckhand) -> None:  # noqa: F811
    api = shop(aws, "main", "main", tags={"deckhand:approval": "required", "deckhand:approval-timeout": "3"})
    execution, seen = pushed(aws, events, api, "main")
    assert [e["status"] for e in seen] == ["AWAITING_APPROVAL", "SKIPPED"], seen
    assert "nobody approved the push within 3s" in seen[-1]["reason"]

    arn = aws.describe(api.cluster, api.service)["serviceArn"]
    aws.ecs.tag_resource(resourceArn=arn, tags=[{"key": "deckhand:approval-timeout", "value": "300"}])
    first_arn = aws.execution_for_push(aws.push(api.repository, "main"))
    awaiting(events, first_arn)
    newer = aws.push(api.repository, "main")
    newer_arn = aws.execution_for_push(newer)
    awaiting(events, newer_arn)
    aws.finish(first_arn)
    superseded = events.for_execution(first_arn)[-1]
    assert superseded["status"] == "SUPERSEDED" and "newer push" in superseded["reason"], superseded
    assert deckhand("approve", api.cluster, api.service).returncode == 0
    assert aws.finish(newer_arn)["status"] == "SUCCEEDED"
    assert aws.running_images(api.cluster, api.service)["app"].endswith(newer)
