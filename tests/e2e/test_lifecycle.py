"""Images expire (issue 21, item 5): ECR lifecycle policies run in the local cloud
(tests/localcloud/ecr_lifecycle.py). deckhand pins digests, so a known-good image is untagged
once its tag moves on; deckhand tags known-good images (deckhand-kg-…) so that "expire untagged"
rules keep them, and a rollback passes over a revision whose image is gone."""

from __future__ import annotations

import hashlib
import json
import urllib.request
import uuid

import pytest

from .aws import OCI_MANIFEST, Aws, api_service, unique

pytestmark = pytest.mark.timeout(300)


def run_lifecycle(aws: Aws, repository: str) -> list[dict]:
    request = urllib.request.Request(
        f"{aws.cloud.endpoint}/_localcloud/ecr/lifecycle/run",
        data=json.dumps({"repository": repository}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["expired"]


def expired_so_far(aws: Aws, repository: str) -> set[str]:
    with urllib.request.urlopen(f"{aws.cloud.endpoint}/_localcloud/ecr/lifecycle/run", timeout=10) as response:
        return {e["imageDigest"] for e in json.loads(response.read())["expired"] if e["repository"] == repository}


def manifest(health: str = "healthy") -> str:
    nonce = uuid.uuid4().hex
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                   "digest": "sha256:" + hashlib.sha256(nonce.encode()).hexdigest()},
        "layers": [],
        "annotations": {"deckhand.sim/health": health, "deckhand.sim/ready-seconds": "1",
                        "org.opencontainers.image.revision": nonce},
    })


def tags_of(aws: Aws, repository: str, digest: str) -> list[str] | None:
    try:
        details = aws.ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])["imageDetails"]
    except aws.ecr.exceptions.ImageNotFoundException:
        return None
    return details[0].get("imageTags", [])


def protected(tags: list[str] | None) -> bool:
    return tags is not None and any(t.startswith("deckhand-kg-") for t in tags)


def terminal(events, execution_arn: str) -> dict:
    found = [e for e in events.for_execution(execution_arn) if e["status"] != "STARTED"]
    assert len(found) == 1, found
    return found[0]


KEEP_ONE_UNTAGGED = {"rules": [{"rulePriority": 1, "description": "keep 1 untagged image",
                                "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
                                "action": {"type": "expire"}}]}


def test_deckhands_protection_tags_start_no_execution(aws: Aws) -> None:
    """A protection tag is an ECR push of the known-good digest: the push rule leaves it out (an
    execution for it would plan across every service of the account after every deployment)."""
    api = api_service(aws)  # two deployments: the known-good image carries deckhand's tag
    assert protected(tags_of(aws, api.repository, api.good_digest))
    aws.cloud.wait_for_deliveries()
    runs = aws.sfn.list_executions(stateMachineArn=aws.state_machine, maxResults=1000)["executions"]
    inputs = [aws.sfn.describe_execution(executionArn=run["executionArn"])["input"] for run in runs]
    mine = [i for i in inputs if api.repository in i]
    assert mine, "the pushes' own executions are listed"
    assert not [i for i in mine if '"deckhand-kg-' in i], "an execution for deckhand's own tag"


def test_a_rollback_after_the_tag_moved_twice_finds_its_image_under_expire_untagged(aws: Aws, events) -> None:
    api = api_service(aws)  # A: deployed by deckhand, known-good
    a = api.good_digest
    deployed = {}
    for name in ("B", "C"):  # "main" moves twice: A, then B are untagged
        digest = aws.push(api.repository, "main")
        assert aws.finish(aws.execution_for_push(digest))["status"] == "SUCCEEDED"
        deployed[name] = (digest, aws.describe(api.cluster, api.service)["taskDefinition"])
    c, c_revision = deployed["C"]
    assert all(protected(tags_of(aws, api.repository, d)) for d in (a, deployed["B"][0], c))

    # D, broken: pushed untagged (deckhand skips untagged pushes), then other untagged images,
    # then the "keep 1 untagged" policy, then D tagged "main". Moving "main" to D untags C, and
    # the policy (run on that PutImage) keeps only the newest untagged image: C would go, but
    # for deckhand's tag.
    d_manifest = manifest("unhealthy")
    d = aws.ecr.put_image(repositoryName=api.repository, imageManifest=d_manifest,
                          imageManifestMediaType=OCI_MANIFEST)["image"]["imageId"]["imageDigest"]
    for _ in range(2):  # untagged images nobody protects: the older one expires
        aws.ecr.put_image(repositoryName=api.repository, imageManifest=manifest(), imageManifestMediaType=OCI_MANIFEST)
    aws.ecr.put_lifecycle_policy(repositoryName=api.repository, lifecyclePolicyText=json.dumps(KEEP_ONE_UNTAGGED))
    aws.ecr.put_image(repositoryName=api.repository, imageManifest=d_manifest,
                      imageManifestMediaType=OCI_MANIFEST, imageTag="main")
    run_lifecycle(aws, api.repository)  # and once more on demand: nothing protected goes
    c_tags = tags_of(aws, api.repository, c)
    assert c_tags is not None and "main" not in c_tags and protected(c_tags), c_tags
    expired = expired_so_far(aws, api.repository)
    assert len(expired) == 1 and not expired & {a, deployed["B"][0], c, d}, expired
    assert all(protected(tags_of(aws, api.repository, x)) for x in (a, deployed["B"][0]))

    execution = aws.finish(aws.execution_for_push(d))
    assert execution["status"] == "FAILED" and execution.get("error") == "DeploymentRolledBack", execution
    end = terminal(events, execution["executionArn"])
    assert end["status"] == "ROLLED_BACK" and end["taskDefinition"] == c_revision, end
    service = aws.wait_steady(api.cluster, api.service)
    assert service["taskDefinition"] == c_revision
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, c)
    assert set(aws.target_states(api.group)) == {"healthy"}


