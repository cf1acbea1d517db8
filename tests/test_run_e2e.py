"""`dsmip4 run` on the built-in lab: clean reference devices pass; a device with a fault FAILs
the case mapped to the broken requirement; expected failures, XPASS and NOT-APPLICABLE."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _possible():
    if os.geteuid() != 0:
        return "needs root for the built-in lab"
    if not Path("/usr/sbin/sshd").exists():
        return "needs openssh-server (make setup installs it)"
    return None


reason = _possible()
if reason and os.environ.get("DSMIP4_REQUIRE_TOOLS"):
    pytest.fail(reason, pytrace=False)
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


def dsmip4_run(tmp_path, *args):
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    results = json.loads((out / "results.json").read_text()) if \
        (out / "results.json").exists() else None
    return proc, results, out


def _profile(tmp_path, role="ha", **changes) -> str:
    data = yaml.safe_load((ROOT / f"fixtures/profiles/reference-{role}.yaml").read_text())
    for key, value in changes.items():
        section, _, name = key.partition("__")
        data[section][name] = value
    path = tmp_path / f"{role}-variant.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def verdicts(results):
    return {c["id"]: c["verdict"] for c in results["cases"]}


def test_reference_passes_in_every_role_with_all_reports(tmp_path):
    proc, results, out = dsmip4_run(tmp_path, "--case", "HA-3.3-001", "--case", "MN-3.5-004",
                                    "--case", "FA-3.4-001")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert verdicts(results) == {"HA-3.3-001": "PASS", "MN-3.5-004": "PASS",
                                 "FA-3.4-001": "PASS"}
    for name in ("results.json", "junit.xml", "report.html"):
        assert (out / name).is_file()
    assert list((out / "allure-results").glob("*-result.json"))
    case = results["cases"][0]
    assert case["evidence"]["pcap_foreign"] and Path(case["evidence"]["pcap_foreign"]).exists()
    assert case["evidence"]["bindings_after"] and case["trace"]
    assert "protocol waits" in proc.stdout and "report:" in proc.stdout
    assert _icmp_errors_from_suite_hosts(results) == []


def _icmp_errors_from_suite_hosts(results) -> list[str]:
    """ICMP errors in a run's captures sent by a host other than the device's (issue 13 item
    8: the suite's hosts handle their roles in user space and must not answer the device)."""
    from scapy.all import ICMP, IP, IPv6, rdpcap
    from conformance.lab import topology

    found = []
    for case in results["cases"]:
        role = case["id"].split("-")[0].lower()
        own = {a.split("/")[0] for addrs in topology.HOSTS[role]["interfaces"].values()
               for a in addrs}
        for key, path in case["evidence"].items():
            if not key.startswith("pcap_") or not path or not Path(path).stat().st_size > 24:
                continue
            for pkt in rdpcap(path):
                if IP in pkt and ICMP in pkt and pkt[ICMP].type in (3, 4, 11, 12):
                    src = pkt[IP].src
                elif IPv6 in pkt and pkt[IPv6].nh == 58 and bytes(pkt[IPv6].payload)[:1] \
                        and bytes(pkt[IPv6].payload)[0] < 5:
                    src = pkt[IPv6].src
                else:
                    continue
                if src not in own:
                    found.append(f"{case['id']} {key}: ICMP error from {src}")
    return found


def test_a_fault_in_the_device_is_a_fail_with_evidence(tmp_path):
    dut = _profile(tmp_path, parameters__faults="[ha.duplicate-prefix-reply]")
    proc, results, _ = dsmip4_run(tmp_path, "--dut", dut, "--case", "HA-3.3-002")
    assert proc.returncode == 1
    [case] = results["cases"]
    assert case["verdict"] == "FAIL"
    assert "no_duplicate_prefix_replies [RFC5454-3.3-03]" in case["message"]
    assert "hex " in case["message"]  # what arrived, as hex
    assert case["rerun"].startswith("dsmip4 run --case HA-3.3-002 --dut ")
    req = next(r for r in results["requirements"] if r["id"] == "RFC5454-3.3-03")
    assert req["verdict"] == "FAIL"

    xfail = tmp_path / "xfail.yaml"
    xfail.write_text("expected_failures:\n  - {case: HA-3.3-002, signature: RFC5454-3.3-03}\n")
    proc, results, _ = dsmip4_run(tmp_path, "--dut", dut, "--case", "HA-3.3-002",
                                  "--expected-failures", str(xfail))
    assert proc.returncode == 0 and verdicts(results) == {"HA-3.3-002": "XFAIL"}
    clean = _profile(tmp_path)
    proc, results, _ = dsmip4_run(tmp_path, "--dut", clean, "--case", "HA-3.3-002",
                                  "--expected-failures", str(xfail))
    assert proc.returncode == 1 and verdicts(results) == {"HA-3.3-002": "XPASS"}


def test_pics_absent_is_not_applicable_never_a_pass(tmp_path):
    pics = yaml.safe_load((ROOT / "fixtures/profiles/reference-ha.yaml").read_text())["pics"]
    pics["tunneling-mode-honoured"] = False
    data = yaml.safe_load((ROOT / "fixtures/profiles/reference-ha.yaml").read_text())
    data["pics"] = pics
    path = tmp_path / "no-coa.yaml"
    path.write_text(yaml.safe_dump(data))
    proc, results, _ = dsmip4_run(tmp_path, "--dut", str(path), "--case", "HA-3.3-007")
    assert verdicts(results) == {"HA-3.3-007": "NOT-APPLICABLE"}
    # A run in which nothing applies judged nothing: exit 4 saying why, never a green run.
    assert proc.returncode == 4 and "PICS excludes all 1 selected case" in proc.stderr


def test_cases_spread_over_two_labs_with_xdist(tmp_path):
    from conformance.lab.builtin import BuiltinLab

    labs = [BuiltinLab().up(), BuiltinLab().up()]
    try:
        out = tmp_path / "xdist"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", str(ROOT / "testcases"), "-n", "2", "-q",
             "-p", "no:cacheprovider", "--rootdir", str(ROOT), "--out", str(out),
             "--case", "HA-3.3-001", "--case", "HA-3.3-002", "--case", "HA-3.3-003",
             "--case", "HA-3.8-001"] + [a for lab in labs for a in
                                        ("--testbed", str(lab.testbed_path))],
            capture_output=True, text=True, timeout=300, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert proc.returncode == 0, proc.stdout[-2000:]
        results = json.loads((out / "results.json").read_text())
        assert sorted(verdicts(results).items()) == [
            ("HA-3.3-001", "PASS"), ("HA-3.3-002", "PASS"), ("HA-3.3-003", "PASS"),
            ("HA-3.8-001", "PASS")]
        assert not list(out.glob("partial-*.json"))
    finally:
        for lab in labs:
            lab.down()


