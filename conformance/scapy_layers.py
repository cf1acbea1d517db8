"""scapy layers for Mobile IPv4 registration extensions and DSMIPv4 (RFC 5454).

scapy's own `scapy.layers.mobileip` stops at the fixed headers (flags as one byte, every
extension in Raw, tunnel data bound to IPv4 only). This module replaces the request and reply
layers under scapy's `MobileIP` type dispatcher with ones that carry a typed extension list,
and binds `MobileIPTunnelData` to IPv6 (next header 41) and GRE (47). Every bind_layers of the
project lives here; importing the module once is enough for `rdpcap` to show every field.
"""

from __future__ import annotations

from scapy.fields import (
    BitField, ByteEnumField, ByteField, FieldLenField, IP6Field, IPField, LongField,
    PacketListField, ShortField, StrLenField, XIntField, XShortField, XStrLenField,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE
from scapy.layers.mobileip import MobileIP, MobileIPRRP, MobileIPRRQ, MobileIPTunnelData
from scapy.packet import Packet, Raw, bind_layers, split_layers

EXT_NAMES = {32: "MN-HA auth", 33: "MN-FA auth", 34: "FA-HA auth", 36: "generic auth",
             38: "CVSE", 44: "UDP tunnel reply", 131: "NAI", 134: "NVSE",
             144: "UDP tunnel request", 152: "DSMIPv4"}
PREFIX_REPLY_CODES = {0: "accepted, tunnel to HoA", 1: "accepted, tunnel to CoA",
                      8: "rejected, reason unspecified", 9: "rejected, administratively prohibited"}


class _Extension(Packet):
    """Base of every extension: no payload, the rest of the list follows."""

    def extract_padding(self, s):
        return b"", s


class _ShortLength(_Extension):
    """Fills in the one-byte Length (the bytes after it) when left as None."""

    def post_build(self, pkt, pay):
        if self.len is None:
            pkt = pkt[:1] + bytes((len(pkt) - 2,)) + pkt[2:]
        return pkt + pay


class MIPExtGeneric(_ShortLength):
    name = "Mobile IP Extension"
    fields_desc = [ByteEnumField("type", 0, EXT_NAMES),
                   FieldLenField("len", None, length_of="data", fmt="B"),
                   XStrLenField("data", b"", length_from=lambda p: p.len)]


class MIPExtAuth(_ShortLength):
    name = "Mobile IP Authentication Extension"
    fields_desc = [ByteEnumField("type", 32, EXT_NAMES),
                   ByteField("len", None),
                   XIntField("spi", 256),
                   XStrLenField("authenticator", b"",
                                length_from=lambda p: max((p.len or 0) - 4, 0))]


class MIPExtNAI(_ShortLength):
    name = "Mobile IP NAI Extension"
    fields_desc = [ByteEnumField("type", 131, EXT_NAMES),
                   FieldLenField("len", None, length_of="nai", fmt="B"),
                   StrLenField("nai", b"", length_from=lambda p: p.len)]


class MIPExtUDPTunnelRequest(_ShortLength):
    name = "Mobile IP UDP Tunnel Request Extension"
    fields_desc = [ByteEnumField("type", 144, EXT_NAMES), ByteField("len", None),
                   ByteField("subtype", 0), ByteField("reserved1", 0),
                   BitField("F", 0, 1), BitField("R", 0, 1), BitField("reserved2", 0, 6),
                   ByteField("encapsulation", 0), ShortField("reserved3", 0)]


class MIPExtUDPTunnelReply(_ShortLength):
    name = "Mobile IP UDP Tunnel Reply Extension"
    fields_desc = [ByteEnumField("type", 44, EXT_NAMES), ByteField("len", None),
                   ByteField("subtype", 0), ByteField("code", 0),
                   BitField("F", 0, 1), BitField("reserved", 0, 15),
                   ShortField("keepalive", 0)]


class MIPExtLong(_Extension):
    name = "Mobile IP Long Extension"
    fields_desc = [ByteEnumField("type", 36, EXT_NAMES), ByteField("subtype", 0),
                   FieldLenField("len", None, length_of="data", fmt="H"),
                   XStrLenField("data", b"", length_from=lambda p: p.len)]


class DSMIPv4PrefixRequest(_ShortLength):
    name = "DSMIPv4 IPv6 Prefix Request"
    fields_desc = [ByteEnumField("type", 152, EXT_NAMES), ByteField("len", None),
                   ByteField("subtype", 1), ByteField("prefix_length", 64),
                   IP6Field("prefix", "::")]


class DSMIPv4PrefixReply(_ShortLength):
    name = "DSMIPv4 IPv6 Prefix Reply"
    fields_desc = [ByteEnumField("type", 152, EXT_NAMES), ByteField("len", None),
                   ByteField("subtype", 2), ByteEnumField("code", 0, PREFIX_REPLY_CODES),
                   ByteField("prefix_length", 64), ByteField("reserved", 0),
                   IP6Field("prefix", "::")]


class DSMIPv4TunnelingMode(_ShortLength):
    name = "DSMIPv4 IPv6 Tunneling Mode"
    fields_desc = [ByteEnumField("type", 152, EXT_NAMES), ByteField("len", None),
                   ByteField("subtype", 3), ByteField("reserved", 0)]


class DSMIPv4Unknown(_ShortLength):
    name = "DSMIPv4 Extension (unknown subtype)"
    fields_desc = [ByteEnumField("type", 152, EXT_NAMES), ByteField("len", None),
                   ByteField("subtype", 0),
                   XStrLenField("data", b"", length_from=lambda p: max((p.len or 0) - 1, 0))]


_DSMIP_BY_SUBTYPE = {1: (DSMIPv4PrefixRequest, 18), 2: (DSMIPv4PrefixReply, 20),
                     3: (DSMIPv4TunnelingMode, 2)}
_BY_TYPE = {32: MIPExtAuth, 33: MIPExtAuth, 34: MIPExtAuth, 131: MIPExtNAI}
_FIXED = {144: (MIPExtUDPTunnelRequest, 6), 44: (MIPExtUDPTunnelReply, 6)}


def _next_extension(pkt, lst, cur, remain):
    """Class of the next extension from its first bytes (scapy's STUN-style dispatch)."""
    if not remain:
        return None
    ext_type = remain[0]
    if ext_type in (36, 38):
        return MIPExtLong
    if len(remain) < 2:
        return Raw
    length = remain[1]
    if ext_type == 152:
        if length == 0:
            return MIPExtGeneric
        cls, fixed = _DSMIP_BY_SUBTYPE.get(remain[2] if len(remain) > 2 else 0,
                                           (DSMIPv4Unknown, None))
        return cls if fixed in (None, length) else MIPExtGeneric
    if ext_type in _FIXED:
        cls, fixed = _FIXED[ext_type]
        return cls if length == fixed else MIPExtGeneric
    if ext_type in _BY_TYPE:
        return _BY_TYPE[ext_type] if length >= 4 or ext_type == 131 else MIPExtGeneric
    return MIPExtGeneric


class DSMIPRegistrationRequest(Packet):
    name = "Mobile IP Registration Request (RFC 3344) with extensions"
    fields_desc = [BitField("S", 0, 1), BitField("B", 0, 1), BitField("D", 0, 1),
                   BitField("M", 0, 1), BitField("G", 0, 1), BitField("r", 0, 1),
                   BitField("T", 0, 1), BitField("x", 0, 1),
                   ShortField("lifetime", 180),
                   IPField("homeaddr", "0.0.0.0"), IPField("haaddr", "0.0.0.0"),
                   IPField("coaddr", "0.0.0.0"), LongField("id", 0),
                   PacketListField("extensions", [], next_cls_cb=_next_extension)]


class DSMIPRegistrationReply(Packet):
    name = "Mobile IP Registration Reply (RFC 3344) with extensions"
    fields_desc = [ByteField("code", 0), ShortField("lifetime", 180),
                   IPField("homeaddr", "0.0.0.0"), IPField("haaddr", "0.0.0.0"),
                   LongField("id", 0),
                   PacketListField("extensions", [], next_cls_cb=_next_extension)]


split_layers(MobileIP, MobileIPRRQ, type=1)
split_layers(MobileIP, MobileIPRRP, type=3)
bind_layers(MobileIP, DSMIPRegistrationRequest, type=1)
bind_layers(MobileIP, DSMIPRegistrationReply, type=3)
bind_layers(MobileIPTunnelData, IPv6, nexthdr=41)
bind_layers(MobileIPTunnelData, GRE, nexthdr=47)

__all__ = ["MobileIP", "MobileIPTunnelData", "DSMIPRegistrationRequest",
           "DSMIPRegistrationReply", "MIPExtGeneric", "MIPExtAuth", "MIPExtNAI",
           "MIPExtUDPTunnelRequest", "MIPExtUDPTunnelReply", "MIPExtLong",
           "DSMIPv4PrefixRequest", "DSMIPv4PrefixReply", "DSMIPv4TunnelingMode",
           "DSMIPv4Unknown", "IP", "UDP", "IPv6", "GRE"]
