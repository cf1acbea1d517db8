"""Registration steps: the suite as MN sends requests and judges the device's replies (HA and
FA under test), or as HA receives the requests of an MN under test and answers them."""

from __future__ import annotations

from typing import Any

from conformance.codec import (
    AuthExtension, DecodeError, PrefixRequest, RegistrationReply, RegistrationRequest, decode,
    encode,
)
from conformance.codec.ntp import ntp_time
from conformance.codec.packets import parse_ipv4
from conformance.errors import DeviceDidNotProvide, Inconclusive, NotDelivered
from conformance.suite.model import Step
from conformance.suite.registry import step
from conformance.suite.steps.context import (
    REPLY, REQUEST, Absent, CaseRun, answers, udp_payload, udp_source,
)
from conformance.suite.steps.messages import (
    FRAMING_VARIANTS, ROBUSTNESS_KINDS, extensions, framing_variant, malformed, mn_request,
    well_formed,
)

# A valid, correctly signed registration from a configured MN must be accepted (RFC 3344
# §3.8.2); refusing one is this requirement's FAIL, whatever case needed the registration.
ACCEPTANCE = "RFC3344-3.8.2-02"
LAST_SENT = "_sent"  # what the latest register step sent, answered by default
CLOCK_TOLERANCE = 7  # seconds: a 133 from an HA whose clock is this close to ours is its fault


@step("register", subject=None, fields=dict[str, Any], extensions=list, save_as=str)
def register(run: CaseRun, step: Step) -> None:
    spec = step.spec
    fields = run.resolve(spec.get("fields") or {})
    colocated = run.case.topology == "colocated"
    items = spec.get("extensions") or []
    exts = extensions(run, items)
    spi = int(fields.get("spi", run.spi))
    key = bytes.fromhex(str(fields["key"])) if "key" in fields else run.key
    for ext in exts:
        if isinstance(ext, AuthExtension) and "spi" in fields:
            ext.spi = spi
    signed = fields.get("authentication", "mn-ha")
    if signed not in ("mn-ha", "none"):
        raise run.error(step, f"fields: authentication: {signed!r}; expected mn-ha or none")
    if signed == "mn-ha" and not any(isinstance(e, AuthExtension) for e in exts):
        exts.append(AuthExtension(32, spi))  # RFC 3344 §3.2: last, over all before it
    flags = fields.get("flags", "D" if colocated else "")
    ident = int(fields["identification"]) if "identification" in fields else \
        run.next_identification()
    request = RegistrationRequest(
        (RegistrationRequest.flags_of(flags) if isinstance(flags, str) else int(flags)) |
        RegistrationRequest.flags_of(run.required_flags),
        int(fields.get("lifetime", run.vars["lifetime"])),
        fields.get("home_address", run.vars["hoa"]), fields.get("home_agent", run.vars["ha"]),
        fields.get("care_of_address", run.vars["coa"] if colocated else run.vars["fa"]),
        ident, exts)
    payload = encode(request, {32: key})
    src = request.care_of_address if colocated else request.home_address
    dst = run.vars["ha"] if colocated else run.vars["fa"]
    run.mark_all()
    run.session.agent_for("mn").send_udp(src, dst, payload)
    try:
        message = decode(payload)  # None when the case damages the request on purpose
        run._payloads[id(message)] = payload
    except DecodeError:
        message = None
    sent = {"message": message, "payload": payload, "src": src, "identification": ident,
            "marks": dict(run.marks), "valid": well_formed(items, fields)}
    run.vars[spec.get("save_as", "request")] = sent
    run.vars[LAST_SENT] = sent
    run.note("suite (MN)", "DUT (HA)" if colocated else "FA",
             f"Registration Request lifetime {request.lifetime}, "
             f"{len(request.prefix_requests)} prefix request(s), {len(payload)} bytes")


