"""The in-memory lab: the reference engines wired as the built-in lab's topology, in one
process, on a simulated clock. No namespaces, no SSH, no root.

It stands in for the lab behind the same interfaces the suite drives (a session with agents
that send and observe packets on the links, and devices configured from their profiles), so
the YAML cases run through the same step and check code. What the hosts' kernels do in the
built-in lab is done here: forwarding between links (TTL and hop limit lowered by one), the
routes the nodes install, the MN host answering ICMPv6 echo on its addresses. What is not
modelled: link MTUs and IPv4 fragmentation, ICMP errors from the kernels, faults that live in
the socket and TUN adapter (`mn.tun-mtu-1500`, `ha.advertise-prefixes`): those need the lab.

    mn --foreign-- fa --transit-- ha --correspondent-- cn
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import struct
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from conformance.adapters import control
from conformance.codec.packets import (
    PROTO_UDP, checksum, icmpv6_packet, ipv4_packet, parse_ipv4, text6, udp_packet,
)
from conformance.codec.tunnel import forwarded
from conformance.lab import topology
from conformance.lab.agent import matches, summarize
from conformance.lab.device import Device, DeviceCrashed
from conformance.lab.netns import LabError
from conformance.lab.profile import Profile, StateParseError
from conformance.lab.testbed import DEFAULT_PIXIT, HostSpec, Interface, Management, Testbed
from conformance.nodes.actions import DeliverIPv6, Event, SendIPv4, SendUDP
from conformance.nodes.config import ConfigError, load_node_config
from conformance.nodes.fa import ForeignAgent
from conformance.nodes.ha import HomeAgent
from conformance.nodes.mn import MobileNode
from conformance.suite.session import Session
from conformance.yamlfile import YamlError

MIP_PORT = 434
ENGINES = {"ha": HomeAgent, "fa": ForeignAgent, "mn": MobileNode}
FOREIGN = ipaddress.IPv4Network("203.0.113.64/26")
HOME = ipaddress.IPv4Network("203.0.113.0/26")
TRANSIT = ipaddress.IPv4Network("203.0.113.192/30")
CORRESPONDENT = ipaddress.IPv6Network("2001:db8:ff::/64")
LINK_OF = {(host, ifname): link for link, a, a_if, b, b_if in topology.LINKS
           for host, ifname in ((a, a_if), (b, b_if))}
# The built-in lab's timeouts (they are simulated seconds here, so they cost nothing).
PIXIT = {**DEFAULT_PIXIT, "reply_timeout": 2.0, "negative_timeout": 0.5}
LINKTYPE_RAW = 101
# Named faults that live in the socket and TUN adapter and are not modelled here: the lab
# proves those.
NOT_MODELLED = frozenset({"ha.advertise-prefixes"})
MAX_DELIVERIES = 10_000  # per drain: a forwarding loop is a bug, not a hang


def _local_addresses() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for host, spec in topology.HOSTS.items():
        out[host] = {cidr.split("/")[0] for addrs in spec["interfaces"].values()
                     for cidr in addrs}
    return out


LOCAL = _local_addresses()


def memory_testbed() -> Testbed:
    """The built-in lab's testbed as data: the same hosts, interfaces, addresses and links."""
    hosts = {}
    for i, (host, spec) in enumerate(topology.HOSTS.items()):
        interfaces = {name: Interface(name, list(addrs), LINK_OF.get((host, name)))
                      for name, addrs in spec["interfaces"].items()}
        hosts[host] = HostSpec(host, Management(f"127.0.0.{i + 2}"), [host], interfaces,
                               sys.executable, f"memory/{host}")
    links = {link: [(a, a_if), (b, b_if)] for link, a, a_if, b, b_if in topology.LINKS}
    return Testbed("(in memory)", "in-memory", hosts, links, dict(PIXIT))


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
        faults = getattr(config.engine, "faults", ())
        # As the socket adapter opens it (its fault gives the MN's device too large an MTU).
        self.tun_mtu = 1500 if "mn.tun-mtu-1500" in faults else rt.tun_mtu

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
                self.originate(node.host, ipv4_packet(
                    action.src, action.dst, PROTO_UDP,
                    udp_packet(action.src, action.dst, action.sport, action.dport,
                               action.payload)))
            elif isinstance(action, SendIPv4):
                self.originate(node.host, action.packet)
            elif isinstance(action, DeliverIPv6):
                self._queue.append((self._into_tunnel_device, (node, action.packet)))
        self._drain()

    def _plumb(self, node: Node, event: Event) -> None:
        if node.role == "ha" and event.name == "route-add":
            node.routes.add(event.data["prefix"])
        elif node.role == "ha" and event.name == "route-del":
            node.routes.discard(event.data["prefix"])
        elif node.role == "mn" and event.name == "registered":
            for prefix in node.engine.accepted_prefixes():
                if "/" in prefix:
                    net = ipaddress.IPv6Network(prefix)
                    node.addresses6.add((net.network_address + 1).packed)
        elif node.role == "fa" and event.name == "visitor-added":
            node.host_routes.add(event.data["home_address"])

    # ------------------------------------------------------------------ time
    def next_timer(self) -> float | None:
        due = [t for node in self.nodes.values() if (t := node.engine.next_timer()) is not None]
        return min(due) if due else None

    def step_until(self, end: float) -> bool:
        """Fire the earliest timer due by `end` (True), or move the clock to `end` (False)."""
        due = self.next_timer()
        if due is None or due > end:
            self.now = max(self.now, end)
            return False
        self.now = max(self.now, due)
        for node in list(self.nodes.values()):
            t = node.engine.next_timer()
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


