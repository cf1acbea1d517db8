"""Encapsulation and decapsulation of IPv6 over IPv4 (RFC 4213), GRE (RFC 2784) and UDP
(RFC 3519), with ECN and DSCP handled as RFC 3168 §9.1.1 (full functionality) and RFC 2983 say.
"""

from __future__ import annotations

from .encode import encode
from .messages import TunnelData
from .packets import (
    ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_GRE, PROTO_IPIP, PROTO_IPV6, gre_packet, ipv4_packet,
    parse_ipv4, parse_ipv6,
)

ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_CE = 0, 1, 2, 3
DEFAULT_TTL = 64


def outer_tos(inner_tos: int, copy_dscp: bool = True, full_ecn: bool = True) -> int:
    """RFC 3168 §9.1.1 ingress: copy ECT; CE inside becomes ECT(0) outside. DSCP copied."""
    ecn = inner_tos & 3
    if not full_ecn:
        ecn = ECN_NOT_ECT
    elif ecn == ECN_CE:
        ecn = ECN_ECT0
    dscp = inner_tos & 0xFC if copy_dscp else 0
    return dscp | ecn


def egress_ecn(outer_ecn: int, inner_ecn: int) -> int | None:
    """RFC 3168 §9.1.1 egress: CE outside marks an ECT inner packet CE; None means drop."""
    if outer_ecn == ECN_CE:
        if inner_ecn == ECN_NOT_ECT:
            return None
        return ECN_CE
    return inner_ecn


def ipv6_traffic_class(packet6: bytes) -> int:
    return ((packet6[0] & 0x0F) << 4) | (packet6[1] >> 4)


def set_ipv6_ecn(packet6: bytes, ecn: int) -> bytes:
    tc = (ipv6_traffic_class(packet6) & 0xFC) | ecn
    return bytes((0x60 | tc >> 4, (tc & 0x0F) << 4 | (packet6[1] & 0x0F))) + packet6[2:]


def set_ipv4_ecn(packet4: bytes, ecn: int) -> bytes:
    """New ECN bits and a fresh header checksum."""
    tos = (packet4[1] & 0xFC) | ecn
    ihl = (packet4[0] & 0xF) * 4
    from .packets import checksum

    header = bytearray(packet4[:ihl])
    header[1] = tos
    header[10:12] = b"\0\0"
    value = checksum(bytes(header))
    header[10:12] = value.to_bytes(2, "big")
    return bytes(header) + packet4[ihl:]


def encapsulate(inner: bytes, inner_is_ipv6: bool, src: str, dst: str, method: str, *,
                copy_dscp: bool = True, full_ecn: bool = True, udp_ports=(434, 434)):
    """Outer packet for `inner`: ('ipv4', bytes) for IP-in-IP/GRE, ('udp', TunnelData bytes)."""
    inner_tos = ipv6_traffic_class(inner) if inner_is_ipv6 else inner[1]
    tos = outer_tos(inner_tos, copy_dscp, full_ecn)
    if method == "ipip":
        proto = PROTO_IPV6 if inner_is_ipv6 else PROTO_IPIP
        return "ipv4", ipv4_packet(src, dst, proto, inner, tos=tos, ttl=DEFAULT_TTL)
    if method == "gre":
        ethertype = ETHERTYPE_IPV6 if inner_is_ipv6 else ETHERTYPE_IPV4
        return "ipv4", ipv4_packet(src, dst, PROTO_GRE, gre_packet(ethertype, inner), tos=tos,
                                   ttl=DEFAULT_TTL)
    if method == "udp":
        return "udp", encode(TunnelData(PROTO_IPV6 if inner_is_ipv6 else PROTO_IPIP, inner))
    raise ValueError(f"unknown encapsulation {method!r}")


def decapsulated_ipv6(outer_tos: int, inner: bytes) -> bytes | None:
    """Apply the egress ECN rule to an inner IPv6 packet; None when it must be dropped."""
    parse_ipv6(inner)  # DecodeError for a damaged inner header
    ecn = egress_ecn(outer_tos & 3, ipv6_traffic_class(inner) & 3)
    if ecn is None:
        return None
    return inner if ecn == ipv6_traffic_class(inner) & 3 else set_ipv6_ecn(inner, ecn)


def decapsulated_ipv4(outer_tos: int, inner: bytes) -> bytes | None:
    parse_ipv4(inner)  # DecodeError for a damaged inner header
    ecn = egress_ecn(outer_tos & 3, inner[1] & 3)
    if ecn is None:
        return None
    return inner if ecn == inner[1] & 3 else set_ipv4_ecn(inner, ecn)


def forwarded(packet6: bytes) -> bytes | None:
    """The packet with its Hop Limit decremented by one (RFC 4213 §3.3); None when it hits 0."""
    hop_limit = packet6[7]
    if hop_limit <= 1:
        return None
    return packet6[:7] + bytes((hop_limit - 1,)) + packet6[8:]


# Bytes an encapsulation adds beyond its IPv4 header (GRE header; UDP + RFC 3519 header).
ENCAP_EXTRA = {"ipip": 0, "gre": 4, "udp": 12}


def dynamic_tunnel_mtu(ipv4_path_mtu: int, overhead: int) -> tuple[int, bool]:
    """RFC 4213 §3.2 dynamic method: (tunnel MTU, set DF). The IPv4 path MTU less the headers
    the tunnel adds, with DF set; at or below 1280 the tunnel keeps 1280 and lets IPv4
    fragment (DF clear)."""
    mtu = ipv4_path_mtu - overhead
    return (1280, False) if mtu <= 1280 else (mtu, True)


def with_df(packet: bytes) -> bytes:
    """The IPv4 packet with Don't Fragment set (dynamic tunnel MTU, RFC 4213 §3.2)."""
    from .packets import checksum

    header = bytearray(packet[:20])
    header[6] |= 0x40
    header[10:12] = b"\0\0"
    header[10:12] = checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header) + packet[20:]


__all__ = ["encapsulate", "decapsulated_ipv6", "decapsulated_ipv4", "forwarded", "outer_tos",
           "egress_ecn", "parse_ipv6", "ECN_CE", "ECN_ECT0", "ECN_ECT1", "ECN_NOT_ECT",
           "ENCAP_EXTRA", "dynamic_tunnel_mtu", "with_df"]
