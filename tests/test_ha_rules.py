"""Each HA rule of RFC 3344 / RFC 5454 checked on the engine, and shown to fail with its fault.

`check_*` functions return normally when the rule holds and raise AssertionError when it is
broken; every one runs against the clean HA (must hold) and the faulty HA (must break).
"""

import ipaddress

import pytest

from conformance.codec import (
    AuthExtension, PrefixReply, PrefixRequest, RawExtension, RegistrationRequest, TunnelingMode,
    UDPTunnelRequest, decode, encode,
)
from conformance.codec.packets import IPv6, addr6, parse_ipv4, parse_ipv6
from conformance.nodes.actions import DeliverIPv6, Event, SendIPv4, SendUDP
from conformance.codec.ntp import ntp_time
from conformance.nodes.ha import HomeAgent, MobileNodeEntry
from conformance.nodes.faults import HA_FAULTS
from conformance.codec.tunnel import encapsulate
from conformance.nodes.faults import engine_for
from memnet import COA, FA, HA, HOA, KEY, START, ha_config

HOA2 = "203.0.113.11"
KEY2 = bytes(range(16))


def make_ha(*faults, **kw) -> HomeAgent:
    mns = [MobileNodeEntry(HOA, 256, KEY, [ipaddress.IPv6Network("2001:db8:10::/48")]),
           MobileNodeEntry(HOA2, 257, KEY2, [ipaddress.IPv6Network("2001:db8:10::/48")],
                           [ipaddress.IPv6Network("2001:db8:20::/48")])]
    return engine_for("ha", ha_config(mobile_nodes=mns, faults=frozenset(faults), **kw))


class Clock:
    t = START


def rrq(*exts, hoa=HOA, spi=256, key=KEY, lifetime=600, flags="", coa=FA, ident=None,
        ha=HA, auth=True):
    Clock.t += 1
    extensions = list(exts) + ([AuthExtension(32, spi)] if auth else [])
    req = RegistrationRequest(RegistrationRequest.flags_of(flags), lifetime, hoa, ha, coa,
                              ntp_time(Clock.t) if ident is None else ident, extensions)
    return encode(req, {32: key})


def send(ha: HomeAgent, payload: bytes, src=FA, now=None):
    actions = ha.receive_udp(payload, src, 434, now or Clock.t)
    replies = [a for a in actions if isinstance(a, SendUDP)]
    reply = decode(replies[0].payload) if replies else None
    return reply, actions


P1, P2 = PrefixRequest.of("2001:db8:10:1::/64"), PrefixRequest.of("2001:db8:10:2::/64")


def ping6(src, dst, hop_limit=64, tc=0, size=4):
    return IPv6(addr6(src), addr6(dst), 59, b"x" * size, hop_limit, tc).to_bytes()


# --------------------------------------------------------------------- checks, one per rule

def check_one_reply_per_request(ha):  # RFC5454-3.3-02
    reply, _ = send(ha, rrq(P1, P2))
    assert reply.code == 0
    assert [r.prefix_text for r in reply.prefix_replies] == ["2001:db8:10:1::", "2001:db8:10:2::"]


def check_no_duplicate_reply(ha):  # RFC5454-3.3-03
    reply, _ = send(ha, rrq(P1, P1, P2))
    keys = [r.key for r in reply.prefix_replies]
    assert len(keys) == len(set(keys)) == 2


def check_prefix_echo(ha):  # RFC5454-3.3-05
    reply, _ = send(ha, rrq(P1, PrefixRequest.of("2001:db8:10:8000::/49")))
    requested = {(P1.prefix_length, P1.prefix),
                 (49, PrefixRequest.of("2001:db8:10:8000::/49").prefix)}
    assert {(r.prefix_length, r.prefix) for r in reply.prefix_replies} <= requested
    assert len(reply.prefix_replies) == 2


def check_overlap_rejected(ha):  # RFC5454-3.3-06
    send(ha, rrq(PrefixRequest.of("2001:db8:10::/56")))
    reply, _ = send(ha, rrq(PrefixRequest.of("2001:db8:10::/64"), hoa=HOA2, spi=257, key=KEY2))
    assert reply.code == 0 and reply.prefix_replies[0].code >= 8
    reply, _ = send(ha, rrq(PrefixRequest.of("2001:db8:10::/48"), hoa=HOA2, spi=257, key=KEY2))
    assert reply.prefix_replies[0].code >= 8


def check_code_reflects_mode_in_fa_mode(ha):  # RFC5454-3.3-04
    reply, _ = send(ha, rrq(P1, TunnelingMode()))  # FA CoA mode (no D bit)
    assert [r.code for r in reply.prefix_replies] == [0]


