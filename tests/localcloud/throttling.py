"""API request throttling at AWS's rates, always on: token buckets per account, Region and API.

AWS throttles each account's API requests with token buckets: a bucket holds at most its
capacity (the burst), every request takes a token, tokens come back at the refill rate, and a
request finding the bucket empty is refused with the service's throttling error (Amazon EC2 API
Reference, "Request throttling for the Amazon EC2 API", which the ECS guide's own throttling
page follows: "Amazon ECS uses the token bucket algorithm"). The rates in ``RATES`` are each
service's documented ones, cited next to them; an API without a documented rate is not
throttled here (listed in the local cloud's README as a known difference).

Every request counts against its bucket, whoever makes it: the tests' own clients and the
deckhand command use the account's budget as any other caller in a busy account would. Only the
requests of deckhand's functions (signed with a function role's credentials) are refused: the
tests observe the truth, and deckhand's code is what must hold under throttling.

``GET|POST|DELETE /_localcloud/throttling``::

    {"enabled": true,          # off: nothing is refused (tokens are still counted)
     "scale": 1.0,             # capacity and refill multiplied by this (0.1: ten times stricter)
     "rates": {"ecs:DescribeServices": {"capacity": 5, "refillPerSecond": 1}}}   # overrides

``GET`` also answers, per API, the requests seen and those refused; ``DELETE`` restores the
defaults and clears the counts.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .faults import Fault, _answer
from .iam import parse_request, session_for


@dataclass(frozen=True)
class Rate:
    capacity: float
    refill_per_second: float
    bucket: str = ""  # APIs that share one bucket name it; empty: the API's own bucket


# The throttling error each service answers (its API Reference, "Common Errors").
THROTTLING_ERRORS = {
    "ecs": ("ThrottlingException", 400),
    "ecr": ("ThrottlingException", 400),
    "states": ("ThrottlingException", 400),
    "events": ("ThrottlingException", 400),
    "elasticloadbalancing": ("Throttling", 400),
    "cloudwatch": ("Throttling", 400),
    "dynamodb": ("ThrottlingException", 400),
}


def _shared(bucket: str, capacity: float, refill: float, *actions: str) -> dict[str, Rate]:
    return {action: Rate(capacity, refill, bucket) for action in actions}


def _per_second(rate: float, *actions: str) -> dict[str, Rate]:
    """A quota documented only as requests per second: one second's worth is the burst."""
    return {action: Rate(rate, rate) for action in actions}


RATES: dict[str, Rate] = {
    # Amazon ECS API Reference, "Request throttling for the Amazon ECS API"
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html): "the
    # bucket capacity (or burst) and refill rate (or sustained) for all AWS Regions"; the actions
    # of one category share one bucket.
    **_shared("ecs:service-read", 100, 20, "ecs:DescribeServices", "ecs:ListServices"),
    **_shared("ecs:cluster-resource-read", 100, 20, "ecs:DescribeTasks", "ecs:ListTasks",
              "ecs:DescribeContainerInstances", "ecs:ListContainerInstances", "ecs:ListAttributes"),
    **_shared("ecs:task-definition-read", 50, 20, "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions",
              "ecs:ListTaskDefinitionFamilies"),
    **_shared("ecs:task-definition-modify", 20, 1, "ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"),
    **_shared("ecs:service-modify", 50, 5, "ecs:UpdateService", "ecs:CreateService", "ecs:DeleteService"),
    **_shared("ecs:tag-read", 50, 20, "ecs:ListTagsForResource"),
    **_shared("ecs:tag-modify", 20, 10, "ecs:TagResource", "ecs:UntagResource"),
    **_shared("ecs:cluster-read", 50, 20, "ecs:DescribeClusters", "ecs:ListClusters"),
    **_shared("ecs:cluster-modify", 20, 1, "ecs:CreateCluster", "ecs:DeleteCluster", "ecs:UpdateCluster",
              "ecs:UpdateClusterSettings", "ecs:PutClusterCapacityProviders"),
    **_shared("ecs:cluster-resource-modify", 100, 40, "ecs:RunTask", "ecs:StartTask", "ecs:StopTask"),
    **_shared("ecs:service-deployment-read", 50, 20, "ecs:ListServiceDeployments",
              "ecs:DescribeServiceDeployments", "ecs:DescribeServiceRevisions"),
    # Elastic Load Balancing User Guide, "API request throttling"
    # (https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html):
    # "the bucket size for non-mutating API actions is 40 tokens and the refill rate is 10 tokens
    # per second"; registration 20/4; mutating 20/3; resource-intensive 10/0.2.
    **_shared("elasticloadbalancing:non-mutating", 40, 10, "elasticloadbalancing:DescribeTargetHealth",
              "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeLoadBalancers",
              "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules",
              "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTargetGroupAttributes",
              "elasticloadbalancing:DescribeLoadBalancerAttributes"),
    **_shared("elasticloadbalancing:registration", 20, 4, "elasticloadbalancing:RegisterTargets",
              "elasticloadbalancing:DeregisterTargets"),
    **_shared("elasticloadbalancing:mutating", 20, 3, "elasticloadbalancing:CreateTargetGroup",
              "elasticloadbalancing:CreateListener", "elasticloadbalancing:CreateRule",
              "elasticloadbalancing:ModifyRule", "elasticloadbalancing:ModifyListener",
              "elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:DeleteRule"),
    **_shared("elasticloadbalancing:resource-intensive", 10, 0.2, "elasticloadbalancing:CreateLoadBalancer",
              "elasticloadbalancing:SetSubnets"),
    # AWS Step Functions Developer Guide, "Step Functions service quotas", "Quotas related to API
    # action throttling" (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html),
    # Standard workflows, US East (N. Virginia), the local cloud's Region (other Regions have
    # smaller buckets, e.g. StartExecution 800/150).
    "states:StartExecution": Rate(1300, 300),
    "states:GetExecutionHistory": Rate(400, 20),
    "states:DescribeExecution": Rate(300, 15),
    "states:SendTaskSuccess": Rate(3000, 500),
    "states:SendTaskFailure": Rate(3000, 500),
    "states:SendTaskHeartbeat": Rate(3000, 500),
    "states:StopExecution": Rate(1000, 200),
    "states:ListExecutions": Rate(200, 5),
    # Amazon ECR User Guide, "Amazon ECR service quotas"
    # (https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html): "Rate of
    # BatchGetImage requests: 2,000 per second", "Rate of PutImage requests: 10 per second".
    # DescribeImages, DescribeRepositories and ListImages have no documented rate: not throttled.
    **_per_second(2000, "ecr:BatchGetImage"),
    **_per_second(10, "ecr:PutImage"),
    # Amazon CloudWatch service quotas (https://docs.aws.amazon.com/general/latest/gr/cw_region.html):
    # "Rate of DescribeAlarms requests: 9 per second"; PutMetricData and GetMetricData 500.
    **_per_second(9, "cloudwatch:DescribeAlarms"),
    **_per_second(500, "cloudwatch:PutMetricData", "cloudwatch:GetMetricData"),
    # Amazon EventBridge quotas (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html):
    # "PutEvents throttle limit in transactions per second", us-east-1: 10,000 (400 in the
    # smallest Regions).
    **_per_second(10000, "events:PutEvents"),
    # DynamoDB: "No account-level read and write throughput quotas are applied to tables in
    # on-demand mode" (deckhand's state table), and 40,000 request units per second per table is
    # beyond what the local cloud can serve: its data plane is not throttled.
}


