"""The in-memory network: the built-in lab's hosts, links and kernels, with the reference
engines attached, on one simulated clock. Packets are forwarded between links as the lab's
kernels do (TTL and hop limit lowered by one), the nodes' routes are kept as their socket
adapter would install them, and the MN host answers ICMPv6 echo on its addresses, fragmenting
to its tunnel device's MTU or the path MTU it learnt.

    mn --foreign-- fa --transit-- ha --correspondent-- cn
"""

from __future__ import annotations

import ipaddress
import json
import struct
import time
from collections import deque

from conformance.adapters import control
from conformance.adapters.device_scope import device, judge_runs_clean
from conformance.codec.packets import (
    PROTO_UDP, checksum, fragment_ipv4, icmpv6_packet, ipv4_packet, parse_ipv4, text6,
    udp_packet,
)
from conformance.codec.tunnel import forwarded
from conformance.lab import topology
from conformance.lab.agent import Reassembly
from conformance.lab.netns import LabError
from conformance.nodes.faults import tun_device_mtu
from conformance.nodes.actions import DeliverIPv6, Event, SendIPv4, SendUDP

MIP_PORT = 434
FOREIGN = ipaddress.IPv4Network("203.0.113.64/26")
HOME = ipaddress.IPv4Network("203.0.113.0/26")
TRANSIT = ipaddress.IPv4Network("203.0.113.192/30")
CORRESPONDENT = ipaddress.IPv6Network("2001:db8:ff::/64")
LINK_OF = {(host, ifname): link for link, a, a_if, b, b_if in topology.LINKS
           for host, ifname in ((a, a_if), (b, b_if))}
MAX_DELIVERIES = 10_000  # per drain: a forwarding loop is a bug, not a hang
LINK_MTU = 1500  # every link of the built-in lab (veth pairs)


def _local_addresses() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for host, spec in topology.HOSTS.items():
        out[host] = {cidr.split("/")[0] for addrs in spec["interfaces"].values()
                     for cidr in addrs}
    return out


LOCAL = _local_addresses()


# ---------------------------------------------------------------------- packets
def _ttl_lowered(packet: bytes) -> bytes | None:
    """An IPv4 packet as a router forwards it: TTL one lower, header checksum redone."""
    if packet[8] <= 1:
        return None
    ihl = (packet[0] & 15) * 4
    header = bytearray(packet[:ihl])
    header[8] -= 1
    header[10:12] = b"\0\0"
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    return bytes(header) + packet[ihl:]


def _ipv4_dst(packet: bytes) -> str:
    return ".".join(str(b) for b in packet[16:20])


def _in(address: str, net) -> bool:
    try:
        return ipaddress.ip_address(address) in net
    except ValueError:
        return False


def fragments6(packet: bytes, mtu: int, ident: int) -> list[bytes]:
    """An IPv6 packet (no extension headers) as its source sends it over a link of `mtu`
    bytes: whole when it fits, else Fragment headers (RFC 8200 §4.5) of at most mtu bytes."""
    if len(packet) <= mtu:
        return [packet]
    header, payload = bytearray(packet[:40]), packet[40:]
    next_header = header[6]
    header[6] = 44
    size = (mtu - 48) // 8 * 8
    out = []
    for offset in range(0, len(payload), size):
        chunk = payload[offset:offset + size]
        more = offset + size < len(payload)
        header[4:6] = struct.pack("!H", 8 + len(chunk))
        frag = struct.pack("!BBHI", next_header, 0, offset | more, ident)
        out.append(bytes(header) + frag + chunk)
    return out


def _next_timer(node) -> float | None:
    with device():
        return node.engine.next_timer()


class Link:
    """Every packet that crossed one link, in order, with a sequence number and a time."""

    def __init__(self, name: str):
        self.name = name
        self.packets: list[tuple[int, float, bytes]] = []
        self.seq = 0

    def put(self, now: float, packet: bytes) -> None:
        self.seq += 1
        self.packets.append((self.seq, now, packet))


