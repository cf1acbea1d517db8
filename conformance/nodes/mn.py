"""Reference mobile node: RFC 3344 registration with RFC 5454 IPv6 prefix bindings.

Sans-I/O. The MN registers through a foreign agent or from a co-located care-of address,
requests its IPv6 prefixes (explicit mode), handles the reply exactly as RFC 5454 §3.5 says,
tunnels its IPv6 traffic over the negotiated tunnel, and can obtain prefixes through DHCPv6
prefix delegation over the home-address tunnel (§3.7.1).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from conformance.codec import (
    AuthExtension, DecodeError, PrefixRequest, RegistrationReply, RegistrationRequest,
    TunnelData, TunnelingMode, UDPTunnelRequest, decode, encode, verify_authenticator,
)
from conformance.codec import dhcpv6 as dh
from conformance.codec.mld import mldv2_report
from conformance.codec.packets import (
    ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_GRE, PROTO_IPIP, PROTO_IPV6, PROTO_UDP, addr6,
    is_link_local, neighbor_advert_for, packet_too_big, parse_gre, parse_ipv4, parse_ipv6,
    parse_udp, text6, tunnel_link_local, udp6_packet,
)
from conformance.nodes.actions import drops_malformed, DeliverIPv6, Event, SendIPv4, SendUDP
from conformance.codec.constants import prefix_code_accepts
from conformance.codec.ntp import ntp_time
from conformance.codec.tunnel import (
    ENCAP_EXTRA, decapsulated_ipv4, decapsulated_ipv6, dynamic_tunnel_mtu, encapsulate, with_df,
)

MIP_PORT = 434
RETRANSMIT_INITIAL = 1.0  # RFC 3344 §3.6.3: back off exponentially from a first timeout
RETRANSMIT_MAX_TRIES = 5


@dataclass
class MNConfig:
    home_address: str
    home_agent: str
    spi: int
    key: bytes
    prefixes: list[ipaddress.IPv6Network] = field(default_factory=list)
    lifetime: int = 1800
    request_coa_tunnel: bool = True  # send the tunnelling mode extension when co-located
    dynamic_delegation: bool = False
    reverse_tunnel: bool = False
    gre: bool = False
    udp_tunnelling: bool = False
    groups: list[str] = field(default_factory=list)  # multicast groups to join once bound
    # Implicit mode (RFC 5454 §1.4): prefixes the HA binds to the HoA by configuration, never
    # requested; their traffic goes over the HoA tunnel once the HoA is registered.
    implicit_prefixes: list[ipaddress.IPv6Network] = field(default_factory=list)
    tunnel_mtu: int = 1280  # static tunnel MTU (RFC 4213 §3.2)
    dynamic_tunnel_mtu: bool = False  # RFC 4213 §3.2 dynamic method (RFC 5454 §3.6 OPTIONAL)
    link_mtu: int = 1500  # IPv4 MTU the dynamic method starts from
    faults: frozenset[str] = frozenset()  # named faults (nodes/faults/), for self-tests


@dataclass(slots=True)
class PrefixState:
    network: str
    accepted: bool
    code: int | None
    tunnel: str | None  # "hoa" | "coa" when accepted

    def to_dict(self) -> dict:
        return {"prefix": self.network, "accepted": self.accepted, "code": self.code,
                "tunnel": self.tunnel}


class MobileNode:
    HOA_ENCAPSULATION = "ipip"  # IPv6 in IPv4 to the HA (RFC 5454 §3.3.2, RFC 4213)
    def __init__(self, config: MNConfig):
        self.config = config
        self.mode = "home"  # home | fa | colocated
        self.care_of_address = config.home_address
        self.fa_address: str | None = None
        self.registered = False
        self.lifetime = 0
        self.expires = 0.0
        self.ha_supports_dsmip: bool | None = None
        self.prefixes: dict[tuple[int, bytes], PrefixState] = {}
        self.link_local_registered = False
        self.delegated: list[ipaddress.IPv6Network] = []
        self.groups: set[bytes] = set()
        self.udp_tunnel = False
        self._pending: dict | None = None
        self._clock_offset = 0.0  # learnt from a code-133 reply
        self._reregister_at: float | None = None
        self._last_ident = 0
        self._dhcp_xid = 0x5454

    # ------------------------------------------------------------------ state views
    @property
    def colocated(self) -> bool:
        return self.mode == "colocated"

    def status(self, now: float) -> dict:
        return {"home_address": self.config.home_address, "mode": self.mode,
                "care_of_address": self.care_of_address, "registered": self.registered,
                "lifetime_left": max(0, round(self.expires - now, 1)) if self.registered else 0,
                "ha_supports_dsmip": self.ha_supports_dsmip,
                "prefixes": [p.to_dict() for p in self.prefixes.values()],
                "link_local_registered": self.link_local_registered,
                "delegated": [str(n) for n in self.delegated], "udp_tunnel": self.udp_tunnel}

    def accepted_prefixes(self) -> dict[str, str]:
        return {p.network: p.tunnel for p in self.prefixes.values() if p.accepted}

    # ------------------------------------------------------------------ movement
    def attach_fa(self, fa_address: str, now: float) -> list:
        self.mode, self.fa_address, self.care_of_address = "fa", fa_address, fa_address
        return self._register(now, self.config.lifetime)

    def attach_colocated(self, care_of_address: str, now: float) -> list:
        self.mode, self.fa_address, self.care_of_address = "colocated", None, care_of_address
        return self._register(now, self.config.lifetime)

    def deregister(self, now: float) -> list:
        return self._register(now, 0)

    def return_home(self, now: float) -> list:
        self.mode, self.fa_address, self.care_of_address = "home", None, self.config.home_address
        return self._register(now, 0)

    # ------------------------------------------------------------------ requests
    def _requested(self) -> list[PrefixRequest]:
        requests = []
        if self._want_link_local():
            requests.append(PrefixRequest(255, tunnel_link_local(self.config.home_address)))
        for network in list(self.config.prefixes) + self.delegated:
            requests.append(PrefixRequest.of(str(network)))
        return requests

    def _want_link_local(self) -> bool:
        """§3.7.1: with dynamic delegation, the tunnel's link-local address is registered
        once the HoA is (and kept in every request after)."""
        return self.config.dynamic_delegation and (self.link_local_registered or
                                                   self.registered)

    def _identification(self, now: float) -> int:
        ident = ntp_time(now + self._clock_offset)
        if ident <= self._last_ident:
            ident = self._last_ident + 1
        self._last_ident = ident
        return ident

    def _register(self, now: float, lifetime: int, tries: int = 0) -> list:
        cfg = self.config
        flags = ""
        if self.colocated:
            flags += "D"
        if cfg.reverse_tunnel and self.mode != "home":
            flags += "T"
        if cfg.gre:
            flags += "G"
        requests = self._requested() if lifetime else []
        extensions: list = list(requests)
        # §3.5: co-located, the MN may ask for the CoA tunnel; never in FA mode (§3.5-14).
        tunnel_mode = self.colocated and cfg.request_coa_tunnel and requests
        if tunnel_mode:
            extensions.append(TunnelingMode())
        if cfg.udp_tunnelling and self.colocated and lifetime:
            extensions.append(UDPTunnelRequest())
        # RFC 5454 §3.1: the extensions precede the MN-HA authentication extension.
        extensions.append(AuthExtension(32, cfg.spi))
        request = RegistrationRequest(
            RegistrationRequest.flags_of(flags), lifetime, cfg.home_address,
            cfg.home_agent, self.care_of_address, self._identification(now), extensions)
        payload = encode(request, {32: cfg.key})
        dst = self.fa_address if self.mode == "fa" else cfg.home_agent
        src = cfg.home_address if self.mode != "colocated" else self.care_of_address
        self._pending = {"request": request, "payload": payload, "dst": dst, "src": src,
                         "lifetime": lifetime, "requests": requests, "tries": tries,
                         "deadline": now + RETRANSMIT_INITIAL * (2 ** tries)}
        return [SendUDP(src, dst, MIP_PORT, MIP_PORT, payload),
                Event("registration-sent", {"care_of_address": self.care_of_address,
                                            "mode": self.mode, "lifetime": lifetime,
                                            "prefixes": [str(r.network) if r.prefix_length <= 128
                                                         else r.prefix_text for r in requests],
                                            "tunneling_mode": bool(tunnel_mode)})]

    # ------------------------------------------------------------------ replies
    @drops_malformed
    def receive_udp(self, payload: bytes, src: str, sport: int, now: float) -> list:
        try:
            message = decode(payload)
        except DecodeError as err:
            return [Event("decode-error", {"from": src, "error": str(err)}, "warning")]
        if isinstance(message, TunnelData):
            return self._tunnel_data(message, src, now)
        if not isinstance(message, RegistrationReply):
            return [Event("unexpected-message", {"from": src, "type": message.type}, "warning")]
        return self._reply(payload, message, now)

    def _reply(self, payload: bytes, reply: RegistrationReply, now: float) -> list:
        pending = self._pending
        if pending is None:
            return [Event("reply-ignored", {"reason": "no registration pending"}, "warning")]
        request = pending["request"]
        if (reply.identification & 0xFFFFFFFF) != (request.identification & 0xFFFFFFFF):
            return [Event("reply-ignored", {"reason": "identification mismatch"}, "warning")]
        if reply.code < 64 or reply.code >= 128:  # codes from the HA carry MN-HA auth
            valid = verify_authenticator(payload, reply, self.config.key)
            if not valid:
                return [Event("reply-ignored", {"reason": "MN-HA authentication failed"
                                                if valid is False else "no MN-HA "
                                                "authentication"}, "warning")]
        if reply.code == 133:
            # RFC 3344 §5.7.1: resynchronise on the HA's clock and try again.
            self._resynchronise(reply.identification, now)
            return [Event("identification-resync", {"offset": self._clock_offset})] + \
                self._register(now, pending["lifetime"])
        self._pending = None
        accepted = reply.code <= 1
        if pending["lifetime"] == 0:
            self.registered = False
            self.prefixes.clear()
            self.link_local_registered = False
            self._reregister_at = None
            return [Event("deregistered", {"code": reply.code})]
        if not accepted:
            self.registered = False
            self.prefixes = {self._key(r): PrefixState(self._name(r), False, None, None)
                             for r in pending["requests"]}
            return [Event("registration-rejected", {"code": reply.code})]
        self.registered = True
        self.lifetime = reply.lifetime
        self.expires = now + reply.lifetime
        self.udp_tunnel = any(e.type == 44 and getattr(e, "code", 1) == 0
                              for e in reply.extensions)
        if reply.lifetime:
            self._reregister_at = now + reply.lifetime * 0.8  # RFC 3344 §3.6.3
        actions = self._prefix_outcome(pending["requests"], reply)
        for network in self.config.implicit_prefixes:
            key = PrefixRequest.of(str(network)).key
            self.prefixes.setdefault(key, PrefixState(str(network), True, None, "hoa"))
        actions.append(Event("registered", {"lifetime": reply.lifetime, "code": reply.code,
                                            **self.status(now)}))
        return actions + self._after_registration(now)

    def _resynchronise(self, ha_identification: int, now: float) -> None:
        """RFC 3344 §5.7.1: the HA's time is in the high 32 bits of a code-133 reply."""
        self._clock_offset = (ha_identification >> 32) - (ntp_time(now) >> 32)

    @staticmethod
    def _key(req) -> tuple[int, bytes]:
        return req.key

    @staticmethod
    def _name(req) -> str:
        return str(req.network) if req.prefix_length <= 128 else req.prefix_text

    def _prefix_outcome(self, requests, reply: RegistrationReply) -> list:
        """RFC 5454 §3.5: how the reply's prefix extensions settle each requested prefix."""
        replies = reply.prefix_replies
        actions = []
        self.prefixes = {}
        if requests and not replies:
            # Case 1: the HA does not support RFC 5454; carry on as plain Mobile IPv4.
            self.ha_supports_dsmip = False
            self.link_local_registered = False
            for req in requests:
                self.prefixes[req.key] = PrefixState(self._name(req), False, None, None)
            return [Event("ha-without-dsmip", {"requested": [self._name(r) for r in requests]})]
        if replies:
            self.ha_supports_dsmip = True
        by_key = {}
        for rep in replies:
            # §3.5: a reply answers the request for the same prefix (as masked, §2.2).
            if any(self._reply_key(rep) == req.key for req in requests):
                by_key.setdefault(self._reply_key(rep), rep)
            else:
                actions.append(Event("prefix-reply-unmatched", {"prefix": rep.prefix_text,
                                                                "code": rep.code}, "warning"))
        for req in requests:
            rep = by_key.get(req.key)
            if rep is None:  # §3.5: a prefix with no reply is not granted
                self.prefixes[req.key] = PrefixState(self._name(req), False, None, None)
                continue
            accepts = self._prefix_code_accepts(rep.code)
            tunnel = self._tunnel_for_code(rep.code) if accepts else None
            self.prefixes[req.key] = PrefixState(self._name(req), accepts, rep.code, tunnel)
            if req.prefix_length == 255:
                self.link_local_registered = accepts
        for state in self.prefixes.values():
            actions.append(Event("prefix-accepted" if state.accepted else "prefix-rejected",
                                 state.to_dict()))
        return actions

    @staticmethod
    def _reply_key(reply) -> tuple[int, bytes]:
        return reply.key

    @staticmethod
    def _prefix_code_accepts(code: int) -> bool:
        return prefix_code_accepts(code)  # §2.2: 0-7 accept, whatever their meaning

    def _tunnel_for_code(self, code: int) -> str:
        """§3.5: code 1 means the CoA tunnel, for a co-located MN; otherwise the HoA's."""
        return "coa" if code == 1 and self.colocated else "hoa"

    def _after_registration(self, now) -> list:
        cfg = self.config
        actions = []
        if any(p.accepted for p in self.prefixes.values()):
            for group in cfg.groups:
                if addr6(group) not in self.groups:
                    actions += self.join_group(group, now)
        if not cfg.dynamic_delegation or self.ha_supports_dsmip is False:
            return actions
        if not self.link_local_registered and self._want_link_local():
            # §3.7.1: the HoA is registered; now register the tunnel link-local address.
            return actions + self._register(now, cfg.lifetime)
        if not self.delegated:
            return actions + self._solicit()
        return actions

    # ------------------------------------------------------------------ timers
    def next_timer(self) -> float | None:
        times = [t for t in (self._pending["deadline"] if self._pending else None,
                             self._reregister_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list:
        actions = []
        pending = self._pending
        if pending and pending["deadline"] <= now:
            if pending["tries"] + 1 >= RETRANSMIT_MAX_TRIES:
                self._pending = None
                actions.append(Event("registration-timeout", {"tries": pending["tries"] + 1},
                                     "warning"))
            else:
                actions += self._register(now, pending["lifetime"], pending["tries"] + 1)
        if self._reregister_at is not None and self._reregister_at <= now:
            self._reregister_at = None
            if self.registered and self._pending is None:
                actions += self._register(now, self.config.lifetime)
        return actions

    # ------------------------------------------------------------------ data plane
    def _tunnel_for(self, src6: bytes) -> str | None:
        if is_link_local(src6):
            # Only the tunnel's own link-local address (RFC 4213 §3.7) talks over the tunnel.
            return "hoa" if src6 == tunnel_link_local(self.config.home_address) else None
        value = int.from_bytes(src6, "big")
        for (length, prefix), state in self.prefixes.items():
            if state.accepted and length <= 128 and value >> (128 - length) == \
                    int.from_bytes(prefix, "big") >> (128 - length):
                return state.tunnel
        return None

    @drops_malformed
    def send_ipv6(self, packet: bytes, now: float) -> list:
        """An IPv6 packet from the node's own stack: tunnel it to the HA (RFC 5454 §3.5)."""
        try:
            ip6 = parse_ipv6(packet)
        except DecodeError as err:
            return [Event("bad-ipv6", {"error": str(err)}, "warning")]
        tunnel = self._tunnel_for(ip6.src)
        if tunnel is None or not self.registered:
            return [Event("ipv6-not-sent", {"src": ip6.src_text, "reason":
                                            "source under no accepted prefix"}, "info")]
        limit, _ = self._tunnel_mtu(tunnel)
        if len(packet) > limit:
            # RFC 4213 §3.2: not encapsulated; the sender (our own stack) learns the tunnel MTU.
            own = tunnel_link_local(self.config.home_address)
            return [DeliverIPv6(packet_too_big(own, packet, limit)),
                    Event("packet-too-big", {"dst": ip6.dst_text, "size": len(packet),
                                             "mtu": limit})]
        return self._encapsulate(packet, tunnel)

    def _tunnel_mtu(self, tunnel: str) -> tuple[int, bool]:
        """(tunnel MTU, set DF on the IPv4 headers the MN adds), as the HA computes it."""
        cfg = self.config
        if not cfg.dynamic_tunnel_mtu:
            return cfg.tunnel_mtu, False
        if not self.colocated:
            overhead = 20  # HoA to HA; the FA's reverse tunnel is the FA's own concern
        else:
            overhead = 20 + ENCAP_EXTRA[self._method] + (20 if tunnel != "coa" else 0)
        mtu, df = dynamic_tunnel_mtu(cfg.link_mtu, overhead)
        return mtu, df

    @property
    def _method(self) -> str:
        """The encapsulation of the CoA tunnel: RFC 3519 UDP, GRE or IP-in-IP."""
        return "udp" if self.udp_tunnel else ("gre" if self.config.gre else "ipip")

    def _encapsulate(self, packet: bytes, tunnel: str) -> list:
        cfg = self.config
        method = self._method
        _, df = self._tunnel_mtu(tunnel)
        if tunnel == "coa" and self.colocated:
            kind, data = encapsulate(packet, True, self.care_of_address, cfg.home_agent, method)
        else:
            _, middle = encapsulate(packet, True, cfg.home_address, cfg.home_agent,
                                    self.HOA_ENCAPSULATION)
            if df:
                middle = with_df(middle)
            if not self.colocated:
                return [SendIPv4(middle)]  # via the FA, as any packet from the home address
            kind, data = encapsulate(middle, False, self.care_of_address, cfg.home_agent, method)
        if kind == "udp":
            return [SendUDP(self.care_of_address, cfg.home_agent, MIP_PORT, MIP_PORT, data)]
        return [SendIPv4(with_df(data) if df else data)]

    def join_group(self, group: str, now: float) -> list:
        """MLDv2 report over the home-address tunnel (RFC 5454 §3.3.3)."""
        raw = addr6(group)
        self.groups.add(raw)
        report = mldv2_report(tunnel_link_local(self.config.home_address), joins=[raw])
        return self._encapsulate(report, "hoa")  # §3.3.3: MLD over the HoA tunnel

    def leave_group(self, group: str, now: float) -> list:
        raw = addr6(group)
        self.groups.discard(raw)
        report = mldv2_report(tunnel_link_local(self.config.home_address), leaves=[raw])
        return self._encapsulate(report, "hoa")

    @drops_malformed
    def receive_ipv4(self, packet: bytes, now: float) -> list:
        """IPv4 packets from the HA: IPv6-in-IPv4, IP-in-IP of that, or GRE of either."""
        try:
            return self._decapsulate(parse_ipv4(packet), now, 0)
        except DecodeError as err:
            return [Event("bad-packet", {"error": str(err)}, "warning")]

    def _decapsulate(self, outer, now, depth) -> list:
        if not self._from_home_agent(outer.src):
            return [Event("dropped", {"from": outer.src, "reason": "not from the home agent"})]
        proto, payload = outer.proto, outer.payload
        if proto == PROTO_GRE:
            ethertype, payload = parse_gre(payload)
            proto = {ETHERTYPE_IPV6: PROTO_IPV6, ETHERTYPE_IPV4: PROTO_IPIP}.get(ethertype)
        if proto == PROTO_IPIP and depth == 0:
            inner = decapsulated_ipv4(outer.tos, payload)
            return self._decapsulate(parse_ipv4(inner), now, 1) if inner else []
        if proto != PROTO_IPV6:
            return [Event("dropped", {"from": outer.src, "protocol": outer.proto})]
        inner6 = decapsulated_ipv6(outer.tos, payload)
        if inner6 is None:
            return []
        return self._inner_ipv6(inner6, "hoa" if outer.dst == self.config.home_address
                                else "coa", now)

    def _from_home_agent(self, src: str) -> bool:
        """RFC 4213 §3.6: only the HA's address is a tunnel end point."""
        return src == self.config.home_agent

    def _tunnel_data(self, message: TunnelData, src: str, now: float) -> list:
        if not self._from_home_agent(src):
            return [Event("dropped", {"from": src, "reason": "not from the home agent"})]
        if message.next_header == PROTO_IPV6:
            return self._inner_ipv6(message.payload, "coa", now)
        if message.next_header == PROTO_IPIP:
            return self.receive_ipv4(message.payload, now)
        return [Event("dropped", {"from": src, "next_header": message.next_header})]

    def _inner_ipv6(self, packet: bytes, via: str, now: float) -> list:
        ip6 = parse_ipv6(packet)
        if ip6.next_header == 58:
            own = tunnel_link_local(self.config.home_address)
            advert = neighbor_advert_for(ip6, ip6.payload, own)
            if advert is not None:  # RFC 4213 §3.8: neighbor discovery over the tunnel
                return self._encapsulate(advert, "hoa")
        if ip6.next_header == PROTO_UDP:
            sport, dport, body = parse_udp(ip6.payload)
            if dport == dh.CLIENT_PORT:
                return self._dhcp_reply(body, now)
        return [DeliverIPv6(packet), Event("ipv6-received", {"src": ip6.src_text,
                                                             "dst": ip6.dst_text, "via": via})]

    # ------------------------------------------------------------------ DHCPv6-PD client
    def _solicit(self) -> list:
        self._dhcp_xid += 1
        msg = dh.DHCPv6Message(dh.SOLICIT, self._dhcp_xid, b"\x00\x03\x00\x01" + bytes(2)
                               + bytes(int(x) for x in self.config.home_address.split(".")),
                               ia_pd=[dh.IAPD(1)], rapid_commit=True)
        packet = udp6_packet(tunnel_link_local(self.config.home_address), dh.ALL_DHCP_SERVERS,
                             dh.CLIENT_PORT, dh.SERVER_PORT, dh.encode_dhcpv6(msg), hop_limit=1)
        return self._encapsulate(packet, "hoa") + [Event("dhcpv6-solicit", {})]

    def _dhcp_reply(self, body: bytes, now: float) -> list:
        msg = dh.decode_dhcpv6(body)
        if msg.transaction_id != self._dhcp_xid or not msg.ia_pd:
            return [Event("dhcpv6-ignored", {"xid": msg.transaction_id})]
        networks = [ipaddress.IPv6Network((p.prefix, p.length)) for ia in msg.ia_pd
                    for p in ia.prefixes]
        if msg.msg_type == dh.ADVERTISE:
            msg.msg_type = dh.REQUEST
            return []  # rapid commit is asked for; an Advertise means the server ignored it
        return [Event("prefixes-delegated", {"prefixes": [str(n) for n in networks]})] + \
            self._register_delegated(networks, now)

    def _register_delegated(self, networks: list, now: float) -> list:
        """§3.7.1: register the delegated prefixes (explicit mode)."""
        self.delegated = networks
        return self._register(now, self.config.lifetime)


__all__ = ["MobileNode", "MNConfig", "text6"]
