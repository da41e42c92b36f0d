"""Issue 24: `deckhand report` draws pushes as a timeline, and a person looking at it (headless
Chromium's screenshot and DOM) sees each service's row in its outcome's colour and the reasons.
Two real pushes on the local cloud: a healthy one (api SUCCEEDED), then a bad one that api
rolls back (ROLLED_BACK) while a second service waits for an approval that is refused (SKIPPED,
with a reason full of markup that must read as text)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

import chromium

from .aws import Aws, api_service, unique
from .test_cli import deckhand  # noqa: F401  (the fixture running the built command)
from .test_release_policies import awaiting

pytestmark = pytest.mark.timeout(600)

SUCCEEDED_GREEN, ROLLED_BACK_ORANGE, NOT_DEPLOYED_GREY = "#2e7d32", "#ef6c00", "#8d8d8d"  # cli/src/report/svg.rs
REJECTED = 'not on a Friday: <b>R&D</b> says "wait"'


def recorded(aws: Aws, executions: list[str]) -> dict:
    """The histories of the pushes and their service executions, as `--from-history` reads them
    (boto3's answers, timestamps as epoch seconds)."""
    arns = [arn for execution in executions for arn in [execution, *aws.service_executions(execution)]]
    return {"executions": [{"executionArn": arn, "events": [
        {**event, "timestamp": event["timestamp"].timestamp() if isinstance(event["timestamp"], datetime) else event["timestamp"]}
        for event in aws.own_history(arn)]} for arn in arns]}


def test_a_report_shows_each_services_row_in_its_outcomes_colour_with_the_reason(aws: Aws, events, deckhand, tmp_path) -> None:  # noqa: F811
    api = api_service(aws, verified=False, settled=True)
    healthy = aws.execution_for_push(aws.push(api.repository, "main"))
    assert aws.finish(healthy)["status"] == "SUCCEEDED"
    held = aws.task_definition(unique("worker"), [("web", aws.pinned(api.repository, api.good_digest), 5000)])
    aws.service(api.cluster, "worker", held, api.network, track=f"web={api.repository}:main",
                extra_tags={"deckhand:approval": "required", "deckhand:approval-timeout": "300"})
    bad = aws.execution_for_push(aws.push(api.repository, "main", health="unhealthy", ready_seconds=1))
    awaiting(events, bad)
    assert deckhand("reject", api.cluster, "worker", "--reason", REJECTED).returncode == 0
    assert aws.finish(bad)["status"] == "FAILED"

    page, picture = tmp_path / "report.html", tmp_path / "report.svg"
    done = deckhand("report", healthy, bad.rsplit(":", 1)[1], "--html", str(page), "--svg", str(picture))
    assert done.returncode == 0, done.stderr
    assert str(page) in done.stdout and str(picture) in done.stdout
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "not-for-logs" not in html, "nothing fetched, no environment values"
    assert picture.read_text() in html, "the page is the same picture"

    # What a person reads.
    seen_text = chromium.Read(chromium.dom(page))
    read = seen_text.text
    for row in (f"{api.cluster}/api", f"{api.cluster}/worker"):
        assert row in read, row
    for status in ("SUCCEEDED", "ROLLED_BACK", "SKIPPED"):
        assert status in read, status
    assert REJECTED in read, "the reason reads as written"
    assert "b" not in seen_text.tags, "the reason's markup stayed text"
    assert "rolled back (DeploymentRolledBack)" in read, "the verdict"
    assert "tasks" in read and "targets" in read, "the rollout's counts"

    # What a person sees: each outcome's colour filling a shape in its row (a badge, the span of
    # the service's execution; not only text or the legend's swatches), the healthy push's row
    # above the bad push's.
    chromium.screenshot(page, tmp_path / "report.png")
    screen = chromium.read_png(tmp_path / "report.png")
    green, orange, grey = (screen.bands(colour) for colour in (SUCCEEDED_GREEN, ROLLED_BACK_ORANGE, NOT_DEPLOYED_GREY))
    assert green and orange and grey, (green, orange, grey)
    assert max(green) < min(orange) and max(green) < min(grey), "the first push is drawn first"

    # The recorded histories draw the same picture without AWS.
    history = tmp_path / "history.json"
    history.write_text(json.dumps(recorded(aws, [healthy, bad]), default=str))
    again = tmp_path / "again.svg"
    assert deckhand("report", "--from-history", str(history), "--svg", str(again)).returncode == 0
    assert again.read_text() == picture.read_text()
