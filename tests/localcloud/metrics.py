"""Instrumentation of a running local cloud, installed from the outside (nothing in server.py,
lambda_runtime.py or events.py knows about it):

* ``ApiRecorder``: a WSGI middleware around the cloud's HTTP app that records every AWS API
  request it serves: arrival and answer time, service, operation, HTTP status and *who called*:

  - ``function``: deckhand's Rust functions (their SDK's user agent says ``aws-sdk-rust``); the
    function is named by the ``app/<id>`` user-agent token, which the recorder makes every
    sandbox send by adding ``AWS_SDK_UA_APP_ID=<function name>`` to its environment;
  - ``harness``: clients made with ``harness_config()`` (user agent ``deckhand-harness``):
    the benchmark or a test observing the system;
  - ``cloud``: everything else, i.e. the local cloud calling itself the way AWS services call
    each other (Step Functions invoking Lambda, EventBridge starting executions, the stack
    deployer).

* ``InvocationRecorder``: the Lambda runtime's view: for every invocation, when the function's
  runtime fetched the event (``GET /next`` answered) and when it posted the result, so handler
  time excludes queueing and init; and for every sandbox, how long its init took (process
  start to its first ``GET /next``).

    recorder = install(cloud)          # both, on a started LocalCloud
    ...
    recorder.api.calls(caller="function", since=t0)
    recorder.invocations.handler_ms("deploy")
    recorder.uninstall()

Install before the first invocation (sandboxes started earlier keep their environment and
are then reported as function "?").
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

from botocore.config import Config

from . import lambda_runtime

HARNESS_USER_AGENT = "deckhand-harness"
APP_ID_VARIABLE = "AWS_SDK_UA_APP_ID"

# Signing names (credential scope) → the name people use for the service.
SERVICE_NAMES = {"elasticloadbalancing": "elbv2", "execute-api": "apigateway"}
_CREDENTIAL = re.compile(r"Credential=[^/]*/\d{8}/[^/]*/([^/]+)/aws4_request")
_LAMBDA_PATHS = [
    (re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$"), "POST", "Invoke"),
    (re.compile(r"^/2014-11-13/functions/([^/]+)/invoke-async/?$"), "POST", "InvokeAsync"),
]


def harness_config(**kwargs: Any) -> Config:
    """botocore Config for clients whose calls must count as the harness's, not deckhand's."""
    return Config(user_agent_extra=HARNESS_USER_AGENT, retries={"max_attempts": 2}, read_timeout=900, **kwargs)


@dataclass(frozen=True)
class ApiCall:
    started: float  # epoch seconds, when the request reached the cloud
    finished: float  # when the cloud had its answer
    service: str
    operation: str
    caller: str  # function | harness | cloud
    function: str | None  # for caller == function: the function name ("?" if unknown)
    status: int
    resource: str | None = None  # e.g. the Lambda function invoked


def _header(environ: dict[str, Any], name: str) -> str:
    return environ.get("HTTP_" + name.upper().replace("-", "_"), "") or ""


def _service_of(environ: dict[str, Any]) -> str:
    match = _CREDENTIAL.search(_header(environ, "Authorization"))
    if match:
        return SERVICE_NAMES.get(match.group(1), match.group(1))
    host = _header(environ, "Host").split(".")[0]
    return host or "?"


def _operation_of(environ: dict[str, Any], body: bytes) -> tuple[str, str | None]:
    target = _header(environ, "X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1], None
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0], None
    content_type = environ.get("CONTENT_TYPE", "")
    if body and "x-www-form-urlencoded" in content_type:
        form = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0], None
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    for pattern, want_method, name in _LAMBDA_PATHS:
        found = pattern.match(path)
        if found and method == want_method:
            return name, _function_name(unquote(found.group(1)))
    return f"{method} {path}", None


def _function_name(reference: str) -> str:
    """NAME, NAME:QUALIFIER or a function ARN → NAME."""
    if reference.startswith("arn:"):
        parts = reference.split(":")
        return parts[6] if len(parts) > 6 else reference
    return reference.split(":", 1)[0]


def _caller_of(environ: dict[str, Any]) -> tuple[str, str | None]:
    agent = " ".join((_header(environ, "User-Agent"), _header(environ, "X-Amz-User-Agent")))
    if "aws-sdk-rust" in agent:
        app = re.search(r"\bapp/([^\s]+)", agent)
        return "function", app.group(1) if app else "?"
    if HARNESS_USER_AGENT in agent:
        return "harness", None
    return "cloud", None


class ApiRecorder:
    """WSGI middleware recording every request; see the module doc."""

    def __init__(self, app: Callable, clock: Callable[[], float] = time.time):
        self.app = app
        self.clock = clock
        self._lock = threading.Lock()
        self._calls: list[ApiCall] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        started = self.clock()
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_localcloud/") or path.startswith("/moto-api"):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = b""
        if length:  # read it to find the operation, and hand moto an identical stream
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        status_holder: list[int] = [0]

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            try:
                status_holder[0] = int(status.split(" ", 1)[0])
            except ValueError:
                pass
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            return self.app(environ, recording_start_response)
        finally:
            operation, resource = _operation_of(environ, body)
            caller, function = _caller_of(environ)
            call = ApiCall(started, self.clock(), _service_of(environ), operation, caller, function,
                           status_holder[0], resource)
            with self._lock:
                self._calls.append(call)

    def calls(self, caller: str | None = None, since: float | None = None, until: float | None = None,
              service: str | None = None, operation: str | None = None,
              function: str | None = None) -> list[ApiCall]:
        with self._lock:
            calls = list(self._calls)
        return [
            c for c in calls
            if (caller is None or c.caller == caller)
            and (since is None or c.started >= since)
            and (until is None or c.started <= until)
            and (service is None or c.service == service)
            and (operation is None or c.operation == operation)
            and (function is None or c.function == function)
        ]

    @staticmethod
    def by_service(calls: Iterable[ApiCall]) -> Counter:
        return Counter(c.service for c in calls)

    @staticmethod
    def by_operation(calls: Iterable[ApiCall]) -> Counter:
        return Counter(f"{c.service}:{c.operation}" for c in calls)


@dataclass
class Invocation:
    function: str
    sandbox: str
    request_id: str
    fetched: float  # the runtime got the event
    finished: float | None = None  # the runtime posted its response or error
    first_in_sandbox: bool = False
    error: bool = False

    @property
    def handler_ms(self) -> float | None:
        return None if self.finished is None else (self.finished - self.fetched) * 1000


@dataclass
class SandboxInit:
    function: str
    sandbox: str
    started: float
    ready: float | None = None  # first GET /next

    @property
    def init_ms(self) -> float | None:
        return None if self.ready is None else (self.ready - self.started) * 1000


@dataclass
class InvocationRecorder:
    """Hooks on the local Lambda runtime's sandboxes (class attributes, restored by uninstall)."""

    clock: Callable[[], float] = time.time
    invocations: list[Invocation] = field(default_factory=list)
    inits: list[SandboxInit] = field(default_factory=list)
    _by_request: dict[str, Invocation] = field(default_factory=dict)
    _init_by_sandbox: dict[int, SandboxInit] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_start(self, sandbox: Any) -> None:
        with self._lock:
            init = SandboxInit(sandbox.config.name, sandbox.label, self.clock())
            self.inits.append(init)
            self._init_by_sandbox[id(sandbox)] = init

    def record_fetch(self, sandbox: Any, invocation: Any) -> None:
        now = self.clock()
        with self._lock:
            init = self._init_by_sandbox.get(id(sandbox))
            first = init is not None and init.ready is None
            if first:
                init.ready = now
            record = Invocation(sandbox.config.name, sandbox.label, invocation.request_id, now, first_in_sandbox=first)
            self.invocations.append(record)
            self._by_request[invocation.request_id] = record

    def record_finish(self, request_id: str, error: bool) -> None:
        now = self.clock()
        with self._lock:
            record = self._by_request.get(request_id)
            if record is not None and record.finished is None:
                record.finished = now
                record.error = error

    def select(self, function: str | None = None, since: float | None = None,
               until: float | None = None) -> list[Invocation]:
        with self._lock:
            found = list(self.invocations)
        return [
            i for i in found
            if (function is None or i.function == function)
            and (since is None or i.fetched >= since)
            and (until is None or i.fetched <= until)
        ]


