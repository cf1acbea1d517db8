"""Named faults: each breaks one rule of a reference engine, so the suite's self-test can show
that the case mapped to that rule fails against it (`dsmip4 selftest`, issue 6).

The faults live here, outside the protocol logic: a faulty engine is the reference engine
with its inputs or outputs rewritten around it, so the engines read as the RFC. A node's
configuration names its faults (`faults: [fa.alter-relayed-reply]`); `engine_for` builds
the engine with them.
"""

from __future__ import annotations

import dataclasses

import hmac

from conformance.codec import (
    AuthExtension, DecodeError, DSMIPUnknown, LongExtension, PrefixReply, RawExtension, RegistrationRequest,
    TunnelingMode, UDPTunnelReply, append_authentication, decode, decode_reply,
    decode_request, encode, verify_authenticator,
)
from conformance.codec.constants import ExtType
from conformance.nodes.actions import SendIPv4, SendUDP
from conformance.nodes.fa import FAConfig, ForeignAgent
from conformance.nodes.ha import HAConfig, HomeAgent
from conformance.nodes.mn import MobileNode

# Fault name -> the catalog requirements it breaks.
FA_FAULTS = {
    "fa.strip-unknown-skippable": ["RFC3344-1.9-01", "RFC5454-3.4-D1", "RFC5454-5-03"],
    "fa.alter-relayed-request": ["RFC3344-3.7.2-01"],
    "fa.alter-relayed-reply": ["RFC3344-3.7.3-01"],
    "fa.drop-tunnelled-traffic": ["RFC3344-4.2.3-01"],
    # With a mobility security association with the HA (RFC 3344 §3.5.4, PICS item):
    "fa.fa-ha-auth-over-header-only": ["RFC3344-3.5.1-01"],
    "fa.accept-bad-fa-ha-auth": ["RFC3344-3.7.3.1-01"],
}
FA_KNOWN_SKIPPABLE = frozenset({131, 144})  # what the faulty FA keeps: NAI, UDP Tunnel Request
FA_HA_AUTH_LENGTH = 2 + 4 + 16  # type, length, SPI, HMAC-MD5 authenticator


class FaultyForeignAgent(ForeignAgent):
    """The reference FA, with what it relays and delivers rewritten by its named faults."""

    def __init__(self, config: FAConfig, faults: frozenset[str]):
        super().__init__(config)
        self.faults = faults

    def receive_udp(self, payload: bytes, src: str, sport: int, now: float) -> list:
        if "fa.accept-bad-fa-ha-auth" in self.faults:
            payload = self._with_valid_fa_ha(payload, src)
        return [self._rewrite(a) for a in super().receive_udp(payload, src, sport, now)]

    def receive_ipv4(self, packet: bytes, now: float) -> list:
        actions = super().receive_ipv4(packet, now)
        if "fa.drop-tunnelled-traffic" in self.faults:
            actions = [a for a in actions if not isinstance(a, SendIPv4)]
        return actions

    def _rewrite(self, action):
        if not isinstance(action, SendUDP) or not action.payload:
            return action
        if action.payload[0] == 1:
            return _replace_payload(action, self._relayed_request(action.payload,
                                                                  action.dst))
        if action.payload[0] == 3 and "fa.alter-relayed-reply" in self.faults:
            reply = decode_reply(action.payload)
            reply.extensions = [e for e in reply.extensions if e.type != 152]
            return _replace_payload(action, encode(reply))
        return action

    def _relayed_request(self, relayed: bytes, home_agent: str) -> bytes:
        association = self.config.home_agents.get(home_agent)
        base = relayed[:-FA_HA_AUTH_LENGTH] if association else relayed
        if "fa.strip-unknown-skippable" in self.faults:
            request = decode_request(base)
            request.extensions = [e for e in request.extensions
                                  if e.type < 128 or e.type in FA_KNOWN_SKIPPABLE]
            base = encode(request)
        elif "fa.alter-relayed-request" in self.faults:
            lifetime = int.from_bytes(base[2:4], "big")
            base = base[:2] + (lifetime ^ 1).to_bytes(2, "big") + base[4:]
        if association is None:
            return base
        header_only = base[:24] if "fa.fa-ha-auth-over-header-only" in self.faults else None
        return append_authentication(base, ExtType.FA_HA_AUTH, *association,
                                     protected=header_only)

    def _with_valid_fa_ha(self, payload: bytes, src: str) -> bytes:
        """A reply from an HA with its Foreign-Home authenticator made valid, so the FA
        accepts what it should have refused."""
        association = self.config.home_agents.get(src)
        try:
            reply = decode(payload)
        except DecodeError:
            return payload
        if association is None or reply.type != 3:
            return payload
        fa_ha = [e for e in reply.extensions if e.type == ExtType.FA_HA_AUTH]
        if len(fa_ha) == 1 and type(fa_ha[0]) is AuthExtension and \
                fa_ha[0].spi == association[0] and \
                verify_authenticator(payload, reply, association[1], ExtType.FA_HA_AUTH):
            return payload
        cut = fa_ha[0].offset if fa_ha else len(payload)
        return append_authentication(payload[:cut], ExtType.FA_HA_AUTH, *association)


