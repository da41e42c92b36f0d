"""Step Functions service integrations as AWS runs them, where moto's interpreter differs.

deckhand's fan-out starts one execution per service with ``states:startExecution.sync:2`` and
each service execution waits on ``lambda:invoke.waitForTaskToken`` with a heartbeat. moto's
interpreter (LocalStack's) has both patterns, with these differences from AWS, fixed here:

* **Parameters of the Step Functions integration** are passed to boto3 as written in the
  definition (``StateMachineArn``, ``Name``, ``Input``), which boto3 refuses (its members are
  ``stateMachineArn``, ...): every ``startExecution`` Task failed with States.Runtime. AWS maps
  the integration's PascalCase parameters onto the API ("Call Step Functions with Step
  Functions", Step Functions Developer Guide: the Task's Parameters are StartExecution's
  request fields).
* **Its responses** come back in boto3's camelCase with ``datetime`` values; AWS returns the
  API response with PascalCase keys and epoch-millisecond timestamps (the same guide's
  ``startExecution.sync:2`` output example: ``"ExecutionArn"``, ``"StartDate": 1601929009806``,
  ``"Output"`` as JSON). A failed child fails the Task with ``States.TaskFailed`` whose cause is
  that same document as a string (moto's resolver already does this, once the keys are right).
* **A heartbeat without TimeoutSeconds** made moto time the task out after 60 s (the States
  Language specification's default). AWS's default TimeoutSeconds is 99999999 ("Task workflow
  state", Step Functions Developer Guide), so a task that heartbeats (or, here, is re-checked on
  ``States.HeartbeatTimeout``) is never cut at one minute.
* **A task completed before its wait began** (SendTaskSuccess called by the very Lambda the
  task invoked, while the invocation is still running) was not seen until the heartbeat ran
  out, and then taken for a missed heartbeat. In AWS the token is valid from the moment the task
  starts and the task ends when it is completed ("Wait for a Callback with Task Token", Step
  Functions Developer Guide): deckhand's check function completes it itself when the rollout is
  already conclusive.
* **SendTaskFailure's cause** was dropped by moto's response handler, so a Catch saw no
  ``Cause``; AWS hands it on (``_send_task_failure_cause_patch``).
* **A heartbeat that runs out** failed the task with ``States.Timeout``, which a Catch on
  ``States.HeartbeatTimeout`` never matches. AWS fails it with ``States.HeartbeatTimeout`` in a
  TaskTimedOut event ("Error names", Step Functions Developer Guide: "a Task state failed to
  send a heartbeat for a period longer than the HeartbeatSeconds value").
* **Stopping the parent** left a child started with ``.sync:2`` running (and holding what it
  holds, a service lock here). AWS stops the job a ``.sync`` Task started when the Task is
  stopped ("Run a Job (.sync)", Step Functions Developer Guide: "If the task is stopped, Step
  Functions makes a best-effort attempt to stop the job"; it is why the integration's IAM
  policy includes ``states:StopExecution``).
* **A token whose task has ended** (completed already, timed out, its execution stopped) was
  answered ``InvalidToken`` by SendTaskSuccess/Failure/Heartbeat, the answer for a token that
  never existed. AWS answers ``TaskTimedOut`` ("The task token has either expired or the task
  associated with the token has already been closed", SendTaskSuccess API reference, Errors),
  which is how a late or duplicate completion is told apart from a bug.
* **A stopped execution** became FAILED (or TIMED_OUT) when the state it was in ended after the
  stop (a task token's heartbeat running out, a child's failure), overwriting the stop. AWS
  keeps it ABORTED: StopExecution ends the execution there and then (StopExecution API
  reference).
* **Stopping an execution inside a Map iteration** crashed moto's Map state (an aborted
  iteration's details are a string where it expects a dict), so the stopped execution ended
  FAILED with States.Runtime instead of ABORTED (StopExecution: "Stops an execution", status
  ABORTED).
"""

