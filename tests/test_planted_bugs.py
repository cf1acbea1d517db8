"""Plausible implementation bugs, planted in the reference nodes' real code paths, each caught
by the case designed for its scenario (issue 11's examples): the case passes against the
clean reference (tests/mutation) and FAILs, on a check mapped to the broken requirement,
against the reference with the bug. Run in memory, so each takes a fraction of a second."""

from __future__ import annotations

import pytest

from conformance.codec import PrefixReply
from conformance.codec.tunnel import forwarded
from conformance.nodes.actions import DeliverIPv6, Event
from conformance.nodes.fa import ForeignAgent
from conformance.nodes.ha import HomeAgent
from conformance.nodes.mn import MobileNode
from conformance.nodes.prefixes import PrefixTable
from conformance.suite.inmemory import load_cases, run_in_memory

CASES = {c.id: c for c in load_cases()}


def _wrap(monkeypatch, cls, name, make):
    original = getattr(cls, name)
    monkeypatch.setattr(cls, name, make(original))


def exact_prefix_not_a_conflict(monkeypatch):
    """The overlap search stops before the prefix's own length: `m >= length`, not `>`."""
    def make(original):
        def conflict(self, length, value, owner):
            if self.owner(length, value) not in (None, owner):
                return None
            return original(self, length, value, owner)
        return conflict
    _wrap(monkeypatch, PrefixTable, "conflict", make)


def reply_prefix_masked_by_whole_bytes(monkeypatch):
    """The reply's prefix keeps the requested bytes up to the length, rounded up to a byte."""
    def make(original):
        def answer(self, entry, requests, *args):
            extensions, *rest = original(self, entry, requests, *args)
            for req, ext in zip(requests, extensions):
                if isinstance(ext, PrefixReply) and req.prefix_length <= 128:
                    keep = (req.prefix_length + 7) // 8
                    ext.prefix = bytes(req.prefix[:keep]) + bytes(16 - keep)
            return (extensions, *rest)
        return answer
    _wrap(monkeypatch, HomeAgent, "_answer_prefixes", make)


def prefixes_granted_before_encapsulation_check(monkeypatch):
    """The reply for an unavailable encapsulation (code 128) still carries the prefix replies
    computed before that check."""
    def make(original):
        def reply(self, request, code, lifetime, dst, dport, entry, extensions=(), **kwargs):
            if code == 128:
                extensions = list(extensions) + [PrefixReply.answering(r, 0)
                                                 for r in request.prefix_requests]
            return original(self, request, code, lifetime, dst, dport, entry, extensions,
                            **kwargs)
        return reply
    _wrap(monkeypatch, HomeAgent, "_reply", make)


def no_prefix_request_means_unchanged(monkeypatch):
    """A re-registration without prefix requests is read as 'keep what I have'."""
    def make(original):
        def install(self, binding, old):
            if old is not None and not binding.prefixes:
                binding.prefixes = dict(old.prefixes)
            return original(self, binding, old)
        return install
    _wrap(monkeypatch, HomeAgent, "_install", make)


def replay_of_last_identification_accepted(monkeypatch):
    """The replay test is `ident < last` where it must be `ident <= last`."""
    def make(original):
        def receive_udp(self, payload, src, sport, now):
            for home in self.last_identification:
                self.last_identification[home] -= 1
            return original(self, payload, src, sport, now)
        return receive_udp
    _wrap(monkeypatch, HomeAgent, "receive_udp", make)


def decapsulation_counts_as_a_hop(monkeypatch):
    """The HA lowers the Hop Limit when it decapsulates, on top of its forwarding."""
    def make(original):
        def receive_ipv4(self, packet, now):
            out = []
            for action in original(self, packet, now):
                if isinstance(action, DeliverIPv6):
                    lowered = forwarded(action.packet)
                    if lowered is None:
                        continue
                    action = DeliverIPv6(lowered)
                out.append(action)
            return out
        return receive_ipv4
    _wrap(monkeypatch, HomeAgent, "receive_ipv4", make)


def prefix_replies_matched_by_position(monkeypatch):
    """The MN pairs the n-th prefix reply with its n-th prefix request."""
    def make(original):
        def outcome(self, requests, reply):
            for req, rep in zip(requests, reply.prefix_replies):
                rep.prefix_length, rep.prefix = req.prefix_length, bytes(req.prefix)
            return original(self, requests, reply)
        return outcome
    _wrap(monkeypatch, MobileNode, "_prefix_outcome", make)


