"""Strict decoder: bytes -> message dataclasses.

Structural damage raises one DecodeError with the byte offset, the field and the RFC section.
Rules a receiver must tolerate (RFC 5454 §2: "ignored by the receiver") decode fine and are
recorded as Observations on the message, naming the catalog requirement they break.
"""

from __future__ import annotations

import struct
from socket import inet_ntoa

from .constants import LONG_FORM_TYPES, TUNNEL_NEXT_HEADERS, ExtType
from .errors import DecodeError, Observation
from .messages import (
    AuthExtension, DSMIPUnknown, LongExtension, NAIExtension, PrefixReply, PrefixRequest,
    RawExtension, RegistrationReply, RegistrationRequest, TunnelData, TunnelingMode,
    UDPTunnelReply, UDPTunnelRequest,
)

_RRQ = struct.Struct("!BBH4s4s4sQ")
_RRP = struct.Struct("!BBH4s4sQ")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_UDP_TUNNEL = struct.Struct("!BBBBH")

_S3344_EXT = "RFC 3344 §1.9"


def _ext_field(index: int, name: str) -> str:
    return f"extensions[{index}].{name}"


def _check_prefix(data, off, index, plen, prefix, observations, rule_bits, rule_len, what):
    """Tolerated prefix-field violations of RFC 5454 §2.1/§2.2."""
    if plen <= 128:
        if plen < 128 and int.from_bytes(prefix, "big") & ((1 << (128 - plen)) - 1):
            observations.append(Observation(
                off + 4 if what == "request" else off + 6, _ext_field(index, "prefix"), rule_bits,
                f"bits beyond prefix length {plen} are not zero in the IPv6 prefix {what}"))
    elif plen == 255:
        if prefix[0] != 0xFE or prefix[1] & 0xC0 != 0x80:
            observations.append(Observation(
                off + 4 if what == "request" else off + 6, _ext_field(index, "prefix"), rule_len,
                f"prefix length 255 announces a link-local address, but {what} carries "
                f"a non-link-local address"))
    else:
        observations.append(Observation(
            off + 3 if what == "request" else off + 4, _ext_field(index, "prefix_length"),
            rule_len, f"prefix length {plen} is neither 0-128 nor 255 (link-local)"))


def _dsmip(data, off, ln, index, observations):
    if ln == 0:
        raise DecodeError(off + 1, _ext_field(index, "length"),
                          "DSMIPv4 extension of length 0 has no subtype", "RFC 5454 §2")
    subtype = data[off + 2]
    if subtype == 1:
        if ln != 18:
            raise DecodeError(off + 1, _ext_field(index, "length"),
                              f"IPv6 Prefix Request length is {ln}, must be 18", "RFC 5454 §2.1")
        plen = data[off + 3]
        prefix = data[off + 4:off + 20]
        _check_prefix(data, off, index, plen, prefix, observations,
                      "RFC5454-2.1-01", "RFC5454-2.1-F2", "request")
        return PrefixRequest(plen, prefix, None, off)
    if subtype == 2:
        if ln != 20:
            raise DecodeError(off + 1, _ext_field(index, "length"),
                              f"IPv6 Prefix Reply length is {ln}, must be 20", "RFC 5454 §2.2")
        plen = data[off + 4]
        reserved = data[off + 5]
        prefix = data[off + 6:off + 22]
        if reserved:
            observations.append(Observation(off + 5, _ext_field(index, "reserved"),
                                            "RFC5454-2.2-F2",
                                            f"reserved field is {reserved}, sender must set 0"))
        _check_prefix(data, off, index, plen, prefix, observations,
                      "RFC5454-2.2-01", "RFC5454-2.2-F3", "reply")
        return PrefixReply(data[off + 3], plen, prefix, reserved, None, off)
    if subtype == 3:
        if ln != 2:
            raise DecodeError(off + 1, _ext_field(index, "length"),
                              f"IPv6 Tunneling Mode length is {ln}, must be 2", "RFC 5454 §2.3")
        reserved = data[off + 3]
        if reserved:
            observations.append(Observation(off + 3, _ext_field(index, "reserved"),
                                            "RFC5454-2.3-F2",
                                            f"reserved field is {reserved}, sender must set 0"))
        return TunnelingMode(reserved, None, off)
    observations.append(Observation(off + 2, _ext_field(index, "subtype"), "RFC5454-5-01",
                                    f"DSMIPv4 subtype {subtype} is not defined by RFC 5454"))
    return DSMIPUnknown(subtype, data[off + 3:off + 2 + ln], None, off)


