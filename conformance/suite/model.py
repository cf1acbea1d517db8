"""Test case files (testcases/*.yaml): schema and loader.

One file per RFC section and role. The loader reports every error of a file at once, each with
the file, the case id and the YAML path, so a test author fixes them in one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from conformance.catalog import Catalog
from conformance.yamlfile import YamlError, line_of, load_yaml

ROLES = ("ha", "mn", "fa")
TOPOLOGIES = ("fa", "colocated")


def own_section(case_id: str) -> str | None:
    """The section a case id names (HA-3.6-004 -> 3.6, HA-3344-001 -> 3344), if it names one:
    a file may hold cases of several sections, and --section selects by the case's own."""
    match = re.fullmatch(r"[A-Z]+-(\d+(?:\.\d+)*)-(?:[A-Z]+-)?\d+", case_id)
    return match.group(1) if match else None


class CaseFileError(YamlError):
    """Every problem of one test case file, one per line."""

    def __init__(self, path, problems: list[str]):
        self.problems = problems
        super().__init__(path, "$", "\n  ".join([""] + problems).rstrip())


@dataclass
class Step:
    kind: str
    spec: dict
    index: int
    requirements: list[str]
    precondition: bool
    line: int | None

    @property
    def title(self) -> str:
        return self.spec.get("title") or self.kind.replace("_", " ")


@dataclass
class TestCase:
    __test__ = False
    id: str
    title: str
    requirements: list[str]
    role: str
    purpose: str
    pics: list[str]
    topology: str
    parameters: dict
    steps: list[Step]
    file: str
    section: str
    line: int | None = None
    seed: int | None = None
    extra: dict = field(default_factory=dict)
    table: str | None = None  # the entry's id when this case is one row of a table

    def selected_by(self, ids) -> bool:
        """`--case ID` selects a case, or every row of the table ID."""
        return self.id in ids or (self.table is not None and self.table in ids)


