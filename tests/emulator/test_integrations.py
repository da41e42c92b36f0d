"""Step Functions service integrations and EventBridge delivery as AWS runs them
(tests/localcloud/sfn_integrations.py, events.py's DeliveryChaos): each behaviour deckhand's
fan-out and event-driven watch rely on, and each refusal, fed to the local cloud's own API."""

from __future__ import annotations

import json
import time
import uuid
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from executions import create_machine, finished_execution, run_execution
from polling import wait_until

pytestmark = pytest.mark.timeout(120)

SYNC2 = "arn:aws:states:::states:startExecution.sync:2"


def control(cloud: Any, method: str, route: str, body: dict | None = None) -> Any:
    request = urllib.request.Request(f"{cloud.endpoint}/_localcloud/{route}", method=method,
                                     data=json.dumps(body or {}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def parent_of(cloud: Any, role_arn: str, child: str) -> str:
    return create_machine(cloud, role_arn, {"StartAt": "Run", "States": {"Run": {
        "Type": "Task", "Resource": SYNC2, "End": True,
        "Parameters": {"StateMachineArn": child, "Name.$": "$.name", "Input": {"n.$": "$.n"}}}}})


def test_start_execution_sync2_answers_as_aws_with_the_childs_output(cloud: Any, role_arn: str) -> None:
    child = create_machine(cloud, role_arn, {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"got.$": "$.n"}, "End": True}}})
    done = run_execution(cloud, parent_of(cloud, role_arn, child), {"name": f"c-{uuid.uuid4().hex[:8]}", "n": 7})
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    # PascalCase keys, Output as JSON, epoch-millisecond dates (the Developer Guide's example).
    assert output["Status"] == "SUCCEEDED" and output["Output"] == {"got": 7}, output
    assert isinstance(output["StartDate"], int) and output["ExecutionArn"].endswith(output["Name"])


def test_a_failed_child_fails_the_task_with_its_error_in_the_cause(cloud: Any, role_arn: str) -> None:
    child = create_machine(cloud, role_arn, {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "DeploymentRolledBack", "Cause": "{}"}}})
    parent = create_machine(cloud, role_arn, {"StartAt": "Run", "States": {
        "Run": {"Type": "Task", "Resource": SYNC2, "Parameters": {"StateMachineArn": child, "Input": {}},
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failure", "Next": "Read"}], "End": True},
        "Read": {"Type": "Pass", "Parameters": {"child.$": "States.StringToJson($.failure.Cause)"}, "End": True}}})
    done = run_execution(cloud, parent, {})
    child_description = json.loads(done["output"])["child"]
    assert (child_description["Status"], child_description["Error"]) == ("FAILED", "DeploymentRolledBack"), child_description


def test_a_retried_start_with_the_same_name_returns_the_running_child(cloud: Any, role_arn: str) -> None:
    child = create_machine(cloud, role_arn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3, "End": True}}})
    sfn = cloud.client("stepfunctions")
    first = sfn.start_execution(stateMachineArn=child, name="same-name", input="{}")["executionArn"]
    again = sfn.start_execution(stateMachineArn=child, name="same-name", input="{}")["executionArn"]
    assert first == again
    finished_execution(sfn, first)
    with pytest.raises(ClientError, match="ExecutionAlreadyExists"):
        sfn.start_execution(stateMachineArn=child, name="same-name", input="{}")


def test_stopping_the_parent_stops_its_child_and_both_stay_aborted(cloud: Any, role_arn: str) -> None:
    child = create_machine(cloud, role_arn, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}})
    parent = create_machine(cloud, role_arn, {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Run", "States": {"Run": {
            "Type": "Task", "Resource": SYNC2, "Parameters": {"StateMachineArn": child, "Input": {}}, "End": True}}}}}})
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=parent, input=json.dumps({"items": [1]}))["executionArn"]
    running = wait_until("the child", lambda: sfn.list_executions(stateMachineArn=child, statusFilter="RUNNING")["executions"], 10)
    sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
    assert finished_execution(sfn, arn)["status"] == "ABORTED"
    assert finished_execution(sfn, running[0]["executionArn"], timeout=10)["status"] == "ABORTED"


def test_a_heartbeat_that_runs_out_is_states_heartbeat_timeout(cloud: Any, role_arn: str) -> None:
    queue = cloud.client("sqs").create_queue(QueueName=f"tokens-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    machine = create_machine(cloud, role_arn, {"StartAt": "Park", "States": {
        "Park": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "HeartbeatSeconds": 1,
                 "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                 "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "ResultPath": "$.woke", "Next": "Rechecked"}],
                 "End": True},
        "Rechecked": {"Type": "Pass", "End": True}}})
    done = run_execution(cloud, machine, {})
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["woke"]["Error"] == "States.HeartbeatTimeout"


