"""EventBridge scheduled rules, run: moto stores a rule's ScheduleExpression and never fires it.

Following the Amazon EventBridge User Guide, "Creating a rule that runs on a schedule in Amazon
EventBridge" and "Schedule expressions for rules" (rate expressions,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html):

* ``rate(value unit)``: ``value`` a positive whole number, ``unit`` minute(s), hour(s) or day(s);
  "If the value is equal to 1, then the unit must be singular. If the value is greater than 1,
  the unit must be plural. For example, rate(1 hours) and rate(5 hour) are not valid." PutRule
  refuses anything else with ``ValidationException`` ("Parameter ScheduleExpression is not
  valid."), which moto does not (it takes ``rate(1 minutes)`` and ``rate(0 minutes)``);
* a schedule is supported only on the default event bus (moto refuses the rest already);
* an ENABLED rule fires every period, counted from when the rule was put, with the event
  ``{"source": "aws.events", "detail-type": "Scheduled Event", "resources": [RULE ARN],
  "detail": {}}``, delivered to its targets (with their ``Input``) like any matched event; a
  DISABLED rule does not fire.

``cron(...)`` expressions are accepted (moto checks their shape) and not run here: deckhand
uses none. ``GET /_localcloud/events/schedules`` lists the running schedules and when each fires
next; ``POST /_localcloud/events/schedules {"fire": RULE NAME or ARN}`` fires one now, as its
next tick would (tests that cannot wait for a ten-minute interval).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from typing import Any, Callable

from moto.events.models import EventsBackend, Rule, events_backends
from moto.events.exceptions import ValidationException

from .events import EventDelivery, rfc3339, target_input

LOG = logging.getLogger("localcloud.schedules")

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """The period of a valid rate expression; None for a cron expression. Raises
    ValidationException for what EventBridge refuses."""
    if expression.startswith("cron("):
        return None
    match = _RATE.match(expression)
    if not match:
        raise ValidationException("Parameter ScheduleExpression is not valid.")
    value, unit = int(match.group(1)), match.group(2)
    singular = not unit.endswith("s")
    if value < 1 or singular != (value == 1):
        raise ValidationException("Parameter ScheduleExpression is not valid.")
    return value * _SECONDS[unit.rstrip("s")]


def scheduled_event(rule: Rule, at: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Scheduled Event of `rule` at `at`, as targets see it and as moto keeps events."""
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account_id,
        "time": rfc3339(at),
        "region": rule.region_name,
        "resources": [rule.arn],
        "detail": {},
    }
    return event, {**event, "time": at}


class Schedules:
    """Validates schedule expressions at PutRule and fires ENABLED rate rules from a thread."""

    def __init__(self, delivery: EventDelivery, tick_seconds: float = 1.0):
        self.delivery = delivery
        self.tick_seconds = tick_seconds
        self._first_seen: dict[str, float] = {}  # rule ARN → when its current schedule was put
        self._fired: dict[str, int] = {}  # rule ARN → ticks fired so far
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eventbridge-schedules", daemon=True)
        self._originals: list[tuple[type, str, Callable]] = []

    def install(self) -> None:
        schedules = self
        original = EventsBackend.put_rule

        def put_rule(backend: EventsBackend, name: str, *args: Any, **kwargs: Any) -> Rule:
            expression = kwargs.get("scheduled_expression")
            if expression:
                rate_seconds(expression)
            rule = original(backend, name, *args, **kwargs)
            if expression:
                with schedules._lock:  # a rule put again starts its period again
                    schedules._first_seen[rule.arn] = time.time()
                    schedules._fired[rule.arn] = 0
            return rule

        self._originals.append((EventsBackend, "put_rule", EventsBackend.__dict__["put_rule"]))
        EventsBackend.put_rule = put_rule  # type: ignore[method-assign]
        self._thread.start()

    def uninstall(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)

    def _rules(self) -> list[Rule]:
        rules = []
        for account in list(events_backends.keys()):
            for region, backend in list(events_backends[account].items()):
                bus = backend.event_buses.get("default")
                if bus is not None:
                    rules.extend(r for r in list(bus.rules.values()) if r.scheduled_expression)
        return rules

    def _due(self, rule: Rule, now: float) -> bool:
        """Whether `rule` has a tick due at `now` (and counts it as fired)."""
        try:
            period = rate_seconds(rule.scheduled_expression)
        except ValidationException:
            return False
        if period is None or rule.state != "ENABLED":
            return False
        with self._lock:
            start = self._first_seen.setdefault(rule.arn, now)
            ticks = int((now - start) // period)
            if ticks <= self._fired.get(rule.arn, 0):
                return False
            self._fired[rule.arn] = ticks
            return True

    def fire(self, rule: Rule, at: float | None = None) -> int:
        """Delivers `rule`'s Scheduled Event to its targets; returns how many."""
        event, moto_event = scheduled_event(rule, time.time() if at is None else at)
        for target in rule.targets:
            self.delivery.submit(rule.arn, target, target_input(target, event, moto_event))
        LOG.info("schedule %s fired (%d target(s))", rule.name, len(rule.targets))
        return len(rule.targets)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            now = time.time()
            for rule in self._rules():
                try:
                    if self._due(rule, now):
                        self.fire(rule, now)
                except Exception:  # noqa: BLE001 - one broken rule must not stop the others
                    LOG.exception("schedule %s", getattr(rule, "name", "?"))

    def describe(self) -> list[dict[str, Any]]:
        listed = []
        for rule in self._rules():
            try:
                period = rate_seconds(rule.scheduled_expression)
            except ValidationException:
                period = None
            with self._lock:
                start = self._first_seen.get(rule.arn)
                fired = self._fired.get(rule.arn, 0)
            next_at = None if period is None or start is None else start + (fired + 1) * period
            listed.append({"name": rule.name, "arn": rule.arn, "expression": rule.scheduled_expression,
                           "state": rule.state, "fired": fired, "next": next_at})
        return listed

    def control(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        """``/_localcloud/events/schedules``: GET lists, POST {"fire": NAME or ARN} fires now."""
        if method == "GET":
            return 200, {"schedules": self.describe()}
        if method == "POST":
            unknown = set(body) - {"fire"}
            if unknown or not body.get("fire"):
                raise ValueError('give {"fire": RULE NAME or ARN}')
            wanted = str(body["fire"])
            rule = next((r for r in self._rules() if wanted in (r.name, r.arn)), None)
            if rule is None:
                return 404, {"error": f"no scheduled rule {wanted} on a default bus"}
            return 200, {"rule": rule.arn, "targets": self.fire(rule)}
        return 405, {"error": f"{method} not allowed"}