def _alternatives(run: CaseRun, step: Step, message, spec) -> None:
    """`accept:` the acceptable outcomes the RFC allows; the step passes when one holds."""
    outcomes = []
    for alt in spec["accept"]:
        if alt.get("nothing"):
            ok = message is None
            outcomes.append((ok, "no reply (silent discard)" if ok else "a reply arrived"))
            continue
        if message is None:
            outcomes.append((False, "no reply"))
            continue
        failed = []
        for check in alt.get("checks") or []:
            ok, expected, actual = run.evaluate(step, message, check)
            if not ok:
                failed.append(f"{check['check']}: expected {expected}, got {actual}")
        outcomes.append((not failed, "; ".join(failed) or "all checks hold"))
    ok = any(o for o, _ in outcomes)
    summary = " | ".join(f"outcome {i + 1}: {text}" for i, (_, text) in enumerate(outcomes))
    run.record(step, "acceptable outcome", ok, f"one of {len(outcomes)} acceptable outcomes",
               summary)


def refused_valid_registration(run: CaseRun, step: Step, sent: dict, message) -> None:
    """A precondition registration was refused: when the suite built it valid and correctly
    signed, the refusal is the device's violation (FAIL naming the code), not an excuse."""
    where = f"step {step.index + 1}: registration rejected with code {message.code}"
    if not sent.get("valid") or run.case.role != "ha":
        raise Inconclusive(f"{where}; the case needs it accepted")
    if message.code == 133:
        skew = abs((message.identification >> 32) - (ntp_time(run.session.clock.time()) >> 32))
        if skew > CLOCK_TOLERANCE:
            raise Inconclusive(f"{where}: the device's clock is {skew} s off this machine's; "
                               "synchronise the clocks (RFC 3344 §5.7.1 timestamps)")
    run.record(step, "valid registration accepted", False,
               "a valid, correctly signed registration from a configured mobile node accepted "
               "(code 0 or 1)", f"code {message.code}", [ACCEPTANCE])
    raise DeviceDidNotProvide(f"{where}; a valid registration must be accepted")


@step("expect_reply", subject="reply", checks=list, accept=list)
def expect_reply(run: CaseRun, step: Step) -> None:
    """The device's reply to the last request, seen on its own link and matched by
    identification."""
    spec = step.spec
    sent = run.saved(LAST_SENT)
    timeout = run.timeout(step, "reply_timeout")
    packet = run.reply_from_device(sent, timeout)
    if packet is None:
        run.require_delivery(sent, f"step {step.index + 1}")
        run.vars["reply"] = Absent(f"no Registration Reply in step {step.index + 1}")
        if spec.get("accept"):
            return _alternatives(run, step, None, spec)
        if step.precondition:
            raise Inconclusive(f"step {step.index + 1}: no Registration Reply within "
                               f"{timeout:.1f} s")
        run.record(step, "reply arrives", False, f"a Registration Reply within {timeout:.1f} s",
                   "nothing", detail=run.seen())
        return
    message = run.decode_saved(step, packet, "reply")
    if message is None:
        return
    run.note("DUT (HA)" if run.case.role == "ha" else "DUT (FA)", "suite (MN)",
             f"Registration Reply code {message.code}, "
             f"{len(message.prefix_replies)} prefix reply(ies)")
    if spec.get("accept"):
        return _alternatives(run, step, message, spec)
    if step.precondition and message.code > 1:
        refused_valid_registration(run, step, sent, message)
    run.run_checks(step, message, spec.get("checks"))


