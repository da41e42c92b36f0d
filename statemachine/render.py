#!/usr/bin/env python3
"""Renders the state machines SAM deploys (`deploy.asl.json`, the fan-out, and `service.asl.json`,
one service's deployment) from their sources (`deploy.src.json`, `service.src.json`).

ASL has no way to share a Retry or Catch list between states, so `policies.json` names them once
for both: `"Retry": "@retry:NAME"` takes the list `retry.NAME` (whose items may name other lists
the same way), and a Catch entry `{"@catch": "NAME", "Next": ..., "ResultPath": ...}` takes the
error names `catch.NAME`. Everything else is copied as it is. `tests/test_statemachine_source.py`
fails when a rendered file is out of date:

    python3 statemachine/render.py           # write the .asl.json files
    python3 statemachine/render.py --check   # exit 1 if one differs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
POLICIES = HERE / "policies.json"
# source → what SAM deploys
MACHINES = {HERE / "deploy.src.json": HERE / "deploy.asl.json", HERE / "service.src.json": HERE / "service.asl.json"}
SOURCE, RENDERED = next(iter(MACHINES.items()))


def render(source: dict[str, Any], policies: dict[str, Any] | None = None) -> dict[str, Any]:
    if policies is None:
        policies = source.get("policies") or json.loads(POLICIES.read_text())
    retries: dict[str, list] = policies.get("retry", {})
    catches: dict[str, list] = policies.get("catch", {})

    def expand(node: Any) -> Any:
        if isinstance(node, list):
            return [expand(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "Retry" and isinstance(value, str):
                out[key] = _policy(retries, value, "@retry:")
            elif key == "Catch" and isinstance(value, list):
                out[key] = [_catcher(catches, catcher) for catcher in value]
            else:
                out[key] = expand(value)
        return out

    definition = {key: value for key, value in source.items() if key != "policies"}
    return expand(definition)


def _policy(retries: dict[str, list], reference: str, prefix: str) -> list:
    """A named Retry list; an item that is itself a reference is replaced by that list's items."""
    if not reference.startswith(prefix) or reference[len(prefix):] not in retries:
        raise ValueError(f"unknown retry policy {reference!r} (known: {sorted(retries)})")
    out: list = []
    for item in retries[reference[len(prefix):]]:
        out.extend(_policy(retries, item, prefix) if isinstance(item, str) else [json.loads(json.dumps(item))])
    return out


def _catcher(catches: dict[str, list], catcher: dict[str, Any]) -> dict[str, Any]:
    if "@catch" not in catcher:
        return dict(catcher)
    name = catcher["@catch"]
    if name not in catches:
        raise ValueError(f"unknown catch policy {name!r} (known: {sorted(catches)})")
    rest = {key: value for key, value in catcher.items() if key != "@catch"}
    return {"ErrorEquals": list(catches[name]), **rest}


def rendered_text(source: Path = SOURCE) -> str:
    return json.dumps(render(json.loads(source.read_text())), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    stale = 0
    for source, rendered in MACHINES.items():
        text = rendered_text(source)
        if "--check" not in argv:
            rendered.write_text(text)
        elif rendered.read_text() != text:
            print(f"{rendered.name} is out of date: run python3 statemachine/render.py", file=sys.stderr)
            stale = 1
    return stale


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
