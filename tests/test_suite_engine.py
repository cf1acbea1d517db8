"""The conformance engine without a lab: case files, verdicts, expected failures, reports."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.catalog import load_catalog
from conformance.suite.model import CaseFileError, load_case_file
from conformance.suite.verdict import (
    CheckResult, ExpectedFailures, Verdict, judge, rollup, signature,
)

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()


@pytest.mark.parametrize("path", sorted((ROOT / "testcases").glob("rfc*.yaml")))
def test_every_case_file_loads(path):
    cases = load_case_file(path, CATALOG)
    assert cases and all(c.requirements and c.purpose.startswith("Ensure that") for c in cases)


GOOD = """section: "3.3"
role: ha
cases:
  - id: X-1
    title: t
    requirements: [RFC5454-3.3-02]
    purpose: Ensure that the HA does it.
    steps:
      - register: {extensions: [{prefix-request: 2001:db8:10:1::/64}]}
      - expect_reply:
          checks:
            - {check: reply_code, in: [0]}
"""


def test_loader_reports_every_error_with_file_case_and_path(tmp_path):
    bad = tmp_path / "rfc-bad.yaml"
    bad.write_text(GOOD.replace("RFC5454-3.3-02", "RFC5454-9.9-99")
                   .replace("Ensure that the HA does it.", "Check the HA.")
                   .replace("reply_code", "reply_colour")
                   .replace("      - register:", "      - registr:"))
    with pytest.raises(CaseFileError) as info:
        load_case_file(bad, CATALOG)
    text = str(info.value)
    assert str(bad) in text
    problems = info.value.problems
    assert any("cases[0] (X-1).requirements" in p and "RFC5454-9.9-99" in p for p in problems)
    assert any("cases[0] (X-1).purpose" in p for p in problems)
    assert any("cases[0] (X-1).steps[0]" in p for p in problems)
    assert any("checks[0].check" in p and "reply_colour" in p for p in problems)
    assert len(problems) >= 4


def test_a_case_without_requirements_is_an_error(tmp_path):
    bad = tmp_path / "rfc-none.yaml"
    bad.write_text(GOOD.replace("requirements: [RFC5454-3.3-02]", "requirements: []"))
    with pytest.raises(CaseFileError, match="at least one requirement"):
        load_case_file(bad, CATALOG)


def _r(ok, *reqs):
    return CheckResult("c", ok, list(reqs), "e", "a")


def test_judge_maps_levels_to_verdicts():
    assert judge([_r(True, "RFC5454-3.3-03")], CATALOG) == Verdict.PASS
    assert judge([_r(False, "RFC5454-3.3-03")], CATALOG) == Verdict.FAIL  # MUST NOT
    assert judge([_r(False, "RFC5454-3.3-02")], CATALOG) == Verdict.NON_STRICT  # SHOULD
    assert judge([_r(False, "RFC5454-3.3-02"), _r(False, "RFC5454-3.3-05")],
                 CATALOG) == Verdict.FAIL
    assert judge([_r(False, "RFC5454-3.2-D1")], CATALOG) == Verdict.FAIL  # DEFINITION
    assert judge([], CATALOG) == Verdict.PASS


def test_rollup_takes_the_worst():
    assert rollup([Verdict.PASS, Verdict.FAIL]) == Verdict.FAIL
    assert rollup([Verdict.PASS, Verdict.NOT_APPLICABLE]) == Verdict.PASS
    assert rollup([Verdict.INCONCLUSIVE, Verdict.PASS]) == Verdict.INCONCLUSIVE
    assert rollup([]) is None


def test_expected_failures_xfail_and_xpass(tmp_path):
    path = tmp_path / "xfail.yaml"
    path.write_text("expected_failures:\n  - {case: HA-3.3-002, signature: 'RFC5454-3.3-03'}\n")
    xf = ExpectedFailures.load(path)
    sig = signature([CheckResult("no_duplicate_prefix_replies", False, ["RFC5454-3.3-03"],
                                 "", "")])
    assert xf.apply("HA-3.3-002", Verdict.FAIL, sig) == Verdict.XFAIL
    assert xf.apply("HA-3.3-002", Verdict.FAIL, "other:RFC5454-3.3-02") == Verdict.FAIL
    assert xf.apply("HA-3.3-002", Verdict.PASS, "") == Verdict.XPASS
    assert xf.apply("HA-3.3-001", Verdict.FAIL, sig) == Verdict.FAIL


def test_reports_from_a_synthetic_run(tmp_path):
    from conformance.reports.writer import write_reports

    (tmp_path / "evidence" / "X-1").mkdir(parents=True)
    (tmp_path / "evidence" / "X-1" / "foreign.pcap").write_bytes(b"pcap")
    case = {"id": "X-1", "title": "t", "file": "testcases/x.yaml", "role": "ha",
            "section": "3.3", "requirements": ["RFC5454-3.3-03"], "purpose": "Ensure that x",
            "pics": [], "verdict": "FAIL", "message": "step 2 no_duplicate_prefix_replies",
            "checks": [{"check": "no_duplicate_prefix_replies", "ok": False,
                        "requirements": ["RFC5454-3.3-03"], "expected": "at most one",
                        "actual": "1 duplicate(s)", "step": 1, "detail": ""}],
            "trace": [{"time": 1, "from": "suite (MN)", "to": "FA", "what": "RRQ"}],
            "evidence": {"pcap_foreign": str(tmp_path / "evidence/X-1/foreign.pcap")},
            "waited": 0.5, "duration": 1.0, "rerun": "dsmip4 run --case X-1", "steps": []}
    state = SimpleNamespace(out=tmp_path, cases=[case], catalog=CATALOG, started=0.0,
                            profiles={}, explicit_duts=False, run_id="r", testbed=None,
                            expected=ExpectedFailures(), strict=False)
    summary = write_reports(state)
    assert summary["counts"] == {"FAIL": 1}
    results = json.loads((tmp_path / "results.json").read_text())
    req = next(r for r in results["requirements"] if r["id"] == "RFC5454-3.3-03")
    assert req["verdict"] == "FAIL" and req["cases"] == [{"id": "X-1", "verdict": "FAIL"}]
    assert len(results["requirements"]) == len(CATALOG.requirements)
    assert results["manifest"] == {"evidence/X-1/foreign.pcap":
                                   __import__("hashlib").sha256(b"pcap").hexdigest()}
    junit = (tmp_path / "junit.xml").read_text()
    assert 'failures="1"' in junit and "dsmip4 run --case X-1" in junit
    html = (tmp_path / "report.html").read_text()
    assert "RFC5454-3.3-03" in html and "Traceability matrix" in html and "X-1" in html
    untestable = next(r for r in results["requirements"] if r["testable"] == "no")
    assert untestable["verdict"] == "UNTESTABLE"


def test_coverage_check_passes_and_fails_when_a_case_goes(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import check_coverage

    cases = check_coverage.load_cases(CATALOG)
    assert check_coverage.check(CATALOG, cases) == []
    fewer = [c for c in cases if c.id != "HA-3.3-008"]  # the only case for RFC5454-3.3-07
    problems = check_coverage.check(CATALOG, fewer)
    assert problems == ["RFC5454-3.3-07 (MUST NOT, §3.3) has no test case for the HA"]
    no_mn = [c for c in cases if c.id != "MN-3.5-002"]
    assert any("RFC5454-3.5-14" in p and "MN" in p for p in check_coverage.check(CATALOG, no_mn))


def test_every_fault_maps_to_requirements_that_cases_check():
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import check_coverage

    from conformance.nodes.faults import FA_FAULTS
    from conformance.nodes.faults import HA_FAULTS
    from conformance.nodes.faults import MN_FAULTS

    pairs = check_coverage.covered_pairs(check_coverage.load_cases(CATALOG))
    for table in (HA_FAULTS, MN_FAULTS, FA_FAULTS):
        for fault, reqs in table.items():
            role = fault.split(".")[0].upper()
            assert any((r, role) in pairs for r in reqs), f"{fault}: no case checks {reqs}"


def test_the_test_design_check_names_every_gap():
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import check_coverage

    cases = check_coverage.load_cases(CATALOG)
    design = check_coverage.load_design()
    assert check_coverage.design_problems(CATALOG, cases, design) == []
    broken = dict(design)
    del broken["RFC5454-3.3-06"]
    broken["RFC5454-3.3-03"] = {"involves": "x", "classes": {
        "no case yet": [], "wrong case": ["MN-3.5-001"], "unknown": ["HA-9-999"],
        "unobservable": "exempt: the device's internal table order is never on the wire"}}
    problems = check_coverage.design_problems(CATALOG, cases, broken)
    assert any("RFC5454-3.3-06 (MUST) has no test-design record" in p for p in problems)
    assert any("'no case yet' has no case" in p for p in problems)
    assert any("case MN-3.5-001 checks no RFC5454-3.3-03" in p for p in problems)
    assert any("no case HA-9-999" in p for p in problems)
    assert not any("unobservable" in p for p in problems)


def test_a_table_case_is_one_result_per_row_and_rejects_bad_rows(tmp_path):
    body = """section: "3.3"
