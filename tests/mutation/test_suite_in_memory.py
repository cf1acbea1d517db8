"""The YAML suite against the reference in memory, one test per case: every case must PASS
(or be NOT-APPLICABLE) against the clean reference. This is the killing test of
`make mutation`: a mutant of the reference nodes or the codec survives only when every case
still passes against it."""

from __future__ import annotations

import pytest

from conformance.suite.inmemory import load_cases, run_in_memory

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_passes_against_the_reference_in_memory(case):
    record = run_in_memory([case])[0]
    assert record["verdict"] in ("PASS", "NOT-APPLICABLE"), \
        f"{record['verdict']}: {record['message']}"