def _replace_payload(action: SendUDP, payload: bytes) -> SendUDP:
    return dataclasses.replace(action, payload=payload)


# ---------------------------------------------------------------------- home agent
# What each HA fault changes: the reply it sends (rewritten and signed again with the MN's
# key), the request it reads (rewritten and signed again, so the engine takes it as sent),
# its configuration, or one of its decisions (a method the faulty HA overrides).
HA_REPLY_FAULTS = {
    "ha.stray-bits-in-reply", "ha.wrong-prefix-echo", "ha.nonzero-reply-reserved",
    "ha.bad-prefix-reply-length", "ha.coa-code-in-fa-mode", "ha.reply-subtype-4",
    "ha.no-prefix-reply", "ha.duplicate-prefix-reply", "ha.prefix-accept-on-reject",
    "ha.no-udp-tunnel-reply", "ha.wrong-reply-identification", "ha.133-without-ha-time",
    "ha.reply-without-auth", "ha.auth-over-header-only",
}
HA_REQUEST_FAULTS = {"ha.skip-auth-check", "ha.ignore-tunneling-mode",
                     "ha.reject-tunnel-mode-reserved", "ha.ipip-despite-gre"}


def _ha_config(config: HAConfig, faults: frozenset[str]) -> HAConfig:
    changes = {}
    if "ha.no-lifetime-cap" in faults:
        changes["max_lifetime"] = 0xFFFF
    if "ha.honour-ignored-tunneling-mode" in faults:
        changes["honour_tunneling_mode"] = True
    if "ha.ignore-implicit-prefixes" in faults:
        changes["mobile_nodes"] = [dataclasses.replace(e, implicit_prefixes=[])
                                   for e in config.mobile_nodes]
    return dataclasses.replace(config, **changes) if changes else config


