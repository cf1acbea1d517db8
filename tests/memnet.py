"""An in-memory network for the reference engines: MN <-> FA <-> HA <-> CN with a fake clock.

Addresses follow the reference fixtures: HA 203.0.113.1, FA (care-of address) 203.0.113.65,
MN home address 203.0.113.10, co-located care-of address 203.0.113.130, and the correspondent
node 2001:db8:ff::1 behind the HA's home side.
"""

from __future__ import annotations

import ipaddress

from conformance.codec.packets import parse_ipv4
from conformance.nodes.actions import DeliverIPv6, Event, SendIPv4, SendUDP
from conformance.nodes.fa import FAConfig, ForeignAgent
from conformance.nodes.ha import HAConfig, HomeAgent, MobileNodeEntry
from conformance.nodes.mn import MNConfig, MobileNode

HA, FA, HOA, COA = "203.0.113.1", "203.0.113.65", "203.0.113.10", "203.0.113.130"
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
START = 1_790_000_000.0


def ha_config(**kw) -> HAConfig:
    mns = kw.pop("mobile_nodes", None) or [MobileNodeEntry(
        HOA, 256, KEY, [ipaddress.IPv6Network("2001:db8:10::/48")])]
    base = dict(address=HA, mobile_nodes=mns,
                delegation_pool=ipaddress.IPv6Network("2001:db8:100::/40"))
    base.update(kw)
    return HAConfig(**base)


def mn_config(**kw) -> MNConfig:
    base = dict(home_address=HOA, home_agent=HA, spi=256, key=KEY,
                prefixes=[ipaddress.IPv6Network("2001:db8:10:1::/64"),
                          ipaddress.IPv6Network("2001:db8:10:2::/64")])
    base.update(kw)
    return MNConfig(**base)


class MemNet:
    def __init__(self, ha=None, fa=None, mn=None):
        self.now = START
        self.ha = ha or HomeAgent(ha_config())
        self.fa = fa or ForeignAgent(FAConfig(FA))
        self.mn = mn or MobileNode(mn_config())
        self.log: list[tuple[str, object]] = []  # (node, action) in order
        self.cn_received: list[bytes] = []  # IPv6 packets the HA delivered to the home side
        self.mn_received: list[bytes] = []
        self.wire: list[tuple[str, str, object]] = []  # (from, to, SendUDP/SendIPv4)

    def events(self, node: str | None = None, name: str | None = None) -> list[Event]:
        return [a for n, a in self.log if isinstance(a, Event) and (node is None or n == node)
                and (name is None or a.name == name)]

    def run(self, origin: str, actions: list) -> None:
        queue = [(origin, a) for a in actions]
        hops = 0
        while queue:
            hops += 1
            assert hops < 1000, "forwarding loop in the in-memory network"
            node, action = queue.pop(0)
            self.log.append((node, action))
            for nxt in self._route(node, action):
                queue.append(nxt)

    def _route(self, node: str, action):
        t = self.now
        if isinstance(action, SendUDP):
            target = self._owner(action.dst, node)
            self.wire.append((node, target, action))
            if target == "ha":
                return [("ha", a) for a in self.ha.receive_udp(action.payload, action.src,
                                                              action.sport, t)]
            if target == "fa":
                return [("fa", a) for a in self.fa.receive_udp(action.payload, action.src,
                                                              action.sport, t)]
            if target == "mn":
                return [("mn", a) for a in self.mn.receive_udp(action.payload, action.src,
                                                              action.sport, t)]
            return []
        if isinstance(action, SendIPv4):
            dst = parse_ipv4(action.packet).dst
            if node == "mn" and self.mn.mode == "fa":
                # The MN's default router is the FA: it forwards or reverse-tunnels.
                self.wire.append(("mn", "fa", action))
                return [("fa", a) for a in self.fa.receive_from_visitor(action.packet, t)]
            target = self._owner(dst, node)
            self.wire.append((node, target, action))
            if target == "ha":
                return [("ha", a) for a in self.ha.receive_ipv4(action.packet, t)]
            if target == "fa":
                return [("fa", a) for a in self.fa.receive_ipv4(action.packet, t)]
            if target == "mn":
                return [("mn", a) for a in self.mn.receive_ipv4(action.packet, t)]
            return []
        if isinstance(action, DeliverIPv6):
            (self.cn_received if node == "ha" else self.mn_received).append(action.packet)
        return []

    def _owner(self, dst: str, sender: str) -> str | None:
        if dst == HA:
            return "ha"
        if dst == FA:
            return "fa"
        if dst == HOA:
            # A packet for the home address: the FA delivers it on the visited link; anyone
            # else's reaches the home link where the HA intercepts it.
            return "mn" if sender == "fa" or self.mn.mode == "home" else "ha"
        if dst == self.mn.care_of_address:
            return "mn"
        return None

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every timer that falls due, in order."""
        end = self.now + seconds
        while True:
            due = [(t, name) for name, node in (("ha", self.ha), ("fa", self.fa),
                                                ("mn", self.mn))
                   if (t := node.next_timer()) is not None and t <= end]
            if not due:
                break
            t, name = min(due)
            self.now = max(self.now, t)
            self.run(name, getattr(self, name).handle_timer(self.now))
        self.now = end

    # conveniences
    def mn_do(self, method: str, *args) -> None:
        self.run("mn", getattr(self.mn, method)(*args, self.now))

    def from_cn(self, packet: bytes) -> None:
        self.run("ha", self.ha.receive_ipv6(packet, self.now))