def _auth(data, off, ln, index, observations):
    if ln < 4:
        raise DecodeError(off + 1, _ext_field(index, "length"),
                          f"authentication extension length {ln} cannot hold the 4-byte SPI",
                          "RFC 3344 §3.5.2")
    return AuthExtension(data[off], _U32.unpack_from(data, off + 2)[0],
                         data[off + 6:off + 2 + ln], None, off)


def _nai(data, off, ln, index, observations):
    return NAIExtension(data[off + 2:off + 2 + ln], None, off)


def _udp_tunnel_request(data, off, ln, index, observations):
    if ln != 6:
        raise DecodeError(off + 1, _ext_field(index, "length"),
                          f"UDP Tunnel Request length is {ln}, must be 6", "RFC 3519 §3.1")
    subtype, reserved1, flags, encapsulation, reserved3 = _UDP_TUNNEL.unpack_from(data, off + 2)
    if reserved1 or flags & 0x3F or reserved3:
        observations.append(Observation(off + 3, _ext_field(index, "reserved"), "RFC3519-3.1-01",
                                        "reserved bits of the UDP Tunnel Request are not zero"))
    return UDPTunnelRequest(encapsulation, bool(flags & 0x80), bool(flags & 0x40), subtype,
                            reserved1, flags & 0x3F, reserved3, None, off)


def _udp_tunnel_reply(data, off, ln, index, observations):
    if ln != 6:
        raise DecodeError(off + 1, _ext_field(index, "length"),
                          f"UDP Tunnel Reply length is {ln}, must be 6", "RFC 3519 §3.2")
    subtype, code, flags, keepalive = struct.unpack_from("!BBHH", data, off + 2)
    if flags & 0x7FFF:
        observations.append(Observation(off + 4, _ext_field(index, "reserved"), "RFC3519-3.2-02",
                                        "reserved bits of the UDP Tunnel Reply are not zero"))
    return UDPTunnelReply(code, keepalive, bool(flags & 0x8000), subtype, flags & 0x7FFF,
                          None, off)


_PARSERS = {
    ExtType.DSMIPV4: _dsmip,
    ExtType.MN_HA_AUTH: _auth,
    ExtType.MN_FA_AUTH: _auth,
    ExtType.FA_HA_AUTH: _auth,
    ExtType.NAI: _nai,
    ExtType.UDP_TUNNEL_REQUEST: _udp_tunnel_request,
    ExtType.UDP_TUNNEL_REPLY: _udp_tunnel_reply,
}
# int keys: a dict lookup with a plain int must not pay for IntEnum hashing.
_PARSERS = {int(k): v for k, v in _PARSERS.items()}
_LONG = frozenset(int(t) for t in LONG_FORM_TYPES)


def decode_extensions(data: bytes, off: int, observations: list) -> list:
    """Extensions from `off` to the end of `data`, in wire order."""
    end = len(data)
    exts = []
    index = 0
    parsers = _PARSERS
    while off < end:
        ext_type = data[off]
        if ext_type in _LONG:
            if off + 4 > end:
                raise DecodeError(off, _ext_field(index, "length"),
                                  f"long-format extension type {ext_type} needs a 4-byte header, "
                                  f"{end - off} bytes left", "RFC 3344 §1.10")
            ln = _U16.unpack_from(data, off + 2)[0]
            if off + 4 + ln > end:
                raise DecodeError(off + 2, _ext_field(index, "length"),
                                  f"extension length {ln} runs past the end of the message "
                                  f"({end - off - 4} bytes left)", "RFC 3344 §1.10")
            exts.append(LongExtension(ext_type, data[off + 1], data[off + 4:off + 4 + ln], None,
                                      off))
            off += 4 + ln
            index += 1
            continue
        if off + 2 > end:
            raise DecodeError(off, _ext_field(index, "length"),
                              f"extension type {ext_type} has no length byte", _S3344_EXT)
        ln = data[off + 1]
        if off + 2 + ln > end:
            raise DecodeError(off + 1, _ext_field(index, "length"),
                              f"extension length {ln} runs past the end of the message "
                              f"({end - off - 2} bytes left)", _S3344_EXT)
        parser = parsers.get(ext_type)
        if parser is None:
            exts.append(RawExtension(ext_type, data[off + 2:off + 2 + ln], None, off))
        else:
            exts.append(parser(data, off, ln, index, observations))
        off += 2 + ln
        index += 1
    return exts


