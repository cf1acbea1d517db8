"""Verdicts of test cases and their roll-up to requirements (ETSI/ISO 9646 style).

PASS, FAIL (a MUST/MUST NOT broken), NON-STRICT (a SHOULD/SHOULD NOT/RECOMMENDED not met),
INCONCLUSIVE (the device never reached the state the check needs), NOT-APPLICABLE (the PICS
declares the feature absent; never inferred from failures), ERROR (the lab or the suite
failed), XFAIL/XPASS (against a per-device expected-failure file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from pydantic import Field, field_validator

from conformance.schema import Strict, regex, validate
from conformance.yamlfile import YamlError, load_yaml


class Verdict(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    NON_STRICT = "NON-STRICT"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_APPLICABLE = "NOT-APPLICABLE"
    ERROR = "ERROR"
    XFAIL = "XFAIL"
    XPASS = "XPASS"


# A requirement's verdict is the worst of its cases' verdicts, in this order.
SEVERITY = [Verdict.FAIL, Verdict.XPASS, Verdict.ERROR, Verdict.NON_STRICT, Verdict.XFAIL,
            Verdict.INCONCLUSIVE, Verdict.PASS, Verdict.NOT_APPLICABLE]
NON_STRICT_LEVELS = {"SHOULD", "SHOULD NOT", "RECOMMENDED"}


@dataclass
class CheckResult:
    name: str
    ok: bool | None  # None: could not be judged (INCONCLUSIVE), e.g. a peer dropped the message
    requirements: list[str]
    expected: str
    actual: str
    step: int | None = None
    detail: str = ""
    observable: bool = True  # False: the device provides nothing to judge it by (no table)

    def to_dict(self) -> dict:
        out = {"check": self.name, "ok": self.ok, "requirements": self.requirements,
               "expected": self.expected, "actual": self.actual, "step": self.step,
               "detail": self.detail}
        if not self.observable:
            out["observable"] = False
        return out


def judge(results: list[CheckResult], catalog, purpose=()) -> Verdict:
    """FAIL when a failed check binds a strict requirement, NON-STRICT when only SHOULDs,
    INCONCLUSIVE when nothing failed but something could not be judged. A check that is not
    observable on the device weighs nothing: a case none of whose observed checks carries
    one of its own requirements (`purpose`) and none of which failed is NOT-APPLICABLE."""
    observed = [r for r in results if r.observable]
    if len(observed) < len(results) and not any(r.ok is False for r in observed):
        own = set(purpose)
        if not any(own & set(r.requirements) for r in observed) if own else not observed:
            return Verdict.NOT_APPLICABLE
    results = observed
    failed = [r for r in results if r.ok is False]
    if not failed:
        return Verdict.INCONCLUSIVE if any(r.ok is None for r in results) else Verdict.PASS
    for result in failed:
        levels = {catalog[req].level for req in result.requirements if req in catalog}
        if not levels or levels - NON_STRICT_LEVELS:
            return Verdict.FAIL
    return Verdict.NON_STRICT


def requirement_verdict(level: str, ok: bool | None, case_verdict: str) -> str:
    """What one check says about one requirement it carries, at that requirement's own level."""
    if ok is None:
        return Verdict.INCONCLUSIVE.value
    if ok:
        return Verdict.XPASS.value if case_verdict == Verdict.XPASS.value else Verdict.PASS.value
    if case_verdict == Verdict.XFAIL.value:
        return Verdict.XFAIL.value
    return Verdict.NON_STRICT.value if level in NON_STRICT_LEVELS else Verdict.FAIL.value


# Case verdicts that say nothing about the device: the case's own requirements take them.
UNJUDGED = {Verdict.NOT_APPLICABLE.value, Verdict.INCONCLUSIVE.value, Verdict.ERROR.value}


def case_requirement_verdicts(case: dict, catalog) -> dict[str, str]:
    """Each requirement a case judged, with its verdict. A requirement's verdict comes only from
    the checks that carry it, and only where it binds the role under test; a case that judged
    nothing (not applicable, inconclusive, error) passes its verdict to its own requirements."""
    role = case["role"].upper()
    out: dict[str, list[str]] = {}
    for check in case.get("checks", []):
        for req in check["requirements"]:
            if req in catalog and role in catalog[req].roles:
                out.setdefault(req, []).append(
                    requirement_verdict(catalog[req].level, check["ok"], case["verdict"])
                    if check.get("observable", True) else Verdict.NOT_APPLICABLE.value)
    if case["verdict"] in UNJUDGED:
        for req in case["requirements"]:
            if req in catalog and role in catalog[req].roles and req not in out:
                out[req] = [case["verdict"]]
    return {req: rollup([Verdict(v) for v in verdicts]).value for req, verdicts in out.items()}


def signature(results: list[CheckResult]) -> str:
    """What identifies a failure for the expected-failure file: check and requirement ids."""
    return ";".join(sorted({f"{r.name}:{','.join(r.requirements)}" for r in results
                            if r.ok is False}))


def rollup(verdicts: list[Verdict]) -> Verdict | None:
    for verdict in SEVERITY:
        if verdict in verdicts:
            return verdict
    return None


class ExpectedFailuresError(YamlError):
    pass


class ExpectedFailure(Strict):
    case: str = Field(description="the case id (or a table row's id)")
    signature: str = Field(".*", description="regular expression over the failure signature "
                                             "(check:requirement;...)")
    reason: str | None = Field(None, description="why the device fails it (a ticket, say)")

    _regex = field_validator("signature")(classmethod(lambda cls, value: regex(value)))


class ExpectedFailuresFile(Strict):
    expected_failures: list[ExpectedFailure] = Field(default_factory=list)


@dataclass
class ExpectedFailures:
    """Per-device list of known failures: case id and a regex over the failure signature."""

    entries: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    @classmethod
    def load(cls, path: str | Path | None) -> "ExpectedFailures":
        if not path:
            return cls()
        data = load_yaml(path, ExpectedFailuresError) or {}
        model = validate(ExpectedFailuresFile, data, path, ExpectedFailuresError)
        return cls({item.case: item.signature for item in model.expected_failures}, str(path))

    def apply(self, case_id: str, verdict: Verdict, sig: str) -> Verdict:
        pattern = self.entries.get(case_id)
        if pattern is None:
            return verdict
        if verdict in (Verdict.FAIL, Verdict.NON_STRICT) and re.search(pattern, sig):
            return Verdict.XFAIL
        if verdict == Verdict.PASS:
            return Verdict.XPASS  # the file must stay honest: a listed case that passes
        return verdict
