"""MN rules of RFC 5454 §3.1/§3.5 and the FA's relay rules, each shown to fail with its fault."""

import ipaddress

import pytest

from conformance.codec import (
    AuthExtension, PrefixReply, PrefixRequest, RawExtension, RegistrationReply, TunnelingMode,
    decode, encode, verify_authenticator,
)
from conformance.codec.packets import IPv6, addr6, parse_ipv4
from conformance.nodes.actions import Event, SendIPv4, SendUDP
from conformance.nodes.fa import FAConfig, ForeignAgent
from conformance.nodes.faults import FA_FAULTS, MN_FAULTS, engine_for
from conformance.nodes.mn import MobileNode
from conformance.codec.tunnel import encapsulate
from memnet import COA, FA, HA, HOA, KEY, START, MemNet, mn_config

P1, P2 = "2001:db8:10:1::/64", "2001:db8:10:2::/64"


def make_mn(*faults, **kw) -> MobileNode:
    return engine_for("mn", mn_config(faults=frozenset(faults), **kw))


def attach(mn, colocated=False):
    actions = mn.attach_colocated(COA, START) if colocated else mn.attach_fa(FA, START)
    [send] = [a for a in actions if isinstance(a, SendUDP)]
    return decode(send.payload), send


def answer(mn, request, prefix_replies, code=0, lifetime=600, key=KEY):
    """The HA's reply, built by hand so the MN's reading of it can be judged."""
    reply = RegistrationReply(code, lifetime, HOA, HA, request.identification,
                              list(prefix_replies) + [AuthExtension(32, 256)])
    return mn.receive_udp(encode(reply, {32: key}), FA, 434, START + 0.1)


def reply_for(net: str, code: int) -> PrefixReply:
    return PrefixReply.answering(PrefixRequest.of(net), code)


# --------------------------------------------------------------------- checks, one per rule

def check_request_layout(mn):  # RFC5454-3.1-03/-04
    request, send = attach(mn)
    kinds = [type(e).__name__ for e in request.extensions]
    assert kinds[-1] == "AuthExtension", kinds
    assert verify_authenticator(send.payload, request, KEY)


def check_no_tunnel_mode_in_fa_mode(mn):  # RFC5454-3.5-14
    request, _ = attach(mn)
    assert not request.find(TunnelingMode)


def check_stray_bits_zero(mn):  # RFC5454-2.1-01
    request, _ = attach(mn)
    assert not [o for o in request.observations if o.rule == "RFC5454-2.1-01"]


def check_reserved_flags_zero(mn):  # RFC3344-3.3-01
    request, _ = attach(mn)
    assert not request.flag("r") and not request.flag("x")


def check_unmatched_reply_ignored(mn):  # RFC5454-3.5-06
    request, _ = attach(mn)
    answer(mn, request, [reply_for(P1, 0), reply_for(P2, 0), reply_for("2001:db8:99::/48", 0)])
    assert set(mn.accepted_prefixes()) == {P1, P2}


def check_missing_reply_is_rejection(mn):  # RFC5454-3.5-07
    request, _ = attach(mn)
    answer(mn, request, [reply_for(P1, 0)])
    assert set(mn.accepted_prefixes()) == {P1}


def check_codes(mn):  # RFC5454-3.5-08, RFC5454-5-02
    request, _ = attach(mn, colocated=True)
    answer(mn, request, [reply_for(P1, 9), reply_for(P2, 5)])
    assert mn.accepted_prefixes() == {P2: "hoa"}


def check_reserved_accept_codes(mn):  # RFC5454-5-02
    request, _ = attach(mn)
    answer(mn, request, [reply_for(P1, 2), reply_for(P2, 10)])
    assert mn.accepted_prefixes() == {P1: "hoa"}


def check_header_reject_wins(mn):  # RFC5454-3.2-D1
    request, _ = attach(mn)
    answer(mn, request, [reply_for(P1, 0), reply_for(P2, 0)], code=129)
    assert mn.accepted_prefixes() == {} and not mn.registered


def check_code_1_in_fa_mode_is_hoa(mn):  # RFC5454-3.5-12
    request, _ = attach(mn)
    answer(mn, request, [reply_for(P1, 1), reply_for(P2, 0)])
    assert mn.accepted_prefixes() == {P1: "hoa", P2: "hoa"}


