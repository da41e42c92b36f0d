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
# The fan-out (DeployStateMachine) and one service's deployment (ServiceStateMachine).
MACHINES = ("DeployStateMachine", "ServiceStateMachine")
DEFINITION_PATHS = {m: ROOT / TEMPLATE["Resources"][m]["Properties"]["DefinitionUri"] for m in MACHINES}
DEFINITIONS = {m: json.loads(path.read_text()) for m, path in DEFINITION_PATHS.items()}
DEFINITION = DEFINITIONS["DeployStateMachine"]
SERVICE_DEFINITION = DEFINITIONS["ServiceStateMachine"]

# The only AWS actions each function may call: what its adapters use, nothing more.
EXPECTED_ACTIONS = {
    "PlanFunction": {"ecs:ListClusters", "ecs:DescribeClusters", "ecs:ListServices", "ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecr:DescribeImages",
                     "cloudwatch:DescribeAlarms", "dynamodb:GetItem", "dynamodb:PutItem"},
    "LockFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "states:DescribeExecution", "ecs:DescribeServices",
                     "ecs:DescribeTaskDefinition", "events:PutEvents", "states:SendTaskFailure",
                     "ecr:BatchGetImage", "ecr:PutImage", "ecr:BatchDeleteImage"},
    "DeployFunction": {"ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:TagResource",
                       "ecs:UpdateService", "iam:PassRole", "ecr:DescribeImages"},
    # DescribeContainerInstances: bridge/host-mode targets; DescribeServiceDeployments: ECS-native strategies.
    "CheckFunction": {"ecs:DescribeServices", "ecs:ListTasks", "ecs:DescribeTasks", "elasticloadbalancing:DescribeTargetHealth",
                      "ecs:DescribeContainerInstances", "ecs:DescribeServiceDeployments",
                      # GetItem: why deckhand's lifecycle hook failed a deployment, for the verdict.
                      "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "states:SendTaskSuccess",
                      "cloudwatch:DescribeAlarms"},
    # The lifecycle hook (the check binary, invoked by ECS): observes, never changes the service.
    "HookFunction": {"ecs:DescribeServices", "ecs:ListTasks", "ecs:DescribeTasks", "elasticloadbalancing:DescribeTargetHealth",
                     "ecs:DescribeContainerInstances", "ecs:DescribeServiceDeployments", "cloudwatch:DescribeAlarms",
                     "dynamodb:PutItem"},
    # sqs:SendMessage: SAM's policy for the on-failure destination (failed ECS events).
    "SignalFunction": {"ecs:DescribeServices", "ecs:ListTasks", "ecs:DescribeTasks", "elasticloadbalancing:DescribeTargetHealth",
                       "ecs:DescribeContainerInstances", "ecs:DescribeServiceDeployments",
                       "sqs:SendMessage",
                       # UpdateItem: one invocation judges a service at a time (a claim on its watcher).
                       "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "states:SendTaskSuccess", "cloudwatch:DescribeAlarms"},
    # StopServiceDeployment: ECS-native strategies roll back through ECS.
    "RollbackFunction": {"dynamodb:GetItem", "ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecs:UpdateService",
                         "ecs:StopServiceDeployment",
                         "iam:PassRole", "ecr:DescribeImages"},
    "NotifyFunction": {"events:PutEvents"},
    # The announce function (the notify binary, EventBridge's target): chat messages to the
    # stack's topic; its metrics are EMF records in its own log (no CloudWatch API call).
    "AnnounceFunction": {"sns:Publish"},
}
CHAT_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:deploys"
MUTATING_ECS = {"ecs:UpdateService", "ecs:StopServiceDeployment"}
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


def resolved(watched_clusters: str, **overrides: str) -> dict[str, Any]:
    """The translated template with intrinsics resolved, as CloudFormation would create it."""
    return resolved_template(TEMPLATE, watched_clusters, _physical, overrides)


def role_statements(resources: dict, role: str) -> list[dict]:
    """Statements of a role given by logical id or by the (test) ARN ending in its logical id."""
    policies = resources[role.rsplit(":", 1)[-1]]["Properties"].get("Policies", [])
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# Integration ARNs carry the partition (aws, aws-cn, aws-us-gov), substituted from AWS::Partition.
INTEGRATION_PREFIX = "arn:${Partition}:states:::"
LAMBDA_INTEGRATIONS = {f"{INTEGRATION_PREFIX}lambda:invoke", f"{INTEGRATION_PREFIX}lambda:invoke.waitForTaskToken"}


