"""Step Functions service quotas enforced during local executions.

moto's ASL interpreter (LocalStack's) knows some quotas half-way; here each one
behaves as AWS documents it:

* 25,000 events in one execution's history: the execution fails (it used to
  run on for ever);
* 262,144 bytes (UTF-8) for a state's output, a task's result and a task's
  input after Parameters: ``States.DataLimitExceeded`` (moto refused exactly
  262,144 bytes, measured a legacy Lambda task's result with the Invoke
  response around it, never checked the input, and let ``States.ALL`` catch it);
* 32,768 characters for a Fail state's cause (Cause/CausePath) and 256 for
  its error (Error/ErrorPath);
* a Lambda function that timed out, ran out of memory or exited reaches the
  state machine under the error type Lambda reports (``Sandbox.Timedout``,
  ``Runtime.OutOfMemory``, ``Runtime.ExitError``), and one that returned no
  error type as ``Lambda.Unknown``; an Invoke refused by Lambda
  (RequestTooLargeException, ...) as ``Lambda.<error code>`` for a legacy
  Lambda resource too (moto called it "Exception").

``patches()`` gives ``(owner, attribute, replacement)`` triples for server.py's
``_sfn_patches()``. None of them replaces an attribute that another local patch
replaces (server.py patches ``ErrorEqualsDecl._eval_body``; this module wraps
``ErrorEqualsDecl.eval`` around it).
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any, Iterator

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.component.state.fail.state_fail import StateFail
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

Patch = tuple[Any, str, Any]

# Step Functions service quotas, "Quotas related to state machine executions"
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html, formerly limits.html):
# "Maximum execution history size: 25,000 events. If the execution history reaches this quota,
# the execution will fail." "Avoid reaching the history quota"
# (https://docs.aws.amazon.com/step-functions/latest/dg/bp-history-limit.html): "When an execution
# reaches 24,999 events, it waits for the next event to happen. If the event number 25,000 is
# ExecutionSucceeded, the execution finishes successfully. If the event number 25,000 isn't
# ExecutionSucceeded, the ExecutionFailed event is logged and the state machine execution fails".
# (Standard workflows; Express ones have no history.)
MAX_HISTORY_EVENTS = 25_000
# The error and cause of that ExecutionFailed, as AWS reports them (not in the docs; seen by
# users, e.g. loads/ardere#86: {"error": "States.Runtime", "cause": "The execution reached the
# maximum number of history events (25000)."}).
HISTORY_LIMIT_ERROR = "States.Runtime"
HISTORY_LIMIT_CAUSE = "The execution reached the maximum number of history events ({limit})."

# Same quotas page, "Quotas related to task executions": "Maximum input or output size for a
# task, state, or execution: 262,144 bytes of data as a UTF-8 encoded string. This quota affects
# tasks (activity, Lambda function, or integrated service), state or execution output, and input
# data when scheduling a task, entering a state, or starting an execution."
# "Handling errors in Step Functions workflows"
# (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html), in short:
# States.DataLimitExceeded is reported when a connector's output, a state's output, or a state's
# input after Parameters processing is larger than that quota; it is a terminal error that
# States.ALL does not catch (States.ALL "can't catch the States.DataLimitExceeded terminal error
# ... or Runtime error types"); naming it in ErrorEquals does.
MAX_PAYLOAD_BYTES = 262_144

# The Step Functions API reference, ExecutionFailedEventDetails / TaskFailedEventDetails
# (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ExecutionFailedEventDetails.html):
# "cause ... Length Constraints: Maximum length of 32768", "error ... Maximum length of 256".
# AWS documents no way to record a longer one; what it does with a Fail state whose Cause or
# CausePath yields more is not documented, so the local cloud fails the execution with
# States.Runtime naming the limit (it never truncates silently: a definition that relies on a
# longer cause is wrong on AWS in any case).
MAX_CAUSE_CHARACTERS = 32_768
MAX_ERROR_CHARACTERS = 256

# Which name a failed Lambda task reports. Step Functions takes the error type Lambda answers with:
# for a sandbox that did not answer, the type Lambda itself reports. The Lambda Developer Guide,
# "Troubleshoot invocation issues in Lambda"
# (https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html), names a function
# that ran past its timeout "Sandbox.Timedout" ("Lambda: Function times out during Init phase
# (Sandbox.Timedout)"), and that is the error Step Functions histories show for a Lambda task that
# timed out; a process that exits is "Runtime.ExitError", one out of memory "Runtime.OutOfMemory"
# (the error types Lambda's Invoke answers with, FunctionError "Unhandled": "Errors detected and
# reported by AWS Lambda ... include out of memory errors and function timeouts", Lambda API
# reference, Invoke). Older pages ("Handle Lambda service exceptions", Step Functions best
# practices, https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html)
# say these "are reported as Lambda.Unknown"; Step Functions still reports Lambda.Unknown when
# Lambda returns no error type ("The cause could not be determined because Lambda did not return
# an error type"), which is all this module renames. deckhand's definitions handle both spellings.
LAMBDA_UNKNOWN = "Lambda.Unknown"
# What the local Lambda runtime reports for a sandbox that did not answer (lambda_runtime.py,
# lambda_memory.py): these names reach the state machine as they are.
LAMBDA_SANDBOX_ERROR_TYPES = frozenset({"Sandbox.Timedout", "Runtime.OutOfMemory", "Runtime.ExitError"})

_DATA_LIMIT = StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded)

_history_limit = MAX_HISTORY_EVENTS


@contextlib.contextmanager
def history_event_limit(limit: int) -> Iterator[None]:
    """Run with a smaller history quota (tests only: 25,000 events of moto take minutes).
    Applies to executions started inside the block."""
    global _history_limit
    saved, _history_limit = _history_limit, int(limit)
    try:
        yield
    finally:
        _history_limit = saved


def utf8_size(value: Any) -> int:
    """Bytes of the value as compact JSON in UTF-8 (moto measured ASCII-escaped JSON with
    spaces, and a string without its quotes)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))


