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


def _run_until_cases_done(out: Path, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "conformance", "run", "--role", "ha",
                             "--out", str(out), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    wait_for(lambda: len(list(out.glob("evidence/*/case.json"))) >= 2 or
             proc.poll() is not None, 120, "two cases to finish")
    return proc


def _lab_down_all() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", "lab", "down", "--all"],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def _assert_lab_lost_report(out: Path, proc: subprocess.Popen, why: str) -> None:
    log = proc.communicate(timeout=180)[0]
    assert proc.returncode == 1, log[-3000:]
    data = json.loads((out / "results.json").read_text())
    assert why in data["run"]["lab_lost"]
    verdicts = {c["id"]: c["verdict"] for c in data["cases"]}
    assert "PASS" in verdicts.values() and "FAIL" not in verdicts.values(), verdicts
    errors = [c["message"] for c in data["cases"] if c["verdict"] == "ERROR"]
    assert errors and all(why in m for m in errors), errors
    assert not data["run"]["not_run"]  # every selected case has a verdict
    assert "The lab was lost during this run" in (out / "report.html").read_text()
    assert "LAB LOST" in log


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("DSMIP4_REQUIRE_TOOLS"),
                    reason="needs root for the built-in lab")
def test_a_run_whose_own_lab_is_taken_down_ends_as_error_and_writes_its_report(tmp_path):
    """Issue 13 item 4: `lab down --all` SIGTERMs the run that owns the lab."""
    out = tmp_path / "report"
    proc = _run_until_cases_done(out)
    try:
        down = _lab_down_all()
        assert down.returncode == 0, down.stderr
        _assert_lab_lost_report(out, proc, "received SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("DSMIP4_REQUIRE_TOOLS"),
                    reason="needs root for the built-in lab")
def test_a_run_whose_lab_disappears_ends_as_error_and_writes_its_report(tmp_path):
    """Issue 13 item 4: a lab from `dsmip4 lab up`, removed while a run uses it."""
    from conformance.lab.builtin import lab_down, lab_up

    lab = lab_up()
    out = tmp_path / "report"
    proc = _run_until_cases_done(out, "--testbed", lab["testbed"])
    try:
        lab_down(lab["prefix"])
        _assert_lab_lost_report(out, proc, "was removed while this run was using it")
    finally:
        if proc.poll() is None:
            proc.kill()
        lab_down(lab["prefix"])
