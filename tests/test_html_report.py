"""report.html as a certification engineer reads it: an overall statement per role, the PICS
and PIXIT it certifies against, readable values, a sequence chart, evidence links that work
from a zip of the folder, and a SHA256SUMS that verifies."""

from __future__ import annotations

import hashlib
import json
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

from conformance.reports.html_report import readable, statements
from conformance.reports.msc import FAILED, sequence_svg
from conformance.reports.writer import write_reports
from conformance.suite.verdict import ExpectedFailures
from conformance.catalog import load_catalog

CATALOG = load_catalog()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])
        if attrs.get("id"):
            self.ids.add(attrs["id"])


def _case(case_id: str, verdict: str, tmp: Path, **extra) -> dict:
    folder = tmp / "evidence" / case_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "foreign.pcap").write_bytes(case_id.encode())
    return {"id": case_id, "title": f"title of {case_id} <script>x</script>",
            "file": "testcases/x.yaml", "role": "ha", "section": "3.3",
            "requirements": ["RFC5454-3.3-03"], "purpose": "Ensure that x", "pics": [],
            "verdict": verdict, "message": "step 2 no_duplicate_prefix_replies",
            "checks": [{"check": "no_duplicate_prefix_replies", "ok": verdict == "PASS",
                        "requirements": ["RFC5454-3.3-03"], "expected": "at most one",
                        "actual": "{'src': '203.0.113.1', 'df': True}", "step": 1,
                        "detail": ""}],
            "trace": [{"time": 1, "from": "suite (MN)", "to": "DUT (HA)", "what": "RRQ",
                       "step": 0},
                      {"time": 2, "from": "DUT (HA)", "to": "suite (MN)", "what": "RRP",
                       "step": 1}],
            "evidence": {"pcap_foreign": str(folder / "foreign.pcap")},
            "waited": 0.5, "duration": 1.0, "rerun": f"dsmip4 run --case {case_id}",
            "steps": [], **extra}


def _write(tmp: Path, cases: list[dict], **run) -> dict:
    profile = SimpleNamespace(to_dict=lambda: {
        "name": "vendor-ha", "role": "ha", "pics": {"gre": True, "mld": False},
        "vendor": "V", "model": "M", "version": "9",
        "pixit": {"mobile_nodes": {"mn1": {"home_address": "203.0.113.10", "spi": 256,
                                           "algorithm": "hmac-md5", "key": "(set, 16 bytes)"}},
                  "registration_flags": ""},
        "parameters": {"max_lifetime": 1800}})
    state = SimpleNamespace(out=tmp, cases=cases, catalog=CATALOG, started=0.0,
                            profiles={"ha": profile}, explicit_duts=True, run_id="r",
                            testbed=None, expected=ExpectedFailures(), strict=False, **run)
    write_reports(state)
    return json.loads((tmp / "results.json").read_text())


def test_the_statement_says_conformant_or_not_and_why(tmp_path):
    passed = _write(tmp_path / "a", [_case("HA-1", "PASS", tmp_path / "a")])
    assert [s["verdict"] for s in statements(passed)] == ["CONFORMANT"]
    failed = _write(tmp_path / "b", [_case("HA-1", "PASS", tmp_path / "b"),
                                     _case("HA-2", "FAIL", tmp_path / "b")])
    (statement,) = statements(failed)
    assert statement["verdict"] == "NOT CONFORMANT" and "1 MUST requirement(s)" in \
        statement["text"]
    errored = _write(tmp_path / "c", [_case("HA-1", "PASS", tmp_path / "c"),
                                      _case("HA-3", "ERROR", tmp_path / "c")])
    assert statements(errored)[0]["verdict"] == "NOT ESTABLISHED"


def test_the_page_shows_pics_pixit_and_readable_values_escaped(tmp_path):
    _write(tmp_path, [_case("HA-2", "FAIL", tmp_path)])
    page = (tmp_path / "report.html").read_text()
    assert "HA vendor-ha: NOT CONFORMANT" in page
    assert "<td>gre</td><td>yes</td>" in page and "<td>mld</td><td>no</td>" in page
    assert "home address 203.0.113.10, SPI 256" in page and "(set, 16 bytes)" in page
    assert "src: 203.0.113.1\ndf: yes" in page and "{'src'" not in page
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert "<svg" in page and "@media print" in page


def test_readable_values():
    assert readable("True") == "yes" and readable("[1, 2]") == "1, 2"
    assert readable("{'a': [True, 'b']}") == "a: yes, b"
    assert readable("2 duplicate(s)") == "2 duplicate(s)" and readable("") == ""


def test_the_sequence_chart_marks_the_failed_step():
    trace = [{"from": "A", "to": "B", "what": "one", "step": 0},
             {"from": "B", "to": "A", "what": "two <&>", "step": 1}]
    svg = sequence_svg(trace, {1})
    assert svg.count("<line") == 2 + 2  # two lanes, two arrows
    assert svg.count(FAILED) == 2 and "two &lt;&amp;&gt;" in svg


def test_links_work_from_a_zip_and_the_checksums_verify(tmp_path):
    run = tmp_path / "run"
    _write(run, [_case("HA-1", "PASS", run), _case("HA-2", "FAIL", run)])
    archive = tmp_path / "report.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in run.rglob("*"):
            z.write(path, path.relative_to(run))
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(archive).extractall(unpacked)
    links = _Links()
    links.feed((unpacked / "report.html").read_text())
    files = [h for h in links.hrefs if not h.startswith("#")]
    assert "evidence/HA-2/foreign.pcap" in files and "SHA256SUMS" in files
    assert all((unpacked / h).is_file() for h in files), files
    assert all(h[1:] in links.ids for h in links.hrefs if h.startswith("#"))
    sums = (unpacked / "SHA256SUMS").read_text().splitlines()
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in sums}
    assert {"junit.xml", "results.json", "report.html", "evidence/HA-2/foreign.pcap"} <= \
        set(listed)
    assert all(hashlib.sha256((unpacked / name).read_bytes()).hexdigest() == digest
               for name, digest in listed.items())