def check_coa_mode_when_colocated(ha):  # RFC5454-3.3.2-04
    reply, _ = send(ha, rrq(P1, TunnelingMode(), flags="D", coa=COA), src=COA)
    assert [r.code for r in reply.prefix_replies] == [1]


def check_header_reject_has_no_accepting_prefix_reply(ha):  # RFC5454-3.2-D1
    reply, _ = send(ha, rrq(P1, ha="203.0.113.2"))
    assert reply.code == 136
    assert all(r.code >= 8 for r in reply.prefix_replies)


def check_stray_bits_zero_in_reply(ha):  # RFC5454-2.2-01
    req = PrefixRequest(64, addr6("2001:db8:10:1::1"))  # stray bits from the MN: ignored
    reply, _ = send(ha, rrq(req))
    assert reply.prefix_replies[0].code == 0
    assert not [o for o in reply.observations if o.rule == "RFC5454-2.2-01"]


def check_reply_reserved_zero(ha):  # RFC5454-2.2-F2
    reply, _ = send(ha, rrq(P1))
    assert reply.prefix_replies[0].reserved == 0


def check_omitted_prefix_removed(ha):  # RFC5454-3.8-D3
    send(ha, rrq(P1, P2))
    send(ha, rrq(P1))
    assert [p["prefix"] for p in ha.binding_table(Clock.t)[0]["prefixes"]] == [
        "2001:db8:10:1::/64"]


def check_deregistration_removes_all(ha):  # RFC5454-3.8-D2
    send(ha, rrq(P1, P2))
    reply, _ = send(ha, rrq(lifetime=0))
    assert reply.code == 0 and ha.binding_table(Clock.t) == []


def check_expiry_removes_all(ha):  # RFC5454-3.8-D1
    send(ha, rrq(P1, P2, lifetime=10))
    assert ha.next_timer() == pytest.approx(Clock.t + 10)
    actions = ha.handle_timer(Clock.t + 10)
    assert ha.binding_table(Clock.t + 10) == []
    assert sorted(e.data["prefix"] for e in actions if isinstance(e, Event)
                  and e.name == "route-del") == ["2001:db8:10:1::/64", "2001:db8:10:2::/64"]


def check_route_announced(ha):  # RFC5454-3.3.1-01
    _, actions = send(ha, rrq(P1))
    assert [a.data["prefix"] for a in actions if isinstance(a, Event)
            and a.name == "route-add"] == ["2001:db8:10:1::/64"]


def check_auth_required(ha):  # RFC3344-3.8.2.1-01
    reply, _ = send(ha, rrq(P1, key=bytes(16)))
    assert reply.code == 131
    reply, _ = send(ha, rrq(P1, auth=False))
    assert reply.code == 131


def check_identification(ha):  # RFC3344-3.8.2.1-02, RFC3344-5.7.1-01
    stale = ntp_time(Clock.t - 60) | 0x1234
    reply, _ = send(ha, rrq(P1, ident=stale))
    assert reply.code == 133
    assert reply.identification & 0xFFFFFFFF == stale & 0xFFFFFFFF
    assert abs((reply.identification >> 32) - (ntp_time(Clock.t) >> 32)) <= 1
    good = rrq(P1)
    assert send(ha, good)[0].code == 0
    assert send(ha, good)[0].code == 133  # replayed


def check_lifetime_capped(ha):  # RFC3344-3.8.3-01
    reply, _ = send(ha, rrq(P1, lifetime=60000))
    assert reply.code == 0 and reply.lifetime == 1800


def check_unknown_nonskippable_rejected(ha):  # RFC3344-1.9-02
    reply, _ = send(ha, rrq(P1, RawExtension(100, b"abc")))
    assert reply.code == 134


def check_unknown_skippable_ignored(ha):  # RFC3344-1.9-01
    reply, _ = send(ha, rrq(P1, RawExtension(200, b"abc")))
    assert reply.code == 0 and reply.prefix_replies[0].code == 0


def _registered(ha, flags="", coa=FA, src=FA, *exts):
    reply, _ = send(ha, rrq(P1, P2, *exts, flags=flags, coa=coa), src=src)
    assert reply.code == 0
    return reply


def check_tunnel_to_hoa(ha):  # RFC5454-3.3.2-02
    _registered(ha)
    [out] = [a for a in ha.receive_ipv6(ping6("2001:db8:ff::1", "2001:db8:10:1::5"), Clock.t)
             if isinstance(a, SendIPv4)]
    outer = parse_ipv4(out.packet)
    assert (outer.dst, outer.proto) == (FA, 4)
    middle = parse_ipv4(outer.payload)
    assert (middle.src, middle.dst, middle.proto) == (HA, HOA, 41)