PROFILES = sorted((ROOT / "fixtures/profiles").glob("*.yaml")) + \
    sorted((ROOT / "fixtures/profiles/variants").glob("*.yaml"))


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_shipped_profile_runs_standalone_without_a_fail(tmp_path, profile):
    """Each shipped profile, alone under test in its role, with the peers the suite brings:
    nothing FAILs, errs or stays inconclusive (the FA-HA variant's HA peer signs its replies)."""
    from conformance.lab.profile import load_profile

    role = load_profile(profile).role
    proc, results, _ = dsmip4_run(tmp_path, "--dut", str(profile), "--role", role)
    assert results is not None, proc.stderr[-2000:]
    bad = {k: v for k, v in verdicts(results).items() if v not in ("PASS", "NOT-APPLICABLE")}
    assert bad == {} and proc.returncode == 0, proc.stdout[-3000:]


def test_two_runs_side_by_side_both_pass(tmp_path):
    """Issue 13 item 3: labs started at the same moment get their own prefix, management
    subnet and folders (allocation is atomic across processes), so both runs pass."""
    procs, outs = [], []
    for i in range(2):
        outs.append(tmp_path / f"run{i}")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "conformance", "run", "--out", str(outs[i]), "--role", "fa"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(ROOT))))
    logs = [proc.communicate(timeout=300)[0] for proc in procs]
    for proc, log, out in zip(procs, logs, outs):
        assert proc.returncode == 0, log[-3000:]
        results = json.loads((out / "results.json").read_text())
        assert set(verdicts(results).values()) <= {"PASS", "NOT-APPLICABLE"}, verdicts(results)
    labs = [json.loads((out / "results.json").read_text())["run"]["testbed"]["name"]
            for out in outs]
    assert labs[0] != labs[1]


def test_plain_pytest_without_a_testbed_brings_up_the_builtin_lab(tmp_path):
    """`pytest testcases/` with no --testbed runs on a built-in lab of its own, as `dsmip4 run`
    does, and takes it down after (never a green run of skipped cases)."""
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "testcases", "-p",
                           "conformance.suite.plugin", "-p", "no:cacheprovider", "--case",
                           "HA-3.3-001", "--out", str(tmp_path / "run"), "-q"],
                          capture_output=True, text=True, cwd=root, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [c["verdict"] for c in results["cases"]] == ["PASS"]
    assert results["run"]["testbeds"] and results["run"]["testbeds"] != ["in-memory"]
