"""Building the systems deckhand's users run, and watching deckhand work on them, through the
public AWS APIs only (ECR PutImage, ECS/ELBv2/EC2 create calls, Step Functions, SQS)."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from polling import wait_until  # noqa: F401  (re-exported for the e2e tests)

ACCOUNT = "123456789012"
REGION = "us-east-1"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LOG = logging.getLogger(__name__)


def unique(prefix: str) -> str:
    """moto keeps one state per process: every test names its resources uniquely."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class Network:
    vpc: str
    subnets: list[str]
    security_group: str


@dataclass
class LoadBalancer:
    arn: str
    listeners: dict[int, str] = field(default_factory=dict)


class Aws:
    """Thin helpers over boto3 clients of the local cloud."""

    def __init__(self, cloud: Any):
        self.cloud = cloud
        self.ec2 = cloud.client("ec2")
        self.ecr = cloud.client("ecr")
        self.ecs = cloud.client("ecs")
        self.elb = cloud.client("elbv2")
        self.sfn = cloud.client("stepfunctions")
        self.sqs = cloud.client("sqs")
        self.events = cloud.client("events")
        self.state_machine = cloud.stack_outputs["StateMachineArn"]
        self._inputs: dict[str, str] = {}  # execution ARN -> input (executions_for)
        self._images: dict[str, dict[str, str]] = {}  # task definition revision -> images (images)
        self.clusters_made: list[str] = []  # in order; each test module deletes its own (conftest)

    # ------------------------------------------------------------------ images
    def repository(self, name: str) -> str:
        self.ecr.create_repository(repositoryName=name)
        return name

    def push(self, repository: str, tag: str, health: str = "healthy", ready_seconds: float = 1,
             ecr: Any = None) -> str:
        """Pushes an OCI manifest whose annotations tell the simulator how tasks behave; returns its
        digest. `ecr`: another account's or Region's client (default: deckhand's own registry)."""
        nonce = uuid.uuid4().hex
        config = {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                  "digest": "sha256:" + hashlib.sha256(nonce.encode()).hexdigest()}
        layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 32,
                 "digest": "sha256:" + hashlib.sha256((nonce + "layer").encode()).hexdigest()}
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer],
                    "annotations": {"deckhand.sim/health": health, "deckhand.sim/ready-seconds": str(ready_seconds),
                                    "org.opencontainers.image.revision": nonce}}
        out = (ecr or self.ecr).put_image(repositoryName=repository, imageManifest=json.dumps(manifest),
                                 imageManifestMediaType=OCI_MANIFEST, imageTag=tag)
        return out["image"]["imageId"]["imageDigest"]

    @staticmethod
    def pinned(repository: str, digest: str) -> str:
        return f"{REGISTRY}/{repository}@{digest}"

    # ------------------------------------------------------------------ network and load balancing
    def network(self, private: bool = False, subnet_prefix: int = 24) -> Network:
        """A VPC with two subnets. A /24 holds 251 task ENIs (AWS reserves five addresses per
        subnet, and the simulator runs out as AWS does): fleets need a shorter prefix."""
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        size = 2 ** (24 - subnet_prefix)  # /24 blocks per subnet
        subnets = [self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i * size}.0/{subnet_prefix}",
                                          AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
                   for i, az in ((1, "a"), (2, "b"))]
        group = self.ec2.create_security_group(GroupName=unique("sg"), Description="tasks", VpcId=vpc)["GroupId"]
        return Network(vpc, subnets, group)

    def target_group(self, name: str, network: Network, port: int, health_path: str = "/") -> str:
        return self.elb.create_target_group(Name=name, Protocol="HTTP", Port=port, VpcId=network.vpc, TargetType="ip",
                                            HealthCheckPath=health_path)["TargetGroups"][0]["TargetGroupArn"]

    def load_balancer(self, network: Network, listeners: dict[int, str]) -> LoadBalancer:
        """An ALB with one HTTP listener per port, each forwarding to its default target group."""
        arn = self.elb.create_load_balancer(Name=unique("alb"), Subnets=network.subnets, SecurityGroups=[network.security_group],
                                            Scheme="internet-facing", Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        balancer = LoadBalancer(arn)
        for port, group in listeners.items():
            balancer.listeners[port] = self.elb.create_listener(
                LoadBalancerArn=arn, Protocol="HTTP", Port=port,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])["Listeners"][0]["ListenerArn"]
        return balancer

    def path_rule(self, listener: str, paths: list[str], group: str, priority: int) -> None:
        self.elb.create_rule(ListenerArn=listener, Priority=priority,
                             Conditions=[{"Field": "path-pattern", "Values": paths}],
                             Actions=[{"Type": "forward", "TargetGroupArn": group}])

    # ------------------------------------------------------------------ ECS
    def cluster(self) -> str:
        name = self.ecs.create_cluster(clusterName=unique("cluster"))["cluster"]["clusterName"]
        self.clusters_made.append(name)
        return name

    def delete_clusters(self, names: list[str]) -> None:
        """Deletes the clusters and their services, as a team deletes a finished environment:
        each push's plan lists the services of every cluster in the account, so clusters left
        behind by every finished test would make each later push pay for all of them."""
        for name in names:
            try:
                for arn in self.ecs.list_services(cluster=name, maxResults=100)["serviceArns"]:
                    self.ecs.delete_service(cluster=name, service=arn, force=True)
                self.ecs.delete_cluster(cluster=name)
            except ClientError as error:  # cleanup is best effort: the test itself has passed or failed
                LOG.warning("cluster %s not deleted: %s", name, error)

    def task_definition(self, family: str, containers: list[tuple[str, str, int]]) -> str:
        """Fargate task definition; containers are (name, image, port)."""
        definitions = [{
            "name": name, "image": image, "essential": True, "cpu": 128, "memory": 256,
            "portMappings": [{"containerPort": port, "protocol": "tcp"}],
            "environment": [{"name": "SECRET_TOKEN", "value": "not-for-logs"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": f"/ecs/{family}", "awslogs-region": REGION}},
        } for name, image, port in containers]
        return self.ecs.register_task_definition(
            family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
            taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{family}-task",
            containerDefinitions=definitions, tags=[{"key": "team", "value": "web"}],
        )["taskDefinition"]["taskDefinitionArn"]

    def service(self, cluster: str, name: str, task_definition: str, network: Network,
                load_balancers: list[tuple[str, str, int]] = (), track: str | None = None, desired: int = 1,
                grace: int | None = None, circuit_breaker: dict | None = None, extra_tags: dict[str, str] | None = None) -> str:
        tags = [{"key": k, "value": v} for k, v in (extra_tags or {}).items()]
        if track:
            tags.append({"key": "deckhand:track", "value": track})
        kwargs: dict[str, Any] = dict(
            cluster=cluster, serviceName=name, taskDefinition=task_definition, desiredCount=desired, launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": network.subnets, "securityGroups": [network.security_group],
                                                          "assignPublicIp": "DISABLED"}},
            loadBalancers=[{"targetGroupArn": g, "containerName": c, "containerPort": p} for g, c, p in load_balancers],
            deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200,
                                     "deploymentCircuitBreaker": circuit_breaker or {"enable": False, "rollback": False}},
        )
        if grace is not None:
            kwargs["healthCheckGracePeriodSeconds"] = grace
        if tags:
            kwargs["tags"] = tags
        arn = self.ecs.create_service(**kwargs)["service"]["serviceArn"]
        self.wait_steady(cluster, name)
        return arn

    def describe(self, cluster: str, service: str) -> dict:
        return self.ecs.describe_services(cluster=cluster, services=[service], include=["TAGS"])["services"][0]

    def wait_steady(self, cluster: str, service: str, timeout: float = 60) -> dict:
        def steady() -> dict | None:
            svc = self.describe(cluster, service)
            deployments = svc["deployments"]
            done = len(deployments) == 1 and deployments[0].get("rolloutState") == "COMPLETED"
            return svc if done and svc["runningCount"] == svc["desiredCount"] else None
        return wait_until(f"{service} steady", steady, timeout)

    def images(self, task_definition: str) -> dict[str, str]:
        """Each container's image. A revision never changes, so each is described once: tests
        that poll must not spend the account's DescribeTaskDefinition budget, which deckhand
        needs (throttling.py counts the tests' calls too)."""
        pinned = ":" in task_definition.rsplit("/", 1)[-1]  # family:revision or its ARN, not "latest"
        if pinned and task_definition in self._images:
            return dict(self._images[task_definition])
        definition = self.ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        images = {c["name"]: c["image"] for c in definition["containerDefinitions"]}
        if pinned:
            self._images[task_definition] = images
        return dict(images)

    def running_images(self, cluster: str, service: str) -> dict[str, str]:
        return self.images(self.describe(cluster, service)["taskDefinition"])

    def target_states(self, group: str) -> list[str]:
        return sorted(d["TargetHealth"]["State"] for d in self.elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"])

    # ------------------------------------------------------------------ deckhand
    def start(self, request: dict, name: str | None = None) -> str:
        return self.sfn.start_execution(stateMachineArn=self.state_machine, name=name or unique("manual"),
                                        input=json.dumps(request))["executionArn"]

    def executions_for(self, needle: str) -> list[dict]:
        """Executions whose input mentions `needle` (a digest: the ones an ECR push started; the
        push rule leaves out deckhand's own protection tags), as ListExecutions lists them plus
        their "input". An input never changes, so each execution is described once: polling this must not spend the account's Step Functions
        budget (throttling.py counts the tests' calls too)."""
        found = []
        for execution in self.sfn.list_executions(stateMachineArn=self.state_machine, maxResults=1000)["executions"]:
            arn = execution["executionArn"]
            if arn not in self._inputs:
                self._inputs[arn] = self.sfn.describe_execution(executionArn=arn).get("input", "")
            if needle in self._inputs[arn]:
                found.append({**execution, "input": self._inputs[arn]})
        return found

    def execution_for_push(self, digest: str, timeout: float = 30) -> str:
        return wait_until(f"an execution for {digest}", lambda: [e["executionArn"] for e in self.executions_for(digest)], timeout)[0]

    def finish(self, execution_arn: str, timeout: float = 240) -> dict:
        def done() -> dict | None:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            return described if described["status"] != "RUNNING" else None
        return wait_until(f"execution {execution_arn} to end", done, timeout, interval=0.5)

    def failed_services(self, execution: dict) -> list[dict]:
        """The lines of the services a finished push execution lists as failed: its cause is a
        bounded summary naming each failed service's own (child) execution, whose cause is the
        service's line (the detail of its deployment event)."""
        summary = json.loads(execution["cause"])
        lines = []
        for failure in summary["failures"]:
            child = self.sfn.describe_execution(executionArn=failure["execution"])
            lines.append(json.loads(child["cause"]))
        return lines

    def own_history(self, execution_arn: str) -> list[dict]:
        events, token = [], None
        while True:
            page = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {}))
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def service_executions(self, execution_arn: str) -> list[str]:
        """The service executions a push execution started (startExecution.sync:2 answers each
        start with the child's ExecutionArn, in the TaskSubmitted event)."""
        children = []
        for event in self.own_history(execution_arn):
            submitted = event.get("taskSubmittedEventDetails")
            if submitted and submitted.get("output"):
                arn = json.loads(submitted["output"]).get("ExecutionArn")
                if arn and arn not in children:
                    children.append(arn)
        return children

    def history(self, execution_arn: str) -> list[dict]:
        """The execution's history, then those of the service executions it started: what one
        deployment did, wherever it happened."""
        events = self.own_history(execution_arn)
        for child in self.service_executions(execution_arn):
            events += self.own_history(child)
        return events

    def event_queue(self) -> "EventQueue":
        return EventQueue(self)