def called_resource(state: dict) -> str:
    """The placeholder a Task calls: its Resource, or the FunctionName / StateMachineArn of an
    optimised integration."""
    if state["Resource"] in LAMBDA_INTEGRATIONS:
        return state["Parameters"]["FunctionName"]
    if state["Resource"].startswith(f"{INTEGRATION_PREFIX}states:startExecution"):
        return state["Parameters"]["StateMachineArn"]
    return state["Resource"]


def test_every_lambda_the_definitions_call_is_a_function_of_the_template() -> None:
    called = set()
    for machine, definition in DEFINITIONS.items():
        substitutions = TEMPLATE["Resources"][machine]["Properties"]["DefinitionSubstitutions"]
        for name, state in states(definition):
            if state["Type"] != "Task":
                continue
            match = re.fullmatch(r"\$\{(\w+)\}", called_resource(state))
            assert match, f"state {name!r} calls {state['Resource']} instead of a template resource"
            target = substitutions[match.group(1)]
            if target == {"Ref": "ServiceStateMachine"}:
                continue
            assert list(target) == ["Fn::GetAtt"] and target["Fn::GetAtt"][1] == "Arn", (name, target)
            assert target["Fn::GetAtt"][0] in functions(TEMPLATE), f"{name}: {target} is not a function of the template"
            called.add(target["Fn::GetAtt"][0])
    # The signal function is EventBridge's target and the hook ECS's, not the state machines'.
    never_called = set(functions(TEMPLATE)) - called - {"SignalFunction", "HookFunction", "AnnounceFunction"}
    assert not never_called, f"functions never called: {never_called}"


def test_the_fan_out_starts_one_service_execution_per_service_and_waits_for_it() -> None:
    item = DEFINITION["States"]["Deploy each service"]["ItemProcessor"]["States"]
    (start,) = [s for s in item.values() if s["Type"] == "Task"]
    assert start["Resource"] == f"{INTEGRATION_PREFIX}states:startExecution.sync:2"
    assert start["Parameters"]["StateMachineArn"] == "${ServiceStateMachineArn}"
    assert "Name.$" in start["Parameters"], "a deterministic name makes a retried start idempotent"
    assert any("States.ALL" in c["ErrorEquals"] for c in start["Catch"]), "a failed child must not fail the Map"


