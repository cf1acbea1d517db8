"""What `dsmip4 run` prints: one line per case on stdout, each on its own line and printed
once, and the run summary once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_each_case_has_one_line_and_the_summary_prints_once(tmp_path):
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--role", "ha",
                           "--case", "HA-3.3-001", "--case", "HA-3.6-004", "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    case_lines = [line for line in lines if line.startswith("  HA-")]
    assert len(case_lines) == 2
    assert case_lines[0].split()[:2] == ["HA-3.3-001", "PASS"]
    assert case_lines[1].split()[:2] == ["HA-3.6-004", "NOT-APPLICABLE"]
    assert done.stdout.count("verdicts: PASS 1, NOT-APPLICABLE 1") == 1
    assert "DSMIPv4 conformance ===" not in done.stdout  # pytest's own summary section
    assert done.stdout.endswith("\n") and "HA-3.3-001" not in done.stderr


def test_results_json_follows_its_schema_and_names_the_run_once(tmp_path):
    import json

    import jsonschema

    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--role", "mn",
                           "--case", "MN-3344-008", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    schema = json.loads((ROOT / "schemas" / "results.schema.json").read_text())
    jsonschema.validate(results, schema)
    assert f"DSMIPv4 conformance run {results['run']['id']}" in done.stdout
    assert {c["testbed"] for c in results["cases"]} == {"in-memory"}


def test_version():
    done = subprocess.run([sys.executable, "-m", "conformance", "--version"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.startswith("dsmip4 0.")


def test_workers_print_each_case_once_and_args_after_dashes_reach_pytest(tmp_path):
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--role", "mn",
                           "-n", "2", "--out", str(tmp_path / "spread")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  MN-")]
    assert lines and len(lines) == len(set(lines))
    import json

    results = json.loads((tmp_path / "spread" / "results.json").read_text())
    assert sorted(c["id"] for c in results["cases"]) == sorted(lines)

    picked = subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--role",
                             "ha", "--out", str(tmp_path / "picked"), "--", "-k", "overlap"],
                            capture_output=True, text=True, cwd=ROOT)
    assert picked.returncode == 0, picked.stdout[-2000:] + picked.stderr[-2000:]
    chosen = json.loads((tmp_path / "picked" / "results.json").read_text())["cases"]
    assert chosen and all("overlap" in c["title"].lower() for c in chosen)
