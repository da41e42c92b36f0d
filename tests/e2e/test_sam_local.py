"""`sam local invoke` and `sam local start-lambda`, the way deckhand's users run them, against the
local cloud: every sample in events/, then a service deployed and rolled back one function call at
a time, each step fed what the state machine would feed it.

Needs a container engine (`eval "$(scripts/engine prepare)"`, which scripts/test runs: Docker when
one answers, podman otherwise) and the x86_64 `sam build` in .aws-sam/build. Without either, these
tests fail saying what is missing; they never skip.

The functions run from the files the local cloud writes for `sam local` (tests/localcloud/sam_local.py):
each with temporary credentials of its own role, so the local cloud evaluates every call against
that role's policies from template.yaml as AWS would, and reaching the cloud through a forwarder
on the container bridge.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from localcloud.sam_local import Forwarder, function_names, write_sam_local_files
from localcloud.stack import load_template
from polling import free_port, wait_for_port
from samples import EVENTS, EXPECTED, SIGNAL_SAMPLES

from .aws import ACCOUNT, REGION, Api, Aws, EventQueue, api_service, unique, wait_until

ROOT = Path(__file__).resolve().parents[2]
BUILT_TEMPLATE = ROOT / ".aws-sam" / "build" / "template.yaml"
FUNCTIONS = function_names(load_template(ROOT / "template.yaml"))
# No registry is reachable here: podman has the stand-in base image (scripts/engine).
SAM_LOCAL_OPTIONS = ["--skip-pull-image"]

pytestmark = pytest.mark.timeout(900)


def engine_problem() -> str | None:
    """What keeps `sam local` from running containers, or None."""
    import docker

    host = os.environ.get("DOCKER_HOST", "the default Docker socket")
    try:
        docker.from_env(timeout=10).ping()
    except Exception as error:  # noqa: BLE001  (any failure means: no engine)
        return (f"no container engine answers at {host} ({error.__class__.__name__}): "
                'run `eval "$(scripts/engine prepare)"` (scripts/test does) or start Docker')
    return None


def build_problem() -> str | None:
    """What is wrong with the x86_64 `sam build` the tests invoke, or None."""
    hint = "run `sam build --parameter-overrides Architecture=x86_64 --build-in-source` (scripts/test does)"
    if not BUILT_TEMPLATE.exists():
        return f"{BUILT_TEMPLATE.relative_to(ROOT)} is missing: {hint}"
    for function in FUNCTIONS:
        bootstrap = BUILT_TEMPLATE.parent / function / "bootstrap"
        if not bootstrap.exists():
            return f"{bootstrap.relative_to(ROOT)} is missing: {hint}"
        # ELF e_machine 0x3e is x86-64: the local cloud's containers run x86_64.
        if bootstrap.read_bytes()[18:20] != b"\x3e\x00":
            return f"{bootstrap.relative_to(ROOT)} is not an x86_64 build: {hint}"
    return None


class SamLocal:
    """`sam local` against the local cloud, through the files the local cloud writes for it
    (tests/localcloud/sam_local.py): each function with its own role's credentials."""

    def __init__(self, cloud: Any, forwarder: Forwarder, workdir: Path):
        self.cloud = cloud
        self.workdir = workdir
        self.template, self.env_vars = write_sam_local_files(cloud, forwarder.endpoint, ROOT / "template.yaml",
                                                             BUILT_TEMPLATE.parent, workdir)
        # The SAM CLI pinned in .venv, next to the Python running the tests.
        venv_sam = Path(sys.executable).parent / "sam"
        self.sam = str(venv_sam) if venv_sam.exists() else shutil.which("sam") or "sam"
        # The functions get their credentials from env.json. SAM itself asks STS for the account
        # (4 s lost to a timeout, outside this machine, without an endpoint) and must look for no
        # credentials in the EC2 metadata service: it talks to the local cloud too.
        self.environment = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                            "AWS_ENDPOINT_URL": cloud.endpoint, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "sam-cli",
                            "AWS_SECRET_ACCESS_KEY": "sam-cli", "AWS_EC2_METADATA_DISABLED": "true", "SAM_CLI_TELEMETRY": "0"}

    def options(self, env_vars: Path | None = None) -> list[str]:
        return ["--template", str(self.template), "--env-vars", str(env_vars or self.env_vars), *SAM_LOCAL_OPTIONS]

    def invoke(self, function: str, event: Any = None, event_file: Path | None = None, env_vars: Path | None = None) -> dict:
        """The function's answer to one `sam local invoke` (an error is {"errorType": ..., ...})."""
        if event_file is None:
            event_file = self.workdir / f"{function}-{uuid.uuid4().hex[:8]}.json"
            event_file.write_text(json.dumps(event))
        result = subprocess.run(
            [self.sam, "local", "invoke", function, "--event", str(event_file), *self.options(env_vars)],
            cwd=ROOT, env=self.environment, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, f"sam local invoke {function} failed:\n{result.stderr[-3000:]}"
        # The answer is the last line of stdout; the function's and SAM's logs go to stderr.
        lines = result.stdout.strip().splitlines()
        assert lines, f"sam local invoke {function} printed no answer:\n{result.stderr[-3000:]}"
        return json.loads(lines[-1])


@pytest.fixture(scope="module")
def sam_local(localcloud: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamLocal]:
    problem = engine_problem() or build_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    forwarder = Forwarder(localcloud.port)
    try:
        yield SamLocal(localcloud, forwarder, tmp_path_factory.mktemp("sam-local"))
    finally:
        forwarder.close()


# ------------------------------------------------------------------------------------ samples


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_plan_answers_each_sample(sam_local: SamLocal, sample: str) -> None:
    kind, expected = EXPECTED[sample]
    answer = sam_local.invoke("PlanFunction", event_file=EVENTS / sample)
    if kind == "action":
        assert answer.get("action") == expected, answer
    else:
        assert answer.get("errorType") == expected, answer


@pytest.mark.parametrize("sample", SIGNAL_SAMPLES)
def test_signal_answers_each_ecs_event_sample(sam_local: SamLocal, sample: str) -> None:
    answer = sam_local.invoke("SignalFunction", event_file=EVENTS / sample)
    assert answer.get("woke") is False and "no rollout" in answer.get("ignored", ""), answer


# ------------------------------------------------------------------------------------ step by step


class Execution:
    """One deployment driven by hand: the state machine's steps, each a `sam local invoke` fed
    what the state machine passes (Parameters) and its answer stored where the state stores it
    (ResultPath), as a user debugging a deployment would."""

    def __init__(self, sam: SamLocal, request: dict):
        self.sam = sam
        self.arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:deckhand-deploy:{unique('sam-local')}"
        # The service's own execution (started by the fan-out's Map): it holds the lock.
        self.service_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:deckhand-service:{unique('sam-local')}"
        started = datetime.datetime.now(datetime.timezone.utc).isoformat()
        execution = {"arn": self.arn, "startTime": started}
        fan = sam.invoke("PlanFunction", {"request": request, "execution": execution})
        assert fan.get("action") in ("deploy", "rollback") and len(fan["services"]) == 1, fan
        # "Plan service": the service execution plans its own target again.
        self.plan = sam.invoke("PlanFunction", {"request": request, "execution": execution,
                                                "service": fan["services"][0], "pushedAt": fan["pushedAt"]})
        assert len(self.plan["targets"]) == 1, self.plan
        target = self.plan["targets"][0]
        recheck = {"recheckSeconds": target["policy"]["recheckSeconds"]}
        # The "Start watching" state.
        self.branch: dict[str, Any] = {"target": target, "executionArn": self.service_arn, "parentExecutionArn": self.arn,
                                       "rollout": {}, "health": recheck, "failure": {}, "rollback": {},
                                       "rollbackHealth": dict(recheck), "rollbackFailure": {}, "lock": {}}

    def step(self, function: str, parameters: dict, result_path: str | None) -> dict:
        answer = self.sam.invoke(function, parameters)
        assert "errorType" not in answer, f"{function}: {answer}"
        if result_path:
            self.branch[result_path] = answer
        return answer

    def lock(self, action: str, **extra: Any) -> dict:
        return self.step("LockFunction", {"action": action, "target": self.branch["target"], "executionArn": self.service_arn, **extra},
                         "lock" if action == "acquire" else None)

    def notify(self, status: str) -> dict:
        return self.step("NotifyFunction", {"status": status, "branch": self.branch}, None)

    def until_verdict(self, rollout: str, health: str, timeout: float = 120) -> str:
        """Check rollout health (or rollback health) until it is conclusive, as the state machine's
        re-checks do (its waits on ECS events are the signal function's, tested end to end)."""
        def conclusive() -> str | None:
            parameters = {"target": self.branch["target"], "rollout": self.branch[rollout], "health": self.branch[health]}
            if health == "health":
                parameters["lock"] = self.branch["lock"]
            verdict = self.step("CheckFunction", parameters, health).get("verdict")
            return verdict if verdict in ("HEALTHY", "FAILED", "SUPERSEDED") else None
        return wait_until(f"a conclusive {health} check", conclusive, timeout, interval=1)

    def finish(self, status: str, outcome: str) -> dict:
        self.branch["final"] = {"status": status, "outcome": outcome}
        return self.notify(status)


@pytest.fixture(scope="module")
def api(aws: Aws) -> Api:
    """A service running a verified revision of REPO:main. The pushes below are tagged v*: the
    ECR push rule's executions find nothing to deploy and leave the manual steps alone."""
    return api_service(aws)


def test_deploy_then_roll_back_step_by_step(sam_local: SamLocal, aws: Aws, events: EventQueue, api: Api) -> None:
    cluster, name, repository = api.cluster, api.service, api.repository
    sam_local.cloud.iam.denials.clear()  # earlier tests' refusals (the cloud is shared) are not ours

    # A healthy image: plan, lock, announce, deploy, check until healthy, record known-good, publish.
    v2 = aws.push(repository, "v2")
    good = Execution(sam_local, {"cluster": cluster, "service": name, "image": f"{repository}:v2"})
    assert good.lock("acquire")["decision"] == "ACQUIRED", good.branch["lock"]
    good.notify("STARTED")
    rollout = good.step("DeployFunction", {"target": good.branch["target"], "lock": good.branch["lock"]}, "rollout")
    assert rollout["taskDefinition"] != api.good_revision, rollout
    assert good.until_verdict("rollout", "health") == "HEALTHY", good.branch["health"]
    good.lock("release", verifiedTaskDefinition=rollout["taskDefinition"])
    good.finish("SUCCEEDED", "ok")
    assert aws.running_images(cluster, name) == {"web": aws.pinned(repository, v2)}
    assert events.statuses(good.arn) == ["STARTED", "SUCCEEDED"]

    # An image that never passes its health checks: the check fails the rollout, and rollback
    # returns the service to v2, the revision just verified.
    aws.push(repository, "v3", health="unhealthy")
    bad = Execution(sam_local, {"cluster": cluster, "service": name, "image": f"{repository}:v3"})
    assert bad.lock("acquire")["decision"] == "ACQUIRED", bad.branch["lock"]
    bad.notify("STARTED")
    failed = bad.step("DeployFunction", {"target": bad.branch["target"], "lock": bad.branch["lock"]}, "rollout")
    assert bad.until_verdict("rollout", "health") == "FAILED", bad.branch["health"]
    rollback = bad.step("RollbackFunction", {"target": bad.branch["target"], "failed": failed, "lock": bad.branch["lock"]}, "rollback")
    assert rollback["taskDefinition"] == rollout["taskDefinition"], rollback
    assert bad.until_verdict("rollback", "rollbackHealth") == "HEALTHY", bad.branch["rollbackHealth"]
    bad.lock("release", verifiedTaskDefinition=rollback["taskDefinition"])
    bad.finish("ROLLED_BACK", "rolledBack")
    assert aws.running_images(cluster, name) == {"web": aws.pinned(repository, v2)}
    assert set(aws.target_states(api.group)) == {"healthy"}
    assert events.statuses(bad.arn) == ["STARTED", "ROLLED_BACK"]

    # Every call the functions made was evaluated against their own roles, and allowed.
    assert not list(sam_local.cloud.iam.denials), list(sam_local.cloud.iam.denials)


def test_functions_calls_are_evaluated_against_their_own_role(sam_local: SamLocal, api: Api) -> None:
    # Plan's role may not register task definitions: Deploy run with Plan's credentials is refused,
    # so the credentials in env.json are what the local cloud's IAM evaluates.
    sam_local.cloud.iam.denials.clear()
    env = json.loads(sam_local.env_vars.read_text())
    env["DeployFunction"].update({k: v for k, v in env["PlanFunction"].items() if k.startswith("AWS_")})
    as_plan = sam_local.workdir / "env-deploy-as-plan.json"
    as_plan.write_text(json.dumps(env))
    execution = Execution(sam_local, {"cluster": api.cluster, "service": api.service, "image": f"{api.repository}:main",
                                      "forceNewDeployment": True})
    execution.lock("acquire")
    denied = sam_local.invoke("DeployFunction", {"target": execution.branch["target"], "lock": execution.branch["lock"]},
                              env_vars=as_plan)
    execution.lock("release")
    assert "AccessDenied" in json.dumps(denied), denied
    assert [d.action for d in sam_local.cloud.iam.denials if "PlanFunction" in d.principal] == ["ecs:RegisterTaskDefinition"]
    sam_local.cloud.iam.denials.clear()


# ------------------------------------------------------------------------------------ start-lambda


@pytest.fixture(scope="module")
def start_lambda(sam_local: SamLocal) -> Iterator[int]:
    port = free_port()
    log = open(sam_local.workdir / "start-lambda.log", "w")
    process = subprocess.Popen(
        [sam_local.sam, "local", "start-lambda", "--port", str(port), "--host", "127.0.0.1", *sam_local.options()],
        cwd=ROOT, env=sam_local.environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_port("sam local start-lambda", port, timeout=120, alive=lambda: process.poll() is None)
        yield port
    finally:
        # SIGINT, as Ctrl-C: SAM stops and removes its containers.
        os.killpg(process.pid, 2)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def test_start_lambda_answers_lambda_invoke(start_lambda: int, localcloud: Any) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{start_lambda}", region_name=REGION,
                          aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(read_timeout=300, retries={"max_attempts": 0}))
    answer = client.invoke(FunctionName="PlanFunction", Payload=(EVENTS / "ecr-push.json").read_bytes())
    assert "FunctionError" not in answer, answer
    assert json.loads(answer["Payload"].read())["action"] == "nothing"
    answer = client.invoke(FunctionName="PlanFunction", Payload=(EVENTS / "bad-typo-field.json").read_bytes())
    assert answer.get("FunctionError") == "Unhandled", answer
    assert json.loads(answer["Payload"].read())["errorType"] == "InvalidInput"
