"""Traffic shifting for ECS-native blue/green, linear and canary deployments: the weighted forward
actions of the production and test listener rules, rewritten in moto's ELBv2 backend.

"Amazon ECS shifts traffic by rewriting the forward action of these rules while a deployment is in
progress" and "The rule must forward to both target groups, with weight 100 on the target group
that currently serves that traffic and weight 0 on the other" ("VPC Lattice resources for
blue/green, linear, and canary deployments",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/vpc-lattice-resources-for-blue-green.html;
"Application Load Balancer resources for blue/green, linear, and canary deployments",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html,
describes the same listener rules for ALB). ECS writes a weighted ``ForwardConfig`` over both
target groups (observed by users: after the first deployment the production rule's forward action
is a ForwardConfig with green 100 / blue 0 and no scalar TargetGroupArn). A forward action's
target group weight is an integer, "The weight. The range is 0 to 999." (Elastic Load Balancing
API Reference, TargetGroupTuple,
https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupTuple.html), so a
percentage with a tenth (linear 12.5 %) is written as weights out of 1000 (125/875) and whole
percentages as weights out of 100; that encoding is the local cloud's (ECS does not document it).
For a Network Load Balancer the "rule" is a listener and its default action is rewritten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from moto.elbv2 import models as elbv2_models

from .ecs_native_rules import actions_of, find_rule_or_listener, forward_target_groups


@dataclass
class TrafficPair:
    """One load balancer of the service: its two target groups and its listener rules."""

    primary_target_group: str  # loadBalancers[].targetGroupArn
    alternate_target_group: str  # advancedConfiguration.alternateTargetGroupArn
    production_rule: str
    test_rule: str | None
    role_arn: str | None
    container_name: str | None
    container_port: int | None

    @property
    def target_groups(self) -> tuple[str, str]:
        return (self.primary_target_group, self.alternate_target_group)

    def other(self, target_group: str) -> str:
        return self.alternate_target_group if target_group == self.primary_target_group else self.primary_target_group


def pairs_of(load_balancers: list[dict[str, Any]] | None) -> list[TrafficPair]:
    pairs = []
    for lb in load_balancers or []:
        advanced = lb.get("advancedConfiguration")
        if not advanced or not lb.get("targetGroupArn"):
            continue
        pairs.append(
            TrafficPair(
                primary_target_group=lb["targetGroupArn"],
                alternate_target_group=advanced["alternateTargetGroupArn"],
                production_rule=advanced["productionListenerRule"],
                test_rule=advanced.get("testListenerRule"),
                role_arn=advanced.get("roleArn"),
                container_name=lb.get("containerName"),
                container_port=lb.get("containerPort"),
            )
        )
    return pairs


def _elbv2(account: str, region: str) -> Any:
    return elbv2_models.elbv2_backends[account][region]


def current_weights(account: str, region: str, arn: str) -> dict[str, float] | None:
    """{target group: weight} of the rule's (or listener's) forward actions; None when the rule is
    gone. A scalar TargetGroupArn counts as weight 1 (all of the traffic)."""
    found = find_rule_or_listener(_elbv2(account, region), arn)
    if found is None:
        return None
    weights: dict[str, float] = {}
    for action in actions_of(found):
        data = getattr(action, "data", action) or {}
        if data.get("Type") != "forward":
            continue
        if data.get("TargetGroupArn") and not data.get("ForwardConfig"):
            weights[data["TargetGroupArn"]] = weights.get(data["TargetGroupArn"], 0) + 1
        for group in (data.get("ForwardConfig") or {}).get("TargetGroups") or []:
            weight = group.get("Weight", 1)
            weights[group["TargetGroupArn"]] = weights.get(group["TargetGroupArn"], 0) + float(weight)
    return weights


def has_non_forward_actions(account: str, region: str, arn: str) -> bool:
    """"Blue/green deployments aren't supported when using Application Load Balancer listeners that
    have multiple action types configured with non-forward actions ... the deployment fails"
    ("Application Load Balancer resources for blue/green deployments", Limitations)."""
    found = find_rule_or_listener(_elbv2(account, region), arn)
    if found is None:
        return False
    types = {(getattr(a, "data", a) or {}).get("Type") for a in actions_of(found)}
    return "forward" in types and len(types) > 1


def serving_share(weights: dict[str, float], target_group: str) -> float:
    """The percentage of the rule's traffic that goes to `target_group`."""
    total = sum(weights.values())
    return 0.0 if total <= 0 else 100.0 * weights.get(target_group, 0) / total


