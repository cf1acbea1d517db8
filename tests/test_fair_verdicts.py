"""Fair verdicts (issue 10): attribution to the device's own link, matching by identification,
suite errors that never become FAILs, checks validated at load, the requirement roll-up, and
no false greens. The steps run against a scripted in-memory lab: each test says what appears
on which link."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conformance.catalog import load_catalog
from conformance.codec import (
    AuthExtension, PrefixReply, RegistrationReply, decode, encode,
)
from conformance.errors import DeviceDidNotProvide, NotDelivered, SuiteError
from conformance.lab.agent import ipv4_udp, matches, summarize
from conformance.lab.profile import reference_profile
from conformance.lab.topology import FA, FA_TRANSIT, HA, HOA
from conformance.waiting import SYSTEM_CLOCK
from conformance.suite.model import CaseFileError, Step, TestCase, load_case_file
from conformance.suite.registry import CHECKS, STEPS
from conformance.suite.steps import CaseRun, run_case
from conformance.suite.steps.context import IPV4_HEADER_RULE, Absent
from conformance.suite.verdict import Verdict, case_requirement_verdicts, judge

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


class FakeAgent:
    def __init__(self, net, host):
        self.net, self.host = net, host

    def mark(self, iface):
        return self.net.seq

    def wait(self, iface, flt, timeout, since=0):
        for seq, link, packet in self.net.packets:
            if link == iface and seq > since and matches(summarize(packet), flt):
                return {"matched": True, "seq": seq, "packet": packet.hex()}
        return {"matched": False, "seen": []}

    def send_udp(self, src, dst, payload, sport=434, dport=434):
        self.net.sent.append((src, dst, payload))
        for link, packet in self.net.on_send(src, dst, payload):
            self.net.put(link, packet)

    def send_ip(self, packet):
        self.net.sent.append(("ip", None, packet))


class FakeLab:
    """Links are named after themselves; `on_send` decides what the 'network' does."""

    def __init__(self, on_send):
        self.on_send = on_send
        self.packets, self.sent, self.seq = [], [], 0
        self.testbed = SimpleNamespace(pixit={"reply_timeout": 0.05, "negative_timeout": 0.05,
                                              "registration_lifetime": 600})
        self.addresses = SimpleNamespace(as_vars=lambda: {
            "ha": HA, "fa": FA, "hoa": HOA, "coa": "203.0.113.70", "cn6": "2001:db8:ff::1",
            "fa_transit": FA_TRANSIT})
        self.watch = {link: (link, link) for link in ("foreign", "transit", "correspondent")}
        self.clock = SYSTEM_CLOCK

    def put(self, link, packet):
        self.seq += 1
        self.packets.append((self.seq, link, packet))

    def agent(self, host):
        return FakeAgent(self, host)

    def agent_for(self, role):
        return FakeAgent(self, role)

    def profile_for(self, role):
        return reference_profile(role)

    def dut(self, role):
        return None


def reply_bytes(request_payload, code=0, ident=None, prefixes=True):
    request = decode(request_payload)
    exts = [PrefixReply.answering(p, 0) for p in request.prefix_requests] if prefixes else []
    reply = RegistrationReply(code, 600, request.home_address, HA,
                              request.identification if ident is None else ident,
                              exts + [AuthExtension(32, 256)])
    return encode(reply, {32: KEY})


def case(steps, role="ha", topology="fa", requirements=("RFC5454-3.3-02",)):
    return TestCase("T-1", "t", list(requirements), role, "Ensure that", [], topology, {},
                    [Step(kind, spec, i, [], spec.pop("precondition", False), 3 + i)
                     for i, (kind, spec) in enumerate(steps)], "testcases/t.yaml", "3.3")


def judged(run):
    """The case's own checks (the IPv4 header judge of every device packet left out)."""
    return [r for r in run.results if IPV4_HEADER_RULE not in r.requirements]


def register_then_expect(checks=None, precondition=False):
    expect = {"checks": checks or [{"check": "reply_code", "in": [0, 1]}]}
    if precondition:
        expect["precondition"] = True
    return [("register", {"extensions": [{"prefix-request": "2001:db8:10:1::/64"}]}),
            ("expect_reply", expect)]


# ---------------------------------------------------------------------- attribution
def test_a_request_the_fa_never_relayed_is_not_the_has_fault():
    lab = FakeLab(lambda src, dst, payload: [])  # the FA drops everything
    run = CaseRun(lab, case(register_then_expect()))
    with pytest.raises(NotDelivered, match="never reached the HA"):
        run_case(run)
    assert not [r for r in run.results if r.ok is False]


