"""CloudWatch's embedded metric format (EMF): metrics out of the functions' log lines.

A function writes a JSON object with an ``_aws`` member to its log; CloudWatch Logs extracts the
metrics it declares ("Specification: Embedded metric format",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):

* ``_aws.Timestamp``: milliseconds since the epoch (required);
* ``_aws.CloudWatchMetrics``: an array of directives, each with ``Namespace`` (1-1,024
  characters), ``Dimensions`` (an array of dimension sets, each an array of at most 30 member
  names) and ``Metrics`` (at most 100 ``{"Name", "Unit"?, "StorageResolution"?}``);
* every dimension named must be a member of the root object with a string value, and every
  metric a member with a number or an array of at most 100 numbers ("Target members": "the
  values MUST be numbers or arrays of numbers");
* each metric is published once per dimension set of its directive, at ``Timestamp``.

"If the EMF is invalid, the log event is still ingested but no metrics are extracted": an invalid
record is logged here (``LocalCloud.emf.rejected``) and publishes nothing, so a test can show it.

The extractor tails each function's log file (lambda_runtime.py writes a sandbox's stdout there)
and writes the metrics into moto's CloudWatch backend of the function's account and Region, as
CloudWatch Logs does without going through the account's PutMetricData quota.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

LOG = logging.getLogger("localcloud.emf")

MAX_DIMENSIONS = 30
MAX_METRICS = 100
MAX_VALUES = 100
MAX_NAMESPACE = 1024


class InvalidRecord(ValueError):
    pass


def metric_data(record: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace, PutMetricData entries) of an EMF record; InvalidRecord when CloudWatch would
    extract nothing from it."""
    aws = record.get("_aws")
    if not isinstance(aws, dict):
        raise InvalidRecord("_aws must be an object")
    stamp = aws.get("Timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
        raise InvalidRecord("_aws.Timestamp must be a number of milliseconds")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        raise InvalidRecord("_aws.CloudWatchMetrics must be a non-empty array")
    when = datetime.fromtimestamp(stamp / 1000.0, tz=timezone.utc)
    found = []
    for index, directive in enumerate(directives):
        where = f"_aws.CloudWatchMetrics[{index}]"
        namespace = directive.get("Namespace") if isinstance(directive, dict) else None
        if not isinstance(namespace, str) or not 1 <= len(namespace) <= MAX_NAMESPACE:
            raise InvalidRecord(f"{where}.Namespace must be 1-{MAX_NAMESPACE} characters")
        sets = directive.get("Dimensions")
        metrics = directive.get("Metrics")
        if not isinstance(sets, list) or not all(isinstance(s, list) for s in sets):
            raise InvalidRecord(f"{where}.Dimensions must be an array of dimension sets")
        if not isinstance(metrics, list) or not 1 <= len(metrics) <= MAX_METRICS:
            raise InvalidRecord(f"{where}.Metrics must hold 1-{MAX_METRICS} metric definitions")
        for names in sets:
            if len(names) > MAX_DIMENSIONS:
                raise InvalidRecord(f"{where}: a dimension set holds at most {MAX_DIMENSIONS} dimensions")
            for name in names:
                if not isinstance(record.get(name), str):
                    raise InvalidRecord(f"{where}: dimension {name!r} is not a string member of the record")
        entries = []
        for metric in metrics:
            name = metric.get("Name") if isinstance(metric, dict) else None
            if not isinstance(name, str) or not name:
                raise InvalidRecord(f"{where}: a metric without a Name")
            values = record.get(name)
            values = values if isinstance(values, list) else [values]
            if not values or len(values) > MAX_VALUES or any(
                    isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
                raise InvalidRecord(f"{where}: metric {name!r} is not a number or an array of at most {MAX_VALUES} numbers")
            for names in sets or [[]]:
                entry: dict[str, Any] = {
                    "MetricName": name,
                    "Dimensions": [{"Name": n, "Value": record[n]} for n in names],
                    "Timestamp": when,
                    "Values": [float(v) for v in values],
                }
                if metric.get("Unit"):
                    entry["Unit"] = metric["Unit"]
                entries.append(entry)
        found.append((namespace, entries))
    return found


class EmfExtractor:
    """Tails the functions' logs and publishes the metrics of their EMF records."""

    def __init__(self, log_dir: Path, function_arn: Callable[[str], str | None], interval: float = 0.3) -> None:
        self._log_dir = log_dir
        self._function_arn = function_arn
        self._interval = interval
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.rejected: list[tuple[str, str]] = []  # (function, why)

    def start(self) -> "EmfExtractor":
        self._thread = threading.Thread(target=self._run, name="localcloud-emf", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.scan()
            except Exception:  # noqa: BLE001 - a bad line must not stop extraction
                LOG.exception("EMF extraction failed")

    def scan(self) -> None:
        for path in sorted(self._log_dir.glob("*.log")):
            offset = self._offsets.get(path, 0)
            try:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
            except OSError:
                continue
            if not chunk:
                continue
            self._offsets[path] = offset + len(chunk)
            data = self._partial.pop(path, b"") + chunk
            *lines, rest = data.split(b"\n")
            if rest:
                self._partial[path] = rest
            for line in lines:
                if b'"_aws"' in line:
                    self._extract(path.stem, line)

    def _extract(self, function: str, line: bytes) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            return  # not JSON: an ordinary log line
        if not isinstance(record, dict) or "_aws" not in record:
            return
        arn = self._function_arn(function)
        if arn is None:
            return
        account, region = arn.split(":")[4], arn.split(":")[3]
        try:
            found = metric_data(record)
        except InvalidRecord as why:
            self.rejected.append((function, str(why)))
            LOG.warning("%s: invalid EMF record, no metrics extracted: %s", function, why)
            return
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.core.utils import utcnow

        backend = cloudwatch_backends[account][region]
        naive = utcnow().tzinfo is None
        for namespace, entries in found:
            if naive:
                entries = [{**e, "Timestamp": e["Timestamp"].replace(tzinfo=None)} for e in entries]
            backend.put_metric_data(namespace, entries)
            self.published += len(entries)