def encode_weights(green_percent: float, green: str, blue: str) -> list[dict[str, Any]]:
    """ForwardConfig.TargetGroups for `green_percent` % to green and the rest to blue."""
    tenths = round(green_percent * 10)
    if tenths % 10 == 0:
        green_weight, total = tenths // 10, 100
    else:
        green_weight, total = tenths, 1000
    return [
        {"TargetGroupArn": green, "Weight": int(green_weight)},
        {"TargetGroupArn": blue, "Weight": int(total - green_weight)},
    ]


def shift(account: str, region: str, arn: str, green: str, blue: str, green_percent: float) -> None:
    """Rewrites the rule's (or NLB listener's) forward action: `green_percent` % to green."""
    elbv2 = _elbv2(account, region)
    found = find_rule_or_listener(elbv2, arn)
    if found is None:
        raise LookupError(f"listener rule {arn} no longer exists")
    stickiness = {"Enabled": False}
    for action in actions_of(found):
        data = getattr(action, "data", action) or {}
        if data.get("Type") == "forward" and (data.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig"):
            stickiness = dict(data["ForwardConfig"]["TargetGroupStickinessConfig"])
    action = {
        "Type": "forward",
        "Order": 1,
        "ForwardConfig": {
            "TargetGroups": encode_weights(green_percent, green, blue),
            "TargetGroupStickinessConfig": stickiness,
        },
    }
    new_actions = [elbv2_models.FakeAction(action)]
    if hasattr(found, "default_actions") and not hasattr(found, "actions"):
        found.default_actions = new_actions  # a Network Load Balancer listener
        if getattr(found, "_default_rule", None):
            found._default_rule[0].actions = new_actions
    else:
        found.actions = new_actions
        if getattr(found, "is_default", False):  # the listener's default rule is its default action
            for balancer in list(elbv2.load_balancers.values()):
                listener = balancer.listeners.get(found.listener_arn)
                if listener is not None:
                    listener.default_actions = new_actions


def share_of_each(weights: dict[str, float] | None, pair: TrafficPair) -> dict[str, float]:
    """{target group of the pair: percentage} from a rule's weights."""
    weights = weights or {}
    return {group: serving_share(weights, group) for group in pair.target_groups}


def production_target_group(account: str, region: str, pair: TrafficPair) -> tuple[str | None, str]:
    """(the target group serving production, why not when None): the one that gets all of the
    production rule's traffic. A rule split between both groups or forwarding to neither has no
    single production group ("if a rule forwards to both target groups or to neither of them when a
    deployment starts, the deployment would fail", VPC Lattice resources page, Considerations)."""
    weights = current_weights(account, region, pair.production_rule)
    if weights is None:
        return None, f"listener rule {pair.production_rule} no longer exists"
    shares = share_of_each(weights, pair)
    serving = [group for group, share in shares.items() if share > 0]
    if not serving:
        return None, f"listener rule {pair.production_rule} forwards to neither {pair.primary_target_group} nor {pair.alternate_target_group}"
    if len(serving) > 1:
        return None, f"listener rule {pair.production_rule} forwards to both {pair.primary_target_group} and {pair.alternate_target_group}"
    return serving[0], ""


def percent(value: float) -> float | int:
    """A weight for hook payloads and revision summaries: 100 rather than 100.0 when whole."""
    return int(value) if math.isclose(value, round(value)) else round(value, 1)