@step("robustness", subject=None, count=int, variant=str)
def robustness(run: CaseRun, step: Step) -> None:
    """Seeded malformed type-152 extensions (or, with `variant:`, one named damage to the
    message's framing, messages.FRAMING_VARIANTS); the device answers as RFC 3344 requires or
    drops, never accepts what it must not, and stays alive. Each variant is judged only on the
    reply that answers it (by identification), on the device's own link."""
    variant = run.resolve(step.spec.get("variant", ""))
    if variant and variant not in FRAMING_VARIANTS:
        raise run.error(step, f"variant: {variant!r}; expected one of {sorted(FRAMING_VARIANTS)}")
    count = 1 if variant else int(step.spec.get("count", 10))
    timeout = run.timeout(step, "reply_timeout")
    colocated = run.case.topology == "colocated"
    src = run.vars["coa"] if colocated else run.vars["hoa"]
    dst = run.vars["ha"] if colocated else run.vars["fa"]
    for i in range(count):
        kind = variant or ROBUSTNESS_KINDS[i % len(ROBUSTNESS_KINDS)]
        payload, ident, desc, allowed = framing_variant(run, variant) if variant else \
            malformed(run, kind, run.rng)
        run.mark_all()
        run.session.agent_for("mn").send_udp(src, dst, payload)
        sent = {"identification": ident, "marks": dict(run.marks)}
        run.note("suite (MN)", "DUT (HA)" if colocated else "FA", f"variant {i + 1}: {desc}")
        wait = timeout if allowed & {"accept", "accept-prefix", "accept-once", "code 131"} else \
            float(run.vars["negative_timeout"]) + 0.5
        packet = run.reply_from_device(sent, wait)
        name = f"variant {i + 1}: {desc}"
        if packet is None:
            try:
                run.require_delivery(sent, name)
            except NotDelivered as exc:
                run.record(step, name, None, " or ".join(sorted(allowed)), str(exc))
                continue
        outcome, detail = _outcome(kind, packet)
        if outcome is None:
            run.record(step, f"variant {i + 1}: reply decodes", False, "a well-formed reply",
                       detail, ["RFC5454-3.3-01"])
            continue
        denied = outcome == "134" or outcome.startswith("code ")
        run.record(step, name, outcome in allowed or ("denied" in allowed and denied),
                   " or ".join(sorted(allowed)), f"{outcome} ({detail})")
    _still_alive(run, step, timeout, src, dst)


def _outcome(kind: str, packet):
    if packet is None:
        return "drop", "no reply"
    try:
        reply = decode(udp_payload(packet))
    except DecodeError as err:
        return None, str(err)
    detail = f"code {reply.code}, prefix replies " + ", ".join(
        f"{r.prefix_text}/{r.prefix_length}={r.code}" for r in reply.prefix_replies)
    if reply.code == 134:
        return "134", detail
    if reply.code > 1:
        return f"code {reply.code}", detail
    p1 = PrefixRequest.of("2001:db8:10:1::/64").key
    accepted_p1 = any(r.key == p1 and r.code <= 7 for r in reply.prefix_replies)
    if kind == "stray-bits":
        return ("accept-prefix" if accepted_p1 else "accept"), detail
    if kind == "repeated":
        keys = [r.key for r in reply.prefix_replies]
        return ("accept-once" if keys.count(p1) <= 1 else "accept-twice"), detail
    if kind == "prefix-length" and any(128 < r.prefix_length < 255 and r.code <= 7
                                       for r in reply.prefix_replies):
        return "accepted-bad-prefix", detail
    if kind == "after-auth" and accepted_p1:
        return "accepted-unauthenticated-prefix", detail
    return "accept", detail


def _still_alive(run: CaseRun, step: Step, timeout: float, src: str, dst: str) -> None:
    ident = run.next_identification()
    request = mn_request(run, ident, [PrefixRequest.of("2001:db8:10:1::/64"),
                                      AuthExtension(32, run.spi)])
    run.mark_all()
    run.session.agent_for("mn").send_udp(src, dst, encode(request, {32: run.key}))
    sent = {"identification": ident, "marks": dict(run.marks)}
    packet = run.reply_from_device(sent, timeout)
    if packet is None:
        try:
            run.require_delivery(sent, "still alive")
        except NotDelivered as exc:
            run.record(step, "still alive", None, "a valid registration answered after the "
                       "variants", str(exc), ["RFC5454-3.3-01"])
            return
    alive = packet is not None and _outcome("", packet)[0] == "accept"
    run.record(step, "still alive", alive, "a valid registration accepted after the variants",
               "accepted" if alive else ("no answer" if packet is None
                                         else _outcome("", packet)[1]), ["RFC5454-3.3-01"])


# ---------------------------------------------------------------------- the suite as HA
# On the MN's own link, registration requests come only from the MN under test: to the FA,
# or straight to the HA from a co-located care-of address.
MN_REQUEST = {"ip_proto": 17, "dport": 434}


