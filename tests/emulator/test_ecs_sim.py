"""The local cloud's ECS rollout simulator, driven only through the public AWS APIs (boto3
against a moto server in this process), the way deckhand's functions will see it.

Run: .venv/bin/python -m pytest tests/emulator/test_ecs_sim.py -q
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ → `localcloud`

import polling  # noqa: E402
from localcloud import ecs_sim  # noqa: E402
from moto.ecs.models import EC2ContainerServiceBackend  # noqa: E402
from moto.elbv2.models import ELBv2Backend  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"
CONTAINER_PORT = 8080
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

pytestmark = pytest.mark.timeout(45)


# ------------------------------------------------------------------------------------------
# Fixtures: one moto server for the module, a fresh simulator and fresh resources per test
# ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint():
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ.setdefault(name, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Sim:
    def __init__(self, simulator: ecs_sim.Simulator, events: list[dict]):
        self.simulator = simulator
        self.events = events

    def deployment_events(self, service_arn: str) -> list[dict[str, Any]]:
        return [
            json.loads(e["Detail"])
            for e in list(self.events)
            if e["DetailType"] == "ECS Deployment State Change" and e["Resources"] == [service_arn]
        ]

    def task_events(self, task_arn: str) -> list[dict[str, Any]]:
        return [
            json.loads(e["Detail"])
            for e in list(self.events)
            if e["DetailType"] == "ECS Task State Change" and e["Resources"] == [task_arn]
        ]


@pytest.fixture
def sim(endpoint):
    events: list[dict] = []
    simulator = ecs_sim.install(events.append)
    # These tests follow a rollout moment by moment and compare ECS's state with the load
    # balancer's at the same instant, so they read ECS without the default lag of the local cloud
    # (ecs_consistency.DEFAULT_LAG_SECONDS); the lag itself is tested in test_consistency.py.
    simulator.consistency.lag_seconds = 0
    yield Sim(simulator, events)
    simulator.stop()


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """The shared poller, with the simulator's shorter timings."""
    return polling.wait_until(what, probe, timeout, interval)


