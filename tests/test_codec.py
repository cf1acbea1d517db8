"""Codec: layouts byte by byte, round trips, typed errors and observations."""

import hashlib
import struct

import pytest

from conformance.codec import (
    AuthExtension, DecodeError, DSMIPUnknown, EncodeError, LongExtension, NAIExtension,
    PrefixReply, PrefixRequest, RawExtension, RegistrationReply, RegistrationRequest, TunnelData,
    TunnelingMode, UDPTunnelReply, UDPTunnelRequest, decode, encode, verify_authenticator,
)

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def hmac_md5(key: bytes, data: bytes) -> bytes:
    """RFC 2104 written out, so the codec is not checked against the module it uses."""
    block = key.ljust(64, b"\0")
    inner = hashlib.md5(bytes(b ^ 0x36 for b in block) + data).digest()
    return hashlib.md5(bytes(b ^ 0x5C for b in block) + inner).digest()


def request(*exts, **fields):
    base = dict(flags=0x02, lifetime=1800, home_address="203.0.113.10",
                home_agent="203.0.113.1", care_of_address="203.0.113.65",
                identification=0x0102030405060708)
    base.update(fields)
    return RegistrationRequest(extensions=list(exts), **base)


def test_request_header_layout_rfc3344_3_3():
    data = encode(request())
    assert data == (bytes([1, 0x02]) + struct.pack("!H", 1800) + bytes([203, 0, 113, 10])
                    + bytes([203, 0, 113, 1]) + bytes([203, 0, 113, 65])
                    + bytes.fromhex("0102030405060708"))


def test_reply_header_layout_rfc3344_3_4():
    data = encode(RegistrationReply(code=134, lifetime=0, home_address="203.0.113.10",
                                    home_agent="203.0.113.1", identification=5))
    assert data == bytes([3, 134, 0, 0, 203, 0, 113, 10, 203, 0, 113, 1]) + (5).to_bytes(8, "big")


def test_prefix_request_layout_rfc5454_2_1():
    data = encode(request(PrefixRequest.of("2001:db8:10::/48")))
    assert data[24:] == bytes([152, 18, 1, 48]) + bytes.fromhex("20010db8001000000000000000000000")


def test_prefix_reply_layout_rfc5454_2_2():
    reply = RegistrationReply(extensions=[PrefixReply(1, 48, PrefixRequest.of(
        "2001:db8:10::/48").prefix)])
    data = encode(reply)
    assert data[20:] == bytes([152, 20, 2, 1, 48, 0]) + bytes.fromhex(
        "20010db8001000000000000000000000")


def test_tunneling_mode_layout_rfc5454_2_3():
    assert encode(request(TunnelingMode()))[24:] == bytes([152, 2, 3, 0])


def test_udp_tunnel_request_and_reply_layout_rfc3519():
    data = encode(request(UDPTunnelRequest(encapsulation=0, force=True)))
    assert data[24:] == bytes([144, 6, 0, 0, 0x80, 0, 0, 0])
    data = encode(RegistrationReply(extensions=[UDPTunnelReply(code=0, keepalive=110)]))
    assert data[20:] == bytes([44, 6, 0, 0, 0, 0, 0, 110])


def test_every_extension_round_trips():
    exts = [PrefixRequest.of("2001:db8:10::/48"), PrefixRequest.of("fe80::cb00:710a"),
            TunnelingMode(), DSMIPUnknown(9, b"ab"), NAIExtension(b"mn@example.com"),
            UDPTunnelRequest(encapsulation=0), RawExtension(200, b"xyz"),
            LongExtension(38, 0, b"\0\0\0\1hello"), AuthExtension(32, 256)]
    data = encode(request(*exts), {32: KEY})
    msg = decode(data)
    assert msg.extensions[:-1] == exts[:-1]
    assert msg.extensions[-1].spi == 256 and len(msg.extensions[-1].authenticator) == 16
    assert encode(msg) == data
    assert [e.offset for e in msg.extensions] == [24, 44, 64, 68, 73, 89, 97, 102, 115]


def test_tunnel_data_round_trip_and_layout():
    data = encode(TunnelData(41, b"\x60payload"))
    assert data == bytes([4, 41, 0, 0]) + b"\x60payload"
    assert decode(data) == TunnelData(41, b"\x60payload")


