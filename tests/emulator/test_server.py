"""The local cloud itself (tests/localcloud), independent of deckhand's logic:
Lambda Runtime API emulation, EventBridge delivery, ECR push events, moto's ASL
interpreter with the local patches, the SAM stack deployer and the CLI.

Functions here are fakes (fixtures/fake_bootstrap.py, a Lambda custom runtime in
plain Python), so no Rust build is needed.

Run: .venv/bin/python -m pytest tests/emulator/test_server.py -q
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest

from executions import create_machine as _machine, finished_execution, run_execution as _run
from fake_lambda import launcher
from localcloud.stack import Deployer, StackError, apply_definition_substitutions, load_template

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ACCOUNT = "123456789012"
REGION = "us-east-1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def manifest(seed: str, annotations: dict[str, str] | None = None) -> str:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                   "digest": "sha256:" + uuid.uuid5(uuid.NAMESPACE_URL, seed).hex * 2},
        "layers": [],
    }
    if annotations:
        body["annotations"] = annotations
    return json.dumps(body)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_records(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# Fixtures cloud, role_arn and make_function: conftest.py in this directory.


def invoke(cloud: Any, function_name: str, event: Any) -> tuple[dict[str, Any], Any]:
    response = cloud.client("lambda").invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
    return response, json.loads(response["Payload"].read())


# ------------------------------------------------------------------------------------------
# Lambda Runtime API
# ------------------------------------------------------------------------------------------


def test_invoke_runs_the_bootstrap_behind_the_runtime_api(cloud: Any, make_function: Callable) -> None:
    function = make_function(timeout=7, memory=256, env={"GREETING": "hello"})
    name = function["FunctionName"]

    response, payload = invoke(cloud, name, {"any": ["json", 1]})
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert payload == {"any": ["json", 1]}

    before_ms = time.time() * 1000
    _, described = invoke(cloud, name, {"fake": {"describe": True}})
    env, headers = described["env"], described["headers"]
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["AWS_ENDPOINT_URL"] == cloud.endpoint
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == REGION
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert re.match(r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["_HANDLER"] == "bootstrap"
    assert env["GREETING"] == "hello"
    assert "AWS_LAMBDA_LOG_FORMAT" not in env  # no LoggingConfig: Text
    uuid.UUID(headers["Lambda-Runtime-Aws-Request-Id"])
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == function["FunctionArn"]
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    deadline = int(headers["Lambda-Runtime-Deadline-Ms"])
    assert before_ms + 6000 < deadline < time.time() * 1000 + 7000

    # One warm process served both invocations; its output is in the function's log.
    assert cloud.runtime.stats()[name] == {"processes": 1, "idle": 1}
    log = cloud.lambda_log(name)
    assert log.count("START RequestId:") == 2 and log.count("REPORT RequestId:") == 2
    assert f"fake {name} handling" in log


def test_function_error_comes_back_like_aws(cloud: Any, make_function: Callable) -> None:
    name = make_function()["FunctionName"]
    response, payload = invoke(cloud, name, {"fake": {"error": "InvalidInput", "message": "field 'image' is missing"}})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amz-function-error"] == "Unhandled"
    assert payload == {"errorType": "InvalidInput", "errorMessage": "field 'image' is missing"}

    # The sandbox survives a handled error.
    _, again = invoke(cloud, name, {"fake": {"return": "ok"}})
    assert again == "ok"


def test_process_exit_init_error_and_missing_bootstrap(cloud: Any, make_function: Callable) -> None:
    name = make_function()["FunctionName"]
    response, payload = invoke(cloud, name, {"fake": {"exit": 3}})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload["errorMessage"]
    _, payload = invoke(cloud, name, {"fake": {"return": 1}})  # a fresh sandbox takes over
    assert payload == 1

    broken = make_function(env={"FAKE_INIT_ERROR": "ConfigError"})["FunctionName"]
    response, payload = invoke(cloud, broken, {})
    assert response["FunctionError"] == "Unhandled"
    assert payload == {"errorType": "ConfigError", "errorMessage": "init failed"}

    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("README", "no bootstrap here")
    missing = make_function(Code={"ZipFile": empty.getvalue()})["FunctionName"]
    response, payload = invoke(cloud, missing, {})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.InvalidEntrypoint"


def test_concurrent_invocations_start_more_processes(cloud: Any, make_function: Callable) -> None:
    name = make_function()["FunctionName"]
    results: list[Any] = []

    def call() -> None:
        results.append(invoke(cloud, name, {"fake": {"sleep": 1.5}})[1])

    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    pids = {result["pid"] for result in results}
    assert len(pids) == 3, results  # three sandboxes, in parallel
    assert elapsed < 4.4, f"invocations were serialised ({elapsed:.1f}s)"
    assert cloud.runtime.stats()[name] == {"processes": 3, "idle": 3}
    _, again = invoke(cloud, name, {"fake": {}})
    assert again["pid"] in pids  # warm sandboxes are reused


def test_timeout_kills_the_sandbox(cloud: Any, make_function: Callable) -> None:
    name = make_function(timeout=1)["FunctionName"]
    _, first = invoke(cloud, name, {"fake": {}})
    started = time.monotonic()
    response, payload = invoke(cloud, name, {"fake": {"sleep": 10}})
    elapsed = time.monotonic() - started
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert elapsed < 3
    wait_until(lambda: not _alive(first["pid"]), 5, "the timed-out process to be gone")
    _, after = invoke(cloud, name, {"fake": {}})
    assert after["pid"] != first["pid"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose. (Reading /proc of a process that is
    # exiting can fail with ESRCH, i.e. ProcessLookupError.)
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_event_invocation_is_asynchronous(cloud: Any, make_function: Callable) -> None:
    function = make_function()
    started = time.monotonic()
    response = cloud.client("lambda").invoke(
        FunctionName=function["FunctionName"], InvocationType="Event",
        Payload=json.dumps({"fake": {"sleep": 1}, "n": 7}).encode(),
    )
    assert response["StatusCode"] == 202
    assert time.monotonic() - started < 0.9
    records = wait_until(lambda: read_records(function["RecordFile"]), 10, "the async invocation")
    assert records == [{"fake": {"sleep": 1}, "n": 7}]


# ------------------------------------------------------------------------------------------
# ECR -> EventBridge -> targets
# ------------------------------------------------------------------------------------------


@pytest.fixture
def repository(cloud: Any) -> dict[str, Any]:
    return cloud.client("ecr").create_repository(repositoryName=unique("emulator/app"))["repository"]


def _rule_for_repository(cloud: Any, repository_name: str, targets: list[dict[str, Any]], **extra: Any) -> str:
    events = cloud.client("events")
    name = unique("emulator-rule")
    pattern = {"source": ["aws.ecr"], "detail-type": ["ECR Image Action"],
               "detail": {"repository-name": [repository_name], "action-type": ["PUSH"], "result": ["SUCCESS"]}}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern), **extra)
    events.put_targets(Rule=name, Targets=targets)
    return name


def _queue(cloud: Any) -> tuple[str, str]:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName=unique("emulator-events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _receive(cloud: Any, url: str, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    bodies: list[dict[str, Any]] = []

    def poll() -> bool:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        bodies.extend(json.loads(m["Body"]) for m in messages)
        return len(bodies) >= count

    wait_until(poll, timeout, f"{count} message(s) on {url}", interval=0)
    return bodies


def test_ecr_push_emits_the_aws_event_to_an_sqs_target(cloud: Any, repository: dict[str, Any]) -> None:
    url, queue_arn = _queue(cloud)
    _rule_for_repository(cloud, repository["repositoryName"], [{"Id": "queue", "Arn": queue_arn}])

    image = cloud.client("ecr").put_image(
        repositoryName=repository["repositoryName"], imageManifest=manifest("v1"), imageTag="v1"
    )["image"]
    (event,) = _receive(cloud, url)

    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    uuid.UUID(event["id"])
    assert RFC3339.match(event["time"]), event["time"]
    assert {k: v for k, v in event.items() if k not in ("id", "time")} == {
        "version": "0",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "region": REGION,
        "resources": [repository["repositoryArn"]],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repository["repositoryName"],
            "image-digest": image["imageId"]["imageDigest"],
            "action-type": "PUSH",
            "image-tag": "v1",
            "manifest-media-type": OCI_MANIFEST,
        },
    }
    # The registry's digest: SHA-256 of the manifest as pushed.
    pushed = manifest("v1")
    assert image["imageId"]["imageDigest"] == "sha256:" + hashlib.sha256(pushed.encode()).hexdigest()

    # An untagged push carries an empty tag, as AWS's events do.
    cloud.client("ecr").put_image(repositoryName=repository["repositoryName"], imageManifest=manifest("untagged"))
    (untagged,) = _receive(cloud, url)
    assert untagged["detail"]["image-tag"] == ""


def test_re_pushing_a_tag_keeps_the_previous_image_by_digest(cloud: Any, repository: dict[str, Any]) -> None:
    """ECR moves the tag; moto deleted the previous image (patched in events.py)."""
    ecr, name = cloud.client("ecr"), repository["repositoryName"]
    first = ecr.put_image(repositoryName=name, imageManifest=manifest("first"), imageTag="main")["image"]["imageId"]
    second = ecr.put_image(repositoryName=name, imageManifest=manifest("second"), imageTag="main")["image"]["imageId"]
    assert first["imageDigest"] != second["imageDigest"]
    images = {d["imageDigest"]: d.get("imageTags", []) for d in ecr.describe_images(repositoryName=name)["imageDetails"]}
    assert images == {first["imageDigest"]: [], second["imageDigest"]: ["main"]}
    pulled = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageDigest": first["imageDigest"]}])["images"]
    assert json.loads(pulled[0]["imageManifest"]) == json.loads(manifest("first"))


def test_rule_delivers_to_a_lambda_target_with_input_path(cloud: Any, repository: dict[str, Any],
                                                          make_function: Callable) -> None:
    function = make_function()
    _rule_for_repository(cloud, repository["repositoryName"], [
        {"Id": "whole", "Arn": function["FunctionArn"]},
        {"Id": "detail", "Arn": function["FunctionArn"], "InputPath": "$.detail"},
        {"Id": "constant", "Arn": function["FunctionArn"], "Input": json.dumps({"constant": True})},
    ])
    cloud.client("ecr").put_image(repositoryName=repository["repositoryName"], imageManifest=manifest("lambda"), imageTag="main")

    records = wait_until(lambda: len(read_records(function["RecordFile"])) >= 3 and read_records(function["RecordFile"]),
                         15, "three deliveries to the function")
    whole = next(r for r in records if "detail-type" in r)
    detail = next(r for r in records if "repository-name" in r)
    assert {"constant": True} in records
    assert whole["detail"] == detail
    assert detail["image-tag"] == "main"


def test_rule_delivers_to_a_step_functions_target(cloud: Any, repository: dict[str, Any], role_arn: str) -> None:
    sfn = cloud.client("stepfunctions")
    definition = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(name=unique("emulator-target"), definition=json.dumps(definition),
                                       roleArn=role_arn)["stateMachineArn"]
    _rule_for_repository(cloud, repository["repositoryName"],
                         [{"Id": "sfn", "Arn": machine, "RoleArn": role_arn}])
    cloud.client("ecr").put_image(repositoryName=repository["repositoryName"], imageManifest=manifest("sfn"), imageTag="prod")

    executions = wait_until(lambda: sfn.list_executions(stateMachineArn=machine)["executions"], 10, "an execution")
    assert len(executions) == 1
    result = finished_execution(sfn, executions[0]["executionArn"])
    assert result["status"] == "SUCCEEDED"
    started_with = json.loads(result["input"])
    assert started_with["source"] == "aws.ecr" and started_with["account"] == ACCOUNT
    assert started_with["detail"]["repository-name"] == repository["repositoryName"]
    assert json.loads(result["output"]) == started_with


def test_disabled_rule_and_non_matching_events_deliver_nothing(cloud: Any, repository: dict[str, Any]) -> None:
    url, queue_arn = _queue(cloud)
    disabled = _rule_for_repository(cloud, repository["repositoryName"], [{"Id": "q", "Arn": queue_arn}], State="DISABLED")
    cloud.client("ecr").put_image(repositoryName=repository["repositoryName"], imageManifest=manifest("off"), imageTag="x")
    assert cloud.wait_for_deliveries()
    assert not cloud.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")
    cloud.client("events").enable_rule(Name=disabled)
    cloud.client("ecr").put_image(repositoryName=repository["repositoryName"], imageManifest=manifest("on"), imageTag="y")
    assert _receive(cloud, url)[0]["detail"]["image-tag"] == "y"


def test_service_events_reach_rules_like_put_events(cloud: Any) -> None:
    """The path the ECS simulator's `ECS Deployment State Change` events take."""
    url, queue_arn = _queue(cloud)
    service_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{unique('cluster')}/web"
    events = cloud.client("events")
    rule = unique("emulator-ecs")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.ecs"], "resources": [service_arn]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    detail = {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED", "deploymentId": "ecs-svc/1"}
    cloud.emit_event({"Source": "aws.ecs", "DetailType": "ECS Deployment State Change",
                      "Resources": [service_arn], "Detail": json.dumps(detail)})
    (event,) = _receive(cloud, url)
    assert event["detail-type"] == "ECS Deployment State Change"
    assert event["resources"] == [service_arn] and event["detail"] == detail


