"""Smoke test of the real stack in the local cloud: template.yaml deployed, the
real Rust functions behind Lambda, an ECR push delivered by EventBridge.

A push to a repository that no ECS service tracks must start the deploy state
machine, run the real plan function, and end SUCCEEDED without deploying anything.

Needs template.yaml, statemachine/ and the functions built (cargo lambda build
--release, or LOCALCLOUD_BUILD=1 to let the fixture build them).

Run: .venv/bin/python -m pytest tests/emulator/test_smoke.py -q
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

pytestmark = pytest.mark.timeout(240)


def _binaries() -> dict[str, Path]:
    """Logical id of each cargo-lambda function → the bootstrap it runs."""
    from localcloud.stack import load_template

    resources = load_template(TEMPLATE).get("Resources", {})
    return {
        logical_id: ROOT / "target" / "lambda" / resource["Metadata"]["BuildProperties"]["Binary"] / "bootstrap"
        for logical_id, resource in resources.items()
        if (resource.get("Metadata") or {}).get("BuildMethod") == "rust-cargolambda"
    }


def _missing() -> list[str]:
    missing = [str(p.relative_to(ROOT)) for p in (TEMPLATE, ROOT / "statemachine") if not p.exists()]
    if missing:
        return missing
    if os.environ.get("LOCALCLOUD_BUILD") == "1":
        return []  # the fixture builds them
    return [str(p.relative_to(ROOT)) for p in _binaries().values() if not p.exists()]


if _missing():
    pytest.skip(f"the real stack is not there yet: missing {', '.join(_missing())}", allow_module_level=True)


def _by_binary(localcloud: Any, binary: str) -> str:
    """Function name of the template's function built from `binary`."""
    for logical_id, resource in localcloud.stack.template["Resources"].items():
        if (resource.get("Metadata") or {}).get("BuildProperties", {}).get("Binary") == binary:
            return localcloud.stack.resources[logical_id].ref
    raise AssertionError(f"no function with Binary {binary} in template.yaml")


def _ecr_push_state_machine(localcloud: Any) -> str:
    """The state machine the stack's ECR push rule starts."""
    events = localcloud.client("events")
    for logical_id, physical in localcloud.stack.resources.items():
        if physical.type != "AWS::Events::Rule":
            continue
        rule = events.describe_rule(Name=physical.ref)
        if "aws.ecr" in json.loads(rule.get("EventPattern") or "{}").get("source", []):
            targets = events.list_targets_by_rule(Rule=physical.ref)["Targets"]
            return next(t["Arn"] for t in targets if ":states:" in t["Arn"])
    raise AssertionError("the stack has no rule for ECR pushes")


def _log_tail(localcloud: Any, function_name: str, lines: int = 40) -> str:
    return "\n".join(localcloud.lambda_log(function_name).splitlines()[-lines:])


def _stale_binaries() -> str:
    """A hint for failures: binaries older than the Rust sources are likely stale."""
    sources = [p for p in (ROOT / "functions").rglob("*") if p.suffix in (".rs", ".toml")]
    newest = max((p.stat().st_mtime for p in sources), default=0)
    stale = [str(p.relative_to(ROOT)) for p in _binaries().values() if p.exists() and p.stat().st_mtime < newest]
    return f"\n(older than the sources in functions/, rebuild: {', '.join(stale)})" if stale else ""


def test_push_to_an_untracked_repository_deploys_nothing(localcloud: Any) -> None:
    sfn, ecr = localcloud.client("stepfunctions"), localcloud.client("ecr")
    machine = _ecr_push_state_machine(localcloud)
    plan_function = _by_binary(localcloud, "plan")
    deploy_function = _by_binary(localcloud, "deploy")

    repository = f"smoke/untracked-{uuid.uuid4().hex[:8]}"
    ecr.create_repository(repositoryName=repository)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                   "digest": "sha256:" + uuid.uuid4().hex * 2},
        "layers": [],
    }
    ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag="v1")

    execution = None
    deadline = time.monotonic() + 20
    while execution is None and time.monotonic() < deadline:
        for summary in sfn.list_executions(stateMachineArn=machine)["executions"]:
            description = sfn.describe_execution(executionArn=summary["executionArn"])
            if json.loads(description["input"]).get("detail", {}).get("repository-name") == repository:
                execution = description
                break
        else:
            time.sleep(0.2)
    assert execution is not None, "the ECR push did not start the deploy state machine"

    deadline = time.monotonic() + 180
    while execution["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
        execution = sfn.describe_execution(executionArn=execution["executionArn"])

    assert execution["status"] == "SUCCEEDED", (
        f"{execution['status']}: {execution.get('error')}: {execution.get('cause')}\n"
        f"--- plan function log ---\n{_log_tail(localcloud, plan_function)}{_stale_binaries()}"
    )
    history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    invoked = [
        e.get("lambdaFunctionScheduledEventDetails", {}).get("resource", "")
        or json.loads(e.get("taskScheduledEventDetails", {}).get("parameters", "{}")).get("FunctionName", "")
        for e in history
        if e["type"] in ("LambdaFunctionScheduled", "TaskScheduled")
    ]
    assert any(arn.endswith(f":function:{plan_function}") for arn in invoked), invoked
    assert not any(arn.endswith(f":function:{deploy_function}") for arn in invoked), "something was deployed"
    # The cloud is shared by the session: other tests make the plan function fail on purpose
    # (InvalidInput), so judge only this execution's invocation of it.
    plan_result = next(json.loads(e[k]["output"]) for e in history for k in ("lambdaFunctionSucceededEventDetails", "taskSucceededEventDetails") if k in e)
    assert plan_result["action"] == "nothing", plan_result
    assert "REPORT RequestId" in localcloud.lambda_log(plan_function), _log_tail(localcloud, plan_function)