def check_tunnel_to_coa(ha):  # RFC5454-3.3.2-04
    _registered(ha, "D", COA, COA, TunnelingMode())
    [out] = [a for a in ha.receive_ipv6(ping6("2001:db8:ff::1", "2001:db8:10:1::5"), Clock.t)
             if isinstance(a, SendIPv4)]
    assert (parse_ipv4(out.packet).dst, parse_ipv4(out.packet).proto) == (COA, 41)


def check_accept_from_hoa(ha):  # RFC5454-3.3.2-03
    _registered(ha)
    _, pkt = encapsulate(ping6("2001:db8:10:1::5", "2001:db8:ff::1"), True, HOA, HA, "ipip")
    assert [a for a in ha.receive_ipv4(pkt, Clock.t) if isinstance(a, DeliverIPv6)]


def check_inner_source_checked(ha):  # RFC5454-3.3.2-07, RFC5454-4-02
    _registered(ha)
    _, pkt = encapsulate(ping6("2001:db8:99::5", "2001:db8:ff::1"), True, HOA, HA, "ipip")
    actions = ha.receive_ipv4(pkt, Clock.t)
    assert not [a for a in actions if isinstance(a, DeliverIPv6)]


def check_outer_source_checked(ha):  # RFC5454-3.3.2-08, RFC3024-4.2-01
    _registered(ha)
    _, pkt = encapsulate(ping6("2001:db8:10:1::5", "2001:db8:ff::1"), True, "203.0.113.99", HA,
                         "ipip")
    assert not [a for a in ha.receive_ipv4(pkt, Clock.t) if isinstance(a, DeliverIPv6)]


def check_security_exception_logged(ha):  # RFC5454-4-03
    _registered(ha)
    _, pkt = encapsulate(ping6("2001:db8:99::5", "2001:db8:ff::1"), True, HOA, HA, "ipip")
    events = [a for a in ha.receive_ipv4(pkt, Clock.t) if isinstance(a, Event)]
    assert [e.name for e in events] == ["security-exception"]
    assert events[0].data["inner_src"] == "2001:db8:99::5"


def check_hop_limit(ha):  # RFC4213-3.3-01
    _registered(ha)
    [out] = [a for a in ha.receive_ipv6(ping6("2001:db8:ff::1", "2001:db8:10:1::5", 9), Clock.t)
             if isinstance(a, SendIPv4)]
    inner = parse_ipv4(parse_ipv4(out.packet).payload).payload
    assert parse_ipv6(inner).hop_limit == 9  # the tunnel is one link: left as received


def check_ecn_dscp_copied(ha):  # RFC5454-3.6-05/06, RFC3168-9.1.1-01
    _registered(ha)
    for tc, expected in ((0xB8 | 2, 0xB8 | 2), (0x20 | 3, 0x20 | 2)):  # EF+ECT(0); CE->ECT(0)
        [out] = [a for a in ha.receive_ipv6(ping6("2001:db8:ff::1", "2001:db8:10:1::5", tc=tc),
                                            Clock.t) if isinstance(a, SendIPv4)]
        assert parse_ipv4(out.packet).tos == expected


def check_static_mtu(ha):  # RFC5454-3.6-03, RFC4213-3.2-02
    _registered(ha)
    actions = ha.receive_ipv6(ping6("2001:db8:ff::1", "2001:db8:10:1::5", size=1300), Clock.t)
    assert not [a for a in actions if isinstance(a, SendIPv4)]
    [ptb] = [a for a in actions if isinstance(a, DeliverIPv6)]
    icmp = parse_ipv6(ptb.packet)
    assert icmp.next_header == 58 and icmp.payload[0] == 2
    assert int.from_bytes(icmp.payload[4:8], "big") == 1280
    [ok] = [a for a in ha.receive_ipv6(ping6("2001:db8:ff::1", "2001:db8:10:1::5", size=1200),
                                       Clock.t) if isinstance(a, SendIPv4)]
    assert not parse_ipv4(ok.packet).df


def check_udp_next_header(ha):  # RFC5454-3.9-02
    _registered(ha, "D", COA, COA, TunnelingMode(), UDPTunnelRequest())
    [out] = [a for a in ha.receive_ipv6(ping6("2001:db8:ff::1", "2001:db8:10:1::5"), Clock.t)
             if isinstance(a, SendUDP)]
    assert out.payload[:2] == bytes([4, 41]) and out.dport == 434


