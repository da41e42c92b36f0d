"""The local cloud: moto served in-process, with the pieces deckhand needs added.

``start_local_cloud`` configures moto (Step Functions executions on, AWS managed
policies loaded, ``MOTO_PORT`` = the served port, which moto's Step Functions
task integrations call back through), patches it:

* Lambda ``Invoke`` runs the function's code in the local runtime
  (``lambda_runtime``) instead of Docker;
* EventBridge delivers to Step Functions / Lambda / SQS targets and ECR
  ``PutImage`` emits its event (``events``);
* the ECS/ELBv2 rollout simulator (``ecs_sim``, when present) makes
  deployments progress and publishes ``ECS Deployment State Change`` events;
  blue/green, linear and canary deployments (``ecs_native``) invoke their lifecycle
  hooks through ``LocalCloud.invoke_function`` (the local Lambda runtime);
* moto's Step Functions interpreter gets fixes where it differs from AWS in
  ways a state machine relies on (``_sfn_*_patch`` below, each says why);

serves everything on ``127.0.0.1:<port>`` (moto's own WSGI app behind a few
``/_localcloud/`` control routes) and deploys the stack from the SAM template.

moto keeps its state in process-wide backends, so one process hosts at most
one local cloud at a time.

What is refused as AWS refuses it, and what still differs from AWS: README.md
in this directory.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import os
import re
import shutil
import sys
import threading
import types
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

from moto.awslambda import responses as lambda_responses
from moto.awslambda.models import LambdaFunction
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.config import default_user_config
from moto.core.exceptions import JsonRESTError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

from .events import EventDelivery, EventHooks
from .registries import install_ecr_routing
from .schedules import Schedules
from .ecr_lifecycle import LifecycleRunner
from .faults import FaultInjector
from .iam import IamEnforcement
from .asl_validation import sfn_definition_validation_patches
from .lambda_concurrency import Throttled
from .throttling import Throttling
from .emf import EmfExtractor
from .lambda_runtime import LambdaRuntime, RequestTooLarge, version_of
from . import cloudwatch_rules, sfn_rules
from . import sfn_quotas

# moto parses the stand-in resource of a published stack (LocalCloud._publish_stack) and warns
# that it cannot create it; it need not.
warnings.filterwarnings("ignore", message=".*WaitConditionHandle.*")
from . import sfn_integrations
from .stack import DeployedStack, build_functions, deploy_template, load_template, template_has_rust_functions

LOG = logging.getLogger("localcloud")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"
REGISTRY_TEMPLATE = PROJECT_ROOT / "registry.yaml"
DEFAULT_RUN_DIR = PROJECT_ROOT / ".localcloud"
REGION = "us-east-1"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID
CONTROL_PREFIX = "/_localcloud/"

_active_lock = threading.Lock()
_active: "LocalCloud | None" = None


def _header(headers: Any, name: str) -> str | None:
    """Header lookup that works for werkzeug headers and moto's internal dicts."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


Patch = tuple[Any, str, Any]  # (class or module, attribute, replacement)


class _Patches:
    """Monkey patches applied together and undone in reverse order."""

    def __init__(self) -> None:
        self._originals: list[Patch] = []

    def apply(self, patches: list[Patch]) -> None:
        for owner, name, replacement in patches:
            self._originals.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)

    def undo(self) -> None:
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)


