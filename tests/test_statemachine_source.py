"""The state machines SAM deploys (statemachine/*.asl.json) are rendered from their sources
(*.src.json), whose Retry and Catch policies are defined once (policies.json): the rendered files
must be up to date, and every Task shares the policies."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("render", ROOT / "statemachine" / "render.py")
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)  # type: ignore[union-attr]


MACHINES = sorted(render.MACHINES.items())


@pytest.mark.parametrize("source, rendered", MACHINES, ids=[s.name for s, _ in MACHINES])
def test_the_deployed_definition_is_rendered_from_the_source(source: Path, rendered: Path) -> None:
    assert rendered.read_text() == render.rendered_text(source), (
        f"statemachine/{rendered.name} is out of date: run python3 statemachine/render.py"
    )


@pytest.mark.parametrize("source", [s for s, _ in MACHINES], ids=[s.name for s, _ in MACHINES])
def test_no_task_in_the_source_spells_out_a_shared_retry_policy(source: Path) -> None:
    source = json.loads(source.read_text())

    def tasks(states: dict) -> list[tuple[str, dict]]:
        found = []
        for name, state in states.items():
            if state["Type"] == "Task":
                found.append((name, state))
            if state["Type"] == "Map":
                found += tasks(state["ItemProcessor"]["States"])
        return found

    for name, state in tasks(source["States"]):
        assert isinstance(state.get("Retry"), str), f"{name}: Retry must name a policy (\"@retry:...\")"


def test_a_throttle_is_retried_for_minutes_not_seconds() -> None:
    """What the SDK's own retries could not get through waits for the account's buckets to
    refill: the chaos run's "throttling ten times stricter" rounds (DescribeTaskDefinition at 2
    per second for the whole account) ended FAILED with 5 retries up to 30 s apart (about 30 s
    on average with full jitter). Every Retry of AwsThrottled must wait about two minutes on
    average before it gives up."""
    policies = json.loads((ROOT / "statemachine" / "policies.json").read_text())["retry"]
    retries = [r for items in policies.values() for r in items if isinstance(r, dict) and "AwsThrottled" in r["ErrorEquals"]]
    assert retries
    for retry in retries:
        delays = [min(retry["IntervalSeconds"] * retry["BackoffRate"] ** k, retry.get("MaxDelaySeconds", float("inf")))
                  for k in range(retry["MaxAttempts"])]
        mean = sum(delays) / (2 if retry.get("JitterStrategy") == "FULL" else 1)
        assert mean >= 110, f"AwsThrottled gives up after {mean:.0f} s on average: {retry}"


def test_unknown_policy_names_are_refused() -> None:
    broken = {"policies": {"retry": {}}, "States": {"A": {"Type": "Task", "Retry": "@retry:nope"}}}
    with pytest.raises(ValueError, match="unknown retry policy"):
        render.render(broken)
    with pytest.raises(ValueError, match="unknown catch policy"):
        render.render({"policies": {}, "States": {"A": {"Type": "Task", "Catch": [{"@catch": "nope", "Next": "B"}]}}})
    expanded = render.render({"policies": {"retry": {"a": [{"ErrorEquals": ["X"]}], "b": [{"ErrorEquals": ["Y"]}, "@retry:a"]}},
                              "States": {"A": {"Type": "Task", "Retry": "@retry:b"}}})
    assert expanded["States"]["A"]["Retry"] == [{"ErrorEquals": ["Y"]}, {"ErrorEquals": ["X"]}]


CONTRACT_ERRORS = {"InvalidInput", "DeploymentFailed", "DeploymentRolledBack", "RollbackFailed"}


@pytest.mark.parametrize("machine", ["deploy.asl.json", "service.asl.json"])
def test_the_execution_can_only_fail_with_the_errors_of_the_contract(machine: str) -> None:
    """An uncaught error (a plan that timed out reaches Step Functions as Sandbox.Timedout) would
    end the execution with a name the README does not promise."""
    definition = json.loads((ROOT / "statemachine" / machine).read_text())
    for name, state in definition["States"].items():
        if state["Type"] == "Fail":
            assert state["Error"] in CONTRACT_ERRORS, name
        if state["Type"] == "Task":
            caught = [error for catcher in state.get("Catch", []) for error in catcher["ErrorEquals"]]
            assert "States.ALL" in caught, f"{name}: an error would escape the execution under its own name"
        if state["Type"] == "Map":
            assert "Catch" not in state or "States.ALL" in str(state["Catch"]), name


# ------------------------------------------------------------------------------------------
# The graph of each rendered definition: every end publishes, no verdict falls through to a
# wait, every loop pauses, no Choice reads a path that can be absent (issue 20).
# ------------------------------------------------------------------------------------------

RENDERED = {source.name.removesuffix(".src.json"): json.loads(rendered.read_text()) for source, rendered in MACHINES}
SERVICE, DEPLOY = RENDERED["service"], RENDERED["deploy"]
PUBLISH = "Publish deployment event"
CORE = ROOT / "functions" / "core" / "src"


def graphs(definition: dict, where: str = "") -> list[tuple[str, dict, str]]:
    """(where, states, StartAt) of the definition and of every Map's item processor in it."""
    found = [(where or "top level", definition["States"], definition["StartAt"])]
    for name, state in definition["States"].items():
        if state["Type"] == "Map":
            found += graphs(state["ItemProcessor"], f"{where}{name}/")
    return found


