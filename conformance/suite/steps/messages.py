"""Messages and packets the suite builds from a case's data: registration extensions, the
IPv6 packets carried in tunnels, and the seeded malformed variants of the robustness step.
Everything here comes from the codec; nothing from the reference nodes."""

from __future__ import annotations

import ipaddress
import random

from conformance.codec import (
    AuthExtension, DSMIPUnknown, ExtType, NAIExtension, PrefixReply, PrefixRequest, RawExtension,
    RegistrationReply, RegistrationRequest, TunnelingMode, UDPTunnelReply, UDPTunnelRequest,
    encode, prefix_bytes,
)
from conformance.codec import dhcpv6 as dh
from conformance.codec.mld import (
    CHANGE_TO_EXCLUDE, MLD_DONE, MLD_REPORT, MODE_IS_INCLUDE, mldv1_message, mldv2_report,
    mldv2_report_records,
)
from conformance.codec.packets import (
    IPv6, addr6, icmpv6_packet, parse_udp, tunnel_link_local, udp6_packet, upper_layer,
)
from conformance.codec.tunnel import set_ipv6_ecn
from conformance.errors import DeviceDidNotProvide
from conformance.suite.checks import DHCPV6_CLIENT_ID, DHCPV6_XID, _dhcpv6_in, _inner6

# Extensions a correct device must accept when built as the case writes them: a request made
# only of these, correctly signed, is a valid registration (RFC 3344 §3.8.2).
WELL_FORMED = {"prefix-request", "prefix-requests", "tunneling-mode", "nai",
               "udp-tunnel-request"}


def extensions(run, items: list) -> list:
    """The extensions a step lists, in order; `prefix-requests: {first: P, count: N}` stands
    for N prefix requests for P and the N-1 prefixes of the same length that follow it, and
    `prefix-replies: {code: C}` for one prefix reply per request of the saved request."""
    out = []
    for item in items:
        (kind, spec), = item.items()
        if kind == "prefix-replies":
            request = run.saved((spec or {}).get("request_of", "request"))["message"]
            out += [extension(run, {"prefix-reply": {**(spec or {}), "request": i}})
                    for i in range(len(request.prefix_requests))]
        elif kind == "prefix-requests":
            out += _prefix_run(run, run.resolve(spec))
        else:
            out.append(extension(run, item))
    return out


def _prefix_run(run, spec) -> list[PrefixRequest]:
    """Prefix requests for `first` and the `count` - 1 prefixes of its length after it."""
    try:
        first = ipaddress.IPv6Network(spec["first"])
        count = int(spec["count"])
    except (KeyError, TypeError, ValueError) as exc:
        raise run.error(None, f"prefix-requests needs first (an IPv6 prefix) and count: "
                              f"{exc}") from None
    step = 1 << (128 - first.prefixlen)
    base = int(first.network_address)
    return [PrefixRequest.of(f"{ipaddress.IPv6Address(base + i * step)}/{first.prefixlen}")
            for i in range(count)]


