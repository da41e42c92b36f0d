"""ECS service deployments and service revisions: the records, and the API that serves them.

"Amazon ECS creates a new service deployment automatically when any of the following actions
happen: A user creates a service. A user updates the service and uses the force new deployment
option. A user updates one or more service properties that require a deployment." ("View service
history using Amazon ECS service deployments",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html). Each
deployment targets a service revision ("Amazon ECS service revisions",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-revision.html): the task
definition, load balancers, network configuration and images it runs.

moto has none of this. Here every deployment the simulator starts gets a record:

* rolling updates (``ecs_sim``): PENDING is skipped; IN_PROGRESS; SUCCESSFUL when the rollout
  completes; a circuit-breaker failure with rollback is ROLLBACK_IN_PROGRESS then
  ROLLBACK_SUCCESSFUL (``rollback`` says why and to which revision), without rollback STOPPED; a
  deployment another UpdateService supersedes is STOPPED ("STOP_REQUESTED ... when ... A user
  starts a new service deployment", same page, Service deployment states);
* blue/green, linear and canary deployments (``ecs_native``) also report their lifecycleStage and
  lifecycleHookDetails.

Served (added to moto's ECS responses, shapes and field names from the ECS API Reference, which is
botocore's model): ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions,
StopServiceDeployment and ContinueServiceDeployment. DescribeServices shows
``currentServiceDeployment`` and ``currentServiceRevisions``. "Amazon ECS deletes the service
deployment when you delete a service" (same page): a deleted service's records go with it.

Identifiers: a service revision's ID is the number of the ECS deployment it belongs to (the
``ecs-svc/<19 digits>`` of DescribeServices' deployments; both are 19-digit numbers in AWS's
examples, whether ECS uses the same number is not documented); a service deployment's ID is 21
characters of ``[A-Za-z0-9_-]`` like AWS's examples (``EZe5RNVLH6PPzHXINuP28``).
"""

from __future__ import annotations

import base64
import logging
import secrets
import string
from datetime import datetime, timezone
from typing import Any, Callable

from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import ECSException, InvalidParameterException
from moto.core.responses import ActionResult

LOG = logging.getLogger("localcloud.ecs_service_deployments")

