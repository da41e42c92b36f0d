"""What a push costs in a busy account: the plan lists the services of every cluster it watches,
and a deleted (INACTIVE) cluster, which ListClusters may keep returning for a while (DeleteCluster,
ECS API Reference: "Clusters with an INACTIVE status might remain discoverable in your account
for a period of time"), costs no ListServices call: one DescribeClusters per 100 clusters leaves
them out (functions/core/src/aws/ecs.rs, list_clusters)."""

from __future__ import annotations

from typing import Any

import pytest

from .aws import Aws, unique
from .test_misbehaviour import control

pytestmark = pytest.mark.timeout(300)


def active_clusters(aws: Aws) -> int:
    listed = aws.ecs.list_clusters()["clusterArns"]
    described = [c for i in range(0, len(listed), 100)
                 for c in aws.ecs.describe_clusters(clusters=listed[i:i + 100])["clusters"]]
    return sum(1 for c in described if c["status"] != "INACTIVE")


def test_a_push_lists_the_services_of_active_clusters_only(aws: Aws, localcloud: Any) -> None:
    deleted = [aws.cluster() for _ in range(10)]
    aws.delete_clusters(deleted)
    assert set(deleted) <= {arn.rsplit("/", 1)[-1] for arn in aws.ecs.list_clusters()["clusterArns"]}, \
        "the local cloud keeps listing deleted clusters, as ECS may"
    active = active_clusters(aws)
    # A fault that only counts: the plan's ListServices calls go through, a millisecond late.
    counter = control(localcloud, "POST", "faults",
                      {"action": "ecs:ListServices", "callerRole": "deckhand-PlanFunction*", "delaySeconds": 0.001})
    try:
        repository = aws.repository(unique("untracked"))
        execution = aws.finish(aws.execution_for_push(aws.push(repository, "main")))
        assert execution["status"] == "SUCCEEDED", execution
        [counted] = [f for f in control(localcloud, "GET", "faults")["faults"] if f["id"] == counter["id"]]
    finally:
        control(localcloud, "DELETE", "faults", {"id": counter["id"]})
    # One ListServices per active cluster (a throttled call retried may add one or two), none
    # for the ten deleted ones.
    assert active <= counted["hits"] < active + len(deleted), (counted, active)