def extension(run, item):
    (kind, spec), = item.items()
    spec = run.resolve(spec)
    if kind == "prefix-request":
        if isinstance(spec, str):
            return PrefixRequest.of(spec)
        return PrefixRequest(int(spec["length"]), prefix_bytes(spec["prefix"]),
                             wire_length=spec.get("wire_length"))
    if kind == "tunneling-mode":
        spec = spec or {}
        return TunnelingMode(int(spec.get("reserved", 0)), spec.get("wire_length"))
    if kind == "dsmip":
        return DSMIPUnknown(int(spec["subtype"]), bytes.fromhex(spec.get("body", "")),
                            spec.get("wire_length"))
    if kind == "raw":
        return RawExtension(int(spec["type"]), bytes.fromhex(spec.get("body", "")),
                            spec.get("wire_length"))
    if kind == "nai":
        return NAIExtension(str(spec).encode())
    if kind == "udp-tunnel-request":
        return UDPTunnelRequest(encapsulation=int((spec or {}).get("encapsulation", 0)))
    if kind == "mn-ha-auth":
        spec = spec or {}
        auth = spec.get("authenticator")
        return AuthExtension(32, int(spec.get("spi", run.spi)),
                             bytes.fromhex(auth) if auth else None)
    if kind == "udp-tunnel-reply":
        spec = spec or {}
        return UDPTunnelReply(code=int(spec.get("code", 0)),
                              keepalive=int(spec.get("keepalive", 110)))
    if kind == "prefix-reply":
        request = run.saved(spec.get("request_of", "request"))["message"]
        if "raw_prefix" in spec:
            reply = PrefixReply(int(spec.get("code", 0)), int(spec["length"]),
                                prefix_bytes(spec["raw_prefix"]))
        elif "request" in spec:
            index = int(spec["request"])
            if index >= len(request.prefix_requests):
                raise DeviceDidNotProvide(f"prefix request #{index + 1} to answer: the "
                                          f"device's request carries "
                                          f"{len(request.prefix_requests)}")
            reply = PrefixReply.answering(request.prefix_requests[index],
                                          int(spec.get("code", 0)))
        else:
            reply = PrefixReply.answering(PrefixRequest.of(spec["prefix"]),
                                          int(spec.get("code", 0)))
        reply.reserved = int(spec.get("reserved", 0))
        return reply
    raise run.error(None, f"unknown extension {kind!r}")


def well_formed(items: list, fields: dict) -> bool:
    """Whether a register step builds a valid, correctly signed request (nothing damaged,
    no credential or identification overridden)."""
    if set(fields) - {"lifetime", "flags"}:
        return False
    for item in items:
        (kind, spec), = item.items()
        if kind not in WELL_FORMED:
            return False
        if isinstance(spec, dict) and ("wire_length" in spec or spec.get("reserved")
                                       or spec.get("encapsulation")):
            return False
    return True


DHCPV6_SENT = {"dhcpv6-solicit": dh.SOLICIT, "dhcpv6-request": dh.REQUEST,
               "dhcpv6-renew": dh.RENEW}


