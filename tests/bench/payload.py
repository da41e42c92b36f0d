"""The fan-out's payloads at mass failure, computed from the rendered deploy definition (no cloud).

Step Functions refuses a state input or output, or a task's input or result, over 262,144 bytes
(UTF-8) with States.DataLimitExceeded, which no Catch sees: a push whose fan-out outgrows it ends
without its summary. The largest payloads of one push are where the Map's results meet the plan:
the state "Sum up the services" receives (plan + every iteration's result) and the summary task's
input (its Parameters over that state). This module builds them as the definition would, for N
services that all end the same way, with names as long as asked, and measures them the way
Step Functions does (compact JSON, UTF-8).

Used by the benchmark ("payload" rows) and by tests/test_payload.py (the worst case, fast).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "statemachine" / "deploy.asl.json"
QUOTA = 262_144  # bytes: a state's input or output, a task's input or result

# ECS names (ECS API reference, CreateCluster clusterName / CreateService serviceName): "Up to 255
# letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
MAX_ECS_NAME = 255
# The longest partition and Region names the ARNs can carry (aws-us-gov, ap-southeast-5 /
# us-gov-west-1), an account id, and Step Functions' 80-character state machine and execution names.
LONGEST_PARTITION, LONGEST_REGION, ACCOUNT = "aws-us-gov", "ap-southeast-5", "123456789012"
MAX_SFN_NAME = 80
# The plan's own text, bounded by what it is made of: the reason names the repository (256), tag
# (128) and digest (71); warnings are capped at 20 (MAX_PLAN_WARNINGS), each naming a service and
# a tag value (256).
MAX_REASON = 600
MAX_WARNINGS, MAX_WARNING = 20, 2 * MAX_ECS_NAME + 300
# The error a failed start hands on: StartExecution's exceptions as the integration names them
# (the longest, StepFunctions.StateMachineDoesNotExistException, has 47 characters) or States.*.
MAX_START_ERROR = 48


def service_arn(cluster: int, service: int) -> str:
    return (f"arn:{LONGEST_PARTITION}:ecs:{LONGEST_REGION}:{ACCOUNT}:service/"
            f"{'c' * cluster}/{'s' * service}")


def size(value: Any) -> int:
    """Bytes of a value as Step Functions measures payloads: compact JSON, UTF-8."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _resolve(path: str, state: Any, context: dict) -> Any:
    root, rest = (context, path[2:]) if path.startswith("$$") else (state, path[1:])
    value = root
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", rest):
        key, index = part
        value = value[int(index)] if index else value[key]
    return value


def evaluate(template: Any, state: Any, context: dict) -> Any:
    """A Parameters / ResultSelector template over a state (paths only; no intrinsics needed)."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if value.startswith("States."):
                    raise ValueError(f"intrinsic functions are not modelled: {value}")
                out[key[:-2]] = _resolve(value, state, context)
            else:
                out[key] = evaluate(value, state, context)
        return out
    if isinstance(template, list):
        return [evaluate(item, state, context) for item in template]
    return template


def _definition() -> dict:
    return json.loads(DEPLOY.read_text())


def iteration_results(definition: dict | None = None) -> dict[str, Any]:
    """The result of each way a Map iteration ends, with its inputs as long as they can be."""
    definition = definition or _definition()
    item = definition["States"]["Deploy each service"]["ItemProcessor"]["States"]
    start = item["Deploy the service"]
    longest_status = max(("SUCCEEDED", "ROLLED_BACK", "ROLLBACK_FAILED", "SKIPPED", "SUPERSEDED", "FAILED"), key=len)
    results: dict[str, Any] = {
        "Deploy the service": evaluate(start["ResultSelector"], {"Output": {"status": longest_status}}, {})}
    failure = {"failure": {"Error": "E" * MAX_START_ERROR, "Cause": "{}"}}
    for name, state in item.items():
        if state["Type"] == "Pass" and state.get("End"):
            results[name] = state["Result"] if "Result" in state else evaluate(state["Parameters"], failure, {})
    return results


@dataclass
class FanOutPayload:
    services: int
    arn_length: int
    map_results: int  # bytes of the Map's results ($.results)
    largest_state: int  # the state "Sum up the services" receives
    summary_input: int  # the summary task's input (its Parameters)

    @property
    def largest(self) -> int:
        return max(self.largest_state, self.summary_input)

    @property
    def fits(self) -> bool:
        return self.largest < QUOTA


def fan_out_payload(count: int, ending: str = "Child rolled back", cluster: int = MAX_ECS_NAME,
                    service: int = MAX_ECS_NAME, definition: dict | None = None) -> FanOutPayload:
    """The payloads of a push to `count` services that all end the way `ending` (a Map end state)
    says, with cluster and service names of the lengths given."""
    definition = definition or _definition()
    result = iteration_results(definition)[ending]
    services = [service_arn(cluster, service)[:-len(str(n))] + str(n) for n in range(count)]
    parent = f"arn:{LONGEST_PARTITION}:states:{LONGEST_REGION}:{ACCOUNT}:execution:{'d' * MAX_SFN_NAME}:{'e' * MAX_SFN_NAME}"
    plan = {"action": "deploy", "dryRun": False, "reason": "r" * MAX_REASON, "targets": [], "maxConcurrency": 40,
            "warnings": ["w" * MAX_WARNING] * MAX_WARNINGS, "services": services, "pushedAt": 1.8e9}
    state = {**plan, "results": [result] * count}
    machine = f"arn:{LONGEST_PARTITION}:states:{LONGEST_REGION}:{ACCOUNT}:stateMachine:{'s' * MAX_SFN_NAME}"
    summary = definition["States"]["Sum up the services"]["Parameters"]
    summary = json.loads(json.dumps(summary).replace("${ServiceStateMachineArn}", machine))
    task_input = evaluate(summary, state, {"Execution": {"Id": parent}})
    return FanOutPayload(count, len(service_arn(cluster, service)), size(state["results"]), size(state), size(task_input))


def largest_arn_that_fits(count: int, ending: str = "Child rolled back") -> int:
    """The longest service ARN with which `count` services still fit (names split evenly)."""
    low, high = 0, 2 * MAX_ECS_NAME
    while low < high:
        mid = (low + high + 1) // 2
        if fan_out_payload(count, ending, mid // 2, mid - mid // 2).fits:
            low = mid
        else:
            high = mid - 1
    return len(service_arn(low // 2, low - low // 2))
