"""Running one test case: its steps as data, checked against what the lab observed."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from conformance.codec import (
    AuthExtension, DecodeError, DSMIPUnknown, NAIExtension, PrefixReply, PrefixRequest,
    RawExtension, RegistrationReply, RegistrationRequest, TunnelingMode, UDPTunnelRequest,
    decode, encode, message_to_dict, prefix_bytes,
)
from conformance.codec.packets import IPv6, addr6, parse_ipv4, parse_ipv6
from conformance.lab.netns import LabError
from conformance.nodes.actions import ntp_time
from conformance.nodes.tunnel import encapsulate
from conformance.suite.checks import CHECKS
from conformance.suite.model import Step, TestCase
from conformance.suite.session import Session, SuiteError
from conformance.suite.verdict import CheckResult


class Inconclusive(Exception):
    """A precondition was not met: the device never reached the state the check needs."""


@dataclass
class TraceEntry:
    time: float
    src: str
    dst: str
    what: str

    def to_dict(self) -> dict:
        return {"time": round(self.time, 6), "from": self.src, "to": self.dst, "what": self.what}


@dataclass
class CaseRun:
    session: Session
    case: TestCase
    vars: dict = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)
    marks: dict = field(default_factory=dict)
    waited: float = 0.0
    seen_on_failure: list = field(default_factory=list)
    _ident: int = 0
    _payloads: dict = field(default_factory=dict)

    def __post_init__(self):
        pixit = self.session.testbed.pixit
        profile = self.session.profile_for("ha" if self.case.role != "mn" else "mn")
        self.key = bytes.fromhex(str(profile.parameters.get("key",
                                                            "00112233445566778899aabbccddeeff")))
        self.spi = int(profile.parameters.get("spi", 256))
        self.vars.update(self.session.addresses.as_vars())
        from conformance.codec.packets import text6, tunnel_link_local

        self.vars.update({"hoa_ll": text6(tunnel_link_local(self.vars["hoa"])),
                          "ha_ll": text6(tunnel_link_local(self.vars["ha"]))})
        self.vars.update({"spi": self.spi, "reply_timeout": pixit["reply_timeout"],
                          "negative_timeout": pixit["negative_timeout"],
                          "lifetime": pixit["registration_lifetime"]})
        dut_profile = self.session.profile_for(self.case.role)
        self.vars.update({f"dut_{k}": v for k, v in dut_profile.parameters.items()})
        self.vars.update(self.case.parameters)
        self.rng = random.Random(self.case.seed if self.case.seed is not None else 5454)

    # ------------------------------------------------------------------ helpers
    def resolve(self, value):
        """$name and ${name} from the case variables; $request.field from saved messages."""
        if isinstance(value, str):
            whole = re.fullmatch(r"\$\{?([\w.]+)\}?", value)
            if whole:
                return self._lookup(whole.group(1))
            return re.sub(r"\$\{([\w.]+)\}", lambda m: str(self._lookup(m.group(1))), value)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def _lookup(self, name: str):
        head, _, rest = name.partition(".")
        if head not in self.vars:
            raise SuiteError(f"{self.case.file}: case {self.case.id}: no variable ${head}")
        value = self.vars[head]
        for part in rest.split(".") if rest else []:
            value = value["message"] if isinstance(value, dict) and "message" in value else value
            value = getattr(value, part) if not isinstance(value, dict) else value[part]
        return value

    def last_payload(self, message) -> bytes:
        return self._payloads[id(message)]

    def record(self, step: Step, name: str, ok: bool, expected: str, actual: str,
               requirements=None, detail: str = "") -> CheckResult:
        reqs = list(requirements or step.requirements or self.case.requirements)
        result = CheckResult(name, ok, reqs, expected, actual, step.index, detail)
        self.results.append(result)
        return result

    def run_checks(self, step: Step, subject, checks) -> None:
        for spec in checks or []:
            args = {k: self.resolve(v) for k, v in spec.items()
                    if k not in ("check", "requirements")}
            try:
                ok, expected, actual = CHECKS[spec["check"]](self, subject, **args)
            except (DecodeError, KeyError, IndexError, ValueError) as exc:
                ok, expected, actual = False, spec["check"], f"could not be evaluated: {exc}"
            self.record(step, spec["check"], ok, expected, actual, spec.get("requirements"))

    def timeout(self, step: Step, default_key: str) -> float:
        return float(self.resolve(step.spec.get("timeout", f"${default_key}")))

    def mark_all(self) -> None:
        for link, (host, iface) in self.session.watch.items():
            self.marks[link] = self.session.agent(host).mark(iface)

    def wait_packet(self, link: str, flt: dict, timeout: float, accept=None):
        """The first packet on `link` after the mark that matches flt (and accept(packet))."""
        host, iface = self.session.watch[link]
        agent = self.session.agent(host)
        since = self.marks.get(link, 0)
        deadline = time.monotonic() + timeout
        start = time.monotonic()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                seen = agent.wait(iface, flt, left, since)
                if not seen["matched"]:
                    self.seen_on_failure = seen.get("seen", [])
                    return None
                packet = bytes.fromhex(seen["packet"])
                since = seen["seq"]
                if accept is None or accept(packet):
                    self.marks[link] = seen["seq"]
                    return packet
        finally:
            self.waited += time.monotonic() - start

    def udp_payload(self, packet: bytes) -> bytes:
        ihl = (packet[0] & 15) * 4
        return packet[ihl + 8:]

    def note(self, src: str, dst: str, what: str) -> None:
        self.trace.append(TraceEntry(time.time(), src, dst, what))

    def decode_saved(self, step: Step, packet: bytes, name: str):
        payload = self.udp_payload(packet)
        try:
            message = decode(payload)
        except DecodeError as err:
            self.record(step, "message decodes", False, "a well-formed message",
                        f"{err} | hex {payload.hex()}")
            return None
        self._payloads[id(message)] = payload
        self.vars[name] = {"message": message, "payload": payload,
                           "src": parse_ipv4(packet).src,
                           "sport": int.from_bytes(packet[(packet[0] & 15) * 4:][:2], "big")}
        return message

    def next_identification(self) -> int:
        ident = ntp_time(time.time())
        self._ident = max(ident, self._ident + 1)
        return self._ident

    # ------------------------------------------------------------------ messages from data
    def extension(self, item):
        (kind, spec), = item.items()
        spec = self.resolve(spec)
        if kind == "prefix-request":
            if isinstance(spec, str):
                return PrefixRequest.of(spec)
            return PrefixRequest(int(spec["length"]), prefix_bytes(spec["prefix"]),
                                 wire_length=spec.get("wire_length"))
        if kind == "tunneling-mode":
            spec = spec or {}
            return TunnelingMode(int(spec.get("reserved", 0)), spec.get("wire_length"))
        if kind == "dsmip":
            return DSMIPUnknown(int(spec["subtype"]), bytes.fromhex(spec.get("body", "")),
                                spec.get("wire_length"))
        if kind == "raw":
            return RawExtension(int(spec["type"]), bytes.fromhex(spec.get("body", "")),
                                spec.get("wire_length"))
        if kind == "nai":
            return NAIExtension(str(spec).encode())
        if kind == "udp-tunnel-request":
            return UDPTunnelRequest(encapsulation=int((spec or {}).get("encapsulation", 0)))
        if kind == "mn-ha-auth":
            spec = spec or {}
            auth = spec.get("authenticator")
            return AuthExtension(32, int(spec.get("spi", self.spi)),
                                 bytes.fromhex(auth) if auth else None)
        if kind == "udp-tunnel-reply":
            from conformance.codec import UDPTunnelReply

            spec = spec or {}
            return UDPTunnelReply(code=int(spec.get("code", 0)),
                                  keepalive=int(spec.get("keepalive", 110)))
        if kind == "prefix-reply":
            request = self.vars[spec.get("request_of", "request")]["message"]
            if "raw_prefix" in spec:
                reply = PrefixReply(int(spec.get("code", 0)), int(spec["length"]),
                                    prefix_bytes(spec["raw_prefix"]))
                reply.reserved = int(spec.get("reserved", 0))
                return reply
            if "request" in spec:
                base = request.prefix_requests[int(spec["request"])]
                reply = PrefixReply.answering(base, int(spec.get("code", 0)))
            else:
                req = PrefixRequest.of(spec["prefix"])
                reply = PrefixReply.answering(req, int(spec.get("code", 0)))
            reply.reserved = int(spec.get("reserved", 0))
            return reply
        raise SuiteError(f"{self.case.file}: case {self.case.id}: unknown extension {kind!r}")


# ---------------------------------------------------------------------- step executors
def step_register(run: CaseRun, step: Step) -> None:
    spec = step.spec
    fields = run.resolve(spec.get("fields") or {})
    topology = run.case.topology
    via = spec.get("via", "fa" if topology == "fa" else "ha")
    exts = [run.extension(item) for item in spec.get("extensions") or []]
    spi = int(fields.get("spi", run.spi))
    key = bytes.fromhex(str(fields["key"])) if "key" in fields else run.key
    for ext in exts:
        if isinstance(ext, AuthExtension) and "spi" in fields:
            ext.spi = spi
    if spec.get("auth", True) and not any(isinstance(e, AuthExtension) for e in exts):
        exts.append(AuthExtension(32, spi))
    flags = fields.get("flags", "D" if topology == "colocated" else "")
    request = RegistrationRequest(
        RegistrationRequest.flags_of(flags) if isinstance(flags, str) else int(flags),
        int(fields.get("lifetime", run.vars["lifetime"])), fields.get("home_address",
                                                                     run.vars["hoa"]),
        fields.get("home_agent", run.vars["ha"]),
        fields.get("care_of_address", run.vars["fa"] if topology == "fa" else run.vars["coa"]),
        int(fields["identification"]) if "identification" in fields else
        run.next_identification(), exts)
    payload = encode(request, {32: key})
    if spec.get("raw_hex"):
        payload = bytes.fromhex(run.resolve(spec["raw_hex"]))
    src = request.home_address if via == "fa" else request.care_of_address
    dst = run.vars["fa"] if via == "fa" else run.vars["ha"]
    run.mark_all()
    run.session.agent_for("mn").send_udp(src, dst, payload)
    try:
        message = decode(payload)
        run._payloads[id(message)] = payload
    except DecodeError:
        message = None
    run.vars[spec.get("save_as", "request")] = {"message": message, "payload": payload,
                                                "src": src}
    run.note("suite (MN)", "FA" if via == "fa" else "DUT (HA)",
             f"Registration Request lifetime {request.lifetime}, "
             f"{len(request.prefix_requests)} prefix request(s), {len(payload)} bytes")


def _reply_filter(run: CaseRun, spec) -> dict:
    frm = spec.get("from", "fa" if run.case.topology == "fa" else "ha")
    return {"src": run.vars[frm], "ip_proto": 17, "dport": 434}


def _alternatives(run: CaseRun, step: Step, packet, spec) -> None:
    """`accept:` several acceptable outcomes; the step passes when one of them holds."""
    outcomes = []
    message = None
    if packet is not None:
        message = run.decode_saved(step, packet, spec.get("save_as", "reply"))
        if message is None:
            return
    for i, alt in enumerate(spec["accept"]):
        if alt.get("nothing"):
            ok = packet is None
            outcomes.append((ok, "no reply (silent drop)" if ok else "a reply arrived"))
            continue
        if message is None:
            outcomes.append((False, "no reply"))
            continue
        scratch = CaseRun.__new__(CaseRun)
        scratch.__dict__.update(run.__dict__)
        scratch.results = []
        scratch.run_checks(step, message, alt.get("checks"))
        failed = [f"{r.name}: {r.actual}" for r in scratch.results if not r.ok]
        outcomes.append((not failed, "; ".join(failed) or "all checks hold"))
    ok = any(o for o, _ in outcomes)
    summary = " | ".join(f"outcome {i + 1}: {text}" for i, (_, text) in enumerate(outcomes))
    run.record(step, "acceptable outcome", ok, f"one of {len(outcomes)} acceptable outcomes",
               summary)


def step_expect_reply(run: CaseRun, step: Step) -> None:
    spec = step.spec
    timeout = run.timeout(step, "reply_timeout")
    packet = run.wait_packet("foreign", _reply_filter(run, spec), timeout)
    if spec.get("accept"):
        return _alternatives(run, step, packet, spec)
    if packet is None:
        if spec.get("or_nothing"):
            run.record(step, "reply or silent drop", True, "a reply or a silent drop",
                       f"no reply within {timeout:.1f} s")
            return
        if step.precondition:
            raise Inconclusive(f"step {step.index + 1}: no Registration Reply within "
                               f"{timeout:.1f} s")
        run.record(step, "reply arrives", False, f"a Registration Reply within {timeout:.1f} s",
                   "nothing", detail=_seen(run))
        return
    message = run.decode_saved(step, packet, spec.get("save_as", "reply"))
    if message is None:
        return
    run.note("FA" if run.case.topology == "fa" else "DUT (HA)", "suite (MN)",
             f"Registration Reply code {message.code}, "
             f"{len(message.prefix_replies)} prefix reply(ies)")
    if step.precondition and message.code > 1:
        raise Inconclusive(f"step {step.index + 1}: registration rejected with code "
                           f"{message.code}; the case needs it accepted")
    run.run_checks(step, message, spec.get("checks"))


def _seen(run: CaseRun) -> str:
    seen = run.seen_on_failure[-8:]
    return "seen on the link instead: " + ("; ".join(
        f"{s.get('src')} > {s.get('dst')} proto {s.get('ip_proto')}"
        + (f" port {s.get('dport')}" if s.get("dport") else "") for s in seen) or "nothing")


def step_expect_no_reply(run: CaseRun, step: Step) -> None:
    timeout = run.timeout(step, "negative_timeout")
    packet = run.wait_packet("foreign", _reply_filter(run, step.spec), timeout)
    ok = packet is None
    actual = "nothing" if ok else f"a reply: {run.udp_payload(packet).hex()}"
    run.record(step, "no reply", ok, f"no Registration Reply within {timeout:.1f} s", actual)


def _ipv6(run: CaseRun, spec) -> bytes:
    size = int(spec.get("size", 8))
    return IPv6(addr6(run.resolve(spec.get("src", "$cn6"))), addr6(run.resolve(spec["dst"])),
                59, bytes(size), int(spec.get("hop_limit", 64)),
                int(spec.get("traffic_class", 0))).to_bytes()


def step_send_ipv6(run: CaseRun, step: Step) -> None:
    spec = step.spec
    run.mark_all()
    packet = _ipv6(run, spec)
    for _ in range(int(spec.get("count", 1))):
        run.session.agent_for("cn").send_ip6(packet)
    run.note("suite (CN)", "DUT (HA)", f"IPv6 to {run.resolve(spec['dst'])}, {len(packet)} "
             f"bytes")


def _carries(run: CaseRun, dst: str, larger_than: int | None = None):
    """Accepts a tunnelled packet whose inner IPv6 goes to `dst` (and, with larger_than, whose
    inner packet is bigger than that many bytes)."""
    target = addr6(dst)

    def accept(packet: bytes) -> bool:
        from conformance.suite.checks import _inner6

        try:
            inner = _inner6(packet)
        except DecodeError:
            return False
        return inner is not None and inner.dst == target and (
            larger_than is None or 40 + len(inner.payload) > larger_than)
    return accept


def _expect_carrying(run: CaseRun, step: Step, link: str, flt: dict, sender: str,
                     receiver: str, default_name: str) -> None:
    """Wait on `link` for a tunnelled packet whose inner IPv6 goes to inner_dst; check it."""
    spec = step.spec
    timeout = run.timeout(step, "reply_timeout")
    dst = run.resolve(spec["inner_dst"])
    packet = run.wait_packet(link, flt, timeout, _carries(run, dst))
    if packet is None:
        if step.precondition:
            raise Inconclusive(f"nothing tunnelled for {dst} by the {sender} within "
                               f"{timeout:.1f} s")
        run.record(step, f"tunnelled by the {sender}", False, f"IPv6 for {dst} tunnelled by "
                   f"the {sender} within {timeout:.1f} s", "nothing", detail=_seen(run))
        return
    outer = parse_ipv4(packet)
    run.note(f"DUT ({sender})" if sender in ("HA", "MN") else sender, receiver,
             f"IPv4 {outer.src} > {outer.dst} proto {outer.proto} carrying IPv6 to {dst}")
    run.vars[spec.get("save_as", default_name)] = {"message": packet}
    run.run_checks(step, packet, spec.get("checks"))


def _expect_not_carrying(run: CaseRun, step: Step, link: str, flt: dict, sender: str) -> None:
    timeout = run.timeout(step, "negative_timeout")
    dst = run.resolve(step.spec["inner_dst"])
    larger = step.spec.get("larger_than")
    larger = int(run.resolve(larger)) if larger is not None else None
    packet = run.wait_packet(link, flt, timeout, _carries(run, dst, larger))
    what = f"IPv6 for {dst}" + (f" larger than {larger} bytes" if larger else "")
    run.record(step, f"nothing tunnelled by the {sender}", packet is None,
               f"no {what} tunnelled by the {sender} within {timeout:.1f} s",
               "nothing" if packet is None else f"a packet of {len(packet)} bytes: "
               f"{packet[:80].hex()}")


def step_expect_tunnelled(run: CaseRun, step: Step) -> None:
    _expect_carrying(run, step, step.spec.get("on", "foreign"), {"src": run.vars["ha"]}, "HA",
                     "MN link", "tunnelled")


def step_expect_not_tunnelled(run: CaseRun, step: Step) -> None:
    _expect_not_carrying(run, step, "foreign", {"src": run.vars["ha"]}, "HA")


def inner_packet(run: CaseRun, spec: dict) -> bytes:
    """The IPv6 packet a tunnel step carries: data, echo, ns, mld-join, dhcpv6-solicit/reply."""
    from conformance.codec import dhcpv6 as dh
    from conformance.codec.mld import mldv2_report
    from conformance.codec.packets import icmpv6_packet, tunnel_link_local, udp6_packet

    kind = spec.get("inner", "data")
    hoa_ll = tunnel_link_local(run.vars["hoa"])
    ha_ll = tunnel_link_local(run.vars["ha"])
    if kind == "data":
        return IPv6(addr6(spec["inner_src"]), addr6(spec.get("inner_dst", run.vars["cn6"])), 59,
                    bytes(int(spec.get("size", 8))), int(spec.get("hop_limit", 64)),
                    int(spec.get("traffic_class", 0))).to_bytes()
    if kind == "echo":
        body = bytes((0x54, 0x54, 0, 1)) + bytes(int(spec.get("size", 8)))
        packet = icmpv6_packet(addr6(spec.get("inner_src", run.vars["cn6"])),
                               addr6(spec["inner_dst"]), 128, 0, body,
                               hop_limit=int(spec.get("hop_limit", 64)))
        tc = int(spec.get("traffic_class", 0))
        if tc:
            from conformance.nodes.tunnel import set_ipv6_ecn

            first = (6 << 28) | (tc << 20)
            packet = first.to_bytes(4, "big") + packet[4:]
            packet = set_ipv6_ecn(packet, tc & 3)
        return packet
    if kind == "ns":
        src = addr6(spec["inner_src"]) if "inner_src" in spec else \
            (hoa_ll if spec.get("target", "ha") == "ha" else ha_ll)
        target = ha_ll if spec.get("target", "ha") == "ha" else hoa_ll
        return icmpv6_packet(src, target, 135, 0, bytes(4) + target, hop_limit=255)
    if kind == "mld-join":
        return mldv2_report(hoa_ll, joins=[addr6(spec["group"])])
    if kind == "dhcpv6-solicit":
        msg = dh.DHCPv6Message(dh.SOLICIT, 0x5454, b"\x00\x03\x00\x01\x02\x00\x00\x00\x00\x01",
                               ia_pd=[dh.IAPD(1)], rapid_commit=True)
        return udp6_packet(hoa_ll, dh.ALL_DHCP_SERVERS, dh.CLIENT_PORT, dh.SERVER_PORT,
                           dh.encode_dhcpv6(msg), hop_limit=1)
    if kind == "dhcpv6-reply":
        from conformance.codec.packets import parse_udp, upper_layer
        from conformance.suite.checks import _inner6

        solicit = _inner6(run.vars[spec.get("to", "from_mn")]["message"])
        _, data = upper_layer(solicit)
        sport, _, body = parse_udp(data)
        asked = dh.decode_dhcpv6(body)
        net = __import__("ipaddress").IPv6Network(spec["prefix"])
        reply = dh.DHCPv6Message(dh.REPLY, asked.transaction_id, asked.client_id,
                                 b"\x00\x03\x00\x01suite", [dh.IAPD(
                                     asked.ia_pd[0].iaid if asked.ia_pd else 1, 300, 480,
                                     [dh.IAPrefix(600, 600, net.prefixlen,
                                                  net.network_address.packed)])],
                                 rapid_commit=True)
        return udp6_packet(ha_ll, solicit.src, dh.SERVER_PORT, sport, dh.encode_dhcpv6(reply),
                           hop_limit=255)
    raise SuiteError(f"{run.case.file}: case {run.case.id}: unknown inner packet {kind!r}")


def step_send_tunnelled(run: CaseRun, step: Step) -> None:
    spec = run.resolve(step.spec)
    inner = inner_packet(run, spec)
    outer_src = spec.get("outer_src", run.vars["hoa"])
    method = spec.get("encapsulation", "ipip")
    if spec.get("double"):
        _, middle = encapsulate(inner, True, run.vars["hoa"], run.vars["ha"], "ipip")
        _, packet = encapsulate(middle, False, outer_src, run.vars["ha"], method)
    else:
        _, packet = encapsulate(inner, True, outer_src, run.vars["ha"], method)
    run.mark_all()
    run.session.agent_for("mn").send_ip(packet)
    run.note("suite (MN)", "DUT (HA)", f"IPv4 {outer_src} > {run.vars['ha']} carrying IPv6 "
             f"{spec.get('inner', 'data')}")


def step_send_frag_needed(run: CaseRun, step: Step) -> None:
    """An ICMPv4 Fragmentation Needed (RFC 1191) to the HA from the router at the FA's transit
    address, about the tunnel packet the HA sent toward `to` (default the FA): the quote is
    rebuilt from what was captured behind that tunnel end (`about`, default `tunnelled`)."""
    from conformance.codec.packets import frag_needed, ipv4_packet

    spec = run.resolve(step.spec)
    mtu = int(spec["mtu"])
    seen = run.vars[spec.get("about", "tunnelled")]["message"]
    to = spec.get("to", run.vars["fa"])
    header = parse_ipv4(seen)
    sent = seen if header.dst == to else ipv4_packet(header.src, to, 4, seen, df=header.df)
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


def step_expect_at_cn(run: CaseRun, step: Step) -> None:
    spec = step.spec
    timeout = run.timeout(step, "reply_timeout")
    src = run.resolve(spec["inner_src"])
    packet = run.wait_packet("correspondent", {"version": 6}, timeout,
                             _from6(src, spec.get("icmpv6_type")))
    if packet is None:
        run.record(step, "forwarded to the CN", False, f"IPv6 from {src} at the CN within "
                   f"{timeout:.1f} s", "nothing", detail=_seen(run))
        return
    run.note("DUT (HA)", "suite (CN)", f"IPv6 from {src}")
    run.run_checks(step, packet, spec.get("checks"))
    run.record(step, "forwarded to the CN", True, f"IPv6 from {src} at the CN", "arrived")


def step_expect_not_at_cn(run: CaseRun, step: Step) -> None:
    timeout = run.timeout(step, "negative_timeout")
    src = run.resolve(step.spec["inner_src"])
    packet = run.wait_packet("correspondent", {"version": 6}, timeout, _from6(src))
    run.record(step, "dropped", packet is None, f"no IPv6 from {src} at the CN within "
               f"{timeout:.1f} s", "nothing" if packet is None else "it was forwarded")


def step_state(run: CaseRun, step: Step) -> None:
    dut = run.session.dut(run.case.role)
    rows = dut.state(step.spec.get("table", "bindings"))
    run.vars["state"] = {"message": rows}
    run.run_checks(step, rows, step.spec.get("checks"))


def step_wait(run: CaseRun, step: Step) -> None:
    """Poll the device's state until the checks hold, with a deadline (not a sleep)."""
    from conformance.waiting import WaitTimeout, wait_for

    dut = run.session.dut(run.case.role)
    table = step.spec.get("state", "bindings")
    limit = float(run.resolve(step.spec.get("seconds_at_most", 5)))
    checks = step.spec.get("checks") or []

    def holds():
        rows = dut.state(table)
        return all(CHECKS[c["check"]](run, rows, **{k: run.resolve(v) for k, v in c.items()
                                                  if k not in ("check", "requirements")})[0]
                   for c in checks)
    start = time.monotonic()
    try:
        wait_for(holds, limit, f"{table} to satisfy {[c['check'] for c in checks]}", 0.1)
        ok = True
    except WaitTimeout:
        ok = False
    run.waited += time.monotonic() - start
    if not ok and step.precondition:
        raise Inconclusive(f"the device's {table} never reached the expected state")
    rows = dut.state(table)
    run.run_checks(step, rows, checks)