def _lambda_invoke_patch(runtime: LambdaRuntime) -> list[Patch]:
    """Every moto path that runs a function (Invoke, InvokeAsync, event source
    mappings, SNS, ...) ends in LambdaFunction.invoke, which would start Docker;
    run the function in the local runtime instead, answering like AWS."""

    def invoke(fn: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        invocation_type = _header(request_headers, "X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":  # moto's response layer answers 202
            runtime.invoke_async(fn, payload)
            return b""
        try:
            result = runtime.invoke(fn, payload)
        except Throttled as throttled:  # no concurrency left (lambda_concurrency.py)
            error = JsonRESTError("TooManyRequestsException", "Rate Exceeded.")
            error.code = 429
            error.description = json.dumps(
                {"Reason": throttled.reason, "Type": "User", "message": "Rate Exceeded."}
            )
            raise error from None
        except RequestTooLarge as refusal:  # 6 MB quota (lambda_runtime.MAX_SYNC_PAYLOAD_BYTES)
            error = JsonRESTError("RequestTooLargeException", str(refusal))
            error.code = 413
            raise error from None
        if result.function_error:
            # HTTP 200 with the error document as payload, as AWS does.
            response_headers["x-amz-function-error"] = result.function_error
        response_headers["x-amz-executed-version"] = version_of(fn)
        return result.payload

    # moto replaces a response with Function.ResponseSizeTooLarge when sys.getsizeof(payload) >
    # 6,000,000, i.e. from 5,999,967 bytes; AWS's 6 MB are 6,291,456 bytes, enforced by the runtime.
    no_moto_size_cap = types.SimpleNamespace(getsizeof=lambda _payload: 0)
    return [(LambdaFunction, "invoke", invoke), (lambda_responses, "sys", no_moto_size_cap)]


def _states_error(env: Any, error_type: str, cause: str) -> Exception:
    """The FailureEventException for a States.* error, e.g. ``StatesRuntime``
    (what AWS raises for paths that select nothing and other definition errors
    met at run time)."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    typ = StatesErrorNameType[error_type]
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=typ),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(error=typ.to_name(), cause=cause)),
        )
    )


def _sfn_variable_reference_patch() -> list[Patch]:
    """Variable references (``$name``, ``$name.path``) in JSONPath mode.

    moto hands them to a JSONata evaluator it does not ship
    (``eval_jsonata_expression`` calls ``None``), so using a variable set by
    ``Assign`` in Parameters, a Choice rule or an intrinsic function fails the
    execution with States.Runtime ``TypeError('NoneType' object is not
    callable)``. In JSONPath mode a reference is a variable name followed by an
    optional JSONPath: evaluate it without JSONata.
    """
    from moto.stepfunctions.parser.asl.component.common.query_language import QueryLanguageMode
    from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringVariableSample
    from moto.stepfunctions.parser.asl.eval.variable_store import NoSuchVariable
    from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError, extract_json

    original = StringVariableSample._eval_body
    reference = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.DOTALL)

    def eval_body(self: StringVariableSample, env: Any) -> None:
        match = reference.match(self.expression.strip())
        if self.query_language_mode != QueryLanguageMode.JSONPath or match is None:
            return original(self, env)
        name, path = match.groups()
        try:
            value = env.variable_store.get(name)
        except NoSuchVariable:
            raise _states_error(env, "StatesRuntime", f"The variable reference '{self.expression}' is not defined") from None
        if path:
            try:
                value = extract_json("$" + path, value)
            except NoSuchJsonPathError:
                raise _states_error(
                    env, "StatesRuntime", f"The JSONPath '{self.expression}' could not be found in the variable '{name}'"
                ) from None
        env.stack.append(copy.deepcopy(value))

    return [(StringVariableSample, "_eval_body", eval_body)]


def _sfn_start_time_patch() -> list[Patch]:
    """``$$.Execution.StartTime`` is a datetime in moto: any output that samples
    it cannot be serialised (DescribeExecution fails with HTTP 500, a Lambda
    payload cannot be built). AWS gives an ISO 8601 string with milliseconds."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._get_evaluation_environment

    def evaluation_environment(self: ExecutionWorker) -> Any:
        env = original(self)
        execution = env.states.context_object.context_object_data.get("Execution", {})
        start = execution.get("StartTime")
        if isinstance(start, datetime.datetime):
            start = start.astimezone(datetime.timezone.utc)
            execution["StartTime"] = start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
        return env

    return [(ExecutionWorker, "_get_evaluation_environment", evaluation_environment)]


def _sfn_unnamed_execution_patch() -> list[Patch]:
    """StartExecution without a name: moto names the execution None (its ARN
    ends in ":None"), and the next unnamed StartExecution returns that execution
    (same input, still running) or fails with ExecutionAlreadyExists. AWS uses a
    UUID."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: StepFunctionsParserBackend, state_machine_arn: str, name: Any = None,
                        execution_input: Any = None, trace_header: Any = None) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    return [(StepFunctionsParserBackend, "start_execution", start_execution)]


def _sfn_states_error_propagation_patch() -> list[Patch]:
    """An error leaving a Map iteration or a Parallel branch (or named by a Fail
    state) is rebuilt by moto as CustomErrorName(name), which refuses names
    starting with "States.": a States.Timeout inside a Map turns into States.Runtime
    "Custom Error Names MUST NOT begin with the prefix 'States.'", which no Catch
    on States.Timeout matches. Rebuild States.* names as the interpreter's own
    (so that States.TaskFailed still does not match them, as in AWS)."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
    from moto.stepfunctions.parser.asl.component.state.fail import state_fail

    class ServiceErrorName(ErrorName):
        """A States.* name the interpreter has no type for."""

    def make_error_name(error_name: str | None) -> ErrorName:  # CustomErrorName's signature
        if error_name and error_name.startswith("States."):
            try:
                return StatesErrorName(StatesErrorNameType.from_name(error_name))
            except ValueError:
                return ServiceErrorName(error_name)
        return CustomErrorName(error_name)

    return [(module, "CustomErrorName", make_error_name) for module in (iteration_worker, branches_decl, state_fail)]


def _sfn_runtime_error_patches() -> list[Patch]:
    """States.Runtime (and NoChoiceMatched) as in AWS, so that definition mistakes fail locally too.

    * A Task's (or Map's, Parallel's) Parameters, ResultSelector or ResultPath
      naming a path that is not there: moto reports a States.TaskFailed whose
      error text is "Exception", which Retry and Catch on States.ALL then handle.
      AWS fails with States.Runtime.
    * States.Runtime "isn't retriable, and will always cause the execution to
      fail. A retry or catch on States.ALL won't catch States.Runtime errors"
      (AWS error-handling docs); moto's States.ALL matches it.
    * A Choice rule whose Variable selects nothing: moto treats the rule as not
      matching (falls through to Default); AWS fails with States.Runtime unless
      the operator is IsPresent.
    * A Choice without Default where no rule matches: moto fails with
      States.Runtime, AWS with States.NoChoiceMatched.
    """
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_operator_type import (
        ComparisonOperatorType,
    )
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_variable import (
        ComparisonVariable,
    )
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.variable import NoSuchVariable
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError

    from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice

    original_evaluate = ExecutionState._evaluate_with_timeout
    original_error_equals = ErrorEqualsDecl._eval_body
    original_choice = StateChoice._eval_state

    def evaluate_with_timeout(self: ExecutionState, env: Any) -> None:
        try:
            original_evaluate(self, env)
        except NoSuchJsonPathError as error:
            raise _states_error(
                env,
                "StatesRuntime",
                f"The JSONPath '{error.json_path}' could not be found in the input '{json.dumps(error.data)}'",
            ) from None

    def error_equals(self: ErrorEqualsDecl, env: Any) -> None:
        error_name = env.stack[-1]
        if isinstance(error_name, StatesErrorName) and error_name.typ == StatesErrorNameType.StatesRuntime:
            env.stack.pop()
            env.stack.append(False)
            return
        original_error_equals(self, env)

    def comparison(self: ComparisonVariable, env: Any) -> None:
        self.variable.eval(env)
        if (
            isinstance(env.stack[-1], NoSuchVariable)
            and self.comparison_function.operator_type != ComparisonOperatorType.IsPresent
        ):
            path = self.variable.string_sampler.literal_value
            raise _states_error(
                env, "StatesRuntime",
                f"Invalid path '{path}': The choice state's condition path references an invalid value.",
            )
        self.comparison_function.eval(env)

    def choice(self: StateChoice, env: Any) -> None:
        try:
            original_choice(self, env)
        except RuntimeError as error:
            if not str(error.args[0] if error.args else "").startswith("No branching option"):
                raise
            raise _states_error(env, "StatesNoChoiceMatched", "No Matches!") from None

    return [
        (ExecutionState, "_evaluate_with_timeout", evaluate_with_timeout),
        (ErrorEqualsDecl, "_eval_body", error_equals),
        (ComparisonVariable, "_eval_body", comparison),
        (StateChoice, "_eval_state", choice),
    ]


def _sfn_patches() -> list[Patch]:
    """Fixes to moto's Step Functions interpreter (LocalStack's ASL interpreter)."""
    return [
        *_sfn_variable_reference_patch(),
        *_sfn_start_time_patch(),
        *_sfn_unnamed_execution_patch(),
        *_sfn_states_error_propagation_patch(),
        *_sfn_runtime_error_patches(),
        *sfn_definition_validation_patches(),  # InvalidDefinition as AWS: asl_validation.py
        *sfn_quotas.patches(),  # history, payload, Fail cause, Lambda error names (sfn_quotas.py)
        *sfn_integrations.patches(),  # startExecution.sync:2, heartbeats (sfn_integrations.py)
    ]


class _ControlApp:
    """WSGI front: ``/_localcloud/...`` here, everything else to moto."""

    def __init__(self, cloud: "LocalCloud", moto_app: Callable):
        self.cloud = cloud
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            return self.moto_app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
            status, result = self.cloud.control(method, path[len(CONTROL_PREFIX) :], body)
        except ValueError as exc:
            status, result = 400, {"error": str(exc)}
        data = json.dumps(result, default=str).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}.get(status, "Error")
        start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


class LocalCloud:
    """A running local cloud. Use ``start_local_cloud`` to get one."""

    def __init__(self, port: int = 0, run_dir: Path | None = None, region: str = REGION):
        self.region = region
        self.account_id = ACCOUNT_ID
        self.run_dir = Path(run_dir or DEFAULT_RUN_DIR)
        self.requested_port = port
        self.port = 0
        self.endpoint = ""
        self.runtime: LambdaRuntime | None = None
        self.events: EventHooks | None = None
        self.delivery: EventDelivery | None = None
        self.schedules: Schedules | None = None
        self.sim: Any = None
        self.stacks: dict[str, DeployedStack] = {}
        self.stack: DeployedStack | None = None  # the project's stack
        self._server: BaseWSGIServer | None = None
        self._server_thread: threading.Thread | None = None
        self._undo: list[Callable[[], None]] = []
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._account_credentials: dict[str, dict[str, Any]] = {}
        self._stopped = False

    # -- public API -----------------------------------------------------------

    @property
    def stack_outputs(self) -> dict[str, Any]:
        return dict(self.stack.outputs) if self.stack else {}

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for this cloud (us-east-1, dummy credentials)."""
        if kwargs:
            return self._new_client(service, **kwargs)
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._new_client(service)
            return self._clients[service]

    def _new_client(self, service: str, **kwargs: Any) -> Any:
        config = kwargs.pop("config", Config(retries={"max_attempts": 2}, read_timeout=900))
        return boto3.session.Session().client(
            service,
            region_name=kwargs.pop("region_name", self.region),
            endpoint_url=self.endpoint,
            aws_access_key_id="localcloud",
            aws_secret_access_key="localcloud",
            config=config,
            **kwargs,
        )

    def deploy(
        self,
        template: Path,
        params: dict[str, Any] | None = None,
        stack_name: str = "deckhand",
        build: bool = False,
        main: bool = False,
        venv_bin: Path | None = None,
    ) -> DeployedStack:
        """Build (optionally), package, translate and deploy a SAM template.
        ``main``: this is the project's stack (``stack``, ``stack_outputs``)."""
        template = Path(template)
        if build and template_has_rust_functions(load_template(template)):
            build_functions(template.parent, venv_bin or Path(sys.executable).parent)
        assert self.runtime is not None
        deployed = deploy_template(
            template,
            self.client,
            dict(params or {}),
            stack_name,
            self.region,
            self.account_id,
            on_function=self.runtime.set_logging_config,
        )
        self.stacks[stack_name] = deployed
        self._publish_stack(deployed)
        if main:
            self.stack = deployed
            # Every account RegistryAccounts lists gets the registry side, so that a push made
            # with that account's credentials reaches deckhand.
            accounts = (params or {}).get("RegistryAccounts", "")
            for account in [a for a in (accounts if isinstance(accounts, list) else str(accounts).split(",")) if a]:
                self.deploy_registry_side(account.strip())
        return deployed

    def account_client(self, account: str, service: str, region: str | None = None) -> Any:
        """A client acting in `account` (any 12-digit id): credentials of a role there from
        sts:AssumeRole, as a person or pipeline of that account would have."""
        if account == self.account_id:
            return self.client(service, region_name=region or self.region)
        with self._clients_lock:
            credentials = self._account_credentials.get(account)
        if credentials is None:
            credentials = self.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                RoleSessionName="localcloud")["Credentials"]
            with self._clients_lock:
                self._account_credentials[account] = credentials
        return boto3.session.Session().client(
            service, region_name=region or self.region, endpoint_url=self.endpoint,
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"], config=Config(retries={"max_attempts": 2}))

    def deploy_registry_side(self, account: str, region: str | None = None) -> DeployedStack:
        """registry.yaml in `account` and `region`, forwarding its pushes to deckhand's bus."""
        region = region or self.region
        deployed = deploy_template(
            REGISTRY_TEMPLATE,
            lambda service: self.account_client(account, service, region),
            {"DeckhandAccount": self.account_id, "DeckhandRegion": self.region},
            # IAM is global: one stack name per Region keeps role names apart.
            f"deckhand-registry-{region}",
            region,
            account,
        )
        self.stacks[f"deckhand-registry@{account}/{region}"] = deployed
        LOG.info("registry side (registry.yaml) deployed in account %s, Region %s", account, region)
        return deployed

    def _publish_stack(self, deployed: DeployedStack) -> None:
        """Make the stack and its outputs answer ``DescribeStacks`` (moto's CloudFormation), as
        `sam deploy` leaves them: the deckhand command finds its state machine and table there.
        Our own engine created the resources; moto only holds a stand-in resource and the outputs."""
        body = {
            "Resources": {"Deployed": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": str(value)} for key, value in deployed.outputs.items()},
        }
        cloudformation = self.client("cloudformation")
        cloudformation.delete_stack(StackName=deployed.name)  # a redeploy replaces it
        cloudformation.create_stack(StackName=deployed.name, TemplateBody=json.dumps(body))

    def emit_event(self, entry: dict[str, Any]) -> None:
        """Put an AWS service's event (a PutEvents entry) on the default bus."""
        assert self.events is not None
        self.events.emit(entry, self.account_id, self.region)

    def invoke_function(self, function_arn: str, payload: bytes) -> tuple[bytes, str | None]:
        """A synchronous Invoke as an AWS service makes it (ECS's lifecycle hooks, ecs_hooks.py):
        the function runs in the local runtime; answers (payload, X-Amz-Function-Error or None).
        Raises for an unknown function or when Lambda refuses the call (concurrency)."""
        from moto.awslambda.models import lambda_backends

        assert self.runtime is not None
        parts = function_arn.split(":")
        account, region, name = parts[4], parts[3], parts[6]
        qualifier = parts[7] if len(parts) > 7 else None
        fn = lambda_backends[account][region].get_function(name, qualifier)
        result = self.runtime.invoke(fn, payload)
        return result.payload, result.function_error

    def wait_for_deliveries(self, timeout: float = 60) -> bool:
        """Block until every event matched so far was handed to its target."""
        return self.delivery.wait_idle(timeout) if self.delivery else True

    def _reserved_concurrency(self) -> dict[str, int]:
        """Each function's reserved concurrency (PutFunctionConcurrency, or the template's
        ReservedConcurrentExecutions) in the local cloud's account and Region."""
        from moto.awslambda.models import lambda_backends

        functions = lambda_backends[self.account_id][self.region].list_functions()
        return {
            fn.function_name: int(fn.reserved_concurrency)
            for fn in functions
            if fn.reserved_concurrency is not None
        }

    def _send_to_destination(self, destination: str, record: str) -> None:
        """Delivers an asynchronous invocation record, as Lambda does, to an SQS queue."""
        arn = destination.split(":")
        if arn[2] != "sqs":
            raise ValueError(f"only SQS destinations are delivered locally: {destination}")
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=arn[5], QueueOwnerAWSAccountId=arn[4])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=record)

    def lambda_log(self, function_name: str) -> str:
        """What the function's processes wrote so far (its log file)."""
        assert self.runtime is not None
        path = self.runtime.log_path(function_name)
        return path.read_text(errors="replace") if path.exists() else ""

    # -- start / stop ---------------------------------------------------------

    def start(self) -> "LocalCloud":
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError(f"a local cloud is already running in this process on {_active.endpoint}")
            _active = self
        try:
            self._prepare_run_dir()
            self._bind()
            self._configure_moto()
            self.runtime = LambdaRuntime(
                self.run_dir,
                self.endpoint,
                self.region,
                reservations=self._reserved_concurrency,
                send_to_destination=self._send_to_destination,
            )
            self._undo.append(self.runtime.stop)
            # EMF records in the functions' logs become CloudWatch metrics (emf.py).
            self.emf = EmfExtractor(self.runtime.log_dir, self.runtime.function_arn).start()
            self._undo.append(self.emf.stop)
            patches = _Patches()
            self._undo.append(patches.undo)
            patches.apply(_lambda_invoke_patch(self.runtime))
            patches.apply(_sfn_patches())
            patches.apply(sfn_rules.patches())  # log policy size, execution names
            patches.apply(cloudwatch_rules.patches())  # alarm transitions, DescribeAlarms limits
            self.delivery = EventDelivery(self.endpoint)
            self.delivery.start()
            self._undo.append(self.delivery.stop)
            self.events = EventHooks(self.delivery)
            self.events.install()
            self._undo.append(self.events.uninstall)
            # Another account's registryId is served by its registry (registries.py).
            self._undo.append(install_ecr_routing())
            # Scheduled rules (rate expressions) fire on their schedule (schedules.py).
            self.schedules = Schedules(self.delivery)
            self.schedules.install()
            self._undo.append(self.schedules.uninstall)
            # ECR lifecycle policies expire images after each PutImage and on demand.
            self.lifecycle = LifecycleRunner()
            self.lifecycle.install()
            self._undo.append(self.lifecycle.uninstall)
            self._install_simulator()
            self._serve()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, kill every function process, undo the patches and
        forget moto's state. Safe to call more than once."""
        global _active
        if self._stopped:
            return
        self._stopped = True
        if self._server_thread is not None:  # shutdown() waits for serve_forever()
            self._server.shutdown()
            self._server_thread.join(timeout=10)
        if self._server is not None:
            self._server.server_close()
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # noqa: BLE001 - keep tearing down
                LOG.exception("while stopping")
        with _active_lock:
            if _active is self:
                _active = None

    def _prepare_run_dir(self) -> None:
        # Stale unpacked code and logs of an earlier run would only confuse.
        for name in ("code", "logs"):
            shutil.rmtree(self.run_dir / name, ignore_errors=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def _bind(self) -> None:
        # Requests signed with a function's role credentials are authorized first (iam.py).
        self.iam = IamEnforcement(DomainDispatcherApplication(create_backend_app))
        # Every request counts against its API's token bucket; the functions' requests that find
        # it empty are throttled (throttling.py).
        self.throttling = Throttling(self.iam, self.account_id)
        # Injected API errors (throttling, 5xx) answer before anything else (faults.py).
        self.faults = FaultInjector(self.throttling)
        app = _ControlApp(self, self.faults)
        self._server = make_server(
            "127.0.0.1", self.requested_port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        assert self._server is not None
        self._server_thread = threading.Thread(target=self._server.serve_forever, name="localcloud-http", daemon=True)
        self._server_thread.start()

    def _configure_moto(self) -> None:
        saved_config = copy.deepcopy(default_user_config)
        saved_port = os.environ.get("MOTO_PORT")
        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        # SAM attaches AWS managed policies (AWSLambdaBasicExecutionRole, ...).
        default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = True
        # Lambda stays on moto's full backend (use_docker=True selects it; the
        # "simple" one would answer without running anything); Docker itself is
        # never reached because LambdaFunction.invoke is patched.
        default_user_config.setdefault("lambda", {})["use_docker"] = True
        # moto's Step Functions task integrations call http://localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.port)
        from moto.moto_api._internal.models import moto_api_backend

        # A new cloud starts empty, and backends created earlier in this process
        # (by another in-process moto user) would keep their old configuration,
        # e.g. an IAM backend without the AWS managed policies.
        moto_api_backend.reset()

        def restore() -> None:
            moto_api_backend.reset()
            default_user_config.clear()
            default_user_config.update(saved_config)
            if saved_port is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = saved_port

        self._undo.append(restore)

    def _install_simulator(self) -> None:
        try:
            from . import ecs_sim  # written separately; may not exist yet
        except ImportError as exc:
            if "ecs_sim" not in str(exc):
                LOG.warning("ECS simulator not loaded: %s", exc)
            return
        except Exception:  # noqa: BLE001 - a broken simulator must not take the cloud down
            LOG.exception("ECS simulator failed to import")
            return
        self.sim = ecs_sim.install(emit_event=self.emit_event, invoke_function=self.invoke_function)
        self._undo.append(self.sim.stop)

    # -- control routes -------------------------------------------------------

    def control(self, method: str, route: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and route == "health":
            return 200, {
                "status": "ok",
                "endpoint": self.endpoint,
                "stacks": sorted(self.stacks),
                "simulator": self.sim is not None,
            }
        if method == "GET" and route == "stack":
            return (200, self.stack.describe()) if self.stack else (404, {"error": "no stack deployed"})
        if method == "GET" and route == "lambda":
            assert self.runtime is not None
            return 200, self.runtime.stats()
        if route == "lambda/concurrency":  # account concurrency, async retries (lambda_concurrency.py)
            assert self.runtime is not None
            return self.runtime.concurrency.control(method, body)
        if route == "throttling":  # token buckets at AWS's rates (throttling.py)
            return self.throttling.control(method, body)
        if route == "faults":  # POST adds, GET lists, DELETE clears (faults.py)
            return self.faults.control(method, body)
        if route == "events/chaos":  # duplicate, reorder or drop deliveries (events.py)
            if self.delivery is None:
                return 404, {"error": "EventBridge delivery is not running"}
            return self.delivery.control(method, body)
        if route == "events/schedules":  # scheduled rules: list, fire now (schedules.py)
            if self.schedules is None:
                return 404, {"error": "EventBridge schedules are not running"}
            return self.schedules.control(method, body)
        if route == "ecs/consistency":  # ECS reads lag behind writes (ecs_consistency.py)
            if self.sim is None:
                return 404, {"error": "the ECS simulator is not installed"}
            return self.sim.consistency.control(method, body)
        if route == "ecs/native-timing":  # bakes and hook delays of native deployments (ecs_native.py)
            if self.sim is None:
                return 404, {"error": "the ECS simulator is not installed"}
            return self.sim.native_deployments.control(method, body)
        if route == "ecr/lifecycle/run":  # run ECR lifecycle policies now (ecr_lifecycle.py)
            return self.lifecycle.control(method, body)
        if route.startswith("sim/"):
            if self.sim is None:
                return 404, {"error": "the ECS simulator is not installed"}
            if method == "POST" and route == "sim/image-behaviour":
                image = body.get("image")
                if not image:
                    raise ValueError("'image' is required")
                ready = body.get("readySeconds")
                stop_exit = body.get("stopExitCode")
                self.sim.set_image_behaviour(
                    image,
                    health=body.get("health"),
                    ready_seconds=None if ready is None else float(ready),
                    stop_exit_code=None if stop_exit is None else int(stop_exit),
                )
                return 200, {"image": image}
            if method == "POST" and route == "sim/spot-interruption":
                try:
                    return 200, {"task": self.sim.interrupt_spot_task(str(body.get("task") or ""))}
                except KeyError as missing:
                    return 404, {"error": str(missing)}
            if method == "POST" and route == "sim/tick":
                self.sim.tick()
                return 200, {}
        return 404, {"error": f"no route {method} /_localcloud/{route}"}


def start_local_cloud(
    port: int = 0,
    params: dict[str, Any] | None = None,
    build: bool = True,
    template: Path | None = DEFAULT_TEMPLATE,
    stack_name: str = "deckhand",
    run_dir: Path | None = None,
) -> LocalCloud:
    """Serve the local cloud on 127.0.0.1:``port`` (0: a free port) and deploy
    ``template`` (None: no stack) with ``params`` overriding its parameters.
    ``build`` runs ``cargo lambda build --release`` first."""
    cloud = LocalCloud(port, run_dir).start()
    try:
        if template is not None:
            cloud.deploy(Path(template), params, stack_name, build=build, main=True)
    except BaseException:
        cloud.stop()
        raise
    return cloud