# ServiceDeployment.status - API Reference
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html).
PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, STOP_REQUESTED = (
    "PENDING", "IN_PROGRESS", "SUCCESSFUL", "STOPPED", "STOP_REQUESTED")
ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED = (
    "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
# "Ongoing: IN_PROGRESS, STOP_REQUESTED, ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS" and "Pending"
# (service-deployment.html, the three service deployment stages).
ONGOING = (PENDING, IN_PROGRESS, STOP_REQUESTED, ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS)
# ServiceDeploymentCircuitBreaker.status / ServiceDeploymentAlarms.status.
TRIGGERED, MONITORING, MONITORING_COMPLETE, DISABLED = "TRIGGERED", "MONITORING", "MONITORING_COMPLETE", "DISABLED"

# DescribeServiceDeployments / DescribeServiceRevisions: "You can specify a maximum of 20 ARNs."
MAX_DESCRIBE_ARNS = 20
# ListServiceDeployments.maxResults: "This value can be between 1 and 100. If this parameter isn't
# used, then ListServiceDeployments returns up to 20 results".
MAX_LIST_RESULTS, DEFAULT_LIST_RESULTS = 100, 20

_ID_ALPHABET = string.ascii_letters + string.digits + "_-"


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


def _compact(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


class ConflictException(ECSException):
    """StopServiceDeployment, Errors: "ConflictException: The request could not be processed because
    of conflict in the current state of the resource." (resourceIds names the resource)."""

    def __init__(self, message: str, resource_ids: list[str]) -> None:
        super().__init__("ConflictException", message)
        self.resource_ids = resource_ids


class ServiceDeploymentNotFoundException(ECSException):
    """StopServiceDeployment / ContinueServiceDeployment, Errors: "ServiceDeploymentNotFoundException:
    The service deploy ARN that you specified ... doesn't exist." (message: the local cloud's)."""

    def __init__(self, arn: str) -> None:
        super().__init__("ServiceDeploymentNotFoundException", f"Service deployment {arn} not found.")


# =============================================================================================
# Records
# =============================================================================================


class ServiceRevision:
    """What one ECS deployment (ecs_sim.Deployment) runs: ServiceRevision - API Reference
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceRevision.html)."""

    def __init__(self, state: Any, deployment: Any, now: float) -> None:
        number = deployment.id.split("/")[-1]
        self.arn = (
            f"arn:aws:ecs:{state.region}:{state.account}:service-revision/{state.cluster_name}/{state.name}/{number}"
        )
        self.state = state
        self.deployment = deployment
        self.created_at = now
        self.load_balancers = [dict(lb) for lb in state.moto_service.load_balancers or []]
        # resolvedConfiguration.loadBalancers: "the actual resources your service revision uses,
        # such as which target groups serve traffic" (set by ecs_native for a blue/green revision).
        self.resolved_load_balancers: list[dict[str, Any]] | None = None

    def describe(self) -> dict[str, Any]:
        d, svc = self.deployment, self.state.moto_service
        described = {
            "serviceRevisionArn": self.arn,
            "serviceArn": self.state.arn,
            "clusterArn": self.state.cluster_arn,
            "taskDefinition": d.task_definition_arn,
            "launchType": d.launch_type,
            "platformVersion": d.platform_version,
            "platformFamily": "Linux" if d.launch_type == "FARGATE" else None,
            "loadBalancers": self.load_balancers,
            "serviceRegistries": list(getattr(svc, "service_registries", None) or []),
            "networkConfiguration": d.network_configuration,
            "containerImages": [
                _compact({"containerName": p.container, "imageDigest": p.digest, "image": p.image})
                for p in d.container_images
            ],
            "guardDutyEnabled": False,
            "createdAt": _dt(self.created_at),
        }
        if self.resolved_load_balancers is not None:
            described["resolvedConfiguration"] = {"loadBalancers": self.resolved_load_balancers}
        return _compact(described)

    def counts(self) -> tuple[int, int]:
        """(running, pending) tasks of this revision that the scheduler still wants."""
        mine = [t for t in self.state.tasks if t.deployment is self.deployment and t.active]
        running = sum(1 for t in mine if t.last_status == "RUNNING")
        pending = sum(1 for t in mine if t.last_status in ("PROVISIONING", "PENDING", "ACTIVATING"))
        return running, pending


def new_service_deployment_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(21))


class ServiceDeploymentRecord:
    """ServiceDeployment - API Reference
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html)."""

    def __init__(
        self,
        state: Any,
        target: ServiceRevision,
        sources: list[ServiceRevision],
        configuration: dict[str, Any],
        now: float,
    ) -> None:
        self.id = new_service_deployment_id()
        self.arn = (
            f"arn:aws:ecs:{state.region}:{state.account}:service-deployment/{state.cluster_name}/{state.name}/{self.id}"
        )
        self.state = state
        self.target = target
        self.sources = list(sources)
        self.configuration = dict(configuration)
        self.created_at = now
        self.started_at: float | None = now
        self.finished_at: float | None = None
        self.stopped_at: float | None = None
        self.updated_at = now
        self.status = IN_PROGRESS
        self.status_reason: str | None = None
        self.lifecycle_stage: str | None = None
        self.hook_details: list[dict[str, Any]] = []
        self.rollback: dict[str, Any] | None = None
        self.breaker_status: str = DISABLED
        self.alarm_status: str = DISABLED
        self.triggered_alarms: list[str] = []
        # Requested weights of each revision (ServiceRevisionSummary.requestedTestTrafficWeight /
        # requestedProductionTrafficWeight), kept by ecs_native as it shifts traffic.
        self.test_weights: dict[str, float] = {}
        self.production_weights: dict[str, float] = {}
        # Tasks each revision should run (requestedTaskCount), kept by the controller.
        self.requested: dict[str, int] = {}
        self.native = False
        self.controller: Any = None  # the ecs_native flow carrying it out, if any
        breaker = configuration.get("deploymentCircuitBreaker") or {}
        if breaker.get("enable"):
            self.breaker_status = MONITORING
        alarms = configuration.get("alarms") or {}
        if alarms.get("enable") and alarms.get("alarmNames"):
            self.alarm_status = MONITORING

    @property
    def ongoing(self) -> bool:
        return self.status in ONGOING

    def set_status(self, status: str, now: float, reason: str | None = None) -> None:
        self.status = status
        if reason is not None:
            self.status_reason = reason
        self.updated_at = now
        if status in (SUCCESSFUL, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED):
            self.finished_at = now
        if status == STOPPED:
            self.stopped_at = now
            self.finished_at = now
        if not self.ongoing:
            if self.breaker_status == MONITORING:
                self.breaker_status = MONITORING_COMPLETE
            if self.alarm_status == MONITORING:
                self.alarm_status = MONITORING_COMPLETE

    def _summary(self, revision: ServiceRevision) -> dict[str, Any]:
        running, pending = revision.counts()
        summary: dict[str, Any] = {
            "arn": revision.arn,
            "requestedTaskCount": self.requested.get(revision.arn, self._default_requested(revision)),
            "runningTaskCount": running,
            "pendingTaskCount": pending,
        }
        if revision.arn in self.test_weights:
            summary["requestedTestTrafficWeight"] = float(self.test_weights[revision.arn])
        if revision.arn in self.production_weights:
            summary["requestedProductionTrafficWeight"] = float(self.production_weights[revision.arn])
        return summary

    def _default_requested(self, revision: ServiceRevision) -> int:
        d = revision.deployment
        if d.status == "PRIMARY":
            return int(d.desired_count)
        return sum(1 for t in self.state.tasks if t.deployment is d and t.active)

    def describe(self) -> dict[str, Any]:
        breaker = self.configuration.get("deploymentCircuitBreaker") or {}
        alarms = self.configuration.get("alarms") or {}
        described = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.state.arn,
            "clusterArn": self.state.cluster_arn,
            "createdAt": _dt(self.created_at),
            "startedAt": _dt(self.started_at),
            "finishedAt": _dt(self.finished_at),
            "stoppedAt": _dt(self.stopped_at),
            "updatedAt": _dt(self.updated_at),
            "sourceServiceRevisions": [self._summary(r) for r in self.sources],
            "targetServiceRevision": self._summary(self.target),
            "status": self.status,
            "statusReason": self.status_reason,
            "lifecycleStage": self.lifecycle_stage,
            "lifecycleHookDetails": [dict(h) for h in self.hook_details] if self.native else None,
            "deploymentConfiguration": self.configuration,
            "rollback": self.rollback,
            "deploymentCircuitBreaker": {
                "status": self.breaker_status,
                "failureCount": int(self.target.deployment.failed_tasks),
                "threshold": int(self.state.settings.failure_threshold(self.state.desired_count)),
            } if breaker.get("enable") else {"status": DISABLED, "failureCount": 0, "threshold": 0},
            "alarms": {
                "status": self.alarm_status,
                "alarmNames": list(alarms.get("alarmNames") or []),
                "triggeredAlarmNames": list(self.triggered_alarms),
            } if alarms.get("enable") else {"status": DISABLED, "alarmNames": [], "triggeredAlarmNames": []},
        }
        return _compact(described)

    def brief(self) -> dict[str, Any]:
        """ServiceDeploymentBrief - what ListServiceDeployments returns."""
        return _compact({
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.state.arn,
            "clusterArn": self.state.cluster_arn,
            "startedAt": _dt(self.started_at),
            "createdAt": _dt(self.created_at),
            "finishedAt": _dt(self.finished_at),
            "targetServiceRevisionArn": self.target.arn,
            "status": self.status,
            "statusReason": self.status_reason,
        })


