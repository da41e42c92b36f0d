"""ECS rollout simulator for the local cloud.

moto keeps ECS services as records: a service gets one deployment that never
moves, UpdateService changes neither deployments nor tasks, no task is ever
launched for a service, and ELBv2 reports every registered target `healthy`.
deckhand watches rollouts on ECS *and* on the load balancer, so the local cloud
needs both to behave like AWS. `install()` patches moto in-process so that,
through the ordinary AWS API served by moto:

* CreateService and UpdateService (new task definition, forceNewDeployment, a
  changed network or load-balancer configuration) start a rolling-update
  deployment: PRIMARY/ACTIVE deployments with rolloutState, counts, failedTasks;
* the simulator launches and stops the service's tasks itself (its own task
  records, served by ListTasks/DescribeTasks/StopTask next to moto's own tasks):
  PROVISIONING → PENDING → ACTIVATING → RUNNING → DEACTIVATING → STOPPING →
  DEPROVISIONING → STOPPED, with an awsvpc ENI and IP from the service's subnets;
* RUNNING tasks are registered (through moto's ELBv2 backend) in every target
  group of the service; DescribeTargetHealth reports `initial`, then `healthy`
  or `unhealthy`, and `draining` while a stopping task is deregistered;
* the scheduler honours minimumHealthyPercent/maximumPercent,
  healthCheckGracePeriodSeconds, replaces tasks that crash or fail their
  health checks, and the deployment circuit breaker fails (and optionally rolls
  back) a deployment the way ECS does;
* `ECS Deployment State Change` and `ECS Task State Change` events are handed to
  the caller's `emit_event` as PutEvents entries;
* every deployment is also a service deployment (ListServiceDeployments,
  DescribeServiceDeployments, DescribeServiceRevisions, StopServiceDeployment:
  ``ecs_service_deployments``), and a service whose deploymentConfiguration.strategy is
  BLUE_GREEN, LINEAR or CANARY is deployed by ``ecs_native`` instead of the rolling
  scheduler below: lifecycle stages, lifecycle hooks (Lambda functions run through the
  caller's `invoke_function`, pause hooks), production and test listener rules rewritten
  with weighted forward actions, target groups alternating, rollbacks.

What a task does comes from its images: the OCI manifest pushed to moto's ECR
carries `deckhand.sim/health` (healthy | unhealthy | crash),
`deckhand.sim/ready-seconds` and `deckhand.sim/stop-exit-code` (what the process
exits with when the task is stopped: 143 by default, 137 for one that ignores
SIGTERM, 0 for a graceful one); tests may override them with
`Simulator.set_image_behaviour`. Bridge/host-mode tasks get no ENI: they run on
the cluster's container instances (scaling out with a new EC2 instance, registered with the
cluster, when none is free) with host ports, and are
registered as instance targets. `Simulator.interrupt_spot_task` stops a task as
a Fargate Spot interruption does (stop code SpotInterruption). An ECR image that is not in the repository
cannot be pulled (the task stops with CannotPullContainerError); images from
other registries behave healthy.

Timings are module constants (seconds of the `clock` given to `install`), read
each time they are used, so a test may change them.

Refused as ECS refuses them (``ecs_rules``, installed with these patches): tags
that break ECS's tag rules; UpdateService changing the task definition (or
network, platform version, load balancers, forceNewDeployment) of a service whose
deployment controller is CODE_DEPLOY or EXTERNAL, or updating a deleted service;
deploying or running a deregistered (INACTIVE) task definition; and
(``ecs_native_rules``) blue/green, linear and canary configurations ECS refuses.

Not simulated: the CodeDeploy blue/green (CODE_DEPLOY) and EXTERNAL deployment
controllers and DAEMON services (left to moto; moto keeps CreateService's
deploymentController and gives such services no deployment), capacity and placement
(every task fits; an EC2 cluster scales out instead of leaving a task unplaced), ECS's launch
throttling of crash-looping services, Classic Load Balancers, Cloud Map, CloudWatch-alarm
rollbacks of rolling updates (native deployments watch their alarms: ``ecs_native``),
cluster task counts, and ListTasks' launchType filter.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import math
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Callable, Iterable

from moto.ec2 import ec2_backends
from moto.ecr.models import ecr_backends
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.elbv2 import models as elbv2_models

from . import ecs_consistency, ecs_native, ecs_rules

LOG = logging.getLogger("localcloud.ecs_sim")

# --------------------------------------------------------------------------------------------
# Timings. Real ECS takes tens of seconds to minutes for each of these; the local cloud keeps
# them short so that a whole rollout fits in a few seconds, but keeps their order and effects.
# --------------------------------------------------------------------------------------------
TICK_SECONDS = 0.2  # how often the background thread advances every rollout
PROVISIONING_SECONDS = 0.2  # ENI attachment (PROVISIONING → PENDING)
PENDING_SECONDS = 0.2  # image pull (PENDING → ACTIVATING)
ACTIVATING_SECONDS = 0.1  # container start (ACTIVATING → RUNNING): ~0.5 s from launch to RUNNING
CRASH_AFTER_SECONDS = 1.0  # a `crash` image's essential container exits this long after RUNNING
DEFAULT_READY_SECONDS = 2.0  # `deckhand.sim/ready-seconds` when the manifest does not say
# A newly registered target is `initial` while the load balancer runs its first health checks:
# reason Elb.RegistrationInProgress for ELB_REGISTRATION_SECONDS, then Elb.InitialHealthChecking.
# The first verdict comes when the application is ready or, at the latest, after
# ELB_FIRST_VERDICT_SECONDS; an application that is slower than that shows `unhealthy` until it
# becomes ready, which is exactly what healthCheckGracePeriodSeconds protects against.
ELB_REGISTRATION_SECONDS = 0.5
ELB_FIRST_VERDICT_SECONDS = 2.0
# Draining lasts the target group's deregistration_delay.timeout_seconds (AWS default 300 s)
# multiplied by this scale: 300 s → 1 s, 0 s → no draining.
DEREGISTRATION_DELAY_SCALE = 1.0 / 300.0
STOPPING_SECONDS = 0.2  # SIGTERM to exit (STOPPING → DEPROVISIONING)
DEPROVISIONING_SECONDS = 0.1  # ENI detachment (DEPROVISIONING → STOPPED)
STOPPED_TASK_RETENTION_SECONDS = 3600.0  # ECS keeps stopped tasks describable for about an hour
SERVICE_EVENTS_KEPT = 100  # DescribeServices shows the newest 100 service events

HEALTHY, UNHEALTHY, CRASH = "healthy", "unhealthy", "crash"
HEALTH_ANNOTATION = "deckhand.sim/health"
READY_ANNOTATION = "deckhand.sim/ready-seconds"
STOP_EXIT_ANNOTATION = "deckhand.sim/stop-exit-code"
# What a container's process exits with when its task is stopped. StopTask - Amazon ECS API
# Reference (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html): "the
# equivalent of docker stop is issued to the containers running in the task. This results in a
# SIGTERM value and a default 30-second timeout, after which the SIGKILL value is sent and the
# containers are forcibly stopped." The code is the application's: 143 (128 + SIGTERM) for a
# process that SIGTERM ends, 137 (128 + SIGKILL) for one that ignores it until stopTimeout, 0 for
# one that shuts down gracefully. Default 143, so scale-in and replaced tasks stop non-zero.
SIGTERM_EXIT_CODE = 143
SIGKILL_EXIT_CODE = 137

# Rollout states and the reasons ECS gives for them.
IN_PROGRESS, COMPLETED, FAILED = "IN_PROGRESS", "COMPLETED", "FAILED"
PRIMARY, ACTIVE = "PRIMARY", "ACTIVE"
CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: task failed to start."

# Task states.
PROVISIONING, PENDING, ACTIVATING, RUNNING = "PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"
DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED = (
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
)
STARTING_STATES = (PROVISIONING, PENDING, ACTIVATING)

# Stop codes, as ECS reports them.
TASK_FAILED_TO_START = "TaskFailedToStart"
ESSENTIAL_CONTAINER_EXITED = "EssentialContainerExited"
SERVICE_SCHEDULER_INITIATED = "ServiceSchedulerInitiated"
USER_INITIATED = "UserInitiated"
SPOT_INTERRUPTION = "SpotInterruption"
# "How do I handle Spot termination notices in AWS Fargate Spot tasks?" (AWS Knowledge Center,
# https://repost.aws/knowledge-center/fargate-spot-termination-notice): the task state change
# event of an interrupted Fargate Spot task carries this stoppedReason and stopCode SpotInterruption.
SPOT_INTERRUPTION_REASON = "Your Spot Task was interrupted."

# Verdicts of a health probe (load balancer or container health check).
PROBE_INITIAL, PROBE_HEALTHY, PROBE_UNHEALTHY = "initial", "healthy", "unhealthy"


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _iso_seconds(ts: float) -> str:
    return _dt(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_millis(ts: float) -> str:
    moment = _dt(ts)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _json_ready(value: Any) -> Any:
    """A DescribeTasks-shaped value with datetimes as EventBridge renders them."""
    if isinstance(value, datetime):
        return _iso_millis(value.timestamp())
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def _new_deployment_id() -> str:
    # Real ids are "ecs-svc/" followed by 19 digits.
    return f"ecs-svc/{random.randint(10**18, 10**19 - 1)}"


# ============================================================================================
# Images: which behaviour a container gets
# ============================================================================================

_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*?)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-fA-F]{64}))?$"
)


@dataclass(frozen=True)
class EcrImageRef:
    account: str
    region: str
    repository: str
    tag: str | None
    digest: str | None


def parse_ecr_image(image: str) -> EcrImageRef | None:
    """`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG][@sha256:…]`, or None for other registries."""
    match = _ECR_IMAGE.match(image.strip())
    if not match:
        return None
    return EcrImageRef(
        account=match["account"],
        region=match["region"],
        repository=match["repository"],
        tag=match["tag"],
        digest=match["digest"].lower() if match["digest"] else None,
    )


@dataclass(frozen=True)
class ImageBehaviour:
    health: str
    ready_seconds: float
    stop_exit_code: int = SIGTERM_EXIT_CODE


@dataclass(frozen=True)
class PinnedImage:
    """A container image as a deployment pinned it. ECS resolves a tag to a digest once, when
    the deployment starts, so every task of a deployment runs the same image."""

    container: str
    image: str
    essential: bool
    digest: str | None
    pull_error: str | None  # set when the image cannot be pulled


class ImageCatalog:
    """Looks images up in moto's ECR and applies the overrides set by tests."""

    def __init__(self) -> None:
        self._overrides: dict[str, dict[str, Any]] = {}

    def set_override(
        self,
        image_ref: str,
        health: str | None,
        ready_seconds: float | None,
        stop_exit_code: int | None = None,
    ) -> None:
        if health is not None and health not in (HEALTHY, UNHEALTHY, CRASH):
            raise ValueError(f"health must be one of healthy, unhealthy, crash; got {health!r}")
        if ready_seconds is not None and ready_seconds < 0:
            raise ValueError("ready_seconds must not be negative")
        override = self._overrides.setdefault(image_ref.strip(), {})
        if health is not None:
            override["health"] = health
        if ready_seconds is not None:
            override["ready_seconds"] = float(ready_seconds)
        if stop_exit_code is not None:
            if not 0 <= int(stop_exit_code) <= 255:
                raise ValueError("stop_exit_code must be 0..255")
            override["stop_exit_code"] = int(stop_exit_code)

    def pin(self, container: str, image: str, essential: bool) -> PinnedImage:
        ref = parse_ecr_image(image)
        if ref is None:
            # Docker Hub, public ECR, …: not modelled, always pullable.
            return PinnedImage(container, image, essential, None, None)
        found = self._find_ecr_image(ref)
        if found is None:
            wanted = ref.digest or f"{ref.repository}:{ref.tag or 'latest'}"
            error = (
                f"CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                f"failed to resolve ref {image}: {wanted}: not found"
            )
            return PinnedImage(container, image, essential, ref.digest, error)
        return PinnedImage(container, image, essential, found.get_image_digest(), None)

    def behaviour(self, pinned: PinnedImage) -> ImageBehaviour:
        settings: dict[str, Any] = {
            "health": HEALTHY,
            "ready_seconds": DEFAULT_READY_SECONDS,
            "stop_exit_code": SIGTERM_EXIT_CODE,
        }
        ref = parse_ecr_image(pinned.image)
        if ref is not None and pinned.pull_error is None:
            image = self._find_ecr_image(
                EcrImageRef(ref.account, ref.region, ref.repository, None, pinned.digest)
            )
            if image is not None:
                settings.update(_annotations_behaviour(image.get_image_manifest(), pinned.image))
        # The more specific key wins: a full reference, then the digest.
        for key in (pinned.image.strip(), pinned.digest):
            if key and key in self._overrides:
                settings.update(self._overrides[key])
        return ImageBehaviour(settings["health"], settings["ready_seconds"], settings["stop_exit_code"])

    @staticmethod
    def _find_ecr_image(ref: EcrImageRef) -> Any:
        try:
            repository = ecr_backends[ref.account][ref.region].repositories.get(ref.repository)
        except Exception:  # unknown region/partition: nothing to find
            return None
        if repository is None:
            return None
        for image in reversed(repository.images):  # newest push first
            if ref.digest:
                if image.get_image_digest() == ref.digest:
                    return image
            elif (ref.tag or "latest") in image.image_tags:
                return image
        return None


