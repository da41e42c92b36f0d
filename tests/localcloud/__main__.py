"""``python -m tests.localcloud up --port N [--param K=V]... [--no-build]``

Serves the local cloud on 127.0.0.1:N with the stack deployed, prints
``localcloud ready on http://127.0.0.1:N`` on stdout (everything else goes to
stderr) and runs until SIGINT/SIGTERM, then stops every function process and
exits 0. ``scripts/localcloud`` is the usual way in.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from .sam_local import Forwarder, write_sam_local_files
from .server import DEFAULT_RUN_DIR, DEFAULT_TEMPLATE, start_local_cloud


def _parse_param(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/localcloud", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="serve the local cloud with the stack deployed")
    up.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0: any free port)")
    up.add_argument("--param", type=_parse_param, action="append", default=[], metavar="KEY=VALUE",
                    help="template parameter override (repeatable)")
    up.add_argument("--no-build", action="store_true", help="do not run cargo lambda build first")
    up.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="SAM template (default: %(default)s)")
    up.add_argument("--no-stack", action="store_true", help="serve the emulated AWS only, deploy nothing")
    up.add_argument("--stack-name", default="deckhand")
    up.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR,
                    help="function logs and unpacked code (default: %(default)s)")
    up.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def _sam_local_files(cloud: Any, args: argparse.Namespace) -> Forwarder | None:
    """Files for `sam local` against this cloud, when a container engine answers (tests/localcloud/sam_local.py)."""
    log = logging.getLogger("localcloud")
    try:
        forwarder = Forwarder(cloud.port)
    except Exception as exc:  # noqa: BLE001 - sam local is optional here
        log.info("no files for sam local: no container engine answers (%s)", exc.__class__.__name__)
        return None
    template, env = write_sam_local_files(cloud, forwarder.endpoint, args.template,
                                          args.template.parent / ".aws-sam" / "build", args.run_dir / "sam-local")
    log.info("sam local invoke/start-lambda: --template %s --env-vars %s --skip-pull-image", template, env)
    return forwarder


class _Interrupted(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # moto logs every failed state at ERROR; a failing execution is not a local cloud error.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        if stop.is_set():
            return  # already stopping
        stop.set()
        raise _Interrupted()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    cloud = None
    forwarder = None
    try:
        cloud = start_local_cloud(
            port=args.port,
            params=dict(args.param),
            build=not args.no_build,
            template=None if args.no_stack else args.template,
            stack_name=args.stack_name,
            run_dir=args.run_dir,
        )
        for key, value in cloud.stack_outputs.items():
            logging.getLogger("localcloud").info("output %s = %s", key, value)
        if cloud.stack is not None:
            forwarder = _sam_local_files(cloud, args)
        print(f"localcloud ready on {cloud.endpoint}", flush=True)
        while not stop.is_set():
            time.sleep(1)
    except _Interrupted:
        pass
    except Exception as exc:  # noqa: BLE001 - report, clean up, fail
        logging.getLogger("localcloud").error("%s", exc, exc_info=args.verbose)
        return 1
    finally:
        stop.set()  # a signal now is ignored: we are stopping anyway
        if forwarder is not None:
            forwarder.close()
        if cloud is not None:
            log = logging.getLogger("localcloud")
            log.info("stopping")
            cloud.stop()
            log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
