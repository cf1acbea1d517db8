"""Encoder: message dataclasses -> bytes.

It writes what it is given, so negative tests can build wrong messages from fields: stray
prefix bits, non-zero reserved fields, any order or repetition of extensions, extensions after
the authenticator, and a false Length through `wire_length`. Authenticators left as None are
computed at their position from `auth_keys` ({extension type: key}).
"""

from __future__ import annotations

import hmac
import struct
from socket import inet_aton

from .messages import (
    AuthExtension, DSMIPUnknown, LongExtension, NAIExtension, PrefixReply, PrefixRequest,
    RawExtension, RegistrationReply, RegistrationRequest, TunnelData, TunnelingMode,
    UDPTunnelReply, UDPTunnelRequest,
)

_RRQ = struct.Struct("!BBH4s4s4sQ")
_RRP = struct.Struct("!BBH4s4sQ")


class EncodeError(ValueError):
    """The caller asked for something the wire cannot carry (a field out of range, no key)."""


def _short(buf: bytearray, ext_type: int, body: bytes, wire_length: int | None) -> None:
    length = len(body) if wire_length is None else wire_length
    if not 0 <= length <= 255:
        raise EncodeError(f"extension type {ext_type}: length {length} does not fit one byte")
    buf += bytes((ext_type, length))
    buf += body


def _encode_extension(buf: bytearray, ext, auth_keys) -> None:
    kind = type(ext)
    if kind is PrefixRequest:
        _check_prefix_fields(ext)
        _short(buf, ext.type, bytes((ext.subtype, ext.prefix_length)) + ext.prefix,
               ext.wire_length)
    elif kind is PrefixReply:
        _check_prefix_fields(ext)
        _short(buf, ext.type,
               bytes((ext.subtype, ext.code, ext.prefix_length, ext.reserved)) + ext.prefix,
               ext.wire_length)
    elif kind is TunnelingMode:
        _short(buf, ext.type, bytes((ext.subtype, ext.reserved)), ext.wire_length)
    elif kind is DSMIPUnknown:
        _short(buf, ext.type, bytes((ext.subtype,)) + ext.body, ext.wire_length)
    elif kind is AuthExtension:
        authenticator = ext.authenticator
        head = struct.pack("!I", ext.spi)
        if authenticator is None:
            key = (auth_keys or {}).get(ext.type)
            if key is None:
                raise EncodeError(f"no key given for authentication extension type {ext.type}")
            length = 4 + 16 if ext.wire_length is None else ext.wire_length
            buf += bytes((ext.type, length))
            buf += head
            buf += hmac.digest(key, bytes(buf), "md5")
        else:
            _short(buf, ext.type, head + authenticator, ext.wire_length)
    elif kind is NAIExtension:
        _short(buf, ext.type, ext.nai, ext.wire_length)
    elif kind is UDPTunnelRequest:
        flags = (0x80 if ext.force else 0) | (0x40 if ext.fa_required else 0) | ext.reserved2
        _short(buf, ext.type, struct.pack("!BBBBH", ext.subtype, ext.reserved1, flags,
                                          ext.encapsulation, ext.reserved3), ext.wire_length)
    elif kind is UDPTunnelReply:
        flags = (0x8000 if ext.force else 0) | ext.reserved
        _short(buf, ext.type, struct.pack("!BBHH", ext.subtype, ext.code, flags, ext.keepalive),
               ext.wire_length)
    elif kind is LongExtension:
        length = len(ext.body) if ext.wire_length is None else ext.wire_length
        buf += struct.pack("!BBH", ext.type, ext.subtype, length)
        buf += ext.body
    elif kind is RawExtension:
        _short(buf, ext.type, ext.body, ext.wire_length)
    elif isinstance(ext, (bytes, bytearray)):
        buf += ext  # verbatim bytes: for damage no dataclass can express
    else:
        raise EncodeError(f"cannot encode extension {ext!r}")


def _check_prefix_fields(ext) -> None:
    if len(ext.prefix) != 16:
        raise EncodeError(f"IPv6 prefix must be 16 bytes, got {len(ext.prefix)}")


def encode(message, auth_keys: dict[int, bytes] | None = None) -> bytes:
    """The UDP payload for a request, reply or tunnel data message."""
    try:
        if type(message) is RegistrationRequest:
            buf = bytearray(_RRQ.pack(message.type, message.flags, message.lifetime,
                                      inet_aton(message.home_address),
                                      inet_aton(message.home_agent),
                                      inet_aton(message.care_of_address),
                                      message.identification))
        elif type(message) is RegistrationReply:
            buf = bytearray(_RRP.pack(message.type, message.code, message.lifetime,
                                      inet_aton(message.home_address),
                                      inet_aton(message.home_agent), message.identification))
        elif type(message) is TunnelData:
            return struct.pack("!BBH", message.type, message.next_header,
                               message.reserved) + message.payload
        else:
            raise EncodeError(f"cannot encode {type(message).__name__}")
        for ext in message.extensions:
            _encode_extension(buf, ext, auth_keys)
    except (struct.error, OSError, TypeError) as exc:
        raise EncodeError(f"cannot encode {type(message).__name__}: {exc}") from exc
    return bytes(buf)
