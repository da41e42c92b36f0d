"""Issue 20 end to end: what operators really do, and the promises deckhand must keep then.
Each case reaches its situation through public AWS APIs only (ECR PutImage and
BatchDeleteImage, ECS RegisterTaskDefinition, UpdateService and PutAccountSetting, the
`deckhand` command) and waits on observable state, never on a sleep."""

from __future__ import annotations

import contextlib
import json
from typing import Iterator

import pytest
from botocore.exceptions import ClientError

from .aws import Aws, unique, wait_until
from .test_cli import deckhand  # noqa: F401  (the fixture running the built command)
from .test_failures import api_service
from .test_release_policies import awaiting, only, pushed, shop

pytestmark = pytest.mark.timeout(600)


def retag(aws: Aws, repository: str, digest: str, tag: str) -> None:
    """Points `tag` at an image already pushed: PutImage of its own manifest, as `docker tag` +
    `docker push` (or `aws ecr put-image`) does. ECR keeps the image's first imagePushedAt."""
    image = aws.ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}])["images"][0]
    aws.ecr.put_image(repositoryName=repository, imageManifest=image["imageManifest"],
                      imageManifestMediaType=image.get("imageManifestMediaType", "application/vnd.oci.image.manifest.v1+json"),
                      imageTag=tag)


def terminal(events, execution_arn: str) -> dict:
    return only([e for e in events.for_execution(execution_arn) if e["status"] not in ("STARTED", "AWAITING_APPROVAL")])


# ------------------------------------------------------------------------------------------ re-tags


def test_rolling_back_by_re_tagging_an_older_image_deploys_it(aws: Aws, events) -> None:
    api = api_service(aws)  # main → A, deployed and verified
    older = api.good_digest
    newer = aws.push(api.repository, "main")  # main → B
    assert aws.finish(aws.execution_for_push(newer))["status"] == "SUCCEEDED"
    first_pushed = aws.ecr.describe_images(repositoryName=api.repository, imageIds=[{"imageDigest": older}])
    first_pushed_at = first_pushed["imageDetails"][0]["imagePushedAt"]

    before = {e["executionArn"] for e in aws.executions_for(older)}
    retag(aws, api.repository, older, "main")  # main → A again: the operator's rollback
    again = aws.ecr.describe_images(repositoryName=api.repository, imageIds=[{"imageDigest": older}])
    assert again["imageDetails"][0]["imagePushedAt"] == first_pushed_at, "ECR keeps the first push time"
    runs = wait_until("the re-tag's execution",
                      lambda: [e for e in aws.executions_for(older) if e["executionArn"] not in before] or None)
    execution = aws.finish(runs[0]["executionArn"])
    assert execution["status"] == "SUCCEEDED", execution
    assert terminal(events, execution["executionArn"])["status"] == "SUCCEEDED"
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, older)


def test_a_prefix_rule_promotes_an_older_build_by_re_tag(aws: Aws, events) -> None:
    api = shop(aws, "prefix:release-", "release-1")
    first = aws.ecr.describe_images(repositoryName=api.repository, imageIds=[{"imageTag": "release-1"}])
    first_digest = first["imageDetails"][0]["imageDigest"]
    execution, seen = pushed(aws, events, api, "release-2")
    assert [e["status"] for e in seen][-1] == "SUCCEEDED", seen
    # release-1's build promoted again as release-3: ECR says it was pushed before release-2.
    retag(aws, api.repository, first_digest, "release-3")
    runs = wait_until("the promotion's execution",
                      lambda: [e for e in aws.executions_for(first_digest) if "release-3" in e["input"]] or None)
    execution = aws.finish(runs[0]["executionArn"])
    assert execution["status"] == "SUCCEEDED", execution
    assert terminal(events, execution["executionArn"])["status"] == "SUCCEEDED"
    assert aws.running_images(api.cluster, api.service)["app"] == aws.pinned(api.repository, first_digest)


# ------------------------------------------------------------------------------------------ approvals


