"""ECS refusals that moto does not make, checked on the request as ECS checks it.

moto accepts any tag and lets UpdateService change a blue/green (CODE_DEPLOY) or
EXTERNAL service as if ECS deployed it; ECS refuses both with
InvalidParameterException. `response_checks()` gives wrappers for moto's ECS
response methods; the ECS simulator (`ecs_sim`) installs and removes them with
its own patches, so they are active whenever the local cloud is.

Where the exact wording of ECS's message could not be confirmed, the message
below is the local cloud's own and says so in a comment; the error code is
always InvalidParameterException ("The specified parameter isn't valid", listed
for every action patched here in the Amazon ECS API Reference).
"""

from __future__ import annotations

import unicodedata
from typing import Any, Callable, Iterable

from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.utilities.utils import get_partition
from moto.ecs.exceptions import ECSException, EcsClientException, InvalidParameterException

# Tag - Amazon Elastic Container Service (API Reference, data type Tag):
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Tag.html
# "Maximum number of tags per resource - 50", "Maximum key length - 128 Unicode characters",
# "Maximum value length - 256 Unicode characters", key length minimum 1, key and value pattern
# ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$ ("letters, numbers, and spaces representable in UTF-8, and the
# following characters: + - = . _ : / @"), and "Do not use aws:, AWS:, or any upper or lowercase
# combination of such as a prefix ... it is reserved for AWS use. ... Tags with this prefix do
# not count against your tags per resource limit."
MAX_TAGS_PER_RESOURCE = 50
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 256
TAG_PUNCTUATION = set("_.:/=+-@")
RESERVED_TAG_PREFIX = "aws:"
ALLOWED_TAG_CHARACTERS = "letters, numbers, spaces and _ . : / = + - @"


def _allowed_tag_character(ch: str) -> bool:
    # \p{L}, \p{Z} and \p{N} are exactly the Unicode general categories L*, Z* and N*.
    return ch in TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LZN"


def tag_problem(key: Any, value: Any) -> str | None:
    """What ECS objects to in one tag, or None. The wording is the local cloud's own: the
    ECS documentation gives the rule, not the message."""
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY_LENGTH:
        return f"Tag key must be 1 to {MAX_TAG_KEY_LENGTH} characters long: {key!r}"
    value = "" if value is None else value
    if not isinstance(value, str) or len(value) > MAX_TAG_VALUE_LENGTH:
        return f"Tag value of key '{key}' must be at most {MAX_TAG_VALUE_LENGTH} characters long"
    if key.lower().startswith(RESERVED_TAG_PREFIX):
        # Only keys are checked: the documentation reserves the prefix for values too, but
        # AWS's own system tags are the common case and the value rule is unconfirmed.
        return f"Tag key '{key}' uses the prefix '{RESERVED_TAG_PREFIX}', which is reserved for AWS use"
    for label, text in (("key", key), ("value", value)):
        bad = sorted({ch for ch in text if not _allowed_tag_character(ch)})
        if bad:
            return (
                f"Tag {label} {text!r} contains characters that are not allowed ({''.join(bad)!r}); "
                f"tags may contain only {ALLOWED_TAG_CHARACTERS}"
            )
    return None


def counted_tags(tags: Iterable[dict[str, Any]]) -> int:
    return sum(1 for tag in tags if not str(tag.get("key", "")).lower().startswith(RESERVED_TAG_PREFIX))


def check_tags(tags: list[dict[str, Any]] | None, existing: list[dict[str, Any]] | None = None) -> None:
    """Raises InvalidParameterException for a tag ECS would refuse, or for more than 50
    tags on the resource once `tags` are merged into `existing` (same key: replaced)."""
    tags = tags or []
    for tag in tags:
        problem = tag_problem(tag.get("key"), tag.get("value"))
        if problem:
            raise InvalidParameterException(problem)
    merged = {tag.get("key"): tag for tag in (existing or [])}
    merged.update({tag.get("key"): tag for tag in tags})
    if counted_tags(merged.values()) > MAX_TAGS_PER_RESOURCE:
        raise InvalidParameterException(
            f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags ({counted_tags(merged.values())} given)"
        )


