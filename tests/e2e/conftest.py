"""End-to-end fixtures: deckhand's stack on the local cloud (tests/conftest.py) and helpers."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from .aws import Aws

_AWS: Aws | None = None  # the session's, once a test asked for it


@pytest.fixture(scope="session")
def aws(localcloud: Any) -> Aws:
    global _AWS
    _AWS = Aws(localcloud)
    return _AWS


@pytest.fixture(scope="session")
def events(aws: Aws):
    return aws.event_queue()


@pytest.fixture(scope="module", autouse=True)
def clusters_deleted_after_the_module() -> Iterator[None]:
    """The clusters a module made are deleted when it ends (module-scoped fixtures share them
    across its tests), so that later pushes do not list the services of every finished test."""
    made_before = len(_AWS.clusters_made) if _AWS is not None else 0
    yield
    if _AWS is not None:
        _AWS.delete_clusters(_AWS.clusters_made[made_before:])
