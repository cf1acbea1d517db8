"""The run context of one test case: variables, observations, check results, and the two rules
that keep verdicts fair: attribution (judge the device on its own link) and matching (a reply
answers the request with its identification, never a stale packet)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from conformance.codec import DecodeError, decode
from conformance.codec.ntp import ntp_time
from conformance.codec.packets import checksum, parse_ipv4, text6, tunnel_link_local
from conformance.errors import DeviceDidNotProvide, NotDelivered, SuiteError
from conformance.suite.model import Step, TestCase
from conformance.suite.registry import call_check
from conformance.suite.verdict import CheckResult

# The link on which each role under test sends and receives its registration messages: a
# verdict about the device rests on what is seen there, not behind a reference peer.
DEVICE_LINK = {"ha": "transit", "mn": "foreign", "fa": "foreign"}
# The addresses the device under test sends IPv4 from, per role (case variables).
DEVICE_SOURCES = {"ha": ("ha",), "fa": ("fa",), "mn": ("hoa", "coa")}
IPV4_HEADER_RULE = "RFC791-3.1-01"


def ipv4_header_problems(packet: bytes) -> list[str]:
    """What is wrong with an IPv4 header as a receiving host checks it (RFC 791 §3.1, RFC
    1122 §3.2.1.1-3.2.1.2): version, header length, total length, header checksum."""
    ihl = (packet[0] & 0x0F) * 4
    total = int.from_bytes(packet[2:4], "big")
    problems = []
    if ihl < 20 or ihl > len(packet):
        return [f"header length {ihl} bytes"]
    if total < ihl or total > len(packet):
        problems.append(f"Total Length {total} for {len(packet)} bytes captured")
    if checksum(packet[:ihl]) != 0:
        problems.append(f"Header Checksum {packet[10:12].hex()} is wrong")
    return problems
REQUEST, REPLY = 1, 3


@dataclass
class Absent:
    """What an expect step saves when the device sent nothing: later steps that need it end
    the case with the failure already recorded."""

    reason: str


@dataclass
class TraceEntry:
    time: float
    src: str
    dst: str
    what: str
    step: int | None = None  # the index of the step that sent or saw it

    def to_dict(self) -> dict:
        return {"time": round(self.time, 6), "from": self.src, "to": self.dst, "what": self.what,
                "step": self.step}


def udp_payload(packet: bytes) -> bytes:
    ihl = (packet[0] & 15) * 4
    return packet[ihl + 8:]


def udp_source(packet: bytes) -> tuple[str, int]:
    """Source address and port of a UDP packet: where an answer to it goes."""
    ihl = (packet[0] & 15) * 4
    return parse_ipv4(packet).src, int.from_bytes(packet[ihl:ihl + 2], "big")


def identification_of(payload: bytes) -> int | None:
    """The identification of a registration request or reply, from its fixed header."""
    if len(payload) >= 24 and payload[0] == REQUEST:
        return int.from_bytes(payload[16:24], "big")
    if len(payload) >= 20 and payload[0] == REPLY:
        return int.from_bytes(payload[12:20], "big")
    return None


def answers(ident: int, kind: int):
    """Accepts a UDP packet carrying a message of `kind` for identification `ident`, matched on
    the low-order 32 bits (a 133 reply carries the HA's time in the high ones, RFC 3344
    §5.7.1)."""
    def accept(packet: bytes) -> bool:
        payload = udp_payload(packet)
        got = identification_of(payload)
        return payload[:1] == bytes((kind,)) and got is not None and \
            got & 0xFFFFFFFF == ident & 0xFFFFFFFF
    return accept


@dataclass
class CaseRun:
    session: object
    case: TestCase
    vars: dict = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)
    marks: dict = field(default_factory=dict)
    waited: float = 0.0
    seen_on_failure: list = field(default_factory=list)
    _ident: int = 0
    _header_problems: set = field(default_factory=set)
    _headers_judged: int = 0
    step: Step | None = None  # the step running: checks made while waiting belong to it
    _payloads: dict = field(default_factory=dict)
    last_seen_time: float | None = None  # capture time of the packet wait_packet last took

    def __post_init__(self):
        pixit = self.session.testbed.pixit
        # The mobility security associations come from the PIXIT of the profile that holds
        # them: the HA's (the device's, or the reference peer's), or the MN's under test.
        profile = self.session.profile_for("ha" if self.case.role != "mn" else "mn")
        mn1 = profile.mobile_nodes.get("mn1")
        if mn1 is None:
            raise SuiteError("pixit.mobile_nodes.mn1 is missing: "
                             "the suite needs the home address, SPI and key of the mobile "
                             "node it plays or peers with", file=profile.path)
        self.key, self.spi = bytes.fromhex(mn1.key), mn1.spi
        self.vars.update(self.session.addresses.as_vars())
        for name, mn in profile.mobile_nodes.items():
            self.vars.update({f"{name}_home_address": mn.home_address, f"{name}_spi": mn.spi,
                              f"{name}_key": mn.key})
        # Home addresses are the PIXIT's, by name, never an interface's position.
        self.vars["hoa"] = mn1.home_address
        if "mn2" in profile.mobile_nodes:
            self.vars["hoa2"] = profile.mobile_nodes["mn2"].home_address
        dut_profile = self.session.profile_for(self.case.role)
        # Flags the device requires on every request the suite sends (PIXIT), e.g. G.
        self.required_flags = dut_profile.registration_flags if self.case.role != "mn" else ""
        self.vars.update({"hoa_ll": text6(tunnel_link_local(self.vars["hoa"])),
                          "ha_ll": text6(tunnel_link_local(self.vars["ha"]))})
        self.vars.update({"spi": self.spi, "reply_timeout": pixit["reply_timeout"],
                          "negative_timeout": pixit["negative_timeout"],
                          "lifetime": pixit["registration_lifetime"]})
        self.vars.update({f"dut_{k}": v for k, v in dut_profile.parameters.items()})
        self.vars.update(self.case.parameters)
        self.rng = random.Random(self.case.seed if self.case.seed is not None else 5454)

    # ------------------------------------------------------------------ variables
    def error(self, step: Step | None, message: str) -> SuiteError:
        return SuiteError(message, file=self.case.file, case=self.case.id,
                          line=step.line if step else self.case.line)

    def resolve(self, value, depth: int = 0):
        """$name and ${name} from the case variables; $request.field from saved messages. A
        variable whose value names another (a table row's `$dut_max_lifetime`) resolves on."""
        if depth > 5:
            raise self.error(None, f"{value!r}: variables refer to each other in a loop")
        if isinstance(value, str):
            whole = re.fullmatch(r"\$\{?([\w.]+)\}?", value)
            if whole:
                got = self._lookup(whole.group(1))
                return self.resolve(got, depth + 1) if isinstance(got, (str, list, dict)) \
                    else got
            if "$" not in value:
                return value
            return re.sub(r"\$\{([\w.]+)\}", lambda m: str(self.resolve(
                self._lookup(m.group(1)), depth + 1)), value)
        if isinstance(value, list):
            return [self.resolve(v, depth) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v, depth) for k, v in value.items()}
        return value

    def saved(self, name: str) -> dict:
        """What an earlier step saved under `name`; DeviceDidNotProvide when the device never
        sent it, SuiteError when no step saves that name."""
        if name not in self.vars:
            raise self.error(None, f"no variable ${name}: no earlier step saves it")
        value = self.vars[name]
        if isinstance(value, Absent):
            raise DeviceDidNotProvide(f"${name}: {value.reason}")
        return value

    def _lookup(self, name: str):
        head, _, rest = name.partition(".")
        value = self.saved(head)
        for part in rest.split(".") if rest else []:
            value = value["message"] if isinstance(value, dict) and "message" in value else value
            value = getattr(value, part) if not isinstance(value, dict) else value[part]
        return value

    def last_payload(self, message) -> bytes:
        return self._payloads[id(message)]

    # ------------------------------------------------------------------ results
    def record(self, step: Step, name: str, ok: bool | None, expected: str, actual: str,
               requirements=None, detail: str = "") -> CheckResult:
        """ok None: the check could not be judged (INCONCLUSIVE), e.g. a peer dropped."""
        reqs = list(requirements or step.requirements or self.case.requirements)
        result = CheckResult(name, ok, reqs, expected, actual, step.index, detail)
        self.results.append(result)
        return result

    def evaluate(self, step: Step, subject, spec: dict) -> tuple[bool, str, str]:
        """One check on a subject the device provided. A device's malformed bytes are its
        violation (ok False, with the offset); any other exception is the suite's (ERROR)."""
        args = {k: self.resolve(v) for k, v in spec.items() if k not in ("check",
                                                                           "requirements",
                                                                           "pics")}
        try:
            return call_check(spec["check"], self, subject, args)
        except DecodeError as exc:
            return False, spec["check"], f"malformed: {exc}"
        except (DeviceDidNotProvide, SuiteError):
            raise
        except Exception as exc:
            raise self.error(step, f"check {spec['check']} could not be evaluated: "
                             f"{type(exc).__name__}: {exc}") from exc

    def applies(self, spec: dict) -> bool:
        """A check with `pics:` judges only a device whose PICS matches (where the RFC lets a
        device choose, e.g. the static or the dynamic tunnel MTU method)."""
        profile = self.session.profile_for(self.case.role)
        return all(profile.claims(p) for p in spec.get("pics") or [])

    def unobservable(self, step: Step, table: str, checks) -> None:
        """The device provides no `table`: its checks are recorded as not observable on this
        device (neither PASS nor FAIL); the case's wire checks are still judged."""
        for spec in checks or []:
            if self.applies(spec):
                result = self.record(step, spec["check"], None, spec["check"],
                                     f"not observable on this device: its profile provides "
                                     f"no state table {table!r}", spec.get("requirements"))
                result.observable = False

    def run_checks(self, step: Step, subject, checks) -> None:
        for spec in checks or []:
            if not self.applies(spec):
                continue
            ok, expected, actual = self.evaluate(step, subject, spec)
            self.record(step, spec["check"], ok, expected, actual, spec.get("requirements"))

    def timeout(self, step: Step, default_key: str) -> float:
        return float(self.resolve(step.spec.get("timeout", f"${default_key}")))

    # ------------------------------------------------------------------ observing links
    def mark_all(self) -> None:
        for link, (host, iface) in self.session.watch.items():
            self.marks[link] = self.session.agent(host).mark(iface)

    def wait_packet(self, link: str, flt: dict, timeout: float, accept=None,
                    since: int | None = None):
        """The first packet on `link` after the mark (or `since`) that matches flt and
        accept(packet); None when none arrives within `timeout`."""
        host, iface = self.session.watch[link]
        agent = self.session.agent(host)
        since = self.marks.get(link, 0) if since is None else since
        clock = self.session.clock
        deadline = clock.monotonic() + timeout
        start = clock.monotonic()
        try:
            while True:
                left = deadline - clock.monotonic()
                if left <= 0:
                    return None
                seen = agent.wait(iface, flt, left, since)
                if not seen["matched"]:
                    self.seen_on_failure = seen.get("seen", [])
                    return None
                packet = bytes.fromhex(seen["packet"])
                since = seen["seq"]
                if accept is None or accept(packet):
                    self.marks[link] = max(self.marks.get(link, 0), seen["seq"])
                    self.last_seen_time = seen.get("time")  # when it was captured
                    self._judge_ipv4_header(packet)
                    return packet
        finally:
            self.waited += clock.monotonic() - start

    def _judge_ipv4_header(self, packet: bytes) -> None:
        """Every IPv4 packet the device sent that a step takes is judged on its header (RFC
        791 §3.1): a receiving host drops a wrong checksum or length silently, so a reply with
        one would pass as delivered on a capture. Recorded once per problem in a case."""
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return
        src = ".".join(str(b) for b in packet[12:16])
        if src not in {str(self.vars.get(k)) for k in DEVICE_SOURCES[self.case.role]}:
            return
        problems = ipv4_header_problems(packet)
        self._headers_judged += 1
        for problem in problems:
            if problem not in self._header_problems and self.step is not None:
                self._header_problems.add(problem)
                self.record(self.step, "IPv4 header of the device's packet", False,
                            "version 4, IHL >= 5, Total Length within the packet, a correct "
                            "Header Checksum", f"{problem} (from {src})",
                            [IPV4_HEADER_RULE], packet[:40].hex())

    def conclude_ipv4_headers(self) -> None:
        """One passing result when every device packet the steps took had a sound header."""
        if self._headers_judged and not self._header_problems and self.step is not None:
            self.record(self.step, "IPv4 header of the device's packets", True,
                        "version 4, IHL >= 5, Total Length within the packet, a correct "
                        "Header Checksum", f"{self._headers_judged} packet(s) well-formed",
                        [IPV4_HEADER_RULE])

    def device_link(self) -> str:
        return DEVICE_LINK[self.case.role]

    def through_fa_peer(self) -> bool:
        """Whether the reference FA (a peer, not the device) sits between the suite and the
        device for registration messages."""
        return self.case.role in ("ha", "mn") and self.case.topology == "fa"

    def reply_from_device(self, sent: dict, timeout: float):
        """The device's reply to the request saved as `sent`, seen on the device's own link and
        matched by identification; None when it sent none."""
        ident = sent["identification"]
        if self.case.role == "ha":
            flt = {"src": self.vars["ha"], "ip_proto": 17, "sport": 434}
        else:
            flt = {"src": self.vars["fa"], "ip_proto": 17, "dport": 434}
        return self.wait_packet(self.device_link(), flt, timeout, answers(ident, REPLY),
                                since=sent["marks"].get(self.device_link()))

    def delivered_to_ha(self, sent: dict) -> bool:
        """Whether a request the suite sent through the reference FA reached the HA's link."""
        return self.wait_packet("transit", {"dst": self.vars["ha"], "ip_proto": 17,
                                            "dport": 434}, 0.3,
                                answers(sent["identification"], REQUEST),
                                since=sent["marks"].get("transit")) is not None

    def require_delivery(self, sent: dict, what: str) -> None:
        """Through the reference FA, a request that never reached the HA says nothing about
        the HA: raise NotDelivered."""
        if self.case.role == "ha" and self.through_fa_peer() and not self.delivered_to_ha(sent):
            raise NotDelivered(f"{what}: the request never reached the HA's link; the reference "
                               "FA did not relay it, so nothing can be said about the HA")

    def note(self, src: str, dst: str, what: str) -> None:
        step = getattr(self, "step", None)
        self.trace.append(TraceEntry(self.session.clock.time(), src, dst, what,
                                     step.index if step is not None else None))

    def decode_saved(self, step: Step, packet: bytes, name: str):
        """Decode a registration message the device sent and save it; a malformed one is the
        device's violation (FAIL with the offset), saved as Absent for later steps."""
        payload = udp_payload(packet)
        try:
            message = decode(payload)
        except DecodeError as err:
            self.record(step, "message decodes", False, "a well-formed message",
                        f"{err} | hex {payload.hex()}")
            self.vars[name] = Absent(f"the message in step {step.index + 1} was malformed")
            return None
        self._payloads[id(message)] = payload
        src, sport = udp_source(packet)
        self.vars[name] = {"message": message, "payload": payload, "src": src, "sport": sport,
                           "dst": parse_ipv4(packet).dst,
                           "identification": message.identification,
                           "marks": dict(self.marks)}
        return message

    def next_identification(self) -> int:
        ident = ntp_time(self.session.clock.time())
        self._ident = max(ident, self._ident + 1)
        return self._ident

    def seen(self) -> str:
        seen = self.seen_on_failure[-8:]
        return "seen on the link instead: " + ("; ".join(
            f"{s.get('src')} > {s.get('dst')} proto {s.get('ip_proto')}"
            + (f" port {s.get('dport')}" if s.get("dport") else "") for s in seen) or "nothing")