def test_a_pending_push_of_one_container_survives_a_push_of_another(aws: Aws, events, deckhand) -> None:  # noqa: F811
    net = aws.network()
    app_repo, sidecar_repo = aws.repository(unique("shop/app")), aws.repository(unique("shop/sidecar"))
    group = aws.target_group(unique("shop"), net, 8080)
    aws.load_balancer(net, {80: group})
    cluster = aws.cluster()
    td = aws.task_definition(unique("shop"), [("app", aws.pinned(app_repo, aws.push(app_repo, "main")), 8080),
                                              ("sidecar", aws.pinned(sidecar_repo, aws.push(sidecar_repo, "main")), 9901)])
    aws.service(cluster, "api", td, net, [(group, "app", 8080)], track=f"app={app_repo}:main sidecar={sidecar_repo}:main",
                extra_tags={"deckhand:approval": "required", "deckhand:approval-timeout": "300"})
    app = aws.push(app_repo, "main")
    app_arn = aws.execution_for_push(app)
    awaiting(events, app_arn)
    sidecar = aws.push(sidecar_repo, "main")
    sidecar_arn = aws.execution_for_push(sidecar)
    awaiting(events, sidecar_arn)
    assert "SUPERSEDED" not in events.statuses(app_arn), "a sidecar push does not cover the app's change"

    approved = deckhand("approve", cluster, "api")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.count("approved") == 2, approved.stdout
    for arn in (app_arn, sidecar_arn):
        assert aws.finish(arn)["status"] == "SUCCEEDED"
        assert terminal(events, arn)["status"] == "SUCCEEDED"
    images = aws.running_images(cluster, "api")
    assert images == {"app": aws.pinned(app_repo, app), "sidecar": aws.pinned(sidecar_repo, sidecar)}, images


# ------------------------------------------------------------------------------------------ rollback


def test_rollback_keeps_someones_configuration_change_that_ran_before(aws: Aws, events) -> None:
    api = api_service(aws, grace=20)  # deckhand's verified revision: api.good_revision
    # Someone ships a configuration change (same image, new revision) and it reaches COMPLETED.
    current = aws.ecs.describe_task_definition(taskDefinition=api.good_revision)["taskDefinition"]
    keep = ("family", "containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory",
            "executionRoleArn", "taskRoleArn")
    definition = {k: current[k] for k in keep if k in current}
    definition["containerDefinitions"][0]["environment"] = [{"name": "FEATURE_FLAG", "value": "on"}]
    theirs = aws.ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"]
    aws.ecs.update_service(cluster=api.cluster, service=api.service, taskDefinition=theirs)
    wait_until("their change COMPLETED", lambda: next(
        (d for d in aws.describe(api.cluster, api.service)["deployments"]
         if d["status"] == "PRIMARY" and d["taskDefinition"] == theirs and d.get("rolloutState") == "COMPLETED"), None), 90)

    bad = aws.push(api.repository, "main", health="unhealthy")
    execution = aws.finish(aws.execution_for_push(bad))
    assert execution["status"] == "FAILED" and execution["error"] == "DeploymentRolledBack", execution
    end = terminal(events, execution["executionArn"])
    assert end["status"] == "ROLLED_BACK" and end["taskDefinition"] == theirs, end
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == theirs, "their change is not lost"


def test_a_manual_rollback_with_nothing_to_roll_back_is_skipped_not_failed(aws: Aws, events) -> None:
    api = api_service(aws, verified=False)  # deckhand never verified a revision here
    before = aws.describe(api.cluster, api.service)["taskDefinition"]
    execution = aws.finish(aws.start({"cluster": api.cluster, "service": api.service, "rollback": True}))
    assert execution["status"] == "SUCCEEDED", execution
    end = terminal(events, execution["executionArn"])
    assert end["status"] == "SKIPPED" and "nothing to roll back to" in end["reason"], end
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == before


# ------------------------------------------------------------------------------------------ semver