def fallback_only_on_first_registration(monkeypatch):
    """The MN falls back to plain Mobile IPv4 only when it held no prefix yet."""
    def make(original):
        def outcome(self, requests, reply):
            held = {k: v for k, v in self.prefixes.items() if v.accepted}
            actions = original(self, requests, reply)
            if held and not reply.prefix_replies:
                self.prefixes, self.ha_supports_dsmip = held, True
            return actions
        return outcome
    _wrap(monkeypatch, MobileNode, "_prefix_outcome", make)


def visitor_only_for_code_0(monkeypatch):
    """The FA records a visitor for code 0 only, so code 1 leaves the MN unreachable."""
    def make(original):
        def receive_udp(self, payload, src, sport, now):
            actions = original(self, payload, src, sport, now)
            if payload[:2] == b"\x03\x01":  # a Registration Reply with code 1
                for action in actions:
                    if isinstance(action, Event) and action.name == "visitor-added":
                        self.visitors.pop(action.data["home_address"], None)
            return actions
        return receive_udp
    _wrap(monkeypatch, ForeignAgent, "receive_udp", make)


def lifetime_clamped_and_relayed(monkeypatch):
    """The FA lowers a lifetime beyond its maximum and relays the altered request."""
    def make(original):
        def request(self, payload, req, src, sport, now):
            cap = self.config.max_lifetime
            if req.lifetime > cap:
                payload = payload[:2] + cap.to_bytes(2, "big") + payload[4:]
                req.lifetime = cap
            return original(self, payload, req, src, sport, now)
        return request
    _wrap(monkeypatch, ForeignAgent, "_request", make)


def unsupported_flag_cleared_and_relayed(monkeypatch):
    """The FA clears the M bit it cannot serve and relays the altered request."""
    def make(original):
        def request(self, payload, req, src, sport, now):
            if payload[1] & 0x10:  # M (RFC 3344 §3.3: S B D M G r T x)
                payload = payload[:1] + bytes((payload[1] & ~0x10,)) + payload[2:]
                req.flags &= ~0x10
            return original(self, payload, req, src, sport, now)
        return request
    _wrap(monkeypatch, ForeignAgent, "_request", make)


def leaves_ignored(monkeypatch):
    """The HA adds the groups of a report and never takes the ones a listener leaves."""
    import conformance.nodes.ha as ha

    original = ha.parse_mld
    monkeypatch.setattr(ha, "parse_mld",
                        lambda data: (lambda r: (r[0], set()) if r else r)(original(data)))


def any_link_local_source_accepted(monkeypatch):
    """The HA takes every link-local inner source as the tunnel's own."""
    def make(original):
        def inner(self, binding, outer_src, outer_dst, ip6, packet, now):
            if binding is not None and ip6.src[:2] == b"\xfe\x80":
                binding.link_locals.add(ip6.src)
            return original(self, binding, outer_src, outer_dst, ip6, packet, now)
        return inner
    _wrap(monkeypatch, HomeAgent, "_inner_ipv6", make)


def groups_forgotten_on_reregistration(monkeypatch):
    """A re-registration builds the binding afresh and loses its MLD memberships."""
    def make(original):
        def install(self, binding, old):
            binding.groups = set()
            return original(self, binding, old)
        return install
    _wrap(monkeypatch, HomeAgent, "_install", make)


def released_prefixes_still_counted(monkeypatch):
    """Removing a prefix forgets it in the table but not in the index of covering prefixes."""
    def make(original):
        def remove(self, length, value):
            table = self._by_len.get(length)
            if table and value in table:
                table.pop(value)
                if not table:
                    del self._by_len[length]
                    self._lengths = sorted(self._by_len)
        return remove
    _wrap(monkeypatch, PrefixTable, "remove", make)


def reply_to_every_solicit(monkeypatch):
    """The delegating router answers every Solicit with a Reply, Rapid Commit or not."""
    import types

    import conformance.codec.dhcpv6 as real
    import conformance.nodes.ha as ha

    shim = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real)
                                    if not k.startswith("__")})
    shim.ADVERTISE = real.REPLY
    monkeypatch.setattr(ha, "dh", shim)


