"""IAM enforcement in the local cloud (tests/localcloud/iam.py, issue 9 item 3).

A function's requests carry credentials of its own role and are evaluated against that
role's policies as IAM does. Here the role credentials are minted directly
(``mint_role_credentials``, what the Lambda runtime does for every sandbox) and used from
boto3, so every check is fed a request it must refuse as well as one it must allow.

Run: .venv/bin/python -m pytest tests/emulator/test_iam.py -q
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fake_lambda import fake_package
from localcloud.iam import (
    Authorization,
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    evaluate,
    mint_role_credentials,
    session_for,
)

pytestmark = pytest.mark.timeout(120)

# Fixture cloud: conftest.py in this directory.

REGION = "us-east-1"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Role:
    """A role with one inline policy, and clients signed with credentials of a session of it."""

    def __init__(self, cloud: Any, statements: list[dict[str, Any]], session: str = "fn-under-test"):
        self.cloud = cloud
        self.name = unique("iam-test")
        self.arn = cloud.client("iam").create_role(RoleName=self.name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        if statements:  # IAM rejects a policy without statements
            self.allow(statements)
        self.session = session
        self.credentials = mint_role_credentials(self.arn, session, REGION)

    def allow(self, statements: list[dict[str, Any]]) -> None:
        self.cloud.client("iam").put_role_policy(
            RoleName=self.name, PolicyName="inline",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(
            service, region_name=REGION, endpoint_url=self.cloud.endpoint,
            aws_access_key_id=self.credentials["AccessKeyId"],
            aws_secret_access_key=self.credentials["SecretAccessKey"],
            aws_session_token=self.credentials["SessionToken"],
            # The account is shared and throttled (throttling.py): retry throttles as any caller
            # would; a denial is never retried.
            config=Config(retries={"mode": "standard", "max_attempts": 10}),
        )

    def denied_message(self, action: str, resource: str | None) -> str:
        on = f" on resource: {resource}" if resource else ""
        return (f"User: arn:aws:sts::{self.cloud.account_id}:assumed-role/{self.name}/{self.session} is not authorized "
                f"to perform: {action}{on} because no identity-based policy allows the {action} action")


def denied(call: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value


@pytest.fixture(scope="module")
def clusters(cloud: Any) -> dict[str, str]:
    """Two clusters with one service each; task definition "plain" without roles."""
    ecs = cloud.client("ecs")
    names = {"watched": unique("prod"), "other": unique("other")}
    ecs.register_task_definition(family="plain", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    for name in names.values():
        ecs.create_cluster(clusterName=name)
        ecs.create_service(cluster=name, serviceName="web", taskDefinition="plain", desiredCount=0)
    return names


def service_arn(cloud: Any, cluster: str, service: str = "web") -> str:
    return f"arn:aws:ecs:{REGION}:{cloud.account_id}:service/{cluster}/{service}"


def cluster_condition(cluster: str) -> dict[str, Any]:
    return {"StringLike": {"ecs:cluster": f"*:cluster/{cluster}"}}


# ------------------------------------------------------------------------------------------
# credentials


def test_a_function_runs_with_credentials_of_its_own_role(cloud: Any, tmp_path: Any) -> None:
    role = Role(cloud, [])
    name = unique("iam-fn")
    cloud.client("lambda").create_function(
        FunctionName=name, Runtime="provided.al2023", Handler="bootstrap", Role=role.arn,
        Code={"ZipFile": fake_package()}, Timeout=10)
    response = cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps({"fake": {"describe": True}}).encode())
    env = json.loads(response["Payload"].read())["env"]

    assert env["AWS_ACCESS_KEY_ID"] != "localcloud" and env["AWS_SESSION_TOKEN"]
    session = session_for(env["AWS_ACCESS_KEY_ID"])
    assert session is not None and session.role_arn == role.arn and session.session_name == name
    sts = boto3.session.Session().client(
        "sts", region_name=REGION, endpoint_url=cloud.endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], aws_session_token=env["AWS_SESSION_TOKEN"])
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{cloud.account_id}:assumed-role/{role.name}/{name}"


# ------------------------------------------------------------------------------------------
# enforcement over HTTP


def test_allowed_call_passes_and_another_action_is_denied_as_aws_does(cloud: Any, clusters: dict[str, str]) -> None:
    role = Role(cloud, [{"Effect": "Allow", "Action": ["ecs:DescribeServices"],
                         "Resource": f"arn:aws:ecs:{REGION}:{cloud.account_id}:service/*"}])
    ecs = role.client("ecs")
    described = ecs.describe_services(cluster=clusters["watched"], services=["web"])
    assert [s["serviceName"] for s in described["services"]] == ["web"]

    error = denied(ecs.list_clusters)
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # ListClusters has no resource type: the message names no resource.
    assert error.response["Error"]["Message"] == role.denied_message("ecs:ListClusters", None)


def test_the_ecs_cluster_condition_denies_other_clusters(cloud: Any, clusters: dict[str, str]) -> None:
    role = Role(cloud, [{"Effect": "Allow", "Action": ["ecs:DescribeServices", "ecs:ListTasks"],
                         "Resource": [f"arn:aws:ecs:{REGION}:{cloud.account_id}:service/*",
                                      f"arn:aws:ecs:{REGION}:{cloud.account_id}:container-instance/*"],
                         "Condition": cluster_condition(clusters["watched"])}])
    ecs = role.client("ecs")
    ecs.describe_services(cluster=clusters["watched"], services=["web"])
    ecs.list_tasks(cluster=clusters["watched"], serviceName="web")

    other = clusters["other"]
    error = denied(ecs.describe_services, cluster=other, services=["web"])
    assert error.response["Error"]["Message"] == role.denied_message("ecs:DescribeServices", service_arn(cloud, other))
    # By ARN too, and for ListTasks.
    denied(ecs.describe_services, cluster=f"arn:aws:ecs:{REGION}:{cloud.account_id}:cluster/{other}",
           services=[service_arn(cloud, other)])
    assert denied(ecs.list_tasks, cluster=other, serviceName="web").response["Error"]["Code"] == "AccessDeniedException"


def test_update_service_to_a_definition_with_roles_needs_pass_role(cloud: Any, clusters: dict[str, str]) -> None:
    iam = cloud.client("iam")
    task_role = iam.create_role(RoleName=unique("task"), AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    execution_role = iam.create_role(RoleName=unique("exec"), AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    family = unique("with-roles")
    cloud.client("ecs").register_task_definition(
        family=family, taskRoleArn=task_role, executionRoleArn=execution_role,
        containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    update = {"Effect": "Allow", "Action": ["ecs:UpdateService"],
              "Resource": f"arn:aws:ecs:{REGION}:{cloud.account_id}:service/*"}
    role = Role(cloud, [update])
    ecs = role.client("ecs")
    cluster = clusters["watched"]

    error = denied(ecs.update_service, cluster=cluster, service="web", taskDefinition=family)
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.response["Error"]["Message"] == role.denied_message("iam:PassRole", task_role)

    # PassRole to another service does not count (iam:PassedToService).
    role.allow([update, {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{cloud.account_id}:role/*",
                         "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}])
    denied(ecs.update_service, cluster=cluster, service="web", taskDefinition=family)

    role.allow([update, {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{cloud.account_id}:role/*",
                         "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}])
    ecs.update_service(cluster=cluster, service="web", taskDefinition=family)
    # A definition without roles never needed it.
    Role(cloud, [update]).client("ecs").update_service(cluster=cluster, service="web", taskDefinition="plain")


def test_register_task_definition_with_tags_needs_tag_resource(cloud: Any) -> None:
    family = unique("tagged")
    register = {"Effect": "Allow", "Action": "ecs:RegisterTaskDefinition",
                "Resource": f"arn:aws:ecs:{REGION}:{cloud.account_id}:task-definition/*"}
    role = Role(cloud, [register])
    ecs = role.client("ecs")
    containers = [{"name": "web", "image": "nginx", "memory": 128}]
    ecs.register_task_definition(family=family, containerDefinitions=containers)  # no tags: fine

    error = denied(ecs.register_task_definition, family=family, containerDefinitions=containers,
                   tags=[{"key": "team", "value": "web"}])
    revision = f"arn:aws:ecs:{REGION}:{cloud.account_id}:task-definition/{family}:2"
    assert error.response["Error"]["Message"] == role.denied_message("ecs:TagResource", revision)

    role.allow([register, {"Effect": "Allow", "Action": "ecs:TagResource",
                           "Resource": f"arn:aws:ecs:{REGION}:{cloud.account_id}:task-definition/*",
                           "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}}])
    registered = ecs.register_task_definition(family=family, containerDefinitions=containers,
                                              tags=[{"key": "team", "value": "web"}])
    assert registered["taskDefinition"]["taskDefinitionArn"] == revision


def test_register_task_definition_is_scoped_to_task_definitions(cloud: Any) -> None:
    role = Role(cloud, [{"Effect": "Allow", "Action": "ecs:RegisterTaskDefinition",
                         "Resource": f"arn:aws:ecs:{REGION}:{cloud.account_id}:task-definition/allowed-*"}])
    ecs = role.client("ecs")
    containers = [{"name": "web", "image": "nginx", "memory": 128}]
    ecs.register_task_definition(family=unique("allowed"), containerDefinitions=containers)
    denied(ecs.register_task_definition, family=unique("forbidden"), containerDefinitions=containers)


def test_an_explicit_deny_wins(cloud: Any, clusters: dict[str, str]) -> None:
    role = Role(cloud, [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
                        {"Effect": "Deny", "Action": "ecs:DescribeServices", "Resource": "*"}])
    ecs = role.client("ecs")
    ecs.list_clusters()
    error = denied(ecs.describe_services, cluster=clusters["watched"], services=["web"])
    assert error.response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")


def test_other_services_are_evaluated_by_their_resource_arns(cloud: Any) -> None:
    table = unique("iam-table")
    cloud.client("dynamodb").create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    role = Role(cloud, [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": f"arn:aws:dynamodb:{REGION}:{cloud.account_id}:table/{table}"},
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": f"arn:aws:events:{REGION}:{cloud.account_id}:event-bus/default"},
    ])
    ddb = role.client("dynamodb")
    ddb.get_item(TableName=table, Key={"pk": {"S": "x"}})
    error = denied(ddb.put_item, TableName=table, Item={"pk": {"S": "x"}})
    assert error.response["Error"]["Code"] == "AccessDeniedException"

    events = role.client("events")
    events.put_events(Entries=[{"Source": "deckhand", "DetailType": "t", "Detail": "{}"}])
    cloud.client("events").create_event_bus(Name="iam-other-bus")
    denied(events.put_events, Entries=[{"Source": "deckhand", "DetailType": "t", "Detail": "{}", "EventBusName": "iam-other-bus"}])


def test_query_protocol_denial_is_an_access_denied_error_response(cloud: Any) -> None:
    role = Role(cloud, [])
    error = denied(role.client("elbv2").describe_target_health,
                   TargetGroupArn=f"arn:aws:elasticloadbalancing:{REGION}:{cloud.account_id}:targetgroup/x/0123456789abcdef")
    assert error.response["Error"]["Code"] == "AccessDenied"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error.response["Error"]["Message"] == role.denied_message("elasticloadbalancing:DescribeTargetHealth", None)


def test_cloudwatch_rpc_v2_cbor_requests_are_evaluated_by_alarm_arn(cloud: Any) -> None:
    """CloudWatch's SDKs (boto3 and the Rust SDK alike) speak Smithy RPC v2 CBOR: its calls are
    evaluated on the named alarms' ARNs, and a denial is a CBOR error the SDK can read."""
    cloudwatch = cloud.client("cloudwatch")
    assert cloudwatch.meta.service_model.protocol == "smithy-rpc-v2-cbor"
    allowed, other = unique("alarm"), unique("alarm")
    role = Role(cloud, [{"Effect": "Allow", "Action": "cloudwatch:DescribeAlarms",
                         "Resource": f"arn:aws:cloudwatch:{REGION}:{cloud.account_id}:alarm:{allowed}"}])
    client = role.client("cloudwatch")
    client.describe_alarms(AlarmNames=[allowed])
    error = denied(client.describe_alarms, AlarmNames=[allowed, other])
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    resource = f"arn:aws:cloudwatch:{REGION}:{cloud.account_id}:alarm:{other}"
    assert error.response["Error"]["Message"] == role.denied_message("cloudwatch:DescribeAlarms", resource)
    denied(client.describe_alarms)  # no names: every alarm, which the role may not list


