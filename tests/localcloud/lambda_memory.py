"""The memory limit of a local Lambda sandbox.

Lambda gives a function the memory it is configured with (MemorySize, 128 MB to
10,240 MB) and stops an execution environment that uses more: the invocation
fails as out of memory (error type ``Runtime.OutOfMemory``, FunctionError
``Unhandled``), and Step Functions reports the task failed with that error type
(sfn_quotas.py cites the documentation; older pages call it ``Lambda.Unknown``,
"Handle Lambda service exceptions", Step Functions developer guide).

Locally one sampler thread, shared by every sandbox, reads each bootstrap
process's resident set size (``/proc/PID/statm``) and reports when it exceeds
MemorySize; the sandbox then kills the process. (One thread per sandbox reading
/proc twenty times a second cost more than a quarter of the emulator's time with
a thousand services.) (RLIMIT_AS would limit address space, not
memory: a Rust binary with tokio reserves far more address space than it uses.)
A short spike between two samples can go unseen; a function that holds the
memory, as a real out-of-memory function does, is caught.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

logger = logging.getLogger("localcloud.lambda")

SAMPLE_SECONDS = 0.2
# Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
# "The Lambda documentation, log messages, and console use the abbreviation MB (rather than MiB)
# to refer to 1,024 KB."
KIB_PER_MB = 1024
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def resident_kib(pid: int) -> int | None:
    """The process's resident set size in KiB, or None once it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            fields = statm.read().split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if len(fields) < 2:
        return None
    resident_pages = int(fields[1])
    return resident_pages * PAGE_KIB if resident_pages else None


class MemoryWatcher:
    """Calls ``on_exceeded(rss_kib)`` once if process ``pid`` uses more than ``limit_mb``."""

    def __init__(self, pid: int, limit_mb: int, on_exceeded: Callable[[int], None], label: str = ""):
        self.pid = pid
        self.label = label
        self.limit_kib = int(limit_mb) * KIB_PER_MB
        self.on_exceeded = on_exceeded
        self.peak_kib = 0
        self.stopped = False

    def start(self) -> "MemoryWatcher":
        _SAMPLER.watch(self)
        return self

    def stop(self) -> None:
        self.stopped = True

    def sample(self) -> bool:
        """Reads the process once; False when there is nothing more to watch."""
        if self.stopped:
            return False
        rss = resident_kib(self.pid)
        if rss is None:
            return False
        self.peak_kib = max(self.peak_kib, rss)
        if rss > self.limit_kib:
            self.stopped = True
            self.on_exceeded(rss)
            return False
        return True


class _Sampler:
    """The one thread that samples every watched process, started with the first watcher."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: list[MemoryWatcher] = []
        self._thread: threading.Thread | None = None

    def watch(self, watcher: MemoryWatcher) -> None:
        with self._lock:
            self._watchers.append(watcher)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lambda memory", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                watchers = list(self._watchers)
            finished = set()
            for watcher in watchers:
                try:
                    if not watcher.sample():
                        finished.add(id(watcher))
                except Exception:  # noqa: BLE001 - a watcher's callback must not stop the others'
                    logger.exception("memory watcher of %s failed", watcher.label or watcher.pid)
                    finished.add(id(watcher))
            if finished:
                with self._lock:
                    self._watchers = [w for w in self._watchers if id(w) not in finished]
            time.sleep(SAMPLE_SECONDS)


_SAMPLER = _Sampler()