def is_within_size_quota(value: Any) -> bool:
    """262,144 bytes is the largest allowed size (moto refused it with ``<``)."""
    return utf8_size(value) <= MAX_PAYLOAD_BYTES


def _data_limit_exceeded(env: Environment, cause: str, event_type: HistoryEventType) -> FailureEventException:
    name = StatesErrorNameType.StatesStatesDataLimitExceeded.to_name()
    details = (
        EventDetails(lambdaFunctionFailedEventDetails={"error": name, "cause": cause})
        if event_type == HistoryEventType.LambdaFunctionFailed
        else EventDetails(taskFailedEventDetails=TaskFailedEventDetails(error=name, cause=cause))
    )
    return FailureEventException(FailureEvent(env=env, error_name=_DATA_LIMIT, event_type=event_type,
                                              event_details=details))


def _states_runtime(env: Environment, cause: str) -> FailureEventException:
    typ = StatesErrorNameType.StatesRuntime
    return FailureEventException(FailureEvent(
        env=env, error_name=StatesErrorName(typ=typ), event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(error=typ.to_name(), cause=cause)),
    ))


# -- States.ALL does not catch States.DataLimitExceeded ----------------------------------------


def _terminal_error_patch() -> list[Patch]:
    def eval_error_equals(self: ErrorEqualsDecl, env: Environment) -> None:
        error_name = env.stack[-1] if env.stack else None
        if (
            env.is_running()
            and isinstance(error_name, StatesErrorName)
            and error_name.typ == StatesErrorNameType.StatesStatesDataLimitExceeded
            and _DATA_LIMIT not in self.error_names  # only an explicit name matches it
        ):
            env.stack.pop()
            env.stack.append(False)
            return
        EvalComponent.eval(self, env)

    return [(ErrorEqualsDecl, "eval", eval_error_equals)]


# -- 256 KiB for inputs, outputs and results ---------------------------------------------------


