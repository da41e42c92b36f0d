"""Accounts and Regions for registries: what the local cloud adds so that a push to an ECR
registry of another account (or Region) can reach deckhand, and be read by it, as on AWS.

* ECR requests that name another account's ``registryId`` are served by that account's
  registry (moto looks in the caller's and answers RepositoryNotFoundException). A function's
  request is allowed only when the repository's policy allows its principal too: "the
  identity-based policy in the trusting account and the resource-based policy ... both allow"
  (IAM User Guide, "Cross-account policy evaluation logic",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html);
  iam.py calls :func:`cross_account_denial` for that.
* An event bus in another account or Region as a rule's target gets the event as it was
  (its ``account``, ``region``, ``id``, ``time`` and ``resources`` kept: the receiving account
  sees where it came from), and only when the target bus's resource-based policy allows the
  sending account to put events, with its conditions (``events:source``,
  ``events:detail-type``) (EventBridge User Guide, "Sending and receiving events between AWS
  accounts in Amazon EventBridge"; "Using resource-based policies for Amazon EventBridge").
  moto re-puts such events as new events of the target account, which hides their origin.
* :func:`assumed_credentials`: credentials of a role of any account (sts:AssumeRole; moto files
  the keys under that account, so what they create lives there).
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any, Callable

from moto.ecr.models import ecr_backends
from moto.ecr.responses import ECRResponse
from moto.events.models import events_backends
from moto.utilities.arns import parse_arn

from .iam import glob_match


class CrossAccountDenied(Exception):
    """What AWS answers AccessDeniedException for."""


def _principal_matches(principal: Any, account: str, arns: list[str]) -> bool:
    """A resource policy's Principal against a caller of `account` known by `arns` (its role
    and session ARNs). An account id or its root ARN means every principal of that account."""
    if principal == "*":
        return True
    values = principal.get("AWS", []) if isinstance(principal, dict) else []
    for value in values if isinstance(values, list) else [values]:
        if value in ("*", account, f"arn:aws:iam::{account}:root") or value in arns:
            return True
    return False


def _conditions_hold(condition: dict[str, Any] | None, context: dict[str, str]) -> bool:
    """StringEquals/StringLike on the keys the request sets; any other operator is unknown here
    and never holds (a policy this emulator cannot read does not grant)."""
    for operator, keys in (condition or {}).items():
        if operator not in ("StringEquals", "StringLike"):
            return False
        for key, wanted in keys.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            have = context.get(key)
            if have is None:
                return False
            if operator == "StringEquals" and have not in values:
                return False
            if operator == "StringLike" and not any(glob_match(v, have) for v in values):
                return False
    return True


def policy_allows(policy: str | dict[str, Any] | None, account: str, arns: list[str], action: str,
                  context: dict[str, str] | None = None, resource: str | None = None) -> bool:
    """Whether a resource-based policy allows `action` on `resource` to the caller (an explicit
    Deny wins); a statement that names other resources does not apply."""
    document = json.loads(policy) if isinstance(policy, str) else policy
    allowed = False
    for statement in (document or {}).get("Statement", []):
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if not any(glob_match(a, action, ignore_case=True) for a in actions):
            continue
        if not _principal_matches(statement.get("Principal"), account, arns):
            continue
        resources = statement.get("Resource", [])
        resources = resources if isinstance(resources, list) else [resources]
        if resource and resources and not any(glob_match(r, resource) for r in resources):
            continue
        if not _conditions_hold(statement.get("Condition"), context or {}):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = True
    return allowed


# --------------------------------------------------------------------------------------- ECR
def cross_account_denial(service: str, params: dict[str, Any], region: str, account: str, arns: list[str],
                         action: str) -> str | None:
    """Why a function's ECR request to another account's registry is refused, if it is."""
    registry = params.get("registryId")
    name = params.get("repositoryName")
    if service != "ecr" or not registry or registry == account or not name:
        return None
    repository = ecr_backends[registry][region].repositories.get(name)
    resource = f"arn:aws:ecr:{region}:{registry}:repository/{name}"
    if repository is not None and policy_allows(repository.policy, account, arns, action, resource=resource):
        return None
    return (f"User: {arns[-1] if arns else account} is not authorized to perform: {action} on resource: "
            f"{resource} because no resource-based policy allows the {action} action")


def install_ecr_routing() -> Callable[[], None]:
    """Serves a request naming another account's registryId from that account's registry."""
    original = ECRResponse.__dict__["ecr_backend"]

    def ecr_backend(self: ECRResponse) -> Any:
        registry = self._get_param("registryId")
        account = registry if registry and registry != self.current_account else self.current_account
        return ecr_backends[account][self.region]

    ECRResponse.ecr_backend = property(ecr_backend)  # type: ignore[method-assign,assignment]
    return lambda: setattr(ECRResponse, "ecr_backend", original)


# -------------------------------------------------------------------------------- event buses
def is_event_bus(arn: str) -> bool:
    try:
        parsed = parse_arn(arn)
    except Exception:  # noqa: BLE001 - not an ARN: not a bus
        return False
    return parsed.service == "events" and parsed.resource_type == "event-bus"


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def check_target_role(target: dict[str, Any], event: dict[str, Any]) -> None:
    """A bus in another Region is reached through the target's role, which must be allowed to
    put events there (EventBridge User Guide, "Sending and receiving events between AWS Regions
    in Amazon EventBridge"); the role is checked whenever the target names one."""
    from .iam import ALLOW, Authorization, evaluate, role_policies  # noqa: PLC0415

    arn = parse_arn(target["Arn"])
    role = target.get("RoleArn")
    if not role:
        if arn.region != event.get("region"):
            raise CrossAccountDenied(f"a rule's target {target['Arn']} in another Region needs a RoleArn")
        return
    if evaluate(role_policies(role), Authorization("events:PutEvents", target["Arn"])) != ALLOW:
        raise CrossAccountDenied(f"AccessDeniedException: role {role} may not put events on {target['Arn']}")


def put_on_bus(bus_arn: str, event: dict[str, Any]) -> None:
    """Delivers `event` (as targets see it) to the bus `bus_arn`: its rules match it as it was.
    Raises CrossAccountDenied when the bus's policy does not let the sending account in."""
    arn = parse_arn(bus_arn)
    backend = events_backends[arn.account][arn.region]
    bus = backend.event_buses.get(arn.resource_id)
    if bus is None:
        raise CrossAccountDenied(f"event bus {bus_arn} does not exist")
    sender = event.get("account", "")
    if sender != arn.account:
        context = {"events:source": event.get("source", ""), "events:detail-type": event.get("detail-type", "")}
        if not policy_allows(bus.policy, sender, [], "events:PutEvents", context, resource=bus_arn):
            raise CrossAccountDenied(
                f"AccessDeniedException: account {sender} is not authorized to put events on {bus_arn}: "
                "no statement of the bus's resource-based policy allows it")
    kept = {**event, "time": _epoch(event["time"]), "ingestion-time": time.time()}
    for rule in list(bus.rules.values()):
        rule.send_to_targets(dict(kept))