class EventQueue:
    """Deployment events captured through an EventBridge rule into an SQS queue."""

    def __init__(self, aws: Aws):
        self.aws = aws
        name = unique("deckhand-events")
        self.url = aws.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = aws.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        aws.events.put_rule(Name=name, EventPattern=json.dumps({"source": ["deckhand"], "detail-type": ["Deckhand Deployment State Change"]}))
        aws.events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
        self.seen: list[dict] = []

    def drain(self) -> list[dict]:
        while True:
            messages = self.aws.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                                    AttributeNames=["SentTimestamp"]).get("Messages", [])
            if not messages:
                return self.seen
            for message in messages:
                event = json.loads(message["Body"])
                # When it reached the queue, in epoch seconds (the event's own `time` has 1 s resolution).
                event["delivered"] = int(message["Attributes"]["SentTimestamp"]) / 1000
                self.seen.append(event)
                self.aws.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def for_execution(self, execution_arn: str) -> list[dict]:
        self.aws.cloud.wait_for_deliveries()
        return [e["detail"] for e in self.drain() if e["detail"].get("executionArn") == execution_arn]

    def statuses(self, execution_arn: str, service: str | None = None) -> list[str]:
        return [e["status"] for e in self.for_execution(execution_arn) if service is None or e["service"] == service]


