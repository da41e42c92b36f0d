"""Lambda's concurrency limits and asynchronous-invocation semantics, for ``lambda_runtime``.

**Concurrency** (AWS Lambda Developer Guide, "Understanding Lambda function scaling",
https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html, and "Configuring reserved
concurrency", https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html):

* an account has 1,000 concurrent executions per Region by default ("By default, Lambda provides
  your account with a total concurrency limit of 1,000 concurrent executions across all functions
  in an AWS Region"); new accounts may have less, so a control route lowers it;
* a function with reserved concurrency runs at most that many at once and those are taken out of
  the pool the other functions share ("Reserved concurrency is the maximum number of concurrent
  instances that you want to allocate to your function ... no other function can use that
  concurrency"); reserved concurrency 0 throttles every invocation;
* an invocation beyond either answers HTTP 429 ``TooManyRequestsException`` with the reason
  ``ReservedFunctionConcurrentInvocationLimitExceeded`` or ``ConcurrentInvocationLimitExceeded``
  (Lambda API Reference, Invoke, Errors,
  https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), which Step Functions reports as
  ``Lambda.TooManyRequestsException``.

An invocation holds its slot from admission to its end, including the time the local runtime
makes it wait for one of its (few) processes, which is when AWS would be running it.

**Asynchronous invocation** (Developer Guide, "How Lambda handles errors and retries with
asynchronous invocation", https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html):

* "If the function returns an error, by default Lambda attempts to run it two more times, with a
  one-minute wait between the first two attempts, and two minutes between the second and third
  attempts" (``MaximumRetryAttempts`` of the function's event invoke configuration, 0-2);
* "If the function doesn't have enough concurrency available to process all events, additional
  requests are throttled. For throttling errors (429) and system errors (500-series), Lambda
  returns the event to the queue and attempts to run the function again for up to 6 hours. The
  retry interval increases exponentially from 1 second after the first attempt to a maximum of 5
  minutes" (bounded by ``MaximumEventAgeInSeconds``, 6 hours by default);
* "Even if your function doesn't return an error, it's possible for it to receive the same event
  from Lambda multiple times because the queue itself is eventually consistent": a small share of
  events is delivered twice (``duplicateRate``);
* when the retries are used up or the event is too old, the event goes to the on-failure
  destination with the invocation record ("Capturing records of Lambda asynchronous
  invocations", https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html):
  ``requestContext.condition`` ``RetriesExhausted`` or ``EventAgeExceeded``.

``GET|POST|DELETE /_localcloud/lambda/concurrency`` shows, sets or restores::

    {"accountLimit": 1000,              # the account's concurrent executions
     "retryDelaysSeconds": [60, 120],   # the pauses before an async event's 2nd and 3rd attempt
     "duplicateRate": 0.02}             # the share of async events delivered a second time

``GET`` also answers each function's ``reserved`` concurrency and the counts: ``throttled`` (per function), ``asyncRetries``,
``asyncDuplicates``, ``asyncFailures`` and the functions ``inFlight``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

DEFAULT_ACCOUNT_LIMIT = 1000
# Lambda keeps 100 unreserved ("Lambda always reserves 100 units of concurrency for your
# functions that don't explicitly reserve concurrency"); moto refuses a reservation below it.
UNRESERVED_MINIMUM = 100
DEFAULT_RETRY_DELAYS_SECONDS = (60.0, 120.0)
DEFAULT_MAX_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_SECONDS = 6 * 3600
THROTTLE_BACKOFF_FIRST_SECONDS = 1.0
THROTTLE_BACKOFF_MAX_SECONDS = 300.0
# "Now and then": one event in fifty. Handlers must be idempotent anyway; this makes every test
# that sends ECS events to the signal function meet a duplicate before long.
DEFAULT_DUPLICATE_RATE = 0.02

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"


class Throttled(Exception):
    """No concurrency left for the invocation; ``reason`` is Lambda's ``Reason``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Settings:
    account_limit: int = DEFAULT_ACCOUNT_LIMIT
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS_SECONDS
    duplicate_rate: float = DEFAULT_DUPLICATE_RATE


@dataclass
class _Counts:
    throttled: dict[str, int] = field(default_factory=dict)
    async_retries: int = 0
    async_duplicates: int = 0
    async_failures: int = 0


