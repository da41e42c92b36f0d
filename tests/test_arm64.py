"""The arm64 build (the template's default Architecture) really runs.

For each function the template declares, its arm64 bootstrap (``cargo lambda build --profile
arm64-check --arm64 --lambda-dir target/lambda-arm64``, run by scripts/test: the release profile's
code without its LTO and optimisation, built fast; another directory with
$DECKHAND_ARM64_LAMBDA_DIR) must be an aarch64 ELF, start under ``qemu-aarch64`` until it asks
the Runtime API for its first event, and answer an input that fails before any AWS call with
the same error document as the x86_64 build. The x86_64 bootstraps in target/lambda (what the
local cloud runs) must still be x86_64 afterwards: `sam build` for arm64 writes there too.

Every run has AWS_REGION and credentials and an endpoint where nothing listens: a function
without them would look for the EC2 metadata service, an address outside this machine.

Nothing is skipped: a missing build, qemu-user or libc6-arm64-cross (installed by
scripts/bootstrap) is a failure that says what to run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.coldstart import RuntimeApiStub, lambda_environment
from bench.functions import ACCOUNT_ID, REGION, FunctionSpec, functions
from localcloud.lambda_runtime import InvokeResult, LambdaRuntime

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
ARM64_DIR = Path(os.environ.get("DECKHAND_ARM64_LAMBDA_DIR") or ROOT / "target" / "lambda-arm64")
X86_64_DIR = ROOT / "target" / "lambda"
ARM64_SYSROOT = Path("/usr/aarch64-linux-gnu")  # Debian's libc6-arm64-cross
BUILD_HINT = "run `cargo lambda build --profile arm64-check --arm64 --lambda-dir target/lambda-arm64` (scripts/test does)"

# e_machine values from the ELF specification (/usr/include/elf.h).
EM_X86_64, EM_AARCH64 = 62, 183
MACHINE_NAMES = {EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}

# Emulation is many times slower than native; this bounds a hang, it measures nothing.
FIRST_POLL_TIMEOUT_S = 60.0
# No AWS endpoint is reachable from a test (port 9, discard: nothing listens there).
NO_AWS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_EC2_METADATA_DISABLED": "true",
}

# An input per function that fails before any AWS call, and the error it must give.
BAD_INPUT = {
    "plan": ("bad-typo-field.json", "dryrun"),  # unknown field, named in the message
    "lock": ("bad-not-an-object.json", "input"),
    "deploy": ("bad-not-an-object.json", "input"),
    "check": ("bad-not-an-object.json", "input"),
    "rollback": ("bad-not-an-object.json", "input"),
    "notify": ("bad-not-an-object.json", "input"),
    "signal": ("bad-not-an-object.json", "input"),
}

pytestmark = pytest.mark.timeout(600)

# One per binary: the HookFunction runs the check binary and the AnnounceFunction the notify one.
SPECS = list({spec.binary: spec for spec in reversed(functions())}.values())[::-1]


def elf_machine(path: Path) -> str:
    """The CPU a 64-bit little-endian ELF executable is for; raises ValueError for anything else."""
    header = path.read_bytes()[:20]
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise ValueError(f"{path} is not an ELF file")
    if header[4] != 2 or header[5] != 1:  # EI_CLASS = ELFCLASS64, EI_DATA = ELFDATA2LSB
        raise ValueError(f"{path} is not a 64-bit little-endian ELF")
    machine = int.from_bytes(header[18:20], "little")
    return MACHINE_NAMES.get(machine, f"e_machine {machine}")


def arm64_bootstrap(spec: FunctionSpec) -> Path:
    path = ARM64_DIR / spec.binary / "bootstrap"
    if not path.is_file():
        pytest.fail(f"no arm64 bootstrap at {path}: {BUILD_HINT}")
    return path


def qemu_command() -> list[str]:
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        pytest.fail("qemu-aarch64 is not installed: scripts/bootstrap installs Debian's qemu-user")
    if not (ARM64_SYSROOT / "lib" / "ld-linux-aarch64.so.1").exists():
        pytest.fail(f"no arm64 C library in {ARM64_SYSROOT}: scripts/bootstrap installs Debian's libc6-arm64-cross")
    return [qemu, "-L", str(ARM64_SYSROOT)]


def start_until_first_poll(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Spawns ``command`` against a Runtime API stub, returns the seconds until its first
    ``GET /invocation/next`` and kills it. Fails on an init error, an exit or a hang."""
    stub = RuntimeApiStub()
    stub.expect()
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=dict(env, AWS_LAMBDA_RUNTIME_API=stub.address),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = started + FIRST_POLL_TIMEOUT_S
        while not stub.wait(0.1):
            if process.poll() is not None or time.perf_counter() > deadline:
                break
        asked = stub.wait(0)
        elapsed = stub.arrived_at - started
    finally:
        process.kill()
        output = process.communicate(timeout=10)[0].decode(errors="replace")[-2000:]
        stub.close()
    if stub.init_error is not None:
        pytest.fail(f"{command[-1]} reported an init error: {stub.init_error.decode(errors='replace')}\n{output}")
    if not asked:
        why = f"exited with {process.returncode}" if process.returncode not in (None, -9) else "hung"
        pytest.fail(f"{command[-1]} never asked for an event ({why}):\n{output}")
    return elapsed


