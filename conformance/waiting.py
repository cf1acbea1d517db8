"""Waiting on an observable condition with a deadline: the one polling loop of the project."""

from __future__ import annotations

import time


class WaitTimeout(TimeoutError):
    pass


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    """Call predicate until it returns something truthy; raise WaitTimeout naming `what`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError) as exc:  # not ready yet (socket, parse)
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout:.1f} s waiting for {what}{detail}")
        time.sleep(interval)
