"""Allure as a reader sees it: the run's allure-results rendered with Allure 3 (the npm package
the setup installs), and the statuses read back from the generated report data. A device's
FAIL, and NON-STRICT under --strict, are "failed" (never "broken"); NOT-APPLICABLE is
"skipped"; a step is failed exactly when one of its checks failed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.reports.allure_meta import CATEGORIES, environment
from conformance.suite.plugin import CaseError, CaseFailed

ROOT = Path(__file__).resolve().parents[1]
ALLURE = ROOT / "node_modules" / ".bin" / "allure"


def test_a_device_verdict_is_an_assertion_and_an_error_is_not():
    # allure-pytest (and pytest) call an AssertionError "failed", anything else "broken".
    assert issubclass(CaseFailed, AssertionError)
    assert not issubclass(CaseError, AssertionError)


def test_categories_sort_failures_by_verdict():
    import re

    def category(status: str, message: str) -> str | None:
        for c in CATEGORIES:
            if status in c["matchedStatuses"] and re.fullmatch(c.get("messageRegex", "(?s).*"),
                                                               message):
                return c["name"]
        return None
    assert "FAIL" in category("failed", "conformance.suite.plugin.CaseFailed: FAIL: step 2 x")
    assert "NON-STRICT" in category("failed", "CaseFailed: NON-STRICT: step 1 FAIL: y")
    assert "XPASS" in category("failed", "CaseFailed: XPASS: z")
    assert "ERROR" in category("broken", "anything")
    assert "applicable" in category("skipped", "Skipped: NOT-APPLICABLE: no gre")


def test_environment_names_the_devices_and_their_pics():
    env = environment({"run": {"suite_version": "0.1.0", "rfc": "RFC 5454", "id": "r",
                               "testbed": {"name": "lab"}, "strict": True,
                               "devices": {"ha": {"name": "x-ha", "vendor": "V", "model": "M",
                                                  "version": "2", "pics": {"gre": True,
                                                                           "mld": False}}}}})
    assert env["ha.device"] == "x-ha (V M 2)" and env["ha.pics"] == "gre"
    assert env["strict"] == "true" and env["testbed"] == "lab"


@pytest.mark.skipif(not ALLURE.exists() or shutil.which("node") is None,
                    reason="Allure 3 is not installed (tools/setup.sh installs it with npm)")
def test_allure3_shows_device_failures_as_failed_and_steps_by_their_checks(tmp_path):
    profile = tmp_path / "faulty-ha.yaml"
    profile.write_text(f"extends: {ROOT}/fixtures/profiles/reference-ha.yaml\n"
                       "profile:\n  name: faulty-ha\nparameters:\n"
                       "  faults: \"[ha.duplicate-prefix-reply, ha.no-ecn-copy]\"\n")
    out = tmp_path / "run"
    cases = ["HA-3.3-002", "HA-3.6-001[ce]", "HA-3.6-004", "HA-3344-010[empty]"]
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--strict",
                           "--role", "ha", "--dut", str(profile), "--out", str(out),
                           *[a for c in cases for a in ("--case", c)]],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    verdicts = {c["id"]: c["verdict"] for c in
                json.loads((out / "results.json").read_text())["cases"]}
    assert verdicts == {"HA-3.3-002": "FAIL", "HA-3.6-001[ce]": "NON-STRICT",
                        "HA-3.6-004": "NOT-APPLICABLE", "HA-3344-010[empty]": "PASS"}
    assert (out / "allure-results" / "environment.properties").exists()
    assert (out / "allure-results" / "categories.json").exists()
    executor = json.loads((out / "allure-results" / "executor.json").read_text())
    assert executor["name"] == "dsmip4-conformance" and executor["buildName"].endswith(
        json.loads((out / "results.json").read_text())["run"]["id"])

    report = tmp_path / "allure-report"
    rendered = subprocess.run([str(ALLURE), "generate", str(out / "allure-results"), "-o",
                               str(report)], capture_output=True, text=True, cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    shown = json.loads((report / "test-results.json").read_text())["byId"].values()
    status = {t["name"].split(":")[0]: t["status"] for t in shown}
    assert status == {"HA-3.3-002": "failed", "HA-3.6-001[ce]": "failed",
                      "HA-3.6-004": "skipped", "HA-3344-010[empty]": "passed"}
    assert json.loads((report / "widgets" / "statistic.json").read_text()) == \
        {"total": 4, "failed": 2, "skipped": 1, "passed": 1}
    environment_shown = json.loads((report / "widgets" / "allure_environment.json").read_text())
    assert {e["name"] for e in environment_shown} >= {"ha.device", "ha.pics", "testbed"}

    # The raw results: titles, one link per requirement, a failed step for the failed check.
    results = [json.loads(p.read_text()) for p in (out / "allure-results").glob("*-result.json")]
    failing = next(r for r in results if r["name"].startswith("HA-3.3-002: "))
    assert len({link["url"] for link in failing["links"]}) == len(failing["links"]) >= 1
    steps = {s["name"]: s for s in failing["steps"]}
    reply = next(s for name, s in steps.items() if "expect reply" in name)
    assert reply["status"] == "failed"
    assert {s["status"] for s in reply["steps"]} == {"passed", "failed"}
    assert all(s["status"] == "passed" for name, s in steps.items() if "register" in name)