def load_case_file(path: str | Path, catalog: Catalog) -> list[TestCase]:
    path = Path(path)
    try:
        data = load_yaml(path)
    except YamlError as exc:
        raise CaseFileError(path, [f"{exc.yaml_path}: {exc.message} (line {exc.line})"]) \
            from exc
    problems: list[str] = []

    def bad(where: str, message: str, node=None):
        line = line_of(node)
        problems.append(f"{where}: {message}" + (f" (line {line})" if line else ""))

    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise CaseFileError(path, ["$: expected a mapping with a 'cases' list"])
    file_role = data.get("role")
    file_section = str(data.get("section", ""))
    if file_role not in ROLES:
        bad("role", f"{file_role!r}; expected one of {list(ROLES)}", data)
    cases, seen = [], set()
    from conformance.lab.profile import PICS
    import conformance.suite.checks  # noqa: F401 (registers every check)
    import conformance.suite.steps  # noqa: F401 (registers every step kind)
    from conformance.suite.registry import COMMON, STEPS, check_problems, option_problems

    for i, raw in enumerate(data["cases"]):
        cid = raw.get("id", f"#{i}") if isinstance(raw, dict) else f"#{i}"
        where = f"cases[{i}] ({cid})"
        if not isinstance(raw, dict):
            bad(where, "expected a mapping")
            continue
        allowed = {"id", "title", "requirements", "purpose", "pics", "topology", "parameters",
                   "steps", "role", "seed", "section", "rows"}
        for key in raw:
            if key not in allowed:
                bad(f"{where}.{key}", f"unknown key; expected one of {sorted(allowed)}", raw)
        for key in ("id", "title", "requirements", "purpose", "steps"):
            if key not in raw:
                bad(f"{where}.{key}", "missing", raw)
        if cid in seen:
            bad(f"{where}.id", "duplicate case id", raw)
        seen.add(cid)
        reqs = raw.get("requirements") or []
        if not reqs:
            bad(f"{where}.requirements", "a case must name at least one requirement", raw)
        for r in reqs:
            if r not in catalog:
                bad(f"{where}.requirements", f"{r} is not in the requirement catalog", raw)
        purpose = str(raw.get("purpose", ""))
        if purpose and not purpose.startswith("Ensure that"):
            bad(f"{where}.purpose", "an ETSI-style test purpose starts with 'Ensure that'", raw)
        pics = raw.get("pics") or []
        _check_pics(pics, PICS, f"{where}.pics", raw, bad)
        topology = raw.get("topology", "fa")
        if topology not in TOPOLOGIES:
            bad(f"{where}.topology", f"{topology!r}; expected one of {list(TOPOLOGIES)}", raw)
        steps = []
        for j, step in enumerate(raw.get("steps") or []):
            swhere = f"{where}.steps[{j}]"
            if not isinstance(step, dict) or len(set(step) & set(STEPS)) != 1:
                bad(swhere, f"expected exactly one step kind of {sorted(STEPS)}", step
                    if isinstance(step, dict) else raw)
                continue
            kind = (set(step) & set(STEPS)).pop()
            body = step[kind] if isinstance(step[kind], dict) else {}
            if step[kind] is not None and not isinstance(step[kind], dict):
                bad(f"{swhere}.{kind}", "expected a mapping of step options", step)
            for key in step:
                if key != kind and key not in COMMON:
                    bad(f"{swhere}.{key}", f"unknown key; expected {kind} options or "
                        f"{sorted(COMMON)}", step)
            for key, problem in option_problems(STEPS[kind], body):
                bad(f"{swhere}.{kind}.{key}", problem, body)
            step_reqs = list(step.get("requirements") or body.get("requirements") or [])
            for r in step_reqs:
                if r not in catalog:
                    bad(f"{swhere}.requirements", f"{r} is not in the requirement catalog", step)
            checks = [(f"checks[{k}]", c) for k, c in enumerate(body.get("checks") or [])
                      if isinstance(body.get("checks"), list)]
            for a, alt in enumerate(body.get("accept") or []):
                if not isinstance(alt, dict) or not (set(alt) <= {"nothing", "checks"}) or \
                        not alt:
                    bad(f"{swhere}.{kind}.accept[{a}]", "expected {nothing: true} or "
                        "{checks: [...]}", body)
                    continue
                checks += [(f"accept[{a}].checks[{k}]", c)
                           for k, c in enumerate(alt.get("checks") or [])]
            for at, check in checks:
                if not isinstance(check, dict) or "check" not in check:
                    bad(f"{swhere}.{kind}.{at}", "expected a mapping with 'check'", step)
                    continue
                for key, problem in check_problems(check, STEPS[kind].subject):
                    bad(f"{swhere}.{kind}.{at}.{key}", problem, check)
                for r in check.get("requirements") or []:
                    if r not in catalog:
                        bad(f"{swhere}.{kind}.{at}.requirements",
                            f"{r} is not in the requirement catalog", check)
            steps.append(Step(kind, dict(body), j, step_reqs,
                              bool(step.get("precondition", body.get("precondition", False))),
                              line_of(step)))
            if "timeout" in step:
                steps[-1].spec["timeout"] = step["timeout"]
            if "title" in step:
                steps[-1].spec["title"] = step["title"]
        role = raw.get("role", file_role)
        case = TestCase(str(cid), str(raw.get("title", "")), list(reqs), role, purpose,
                        list(pics), topology, dict(raw.get("parameters") or {}), steps,
                        str(path), str(raw.get("section") or own_section(str(cid))
                                       or file_section), line_of(raw), raw.get("seed"))
        cases += _rows(case, raw.get("rows"), where, bad, PICS)
    if problems:
        raise CaseFileError(path, problems)
    return cases


def _check_pics(items, known, where: str, raw, bad) -> None:
    for p in items:
        if str(p).removeprefix("!") not in known:
            bad(where, f"unknown PICS item {p!r}", raw)


def _rows(case: TestCase, rows, where: str, bad, known_pics) -> list[TestCase]:
    """A table: one case per row (like pytest.mark.parametrize), each reported on its own as
    ID[name], its row's values added to the case parameters ($name in the steps). A row's
    `pics` add to the case's: a row that needs an option applies only to devices that claim
    it."""
    if rows is None:
        return [case]
    if not isinstance(rows, list) or not rows:
        bad(f"{where}.rows", "expected a non-empty list of parameter mappings")
        return []
    out, names = [], set()
    for k, row in enumerate(rows):
        if not isinstance(row, dict) or not row:
            bad(f"{where}.rows[{k}]", "expected a mapping of parameter values")
            continue
        values = {key: value for key, value in row.items() if key not in ("name", "pics")}
        row_pics = row.get("pics") or []
        if not isinstance(row_pics, list):
            bad(f"{where}.rows[{k}].pics", "expected a list of PICS items", row)
            row_pics = []
        _check_pics(row_pics, known_pics, f"{where}.rows[{k}].pics", row, bad)
        name = str(row.get("name", k + 1))
        if name in names:
            bad(f"{where}.rows[{k}].name", f"duplicate row name {name!r}", row)
        names.add(name)
        title = f"{case.title} [{name}]"
        out.append(TestCase(f"{case.id}[{name}]", title, case.requirements, case.role,
                            case.purpose, [*case.pics, *row_pics], case.topology,
                            {**case.parameters, **values}, case.steps, case.file, case.section,
                            line_of(row) or case.line, case.seed, dict(case.extra), case.id))
    return out