def _payload_size_patches() -> list[Patch]:
    original_lambda_execution = StateTaskLambda._eval_execution
    original_lambda_parameters = StateTaskLambda._eval_parameters
    original_task_parameters = StateTask._eval_parameters
    lambda_result = threading.local()  # set while a legacy Lambda task checks its result

    def lambda_execution(self: StateTaskLambda, env: Environment) -> None:
        lambda_result.active = True
        try:
            original_lambda_execution(self, env)
        finally:
            lambda_result.active = False

    def lambda_verify_size_quota(self: StateTaskLambda, env: Environment, value: Any) -> None:
        """The result of a legacy Lambda task is the function's payload, not the Invoke
        response around it (moto measured the response)."""
        if getattr(lambda_result, "active", False) and isinstance(value, dict) and "Payload" in value:
            value = value["Payload"]
        if is_within_size_quota(value):
            return
        raise _data_limit_exceeded(
            env,
            f"The state/task '{self.resource.resource_arn}' returned a result with a size exceeding "
            "the maximum number of bytes service limit.",
            HistoryEventType.LambdaFunctionFailed,
        )

    def check_input(state: Any, env: Environment, value: Any) -> None:
        if not is_within_size_quota(value):
            raise _data_limit_exceeded(
                env,
                f"The state/task '{state.name}' has an input (after Parameters) with a size of "
                f"{utf8_size(value)} bytes, exceeding the maximum number of bytes service limit "
                f"({MAX_PAYLOAD_BYTES}).",
                HistoryEventType.TaskFailed,
            )

    def task_parameters(self: StateTask, env: Environment) -> dict:
        parameters = original_task_parameters(self, env)
        check_input(self, env, parameters)
        return parameters

    def lambda_parameters(self: StateTaskLambda, env: Environment) -> dict:
        parameters = original_lambda_parameters(self, env)
        check_input(self, env, parameters.get("Payload"))
        return parameters

    return [
        # Each module imported moto's is_within_size_quota by name.
        *[(module, "is_within_size_quota", is_within_size_quota)
          for module in (state_module, state_task_lambda, state_task_service)],
        (StateTaskLambda, "_eval_execution", lambda_execution),
        (StateTaskLambda, "_verify_size_quota", lambda_verify_size_quota),
        (StateTask, "_eval_parameters", task_parameters),
        (StateTaskLambda, "_eval_parameters", lambda_parameters),
    ]


# -- 25,000 history events ---------------------------------------------------------------------


class _HistoryQuota:
    """The history quota of one execution, kept on its (shared) EventManager."""

    def __init__(self, env: Environment, limit: int):
        self.env = env  # the execution's root environment
        self.limit = limit
        self.lock = threading.Lock()
        self.closed = False  # no room for more events
        self.error: ExecutionFailedEventDetails | None = None  # set when the quota failed the execution
        self.last_event_id = 0


