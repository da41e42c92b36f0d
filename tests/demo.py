"""The main job, on the local cloud: a Flask API and a React front end behind one ALB (`/api/*`
routed to the API), a healthy push deployed and verified, then a bad push rolled back. Prints a
timeline of both deployments as they happen, and ends by writing `deckhand report` of the two
deployments (one HTML page) and printing its path.

Run through `scripts/demo` (which prepares .venv and builds the functions)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e.aws import Aws, unique, wait_until  # noqa: E402
from localcloud import start_local_cloud  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PARAMETERS = {"PollIntervalSeconds": "2", "DeploymentTimeoutSeconds": "120", "Architecture": "x86_64"}
BOLD, DIM, GREEN, RED, YELLOW, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[33m", "\033[0m") if sys.stdout.isatty() else ("",) * 6


def humane(text: str) -> str:
    """Reasons carry full ARNs and digests (right for events); a person reads names."""
    text = re.sub(r"arn:aws:elasticloadbalancing:[^ )]*:targetgroup/([^/ )]+)/[0-9a-f]+", r"\1", text)
    text = re.sub(r"arn:aws:states:[^ )]*:execution:[^: )]+:([0-9a-f]{8})[0-9a-f-]*", r"execution \1", text)
    text = re.sub(r"arn:aws:ecs:[^ )]*:task-definition/", "", text)
    text = re.sub(r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/", "", text)
    return re.sub(r"sha256:([0-9a-f]{12})[0-9a-f]{52}", r"sha256:\1", text)


def short(text: str | None) -> str:
    """Task-definition ARNs as family:revision, digests as their first 12 hex digits."""
    if not text:
        return "-"
    if ":task-definition/" in text:
        return text.rsplit("/", 1)[1]
    if "@sha256:" in text:
        repository, digest = text.rsplit("@sha256:", 1)
        return f"{repository.rsplit('/', 1)[-1]}@{digest[:12]}"
    return text


class Timeline:
    """Lines with the seconds since the push, in the order things happened."""

    def __init__(self, started: float):
        self.started = started

    def line(self, at: float, what: str, text: str, colour: str = "") -> None:
        print(f"  {DIM}+{at - self.started:5.1f}s{RESET}  {colour}{what:<10}{RESET} {humane(text)}", flush=True)


def output_of(event: dict) -> Any:
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, dict) and "output" in details:
            try:
                return json.loads(details["output"])
            except (TypeError, ValueError):
                return None
    return None


def timestamp(event: dict) -> float:
    value = event["timestamp"]
    return value.timestamp() if isinstance(value, datetime) else float(value)


def follow(aws: Aws, execution_arn: str, timeline: Timeline, queue) -> dict:
    """Prints the steps of the push's execution and of the service executions it starts as they
    complete, then the deployment events."""
    printed: dict[str, int] = {}
    states: dict[str, str] = {}
    shown_events = 0

    def show_events() -> None:
        nonlocal shown_events
        mine = [e for e in queue.drain() if e["detail"].get("executionArn") == execution_arn]
        for event in mine[shown_events:]:
            detail = event["detail"]
            colour = GREEN if detail["status"] in ("SUCCEEDED", "STARTED") else RED
            timeline.line(event["delivered"], "event", f"{detail['status']:<12} {detail['service']}: {detail['reason']}", colour)
        shown_events = len(mine)

    def print_new() -> None:
        fresh = []  # this round's new events of every execution, printed in time order
        for arn in [execution_arn, *aws.service_executions(execution_arn)]:
            history = aws.own_history(arn)
            fresh += [(timestamp(event), arn, event) for event in history[printed.get(arn, 0):]]
            printed[arn] = len(history)
        for at, arn, event in sorted(fresh, key=lambda item: item[0]):
            kind = event["type"]
            if kind.endswith("StateEntered"):
                states[arn] = event["stateEnteredEventDetails"]["name"]
            state = states.get(arn, "")
            result = output_of(event) if kind in ("TaskSucceeded", "LambdaFunctionSucceeded") else None
            if result is not None:
                describe(state, result, at, timeline)
            if kind == "TaskFailed" and state == "Deploy the service":
                cause = json.loads(event["taskFailedEventDetails"].get("cause") or "{}")
                timeline.line(at, "service", f"service execution ended {cause.get('Status')} ({cause.get('Error')})", RED)
            elif kind in ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut"):
                details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
                timeline.line(at, "wake" if kind == "TaskTimedOut" else "error",
                              f"{state}: {details.get('error')}", YELLOW if kind == "TaskTimedOut" else RED)

    while True:
        print_new()
        show_events()
        described = aws.sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.5)
    print_new()  # what the last round raced with
    aws.cloud.wait_for_deliveries()
    show_events()
    end = described.get("stopDate")
    colour = GREEN if described["status"] == "SUCCEEDED" else RED
    error = f" ({described.get('error')})" if described.get("error") else ""
    timeline.line(end.timestamp() if end else time.time(), "execution", f"{described['status']}{error}", BOLD + colour)
    return described


def describe(state: str, result: Any, at: float, timeline: Timeline) -> None:
    if state == "Plan deployment":
        services = ", ".join(arn.rsplit(":service/", 1)[-1] for arn in result.get("services", []))
        timeline.line(at, "plan", f"{result.get('reason')}{': ' + services if services else ''}")
    elif state == "Deploy the service":
        timeline.line(at, "service", f"service execution ended {result.get('Status')}: {short(result.get('ExecutionArn'))}")
    elif state in ("Wait for ECS events", "Wait for rollback events"):
        verdict = result.get("verdict", "?")
        colour = {"HEALTHY": GREEN, "FAILED": RED}.get(verdict, YELLOW)
        timeline.line(at, "ecs event", f"watcher woken: {colour}{verdict:<8}{RESET} {result.get('reason', '')}")
    elif state == "Acquire service lock":
        timeline.line(at, "lock", result.get("reason", ""))
    elif state == "Register revision and update service":
        timeline.line(at, "register", f"new revision {short(result.get('taskDefinition'))} cloned from {short(result.get('previousTaskDefinition'))}, image pinned by digest")
        timeline.line(at, "update", f"UpdateService -> deployment {result.get('deploymentId')}")
    elif state in ("Check rollout health", "Final health check", "Check rollback health"):
        verdict = result.get("verdict", "?")
        colour = {"HEALTHY": GREEN, "FAILED": RED}.get(verdict, YELLOW)
        timeline.line(at, "health", f"{colour}{verdict:<8}{RESET} {result.get('reason', '')}")
    elif state == "Roll back to last known-good":
        timeline.line(at, "rollback", f"{result.get('reason', '')}: UpdateService -> deployment {result.get('deploymentId')}", RED)
    elif state == "Record known-good and release lock":
        timeline.line(at, "recorded", "revision verified healthy: recorded as the service's known-good; lock released", GREEN)
    elif state.startswith("Release lock"):
        timeline.line(at, "unlock", "lock released")
    elif state in ("Publish deployment event", "Plan service", "Sum up the services"):
        pass  # the events are printed from the event bus; the plan and summary add nothing new


BINARY = ROOT / "target" / "debug" / "deckhand"
# One page for both pushes, one above the other: the healthy rollout and the rolled-back one
# compare at a glance.
REPORT = ROOT / ".localcloud" / "demo" / "report.html"


def command_env(cloud: Any) -> dict[str, str]:
    """What the `deckhand` command needs to reach the local cloud, as a user's shell would have it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=cloud.endpoint, AWS_REGION=cloud.region, AWS_ACCESS_KEY_ID="localcloud",
               AWS_SECRET_ACCESS_KEY="localcloud", AWS_EC2_METADATA_DISABLED="true")
    return env