def check_code_0_uses_hoa_tunnel(mn):  # RFC5454-3.5-09
    request, _ = attach(mn, colocated=True)
    answer(mn, request, [reply_for(P1, 0), reply_for(P2, 1)])
    assert mn.accepted_prefixes() == {P1: "hoa", P2: "coa"}
    [pkt] = [a for a in mn.send_ipv6(IPv6(addr6("2001:db8:10:1::5"), addr6("2001:db8:ff::1"),
                                          59, b"").to_bytes(), START + 1)
             if isinstance(a, SendIPv4)]
    outer = parse_ipv4(pkt.packet)
    assert outer.proto == 4 and parse_ipv4(outer.payload).src == HOA


def check_fallback_without_prefix_replies(mn):  # RFC5454-3.5-04/-05
    request, _ = attach(mn)
    answer(mn, request, [])
    assert mn.registered and mn.ha_supports_dsmip is False and mn.accepted_prefixes() == {}


def check_reply_auth_checked(mn):  # RFC3344-3.6.2.1-01
    request, _ = attach(mn)
    actions = answer(mn, request, [reply_for(P1, 0), reply_for(P2, 0)], key=bytes(16))
    assert not mn.registered
    assert [a.name for a in actions] == ["reply-ignored"]


def check_reregisters_before_expiry(mn):  # RFC3344-3.6.3-01
    request, _ = attach(mn)
    answer(mn, request, [reply_for(P1, 0), reply_for(P2, 0)], lifetime=100)
    t = mn.next_timer()
    assert t is not None and t < START + 100
    assert [a for a in mn.handle_timer(t) if isinstance(a, SendUDP)]


def check_mld_over_hoa(mn):  # RFC5454-3.3.3-01
    request, _ = attach(mn, colocated=True)
    answer(mn, request, [reply_for(P1, 1), reply_for(P2, 1)])
    [pkt] = [a for a in mn.join_group("ff0e::5", START + 1) if isinstance(a, SendIPv4)]
    outer = parse_ipv4(pkt.packet)
    assert outer.proto == 4 and parse_ipv4(outer.payload).src == HOA


def _from_stack(mn, src, size):
    """What the MN does with an IPv6 packet of `size` bytes its own stack sends."""
    packet = IPv6(addr6(src), addr6("2001:db8:ff::1"), 59, bytes(size - 40)).to_bytes()
    return mn.send_ipv6(packet, START + 1)


def check_packet_too_big_into_stack(mn):  # RFC4213-3.2-02
    from conformance.nodes.actions import DeliverIPv6

    request, _ = attach(mn)
    answer(mn, request, [reply_for(P1, 0), reply_for(P2, 0)])
    actions = _from_stack(mn, "2001:db8:10:1::1", 1348)
    assert not [a for a in actions if isinstance(a, SendIPv4)]
    [ptb] = [a for a in actions if isinstance(a, DeliverIPv6)]
    assert ptb.packet[40] == 2 and int.from_bytes(ptb.packet[44:48], "big") == 1280
    assert ptb.packet[24:40] == addr6("2001:db8:10:1::1")  # back to the sender
    assert [a for a in _from_stack(mn, "2001:db8:10:1::1", 1280) if isinstance(a, SendIPv4)]


def check_implicit_prefixes_over_hoa_tunnel(mn):  # RFC5454-1.4-01
    request, _ = attach(mn)
    assert request.prefix_requests == []
    answer(mn, request, [])
    assert mn.accepted_prefixes() == {"2001:db8:20::/48": "hoa"}
    [pkt] = [a for a in _from_stack(mn, "2001:db8:20::1", 100) if isinstance(a, SendIPv4)]
    outer = parse_ipv4(pkt.packet)
    assert (outer.src, outer.dst, outer.proto) == (HOA, HA, 41)


def check_dynamic_mtu_sets_df(mn):  # RFC5454-3.6-04
    request, _ = attach(mn)
    answer(mn, request, [reply_for(P1, 0), reply_for(P2, 0)])
    [pkt] = [a for a in _from_stack(mn, "2001:db8:10:1::1", 1400) if isinstance(a, SendIPv4)]
    assert parse_ipv4(pkt.packet).df
    assert not [a for a in _from_stack(mn, "2001:db8:10:1::1", 1481) if isinstance(a, SendIPv4)]


# Optional features: the check runs against an MN configured to claim the feature.
VARIANT_CHECKS = {
    "mn.implicit-prefixes-not-tunnelled": (check_implicit_prefixes_over_hoa_tunnel, dict(
        prefixes=[], implicit_prefixes=[ipaddress.IPv6Network("2001:db8:20::/48")])),
    "mn.dynamic-mtu-no-df": (check_dynamic_mtu_sets_df, {"dynamic_tunnel_mtu": True}),
}


