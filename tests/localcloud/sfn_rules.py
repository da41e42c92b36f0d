"""Step Functions refusals that moto does not make.

* Logging to CloudWatch Logs: Step Functions adds every log group outside
  ``/aws/vendedlogs/`` to the account's CloudWatch Logs resource policy, which
  holds 5,120 characters; once it is full, CreateStateMachine (and
  UpdateStateMachine) fail with InvalidLoggingConfiguration. moto neither keeps
  that policy nor fails. Here the policy is kept in moto's CloudWatch Logs
  backend (DescribeResourcePolicies shows it) and the refusal is made.
* Execution names: moto's Step Functions backend validates them, but the
  interpreter backend the local cloud runs (executions on) skips it.
* GetExecutionHistory pages: moto returns the whole history, oldest first, whatever
  ``maxResults``, ``nextToken`` and ``reverseOrder`` say; a client that forgets to page (or
  pages wrongly) would pass here and miss events on AWS.

``patches()`` gives ``(owner, attribute, replacement)`` triples for server.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from moto.core.exceptions import AWSError, JsonRESTError
from moto.logs.models import logs_backends
from moto.stepfunctions.exceptions import InvalidToken
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.core.responses import ActionResult

# Avoiding Amazon CloudWatch Logs resource policy size restrictions - AWS Step Functions:
# https://docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html
# "CloudWatch Logs resource policies are limited to 5120 characters. ... When you create a state
# machine with logging enabled, Step Functions must update your CloudWatch Logs resource policy
# with the log group you specify. To avoid reaching the CloudWatch Logs resource policy size
# limit, prefix your CloudWatch Logs log group names with /aws/vendedlogs/."
# (PutResourcePolicy's policyDocument: maximum 5120, AWS::Logs::ResourcePolicy in the
# CloudFormation reference.)
RESOURCE_POLICY_MAX_CHARACTERS = 5120
VENDED_LOGS_PREFIX = "/aws/vendedlogs/"
# The policy and statement AWS creates ("Logs sent to CloudWatch Logs", Amazon CloudWatch Logs
# User Guide: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-CWL.html).
LOG_DELIVERY_POLICY_NAME = "AWSLogDeliveryWrite20150319"
# The error as Step Functions returns it (error code InvalidLoggingConfiguration, HTTP 400; the
# message as reported by users, e.g. aws-samples/retail-demo-store#625, hashicorp HHS CI logs).
POLICY_FULL_MESSAGE = (
    "Invalid Logging Configuration: The CloudWatch Logs Resource Policy size was exceeded. "
    "We suggest prefixing your CloudWatch log group name with /aws/vendedlogs/states/."
)


class InvalidLoggingConfiguration(AWSError):
    TYPE = "InvalidLoggingConfiguration"
    STATUS = 400


def _log_group_name(log_group_arn: str) -> str:
    # arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]
    rest = log_group_arn.split(":log-group:", 1)[-1]
    return rest[:-2] if rest.endswith(":*") else rest


def _log_groups(logging_configuration: dict[str, Any] | None) -> list[str]:
    config = logging_configuration or {}
    if str(config.get("level", "OFF")).upper() == "OFF":
        return []
    return [
        _log_group_name(destination["cloudWatchLogsLogGroup"]["logGroupArn"])
        for destination in config.get("destinations") or []
        if (destination.get("cloudWatchLogsLogGroup") or {}).get("logGroupArn")
    ]


def _empty_policy(account: str, region: str, partition: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": LOG_DELIVERY_POLICY_NAME,
                "Effect": "Allow",
                "Principal": {"Service": ["delivery.logs.amazonaws.com"]},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [],
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": [account]},
                    "ArnLike": {"aws:SourceArn": [f"arn:{partition}:logs:{region}:{account}:*"]},
                },
            }
        ],
    }


def grant_log_delivery(account: str, region: str, log_groups: list[str], partition: str = "aws") -> None:
    """Adds the log groups to the account's log delivery policy as Step Functions does, or
    raises InvalidLoggingConfiguration when the policy would outgrow 5,120 characters.
    Groups under /aws/vendedlogs/ never grow it."""
    wanted = [
        f"arn:{partition}:logs:{region}:{account}:log-group:{name}:log-stream:*"
        for name in log_groups
        if not name.startswith(VENDED_LOGS_PREFIX)
    ]
    if not wanted:
        return
    backend = logs_backends[account][region]
    existing = backend.resource_policies.get(LOG_DELIVERY_POLICY_NAME)
    try:
        policy = json.loads(existing.policy_document) if existing else _empty_policy(account, region, partition)
        statement = policy["Statement"][0]
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else list(resources)
    except (ValueError, KeyError, IndexError, TypeError):
        policy = _empty_policy(account, region, partition)
        statement, resources = policy["Statement"][0], []
    added = [arn for arn in wanted if arn not in resources]
    if not added:
        return
    statement["Resource"] = resources + added
    document = json.dumps(policy, separators=(",", ":"))  # compact: the most that can fit
    if len(document) > RESOURCE_POLICY_MAX_CHARACTERS:
        raise InvalidLoggingConfiguration(POLICY_FULL_MESSAGE)
    backend.put_resource_policy(LOG_DELIVERY_POLICY_NAME, document)


def _log_policy_patches() -> list[tuple[Any, str, Any]]:
    original_create = StepFunctionsParserBackend.create_state_machine
    original_update = StepFunctionsParserBackend.update_state_machine

    def create_state_machine(self: StepFunctionsParserBackend, *args: Any, **kwargs: Any) -> Any:
        grant_log_delivery(
            self.account_id, self.region_name, _log_groups(kwargs.get("loggingConfiguration")), self.partition
        )
        return original_create(self, *args, **kwargs)

    def update_state_machine(self: StepFunctionsParserBackend, arn: str, *args: Any, **kwargs: Any) -> Any:
        logging_configuration = kwargs.get("logging_configuration")
        if logging_configuration is None and len(args) >= 3:
            logging_configuration = args[2]  # (definition, role_arn, logging_configuration, ...)
        grant_log_delivery(self.account_id, self.region_name, _log_groups(logging_configuration), self.partition)
        return original_update(self, arn, *args, **kwargs)

    return [
        (StepFunctionsParserBackend, "create_state_machine", create_state_machine),
        (StepFunctionsParserBackend, "update_state_machine", update_state_machine),
    ]


def _execution_name_patch() -> list[tuple[Any, str, Any]]:
    """StartExecution - AWS Step Functions (API Reference):
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
    name: "Length Constraints: Minimum length of 1. Maximum length of 80." and must not contain
    white space, brackets < > { } [ ], wildcard characters ? *, special characters
    " # % \\ ^ | ~ ` $ & , ; : /, control characters (U+0000-001F, U+007F-009F).
    moto's plain backend checks exactly this (InvalidName; ValidationException over 80
    characters); its interpreter backend, which the local cloud runs, does not call it.
    Names stay unique per state machine (for 90 days on AWS: forever here) through moto's own
    idempotency check (ExecutionAlreadyExists)."""
    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: StepFunctionsParserBackend, state_machine_arn: str, name: Any = None,
                        *args: Any, **kwargs: Any) -> Any:
        if name is not None:
            self._validate_name(name)
        return original(self, state_machine_arn, name, *args, **kwargs)

    return [(StepFunctionsParserBackend, "start_execution", start_execution)]


# GetExecutionHistory - AWS Step Functions (API Reference):
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
# maxResults: "The maximum number of results that are returned per call. ... The default is 100
# and the maximum allowed page size is 1000. A value of 0 uses the default." (Valid Range: 0-1000.)
# nextToken: "If nextToken is returned, there are more results available. ... Using an expired
# pagination token will return an HTTP 400 InvalidToken error."
# reverseOrder: "Lists events in descending order of their timeStamp."
HISTORY_DEFAULT_PAGE = 100
HISTORY_MAX_PAGE = 1000


def _history_token(execution_arn: str, reverse: bool, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([execution_arn, reverse, offset]).encode()).decode()


def _history_offset(token: str, execution_arn: str, reverse: bool) -> int:
    """The offset a token continues from; a token of another listing is refused as AWS does."""
    try:
        arn, was_reverse, offset = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise InvalidToken("Invalid Token: 'Invalid token'") from None
    if arn != execution_arn or was_reverse != reverse or not isinstance(offset, int) or offset < 0:
        raise InvalidToken("Invalid Token: 'Invalid token'")
    return offset


def _history_paging_patch() -> list[tuple[Any, str, Any]]:
    def get_execution_history(self: StepFunctionResponse) -> ActionResult:
        execution_arn = self._get_param("executionArn")
        page = self._get_param("maxResults") or HISTORY_DEFAULT_PAGE
        if not isinstance(page, int) or not 0 < page <= HISTORY_MAX_PAGE:
            raise JsonRESTError("ValidationException", f"1 validation error detected: Value '{page}' at 'maxResults' "
                                "failed to satisfy constraint: Member must have value less than or equal to 1000")
        reverse = bool(self._get_param("reverseOrder"))
        events = list(self.stepfunction_backend.get_execution_history(execution_arn)["events"])
        if reverse:
            events.reverse()
        token = self._get_param("nextToken")
        start = _history_offset(token, execution_arn, reverse) if token else 0
        result: dict[str, Any] = {"events": events[start : start + page]}
        if start + page < len(events):
            result["nextToken"] = _history_token(execution_arn, reverse, start + page)
        return ActionResult(result)

    return [(StepFunctionResponse, "get_execution_history", get_execution_history)]


def patches() -> list[tuple[Any, str, Any]]:
    return [*_log_policy_patches(), *_execution_name_patch(), *_history_paging_patch()]
