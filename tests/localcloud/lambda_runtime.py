"""Lambda execution environments for the local cloud, without Docker.

moto would run a function in a Docker container; here every function is a local
executable named ``bootstrap`` (a `provided.al2023` custom runtime, which is what
cargo-lambda builds) talking to an emulation of the Lambda Runtime API:

    GET  /2018-06-01/runtime/invocation/next
    POST /2018-06-01/runtime/invocation/{request-id}/response
    POST /2018-06-01/runtime/invocation/{request-id}/error
    POST /2018-06-01/runtime/init/error

One *sandbox* is one bootstrap process plus its own Runtime API listener (so the
listener always knows which process is asking, like a real execution
environment). Sandboxes stay warm between invocations; an invocation that finds
every sandbox of its function busy starts another one, up to a cap, and queues
when the cap is reached. The function Timeout is enforced by killing the
sandbox, and the result then looks like AWS's (`Sandbox.Timedout`).

What AWS returns to the caller is reproduced exactly: a function error is an
HTTP 200 whose payload is the error document the runtime posted and whose
`X-Amz-Function-Error` header is `Unhandled`; Step Functions takes the
document's `errorType` as the error name.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from .lambda_concurrency import (
    THROTTLE_BACKOFF_FIRST_SECONDS,
    THROTTLE_BACKOFF_MAX_SECONDS,
    AsyncPolicy,
    Concurrency,
    Throttled,
    invocation_record,
)
from .lambda_memory import MemoryWatcher

LOG = logging.getLogger("localcloud.lambda")

RUNTIME_API_PREFIX = "/2018-06-01/runtime"
# AWS gives the init phase of an on-demand sandbox 10 s, separately from the
# function Timeout.
INIT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_SANDBOXES_PER_FUNCTION = 10
# Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
# "Invocation payload (request and response): 6 MB each for request and response (synchronous)",
# and "The Lambda documentation ... use the abbreviation MB (rather than MiB) to refer to 1,024 KB".
# A bigger request is refused with RequestTooLargeException, HTTP 413 (Invoke, Lambda API
# reference: "The request payload exceeded the Invoke request body JSON input quota"); a bigger
# response becomes a function error of type Function.ResponseSizeTooLarge (the type and message
# Lambda answers in field reports; moto answers the same).
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
# Not in the docs: the error type field reports show for a function killed for its memory (others
# show Runtime.ExitError "signal: killed"); Step Functions sees the error type as it is (sfn_quotas.py).
OUT_OF_MEMORY = "Runtime.OutOfMemory"
# Host variables that are useful to pass to functions (logging knobs); the rest
# of the host environment stays out, as in a real execution environment.
PASSTHROUGH_HOST_ENV = ("PATH", "RUST_LOG", "RUST_BACKTRACE", "LANG")


@dataclass(frozen=True)
class FunctionConfig:
    """Everything that defines an execution environment of one function."""

    name: str
    arn: str
    bootstrap: Path
    handler: str
    environment: tuple[tuple[str, str], ...]
    timeout: float
    memory_size: int
    version: str
    log_group: str
    log_format: str = "Text"  # LoggingConfig.LogFormat: Text | JSON
    application_log_level: str | None = None
    role: str = ""  # execution role ARN: the sandbox runs with credentials of this role

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


@dataclass
class InvokeResult:
    payload: bytes
    # None for success, "Unhandled" when the function (or its sandbox) failed.
    function_error: str | None = None

    @staticmethod
    def error(error_type: str, message: str) -> "InvokeResult":
        body = json.dumps({"errorType": error_type, "errorMessage": message})
        return InvokeResult(body.encode(), "Unhandled")


@dataclass
class Invocation:
    payload: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = field(default_factory=lambda: _new_trace_id())
    deadline_ms: int = 0
    picked_up: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: InvokeResult | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, result: InvokeResult) -> bool:
        """Record the outcome; the first one wins (a late response after a
        timeout is ignored, as AWS ignores it)."""
        with self._lock:
            if self.result is not None:
                return False
            self.result = result
        self.picked_up.set()  # nobody should keep waiting for a pick-up either
        self.done.set()
        return True


def _new_trace_id() -> str:
    return (
        f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
        f"Parent={secrets.token_hex(8)};Sampled=0"
    )


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A killed sandbox drops its connection mid-request: expected, not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    """The Runtime API of one sandbox."""

    protocol_version = "HTTP/1.1"  # the Rust runtime keeps its connection alive
    sandbox: "Sandbox"  # set on a per-sandbox subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        LOG.debug("runtime api %s: " + format, self.sandbox.label, *args)

    def _reply(self, status: int, body: dict | bytes, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802
        if self.path != f"{RUNTIME_API_PREFIX}/invocation/next":
            self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})
            return
        invocation = self.sandbox.wait_for_invocation()
        if invocation is None:  # sandbox is shutting down
            self._reply(410, {"errorType": "SandboxStopped", "errorMessage": "stopped"})
            return
        config = self.sandbox.config
        self._reply(
            200,
            invocation.payload,
            {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": config.arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            },
        )

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        parts = self.path[len(RUNTIME_API_PREFIX) :].strip("/").split("/")
        if parts == ["init", "error"]:
            self.sandbox.report_init_error(_error_document(body, self.headers))
            self._reply(202, {"status": "OK"})
            return
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            if parts[2] == "response":
                result = InvokeResult(body)
            else:
                result = InvokeResult(_error_document(body, self.headers), "Unhandled")
            if self.sandbox.complete(parts[1], result):
                self._reply(202, {"status": "OK"})
            else:
                self._reply(
                    400,
                    {"errorType": "InvalidRequestID", "errorMessage": f"unknown request {parts[1]}"},
                )
            return
        self._reply(404, {"errorType": "NotFound", "errorMessage": self.path})


def _error_document(body: bytes, headers: Any) -> bytes:
    """What Invoke returns for an error the runtime reported: the runtime's own
    JSON document when it is one, otherwise one built from the error-type header."""
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and "errorType" in doc:
            return json.dumps(doc).encode()
    except ValueError:
        pass
    error_type = headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled"
    return json.dumps(
        {"errorType": error_type, "errorMessage": body.decode("utf-8", "replace")}
    ).encode()


class Sandbox:
    """One warm bootstrap process with its Runtime API listener."""

    def __init__(self, pool: "FunctionPool", index: int):
        self.pool = pool
        self.config = pool.config
        self.label = f"{self.config.name}#{index}"
        self.log_stream = (
            time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{self.config.version}]" + secrets.token_hex(16)
        )
        self._cond = threading.Condition()
        self._pending: Invocation | None = None  # assigned, not yet fetched
        self._current: Invocation | None = None  # fetched by the runtime
        self._init_error: bytes | None = None
        self._closed = False
        self.process: subprocess.Popen | None = None
        self.out_of_memory = False  # killed for using more than MemorySize (lambda_memory.py)
        handler = type("Handler", (_RuntimeApiHandler,), {"sandbox": self})
        self._server = _RuntimeApiServer(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        threading.Thread(
            target=self._server.serve_forever, name=f"runtime-api {self.label}", daemon=True
        ).start()
        config = self.config
        self.pool.log(f"INIT_START Sandbox: {self.label} Runtime API: 127.0.0.1:{self.port}")
        try:
            self.process = subprocess.Popen(
                [str(config.bootstrap)],
                cwd=str(config.bootstrap.parent),
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=self.pool.log_file,
                stderr=subprocess.STDOUT,
                # Own process group: stop() can take down anything the bootstrap spawned.
                start_new_session=True,
            )
        except OSError as exc:
            self._server.shutdown()
            self._server.server_close()
            raise SandboxStartError(str(exc)) from exc
        threading.Thread(target=self._watch_process, name=f"watch {self.label}", daemon=True).start()
        self.memory = MemoryWatcher(self.process.pid, config.memory_size, self._out_of_memory, self.label).start()

    def _out_of_memory(self, rss_kib: int) -> None:
        """The process used more than MemorySize: Lambda stops the environment."""
        self.out_of_memory = True
        self.pool.log(f"Sandbox {self.label} used {rss_kib // 1024} MB of {self.config.memory_size} MB: killed")
        self.kill()

    def _environment(self) -> dict[str, str]:
        config = self.config
        env = {key: os.environ[key] for key in PASSTHROUGH_HOST_ENV if key in os.environ}
        env.update(dict(config.environment))
        endpoint = self.pool.runtime.endpoint
        # The variables Lambda reserves; set last so the template cannot override them.
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": self.pool.runtime.region,
                "AWS_DEFAULT_REGION": self.pool.runtime.region,
                **self._role_credentials(),
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_LAMBDA_FUNCTION_NAME": config.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": config.version,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group,
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
                "LAMBDA_TASK_ROOT": str(config.bootstrap.parent),
                "LAMBDA_RUNTIME_DIR": str(config.bootstrap.parent),
                "_HANDLER": config.handler or "bootstrap",
                "TZ": ":UTC",
            }
        )
        if config.log_format.upper() == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            if config.application_log_level:
                env["AWS_LAMBDA_LOG_LEVEL"] = config.application_log_level
        return env

    def _role_credentials(self) -> dict[str, str]:
        """Temporary credentials of the function's execution role, as Lambda gives
        every execution environment; the local cloud's IAM enforcement (iam.py)
        knows the role by the access key. A function without a usable role
        gets credentials that identify nobody (its requests are not evaluated)."""
        credentials = {"AccessKeyId": "localcloud", "SecretAccessKey": "localcloud", "SessionToken": "localcloud"}
        if self.config.role.startswith("arn:"):
            from .iam import mint_role_credentials

            try:
                credentials = mint_role_credentials(self.config.role, self.config.name, self.pool.runtime.region)
            except Exception:  # noqa: BLE001 - keep the function runnable; say why
                LOG.exception("cannot mint credentials of %s for %s", self.config.role, self.config.name)
        return {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }

    def _watch_process(self) -> None:
        assert self.process is not None
        code = self.process.wait()
        with self._cond:
            self._closed = True
            victims = [inv for inv in (self._pending, self._current) if inv is not None]
            init_error = self._init_error
            self._cond.notify_all()
        self.pool.discard(self)  # before the caller learns the outcome: stats stay true
        for invocation in victims:
            invocation.finish(
                self._out_of_memory_result(invocation) if self.out_of_memory
                else self._exit_result(invocation, code, init_error)
            )
        if code != 0 and not self.pool.stopping:
            self.pool.log(f"Sandbox {self.label} exited {_describe_exit(code)}")
        self._server.shutdown()
        self._server.server_close()

    @staticmethod
    def _exit_result(invocation: Invocation, code: int, init_error: bytes | None) -> InvokeResult:
        """What AWS answers for an invocation whose runtime went away."""
        if init_error is not None:
            return InvokeResult(init_error, "Unhandled")
        return InvokeResult.error(
            "Runtime.ExitError",
            f"RequestId: {invocation.request_id} Error: Runtime exited {_describe_exit(code)}",
        )

    @staticmethod
    def _out_of_memory_result(invocation: Invocation) -> InvokeResult:
        return InvokeResult.error(
            OUT_OF_MEMORY, f"RequestId: {invocation.request_id} Error: Runtime exited with error: signal: killed"
        )

    def kill(self) -> None:
        """Stop the process (and anything it started) now."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @property
    def alive(self) -> bool:
        return not self._closed and self.process is not None and self.process.poll() is None

    # -- invocations ---------------------------------------------------------

    def assign(self, invocation: Invocation) -> None:
        with self._cond:
            if not self._closed:
                self._pending = invocation
                self._cond.notify_all()
                return
            init_error = self._init_error
        # The process ended before it asked for work (a bootstrap that exits at
        # once, or fails its init): the invocation fails as it would in AWS.
        code = self.process.wait() if self.process is not None else -signal.SIGKILL
        invocation.finish(self._exit_result(invocation, code, init_error))

    def wait_for_invocation(self) -> Invocation | None:
        """Called by the Runtime API for GET /next: blocks until there is work."""
        with self._cond:
            while self._pending is None and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            invocation, self._pending = self._pending, None
            self._current = invocation
            invocation.deadline_ms = int((time.time() + self.config.timeout) * 1000)
        invocation.picked_up.set()
        return invocation

    def complete(self, request_id: str, result: InvokeResult) -> bool:
        with self._cond:
            invocation = self._current
            if invocation is None or invocation.request_id != request_id:
                return False
            self._current = None
        invocation.finish(result)
        return True

    def report_init_error(self, document: bytes) -> None:
        with self._cond:
            self._init_error = document
        # AWS does not keep a sandbox whose init failed.
        self.pool.log(f"INIT_REPORT Sandbox: {self.label} Status: error {document.decode(errors='replace')}")
        self.kill()


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"with signal {signal.Signals(-code).name}"
        except ValueError:
            return f"with signal {-code}"
    if code == 0:
        return "without providing a reason"
    return f"with error: exit status {code}"


