"""The default topology of the built-in lab (documentation addresses only).

    mn --foreign link-- fa --transit-- ha --correspondent side-- cn

  foreign link   203.0.113.64/26   fa 203.0.113.65 (care-of address), mn co-located CoA .70
  home network   203.0.113.0/26    ha 203.0.113.1, mn home address 203.0.113.10
  transit        203.0.113.192/30  fa .193, ha .194
  correspondent  2001:db8:ff::/64  ha ::2, cn ::1
"""

from __future__ import annotations

from conformance.lab.netns import Netns

HA = "203.0.113.1"
FA = "203.0.113.65"
HOA = "203.0.113.10"
HOA2 = "203.0.113.11"  # a second mobile node, played by the suite from the same host
COA = "203.0.113.70"
CN6 = "2001:db8:ff::1"
HA6 = "2001:db8:ff::2"
FA_TRANSIT, HA_TRANSIT = "203.0.113.193", "203.0.113.194"

HOSTS = {
    "mn": {"interfaces": {"eth0": [f"{HOA}/32", f"{COA}/26", f"{HOA2}/32"]},
           "link": "foreign"},
    "fa": {"interfaces": {"eth0": [f"{FA}/26"], "eth1": [f"{FA_TRANSIT}/30"]}},
    "ha": {"interfaces": {"lo": [f"{HA}/32"], "eth0": [f"{HA_TRANSIT}/30"],
                          "eth1": [f"{HA6}/64"]}},
    "cn": {"interfaces": {"eth0": [f"{CN6}/64"]}},
}
LINKS = [("foreign", "mn", "eth0", "fa", "eth0"), ("transit", "fa", "eth1", "ha", "eth0"),
         ("correspondent", "ha", "eth1", "cn", "eth0")]


def build(net: Netns) -> None:
    for host in HOSTS:
        net.add_namespace(host)
    for _, a, a_if, b, b_if in LINKS:
        net.link(a, a_if, b, b_if)
    for host, spec in HOSTS.items():
        for ifname, addrs in spec["interfaces"].items():
            for cidr in addrs:
                net.addr(host, ifname, cidr)
    net.route("mn", "default", "via", FA, "dev", "eth0", "onlink")
    net.route("fa", "203.0.113.0/26", "via", HA_TRANSIT)
    net.route("ha", "203.0.113.64/26", "via", FA_TRANSIT)
    net.route("cn", "default", "via", HA6)
