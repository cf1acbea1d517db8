"""Named checks a test case applies to what it observed.

Each check takes the run context, the observed subject (a decoded message, a packet, a state
table) and the arguments from the YAML, and returns (ok, expected, actual). The requirement
ids come from the test case; the check only judges.
"""

from __future__ import annotations


import yaml

from conformance.codec import (
    PrefixRequest, TunnelingMode, UDPTunnelRequest, extension_end,
    verify_authenticator,
)
from conformance.codec.constants import reply_code_accepts
from conformance.codec.packets import parse_gre, parse_ipv4, parse_ipv6, text6
from conformance.codec.tunnel import ipv6_traffic_class
from conformance.errors import DeviceDidNotProvide

from conformance.suite.registry import CHECKS, Address4, Hex, Prefix, check  # noqa: F401


def _codes(equals, in_, accept, reject, default):
    """The codes a reply may carry: exactly one of equals / in / accept / reject, or default."""
    if in_ is not None:
        return set(in_)
    if equals is not None:
        return {equals}
    if accept:
        return set(range(0, 8))
    if reject:
        return set(range(8, 256))
    return default


def _given(**fields) -> dict:
    return {k: v for k, v in fields.items() if v is not None}


def _prefix_list(value) -> list[str]:
    """A list of prefixes, as YAML text ("[a/64, b/48]") from a profile parameter or a list."""
    if isinstance(value, str):
        value = yaml.safe_load(value) or []
    return [str(v) for v in value]


def _req_keys(request):
    return [r.key for r in request.prefix_requests]


def _fmt_prefix(ext) -> str:
    return f"{ext.prefix_text}/{ext.prefix_length}"


# ------------------------------------------------------------------ replies from an HA
@check("reply")
def reply_code(ctx, reply, equals: int | None = None, in_: list[int] | None = None,
               accept: bool = False, reject: bool = False):
    codes = _codes(equals, in_, accept, reject, {0, 1})
    return reply.code in codes, f"header code in {sorted(codes)}", f"code {reply.code}"


@check("reply")
def identification_echoed(ctx, reply, request: str = "request"):
    req = ctx.vars[request]["message"]
    return (reply.identification == req.identification,
            f"identification {req.identification:#018x}", f"{reply.identification:#018x}")


@check("reply")
def identification_low_bits_echoed(ctx, reply, request: str = "request"):
    req = ctx.vars[request]["message"]
    ok = reply.identification & 0xFFFFFFFF == req.identification & 0xFFFFFFFF
    return ok, f"low 32 bits {req.identification & 0xFFFFFFFF:#010x}", \
        f"{reply.identification & 0xFFFFFFFF:#010x}"


@check("reply")
def identification_carries_ha_time(ctx, reply, within: int = 5):
    from conformance.codec.ntp import ntp_time

    skew = abs((reply.identification >> 32) - (ntp_time(ctx.session.clock.time()) >> 32))
    return skew <= within, f"high 32 bits = the HA's time (within {within} s)", f"{skew} s off"


@check("message")
def identification_clock_offset(ctx, message, seconds: int, within: int = 3):
    """The identification's high 32 bits are `seconds` ahead of this machine's clock."""
    from conformance.codec.ntp import ntp_time

    off = (message.identification >> 32) - (ntp_time(ctx.session.clock.time()) >> 32)
    return abs(off - seconds) <= within, f"timestamp {seconds} s ahead (the HA's clock)", \
        f"{off} s ahead"


@check("reply")
def home_address_echoed(ctx, reply, request: str = "request"):
    req = ctx.vars[request]["message"]
    return reply.home_address == req.home_address, req.home_address, reply.home_address


@check("reply")
def lifetime_at_most(ctx, reply, value: int | None = None, request: str = "request"):
    limit = value if value is not None else ctx.vars[request]["message"].lifetime
    return reply.lifetime <= limit, f"lifetime <= {limit}", f"lifetime {reply.lifetime}"


@check("reply")
def reply_authenticated(ctx, reply):
    valid = verify_authenticator(ctx.last_payload(reply), reply, ctx.key)
    return bool(valid), "a valid MN-HA authenticator", {None: "none"}.get(valid, str(valid))


