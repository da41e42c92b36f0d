"""The memory limit of a local Lambda sandbox.

Lambda gives a function the memory it is configured with (MemorySize, 128 MB to
10,240 MB) and stops an execution environment that uses more: the invocation
fails as out of memory (error type ``Runtime.OutOfMemory``, FunctionError
``Unhandled``), and Step Functions reports the task failed with that error type
(sfn_quotas.py cites the documentation; older pages call it ``Lambda.Unknown``,
"Handle Lambda service exceptions", Step Functions developer guide).

Locally a watcher thread samples the bootstrap process's resident set size
(``VmRSS`` in ``/proc/PID/status``) and reports when it exceeds MemorySize; the
sandbox then kills the process. (RLIMIT_AS would limit address space, not
memory: a Rust binary with tokio reserves far more address space than it uses.)
A short spike between two samples can go unseen; a function that holds the
memory, as a real out-of-memory function does, is caught.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

SAMPLE_SECONDS = 0.05
# Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
# "The Lambda documentation, log messages, and console use the abbreviation MB (rather than MiB)
# to refer to 1,024 KB." /proc reports VmRSS in kB of 1,024 bytes.
KIB_PER_MB = 1024


def resident_kib(pid: int) -> int | None:
    """The process's resident set size in KiB, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None  # a zombie has no VmRSS


class MemoryWatcher:
    """Calls ``on_exceeded(rss_kib)`` once if process ``pid`` uses more than ``limit_mb``."""

    def __init__(self, pid: int, limit_mb: int, on_exceeded: Callable[[int], None], label: str = ""):
        self.pid = pid
        self.limit_kib = int(limit_mb) * KIB_PER_MB
        self.on_exceeded = on_exceeded
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"memory {label or pid}", daemon=True)

    def start(self) -> "MemoryWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = resident_kib(self.pid)
            if rss is None:
                return
            self.peak_kib = max(self.peak_kib, rss)
            if rss > self.limit_kib:
                self.on_exceeded(rss)
                return
            self._stop.wait(SAMPLE_SECONDS)
