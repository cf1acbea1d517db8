"""Seeded generator of well-formed messages, shared by property, differential and tshark tests."""

from __future__ import annotations

import random
import socket

from conformance.codec import (
    AuthExtension, DSMIPUnknown, LongExtension, NAIExtension, PrefixReply, PrefixRequest,
    RawExtension, RegistrationReply, RegistrationRequest, TunnelData, TunnelingMode,
    UDPTunnelReply, UDPTunnelRequest,
)

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def _ipv4(rng: random.Random) -> str:
    return socket.inet_ntoa(rng.randbytes(4))


def _prefix(rng: random.Random) -> tuple[int, bytes]:
    length = rng.choice([0, 1, 32, 48, 56, 64, 127, 128, 255, rng.randint(0, 255)])
    return length, rng.randbytes(16)


def _extension(rng: random.Random, reply: bool):
    kind = rng.randrange(10)
    if kind == 0:
        length, prefix = _prefix(rng)
        return PrefixRequest(length, prefix)
    if kind == 1:
        length, prefix = _prefix(rng)
        return PrefixReply(rng.randrange(256), length, prefix, rng.choice([0, 0, 0, 7]))
    if kind == 2:
        return TunnelingMode(rng.choice([0, 0, 1]))
    if kind == 3:
        return DSMIPUnknown(rng.choice([0, 4, 200]), rng.randbytes(rng.randrange(12)))
    if kind == 4:
        return NAIExtension(rng.choice([b"mn@example.com", b"", b"user@x"]))
    if kind == 5:
        if reply:
            return UDPTunnelReply(rng.randrange(256), rng.randrange(65536), rng.random() < .5)
        return UDPTunnelRequest(rng.choice([0, 4, 47]), rng.random() < .5, rng.random() < .5)
    if kind == 6:
        return LongExtension(rng.choice([36, 38]), rng.randrange(256),
                             rng.randbytes(rng.randrange(30)))
    if kind == 7:
        return RawExtension(rng.choice([3, 100, 130, 200, 255]), rng.randbytes(rng.randrange(20)))
    return AuthExtension(rng.choice([33, 34]), rng.randrange(2**32), rng.randbytes(16))


def _dissectable(ext, rng: random.Random):
    """Long-format bodies shaped as their RFCs define them, for dissectors that read them."""
    if type(ext) is LongExtension:
        if ext.type == 36:  # RFC 3012: SPI + authenticator
            return LongExtension(36, 1, rng.randbytes(4) + rng.randbytes(16))
        return LongExtension(38, 0, rng.randbytes(4) + rng.randbytes(2) + rng.randbytes(4))
    return ext


IPV6_PACKET = bytes.fromhex("6000000000083b40" + "20010db8000000000000000000000001"
                            + "20010db8001000000000000000000002") + bytes(8)


def random_message(rng: random.Random, kind: str | None = None, dissectable: bool = False):
    """A request, reply or tunnel data message with random fields; ends with MN-HA auth
    (computed with KEY when encoded) most of the time. `dissectable`: bodies that other
    dissectors parse further (long extensions, tunnelled packets) are well formed."""
    kind = kind or rng.choice(["request", "request", "reply", "tunnel"])
    if kind == "tunnel":
        if dissectable:
            return TunnelData(41, IPV6_PACKET)
        return TunnelData(rng.choice([4, 41, 47]), rng.randbytes(rng.randrange(60)))
    reply = kind == "reply"
    exts = [_extension(rng, reply) for _ in range(rng.randrange(6))]
    if dissectable:
        exts = [_dissectable(e, rng) for e in exts]
    if rng.random() < 0.8:
        exts.append(AuthExtension(32, rng.randrange(2**32)))
    if reply:
        return RegistrationReply(rng.randrange(256), rng.randrange(65536), _ipv4(rng),
                                 _ipv4(rng), rng.randrange(2**64), exts)
    return RegistrationRequest(rng.randrange(256), rng.randrange(65536), _ipv4(rng), _ipv4(rng),
                               _ipv4(rng), rng.randrange(2**64), exts)
