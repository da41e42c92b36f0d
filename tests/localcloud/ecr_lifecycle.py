"""ECR lifecycle policies, carried out: moto stores PutLifecyclePolicy and never expires anything.

Evaluation follows the Amazon ECR User Guide, "Automate the cleanup of images by using lifecycle
policies in Amazon ECR" (https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html,
"Lifecycle policy evaluation rules") and "Lifecycle policy properties in Amazon ECR"
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html):

* rules are applied by ``rulePriority``, lowest first; a ``tagStatus: any`` rule comes last;
* an image is expired by exactly one or zero rules, and an image that matches the tagging
  requirements of a higher-priority rule cannot be expired by a lower-priority rule; lower rules
  still *identify* (count) it as if it had not been expired;
* ``tagStatus``: ``untagged`` selects images without tags, ``any`` every image, ``tagged`` the
  images whose tags match *every* entry of ``tagPrefixList`` (prefix) or ``tagPatternList``
  (``*`` wildcards), each entry against any of the image's tags ("If you specify multiple tags,
  only images with all specified tags are selected");
* ``imageCountMoreThan N``: selected images sorted by ``imagePushedAt``, newest first, and all
  after the first N expired; ``sinceImagePushed N days``: images pushed more than N days ago
  expired (0 days: every selected image). Expiration always expires older images first.

When it runs: AWS evaluates policies periodically and expires within about 24 hours. Here a
repository's policy runs after every PutImage to it (the moment a tag moves, the image it left
becomes untagged: the first moment an untagged rule can bite), and on demand with
``POST /_localcloud/ecr/lifecycle/run {"repository"?: NAME, "at"?: EPOCH_SECONDS}`` (``at``
evaluates as of a later time, for age rules), which answers what it expired. A timer would make
tests racy; PutImage and the route make every expiry happen at a moment a test chooses.
``GET /_localcloud/ecr/lifecycle/run`` lists what was expired so far.

Not modelled: ``sinceImagePulled``/``sinceImageTransitioned`` count types and the archive
storage class (such rules are skipped), ``ECR Lifecycle Policy Action`` events.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
from typing import Any, Callable

from moto.ecr.models import ECRBackend, ecr_backends

LOG = logging.getLogger("localcloud.ecr_lifecycle")
DAY = 86400


def _tagged_match(tags: list[str], selection: dict[str, Any]) -> bool:
    """A ``tagged`` rule selects an image when every prefix (or pattern) matches one of its tags."""
    if not tags:
        return False
    prefixes = selection.get("tagPrefixList") or []
    patterns = selection.get("tagPatternList") or []
    if prefixes:
        return all(any(tag.startswith(p) for tag in tags) for p in prefixes)
    if patterns:
        return all(any(fnmatch.fnmatchcase(tag, p) for tag in tags) for p in patterns)
    return False


def selects(selection: dict[str, Any], tags: list[str]) -> bool:
    status = selection.get("tagStatus")
    if status == "any":
        return True
    if status == "untagged":
        return not tags
    if status == "tagged":
        return _tagged_match(tags, selection)
    return False


def evaluate(policy: dict[str, Any], images: list[dict[str, Any]], now: float) -> list[tuple[str, int]]:
    """``images``: ``{"digest", "tags", "pushedAt", "order"}`` (``order``: push order, breaking
    ties of the second-resolution ``pushedAt``). Returns ``(digest, rulePriority)`` of each image
    the policy expires."""
    rules = sorted(policy.get("rules") or [], key=lambda r: int(r.get("rulePriority", 0)))
    claimed: set[str] = set()  # matched by a higher-priority rule: no lower rule may expire them
    expired: list[tuple[str, int]] = []
    for rule in rules:
        if (rule.get("action") or {}).get("type", "expire") != "expire":
            continue
        selection = rule.get("selection") or {}
        selected = [i for i in images if selects(selection, i["tags"])]
        newest_first = sorted(selected, key=lambda i: (i["pushedAt"], i["order"]), reverse=True)
        count_type, number = selection.get("countType"), int(selection.get("countNumber", 0))
        if count_type == "imageCountMoreThan":
            doomed = newest_first[number:]
        elif count_type == "sinceImagePushed":
            doomed = [i for i in newest_first if now - i["pushedAt"] >= number * DAY]
        else:  # sinceImagePulled, sinceImageTransitioned: not modelled
            doomed = []
        for image in doomed:
            if image["digest"] not in claimed:
                expired.append((image["digest"], int(rule.get("rulePriority", 0))))
        claimed.update(i["digest"] for i in selected)
    return expired


class LifecycleRunner:
    """Runs repositories' lifecycle policies after PutImage and on demand."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._original_put_image: Callable | None = None
        self.history: list[dict[str, Any]] = []

    def install(self) -> None:
        runner = self
        original = self._original_put_image = ECRBackend.__dict__["put_image"]

        def put_image(backend: ECRBackend, repository_name: str, *args: Any, **kwargs: Any) -> Any:
            image = original(backend, repository_name, *args, **kwargs)
            try:
                runner.run_repository(backend, repository_name, time.time())
            except Exception:  # noqa: BLE001 - a broken policy must not fail the push
                LOG.exception("lifecycle policy of %s", repository_name)
            return image

        ECRBackend.put_image = put_image  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original_put_image is not None:
            ECRBackend.put_image = self._original_put_image  # type: ignore[method-assign]
            self._original_put_image = None

    def run_repository(self, backend: ECRBackend, name: str, now: float) -> list[dict[str, Any]]:
        with self._lock:
            repository = backend.repositories.get(name)
            if repository is None or not repository.lifecycle_policy:
                return []
            policy = json.loads(repository.lifecycle_policy)
            images = [
                {
                    "digest": image.get_image_digest(),
                    "tags": list(image.image_tags),
                    "pushedAt": float(image.image_pushed_at),
                    "order": order,
                }
                for order, image in enumerate(repository.images)
            ]
            done = []
            for digest, priority in evaluate(policy, images, now):
                tags = next(i["tags"] for i in images if i["digest"] == digest)
                backend.batch_delete_image(repository_name=name, image_ids=[{"imageDigest": digest}])
                entry = {"repository": name, "imageDigest": digest, "imageTags": tags, "rulePriority": priority}
                LOG.info("lifecycle policy expired %s", entry)
                done.append(entry)
            self.history.extend(done)
            return done

    def run(self, repository: str | None, now: float) -> list[dict[str, Any]]:
        expired = []
        for account in list(ecr_backends.keys()):
            for region in list(ecr_backends[account].keys()):
                backend = ecr_backends[account][region]
                names = [repository] if repository else list(backend.repositories)
                for name in names:
                    expired += self.run_repository(backend, name, now)
        return expired

    def control(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        """``/_localcloud/ecr/lifecycle/run``: POST runs the policies now, GET lists the expired."""
        if method == "POST":
            unknown = set(body) - {"repository", "at"}
            if unknown:
                raise ValueError(f"unknown settings: {sorted(unknown)}")
            at = body.get("at")
            return 200, {"expired": self.run(body.get("repository"), time.time() if at is None else float(at))}
        if method == "GET":
            return 200, {"expired": list(self.history)}
        return 405, {"error": f"{method} not allowed"}
