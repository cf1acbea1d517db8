"""Registration authenticators (RFC 3344 §3.5.1): HMAC-MD5 by default.

The authenticator protects the UDP payload from the first byte of the message up to and
including the SPI of the authentication extension: every earlier extension in full, plus that
extension's Type, Length and SPI.
"""

from __future__ import annotations

import hmac

from .constants import ExtType
from .messages import AuthExtension

AUTHENTICATOR_LENGTH = 16  # HMAC-MD5 output
_SPI_END = 6  # Type (1) + Length (1) + SPI (4)


def compute_authenticator(key: bytes, protected: bytes) -> bytes:
    return hmac.digest(key, protected, "md5")


def extension_end(ext: AuthExtension) -> int:
    """The offset just past `ext` (decoded) in its message."""
    return ext.offset + _SPI_END + len(ext.authenticator or b"")


def append_authentication(data: bytes, ext_type: int, spi: int, key: bytes,
                          protected: bytes | None = None) -> bytes:
    """`data` with an authentication extension of `ext_type` appended, its authenticator over
    `data` and the extension's Type, Length and SPI (or over `protected`, to break the rule)."""
    header = bytes((ext_type, 4 + AUTHENTICATOR_LENGTH)) + spi.to_bytes(4, "big")
    covered = data + header if protected is None else protected + header
    return data + header + compute_authenticator(key, covered)


def protected_bytes(data: bytes, ext: AuthExtension) -> bytes:
    """What the authenticator of `ext` (decoded from `data`) covers."""
    return data[:ext.offset + _SPI_END]


def verify_authenticator(data: bytes, message, key: bytes,
                         ext_type: int = ExtType.MN_HA_AUTH) -> bool | None:
    """True/False for the first extension of `ext_type` in a decoded message; None if absent."""
    for ext in message.extensions:
        if ext.type == ext_type and type(ext) is AuthExtension:
            expected = hmac.digest(key, data[:ext.offset + _SPI_END], "md5")
            return hmac.compare_digest(expected, ext.authenticator)
    return None