class World:
    """A VPC with two subnets, an ALB with an ip target group and a listener, an ECS cluster
    and an ECR repository, all with names unique to one test."""

    def __init__(self, endpoint: str, sim: Sim):
        self.sim = sim
        self.ec2, self.elb, self.ecs, self.ecr = (
            boto3.client(name, endpoint_url=endpoint, region_name=REGION)
            for name in ("ec2", "elbv2", "ecs", "ecr")
        )
        suffix = uuid.uuid4().hex[:8]
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet_cidrs = {}
        for third, zone in ((1, "a"), (2, "b")):
            cidr = f"10.0.{third}.0/24"
            subnet = self.ec2.create_subnet(
                VpcId=self.vpc, CidrBlock=cidr, AvailabilityZone=f"{REGION}{zone}"
            )["Subnet"]["SubnetId"]
            self.subnet_cidrs[subnet] = ipaddress.ip_network(cidr)
        self.subnets = list(self.subnet_cidrs)
        self.security_group = self.ec2.create_security_group(
            GroupName=f"web-{suffix}", Description="web", VpcId=self.vpc
        )["GroupId"]
        alb = self.elb.create_load_balancer(
            Name=f"alb-{suffix}", Subnets=self.subnets, SecurityGroups=[self.security_group]
        )["LoadBalancers"][0]["LoadBalancerArn"]
        self.target_group = self.elb.create_target_group(
            Name=f"tg-{suffix}",
            Protocol="HTTP",
            Port=CONTAINER_PORT,
            VpcId=self.vpc,
            TargetType="ip",
            HealthCheckPath="/health",
        )["TargetGroups"][0]["TargetGroupArn"]
        self.listener = self.elb.create_listener(
            LoadBalancerArn=alb,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": self.target_group}],
        )["Listeners"][0]["ListenerArn"]
        self.cluster = f"prod-{suffix}"
        self.ecs.create_cluster(clusterName=self.cluster)
        self.repository = f"web-{suffix}"
        self.repository_uri = self.ecr.create_repository(repositoryName=self.repository)[
            "repository"
        ]["repositoryUri"]
        self.family = f"web-{suffix}"
        self.services: list[str] = []

    # ----- building blocks -----------------------------------------------------------------

    def push(self, tag: str, health: str | None = None, ready: float | None = None) -> str:
        """PutImage of an OCI manifest carrying the simulator's annotations; returns the image
        pinned by digest, as deckhand deploys it."""
        annotations = {"org.opencontainers.image.title": tag}
        if health is not None:
            annotations["deckhand.sim/health"] = health
        if ready is not None:
            annotations["deckhand.sim/ready-seconds"] = str(ready)
        layer = hashlib.sha256(os.urandom(16)).hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(tag.encode()).hexdigest(),
                "size": 1234,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{layer}",
                    "size": 5678,
                }
            ],
            "annotations": annotations,
        }
        digest = self.ecr.put_image(
            repositoryName=self.repository,
            imageManifest=json.dumps(manifest),
            imageManifestMediaType=OCI_MANIFEST,
            imageTag=tag,
        )["image"]["imageId"]["imageDigest"]
        return f"{self.repository_uri}@{digest}"

    def task_definition(
        self, image: str, extra_containers: list[dict] | None = None, health_check: dict | None = None
    ) -> str:
        web = {
            "name": "web",
            "image": image,
            "essential": True,
            "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
        }
        if health_check:
            web["healthCheck"] = health_check
        containers = [web] + (extra_containers or [])
        return self.ecs.register_task_definition(
            family=self.family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=containers,
        )["taskDefinition"]["taskDefinitionArn"]

    def create_service(
        self,
        task_definition: str,
        desired: int = 2,
        deployment_configuration: dict | None = None,
        grace: int | None = None,
        name: str = "web",
        load_balanced: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if deployment_configuration is not None:
            kwargs["deploymentConfiguration"] = deployment_configuration
        if grace is not None:
            kwargs["healthCheckGracePeriodSeconds"] = grace
        service = self.ecs.create_service(
            cluster=self.cluster,
            serviceName=name,
            taskDefinition=task_definition,
            desiredCount=desired,
            launchType="FARGATE",
            loadBalancers=[
                {
                    "targetGroupArn": self.target_group,
                    "containerName": "web",
                    "containerPort": CONTAINER_PORT,
                }
            ]
            if load_balanced
            else [],
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": self.subnets,
                    "securityGroups": [self.security_group],
                    "assignPublicIp": "DISABLED",
                }
            },
            tags=[{"key": "deckhand:track", "value": f"web={self.repository}:main"}],
            **kwargs,
        )["service"]
        self.services.append(name)
        return service

    # ----- observing ------------------------------------------------------------------------

    def service(self, name: str = "web") -> dict[str, Any]:
        return self.ecs.describe_services(cluster=self.cluster, services=[name])["services"][0]

    def targets(self) -> dict[str, dict[str, Any]]:
        described = self.elb.describe_target_health(TargetGroupArn=self.target_group)
        return {
            d["Target"]["Id"]: {**d["TargetHealth"], "Port": d["Target"]["Port"]}
            for d in described["TargetHealthDescriptions"]
        }

    def target_states(self) -> dict[str, str]:
        return {ip: t["State"] for ip, t in self.targets().items()}

    def tasks(self, name: str = "web", **filters: Any) -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=self.cluster, serviceName=name, **filters)["taskArns"]
        if not arns:
            return []
        return self.ecs.describe_tasks(cluster=self.cluster, tasks=arns)["tasks"]

    def all_tasks(self, name: str = "web") -> list[dict[str, Any]]:
        return self.tasks(name) + self.tasks(name, desiredStatus="STOPPED")

    def deployment(self, deployment_id: str, name: str = "web") -> dict[str, Any] | None:
        return next((d for d in self.service(name)["deployments"] if d["id"] == deployment_id), None)

    def wait_completed(
        self, task_definition: str | None = None, name: str = "web", timeout: float = 20
    ) -> dict:
        def done():
            service = self.service(name)
            deployments = service["deployments"]
            if len(deployments) != 1 or deployments[0]["rolloutState"] != "COMPLETED":
                return None
            if task_definition and deployments[0]["taskDefinition"] != task_definition:
                return None
            return service

        return wait_until(f"{name} to complete on {task_definition or 'any revision'}", done, timeout)

    def close(self) -> None:
        for name in self.services:
            try:
                self.ecs.delete_service(cluster=self.cluster, service=name, force=True)
            except Exception:
                pass


@pytest.fixture
def world(endpoint, sim):
    w = World(endpoint, sim)
    yield w
    w.close()


def ip_of(task: dict[str, Any]) -> str:
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    return details["privateIPv4Address"]


# ------------------------------------------------------------------------------------------
# Creation
# ------------------------------------------------------------------------------------------