def inner_packet(run, spec: dict) -> bytes:
    """The IPv6 packet a tunnel step carries: data, echo, ns, mld-join/leave (MLDv2),
    mldv1-report/done, dhcpv6-solicit/request/renew (the suite as requesting router),
    dhcpv6-reply (the suite as delegating router)."""
    kind = spec.get("inner", "data")
    hoa_ll = tunnel_link_local(run.vars["hoa"])
    ha_ll = tunnel_link_local(run.vars["ha"])
    if kind == "data":
        return IPv6(addr6(spec["inner_src"]), addr6(spec.get("inner_dst", run.vars["cn6"])), 59,
                    bytes(int(spec.get("size", 8))), int(spec.get("hop_limit", 64)),
                    int(spec.get("traffic_class", 0))).to_bytes()
    if kind == "echo":
        body = bytes((0x54, 0x54, 0, 1)) + bytes(int(spec.get("size", 8)))
        packet = icmpv6_packet(addr6(spec.get("inner_src", run.vars["cn6"])),
                               addr6(spec["inner_dst"]), 128, 0, body,
                               hop_limit=int(spec.get("hop_limit", 64)))
        tc = int(spec.get("traffic_class", 0))
        if tc:
            first = (6 << 28) | (tc << 20)
            packet = set_ipv6_ecn(first.to_bytes(4, "big") + packet[4:], tc & 3)
        return packet
    if kind == "ns":
        src = addr6(spec["inner_src"]) if "inner_src" in spec else \
            (hoa_ll if spec.get("target", "ha") == "ha" else ha_ll)
        target = ha_ll if spec.get("target", "ha") == "ha" else hoa_ll
        return icmpv6_packet(src, target, 135, 0, bytes(4) + target, hop_limit=255)
    if kind == "mld-join":
        return mldv2_report(hoa_ll, joins=[addr6(spec["group"])])
    if kind == "mld-records":
        # A listener with a source filter: INCLUDE two sources of `group` (with 4 bytes of
        # auxiliary data the receiver must skip), then EXCLUDE nothing of `second_group`.
        sources = [addr6("2001:db8:99::1"), addr6("2001:db8:99::2")]
        return mldv2_report_records(hoa_ll, [
            (MODE_IS_INCLUDE, addr6(spec["group"]), sources, bytes(4)),
            (CHANGE_TO_EXCLUDE, addr6(spec["second_group"]), [], b"")])
    if kind == "mld-leave":
        return mldv2_report(hoa_ll, leaves=[addr6(spec["group"])])
    if kind in ("mldv1-report", "mldv1-done"):
        return mldv1_message(hoa_ll, MLD_REPORT if kind == "mldv1-report" else MLD_DONE,
                             addr6(spec["group"]))
    if kind in DHCPV6_SENT:
        # A Request or Renew names the server of the last answer tunnelled to the MN and
        # carries the IA_PD with the prefixes it gave (RFC 8415 §18.2.2, §18.2.4).
        answer = None if kind == "dhcpv6-solicit" else \
            _dhcpv6_in(run.saved("tunnelled")["message"])
        msg = dh.DHCPv6Message(DHCPV6_SENT[kind], DHCPV6_XID, DHCPV6_CLIENT_ID,
                               answer.server_id if answer else None,
                               ia_pd=answer.ia_pd if answer and answer.ia_pd else [dh.IAPD(1)],
                               rapid_commit=bool(spec.get("rapid_commit",
                                                          kind == "dhcpv6-solicit")))
        return udp6_packet(hoa_ll, dh.ALL_DHCP_SERVERS, dh.CLIENT_PORT, dh.SERVER_PORT,
                           dh.encode_dhcpv6(msg), hop_limit=1)
    if kind == "dhcpv6-reply":
        solicit = _inner6(run.saved(spec.get("to", "from_mn"))["message"])
        if solicit is None:
            raise DeviceDidNotProvide("a DHCPv6 Solicit to answer: the device tunnelled no IPv6")
        _, data = upper_layer(solicit)
        sport, _, body = parse_udp(data)
        asked = dh.decode_dhcpv6(body)
        net = ipaddress.IPv6Network(spec["prefix"])
        reply = dh.DHCPv6Message(dh.REPLY, asked.transaction_id, asked.client_id,
                                 b"\x00\x03\x00\x01suite", [dh.IAPD(
                                     asked.ia_pd[0].iaid if asked.ia_pd else 1, 300, 480,
                                     [dh.IAPrefix(600, 600, net.prefixlen,
                                                  net.network_address.packed)])],
                                 rapid_commit=True)
        return udp6_packet(ha_ll, solicit.src, dh.SERVER_PORT, sport, dh.encode_dhcpv6(reply),
                           hop_limit=255)
    raise run.error(None, f"unknown inner packet {kind!r}")


# Damaged packets for the HA's side of the tunnel (what the outer header carries: an IP
# protocol number, or "udp" for a Mobile Tunnel Data message): each must be dropped, and the
# HA must go on forwarding what follows.
TUNNEL_DAMAGE = ("ipv6-truncated", "ipv6-length-beyond", "ipv6-version-4", "gre-truncated",
                 "gre-options-past-end", "gre-checksum-past-end", "gre-key-past-end",
                 "gre-sequence-past-end", "ipv4-inner-truncated", "ipv4-inner-version-6",
                 "ipv4-inner-ihl-4", "ipv4-inner-total-below-ihl", "udp-truncated",
                 "udp-length-beyond", "dhcpv6-truncated", "dhcpv6-option-past-end",
                 "dhcpv6-ia-pd-short", "dhcpv6-iaprefix-short", "dhcpv6-status-code",
                 "dhcpv6-option-header-cut",
                 "mld-truncated", "mld-icmpv6-header-cut", "mldv2-header-cut",
                 "mldv2-record-truncated", "tunnel-data-truncated")


