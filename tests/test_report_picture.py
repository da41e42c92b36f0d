"""Issue 24: `deckhand report`'s page looked at as a person would, without the local cloud: the
histories of two pushes recorded on it (cli/src/report/fixtures/two-pushes.json, from
tests/e2e/test_report.py) drawn by the built command, then Chromium's screenshot and DOM. Also a
wide push (the recorded one's services repeated) for the summary strip."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest

import chromium

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / "target" / "debug" / "deckhand"
FIXTURE = ROOT / "cli" / "src" / "report" / "fixtures" / "two-pushes.json"
SECOND_PUSH = "arn:aws:states:us-east-1:123456789012:execution:deckhand-deploy:2f832d45-0feb-47ab-a12b-6cc51aa82e78"
# cli/src/report/svg.rs
SUCCEEDED_GREEN, ROLLED_BACK_ORANGE, NOT_DEPLOYED_GREY = "#2e7d32", "#ef6c00", "#8d8d8d"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def deckhand() -> Path:
    # The binary `cargo test` builds (cli/tests/usage.rs), as tests/e2e/test_cli.py has it built.
    subprocess.run(["cargo", "test", "--workspace", "--no-run", "--quiet"], cwd=ROOT, check=True)
    return BINARY


def report(deckhand: Path, history: Path, page: Path) -> None:
    done = subprocess.run([str(deckhand), "report", "--from-history", str(history), "--html", str(page)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"wrote {page}" in done.stdout


def test_the_rows_outcome_colours_and_reasons_are_what_a_person_sees(deckhand: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    report(deckhand, FIXTURE, page)
    html = page.read_text()
    assert "<script" not in html and "https://" not in html, "self-contained"

    seen = chromium.Read(chromium.dom(page))
    read = seen.text
    for row, status in (("cluster-47ec5b/api", "SUCCEEDED"), ("cluster-47ec5b/worker", "SKIPPED"),
                        ("cluster-47ec5b/api", "ROLLED_BACK")):
        assert row in read and status in read, (row, status)
    assert 'not on a Friday: <b>R&D</b> says "wait"' in read and "b" not in seen.tags, "the reason reads as text"
    assert "rolled back (DeploymentRolledBack)" in read and "2/2 tasks, 0/2 targets" in read

    chromium.screenshot(page, tmp_path / "report.png")
    picture = chromium.read_png(tmp_path / "report.png")
    # Each outcome's colour fills a shape (the badge under the service's name, the span of its
    # execution) in the rows, in time order: the deployed push first; in the second, worker
    # started before api.
    green, orange, grey = (picture.bands(c) for c in (SUCCEEDED_GREEN, ROLLED_BACK_ORANGE, NOT_DEPLOYED_GREY))
    assert green and orange and grey, (green, orange, grey)
    assert max(green) < min(grey) and max(grey) < min(orange), (green, grey, orange)


def wide_push(copies: int) -> dict:
    """The recorded second push with its two services repeated `copies` times (new execution
    ARNs and service names, each copy a little slower), as if it had deployed 2 × copies services."""
    recorded = json.loads(FIXTURE.read_text())
    histories = {e["executionArn"]: e for e in recorded["executions"]}
    push = histories[SECOND_PUSH]
    children = [json.loads(e["taskSubmittedEventDetails"]["output"])["ExecutionArn"]
                for e in push["events"] if e["type"] == "TaskSubmitted"]
    wide = copy.deepcopy(push)
    executions = [wide]
    for copy_number in range(1, copies):
        for child in children:
            twin = f"{child}-{copy_number}"
            slower = 0.5 * copy_number

            def renamed(event: dict) -> dict:
                text = json.dumps(event).replace(child, twin)
                for service in ("api", "worker"):
                    text = text.replace(f"service/cluster-47ec5b/{service}\\\"", f"service/cluster-47ec5b/{service}-{copy_number}\\\"")
                moved = json.loads(text)
                moved["timestamp"] += slower if moved["type"] != "ExecutionStarted" else 0
                return moved

            events = [renamed(e) for e in histories[child]["events"]]
            executions.append({"executionArn": twin, "events": events})
            for event in push["events"]:
                if child in json.dumps(event):
                    twin_event = renamed(event)
                    twin_event["id"] = event["id"] + 1000 * copy_number
                    wide["events"].append(twin_event)
    executions += [histories[child] for child in children]  # the recorded ones, as they were
    return {"executions": executions}


def test_a_wide_push_has_a_summary_strip_with_counts_and_the_slowest(deckhand: Path, tmp_path: Path) -> None:
    history, page = tmp_path / "wide.json", tmp_path / "wide.html"
    history.write_text(json.dumps(wide_push(8)))
    report(deckhand, history, page)
    read = chromium.Read(chromium.dom(page)).text
    assert "16 services:" in read and "8 ROLLED_BACK" in read and "8 SKIPPED" in read, read[:2000]
    assert "slowest: cluster-47ec5b/api-7" in read, "the slowest service first"
    for copy_number in range(1, 8):
        assert f"cluster-47ec5b/worker-{copy_number}" in read
    chromium.screenshot(page, tmp_path / "wide.png")
    picture = chromium.read_png(tmp_path / "wide.png")
    rows = picture.bands(ROLLED_BACK_ORANGE)
    chips = sorted({y for _, y in picture.where(ROLLED_BACK_ORANGE)} - set(rows))
    assert rows and chips and min(chips) < min(rows), "the strip's counts, in the outcomes' colours, above the rows"
