"""Service quotas of the local cloud: each limit is tripped by something that
exceeds it, and something just under it passes.

* Step Functions (tests/localcloud/sfn_quotas.py): 25,000 history events,
  262,144 bytes for a state's output / a task's result / a task's input
  (States.DataLimitExceeded, not caught by States.ALL), 32,768 characters for
  a Fail state's cause (256 for its error);
* Lambda (lambda_runtime.py, lambda_memory.py): 6 MB synchronous request and
  response, MemorySize, and timeouts / out-of-memory / a process that exits
  reaching Step Functions under Lambda's own error types (Sandbox.Timedout,
  Runtime.OutOfMemory, Runtime.ExitError), an error without a type as
  Lambda.Unknown.

Functions are the fake Python bootstraps (fixtures/fake_bootstrap.py).

Run: .venv/bin/python -m pytest tests/emulator/test_quotas.py -q
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from executions import create_machine, run_execution
from localcloud import lambda_runtime, sfn_quotas

pytestmark = pytest.mark.timeout(180)

KIB256 = 262_144
SIX_MB = 6 * 1024 * 1024


# ------------------------------------------------------------------------------------------
# helpers (fixtures cloud, role_arn and make_function: conftest.py in this directory)
# ------------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def calls(function: dict[str, Any]) -> int:
    path = function["RecordFile"]
    return len(path.read_text().splitlines()) if path.exists() else 0


def machine(cloud: Any, role_arn: str, states: dict[str, Any], start: str = "Start") -> str:
    return create_machine(cloud, role_arn, {"StartAt": start, "States": states}, prefix="quota-sm")


def run(cloud: Any, machine_arn: str, execution_input: Any, timeout: float = 60) -> dict[str, Any]:
    return run_execution(cloud, machine_arn, execution_input, timeout)


def history(cloud: Any, execution_arn: str) -> list[dict[str, Any]]:
    paginator = cloud.client("stepfunctions").get_paginator("get_execution_history")
    return [event for page in paginator.paginate(executionArn=execution_arn) for event in page["events"]]


def outcome(result: dict[str, Any]) -> tuple[str, str | None]:
    return result["status"], result.get("error")


def compact_size(document: str) -> int:
    """UTF-8 bytes of a JSON document as AWS writes it (moto's output has spaces)."""
    return len(json.dumps(json.loads(document), separators=(",", ":"), ensure_ascii=False).encode())


def task(function_arn: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": function_arn, "End": True, **fields}


# ------------------------------------------------------------------------------------------
# 25,000 events in one execution's history
# ------------------------------------------------------------------------------------------

COUNTING_LOOP = {
    "Start": {"Type": "Pass", "Parameters": {"n": 0, "stop.$": "$.stop"}, "Next": "Count"},
    "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)", "stop.$": "$.stop"}, "Next": "More?"},
    "More?": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThanPath": "$.stop", "Next": "Count"}],
              "Default": "Done"},
    "Done": {"Type": "Succeed"},
}


def test_history_quota_is_25000_events_by_default() -> None:
    assert sfn_quotas.MAX_HISTORY_EVENTS == 25_000
    assert sfn_quotas._history_limit == 25_000  # nothing left a test limit behind


def test_an_execution_fails_when_its_history_reaches_the_quota(cloud: Any, role_arn: str) -> None:
    """25,000 events of moto's interpreter take minutes (about 300 events/s), so the quota
    is lowered for the test; the default is checked above."""
    loop = machine(cloud, role_arn, COUNTING_LOOP)
    full = run(cloud, loop, {"stop": 5})
    assert full["status"] == "SUCCEEDED"
    needed = len(history(cloud, full["executionArn"]))  # ExecutionSucceeded is the last of them

    with sfn_quotas.history_event_limit(needed):  # event number `needed` is ExecutionSucceeded: fine
        exact = run(cloud, loop, {"stop": 5})
    assert exact["status"] == "SUCCEEDED"
    assert len(history(cloud, exact["executionArn"])) == needed

    with sfn_quotas.history_event_limit(needed - 1):
        short = run(cloud, loop, {"stop": 5})
    assert outcome(short) == ("FAILED", "States.Runtime")
    assert short["cause"] == f"The execution reached the maximum number of history events ({needed - 1})."
    events = history(cloud, short["executionArn"])
    assert len(events) == needed - 1
    assert events[-1]["type"] == "ExecutionFailed"
    assert events[-1]["executionFailedEventDetails"]["error"] == "States.Runtime"

    # A loop far longer than the quota stops at it, at once.
    started = time.monotonic()
    with sfn_quotas.history_event_limit(60):
        endless = run(cloud, loop, {"stop": 100_000})
    assert outcome(endless) == ("FAILED", "States.Runtime")
    assert time.monotonic() - started < 15
    time.sleep(0.5)
    assert len(history(cloud, endless["executionArn"])) == 60


