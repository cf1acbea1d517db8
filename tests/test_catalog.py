"""The requirement catalog and its check against the RFC text."""

import subprocess
import sys
from pathlib import Path

import pytest

from conformance import rfctext
from conformance.catalog import CatalogError, load_catalog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_catalog  # noqa: E402

RFC = rfctext.load(ROOT / "fixtures" / "rfc" / "rfc5454.txt")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_rfc_copy_matches_shared_text():
    shared = ROOT.parent / "shared" / "rfc" / "rfc5454.txt"
    if not shared.exists():
        pytest.skip("no ../shared beside this checkout")
    assert shared.read_text() == (ROOT / "fixtures" / "rfc" / "rfc5454.txt").read_text()


def test_catalog_covers_every_normative_sentence(catalog):
    assert check_catalog.check(catalog, RFC) == []


def test_extraction_finds_the_known_normative_sentences():
    sentences = rfctext.normative_sentences(RFC)
    texts = " | ".join(s.text for s in sentences)
    assert len(sentences) == 53
    assert "It is RECOMMENDED that the full-functionality option" in texts  # hyphen rejoined
    assert "These prefixes MUST NOT appear as on-link" in texts
    assert not any(s.section == "1.1" for s in sentences)  # the keyword list itself


def test_check_fails_when_an_entry_is_missing(catalog):
    catalog.requirements = [r for r in catalog.requirements if r.id != "RFC5454-3.3-03"]
    problems = check_catalog.check(catalog, RFC)
    assert len(problems) == 1 and "§3.3" in problems[0] and "MUST NOT" in problems[0]


def test_check_fails_when_a_quote_is_not_in_the_rfc():
    cat = load_catalog()
    import dataclasses
    cat.requirements[0] = dataclasses.replace(cat.requirements[0],
                                              text=cat.requirements[0].text + " extra")
    problems = check_catalog.check(cat, RFC)
    assert any("quoted text is not in RFC 5454" in p for p in problems)


def test_check_fails_when_the_level_is_not_in_the_quote():
    cat = load_catalog()
    import dataclasses
    i = next(i for i, r in enumerate(cat.requirements) if r.id == "RFC5454-3.3-02")
    cat.requirements[i] = dataclasses.replace(cat.requirements[i], level="MUST")
    assert any("level MUST is not a keyword" in p for p in check_catalog.check(cat, RFC))


def test_every_entry_is_well_formed(catalog):
    assert len(catalog.requirements) >= 100
    for req in catalog.requirements:
        assert req.roles and req.text
        if req.rfc != 5454:
            assert not req.quoted, req.id
    rfcs = {r.rfc for r in catalog.requirements}
    assert {5454, 3344, 3024, 4213, 3519, 3633, 3963} <= rfcs


def test_tool_exits_zero_on_the_real_catalog():
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "check_catalog.py")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "53 normative sentences" in run.stdout


@pytest.mark.parametrize("mutation,where,what", [
    ("  level: MUST\n", "level", "'MUSTY'"),
    ("  roles: [HA]\n", "roles", "expected a non-empty list"),
    ("  testable: wire\n", "testable", "'maybe'"),
])
def test_loader_errors_name_file_yaml_path_and_line(tmp_path, mutation, where, what):
    text = (ROOT / "testcases" / "requirements.yaml").read_text()
    replacement = {"level": "  level: MUSTY\n", "roles": "  roles: [XX]\n",
                   "testable": "  testable: maybe\n"}[where]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(mutation, replacement, 1))
    with pytest.raises(CatalogError) as info:
        load_catalog(bad)
    err = info.value
    assert err.path == str(bad) and err.yaml_path.endswith(f".{where}") and err.line
    assert what in str(err)


def test_loader_reports_duplicate_ids(tmp_path):
    text = (ROOT / "testcases" / "requirements.yaml").read_text()
    bad = tmp_path / "dup.yaml"
    bad.write_text(text.replace("id: RFC5454-2.1-02", "id: RFC5454-2.1-01", 1))
    with pytest.raises(CatalogError, match="already defined"):
        load_catalog(bad)


def test_loader_reports_yaml_syntax_with_line(tmp_path):
    bad = tmp_path / "syntax.yaml"
    bad.write_text("requirements:\n  - id: [unclosed\n")
    with pytest.raises(CatalogError) as info:
        load_catalog(bad)
    assert info.value.line and "YAML syntax" in str(info.value)
