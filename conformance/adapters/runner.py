"""Run one engine (HA, FA or MN) on real sockets, with a control socket and JSON-line logs.

The loop owns the clock and the sockets; the engine owns the protocol. Actions map to I/O:
SendUDP -> a raw IPv4+UDP packet (so the source address is exactly the engine's), SendIPv4 ->
raw socket, DeliverIPv6 -> the TUN device, Event -> a log line and, for routes and prefixes,
`ip` commands.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import secrets
import selectors
import signal
import socket
import sys
import time

from conformance.codec.packets import (
    PROTO_UDP, fragment_ipv4, ipv4_packet, parse_ipv4, udp_packet,
)
from conformance.nodes.actions import DeliverIPv6, Event, SendIPv4, SendUDP
from conformance.nodes.config import NodeConfig
from conformance.nodes.faults import answers_router_solicitations, engine_for, tun_device_mtu
from conformance.adapters import control, linux

MIP_PORT = 434


class _Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler to end the loop."""


class Logger:
    """JSON lines, one per event. An event repeated more than BURST times within WINDOW
    seconds (a flood of malformed messages) is counted instead of written; the count goes
    out as one `log-suppressed` record when the window ends or the node stops."""

    BURST = 20
    WINDOW = 10.0

    def __init__(self, role: str, path: str | None, clock=time.time):
        self.role = role
        self.clock = clock
        self.stream = open(path, "a", buffering=1) if path else sys.stderr
        self._windows: dict[str, list] = {}  # event -> [window start, written, suppressed]

    def write(self, event: str, level: str = "info", **data) -> None:
        now = self.clock()
        window = self._windows.get(event)
        if window is None or now - window[0] >= self.WINDOW:
            if window is not None:
                self._suppressed(event, window)
            if len(self._windows) > 1000:  # names come from code, but stay bounded anyway
                self.flush_suppressed()
                self._windows.clear()
            window = self._windows[event] = [now, 0, 0]
        if window[1] >= self.BURST:
            window[2] += 1
            return
        window[1] += 1
        self._emit(now, event, level, data)

    def flush_suppressed(self) -> None:
        for event, window in self._windows.items():
            self._suppressed(event, window)

    def _suppressed(self, event: str, window: list) -> None:
        if window[2]:
            self._emit(self.clock(), "log-suppressed", "warning",
                       {"of": event, "count": window[2], "since": round(window[0], 6)})
            window[2] = 0

    def _emit(self, now: float, event: str, level: str, data: dict) -> None:
        record = {"ts": round(now, 6), "node": self.role, "event": event, "level": level,
                  **data}
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()