def _is_request(packet: bytes) -> bool:
    return udp_payload(packet)[:1] == bytes((REQUEST,))


@step("expect_request", subject="request", checks=list, save_as=str)
def expect_request(run: CaseRun, step: Step) -> None:
    """The MN under test's request, judged as the MN sent it on its own link; through the
    reference FA, the relayed copy is what the suite (as HA) answers. `save_as` keeps it (and
    when it was captured) for later checks."""
    spec = step.spec
    timeout = run.timeout(step, "reply_timeout")
    packet = run.wait_packet("foreign", MN_REQUEST, timeout, _is_request)
    if packet is None:
        run.vars["request"] = Absent(f"no Registration Request in step {step.index + 1}")
        if step.precondition:
            raise Inconclusive(f"the device sent no Registration Request within {timeout:.1f} s")
        run.record(step, "request arrives", False, f"a Registration Request within "
                   f"{timeout:.1f} s", "nothing", detail=run.seen())
        return
    message = run.decode_saved(step, packet, "request")
    if message is None:
        return
    via_fa = parse_ipv4(packet).dst != run.vars["ha"]
    run.vars["request"].update(via_fa=via_fa, at=run.last_seen_time)
    if spec.get("save_as"):
        run.vars[spec["save_as"]] = run.vars["request"]
    run.note("DUT (MN)", "FA" if via_fa else "suite (HA)",
             f"Registration Request lifetime {message.lifetime}, "
             f"{len(message.prefix_requests)} prefix request(s)")
    run.run_checks(step, message, spec.get("checks"))
    if via_fa:
        relayed = run.wait_packet("transit", {"dst": run.vars["ha"], "ip_proto": 17,
                                              "dport": 434}, timeout,
                                  answers(message.identification, REQUEST))
        if relayed is None:
            raise NotDelivered("the reference FA did not relay the MN's request to the suite's "
                               "HA; later steps cannot judge the MN")
        src, sport = udp_source(relayed)
        run.vars["request"].update(src=src, sport=sport)


@step("expect_relayed", subject="request", checks=list, save_as=str, or_denied=list[int])
def expect_relayed(run: CaseRun, step: Step) -> None:
    """The FA under test relays the suite's request to the suite's HA (on the transit link).
    With `or_denied`, the FA may instead deny the MN itself with one of those codes (RFC 3344
    §3.7.2 lets it refuse what it cannot serve): either outcome passes, nothing else does."""
    spec = step.spec
    timeout = run.timeout(step, "reply_timeout")
    sent = run.saved(LAST_SENT)
    packet = run.wait_packet("transit", {"dst": run.vars["ha"], "ip_proto": 17, "dport": 434},
                             timeout, answers(sent["identification"], REQUEST))
    name = spec.get("save_as", "request")
    if packet is None and spec.get("or_denied"):
        run.vars[name] = Absent(f"the FA denied the request in step {step.index + 1}")
        _denied_by_fa(run, step, sent, [int(c) for c in run.resolve(spec["or_denied"])])
        return
    if packet is None:
        run.vars[name] = Absent(f"nothing relayed in step {step.index + 1}")
        if step.precondition:
            raise Inconclusive(f"the FA relayed no Registration Request within {timeout:.1f} s")
        run.record(step, "request relayed", False, f"the request relayed within {timeout:.1f} s",
                   "nothing", detail=run.seen())
        return
    message = run.decode_saved(step, packet, name)
    if message is None:
        return
    run.note("DUT (FA)", "suite (HA)", f"relayed Registration Request, {len(message.extensions)}"
             " extension(s)")
    run.run_checks(step, message, spec.get("checks"))


def _denied_by_fa(run: CaseRun, step: Step, sent: dict, codes: list[int]) -> None:
    """The FA under test answered the MN itself instead of relaying: with one of `codes`."""
    packet = run.reply_from_device(sent, 0.3)  # already there: the relay wait came first
    if packet is None:
        run.record(step, "relayed or denied", False, f"the request relayed to the HA, or the "
                   f"MN denied with code {' or '.join(map(str, codes))}", "neither",
                   detail=run.seen())
        return
    message = run.decode_saved(step, packet, "reply")
    if message is None:
        return
    run.note("DUT (FA)", "suite (MN)", f"Registration Reply code {message.code} (denied)")
    run.record(step, "relayed or denied", message.code in codes, f"the request relayed to "
               f"the HA, or the MN denied with code {' or '.join(map(str, codes))}",
               f"denied with code {message.code}")