def test_a_service_execution_waits_on_ecs_events_with_a_heartbeat_that_rechecks() -> None:
    waits = {n: s for n, s in states(SERVICE_DEFINITION) if s.get("Resource", "").endswith(".waitForTaskToken")}
    assert set(waits) == {"Wait for ECS events", "Wait for rollback events", "Wait for approval"}
    approval = waits.pop("Wait for approval")
    for name, state in waits.items():
        assert state["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token", name
        assert state["HeartbeatSecondsPath"].endswith("ealth.recheckSeconds"), name
        first = state["Catch"][0]
        assert first["ErrorEquals"] == ["States.HeartbeatTimeout"], f"{name}: a silent heartbeat means: check anyway"
        assert SERVICE_DEFINITION["States"][first["Next"]]["Resource"] == "${CheckFunctionArn}", name


def test_a_push_waits_for_approval_before_the_lock_and_ends_skipped_or_superseded() -> None:
    machine = SERVICE_DEFINITION["States"]
    gate = machine["Approval required?"]
    assert machine["Can deckhand verify it?"]["Default"] == "Approval required?"
    assert gate["Default"] == "Acquire service lock" and gate["Choices"][0]["Next"] == "Wait for approval"
    wait = machine["Wait for approval"]
    assert wait["Parameters"]["FunctionName"] == "${LockFunctionArn}"
    assert wait["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert wait["TimeoutSecondsPath"] == "$.target.policy.gates.approvalTimeoutSeconds"
    assert "HeartbeatSecondsPath" not in wait, "nothing beats while a person decides"
    catches = {error: c["Next"] for c in wait["Catch"] for error in c["ErrorEquals"]}
    assert catches == {"Superseded": "Superseded", "Rejected": "Skipped", "States.Timeout": "Skipped", "States.ALL": "Failed"}
    assert wait["Next"] == "Acquire service lock"


def test_rollback_checks_do_not_apply_the_alarm_gate() -> None:
    machine = SERVICE_DEFINITION["States"]
    assert machine["Check rollback health"]["Parameters"]["rollback"] is True
    assert machine["Wait for rollback events"]["Parameters"]["Payload"]["rollback"] is True
    assert "rollback" not in machine["Check rollout health"]["Parameters"]


def test_the_signal_function_hears_ecs_deployments_and_stopped_service_tasks() -> None:
    events = TEMPLATE["Resources"]["SignalFunction"]["Properties"]["Events"]
    patterns = {name: event["Properties"]["Pattern"] for name, event in events.items()}
    assert patterns["EcsDeployments"] == {"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]}
    stopped = patterns["EcsStoppedServiceTasks"]
    assert stopped["detail-type"] == ["ECS Task State Change"] and stopped["detail"]["lastStatus"] == ["STOPPED"]
    # A stop is heard when ECS decides it, not only after the target has drained.
    stopping = patterns["EcsStoppingServiceTasks"]["detail"]
    assert stopping["desiredStatus"] == ["STOPPED"] and stopping["lastStatus"] == ["RUNNING"]


def test_every_definition_substitution_is_used_and_every_placeholder_defined() -> None:
    for machine, path in DEFINITION_PATHS.items():
        substitutions = set(TEMPLATE["Resources"][machine]["Properties"]["DefinitionSubstitutions"])
        placeholders = set(re.findall(r"\$\{(\w+)\}", path.read_text()))
        assert placeholders == substitutions, machine


def test_the_definition_uses_jsonpath_and_catches_every_service_failure() -> None:
    assert DEFINITION.get("QueryLanguage", "JSONPath") == "JSONPath"
    assert SERVICE_DEFINITION.get("QueryLanguage", "JSONPath") == "JSONPath"
    for name, state in SERVICE_DEFINITION["States"].items():
        if state["Type"] == "Task":
            # Every failure of a step must end in the service's own verdict and event.
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
    # Not the protection tags deckhand puts on known-good images (domain/protect.rs TAG_PREFIX).
    assert pattern["detail"]["image-tag"] == [{"anything-but": {"prefix": "deckhand-kg-"}}]


def test_registry_accounts_open_the_default_bus_to_their_ecr_pushes_only() -> None:
    assert "RegistryPushesPolicy" not in resolved(""), "no registry account: the bus stays closed"
    resources = resolved("", RegistryAccounts="210987654321,310987654321")
    statement = resources["RegistryPushesPolicy"]["Properties"]["Statement"]
    assert statement["Principal"] == {"AWS": ["210987654321", "310987654321"]}
    assert statement["Action"] == "events:PutEvents" and statement["Resource"].endswith(":event-bus/default")
    assert statement["Condition"]["StringEquals"] == {"events:source": "aws.ecr", "events:detail-type": "ECR Image Action"}
    environment = resources["PlanFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["DECKHAND_REGISTRY_ACCOUNTS"] == "210987654321,310987654321"
    reads = [s for s in role_statements(resources, resources["PlanFunction"]["Properties"]["Role"])
             if s.get("Sid") == "ResolveImageDigests"][0]
    assert "arn:aws:ecr:*:*:repository/*" in reads["Resource"], reads


def test_the_registry_side_forwards_successful_pushes_to_deckhands_default_bus() -> None:
    registry = load_template(ROOT / "registry.yaml")
    rule = registry["Resources"]["ForwardPushes"]["Properties"]
    assert rule["EventPattern"]["detail"]["action-type"] == ["PUSH"] and rule["EventPattern"]["source"] == ["aws.ecr"]
    (target,) = rule["Targets"]
    assert "event-bus/default" in json.dumps(target["Arn"]) and "RoleArn" in target
    statements = registry["Resources"]["ForwardPushesRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in statements] == ["events:PutEvents"]


@pytest.mark.parametrize("watched", ["", "prod,staging"])
def test_one_role_per_function_with_only_the_actions_it_calls(watched: str) -> None:
    resources = resolved(watched, ChatTopicArn=CHAT_TOPIC)
    roles = {}
    for logical_id in EXPECTED_ACTIONS:
        role = resources[logical_id]["Properties"]["Role"]
        assert role not in roles.values(), f"{logical_id} shares a role"
        roles[logical_id] = role
        actions = {a for s in role_statements(resources, role) for a in as_list(s["Action"])}
        assert actions == EXPECTED_ACTIONS[logical_id], logical_id
        assert resources[role.rsplit(":", 1)[-1]]["Properties"].get("ManagedPolicyArns", []) == [BASIC_EXECUTION]


def test_without_a_chat_topic_the_announce_function_may_call_nothing() -> None:
    resources = resolved("")
    role = resources["AnnounceFunction"]["Properties"]["Role"]
    assert role_statements(resources, role) == []
    with_chat = resolved("", ChatTopicArn=CHAT_TOPIC)
    (statement,) = role_statements(with_chat, with_chat["AnnounceFunction"]["Properties"]["Role"])
    assert statement["Resource"] == CHAT_TOPIC
    rule = [r for r in TEMPLATE["Resources"]["AnnounceFunction"]["Properties"]["Events"].values()][0]["Properties"]
    assert rule["Pattern"] == {"source": ["deckhand"], "detail-type": ["Deckhand Deployment State Change"]}


def test_the_dashboard_and_alarms_read_what_the_announce_function_records() -> None:
    resources = resolved("", ChatTopicArn=CHAT_TOPIC)
    body = json.loads(resources["DeploymentsDashboard"]["Properties"]["DashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles[:4] == ["Deployments by outcome", "Rollbacks per cluster", "Push to healthy (seconds)",
                          "Time to detect a failure (seconds)"]
    text = json.dumps(body)
    for metric in ("Deployments", "Rollbacks", "PushToHealthy", "TimeToDetectFailure"):
        assert metric in text, metric
    alarm = resources["RollbackFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        "Deckhand", "Deployments", [{"Name": "Outcome", "Value": "ROLLBACK_FAILED"}])
    assert alarm["AlarmActions"] == [CHAT_TOPIC]
    signal = resources["SignalDeliveryFailedAlarm"]["Properties"]
    assert (signal["Namespace"], signal["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")


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
            kind = "service-deployment" if "ecs:StopServiceDeployment" in as_list(statement["Action"]) else "service"
            assert statement["Resource"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:{kind}/*", statement
            if watched:
                assert statement["Condition"] == {"StringLike": {"ecs:cluster": ["*:cluster/prod", "*:cluster/staging"]}}, statement
            else:
                assert "Condition" not in statement
    assert checked == 3, "UpdateService in the deploy and rollback roles, StopServiceDeployment in the rollback role"


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


def test_the_state_machines_may_only_invoke_the_deckhand_functions_they_call() -> None:
    resources = resolved("")
    invoked = {"DeployStateMachine": {"PlanFunction", "RollbackFunction", "NotifyFunction"},
               "ServiceStateMachine": set(EXPECTED_ACTIONS) - {"SignalFunction", "HookFunction", "AnnounceFunction"}}
    for machine, functions_called in invoked.items():
        statements = role_statements(resources, resources[machine]["Properties"]["RoleArn"])
        invoke = [s for s in statements if "lambda:InvokeFunction" in as_list(s["Action"])]
        assert len(invoke) == 1, machine
        assert sorted(invoke[0]["Resource"]) == sorted(f"arn:aws:lambda:{REGION}:{ACCOUNT}:{f}" for f in functions_called), machine


def test_ecs_may_invoke_only_deckhands_hook_and_the_plan_knows_it() -> None:
    resources = resolved("")
    role = resources["HookInvokeRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT, "no confused deputy from another account"
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [as_list(s["Action"]) for s in statements] == [["lambda:InvokeFunction"]]
    hook = f"arn:aws:lambda:{REGION}:{ACCOUNT}:HookFunction"
    assert sorted(statements[0]["Resource"]) == [hook, f"{hook}:*"]
    plan = resources["PlanFunction"]["Properties"]["Environment"]["Variables"]
    assert plan["DECKHAND_HOOK_FUNCTION_ARN"] == hook
    assert {"HookFunctionArn", "HookRoleArn"} <= set(TEMPLATE["Outputs"])


# ------------------------------------------------------------------------------------------
# Partitions (aws, aws-cn, aws-us-gov) and what the logs may hold (issue 20)
# ------------------------------------------------------------------------------------------

STATEMACHINE = ROOT / "statemachine"


def without_yaml_comments(text: str) -> str:
    return "\n".join(line.split(" #", 1)[0] if not line.lstrip().startswith("#") else "" for line in text.splitlines())


def test_no_arn_names_the_aws_partition_literally() -> None:
    """In China and GovCloud ARNs start arn:aws-cn: / arn:aws-us-gov:; the partition comes from
    the template (AWS::Partition), in IAM and in the state machines' integration ARNs alike."""
    for path in [*STATEMACHINE.glob("*.src.json"), *STATEMACHINE.glob("*.asl.json"), STATEMACHINE / "policies.json"]:
        assert "arn:aws:" not in path.read_text(), path.name
    assert "arn:aws:" not in without_yaml_comments((ROOT / "template.yaml").read_text())
    for machine in MACHINES:
        substitutions = TEMPLATE["Resources"][machine]["Properties"]["DefinitionSubstitutions"]
        assert substitutions["Partition"] == {"Ref": "AWS::Partition"}, machine
    integrations = [s["Resource"] for d in DEFINITIONS.values() for _, s in states(d)
                    if s["Type"] == "Task" and s["Resource"].startswith("arn:")]
    assert integrations and all(r.startswith(INTEGRATION_PREFIX) for r in integrations), integrations


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_the_definitions_rendered_for_a_partition_name_its_integrations_there(partition: str) -> None:
    from localcloud.asl_validation import validate_definition
    from localcloud.stack import apply_definition_substitutions

    for machine, path in DEFINITION_PATHS.items():
        keys = TEMPLATE["Resources"][machine]["Properties"]["DefinitionSubstitutions"]
        values = {key: f"arn:{partition}:lambda:cn-north-1:{ACCOUNT}:function:{key}" for key in keys}
        values["ServiceStateMachineArn"] = f"arn:{partition}:states:cn-north-1:{ACCOUNT}:stateMachine:deckhand-service"
        values["Partition"] = partition
        text = apply_definition_substitutions(path.read_text(), values)
        assert "${" not in text, machine
        definition = json.loads(text)
        integrations = [s["Resource"] for _, s in states(definition) if ":states:::" in s.get("Resource", "")]
        assert integrations and all(r.startswith(f"arn:{partition}:states:::") for r in integrations), integrations
        assert validate_definition(text) == [], machine


def test_the_state_machine_logs_hold_no_execution_data() -> None:
    """A task token (the approval wait's $$.Task.Token) approves a deploy: execution data in the
    logs would hand it to whoever can read them."""
    for machine in MACHINES:
        logging = TEMPLATE["Resources"][machine]["Properties"]["Logging"]
        assert logging["IncludeExecutionData"] is False, machine
        assert logging["Level"] in ("ALL", "ERROR", "FATAL", "OFF"), machine
    approval = SERVICE_DEFINITION["States"]["Wait for approval"]
    assert approval["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"


def test_no_function_logs_a_task_token() -> None:
    """Every tracing macro call in the functions, read whole: none mentions a token."""
    calls = 0
    for path in (ROOT / "functions").rglob("*.rs"):
        text = path.read_text()
        for match in re.finditer(r"\b(?:tracing::)?(?:trace|debug|info|warn|error|event)!\s*\(", text):
            depth, end = 0, match.end() - 1
            for end in range(match.end() - 1, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            call = text[match.start():end + 1]
            calls += 1
            assert "token" not in call.lower(), f"{path.relative_to(ROOT)}: {call}"
    assert calls >= 5, "the functions log something"


def test_an_ecs_event_the_signal_function_fails_on_lands_in_a_queue() -> None:
    # Asynchronous invocation: without an on-failure destination Lambda drops the event after
    # its retries, and nobody learns why a rollout was judged only at its recheck.
    config = TEMPLATE["Resources"]["SignalFunction"]["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 2
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": "SignalFailureQueue.Arn"}} or \
        on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["SignalFailureQueue", "Arn"]}}, on_failure
    assert TEMPLATE["Resources"]["SignalFailureQueue"]["Type"] == "AWS::SQS::Queue"


def test_the_signal_functions_concurrency_is_bounded_unless_the_account_is_too_small() -> None:
    # A burst of ECS events must not become a burst of ECS and ELB calls: reserved concurrency
    # bounds the invocations (Lambda queues and retries the throttled asynchronous events).
    parameter = TEMPLATE["Parameters"]["SignalConcurrency"]
    assert parameter["Default"] == 10 and parameter["MinValue"] == 0
    reserved = TEMPLATE["Resources"]["SignalFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["ReserveSignalConcurrency", {"Ref": "SignalConcurrency"}, {"Ref": "AWS::NoValue"}]}
    assert TEMPLATE["Conditions"]["ReserveSignalConcurrency"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SignalConcurrency"}, 0]}]}