@check("reply")
def one_prefix_reply_per_request(ctx, reply, request: str = "request",
                                 unless_denied: bool = False):
    """`unless_denied`: a registration denied as a whole (RFC 3344 allows 130, insufficient
    resources, for a request with many prefixes) owes no prefix reply per request."""
    if unless_denied and not reply_code_accepts(reply.code):
        return True, "a prefix reply per request, unless the registration is denied", \
            f"denied with code {reply.code}"
    wanted = set(_req_keys(ctx.vars[request]["message"]))
    got = {r.key for r in reply.prefix_replies}
    missing = wanted - got
    return not missing, f"a prefix reply for each of {len(wanted)} requested prefixes", \
        f"{len(missing)} without a reply" if missing else "all answered"


@check("reply")
def no_duplicate_prefix_replies(ctx, reply):
    keys = [r.key for r in reply.prefix_replies]
    dups = len(keys) - len(set(keys))
    return dups == 0, "at most one prefix reply per prefix", f"{dups} duplicate(s)"


@check("reply")
def prefix_replies_echo_requests(ctx, reply, request: str = "request"):
    wanted = set(_req_keys(ctx.vars[request]["message"]))
    stray = [_fmt_prefix(r) for r in reply.prefix_replies if r.key not in wanted]
    return not stray, "every prefix reply names a requested prefix", \
        f"unrequested: {stray}" if stray else "all requested"


@check("reply")
def prefix_reply_count(ctx, reply, equals: int):
    n = len(reply.prefix_replies)
    return n == equals, f"{equals} prefix reply extension(s)", f"{n}"


@check("reply")
def prefix_reply_code(ctx, reply, prefix: Prefix, equals: int | None = None,
                      in_: list[int] | None = None, accept: bool = False, reject: bool = False):
    target = PrefixRequest.of(prefix).key
    codes = _codes(equals, in_, accept, reject, set(range(0, 8)))
    found = [r for r in reply.prefix_replies if r.key == target]
    if not found:
        if reply.code > 1 and not codes & set(range(0, 8)):
            # A rejecting header rejects every prefix (RFC 5454 §3.2): a rejection too.
            return True, f"{prefix} rejected", f"the whole registration rejected ({reply.code})"
        return False, f"a reply for {prefix} with code in {sorted(codes)[:10]}", "no reply"
    return found[0].code in codes, f"{prefix}: code in {_show(codes)}", \
        f"{prefix}: code {found[0].code}"


def _show(codes):
    codes = sorted(codes)
    if codes == list(range(0, 8)):
        return "0-7 (accept)"
    if codes == list(range(8, 256)):
        return "8-255 (reject)"
    return str(codes)


@check("reply")
def rejection_grants_no_prefix(ctx, reply):
    """A reply that rejects the registration (code 2 and up) grants no prefix; one that
    accepts it may (RFC 5454 §3.2: the header code decides for every prefix)."""
    accepting = [_fmt_prefix(r) for r in reply.prefix_replies if r.code <= 7]
    ok = reply.code <= 1 or not accepting
    return ok, "no accepting prefix reply in a rejecting reply", \
        f"code {reply.code}" + (f", accepting {accepting}" if accepting else "")


@check("reply")
def no_accepting_prefix_reply(ctx, reply):
    accepting = [_fmt_prefix(r) for r in reply.prefix_replies if r.code <= 7]
    return not accepting, "no prefix reply with an accept code", \
        f"accepting: {accepting}" if accepting else "none"


@check("reply")
def no_prefix_replies(ctx, reply):
    n = len(reply.prefix_replies)
    return n == 0, "no IPv6 prefix reply extension", f"{n}"


@check("message")
def no_observation(ctx, message, rule: str):
    found = [f"{o.field} at offset {o.offset}: {o.message}" for o in message.observations
             if o.rule == rule]
    return not found, f"nothing breaking {rule}", "; ".join(found) or "clean"


# ------------------------------------------------------------------ requests from an MN
@check("request")
def extensions_before_auth(ctx, request):
    kinds = [e.type for e in request.extensions]
    if 32 not in kinds:
        return False, "type-152 extensions before the MN-HA authentication", "no MN-HA auth"
    auth_at = kinds.index(32)
    late = [i for i, t in enumerate(kinds) if t == 152 and i > auth_at]
    return not late, "every type-152 extension before the MN-HA authentication extension", \
        f"type 152 after it at positions {late}" if late else "in order"


