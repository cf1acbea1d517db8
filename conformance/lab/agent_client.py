"""Controller side of the lab agent: push it over SFTP, start it over SSH, talk JSON lines."""

from __future__ import annotations

import json
import select
import shlex
import socket
import time
from pathlib import Path

from conformance.lab.netns import LabError
from conformance.lab.ssh import SSHHost

AGENT_SOURCE = Path(__file__).with_name("agent.py")
OPEN_TIMEOUT = 10.0  # paramiko's default wait for a channel is an hour


class AgentError(LabError):
    pass


class Agent:
    def __init__(self, host: SSHHost):
        self.host = host
        self.path = f"{host.spec.workdir}/agent.py"
        self.channel = None
        self._buf = b""
        self._next = 0

    def start(self) -> "Agent":
        self.host.run(self.host.workdir_command(), 10, check=True)
        self.host.put(str(AGENT_SOURCE), self.path)
        self.channel = self.host._transport().open_session(timeout=OPEN_TIMEOUT)
        self.channel.exec_command(f"{self.host.spec.python} -u {shlex.quote(self.path)}")
        reply = self.call("ping", timeout=10)
        if reply.get("version") != 1:
            raise AgentError(f"host {self.host.name}: unexpected agent answer {reply}")
        return self

    def call(self, op: str, timeout: float = 10.0, **args) -> dict:
        if self.channel is None or self.channel.closed:
            raise AgentError(f"host {self.host.name}: the agent is not running")
        self._next += 1
        self.channel.sendall((json.dumps({"op": op, "id": self._next, **args}) + "\n").encode())
        deadline = time.monotonic() + timeout + 2.0
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentError(f"host {self.host.name}: agent gave no answer to {op} within "
                                 f"{timeout:.1f} s")
            ready, _, _ = select.select([self.channel], [], [], min(left, 0.5))
            if ready:
                # Paramiko's select pipe can say ready with nothing to read, and a lab
                # removed under the run never closes the channel: bound every read.
                self.channel.settimeout(max(left, 0.01))
                try:
                    chunk = self.channel.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    err = (self.channel.recv_stderr(4096) if self.channel.recv_stderr_ready()
                           else b"").decode(errors="replace")
                    raise AgentError(f"host {self.host.name}: the agent exited: {err.strip()}")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        reply = json.loads(line)
        if "error" in reply:
            raise AgentError(f"host {self.host.name}: agent {op} failed: {reply['error']}")
        return reply

    def stop(self) -> None:
        if self.channel is not None and not self.channel.closed:
            try:
                self.call("exit", timeout=3)
            except (AgentError, OSError):
                pass
            self.channel.close()
        self.channel = None

    # conveniences
    def send_udp(self, src, dst, payload: bytes, sport=434, dport=434) -> bytes:
        reply = self.call("send_udp", src=src, dst=dst, sport=sport, dport=dport,
                          payload=payload.hex())
        return bytes.fromhex(reply["packet"])

    def send_ip(self, packet: bytes) -> None:
        self.call("send_ip", packet=packet.hex())

    def send_ip6(self, packet: bytes) -> None:
        self.call("send_ip6", packet=packet.hex())

    def quiet(self, on: bool = True) -> None:
        """Keep the host's kernel from sending ICMP errors (the agent's own packets pass)."""
        self.call("quiet", on=on)

    def quiet_dropped(self) -> int:
        return self.call("quiet_dropped")["dropped"]

    def listen(self, iface: str) -> int:
        return self.call("listen", iface=iface)["mark"]

    def mark(self, iface: str) -> int:
        return self.call("mark", iface=iface)["mark"]

    def wait(self, iface: str, flt: dict, timeout: float, since: int = 0) -> dict:
        return self.call("wait", timeout=timeout, iface=iface, filter=flt, since=since,
                         wait_timeout=timeout)

    def capture_start(self, iface: str, name: str, bpf: str = "") -> dict:
        path = f"{self.host.spec.workdir}/{name}.pcap"
        return self.call("capture_start", iface=iface, path=path, filter=bpf)

    def capture_stop(self, capture: dict, local_path: str) -> str:
        self.call("capture_stop", capture=capture["capture"])
        self.host.get(capture["path"], local_path)
        return local_path
