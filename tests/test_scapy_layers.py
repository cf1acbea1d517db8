"""Differential tests: the codec and the scapy layers read the same bytes the same way."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.codec import AuthExtension, PrefixRequest, RegistrationRequest, decode, encode
from conformance.scapy_layers import (
    IP, UDP, DSMIPRegistrationRequest, DSMIPv4PrefixRequest, IPv6, MobileIP, MobileIPTunnelData,
)
from msggen import KEY, random_message
from scapy_view import codec_view, scapy_view


@settings(max_examples=1_500, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_codec_and_scapy_agree_on_generated_messages(seed):
    data = encode(random_message(random.Random(seed)), {32: KEY})
    assert scapy_view(data) == codec_view(decode(data))


def test_scapy_builds_what_the_codec_reads():
    pkt = MobileIP(type=1) / DSMIPRegistrationRequest(
        D=1, T=1, lifetime=600, homeaddr="203.0.113.10", haaddr="203.0.113.1",
        coaddr="203.0.113.130", id=7,
        extensions=[DSMIPv4PrefixRequest(prefix_length=48, prefix="2001:db8:10::")])
    msg = decode(bytes(pkt))
    assert msg.flag("D") and msg.flag("T") and msg.lifetime == 600
    assert msg.prefix_requests[0].prefix_text == "2001:db8:10::"


def test_udp_434_dissects_to_the_dsmip_layers():
    payload = encode(RegistrationRequest(extensions=[PrefixRequest.of("2001:db8::/32"),
                                                     AuthExtension(32, 256)]), {32: KEY})
    pkt = IP(bytes(IP() / UDP(sport=434, dport=434) / payload))
    assert pkt.haslayer(DSMIPRegistrationRequest)
    assert pkt[DSMIPv4PrefixRequest].prefix == "2001:db8::"


def test_tunnel_data_carries_ipv6():
    data = bytes(IP() / UDP(sport=434, dport=434) / MobileIP(type=4)
                 / MobileIPTunnelData(nexthdr=41) / IPv6(src="2001:db8::1", dst="2001:db8::2"))
    pkt = IP(data)
    assert pkt[IPv6].dst == "2001:db8::2"