class NodeRunner:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.role = config.role
        self.log = Logger(self.role, config.runtime.log)
        engine_cfg = config.engine
        self.engine = engine_for(self.role, engine_cfg)
        self.selector = selectors.DefaultSelector()
        self.tun_fd = None
        self.tun_name = None
        self.raw_out = linux.raw_sender()
        self.udp = linux.udp_socket(MIP_PORT)
        self.selector.register(self.udp, selectors.EVENT_READ, self._on_udp)
        self.raw_in = []
        for proto in (4, 41, 47):
            sock = linux.raw_receiver(proto)
            self.selector.register(sock, selectors.EVENT_READ, self._on_raw)
            self.raw_in.append(sock)
        if getattr(engine_cfg, "dynamic_tunnel_mtu", False) and self.role == "ha":
            # ICMPv4 Fragmentation Needed about tunnel packets lowers the path MTU (RFC 4213).
            icmp = linux.raw_receiver(1)
            self.selector.register(icmp, selectors.EVENT_READ, self._on_icmp)
            self.raw_in.append(icmp)
        rt = config.runtime
        if rt.tun and self.role in ("ha", "mn"):
            mtu = tun_device_mtu(engine_cfg, rt.tun_mtu)
            self.tun_fd, self.tun_name = linux.open_tun(rt.tun, mtu)
            self.selector.register(self.tun_fd, selectors.EVENT_READ, self._on_tun)
        self.foreign_ifindex = linux.ifindex_of(rt.foreign_interface) if self.role == "fa" \
            else None
        if self.role == "ha" and rt.multicast_interface:
            # The kernel has no multicast routing here: the HA reads the home link's IPv6
            # multicast itself and tunnels it to the MNs that joined the group (§3.3.2).
            self.mcast = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                       socket.htons(0x86DD))
            self.mcast.bind((rt.multicast_interface, 0))
            self.mcast.setblocking(False)
            self.selector.register(self.mcast, selectors.EVENT_READ, self._on_multicast)
        self._host_routes: set[str] = set()
        self._ident = secrets.randbits(16)  # identification of the packets it fragments
        self.control = None
        if rt.control_socket:
            try:
                os.unlink(rt.control_socket)
            except FileNotFoundError:
                pass
            self.control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.control.bind(rt.control_socket)
            self.control.listen(8)
            self.control.setblocking(False)
            self.selector.register(self.control, selectors.EVENT_READ, self._on_control)
        self.running = True

    # ------------------------------------------------------------------ actions
    def apply(self, actions) -> None:
        # Events first: routes and addresses must be in place before the reply that tells a
        # peer it may now send (a reply racing its own route is a lost first packet).
        ordered = [a for a in actions if isinstance(a, Event)] + \
            [a for a in actions if not isinstance(a, Event)]
        for action in ordered:
            try:
                self._apply_one(action)
            except OSError as exc:
                self.log.write("send-failed", "error", error=str(exc), action=type(action).__name__)
                if isinstance(action, SendUDP) and self.role == "ha":
                    self.apply(self.engine.reply_not_sent(action.payload, time.time()))
            except linux.PlumbingError as exc:
                self.log.write("plumbing-failed", "error", error=str(exc))

    def _apply_one(self, action) -> None:
        if isinstance(action, SendUDP):
            packet = ipv4_packet(action.src, action.dst, PROTO_UDP,
                                 udp_packet(action.src, action.dst, action.sport, action.dport,
                                            action.payload))
            self._send_ipv4(packet, action.dst)
        elif isinstance(action, SendIPv4):
            self._send_ipv4(action.packet, parse_ipv4(action.packet).dst)
        elif isinstance(action, DeliverIPv6):
            if self.tun_fd is not None:
                os.write(self.tun_fd, action.packet)
        elif isinstance(action, Event):
            self.log.write(action.name, action.level, **action.data)
            self._plumb(action)

    def _send_ipv4(self, packet: bytes, dst: str) -> None:
        """A raw socket that writes its own header never fragments: a packet longer than the
        route's MTU (a reply with many prefix replies) goes out in fragments (RFC 791), unless
        it says Don't Fragment (the engines size those to their path MTU)."""
        try:
            self.raw_out.sendto(packet, (dst, 0))
        except OSError as exc:
            if exc.errno != errno.EMSGSIZE or packet[6] & 0x40:
                raise
            self._ident = (self._ident + 1) & 0xFFFF or 1
            for fragment in fragment_ipv4(packet, linux.route_mtu(dst), self._ident):
                self.raw_out.sendto(fragment, (dst, 0))

    def _plumb(self, event: Event) -> None:
        rt = self.config.runtime
        if not rt.install_routes:
            return
        if self.role == "ha" and self.tun_name and event.name in ("route-add", "route-del"):
            verb = "replace" if event.name == "route-add" else "del"
            linux.ip("-6", "route", verb, event.data["prefix"], "dev", self.tun_name,
                     check=verb == "replace")
        elif self.role == "mn" and self.tun_name and event.name == "registered":
            self._mn_addresses()
        elif self.role == "fa" and event.name == "visitor-added" and rt.foreign_interface:
            self._host_route(event.data["home_address"])

    def _host_route(self, address: str) -> None:
        if address not in self._host_routes:
            linux.ip("route", "replace", f"{address}/32", "dev", self.config.runtime.foreign_interface)
            self._host_routes.add(address)

    def _mn_addresses(self) -> None:
        """An address in each accepted prefix on the TUN device, and IPv6 routed into it."""
        for prefix, tunnel in self.engine.accepted_prefixes().items():
            if "/" not in prefix:
                continue
            net = ipaddress.IPv6Network(prefix)
            address = net.network_address + 1
            linux.ip("-6", "addr", "replace", f"{address}/{max(net.prefixlen, 64)}", "dev",
                     self.tun_name, "nodad")
        linux.ip("-6", "route", "replace", "default", "dev", self.tun_name)

    # ------------------------------------------------------------------ inputs
    def _on_udp(self, sock) -> None:
        data, (src, sport), ifindex = linux.recv_with_ifindex(sock)
        if self.foreign_ifindex is not None and ifindex == self.foreign_ifindex:
            self._host_route(src)  # replies to a visitor go back on the visited link
        self.apply(self.engine.receive_udp(data, src, sport, time.time()))

    def _on_raw(self, sock) -> None:
        packet = sock.recv(65535)
        now = time.time()
        if self.role == "fa":
            dst = packet[16:20]
            if socket.inet_ntoa(dst) != self.engine.address:
                return  # a visitor's packet the kernel forwards anyway
        self.apply(self.engine.receive_ipv4(packet, now))

    def _on_icmp(self, sock) -> None:
        self.apply(self.engine.receive_icmpv4(sock.recv(65535), time.time()))

    def _on_multicast(self, sock) -> None:
        packet, addr = sock.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING or len(packet) < 40 or packet[24] != 0xFF:
            return
        if packet[6] == 58 and len(packet) > 40 and packet[40] == 133 and \
                answers_router_solicitations(self.config.engine):
            self._advertise(sock)  # the fault: answer a Router Solicitation with our prefixes
            return
        if packet[25] & 0x0F <= 2:
            return  # only routable-scope multicast that arrived on the link
        self.apply(self.engine.receive_ipv6(packet, time.time()))

    def _advertise(self, sock) -> None:
        """A Router Advertisement making every registered prefix on-link (RFC 5454 §3.3 forbids
        it; only the ha.advertise-prefixes fault sends one)."""
        import struct

        from conformance.codec.packets import addr6, icmpv6_packet

        options = b""
        for binding in self.engine.bindings.values():
            for (length, value) in binding.prefixes:
                prefix = (value << (128 - length) if length else 0).to_bytes(16, "big")
                options += struct.pack("!BBBBIII", 3, 4, length, 0xC0, 86400, 14400, 0) + prefix
        body = struct.pack("!BBHII", 64, 0, 1800, 0, 0) + options
        packet = icmpv6_packet(addr6("fe80::1"), addr6("ff02::1"), 134, 0, body, hop_limit=255)
        sock.sendto(packet, (self.config.runtime.multicast_interface, 0x86DD, 0, 0,
                             b"\x33\x33\x00\x00\x00\x01"))
        self.log.write("router-advertisement-sent", "warning", prefixes=len(options) // 32)

    def _on_tun(self, fd) -> None:
        try:
            packet = os.read(fd, 65535)
        except BlockingIOError:
            return
        if packet[:1] and packet[0] >> 4 != 6:
            return
        now = time.time()
        if self.role == "ha":
            self.apply(self.engine.receive_ipv6(packet, now))
        else:
            self.apply(self.engine.send_ipv6(packet, now))

    def _on_control(self, server) -> None:
        conn, _ = server.accept()
        conn.settimeout(2.0)
        try:
            request = b""
            while not request.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            reply = self.command(request.decode().strip())
            conn.sendall((json.dumps(reply, default=str) + "\n").encode())
        except (OSError, ValueError) as exc:
            self.log.write("control-error", "warning", error=str(exc))
        finally:
            conn.close()

    def command(self, line: str) -> dict:
        if line.strip() == "stop":
            self.running = False
            return {"ok": True}
        reply, actions = control.answer(self.engine, self.role, line, time.time())
        self.apply(actions)
        return reply

    # ------------------------------------------------------------------ loop
    def start(self) -> None:
        self.log.write("started", address=getattr(self.engine, "address", None) or
                       self.config.engine.home_address, tun=self.tun_name,
                       control_socket=self.config.runtime.control_socket)
        if self.role == "mn":
            self.apply(control.attach_at_start(self.engine, self.config.attach, time.time()))

    def run(self) -> int:
        def stop(*_):
            self.running = False
            raise _Stop()  # leave a blocking select at once, not at its next timeout
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            self.start()
            self._loop()
        except _Stop:
            pass
        self.log.flush_suppressed()
        self.log.write("stopped")
        if self.config.runtime.control_socket:
            try:
                os.unlink(self.config.runtime.control_socket)
            except FileNotFoundError:
                pass
        return 0

    def _loop(self) -> None:
        while self.running:
            deadline = self.engine.next_timer()
            timeout = None if deadline is None else max(0.0, deadline - time.time())
            for key, _ in self.selector.select(min(timeout, 1.0) if timeout is not None else 1.0):
                try:
                    key.data(key.fileobj)
                except BlockingIOError:
                    pass
            deadline = self.engine.next_timer()
            if deadline is not None and deadline <= time.time():
                self.apply(self.engine.handle_timer(time.time()))


def control_request(path: str, command: str, timeout: float = 5.0) -> dict:
    """Send one command to a node's control socket and return its JSON answer."""
    from conformance.ctl import request

    return request(path, command, timeout)