def step_log(run: CaseRun, step: Step) -> None:
    dut = run.session.dut(run.case.role)
    if not dut.profile.security_exception:
        raise SuiteError(f"profile {dut.profile.name} declares no security-exception log pattern")
    from conformance.waiting import WaitTimeout, wait_for

    want = step.spec.get("expect", "present")
    limit = run.timeout(step, "reply_timeout")
    start = time.monotonic()
    try:
        lines = wait_for(lambda: dut.security_exceptions(run.vars["_log_mark"]), limit,
                         "a security-exception record") if want == "present" else \
            dut.security_exceptions(run.vars["_log_mark"])
    except WaitTimeout:
        lines = []
    run.waited += time.monotonic() - start
    ok = bool(lines) if want == "present" else not lines
    run.record(step, f"security exception {want}", ok, f"a security-exception record "
               f"{'in' if want == 'present' else 'absent from'} the device log",
               lines[0][:300] if lines else "no record")


def step_restart_dut(run: CaseRun, step: Step) -> None:
    dut = run.session.device(run.case.role)
    params = run.resolve(step.spec.get("params") or {})
    dut.install()
    dut.configure(**{k: str(v) for k, v in params.items()})
    run.mark_all()
    old = run.session.devices.pop(run.case.role, None)
    if old is not None:
        old.stop()
    dut.start()
    run.session.devices[run.case.role] = dut
    run.vars["_log_mark"] = 0
    run.note("suite", "DUT (MN)", f"start with {params}")


