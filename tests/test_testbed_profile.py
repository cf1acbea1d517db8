"""Testbed files and device profiles: loading, validation messages, state parsers."""

from pathlib import Path

import pytest

from conformance.lab.profile import ProfileError, StateParseError, StateReader, load_profile
from conformance.lab.testbed import TestbedError, load_testbed

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "testbeds" / "example-remote.yaml"
GOLDEN = ROOT / "fixtures" / "profiles" / "golden"


def test_example_remote_testbed_loads():
    tb = load_testbed(EXAMPLE)
    assert tb.name == "plugfest-rack-3" and tb.pixit["reply_timeout"] == 3.0
    assert tb.host_for("dut").name == "ha"
    assert tb.links["transit"] == [("fa", "eth2"), ("ha", "eth1")]
    assert tb.hosts["mn"].interfaces["eth1"].ipv4() == ["203.0.113.10", "203.0.113.70"]


def test_named_addresses_win_over_interface_positions():
    from conformance.suite.session import addresses_from

    tb = load_testbed(EXAMPLE)
    addresses = addresses_from(tb)
    assert addresses.coa == "203.0.113.70" and addresses.ha == "203.0.113.194"
    assert addresses.fa == "203.0.113.65"  # not named: from the fa host's foreign interface


def test_secrets_come_from_the_environment_and_never_show(monkeypatch):
    monkeypatch.setenv("DSMIP4_CN_PASSWORD", "hunter2")
    tb = load_testbed(EXAMPLE)
    assert tb.hosts["cn"].management.secret("password") == "hunter2"
    assert "hunter2" not in repr(tb.to_dict())
    assert tb.to_dict()["hosts"]["cn"]["management"]["password_env"] == "DSMIP4_CN_PASSWORD"


@pytest.mark.parametrize("old,new,where,what", [
    ("port: 22, user: lab", "port: 70000, user: lab", "hosts.mn.management.port", "less than or equal to 65535"),
    ("roles: [fa]", "roles: [router]", "hosts.fa.roles[0]", "'mn', 'fa', 'ha', 'cn' or 'dut'"),
    ("address: 192.0.2.23", "address: not-an-ip", "hosts.ha.management.address",
     "expected an IP address"),
    ("eth1: {addresses: [203.0.113.65/26]", "eth1: {addresses: [203.0.113.650/26]",
     "hosts.fa.interfaces.eth1.addresses", "ADDRESS/LENGTH"),
    ("transit: [fa:eth2, ha:eth1]", "transit: [fa:eth9, ha:eth1]", "links.transit[0]",
     "no interface"),
    ("reply_timeout: 3.0", "reply_timeout: -1", "testbed.pixit.reply_timeout", "greater than 0"),
    ("    workdir: /var/tmp/dsmip4\n", "    workdir: /var/tmp/dsmip4\n    colour: blue\n",
     "hosts.mn.colour", "unknown key"),
    ("  coa: 203.0.113.70", "  coa: 203.0.113.700", "addresses.coa", "not an IP address"),
    ("  coa: 203.0.113.70", "  hoa: 203.0.113.70", "addresses", "PIXIT"),
    ("known_hosts: keys/known_hosts, passphrase_env", "passphrase_env",
     "hosts.mn.management.known_hosts", "always checked"),
])
def test_testbed_errors_name_file_path_and_expectation(tmp_path, old, new, where, what):
    text = EXAMPLE.read_text()
    assert old in text
    bad = tmp_path / "testbed.yaml"
    (tmp_path / "keys").mkdir()
    for name in ("known_hosts", "lab_ed25519"):
        (tmp_path / "keys" / name).write_text("")
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(TestbedError) as info:
        load_testbed(bad)
    assert info.value.path == str(bad) and info.value.yaml_path == where
    assert what in str(info.value)


@pytest.mark.parametrize("role", ["ha", "fa", "mn"])
def test_reference_profiles_load_and_render(role):
    profile = load_profile(ROOT / "fixtures" / "profiles" / f"reference-{role}.yaml")
    assert profile.role == role and profile.host == role
    rendered = profile.render(profile.config_template, {"python": "python3",
                                                         "workdir": "/tmp/x"})
    import yaml

    assert yaml.safe_load(rendered)["role"] == role


ALL_REFERENCE_PROFILES = sorted((ROOT / "fixtures" / "profiles").glob("**/reference-*.yaml"))


