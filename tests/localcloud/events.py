"""EventBridge for the local cloud: ECR push events in, rule targets out.

moto matches events against rules (its own pattern matching stays in charge) but
delivers only to log groups, SQS, other buses and API destinations, and ECR's
PutImage emits nothing. This module

* makes a successful ECR PutImage put the `ECR Image Action` event on the
  default bus of the repository's account and region, shaped like AWS's;
* gives ECR images the registry's digest (SHA-256 of the manifest) and keeps
  the image a re-pushed tag moved away from, as ECR does;
* delivers what a rule matched to Step Functions (StartExecution), Lambda
  (asynchronous Invoke) and SQS targets, applying the target's Input, InputPath
  or InputTransformer, from a background thread: EventBridge is asynchronous,
  and a target must never run inside the PutEvents/PutImage call that caused it;
* hands every other target type back to moto;
* on demand (``POST /_localcloud/events/chaos``, :class:`DeliveryChaos`) delivers
  matching events twice, out of order, or not at all, as EventBridge may: "EventBridge
  delivers events at least once" and "does not guarantee the order" (Amazon EventBridge
  User Guide, "Event delivery" / "Events"), and AWS services emit their events on a
  best-effort basis (Amazon ECS Developer Guide, "Amazon ECS events": "Amazon ECS sends
  events on a best effort basis"). Without a chaos setting delivery is once and in order.

Deliveries go through the local cloud's own endpoint with boto3, the same path
an AWS service-to-service call takes, so they hit the patched Lambda runtime and
the Step Functions interpreter exactly like a client would.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
import queue
import threading
import time
import uuid
from typing import Any, Callable

import boto3
from botocore.config import Config
from jsonpath_ng.ext import parse as jsonpath_parse

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecr.models import ECRBackend
from moto.ecr.models import Image as ECRImage
from moto.events.models import Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

from .registries import check_target_role, is_event_bus, put_on_bus

LOG = logging.getLogger("localcloud.events")

ECR_SOURCE = "aws.ecr"
ECR_DETAIL_TYPE = "ECR Image Action"
DELIVERED_SERVICES = ("states", "lambda", "sqs")
DELIVERY_ATTEMPTS = 3


def rfc3339(value: Any) -> str:
    """EventBridge's `time`: RFC 3339 in UTC, whole seconds. moto keeps epoch floats."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.datetime):
        moment = value.astimezone(datetime.timezone.utc)
    else:
        moment = datetime.datetime.fromtimestamp(float(value), tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def aws_event(moto_event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge hands it to a target (moto's internal copy has an
    epoch `time` and an `ingestion-time` that AWS never shows)."""
    event = {
        "version": moto_event.get("version", "0"),
        "id": moto_event["id"],
        "detail-type": moto_event["detail-type"],
        "source": moto_event["source"],
        "account": moto_event["account"],
        "time": rfc3339(moto_event["time"]),
        "region": moto_event["region"],
        "resources": list(moto_event.get("resources", [])),
        "detail": moto_event["detail"],
    }
    if "replay-name" in moto_event:
        event["replay-name"] = moto_event["replay-name"]
    return event


def target_input(target: dict[str, Any], event: dict[str, Any], moto_event: dict[str, Any]) -> str:
    """The text a target receives: Input, InputPath or InputTransformer, else the event."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        matches = jsonpath_parse(target["InputPath"]).find(event)
        return json.dumps(matches[0].value if matches else None)
    transformer = target.get("InputTransformer")
    if transformer:
        transformed = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event={**moto_event, "time": event["time"]},
        )
        return json.dumps(transformed)
    return json.dumps(event)


class DeliveryChaos:
    """How delivery misbehaves while set: ``duplicate`` (each matching event is delivered
    twice, the copy ``duplicateAfterSeconds`` later), ``reorderWithinSeconds`` (matching
    events are held that long and delivered newest first), ``drop`` (matching events are
    lost). Only events whose detail-type is in ``detailTypes`` (all when empty) and that
    are bound for ``targets`` whose ARN contains one of the given strings (all when empty)."""

    KEYS = {"duplicate", "duplicateAfterSeconds", "reorderWithinSeconds", "drop", "detailTypes", "targets"}

    def __init__(self, settings: dict[str, Any]):
        unknown = set(settings) - self.KEYS
        if unknown:
            raise ValueError(f"unknown chaos settings {sorted(unknown)} (known: {sorted(self.KEYS)})")
        self.duplicate = bool(settings.get("duplicate", False))
        self.duplicate_after = float(settings.get("duplicateAfterSeconds", 0.5))
        self.reorder_within = float(settings.get("reorderWithinSeconds", 0))
        self.drop = bool(settings.get("drop", False))
        self.detail_types = set(settings.get("detailTypes") or [])
        self.targets = list(settings.get("targets") or [])
        self.duplicated = self.reordered = self.dropped = 0

    def applies(self, target: dict[str, Any], body: str) -> bool:
        if self.targets and not any(part in target.get("Arn", "") for part in self.targets):
            return False
        if not self.detail_types:
            return True
        try:
            return json.loads(body).get("detail-type") in self.detail_types
        except (ValueError, AttributeError):
            return False

    def describe(self) -> dict[str, Any]:
        return {"duplicate": self.duplicate, "duplicateAfterSeconds": self.duplicate_after,
                "reorderWithinSeconds": self.reorder_within, "drop": self.drop,
                "detailTypes": sorted(self.detail_types), "targets": self.targets,
                "duplicated": self.duplicated, "reordered": self.reordered, "dropped": self.dropped}


Item = tuple[str, dict[str, Any], str, int]  # rule ARN, target, body, sequence number


class EventDelivery:
    """A single background worker delivering matched events to their targets, in
    the order they were matched, retrying a failed delivery a few times like
    EventBridge's retry policy (briefly: this is a test cloud).

    Every accepted delivery gets a sequence number, so that a test can wait for what was
    matched before it asked (``wait_idle``) even in a busy account, where the worker is
    never idle."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._clients: dict[tuple[str, str], Any] = {}
        self._queue_urls: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, name="eventbridge-delivery", daemon=True)
        self._progress = threading.Condition()
        self._next_sequence = 0
        self._outstanding: set[int] = set()  # accepted, not yet handed over (or given up on)
        self._stopping = False
        self.delivered = 0
        self.failed = 0
        self.chaos: DeliveryChaos | None = None
        self._held: list[tuple[float, Item]] = []
        self._held_lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering; what is still queued is dropped (the cloud is going away)."""
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout=10)

    @property
    def pending(self) -> int:
        """Deliveries accepted and not yet handed over."""
        with self._progress:
            return len(self._outstanding)

    def _accept(self, rule_arn: str, target: dict[str, Any], body: str) -> Item:
        with self._progress:
            sequence = self._next_sequence
            self._next_sequence += 1
            self._outstanding.add(sequence)
        return (rule_arn, copy.deepcopy(target), body, sequence)

    def _done(self, sequence: int) -> None:
        with self._progress:
            self._outstanding.discard(sequence)
            self._progress.notify_all()

    def submit(self, rule_arn: str, target: dict[str, Any], body: str) -> None:
        chaos = self.chaos
        if chaos is None or not chaos.applies(target, body):
            self._queue.put(self._accept(rule_arn, target, body))
            return
        if chaos.drop:
            chaos.dropped += 1
            return
        if chaos.duplicate:
            chaos.duplicated += 1
            self._enqueue_later(chaos.duplicate_after, self._accept(rule_arn, target, body))
        item = self._accept(rule_arn, target, body)
        if chaos.reorder_within > 0:
            self._hold(chaos, item)
        else:
            self._queue.put(item)

    def control(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        """``/_localcloud/events/chaos``: POST sets, GET shows (with counts), DELETE ends it."""
        if method == "POST":
            self.chaos = DeliveryChaos(body)
            return 200, self.chaos.describe()
        if method == "GET":
            return 200, self.chaos.describe() if self.chaos else {}
        if method == "DELETE":
            previous, self.chaos = self.chaos, None
            self._release_held()
            return 200, previous.describe() if previous else {}
        return 405, {"error": f"{method} not allowed"}

    def _enqueue_later(self, seconds: float, item: Item) -> None:
        # Accepted (outstanding) at once: wait_idle waits for the copy too.
        timer = threading.Timer(seconds, self._queue.put, args=(item,))
        timer.daemon = True
        timer.start()

    def _hold(self, chaos: DeliveryChaos, item: Item) -> None:
        """Keeps events for ``reorderWithinSeconds``, then delivers the batch newest first."""
        with self._held_lock:
            first = not self._held
            self._held.append((time.monotonic(), item))
            chaos.reordered += 1
        if first:
            timer = threading.Timer(chaos.reorder_within, self._release_held)
            timer.daemon = True
            timer.start()

    def _release_held(self) -> None:
        with self._held_lock:
            batch, self._held = self._held, []
        for _, item in reversed(batch):
            self._queue.put(item)

    def wait_idle(self, timeout: float | None = 60) -> bool:
        """Tests: block until everything accepted so far has been handed over (or given up
        on); deliveries accepted meanwhile are not waited for. False on timeout."""
        with self._progress:
            before = self._next_sequence
            return self._progress.wait_for(
                lambda: not self._outstanding or min(self._outstanding) >= before, timeout)

    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.session.Session().client(
                service,
                region_name=region,
                endpoint_url=self.endpoint,
                aws_access_key_id="localcloud",
                aws_secret_access_key="localcloud",
                config=Config(retries={"max_attempts": 1}),
            )
        return self._clients[key]

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stopping:
                return
            rule_arn, target, body, sequence = item
            for attempt in range(1, DELIVERY_ATTEMPTS + 1):
                try:
                    self._deliver(target, body)
                    self.delivered += 1
                    break
                except Exception as exc:  # noqa: BLE001 - any failure is retried, then logged
                    if attempt == DELIVERY_ATTEMPTS:
                        self.failed += 1
                        LOG.error("rule %s: delivery to %s failed: %s", rule_arn, target["Arn"], exc)
                    else:
                        time.sleep(0.2 * attempt)
            self._done(sequence)

    def _deliver(self, target: dict[str, Any], body: str) -> None:
        arn = parse_arn(target["Arn"])
        if is_event_bus(target["Arn"]):
            event = json.loads(body)
            check_target_role(target, event)
            put_on_bus(target["Arn"], event)
        elif arn.service == "states":
            self._client("stepfunctions", arn.region).start_execution(
                stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=body
            )
        elif arn.service == "lambda":
            self._client("lambda", arn.region).invoke(
                FunctionName=target["Arn"], InvocationType="Event", Payload=body.encode()
            )
        elif arn.service == "sqs":
            sqs = self._client("sqs", arn.region)
            url = self._queue_urls.get(target["Arn"])
            if url is None:  # one lookup per queue: the worker is the bottleneck of a busy account
                url = sqs.get_queue_url(QueueName=arn.resource_id, QueueOwnerAWSAccountId=arn.account)["QueueUrl"]
                self._queue_urls[target["Arn"]] = url
            kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
            group_id = target.get("SqsParameters", {}).get("MessageGroupId")
            if group_id:
                kwargs["MessageGroupId"] = group_id
            sqs.send_message(**kwargs)
        else:  # pragma: no cover - filtered by the caller
            raise ValueError(f"not a delivered target type: {target['Arn']}")


def _keep_retagged_images(repository: Any, before: list[Any], pushed: Any) -> None:
    """Pushing a tag that another image holds moves the tag in ECR: the other
    image stays, untagged, and pullable by digest. moto deletes it instead (its
    PutImage removes the tag with BatchDeleteImage), which makes a rollback to the
    previous digest of a re-pushed tag impossible. Put such images back."""
    for index, old in enumerate(before):
        if old is pushed or old in repository.images:
            continue
        old.image_tags = []
        old.image_tag = None
        repository.images.insert(min(index, len(repository.images)), old)


class EventHooks:
    """Installs and removes this module's moto patches: ECR (push events,
    registry semantics) and EventBridge (delivery to targets)."""

    def __init__(self, delivery: EventDelivery):
        self.delivery = delivery
        self._originals: list[tuple[type, str, Callable]] = []

    def emit(self, entry: dict[str, Any], account_id: str = DEFAULT_ACCOUNT_ID, region: str = "us-east-1") -> None:
        """Put one PutEvents entry ({"Source", "DetailType", "Resources", "Detail"})
        on the default bus, as an AWS service does for its own events."""
        results = events_backends[account_id][region].put_events([entry])
        if results and "ErrorCode" in results[0]:
            LOG.error("event rejected: %s (%s)", results[0], entry)

    def install(self) -> None:
        hooks = self
        original_send = Rule.send_to_targets
        original_put_image = ECRBackend.put_image

        def send_to_targets(rule: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
            # AWS never delivers for a disabled rule; moto does. A scheduled rule without an
            # event pattern fires on its schedule only (schedules.py): moto's empty pattern
            # would match every event put on the bus.
            if rule.state != "ENABLED" or not rule.event_pattern.matches_event(original_event):
                return
            if rule.scheduled_expression and not rule.event_pattern.get_pattern():
                return
            event = aws_event(original_event)
            for target in rule.targets:
                service = parse_arn(target["Arn"]).service
                if is_event_bus(target["Arn"]):
                    # Another bus gets the event as it was (registries.py), never transformed.
                    hooks.delivery.submit(rule.arn, target, json.dumps(event))
                elif service in DELIVERED_SERVICES:
                    body = target_input(target, event, original_event) if transform_input else json.dumps(event)
                    hooks.delivery.submit(rule.arn, target, body)
                else:
                    # moto's own delivery for the rest, one target at a time.
                    single = copy.copy(rule)
                    single.targets = [target]
                    original_send(single, original_event, transform_input)

        def put_image(backend: ECRBackend, repository_name: str, image_manifest: str, image_tag: str,
                      image_manifest_mediatype: str | None = None, digest: str | None = None) -> Any:
            repository = backend.repositories.get(repository_name)
            before = list(repository.images) if repository is not None else []
            image = original_put_image(backend, repository_name, image_manifest, image_tag,
                                       image_manifest_mediatype, digest)
            repository = backend.repositories[repository_name]
            _keep_retagged_images(repository, before, image)
            detail = {
                "result": "SUCCESS",
                "repository-name": repository_name,
                "image-digest": image.get_image_digest(),
                "action-type": "PUSH",
                # An untagged push (a manifest list's child, an attestation) has
                # an empty tag in AWS's events; consumers must skip those.
                "image-tag": image_tag or "",
                "manifest-media-type": image.image_manifest_media_type or "",
            }
            hooks.emit(
                {
                    "Source": ECR_SOURCE,
                    "DetailType": ECR_DETAIL_TYPE,
                    "Resources": [repository.arn],
                    "Detail": json.dumps(detail),
                },
                backend.account_id,
                backend.region_name,
            )
            return image

        def create_digest(image: ECRImage) -> None:
            # A registry's digest is the SHA-256 of the manifest as pushed; moto
            # hashes the concatenated layer digests, so two manifests with the same
            # layers (a new config or new annotations; any layer-less manifest)
            # got the same digest.
            image._image_digest = "sha256:" + hashlib.sha256(image.image_manifest.encode()).hexdigest()

        self._patch(Rule, "send_to_targets", send_to_targets)
        self._patch(ECRBackend, "put_image", put_image)
        self._patch(ECRImage, "_create_digest", create_digest)

    def _patch(self, owner: type, name: str, replacement: Callable) -> None:
        self._originals.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, replacement)

    def uninstall(self) -> None:
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)
