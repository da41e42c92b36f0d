"""Init time of a bootstrap: from just before the process is spawned to its first
``GET /2018-06-01/runtime/invocation/next``, against a Runtime API stub of our own that never
hands out an event (the process is killed once it asked).

What Lambda calls the init phase is exactly this for a custom runtime: loading the binary,
``main`` up to the runtime loop (logging, settings from the environment, the AWS SDK
configuration and clients), and the runtime's first long poll.

The environment is what Lambda gives a function (the reserved AWS_LAMBDA_* variables, region,
credentials, AWS_LAMBDA_LOG_FORMAT for JSON logging) plus the template's variables, and nothing
from the host except PATH and LANG.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable

from .functions import REGION, FunctionSpec
from .table import median, percentile

RUNTIME_PREFIX = "/2018-06-01/runtime"
FIRST_POLL_TIMEOUT_S = 10.0  # AWS's init limit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the process is killed while its long poll is open: expected


class RuntimeApiStub:
    """A Runtime API that records when ``GET /invocation/next`` (or ``/init/error``) arrives.
    One measurement at a time: ``expect()`` before spawning, ``wait()`` after."""

    def __init__(self) -> None:
        stub = self
        self._arrived = threading.Event()
        self._release = threading.Event()
        self.arrived_at = 0.0
        self.init_error: bytes | None = None

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                now = time.perf_counter()
                if self.path == f"{RUNTIME_PREFIX}/invocation/next" and not stub._arrived.is_set():
                    stub.arrived_at = now
                    stub._arrived.set()
                # Hold the long poll open (no event is ever handed out) until the next run.
                stub._release.wait(FIRST_POLL_TIMEOUT_S)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.endswith("/init/error"):
                    stub.init_error = body
                    stub.arrived_at = time.perf_counter()
                    stub._arrived.set()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="runtime-api-stub", daemon=True).start()

    def expect(self) -> None:
        self._release.set()  # let a previous run's held long poll end
        self._release = threading.Event()
        self._arrived.clear()
        self.init_error = None

    def wait(self, timeout: float = FIRST_POLL_TIMEOUT_S) -> bool:
        return self._arrived.wait(timeout)

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def lambda_environment(spec: FunctionSpec, runtime_api: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "LANG") if key in os.environ}
    env.update(spec.environment)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": f"deckhand-{spec.logical_id}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/deckhand/deckhand/{spec.binary}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        "_HANDLER": "bootstrap",
        "TZ": ":UTC",
    })
    if spec.log_format.upper() == "JSON":
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
    env.update(extra or {})
    return env


@dataclass
class InitSamples:
    label: str
    samples_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return median(self.samples_ms)

    def spread(self) -> tuple[float, float, float, float] | None:
        """(min, p10, p90, max)"""
        if not self.samples_ms:
            return None
        s = self.samples_ms
        return min(s), percentile(s, 10), percentile(s, 90), max(s)


def _one_cold_start(stub: RuntimeApiStub, command: list[str], env: dict[str, str], cwd: Path) -> tuple[float | None, str]:
    stub.expect()
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        arrived = stub.wait()
        if not arrived:
            return None, "no GET /invocation/next within 10 s"
        if stub.init_error is not None:
            return None, "init error: " + stub.init_error.decode(errors="replace")[:200]
        return (stub.arrived_at - started) * 1000, ""
    finally:
        process.kill()
        try:
            _, stderr = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            stderr = b""
        if process.returncode not in (0, -9) and not stub._arrived.is_set():
            print(stderr.decode(errors="replace")[-500:])


def measure(targets: Iterable[tuple[str, Path, dict[str, str]]], runs: int, warmup: int = 1) -> dict[str, InitSamples]:
    """Cold starts of several bootstraps, interleaved (run 1 of each, then run 2 of each, ...)
    so that noise from the rest of the machine spreads evenly; ``warmup`` rounds first, not
    counted (they fill the page cache as a Lambda worker's is filled by the image download).
    targets: (label, bootstrap path, environment without AWS_LAMBDA_RUNTIME_API)."""
    targets = list(targets)
    results = {label: InitSamples(label) for label, _, _ in targets}
    stub = RuntimeApiStub()
    try:
        for round_ in range(warmup + runs):
            for label, path, env in targets:
                run_env = dict(env, AWS_LAMBDA_RUNTIME_API=stub.address)
                elapsed, failure = _one_cold_start(stub, [str(path)], run_env, path.parent)
                if round_ < warmup:
                    continue
                if elapsed is None:
                    results[label].failures.append(failure)
                else:
                    results[label].samples_ms.append(elapsed)
    finally:
        stub.close()
    return results


def spawn_floor(runs: int) -> InitSamples:
    """What spawning any process costs here: /bin/true from Popen to exit. Subtract it in your
    head when comparing with Lambda's published init times."""
    samples = InitSamples("spawn floor")
    true = "/bin/true" if Path("/bin/true").exists() else "true"
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run([true], check=False)
        samples.samples_ms.append((time.perf_counter() - started) * 1000)
    samples.samples_ms.pop(0)
    return samples


def function_targets(specs: Iterable[FunctionSpec], target_dir: Path | None = None,
                     extra_env: dict[str, str] | None = None, label_suffix: str = "") -> list[tuple[str, Path, dict[str, str]]]:
    return [
        (spec.binary + label_suffix, spec.bootstrap(target_dir), lambda_environment(spec, "", extra_env))
        for spec in specs
    ]