def test_the_has_reply_is_judged_on_its_own_link_even_when_the_fa_drops_it():
    def network(src, dst, payload):  # relayed to the HA, which answers; the FA drops the reply
        return [("transit", ipv4_udp(FA_TRANSIT, HA, 434, 434, payload)),
                ("transit", ipv4_udp(HA, FA_TRANSIT, 434, 434, reply_bytes(payload)))]
    run = CaseRun(FakeLab(network), case(register_then_expect()))
    run_case(run)
    assert [r.ok for r in judged(run)] == [True]


def test_robustness_variants_the_fa_dropped_are_inconclusive_not_device_verdicts():
    lab = FakeLab(lambda src, dst, payload: [])
    run = CaseRun(lab, case([("robustness", {"count": 3})]))
    run_case(run)
    assert run.results and all(r.ok is None for r in run.results)
    assert judge(run.results, CATALOG) == Verdict.INCONCLUSIVE


# ---------------------------------------------------------------------- matching
def test_a_stale_reply_never_answers_a_later_request():
    stale = {}

    def network(src, dst, payload):
        out = [("transit", ipv4_udp(FA_TRANSIT, HA, 434, 434, payload))]
        if "first" not in stale:  # the first request is answered only after the second
            stale["first"] = payload
            return out
        return out + [("transit", ipv4_udp(HA, FA_TRANSIT, 434, 434,
                                           reply_bytes(stale["first"], code=131))),
                      ("transit", ipv4_udp(HA, FA_TRANSIT, 434, 434, reply_bytes(payload)))]
    steps = [("register", {"extensions": [{"prefix-request": "2001:db8:10:1::/64"}]})]
    steps += register_then_expect([{"check": "reply_code", "equals": 0},
                                   {"check": "identification_echoed"}])
    run = CaseRun(FakeLab(network), case(steps))
    run_case(run)
    assert [r.ok for r in judged(run)] == [True, True]


def test_a_133_reply_matches_on_the_low_32_bits():
    def network(src, dst, payload):
        ident = decode(payload).identification
        return [("transit", ipv4_udp(FA_TRANSIT, HA, 434, 434, payload)),
                ("transit", ipv4_udp(HA, FA_TRANSIT, 434, 434, reply_bytes(
                    payload, 133, (ident + (5 << 32)) & (2**64 - 1), prefixes=False)))]
    run = CaseRun(FakeLab(network), case(register_then_expect(
        [{"check": "reply_code", "equals": 133}])))
    run_case(run)
    assert [r.ok for r in judged(run)] == [True]


# ---------------------------------------------------------------------- preconditions
def test_a_refused_valid_registration_is_a_fail_naming_the_code():
    def network(src, dst, payload):
        return [("transit", ipv4_udp(FA_TRANSIT, HA, 434, 434, payload)),
                ("transit", ipv4_udp(HA, FA_TRANSIT, 434, 434,
                                     reply_bytes(payload, 128, prefixes=False)))]
    steps = register_then_expect(precondition=True) + [("send_ipv6", {"dst": "2001:db8::1"})]
    run = CaseRun(FakeLab(network), case(steps))
    run_case(run)
    failed = [r for r in run.results if r.ok is False]
    assert [(r.requirements, r.actual) for r in failed] == [(["RFC3344-3.8.2-02"], "code 128")]
    assert judge(run.results, CATALOG) == Verdict.FAIL


# ---------------------------------------------------------------------- two error worlds
def test_a_suite_bug_in_a_check_is_an_error_never_a_fail(monkeypatch):
    def broken(ctx, reply):
        raise KeyError("bug")
    from conformance.suite import registry

    kind = registry.CHECKS["no_prefix_replies"]
    monkeypatch.setitem(registry.CHECKS, "no_prefix_replies",
                        registry.CheckKind(kind.name, broken, kind.subject, kind.params))

    def network(src, dst, payload):
        return [("transit", ipv4_udp(FA_TRANSIT, HA, 434, 434, payload)),
                ("transit", ipv4_udp(HA, FA_TRANSIT, 434, 434, reply_bytes(payload)))]
    run = CaseRun(FakeLab(network), case(register_then_expect(
        [{"check": "no_prefix_replies"}])))
    with pytest.raises(SuiteError, match=r"testcases/t.yaml:4 case T-1: check no_prefix_"):
        run_case(run)
    assert run.results == []


