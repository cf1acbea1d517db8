"""A device under test on a lab host, driven through its profile over SSH.

The suite notices when the device dies or stops answering: it records an error with the
device's last log lines, restarts it from the profile, and carries on.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from conformance.lab.netns import LabError
from conformance.lab.profile import Profile, StateParseError
from conformance.lab.ssh import SSHHost
from conformance.waiting import WaitTimeout, wait_for


def port_open(address: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to address:port is accepted (a health probe)."""
    import socket

    try:
        with socket.create_connection((address, port), timeout):
            return True
    except OSError:
        return False


class DeviceCrashed(LabError):
    def __init__(self, message: str, last_log: list[str]):
        super().__init__(message)
        self.last_log = last_log


class Device:
    def __init__(self, profile: Profile, host: SSHHost, params: dict | None = None):
        self.profile = profile
        self.host = host
        self.params = {"python": host.spec.python, "workdir": host.spec.workdir,
                       **(params or {})}
        self.pid: int | None = None
        self.crashes: list[dict] = []
        self.stdout_log = f"{host.spec.workdir}/{profile.role}-device.out"
        # health: {registration: true}: set by the run's session, which can reach the device
        self.registration_probe = None

    def render(self, text: str) -> str:
        return self.profile.render(text, self.params)

    def render_with(self, text: str, args: dict) -> str:
        """`text` with an action's arguments defined besides the device's parameters."""
        return self.profile.render(text, {**self.params, **args})

    @property
    def log_path(self) -> str | None:
        return self.render(self.profile.log_path) if self.profile.log_path else None

    # ------------------------------------------------------------------ lifecycle
    def install(self) -> None:
        self.host.run(self.host.workdir_command(), 10, check=True)
        for copied in self.profile.files:  # prepared on the controller: no registry needed
            remote = self.render(copied.dest)
            self.host.put(str(Path(self.profile.profile_dir) / copied.source), remote)
            self.host.run(f"chmod {copied.mode:o} {shlex.quote(remote)}", 10, check=True)
        if self.profile.install:
            self.host.run(self.render(self.profile.install), 120, check=True)

    def configure(self, **params) -> None:
        self.params.update(params)
        if self.profile.config_template and self.profile.config_path:
            self.host.put_text(self.render(self.profile.config_template),
                               self.render(self.profile.config_path), mode=0o600)

    def start(self, timeout: float = 10.0) -> None:
        if self.log_path:
            self.host.run(f": > {shlex.quote(self.log_path)}", 5)
        how = "(always on)"
        if self.profile.start:
            how = f"with `{self.render(self.profile.start)}`"
            self.pid = self.host.start_background(self.render(self.profile.start),
                                                  self.stdout_log)
        try:
            wait_for(self._healthy, timeout, f"{self.profile.name} to become healthy")
        except WaitTimeout as exc:
            raise DeviceCrashed(f"{self.profile.name} did not start {how}: {exc}",
                                self.last_log()) from exc

    def _healthy(self) -> bool:
        if self.profile.start and (self.pid is None or not self.host.alive(self.pid)):
            out = self.host.read_text(self.stdout_log, 20)
            raise DeviceCrashed(f"{self.profile.name} exited: {out.strip()[-500:]}",
                                self.last_log())
        probe = self.profile.health_probe
        if probe is not None and probe.tcp:
            return port_open(self.host.spec.management.address, probe.tcp)
        if probe is not None and probe.udp:  # bound on the device host, any address
            return self.host.run(f"ss -Hlun 'sport = :{probe.udp}' | grep -q .", 5).ok
        if probe is not None and probe.registration and self.registration_probe is not None:
            return self.registration_probe()
        if self.profile.health:
            return self.host.run(self.render(self.profile.health), 5).ok
        return True

    def stop(self) -> None:
        if self.profile.stop:
            self.host.run(self.render(self.profile.stop), 15)
        if self.pid is not None:
            self.host.stop_background(self.pid)
        self.pid = None

    def command(self, text: str) -> str:
        """Run one of the profile's action commands on the device host; its output. A command
        that fails is the profile's or the lab's problem (LabError), not the device's."""
        result = self.host.run(text, 30)
        if not result.ok:
            raise LabError(f"{self.profile.name}: `{text}` exited {result.status}: "
                           f"{(result.stderr or result.stdout).strip()[:300]}")
        return result.stdout

    def configure_lines(self, lines: list[str]) -> None:
        raise LabError(f"{self.profile.name}: configuration-mode lines need a CLI connection "
                       "(connection: cli)")

    def reset(self) -> None:
        """Back to a clean state between test cases."""
        if self.profile.reset:
            self.host.run(self.render(self.profile.reset), 15, check=True)
        else:
            self.stop()
            self.start()

    # ------------------------------------------------------------------ health and crashes
    def ensure_running(self) -> dict | None:
        """Restart the device if it died or stopped answering; the crash record when it had
        to (DeviceCrashed only when the restart itself fails)."""
        try:
            healthy = self._healthy()
        except DeviceCrashed as exc:
            last = exc.last_log
            healthy = False
        else:
            last = None
        if healthy:
            return None
        crash = {"time": time.time(),
                 "last_log": last if last is not None else self.last_log()}
        self.crashes.append(crash)
        self.stop()
        self.start()
        return crash

    def check_alive(self) -> None:
        """Raise DeviceCrashed (after restarting the device) when it died or stopped answering."""
        crash = self.ensure_running()
        if crash is not None:
            raise DeviceCrashed(f"{self.profile.name} died or stopped answering; restarted",
                                crash["last_log"])

    def last_log(self, lines: int = 20) -> list[str]:
        path = self.log_path or self.stdout_log
        try:
            return self.host.read_text(path, lines).splitlines()
        except LabError:
            return []

    # ------------------------------------------------------------------ observation
    def reader(self, name: str):
        reader = self.profile.state.get(name)
        if reader is None:
            raise StateParseError(f"profile {self.profile.name} has no state {name!r}")
        return reader

    def state(self, name: str = "bindings") -> list[dict]:
        """A state table from the device; StateParseError when it cannot be read."""
        reader = self.reader(name)
        result = self.host.run(self.render(reader.command), 10)
        if not result.ok:
            raise StateParseError(f"`{reader.command}` exited {result.status}: "
                                  f"{result.stderr.strip()[:200]}")
        return reader.parse(result.stdout)

    def log_mark(self) -> int:
        if not self.log_path:
            return 0
        out = self.host.run(f"stat -c %s {shlex.quote(self.log_path)} 2>/dev/null || echo 0",
                            5).stdout.strip()
        return int(out or 0)

    def log_since(self, mark: int) -> str:
        if not self.log_path:
            return ""
        return self.host.run(f"tail -c +{mark + 1} {shlex.quote(self.log_path)}", 5).stdout

    def security_exceptions(self, since: int) -> list[str]:
        import re

        pattern = self.profile.security_exception
        if not pattern:
            return []
        return [line for line in self.log_since(since).splitlines() if re.search(pattern, line)]


def device_for(profile: Profile, host: SSHHost, params: dict | None = None) -> Device:
    """The Device that drives `profile`: over the host's shell, or its CLI connection."""
    if profile.connection is not None:
        from conformance.lab.cli_device import CliDevice

        return CliDevice(profile, host, params)
    return Device(profile, host, params)
