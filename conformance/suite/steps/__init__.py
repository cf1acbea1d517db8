"""Running one test case: its steps as data, executed by the executors registered in
`registration`, `tunnels` and `device`, and judged against what the lab observed."""

from __future__ import annotations

from conformance.errors import DeviceDidNotProvide, SuiteError
from conformance.suite.registry import STEPS
from conformance.suite.steps import device, registration, tunnels  # noqa: F401 (registers)
from conformance.suite.steps.context import CaseRun


def run_case(run: CaseRun, on_step=None) -> None:
    """Execute every step. Inconclusive, LabError and SuiteError propagate to the caller; a
    step that needs what the device failed to provide ends the case with that failure."""
    dut = run.session.dut(run.case.role)
    run.vars["_log_mark"] = dut.log_mark() if dut else 0
    for step in run.case.steps:
        run.step = step  # what the checks made while waiting for packets belong to
        try:
            if on_step:
                with on_step(step):
                    STEPS[step.kind].fn(run, step)
            else:
                STEPS[step.kind].fn(run, step)
        except (ValueError, TypeError, KeyError) as exc:
            # The case's own values (a row's parameter, an option) do not fit the step: the
            # case file's fault, named with its line, never a device verdict.
            raise SuiteError(f"step {step.index + 1} ({step.kind}) cannot run with these "
                             f"options: {type(exc).__name__}: {exc}", file=run.case.file,
                             case=run.case.id, line=step.line) from exc
        except DeviceDidNotProvide as exc:
            if not any(r.ok is False for r in run.results):
                raise SuiteError(f"step {step.index + 1} needs {exc}, yet no check failed",
                                 file=run.case.file, case=run.case.id, line=step.line) from exc
            run.note("suite", "suite", f"steps from {step.index + 1} on not run: they need "
                     f"what the device failed to provide ({exc})")
            break
    run.conclude_ipv4_headers()


__all__ = ["CaseRun", "run_case"]
