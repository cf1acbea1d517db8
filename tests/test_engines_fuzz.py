"""No input crashes a reference node: generated and mutated messages through HA, MN and FA."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.codec import (
    AuthExtension, DecodeError, PrefixRequest, RegistrationReply, RegistrationRequest, decode,
    encode,
)
from conformance.nodes.actions import Event, SendUDP
from conformance.codec.ntp import ntp_time
from conformance.nodes.fa import FAConfig, ForeignAgent
from conformance.nodes.ha import HomeAgent
from conformance.nodes.mn import MobileNode
from memnet import COA, FA, HA, HOA, KEY, START, ha_config, mn_config
from msggen import _extension, random_message

FUZZ_COUNT = 100_000


def _valid_request(rng: random.Random, now: float, odd: bool = False) -> bytes:
    """An authenticated request; `odd` mixes in random (often poorly formed) extensions."""
    exts = [PrefixRequest.of(f"2001:db8:10:{rng.randrange(65536):x}::/64")
            for _ in range(rng.randrange(4))]
    if odd:
        exts += [_extension(rng, False) for _ in range(rng.randrange(1, 4))]
        rng.shuffle(exts)
    req = RegistrationRequest(rng.choice([0, 0x20, 0x02]), rng.choice([0, 60, 600]), HOA, HA,
                              rng.choice([FA, COA]), ntp_time(now), exts + [AuthExtension(32, 256)])
    return encode(req, {32: KEY})


def _mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        choice = rng.randrange(4)
        if choice == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice == 1 and data:
            del data[rng.randrange(len(data)):]
        elif choice == 2:
            data += rng.randbytes(rng.randrange(1, 24))
        elif data:
            pos = rng.randrange(len(data))
            data[pos:pos] = bytes([152, rng.randrange(40), rng.randrange(6)])
    return bytes(data)


def _check(actions, node):
    for action in actions:
        if isinstance(action, SendUDP):
            reply = decode(action.payload)  # whatever a node sends must itself be well formed
            if node == "ha" and isinstance(reply, RegistrationReply) and reply.code == 134:
                assert reply.auth() is not None


def test_ha_mn_fa_survive_100k_generated_and_mutated_messages():
    rng = random.Random(20261122)
    ha, fa, mn = HomeAgent(ha_config()), ForeignAgent(FAConfig(FA)), MobileNode(mn_config())
    mn.attach_colocated(COA, START)
    counts = {"accepted": 0, "rejected": 0, "dropped": 0, "134": 0}
    now = START
    for i in range(FUZZ_COUNT):
        now += 0.001
        kind = i % 5
        if kind == 4:
            payload = _valid_request(rng, now, odd=True)
        elif kind == 0:
            payload = _mutate(rng, _valid_request(rng, now))
        elif kind == 1:
            payload = encode(random_message(rng), {32: KEY})
            if rng.random() < 0.5:
                payload = _mutate(rng, payload)
        elif kind == 2:
            payload = _valid_request(rng, now)
        else:
            payload = rng.randbytes(rng.randrange(60))
        actions = ha.receive_udp(payload, FA, 434, now)
        _check(actions, "ha")
        for a in actions:
            if isinstance(a, Event):
                if a.name == "registration-accepted":
                    counts["accepted"] += 1
                elif a.name == "registration-rejected":
                    counts["rejected"] += 1
                    counts["134"] += a.data["code"] == 134
                elif a.name == "decode-error":
                    counts["dropped"] += 1
        _check(mn.receive_udp(payload, HA, 434, now), "mn")
        _check(fa.receive_udp(payload, HOA, 434, now), "fa")
        if i % 97 == 0:
            ha.receive_ipv4(rng.randbytes(rng.randrange(80)), now)
            mn.receive_ipv4(rng.randbytes(rng.randrange(80)), now)
            fa.receive_ipv4(rng.randbytes(rng.randrange(80)), now)
            ha.receive_ipv6(rng.randbytes(rng.randrange(80)), now)
    # The run exercised every path: accepted, rejected (including 134) and dropped input.
    assert all(counts[k] > 100 for k in counts), counts


@settings(max_examples=2_000, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 3))
def test_ha_data_plane_survives_any_packet(data, proto_choice):
    from conformance.codec.packets import ipv4_packet

    ha = HomeAgent(ha_config())
    proto = [4, 41, 47, 17][proto_choice]
    ha.receive_ipv4(ipv4_packet(HOA, HA, proto, data), START)
    ha.receive_ipv6(data, START)


def test_malformed_but_decodable_request_gets_134():
    from conformance.codec import RawExtension

    ha = HomeAgent(ha_config())
    req = RegistrationRequest(0, 600, HOA, HA, FA, ntp_time(START),
                              [RawExtension(7, b"x"), AuthExtension(32, 256)])
    actions = ha.receive_udp(encode(req, {32: KEY}), FA, 434, START)
    [reply] = [decode(a.payload) for a in actions if isinstance(a, SendUDP)]
    assert reply.code == 134
    actions = ha.receive_udp(encode(req, {32: KEY})[:-3], FA, 434, START)
    assert [a.name for a in actions] == ["decode-error"]
    assert not isinstance(DecodeError, type(None))