@check("request")
def request_authenticated(ctx, request):
    valid = verify_authenticator(ctx.last_payload(request), request, ctx.key)
    return bool(valid), "a valid MN-HA authenticator covering the extensions", str(valid)


@check("request")
def tunneling_mode_count(ctx, request, equals: int):
    n = len(request.find(TunnelingMode))
    return n == equals, f"{equals} IPv6 tunnelling mode extension(s)", f"{n}"


@check("request")
def retransmission_backoff(ctx, request, first: str, previous: str):
    """RFC 3344 §3.6.3: this request retransmits `previous`, which retransmitted `first`: the
    first timeout is at least 100 ms, the next at least twice as long (capture times; 5%
    allowance for the capture's own timing)."""
    t0, t1, t2 = ctx.saved(first)["at"], ctx.saved(previous)["at"], ctx.vars["request"]["at"]
    if None in (t0, t1, t2):
        raise ValueError("the capture gave no arrival time")
    one, two = t1 - t0, t2 - t1
    ok = one >= 0.1 and two >= 2 * one * 0.95
    return ok, "a first timeout of at least 0.1 s, then one at least twice as long", \
        f"{one:.3f} s, then {two:.3f} s"


@check("request")
def request_lifetime(ctx, request, equals: int):
    return request.lifetime == equals, f"Lifetime {equals}", f"{request.lifetime}"


@check("request")
def request_care_of(ctx, request, equals: Address4):
    want = ctx.resolve(equals)
    return request.care_of_address == want, f"Care-of Address {want}", \
        f"{request.care_of_address}"


@check("request")
def request_addressed(ctx, request, src: Address4 | None = None, dst: Address4 | None = None):
    """The IPv4 source and destination the device sent the request with (as captured)."""
    want = _given(src=src, dst=dst)
    sent = ctx.vars["request"]
    got = {"src": sent["src"], "dst": sent["dst"]}
    bad = {k: got[k] for k, v in want.items() if got[k] != ctx.resolve(v)}
    return not bad, f"sent {ctx.resolve(want)}", f"sent {got}"


@check("request")
def requested_prefixes(ctx, request, equals: list[str]):
    got = sorted(str(r.network) if r.prefix_length <= 128 else f"{r.prefix_text}/255"
                 for r in request.prefix_requests)
    return got == sorted(equals), f"prefix requests {sorted(equals)}", f"{got}"


@check("request")
def reserved_flags_zero(ctx, request):
    return not (request.flag("r") or request.flag("x")), "flags r and x zero", \
        f"flags {request.flags:#04x}"


@check("request")
def decapsulation_flag(ctx, request, set_: bool):
    """The D bit (RFC 3344 §3.3): set exactly when the MN registers a co-located CoA."""
    got = request.flag("D")
    return got == set_, f"D bit {'set' if set_ else 'clear'}", f"D bit {'set' if got else 'clear'}"


@check("request")
def udp_encapsulation_zero(ctx, request):
    exts = request.find(UDPTunnelRequest)
    if not exts:
        return False, "a UDP tunnel request with encapsulation 0", "no UDP tunnel request"
    return exts[0].encapsulation == 0, "encapsulation 0", f"encapsulation {exts[0].encapsulation}"


@check("request")
def relayed_unchanged(ctx, relayed, original: str = "request"):
    sent = ctx.vars[original]["payload"]
    got = ctx.last_payload(relayed)
    auth = relayed.auth(32)
    end = extension_end(auth) if auth else len(got)
    same = got[:end] == sent[:end]
    first = next((i for i, (a, b) in enumerate(zip(got[:end], sent[:end])) if a != b),
                 min(len(got), len(sent), end))
    return same, "the request up to its MN-HA authenticator, byte for byte", \
        "identical" if same else f"differs from byte {first}"


