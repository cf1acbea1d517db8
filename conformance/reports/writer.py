"""Write results.json, junit.xml, report.html and SHA256SUMS for a run (allure-results come
from allure-pytest, fed by the plugin; its environment and categories from here)."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path

from conformance import RFC, __version__
from conformance.lab.profile import reference_profile
from conformance.reports.allure_meta import write_allure_meta
from conformance.reports.html_report import render_html
from conformance.reports.junit import write_junit
from conformance.suite.verdict import Verdict, case_requirement_verdicts, rollup

VERDICT_ORDER = [v.value for v in Verdict]
# results.json's layout: raised when a field changes meaning or goes away (added ones keep it).
RESULTS_SCHEMA_VERSION = 2


def _requirements(state, cases) -> list[dict]:
    by_req: dict[str, list[tuple[dict, str]]] = {}
    for case in cases:
        for req, verdict in case_requirement_verdicts(case, state.catalog).items():
            by_req.setdefault(req, []).append((case, verdict))
    roles = {c["role"].upper() for c in cases}
    out = []
    for req in state.catalog.requirements:
        pairs = by_req.get(req.id, [])
        verdict = rollup([Verdict(v) for _, v in pairs])
        if verdict is not None:
            verdict_text = verdict.value
        elif req.testable == "no":
            verdict_text = "UNTESTABLE"
        elif not roles & set(req.roles):
            verdict_text = "NOT-TESTED-ROLE"  # binds no role under test in this run
        else:
            verdict_text = "NOT-RUN"
        out.append({**req.to_dict(), "verdict": verdict_text,
                    "cases": [{"id": c["id"], "verdict": v} for c, v in pairs]})
    return out


def _manifest(out: Path) -> dict:
    manifest = {}
    if not (out / "evidence").exists():
        return manifest
    for path in sorted((out / "evidence").rglob("*")):
        if path.is_file():
            manifest[str(path.relative_to(out))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return manifest


def write_reports(state, alluredir=None) -> dict:
    out: Path = state.out
    out.mkdir(parents=True, exist_ok=True)
    cases = sorted(state.cases, key=lambda c: ({"ha": 0, "mn": 1, "fa": 2}.get(c["role"], 9),
                                               c["file"], c["id"]))
    ended = time.time()
    counts = Counter(c["verdict"] for c in cases)
    by_role = {}
    for c in cases:
        by_role.setdefault(c["role"], Counter())[c["verdict"]] += 1
    duts = {role: p.to_dict() for role, p in state.profiles.items()}
    if not state.explicit_duts:
        duts = {role: reference_profile(role).to_dict() for role in ("ha", "mn", "fa")}
    requirements = _requirements(state, cases)
    by_level = {}  # requirements (not cases) by their own level
    for r in requirements:
        if r["cases"]:
            by_level.setdefault(r["level"], Counter())[r["verdict"]] += 1
    summary = {"counts": {k: counts[k] for k in VERDICT_ORDER if counts[k]},
               "duration": round(ended - state.started, 3),
               "protocol_wait": round(sum(c.get("waited", 0) for c in cases), 3),
               "by_role": {r: dict(v) for r, v in by_role.items()},
               "by_level": {lvl: dict(v) for lvl, v in by_level.items()},
               "requirements": dict(Counter(r["verdict"] for r in requirements))}
    manifest = _manifest(out)
    results = {"schema_version": RESULTS_SCHEMA_VERSION,
               "run": {"id": state.run_id, "suite": "dsmip4-conformance",
                       "suite_version": __version__, "rfc": RFC,
                       "devices": duts, "testbed": state.testbed.to_dict() if state.testbed
                       else None,
                       # Every lab that ran a case (xdist spreads cases over several).
                       "testbeds": sorted({c["testbed"] for c in cases if c.get("testbed")}), "start": _iso(state.started), "end": _iso(ended),
                       "expected_failures": state.expected.path, "strict": state.strict,
                       "interrupted": bool(getattr(state, "interrupted", False)),
                       "lab_lost": getattr(state, "lab_lost_reason", None),
                       "not_run": [cid for cid in getattr(state, "selected", [])
                                   if cid not in {c["id"] for c in cases}]},
               "summary": summary, "cases": cases, "requirements": requirements,
               # Entries whose text paraphrases an RFC not shipped here: a reader checks them
               # against the cited section before relying on a verdict about them.
               "paraphrased": [r["id"] for r in requirements
                               if not r.get("quoted", True) and r["cases"]],
               # Checks the device gives nothing to judge by (a state table it lacks).
               "unobservable": [{"case": c["id"], "check": k["check"],
                                 "requirements": k["requirements"], "why": k["actual"]}
                                for c in cases for k in c.get("checks", [])
                                if k.get("observable") is False],
               "manifest": manifest}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    write_junit(out / "junit.xml", results)
    (out / "report.html").write_text(render_html(results, out))
    if alluredir is not None:
        write_allure_meta(Path(alluredir), results)
    write_checksums(out)
    return summary


def write_checksums(out: Path) -> None:
    """SHA256SUMS over every file the run left in its folder (reports, evidence, Allure
    results), in `sha256sum -c` format; written last, so it covers the rest."""
    lines = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if rel != "SHA256SUMS":
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {rel}")
    (out / "SHA256SUMS").write_text("\n".join(lines) + "\n")

def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