def test_sns_publish_is_evaluated_on_the_topic(cloud: Any) -> None:
    """Found by deckhand's chat messages: a Publish allowed on its topic only was evaluated on
    resource "*" and denied."""
    sns = cloud.client("sns")
    allowed = sns.create_topic(Name=unique("chat"))["TopicArn"]
    other = sns.create_topic(Name=unique("other"))["TopicArn"]
    role = Role(cloud, [{"Effect": "Allow", "Action": "sns:Publish", "Resource": allowed}])
    client = role.client("sns")
    client.publish(TopicArn=allowed, Message="{}")
    error = denied(client.publish, TopicArn=other, Message="{}")
    assert error.response["Error"]["Message"] == role.denied_message("sns:Publish", other)


def test_requests_of_other_credentials_are_not_evaluated(cloud: Any) -> None:
    # The tests' own clients (and moto's internal calls) sign with keys no function holds.
    cloud.client("ecs").list_clusters()


# ------------------------------------------------------------------------------------------
# deckhand's own roles


def _stack_role(cloud: Any, logical_id: str) -> tuple[str, dict[str, Any]]:
    name = cloud.stack.resources[f"{logical_id}Role"].ref
    iam = cloud.client("iam")
    role_arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    policy_name = iam.list_role_policies(RoleName=name)["PolicyNames"][0]
    return role_arn, iam.get_role_policy(RoleName=name, PolicyName=policy_name)