def test_create_service_rolls_out_to_healthy_targets(world, sim):
    td = world.task_definition(world.push("v1", ready=1))
    created = world.create_service(td, desired=2)

    [deployment] = created["deployments"]
    assert deployment["status"] == "PRIMARY"
    assert deployment["rolloutState"] == "IN_PROGRESS"
    assert deployment["taskDefinition"] == td
    assert deployment["id"].startswith("ecs-svc/")
    assert created["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }

    # Targets appear as soon as tasks are RUNNING, `initial` until the application is ready.
    def two_initial_targets():
        targets = world.targets()
        states = [t["State"] for t in targets.values()]
        return targets if states == ["initial", "initial"] else None

    initial = wait_until("two initial targets", two_initial_targets)
    assert {t["Reason"] for t in initial.values()} <= {
        "Elb.RegistrationInProgress",
        "Elb.InitialHealthChecking",
    }

    service = world.wait_completed(td)
    [done] = service["deployments"]
    assert done["id"] == deployment["id"]
    assert (done["desiredCount"], done["runningCount"], done["pendingCount"]) == (2, 2, 0)
    assert done["failedTasks"] == 0
    assert done["rolloutStateReason"] == f"ECS deployment {done['id']} completed."
    assert done["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == world.subnets
    assert (service["runningCount"], service["pendingCount"], service["desiredCount"]) == (2, 0, 2)
    assert service["taskDefinition"] == td

    tasks = world.tasks()
    assert len(tasks) == 2
    ips = {ip_of(t) for t in tasks}
    targets = world.targets()
    assert set(targets) == ips
    assert all(t["State"] == "healthy" and t["Port"] == CONTAINER_PORT for t in targets.values())
    # One task per subnet, each address inside its subnet.
    subnets_used = set()
    for task in tasks:
        details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
        subnets_used.add(details["subnetId"])
        address = ipaddress.ip_address(details["privateIPv4Address"])
        assert address in world.subnet_cidrs[details["subnetId"]]
        assert task["attachments"][0]["type"] == "ElasticNetworkInterface"
        assert task["lastStatus"] == task["desiredStatus"] == "RUNNING"
        assert task["startedBy"] == done["id"]
        assert task["group"] == "service:web"
        assert task["launchType"] == "FARGATE"
        assert task["taskDefinitionArn"] == td
        assert task["clusterArn"].endswith(f":cluster/{world.cluster}")
        assert task["createdAt"] <= task["startedAt"]
        [container] = task["containers"]
        assert container["name"] == "web" and container["lastStatus"] == "RUNNING"
        assert container["networkInterfaces"][0]["privateIpv4Address"] == details["privateIPv4Address"]
        assert container["imageDigest"] == container["image"].split("@")[1]
        # The ENI exists in EC2 as well.
        world.ec2.describe_network_interfaces(NetworkInterfaceIds=[details["networkInterfaceId"]])
    assert subnets_used == set(world.subnets)

    messages = [e["message"] for e in service["events"]]
    assert messages[0] == "(service web) has reached a steady state."
    assert any(m.startswith("(service web) registered 2 targets in (target-group") for m in messages)
    assert any(m.startswith("(service web) has started 2 tasks") for m in messages)

    events = wait_until(
        "the COMPLETED event",
        lambda: len(sim.deployment_events(service["serviceArn"])) == 2
        and sim.deployment_events(service["serviceArn"]),
    )
    assert [(e["eventName"], e["deploymentId"]) for e in events] == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", done["id"]),
        ("SERVICE_DEPLOYMENT_COMPLETED", done["id"]),
    ]
    assert events[0]["eventType"] == "INFO"
    assert events[1]["reason"] == f"ECS deployment {done['id']} completed."
    assert events[0]["updatedAt"].endswith("Z")
    # Each task announced RUNNING on EventBridge too.
    assert all(sim.task_events(t["taskArn"])[0]["lastStatus"] == "RUNNING" for t in tasks)


# ------------------------------------------------------------------------------------------
# Rolling updates
# ------------------------------------------------------------------------------------------


def test_update_to_healthy_image_rolls_over_and_drains_old_tasks(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.5))
    world.create_service(td1, desired=2)
    first = world.wait_completed(td1)["deployments"][0]["id"]
    old_ips = {ip_of(t) for t in world.tasks()}

    td2 = world.task_definition(world.push("v2", ready=0.5))
    updated = world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)
    primary, active = updated["service"]["deployments"]
    assert (primary["status"], primary["taskDefinition"]) == ("PRIMARY", td2)
    assert primary["rolloutState"] == "IN_PROGRESS"
    assert (active["status"], active["taskDefinition"], active["id"]) == ("ACTIVE", td1, first)
    assert updated["service"]["taskDefinition"] == td2

    # Old targets drain once the new ones are healthy.
    draining = wait_until(
        "an old target draining",
        lambda: {ip: t for ip, t in world.targets().items() if t["State"] == "draining"},
    )
    assert set(draining) <= old_ips
    assert {t["Reason"] for t in draining.values()} == {"Target.DeregistrationInProgress"}

    service = world.wait_completed(td2)
    assert service["deployments"][0]["id"] == primary["id"]
    new_ips = {ip_of(t) for t in world.tasks()}
    assert len(new_ips) == 2 and not new_ips & old_ips
    wait_until("only new targets", lambda: set(world.targets()) == new_ips)
    assert set(world.target_states().values()) == {"healthy"}

    stopped = world.tasks(desiredStatus="STOPPED")
    assert {ip_of(t) for t in stopped} == old_ips
    for task in stopped:
        assert task["lastStatus"] == "STOPPED"
        assert task["stopCode"] == "ServiceSchedulerInitiated"
        assert task["stoppedReason"] == f"Scaling activity initiated by (deployment {primary['id']})"
        assert task["startedBy"] == first
        assert task["stoppingAt"] <= task["stoppedAt"]
        assert task["containers"][0]["exitCode"] == 143  # SIGTERM (ecs_sim.SIGTERM_EXIT_CODE)
    stop_events = sim.task_events(stopped[0]["taskArn"])
    assert stop_events[-1]["lastStatus"] == "STOPPED"
    # The stop is announced when it is decided, before the target drains, then at each lastStatus.
    stopping = [(e["lastStatus"], e["desiredStatus"]) for e in stop_events[1:]]
    assert stopping[0] == ("RUNNING", "STOPPED"), stop_events
    assert [last for last, _ in stopping] == ["RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]
    assert stop_events[1]["stopCode"] == "ServiceSchedulerInitiated" and not stop_events[1].get("stoppedAt")

    names = [(e["eventName"], e["deploymentId"]) for e in sim.deployment_events(service["serviceArn"])]
    assert names[-2:] == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", primary["id"]),
        ("SERVICE_DEPLOYMENT_COMPLETED", primary["id"]),
    ]