class Concurrency:
    """Admission of invocations against the account's and each function's concurrency.

    ``reservations`` answers every function's reserved concurrency (name → int) in the account:
    what the others reserved is not in the shared pool, whether or not they ever ran.
    """

    def __init__(self, reservations: Callable[[], dict[str, int]], rng: random.Random | None = None):
        self._reservations = reservations
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self.settings = _Settings()
        self.counts = _Counts()
        self.rng = rng or random.Random()

    def admit(self, function_name: str) -> None:
        """Takes a slot for one invocation of ``function_name`` or raises Throttled."""
        reserved = self._reservations()
        with self._lock:
            running = self._in_flight.get(function_name, 0)
            own = reserved.get(function_name)
            if own is not None:
                if running >= own:
                    self._throttled(function_name)
                    raise Throttled(RESERVED_LIMIT)
            else:
                shared = self.settings.account_limit - sum(reserved.values())
                sharing = sum(n for name, n in self._in_flight.items() if name not in reserved)
                if sharing >= shared:
                    self._throttled(function_name)
                    raise Throttled(ACCOUNT_LIMIT)
            self._in_flight[function_name] = running + 1

    def release(self, function_name: str) -> None:
        with self._lock:
            left = self._in_flight.get(function_name, 0) - 1
            if left > 0:
                self._in_flight[function_name] = left
            else:
                self._in_flight.pop(function_name, None)

    def _throttled(self, function_name: str) -> None:
        self.counts.throttled[function_name] = self.counts.throttled.get(function_name, 0) + 1

    def duplicate(self) -> bool:
        with self._lock:
            return self.rng.random() < self.settings.duplicate_rate

    # -- control route ---------------------------------------------------------

    def control(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "POST":
            settings = _Settings(
                account_limit=self.settings.account_limit,
                retry_delays=self.settings.retry_delays,
                duplicate_rate=self.settings.duplicate_rate,
            )
            if "accountLimit" in body:
                limit = int(body["accountLimit"])
                if limit < 0:
                    raise ValueError("accountLimit must be 0 or more")
                settings.account_limit = limit
            if "retryDelaysSeconds" in body:
                delays = tuple(float(d) for d in body["retryDelaysSeconds"])
                if len(delays) != DEFAULT_MAX_RETRY_ATTEMPTS or any(d < 0 for d in delays):
                    raise ValueError("retryDelaysSeconds: two pauses of 0 s or more")
                settings.retry_delays = delays
            if "duplicateRate" in body:
                rate = float(body["duplicateRate"])
                if not 0 <= rate <= 1:
                    raise ValueError("duplicateRate must be between 0 and 1")
                settings.duplicate_rate = rate
            with self._lock:
                self.settings = settings
        elif method == "DELETE":
            with self._lock:
                self.settings = _Settings()
        elif method != "GET":
            return 405, {"error": f"{method} is not supported here"}
        reserved = self._reservations()
        with self._lock:
            return 200, {
                "accountLimit": self.settings.account_limit,
                "reserved": reserved,
                "retryDelaysSeconds": list(self.settings.retry_delays),
                "duplicateRate": self.settings.duplicate_rate,
                "inFlight": dict(self._in_flight),
                "throttled": dict(self.counts.throttled),
                "asyncRetries": self.counts.async_retries,
                "asyncDuplicates": self.counts.async_duplicates,
                "asyncFailures": self.counts.async_failures,
            }


@dataclass(frozen=True)
class AsyncPolicy:
    """A function's event invoke configuration (PutFunctionEventInvokeConfig), with Lambda's
    defaults where it sets nothing."""

    max_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    max_event_age_seconds: float = DEFAULT_MAX_EVENT_AGE_SECONDS
    on_success: str | None = None
    on_failure: str | None = None

    @staticmethod
    def of(fn: Any) -> "AsyncPolicy":
        configs = getattr(fn, "event_invoke_config", None) or []
        if not configs:
            return AsyncPolicy()
        config = configs[-1].config  # moto appends on every put; the last one counts
        destinations = config.get("DestinationConfig") or {}
        return AsyncPolicy(
            max_retry_attempts=int(config.get("MaximumRetryAttempts", DEFAULT_MAX_RETRY_ATTEMPTS)),
            max_event_age_seconds=float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_SECONDS)),
            on_success=(destinations.get("OnSuccess") or {}).get("Destination") or None,
            on_failure=(destinations.get("OnFailure") or {}).get("Destination") or None,
        )


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    attempts: int,
    payload: bytes,
    status_code: int,
    function_error: str | None,
    response: bytes | None,
) -> str:
    """The record Lambda sends to an asynchronous invocation's destination."""

    def as_json(raw: bytes | None) -> Any:
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": as_json(payload),
        "responseContext": {"statusCode": status_code, "executedVersion": "$LATEST"},
        "responsePayload": as_json(response),
    }
    if function_error:
        record["responseContext"]["functionError"] = function_error
    return json.dumps(record)
