"""What AWS refuses and moto would accept: each test feeds the local cloud something
deliberately broken and sees it refused with AWS's error (tests/localcloud/ecs_rules.py,
tests/localcloud/sfn_rules.py; the list of what is and is not emulated is
tests/localcloud/README.md).

Run: .venv/bin/python -m pytest tests/emulator/test_refusals.py -q
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from polling import wait_until

from localcloud.sfn_rules import POLICY_FULL_MESSAGE, RESOURCE_POLICY_MAX_CHARACTERS
from localcloud.stack import load_template

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
PASS_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error.get("Message", "")


# ------------------------------------------------------------------------------------------
# ECS
# ------------------------------------------------------------------------------------------


@pytest.fixture
def ecs(localcloud_server: Any) -> Any:
    # botocore checks lengths itself; the Rust SDK does not: let the cloud see everything.
    return localcloud_server.client("ecs", config=Config(parameter_validation=False))


@pytest.fixture
def cluster(ecs: Any) -> str:
    return ecs.create_cluster(clusterName=unique("refusals"))["cluster"]["clusterName"]


def register(ecs: Any, family: str | None = None, **extra: Any) -> str:
    return ecs.register_task_definition(
        family=family or unique("app"),
        containerDefinitions=[{"name": "web", "image": "nginx:1.27", "memory": 128, "essential": True}],
        **extra,
    )["taskDefinition"]["taskDefinitionArn"]


def create_service(ecs: Any, cluster: str, task_definition: str, controller: str = "ECS", **extra: Any) -> dict:
    return ecs.create_service(
        cluster=cluster,
        serviceName=unique("svc"),
        taskDefinition=task_definition,
        desiredCount=0,
        deploymentController={"type": controller},
        **extra,
    )["service"]


def test_a_deleted_service_leaves_list_services_but_is_still_described(ecs, cluster):
    service = create_service(ecs, cluster, register(ecs))
    assert ecs.list_services(cluster=cluster)["serviceArns"] == [service["serviceArn"]]
    ecs.delete_service(cluster=cluster, service=service["serviceName"], force=True)
    assert ecs.list_services(cluster=cluster)["serviceArns"] == []
    # DescribeServices still finds it, once its (eventually consistent) read shows the delete.
    wait_until("the deleted service described as DRAINING or INACTIVE", lambda: ecs.describe_services(
        cluster=cluster, services=[service["serviceName"]])["services"][0]["status"] in ("DRAINING", "INACTIVE"), 30)


@pytest.mark.parametrize("controller", ["CODE_DEPLOY", "EXTERNAL"])
def test_update_service_with_a_task_definition_is_refused_outside_the_ecs_controller(ecs, cluster, controller):
    first = register(ecs)
    service = create_service(ecs, cluster, first, controller)
    described = ecs.describe_services(cluster=cluster, services=[service["serviceName"]])["services"][0]
    assert described["deploymentController"] == {"type": controller}  # kept from CreateService
    second = register(ecs, family=first.split("/")[-1].split(":")[0])

    with pytest.raises(ClientError) as refused:
        ecs.update_service(cluster=cluster, service=service["serviceName"], taskDefinition=second)
    code, message = error_of(refused)
    assert code == "InvalidParameterException"
    assert message.startswith(f"Unable to update task definition on services with a {controller} deployment controller.")
    if controller == "CODE_DEPLOY":  # ECS's own wording
        assert message == (
            "Unable to update task definition on services with a CODE_DEPLOY deployment controller. "
            "Use AWS CodeDeploy to trigger a new deployment."
        )
    with pytest.raises(ClientError) as forced:
        ecs.update_service(cluster=cluster, service=service["serviceName"], forceNewDeployment=True)
    assert error_of(forced)[0] == "InvalidParameterException"

    # What the API may still change, and nothing refused changed anything.
    updated = ecs.update_service(cluster=cluster, service=service["serviceName"], desiredCount=0)["service"]
    assert updated["taskDefinition"] == first


def test_update_service_with_a_task_definition_works_under_the_ecs_controller(ecs, cluster):
    first = register(ecs)
    service = create_service(ecs, cluster, first)
    second = register(ecs, family=first.split("/")[-1].split(":")[0])
    updated = ecs.update_service(cluster=cluster, service=service["serviceName"], taskDefinition=second)["service"]
    assert updated["taskDefinition"] == second


def test_an_inactive_task_definition_cannot_be_deployed_or_run(ecs, cluster):
    """A rollback to a revision someone deregistered fails on AWS; it must fail here too."""
    known_good = register(ecs)
    family = known_good.split("/")[-1].split(":")[0]
    service = create_service(ecs, cluster, known_good)
    current = register(ecs, family=family)
    ecs.update_service(cluster=cluster, service=service["serviceName"], taskDefinition=current)
    ecs.deregister_task_definition(taskDefinition=known_good)

    with pytest.raises(ClientError) as rollback:
        ecs.update_service(cluster=cluster, service=service["serviceName"], taskDefinition=known_good)
    assert error_of(rollback) == ("ClientException", "TaskDefinition is inactive")
    with pytest.raises(ClientError) as created:
        create_service(ecs, cluster, known_good)
    assert error_of(created) == ("ClientException", "TaskDefinition is inactive")
    with pytest.raises(ClientError) as run:
        ecs.run_task(cluster=cluster, taskDefinition=known_good)
    assert error_of(run) == ("InvalidParameterException", "TaskDefinition is inactive")
    # The service kept its revision, and an active one still deploys. UpdateService answers with
    # the service as it is now (a DescribeServices right after the writes would show it as of the
    # local cloud's ECS read lag ago): the deployment it replaces, right behind the new one, is
    # the one of `current`.
    newest = register(ecs, family=family)
    updated = ecs.update_service(cluster=cluster, service=service["serviceName"], taskDefinition=newest)["service"]
    assert [d["taskDefinition"] for d in updated["deployments"][:2]] == [newest, current]


def test_a_deleted_service_cannot_be_updated(ecs, cluster):
    task_definition = register(ecs)
    service = create_service(ecs, cluster, task_definition)
    ecs.delete_service(cluster=cluster, service=service["serviceName"])
    with pytest.raises(ClientError) as refused:
        ecs.update_service(cluster=cluster, service=service["serviceName"], taskDefinition=task_definition)
    assert error_of(refused) == ("ServiceNotActiveException", "Service was not ACTIVE.")


def test_a_service_with_a_short_arn_cannot_be_tagged(ecs, cluster):
    task_definition = register(ecs)
    tag = [{"key": "owner", "value": "ops"}]
    ecs.put_account_setting(name="serviceLongArnFormat", value="disabled")
    try:
        with pytest.raises(ClientError) as at_creation:
            create_service(ecs, cluster, task_definition, tags=tag)
        legacy = create_service(ecs, cluster, task_definition)
    finally:
        ecs.delete_account_setting(name="serviceLongArnFormat")
    assert error_of(at_creation)[0] == "InvalidParameterException"
    assert legacy["serviceArn"].endswith(f":service/{legacy['serviceName']}"), legacy["serviceArn"]
    again = ecs.describe_services(cluster=cluster, services=[legacy["serviceName"]])["services"][0]
    assert again["serviceArn"] == legacy["serviceArn"], "a service keeps the ARN format it was created with"
    with pytest.raises(ClientError) as tagging:
        ecs.tag_resource(resourceArn=legacy["serviceArn"], tags=tag)
    assert error_of(tagging)[0] == "InvalidParameterException"
    modern = create_service(ecs, cluster, task_definition, tags=tag)
    assert modern["serviceArn"].endswith(f":service/{cluster}/{modern['serviceName']}")


BAD_TAGS = {
    "asterisk in a value (a glob in deckhand:track)": {"key": "deckhand:track", "value": "web=app:v*"},
    "caret in a value (a semver range)": {"key": "deckhand:track", "value": "web=app:semver:^1.2"},
    "tilde in a value": {"key": "deckhand:track", "value": "web=app:semver:~1.2"},
    "angle brackets in a value": {"key": "deckhand:track", "value": "web=app:semver:>=1 <2"},
    "comma in a value": {"key": "deckhand:track", "value": "web=app:main,files=files:main"},
    "semicolon in a key": {"key": "deckhand;track", "value": "x"},
    "reserved aws: prefix": {"key": "AWS:owner", "value": "x"},
    "empty key": {"key": "", "value": "x"},
    "key of 129 characters": {"key": "k" * 129, "value": "x"},
    "value of 257 characters": {"key": "k", "value": "v" * 257},
}
GOOD_TAGS = [
    # Repositories nothing else uses: the shared cloud must not gain a service tracking a sample's push.
    {"key": "deckhand:track", "value": "web=tagcheck/web:main app=tagcheck/app:prod files=tagcheck/files:prod"},
    {"key": "deckhand:timeout", "value": "600"},
    {"key": "owner", "value": "équipe@example.com +ops_1.2"},
    {"key": "k" * 128, "value": "v" * 256},
    {"key": "empty", "value": ""},
]


@pytest.mark.parametrize("tag", list(BAD_TAGS.values()), ids=list(BAD_TAGS))
def test_tag_resource_refuses_tags_ecs_refuses(ecs, cluster, tag):
    service = create_service(ecs, cluster, register(ecs))
    with pytest.raises(ClientError) as refused:
        ecs.tag_resource(resourceArn=service["serviceArn"], tags=[tag])
    assert error_of(refused)[0] == "InvalidParameterException"
    assert ecs.list_tags_for_resource(resourceArn=service["serviceArn"])["tags"] == []


def test_every_tagging_action_refuses_a_bad_tag(ecs, cluster):
    bad = [BAD_TAGS["asterisk in a value (a glob in deckhand:track)"]]
    task_definition = register(ecs)
    calls = {
        "CreateCluster": lambda: ecs.create_cluster(clusterName=unique("c"), tags=bad),
        "RegisterTaskDefinition": lambda: register(ecs, tags=bad),
        "CreateService": lambda: create_service(ecs, cluster, task_definition, tags=bad),
        "RunTask": lambda: ecs.run_task(cluster=cluster, taskDefinition=task_definition, tags=bad),
    }
    for action, call in calls.items():
        with pytest.raises(ClientError) as refused:
            call()
        assert error_of(refused)[0] == "InvalidParameterException", action


def test_tags_ecs_accepts_are_kept(ecs, cluster):
    service = create_service(ecs, cluster, register(ecs, tags=GOOD_TAGS), tags=GOOD_TAGS)
    ecs.tag_resource(resourceArn=service["serviceArn"], tags=[{"key": "deckhand:bake", "value": "30"}])
    kept = ecs.list_tags_for_resource(resourceArn=service["serviceArn"])["tags"]
    assert {t["key"]: t["value"] for t in kept} == {
        **{t["key"]: t["value"] for t in GOOD_TAGS},
        "deckhand:bake": "30",
    }


def test_at_most_fifty_tags_per_resource(ecs, cluster):
    fifty = [{"key": f"k{i}", "value": "v"} for i in range(50)]
    service = create_service(ecs, cluster, register(ecs), tags=fifty)
    with pytest.raises(ClientError) as refused:
        create_service(ecs, cluster, register(ecs), tags=fifty + [{"key": "k50", "value": "v"}])
    assert error_of(refused)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as merged:
        ecs.tag_resource(resourceArn=service["serviceArn"], tags=[{"key": "one-more", "value": "v"}])
    assert error_of(merged)[0] == "InvalidParameterException"
    # Re-tagging an existing key replaces it: still fifty.
    ecs.tag_resource(resourceArn=service["serviceArn"], tags=[{"key": "k0", "value": "changed"}])


# ------------------------------------------------------------------------------------------
# Step Functions
# ------------------------------------------------------------------------------------------


@pytest.fixture
def role_arn(localcloud_server: Any) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam = localcloud_server.client("iam")
    return iam.create_role(RoleName=unique("sfn"), AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def logging_to(account: str, region: str, group: str) -> dict[str, Any]:
    return {
        "level": "ALL",
        "includeExecutionData": True,
        "destinations": [
            {"cloudWatchLogsLogGroup": {"logGroupArn": f"arn:aws:logs:{region}:{account}:log-group:{group}:*"}}
        ],
    }


def test_log_groups_outside_vendedlogs_fill_the_account_log_policy(localcloud_server, role_arn):
    # Its own region: the policy is per account and region, and this test fills it.
    region = "eu-west-3"
    sfn = localcloud_server.client("stepfunctions", region_name=region)
    logs = localcloud_server.client("logs", region_name=region)
    account = localcloud_server.account_id
    created: list[str] = []

    def create(group: str) -> str:
        arn = sfn.create_state_machine(
            name=unique("logged"),
            definition=PASS_DEFINITION,
            roleArn=role_arn,
            loggingConfiguration=logging_to(account, region, group),
        )["stateMachineArn"]
        created.append(arn)
        return arn

    try:
        # Long names (log group names may have 512 characters) fill 5,120 characters quickly.
        groups = [f"/deckhand/{i:03d}/" + "x" * 300 for i in range(40)]
        refused = None
        for count, group in enumerate(groups):
            try:
                create(group)
            except ClientError as error:
                refused = (count, error)
                break
        assert refused is not None, "the policy never filled up"
        count, error = refused
        assert error.response["Error"]["Code"] == "InvalidLoggingConfiguration"
        assert error.response["Error"]["Message"] == POLICY_FULL_MESSAGE
        # ~350 characters per group: about fourteen fit, never all forty.
        assert 10 <= count <= 15

        policies = logs.describe_resource_policies()["resourcePolicies"]
        document = next(p["policyDocument"] for p in policies if p["policyName"] == "AWSLogDeliveryWrite20150319")
        assert len(document) <= RESOURCE_POLICY_MAX_CHARACTERS
        resources = json.loads(document)["Statement"][0]["Resource"]
        assert len(resources) == count and all(groups[i] in resources[i] for i in range(count))

        # A group already in the policy costs nothing; /aws/vendedlogs/ groups never do.
        create(groups[0])
        for i in range(20):
            create(f"/aws/vendedlogs/states/deckhand-{i:03d}-" + "x" * 300)
        # The refused machine was not created.
        names = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
        assert sorted(names) == sorted(set(created))
    finally:
        for arn in created:
            sfn.delete_state_machine(stateMachineArn=arn)
        logs.delete_resource_policy(policyName="AWSLogDeliveryWrite20150319")


def test_update_state_machine_logging_counts_too(localcloud_server, role_arn):
    region = "eu-north-1"
    sfn = localcloud_server.client("stepfunctions", region_name=region)
    logs = localcloud_server.client("logs", region_name=region)
    account = localcloud_server.account_id
    arn = sfn.create_state_machine(name=unique("m"), definition=PASS_DEFINITION, roleArn=role_arn)["stateMachineArn"]
    try:
        big = "/deckhand/" + "y" * 500
        with pytest.raises(ClientError) as refused:
            for i in range(20):
                sfn.update_state_machine(stateMachineArn=arn, loggingConfiguration=logging_to(account, region, f"{big}{i}"))
        assert error_of(refused) == ("InvalidLoggingConfiguration", POLICY_FULL_MESSAGE)
    finally:
        sfn.delete_state_machine(stateMachineArn=arn)
        logs.delete_resource_policy(policyName="AWSLogDeliveryWrite20150319")


def state_machine_log_groups(template: dict[str, Any]) -> list[str]:
    """The LogGroupName of every log group a state machine of the template logs to."""
    resources = template["Resources"]
    names = []
    for resource in resources.values():
        if resource.get("Type") not in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            continue
        logging = resource["Properties"].get("Logging") or resource["Properties"].get("LoggingConfiguration") or {}
        for destination in logging.get("Destinations", []):
            arn = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]
            logical_id = arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else None
            if logical_id is None:
                names.append(str(arn))
                continue
            name = resources[logical_id]["Properties"].get("LogGroupName", "")
            names.append(name["Fn::Sub"] if isinstance(name, dict) else str(name))
    return names


def test_the_state_machine_logs_to_a_vendedlogs_group():
    template = load_template(ROOT / "template.yaml")
    groups = state_machine_log_groups(template)
    assert groups and all(group.startswith("/aws/vendedlogs/states/") for group in groups), groups

    broken = json.loads(json.dumps(template))
    broken["Resources"]["StateMachineLogGroup"]["Properties"]["LogGroupName"] = {
        "Fn::Sub": "/deckhand/${AWS::StackName}/statemachine"
    }
    assert not all(group.startswith("/aws/vendedlogs/") for group in state_machine_log_groups(broken))


@pytest.fixture
def pass_machine(localcloud_server: Any, role_arn: str) -> str:
    sfn = localcloud_server.client("stepfunctions")
    return sfn.create_state_machine(name=unique("names"), definition=PASS_DEFINITION, roleArn=role_arn)["stateMachineArn"]


@pytest.mark.parametrize(
    "name",
    ["with space", "colon:name", "slash/name", "star*", "brace{", "hash#", "tab\tname", "ctrl\u0085"],
)
def test_execution_names_with_forbidden_characters_are_refused(localcloud_server, pass_machine, name):
    sfn = localcloud_server.client("stepfunctions")
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=pass_machine, name=name, input="{}")
    assert error_of(refused)[0] == "InvalidName"


def test_execution_names_longer_than_80_characters_are_refused(localcloud_server, pass_machine):
    sfn = localcloud_server.client("stepfunctions")
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=pass_machine, name="n" * 81, input="{}")
    assert error_of(refused)[0] == "ValidationException"
    started = sfn.start_execution(stateMachineArn=pass_machine, name="n" * 80, input="{}")
    assert started["executionArn"].endswith(":" + "n" * 80)
    # Unique per state machine: the same name with another input is refused.
    with pytest.raises(ClientError) as again:
        sfn.start_execution(stateMachineArn=pass_machine, name="n" * 80, input='{"other": 1}')
    assert error_of(again)[0] == "ExecutionAlreadyExists"


def test_execution_history_pages_as_aws_does(localcloud_server, role_arn):
    """GetExecutionHistory: 100 events per page by default, at most 1000, nextToken to go on,
    reverseOrder newest first, and a token of another listing refused (sfn_rules.py)."""
    sfn = localcloud_server.client("stepfunctions")
    steps = {f"Step{i}": {"Type": "Pass", "Next": f"Step{i + 1}"} for i in range(60)}
    steps["Step60"] = {"Type": "Succeed"}
    machine = sfn.create_state_machine(name=unique("history"), roleArn=role_arn,
                                       definition=json.dumps({"StartAt": "Step0", "States": steps}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    wait_until_done(sfn, execution)
    first = sfn.get_execution_history(executionArn=execution)
    assert len(first["events"]) == 100 and "nextToken" in first, "not the whole history in one answer"
    everything, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=execution, maxResults=50, **({"nextToken": token} if token else {}))
        everything += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    ids = [event["id"] for event in everything]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) > 120
    newest = sfn.get_execution_history(executionArn=execution, reverseOrder=True, maxResults=3)["events"]
    assert [event["id"] for event in newest] == ids[-1:-4:-1]
    with pytest.raises(ClientError) as refused:
        sfn.get_execution_history(executionArn=execution, reverseOrder=True, nextToken=first["nextToken"])
    assert error_of(refused)[0] == "InvalidToken"
    with pytest.raises(ClientError) as too_many:
        sfn.get_execution_history(executionArn=execution, maxResults=1001)
    assert error_of(too_many)[0] == "ValidationException"


def wait_until_done(sfn: Any, execution: str) -> None:
    import time

    for _ in range(200):
        if sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
            return
        time.sleep(0.05)
    raise AssertionError(f"{execution} did not end")


# ------------------------------------------------------------------------------------------
# CloudWatch (cloudwatch_rules.py)
# ------------------------------------------------------------------------------------------


def _metric_alarm(cloudwatch: Any, name: str) -> None:
    cloudwatch.put_metric_alarm(AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5,
                                ComparisonOperator="GreaterThanThreshold")


def test_describe_alarms_refuses_more_than_100_names(localcloud_server):
    cloudwatch = localcloud_server.client("cloudwatch")
    with pytest.raises(ClientError) as refused:
        cloudwatch.describe_alarms(AlarmNames=[unique("alarm") for _ in range(101)])
    code, message = error_of(refused)
    assert code == "ValidationError" and "100" in message, message
    assert cloudwatch.describe_alarms(AlarmNames=[unique("alarm") for _ in range(100)])["MetricAlarms"] == []


def test_an_alarm_transitions_only_when_its_state_changes(localcloud_server):
    cloudwatch = localcloud_server.client("cloudwatch")
    name = unique("alarm")
    _metric_alarm(cloudwatch, name)
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="fired")
    (fired,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="still firing, new datapoints")
    (still,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert still["StateReason"] == "still firing, new datapoints"
    assert still["StateTransitionedTimestamp"] == fired["StateTransitionedTimestamp"], "same state: no transition"
    assert still["StateUpdatedTimestamp"] >= fired["StateUpdatedTimestamp"]
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="recovered")
    (ok,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert ok["StateTransitionedTimestamp"] > fired["StateTransitionedTimestamp"]



def test_describe_alarms_returns_only_the_alarm_types_asked_for(localcloud_server):
    """Without AlarmTypes only metric alarms come back (composites cannot be created here: moto
    has no PutCompositeAlarm); asking for composites only leaves the metric alarms out."""
    cloudwatch = localcloud_server.client("cloudwatch")
    name = unique("alarm")
    _metric_alarm(cloudwatch, name)
    assert [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]] == [name]
    composites_only = cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["CompositeAlarm"])
    assert composites_only["MetricAlarms"] == [] and composites_only["CompositeAlarms"] == []
