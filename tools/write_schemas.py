"""Writes the JSON Schemas under schemas/ from the typed models the loaders enforce; with
--check, exits 1 when a committed schema differs from what the models give (make test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.lab.profile_model import ProfileModel  # noqa: E402
from conformance.lab.testbed_model import TestbedModel  # noqa: E402
from conformance.nodes import config_model  # noqa: E402
from conformance.schema import json_schema  # noqa: E402
from conformance.suite.case_schema import case_file_schema  # noqa: E402
from conformance.suite.verdict import ExpectedFailuresFile  # noqa: E402

SCHEMAS = ROOT / "schemas"


def schemas() -> dict[str, dict]:
    return {
        "profile.schema.json": json_schema(
            ProfileModel, "dsmip4-conformance device profile",
            "How to install, configure, start, stop and observe one device under test, what "
            "it claims (PICS) and what the suite puts on the wire about it (PIXIT)"),
        "testbed.schema.json": json_schema(
            TestbedModel, "dsmip4-conformance testbed",
            "The lab hosts, how to reach them over SSH, their interfaces, links and roles"),
        "expected-failures.schema.json": json_schema(
            ExpectedFailuresFile, "dsmip4-conformance expected failures",
            "Known failures of one device: case id and a regular expression over the "
            "failure signature"),
        "testcase.schema.json": case_file_schema(),
        "node-config.schema.json": config_model.json_schema(),
    }


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name, schema in schemas().items():
        path = SCHEMAS / name
        text = render(schema)
        if "--check" in argv:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            SCHEMAS.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"schemas out of date: {', '.join(stale)}; run "
              f"`.venv/bin/python tools/write_schemas.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
