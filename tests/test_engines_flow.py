"""End-to-end flows of the reference MN, FA and HA in memory with a fake clock."""

import ipaddress

from conformance.codec import RegistrationReply, decode
from conformance.codec.packets import IPv6, addr6, parse_ipv4, parse_ipv6
from conformance.nodes.actions import SendIPv4, SendUDP
from memnet import COA, FA, HA, HOA, MemNet, ha_config, mn_config
from conformance.nodes.ha import HomeAgent
from conformance.nodes.mn import MobileNode

CN = addr6("2001:db8:ff::1")


def ping6(src: str, dst: str, payload=b"ping", hop_limit=64, tc=0) -> bytes:
    return IPv6(addr6(src), addr6(dst), 59, payload, hop_limit, tc).to_bytes()


def test_register_two_prefixes_through_fa_and_ping_both_ways():
    net = MemNet()
    net.mn_do("attach_fa", FA)
    status = net.mn.status(net.now)
    assert status["registered"] and status["ha_supports_dsmip"] is True
    assert net.mn.accepted_prefixes() == {"2001:db8:10:1::/64": "hoa",
                                          "2001:db8:10:2::/64": "hoa"}
    table = net.ha.binding_table(net.now)
    assert table[0]["care_of_address"] == FA
    assert [p["prefix"] for p in table[0]["prefixes"]] == ["2001:db8:10:1::/64",
                                                           "2001:db8:10:2::/64"]
    assert [e.data["prefix"] for e in net.events("ha", "route-add")] == [
        "2001:db8:10:1::/64", "2001:db8:10:2::/64"]
    # The FA relayed the request with its type-152 extensions untouched.
    relayed = [a for frm, to, a in net.wire if frm == "fa" and to == "ha"][0]
    sent = [a for frm, to, a in net.wire if frm == "mn" and to == "fa"][0]
    assert relayed.payload == sent.payload

    # CN -> MN: double encapsulation HA -> FA (IP-in-IP) -> HoA (IPv6 in IPv4).
    net.from_cn(ping6("2001:db8:ff::1", "2001:db8:10:1::5"))
    outer_pkt = [a for frm, to, a in net.wire if frm == "ha" and isinstance(a, SendIPv4)][0]
    outer = parse_ipv4(outer_pkt.packet)
    assert (outer.src, outer.dst, outer.proto) == (HA, FA, 4)
    middle = parse_ipv4(outer.payload)
    assert (middle.src, middle.dst, middle.proto) == (HA, HOA, 41)
    assert len(net.mn_received) == 1
    assert parse_ipv6(net.mn_received[0]).hop_limit == 64  # the tunnel is one link

    # MN -> CN: IPv6 in IPv4 from the HoA, accepted and forwarded by the HA.
    net.mn_do("send_ipv6", ping6("2001:db8:10:2::5", "2001:db8:ff::1"))
    assert len(net.cn_received) == 1
    assert parse_ipv6(net.cn_received[0]).src == addr6("2001:db8:10:2::5")


def test_colocated_coa_tunnel_mode_negotiated():
    net = MemNet()
    net.mn_do("attach_colocated", COA)
    assert net.mn.accepted_prefixes() == {"2001:db8:10:1::/64": "coa",
                                          "2001:db8:10:2::/64": "coa"}
    net.from_cn(ping6("2001:db8:ff::1", "2001:db8:10:1::5"))
    pkt = [a for frm, to, a in net.wire if frm == "ha" and isinstance(a, SendIPv4)][0]
    outer = parse_ipv4(pkt.packet)
    assert (outer.src, outer.dst, outer.proto) == (HA, COA, 41)
    assert len(net.mn_received) == 1
    net.mn_do("send_ipv6", ping6("2001:db8:10:1::5", "2001:db8:ff::1"))
    pkt = [a for frm, to, a in net.wire if frm == "mn" and isinstance(a, SendIPv4)][-1]
    assert (parse_ipv4(pkt.packet).src, parse_ipv4(pkt.packet).proto) == (COA, 41)
    assert len(net.cn_received) == 1