@check("request")
def fa_ha_authenticated(ctx, relayed, spi: int = "$dut_fa_ha_spi", key: Hex = "$dut_fa_ha_key"):
    """The FA's Foreign-Home Authentication extension (RFC 3344 §3.5.4) after the MN-HA one,
    its authenticator HMAC-MD5 over the message through its own SPI (§3.5.1)."""
    expected = "an FA-HA authentication extension after the MN-HA one, HMAC-MD5 over the " \
               "message through its SPI"
    payload = ctx.last_payload(relayed)
    types = [e.type for e in relayed.extensions]
    ext = relayed.auth(34)
    if ext is None or 32 not in types or types.index(34) < types.index(32):
        return False, expected, f"extension types {types}"
    if ext.spi != int(ctx.resolve(spi)):
        return False, expected, f"SPI {ext.spi}"
    valid = verify_authenticator(payload, relayed, bytes.fromhex(str(ctx.resolve(key))), 34)
    return bool(valid), expected, "valid" if valid else "authenticator does not verify"


# ------------------------------------------------------------------ tunnelled packets
@check("packet")
def outer_header(ctx, packet, src: Address4 | None = None, dst: Address4 | None = None,
                 proto: int | None = None):
    want = _given(src=src, dst=dst, proto=proto)
    outer = parse_ipv4(packet)
    asked_gre = "proto" in want and ctx.resolve(want["proto"]) == 47
    got = {"src": outer.src, "dst": outer.dst,
           "proto": outer.proto if asked_gre else _carried(ctx, outer)}
    bad = {k: got[k] for k, v in want.items() if got.get(k) != ctx.resolve(v)}
    return not bad, f"outer {ctx.resolve(want)}", f"outer {got}"


def _gre_requested(ctx) -> bool:
    """Whether the registration the tunnel follows asked for GRE (RFC 3344 §3.3, G bit)."""
    sent = ctx.vars.get("request")
    message = sent.get("message") if isinstance(sent, dict) else None
    return bool(message is not None and message.flag("G"))


def _gre_body(payload: bytes) -> bytes:
    return parse_gre(payload)[1]


def _carried(ctx, outer) -> int:
    """The protocol the outer IPv4 header carries; through GRE when the MN asked for GRE,
    what the GRE header carries (41 for IPv6, 4 for IPv4), since GRE then is the tunnel."""
    if outer.proto == 47 and _gre_requested(ctx):
        ethertype, _ = parse_gre(outer.payload)
        return {0x86DD: 41, 0x0800: 4}.get(ethertype, 47)
    return outer.proto


@check("packet")
def middle_header(ctx, packet, src: Address4 | None = None, dst: Address4 | None = None,
                  proto: int | None = None):
    want = _given(src=src, dst=dst, proto=proto)
    outer = parse_ipv4(packet)
    if _carried(ctx, outer) != 4:
        return False, f"IPv4-in-IPv4 around {ctx.resolve(want)}", f"outer protocol {outer.proto}"
    middle = parse_ipv4(outer.payload if outer.proto == 4 else _gre_body(outer.payload))
    got = {"src": middle.src, "dst": middle.dst, "proto": middle.proto}
    bad = {k: got[k] for k, v in want.items() if got.get(k) != ctx.resolve(v)}
    return not bad, f"inner IPv4 {ctx.resolve(want)}", f"inner IPv4 {got}"


def _inner6(packet):
    """The IPv6 packet inside IP-in-IP, IPv6-in-IPv4, GRE or RFC 3519 UDP tunnel data."""
    from conformance.codec.packets import parse_udp

    ip4 = parse_ipv4(packet)
    payload, proto = ip4.payload, ip4.proto
    if proto == 17:
        _, _, data = parse_udp(payload)
        if len(data) < 4 or data[0] != 4:
            return None
        payload, proto = data[4:], data[1]
    if proto == 47:
        ethertype, payload = parse_gre(payload)
        proto = 41 if ethertype == 0x86DD else 4
    if proto == 4:
        inner4 = parse_ipv4(payload)
        payload, proto = inner4.payload, inner4.proto
        if proto == 47:
            ethertype, payload = parse_gre(payload)
            proto = 41 if ethertype == 0x86DD else None
    return parse_ipv6(payload) if proto == 41 else None


def _upper(inner):
    from conformance.codec.packets import upper_layer

    return upper_layer(inner)


