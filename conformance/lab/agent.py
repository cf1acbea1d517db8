#!/usr/bin/env python3
"""dsmip4 lab agent: pushed to each lab host and driven over an SSH channel.

Standard library only (it runs with whatever python3 the host has). One JSON request per line
on stdin, one JSON answer per line on stdout. It sends and observes packets on the host itself:
crafted frames and IP packets, UDP and raw sockets, packet listeners with filters and
deadlines, and tcpdump captures whose files the controller fetches.
"""

import errno
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

VERSION = 1
ETH_P_ALL = 0x0003
SO_MARK = 36
# Packets the agent crafts carry this mark, so the quiet rules below never drop them.
AGENT_MARK = 0x4D34
QUIET_TABLE = "dsmip4_quiet"
# The suite handles its roles' traffic in user space, so its hosts' kernels must not answer
# it with ICMP errors (a correct FA may reject with code 80/81 on an ICMP error from the HA).
QUIET_RULES = """table inet %(table)s {
    chain output {
        type filter hook output priority 0; policy accept;
        meta mark != %(mark)d icmp type { destination-unreachable, source-quench, time-exceeded, parameter-problem } counter drop
        meta mark != %(mark)d icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } counter drop
    }
}
"""


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_udp(src, dst, sport, dport, payload, ttl=64):
    udp_len = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, udp_len)
    csum = _checksum(pseudo + struct.pack("!HHHH", sport, dport, udp_len, 0) + payload) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, udp_len, csum) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, ttl, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


def route_mtu(dst):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((dst, 9))
        return sock.getsockopt(socket.IPPROTO_IP, 14)  # IP_MTU


