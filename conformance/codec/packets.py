"""IPv4, IPv6, GRE, UDP and ICMPv6 headers: what the userspace tunnels build and read.

Small and strict, like the rest of the codec: parsing raises DecodeError with the offset,
the field and the RFC section; building never validates beyond what the wire can carry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from socket import AF_INET6, inet_aton, inet_ntoa, inet_ntop, inet_pton

from .errors import DecodeError

PROTO_IPIP = 4
PROTO_UDP = 17
PROTO_IPV6 = 41
PROTO_GRE = 47
PROTO_ICMPV6 = 58
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# ---------------------------------------------------------------------------- IPv4

@dataclass(slots=True)
class IPv4:
    src: str
    dst: str
    proto: int
    payload: bytes
    tos: int = 0
    ttl: int = 64
    ident: int = 0
    df: bool = False

    @property
    def ecn(self) -> int:
        return self.tos & 0x3

    def to_bytes(self) -> bytes:
        return ipv4_packet(self.src, self.dst, self.proto, self.payload, tos=self.tos,
                           ttl=self.ttl, ident=self.ident, df=self.df)


def ipv4_packet(src: str, dst: str, proto: int, payload: bytes, *, tos: int = 0, ttl: int = 64,
                ident: int = 0, df: bool = False) -> bytes:
    header = bytearray(_IPV4.pack(0x45, tos, 20 + len(payload), ident, 0x4000 if df else 0,
                                  ttl, proto, 0, inet_aton(src), inet_aton(dst)))
    struct.pack_into("!H", header, 10, checksum(bytes(header)))
    return bytes(header) + payload


def parse_ipv4(packet: bytes) -> IPv4:
    if len(packet) < 20:
        raise DecodeError(len(packet), "ipv4.header", "shorter than 20 bytes", "RFC 791 §3.1")
    vihl, tos, total, ident, frag, ttl, proto, _, src, dst = _IPV4.unpack_from(packet)
    if vihl >> 4 != 4:
        raise DecodeError(0, "ipv4.version", f"version {vihl >> 4}, expected 4", "RFC 791 §3.1")
    ihl = (vihl & 0xF) * 4
    if ihl < 20 or ihl > len(packet) or total < ihl:
        raise DecodeError(0, "ipv4.ihl", f"header length {ihl} does not fit", "RFC 791 §3.1")
    end = min(total, len(packet))
    return IPv4(inet_ntoa(src), inet_ntoa(dst), proto, bytes(packet[ihl:end]), tos, ttl, ident,
                bool(frag & 0x4000))


def fragment_ipv4(packet: bytes, mtu: int, ident: int) -> list[bytes]:
    """The fragments (RFC 791 §3.2) of a packet too long for a link of `mtu` bytes: its header
    copied into each, the data cut at multiples of 8 bytes, More Fragments set on all but the
    last. A packet whose identification is 0 gets `ident`, since fragments are put back
    together by it. Raises ValueError for a packet with Don't Fragment set."""
    if len(packet) <= mtu:
        return [packet]
    ihl = (packet[0] & 0xF) * 4
    flags_offset = struct.unpack_from("!H", packet, 6)[0]
    if flags_offset & 0x4000:
        raise ValueError("the packet has Don't Fragment set")
    chunk = (mtu - ihl) // 8 * 8
    if chunk <= 0:
        raise ValueError(f"an MTU of {mtu} bytes cannot carry a fragment")
    header = bytearray(packet[:ihl])
    if not struct.unpack_from("!H", header, 4)[0]:
        struct.pack_into("!H", header, 4, ident & 0xFFFF)
    data = packet[ihl:struct.unpack_from("!H", packet, 2)[0]]
    first_offset, more_after = flags_offset & 0x1FFF, flags_offset & 0x2000
    fragments = []
    for start in range(0, len(data), chunk):
        part = data[start:start + chunk]
        last = start + chunk >= len(data)
        struct.pack_into("!H", header, 2, ihl + len(part))
        struct.pack_into("!H", header, 6, (more_after if last else 0x2000)
                         | (first_offset + start // 8))
        struct.pack_into("!H", header, 10, 0)
        struct.pack_into("!H", header, 10, checksum(bytes(header)))
        fragments.append(bytes(header) + part)
    return fragments


def frag_needed(router: str, original: bytes, mtu: int) -> bytes:
    """ICMPv4 Destination Unreachable, Fragmentation Needed (RFC 1191 §4) from `router` back to
    the source of `original`, quoting its IPv4 header and first 8 bytes."""
    body = bytearray(struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + original[:28])
    struct.pack_into("!H", body, 2, checksum(bytes(body)))
    return ipv4_packet(router, inet_ntoa(original[12:16]), 1, bytes(body))


# ---------------------------------------------------------------------------- IPv6

@dataclass(slots=True)
class IPv6:
    src: bytes
    dst: bytes
    next_header: int
    payload: bytes
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0

    @property
    def src_text(self) -> str:
        return inet_ntop(AF_INET6, self.src)

    @property
    def dst_text(self) -> str:
        return inet_ntop(AF_INET6, self.dst)

    @property
    def ecn(self) -> int:
        return self.traffic_class & 0x3

    def to_bytes(self) -> bytes:
        first = (6 << 28) | (self.traffic_class << 20) | self.flow_label
        return _IPV6.pack(first, len(self.payload), self.next_header, self.hop_limit, self.src,
                          self.dst) + self.payload


def addr6(text: str) -> bytes:
    return inet_pton(AF_INET6, text)


def text6(raw: bytes) -> str:
    return inet_ntop(AF_INET6, raw)


def parse_ipv6(packet: bytes) -> IPv6:
    if len(packet) < 40:
        raise DecodeError(len(packet), "ipv6.header", "shorter than 40 bytes", "RFC 8200 §3")
    first, plen, nh, hlim, src, dst = _IPV6.unpack_from(packet)
    if first >> 28 != 6:
        raise DecodeError(0, "ipv6.version", f"version {first >> 28}, expected 6", "RFC 8200 §3")
    if 40 + plen > len(packet):
        raise DecodeError(4, "ipv6.payload_length", f"payload length {plen} runs past the end "
                          f"({len(packet) - 40} bytes)", "RFC 8200 §3")
    return IPv6(src, dst, nh, bytes(packet[40:40 + plen]), hlim, (first >> 20) & 0xFF,
                first & 0xFFFFF)


def is_link_local(addr: bytes) -> bool:
    return addr[0] == 0xFE and addr[1] & 0xC0 == 0x80


def is_multicast(addr: bytes) -> bool:
    return addr[0] == 0xFF


def tunnel_link_local(ipv4: str) -> bytes:
    """RFC 4213 §3.7: fe80::/64 with the IPv4 address as the interface identifier."""
    return bytes.fromhex("fe80000000000000") + bytes(4) + inet_aton(ipv4)


# ---------------------------------------------------------------------------- GRE, UDP

def gre_packet(protocol: int, payload: bytes) -> bytes:
    """RFC 2784 header without checksum: flags/version 0, then the protocol type."""
    return struct.pack("!HH", 0, protocol) + payload


def parse_gre(data: bytes) -> tuple[int, bytes]:
    if len(data) < 4:
        raise DecodeError(len(data), "gre.header", "shorter than 4 bytes", "RFC 2784 §2.1")
    flags, protocol = struct.unpack_from("!HH", data)
    offset = 4
    if flags & 0x8000:  # checksum present: 4 more bytes
        offset += 4
    if flags & 0x2000:  # RFC 2890 key
        offset += 4
    if flags & 0x1000:  # RFC 2890 sequence number
        offset += 4
    if offset > len(data):
        raise DecodeError(0, "gre.flags", "optional fields run past the end", "RFC 2784 §2.1")
    return protocol, bytes(data[offset:])


def udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP header over IPv4 with its checksum (RFC 768)."""
    length = 8 + len(payload)
    pseudo = inet_aton(src) + inet_aton(dst) + struct.pack("!BBH", 0, PROTO_UDP, length)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    value = checksum(pseudo + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, value) + payload


def parse_udp(data: bytes) -> tuple[int, int, bytes]:
    if len(data) < 8:
        raise DecodeError(len(data), "udp.header", "shorter than 8 bytes", "RFC 768")
    sport, dport, length, _ = struct.unpack_from("!HHHH", data)
    if length < 8 or length > len(data):
        raise DecodeError(4, "udp.length", f"length {length} does not fit {len(data)} bytes",
                          "RFC 768")
    return sport, dport, bytes(data[8:length])


# ---------------------------------------------------------------------------- over IPv6

def checksum6(src: bytes, dst: bytes, next_header: int, data: bytes) -> int:
    pseudo = src + dst + struct.pack("!IxxxB", len(data), next_header)
    return checksum(pseudo + data)


def icmpv6_packet(src: bytes, dst: bytes, icmp_type: int, code: int, body: bytes, *,
                  hop_limit: int = 64, extra_headers: bytes = b"", first_nh: int | None = None
                  ) -> bytes:
    raw = bytes((icmp_type, code, 0, 0)) + body
    value = checksum6(src, dst, PROTO_ICMPV6, raw)
    raw = raw[:2] + struct.pack("!H", value) + raw[4:]
    nh = PROTO_ICMPV6 if first_nh is None else first_nh
    return IPv6(src, dst, nh, extra_headers + raw, hop_limit).to_bytes()


def udp6_packet(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes,
                hop_limit: int = 64) -> bytes:
    length = 8 + len(payload)
    raw = struct.pack("!HHHH", sport, dport, length, 0) + payload
    value = checksum6(src, dst, PROTO_UDP, raw) or 0xFFFF
    raw = raw[:6] + struct.pack("!H", value) + raw[8:]
    return IPv6(src, dst, PROTO_UDP, raw, hop_limit).to_bytes()


def upper_layer(packet: IPv6) -> tuple[int, bytes]:
    """Skip hop-by-hop options (MLD carries a router-alert one): (protocol, data)."""
    nh, data = packet.next_header, packet.payload
    while nh == 0 and len(data) >= 8:  # hop-by-hop options header
        length = (data[1] + 1) * 8
        nh, data = data[0], data[length:]
    return nh, data


def packet_too_big(router: bytes, original: bytes, mtu: int) -> bytes:
    """ICMPv6 Packet Too Big (RFC 4443 §3.2) back to the source of `original`."""
    src = original[8:24]
    body = struct.pack("!I", mtu) + original[:1280 - 48]
    return icmpv6_packet(router, src, 2, 0, body)


ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT = 135, 136


def neighbor_advert_for(solicit: IPv6, icmp: bytes, own: bytes) -> bytes | None:
    """RFC 4861 §7.2.4 answer to a Neighbor Solicitation for `own`, without link-layer
    address options (a tunnel has no link-layer addresses, RFC 4213 §3.8); None otherwise."""
    if len(icmp) < 24 or icmp[0] != ND_NEIGHBOR_SOLICIT or bytes(icmp[8:24]) != own:
        return None
    flags = 0x60000000  # Solicited, Override (not a router flag: the tunnel is a host link)
    body = struct.pack("!I", flags) + own
    return icmpv6_packet(own, solicit.src, ND_NEIGHBOR_ADVERT, 0, body, hop_limit=255)