def test_force_new_deployment_with_the_same_revision_replaces_tasks(world, sim):
    td = world.task_definition(world.push("v1", ready=0.5))
    world.create_service(td, desired=1)
    first = world.wait_completed(td)["deployments"][0]["id"]
    [old_task] = world.tasks()

    updated = world.ecs.update_service(
        cluster=world.cluster, service="web", forceNewDeployment=True
    )["service"]
    assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
    second = updated["deployments"][0]["id"]
    assert second != first
    assert updated["deployments"][0]["taskDefinition"] == td

    world.wait_completed(td)
    assert world.service()["deployments"][0]["id"] == second
    [new_task] = world.tasks()
    assert new_task["taskArn"] != old_task["taskArn"]
    assert new_task["startedBy"] == second


def test_desired_count_update_scales_without_a_new_deployment(world, sim):
    td = world.task_definition(world.push("v1", ready=0.5))
    world.create_service(td, desired=1)
    first = world.wait_completed(td)["deployments"][0]["id"]

    updated = world.ecs.update_service(cluster=world.cluster, service="web", desiredCount=3)["service"]
    assert [d["id"] for d in updated["deployments"]] == [first]
    assert updated["desiredCount"] == 3

    wait_until(
        "three healthy targets",
        lambda: list(world.target_states().values()) == ["healthy"] * 3,
    )
    service = world.service()
    assert [(d["id"], d["runningCount"], d["rolloutState"]) for d in service["deployments"]] == [
        (first, 3, "COMPLETED")
    ]
    wait_until(
        "a second steady state",
        lambda: [e["message"] for e in world.service()["events"]].count(
            "(service web) has reached a steady state."
        )
        == 2,
    )


