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


@pytest.mark.parametrize("role", ["ha", "fa", "mn"])
def test_every_reference_configuration_fits_the_node_config_schema(role):
    from conformance.lab.profile import load_profile

    validator = _validator("node-config")
    profile = load_profile(ROOT / "fixtures" / "profiles" / f"reference-{role}.yaml")
    document = yaml.safe_load(profile.render(profile.config_template,
                                             {"python": "python3", "workdir": "/tmp/x"}))
    assert not [e.message for e in validator.iter_errors(document)]
    document["colour"] = "blue"
    assert list(validator.iter_errors(document))


def test_the_node_config_model_knows_exactly_the_keys_the_reader_reads(tmp_path, monkeypatch):
    """The schema is checked against the reader: each section's properties are the keys the
    reader asks for (it records every key it asks for, present or not)."""
    from conformance.nodes import config as reader
    from conformance.nodes.config_model import MODELS, Attach, HomeAgent, MobileNode, Runtime

    asked: dict[str, set] = {}
    finish = reader._Reader.finish

    def record(self):
        asked.setdefault(self.where.split("[")[0], set()).update(self.used)
        finish(self)
    monkeypatch.setattr(reader._Reader, "finish", record)
    configs = {
        "ha": "role: ha\naddress: 203.0.113.1\nruntime: {}\nmobile_nodes:\n"
              "  - {home_address: 203.0.113.10, spi: 256, key: '00'}\n",
        "fa": "role: fa\naddress: 203.0.113.65\n"
              "home_agents: [{address: 203.0.113.1, spi: 300, key: '00'}]\n",
        "mn": "role: mn\nhome_address: 203.0.113.10\nhome_agent: 203.0.113.1\nspi: 256\n"
              "key: '00'\nattach: {mode: fa, fa: 203.0.113.65}\n",
    }
    sections = {}
    for role, text in configs.items():
        path = tmp_path / f"{role}.yaml"
        path.write_text(text)
        asked.clear()
        reader.load_node_config(path)
        sections[role] = dict(asked)
    assert set(MODELS["ha"].model_fields) == sections["ha"][""]
    assert set(MODELS["fa"].model_fields) == sections["fa"][""]
    assert set(MODELS["mn"].model_fields) == sections["mn"][""]
    assert set(MobileNode.model_fields) == sections["ha"]["mobile_nodes"]
    assert set(HomeAgent.model_fields) == sections["fa"]["home_agents"]
    assert set(Runtime.model_fields) == sections["ha"]["runtime"]
    assert set(Attach.model_fields) >= sections["mn"]["attach"]