class Node:
    """A reference engine running on a host, with what its adapter would keep in the kernel."""

    def __init__(self, host: str, role: str, engine, config):
        self.host, self.role, self.engine, self.config = host, role, engine, config
        self.log: list[str] = []
        self.routes: set[str] = set()  # HA: IPv6 prefixes routed into its tunnel device
        self.addresses6: set[bytes] = set()  # MN: addresses on its tunnel device
        self.host_routes: set[str] = set()  # FA: visitors reached on the visited link
        self.path_mtu6: dict[bytes, int] = {}  # MN host: what Packet Too Big taught it
        self.crash: str | None = None  # why the engine died (an exception it raised)
        rt = config.runtime
        self.tun_mtu = tun_device_mtu(config.engine, rt.tun_mtu)  # as the socket adapter

    def next_fragment_id(self) -> int:
        self._fragment_id = getattr(self, "_fragment_id", 0x5454) + 1
        return self._fragment_id

    def write_log(self, now: float, event: str, level: str = "info", **data) -> None:
        record = {"ts": round(now, 6), "node": self.role, "event": event, "level": level,
                  **data}
        self.log.append(json.dumps(record, default=str) + "\n")

    def log_text(self) -> str:
        return "".join(self.log)


class MemoryNet:
    """The hosts, links and engines, and the simulated clock they all read."""

    def __init__(self, start: float | None = None):
        self.now = time.time() if start is None else start
        self.links = {link: Link(link) for link, *_ in topology.LINKS}
        self.nodes: dict[str, Node] = {}
        self._queue: deque = deque()
        self._reassembly: dict[str, Reassembly] = {}  # per host, as its kernel keeps them
        judge_runs_clean()

    # ------------------------------------------------------------------ engines
    def attach(self, node: Node) -> None:
        self.nodes[node.host] = node
        node.write_log(self.now, "started")
        if node.role == "mn":
            self.call(node, lambda now: control.attach_at_start(node.engine,
                                                                node.config.attach, now))

    def detach(self, host: str) -> None:
        self.nodes.pop(host, None)

    def call(self, node: Node, method, *args) -> None:
        """Give an engine an input and carry out its actions. An exception is the node dying,
        as its process would on a lab: it leaves the network and the crash is kept."""
        if node.crash is not None or self.nodes.get(node.host) is not node:
            return
        try:
            with device():
                actions = method(*args, self.now)
        except Exception as exc:  # noqa: BLE001 - any exception kills the node's process
            where = getattr(method, "__name__", "start")
            node.crash = f"{type(exc).__name__}: {exc} (in the {node.role.upper()}'s {where})"
            node.write_log(self.now, "crashed", "error", error=node.crash)
            self.detach(node.host)
            return
        self.apply(node, actions)

    def apply(self, node: Node, actions) -> None:
        # Events first, as the socket adapter does: routes exist before the reply goes out.
        actions = list(actions or [])
        for action in [a for a in actions if isinstance(a, Event)]:
            node.write_log(self.now, action.name, action.level, **action.data)
            self._plumb(node, action)
        for action in actions:
            if isinstance(action, SendUDP):
                with device():  # the socket adapter writes the headers (a raw socket)
                    packet = ipv4_packet(action.src, action.dst, PROTO_UDP, udp_packet(
                        action.src, action.dst, action.sport, action.dport, action.payload))
                self._send_ipv4(node, packet, action)
            elif isinstance(action, SendIPv4):
                self._send_ipv4(node, action.packet, action)
            elif isinstance(action, DeliverIPv6):
                self._queue.append((self._into_tunnel_device, (node, action.packet)))
        self._drain()

    def _send_ipv4(self, node: Node, packet: bytes, action) -> None:
        """As the socket adapter sends: whole when it fits the link, else in fragments
        (RFC 791), unless Don't Fragment is set: then the send fails, and an HA whose reply
        could not go out is told so."""
        if len(packet) <= LINK_MTU:
            self.originate(node.host, packet)
            return
        if len(packet) >= 8 and packet[6] & 0x40:
            node.write_log(self.now, "send-failed", "error", error="message too long",
                           action=type(action).__name__)
            if isinstance(action, SendUDP) and node.role == "ha":
                self.call(node, lambda now: node.engine.reply_not_sent(action.payload, now))
            return
        with device():
            pieces = fragment_ipv4(packet, LINK_MTU, node.next_fragment_id())
        for piece in pieces:
            self.originate(node.host, piece)

    def _plumb(self, node: Node, event: Event) -> None:
        if node.role == "ha" and event.name == "route-add":
            node.routes.add(event.data["prefix"])
        elif node.role == "ha" and event.name == "route-del":
            node.routes.discard(event.data["prefix"])
        elif node.role == "mn" and event.name == "registered":
            with device():
                accepted = list(node.engine.accepted_prefixes())
            for prefix in accepted:
                if "/" in prefix:
                    net = ipaddress.IPv6Network(prefix)
                    node.addresses6.add((net.network_address + 1).packed)
        elif node.role == "fa" and event.name == "visitor-added":
            node.host_routes.add(event.data["home_address"])

    # ------------------------------------------------------------------ time
    def next_timer(self) -> float | None:
        due = [t for node in self.nodes.values() if (t := _next_timer(node)) is not None]
        return min(due) if due else None

    def step_until(self, end: float) -> bool:
        """Fire the earliest timer due by `end` (True), or move the clock to `end` (False)."""
        due = self.next_timer()
        if due is None or due > end:
            self.now = max(self.now, end)
            return False
        self.now = max(self.now, due)
        for node in list(self.nodes.values()):
            t = _next_timer(node)
            if t is not None and t <= self.now:
                self.call(node, node.engine.handle_timer)
        return True

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.step_until(end):
            pass

    # ------------------------------------------------------------------ the wire
    def originate(self, host: str, packet: bytes) -> None:
        """A packet a host sends: routed out of it (or delivered to itself)."""
        self._queue.append((self._route_out, (host, packet)))
        self._drain()

    def _drain(self) -> None:
        count = 0
        while self._queue:
            count += 1
            if count > MAX_DELIVERIES:
                self._queue.clear()
                raise LabError("the in-memory network forwarded more than "
                               f"{MAX_DELIVERIES} packets at once: a forwarding loop")
            fn, args = self._queue.popleft()
            fn(*args)

    def _send(self, link: str, to_host: str, packet: bytes) -> None:
        self.links[link].put(self.now, packet)
        self._queue.append((self._arrive, (to_host, link, packet)))

    def _route_out(self, host: str, packet: bytes) -> None:
        if not packet:
            return
        if packet[0] >> 4 == 6:
            self._route_out6(host, packet)
            return
        if packet[0] >> 4 != 4 or len(packet) < 20:
            return
        dst = _ipv4_dst(packet)
        if dst in LOCAL[host]:
            self._local(host, None, packet)
        elif host == "mn":
            self._send("foreign", "fa", packet)  # default via the FA, or the FA itself
        elif host == "fa":
            node = self.nodes.get("fa")
            if (node and dst in node.host_routes) or _in(dst, FOREIGN):
                if dst in LOCAL["mn"]:
                    self._send("foreign", "mn", packet)
            elif _in(dst, HOME) or _in(dst, TRANSIT):
                self._send("transit", "ha", packet)
        elif host == "ha":
            if _in(dst, FOREIGN) or _in(dst, TRANSIT):
                self._send("transit", "fa", packet)

    def _route_out6(self, host: str, packet: bytes) -> None:
        if len(packet) < 40:
            return
        dst = packet[24:40]
        if host == "cn":
            self._send("correspondent", "ha", packet)
        elif host == "ha" and ipaddress.IPv6Address(dst) in CORRESPONDENT:
            if text6(dst) in LOCAL["cn"]:
                self._send("correspondent", "cn", packet)

    def _arrive(self, host: str, link: str, packet: bytes) -> None:
        """A packet off a link at a host: for the host itself, or forwarded."""
        if packet[0] >> 4 == 6:
            if host == "ha":
                self._ha_from_home_side(packet)
            return  # the CN only observes
        if _ipv4_dst(packet) in LOCAL[host]:
            self._local(host, link, packet)
            return
        if host in ("fa", "ha"):
            out = _ttl_lowered(packet)
            if out is not None:
                self._route_out(host, out)

    def _local(self, host: str, link: str | None, packet: bytes) -> None:
        node = self.nodes.get(host)
        if node is None:
            return  # no engine listens: the kernel drops it (no ICMP is modelled)
        if struct.unpack_from("!H", packet, 6)[0] & 0x3FFF:  # a fragment: the kernel waits
            packet = self._reassembly.setdefault(host, Reassembly()).add(packet)
            if packet is None:
                return
        ihl = (packet[0] & 15) * 4
        proto = packet[9]
        engine = node.engine
        if proto == PROTO_UDP and len(packet) >= ihl + 8:
            sport, dport = struct.unpack_from("!HH", packet, ihl)
            if dport != MIP_PORT:
                return
            src = parse_ipv4(packet).src
            if node.role == "fa" and link == "foreign":
                node.host_routes.add(src)  # replies to a visitor go back on the visited link
            self.call(node, node.engine.receive_udp, packet[ihl + 8:], src, sport)
        elif proto in (4, 41, 47):
            if node.role == "fa" and _ipv4_dst(packet) != engine.address:
                return
            self.call(node, node.engine.receive_ipv4, packet)
        elif proto == 1 and node.role == "ha" and engine.config.dynamic_tunnel_mtu:
            self.call(node, node.engine.receive_icmpv4, packet)

    def _ha_from_home_side(self, packet: bytes) -> None:
        node = self.nodes.get("ha")
        if node is None or len(packet) < 40:
            return
        dst = packet[24:40]
        if dst[0] == 0xFF:
            # Routable-scope multicast the HA reads off the link itself (§3.3.2).
            if dst[1] & 0x0F > 2 and node.config.runtime.multicast_interface:
                self.call(node, node.engine.receive_ipv6, packet)
            return
        if self._routed_into_tunnel(node, dst):
            out = forwarded(packet)
            if out is not None:
                self.call(node, node.engine.receive_ipv6, out)

    @staticmethod
    def _routed_into_tunnel(node: Node, dst: bytes) -> bool:
        address = ipaddress.IPv6Address(dst)
        return any(address in ipaddress.IPv6Network(p, strict=False) for p in node.routes)

    def _into_tunnel_device(self, node: Node, packet: bytes) -> None:
        """An IPv6 packet an engine writes to its tunnel device: the host's stack takes it."""
        if len(packet) < 40 or packet[0] >> 4 != 6:
            return
        dst = packet[24:40]
        if node.role == "mn":
            self._mn_stack(node, packet)
            return
        if node.role != "ha" or dst[0] == 0xFF or dst[:2] == b"\xfe\x80":
            return  # link-local and multicast stay on the host
        out = forwarded(packet)
        if out is None:
            return
        if self._routed_into_tunnel(node, dst):
            self.call(node, node.engine.receive_ipv6, out)
        else:
            self._route_out6("ha", out)

    def _mn_stack(self, node: Node, packet: bytes) -> None:
        """The MN host's IPv6 stack: it answers ICMPv6 Echo Requests to its addresses, back
        into the tunnel device, fragmenting to the device's MTU or the path MTU a Packet Too
        Big taught it (RFC 8201)."""
        dst = packet[24:40]
        if packet[6] != 58 or len(packet) < 48:
            return
        if packet[40] == 2 and len(packet) >= 48 + 40:
            quoted_dst = packet[48 + 24:48 + 40]
            mtu = max(1280, int.from_bytes(packet[44:48], "big"))
            node.path_mtu6[quoted_dst] = min(mtu, node.path_mtu6.get(quoted_dst, mtu))
            return
        if packet[40] != 128 or dst not in node.addresses6:
            return
        reply = icmpv6_packet(dst, packet[8:24], 129, 0, packet[44:], hop_limit=64)
        mtu = min(node.tun_mtu, node.path_mtu6.get(packet[8:24], node.tun_mtu))
        for piece in fragments6(reply, mtu, node.next_fragment_id()):
            self.call(node, node.engine.send_ipv6, piece)