# =============================================================================================
# The registry: every record of every simulated service
# =============================================================================================


class ServiceDeployments:
    """The simulator's service deployments and revisions (under the simulator's lock)."""

    def __init__(self, sim: Any) -> None:
        self._sim = sim
        self._revisions: dict[str, ServiceRevision] = {}
        self._deployments: dict[str, ServiceDeploymentRecord] = {}
        # While a native flow emits its own events, the rolling bookkeeping stays out of them.
        self.native_emitting = False

    # ----- records ------------------------------------------------------------------------------

    def revision(self, state: Any, deployment: Any, now: float) -> ServiceRevision:
        existing = getattr(deployment, "_service_revision", None)
        if existing is not None:
            return existing
        revision = ServiceRevision(state, deployment, now)
        deployment._service_revision = revision
        self._revisions[revision.arn] = revision
        return revision

    def create(
        self, state: Any, target: Any, sources: list[Any], now: float
    ) -> ServiceDeploymentRecord:
        """A new service deployment of `state` to ECS deployment `target`, from `sources`; every
        other ongoing one is stopped: "STOP_REQUESTED - ... when ... A user starts a new service
        deployment. The state moves to STOPPED." (service-deployment.html)."""
        for other in self.of_service(state):
            if other.ongoing:
                other.set_status(STOP_REQUESTED, now, "A new service deployment was started.")
                if other.controller is not None:
                    other.controller.superseded(now)
                other.set_status(STOPPED, now)
        record = ServiceDeploymentRecord(
            state,
            self.revision(state, target, now),
            [self.revision(state, s, now) for s in sources],
            state.settings.to_api(),
            now,
        )
        self._deployments[record.arn] = record
        state.service_deployment_records = [record, *getattr(state, "service_deployment_records", [])]
        return record

    def of_service(self, state: Any) -> list[ServiceDeploymentRecord]:
        """Newest first."""
        return list(getattr(state, "service_deployment_records", []))

    def find(self, arn: str) -> ServiceDeploymentRecord | None:
        record = self._deployments.get(arn)
        if record is None or not self._alive(record.state):
            return None
        return record

    def find_revision(self, arn: str) -> ServiceRevision | None:
        revision = self._revisions.get(arn)
        if revision is None or not self._alive(revision.state):
            return None
        return revision

    def _alive(self, state: Any) -> bool:
        return (
            not getattr(state, "deleting", False)
            and state.still_in_moto()
            and self._sim._services.get((state.account, state.region, state.key)) is state
        )

    def target_of(self, state: Any, deployment: Any) -> ServiceDeploymentRecord | None:
        for record in self.of_service(state):
            if record.target.deployment is deployment:
                return record
        return None

    # ----- DescribeServices ---------------------------------------------------------------------

    def publish(self, state: Any, svc: Any, now: float) -> None:
        """currentServiceDeployment and currentServiceRevisions on moto's Service object."""
        records = self.of_service(state)
        svc.current_service_deployment = records[0].arn if records and not state.deleting else None
        revisions = []
        for deployment in state.deployments:
            revision = self.revision(state, deployment, now)
            running, pending = revision.counts()
            requested = records[0].requested.get(revision.arn) if records else None
            if requested is None:
                requested = deployment.desired_count if deployment.status == "PRIMARY" else sum(
                    1 for t in state.tasks if t.deployment is deployment and t.active)
            revisions.append({
                "arn": revision.arn,
                "requestedTaskCount": int(requested),
                "runningTaskCount": running,
                "pendingTaskCount": pending,
            })
        svc.current_service_revisions = revisions

    # ----- rolling updates (ecs_sim's own deployments) ------------------------------------------

    def rolling_event(self, state: Any, deployment: Any, event_name: str, now: float) -> None:
        """Follows a rolling update through the deployment events ecs_sim emits (start, circuit
        breaker failure, rollback, completion); native flows keep their own records."""
        if self.native_emitting or getattr(state, "native", None) is not None and state.native.active:
            return
        record = self.target_of(state, deployment)
        if event_name == "SERVICE_DEPLOYMENT_IN_PROGRESS":
            rolling_back = next(
                (r for r in self.of_service(state) if r.ongoing and r.target.deployment is not deployment
                 and r.target.deployment.rollout_state == "FAILED"),
                None,
            )
            if rolling_back is not None:
                # "ROLLBACK_IN_PROGRESS - ... when the rollback option is in use for the failure
                # detection mechanism (the circuit breaker or alarm-based) and the service fails."
                rolling_back.set_status(ROLLBACK_IN_PROGRESS, now, deployment.rollout_reason)
                rolling_back.rollback = {
                    "reason": deployment.rollout_reason,
                    "startedAt": _dt(now),
                    "serviceRevisionArn": self.revision(state, deployment, now).arn,
                }
                return
            sources = [d for d in state.deployments if d is not deployment]
            self.create(state, deployment, sources, now)
        elif event_name == "SERVICE_DEPLOYMENT_FAILED" and record is not None and record.ongoing:
            record.breaker_status = TRIGGERED
            record.status_reason = deployment.rollout_reason
            record.updated_at = now
            if not (state.settings.breaker_rollback and state.last_completed not in (None, deployment)):
                # "STOP_REQUESTED ... when ... The rollback option is not in use for the failure
                # detection mechanism ... and the service does not reach the SUCCESSFUL state. The
                # state moves to STOPPED."
                record.set_status(STOP_REQUESTED, now)
                record.set_status(STOPPED, now)
        elif event_name == "SERVICE_DEPLOYMENT_COMPLETED":
            for other in self.of_service(state):
                if other.status in (ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS) and other.rollback and (
                    other.rollback.get("serviceRevisionArn") == self.revision(state, deployment, now).arn
                ):
                    other.set_status(ROLLBACK_SUCCESSFUL, now)
            if record is not None and record.ongoing:
                record.set_status(SUCCESSFUL, now, deployment.rollout_reason)

    def stop_rolling(self, record: ServiceDeploymentRecord, now: float) -> None:
        """StopServiceDeployment(ROLLBACK) of a rolling update: back to the last COMPLETED
        deployment, as the circuit breaker's rollback does."""
        state, failed = record.state, record.target.deployment
        target = state.last_completed
        record.set_status(ROLLBACK_REQUESTED, now, "Rollback requested by the user (StopServiceDeployment).")
        if target is None or target is failed:
            record.set_status(ROLLBACK_FAILED, now, "No completed service revision to roll back to.")
            return
        failed.rollout_state = "FAILED"
        failed.rollout_reason = "Service deployment stopped: rolling back."
        state._roll_back(failed, now)
        state.publish(now)


