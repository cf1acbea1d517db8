"""Which code is the device's: under `make mutation`, only the reference device runs mutated.

In the in-memory lab the judge (the suite's steps and checks), the simulated kernels and the
reference engines share one process and one codec. A vendor's device never shares the
suite's codec, so a mutant of a codec function must show on what the *device* sends, judged
by a clean codec, as it would on a lab. mutmut's trampolines read `MUTANT_UNDER_TEST` on every
call; this module keeps it empty except while the device's own code runs (an engine's input,
its timers, its control socket, its start).

Outside `make mutation` (the variable unset or empty) `device()` changes nothing.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

VARIABLE = "MUTANT_UNDER_TEST"
# mutmut's own modes: "fail" must fail every test (it checks the setup), the rest are not
# mutants. "stats" (which tests reach which function) is scoped like a mutant, so a function
# only the judge calls is reached by no case and mutmut does not run its mutants.
_UNSCOPED = {"", "fail", "list_all_tests", "mutant_generation"}
_depth = 0
_taken = ""  # a mutant named only by the variable (no mutmut process-local copy), once blanked


def _mutmut_setting() -> str:
    """What mutmut set for this process: its own process-local copy when it keeps one (the
    variable is ours to blank while the judge runs), else the variable as first seen."""
    trampoline = sys.modules.get("mutmut.mutation.trampoline")
    value = getattr(trampoline, "_mutant_under_test", None)
    if value is not None:
        return value
    return _taken or os.environ.get(VARIABLE, "")


@contextmanager
def device():
    """Run the block as the device's code."""
    global _depth
    mutant = _mutmut_setting()
    if mutant in _UNSCOPED:
        yield
        return
    _depth += 1
    os.environ[VARIABLE] = mutant
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            os.environ[VARIABLE] = ""


def judge_runs_clean() -> None:
    """Call as the judge starts (a run, a case): the mutant leaves the judge's code."""
    global _taken
    mutant = _mutmut_setting()
    if _depth == 0 and mutant not in _UNSCOPED:
        _taken = mutant
        os.environ[VARIABLE] = ""
