"""The requirement catalog (testcases/requirements.yaml): loading and validation."""

from __future__ import annotations

import functools

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from conformance.yamlfile import YamlError, line_of, load_yaml

DEFAULT_CATALOG = Path(__file__).resolve().parent.parent / "testcases" / "requirements.yaml"
LEVELS = ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "RECOMMENDED", "MAY", "OPTIONAL",
          "DEFINITION")
# What a broken requirement of each level makes of a case (issue 5 verdicts).
STRICT_LEVELS = frozenset({"MUST", "MUST NOT", "DEFINITION"})
ROLES = ("MN", "FA", "HA")
TESTABLE = ("wire", "state", "no")
_ID = re.compile(r"^RFC(\d+)-(\d+(?:\.\d+)*)-([A-Z]?\d+)$")
_FIELDS = {"id", "rfc", "section", "level", "roles", "text", "testable", "pics", "reason",
           "note", "quoted"}


class CatalogError(YamlError):
    pass


@dataclass(frozen=True)
class Requirement:
    id: str
    rfc: int
    section: str
    level: str
    roles: tuple[str, ...]
    text: str
    testable: str
    pics: str | None = None
    reason: str | None = None
    note: str | None = None
    quoted: bool = True
    line: int | None = field(default=None, compare=False)

    @property
    def strict(self) -> bool:
        return self.level in STRICT_LEVELS

    @property
    def optional(self) -> bool:
        return self.level in ("MAY", "OPTIONAL")

    @property
    def url(self) -> str:
        anchor = "section-" + self.section
        return f"https://www.rfc-editor.org/rfc/rfc{self.rfc}#{anchor}"

    def to_dict(self) -> dict:
        out = {"id": self.id, "rfc": f"RFC {self.rfc}", "section": self.section,
               "level": self.level, "roles": list(self.roles), "text": self.text,
               "testable": self.testable, "quoted": self.quoted}
        for key in ("pics", "reason", "note"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


@dataclass
class Catalog:
    path: Path
    requirements: list[Requirement]

    def __post_init__(self):
        self.by_id = {r.id: r for r in self.requirements}

    def __getitem__(self, req_id: str) -> Requirement:
        return self.by_id[req_id]

    def __contains__(self, req_id: str) -> bool:
        return req_id in self.by_id

    def summary(self) -> str:
        by_level = Counter(r.level for r in self.requirements)
        by_role = Counter(role for r in self.requirements for role in r.roles)
        by_rfc = Counter(f"RFC {r.rfc}" for r in self.requirements)
        testable = Counter(r.testable for r in self.requirements)
        lines = [f"{len(self.requirements)} requirements"]
        lines.append("by level: " + ", ".join(f"{lvl} {by_level[lvl]}" for lvl in LEVELS
                                               if by_level[lvl]))
        lines.append("by role:  " + ", ".join(f"{role} {by_role[role]}" for role in ROLES))
        lines.append("by RFC:   " + ", ".join(f"{k} {v}" for k, v in sorted(by_rfc.items())))
        lines.append("testable: " + ", ".join(f"{k} {testable[k]}" for k in TESTABLE))
        return "\n".join(lines)


def _entry(path: Path, index: int, raw) -> Requirement:
    where = f"requirements[{index}]"
    line = line_of(raw)

    def fail(key: str, message: str):
        raise CatalogError(path, f"{where}.{key}" if key else where, message, line)

    if not isinstance(raw, dict):
        fail("", f"expected a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _FIELDS
    if unknown:
        fail(sorted(unknown)[0], f"unknown key; expected one of {sorted(_FIELDS)}")
    for key in ("id", "rfc", "section", "level", "roles", "text", "testable"):
        if key not in raw:
            fail(key, "missing")
    req_id = raw["id"]
    where = f"requirements[{index}] ({req_id})"
    match = _ID.match(str(req_id))
    if not match:
        fail("id", f"{req_id!r} is not of the form RFC<number>-<section>-<nn>")
    if not isinstance(raw["rfc"], int) or str(raw["rfc"]) != match.group(1):
        fail("rfc", f"{raw['rfc']!r} does not match the id's RFC number {match.group(1)}")
    if str(raw["section"]) != match.group(2):
        fail("section", f"{raw['section']!r} does not match the id's section {match.group(2)}")
    if raw["level"] not in LEVELS:
        fail("level", f"{raw['level']!r}; expected one of {list(LEVELS)}")
    roles = raw["roles"]
    if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
        fail("roles", f"{roles!r}; expected a non-empty list of {list(ROLES)}")
    if not isinstance(raw["text"], str) or not raw["text"].strip():
        fail("text", "expected the requirement's text")
    if raw["testable"] not in TESTABLE:
        fail("testable", f"{raw['testable']!r}; expected one of {list(TESTABLE)}")
    if raw["testable"] == "no" and not raw.get("reason"):
        fail("reason", "an untestable requirement needs the reason")
    if raw["level"] in ("MAY", "OPTIONAL") and raw["testable"] != "no" and not raw.get("pics"):
        fail("pics", "a testable MAY/OPTIONAL item needs the PICS feature that enables it")
    quoted = raw.get("quoted", True)
    if not isinstance(quoted, bool):
        fail("quoted", f"{quoted!r}; expected true or false")
    return Requirement(id=req_id, rfc=raw["rfc"], section=str(raw["section"]),
                       level=raw["level"], roles=tuple(roles), text=" ".join(raw["text"].split()),
                       testable=raw["testable"], pics=raw.get("pics"), reason=raw.get("reason"),
                       note=raw.get("note"), quoted=quoted, line=line)


def load_catalog(path: str | Path | None = None) -> Catalog:
    path = Path(path) if path else DEFAULT_CATALOG
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    return Catalog(path, list(_requirements(path, stamp)))


@functools.lru_cache(maxsize=8)
def _requirements(path: Path, stamp) -> tuple[Requirement, ...]:
    """One parse per file version (runs in one process load the catalog per case); each
    caller gets its own Catalog of the frozen entries."""
    data = load_yaml(path, CatalogError)
    if not isinstance(data, dict) or not isinstance(data.get("requirements"), list):
        raise CatalogError(path, "requirements", "expected a top-level 'requirements' list")
    requirements = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["requirements"]):
        req = _entry(path, index, raw)
        if req.id in seen:
            raise CatalogError(path, f"requirements[{index}].id",
                               f"{req.id} already defined at requirements[{seen[req.id]}]",
                               req.line)
        seen[req.id] = index
        requirements.append(req)
    return tuple(requirements)