def test_control_routes(cloud: Any) -> None:
    with urllib.request.urlopen(f"{cloud.endpoint}/_localcloud/health") as response:
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["endpoint"] == cloud.endpoint
    assert health["simulator"] == (cloud.sim is not None)

    request = urllib.request.Request(
        f"{cloud.endpoint}/_localcloud/sim/image-behaviour", method="POST",
        data=json.dumps({"image": "sha256:" + "b" * 64, "health": "unhealthy", "readySeconds": 3}).encode(),
    )
    if cloud.sim is None:
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request)
        assert error.value.code == 404
    else:
        with urllib.request.urlopen(request) as response:
            assert json.loads(response.read()) == {"image": "sha256:" + "b" * 64}


# ------------------------------------------------------------------------------------------
# Step Functions: moto's interpreter running fake functions
# ------------------------------------------------------------------------------------------


def test_state_machine_with_wait_choice_map_retry_catch(cloud: Any, role_arn: str, make_function: Callable) -> None:
    worker = make_function()
    mapper = make_function()
    key = uuid.uuid4().hex
    definition = {
        "QueryLanguage": "JSONPath",
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"threshold": 2, "label": "run"}, "Next": "Flaky"},
            "Flaky": {
                "Type": "Task", "Resource": worker["FunctionArn"],
                "Parameters": {"fake": {"failTimes": 2, "key": key, "error": "AwsTransient"}},
                "Retry": [{"ErrorEquals": ["AwsTransient"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1.0}],
                "ResultPath": "$.flaky", "Next": "Fan out",
            },
            "Fan out": {
                "Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.concurrency",
                "ItemSelector": {"fake": {"sleep": 0.5, "return.$": "$$.Map.Item.Value"}},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Work",
                                  "States": {"Work": {"Type": "Task", "Resource": mapper["FunctionArn"], "End": True}}},
                "ResultPath": "$.results", "Next": "Enough?",
            },
            "Enough?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$threshold", "NumericEquals": 2, "Next": "Pause"}],
                "Default": "Wrong turn",
            },
            "Pause": {"Type": "Wait", "SecondsPath": "$.pause", "Next": "Validate"},
            "Validate": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": worker["FunctionArn"],
                               "Payload": {"fake": {"error": "InvalidInput", "message": "bad field"}}},
                "Catch": [{"ErrorEquals": ["InvalidInput"], "ResultPath": "$.caught", "Next": "Summarise"}],
                "Next": "Wrong turn",
            },
            "Summarise": {
                "Type": "Pass",
                "Parameters": {
                    "flaky.$": "$.flaky", "results.$": "$.results", "caught.$": "$.caught.Error",
                    "label.$": "States.Format('{}-{}', $label, $threshold)",
                    "started.$": "$$.Execution.StartTime",
                },
                "End": True,
            },
            "Wrong turn": {"Type": "Fail", "Error": "WrongTurn"},
        },
    }
    machine = _machine(cloud, role_arn, definition)
    started = time.monotonic()
    result = _run(cloud, machine, {"items": [1, 2, 3, 4], "concurrency": 2, "pause": 1})
    elapsed = time.monotonic() - started

    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", output.pop("started"))
    assert output == {"flaky": {"calls": 3}, "results": [1, 2, 3, 4], "caught": "InvalidInput", "label": "run-2"}
    # 2 retries of 1 s, 4 items of 0.5 s two at a time, a 1 s wait.
    assert elapsed >= 3.9
    assert cloud.runtime.stats()[mapper["FunctionName"]]["processes"] == 2  # MaxConcurrency held

    history = cloud.client("stepfunctions").get_execution_history(executionArn=result["executionArn"])["events"]
    failures = [e["lambdaFunctionFailedEventDetails"]["error"] for e in history if e["type"] == "LambdaFunctionFailed"]
    assert failures == ["AwsTransient", "AwsTransient"]


