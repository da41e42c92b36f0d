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

RATES: dict[str, Rate] = {
    "ecs:DescribeServices": Rate(50, 20),  # placeholder until cited
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