@pytest.mark.parametrize(
    ("minimum", "maximum"),
    [(100, 200), (50, 100)],
    ids=["min100-max200", "min50-max100"],
)
def test_minimum_healthy_and_maximum_percent_are_respected(world, sim, minimum, maximum):
    desired, ready = 2, 0.5
    td1 = world.task_definition(world.push("v1", ready=ready))
    world.create_service(
        td1,
        desired=desired,
        deployment_configuration={"minimumHealthyPercent": minimum, "maximumPercent": maximum},
    )
    world.wait_completed(td1)
    old = {t["taskArn"] for t in world.tasks()}

    td2 = world.task_definition(world.push("v2", ready=ready))
    world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)
    min_healthy = desired * minimum // 100
    lowest_healthy = desired
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        healthy = sum(1 for s in world.target_states().values() if s == "healthy")
        lowest_healthy = min(lowest_healthy, healthy)
        service = world.service()
        if len(service["deployments"]) == 1 and service["deployments"][0]["rolloutState"] == "COMPLETED":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("rollout did not complete")
    assert lowest_healthy >= min_healthy
    assert world.service()["deployments"][0]["taskDefinition"] == td2

    # Replay the task history: never more tasks in flight (launched, not yet STOPPED) than
    # maximumPercent allows.
    tasks = world.all_tasks()
    changes = []
    for task in tasks:
        changes.append((task["createdAt"].timestamp(), +1))
        if "stoppedAt" in task:
            changes.append((task["stoppedAt"].timestamp(), -1))
    in_flight = peak = 0
    for _, delta in sorted(changes, key=lambda c: (c[0], c[1])):
        in_flight += delta
        peak = max(peak, in_flight)
    assert peak <= desired * maximum // 100

    new_tasks = [t for t in tasks if t["taskArn"] not in old]
    old_tasks = [t for t in tasks if t["taskArn"] in old]
    first_new = min(t["createdAt"] for t in new_tasks)
    first_old_stop = min(t["stoppingAt"] for t in old_tasks)
    if maximum == 200:
        # Room for the new tasks at once; old ones stop only after new ones are healthy.
        assert all(t["createdAt"] < first_old_stop for t in new_tasks)
        assert first_old_stop.timestamp() >= min(t["startedAt"] for t in new_tasks).timestamp() + ready - 0.05
    else:
        # No room above 100 %: one old task has to go first.
        assert first_old_stop <= first_new


# ------------------------------------------------------------------------------------------
# Failing rollouts
# ------------------------------------------------------------------------------------------

BREAKER_WITH_ROLLBACK = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}


def test_unhealthy_image_keeps_old_tasks_serving_and_breaker_rolls_back(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.5))
    arn = world.create_service(td1, desired=2, deployment_configuration=BREAKER_WITH_ROLLBACK)["serviceArn"]
    first = world.wait_completed(td1)["deployments"][0]["id"]
    old_ips = {ip_of(t) for t in world.tasks()}

    td2 = world.task_definition(world.push("v2", health="unhealthy", ready=0.5))
    second = world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)[
        "service"
    ]["deployments"][0]["id"]

    # New targets fail their health checks while the old ones keep serving.
    def unhealthy_beside_healthy_old():
        targets = world.targets()
        bad = {ip: t for ip, t in targets.items() if t["State"] == "unhealthy"}
        old_ok = all(targets.get(ip, {}).get("State") == "healthy" for ip in old_ips)
        return bad if bad and old_ok else None

    bad = wait_until("unhealthy new targets beside healthy old ones", unhealthy_beside_healthy_old)
    assert not set(bad) & old_ips
    assert {t["Reason"] for t in bad.values()} == {"Target.FailedHealthChecks"}

    # The breaker trips: the failed deployment is shown ACTIVE/FAILED while the last COMPLETED
    # deployment, same id, rolls back in as PRIMARY.
    def rolling_back():
        deployments = world.service()["deployments"]
        states = {d["id"]: d for d in deployments}
        if second in states and states[second]["rolloutState"] == "FAILED":
            return deployments
        return None

    deployments = wait_until("the failed deployment", rolling_back)
    failed = next(d for d in deployments if d["id"] == second)
    assert failed["status"] == "ACTIVE"
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: task failed to start."
    assert failed["failedTasks"] >= 3
    assert deployments[0]["id"] == first and deployments[0]["status"] == "PRIMARY"
    assert deployments[0]["taskDefinition"] == td1

    service = world.wait_completed(td1)
    assert service["deployments"][0]["id"] == first
    assert service["taskDefinition"] == td1
    # Never dropped below 100 %: the very same old tasks are still the ones serving.
    assert {ip_of(t) for t in world.tasks()} == old_ips
    wait_until("only the old targets", lambda: world.target_states() == {ip: "healthy" for ip in old_ips})
    failed_tasks = world.tasks(startedBy=second, desiredStatus="STOPPED")
    assert len(failed_tasks) >= 3
    assert all(
        t["stoppedReason"] == f"Task failed ELB health checks in (target-group {world.target_group})"
        for t in failed_tasks
        if t["stopCode"] == "ServiceSchedulerInitiated" and "ELB" in t["stoppedReason"]
    )
    assert any("ELB health checks" in t["stoppedReason"] for t in failed_tasks)

    events = [(e["eventName"], e["deploymentId"], e["reason"]) for e in sim.deployment_events(arn)]
    assert events[-4:] == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", second, f"ECS deployment {second} in progress."),
        ("SERVICE_DEPLOYMENT_FAILED", second, "ECS deployment circuit breaker: task failed to start."),
        (
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            first,
            f"ECS deployment circuit breaker: rolling back to deploymentId {first}.",
        ),
        ("SERVICE_DEPLOYMENT_COMPLETED", first, f"ECS deployment {first} completed."),
    ]
    assert sim.deployment_events(arn)[-3]["eventType"] == "ERROR"
    messages = [e["message"] for e in service["events"]]
    assert f"(service web) rolling back to deployment {first}." in messages
    assert any("is unhealthy in (target-group" in m for m in messages)


