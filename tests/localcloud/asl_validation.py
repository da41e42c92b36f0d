"""State machine definitions validated as CreateStateMachine / UpdateStateMachine validate them.

``validate_definition(text)`` returns AWS-style diagnostics (empty: AWS would accept it);
``check_definition(text)`` raises ``InvalidDefinitionError`` / ``DefinitionTooLongError``.
Two layers:

1. ``asl-validator`` (npm, pinned in ``asl/package-lock.json``, installed by
   ``scripts/bootstrap``), run under node through ``asl/validate.js``: the ASL JSON schema
   (fields per state type, state names of 1-80 characters, paths, numeric minimums),
   duplicate state names, missing transition targets, missing terminal states.
2. The checks below, each of which asl-validator 4.0.0 was fed a broken definition for
   and let through (tests/test_asl_validation.py::test_extra_checks_catch_what_asl_validator_misses
   keeps that true): reachability (it only asks whether *some* state names a state, so an
   unreachable cycle passes), transitions across an ``ItemProcessor`` boundary (it checks
   ``Iterator`` and ``Branches`` only), ``States.ALL`` not alone / not last, retrier bounds,
   ``HeartbeatSeconds`` >= ``TimeoutSeconds``, a ``Resource`` that is no ARN after
   substitution (its schema deliberately accepts ``${...}`` and ``Fn::`` objects), and the
   definition's length.

Codes are AWS's, from the list in the Step Functions API Reference,
"ValidateStateMachineDefinitionDiagnostic"
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinitionDiagnostic.html):
SCHEMA_VALIDATION_FAILED, INVALID_JSON_DESCRIPTION, INVALID_RESOURCE, MISSING_END_STATE,
DUPLICATE_STATE_NAME, MISSING_TRANSITION_TARGET. That page also says the same check runs
implicitly on CreateStateMachine and UpdateStateMachine ("ValidateStateMachineDefinition").
asl-validator's own codes are mapped onto them (its DUPLICATE_STATE_NAMES is AWS's
DUPLICATE_STATE_NAME). The refusal reads like AWS's InvalidDefinition message, e.g.
``Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: pass3
at /States/pass1/Next, MISSING_TRANSITION_TARGET: State "pass2" is not reachable. at
/States/pass2'`` (AWS's answer quoted in localstack/localstack#11978).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

PACKAGE_DIR = Path(__file__).resolve().parent / "asl"
VALIDATE_JS = PACKAGE_DIR / "validate.js"
ASL_VALIDATOR = PACKAGE_DIR / "node_modules" / "asl-validator" / "package.json"

# CreateStateMachine / UpdateStateMachine, request parameter "definition": "Length Constraints:
# Minimum length of 1. Maximum length of 1048576." (Step Functions API Reference,
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html);
# the quotas page lists "Maximum size of state machine definition: 1 MB, hard quota"
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
MAX_DEFINITION_LENGTH = 1_048_576

# asl-validator's codes -> AWS's (API_ValidateStateMachineDefinitionDiagnostic, above).
# Anything else it reports (TASK_TIMEOUT, WAIT_DURATION, MAP_*...) is a schema rule to AWS.
_AWS_CODE = {
    "SCHEMA_VALIDATION_FAILED": "SCHEMA_VALIDATION_FAILED",
    "DUPLICATE_STATE_NAMES": "DUPLICATE_STATE_NAME",
    "MISSING_TERMINAL_STATE": "MISSING_END_STATE",
    "MISSING_TRANSITION_TARGET": "MISSING_TRANSITION_TARGET",
    "BRANCH_OUTBOUND_TRANSITION_TARGET": "MISSING_TRANSITION_TARGET",
    "MAP_OUTBOUND_TRANSITION_TARGET": "MISSING_TRANSITION_TARGET",
}

_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):[^:\s]+:[^:\s]*:\d*:\S+$")


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    location: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" at {self.location}" if self.location else "")


class InvalidDefinitionError(ValueError):
    """What CreateStateMachine answers as InvalidDefinition (HTTP 400)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("Invalid State Machine Definition: '" + ", ".join(map(str, diagnostics)) + "'")


class DefinitionTooLongError(ValueError):
    """A definition over the API's length constraint: AWS answers ValidationException."""

    def __init__(self, length: int):
        self.length = length
        super().__init__(
            "1 validation error detected: Value at 'definition' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_DEFINITION_LENGTH}"
        )


class ValidatorMissing(RuntimeError):
    """node or the pinned asl-validator is not installed: never validate silently without it."""


