#!/usr/bin/env python3
"""Check that the test cases cover the requirement catalog.

Fails when a testable MUST, MUST NOT, SHOULD, SHOULD NOT or RECOMMENDED of RFC 5454 has no
test case for a role it binds, when a testable MAY/OPTIONAL item has no case run under its
PICS item, or when a case names no requirement (the case loader refuses those too).

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