def test_a_missing_earlier_observation_without_a_failure_is_an_error():
    run = CaseRun(FakeLab(lambda *a: []), case([("send_to_mn", {"encapsulation": "udp",
                                                                "inner_src": "2001:db8::1"})],
                                               role="mn"))
    run.vars["request"] = Absent("no request")
    with pytest.raises(SuiteError, match="yet no check failed"):
        run_case(run)
    with pytest.raises(DeviceDidNotProvide):
        run.saved("request")


# ---------------------------------------------------------------------- validated at load
BASE = {"section": "3.3", "role": "ha", "cases": [{
    "id": "X-1", "title": "t", "requirements": ["RFC5454-3.3-02"], "purpose": "Ensure that x.",
    "steps": [{"register": {"extensions": [{"prefix-request": "2001:db8:10:1::/64"}]}},
              {"expect_reply": {"checks": []}}]}]}


@pytest.mark.parametrize("checks, step, message", [
    ([{"check": "reply_code", "code": 131}], None, "unknown argument 'code'"),
    ([{"check": "prefix_reply_code", "prefix": "2001:db8::/644", "accept": True}], None,
     "not an IPv6 prefix"),
    ([{"check": "prefix_reply_code", "accept": True}], None, "needs argument 'prefix'"),
    ([{"check": "reply_code", "equals": "zero"}], None, "expected an integer"),
    ([{"check": "outer_tos", "equals": 0}], None, "judges a packet"),
    ([], {"send_ipv6": {"dts": "2001:db8::1"}}, "did you mean 'dst'"),
])
def test_bad_case_files_fail_at_load_with_file_line_and_path(tmp_path, checks, step, message):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["cases"][0]["steps"][1]["expect_reply"]["checks"] = checks
    if step:
        data["cases"][0]["steps"].append(step)
    path = tmp_path / "rfc-bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(CaseFileError) as info:
        load_case_file(path, CATALOG)
    text = str(info.value)
    assert str(path) in text and "cases[0] (X-1).steps[" in text and message in text
    assert "(line " in text


def test_every_check_and_step_option_is_used_by_some_case():
    used_checks, used_options = set(), set()
    for path in (ROOT / "testcases").glob("rfc*.yaml"):
        for c in yaml.safe_load(path.read_text())["cases"]:
            for s in c["steps"]:
                kind = next(k for k in s if k in STEPS)
                body = s[kind] or {}
                used_options |= {(kind, k) for k in body}
                checks = list(body.get("checks") or [])
                for alt in body.get("accept") or []:
                    checks += alt.get("checks") or []
                used_checks |= {ch["check"] for ch in checks}
    assert set(CHECKS) - used_checks == set()
    declared = {(k, o) for k, kind in STEPS.items() for o in kind.options}
    assert declared - used_options == set()


# ---------------------------------------------------------------------- roll-up
def test_rollup_only_for_the_role_under_test_and_shoulds_are_non_strict():
    record = {"role": "ha", "verdict": "FAIL", "requirements": ["RFC5454-2.1-F1",
                                                                "RFC5454-3.3-02"],
              "checks": [{"ok": False, "requirements": ["RFC5454-2.1-F1", "RFC5454-3.3-02"]},
                         {"ok": False, "requirements": ["RFC5454-3.3-03"]}]}
    got = case_requirement_verdicts(record, CATALOG)
    assert "RFC5454-2.1-F1" not in got  # binds the MN only
    assert got["RFC5454-3.3-02"] == "NON-STRICT"  # a SHOULD
    assert got["RFC5454-3.3-03"] == "FAIL"  # a MUST NOT
    assert "RFC5454-2.2-F1" not in got  # carried by no check


