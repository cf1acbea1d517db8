"""Message and extension dataclasses (RFC 3344, RFC 3519, RFC 5454).

Addresses are kept as text, prefixes as 16 raw bytes (what the wire carries, stray bits
included) with a text view. Every field is stored as received so that a test case can judge
the sender; `wire_length` on an extension lets an encoder write a deliberately wrong Length.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from .constants import (
    FLAG_NAMES, LINK_LOCAL_PREFIX_LENGTH, DSMIPSubtype, ExtType, is_skippable,
)
from .errors import Observation

_inet_ntop = socket.inet_ntop
_AF_INET6 = socket.AF_INET6


def prefix_bytes(text: str) -> bytes:
    """'2001:db8::' -> 16 bytes; raises ValueError on a bad address."""
    return ipaddress.IPv6Address(text).packed


def mask_prefix(prefix: bytes, length: int) -> bytes:
    """Clear the bits of `prefix` beyond `length` (RFC 5454 §2.1 insignificant bits)."""
    if length >= 128:
        return prefix
    value = int.from_bytes(prefix, "big") >> (128 - length) << (128 - length) if length else 0
    return value.to_bytes(16, "big")


def stray_bits(prefix: bytes, length: int) -> bool:
    """True when bits beyond the prefix length are set (only for lengths 0-128)."""
    if length >= 128:
        return False
    return int.from_bytes(prefix, "big") & ((1 << (128 - length)) - 1) != 0


class _PrefixView:
    """Text views shared by prefix request and reply extensions."""

    __slots__ = ()

    @property
    def prefix_text(self) -> str:
        return _inet_ntop(_AF_INET6, self.prefix)

    @property
    def is_link_local(self) -> bool:
        return self.prefix_length == LINK_LOCAL_PREFIX_LENGTH

    @property
    def network(self) -> ipaddress.IPv6Network:
        """The prefix as a network, insignificant bits ignored as RFC 5454 §2.1 says."""
        length = 128 if self.prefix_length > 128 else self.prefix_length
        return ipaddress.IPv6Network((mask_prefix(self.prefix, length), length))

    @property
    def key(self) -> tuple[int, bytes]:
        """What identifies the prefix for matching a reply to a request (§3.3, §3.5)."""
        length = self.prefix_length
        return length, self.prefix if length >= 128 else mask_prefix(self.prefix, length)


@dataclass(slots=True)
class PrefixRequest(_PrefixView):
    """Type 152 subtype 1: IPv6 Prefix Request (RFC 5454 §2.1)."""

    prefix_length: int
    prefix: bytes
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)
    type: int = field(default=ExtType.DSMIPV4, init=False, repr=False)
    subtype: int = field(default=DSMIPSubtype.PREFIX_REQUEST, init=False, repr=False)

    @classmethod
    def of(cls, network: str) -> "PrefixRequest":
        """From '2001:db8:10::/48', or a bare link-local address as prefix length 255."""
        if "/" not in network:
            return cls(LINK_LOCAL_PREFIX_LENGTH, prefix_bytes(network))
        net = ipaddress.IPv6Network(network, strict=True)
        return cls(net.prefixlen, net.network_address.packed)


@dataclass(slots=True)
class PrefixReply(_PrefixView):
    """Type 152 subtype 2: IPv6 Prefix Reply (RFC 5454 §2.2)."""

    code: int
    prefix_length: int
    prefix: bytes
    reserved: int = 0
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)
    type: int = field(default=ExtType.DSMIPV4, init=False, repr=False)
    subtype: int = field(default=DSMIPSubtype.PREFIX_REPLY, init=False, repr=False)

    @classmethod
    def answering(cls, request: PrefixRequest, code: int) -> "PrefixReply":
        """A reply whose prefix field echoes the request's, as §3.3 requires."""
        return cls(code, request.prefix_length, request.prefix)


@dataclass(slots=True)
class TunnelingMode:
    """Type 152 subtype 3: IPv6 Tunneling Mode (RFC 5454 §2.3)."""

    reserved: int = 0
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)
    type: int = field(default=ExtType.DSMIPV4, init=False, repr=False)
    subtype: int = field(default=DSMIPSubtype.TUNNELING_MODE, init=False, repr=False)


@dataclass(slots=True)
class DSMIPUnknown:
    """Type 152 with a subtype RFC 5454 does not define (0, 4-255): kept raw."""

    subtype: int
    body: bytes = b""
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)
    type: int = field(default=ExtType.DSMIPV4, init=False, repr=False)


