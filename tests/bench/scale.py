"""One push fanned out to N services of one cluster (the state machine's Map, bounded by
MaxConcurrency, starting one service execution each): wall time, API calls, the largest history
and payload against the quotas, and whether every service ended SUCCEEDED on the new digest."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .deployments import Deployment, DeploymentBench


@dataclass
class ScaleResult:
    services: int
    setup_s: float
    deployment: Deployment
    max_concurrency: int | None
    counts: dict[str, int] = field(default_factory=dict)  # the push's summary: services per outcome
    on_new_digest: int = 0  # services whose task definition runs the pushed digest afterwards
    peak_concurrent_iterations: int = 0  # Map iterations running at once (from the history)
    # deckhand's API calls the token buckets refused (AWS's documented rates, throttling.py),
    # by action; the functions' SDKs retried each of them.
    throttled: dict[str, int] = field(default_factory=dict)
    lambda_throttled: dict[str, int] = field(default_factory=dict)
    # Other executions started for the same push (EventBridge delivers an event more than once
    # now and then): "status (their summary's counts or error)", each.
    twins: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return int(self.counts.get("SUCCEEDED", 0))

    @property
    def failed(self) -> int:
        return self.services - self.succeeded


def _peak_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = current = 0
    for _, delta in points:
        current += delta
        peak = max(peak, current)
    return peak


def run_scale(bench: DeploymentBench, count: int, timeout: float = 1800) -> ScaleResult:
    began = time.monotonic()
    repository, cluster, names = bench.fleet(count)
    setup_s = time.monotonic() - began
    # Full buckets and no counts from the setup: what the push alone meets.
    bench.cloud.control("DELETE", "throttling", {})
    lambda_before = dict(bench.cloud.control("GET", "lambda/concurrency", {})[1]["throttled"])
    deployment = bench.deploy(f"scale x{count}", repository, cluster, names[0], timeout=timeout)
    throttling = bench.cloud.control("GET", "throttling", {})[1]
    lambda_after = bench.cloud.control("GET", "lambda/concurrency", {})[1]["throttled"]
    plans = [o for o in deployment.state_outputs("Plan deployment") if isinstance(o, dict)]
    max_concurrency = plans[0].get("maxConcurrency") if plans else None
    result = ScaleResult(count, setup_s, deployment, max_concurrency)
    result.throttled = dict(throttling["refused"])
    result.lambda_throttled = {name: n - lambda_before.get(name, 0) for name, n in lambda_after.items()
                               if n > lambda_before.get(name, 0)}
    if isinstance(deployment.output, dict):
        result.counts = dict(deployment.output.get("counts") or {})
    for twin in bench.aws.executions_for(deployment.digest):
        if twin["executionArn"] == deployment.execution_arn:
            continue
        described = bench.aws.sfn.describe_execution(executionArn=twin["executionArn"])
        try:
            summary = json.loads(described.get("output") or described.get("cause") or "{}")
        except ValueError:
            summary = {}
        counts = summary.get("counts") if isinstance(summary, dict) else None
        result.twins.append(f"{described['status']} ({counts or described.get('error') or 'no summary'})")
    # What ECS says afterwards, independently of the execution's own report.
    ecs, pinned = bench.aws.ecs, f"@{deployment.digest}"
    images: dict[str, bool] = {}
    for i in range(0, len(names), 10):
        for svc in ecs.describe_services(cluster=cluster, services=names[i:i + 10])["services"]:
            definition = svc["taskDefinition"]
            if definition not in images:
                described = ecs.describe_task_definition(taskDefinition=definition)["taskDefinition"]
                images[definition] = any(c["image"].endswith(pinned) for c in described["containerDefinitions"])
            result.on_new_digest += images[definition]
    result.peak_concurrent_iterations = _peak_overlap(_iterations(deployment.history))
    return result


def _iterations(history: list[dict]) -> list[tuple[float, float]]:
    """(start, end) of every Map iteration, from MapIteration* events (matched by index)."""
    started: dict[Any, float] = {}
    spans = []
    for event in history:
        kind = event["type"]
        details = event.get("mapIterationStartedEventDetails") or event.get("mapIterationSucceededEventDetails") \
            or event.get("mapIterationFailedEventDetails") or event.get("mapIterationAbortedEventDetails") or {}
        key = (details.get("name"), details.get("index"))
        at = event["timestamp"].timestamp() if hasattr(event["timestamp"], "timestamp") else float(event["timestamp"])
        if kind == "MapIterationStarted":
            started[key] = at
        elif kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted") and key in started:
            spans.append((started.pop(key), at))
    return spans