def ce_not_propagated_to_inner_ipv4(monkeypatch):
    """Decapsulating IPv4 from IPv4, the MN drops what must be dropped but never copies CE
    inward."""
    import conformance.nodes.mn as mn
    from conformance.codec.tunnel import decapsulated_ipv4

    monkeypatch.setattr(mn, "decapsulated_ipv4",
                        lambda tos, inner: decapsulated_ipv4(tos & ~1, inner))


def any_security_association_of_the_ha_will_do(monkeypatch):
    """The HA checks the authenticator with the SPI's key, not that the SPI is the home
    address's."""
    def make(original):
        def registration(self, payload, request, src, sport, now):
            auth = request.auth(32)
            entry = self.by_spi.get(auth.spi) if auth else None
            if entry is not None:
                request.home_address = entry.home_address
            return original(self, payload, request, src, sport, now)
        return registration
    _wrap(monkeypatch, HomeAgent, "_registration", make)


def visitor_for_any_reply_with_lifetime(monkeypatch):
    """The FA keys the visitor entry on the reply's lifetime alone: a denial that carries a
    non-zero lifetime makes a visitor."""
    from conformance.nodes.fa import Visitor

    def make(original):
        def reply(self, payload, reply, src, now):
            out = original(self, payload, reply, src, now)
            if reply.code > 1 and reply.lifetime > 0:
                self.visitors[reply.home_address] = Visitor(
                    reply.home_address, reply.home_agent, "192.0.2.1", 434,
                    now + reply.lifetime, False, "ipip")
            return out
        return reply
    _wrap(monkeypatch, ForeignAgent, "_reply", make)


def visitors_never_expire(monkeypatch):
    """The FA's timer handles pending requests only; visitor entries outlive their lifetime."""
    def make(original):
        def handle_timer(self, now):
            kept = dict(self.visitors)
            out = original(self, now)
            self.visitors.update(kept)
            return [a for a in out if not (isinstance(a, Event) and a.name == "visitor-removed")]
        return handle_timer
    _wrap(monkeypatch, ForeignAgent, "handle_timer", make)


def unanswered_requests_forgotten(monkeypatch):
    """The FA drops a pending request at its timeout without telling the MN."""
    def make(original):
        def handle_timer(self, now):
            return [a for a in original(self, now) if isinstance(a, Event)]
        return handle_timer
    _wrap(monkeypatch, ForeignAgent, "handle_timer", make)


def empty_payload_crashes(monkeypatch):
    """The HA reads the message type before checking there is one."""
    def make(original):
        def receive_udp(self, payload, src, sport, now):
            payload[0]  # IndexError on an empty datagram
            return original(self, payload, src, sport, now)
        return receive_udp
    _wrap(monkeypatch, HomeAgent, "receive_udp", make)


def header_only_request_dropped(monkeypatch):
    """The HA takes a request with no extension for a truncated one and drops it."""
    def make(original):
        def receive_udp(self, payload, src, sport, now):
            if len(payload) <= 24:
                return []
            return original(self, payload, src, sport, now)
        return receive_udp
    _wrap(monkeypatch, HomeAgent, "receive_udp", make)


def mld_records_walked_without_sources(monkeypatch):
    """The HA steps over each MLDv2 record as if it had no source and no auxiliary data."""
    import struct

    import conformance.nodes.ha as ha_module
    from conformance.codec import mld

    def parse(icmp):
        if not icmp or icmp[0] != mld.MLDV2_REPORT:
            return mld.parse_mld(icmp)
        count = struct.unpack_from("!H", icmp, 6)[0]
        joined, off = set(), 8
        for _ in range(count):
            if off + 20 > len(icmp):
                break
            joined.add(bytes(icmp[off + 4:off + 20]))
            off += 20
        return joined, set()
    monkeypatch.setattr(ha_module, "parse_mld", parse)


def mld_report_hop_limit_64(monkeypatch):
    """The MN sends its MLDv2 report with the default hop limit, not 1."""
    import conformance.nodes.mn as mn_module
    from conformance.codec import mld

    def report(src, joins=(), leaves=()):
        packet = bytearray(mld.mldv2_report(src, joins, leaves))
        packet[7] = 64
        return bytes(packet)
    monkeypatch.setattr(mn_module, "mldv2_report", report)


