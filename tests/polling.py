"""Waiting for eventually-true conditions (and for servers to listen), shared by the emulator and
end-to-end tests."""

from __future__ import annotations

import socket
import time
from typing import Any, Callable


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.25) -> Any:
    """Calls `check` until it returns something truthy and returns that; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(what: str, port: int, timeout: float = 60, alive: Callable[[], bool] = lambda: True) -> None:
    """Waits until something accepts connections on 127.0.0.1:`port`; fails early once `alive()` is false."""
    def listening() -> bool:
        if not alive():
            raise AssertionError(f"{what} exited before it listened on port {port}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_until(f"{what} to listen on port {port}", listening, timeout, interval=0.5)
