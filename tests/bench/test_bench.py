"""Smoke test of the benchmark: its quickest mode (3 cold starts, 5 services) produces the
table with every row and sane values. Nothing here is timed: performance is what
scripts/bench reports, never what a test asserts.

Runs the bench in a subprocess: it serves its own local cloud, and one process hosts at most
one local cloud (the session's may be up in this one)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCALE = 5

pytestmark = pytest.mark.timeout(300)

FUNCTIONS = ("plan", "lock", "deploy", "check", "rollback", "notify", "signal")
DEPLOYMENT_KEYS = ("outcome", "duration", "transitions", "checks", "invocations", "api_calls", "calls_per_check",
                   "calls_other", "push_to_update", "history", "cost")
EXPECTED_KEYS = (
    [f"{f}.{what}" for f in FUNCTIONS for what in ("size", "init", "handler")]
    + ["init.floor", "init.trust_store", "init.in_cloud"]
    + [f"healthy.{k}" for k in DEPLOYMENT_KEYS]
    + ["cold.push_to_update", "healthy.sfn_cost"]
    + ["length.outcome", "length.duration", "length.checks", "length.invocations", "length.api_calls",
       "length.transitions", "length.history", "length.cost"]
    + [f"{s}.{k}" for s in ("unhealthy", "crash") for k in (*DEPLOYMENT_KEYS, "signal_to_rollback")]
    + [f"scale.{k}" for k in ("outcome", "wall", "per_service", "concurrency", "push_to_first_update", "succeeded",
                              "failed", "on_new_digest", "history", "payload", "cost", "transitions", "invocations", "api_calls", "plan_calls",
                              "check_handler", "lock_handler", "errors", "twins")]
    + [f"payload.{k}" for k in ("map_results", "summary_input", "largest_state", "longest_arn")]
)


def _missing_bootstraps() -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from bench.functions import functions

    return [str(s.bootstrap()) for s in functions() if not s.bootstrap().exists()]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    missing = _missing_bootstraps()
    if missing:
        pytest.skip(f"functions not built (cargo lambda build --release): {', '.join(missing)}")
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    command = [sys.executable, str(ROOT / "tests" / "bench" / "run.py"), "--quick", "--cold-starts", "3",
               "--scale", str(SCALE), "--json", str(out), "--run-dir", str(ROOT / ".localcloud" / "bench-test")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, f"bench failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(out.read_text()), done.stdout


def _rows(report: dict) -> dict[str, dict]:
    return {row["key"]: row for section in report["sections"] for row in section["rows"]}


def _numbers(text: object) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", str(text))]


def test_every_row_is_present_and_printed(bench: tuple[dict, str]) -> None:
    report, printed = bench
    rows = _rows(report)
    missing = [key for key in EXPECTED_KEYS if key not in rows]
    assert not missing, f"rows missing from the table: {missing}"
    unmeasured = [key for key in EXPECTED_KEYS if rows[key]["value"] is None]
    assert not unmeasured, f"rows without a value: {unmeasured}"
    for row in rows.values():
        assert row["metric"] in printed, f"{row['key']} is not in the printed table"
    assert printed.count("\n[") >= 6, "sections missing from the printed table"


def test_values_are_sane(bench: tuple[dict, str]) -> None:
    rows = _rows(bench[0])
    for function in FUNCTIONS:
        bootstrap, zipped = _numbers(rows[f"{function}.size"]["value"])
        assert 0 < zipped < bootstrap, function
        assert all(n > 0 for n in _numbers(rows[f"{function}.init"]["value"])), function
        assert rows[f"{function}.size"]["verdict"] in ("ok", "over")
    assert rows["healthy.outcome"]["value"] == "SUCCEEDED"
    for scenario in ("unhealthy", "crash"):
        assert rows[f"{scenario}.outcome"]["value"] == "FAILED (DeploymentRolledBack)"
        assert rows[f"{scenario}.signal_to_rollback"]["value"] is not None, "a failure signal was found"
        assert _numbers(rows[f"{scenario}.invocations"]["note"]), "invocations per function are listed"
    for scenario in ("healthy", "unhealthy", "crash"):
        for key in ("transitions", "checks", "invocations", "api_calls"):
            assert rows[f"{scenario}.{key}"]["value"] > 0, f"{scenario}.{key}"
        assert rows[f"{scenario}.push_to_update"]["value"] > 0
        assert rows[f"{scenario}.calls_per_check"]["value"] >= 1
    # Every deployment plans twice (the fan-out, then the service's own execution), and a healthy
    # one never invokes rollback.
    assert "plan 2" in rows["healthy.invocations"]["note"] and "rollback" not in rows["healthy.invocations"]["note"]
    assert "rollback 1" in rows["unhealthy.invocations"]["note"]
    assert rows["length.outcome"]["value"] == "SUCCEEDED vs SUCCEEDED"
    assert rows["scale.outcome"]["value"] == "SUCCEEDED"
    assert rows["scale.succeeded"]["value"] == SCALE and rows["scale.failed"]["value"] == 0
    assert rows["scale.on_new_digest"]["value"] == SCALE
    assert rows["scale.api_calls"]["value"] >= SCALE * rows["healthy.calls_per_check"]["value"]
    assert rows["scale.transitions"]["value"] > rows["healthy.transitions"]["value"]
    assert rows["payload.summary_input"]["verdict"] == "ok" and rows["payload.largest_state"]["verdict"] == "ok"
