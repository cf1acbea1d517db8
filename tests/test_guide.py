"""docs/writing-a-profile.md runs as written: its profile is the shipped example file, its
commands give the output and the verdicts it shows (the lab run itself is in test_lab.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "writing-a-profile.md").read_text()
EXAMPLE = ROOT / "fixtures" / "profiles" / "examples" / "rfc3344-ha.yaml"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def _dsmip4(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def guide_commands() -> list[list[str]]:
    return [line[len("$ dsmip4 "):].split() for line in GUIDE.splitlines()
            if line.startswith("$ dsmip4 ")]


def test_the_guides_profile_is_the_shipped_example():
    block = re.search(r"```yaml\n(# A plain RFC 3344 home agent.*?)```", GUIDE, re.S).group(1)
    assert block == EXAMPLE.read_text()


def test_profile_check_says_what_the_guide_shows():
    check = next(c for c in guide_commands() if c[:2] == ["profile", "check"])
    done = _dsmip4(*check, "--static")
    assert done.returncode == 0, done.stdout + done.stderr
    shown = re.search(r"cases of role ha: \d+ of \d+ can run", GUIDE).group()
    assert shown in done.stdout
    assert "HA-3.3-001: NOT-APPLICABLE: the device's PICS does not claim explicit-mode" \
        in done.stdout


def test_the_misspelt_key_is_reported_as_shown(tmp_path):
    shown = re.search(r"FAILED  rfc3344-ha\.yaml(:\d+:\d+: .*)", GUIDE).group(1)
    bad = tmp_path / "rfc3344-ha.yaml"
    bad.write_text(EXAMPLE.read_text().replace("extends: ../", f"extends: {EXAMPLE.parent}/../")
                   .replace("  explicit-mode: false", "  explict-mode: false"))
    done = _dsmip4("profile", "check", str(bad), "--static")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{bad}{shown}" in done.stdout, done.stdout


def _verdicts(profile: Path, out: Path) -> str:
    _dsmip4("run", "--memory", "--dut", str(profile), "--role", "ha", "--out", str(out))
    counts = json.loads((out / "results.json").read_text())["summary"]["counts"]
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def test_the_verdicts_are_the_guides(tmp_path):
    shown = re.search(r"verdicts: (.*)", GUIDE).group(1)
    assert _verdicts(EXAMPLE, tmp_path / "honest") == shown


def test_claiming_more_than_the_device_does_gets_the_fails_the_guide_names(tmp_path):
    fails = int(re.search(r"this device gets (\d+) FAIL", GUIDE).group(1))
    claims = tmp_path / "claims.yaml"
    claims.write_text(EXAMPLE.read_text().replace("extends: ../", f"extends: {EXAMPLE.parent}/../")
                      .replace("  explicit-mode: false", "  explicit-mode: true"))
    assert f"FAIL {fails}," in _verdicts(claims, tmp_path / "claims")
