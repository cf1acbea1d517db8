"""MLDv1 (RFC 2710) and MLDv2 (RFC 3810) reports: which groups a listener joins or leaves."""

from __future__ import annotations

import struct

from .errors import DecodeError
from .packets import icmpv6_packet

MLD_QUERY, MLD_REPORT, MLD_DONE, MLDV2_REPORT = 130, 131, 132, 143
ALL_MLDV2_ROUTERS = bytes.fromhex("ff020000000000000000000000000016")  # ff02::16
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")
_ROUTER_ALERT_HBH = bytes((58, 0, 5, 2, 0, 0, 1, 0))  # hop-by-hop: router alert (MLD), PadN
# MLDv2 record types (RFC 3810 §5.2.12)
MODE_IS_INCLUDE, MODE_IS_EXCLUDE, CHANGE_TO_INCLUDE, CHANGE_TO_EXCLUDE = 1, 2, 3, 4
ALLOW_NEW_SOURCES, BLOCK_OLD_SOURCES = 5, 6


def parse_mld(icmp: bytes) -> tuple[set[bytes], set[bytes]] | None:
    """(joined groups, left groups) from an ICMPv6 MLD message, None if it is not a report."""
    if len(icmp) < 4:
        raise DecodeError(len(icmp), "icmpv6.header", "shorter than 4 bytes", "RFC 4443 §2.1")
    kind = icmp[0]
    if kind in (MLD_REPORT, MLD_DONE):
        if len(icmp) < 24:
            raise DecodeError(len(icmp), "mld.group", "MLD message shorter than 24 bytes",
                              "RFC 2710 §3")
        group = bytes(icmp[8:24])
        return ({group}, set()) if kind == MLD_REPORT else (set(), {group})
    if kind != MLDV2_REPORT:
        return None
    if len(icmp) < 8:
        raise DecodeError(len(icmp), "mldv2.header", "shorter than 8 bytes", "RFC 3810 §5.2")
    count = struct.unpack_from("!H", icmp, 6)[0]
    off, joined, left = 8, set(), set()
    for _ in range(count):
        if off + 20 > len(icmp):
            raise DecodeError(off, "mldv2.record", "truncated multicast address record",
                              "RFC 3810 §5.2.4")
        rtype, aux, nsrc = struct.unpack_from("!BBH", icmp, off)
        group = bytes(icmp[off + 4:off + 20])
        # An empty INCLUDE is a leave; anything else keeps the listener in the group.
        if rtype in (MODE_IS_INCLUDE, CHANGE_TO_INCLUDE) and nsrc == 0:
            left.add(group)
        elif rtype in (MODE_IS_INCLUDE, MODE_IS_EXCLUDE, CHANGE_TO_INCLUDE, CHANGE_TO_EXCLUDE,
                       ALLOW_NEW_SOURCES):
            joined.add(group)
        off += 20 + 16 * nsrc + 4 * aux
    return joined, left


def mldv2_report(src: bytes, joins=(), leaves=()) -> bytes:
    """An MLDv2 report from link-local `src` to ff02::16, with a router-alert option."""
    return mldv2_report_records(src, [(CHANGE_TO_EXCLUDE, g, [], b"") for g in joins] +
                                [(CHANGE_TO_INCLUDE, g, [], b"") for g in leaves])


def mldv2_report_records(src: bytes, records) -> bytes:
    """An MLDv2 report carrying `records`: (record type, group, [sources], aux data bytes)
    each, as a listener with source filters would send (RFC 3810 §5.2.4)."""
    from .packets import IPv6, checksum6

    body = b"".join(struct.pack("!BBH", rtype, len(aux) // 4, len(sources)) + group +
                    b"".join(sources) + aux for rtype, group, sources, aux in records)
    raw = bytes((MLDV2_REPORT, 0, 0, 0)) + struct.pack("!HH", 0, len(records)) + body
    value = checksum6(src, ALL_MLDV2_ROUTERS, 58, raw)
    raw = raw[:2] + value.to_bytes(2, "big") + raw[4:]
    return IPv6(src, ALL_MLDV2_ROUTERS, 0, _ROUTER_ALERT_HBH + raw, hop_limit=1).to_bytes()


def mldv1_message(src: bytes, kind: int, group: bytes) -> bytes:
    """An MLDv1 Report (131) or Done (132) for `group` (RFC 2710 §3), hop limit 1 with a
    router-alert option; a Report goes to the group, a Done to all routers (ff02::2)."""
    from .packets import IPv6, checksum6

    dst = group if kind == MLD_REPORT else ALL_ROUTERS
    raw = bytes((kind, 0, 0, 0)) + bytes(4) + group
    value = checksum6(src, dst, 58, raw)
    raw = raw[:2] + value.to_bytes(2, "big") + raw[4:]
    return IPv6(src, dst, 0, _ROUTER_ALERT_HBH + raw, hop_limit=1).to_bytes()


__all__ = ["parse_mld", "mldv1_message", "mldv2_report", "mldv2_report_records", "icmpv6_packet"]