@pytest.mark.parametrize("path", ALL_REFERENCE_PROFILES, ids=lambda p: p.stem)
def test_reference_node_config_rendered_from_profile_is_valid(tmp_path, path):
    from conformance.nodes.config import load_node_config

    profile = load_profile(path)
    role = profile.role
    config = tmp_path / f"{role}.yaml"
    config.write_text(profile.render(profile.config_template, {"python": "python3",
                                                               "workdir": str(tmp_path)}))
    assert load_node_config(config, role).role == role


def test_variant_profile_extends_its_base():
    base = load_profile(ROOT / "fixtures" / "profiles" / "reference-ha.yaml")
    variant = load_profile(ROOT / "fixtures" / "profiles" / "variants" /
                           "reference-ha-tunneling-mode-ignored.yaml")
    assert variant.name == "reference-ha-tunneling-mode-ignored" and variant.role == "ha"
    assert variant.claims("tunneling-mode-ignored") and not base.claims("tunneling-mode-ignored")
    assert not variant.claims("tunneling-mode-honoured") and variant.claims("gre")
    assert variant.parameters["honour_tunneling_mode"] == "false"
    assert variant.parameters["max_lifetime"] == base.parameters["max_lifetime"]
    assert variant.mobile_nodes == base.mobile_nodes  # the PIXIT merges like parameters
    assert variant.start == base.start and variant.identity["vendor"] == base.identity["vendor"]


def test_extends_errors_name_the_file(tmp_path):
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("extends: two.yaml\n")
    two.write_text("extends: one.yaml\n")
    with pytest.raises(ProfileError, match="circular") as info:
        load_profile(one)
    assert info.value.yaml_path == "extends"
    one.write_text("extends: missing.yaml\nprofile: {name: x}\n")
    with pytest.raises(ProfileError, match="no such profile.*missing.yaml"):
        load_profile(one)
    two.write_text("profile: {name: base}\nrole: ha\nhost: ha\nstart: run\n")
    one.write_text("extends: two.yaml\npics: {telepathy: true}\n")
    with pytest.raises(ProfileError, match="pics.telepathy"):
        load_profile(one)


def test_profile_errors(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("profile: {name: x}\nrole: ha\nhost: ha\nstart: run\npics: {telepathy: true}\n")
    with pytest.raises(ProfileError, match="pics.telepathy"):
        load_profile(bad)
    bad.write_text("profile: {name: x}\nrole: xx\nhost: ha\nstart: run\n")
    with pytest.raises(ProfileError, match="role"):
        load_profile(bad)
    profile_text = "profile: {name: x}\nrole: ha\nhost: ha\nstart: run $nope\n"
    bad.write_text(profile_text)
    profile = load_profile(bad)
    with pytest.raises(ProfileError, match=r"\$nope"):
        profile.render(profile.start, {})


# A vendor CLI's binding table, read by a regex parser: the golden files beside the profiles.
# Sample row the pattern matches:   203.0.113.10    203.0.113.65    1795      2001:db8:10:1::/64
VENDOR = StateReader("show mobile-ip binding", "regex",
                     pattern=r"^(?P<home_address>\d+\.\d+\.\d+\.\d+)\s+"
                             r"(?P<care_of_address>\d+\.\d+\.\d+\.\d+)\s+(?P<lifetime>\d+)\s+"
                             r"(?P<prefix>\S+)$",
                     empty=r"^\(no bindings\)$")


def test_regex_state_parser_golden_rows():
    rows = VENDOR.parse((GOLDEN / "vendor-bindings-two.txt").read_text())
    assert rows == [{"home_address": "203.0.113.10", "care_of_address": "203.0.113.65",
                     "lifetime": "1795", "prefix": "2001:db8:10:1::/64"},
                    {"home_address": "203.0.113.11", "care_of_address": "203.0.113.70",
                     "lifetime": "600", "prefix": "2001:db8:20::/48"}]


def test_regex_state_parser_tells_empty_from_failure():
    assert VENDOR.parse((GOLDEN / "vendor-bindings-empty.txt").read_text()) == []
    with pytest.raises(StateParseError):
        VENDOR.parse((GOLDEN / "vendor-bindings-error.txt").read_text())


def test_json_state_parser_tells_empty_from_failure():
    reader = StateReader("x", "json", path="bindings")
    assert reader.parse('{"bindings": []}') == []
    for broken in ("not json", '{"other": []}', '{"bindings": 3}'):
        with pytest.raises(StateParseError):
            reader.parse(broken)
