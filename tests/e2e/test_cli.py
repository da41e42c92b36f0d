"""Issue 13 end to end: the `deckhand` command, driven as a user drives it (the built binary, a
terminal-less stdout, the stack found by its name), against the local cloud. Issue 20: exit
codes from the services' results, watch paced and surviving throttling, watch's `services`,
track and untrack owning every deckhand:* tag."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .aws import Aws, api_service, unique, wait_until

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "debug" / "deckhand"


@pytest.fixture(scope="module")
def deckhand(localcloud: Any):
    """Runs the command with only what a user's shell would have: the endpoint, a Region and
    credentials (never the instance metadata service)."""
    # The binary `cargo test` builds (cli/tests/usage.rs): the same features, so nothing recompiles.
    subprocess.run(["cargo", "test", "--workspace", "--no-run", "--quiet"], cwd=ROOT, check=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=localcloud.endpoint, AWS_REGION=localcloud.region, AWS_ACCESS_KEY_ID="localcloud",
               AWS_SECRET_ACCESS_KEY="localcloud", AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([str(BINARY), *args], env=env, capture_output=True, text=True, timeout=timeout)
        print(f"$ deckhand {' '.join(args)}  -> {done.returncode}\n{done.stdout}{done.stderr}")
        return done

    def start(*args: str) -> subprocess.Popen:
        """The command running in the background (e.g. a watch while the test acts)."""
        return subprocess.Popen([str(BINARY), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    run.start = start  # type: ignore[attr-defined]
    return run


def control(localcloud: Any, method: str, route: str, body: dict | None = None) -> Any:
    """The local cloud's control routes (/_localcloud/...)."""
    request = urllib.request.Request(f"{localcloud.endpoint}/_localcloud/{route}", method=method,
                                     data=json.dumps(body or {}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def last_line(done: subprocess.CompletedProcess) -> str:
    return done.stdout.strip().splitlines()[-1]


SERVICE_FIELDS = {"cluster", "service", "status", "outcome", "reason", "taskDefinition", "execution"}


def executions(aws: Aws) -> int:
    return len(aws.sfn.list_executions(stateMachineArn=aws.state_machine, maxResults=1000)["executions"])


def test_a_deploy_that_succeeds_then_one_that_rolls_back_then_status_and_history(aws: Aws, deckhand) -> None:
    api = api_service(aws)
    good = aws.push(api.repository, "v2")
    done = deckhand("deploy", api.cluster, api.service, f"{api.repository}:v2")
    assert done.returncode == 0, done.stderr
    for step in ("plan: manual deploy", "lock: lock acquired", "register: new revision", "update: UpdateService started",
                 "health: HEALTHY", "known-good:", "deployed:"):
        assert step in done.stdout, step
    assert "tasks running" in done.stdout and "targets healthy" in done.stdout, "health lines carry the counts"
    assert aws.running_images(api.cluster, api.service)["web"].endswith(good)
    deployed_revision = aws.describe(api.cluster, api.service)["taskDefinition"]

    bad = aws.push(api.repository, "bad", health="unhealthy", ready_seconds=1)
    failed = deckhand("deploy", api.cluster, api.service, f"{api.repository}:bad")
    assert failed.returncode == 1, failed.stdout
    assert "rollback: " in failed.stdout and "rollback health: HEALTHY" in failed.stdout
    assert "rolled back (DeploymentRolledBack)" in failed.stdout
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == deployed_revision

    status = deckhand("--output", "json", "status", api.cluster)
    assert status.returncode == 0, status.stderr
    (row,) = [r for r in json.loads(status.stdout) if r["service"] == api.service]
    assert row["taskDefinition"] == deployed_revision
    assert row["knownGood"]["taskDefinition"] == deployed_revision
    assert row["images"]["web"].endswith(good) and row["tracks"] == f"web={api.repository}:main"
    assert row["lock"] is None and row["runningExecution"] is None
    text = deckhand("status", api.cluster, api.service)
    assert text.stdout.startswith("CLUSTER") and "free" in text.stdout

    history = deckhand("--output", "json", "history", api.cluster, api.service)
    assert history.returncode == 0, history.stderr
    entries = json.loads(history.stdout)
    outcomes = [e["outcome"] for e in entries]
    # Older: the setup's pushes (the first may find the service already on its image: SKIPPED).
    assert outcomes[:2] == ["ROLLED_BACK", "SUCCEEDED"] and set(outcomes[2:]) <= {"SUCCEEDED", "SKIPPED"}, outcomes
    assert entries[0]["containers"][0]["image"].endswith(bad)
    assert entries[0]["taskDefinition"] == deployed_revision, "the rollback left it on the deployed revision"
    assert entries[1]["taskDefinition"] == deployed_revision and entries[1]["durationSeconds"] >= 0
    limited = deckhand("history", api.cluster, api.service, "--limit", "1")
    assert len(limited.stdout.strip().splitlines()) == 2 and "ROLLED_BACK" in limited.stdout


def test_bad_input_exits_2_with_the_functions_message_and_starts_nothing(aws: Aws, deckhand) -> None:
    api = api_service(aws, verified=False)
    before = executions(aws)
    cases = [
        (["deploy", api.cluster, api.service, "Not An Image!"], "InvalidInput: image"),
        (["deploy", api.cluster, api.service, f"{api.repository}:v1", "--container", "nope"], "InvalidInput: container"),
        (["deploy", api.cluster, "no-such-service", f"{api.repository}:v1"], "no active service"),
        (["deploy", "no-such-cluster", api.service, f"{api.repository}:v1"], "InvalidInput: cluster"),
        (["rollback", api.cluster, "no-such-service"], "no active service"),
    ]
    for args, message in cases:
        done = deckhand(*args)
        assert done.returncode == 2, args
        assert message in done.stderr, (args, done.stderr)
    untracked = unique("plain")
    aws.service(api.cluster, untracked, api.good_revision, api.network)
    done = deckhand("deploy", api.cluster, untracked, f"{api.repository}:main")
    assert done.returncode == 2 and "not opted in" in done.stderr
    assert executions(aws) == before, "nothing was started"


def test_a_dry_run_prints_the_diff_and_changes_nothing_and_a_rollback_is_followed(aws: Aws, deckhand) -> None:
    api = api_service(aws)
    aws.push(api.repository, "v3")
    dry = deckhand("deploy", api.cluster, api.service, f"{api.repository}:v3", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would change:" in dry.stdout and "dry run: nothing changed" in dry.stdout
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision

    assert deckhand("deploy", api.cluster, api.service, f"{api.repository}:v3").returncode == 0
    preview = deckhand("rollback", api.cluster, api.service, "--dry-run")
    assert preview.returncode == 0 and "would roll back" in preview.stdout
    back = deckhand("--output", "json", "rollback", api.cluster, api.service)
    assert back.returncode == 0, back.stdout
    result = json.loads(back.stdout)
    assert result["status"] == "SUCCEEDED" and result["services"][0]["status"] == "ROLLED_BACK"
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision


def test_no_wait_then_watch_follows_the_execution(aws: Aws, deckhand) -> None:
    api = api_service(aws)
    aws.push(api.repository, "v4")
    started = deckhand("--output", "json", "deploy", api.cluster, api.service, f"{api.repository}:v4", "--no-wait")
    assert started.returncode == 0
    execution = json.loads(started.stdout)["executionArn"]
    watched = deckhand("watch", execution)
    assert watched.returncode == 0 and "health: HEALTHY" in watched.stdout and "execution SUCCEEDED" in watched.stdout
    assert aws.finish(execution)["status"] == "SUCCEEDED"
    idle = deckhand("--output", "json", "watch")
    assert idle.returncode == 0 and json.loads(idle.stdout) == []


def test_track_untrack_and_doctor(aws: Aws, deckhand) -> None:
    api = api_service(aws, verified=False)
    tags = lambda: {t["key"]: t["value"] for t in aws.ecs.list_tags_for_resource(resourceArn=service_arn)["tags"]}  # noqa: E731
    service_arn = aws.describe(api.cluster, api.service)["serviceArn"]
    for bad, message in ((["web=Flask:main"], "not a valid ECR repository"), (["nope=flask:main"], "not in task definition"),
                         (["web=flask:a", "web=flask:b"], "tracked twice")):
        done = deckhand("track", api.cluster, api.service, *bad)
        assert done.returncode == 2 and message in done.stderr, bad
    assert tags()["deckhand:track"] == f"web={api.repository}:main", "a refused tag is never written"
    assert deckhand("track", api.cluster, api.service, f"web={api.repository}:release", "--bake", "30").returncode == 0
    assert tags()["deckhand:track"] == f"web={api.repository}:release" and tags()["deckhand:bake"] == "30"

    doctor = deckhand("--output", "json", "doctor", api.cluster, api.service)
    assert doctor.returncode == 0, doctor.stdout
    checks = {c["check"]: c for c in json.loads(doctor.stdout)}
    assert checks["tracked"]["level"] == "ok" and checks["deployable"]["level"] == "ok"
    assert checks["grace period"]["level"] == "warn", "behind an ALB with no grace period"
    assert {"network mode", "load balancer", "circuit breaker", "execution role", "lock", "known-good"} <= set(checks)
    assert checks["release gates"]["detail"] == "no alarms; no approval"

    gated = deckhand("track", api.cluster, api.service, f"web={api.repository}:semver:1.x", "--alarm", "api-5xx",
                     "--require-approval", "--approval-timeout", "600")
    assert gated.returncode == 0, gated.stderr
    assert (tags()["deckhand:alarms"], tags()["deckhand:approval"], tags()["deckhand:approval-timeout"]) == ("api-5xx", "required", "600")
    assert deckhand("track", api.cluster, api.service, f"web={api.repository}:main", "--approval-timeout", "0").returncode == 2
    aws.ecs.tag_resource(resourceArn=service_arn, tags=[{"key": "deckhand:approval", "value": "yes"}])
    doctor = deckhand("doctor", api.cluster, api.service)
    assert doctor.returncode == 1 and "FAIL release gates" in doctor.stdout, doctor.stdout

    assert deckhand("untrack", api.cluster, api.service).returncode == 0
    assert "deckhand:track" not in tags()
    doctor = deckhand("doctor", api.cluster, api.service)
    assert doctor.returncode == 1 and "FAIL tracked" in doctor.stdout


def test_help_and_shell_completions_come_from_clap(deckhand) -> None:
    help_text = deckhand("--help")
    assert help_text.returncode == 0
    for command in ("deploy", "rollback", "watch", "status", "history", "track", "untrack", "doctor", "approve", "reject"):
        assert f"  {command} " in help_text.stdout, command
    completion = deckhand("completions", "bash")
    assert completion.returncode == 0 and "_deckhand()" in completion.stdout
    wrong = deckhand("deploy", "only-a-cluster")
    assert wrong.returncode == 2 and "required" in wrong.stderr, "clap refuses missing arguments with exit 2"


def test_the_same_image_deployed_twice_deploys_nothing_the_second_time_and_exits_3(aws: Aws, deckhand) -> None:
    api = api_service(aws)
    aws.push(api.repository, "v2")
    first = deckhand("deploy", api.cluster, api.service, f"{api.repository}:v2")
    assert first.returncode == 0 and last_line(first).startswith("deployed: "), first.stdout
    revision = aws.describe(api.cluster, api.service)["taskDefinition"]

    again = deckhand("deploy", api.cluster, api.service, f"{api.repository}:v2")
    assert again.returncode == 3, again.stdout
    said = last_line(again)
    assert said.startswith("nothing deployed: SKIPPED (") and "already" in said, said
    assert "\ndeployed:" not in again.stdout

    as_json = deckhand("--output", "json", "deploy", api.cluster, api.service, f"{api.repository}:v2")
    assert as_json.returncode == 3, as_json.stdout
    doc = json.loads(as_json.stdout)
    assert doc["status"] == "SUCCEEDED", "the execution succeeded; the command says what it did"
    assert doc["exitCode"] == 3 and doc["verdict"].startswith("nothing deployed: SKIPPED"), doc
    (service,) = doc["services"]
    assert set(service) == SERVICE_FIELDS, service
    assert (service["status"], service["outcome"]) == ("SKIPPED", "ok")
    assert service["cluster"] == api.cluster and service["service"].rsplit("/", 1)[-1] == api.service
    assert service["execution"].startswith("arn:aws:states:") and service["execution"] != doc["executionArn"]
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == revision, "nothing changed"


def test_watch_follows_a_push_held_for_approval_until_a_newer_push_supersedes_it(aws: Aws, events, deckhand) -> None:
    api = api_service(aws)
    service_arn = aws.describe(api.cluster, api.service)["serviceArn"]
    aws.ecs.tag_resource(resourceArn=service_arn, tags=[{"key": "deckhand:approval", "value": "required"},
                                                        {"key": "deckhand:approval-timeout", "value": "300"}])
    held = aws.execution_for_push(aws.push(api.repository, "main"))
    watcher = deckhand.start("--output", "json", "watch", held)
    try:
        wait_until("the push to await approval",
                   lambda: "AWAITING_APPROVAL" in [e["status"] for e in events.for_execution(held)], 60)
        assert watcher.poll() is None, "the watch follows the held push"
        newer = aws.execution_for_push(aws.push(api.repository, "main"))
        out, err = watcher.communicate(timeout=240)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    print(f"$ deckhand --output json watch {held}  -> {watcher.returncode}\n{out}{err}")
    assert watcher.returncode == 3, (out, err)
    (doc,) = json.loads(out)
    assert doc["executionArn"] == held and doc["status"] == "SUCCEEDED" and doc["exitCode"] == 3, doc
    assert doc["verdict"].startswith("nothing deployed: SUPERSEDED ("), doc["verdict"]
    (service,) = doc["services"]
    assert set(service) == SERVICE_FIELDS and service["status"] == "SUPERSEDED" and service["reason"], service
    assert service["cluster"] == api.cluster and service["outcome"] == "ok"

    rejected = deckhand("reject", api.cluster, api.service, "--reason", "test over")
    assert rejected.returncode == 0, rejected.stderr
    assert aws.finish(newer)["status"] == "SUCCEEDED"


def test_watch_waits_out_throttling_and_reports_each_service(aws: Aws, localcloud, deckhand) -> None:
    api = api_service(aws)
    digest = aws.push(api.repository, "v5")
    started = deckhand("--output", "json", "deploy", api.cluster, api.service, f"{api.repository}:v5", "--no-wait")
    execution = json.loads(started.stdout)["executionArn"]
    # More throttling errors than the SDK retries (3 attempts a call): the watch must back off
    # and read again, not die.
    fault = control(localcloud, "POST", "faults", {"action": "states:GetExecutionHistory",
                                                  "error": "ThrottlingException", "count": 8})
    try:
        watched = deckhand("--output", "json", "watch", execution)
        hits = [f["hits"] for f in control(localcloud, "GET", "faults")["faults"] if f["id"] == fault["id"]]
    finally:
        control(localcloud, "DELETE", "faults", {"id": fault["id"]})
    assert hits == [8], f"every throttling error was met: {hits}"
    assert watched.returncode == 0, watched.stderr
    (doc,) = json.loads(watched.stdout)
    assert doc["status"] == "SUCCEEDED" and doc["exitCode"] == 0 and doc["verdict"].startswith("deployed: ")
    (service,) = doc["services"]
    assert set(service) == SERVICE_FIELDS and service["status"] == "SUCCEEDED", service
    assert aws.running_images(api.cluster, api.service)["web"].endswith(digest)


def test_track_removes_the_tags_it_no_longer_sets_and_untrack_removes_every_deckhand_tag(aws: Aws, deckhand) -> None:
    api = api_service(aws, verified=False)
    service_arn = aws.describe(api.cluster, api.service)["serviceArn"]

    def tags() -> dict[str, str]:
        return {t["key"]: t["value"] for t in aws.ecs.list_tags_for_resource(resourceArn=service_arn)["tags"]}

    def deckhands() -> dict[str, str]:
        return {key: value for key, value in tags().items() if key.startswith("deckhand:")}

    track = f"web={api.repository}:main"
    gated = deckhand("track", api.cluster, api.service, track, "--alarm", "api-5xx", "--require-approval",
                     "--approval-timeout", "600", "--timeout", "120", "--bake", "30", "--max-failed-tasks", "2")
    assert gated.returncode == 0, gated.stderr
    policy = {"deckhand:alarms", "deckhand:approval", "deckhand:approval-timeout", "deckhand:timeout", "deckhand:bake",
              "deckhand:max-failed-tasks"}
    assert set(deckhands()) == policy | {"deckhand:track"}, deckhands()
    aws.ecs.tag_resource(resourceArn=service_arn, tags=[{"key": "team", "value": "payments"}])

    plain = deckhand("--output", "json", "track", api.cluster, api.service, track)
    assert plain.returncode == 0, plain.stderr
    assert deckhands() == {"deckhand:track": track}, "the gates and policies not given again are gone"
    assert set(json.loads(plain.stdout)["removed"]) == policy
    assert tags()["team"] == "payments", "other tags are not deckhand's"

    baked = deckhand("track", api.cluster, api.service, track, "--bake", "10", "--alarm", "api-5xx")
    assert baked.returncode == 0 and deckhands() == {"deckhand:track": track, "deckhand:bake": "10",
                                                     "deckhand:alarms": "api-5xx"}, deckhands()
    again = deckhand("track", api.cluster, api.service, track, "--bake", "10")
    assert "deckhand:alarms removed" in again.stdout and deckhands() == {"deckhand:track": track, "deckhand:bake": "10"}

    aws.ecs.tag_resource(resourceArn=service_arn, tags=[{"key": "deckhand:note", "value": "set by hand"}])
    untracked = deckhand("--output", "json", "untrack", api.cluster, api.service)
    assert untracked.returncode == 0, untracked.stderr
    assert deckhands() == {}, "every deckhand:* tag is removed"
    assert set(json.loads(untracked.stdout)["removed"]) == {"deckhand:track", "deckhand:bake", "deckhand:note"}
    assert tags()["team"] == "payments"
