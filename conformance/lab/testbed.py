"""Testbed files (YAML, pyATS-like and small): the lab hosts, how to reach them over SSH,
their interfaces and addresses, the links between them and the role each host plays.

Validated on load: a problem is reported with the file, the YAML path of the bad key and what
was expected. Secrets (passwords, key passphrases) only ever come from environment variables
named in the file, and `to_dict` never includes them.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from conformance.yamlfile import YamlError, line_of, load_yaml

ROLES = ("mn", "fa", "ha", "cn", "dut")
DEFAULT_PIXIT = {"reply_timeout": 3.0, "negative_timeout": 1.0, "registration_lifetime": 60,
                 "ssh_timeout": 10.0, "command_timeout": 30.0}


class TestbedError(YamlError):
    __test__ = False


@dataclass
class Management:
    address: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    known_hosts: str | None = None
    password_env: str | None = None
    passphrase_env: str | None = None

    def secret(self, which: str) -> str | None:
        """A secret, read from the environment at the moment it is needed."""
        name = self.password_env if which == "password" else self.passphrase_env
        return os.environ.get(name) if name else None

    def to_dict(self) -> dict:
        out = {"address": self.address, "port": self.port, "user": self.user,
               "key_file": self.key_file, "known_hosts": self.known_hosts}
        if self.password_env:
            out["password_env"] = self.password_env  # the variable's name, never its value
        return out


@dataclass
class Interface:
    name: str
    addresses: list[str] = field(default_factory=list)
    link: str | None = None

    def ipv4(self) -> list[str]:
        return [a.split("/")[0] for a in self.addresses if ":" not in a]

    def ipv6(self) -> list[str]:
        return [a.split("/")[0] for a in self.addresses if ":" in a]


@dataclass
class HostSpec:
    name: str
    management: Management
    roles: list[str]
    interfaces: dict[str, Interface]
    python: str = "python3"
    workdir: str = "/tmp/dsmip4"

    def to_dict(self) -> dict:
        return {"name": self.name, "management": self.management.to_dict(), "roles": self.roles,
                "python": self.python, "workdir": self.workdir,
                "interfaces": {n: {"addresses": i.addresses, "link": i.link}
                               for n, i in self.interfaces.items()}}


@dataclass
class Testbed:
    __test__ = False
    path: str
    name: str
    hosts: dict[str, HostSpec]
    links: dict[str, list[tuple[str, str]]]
    pixit: dict
    builtin: dict | None = None  # what the built-in lab records about itself

    def host_for(self, role: str) -> HostSpec:
        for host in self.hosts.values():
            if role in host.roles:
                return host
        raise KeyError(f"no host plays the role {role!r} in {self.path}")

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path,
                "hosts": {n: h.to_dict() for n, h in self.hosts.items()},
                "links": {n: [f"{h}:{i}" for h, i in ends] for n, ends in self.links.items()},
                "pixit": self.pixit}


class _Check:
    def __init__(self, path):
        self.path = path

    def fail(self, where: str, message: str, node=None):
        raise TestbedError(self.path, where, message, line_of(node))

    def mapping(self, node, where, required=(), optional=()):
        if not isinstance(node, dict):
            self.fail(where, f"expected a mapping, got {type(node).__name__}", node)
        for key in required:
            if key not in node:
                self.fail(f"{where}.{key}", "missing", node)
        allowed = set(required) | set(optional)
        for key in node:
            if key not in allowed:
                self.fail(f"{where}.{key}", f"unknown key; expected one of {sorted(allowed)}",
                          node)
        return node


def load_testbed(path: str | Path) -> Testbed:
    path = Path(path)
    data = load_yaml(path, TestbedError)
    c = _Check(path)
    c.mapping(data, "$", ("hosts",), ("testbed", "links", "builtin"))
    meta = c.mapping(data.get("testbed") or {}, "testbed", (), ("name", "pixit"))
    pixit = dict(DEFAULT_PIXIT)
    for key, value in (meta.get("pixit") or {}).items():
        if key not in DEFAULT_PIXIT:
            c.fail(f"testbed.pixit.{key}", f"unknown PIXIT value; expected one of "
                   f"{sorted(DEFAULT_PIXIT)}", meta)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            c.fail(f"testbed.pixit.{key}", f"{value!r}: expected a positive number", meta)
        pixit[key] = value
    hosts = {}
    if not isinstance(data["hosts"], dict) or not data["hosts"]:
        c.fail("hosts", "expected a non-empty mapping of host names", data)
    base = path.parent
    for name, raw in data["hosts"].items():
        where = f"hosts.{name}"
        c.mapping(raw, where, ("management", "roles"), ("interfaces", "python", "workdir"))
        m = c.mapping(raw["management"], f"{where}.management", ("address",),
                      ("port", "user", "key_file", "known_hosts", "password_env",
                       "passphrase_env"))
        try:
            ipaddress.ip_address(str(m["address"]))
        except ValueError:
            c.fail(f"{where}.management.address", f"{m['address']!r}: expected an IP address",
                   m)
        port = m.get("port", 22)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            c.fail(f"{where}.management.port", f"{port!r}: expected a port number 1-65535", m)
        for key in ("key_file", "known_hosts"):
            if key in m and not (base / str(m[key])).exists():
                c.fail(f"{where}.management.{key}", f"{m[key]!r}: no such file", m)
        if "known_hosts" not in m:
            c.fail(f"{where}.management.known_hosts",
                   "missing: host keys are always checked, give the known_hosts file", m)
        for key in ("password_env", "passphrase_env"):
            if key in m and not isinstance(m[key], str):
                c.fail(f"{where}.management.{key}", "expected the name of an environment "
                       "variable", m)
        roles = raw["roles"]
        if not isinstance(roles, list) or any(r not in ROLES for r in roles):
            c.fail(f"{where}.roles", f"{roles!r}: expected a list of {list(ROLES)}", raw)
        interfaces = {}
        for ifname, spec in (raw.get("interfaces") or {}).items():
            iwhere = f"{where}.interfaces.{ifname}"
            c.mapping(spec, iwhere, (), ("addresses", "link"))
            addrs = spec.get("addresses", [])
            for i, a in enumerate(addrs if isinstance(addrs, list) else [addrs]):
                try:
                    ipaddress.ip_interface(str(a))
                except ValueError:
                    c.fail(f"{iwhere}.addresses[{i}]", f"{a!r}: expected ADDRESS/LENGTH", spec)
            interfaces[ifname] = Interface(ifname, [str(a) for a in addrs], spec.get("link"))

        def resolve(p):
            return str((base / str(p)).resolve()) if p else None
        hosts[name] = HostSpec(name, Management(
            str(m["address"]), port, str(m.get("user", "root")), resolve(m.get("key_file")),
            resolve(m.get("known_hosts")), m.get("password_env"), m.get("passphrase_env")),
            list(roles), interfaces, str(raw.get("python", "python3")),
            str(raw.get("workdir", "/tmp/dsmip4")))
    links = {}
    for name, ends in (data.get("links") or {}).items():
        if not isinstance(ends, list) or len(ends) < 2:
            c.fail(f"links.{name}", "expected a list of at least two HOST:INTERFACE ends", data)
        parsed = []
        for i, end in enumerate(ends):
            host, _, ifname = str(end).partition(":")
            if host not in hosts:
                c.fail(f"links.{name}[{i}]", f"{end!r}: no host {host!r} in hosts", data)
            if ifname not in hosts[host].interfaces:
                c.fail(f"links.{name}[{i}]", f"{end!r}: host {host!r} has no interface "
                       f"{ifname!r}", data)
            parsed.append((host, ifname))
        links[name] = parsed
    return Testbed(str(path), str(meta.get("name", path.stem)), hosts, links, pixit,
                   data.get("builtin"))