def test_colocated_without_tunnel_mode_extension_uses_hoa_tunnel():
    net = MemNet(mn=MobileNode(mn_config(request_coa_tunnel=False)))
    net.mn_do("attach_colocated", COA)
    assert set(net.mn.accepted_prefixes().values()) == {"hoa"}
    net.from_cn(ping6("2001:db8:ff::1", "2001:db8:10:1::5"))
    pkt = [a for frm, to, a in net.wire if frm == "ha" and isinstance(a, SendIPv4)][0]
    outer = parse_ipv4(pkt.packet)
    assert (outer.dst, outer.proto) == (COA, 4)
    assert parse_ipv4(outer.payload).dst == HOA
    assert len(net.mn_received) == 1


def test_gre_encapsulation_to_colocated_coa():
    net = MemNet(mn=MobileNode(mn_config(gre=True)))
    net.mn_do("attach_colocated", COA)
    net.from_cn(ping6("2001:db8:ff::1", "2001:db8:10:1::5"))
    pkt = [a for frm, to, a in net.wire if frm == "ha" and isinstance(a, SendIPv4)][0]
    outer = parse_ipv4(pkt.packet)
    assert outer.proto == 47 and outer.payload[2:4] == b"\x86\xdd"
    assert len(net.mn_received) == 1
    net.mn_do("send_ipv6", ping6("2001:db8:10:1::5", "2001:db8:ff::1"))
    assert len(net.cn_received) == 1


def test_udp_tunnelling_next_header_41():
    net = MemNet(mn=MobileNode(mn_config(udp_tunnelling=True)))
    net.mn_do("attach_colocated", COA)
    assert net.mn.udp_tunnel
    net.from_cn(ping6("2001:db8:ff::1", "2001:db8:10:1::5"))
    pkt = [a for frm, to, a in net.wire if frm == "ha" and isinstance(a, SendUDP)][-1]
    assert pkt.payload[:2] == bytes([4, 41])
    assert len(net.mn_received) == 1
    net.mn_do("send_ipv6", ping6("2001:db8:10:1::5", "2001:db8:ff::1"))
    assert len(net.cn_received) == 1


def test_spoofed_inner_source_is_dropped_and_logged():
    net = MemNet()
    net.mn_do("attach_colocated", COA)
    # Forge a packet from the CoA whose inner source is under nobody's prefix.
    from conformance.codec.tunnel import encapsulate
    _, pkt = encapsulate(ping6("2001:db8:99::1", "2001:db8:ff::1"), True, COA, HA, "ipip")
    net.run("mn", [SendIPv4(pkt)])
    assert net.cn_received == []
    [event] = net.events("ha", "security-exception")
    assert event.data["mobile_node"] == HOA and event.data["outer_src"] == COA
    assert event.data["inner_src"] == "2001:db8:99::1"


def test_unregistered_outer_source_is_dropped_and_logged():
    net = MemNet()
    net.mn_do("attach_colocated", COA)
    from conformance.codec.tunnel import encapsulate
    _, pkt = encapsulate(ping6("2001:db8:10:1::5", "2001:db8:ff::1"), True, "203.0.113.99",
                         HA, "ipip")
    net.run("x", [])
    actions = net.ha.receive_ipv4(pkt, net.now)
    assert [a.name for a in actions] == ["security-exception"]
    assert actions[0].data["outer_src"] == "203.0.113.99"


