"""Selecting cases the pytest way: markers with keyword values (-m "role(value='ha')"), the
pics marker, and -k on titles and requirement ids, not only on case ids."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.suite.inmemory import load_cases

ROOT = Path(__file__).resolve().parents[1]
CASES = load_cases()


def _collected(*selection: str) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "testcases", "-p",
                           "conformance.suite.plugin", "-p", "no:cacheprovider", "--memory",
                           "--co", "-q", *selection], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return {m.group(1) for m in re.finditer(r"::([A-Z]+-[^\s]+)$", done.stdout, re.M)}


@pytest.mark.parametrize("selection, expected", [
    (("-m", "role(value='mn')"), {c.id for c in CASES if c.role == "mn"}),
    (("-m", "pics(value='gre')"), {c.id for c in CASES if "gre" in c.pics}),
    (("-k", "RFC5454-3.3-06"), {c.id for c in CASES if "RFC5454-3.3-06" in c.requirements}),
    (("-k", "overlap"), {c.id for c in CASES if "overlap" in c.title.lower()}),
], ids=["role-marker", "pics-marker", "k-requirement", "k-title"])
def test_selection(selection, expected):
    assert expected and _collected(*selection) == expected
