"""junit.xml as CI systems read it: valid against the junit-10 structure, read back with
junitparser, red exactly when the run fails under the options it was given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped
from lxml import etree

from conformance.reports.junit import fails_the_run, write_junit

XSD = Path(__file__).resolve().parents[1] / "conformance" / "reports" / "junit-10.xsd"
VERDICTS = ["PASS", "FAIL", "NON-STRICT", "ERROR", "NOT-APPLICABLE", "INCONCLUSIVE", "XFAIL",
            "XPASS"]


def _case(role: str, verdict: str, n: int) -> dict:
    return {"id": f"{role.upper()}-3.3-{n:03d}", "title": f"title {n} <&>", "role": role,
            "section": "3.3", "requirements": ["RFC5454-3.3-02"], "verdict": verdict,
            "message": f"{verdict} because " + "x" * 1500 if verdict != "PASS" else "",
            "duration": 0.25, "rerun": f"dsmip4 run --case {role.upper()}-3.3-{n:03d}"}


def _results(strict: bool) -> dict:
    cases = [_case(role, v, i) for role in ("ha", "mn") for i, v in enumerate(VERDICTS)]
    return {"run": {"id": "r1", "suite_version": "0.1.0", "rfc": "RFC 5454", "strict": strict,
                    "start": "2026-11-24T08:00:00Z", "testbed": {"name": "in-memory"},
                    "devices": {"ha": {"name": "vendor-ha", "vendor": "V", "model": "M",
                                       "version": "1.2"}},
                    "expected_failures": None},
            "summary": {"duration": 4.0}, "cases": cases}


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_junit_is_valid_and_red_exactly_when_the_run_fails(tmp_path, strict):
    path = tmp_path / "junit.xml"
    write_junit(path, _results(strict))
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    document = etree.parse(str(path))
    assert schema.validate(document), schema.error_log

    xml = JUnitXml.fromfile(str(path))
    suites = {suite.name: suite for suite in xml}
    assert list(suites) == ["dsmip4-conformance.ha", "dsmip4-conformance.mn"]
    for suite in suites.values():
        assert suite.timestamp and suite.hostname
        props = {p.name: p.value for p in suite.properties()}
        assert props["strict"] == str(strict).lower() and props["testbed"] == "in-memory"
        outcome = {}
        for case in suite:
            kinds = [type(r) for r in case.result]
            assert len(kinds) <= 1
            outcome[case.name.split("-", 1)[1]] = (kinds[0] if kinds else None, case.result)
        by_verdict = dict(zip(VERDICTS, (outcome[f"3.3-{i:03d}"] for i in range(len(VERDICTS)))))
        for verdict, (kind, result) in by_verdict.items():
            if fails_the_run(verdict, strict):
                assert kind is Failure and result[0].type == verdict, verdict
            elif verdict == "ERROR":
                assert kind is Error
            elif verdict in ("NOT-APPLICABLE", "INCONCLUSIVE", "XFAIL"):
                assert kind is Skipped and result[0].message.startswith(verdict)
            else:
                assert kind is None, verdict
        # The suite's counts are the testcases' outcomes.
        assert suite.failures == sum(fails_the_run(v, strict) for v in VERDICTS)
        assert suite.errors == 1 and suite.skipped == 3 and suite.tests == len(VERDICTS)
    ha_props = {p.name: p.value for p in suites["dsmip4-conformance.ha"].properties()}
    assert ha_props["device.name"] == "vendor-ha" and ha_props["device.version"] == "1.2"
    # NON-STRICT fails a --strict run and nothing else.
    non_strict = next(c for c in suites["dsmip4-conformance.ha"] if c.name == "HA-3.3-002")
    assert bool(non_strict.result) is strict
    assert "NON-STRICT" in (non_strict.system_out or "")


def test_long_messages_are_cut_in_the_attribute_and_kept_whole_in_the_body(tmp_path):
    path = tmp_path / "junit.xml"
    write_junit(path, _results(False))
    case = next(c for s in JUnitXml.fromfile(str(path)) for c in s if c.name == "HA-3.3-001")
    failure = case.result[0]
    assert len(failure.message) <= 1010 and failure.message.endswith("…")
    assert "x" * 1500 in failure.text and "rerun: dsmip4 run --case HA-3.3-001" in failure.text


def test_a_real_run_writes_valid_junit(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--role", "mn",
                           "--case", "MN-3344-008", "--case", "MN-3344-007", "--out", str(out)],
                          capture_output=True, text=True, cwd=XSD.parents[2])
    assert done.returncode == 0, done.stdout + done.stderr
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.parse(str(out / "junit.xml"))), schema.error_log
    (suite,) = JUnitXml.fromfile(str(out / "junit.xml"))
    assert suite.name == "dsmip4-conformance.mn" and suite.tests == 5 and suite.failures == 0