def test_uncaught_function_error_names_the_execution_error(cloud: Any, role_arn: str, make_function: Callable) -> None:
    worker = make_function()
    machine = _machine(cloud, role_arn, {"StartAt": "Plan", "States": {
        "Plan": {"Type": "Task", "Resource": worker["FunctionArn"], "End": True}}})
    result = _run(cloud, machine, {"fake": {"error": "InvalidInput", "message": "'image' is required"}})
    assert result["status"] == "FAILED"
    assert result["error"] == "InvalidInput"
    assert json.loads(result["cause"]) == {"errorType": "InvalidInput", "errorMessage": "'image' is required"}


def test_fail_state_error_path_and_cause_path(cloud: Any, role_arn: str) -> None:
    machine = _machine(cloud, role_arn, {"StartAt": "Fail", "States": {
        "Fail": {"Type": "Fail", "ErrorPath": "$.error", "CausePath": "$.cause"}}})
    result = _run(cloud, machine, {"error": "DeploymentRolledBack", "cause": "web: targets unhealthy"})
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "DeploymentRolledBack", "web: targets unhealthy")


def test_states_errors_leave_map_and_parallel_by_name(cloud: Any, role_arn: str, make_function: Callable) -> None:
    """moto turned these into States.Runtime ("Custom Error Names MUST NOT begin
    with the prefix 'States.'"); patched in server.install_sfn_patches."""
    worker = make_function()
    slow = {"Type": "Task", "Resource": worker["FunctionArn"], "Parameters": {"fake": {"sleep": 3}},
            "TimeoutSeconds": 1, "End": True}
    machine = _machine(cloud, role_arn, {"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemsPath": "$.items",
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Slow", "States": {"Slow": slow}},
                 "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Wrong"},
                           {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "Both"}],
                 "Next": "Wrong"},
        # State names are unique in the whole definition, nested ones included (InvalidDefinition).
        "Both": {"Type": "Parallel", "Branches": [{"StartAt": "Slow again", "States": {"Slow again": slow}}], "End": True},
        "Wrong": {"Type": "Fail", "Error": "WrongTurn"}}})
    result = _run(cloud, machine, {"items": [1]})
    assert (result["status"], result["error"]) == ("FAILED", "States.Timeout")
    history = cloud.client("stepfunctions").get_execution_history(executionArn=result["executionArn"])["events"]
    assert any(e["type"] == "ParallelStateEntered" for e in history)  # the Map's timeout was caught