@pytest.mark.parametrize("fault", sorted(VARIANT_CHECKS))
def test_optional_rule_holds_on_clean_mn(fault):
    check, config = VARIANT_CHECKS[fault]
    check(make_mn(**config))


@pytest.mark.parametrize("fault", sorted(VARIANT_CHECKS))
def test_optional_rule_breaks_with_its_fault(fault):
    check, config = VARIANT_CHECKS[fault]
    with pytest.raises(AssertionError):
        check(make_mn(fault, **config))


CHECKS = {
    "mn.extensions-after-auth": check_request_layout,
    "mn.tunnel-mode-ext-in-fa-mode": check_no_tunnel_mode_in_fa_mode,
    "mn.stray-prefix-bits": check_stray_bits_zero,
    "mn.nonzero-reserved-flags": check_reserved_flags_zero,
    "mn.accept-unmatched-reply": check_unmatched_reply_ignored,
    "mn.missing-reply-accepted": check_missing_reply_is_rejection,
    "mn.ignore-prefix-code": check_codes,
    "mn.reserved-codes-rejected": check_reserved_accept_codes,
    "mn.ignore-header-reject": check_header_reject_wins,
    "mn.coa-tunnel-in-fa-mode": check_code_1_in_fa_mode_is_hoa,
    "mn.ipv6-via-coa-on-code-0": check_code_0_uses_hoa_tunnel,
    "mn.no-fallback": check_fallback_without_prefix_replies,
    "mn.accept-bad-reply-auth": check_reply_auth_checked,
    "mn.no-reregistration": check_reregisters_before_expiry,
    "mn.mld-via-coa": check_mld_over_hoa,
    "mn.no-packet-too-big": check_packet_too_big_into_stack,
}


@pytest.mark.parametrize("fault", sorted(CHECKS))
def test_rule_holds_on_clean_mn(fault):
    CHECKS[fault](make_mn())


@pytest.mark.parametrize("fault", sorted(CHECKS))
def test_rule_breaks_with_its_fault(fault):
    with pytest.raises(AssertionError):
        CHECKS[fault](make_mn(fault))


def test_tunnel_mode_extension_only_when_colocated_and_wanted():
    request, _ = attach(make_mn(), colocated=True)
    assert len(request.find(TunnelingMode)) == 1
    request, _ = attach(make_mn(request_coa_tunnel=False), colocated=True)
    assert not request.find(TunnelingMode)


def test_udp_encapsulation_field_zero():
    request, _ = attach(make_mn(udp_tunnelling=True), colocated=True)
    assert [e.encapsulation for e in request.extensions if e.type == 144] == [0]
    request, _ = attach(make_mn("mn.udp-encapsulation-nonzero", udp_tunnelling=True),
                        colocated=True)
    assert [e.encapsulation for e in request.extensions if e.type == 144] != [0]


def test_code_133_resynchronises_and_retries():
    mn = make_mn()
    request, _ = attach(mn)
    reply = RegistrationReply(133, 0, HOA, HA, ((request.identification >> 32) + 100) << 32
                              | (request.identification & 0xFFFFFFFF), [AuthExtension(32, 256)])
    actions = mn.receive_udp(encode(reply, {32: KEY}), FA, 434, START + 0.1)
    [retry] = [a for a in actions if isinstance(a, SendUDP)]
    assert (decode(retry.payload).identification >> 32) >= (request.identification >> 32) + 99


def test_retransmits_with_backoff_then_gives_up():
    mn = make_mn()
    attach(mn)
    times = []
    for _ in range(10):
        t = mn.next_timer()
        if t is None:
            break
        times.append(t - START)
        mn.handle_timer(t)
    assert times == [1.0, 3.0, 7.0, 15.0, 31.0]


def test_every_mn_and_fa_fault_names_a_catalog_requirement():
    from conformance.catalog import load_catalog

    catalog = load_catalog()
    assert all(req in catalog for reqs in list(MN_FAULTS.values()) + list(FA_FAULTS.values())
               for req in reqs)


# --------------------------------------------------------------------- FA

def _fa_relay(fa):
    mn = make_mn()
    request, send = attach(mn)
    actions = fa.receive_udp(send.payload, HOA, 434, START)
    return send, [a for a in actions if isinstance(a, SendUDP)]


@pytest.mark.parametrize("faults,untouched", [((), True),
                                              (("fa.strip-unknown-skippable",), False)])
