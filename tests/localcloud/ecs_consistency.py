"""Eventual consistency of ECS reads, for the ECS rollout simulator (``ecs_sim``).

RunTask - Amazon ECS API Reference
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html): "The Amazon ECS
API follows an eventual consistency model. This is because of the distributed nature of the
system supporting the API. This means that the result of an API command you run that affects
your Amazon ECS resources might not be immediately visible to all subsequent commands you run."

So in the local cloud the ECS reads deckhand makes, DescribeServices, DescribeTasks, ListTasks
and DescribeTaskDefinition, answer with the state of ``lagSeconds`` ago, while the writes
(CreateService, UpdateService, StopTask, DeregisterTaskDefinition) answer with the new state at
once, as ECS does. ``GET|POST|DELETE /_localcloud/ecs/consistency {"lagSeconds": N}`` shows,
sets, or restores the default (``DEFAULT_LAG_SECONDS``).

How a lagged read is made: every time the simulator publishes a service (each tick and after
every write, ``ServiceState.publish``), the described state of the service and of each of its
tasks is kept, time-stamped, when it changed. A read returns the newest snapshot at least
``lagSeconds`` old. The lag is fixed, not random per read: a read is then exactly as stale as the
setting says (the worst case the setting allows, every time), tests can tell when a change must
become visible, and a run is reproducible; random per-read lags would add non-monotonic reads
(a newer state, then an older one), which this model does not produce.

A resource younger than the lag is shown as it was created (its oldest snapshot), not hidden:
AWS may answer MISSING for a service or task just created, but deckhand never reads a service or
task it has just created (services are the user's, tasks ECS's), so hiding them would only test
the test fixtures; what deckhand does read right after its own write, the deployment its
UpdateService started, *is* hidden for the lag (the service's snapshot from before the update).
Services the simulator does not run (CODE_DEPLOY/EXTERNAL controllers, DAEMON) and moto's own
RunTask tasks are answered as they are. DescribeTaskDefinition of a revision deregistered less
than the lag ago still shows it ACTIVE.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from types import SimpleNamespace
from typing import Any, Callable

from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses

# The lag every local cloud starts with, so that every test meets stale reads: one second is
# short next to AWS's (which the documentation leaves open: "a couple of seconds" to minutes in
# its advice to back off), yet longer than the simulator's tick and most of its task transitions,
# so a read right after UpdateService shows the previous deployment. Tests and the demo change it
# through the route; tests/e2e/test_consistency.py runs deckhand under 5 s.
DEFAULT_LAG_SECONDS = 1.0
MAX_LAG_SECONDS = 300.0  # beyond this a test would only wait; refused
# Snapshots are kept this long at least (longer when the lag is), so that a lag raised at run
# time, up to this, applies in full at once (a test raising it to 5 s before a push).
RETAIN_SECONDS = 10.0

# Attribute names on the simulator's objects where the history is kept (it goes with them).
_SERVICE_HISTORY = "_consistency_history"
_TASK_HISTORY = "_consistency_history"
_TASK_KEY = "_consistency_key"

# What publish() writes onto moto's Service and DescribeServices shows of it.
_SERVICE_FIELDS = (
    "status",
    "task_definition",
    "desired_count",
    "running_count",
    "pending_count",
    "deployments",
    "deployment_configuration",
    "health_check_grace_period_seconds",
    "events",
    "network_configuration",
    "load_balancers",
    "launch_type",
    "platform_version",
    "current_service_deployment",  # ecs_service_deployments.ServiceDeployments.publish
    "current_service_revisions",
)


def _parse_lag(body: dict[str, Any]) -> float:
    unknown = sorted(set(body) - {"lagSeconds"})
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; only lagSeconds")
    if "lagSeconds" not in body:
        raise ValueError("'lagSeconds' is required")
    lag = body["lagSeconds"]
    if isinstance(lag, bool) or not isinstance(lag, (int, float)):
        raise ValueError("'lagSeconds' must be a number of seconds")
    if not 0 <= lag <= MAX_LAG_SECONDS:
        raise ValueError(f"'lagSeconds' must be between 0 and {MAX_LAG_SECONDS:g}")
    return float(lag)


def _as_of(history: deque | None, cutoff: float) -> Any:
    """The newest snapshot taken at or before `cutoff`, or the oldest kept when all are newer."""
    if not history:
        return None
    chosen = history[0][1]
    for at, snapshot in history:
        if at > cutoff:
            break
        chosen = snapshot
    return chosen


def _prune(history: deque, cutoff: float) -> None:
    """Drops snapshots no read can return any more: all but the newest at or before `cutoff`."""
    while len(history) >= 2 and history[1][0] <= cutoff:
        history.popleft()


class ReadConsistency:
    """The lag setting and the lagged views of the simulator's services, tasks and task
    definitions. Installed by ``ecs_sim.install``; its patches are undone with the simulator's."""

    def __init__(self, sim: Any) -> None:
        self._sim = sim
        self._lock = threading.Lock()
        self.lag_seconds = DEFAULT_LAG_SECONDS
        self._deregistered: dict[str, float] = {}  # task definition ARN → when

    # ----- the control route ------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {"lagSeconds": self.lag_seconds, "default": DEFAULT_LAG_SECONDS}

    def control(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        """``/_localcloud/ecs/consistency``: GET shows, POST sets, DELETE restores the default."""
        if method == "GET":
            return 200, self.describe()
        if method == "POST":
            lag = _parse_lag(body if isinstance(body, dict) else {})
            with self._sim._lock:
                self.lag_seconds = lag
            return 200, self.describe()
        if method == "DELETE":
            with self._sim._lock:
                self.lag_seconds = DEFAULT_LAG_SECONDS
            return 200, self.describe()
        return 405, {"error": f"{method} not allowed"}

    # ----- recording (under the simulator's lock) ---------------------------------------------

    def record(self, state: Any, now: float) -> None:
        """After ServiceState.publish: the service's and its tasks' described state at `now`."""
        svc = state.moto_service
        snapshot = {name: copy.copy(getattr(svc, name, None)) for name in _SERVICE_FIELDS}
        history = getattr(state, _SERVICE_HISTORY, None)
        if history is None:
            history = deque()
            setattr(state, _SERVICE_HISTORY, history)
        if history:
            last = history[-1][1]
            for name in ("deployments", "events"):  # shared while unchanged: 1,000 services' worth
                if last[name] == snapshot[name]:
                    snapshot[name] = last[name]
        if not history or history[-1][1] != snapshot:
            history.append((now, snapshot))
        cutoff = now - max(self.lag_seconds, RETAIN_SECONDS)
        _prune(history, cutoff)
        for task in state.tasks:
            key = (
                task.last_status,
                task.desired_status,
                task.version,
                task.container_health(now),
                tuple((c.last_status, c.exit_code) for c in task.containers),
            )
            task_history = getattr(task, _TASK_HISTORY, None)
            if task_history is None:
                task_history = deque()
                setattr(task, _TASK_HISTORY, task_history)
            if getattr(task, _TASK_KEY, None) != key:
                setattr(task, _TASK_KEY, key)
                task_history.append((now, task.describe(now)))
            _prune(task_history, cutoff)

    # ----- reads (under the simulator's lock) -------------------------------------------------

    def _cutoff(self) -> float | None:
        return None if self.lag_seconds <= 0 else self._sim.now() - self.lag_seconds

    def service_view(self, backend: Any, service: Any) -> Any:
        """The moto Service as DescribeServices should show it now."""
        cutoff = self._cutoff()
        state = self._sim.state_of(backend, service)
        if cutoff is None or state is None:
            return service
        snapshot = _as_of(getattr(state, _SERVICE_HISTORY, None), cutoff)
        if snapshot is None:
            return service
        view = copy.copy(service)
        for name, value in snapshot.items():
            setattr(view, name, value)
        return view

    def task_view(self, task: Any) -> dict[str, Any]:
        cutoff = self._cutoff()
        snapshot = None if cutoff is None else _as_of(getattr(task, _TASK_HISTORY, None), cutoff)
        return snapshot if snapshot is not None else task.describe(self._sim.now())

    def task_definition_view(self, task_definition: Any) -> Any:
        cutoff = self._cutoff()
        when = self._deregistered.get(getattr(task_definition, "arn", ""))
        if cutoff is None or when is None or when <= cutoff:
            return task_definition
        view = copy.copy(task_definition)
        view.status = "ACTIVE"
        return view

    # ----- moto patches -----------------------------------------------------------------------

    def patches(self) -> list[tuple[type, str, Callable[[Any], Callable[..., Any]]]]:
        """(owner, name, make-wrapper) for ``_MotoPatches._wrap``, applied after the
        simulator's own patches so that they wrap them."""
        from . import ecs_sim

        return [
            (ecs_sim.ServiceState, "publish", self._publish),
            (ecs_models.EC2ContainerServiceBackend, "describe_services", self._describe_services),
            (ecs_models.EC2ContainerServiceBackend, "describe_tasks", self._describe_tasks),
            (ecs_models.EC2ContainerServiceBackend, "list_tasks", self._list_tasks),
            (ecs_models.EC2ContainerServiceBackend, "deregister_task_definition", self._deregister),
            (ecs_responses.EC2ContainerServiceResponse, "describe_task_definition", self._describe_td_response),
            (ecs_responses.EC2ContainerServiceResponse, "create_service", self._create_service_response),
        ]

    def _publish(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def publish(state: Any, now: float) -> None:
            original(state, now)
            self.record(state, now)

        return publish

    def _create_service_response(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def create_service(response: Any) -> Any:
            result = original(response)
            # One write: the service appears with everything CreateService set (ecs_sim applies
            # its deployment configuration and grace period in a second step), never half made.
            with sim._lock:
                state = sim.state_of(response.ecs_backend, result.result["service"])
                history = getattr(state, _SERVICE_HISTORY, None) if state is not None else None
                if history:
                    newest = history[-1][1]
                    history.clear()
                    history.append((state.created_at, newest))
            return result

        return create_service

    def _describe_services(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def describe_services(backend: Any, cluster_str: str, names: list[str]) -> Any:
            with sim._lock:
                services, failures = original(backend, cluster_str, names)
                return [self.service_view(backend, s) for s in services], failures

        return describe_services

    def _describe_tasks(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def describe_tasks(backend: Any, cluster_str: str, tasks: list[str]) -> list[Any]:
            with sim._lock:
                found = list(original(backend, cluster_str, tasks))
                if self._cutoff() is None:
                    return found
                cluster = backend._get_cluster(cluster_str)
                lagged = []
                for item in found:
                    if isinstance(item, dict):  # a simulated task, described by ecs_sim
                        task = sim.find_task(backend, cluster.name, item["taskArn"])
                        item = self.task_view(task) if task is not None else item
                    lagged.append(item)
                return lagged

        return describe_tasks

    def _list_tasks(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def list_tasks(
            backend: Any,
            cluster_str: str | None = None,
            container_instance: str | None = None,
            family: str | None = None,
            started_by: str | None = None,
            service_name: str | None = None,
            desiredStatus: str | None = None,
        ) -> list[Any]:
            with sim._lock:
                found = original(
                    backend, cluster_str, container_instance, family, started_by, service_name, desiredStatus
                )
                if self._cutoff() is None or container_instance:
                    return found
                # ecs_sim's answer, with its simulated tasks filtered on their state of the lag
                # ago instead of now (a task stopped a moment ago is still listed as RUNNING).
                cluster = backend._get_cluster(cluster_str or "default")
                simulated = {t.arn: t for t in sim.tasks_in(backend, cluster.name)}
                wanted_status = desiredStatus or "RUNNING"
                wanted_service = service_name.split("/")[-1] if service_name else None
                lagged = [item for item in found if item.task_arn not in simulated]
                for task in simulated.values():
                    view = self.task_view(task)
                    if view.get("desiredStatus") != wanted_status:
                        continue
                    if wanted_service and task.service.name != wanted_service:
                        continue
                    if started_by and view.get("startedBy") != started_by:
                        continue
                    if family and task.family != family.split("/")[-1].split(":")[0]:
                        continue
                    lagged.append(SimpleNamespace(task_arn=task.arn))
                return lagged

        return list_tasks

    def _deregister(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def deregister_task_definition(backend: Any, task_definition_str: str) -> Any:
            with sim._lock:
                task_definition = original(backend, task_definition_str)
                self._deregistered.setdefault(task_definition.arn, sim.now())
                return task_definition  # the write's own answer: INACTIVE at once

        return deregister_task_definition

    def _describe_td_response(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def describe_task_definition(response: Any) -> Any:
            result = original(response)
            with sim._lock:
                result.result["taskDefinition"] = self.task_definition_view(result.result["taskDefinition"])
            return result

        return describe_task_definition


def install(sim: Any) -> ReadConsistency:
    """Lagged ECS reads for `sim` (after its own patches); undone by ``sim.stop()``."""
    consistency = ReadConsistency(sim)
    for owner, name, make in consistency.patches():
        sim._patches._wrap(owner, name, make)
    return consistency
