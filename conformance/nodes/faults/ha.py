"""The HA's named faults: its requests and replies rewritten (and signed again), its
configuration patched, its decisions overridden."""

from __future__ import annotations

import dataclasses
import hmac

from conformance.codec import (
    AuthExtension, DecodeError, DSMIPUnknown, LongExtension, PrefixReply, RawExtension,
    RegistrationRequest, TunnelingMode, UDPTunnelReply, decode, decode_reply, decode_request,
    encode,
)
from conformance.codec.packets import (
    PROTO_GRE, PROTO_ICMPV6, PROTO_IPV6, ipv4_packet, neighbor_advert_for, parse_gre, parse_ipv4,
    upper_layer,
)
from conformance.codec.tunnel import forwarded
from conformance.nodes.actions import DeliverIPv6, Event, SendUDP
from conformance.nodes.faults.common import WRONG_LINK_LOCAL, replace_payload
from conformance.nodes.ha import MLD_TYPES, HAConfig, HomeAgent
from conformance.nodes.prefixes import PrefixTable


HA_FAULTS = {
    "ha.duplicate-prefix-reply": ["RFC5454-3.3-03"],
    "ha.no-prefix-reply": ["RFC5454-3.3-02"],
    "ha.wrong-prefix-echo": ["RFC5454-3.3-05"],
    "ha.no-overlap-check": ["RFC5454-3.3-06"],
    "ha.accept-spoofed-inner": ["RFC5454-3.3.2-07", "RFC5454-4-02", "RFC5454-3.3.2-09"],
    "ha.accept-any-outer": ["RFC5454-3.3.2-08", "RFC5454-4-01", "RFC3024-4.2-01",
                            "RFC4213-3.6-01"],
    "ha.no-security-log": ["RFC5454-4-03"],
    "ha.prefix-accept-on-reject": ["RFC5454-3.2-D1"],
    "ha.coa-code-in-fa-mode": ["RFC5454-3.3-04", "RFC5454-2.2-F4"],
    "ha.tunnel-to-coa-always": ["RFC5454-3.3.2-02"],
    "ha.gre-to-hoa": ["RFC5454-3.3.2-D2", "RFC4213-3.5-01"],
    "ha.ipip-despite-gre": ["RFC5454-3.3.2-D1", "RFC3344-3.8.3-03"],
    "ha.keep-omitted-prefixes": ["RFC5454-3.8-D3"],
    "ha.keep-after-deregistration": ["RFC5454-3.8-D2", "RFC3344-3.8.2-01"],
    "ha.keep-after-expiry": ["RFC5454-3.8-D1", "RFC5454-3.3-D1"],
    "ha.stray-bits-in-reply": ["RFC5454-2.2-01"],
    "ha.reject-stray-bits": ["RFC5454-2.1-02"],
    "ha.accept-bad-prefix-length": ["RFC5454-2.1-F2"],
    "ha.nonzero-reply-reserved": ["RFC5454-2.2-F2"],
    "ha.tunnel-counts-as-hop": ["RFC4213-3.3-01"],
    "ha.no-ecn-copy": ["RFC5454-3.6-05", "RFC5454-3.6-06", "RFC3168-9.1.1-01"],
    "ha.set-df": ["RFC5454-3.6-03", "RFC4213-3.2-01"],
    "ha.no-packet-too-big": ["RFC4213-3.2-02"],
    "ha.no-route-announcement": ["RFC5454-3.3.1-01", "RFC3963-6.3-01"],
    "ha.hide-prefix-state": ["RFC5454-3.3.2-01"],
    "ha.no-multicast-forwarding": ["RFC5454-3.3.2-10"],
    "ha.advertise-prefixes": ["RFC5454-3.3-07"],  # acted on by the adapter (home link)
    "ha.ignore-mld": ["RFC5454-3.3.3-01", "RFC3775-10.4.3-01"],
    "ha.no-neighbor-discovery": ["RFC5454-3.6-02", "RFC4213-3.8-01"],
    "ha.wrong-link-local": ["RFC5454-3.6-01", "RFC4213-3.7-01"],
    "ha.skip-auth-check": ["RFC3344-3.8.2.1-01"],
    "ha.reply-without-auth": ["RFC3344-3.2-01"],
    "ha.wrong-reply-identification": ["RFC3344-3.8.3-02"],
    "ha.skip-identification-check": ["RFC3344-3.8.2.1-02", "RFC5454-3.3-01"],
    "ha.133-without-ha-time": ["RFC3344-5.7.1-01"],
    "ha.no-lifetime-cap": ["RFC3344-3.8.3-01"],
    "ha.accept-unknown-nonskippable": ["RFC3344-1.9-02"],
    "ha.reject-unknown-skippable": ["RFC3344-1.9-01", "RFC5454-5-03"],
    "ha.udp-next-header-4": ["RFC5454-3.9-02", "RFC3519-3.3-02"],
    "ha.bad-prefix-reply-length": ["RFC5454-2.2-F1"],
    "ha.auth-over-header-only": ["RFC3344-3.5.1-01"],
    "ha.no-udp-tunnel-reply": ["RFC3519-3.2-01", "RFC5454-3.9-01"],
    "ha.ignore-tunneling-mode": ["RFC5454-3.3.2-04"],
    "ha.drop-from-hoa": ["RFC5454-3.3.2-03"],
    "ha.drop-from-coa": ["RFC5454-3.3.2-05"],
    "ha.ignore-implicit-prefixes": ["RFC5454-1.4-01"],
    "ha.reject-link-local": ["RFC5454-3.7.1-D1", "RFC5454-2.2-F3"],
    "ha.reject-tunnel-mode-reserved": ["RFC5454-2.3-F2"],
    "ha.reply-subtype-4": ["RFC5454-5-01"],
    "ha.udp-reserved-nonzero": ["RFC3519-3.3-01"],
    "ha.no-delegation-reply": ["RFC3633-9-01", "RFC5454-3.7.1-03"],
    # Optional features (PICS): these break a configuration that claims the feature.
    "ha.honour-ignored-tunneling-mode": ["RFC5454-3.3.2-06"],
    "ha.dynamic-mtu-no-df": ["RFC5454-3.6-04"],
    "ha.dynamic-mtu-ignore-frag-needed": ["RFC5454-3.6-04"],
}

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
    if "ha.no-ecn-copy" in faults:
        changes.update(copy_dscp=False, full_ecn=False)
    if "ha.ignore-implicit-prefixes" in faults:
        changes["mobile_nodes"] = [dataclasses.replace(e, implicit_prefixes=[])
                                   for e in config.mobile_nodes]
    return dataclasses.replace(config, **changes) if changes else config


