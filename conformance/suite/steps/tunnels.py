"""Tunnel steps: IPv6 sent into and expected out of the device's tunnels, observed on the
device's own link (the HA's transit side, the MN's visited link)."""

from __future__ import annotations

import ipaddress

from conformance.codec import DecodeError, TunnelData, encode
from conformance.codec.packets import (
    IPv6, addr6, frag_needed, icmpv6_packet, ipv4_packet, parse_ipv4, parse_ipv6, upper_layer,
)
from conformance.codec.tunnel import encapsulate, set_ipv4_ecn
from conformance.errors import Inconclusive
from conformance.suite.checks import _inner6
from conformance.suite.model import Step
from conformance.suite.registry import Address4, Prefix, step
from conformance.suite.steps.context import Absent, CaseRun
from conformance.suite.steps.messages import damaged_tunnel_payload, inner_packet


def _tunnel_link(run: CaseRun) -> str:
    """Where the HA's tunnelled packets are judged: its own (transit) link when it is under
    test, the visited link when the FA under test delivers them."""
    return "transit" if run.case.role == "ha" else "foreign"


def _ipv6(run: CaseRun, spec) -> bytes:
    return IPv6(addr6(run.vars["cn6"]), addr6(run.resolve(spec["dst"])), 59,
                bytes(int(spec.get("size", 8))), int(spec.get("hop_limit", 64)),
                int(spec.get("traffic_class", 0))).to_bytes()


@step("send_ipv6", dst=str, hop_limit=int, traffic_class=int, size=int, required=("dst",))
def send_ipv6(run: CaseRun, step: Step) -> None:
    """The correspondent sends an IPv6 packet toward the HA's home side."""
    run.mark_all()
    packet = _ipv6(run, run.resolve(step.spec))
    run.session.agent_for("cn").send_ip6(packet)
    run.note("suite (CN)", "DUT (HA)", f"IPv6 to {run.resolve(step.spec['dst'])}, "
             f"{len(packet)} bytes")


def _carries(dst: str, larger_than: int | None = None):
    """Accepts a tunnelled packet whose inner IPv6 goes to `dst` (and, with larger_than, whose
    inner packet is bigger than that many bytes)."""
    target = addr6(dst)

    def accept(packet: bytes) -> bool:
        try:
            inner = _inner6(packet)
        except DecodeError:
            return False
        return inner is not None and inner.dst == target and (
            larger_than is None or 40 + len(inner.payload) > larger_than)
    return accept


def _expect_carrying(run: CaseRun, step: Step, link: str, flt: dict, sender: str,
                     receiver: str, name: str) -> None:
    """Wait on `link` for a tunnelled packet whose inner IPv6 goes to inner_dst; check it."""
    spec = step.spec
    timeout = run.timeout(step, "reply_timeout")
    dst = run.resolve(spec["inner_dst"])
    packet = run.wait_packet(link, flt, timeout, _carries(dst))
    if packet is None:
        run.vars[name] = Absent(f"nothing tunnelled for {dst} in step {step.index + 1}")
        if step.precondition:
            raise Inconclusive(f"nothing tunnelled for {dst} by the {sender} within "
                               f"{timeout:.1f} s")
        run.record(step, f"tunnelled by the {sender}", False, f"IPv6 for {dst} tunnelled by "
                   f"the {sender} within {timeout:.1f} s", "nothing", detail=run.seen())
        return
    outer = parse_ipv4(packet)
    run.note(f"DUT ({sender})", receiver,
             f"IPv4 {outer.src} > {outer.dst} proto {outer.proto} carrying IPv6 to {dst}")
    run.vars[name] = {"message": packet}
    run.run_checks(step, packet, spec.get("checks"))


def _expect_not_carrying(run: CaseRun, step: Step, link: str, flt: dict, sender: str) -> None:
    timeout = run.timeout(step, "negative_timeout")
    dst = run.resolve(step.spec["inner_dst"])
    larger = step.spec.get("larger_than")
    larger = int(run.resolve(larger)) if larger is not None else None
    packet = run.wait_packet(link, flt, timeout, _carries(dst, larger))
    what = f"IPv6 for {dst}" + (f" larger than {larger} bytes" if larger else "")
    run.record(step, f"nothing tunnelled by the {sender}", packet is None,
               f"no {what} tunnelled by the {sender} within {timeout:.1f} s",
               "nothing" if packet is None else f"a packet of {len(packet)} bytes: "
               f"{packet[:80].hex()}")


@step("expect_tunnelled", subject="packet", inner_dst=str, checks=list,
      required=("inner_dst",))
def expect_tunnelled(run: CaseRun, step: Step) -> None:
    _expect_carrying(run, step, _tunnel_link(run), {"src": run.vars["ha"]}, "HA",
                     "MN side", "tunnelled")


@step("expect_not_tunnelled", inner_dst=str, required=("inner_dst",))
def expect_not_tunnelled(run: CaseRun, step: Step) -> None:
    _expect_not_carrying(run, step, _tunnel_link(run), {"src": run.vars["ha"]}, "HA")


