"""The `/_localcloud/ecs/consistency` control route (issue 21, item 1), on the session's local
cloud; the lag itself is shown in test_consistency.py, which serves moto in its own process."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localcloud import ecs_consistency  # noqa: E402
from test_mishaps import control  # noqa: E402


def test_the_consistency_route_shows_sets_and_refuses(localcloud_server):
    cloud = localcloud_server
    try:
        status, setting = control(cloud, "GET", "ecs/consistency")
        assert status == 200 and setting["lagSeconds"] == ecs_consistency.DEFAULT_LAG_SECONDS > 0
        assert control(cloud, "POST", "ecs/consistency", {"lagSeconds": 5}) == (
            200, {"lagSeconds": 5.0, "default": ecs_consistency.DEFAULT_LAG_SECONDS})
        assert control(cloud, "GET", "ecs/consistency")[1]["lagSeconds"] == 5.0
        for bad in ({}, {"lagSeconds": -1}, {"lagSeconds": "5"}, {"lagSeconds": True}, {"lagSeconds": 301},
                    {"lagSeconds": 1, "jitter": True}, {"lag": 1}):
            status, answer = control(cloud, "POST", "ecs/consistency", bad)
            assert status == 400 and answer["error"], (bad, answer)
        assert control(cloud, "GET", "ecs/consistency")[1]["lagSeconds"] == 5.0, "a refusal changes nothing"
        assert control(cloud, "PUT", "ecs/consistency", {"lagSeconds": 1})[0] == 405
    finally:
        status, setting = control(cloud, "DELETE", "ecs/consistency")
    assert status == 200 and setting["lagSeconds"] == ecs_consistency.DEFAULT_LAG_SECONDS