class FaultyHomeAgent(HomeAgent):
    """The reference HA, with its requests, replies and decisions bent by named faults."""

    def __init__(self, config: HAConfig, faults: frozenset[str]):
        super().__init__(_ha_config(config, faults))
        self.named_faults = faults
        if "ha.no-overlap-check" in faults:
            self.table = _UncheckedPrefixTable()
        if "ha.gre-to-hoa" in faults:
            self.HOA_ENCAPSULATION = "gre"

    def _has(self, name: str) -> bool:
        return name in self.named_faults

    # -------------------------------------------------------------- its inputs
    def receive_udp(self, payload: bytes, src: str, sport: int, now: float) -> list:
        if payload[:1] == b"\x04":  # RFC 3519 tunnel data
            carried = PROTO_IPV6 if payload[1:2] == bytes((PROTO_IPV6,)) else None
            dropped = self._dropped_tunnel(src, carried)
            return dropped or self._bent(super().receive_udp(payload, src, sport, now))
        request = _decoded_request(payload)
        if request is None:
            return self._bent(super().receive_udp(payload, src, sport, now))
        if self.named_faults & HA_REQUEST_FAULTS:
            payload, request = self._bent_request(payload, request)
        actions = super().receive_udp(payload, src, sport, now)
        if self.named_faults & HA_REPLY_FAULTS:
            actions = [self._bent_reply(a, request) if isinstance(a, SendUDP) and
                       a.payload[:1] == b"\x03" else a for a in actions]
        return self._bent(actions)

    def receive_ipv4(self, packet: bytes, now: float) -> list:
        try:
            outer = parse_ipv4(packet)
        except DecodeError:
            return super().receive_ipv4(packet, now)
        dropped = self._dropped_tunnel(outer.src, outer.proto)
        if dropped:
            return dropped
        if self._has("ha.accept-any-outer") and self._binding_for_outer(outer.src) is None:
            packet = self._as_from_owner(outer) or packet
        return self._bent(super().receive_ipv4(packet, now))

    def receive_ipv6(self, packet: bytes, now: float) -> list:
        if self._has("ha.tunnel-counts-as-hop"):
            lowered = forwarded(packet)
            if lowered is None:
                return [Event("hop-limit-exceeded", {}, "info")]
            packet = lowered
        actions = super().receive_ipv6(packet, now)
        if self._has("ha.no-packet-too-big"):  # the only IPv6 it hands its own stack
            actions = [a for a in actions if not isinstance(a, DeliverIPv6)]
        return self._bent(actions)

    def receive_icmpv4(self, packet: bytes, now: float) -> list:
        if self._has("ha.dynamic-mtu-ignore-frag-needed"):
            return []
        return super().receive_icmpv4(packet, now)

    def handle_timer(self, now: float) -> list:
        if self._has("ha.keep-after-expiry"):
            self._timers.due(now)  # its only timers are bindings' lifetimes: none expires
            return []
        return super().handle_timer(now)

    def binding_table(self, now: float) -> list[dict]:
        rows = super().binding_table(now)
        if self._has("ha.hide-prefix-state"):
            for row in rows:
                row["prefixes"] = []
        return rows

    def _dropped_tunnel(self, src: str, proto) -> list:
        """The faults that drop reverse-tunnelled traffic from the HoA or the CoA."""
        binding = self._binding_for_outer(src)
        if binding is None:
            return []
        if src == binding.home_address and self._has("ha.drop-from-hoa") or \
                src == binding.care_of_address and proto == PROTO_IPV6 and \
                self._has("ha.drop-from-coa"):
            return [Event("dropped", {"from": src}, "info")]
        return []

    def _as_from_owner(self, outer) -> bytes | None:
        """An IPv6-in-IPv4 packet from an unknown source, as if the owner of its inner
        source had sent it from its care-of address."""
        payload = outer.payload
        if outer.proto == PROTO_GRE:
            try:
                _, payload = parse_gre(payload)
            except DecodeError:
                return None
        elif outer.proto != PROTO_IPV6:
            return None
        if len(payload) < 40:
            return None
        owner, _ = self.table.lookup(int.from_bytes(payload[8:24], "big"))
        binding = self.bindings.get(owner) if owner else None
        if binding is None:
            return None
        return ipv4_packet(binding.care_of_address, outer.dst, outer.proto, outer.payload,
                           tos=outer.tos)

    # -------------------------------------------------------------- what it sends
    def _bent(self, actions: list) -> list:
        out = []
        for action in actions:
            if isinstance(action, Event) and action.name == "security-exception" and \
                    self._has("ha.no-security-log"):
                continue
            if isinstance(action, DeliverIPv6) and self._has("ha.tunnel-counts-as-hop"):
                lowered = forwarded(action.packet)
                if lowered is None:
                    continue
                action = DeliverIPv6(lowered)
            if isinstance(action, SendUDP) and action.payload[:1] == b"\x04":
                data = action.payload
                if data[1] == 41 and self._has("ha.udp-next-header-4"):
                    data = data[:1] + b"\x04" + data[2:]
                if self._has("ha.udp-reserved-nonzero"):
                    data = data[:2] + b"\x5a\x5a" + data[4:]
                action = replace_payload(action, data)
            out.append(action)
        return out

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
        return replace_payload(action, payload)

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
    def _stale_identification(self, entry, ident, now):
        if self._has("ha.skip-identification-check"):
            return None
        return super()._stale_identification(entry, ident, now)

    def _may_send_from(self, binding, owner) -> bool:
        return self._has("ha.accept-spoofed-inner") or super()._may_send_from(binding, owner)

    def _route(self, name, key, binding):
        return None if self._has("ha.no-route-announcement") else \
            super()._route(name, key, binding)

    def _tunnel_mtu(self, binding, mode):
        mtu, df = super()._tunnel_mtu(binding, mode)
        if self._has("ha.dynamic-mtu-no-df"):
            df = False
        return mtu, df or self._has("ha.set-df")

    def _tunnel_to(self, binding, inner6, mode):
        if self._has("ha.tunnel-to-coa-always") and not binding.at_home:
            mode = "coa"
        return super()._tunnel_to(binding, inner6, mode)

    def _multicast_out(self, packet, ip6):
        return [] if self._has("ha.no-multicast-forwarding") else \
            super()._multicast_out(packet, ip6)

    def _dhcpv6(self, binding, ip6, sport, body):
        return [] if self._has("ha.no-delegation-reply") else \
            super()._dhcpv6(binding, ip6, sport, body)

    def _local_ipv6(self, binding, outer_src, ip6, now):
        proto, data = upper_layer(ip6)
        if proto == PROTO_ICMPV6 and data[:1]:
            if data[0] in MLD_TYPES and self._has("ha.ignore-mld"):
                return []
            if data[0] not in MLD_TYPES and self._has("ha.no-neighbor-discovery"):
                return []
            if data[0] == 135 and self._has("ha.wrong-link-local"):
                advert = neighbor_advert_for(ip6, data, WRONG_LINK_LOCAL)
                return [] if advert is None else self._tunnel_to(
                    binding, advert, "hoa" if outer_src == binding.home_address else "coa")
        return super()._local_ipv6(binding, outer_src, ip6, now)

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


class _UncheckedPrefixTable(PrefixTable):
    """A prefix table that sees no overlap."""

    def conflict(self, length, value, owner):
        return None


def _decoded_request(payload: bytes) -> RegistrationRequest | None:
    try:
        message = decode(payload)
    except DecodeError:
        return None
    return message if type(message) is RegistrationRequest else None
