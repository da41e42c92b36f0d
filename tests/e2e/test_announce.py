"""Issue 24, items 1 and 2: deployments people can see. The stack's AnnounceFunction hears
deckhand's own events and posts STARTED, AWAITING_APPROVAL and every end to the chat topic
(ChatTopicArn; the session stack has one, tests/conftest.py) in the custom notification format
of Amazon Q Developer in chat applications, and records each end as CloudWatch metrics (an EMF
record in its log, which the local cloud turns into metrics as CloudWatch does,
tests/localcloud/emf.py). The stack ships a dashboard of them and an alarm on ROLLBACK_FAILED."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from .aws import Aws, api_service, unique, wait_until

pytestmark = pytest.mark.timeout(400)


@pytest.fixture
def chat(aws: Aws, localcloud: Any) -> Iterator[Any]:
    """An SQS queue subscribed to the chat topic: what a chat channel would receive."""
    sqs, sns = aws.cloud.client("sqs"), aws.cloud.client("sns")
    url = sqs.create_queue(QueueName=unique("chat"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":deckhand-chat"))
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                                 Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
    received: list[dict] = []

    class Channel:
        def messages(self, service_cluster: str) -> list[dict]:
            while True:
                batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
                if not batch:
                    break
                for message in batch:
                    received.append(json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            # The topic also gets the stack's alarm notifications (not custom notifications).
            return [m for m in received if m.get("source") == "custom"
                    and m["metadata"]["additionalContext"]["cluster"] == service_cluster]

    yield Channel()
    sns.unsubscribe(SubscriptionArn=subscription)


def metric(aws: Aws, name: str, dimensions: dict[str, str], stat: str = "Sum") -> list[float]:
    now = datetime.now(timezone.utc)
    answer = aws.cloud.client("cloudwatch").get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {
            "Namespace": "Deckhand", "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]}, "Period": 60, "Stat": stat}}],
        StartTime=now - timedelta(minutes=30), EndTime=now + timedelta(minutes=1))
    return answer["MetricDataResults"][0]["Values"]


def by_status(messages: list[dict], status: str) -> list[dict]:
    return [m for m in messages if m["metadata"]["additionalContext"]["status"] == status]


def test_a_deployment_and_a_rollback_reach_the_chat_and_the_metrics(aws: Aws, chat: Any) -> None:
    api = api_service(aws)
    good = aws.push(api.repository, "main")
    assert aws.finish(aws.execution_for_push(good))["status"] == "SUCCEEDED"
    bad = aws.push(api.repository, "main", health="unhealthy")
    rolled_back = aws.finish(aws.execution_for_push(bad))
    assert rolled_back.get("error") == "DeploymentRolledBack", rolled_back

    def about(found: list[dict], digest: str, status: str) -> list[dict]:
        return [m for m in by_status(found, status) if digest in m["content"]["description"]]

    def arrived() -> list[dict] | None:
        found = chat.messages(api.cluster)
        return found if about(found, good, "SUCCEEDED") and about(found, bad, "ROLLED_BACK") else None

    messages = wait_until("the chat messages", arrived, timeout=60)
    for message in messages:
        assert (message["version"], message["source"], message["content"]["textType"]) == ("1.0", "custom", "client-markdown")
        assert "not-for-logs" not in json.dumps(message), "no environment value of the task definition"
    (back,) = by_status(messages, "ROLLED_BACK")
    content = back["content"]
    assert content["title"] == f":leftwards_arrow_with_hook: ROLLED_BACK {api.cluster}/{api.service}"
    assert bad in content["description"] and "*Reason:*" in content["description"], content["description"]
    assert any("deckhand history" in step for step in content["nextSteps"]), content["nextSteps"]
    assert any("console.aws.amazon.com/states/home" in step for step in content["nextSteps"]), content["nextSteps"]
    (started_bad,) = about(messages, bad, "STARTED")
    (done_good,) = about(messages, good, "SUCCEEDED")
    assert started_bad["metadata"]["threadId"] == back["metadata"]["threadId"], "a deployment's start and end share a thread"
    assert done_good["metadata"]["threadId"] != back["metadata"]["threadId"]

    service = {"Cluster": api.cluster, "Service": api.service}
    wait_until("the metrics", lambda: metric(aws, "Deployments", {**service, "Outcome": "ROLLED_BACK"}), timeout=30)
    # One record per end: as many SUCCEEDED as the chat heard of (the setup pushes' included).
    assert sum(metric(aws, "Deployments", {**service, "Outcome": "SUCCEEDED"})) == len(by_status(messages, "SUCCEEDED"))
    assert sum(metric(aws, "Deployments", {**service, "Outcome": "ROLLED_BACK"})) == 1
    assert sum(metric(aws, "Rollbacks", service)) == 1
    detect = metric(aws, "TimeToDetectFailure", service, stat="Maximum")
    healthy = metric(aws, "PushToHealthy", service, stat="Maximum")
    assert detect and 0 < max(detect) < 120, detect
    assert healthy and 0 < max(healthy) < 120, healthy


def test_the_stack_ships_the_dashboard_and_the_rollback_failed_alarm(aws: Aws, localcloud: Any) -> None:
    watch = aws.cloud.client("cloudwatch")
    outputs = localcloud.stack_outputs
    body = json.loads(watch.get_dashboard(DashboardName=outputs["Dashboard"])["DashboardBody"])
    assert len(body["widgets"]) >= 5
    (alarm,) = watch.describe_alarms(AlarmNames=[outputs["RollbackFailedAlarmName"]])["MetricAlarms"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Deckhand", "Deployments")
    assert alarm["Dimensions"] == [{"Name": "Outcome", "Value": "ROLLBACK_FAILED"}]
    assert alarm["AlarmActions"] and alarm["AlarmActions"][0].endswith(":deckhand-chat")
    names = [a["AlarmName"] for a in watch.describe_alarms()["MetricAlarms"]]
    assert any("SignalDeliveryFailedAlarm" in name for name in names), names
