"""End-to-end fixtures: deckhand's stack on the local cloud (tests/conftest.py) and helpers."""

from __future__ import annotations

from typing import Any

import pytest

from .aws import Aws


@pytest.fixture(scope="session")
def aws(localcloud: Any) -> Aws:
    return Aws(localcloud)


@pytest.fixture(scope="session")
def events(aws: Aws):
    return aws.event_queue()
