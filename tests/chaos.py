"""The chaos run (issue 21, item 6): random pushes, random faults and random people on a handful
of services, with deckhand's invariants checked from the local cloud's ground truth after every
deployment. Run through `scripts/chaos [--seed S] [--deployments N]`.

Each round draws one fault for the whole local cloud (throttling, API errors, stale ECS reads,
lost, repeated or reordered events, duplicated or starved Lambda invocations, or none), then
pushes an image to every service at once (healthy, slow, unhealthy or crashing) and, on some
services, lets a person act during the rollout (re-apply the previous revision, point "main"
back at the previous image, scale, stop a task, stop deckhand's service execution). After the
round it checks, per deployment:

* the verdict is right: a healthy image is never rolled back (SUCCEEDED, or SUPERSEDED when a
  person changed the service), a broken one never succeeds (ROLLED_BACK, or SUPERSEDED);
* the service runs what the verdict says (the pushed image, the image before it, or the
  person's revision) and no task of a broken image is left running;
* exactly one terminal event per service execution; no push execution failed with a States.*
  error (a history over its quota, a path that selected nothing);
* no lock is left held; a push whose event was lost started nothing and changed nothing;
* after a person re-tagged the previous image, the service runs it and that push has its one
  terminal event; after a person stopped deckhand's execution, the push still ends with its
  summary, and the service's next deployment takes the lock over.

It prints a table (deployments, faults met, people, verdicts, violations) and exits 1 on a
violation, naming the seed that reproduces it."""

from __future__ import annotations

import argparse
import collections
import json
import logging
import random
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e.aws import Aws, EventQueue, Network, unique, wait_until  # noqa: E402
from localcloud import start_local_cloud  # noqa: E402

PARAMETERS = {
    "PollIntervalSeconds": "2",
    "DeploymentTimeoutSeconds": "90",
    # A lost ECS event costs a rollout at most this long (the watcher's heartbeat).
    "RecheckSeconds": "15",
    "BakeSeconds": "0",
    "Architecture": "x86_64",
    # Each push is judged against its own verdict; a sweep deploying a lost push later would be
    # a deployment nobody here started. The sweep is tested on its own (tests/e2e/test_reconcile.py).
    "ReconcileMinutes": "0",
}
ECS_EVENTS = ["ECS Deployment State Change", "ECS Task State Change"]
TERMINAL = {"SUCCEEDED", "ROLLED_BACK", "ROLLBACK_FAILED", "SKIPPED", "FAILED", "SUPERSEDED"}
IMAGES = [("healthy", 0.4), ("slow", 0.15), ("unhealthy", 0.25), ("crash", 0.2)]
PEOPLE = [(None, 0.5), ("reapply-previous", 0.12), ("scale", 0.12), ("stop-task", 0.1), ("retag-previous", 0.1),
          ("stop-execution", 0.06)]
FAULTS = [
    (None, 0.2),
    ("throttling-10x", 0.1),
    ("api-errors", 0.1),
    ("ecs-reads-5s-stale", 0.1),
    ("ecs-events-duplicated", 0.1),
    ("ecs-events-reordered", 0.1),
    ("ecs-events-lost", 0.05),
    ("push-events-lost", 0.05),
    ("lambda-duplicates", 0.1),
    ("lambda-starved", 0.1),
]
# The calls deckhand's functions make during a rollout, for "api-errors".
FAULTY_ACTIONS = [
    ("ecs:DescribeServices", "ThrottlingException"),
    ("ecs:DescribeTasks", "ServerException"),
    ("ecs:UpdateService", "ThrottlingException"),
    ("elasticloadbalancing:DescribeTargetHealth", "Throttling"),
    ("dynamodb:PutItem", "ProvisionedThroughputExceededException"),
    ("dynamodb:GetItem", "InternalServerError"),
    ("states:SendTaskSuccess", "ThrottlingException"),
    ("events:PutEvents", "ThrottlingException"),
]