CHECKS = {
    "ha.no-prefix-reply": check_one_reply_per_request,
    "ha.duplicate-prefix-reply": check_no_duplicate_reply,
    "ha.wrong-prefix-echo": check_prefix_echo,
    "ha.no-overlap-check": check_overlap_rejected,
    "ha.coa-code-in-fa-mode": check_code_reflects_mode_in_fa_mode,
    "ha.ignore-tunneling-mode": check_coa_mode_when_colocated,
    "ha.prefix-accept-on-reject": check_header_reject_has_no_accepting_prefix_reply,
    "ha.stray-bits-in-reply": check_stray_bits_zero_in_reply,
    "ha.nonzero-reply-reserved": check_reply_reserved_zero,
    "ha.keep-omitted-prefixes": check_omitted_prefix_removed,
    "ha.keep-after-deregistration": check_deregistration_removes_all,
    "ha.keep-after-expiry": check_expiry_removes_all,
    "ha.no-route-announcement": check_route_announced,
    "ha.skip-auth-check": check_auth_required,
    "ha.skip-identification-check": check_identification,
    "ha.no-lifetime-cap": check_lifetime_capped,
    "ha.accept-unknown-nonskippable": check_unknown_nonskippable_rejected,
    "ha.reject-unknown-skippable": check_unknown_skippable_ignored,
    "ha.tunnel-to-coa-always": check_tunnel_to_hoa,
    "ha.drop-from-hoa": check_accept_from_hoa,
    "ha.accept-spoofed-inner": check_inner_source_checked,
    "ha.accept-any-outer": check_outer_source_checked,
    "ha.no-security-log": check_security_exception_logged,
    "ha.tunnel-counts-as-hop": check_hop_limit,
    "ha.no-ecn-copy": check_ecn_dscp_copied,
    "ha.set-df": check_static_mtu,
    "ha.udp-next-header-4": check_udp_next_header,
}


def check_ignored_tunneling_mode_acts_as_case_1(ha):  # RFC5454-3.3.2-06
    reply = _registered(ha, "D", COA, COA, TunnelingMode())
    assert [r.code for r in reply.prefix_replies] == [0, 0]
    [out] = [a for a in ha.receive_ipv6(ping6("2001:db8:ff::1", "2001:db8:10:1::5"), Clock.t)
             if isinstance(a, SendIPv4)]
    outer = parse_ipv4(out.packet)
    assert (outer.dst, outer.proto) == (COA, 4)
    assert parse_ipv4(outer.payload).dst == HOA


def _tunnelled_or_ptb(ha, size):
    actions = ha.receive_ipv6(ping6("2001:db8:ff::1", "2001:db8:10:1::5", size=size), Clock.t)
    sent = [parse_ipv4(a.packet) for a in actions if isinstance(a, SendIPv4)]
    ptb = [parse_ipv6(a.packet) for a in actions if isinstance(a, DeliverIPv6)]
    return sent, [int.from_bytes(p.payload[4:8], "big") for p in ptb if p.payload[0] == 2]


def check_dynamic_mtu_sets_df(ha):  # RFC5454-3.6-04
    _registered(ha)  # via the FA: two IPv4 headers, so the tunnel MTU is 1500 - 40
    [outer], [] = _tunnelled_or_ptb(ha, 1400)
    assert outer.df and parse_ipv4(outer.payload).df
    assert _tunnelled_or_ptb(ha, 1430) == ([], [1460])


def check_frag_needed_lowers_tunnel_mtu(ha):  # RFC5454-3.6-04, RFC 4213 §3.2
    from conformance.codec.packets import frag_needed

    _registered(ha)
    [outer], _ = _tunnelled_or_ptb(ha, 1400)
    ha.receive_icmpv4(frag_needed("203.0.113.194", outer.to_bytes(), 1400), Clock.t)
    assert _tunnelled_or_ptb(ha, 1400) == ([], [1360])
    [small], [] = _tunnelled_or_ptb(ha, 1300)
    assert small.df
    # A path below 1320 bytes leaves the tunnel at 1280 with DF clear: IPv4 may fragment.
    ha.receive_icmpv4(frag_needed("203.0.113.194", outer.to_bytes(), 1200), Clock.t)
    [low], [] = _tunnelled_or_ptb(ha, 1200)
    assert not low.df


