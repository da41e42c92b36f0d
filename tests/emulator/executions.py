"""Step Functions helpers shared by the emulator tests: create a state machine, run it to its end."""

from __future__ import annotations

import json
import uuid
from typing import Any

from polling import wait_until


def create_machine(cloud: Any, role_arn: str, definition: dict[str, Any], prefix: str = "emulator-sm") -> str:
    return cloud.client("stepfunctions").create_state_machine(
        name=f"{prefix}-{uuid.uuid4().hex[:10]}", definition=json.dumps(definition), roleArn=role_arn
    )["stateMachineArn"]


def finished_execution(sfn: Any, execution_arn: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        description = sfn.describe_execution(executionArn=execution_arn)
        return description if description["status"] != "RUNNING" else None

    return wait_until(f"execution {execution_arn}", done, timeout, interval=0.1)


def run_execution(cloud: Any, machine_arn: str, execution_input: Any, timeout: float = 40) -> dict[str, Any]:
    """Starts an execution and returns DescribeExecution once it has ended."""
    sfn = cloud.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(execution_input))["executionArn"]
    return finished_execution(sfn, execution, timeout)
