"""Node configuration files: the reference fixtures load; every mistake is named precisely."""

import subprocess
import sys
from pathlib import Path

import pytest

from conformance.nodes.config import ConfigError, load_node_config

ROOT = Path(__file__).resolve().parent.parent
GOOD_HA = """role: ha
address: 203.0.113.1
mobile_nodes:
  - home_address: 203.0.113.10
    spi: 256
    key: 00112233445566778899aabbccddeeff
    allowed_prefixes: [2001:db8:10::/48]
"""


@pytest.mark.parametrize("role", ["ha", "fa", "mn"])
def test_reference_fixtures_load(role):
    config = load_node_config(ROOT / "fixtures" / "reference" / f"{role}.yaml", role)
    assert config.role == role


def test_reference_ha_matches_the_documented_setup():
    cfg = load_node_config(ROOT / "fixtures" / "reference" / "ha.yaml").engine
    assert cfg.address == "203.0.113.1"
    [mn] = cfg.mobile_nodes
    assert (mn.home_address, mn.spi, mn.key.hex()) == ("203.0.113.10", 256,
                                                        "00112233445566778899aabbccddeeff")
    assert str(cfg.delegation_pool) == "2001:db8:100::/40"


@pytest.mark.parametrize("text,where,what", [
    (GOOD_HA + "bogus: 1\n", "bogus", "unknown key"),
    (GOOD_HA.replace("203.0.113.1\n", "203.0.113.300\n"), "address", "203.0.113.300"),
    (GOOD_HA.replace("key: 0011", "key: zz11"), "mobile_nodes[0].key", "not hex"),
    (GOOD_HA.replace("key: 00112233445566778899aabbccddeeff", "key_file: /no/such/key"),
     "mobile_nodes[0].key_file", "cannot read"),
    (GOOD_HA + "faults: [ha.no-such-fault]\n", "faults", "unknown fault"),
    (GOOD_HA.replace("allowed_prefixes: [2001:db8:10::/48]",
                     "implicit_prefixes: [2001:db8:10::/48]") +
     "  - home_address: 203.0.113.11\n    spi: 257\n    key: aabb\n"
     "    implicit_prefixes: [2001:db8:10:5::/64]\n", "mobile_nodes[1].implicit_prefixes",
     "overlaps"),
    (GOOD_HA + "  - home_address: 203.0.113.11\n    spi: 256\n    key: aabb\n",
     "mobile_nodes[1].spi", "already used"),
    ("role: ha\naddress: [oops\n", "$", "YAML syntax"),
    (GOOD_HA + "max_lifetime: 100000\n", "max_lifetime", "1 to 65535"),
    (GOOD_HA.replace("spi: 256", "spi: 99999999999"), "mobile_nodes[0].spi", "32 bits"),
    ("role: ha\naddress: 203.0.113.1\nmobile_nodes: []\n", "mobile_nodes", "at least one"),
    (GOOD_HA.replace("[2001:db8:10::/48]", "[2001:db8:10::/48, 2001:db8:10::/48]"),
     "mobile_nodes[0].allowed_prefixes", "listed twice"),
    (GOOD_HA + "delegation_pool: 2001:db8::/32\n", "mobile_nodes[0].allowed_prefixes",
     "overlaps the delegation pool"),
    (GOOD_HA + "runtime:\n  control_socket: /no/such/folder/ha.sock\n",
     "runtime.control_socket", "does not exist"),
    ("role: mn\nhome_address: 203.0.113.10\nhome_agent: 203.0.113.1\nspi: 256\n"
     "key: 00112233445566778899aabbccddeeff\nlifetime: 70000\n", "lifetime", "16 bits"),
])
def test_config_errors_name_file_key_and_problem(tmp_path, text, where, what):
    path = tmp_path / "node.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    err = info.value
    assert err.path == str(path) and err.yaml_path == where and what in str(err)


def test_secret_key_is_not_echoed_in_errors(tmp_path):
    path = tmp_path / "node.yaml"
    path.write_text(GOOD_HA.replace("key: 00112233445566778899aabbccddeeff", "key: secretzz"))
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert "secretzz" not in str(info.value)


def test_node_command_stops_at_start_with_the_error(tmp_path):
    path = tmp_path / "ha.yaml"
    path.write_text(GOOD_HA + "bogus: 1\n")
    run = subprocess.run([sys.executable, "-m", "conformance", "ha", "--config", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert str(path) in run.stderr and "bogus" in run.stderr and "unknown key" in run.stderr
