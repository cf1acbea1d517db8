"""A run's lab session: SSH hosts, agents, the device under test and its reference peers."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from conformance.codec import AuthExtension, RegistrationRequest, encode
from conformance.codec.ntp import ntp_time
from conformance.errors import SuiteError
from conformance.lab.agent_client import Agent
from conformance.lab.device import Device, device_for
from conformance.lab.netns import LabError
from conformance.lab.profile import Profile, reference_profile
from conformance.lab.ssh import SSHHost
from conformance.lab.testbed import Testbed
from conformance.waiting import SYSTEM_CLOCK

# Which reference peers a role under test needs; the suite itself plays the other roles.
PEERS = {"ha": ["fa"], "mn": ["fa"], "fa": []}
# Interfaces the suite listens and captures on, by link: (host role, link name).
WATCH = [("mn", "foreign"), ("ha", "transit"), ("cn", "correspondent")]




@dataclass
class Addresses:
    ha: str
    fa: str
    hoa: str
    coa: str
    cn6: str
    ha_transit: str | None = None
    fa_transit: str | None = None
    hoa2: str | None = None
    ha6: str | None = None

    def as_vars(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def addresses_from(testbed: Testbed) -> Addresses:
    """The addresses cases name, by default from the hosts' interfaces (the MN host's first
    address on the foreign link is the home address, its second the co-located CoA); the
    testbed's `addresses:` names any of them outright, and wins."""
    derived = _derived_addresses(testbed)
    return Addresses(**{**derived.__dict__, **testbed.addresses})


def _derived_addresses(testbed: Testbed) -> Addresses:
    def iface_on(role, link):
        host = testbed.host_for(role)
        for iface in host.interfaces.values():
            if iface.link == link:
                return iface
        raise SuiteError(f"testbed {testbed.path}: host {host.name} has no interface on "
                         f"link {link!r}")
    mn = iface_on("mn", "foreign").ipv4()
    ha_host = testbed.host_for("ha")
    ha_addr = next((i.ipv4()[0] for n, i in ha_host.interfaces.items()
                    if n == "lo" and i.ipv4()), None)
    return Addresses(ha=ha_addr or iface_on("ha", "transit").ipv4()[0],
                     fa=iface_on("fa", "foreign").ipv4()[0], hoa=mn[0],
                     coa=mn[1] if len(mn) > 1 else mn[0],
                     cn6=iface_on("cn", "correspondent").ipv6()[0],
                     ha_transit=iface_on("ha", "transit").ipv4()[0],
                     fa_transit=iface_on("fa", "transit").ipv4()[0],
                     hoa2=mn[2] if len(mn) > 2 else None,
                     ha6=(iface_on("ha", "correspondent").ipv6() or [None])[0])


