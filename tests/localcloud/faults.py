"""Fault injection: API errors that no AWS API lets a test cause (throttling, 5xx).

``FaultInjector`` is WSGI middleware in front of the local cloud's services. A
fault, added with ``POST /_localcloud/faults``::

    {"action": "elasticloadbalancing:DescribeTargetHealth",  # IAM-style, * and ? globs
     "error": "Throttling",             # the error code answered
     "message": "Rate exceeded",        # optional
     "status": 400,                     # optional: 400, or 500/503 for server errors
     "seconds": 30, "count": 3,         # optional: ends after either (neither: until cleared)
     "callerRole": "deckhand-Check*",   # optional: only requests signed with a function role's
                                        # credentials (role name, role ARN or function name;
                                        # "*" = any function), so a test's own clients still see
                                        # the truth
     "delaySeconds": 5,                 # optional: answer this much later (a latency spike);
                                        # without "error", the call then goes through
     "respondAfterSeconds": 5}          # optional, without "error": the call is carried out at
                                        # once but answered this much later, so a caller that
                                        # times out never learns that it succeeded

makes every matching request answer that error, formatted as the service's
protocol formats errors, instead of reaching moto. ``GET /_localcloud/faults``
lists the faults and how often each struck; ``DELETE /_localcloud/faults``
clears them (``{"id": ...}``: just one).

The action is named the way IAM names it: the SigV4 signing name of the
request's credential scope (``monitoring`` is ``cloudwatch``), a colon, and the
operation from ``X-Amz-Target`` (JSON protocols) or the ``Action`` form field
(query protocols). REST protocols (Lambda, S3) name no operation: only
``service:*`` matches them.

Error shapes, as the AWS SDKs parse them (each service's "Common Errors" page
lists the codes; e.g. Elastic Load Balancing API Reference, Common Errors,
https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/CommonErrors.html:
ThrottlingException 400, ServiceUnavailable 503, InternalFailure 500):

* JSON protocols (ECS, DynamoDB, Step Functions, EventBridge, ECR, ...): the
  status, ``{"__type": CODE, "message": ...}`` and ``x-amzn-ErrorType``
  (DynamoDB prefixes its shape namespace, ``com.amazonaws.dynamodb.v20120810#``);
* query protocols (Elastic Load Balancing, STS, IAM, CloudWatch):
  ``<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>...``; EC2's own
  ``<Response><Errors><Error><Code>...``;
* REST JSON (Lambda): ``x-amzn-ErrorType`` and a JSON body.
"""

from __future__ import annotations

import fnmatch
import io
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .iam import RoleSession, parse_request, session_for

