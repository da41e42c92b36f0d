"""The state machines SAM deploys (statemachine/*.asl.json) are rendered from their sources
(*.src.json), whose Retry and Catch policies are defined once (policies.json): the rendered files
must be up to date, and every Task shares the policies."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("render", ROOT / "statemachine" / "render.py")
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)  # type: ignore[union-attr]


MACHINES = sorted(render.MACHINES.items())


@pytest.mark.parametrize("source, rendered", MACHINES, ids=[s.name for s, _ in MACHINES])
def test_the_deployed_definition_is_rendered_from_the_source(source: Path, rendered: Path) -> None:
    assert rendered.read_text() == render.rendered_text(source), (
        f"statemachine/{rendered.name} is out of date: run python3 statemachine/render.py"
    )


@pytest.mark.parametrize("source", [s for s, _ in MACHINES], ids=[s.name for s, _ in MACHINES])
def test_no_task_in_the_source_spells_out_a_shared_retry_policy(source: Path) -> None:
    source = json.loads(source.read_text())

    def tasks(states: dict) -> list[tuple[str, dict]]:
        found = []
        for name, state in states.items():
            if state["Type"] == "Task":
                found.append((name, state))
            if state["Type"] == "Map":
                found += tasks(state["ItemProcessor"]["States"])
        return found

    for name, state in tasks(source["States"]):
        assert isinstance(state.get("Retry"), str), f"{name}: Retry must name a policy (\"@retry:...\")"


def test_unknown_policy_names_are_refused() -> None:
    broken = {"policies": {"retry": {}}, "States": {"A": {"Type": "Task", "Retry": "@retry:nope"}}}
    with pytest.raises(ValueError, match="unknown retry policy"):
        render.render(broken)
    with pytest.raises(ValueError, match="unknown catch policy"):
        render.render({"policies": {}, "States": {"A": {"Type": "Task", "Catch": [{"@catch": "nope", "Next": "B"}]}}})
    expanded = render.render({"policies": {"retry": {"a": [{"ErrorEquals": ["X"]}], "b": [{"ErrorEquals": ["Y"]}, "@retry:a"]}},
                              "States": {"A": {"Type": "Task", "Retry": "@retry:b"}}})
    assert expanded["States"]["A"]["Retry"] == [{"ErrorEquals": ["Y"]}, {"ErrorEquals": ["X"]}]


CONTRACT_ERRORS = {"InvalidInput", "DeploymentFailed", "DeploymentRolledBack", "RollbackFailed"}


@pytest.mark.parametrize("machine", ["deploy.asl.json", "service.asl.json"])
def test_the_execution_can_only_fail_with_the_errors_of_the_contract(machine: str) -> None:
    """An uncaught error (a plan that timed out reaches Step Functions as Lambda.Unknown) would
    end the execution with a name the README does not promise."""
    definition = json.loads((ROOT / "statemachine" / machine).read_text())
    for name, state in definition["States"].items():
        if state["Type"] == "Fail":
            assert state["Error"] in CONTRACT_ERRORS, name
        if state["Type"] == "Task":
            caught = [error for catcher in state.get("Catch", []) for error in catcher["ErrorEquals"]]
            assert "States.ALL" in caught, f"{name}: an error would escape the execution under its own name"
        if state["Type"] == "Map":
            assert "Catch" not in state or "States.ALL" in str(state["Catch"]), name
