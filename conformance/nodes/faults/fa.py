"""The FA's named faults: what it relays and delivers, rewritten around the reference FA."""

from __future__ import annotations

from conformance.codec import (
    AuthExtension, DecodeError, append_authentication, decode, decode_reply, decode_request,
    encode, verify_authenticator,
)
from conformance.codec.constants import ExtType
from conformance.nodes.actions import SendIPv4, SendUDP
from conformance.nodes.fa import FAConfig, ForeignAgent
from conformance.nodes.faults.common import replace_payload


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
            return replace_payload(action, self._relayed_request(action.payload,
                                                                  action.dst))
        if action.payload[0] == 3 and "fa.alter-relayed-reply" in self.faults:
            reply = decode_reply(action.payload)
            reply.extensions = [e for e in reply.extensions if e.type != 152]
            return replace_payload(action, encode(reply))
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
