"""State machine definitions are validated as AWS validates them (tests/localcloud/asl_validation.py).

deckhand's definition (after DefinitionSubstitutions) and the emulator's fixture definitions
pass; deliberately broken copies are refused, by the module and by the local cloud's
CreateStateMachine / UpdateStateMachine (InvalidDefinition, HTTP 400) and its stack deployer.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from localcloud import asl_validation
from localcloud.asl_validation import (
    MAX_DEFINITION_LENGTH,
    DefinitionTooLongError,
    InvalidDefinitionError,
    ValidatorMissing,
    asl_validator_diagnostics,
    check_definition,
    validate_definition,
)
from localcloud.stack import StackError, apply_definition_substitutions, load_template

ROOT = Path(__file__).resolve().parents[1]
ROLE_ARN = "arn:aws:iam::123456789012:role/asl-validation-test"
MAP = "Deploy each service"


def substituted(template_path: Path, logical_id: str, values: Callable[[str], str]) -> str:
    """The definition file of a template's state machine after its DefinitionSubstitutions,
    with ``values(key)`` standing in for each (fake ARNs: nothing is deployed)."""
    props = load_template(template_path)["Resources"][logical_id]["Properties"]
    text = (template_path.parent / props["DefinitionUri"]).read_text()
    return apply_definition_substitutions(text, {key: values(key) for key in props["DefinitionSubstitutions"]})


def fake_value(key: str) -> str:
    if key.endswith("FunctionArn"):
        return f"arn:aws:lambda:us-east-1:123456789012:function:deckhand-{key.removesuffix('FunctionArn')}"
    if key.endswith("StateMachineArn"):
        return f"arn:aws:states:us-east-1:123456789012:stateMachine:deckhand-{key.removesuffix('StateMachineArn')}"
    # PollIntervalSeconds is unquoted in the fixture: a number; Partition is AWS::Partition.
    return {"PollIntervalSeconds": "5", "Partition": "aws"}.get(key, f"deckhand-{key}")


@pytest.fixture(scope="module")
def deploy_definition() -> dict[str, Any]:
    return json.loads(substituted(ROOT / "template.yaml", "DeployStateMachine", fake_value))


@pytest.fixture(scope="module")
def service_definition() -> dict[str, Any]:
    return json.loads(substituted(ROOT / "template.yaml", "ServiceStateMachine", fake_value))


def item_states(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["States"][MAP]["ItemProcessor"]["States"]


def lock_task(definition: dict[str, Any]) -> dict[str, Any]:
    """A Task with Retry and Catch lists (the Map's start of a service's execution)."""
    return item_states(definition)["Deploy the service"]


def leave_the_map(d: dict[str, Any]) -> None:
    inner = item_states(d)["Child failed"]
    inner.pop("End")
    inner["Next"] = "Sum up the services"


def rename_inner_failed(d: dict[str, Any]) -> None:
    """The defect the strict-cloud issue found: a Map state named like a top-level one."""
    states = item_states(d)
    states["Deployment failed"] = states.pop("Child failed")
    for state in states.values():
        for holder in [state, *state.get("Catch", []), *state.get("Choices", [])]:
            for key in ("Next", "Default"):
                if holder.get(key) == "Child failed":
                    holder[key] = "Deployment failed"


# (id, how to break deckhand's definition, AWS code expected, text expected in the message)
BROKEN: list[tuple[str, Callable[[dict[str, Any]], Any], str, str]] = [
    ("duplicate name across Map and top level", rename_inner_failed, "DUPLICATE_STATE_NAME", "Deployment failed"),
    ("Next names no state", lambda d: d["States"]["Sum up the services"].update(Next="Tally"), "MISSING_TRANSITION_TARGET", "Tally"),
    ("Catch Next names no state", lambda d: lock_task(d)["Catch"][0].update(Next="Cleanup"), "MISSING_TRANSITION_TARGET", "Cleanup"),
    ("unreachable state", lambda d: d["States"].update(Orphan={"Type": "Succeed"}), "MISSING_TRANSITION_TARGET", "Orphan"),
    ("state name over 80 characters",
     lambda d: d["States"].update({"x" * 81: d["States"].pop("Deployment succeeded")})
     or d["States"]["All services healthy?"].update(Default="x" * 81),
     "SCHEMA_VALIDATION_FAILED", ""),
    ("no terminal state",
     lambda d: d.clear() or d.update(StartAt="A", States={"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}),
     "MISSING_END_STATE", ""),
    ("not JSON", None, "INVALID_JSON_DESCRIPTION", ""),
]

# The checks asl_validation adds, each fed something asl-validator lets through.
EXTRA: list[tuple[str, Callable[[dict[str, Any]], Any], str, str]] = [
    ("unreachable cycle",
     lambda d: d["States"].update(Again={"Type": "Pass", "Next": "Once more"}, **{"Once more": {"Type": "Pass", "Next": "Again"}}),
     "MISSING_TRANSITION_TARGET", '"Again" is not reachable'),
    ("ItemProcessor state leaves the Map", leave_the_map,
     "MISSING_TRANSITION_TARGET", "Missing 'Next' target: Sum up the services"),
    ("States.ALL not alone in Retry", lambda d: lock_task(d)["Retry"].append({"ErrorEquals": ["States.ALL", "Other"]}),
     "SCHEMA_VALIDATION_FAILED", "alone"),
    ("States.ALL not in the last Retrier", lambda d: lock_task(d)["Retry"].insert(0, {"ErrorEquals": ["States.ALL"]}),
     "SCHEMA_VALIDATION_FAILED", "last Retrier"),
    ("States.ALL not alone in Catch", lambda d: lock_task(d)["Catch"][0].update(ErrorEquals=["States.ALL", "Other"]),
     "SCHEMA_VALIDATION_FAILED", "alone"),
    ("States.ALL not in the last Catcher",
     lambda d: lock_task(d)["Catch"].append({"ErrorEquals": ["Other"], "Next": "Child failed"}),
     "SCHEMA_VALIDATION_FAILED", "last Catcher"),
    ("empty ErrorEquals", lambda d: lock_task(d)["Retry"][0].update(ErrorEquals=[]), "SCHEMA_VALIDATION_FAILED", "empty"),
    ("IntervalSeconds 0", lambda d: lock_task(d)["Retry"][0].update(IntervalSeconds=0), "SCHEMA_VALIDATION_FAILED", "IntervalSeconds"),
    ("MaxDelaySeconds 0", lambda d: lock_task(d)["Retry"][0].update(MaxDelaySeconds=0), "SCHEMA_VALIDATION_FAILED", "MaxDelaySeconds"),
    ("BackoffRate below 1", lambda d: lock_task(d)["Retry"][0].update(BackoffRate=0.5), "SCHEMA_VALIDATION_FAILED", "BackoffRate"),
    ("HeartbeatSeconds not below TimeoutSeconds",
     lambda d: d["States"]["Plan deployment"].update(TimeoutSeconds=30, HeartbeatSeconds=30),
     "SCHEMA_VALIDATION_FAILED", "HeartbeatSeconds"),
    ("unsubstituted ${...} in Resource", lambda d: d["States"]["Plan deployment"].update(Resource="${PlanFunctionArn}"),
     "INVALID_RESOURCE", "${PlanFunctionArn}"),
    ("CloudFormation intrinsic left in Resource",
     lambda d: d["States"]["Plan deployment"].update(Resource={"Fn::GetAtt": ["PlanFunction", "Arn"]}),
     "INVALID_RESOURCE", "Fn::GetAtt"),
]


def broken_text(deploy_definition: dict[str, Any], breaker: Callable[[dict[str, Any]], Any] | None) -> str:
    if breaker is None:
        return json.dumps(deploy_definition)[:-1]  # cut off the closing brace
    definition = copy.deepcopy(deploy_definition)
    breaker(definition)
    return json.dumps(definition)


def assert_refused(diagnostics: list[Any], code: str, text: str) -> None:
    assert any(d.code == code and text in str(d) for d in diagnostics), diagnostics


# ------------------------------------------------------------------------------------------
# the module
# ------------------------------------------------------------------------------------------


def test_deckhands_definitions_pass_after_substitution(deploy_definition: dict[str, Any],
                                                        service_definition: dict[str, Any]) -> None:
    assert validate_definition(json.dumps(deploy_definition)) == []
    assert validate_definition(json.dumps(service_definition)) == []


def test_emulator_fixture_definitions_pass() -> None:
    template = ROOT / "tests" / "emulator" / "fixtures" / "template.yaml"
    machines = [k for k, v in load_template(template)["Resources"].items() if v["Type"].endswith("::StateMachine")]
    assert machines
    for logical_id in machines:
        assert validate_definition(substituted(template, logical_id, fake_value)) == [], logical_id


@pytest.mark.parametrize("case", BROKEN + EXTRA, ids=[case[0] for case in BROKEN + EXTRA])
def test_broken_definition_is_refused(deploy_definition: dict[str, Any], case: tuple) -> None:
    _, breaker, code, text = case
    definition = broken_text(deploy_definition, breaker)
    assert_refused(validate_definition(definition), code, text)
    with pytest.raises(InvalidDefinitionError, match=r"^Invalid State Machine Definition: '" + code):
        check_definition(definition)


@pytest.mark.parametrize("case", EXTRA, ids=[case[0] for case in EXTRA])
def test_extra_checks_catch_what_asl_validator_misses(deploy_definition: dict[str, Any], case: tuple) -> None:
    """Each extra check exists because asl-validator (as pinned) accepts its broken input; if
    an upgrade starts catching one, this fails and the check can go."""
    _, breaker, _, _ = case
    assert asl_validator_diagnostics(broken_text(deploy_definition, breaker)) == []


def test_the_issues_defect_is_what_asl_validator_reports(deploy_definition: dict[str, Any]) -> None:
    codes = {d.message for d in asl_validator_diagnostics(broken_text(deploy_definition, rename_inner_failed))}
    assert "A state with this name already exists: Deployment failed (DUPLICATE_STATE_NAMES)" in codes


def test_definition_longer_than_the_api_allows_is_refused(deploy_definition: dict[str, Any]) -> None:
    padded = dict(deploy_definition, Comment="x" * MAX_DEFINITION_LENGTH)
    with pytest.raises(DefinitionTooLongError, match="less than or equal to 1048576"):
        check_definition(json.dumps(padded))
    # Exactly at the limit is accepted.
    at_limit = dict(deploy_definition, Comment="")
    at_limit["Comment"] = "x" * (MAX_DEFINITION_LENGTH - len(json.dumps(at_limit)))
    check_definition(json.dumps(at_limit))


@pytest.mark.parametrize("missing", ["node", "asl-validator"])
def test_missing_validator_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, missing: str) -> None:
    monkeypatch.setattr(asl_validation, "_VALIDATOR", asl_validation._NodeValidator())  # a fresh node process
    if missing == "node":
        monkeypatch.setenv("PATH", str(tmp_path))
    else:
        monkeypatch.setattr(asl_validation, "ASL_VALIDATOR", tmp_path / "absent" / "package.json")
    with pytest.raises(ValidatorMissing, match="run scripts/bootstrap"):
        validate_definition('{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}')


# ------------------------------------------------------------------------------------------
# the local cloud
# ------------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def refusal(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


@pytest.mark.parametrize("case", BROKEN + EXTRA, ids=[case[0] for case in BROKEN + EXTRA])
def test_create_state_machine_refuses(localcloud_server: Any, deploy_definition: dict[str, Any], case: tuple) -> None:
    _, breaker, code, text = case
    sfn = localcloud_server.client("stepfunctions")
    name = unique("asl-broken")
    error, status, message = refusal(lambda: sfn.create_state_machine(
        name=name, definition=broken_text(deploy_definition, breaker), roleArn=ROLE_ARN))
    assert (error, status) == ("InvalidDefinition", 400)
    assert message.startswith("Invalid State Machine Definition: '") and code in message and text in message
    names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert name not in names


def test_update_state_machine_refuses(localcloud_server: Any, deploy_definition: dict[str, Any]) -> None:
    sfn = localcloud_server.client("stepfunctions")
    good = json.dumps(deploy_definition)
    arn = sfn.create_state_machine(name=unique("asl-good"), definition=good, roleArn=ROLE_ARN)["stateMachineArn"]
    broken = broken_text(deploy_definition, rename_inner_failed)
    error, status, message = refusal(lambda: sfn.update_state_machine(stateMachineArn=arn, definition=broken))
    assert (error, status) == ("InvalidDefinition", 400) and "DUPLICATE_STATE_NAME" in message
    assert sfn.describe_state_machine(stateMachineArn=arn)["definition"] == good


def test_create_state_machine_refuses_an_oversized_definition(localcloud_server: Any, deploy_definition: dict[str, Any]) -> None:
    sfn = localcloud_server.client("stepfunctions")
    padded = json.dumps(dict(deploy_definition, Comment="x" * MAX_DEFINITION_LENGTH))
    error, status, message = refusal(lambda: sfn.create_state_machine(
        name=unique("asl-big"), definition=padded, roleArn=ROLE_ARN))
    assert (error, status) == ("ValidationException", 400) and "1048576" in message


def test_stack_deploy_refuses_a_definition_with_a_forgotten_substitution(localcloud_server: Any, tmp_path: Path) -> None:
    """The deployer substitutes DefinitionSubstitutions, then CreateStateMachine judges the result:
    a key missing from DefinitionSubstitutions leaves "${...}" in Resource, which AWS refuses."""
    definition = {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "${WorkFunctionArn}", "End": True}}}
    template = {
        "Resources": {
            "MachineRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}],
            }}},
            "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
                "RoleArn": {"Fn::GetAtt": ["MachineRole", "Arn"]},
                "DefinitionString": json.dumps(definition),
                "DefinitionSubstitutions": {"WorkFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:work"},
            }},
        },
    }
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    with pytest.raises(StackError, match=r"InvalidDefinition.*INVALID_RESOURCE.*\$\{WorkFunctionArn\}"):
        localcloud_server.deploy(path, {}, stack_name=unique("asl-stack"))
    # The same template with the key spelled right deploys.
    template["Resources"]["Machine"]["Properties"]["DefinitionSubstitutions"] = {
        "WorkFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:work"}
    path.write_text(json.dumps(template))
    stack = localcloud_server.deploy(path, {}, stack_name=unique("asl-stack"))
    assert stack.resources["Machine"].ref.startswith("arn:aws:states:")


def test_moto_parser_refusals_answer_invalid_definition_too(localcloud_server: Any, deploy_definition: dict[str, Any]) -> None:
    """moto's own ASL parser refuses some definitions asl-validator lets through (an unknown
    "Version"); its exception reached clients with an empty error type until asl_validation
    re-raised it typed."""
    definition = json.dumps(dict(deploy_definition, Version="2.0"))
    assert validate_definition(definition) == []
    error, status, message = refusal(lambda: localcloud_server.client("stepfunctions").create_state_machine(
        name=unique("asl-version"), definition=definition, roleArn=ROLE_ARN))
    assert (error, status) == ("InvalidDefinition", 400) and "2.0" in message