def test_fa_relays_type_152_untouched(faults, untouched):
    send, relayed = _fa_relay(engine_for("fa", FAConfig(FA, faults=frozenset(faults))))
    assert len(relayed) == 1 and relayed[0].dst == HA
    assert (relayed[0].payload == send.payload) is untouched


FA_HA_KEY = bytes.fromhex("a5" * 16)


def _fa_with_association(*faults):
    return engine_for("fa", FAConfig(FA, home_agents={HA: (300, FA_HA_KEY)},
                                     faults=frozenset(faults)))


def check_fa_ha_auth_appended(fa):  # RFC3344-3.5.1-01
    send, [relayed] = _fa_relay(fa)
    message = decode(relayed.payload)
    assert relayed.payload[:len(send.payload)] == send.payload  # MN's part untouched
    assert [e.type for e in message.extensions][-2:] == [32, 34]
    assert message.auth(34).spi == 300
    assert verify_authenticator(relayed.payload, message, FA_HA_KEY, 34)


def _reply_through(fa, fa_ha_key):
    send, [relayed] = _fa_relay(fa)
    request = decode(send.payload)
    reply = RegistrationReply(0, 600, HOA, HA, request.identification,
                              [AuthExtension(32, 256)] +
                              ([AuthExtension(34, 300)] if fa_ha_key else []))
    keys = {32: KEY, **({34: fa_ha_key} if fa_ha_key else {})}
    return fa.receive_udp(encode(reply, keys), HA, 434, START + 0.1)


def check_fa_ha_auth_checked(fa):  # RFC3344-3.7.3.1-01
    for key in (bytes(16), None):  # wrong key, then no FA-HA extension at all
        actions = _reply_through(fa, key)
        [sent] = [a for a in actions if isinstance(a, SendUDP)]
        assert decode(sent.payload).code == 68 and sent.dst == HOA
        assert "security-exception" in [a.name for a in actions if isinstance(a, Event)]
        assert fa.visitor_list(START) == []
    [sent] = [a for a in _reply_through(fa, FA_HA_KEY) if isinstance(a, SendUDP)]
    relayed = decode(sent.payload)
    assert relayed.code == 0 and relayed.auth(34) is None  # the FA's own extension removed
    assert verify_authenticator(sent.payload, relayed, KEY)


@pytest.mark.parametrize("fault,check", [
    ("fa.fa-ha-auth-over-header-only", check_fa_ha_auth_appended),
    ("fa.accept-bad-fa-ha-auth", check_fa_ha_auth_checked)])
def test_fa_ha_authentication_rule_and_its_fault(fault, check):
    check(_fa_with_association())
    with pytest.raises(AssertionError):
        check(_fa_with_association(fault))


def test_fa_relays_reply_and_adds_visitor_then_decapsulates():
    net = MemNet()
    net.mn_do("attach_fa", FA)
    assert [v["home_address"] for v in net.fa.visitor_list(net.now)] == [HOA]
    inner = encapsulate(IPv6(addr6("2001:db8:ff::1"), addr6("2001:db8:10:1::1"), 59,
                             b"").to_bytes(), True, HA, HOA, "ipip")[1]
    outer = encapsulate(inner, False, HA, FA, "ipip")[1]
    assert [a.packet for a in net.fa.receive_ipv4(outer, net.now)
            if isinstance(a, SendIPv4)] == [inner]
    faulty = engine_for("fa", FAConfig(FA, faults=frozenset({"fa.drop-tunnelled-traffic"})))
    net2 = MemNet(fa=faulty)
    net2.mn_do("attach_fa", FA)
    assert not [a for a in faulty.receive_ipv4(outer, net2.now) if isinstance(a, SendIPv4)]


def test_fa_denies_too_long_lifetime_and_times_out():
    fa = ForeignAgent(FAConfig(FA, max_lifetime=100))
    mn = make_mn()
    _, send = attach(mn)
    actions = fa.receive_udp(send.payload, HOA, 434, START)
    [deny] = [a for a in actions if isinstance(a, SendUDP)]
    assert decode(deny.payload).code == 69
    fa = ForeignAgent(FAConfig(FA))
    fa.receive_udp(send.payload, HOA, 434, START)
    actions = fa.handle_timer(fa.next_timer())
    assert decode([a for a in actions if isinstance(a, SendUDP)][0].payload).code == 78


def test_fa_drops_undecodable_and_logs():
    fa = ForeignAgent(FAConfig(FA))
    actions = fa.receive_udp(b"\x01\x00", HOA, 434, START)
    assert [a.name for a in actions if isinstance(a, Event)] == ["decode-error"]