# ---------------------------------------------------------------------- the suite's side
class SimulatedClock:
    """The clock the suite reads in memory: sleeping runs the network's timers."""

    def __init__(self, net: MemoryNet):
        self.net = net

    def time(self) -> float:
        return self.net.now

    def monotonic(self) -> float:
        return self.net.now

    def sleep(self, seconds: float) -> None:
        self.net.advance(seconds)


class MemoryAgent:
    """A lab agent on one host of the in-memory network (same calls as lab.agent_client)."""

    def __init__(self, net: MemoryNet, host: str):
        self.net, self.host = net, host
        self._captures: dict[int, tuple[str, int]] = {}

    def _link(self, iface: str) -> Link:
        try:
            return self.net.links[LINK_OF[(self.host, iface)]]
        except KeyError:
            raise LabError(f"host {self.host} has no interface {iface!r} on a link") from None

    def send_udp(self, src, dst, payload: bytes, sport=434, dport=434) -> bytes:
        packet = ipv4_packet(src, dst, PROTO_UDP, udp_packet(src, dst, sport, dport, payload))
        self.net.originate(self.host, packet)
        return packet

    def send_ip(self, packet: bytes) -> None:
        self.net.originate(self.host, packet)

    def send_ip6(self, packet: bytes) -> None:
        self.net.originate(self.host, packet)

    def listen(self, iface: str) -> int:
        return self._link(iface).seq

    def mark(self, iface: str) -> int:
        return self._link(iface).seq

    def wait(self, iface: str, flt: dict, timeout: float, since: int = 0) -> dict:
        link = self._link(iface)
        end = self.net.now + timeout
        prefix = bytes.fromhex(flt.get("payload_prefix", ""))
        while True:
            for seq, ts, packet in link.packets:
                if seq <= since:
                    continue
                summary = summarize(packet)
                if not matches(summary, flt):
                    continue
                ihl = (packet[0] & 15) * 4 if summary["version"] == 4 else 40
                body = packet[ihl + 8:] if summary.get("ip_proto") == 17 else packet[ihl:]
                if prefix and not body.startswith(prefix):
                    continue
                return {"matched": True, "seq": seq, "time": ts, "packet": packet.hex(),
                        "summary": summary}
            if not self.net.step_until(end):
                seen = [dict(summarize(p) or {"length": len(p)}, seq=s)
                        for s, _, p in link.packets if s > since][-20:]
                return {"matched": False, "seen": seen}

    def capture_start(self, iface: str, name: str, bpf: str = "") -> dict:
        link = self._link(iface)
        self._captures[len(self._captures)] = (link.name, link.seq)
        return {"capture": len(self._captures) - 1, "path": name}

    def capture_stop(self, capture: dict, local_path: str) -> str:
        link_name, start = self._captures.pop(capture["capture"])
        packets = [(ts, p) for seq, ts, p in self.net.links[link_name].packets if seq > start]
        write_pcap(local_path, packets)
        return local_path

    def stop(self) -> None:
        pass