# UpdateService - Amazon Elastic Container Service (API Reference):
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html
# "For services using the blue/green (CODE_DEPLOY) deployment controller, only the desired count,
# deployment configuration, health check grace period, task placement constraints and
# strategies, enable ECS managed tags option, and propagate tags can be updated using this API.
# If the network configuration, platform version, task definition, or load balancer need to be
# updated, create a new CodeDeploy deployment." and "For services using an external deployment
# controller, you can update only the desired count, task placement constraints and strategies,
# health check grace period, enable ECS managed tags option, and propagate tags option, using
# this API. If the launch type, load balancer, network configuration, platform version, or task
# definition need to be updated, create a new task set."
# Refused here: the parameters the page names as needing CodeDeploy or a task set, and
# forceNewDeployment (in neither list of what can be updated; a conservative reading).
NOT_UPDATABLE = {
    "taskDefinition": "task definition",
    "networkConfiguration": "network configuration",
    "platformVersion": "platform version",
    "loadBalancers": "load balancers",
    "forceNewDeployment": "force new deployment",
}
HOW_TO_DEPLOY = {
    "CODE_DEPLOY": "Use AWS CodeDeploy to trigger a new deployment.",
    "EXTERNAL": "Create a new task set to trigger a new deployment.",
}


def check_update_service(controller: str, params: dict[str, Any]) -> None:
    """Raises InvalidParameterException when UpdateService changes what a CODE_DEPLOY or
    EXTERNAL service only changes through a new deployment outside ECS's control."""
    if controller not in HOW_TO_DEPLOY:
        return
    for name, what in NOT_UPDATABLE.items():
        given = params.get(name)
        if given is None or given is False or given == []:
            continue
        # The task-definition wording is ECS's, as users report it (e.g. boto/boto3#1936,
        # aws/aws-cdk#23564): "Unable to update task definition on services with a CODE_DEPLOY
        # deployment controller. Use AWS CodeDeploy to trigger a new deployment." The others
        # follow the same form (unconfirmed).
        raise InvalidParameterException(
            f"Unable to update {what} on services with a {controller} deployment controller. "
            f"{HOW_TO_DEPLOY[controller]}"
        )


class ServiceNotActiveException(ECSException):
    """UpdateService - Amazon ECS API Reference, Errors: "ServiceNotActiveException: The
    specified service isn't active. You can't update a service that's inactive."
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html);
    the message as users report it: "Service was not ACTIVE." moto updates deleted
    (INACTIVE) services as if they were there."""

    def __init__(self) -> None:
        super().__init__("ServiceNotActiveException", "Service was not ACTIVE.")


# DeregisterTaskDefinition - Amazon Elastic Container Service (API Reference):
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html
# "You can't use an INACTIVE task definition to run new tasks or create new services, and you
# can't update an existing service to reference an INACTIVE task definition. However, there may
# be up to a 10-minute window following deregistration where these restrictions have not yet
# taken effect." Refused here at once (the strict end of that window). Errors as users report
# them: UpdateService "ClientException ... TaskDefinition is inactive" (a rollback to a
# deregistered revision), RunTask "InvalidParameterException: TaskDefinition is inactive";
# CreateService's code is unconfirmed (ClientException, as UpdateService).
INACTIVE_MESSAGE = "TaskDefinition is inactive"


def check_active_task_definition(backend: Any, task_definition: str | None, error: type) -> None:
    if not task_definition:
        return
    try:
        found = backend.describe_task_definition(task_definition)
    except Exception:  # noqa: BLE001 - unknown or malformed: the original raises ECS's error
        return
    if getattr(found, "status", "ACTIVE") == "INACTIVE":
        raise error(INACTIVE_MESSAGE)


# ---------------------------------------------------------------------------------------------
# Wrappers for moto's response methods: (class, method name, factory taking the original)
# ---------------------------------------------------------------------------------------------

Wrapper = tuple[type, str, Callable[[Callable[..., Any]], Callable[..., Any]]]

# Actions that take `tags` for the resource they create (API Reference of each action).
_TAGGING_ACTIONS = (
    "create_cluster",
    "create_service",
    "register_task_definition",
    "run_task",
    "start_task",
    "create_task_set",
    "create_capacity_provider",
)


# Actions that launch tasks from `taskDefinition`, and the error each gives when it is INACTIVE.
_LAUNCHING_ACTIONS = {
    "create_service": EcsClientException,
    "run_task": InvalidParameterException,
    "start_task": InvalidParameterException,
}


# Services created before 2021 have the short ARN `arn:aws:ecs:REGION:ACCOUNT:service/NAME`,
# and "Your service must have the long ARN format in order to tag your service" (Migrate an
# Amazon ECS short service ARN to a long ARN, Developer Guide:
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-arn-migration.html).
# TagResource (API Reference): "If you try to tag a service with a short ARN, you receive an
# InvalidParameterException error." CreateService's wording is ECS's as Terraform users report
# it; TagResource's is the local cloud's own (unconfirmed). moto tags both, and derives the ARN
# from the account setting at each read: `fix_service_arn_format` pins it at creation instead.
SHORT_ARN_CREATE_MESSAGE = (
    "The new ARN and resource ID format must be enabled to add tags to the service. "
    "Opt in to the new format and try again."
)
SHORT_ARN_TAG_MESSAGE = "Long arn format must be used for tagging operations"