def test_the_rollback_function_may_update_a_service_to_a_revision_with_roles(localcloud: Any, clusters: dict[str, str]) -> None:
    """The defect of issue 9: RollbackFunction's UpdateService to a Fargate-style revision
    (task and execution roles) is denied without iam:PassRole."""
    cloud = localcloud
    role_arn, policy = _stack_role(cloud, "RollbackFunction")
    iam = cloud.client("iam")
    task_role = iam.create_role(RoleName=unique("task"), AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    family = unique("rollback-target")
    cloud.client("ecs").register_task_definition(
        family=family, taskRoleArn=task_role, executionRoleArn=task_role,
        containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    credentials = mint_role_credentials(role_arn, "RollbackFunction", REGION)
    ecs = boto3.session.Session().client(
        "ecs", region_name=REGION, endpoint_url=cloud.endpoint, aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"], aws_session_token=credentials["SessionToken"])
    ecs.update_service(cluster=clusters["watched"], service="web", taskDefinition=family)

    # The template as it was (no PassRole statement) is refused.
    document = policy["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    without = [s for s in document["Statement"] if "iam:PassRole" not in json.dumps(s.get("Action"))]
    iam.put_role_policy(RoleName=policy["RoleName"], PolicyName=policy["PolicyName"],
                        PolicyDocument=json.dumps({**document, "Statement": without}))
    try:
        error = denied(ecs.update_service, cluster=clusters["watched"], service="web", taskDefinition=family)
        assert "iam:PassRole" in error.response["Error"]["Message"]
    finally:
        iam.put_role_policy(RoleName=policy["RoleName"], PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))


# ------------------------------------------------------------------------------------------
# evaluation logic


def _statement(**fields: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **fields}]}


SERVICE = "arn:aws:ecs:us-east-1:123456789012:service/prod/web"
PROD = {"ecs:cluster": ["arn:aws:ecs:us-east-1:123456789012:cluster/prod"]}


@pytest.mark.parametrize("statement, context, expected", [
    (dict(Action="ecs:Describe*", Resource="arn:aws:ecs:*:*:service/prod/*"), {}, ALLOW),
    (dict(Action="ECS:describeservices", Resource=SERVICE), {}, ALLOW),  # actions are case-insensitive
    (dict(Action="ecs:DescribeServices", Resource="arn:aws:ecs:us-east-1:123456789012:service/PROD/*"), {}, IMPLICIT_DENY),
    (dict(NotAction="ecs:UpdateService", Resource="*"), {}, ALLOW),
    (dict(Action="ecs:*", NotResource=SERVICE), {}, IMPLICIT_DENY),
    # A condition key absent from the request context fails the condition...
    (dict(Action="*", Resource="*", Condition={"StringLike": {"ecs:cluster": "*"}}), {}, IMPLICIT_DENY),
    # ...unless IfExists, or the operator is negated.
    (dict(Action="*", Resource="*", Condition={"StringLikeIfExists": {"ecs:cluster": "*:cluster/x"}}), {}, ALLOW),
    (dict(Action="*", Resource="*", Condition={"StringNotEquals": {"ecs:cluster": "x"}}), {}, ALLOW),
    (dict(Action="*", Resource="*", Condition={"StringLikeIfExists": {"ecs:cluster": "*:cluster/x"}}), PROD, IMPLICIT_DENY),
    (dict(Action="*", Resource="*", Condition={"ArnLike": {"ecs:cluster": "arn:aws:ecs:*:*:cluster/prod"}}), PROD, ALLOW),
    (dict(Action="*", Resource="*", Condition={"ArnEquals": {"ecs:cluster": "arn:aws:ecs:*:*:cluster/dev"}}), PROD, IMPLICIT_DENY),
    (dict(Action="*", Resource="*", Condition={"StringLike": {"ecs:cluster": ["*/dev", "*/prod"]}}), PROD, ALLOW),
    (dict(Action="*", Resource="*", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}),
     {"aws:TagKeys": ["a", "c"]}, IMPLICIT_DENY),
    (dict(Action="*", Resource="*", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}),
     {"aws:TagKeys": ["a", "c"]}, ALLOW),
    (dict(Action="*", Resource="*", Condition={"Null": {"ecs:cluster": "true"}}), {}, ALLOW),
    (dict(Action="*", Resource="*", Condition={"Bool": {"aws:SecureTransport": True}}), {"aws:SecureTransport": ["true"]}, ALLOW),
    (dict(Action="*", Resource="*", Condition={"NumericLessThan": {"ecs:task-cpu": "512"}}), {"ecs:task-cpu": ["1024"]}, IMPLICIT_DENY),
])
def test_policy_evaluation(statement: dict[str, Any], context: dict[str, list[str]], expected: str) -> None:
    assert evaluate([_statement(**statement)], Authorization("ecs:DescribeServices", SERVICE, context)) == expected


