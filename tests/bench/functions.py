"""deckhand's functions as template.yaml declares them (binary, environment, memory) and their
release bootstraps (size, zip size)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STACK = "deckhand"


@dataclass(frozen=True)
class FunctionSpec:
    binary: str  # cargo bin name = target/lambda/<binary>/bootstrap
    logical_id: str
    environment: dict[str, str]  # the template's variables, resolved with parameter defaults
    memory_mb: int
    timeout_s: int
    log_format: str  # LoggingConfig.LogFormat (Lambda sets AWS_LAMBDA_LOG_FORMAT=JSON for JSON)

    def bootstrap(self, target_dir: Path | None = None) -> Path:
        return (target_dir or ROOT / "target") / "lambda" / self.binary / "bootstrap"


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse  # what the local cloud's deployer uses

    return yaml_parse(path.read_text())


class _Resolver:
    """Just enough CloudFormation to turn the template's environment values into strings:
    parameters take their defaults, pseudo parameters fixed values, resources their
    stack-style physical names."""

    PSEUDO = {"AWS::AccountId": ACCOUNT_ID, "AWS::Region": REGION, "AWS::URLSuffix": "amazonaws.com",
              "AWS::Partition": "aws", "AWS::StackName": STACK}

    def __init__(self, template: dict[str, Any], overrides: dict[str, str] | None = None):
        self.parameters = {k: (v or {}).get("Default", "") for k, v in template.get("Parameters", {}).items()}
        self.parameters.update(overrides or {})
        self.types = {k: (v or {}).get("Type", "") for k, v in template.get("Parameters", {}).items()}
        self.resources = template.get("Resources", {})

    def __call__(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg in self.PSEUDO:
                    return self.PSEUDO[arg]
                if arg in self.parameters:
                    value = self.parameters[arg]
                    if self.types.get(arg) == "CommaDelimitedList":
                        return [v for v in str(value).split(",") if v] if isinstance(value, str) else list(value)
                    return str(value)
                return f"{STACK}-{arg}"  # a resource: its physical name/ARN does not matter here
            if key == "Fn::Join":
                separator, items = arg
                values = self(items)
                flat: list[str] = []
                for value in values if isinstance(values, list) else [values]:
                    flat.extend(value if isinstance(value, list) else [str(value)])
                return separator.join(flat)
            if key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                for name, value in {**self.PSEUDO, **self.parameters}.items():
                    text = text.replace("${" + name + "}", str(value))
                return text
            if key == "Fn::GetAtt":
                return f"{STACK}-{arg if isinstance(arg, str) else '.'.join(arg)}"
        if isinstance(node, list):
            return [self(n) for n in node]
        return node


def functions(template_path: Path = TEMPLATE, overrides: dict[str, str] | None = None) -> list[FunctionSpec]:
    template = load_template(template_path)
    resolve = _Resolver(template, overrides)
    globals_ = (template.get("Globals") or {}).get("Function", {})
    specs = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = ((resource.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        if not binary:
            continue
        props = resource.get("Properties", {})
        env: dict[str, str] = {}
        for source in (globals_, props):
            for key, value in ((source.get("Environment") or {}).get("Variables") or {}).items():
                resolved = resolve(value)
                env[key] = ",".join(resolved) if isinstance(resolved, list) else str(resolved)
        specs.append(FunctionSpec(
            binary=binary,
            logical_id=logical_id,
            environment=env,
            memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            timeout_s=int(props.get("Timeout", globals_.get("Timeout", 3))),
            log_format=str((props.get("LoggingConfig") or {}).get("LogFormat", "Text")),
        ))
    return specs


def zip_size(path: Path) -> int:
    """Size of the deployment package: the bootstrap alone in a deflated zip (what
    `sam build`/`cargo lambda build --output-format zip` upload)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, path.read_bytes())
    return len(buffer.getvalue())


MB = 1_000_000  # sizes in decimal megabytes, as AWS quotes package limits