def step_expect_request(run: CaseRun, step: Step) -> None:
    spec = step.spec
    timeout = run.timeout(step, "reply_timeout")
    packet = run.wait_packet("transit", {"dst": run.vars["ha"], "ip_proto": 17, "dport": 434},
                             timeout)
    if packet is None:
        if step.precondition:
            raise Inconclusive(f"the device sent no Registration Request within {timeout:.1f} s")
        run.record(step, "request arrives", False, f"a Registration Request within "
                   f"{timeout:.1f} s", "nothing", detail=_seen(run))
        return
    message = run.decode_saved(step, packet, spec.get("save_as", "request"))
    if message is None:
        return
    run.note("DUT (MN)", "suite (HA)", f"Registration Request lifetime {message.lifetime}, "
             f"{len(message.prefix_requests)} prefix request(s)")
    run.run_checks(step, message, spec.get("checks"))


def step_expect_relayed(run: CaseRun, step: Step) -> None:
    step_expect_request(run, step)


def step_expect_no_request(run: CaseRun, step: Step) -> None:
    timeout = run.timeout(step, "negative_timeout")
    packet = run.wait_packet("transit", {"dst": run.vars["ha"], "ip_proto": 17, "dport": 434},
                             timeout)
    run.record(step, "no request", packet is None, f"no Registration Request within "
               f"{timeout:.1f} s", "nothing" if packet is None else "a request")


