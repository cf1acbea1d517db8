"""What one case run leaves behind: a typed record, written as JSON into results.json and the
case's evidence folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class CaseRecord:
    id: str
    title: str
    file: str
    role: str
    section: str
    requirements: list[str]
    purpose: str
    pics: list[str]
    seed: int | None
    steps: list[str]
    rerun: str
    verdict: str | None = None
    message: str = ""
    signature: str = ""
    checks: list[dict] = field(default_factory=list)
    trace: list[dict] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    waited: float = 0.0
    duration: float = 0.0
    testbed: str | None = None  # the lab that ran it (runs over several labs name each)

    def conclude(self, verdict: str, message: str) -> None:
        self.verdict, self.message = verdict, message

    def to_dict(self) -> dict:
        return asdict(self)