@check("packet")
def inner_icmpv6_type(ctx, packet, equals: int):
    inner = _inner6(packet)
    proto, data = _upper(inner) if inner else (None, b"")
    got = data[0] if proto == 58 and data else None
    return got == equals, f"inner ICMPv6 type {equals}", f"{'not ICMPv6' if got is None else got}"


def _router_alert(inner) -> bool:
    """A Hop-by-Hop Options header carrying the MLD Router Alert (RFC 2711, value 0)."""
    if inner.next_header != 0 or len(inner.payload) < 8:
        return False
    options = inner.payload[2:(inner.payload[1] + 1) * 8]
    i = 0
    while i < len(options):
        if options[i] == 0:  # Pad1
            i += 1
            continue
        if i + 2 > len(options):
            return False
        kind, size = options[i], options[i + 1]
        if kind == 5 and size == 2 and options[i + 2:i + 4] == bytes(2):
            return True
        i += 2 + size
    return False


@check("packet")
def mld_report(ctx, packet, joins: str | None = None, leaves: str | None = None):
    """RFC 3810 §5.2, §7.4: an MLDv2 Report from a link-local source to ff02::16 with hop
    limit 1 and a Router Alert, a correct ICMPv6 checksum, zero Reserved fields and Aux Data
    Len, its Number of Records matching the records, one of them joining `joins` (EXCLUDE
    with no source) or leaving `leaves` (INCLUDE with no source)."""
    if (joins is None) == (leaves is None):
        raise ValueError("mld_report takes exactly one of joins, leaves")
    group = ctx.resolve(joins if joins is not None else leaves)
    record_types = (2, 4) if joins is not None else (1, 3)  # RFC 3810 §5.2.12
    what = "joining" if joins is not None else "leaving"
    from conformance.codec.packets import addr6, checksum6

    inner = _inner6(packet)
    if inner is None:
        return False, "an MLDv2 Report", "no inner IPv6 packet"
    proto, icmp = _upper(inner)
    problems = []
    if proto != 58 or len(icmp) < 8 or icmp[0] != 143:
        return False, "an MLDv2 Report (ICMPv6 type 143)", \
            f"protocol {proto}, type {icmp[0] if icmp else None}"
    if inner.src[:2] != b"\xfe\x80":
        problems.append(f"source {inner.src_text} is not link-local")
    if inner.dst != addr6("ff02::16"):
        problems.append("destination is not ff02::16")
    if inner.hop_limit != 1:
        problems.append(f"hop limit {inner.hop_limit}")
    if not _router_alert(inner):
        problems.append("no Router Alert option")
    if checksum6(inner.src, inner.dst, 58, icmp) != 0:
        problems.append("wrong ICMPv6 checksum")
    if icmp[1] != 0 or icmp[4:6] != bytes(2):
        problems.append(f"Reserved fields {icmp[1]:#x}, {icmp[4:6].hex()}")
    count, off, joined = int.from_bytes(icmp[6:8], "big"), 8, False
    for _ in range(count):
        if off + 20 > len(icmp):
            problems.append(f"Number of Records {count}, but the report ends at byte {off}")
            break
        rtype, aux, nsrc = icmp[off], icmp[off + 1], int.from_bytes(icmp[off + 2:off + 4], "big")
        if aux:
            problems.append(f"Aux Data Len {aux}")
        joined |= rtype in record_types and nsrc == 0 and icmp[off + 4:off + 20] == addr6(
            group)
        off += 20 + 16 * nsrc + 4 * aux
    if off != len(icmp):
        problems.append(f"{len(icmp) - off} bytes beyond the {count} record(s)")
    if not joined:
        problems.append(f"no record {what} {group}")
    return not problems, f"a well-formed MLDv2 Report {what} {group}", \
        "; ".join(problems) or "well-formed"


@check("packet")
def neighbor_advert(ctx, packet, target: str):
    """RFC 4213 §3.8 / RFC 4861: an NA for `target`, hop limit 255, no link-layer option."""
    inner = _inner6(packet)
    proto, data = _upper(inner) if inner else (None, b"")
    want = ctx.resolve(target)
    from conformance.codec.packets import addr6

    ok = proto == 58 and len(data) >= 24 and data[0] == 136 and data[8:24] == addr6(want) \
        and inner.hop_limit == 255 and len(data) == 24
    got = f"type {data[0] if data else None}, hop limit {inner.hop_limit if inner else None}, " \
          f"{len(data)} bytes" if inner else "no inner IPv6"
    return ok, f"a Neighbor Advertisement for {want}, hop limit 255, no options", got