def qemu_wrapper_package(bootstrap: Path) -> bytes:
    """A deployment package whose ``bootstrap`` runs the arm64 one under qemu, so the local
    cloud's own Runtime API emulation can run it like any function."""
    script = f"#!/bin/sh\nexec {shlex.join(qemu_command() + [str(bootstrap)])} \"$@\"\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        archive.writestr(info, script)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory):
    runtime = LambdaRuntime(tmp_path_factory.mktemp("arm64-runtime"), endpoint=NO_AWS["AWS_ENDPOINT_URL"], region=REGION)
    yield runtime
    runtime.stop()


def invoke_arm64(runtime: LambdaRuntime, spec: FunctionSpec, event: bytes) -> InvokeResult:
    package = qemu_wrapper_package(arm64_bootstrap(spec))
    name = f"deckhand-arm64-{spec.binary}"
    function = SimpleNamespace(  # what the runtime reads of a moto LambdaFunction
        function_name=name,
        function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
        package_type="Zip",
        code_bytes=package,
        code_sha_256=hashlib.sha256(package).hexdigest(),
        handler="bootstrap",
        environment_vars=dict(spec.environment),
        timeout=spec.timeout_s,
        memory_size=spec.memory_mb,
    )
    runtime.set_logging_config(name, {"LogFormat": spec.log_format})
    result = runtime.invoke(function, event)
    result.log = runtime.log_path(name).read_text(errors="replace")[-2000:]  # type: ignore[attr-defined]
    return result


def test_every_function_has_a_bad_input() -> None:
    assert sorted(spec.binary for spec in SPECS) == sorted(BAD_INPUT)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.binary)
def test_arm64_bootstrap_is_an_aarch64_elf(spec: FunctionSpec) -> None:
    assert elf_machine(arm64_bootstrap(spec)) == "aarch64"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.binary)
def test_local_cloud_bootstrap_stays_x86_64(spec: FunctionSpec) -> None:
    path = X86_64_DIR / spec.binary / "bootstrap"
    if not path.is_file():
        pytest.fail(f"no x86_64 bootstrap at {path}: run `cargo lambda build --release` (scripts/test does)")
    assert elf_machine(path) == "x86_64", f"{path} was overwritten (sam build for arm64 writes target/lambda)"


def test_elf_check_refuses_other_files(tmp_path: Path) -> None:
    host = Path(os.path.realpath(sys.executable))
    assert elf_machine(host) == "x86_64"  # the host interpreter: not an arm64 binary
    script = tmp_path / "bootstrap"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(ValueError, match="not an ELF"):
        elf_machine(script)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.binary)
def test_arm64_bootstrap_asks_for_its_first_event(spec: FunctionSpec) -> None:
    bootstrap = arm64_bootstrap(spec)
    env = lambda_environment(spec, "", NO_AWS)
    seconds = start_until_first_poll(qemu_command() + [str(bootstrap)], env, bootstrap.parent)
    print(f"{spec.binary}: first GET /invocation/next after {seconds * 1000:.0f} ms under qemu")


def test_first_poll_check_fails_for_a_bootstrap_that_cannot_start() -> None:
    # An x86_64 binary under qemu-aarch64: refused at once, never asks for an event.
    true = shutil.which("true") or "/bin/true"
    with pytest.raises(pytest.fail.Exception, match="never asked for an event"):
        start_until_first_poll(qemu_command() + [true], {"PATH": os.environ.get("PATH", "")}, ROOT)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.binary)
def test_arm64_function_answers_a_bad_input(lambda_runtime: LambdaRuntime, spec: FunctionSpec) -> None:
    sample, named = BAD_INPUT[spec.binary]
    result = invoke_arm64(lambda_runtime, spec, (EVENTS / sample).read_bytes())
    document = json.loads(result.payload)
    assert result.function_error == "Unhandled", f"{document}\n{result.log}"
    assert document.get("errorType") == "InvalidInput", f"{document}\n{result.log}"
    assert named in document.get("errorMessage", ""), document


def test_arm64_plan_answers_an_ignored_event(lambda_runtime: LambdaRuntime) -> None:
    # An ECR DELETE is not a push: "nothing to deploy", decided without any AWS call.
    (plan,) = [spec for spec in SPECS if spec.binary == "plan"]
    result = invoke_arm64(lambda_runtime, plan, (EVENTS / "ecr-delete.json").read_bytes())
    document = json.loads(result.payload)
    assert result.function_error is None, f"{document}\n{result.log}"
    assert document.get("action") == "nothing", document
