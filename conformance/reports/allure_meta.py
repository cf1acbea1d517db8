"""What Allure needs beside the per-case results allure-pytest writes: the run's environment
(device identity, PICS, testbed, suite version), the categories that sort failures by verdict
and the executor (the suite and the run), as files in the allure-results directory."""

from __future__ import annotations

import json
from pathlib import Path

# Allure statuses: a device's FAIL, NON-STRICT (under --strict) and XPASS are "failed" (the
# case raises an AssertionError), ERROR is "broken", NOT-APPLICABLE/INCONCLUSIVE "skipped".
CATEGORIES = [
    {"name": "Device misses a SHOULD (NON-STRICT under --strict)", "matchedStatuses": ["failed"],
     "messageRegex": "(?s)(.*: )?NON-STRICT:.*"},
    {"name": "Expected failure passed (XPASS: update the expected-failures file)",
     "matchedStatuses": ["failed"], "messageRegex": "(?s)(.*: )?XPASS:.*"},
    # After NON-STRICT and XPASS: Allure takes the first category that matches.
    {"name": "Device violates a MUST (FAIL)", "matchedStatuses": ["failed"],
     "messageRegex": "(?s)(.*: )?FAIL:.*"},
    {"name": "Suite or lab error (ERROR: not the device's verdict)",
     "matchedStatuses": ["broken"]},
    {"name": "Not applicable to the device's PICS", "matchedStatuses": ["skipped"],
     "messageRegex": "(?s).*NOT-APPLICABLE:.*"},
    {"name": "Inconclusive (a precondition or a peer, not the device)",
     "matchedStatuses": ["skipped"], "messageRegex": "(?s).*INCONCLUSIVE:.*"},
]


def _escape(value: str) -> str:
    """A value in Java properties syntax (what Allure reads environment.properties as)."""
    out = str(value).replace("\\", "\\\\").replace("\n", "\\n")
    return out.replace("=", "\\=").replace(":", "\\:")


def environment(results: dict) -> dict[str, str]:
    run = results["run"]
    testbed = run.get("testbed") or {}
    env = {"suite": f"dsmip4-conformance {run.get('suite_version', '')}".strip(),
           "rfc": str(run.get("rfc", "")), "run.id": str(run.get("id", "")),
           "testbed": str(testbed.get("name", "") if isinstance(testbed, dict) else testbed),
           "strict": str(bool(run.get("strict"))).lower()}
    for role, device in sorted((run.get("devices") or {}).items()):
        identity = " ".join(str(device.get(k) or "") for k in ("vendor", "model", "version"))
        env[f"{role}.device"] = f"{device.get('name', '')} ({identity.strip()})"
        claimed = sorted(k for k, v in (device.get("pics") or {}).items() if v)
        env[f"{role}.pics"] = ", ".join(claimed) or "none"
    return env


def write_allure_meta(directory: Path, results: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"{_escape(k).replace(' ', '_')}={_escape(v)}"
             for k, v in environment(results).items()]
    (directory / "environment.properties").write_text("\n".join(lines) + "\n")
    (directory / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    run = results["run"]
    # Who produced the results: Allure shows it as the executor of the launch.
    executor = {"name": "dsmip4-conformance", "type": "dsmip4",
                "buildName": f"dsmip4 run {run.get('id', '')}",
                "reportName": f"DSMIPv4 conformance {run.get('id', '')}",
                "buildOrder": run.get("id", "")}
    (directory / "executor.json").write_text(json.dumps(executor, indent=2))