@check("packet")
def inner_size_at_most(ctx, packet, equals: int):
    inner = _inner6(packet)
    size = 40 + len(inner.payload) if inner else None
    return size is not None and size <= equals, f"inner IPv6 packet <= {equals} bytes", f"{size}"


@check("packet")
def tunnel_reserved_zero(ctx, packet):
    from conformance.codec.packets import parse_udp

    ip4 = parse_ipv4(packet)
    if ip4.proto != 17:
        return False, "Mobile Tunnel Data with Reserved 0", f"IP protocol {ip4.proto}"
    _, _, data = parse_udp(ip4.payload)
    got = int.from_bytes(data[2:4], "big") if len(data) >= 4 else None
    return got == 0, "Mobile Tunnel Data with Reserved 0", f"Reserved {got}"


@check("packet")
def tunnel_next_header(ctx, packet, equals: int):
    from conformance.codec.packets import parse_udp

    ip4 = parse_ipv4(packet)
    if ip4.proto != 17:
        return False, f"RFC 3519 tunnel data with next header {equals}", f"IP protocol {ip4.proto}"
    _, dport, data = parse_udp(ip4.payload)
    got = data[1] if len(data) >= 2 and data[0] == 4 else None
    return got == equals, f"Mobile Tunnel Data, next header {equals}", f"{got}"


@check("packet")
def dhcpv6_delegates(ctx, packet, prefix: Prefix):
    found = _dhcpv6_udp(packet)
    if found is None:
        return False, f"a DHCPv6 reply delegating {prefix}", "not UDP"
    msg = found[1]
    got = [f"{text6(p.prefix)}/{p.length}" for ia in msg.ia_pd for p in ia.prefixes]
    return prefix in got, f"a DHCPv6 message delegating {prefix}", f"type {msg.msg_type}, {got}"


# What the suite sends as requesting router, so that answers can be matched to it.
DHCPV6_XID = 0x5454
DHCPV6_CLIENT_ID = b"\x00\x03\x00\x01\x02\x00\x00\x00\x00\x01"  # DUID-LL


def _dhcpv6_udp(packet: bytes):
    """(destination port, DHCPv6 message) of the UDP in a tunnelled packet, None if no UDP."""
    from conformance.codec import dhcpv6 as dh
    from conformance.codec.packets import parse_udp

    inner = _inner6(packet)
    proto, data = _upper(inner) if inner else (None, b"")
    if proto != 17:
        return None
    _, dport, body = parse_udp(data)
    return dport, dh.decode_dhcpv6(body)


def _dhcpv6_in(packet: bytes):
    """The DHCPv6 message in a tunnelled packet the device sent."""
    found = _dhcpv6_udp(packet)
    if found is None:
        raise DeviceDidNotProvide("a DHCPv6 message: the device tunnelled no UDP")
    return found[1]


@check("packet")
def dhcpv6_answer(ctx, packet, types: list[str]):
    """A DHCPv6 answer to the suite's message: one of `types` (advertise, reply), the
    suite's transaction id and Client Identifier echoed, a Server Identifier (RFC 8415
    §16.3, §16.10)."""
    from conformance.codec import dhcpv6 as dh

    names = {dh.ADVERTISE: "advertise", dh.REPLY: "reply"}
    msg = _dhcpv6_in(packet)
    got = names.get(msg.msg_type, f"type {msg.msg_type}")
    ok = got in types and msg.transaction_id == DHCPV6_XID and \
        msg.client_id == DHCPV6_CLIENT_ID and bool(msg.server_id)
    return ok, f"{' or '.join(types)} with transaction id {DHCPV6_XID:#x}, the suite's " \
        "Client Identifier and a Server Identifier", \
        f"{got}, transaction id {msg.transaction_id:#x}, Client Identifier " \
        f"{'echoed' if msg.client_id == DHCPV6_CLIENT_ID else 'not echoed'}, Server " \
        f"Identifier {'present' if msg.server_id else 'absent'}"


