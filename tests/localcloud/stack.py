"""Deploy a SAM template into the local cloud: one source of truth for the stack.

The steps are the ones a real deployment takes, done offline:

1. ``build_functions``: ``cargo lambda build --release`` (what ``sam build``
   runs for ``BuildMethod: rust-cargolambda``).
2. ``package``: like ``sam package``, local ``CodeUri`` and ``DefinitionUri``
   values are uploaded to an artifacts bucket in the local S3 and replaced by
   their S3 locations. A Rust function's package holds a copy of
   ``target/lambda/<Binary>/bootstrap``, as in AWS: rebuilding needs a redeploy
   (restart the cloud), and never fails on a running executable. The state machine file is uploaded as it is: it need
   not be JSON before its ``${...}`` substitutions are applied (numbers are
   usually substituted unquoted).
3. ``translate``: the official SAM translator (samtranslator) turns the
   template into plain CloudFormation, with a managed-policy map that needs no
   AWS account.
4. ``Deployer``: a small CloudFormation engine creates the resources through
   the local cloud's own APIs in dependency order, resolving parameters,
   conditions, pseudo parameters and intrinsic functions. (moto's CloudFormation
   was not used: it creates state machines in ``stepfunctions_backends``, not in
   the parser backend that executes them, and ignores a table's
   TimeToLiveSpecification and a function's LoggingConfig.)
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

LOG = logging.getLogger("localcloud.stack")

ARTIFACTS_BUCKET = "localcloud-artifacts"
RUST_BUILD_METHOD = "rust-cargolambda"


class StackError(Exception):
    """The template cannot be deployed; the message says why."""


# --------------------------------------------------------------------------
# build


def template_has_rust_functions(template: dict[str, Any]) -> bool:
    return any(
        (res.get("Metadata") or {}).get("BuildMethod") == RUST_BUILD_METHOD
        for res in template.get("Resources", {}).values()
    )


def build_functions(project_dir: Path, venv_bin: Path) -> None:
    """``cargo lambda build --release`` in the cargo workspace, as ``sam build``
    does for rust-cargolambda functions; a no-op in about a second when the
    binaries are up to date. Output goes to stderr (stdout is for the ready line)."""
    cargo_lambda = venv_bin / "cargo-lambda"
    if not cargo_lambda.exists():
        found = shutil.which("cargo-lambda")
        if not found:
            raise StackError("cargo-lambda not found (expected in .venv/bin; run scripts/bootstrap)")
        cargo_lambda = Path(found)
    env = dict(os.environ)
    # cargo-lambda finds zig through the venv's python (the ziglang package).
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    command = [str(cargo_lambda), "lambda", "build", "--release"]
    LOG.info("building functions: %s", " ".join(command))
    process = subprocess.Popen(command, cwd=project_dir, env=env, stdout=2, start_new_session=True)
    try:
        code = process.wait()
    except BaseException:
        # Interrupted (SIGINT/SIGTERM): take cargo and its rustc children down too.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if code != 0:
        raise StackError(f"cargo lambda build failed with exit status {code}")


# --------------------------------------------------------------------------
# package


def load_template(path: Path) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(path.read_text())


def rust_bootstrap_path(code_dir: Path, binary: str, stop_at: Path) -> Path:
    """Where cargo-lambda puts a binary: ``<target dir>/lambda/<binary>/bootstrap``,
    the target dir being that of the workspace holding CodeUri (CodeUri itself or
    one of its parents, not above the template's directory)."""
    candidates = [code_dir, *code_dir.parents]
    for directory in candidates:
        path = directory / "target" / "lambda" / binary / "bootstrap"
        if path.exists():
            return path
        if directory == stop_at:
            break
    return code_dir / "target" / "lambda" / binary / "bootstrap"


def _zip(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    # Fastest deflate level: packages are unpacked again at once and start-up time counts.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, (data, mode) in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=1)
    return buffer.getvalue()


def function_package(logical_id: str, resource: dict[str, Any], code_path: Path, template_dir: Path) -> bytes:
    """The zip ``sam package`` would upload for one function."""
    metadata = resource.get("Metadata") or {}
    if metadata.get("BuildMethod") == RUST_BUILD_METHOD:
        binary = (metadata.get("BuildProperties") or {}).get("Binary")
        if not binary:
            raise StackError(f"{logical_id}: Metadata.BuildProperties.Binary is required for {RUST_BUILD_METHOD}")
        bootstrap = rust_bootstrap_path(code_path, binary, template_dir).resolve()
        if bootstrap.exists():
            # The package holds a copy of the binary, as `sam package` uploads one: rebuilding while
            # the cloud runs neither changes the deployed functions nor fails on a busy executable.
            return _zip({"bootstrap": (bootstrap.read_bytes(), 0o755)})
        LOG.warning("%s: %s does not exist yet (build with cargo lambda build --release)", logical_id, bootstrap)
        launcher = (
            "#!/bin/sh\n"
            f"# localcloud package of {logical_id}: the build output was missing at deploy time\n"
            f'if [ ! -x "{bootstrap}" ]; then echo "{bootstrap} is missing: run cargo lambda build --release" >&2; exit 127; fi\n'
            f'exec "{bootstrap}" "$@"\n'
        )
        return _zip({"bootstrap": (launcher.encode(), 0o755)})
    if code_path.is_file() and code_path.suffix in (".zip", ".jar"):
        return code_path.read_bytes()
    if code_path.is_dir():
        files = {}
        for path in sorted(code_path.rglob("*")):
            if path.is_file():
                files[str(path.relative_to(code_path))] = (path.read_bytes(), path.stat().st_mode & 0o777)
        return _zip(files)
    raise StackError(f"{logical_id}: CodeUri {code_path} does not exist")


def package(template: dict[str, Any], template_dir: Path, s3: Any, stack_name: str) -> dict[str, Any]:
    """Upload local code and state machine definitions; return the template
    pointing at the uploads (a copy; the input is not modified)."""
    template = json.loads(json.dumps(template))
    resources = template.get("Resources", {})
    globals_function = (template.get("Globals") or {}).get("Function") or {}
    default_code_uri = globals_function.pop("CodeUri", None)
    region = s3.meta.region_name
    # Outside us-east-1, S3 wants the bucket's Region named (CreateBucket, LocationConstraint).
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET, **where)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise

    def upload(key_stem: str, data: bytes) -> dict[str, str]:
        key = f"{stack_name}/{key_stem}-{hashlib.sha256(data).hexdigest()[:16]}"
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=data)
        return {"Bucket": ARTIFACTS_BUCKET, "Key": key}

    for logical_id, resource in resources.items():
        props = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            code_uri = props.get("CodeUri", default_code_uri)
            if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
                data = function_package(logical_id, resource, (template_dir / code_uri).resolve(), template_dir.resolve())
                props["CodeUri"] = upload(f"{logical_id}.zip", data)
            elif code_uri is not None:
                props["CodeUri"] = code_uri
        elif resource.get("Type") == "AWS::Serverless::StateMachine":
            uri = props.get("DefinitionUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                path = template_dir / uri
                if not path.is_file():
                    raise StackError(f"{logical_id}: DefinitionUri {path} does not exist")
                props["DefinitionUri"] = upload(path.name, path.read_bytes())
    return template


# --------------------------------------------------------------------------
# translate


class _OfflineManagedPolicyMap(dict):
    """samtranslator resolves managed-policy names it does not bundle by asking
    IAM; offline, a name stands for the AWS managed policy of that name."""

    def get(self, name: str, default: Any = None) -> Any:  # noqa: ARG002
        return f"arn:aws:iam::aws:policy/{name}"


def translate(template: dict[str, Any], parameter_values: dict[str, Any], region: str) -> dict[str, Any]:
    if "Transform" not in template:
        return template
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        return translator.translate(
            json.loads(json.dumps(template)),
            parameter_values=dict(parameter_values),
            get_managed_policy_map=_OfflineManagedPolicyMap,
        )
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise StackError(f"SAM translation failed: {causes}") from exc


# --------------------------------------------------------------------------
# intrinsic functions


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass
class Physical:
    """A created resource as CloudFormation sees it: Ref value and attributes."""

    type: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)