def write_report(aws: Aws, executions: list[str]) -> bool:
    """`deckhand report` of the demo's pushes: a timeline of both in one page."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    print(f"{BOLD}$ deckhand report {' '.join(arn.rsplit(':', 1)[1] for arn in executions)} --html {REPORT}{RESET}", flush=True)
    done = subprocess.run([str(BINARY), "report", *executions, "--html", str(REPORT)], env=command_env(aws.cloud),
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print(done.stdout.rstrip(), flush=True)
    if done.returncode != 0:
        return False
    print(f"{BOLD}Report of both deployments:{RESET} {REPORT}\n", flush=True)
    return True


def show_the_command(aws: Aws, cluster: str, repository: str) -> bool:
    """The same service through the `deckhand` command: a manual deploy of a fixed image (tag v2)
    followed live, then what status and history say. True when each exits as expected."""
    cloud = aws.cloud
    print(f"{BOLD}The deckhand command: push {repository}:v2 (healthy) and deploy it by hand{RESET}", flush=True)
    aws.push(repository, "v2", ready_seconds=2)
    env = command_env(cloud)
    results = []
    for args, expected in ((["deploy", cluster, "api", f"{repository}:v2"], 0), (["status", cluster], 0),
                           (["history", cluster, "api"], 0)):
        print(f"{BOLD}$ deckhand {' '.join(args)}{RESET}", flush=True)
        done = subprocess.run([str(BINARY), *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        print(done.stdout.rstrip(), flush=True)
        print(f"{DIM}(exit {done.returncode}){RESET}\n", flush=True)
        results.append(done.returncode == expected)
    return all(results)


def main() -> int:
    # Request logs and the interpreter's own error traces would drown the timeline.
    for noisy in ("werkzeug", "moto", "localcloud"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    print(f"{BOLD}Starting the local cloud (moto + ECS rollout simulator + deckhand's stack from template.yaml){RESET}", flush=True)
    cloud = start_local_cloud(port=0, params=PARAMETERS, build=False)
    try:
        aws = Aws(cloud)
        queue = aws.event_queue()
        print(f"  ready on {cloud.endpoint}; state machine {aws.state_machine}\n", flush=True)

        print(f"{BOLD}Topology: Flask API + React front end behind one ALB, /api/* -> API{RESET}", flush=True)
        net = aws.network()
        flask, react = aws.repository("flask-api"), aws.repository("react-front")
        front_tg = aws.target_group("front", net, 80)
        api_tg = aws.target_group("api", net, 5000, "/api/health")
        alb = aws.load_balancer(net, {80: front_tg})
        aws.path_rule(alb.listeners[80], ["/api/*"], api_tg, 10)
        cluster = aws.cluster()
        api_td = aws.task_definition("flask-api", [("web", aws.pinned(flask, aws.push(flask, "main")), 5000)])
        front_td = aws.task_definition("react-front", [("ui", aws.pinned(react, aws.push(react, "main")), 80)])
        aws.service(cluster, "api", api_td, net, [(api_tg, "web", 5000)], track="web=flask-api:main", desired=2)
        aws.service(cluster, "front", front_td, net, [(front_tg, "ui", 80)], track="ui=react-front:main")
        print(f"  cluster {cluster}: service api (2 tasks, tracks web=flask-api:main), service front (tracks ui=react-front:main)\n", flush=True)

        outcomes, executions = [], []
        for title, health in (("a healthy image", "healthy"), ("a bad image (its targets never pass health checks)", "unhealthy")):
            print(f"{BOLD}Push flask-api:main: {title}{RESET}", flush=True)
            started = time.time()
            timeline = Timeline(started)
            digest = aws.push(flask, "main", health=health, ready_seconds=2)
            timeline.line(time.time(), "push", f"ECR PutImage flask-api:main -> {digest[:19]}")
            execution = aws.execution_for_push(digest)
            executions.append(execution)
            timeline.line(time.time(), "execution", f"started by the EventBridge rule: {execution.rsplit(':', 1)[1]}")
            outcome = follow(aws, execution, timeline, queue)
            service = aws.describe(cluster, "api")
            states = aws.target_states(api_tg)
            timeline.line(time.time(), "now", f"api runs {short(service['taskDefinition'])} ({short(aws.running_images(cluster, 'api')['web'])}); targets: {', '.join(states)}")
            outcomes.append(outcome["status"])
            print(flush=True)
        ok = outcomes == ["SUCCEEDED", "FAILED"]
        ok = show_the_command(aws, cluster, flask) and ok
        ok = write_report(aws, executions) and ok
        verdict = f"{GREEN}deployed, then rolled back as expected{RESET}" if ok else f"{RED}unexpected outcomes {outcomes}{RESET}"
        print(f"{BOLD}Result:{RESET} {verdict}", flush=True)
        return 0 if ok else 1
    finally:
        print("Stopping the local cloud.", flush=True)
        cloud.stop()


if __name__ == "__main__":
    sys.exit(main())
