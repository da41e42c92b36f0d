"""The files that point ``sam local invoke`` and ``sam local start-lambda`` at the local cloud.

SAM hands a function only the environment variables its template declares: an ``--env-vars``
file cannot add any (samcli/local/lambdafn/env_vars.py), and the region and credentials are the
SAM CLI's own, the same for every function. The template in the repository must not declare
``AWS_ENDPOINT_URL``: an empty one makes the Rust SDK panic ("URL was unset"), and SAM turns every
intrinsic it cannot resolve (``!If`` … ``AWS::NoValue`` too) into an empty string. So the local
cloud writes, into ``<run dir>/sam-local/``:

* ``template.json``: template.yaml with the stack's parameters as defaults, each function's
  CodeUri on its ``sam build`` output, and every function declaring the variables below;
* ``env.json``: for each function, its variables as the stack deployed them (SAM would resolve
  ``!Ref StateTable`` to "StateTable" and AWS::URLSuffix to "localhost"), the local cloud's
  endpoint as containers reach it (a forwarder on the engine's bridge: SAM runs containers there,
  not in the host's network), the region and temporary credentials of the function's own role (so
  the local cloud's IAM evaluates its calls as AWS would).

    sam local invoke PlanFunction -e events/manual-deploy.json \\
      --template .localcloud/sam-local/template.json --env-vars .localcloud/sam-local/env.json \\
      --skip-pull-image
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

from .iam import mint_role_credentials
from .stack import load_template

# Declared for every function in template.json, set for each in env.json.
LOCAL_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_EC2_METADATA_DISABLED", "AWS_REGION", "AWS_DEFAULT_REGION",
                   "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def function_names(template: dict[str, Any]) -> list[str]:
    return sorted(name for name, resource in template["Resources"].items() if resource["Type"] == "AWS::Serverless::Function")


def bridge_gateway() -> str:
    """This machine's address on the container engine's default bridge, where SAM runs every
    function (Docker's docker0, podman's cni-podman0): 127.0.0.1 in a container is the container."""
    import docker

    return docker.from_env(timeout=10).networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]


class Forwarder:
    """Forwards connections from the bridge's gateway to the local cloud on 127.0.0.1, so that
    functions in containers reach it while it listens on 127.0.0.1 only."""

    def __init__(self, target_port: int, host: str | None = None):
        self.target_port = target_port
        self.listener = socket.create_server((host or bridge_gateway(), 0))
        self.host, self.port = self.listener.getsockname()[:2]
        threading.Thread(target=self._accept, name="sam-local-forwarder", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self.listener.close()


def write_sam_local_files(cloud: Any, endpoint: str, template_path: Path, build_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Writes template.json and env.json for the cloud's deployed stack, the functions calling
    `endpoint` (a Forwarder's); returns their paths."""
    stack = cloud.stack
    template = load_template(template_path)
    # The deployed stack's parameters (its poll interval, ...): no --parameter-overrides needed. The
    # functions are the x86_64 `sam build`, as everywhere on the local cloud.
    for key, value in {**stack.parameters, "Architecture": "x86_64"}.items():
        if key in template.get("Parameters", {}):
            template["Parameters"][key]["Default"] = ",".join(value) if isinstance(value, list) else str(value)
    lambda_ = cloud.client("lambda")
    env: dict[str, dict[str, str]] = {}
    for name in function_names(template):
        resource = template["Resources"][name]
        resource.pop("Metadata", None)  # already built: SAM must not look for a build method
        properties = resource["Properties"]
        properties["CodeUri"] = str(build_dir / name)
        variables = properties.setdefault("Environment", {}).setdefault("Variables", {})
        for key in LOCAL_VARIABLES:
            variables.setdefault(key, "")
        # The variables as the stack deployed them: SAM resolves neither `!Ref StateTable` (to
        # "StateTable") nor AWS::URLSuffix (to "localhost") as CloudFormation does.
        deployed = lambda_.get_function_configuration(FunctionName=stack.resources[name].ref)
        credentials = mint_role_credentials(deployed["Role"], name, cloud.region)
        env[name] = {
            **deployed.get("Environment", {}).get("Variables", {}),
            "AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REGION": cloud.region, "AWS_DEFAULT_REGION": cloud.region,
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    template_out, env_out = out_dir / "template.json", out_dir / "env.json"
    template_out.write_text(json.dumps(template, indent=1))
    env_out.write_text(json.dumps(env, indent=1))
    return template_out, env_out