@dataclass
class _Bucket:
    capacity: float
    refill_per_second: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill_per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Throttling:
    """WSGI middleware: counts every AWS request against its bucket and refuses the functions'
    requests that find it empty."""

    def __init__(self, app: Callable, account_id: str, rates: dict[str, Rate] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.account_id = account_id
        self._defaults = dict(RATES if rates is None else rates)
        self._clock = clock
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.enabled = True
        self.scale = 1.0
        self._rates = dict(self._defaults)
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self.seen: dict[str, int] = {}
        self.refused: dict[str, int] = {}

    # ----- control --------------------------------------------------------------------------

    def control(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "POST":
            unknown = set(body) - {"enabled", "scale", "rates"}
            if unknown:
                raise ValueError(f"unknown throttling fields: {sorted(unknown)}")
            scale = body.get("scale", self.scale)
            if not isinstance(scale, (int, float)) or scale <= 0:
                raise ValueError("'scale' must be a positive number")
            rates = dict(self._rates)
            for action, spec in (body.get("rates") or {}).items():
                if ":" not in action or not isinstance(spec, dict):
                    raise ValueError("'rates' maps 'service:Operation' to {capacity, refillPerSecond}")
                capacity, refill = spec.get("capacity"), spec.get("refillPerSecond")
                if not isinstance(capacity, (int, float)) or capacity < 1:
                    raise ValueError(f"{action}: 'capacity' must be 1 or more")
                if not isinstance(refill, (int, float)) or refill <= 0:
                    raise ValueError(f"{action}: 'refillPerSecond' must be positive")
                rates[action] = Rate(float(capacity), float(refill))
            with self._lock:
                self.enabled = bool(body.get("enabled", self.enabled))
                self.scale = float(scale)
                self._rates = rates
                self._buckets.clear()  # new rates apply from a full bucket
        elif method == "DELETE":
            with self._lock:
                self._reset()
        elif method != "GET":
            return 405, {"error": f"{method} is not supported here"}
        with self._lock:
            return 200, {
                "enabled": self.enabled,
                "scale": self.scale,
                "rates": {a: {"capacity": r.capacity, "refillPerSecond": r.refill_per_second, "bucket": r.bucket or a}
                          for a, r in sorted(self._rates.items())},
                "seen": dict(self.seen),
                "refused": dict(self.refused),
            }

    # ----- requests -------------------------------------------------------------------------

    def admit(self, account: str, region: str, action: str) -> bool:
        """Takes a token for one request; False when the bucket is empty."""
        rate = self._rates.get(action)
        with self._lock:
            self.seen[action] = self.seen.get(action, 0) + 1
            if rate is None:
                return True
            key = (account, region, rate.bucket or action)
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                capacity = rate.capacity * self.scale
                bucket = self._buckets[key] = _Bucket(capacity, rate.refill_per_second * self.scale, capacity, now)
            return bucket.take(now)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # the next layer reads it again
        request = parse_request(environ, body, "")
        if request is None or not request.operation:
            return self.app(environ, start_response)
        key = environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[-1].split("/", 1)[0]
        session = session_for(key)
        account = session.account_id if session is not None else self.account_id
        action = request.action
        if self.admit(account, request.region, action) or session is None or not self.enabled:
            return self.app(environ, start_response)
        with self._lock:
            self.refused[action] = self.refused.get(action, 0) + 1
        code, status = THROTTLING_ERRORS.get(request.service, ("ThrottlingException", 400))
        refusal = Fault(id="throttling", action=action, error=code, message="Rate exceeded", status=status,
                        expires_at=None, remaining=None, caller_role=None)
        return _answer(request.protocol, request.service, request.json_version, refusal, start_response)
