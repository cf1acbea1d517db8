"""The built-in lab end to end: namespaces with sshd, SSH with host-key checking, the reference
HA and FA started from their profiles, a registration sent by the agent on the mn host through
the fa host and answered, its pcap fetched, and nothing left behind."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lab_possible():
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    missing = [tool for tool in ("ip", "tcpdump", "ssh-keygen") if not shutil.which(tool)]
    if missing or not Path("/usr/sbin/sshd").exists():
        return f"needs {', '.join(missing) or 'openssh-server'} (make setup installs them)"
    return None


reason = _lab_possible()
if reason and os.environ.get("DSMIP4_REQUIRE_TOOLS"):
    pytest.fail(reason, pytrace=False)
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

from conformance.codec import (  # noqa: E402
    AuthExtension, PrefixRequest, RegistrationRequest, decode, encode,
)
from conformance.lab import builtin, topology  # noqa: E402
from conformance.lab.agent_client import Agent  # noqa: E402
from conformance.lab.device import Device, DeviceCrashed  # noqa: E402
from conformance.lab.netns import LabError, run  # noqa: E402
from conformance.lab.profile import load_profile  # noqa: E402
from conformance.lab.ssh import SSHHost  # noqa: E402
from conformance.lab.testbed import load_testbed  # noqa: E402
from conformance.codec.ntp import ntp_time  # noqa: E402
from conformance.waiting import wait_for  # noqa: E402

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def _leftovers(prefix: str) -> list[str]:
    """Namespaces, links and folders (keys, configurations) of a lab that should be gone."""
    names = run("ip", "netns", "list").stdout + run("ip", "-br", "link").stdout
    folders = [str(p) for p in (builtin.STATE_DIR / prefix, Path(f"/tmp/dsmip4-{prefix}"))
               if p.exists()]
    return [line for line in names.splitlines() if prefix in line] + folders


@pytest.fixture(scope="module")
def lab():
    lab = builtin.BuiltinLab().up()
    testbed = load_testbed(lab.testbed_path)
    hosts = {name: SSHHost(spec).connect() for name, spec in testbed.hosts.items()}
    yield lab, testbed, hosts
    for host in hosts.values():
        host.close()
    lab.down()
    assert _leftovers(lab.net.prefix) == []
    assert not lab.net.state_file.exists() and not lab.dir.exists()


def test_every_host_answers_over_ssh_and_is_healthy(lab):
    _, testbed, hosts = lab
    for name, host in hosts.items():
        health = host.health()
        assert health["ok"], health
        result = host.run("ip -br addr show eth0", 5)
        assert result.ok and result.duration < 5
        expected = testbed.hosts[name].interfaces["eth0"].addresses[0].split("/")[0]
        assert expected in result.stdout


def test_unknown_host_key_is_rejected(lab, tmp_path):
    _, testbed, _ = lab
    spec = testbed.hosts["ha"]
    wrong = tmp_path / "known_hosts"
    other = testbed.hosts["fa"].management.address
    lines = Path(spec.management.known_hosts).read_text().splitlines()
    fa_key = next(line for line in lines if line.startswith(other + " "))
    wrong.write_text(fa_key.replace(other, spec.management.address, 1) + "\n")
    spec.management.known_hosts = str(wrong)
    try:
        with pytest.raises(LabError, match="host key"):
            SSHHost(spec).connect()
        wrong.write_text("")
        with pytest.raises(LabError):
            SSHHost(spec).connect()
    finally:
        spec.management.known_hosts = str(Path(testbed.path).parent / "known_hosts")


def test_command_deadline_and_background_processes(lab):
    _, _, hosts = lab
    host = hosts["cn"]
    from conformance.lab.ssh import CommandTimeout

    with pytest.raises(CommandTimeout):
        host.run("sleep 10.123", timeout=0.5)
    # The remote command did not outlive the deadline.
    assert host.run("pgrep -f '^sleep 10.123' || true", 5).stdout.strip() == ""
    big = host.run("head -c 3000000 /dev/zero | tr '\\0' a; head -c 3000000 /dev/zero | "
                   "tr '\\0' b >&2", 20)
    assert len(big.stdout) == 3_000_000 and len(big.stderr) == 3_000_000
    pid = host.start_background("sleep 60", "/tmp/bg-test.log")
    assert host.alive(pid)
    host.stop_background(pid)
    assert not host.alive(pid)


def test_reference_ha_as_device_answers_a_registration_through_the_fa(lab, tmp_path):
    _, testbed, hosts = lab
    ha = Device(load_profile(ROOT / "fixtures/profiles/reference-ha.yaml"), hosts["ha"])
    fa = Device(load_profile(ROOT / "fixtures/profiles/reference-fa.yaml"), hosts["fa"])
    agent = Agent(hosts["mn"]).start()
    try:
        for device in (ha, fa):
            device.install()
            device.configure()
            device.start()
        assert ha.state("bindings") == []  # an empty table, read successfully
        # The configuration holds MN-HA keys: readable by its owner only.
        config = ha.render(ha.profile.config_path)
        modes = hosts["ha"].run(f"stat -c %a {config} {hosts['ha'].spec.workdir}", 5).stdout
        assert modes.split() == ["600", "700"]
        capture = agent.capture_start("eth0", "registration")
        mark = agent.listen("eth0")
        request = RegistrationRequest(0, 600, topology.HOA, topology.HA, topology.FA,
                                      ntp_time(__import__("time").time()),
                                      [PrefixRequest.of("2001:db8:10:1::/64"),
                                       AuthExtension(32, 256)])
        agent.send_udp(topology.HOA, topology.FA, encode(request, {32: KEY}))
        seen = agent.wait("eth0", {"src": topology.FA, "dport": 434}, 3.0, mark)
        assert seen["matched"], seen
        packet = bytes.fromhex(seen["packet"])
        reply = decode(packet[28:])
        assert reply.code == 0 and reply.prefix_replies[0].code == 0
        pcap = agent.capture_stop(capture, str(tmp_path / "registration.pcap"))
        from scapy.utils import rdpcap

        from conformance.scapy_layers import DSMIPRegistrationReply, DSMIPv4PrefixRequest

        packets = rdpcap(pcap)
        assert any(p.haslayer(DSMIPv4PrefixRequest) for p in packets)
        assert any(p.haslayer(DSMIPRegistrationReply) for p in packets)
        [binding] = ha.state("bindings")
        assert binding["care_of_address"] == topology.FA
        assert binding["prefixes"] == [{"prefix": "2001:db8:10:1::/64", "tunnel": "hoa"}]
        visitors = fa.state("visitors")
        assert [v["home_address"] for v in visitors] == [topology.HOA]

        # A crash is noticed, reported with the last log lines, and the device restarted.
        hosts["ha"].run(f"kill -9 {ha.pid}", 5)
        with pytest.raises(DeviceCrashed) as info:
            ha.check_alive()
        assert info.value.last_log and "registration-accepted" in "\n".join(
            info.value.last_log + [str(c) for c in ha.crashes])
        ha.check_alive()  # healthy again after the restart
        assert ha.state("bindings") == []
    finally:
        agent.stop()
        for device in (ha, fa):
            device.stop()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_cli_lab_up_status_down_and_sigkilled_keeper_is_cleaned_up():
    import json

    up = _cli("lab", "up", "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    other = builtin.BuiltinLab().up()  # a second lab, side by side
    try:
        assert info["mgmt_subnet"] != str(other.mgmt)
        assert load_testbed(info["testbed"]).hosts["ha"].management.address
        status = _cli("lab", "status", "--json")
        labs = {lab["prefix"]: lab for lab in json.loads(status.stdout)}
        assert labs[info["prefix"]]["state"] == "up"
        # A plain `lab down` leaves a lab whose run is still going, and says so.
        down = _cli("lab", "down")
        assert down.returncode == 0 and info["prefix"] in down.stdout and "left" in down.stdout
        assert {lab["prefix"]: lab for lab in builtin.lab_status()}[info["prefix"]]["state"] \
            == "up"
        assert other.net.ns("ha") in run("ip", "netns", "list").stdout
        os.kill(info["keeper"], signal.SIGKILL)
        wait_for(lambda: {lab["prefix"]: lab for lab in builtin.lab_status()}[info["prefix"]]
                 ["state"] == "stale", 5, "the killed lab to show as stale")
        # The next lab's start removes the stale one, folders with private keys included.
        third = builtin.BuiltinLab().up()
        third.down()
        assert info["prefix"] in third.removed_stale
        assert _leftovers(info["prefix"]) == []
        down = _cli("lab", "down", "--prefix", info["prefix"])
        assert down.returncode == 0
        assert other.net.ns("ha") in run("ip", "netns", "list").stdout  # untouched
    finally:
        other.down()
        builtin.lab_down(info["prefix"])
    assert _leftovers(other.net.prefix) == [] and _leftovers(info["prefix"]) == []


def test_management_subnet_collision_is_a_clear_error(lab):
    built, _, _ = lab
    with pytest.raises(LabError, match="--mgmt-subnet") as info:
        builtin.choose_mgmt_subnet(str(built.mgmt))
    assert str(built.mgmt) in str(info.value)


def test_lab_down_removes_only_stale_labs_unless_told():
    labs = [{"prefix": "d4aaaa", "owner_alive": True}, {"prefix": "d4bbbb", "owner_alive": False}]
    names = lambda chosen: [lab["prefix"] for lab in chosen]  # noqa: E731
    assert names(builtin.removable(labs, None, False)) == ["d4bbbb"]
    assert names(builtin.removable(labs, None, True)) == ["d4aaaa", "d4bbbb"]
    assert names(builtin.removable(labs, "d4aaaa", False)) == ["d4aaaa"]


def _icmp_unreachable_from(src: str):
    """A filter for ICMP errors (destination unreachable) a host sent."""
    return {"version": 4, "ip_proto": 1, "src": src}


def test_suite_hosts_send_no_icmp_errors_but_the_agents_packets_pass(lab):
    """Issue 13 item 8: a quiet host's kernel answers nothing with ICMP errors, while the ICMP
    the agent crafts (e.g. fragmentation needed, sent to a device on purpose) still goes out."""
    _, _, hosts = lab
    mn, fa = Agent(hosts["mn"]).start(), Agent(hosts["fa"]).start()
    try:
        fa.listen("eth0")

        def port_unreachable_seen() -> bool:
            since = fa.mark("eth0")
            fa.send_udp(topology.FA, topology.COA, b"knock", sport=40000, dport=9)
            return fa.wait("eth0", _icmp_unreachable_from(topology.COA), 1.0, since)["matched"]

        assert port_unreachable_seen(), "the kernel should answer a closed port when loud"
        mn.quiet(True)
        assert not port_unreachable_seen()
        assert mn.quiet_dropped() >= 1
        since = fa.mark("eth0")
        crafted = bytes.fromhex("4500001c000000004001") + b"\0\0" + \
            bytes(map(int, topology.COA.split("."))) + bytes(map(int, topology.FA.split("."))) + \
            bytes.fromhex("0304000000000000")
        mn.send_ip(crafted)
        assert fa.wait("eth0", _icmp_unreachable_from(topology.COA), 2.0, since)["matched"]
        mn.quiet(False)
        assert port_unreachable_seen()
    finally:
        mn.stop()
        fa.stop()


def test_device_configurations_and_lab_folders_are_private(lab):
    """Issue 13 item 5: the MN-HA keys in a device configuration are readable by root only
    (checked as uid 65534), and the lab's folder (private keys) is 0700."""
    built, _, hosts = lab
    dev = Device(load_profile(ROOT / "fixtures/profiles/reference-ha.yaml"), hosts["ha"])
    dev.install()
    dev.configure()
    config = dev.render(dev.profile.config_path)
    assert os.stat(config).st_mode & 0o777 == 0o600
    assert os.stat(built.dir).st_mode & 0o777 == 0o700
    as_nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "cat", config], capture_output=True, text=True, timeout=10)
    assert as_nobody.returncode != 0 and "Permission denied" in as_nobody.stderr