def damaged_tunnel_payload(run, variant: str) -> tuple[int | str, bytes]:
    """(outer protocol or "udp", payload) of one damaged packet in the tunnel to the HA."""
    hoa_ll = tunnel_link_local(run.vars["hoa"])
    ha_ll = tunnel_link_local(run.vars["ha"])
    data6 = IPv6(addr6("2001:db8:10:1::5"), addr6(run.vars["cn6"]), 59, bytes(8)).to_bytes()

    def link_local(next_header: int, payload: bytes, dst: bytes = ha_ll) -> bytes:
        return IPv6(hoa_ll, dst, next_header, payload, 255).to_bytes()

    def dhcpv6(body: bytes) -> bytes:
        return udp6_packet(hoa_ll, dh.ALL_DHCP_SERVERS, dh.CLIENT_PORT, dh.SERVER_PORT, body,
                           hop_limit=1)
    solicit = bytes((dh.SOLICIT, 0, 0x54, 0x54))
    damage = {
        "ipv6-truncated": (41, data6[:30]),
        "ipv6-length-beyond": (41, data6[:4] + (100).to_bytes(2, "big") + data6[6:]),
        "ipv6-version-4": (41, bytes((0x40,)) + data6[1:]),
        "gre-truncated": (47, b"\x00\x00"),
        "gre-options-past-end": (47, b"\xb0\x00\x86\xdd" + bytes(4)),
        "ipv4-inner-truncated": (4, bytes((0x45,)) + bytes(9)),
        # An inner IPv4 header (IP in IP) that is whole but wrong: version, header length,
        # total length shorter than the header.
        "ipv4-inner-version-6": (4, bytes((0x65, 0, 0, 28)) + bytes(24)),
        "ipv4-inner-ihl-4": (4, bytes((0x44, 0, 0, 28)) + bytes(24)),
        "ipv4-inner-total-below-ihl": (4, bytes((0x45, 0, 0, 10)) + bytes(24)),
        # One GRE option flag (RFC 2784 checksum, RFC 2890 key, sequence) whose 4 bytes are
        # missing: the header ends at the protocol type.
        "gre-checksum-past-end": (47, b"\x80\x00\x86\xdd"),
        "gre-key-past-end": (47, b"\x20\x00\x86\xdd"),
        "gre-sequence-past-end": (47, b"\x10\x00\x86\xdd"),
        "udp-truncated": (41, link_local(17, b"\x02\x22\x02\x23")),
        "udp-length-beyond": (41, link_local(17, b"\x02\x22\x02\x23\x00\x64\x00\x00"
                                                 + bytes(4))),
        "dhcpv6-truncated": (41, dhcpv6(b"\x01\x00")),
        "dhcpv6-option-past-end": (41, dhcpv6(solicit + b"\x00\x19\x00\x32" + bytes(4))),
        "dhcpv6-ia-pd-short": (41, dhcpv6(solicit + b"\x00\x19\x00\x04" + bytes(4))),
        "dhcpv6-iaprefix-short": (41, dhcpv6(solicit + b"\x00\x19\x00\x16" + bytes(12)
                                             + b"\x00\x1a\x00\x06" + bytes(6))),
        "dhcpv6-option-header-cut": (41, dhcpv6(solicit + b"\x00\x19")),
        # Well-formed, but with a Status Code option (13, NoPrefixAvail) a client never sends:
        # ignored or the message dropped, never the server's end.
        "dhcpv6-status-code": (41, dhcpv6(solicit + b"\x00\x0d\x00\x02\x00\x06"
                                          + b"\x00\x19\x00\x0c" + bytes(12))),
        "mld-truncated": (41, icmpv6_packet(hoa_ll, addr6("ff0e::1:7"), 131, 0, bytes(6),
                                            hop_limit=1)),
        # ICMPv6 cut inside its own 4-byte header, and an MLDv2 report cut inside its 8.
        "mld-icmpv6-header-cut": (41, link_local(58, b"\x83\x00", addr6("ff02::16"))),
        "mldv2-header-cut": (41, link_local(58, b"\x8f\x00\x00\x00\x00\x00",
                                            addr6("ff02::16"))),
        "mldv2-record-truncated": (41, icmpv6_packet(
            hoa_ll, addr6("ff02::16"), 143, 0, b"\x00\x00\x00\x02\x04\x00\x00\x00"
            + addr6("ff0e::1:7"), hop_limit=1)),
        "tunnel-data-truncated": ("udp", b"\x04\x29"),
    }
    if variant not in damage:
        raise run.error(None, f"unknown damaged tunnel packet {variant!r}; known: "
                              f"{', '.join(TUNNEL_DAMAGE)}")
    return damage[variant]