@step("expect_from_mn", subject="packet", inner_dst=str, checks=list,
      required=("inner_dst",))
def expect_from_mn(run: CaseRun, step: Step) -> None:
    """A packet the MN under test tunnels to the HA, seen on the MN's own link."""
    _expect_carrying(run, step, "foreign", {"dst": run.vars["ha"]}, "MN", "suite (HA)",
                     "from_mn")


@step("expect_nothing_from_mn", inner_dst=str, larger_than=int, required=("inner_dst",))
def expect_nothing_from_mn(run: CaseRun, step: Step) -> None:
    _expect_not_carrying(run, step, "foreign", {"dst": run.vars["ha"]}, "MN")


@step("send_tunnelled", inner=str, inner_src=str, outer_src=Address4, double=bool, hop_limit=int,
      target=str, group=str, second_group=str, encapsulation=str, variant=str,
      rapid_commit=bool, traffic_class=int, outer_ecn=int, tunnel_reserved=int)
def send_tunnelled(run: CaseRun, step: Step) -> None:
    """The suite as MN tunnels an IPv6 packet to the HA under test (IP-in-IP, GRE with
    `encapsulation: gre`, or with `encapsulation: udp` as an RFC 3519 Mobile Tunnel Data
    message to port 434)."""
    spec = run.resolve(step.spec)
    outer_src = spec.get("outer_src", run.vars["hoa"])
    if spec.get("inner") == "damaged":  # `variant:` names it (messages.TUNNEL_DAMAGE)
        proto, payload = damaged_tunnel_payload(run, spec.get("variant", ""))
        run.mark_all()
        agent = run.session.agent_for("mn")
        if proto == "udp":
            agent.send_udp(outer_src, run.vars["ha"], payload)
        else:
            agent.send_ip(ipv4_packet(outer_src, run.vars["ha"], proto, payload))
        run.note("suite (MN)", "DUT (HA)", f"IPv4 {outer_src} > {run.vars['ha']} carrying a "
                 f"damaged packet ({spec.get('variant')})")
        return
    inner = inner_packet(run, spec)
    method = spec.get("encapsulation", "ipip")
    if method not in ("ipip", "gre", "udp"):
        raise run.error(step, f"encapsulation: {method!r}; expected ipip, gre or udp")
    run.mark_all()
    if method == "udp":
        run.session.agent_for("mn").send_udp(outer_src, run.vars["ha"], encode(TunnelData(
            41, inner, int(spec.get("tunnel_reserved", 0)))))
    else:
        if spec.get("double"):
            _, middle = encapsulate(inner, True, run.vars["hoa"], run.vars["ha"], "ipip")
            _, packet = encapsulate(middle, False, outer_src, run.vars["ha"], "ipip")
        else:
            _, packet = encapsulate(inner, True, outer_src, run.vars["ha"], method)
        if "outer_ecn" in spec:  # as if a router on the path had marked the tunnel packet
            packet = set_ipv4_ecn(packet, int(spec["outer_ecn"]))
        run.session.agent_for("mn").send_ip(packet)
    run.note("suite (MN)", "DUT (HA)", f"IPv4 {outer_src} > {run.vars['ha']} carrying IPv6 "
             f"{spec.get('inner', 'data')}" + (" in Mobile Tunnel Data" if method == "udp"
                                              else ""))


@step("send_to_mn", inner=str, inner_src=str, inner_dst=str, via=str, encapsulation=str,
      size=int, target=str, prefix=Prefix, outer_ecn=int, middle_ecn=int, outer_src=Address4,
      traffic_class=int)
def send_to_mn(run: CaseRun, step: Step) -> None:
    """The suite as HA tunnels an IPv6 packet to the MN (or FA) under test (§3.3.2 cases 1
    and 2)."""
    spec = run.resolve(step.spec)
    inner = inner_packet(run, spec)
    via = spec.get("via", "hoa")
    method = spec.get("encapsulation", "ipip")
    ha = run.vars["ha"]
    colocated = run.case.topology == "colocated"
    target = run.vars["coa"] if colocated else run.vars["fa"]
    run.mark_all()
    agent = run.session.agent_for("ha")
    if method == "udp":
        saved = run.saved("request")
        agent.send_udp(ha, run.vars["coa"], encode(TunnelData(41, inner)), sport=434,
                       dport=saved.get("sport", 434))
    elif via == "coa":
        _, packet = encapsulate(inner, True, spec.get("outer_src", ha), run.vars["coa"], method)
        if "outer_ecn" in spec:
            packet = set_ipv4_ecn(packet, int(spec["outer_ecn"]))
        agent.send_ip(packet)
    else:
        _, middle = encapsulate(inner, True, ha, run.vars["hoa"], "ipip")
        if "middle_ecn" in spec:
            middle = set_ipv4_ecn(middle, int(spec["middle_ecn"]))
        _, packet = encapsulate(middle, False, ha, target, method if colocated else "ipip")
        if "outer_ecn" in spec:
            packet = set_ipv4_ecn(packet, int(spec["outer_ecn"]))
        agent.send_ip(packet)
    run.note("suite (HA)", "DUT", f"{spec.get('inner', 'data')} over the {via.upper()} tunnel "
             f"({method})")


