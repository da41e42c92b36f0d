"""deckhand's benchmark: prints one table (see tests/bench/__init__.py and README "Benchmark").

    python tests/bench/run.py [--quick] [--scale N] [--cold-starts N] [--profiles] [--json PATH]

Normally run through scripts/bench, which makes sure target/lambda holds the release build.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from bench import coldstart, payload, profiles  # noqa: E402
from bench.deployments import Deployment, DeploymentBench  # noqa: E402
from bench.functions import MB, ROOT, functions, zip_size  # noqa: E402
from bench.scale import run_scale  # noqa: E402
from bench.table import Section, Table, at_most, fmt, median  # noqa: E402

BOOTSTRAP_LIMIT_MB = 8.0
INIT_LIMIT_MS = 20.0
PUSH_TO_UPDATE_LIMIT_S = 2.0
# List prices, US East (N. Virginia), USD. AWS Step Functions pricing: Standard workflows
# $0.025 per 1,000 state transitions. AWS Lambda pricing: $0.20 per 1M requests, Arm (the
# template's default architecture) $0.0000133334 per GB-second of billed duration (1 ms units).
SFN_PRICE_PER_TRANSITION = 0.025 / 1000
LAMBDA_PRICE_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PRICE_PER_GB_SECOND_ARM = 0.0000133334
HISTORY_QUOTA = 25_000  # events in one execution's history
PAYLOAD_QUOTA = 256 * 1024  # bytes of a state's input or output


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 cold starts, scale 5, a shorter slow rollout")
    parser.add_argument("--scale", type=int, default=None, help="services for the fan-out (default 100, quick 5)")
    parser.add_argument("--cold-starts", type=int, default=None, help="cold starts per function (default 20, quick 3)")
    parser.add_argument("--lengths", default=None,
                        help="ready-seconds of the rollouts compared for length, comma-separated "
                             "(default 5,60,600: a 5 s, a 1-minute and a 10-minute rollout; quick 2,8)")
    parser.add_argument("--profiles", action="store_true",
                        help="also rebuild plan and notify with release-profile variants (long: 4-7 min of build per variant the first time)")
    parser.add_argument("--profile-binaries", default=",".join(profiles.DEFAULT_BINARIES),
                        help="functions built per variant with --profiles (default: %(default)s)")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: coldstart,deployments,scale")
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".localcloud" / "bench",
                        help="local cloud run directory (function logs; default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    return parser


# ------------------------------------------------------------------------------------------ header
def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} CPU(s) ({cpu}), Linux {platform.release()}"


def _rustc() -> str:
    try:
        return subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "rustc ?"


# ------------------------------------------------------------------------------------------ sections
def size_and_init(table: Table, specs: list, runs: int, handler: dict[str, dict[str, Any]]) -> dict[str, Any]:
    log(f"coldstart: {runs} cold starts of each of {len(specs)} functions (interleaved)")
    results = coldstart.measure(coldstart.function_targets(specs), runs)
    floor = coldstart.spawn_floor(runs)
    # What dominates init: the same plan binary with a one-certificate trust store.
    plan = next((s for s in specs if s.binary == "plan"), specs[0])
    with tempfile.TemporaryDirectory() as scratch:
        one_cert, empty_dir = Path(scratch) / "one.pem", Path(scratch) / "certs"
        empty_dir.mkdir()
        bundle = next((p for p in (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pki/tls/certs/ca-bundle.crt"))
                       if p.exists()), None)
        trimmed = None
        if bundle is not None:
            text = bundle.read_text()
            end = text.find("-----END CERTIFICATE-----")
            one_cert.write_text(text[text.find("-----BEGIN CERTIFICATE-----"):end + 25] + "\n")
            extra = {"SSL_CERT_FILE": str(one_cert), "SSL_CERT_DIR": str(empty_dir)}
            pair = coldstart.function_targets([plan]) + coldstart.function_targets([plan], extra_env=extra,
                                                                                     label_suffix=" (1 cert)")
            trimmed = coldstart.measure(pair, runs)

    section = table.section(
        "functions", "release bootstraps (x86_64); init = spawn -> first GET /runtime/invocation/next, "
        f"{runs} cold starts each against a local Runtime API stub; handler = invocations on the local cloud below")
    out: dict[str, Any] = {}
    for spec in specs:
        path = spec.bootstrap()
        size = path.stat().st_size / MB if path.exists() else None
        zipped = zip_size(path) / MB if path.exists() else None
        samples = results[spec.binary]
        spread = samples.spread()
        name = spec.binary
        section.add(f"{name}.size", f"{name}: bootstrap / zip", None if size is None else f"{size:.2f} / {zipped:.2f}",
                    "MB", f"<= {BOOTSTRAP_LIMIT_MB:g} MB", at_most(size, BOOTSTRAP_LIMIT_MB))
        init_text = None
        if samples.median is not None and spread:
            init_text = f"{fmt(samples.median)} (p10 {fmt(spread[1])}, p90 {fmt(spread[2])}, max {fmt(spread[3])})"
        section.add(f"{name}.init", f"{name}: init median (spread)", init_text, "ms",
                    f"<= {INIT_LIMIT_MS:g} ms median", at_most(samples.median, INIT_LIMIT_MS),
                    note=("failures: " + "; ".join(samples.failures[:2])) if samples.failures else "")
        times = handler.get(name, {})
        warm, first = times.get("warm", []), times.get("first", [])
        handler_text = None
        if warm or first:
            handler_text = (f"{fmt(median(warm)) if warm else '-'} warm (n={len(warm)}), "
                            f"{fmt(median(first)) if first else '-'} first (n={len(first)})")
        section.add(f"{name}.handler", f"{name}: handler median", handler_text, "ms")
        out[name] = {"size_mb": size, "zip_mb": zipped, "init_ms": samples.samples_ms,
                     "handler_warm_ms": warm, "handler_first_ms": first}
    in_cloud = [v for times in handler.values() for v in times.get("init", [])]
    section.add("init.floor", "spawn floor: /bin/true fork+exec+exit, median", floor.median, "ms")
    if trimmed:
        full, cut = trimmed[plan.binary].median, trimmed[plan.binary + " (1 cert)"].median
        section.add("init.trust_store", "plan init: system trust store vs 1 certificate",
                    None if full is None or cut is None else f"{fmt(full)} vs {fmt(cut)}", "ms",
                    note="the AWS SDK's HTTPS client loads the native root certificates at init "
                         "(rustls-native-certs); the difference is what that costs here")
    section.add("init.in_cloud", "init inside the local cloud's Lambda runtime, median",
                median(in_cloud), "ms", note=f"{len(in_cloud)} sandboxes started during the deployments below; "
                                             "includes the emulator's own overhead (spawning from a busy Python process)")
    return out


def _invocations_text(counter) -> str:
    order = ("plan", "lock", "notify", "deploy", "check", "signal", "rollback")
    parts = [f"{k} {counter[k]}" for k in order if counter.get(k)]
    parts += [f"{k} {v}" for k, v in counter.items() if k not in order]
    return ", ".join(parts)


def _services_text(counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common())


def cost_usd(d: Deployment, memory_mb: dict[str, int]) -> float:
    """What the deployment costs at list prices: transitions (retries too) and Lambda requests
    and GB-seconds."""
    requests = sum(d.lambda_invocations().values())
    return ((d.transitions + d.retries) * SFN_PRICE_PER_TRANSITION + requests * LAMBDA_PRICE_PER_REQUEST
            + d.lambda_gb_seconds(memory_mb) * LAMBDA_PRICE_PER_GB_SECOND_ARM)


def memory_by_binary() -> dict[str, int]:
    return {spec.binary: spec.memory_mb for spec in functions()}


def deployment_rows(section: Section, key: str, d: Deployment, poll: float, detailed: bool = True) -> None:
    outcome = d.status + (f" ({d.error})" if d.error else "")
    section.add(f"{key}.outcome", "outcome", outcome)
    section.add(f"{key}.duration", "push -> execution end", d.duration_s, "s")
    section.add(f"{key}.transitions", "state transitions (StateEntered events)", d.transitions, "",
                note=f"+ {d.retries} retries" if d.retries else "")
    section.add(f"{key}.checks", f"health checks (poll interval {poll:g} s)", d.checks)
    section.add(f"{key}.invocations", "Lambda invocations", sum(d.lambda_invocations().values()), "",
                note=_invocations_text(d.lambda_invocations()))
    section.add(f"{key}.api_calls", "AWS API calls by deckhand", len(d.api_calls), "",
                note="by service: " + _services_text(d.calls_by_service()))
    section.add(f"{key}.history", "history events: push execution + service execution",
                " + ".join(str(len(h)) for h in d.histories.values()), "")
    section.add(f"{key}.cost", "cost per deployment (list prices)", cost_usd(d, memory_by_binary()) * 1e6, "µUSD",
                note="Step Functions transitions + Lambda requests and Arm GB-seconds")
    if detailed:
        check_calls = d.calls("check")
        if d.checks:
            ops = d.calls_by_operation("check")
            per = ", ".join(f"{op.split(':', 1)[1]} {n / d.checks:g}" for op, n in ops.most_common())
            section.add(f"{key}.calls_per_check", "API calls per health check", len(check_calls) / d.checks, "",
                        note=per)
        others = {b: d.calls_by_operation(b) for b in ("plan", "lock", "notify", "deploy", "rollback")}
        text = "; ".join(f"{b}: " + ", ".join(f"{op.split(':', 1)[1]} {n}" for op, n in ops.items())
                         for b, ops in others.items() if ops)
        section.add(f"{key}.calls_other", "API calls outside health checks", len(d.api_calls) - len(check_calls), "",
                    note=text)
    milestones = d.milestones()
    section.add(f"{key}.push_to_update", "push -> UpdateService", d.push_to_update_s, "s",
                f"<= {PUSH_TO_UPDATE_LIMIT_S:g} s", at_most(d.push_to_update_s, PUSH_TO_UPDATE_LIMIT_S),
                note="after the push: " + ", ".join(f"{k} {v:+.2f}" for k, v in milestones.items()))
    if "StartExecution" in milestones and d.push_to_update_s is not None:
        section.add(f"{key}.execution_to_update", "  of which StartExecution -> UpdateService (deckhand)",
                    d.push_to_update_s - milestones["StartExecution"], "s",
                    note="the rest is the local cloud's EventBridge delivering the push event")


def rollback_rows(section: Section, key: str, d: Deployment, poll: float) -> None:
    deployment_rows(section, key, d, poll)
    detection = d.detection()
    section.add(f"{key}.signal_to_rollback", "failure signal -> rollback UpdateService", d.signal_to_rollback_s, "s",
                f"<= {poll:g} s (1 poll)", at_most(d.signal_to_rollback_s, poll),
                note=f"signal: {d.signal_what}; after it: " + ", ".join(f"{k} {v:+.2f}" for k, v in detection.items()))


def deployments_section(table: Table, bench: DeploymentBench, lengths: list[float]) -> dict[str, Deployment]:
    poll = bench.poll_seconds
    # Service A: no grace period (a failing task is failed at once). Service B: a grace period
    # longer than the slowest image takes to get ready: a task that is not ready yet is unhealthy
    # behind the ALB, and without grace ECS (and deckhand) would rightly treat it as failed.
    grace = int(max(lengths)) + 20
    service_a = bench.api_service()
    service_b = bench.api_service(grace=grace)
    runs: dict[str, Deployment] = {}
    plan = [
        ("cold", service_a, "healthy, first push (every function cold)", "healthy", 2.0),
        ("healthy", service_a, "healthy (warm functions), ready-seconds 2", "healthy", 2.0),
        ("unhealthy", service_a, "rolled back: unhealthy image (targets never pass)", "unhealthy", 2.0),
        ("crash", service_a, "rolled back: crashing image (exit 1 after 1 s)", "crash", 2.0),
    ] + [(f"length{i}", service_b, f"healthy, grace {grace} s, ready-seconds {ready:g}", "healthy", ready)
         for i, ready in enumerate(lengths)]
    for key, (repository, cluster, service), title, health, ready in plan:
        log(f"deployments: {title}")
        runs[key] = bench.deploy(title, repository, cluster, service, health=health, ready_seconds=ready,
                                 timeout=max(600.0, ready * 2 + 120))
    note = (f"1 service, 2 tasks behind an ALB target group; PollIntervalSeconds={poll:g}, "
            f"RecheckSeconds={bench.params.get('RecheckSeconds', 'default')}, "
            f"UnhealthyChecks/MaxFailedTasks template defaults, no grace period")
    section = table.section("deployment: healthy", note)
    deployment_rows(section, "healthy", runs["healthy"], poll)
    cold = runs["cold"]
    section.add("cold.push_to_update", "push -> UpdateService, every function cold", cold.push_to_update_s, "s",
                f"<= {PUSH_TO_UPDATE_LIMIT_S:g} s", at_most(cold.push_to_update_s, PUSH_TO_UPDATE_LIMIT_S),
                note="after the push: " + ", ".join(f"{k} {v:+.2f}" for k, v in cold.milestones().items()))
    if "StartExecution" in cold.milestones() and cold.push_to_update_s is not None:
        section.add("cold.execution_to_update", "  of which StartExecution -> UpdateService (deckhand)",
                    cold.push_to_update_s - cold.milestones()["StartExecution"], "s")
    healthy = runs["healthy"]
    section.add("healthy.sfn_cost", "Step Functions cost per 1,000 healthy deployments",
                (healthy.transitions + healthy.retries) * SFN_PRICE_PER_TRANSITION * 1000, "USD")

    measured = [runs[f"length{i}"] for i in range(len(lengths))]
    versus = " vs ".join
    section = table.section("deployment: rollout length", f"another service (grace period {grace} s), tasks ready "
                            f"after {versus(f'{r:g} s' for r in lengths)}; simulated rollouts take their real time")
    section.add("length.outcome", "outcome", versus(d.status for d in measured))
    section.add("length.duration", "push -> execution end", versus(fmt(d.duration_s or 0) for d in measured), "s")
    section.add("length.checks", "health checks", versus(str(d.checks) for d in measured))
    section.add("length.invocations", "Lambda invocations", versus(str(sum(d.lambda_invocations().values()))
                                                                   for d in measured))
    section.add("length.api_calls", "AWS API calls by deckhand", versus(str(len(d.api_calls)) for d in measured))
    section.add("length.history", "history events of the service execution",
                versus(str(max((len(h) for h in d.service_histories), default=0)) for d in measured))
    section.add("length.cost", "cost per deployment (list prices)",
                versus(f"{cost_usd(d, memory_by_binary()) * 1e6:.0f}" for d in measured), "µUSD")
    spread = max(d.transitions for d in measured) - min(d.transitions for d in measured)
    nearly = spread <= 6  # two heartbeat re-checks (Wait, Check, Choice each)
    section.add("length.transitions", "state transitions", versus(str(d.transitions) for d in measured), "",
                "independent of rollout length (within 2 re-checks)", "ok" if nearly else "over",
                note="a rollout parks on a task token until ECS says something; a re-check every "
                     "RecheckSeconds guards against lost events")

    for key, title in (("unhealthy", "deployment: rolled back, unhealthy image"),
                       ("crash", "deployment: rolled back, crashing image")):
        section = table.section(title)
        rollback_rows(section, key, runs[key], poll)
    return runs


def scale_section(table: Table, bench: DeploymentBench, count: int) -> None:
    log(f"scale: creating {count} services in one cluster, then one push")
    result = run_scale(bench, count)
    d = result.deployment
    section = table.section(f"scale: one push -> {count} services",
                            f"one cluster, 1 task each, MaxConcurrency {result.max_concurrency} "
                            f"(template default); setup {result.setup_s:.0f} s not counted")
    section.add("scale.outcome", "outcome", d.status + (f" ({d.error})" if d.error else ""))
    section.add("scale.wall", "push -> execution end", d.duration_s, "s")
    section.add("scale.per_service", "wall time per service", (d.duration_s or 0) / count, "s")
    section.add("scale.concurrency", "peak Map iterations running at once", result.peak_concurrent_iterations)
    section.add("scale.push_to_first_update", "push -> first UpdateService", d.push_to_update_s, "s")
    section.add("scale.succeeded", "services SUCCEEDED (execution result)", result.succeeded, "",
                f"{count}", "ok" if result.succeeded == count else "over")
    others = {status: n for status, n in result.counts.items() if status != "SUCCEEDED"}
    section.add("scale.failed", "services not SUCCEEDED", result.failed, "", "0", "ok" if result.failed == 0 else "over",
                note=", ".join(f"{status} {n}" for status, n in sorted(others.items())) or "")
    section.add("scale.twins", "other executions of the same push", len(result.twins), "",
                note="; ".join(result.twins) or "none (EventBridge delivers an event twice now and then)")
    section.add("scale.on_new_digest", "services running the pushed digest (ECS)", result.on_new_digest, "",
                f"{count}", "ok" if result.on_new_digest == count else "over")
    section.add("scale.history", "longest execution history", d.largest_history, "events",
                f"< {HISTORY_QUOTA:,} (quota)", "ok" if d.largest_history < HISTORY_QUOTA else "over",
                note=f"the push's own: {len(d.histories.get(d.execution_arn, []))}; "
                     f"{len(d.service_histories)} service executions")
    section.add("scale.payload", "largest state input/output", d.largest_payload / 1024, "KiB",
                f"< {PAYLOAD_QUOTA // 1024} KiB (quota)", "ok" if d.largest_payload < PAYLOAD_QUOTA else "over")
    section.add("scale.cost", "cost per service (list prices)", cost_usd(d, memory_by_binary()) / count * 1e6, "µUSD")
    section.add("scale.transitions", "state transitions", d.transitions, "",
                note=f"{d.transitions / count:.1f} per service" + (f"; + {d.retries} retries" if d.retries else ""))
    section.add("scale.invocations", "Lambda invocations", sum(d.lambda_invocations().values()), "",
                note=_invocations_text(d.lambda_invocations()))
    section.add("scale.api_calls", "AWS API calls by deckhand", len(d.api_calls), "",
                note=f"{len(d.api_calls) / count:.1f} per service; by service: " + _services_text(d.calls_by_service()))
    plan_calls = d.calls_by_operation("plan")
    section.add("scale.plan_calls", "API calls by plan (discovery)", sum(plan_calls.values()), "",
                note=", ".join(f"{op.split(':', 1)[1]} {n}" for op, n in plan_calls.items()))
    loaded = bench.handler_times(since=d.window_start, until=d.ended_at)
    for binary in ("check", "lock"):
        warm = loaded.get(binary, {}).get("warm", [])
        section.add(f"scale.{binary}_handler", f"{binary} handler median, up to {result.peak_concurrent_iterations} services at once",
                    median(warm), "ms", note=f"n={len(warm)}; the emulator serves every call from one Python process")
    refused = sum(result.throttled.values())
    section.add("scale.throttled", "calls throttled at AWS's rates (token buckets)", refused, "",
                note=f"{refused / count:.2f} retries per service (each retried by the SDK); "
                     + (", ".join(f"{a} {n}" for a, n in sorted(result.throttled.items())) or "none"))
    section.add("scale.lambda_throttled", "Lambda invocations throttled (concurrency)",
                sum(result.lambda_throttled.values()), "",
                note=", ".join(f"{f} {n}" for f, n in sorted(result.lambda_throttled.items())) or "none")
    throttled = [c for c in d.api_calls if c.status >= 400]
    section.add("scale.errors", "API calls answered with an error", len(throttled), "",
                note=_services_text(Counter(f"{c.operation} {c.status}" for c in throttled)))
    sweep_section(table, bench, count, d.cluster, d.service)


SWEEPS_PER_DAY = 24 * 60 // 10  # ReconcileMinutes' default


def sweep_section(table: Table, bench: DeploymentBench, count: int, cluster: str, service: str) -> None:
    """The reconciliation sweep over the same fleet, every service in sync after the push: what
    a pass costs when there is nothing to deploy (the steady state), per service per day."""
    log(f"sweep: one reconciliation pass over {count} services in sync")
    bench.cloud.control("DELETE", "throttling", {})
    d = bench.start(f"sweep x{count}", {"reconcile": True}, cluster, service)
    refused = bench.cloud.control("GET", "throttling", {})[1]["refused"]
    section = table.section(f"sweep: one reconciliation pass over {count} services in sync",
                            f"every {60 * 24 // SWEEPS_PER_DAY} minutes (ReconcileMinutes default): "
                            f"{SWEEPS_PER_DAY} passes a day")
    section.add("sweep.outcome", "outcome", d.status + (f" ({d.error})" if d.error else ""))
    started = len(bench.aws.service_executions(d.execution_arn))
    section.add("sweep.started", "service executions started", started, "", "0", "ok" if started == 0 else "over")
    section.add("sweep.wall", "start -> execution end", d.duration_s, "s")
    calls = d.calls_by_operation("plan")
    section.add("sweep.api_calls", "AWS API calls per pass", len(d.api_calls), "",
                note=", ".join(f"{op.split(':', 1)[1]} {n}" for op, n in calls.items()))
    section.add("sweep.calls_per_service_day", "API calls per service per day", len(d.api_calls) / count * SWEEPS_PER_DAY,
                "", f"O(1) per service", "ok" if len(d.api_calls) <= 3 * count else "over")
    section.add("sweep.cost_per_service_day", "cost per service per day (list prices)",
                cost_usd(d, memory_by_binary()) / count * SWEEPS_PER_DAY * 1e6, "µUSD",
                note=f"{d.transitions} transitions and {sum(d.lambda_invocations().values())} invocation(s) per pass")
    section.add("sweep.throttled", "calls throttled at AWS's rates", sum(refused.values()), "",
                note=", ".join(f"{a} {n}" for a, n in sorted(refused.items())) or "none")


MASS_ROLLBACK = 1000  # services of the computed mass-rollback payload
LONG_NAME = 64  # characters of the cluster's and of the service's name in it


def payload_section(table: Table) -> None:
    """The largest payloads of a push whose services all roll back, computed from the rendered
    deploy definition (bench/payload.py): no cloud needed, so it is always in the table."""
    worst = payload.fan_out_payload(MASS_ROLLBACK, "Child rolled back", LONG_NAME, LONG_NAME)
    quota = f"< {PAYLOAD_QUOTA // 1024} KiB (quota)"
    section = table.section(f"payload: one push -> {MASS_ROLLBACK} services, all rolled back (computed)",
                            f"cluster and service names of {LONG_NAME} characters, GovCloud ARNs "
                            f"({worst.arn_length} characters each); compact JSON, UTF-8")
    section.add("payload.map_results", "Map results (every iteration's result)", worst.map_results / 1024, "KiB",
                note=f"{worst.map_results / MASS_ROLLBACK:.0f} bytes per service, whatever its names")
    section.add("payload.summary_input", "summary task input (Sum up the services)", worst.summary_input / 1024, "KiB",
                quota, "ok" if worst.summary_input < PAYLOAD_QUOTA else "over")
    section.add("payload.largest_state", "largest state (the Map's output)", worst.largest_state / 1024, "KiB",
                quota, "ok" if worst.largest_state < PAYLOAD_QUOTA else "over",
                note="the plan's list of service ARNs is most of it")
    longest = payload.largest_arn_that_fits(MASS_ROLLBACK, "Child rolled back")
    section.add("payload.longest_arn", f"longest service ARN with which {MASS_ROLLBACK} services fit", longest,
                "chars", note=f"ECS allows {len(payload.service_arn(payload.MAX_ECS_NAME, payload.MAX_ECS_NAME))}: "
                              "with names that long the plan's own list of services is over the quota")


def profiles_section(table: Table, specs: list, binaries: tuple[str, ...], runs: int) -> None:
    base = profiles.release_profile()
    by_binary = {s.binary: s for s in specs}
    chosen = [by_binary[b] for b in binaries if b in by_binary]
    built: dict[str, float | None] = {}
    for variant in profiles.VARIANTS:
        built[variant.name] = profiles.build(variant, tuple(s.binary for s in chosen), log)
    profiles.build_hello(log)
    targets = []
    for variant in profiles.VARIANTS:
        targets += coldstart.function_targets(chosen, variant.target_dir(), label_suffix=f"@{variant.name}")
    hello = profiles.hello_bootstrap()
    if hello.exists():
        hello_env = coldstart.lambda_environment(chosen[0], "")
        hello_env = {k: v for k, v in hello_env.items() if not k.startswith("DECKHAND_")}
        targets.append(("hello", hello, hello_env))
    log(f"profiles: {runs} cold starts of {len(targets)} binaries (interleaved)")
    results = coldstart.measure(targets, runs)
    section = table.section("release profile variants",
                            f"{', '.join(binaries)}; init median over {runs} cold starts; 'deployed' = Cargo.toml")
    for variant in profiles.VARIANTS:
        for spec in chosen:
            path = spec.bootstrap(variant.target_dir())
            size = path.stat().st_size / MB if path.exists() else None
            samples = results[f"{spec.binary}@{variant.name}"]
            value = None if size is None else f"{size:.2f} MB, init {fmt(samples.median) if samples.median else 'n/a'} ms"
            section.add(f"profile.{variant.name}.{spec.binary}", f"{variant.name} {spec.binary}", value, "",
                        f"<= {BOOTSTRAP_LIMIT_MB:g} MB, <= {INIT_LIMIT_MS:g} ms",
                        "ok" if size is not None and size <= BOOTSTRAP_LIMIT_MB and (samples.median or 99) <= INIT_LIMIT_MS else "over",
                        note=variant.describe(base) + (f"; cold build {built[variant.name]:.0f} s" if built[variant.name] else ""))
    if "hello" in results:
        samples = results["hello"]
        size = hello.stat().st_size / MB
        section.add("profile.hello", "hello world (lambda_runtime echo, no AWS SDK), deployed profile",
                    f"{size:.2f} MB, init {fmt(samples.median) if samples.median else 'n/a'} ms", "",
                    note="the same measurement on this machine of what the published anchors measure; "
                         "deckhand's init minus this is its own main(): SDK configuration and clients")


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cold_runs = args.cold_starts or (3 if args.quick else 20)
    scale = args.scale if args.scale is not None else (5 if args.quick else 1000)
    lengths = [float(x) for x in (args.lengths or ("2,8" if args.quick else "5,60,600")).split(",") if x.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    specs = functions()
    missing = [str(s.bootstrap()) for s in specs if not s.bootstrap().exists()]
    if missing:
        log("missing bootstraps (run scripts/build or scripts/bench): " + ", ".join(missing))
        return 2

    began = time.monotonic()
    profile = profiles.release_profile()
    table = Table(
        "deckhand benchmark" + (" (--quick)" if args.quick else ""),
        [f"  {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {_machine()}; {_rustc()}",
         "  release profile: " + " ".join(f"{k}={v}" for k, v in profile.items()) + "; MB = 10^6 bytes",
         "  anchors (lambda-perf, hello world, arm64): Rust 14 ms, Python 73 ms, Node 124 ms init"],
    )
    handler: dict[str, dict[str, Any]] = {}
    runs: dict[str, Deployment] = {}
    deployment_sections: list[Section] = []
    if not {"deployments", "scale"} <= skip:
        log("local cloud: starting (moto + Lambda runtime + ECS simulator + deckhand's stack)")
        with DeploymentBench(run_dir=args.run_dir) as bench:
            log(f"local cloud: ready in {bench.started_in_s:.1f} s on {bench.cloud.endpoint}")
            scratch = Table("")
            if "deployments" not in skip:
                runs = deployments_section(scratch, bench, lengths)
            # Handler times of one deployment at a time (the fan-out's are under 10-way load).
            handler = bench.handler_times()
            if "scale" not in skip and scale > 0:
                scale_section(scratch, bench, scale)
            deployment_sections = scratch.sections
    if "coldstart" not in skip:
        size_and_init(table, specs, cold_runs, handler)
    table.sections += deployment_sections
    payload_section(table)
    if args.profiles:
        binaries = tuple(b.strip() for b in args.profile_binaries.split(",") if b.strip())
        profiles_section(table, specs, binaries, cold_runs)
    table.footer_lines += ["definitions:"] + [f"  - {text}" for text in NOTES]
    table.header_lines.append(f"  measured in {time.monotonic() - began:.0f} s")
    print(table.render())
    if args.json:
        args.json.write_text(table.to_json())
    return 0


NOTES = [
    "state transitions = *StateEntered events of the push's execution history and of its service executions "
    "(Map iterations included), what Step Functions Standard bills ($0.025 per 1,000); retries are billed too, "
    "shown when any",
    "cost = transitions x $0.000025 + Lambda requests x $0.0000002 + billed GB-seconds x $0.0000133334 (Arm), "
    "AWS list prices in us-east-1; a task waiting on a task token costs nothing while it waits",
    "Lambda invocations = Lambda tasks scheduled by the state machines + the signal function's invocations "
    "by EventBridge (ECS events); AWS API calls = requests from deckhand's functions "
    "(User-Agent aws-sdk-rust, function from its app id), not the harness's nor the cloud's own (Step Functions -> "
    "Lambda, EventBridge -> Step Functions)",
    "push -> UpdateService = PutImage returned to the harness -> the deploy function's UpdateService reached the cloud",
    "failure signal = stoppingAt of the new deployment's task whose failed stop reached maxFailedTasks "
    "(deckhand's failed-stop rule), else the deployment's FAILED rollout state; rollback start = the rollback "
    "function's UpdateService reaching the cloud",
    "handler = runtime fetched the event -> runtime posted the result (warm: a sandbox's later invocations; "
    "first: a sandbox's first, which includes opening connections); the AWS side is moto in Python, so these are "
    "upper bounds, dominated by the emulator",
]


if __name__ == "__main__":
    sys.exit(main())
