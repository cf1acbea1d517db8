"""A device that provides fewer state tables than the cases read: the checks on a missing table
are "not observable on this device" (neither PASS nor FAIL), the case's wire checks are still
judged, and the report lists what could not be observed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conformance.suite.verdict import CheckResult, Verdict, judge

ROOT = Path(__file__).resolve().parent.parent


def _result(ok, reqs, observable=True):
    return CheckResult("c", ok, reqs, "", "", observable=observable)


def test_unobservable_checks_weigh_nothing():
    catalog = {}
    hidden = _result(None, ["R1"], observable=False)
    assert judge([hidden], catalog, ["R1"]) == Verdict.NOT_APPLICABLE
    assert judge([hidden, _result(True, ["R1"])], catalog, ["R1"]) == Verdict.PASS
    # Only an incidental check observed: the case's purpose was not.
    assert judge([hidden, _result(True, ["OTHER"])], catalog, ["R1"]) == \
        Verdict.NOT_APPLICABLE
    # A violation seen on the wire is never hidden by what could not be observed.
    assert judge([hidden, _result(False, ["OTHER"])], catalog, ["R1"]) == Verdict.FAIL


def test_a_device_without_a_routes_table_is_judged_on_the_wire(tmp_path):
    profile = tmp_path / "no-routes-ha.yaml"
    profile.write_text(f"extends: {ROOT / 'fixtures/profiles/reference-ha.yaml'}\n"
                       "profile: {name: no-routes-ha}\n"
                       "state:\n  bindings:\n"
                       "    command: \"$python -m conformance.ctl $workdir/ha.sock bindings\"\n"
                       "    format: json\n    path: bindings\n")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    for case in ("HA-3.8-004", "HA-3.3.1-001"):
        subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--dut",
                        str(profile), "--role", "ha", "--case", case, "--out",
                        str(out / case)], cwd=ROOT, env=env, capture_output=True, timeout=300)
    judged = json.loads((out / "HA-3.8-004" / "results.json").read_text())
    (case,) = judged["cases"]
    assert case["verdict"] == "PASS"
    assert {k["check"] for k in case["checks"] if k.get("observable") is False} == {"no_route"}
    assert any(k["check"] == "binding_prefixes" and k["ok"] for k in case["checks"])
    assert {u["check"] for u in judged["unobservable"]} == {"no_route"}
    assert "Not observable on this device" in (out / "HA-3.8-004" / "report.html").read_text()
    purpose = json.loads((out / "HA-3.3.1-001" / "results.json").read_text())
    (case,) = purpose["cases"]
    assert case["verdict"] == "NOT-APPLICABLE"
    assert "not observable on this device" in case["message"]