def _annotations_behaviour(manifest_text: str, image: str) -> dict[str, Any]:
    try:
        annotations = json.loads(manifest_text).get("annotations") or {}
    except (ValueError, AttributeError):
        return {}
    found: dict[str, Any] = {}
    health = str(annotations.get(HEALTH_ANNOTATION, "")).strip().lower()
    if health in (HEALTHY, UNHEALTHY, CRASH):
        found["health"] = health
    elif health:
        LOG.warning("image %s: unknown %s=%r, treated as healthy", image, HEALTH_ANNOTATION, health)
    ready = annotations.get(READY_ANNOTATION)
    if ready is not None:
        try:
            found["ready_seconds"] = max(0.0, float(ready))
        except (TypeError, ValueError):
            LOG.warning("image %s: %s=%r is not a number", image, READY_ANNOTATION, ready)
    stop_exit = annotations.get(STOP_EXIT_ANNOTATION)
    if stop_exit is not None:
        try:
            found["stop_exit_code"] = min(255, max(0, int(stop_exit)))
        except (TypeError, ValueError):
            LOG.warning("image %s: %s=%r is not an integer", image, STOP_EXIT_ANNOTATION, stop_exit)
    return found


@dataclass(frozen=True)
class TaskBehaviour:
    """What one task will do, from the behaviours of its containers' images: healthy only if
    every essential container is, crash if any essential container crashes, ready when the
    slowest one is; a task whose image cannot be pulled never starts."""

    health: str
    ready_seconds: float
    pull_error: str | None = None

    @staticmethod
    def combine(containers: list[tuple[PinnedImage, ImageBehaviour]]) -> "TaskBehaviour":
        pull_errors = [p.pull_error for p, _ in containers if p.pull_error]
        essential = [b for p, b in containers if p.essential] or [b for _, b in containers]
        healths = {b.health for b in essential}
        health = CRASH if CRASH in healths else UNHEALTHY if UNHEALTHY in healths else HEALTHY
        ready = max((b.ready_seconds for b in essential), default=DEFAULT_READY_SECONDS)
        return TaskBehaviour(health, ready, pull_errors[0] if pull_errors else None)


def probe_verdict(behaviour: TaskBehaviour, age: float) -> str:
    """What a health probe (load balancer or container health check) says `age` seconds after
    the task started: `initial` until its first verdict, then healthy once the application is
    ready, unhealthy before that or forever for an unhealthy image. A crashing image never
    answers before it exits."""
    if behaviour.health == CRASH:
        return PROBE_INITIAL
    first_verdict = min(behaviour.ready_seconds, ELB_FIRST_VERDICT_SECONDS)
    if age < first_verdict:
        return PROBE_INITIAL
    if behaviour.health == HEALTHY and age >= behaviour.ready_seconds:
        return PROBE_HEALTHY
    return PROBE_UNHEALTHY


# ============================================================================================
# Deployment configuration and the circuit breaker's arithmetic
# ============================================================================================


@dataclass
class DeploymentSettings:
    """The service's deploymentConfiguration, kept by the simulator because moto drops it."""

    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    circuit_breaker: dict[str, Any] | None = None  # as given by the caller
    extra: dict[str, Any] = field(default_factory=dict)  # alarms, strategy, …: echoed back only

    def merge(self, given: dict[str, Any] | None) -> None:
        """UpdateService changes only the members it names."""
        if not given:
            return
        for key, value in given.items():
            if value is None:
                continue
            if key == "minimumHealthyPercent":
                self.minimum_healthy_percent = int(value)
            elif key == "maximumPercent":
                self.maximum_percent = int(value)
            elif key == "deploymentCircuitBreaker":
                self.circuit_breaker = dict(value)
            else:
                self.extra[key] = value

    def to_api(self) -> dict[str, Any]:
        breaker = {"enable": self.breaker_enabled, "rollback": self.breaker_rollback}
        if self.circuit_breaker:
            breaker.update({k: v for k, v in self.circuit_breaker.items() if v is not None})
        return {
            **self.extra,
            "deploymentCircuitBreaker": breaker,
            "maximumPercent": self.maximum_percent,
            "minimumHealthyPercent": self.minimum_healthy_percent,
        }

    @property
    def breaker_enabled(self) -> bool:
        return bool(self.circuit_breaker and self.circuit_breaker.get("enable"))

    @property
    def breaker_rollback(self) -> bool:
        return bool(self.circuit_breaker and self.circuit_breaker.get("rollback"))

    @property
    def breaker_resets_on_healthy_task(self) -> bool:
        value = (self.circuit_breaker or {}).get("resetOnHealthyTask")
        return True if value is None else bool(value)

    def min_healthy_tasks(self, desired: int) -> int:
        # ECS rounds minimumHealthyPercent up …
        return math.ceil(desired * self.minimum_healthy_percent / 100)

    def max_tasks(self, desired: int) -> int:
        # … and maximumPercent down.
        return math.floor(desired * self.maximum_percent / 100)

    def failure_threshold(self, desired: int) -> int:
        """Failed tasks that trip the breaker: 50 % of the desired count, rounded up, clamped to
        3..200 (BOUNDED_PERCENT, the default), or as thresholdConfiguration says."""
        config = (self.circuit_breaker or {}).get("thresholdConfiguration") or {}
        kind = config.get("type", "BOUNDED_PERCENT")
        value = config.get("value")
        if kind == "COUNT":
            return max(1, int(value if value is not None else 3))
        percent = float(value if value is not None else 50)
        threshold = math.ceil(desired * percent / 100)
        if kind == "UNBOUNDED_PERCENT":
            return max(1, threshold)
        return min(200, max(3, threshold))


# ============================================================================================
# Networking: an ENI and an IP address per awsvpc task
# ============================================================================================


@dataclass
class TaskNetwork:
    attachment_id: str
    subnet_id: str | None
    eni_id: str
    ip: str
    mac: str
    dns_name: str
    availability_zone: str | None
    eni_in_moto: bool