# Optional features: the check runs against an HA configured to claim the feature.
VARIANT_CHECKS = {
    "ha.honour-ignored-tunneling-mode": (check_ignored_tunneling_mode_acts_as_case_1,
                                         {"honour_tunneling_mode": False}),
    "ha.dynamic-mtu-no-df": (check_dynamic_mtu_sets_df, {"dynamic_tunnel_mtu": True}),
    "ha.dynamic-mtu-ignore-frag-needed": (check_frag_needed_lowers_tunnel_mtu,
                                          {"dynamic_tunnel_mtu": True}),
}


@pytest.mark.parametrize("fault", sorted(VARIANT_CHECKS))
def test_optional_rule_holds_on_clean_ha(fault):
    check, config = VARIANT_CHECKS[fault]
    check(make_ha(**config))


@pytest.mark.parametrize("fault", sorted(VARIANT_CHECKS))
def test_optional_rule_breaks_with_its_fault(fault):
    check, config = VARIANT_CHECKS[fault]
    with pytest.raises(AssertionError):
        check(make_ha(fault, **config))


def test_frag_needed_about_foreign_packets_is_ignored():
    from conformance.codec.packets import frag_needed, ipv4_packet

    ha = make_ha(dynamic_tunnel_mtu=True)
    _registered(ha)
    foreign = ipv4_packet("203.0.113.99", FA, 4, bytes(8))  # not sent by the HA
    assert ha.receive_icmpv4(frag_needed("203.0.113.194", foreign, 1300), Clock.t) == []
    assert ha.receive_icmpv4(b"\x45garbage", Clock.t)[0].name == "malformed-dropped"
    [outer], [] = _tunnelled_or_ptb(ha, 1400)


@pytest.mark.parametrize("fault", sorted(CHECKS))
def test_rule_holds_on_clean_ha(fault):
    CHECKS[fault](make_ha())


@pytest.mark.parametrize("fault", sorted(CHECKS))
def test_rule_breaks_with_its_fault(fault):
    with pytest.raises(AssertionError):
        CHECKS[fault](make_ha(fault))


def test_implicit_mode_binds_configured_prefixes():
    ha = make_ha()
    reply, _ = send(ha, rrq(hoa=HOA2, spi=257, key=KEY2))
    assert reply.code == 0 and reply.prefix_replies == []
    assert ha.binding_table(Clock.t)[0]["prefixes"] == [{"prefix": "2001:db8:20::/48",
                                                         "tunnel": "hoa"}]


def test_prefix_outside_policy_is_prohibited():
    reply, _ = send(make_ha(), rrq(PrefixRequest.of("2001:db8:99::/48")))
    assert reply.code == 0 and reply.prefix_replies[0].code == 9


def test_prefix_request_after_auth_is_poorly_formed():
    Clock.t += 1
    req = RegistrationRequest(0, 600, HOA, HA, FA, ntp_time(Clock.t),
                              [AuthExtension(32, 256), P1])
    reply, _ = send(make_ha(), encode(req, {32: KEY}))
    assert reply.code == 134


def test_undecodable_request_is_dropped_and_logged():
    ha = make_ha()
    actions = ha.receive_udp(rrq(P1)[:30], FA, 434, Clock.t)
    assert [a.name for a in actions] == ["decode-error"]
    assert actions[0].data["section"]


def test_every_ha_fault_names_a_catalog_requirement():
    from conformance.catalog import load_catalog

    catalog = load_catalog()
    assert all(req in catalog for reqs in HA_FAULTS.values() for req in reqs)


def test_plain_mipv4_ha_ignores_type_152():
    ha = HomeAgent(ha_config(dsmip=False))
    reply, _ = send(ha, rrq(P1, TunnelingMode()))
    assert reply.code == 0 and reply.prefix_replies == []


def test_a_binding_whose_reply_could_not_be_sent_is_not_kept():
    """Issue 13 item 2: the adapter says a reply was not sent: the MN was never told, so no
    binding and no route stays behind."""
    ha = make_ha()
    reply, actions = send(ha, rrq(P1))
    assert reply.code == 0 and HOA in ha.bindings
    [sent] = [a for a in actions if isinstance(a, SendUDP)]
    undone = ha.reply_not_sent(sent.payload, Clock.t)
    assert HOA not in ha.bindings
    assert {a.name for a in undone if isinstance(a, Event)} == {"route-del", "binding-removed"}
    assert ha.reply_not_sent(sent.payload, Clock.t) == []  # nothing left to undo
    denied, actions = send(ha, rrq(P1, spi=999))
    assert denied.code > 1
    [sent] = [a for a in actions if isinstance(a, SendUDP)]
    assert ha.reply_not_sent(sent.payload, Clock.t) == []  # a denial installed nothing
