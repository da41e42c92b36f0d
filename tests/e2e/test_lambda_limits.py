"""Issue 21, item 3: Lambda's concurrency is a shared, limited resource. With the account's
concurrency almost used up (new accounts have less than 1,000; other functions take theirs),
Step Functions' invocations of deckhand's functions are throttled (TooManyRequestsException)
and must be retried, never turned into a verdict."""

from __future__ import annotations

import pytest

from .aws import Aws, unique
from .test_misbehaviour import control

pytestmark = pytest.mark.timeout(400)


def test_a_push_to_three_services_holds_with_one_concurrent_execution_to_share(aws: Aws, localcloud, events) -> None:
    net = aws.network()
    repository = aws.repository(unique("shop"))
    cluster = aws.cluster()
    initial = aws.push(repository, "main")
    names = ["cart", "orders", "search"]
    for name in names:
        group = aws.target_group(unique(name), net, 5000)
        aws.load_balancer(net, {80: group})
        td = aws.task_definition(unique(name), [("web", aws.pinned(repository, initial), 5000)])
        aws.service(cluster, name, td, net, [(group, "web", 5000)], track=f"web={repository}:main", desired=1)
    # Whatever the functions reserved (the signal function's SignalConcurrency) stays theirs;
    # every other function shares what is left: one execution at a time.
    reserved = sum(control(localcloud, "GET", "lambda/concurrency")["reserved"].values())
    control(localcloud, "POST", "lambda/concurrency", {"accountLimit": reserved + 1})
    try:
        digest = aws.push(repository, "main")
        execution = aws.finish(aws.execution_for_push(digest), timeout=300)
        met = control(localcloud, "GET", "lambda/concurrency")
    finally:
        control(localcloud, "DELETE", "lambda/concurrency")

    assert execution["status"] == "SUCCEEDED", execution
    assert sum(met["throttled"].values()) > 0, f"the limit never bit: {met}"
    for name in names:
        assert aws.running_images(cluster, name)["web"] == aws.pinned(repository, digest), name
    terminal = [e for e in events.for_execution(execution["executionArn"])
                if e["status"] not in ("STARTED", "AWAITING_APPROVAL")]
    assert sorted((e["service"], e["status"]) for e in terminal) == [(n, "SUCCEEDED") for n in names], terminal