@dataclass
class Session:
    testbed: Testbed
    dut_profiles: dict[str, Profile]
    out_dir: Path
    hosts: dict[str, SSHHost] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)  # running, by role
    watch: dict[str, tuple[str, str]] = field(default_factory=dict)  # link -> (host, iface)
    active_role: str | None = None
    restarted: dict | None = None  # the crash found (and restarted) before the current case
    protocol_wait: float = 0.0
    clock: object = SYSTEM_CLOCK

    def start(self) -> None:
        for name, spec in self.testbed.hosts.items():
            self.hosts[name] = SSHHost(spec, self.testbed.pixit["ssh_timeout"]).connect()
        for name, host in self.hosts.items():
            health = host.health()
            if not health["ok"]:
                raise LabError(f"lab host {name} is not usable: {', '.join(health['problems'])}")
        self.watch_links()

    def watch_links(self) -> None:
        """Where the suite listens: one interface per link, on the hosts of WATCH."""
        self.addresses = addresses_from(self.testbed)
        for role, link in WATCH:
            host = self.testbed.host_for(role)
            iface = next(n for n, i in host.interfaces.items() if i.link == link)
            self.watch[link] = (host.name, iface)
        for link, (host, iface) in self.watch.items():
            self.agent(host).listen(iface)

    def agent(self, host: str) -> Agent:
        if host not in self.agents:
            self.agents[host] = Agent(self.hosts[host]).start()
        return self.agents[host]

    def agent_for(self, role: str) -> Agent:
        return self.agent(self.testbed.host_for(role).name)

    def profile_for(self, role: str) -> Profile:
        if role in self.dut_profiles:
            return self.dut_profiles[role]
        return reference_profile(role)

    def device(self, role: str, params: dict | None = None) -> Device:
        profile = self.profile_for(role)
        host = self.hosts[self.testbed.host_for(profile.host).name]
        device = device_for(profile, host, params)
        if role == "ha":
            device.registration_probe = self.registration_probe
        return device

    def registration_probe(self) -> bool:
        """Whether the HA answers a registration: mn1 deregisters from its co-located CoA
        (lifetime 0, so no binding is left) and any reply, whatever its code, will do."""
        profile = self.profile_for("ha")
        mn = profile.mobile_nodes.get("mn1")
        if mn is None:
            raise SuiteError("health: {registration: true} needs pixit.mobile_nodes.mn1",
                             file=profile.path)
        a = self.addresses
        flags = RegistrationRequest.flags_of("D" + profile.registration_flags.replace("D", ""))
        request = RegistrationRequest(flags, 0, mn.home_address, a.ha, a.coa,
                                      ntp_time(time.time()), [AuthExtension(32, mn.spi)])
        host, iface = self.watch["foreign"]
        agent = self.agent(host)
        since = agent.mark(iface)
        agent.send_udp(a.coa, a.ha, encode(request, {32: bytes.fromhex(mn.key)}))
        seen = agent.wait(iface, {"src": a.ha, "ip_proto": 17, "sport": 434}, 1.0, since)
        return bool(seen["matched"])

    def prepare(self, role: str) -> None:
        """Run exactly what the role under test needs: its DUT (unless it is an MN, which each
        case starts itself) and the reference peers."""
        if self.active_role == role:
            return
        for dev in list(self.devices.values()):
            dev.stop()
        self.devices.clear()
        self.quiet_suite_hosts(role)
        wanted = PEERS[role] + ([] if role == "mn" else [role])
        for r in wanted:
            dev = self.device(r)
            dev.install()
            dev.configure()
            dev.start()
            self.devices[r] = dev
        self.active_role = role

    def quiet_suite_hosts(self, role: str) -> None:
        """The suite's hosts handle the roles they play in user space: their kernels must not
        answer the device with ICMP errors (a correct FA may reject on one, RFC 3344 §3.7.2).
        The host of the device under test is left as it is: its kernel is part of the device."""
        dut_host = self.testbed.host_for(role).name
        for name in self.hosts:
            if name != dut_host:
                self.agent(name).quiet(True)
            elif name in self.agents:
                self.agents[name].quiet(False)

    def dut(self, role: str) -> Device | None:
        return self.devices.get(role)

    def ready_for(self, role: str) -> Device | None:
        """The device under test, alive and reset, before a case: an MN under test is started
        by each case itself (its attachment is part of the case), so none runs between cases."""
        self.prepare(role)
        if role == "mn" and "mn" in self.devices:
            self.devices.pop("mn").stop()
        dut = self.devices.get(role)
        self.restarted = None
        if dut is not None:
            # A device that died between cases is restarted and the case still runs: the
            # crash is evidence, not this case's verdict (a failed restart is an ERROR).
            self.restarted = dut.ensure_running()
            dut.reset()
        return dut

    def restart(self, role: str, params: dict[str, str]) -> Device:
        """(Re)start the device under test with parameters for its configuration template."""
        dut = self.device(role)
        dut.install()
        dut.configure(**params)
        old = self.devices.pop(role, None)
        if old is not None:
            old.stop()
        dut.start()
        self.devices[role] = dut
        return dut

    def act(self, role: str, action: str, args: dict[str, str],
            params: dict[str, str]) -> bool:
        """Have the device under test do `action` as its profile maps it: configuration
        parameters (the case's and the action's) then a restart, then its commands. True
        when the device was (re)started."""
        profile = self.profile_for(role)
        spec = profile.actions.get(action)
        if spec is None and action != "restart":
            raise SuiteError(f"profile {profile.name} maps no action {action!r} (actions:)")
        running = self.devices.get(role)
        settings = dict(params)
        if spec is not None:
            device = running or self.device(role)  # its $python, $workdir
            settings.update({k: device.render_with(str(v), args) for k, v in spec.params.items()})
        restart = running is None or action == "restart" or bool(settings) or spec.restart
        dut = self.restart(role, settings) if restart else running
        if spec is not None:
            if spec.config:
                dut.configure_lines([dut.render_with(line, args) for line in spec.config])
            for command in spec.commands:
                dut.command(dut.render_with(command, args))
        return restart

    def close(self) -> None:
        for dev in self.devices.values():
            try:
                dev.stop()
            except LabError:
                pass
        for agent in self.agents.values():
            agent.stop()
        for host in self.hosts.values():
            host.close()


def now() -> float:
    return time.time()


__all__ = ["Session", "SuiteError", "Addresses", "os"]