# ------------------------------------------------------------------------------------------
# 256 KiB for a state's output, a task's result and a task's input
# ------------------------------------------------------------------------------------------


def test_state_output_over_256_kib_fails_with_data_limit_exceeded(cloud: Any, role_arn: str) -> None:
    # The output {"a":"<s>","b":"<s>","c":"<t>"} is 22 + 2s + t bytes; the input stays smaller.
    states = {"Start": {"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s", "c.$": "$.t"}, "End": True}}
    sm = machine(cloud, role_arn, states)
    s = "x" * 100_000
    at_limit = run(cloud, sm, {"s": s, "t": "y" * (KIB256 - 22 - 200_000)})
    assert at_limit["status"] == "SUCCEEDED", at_limit
    assert compact_size(at_limit["output"]) == KIB256
    over = run(cloud, sm, {"s": s, "t": "y" * (KIB256 - 21 - 200_000)})
    assert outcome(over) == ("FAILED", "States.DataLimitExceeded")

    # Bytes of UTF-8, not characters: 2-byte characters count twice.
    accented = run(cloud, sm, {"s": "é" * 66_000, "t": "y"})
    assert outcome(accented) == ("FAILED", "States.DataLimitExceeded")


def test_task_result_over_256_kib_is_not_caught_by_states_all(cloud: Any, role_arn: str,
                                                             make_function: Callable) -> None:
    worker = make_function()
    arn = worker["FunctionArn"]
    caught = {"Type": "Pass", "Result": {"caught": True}, "End": True}
    catch_all = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    retry_all = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}]

    sm = machine(cloud, role_arn, {"Start": task(arn, Retry=retry_all, Catch=catch_all), "Caught": caught})
    ok = run(cloud, sm, {"fake": {"bytes": KIB256}})  # the result (a JSON string) is 262,144 bytes
    assert ok["status"] == "SUCCEEDED", ok
    succeeded = [e for e in history(cloud, ok["executionArn"]) if e["type"] == "LambdaFunctionSucceeded"]
    assert compact_size(succeeded[0]["lambdaFunctionSucceededEventDetails"]["output"]) == KIB256
    before = calls(worker)
    over = run(cloud, sm, {"fake": {"bytes": KIB256 + 1}})
    assert outcome(over) == ("FAILED", "States.DataLimitExceeded")
    assert calls(worker) == before + 1  # no retry on States.ALL either
    events = history(cloud, over["executionArn"])
    assert not any(e["type"] == "PassStateEntered" for e in events)  # "Caught" never ran

    # Only the error's own name matches it (States.TaskFailed does not).
    named = machine(cloud, role_arn, {"Start": task(arn, Catch=[
        {"ErrorEquals": ["States.TaskFailed"], "Next": "Wrong"},
        {"ErrorEquals": ["States.DataLimitExceeded"], "ResultPath": "$.error", "Next": "Caught"}]),
        "Caught": caught, "Wrong": {"Type": "Fail", "Error": "WrongCatcher"}})
    handled = run(cloud, named, {"fake": {"bytes": KIB256 + 1}})
    assert handled["status"] == "SUCCEEDED", handled
    assert json.loads(handled["output"]) == {"caught": True}

    # The optimised integration measures its whole result (Payload, StatusCode, ...).
    service = machine(cloud, role_arn, {"Start": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": arn, "Payload": {"fake": {"bytes": KIB256}}},
        "Catch": catch_all, "End": True}, "Caught": caught})
    assert outcome(run(cloud, service, {})) == ("FAILED", "States.DataLimitExceeded")