def test_profile_check_drives_each_reference_device_on_the_lab(lab, capsys):
    """`dsmip4 profile check` on a real lab: install, configure, start, health, each state
    reader and stop all work for every shipped reference profile (exit 0)."""
    from types import SimpleNamespace

    from conformance.profile_check import main as profile_check

    built, _, _ = lab
    for role in ("ha", "fa", "mn"):
        args = SimpleNamespace(profile=str(ROOT / f"fixtures/profiles/reference-{role}.yaml"),
                               testbed=str(built.testbed_path), static=False)
        assert profile_check(args) == 0, capsys.readouterr().out
        out = capsys.readouterr().out
        assert "ok      start and health" in out and "ok      stop" in out, out


def test_a_cli_only_home_agent_runs_real_cases_through_netmiko_and_textfsm(lab, tmp_path):
    """The router-style example device (an IOS-like CLI over SSH, nothing else): configured
    in configuration mode, reset by a CLI command, its bindings read by a TextFSM template;
    the §3.8 cases pass on it, their binding checks judged from the parsed CLI output and the
    routes it cannot show reported as not observable."""
    import json

    built, _, _ = lab
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--testbed",
                           str(built.testbed_path), "--dut",
                           str(ROOT / "fixtures/profiles/examples/cli-ha.yaml"), "--role",
                           "ha", "--section", "3.8", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    results = json.loads((out / "results.json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in results["cases"]}
    assert verdicts and set(verdicts.values()) == {"PASS"}, done.stdout[-3000:]
    judged = [k for c in results["cases"] for k in c["checks"]
              if k["check"] == "binding_prefixes"]
    assert judged and all(k["ok"] for k in judged)
    assert {u["check"] for u in results["unobservable"]} == {"no_route"}


def test_the_guides_worked_example_runs_as_written_on_the_lab(lab, tmp_path):
    """docs/writing-a-profile.md: its `dsmip4 run` command, on a real lab, gives the verdicts
    the guide shows."""
    import json
    import re

    guide = (ROOT / "docs" / "writing-a-profile.md").read_text()
    command = next(line[len("$ dsmip4 "):].split() for line in guide.splitlines()
                   if line.startswith("$ dsmip4 run "))
    out = tmp_path / "out"
    command[command.index("--out") + 1] = str(out)
    built, _, _ = lab
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    subprocess.run([sys.executable, "-m", "conformance", *command, "--testbed",
                    str(built.testbed_path)], cwd=ROOT, env=env, capture_output=True,
                   timeout=600)
    counts = json.loads((out / "results.json").read_text())["summary"]["counts"]
    assert ", ".join(f"{k} {v}" for k, v in counts.items()) == \
        re.search(r"verdicts: (.*)", guide).group(1)


def test_a_registration_health_probe_gates_the_device(lab, tmp_path):
    """health: {registration: true}: the reference HA answers the probe and its cases run;
    a "device" that never answers a registration never becomes healthy (ERROR, not FAIL)."""
    import json

    built, _, _ = lab
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    base = ROOT / "fixtures/profiles/reference-ha.yaml"
    verdicts = {}
    for name, extra in (("answers", ""), ("silent", "start: \"sleep 600\"\n")):
        profile = tmp_path / f"{name}.yaml"
        profile.write_text(f"extends: {base}\nprofile: {{name: {name}-ha}}\n"
                           f"health: {{registration: true}}\n{extra}")
        out = tmp_path / name
        subprocess.run([sys.executable, "-m", "conformance", "run", "--testbed",
                        str(built.testbed_path), "--dut", str(profile), "--role", "ha",
                        "--case", "HA-3.8-001", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, timeout=300)
        (case,) = json.loads((out / "results.json").read_text())["cases"]
        verdicts[name] = (case["verdict"], case["message"])
    assert verdicts["answers"][0] == "PASS", verdicts
    assert verdicts["silent"][0] == "ERROR" and "healthy" in verdicts["silent"][1], verdicts
