"""The local cloud turns EMF records in a function's log into CloudWatch metrics, as CloudWatch
Logs does ("Specification: Embedded metric format"), and extracts nothing from an invalid one
(tests/localcloud/emf.py)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from localcloud.emf import InvalidRecord, metric_data

pytestmark = pytest.mark.timeout(120)


def record(namespace: str, **members: Any) -> dict[str, Any]:
    return {
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
            {"Namespace": namespace, "Dimensions": [["Service", "Outcome"], ["Outcome"]],
             "Metrics": [{"Name": "Deployments", "Unit": "Count"}]},
            {"Namespace": namespace, "Dimensions": [["Service"]], "Metrics": [{"Name": "TimeToDetect", "Unit": "Seconds"}]},
        ]},
        "Service": "api", "Outcome": "ROLLED_BACK", "Deployments": 1, "TimeToDetect": [40, 65.5], **members,
    }


def test_each_metric_is_published_once_per_dimension_set_of_its_directive() -> None:
    found = metric_data(record("Deckhand"))
    deployments = found[0][1]
    assert [[d["Name"] for d in e["Dimensions"]] for e in deployments] == [["Service", "Outcome"], ["Outcome"]]
    assert deployments[0]["Values"] == [1.0] and deployments[0]["Unit"] == "Count"
    assert found[1][1][0]["Values"] == [40.0, 65.5], "an array member is several values"


@pytest.mark.parametrize("broken, why", [
    ({"_aws": {"CloudWatchMetrics": []}}, "Timestamp"),
    ({"Outcome": 3}, "dimension 'Outcome' is not a string member"),
    ({"Deployments": "one"}, "metric 'Deployments' is not a number"),
    ({"TimeToDetect": list(range(101))}, "at most 100 numbers"),
])
def test_an_invalid_record_yields_no_metric(broken: dict, why: str) -> None:
    with pytest.raises(InvalidRecord, match=why):
        metric_data(record("Deckhand", **broken) if "_aws" not in broken else {**record("Deckhand"), **broken})


def test_a_functions_emf_line_becomes_a_metric_get_metric_data_reads(cloud: Any, make_function) -> None:
    namespace = f"EmfTest-{uuid.uuid4().hex[:8]}"
    function = make_function()
    lines = [json.dumps(record(namespace)), "an ordinary log line", json.dumps(record(namespace, Deployments="bad"))]
    answer = cloud.client("lambda").invoke(FunctionName=function["FunctionName"],
                                           Payload=json.dumps({"fake": {"print": lines}}).encode())
    assert "FunctionError" not in answer, answer["Payload"].read()
    watch = cloud.client("cloudwatch")

    def deployments() -> list[float]:
        now = datetime.now(timezone.utc)
        result = watch.get_metric_data(
            MetricDataQueries=[{"Id": "d", "MetricStat": {"Metric": {
                "Namespace": namespace, "MetricName": "Deployments",
                "Dimensions": [{"Name": "Service", "Value": "api"}, {"Name": "Outcome", "Value": "ROLLED_BACK"}]},
                "Period": 60, "Stat": "Sum"}}],
            StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1))
        return result["MetricDataResults"][0]["Values"]

    deadline = time.monotonic() + 20
    while not deployments() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert sum(deployments()) == 1.0, "the valid record counted once; the invalid one added nothing"
    assert any(function["FunctionName"] == name and "not a number" in why for name, why in cloud.emf.rejected)