def test_task_input_over_256_kib_after_parameters_fails_before_the_call(cloud: Any, role_arn: str,
                                                                       make_function: Callable) -> None:
    worker = make_function()
    doubled = {"one.$": "$.s", "two.$": "$.s"}  # {"one":"…","two":"…"}: 2 × len + 19 bytes
    catch_all = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    sm = machine(cloud, role_arn, {
        "Start": task(worker["FunctionArn"], Parameters=doubled, ResultPath=None, Catch=catch_all),
        "Caught": {"Type": "Pass", "End": True}})
    fits = run(cloud, sm, {"s": "x" * ((KIB256 - 19) // 2)})
    assert fits["status"] == "SUCCEEDED", fits
    assert calls(worker) == 1
    over = run(cloud, sm, {"s": "x" * (KIB256 // 2)})
    assert outcome(over) == ("FAILED", "States.DataLimitExceeded")
    assert calls(worker) == 1  # never invoked


# ------------------------------------------------------------------------------------------
# a Fail state's cause (32,768 characters) and error (256)
# ------------------------------------------------------------------------------------------


def test_fail_state_cause_and_error_lengths(cloud: Any, role_arn: str) -> None:
    sm = machine(cloud, role_arn, {"Start": {"Type": "Fail", "ErrorPath": "$.error", "CausePath": "$.cause"}})
    longest = run(cloud, sm, {"error": "E" * 256, "cause": "c" * 32_768})
    assert (longest["status"], longest["error"], len(longest["cause"])) == ("FAILED", "E" * 256, 32_768)

    too_long_cause = run(cloud, sm, {"error": "Boom", "cause": "c" * 32_769})
    assert outcome(too_long_cause) == ("FAILED", "States.Runtime")
    assert "32768" in too_long_cause["cause"] and "32769" in too_long_cause["cause"]
    too_long_error = run(cloud, sm, {"error": "E" * 257, "cause": "short"})
    assert outcome(too_long_error) == ("FAILED", "States.Runtime")


# ------------------------------------------------------------------------------------------
# Lambda: 6 MB synchronous payloads
# ------------------------------------------------------------------------------------------


def test_invoke_request_over_6_mb_is_refused_with_413(cloud: Any, make_function: Callable) -> None:
    worker = make_function(timeout=30)
    client = cloud.client("lambda")
    exact = json.dumps("x" * (SIX_MB - 2)).encode()  # echoed back: 6 MB each way
    response = client.invoke(FunctionName=worker["FunctionName"], Payload=exact)
    assert "FunctionError" not in response
    assert len(response["Payload"].read()) == SIX_MB

    with pytest.raises(ClientError) as refused:
        client.invoke(FunctionName=worker["FunctionName"], Payload=json.dumps("x" * (SIX_MB - 1)).encode())
    assert refused.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert calls(worker) == 1  # the refused request never reached the function


def test_invoke_response_over_6_mb_is_a_function_error(cloud: Any, make_function: Callable) -> None:
    worker = make_function(timeout=30)
    client = cloud.client("lambda")
    fits = client.invoke(FunctionName=worker["FunctionName"], Payload=json.dumps({"fake": {"bytes": SIX_MB}}))
    assert "FunctionError" not in fits  # moto alone refused from 5,999,967 bytes
    assert len(fits["Payload"].read()) == SIX_MB
    over = client.invoke(FunctionName=worker["FunctionName"], Payload=json.dumps({"fake": {"bytes": SIX_MB + 1}}))
    assert over["StatusCode"] == 200 and over["FunctionError"] == "Unhandled"
    assert json.loads(over["Payload"].read())["errorType"] == "Function.ResponseSizeTooLarge"


def test_a_refused_invoke_reaches_the_state_machine_as_lambda_error(cloud: Any, role_arn: str,
                                                                   make_function: Callable,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A state machine cannot send 6 MB (256 KiB is its own limit), so the Lambda quota is
    lowered here to see how a RequestTooLargeException reaches it."""
    monkeypatch.setattr(lambda_runtime, "MAX_SYNC_PAYLOAD_BYTES", 1000)
    worker = make_function()
    catch = [{"ErrorEquals": ["Lambda.RequestTooLargeException"], "ResultPath": "$.error", "Next": "Caught"}]
    caught = {"Type": "Pass", "Parameters": {"error.$": "$.error.Error"}, "End": True}
    legacy = machine(cloud, role_arn, {"Start": task(worker["FunctionArn"], Catch=catch), "Caught": caught})
    service = machine(cloud, role_arn, {"Start": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": worker["FunctionArn"], "Payload.$": "$"}, "Catch": catch, "End": True},
        "Caught": caught})
    for sm in (legacy, service):
        result = run(cloud, sm, {"padding": "x" * 2000})
        assert result["status"] == "SUCCEEDED", result
        assert json.loads(result["output"]) == {"error": "Lambda.RequestTooLargeException"}
        assert run(cloud, sm, {"small": True})["status"] == "SUCCEEDED"
    assert calls(worker) == 2  # only the small ones ran


# ------------------------------------------------------------------------------------------
# Lambda: memory, and timeouts / out-of-memory / exits under Lambda's own error names
# ------------------------------------------------------------------------------------------


def test_a_function_over_its_memory_size_is_killed_as_out_of_memory(cloud: Any, make_function: Callable) -> None:
    worker = make_function(memory=128)
    client = cloud.client("lambda")
    name = worker["FunctionName"]
    under = client.invoke(FunctionName=name, Payload=json.dumps({"fake": {"allocateMB": 48, "hold": 0.5}}))
    assert "FunctionError" not in under
    assert json.loads(under["Payload"].read()) == {"allocatedMB": 48}

    started = time.monotonic()
    over = client.invoke(FunctionName=name, Payload=json.dumps({"fake": {"allocateMB": 200, "hold": 30}}))
    assert time.monotonic() - started < 10  # killed, not left to finish
    assert over["FunctionError"] == "Unhandled"
    error = json.loads(over["Payload"].read())
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert "signal: killed" in error["errorMessage"]
    assert cloud.runtime.stats()[name]["processes"] == 0  # the killed sandbox is gone
    assert "128 MB: killed" in cloud.lambda_log(name)
    # The next invocation gets a new sandbox.
    again = client.invoke(FunctionName=name, Payload=json.dumps({"hello": 1}))
    assert json.loads(again["Payload"].read()) == {"hello": 1}


@pytest.mark.parametrize("resource", ["legacy", "lambda:invoke"])
def test_timeouts_out_of_memory_and_exits_reach_step_functions_under_lambdas_own_names(
        cloud: Any, role_arn: str, make_function: Callable, resource: str) -> None:
    """The names Lambda reports (Lambda Developer Guide, "Troubleshoot invocation issues in
    Lambda": Sandbox.Timedout), not the Lambda.Unknown of older pages; an error without a type
    is still Lambda.Unknown (sfn_quotas.py)."""
    worker = make_function(timeout=1, memory=128)
    if resource == "legacy":
        start = task(worker["FunctionArn"], InputPath="$.event")
    else:
        start = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
                 "Parameters": {"FunctionName": worker["FunctionArn"], "Payload.$": "$.event"}}
    start["Catch"] = [{"ErrorEquals": ["Lambda.Unknown", *sfn_quotas.LAMBDA_SANDBOX_ERROR_TYPES],
                       "ResultPath": "$.error", "Next": "Caught"}]
    sm = machine(cloud, role_arn, {"Start": start,
                                   "Caught": {"Type": "Pass", "Parameters": {"error.$": "$.error.Error"}, "End": True}})
    for event, error in (({"fake": {"sleep": 3}}, "Sandbox.Timedout"),
                         ({"fake": {"allocateMB": 200, "hold": 30}}, "Runtime.OutOfMemory"),
                         ({"fake": {"exit": 1}}, "Runtime.ExitError"),
                         ({"fake": {"error": ""}}, "Lambda.Unknown")):
        result = run(cloud, sm, {"event": event})
        assert result["status"] == "SUCCEEDED", (event, result)
        assert json.loads(result["output"]) == {"error": error}, event

    # An error the function reports itself keeps its name.
    uncaught = run(cloud, sm, {"event": {"fake": {"error": "InvalidInput"}}})
    assert outcome(uncaught) == ("FAILED", "InvalidInput")
