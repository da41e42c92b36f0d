"""Lambda's concurrency limits and asynchronous-invocation semantics in the local cloud
(tests/localcloud/lambda_concurrency.py, where each behaviour is cited), each shown biting."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable, Iterator

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from control import control as control_route
from executions import create_machine, run_execution


def control(cloud: Any, method: str, body: dict | None = None) -> tuple[int, Any]:
    return control_route(cloud, method, "lambda/concurrency", body)


@pytest.fixture
def limits(cloud: Any) -> Iterator[Callable[..., dict]]:
    """Changes the Lambda settings for one test; the defaults come back after it."""

    def change(**settings: Any) -> dict:
        status, body = control(cloud, "POST", settings)
        assert status == 200, body
        return body

    yield change
    control(cloud, "DELETE")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def records(function: dict[str, Any]) -> list[Any]:
    path = function["RecordFile"]
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def invoke_while_busy(cloud: Any, name: str, busy_seconds: float = 2.0) -> dict[str, Any]:
    """Holds one invocation of ``name`` running and answers a second one made meanwhile."""
    lam = cloud.client("lambda")
    holder = threading.Thread(
        target=lam.invoke, kwargs={"FunctionName": name, "Payload": json.dumps({"fake": {"sleep": busy_seconds}})}
    )
    holder.start()
    try:
        wait_until(lambda: cloud.runtime.concurrency.control("GET", {})[1]["inFlight"].get(name), 5, "the first call")
        # A client that does not retry: a retry could land after the first call ended.
        once = cloud.client("lambda", config=Config(retries={"mode": "standard", "max_attempts": 1}))
        with pytest.raises(ClientError) as refused:
            once.invoke(FunctionName=name, Payload=b"{}")
        return refused.value.response
    finally:
        holder.join()


def test_the_defaults_are_lambdas(cloud: Any) -> None:
    status, body = control(cloud, "GET")
    assert status == 200
    assert body["accountLimit"] == 1000
    assert body["retryDelaysSeconds"] == [60.0, 120.0]
    assert 0 < body["duplicateRate"] < 0.1


def test_reserved_concurrency_throttles_the_function_beyond_it(cloud: Any, make_function: Callable) -> None:
    name = make_function()["FunctionName"]
    cloud.client("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)

    refusal = invoke_while_busy(cloud, name)

    assert refusal["Error"]["Code"] == "TooManyRequestsException"
    assert refusal["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert refusal["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    # Once the first call ended, its slot is free again.
    assert cloud.client("lambda").invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200


def test_reserved_concurrency_zero_throttles_every_call(cloud: Any, make_function: Callable) -> None:
    name = make_function()["FunctionName"]
    cloud.client("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as refused:
        cloud.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert refused.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_the_account_limit_throttles_functions_without_reservations(
    cloud: Any, make_function: Callable, limits: Callable
) -> None:
    name = make_function()["FunctionName"]
    # What the other functions reserved is not in the shared pool: leave room for one call.
    reserved = sum(control(cloud, "GET")[1]["reserved"].values())
    limits(accountLimit=reserved + 1)

    refusal = invoke_while_busy(cloud, name)

    assert refusal["Error"]["Code"] == "TooManyRequestsException"
    assert refusal["Reason"] == "ConcurrentInvocationLimitExceeded"


def test_step_functions_sees_a_throttle_as_lambda_too_many_requests(
    cloud: Any, make_function: Callable, role_arn: str
) -> None:
    function = make_function()
    cloud.client("lambda").put_function_concurrency(FunctionName=function["FunctionName"], ReservedConcurrentExecutions=0)
    machine = create_machine(cloud, role_arn, {
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {"FunctionName": function["FunctionArn"], "Payload": {}}, "End": True}},
    })
    execution = run_execution(cloud, machine, {})
    assert execution["status"] == "FAILED"
    assert execution["error"] == "Lambda.TooManyRequestsException"


def test_a_failing_async_event_is_tried_three_times_then_sent_to_its_destination(
    cloud: Any, make_function: Callable, limits: Callable
) -> None:
    limits(retryDelaysSeconds=[0.5, 1.0], duplicateRate=0)
    sqs = cloud.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"failed-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    function = make_function()
    lam = cloud.client("lambda")
    lam.put_function_event_invoke_config(
        FunctionName=function["FunctionName"],
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    event = {"fake": {"error": "Boom", "message": "always"}, "n": 1}

    lam.invoke(FunctionName=function["FunctionName"], InvocationType="Event", Payload=json.dumps(event).encode())

    messages = wait_until(
        lambda: sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages"), 20, "the failure record"
    )
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"] == function["FunctionArn"]
    assert record["requestPayload"] == event
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "Boom"
    assert len(records(function)) == 3


def test_a_retry_that_succeeds_sends_nothing_to_the_failure_destination(
    cloud: Any, make_function: Callable, limits: Callable
) -> None:
    limits(retryDelaysSeconds=[0.2, 0.2], duplicateRate=0)
    function = make_function()
    event = {"fake": {"failTimes": 1, "key": uuid.uuid4().hex, "error": "Flaky", "return": "ok"}}
    cloud.client("lambda").invoke(
        FunctionName=function["FunctionName"], InvocationType="Event", Payload=json.dumps(event).encode()
    )
    wait_until(lambda: len(records(function)) == 2, 10, "the retry")
    time.sleep(0.5)
    assert len(records(function)) == 2  # the failure, then the success; no third attempt


def test_a_throttled_async_event_waits_for_concurrency_and_is_not_lost(
    cloud: Any, make_function: Callable, limits: Callable
) -> None:
    limits(duplicateRate=0)
    function = make_function()
    lam = cloud.client("lambda")
    lam.put_function_concurrency(FunctionName=function["FunctionName"], ReservedConcurrentExecutions=0)
    lam.invoke(FunctionName=function["FunctionName"], InvocationType="Event", Payload=b'{"n": 2}')
    time.sleep(1.5)
    assert records(function) == []  # throttled, back in the queue
    throttled = control(cloud, "GET")[1]["throttled"]
    assert throttled.get(function["FunctionName"], 0) >= 1

    lam.delete_function_concurrency(FunctionName=function["FunctionName"])

    assert wait_until(lambda: records(function), 10, "the queued event") == [{"n": 2}]


def test_an_async_event_is_delivered_twice_now_and_then(
    cloud: Any, make_function: Callable, limits: Callable
) -> None:
    limits(duplicateRate=1)
    function = make_function()
    cloud.client("lambda").invoke(FunctionName=function["FunctionName"], InvocationType="Event", Payload=b'{"n": 3}')
    assert wait_until(lambda: len(records(function)) == 2 and records(function), 10, "the duplicate") == [
        {"n": 3},
        {"n": 3},
    ]


def test_the_route_refuses_what_lambda_would_not_do(cloud: Any) -> None:
    assert control(cloud, "POST", {"retryDelaysSeconds": [1, 2, 3]})[0] == 400
    assert control(cloud, "POST", {"duplicateRate": 2})[0] == 400
    assert control(cloud, "POST", {"accountLimit": -1})[0] == 400
