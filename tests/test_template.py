"""Checks of template.yaml and the state machine definition (issue: state machine and template).

The template is translated with the official SAM translator (offline) and its intrinsic
functions resolved with the local cloud's resolver, so the IAM checks see what CloudFormation
would create."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest

from localcloud.stack import Physical, load_template
from template_helpers import ACCOUNT, REGION, resolved_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = load_template(ROOT / "template.yaml")
DEFINITION_PATH = ROOT / TEMPLATE["Resources"]["DeployStateMachine"]["Properties"]["DefinitionUri"]
DEFINITION = json.loads(DEFINITION_PATH.read_text())

# The only AWS actions each function may call: what its adapters use, nothing more.
EXPECTED_ACTIONS = {
    "PlanFunction": {"ecs:ListClusters", "ecs:ListServices", "ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecr:DescribeImages"},
    "LockFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "states:DescribeExecution", "ecs:DescribeServices"},
    "DeployFunction": {"ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:TagResource",
                       "ecs:UpdateService", "iam:PassRole", "ecr:DescribeImages"},
    "CheckFunction": {"ecs:DescribeServices", "ecs:ListTasks", "ecs:DescribeTasks", "elasticloadbalancing:DescribeTargetHealth"},
    "RollbackFunction": {"dynamodb:GetItem", "ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecs:UpdateService",
                         "iam:PassRole"},
    "NotifyFunction": {"events:PutEvents"},
}
MUTATING_ECS = {"ecs:UpdateService"}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def functions(template: dict) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def states(definition: dict) -> Iterator[tuple[str, dict]]:
    for name, state in definition["States"].items():
        yield name, state
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                yield from states(nested)


def _physical(logical_id: str, resource_type: str, props: dict[str, Any]) -> Physical:
    """Every resource named after its logical id (its ARN ends with it)."""
    arn = f"arn:aws:{resource_type.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{logical_id}"
    return Physical(resource_type, logical_id, {"Arn": arn, "Name": logical_id})


def resolved(watched_clusters: str) -> dict[str, Any]:
    """The translated template with intrinsics resolved, as CloudFormation would create it."""
    return resolved_template(TEMPLATE, watched_clusters, _physical)


def role_statements(resources: dict, role: str) -> list[dict]:
    """Statements of a role given by logical id or by the (test) ARN ending in its logical id."""
    policies = resources[role.rsplit(":", 1)[-1]]["Properties"].get("Policies", [])
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def test_every_lambda_the_definition_calls_is_a_function_of_the_template() -> None:
    substitutions = TEMPLATE["Resources"]["DeployStateMachine"]["Properties"]["DefinitionSubstitutions"]
    called = set()
    for name, state in states(DEFINITION):
        if state["Type"] != "Task":
            continue
        match = re.fullmatch(r"\$\{(\w+)\}", state["Resource"])
        assert match, f"state {name!r} calls {state['Resource']} instead of a template function"
        target = substitutions[match.group(1)]
        assert list(target) == ["Fn::GetAtt"] and target["Fn::GetAtt"][1] == "Arn", (name, target)
        assert target["Fn::GetAtt"][0] in functions(TEMPLATE), f"{name}: {target} is not a function of the template"
        called.add(target["Fn::GetAtt"][0])
    assert called == set(functions(TEMPLATE)), f"functions never called: {set(functions(TEMPLATE)) - called}"


def test_every_definition_substitution_is_used_and_every_placeholder_defined() -> None:
    substitutions = set(TEMPLATE["Resources"]["DeployStateMachine"]["Properties"]["DefinitionSubstitutions"])
    placeholders = set(re.findall(r"\$\{(\w+)\}", DEFINITION_PATH.read_text()))
    assert placeholders == substitutions


def test_the_definition_uses_jsonpath_and_catches_every_service_failure() -> None:
    assert DEFINITION.get("QueryLanguage", "JSONPath") == "JSONPath"
    item = DEFINITION["States"]["Deploy each service"]["ItemProcessor"]["States"]
    for name, state in item.items():
        if state["Type"] == "Task":
            # A failed service branch must never fail the Map (it would abort the other services).
            assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), f"{name} has no catch-all"
            retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "AwsThrottled", "AwsTransient"} <= retried, name
    plan = DEFINITION["States"]["Plan deployment"]
    first = plan["Catch"][0]
    assert first["ErrorEquals"] == ["InvalidInput"], "InvalidInput from the plan must fail the execution at once"
    bad_input = DEFINITION["States"][first["Next"]]
    assert (bad_input["Type"], bad_input["Error"]) == ("Fail", "InvalidInput"), "…under its own name"
    assert "InvalidInput" not in {e for r in plan["Retry"] for e in r["ErrorEquals"]}, "and is never retried"


def test_functions_are_rust_on_al2023_with_json_logs_and_retention() -> None:
    globals_ = TEMPLATE["Globals"]["Function"]
    assert (globals_["Runtime"], globals_["Handler"]) == ("provided.al2023", "bootstrap")
    assert globals_["Architectures"] == [{"Ref": "Architecture"}]
    assert TEMPLATE["Parameters"]["Architecture"]["Default"] == "arm64"
    binaries = {}
    for crate in (ROOT / "functions").glob("*/Cargo.toml"):
        for binary in tomllib.loads(crate.read_text()).get("bin", []):
            binaries[binary["name"]] = crate.parent.name
    for logical_id, function in functions(TEMPLATE).items():
        assert function["Metadata"]["BuildMethod"] == "rust-cargolambda"
        assert function["Metadata"]["BuildProperties"]["Binary"] in binaries, logical_id
        logging = function["Properties"]["LoggingConfig"]
        assert logging["LogFormat"] == "JSON"
        group = TEMPLATE["Resources"][logging["LogGroup"]["Ref"]]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_push_rule_matches_only_successful_ecr_pushes() -> None:
    pattern = TEMPLATE["Resources"]["DeployStateMachine"]["Properties"]["Events"]["EcrPush"]["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.ecr"] and pattern["detail-type"] == ["ECR Image Action"]
    assert pattern["detail"]["action-type"] == ["PUSH"] and pattern["detail"]["result"] == ["SUCCESS"]


@pytest.mark.parametrize("watched", ["", "prod,staging"])
def test_one_role_per_function_with_only_the_actions_it_calls(watched: str) -> None:
    resources = resolved(watched)
    roles = {}
    for logical_id in EXPECTED_ACTIONS:
        role = resources[logical_id]["Properties"]["Role"]
        assert role not in roles.values(), f"{logical_id} shares a role"
        roles[logical_id] = role
        actions = {a for s in role_statements(resources, role) for a in as_list(s["Action"])}
        assert actions == EXPECTED_ACTIONS[logical_id], logical_id
        assert resources[role.rsplit(":", 1)[-1]]["Properties"].get("ManagedPolicyArns", []) == [BASIC_EXECUTION]


def test_no_wildcard_action_anywhere() -> None:
    resources = resolved("")
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in role_statements(resources, logical_id):
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{logical_id}: {action}"


@pytest.mark.parametrize("watched", ["prod,staging", ""])
def test_mutating_ecs_actions_are_scoped_to_the_watched_clusters(watched: str) -> None:
    resources = resolved(watched)
    checked = 0
    for logical_id in EXPECTED_ACTIONS:
        for statement in role_statements(resources, resources[logical_id]["Properties"]["Role"]):
            if not MUTATING_ECS & set(as_list(statement["Action"])):
                continue
            checked += 1
            assert statement["Resource"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/*", statement
            if watched:
                assert statement["Condition"] == {"StringLike": {"ecs:cluster": ["*:cluster/prod", "*:cluster/staging"]}}, statement
            else:
                assert "Condition" not in statement
    assert checked == 2, "UpdateService in the deploy and rollback roles"


def test_pass_role_only_hands_task_roles_to_ecs_tasks() -> None:
    resources = resolved("")
    grants = [(logical_id, s) for logical_id in EXPECTED_ACTIONS
              for s in role_statements(resources, resources[logical_id]["Properties"]["Role"]) if "iam:PassRole" in as_list(s["Action"])]
    # UpdateService (deploy and rollback) to a revision with task/execution roles passes them to ECS.
    assert [g[0] for g in grants] == ["DeployFunction", "RollbackFunction"]
    for _, statement in grants:
        assert as_list(statement["Action"]) == ["iam:PassRole"]
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
        assert statement["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/*"


def test_the_state_machine_may_only_invoke_deckhand_functions() -> None:
    resources = resolved("")
    machine = next(r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    statements = role_statements(resources, machine["Properties"]["RoleArn"])
    invoke = [s for s in statements if "lambda:InvokeFunction" in as_list(s["Action"])]
    assert len(invoke) == 1
    assert sorted(invoke[0]["Resource"]) == sorted(f"arn:aws:lambda:{REGION}:{ACCOUNT}:{f}" for f in EXPECTED_ACTIONS)