def mn_request(run, ident: int, extensions: list) -> RegistrationRequest:
    """The request the MN the suite plays sends for the case's home address: via the FA, or
    straight to the HA with D set from the co-located care-of address."""
    colocated = run.case.topology == "colocated"
    flags = ("D" if colocated else "") + run.required_flags  # PIXIT: what the device requires
    return RegistrationRequest(RegistrationRequest.flags_of(flags),
                               int(run.vars["lifetime"]), run.vars["hoa"], run.vars["ha"],
                               run.vars["coa"] if colocated else run.vars["fa"], ident,
                               list(extensions))


ROBUSTNESS_KINDS = ("wrong-length", "unknown-subtype", "prefix-length", "stray-bits",
                    "truncated", "repeated", "after-auth")


def malformed(run, kind: str, rng: random.Random):
    """(request bytes, identification, description, acceptable outcomes) for one malformed
    type-152 variant.

    Outcomes: "134" (poorly formed), "drop" (no reply), "accept" (registration accepted with
    the damaged extension ignored or its prefix rejected), "accept-prefix" (stray bits are
    ignored: the prefix is accepted), "accept-once" (a repeated prefix answered once).
    Damaged bytes go before the authenticator, which then covers them, and are followed by a
    well-formed extension boundary: what the device sees after the damage never depends on
    chance bytes such as the timestamp.
    """
    prefix = PrefixRequest.of("2001:db8:10:1::/64")
    exts = [PrefixRequest.of("2001:db8:10:2::/64")]
    auth = AuthExtension(32, run.spi)
    tail = b""
    if kind == "wrong-length":
        length = rng.choice([n for n in range(1, 41) if n != 18])
        body = bytes((1, 64)) + prefix.prefix
        body = (body + bytes(40))[:length]
        tail = bytes((152, length)) + body
        desc, ok = f"prefix request with Length {length} instead of 18", {"134", "drop"}
    elif kind == "unknown-subtype":
        subtype = rng.choice([0] + list(range(4, 256)))
        exts.append(DSMIPUnknown(subtype, rng.randbytes(rng.randrange(0, 20))))
        desc, ok = f"DSMIPv4 extension with subtype {subtype}", {"134", "drop", "accept"}
    elif kind == "prefix-length":
        length = rng.randrange(129, 255)
        exts.append(PrefixRequest(length, prefix.prefix))
        desc, ok = f"prefix request with prefix length {length}", {"134", "drop", "accept"}
    elif kind == "stray-bits":
        exts.append(PrefixRequest(64, prefix.prefix[:8] + rng.randbytes(8)))
        desc, ok = "prefix request with bits set beyond the prefix length", {"accept-prefix"}
    elif kind == "truncated":
        # The Length byte says 18 but only `cut` body bytes follow, then a skippable filler of
        # zeros: a receiver that takes 18 bytes lands inside the zeros (type 0, not skippable),
        # never inside the authenticator, whose bytes change with the timestamp.
        cut = rng.randrange(1, 18)
        tail = bytes((152, 18)) + (bytes((1, 64)) + prefix.prefix)[:cut] + \
            bytes((200, 20)) + bytes(20)
        desc, ok = f"prefix request truncated to {cut} body bytes", {"134", "drop"}
    elif kind == "repeated":
        times = rng.randrange(2, 6)
        exts += [PrefixRequest.of("2001:db8:10:1::/64")] * times
        desc, ok = f"the same prefix requested {times} times", {"accept-once"}
    else:  # after-auth
        desc, ok = "prefix request after the MN-HA authentication extension", \
            {"134", "drop", "accept"}
    ident = run.next_identification()
    request = mn_request(run, ident, exts + [auth])
    if tail:
        request.extensions = exts + [tail, auth]
    payload = encode(request, {32: run.key})
    if kind == "after-auth":
        payload += bytes((152, 18, 1, 64)) + prefix.prefix
    return payload, ident, desc, ok


