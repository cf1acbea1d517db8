"""Waiting on an observable condition with a deadline: the one polling loop of the project,
and the clock it runs on (the system's on a lab; a simulated one for the in-memory runner)."""

from __future__ import annotations

import time


class WaitTimeout(TimeoutError):
    pass


class SystemClock:
    """Wall-clock time for timestamps, monotonic time for deadlines, real sleeps."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02,
             clock=SYSTEM_CLOCK):
    """Call predicate until it returns something truthy; raise WaitTimeout naming `what`."""
    deadline = clock.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError) as exc:  # not ready yet (socket, parse)
            last_error = exc
        if clock.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout:.1f} s waiting for {what}{detail}")
        clock.sleep(interval)