def test_deny_beats_allow_in_another_policy() -> None:
    policies = [_statement(Action="*", Resource="*"),
                {"Statement": {"Effect": "Deny", "Action": "ecs:DescribeServices", "Resource": SERVICE}}]
    assert evaluate(policies, Authorization("ecs:DescribeServices", SERVICE)) == EXPLICIT_DENY


def _role_client(cloud: Any, logical_id: str, service: str) -> Any:
    role_arn, _ = _stack_role(cloud, logical_id)
    credentials = mint_role_credentials(role_arn, logical_id, REGION)
    return boto3.session.Session().client(
        service, region_name=REGION, endpoint_url=cloud.endpoint, aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"], aws_session_token=credentials["SessionToken"])


def _not_denied(call: Any, **kwargs: Any) -> None:
    """The call is authorized (it may still fail for another reason, e.g. a missing resource)."""
    try:
        call(**kwargs)
    except ClientError as error:
        assert error.response["Error"]["Code"] not in ("AccessDeniedException", "AccessDenied"), error


def test_deckhands_roles_allow_every_call_its_functions_make(localcloud: Any, clusters: dict[str, str]) -> None:
    """What the Rust adapters call (functions/core/src/aws), made with each function's role."""
    cloud, cluster = localcloud, clusters["watched"]
    account = cloud.account_id
    iam = cloud.client("iam")
    task_role = iam.create_role(RoleName=unique("task"), AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    containers = [{"name": "web", "image": "nginx", "memory": 128}]
    table = cloud.stack_outputs["StateTableName"]

    plan = lambda service: _role_client(cloud, "PlanFunction", service)  # noqa: E731
    _not_denied(plan("ecs").list_clusters)
    _not_denied(plan("ecs").list_services, cluster=cluster)
    _not_denied(plan("ecs").describe_services, cluster=cluster, services=["web"], include=["TAGS"])
    _not_denied(plan("ecs").describe_task_definition, taskDefinition="plain", include=["TAGS"])
    _not_denied(plan("ecr").describe_images, repositoryName="flask-backend", imageIds=[{"imageTag": "main"}])
    for function in ("PlanFunction", "CheckFunction", "SignalFunction"):
        _not_denied(_role_client(cloud, function, "cloudwatch").describe_alarms, AlarmNames=["api-5xx"],
                    AlarmTypes=["MetricAlarm", "CompositeAlarm"])

    deploy = _role_client(cloud, "DeployFunction", "ecs")
    family = unique("deployed")
    _not_denied(deploy.register_task_definition, family=family, containerDefinitions=containers,
                taskRoleArn=task_role, executionRoleArn=task_role, tags=[{"key": "team", "value": "web"}])
    _not_denied(deploy.update_service, cluster=cluster, service="web", taskDefinition=family)

    check = lambda service: _role_client(cloud, "CheckFunction", service)  # noqa: E731
    _not_denied(check("ecs").list_tasks, cluster=cluster, serviceName="web")
    _not_denied(check("ecs").describe_tasks, cluster=cluster, tasks=[f"arn:aws:ecs:{REGION}:{account}:task/{cluster}/0123"])
    _not_denied(check("elbv2").describe_target_health,
                TargetGroupArn=f"arn:aws:elasticloadbalancing:{REGION}:{account}:targetgroup/x/0123456789abcdef")

    lock = lambda service: _role_client(cloud, "LockFunction", service)  # noqa: E731
    _not_denied(lock("dynamodb").get_item, TableName=table, Key={"pk": {"S": "x"}})
    _not_denied(lock("dynamodb").put_item, TableName=table, Item={"pk": {"S": f"iam-test-{uuid.uuid4()}"}})
    _not_denied(lock("stepfunctions").describe_execution,
                executionArn=f"arn:aws:states:{REGION}:{account}:execution:deckhand-deploy:nope")
    _not_denied(lock("ecs").describe_task_definition, taskDefinition="plain")
    _not_denied(lock("events").put_events, Entries=[{"Source": "deckhand", "DetailType": "Deckhand Deployment State Change",
                                                      "Detail": "{}", "EventBusName": "default"}])

    _not_denied(_role_client(cloud, "RollbackFunction", "dynamodb").get_item, TableName=table, Key={"pk": {"S": "x"}})
    _not_denied(_role_client(cloud, "NotifyFunction", "events").put_events,
                Entries=[{"Source": "deckhand", "DetailType": "Deckhand Deployment State Change", "Detail": "{}",
                          "EventBusName": "default"}])

    # ...and nothing beyond: the notify role may not touch ECS, the plan role may not deploy.
    assert denied(_role_client(cloud, "NotifyFunction", "ecs").list_clusters).response["Error"]["Code"] == "AccessDeniedException"
    denied(plan("ecs").update_service, cluster=cluster, service="web", taskDefinition="plain")