@check("packet")
def is_dhcpv6_solicit(ctx, packet):
    from conformance.codec import dhcpv6 as dh

    found = _dhcpv6_udp(packet)
    if found is None:
        return False, "a DHCPv6 Solicit with IA_PD", "not UDP"
    dport, msg = found
    ok = dport == 547 and msg.msg_type in (dh.SOLICIT, dh.REQUEST) and bool(msg.ia_pd)
    return ok, "a DHCPv6 Solicit/Request with IA_PD to port 547", \
        f"type {msg.msg_type}, port {dport}, {len(msg.ia_pd)} IA_PD"


@check("packet")
def inner_hop_limit(ctx, packet, equals: int):
    inner = _inner6(packet)
    got = inner.hop_limit if inner else None
    return got == equals, f"inner hop limit {equals}", f"{got}"


def _allowed(equals, in_) -> list:
    """The values a check accepts: `equals`, and every value `in` lists."""
    return ([equals] if equals is not None else []) + list(in_ or [])


@check("packet")
def outer_tos(ctx, packet, equals: int | None = None, in_: list[int] | None = None):
    """The outer IPv4 TOS byte; `in` lists every value the RFCs allow (CE inside is ECT(0)
    outside in RFC 3168's full-functionality mode, CE again in RFC 6040's normal mode)."""
    allowed = _allowed(equals, in_)
    got = parse_ipv4(packet).tos
    return got in allowed, "outer TOS " + " or ".join(f"{v:#04x}" for v in allowed), \
        f"{got:#04x}"


@check("packet")
def outer_df_clear(ctx, packet):
    df = parse_ipv4(packet).df
    return not df, "DF clear in the outer IPv4 header", "DF set" if df else "DF clear"


# ------------------------------------------------------------------ device state
def _binding(rows, home):
    return next((r for r in rows if r.get("home_address") == home), None)


@check("rows")
def binding_prefixes(ctx, rows, equals: list[Prefix], home_address: Address4 = "$hoa"):
    home = ctx.resolve(home_address)
    row = _binding(rows, home)
    # A prefix is {prefix: ..., tunnel: ...} or, from a CLI parser, the prefix text alone.
    got = sorted(p["prefix"] if isinstance(p, dict) else str(p)
                 for p in row.get("prefixes") or []) if row else None
    want = sorted(ctx.resolve(list(equals)))
    return got == want, f"binding of {home} with prefixes {want}", \
        f"{got}" if row else "no binding"


@check("rows")
def no_binding(ctx, rows, home_address: Address4 = "$hoa"):
    home = ctx.resolve(home_address)
    row = _binding(rows, home)
    return row is None, f"no binding for {home}", "none" if row is None else f"{row}"


@check("rows")
def mn_prefixes(ctx, rows, accepted: dict | None = None, rejected: list[Prefix] = ()):
    """MN state: which prefixes it holds and over which tunnel; the rest must not be held,
    except those the profile says the MN holds by configuration in implicit mode (RFC 5454
    §1.4, parameter implicit_prefixes)."""
    configured = _prefix_list(ctx.vars.get("dut_implicit_prefixes", []))
    held = {r["prefix"]: r.get("tunnel") for r in rows if r.get("accepted")
            and r["prefix"] not in configured}
    want = dict(accepted or {})
    problems = [f"{p}: {held.get(p)} instead of {t}" for p, t in want.items()
                if held.get(p) != t]
    problems += [f"{p}: held though it must be rejected" for p in rejected if p in held]
    extra = [p for p in held if p not in want]
    problems += [f"{p}: held though not accepted" for p in extra]
    return not problems, f"accepted {want}, rejected {list(rejected)}", \
        "; ".join(problems) or f"{held}"


@check("packet6")
def hop_limit(ctx, packet, equals: int):
    """The Hop Limit of an IPv6 packet as the device forwarded it."""
    got = parse_ipv6(packet).hop_limit
    return got == equals, f"hop limit {equals}", f"{got}"