from __future__ import annotations

import datetime
from typing import Any

Patch = tuple[Any, str, Any]

# AWS's default TimeoutSeconds for a Task state.
DEFAULT_TASK_TIMEOUT_SECONDS = 99_999_999


# The execution's own documents: data, whose keys are the user's.
USER_DATA = {"Input", "Output"}


def _pascal(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if not isinstance(value, dict):
        return value
    out = {}
    for key, inner in value.items():
        key = key[:1].upper() + key[1:] if isinstance(key, str) else key
        out[key] = inner if key in USER_DATA else _pascal(inner)
    return out


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


# Every task token the interpreter handed out (tokens are opaque; only these are valid).
_issued_tokens: set[str] = set()


def _aborted_iteration_patch() -> list[Patch]:
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    def unless_stopped(original: Any) -> Any:
        def call(self: Environment, *args: Any, **kwargs: Any) -> Any:
            if isinstance(self._program_state, ProgramStopped):
                return None
            return original(self, *args, **kwargs)

        return call

    original = ExecutionState._construct_error_output_value

    def construct(failure_event: Any) -> Any:
        details = list(failure_event.event_details.values())
        if details and not isinstance(details[0], dict):
            return {"Error": "", "Cause": ""}
        return original(failure_event)

    return [
        (ExecutionState, "_construct_error_output_value", staticmethod(construct)),
        (Environment, "set_error", unless_stopped(Environment.set_error)),
        (Environment, "set_timed_out", unless_stopped(Environment.set_timed_out)),
    ]


def _token_patches() -> list[Patch]:
    from moto.stepfunctions.parser.api import InvalidToken, TaskTimedOut
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackPoolManager
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_add = CallbackPoolManager.add

    def add(self: CallbackPoolManager, callback_id: str) -> Any:
        _issued_tokens.add(callback_id)
        return original_add(self, callback_id)

    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimedOut

    def wait_for_token_with_heartbeat(self: Any, env: Any, callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
        while env.is_running():
            if callback_endpoint.get_outcome() is not None:  # completed already, or meanwhile
                return callback_endpoint.get_outcome()
            received = heartbeat_endpoint.clear_and_wait()
            if callback_endpoint.get_outcome() is not None:
                return callback_endpoint.get_outcome()
            if not received and env.is_running():
                return HeartbeatTimedOut()
        return None

    def timed_out() -> Exception:
        # moto's own TaskTimedOut() cannot be constructed (AWSError needs its message): build it whole.
        return TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'", "TaskTimedOut", 400)

    def closed_is_timed_out(original: Any) -> Any:
        def call(self: StepFunctionsParserBackend, task_token: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, task_token, *args, **kwargs)
            except InvalidToken:
                if task_token in _issued_tokens:
                    raise timed_out() from None
                raise
            except TypeError:  # moto raising its TaskTimedOut()/TaskDoesNotExist() for a closed task
                raise timed_out() from None

        return call

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )

    return [(CallbackPoolManager, "add", add), *_aborted_iteration_patch(),
            (StateTaskServiceCallback, "_wait_for_task_token_heartbeat", wait_for_token_with_heartbeat)] + [
        (StepFunctionsParserBackend, name, closed_is_timed_out(getattr(StepFunctionsParserBackend, name)))
        for name in ("send_task_success", "send_task_failure", "send_task_heartbeat")
    ]


def _send_task_failure_cause_patch() -> list[Patch]:
    """SendTaskFailure's ``cause`` ("A more detailed explanation of the cause of the failure";
    AWS Step Functions API Reference, SendTaskFailure:
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html) is
    what a Catch puts in ``Cause``. moto's response handler reads ``error`` only and drops it."""
    from moto.stepfunctions.responses import StepFunctionResponse
    from moto.core.responses import EmptyResult

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause"))
        return EmptyResult()

    return [(StepFunctionResponse, "send_task_failure", send_task_failure)]


def patches() -> list[Patch]:
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    original_normalise = StateTaskServiceSfn._normalise_parameters
    original_eval_task = StateTaskServiceSfn._eval_service_task
    original_from_props = ExecutionState.from_state_props
    from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original_from_error = StateTaskServiceCallback._from_error
    original_sync2 = StateTaskServiceSfn._build_sync2_resolver
    original_eval_sync = StateTaskServiceCallback._eval_sync

    def build_sync2_resolver(self: StateTaskServiceSfn, env: Any, resource_runtime_part: Any,
                             normalised_parameters: dict, state_credentials: Any) -> Any:
        child = (env.stack[-1] or {}).get("ExecutionArn") if isinstance(env.stack[-1], dict) else None
        resolver = original_sync2(self, env, resource_runtime_part, normalised_parameters, state_credentials)

        def stop_child() -> None:
            from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

            client = boto_client_for(region=resource_runtime_part.region, service="stepfunctions",
                                     state_credentials=state_credentials)
            try:
                client.stop_execution(executionArn=child, error="States.Aborted",
                                      cause="the parent execution was stopped")
            except Exception:  # noqa: BLE001 - best effort, as in AWS
                pass

        resolver.stop_child = stop_child if child else None  # type: ignore[attr-defined]
        return resolver

    def eval_sync(self: StateTaskServiceCallback, env: Any, sync_resolver: Any, timeout_seconds: Any,
                  callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
        result = original_eval_sync(self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        stop_child = getattr(sync_resolver, "stop_child", None)
        if not env.is_running() and stop_child is not None:
            stop_child()
        return result

    def from_error(self: StateTaskServiceCallback, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, HeartbeatTimeoutError):
            return original_from_error(self, env, ex)
        name = StatesErrorNameType.StatesHeartbeatTimeout
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=name),
            event_type=HistoryEventType.TaskTimedOut,
            event_details=EventDetails(taskTimedOutEventDetails=TaskTimedOutEventDetails(
                resourceType=self._get_sfn_resource_type(), resource=self._get_sfn_resource(), error=name.to_name())),
        )

    def normalise_parameters(self: StateTaskServiceSfn, parameters: dict, boto_service_name: Any = None,
                             service_action_name: Any = None) -> None:
        original_normalise(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None:  # the Task's own call (the resolvers pass their action)
            for key in [k for k in parameters if k[:1].isupper()]:
                parameters[_camel(key)] = parameters.pop(key)

    def normalise_response(self: StateTaskServiceSfn, response: Any, boto_service_name: Any = None,
                           service_action_name: Any = None) -> None:
        if isinstance(response, dict):
            converted = _pascal(response)
            response.clear()
            response.update(converted)

    def eval_service_task(self: StateTaskServiceSfn, env: Any, resource_runtime_part: Any,
                          normalised_parameters: dict, state_credentials: Any) -> None:
        original_eval_task(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        normalise_response(self, env.stack[-1])

    def from_state_props(self: ExecutionState, state_props: Any) -> None:
        original_from_props(self, state_props)
        timeout = getattr(self, "timeout", None)
        if isinstance(timeout, TimeoutSeconds) and timeout.is_default and timeout.timeout_seconds == 60:
            self.timeout = TimeoutSeconds(timeout_seconds=DEFAULT_TASK_TIMEOUT_SECONDS, is_default=True)

    return [
        (StateTaskServiceSfn, "_normalise_parameters", normalise_parameters),
        (StateTaskServiceSfn, "_normalise_response", normalise_response),
        (StateTaskServiceSfn, "_eval_service_task", eval_service_task),
        (ExecutionState, "from_state_props", from_state_props),
        (StateTaskServiceCallback, "_from_error", from_error),
        (StateTaskServiceSfn, "_build_sync2_resolver", build_sync2_resolver),
        (StateTaskServiceCallback, "_eval_sync", eval_sync),
        *_token_patches(),
        *_send_task_failure_cause_patch(),
    ]