def test_a_closed_token_answers_task_timed_out_and_an_unknown_one_invalid_token(cloud: Any, role_arn: str) -> None:
    sqs = cloud.client("sqs")
    queue = sqs.create_queue(QueueName=f"tokens-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    machine = create_machine(cloud, role_arn, {"StartAt": "Park", "States": {"Park": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": True,
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}}}})
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    message = wait_until("the token", lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), 10)[0]
    token = json.loads(message["Body"])["token"]
    sfn.send_task_success(taskToken=token, output='{"verdict": "HEALTHY"}')
    assert finished_execution(sfn, arn)["status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as late:  # a duplicate event's completion
        sfn.send_task_success(taskToken=token, output="{}")
    assert late.value.response["Error"]["Code"] == "TaskTimedOut"
    with pytest.raises(ClientError) as unknown:
        sfn.send_task_success(taskToken="not-a-token", output="{}")
    assert unknown.value.response["Error"]["Code"] == "InvalidToken"


def test_a_failed_token_keeps_its_error_and_cause_for_the_catch(cloud: Any, role_arn: str) -> None:
    """SendTaskFailure's cause reaches the Catch's ResultPath (moto dropped it; sfn_integrations.py)."""
    sqs = cloud.client("sqs")
    queue = sqs.create_queue(QueueName=f"tokens-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    machine = create_machine(cloud, role_arn, {"StartAt": "Park", "States": {
        "Park": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                 "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                 "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.why", "Next": "Refused"}], "End": True},
        "Refused": {"Type": "Pass", "End": True}}})
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    message = wait_until("the token", lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), 10)[0]
    sfn.send_task_failure(taskToken=json.loads(message["Body"])["token"], error="Rejected", cause="not on a Friday")
    done = finished_execution(sfn, arn)
    assert json.loads(done["output"])["why"] == {"Error": "Rejected", "Cause": "not on a Friday"}, done


# ------------------------------------------------------------------ EventBridge delivery chaos


@pytest.fixture
def queue_rule(cloud: Any) -> tuple[str, str]:
    """A rule on `test.chaos` events delivering to a new SQS queue: (queue URL, detail-type)."""
    sqs, events = cloud.client("sqs"), cloud.client("events")
    name = f"chaos-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps({"source": ["test.chaos"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return url, name


def put(cloud: Any, detail_type: str, n: int) -> None:
    cloud.client("events").put_events(Entries=[{"Source": "test.chaos", "DetailType": detail_type, "Detail": json.dumps({"n": n})}])


def received(cloud: Any, url: str) -> list[int]:
    cloud.wait_for_deliveries()
    sqs, seen = cloud.client("sqs"), []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return seen
        seen += [json.loads(m["Body"])["detail"]["n"] for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_chaos_duplicates_reorders_and_drops_only_the_events_it_names(cloud: Any, queue_rule: tuple[str, str]) -> None:
    url, name = queue_rule
    kind = f"Chaos {name}"
    try:
        control(cloud, "POST", "events/chaos", {"duplicate": True, "duplicateAfterSeconds": 0.2, "detailTypes": [kind]})
        put(cloud, kind, 1)
        put(cloud, "Other", 2)
        time.sleep(0.5)
        assert sorted(received(cloud, url)) == [1, 1, 2], "the named kind twice, the other once"

        control(cloud, "POST", "events/chaos", {"reorderWithinSeconds": 1.0, "detailTypes": [kind]})
        for n in (1, 2, 3):
            put(cloud, kind, n)
        time.sleep(1.5)
        assert received(cloud, url) == [3, 2, 1], "held, then delivered newest first"

        control(cloud, "POST", "events/chaos", {"drop": True, "detailTypes": [kind]})
        put(cloud, kind, 4)
        put(cloud, "Other", 5)
        assert received(cloud, url) == [5]
        counts = control(cloud, "DELETE", "events/chaos")
        assert counts["dropped"] == 1
        put(cloud, kind, 6)
        assert received(cloud, url) == [6], "once and in order again"
    finally:
        control(cloud, "DELETE", "events/chaos")


def test_chaos_refuses_settings_it_does_not_know(cloud: Any) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        control(cloud, "POST", "events/chaos", {"dupliacte": True})
    assert refused.value.code == 400


def test_a_task_completed_while_its_invocation_still_runs_ends_at_once(cloud: Any, role_arn: str,
                                                                        make_function: Any) -> None:
    """The invoked function completes its own token before it returns (deckhand's check does when
    the rollout is already conclusive): the task ends then, not when the heartbeat runs out."""
    function = make_function()
    machine = create_machine(cloud, role_arn, {"StartAt": "Park", "States": {"Park": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "HeartbeatSeconds": 30,
        "Parameters": {"FunctionName": function["FunctionArn"],
                       "Payload": {"fake": {"completeToken.$": "$$.Task.Token", "output": {"verdict": "HEALTHY"}}}},
        "End": True}}})
    began = time.monotonic()
    done = run_execution(cloud, machine, {}, timeout=25)
    assert done["status"] == "SUCCEEDED", done
    assert time.monotonic() - began < 25, "ended by the completion, not the 30 s heartbeat"
    assert json.loads(done["output"]) == {"verdict": "HEALTHY"}