# Status codes of the common server-side errors (the Common Errors pages); every other code
# defaults to 400, the status of the throttling errors (Throttling, ThrottlingException,
# TooManyRequestsException on the JSON services, ProvisionedThroughputExceededException).
SERVER_ERRORS = {
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
    "InternalFailure": 500,
    "InternalError": 500,
    "InternalServerError": 500,
    "InternalServerException": 500,
    "ServerException": 500,  # ECS
}
DEFAULT_MESSAGES = {400: "Rate exceeded", 500: "Internal failure", 503: "Service unavailable"}
QUERY_NAMESPACES = {"elasticloadbalancing": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"}
DYNAMODB_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"


@dataclass
class Fault:
    id: str
    action: str
    error: str
    message: str
    status: int
    expires_at: float | None  # clock time
    remaining: int | None
    caller_role: str | None
    delay_seconds: float = 0.0
    respond_after_seconds: float = 0.0
    hits: int = 0

    def active(self, now: float) -> bool:
        if self.expires_at is not None and now >= self.expires_at:
            return False
        return self.remaining is None or self.remaining > 0

    def matches(self, action: str, session: RoleSession | None) -> bool:
        if not fnmatch.fnmatchcase(action.lower(), self.action.lower()):
            return False
        if self.caller_role is None:
            return True
        if session is None:
            return False  # the tests' own clients and moto's internal calls
        names = (session.role_arn, session.role_arn.rsplit("/", 1)[-1], session.session_name)
        return any(fnmatch.fnmatchcase(name, self.caller_role) for name in names)


def parse_fault(spec: dict[str, Any], now: float) -> Fault:
    """A Fault from the control route's JSON; ValueError (→ 400) names what is wrong."""
    if not isinstance(spec, dict):
        raise ValueError("a fault is a JSON object")
    unknown = set(spec) - {
        "action", "error", "message", "status", "seconds", "count", "callerRole", "delaySeconds", "respondAfterSeconds",
    }
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    action, error = spec.get("action"), spec.get("error")
    if not isinstance(action, str) or ":" not in action:
        raise ValueError("'action' must be 'service:Operation', e.g. 'ecs:DescribeServices'")
    delay = spec.get("delaySeconds", 0)
    if not isinstance(delay, (int, float)) or not 0 <= delay <= 900:
        raise ValueError("'delaySeconds' must be a number of seconds from 0 to 900")
    late = spec.get("respondAfterSeconds", 0)
    if not isinstance(late, (int, float)) or not 0 <= late <= 900 or (late and error is not None):
        raise ValueError("'respondAfterSeconds' must be a number of seconds from 0 to 900, without 'error'")
    if error is None and (delay > 0 or late > 0):
        error = ""  # only slow: the call goes through after the delay
    elif not isinstance(error, str) or not error:
        raise ValueError("'error' must be the error code to answer, e.g. 'ThrottlingException'")
    status = spec.get("status", SERVER_ERRORS.get(error, 400))
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError("'status' must be an HTTP error status (400-599)")
    seconds, count = spec.get("seconds"), spec.get("count")
    if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
        raise ValueError("'seconds' must be a positive number")
    if count is not None and (not isinstance(count, int) or count <= 0):
        raise ValueError("'count' must be a positive integer")
    caller = spec.get("callerRole")
    if caller is not None and (not isinstance(caller, str) or not caller):
        raise ValueError("'callerRole' must be a role name, role ARN or function name (globs allowed)")
    message = spec.get("message") or DEFAULT_MESSAGES.get(status, DEFAULT_MESSAGES[400 if status < 500 else 500])
    return Fault(
        id=uuid.uuid4().hex[:12],
        action=action,
        error=error,
        message=str(message),
        status=status,
        expires_at=None if seconds is None else now + float(seconds),
        remaining=count,
        caller_role=caller,
        delay_seconds=float(delay),
        respond_after_seconds=float(late),
    )


class FaultInjector:
    """WSGI middleware answering matching requests with an injected error."""

    def __init__(self, app: Callable, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    # ----- control --------------------------------------------------------------------------

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = parse_fault(spec, self._clock())
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self, fault_id: str | None = None) -> int:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]
            return before - len(self._faults)

    def describe(self) -> list[dict[str, Any]]:
        now = self._clock()
        with self._lock:
            return [{**asdict(f), "active": f.active(now)} for f in self._faults]

    def control(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        """``/_localcloud/faults``: POST adds, GET lists, DELETE clears."""
        if method == "POST":
            return 200, asdict(self.add(body))
        if method == "GET":
            return 200, {"faults": self.describe()}
        if method == "DELETE":
            return 200, {"cleared": self.clear(body.get("id") if body else None)}
        return 404, {"error": f"no route {method} /_localcloud/faults"}

    # ----- requests -------------------------------------------------------------------------

    def _strike(self, action: str, session: RoleSession | None) -> Fault | None:
        now = self._clock()
        with self._lock:
            for fault in self._faults:
                if fault.active(now) and fault.matches(action, session):
                    fault.hits += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        with self._lock:
            idle = not self._faults
        if idle:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # the next layer reads it again
        request = parse_request(environ, body, "")
        if request is None:  # unsigned: not an AWS API call
            return self.app(environ, start_response)
        key = (environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[-1].split("/", 1)[0])
        fault = self._strike(f"{request.service}:{request.operation}", session_for(key))
        if fault is None:
            return self.app(environ, start_response)
        if fault.delay_seconds:
            time.sleep(fault.delay_seconds)  # a latency spike: the caller may time out first
        if not fault.error:
            answer = self.app(environ, start_response)
            if fault.respond_after_seconds:
                answer = list(answer)  # carried out now; the answer leaves later
                time.sleep(fault.respond_after_seconds)
            return answer
        return _answer(request.protocol, request.service, request.json_version, fault, start_response)


def _answer(protocol: str, service: str, json_version: str, fault: Fault, start_response: Callable) -> list[bytes]:
    request_id = str(uuid.uuid4())
    sender = "Sender" if fault.status < 500 else "Receiver"
    if protocol == "query" and service == "ec2":
        data = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Errors><Error><Code>{_xml(fault.error)}</Code><Message>{_xml(fault.message)}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    elif protocol == "query":
        namespace = QUERY_NAMESPACES.get(service)
        xmlns = f' xmlns="{namespace}"' if namespace else ""
        data = (
            f"<ErrorResponse{xmlns}><Error><Type>{sender}</Type><Code>{_xml(fault.error)}</Code>"
            f"<Message>{_xml(fault.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        error_type = DYNAMODB_ERROR_PREFIX + fault.error if service == "dynamodb" else fault.error
        data = json.dumps({"__type": error_type, "message": fault.message}).encode()
        content_type = f"application/x-amz-json-{json_version}" if protocol == "json" else "application/json"
        headers = [
            ("Content-Type", content_type),
            ("x-amzn-ErrorType", fault.error),
            # JSON services that were query services (CloudWatch, SQS) read the code from here.
            ("x-amzn-query-error", f"{fault.error};{sender}"),
        ]
    reason = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    start_response(
        f"{fault.status} {reason.get(fault.status, 'Error')}",
        [*headers, ("x-amzn-RequestId", request_id), ("Content-Length", str(len(data)))],
    )
    return [data]


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