@step("expect_no_request", subject=None)
def expect_no_request(run: CaseRun, step: Step) -> None:
    timeout = run.timeout(step, "negative_timeout")
    link = "transit" if run.case.role == "fa" else "foreign"
    flt = {"dst": run.vars["ha"], "ip_proto": 17, "dport": 434} if link == "transit" else \
        MN_REQUEST
    packet = run.wait_packet(link, flt, timeout, _is_request)
    run.record(step, "no request", packet is None, f"no Registration Request within "
               f"{timeout:.1f} s", "nothing" if packet is None else "a request")


@step("reply", subject=None, fields=dict[str, Any], extensions=list, fa_ha_auth=str)
def reply(run: CaseRun, step: Step) -> None:
    """The suite as HA answers a request it received (from the MN under test, or relayed by
    the FA under test)."""
    spec = step.spec
    saved = run.saved("request")
    request = saved["message"]
    fields = run.resolve(spec.get("fields") or {})
    exts = extensions(run, run.resolve(spec.get("extensions")) or [])
    keys = {32: bytes.fromhex(fields["key"]) if "key" in fields else run.key}
    exts.append(AuthExtension(32, run.spi))
    # An FA under test that shares a security association with its HA (its PICS says so) is
    # answered as that HA would: with a valid FA-HA authenticator unless the case says otherwise.
    fa_ha = spec.get("fa_ha_auth", "valid" if run.case.role == "fa" and run.session.profile_for(
        "fa").claims("fa-ha-authentication") else None)
    if fa_ha is not None:
        # As an HA with a security association with the FA under test (RFC 3344 §3.5.4);
        # "invalid" signs with a key the FA does not hold.
        if fa_ha not in ("valid", "invalid"):
            raise run.error(step, f"fa_ha_auth: {fa_ha!r}; expected valid or invalid")
        exts.append(AuthExtension(34, int(run.resolve("$dut_fa_ha_spi"))))
        key = bytes.fromhex(str(run.resolve("$dut_fa_ha_key")))
        keys[34] = key if fa_ha == "valid" else bytes(b ^ 0xFF for b in key)
    ident = int(fields.get("identification", request.identification))
    if "ha_clock_offset" in fields:
        # A 133 as an HA whose clock is this many seconds off: its time in the high bits.
        ha_time = (ntp_time(run.session.clock.time()) >> 32) + int(fields["ha_clock_offset"])
        ident = ha_time << 32 | (request.identification & 0xFFFFFFFF)
    message = RegistrationReply(int(fields.get("code", 0)),
                                int(fields.get("lifetime", request.lifetime)),
                                request.home_address, run.vars["ha"], ident, exts)
    payload = encode(message, keys)
    if "truncate" in fields:  # a reply cut short on purpose (robustness)
        payload = payload[:int(fields["truncate"])]
    run.mark_all()
    run.session.agent_for("ha").send_udp(run.vars["ha"], saved["src"], payload,
                                         sport=434, dport=saved.get("sport", 434))
    run.note("suite (HA)", "DUT (FA)" if run.case.role == "fa" else "DUT (MN)",
             f"Registration Reply code {message.code}, "
             f"{len(message.prefix_replies)} prefix reply(ies)")
    if run.case.role == "mn" and saved.get("via_fa"):
        relayed = run.wait_packet("foreign", {"src": run.vars["fa"], "ip_proto": 17},
                                  run.timeout(step, "reply_timeout"), answers(ident, REPLY))
        if relayed is None:
            raise NotDelivered("the reference FA did not relay the suite's reply to the MN; "
                               "what the MN does next cannot be judged")


__all__ = ["register", "expect_reply", "robustness", "expect_request", "expect_relayed",
           "expect_no_request", "reply"]