def pick(rng: random.Random, weighted: list[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def control(cloud: Any, method: str, route: str, body: dict | None = None) -> Any:
    request = urllib.request.Request(f"{cloud.endpoint}/_localcloud/{route}", method=method,
                                     data=json.dumps(body or {}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


@dataclass
class Service:
    cluster: str
    name: str
    repository: str
    group: str


@dataclass
class Outcome:
    round: int
    service: str
    image: str
    fault: str | None
    person: str | None
    status: str = "-"
    reason: str = ""
    violations: list[str] = field(default_factory=list)


class Events:
    """The deckhand events, drained by one thread at a time."""

    def __init__(self, aws: Aws):
        self.queue = EventQueue(aws)
        self.lock = threading.Lock()

    def for_execution(self, execution_arn: str) -> list[dict]:
        with self.lock:
            return self.queue.for_execution(execution_arn)


class Chaos:
    def __init__(self, cloud: Any, seed: int):
        self.cloud = cloud
        self.aws = Aws(cloud)
        self.rng = random.Random(seed)
        self.events = Events(self.aws)
        self.table = cloud.stack_outputs["StateTableName"]
        self.service_machine = cloud.stack_outputs["ServiceStateMachineArn"]

    # ------------------------------------------------------------------ the services
    def services(self, count: int) -> list[Service]:
        aws, made = self.aws, []
        net: Network = aws.network()
        cluster = aws.cluster()
        for index in range(count):
            name = f"svc{index}"
            repository = aws.repository(unique(f"chaos/{name}"))
            group = aws.target_group(unique(name), net, 8080)
            aws.load_balancer(net, {80: group})
            initial = aws.push(repository, "main")
            td = aws.task_definition(unique(name), [("web", aws.pinned(repository, initial), 8080)])
            # The grace period covers a slow start (a "slow" image is ready after 8 s): without it
            # the load balancer fails such tasks and ECS replaces them, a broken deployment.
            aws.service(cluster, name, td, net, [(group, "web", 8080)], track=f"web={repository}:main",
                        desired=2 if index % 2 == 0 else 1, grace=20)
            made.append(Service(cluster, name, repository, group))
        return made

    # ------------------------------------------------------------------ faults
    def apply(self, fault: str | None) -> None:
        cloud = self.cloud
        if fault == "throttling-10x":
            control(cloud, "POST", "throttling", {"scale": 0.1})
        elif fault == "api-errors":
            for action, error in self.rng.sample(FAULTY_ACTIONS, 2):
                control(cloud, "POST", "faults", {"action": action, "error": error, "count": 3, "callerRole": "*"})
        elif fault == "ecs-reads-5s-stale":
            control(cloud, "POST", "ecs/consistency", {"lagSeconds": 5})
        elif fault == "ecs-events-duplicated":
            control(cloud, "POST", "events/chaos", {"detailTypes": ECS_EVENTS, "duplicate": True,
                                                    "duplicateAfterSeconds": 1})
        elif fault == "ecs-events-reordered":
            control(cloud, "POST", "events/chaos", {"detailTypes": ECS_EVENTS, "reorderWithinSeconds": 2})
        elif fault == "ecs-events-lost":
            control(cloud, "POST", "events/chaos", {"detailTypes": ECS_EVENTS, "drop": True})
        elif fault == "push-events-lost":
            control(cloud, "POST", "events/chaos", {"detailTypes": ["ECR Image Action"], "drop": True})
        elif fault == "lambda-duplicates":
            control(cloud, "POST", "lambda/concurrency", {"duplicateRate": 1})
        elif fault == "lambda-starved":
            reserved = sum(control(cloud, "GET", "lambda/concurrency")["reserved"].values())
            control(cloud, "POST", "lambda/concurrency", {"accountLimit": reserved + 1})

    def clear(self) -> None:
        for route in ("throttling", "faults", "ecs/consistency", "events/chaos", "lambda/concurrency"):
            control(self.cloud, "DELETE", route)

    # ------------------------------------------------------------------ one deployment
    def deploy(self, service: Service, outcome: Outcome) -> None:
        aws, cluster, name = self.aws, service.cluster, service.name
        before_revision = aws.describe(cluster, name)["taskDefinition"]
        before_image = aws.images(before_revision)["web"]
        health = "healthy" if outcome.image == "slow" else outcome.image
        ready = 8 if outcome.image == "slow" else 1
        digest = aws.push(service.repository, "main", health=health, ready_seconds=ready)
        pushed = aws.pinned(service.repository, digest)
        broken = outcome.image in ("unhealthy", "crash")
        if outcome.fault == "push-events-lost":
            time.sleep(5)
            if aws.executions_for(digest):
                outcome.violations.append("a push whose event was lost started an execution")
            if aws.describe(cluster, name)["taskDefinition"] != before_revision:
                outcome.violations.append("a push whose event was lost changed the service")
            outcome.status = "LOST"
            return
        execution = aws.execution_for_push(digest, timeout=60)
        before_digest = before_image.rsplit("@", 1)[-1]
        earlier_runs = {e["executionArn"] for e in aws.executions_for(before_digest)}
        person_revision = self.act(service, outcome, digest, before_revision, before_digest, execution)
        finished = aws.finish(execution, timeout=600)
        if str(finished.get("error", "")).startswith("States."):
            outcome.violations.append(f"the push execution failed with {finished['error']}: {finished.get('cause', '')[:200]}")
        terminal = self.terminal_events(execution, name)
        if outcome.person == "stop-execution":
            # A person stopped deckhand's service execution: it publishes nothing more, and what
            # the service runs is that person's business. The push still ends with its summary
            # (checked above), and the next deployment of this service takes the lock over (its
            # own checks show it).
            outcome.status = terminal[-1]["status"] if terminal else "STOPPED"
            if len(terminal) > 1:
                outcome.violations.append(f"{len(terminal)} terminal events after a stopped execution")
            # Whoever stops deckhand takes the rollout over: they put the previous revision
            # back, so that the next round starts from a service that runs a good image.
            aws.ecs.update_service(cluster=cluster, service=name, taskDefinition=before_revision)
            try:
                aws.wait_steady(cluster, name, timeout=180)
            except AssertionError:
                outcome.violations.append("the service never settled after the person's rollback")
            self.wait_out_read_lag()  # the next round must read the person's revision
            return
        if len(terminal) != 1:
            seen = [(e["service"], e["status"]) for e in self.events.for_execution(execution)]
            outcome.violations.append(f"{len(terminal)} terminal events (execution {execution.rsplit(':', 1)[-1]} "
                                      f"{finished['status']} {finished.get('error', '')}; its events: {seen}; "
                                      f"{self.whereabouts(digest)})")
        outcome.status = terminal[-1]["status"] if terminal else "NONE"
        outcome.reason = terminal[-1].get("reason", "") if terminal else ""
        if outcome.person == "retag-previous":
            # "main" names the previous image again: that push deploys it (or finds it running).
            retagged = wait_until("the re-tag's execution", lambda: [
                e["executionArn"] for e in aws.executions_for(before_digest) if e["executionArn"] not in earlier_runs], 60)
            for run in retagged:
                aws.finish(run, timeout=600)
                ends = self.terminal_events(run, name)
                if len(ends) != 1:
                    outcome.violations.append(f"{len(ends)} terminal events for the re-tag's execution")
                outcome.reason += f" | re-tag: {ends[-1]['status'] if ends else 'NONE'}"
        self.check_end(service, outcome, pushed, broken, before_image, person_revision)

    def terminal_events(self, execution: str, name: str) -> list[dict]:
        """The service's terminal events of the push. EventBridge delivers them to the test's
        queue asynchronously, after the execution may have ended: wait for the first (up to
        60 s), then a little longer for a second one that must not come."""
        def terminal() -> list[dict]:
            return [e for e in self.events.for_execution(execution) if e["service"] == name and e["status"] in TERMINAL]

        deadline = time.monotonic() + 60
        while not terminal() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)
        return terminal()

    def whereabouts(self, digest: str) -> str:
        """Where a missing event may be: every execution the push started, every event that
        names the digest under any execution, and the local cloud's event delivery."""
        runs = [(e["executionArn"].rsplit(":", 1)[-1][:8], e["status"]) for e in self.aws.executions_for(digest)]
        with self.events.lock:
            named = [(e["detail"].get("executionArn", "").rsplit(":", 1)[-1][:8], e["detail"]["status"],
                      round(e["delivered"] - time.time())) for e in self.events.queue.drain()
                     if digest[7:19] in json.dumps(e["detail"])]
        delivery = self.cloud.delivery
        return (f"executions for the digest {runs}; events naming it (execution, status, delivered s ago) {named}; "
                f"delivery delivered={delivery.delivered} failed={delivery.failed} pending={delivery.pending} "
                f"queued={delivery._queue.qsize()}")

    def act(self, service: Service, outcome: Outcome, digest: str, before_revision: str, before_digest: str,
            execution: str) -> str | None:
        """The person's move, once deckhand's UpdateService is on the service; returns the
        revision a person set, if any."""
        if outcome.person is None:
            return None
        aws, cluster, name = self.aws, service.cluster, service.name

        def updated() -> bool:
            return digest in json.dumps(aws.images(aws.describe(cluster, name)["taskDefinition"]))

        try:
            wait_until("deckhand's UpdateService", updated, 60, interval=0.3)
        except AssertionError:
            outcome.person = f"{outcome.person} (never acted: no rollout seen)"
            return None
        time.sleep(self.rng.uniform(0, 3))
        if outcome.person == "reapply-previous":
            aws.ecs.update_service(cluster=cluster, service=name, taskDefinition=before_revision)
            return before_revision
        if outcome.person == "scale":
            desired = aws.describe(cluster, name)["desiredCount"]
            aws.ecs.update_service(cluster=cluster, service=name, desiredCount=max(1, desired + self.rng.choice([-1, 1])))
        elif outcome.person == "stop-task":
            tasks = aws.ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING")["taskArns"]
            if tasks:
                aws.ecs.stop_task(cluster=cluster, task=self.rng.choice(tasks), reason="chaos: stopped by a person")
        elif outcome.person == "retag-previous":
            # Rolling back by re-tagging: PutImage of the previous image's manifest as "main".
            [image] = aws.ecr.batch_get_image(repositoryName=service.repository,
                                              imageIds=[{"imageDigest": before_digest}])["images"]
            aws.ecr.put_image(repositoryName=service.repository, imageManifest=image["imageManifest"],
                              imageManifestMediaType=image["imageManifestMediaType"], imageTag="main")
        elif outcome.person == "stop-execution":
            running = [e for e in aws.sfn.list_executions(stateMachineArn=self.service_machine,
                                                           statusFilter="RUNNING")["executions"]]
            for child in running:
                described = aws.sfn.describe_execution(executionArn=child["executionArn"])
                if execution in described.get("input", "") and f'/{name}"' in described.get("input", ""):
                    aws.sfn.stop_execution(executionArn=child["executionArn"], error="Chaos",
                                           cause="stopped by a person during the rollout")
                    return None
            outcome.person = "stop-execution (never acted: it had ended)"
        return None

    def check_end(self, service: Service, outcome: Outcome, pushed: str, broken: bool, before_image: str,
                  person_revision: str | None) -> None:
        aws, cluster, name, status = self.aws, service.cluster, service.name, outcome.status
        allowed = {"SUPERSEDED"} if person_revision or outcome.person == "retag-previous" else set()
        allowed |= {"ROLLED_BACK"} if broken else {"SUCCEEDED"}
        if status not in allowed:
            outcome.violations.append(f"verdict {status} for a {outcome.image} image (expected {sorted(allowed)})")
        try:
            aws.wait_steady(cluster, name, timeout=180)
        except AssertionError:
            outcome.violations.append("the service never settled")
        self.wait_out_read_lag()
        revision = aws.describe(cluster, name)["taskDefinition"]
        running = aws.images(revision)["web"]
        if person_revision or outcome.person == "retag-previous":
            # Someone re-applied the previous revision, or pointed "main" back at the previous
            # image, during the rollout: nobody may undo that.
            if running != before_image:
                outcome.violations.append(f"a person's rollback was undone: the service runs {running}")
        else:
            expected = {"SUCCEEDED": pushed, "ROLLED_BACK": before_image}.get(status)
            if expected and running != expected:
                outcome.violations.append(f"{status} but the service runs {running}, expected {expected}")
        if broken and self.runs_image(cluster, name, pushed):
            outcome.violations.append("a task of the broken image is left running")
        item = self.cloud.client("dynamodb").get_item(
            TableName=self.table, Key={"pk": {"S": aws.describe(cluster, name)["serviceArn"]}}).get("Item", {})
        if "lockOwner" in item:
            outcome.violations.append(f"the lock is still held by {item['lockOwner']['S']}")

    def wait_out_read_lag(self) -> None:
        """ECS reads lag behind writes (1 s by default, 5 s in "ecs-reads-5s-stale"): what a read
        shows after the lag is the settled state."""
        time.sleep(float(control(self.cloud, "GET", "ecs/consistency").get("lagSeconds", 1)) + 1)

    def runs_image(self, cluster: str, name: str, image: str) -> bool:
        ecs = self.aws.ecs
        arns = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING")["taskArns"]
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
        return any(image in json.dumps(self.aws.images(t["taskDefinitionArn"])) for t in tasks
                   if t.get("lastStatus") == "RUNNING")


def table(outcomes: list[Outcome], met: dict[str, Any], seed: int, elapsed: float) -> str:
    lines = [f"chaos run, seed {seed}: {len(outcomes)} deployments in {elapsed:.0f} s"]

    def count(title: str, values: list[Any]) -> None:
        counter = collections.Counter(str(v) for v in values)
        lines.append(f"  {title:<12} " + ", ".join(f"{k} {n}" for k, n in sorted(counter.items())))

    count("images", [o.image for o in outcomes])
    count("faults", [o.fault or "none" for o in outcomes])
    count("people", [o.person or "none" for o in outcomes])
    count("verdicts", [o.status for o in outcomes])
    lines.append("  met          " + ", ".join(f"{k} {v}" for k, v in met.items()))
    violations = [(o, v) for o in outcomes for v in o.violations]
    lines.append(f"  violations   {len(violations)}")
    for o, v in violations:
        lines.append(f"    round {o.round} {o.service} ({o.image}, fault {o.fault}, person {o.person}): {v}")
        lines.append(f"      deckhand's reason: {o.reason[:400]}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--deployments", type=int, default=30)
    parser.add_argument("--services", type=int, default=3)
    parser.add_argument("--run-dir", type=Path, default=Path(__file__).resolve().parents[1] / ".localcloud" / "chaos",
                        help="where the local cloud keeps the functions' code and logs")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    for noisy in ("werkzeug", "moto"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    # The local cloud's own warnings (a delivery that failed) go to a file beside the functions' logs.
    args.run_dir.mkdir(parents=True, exist_ok=True)
    warnings = logging.FileHandler(args.run_dir / "localcloud.log", mode="w")
    warnings.setLevel(logging.WARNING)
    logging.getLogger("localcloud").addHandler(warnings)
    logging.getLogger("localcloud").propagate = False
    print(f"chaos: seed {seed}, {args.deployments} deployments on {args.services} services", flush=True)
    started = time.monotonic()
    cloud = start_local_cloud(port=0, params=PARAMETERS, build=False, run_dir=args.run_dir.resolve())
    outcomes: list[Outcome] = []
    met: dict[str, Any] = {}
    try:
        chaos = Chaos(cloud, seed)
        services = chaos.services(args.services)
        round_number = 0
        while len(outcomes) < args.deployments:
            round_number += 1
            fault = pick(chaos.rng, FAULTS)
            batch = services[: args.deployments - len(outcomes)]
            planned = [Outcome(round_number, s.name, pick(chaos.rng, IMAGES), fault,
                               None if fault == "push-events-lost" else pick(chaos.rng, PEOPLE)) for s in batch]
            chaos.apply(fault)
            try:
                with ThreadPoolExecutor(len(batch)) as pool:
                    futures = [pool.submit(chaos.deploy, s, o) for s, o in zip(batch, planned)]
                    for future, outcome in zip(futures, planned):
                        try:
                            future.result()
                        except Exception as error:  # noqa: BLE001 - a harness failure is reported, not hidden
                            outcome.violations.append(f"harness: {type(error).__name__}: {error}")
            finally:
                # Refused API calls are counted per round (the route's DELETE clears them); Lambda's
                # counts run for the whole life of the local cloud.
                met["apiThrottled"] = met.get("apiThrottled", 0) + sum(
                    control(cloud, "GET", "throttling").get("refused", {}).values())
                lambdas = control(cloud, "GET", "lambda/concurrency")
                met["lambdaThrottled"] = sum(lambdas.get("throttled", {}).values())
                met["lambdaDuplicates"] = lambdas.get("asyncDuplicates", 0)
                met["faultsStruck"] = met.get("faultsStruck", 0) + sum(
                    f.get("hits", 0) for f in control(cloud, "GET", "faults").get("faults", []))
                chaos.clear()
            for outcome in planned:
                mark = "VIOLATION " + "; ".join(outcome.violations) if outcome.violations else "ok"
                print(f"  round {outcome.round:>3} {outcome.service:<5} {outcome.image:<9} fault={outcome.fault or '-':<22} "
                      f"person={outcome.person or '-':<17} -> {outcome.status:<12} {mark}", flush=True)
            outcomes.extend(planned)
    finally:
        cloud.stop()
    print(table(outcomes, met, seed, time.monotonic() - started), flush=True)
    if any(o.violations for o in outcomes):
        print(f"chaos: violations found; reproduce with scripts/chaos --seed {seed} --deployments {args.deployments}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