@dataclass(slots=True)
class AuthExtension:
    """Mobile-Home (32), Mobile-Foreign (33) or Foreign-Home (34) authentication (RFC 3344 §3.5).

    An authenticator of None is computed by the encoder from its key table.
    """

    type: int
    spi: int
    authenticator: bytes | None = None
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)


@dataclass(slots=True)
class NAIExtension:
    """Mobile Node NAI extension, type 131 (RFC 2794)."""

    nai: bytes
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)
    type: int = field(default=ExtType.NAI, init=False, repr=False)


@dataclass(slots=True)
class UDPTunnelRequest:
    """UDP Tunnel Request extension, type 144 (RFC 3519 §3.1)."""

    encapsulation: int = 0
    force: bool = False
    fa_required: bool = False
    subtype: int = 0
    reserved1: int = 0
    reserved2: int = 0  # the six low bits of the flags byte
    reserved3: int = 0
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)
    type: int = field(default=ExtType.UDP_TUNNEL_REQUEST, init=False, repr=False)


@dataclass(slots=True)
class UDPTunnelReply:
    """UDP Tunnel Reply extension, type 44 (RFC 3519 §3.2)."""

    code: int = 0
    keepalive: int = 0
    force: bool = False
    subtype: int = 0
    reserved: int = 0  # the fifteen low bits of the flags field
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)
    type: int = field(default=ExtType.UDP_TUNNEL_REPLY, init=False, repr=False)


@dataclass(slots=True)
class LongExtension:
    """An extension in the long format of RFC 3344 §1.10 (Type, Sub-Type, 16-bit Length)."""

    type: int
    subtype: int
    body: bytes = b""
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)


@dataclass(slots=True)
class RawExtension:
    """An extension this codec does not know: type, length and body kept as received."""

    type: int
    body: bytes = b""
    wire_length: int | None = field(default=None, compare=False)
    offset: int = field(default=-1, compare=False)

    @property
    def skippable(self) -> bool:
        return is_skippable(self.type)


Extension = (PrefixRequest | PrefixReply | TunnelingMode | DSMIPUnknown | AuthExtension
             | NAIExtension | UDPTunnelRequest | UDPTunnelReply | LongExtension | RawExtension)


class _MessageHelpers:
    __slots__ = ()

    def find(self, cls, **match):
        """Extensions of one class (and field values), in wire order."""
        return [e for e in self.extensions
                if isinstance(e, cls) and all(getattr(e, k) == v for k, v in match.items())]

    def auth(self, ext_type: int = ExtType.MN_HA_AUTH) -> AuthExtension | None:
        for ext in self.extensions:
            if isinstance(ext, AuthExtension) and ext.type == ext_type:
                return ext
        return None

    @property
    def prefix_requests(self) -> list[PrefixRequest]:
        return [e for e in self.extensions if type(e) is PrefixRequest]

    @property
    def prefix_replies(self) -> list[PrefixReply]:
        return [e for e in self.extensions if type(e) is PrefixReply]


@dataclass(slots=True)
class RegistrationRequest(_MessageHelpers):
    """RFC 3344 §3.3 Registration Request (type 1)."""

    flags: int = 0
    lifetime: int = 0
    home_address: str = "0.0.0.0"
    home_agent: str = "0.0.0.0"
    care_of_address: str = "0.0.0.0"
    identification: int = 0
    extensions: list = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list, compare=False)
    type: int = field(default=1, compare=False)

    def flag(self, name: str) -> bool:
        return bool(self.flags & (0x80 >> FLAG_NAMES.index(name)))

    @staticmethod
    def flags_of(names: str) -> int:
        """'DT' -> the flags byte with D and T set."""
        value = 0
        for name in names:
            value |= 0x80 >> FLAG_NAMES.index(name)
        return value


@dataclass(slots=True)
class RegistrationReply(_MessageHelpers):
    """RFC 3344 §3.4 Registration Reply (type 3)."""

    code: int = 0
    lifetime: int = 0
    home_address: str = "0.0.0.0"
    home_agent: str = "0.0.0.0"
    identification: int = 0
    extensions: list = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list, compare=False)
    type: int = field(default=3, compare=False)


@dataclass(slots=True)
class TunnelData:
    """RFC 3519 §3.3 Mobile Tunnel Data message (type 4): next header, reserved, payload."""

    next_header: int = 41
    payload: bytes = b""
    reserved: int = 0
    observations: list[Observation] = field(default_factory=list, compare=False)
    type: int = field(default=4, compare=False)


Message = RegistrationRequest | RegistrationReply | TunnelData