def transitions(state: dict) -> list[str]:
    nexts = [state.get("Next"), state.get("Default")]
    nexts += [rule["Next"] for rule in state.get("Choices", [])]
    nexts += [catcher["Next"] for catcher in state.get("Catch", [])]
    return [n for n in nexts if n]


def is_terminal(state: dict) -> bool:
    return state["Type"] in ("Succeed", "Fail") or state.get("End") is True


def pauses(state: dict) -> bool:
    """A Wait state, or a task parked on a task token until its heartbeat or timeout."""
    if state["Type"] == "Wait":
        return True
    return (state["Type"] == "Task" and state.get("Resource", "").endswith(".waitForTaskToken")
            and any(k in state for k in ("HeartbeatSeconds", "HeartbeatSecondsPath", "TimeoutSeconds", "TimeoutSecondsPath")))


def reachable(states: dict, start: str | list[str], without: set[str] = frozenset()) -> set[str]:
    seen: set[str] = set()
    todo = [start] if isinstance(start, str) else list(start)
    while todo:
        name = todo.pop()
        if name in seen or name in without:
            continue
        seen.add(name)
        todo += transitions(states[name])
    return seen


def cycle_without_pause(states: dict) -> list[str] | None:
    """A loop of states none of which pauses, if there is one."""
    active = {name for name, state in states.items() if not pauses(state)}
    colour: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        colour[name] = 1
        path.append(name)
        for nxt in transitions(states[name]):
            if nxt not in active:
                continue
            if colour.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in colour and (found := visit(nxt)):
                return found
        colour[name] = 2
        path.pop()
        return None

    for name in sorted(active):
        if name not in colour and (found := visit(name)):
            return found
    return None


def rust_enum(path: Path, name: str, case: str) -> set[str]:
    """The serialized values of a Rust enum (rename_all SCREAMING_SNAKE_CASE / camelCase / lowercase)."""
    body = re.search(rf"pub enum {name} \{{(.*?)\n\}}", path.read_text(), re.S)
    assert body, f"enum {name} not found in {path}"
    variants = [m.group(1) for m in re.finditer(r"^\s*([A-Z]\w*),?\s*$", body.group(1), re.M)]
    assert variants, name
    words = [re.findall(r"[A-Z][a-z0-9]*", v) for v in variants]
    return {{"SCREAMING": "_".join(w).upper(), "lower": "".join(w).lower(),
             "camel": w[0].lower() + "".join(w[1:])}[case] for w in words}


def always_serialized(path: Path, struct: str, field: str) -> bool:
    """Whether a field of a Rust struct is always in its JSON (no skip_serializing_if)."""
    body = re.search(rf"pub struct {struct} \{{(.*?)\n\}}", path.read_text(), re.S)
    assert body, f"struct {struct} not found in {path}"
    before = re.split(rf"\n\s*pub {field}:", body.group(1))
    assert len(before) == 2, f"{struct}.{field}"
    attributes = re.findall(r"#\[serde\(([^]]*)\)\]\s*$", before[0].rsplit(",", 1)[-1])
    return not any("skip_serializing_if" in a for a in attributes)


