"""Issue 13 item 1: the reference nodes keep bounded state whatever they are sent: one live
timer per binding, a capped table of relayed requests, only (and only so many) multicast
groups per binding, and a log that counts a flood instead of writing it."""

import io
import ipaddress

from conformance.adapters.runner import Logger
from conformance.codec import AuthExtension, RegistrationRequest, decode, encode
from conformance.codec.constants import ReplyCode
from conformance.codec.mld import mldv2_report
from conformance.codec.ntp import ntp_time
from conformance.codec.packets import addr6, tunnel_link_local
from conformance.codec.tunnel import encapsulate
from conformance.nodes.actions import Event, SendUDP
from conformance.nodes.fa import FAConfig, ForeignAgent
from conformance.nodes.ha import HomeAgent, MobileNodeEntry
from conformance.nodes.timers import Deadlines
from memnet import COA, FA, HA, HOA, KEY, START, ha_config


def registration(now, lifetime=600, coa=COA, hoa=HOA) -> bytes:
    request = RegistrationRequest(0, lifetime, hoa, HA, coa, ntp_time(now),
                                  [AuthExtension(32, 256)])
    return encode(request, {32: KEY})


def make_ha(**kw) -> HomeAgent:
    entry = MobileNodeEntry(HOA, 256, KEY, [ipaddress.IPv6Network("2001:db8:10::/48")])
    return HomeAgent(ha_config(mobile_nodes=[entry], **kw))


def test_re_registrations_keep_one_live_timer_per_binding():
    ha = make_ha()
    now = START
    for _ in range(18_416):
        now += 0.01
        [reply] = [a for a in ha.receive_udp(registration(now), COA, 434, now)
                   if isinstance(a, SendUDP)]
        assert decode(reply.payload).code == 0
    assert len(ha._timers) == 1 and ha._timers.heap_size() <= 2 + 64
    assert [e.name for e in ha.handle_timer(now + 601) if isinstance(e, Event)] == [
        "binding-removed"]
    assert ha.next_timer() is None and not ha.bindings


def test_deadlines_replace_cancel_and_come_due_in_order():
    d = Deadlines()
    d.set("a", 5)
    d.set("b", 3)
    d.set("a", 9)  # replaces 5
    d.set("c", 4)
    d.cancel("c")
    assert d.next() == 3 and d.due(8) == ["b"] and d.due(100) == ["a"] and d.next() is None


def _fa(**kw) -> ForeignAgent:
    return ForeignAgent(FAConfig(FA, **kw))


def test_fa_pending_requests_are_capped_per_mn_and_overall_with_code_66_logged_once():
    fa = _fa(max_pending=5, max_pending_per_mn=3)
    now = START

    def relay(hoa):
        nonlocal now
        now += 0.001
        return fa.receive_udp(registration(now, coa=FA, hoa=hoa), HOA, 434, now)

    for _ in range(3):
        assert any(isinstance(a, SendUDP) and a.dst == HA for a in relay(HOA))
    denied = relay(HOA)
    [reply] = [a for a in denied if isinstance(a, SendUDP)]
    assert decode(reply.payload).code == ReplyCode.FA_INSUFFICIENT_RESOURCES == 66
    assert [e.name for e in denied if isinstance(e, Event)] == ["registration-denied"]
    again = relay(HOA)  # still full: denied again, but the episode was logged already
    assert [a for a in again if isinstance(a, Event)] == []
    for hoa in ("203.0.113.11", "203.0.113.12"):
        assert any(isinstance(a, SendUDP) and a.dst == HA for a in relay(hoa))
    [reply] = [a for a in relay("203.0.113.13") if isinstance(a, SendUDP)]
    assert decode(reply.payload).code == 66 and len(fa.pending) == 5
    fa.handle_timer(now + 60)  # no reply from the HA: all time out and the table empties
    assert not fa.pending and not fa._pending_per_mn and fa.next_timer() is None


def _mld_to_ha(ha, now, joins):
    report = mldv2_report(tunnel_link_local(HOA), joins=[addr6(g) for g in joins])
    _, middle = encapsulate(report, True, HOA, HA, "ipip")
    _, outer = encapsulate(middle, False, COA, HA, "ipip")
    return ha.receive_ipv4(outer, now)


def test_mld_records_only_multicast_groups_and_at_most_max_groups_per_binding():
    ha = make_ha(max_groups=10)
    now = START + 1
    ha.receive_udp(registration(now), COA, 434, now)
    binding = ha.bindings[HOA]
    _mld_to_ha(ha, now, ["2001:db8:10::1", "ff0e::1"])
    assert {ipaddress.IPv6Address(g) for g in binding.groups} == {
        ipaddress.IPv6Address("ff0e::1")}
    for i in range(50):
        _mld_to_ha(ha, now, [f"ff0e::{i:x}:{j:x}" for j in range(7)])
    assert len(binding.groups) == 10


def test_a_flood_of_one_log_event_is_counted_not_written():
    clock = [1000.0]
    log = Logger("ha", None, clock=lambda: clock[0])
    log.stream = io.StringIO()
    for _ in range(120_000):
        log.write("decode-error", "warning", error="x")
    lines = log.stream.getvalue().splitlines()
    assert len(lines) == Logger.BURST
    clock[0] += Logger.WINDOW
    log.write("decode-error", "warning", error="x")
    lines = log.stream.getvalue().splitlines()
    assert '"log-suppressed"' in lines[-2] and f'"count": {120_000 - Logger.BURST}' in lines[-2]
    log.write("stopped")
    log.flush_suppressed()
    assert len(log.stream.getvalue().splitlines()) == Logger.BURST + 3