def test_crash_image_trips_the_breaker_and_rolls_back(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.5))
    arn = world.create_service(td1, desired=2, deployment_configuration=BREAKER_WITH_ROLLBACK)["serviceArn"]
    first = world.wait_completed(td1)["deployments"][0]["id"]

    td2 = world.task_definition(world.push("v2", health="crash"))
    second = world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)[
        "service"
    ]["deployments"][0]["id"]

    failed = wait_until(
        "the FAILED deployment",
        lambda: (world.deployment(second) or {}).get("rolloutState") == "FAILED"
        and world.deployment(second),
    )
    assert failed["failedTasks"] >= 3
    world.wait_completed(td1)
    assert world.service()["deployments"][0]["id"] == first

    crashed = world.tasks(startedBy=second, desiredStatus="STOPPED")
    assert len(crashed) >= 3
    for task in crashed:
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == "Essential container in task exited"
        assert task["containers"][0]["exitCode"] == 1
        # It did reach RUNNING, about a second before the container exited.
        assert 0.5 <= (task["stoppingAt"] - task["startedAt"]).total_seconds() <= 1.5
    assert [e["eventName"] for e in sim.deployment_events(arn)][-3:] == [
        "SERVICE_DEPLOYMENT_FAILED",
        "SERVICE_DEPLOYMENT_IN_PROGRESS",
        "SERVICE_DEPLOYMENT_COMPLETED",
    ]


def test_crash_without_circuit_breaker_keeps_replacing_tasks(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.5))
    arn = world.create_service(td1, desired=1)["serviceArn"]
    world.wait_completed(td1)
    [old] = world.tasks()

    td2 = world.task_definition(world.push("v2", health="crash"))
    second = world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)[
        "service"
    ]["deployments"][0]["id"]

    # Three failures would trip a breaker (desired 1 → threshold 3); without one ECS goes on.
    wait_until(
        "three crashed tasks",
        lambda: len(world.tasks(startedBy=second, desiredStatus="STOPPED")) >= 3,
    )
    primary, active = world.service()["deployments"]
    assert (primary["id"], primary["rolloutState"]) == (second, "IN_PROGRESS")
    assert primary["failedTasks"] >= 3
    assert (active["taskDefinition"], active["runningCount"]) == (td1, 1)
    assert world.target_states()[ip_of(old)] == "healthy"
    assert "SERVICE_DEPLOYMENT_FAILED" not in [e["eventName"] for e in sim.deployment_events(arn)]


def test_first_deployment_that_cannot_pull_stalls_with_nothing_to_roll_back_to(world, sim):
    missing = f"{world.repository_uri}:never-pushed"
    td = world.task_definition(missing)
    arn = world.create_service(td, desired=1, deployment_configuration=BREAKER_WITH_ROLLBACK)["serviceArn"]

    failed = wait_until(
        "the FAILED deployment",
        lambda: next((d for d in world.service()["deployments"] if d["rolloutState"] == "FAILED"), None),
    )
    assert failed["status"] == "PRIMARY" and failed["failedTasks"] == 3
    stopped = world.tasks(desiredStatus="STOPPED")
    assert all(t["stopCode"] == "TaskFailedToStart" for t in stopped)
    assert all(t["stoppedReason"].startswith("CannotPullContainerError") for t in stopped)
    assert all("startedAt" not in t for t in stopped)
    # A FAILED deployment launches nothing more.
    time.sleep(1.5)
    assert len(world.tasks(desiredStatus="STOPPED")) == len(stopped)
    assert world.tasks() == []
    assert [e["eventName"] for e in sim.deployment_events(arn)] == [
        "SERVICE_DEPLOYMENT_IN_PROGRESS",
        "SERVICE_DEPLOYMENT_FAILED",
    ]


