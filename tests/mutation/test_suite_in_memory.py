"""The YAML suite against the reference in memory, one test per case: every case must PASS
against the clean reference configuration that claims its PICS items (the default reference,
else the first variant in fixtures/profiles/variants/ that does). This is the killing test of
`make mutation`: a mutant of the reference nodes or the codec survives only when every case
still passes against it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.lab.profile import load_profile
from conformance.suite.inmemory import load_cases, run_in_memory

PROFILES = Path(__file__).resolve().parents[2] / "fixtures" / "profiles"
CONFIGURATIONS = {role: [load_profile(PROFILES / f"reference-{role}.yaml")]
                  for role in ("ha", "mn", "fa")}
for _path in sorted((PROFILES / "variants").glob("*.yaml")):
    _variant = load_profile(_path)
    CONFIGURATIONS[_variant.role].append(_variant)
CASES = load_cases()


def configuration_for(case):
    return next((p for p in CONFIGURATIONS[case.role] if p.claims_all(case.pics)), None)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_passes_against_the_reference_in_memory(case):
    profile = configuration_for(case)
    assert profile is not None, f"no reference configuration claims {case.pics}"
    record = run_in_memory([case], {case.role: profile})[0]
    assert record["verdict"] == "PASS", f"{record['verdict']}: {record['message']}"
