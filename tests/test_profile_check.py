"""`dsmip4 profile check`: every shipped profile passes; each of a set of common mistakes is
reported with the file, the line and a fix hint, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.lab.profile import load_profile
from conformance.suite.applicability import missing
from conformance.suite.model import load_case_file

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "fixtures" / "profiles"
BASE = (PROFILES / "reference-ha.yaml").read_text()
_ROLE_LINE = BASE.splitlines().index("role: ha") + 1


def _check(path: Path, *extra: str):
    return subprocess.run([sys.executable, "-m", "conformance", "profile", "check", str(path),
                           "--static", *extra], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("path", sorted(PROFILES.glob("reference-*.yaml")) +
                         sorted((PROFILES / "variants").glob("*.yaml")) +
                         sorted((PROFILES / "examples").glob("*.yaml")))
def test_every_shipped_profile_passes(path):
    done = _check(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "profile ready" in done.stdout


# (what to replace in the reference HA profile, with what, the line the error must name, and
# text the message or its fix hint must hold)
MISTAKES = [
    ("health:", "helth:", None, "did you mean 'health'"),
    ("  gre: true", "  gree: true", None, "did you mean 'gre'"),
    ("  mld: true", "  mld: yes please", None, "valid boolean"),
    ("role: ha", "role: router", None, "expected one of"),
    ("start: ", "begin: ", None, "unknown key 'begin'"),
    ("    format: json\n    path: bindings", "    format: xml\n    path: bindings", None,
     "'regex' or 'textfsm'"),
    ("    format: json\n    path: bindings", "    format: regex\n    path: bindings", None,
     "needs a pattern"),
    ("    format: json\n    path: bindings", "    format: regex\n    pattern: '(?P<a'", None,
     "not a regular expression"),
    ("  security_exception: '\"event\": \"security-exception\"'",
     "  security_exception: '(unclosed'", None, "not a regular expression"),
    ("spi: 256,", "spi: 12,", None, "reserved"),
    ("key: 00112233445566778899aabbccddeeff}", "key: not-hex}", None, "pattern"),
    ("mn1: {home_address: 203.0.113.10", "mn1: {home_address: 2001:db8::1", None,
     "IPv4 home address"),
    ('registration_flags: ""', "registration_flags: GQ", None, "RFC 3344"),
    ("    address: $ha_address", "    address: $ha_adress", None, "did you mean $ha_address?"),
    ("  name: reference-ha\n", "  nam: reference-ha\n", None, "did you mean 'name'"),
    ("  max_lifetime: 1800", "  max_lifetime: [1800]", None, "max_lifetime"),
    ("role: ha\n", "role: ha\nfiles: [{source: vendor-ha.deb, dest: $workdir/ha.deb}]\n", None,
     "no such file"),
    ("pixit:\n  mobile_nodes:", "pixit:\n  mobile_node:", None, "did you mean 'mobile_nodes'"),
    ("role: ha\n", "role: ha\nactions:\n  atach_fa: {restart: true}\n", _ROLE_LINE + 2,
     "did you mean 'attach_fa'"),
    ("health: ", "connection: {device_type: cisco_iso, username: admin}\nhealth: ", None,
     "did you mean 'cisco_ios'"),
    ("    format: json\n    path: bindings", "    format: textfsm\n    template: nowhere.textfsm",
     None, "no such TextFSM template"),
    ("health: \"", "health: {tcp: 2222, udp: 434}\nx_health: \"", None, "exactly one of"),
    ("role: ha\n", "role: ha\nactions:\n  restart: {}\n", _ROLE_LINE + 2, "needs params, restart"),
    ("role: ha\n", "role: ha\nactions:\n  join_group:\n    commands: [\"mcast join $grop\"]\n",
     _ROLE_LINE + 4, "did you mean $group?"),
]


@pytest.mark.parametrize("old, new, line, text", MISTAKES,
                         ids=[f"{i}-{m[1].split(':')[0].strip()[:20]}"
                              for i, m in enumerate(MISTAKES)])
def test_each_mistake_is_named_with_file_line_and_hint(tmp_path, old, new, line, text):
    assert old in BASE, old
    bad = tmp_path / "vendor-ha.yaml"
    bad.write_text(BASE.replace(old, new, 1))
    done = _check(bad)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    found = re.findall(re.escape(str(bad)) + r":(\d+)(?::\d+)?: \S+: .*\(fix: .+\)", out)
    assert found, out
    changed = BASE.replace(old, new, 1).splitlines()
    expected_line = line or next(i + 1 for i, ln in enumerate(changed)
                                 if new.splitlines()[0] in ln)
    assert any(abs(int(at) - expected_line) <= 1 for at in found), out
    assert text in out, out


def test_a_profile_without_a_second_mobile_node_is_not_applicable_for_its_cases(tmp_path):
    """Cases that need mn2 name what is missing instead of ending in ERROR."""
    from conformance.catalog import load_catalog

    text = BASE.replace("    mn2: {home_address: 203.0.113.11, spi: 257, "
                        "key: 0f0e0d0c0b0a09080706050403020100}\n", "")
    path = tmp_path / "one-mn-ha.yaml"
    path.write_text(text)
    profile = load_profile(path)
    assert set(profile.mobile_nodes) == {"mn1"}
    cases = load_case_file(ROOT / "testcases" / "rfc5454-3.3-ha.yaml", load_catalog())
    reasons = {c.id: missing(c, profile, profile) for c in cases}
    needing = [c for c, why in reasons.items() if why]
    assert needing and all("names no mobile node mn2" in reasons[c][0] for c in needing)
    assert any(not why for why in reasons.values())


def test_an_mn_whose_profile_lacks_an_action_or_a_setting_is_not_applicable(tmp_path):
    """A vendor MN that cannot be told to register from a co-located CoA, or whose template
    has no $groups, gets NOT-APPLICABLE naming the action or setting, never an ERROR."""
    from conformance.catalog import load_catalog

    base = (PROFILES / "reference-mn.yaml").read_text()
    text = base.replace("  attach_colocated:\n    params: {attach: \"{mode: colocated, "
                        "care_of_address: $care_of_address}\"}\n", "")
    text = text.replace("    groups: $groups\n", "")
    assert text.count("attach_colocated") == 0 and "$groups" not in text
    path = tmp_path / "vendor-mn.yaml"
    path.write_text(text)
    profile = load_profile(path)
    cases = load_case_file(ROOT / "testcases" / "rfc5454-3.6-mn.yaml", load_catalog())
    reasons = {c.id: " ".join(missing(c, profile, profile)) for c in cases}
    assert "maps no action attach_colocated" in reasons["MN-3.5-011"]
    assert "does not use ($groups)" in reasons["MN-3.3.3-001"]
    assert reasons["MN-3.5-010"] == ""


def test_a_case_file_never_holds_device_credentials():
    keys = set()
    for path in PROFILES.rglob("*.yaml"):
        keys |= set(re.findall(r"\bkey: ([0-9a-f]{32})", path.read_text()))
    assert keys
    for path in (ROOT / "testcases").glob("rfc*.yaml"):
        text = path.read_text()
        assert not any(k in text for k in keys), path


@pytest.mark.parametrize("flags, clean", [("G", True), ('""', False)])
def test_a_device_that_requires_gre_registers_through_pixit_alone(tmp_path, flags, clean):
    """The GRE-only example HA answers 128 to any request without G: with G in its PIXIT the
    suite's requests carry it and every case passes; without it, the cases fail."""
    import json

    text = (PROFILES / "examples" / "gre-only-ha.yaml").read_text()
    profile = tmp_path / "gre-only-ha.yaml"
    profile.write_text(text.replace("extends: ../reference-ha.yaml",
                                    f"extends: {PROFILES / 'reference-ha.yaml'}")
                       .replace("registration_flags: G", f"registration_flags: {flags}"))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not a worker
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--dut",
                           str(profile), "--role", "HA", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert (out / "results.json").is_file(), done.stdout[-2000:] + done.stderr[-2000:]
    verdicts = [c["verdict"] for c in json.loads((out / "results.json").read_text())["cases"]]
    assert verdicts
    if clean:
        assert set(verdicts) <= {"PASS", "NOT-APPLICABLE"}, verdicts
    else:
        assert verdicts.count("FAIL") > len(verdicts) // 2