class Resolver:
    """CloudFormation intrinsic functions over a template's parameters,
    conditions and already created resources."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any], pseudo: dict[str, Any]):
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self.resources: dict[str, Physical] = {}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definition = self.template.get("Conditions", {}).get(name)
            if definition is None:
                raise StackError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(definition))
        return self._conditions[name]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            handler = self._FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.resources[name].ref
        raise StackError(f"Ref to unknown or not yet created {name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        physical = self.resources.get(logical_id)
        if physical is None:
            raise StackError(f"GetAtt {logical_id}.{attribute}: no such resource")
        if attribute not in physical.attributes:
            raise StackError(f"GetAtt {logical_id}.{attribute}: {physical.type} has no attribute {attribute} here")
        return physical.attributes[attribute]

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], self.resolve(arg[1])
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] in self.resources:
                value = self.get_att(*name.split(".", 1))
            else:
                value = self.ref(name)
            return _to_text(value)

        return _SUB_VARIABLE.sub(replace, text)

    def _get_att(self, arg: Any) -> Any:
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        return self.get_att(logical_id, self.resolve(attribute))

    def _join(self, arg: list[Any]) -> str:
        delimiter, values = arg
        return delimiter.join(_to_text(v) for v in self.resolve(values))

    def _select(self, arg: list[Any]) -> Any:
        index, values = self.resolve(arg)
        return values[int(index)]

    def _split(self, arg: list[Any]) -> list[str]:
        delimiter, text = self.resolve(arg)
        return text.split(delimiter)

    def _if(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, arg: list[Any]) -> bool:
        left, right = self.resolve(arg)
        # CloudFormation compares the string forms (a Number parameter is a string).
        return _to_text(left) == _to_text(right)

    def _find_in_map(self, arg: list[Any]) -> Any:
        name, top, second = self.resolve(arg)
        return self.template["Mappings"][name][top][second]

    _FUNCTIONS: dict[str, Callable[["Resolver", Any], Any]] = {
        "Ref": lambda self, arg: self.ref(arg),
        "Fn::GetAtt": _get_att,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": lambda self, arg: not self.resolve(arg[0]),
        "Fn::And": lambda self, arg: all(self.resolve(c) for c in arg),
        "Fn::Or": lambda self, arg: any(self.resolve(c) for c in arg),
        "Condition": lambda self, arg: self.condition(arg),
        "Fn::FindInMap": _find_in_map,
        "Fn::Base64": lambda self, arg: base64.b64encode(_to_text(self.resolve(arg)).encode()).decode(),
        "Fn::GetAZs": lambda self, arg: [f"{self.pseudo['AWS::Region']}{z}" for z in "abc"],
        "Fn::ToJsonString": lambda self, arg: json.dumps(self.resolve(arg)),
        "Fn::Length": lambda self, arg: len(self.resolve(arg)),
    }


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def references(node: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value.split(".", 1)[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                for name in _SUB_VARIABLE.findall(text):
                    if not name.startswith("!"):
                        found.add(name.split(".", 1)[0])
                if isinstance(value, list):
                    found |= references(value[1])
            else:
                found |= references(value)
    return found


# --------------------------------------------------------------------------
# deploy


@dataclass
class DeployedStack:
    name: str
    template: dict[str, Any]  # the translated CloudFormation template
    parameters: dict[str, Any]
    resources: dict[str, Physical]
    outputs: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {
            "StackName": self.name,
            "Parameters": self.parameters,
            "Outputs": self.outputs,
            "Resources": {
                logical_id: {"Type": p.type, "PhysicalResourceId": _to_text(p.ref)}
                for logical_id, p in self.resources.items()
            },
        }


class Deployer:
    """Creates a CloudFormation template's resources through the AWS APIs."""

    def __init__(
        self,
        client: Callable[[str], Any],
        stack_name: str,
        region: str,
        account_id: str,
        on_function: Callable[[str, dict[str, Any]], None] | None = None,
    ):
        self.client = client
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        # Told about each function's LoggingConfig (moto's Lambda drops it).
        self.on_function = on_function or (lambda name, logging_config: None)

    # -- parameters and order -------------------------------------------------

    def parameter_values(self, template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        declared = template.get("Parameters", {})
        unknown = set(overrides) - set(declared)
        if unknown:
            raise StackError(f"parameters not declared by the template: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                value = _to_text(overrides[name])
            elif "Default" in spec:
                value = _to_text(spec["Default"])
            else:
                raise StackError(f"parameter {name} has no default and no value was given")
            allowed = spec.get("AllowedValues")
            if allowed and value not in [_to_text(a) for a in allowed]:
                raise StackError(f"parameter {name}={value!r} is not one of {allowed}")
            if spec.get("Type") == "Number":
                try:
                    number = float(value)
                except ValueError:
                    raise StackError(f"parameter {name}={value!r} is not a number") from None
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    raise StackError(f"parameter {name}={value} is below its MinValue {spec['MinValue']}")
                if "MaxValue" in spec and number > float(spec["MaxValue"]):
                    raise StackError(f"parameter {name}={value} is above its MaxValue {spec['MaxValue']}")
            if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
                raise StackError(f"parameter {name}={value!r} does not match {spec['AllowedPattern']}")
            if spec.get("Type") in ("CommaDelimitedList", "List<Number>") or str(spec.get("Type", "")).startswith("List<"):
                values[name] = value.split(",") if value else [""]
            else:
                values[name] = value
        return values

    def pseudo_parameters(self) -> dict[str, Any]:
        stack_id_suffix = hashlib.sha1(self.stack_name.encode()).hexdigest()
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/{stack_id_suffix[:8]}-{stack_id_suffix[8:12]}-{stack_id_suffix[12:16]}-{stack_id_suffix[16:20]}-{stack_id_suffix[20:32]}",
            "AWS::NotificationARNs": [],
        }

    @staticmethod
    def creation_order(resources: dict[str, Any]) -> list[str]:
        dependencies: dict[str, set[str]] = {}
        for logical_id, resource in resources.items():
            depends_on = resource.get("DependsOn", [])
            depends = set([depends_on] if isinstance(depends_on, str) else depends_on)
            depends |= references(resource.get("Properties", {}))
            dependencies[logical_id] = {d for d in depends if d in resources}
        order: list[str] = []
        visiting: set[str] = set()

        def visit(logical_id: str) -> None:
            if logical_id in order:
                return
            if logical_id in visiting:
                raise StackError(f"circular dependency through {logical_id}")
            visiting.add(logical_id)
            for dependency in sorted(dependencies[logical_id]):
                visit(dependency)
            visiting.discard(logical_id)
            order.append(logical_id)

        for logical_id in resources:
            visit(logical_id)
        return order

    def generated_name(self, logical_id: str, max_length: int) -> str:
        """CloudFormation's ``<stack>-<logical id>-<suffix>`` for unnamed
        resources, with a suffix that is stable across restarts."""
        digest = hashlib.sha1(f"{self.stack_name}/{logical_id}".encode()).digest()
        suffix = base64.b32encode(digest).decode()[:12]
        room = max_length - len(suffix) - 2
        stack_part = self.stack_name[: max(room // 2, room - len(logical_id))]
        logical_part = logical_id[: room - len(stack_part)]
        return f"{stack_part}-{logical_part}-{suffix}"

    # -- deploy ---------------------------------------------------------------

    def deploy(self, template: dict[str, Any], overrides: dict[str, Any]) -> DeployedStack:
        parameters = self.parameter_values(template, overrides)
        resolver = Resolver(template, parameters, self.pseudo_parameters())
        resources = template.get("Resources", {})
        for logical_id in self.creation_order(resources):
            resource = resources[logical_id]
            condition = resource.get("Condition")
            if condition and not resolver.condition(condition):
                continue
            properties = resolver.resolve(resource.get("Properties", {}))
            handler = _HANDLERS.get(resource["Type"])
            if handler is None:
                LOG.warning("%s: %s is not emulated by the local cloud; skipped", logical_id, resource["Type"])
                continue
            try:
                physical = handler(self, logical_id, properties, resource)
            except ClientError as exc:
                raise StackError(f"{logical_id} ({resource['Type']}): {exc}") from exc
            resolver.resources[logical_id] = physical
            LOG.info("created %s %s", resource["Type"], _to_text(physical.ref))
        outputs = {}
        for name, output in template.get("Outputs", {}).items():
            condition = output.get("Condition")
            if condition and not resolver.condition(condition):
                continue
            outputs[name] = resolver.resolve(output["Value"])
        return DeployedStack(self.stack_name, template, parameters, resolver.resources, outputs)

    # -- resource types -------------------------------------------------------

    def _arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account_id}:{resource}"

    def _iam_role(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        iam = self.client("iam")
        name = props.get("RoleName") or self.generated_name(logical_id, 64)
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "Path": props.get("Path", "/"),
            "AssumeRolePolicyDocument": json.dumps(props.get("AssumeRolePolicyDocument", {})),
        }
        for key in ("Description", "PermissionsBoundary"):
            if key in props:
                kwargs[key] = props[key]
        if "MaxSessionDuration" in props:
            kwargs["MaxSessionDuration"] = int(props["MaxSessionDuration"])
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        role = iam.create_role(**kwargs)["Role"]
        for policy in props.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=_policy_json(policy["PolicyDocument"])
            )
        for policy_arn in props.get("ManagedPolicyArns", []):
            try:
                iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
            except ClientError as exc:
                # moto's snapshot of AWS managed policies may lack a newer one.
                LOG.warning("%s: cannot attach %s: %s", logical_id, policy_arn, exc)
        return Physical("AWS::IAM::Role", name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _iam_policy(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        iam = self.client("iam")
        document = _policy_json(props["PolicyDocument"])
        for role in props.get("Roles", []):
            iam.put_role_policy(RoleName=role, PolicyName=props["PolicyName"], PolicyDocument=document)
        for user in props.get("Users", []):
            iam.put_user_policy(UserName=user, PolicyName=props["PolicyName"], PolicyDocument=document)
        for group in props.get("Groups", []):
            iam.put_group_policy(GroupName=group, PolicyName=props["PolicyName"], PolicyDocument=document)
        physical_id = self.generated_name(logical_id, 128)
        return Physical("AWS::IAM::Policy", physical_id, {"Id": physical_id})

    def _iam_managed_policy(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        iam = self.client("iam")
        name = props.get("ManagedPolicyName") or self.generated_name(logical_id, 128)
        kwargs = {"PolicyName": name, "PolicyDocument": _policy_json(props["PolicyDocument"]), "Path": props.get("Path", "/")}
        if "Description" in props:
            kwargs["Description"] = props["Description"]
        arn = iam.create_policy(**kwargs)["Policy"]["Arn"]
        for role in props.get("Roles", []):
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        return Physical("AWS::IAM::ManagedPolicy", arn, {"PolicyArn": arn})

    def _lambda_function(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        lam = self.client("lambda")
        name = props.get("FunctionName") or self.generated_name(logical_id, 64)
        code = props["Code"]
        kwargs: dict[str, Any] = {
            "FunctionName": name,
            "Role": props["Role"],
            "Code": {k: v for k, v in code.items() if k in ("S3Bucket", "S3Key", "S3ObjectVersion", "ZipFile", "ImageUri")},
            "Timeout": int(props.get("Timeout", 3)),
            "MemorySize": int(props.get("MemorySize", 128)),
            "PackageType": props.get("PackageType", "Zip"),
        }
        for key in ("Runtime", "Handler", "Description", "Architectures", "Layers", "TracingConfig", "LoggingConfig",
                    "EphemeralStorage", "KmsKeyArn", "DeadLetterConfig", "VpcConfig"):
            if key in props:
                kwargs[key] = props[key]
        if "Environment" in props:
            variables = props["Environment"].get("Variables", {})
            kwargs["Environment"] = {"Variables": {k: _to_text(v) for k, v in variables.items()}}
        if props.get("Tags"):
            kwargs["Tags"] = {tag["Key"]: _to_text(tag["Value"]) for tag in props["Tags"]}
        function = lam.create_function(**kwargs)
        if "ReservedConcurrentExecutions" in props:
            lam.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"])
            )
        self.on_function(name, props.get("LoggingConfig") or {})
        return Physical("AWS::Lambda::Function", name, {"Arn": function["FunctionArn"]})

    def _lambda_permission(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        kwargs = {
            "FunctionName": props["FunctionName"],
            "StatementId": logical_id,
            "Action": props["Action"],
            "Principal": props["Principal"],
        }
        for key in ("SourceArn", "SourceAccount", "EventSourceToken", "PrincipalOrgID", "FunctionUrlAuthType"):
            if key in props:
                kwargs[key] = props[key]
        self.client("lambda").add_permission(**kwargs)
        return Physical("AWS::Lambda::Permission", logical_id)

    def _lambda_event_invoke_config(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        # Asynchronous invocation's retries, event age and destinations, which the local
        # cloud's Lambda runtime follows (lambda_concurrency.py).
        config = {k: props[k] for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds") if k in props}
        if "DestinationConfig" in props:
            config["DestinationConfig"] = props["DestinationConfig"]
        self.client("lambda").put_function_event_invoke_config(
            FunctionName=props["FunctionName"], Qualifier=props.get("Qualifier", "$LATEST"), **config
        )
        return Physical("AWS::Lambda::EventInvokeConfig", logical_id)

    def _lambda_version(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        version = self.client("lambda").publish_version(
            FunctionName=props["FunctionName"], Description=props.get("Description", "")
        )
        return Physical("AWS::Lambda::Version", version["FunctionArn"], {"Version": version["Version"]})

    def _lambda_alias(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        alias = self.client("lambda").create_alias(
            FunctionName=props["FunctionName"], Name=props["Name"], FunctionVersion=props["FunctionVersion"]
        )
        return Physical("AWS::Lambda::Alias", alias["AliasArn"])

    def _state_machine(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        sfn = self.client("stepfunctions")
        name = props.get("StateMachineName") or self.generated_name(logical_id, 80)
        if "Definition" in props:
            definition = json.dumps(props["Definition"])
        elif "DefinitionString" in props:
            definition = props["DefinitionString"]
        elif "DefinitionS3Location" in props:
            location = props["DefinitionS3Location"]
            definition = self.client("s3").get_object(Bucket=location["Bucket"], Key=location["Key"])["Body"].read().decode()
        else:
            raise StackError(f"{logical_id}: no definition")
        definition = apply_definition_substitutions(definition, props.get("DefinitionSubstitutions", {}))
        try:
            json.loads(definition)
        except ValueError as exc:
            raise StackError(f"{logical_id}: the definition is not JSON after substitutions: {exc}") from None
        kwargs: dict[str, Any] = {
            "name": name,
            "definition": definition,
            "roleArn": props["RoleArn"],
            "type": props.get("StateMachineType", "STANDARD"),
        }
        if "LoggingConfiguration" in props:
            kwargs["loggingConfiguration"] = _lower_first_keys(props["LoggingConfiguration"])
        if "TracingConfiguration" in props:
            kwargs["tracingConfiguration"] = _lower_first_keys(props["TracingConfiguration"])
        if props.get("Tags"):
            kwargs["tags"] = [{"key": t["Key"], "value": _to_text(t["Value"])} for t in props["Tags"]]
        arn = sfn.create_state_machine(**kwargs)["stateMachineArn"]
        return Physical("AWS::StepFunctions::StateMachine", arn, {"Arn": arn, "Name": name})

    def _events_rule(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        events = self.client("events")
        name = props.get("Name") or self.generated_name(logical_id, 64)
        bus = props.get("EventBusName", "default")
        kwargs: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED"), "EventBusName": bus}
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            kwargs["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        for key in ("ScheduleExpression", "Description", "RoleArn"):
            if key in props:
                kwargs[key] = props[key]
        arn = events.put_rule(**kwargs)["RuleArn"]
        targets = props.get("Targets", [])
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        ref = name if bus == "default" else f"{bus}|{name}"
        return Physical("AWS::Events::Rule", ref, {"Arn": arn})

    def _event_bus_policy(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        """AWS::Events::EventBusPolicy with a Statement (PutPermission with the policy)."""
        bus = props.get("EventBusName", "default")
        sid = props["StatementId"]
        statement = {"Sid": sid, **props["Statement"]}
        self.client("events").put_permission(
            EventBusName=bus, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
        return Physical("AWS::Events::EventBusPolicy", f"{bus}|{sid}")

    def _event_bus(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        arn = self.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        return Physical("AWS::Events::EventBus", props["Name"], {"Arn": arn, "Name": props["Name"]})

    def _dynamodb_table(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        ddb = self.client("dynamodb")
        name = props.get("TableName") or self.generated_name(logical_id, 255)
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in props:
            kwargs["ProvisionedThroughput"] = {k: int(v) for k, v in props["ProvisionedThroughput"].items()}
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification", "SSESpecification",
                    "DeletionProtectionEnabled"):
            if key in props:
                kwargs[key] = props[key]
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        table = ddb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl.get("Enabled", True))},
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr:
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={
                    "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled", False))
                },
            )
        attributes = {"Arn": table["TableArn"]}
        if "LatestStreamArn" in table:
            attributes["StreamArn"] = table["LatestStreamArn"]
        return Physical("AWS::DynamoDB::Table", name, attributes)

    def _log_group(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        logs = self.client("logs")
        name = props.get("LogGroupName") or self.generated_name(logical_id, 512)
        kwargs: dict[str, Any] = {"logGroupName": name}
        if "KmsKeyId" in props:
            kwargs["kmsKeyId"] = props["KmsKeyId"]
        if props.get("Tags"):
            kwargs["tags"] = {t["Key"]: _to_text(t["Value"]) for t in props["Tags"]}
        logs.create_log_group(**kwargs)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        return Physical("AWS::Logs::LogGroup", name, {"Arn": self._arn("logs", f"log-group:{name}:*")})

    def _sqs_queue(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        sqs = self.client("sqs")
        fifo = bool(props.get("FifoQueue"))
        name = props.get("QueueName") or self.generated_name(logical_id, 75 if fifo else 80) + (".fifo" if fifo else "")
        attributes = {
            key: _to_text(value)
            for key, value in props.items()
            if key not in ("QueueName", "Tags")
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        kwargs: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if props.get("Tags"):
            kwargs["tags"] = {t["Key"]: _to_text(t["Value"]) for t in props["Tags"]}
        url = sqs.create_queue(**kwargs)["QueueUrl"]
        arn = self._arn("sqs", name)
        return Physical("AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _sns_topic(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        name = props.get("TopicName") or self.generated_name(logical_id, 256)
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        return Physical("AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": name})

    def _cloudwatch_dashboard(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        # PutDashboard validates the body as CloudWatch does (JSON with widgets); moto keeps it.
        name = props.get("DashboardName") or self.generated_name(logical_id, 255)
        body = props["DashboardBody"]
        json.loads(body)  # "DashboardBody ... A JSON string": a body that is not JSON is refused
        self.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=body)
        return Physical("AWS::CloudWatch::Dashboard", name, {})

    def _cloudwatch_alarm(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        name = props.get("AlarmName") or self.generated_name(logical_id, 255)
        kwargs: dict[str, Any] = {"AlarmName": name}
        for key, value in props.items():
            if key == "AlarmName":
                continue
            if key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
                value = int(value)
            elif key == "Threshold":
                value = float(value)
            elif key == "Dimensions":
                value = [{"Name": d["Name"], "Value": _to_text(d["Value"])} for d in value]
            kwargs[key] = value
        self.client("cloudwatch").put_metric_alarm(**kwargs)
        return Physical("AWS::CloudWatch::Alarm", name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")})

    def _ecr_repository(self, logical_id: str, props: dict[str, Any], _: dict) -> Physical:
        name = props.get("RepositoryName") or self.generated_name(logical_id, 256).lower()
        repo = self.client("ecr").create_repository(repositoryName=name)["repository"]
        return Physical(
            "AWS::ECR::Repository", name, {"Arn": repo["repositoryArn"], "RepositoryUri": repo["repositoryUri"]}
        )


def _policy_json(document: dict[str, Any]) -> str:
    """IAM takes a policy without Version as 2008-10-17 (SAM generates several);
    moto rejects it. Local policies are not enforced, so the current version does."""
    if "Version" not in document:
        document = {"Version": "2012-10-17", **document}
    return json.dumps(document)


def apply_definition_substitutions(definition: str, substitutions: dict[str, Any]) -> str:
    """CloudFormation's DefinitionSubstitutions: ``${key}`` becomes the value's
    text (unquoted numbers stay numbers). Unknown ``${...}`` are left alone, as
    CloudFormation does."""
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", _to_text(value))
    return definition


def _lower_first_keys(node: Any) -> Any:
    """CloudFormation's StepFunctions properties are PascalCase, the API's camelCase."""
    if isinstance(node, list):
        return [_lower_first_keys(item) for item in node]
    if isinstance(node, dict):
        return {key[0].lower() + key[1:]: _lower_first_keys(value) for key, value in node.items()}
    return node


_HANDLERS: dict[str, Callable[[Deployer, str, dict[str, Any], dict[str, Any]], Physical]] = {
    "AWS::IAM::Role": Deployer._iam_role,
    "AWS::IAM::Policy": Deployer._iam_policy,
    "AWS::IAM::ManagedPolicy": Deployer._iam_managed_policy,
    "AWS::Lambda::Function": Deployer._lambda_function,
    "AWS::Lambda::Permission": Deployer._lambda_permission,
    "AWS::Lambda::EventInvokeConfig": Deployer._lambda_event_invoke_config,
    "AWS::Lambda::Version": Deployer._lambda_version,
    "AWS::Lambda::Alias": Deployer._lambda_alias,
    "AWS::StepFunctions::StateMachine": Deployer._state_machine,
    "AWS::Events::Rule": Deployer._events_rule,
    "AWS::Events::EventBus": Deployer._event_bus,
    "AWS::Events::EventBusPolicy": Deployer._event_bus_policy,
    "AWS::DynamoDB::Table": Deployer._dynamodb_table,
    "AWS::Logs::LogGroup": Deployer._log_group,
    "AWS::SQS::Queue": Deployer._sqs_queue,
    "AWS::SNS::Topic": Deployer._sns_topic,
    "AWS::ECR::Repository": Deployer._ecr_repository,
    "AWS::CloudWatch::Dashboard": Deployer._cloudwatch_dashboard,
    "AWS::CloudWatch::Alarm": Deployer._cloudwatch_alarm,
}


def deploy_template(
    template_path: Path,
    client: Callable[[str], Any],
    parameters: dict[str, Any],
    stack_name: str,
    region: str,
    account_id: str,
    on_function: Callable[[str, dict[str, Any]], None] | None = None,
) -> DeployedStack:
    """Package, translate and deploy a SAM (or plain CloudFormation) template."""
    template = load_template(template_path)
    deployer = Deployer(client, stack_name, region, account_id, on_function)
    # Validate the overrides before any upload, with the same rules as the deploy.
    parameter_values = deployer.parameter_values(template, parameters)
    packaged = package(template, template_path.parent, client("s3"), stack_name)
    sam_values = {k: ",".join(v) if isinstance(v, list) else v for k, v in parameter_values.items()}
    translated = translate(packaged, sam_values, region)
    return deployer.deploy(translated, parameters)