@check("packet6")
def traffic_class(ctx, packet, equals: int | None = None, in_: list[int] | None = None):
    """The Traffic Class (DSCP and ECN) of an IPv6 packet as the device forwarded it; `in`
    lists every value the RFCs allow."""
    allowed = _allowed(equals, in_)
    got = ipv6_traffic_class(packet)
    return got in allowed, "traffic class " + " or ".join(str(v) for v in allowed), f"{got}"


@check("packet6")
def packet_too_big(ctx, packet, mtu: int):
    """An ICMPv6 Packet Too Big (RFC 4443 §3.2) announcing `mtu`."""
    ip6 = parse_ipv6(packet)
    data = ip6.payload
    if ip6.next_header != 58 or len(data) < 8 or data[0] != 2:
        return False, f"ICMPv6 Packet Too Big, MTU {mtu}", \
            f"next header {ip6.next_header}, type {data[0] if data else None}"
    got = int.from_bytes(data[4:8], "big")
    return got == mtu, f"ICMPv6 Packet Too Big, MTU {mtu}", f"Packet Too Big, MTU {got}"


@check("rows")
def has_visitor(ctx, rows, home_address: Address4 = "$hoa"):
    """The FA's visitor list holds the mobile node (RFC 3344 §3.7.3)."""
    home = ctx.resolve(home_address)
    found = any(r.get("home_address") == home for r in rows)
    return found, f"a visitor entry for {home}", \
        f"visitors {[r.get('home_address') for r in rows]}"


@check("rows")
def no_visitor(ctx, rows, home_address: Address4 = "$hoa"):
    """The FA's visitor list does not hold the mobile node (RFC 3344 §3.7.1, §3.7.3.2)."""
    home = ctx.resolve(home_address)
    found = any(r.get("home_address") == home for r in rows)
    return not found, f"no visitor entry for {home}", \
        f"visitors {[r.get('home_address') for r in rows]}"


@check("rows")
def has_route(ctx, rows, prefix: Prefix):
    dsts = [r.get("dst") for r in rows]
    return prefix in dsts, f"a route for {prefix}", f"routes {dsts}"


@check("rows")
def no_route(ctx, rows, prefix: Prefix):
    dsts = [r.get("dst") for r in rows]
    return prefix not in dsts, f"no route for {prefix}", f"routes {dsts}"


@check("rows")
def mn_registered(ctx, rows, equals: bool = True, dsmip: bool | None = None):
    row = rows[0] if rows else {}
    ok = row.get("registered") == equals and (dsmip is None or row.get("ha_supports_dsmip")
                                              == dsmip)
    return ok, f"registered={equals}" + (f", HA supports RFC 5454={dsmip}" if dsmip is not None
                                         else ""), \
        f"registered={row.get('registered')}, HA supports RFC 5454={row.get('ha_supports_dsmip')}"


@check("rows")
def binding_groups(ctx, rows, includes: str | None = None, excludes: str | None = None,
                   home_address: Address4 = "$hoa"):
    """The multicast groups the binding's MN is a listener of: one it joined, or one it left
    (absent, or the binding itself gone)."""
    row = _binding(rows, ctx.resolve(home_address))
    groups = row.get("groups", []) if row else None
    if excludes is not None:
        return excludes not in (groups or []), f"no membership of {excludes}", f"{groups}"
    return bool(groups) and includes in groups, f"membership of {includes}", f"{groups}"


@check("packet")
def middle_source(ctx, packet, equals: Address4):
    """The IPv4 header around the IPv6 packet (inside any outer IP-in-IP): its source."""
    outer = parse_ipv4(packet)
    middle = parse_ipv4(outer.payload) if outer.proto == 4 else outer
    want = ctx.resolve(equals)
    return middle.src == want and middle.proto == 41, f"IPv6 in IPv4 from {want}", \
        f"IPv6 in IPv4 from {middle.src} (protocol {middle.proto})"


@check("packet")
def outer_df_set(ctx, packet):
    df = parse_ipv4(packet).df
    return df, "DF set in the outer header (dynamic tunnel MTU)", "DF set" if df else "DF clear"


@check("reply")
def has_udp_tunnel_reply(ctx, reply, code: int = 0):
    from conformance.codec import UDPTunnelReply

    found = reply.find(UDPTunnelReply)
    got = found[0].code if found else None
    return got == code, f"a UDP Tunnel Reply extension with code {code}", f"{got}"
