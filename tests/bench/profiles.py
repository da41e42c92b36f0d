"""Release-profile variants (``--profiles``): the same functions rebuilt with CARGO_PROFILE_RELEASE_*
overrides into their own target directories (target/bench-profiles/<variant>), then measured
like the deployed build: bootstrap size, zip size and init time.

The deployed profile is Cargo.toml's ``[profile.release]``; its binaries are the ones in
target/lambda (built by scripts/bench before anything is measured), so it is not rebuilt.
Each variant builds every dependency again (4-7 minutes on 2 cores the first time; a rerun
is a no-op), one build at a time, and waits while another cargo build runs on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .functions import ROOT

PROFILE_DIR = ROOT / "target" / "bench-profiles"
DEFAULT_BINARIES = ("plan", "notify")  # the largest (ECS + ECR clients) and the smallest (EventBridge)


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, str]  # CARGO_PROFILE_RELEASE_<KEY> → value

    def describe(self, base: dict[str, str]) -> str:
        settings = {**base, **{k.lower().replace("_", "-"): v for k, v in self.overrides.items()}}
        keys = ("opt-level", "lto", "codegen-units", "strip", "panic")
        return " ".join(f"{k}={settings.get(k, '?')}" for k in keys)

    def target_dir(self) -> Path | None:
        return None if not self.overrides else PROFILE_DIR / self.name


VARIANTS = [
    Variant("deployed", {}),
    Variant("o3-thin-16cgu", {"OPT_LEVEL": "3", "LTO": "thin", "CODEGEN_UNITS": "16"}),
    Variant("os-fat", {"OPT_LEVEL": "s"}),
    Variant("no-strip", {"STRIP": "false"}),
    Variant("unwind", {"PANIC": "unwind"}),
]


def release_profile() -> dict[str, str]:
    profile = tomllib.loads((ROOT / "Cargo.toml").read_text()).get("profile", {}).get("release", {})
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in profile.items()}


def _package_of(binary: str) -> str:
    manifest = tomllib.loads((ROOT / "functions" / binary / "Cargo.toml").read_text())
    return manifest["package"]["name"]


def _cargo_busy() -> bool:
    """Another cargo/rustc on the machine (the rule: one build at a time)."""
    mine = {os.getpid()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in ("cargo", "rustc", "cargo-lambda"):
            return True
    return False


def _wait_for_idle_cargo(log: callable, limit_s: float = 3600) -> None:
    waited = 0.0
    while _cargo_busy() and waited < limit_s:
        if waited == 0:
            log("profiles: another cargo build is running; waiting for it to finish")
        time.sleep(10)
        waited += 10


HELLO_SOURCE = Path(__file__).resolve().parent / "hello"
HELLO_TARGET = PROFILE_DIR / "hello"


def hello_bootstrap() -> Path:
    return HELLO_TARGET / "lambda" / "hello" / "bootstrap"


def build_hello(log: callable) -> float | None:
    """The hello-world function (tests/bench/hello) with deckhand's release profile, built from
    a copy under target/ (its Cargo.lock, from the workspace's, stays out of the sources) with
    the dependency versions deckhand uses, offline."""
    source = PROFILE_DIR / "hello-src"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(HELLO_SOURCE, source)
    shutil.copy2(ROOT / "Cargo.lock", source / "Cargo.lock")
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = str(HELLO_TARGET)
    venv_bin = Path(sys.executable).parent
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    cargo = shutil.which("cargo", path=env["PATH"]) or "cargo"
    _wait_for_idle_cargo(log)
    log(f"profiles: building the hello-world function into {HELLO_TARGET.relative_to(ROOT)}")
    started = time.monotonic()
    done = subprocess.run([cargo, "lambda", "build", "--release", "--quiet", "--offline"], cwd=source, env=env,
                          stdout=sys.stderr)
    if done.returncode != 0:
        log("profiles: the hello-world build failed (offline, with the workspace's dependency versions)")
        return None
    return time.monotonic() - started


def build(variant: Variant, binaries: tuple[str, ...], log: callable) -> float | None:
    """Builds `binaries` with the variant's overrides; returns the build's wall time, or the
    recorded time of the build that produced the binaries when cargo had nothing to do."""
    target_dir = variant.target_dir()
    if target_dir is None:
        return None
    target_dir.mkdir(parents=True, exist_ok=True)
    stamp = target_dir / "bench-build.json"
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = str(target_dir)
    for key, value in variant.overrides.items():
        env[f"CARGO_PROFILE_RELEASE_{key}"] = value
    venv_bin = Path(sys.executable).parent
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    cargo = shutil.which("cargo", path=env["PATH"]) or "cargo"
    command = [cargo, "lambda", "build", "--release", "--quiet"]
    for binary in binaries:
        command += ["-p", _package_of(binary)]
    _wait_for_idle_cargo(log)
    log(f"profiles: building {variant.name} ({', '.join(binaries)}) into {target_dir.relative_to(ROOT)}")
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=sys.stderr)
    elapsed = time.monotonic() - started
    # Report the cold build: a rerun only relinks (cargo lambda moves the binaries out of the
    # target directory) or does nothing, so keep the longest build seen for this variant.
    previous = json.loads(stamp.read_text()) if stamp.exists() else {}
    seconds = max(elapsed, float(previous.get("seconds") or 0))
    stamp.write_text(json.dumps({"seconds": seconds, "overrides": variant.overrides, "binaries": list(binaries)}))
    return seconds