def step_reply(run: CaseRun, step: Step) -> None:
    spec = step.spec
    saved = run.vars[spec.get("to_request", "request")]
    request = saved["message"]
    fields = run.resolve(spec.get("fields") or {})
    exts = [run.extension(item) for item in spec.get("extensions") or []]
    keys = {32: bytes.fromhex(fields["key"]) if "key" in fields else run.key}
    if spec.get("auth", True):
        exts.append(AuthExtension(32, run.spi))
    fa_ha = spec.get("fa_ha_auth")
    if fa_ha is not None:
        # As an HA with a security association with the FA under test (RFC 3344 §3.5.4);
        # "invalid" signs with a key the FA does not hold.
        if fa_ha not in ("valid", "invalid"):
            raise ValueError(f"fa_ha_auth: {fa_ha!r}; expected valid or invalid")
        exts.append(AuthExtension(34, int(run.resolve("$dut_fa_ha_spi"))))
        key = bytes.fromhex(str(run.resolve("$dut_fa_ha_key")))
        keys[34] = key if fa_ha == "valid" else bytes(b ^ 0xFF for b in key)
    ident = int(fields.get("identification", request.identification))
    if "ha_clock_offset" in fields:
        # A 133 as an HA whose clock is this many seconds off: its time in the high bits.
        ident = ((ntp_time(time.time()) >> 32) + int(fields["ha_clock_offset"])) << 32 | \
            (request.identification & 0xFFFFFFFF)
    reply = RegistrationReply(int(fields.get("code", 0)),
                              int(fields.get("lifetime", request.lifetime)),
                              request.home_address, run.vars["ha"], ident, exts)
    payload = encode(reply, keys)
    run.mark_all()
    run.session.agent_for("ha").send_udp(run.vars["ha"], saved["src"], payload,
                                         sport=434, dport=saved.get("sport", 434))
    run.note("suite (HA)", "DUT (MN)", f"Registration Reply code {reply.code}, "
             f"{len(reply.prefix_replies)} prefix reply(ies)")