MODEL, LOCK, NOTIFY = CORE / "domain" / "model.rs", CORE / "app" / "lock.rs", CORE / "app" / "notify.rs"
VERDICTS = rust_enum(MODEL, "Verdict", "SCREAMING")
ROLLOUT_OUTCOMES = rust_enum(MODEL, "RolloutOutcome", "SCREAMING")
SERVICE_ERRORS = {s["Error"] for s in SERVICE["States"].values() if s["Type"] == "Fail"}
# What each decided path can hold, and where the values come from.
DECIDED = {
    "$.health.verdict": VERDICTS,
    "$.rollbackHealth.verdict": VERDICTS,
    "$.rollback.outcome": ROLLOUT_OUTCOMES,
    # Only a rollback answers NOTHING (a manual one with nowhere to go): the deploy step never does.
    "$.rollout.outcome": ROLLOUT_OUTCOMES - {"NOTHING"},
    "$.lock.decision": rust_enum(LOCK, "LockDecision", "SCREAMING"),
    "$.outcome": rust_enum(NOTIFY, "Outcome", "camel"),
    "$.plan.action": rust_enum(MODEL, "PlanAction", "lower"),
    "$.action": rust_enum(MODEL, "PlanAction", "lower"),
    # DescribeExecution's status of a child that did not succeed (Step Functions API reference,
    # ExecutionStatus), and the errors the service state machine fails with.
    "$.child.Status": {"FAILED", "ABORTED", "TIMED_OUT"},
    "$.child.Error": SERVICE_ERRORS - {"InvalidInput"},
}


def rules(choice: dict) -> list[dict]:
    """Every rule of a Choice state, nested And/Or/Not included."""
    out: list[dict] = []

    def walk(rule: dict) -> None:
        out.append(rule)
        for inner in rule.get("And", []) + rule.get("Or", []) + ([rule["Not"]] if "Not" in rule else []):
            walk(inner)

    for rule in choice["Choices"]:
        walk(rule)
    return out


def choices() -> list[tuple[str, str, dict, dict]]:
    return [(machine, f"{where}:{name}", states, state) for machine, definition in RENDERED.items()
            for where, states, _ in graphs(definition) for name, state in states.items() if state["Type"] == "Choice"]


def test_the_decided_values_are_read_from_the_rust_types() -> None:
    assert VERDICTS == {"PENDING", "HEALTHY", "FAILED", "SUPERSEDED"}
    assert {"STARTED", "UP_TO_DATE", "SUPERSEDED"} <= ROLLOUT_OUTCOMES
    assert DECIDED["$.outcome"] == {"ok", "rolledBack", "rollbackFailed", "failed"}
    assert DECIDED["$.child.Error"] == {"DeploymentFailed", "DeploymentRolledBack", "RollbackFailed"}


@pytest.mark.parametrize("machine, where, states, choice", choices(), ids=[c[1] for c in choices()])
def test_a_choice_on_a_verdict_or_outcome_lists_every_value_and_never_falls_through_to_a_wait(
        machine: str, where: str, states: dict, choice: dict) -> None:
    compared: dict[str, set[str]] = {}
    for rule in rules(choice):
        if "StringEquals" in rule:
            compared.setdefault(rule["Variable"], set()).add(rule["StringEquals"])
    decided = [path for path in compared if path in DECIDED]
    if not decided:
        return
    for path in decided:
        missing = DECIDED[path] - compared[path]
        assert not missing, f"{where} has no route for {path} = {sorted(missing)}"
    # The Default is an unexpected value: it fails, naming it, and never waits.
    default = choice["Default"]
    state = states[default]
    assert state["Type"] in ("Fail", "Pass"), f"{where}: Default {default!r} is a {state['Type']}"
    waits = [n for n in reachable(states, default) if pauses(states[n])]
    assert not waits, f"{where}: an unexpected value reaches {waits}"
    if state["Type"] == "Fail":
        assert any(p in state.get("CausePath", "") for p in ("$.", "$)")), f"{where}: the cause must name the value"
    else:
        named = json.dumps(state.get("Parameters", state.get("Result")))
        assert "Unexpected" in named or "UNEXPECTED" in named, f"{where}: {default} must record the unexpected value"
        if "Error" in state.get("Parameters", {}):
            assert any(k.startswith("Cause") for k in state["Parameters"]), default
            ends = [n for n in reachable(states, default) if is_terminal(states[n])]
            assert ends and all(states[n]["Type"] in ("Fail", "Succeed") for n in ends), ends