# ------------------------------------------------------------------------------------------
# Health-check grace period
# ------------------------------------------------------------------------------------------


def test_grace_period_protects_slow_starting_tasks(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.5))
    arn = world.create_service(
        td1, desired=1, deployment_configuration=BREAKER_WITH_ROLLBACK, grace=6
    )["serviceArn"]
    world.wait_completed(td1)
    assert world.service()["healthCheckGracePeriodSeconds"] == 6

    td2 = world.task_definition(world.push("v2", ready=4))
    second = world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)[
        "service"
    ]["deployments"][0]["id"]

    # The load balancer's first verdict comes before the application is ready …
    wait_until("the slow target unhealthy", lambda: "unhealthy" in world.target_states().values())
    # … but within the grace period the scheduler leaves the task alone, and it turns healthy.
    service = world.wait_completed(td2)
    assert service["deployments"][0]["id"] == second
    assert service["deployments"][0]["failedTasks"] == 0
    assert [t for t in world.tasks(startedBy=second, desiredStatus="STOPPED")] == []
    assert "SERVICE_DEPLOYMENT_FAILED" not in [e["eventName"] for e in sim.deployment_events(arn)]


def test_without_grace_period_slow_starting_tasks_are_replaced(world, sim):
    td1 = world.task_definition(world.push("v1", ready=0.5))
    world.create_service(td1, desired=1)
    world.wait_completed(td1)

    td2 = world.task_definition(world.push("v2", ready=4))
    second = world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)[
        "service"
    ]["deployments"][0]["id"]

    [stopped] = wait_until(
        "the slow task stopped",
        lambda: world.tasks(startedBy=second, desiredStatus="STOPPED")[:1],
    )
    assert stopped["stoppedReason"] == f"Task failed ELB health checks in (target-group {world.target_group})"
    assert stopped["stopCode"] == "ServiceSchedulerInitiated"
    assert world.service()["deployments"][0]["failedTasks"] >= 1


def test_container_health_checks_gate_a_service_without_load_balancer(world, sim):
    check = {"command": ["CMD-SHELL", "curl -f localhost:8080/health"], "interval": 5, "retries": 2}
    td1 = world.task_definition(world.push("v1", ready=0.5), health_check=check)
    world.create_service(td1, desired=1, load_balanced=False)
    world.wait_completed(td1)
    [task] = world.tasks()
    assert task["healthStatus"] == "HEALTHY"
    assert task["containers"][0]["healthStatus"] == "HEALTHY"
    assert world.target_states() == {}

    td2 = world.task_definition(world.push("v2", health="unhealthy", ready=0.5), health_check=check)
    second = world.ecs.update_service(cluster=world.cluster, service="web", taskDefinition=td2)[
        "service"
    ]["deployments"][0]["id"]
    [stopped] = wait_until(
        "a task failing its container health check",
        lambda: world.tasks(startedBy=second, desiredStatus="STOPPED")[:1],
    )
    assert stopped["stoppedReason"] == "Task failed container health checks"
    assert stopped["healthStatus"] == "UNHEALTHY"
    assert world.tasks(startedBy=world.service()["deployments"][1]["id"])[0]["healthStatus"] == "HEALTHY"


# ------------------------------------------------------------------------------------------
# Task APIs and image behaviour
# ------------------------------------------------------------------------------------------


