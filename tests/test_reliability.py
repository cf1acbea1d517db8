"""Reliability (issue 13): an interrupted run says so in its reports and lists what it left
undone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.catalog import load_catalog
from conformance.suite.verdict import ExpectedFailures
from conformance.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_an_interrupted_runs_reports_say_so_and_list_the_cases_not_run(tmp_path):
    from conformance.reports.writer import write_reports

    case = {"id": "X-1", "title": "t", "file": "testcases/x.yaml", "role": "ha",
            "section": "3.3", "requirements": ["RFC5454-3.3-03"], "purpose": "Ensure that x",
            "pics": [], "verdict": "PASS", "message": "m", "checks": [], "trace": [],
            "evidence": {}, "waited": 0, "duration": 1.0, "rerun": "r", "steps": []}
    state = SimpleNamespace(out=tmp_path, cases=[case], catalog=load_catalog(), started=0.0,
                            profiles={}, explicit_duts=False, run_id="r", testbed=None,
                            expected=ExpectedFailures(), strict=False, interrupted=True,
                            selected=["X-1", "X-2", "X-3"])
    write_reports(state)
    run = json.loads((tmp_path / "results.json").read_text())["run"]
    assert run["interrupted"] is True and run["not_run"] == ["X-2", "X-3"]
    assert "This run was interrupted" in (tmp_path / "report.html").read_text()


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("DSMIP4_REQUIRE_TOOLS"),
                    reason="needs root for the built-in lab")
def test_ctrl_c_writes_a_report_that_says_the_run_was_interrupted(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.Popen([sys.executable, "-m", "conformance", "run", "--role", "ha",
                             "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(os.environ,
                                                               PYTHONPATH=str(ROOT)))
    try:
        wait_for(lambda: len(list(out.glob("evidence/*/case.json"))) >= 2, 120,
                 "two cases to finish")
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    run = json.loads((out / "results.json").read_text())["run"]
    assert run["interrupted"] is True and run["not_run"]
    assert "This run was interrupted" in (out / "report.html").read_text()


def test_a_device_that_died_between_cases_is_restarted_and_the_case_still_runs():
    from conformance.lab.device import DeviceCrashed
    from conformance.suite.session import Session

    class Dead:
        def __init__(self, restart_works):
            self.restart_works, self.resets = restart_works, 0

        def ensure_running(self):
            if not self.restart_works:
                raise DeviceCrashed("ha did not start with `start-ha`: exited 1", ["boom"])
            return {"time": 1.0, "last_log": ["killed"]}

        def reset(self):
            self.resets += 1
    session = Session(testbed=None, dut_profiles={}, out_dir=Path("."))
    session.active_role, session.devices = "ha", {"ha": Dead(True)}
    assert session.ready_for("ha") is session.devices["ha"]
    assert session.restarted == {"time": 1.0, "last_log": ["killed"]}
    assert session.devices["ha"].resets == 1
    session.devices = {"ha": Dead(False)}
    with pytest.raises(DeviceCrashed, match="did not start with `start-ha`"):
        session.ready_for("ha")


def test_xdist_refuses_fewer_testbeds_than_workers():
    """Issue 13 item 3: two workers on one lab would stop each other's devices mid-case."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(root / "testcases"), "-n", "2", "-q",
         "-p", "no:cacheprovider", "--rootdir", str(root),
         "--testbed", str(root / "fixtures/testbeds/example-remote.yaml")],
        capture_output=True, text=True, timeout=120, cwd=root)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "every xdist worker needs a lab of its own" in proc.stderr
    assert "Traceback" not in proc.stderr
