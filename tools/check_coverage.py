#!/usr/bin/env python3
"""Check that the test cases cover the requirement catalog.

Fails when a testable MUST, MUST NOT, SHOULD, SHOULD NOT or RECOMMENDED of RFC 5454 has no
test case for a role it binds, when a testable MAY/OPTIONAL item has no case run under its
PICS item, or when a case names no requirement (the case loader refuses those too). And the
test design (testcases/test-design.yaml): every testable MUST/SHOULD/RECOMMENDED/DEFINITION
entry of the catalog has a record, and each equivalence class, boundary and state it lists
has a case that checks that requirement (or an `exempt:` reason).

    python tools/check_coverage.py [--verbose]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.catalog import load_catalog  # noqa: E402
from conformance.suite.model import CaseFileError, load_case_file  # noqa: E402
from conformance.yamlfile import YamlError  # noqa: E402

ENFORCED = {"MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "RECOMMENDED"}
OPTIONAL = {"MAY", "OPTIONAL"}


def covered_pairs(cases) -> dict[tuple[str, str], list[str]]:
    """(requirement id, role) -> case ids, from case, step and check requirement lists."""
    out: dict[tuple[str, str], list[str]] = {}
    for case in cases:
        reqs = set(case.requirements)
        for step in case.steps:
            reqs.update(step.requirements)
            checks = list(step.spec.get("checks") or [])
            for alt in step.spec.get("accept") or []:
                checks += list((alt or {}).get("checks") or [])
            for check in checks:
                reqs.update(check.get("requirements") or [])
        for req in reqs:
            out.setdefault((req, case.role.upper()), []).append(case.id)
    return out


def check(catalog, cases) -> list[str]:
    problems = []
    pairs = covered_pairs(cases)
    pics_cases = {(r, c.role.upper()) for c in cases if c.pics for r in c.requirements}
    for case in cases:
        if not case.requirements:
            problems.append(f"{case.file}: case {case.id} names no requirement")
    for req in catalog.requirements:
        if req.testable == "no" or req.rfc != 5454:
            continue
        for role in req.roles:
            if req.level in ENFORCED and (req.id, role) not in pairs:
                problems.append(f"{req.id} ({req.level}, §{req.section}) has no test case for "
                                f"the {role}")
            if req.level in OPTIONAL and (req.id, role) not in pics_cases:
                problems.append(f"{req.id} ({req.level}) has no case for the {role} run under "
                                f"its PICS item {req.pics!r}")
    return problems


DESIGN = ROOT / "testcases" / "test-design.yaml"
DESIGNED = ENFORCED | {"DEFINITION"}


def load_design(path: Path = DESIGN) -> dict:
    from conformance.yamlfile import load_yaml

    data = load_yaml(path)
    return (data or {}).get("requirements") or {}


def design_problems(catalog, cases, design: dict, path: Path = DESIGN) -> list[str]:
    """What the test design lacks: records, and a checking case for each class and state."""
    problems = []
    pairs = covered_pairs(cases)
    checking = {}  # requirement -> case ids (rows by their own id and by their table's)
    for (req, _role), ids in pairs.items():
        checking.setdefault(req, set()).update(ids)
    tables = {c.id: c.table for c in cases if c.table}
    for ids in checking.values():
        ids.update({tables[i] for i in list(ids) if i in tables})
    known = {c.id for c in cases} | set(tables.values())
    for req in catalog.requirements:
        if req.testable != "no" and req.level in DESIGNED and req.id not in design:
            problems.append(f"{path.name}: {req.id} ({req.level}) has no test-design record")
    for req_id, record in design.items():
        if req_id not in catalog:
            problems.append(f"{path.name}: {req_id} is not in the requirement catalog")
            continue
        if not isinstance(record, dict) or not (record.get("classes") or record.get("states")):
            problems.append(f"{path.name}: {req_id}: expected `involves` and at least one of "
                            "`classes` or `states`")
            continue
        for part in ("classes", "states"):
            for name, cover in (record.get(part) or {}).items():
                where = f"{path.name}: {req_id} {part[:-1] if part == 'states' else 'class'} " \
                    f"{name!r}"
                if isinstance(cover, str) and cover.startswith("exempt:") and \
                        len(cover) > len("exempt: ") + 10:
                    continue
                if not isinstance(cover, list) or not cover:
                    problems.append(f"{where} has no case (list case ids, or `exempt: reason`)")
                    continue
                for cid in cover:
                    if cid not in known:
                        problems.append(f"{where}: no case {cid}")
                    elif cid not in checking.get(req_id, set()):
                        problems.append(f"{where}: case {cid} checks no {req_id}")
    return problems


def load_cases(catalog):
    cases = []
    for path in sorted((ROOT / "testcases").glob("rfc*.yaml")):
        cases += load_case_file(path, catalog)
    return cases


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    catalog = load_catalog()
    try:
        cases = load_cases(catalog)
    except CaseFileError as exc:
        print(f"check_coverage: {exc}", file=sys.stderr)
        return 2
    problems = check(catalog, cases)
    try:
        design = load_design()
    except YamlError as exc:
        print(f"check_coverage: {exc}", file=sys.stderr)
        return 2
    problems += design_problems(catalog, cases, design)
    if problems:
        print(f"check_coverage: {len(problems)} gap(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    pairs = covered_pairs(cases)
    enforced = sum(len(r.roles) for r in catalog.requirements if r.rfc == 5454
                   and r.level in ENFORCED and r.testable != "no")
    print(f"check_coverage: OK: {len(cases)} cases cover all {enforced} (requirement, role) "
          f"pairs of RFC 5454's testable MUST/SHOULD sentences; {len(pairs)} pairs covered in "
          f"all")
    classes = sum(len(r.get("classes") or {}) + len(r.get("states") or {})
                  for r in design.values())
    print(f"check_coverage: test design: {len(design)} requirements, {classes} classes and "
          f"states, each with a case that checks it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
