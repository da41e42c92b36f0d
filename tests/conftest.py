"""Shared fixtures: the local cloud (tests/localcloud), started once per session.

    def test_something(localcloud):
        sfn = localcloud.client("stepfunctions")
        sfn.start_execution(stateMachineArn=localcloud.stack_outputs["StateMachineArn"], ...)

``localcloud``         the local cloud with deckhand's stack (template.yaml) deployed,
                       parameters from ``localcloud_params``; ``.endpoint``,
                       ``.client(service)``, ``.stack_outputs``, ``.sim`` (ECS simulator or
                       None), ``.lambda_log(function_name)``, ``.wait_for_deliveries()``.
``localcloud_server``  the same cloud before/without the project's stack (tests of the
                       emulator itself).
``localcloud_params``  template parameter overrides; override this fixture in a closer
                       conftest, or set LOCALCLOUD_PARAMS="Key=Value,Key=Value".

moto keeps its state in process-wide backends, so there is one cloud per pytest
process, shared by every test: give resources unique names. The functions are not
built here (set LOCALCLOUD_BUILD=1 to run cargo lambda build first); function
output is in .localcloud/pytest/logs/<function>.log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: Any) -> None:
    # moto warns that it cannot create the stand-in resource of a published stack (server.py
    # LocalCloud._publish_stack); it need not.
    config.addinivalue_line("filterwarnings", "ignore:.*WaitConditionHandle:UserWarning")
    config.addinivalue_line(
        "markers",
        "own_moto: serves moto in the pytest process itself, so never in a process whose local cloud "
        "is up (scripts/test runs these first, on their own, then the rest with pytest-xdist)",
    )


TEMPLATE = ROOT / "template.yaml"
# One run directory per pytest-xdist worker (each runs its own local cloud).
RUN_DIR = ROOT / ".localcloud" / "pytest" / os.environ.get("PYTEST_XDIST_WORKER", "main")

# Short waits for tests; applied only to parameters the template declares.
TEST_PARAMETERS = {
    "PollIntervalSeconds": "1",
    # A rollout parked on ECS events is checked anyway after this long (lost events, deadlines).
    "RecheckSeconds": "5",
    "DeploymentTimeoutSeconds": "60",
    # The reconciliation sweep runs on its schedule (tests/localcloud/schedules.py), hourly here:
    # tests drop push events on purpose and must not be reconciled behind their backs.
    # tests/e2e/test_reconcile.py fires the stack's schedule when it wants a sweep.
    "ReconcileMinutes": "60",
    # A central registry account (tests/e2e/test_registries.py): its registry side is deployed too.
    "RegistryAccounts": "210987654321",
    # Locally every function runs as the x86_64 build whatever the template says;
    # keep the deployed configuration consistent with that.
    "Architecture": "x86_64",
}


# The SNS topic of the session stack's chat messages (ChatTopicArn).
CHAT_TOPIC = "deckhand-chat"

# The fixture of tests/emulator/test_ecs_sim.py that serves moto in the pytest process itself:
# a test that uses it is marked own_moto (scripts/test runs those apart from the local clouds).
OWN_MOTO_FIXTURE = "endpoint"


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that do not use the local cloud first, then the tests of the emulator
    itself, then the tests with deckhand's stack (keeping the order within each group).

    moto's state is process-wide: a test module that serves moto itself (such as
    test_ecs_sim.py) must not run while the session's local cloud is up, and the
    cloud is only torn down at the end of the session. Once deckhand's stack is deployed
    the account is busy for good (executions the end-to-end tests leave running, the
    task events of services being drained, deckhand's functions taking throttling tokens and
    Lambda concurrency), as a production account is; each e2e module deletes the clusters it
    made when it ends (tests/e2e/conftest.py); the emulator's own tests count single
    calls, faults and concurrency slots, so they run before that."""
    def group(item: pytest.Item) -> int:
        names = set(getattr(item, "fixturenames", ()))
        if "localcloud" in names:
            return 2
        return 1 if "localcloud_server" in names else 0

    for item in items:
        if OWN_MOTO_FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.own_moto)
    items.sort(key=group)  # stable: file order within a group


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What the busy account cost: the API calls the local cloud counted and refused."""
    if getattr(_SERVER, "throttling", None) is None:
        return
    _, state = _SERVER.throttling.control("GET", {})
    seen, refused = state["seen"], state["refused"]
    top = sorted(refused.items(), key=lambda kv: -kv[1])[:8]
    terminalreporter.write_line(
        f"local cloud, since the last throttling reset: {sum(seen.values())} API calls counted, "
        f"{sum(refused.values())} of deckhand's refused; most refused: {', '.join(f'{a} {n}' for a, n in top) or 'none'}")


_SERVER: Any = None


def _env_params() -> dict[str, str]:
    text = os.environ.get("LOCALCLOUD_PARAMS", "").strip()
    pairs = [item.partition("=") for item in text.split(",") if item.strip()]
    return {key.strip(): value.strip() for key, _, value in pairs}


@pytest.fixture(scope="session")
def localcloud_params() -> dict[str, str]:
    from localcloud.stack import load_template

    declared = load_template(TEMPLATE).get("Parameters", {}) if TEMPLATE.exists() else {}
    params = {key: value for key, value in TEST_PARAMETERS.items() if key in declared}
    params.update(_env_params())
    return params


@pytest.fixture(scope="session")
def localcloud_server() -> Iterator[Any]:
    from localcloud import LocalCloud

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    global _SERVER
    cloud = LocalCloud(port=0, run_dir=RUN_DIR).start()
    _SERVER = cloud
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture(scope="session")
def localcloud(localcloud_server: Any, localcloud_params: dict[str, str]) -> Any:
    if not TEMPLATE.exists():
        pytest.skip("template.yaml does not exist yet")
    if localcloud_server.stack is None:
        from localcloud.stack import load_template

        params = dict(localcloud_params)
        if "ChatTopicArn" in load_template(TEMPLATE).get("Parameters", {}) and "ChatTopicArn" not in params:
            # A chat channel's topic, as a team's Amazon Q Developer configuration would have it
            # (tests/e2e/test_announce.py reads what reaches it through an SQS subscription).
            params["ChatTopicArn"] = localcloud_server.client("sns").create_topic(Name=CHAT_TOPIC)["TopicArn"]
        localcloud_server.deploy(
            TEMPLATE,
            params,
            stack_name="deckhand",
            build=os.environ.get("LOCALCLOUD_BUILD") == "1",
            main=True,
        )
    return localcloud_server