def step_send_to_mn(run: CaseRun, step: Step) -> None:
    """The suite as HA tunnels an IPv6 packet to the MN under test (§3.3.2 cases 1 and 2)."""
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
        from conformance.codec import TunnelData

        saved = run.vars.get(spec.get("request", "request"), {})
        agent.send_udp(ha, run.vars["coa"], encode(TunnelData(41, inner)), sport=434,
                       dport=saved.get("sport", 434))
    elif via == "coa":
        _, packet = encapsulate(inner, True, spec.get("outer_src", ha), run.vars["coa"], method)
        if "outer_ecn" in spec:
            from conformance.nodes.tunnel import set_ipv4_ecn

            packet = set_ipv4_ecn(packet, int(spec["outer_ecn"]))
        agent.send_ip(packet)
    else:
        _, middle = encapsulate(inner, True, ha, run.vars["hoa"], "ipip")
        _, packet = encapsulate(middle, False, ha, target, method if colocated else "ipip")
        agent.send_ip(packet)
    run.note("suite (HA)", "DUT (MN)", f"{spec.get('inner', 'data')} over the "
             f"{via.upper()} tunnel ({method})")


def step_expect_from_mn(run: CaseRun, step: Step) -> None:
    """A packet the MN under test tunnels to the HA, seen where it reaches the HA."""
    _expect_carrying(run, step, "transit", {"dst": run.vars["ha"]}, "MN", "suite (HA)",
                     "from_mn")


