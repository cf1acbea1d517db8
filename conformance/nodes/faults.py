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
    AuthExtension, DecodeError, DSMIPUnknown, LongExtension, PrefixReply, PrefixRequest,
    RawExtension, RegistrationRequest, TunnelingMode, UDPTunnelReply, UDPTunnelRequest,
    append_authentication, decode, decode_reply, decode_request, encode, verify_authenticator,
)
from conformance.codec.constants import ExtType
from conformance.codec.packets import (
    PROTO_GRE, PROTO_ICMPV6, PROTO_IPV6, ipv4_packet, neighbor_advert_for, parse_gre, parse_ipv4,
    parse_ipv6, upper_layer,
)
from conformance.codec.tunnel import encapsulate, forwarded
from conformance.nodes.actions import DeliverIPv6, Event, SendIPv4, SendUDP
from conformance.nodes.fa import FAConfig, ForeignAgent
from conformance.nodes.ha import MLD_TYPES, HAConfig, HomeAgent
from conformance.nodes.mn import MNConfig, MobileNode, PrefixState
from conformance.nodes.prefixes import PrefixTable

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
WRONG_LINK_LOCAL = bytes.fromhex("fe80000000000000000000000000abcd")
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
            dropped = self._dropped_tunnel(src, {41: PROTO_IPV6}.get(payload[1:2] and
                                                                   payload[1]))
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
                action = _replace_payload(action, data)
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


# ---------------------------------------------------------------------- mobile node
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
        return [_replace_payload(a, self._bent_request(a.payload))
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
        return _replace_payload(action, data)

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


# ---------------------------------------------------------------------- adapters
# Two faults live in the socket and TUN adapter, which asks these.
def tun_device_mtu(engine_config, mtu: int) -> int:
    """The MTU the adapter gives the MN's tunnel device (too large with mn.tun-mtu-1500)."""
    return 1500 if "mn.tun-mtu-1500" in engine_config.faults else mtu


def answers_router_solicitations(engine_config) -> bool:
    """ha.advertise-prefixes: the HA's adapter answers a Router Solicitation on the home
    link with the registered prefixes."""
    return "ha.advertise-prefixes" in engine_config.faults


def engine_for(role: str, config):
    """The reference engine of `role` for its engine configuration, with the named faults
    the configuration lists."""
    faults = frozenset(config.faults)
    if role == "fa":
        return FaultyForeignAgent(config, faults) if faults else ForeignAgent(config)
    if role == "ha":
        return FaultyHomeAgent(config, faults) if faults else HomeAgent(config)
    return FaultyMobileNode(config, faults) if faults else MobileNode(config)