@step("send_frag_needed", mtu=int, about=str, required=("mtu",))
def send_frag_needed(run: CaseRun, step: Step) -> None:
    """An ICMPv4 Fragmentation Needed (RFC 1191) to the HA from the router at the FA's transit
    address, about the tunnel packet the HA sent toward the FA or the co-located CoA beyond
    it: the quote is rebuilt from what was captured (`about`, default `tunnelled`)."""
    spec = run.resolve(step.spec)
    mtu = int(spec["mtu"])
    seen = run.saved(spec.get("about", "tunnelled"))["message"]
    to = run.vars["fa"]
    header = parse_ipv4(seen)
    # A co-located CoA's tunnel passes the FA's router as it is; toward the FA, the quote is
    # of the packet as it left the HA for the FA.
    direct = header.dst == to or run.case.topology == "colocated"
    sent = seen if direct else ipv4_packet(header.src, to, 4, seen, df=header.df)
    router = run.vars.get("fa_transit") or run.vars["fa"]
    run.mark_all()
    run.session.agent_for("fa").send_ip(frag_needed(router, sent, mtu))
    run.note("suite (router)", "DUT (HA)", f"ICMPv4 Fragmentation Needed, next-hop MTU {mtu}, "
             f"about {header.src} > {to}")


def _from6(src: str, icmp_type: int | None = None):
    target = addr6(src)

    def accept(packet: bytes) -> bool:
        if packet[0] >> 4 != 6 or len(packet) < 41 or packet[8:24] != target:
            return False
        return icmp_type is None or (packet[6] == 58 and packet[40] == icmp_type)
    return accept


@step("expect_at_cn", subject="packet6", inner_src=str, icmpv6_type=int, checks=list,
      required=("inner_src",))
def expect_at_cn(run: CaseRun, step: Step) -> None:
    spec = step.spec
    timeout = run.timeout(step, "reply_timeout")
    src = run.resolve(spec["inner_src"])
    packet = run.wait_packet("correspondent", {"version": 6}, timeout,
                             _from6(src, spec.get("icmpv6_type")))
    if packet is None:
        run.record(step, "forwarded to the CN", False, f"IPv6 from {src} at the CN within "
                   f"{timeout:.1f} s", "nothing", detail=run.seen())
        return
    run.note("DUT (HA)", "suite (CN)", f"IPv6 from {src}")
    run.run_checks(step, packet, spec.get("checks"))
    run.record(step, "forwarded to the CN", True, f"IPv6 from {src} at the CN", "arrived")


@step("expect_not_at_cn", inner_src=str, required=("inner_src",))
def expect_not_at_cn(run: CaseRun, step: Step) -> None:
    timeout = run.timeout(step, "negative_timeout")
    src = run.resolve(step.spec["inner_src"])
    packet = run.wait_packet("correspondent", {"version": 6}, timeout, _from6(src))
    run.record(step, "dropped", packet is None, f"no IPv6 from {src} at the CN within "
               f"{timeout:.1f} s", "nothing" if packet is None else "it was forwarded")


@step("expect_no_ra", prefix=Prefix, required=("prefix",))
def expect_no_ra(run: CaseRun, step: Step) -> None:
    """No Router Advertisement on the home side makes a registered prefix on-link (§3.3)."""
    timeout = run.timeout(step, "negative_timeout")
    prefix = ipaddress.IPv6Network(run.resolve(step.spec["prefix"]))

    def advertises(packet: bytes) -> bool:
        try:
            ip6 = parse_ipv6(packet)
        except DecodeError:
            return False
        proto, data = upper_layer(ip6)
        if proto != 58 or not data or data[0] != 134:
            return False
        off = 16
        while off + 8 <= len(data):
            kind, length = data[off], data[off + 1] * 8
            if length == 0:
                break
            if kind == 3 and off + 32 <= len(data):
                net = ipaddress.IPv6Network((data[off + 16:off + 32], data[off + 2]),
                                            strict=False)
                if net.overlaps(prefix):
                    return True
            off += length
        return False
    run.mark_all()
    run.session.agent_for("cn").send_ip6(icmpv6_packet(addr6(run.vars["cn6"]),
                                                       addr6("ff02::2"), 133, 0, bytes(4),
                                                       hop_limit=255))
    packet = run.wait_packet("correspondent", {"version": 6}, timeout, advertises)
    run.record(step, "no on-link advertisement", packet is None,
               f"no Router Advertisement with a prefix overlapping {prefix} within "
               f"{timeout:.1f} s", "none" if packet is None else f"an RA: {packet[:80].hex()}")
