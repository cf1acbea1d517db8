"""Test case files (testcases/*.yaml): schema and loader.

One file per RFC section and role. The loader reports every error of a file at once, each with
the file, the case id and the YAML path, so a test author fixes them in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conformance.catalog import Catalog
from conformance.yamlfile import YamlError, line_of, load_yaml

ROLES = ("ha", "mn", "fa")
TOPOLOGIES = ("fa", "colocated")
# Step kinds and the keys each accepts (besides the common ones).
COMMON = {"requirements", "precondition", "title", "timeout"}
STEP_KEYS = {
    "register": {"fields", "extensions", "save_as", "auth", "via", "raw_hex"},
    "expect_reply": {"save_as", "checks", "accept", "or_nothing", "from"},
    "expect_no_reply": {"from"},
    "send_ipv6": {"src", "dst", "hop_limit", "traffic_class", "size", "count"},
    "expect_tunnelled": {"checks", "outer", "inner_dst", "save_as", "on"},
    "expect_not_tunnelled": {"inner_dst"},
    "send_tunnelled": {"outer_src", "inner_src", "inner_dst", "double", "encapsulation",
                       "inner", "size", "hop_limit", "traffic_class", "target", "group"},
    "send_to_mn": {"inner", "inner_src", "inner_dst", "via", "encapsulation", "size",
                   "hop_limit", "traffic_class", "target", "prefix", "to", "request",
                   "outer_ecn", "outer_src"},
    "expect_nothing_from_mn": {"inner_dst", "larger_than"},
    "send_frag_needed": {"mtu", "about", "to"},
    "expect_from_mn": {"inner_dst", "checks", "save_as"},
    "expect_no_ra": {"prefix"},
    "robustness": {"count", "kinds"},
    "expect_at_cn": {"inner_src", "checks", "icmpv6_type"},
    "expect_not_at_cn": {"inner_src"},
    "state": {"table", "checks"},
    "log": {"expect"},
    "restart_dut": {"params"},
    "expect_request": {"save_as", "checks"},
    "reply": {"fields", "extensions", "to_request", "auth", "fa_ha_auth"},
    "expect_no_request": set(),
    "wait": {"seconds_at_most", "state", "checks"},
    "expect_relayed": {"checks", "save_as"},
}


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

    for i, raw in enumerate(data["cases"]):
        cid = raw.get("id", f"#{i}") if isinstance(raw, dict) else f"#{i}"
        where = f"cases[{i}] ({cid})"
        if not isinstance(raw, dict):
            bad(where, "expected a mapping")
            continue
        allowed = {"id", "title", "requirements", "purpose", "pics", "topology", "parameters",
                   "steps", "role", "seed"}
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
        for p in pics:
            if p not in PICS:
                bad(f"{where}.pics", f"unknown PICS item {p!r}", raw)
        topology = raw.get("topology", "fa")
        if topology not in TOPOLOGIES:
            bad(f"{where}.topology", f"{topology!r}; expected one of {list(TOPOLOGIES)}", raw)
        steps = []
        for j, step in enumerate(raw.get("steps") or []):
            swhere = f"{where}.steps[{j}]"
            if not isinstance(step, dict) or len(set(step) & set(STEP_KEYS)) != 1:
                bad(swhere, f"expected exactly one step kind of {sorted(STEP_KEYS)}", raw)
                continue
            kind = (set(step) & set(STEP_KEYS)).pop()
            body = step[kind] if isinstance(step[kind], dict) else {}
            if step[kind] is not None and not isinstance(step[kind], dict):
                bad(f"{swhere}.{kind}", "expected a mapping of step options", step)
            for key in step:
                if key != kind and key not in COMMON:
                    bad(f"{swhere}.{key}", f"unknown key; expected {kind} options or "
                        f"{sorted(COMMON)}", step)
            for key in body:
                if key not in STEP_KEYS[kind] | COMMON:
                    bad(f"{swhere}.{kind}.{key}", f"unknown option; expected one of "
                        f"{sorted(STEP_KEYS[kind] | COMMON)}", step)
            step_reqs = list(step.get("requirements") or body.get("requirements") or [])
            for r in step_reqs:
                if r not in catalog:
                    bad(f"{swhere}.requirements", f"{r} is not in the requirement catalog", step)
            all_checks = list(body.get("checks") or [])
            for alt in body.get("accept") or []:
                all_checks += list((alt or {}).get("checks") or [])
            for k, check in enumerate(all_checks):
                if not isinstance(check, dict) or "check" not in check:
                    bad(f"{swhere}.{kind}.checks[{k}]", "expected a mapping with 'check'", step)
                    continue
                from conformance.suite.checks import CHECKS

                if check["check"] not in CHECKS:
                    bad(f"{swhere}.{kind}.checks[{k}].check", f"unknown check "
                        f"{check['check']!r}; known: {sorted(CHECKS)}", step)
                for r in check.get("requirements") or []:
                    if r not in catalog:
                        bad(f"{swhere}.{kind}.checks[{k}].requirements",
                            f"{r} is not in the requirement catalog", step)
            steps.append(Step(kind, dict(body), j, step_reqs,
                              bool(step.get("precondition", body.get("precondition", False))),
                              line_of(step)))
            if "timeout" in step:
                steps[-1].spec["timeout"] = step["timeout"]
            if "title" in step:
                steps[-1].spec["title"] = step["title"]
        role = raw.get("role", file_role)
        cases.append(TestCase(str(cid), str(raw.get("title", "")), list(reqs), role, purpose,
                              list(pics), topology, dict(raw.get("parameters") or {}), steps,
                              str(path), file_section, line_of(raw), raw.get("seed")))
    if problems:
        raise CaseFileError(path, problems)
    return cases
