"""Reference foreign agent (RFC 3344 §3.7, RFC 3024): relays registrations, keeps a visitor
list and decapsulates the home agent's tunnel for its visitors.

RFC 5454 §3.4: nothing changes for the FA. It relays type-152 extensions as the unknown
skippable extensions they are to it, untouched, and delivers the doubly encapsulated IPv6
traffic as ordinary IPv4 packets for the visitor's home address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.codec import (
    AuthExtension, DecodeError, RegistrationReply, RegistrationRequest, ReplyCode,
    append_authentication, decode, encode, extension_end, verify_authenticator,
)
from conformance.codec.constants import ExtType
from conformance.codec.packets import (
    ETHERTYPE_IPV4, PROTO_GRE, PROTO_IPIP, parse_gre, parse_ipv4,
)
from conformance.nodes.timers import Deadlines
from conformance.nodes.actions import drops_malformed, Event, SendIPv4, SendUDP
from conformance.codec.tunnel import decapsulated_ipv4, encapsulate

MIP_PORT = 434
PENDING_TIMEOUT = 7.0  # seconds an unanswered relayed request is kept (RFC 3344 §3.7.1)

# Code RFC 3024 §3.3 gives the FA for a T bit it cannot honour.
FA_REVERSE_TUNNEL_UNAVAILABLE = 74


@dataclass
class FAConfig:
    address: str  # the care-of address it advertises and relays from
    max_lifetime: int = 1800
    reverse_tunnel: bool = True
    gre: bool = True
    # Mobility security associations with home agents: HA address -> (SPI, key). With one,
    # the FA appends a Foreign-Home Authentication extension to what it relays to that HA
    # and checks the one in its replies (RFC 3344 §3.5.4, §3.7.3.1).
    home_agents: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    # Relayed requests awaiting the HA's reply, overall and per home address: beyond them the
    # FA denies with 66, insufficient resources (RFC 3344 §3.4), so a flood cannot grow it.
    max_pending: int = 1024
    max_pending_per_mn: int = 8
    faults: frozenset[str] = frozenset()  # named faults (nodes/faults/), for self-tests


@dataclass(slots=True)
class Visitor:
    home_address: str
    home_agent: str
    mn_address: str
    mn_port: int
    expires: float
    reverse: bool
    encapsulation: str

    def to_dict(self, now: float) -> dict:
        return {"home_address": self.home_address, "home_agent": self.home_agent,
                "lifetime_left": max(0, round(self.expires - now, 1)),
                "reverse_tunnel": self.reverse, "encapsulation": self.encapsulation}


@dataclass(slots=True)
class Pending:
    request: RegistrationRequest
    mn_address: str
    mn_port: int
    deadline: float


class ForeignAgent:
    def __init__(self, config: FAConfig):
        self.config = config
        self.address = config.address
        self.visitors: dict[str, Visitor] = {}
        self.pending: dict[tuple[str, int], Pending] = {}
        self._pending_per_mn: dict[str, int] = {}
        self._full_logged = False  # "pending table full" is logged once per episode
        self._timers = Deadlines()  # ("pending", key) and ("visitor", home address)

    def visitor_list(self, now: float) -> list[dict]:
        return [v.to_dict(now) for v in sorted(self.visitors.values(),
                                               key=lambda v: v.home_address)]

    # ------------------------------------------------------------------ registrations
    @drops_malformed
    def receive_udp(self, payload: bytes, src: str, sport: int, now: float) -> list:
        try:
            message = decode(payload)
        except DecodeError as err:
            return [Event("decode-error", {"from": src, "error": str(err), "offset":
                                           err.offset, "section": err.section}, "warning")]
        if isinstance(message, RegistrationRequest):
            return self._request(payload, message, src, sport, now)
        if isinstance(message, RegistrationReply):
            return self._reply(payload, message, src, now)
        return [Event("unexpected-message", {"from": src, "type": message.type}, "warning")]

    def _deny(self, request, code, mn, port, reason, log: bool = True) -> list:
        reply = RegistrationReply(code, 0, request.home_address, request.home_agent,
                                  request.identification)
        sent = [SendUDP(self.address, mn, MIP_PORT, port, encode(reply))]
        if not log:
            return sent
        return sent + [Event("registration-denied", {"home_address": request.home_address,
                                                     "code": code, "reason": reason},
                             "warning")]

    def _request(self, payload, request: RegistrationRequest, src, sport, now) -> list:
        cfg = self.config
        if request.lifetime > cfg.max_lifetime:
            return self._deny(request, ReplyCode.FA_LIFETIME_TOO_LONG, src, sport,
                              f"lifetime {request.lifetime} > {cfg.max_lifetime}")
        if request.flag("M") or (request.flag("G") and not cfg.gre):
            return self._deny(request, ReplyCode.FA_ENCAPSULATION_UNAVAILABLE, src, sport,
                              "requested encapsulation unavailable")
        if request.flag("T") and not cfg.reverse_tunnel:
            return self._deny(request, FA_REVERSE_TUNNEL_UNAVAILABLE, src, sport,
                              "reverse tunnelling unavailable")
        # RFC 3344 §3.7.2: relayed unchanged, unknown skippable extensions included.
        relayed = payload
        association = cfg.home_agents.get(request.home_agent)
        if association is not None:
            # RFC 3344 §3.5.4: the FA-HA extension goes last, over all that precedes it.
            relayed = append_authentication(relayed, ExtType.FA_HA_AUTH, *association)
        key = (request.home_address, request.identification & 0xFFFFFFFF)
        full = self._pending_full(key)
        if full:
            first = not self._full_logged  # an episode of a full table is logged once
            self._full_logged = True
            return self._deny(request, ReplyCode.FA_INSUFFICIENT_RESOURCES, src, sport, full,
                              log=first)
        self._full_logged = False
        self._add_pending(key, Pending(request, src, sport, now + PENDING_TIMEOUT))
        return [SendUDP(self.address, request.home_agent, MIP_PORT, MIP_PORT, relayed),
                Event("request-relayed", {"home_address": request.home_address,
                                          "home_agent": request.home_agent,
                                          "extensions": [e.type for e in request.extensions]})]

    def _pending_full(self, key) -> str | None:
        if key in self.pending:
            return None  # a retransmission replaces its own entry
        if len(self.pending) >= self.config.max_pending:
            return f"{len(self.pending)} relayed requests await a reply (max_pending)"
        if self._pending_per_mn.get(key[0], 0) >= self.config.max_pending_per_mn:
            return f"{self.config.max_pending_per_mn} requests for {key[0]} await a reply " \
                   f"(max_pending_per_mn)"
        return None

    def _add_pending(self, key, pending: Pending) -> None:
        if key not in self.pending:
            self._pending_per_mn[key[0]] = self._pending_per_mn.get(key[0], 0) + 1
        self.pending[key] = pending
        self._timers.set(("pending", key), pending.deadline)

    def _take_pending(self, key) -> Pending | None:
        pending = self.pending.pop(key, None)
        if pending is not None:
            self._timers.cancel(("pending", key))
            left = self._pending_per_mn[key[0]] - 1
            if left:
                self._pending_per_mn[key[0]] = left
            else:
                del self._pending_per_mn[key[0]]
        return pending

    def _reply(self, payload, reply: RegistrationReply, src, now) -> list:
        key = (reply.home_address, reply.identification & 0xFFFFFFFF)
        pending = self._take_pending(key)
        if pending is None:
            return [Event("reply-unmatched", {"from": src, "home_address": reply.home_address},
                          "warning")]
        request = pending.request
        association = self.config.home_agents.get(request.home_agent)
        if association is not None:
            fa_ha = [e for e in reply.extensions if e.type == ExtType.FA_HA_AUTH]
            valid = len(fa_ha) == 1 and type(fa_ha[0]) is AuthExtension and \
                fa_ha[0].spi == association[0] and \
                verify_authenticator(payload, reply, association[1], ExtType.FA_HA_AUTH)
            if not valid:
                # RFC 3344 §3.7.3.1: discard, log a security exception, deny with code 68.
                return [Event("security-exception", {"from": src, "home_address":
                                                     reply.home_address, "reason":
                                                     "FA-HA authentication failed"}, "warning")] \
                    + self._deny(request, ReplyCode.FA_HA_FAILED_AUTH, pending.mn_address,
                                 pending.mn_port, "home agent failed authentication")
            mn_ha = reply.auth(ExtType.MN_HA_AUTH)
            if mn_ha is not None:
                # §3.7.3.2: what follows the MN-HA authenticator is the FA's to remove.
                payload = payload[:extension_end(mn_ha)]
        if reply.code <= 1 and reply.lifetime > 0:
            visitor = Visitor(reply.home_address, request.home_agent, pending.mn_address,
                              pending.mn_port, now + reply.lifetime, request.flag("T"),
                              "gre" if request.flag("G") else "ipip")
            self.visitors[reply.home_address] = visitor
            self._timers.set(("visitor", reply.home_address), visitor.expires)
            event = Event("visitor-added", visitor.to_dict(now))
        else:
            self.visitors.pop(reply.home_address, None)
            self._timers.cancel(("visitor", reply.home_address))
            event = Event("visitor-removed", {"home_address": reply.home_address,
                                              "code": reply.code})
        # The reply goes back unchanged to where the request came from (RFC 3344 §3.7.3).
        return [event, SendUDP(self.address, pending.mn_address, MIP_PORT, pending.mn_port,
                               payload)]

    # ------------------------------------------------------------------ timers
    def next_timer(self) -> float | None:
        return self._timers.next()

    def handle_timer(self, now: float) -> list:
        actions = []
        for kind, key in self._timers.due(now):
            if kind == "pending":
                pending = self._take_pending(key)
                if pending is not None:
                    actions += self._deny(pending.request, ReplyCode.FA_REGISTRATION_TIMEOUT,
                                          pending.mn_address, pending.mn_port,
                                          "no reply from the home agent")
            elif self.visitors.pop(key, None) is not None:
                actions.append(Event("visitor-removed", {"home_address": key,
                                                         "reason": "lifetime expired"}))
        return actions

    # ------------------------------------------------------------------ data plane
    @drops_malformed
    def receive_ipv4(self, packet: bytes, now: float) -> list:
        """A packet addressed to the FA's care-of address: the HA's tunnel (protocol 4/47)."""
        try:
            outer = parse_ipv4(packet)
            proto, payload = outer.proto, outer.payload
            if proto == PROTO_GRE:
                ethertype, payload = parse_gre(payload)
                proto = PROTO_IPIP if ethertype == ETHERTYPE_IPV4 else None
            if proto != PROTO_IPIP:
                return [Event("dropped", {"from": outer.src, "protocol": outer.proto})]
            inner = decapsulated_ipv4(outer.tos, payload)
            if inner is None:
                return []
            ip4 = parse_ipv4(inner)
        except DecodeError as err:
            return [Event("bad-packet", {"error": str(err)}, "warning")]
        visitor = self.visitors.get(ip4.dst)
        if visitor is None or outer.src != visitor.home_agent:
            return [Event("dropped", {"from": outer.src, "to": ip4.dst,
                                      "reason": "no such visitor"}, "info")]
        return [SendIPv4(inner)]  # delivered on the visited link to the mobile node

    @drops_malformed
    def receive_from_visitor(self, packet: bytes, now: float) -> list:
        """An IPv4 packet a visitor sent through the FA: reverse-tunnel it when asked (RFC 3024)."""
        try:
            ip4 = parse_ipv4(packet)
        except DecodeError as err:
            return [Event("bad-packet", {"error": str(err)}, "warning")]
        visitor = self.visitors.get(ip4.src)
        if visitor is None or not visitor.reverse:
            return [SendIPv4(packet)]  # ordinary forwarding
        _, outer = encapsulate(packet, False, self.address, visitor.home_agent,
                               visitor.encapsulation)
        return [SendIPv4(outer)]
