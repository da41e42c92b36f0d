"""template.yaml as CloudFormation would create it, shared by the template and IAM policy tests.

The template is translated with the official SAM translator (offline) and its intrinsic
functions resolved with the local cloud's resolver; each test chooses how the created
resources are named (``physical``), since that is what its checks compare against.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from localcloud.stack import Physical, Resolver, translate

ACCOUNT, REGION = "123456789012", "us-east-1"

# (logical id, resource type, resolved-or-not properties) -> the created resource's Ref and attributes
PhysicalFactory = Callable[[str, str, dict[str, Any]], Physical]


def resolved_template(template: dict[str, Any], watched_clusters: str, physical: PhysicalFactory,
                      overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """The resources of `template` (SAM) after translation, with intrinsics resolved for the
    WatchedClusters parameter `watched_clusters`, the parameters in `overrides` and every other
    parameter at its default; resources whose Condition is false are left out."""
    template = copy.deepcopy(template)
    # Code locations are local paths the translator cannot use: any S3 location will do.
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = {"Bucket": "artifacts", "Key": "code.zip"}
        if resource["Type"] == "AWS::Serverless::StateMachine":
            props["DefinitionUri"] = {"Bucket": "artifacts", "Key": "deploy.asl.json"}
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    cfn = translate(template, {}, REGION)
    # CloudFormation parameter values are strings (lists of strings for CommaDelimitedList).
    parameters: dict[str, Any] = {}
    for name, spec in cfn.get("Parameters", {}).items():
        value = watched_clusters if name == "WatchedClusters" else str(spec.get("Default", ""))
        value = (overrides or {}).get(name, value)
        parameters[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
    resolver = Resolver(cfn, parameters, {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                                          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "deckhand",
                                          "AWS::NoValue": None})
    for logical_id, resource in cfn["Resources"].items():
        resolver.resources[logical_id] = physical(logical_id, resource["Type"], resource.get("Properties", {}))
    return {k: {**r, "Properties": resolver.resolve(r.get("Properties", {}))} for k, r in cfn["Resources"].items()
            if "Condition" not in r or resolver.condition(r["Condition"])}