# =============================================================================================
# The API (methods added to moto's EC2ContainerServiceResponse)
# =============================================================================================


def _registry(response: Any) -> ServiceDeployments:
    from . import ecs_sim  # noqa: PLC0415 - ecs_sim installs this module

    sim = ecs_sim._ACTIVE
    if sim is None:
        raise InvalidParameterException("The local cloud's ECS simulator is not running.")
    return sim.service_deployments


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _check_arns(name: str, arns: Any) -> list[str]:
    if not isinstance(arns, list) or not arns:
        raise InvalidParameterException(f"{name} must list at least one ARN.")
    if len(arns) > MAX_DESCRIBE_ARNS:
        raise InvalidParameterException(f"{name} can have at most {MAX_DESCRIBE_ARNS} ARNs.")
    return [str(a) for a in arns]


def list_service_deployments(response: Any) -> ActionResult:
    """ListServiceDeployments - API Reference
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListServiceDeployments.html)."""
    registry = _registry(response)
    backend = response.ecs_backend
    cluster = response._get_param("cluster", "default")
    service_ref = str(response._get_param("service") or "")
    statuses = response._get_param("status") or []
    created = response._get_param("createdAt") or {}
    max_results = response._get_param("maxResults")
    if max_results is not None and not 1 <= int(max_results) <= MAX_LIST_RESULTS:
        raise InvalidParameterException(f"maxResults must be between 1 and {MAX_LIST_RESULTS}.")
    limit = int(max_results) if max_results is not None else DEFAULT_LIST_RESULTS
    service = backend._get_service(cluster, service_ref.split("/")[-1])  # Cluster/ServiceNotFound
    after, before = _timestamp(created.get("after")), _timestamp(created.get("before"))
    token = response._get_param("nextToken")
    try:
        offset = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameterException("The nextToken is not valid.") from None
    with registry._sim._lock:
        state = registry._sim.state_of(backend, service)
        records = registry.of_service(state) if state is not None and not state.deleting else []
        chosen = [
            r for r in records
            if (not statuses or r.status in statuses)
            # Compared to the millisecond: a timestamp read from a response comes back rounded.
            and (after is None or round(r.created_at, 3) >= round(after, 3))
            and (before is None or round(r.created_at, 3) <= round(before, 3))
        ]
        page = [r.brief() for r in chosen[offset: offset + limit]]
    result: dict[str, Any] = {"serviceDeployments": page}
    if offset + limit < len(chosen):
        result["nextToken"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
    return ActionResult(result)


def describe_service_deployments(response: Any) -> ActionResult:
    """DescribeServiceDeployments - API Reference
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceDeployments.html):
    unknown ARNs come back as failures with reason MISSING."""
    registry = _registry(response)
    return _describe(response, registry, "serviceDeploymentArns", "serviceDeployments", registry.find)


def describe_service_revisions(response: Any) -> ActionResult:
    """DescribeServiceRevisions - API Reference
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceRevisions.html)."""
    registry = _registry(response)
    return _describe(response, registry, "serviceRevisionArns", "serviceRevisions", registry.find_revision)


def _describe(response: Any, registry: Any, param: str, key: str, find: Callable[[str], Any]) -> ActionResult:
    """The Describe* answer shape: what was found, and a MISSING failure for each unknown ARN."""
    arns = _check_arns(param, response._get_param(param))
    found, failures = [], []
    with registry._sim._lock:
        for arn in arns:
            item = find(arn)
            if item is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(item.describe())
    return ActionResult({key: found, "failures": failures})


def stop_service_deployment(response: Any) -> ActionResult:
    """StopServiceDeployment - API Reference
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopServiceDeployment.html) and
    "Stopping Amazon ECS service deployments"
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stop-service-deployment.html):
    "You can stop a deployment that is in any of the following states": PENDING and IN_PROGRESS
    move to ROLLBACK_REQUESTED and the rollback starts; STOP_REQUESTED, ROLLBACK_REQUESTED and
    ROLLBACK_IN_PROGRESS carry on. A finished deployment cannot be stopped (ConflictException).
    stopType: "The valid values are ROLLBACK." (the model also lists ABORT, which the
    documentation does not admit: refused)."""
    registry = _registry(response)
    arn = str(response._get_param("serviceDeploymentArn") or "")
    stop_type = response._get_param("stopType") or "ROLLBACK"
    if stop_type != "ROLLBACK":
        raise InvalidParameterException(f"stopType {stop_type} is not supported; the valid value is ROLLBACK.")
    sim = registry._sim
    with sim._lock:
        record = registry.find(arn)
        if record is None:
            raise ServiceDeploymentNotFoundException(arn)
        if not record.ongoing:
            raise ConflictException(f"The service deployment is {record.status} and cannot be stopped.", [arn])
        now = sim.now()
        if record.status in (PENDING, IN_PROGRESS):
            if record.controller is not None:
                record.controller.request_rollback("Rollback requested by the user (StopServiceDeployment).", now)
            else:
                registry.stop_rolling(record, now)
            record.state.publish(now)
    sim._flush_events()
    return ActionResult({"serviceDeploymentArn": arn})


def continue_service_deployment(response: Any) -> ActionResult:
    """ContinueServiceDeployment - API Reference: "Continues or rolls back an Amazon ECS service
    deployment that is paused at a lifecycle hook" (action CONTINUE, the default, or ROLLBACK)."""
    registry = _registry(response)
    arn = str(response._get_param("serviceDeploymentArn") or "")
    hook_id = str(response._get_param("hookId") or "")
    action = response._get_param("action") or "CONTINUE"
    if action not in ("CONTINUE", "ROLLBACK"):
        raise InvalidParameterException(f"action must be CONTINUE or ROLLBACK; got {action}.")
    sim = registry._sim
    with sim._lock:
        record = registry.find(arn)
        if record is None:
            raise ServiceDeploymentNotFoundException(arn)
        if record.controller is None or not record.controller.resolve_pause(hook_id, action, sim.now()):
            raise InvalidParameterException(f"No paused lifecycle hook {hook_id} in service deployment {arn}.")
        record.state.publish(sim.now())
    return ActionResult({"serviceDeploymentArn": arn})


OPERATIONS: dict[str, Callable[[Any], ActionResult]] = {
    "list_service_deployments": list_service_deployments,
    "describe_service_deployments": describe_service_deployments,
    "describe_service_revisions": describe_service_revisions,
    "stop_service_deployment": stop_service_deployment,
    "continue_service_deployment": continue_service_deployment,
}


def added_operations() -> list[tuple[type, str, Callable[..., Any]]]:
    responses = ecs_responses.EC2ContainerServiceResponse
    return [(responses, name, function) for name, function in OPERATIONS.items()]