def check_definition(text: str) -> None:
    """Raise as CreateStateMachine would refuse ``text``; return when AWS would accept it."""
    if len(text) > MAX_DEFINITION_LENGTH:
        raise DefinitionTooLongError(len(text))
    diagnostics = validate_definition(text)
    if diagnostics:
        raise InvalidDefinitionError(diagnostics)


def validate_definition(text: str) -> list[Diagnostic]:
    """Every diagnostic of severity ERROR AWS would give for ``text`` (as far as we know)."""
    try:
        definition = json.loads(text)
    except ValueError as exc:
        return [Diagnostic("INVALID_JSON_DESCRIPTION", f"The definition is not valid JSON: {exc}")]
    found = asl_validator_diagnostics(text)
    if not isinstance(definition, dict):
        return found or [Diagnostic("SCHEMA_VALIDATION_FAILED", "The definition must be a JSON object")]
    reported = {(d.code, _subject(d.message)) for d in found}
    for extra in extra_diagnostics(definition):
        if (extra.code, _subject(extra.message)) not in reported:
            found.append(extra)
    return found


def asl_validator_diagnostics(text: str) -> list[Diagnostic]:
    """asl-validator's verdict, codes mapped to AWS's."""
    diagnostics = []
    for error in _VALIDATOR.verdict(text)["errors"]:
        code = _AWS_CODE.get(error["code"], "SCHEMA_VALIDATION_FAILED")
        message = error["message"] if code == error["code"] else f"{error['message']} ({error['code']})"
        diagnostics.append(Diagnostic(code, message))
    return diagnostics


class _NodeValidator:
    """One ``node validate.js --serve`` process per Python process (loading asl-validator costs
    ~0.7 s of CPU, validating a definition milliseconds); started on first use, restarted if it
    died. A lock keeps request and answer lines paired across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None

    def verdict(self, text: str) -> dict[str, Any]:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(text) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except OSError as exc:
                line = f"broken pipe: {exc}"
            try:
                answer = json.loads(line)
            except ValueError:
                answer = {"failure": line or f"node exited with {proc.wait()}"}
            if "failure" in answer:
                self._proc = None
                proc.kill()
                raise ValidatorMissing(f"asl-validator failed: {answer['failure'][-2000:]}")
            return answer

    def close(self) -> None:
        """Stop the node process (at exit: nothing of ours may outlive the local cloud)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # validate.js exits when its stdin closes
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    @staticmethod
    def _start() -> subprocess.Popen[str]:
        node = shutil.which("node")
        if node is None or not ASL_VALIDATOR.exists():
            missing = "node" if node is None else f"asl-validator ({ASL_VALIDATOR.parent})"
            raise ValidatorMissing(
                f"cannot validate state machine definitions: {missing} is not installed; run scripts/bootstrap"
            )
        return subprocess.Popen(
            [node, str(VALIDATE_JS), "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
        )


_VALIDATOR = _NodeValidator()
atexit.register(lambda: _VALIDATOR.close())


def _subject(message: str) -> str:
    """The state a transition/name diagnostic is about, to drop our copy of one asl-validator
    already reported ("State X is not reachable", "...target: X", "...already exists: X")."""
    match = re.search(r'^State "?(.*?)"? is not reachable|target: (.*?)$|already exists: (.*)$', message)
    return next((group for group in match.groups() if group is not None), message) if match else message


# ------------------------------------------------------------------------------------------
# The checks asl-validator misses
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """One "States" object: the top level, a Parallel branch or a Map's ItemProcessor."""

    pointer: str  # JSON pointer of the object holding StartAt and States, "" at the top
    start_at: Any
    states: dict[str, Any]


def extra_diagnostics(definition: dict[str, Any]) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    top = _Scope("", definition.get("StartAt"), definition.get("States") if isinstance(definition.get("States"), dict) else {})
    for scope in _scopes(top):
        found += _transition_diagnostics(scope)
        for name, state in scope.states.items():
            if not isinstance(state, dict):
                continue
            where = f"{scope.pointer}/States/{name}"
            found += _error_handler_diagnostics(state, where)
            found += _timeout_diagnostics(state, where)
            found += _resource_diagnostics(state, where)
    return found


def _scopes(scope: _Scope) -> Iterator[_Scope]:
    yield scope
    for name, state in scope.states.items():
        if not isinstance(state, dict):
            continue
        base = f"{scope.pointer}/States/{name}"
        nested = []
        for field in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(field), dict):
                nested.append((f"{base}/{field}", state[field]))
        for index, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                nested.append((f"{base}/Branches[{index}]", branch))
        for pointer, machine in nested:
            states = machine.get("States")
            yield from _scopes(_Scope(pointer, machine.get("StartAt"), states if isinstance(states, dict) else {}))


