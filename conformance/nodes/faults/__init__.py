"""Named faults: each breaks one rule of a reference engine, so the suite's self-test can show
that the case mapped to that rule fails against it (`dsmip4 selftest`, issue 6).

The faults live here, outside the protocol logic: a faulty engine is the reference engine
with its inputs or outputs rewritten around it, so the engines read as the RFC. A node's
configuration names its faults (`faults: [fa.alter-relayed-reply]`); `engine_for` builds
the engine with them.
"""

from __future__ import annotations

from conformance.nodes.fa import ForeignAgent
from conformance.nodes.faults.fa import FA_FAULTS, FaultyForeignAgent
from conformance.nodes.faults.ha import HA_FAULTS, FaultyHomeAgent
from conformance.nodes.faults.mn import MN_FAULTS, FaultyMobileNode
from conformance.nodes.ha import HomeAgent
from conformance.nodes.mn import MobileNode


# ---------------------------------------------------------------------- adapters
# Two faults live in the socket and TUN adapter, which asks these.
def tun_device_mtu(engine_config, mtu: int) -> int:
    """The MTU the adapter gives the MN's tunnel device (too large with mn.tun-mtu-1500)."""
    return 1500 if "mn.tun-mtu-1500" in engine_config.faults else mtu


def answers_router_solicitations(engine_config) -> bool:
    """ha.advertise-prefixes: the HA's adapter answers a Router Solicitation on the home
    link with the registered prefixes."""
    return "ha.advertise-prefixes" in engine_config.faults


def engine_for(role: str, config):
    """The reference engine of `role` for its engine configuration, with the named faults
    the configuration lists."""
    faults = frozenset(config.faults)
    if role == "fa":
        return FaultyForeignAgent(config, faults) if faults else ForeignAgent(config)
    if role == "ha":
        return FaultyHomeAgent(config, faults) if faults else HomeAgent(config)
    return FaultyMobileNode(config, faults) if faults else MobileNode(config)


__all__ = ["FA_FAULTS", "HA_FAULTS", "MN_FAULTS", "FaultyForeignAgent", "FaultyHomeAgent",
           "FaultyMobileNode", "answers_router_solicitations", "engine_for", "tun_device_mtu"]
