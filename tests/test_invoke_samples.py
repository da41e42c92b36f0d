"""`cargo lambda invoke` with every sample in events/ against `cargo lambda watch`, the functions
talking to the local cloud: the documented local workflow works, and each sample input gets the
answer it is meant to get."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from polling import free_port, wait_for_port
from samples import EVENTS, EXPECTED, SIGNAL_SAMPLES

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def watch(localcloud: Any) -> Iterator[int]:
    cargo = shutil.which("cargo")
    if cargo is None or shutil.which("cargo-lambda") is None:
        pytest.skip("cargo lambda is not installed (scripts/bootstrap installs it)")
    port = free_port()
    env = {**os.environ, "RUST_LOG": "warn"}
    settings = {
        "AWS_ENDPOINT_URL": localcloud.endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "DECKHAND_ACCOUNT_ID": "123456789012",
        "DECKHAND_STATE_TABLE": localcloud.stack_outputs["StateTableName"],
    }
    command = [cargo, "lambda", "watch", "--invoke-port", str(port), "--ignore-changes"]
    for key, value in settings.items():
        command += ["--env-var", f"{key}={value}"]
    log = open(ROOT / ".localcloud" / "cargo-lambda-watch.log", "w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("cargo lambda watch", port, alive=lambda: process.poll() is None)
        yield port
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()


def invoke(port: int, function: str, sample: Path) -> dict:
    result = subprocess.run(
        ["cargo", "lambda", "invoke", function, "--invoke-port", str(port), "--data-file", str(sample), "--output-format", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    if result.returncode == 0:
        return {"output": json.loads(result.stdout)}
    return {"failure": result.stdout + result.stderr}


def test_every_sample_has_an_expectation() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_plan_answers_each_sample(watch: int, sample: str) -> None:
    kind, expected = EXPECTED[sample]
    answer = invoke(watch, "plan", EVENTS / sample)
    if kind == "action":
        assert answer.get("output", {}).get("action") == expected, answer
    else:
        assert expected in answer.get("failure", ""), answer


@pytest.mark.parametrize("sample", SIGNAL_SAMPLES)
def test_signal_answers_each_ecs_event_sample(watch: int, sample: str) -> None:
    answer = invoke(watch, "signal", EVENTS / sample)
    output = answer.get("output", {})
    assert output.get("woke") is False and "no rollout" in output.get("ignored", ""), answer


def test_the_hook_asks_again_about_a_service_deployment_ecs_does_not_show(watch: int) -> None:
    """ECS's lifecycle-hook event (the HookFunction runs the check binary): in a fresh cloud the
    service deployment is unknown, which may be ECS's read lag, so the hook answers IN_PROGRESS
    with a short callBackDelay and remembers when it first asked (never an error: ECS would roll
    back)."""
    answer = invoke(watch, "check", EVENTS / "ecs-lifecycle-hook.json")
    output = answer.get("output", {})
    assert output.get("hookStatus") == "IN_PROGRESS" and output.get("callBackDelay") == 5, answer
    assert output["hookDetails"]["deckhandStage"] == "POST_PRODUCTION_TRAFFIC_SHIFT", answer