class Instrumentation:
    """Both recorders installed on one LocalCloud; ``uninstall`` undoes everything."""

    def __init__(self, cloud: Any, clock: Callable[[], float] = time.time):
        self.cloud = cloud
        self.api = ApiRecorder(cloud._server.app, clock)
        self.invocations = InvocationRecorder(clock)
        self._undo: list[Callable[[], None]] = []

    def install(self) -> "Instrumentation":
        server = self.cloud._server  # werkzeug's server: handlers call server.app
        server.app = self.api
        self._undo.append(lambda: setattr(server, "app", self.api.app))
        self._patch_sandbox()
        return self

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _patch_sandbox(self) -> None:
        sandbox_class = lambda_runtime.Sandbox
        recorder = self.invocations
        original_environment = sandbox_class._environment
        original_start = sandbox_class.start
        original_wait = sandbox_class.wait_for_invocation
        original_complete = sandbox_class.complete

        def environment(sandbox: Any) -> dict[str, str]:
            env = original_environment(sandbox)
            env.setdefault(APP_ID_VARIABLE, sandbox.config.name[:50])
            return env

        def start(sandbox: Any) -> None:
            recorder.record_start(sandbox)
            original_start(sandbox)

        def wait_for_invocation(sandbox: Any) -> Any:
            invocation = original_wait(sandbox)
            if invocation is not None:
                recorder.record_fetch(sandbox, invocation)
            return invocation

        def complete(sandbox: Any, request_id: str, result: Any) -> bool:
            done = original_complete(sandbox, request_id, result)
            if done:
                recorder.record_finish(request_id, bool(getattr(result, "function_error", None)))
            return done

        patches = {
            "_environment": environment,
            "start": start,
            "wait_for_invocation": wait_for_invocation,
            "complete": complete,
        }
        originals = {name: getattr(sandbox_class, name) for name in patches}
        for name, replacement in patches.items():
            setattr(sandbox_class, name, replacement)

        def restore() -> None:
            for name, original in originals.items():
                setattr(sandbox_class, name, original)

        self._undo.append(restore)


def install(cloud: Any, clock: Callable[[], float] = time.time) -> Instrumentation:
    """Instrument a started LocalCloud (see the module doc)."""
    return Instrumentation(cloud, clock).install()
