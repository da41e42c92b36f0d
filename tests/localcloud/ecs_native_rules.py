"""Refusals for ECS-native blue/green, linear and canary deployments (CreateService, UpdateService).

moto stores any ``deploymentConfiguration`` and any ``loadBalancers[].advancedConfiguration``.
ECS checks them when the service is created or updated; the checks below are the ones the ECS
API Reference and Developer Guide state, each cited next to it. The error code is always
``InvalidParameterException`` ("The specified parameter isn't valid", listed for CreateService and
UpdateService in the API Reference). ECS's own message texts for these refusals are not
documented: the messages here are the local cloud's own wording (they name the field and the
rule), which is why no test compares a message word for word.

What the documentation describes as a *deployment* failure rather than a refusal (a production
listener rule that mixes forward and non-forward actions, a rule edited outside ECS so that it
forwards to both target groups when a deployment starts) is not refused here: the deployment
fails (``ecs_native``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import InvalidParameterException
from moto.elbv2 import models as elbv2_models

# DeploymentConfiguration.strategy - Amazon ECS API Reference
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html):
# "Valid Values: ROLLING | BLUE_GREEN | LINEAR | CANARY".
ROLLING, BLUE_GREEN, LINEAR, CANARY = "ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"
STRATEGIES = (ROLLING, BLUE_GREEN, LINEAR, CANARY)
NATIVE_STRATEGIES = (BLUE_GREEN, LINEAR, CANARY)

# DeploymentLifecycleHook.lifecycleStages - API Reference
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHook.html),
# and the table "Supported stages by hook type" of "Lifecycle hooks for Amazon ECS service
# deployments" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-lifecycle-hooks.html):
# SCALE_UP, BAKE_TIME and CLEAN_UP are lifecycle stages without hooks; "Pause hooks cannot be
# configured at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT because these stages are also
# invoked during rollback".
HOOK_STAGES = (
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
)
NO_PAUSE_STAGES = ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
AWS_LAMBDA, PAUSE = "AWS_LAMBDA", "PAUSE"
TIMEOUT_ACTIONS = ("ROLLBACK", "CONTINUE")

# LinearConfiguration / CanaryConfiguration - API Reference
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LinearConfiguration.html,
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CanaryConfiguration.html):
# stepPercent "Valid values are multiples of 0.1 from 3.0 to 100.0. The default value is 10.0";
# stepBakeTimeInMinutes "Valid values are 0 to 1440 minutes (24 hours). The default value is 6";
# canaryPercent "multiples of 0.1 from 0.1 to 100.0. The default value is 5.0";
# canaryBakeTimeInMinutes "0 to 1440 minutes (24 hours). The default value is 10".
STEP_PERCENT_RANGE = (3.0, 100.0)
CANARY_PERCENT_RANGE = (0.1, 100.0)
BAKE_MINUTES_RANGE = (0, 1440)
DEFAULT_STEP_PERCENT, DEFAULT_STEP_BAKE_MINUTES = 10.0, 6
DEFAULT_CANARY_PERCENT, DEFAULT_CANARY_BAKE_MINUTES = 5.0, 10
# DeploymentLifecycleHookTimeoutConfiguration - API Reference
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHookTimeoutConfiguration.html):
# timeoutInMinutes "Default: 1440 (24 hours)", "Valid Range: Minimum value of 1. Maximum value of
# 20160"; action "Default: ROLLBACK". "Lambda hooks for Amazon ECS service deployments"
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html),
# Timeout configuration: for Lambda hooks "Valid range: 1 to 1,440 (24 hours)"; pause hooks up to
# 20,160 minutes (14 days) ("Amazon ECS linear deployments", Deployment lifecycle stages).
DEFAULT_HOOK_TIMEOUT_MINUTES = 1440
LAMBDA_HOOK_TIMEOUT_RANGE = (1, 1440)
PAUSE_HOOK_TIMEOUT_RANGE = (1, 20160)


def refuse(message: str) -> InvalidParameterException:
    return InvalidParameterException(message)


def strategy_of(configuration: dict[str, Any] | None) -> str:
    return str((configuration or {}).get("strategy") or ROLLING)


def _is_multiple_of_tenth(value: float) -> bool:
    return math.isclose(round(value * 10), value * 10, abs_tol=1e-6)


def _check_percent(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise refuse(f"{name} must be a number")
    if not low <= float(value) <= high or not _is_multiple_of_tenth(float(value)):
        raise refuse(f"{name} must be a multiple of 0.1 from {low} to {high}; got {value}")


def _check_minutes(name: str, value: Any, low: int = BAKE_MINUTES_RANGE[0], high: int = BAKE_MINUTES_RANGE[1]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise refuse(f"{name} must be a whole number of minutes")
    if not low <= value <= high:
        raise refuse(f"{name} must be between {low} and {high} minutes; got {value}")


def check_deployment_configuration(configuration: dict[str, Any] | None) -> None:
    """The strategy members of an (effective) deploymentConfiguration, as ECS validates them."""
    configuration = configuration or {}
    strategy = strategy_of(configuration)
    if strategy not in STRATEGIES:
        raise refuse(f"deploymentConfiguration.strategy must be one of {', '.join(STRATEGIES)}; got {strategy}")
    linear, canary = configuration.get("linearConfiguration"), configuration.get("canaryConfiguration")
    # "Only valid when the deployment strategy is LINEAR" / "... is CANARY" (DeploymentConfiguration,
    # linearConfiguration and canaryConfiguration members).
    if linear is not None and strategy != LINEAR:
        raise refuse(f"linearConfiguration is only valid with the LINEAR strategy, not {strategy}")
    if canary is not None and strategy != CANARY:
        raise refuse(f"canaryConfiguration is only valid with the CANARY strategy, not {strategy}")
    if linear:
        if "stepPercent" in linear:
            _check_percent("linearConfiguration.stepPercent", linear["stepPercent"], *STEP_PERCENT_RANGE)
        if "stepBakeTimeInMinutes" in linear:
            _check_minutes("linearConfiguration.stepBakeTimeInMinutes", linear["stepBakeTimeInMinutes"])
    if canary:
        if "canaryPercent" in canary:
            _check_percent("canaryConfiguration.canaryPercent", canary["canaryPercent"], *CANARY_PERCENT_RANGE)
        if "canaryBakeTimeInMinutes" in canary:
            _check_minutes("canaryConfiguration.canaryBakeTimeInMinutes", canary["canaryBakeTimeInMinutes"])
    bake = configuration.get("bakeTimeInMinutes")
    if bake is not None:
        _check_minutes("deploymentConfiguration.bakeTimeInMinutes", bake)
    elif strategy == BLUE_GREEN:
        # DeploymentConfiguration.bakeTimeInMinutes: "You must provide this parameter when you use
        # the BLUE_GREEN deployment strategy."
        raise refuse("deploymentConfiguration.bakeTimeInMinutes is required with the BLUE_GREEN strategy")
    for index, hook in enumerate(configuration.get("lifecycleHooks") or []):
        check_lifecycle_hook(f"deploymentConfiguration.lifecycleHooks[{index}]", hook)


def check_lifecycle_hook(where: str, hook: dict[str, Any]) -> None:
    """DeploymentLifecycleHook - API Reference
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHook.html)."""
    target_type = hook.get("targetType") or AWS_LAMBDA  # "the default value is AWS_LAMBDA"
    if target_type not in (AWS_LAMBDA, PAUSE):
        raise refuse(f"{where}.targetType must be AWS_LAMBDA or PAUSE; got {target_type}")
    stages = hook.get("lifecycleStages")
    # lifecycleStages: "You must provide this parameter when configuring a deployment lifecycle hook."
    if not stages:
        raise refuse(f"{where}.lifecycleStages is required")
    for stage in stages:
        if stage not in HOOK_STAGES:
            raise refuse(f"{where}.lifecycleStages: {stage} is not a stage a lifecycle hook can run at "
                         f"(valid: {', '.join(HOOK_STAGES)})")
        if target_type == PAUSE and stage in NO_PAUSE_STAGES:
            raise refuse(f"{where}: PAUSE hooks cannot be configured at {stage}")
    if target_type == AWS_LAMBDA:
        # hookTargetArn: "You must provide this parameter when configuring an AWS_LAMBDA lifecycle
        # hook"; roleArn grants "Amazon ECS permission to call Lambda functions on your behalf"
        # ("Permissions required for Lambda functions in Amazon ECS blue/green deployments").
        target = str(hook.get("hookTargetArn") or "")
        if not target:
            raise refuse(f"{where}.hookTargetArn is required for an AWS_LAMBDA hook")
        if not (target.startswith("arn:") and target.split(":")[2:3] == ["lambda"] and ":function:" in target):
            raise refuse(f"{where}.hookTargetArn must be a Lambda function ARN; got {target}")
        if not hook.get("roleArn"):
            raise refuse(f"{where}.roleArn is required for an AWS_LAMBDA hook")
    elif hook.get("hookTargetArn"):
        raise refuse(f"{where}.hookTargetArn is not applicable to a PAUSE hook")
    timeout = hook.get("timeoutConfiguration") or {}
    if "timeoutInMinutes" in timeout:
        low, high = LAMBDA_HOOK_TIMEOUT_RANGE if target_type == AWS_LAMBDA else PAUSE_HOOK_TIMEOUT_RANGE
        _check_minutes(f"{where}.timeoutConfiguration.timeoutInMinutes", timeout["timeoutInMinutes"], low, high)
    if "action" in timeout and timeout["action"] not in TIMEOUT_ACTIONS:
        raise refuse(f"{where}.timeoutConfiguration.action must be ROLLBACK or CONTINUE; got {timeout['action']}")


# ---------------------------------------------------------------------------------------------
# Load balancers
# ---------------------------------------------------------------------------------------------


def forward_target_groups(actions: list[Any]) -> list[str]:
    """The target groups a rule's or listener's forward actions send traffic to."""
    found: list[str] = []
    for action in actions or []:
        data = getattr(action, "data", action) or {}
        if data.get("Type") != "forward":
            continue
        if data.get("TargetGroupArn"):
            found.append(data["TargetGroupArn"])
        for group in (data.get("ForwardConfig") or {}).get("TargetGroups") or []:
            found.append(group["TargetGroupArn"])
    return list(dict.fromkeys(found))


def find_rule_or_listener(elbv2: Any, arn: str) -> Any | None:
    """A listener rule (Application Load Balancer) or a listener (Network Load Balancer: "the
    production listener rule (in the case of an Application Load Balancer) or listener (in the
    case for an Network Load Balancer)", AdvancedConfiguration) by ARN, from moto's ELBv2 backend.
    A listener rule object has `actions`; a listener has `default_actions`."""
    for balancer in list(elbv2.load_balancers.values()):
        for listener in list(balancer.listeners.values()):
            if listener.arn == arn:
                return listener
            for rule in list(listener.rules.values()):
                if rule.arn == arn:
                    return rule
    return None


def actions_of(rule_or_listener: Any) -> list[Any]:
    actions = getattr(rule_or_listener, "actions", None)
    return list(actions if actions is not None else getattr(rule_or_listener, "default_actions", []) or [])


def check_load_balancers(strategy: str, load_balancers: list[dict[str, Any]] | None, account: str, region: str) -> None:
    """advancedConfiguration of each load balancer (AdvancedConfiguration - API Reference,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_AdvancedConfiguration.html)."""
    elbv2 = elbv2_models.elbv2_backends[account][region]
    for index, lb in enumerate(load_balancers or []):
        where = f"loadBalancers[{index}]"
        advanced = lb.get("advancedConfiguration")
        if strategy in NATIVE_STRATEGIES and lb.get("targetGroupArn") and not advanced:
            # "Application Load Balancer resources for blue/green, linear, and canary deployments"
            # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html),
            # Service configuration: a blue/green service's load balancer names the alternate
            # target group, the production listener rule and the role ECS shifts traffic with.
            raise refuse(f"{where}.advancedConfiguration is required with the {strategy} strategy")
        if not advanced:
            continue
        primary = lb.get("targetGroupArn")
        alternate = advanced.get("alternateTargetGroupArn")
        for name in ("alternateTargetGroupArn", "productionListenerRule", "roleArn"):
            if not advanced.get(name):
                raise refuse(f"{where}.advancedConfiguration.{name} is required")
        if not primary:
            raise refuse(f"{where}.targetGroupArn is required with advancedConfiguration")
        if alternate == primary:
            raise refuse(f"{where}.advancedConfiguration.alternateTargetGroupArn must differ from targetGroupArn")
        if alternate not in elbv2.target_groups:
            raise refuse(f"{where}.advancedConfiguration.alternateTargetGroupArn {alternate} does not exist")
        pair = {primary, alternate}
        rules = {"productionListenerRule": advanced.get("productionListenerRule")}
        if advanced.get("testListenerRule"):
            rules["testListenerRule"] = advanced["testListenerRule"]
            # "The test listener rule is on the same ... service as the production listener rule,
            # and it is a different rule" ("VPC Lattice resources for blue/green, linear, and canary
            # deployments", Listeners and rules; the ALB page describes the same pair of rules).
            if rules["testListenerRule"] == rules["productionListenerRule"]:
                raise refuse(f"{where}.advancedConfiguration.testListenerRule must differ from productionListenerRule")
        for name, arn in rules.items():
            found = find_rule_or_listener(elbv2, arn)
            if found is None:
                raise refuse(f"{where}.advancedConfiguration.{name} {arn} does not exist")
            # The rule shifts traffic between the service's two target groups: "Amazon ECS shifts
            # traffic by rewriting the forward action of these rules" and a rule that forwards to
            # neither target group fails ("Don't modify forward actions", same pages).
            forwarded = set(forward_target_groups(actions_of(found)))
            if not forwarded or not forwarded <= pair:
                raise refuse(
                    f"{where}.advancedConfiguration.{name} {arn} must forward to the service's target "
                    f"groups {primary} and {alternate}; it forwards to {sorted(forwarded) or 'none'}"
                )


# ---------------------------------------------------------------------------------------------
# Effective settings of a request, and the response wrappers
# ---------------------------------------------------------------------------------------------


def merged_configuration(current: dict[str, Any] | None, given: dict[str, Any] | None) -> dict[str, Any]:
    """UpdateService changes only the deploymentConfiguration members it names (as ecs_sim merges)."""
    merged = dict(current or {})
    for key, value in (given or {}).items():
        if value is not None:
            merged[key] = value
    return merged


def check_request(
    configuration: dict[str, Any] | None, load_balancers: list[dict[str, Any]] | None, controller: str, account: str, region: str
) -> None:
    strategy = strategy_of(configuration)
    # "This is only valid when you run CreateService or UpdateService with deploymentController set
    # to ECS" (LinearConfiguration, CanaryConfiguration); "Set the service deployment controller to
    # ECS" ("Required resources for Amazon ECS blue/green deployments").
    if strategy in NATIVE_STRATEGIES and controller != "ECS":
        raise refuse(f"the {strategy} strategy needs the ECS deployment controller, not {controller}")
    check_deployment_configuration(configuration)
    check_load_balancers(strategy, load_balancers, account, region)


def _checking_create_service(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_service(response: Any) -> Any:
        backend = response.ecs_backend
        controller = (response._get_param("deploymentController") or {}).get("type", "ECS")
        check_request(
            response._get_param("deploymentConfiguration"),
            response._get_param("loadBalancers"),
            controller,
            backend.account_id,
            backend.region_name,
        )
        return original(response)

    return create_service


def _checking_update_service(sim: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        def update_service(response: Any) -> Any:
            backend = response.ecs_backend
            try:
                service = backend._get_service(
                    response._get_param("cluster", "default"), str(response._get_param("service", "")).split("/")[-1]
                )
            except Exception:  # noqa: BLE001 - missing cluster/service: the original raises ECS's error
                return original(response)
            given = response._get_param("deploymentConfiguration")
            load_balancers = response._get_param("loadBalancers")
            controller = (service.deployment_controller or {}).get("type", "ECS")
            if given is not None or load_balancers is not None:
                with sim._lock:
                    state = sim.state_of(backend, service)
                    current = (
                        state.settings.to_api() if state is not None
                        else dict(getattr(service, "deployment_configuration", None) or {})
                    )
                check_request(
                    merged_configuration(current, given),
                    load_balancers if load_balancers is not None else list(service.load_balancers or []),
                    controller,
                    backend.account_id,
                    backend.region_name,
                )
            return original(response)

        return update_service

    return make


def response_checks(sim: Any) -> list[tuple[type, str, Callable[[Callable[..., Any]], Callable[..., Any]]]]:
    responses = ecs_responses.EC2ContainerServiceResponse
    return [
        (responses, "create_service", _checking_create_service),
        (responses, "update_service", _checking_update_service(sim)),
    ]