@pytest.mark.parametrize("machine", sorted(RENDERED))
def test_every_loop_passes_a_wait(machine: str) -> None:
    """A loop of states none of which waits (a Wait, or a task parked on a token with a heartbeat)
    would run until the 25,000-event history quota; retries are bounded by MaxAttempts."""
    for where, states, _ in graphs(RENDERED[machine]):
        assert cycle_without_pause(states) is None, f"{machine} {where}: {cycle_without_pause(states)}"
    for where, states, _ in graphs(RENDERED[machine]):
        for name, state in states.items():
            for retrier in state.get("Retry", []):
                assert retrier.get("MaxAttempts", 3) <= 100, f"{name}: {retrier}"


def test_every_end_of_a_service_execution_publishes_exactly_one_event() -> None:
    states, start = SERVICE["States"], SERVICE["StartAt"]
    ends = {n for n in reachable(states, start) if is_terminal(states[n])}
    assert ends, "the service state machine ends somewhere"
    unpublished = {n for n in reachable(states, start, without={PUBLISH}) if is_terminal(states[n])}
    assert not unpublished, f"ends reached without publishing the deployment event: {unpublished}"
    after = reachable(states, transitions(states[PUBLISH]))
    assert PUBLISH not in after, "an event published twice"
    lost = {n for n in states if n.startswith("Event not published")}
    assert lost and not lost & reachable(states, start, without={PUBLISH}), "only a failed publish loses the event"
    # The two ends before there is a target are among them (issue 20: they published nothing).
    for early in ("No longer tracked", "Service planning failed"):
        assert PUBLISH in reachable(states, early), early


# Paths a Choice may read without an IsPresent guard: each is always in the state when the
# Choice runs (a Rust field always serialized, written by the Task or Pass before it).
ALWAYS_SET = {
    "$.health.verdict": ("Health", "verdict"), "$.health.renewLease": ("Health", "renew_lease"),
    "$.health.needsPoll": ("Health", "needs_poll"), "$.health.baked": ("Health", "baked"),
    "$.rollbackHealth.verdict": ("Health", "verdict"), "$.rollbackHealth.renewLease": ("Health", "renew_lease"),
    "$.rollbackHealth.needsPoll": ("Health", "needs_poll"),
    "$.rollout.outcome": ("Rollout", "outcome"), "$.rollback.outcome": ("Rollout", "outcome"),
    "$.target.mode": ("Target", "mode"), "$.target.policy.bakeSeconds": ("Policy", "bake_seconds"),
    "$.action": ("Plan", "action"), "$.dryRun": ("Plan", "dry_run"),
    "$.lock.decision": (LOCK, "LockResult", "decision"),
    "$.outcome": None,  # the service's line (notify's ServiceResult or "Event not published"), the Summary
    "$.inconclusive.at": None,  # written by the "Note inconclusive ..." Pass state just before
}


def test_the_paths_read_without_a_guard_are_always_serialized() -> None:
    for path, where in ALWAYS_SET.items():
        if where is None:
            continue
        source, struct, field = where if len(where) == 3 else (MODEL, *where)
        assert always_serialized(source, struct, field), f"{path}: {struct}.{field} may be left out of the JSON"


def unguarded_paths(choice: dict) -> list[str]:
    """Paths a Choice reads that no IsPresent rule before them (in the same And) guards."""
    found: list[str] = []

    def walk(rule: dict, guarded: set[str]) -> None:
        if "And" in rule:
            inner_guarded = set(guarded)
            for inner in rule["And"]:
                walk(inner, inner_guarded)
                if inner.get("IsPresent") is True:
                    inner_guarded.add(inner["Variable"])
            return
        for inner in rule.get("Or", []) + ([rule["Not"]] if "Not" in rule else []):
            walk(inner, guarded)
        if "IsPresent" in rule:
            return
        paths = [rule["Variable"]] if "Variable" in rule else []
        paths += [v for k, v in rule.items() if k.endswith("Path") and isinstance(v, str)]
        found.extend(p for p in paths if p not in guarded)

    for rule in choice["Choices"]:
        walk(rule, set())
    return found


@pytest.mark.parametrize("machine, where, states, choice", choices(), ids=[c[1] for c in choices()])
def test_no_choice_reads_a_path_that_can_be_absent(machine: str, where: str, states: dict, choice: dict) -> None:
    """A Choice that reads an absent path fails the execution with States.Runtime, which no
    Catch sees (an ABORTED child's cause has no Error: the whole push crashed). Inside the
    fan-out's Map, where a child's failure is read, every path is guarded."""
    allowed = set() if "/" in where else set(ALWAYS_SET)
    unguarded = [p for p in unguarded_paths(choice) if p not in allowed]
    assert not unguarded, f"{where} reads {unguarded} without an IsPresent guard"