class FaultyHomeAgent(HomeAgent):
    """The reference HA, with its requests, replies and decisions bent by named faults."""

    def __init__(self, config: HAConfig, faults: frozenset[str]):
        super().__init__(_ha_config(config, faults))
        self.named_faults = faults

    def _has(self, name: str) -> bool:
        return name in self.named_faults

    def receive_udp(self, payload: bytes, src: str, sport: int, now: float) -> list:
        request = _decoded_request(payload)
        if request is None:
            return super().receive_udp(payload, src, sport, now)
        if self.named_faults & HA_REQUEST_FAULTS:
            payload, request = self._bent_request(payload, request)
        actions = super().receive_udp(payload, src, sport, now)
        if not self.named_faults & HA_REPLY_FAULTS:
            return actions
        return [self._bent_reply(a, request) if isinstance(a, SendUDP) and
                a.payload[:1] == b"\x03" else a for a in actions]

    # -------------------------------------------------------------- what it reads
    def _bent_request(self, payload: bytes, request: RegistrationRequest):
        auth = request.auth(32)
        entry = self.by_spi.get(auth.spi) if auth else None
        if entry is None:
            return payload, request
        changed = self._has("ha.skip-auth-check")  # signed again: any authenticator passes
        if self._has("ha.ipip-despite-gre") and request.flag("G"):
            request.flags &= ~RegistrationRequest.flags_of("G")
            changed = True
        kept = [e for e in request.extensions if not (type(e) is TunnelingMode and (
            self._has("ha.ignore-tunneling-mode") or
            (e.reserved and self._has("ha.reject-tunnel-mode-reserved"))))]
        changed |= len(kept) != len(request.extensions)
        if not changed:
            return payload, request
        at = kept.index(auth)
        request.extensions = kept[:at] + [AuthExtension(32, auth.spi)] + kept[at + 1:]
        payload = encode(request, {32: entry.key})
        return payload, decode_request(payload)

    # -------------------------------------------------------------- what it sends
    def _bent_reply(self, action: SendUDP, request: RegistrationRequest) -> SendUDP:
        reply = decode_reply(action.payload)
        auth = reply.auth(32)
        entry = self.by_spi.get(auth.spi) if auth else None
        exts = [e for e in reply.extensions if e is not auth]
        bent = []
        for ext in exts:
            bent += self._bent_prefix_reply(ext) if type(ext) is PrefixReply else [ext]
        if reply.code > 1 and self._has("ha.prefix-accept-on-reject"):
            bent = [PrefixReply.answering(r, 0) for r in request.prefix_requests]
        if self._has("ha.no-udp-tunnel-reply"):
            bent = [e for e in bent if type(e) is not UDPTunnelReply]
        if self._has("ha.wrong-reply-identification") and reply.code <= 1:
            reply.identification ^= 1 << 40  # the high bits: an FA still relays it
        if self._has("ha.133-without-ha-time") and reply.code == 133:
            reply.identification = request.identification
        signed = entry is not None and not self._has("ha.reply-without-auth")
        reply.extensions = bent + ([AuthExtension(32, entry.spi)] if signed else [])
        payload = encode(reply, {32: entry.key} if signed else None)
        if signed and self._has("ha.auth-over-header-only"):
            end = len(payload) - 16  # the authenticator over the fixed header and SPI only
            payload = payload[:end] + hmac.digest(entry.key, payload[:20] +
                                                  payload[end - 6:end], "md5")
        return _replace_payload(action, payload)

    def _bent_prefix_reply(self, reply: PrefixReply) -> list:
        length = reply.prefix_length
        if self._has("ha.stray-bits-in-reply") and length < 128:
            reply.prefix = reply.prefix[:15] + bytes((reply.prefix[15] | 1,))
        if self._has("ha.wrong-prefix-echo") and 0 < length <= 128:
            b = bytearray(reply.prefix)  # flip the last significant bit: another prefix
            b[(length - 1) // 8] ^= 0x80 >> ((length - 1) % 8)
            reply.prefix = bytes(b)
        if self._has("ha.nonzero-reply-reserved"):
            reply.reserved = 0x5A
        if self._has("ha.bad-prefix-reply-length"):
            reply.wire_length = 21  # one byte more than the extension carries
        if self._has("ha.coa-code-in-fa-mode") and reply.code == 0:
            reply.code = 1
        if self._has("ha.reply-subtype-4"):
            return [DSMIPUnknown(4, bytes((reply.code, length, 0)) + reply.prefix)]
        if self._has("ha.no-prefix-reply"):
            return []
        if self._has("ha.duplicate-prefix-reply"):
            return [reply, PrefixReply(reply.code, length, reply.prefix)]
        return [reply]

    # -------------------------------------------------------------- what it decides
    def _poorly_formed(self, request, auth):
        if self._has("ha.reject-unknown-skippable"):
            for ext in request.extensions:
                if type(ext) is RawExtension and ext.type >= 128:
                    return f"unrecognised skippable extension type {ext.type}"
        if self._has("ha.accept-unknown-nonskippable"):
            request = dataclasses.replace(request, extensions=[
                e for e in request.extensions
                if not (type(e) in (RawExtension, LongExtension) and e.type < 128)])
        return super()._poorly_formed(request, auth)

    def _decide(self, entry, req, key, colocated, wants_coa):
        length = req.prefix_length
        if length == 255 and self._has("ha.reject-link-local"):
            return 8
        if 128 < length < 255 and self._has("ha.accept-bad-prefix-length"):
            return 0
        if length < 128 and self._has("ha.reject-stray-bits") and \
                int.from_bytes(req.prefix, "big") & ((1 << (128 - length)) - 1):
            return 8
        return super()._decide(entry, req, key, colocated, wants_coa)

    def _deregister(self, request, entry, src, sport, now):
        if self._has("ha.keep-after-deregistration"):
            return self._reply(request, 0, 0, src, sport, entry)
        return super()._deregister(request, entry, src, sport, now)

    def _install(self, binding, old):
        if old is not None and self._has("ha.keep-omitted-prefixes"):
            for key, mode in old.prefixes.items():
                binding.prefixes.setdefault(key, mode)
        return super()._install(binding, old)


def _decoded_request(payload: bytes) -> RegistrationRequest | None:
    try:
        message = decode(payload)
    except DecodeError:
        return None
    return message if type(message) is RegistrationRequest else None


def engine_for(role: str, config):
    """The reference engine of `role` for its engine configuration, with the named faults
    the configuration lists."""
    faults = frozenset(config.faults)
    if role == "fa":
        return FaultyForeignAgent(config, faults) if faults else ForeignAgent(config)
    if role == "ha":
        return FaultyHomeAgent(config, faults) if faults else HomeAgent(config)
    return MobileNode(config)
