"""EventBridge scheduled rules in the local cloud (tests/localcloud/schedules.py): PutRule refuses
the rate expressions EventBridge refuses, an ENABLED rate rule fires on its schedule with the
Scheduled Event and its target's Input, a DISABLED one never fires, and no event put on the bus
matches a scheduled rule (moto's empty pattern would match them all)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from polling import wait_until
from control import control

pytestmark = pytest.mark.timeout(150)


def queue(cloud: Any, name: str) -> tuple[str, str]:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(cloud: Any, url: str) -> list[dict[str, Any]]:
    sqs, bodies = cloud.client("sqs"), []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies += [json.loads(m["Body"]) for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.mark.parametrize("expression", [
    "rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(1.5 minutes)", "rate(10 seconds)", "every 5 minutes",
])
def test_put_rule_refuses_what_eventbridge_refuses(cloud: Any, expression: str) -> None:
    with pytest.raises(ClientError) as refused:
        cloud.client("events").put_rule(Name=f"bad-{uuid.uuid4().hex[:8]}", ScheduleExpression=expression)
    assert refused.value.response["Error"]["Code"] == "ValidationException", expression


def test_a_rate_rule_fires_every_period_and_a_disabled_one_never(cloud: Any) -> None:
    events = cloud.client("events")
    name = f"every-minute-{uuid.uuid4().hex[:8]}"
    url, arn = queue(cloud, name)
    off_url, off_arn = queue(cloud, f"{name}-off")
    rule_arn = events.put_rule(Name=name, ScheduleExpression="rate(1 minute)")["RuleArn"]
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    events.put_rule(Name=f"{name}-off", ScheduleExpression="rate(1 minute)", State="DISABLED")
    events.put_targets(Rule=f"{name}-off", Targets=[{"Id": "q", "Arn": off_arn, "Input": '{"off": true}'}])
    began = time.monotonic()
    assert drain(cloud, url) == [], "nothing before the first period"
    fired = wait_until("the first tick", lambda: drain(cloud, url), timeout=90, interval=1)
    assert 55 <= time.monotonic() - began, "not before a minute has passed"
    assert len(fired) == 1
    event = fired[0]
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.events", "Scheduled Event", {})
    assert event["resources"] == [rule_arn]
    cloud.wait_for_deliveries()
    assert drain(cloud, off_url) == [], "a DISABLED rule does not fire"
    status, body = control(cloud, "GET", "events/schedules")
    assert status == 200
    listed = {s["name"]: s for s in body["schedules"]}
    assert listed[name]["fired"] == 1 and listed[f"{name}-off"]["fired"] == 0


def test_a_rule_fired_on_request_delivers_its_targets_input(cloud: Any) -> None:
    events = cloud.client("events")
    name = f"hourly-{uuid.uuid4().hex[:8]}"
    url, arn = queue(cloud, name)
    rule_arn = events.put_rule(Name=name, ScheduleExpression="rate(2 hours)")["RuleArn"]
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn, "Input": '{"reconcile": true}'}])
    assert control(cloud, "POST", "events/schedules", {"fire": name}) == (200, {"rule": rule_arn, "targets": 1})
    cloud.wait_for_deliveries()
    assert drain(cloud, url) == [{"reconcile": True}]
    # A scheduled rule has no event pattern: events put on the bus never reach its targets.
    events.put_events(Entries=[{"Source": "test.schedules", "DetailType": "Anything", "Detail": "{}"}])
    cloud.wait_for_deliveries()
    assert drain(cloud, url) == [], "an event matched a scheduled rule"