def write_pcap(path: str, packets: list[tuple[float, bytes]]) -> None:
    """A pcap file of raw IP packets (LINKTYPE_RAW), readable by tcpdump and Wireshark."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
        for ts, packet in packets:
            sec = int(ts)
            out.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(packet),
                                  len(packet)))
            out.write(packet)


class MemoryDevice(Device):
    """A reference node from its profile, run in memory: the configuration the profile's
    template renders is the one the node loads; state tables answer the profile's commands."""

    def __init__(self, profile: Profile, net: MemoryNet, workdir: Path,
                 params: dict | None = None):
        self.profile = profile
        self.net = net
        self.params = {"python": sys.executable, "workdir": str(workdir), **(params or {})}
        self.crashes: list[dict] = []
        self.node: Node | None = None
        self.pid = None

    def install(self) -> None:
        if not (self.profile.config_template and self.profile.config_path):
            raise LabError(f"profile {self.profile.name}: the in-memory runner runs the "
                           "reference nodes only, configured by a profile's config template")

    def configure(self, **params) -> None:
        self.params.update(params)
        path = Path(self.render(self.profile.config_path))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(self.profile.config_template))

    def start(self, timeout: float = 10.0) -> None:
        path = self.render(self.profile.config_path)
        try:
            config = load_node_config(path, self.profile.role)
        except (ConfigError, YamlError) as exc:
            raise DeviceCrashed(f"{self.profile.name} did not start: {exc}", []) from exc
        engine = ENGINES[config.role](config.engine)
        self.node = Node(self.profile.host, config.role, engine, config)
        self.net.attach(self.node)

    def stop(self) -> None:
        if self.node is not None and self.net.nodes.get(self.node.host) is self.node:
            self.net.detach(self.node.host)
        self.node = None

    def reset(self) -> None:
        self.stop()
        self.start()

    def ensure_running(self) -> dict | None:
        """Restart a node whose engine raised; the crash record when it had to."""
        if self.node is None or self.node.crash is None:
            return None
        crash = {"time": self.net.now, "last_log": self.last_log()}
        self.crashes.append(crash)
        self.stop()
        self.start()
        return crash

    def last_log(self, lines: int = 20) -> list[str]:
        return self.node.log_text().splitlines()[-lines:] if self.node else []

    def state(self, name: str = "bindings") -> list[dict]:
        reader = self.profile.state.get(name)
        if reader is None:
            raise StateParseError(f"profile {self.profile.name} has no state {name!r}")
        if self.node is None:
            raise StateParseError(f"{self.profile.name} is not running")
        command = self.render(reader.command)
        ctl = re.search(r"conformance\.ctl \S+ (.+)$", command)
        route = re.search(r"ip -6 -j route show dev (\S+)", command)
        if ctl:
            try:
                reply, actions = control.answer(self.node.engine, self.node.role,
                                                ctl.group(1), self.net.now)
            except Exception as exc:  # noqa: BLE001 - as `dsmip4 ctl` failing on a lab
                raise StateParseError(f"`{command}` failed: {type(exc).__name__}: {exc}") \
                    from exc
            self.net.apply(self.node, actions)
            stdout = json.dumps(reply, default=str)
        elif route:
            stdout = json.dumps([{"dst": p, "dev": route.group(1), "metric": 1024,
                                  "flags": [], "pref": "medium"}
                                 for p in sorted(self.node.routes)])
        else:
            raise StateParseError(f"`{command}`: not a command the in-memory runner answers")
        return reader.parse(stdout)

    def log_mark(self) -> int:
        return len(self.node.log_text()) if self.node else 0

    def log_since(self, mark: int) -> str:
        return self.node.log_text()[mark:] if self.node else ""


class MemorySession(Session):
    """A run's session on the in-memory network (same calls as suite.session.Session)."""

    def start(self) -> None:
        self.net = MemoryNet(self.start_time)
        self.clock = SimulatedClock(self.net)
        self.workdir = Path(tempfile.mkdtemp(prefix="dsmip4-memory-"))
        self.workdir.chmod(0o700)
        self.watch_links()

    start_time: float | None = None

    def agent(self, host: str) -> MemoryAgent:
        if host not in self.agents:
            self.agents[host] = MemoryAgent(self.net, host)
        return self.agents[host]

    def device(self, role: str, params: dict | None = None) -> MemoryDevice:
        profile = self.profile_for(role)
        return MemoryDevice(profile, self.net, self.workdir / profile.host, params)

    def close(self) -> None:
        self.devices.clear()
        self.net.nodes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

