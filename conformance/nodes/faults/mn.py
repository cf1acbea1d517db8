"""The MN's named faults: its requests rewritten (and signed again), replies bent before it
reads them, its decisions overridden."""

from __future__ import annotations

import dataclasses
import hmac

from conformance.codec import (
    AuthExtension, DecodeError, DSMIPUnknown, PrefixRequest, RawExtension, TunnelingMode,
    UDPTunnelRequest, decode_reply, decode_request, encode,
)
from conformance.codec.packets import PROTO_ICMPV6, neighbor_advert_for, parse_ipv6, upper_layer
from conformance.codec.tunnel import encapsulate, forwarded
from conformance.nodes.actions import DeliverIPv6, Event, SendIPv4, SendUDP
from conformance.nodes.faults.common import WRONG_LINK_LOCAL, replace_payload
from conformance.nodes.ha import MLD_TYPES
from conformance.nodes.mn import MNConfig, MobileNode, PrefixState


MN_FAULTS = {
    "mn.tunnel-mode-ext-in-fa-mode": ["RFC5454-3.5-14"],
    "mn.no-tunnel-mode-ext-colocated": ["RFC5454-3.5-13", "RFC5454-3.1-02", "RFC5454-2.3-F1"],
    "mn.tunnel-mode-reserved-nonzero": ["RFC5454-2.3-F2"],
    "mn.udp-reserved-nonzero": ["RFC3519-3.1-01"],
    "mn.solicit-outside-hoa-tunnel": ["RFC5454-3.7.1-03"],
    "mn.tun-mtu-1500": ["RFC5454-3.6-03", "RFC4213-3.2-01"],
    "mn.extensions-after-auth": ["RFC5454-3.1-03"],
    "mn.auth-excludes-extensions": ["RFC5454-3.1-04", "RFC3344-3.5.1-01"],
    "mn.no-auth-extension": ["RFC3344-3.2-01"],
    "mn.no-prefix-requests": ["RFC5454-3.1-01", "RFC5454-3.5-01", "RFC5454-3.5-02"],
    "mn.stray-prefix-bits": ["RFC5454-2.1-01"],
    "mn.strict-reply-prefix": ["RFC5454-2.2-02"],
    "mn.accept-unmatched-reply": ["RFC5454-3.5-06"],
    "mn.missing-reply-accepted": ["RFC5454-3.5-07"],
    "mn.ignore-prefix-code": ["RFC5454-3.5-08", "RFC5454-3.5-03", "RFC5454-3.2-D2",
                              "RFC5454-2.2-F4"],
    "mn.ignore-header-reject": ["RFC5454-3.2-D1"],
    "mn.coa-tunnel-in-fa-mode": ["RFC5454-3.5-12", "RFC5454-3.5-10"],
    "mn.hoa-tunnel-on-code-1": ["RFC5454-3.5-11"],
    "mn.no-fallback": ["RFC5454-3.5-05", "RFC5454-3.5-04", "RFC5454-3.2-D3"],
    "mn.reserved-codes-rejected": ["RFC5454-5-02"],
    "mn.ipv6-via-coa-on-code-0": ["RFC5454-3.5-09"],
    "mn.mld-via-coa": ["RFC5454-3.3.3-01"],
    "mn.no-neighbor-discovery": ["RFC5454-3.6-01", "RFC5454-3.6-02", "RFC4213-3.8-01"],
    "mn.no-ecn-drop": ["RFC5454-3.6-05", "RFC5454-3.6-06", "RFC3168-9.1.1-01"],
    "mn.udp-encapsulation-nonzero": ["RFC5454-3.9-03"],
    "mn.udp-next-header-4": ["RFC5454-3.9-02", "RFC5454-3.9-01", "RFC3519-3.3-02"],
    "mn.skip-hoa-registration": ["RFC5454-3.7.1-02"],
    "mn.no-link-local-registration": ["RFC5454-3.7.1-D1", "RFC5454-3.7.1-01"],
    "mn.no-delegated-registration": ["RFC5454-3.7.1-04"],
    "mn.no-reregistration": ["RFC3344-3.6.3-01"],
    "mn.no-resync": ["RFC3344-5.7.1-01"],
    "mn.bad-prefix-request-length": ["RFC5454-2.1-F1"],
    "mn.prefix-length-200": ["RFC5454-2.1-F2"],
    "mn.reject-nonzero-reserved": ["RFC5454-2.2-F2"],
    "mn.request-subtype-4": ["RFC5454-5-01"],
    "mn.reject-unknown-skippable": ["RFC5454-5-03", "RFC3344-1.9-01"],
    "mn.tunnel-counts-as-hop": ["RFC4213-3.3-01"],
    "mn.hoa-tunnel-gre": ["RFC4213-3.5-01"],
    "mn.accept-any-tunnel-source": ["RFC4213-3.6-01"],
    "mn.wrong-link-local": ["RFC4213-3.7-01"],
    "mn.udp-tunnel-reserved-nonzero": ["RFC3519-3.3-01"],
    "mn.accept-bad-reply-auth": ["RFC3344-3.6.2.1-01"],
    "mn.nonzero-reserved-flags": ["RFC3344-3.3-01"],
    "mn.no-packet-too-big": ["RFC4213-3.2-02"],
    # Optional features (PICS): these break a configuration that claims the feature.
    "mn.implicit-prefixes-not-tunnelled": ["RFC5454-1.4-01"],
    "mn.dynamic-mtu-no-df": ["RFC5454-3.6-04"],
}
MN_REQUEST_FAULTS = {
    "mn.bad-prefix-request-length", "mn.prefix-length-200", "mn.stray-prefix-bits",
    "mn.no-prefix-requests", "mn.no-tunnel-mode-ext-colocated", "mn.request-subtype-4",
    "mn.tunnel-mode-ext-in-fa-mode", "mn.tunnel-mode-reserved-nonzero",
    "mn.udp-encapsulation-nonzero", "mn.udp-reserved-nonzero", "mn.extensions-after-auth",
    "mn.no-auth-extension", "mn.nonzero-reserved-flags", "mn.auth-excludes-extensions",
}