def step_expect_nothing_from_mn(run: CaseRun, step: Step) -> None:
    _expect_not_carrying(run, step, "transit", {"dst": run.vars["ha"]}, "MN")


def step_expect_no_ra(run: CaseRun, step: Step) -> None:
    """No Router Advertisement on the home side makes a registered prefix on-link (§3.3)."""
    timeout = run.timeout(step, "negative_timeout")
    prefix = __import__("ipaddress").IPv6Network(run.resolve(step.spec["prefix"]))
    from conformance.codec.packets import upper_layer

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
                net = __import__("ipaddress").IPv6Network((data[off + 16:off + 32],
                                                           data[off + 2]), strict=False)
                if net.overlaps(prefix):
                    return True
            off += length
        return False
    run.mark_all()
    run.session.agent_for("cn").send_ip6(__import__("conformance.codec.packets", fromlist=[
        "icmpv6_packet"]).icmpv6_packet(addr6(run.vars["cn6"]), addr6("ff02::2"), 133, 0,
                                        bytes(4), hop_limit=255))
    packet = run.wait_packet("correspondent", {"version": 6}, timeout, advertises)
    run.record(step, "no on-link advertisement", packet is None,
               f"no Router Advertisement with a prefix overlapping {prefix} within "
               f"{timeout:.1f} s", "none" if packet is None else f"an RA: {packet[:80].hex()}")


