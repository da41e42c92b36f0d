"""The local cloud's control routes (/_localcloud/...), shared by the emulator tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def control(cloud: Any, method: str, route: str, body: dict | None = None) -> tuple[int, Any]:
    """Calls a control route; answers (HTTP status, decoded body), errors included."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{cloud.endpoint}/_localcloud/{route}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
