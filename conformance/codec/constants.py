"""Protocol numbers of Mobile IPv4 (RFC 3344, RFC 3519) and its DSMIPv4 extension (RFC 5454)."""

from enum import IntEnum

MIP_UDP_PORT = 434


class MessageType(IntEnum):
    REGISTRATION_REQUEST = 1
    REGISTRATION_REPLY = 3
    TUNNEL_DATA = 4  # RFC 3519 §3.3 Mobile Tunnel Data message


class ExtType(IntEnum):
    MN_HA_AUTH = 32
    MN_FA_AUTH = 33
    FA_HA_AUTH = 34
    GENERIC_AUTH = 36  # RFC 3012, long extension format
    CVSE = 38  # RFC 3115, long extension format
    UDP_TUNNEL_REPLY = 44  # RFC 3519 §3.2
    NAI = 131  # RFC 2794
    NVSE = 134  # RFC 3115
    UDP_TUNNEL_REQUEST = 144  # RFC 3519 §3.1
    DSMIPV4 = 152  # RFC 5454 §2


# Types carried in the long extension format of RFC 3344 §1.10 (Type, Sub-Type, 16-bit Length).
LONG_FORM_TYPES = frozenset({ExtType.GENERIC_AUTH, ExtType.CVSE})
AUTH_TYPES = frozenset({ExtType.MN_HA_AUTH, ExtType.MN_FA_AUTH, ExtType.FA_HA_AUTH})


def is_skippable(ext_type: int) -> bool:
    """RFC 3344 §1.9: types 128-255 may be skipped when not recognised; 0-127 may not."""
    return ext_type >= 128


class DSMIPSubtype(IntEnum):
    PREFIX_REQUEST = 1
    PREFIX_REPLY = 2
    TUNNELING_MODE = 3


# RFC 5454 §2: the fixed Length of each subtype (the bytes after the Length field).
DSMIP_SUBTYPE_LENGTH = {
    DSMIPSubtype.PREFIX_REQUEST: 18,
    DSMIPSubtype.PREFIX_REPLY: 20,
    DSMIPSubtype.TUNNELING_MODE: 2,
}


class PrefixReplyCode(IntEnum):
    ACCEPTED_TUNNEL_TO_HOA = 0
    ACCEPTED_TUNNEL_TO_COA = 1
    REJECTED_UNSPECIFIED = 8
    REJECTED_ADMIN_PROHIBITED = 9


def prefix_code_accepts(code: int) -> bool:
    """RFC 5454 §5: 0-7 are accept codes (2-7 reserved), 8-255 reject codes."""
    return code <= 7


LINK_LOCAL_PREFIX_LENGTH = 255  # RFC 5454 §2.2: a link-local address follows


class ReplyCode(IntEnum):
    """Registration Reply codes of RFC 3344 §3.4 (and RFC 3519 for the NAT codes)."""

    ACCEPTED = 0
    ACCEPTED_NO_SIMULTANEOUS_BINDINGS = 1
    FA_REASON_UNSPECIFIED = 64
    FA_ADMIN_PROHIBITED = 65
    FA_INSUFFICIENT_RESOURCES = 66
    FA_MN_FAILED_AUTH = 67
    FA_HA_FAILED_AUTH = 68
    FA_LIFETIME_TOO_LONG = 69
    FA_POORLY_FORMED_REQUEST = 70
    FA_POORLY_FORMED_REPLY = 71
    FA_ENCAPSULATION_UNAVAILABLE = 72
    FA_VJ_UNAVAILABLE = 73
    FA_INVALID_COA = 77
    FA_REGISTRATION_TIMEOUT = 78
    FA_HOME_NETWORK_UNREACHABLE = 80
    FA_HA_HOST_UNREACHABLE = 81
    FA_HA_PORT_UNREACHABLE = 82
    FA_HA_UNREACHABLE = 88
    HA_REASON_UNSPECIFIED = 128
    HA_ADMIN_PROHIBITED = 129
    HA_INSUFFICIENT_RESOURCES = 130
    HA_MN_FAILED_AUTH = 131
    HA_FA_FAILED_AUTH = 132
    HA_IDENTIFICATION_MISMATCH = 133
    HA_POORLY_FORMED_REQUEST = 134
    HA_TOO_MANY_BINDINGS = 135
    HA_UNKNOWN_HA_ADDRESS = 136


def reply_code_accepts(code: int) -> bool:
    """RFC 3344 §3.4: codes 0 and 1 accept the registration; every other code denies it."""
    return code <= 1


class RequestFlag(IntEnum):
    """Bits of the Registration Request flags byte (RFC 3344 §3.3), most significant first."""

    S = 0x80  # simultaneous bindings
    B = 0x40  # broadcast datagrams
    D = 0x20  # decapsulation by mobile node (co-located care-of address)
    M = 0x10  # minimal encapsulation
    G = 0x08  # GRE encapsulation
    r = 0x04  # reserved, sent as zero
    T = 0x02  # reverse tunnelling requested (RFC 3024)
    x = 0x01  # reserved, sent as zero


FLAG_NAMES = ("S", "B", "D", "M", "G", "r", "T", "x")

# Next Header values of the Mobile Tunnel Data message (RFC 3519 §3.3; RFC 5454 §3.9 adds IPv6).
TUNNEL_NEXT_HEADERS = {4: "ipv4", 41: "ipv6", 47: "gre"}