def wrong_ipv4_header_checksum(monkeypatch):
    """The HA's raw-socket writer leaves the IPv4 Header Checksum at zero."""
    import conformance.adapters.memory_net as net

    original = net.ipv4_packet

    def packet(*args, **kwargs):
        raw = bytearray(original(*args, **kwargs))
        raw[10:12] = bytes(2)
        return bytes(raw)
    monkeypatch.setattr(net, "ipv4_packet", packet)


PLANTED = [
    ("HA-3344-009[another-mns-association]", any_security_association_of_the_ha_will_do,
     "RFC3344-3.8.2.1-01"),
    ("MN-3.6-005", ce_not_propagated_to_inner_ipv4, "RFC3168-9.1.1-01"),
    ("HA-3.7.1-003", reply_to_every_solicit, "RFC3633-9-01"),
    ("HA-3.3-014", released_prefixes_still_counted, "RFC5454-3.8-D2"),
    ("HA-4-003", any_link_local_source_accepted, "RFC5454-3.3.2-07"),
    ("HA-3.3.3-003", groups_forgotten_on_reregistration, "RFC5454-3.3.2-10"),
    ("HA-3.3.3-002[mldv2]", leaves_ignored, "RFC3775-10.4.3-01"),
    ("HA-3.3.3-002[mldv1]", leaves_ignored, "RFC3775-10.4.3-01"),
    ("HA-3.3-009", exact_prefix_not_a_conflict, "RFC5454-3.3-06"),
    ("HA-3.3-010", reply_prefix_masked_by_whole_bytes, "RFC5454-2.2-01"),
    ("HA-3.3-011", prefixes_granted_before_encapsulation_check, "RFC5454-3.2-D1"),
    ("HA-3.8-004", no_prefix_request_means_unchanged, "RFC5454-3.8-D3"),
    ("HA-3344-007", replay_of_last_identification_accepted, "RFC3344-3.8.2.1-02"),
    ("HA-3.3.2-006", decapsulation_counts_as_a_hop, "RFC4213-3.3-01"),
    ("MN-3.5-012", prefix_replies_matched_by_position, "RFC5454-3.5-06"),
    ("MN-3.5-013", fallback_only_on_first_registration, "RFC5454-3.5-04"),
    ("FA-3344-003", visitor_only_for_code_0, "RFC3344-4.2.3-01"),
    ("FA-3344-004", lifetime_clamped_and_relayed, "RFC3344-3.7.2-01"),
    ("FA-3344-005[minimal-encapsulation]", unsupported_flag_cleared_and_relayed,
     "RFC3344-3.7.2-01"),
    ("FA-3344-007", visitor_for_any_reply_with_lifetime, "RFC3344-3.7.3.2-01"),
    ("FA-3344-008", visitors_never_expire, "RFC3344-3.7.1-01"),
    ("FA-3344-009", unanswered_requests_forgotten, "RFC3344-3.7.1-02"),
    ("HA-3344-010[empty]", empty_payload_crashes, "RFC5454-3.3-01"),
    ("HA-3344-010[header-only]", header_only_request_dropped, "RFC3344-3.8.2.1-01"),
    ("HA-3.3.3-004", mld_records_walked_without_sources, "RFC3775-10.4.3-01"),
    ("MN-3.3.3-001", mld_report_hop_limit_64, "RFC3810-5.2-01"),
    ("HA-3344-001", wrong_ipv4_header_checksum, "RFC791-3.1-01"),
]


@pytest.mark.parametrize("case_id, plant, requirement", PLANTED,
                         ids=[f"{c}-{p.__name__}" for c, p, _ in PLANTED])
def test_the_case_for_the_scenario_catches_the_bug(monkeypatch, case_id, plant, requirement):
    plant(monkeypatch)
    record = run_in_memory([CASES[case_id]])[0]
    failed = [c for c in record["checks"] if c["ok"] is False]
    # NON-STRICT: the broken rule is a SHOULD or RECOMMENDED one, failed all the same.
    assert record["verdict"] in ("FAIL", "NON-STRICT"), \
        f"{record['verdict']}: {record['message']}"
    assert any(requirement in c["requirements"] for c in failed), record["message"]
