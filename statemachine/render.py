#!/usr/bin/env python3
"""Renders statemachine/deploy.asl.json (what SAM deploys) from statemachine/deploy.src.json.

ASL has no way to share a Retry or Catch list between states, so the source names them once:
`"Retry": "@retry:NAME"` takes the list `policies.retry.NAME` (whose items may name other lists
the same way), and a Catch entry
`{"@catch": "NAME", "Next": ..., "ResultPath": ...}` takes the error names `policies.catch.NAME`.
Everything else is copied as it is. `tests/test_statemachine_source.py` fails when the rendered
file is out of date:

    python3 statemachine/render.py           # write deploy.asl.json
    python3 statemachine/render.py --check   # exit 1 if deploy.asl.json differs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "deploy.src.json"
RENDERED = HERE / "deploy.asl.json"


def render(source: dict[str, Any]) -> dict[str, Any]:
    policies = source.get("policies", {})
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


def rendered_text() -> str:
    return json.dumps(render(json.loads(SOURCE.read_text())), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = rendered_text()
    if "--check" in argv:
        if RENDERED.read_text() != text:
            print(f"{RENDERED.name} is out of date: run python3 statemachine/render.py", file=sys.stderr)
            return 1
        return 0
    RENDERED.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
