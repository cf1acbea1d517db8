"""The YAML suite against the reference in memory, one test per case: every case must PASS
against the clean reference configuration that claims its PICS items (the default reference,
else the first variant in fixtures/profiles/variants/ that does). This is the killing test of
`make mutation`: a mutant of the reference nodes or the codec survives only when every case
still passes against it."""

from __future__ import annotations

import pytest

from conformance.lab.profile import claiming, reference_configurations
from conformance.suite.inmemory import load_cases, run_in_memory

CONFIGURATIONS = reference_configurations()
CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_passes_against_the_reference_in_memory(case):
    profile = claiming(CONFIGURATIONS, case.role, case.pics)
    assert profile is not None, f"no reference configuration claims {case.pics}"
    record = run_in_memory([case], {case.role: profile})[0]
    assert record["verdict"] == "PASS", f"{record['verdict']}: {record['message']}"
