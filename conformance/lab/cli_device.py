"""A device whose only interface is an interactive command line over SSH (a router-style home
or foreign agent), driven through netmiko: its prompts, paging and configuration mode are
netmiko's device type's business; its state tables are parsed by TextFSM templates.

Install, start and stop, when the profile gives them, still run on the device host's shell
(a lab appliance); everything else (configuration lines, actions, reset, state) is CLI.
"""

from __future__ import annotations

import re

from conformance.lab.device import Device
from conformance.lab.netns import LabError
from conformance.lab.profile import StateParseError

# How a CLI says it refused a line (IOS-like "% Invalid input ...", "% Bad value ...").
_REFUSED = re.compile(r"^\s*% .*$", re.MULTILINE)


class CliDevice(Device):
    def __init__(self, profile, host, params: dict | None = None):
        super().__init__(profile, host, params)
        self.connection = None

    def _cli(self):
        """The netmiko session, opened (and privileged) on first use or after a drop."""
        if self.connection is not None and self.connection.is_alive():
            return self.connection
        from netmiko import ConnectHandler
        from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

        spec = self.profile.connection
        address = self.host.spec.management.address
        try:
            self.connection = ConnectHandler(
                device_type=spec.device_type, host=address, port=spec.port,
                username=spec.username, password=self.render(spec.password or ""),
                secret=self.render(spec.secret or ""), conn_timeout=spec.timeout,
                auth_timeout=spec.timeout, banner_timeout=spec.timeout,
                read_timeout_override=spec.timeout, fast_cli=False)
            if spec.secret:
                self.connection.enable()
        except (NetmikoTimeoutException, NetmikoAuthenticationException, OSError,
                ValueError) as exc:
            self.connection = None
            raise LabError(f"{self.profile.name}: CLI at {address}:{spec.port} "
                           f"({spec.device_type}): {type(exc).__name__}: "
                           f"{str(exc).strip()[:300]}") from exc
        return self.connection

    def _send(self, what: str, send, *args) -> str:
        """Output of one netmiko call; a dropped session or a line the CLI refused is a
        LabError (the profile's or the lab's problem, not a verdict on the device)."""
        try:
            out = send(*args)
        except (OSError, EOFError) as exc:
            self.connection = None
            raise LabError(f"{self.profile.name}: {what}: {exc}") from exc
        refused = _REFUSED.search(out)
        if refused:
            raise LabError(f"{self.profile.name}: {what} refused: {refused.group().strip()}"
                           f"\n{out[-600:]}")
        return out

    def cli(self, line: str) -> str:
        """One exec-mode command's output."""
        return self._send(f"`{line}`", self._cli().send_command, line)

    # ------------------------------------------------------------------ the Device calls
    def command(self, text: str) -> str:
        return "\n".join(self.cli(line) for line in text.splitlines() if line.strip())

    def configure_lines(self, lines: list[str]) -> None:
        if lines:
            self._send("configuration mode", self._cli().send_config_set, lines)

    def start(self, timeout: float = 10.0) -> None:
        super().start(timeout)
        self.configure_lines([self.render(line) for line in self.profile.config_lines])

    def stop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.disconnect()
            except (OSError, EOFError):
                pass
            self.connection = None
        super().stop()

    def reset(self) -> None:
        if self.profile.reset:
            self.command(self.render(self.profile.reset))
        else:
            self.stop()
            self.start()

    def state(self, name: str = "bindings") -> list[dict]:
        reader = self.reader(name)
        try:
            out = self.cli(self.render(reader.command))
        except LabError as exc:
            raise StateParseError(str(exc)) from exc
        return reader.parse(out)