def _targets(state: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(location suffix, target) of every transition a state makes."""
    if "Next" in state:
        yield "Next", state["Next"]
    if "Default" in state:
        yield "Default", state["Default"]
    for field in ("Choices", "Catch"):
        items = state.get(field)
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and "Next" in item:
                yield f"{field}[{index}]/Next", item["Next"]


def _transition_diagnostics(scope: _Scope) -> list[Diagnostic]:
    # ASL spec, "Transitions": the value of "Next" "MUST exactly and case-sensitively match the
    # name of another state"; "Parallel State": "states in a branch's "States" field can
    # transition only to each other, and no state outside of that "States" field can transition
    # into it" (the same holds for a Map's ItemProcessor; asl-validator checks Iterator only).
    # https://states-language.net/spec.html#transition, #parallel-state, #map-state
    found = []
    for name, state in scope.states.items():
        if not isinstance(state, dict):
            continue
        for suffix, target in _targets(state):
            if isinstance(target, str) and target not in scope.states:
                found.append(Diagnostic(
                    "MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {target}",
                    f"{scope.pointer}/States/{name}/{suffix}"))
    # Every state must be reachable from StartAt through its own scope's transitions: AWS
    # refuses an unreachable one as MISSING_TRANSITION_TARGET 'State "X" is not reachable.'
    # (AWS's answer quoted in localstack/localstack#11978). asl-validator only asks whether
    # some state anywhere names it, so an unreachable cycle (A -> B -> A) passes there.
    reached: set[str] = set()
    pending = [scope.start_at] if isinstance(scope.start_at, str) else []
    while pending:
        name = pending.pop()
        if name in reached or not isinstance(scope.states.get(name), dict):
            continue
        reached.add(name)
        pending += [target for _, target in _targets(scope.states[name]) if isinstance(target, str)]
    for name in scope.states:
        if name not in reached:
            found.append(Diagnostic(
                "MISSING_TRANSITION_TARGET", f'State "{name}" is not reachable.', f"{scope.pointer}/States/{name}"))
    return found


def _error_handler_diagnostics(state: dict[str, Any], where: str) -> list[Diagnostic]:
    # ASL spec, "Retrying after error" and "Fallback states"
    # (https://states-language.net/spec.html#retrying-after-error, #fallback-states):
    # "ErrorEquals" MUST be a non-empty array; "States.ALL" "MUST appear alone in the
    # "ErrorEquals" array and MUST appear in the last Retrier in the "Retry" array" (the same
    # for the last Catcher in "Catch"); "IntervalSeconds" and "MaxDelaySeconds" MUST be
    # positive integers; "The value of BackoffRate MUST be greater than or equal to 1.0".
    found = []
    for field in ("Retry", "Catch"):
        handlers = state.get(field)
        if not isinstance(handlers, list):
            continue
        for index, handler in enumerate(handlers):
            if not isinstance(handler, dict):
                continue
            at = f"{where}/{field}[{index}]"
            errors = handler.get("ErrorEquals")
            if isinstance(errors, list):
                if not errors:
                    found.append(Diagnostic("SCHEMA_VALIDATION_FAILED", "ErrorEquals must not be empty", f"{at}/ErrorEquals"))
                if "States.ALL" in errors and len(errors) > 1:
                    found.append(Diagnostic(
                        "SCHEMA_VALIDATION_FAILED", "States.ALL must appear alone in ErrorEquals", f"{at}/ErrorEquals"))
                if "States.ALL" in errors and index != len(handlers) - 1:
                    kind = "Retrier" if field == "Retry" else "Catcher"
                    found.append(Diagnostic(
                        "SCHEMA_VALIDATION_FAILED", f"States.ALL must appear in the last {kind}", f"{at}/ErrorEquals"))
            if field != "Retry":
                continue
            for key in ("IntervalSeconds", "MaxDelaySeconds"):
                if key in handler and not _positive_int(handler[key]):
                    found.append(Diagnostic("SCHEMA_VALIDATION_FAILED", f"{key} must be a positive integer", f"{at}/{key}"))
            rate = handler.get("BackoffRate")
            if isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate < 1.0:
                found.append(Diagnostic("SCHEMA_VALIDATION_FAILED", "BackoffRate must be greater than or equal to 1.0", f"{at}/BackoffRate"))
    return found


def _timeout_diagnostics(state: dict[str, Any], where: str) -> list[Diagnostic]:
    # ASL spec, "Task State", Timeouts: "If provided, the "HeartbeatSeconds" interval MUST be
    # smaller than the "TimeoutSeconds" value." (https://states-language.net/spec.html#task-state)
    # asl-validator checks each is a positive integer, not the two together.
    timeout, heartbeat = state.get("TimeoutSeconds"), state.get("HeartbeatSeconds")
    if state.get("Type") == "Task" and _positive_int(heartbeat) and _positive_int(timeout) and heartbeat >= timeout:
        return [Diagnostic(
            "SCHEMA_VALIDATION_FAILED", "HeartbeatSeconds must be smaller than TimeoutSeconds", f"{where}/HeartbeatSeconds")]
    return []


def _resource_diagnostics(state: dict[str, Any], where: str) -> list[Diagnostic]:
    # A Task's "Resource" "MUST be a URI that uniquely identifies the specific task to execute"
    # (ASL spec, "Task State"); for Step Functions an ARN: "INVALID_RESOURCE: The value of a
    # Task-state resource field is invalid" (API_ValidateStateMachineDefinitionDiagnostic).
    # asl-validator accepts "${Name}" and {"Fn::GetAtt": ...} there on purpose (substituted
    # before deployment); what reaches CreateStateMachine is the text after substitution, so a
    # DefinitionSubstitutions key that was forgotten leaves a literal "${Name}" AWS refuses.
    if state.get("Type") != "Task" or "Resource" not in state:
        return []
    resource = state["Resource"]
    if isinstance(resource, str) and "${" in resource:
        why = f"Unsubstituted placeholder in Resource: {resource}"
    elif not isinstance(resource, str) or not _ARN.match(resource):
        why = f"Value is not a valid resource ARN: {json.dumps(resource)}"
    else:
        return []
    return [Diagnostic("INVALID_RESOURCE", why, f"{where}/Resource")]


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# ------------------------------------------------------------------------------------------
# The local cloud: CreateStateMachine / UpdateStateMachine refuse what AWS refuses
# ------------------------------------------------------------------------------------------


def sfn_definition_validation_patches() -> list[tuple[Any, str, Any]]:
    """Patches (server.py's ``Patch`` tuples) for moto's Step Functions backend: validate the
    definition as above before moto's own parse, answering InvalidDefinition (HTTP 400) or, past
    the length constraint, ValidationException, as the API reference lists for both actions
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html,
    .../API_UpdateStateMachine.html). Both the stack deployer (stack.py, after
    DefinitionSubstitutions) and any SDK call go through here."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.exceptions import ValidationException
    from moto.stepfunctions.parser.api import InvalidDefinition as MotoInvalidDefinition
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    class InvalidDefinition(AWSError):
        # Not moto's parser.api.InvalidDefinition: that one sets ``code``, which AWSError ignores,
        # so it reaches the client with an empty __type.
        TYPE = "InvalidDefinition"
        STATUS = 400

    def refuse_invalid(definition: Any) -> None:
        if not isinstance(definition, str):
            return  # moto's own checks answer a missing definition
        try:
            check_definition(definition)
        except DefinitionTooLongError as exc:
            raise ValidationException(str(exc)) from None
        except InvalidDefinitionError as exc:
            raise InvalidDefinition(str(exc)) from None

    original_create = StepFunctionsParserBackend.create_state_machine
    original_update = StepFunctionsParserBackend.update_state_machine

    def create_state_machine(self: Any, *args: Any, **kwargs: Any) -> Any:
        refuse_invalid(kwargs["definition"] if "definition" in kwargs else args[1])
        with typed_parser_refusals():
            return original_create(self, *args, **kwargs)

    def update_state_machine(self: Any, *args: Any, **kwargs: Any) -> Any:
        refuse_invalid(kwargs["definition"] if "definition" in kwargs else (args[1] if len(args) > 1 else None))
        with typed_parser_refusals():
            return original_update(self, *args, **kwargs)

    @contextlib.contextmanager
    def typed_parser_refusals() -> Iterator[None]:
        """What moto's own ASL parser refuses, answered with the InvalidDefinition type too."""
        try:
            yield
        except MotoInvalidDefinition as exc:
            raise InvalidDefinition(getattr(exc, "message", None) or str(exc)) from None

    return [
        (StepFunctionsParserBackend, "create_state_machine", create_state_machine),
        (StepFunctionsParserBackend, "update_state_machine", update_state_machine),
    ]