@pytest.mark.parametrize("case, states, execution_input, error", [
    ("a Choice on a missing field", {
        "Start": {"Type": "Choice", "Choices": [{"Variable": "$.dryRun", "BooleanEquals": True, "Next": "Done"}],
                  "Default": "Done"},
        "Done": {"Type": "Succeed"}}, {}, "States.Runtime"),
    ("a Catch on States.ALL around a path that selects nothing", {
        "Start": {"Type": "Task", "Resource": "FUNCTION", "Parameters": {"x.$": "$.missing"},
                  "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}], "End": True},
        "Done": {"Type": "Succeed"}}, {}, "States.Runtime"),
    ("a Choice without Default that matches nothing", {
        "Start": {"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEquals": "x", "Next": "Done"}]},
        "Done": {"Type": "Succeed"}}, {"a": "b"}, "States.NoChoiceMatched"),
])
def test_definition_errors_fail_the_execution_like_aws(cloud: Any, role_arn: str, make_function: Callable,
                                                       case: str, states: dict, execution_input: Any,
                                                       error: str) -> None:
    """moto was lenient here (patched in server._sfn_runtime_error_patches)."""
    text = json.dumps({"StartAt": "Start", "States": states}).replace("FUNCTION", make_function()["FunctionArn"])
    result = _run(cloud, _machine(cloud, role_arn, json.loads(text)), execution_input)
    assert (result["status"], result["error"]) == ("FAILED", error), case
    # The IsPresent test is how a definition checks for a field.
    machine = _machine(cloud, role_arn, {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.dryRun", "IsPresent": True, "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Fail", "Error": "Unexpected"}, "No": {"Type": "Succeed"}}})
    assert _run(cloud, machine, {})["status"] == "SUCCEEDED"


def test_unnamed_executions_get_unique_names(cloud: Any, role_arn: str) -> None:
    machine = _machine(cloud, role_arn, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    first, second = _run(cloud, machine, {}), _run(cloud, machine, {})
    assert first["executionArn"] != second["executionArn"]
    for result in (first, second):
        uuid.UUID(result["executionArn"].rsplit(":", 1)[1])


# ------------------------------------------------------------------------------------------
# the stack from a SAM template
# ------------------------------------------------------------------------------------------


def fixture_project(directory: Path) -> Path:
    """The fixture template laid out like the project: template, state machine
    file, and cargo-lambda's target/lambda/<Binary>/bootstrap (fakes)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "template.yaml", directory / "template.yaml")
    shutil.copytree(FIXTURES / "statemachine", directory / "statemachine")
    for resource in load_template(directory / "template.yaml")["Resources"].values():
        binary = (resource.get("Metadata") or {}).get("BuildProperties", {}).get("Binary")
        if binary:
            bootstrap = directory / "target" / "lambda" / binary / "bootstrap"
            bootstrap.parent.mkdir(parents=True, exist_ok=True)
            bootstrap.write_text(launcher())
            bootstrap.chmod(0o755)
    return directory / "template.yaml"


def test_stack_from_the_fixture_template(cloud: Any, tmp_path: Path) -> None:
    template = fixture_project(tmp_path)
    stack_name = unique("fixture")
    stack = cloud.deploy(template, {"PollIntervalSeconds": "1", "Clusters": "prod,staging"}, stack_name=stack_name)
    resources = {logical_id: physical.ref for logical_id, physical in stack.resources.items()}
    lam, sfn, events = cloud.client("lambda"), cloud.client("stepfunctions"), cloud.client("events")

    table = resources["StateTable"]
    assert stack.outputs["StateTableName"] == table
    assert stack.outputs["ClusterList"] == "prod,staging"
    ttl = cloud.client("dynamodb").describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}

    plan = lam.get_function_configuration(FunctionName=resources["PlanFunction"])
    assert stack.outputs["PlanFunctionArn"] == plan["FunctionArn"]
    assert (plan["Runtime"], plan["Handler"], plan["Timeout"], plan["MemorySize"]) == ("provided.al2023", "bootstrap", 10, 256)
    assert plan["Environment"]["Variables"] == {
        "STATE_TABLE": table,
        "STACK": f"{stack_name}@{REGION}/{ACCOUNT}",
        "CLUSTERS": "prod,staging",
        "FIRST_CLUSTER": "prod",
    }
    notify = lam.get_function_configuration(FunctionName=resources["NotifyFunction"])
    assert notify["Timeout"] == 5 and "CLUSTERS" not in notify["Environment"]["Variables"]

    logs = cloud.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{stack_name}-plan")["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in logs] == [(f"/aws/lambda/{stack_name}-plan", 14)]

    role = cloud.client("iam").get_role(RoleName=resources["PlanFunctionRole"])["Role"]
    assert plan["Role"] == role["Arn"]
    assert len(cloud.client("iam").list_role_policies(RoleName=resources["PlanFunctionRole"])["PolicyNames"]) == 2

    machine_arn = stack.outputs["DeployStateMachineArn"]
    machine = sfn.describe_state_machine(stateMachineArn=machine_arn)
    assert machine["name"] == f"{stack_name}-deploy"
    definition = json.loads(machine["definition"])
    assert "${" not in machine["definition"]
    assert definition["States"]["Plan"]["Resource"] == plan["FunctionArn"]
    assert definition["States"]["Wait"]["Seconds"] == 1
    assert definition["States"]["Notify"]["Parameters"]["FunctionName"] == notify["FunctionArn"]

    rule = resources["DeployStateMachineEcrPush"]
    assert json.loads(events.describe_rule(Name=rule)["EventPattern"])["source"] == ["aws.ecr"]
    assert [t["Arn"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]] == [machine_arn]

    # The plan function runs with the template's LoggingConfig.
    _, described = invoke(cloud, resources["PlanFunction"], {"fake": {"describe": True}})
    assert described["env"]["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
    assert described["env"]["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{stack_name}-plan"

    # A push runs the state machine end to end through the fake functions.
    repository = cloud.client("ecr").create_repository(repositoryName=unique("fixture-app"))["repository"]
    try:
        cloud.client("ecr").put_image(repositoryName=repository["repositoryName"], imageManifest=manifest("fx"), imageTag="v1")

        def our_execution() -> dict[str, Any] | None:
            for execution in sfn.list_executions(stateMachineArn=machine_arn)["executions"]:
                description = sfn.describe_execution(executionArn=execution["executionArn"])
                if repository["repositoryName"] in description["input"]:
                    return description
            return None

        started = wait_until(our_execution, 10, "the fixture state machine to start")
        result = finished_execution(sfn, started["executionArn"])
        assert result["status"] == "SUCCEEDED", result
        output = json.loads(result["output"])
        assert output["polled"] == 1
        assert output["plan"]["table"] == table
        assert output["plan"]["event"]["detail"]["repository-name"] == repository["repositoryName"]
    finally:
        # The session's cloud is shared: stop this stack reacting to other tests' pushes.
        events.disable_rule(Name=rule)


def test_stack_parameters_are_validated() -> None:
    template = load_template(FIXTURES / "template.yaml")
    deployer = Deployer(lambda service: None, "s", REGION, ACCOUNT)
    values = deployer.parameter_values(template, {"Clusters": "a,b", "LogFormat": "Text"})
    assert values["Clusters"] == ["a", "b"] and values["LogFormat"] == "Text" and values["PollIntervalSeconds"] == "15"
    with pytest.raises(StackError, match="not declared"):
        deployer.parameter_values(template, {"Nope": "1"})
    with pytest.raises(StackError, match="not one of"):
        deployer.parameter_values(template, {"LogFormat": "XML"})
    with pytest.raises(StackError, match="not a number"):
        deployer.parameter_values(template, {"PollIntervalSeconds": "soon"})
    assert apply_definition_substitutions('{"Seconds": ${N}, "R": "${A}", "K": "${Unknown}"}', {"N": 5, "A": "arn"}) \
        == '{"Seconds": 5, "R": "arn", "K": "${Unknown}"}'


# ------------------------------------------------------------------------------------------
# the CLI
# ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_up_prints_ready_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    template = fixture_project(tmp_path / "project")
    port = _free_port()
    command = [str(ROOT / "scripts" / "localcloud"), "up", "--port", str(port), "--no-build",
               "--template", str(template), "--run-dir", str(tmp_path / "run"), "--param", "PollIntervalSeconds=1"]
    started = time.monotonic()
    with open(tmp_path / "stderr", "wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   start_new_session=True)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=15)
        ready_after = time.monotonic() - started
        assert lines and lines[0] == f"localcloud ready on http://127.0.0.1:{port}\n", \
            f"no ready line within 15 s: {(tmp_path / 'stderr').read_text()[-3000:]}"
        print(f"localcloud ready after {ready_after:.1f}s")

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localcloud/health") as response:
            assert json.loads(response.read())["status"] == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localcloud/stack") as response:
            plan_name = json.loads(response.read())["Resources"]["PlanFunction"]["PhysicalResourceId"]
        # Start a function process, so that stopping has one to clean up.
        import boto3

        lam = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                           aws_access_key_id="x", aws_secret_access_key="x")
        described = json.loads(lam.invoke(FunctionName=plan_name, Payload=b'{"fake": {"describe": true}}')["Payload"].read())
        function_pid = described["pid"]
        assert _alive(function_pid)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert not _alive(function_pid), "a function process outlived the local cloud"
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)  # nothing left in the CLI's process group
        assert (tmp_path / "run" / "logs" / f"{plan_name}.log").exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
