"""Write results.json, junit.xml and report.html for a run (allure-results come from
allure-pytest, fed by the plugin)."""

from __future__ import annotations

import hashlib
import html
import json
import time
from collections import Counter
from pathlib import Path

from conformance import RFC, __version__
from conformance.lab.profile import reference_profile
from conformance.reports.junit import write_junit
from conformance.suite.verdict import Verdict, case_requirement_verdicts, rollup

VERDICT_ORDER = [v.value for v in Verdict]


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


def write_reports(state) -> dict:
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
    results = {"run": {"id": state.run_id, "suite": "dsmip4-conformance",
                       "suite_version": __version__, "rfc": RFC,
                       "devices": duts, "testbed": state.testbed.to_dict() if state.testbed
                       else None, "start": _iso(state.started), "end": _iso(ended),
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
    (out / "report.html").write_text(render_html(results))
    return summary


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "NON-STRICT": "#bf8700", "ERROR": "#8250df",
           "INCONCLUSIVE": "#57606a", "NOT-APPLICABLE": "#8c959f", "XFAIL": "#0969da",
           "XPASS": "#cf222e", "NOT-RUN": "#d0d7de", "UNTESTABLE": "#d0d7de"}
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2328}
header{background:#0d1117;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:2px 0;color:#c9d1d9}
main{padding:18px 28px} h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;width:100%;margin:8px 0} td,th{border:1px solid #d0d7de;
padding:4px 8px;text-align:left;vertical-align:top} th{background:#f6f8fa}
.v{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;
font-size:12px;white-space:nowrap} .counts span{margin-right:10px}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap;font-size:12px}
.case{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;margin:14px 0}
.seq td{font-family:ui-monospace,monospace;font-size:12px} .arrow{color:#57606a}
small{color:#57606a} .interrupted{background:#fff8c5;border:1px solid #bf8700;
padding:8px 12px} .grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
"""


def _v(verdict: str) -> str:
    return (f'<span class="v" style="background:{COLOURS.get(verdict, "#57606a")}">'
            f'{html.escape(verdict)}</span>')


def _counts_table(title: str, data: dict) -> str:
    verdicts = [v for v in VERDICT_ORDER if any(v in row for row in data.values())]
    rows = "".join(f"<tr><th>{html.escape(k)}</th>" + "".join(
        f"<td>{row.get(v, '')}</td>" for v in verdicts) + "</tr>" for k, row in data.items())
    return (f"<table><tr><th>{title}</th>" + "".join(f"<th>{_v(v)}</th>" for v in verdicts)
            + f"</tr>{rows}</table>")


def render_html(results: dict) -> str:
    run, summary = results["run"], results["summary"]
    e = html.escape
    devices = "".join(f"<p>{e(role.upper())}: <b>{e(str(d.get('name')))}</b> "
                      f"{e(str(d.get('vendor', '')))} {e(str(d.get('model', '')))} "
                      f"{e(str(d.get('version', '')))}</p>" for role, d in run["devices"].items())
    counts = "".join(f"<span>{_v(k)} {v}</span>" for k, v in summary["counts"].items())
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>DSMIPv4 conformance "
             f"report {e(run['id'])}</title><style>{CSS}</style></head><body>",
             f"<header><h1>Dual-Stack Mobile IPv4 ({e(run['rfc'])}) conformance report</h1>"
             f"<p>Suite {e(run['suite'])} {e(run['suite_version'])} · run {e(run['id'])} · "
             f"{e(run['start'])} → {e(run['end'])}</p>{devices}"
             f"<p>Testbed: {e(str((run.get('testbed') or {}).get('name')))}</p></header><main>",
             (f"<p class='interrupted'><b>This run was interrupted</b>: "
              f"{len(run['not_run'])} selected case(s) were not run: "
              f"{e(', '.join(run['not_run']))}. Its verdicts certify nothing about them.</p>"
              if run.get("interrupted") else ""),
             (f"<p class='interrupted'><b>The lab was lost during this run</b>: "
              f"{e(run['lab_lost'])}. The cases after that are ERROR, not verdicts about the "
              f"device.</p>" if run.get("lab_lost") else ""),
             f"<h2>Certificate summary</h2><p class='counts'>{counts}</p>"
             f"<p>{summary['duration']:.1f} s in all, {summary['protocol_wait']:.1f} s of it "
             f"in protocol waits.</p><div class='grid'>"
             f"{_counts_table('level', summary['by_level'])}"
             f"{_counts_table('role', summary['by_role'])}</div>"]
    if results.get("unobservable"):
        parts.append("<h2>Not observable on this device</h2><p>These checks need device "
                     "state its profile does not provide; they are neither PASS nor FAIL, "
                     "and the cases' other checks were judged.</p><table><tr><th>Case</th>"
                     "<th>Check</th><th>Requirements</th><th>Why</th></tr>" + "".join(
                         f"<tr><td><a href='#{e(u['case'])}'>{e(u['case'])}</a></td><td>"
                         f"{e(u['check'])}</td><td>{e(', '.join(u['requirements']))}</td>"
                         f"<td>{e(u['why'])}</td></tr>" for u in results["unobservable"])
                     + "</table>")
    req_counts = "".join(f"<span>{_v(k)} {v}</span>" for k, v in
                         sorted(summary["requirements"].items()))
    parts.append(f"<h2>Traceability matrix</h2><p class='counts'>Requirements: {req_counts}</p>"
                 "<table><tr><th>Requirement</th><th>Level</th><th>Roles</th><th>Text</th>"
                 "<th>Verdict</th><th>Cases</th></tr>")
    for r in results["requirements"]:
        cases = " ".join(f"<a href='#{e(c['id'])}'>{e(c['id'])}</a> {_v(c['verdict'])}"
                         for c in r["cases"])
        if not r["cases"] and r["testable"] == "no":
            cases = f"<small>not testable: {e(r.get('reason', ''))}</small>"
        parts.append(f"<tr id='req-{e(r['id'])}'><td><b>{e(r['id'])}</b><br><small>"
                     f"{e(r['rfc'])} §{e(r['section'])}</small></td><td>{e(r['level'])}</td>"
                     f"<td>{e(', '.join(r['roles']))}</td><td>{e(r['text'])}</td>"
                     f"<td>{_v(r['verdict'])}</td><td>{cases}</td></tr>")
    paraphrased = [r for r in results["requirements"] if r["id"] in results["paraphrased"]]
    if paraphrased:
        parts.append("</table><h2>Paraphrased requirements</h2><p>These entries paraphrase "
                     "the cited section of an RFC that RFC 5454 relies on; check them against "
                     "that section before relying on their verdicts.</p><table><tr><th>"
                     "Requirement</th><th>Text</th><th>Verdict</th></tr>" + "".join(
                         f"<tr><td><a href='#req-{e(r['id'])}'>{e(r['id'])}</a><br><small>RFC "
                         f"{e(r['rfc'])} §{e(r['section'])}</small></td><td>{e(r['text'])}</td>"
                         f"<td>{_v(r['verdict'])}</td></tr>" for r in paraphrased))
    parts.append("</table><h2>Test cases</h2>")
    for c in results["cases"]:
        seq = "".join(f"<tr><td>{i + 1}</td><td>{e(t['from'])}</td><td class='arrow'>→</td>"
                      f"<td>{e(t['to'])}</td><td>{e(t['what'])}</td></tr>"
                      for i, t in enumerate(c.get("trace", [])))
        checks = "".join(f"<tr><td>{ {True: '✔', False: '✘'}.get(k['ok'], '? not judged') if k.get('observable', True) else '– not observable' }</td><td>{e(k['check'])}</td>"
                         f"<td>{e(', '.join(k['requirements']))}</td><td>{e(k['expected'])}</td>"
                         f"<td>{e(str(k['actual']))}</td></tr>" for k in c.get("checks", []))
        evidence = "".join(f"<li>{e(k)}: <code>{e(str(v))}</code></li>"
                           for k, v in c.get("evidence", {}).items() if isinstance(v, str))
        why = "" if c["verdict"] in ("PASS",) else \
            f"<h4>Why: {_v(c['verdict'])}</h4><pre>{e(c['message'])}</pre>"
        parts.append(
            f"<div class='case' id='{e(c['id'])}'><h3>{e(c['id'])} {_v(c['verdict'])} "
            f"{e(c['title'])}</h3><p><b>Test purpose.</b> {e(c['purpose'])}</p>"
            f"<p><small>{e(c['file'])} · role {e(c['role'].upper())} · §{e(c['section'])} · "
            f"requirements {', '.join(f'<a href=#req-{e(r)}>{e(r)}</a>' for r in c['requirements'])}"
            f" · {c.get('duration', 0):.2f} s"
            + (f" · seed {e(str(c['seed']))}" if c.get("seed") is not None else "")
            + "</small></p>"
            + (f"<h4>Sequence</h4><table class='seq'>{seq}</table>" if seq else "")
            + (f"<h4>Checks</h4><table><tr><th></th><th>check</th><th>requirements</th>"
               f"<th>expected</th><th>actual</th></tr>{checks}</table>" if checks else "")
            + why + f"<p><small>Rerun: <code>{e(c['rerun'])}</code></small></p>"
            + (f"<details><summary>Evidence</summary><ul>{evidence}</ul></details>"
               if evidence else "") + "</div>")
    manifest = "".join(f"<tr><td><code>{e(k)}</code></td><td><code>{v}</code></td></tr>"
                       for k, v in results["manifest"].items())
    parts.append(f"<h2>Evidence manifest (SHA-256)</h2><table>{manifest}</table>"
                 "</main></body></html>")
    return "".join(parts)