def test_a_range_never_deploys_past_a_running_image_whose_version_tag_is_gone(aws: Aws, events) -> None:
    api = shop(aws, "semver:1.x", "1.5.0")
    running = aws.ecr.describe_images(repositoryName=api.repository, imageIds=[{"imageTag": "1.5.0"}])
    digest = running["imageDetails"][0]["imageDigest"]
    # Someone moves the version tag elsewhere (and the running image keeps only `latest`).
    retag(aws, api.repository, digest, "latest")
    aws.push(api.repository, "1.5.0")
    execution, seen = pushed(aws, events, api, "1.2.0")
    assert execution["status"] == "SUCCEEDED", execution
    skipped = only([e for e in seen if e["status"] == "SKIPPED"])
    assert "no version tag" in skipped["reason"], skipped
    assert aws.running_images(api.cluster, api.service)["app"] == aws.pinned(api.repository, digest), "no downgrade"


# ------------------------------------------------------------------------------------------ legacy ARNs


@contextlib.contextmanager
def short_service_arns(aws: Aws) -> Iterator[None]:
    """Services created while the account's `serviceLongArnFormat` is disabled get the short ARN
    (`…:service/NAME`) that services created before 2021 still have."""
    aws.ecs.put_account_setting(name="serviceLongArnFormat", value="disabled")
    try:
        yield
    finally:
        aws.ecs.delete_account_setting(name="serviceLongArnFormat")


def test_a_legacy_short_arn_service_in_the_cluster_does_not_stop_the_push(aws: Aws, events) -> None:
    # A service created before 2021 keeps its short ARN (`…:service/NAME`) until migrated, and ECS
    # refuses to tag it, so it can never opt in: the push must deploy the tracked service beside
    # it, not fail on it (issue 20, item 6).
    api = api_service(aws, verified=False)
    with short_service_arns(aws):
        legacy_arn = aws.service(api.cluster, unique("legacy"), api.good_revision, api.network)
    legacy = legacy_arn.rsplit("/", 1)[-1]
    assert legacy_arn.endswith(f":service/{legacy}"), f"a short ARN: {legacy_arn}"
    assert aws.describe(api.cluster, legacy)["serviceArn"] == legacy_arn, "the format is fixed at creation"
    with pytest.raises(ClientError) as refused:
        aws.ecs.tag_resource(resourceArn=legacy_arn, tags=[{"key": "deckhand:track", "value": f"web={api.repository}:main"}])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"

    digest = aws.push(api.repository, "main")
    execution = aws.finish(aws.execution_for_push(digest))
    assert execution["status"] == "SUCCEEDED", execution
    assert terminal(events, execution["executionArn"])["status"] == "SUCCEEDED"
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, digest), execution.get("output")
    assert aws.describe(api.cluster, legacy)["taskDefinition"] == api.good_revision, "the untracked service is left alone"


# ------------------------------------------------------------------------------------------ known-good


def test_a_known_good_that_cannot_be_recorded_is_said_not_swallowed(aws: Aws, localcloud, events) -> None:
    from .test_misbehaviour import entered_states, lock_item

    api = api_service(aws, tags={"deckhand:bake": "3"}, verified=False)
    pushed_digest = aws.push(api.repository, "main")
    arn = aws.execution_for_push(pushed_digest)
    wait_until("the bake", lambda: "Bake" in entered_states(aws, arn), 90, interval=0.2)
    # While it bakes, the lock is taken over (its holder judged dead by another execution).
    table = localcloud.stack_outputs["StateTableName"]
    item = lock_item(localcloud, aws, api.cluster, api.service)
    record = json.loads(item["record"]["S"])
    record["lock"]["owner"] = "arn:aws:states:us-east-1:123456789012:execution:deckhand-service:someone-else"
    item["record"] = {"S": json.dumps(record)}
    item["lockOwner"] = {"S": record["lock"]["owner"]}
    localcloud.client("dynamodb").put_item(TableName=table, Item=item)

    execution = aws.finish(arn)
    assert execution["status"] == "SUCCEEDED", execution
    end = terminal(events, arn)
    assert end["status"] == "SUCCEEDED", end
    assert "not recorded as known-good: LockLost" in end["reason"], end
    record = json.loads(lock_item(localcloud, aws, api.cluster, api.service)["record"]["S"])
    assert not any(k["taskDefinition"] == end["taskDefinition"] for k in record.get("knownGood", [])), record
