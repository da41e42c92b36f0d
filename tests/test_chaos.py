"""A short seeded chaos run (issue 21, item 6) in every test run: random pushes, faults and
people on three services of a local cloud of its own (a separate process: one local cloud per
process), with deckhand's invariants checked after each deployment. The long run and its last
result are in the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED, DEPLOYMENTS = 21, 9


@pytest.mark.timeout(900)
def test_a_short_chaos_run_keeps_every_invariant() -> None:
    if not (ROOT / "target" / "lambda" / "plan" / "bootstrap").exists():
        pytest.skip("the functions are not built (cargo lambda build --release)")
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "chaos.py"), "--seed", str(SEED), "--deployments", str(DEPLOYMENTS)],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=840,
    )
    assert run.returncode == 0, run.stdout[-6000:]
    assert f"{DEPLOYMENTS} deployments" in run.stdout and "violations   0" in run.stdout, run.stdout[-3000:]