def test_a_rollback_passes_over_a_known_good_revision_whose_image_was_deleted(aws: Aws, events) -> None:
    api = api_service(aws)  # A known-good
    b = aws.push(api.repository, "main")
    assert aws.finish(aws.execution_for_push(b))["status"] == "SUCCEEDED"
    b_revision = aws.describe(api.cluster, api.service)["taskDefinition"]
    # Deleted by hand, by digest: the image and all its tags ("main" and deckhand's) are gone.
    deleted = aws.ecr.batch_delete_image(repositoryName=api.repository, imageIds=[{"imageDigest": b}])
    assert not deleted["failures"], deleted

    bad = aws.push(api.repository, "main", health="unhealthy")
    execution = aws.finish(aws.execution_for_push(bad))
    assert execution["status"] == "FAILED" and execution.get("error") == "DeploymentRolledBack", execution
    end = terminal(events, execution["executionArn"])
    assert end["status"] == "ROLLED_BACK" and end["taskDefinition"] == api.good_revision, end
    short = b_revision.rsplit("/", 1)[1]
    assert f"{short} passed over: image {api.repository}@{b} expired/deleted" in end["reason"], end["reason"]
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision


def test_known_good_images_are_protected_in_a_repository_with_immutable_tags(aws: Aws, events) -> None:
    net = aws.network()
    repository = unique("immutable")
    aws.ecr.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE")
    group = aws.target_group(unique("imm"), net, 5000)
    aws.load_balancer(net, {80: group})
    cluster = aws.cluster()
    initial = aws.push(repository, "v1")
    td = aws.task_definition(unique("imm"), [("web", aws.pinned(repository, initial), 5000)])
    aws.service(cluster, "api", td, net, [(group, "web", 5000)], track=f"web={repository}:prefix:v", desired=1)
    digests = []
    for tag in ("v2", "v3"):
        digest = aws.push(repository, tag)
        execution = aws.finish(aws.execution_for_push(digest))
        assert execution["status"] == "SUCCEEDED", execution
        digests.append(digest)
    # Each known-good image carries its own digest-named tag (no tag ever has to move).
    for digest in digests:
        tags = tags_of(aws, repository, digest)
        assert protected(tags) and any(t.endswith(digest.split(":")[1][:12]) for t in tags), tags


@pytest.fixture(scope="module")
def deckhand(localcloud):
    """The `deckhand` command against the local cloud, as tests/e2e/test_cli.py runs it."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    # The binary `cargo test` builds (cli/tests/usage.rs): the same features, so nothing recompiles.
    subprocess.run(["cargo", "test", "--workspace", "--no-run", "--quiet"], cwd=root, check=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=localcloud.endpoint, AWS_REGION=localcloud.region, AWS_ACCESS_KEY_ID="localcloud",
               AWS_SECRET_ACCESS_KEY="localcloud", AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")

    def run(*args: str) -> dict:
        done = subprocess.run([str(root / "target" / "debug" / "deckhand"), "--output", "json", *args], env=env,
                              capture_output=True, text=True, timeout=120)
        print(f"$ deckhand {' '.join(args)} -> {done.returncode}\n{done.stdout}{done.stderr}")
        return {c["check"]: c for c in json.loads(done.stdout)}

    return run


def test_doctor_warns_about_a_lifecycle_rule_that_could_delete_a_known_good_image(aws: Aws, deckhand) -> None:
    api = api_service(aws)  # known-good, its image protected
    checks = deckhand("doctor", api.cluster, api.service)
    assert checks["image lifecycle"]["level"] == "ok", checks["image lifecycle"]

    # Expire untagged: the protected known-good image is not untagged, so no warning.
    policy = {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                                                          "countNumber": 1}, "action": {"type": "expire"}}]}
    aws.ecr.put_lifecycle_policy(repositoryName=api.repository, lifecyclePolicyText=json.dumps(policy))
    assert deckhand("doctor", api.cluster, api.service)["image lifecycle"]["level"] == "ok"

    # A tagged rule whose prefix selects deckhand's protection tag: warned about.
    policy["rules"].insert(0, {"rulePriority": 0, "selection": {"tagStatus": "tagged", "tagPrefixList": ["deckhand"],
                                                                 "countType": "imageCountMoreThan", "countNumber": 1},
                               "action": {"type": "expire"}})
    aws.ecr.put_lifecycle_policy(repositoryName=api.repository, lifecyclePolicyText=json.dumps(policy))
    check = deckhand("doctor", api.cluster, api.service)["image lifecycle"]
    assert check["level"] == "warn" and "rule 0 selects deckhand's protection tag" in check["detail"], check

    # The protection tag removed by hand: now the untagged rule threatens the known-good image.
    tag = next(t for t in tags_of(aws, api.repository, api.good_digest) if t.startswith("deckhand-kg-"))
    aws.ecr.batch_delete_image(repositoryName=api.repository, imageIds=[{"imageTag": tag}])
    assert tags_of(aws, api.repository, api.good_digest) == ["main"], "only the tag went"
    policy["rules"].pop(0)
    aws.ecr.put_lifecycle_policy(repositoryName=api.repository, lifecyclePolicyText=json.dumps(policy))
    check = deckhand("doctor", api.cluster, api.service)["image lifecycle"]
    assert check["level"] == "warn" and "lacks deckhand's tag" in check["detail"], check
