"""The two error worlds of a conformance run.

A device that breaks the protocol earns a FAIL, recorded as a failed check with the field, the
byte offset and the RFC section (see `conformance.suite.verdict.CheckResult`); nothing here is
about that. Everything below is about what is *not* the device's fault:

- `LabError`: the lab could not be built, reached or torn down.
- `SuiteError`: a problem of the suite itself, a case file, a profile or a testbed. It names the
  file, the case and the line where it can. Always an ERROR, never a FAIL.
- `Inconclusive`: the device never reached the state a check needs, or a reference peer (the
  FA between the suite and the device) did not deliver what was sent: nothing can be said about
  the device.
- `DeviceDidNotProvide`: a later step needs what the device failed to send in an earlier step;
  the case ends with the failure already recorded.
"""

from __future__ import annotations


class LabError(RuntimeError):
    """The lab could not be built or torn down (an error of the lab, never of a device)."""


class SuiteError(RuntimeError):
    """A problem of the suite or its inputs: an ERROR verdict, never a FAIL."""

    def __init__(self, message: str, *, file: str | None = None, case: str | None = None,
                 line: int | None = None):
        where = ":".join(str(p) for p in (file, line) if p)
        prefix = " ".join(p for p in (where, f"case {case}" if case else "") if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file, self.case, self.line = file, case, line


class Inconclusive(Exception):
    """A precondition was not met: nothing about the device can be concluded."""


class NotDelivered(Inconclusive):
    """A reference peer on the path (the FA) dropped what the suite sent or what the device
    answered: the device was not reached, or its answer was not relayed."""


class DeviceDidNotProvide(Exception):
    """A step needs something (a reply, a request) that the device failed to provide earlier."""
