"""Fixtures shared by the emulator tests (the session's local cloud is tests/conftest.py's).

``cloud``          the local cloud without deckhand's stack (``localcloud_server``).
``role_arn``       an IAM role for functions and state machines, one per test module.
``make_function``  creates a fake function (fake_lambda.py) through the Lambda API.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from fake_lambda import fake_package


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def cloud(localcloud_server: Any) -> Any:
    return localcloud_server


@pytest.fixture(scope="module")
def role_arn(cloud: Any) -> str:
    return cloud.client("iam").create_role(
        RoleName=_unique("emulator-test"), AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]


@pytest.fixture
def make_function(cloud: Any, role_arn: str, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Creates a fake function through the Lambda API; returns its configuration
    plus "RecordFile" (every event it receives, one JSON line each) and "StateDir".
    Other keyword arguments go to CreateFunction (e.g. Code to replace the package)."""

    def make(timeout: int = 5, env: dict[str, str] | None = None, memory: int = 128, **kwargs: Any) -> dict[str, Any]:
        record = tmp_path / f"{uuid.uuid4().hex}.jsonl"
        variables = {"FAKE_STATE_DIR": str(tmp_path), "FAKE_RECORD_FILE": str(record), **(env or {})}
        config = cloud.client("lambda").create_function(
            FunctionName=_unique("fake"),
            Runtime="provided.al2023",
            Handler="bootstrap",
            Role=role_arn,
            Code=kwargs.pop("Code", {"ZipFile": fake_package()}),
            Timeout=timeout,
            MemorySize=memory,
            Environment={"Variables": variables},
            **kwargs,
        )
        config["RecordFile"] = record
        config["StateDir"] = tmp_path
        return config

    return make
