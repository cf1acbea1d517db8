"""The built-in lab: the default topology in network namespaces, each with its own sshd,
reached from the controller over a management bridge, described by a testbed file that the
same SSH code uses as it would for a vendor's remote lab.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from conformance.lab import topology
from conformance.lab.netns import (
    STATE_DIR, LabError, Netns, destroy, existing_labs, run,
)
from conformance.waiting import WaitTimeout, wait_for

DEFAULT_MGMT = ipaddress.IPv4Network("198.51.100.0/24")
LAB_SLICE = 27  # each lab takes one /27 of the management range, so labs can coexist
HOSTS = ("mn", "fa", "ha", "cn")
PR_SET_PDEATHSIG = 1
SSHD = "/usr/sbin/sshd"


def _die_with_parent():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _routes() -> list[ipaddress.IPv4Network]:
    out = run("ip", "-j", "-4", "route", "show", "table", "all").stdout
    nets = []
    for route in json.loads(out or "[]"):
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("type") in ("broadcast", "local"):
            continue
        try:
            nets.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
        except ValueError:
            continue
    return nets


@contextmanager
def allocation_lock():
    """Held while a lab picks its prefix and management subnet and records them, so labs
    started at the same moment by different processes never pick the same ones."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / ".allocate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _claimed_subnets() -> list[ipaddress.IPv4Network]:
    """Management subnets recorded by labs that exist (their bridge may have no route yet)."""
    nets = []
    for lab in existing_labs():
        try:
            nets.append(ipaddress.IPv4Network(lab["mgmt_subnet"]))
        except (KeyError, ValueError):
            continue
    return nets


def choose_mgmt_subnet(requested: str | None = None) -> ipaddress.IPv4Network:
    """A management subnet no route and no other lab uses (call under allocation_lock)."""
    routes = _routes() + _claimed_subnets()
    if requested:
        net = ipaddress.IPv4Network(requested, strict=True)
        clash = [str(r) for r in routes if r.overlaps(net)]
        if clash:
            raise LabError(f"management subnet {net} collides with existing route(s) "
                           f"{', '.join(clash)}; choose another with --mgmt-subnet")
        return net
    for net in DEFAULT_MGMT.subnets(new_prefix=LAB_SLICE):
        if not any(r.overlaps(net) for r in routes):
            return net
    clash = sorted({str(r) for r in routes if r.overlaps(DEFAULT_MGMT)})
    raise LabError(f"no free /{LAB_SLICE} left in the management range {DEFAULT_MGMT}: it "
                   f"collides with existing route(s) {', '.join(clash)}; choose another subnet "
                   f"with --mgmt-subnet")


def _keygen(path: Path, comment: str) -> str:
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))
    return path.with_suffix(".pub").read_text().strip()


SSHD_CONFIG = """ListenAddress {address}
Port 22
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
SetEnv SHLVL=1
MaxStartups 100
Subsystem sftp /usr/lib/openssh/sftp-server
"""


