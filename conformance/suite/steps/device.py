"""Steps about the device itself: its state tables, its log, the actions a case asks of it."""

from __future__ import annotations

from conformance.errors import Inconclusive
from conformance.lab.profile_model import ActionName
from conformance.suite.model import Step
from conformance.suite.registry import step
from conformance.suite.steps.context import CaseRun
from conformance.waiting import WaitTimeout, wait_for


def _dut(run: CaseRun, step: Step):
    dut = run.session.dut(run.case.role)
    if dut is None:
        raise run.error(step, f"step {step.kind} needs a running device under test")
    return dut


def _observable(run: CaseRun, step: Step, table: str) -> bool:
    if table in _dut(run, step).profile.state:
        return True
    run.unobservable(step, table, step.spec.get("checks"))
    return False


@step("state", subject="rows", table=str, checks=list)
def state(run: CaseRun, step: Step) -> None:
    if not _observable(run, step, step.spec.get("table", "bindings")):
        return
    rows = _dut(run, step).state(step.spec.get("table", "bindings"))
    run.vars["state"] = {"message": rows}
    run.run_checks(step, rows, step.spec.get("checks"))


@step("wait", subject="rows", state=str, seconds_at_most=float, checks=list, hold=bool)
def wait(run: CaseRun, step: Step) -> None:
    """Poll the device's state until the checks hold, with a deadline (not a sleep). With
    `hold`, the checks must hold at every poll until the deadline: a state the device should
    keep (not registered after a denial) is judged after the device had time to change it."""
    dut = _dut(run, step)
    table = step.spec.get("state", "bindings")
    if not _observable(run, step, table):
        return
    limit = float(run.resolve(step.spec.get("seconds_at_most", 5)))
    checks = step.spec.get("checks") or []

    def holds():
        rows = dut.state(table)
        return all(run.evaluate(step, rows, c)[0] for c in checks)
    start = run.session.clock.monotonic()
    if step.spec.get("hold"):
        try:
            wait_for(lambda: not holds(), limit, f"{table} to stop satisfying the checks", 0.1,
                     run.session.clock)
        except WaitTimeout:
            pass
        run.waited += run.session.clock.monotonic() - start
        run.run_checks(step, dut.state(table), checks)
        return
    try:
        wait_for(holds, limit, f"{table} to satisfy {[c['check'] for c in checks]}", 0.1,
                 run.session.clock)
        ok = True
    except WaitTimeout:
        ok = False
    run.waited += run.session.clock.monotonic() - start
    if not ok and step.precondition:
        raise Inconclusive(f"the device's {table} never reached the expected state")
    run.run_checks(step, dut.state(table), checks)


@step("log", expect=str)
def log(run: CaseRun, step: Step) -> None:
    dut = _dut(run, step)
    if not dut.profile.security_exception:
        raise run.error(step, f"profile {dut.profile.name} declares no security-exception log "
                        "pattern")
    want = step.spec.get("expect", "present")
    if want not in ("present", "absent"):
        raise run.error(step, f"log expect: {want!r}; expected present or absent")
    limit = run.timeout(step, "reply_timeout")
    start = run.session.clock.monotonic()
    try:
        if want == "present":
            lines = wait_for(lambda: dut.security_exceptions(run.vars["_log_mark"]), limit,
                             "a security-exception record", clock=run.session.clock)
        else:
            lines = dut.security_exceptions(run.vars["_log_mark"])
    except WaitTimeout:
        lines = []
    run.waited += run.session.clock.monotonic() - start
    ok = bool(lines) if want == "present" else not lines
    run.record(step, f"security exception {want}", ok, f"a security-exception record "
               f"{'in' if want == 'present' else 'absent from'} the device log",
               lines[0][:300] if lines else "no record")


@step("dut_action", required=("action",), action=ActionName, args=dict, params=dict)
def dut_action(run: CaseRun, step: Step) -> None:
    """Ask the device under test for an abstract action (attach_fa, go_home, join_group, ...)
    with abstract arguments; its profile says how the device does it. `params` are settings
    of the device's configuration the case needs (its template's $names), applied with a
    restart."""
    action = step.spec["action"]
    args = {k: str(v) for k, v in run.resolve(step.spec.get("args") or {}).items()}
    params = {k: str(v) for k, v in run.resolve(step.spec.get("params") or {}).items()}
    run.mark_all()
    restarted = run.session.act(run.case.role, action, args, params)
    if restarted:
        run.vars["_log_mark"] = 0
    shown = ", ".join(f"{k}={v}" for k, v in {**args, **params}.items())
    run.note("suite", f"DUT ({run.case.role.upper()})", f"{action}({shown})")
