"""The YAML suite run in this process against the reference nodes in memory, through the
same step and check code as on a lab: the suite's own fast check, the engine-level part of
`dsmip4 selftest`, the killing test of `make mutation`, and the repeat runs that find flaky
verdicts. The CLI form is `dsmip4 run --memory` (pytest, reports and all)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

from conformance.catalog import load_catalog
from conformance.lab.profile import Profile
from conformance.suite.model import TestCase, load_case_file

TESTCASES = Path(__file__).resolve().parents[2] / "testcases"


def load_cases(catalog=None) -> list[TestCase]:
    catalog = catalog or load_catalog()
    return [c for path in sorted(TESTCASES.glob("rfc*.yaml"))
            for c in load_case_file(path, catalog)]


def run_in_memory(cases: list[TestCase], profiles: dict[str, Profile] | None = None,
                  out: Path | None = None, start: float | None = None,
                  stop_at_failure: bool = False) -> list[dict]:
    """Each case's record (as in results.json), run against `profiles` (default: the
    reference in every role). `start` fixes the simulated clock's epoch (default: now)."""
    from conformance.adapters.device_scope import judge_runs_clean
    from conformance.suite.plugin import RunState, execute

    judge_runs_clean()

    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="dsmip4-memrun-"))
    option = SimpleNamespace(catalog=None, testbed=[], dut=[], expected_failures=None,
                             dsmip4_strict=False, out=str(folder), dsmip4_memory=True,
                             dsmip4_epoch=start)
    state = RunState(SimpleNamespace(option=option))
    state.profiles = dict(profiles or {})
    state.explicit_duts = bool(profiles)
    records = []
    try:
        order = {"ha": 0, "mn": 1, "fa": 2}
        for case in sorted(cases, key=lambda c: order.get(c.role, 9)):
            record = execute(state, case).to_dict()
            records.append(record)
            if stop_at_failure and record["verdict"] not in ("PASS", "NOT-APPLICABLE"):
                break
    finally:
        if state.session is not None:
            state.session.close()
        if out is None:
            shutil.rmtree(folder, ignore_errors=True)
    return records