def _history_patches() -> list[Patch]:
    original_init = Environment.__init__
    original_set_error = Environment.set_error
    original_add_event = EventManager.add_event

    def environment_init(self: Environment, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # A frame (Map iteration, Parallel branch) gets its parent's EventManager right after
        # this, so the quota attached here is the root environment's.
        self.event_manager._localcloud_history = _HistoryQuota(self, _history_limit)

    def add_event(self: EventManager, context: Any, event_type: HistoryEventType,
                  event_details: EventDetails | None = None, timestamp: Any = None,
                  update_source_event_id: bool = True) -> int:
        quota: _HistoryQuota | None = getattr(self, "_localcloud_history", None)
        if quota is None:
            return original_add_event(self, context, event_type, event_details, timestamp, update_source_event_id)
        with quota.lock:
            if quota.closed:
                return quota.last_event_id  # the history is closed: nothing more is recorded
            number = len(self._history_event_list) + 1
            if number < quota.limit or event_type in (HistoryEventType.ExecutionSucceeded,
                                                      HistoryEventType.ExecutionFailed):
                quota.last_event_id = original_add_event(
                    self, context, event_type, event_details, timestamp, update_source_event_id
                )
                quota.closed = number >= quota.limit  # it ended with the last event there is room for
                return quota.last_event_id
            quota.closed = True
            quota.error = ExecutionFailedEventDetails(
                error=HISTORY_LIMIT_ERROR, cause=HISTORY_LIMIT_CAUSE.format(limit=quota.limit)
            )
            quota.last_event_id = original_add_event(
                self, context, HistoryEventType.ExecutionFailed,
                EventDetails(executionFailedEventDetails=quota.error), timestamp, update_source_event_id,
            )
        quota.env.set_error(quota.error)  # the interpreter stops at its next step
        return quota.last_event_id

    def set_error(self: Environment, error: ExecutionFailedEventDetails) -> None:
        quota: _HistoryQuota | None = getattr(self.event_manager, "_localcloud_history", None)
        if quota is not None and quota.error and error is not quota.error:
            return  # the execution already failed on its history quota; that is its outcome
        original_set_error(self, error)

    return [
        (Environment, "__init__", environment_init),
        (Environment, "set_error", set_error),
        (EventManager, "add_event", add_event),
    ]


# -- a Fail state's error and cause ------------------------------------------------------------


def _fail_state_patch() -> list[Patch]:
    original = StateFail._eval_state

    def eval_fail(self: StateFail, env: Environment) -> None:
        try:
            original(self, env)
        except FailureEventException as failure:
            details = (failure.failure_event.event_details or {}).get("taskFailedEventDetails") or {}
            error, cause = details.get("error") or "", details.get("cause") or ""
            if len(cause) > MAX_CAUSE_CHARACTERS:
                raise _states_runtime(env, f"The Fail state's cause has {len(cause)} characters; "
                                           f"the maximum is {MAX_CAUSE_CHARACTERS}.") from None
            if len(error) > MAX_ERROR_CHARACTERS:
                raise _states_runtime(env, f"The Fail state's error has {len(error)} characters; "
                                           f"the maximum is {MAX_ERROR_CHARACTERS}.") from None
            raise

    return [(StateFail, "_eval_state", eval_fail)]


# -- Lambda errors as Step Functions names them ------------------------------------------------


def _lambda_error_patches() -> list[Patch]:
    from botocore.exceptions import ClientError

    original_legacy = StateTaskLambda._from_error
    original_service = StateTaskServiceLambda._from_error

    def unhandled(ex: Exception) -> bool:
        if not isinstance(ex, lambda_eval_utils.LambdaFunctionErrorException):
            return False
        try:
            error_type = json.loads(ex.payload).get("errorType")
        except (ValueError, AttributeError):
            error_type = None
        return not error_type

    def renamed(event: FailureEvent, env: Environment, error: str) -> FailureEvent:
        details = {key: dict(value, error=error) for key, value in (event.event_details or {}).items()}
        return FailureEvent(env=env, error_name=CustomErrorName(error), event_type=event.event_type,
                            event_details=EventDetails(**details))

    def legacy_from_error(self: StateTaskLambda, env: Environment, ex: Exception) -> FailureEvent:
        event = original_legacy(self, env, ex)
        if unhandled(ex):
            return renamed(event, env, LAMBDA_UNKNOWN)
        if isinstance(ex, ClientError):  # Invoke itself refused: Lambda.<error code>, as for lambda:invoke
            error, cause = StateTaskServiceLambda._error_cause_from_client_error(ex)
            event = renamed(event, env, error)
            for value in (event.event_details or {}).values():
                value["cause"] = cause
        return event

    def service_from_error(self: StateTaskServiceLambda, env: Environment, ex: Exception) -> FailureEvent:
        event = original_service(self, env, ex)
        return renamed(event, env, LAMBDA_UNKNOWN) if unhandled(ex) else event

    return [
        (StateTaskLambda, "_from_error", legacy_from_error),
        (StateTaskServiceLambda, "_from_error", service_from_error),
    ]


def patches() -> list[Patch]:
    return [
        *_terminal_error_patch(),
        *_payload_size_patches(),
        *_history_patches(),
        *_fail_state_patch(),
        *_lambda_error_patches(),
    ]