def test_dynamic_delegation_end_to_end():
    net = MemNet(mn=MobileNode(mn_config(prefixes=[], dynamic_delegation=True)))
    net.mn_do("attach_fa", FA)
    sent = [e.data for e in net.events("mn", "registration-sent")]
    assert sent[0]["prefixes"] == []  # the HoA first
    assert sent[1]["prefixes"] == ["fe80::cb00:710a"]  # then the link-local, length 255
    assert sent[2]["prefixes"] == ["fe80::cb00:710a", "2001:db8:100::/56"]
    assert net.mn.delegated == [ipaddress.IPv6Network("2001:db8:100::/56")]
    assert net.mn.accepted_prefixes()["2001:db8:100::/56"] == "hoa"
    net.from_cn(ping6("2001:db8:ff::1", "2001:db8:100::5"))
    assert len(net.mn_received) == 1


def test_plain_mipv4_ha_makes_mn_fall_back():
    net = MemNet(ha=HomeAgent(ha_config(dsmip=False)))
    net.mn_do("attach_fa", FA)
    assert net.mn.registered and net.mn.ha_supports_dsmip is False
    assert net.mn.accepted_prefixes() == {}
    assert net.events("mn", "ha-without-dsmip")


def test_lifetime_expiry_removes_everything_and_reregistration_keeps_it():
    net = MemNet()
    net.mn_do("attach_fa", FA)
    net.advance(1700)  # the MN re-registers before expiry
    assert net.ha.binding_table(net.now)
    assert len(net.events("mn", "registration-sent")) == 2
    ha_only = MemNet()
    ha_only.mn_do("attach_fa", FA)
    ha_only.mn._reregister_at = None  # the MN goes silent
    ha_only.advance(1801)
    assert ha_only.ha.binding_table(ha_only.now) == []
    assert len(ha_only.ha.table) == 0
    assert [e.data["prefix"] for e in ha_only.events("ha", "route-del")] == [
        "2001:db8:10:1::/64", "2001:db8:10:2::/64"]


def test_reregistration_without_a_prefix_removes_it_and_zero_lifetime_removes_all():
    net = MemNet()
    net.mn_do("attach_fa", FA)
    net.mn.config.prefixes = net.mn.config.prefixes[:1]
    net.mn_do("attach_fa", FA)
    assert [p["prefix"] for p in net.ha.binding_table(net.now)[0]["prefixes"]] == [
        "2001:db8:10:1::/64"]
    net.mn_do("deregister")
    assert net.ha.binding_table(net.now) == [] and len(net.ha.table) == 0


def test_mld_join_over_hoa_tunnel_and_multicast_delivery():
    net = MemNet()
    net.mn_do("attach_colocated", COA)
    net.mn_do("join_group", "ff0e::1:5")
    [event] = net.events("ha", "mld-membership")
    assert event.data["joined"] == ["ff0e::1:5"] and event.data["via"] == "hoa"
    net.from_cn(ping6("2001:db8:ff::1", "ff0e::1:5"))
    assert len(net.mn_received) == 1


def test_neighbor_discovery_over_the_tunnel_rfc4213_3_8():
    from conformance.codec.packets import icmpv6_packet, tunnel_link_local
    from conformance.codec.tunnel import encapsulate

    net = MemNet()
    net.mn_do("attach_colocated", COA)
    mn_ll, ha_ll = tunnel_link_local(HOA), tunnel_link_local(HA)
    ns = icmpv6_packet(mn_ll, ha_ll, 135, 0, bytes(4) + ha_ll, hop_limit=255)
    _, middle = encapsulate(ns, True, HOA, HA, "ipip")
    _, outer = encapsulate(middle, False, COA, HA, "ipip")
    net.run("mn", [SendIPv4(outer)])
    assert len(net.mn_received) == 1  # the HA's answer reached the MN's stack
    advert = [a for frm, to, a in net.wire if frm == "ha" and isinstance(a, SendIPv4)][-1]
    inner = parse_ipv6(parse_ipv4(parse_ipv4(advert.packet).payload).payload)
    assert inner.next_header == 58 and inner.payload[0] == 136 and inner.hop_limit == 255
    assert inner.payload[8:24] == ha_ll and inner.dst == mn_ll
    assert len(inner.payload) == 24  # no link-layer address option on a tunnel