class SandboxStartError(Exception):
    pass


class SandboxGone(Exception):
    pass


class FunctionPool:
    """The sandboxes of one function configuration."""

    def __init__(self, runtime: "LambdaRuntime", config: FunctionConfig, log_file: io.BufferedWriter):
        self.runtime = runtime
        self.config = config
        self.log_file = log_file
        self.stopping = False
        self._cond = threading.Condition()
        self._idle: list[Sandbox] = []
        self._all: list[Sandbox] = []
        self._starting = 0
        self._counter = 0

    def log(self, line: str) -> None:
        try:
            self.log_file.write(f"{line}\n".encode())
            self.log_file.flush()
        except ValueError:
            pass  # the runtime stopped and closed the log while this invocation ended

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"processes": len(self._all), "idle": len(self._idle)}

    def _acquire(self) -> Sandbox:
        with self._cond:
            while True:
                if self.stopping:
                    raise SandboxGone()
                while self._idle:
                    sandbox = self._idle.pop()
                    if sandbox.alive:
                        return sandbox
                if len(self._all) + self._starting < self.runtime.max_sandboxes:
                    self._starting += 1
                    self._counter += 1
                    index = self._counter
                    break
                self._cond.wait()
        try:
            sandbox = Sandbox(self, index)
            sandbox.start()
        finally:
            with self._cond:
                self._starting -= 1
        with self._cond:
            self._all.append(sandbox)
        return sandbox

    def _release(self, sandbox: Sandbox) -> None:
        with self._cond:
            keep = sandbox.alive and not self.stopping
            if keep:
                self._idle.append(sandbox)
            self._cond.notify_all()
        if not keep:
            sandbox.kill()

    def discard(self, sandbox: Sandbox) -> None:
        with self._cond:
            if sandbox in self._all:
                self._all.remove(sandbox)
            if sandbox in self._idle:
                self._idle.remove(sandbox)
            self._cond.notify_all()

    def invoke(self, payload: bytes) -> InvokeResult:
        """Run one invocation in an idle or new sandbox. Raises SandboxGone when
        the pool is stopped or retired before a sandbox was found."""
        invocation = Invocation(payload=payload)
        started = time.monotonic()
        try:
            sandbox = self._acquire()
        except SandboxStartError as exc:
            # What AWS reports when the bootstrap cannot be executed.
            return InvokeResult.error(
                "Runtime.InvalidEntrypoint",
                f"RequestId: {invocation.request_id} Error: {exc}",
            )
        self.log(f"START RequestId: {invocation.request_id} Version: {self.config.version}")
        try:
            sandbox.assign(invocation)
            if not invocation.picked_up.wait(INIT_TIMEOUT_SECONDS):
                if not invocation.done.is_set():
                    sandbox.kill()
                    invocation.finish(
                        InvokeResult.error(
                            "Runtime.InitTimeout",
                            f"RequestId: {invocation.request_id} Error: Init timed out "
                            f"after {INIT_TIMEOUT_SECONDS:.1f} seconds",
                        )
                    )
            remaining = invocation.deadline_ms / 1000 - time.time() if invocation.deadline_ms else 0
            if not invocation.done.wait(max(remaining, 0)):
                # The function overran its Timeout: AWS freezes and discards the sandbox.
                sandbox.kill()
                invocation.finish(
                    InvokeResult.error(
                        "Sandbox.Timedout",
                        f"RequestId: {invocation.request_id} Error: Task timed out after "
                        f"{self.config.timeout:.2f} seconds",
                    )
                )
            invocation.done.wait()
        finally:
            self._release(sandbox)
        result = invocation.result
        assert result is not None
        elapsed_ms = (time.monotonic() - started) * 1000
        self.log(f"END RequestId: {invocation.request_id}")
        self.log(
            f"REPORT RequestId: {invocation.request_id}\tDuration: {elapsed_ms:.2f} ms\t"
            f"Memory Size: {self.config.memory_size} MB"
            + ("\tStatus: error" if result.function_error else "")
        )
        return result

    def stop(self) -> None:
        with self._cond:
            self.stopping = True
            sandboxes = list(self._all)
            self._cond.notify_all()
        for sandbox in sandboxes:
            sandbox.kill()
        for sandbox in sandboxes:
            if sandbox.process is not None:
                try:
                    sandbox.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    LOG.warning("sandbox %s did not exit", sandbox.label)

    def retire(self) -> None:
        """The function was reconfigured: new invocations go to a new pool; this
        one's idle sandboxes go now, busy ones when their invocation ends."""
        with self._cond:
            self.stopping = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for sandbox in idle:
            sandbox.kill()


