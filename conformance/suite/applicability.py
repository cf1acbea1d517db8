"""Whether a device's profile can run a case, and if not, what it is missing: a PICS item it
does not claim, a mobile node its PIXIT does not name, an action, a setting or a log pattern
the case's steps need. A case a profile cannot run is NOT-APPLICABLE with that reason, never
an ERROR. A state table the device lacks does not stop a case: the checks on it are not
observable on this device, and the rest are judged (unobservable())."""

from __future__ import annotations

import json
import re

from conformance.lab.profile import Profile
from conformance.suite.model import TestCase

_MOBILE_NODE = re.compile(r"\$\{?(mn\d+)_")


def _text(case: TestCase) -> str:
    return json.dumps([s.spec for s in case.steps] + [case.parameters], default=str)


def mobile_nodes_used(case: TestCase) -> set[str]:
    """The PIXIT mobile nodes a case names ($mn2_spi, $hoa2 ...); mn1 is every case's."""
    text = _text(case)
    used = set(_MOBILE_NODE.findall(text)) | {"mn1"}
    if re.search(r"\$\{?hoa2\b", text):
        used.add("mn2")
    return used


def tables_used(case: TestCase) -> set[str]:
    out = set()
    for s in case.steps:
        if s.kind == "state":
            out.add(s.spec.get("table", "bindings"))
        elif s.kind == "wait":
            out.add(s.spec.get("state", "bindings"))
    return out


def unobservable(case: TestCase, dut: Profile | None) -> list[str]:
    """The state tables a case reads that the device does not provide: their checks are
    reported as not observable on this device; the case still runs."""
    return [] if dut is None else sorted(tables_used(case) - set(dut.state))


def missing(case: TestCase, dut: Profile | None, credentials: Profile) -> list[str]:
    """What `dut` (None: the reference) and the profile holding the mobility security
    associations lack for `case`, each as a reason a vendor can act on; [] when it can run."""
    reasons = []
    if dut is not None:
        absent = [p for p in case.pics if not dut.claims(p)]
        if absent:
            reasons.append(f"the device's PICS does not claim {', '.join(absent)}")
    nodes = sorted(mobile_nodes_used(case) - set(credentials.mobile_nodes))
    if nodes:
        reasons.append(f"the PIXIT of {credentials.name} names no mobile node "
                       f"{', '.join(nodes)} (pixit.mobile_nodes)")
    if dut is None:
        return reasons
    kinds = {s.kind for s in case.steps}
    if "log" in kinds and not dut.security_exception:
        reasons.append("the profile declares no security-exception log pattern "
                       "(logs.security_exception)")
    for s in case.steps:
        if s.kind != "dut_action":
            continue
        action = s.spec.get("action")
        if not dut.provides(action):
            reasons.append(f"the profile maps no action {action} (actions.{action})")
        unused = sorted(k for k in s.spec.get("params") or {} if not _uses(dut, k))
        if unused:
            reasons.append(f"the case sets the device's {', '.join(unused)}, which the "
                           f"profile's configuration template does not use "
                           f"({', '.join('$' + k for k in unused)})")
    return sorted(set(reasons), key=reasons.index)


def _uses(dut: Profile, name: str) -> bool:
    """Whether the profile's configuration or actions take the parameter `name`."""
    texts = [dut.config_template or ""] + [json.dumps(a.model_dump()) for a in
                                           dut.actions.values()]
    return any(re.search(rf"\$\{{?{re.escape(name)}\b", t) for t in texts)
