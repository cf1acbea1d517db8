"""The in-memory lab: the reference engines wired as the built-in lab's topology, in one
process, on a simulated clock (memory_net). No namespaces, no SSH, no root.

It stands in for the lab behind the same interfaces the suite drives (a session with agents
that send and observe packets on the links, and devices configured from their profiles), so
the YAML cases run through the same step and check code. Not modelled: link MTUs and IPv4
fragmentation, ICMP errors from the kernels, and the faults that live in the socket and TUN
adapter (NOT_MODELLED): those need the lab.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path

from conformance.adapters import control
from conformance.adapters.device_scope import device
from conformance.adapters.memory_net import LINK_MTU, LINK_OF, Link, MemoryNet, Node
from conformance.lab import topology
from conformance.lab.agent import Reassembly, matches, summarize
from conformance.lab.device import Device, DeviceCrashed
from conformance.lab.netns import LabError
from conformance.lab.profile import Profile, StateParseError
from conformance.lab.testbed import DEFAULT_PIXIT, HostSpec, Interface, Management, Testbed
from conformance.codec.packets import PROTO_UDP, fragment_ipv4, ipv4_packet, udp_packet
from conformance.nodes.config import ConfigError, load_node_config
from conformance.nodes.faults import engine_for
from conformance.suite.session import Session
from conformance.yamlfile import YamlError

# Named faults that live in the socket and TUN adapter and are not modelled here: the lab
# proves those.
NOT_MODELLED = frozenset({"ha.advertise-prefixes"})
LINKTYPE_RAW = 101
# The built-in lab's timeouts (they are simulated seconds here, so they cost nothing).
PIXIT = {**DEFAULT_PIXIT, "reply_timeout": 2.0, "negative_timeout": 0.5}


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
        self.send_ip(packet)
        return packet

    def send_ip(self, packet: bytes) -> None:
        """As the agent sends: in fragments when too long for the link and DF is clear."""
        if len(packet) > LINK_MTU and not packet[6] & 0x40:
            self._ident = getattr(self, "_ident", 0x4D34) + 1
            for piece in fragment_ipv4(packet, LINK_MTU, self._ident):
                self.net.originate(self.host, piece)
            return
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
            reassembly = Reassembly()  # as the agent's listener: whole packets match too
            for seq, ts, packet in link.packets:
                if seq <= since:
                    continue
                whole = reassembly.add(packet) if packet[0] >> 4 == 4 else None
                if whole is not None and matches(summarize(whole), flt):
                    packet = whole
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
        # Reading its configuration is the device's own code too (`dsmip4 ha --config`).
        with device():
            try:
                config = load_node_config(path, self.profile.role)
            except (ConfigError, YamlError) as exc:
                raise DeviceCrashed(f"{self.profile.name} did not start: {exc}", []) from exc
            engine = engine_for(config.role, config.engine)
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
        reader = self.reader(name)
        if self.node is None:
            raise StateParseError(f"{self.profile.name} is not running")
        try:
            stdout = self._answer(self.render(reader.command))
        except LabError as exc:
            raise StateParseError(str(exc)) from exc
        return reader.parse(stdout)

    def command(self, text: str) -> str:
        return self._answer(text)

    def _answer(self, command: str) -> str:
        """What one of the profile's commands prints, answered from the node's engine: the
        control commands (`conformance.ctl SOCKET ...`) and the node's IPv6 routes."""
        if self.node is None:
            raise LabError(f"{self.profile.name} is not running")
        ctl = re.search(r"conformance\.ctl \S+ (.+)$", command)
        route = re.search(r"ip -6 -j route show dev (\S+)", command)
        if ctl:
            try:
                with device():
                    reply, actions = control.answer(self.node.engine, self.node.role,
                                                    ctl.group(1), self.net.now)
            except Exception as exc:  # noqa: BLE001 - as `dsmip4 ctl` failing on a lab
                raise LabError(f"`{command}` failed: {type(exc).__name__}: {exc}") from exc
            self.net.apply(self.node, actions)
            if "error" in reply:
                raise LabError(f"`{command}`: {reply['error']}")
            return json.dumps(reply, default=str)
        if route:
            return json.dumps([{"dst": p, "dev": route.group(1), "metric": 1024,
                                "flags": [], "pref": "medium"} for p in sorted(self.node.routes)])
        raise LabError(f"`{command}`: not a command the in-memory runner answers")

    def log_mark(self) -> int:
        return len(self.node.log_text()) if self.node else 0

    def log_since(self, mark: int) -> str:
        return self.node.log_text()[mark:] if self.node else ""


class MemorySession(Session):
    """A run's session on the in-memory network (same calls as suite.session.Session)."""

    start_time: float | None = None  # the simulated clock's epoch; None: now

    def start(self) -> None:
        self.net = MemoryNet(self.start_time)
        self.clock = SimulatedClock(self.net)
        self.workdir = Path(tempfile.mkdtemp(prefix="dsmip4-memory-"))
        self.workdir.chmod(0o700)
        self.watch_links()

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