def _mn_config(config: MNConfig, faults: frozenset[str]) -> MNConfig:
    if "mn.implicit-prefixes-not-tunnelled" in faults:
        return dataclasses.replace(config, implicit_prefixes=[])
    return config


class FaultyMobileNode(MobileNode):
    """The reference MN, with its requests, its reading of replies and its tunnels bent by
    named faults."""

    def __init__(self, config: MNConfig, faults: frozenset[str]):
        super().__init__(_mn_config(config, faults))
        self.named_faults = faults
        self._soliciting = False
        if "mn.hoa-tunnel-gre" in faults:
            self.HOA_ENCAPSULATION = "gre"

    def _has(self, name: str) -> bool:
        return name in self.named_faults

    # -------------------------------------------------------------- what it sends
    def _register(self, now, lifetime, tries=0):
        actions = super()._register(now, lifetime, tries)
        if not self.named_faults & MN_REQUEST_FAULTS:
            return actions
        return [replace_payload(a, self._bent_request(a.payload))
                if isinstance(a, SendUDP) and a.payload[:1] == b"\x01" else a
                for a in actions]

    def _bent_request(self, payload: bytes) -> bytes:
        request = decode_request(payload)
        auth = request.auth(32)
        exts = [e for e in request.extensions if e is not auth]
        if self._has("mn.no-prefix-requests"):
            exts = [e for e in exts if type(e) not in (PrefixRequest, TunnelingMode)]
        for ext in exts:
            if type(ext) is PrefixRequest and ext.prefix_length <= 128:
                if self._has("mn.bad-prefix-request-length"):
                    ext.wire_length = 19
                if self._has("mn.stray-prefix-bits") and ext.prefix_length < 128:
                    ext.prefix = ext.prefix[:15] + bytes((ext.prefix[15] | 1,))
                if self._has("mn.prefix-length-200"):
                    ext.prefix_length = 200
        asked = [i for i, e in enumerate(exts) if type(e) is PrefixRequest]
        if self._has("mn.no-tunnel-mode-ext-colocated"):
            exts = [e for e in exts if type(e) is not TunnelingMode]
        if asked and self._has("mn.tunnel-mode-ext-in-fa-mode") and self.mode == "fa":
            exts.insert(asked[-1] + 1, TunnelingMode())
        if asked and self._has("mn.request-subtype-4"):
            exts.insert(asked[-1] + 1, DSMIPUnknown(4, b"\x00"))
        for ext in exts:
            if type(ext) is TunnelingMode and self._has("mn.tunnel-mode-reserved-nonzero"):
                ext.reserved = 0x5A
            if type(ext) is UDPTunnelRequest:
                if self._has("mn.udp-encapsulation-nonzero"):
                    ext.encapsulation = 4
                if self._has("mn.udp-reserved-nonzero"):
                    ext.reserved3 = 0x5A5A
        if self._has("mn.nonzero-reserved-flags"):
            request.flags |= 0x01
        fresh = AuthExtension(32, self.config.spi)
        request.extensions = [fresh] + exts if self._has("mn.extensions-after-auth") else \
            exts if self._has("mn.no-auth-extension") else exts + [fresh]
        payload = encode(request, {32: self.config.key})
        if self._has("mn.auth-excludes-extensions") and exts:
            # The authenticator computed as if the request carried no extension before it.
            end = len(payload) - 16
            payload = payload[:end] + hmac.digest(self.config.key, payload[:24] +
                                                  payload[end - 6:end], "md5")
        return payload

    def _encapsulate(self, packet, tunnel):
        if self._has("mn.tunnel-counts-as-hop"):
            packet = forwarded(packet) or packet
        if self._soliciting and self._has("mn.solicit-outside-hoa-tunnel"):
            _, outer = encapsulate(packet, True, self.care_of_address, self.config.home_agent,
                                   "ipip")
            return [SendIPv4(outer)]
        if self._has("mn.mld-via-coa") and self.colocated and _is_mld(packet):
            tunnel = "coa"
        actions = super()._encapsulate(packet, tunnel)
        return [self._bent_tunnel_data(a) if isinstance(a, SendUDP) else a for a in actions]

    def _bent_tunnel_data(self, action: SendUDP) -> SendUDP:
        data = action.payload
        if data[1:2] == b"\x29" and self._has("mn.udp-next-header-4"):
            data = data[:1] + b"\x04" + data[2:]
        if self._has("mn.udp-tunnel-reserved-nonzero"):
            data = data[:2] + b"\x5a\x5a" + data[4:]
        return replace_payload(action, data)

    def _solicit(self):
        self._soliciting = True
        try:
            return super()._solicit()
        finally:
            self._soliciting = False

    def send_ipv6(self, packet, now):
        actions = super().send_ipv6(packet, now)
        if self._has("mn.no-packet-too-big") and \
                any(isinstance(a, DeliverIPv6) for a in actions):
            tunnel = self._tunnel_for(parse_ipv6(packet).src)  # sent too big, as it is
            return self._encapsulate(packet, tunnel)
        return actions

    def _tunnel_mtu(self, tunnel):
        mtu, df = super()._tunnel_mtu(tunnel)
        if self._has("mn.tun-mtu-1500") and not self.config.dynamic_tunnel_mtu:
            mtu = 1500
        return mtu, df and not self._has("mn.dynamic-mtu-no-df")

    # -------------------------------------------------------------- what it reads
    def receive_udp(self, payload, src, sport, now):
        if payload[:1] == b"\x03" and self._pending is not None:
            ignored = self._ignored_reply(payload)
            if ignored:
                return ignored
            payload = self._bent_reply(payload)
        actions = super().receive_udp(payload, src, sport, now)
        if self._has("mn.no-reregistration"):
            self._reregister_at = None
        return actions

    def handle_timer(self, now):
        actions = super().handle_timer(now)
        if self._has("mn.no-reregistration"):
            self._reregister_at = None
        return actions

    def _ignored_reply(self, payload: bytes) -> list:
        try:
            reply = decode_reply(payload)
        except DecodeError:
            return []
        if reply.code == 133:
            return []
        if self._has("mn.reject-unknown-skippable") and \
                any(type(e) is RawExtension for e in reply.extensions):
            return [Event("reply-ignored", {"reason": "unknown extension"}, "warning")]
        if self._has("mn.reject-nonzero-reserved") and \
                any(e.reserved for e in reply.prefix_replies):
            return [Event("reply-ignored", {"reason": "reserved field"}, "warning")]
        return []

    def _bent_reply(self, payload: bytes) -> bytes:
        """A reply signed again (so a bad authenticator passes), its reject code made an
        accept: what an MN that skips those checks acts on."""
        resign = self._has("mn.accept-bad-reply-auth")
        accept = self._has("mn.ignore-header-reject")
        if not (resign or accept):
            return payload
        try:
            reply = decode_reply(payload)
        except DecodeError:
            return payload
        if reply.code in (133,) or (accept and not resign and reply.code <= 1):
            return payload
        if accept and reply.code > 1:
            reply.code = 0
        auth = reply.auth(32)
        reply.extensions = [e for e in reply.extensions if e is not auth] + \
            [AuthExtension(32, self.config.spi)]
        return encode(reply, {32: self.config.key})

    # -------------------------------------------------------------- what it decides
    def _resynchronise(self, ha_identification, now):
        if not self._has("mn.no-resync"):
            super()._resynchronise(ha_identification, now)

    def _want_link_local(self):
        if self._has("mn.no-link-local-registration"):
            return False
        if self._has("mn.skip-hoa-registration"):
            return self.config.dynamic_delegation
        return super()._want_link_local()

    def _register_delegated(self, networks, now):
        if self._has("mn.no-delegated-registration"):
            return []
        return super()._register_delegated(networks, now)

    def _reply_key(self, reply):
        if self._has("mn.strict-reply-prefix"):
            return reply.prefix_length, bytes(reply.prefix)  # no masking: stray bits count
        return super()._reply_key(reply)

    def _prefix_code_accepts(self, code):
        if self._has("mn.ignore-prefix-code"):
            return True
        if self._has("mn.reserved-codes-rejected"):
            return code <= 1
        return super()._prefix_code_accepts(code)

    def _tunnel_for_code(self, code):
        tunnel = super()._tunnel_for_code(code)
        if code == 1 and self._has("mn.coa-tunnel-in-fa-mode"):
            tunnel = "coa"
        if code == 1 and self._has("mn.hoa-tunnel-on-code-1"):
            tunnel = "hoa"
        if self._has("mn.ipv6-via-coa-on-code-0") and self.mode != "home":
            tunnel = "coa"
        return tunnel

    def _prefix_outcome(self, requests, reply):
        actions = super()._prefix_outcome(requests, reply)
        if requests and not reply.prefix_replies and self._has("mn.no-fallback"):
            self.registered = False
        if self._has("mn.missing-reply-accepted"):
            for key, state in self.prefixes.items():
                if state.code is None and not state.accepted:
                    self.prefixes[key] = PrefixState(state.network, True, None, "hoa")
        if self._has("mn.accept-unmatched-reply"):
            asked = {req.key for req in requests}
            for rep in reply.prefix_replies:
                if rep.key not in asked:
                    self.prefixes.setdefault(rep.key, PrefixState(
                        self._name(rep), True, rep.code, "hoa"))
        return actions

    def _decapsulate(self, outer, now, depth):
        if self._has("mn.no-ecn-drop"):  # every outer header read as Not-ECT: nothing dropped
            outer = dataclasses.replace(outer, tos=outer.tos & 0xFC)
        return super()._decapsulate(outer, now, depth)

    def _from_home_agent(self, src):
        return self._has("mn.accept-any-tunnel-source") or super()._from_home_agent(src)

    def _inner_ipv6(self, packet, via, now):
        if packet[6:7] == b"\x3a" and packet[40:41] == b"\x87":  # a Neighbor Solicitation
            if self._has("mn.no-neighbor-discovery"):
                return [DeliverIPv6(packet)]
            if self._has("mn.wrong-link-local"):  # answers only for another address
                advert = neighbor_advert_for(parse_ipv6(packet), packet[40:], WRONG_LINK_LOCAL)
                return [DeliverIPv6(packet)] if advert is None else \
                    self._encapsulate(advert, "hoa")
        return super()._inner_ipv6(packet, via, now)


def _is_mld(packet: bytes) -> bool:
    try:
        proto, data = upper_layer(parse_ipv6(packet))
    except DecodeError:
        return False
    return proto == PROTO_ICMPV6 and data[:1] != b"" and data[0] in (130, *MLD_TYPES)