def is_short_service_arn(arn: Any) -> bool:
    resource = str(arn).split(":", 5)[-1]
    return resource.startswith("service/") and resource.count("/") == 1


def long_service_arns_enabled(backend: Any) -> bool:
    return bool(backend.enable_long_arn_for_name(name="serviceLongArnFormat"))


def fix_service_arn_format(service: Any, backend: Any) -> None:
    """Pins a new service's ARN format to the account setting at its creation, as ECS does."""
    service._long_arn = long_service_arns_enabled(backend)


def _service_arn(service: Any) -> str:
    long_arn = getattr(service, "_long_arn", None)
    if long_arn is None:
        long_arn = long_service_arns_enabled(service._backend)
    prefix = f"arn:{get_partition(service.region_name)}:ecs:{service.region_name}:{service._account_id}:service/"
    return prefix + (f"{service.cluster_name}/{service.name}" if long_arn else service.name)


def _checking_tags(action_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    inactive_error = _LAUNCHING_ACTIONS.get(action_name)

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        def action(response: Any) -> Any:
            check_tags(response._get_param("tags"))
            if (
                action_name == "create_service"
                and response._get_param("tags")
                and not long_service_arns_enabled(response.ecs_backend)
            ):
                raise InvalidParameterException(SHORT_ARN_CREATE_MESSAGE)
            if inactive_error is not None:
                check_active_task_definition(
                    response.ecs_backend, response._get_param("taskDefinition"), inactive_error
                )
            return original(response)

        return action

    return make


def _checking_tag_resource(original: Callable[..., Any]) -> Callable[..., Any]:
    def tag_resource(response: Any) -> Any:
        if is_short_service_arn(response._get_param("resourceArn")):
            raise InvalidParameterException(SHORT_ARN_TAG_MESSAGE)
        existing: list[dict[str, Any]] = []
        try:
            existing = response.ecs_backend.list_tags_for_resource(response._get_param("resourceArn"))
        except Exception:  # noqa: BLE001 - an unknown resource is the original's error to raise
            pass
        check_tags(response._get_param("tags"), existing)
        return original(response)

    return tag_resource


def _checking_update_service(original: Callable[..., Any]) -> Callable[..., Any]:
    def update_service(response: Any) -> Any:
        try:
            service = response.ecs_backend._get_service(
                response._get_param("cluster", "default"), str(response._get_param("service", "")).split("/")[-1]
            )
        except Exception:  # noqa: BLE001 - missing cluster/service: the original raises ECS's error
            service = None
        if service is not None:
            if service.status != "ACTIVE":
                raise ServiceNotActiveException()
            controller = (service.deployment_controller or {}).get("type", "ECS")
            check_update_service(controller, response._get_params())
        check_active_task_definition(response.ecs_backend, response._get_param("taskDefinition"), EcsClientException)
        return original(response)

    return update_service


def _listing_active_services(original: Callable[..., Any]) -> Callable[..., Any]:
    """DeleteService (ECS API Reference): "the service status moves from ACTIVE to DRAINING,
    and the service is no longer visible in the console or in the ListServices API operation
    ... Services in the DRAINING or INACTIVE status can still be viewed with the
    DescribeServices API operation." moto keeps listing them."""

    def list_services(backend: Any, *args: Any, **kwargs: Any) -> list[str]:
        listed = original(backend, *args, **kwargs)
        gone = {service.arn for service in backend.services.values() if service.status != "ACTIVE"}
        return [arn for arn in listed if arn not in gone]

    return list_services


def response_checks() -> list[Wrapper]:
    responses = ecs_responses.EC2ContainerServiceResponse
    checks: list[Wrapper] = [
        (responses, name, _checking_tags(name)) for name in _TAGGING_ACTIONS if name in responses.__dict__
    ]
    checks.append((responses, "tag_resource", _checking_tag_resource))
    checks.append((responses, "update_service", _checking_update_service))
    checks.append((ecs_models.Service, "arn", lambda _original: property(_service_arn)))
    checks.append((ecs_models.EC2ContainerServiceBackend, "list_services", _listing_active_services))
    return checks