def fragments(packet, mtu):
    """RFC 791 §3.2 fragments of a packet with no options (the agent's own packets). The
    agent runs alone on lab hosts with the standard library only, so it cannot call the
    codec's fragment_ipv4, which the reference nodes use."""
    ihl = (packet[0] & 15) * 4
    header = bytearray(packet[:ihl])
    if not struct.unpack_from("!H", header, 4)[0]:
        struct.pack_into("!H", header, 4, int.from_bytes(os.urandom(2), "big") or 1)
    data = packet[ihl:struct.unpack_from("!H", packet, 2)[0]]
    chunk = (mtu - ihl) // 8 * 8
    out = []
    for start in range(0, len(data), chunk):
        part = data[start:start + chunk]
        struct.pack_into("!H", header, 2, ihl + len(part))
        struct.pack_into("!H", header, 6, (0 if start + chunk >= len(data) else 0x2000)
                         | start // 8)
        struct.pack_into("!H", header, 10, 0)
        struct.pack_into("!H", header, 10, _checksum(bytes(header)))
        out.append(bytes(header) + part)
    return out


def summarize(packet):
    """Fields of an IPv4 packet for filters and reports (None when it is not IPv4)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        if len(packet) >= 40 and packet[0] >> 4 == 6:
            return {"version": 6, "src": socket.inet_ntop(socket.AF_INET6, packet[8:24]),
                    "dst": socket.inet_ntop(socket.AF_INET6, packet[24:40]),
                    "ip_proto": packet[6], "length": len(packet)}
        return None
    ihl = (packet[0] & 15) * 4
    out = {"version": 4, "src": socket.inet_ntoa(packet[12:16]),
           "dst": socket.inet_ntoa(packet[16:20]), "ip_proto": packet[9], "length": len(packet),
           "tos": packet[1], "ttl": packet[8]}
    if struct.unpack_from("!H", packet, 6)[0] & 0x3FFF:
        out["fragment"] = True  # a piece: the listener adds the whole packet when complete
        return out
    if packet[9] == 17 and len(packet) >= ihl + 8:
        out["sport"], out["dport"] = struct.unpack_from("!HH", packet, ihl)
    return out


def matches(summary, flt):
    if summary is None or summary.get("fragment") and not flt.get("fragment"):
        return False
    for key, want in flt.items():
        if key == "payload_prefix":
            continue
        if summary.get(key) != want:
            return False
    return True


def _marked(sock):
    sock.setsockopt(socket.SOL_SOCKET, SO_MARK, AGENT_MARK)
    return sock


def _nft(args, stdin=None):
    try:
        proc = subprocess.run(["nft"] + args, input=stdin, capture_output=True, text=True,
                              timeout=10)
    except FileNotFoundError:
        raise RuntimeError("nft is not installed on this host (Debian package nftables): the "
                           "suite needs it to keep the host's kernel from answering the "
                           "device with ICMP errors")
    if proc.returncode != 0:
        raise RuntimeError("nft %s: %s" % (" ".join(args), proc.stderr.strip()))
    return proc.stdout


class Reassembly:
    """IPv4 fragments put back together (RFC 791 §3.2), so that a filter sees whole packets;
    the pieces stay in the listener's list too. Incomplete ones are dropped after 30 s."""

    def __init__(self):
        # (src, dst, proto, ident) -> (first seen, {offset: (more fragments, data, header)})
        self.pending = {}

    def add(self, packet):
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return None
        flags = struct.unpack_from("!H", packet, 6)[0]
        if not flags & 0x3FFF:
            return None
        now = time.monotonic()
        for key in [k for k, (t, _) in self.pending.items() if now - t > 30]:
            del self.pending[key]
        ihl = (packet[0] & 15) * 4
        total = struct.unpack_from("!H", packet, 2)[0]
        key = (packet[12:16], packet[16:20], packet[9], packet[4:6])
        _, pieces = self.pending.setdefault(key, (now, {}))
        pieces[(flags & 0x1FFF) * 8] = (bool(flags & 0x2000), packet[ihl:total], packet[:ihl])
        data, at = b"", 0
        while at in pieces:
            more, part, header = pieces[at]
            data, at = data + part, at + len(part)
            if not more:
                del self.pending[key]
                head = bytearray(pieces[0][2])
                struct.pack_into("!HHH", head, 2, len(head) + len(data),
                                 struct.unpack_from("!H", head, 4)[0], 0)
                struct.pack_into("!H", head, 10, 0)
                struct.pack_into("!H", head, 10, _checksum(bytes(head)))
                return bytes(head) + data
            if not part:
                break
        return None


class Listener:
    """All IP packets seen on one interface, kept with a sequence number."""

    def __init__(self, iface):
        self.iface = iface
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((iface, 0))
        self.packets = []  # (seq, time, direction, ip bytes)
        self.lock = threading.Condition()
        self.seq = 0
        self.reassembly = Reassembly()
        self.running = True
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while self.running:
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if not ready:
                continue
            frame, addr = self.sock.recvfrom(65535)
            ethertype = struct.unpack_from("!H", frame, 12)[0] if len(frame) >= 14 else 0
            if ethertype not in (0x0800, 0x86DD):
                continue
            packet = frame[14:]
            whole = self.reassembly.add(packet) if ethertype == 0x0800 else None
            with self.lock:
                for pkt in (packet, whole):
                    if pkt is not None:
                        self.seq += 1
                        self.packets.append((self.seq, time.time(), addr[2], pkt))
                del self.packets[:-5000]
                self.lock.notify_all()

    def mark(self):
        with self.lock:
            return self.seq

    def wait(self, flt, timeout, since):
        prefix = bytes.fromhex(flt.get("payload_prefix", ""))
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for seq, ts, direction, pkt in self.packets:
                    if seq <= since:
                        continue
                    summary = summarize(pkt)
                    if matches(summary, flt):
                        ihl = (pkt[0] & 15) * 4 if summary and summary["version"] == 4 else 40
                        body = pkt[ihl + 8:] if summary.get("ip_proto") == 17 else pkt[ihl:]
                        if prefix and not body.startswith(prefix):
                            continue
                        return {"matched": True, "seq": seq, "time": ts,
                                "packet": pkt.hex(), "summary": summary}
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [dict(summarize(p) or {"length": len(p)}, seq=s)
                            for s, _, _, p in self.packets if s > since][-20:]
                    return {"matched": False, "seen": seen}
                self.lock.wait(min(left, 0.2))

    def close(self):
        self.running = False
        self.sock.close()


class Agent:
    def __init__(self):
        self.listeners = {}
        self.sockets = {}
        self.captures = {}
        self.raw = None
        self.quiet = False

    def op_ping(self, req):
        return {"version": VERSION, "pid": os.getpid(), "host": socket.gethostname()}

    def _raw(self):
        if self.raw is None:
            self.raw = _marked(socket.socket(socket.AF_INET, socket.SOCK_RAW,
                                             socket.IPPROTO_RAW))
        return self.raw

    def op_quiet(self, req):
        """Stop this host's kernel sending ICMP errors (nftables, in its own table)."""
        if req.get("on", True):
            # One transaction: create (so that delete works), delete, then the rules afresh.
            _nft(["-f", "-"], "table inet %s\ndelete table inet %s\n" % (
                QUIET_TABLE, QUIET_TABLE) + QUIET_RULES % {"table": QUIET_TABLE,
                                                           "mark": AGENT_MARK})
            self.quiet = True
        elif self.quiet:
            _nft(["delete", "table", "inet", QUIET_TABLE])
            self.quiet = False
        return {"quiet": self.quiet}

    def op_quiet_dropped(self, req):
        """How many ICMP errors the quiet rules have dropped (0 when not quiet)."""
        if not self.quiet:
            return {"dropped": 0}
        out = _nft(["-j", "list", "table", "inet", QUIET_TABLE])
        dropped = 0
        for item in json.loads(out).get("nftables", []):
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    dropped += expr["counter"].get("packets", 0)
        return {"dropped": dropped}

    def _send4(self, packet, dst):
        """A raw socket writing its own header never fragments: a packet longer than the
        route's MTU goes out in fragments (RFC 791) unless it says Don't Fragment."""
        try:
            self._raw().sendto(packet, (dst, 0))
        except OSError as exc:
            if exc.errno != errno.EMSGSIZE or packet[6] & 0x40:
                raise
            for fragment in fragments(packet, route_mtu(dst)):
                self._raw().sendto(fragment, (dst, 0))

    def op_send_udp(self, req):
        packet = ipv4_udp(req["src"], req["dst"], req["sport"], req["dport"],
                          bytes.fromhex(req["payload"]))
        self._send4(packet, req["dst"])
        return {"sent": len(packet), "packet": packet.hex()}

    def op_send_ip(self, req):
        packet = bytes.fromhex(req["packet"])
        self._send4(packet, socket.inet_ntoa(packet[16:20]))
        return {"sent": len(packet)}

    def op_send_ip6(self, req):
        packet = bytes.fromhex(req["packet"])
        with _marked(socket.socket(socket.AF_INET6, socket.SOCK_RAW,
                                   socket.IPPROTO_RAW)) as sock:
            sock.sendto(packet, (socket.inet_ntop(socket.AF_INET6, packet[24:40]), 0))
        return {"sent": len(packet)}

    def op_send_frame(self, req):
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
            sock.bind((req["iface"], 0))
            sent = sock.send(bytes.fromhex(req["frame"]))
        return {"sent": sent}

    def op_listen(self, req):
        iface = req["iface"]
        if iface not in self.listeners:
            self.listeners[iface] = Listener(iface)
        return {"iface": iface, "mark": self.listeners[iface].mark()}

    def op_mark(self, req):
        return {"mark": self.listeners[req["iface"]].mark()}

    def op_wait(self, req):
        listener = self.listeners[req["iface"]]
        return listener.wait(req.get("filter", {}), float(req.get("wait_timeout", 1.0)),
                             int(req.get("since", 0)))

    def op_udp_open(self, req):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((req.get("address", "0.0.0.0"), int(req["port"])))
        self.sockets[sock.fileno()] = sock
        return {"socket": sock.fileno()}

    def op_udp_recv(self, req):
        sock = self.sockets[int(req["socket"])]
        ready, _, _ = select.select([sock], [], [], float(req.get("timeout", 1.0)))
        if not ready:
            return {"received": False}
        data, addr = sock.recvfrom(65535)
        return {"received": True, "data": data.hex(), "src": addr[0], "sport": addr[1]}

    def op_udp_close(self, req):
        self.sockets.pop(int(req["socket"])).close()
        return {}

    def op_capture_start(self, req):
        path = req["path"]
        proc = subprocess.Popen(["tcpdump", "--immediate-mode", "-U", "-Z", "root", "-n",
                                 "-i", req["iface"], "-w", path] + req.get("filter", "").split(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Ready once tcpdump says it is listening (the pcap header comes earlier than that).
        deadline = time.monotonic() + 5
        said = b""
        while b"listening on" not in said:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                return {"error": "tcpdump did not start listening: " + said.decode()[-300:]}
            ready, _, _ = select.select([proc.stderr], [], [], left)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 4096)
                if not chunk:
                    return {"error": "tcpdump exited: " + said.decode()[-300:]}
                said += chunk
        self.captures[proc.pid] = (proc, path)
        return {"capture": proc.pid, "path": path}

    def op_capture_stop(self, req):
        proc, path = self.captures.pop(int(req["capture"]))
        proc.send_signal(signal.SIGINT)  # tcpdump -U has written every packet it has seen
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return {"path": path, "bytes": os.path.getsize(path)}

    def op_exit(self, req):
        for listener in self.listeners.values():
            listener.close()
        for proc, _ in self.captures.values():
            proc.kill()
        if self.quiet:  # leave the host as it was found
            try:
                self.op_quiet({"on": False})
            except Exception:
                pass
        return {"bye": True}


def main():
    agent = Agent()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            op = getattr(agent, "op_" + req.get("op", ""), None)
            if op is None:
                answer = {"error": "unknown op %r" % req.get("op")}
            else:
                answer = op(req)
        except Exception as exc:  # the agent reports every failure and keeps serving
            answer = {"error": "%s: %s" % (type(exc).__name__, exc)}
        answer["id"] = req.get("id") if isinstance(req, dict) else None
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if answer.get("bye"):
            return
    agent.op_exit({})  # the controller went away without saying goodbye


if __name__ == "__main__":
    main()
