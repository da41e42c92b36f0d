"""ECR lifecycle policies run in the local cloud (ecr_lifecycle.py): untagged images expire,
"keep the last N" keeps N, and rule priority decides which rule may expire an image."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from control import control
from localcloud.ecr_lifecycle import evaluate


def manifest(n: str) -> str:
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": "sha256:" + "0" * 64},
        "layers": [],
        "annotations": {"n": n},
    })


@pytest.fixture
def repo(localcloud_server: Any):
    ecr = localcloud_server.client("ecr")
    name = f"lifecycle-{uuid.uuid4().hex[:8]}"
    ecr.create_repository(repositoryName=name)

    def push(n: str, tag: str | None) -> str:
        kwargs = {"imageTag": tag} if tag else {}
        return ecr.put_image(repositoryName=name, imageManifest=manifest(n), **kwargs)["image"]["imageId"]["imageDigest"]

    def digests() -> set[str]:
        return {d["imageDigest"] for d in ecr.describe_images(repositoryName=name)["imageDetails"]}

    def policy(*rules: dict) -> None:
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps({"rules": list(rules)}))

    yield type("Repo", (), {"name": name, "push": staticmethod(push), "digests": staticmethod(digests),
                            "policy": staticmethod(policy), "ecr": ecr})
    ecr.delete_repository(repositoryName=name, force=True)


def rule(priority: int, status: str, count_type: str, number: int, **selection: Any) -> dict:
    sel = {"tagStatus": status, "countType": count_type, "countNumber": number, **selection}
    if count_type == "sinceImagePushed":
        sel["countUnit"] = "days"
    return {"rulePriority": priority, "selection": sel, "action": {"type": "expire"}}


def test_an_untagged_image_expires_when_a_tag_moves_off_it(localcloud_server, repo):
    # "Keep 1 untagged" (countNumber is at least 1 on ECR, as moto validates).
    a = repo.push("a", "main")
    repo.policy(rule(1, "untagged", "imageCountMoreThan", 1))
    b = repo.push("b", "main")  # "main" moves to b: a is untagged, and the one untagged kept
    assert repo.digests() == {a, b}
    c = repo.push("c", "main")  # b untagged too: the policy runs on the push, a (older) goes
    assert repo.digests() == {b, c}
    status, listed = control(localcloud_server, "GET", "ecr/lifecycle/run")
    assert status == 200 and any(e["imageDigest"] == a and e["rulePriority"] == 1 for e in listed["expired"])


def test_untagged_images_expire_only_past_their_age_and_the_route_runs_it_on_demand(localcloud_server, repo):
    a = repo.push("a", "main")
    b = repo.push("b", "main")  # a untagged, no policy yet: kept
    assert repo.digests() == {a, b}
    repo.policy(rule(1, "untagged", "sinceImagePushed", 7))
    status, ran = control(localcloud_server, "POST", "ecr/lifecycle/run", {"repository": repo.name})
    assert status == 200 and ran["expired"] == [] and repo.digests() == {a, b}
    later = time.time() + 8 * 86400
    status, ran = control(localcloud_server, "POST", "ecr/lifecycle/run", {"repository": repo.name, "at": later})
    assert status == 200 and [e["imageDigest"] for e in ran["expired"]] == [a]
    assert repo.digests() == {b}


def test_keep_the_last_n_tagged_images(localcloud_server, repo):
    repo.policy(rule(1, "tagged", "imageCountMoreThan", 2, tagPrefixList=["v"]))
    v1, v2, v3 = repo.push("1", "v1"), repo.push("2", "v2"), repo.push("3", "v3")
    other = repo.push("x", "other")
    assert repo.digests() == {v2, v3, other}  # the oldest "v" image went; "other" is not selected
    assert v1 not in repo.digests()


def test_an_image_matched_by_a_higher_priority_rule_is_not_expired_by_a_lower_one(localcloud_server, repo):
    keep = repo.push("k", "keep-me")
    repo.push("o", "old")
    # Priority 1 selects "keep-*" (and keeps up to 5 of them); priority 2 would expire every image.
    repo.policy(
        rule(1, "tagged", "imageCountMoreThan", 5, tagPatternList=["keep-*"]),
        rule(2, "any", "sinceImagePushed", 1),
    )
    later = time.time() + 2 * 86400
    status, ran = control(localcloud_server, "POST", "ecr/lifecycle/run", {"repository": repo.name, "at": later})
    assert status == 200 and all(e["rulePriority"] == 2 for e in ran["expired"])
    assert repo.digests() == {keep}


def test_an_image_with_a_second_tag_survives_expire_untagged(localcloud_server, repo):
    a = repo.push("a", "main")
    repo.push("a", "deckhand-kg-0123abcd-0123456789ab")  # same manifest, a second tag
    repo.policy(rule(1, "untagged", "imageCountMoreThan", 1))
    b = repo.push("b", "main")
    c = repo.push("c", "main")  # b untagged (the one untagged kept), a kept by its second tag
    assert repo.digests() == {a, b, c}
    d = repo.push("d", "main")  # c untagged too: keep 1 untagged, the newer c
    assert repo.digests() == {a, c, d}


def test_unknown_settings_are_refused(localcloud_server):
    status, answer = control(localcloud_server, "POST", "ecr/lifecycle/run", {"repo": "x"})
    assert status == 400 and "unknown" in answer["error"]


def test_evaluation_counts_images_a_higher_rule_claimed():
    # Documented: lower rules "can still identify them as if they haven't been expired".
    images = [{"digest": f"d{i}", "tags": [t], "pushedAt": float(i), "order": i}
              for i, t in enumerate(["prod-1", "dev-1", "prod-2", "dev-2"])]
    policy = {"rules": [rule(1, "tagged", "imageCountMoreThan", 9, tagPrefixList=["prod"]),
                        rule(2, "any", "imageCountMoreThan", 2)]}
    # any, newest first: d3 d2 | d1 d0 → d1 and d0 beyond the count; d0 is prod (claimed by rule 1).
    assert evaluate(policy, images, 10.0) == [("d1", 2)]
