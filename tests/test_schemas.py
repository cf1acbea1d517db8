"""The published JSON Schemas (schemas/) match the typed models the loaders enforce, accept
every shipped file and reject the mistakes the loaders reject."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _validator(name: str):
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schemas_are_generated_from_the_models():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "write_schemas.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name, pattern", [
    ("testcase", "testcases/rfc*.yaml"), ("profile", "fixtures/profiles/reference-*.yaml"),
    ("testbed", "fixtures/testbeds/*.yaml")])
def test_shipped_files_fit_their_schema(name, pattern):
    validator = _validator(name)
    files = sorted(ROOT.glob(pattern))
    assert files
    for path in files:
        errors = [f"{list(e.absolute_path)}: {e.message}"
                  for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, f"{path}: {errors[:3]}"


@pytest.mark.parametrize("name, document", [
    ("testcase", {"role": "ha", "cases": [{"id": "X", "title": "t", "requirements": ["R"],
                                           "purpose": "Ensure that", "steps": [
                                               {"register": {"colour": "blue"}}]}]}),
    ("testcase", {"role": "ha", "cases": [{"id": "X", "title": "t", "requirements": ["R"],
                                           "purpose": "Ensure that", "steps": [
                                               {"expect_reply": {"checks": [
                                                   {"check": "reply_code", "colour": 1}]}}]}]}),
    ("profile", {"profile": {"name": "x"}, "role": "ha", "host": "ha", "start": "x",
                 "pics": {"telepathy": True}}),
    ("profile", {"profile": {"name": "x"}, "role": "ha", "host": "ha"}),
    ("testbed", {"hosts": {"a": {"managment": {"address": "192.0.2.1"}, "roles": ["ha"]}}}),
    ("expected-failures", {"expected_failures": [{"case": "X", "signatur": "y"}]}),
])
def test_schemas_reject_mistakes(name, document):
    assert list(_validator(name).iter_errors(document))