class LambdaRuntime:
    """All execution environments of the local cloud.

    ``invoke`` takes a moto ``LambdaFunction`` (whatever was created through the
    Lambda API, by the stack deployer or by a test) and runs its code package:
    the zip is unpacked once into the run directory and its ``bootstrap`` runs.
    """

    def __init__(
        self,
        run_dir: Path,
        endpoint: str,
        region: str = "us-east-1",
        max_sandboxes: int = DEFAULT_MAX_SANDBOXES_PER_FUNCTION,
        reservations: Callable[[], dict[str, int]] = dict,
        send_to_destination: Callable[[str, str], None] | None = None,
    ):
        self.run_dir = run_dir
        # Account and reserved concurrency, async retries (lambda_concurrency.py).
        self.concurrency = Concurrency(reservations)
        self._send_to_destination = send_to_destination
        self.endpoint = endpoint
        self.region = region
        self.max_sandboxes = max_sandboxes
        self.log_dir = run_dir / "logs"
        self.code_dir = run_dir / "code"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._pools: dict[str, FunctionPool] = {}
        self._log_files: dict[str, io.BufferedWriter] = {}
        # LoggingConfig per function name; moto's Lambda model drops it.
        self._logging_configs: dict[str, dict[str, Any]] = {}
        self._stopped = False

    # -- configuration -------------------------------------------------------

    def set_logging_config(self, function_name: str, logging_config: dict[str, Any] | None) -> None:
        with self._lock:
            self._logging_configs[function_name] = dict(logging_config or {})

    def log_path(self, function_name: str) -> Path:
        return self.log_dir / f"{function_name}.log"

    def function_arn(self, function_name: str) -> str | None:
        """The ARN of a function that has run here (for the logs' EMF records, emf.py)."""
        with self._lock:
            for pool in self._pools.values():
                if pool.config.name == function_name:
                    return pool.config.arn
        return None

    def config_for(self, fn: Any) -> FunctionConfig:
        """The execution-environment configuration of a moto LambdaFunction."""
        if getattr(fn, "package_type", "Zip") != "Zip":
            raise UnsupportedFunction(f"{fn.function_name}: only Zip packages run locally")
        logging_config = self._logging_configs.get(fn.function_name, {})
        return FunctionConfig(
            name=fn.function_name,
            arn=fn.function_arn,
            bootstrap=self._unpack(fn),
            handler=fn.handler or "bootstrap",
            environment=tuple(sorted((str(k), str(v)) for k, v in (fn.environment_vars or {}).items())),
            timeout=float(fn.timeout or 3),
            memory_size=int(fn.memory_size or 128),
            version=version_of(fn),
            log_group=logging_config.get("LogGroup") or f"/aws/lambda/{fn.function_name}",
            log_format=logging_config.get("LogFormat") or "Text",
            application_log_level=logging_config.get("ApplicationLogLevel"),
            role=str(getattr(fn, "role", "") or ""),
        )

    def _unpack(self, fn: Any) -> Path:
        code = getattr(fn, "code_bytes", b"") or b""
        # moto keeps the package's SHA-256 (CodeSha256); hashing it again per invoke is waste.
        known = getattr(fn, "code_sha_256", "") or ""
        digest = hashlib.sha256(known.encode() if known else code).hexdigest()[:16]
        target = self.code_dir / f"{fn.function_name}-{digest}"
        bootstrap = target / "bootstrap"
        with self._lock:
            if not target.exists():
                staging = target.with_name(target.name + ".tmp")
                staging.mkdir(parents=True, exist_ok=True)
                try:
                    with zipfile.ZipFile(io.BytesIO(code)) as archive:
                        for info in archive.infolist():
                            archive.extract(info, staging)
                            # Zip keeps Unix modes in the high bits of external_attr.
                            mode = (info.external_attr >> 16) & 0o777
                            if mode:
                                os.chmod(staging / info.filename, mode)
                except zipfile.BadZipFile:
                    pass  # an empty package: the bootstrap is missing, reported at start
                staging.rename(target)
        return bootstrap

    # -- invocation ----------------------------------------------------------

    def _pool(self, config: FunctionConfig) -> FunctionPool:
        with self._lock:
            if self._stopped:
                raise SandboxGone()
            key = f"{config.name}:{config.version}"
            pool = self._pools.get(key)
            if pool is not None and pool.config.fingerprint == config.fingerprint:
                return pool
            if pool is not None:
                pool.retire()
            log_file = self._log_files.get(config.name)
            if log_file is None:
                log_file = open(self.log_path(config.name), "ab")  # noqa: SIM115
                self._log_files[config.name] = log_file
            pool = FunctionPool(self, config, log_file)
            self._pools[key] = pool
            return pool

    def invoke(self, fn: Any, payload: bytes) -> InvokeResult:
        """Synchronous (RequestResponse) invocation. Raises RequestTooLarge for a
        payload over the quota (the caller answers HTTP 413)."""
        if len(payload) > MAX_SYNC_PAYLOAD_BYTES:
            raise RequestTooLarge(
                f"Request must be smaller than {MAX_SYNC_PAYLOAD_BYTES} bytes for the InvokeFunction operation"
            )
        try:
            config = self.config_for(fn)
        except UnsupportedFunction as exc:
            return InvokeResult.error("Runtime.InvalidEntrypoint", str(exc))
        self.concurrency.admit(config.name)  # raises Throttled: HTTP 429 to the caller
        try:
            result = self._invoke(config, payload)
        finally:
            self.concurrency.release(config.name)
        if not result.function_error and len(result.payload) > MAX_SYNC_PAYLOAD_BYTES:
            return InvokeResult.error(
                RESPONSE_TOO_LARGE,
                f"Response payload size exceeded maximum allowed payload size ({MAX_SYNC_PAYLOAD_BYTES} bytes).",
            )
        return result

    def _invoke(self, config: FunctionConfig, payload: bytes) -> InvokeResult:
        # A pool retired by a reconfiguration while we waited for one of its
        # sandboxes refuses us; the next _pool() call hands out the new pool.
        for _ in range(3):
            try:
                return self._pool(config).invoke(payload)
            except SandboxGone:
                if self._stopped:
                    break
        return InvokeResult.error("ServiceException", "local cloud is stopping")

    def invoke_async(self, fn: Any, payload: bytes, on_done: Callable[[InvokeResult], None] | None = None) -> None:
        """Event invocation: accepted at once, run in the background as Lambda runs queued
        events: throttled events wait and come back, failed ones are retried, the last failure
        goes to the on-failure destination, and now and then an event runs twice
        (lambda_concurrency.py)."""
        config = self.config_for(fn)
        policy = AsyncPolicy.of(fn)
        accepted = time.monotonic()
        request_id = str(uuid.uuid4())

        def run() -> None:
            try:
                self._run_event(config, policy, payload, accepted, request_id, on_done)
            except Exception:  # noqa: BLE001 - a background thread has nobody to raise to
                LOG.exception("async invocation of %s", config.name)

        threading.Thread(target=run, name=f"async {config.name}", daemon=True).start()

    def _run_event(
        self,
        config: FunctionConfig,
        policy: AsyncPolicy,
        payload: bytes,
        accepted: float,
        request_id: str,
        on_done: Callable[[InvokeResult], None] | None,
    ) -> None:
        attempts = 0
        backoff = THROTTLE_BACKOFF_FIRST_SECONDS
        result: InvokeResult | None = None
        while not self._stopped:
            if time.monotonic() - accepted > policy.max_event_age_seconds:
                self._event_failed(config, policy, payload, request_id, "EventAgeExceeded", attempts, result)
                return
            try:
                self.concurrency.admit(config.name)
            except Throttled:
                # A throttle is not an attempt: the event goes back to the queue.
                time.sleep(backoff)
                backoff = min(backoff * 2, THROTTLE_BACKOFF_MAX_SECONDS)
                continue
            try:
                result = self._invoke(config, payload)
            finally:
                self.concurrency.release(config.name)
            attempts += 1
            if on_done:
                on_done(result)
            if not result.function_error:
                if self.concurrency.duplicate():
                    self.concurrency.counts.async_duplicates += 1
                    self._run_duplicate(config, payload)
                if policy.on_success:
                    self._deliver(policy.on_success, invocation_record(
                        request_id=request_id, function_arn=config.arn, condition="Success", attempts=attempts,
                        payload=payload, status_code=200, function_error=None, response=result.payload))
                return
            LOG.warning("async invocation of %s failed (attempt %d): %s", config.name, attempts, result.payload[:500])
            if attempts > policy.max_retry_attempts:
                self._event_failed(config, policy, payload, request_id, "RetriesExhausted", attempts, result)
                return
            self.concurrency.counts.async_retries += 1
            time.sleep(self.concurrency.settings.retry_delays[attempts - 1])

    def _run_duplicate(self, config: FunctionConfig, payload: bytes) -> None:
        try:
            self.concurrency.admit(config.name)
        except Throttled:
            return
        try:
            self._invoke(config, payload)
        finally:
            self.concurrency.release(config.name)

    def _event_failed(
        self,
        config: FunctionConfig,
        policy: AsyncPolicy,
        payload: bytes,
        request_id: str,
        condition: str,
        attempts: int,
        result: InvokeResult | None,
    ) -> None:
        self.concurrency.counts.async_failures += 1
        LOG.warning("async event for %s dropped: %s after %d attempts", config.name, condition, attempts)
        if policy.on_failure:
            self._deliver(policy.on_failure, invocation_record(
                request_id=request_id, function_arn=config.arn, condition=condition, attempts=attempts,
                payload=payload, status_code=200, function_error=result.function_error if result else None,
                response=result.payload if result else None))

    def _deliver(self, destination: str, record: str) -> None:
        if self._send_to_destination is None:
            LOG.warning("no destination sender: record for %s dropped", destination)
            return
        try:
            self._send_to_destination(destination, record)
        except Exception:  # noqa: BLE001 - Lambda drops a record it cannot deliver
            LOG.exception("cannot deliver an invocation record to %s", destination)

    def stats(self) -> dict[str, dict[str, int]]:
        """Sandbox counts per function ($LATEST) or function:version."""
        with self._lock:
            pools = list(self._pools.values())
        return {
            pool.config.name if pool.config.version == "$LATEST" else f"{pool.config.name}:{pool.config.version}": pool.stats()
            for pool in pools
        }

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.stop()
        with self._lock:
            for log_file in self._log_files.values():
                log_file.close()
            self._log_files.clear()


def version_of(fn: Any) -> str:
    # Published versions are copies whose ARN carries the version as qualifier.
    arn = str(getattr(fn, "function_arn", ""))
    parts = arn.split(":")
    return parts[7] if len(parts) == 8 else "$LATEST"


class UnsupportedFunction(Exception):
    pass


class RequestTooLarge(Exception):
    """Invoke refused before running anything: RequestTooLargeException, HTTP 413
    (the error the Lambda API reference documents for Invoke; field reports also
    show the front end's RequestEntityTooLargeException for the same refusal)."""
