"""A lab host controlled over SSH with paramiko.

Host keys are always checked against the testbed's known_hosts (unknown keys are rejected).
Commands run with both streams drained and the suite's own deadline; the remote side is
wrapped in `timeout` so it cannot outlive that deadline. A lost connection is retried once,
then reported as a LabError: a problem of the lab, never a failure of the device.
"""

from __future__ import annotations

import select
import shlex
import socket
import time
from dataclasses import dataclass

import paramiko

from conformance.lab.netns import LabError
from conformance.lab.testbed import HostSpec

SFTP_TIMEOUT = 60.0  # no single SFTP read of a lab file takes longer
_LOST = (paramiko.SSHException, EOFError, ConnectionError, socket.timeout, OSError)


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.status == 0


class CommandTimeout(LabError):
    pass


class SSHHost:
    def __init__(self, spec: HostSpec, connect_timeout: float = 10.0):
        self.spec = spec
        self.name = spec.name
        self.connect_timeout = connect_timeout
        self.client: paramiko.SSHClient | None = None

    # ------------------------------------------------------------------ connection
    def connect(self) -> "SSHHost":
        m = self.spec.management
        try:
            sock = socket.create_connection((m.address, m.port), timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise LabError(f"host {self.name}: cannot reach {m.address}:{m.port}: {exc}") \
                from exc
        client = paramiko.SSHClient()
        client.load_host_keys(m.known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(m.address, m.port, username=m.user, key_filename=m.key_file,
                           password=m.secret("password"), passphrase=m.secret("passphrase"),
                           sock=sock, timeout=self.connect_timeout, allow_agent=False,
                           look_for_keys=False, banner_timeout=self.connect_timeout,
                           auth_timeout=self.connect_timeout)
        except paramiko.BadHostKeyException as exc:
            sock.close()
            raise LabError(f"host {self.name}: host key does not match {m.known_hosts}") \
                from exc
        except paramiko.SSHException as exc:
            sock.close()
            raise LabError(f"host {self.name}: SSH to {m.user}@{m.address}:{m.port} failed: "
                           f"{exc}") from exc
        self.client = client
        return self

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _transport(self) -> paramiko.Transport:
        if self.client is None:
            self.connect()
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise paramiko.SSHException("transport is not active")
        return transport

    def _retry(self, what: str, fn):
        """Run fn once more on a fresh connection if the first one was lost."""
        try:
            return fn()
        except CommandTimeout:
            raise
        except _LOST as first:
            self.close()
            try:
                self.connect()
                return fn()
            except CommandTimeout:
                raise
            except (*_LOST, LabError) as second:
                raise LabError(f"host {self.name}: lost the connection during {what} "
                               f"({first}); the retry failed too: {second}") from second

    # ------------------------------------------------------------------ commands
    def run(self, command: str, timeout: float = 30.0, check: bool = False) -> Result:
        result = self._retry(f"`{command}`", lambda: self._run(command, timeout))
        if check and not result.ok:
            raise LabError(f"host {self.name}: `{command}` exited {result.status}: "
                           f"{result.stderr.strip() or result.stdout.strip()}")
        return result

    def _run(self, command: str, timeout: float) -> Result:
        wrapped = f"timeout -k 1 {max(timeout, 0.1):.1f} sh -c {shlex.quote(command)}"
        start = time.monotonic()
        channel = self._transport().open_session(timeout=10.0)  # paramiko waits an hour
        channel.exec_command(wrapped)
        out, err = bytearray(), bytearray()
        deadline = start + timeout + 3.0  # the remote timeout fires first; this is the backstop
        while True:
            if channel.recv_ready():
                out += channel.recv(65536)
                continue
            if channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
                continue
            # OpenSSH may send the exit status before the last stderr bytes: only the
            # channel's EOF says both streams are complete.
            if channel.exit_status_ready() and (channel.eof_received or channel.closed) \
                    and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            if time.monotonic() > deadline:
                channel.close()
                raise CommandTimeout(f"host {self.name}: `{command}` still running after "
                                     f"{timeout:.1f} s")
            select.select([channel], [], [], 0.05)
        status = channel.recv_exit_status()
        channel.close()
        if status == 124:
            raise CommandTimeout(f"host {self.name}: `{command}` timed out after {timeout:.1f} s")
        return Result(status, out.decode(errors="replace"), err.decode(errors="replace"),
                      time.monotonic() - start)

    # ------------------------------------------------------------------ files
    def _sftp(self) -> paramiko.SFTPClient:
        # open_sftp_client() waits an hour for its channel and reads without a deadline;
        # a host that vanishes mid-transfer must end the call, not the run.
        channel = self._transport().open_session(timeout=10.0)
        channel.settimeout(SFTP_TIMEOUT)
        channel.invoke_subsystem("sftp")
        return paramiko.SFTPClient(channel)

    def put(self, local: str, remote: str) -> None:
        def go():
            with self._sftp() as sftp:
                sftp.put(local, remote)
        self._retry(f"put {remote}", go)

    def put_text(self, text: str, remote: str, mode: int = 0o644) -> None:
        def go():
            with self._sftp() as sftp:
                with sftp.open(remote, "w") as f:
                    f.write(text)
                sftp.chmod(remote, mode)
        self._retry(f"write {remote}", go)

    def get(self, remote: str, local: str) -> None:
        def go():
            with self._sftp() as sftp:
                sftp.get(remote, local)
        self._retry(f"get {remote}", go)

    def read_text(self, remote: str, tail_lines: int | None = None) -> str:
        cmd = f"tail -n {tail_lines} {shlex.quote(remote)}" if tail_lines else \
            f"cat {shlex.quote(remote)}"
        return self.run(cmd, 10).stdout

    # ------------------------------------------------------------------ processes
    def start_background(self, command: str, log: str) -> int:
        """Start a command that outlives this call; its output goes to `log`."""
        result = self.run(f"nohup sh -c {shlex.quote('exec ' + command)} "
                          f">{shlex.quote(log)} 2>&1 </dev/null & echo $!", 10, check=True)
        return int(result.stdout.strip().splitlines()[-1])

    def alive(self, pid: int) -> bool:
        result = self.run(f"kill -0 {pid} 2>/dev/null && ! grep -q '^State:.*Z' "
                          f"/proc/{pid}/status", 5)
        return result.ok

    def stop_background(self, pid: int, timeout: float = 5.0) -> None:
        self.run(f"kill -TERM {pid} 2>/dev/null; for i in $(seq 250); do "
                 f"kill -0 {pid} 2>/dev/null || exit 0; "
                 f"grep -q '^State:.*Z' /proc/{pid}/status 2>/dev/null && exit 0; "
                 f"sleep 0.02; done; kill -KILL {pid} 2>/dev/null; exit 0", timeout + 2)

    def workdir_command(self) -> str:
        """The shell command that makes the work folder, private to its owner: device
        configurations in it hold MN-HA keys."""
        workdir = shlex.quote(self.spec.workdir)
        return f"mkdir -p {workdir} && chmod 0700 {workdir}"

    def health(self) -> dict:
        """What a lab host must offer before use: a shell, python3, tcpdump and nft (the
        suite's hosts must not answer the device with ICMP errors)."""
        result = self.run(f"echo ok; command -v {shlex.quote(self.spec.python)}; "
                          f"command -v tcpdump; command -v nft; {self.workdir_command()}", 10)
        lines = result.stdout.split()
        problems = []
        if "ok" not in lines:
            problems.append("no shell")
        if not any(line.endswith(self.spec.python.split("/")[-1]) for line in lines[1:]):
            problems.append(f"no {self.spec.python}")
        if not any(line.endswith("tcpdump") for line in lines):
            problems.append("no tcpdump")
        if not any(line.endswith("/nft") for line in lines):
            problems.append("no nft (Debian package nftables)")
        return {"host": self.name, "ok": not problems, "problems": problems,
                "latency_ms": round(result.duration * 1000, 1)}