def test_task_apis_filter_stop_and_report_missing_tasks(world, sim):
    sidecar = {"name": "proxy", "image": "public.ecr.aws/nginx/nginx:1.27", "essential": False}
    td = world.task_definition(world.push("v1", ready=0.5), extra_containers=[sidecar])
    world.create_service(td, desired=2, propagateTags="SERVICE")
    deployment = world.wait_completed(td)["deployments"][0]["id"]

    listed = world.ecs.list_tasks(cluster=world.cluster)["taskArns"]
    assert len(listed) == 2
    assert world.ecs.list_tasks(cluster=world.cluster, startedBy=deployment)["taskArns"] == listed
    assert world.ecs.list_tasks(cluster=world.cluster, family=world.family)["taskArns"] == listed
    assert world.ecs.list_tasks(cluster=world.cluster, startedBy="ecs-svc/1")["taskArns"] == []
    assert world.ecs.list_tasks(cluster=world.cluster, serviceName="other")["taskArns"] == []
    assert world.ecs.list_tasks(cluster=world.cluster, desiredStatus="STOPPED")["taskArns"] == []

    described = world.ecs.describe_tasks(cluster=world.cluster, tasks=[listed[0], "0123abcd"])
    assert [t["taskArn"] for t in described["tasks"]] == [listed[0]]
    assert described["failures"] == [
        {"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{world.cluster}/0123abcd", "reason": "MISSING"}
    ]
    assert [c["name"] for c in described["tasks"][0]["containers"]] == ["web", "proxy"]
    assert "tags" not in described["tasks"][0]
    tagged = world.ecs.describe_tasks(cluster=world.cluster, tasks=listed[:1], include=["TAGS"])
    assert tagged["tasks"][0]["tags"] == [{"key": "deckhand:track", "value": f"web={world.repository}:main"}]

    stopped = world.ecs.stop_task(cluster=world.cluster, task=listed[0], reason="testing")["task"]
    assert (stopped["desiredStatus"], stopped["stopCode"], stopped["stoppedReason"]) == (
        "STOPPED",
        "UserInitiated",
        "testing",
    )
    # The scheduler replaces it.
    wait_until(
        "a replacement task healthy",
        lambda: (
            listed[0] not in world.ecs.list_tasks(cluster=world.cluster)["taskArns"]
            and list(world.target_states().values()) == ["healthy", "healthy"]
        ),
    )
    wait_until(
        "the STOPPED task event",
        lambda: [e for e in sim.task_events(listed[0]) if e["lastStatus"] == "STOPPED"],
    )
    assert world.ecs.list_tasks(cluster=world.cluster, desiredStatus="STOPPED")["taskArns"] == [listed[0]]


def test_set_image_behaviour_overrides_the_manifest(world, sim):
    image = world.push("v1", ready=0.5)
    sim.simulator.set_image_behaviour(image.split("@")[1], health="unhealthy")
    td = world.task_definition(image)
    world.create_service(td, desired=1, grace=30)
    wait_until("an unhealthy target", lambda: "unhealthy" in world.target_states().values())
    assert list(world.target_states().values()) == ["unhealthy"]
    assert world.service()["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    with pytest.raises(ValueError):
        sim.simulator.set_image_behaviour(image, health="sideways")


def test_service_recreated_under_the_same_name_starts_afresh(world, sim):
    td = world.task_definition(world.push("v1", ready=0.5))
    world.create_service(td, desired=1)
    world.wait_completed(td)
    [old] = world.tasks()
    world.ecs.delete_service(cluster=world.cluster, service="web", force=True)
    world.create_service(td, desired=1)
    world.wait_completed(td)
    [new] = world.tasks()
    assert new["taskArn"] != old["taskArn"]
    wait_until("only the new target", lambda: world.target_states() == {ip_of(new): "healthy"})


def test_moto_reset_drops_simulated_services(endpoint, sim, caplog):
    import urllib.request

    first = World(endpoint, sim)
    td = first.task_definition(first.push("v1", ready=0.5))
    first.create_service(td, desired=1)
    first.wait_completed(td)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
    time.sleep(3 * ecs_sim.TICK_SECONDS)

    second = World(endpoint, sim)  # everything was wiped, the simulator keeps working
    td = second.task_definition(second.push("v1", ready=0.5))
    second.create_service(td, desired=1)
    second.wait_completed(td)
    second.close()
    assert not [r for r in caplog.records if r.name == "localcloud.ecs_sim" and r.levelno >= logging.ERROR]


def test_stop_restores_moto_and_is_idempotent(endpoint):
    original_create = EC2ContainerServiceBackend.create_service
    original_health = ELBv2Backend.describe_target_health
    simulator = ecs_sim.install(lambda entry: None)
    assert EC2ContainerServiceBackend.create_service is not original_create
    with pytest.raises(RuntimeError):
        ecs_sim.install(lambda entry: None)
    simulator.stop()
    simulator.stop()
    assert EC2ContainerServiceBackend.create_service is original_create
    assert ELBv2Backend.describe_target_health is original_health
    ecs_sim.install(lambda entry: None).stop()
