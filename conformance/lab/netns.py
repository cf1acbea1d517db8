"""Network namespaces, veth links and addresses for the built-in lab, with run-unique names.

Every object carries the lab's prefix (`d4` + 4 hex digits). A state file under
STATE_DIR records the owner's PID and what was made, so a lab whose owner was killed is found
and removed by the next run, and nothing without our prefix is ever touched.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from conformance.errors import LabError  # noqa: F401 (the lab's callers import it from here)
from conformance.waiting import WaitTimeout, wait_for

STATE_DIR = Path(os.environ.get("DSMIP4_LAB_STATE", "/tmp/dsmip4-labs"))
PREFIX_STEM = "d4"


def run(*args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie waiting to be reaped counts as dead (lab notes: PID 1 reaps late)
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Netns:
    """The namespaces and links of one lab."""

    prefix: str = field(default_factory=lambda: PREFIX_STEM + secrets.token_hex(2))
    namespaces: list[str] = field(default_factory=list)
    root_links: list[str] = field(default_factory=list)
    owner: int = field(default_factory=os.getpid)
    extra: dict = field(default_factory=dict)  # what the lab records beside (its subnet...)

    @property
    def state_file(self) -> Path:
        return STATE_DIR / f"{self.prefix}.json"

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def save(self, extra: dict | None = None) -> None:
        """Record the lab; `extra` is kept for later saves (another lab reads the management
        subnet from here while this one is still being built)."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.extra.update(extra or {})
        data = {"prefix": self.prefix, "owner": self.owner, "namespaces": self.namespaces,
                "root_links": self.root_links, **self.extra}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_file)  # readers never see half a file

    # ------------------------------------------------------------------ building
    def add_namespace(self, name: str) -> str:
        full = self.ns(name)
        run("ip", "netns", "add", full)
        self.namespaces.append(full)
        self.save()
        for key, value in (("net.ipv6.conf.all.accept_dad", "0"),
                           ("net.ipv6.conf.default.accept_dad", "0"),
                           ("net.ipv4.ip_forward", "1"),
                           ("net.ipv6.conf.all.forwarding", "1"),
                           ("net.ipv4.conf.all.rp_filter", "0"),
                           ("net.ipv4.conf.default.rp_filter", "0")):
            run("ip", "netns", "exec", full, "sysctl", "-qw", f"{key}={value}")
        run("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def link(self, a: str, a_if: str, b: str, b_if: str) -> None:
        """A veth pair between namespaces a and b, named a_if and b_if inside them."""
        tmp_a = f"{self.prefix}{secrets.token_hex(3)}"
        tmp_b = f"{self.prefix}{secrets.token_hex(3)}"
        run("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        self.root_links.append(tmp_a)
        self.save()
        for tmp, ns, name in ((tmp_a, self.ns(a), a_if), (tmp_b, self.ns(b), b_if)):
            run("ip", "link", "set", tmp, "netns", ns)
            run("ip", "-n", ns, "link", "set", tmp, "name", name)
            run("ip", "-n", ns, "link", "set", name, "up")
        self.root_links.remove(tmp_a)
        self.save()

    def addr(self, ns: str, ifname: str, cidr: str) -> None:
        family = "-6" if ":" in cidr else "-4"
        extra = ["nodad"] if family == "-6" else []
        run("ip", family, "-n", self.ns(ns), "addr", "add", cidr, "dev", ifname, *extra)

    def route(self, ns: str, *spec: str) -> None:
        family = "-6" if any(":" in s for s in spec) else "-4"
        run("ip", family, "-n", self.ns(ns), "route", "replace", *spec)

    def exec_args(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(ns), *cmd]

    def sh(self, ns: str, *cmd: str, check: bool = True, timeout: float = 20):
        return run(*self.exec_args(ns, *cmd), check=check, timeout=timeout)

    # ------------------------------------------------------------------ teardown
    def teardown(self) -> None:
        destroy(self.prefix, self.namespaces, self.root_links)
        try:
            self.state_file.unlink()
        except FileNotFoundError:
            pass


def _pids_in(ns: str) -> list[int]:
    proc = run("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in proc.stdout.split()]


def destroy(prefix: str, namespaces: list[str], root_links: list[str]) -> None:
    """Kill what runs in our namespaces, then delete them and our root-side veths."""
    assert prefix.startswith(PREFIX_STEM)
    for ns in namespaces:
        if not ns.startswith(prefix):
            continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = _pids_in(ns)
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                wait_for(lambda: not [p for p in pids if _alive(p)], 2.0,
                         f"processes in {ns} to exit")
                break
            except WaitTimeout:
                continue
        run("ip", "netns", "del", ns, check=False)
    for link in root_links:
        if link.startswith(prefix):
            run("ip", "link", "del", link, check=False)


def lab_withdrawn(state_file: Path) -> bool:
    """Whether the lab recorded in `state_file` is gone, or says it is going down (its
    keeper marks it before it stops the sshds), so a run using it can say why."""
    try:
        return bool(json.loads(state_file.read_text()).get("going_down"))
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False


def existing_labs() -> list[dict]:
    """Labs recorded in the state folder, with whether their owner still runs."""
    labs = []
    if STATE_DIR.is_dir():
        for path in sorted(STATE_DIR.glob(f"{PREFIX_STEM}*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            data["owner_alive"] = _alive(int(data.get("owner", 0)))
            data["state_file"] = str(path)
            labs.append(data)
    return labs