def decode_request(data: bytes) -> RegistrationRequest:
    if len(data) < 24:
        raise DecodeError(len(data), "header", f"Registration Request needs 24 bytes of header, "
                          f"got {len(data)}", "RFC 3344 §3.3")
    mtype, flags, lifetime, hoa, ha, coa, ident = _RRQ.unpack_from(data, 0)
    if mtype != 1:
        raise DecodeError(0, "type", f"type {mtype} is not a Registration Request (1)",
                          "RFC 3344 §3.3")
    observations = []
    if flags & 0x05:
        observations.append(Observation(1, "flags", "RFC3344-3.3-01",
                                        "reserved flag bits r/x are not zero"))
    exts = decode_extensions(data, 24, observations)
    return RegistrationRequest(flags, lifetime, inet_ntoa(hoa), inet_ntoa(ha), inet_ntoa(coa),
                               ident, exts, observations)


def decode_reply(data: bytes) -> RegistrationReply:
    if len(data) < 20:
        raise DecodeError(len(data), "header", f"Registration Reply needs 20 bytes of header, "
                          f"got {len(data)}", "RFC 3344 §3.4")
    mtype, code, lifetime, hoa, ha, ident = _RRP.unpack_from(data, 0)
    if mtype != 3:
        raise DecodeError(0, "type", f"type {mtype} is not a Registration Reply (3)",
                          "RFC 3344 §3.4")
    observations = []
    exts = decode_extensions(data, 20, observations)
    return RegistrationReply(code, lifetime, inet_ntoa(hoa), inet_ntoa(ha), ident, exts,
                             observations)


def decode_tunnel_data(data: bytes) -> TunnelData:
    if len(data) < 4:
        raise DecodeError(len(data), "header", f"Mobile Tunnel Data needs 4 bytes of header, "
                          f"got {len(data)}", "RFC 3519 §3.3")
    if data[0] != 4:
        raise DecodeError(0, "type", f"type {data[0]} is not Mobile Tunnel Data (4)",
                          "RFC 3519 §3.3")
    next_header = data[1]
    reserved = _U16.unpack_from(data, 2)[0]
    observations = []
    if next_header not in TUNNEL_NEXT_HEADERS:
        observations.append(Observation(1, "next_header", "RFC3519-3.3-02",
                                        f"next header {next_header} is not IPv4 (4), "
                                        f"IPv6 (41) or GRE (47)"))
    if reserved:
        observations.append(Observation(2, "reserved", "RFC3519-3.3-01",
                                        f"reserved field is {reserved}, sender must set 0"))
    return TunnelData(next_header, bytes(data[4:]), reserved, observations)


_BY_TYPE = {1: decode_request, 3: decode_reply, 4: decode_tunnel_data}


def decode(data: bytes):
    """Any message carried on UDP port 434, chosen by its first byte."""
    if not data:
        raise DecodeError(0, "type", "empty UDP payload", "RFC 3344 §3")
    fn = _BY_TYPE.get(data[0])
    if fn is None:
        raise DecodeError(0, "type", f"message type {data[0]} is not 1 (Registration Request), "
                          f"3 (Registration Reply) or 4 (Mobile Tunnel Data)",
                          "RFC 3344 §3, RFC 3519 §3.3")
    return fn(data)