class NetworkAllocator:
    """Gives awsvpc tasks an address in one of the service's subnets (round robin, as ECS
    spreads tasks over them) and a real ENI in moto's EC2, so DescribeNetworkInterfaces agrees.
    An address is not handed out again while a task holds it."""

    def __init__(self) -> None:
        self._in_use: set[str] = set()
        self._cursor: dict[str, int] = {}
        self._fallback = ipaddress.ip_network("10.255.0.0/16")

    def attach(
        self, account: str, region: str, awsvpc: dict[str, Any], index: int
    ) -> TaskNetwork:
        subnets = list(awsvpc.get("subnets") or [])
        subnet_id = subnets[index % len(subnets)] if subnets else None
        ec2 = ec2_backends[account][region]
        subnet = None
        if subnet_id:
            try:
                subnet = ec2.get_subnet(subnet_id)
            except Exception:
                subnet = None
        network = ipaddress.ip_network(subnet.cidr_block) if subnet else self._fallback
        taken = self._in_use | {
            eni.private_ip_address for eni in list(ec2.enis.values()) if eni.private_ip_address
        }
        ip = self._next_free(str(network), network, taken)
        attachment_id = str(uuid.uuid4())
        eni_id, mac, eni_in_moto = f"eni-{uuid.uuid4().hex[:17]}", _random_mac(), False
        if subnet is not None:
            try:
                eni = ec2.create_network_interface(
                    subnet=subnet_id,
                    private_ip_address=ip,
                    group_ids=list(awsvpc.get("securityGroups") or []),
                    description=f"arn:aws:ecs:{region}:{account}:attachment/{attachment_id}",
                )
                eni.status = "in-use"
                eni.requester_managed = True
                eni_id, mac, eni_in_moto = eni.id, eni.mac_address, True
            except Exception:  # moto refused: keep a made-up ENI, the task still runs
                LOG.debug("could not create an ENI in %s", subnet_id, exc_info=True)
        self._in_use.add(ip)
        dns_suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
        return TaskNetwork(
            attachment_id=attachment_id,
            subnet_id=subnet_id,
            eni_id=eni_id,
            ip=ip,
            mac=mac,
            dns_name=f"ip-{ip.replace('.', '-')}.{dns_suffix}",
            availability_zone=getattr(subnet, "availability_zone", None),
            eni_in_moto=eni_in_moto,
        )

    def release(self, account: str, region: str, net: TaskNetwork) -> None:
        self._in_use.discard(net.ip)
        if net.eni_in_moto:
            try:
                ec2_backends[account][region].delete_network_interface(net.eni_id)
            except Exception:
                pass

    def forget(self, net: TaskNetwork) -> None:
        """Frees the address only: moto's EC2 state is gone already."""
        self._in_use.discard(net.ip)

    def _next_free(self, key: str, network: Any, taken: set[str]) -> str:
        # AWS reserves the first four addresses and the last one of every subnet. Walk on from
        # the last address handed out so that a stopped task's address is not reused at once.
        first, last = 4, network.num_addresses - 2
        size = max(1, last - first + 1)
        start = self._cursor.get(key, 0)
        for step in range(size):
            offset = first + (start + step) % size
            candidate = str(network.network_address + offset)
            if candidate not in taken:
                self._cursor[key] = (start + step + 1) % size
                return candidate
        raise RuntimeError(f"no free address left in {network}")


def _random_mac() -> str:
    return "0e:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(5))


# ============================================================================================
# Tasks
# ============================================================================================


@dataclass
class SimContainer:
    name: str
    image: str
    digest: str | None
    essential: bool
    crashes: bool
    has_health_check: bool
    cpu: str | None
    memory: str | None
    container_arn: str
    runtime_id: str
    stop_exit_code: int = SIGTERM_EXIT_CODE  # what the process exits with when stopped
    last_status: str = PENDING
    exit_code: int | None = None
    reason: str | None = None


