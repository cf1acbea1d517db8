"""Reference home agent: RFC 3344 registration processing plus RFC 5454 IPv6 bindings.

Sans-I/O. Inputs: UDP port-434 payloads (registrations, RFC 3519 tunnel data), IPv4 packets
addressed to the HA (protocols 4, 41, 47), IPv6 packets from the home side for registered
prefixes, and the current time. Outputs: actions (conformance.nodes.actions).
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

from conformance.codec import (
    AuthExtension, DecodeError, LongExtension, PrefixReply, PrefixRequest, RawExtension,
    RegistrationReply, RegistrationRequest, ReplyCode, TunnelingMode,
    UDPTunnelReply, UDPTunnelRequest, decode, encode,
)
from conformance.codec import dhcpv6 as dh
from conformance.codec.constants import reply_code_accepts
from conformance.codec.mld import parse_mld
from conformance.codec.packets import (
    PROTO_GRE, PROTO_ICMPV6, PROTO_IPIP, PROTO_IPV6, PROTO_UDP, ETHERTYPE_IPV4, ETHERTYPE_IPV6,
    IPv6, addr6, is_link_local, is_multicast, neighbor_advert_for, packet_too_big, parse_gre,
    parse_ipv4, parse_ipv6, parse_udp, text6, tunnel_link_local, udp6_packet, upper_layer,
)
from conformance.nodes.actions import drops_malformed, DeliverIPv6, Event, SendIPv4, SendUDP
from conformance.codec.ntp import ntp_time
from conformance.nodes.prefixes import PrefixTable
from conformance.nodes.timers import Deadlines
from conformance.codec.tunnel import (
    ENCAP_EXTRA, decapsulated_ipv4, decapsulated_ipv6, dynamic_tunnel_mtu, encapsulate,
    with_df,
)

MIP_PORT = 434
PREFIX_ACCEPT_HOA, PREFIX_ACCEPT_COA = 0, 1
PREFIX_REJECT_UNSPECIFIED, PREFIX_REJECT_PROHIBITED = 8, 9
MLD_TYPES = (131, 132, 143)  # Multicast Listener Query, Report, Version 2 Report

@dataclass
class MobileNodeEntry:
    """What the HA is configured with for one mobile node."""

    home_address: str
    spi: int
    key: bytes
    allowed_prefixes: list[ipaddress.IPv6Network] = field(default_factory=list)
    implicit_prefixes: list[ipaddress.IPv6Network] = field(default_factory=list)

    def __post_init__(self):
        # Integer (length, value) keys: policy checks without ipaddress objects per request.
        self.allowed_keys = [_key(n) for n in self.allowed_prefixes]

    def allows(self, length: int, value: int) -> bool:
        return any(length >= a_len and value >> (length - a_len) == a_value
                   for a_len, a_value in self.allowed_keys)


@dataclass
class HAConfig:
    address: str
    mobile_nodes: list[MobileNodeEntry]
    max_lifetime: int = 1800
    replay_window: float = 7.0
    dsmip: bool = True  # False: a plain RFC 3344 HA that skips type 152 like any unknown
    gre: bool = True
    ipip: bool = True  # False: a device that offers only GRE (it needs G on every request)
    udp_tunnelling: bool = True
    udp_keepalive: int = 110
    honour_tunneling_mode: bool = True
    tunnel_mtu: int = 1280  # the static tunnel MTU (RFC 4213 §3.2)
    dynamic_tunnel_mtu: bool = False  # RFC 4213 §3.2 dynamic method (RFC 5454 §3.6 OPTIONAL)
    link_mtu: int = 1500  # IPv4 path MTU assumed until an ICMPv4 Fragmentation Needed
    copy_dscp: bool = True
    full_ecn: bool = True
    delegation_pool: ipaddress.IPv6Network | None = None
    delegated_length: int = 56
    home_ipv6: str | None = None  # a global address of the home side: source of ICMPv6 errors
    max_groups: int = 64  # multicast groups one binding may join through MLD (§3.3.2)
    faults: frozenset[str] = frozenset()  # named faults (nodes/faults/), for self-tests


@dataclass(slots=True)
class Binding:
    home_address: str
    care_of_address: str
    spi: int
    lifetime: int
    expires: float
    identification: int
    colocated: bool
    reverse: bool
    encapsulation: str  # ipip | gre | udp
    reply_to: tuple[str, int]
    udp_peer: tuple[str, int] | None = None
    prefixes: dict = field(default_factory=dict)  # (length, value) -> "hoa" | "coa"
    link_locals: set = field(default_factory=set)  # registered with prefix length 255
    groups: set = field(default_factory=set)  # multicast groups joined through MLD

    @property
    def at_home(self) -> bool:
        return self.care_of_address == self.home_address

    def prefix_texts(self) -> list[dict]:
        return [{"prefix": _prefix_text(length, value), "tunnel": mode}
                for (length, value), mode in sorted(self.prefixes.items())]

    def to_dict(self, now: float) -> dict:
        return {"home_address": self.home_address, "care_of_address": self.care_of_address,
                "lifetime": self.lifetime, "lifetime_left": max(0, round(self.expires - now, 1)),
                "prefixes": self.prefix_texts(),
                "link_local": sorted(text6(a) for a in self.link_locals),
                "encapsulation": self.encapsulation, "colocated": self.colocated,
                "reverse_tunnel": self.reverse, "groups": sorted(text6(g) for g in self.groups)}


def _key(network: ipaddress.IPv6Network) -> tuple[int, int]:
    return network.prefixlen, int(network.network_address) >> (128 - network.prefixlen) \
        if network.prefixlen else 0



def _request_key(req: PrefixRequest) -> tuple[int, int]:
    length = req.prefix_length
    return length, int.from_bytes(req.prefix, "big") >> (128 - length) if length else 0


def _key_bytes(length: int, value: int) -> bytes:
    return (value << (128 - length) if length else 0).to_bytes(16, "big")


def _prefix_text(length: int, value: int) -> str:
    return f"{text6(_key_bytes(length, value))}/{length}"


def _network(length: int, value: int) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network((value << (128 - length) if length else 0, length))


class HomeAgent:
    HOA_ENCAPSULATION = "ipip"  # IPv6 in IPv4 to the home address (RFC 5454 §3.3.2, RFC 4213)
    def __init__(self, config: HAConfig):
        self.config = config
        self.address = config.address
        self.by_spi = {mn.spi: mn for mn in config.mobile_nodes}
        self.by_home = {mn.home_address: mn for mn in config.mobile_nodes}
        self.bindings: dict[str, Binding] = {}
        self.by_coa: dict[str, set] = {}  # care-of address -> home addresses registered there
        self.table = PrefixTable()
        self.last_identification: dict[str, int] = {}
        self._timers = Deadlines()  # binding expiry, one per home address
        self.delegations: dict[str, list[tuple[int, int]]] = {}  # home address -> prefixes
        self._next_delegation = 0
        self.path_mtu: dict[str, int] = {}  # IPv4 far end -> path MTU learnt (dynamic MTU)
        self.link_local = tunnel_link_local(config.address)
        self.server_duid = b"\x00\x03\x00\x01" + bytes(2) + bytes(int(x) for x in
                                                                 config.address.split("."))
        self.stats = {"registrations": 0, "accepted": 0, "rejected": 0, "dropped": 0,
                      "tunnelled_out": 0, "tunnelled_in": 0, "security_exceptions": 0}

    # ------------------------------------------------------------------ helpers
    def binding_table(self, now: float) -> list[dict]:
        return [b.to_dict(now) for b in sorted(self.bindings.values(),
                                               key=lambda b: b.home_address)]

    # ------------------------------------------------------------------ UDP 434
    @drops_malformed
    def receive_udp(self, payload: bytes, src: str, sport: int, now: float) -> list:
        if payload[:1] == b"\x04":
            return self._receive_tunnel_data(payload, src, sport, now)
        try:
            message = decode(payload)
        except DecodeError as err:
            self.stats["dropped"] += 1
            return [Event("decode-error", {"from": src, "port": sport, "error": str(err),
                                           "offset": err.offset, "field": err.field,
                                           "section": err.section}, "warning")]
        if not isinstance(message, RegistrationRequest):
            return [Event("unexpected-message", {"from": src, "type": message.type}, "warning")]
        return self._registration(payload, message, src, sport, now)

    def _reply(self, request: RegistrationRequest, code: int, lifetime: int, dst: str,
               dport: int, entry: MobileNodeEntry | None, extensions=(), identification=None,
               event_data=None, now: float = 0.0) -> list:
        exts = list(extensions)
        if entry is not None:
            exts.append(AuthExtension(32, entry.spi))  # RFC 3344 §3.5.2: the MN-HA last
        ident = request.identification if identification is None else identification
        reply = RegistrationReply(code, lifetime, request.home_address, self.address, ident,
                                  exts)
        payload = encode(reply, {32: entry.key} if entry else None)
        accepted = code <= 1
        self.stats["accepted" if accepted else "rejected"] += 1
        data = {"home_address": request.home_address, "care_of_address":
                request.care_of_address, "code": code, "lifetime": lifetime}
        data.update(event_data or {})
        return [SendUDP(self.address, dst, MIP_PORT, dport, payload),
                Event("registration-accepted" if accepted else "registration-rejected", data,
                      "info" if accepted else "warning")]

    def _registration(self, payload, request: RegistrationRequest, src, sport, now) -> list:
        self.stats["registrations"] += 1
        cfg = self.config
        # RFC 3344 §3.8.2.1: authentication first (code 131).
        auth = request.auth(32)
        entry = self.by_spi.get(auth.spi) if auth else None
        if auth is None or entry is None:
            return self._reply(request, ReplyCode.HA_MN_FAILED_AUTH, 0, src, sport, None,
                               event_data={"reason": "no MN-HA authentication extension"
                                           if auth is None else f"unknown SPI {auth.spi}"})
        expected = hmac.digest(entry.key, payload[:auth.offset + 6], "md5")
        if not hmac.compare_digest(expected, auth.authenticator or b""):
            return self._reply(request, ReplyCode.HA_MN_FAILED_AUTH, 0, src, sport, entry,
                               event_data={"reason": "authenticator mismatch"})
        if request.home_address != entry.home_address:
            return self._reply(request, ReplyCode.HA_MN_FAILED_AUTH, 0, src, sport, entry,
                               event_data={"reason": "SPI belongs to another home address"})
        # RFC 3344 §5.7.1 timestamps: within the window and newer than the last accepted.
        ident = request.identification
        stale = self._stale_identification(entry, ident, now)
        if stale is not None:
            ours = ntp_time(now)
            fixed = (ours & 0xFFFFFFFF00000000) | (ident & 0xFFFFFFFF)
            return self._reply(request, ReplyCode.HA_IDENTIFICATION_MISMATCH, 0, src, sport,
                               entry, identification=fixed, event_data={"reason": stale})
        if request.home_agent != self.address:
            return self._reply(request, ReplyCode.HA_UNKNOWN_HA_ADDRESS, 0, src, sport, entry,
                               event_data={"reason": f"home agent field {request.home_agent}"})
        # RFC 3344 §1.9: unknown non-skippable extensions make the request poorly formed.
        problem = self._poorly_formed(request, auth)
        if problem:
            return self._reply(request, ReplyCode.HA_POORLY_FORMED_REQUEST, 0, src, sport,
                               entry, event_data={"reason": problem})
        if request.flag("M") or (request.flag("G") and not cfg.gre) or \
                (not request.flag("G") and not cfg.ipip):
            return self._reply(request, ReplyCode.HA_REASON_UNSPECIFIED, 0, src, sport, entry,
                               event_data={"reason": "requested encapsulation unavailable"})
        self.last_identification[entry.home_address] = ident
        if request.lifetime == 0:
            return self._deregister(request, entry, src, sport, now)
        return self._register(request, entry, src, sport, now)

    def _stale_identification(self, entry: MobileNodeEntry, ident: int, now) -> str | None:
        """Why a timestamp identification fails RFC 3344 §5.7.1 (outside the replay window
        or not newer than the last accepted), or None."""
        skew = abs((ident >> 32) - (ntp_time(now) >> 32))
        if skew > self.config.replay_window:
            return f"identification {skew} s off the HA's clock"
        if ident <= self.last_identification.get(entry.home_address, -1):
            return "replayed identification"
        return None

    def _poorly_formed(self, request: RegistrationRequest, auth: AuthExtension) -> str | None:
        after_auth = False
        for ext in request.extensions:
            if ext is auth:
                after_auth = True
                continue
            kind = type(ext)
            if kind is RawExtension and ext.type < 128 or kind is LongExtension:
                return f"unrecognised non-skippable extension type {ext.type}"
            if self.config.dsmip and after_auth and ext.type == 152:
                return "DSMIPv4 extension after the MN-HA authentication extension (RFC 5454 §3.1)"
        return None

    def _deregister(self, request, entry, src, sport, now) -> list:
        actions = self._remove_binding(entry.home_address, "deregistered")
        return self._reply(request, ReplyCode.ACCEPTED, 0, src, sport, entry) + actions

    def _register(self, request: RegistrationRequest, entry: MobileNodeEntry, src, sport,
                  now) -> list:
        cfg = self.config
        lifetime = min(request.lifetime, cfg.max_lifetime)  # RFC 3344 §3.8.3
        colocated = request.flag("D")
        wants_udp = next((e for e in request.extensions if type(e) is UDPTunnelRequest), None)
        use_udp = wants_udp is not None and cfg.udp_tunnelling
        encapsulation = "udp" if use_udp else ("gre" if request.flag("G") else "ipip")
        old = self.bindings.get(entry.home_address)
        extensions, prefixes, link_locals, events = [], {}, set(), []
        requests = request.prefix_requests if cfg.dsmip else []
        if cfg.dsmip and requests:
            wants_coa = cfg.honour_tunneling_mode and \
                any(type(e) is TunnelingMode for e in request.extensions)
            extensions, prefixes, link_locals, events = self._answer_prefixes(
                entry, requests, colocated, wants_coa, request.care_of_address)
        elif not requests and entry.implicit_prefixes:
            prefixes = {_key(n): "hoa" for n in entry.implicit_prefixes}  # RFC 5454 §1.4
        if use_udp:
            extensions.append(UDPTunnelReply(code=0, keepalive=cfg.udp_keepalive))
        binding = Binding(entry.home_address, request.care_of_address, entry.spi, lifetime,
                          now + lifetime, request.identification, colocated, request.flag("T"),
                          encapsulation, (src, sport), (src, sport) if use_udp else None,
                          prefixes, link_locals, old.groups if old else set())
        actions = self._install(binding, old)
        self._timers.set(entry.home_address, binding.expires)
        code = ReplyCode.ACCEPTED_NO_SIMULTANEOUS_BINDINGS if request.flag("S") \
            else ReplyCode.ACCEPTED
        return self._reply(request, code, lifetime, src, sport, entry, extensions,
                           event_data={"prefixes": binding.prefix_texts(),
                                       "encapsulation": encapsulation}) + events + actions

    def _answer_prefixes(self, entry, requests, colocated, wants_coa, coa):
        """One reply per distinct prefix, in request order (RFC 5454 §3.3)."""
        extensions, prefixes, link_locals, events, seen = [], {}, set(), [], set()
        for req in requests:
            length = req.prefix_length
            key = _request_key(req) if length <= 128 else (length, req.prefix)
            if key in seen:
                continue  # never two replies for the same prefix
            seen.add(key)
            code = self._decide(entry, req, key, colocated, wants_coa)
            if code <= 7:
                if length == 255:
                    link_locals.add(req.prefix)
                elif length <= 128:
                    prefixes[key] = "coa" if code == PREFIX_ACCEPT_COA else "hoa"
            else:
                events.append(Event("prefix-rejected", {
                    "home_address": entry.home_address, "code": code,
                    "prefix": _prefix_text(*key) if length <= 128 else req.prefix_text}))
            reply = PrefixReply.answering(req, code)
            if length <= 128:
                reply.prefix = _key_bytes(*key)  # the originator zeroes stray bits (§2.2)
            extensions.append(reply)
        return extensions, prefixes, link_locals, events

    def _decide(self, entry: MobileNodeEntry, req: PrefixRequest, key, colocated: bool,
                wants_coa: bool) -> int:
        length = req.prefix_length
        if length == 255:
            return PREFIX_ACCEPT_HOA if is_link_local(req.prefix) else PREFIX_REJECT_UNSPECIFIED
        if length > 128:
            # Lengths 129-254 mean nothing (RFC 5454 §2.2): never accepted.
            return PREFIX_REJECT_UNSPECIFIED
        if not entry.allows(*key) and key not in self.delegations.get(entry.home_address, ()):
            return PREFIX_REJECT_PROHIBITED
        if self.table.conflict(key[0], key[1], entry.home_address) is not None:
            return PREFIX_REJECT_PROHIBITED
        return PREFIX_ACCEPT_COA if (colocated and wants_coa) else PREFIX_ACCEPT_HOA

    def _install(self, binding: Binding, old: Binding | None) -> list:
        actions = []
        old_prefixes = old.prefixes if old else {}
        for key in old_prefixes:
            if key not in binding.prefixes:
                self.table.remove(*key)
                actions.append(self._route("route-del", key, binding))
        for key in binding.prefixes:
            if self.table.owner(*key) != binding.home_address:
                try:
                    self.table.add(key[0], key[1], binding.home_address)
                except ValueError:  # held by another MN: _decide refused it; never crash
                    pass
            if key not in old_prefixes:
                actions.append(self._route("route-add", key, binding))
        if old is not None:
            self._forget_coa(old)
        if not binding.at_home:
            self.by_coa.setdefault(binding.care_of_address, set()).add(binding.home_address)
        self.bindings[binding.home_address] = binding
        actions.append(Event("binding-updated", {"home_address": binding.home_address,
                                                 "care_of_address": binding.care_of_address,
                                                 "lifetime": binding.lifetime}))
        return [a for a in actions if a is not None]

    def _route(self, name, key, binding) -> Event | None:
        # RFC 5454 §3.3.1 / RFC 3963 §6.3: make the prefix reachable through the MN's tunnel.
        return Event(name, {"prefix": _prefix_text(*key), "home_address": binding.home_address,
                            "care_of_address": binding.care_of_address})

    def _remove_binding(self, home_address: str, reason: str) -> list:
        binding = self.bindings.pop(home_address, None)
        if binding is None:
            return []
        self._timers.cancel(home_address)
        actions = []
        for key in binding.prefixes:
            self.table.remove(*key)
            actions.append(self._route("route-del", key, binding))
        self._forget_coa(binding)
        actions.append(Event("binding-removed", {"home_address": home_address,
                                                 "reason": reason}))
        return [a for a in actions if a is not None]

    def reply_not_sent(self, payload: bytes, now: float) -> list:
        """The adapter could not send this reply: a binding the MN was never told about is
        not kept (its routes would draw the MN's traffic into a tunnel it does not know)."""
        try:
            reply = decode(payload)
        except DecodeError:
            return []
        if not isinstance(reply, RegistrationReply) or not reply_code_accepts(reply.code):
            return []
        return self._remove_binding(reply.home_address, "reply could not be sent")

    def _forget_coa(self, binding: Binding) -> None:
        homes = self.by_coa.get(binding.care_of_address)
        if homes:
            homes.discard(binding.home_address)
            if not homes:
                del self.by_coa[binding.care_of_address]

    # ------------------------------------------------------------------ timers
    def next_timer(self) -> float | None:
        return self._timers.next()

    def handle_timer(self, now: float) -> list:
        actions = []
        for home in self._timers.due(now):
            if home in self.bindings:
                actions += self._remove_binding(home, "lifetime expired")
        return actions

    # ------------------------------------------------------------------ data plane, out
    @drops_malformed
    def receive_ipv6(self, packet: bytes, now: float) -> list:
        """An IPv6 packet from the home side: tunnel it to the MN that owns the destination."""
        try:
            ip6 = parse_ipv6(packet)
        except DecodeError as err:
            return [Event("bad-ipv6", {"error": str(err)}, "warning")]
        if is_multicast(ip6.dst):
            return self._multicast_out(packet, ip6)
        owner, _ = self.table.lookup(int.from_bytes(ip6.dst, "big"))
        binding = self.bindings.get(owner) if owner else None
        if binding is None:
            return []
        # The IP stack that routed the packet here already counted the HA's hop; the tunnel is
        # one link (RFC 4213 §3.3), so encapsulation leaves the hop limit alone.
        out = packet
        _, length = self.table.lookup(int.from_bytes(ip6.dst, "big"))
        key = (length, int.from_bytes(ip6.dst, "big") >> (128 - length) if length else 0)
        mode = binding.prefixes.get(key, "hoa")
        limit, _ = self._tunnel_mtu(binding, mode)
        if len(out) > limit:
            # RFC 4213 §3.2: too big for the tunnel, tell the source the tunnel MTU.
            source = addr6(self.config.home_ipv6) if self.config.home_ipv6 else self.link_local
            return [DeliverIPv6(packet_too_big(source, packet, limit)),
                    Event("packet-too-big", {"dst": ip6.dst_text, "size": len(out),
                                             "mtu": limit})]
        return self._tunnel_to(binding, out, mode)

    def _tunnel_mtu(self, binding: Binding, mode: str) -> tuple[int, bool]:
        """(tunnel MTU, set DF on the IPv4 headers) for IPv6 tunnelled to this binding: the
        static MTU with DF clear, or the dynamic method over the path MTU to the far end."""
        cfg = self.config
        if not cfg.dynamic_tunnel_mtu:
            return cfg.tunnel_mtu, False
        if binding.at_home:
            far_end, overhead = binding.home_address, 20
        else:
            far_end = binding.care_of_address
            overhead = 20 + ENCAP_EXTRA.get(binding.encapsulation, 0) + \
                (20 if mode != "coa" else 0)
        mtu, df = dynamic_tunnel_mtu(self.path_mtu.get(far_end, cfg.link_mtu), overhead)
        return mtu, df

    @drops_malformed
    def receive_icmpv4(self, packet: bytes, now: float) -> list:
        """ICMPv4 Fragmentation Needed about a tunnel packet the HA sent: with the dynamic
        tunnel MTU it lowers the IPv4 path MTU to that far end (RFC 1191, RFC 4213 §3.2)."""
        ip = parse_ipv4(packet)
        icmp = ip.payload
        if ip.proto != 1 or len(icmp) < 28 or icmp[0] != 3 or icmp[1] != 4:
            return []
        quoted = parse_ipv4(icmp[8:])
        # Tunnel packets: IPv6 straight in IPv4 (the CoA tunnel, RFC 4213), IP in IP, GRE, UDP.
        if quoted.src != self.address or quoted.proto not in (PROTO_IPV6, PROTO_IPIP, PROTO_GRE,
                                                              PROTO_UDP):
            return []
        mtu = int.from_bytes(icmp[6:8], "big")
        if not self.config.dynamic_tunnel_mtu or mtu < 68:
            return [Event("fragmentation-needed-ignored", {"dst": quoted.dst, "mtu": mtu})]
        self.path_mtu[quoted.dst] = min(mtu, self.path_mtu.get(quoted.dst, self.config.link_mtu))
        return [Event("path-mtu", {"dst": quoted.dst, "mtu": self.path_mtu[quoted.dst]})]

    def _tunnel_to(self, binding: Binding, inner6: bytes, mode: str) -> list:
        cfg = self.config
        copy_dscp, full_ecn = cfg.copy_dscp, cfg.full_ecn
        self.stats["tunnelled_out"] += 1
        _, df = self._tunnel_mtu(binding, mode)
        if mode == "coa" and not binding.at_home:
            # RFC 5454 §3.3.2 case 2: straight to the co-located CoA, negotiated encapsulation.
            return self._send_outer(binding, inner6, True, copy_dscp, full_ecn, df)
        # Case 1: IPv6 in IPv4 to the HoA (RFC 4213), then as any packet for the HoA.
        _, middle = encapsulate(inner6, True, self.address, binding.home_address,
                                self.HOA_ENCAPSULATION, copy_dscp=copy_dscp,
                                full_ecn=full_ecn)
        if df:
            middle = with_df(middle)
        if binding.at_home:
            return [SendIPv4(middle)]
        return self._send_outer(binding, middle, False, copy_dscp, full_ecn, df)

    def _send_outer(self, binding, inner, inner_is_ipv6, copy_dscp, full_ecn, df) -> list:
        kind, data = encapsulate(inner, inner_is_ipv6, self.address, binding.care_of_address,
                                 binding.encapsulation, copy_dscp=copy_dscp, full_ecn=full_ecn)
        if kind == "ipv4" and df:
            data = with_df(data)
        if kind == "udp":
            host, port = binding.udp_peer
            return [SendUDP(self.address, host, MIP_PORT, port, data)]
        return [SendIPv4(data)]

    def _multicast_out(self, packet: bytes, ip6: IPv6) -> list:
        if ip6.dst[1] & 0x0F <= 2:
            return []  # link-scoped groups stay on the home link
        out = packet
        actions = []
        for binding in self.bindings.values():
            if ip6.dst in binding.groups and out is not None:
                mode = "coa" if "coa" in binding.prefixes.values() else "hoa"
                actions += self._tunnel_to(binding, out, mode)
        return actions

    # ------------------------------------------------------------------ data plane, in
    @drops_malformed
    def receive_ipv4(self, packet: bytes, now: float) -> list:
        """An IPv4 packet addressed to the HA with protocol 4, 41 or 47."""
        try:
            outer = parse_ipv4(packet)
        except DecodeError as err:
            return [Event("bad-ipv4", {"error": str(err)}, "warning")]
        return self._reverse(outer.src, outer.dst, outer.proto, outer.payload, outer.tos, now)

    def _receive_tunnel_data(self, payload, src, sport, now) -> list:
        try:
            message = decode(payload)
        except DecodeError as err:
            return [Event("decode-error", {"from": src, "error": str(err)}, "warning")]
        proto = {41: PROTO_IPV6, 4: PROTO_IPIP, 47: PROTO_GRE}.get(message.next_header)
        if proto is None:
            return [Event("tunnel-data-dropped", {"from": src, "next_header":
                                                  message.next_header}, "warning")]
        binding = self._binding_for_outer(src)
        if binding is not None and binding.udp_peer is not None:
            binding.udp_peer = (src, sport)  # follow NAT rebinding
        return self._reverse(src, self.address, proto, message.payload, 0, now)

    def _binding_for_outer(self, src: str) -> Binding | None:
        binding = self.bindings.get(src)  # outer source is the HoA
        if binding is None:
            homes = self.by_coa.get(src)
            binding = self.bindings.get(next(iter(homes))) if homes else None
        return binding

    def _reverse(self, src, dst, proto, payload, tos, now, depth=0) -> list:
        binding = self._binding_for_outer(src)
        if binding is None:
            return self._security_exception(None, src, dst, None, None,
                                            "outer source is no registered HoA or CoA")
        if proto == PROTO_GRE:
            try:
                ethertype, payload = parse_gre(payload)
            except DecodeError as err:
                return [Event("bad-gre", {"from": src, "error": str(err)}, "warning")]
            proto = {ETHERTYPE_IPV6: PROTO_IPV6, ETHERTYPE_IPV4: PROTO_IPIP}.get(ethertype)
            if proto is None:
                return [Event("gre-dropped", {"from": src, "protocol": ethertype}, "warning")]
        if proto == PROTO_IPIP:
            if depth:
                return [Event("dropped", {"from": src, "reason": "nested too deep"}, "warning")]
            inner = decapsulated_ipv4(tos, payload)
            if inner is None:
                return []
            try:
                ip4 = parse_ipv4(inner)
            except DecodeError as err:
                return [Event("bad-ipv4", {"error": str(err)}, "warning")]
            if ip4.dst != self.address:
                return [Event("reverse-ipv4", {"from": ip4.src, "to": ip4.dst})]
            return self._reverse(ip4.src, ip4.dst, ip4.proto, ip4.payload, ip4.tos, now, 1)
        if proto != PROTO_IPV6:
            return [Event("dropped", {"from": src, "protocol": proto}, "info")]
        inner6 = decapsulated_ipv6(tos, payload)
        if inner6 is None:
            return [Event("ecn-drop", {"from": src})]
        try:
            ip6 = parse_ipv6(inner6)
        except DecodeError as err:
            return [Event("bad-ipv6", {"from": src, "error": str(err)}, "warning")]
        return self._inner_ipv6(binding, src, dst, ip6, inner6, now)

    def _inner_ipv6(self, binding, outer_src, outer_dst, ip6: IPv6, packet, now) -> list:
        if is_link_local(ip6.src):
            # Link-scoped traffic of the tunnel link (MLD, DHCPv6, ND): consumed by the HA.
            if binding is None:
                return []
            if ip6.src not in binding.link_locals and ip6.src != tunnel_link_local(
                    binding.home_address) and not (binding.colocated and ip6.src ==
                                                   tunnel_link_local(binding.care_of_address)):
                return self._security_exception(binding, outer_src, outer_dst, ip6.src_text,
                                                ip6.dst_text, "unregistered link-local source")
            return self._local_ipv6(binding, outer_src, ip6, now)
        owner, _ = self.table.lookup(int.from_bytes(ip6.src, "big"))
        if not self._may_send_from(binding, owner):
            return self._security_exception(binding, outer_src, outer_dst, ip6.src_text,
                                            ip6.dst_text, "inner source is under no "
                                            "registered prefix of this mobile node")
        self.stats["tunnelled_in"] += 1
        if ip6.dst == self.link_local or is_multicast(ip6.dst) and ip6.dst[1] & 0x0F <= 2:
            return self._local_ipv6(binding, outer_src, ip6, now)
        # Decapsulated as received (RFC 4213 §3.3); the IP stack forwards and counts the hop.
        return [DeliverIPv6(packet)]

    @staticmethod
    def _may_send_from(binding: Binding | None, owner: str | None) -> bool:
        """RFC 5454 §3.3.2/§4: the inner source lies under a prefix of the tunnel's MN."""
        return binding is not None and owner == binding.home_address

    def _security_exception(self, binding, outer_src, outer_dst, inner_src, inner_dst, why):
        self.stats["security_exceptions"] += 1
        # RFC 5454 §4: silently discard and log the event as a security exception.
        return [Event("security-exception", {
            "mobile_node": binding.home_address if binding else None, "outer_src": outer_src,
            "outer_dst": outer_dst, "inner_src": inner_src, "inner_dst": inner_dst,
            "reason": why}, "warning")]

    def _local_ipv6(self, binding: Binding, outer_src: str, ip6: IPv6, now) -> list:
        proto, data = upper_layer(ip6)
        if proto == PROTO_ICMPV6 and data[:1] and data[0] in MLD_TYPES:
            try:
                result = parse_mld(data)
            except DecodeError as err:
                return [Event("bad-mld", {"error": str(err)}, "warning")]
            joined, left = result
            # Only multicast addresses are groups, and a binding holds a bounded number.
            room = max(0, self.config.max_groups - len(binding.groups))
            joined = set(sorted(g for g in joined - binding.groups if is_multicast(g))[:room])
            binding.groups |= joined
            binding.groups -= left
            return [Event("mld-membership", {"home_address": binding.home_address,
                                             "joined": sorted(text6(g) for g in joined),
                                             "left": sorted(text6(g) for g in left),
                                             "via": "hoa" if outer_src ==
                                             binding.home_address else "coa"})]
        if proto == PROTO_ICMPV6:
            advert = neighbor_advert_for(ip6, data, self.link_local)
            if advert is not None:  # RFC 4213 §3.8: neighbor discovery over the tunnel
                return self._tunnel_to(binding, advert, "hoa" if outer_src ==
                                       binding.home_address else "coa")
        if proto == PROTO_UDP:
            try:
                sport, dport, body = parse_udp(data)
            except DecodeError:
                return []
            if dport == dh.SERVER_PORT and self.config.delegation_pool is not None:
                return self._dhcpv6(binding, ip6, sport, body)
        return []

    # ------------------------------------------------------------------ DHCPv6-PD server
    def _dhcpv6(self, binding: Binding, ip6: IPv6, sport: int, body: bytes) -> list:
        try:
            msg = dh.decode_dhcpv6(body)
        except DecodeError as err:
            return [Event("bad-dhcpv6", {"error": str(err)}, "warning")]
        if msg.msg_type not in (dh.SOLICIT, dh.REQUEST, dh.RENEW, dh.REBIND) or not msg.ia_pd:
            return []
        prefixes = self._delegate(binding.home_address)
        lifetime = binding.lifetime
        ia = dh.IAPD(msg.ia_pd[0].iaid, lifetime // 2, lifetime * 4 // 5,
                     [dh.IAPrefix(lifetime, lifetime, length, _network(length, value)
                                  .network_address.packed) for length, value in prefixes])
        kind = dh.ADVERTISE if msg.msg_type == dh.SOLICIT and not msg.rapid_commit else dh.REPLY
        reply = dh.DHCPv6Message(kind, msg.transaction_id, msg.client_id, self.server_duid, [ia],
                                 rapid_commit=msg.rapid_commit and msg.msg_type == dh.SOLICIT)
        packet = udp6_packet(self.link_local, ip6.src, dh.SERVER_PORT, sport,
                             dh.encode_dhcpv6(reply), hop_limit=255)
        return self._tunnel_to(binding, packet, "hoa") + [
            Event("prefix-delegated", {"home_address": binding.home_address,
                                       "prefixes": [str(_network(*p)) for p in prefixes]})]

    def _delegate(self, home_address: str) -> list[tuple[int, int]]:
        existing = self.delegations.get(home_address)
        if existing:
            return existing
        pool = self.config.delegation_pool
        length = self.config.delegated_length
        base = int(pool.network_address) >> (128 - length)
        count = 1 << (length - pool.prefixlen)
        while self._next_delegation < count:
            value = base + self._next_delegation
            self._next_delegation += 1
            if self.table.conflict(length, value, home_address) is None:
                self.delegations[home_address] = [(length, value)]
                return self.delegations[home_address]
        return []


__all__ = ["HomeAgent", "HAConfig", "MobileNodeEntry", "Binding"]