# ---------------------------------------------------------------------- independence
def test_the_suite_never_imports_the_reference_nodes():
    offenders = []
    for folder in ("suite", "reports", "lab"):
        for path in (ROOT / "conformance" / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                offenders += [f"{path.name}: {n}" for n in names
                              if n.startswith("conformance.nodes")]
    assert offenders == []


# ---------------------------------------------------------------------- no false greens
@pytest.mark.parametrize("args, code, text", [
    (["--case", "HA-3344-01"], 2, "closest: HA-3344-0"),
    (["--requirement", "RFC5454-9.9-99"], 2, "unknown --requirement"),
    (["--section", "3.99"], 2, "unknown --section"),
])
def test_unknown_selections_exit_2_naming_the_closest(args, code, text):
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == code and text in proc.stderr


def test_report_counts_requirements_by_level_and_lists_paraphrased_entries(tmp_path):
    from conformance.reports.writer import write_reports
    from conformance.suite.verdict import ExpectedFailures

    checks = [{"check": "c", "ok": False, "requirements": ["RFC5454-3.3-02"], "expected": "e",
               "actual": "a", "step": 0, "detail": ""},
              {"check": "d", "ok": True, "requirements": ["RFC3344-1.9-02"], "expected": "e",
               "actual": "a", "step": 0, "detail": ""}]
    case = {"id": "X-1", "title": "t", "file": "testcases/x.yaml", "role": "ha",
            "section": "3.3", "requirements": ["RFC5454-3.3-03"], "purpose": "Ensure that x",
            "pics": [], "verdict": "NON-STRICT", "message": "m", "checks": checks, "trace": [],
            "evidence": {}, "waited": 0, "duration": 1.0, "rerun": "r", "steps": []}
    state = SimpleNamespace(out=tmp_path, cases=[case], catalog=CATALOG, started=0.0,
                            profiles={}, explicit_duts=False, run_id="r", testbed=None,
                            expected=ExpectedFailures(), strict=False)
    summary = write_reports(state)
    assert summary["by_level"] == {"SHOULD": {"NON-STRICT": 1}, "MUST": {"PASS": 1}}
    results = __import__("json").loads((tmp_path / "results.json").read_text())
    assert results["paraphrased"] == ["RFC3344-1.9-02"]
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    assert verdicts["RFC5454-3.3-03"] == "NOT-RUN"  # no check carried it
    assert verdicts["RFC5454-2.1-F1"] == "NOT-TESTED-ROLE"  # MN only, HA-only run
    assert "Paraphrased requirements" in (tmp_path / "report.html").read_text()


def test_answering_a_prefix_request_the_mn_never_sent_ends_the_case_with_its_failure():
    from conformance.codec import RegistrationRequest
    from conformance.suite.verdict import CheckResult

    request = RegistrationRequest(0, 600, HOA, HA, FA, 1, [AuthExtension(32, 256)])
    payload = encode(request, {32: KEY})
    run = CaseRun(FakeLab(lambda *a: []), case(
        [("reply", {"extensions": [{"prefix-reply": {"request": 1, "code": 0}}]}),
         ("send_ipv6", {"dst": "2001:db8::1"})], role="mn"))
    run.vars["request"] = {"message": decode(payload), "payload": payload, "src": HOA}
    run.results.append(CheckResult("requested_prefixes", False, ["RFC5454-3.1-01"], "2", "0"))
    run_case(run)
    assert "not run" in run.trace[-1].what and judge(run.results, CATALOG) == Verdict.FAIL


def test_section_is_each_cases_own():
    cases = {c.id: c for path in (ROOT / "testcases").glob("rfc*.yaml")
             for c in load_case_file(path, CATALOG)}
    assert cases["HA-3.6-001[ce]"].section == "3.6"  # lives in rfc5454-3.3.2-ha.yaml
    assert cases["HA-4213-001"].section == "4213"
    assert cases["HA-3.3.2-001"].section == "3.3.2"


def test_pytest_without_a_testbed_is_not_a_green_run(tmp_path):
    """No --testbed: the plugin brings up the built-in lab and judges the case, or, where no
    lab can come up, stops with a usage error; never a green run of skipped cases."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "testcases"), "-p",
                           "conformance.suite.plugin", "-q", "-p", "no:cacheprovider",
                           "--case", "HA-3.3-001", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    out = proc.stderr + proc.stdout
    assert "skipped" not in out
    assert (proc.returncode == 0 and "1 passed" in out) or \
        (proc.returncode == 4 and "no --testbed given and the built-in lab cannot come up" in out)


def test_a_rejecting_header_counts_as_rejecting_each_prefix_but_never_as_accepting():
    from conformance.suite.checks import prefix_reply_code

    rejected = RegistrationReply(129, 0, HOA, HA, 1, [AuthExtension(32, 256)])
    assert prefix_reply_code(None, rejected, "2001:db8:10:1::/64", reject=True)[0]
    assert not prefix_reply_code(None, rejected, "2001:db8:10:1::/64", accept=True)[0]
    accepted = RegistrationReply(0, 60, HOA, HA, 1, [AuthExtension(32, 256)])
    assert not prefix_reply_code(None, accepted, "2001:db8:10:1::/64", reject=True)[0]