class SimTask:
    """One task launched by the service scheduler: its state and how DescribeTasks shows it."""

    def __init__(
        self,
        *,
        service: "ServiceState",
        deployment: "Deployment",
        behaviour: TaskBehaviour,
        network: TaskNetwork | None,
        now: float,
        host: "TaskHost | None" = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.host = host  # bridge/host network modes: the instance and host ports
        self.service = service
        self.deployment = deployment
        self.behaviour = behaviour
        self.network = network
        self.arn = (
            f"arn:aws:ecs:{service.region}:{service.account}:task/{service.cluster_name}/{self.id}"
        )
        self.task_definition_arn = deployment.task_definition_arn
        self.family = deployment.family
        self.launch_type = deployment.launch_type
        self.cpu = deployment.cpu
        self.memory = deployment.memory
        self.containers = [
            SimContainer(
                name=pinned.container,
                image=pinned.image,
                digest=pinned.digest,
                essential=pinned.essential,
                crashes=image_behaviour.health == CRASH,
                has_health_check=pinned.container in deployment.health_checked_containers,
                cpu=deployment.container_cpu.get(pinned.container),
                memory=deployment.container_memory.get(pinned.container),
                container_arn=(
                    f"arn:aws:ecs:{service.region}:{service.account}:container/"
                    f"{service.cluster_name}/{self.id}/{uuid.uuid4()}"
                ),
                runtime_id=f"{self.id}-{random.randint(10**9, 10**10 - 1)}",
                stop_exit_code=image_behaviour.stop_exit_code,
            )
            for pinned, image_behaviour in deployment.container_behaviours
        ]
        self.last_status = PROVISIONING
        self.desired_status = RUNNING
        self.phase_since = now
        self.created_at = now
        self.connectivity_at: float | None = None
        self.pull_started_at: float | None = None
        self.pull_stopped_at: float | None = None
        self.started_at: float | None = None
        self.stopping_at: float | None = None
        self.execution_stopped_at: float | None = None
        self.stopped_at: float | None = None
        self.drain_until: float | None = None
        self.stopped_reason: str | None = None
        self.stop_code: str | None = None
        self.version = 1
        self.was_healthy = False
        self.last_container_health = "UNKNOWN"  # what a stopped task keeps showing
        self.targets: list[TargetRecord] = []

    @property
    def active(self) -> bool:
        """Wanted by the scheduler (not being stopped)."""
        return self.desired_status == RUNNING

    @property
    def alive(self) -> bool:
        """Still occupying capacity: counts against maximumPercent until fully stopped."""
        return self.last_status != STOPPED

    @property
    def has_container_health_checks(self) -> bool:
        return any(c.has_health_check for c in self.containers)

    def running_for(self, now: float) -> float:
        return now - self.started_at if self.started_at is not None else -1.0

    def container_health(self, now: float) -> str:
        """Aggregate of the container health checks (UNKNOWN when none is defined). Once the
        task leaves RUNNING it keeps the last status it had, as ECS shows it."""
        if not self.has_container_health_checks:
            return "UNKNOWN"
        if self.last_status != RUNNING:
            return self.last_container_health
        verdict = probe_verdict(self.behaviour, self.running_for(now))
        return {PROBE_HEALTHY: "HEALTHY", PROBE_UNHEALTHY: "UNHEALTHY"}.get(verdict, "UNKNOWN")

    def describe(self, now: float) -> dict[str, Any]:
        """The task as DescribeTasks returns it (datetimes; moto's serializer renders them)."""
        health = self.container_health(now)
        task: dict[str, Any] = {
            "taskArn": self.arn,
            "taskDefinitionArn": self.task_definition_arn,
            "clusterArn": self.service.cluster_arn,
            "containerInstanceArn": self.host.container_instance_arn if self.host else None,
            "group": f"service:{self.service.name}",
            "startedBy": self.deployment.id,
            "launchType": self.launch_type,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "healthStatus": health,
            "cpu": self.cpu,
            "memory": self.memory,
            "version": self.version,
            "connectivity": "CONNECTED" if self.connectivity_at is not None else None,
            "createdAt": _dt(self.created_at),
            "connectivityAt": _optional_dt(self.connectivity_at),
            "pullStartedAt": _optional_dt(self.pull_started_at),
            "pullStoppedAt": _optional_dt(self.pull_stopped_at),
            "startedAt": _optional_dt(self.started_at),
            "stoppingAt": _optional_dt(self.stopping_at),
            "executionStoppedAt": _optional_dt(self.execution_stopped_at),
            "stoppedAt": _optional_dt(self.stopped_at),
            "stoppedReason": self.stopped_reason,
            "stopCode": self.stop_code,
            "enableExecuteCommand": False,
            "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
            "containers": [self._describe_container(c, health) for c in self.containers],
            "attachments": [],
            "tags": [dict(t) for t in self.deployment.tags],
            "overrides": {
                "containerOverrides": [{"name": c.name} for c in self.containers],
                "inferenceAcceleratorOverrides": [],
            },
        }
        if self.launch_type == "FARGATE":
            task["platformVersion"] = self.deployment.platform_version
            task["platformFamily"] = "Linux"
            task["ephemeralStorage"] = {"sizeInGiB": 20}
        if self.network is not None:
            net = self.network
            task["availabilityZone"] = net.availability_zone
            attachment_status = (
                "PRECREATED"
                if self.last_status == PROVISIONING
                else "DELETED"
                if self.last_status == STOPPED
                else "ATTACHED"
            )
            details = [
                ("subnetId", net.subnet_id),
                ("networkInterfaceId", net.eni_id),
                ("macAddress", net.mac),
                ("privateDnsName", net.dns_name),
                ("privateIPv4Address", net.ip),
            ]
            task["attachments"] = [
                {
                    "id": net.attachment_id,
                    "type": "ElasticNetworkInterface",
                    "status": attachment_status,
                    "details": [{"name": k, "value": v} for k, v in details if v is not None],
                }
            ]
        return {k: v for k, v in task.items() if v is not None}

    def _describe_container(self, container: SimContainer, health: str) -> dict[str, Any]:
        described: dict[str, Any] = {
            "containerArn": container.container_arn,
            "taskArn": self.arn,
            "name": container.name,
            "image": container.image,
            "imageDigest": container.digest,
            "runtimeId": container.runtime_id if self.started_at is not None else None,
            "lastStatus": container.last_status,
            "exitCode": container.exit_code,
            "reason": container.reason,
            "networkBindings": [],
            "networkInterfaces": [],
            "healthStatus": health if container.has_health_check else "UNKNOWN",
            "cpu": container.cpu,
            "memory": container.memory,
        }
        if self.host is not None and self.started_at is not None:
            described["networkBindings"] = [
                {"bindIP": "0.0.0.0", "containerPort": port, "hostPort": host_port, "protocol": "tcp"}
                for (name, port), host_port in self.host.bindings.items()
                if name == container.name
            ]
        if self.network is not None:
            described["networkInterfaces"] = [
                {"attachmentId": self.network.attachment_id, "privateIpv4Address": self.network.ip}
            ]
        return {k: v for k, v in described.items() if v is not None}


def _optional_dt(ts: float | None) -> datetime | None:
    return _dt(ts) if ts is not None else None


# ============================================================================================
# Target health
# ============================================================================================


@dataclass
class TargetRecord:
    """A task registered in one target group: its awsvpc IP (target type ip) or, for bridge and
    host network modes, its container instance's id and the host port (target type instance)."""

    target_group_arn: str
    target_id: str
    port: int
    task: SimTask
    registered_at: float
    draining_since: float | None = None

    def state(self, now: float) -> tuple[str, str | None, str | None]:
        """(State, Reason, Description) as DescribeTargetHealth reports them."""
        if self.draining_since is not None:
            return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
        age = now - self.registered_at
        verdict = probe_verdict(self.task.behaviour, age)
        if verdict == PROBE_HEALTHY:
            return "healthy", None, None
        if verdict == PROBE_UNHEALTHY:
            return "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
        if age < ELB_REGISTRATION_SECONDS:
            return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
        return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"


class TargetBook:
    """The simulator's targets, registered for real in moto's ELBv2 backend (so listings and
    explicit look-ups work) while their health comes from the simulation."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], TargetRecord] = {}

    def register(self, task: SimTask, load_balancers: list[dict[str, Any]], at: float) -> list[str]:
        """Registers a RUNNING task in each target group; returns the target groups used."""
        elbv2 = elbv2_models.elbv2_backends[task.service.account][task.service.region]
        registered = []
        for lb in load_balancers:
            tg_arn, port = lb.get("targetGroupArn"), lb.get("containerPort")
            if not tg_arn or port is None:
                continue  # Classic Load Balancers are not simulated
            target = _target_of(task, lb.get("containerName"), int(port))
            if target is None:
                continue  # no port mapping for that container port
            target_id, target_port = target
            try:
                elbv2.register_targets(tg_arn, [{"Id": target_id, "Port": target_port}])
            except Exception as error:
                LOG.warning("cannot register %s in %s: %s", target_id, tg_arn, error)
                continue
            record = TargetRecord(tg_arn, target_id, target_port, task, at)
            self._records[(tg_arn, target_id)] = record
            task.targets.append(record)
            registered.append(tg_arn)
        return registered

    def start_draining(self, task: SimTask, at: float) -> float:
        """Deregistration begins: the targets show `draining`. Returns how long it lasts."""
        elbv2 = elbv2_models.elbv2_backends[task.service.account][task.service.region]
        longest = 0.0
        for record in task.targets:
            record.draining_since = at
            group = elbv2.target_groups.get(record.target_group_arn)
            delay = 300.0
            if group is not None:
                try:
                    delay = float(group.attributes.get("deregistration_delay.timeout_seconds", 300))
                except (TypeError, ValueError):
                    pass
            longest = max(longest, delay * DEREGISTRATION_DELAY_SCALE)
        return longest

    def finish_draining(self, task: SimTask) -> None:
        """Deregistration is over: the targets leave the target group."""
        elbv2 = elbv2_models.elbv2_backends[task.service.account][task.service.region]
        for record in task.targets:
            self._records.pop((record.target_group_arn, record.target_id), None)
            try:
                elbv2.deregister_targets(
                    record.target_group_arn, [{"Id": record.target_id, "Port": record.port}]
                )
            except Exception:
                pass  # target group deleted meanwhile
        task.targets = []

    def forget(self, task: SimTask) -> None:
        """Drops the records without touching moto (moto's state was reset)."""
        for record in task.targets:
            self._records.pop((record.target_group_arn, record.target_id), None)
        task.targets = []

    def overlay(self, target_group_arn: str, statuses: Iterable[Any], now: float) -> None:
        """Rewrites moto's always-healthy answers for the targets the simulator manages."""
        for status in statuses:
            record = self._records.get((target_group_arn, status.instance_id))
            if record is None:
                continue
            status.status, status.reason, status.description = record.state(now)
            if status.health_check_port in (None, "traffic-port"):
                status.health_check_port = str(record.port)


def _target_of(task: "SimTask", container: str | None, container_port: int) -> tuple[str, int] | None:
    """(Id, Port) under which ECS registers the task for a load balancer's container port:
    the awsvpc IP and the container port, or the instance id and the bound host port."""
    if task.network is not None:
        return task.network.ip, container_port
    if task.host is not None:
        host_port = task.host.bindings.get((container or "", container_port))
        if host_port is not None:
            return task.host.instance_id, host_port
    return None


# ============================================================================================
# Bridge and host network modes: a container instance and host ports per task
# ============================================================================================

# PortMapping - Amazon ECS API Reference
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PortMapping.html): in bridge
# mode a hostPort omitted or 0 gets "a port in the ephemeral port range" (read from
# /proc/sys/net/ipv4/ip_local_port_range: 32768-60999 on current Linux kernels); in host mode
# "the hostPort can either be left blank or set to the same value as the containerPort".
EPHEMERAL_PORTS = (32768, 60999)


@dataclass
class TaskHost:
    instance_id: str
    container_instance_arn: str | None
    bindings: dict[tuple[str, int], int]  # (container, containerPort) → hostPort


class HostPlacer:
    """Puts bridge/host-mode tasks on the cluster's registered container instances (moto's
    RegisterContainerInstance), preferring one that hosts no live task of the service, or on a
    made-up instance when none is free: moto keeps one target per instance id in a target
    group, so two tasks of a service never share an instance here."""

    def __init__(self) -> None:
        self._next_port = EPHEMERAL_PORTS[0]

    def place(self, state: "ServiceState", deployment: "Deployment") -> TaskHost:
        busy = {t.host.instance_id for t in state.tasks if t.alive and t.host is not None}
        instance_id, arn = None, None
        registered = getattr(state.backend, "container_instances", {}).get(state.cluster_name, {})
        for candidate in list(registered.values()):
            if getattr(candidate, "status", "ACTIVE") == "ACTIVE" and candidate.ec2_instance_id not in busy:
                instance_id = candidate.ec2_instance_id
                arn = getattr(candidate, "container_instance_arn", None) or getattr(candidate, "arn", None)
                break
        if instance_id is None:
            # No free instance: the cluster's capacity provider scales out (managed scaling
            # launches an instance that registers with the cluster). On ECS every EC2 task has a
            # container instance, which DescribeTasks names and DescribeContainerInstances maps to
            # its EC2 instance id: the made-up instance is registered, never left nameless.
            instance_id, arn = self._scale_out(state)
        bindings: dict[tuple[str, int], int] = {}
        for container, mappings in deployment.port_mappings.items():
            for mapping in mappings:
                container_port = mapping.get("containerPort")
                if container_port is None:
                    continue
                host_port = int(mapping.get("hostPort") or 0)
                if deployment.network_mode == "host":
                    host_port = int(container_port)
                elif not host_port:
                    host_port = self._ephemeral_port()
                bindings[(container, int(container_port))] = host_port
        return TaskHost(instance_id, arn, bindings)

    @staticmethod
    def _scale_out(state: "ServiceState") -> tuple[str, str | None]:
        """Launches an EC2 instance (moto's EC2, so DescribeInstances knows it) and registers it
        with the cluster as the ECS agent does; a made-up id if moto cannot (no AMI)."""
        try:
            ec2 = ec2_backends[state.account][state.region]
            image = next(iter(ec2.describe_images()), None)
            if image is None:
                raise LookupError("no AMI")
            # The keyword arguments moto's RunInstances handler passes (responses/instances.py).
            launch = {
                "instance_type": "m5.large", "is_instance_type_default": False, "placement": None,
                "placement_hostid": None, "region_name": state.region, "subnet_id": None, "key_name": None,
                "security_group_ids": [], "nics": [], "private_ip": None, "associate_public_ip": None,
                "tags": {}, "ebs_optimized": False, "disable_api_stop": False, "instance_market_options": {},
                "instance_initiated_shutdown_behavior": None, "launch_template": {}, "hibernation_options": {},
                "iam_instance_profile_name": None, "iam_instance_profile_arn": None, "monitoring_state": "disabled",
                "ipv6_address_count": None, "metadata_options": {}, "client_token": uuid.uuid4().hex,
            }
            [instance] = ec2.run_instances(image.id, 1, None, [], **launch).instances
            registered = state.backend.register_container_instance(state.cluster_name, instance.id)
            return instance.id, registered.container_instance_arn
        except Exception:  # noqa: BLE001 - placement must not fail the simulation
            LOG.exception("could not scale out cluster %s with an instance", state.cluster_name)
            return f"i-{uuid.uuid4().hex[:17]}", None

    def _ephemeral_port(self) -> int:
        port = self._next_port
        low, high = EPHEMERAL_PORTS
        self._next_port = low if port >= high else port + 1
        return port


# ============================================================================================
# Deployments
# ============================================================================================


class Deployment:
    """One service deployment: a task definition (images pinned), a desired count, a rollout."""

    def __init__(
        self,
        *,
        task_definition: Any,
        tags: list[dict[str, str]],
        desired_count: int,
        launch_type: str | None,
        platform_version: str | None,
        network_configuration: dict[str, Any] | None,
        load_balancers: list[dict[str, Any]],
        catalog: ImageCatalog,
        now: float,
    ) -> None:
        self.id = _new_deployment_id()
        self.task_definition_arn = task_definition.arn
        self.family = task_definition.family
        self.network_mode = task_definition.network_mode
        self.cpu = _str_or_none(task_definition.cpu)
        self.memory = _str_or_none(task_definition.memory)
        self.desired_count = desired_count
        self.launch_type = launch_type
        # Fargate resolves LATEST to a concrete platform version.
        self.platform_version = (
            None
            if launch_type != "FARGATE"
            else platform_version if platform_version not in (None, "LATEST") else "1.4.0"
        )
        self.network_configuration = network_configuration
        self.load_balancers = [dict(lb) for lb in load_balancers]
        self.tags = tags
        self.status = PRIMARY
        self.rollout_state = IN_PROGRESS
        self.rollout_reason = f"ECS deployment {self.id} in progress."
        self.failed_tasks = 0
        self.created_at = now
        self.updated_at = now
        self._last_counts: tuple[Any, ...] = ()
        definitions = task_definition.container_definitions
        self.container_images = [
            catalog.pin(d["name"], d.get("image", ""), bool(d.get("essential", True)))
            for d in definitions
        ]
        # Behaviours are looked up once per deployment, like the digests they belong to.
        self.container_behaviours = [(p, catalog.behaviour(p)) for p in self.container_images]
        self.health_checked_containers = {d["name"] for d in definitions if d.get("healthCheck")}
        self.container_cpu = {d["name"]: _str_or_none(d.get("cpu")) for d in definitions}
        self.container_memory = {d["name"]: _str_or_none(d.get("memory")) for d in definitions}
        self.port_mappings = {d["name"]: list(d.get("portMappings") or []) for d in definitions}

    def task_behaviour(self) -> TaskBehaviour:
        return TaskBehaviour.combine(self.container_behaviours)

    def start_rollout(self, reason: str, desired_count: int, now: float) -> None:
        self.status = PRIMARY
        self.rollout_state = IN_PROGRESS
        self.rollout_reason = reason
        self.desired_count = desired_count
        self.failed_tasks = 0
        self.updated_at = now

    def describe(self, tasks: list[SimTask], now: float) -> dict[str, Any]:
        mine = [t for t in tasks if t.deployment is self]
        running = sum(1 for t in mine if t.last_status == RUNNING and t.active)
        pending = sum(1 for t in mine if t.last_status in STARTING_STATES and t.active)
        # An ACTIVE deployment's desired count shrinks as the scheduler scales it in.
        desired = self.desired_count if self.status == PRIMARY else sum(1 for t in mine if t.active)
        counts = (desired, pending, running, self.failed_tasks, self.status, self.rollout_state)
        if counts != self._last_counts:
            if self._last_counts:
                self.updated_at = now
            self._last_counts = counts
        described = {
            "id": self.id,
            "status": self.status,
            "taskDefinition": self.task_definition_arn,
            "desiredCount": desired,
            "pendingCount": pending,
            "runningCount": running,
            "failedTasks": self.failed_tasks,
            "createdAt": _dt(self.created_at),
            "updatedAt": _dt(self.updated_at),
            "launchType": self.launch_type,
            "networkConfiguration": self.network_configuration,
            "rolloutState": self.rollout_state,
            "rolloutStateReason": self.rollout_reason,
        }
        if self.launch_type == "FARGATE":
            described["platformVersion"] = self.platform_version
            described["platformFamily"] = "Linux"
        return {k: v for k, v in described.items() if v is not None}


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# ============================================================================================
# Services: the scheduler
# ============================================================================================


class ServiceState:
    """The simulator's side of one moto service: deployments, tasks, service events, and the
    rolling-update scheduler that moves them along on every tick."""

    def __init__(self, sim: "Simulator", backend: Any, service: Any, now: float) -> None:
        self.sim = sim
        self.backend = backend
        self.moto_service = service
        self.account = backend.account_id
        self.region = backend.region_name
        self.cluster_name = service.cluster_name
        self.cluster_arn = service.cluster_arn
        self.name = service.name
        self.key = f"{service.cluster_name}:{service.name}"
        self.created_at = now
        self.desired_count = int(service.desired_count or 0)
        self.settings = DeploymentSettings()
        self.grace_seconds: int | None = None
        self.deployments: list[Deployment] = []
        self.last_completed: Deployment | None = None
        self.tasks: list[SimTask] = []
        self.events: list[dict[str, Any]] = []
        self.steady = False
        self.deleting = False
        self.native: Any = None  # ecs_native.NativeController of a BLUE_GREEN/LINEAR/CANARY service
        self.service_deployment_records: list[Any] = []  # ecs_service_deployments, newest first
        self._launch_index = 0
        # Service events are gathered during a tick and written at its end, one per kind, the
        # way ECS batches "has started 2 tasks: …".
        self._started: list[SimTask] = []
        self._stopped: list[SimTask] = []
        self._draining: list[SimTask] = []
        self._registered: dict[str, int] = {}
        self._deregistered: dict[str, int] = {}

    # ----- identity -------------------------------------------------------------------------

    @property
    def arn(self) -> str:
        return self.moto_service.arn

    @property
    def primary(self) -> Deployment | None:
        return self.deployments[0] if self.deployments else None

    def still_in_moto(self) -> bool:
        """False once moto's state was reset or the service replaced."""
        return self.backend.services.get(self.key) is self.moto_service

    # ----- API-driven changes ---------------------------------------------------------------

    def start_deployment(self, now: float) -> Deployment:
        """A new PRIMARY deployment of the service's current configuration; the previous ones
        become ACTIVE and are scaled in as the new one comes up."""
        svc = self.moto_service
        task_definition = self.backend.describe_task_definition(svc.task_definition)
        deployment = Deployment(
            task_definition=task_definition,
            tags=self._propagated_tags(task_definition),
            desired_count=self.desired_count,
            launch_type=svc.launch_type,
            platform_version=svc.platform_version,
            network_configuration=svc.network_configuration or None,
            load_balancers=svc.load_balancers or [],
            catalog=self.sim.catalog,
            now=now,
        )
        for previous in self.deployments:
            previous.status = ACTIVE
            previous.updated_at = now
        self.deployments.insert(0, deployment)
        self.steady = False
        if self.sim.native_deployments is not None:  # BLUE_GREEN, LINEAR, CANARY: ecs_native
            self.sim.native_deployments.deployment_started(self, deployment, now)
        self.sim.emit_deployment_event(self, deployment, "SERVICE_DEPLOYMENT_IN_PROGRESS", now)
        return deployment

    def _propagated_tags(self, task_definition: Any) -> list[dict[str, str]]:
        """Tags the service's tasks carry: propagateTags=SERVICE or TASK_DEFINITION."""
        propagate = getattr(self.moto_service, "propagate_tags", "NONE")
        if propagate == "SERVICE":
            return [dict(t) for t in self.moto_service.tags or []]
        if propagate == "TASK_DEFINITION":
            return [dict(t) for t in task_definition.tags or []]
        return []

    def set_desired_count(self, desired: int, now: float) -> None:
        if desired == self.desired_count:
            return
        self.desired_count = desired
        if self.primary is not None:
            self.primary.desired_count = desired
            self.primary.updated_at = now
        self.steady = False

    def delete(self, now: float) -> None:
        """DeleteService: every task is stopped, nothing is launched any more."""
        self.deleting = True
        self.set_desired_count(0, now)

    def user_stop(self, task: SimTask, reason: str | None, now: float) -> None:
        """StopTask. The scheduler replaces a stopped task of the PRIMARY deployment with a new
        one of the same deployment (rolloutState unchanged), which starts `initial` in the
        target groups like any new task."""
        self._request_stop(task, now, reason or "Task stopped by user", USER_INITIATED, failed=False)

    def spot_interruption(self, task: SimTask, now: float) -> None:
        """Fargate Spot reclaims the task's capacity (no AWS API causes this): SIGTERM now, stop
        code SpotInterruption; the scheduler replaces the task like any stopped one. The
        two-minute warning is compressed like every other timing."""
        self._request_stop(task, now, SPOT_INTERRUPTION_REASON, SPOT_INTERRUPTION, failed=False)

    # ----- the tick -------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        for task in list(self.tasks):
            self._advance(task, now)
        self._enforce_health(now)
        self._note_healthy_tasks(now)
        # A blue/green, linear or canary deployment schedules the tasks itself (ecs_native).
        if self.native is None or not self.native.tick(now):
            self._check_circuit_breaker(now)
            self._schedule(now)
            self._check_completion(now)
        self._check_steady_state(now)
        self._expire_stopped_tasks(now)
        self._write_batched_events(now)
        self.publish(now)

    # ----- task lifecycle -------------------------------------------------------------------

    def _advance(self, task: SimTask, now: float) -> None:
        """Moves a task through every transition that is due by `now`, each at its own due
        time, so a late tick (or a test's jumping clock) yields the same history."""
        while True:
            due = self._next_transition_at(task)
            if due is None or due > now:
                return
            self._transition(task, due)

    def _next_transition_at(self, task: SimTask) -> float | None:
        status = task.last_status
        if task.desired_status == RUNNING:
            if status == PROVISIONING:
                return task.phase_since + PROVISIONING_SECONDS
            if status == PENDING:
                return task.phase_since + PENDING_SECONDS
            if status == ACTIVATING:
                return task.phase_since + ACTIVATING_SECONDS
            if status == RUNNING and task.behaviour.health == CRASH:
                return task.started_at + CRASH_AFTER_SECONDS
            return None
        if status in STARTING_STATES or status == RUNNING:
            return task.stopping_at
        if status == DEACTIVATING:
            return task.drain_until
        if status == STOPPING:
            return task.phase_since + STOPPING_SECONDS
        if status == DEPROVISIONING:
            return task.phase_since + DEPROVISIONING_SECONDS
        return None

    def _transition(self, task: SimTask, at: float) -> None:
        status = task.last_status
        task.version += 1
        if task.desired_status == RUNNING:
            if status == PROVISIONING:
                task.connectivity_at = at
                self._enter(task, PENDING, at)
            elif status == PENDING:
                task.pull_started_at = task.phase_since
                if task.behaviour.pull_error:
                    for container in task.containers:
                        container.reason = task.behaviour.pull_error
                    self._request_stop(
                        task, at, task.behaviour.pull_error, TASK_FAILED_TO_START, failed=True
                    )
                else:
                    task.pull_stopped_at = at
                    self._enter(task, ACTIVATING, at)
            elif status == ACTIVATING:
                self._enter_running(task, at)
            elif status == RUNNING:  # a crashing image's essential container exits
                for container in task.containers:
                    if container.crashes:
                        container.last_status, container.exit_code = STOPPED, 1
                self._request_stop(
                    task, at, "Essential container in task exited", ESSENTIAL_CONTAINER_EXITED,
                    failed=True,
                )
            return
        if status in STARTING_STATES:
            # Never ran: nothing registered, straight to releasing the ENI.
            for container in task.containers:
                container.last_status = STOPPED
            self._enter(task, DEPROVISIONING, at)
            self.sim.emit_task_event(self, task, at)
        elif status == RUNNING:
            task.drain_until = at + self.sim.targets.start_draining(task, at)
            if task.targets:
                self._draining.append(task)
                for record in task.targets:
                    tg = record.target_group_arn
                    self._deregistered[tg] = self._deregistered.get(tg, 0) + 1
            self._enter(task, DEACTIVATING, at)
            self.sim.emit_task_event(self, task, at)
        elif status == DEACTIVATING:
            self.sim.targets.finish_draining(task)
            self._enter(task, STOPPING, at)
            self.sim.emit_task_event(self, task, at)  # each lastStatus change is an event
        elif status == STOPPING:
            for container in task.containers:
                if container.last_status == RUNNING:  # SIGTERM, then SIGKILL after stopTimeout
                    container.last_status, container.exit_code = STOPPED, container.stop_exit_code
                container.last_status = STOPPED
            task.execution_stopped_at = at
            self._enter(task, DEPROVISIONING, at)
            self.sim.emit_task_event(self, task, at)
        elif status == DEPROVISIONING:
            if task.network is not None:
                self.sim.network.release(self.account, self.region, task.network)
            task.stopped_at = at
            self._enter(task, STOPPED, at)
            self.sim.emit_task_event(self, task, at)

    @staticmethod
    def _enter(task: SimTask, status: str, at: float) -> None:
        task.last_status = status
        task.phase_since = at

    def _enter_running(self, task: SimTask, at: float) -> None:
        task.started_at = at
        for container in task.containers:
            container.last_status = RUNNING
        self._enter(task, RUNNING, at)
        for tg in self.sim.targets.register(task, task.deployment.load_balancers, at):
            self._registered[tg] = self._registered.get(tg, 0) + 1
        self.sim.emit_task_event(self, task, at)

    def _request_stop(
        self, task: SimTask, at: float, reason: str, stop_code: str, *, failed: bool
    ) -> None:
        if not task.active:
            return
        if task.last_status == RUNNING:
            task.last_container_health = task.container_health(at)
        task.desired_status = STOPPED
        task.stopping_at = at
        task.stopped_reason = reason
        task.stop_code = stop_code
        task.version += 1
        if task.last_status == RUNNING:
            self._stopped.append(task)
        if failed:
            task.deployment.failed_tasks += 1
            task.deployment.updated_at = at
        # "The Amazon ECS service scheduler starts or stops a task" is a task state change event
        # ("Amazon ECS task state change events", ECS Developer Guide): it comes when the stop is
        # decided (desiredStatus STOPPED, lastStatus still RUNNING), before the target drains for
        # its deregistration delay (300 s by default on AWS) and long before lastStatus STOPPED.
        self.sim.emit_task_event(self, task, at)

    def _launch(self, deployment: Deployment, now: float) -> SimTask:
        network = None
        awsvpc = (deployment.network_configuration or {}).get("awsvpcConfiguration")
        host = None
        if deployment.network_mode == "awsvpc" or awsvpc:
            network = self.sim.network.attach(self.account, self.region, awsvpc or {}, self._launch_index)
        else:  # bridge (the EC2 default), host: the container instance's address and ports
            host = self.sim.hosts.place(self, deployment)
        self._launch_index += 1
        task = SimTask(
            service=self,
            deployment=deployment,
            behaviour=deployment.task_behaviour(),
            network=network,
            now=now,
            host=host,
        )
        self.tasks.append(task)
        self._started.append(task)
        return task

    # ----- health ---------------------------------------------------------------------------

    def task_health(self, task: SimTask, now: float) -> str:
        """healthy | unhealthy | initial, as far as the scheduler is concerned: every target
        of the task and every container health check must pass."""
        if task.last_status != RUNNING or not task.active:
            return PROBE_INITIAL
        verdicts = {record.state(now)[0] for record in task.targets}
        container = task.container_health(now)
        if "unhealthy" in verdicts or container == "UNHEALTHY":
            return PROBE_UNHEALTHY
        if verdicts - {"healthy"} or (task.has_container_health_checks and container != "HEALTHY"):
            return PROBE_INITIAL
        return PROBE_HEALTHY

    def _enforce_health(self, now: float) -> None:
        """Once healthCheckGracePeriodSeconds have passed since a task started, the scheduler
        stops the task if a target group or a container health check finds it unhealthy."""
        grace = float(self.grace_seconds or 0)
        for task in self.tasks:
            if task.last_status != RUNNING or not task.active or task.running_for(now) < grace:
                continue
            unhealthy = [r for r in task.targets if r.state(now)[0] == "unhealthy"]
            if unhealthy:
                record = unhealthy[0]
                self._add_event(
                    f"(service {self.name}) (task {task.id}) (port {record.port}) is unhealthy in "
                    f"(target-group {record.target_group_arn}) due to (reason Health checks failed).",
                    now,
                )
                self._request_stop(
                    task,
                    now,
                    f"Task failed ELB health checks in (target-group {record.target_group_arn})",
                    SERVICE_SCHEDULER_INITIATED,
                    failed=True,
                )
            elif task.container_health(now) == "UNHEALTHY":
                self._add_event(
                    f"(service {self.name}) (task {task.id}) failed container health checks.", now
                )
                self._request_stop(
                    task, now, "Task failed container health checks", SERVICE_SCHEDULER_INITIATED,
                    failed=True,
                )

    def _note_healthy_tasks(self, now: float) -> None:
        """A task that passes its health checks resets its deployment's failure count (the
        circuit breaker's resetOnHealthyTask, on by default)."""
        for task in self.tasks:
            if task.was_healthy or self.task_health(task, now) != PROBE_HEALTHY:
                continue
            task.was_healthy = True
            if self.settings.breaker_resets_on_healthy_task and task.deployment.failed_tasks:
                task.deployment.failed_tasks = 0
                task.deployment.updated_at = now

    # ----- circuit breaker ------------------------------------------------------------------

    def _check_circuit_breaker(self, now: float) -> None:
        deployment = self.primary
        if deployment is None or deployment.rollout_state != IN_PROGRESS:
            return
        if not self.settings.breaker_enabled:
            return
        if deployment.failed_tasks < self.settings.failure_threshold(self.desired_count):
            return
        deployment.rollout_state = FAILED
        deployment.rollout_reason = CIRCUIT_BREAKER_REASON
        deployment.updated_at = now
        self.steady = False
        self.sim.emit_deployment_event(self, deployment, "SERVICE_DEPLOYMENT_FAILED", now)
        self._add_event(
            f"(service {self.name}) (deployment {deployment.id}) deployment failed: "
            "tasks failed to start.",
            now,
        )
        if self.settings.breaker_rollback:
            self._roll_back(deployment, now)
        # Without rollback (or without a COMPLETED deployment to return to) the FAILED
        # deployment stays PRIMARY and launches nothing more: the rollout is stalled.

    def _roll_back(self, failed: Deployment, now: float) -> None:
        """ECS returns to the most recent COMPLETED deployment: that same deployment (same id)
        becomes PRIMARY again and IN_PROGRESS, and is not eligible as a rollback target until
        it completes again."""
        target = self.last_completed
        if target is None or target is failed:
            LOG.info("service %s: no COMPLETED deployment to roll back to", self.name)
            return
        if target in self.deployments:
            self.deployments.remove(target)
        failed.status = ACTIVE
        for other in self.deployments:
            other.status = ACTIVE
        target.start_rollout(
            f"ECS deployment circuit breaker: rolling back to deploymentId {target.id}.",
            self.desired_count,
            now,
        )
        self.deployments.insert(0, target)
        self.last_completed = None
        self.sim.emit_deployment_event(self, target, "SERVICE_DEPLOYMENT_IN_PROGRESS", now)
        self._add_event(f"(service {self.name}) rolling back to deployment {target.id}.", now)

    # ----- the rolling update ---------------------------------------------------------------

    def _schedule(self, now: float) -> None:
        """One scheduling pass of a rolling update:
        1. the PRIMARY deployment is scaled in to the desired count if it has too many tasks;
        2. old deployments' tasks that are not healthy protect nothing and are stopped;
        3. PRIMARY tasks are launched up to the desired count, as long as every task that is
           not yet STOPPED (draining ones included) fits within maximumPercent;
        4. healthy old tasks are stopped as long as minimumHealthyPercent stays satisfied.
        A FAILED PRIMARY (circuit breaker without rollback) launches and stops nothing."""
        primary = self.primary
        if primary is None:
            return
        desired = self.desired_count
        reason = f"Scaling activity initiated by (deployment {primary.id})"
        if primary.rollout_state == FAILED and not self.deleting:
            return

        def stop(task: SimTask) -> None:
            self._request_stop(task, now, reason, SERVICE_SCHEDULER_INITIATED, failed=False)

        primary_tasks = [t for t in self.tasks if t.deployment is primary and t.active]
        if len(primary_tasks) > desired:
            # Prefer stopping tasks that serve nothing yet, then the newest.
            ranked = sorted(
                primary_tasks,
                key=lambda t: (self.task_health(t, now) == PROBE_HEALTHY, -t.created_at),
            )
            for task in ranked[: len(primary_tasks) - desired]:
                stop(task)
            primary_tasks = [t for t in primary_tasks if t.active]

        old_tasks = [t for t in self.tasks if t.deployment is not primary and t.active]
        for task in old_tasks:
            if self.task_health(task, now) != PROBE_HEALTHY:
                stop(task)

        if not self.deleting:
            alive = sum(1 for t in self.tasks if t.alive)
            room = self.settings.max_tasks(desired) - alive
            for _ in range(max(0, min(desired - len(primary_tasks), room))):
                self._launch(primary, now)

        healthy = [t for t in self.tasks if t.active and self.task_health(t, now) == PROBE_HEALTHY]
        surplus = len(healthy) - self.settings.min_healthy_tasks(desired)
        old_healthy = [t for t in healthy if t.deployment is not primary]
        old_healthy.sort(key=lambda t: t.created_at)  # oldest first
        for task in old_healthy[: max(0, surplus)]:
            stop(task)

    def _check_completion(self, now: float) -> None:
        """COMPLETED: the PRIMARY runs the desired count, every one of its tasks passes its
        health checks, and every other task has stopped. Older deployments then leave the list."""
        deployment = self.primary
        if deployment is None or deployment.rollout_state != IN_PROGRESS or self.deleting:
            return
        mine = [t for t in self.tasks if t.deployment is deployment and t.active]
        if len(mine) != self.desired_count:
            return
        if any(self.task_health(t, now) != PROBE_HEALTHY for t in mine):
            return
        if any(t.alive for t in self.tasks if t not in mine):
            return
        deployment.rollout_state = COMPLETED
        deployment.rollout_reason = f"ECS deployment {deployment.id} completed."
        deployment.updated_at = now
        self.deployments = [deployment]
        self.last_completed = deployment
        self.sim.emit_deployment_event(self, deployment, "SERVICE_DEPLOYMENT_COMPLETED", now)
        self._add_event(f"(service {self.name}) (deployment {deployment.id}) deployment completed.", now)

    def _check_steady_state(self, now: float) -> None:
        deployment = self.primary
        steady = (
            not self.deleting
            and deployment is not None
            and deployment.rollout_state == COMPLETED
            and len(self.deployments) == 1
            and sum(1 for t in self.tasks if t.alive) == self.desired_count
            and all(
                self.task_health(t, now) == PROBE_HEALTHY for t in self.tasks if t.alive
            )
        )
        if steady and not self.steady:
            self._add_event(f"(service {self.name}) has reached a steady state.", now)
        self.steady = steady

    def _expire_stopped_tasks(self, now: float) -> None:
        keep = []
        for task in self.tasks:
            if task.stopped_at is not None and now - task.stopped_at > STOPPED_TASK_RETENTION_SECONDS:
                continue
            keep.append(task)
        self.tasks = keep

    # ----- service events -------------------------------------------------------------------

    def _add_event(self, message: str, now: float) -> None:
        self.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": _dt(now), "message": message})
        del self.events[SERVICE_EVENTS_KEPT:]

    def _write_batched_events(self, now: float) -> None:
        name = self.name
        if self._started:
            ids = " ".join(f"(task {t.id})" for t in self._started)
            self._add_event(f"(service {name}) has started {len(self._started)} tasks: {ids}.", now)
        for tg, count in self._registered.items():
            self._add_event(f"(service {name}) registered {count} targets in (target-group {tg})", now)
        if self._stopped:
            ids = " ".join(f"(task {t.id})" for t in self._stopped)
            self._add_event(
                f"(service {name}) has stopped {len(self._stopped)} running tasks: {ids}.", now
            )
        if self._draining:
            self._add_event(
                f"(service {name}) has begun draining connections on {len(self._draining)} tasks.",
                now,
            )
        for tg, count in self._deregistered.items():
            self._add_event(f"(service {name}) deregistered {count} targets in (target-group {tg})", now)
        self._started, self._stopped, self._draining = [], [], []
        self._registered, self._deregistered = {}, {}

    # ----- what moto serves -----------------------------------------------------------------

    def publish(self, now: float) -> None:
        """Writes the simulated state onto moto's Service object, which DescribeServices,
        CreateService and UpdateService serialize. Each attribute gets a fresh object, so a
        response being serialized on another thread never sees a half-updated list."""
        svc = self.moto_service
        primary = self.primary
        deployments = [d.describe(self.tasks, now) for d in self.deployments]
        svc.deployments = deployments
        if primary is not None:
            svc.task_definition = primary.task_definition_arn
        svc.desired_count = self.desired_count
        svc.running_count = sum(d["runningCount"] for d in deployments)
        svc.pending_count = sum(d["pendingCount"] for d in deployments)
        svc.deployment_configuration = self.settings.to_api()
        if self.grace_seconds is not None:
            svc.health_check_grace_period_seconds = self.grace_seconds
        svc.events = [dict(e) for e in self.events]
        svc.created_at = _dt(self.created_at)
        if svc.launch_type == "FARGATE":
            svc.platform_family = "Linux"
        if self.sim.service_deployments is not None:  # currentServiceDeployment, currentServiceRevisions
            self.sim.service_deployments.publish(self, svc, now)


# ============================================================================================
# The simulator
# ============================================================================================


class Simulator:
    """Owns the simulated ECS services and the background thread that advances them."""

    def __init__(
        self,
        emit_event: Callable[[dict], None],
        clock: Callable[[], float],
        invoke_function: Callable[[str, bytes], tuple[bytes, str | None]] | None = None,
    ) -> None:
        self._emit_event = emit_event
        self._clock = clock
        # Lifecycle hooks of native deployments invoke functions through this (ecs_hooks).
        self.invoke_function = invoke_function
        # Set by ecs_native.install: service deployment records and native deployments.
        self.service_deployments: Any = None
        self.native_deployments: Any = None
        # CreateService's deploymentConfiguration, for adopt() on the same thread.
        self._creating = threading.local()
        self._lock = threading.RLock()  # moto serves requests on many threads
        # Keeps events in order across flushing threads; re-entrant because an emit_event
        # callback may itself stop the simulator (which flushes).
        self._emit_lock = threading.RLock()
        self._outbox: list[dict[str, Any]] = []
        self._services: dict[tuple[str, str, str], ServiceState] = {}
        self.catalog = ImageCatalog()
        self.targets = TargetBook()
        self.network = NetworkAllocator()
        self.hosts = HostPlacer()
        self._patches = _MotoPatches(self)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    # ----- public interface -----------------------------------------------------------------

    def stop(self) -> None:
        """Stops the background thread and restores moto. Safe to call more than once."""
        global _ACTIVE
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._patches.restore()
        self._flush_events()
        if _ACTIVE is self:
            _ACTIVE = None

    def set_image_behaviour(
        self,
        image_ref: str,
        health: str | None = None,
        ready_seconds: float | None = None,
        stop_exit_code: int | None = None,
    ) -> None:
        """Overrides an image's behaviour, by digest (`sha256:…`) or full image reference.
        Applies to deployments started afterwards (ECS pins images per deployment)."""
        with self._lock:
            self.catalog.set_override(image_ref, health, ready_seconds, stop_exit_code)

    def interrupt_spot_task(self, task_arn: str) -> dict[str, Any]:
        """A Fargate Spot interruption of one simulated task (by ARN): what no AWS API can
        cause. Returns the task as DescribeTasks shows it; KeyError for an unknown task."""
        with self._lock:
            now = self._clock()
            for state in self._services.values():
                for task in state.tasks:
                    if task.arn == task_arn or task.id == task_arn:
                        state.spot_interruption(task, now)
                        state.publish(now)
                        return _json_ready(task.describe(now))
        raise KeyError(f"no simulated task {task_arn}")

    def tick(self) -> None:
        """Advances every rollout to the clock's current time."""
        with self._lock:
            if self._stopped:
                return
            now = self._clock()
            for key, state in list(self._services.items()):
                if not state.still_in_moto():
                    self._forget(key, state)
                    continue
                try:
                    state.tick(now)
                except Exception:
                    LOG.exception("ECS simulation of service %s failed", state.name)
        self._flush_events()

    # ----- lifecycle --------------------------------------------------------------------------

    def _start(self) -> None:
        self._patches.apply()
        with self._lock:
            for _account, _region, backend in list(ecs_models.ecs_backends.iter_backends()):
                for service in list(backend.services.values()):
                    self.adopt(backend, service)
        self._thread = threading.Thread(target=self._run, name="localcloud-ecs-sim", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:
                LOG.exception("ECS simulator tick failed")

    def _forget(self, key: tuple[str, str, str], state: ServiceState) -> None:
        """moto was reset, or the service deleted and created anew under the same name: drop
        the old simulation. After a reset moto's objects are gone, so only our records go;
        otherwise the old tasks' targets and ENIs are removed from moto as well."""
        reset = state.backend.services.get(state.key) is None
        for task in state.tasks:
            if reset:
                self.targets.forget(task)
                if task.network is not None:
                    self.network.forget(task.network)
                continue
            if task.targets:
                self.targets.finish_draining(task)
            if task.network is not None and task.last_status != STOPPED:
                self.network.release(state.account, state.region, task.network)
        self._services.pop(key, None)

    # ----- services (called by the patches, under the lock) -----------------------------------

    def _key(self, backend: Any, service: Any) -> tuple[str, str, str]:
        return (backend.account_id, backend.region_name, f"{service.cluster_name}:{service.name}")

    def state_of(self, backend: Any, service: Any) -> ServiceState | None:
        state = self._services.get(self._key(backend, service))
        if state is not None and state.moto_service is service:
            return state
        return None

    def adopt(self, backend: Any, service: Any) -> ServiceState | None:
        """Takes over a moto service: a rolling-update (ECS controller) REPLICA service with a
        task definition gets its first deployment at once. Others stay moto's."""
        if (service.deployment_controller or {}).get("type", "ECS") != "ECS":
            return None
        if service.scheduling_strategy == "DAEMON" or not service.task_definition:
            return None
        if service.status != "ACTIVE":
            return None
        existing = self.state_of(backend, service)
        if existing is not None:
            return existing
        replaced = self._services.get(self._key(backend, service))
        if replaced is not None:
            self._forget(self._key(backend, service), replaced)
        now = self._clock()
        state = ServiceState(self, backend, service, now)
        self._services[self._key(backend, service)] = state
        # CreateService's deploymentConfiguration decides how the first deployment is carried out.
        state.settings.merge(getattr(self._creating, "deployment_configuration", None))
        state.start_deployment(now)
        state.publish(now)
        return state

    def configure(
        self,
        backend: Any,
        service: Any,
        deployment_configuration: dict[str, Any] | None,
        grace_seconds: int | None,
    ) -> None:
        """CreateService's deploymentConfiguration and healthCheckGracePeriodSeconds, which
        moto's backend never sees."""
        state = self.state_of(backend, service)
        if state is None:
            # Not simulated (CODE_DEPLOY/EXTERNAL controller, DAEMON): moto drops the
            # configuration; DescribeServices still returns it as given.
            if deployment_configuration:
                service.deployment_configuration = dict(deployment_configuration)
            return
        state.settings.merge(deployment_configuration)
        if grace_seconds is not None:
            state.grace_seconds = int(grace_seconds)
        state.publish(self._clock())

    def on_update(self, backend: Any, service: Any, props: dict[str, Any], before: dict[str, Any]) -> None:
        """UpdateService, after moto applied it: a new deployment when the task definition,
        network or load balancers change or forceNewDeployment is set; otherwise only the
        desired count, deployment configuration or grace period change."""
        state = self.state_of(backend, service)
        if state is None:
            self.adopt(backend, service)
            return
        now = self._clock()
        state.settings.merge(props.get("deployment_configuration"))
        if props.get("health_check_grace_period_seconds") is not None:
            state.grace_seconds = int(props["health_check_grace_period_seconds"])
        if props.get("desired_count") is not None:
            state.set_desired_count(int(props["desired_count"]), now)
        new_deployment = bool(props.get("force_new_deployment"))
        if props.get("task_definition"):
            arn = backend.describe_task_definition(props["task_definition"]).arn
            service.task_definition = arn
            primary = state.primary
            new_deployment |= primary is None or primary.task_definition_arn != arn
        else:
            # moto leaves our ARN alone; restore it in case something else wrote it.
            service.task_definition = state.primary.task_definition_arn if state.primary else None
        for prop in ("network_configuration", "load_balancers"):
            if props.get(prop) is not None and props[prop] != before.get(prop):
                new_deployment = True
        if new_deployment and service.task_definition:
            state.start_deployment(now)
        state.publish(now)

    def on_delete(self, backend: Any, service: Any) -> None:
        state = self.state_of(backend, service)
        if state is not None:
            state.delete(self._clock())
            state.publish(self._clock())

    # ----- tasks (called by the patches, under the lock) ---------------------------------------

    def tasks_in(self, backend: Any, cluster_name: str) -> Iterable[SimTask]:
        for (account, region, _), state in self._services.items():
            if account == backend.account_id and region == backend.region_name:
                if state.cluster_name == cluster_name:
                    yield from state.tasks

    def find_task(self, backend: Any, cluster_name: str, task_ref: str) -> SimTask | None:
        task_id = task_ref.split("/")[-1]
        for task in self.tasks_in(backend, cluster_name):
            if task.id == task_id or task.arn == task_ref:
                return task
        return None

    def now(self) -> float:
        return self._clock()

    # ----- events -----------------------------------------------------------------------------

    def emit_deployment_event(
        self, state: ServiceState, deployment: Deployment, event_name: str, now: float
    ) -> None:
        detail = {
            "eventType": "ERROR" if event_name == "SERVICE_DEPLOYMENT_FAILED" else "INFO",
            "eventName": event_name,
            "deploymentId": deployment.id,
            "updatedAt": _iso_seconds(now),
            "reason": deployment.rollout_reason,
        }
        self._outbox.append(
            {
                "Source": "aws.ecs",
                "DetailType": "ECS Deployment State Change",
                "Resources": [state.arn],
                "Detail": json.dumps(detail),
            }
        )
        if self.service_deployments is not None:  # rolling updates' service deployment records
            self.service_deployments.rolling_event(state, deployment, event_name, now)

    def emit_task_event(self, state: ServiceState, task: SimTask, now: float) -> None:
        detail = _json_ready(task.describe(now))
        detail["updatedAt"] = _iso_millis(now)
        self._outbox.append(
            {
                "Source": "aws.ecs",
                "DetailType": "ECS Task State Change",
                "Resources": [task.arn],
                "Detail": json.dumps(detail),
            }
        )

    def _flush_events(self) -> None:
        """Hands queued events to the caller outside the simulator's lock: delivering one may
        call back into the local cloud (EventBridge → Step Functions → DescribeServices)."""
        with self._emit_lock:
            with self._lock:
                batch, self._outbox = self._outbox, []
            for entry in batch:
                try:
                    self._emit_event(entry)
                except Exception:
                    LOG.exception("emit_event failed for %s", entry.get("DetailType"))


# ============================================================================================
# Hooks into moto
# ============================================================================================


_ADDED = object()  # marks an attribute _MotoPatches added (removed again on restore)


class _MotoPatches:
    """Wraps moto's ECS and ELBv2 methods (class attributes, so every account and region)
    and puts the originals back on `restore`."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self._saved: list[tuple[type, str, Any]] = []

    def apply(self) -> None:
        backend = ecs_models.EC2ContainerServiceBackend
        responses = ecs_responses.EC2ContainerServiceResponse
        self._wrap(backend, "create_service", self._create_service)
        self._wrap(backend, "update_service", self._update_service)
        self._wrap(backend, "delete_service", self._delete_service)
        self._wrap(backend, "list_tasks", self._list_tasks)
        self._wrap(backend, "describe_tasks", self._describe_tasks)
        self._wrap(backend, "stop_task", self._stop_task)
        self._wrap(responses, "create_service", self._create_service_response)
        self._wrap(responses, "describe_tasks", self._describe_tasks_response)
        self._wrap(elbv2_models.ELBv2Backend, "describe_target_health", self._describe_target_health)
        # Refusals moto does not make (bad tags, UpdateService on CODE_DEPLOY/EXTERNAL services).
        for owner, name, make in ecs_rules.response_checks():
            self._wrap(owner, name, make)

    def restore(self) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            if original is _ADDED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

    def _add(self, owner: type, name: str, function: Callable[..., Any]) -> None:
        """Adds an attribute moto lacks (an ECS operation it does not serve)."""
        if name in owner.__dict__:
            raise RuntimeError(f"{owner.__name__}.{name} exists already")
        self._saved.append((owner, name, _ADDED))
        setattr(owner, name, function)

    def _wrap(self, owner: type, name: str, make: Callable[[Any], Callable[..., Any]]) -> None:
        original = owner.__dict__[name]
        wrapper = make(original)
        if not isinstance(wrapper, property):
            wrapper = functools.wraps(original)(wrapper)
        self._saved.append((owner, name, original))
        setattr(owner, name, wrapper)

    # ----- ECS backend ------------------------------------------------------------------------

    def _create_service(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def create_service(backend: Any, *args: Any, **kwargs: Any) -> Any:
            with sim._lock:
                service = original(backend, *args, **kwargs)
                ecs_rules.fix_service_arn_format(service, backend)
                if not service.network_configuration:
                    # moto stores {} for "not given" (bridge/host mode): ECS omits the member.
                    service.network_configuration = None
                sim.adopt(backend, service)
                return service

        return create_service

    def _update_service(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def update_service(backend: Any, service_properties: dict[str, Any]) -> Any:
            props = dict(service_properties)  # moto pops what it reads
            with sim._lock:
                cluster = props.get("cluster", "default")
                name = str(props.get("service", "")).split("/")[-1]
                before = {}
                try:
                    current = backend._get_service(cluster, name)
                    before = {
                        "network_configuration": current.network_configuration,
                        "load_balancers": list(current.load_balancers or []),
                    }
                except Exception:
                    pass  # the original raises the proper error
                service = original(backend, service_properties)
                sim.on_update(backend, service, props, before)
                return service

        return update_service

    def _delete_service(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def delete_service(backend: Any, *args: Any, **kwargs: Any) -> Any:
            with sim._lock:
                service = original(backend, *args, **kwargs)
                sim.on_delete(backend, service)
                return service

        return delete_service

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
                found: list[Any] = []
                if not service_name:
                    # moto's own tasks (RunTask/StartTask) can never belong to a service.
                    found = original(
                        backend, cluster_str, container_instance, family, started_by,
                        service_name, desiredStatus,
                    )
                if container_instance:
                    return found  # simulated tasks run on Fargate capacity, not on instances
                cluster = backend._get_cluster(cluster_str or "default")
                wanted_status = desiredStatus or RUNNING  # ECS lists RUNNING tasks by default
                wanted_service = service_name.split("/")[-1] if service_name else None
                for task in sim.tasks_in(backend, cluster.name):
                    if task.desired_status != wanted_status:
                        continue
                    if wanted_service and task.service.name != wanted_service:
                        continue
                    if started_by and task.deployment.id != started_by:
                        continue
                    if family and task.family != family.split("/")[-1].split(":")[0]:
                        continue
                    found.append(SimpleNamespace(task_arn=task.arn))
                return found

        return list_tasks

    def _describe_tasks(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def describe_tasks(backend: Any, cluster_str: str, tasks: list[str]) -> list[Any]:
            with sim._lock:
                found = list(original(backend, cluster_str, tasks))  # validates the arguments
                cluster = backend._get_cluster(cluster_str)
                now = sim.now()
                for ref in tasks:
                    task = sim.find_task(backend, cluster.name, ref)
                    if task is not None:
                        found.append(task.describe(now))
                return found

        return describe_tasks

    def _stop_task(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def stop_task(backend: Any, cluster_str: str, task_str: str, reason: str) -> Any:
            with sim._lock:
                cluster = backend._get_cluster(cluster_str)
                task = sim.find_task(backend, cluster.name, task_str)
                if task is None:
                    return original(backend, cluster_str, task_str, reason)
                now = sim.now()
                task.service.user_stop(task, reason, now)
                task.service.publish(now)
                return task.describe(now)

        return stop_task

    # ----- ECS responses ----------------------------------------------------------------------

    def _create_service_response(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def create_service(response: Any) -> Any:
            sim._creating.deployment_configuration = response._get_param("deploymentConfiguration")
            try:
                result = original(response)
            finally:
                sim._creating.deployment_configuration = None
            service = result.result["service"]
            with sim._lock:
                sim.configure(
                    response.ecs_backend,
                    service,
                    response._get_param("deploymentConfiguration"),
                    response._get_param("healthCheckGracePeriodSeconds"),
                )
            return result

        return create_service

    def _describe_tasks_response(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def describe_tasks(response: Any) -> Any:
            result = original(response)
            found = set()
            for task in result.result["tasks"]:
                arn = task["taskArn"] if isinstance(task, dict) else task.task_arn
                found.update({arn, arn.split("/")[-1]})
            cluster = str(response._get_param("cluster", "default")).split("/")[-1]
            backend = response.ecs_backend
            failures = []
            for ref in response._get_param("tasks", []):
                if ref in found or ref.split("/")[-1] in found:
                    continue
                arn = ref if ref.startswith("arn:") else (
                    f"arn:aws:ecs:{backend.region_name}:{backend.account_id}:task/{cluster}/{ref}"
                )
                failures.append({"arn": arn, "reason": "MISSING"})
            result.result["failures"] = failures
            return result

        return describe_tasks

    # ----- ELBv2 ------------------------------------------------------------------------------

    def _describe_target_health(self, original: Callable[..., Any]) -> Callable[..., Any]:
        sim = self._sim

        def describe_target_health(
            backend: Any, target_group_arn: str, targets: list[dict[str, Any]]
        ) -> list[Any]:
            with sim._lock:
                statuses = original(backend, target_group_arn, targets)
                sim.targets.overlay(target_group_arn, statuses, sim.now())
                return statuses

        return describe_target_health


# ============================================================================================
# Entry point
# ============================================================================================

_ACTIVE: Simulator | None = None


def install(
    emit_event: Callable[[dict], None],
    clock: Callable[[], float] = time.time,
    invoke_function: Callable[[str, bytes], tuple[bytes, str | None]] | None = None,
) -> Simulator:
    """Patches moto's in-process ECS and ELBv2 backends and starts the simulation thread.
    `emit_event` receives PutEvents entries (Source, DetailType, Resources, Detail);
    `invoke_function(function_arn, payload)` runs a lifecycle hook's function synchronously and
    answers (payload, function error or None), as Lambda's Invoke does."""
    global _ACTIVE
    if _ACTIVE is not None:
        raise RuntimeError("the ECS simulator is already installed; stop() it first")
    sim = Simulator(emit_event, clock, invoke_function)
    # Blue/green, linear and canary deployments, service deployments and their API (ecs_native);
    # installed before the first service is adopted.
    ecs_native.install(sim)
    sim._start()
    # ECS reads lag behind writes (eventual consistency): ecs_consistency.py, sim.consistency.
    sim.consistency = ecs_consistency.install(sim)
    _ACTIVE = sim
    return sim
