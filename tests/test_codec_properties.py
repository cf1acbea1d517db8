"""Property-based runs of the decoder: nothing but DecodeError escapes, whatever the bytes."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.codec import DecodeError, decode, encode, verify_authenticator
from msggen import KEY, random_message

FUZZ = settings(max_examples=10_000, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _decode_or_typed_error(data: bytes):
    try:
        return decode(data)
    except DecodeError as err:
        assert 0 <= err.offset <= len(data), err
        assert err.field and err.section.startswith("RFC"), err
        return None


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_decode_error(data):
    _decode_or_typed_error(data)


@FUZZ
@given(st.integers(0, 2**32 - 1), st.binary(max_size=200))
def test_typed_random_bytes_only_raise_decode_error(seed, tail):
    # Start with a valid message type so the extension parser is reached most of the time.
    first = random.Random(seed).choice([1, 3, 4])
    _decode_or_typed_error(bytes([first]) + tail)


@FUZZ
@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                           min_size=1, max_size=4),
       st.integers(0, 300))
def test_mutated_valid_messages_only_raise_decode_error(seed, flips, cut):
    data = bytearray(encode(random_message(random.Random(seed)), {32: KEY}))
    for position, value in flips:
        data[position % len(data)] = value
    _decode_or_typed_error(bytes(data[:cut]) if cut < len(data) else bytes(data))


@settings(max_examples=2_000, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_generated_messages_round_trip_and_authenticate(seed):
    message = random_message(random.Random(seed))
    data = encode(message, {32: KEY})
    decoded = decode(data)
    assert encode(decoded) == data
    if hasattr(decoded, "extensions") and decoded.auth() is not None:
        assert verify_authenticator(data, decoded, KEY) is True
