"""The same field view of a message from the codec and from the scapy layers."""

from conformance.codec import (
    AuthExtension, DSMIPUnknown, LongExtension, NAIExtension, PrefixReply, PrefixRequest,
    RawExtension, RegistrationReply, RegistrationRequest, TunnelingMode, UDPTunnelReply,
    UDPTunnelRequest,
)
from conformance.scapy_layers import (
    DSMIPRegistrationReply, DSMIPRegistrationRequest, DSMIPv4PrefixReply, DSMIPv4PrefixRequest,
    DSMIPv4TunnelingMode, DSMIPv4Unknown, MIPExtAuth, MIPExtGeneric, MIPExtLong, MIPExtNAI,
    MIPExtUDPTunnelReply, MIPExtUDPTunnelRequest, MobileIP, MobileIPTunnelData,
)


def codec_view(msg) -> dict:
    if isinstance(msg, RegistrationRequest):
        head = {"kind": "rrq", "flags": msg.flags, "lifetime": msg.lifetime,
                "hoa": msg.home_address, "ha": msg.home_agent, "coa": msg.care_of_address,
                "id": msg.identification}
    elif isinstance(msg, RegistrationReply):
        head = {"kind": "rrp", "code": msg.code, "lifetime": msg.lifetime,
                "hoa": msg.home_address, "ha": msg.home_agent, "id": msg.identification}
    else:
        return {"kind": "tunnel", "nexthdr": msg.next_header, "res": msg.reserved,
                "payload": msg.payload}
    exts = []
    for e in msg.extensions:
        k = type(e)
        if k is PrefixRequest:
            exts.append(("preq", e.prefix_length, e.prefix_text))
        elif k is PrefixReply:
            exts.append(("prep", e.code, e.prefix_length, e.reserved, e.prefix_text))
        elif k is TunnelingMode:
            exts.append(("tmode", e.reserved))
        elif k is DSMIPUnknown:
            exts.append(("dsmip?", e.subtype, e.body))
        elif k is AuthExtension:
            exts.append(("auth", e.type, e.spi, e.authenticator))
        elif k is NAIExtension:
            exts.append(("nai", e.nai))
        elif k is UDPTunnelRequest:
            exts.append(("utrq", e.subtype, e.force, e.fa_required, e.encapsulation))
        elif k is UDPTunnelReply:
            exts.append(("utrp", e.subtype, e.code, e.force, e.keepalive))
        elif k is LongExtension:
            exts.append(("long", e.type, e.subtype, e.body))
        elif k is RawExtension:
            exts.append(("raw", e.type, e.body))
    head["extensions"] = exts
    return head


def scapy_view(data: bytes) -> dict:
    pkt = MobileIP(data)
    body = pkt.payload
    if isinstance(body, MobileIPTunnelData):
        return {"kind": "tunnel", "nexthdr": body.nexthdr, "res": body.res,
                "payload": bytes(body.payload)}
    if isinstance(body, DSMIPRegistrationRequest):
        flags = 0
        for name in "SBDMGrTx":
            flags = flags << 1 | getattr(body, name)
        head = {"kind": "rrq", "flags": flags, "lifetime": body.lifetime, "hoa": body.homeaddr,
                "ha": body.haaddr, "coa": body.coaddr, "id": body.id}
    elif isinstance(body, DSMIPRegistrationReply):
        head = {"kind": "rrp", "code": body.code, "lifetime": body.lifetime,
                "hoa": body.homeaddr, "ha": body.haaddr, "id": body.id}
    else:
        raise AssertionError(f"scapy dissected {pkt.summary()}")
    exts = []
    for e in body.extensions:
        k = type(e)
        if k is DSMIPv4PrefixRequest:
            exts.append(("preq", e.prefix_length, e.prefix))
        elif k is DSMIPv4PrefixReply:
            exts.append(("prep", e.code, e.prefix_length, e.reserved, e.prefix))
        elif k is DSMIPv4TunnelingMode:
            exts.append(("tmode", e.reserved))
        elif k is DSMIPv4Unknown:
            exts.append(("dsmip?", e.subtype, e.data))
        elif k is MIPExtAuth:
            exts.append(("auth", e.type, e.spi, e.authenticator))
        elif k is MIPExtNAI:
            exts.append(("nai", e.nai))
        elif k is MIPExtUDPTunnelRequest:
            exts.append(("utrq", e.subtype, bool(e.F), bool(e.R), e.encapsulation))
        elif k is MIPExtUDPTunnelReply:
            exts.append(("utrp", e.subtype, e.code, bool(e.F), e.keepalive))
        elif k is MIPExtLong:
            exts.append(("long", e.type, e.subtype, e.data))
        elif k is MIPExtGeneric:
            exts.append(("raw", e.type, e.data))
        else:
            raise AssertionError(f"unexpected scapy extension {k.__name__}")
    head["extensions"] = exts
    return head
