"""What one deployment costs on the local cloud, observed from the outside.

A local cloud (tests/localcloud) with deckhand's stack, instrumented by localcloud.metrics:
every AWS request it serves is recorded with its caller (deckhand's functions are told apart by
their SDK's user agent), and the Lambda runtime's sandboxes report when each invocation was
fetched and answered. The harness's own calls go through clients marked ``deckhand-harness``
and are never counted as deckhand's.

Scenarios, on one Flask-style API service (2 tasks, awsvpc, behind an ALB target group,
tracking ``web=<repository>:main``), one after the other:

* healthy push, first of the cloud's life: every function starts cold;
* healthy push (warm functions), the reference healthy deployment;
* healthy push whose tasks take longer to become healthy (ready-seconds 10 instead of 2): how
  state transitions grow with rollout length;
* unhealthy image (targets never pass) and crashing image (tasks exit 1 after 1 s): rolled
  back to the last known-good revision.

Definitions (also printed under the table):

* state transitions: ``*StateEntered`` events in the push's execution history and in those of
  the service executions it started (every state entered, inside Map iterations too: what Step
  Functions Standard bills); retries (a Task scheduled again without a new StateEntered) are
  billed too and reported separately;
* Lambda invocations: ``LambdaFunctionScheduled`` and Lambda ``TaskScheduled`` events, per
  function, plus the signal function's invocations by EventBridge (ECS events), counted by the
  Lambda runtime;
* history events and payloads: the longest single execution history (quota 25,000 events) and
  the largest input, output or parameters of any state (quota 256 KiB);
* push → UpdateService: from PutImage returning to the harness to the deploy function's
  UpdateService request reaching the cloud;
* failure signal: the moment the failure became observable in ECS data: the ``stoppingAt``
  of the new deployment's task whose failed stop (stopCode TaskFailedToStart or
  EssentialContainerExited, a health-check stop reason, or a non-zero exit code: the same rule
  as deckhand's) brought the count to the policy's maxFailedTasks; else the deployment's
  FAILED rollout state (circuit breaker); rollback start: the rollback function's UpdateService
  request reaching the cloud.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from .functions import ROOT

LOG = logging.getLogger("bench")

PARAMETERS = {
    "PollIntervalSeconds": "1",
    "DeploymentTimeoutSeconds": "60",
    # Locally every function runs as the x86_64 build whatever the template says.
    "Architecture": "x86_64",
}
FAILED_STOP_CODES = ("TaskFailedToStart", "EssentialContainerExited")
ALB_RULES_PER_BALANCER = 100
EXTERNAL_STOP_CODES = ("UserInitiated", "ServiceSchedulerInitiated", "SpotInterruption", "TerminationNotice")


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def quiet_logs() -> None:
    for name in ("werkzeug", "moto", "localcloud", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class HarnessCloud:
    """The local cloud as the harness sees it: the same endpoint, clients marked as harness."""

    def __init__(self, cloud: Any):
        from localcloud.metrics import harness_config

        self._cloud = cloud
        self._config = harness_config
        self._clients: dict[str, Any] = {}
        self.stack_outputs = cloud.stack_outputs
        self.endpoint = cloud.endpoint

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._cloud.client(service, config=self._config())
        return self._clients[service]

    def wait_for_deliveries(self, timeout: float = 10) -> bool:
        return self._cloud.wait_for_deliveries(timeout)


@dataclass
class Deployment:
    """One push and the execution it started, with everything measured about it."""

    name: str
    pushed_at: float
    digest: str
    execution_arn: str = ""
    status: str = ""
    error: str | None = None
    output: Any = None
    ended_at: float | None = None
    history: list[dict] = field(default_factory=list)  # the push's and its service executions'
    histories: dict[str, list[dict]] = field(default_factory=dict)  # execution ARN → its own history
    api_calls: list[Any] = field(default_factory=list)  # deckhand's (caller == function)
    cloud_calls: list[Any] = field(default_factory=list)  # the cloud's own (Lambda Invoke, StartExecution)
    invocations: list[Any] = field(default_factory=list)  # runtime side
    binaries: dict[str, str] = field(default_factory=dict)  # function name → binary
    window_start: float = 0.0  # just before PutImage was called
    signal_at: float | None = None
    signal_what: str = ""
    cluster: str = ""
    service: str = ""

    # ---------------------------------------------------------------- history
    @property
    def state_entered(self) -> Counter:
        return Counter(e["type"] for e in self.history if e["type"].endswith("StateEntered"))

    @property
    def transitions(self) -> int:
        return sum(self.state_entered.values())

    @property
    def retries(self) -> int:
        scheduled = sum(1 for e in self.history if e["type"] in ("LambdaFunctionScheduled", "TaskScheduled"))
        return max(0, scheduled - self.state_entered.get("TaskStateEntered", 0))

    @property
    def service_histories(self) -> list[list[dict]]:
        return [h for arn, h in self.histories.items() if arn != self.execution_arn]

    @property
    def largest_history(self) -> int:
        """Events in the longest single execution history (the 25,000-event quota is per execution)."""
        return max((len(h) for h in self.histories.values()), default=0)

    @property
    def largest_payload(self) -> int:
        """Bytes (UTF-8) of the largest input, output or parameters any state saw."""
        largest = 0
        for event in self.history:
            for key, details in event.items():
                if key.endswith("EventDetails") and isinstance(details, dict):
                    for part in ("input", "output", "parameters"):
                        if isinstance(details.get(part), str):
                            largest = max(largest, len(details[part].encode()))
        return largest

    def lambda_invocations(self) -> Counter:
        found: Counter = self._invoked_by_events()
        for event in self.history:
            if event["type"] == "LambdaFunctionScheduled":
                resource = event.get("lambdaFunctionScheduledEventDetails", {}).get("resource", "")
            elif event["type"] == "TaskScheduled":
                details = event.get("taskScheduledEventDetails", {})
                if details.get("resourceType") != "lambda":
                    continue
                resource = json.loads(details.get("parameters") or "{}").get("FunctionName", "")
            else:
                continue
            name = resource.split(":function:", 1)[-1].split(":", 1)[0]
            found[self.binaries.get(name, name)] += 1
        return found

    def _invoked_by_events(self) -> Counter:
        """Invocations no state machine scheduled (EventBridge → the signal function)."""
        return Counter(b for b in (self.binaries.get(i.function, i.function) for i in self.invocations) if b == "signal")

    def lambda_gb_seconds(self, memory_mb: dict[str, int]) -> float:
        """Billed Lambda GB-seconds: each invocation's handler time rounded up to the
        millisecond, times its function's memory."""
        total = 0.0
        for invocation in self.invocations:
            if invocation.handler_ms is None:
                continue
            binary = self.binaries.get(invocation.function, invocation.function)
            total += (-(-invocation.handler_ms // 1)) / 1000 * memory_mb.get(binary, 128) / 1024
        return total

    def state_outputs(self, state: str) -> list[Any]:
        """Outputs of the Task state named `state`, in order."""
        outputs, current = [], None
        for event in self.history:
            if event["type"].endswith("StateEntered"):
                current = event["stateEnteredEventDetails"]["name"]
            elif event["type"].endswith("StateExited") and current == state:
                try:
                    outputs.append(json.loads(event["stateExitedEventDetails"].get("output") or "null"))
                except ValueError:
                    outputs.append(None)
        return outputs

    # ---------------------------------------------------------------- API calls
    def calls(self, binary: str | None = None, operation: str | None = None) -> list[Any]:
        return [
            c for c in self.api_calls
            if (binary is None or self.binaries.get(c.function or "", c.function) == binary)
            and (operation is None or c.operation == operation)
        ]

    def calls_by_service(self) -> Counter:
        return Counter(c.service for c in self.api_calls)

    def calls_by_operation(self, binary: str | None = None) -> Counter:
        return Counter(f"{c.service}:{c.operation}" for c in self.calls(binary))

    @property
    def checks(self) -> int:
        return self.lambda_invocations().get("check", 0)

    @property
    def update_service_at(self) -> float | None:
        first = self.calls("deploy", "UpdateService")
        return first[0].started if first else None

    @property
    def rollback_update_at(self) -> float | None:
        first = self.calls("rollback", "UpdateService")
        return first[0].started if first else None

    @property
    def push_to_update_s(self) -> float | None:
        return None if self.update_service_at is None else self.update_service_at - self.pushed_at

    @property
    def signal_to_rollback_s(self) -> float | None:
        if self.signal_at is None or self.rollback_update_at is None:
            return None
        return self.rollback_update_at - self.signal_at

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.pushed_at

    def milestones(self) -> dict[str, float]:
        """Seconds after the push of: StartExecution reaching the cloud, plan fetched by its
        runtime, deploy fetched, UpdateService; for a rollback, the check that saw the failure
        and the rollback function fetched."""
        out: dict[str, float] = {}
        start = next((c.started for c in self.cloud_calls if c.operation == "StartExecution"), None)
        if start is not None:
            out["StartExecution"] = start - self.pushed_at
        for binary in ("plan", "deploy"):
            first = next((i for i in self.invocations if self.binaries.get(i.function) == binary), None)
            if first is not None:
                out[f"{binary} running"] = first.fetched - self.pushed_at
        if self.update_service_at is not None:
            out["UpdateService"] = self.update_service_at - self.pushed_at
        return out

    def detection(self) -> dict[str, float]:
        """For a rollback: seconds after the failure signal of the check that reported it
        (fetched by the runtime) and of the rollback function's start."""
        out: dict[str, float] = {}
        if self.signal_at is None:
            return out
        checks_after = [i for i in self.invocations
                        if self.binaries.get(i.function) == "check" and i.fetched >= self.signal_at]
        if checks_after:
            out["check started"] = checks_after[0].fetched - self.signal_at
            if checks_after[0].finished:
                out["check answered"] = checks_after[0].finished - self.signal_at
        rollbacks = [i for i in self.invocations if self.binaries.get(i.function) == "rollback"]
        if rollbacks:
            out["rollback running"] = rollbacks[0].fetched - self.signal_at
        if self.rollback_update_at is not None:
            out["UpdateService"] = self.rollback_update_at - self.signal_at
        return out


def is_failed_stop(task: dict) -> bool:
    """deckhand's rule (functions/core/src/domain/health.rs, is_failed_stop)."""
    if task.get("lastStatus") != "STOPPED" and task.get("desiredStatus") != "STOPPED":
        return False
    if "health check" in (task.get("stoppedReason") or "").lower():
        return True
    if task.get("stopCode") in EXTERNAL_STOP_CODES:  # scale-in, Spot, StopTask: not the revision's fault
        return False
    by_code = task.get("stopCode") in FAILED_STOP_CODES
    by_exit = any(c.get("exitCode") not in (None, 0) for c in task.get("containers", []))
    return by_code or by_exit


class DeploymentBench:
    """A local cloud with deckhand's stack, instrumented, and a tracked service on it."""

    def __init__(self, run_dir: Path | None = None, params: dict[str, str] | None = None):
        self.run_dir = run_dir or ROOT / ".localcloud" / "bench"
        self.params = {**PARAMETERS, **(params or {})}
        self.cloud: Any = None
        self.instrumentation: Any = None
        self.aws: Any = None
        self.binaries: dict[str, str] = {}
        self.started_in_s = 0.0
        self._known_executions: set[str] = set()

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> "DeploymentBench":
        from e2e.aws import Aws
        from localcloud import metrics, start_local_cloud

        quiet_logs()
        began = time.monotonic()
        self.cloud = start_local_cloud(port=0, params=self.params, build=False, run_dir=self.run_dir)
        self.started_in_s = time.monotonic() - began
        try:
            self.instrumentation = metrics.install(self.cloud)
            self.aws = Aws(HarnessCloud(self.cloud))
            self._map_binaries_from_template()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _map_binaries_from_template(self) -> None:
        """Function name → binary, from the SAM template (the translated template keeps no
        BuildProperties): logical id PlanFunction ↔ Binary plan."""
        from .functions import functions

        by_logical = {spec.logical_id: spec.binary for spec in functions()}
        for logical_id, physical in self.cloud.stack.resources.items():
            if logical_id in by_logical:
                self.binaries[str(physical.ref)] = by_logical[logical_id]

    def __exit__(self, *exc: Any) -> None:
        if self.instrumentation is not None:
            self.instrumentation.uninstall()
        if self.cloud is not None:
            self.cloud.stop()

    @property
    def poll_seconds(self) -> float:
        return float(self.params["PollIntervalSeconds"])

    # ---------------------------------------------------------------- topology
    def api_service(self, desired: int = 2, grace: int | None = None) -> tuple[str, str, str]:
        """A Flask-style API behind an ALB, tracking `<repository>:main`, steady on its first
        image; `grace`: healthCheckGracePeriodSeconds. Returns (repository, cluster, service)."""
        aws = self.aws
        net = aws.network()
        repository = aws.repository(f"bench/api-{uuid.uuid4().hex[:6]}")
        group = aws.target_group(f"api-{uuid.uuid4().hex[:6]}", net, 5000, "/health")
        aws.load_balancer(net, {80: group})
        cluster = aws.cluster()
        with self.pushes_ignored():
            first = aws.push(repository, "main")
        definition = aws.task_definition(f"api-{uuid.uuid4().hex[:6]}", [("web", aws.pinned(repository, first), 5000)])
        aws.service(cluster, "api", definition, net, [(group, "web", 5000)], track=f"web={repository}:main",
                    desired=desired, grace=grace)
        self._remember_executions()
        return repository, cluster, "api"

    @contextlib.contextmanager
    def pushes_ignored(self) -> Iterator[None]:
        """Setup pushes must not start deckhand (its functions would be warm, its lock held, by
        the time the measured push comes): the stack's ECR push rule is disabled meanwhile."""
        rule = self.cloud.stack_outputs.get("EcrPushRule")
        events = self.aws.events
        if rule:
            events.disable_rule(Name=rule)
        try:
            yield
            self.cloud.wait_for_deliveries()
        finally:
            if rule:
                events.enable_rule(Name=rule)

    def fleet(self, count: int) -> tuple[str, str, list[str]]:
        """`count` services in one new cluster, each behind its own target group (one ALB,
        path rules), all tracking `<repository>:main`; returns once every one is steady."""
        aws = self.aws
        # Every task has an ENI, twice over while a rollout surges to 200 %: two /20 subnets
        # (4,091 addresses each) instead of two /24s, which run out at about 500 services.
        net = aws.network(subnet_prefix=20)
        repository = aws.repository(f"bench/fleet-{uuid.uuid4().hex[:6]}")
        cluster = aws.cluster()
        with self.pushes_ignored():
            first = aws.push(repository, "main")
        definition = aws.task_definition(f"fleet-{uuid.uuid4().hex[:6]}", [("app", aws.pinned(repository, first), 8080)])
        groups = [aws.target_group(f"fleet-{i}-{uuid.uuid4().hex[:4]}", net, 8080) for i in range(count)]
        # An ALB takes at most 100 target groups and 100 listener rules (Elastic Load Balancing
        # quotas, "Application Load Balancer"): one balancer per 100 services.
        for first in range(0, count, ALB_RULES_PER_BALANCER):
            share = groups[first:first + ALB_RULES_PER_BALANCER]
            balancer = aws.load_balancer(net, {80: share[0]})
            for i, group in enumerate(share[1:], start=1):
                aws.path_rule(balancer.listeners[80], [f"/svc{first + i}/*"], group, i)
        names = [f"svc-{i:03d}" for i in range(count)]
        for name, group in zip(names, groups):
            aws.ecs.create_service(
                cluster=cluster, serviceName=name, taskDefinition=definition, desiredCount=1, launchType="FARGATE",
                networkConfiguration={"awsvpcConfiguration": {"subnets": net.subnets,
                                                              "securityGroups": [net.security_group],
                                                              "assignPublicIp": "DISABLED"}},
                loadBalancers=[{"targetGroupArn": group, "containerName": "app", "containerPort": 8080}],
                deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200,
                                         "deploymentCircuitBreaker": {"enable": False, "rollback": False}},
                tags=[{"key": "deckhand:track", "value": f"app={repository}:main"}],
            )
        self.wait_steady(cluster, names, timeout=max(300.0, 2.0 * count))
        self._remember_executions()
        return repository, cluster, names

    def wait_steady(self, cluster: str, names: list[str], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} service(s) never became steady: {pending[:5]}")
            still = []
            for i in range(0, len(pending), 10):
                batch = pending[i:i + 10]
                for svc in self.aws.ecs.describe_services(cluster=cluster, services=batch)["services"]:
                    deployments = svc["deployments"]
                    steady = (len(deployments) == 1 and deployments[0].get("rolloutState") == "COMPLETED"
                              and svc["runningCount"] == svc["desiredCount"])
                    if not steady:
                        still.append(svc["serviceName"])
            pending = still
            if pending:
                time.sleep(0.5)

    # ---------------------------------------------------------------- one deployment
    def wait_idle(self, timeout: float = 300) -> None:
        """Until no execution of the state machine runs (so one deployment's calls are never
        counted in another's window)."""
        deadline = time.monotonic() + timeout
        while any(e["status"] == "RUNNING" for e in self._list_executions()):
            if time.monotonic() > deadline:
                raise TimeoutError("executions still running")
            time.sleep(0.2)

    def _remember_executions(self) -> None:
        self._known_executions |= {e["executionArn"] for e in self._list_executions()}

    def _list_executions(self) -> list[dict]:
        sfn, found, token = self.aws.sfn, [], None
        while True:
            page = sfn.list_executions(stateMachineArn=self.aws.state_machine, maxResults=1000,
                                       **({"nextToken": token} if token else {}))
            found += page["executions"]
            token = page.get("nextToken")
            if not token:
                return found

    def _execution_for(self, digest: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for summary in self._list_executions():
                arn = summary["executionArn"]
                if arn in self._known_executions:
                    continue
                self._known_executions.add(arn)
                described = self.aws.sfn.describe_execution(executionArn=arn)
                if digest in described.get("input", ""):
                    return arn
            time.sleep(0.1)
        raise TimeoutError(f"no execution started for the push of {digest}")

    def deploy(self, name: str, repository: str, cluster: str, service: str, health: str = "healthy",
               ready_seconds: float = 2, timeout: float = 600, on_push: Callable[[], None] | None = None) -> Deployment:
        """Push `repository:main` with the given simulated behaviour and follow the execution."""
        aws = self.aws
        self.wait_idle()
        before = time.time()
        digest = aws.push(repository, "main", health=health, ready_seconds=ready_seconds)
        pushed_at = time.time()
        if on_push:
            on_push()
        result = Deployment(name=name, pushed_at=pushed_at, digest=digest, binaries=self.binaries,
                            cluster=cluster, service=service, window_start=before)
        result.execution_arn = self._execution_for(digest)
        return self._follow(result, timeout)

    def start(self, name: str, request: dict[str, Any], cluster: str, service: str, timeout: float = 600) -> Deployment:
        """Start the deploy state machine with `request` (a manual request, a sweep) and follow it."""
        self.wait_idle()
        before = time.time()
        result = Deployment(name=name, pushed_at=before, digest="", binaries=self.binaries,
                            cluster=cluster, service=service, window_start=before)
        result.execution_arn = self.aws.start(request)
        return self._follow(result, timeout)

    def _follow(self, result: Deployment, timeout: float) -> Deployment:
        aws = self.aws
        described = aws.finish(result.execution_arn, timeout=timeout)
        result.status = described["status"]
        result.error = described.get("error")
        result.ended_at = _ts(described.get("stopDate")) or time.time()
        try:
            result.output = json.loads(described.get("output") or described.get("cause") or "null")
        except ValueError:
            result.output = described.get("output") or described.get("cause")
        result.histories = {result.execution_arn: aws.own_history(result.execution_arn)}
        for child in aws.service_executions(result.execution_arn):
            result.histories[child] = aws.own_history(child)
        result.history = [e for h in result.histories.values() for e in h]
        self._collect(result)
        if result.calls("rollback", "UpdateService"):
            self._find_signal(result)
        return result

    def _collect(self, result: Deployment) -> None:
        # Deployments run one after the other: everything deckhand's functions did between the
        # push and the end of the execution belongs to this one.
        # The window starts when the harness called PutImage (nothing ran then: wait_idle) and
        # ends a little after the execution's stopDate (the last response may be in flight).
        until = (result.ended_at or time.time()) + 0.5
        since = result.window_start
        api = self.instrumentation.api
        result.api_calls = api.calls(caller="function", since=since, until=until)
        result.cloud_calls = api.calls(caller="cloud", since=since, until=until)
        result.invocations = self.instrumentation.invocations.select(since=since, until=until)

    def _find_signal(self, result: Deployment) -> None:
        """The failure signal (see the module doc), from ECS data read after the fact."""
        deploys = [o for o in result.state_outputs("Register revision and update service") if isinstance(o, dict)]
        rollout = (deploys[0] or {}).get("rollout", {}) if deploys else {}
        deployment_id = rollout.get("deploymentId")
        plans = [o.get("plan") for o in result.state_outputs("Plan service") if isinstance(o, dict)]
        policy = {}
        if plans and isinstance(plans[0], dict) and plans[0].get("targets"):
            policy = plans[0]["targets"][0].get("policy", {})
        threshold = int(policy.get("maxFailedTasks", 2))
        ecs = self.aws.ecs
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            arns += ecs.list_tasks(cluster=result.cluster, serviceName=result.service, desiredStatus=desired)["taskArns"]
        tasks = []
        for i in range(0, len(arns), 100):
            tasks += ecs.describe_tasks(cluster=result.cluster, tasks=arns[i:i + 100])["tasks"]
        ours = [t for t in tasks if deployment_id is None or t.get("startedBy") == deployment_id]
        failed = sorted((t for t in ours if is_failed_stop(t)),
                        key=lambda t: _ts(t.get("stoppingAt") or t.get("stoppedAt")) or 0)
        if len(failed) >= threshold:
            task = failed[threshold - 1]
            result.signal_at = _ts(task.get("stoppingAt") or task.get("stoppedAt"))
            why = task.get("stopCode") or ""
            reason = (task.get("stoppedReason") or "").split(" in (target-group")[0]
            result.signal_what = f"failed task #{threshold} stopping ({why}: {reason})"
            return
        # Not reached: the circuit breaker's FAILED, if any.
        svc = ecs.describe_services(cluster=result.cluster, services=[result.service])["services"][0]
        for deployment in svc.get("deployments", []):
            if deployment.get("id") == deployment_id and deployment.get("rolloutState") == "FAILED":
                result.signal_at = _ts(deployment.get("updatedAt"))
                result.signal_what = "deployment FAILED by ECS"
                return
        result.signal_what = "no failure signal found in ECS data"

    # ---------------------------------------------------------------- handler times
    def handler_times(self, since: float | None = None, until: float | None = None) -> dict[str, dict[str, Any]]:
        """Per binary: warm handler times (ms), first-invocation-in-sandbox handler times, and
        the sandboxes' init (launcher + bootstrap, spawn to first GET /next) in the cloud."""
        out: dict[str, dict[str, Any]] = {}
        recorder = self.instrumentation.invocations
        for invocation in recorder.select(since=since, until=until):
            binary = self.binaries.get(invocation.function, invocation.function)
            entry = out.setdefault(binary, {"warm": [], "first": [], "init": []})
            if invocation.handler_ms is not None:
                entry["first" if invocation.first_in_sandbox else "warm"].append(invocation.handler_ms)
        for init in recorder.inits:
            if (since is not None and init.started < since) or (until is not None and init.started > until):
                continue
            binary = self.binaries.get(init.function, init.function)
            if init.init_ms is not None:
                out.setdefault(binary, {"warm": [], "first": [], "init": []})["init"].append(init.init_ms)
        return out
