"""Linux plumbing: TUN devices, raw sockets and `ip` commands. Nothing protocol-specific."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import subprocess

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
IP_PKTINFO = 8


class PlumbingError(RuntimeError):
    """The host could not do what the node needs (no TUN, no privileges, a failed `ip`)."""


def open_tun(name: str, mtu: int) -> tuple[int, str]:
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    except OSError as exc:
        raise PlumbingError(f"cannot open /dev/net/tun: {exc.strerror}") from exc
    try:
        result = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise PlumbingError(f"cannot create TUN device {name!r}: {exc.strerror}") from exc
    actual = result[:16].rstrip(b"\0").decode()
    # No kernel-made link-local address: the node decides what speaks on the tunnel link.
    ip("link", "set", "dev", actual, "addrgenmode", "none", check=False)
    ip("link", "set", "dev", actual, "up", "mtu", str(mtu))
    return fd, actual


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and run.returncode != 0:
        raise PlumbingError(f"ip {' '.join(args)}: {run.stderr.strip()}")
    return run


def udp_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    try:
        sock.bind(("0.0.0.0", port))
    except OSError as exc:
        raise PlumbingError(f"cannot bind UDP port {port}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def recv_with_ifindex(sock: socket.socket) -> tuple[bytes, tuple[str, int], int | None]:
    data, ancdata, _, addr = sock.recvmsg(65535, socket.CMSG_SPACE(12))
    ifindex = None
    for level, kind, cdata in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(cdata) >= 4:
            ifindex = struct.unpack_from("i", cdata)[0]
    return data, addr, ifindex


def raw_receiver(proto: int) -> socket.socket:
    """A raw IPv4 socket for one protocol: it also stops the kernel answering that protocol
    with ICMP protocol-unreachable (the kernel here has no ipip/sit/gre modules)."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    except OSError as exc:
        raise PlumbingError(f"cannot open a raw socket for protocol {proto}: {exc.strerror}") \
            from exc
    sock.setblocking(False)
    return sock


def raw_sender() -> socket.socket:
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except OSError as exc:
        raise PlumbingError(f"cannot open a raw sending socket: {exc.strerror}") from exc
    # The engines keep their own tunnel path MTU (RFC 4213 §3.2); the kernel must not drop
    # their DF packets on a path MTU it learnt from the same ICMP (IP_PMTUDISC_PROBE).
    sock.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_MTU_DISCOVER", 10), 3)
    return sock


IP_MTU = 14


def route_mtu(dst: str) -> int:
    """The MTU of the route to `dst` (a connected UDP socket asks the kernel; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((dst, 9))
        return sock.getsockopt(socket.IPPROTO_IP, IP_MTU)


def ifindex_of(name: str | None) -> int | None:
    if not name:
        return None
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        raise PlumbingError(f"no interface {name!r}") from exc