def test_the_child_failure_branch_guards_the_cause_before_parsing_it() -> None:
    item = DEPLOY["States"]["Deploy each service"]["ItemProcessor"]["States"]
    start = item["Deploy the service"]
    failed = item[start["Catch"][0]["Next"]]
    assert start["Catch"][0]["ErrorEquals"] == ["States.TaskFailed"] and failed["Type"] == "Choice"
    guard = failed["Choices"][0]["And"]
    assert {"Variable": "$.failure.Cause", "IsPresent": True} in guard
    assert {"Variable": "$.failure.Cause", "StringMatches": "{*}"} in guard
    parse = item[failed["Choices"][0]["Next"]]
    assert "States.StringToJson($.failure.Cause)" in json.dumps(parse)
    assert item[failed["Default"]]["Type"] == "Pass" and item[failed["Default"]]["End"] is True
    # Every end of an iteration is a small result: the status (and a short reason).
    for name, state in item.items():
        if is_terminal(state) and state["Type"] == "Pass":
            result = state.get("Result") or state.get("Parameters")
            assert set(result) <= {"status", "error", "error.$", "started"}, name


LAMBDA_SANDBOX_ERRORS = {"Sandbox.Timedout", "Runtime.ExitError", "Runtime.OutOfMemory"}


@pytest.mark.parametrize("machine", sorted(RENDERED))
def test_every_retry_and_catch_of_lambda_unknown_handles_lambdas_own_error_names(machine: str) -> None:
    """A timed-out function reaches Step Functions as Sandbox.Timedout, a crash as
    Runtime.ExitError, out of memory as Runtime.OutOfMemory (Lambda Developer Guide,
    "Troubleshoot invocation issues in Lambda"); older pages call them all Lambda.Unknown."""
    checked = 0
    for where, states, _ in graphs(RENDERED[machine]):
        for name, state in states.items():
            for handler in state.get("Retry", []) + state.get("Catch", []):
                if "Lambda.Unknown" in handler["ErrorEquals"]:
                    checked += 1
                    assert LAMBDA_SANDBOX_ERRORS <= set(handler["ErrorEquals"]), f"{where}:{name}: {handler}"
    assert checked or machine == "deploy"


def test_starting_a_child_retries_both_names_of_the_execution_limit() -> None:
    item = DEPLOY["States"]["Deploy each service"]["ItemProcessor"]["States"]["Deploy the service"]
    retried = {e for r in item["Retry"] for e in r["ErrorEquals"]}
    assert {"StepFunctions.ExecutionLimitExceeded", "StepFunctions.ExecutionLimitExceededException"} <= retried


def test_the_summary_names_child_executions_as_states_hash_does() -> None:
    """The summary rebuilds each service execution's ARN from its name, States.Hash of the push
    execution and the service (SHA-1): the Rust test's constant is what the local cloud's
    interpreter computes for the same text."""
    from moto.stepfunctions.parser.asl.component.intrinsic.function.statesfunction.hash_calculations.hash_algorithm import (
        HashAlgorithm,
    )
    from moto.stepfunctions.parser.asl.component.intrinsic.function.statesfunction.hash_calculations.hash_func import (
        HashFunc,
    )

    text = (CORE / "app" / "summary.rs").read_text()
    constant = {name: re.search(rf'const {name}: &str = "([^"]+)";', text).group(1)  # type: ignore[union-attr]
                for name in ("PARENT", "SERVICE_1", "STATES_HASH_OF_PARENT_AND_SERVICE_1")}
    text_hashed = f"{constant['PARENT']}|{constant['SERVICE_1']}"
    assert HashFunc._hash_inp_with_alg(text_hashed, HashAlgorithm.SHA_1) == constant["STATES_HASH_OF_PARENT_AND_SERVICE_1"]
    start = DEPLOY["States"]["Deploy each service"]["ItemProcessor"]["States"]["Deploy the service"]
    assert start["Parameters"]["Name.$"] == "States.Hash(States.Format('{}|{}', $.parent.arn, $.service), 'SHA-1')"
    assert DEPLOY["States"]["Deploy each service"]["ItemSelector"]["parent"]["arn.$"] == "$$.Execution.Id"
    assert DEPLOY["States"]["Sum up the services"]["Parameters"]["summary"]["execution.$"] == "$$.Execution.Id"