class BuiltinLab:
    """Build, describe and remove one built-in lab."""

    def __init__(self, mgmt_subnet: str | None = None):
        if os.geteuid() != 0:
            raise LabError("the built-in lab needs root (network namespaces, veths, sshd)")
        if not Path(SSHD).exists():
            raise LabError(f"{SSHD} is missing: install openssh-server (make setup does it as "
                           f"root)")
        with allocation_lock():
            self.removed_stale = remove_stale()
            taken = {lab["prefix"] for lab in existing_labs()}
            self.net = Netns()
            while self.net.prefix in taken:
                self.net = Netns()
            self.mgmt = choose_mgmt_subnet(mgmt_subnet)
            self.dir = STATE_DIR / self.net.prefix
            self.sshd: dict[str, subprocess.Popen] = {}
            self.bridge = f"{self.net.prefix}br"
            self.testbed_path = self.dir / "testbed.yaml"
            self._save()  # claims the prefix and the subnet before the lock is let go

    def mgmt_address(self, index: int) -> str:
        return str(self.mgmt.network_address + 2 + index)

    def _save(self) -> None:
        self.net.save({"bridges": [self.bridge], "mgmt_subnet": str(self.mgmt),
                       "testbed": str(self.testbed_path), "dir": str(self.dir)})

    def up(self) -> "BuiltinLab":
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def _up(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)  # private keys and device configurations live below
        self._save()
        topology.build(self.net)
        gateway = f"{self.mgmt.network_address + 1}/{self.mgmt.prefixlen}"
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", gateway, "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        client_pub = _keygen(self.dir / "client_key", f"dsmip4-{self.net.prefix}")
        known_hosts = []
        run("mkdir", "-p", "-m0755", "/run/sshd")
        for i, host in enumerate(HOSTS):
            ns = self.net.ns(host)
            root_end = f"{self.net.prefix}m{i}"
            run("ip", "link", "add", root_end, "type", "veth", "peer", "name", f"{root_end}x")
            self.net.root_links.append(root_end)
            self._save()
            run("ip", "link", "set", f"{root_end}x", "netns", ns)
            run("ip", "-n", ns, "link", "set", f"{root_end}x", "name", "mgmt0")
            run("ip", "-n", ns, "addr", "add", f"{self.mgmt_address(i)}/{self.mgmt.prefixlen}",
                "dev", "mgmt0")
            run("ip", "-n", ns, "link", "set", "mgmt0", "up")
            run("ip", "link", "set", root_end, "master", self.bridge, "up")
            hdir = self.dir / host
            hdir.mkdir(exist_ok=True)
            host_pub = _keygen(hdir / "host_key", f"{host}@{self.net.prefix}")
            known_hosts.append(f"{self.mgmt_address(i)} {' '.join(host_pub.split()[:2])}")
            (hdir / "authorized_keys").write_text(client_pub + "\n")
            cfg = hdir / "sshd_config"
            cfg.write_text(SSHD_CONFIG.format(address=self.mgmt_address(i),
                                              host_key=hdir / "host_key",
                                              pid_file=hdir / "sshd.pid",
                                              authorized_keys=hdir / "authorized_keys"))
            self.sshd[host] = subprocess.Popen(
                self.net.exec_args(host, SSHD, "-D", "-f", str(cfg), "-E",
                                   str(hdir / "sshd.log")),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent)
        (self.dir / "known_hosts").write_text("\n".join(known_hosts) + "\n")
        for i, host in enumerate(HOSTS):
            address = self.mgmt_address(i)
            try:
                wait_for(lambda: self._listening(address, host), 5.0, f"sshd of {host} on "
                         f"{address}:22")
            except WaitTimeout as exc:
                log = (self.dir / host / "sshd.log").read_text()[-500:] \
                    if (self.dir / host / "sshd.log").exists() else ""
                raise LabError(f"{exc}; sshd log: {log.strip()}") from exc
        self._write_testbed()

    def _listening(self, address: str, host: str) -> bool:
        proc = self.sshd[host]
        if proc.poll() is not None:
            raise LabError(f"sshd of {host} exited with {proc.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex((address, 22)) == 0

    def _write_testbed(self) -> None:
        # The lab hosts share this machine's files: they run the controller's Python, with
        # this checkout importable, so the reference nodes need no installation there.
        python = self.dir / "python"
        root = Path(__file__).resolve().parents[2]
        python.write_text(f"#!/bin/sh\nPYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} "
                          f"exec {sys.executable} \"$@\"\n")
        python.chmod(0o755)
        hosts = {}
        for i, host in enumerate(HOSTS):
            interfaces = {name: {"addresses": addrs}
                          for name, addrs in topology.HOSTS[host]["interfaces"].items()}
            for link, a, a_if, b, b_if in topology.LINKS:
                for h, ifname in ((a, a_if), (b, b_if)):
                    if h == host:
                        interfaces.setdefault(ifname, {})["link"] = link
            hosts[host] = {
                "management": {"address": self.mgmt_address(i), "port": 22, "user": "root",
                               "key_file": "client_key", "known_hosts": "known_hosts"},
                "roles": [host], "python": str(python),
                "workdir": f"/tmp/dsmip4-{self.net.prefix}/{host}",
                "interfaces": interfaces}
        data = {"testbed": {"name": f"builtin-{self.net.prefix}",
                            "pixit": {"reply_timeout": 2.0, "negative_timeout": 0.5}},
                "hosts": hosts,
                "links": {link: [f"{a}:{a_if}", f"{b}:{b_if}"]
                          for link, a, a_if, b, b_if in topology.LINKS},
                "builtin": {"prefix": self.net.prefix, "state_file": str(self.net.state_file),
                            "mgmt_subnet": str(self.mgmt),
                            "namespaces": {h: self.net.ns(h) for h in HOSTS}}}
        self.testbed_path.write_text("# Written by `dsmip4 lab up`; removed by `dsmip4 lab "
                                     "down`.\n" + yaml.safe_dump(data, sort_keys=False))

    def describe(self) -> dict:
        return {"testbed": str(self.testbed_path), "prefix": self.net.prefix,
                "mgmt_subnet": str(self.mgmt),
                "hosts": {h: {"namespace": self.net.ns(h), "management": self.mgmt_address(i)}
                          for i, h in enumerate(HOSTS)}}

    def down(self) -> None:
        if self.net.state_file.exists():  # read by netns.lab_withdrawn: why the hosts vanish
            self.net.save({"going_down": True})
        for proc in self.sshd.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.sshd.values():
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        destroy(self.net.prefix, self.net.namespaces, self.net.root_links)
        run("ip", "link", "del", self.bridge, check=False)
        run("rm", "-rf", str(self.dir), f"/tmp/dsmip4-{self.net.prefix}", check=False)
        self.net.state_file.unlink(missing_ok=True)


# ---------------------------------------------------------------------- the keeper process
def keep(mgmt_subnet: str | None, ready_fd: int) -> int:
    """`dsmip4 lab up` runs this in a detached process that owns the lab until `lab down`
    (SIGTERM). If it is killed outright, its sshds die with it and the next `lab up` or
    `lab down` finds the lab stale and removes it."""
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    try:
        lab = BuiltinLab(mgmt_subnet).up()
    except LabError as exc:
        os.write(ready_fd, json.dumps({"error": str(exc)}).encode() + b"\n")
        return 1
    os.write(ready_fd, json.dumps(lab.describe()).encode() + b"\n")
    os.close(ready_fd)
    while not stop["now"]:
        signal.pause()
    lab.down()
    return 0


def lab_up(mgmt_subnet: str | None = None, timeout: float = 30.0) -> dict:
    """Start a keeper process that builds and owns a lab; return its description."""
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-c", "import sys; from conformance.lab.builtin import keep; "
           f"sys.exit(keep({mgmt_subnet!r}, {write_fd}))"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(cmd, pass_fds=(write_fd,), start_new_session=True, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        line = pipe.readline()
    if not line:
        proc.kill()
        raise LabError(f"the lab keeper exited with {proc.wait()} before the lab was ready")
    answer = json.loads(line)
    if "error" in answer:
        proc.wait(timeout=timeout)
        raise LabError(answer["error"])
    answer["keeper"] = proc.pid
    return answer


def _remove(lab: dict) -> None:
    """Everything a lab made: namespaces, links, bridges, and its folders (private keys and
    device configurations live there)."""
    destroy(lab["prefix"], lab.get("namespaces", []), lab.get("root_links", []))
    for bridge in lab.get("bridges", []):
        if bridge.startswith(lab["prefix"]):
            run("ip", "link", "del", bridge, check=False)
    folders = {str(STATE_DIR / lab["prefix"]), lab.get("dir") or "",
               f"/tmp/dsmip4-{lab['prefix']}"} - {""}
    run("rm", "-rf", *sorted(folders), check=False)
    Path(lab["state_file"]).unlink(missing_ok=True)


def remove_stale() -> list[str]:
    """Remove the labs whose owner process is gone; return their prefixes."""
    stale = [lab for lab in existing_labs() if not lab["owner_alive"]]
    for lab in stale:
        _remove(lab)
    return [lab["prefix"] for lab in stale]


def removable(labs: list[dict], prefix: str | None, all_labs: bool) -> list[dict]:
    """Which labs `lab down` removes: the one named, every one with --all, and otherwise only
    stale labs (owner gone). A live lab belongs to a run in progress: never by default."""
    if prefix:
        return [lab for lab in labs if lab["prefix"] == prefix]
    return [lab for lab in labs if all_labs or not lab["owner_alive"]]


def lab_down(prefix: str | None = None, timeout: float = 10.0,
             all_labs: bool = False) -> tuple[list[str], list[str]]:
    """Remove our labs (see `removable`): ask live keepers to stop, destroy stale ones.
    Returns (removed, left alone)."""
    labs = existing_labs()
    chosen = removable(labs, prefix, all_labs)
    removed = []
    for lab in chosen:
        state = Path(lab["state_file"])
        if lab["owner_alive"] and lab["owner"] != os.getpid():
            try:
                os.kill(lab["owner"], signal.SIGTERM)
                wait_for(lambda: not state.exists(), timeout, f"lab {lab['prefix']} to go down")
            except (ProcessLookupError, WaitTimeout):
                pass
        if state.exists():
            _remove(lab)
        removed.append(lab["prefix"])
    left = [lab["prefix"] for lab in labs if lab not in chosen]
    return removed, left


def lab_status() -> list[dict]:
    names = set(run("ip", "netns", "list", check=False).stdout.split())
    out = []
    for lab in existing_labs():
        out.append({"prefix": lab["prefix"], "owner": lab["owner"],
                    "owner_alive": lab["owner_alive"],
                    "state": "up" if lab["owner_alive"] else "stale",
                    "testbed": lab.get("testbed"), "mgmt_subnet": lab.get("mgmt_subnet"),
                    "namespaces": {ns: ns in names for ns in lab.get("namespaces", [])}})
    return out
