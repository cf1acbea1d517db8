"""report.html, the certificate: rendered from results.json through an autoescaped Jinja2
template. Evidence links are relative to the report folder, so a zip of the folder keeps
them working; values are shown as readable text, never as Python reprs."""

from __future__ import annotations

import ast
import os
from collections import Counter
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from conformance.reports.msc import sequence_svg

TEMPLATES = Path(__file__).resolve().parent / "templates"
VERDICT_ORDER = ["PASS", "FAIL", "NON-STRICT", "ERROR", "INCONCLUSIVE", "NOT-APPLICABLE",
                 "XFAIL", "XPASS", "NOT-RUN", "NOT-TESTED-ROLE", "UNTESTABLE"]
# Badge colours with a text colour that stays readable on each (light badges get dark text).
BADGES = {"PASS": ("#1a7f37", "#fff"), "FAIL": ("#cf222e", "#fff"),
          "NON-STRICT": ("#9a6700", "#fff"), "ERROR": ("#8250df", "#fff"),
          "INCONCLUSIVE": ("#57606a", "#fff"), "NOT-APPLICABLE": ("#d0d7de", "#1f2328"),
          "XFAIL": ("#0969da", "#fff"), "XPASS": ("#cf222e", "#fff"),
          "NOT-RUN": ("#eaeef2", "#1f2328"), "NOT-TESTED-ROLE": ("#eaeef2", "#1f2328"),
          "UNTESTABLE": ("#eaeef2", "#1f2328")}
MUST_LEVELS = ("MUST", "MUST NOT", "REQUIRED", "SHALL", "SHALL NOT")


def readable(value) -> str:
    """A check's expected or actual value as text a reader understands: a Python literal
    (dict, list, bool) becomes 'key: value' lines, lists comma-separated, True/False yes/no."""
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
        if not isinstance(parsed, (dict, list, tuple, bool)):
            return value
        value = parsed
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "\n".join(f"{k}: {readable(v)}" for k, v in value.items()) or "(none)"
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value) or "(none)"
    return "" if value is None else str(value)


def badge(verdict: str) -> Markup:
    background, colour = BADGES.get(verdict, ("#57606a", "#fff"))
    return Markup('<span class="v" style="background:{};color:{}">{}</span>').format(
        background, colour, verdict)


def _relative(path: str, out: Path) -> str | None:
    """The evidence path relative to the report folder, or None when it lies outside."""
    try:
        rel = os.path.relpath(Path(path).resolve(), out.resolve())
    except ValueError:
        return None
    return None if rel.startswith("..") else rel


def statements(results: dict) -> list[dict]:
    """The overall statement per role tested: conformant, not conformant (with the number of
    MUST requirements failed), or not established (the run could not judge everything)."""
    run = results["run"]
    out = []
    for role in sorted({c["role"] for c in results["cases"]},
                       key=lambda r: ("ha", "mn", "fa", r).index(r)):
        cases = [c for c in results["cases"] if c["role"] == role]
        counts = Counter(c["verdict"] for c in cases)
        failing = {c["id"] for c in cases if c["verdict"] in ("FAIL", "XFAIL")}
        must_failed = [r for r in results["requirements"] if r["level"] in MUST_LEVELS
                       and role.upper() in r["roles"] and any(
                           c["verdict"] in ("FAIL", "XFAIL") and c["id"] in failing
                           for c in r["cases"])]
        device = (run.get("devices") or {}).get(role, {})
        unjudged = counts["ERROR"] + counts["INCONCLUSIVE"]
        if counts["FAIL"] or counts["XFAIL"] or must_failed:
            verdict, text = "NOT CONFORMANT", (
                f"{len(must_failed)} MUST requirement(s) failed in {counts['FAIL'] + counts['XFAIL']}"
                f" case(s)")
        elif run.get("interrupted") or run.get("lab_lost") or unjudged:
            verdict, text = "NOT ESTABLISHED", (
                f"{unjudged} case(s) could not be judged (ERROR or INCONCLUSIVE)"
                + ("; the run was interrupted" if run.get("interrupted") else "")
                + ("; the lab was lost" if run.get("lab_lost") else ""))
        else:
            verdict, text = "CONFORMANT", (
                f"every applicable case passed ({counts['PASS']} PASS"
                + (f", {counts['NON-STRICT']} SHOULD not met (NON-STRICT)"
                   if counts["NON-STRICT"] else "") + ")")
        out.append({"role": role.upper(), "device": device, "verdict": verdict, "text": text,
                    "applicable": len(cases) - counts["NOT-APPLICABLE"],
                    "not_applicable": counts["NOT-APPLICABLE"],
                    "non_strict": counts["NON-STRICT"], "xpass": counts["XPASS"]})
    return out


def _cases(results: dict, out: Path) -> list[dict]:
    shown = []
    for case in results["cases"]:
        failed_steps = {k.get("step") for k in case.get("checks", [])
                        if k.get("ok") is False and k.get("observable", True)}
        evidence = []
        for name, value in (case.get("evidence") or {}).items():
            if isinstance(value, str):
                evidence.append({"name": name, "href": _relative(value, out), "path": value})
        shown.append({**case, "svg": Markup(sequence_svg(case.get("trace", []), failed_steps)),
                      "evidence_links": evidence})
    return shown


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["readable"] = readable
    env.filters["badge"] = badge
    return env


def render_html(results: dict, out: Path | None = None) -> str:
    out = Path(out) if out is not None else Path(".")
    summary = results["summary"]
    level_verdicts = [v for v in VERDICT_ORDER
                      if any(v in row for row in summary["by_level"].values())]
    role_verdicts = [v for v in VERDICT_ORDER
                     if any(v in row for row in summary["by_role"].values())]
    manifest = [{"path": k, "href": _relative(str(out / k), out), "sha256": v}
                for k, v in results.get("manifest", {}).items()]
    return _environment().get_template("report.html.j2").render(
        run=results["run"], summary=summary, statements=statements(results),
        requirements=results["requirements"], cases=_cases(results, out),
        paraphrased=[r for r in results["requirements"]
                     if r["id"] in results.get("paraphrased", [])],
        unobservable=results.get("unobservable", []), manifest=manifest,
        level_verdicts=level_verdicts, role_verdicts=role_verdicts,
        requirement_counts=sorted(summary["requirements"].items()))
