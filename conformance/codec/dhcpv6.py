"""DHCPv6 messages with Prefix Delegation options (RFC 8415 framing, RFC 3633 IA_PD)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import DecodeError

SOLICIT, ADVERTISE, REQUEST, RENEW, REBIND, REPLY, RELEASE = 1, 2, 3, 5, 6, 7, 8
OPT_CLIENTID, OPT_SERVERID, OPT_STATUS_CODE, OPT_RAPID_COMMIT = 1, 2, 13, 14
OPT_IA_PD, OPT_IAPREFIX = 25, 26
CLIENT_PORT, SERVER_PORT = 546, 547
ALL_DHCP_SERVERS = bytes.fromhex("ff020000000000000000000000010002")  # ff02::1:2


@dataclass(slots=True)
class IAPrefix:
    preferred: int
    valid: int
    length: int
    prefix: bytes


@dataclass(slots=True)
class IAPD:
    iaid: int
    t1: int = 0
    t2: int = 0
    prefixes: list[IAPrefix] = field(default_factory=list)


@dataclass(slots=True)
class DHCPv6Message:
    msg_type: int
    transaction_id: int
    client_id: bytes | None = None
    server_id: bytes | None = None
    ia_pd: list[IAPD] = field(default_factory=list)
    rapid_commit: bool = False
    status: int | None = None


def _options(data: bytes, base: int):
    off = 0
    while off < len(data):
        if off + 4 > len(data):
            raise DecodeError(base + off, "dhcpv6.option", "truncated option header",
                              "RFC 8415 §21.1")
        code, length = struct.unpack_from("!HH", data, off)
        if off + 4 + length > len(data):
            raise DecodeError(base + off + 2, "dhcpv6.option.length",
                              f"option {code} length {length} runs past the end", "RFC 8415 §21.1")
        yield code, data[off + 4:off + 4 + length], base + off
        off += 4 + length


def decode_dhcpv6(data: bytes) -> DHCPv6Message:
    if len(data) < 4:
        raise DecodeError(len(data), "dhcpv6.header", "shorter than 4 bytes", "RFC 8415 §8")
    msg = DHCPv6Message(data[0], int.from_bytes(data[1:4], "big"))
    for code, body, off in _options(data[4:], 4):
        if code == OPT_CLIENTID:
            msg.client_id = body
        elif code == OPT_SERVERID:
            msg.server_id = body
        elif code == OPT_RAPID_COMMIT:
            msg.rapid_commit = True
        elif code == OPT_STATUS_CODE and len(body) >= 2:
            msg.status = struct.unpack_from("!H", body)[0]
        elif code == OPT_IA_PD:
            if len(body) < 12:
                raise DecodeError(off, "dhcpv6.ia_pd", "IA_PD shorter than 12 bytes",
                                  "RFC 3633 §9")
            ia = IAPD(*struct.unpack_from("!III", body))
            for sub, sub_body, sub_off in _options(body[12:], off + 16):
                if sub == OPT_IAPREFIX:
                    if len(sub_body) < 25:
                        raise DecodeError(sub_off, "dhcpv6.iaprefix", "IAPREFIX shorter than 25 "
                                          "bytes", "RFC 3633 §10")
                    pref, valid, length = struct.unpack_from("!IIB", sub_body)
                    ia.prefixes.append(IAPrefix(pref, valid, length, bytes(sub_body[9:25])))
            msg.ia_pd.append(ia)
    return msg


def _opt(code: int, body: bytes) -> bytes:
    return struct.pack("!HH", code, len(body)) + body


def encode_dhcpv6(msg: DHCPv6Message) -> bytes:
    out = bytes((msg.msg_type,)) + msg.transaction_id.to_bytes(3, "big")
    if msg.client_id is not None:
        out += _opt(OPT_CLIENTID, msg.client_id)
    if msg.server_id is not None:
        out += _opt(OPT_SERVERID, msg.server_id)
    if msg.rapid_commit:
        out += _opt(OPT_RAPID_COMMIT, b"")
    if msg.status is not None:
        out += _opt(OPT_STATUS_CODE, struct.pack("!H", msg.status))
    for ia in msg.ia_pd:
        inner = b"".join(_opt(OPT_IAPREFIX, struct.pack("!IIB", p.preferred, p.valid, p.length)
                              + p.prefix) for p in ia.prefixes)
        out += _opt(OPT_IA_PD, struct.pack("!III", ia.iaid, ia.t1, ia.t2) + inner)
    return out
