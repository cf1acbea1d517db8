"""Plain-dict views of decoded messages, for JSON output and failure messages."""

from __future__ import annotations

from .constants import FLAG_NAMES, ExtType
from .messages import (
    AuthExtension, DSMIPUnknown, LongExtension, NAIExtension, PrefixReply, PrefixRequest,
    RawExtension, RegistrationReply, RegistrationRequest, TunnelData, TunnelingMode,
    UDPTunnelReply, UDPTunnelRequest,
)

_MESSAGE_NAMES = {RegistrationRequest: "registration-request",
                  RegistrationReply: "registration-reply", TunnelData: "tunnel-data"}


def extension_to_dict(ext) -> dict:
    out = {"type": ext.type, "offset": ext.offset}
    try:
        out["name"] = ExtType(ext.type).name.lower().replace("_", "-")
    except ValueError:
        out["name"] = "unknown"
    kind = type(ext)
    if kind is PrefixRequest:
        out.update(name="ipv6-prefix-request", subtype=ext.subtype,
                   prefix_length=ext.prefix_length, prefix=ext.prefix_text)
    elif kind is PrefixReply:
        out.update(name="ipv6-prefix-reply", subtype=ext.subtype, code=ext.code,
                   prefix_length=ext.prefix_length, reserved=ext.reserved, prefix=ext.prefix_text)
    elif kind is TunnelingMode:
        out.update(name="ipv6-tunneling-mode", subtype=ext.subtype, reserved=ext.reserved)
    elif kind is DSMIPUnknown:
        out.update(name="dsmipv4-unknown-subtype", subtype=ext.subtype, body=ext.body.hex())
    elif kind is AuthExtension:
        out.update(spi=ext.spi, authenticator=(ext.authenticator or b"").hex())
    elif kind is NAIExtension:
        out.update(nai=ext.nai.decode("utf-8", "replace"))
    elif kind is UDPTunnelRequest:
        out.update(subtype=ext.subtype, force=ext.force, fa_required=ext.fa_required,
                   encapsulation=ext.encapsulation)
    elif kind is UDPTunnelReply:
        out.update(subtype=ext.subtype, code=ext.code, force=ext.force, keepalive=ext.keepalive)
    elif kind is LongExtension:
        out.update(subtype=ext.subtype, body=ext.body.hex())
    elif kind is RawExtension:
        out.update(skippable=ext.skippable, length=len(ext.body), body=ext.body.hex())
    return out


def message_to_dict(message) -> dict:
    out = {"message": _MESSAGE_NAMES[type(message)], "type": message.type}
    if type(message) is RegistrationRequest:
        out.update(flags={name: message.flag(name) for name in FLAG_NAMES},
                   lifetime=message.lifetime, home_address=message.home_address,
                   home_agent=message.home_agent, care_of_address=message.care_of_address,
                   identification=message.identification)
    elif type(message) is RegistrationReply:
        out.update(code=message.code, lifetime=message.lifetime,
                   home_address=message.home_address, home_agent=message.home_agent,
                   identification=message.identification)
    else:
        out.update(next_header=message.next_header, reserved=message.reserved,
                   payload_length=len(message.payload))
    if type(message) is not TunnelData:
        out["extensions"] = [extension_to_dict(e) for e in message.extensions]
    out["observations"] = [o.to_dict() for o in message.observations]
    return out
