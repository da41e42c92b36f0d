"""Lifecycle hooks of ECS service deployments: Lambda hooks invoked, pause hooks waited on.

"Lambda hooks for Amazon ECS service deployments"
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html):

* the event: ``executionId`` ("The unique identifier for this hook execution"), ``lifecycleStage``,
  ``resourceArn`` (the service deployment), ``executionDetails`` {``serviceArn``,
  ``targetServiceRevisionArn``, ``testTrafficWeights``, ``productionTrafficWeights``: "A map of
  service revision ARNs to their corresponding ... traffic weight percentages"} and
  ``hookDetails`` when the hook configuration or an earlier IN_PROGRESS answer gave some;
* the answer: "your function must return a JSON object containing a hookStatus field":
  SUCCEEDED ("The deployment continues to the next lifecycle stage"), FAILED ("Amazon ECS rolls
  back the deployment"), IN_PROGRESS ("Amazon ECS invokes the function again after a delay. By
  default, the delay is 30 seconds. You can customize this value by returning a callBackDelay");
  ``hookDetails`` returned with IN_PROGRESS are merged into the next invocation's ("Data added to
  hookDetails at runtime only persists between invocations of the same hook within a single
  deployment"); "If your function doesn't return a valid hookStatus, or if it fails, Amazon ECS
  rolls back the deployment";
* timeoutConfiguration: "If the Lambda function does not return SUCCEEDED or FAILED before the
  timeout expires, Amazon ECS takes the configured timeout action" (default 1,440 minutes,
  ROLLBACK); the hook then shows TIMED_OUT.

Pause hooks ("Lifecycle hooks for Amazon ECS service deployments",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-lifecycle-hooks.html): the
deployment waits (AWAITING_ACTION) for ContinueServiceDeployment (CONTINUE or ROLLBACK) or the
hook's timeout. "You can configure both Lambda hooks and pause hooks at the same lifecycle stage.
Both hooks must complete before the deployment proceeds to the next stage": the hooks of a stage
run side by side.

The invocation is a synchronous Invoke of ``hookTargetArn`` through the caller's
``invoke_function(function_arn, payload) -> (payload, function_error)`` (the local cloud's Lambda
runtime, ``server.py``), on a thread of its own outside the simulator's lock: a hook may call ECS
back. Before it, the hook's ``roleArn`` is evaluated as the local cloud evaluates roles (``iam.py``):
it must exist, trust ``ecs.amazonaws.com`` and allow ``lambda:InvokeFunction`` on the function
("Permissions required for Lambda functions in Amazon ECS blue/green deployments",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-permissions.html); a role that
cannot invoke the function fails the hook, like a function that fails.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from . import iam
from .ecs_native_rules import AWS_LAMBDA, DEFAULT_HOOK_TIMEOUT_MINUTES, PAUSE

LOG = logging.getLogger("localcloud.ecs_hooks")

DEFAULT_CALLBACK_DELAY_SECONDS = 30.0
ECS_SERVICE_PRINCIPAL = "ecs.amazonaws.com"

# DeploymentLifecycleHookDetail.status - API Reference
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHookDetail.html).
AWAITING_ACTION, IN_PROGRESS, SUCCEEDED, FAILED, TIMED_OUT = (
    "AWAITING_ACTION", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT")
ANSWERS = (SUCCEEDED, FAILED, IN_PROGRESS)

InvokeFunction = Callable[[str, bytes], "tuple[bytes, str | None]"]


@dataclass
class HookRun:
    """One hook at one lifecycle stage of one deployment (re-invoked while IN_PROGRESS)."""

    hook: dict[str, Any]
    stage: str
    started_at: float
    expires_at: float
    hook_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = IN_PROGRESS
    details: dict[str, Any] = field(default_factory=dict)
    next_call_at: float | None = None
    in_flight: bool = False
    calls: int = 0
    failure: str | None = None
    continued_after_timeout: bool = False

    @property
    def target_type(self) -> str:
        return self.hook.get("targetType") or AWS_LAMBDA

    @property
    def timeout_action(self) -> str:
        return (self.hook.get("timeoutConfiguration") or {}).get("action") or "ROLLBACK"

    @property
    def finished(self) -> bool:
        return self.status in (SUCCEEDED, FAILED, TIMED_OUT)

    @property
    def wants_rollback(self) -> bool:
        """FAILED, or TIMED_OUT with the ROLLBACK timeout action."""
        return self.status == FAILED or (self.status == TIMED_OUT and not self.continued_after_timeout)

    def detail(self) -> dict[str, Any]:
        """DeploymentLifecycleHookDetail, as DescribeServiceDeployments shows it."""
        detail = {
            "hookId": self.hook_id,
            "targetType": self.target_type,
            "status": self.status,
            "expiresAt": datetime.fromtimestamp(self.expires_at, tz=timezone.utc),
            "timeoutAction": self.timeout_action,
        }
        if self.target_type == AWS_LAMBDA:
            detail["targetArn"] = self.hook.get("hookTargetArn")
        return detail


def role_denial(role_arn: str, function_arn: str) -> str | None:
    """Why ECS could not invoke `function_arn` with `role_arn`, or None when it can."""
    from moto.iam.models import iam_backends

    try:
        account, partition = role_arn.split(":")[4], role_arn.split(":")[1]
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - unknown or malformed role
        return f"role {role_arn} does not exist"
    if not _trusts_ecs(role.assume_role_policy_document):
        return f"role {role_arn} does not trust {ECS_SERVICE_PRINCIPAL} (sts:AssumeRole)"
    decision = iam.evaluate(iam.role_policies(role_arn), iam.Authorization("lambda:InvokeFunction", function_arn))
    if decision != iam.ALLOW:
        return f"role {role_arn} is not allowed lambda:InvokeFunction on {function_arn} ({decision})"
    return None


def _trusts_ecs(document: Any) -> bool:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return False
    for statement in iam._as_list((document or {}).get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in iam._as_list(statement.get("Action"))]
        if not any(a in ("sts:assumerole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal") or {}
        services = iam._as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if ECS_SERVICE_PRINCIPAL in services or principal == "*":
            return True
    return False


def parse_answer(payload: bytes, function_error: str | None) -> tuple[str, float | None, dict[str, Any], str | None]:
    """(hookStatus, callBackDelay, hookDetails, why it failed) from a function's response."""
    if function_error:
        text = payload.decode("utf-8", "replace")[:500]
        return FAILED, None, {}, f"the function failed ({function_error}): {text}"
    try:
        answer = json.loads(payload or b"null")
    except ValueError:
        return FAILED, None, {}, "the function's response is not JSON"
    if not isinstance(answer, dict) or answer.get("hookStatus") not in ANSWERS:
        return FAILED, None, {}, f"the function returned no valid hookStatus: {json.dumps(answer)[:300]}"
    delay = answer.get("callBackDelay")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0):
        return FAILED, None, {}, f"callBackDelay must be a number of seconds, not {delay!r}"
    details = answer.get("hookDetails")
    return answer["hookStatus"], (None if delay is None else float(delay)), details if isinstance(details, dict) else {}, None