def test_authenticator_covers_message_up_to_spi_rfc3344_3_5_1():
    data = encode(request(PrefixRequest.of("2001:db8:10::/48"), AuthExtension(32, 256)),
                  {32: KEY})
    auth_offset = 24 + 20
    assert data[auth_offset:auth_offset + 6] == bytes([32, 20, 0, 0, 1, 0])
    assert data[auth_offset + 6:] == hmac_md5(KEY, data[:auth_offset + 6])
    msg = decode(data)
    assert verify_authenticator(data, msg, KEY) is True
    assert verify_authenticator(data, msg, bytes(16)) is False


@pytest.mark.parametrize("position", range(44))
def test_any_change_before_the_authenticator_breaks_it(position):
    data = bytearray(encode(request(PrefixRequest.of("2001:db8:10::/48"),
                                    AuthExtension(32, 256)), {32: KEY}))
    data[position] ^= 0x01
    try:
        msg = decode(bytes(data))
    except DecodeError:
        return  # the flipped bit made the message unreadable: no authenticator to check
    assert verify_authenticator(bytes(data), msg, KEY) is False


def test_extension_after_authenticator_is_not_covered():
    data = encode(request(AuthExtension(32, 256), PrefixRequest.of("2001:db8:10::/48")),
                  {32: KEY})
    msg = decode(data)
    assert msg.extensions[0].type == 32 and msg.extensions[1].prefix_length == 48
    tampered = data[:-1] + b"\x01"
    assert verify_authenticator(tampered, decode(tampered), KEY) is True


def test_verify_reports_absent_authenticator():
    data = encode(request())
    assert verify_authenticator(data, decode(data), KEY) is None


def test_missing_key_is_an_encode_error():
    with pytest.raises(EncodeError, match="no key"):
        encode(request(AuthExtension(32, 256)))


# --- structural damage: one typed error with offset, field and section -------------------