ROBUSTNESS_KINDS = ("wrong-length", "unknown-subtype", "prefix-length", "stray-bits",
                    "truncated", "repeated", "after-auth")


def _malformed(run: CaseRun, kind: str, rng: random.Random):
    """(request bytes, description, acceptable outcomes) for one malformed type-152 variant.

    Outcomes: "134" (poorly formed), "drop" (no reply), "accept" (registration accepted with
    the damaged extension ignored or its prefix rejected), "accept-prefix" (stray bits are
    ignored: the prefix is accepted).
    """
    prefix = PrefixRequest.of("2001:db8:10:1::/64")
    exts = [PrefixRequest.of("2001:db8:10:2::/64")]
    auth = AuthExtension(32, run.spi)
    tail = b""
    if kind == "wrong-length":
        length = rng.choice([n for n in range(1, 41) if n != 18])
        body = bytes((1, 64)) + prefix.prefix
        body = (body + bytes(40))[:length]
        tail = bytes((152, length)) + body
        desc, ok = f"prefix request with Length {length} instead of 18", {"134", "drop"}
    elif kind == "unknown-subtype":
        subtype = rng.choice([0] + list(range(4, 256)))
        exts.append(DSMIPUnknown(subtype, rng.randbytes(rng.randrange(0, 20))))
        desc, ok = f"DSMIPv4 extension with subtype {subtype}", {"134", "drop", "accept"}
    elif kind == "prefix-length":
        length = rng.randrange(129, 255)
        exts.append(PrefixRequest(length, prefix.prefix))
        desc, ok = f"prefix request with prefix length {length}", {"134", "drop", "accept"}
    elif kind == "stray-bits":
        exts.append(PrefixRequest(64, prefix.prefix[:8] + rng.randbytes(8)))
        desc, ok = "prefix request with bits set beyond the prefix length", {"accept-prefix"}
    elif kind == "truncated":
        cut = rng.randrange(1, 20)
        tail = (bytes((152, 18, 1, 64)) + prefix.prefix)[:cut]
        desc, ok = f"prefix request truncated to {cut} bytes", {"134", "drop"}
    elif kind == "repeated":
        times = rng.randrange(2, 6)
        exts += [PrefixRequest.of("2001:db8:10:1::/64")] * times
        desc, ok = f"the same prefix requested {times} times", {"accept-once"}
    else:  # after-auth
        desc, ok = "prefix request after the MN-HA authentication extension", \
            {"134", "drop", "accept"}
    request = RegistrationRequest(0, int(run.vars["lifetime"]), run.vars["hoa"], run.vars["ha"],
                                  run.vars["fa"], run.next_identification(), exts + [auth])
    payload = encode(request, {32: run.key})
    if kind == "after-auth":
        payload += bytes((152, 18, 1, 64)) + prefix.prefix
    if tail:
        # Damaged extensions go before the authenticator, which then covers them.
        request.extensions = exts + [tail, auth]
        payload = encode(request, {32: run.key})
    return payload, desc, ok