@dataclass
class Api:
    """A Flask API service tracking `repository:main`, deployed once by deckhand (so it has a
    verified known-good revision)."""
    cluster: str
    service: str
    repository: str
    group: str
    network: Network
    good_digest: str
    good_revision: str


def api_service(aws: Aws, grace: int | None = None, circuit_breaker: dict | None = None, tags: dict | None = None,
                verified: bool = True, settled: bool = False) -> Api:
    """`settled` (with verified=False): wait for the setup push's own execution to end too (it
    may hold the service's lock for a moment after the service exists)."""
    net = aws.network()
    repository = aws.repository(unique("flask"))
    group = aws.target_group(unique("api"), net, 5000)
    aws.load_balancer(net, {80: group})
    cluster = aws.cluster()
    initial = aws.push(repository, "main")
    td = aws.task_definition(unique("api"), [("web", aws.pinned(repository, initial), 5000)])
    aws.service(cluster, "api", td, net, [(group, "web", 5000)], track=f"web={repository}:main", desired=2, grace=grace,
                circuit_breaker=circuit_breaker, extra_tags=tags)
    good = initial
    if verified:
        good = aws.push(repository, "main")
        assert aws.finish(aws.execution_for_push(good))["status"] == "SUCCEEDED"
    elif settled:
        for execution in aws.executions_for(initial):
            aws.finish(execution["executionArn"])
    return Api(cluster, "api", repository, group, net, good, aws.describe(cluster, "api")["taskDefinition"])