# Damaged framing of a whole registration message (RFC 3344 §1.9, §1.10, §3.3), each with the
# outcomes RFC 3344 allows for it. Damage follows the MN-HA authenticator only when it cannot
# be placed before it; the bytes the device reads never depend on chance (the timestamp).
FRAMING_VARIANTS = {
    "empty": ("an empty UDP payload", {"drop"}),
    "short-header": ("a Registration Request cut to 23 bytes", {"drop"}),
    "header-only": ("a 24-byte Registration Request with no extension (no authenticator)",
                    {"code 131"}),
    "unknown-type": ("a 24-byte message of type 7", {"drop"}),
    "reply-to-ha": ("a Registration Reply sent to the HA", {"drop"}),
    "trailing-type-byte": ("one extension type byte (144) after the authenticator, with no "
                           "length byte", {"drop", "134", "accept"}),
    "trailing-overrun": ("an extension after the authenticator whose Length (18) runs past "
                         "the end", {"drop", "134", "accept"}),
    "long-header-cut": ("a long-format extension (type 38, CVSE, RFC 3115) after the "
                        "authenticator, cut inside its 4-byte header", {"drop", "134", "accept"}),
    "long-overrun": ("a long-format extension (type 38, CVSE, RFC 3115) after the "
                     "authenticator whose Length (255) runs past the end",
                     {"drop", "134", "accept"}),
    # RFC 3344 §1.9: an unrecognised type below 128 is silently discarded; an HA that
    # implements RFC 3115 may instead deny an unknown vendor's CVSE.
    "long-valid": ("a well-formed long-format extension (type 38, CVSE, RFC 3115) of an unknown "
                   "vendor before the authenticator", {"drop", "denied"}),
    "dsmip-length-0": ("a DSMIPv4 extension of Length 0 (no subtype)", {"drop", "134"}),
    "tunneling-mode-length-3": ("an IPv6 Tunneling Mode extension of Length 3",
                                {"drop", "134"}),
    "udp-tunnel-length-5": ("a UDP Tunnel Request extension (type 144) of Length 5",
                            {"drop", "134", "accept"}),
    "auth-spi-only": ("an MN-HA authentication extension of Length 4: the SPI and no "
                      "authenticator", {"code 131", "134"}),
    "auth-length-2": ("an MN-HA authentication extension of Length 2, too short for its SPI",
                      {"drop", "code 131", "134"}),
}


def framing_variant(run, name: str):
    """(payload, identification, description, acceptable outcomes) of one FRAMING_VARIANTS
    entry, sent as the MN registering with the HA under test."""
    desc, allowed = FRAMING_VARIANTS[name]
    ident = run.next_identification()
    request = mn_request(run, ident, [PrefixRequest.of("2001:db8:10:1::/64")])
    signed = [AuthExtension(32, run.spi)]
    header = encode(request)[:24]  # the fixed part alone
    keys = {32: run.key}
    before = {"long-valid": bytes((ExtType.CVSE, 0, 0, 6)) + bytes((0, 0, 0xFF, 0xFE, 0, 1)),
              "dsmip-length-0": bytes((152, 0)),
              "tunneling-mode-length-3": bytes((152, 3, 3, 0, 0)),
              "udp-tunnel-length-5": bytes((144, 5)) + bytes(5)}
    after = {"trailing-type-byte": bytes((144,)),
             "trailing-overrun": bytes((152, 18, 1, 64)),
             "long-header-cut": bytes((ExtType.CVSE, 0, 0)),
             "long-overrun": bytes((ExtType.CVSE, 0, 0, 255)) + bytes(4)}
    if name == "empty":
        payload = b""
    elif name == "short-header":
        payload = header[:23]
    elif name == "header-only":
        payload = header
    elif name == "unknown-type":
        payload = bytes((7,)) + header[1:]
    elif name == "reply-to-ha":
        payload = encode(RegistrationReply(0, request.lifetime, request.home_address,
                                           request.home_agent, ident, signed), keys)
    elif name == "auth-spi-only":
        payload = encode(request) + bytes((32, 4)) + run.spi.to_bytes(4, "big")
    elif name == "auth-length-2":
        payload = encode(request) + bytes((32, 2)) + run.spi.to_bytes(4, "big")[:2]
    elif name in before:
        request.extensions += [before[name]] + signed
        payload = encode(request, keys)
    else:
        request.extensions += signed
        payload = encode(request, keys) + after[name]
    return payload, ident, desc, allowed