def step_robustness(run: CaseRun, step: Step) -> None:
    """Seeded malformed type-152 extensions; the device answers as RFC 3344 requires or
    drops, never accepts what it must not, and stays alive."""
    spec = step.spec
    count = int(spec.get("count", 10))
    kinds = spec.get("kinds") or list(ROBUSTNESS_KINDS)
    timeout = run.timeout(step, "reply_timeout")
    for i in range(count):
        kind = kinds[i % len(kinds)]
        payload, desc, allowed = _malformed(run, kind, run.rng)
        run.mark_all()
        run.session.agent_for("mn").send_udp(run.vars["hoa"], run.vars["fa"], payload)
        run.note("suite (MN)", "FA", f"variant {i + 1}: {desc}")
        wait = timeout if allowed & {"accept", "accept-prefix", "accept-once"} else \
            float(run.vars["negative_timeout"]) + 0.5
        packet = run.wait_packet("foreign", {"src": run.vars["fa"], "dport": 434}, wait)
        outcome, detail = "drop", "no reply"
        if packet is not None:
            try:
                reply = decode(run.udp_payload(packet))
            except DecodeError as err:
                run.record(step, f"variant {i + 1}: reply decodes", False, "a well-formed reply",
                           str(err), ["RFC5454-3.3-01"])
                continue
            detail = f"code {reply.code}, prefix replies " + ", ".join(
                f"{r.prefix_text}/{r.prefix_length}={r.code}" for r in reply.prefix_replies)
            if reply.code == 134:
                outcome = "134"
            elif reply.code <= 1:
                keys = [r.key for r in reply.prefix_replies]
                p1 = PrefixRequest.of("2001:db8:10:1::/64").key
                accepted_p1 = any(r.key == p1 and r.code <= 7 for r in reply.prefix_replies)
                if kind == "stray-bits":
                    outcome = "accept-prefix" if accepted_p1 else "accept"
                elif kind == "repeated":
                    outcome = "accept-once" if keys.count(p1) <= 1 else "accept-twice"
                elif kind == "prefix-length" and any(
                        128 < r.prefix_length < 255 and r.code <= 7
                        for r in reply.prefix_replies):
                    outcome = "accepted-bad-prefix"
                elif kind == "after-auth" and accepted_p1:
                    outcome = "accepted-unauthenticated-prefix"
                else:
                    outcome = "accept"
            else:
                outcome = f"code {reply.code}"
        run.record(step, f"variant {i + 1}: {desc}", outcome in allowed,
                   " or ".join(sorted(allowed)), f"{outcome} ({detail})",
                   spec.get("requirements") or step.requirements)
    # Alive afterwards: a valid registration is still answered.
    request = RegistrationRequest(0, int(run.vars["lifetime"]), run.vars["hoa"], run.vars["ha"],
                                  run.vars["fa"], run.next_identification(),
                                  [PrefixRequest.of("2001:db8:10:1::/64"),
                                   AuthExtension(32, run.spi)])
    run.mark_all()
    run.session.agent_for("mn").send_udp(run.vars["hoa"], run.vars["fa"],
                                         encode(request, {32: run.key}))
    packet = run.wait_packet("foreign", {"src": run.vars["fa"], "dport": 434}, timeout)
    alive = packet is not None and decode(run.udp_payload(packet)).code <= 1
    run.record(step, "still alive", alive, "a valid registration answered after the variants",
               "answered" if alive else "no answer", ["RFC5454-3.3-01"])


EXECUTORS = {name[5:]: fn for name, fn in globals().items() if name.startswith("step_")}


def run_case(run: CaseRun, on_step=None) -> None:
    """Execute every step; Inconclusive, LabError and SuiteError propagate to the caller."""
    dut = run.session.dut(run.case.role)
    run.vars["_log_mark"] = dut.log_mark() if dut else 0
    for step in run.case.steps:
        try:
            if on_step:
                with on_step(step):
                    EXECUTORS[step.kind](run, step)
            else:
                EXECUTORS[step.kind](run, step)
        except (KeyError, IndexError, TypeError) as exc:
            # A step that builds on what an earlier step should have observed: when the device
            # already failed a check, the case ends here with that failure; otherwise it is a
            # bug of the suite (ERROR).
            if not any(not r.ok for r in run.results):
                raise
            run.note("suite", "suite", f"steps from {step.index + 1} on not run: they need "
                     f"what the device failed to provide ({type(exc).__name__}: {exc})")
            break


__all__ = ["CaseRun", "Inconclusive", "run_case", "LabError", "message_to_dict", "Path"]
