"""The reference nodes on real sockets in network namespaces: MN, FA, HA and a CN.

An MN registers two prefixes through the FA and from a co-located CoA, the CN pings it through
the HA in both tunnel modes, a spoofed inner source is dropped and logged, and dynamic
delegation works end to end.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.adapters.runner import control_request
from conformance.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def _lab_possible() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if not shutil.which("ip") or not os.path.exists("/dev/net/tun"):
        return "needs iproute2 and /dev/net/tun"
    return None


reason = _lab_possible()
if reason and os.environ.get("DSMIP4_REQUIRE_TOOLS"):
    pytest.fail(reason, pytrace=False)
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

from conformance.lab import topology  # noqa: E402
from conformance.lab.netns import Netns  # noqa: E402

KEY = "00112233445566778899aabbccddeeff"


class Lab:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.net = Netns()
        self.procs = {}
        topology.build(self.net)

    def start(self, role: str, config: str) -> str:
        path = self.tmp / f"{role}.yaml"
        sock = str(self.tmp / f"{role}.sock")
        log = self.tmp / f"{role}.log"
        path.write_text(config + f"runtime:\n  control_socket: {sock}\n  log: {log}\n"
                        + {"ha": "  tun: dsmip-ha\n", "mn": "  tun: dsmip-mn\n",
                           "fa": "  foreign_interface: eth0\n"}[role])
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.procs[role] = subprocess.Popen(
            self.net.exec_args(role, sys.executable, "-m", "conformance", role, "--config",
                               str(path)), env=env, stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"{role}.stderr", "w"))
        wait_for(lambda: self.ctl(role, "status"), 10, f"the {role} control socket")
        return sock

    def stop(self, role: str) -> None:
        proc = self.procs.pop(role)
        proc.terminate()
        proc.wait(timeout=5)

    def ctl(self, role: str, command: str) -> dict:
        return control_request(str(self.tmp / f"{role}.sock"), command)

    def log(self, role: str) -> list[dict]:
        path = self.tmp / f"{role}.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() \
            else []

    def ping6(self, dst: str) -> bool:
        return self.net.sh("cn", "ping", "-6", "-c", "1", "-W", "2", dst, check=False,
                           timeout=10).returncode == 0

    def close(self) -> None:
        for role in list(self.procs):
            self.stop(role)
        self.net.teardown()


HA_CONFIG = f"""role: ha
address: {topology.HA}
delegation_pool: 2001:db8:100::/40
mobile_nodes:
  - home_address: {topology.HOA}
    spi: 256
    key: {KEY}
    allowed_prefixes: [2001:db8:10::/48]
"""
FA_CONFIG = f"role: fa\naddress: {topology.FA}\n"
MN_CONFIG = f"""role: mn
home_address: {topology.HOA}
home_agent: {topology.HA}
spi: 256
key: {KEY}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("netns"))
    try:
        lab.start("ha", HA_CONFIG)
        lab.start("fa", FA_CONFIG)
        yield lab
    finally:
        lab.close()


def _wait_prefixes(lab, expected: dict) -> dict:
    def ready():
        status = lab.ctl("mn", "status")
        accepted = {p["prefix"]: p["tunnel"] for p in status["prefixes"] if p["accepted"]}
        return status if status["registered"] and accepted == expected else None
    return wait_for(ready, 10, f"the MN to hold {expected}")


def test_fa_then_colocated_then_spoofed_source(lab):
    lab.start("mn", MN_CONFIG + "prefixes: [2001:db8:10:1::/64, 2001:db8:10:2::/64]\n"
              f"attach: {{mode: fa, fa: {topology.FA}}}\n")
    try:
        _wait_prefixes(lab, {"2001:db8:10:1::/64": "hoa", "2001:db8:10:2::/64": "hoa"})
        [binding] = lab.ctl("ha", "bindings")["bindings"]
        assert binding["care_of_address"] == topology.FA
        assert [v["home_address"] for v in lab.ctl("fa", "visitors")["visitors"]] == \
            [topology.HOA]
        assert wait_for(lambda: lab.ping6("2001:db8:10:1::1"), 10, "ping through the FA")
        assert lab.ping6("2001:db8:10:2::1")

        lab.ctl("mn", f"attach-colocated {topology.COA}")
        _wait_prefixes(lab, {"2001:db8:10:1::/64": "coa", "2001:db8:10:2::/64": "coa"})
        [binding] = lab.ctl("ha", "bindings")["bindings"]
        assert binding["care_of_address"] == topology.COA
        assert wait_for(lambda: lab.ping6("2001:db8:10:1::1"), 10, "ping to the co-located CoA")

        # A packet from the MN's namespace with an inner source under no registered prefix.
        forge = ("import socket;from conformance.codec.packets import *;"
                 "from conformance.codec.tunnel import encapsulate;"
                 "inner=IPv6(addr6('2001:db8:99::1'),addr6('2001:db8:ff::1'),59,b'x').to_bytes();"
                 f"_,p=encapsulate(inner,True,'{topology.COA}','{topology.HA}','ipip');"
                 "s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW);"
                 f"s.sendto(p,('{topology.HA}',0))")
        lab.net.sh("mn", "env", f"PYTHONPATH={ROOT}", sys.executable, "-c", forge)
        event = wait_for(lambda: [r for r in lab.log("ha") if r["event"] == "security-exception"
                                  and r["inner_src"] == "2001:db8:99::1"], 5,
                         "the security exception log")[0]
        assert not [r for r in lab.log("ha") if r["event"] == "security-exception"
                    and r["inner_src"] != "2001:db8:99::1"]
        assert event["inner_src"] == "2001:db8:99::1" and event["outer_src"] == topology.COA
        assert event["mobile_node"] == topology.HOA
    finally:
        lab.stop("mn")


def test_dynamic_delegation(lab):
    lab.start("mn", MN_CONFIG + "dynamic_delegation: true\n"
              f"attach: {{mode: fa, fa: {topology.FA}}}\n")
    try:
        status = wait_for(lambda: (s := lab.ctl("mn", "status"))["delegated"] and
                          any(p["accepted"] and p["prefix"] == s["delegated"][0]
                              for p in s["prefixes"]) and s, 10, "a delegated prefix")
        delegated = status["delegated"][0]
        assert delegated == "2001:db8:100::/56"
        assert wait_for(lambda: lab.ping6("2001:db8:100::1"), 10, "ping to the delegated prefix")
    finally:
        lab.stop("mn")
