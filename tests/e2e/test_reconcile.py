"""Issue 22, item 1: the reconciliation sweep. ECR emits push events on a best-effort basis
(Amazon ECR User Guide, "Amazon ECR events and EventBridge"); the stack's scheduled rule starts
the deploy state machine with {"reconcile": true}, which deploys what a tracked service's rule
names when deckhand never handled that push, once, and never a digest that was rolled back.

The session's stack sweeps hourly (tests/conftest.py); these tests fire the stack's own
scheduled rule through the local cloud (tests/localcloud/schedules.py), as its next tick would."""

from __future__ import annotations

import json
import threading

import pytest

from .aws import Aws, api_service, wait_until
from .test_cli import deckhand  # noqa: F401 - the `deckhand` command fixture
from .test_lost_push_events import push_with_its_event_lost
from .test_misbehaviour import control, lock_item

pytestmark = pytest.mark.timeout(300)

SWEEP_INPUT = '"reconcile"'


def sweeps(aws: Aws) -> set[str]:
    return {e["executionArn"] for e in aws.executions_for(SWEEP_INPUT)}


def fire_the_schedule(aws: Aws, localcloud) -> str:
    """Fires the stack's reconcile rule; returns the sweep execution it started."""
    before = sweeps(aws)
    fired = control(localcloud, "POST", "events/schedules", {"fire": localcloud.stack_outputs["ReconcileRule"]})
    assert fired["targets"] == 1, fired
    return wait_until("the sweep's execution", lambda: sorted(sweeps(aws) - before), 30)[0]


def drift(deckhand, cluster: str, service: str) -> dict:
    """`deckhand status`'s drift of one service (JSON)."""
    done = deckhand("--output", "json", "status", cluster, service)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    return row["drift"]


def revisions_of(aws: Aws, revision: str) -> list[str]:
    family = revision.rsplit("/", 1)[-1].split(":")[0]
    return aws.ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]


def test_the_stack_schedules_the_sweep(aws: Aws, localcloud) -> None:
    rule = aws.events.describe_rule(Name=localcloud.stack_outputs["ReconcileRule"])
    assert (rule["ScheduleExpression"], rule["State"]) == ("rate(60 minutes)", "ENABLED")
    (target,) = aws.events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == localcloud.stack_outputs["StateMachineArn"]
    assert json.loads(target["Input"]) == {"reconcile": True}


def test_a_lost_push_is_deployed_by_the_sweep(aws: Aws, localcloud, events, deckhand) -> None:
    api = api_service(aws, verified=False, settled=True)
    lost = push_with_its_event_lost(aws, localcloud, api.repository, "main")
    assert aws.executions_for(lost) == [], "the push started nothing"
    missed = drift(deckhand, api.cluster, api.service)["missed"]
    assert [(m["container"], m["digest"], m["tag"]) for m in missed] == [("web", lost, "main")], missed

    # A dry run names the service and changes nothing.
    preview = aws.finish(aws.start({"reconcile": True, "dryRun": True}))
    assert preview["status"] == "SUCCEEDED", preview
    planned = [t for t in json.loads(preview["output"])["targets"] if t["cluster"] == api.cluster]
    assert [(t["service"], t["trigger"], t["containers"][0]["image"]) for t in planned] == [
        (api.service, "reconcile", aws.pinned(api.repository, lost))]
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision

    sweep = aws.finish(fire_the_schedule(aws, localcloud))
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, lost)
    mine = [e for e in events.for_execution(sweep["executionArn"]) if e["service"] == api.service
            and e["cluster"] == api.cluster]
    assert [(e["status"], e["trigger"]) for e in mine] == [("STARTED", "reconcile"), ("SUCCEEDED", "reconcile")], mine
    assert "lockOwner" not in lock_item(localcloud, aws, api.cluster, api.service), "lock released"
    assert drift(deckhand, api.cluster, api.service) == {"missed": [], "held": [], "hold": None}

    # Deployed: the next sweep has nothing to do for it.
    again = aws.finish(fire_the_schedule(aws, localcloud))
    assert not [e for e in events.for_execution(again["executionArn"]) if e["cluster"] == api.cluster]


def test_a_rolled_back_digest_is_not_deployed_again_by_the_sweep(aws: Aws, localcloud, events, deckhand) -> None:
    api = api_service(aws)
    bad = aws.push(api.repository, "main", health="unhealthy")
    pushed = aws.finish(aws.execution_for_push(bad))
    assert pushed["error"] == "DeploymentRolledBack", pushed
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision

    sweep = aws.finish(fire_the_schedule(aws, localcloud))
    assert not [e for e in events.for_execution(sweep["executionArn"]) if e["cluster"] == api.cluster], \
        "main still names the rolled-back digest: the sweep leaves it"
    assert aws.describe(api.cluster, api.service)["taskDefinition"] == api.good_revision
    # Nothing else in the account drifted: the sweep planned nothing and says why it held this one.
    assert sweep["status"] == "SUCCEEDED", sweep
    warnings = json.loads(sweep["output"])["warnings"]
    assert any("never retries" in w and bad in w for w in warnings), warnings
    held = drift(deckhand, api.cluster, api.service)
    assert held["missed"] == [] and any("never retries" in line for line in held["held"]), held


def test_a_push_and_a_sweep_racing_for_the_same_digest_deploy_it_once(aws: Aws, localcloud, events) -> None:
    api = api_service(aws, verified=False, settled=True)
    before = revisions_of(aws, api.good_revision)
    # The push's event and the sweep's tick arrive together.
    pusher = threading.Thread(target=lambda: results.append(aws.push(api.repository, "main")))
    results: list[str] = []
    pusher.start()
    sweep_arn = fire_the_schedule(aws, localcloud)
    pusher.join()
    digest = results[0]
    push = aws.finish(aws.execution_for_push(digest))
    sweep = aws.finish(sweep_arn)
    assert push["status"] == "SUCCEEDED", push
    assert aws.running_images(api.cluster, api.service)["web"] == aws.pinned(api.repository, digest)
    assert len(revisions_of(aws, api.good_revision)) == len(before) + 1, "one new revision: one deployment"
    statuses = [e["status"] for arn in (push["executionArn"], sweep["executionArn"])
                for e in events.for_execution(arn) if e["cluster"] == api.cluster]
    assert statuses.count("SUCCEEDED") == 1 and "ROLLED_BACK" not in statuses and "FAILED" not in statuses, statuses
    assert "lockOwner" not in lock_item(localcloud, aws, api.cluster, api.service), "lock released"