role: ha
cases:
  - id: HA-3.3-900
    title: t
    requirements: [RFC5454-3.3-02]
    purpose: Ensure that x
    rows:
      - {name: a, length: 1}
      - {name: b, length: 2}
    steps:
      - register: {extensions: [{prefix-request: {prefix: "2001:db8::", length: $length}}]}
"""
    path = tmp_path / "rfc-table.yaml"
    path.write_text(body)
    cases = load_case_file(path, CATALOG)
    assert [c.id for c in cases] == ["HA-3.3-900[a]", "HA-3.3-900[b]"]
    assert [c.parameters["length"] for c in cases] == [1, 2]
    assert all(c.selected_by(["HA-3.3-900"]) for c in cases)
    assert cases[0].selected_by(["HA-3.3-900[a]"]) and not cases[1].selected_by(["HA-3.3-900[a]"])
    path.write_text(body.replace("name: b", "name: a"))
    with pytest.raises(CaseFileError, match="duplicate row name 'a'"):
        load_case_file(path, CATALOG)
    path.write_text(body.replace("      - {name: a, length: 1}\n      - {name: b, length: 2}\n",
                                 "      - 3\n"))
    with pytest.raises(CaseFileError, match=r"rows\[0\]: expected a mapping"):
        load_case_file(path, CATALOG)


def test_a_row_adds_its_own_pics_to_the_cases(tmp_path):
    body = """section: "3.3"
role: ha
cases:
  - id: HA-3.3-901
    title: t
    requirements: [RFC5454-3.3-02]
    purpose: Ensure that x
    pics: [explicit-mode]
    rows:
      - {name: plain, length: 1}
      - {name: with-gre, length: 2, pics: [gre]}
    steps:
      - register: {extensions: [{prefix-request: {prefix: "2001:db8::", length: $length}}]}
"""
    path = tmp_path / "rfc-table.yaml"
    path.write_text(body)
    plain, gre = load_case_file(path, CATALOG)
    assert plain.pics == ["explicit-mode"] and gre.pics == ["explicit-mode", "gre"]
    assert "pics" not in gre.parameters
    path.write_text(body.replace("pics: [gre]", "pics: [gree]"))
    with pytest.raises(CaseFileError, match=r"rows\[1\]\.pics: unknown PICS item 'gree'"):
        load_case_file(path, CATALOG)