class HookRunner:
    """Starts and follows the hooks of one service deployment; everything but the invocation
    itself runs under the simulator's lock (called from the flow's tick)."""

    def __init__(self, sim: Any, scaled: Callable[[float], float]) -> None:
        self._sim = sim
        self._scaled = scaled  # seconds of ECS's waiting → seconds of the clock (ecs_native timing)

    def start(self, hooks: list[dict[str, Any]], stage: str, now: float) -> list[HookRun]:
        runs = []
        for hook in hooks:
            minutes = (hook.get("timeoutConfiguration") or {}).get("timeoutInMinutes") or DEFAULT_HOOK_TIMEOUT_MINUTES
            run = HookRun(hook=hook, stage=stage, started_at=now, expires_at=now + self._scaled(60.0 * minutes))
            if run.target_type == PAUSE:
                run.status = AWAITING_ACTION
            else:
                run.details = dict(hook.get("hookDetails") or {})
                run.next_call_at = now
            runs.append(run)
        return runs

    def poll(self, runs: list[HookRun], payload: Callable[[HookRun], dict[str, Any]], now: float) -> None:
        """Invokes what is due, times out what expired."""
        for run in runs:
            if run.finished:
                continue
            if now >= run.expires_at and not run.in_flight:
                run.status = TIMED_OUT
                run.continued_after_timeout = run.timeout_action == "CONTINUE"
                run.failure = f"the {run.stage} hook timed out"
                continue
            if run.target_type == AWS_LAMBDA and not run.in_flight and run.next_call_at is not None and now >= run.next_call_at:
                self._invoke(run, payload(run))

    def _invoke(self, run: HookRun, event: dict[str, Any]) -> None:
        sim = self._sim
        run.in_flight = True
        run.next_call_at = None
        run.calls += 1
        function_arn = str(run.hook.get("hookTargetArn"))
        role_arn = str(run.hook.get("roleArn") or "")
        invoke = getattr(sim, "invoke_function", None)
        body = json.dumps(event).encode()

        def work() -> None:
            try:
                denial = role_denial(role_arn, function_arn)
                if denial is not None:
                    outcome = (FAILED, None, {}, f"Amazon ECS could not invoke the hook: {denial}")
                elif invoke is None:
                    outcome = (FAILED, None, {}, "no Lambda runtime to invoke the hook with")
                else:
                    outcome = parse_answer(*invoke(function_arn, body))
            except Exception as error:  # noqa: BLE001 - an Invoke error fails the hook
                outcome = (FAILED, None, {}, f"Invoke of {function_arn} failed: {error}")
            with sim._lock:
                self._record(run, *outcome, now=sim.now())

        threading.Thread(target=work, name=f"ecs-hook-{run.stage}", daemon=True).start()

    def _record(self, run: HookRun, status: str, delay: float | None, details: dict[str, Any], why: str | None, now: float) -> None:
        run.in_flight = False
        if run.finished:
            return  # timed out or resolved meanwhile
        if status == IN_PROGRESS:
            run.details.update(details)
            seconds = DEFAULT_CALLBACK_DELAY_SECONDS if delay is None else delay
            run.next_call_at = now + self._scaled(seconds)
            return
        run.status = status
        if status == FAILED:
            run.failure = why or f"the {run.stage} hook answered FAILED"
            LOG.info("lifecycle hook %s at %s failed: %s", run.hook.get("hookTargetArn"), run.stage, run.failure)

    @staticmethod
    def resolve_pause(runs: list[HookRun], hook_id: str, action: str) -> bool:
        """ContinueServiceDeployment: CONTINUE completes the pause hook, ROLLBACK fails it."""
        for run in runs:
            if run.hook_id == hook_id and run.status == AWAITING_ACTION:
                run.status = SUCCEEDED if action == "CONTINUE" else FAILED
                if action == "ROLLBACK":
                    run.failure = "rollback requested through ContinueServiceDeployment"
                return True
        return False
