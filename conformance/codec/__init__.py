"""Wire codec for Mobile IPv4 registration messages and the DSMIPv4 extension (RFC 5454).

Pure `struct` and dataclasses: no scapy, no I/O.
"""

from .auth import (
    append_authentication, compute_authenticator, extension_end, protected_bytes,
    verify_authenticator,
)
from .constants import (
    LINK_LOCAL_PREFIX_LENGTH, MIP_UDP_PORT, DSMIPSubtype, ExtType, MessageType, PrefixReplyCode,
    ReplyCode, is_skippable, prefix_code_accepts, reply_code_accepts,
)
from .decode import decode, decode_reply, decode_request, decode_tunnel_data
from .encode import EncodeError, encode
from .errors import DecodeError, Observation
from .messages import (
    AuthExtension, DSMIPUnknown, LongExtension, NAIExtension, PrefixReply, PrefixRequest,
    RawExtension, RegistrationReply, RegistrationRequest, TunnelData, TunnelingMode,
    UDPTunnelReply, UDPTunnelRequest, mask_prefix, prefix_bytes, stray_bits,
)
from .render import extension_to_dict, message_to_dict

__all__ = [name for name in dir() if not name.startswith("_")]