def _error(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(data)
    return info.value


def test_truncated_request_header():
    err = _error(encode(request())[:23])
    assert (err.offset, err.field, err.section) == (23, "header", "RFC 3344 §3.3")


def test_truncated_reply_header():
    err = _error(bytes([3, 0, 0]))
    assert (err.field, err.section) == ("header", "RFC 3344 §3.4")


def test_unknown_message_type():
    err = _error(bytes([2]) + bytes(30))
    assert (err.offset, err.field) == (0, "type")


def test_empty_payload():
    assert _error(b"").field == "type"


def test_extension_length_running_past_end():
    data = encode(request(PrefixRequest.of("2001:db8::/32")))[:-3]
    err = _error(data)
    assert (err.offset, err.field, err.section) == (25, "extensions[0].length", "RFC 3344 §1.9")


def test_extension_with_no_length_byte():
    err = _error(encode(request()) + bytes([200]))
    assert (err.offset, err.field) == (24, "extensions[0].length")


@pytest.mark.parametrize("subtype,length,section", [
    (1, 17, "RFC 5454 §2.1"), (1, 19, "RFC 5454 §2.1"), (1, 20, "RFC 5454 §2.1"),
    (2, 18, "RFC 5454 §2.2"), (2, 21, "RFC 5454 §2.2"), (3, 1, "RFC 5454 §2.3"),
    (3, 18, "RFC 5454 §2.3"),
])
def test_wrong_fixed_length_for_subtype(subtype, length, section):
    body = bytes([subtype]) + bytes(length - 1)
    err = _error(encode(request()) + bytes([152, length]) + body)
    assert (err.offset, err.field, err.section) == (25, "extensions[0].length", section)
    assert str(length) in err.reason


def test_dsmip_extension_without_subtype():
    err = _error(encode(request()) + bytes([152, 0]))
    assert (err.field, err.section) == ("extensions[0].length", "RFC 5454 §2")


def test_wrong_length_via_encoder_fault_is_caught_by_decoder():
    data = encode(request(PrefixRequest(48, bytes(16), wire_length=17), RawExtension(200, b"")))
    err = _error(data)
    assert err.section == "RFC 5454 §2.1"


def test_auth_extension_too_short_for_spi():
    err = _error(encode(request()) + bytes([32, 3, 0, 0, 0]))
    assert err.section == "RFC 3344 §3.5.2"


def test_long_extension_truncated():
    err = _error(encode(request()) + bytes([36, 0, 0, 10]) + bytes(4))
    assert (err.offset, err.section) == (26, "RFC 3344 §1.10")


def test_error_message_names_offset_field_and_section():
    err = _error(encode(request()) + bytes([152, 5, 1]))
    assert str(err).startswith("offset 25: extensions[0].length:")
    assert str(err).endswith("[RFC 3344 §1.9]")


# --- tolerated violations decode, with an observation naming the rule ---------------------

def _observed(msg):
    return [(o.field, o.rule) for o in msg.observations]


def test_stray_prefix_bits_in_request_are_observed():
    msg = decode(encode(request(PrefixRequest(48, PrefixRequest.of("2001:db8::1/128").prefix))))
    assert _observed(msg) == [("extensions[0].prefix", "RFC5454-2.1-01")]
    assert msg.prefix_requests[0].network.compressed == "2001:db8::/48"


def test_clean_prefix_has_no_observation():
    msg = decode(encode(request(PrefixRequest.of("2001:db8:10::/48"))))
    assert msg.observations == []


def test_stray_bits_and_reserved_in_reply_are_observed():
    prefix = PrefixRequest.of("2001:db8::1/128").prefix
    msg = decode(encode(RegistrationReply(extensions=[PrefixReply(0, 64, prefix, reserved=3)])))
    assert _observed(msg) == [("extensions[0].reserved", "RFC5454-2.2-F2"),
                              ("extensions[0].prefix", "RFC5454-2.2-01")]


@pytest.mark.parametrize("length", [129, 200, 254])
def test_prefix_length_129_to_254_is_observed(length):
    msg = decode(encode(request(PrefixRequest(length, bytes(16)))))
    assert _observed(msg) == [("extensions[0].prefix_length", "RFC5454-2.1-F2")]


def test_prefix_length_255_with_link_local_is_clean_and_otherwise_observed():
    assert decode(encode(request(PrefixRequest.of("fe80::1")))).observations == []
    msg = decode(encode(request(PrefixRequest(255, PrefixRequest.of("2001:db8::/32").prefix))))
    assert _observed(msg) == [("extensions[0].prefix", "RFC5454-2.1-F2")]


@pytest.mark.parametrize("subtype", [0, 4, 255])
def test_unknown_subtype_is_kept_and_observed(subtype):
    msg = decode(encode(request(DSMIPUnknown(subtype, b"\1\2"))))
    assert msg.extensions == [DSMIPUnknown(subtype, b"\1\2")]
    assert _observed(msg) == [("extensions[0].subtype", "RFC5454-5-01")]


def test_tunneling_mode_reserved_is_observed():
    msg = decode(encode(request(TunnelingMode(reserved=1))))
    assert _observed(msg) == [("extensions[0].reserved", "RFC5454-2.3-F2")]


def test_reserved_request_flags_are_observed():
    msg = decode(encode(request(flags=0x05)))
    assert _observed(msg) == [("flags", "RFC3344-3.3-01")]


def test_unknown_extensions_are_classified_skippable_or_not():
    msg = decode(encode(request(RawExtension(127, b"a"), RawExtension(128, b"b"))))
    assert [e.skippable for e in msg.extensions] == [False, True]


def test_tunnel_data_unknown_next_header_and_reserved_observed():
    msg = decode(bytes([4, 17, 0, 1]) + b"x")
    assert [o.rule for o in msg.observations] == ["RFC3519-3.3-02", "RFC3519-3.3-01"]


# --- deliberately wrong encodings for negative tests ---------------------------------------

def test_encoder_writes_duplicate_and_misordered_extensions_as_given():
    p = PrefixRequest.of("2001:db8:10::/48")
    data = encode(request(AuthExtension(32, 1), p, p, TunnelingMode()), {32: KEY})
    msg = decode(data)
    assert [type(e).__name__ for e in msg.extensions] == [
        "AuthExtension", "PrefixRequest", "PrefixRequest", "TunnelingMode"]


def test_encoder_writes_false_length():
    data = encode(request(TunnelingMode(wire_length=5)))
    assert data[24:26] == bytes([152, 5])


def test_encoder_rejects_a_length_over_255():
    with pytest.raises(EncodeError):
        encode(request(RawExtension(200, b"", wire_length=300)))


def test_encoder_accepts_verbatim_bytes():
    assert encode(request(b"\x98"))[-1:] == b"\x98"


def test_prefix_request_of_rejects_host_bits():
    with pytest.raises(ValueError):
        PrefixRequest.of("2001:db8::1/48")
