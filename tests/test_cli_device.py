"""The CLI-device connection's parts that need no lab: TextFSM templates against their golden
outputs (the ntc-templates convention: tests/<template>/<sample>.raw beside <sample>.yml), and
the test console's prompts, privilege, paging and configuration mode as netmiko meets them."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conformance.lab.profile import StateParseError, load_profile, parse_textfsm
from conformance.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
CLI_HA = ROOT / "fixtures" / "profiles" / "examples" / "cli-ha"
SAMPLES = sorted((CLI_HA / "tests").glob("*/*.raw"))


@pytest.mark.parametrize("raw", SAMPLES, ids=[f"{p.parent.name}/{p.stem}" for p in SAMPLES])
def test_each_template_parses_its_golden_output(raw):
    template = CLI_HA / "templates" / f"{raw.parent.name}.textfsm"
    expected = yaml.safe_load(raw.with_suffix(".yml").read_text())["parsed_sample"]
    assert parse_textfsm(str(template), raw.read_text()) == expected


def test_the_profile_checks_every_parsed_row_against_its_row_schema():
    reader = load_profile(ROOT / "fixtures/profiles/examples/cli-ha.yaml").state["bindings"]
    rows = reader.parse((CLI_HA / "tests/show_ip_mobile_binding/two.raw").read_text())
    assert [r["home_address"] for r in rows] == ["203.0.113.10", "203.0.113.11"]
    broken = (CLI_HA / "tests/show_ip_mobile_binding/two.raw").read_text().replace(
        "Care-of Addr 203.0.113.65", "Care-of Addr 203.0.113.6x5")
    with pytest.raises(StateParseError):  # a line the template does not know: Error state
        reader.parse(broken)


@pytest.fixture
def console(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(CLI_HA / "dsmip_console.py"), "--listen",
                             "127.0.0.1", "--port", str(port), "--workdir", str(tmp_path),
                             "--password", "pw", "--secret", "sec"],
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(listening, 15, "the console to listen")
    yield port
    proc.terminate()
    proc.wait(10)


def test_netmiko_drives_the_console_modes_and_sees_refusals(console):
    from netmiko import ConnectHandler
    from netmiko.exceptions import NetmikoAuthenticationException

    with pytest.raises(NetmikoAuthenticationException):
        ConnectHandler(device_type="cisco_ios", host="127.0.0.1", port=console,
                       username="admin", password="wrong", conn_timeout=10)
    conn = ConnectHandler(device_type="cisco_ios", host="127.0.0.1", port=console,
                          username="admin", password="pw", secret="sec", conn_timeout=10)
    try:
        assert conn.base_prompt == "dsmip-ha"
        assert "Invalid input" in conn.send_command("show running-config")  # not privileged
        conn.enable()
        out = conn.send_config_set(["ip mobile home-agent address 203.0.113.1",
                                    "ip mobile host 203.0.113.10 spi 256 key hex 00ff",
                                    "ip mobile host 203.0.113.10 spi 256 key hex zz"])
        assert "% Bad value" in out
        running = conn.send_command("show running-config")
        assert "ip mobile home-agent address 203.0.113.1" in running
        assert "key hex <removed>" in running and "00ff" not in running
        assert conn.send_command("show ip mobile binding").splitlines()[-1] == "Total 0"
    finally:
        conn.disconnect()


def test_the_console_pages_until_told_not_to(console):
    """Without `terminal length 0` long output stops at --More--; a space shows the next
    page (netmiko turns paging off when it connects, as on a real router)."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", console, "admin", "pw", look_for_keys=False,
                   allow_agent=False)
    chan = client.invoke_shell()
    chan.settimeout(5)

    def read_until(text):
        data = b""
        while text.encode() not in data:
            data += chan.recv(4096)
        return data.decode()
    read_until("dsmip-ha>")
    chan.send("enable\n")
    read_until("Password:")
    chan.send("sec\n")
    read_until("dsmip-ha#")
    chan.send("terminal length 4\nshow running-config\n")
    first = read_until("--More--")
    assert "hostname dsmip-ha" in first and "end" not in first.split("running-config")[-1]
    chan.send(" ")
    chan.send(" ")
    rest = read_until("dsmip-ha#")
    assert "mobile-ip enable" in rest
    client.close()
