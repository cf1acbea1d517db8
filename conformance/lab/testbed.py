"""Testbed files (YAML, pyATS-like and small): the lab hosts, how to reach them over SSH,
their interfaces and addresses, the links between them and the role each host plays.

Validated on load: a problem is reported with the file, the YAML path of the bad key and what
was expected. Secrets (passwords, key passphrases) only ever come from environment variables
named in the file, and `to_dict` never includes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from conformance.lab.testbed_model import TestbedModel
from conformance.schema import dotted, validate
from conformance.yamlfile import YamlError, load_yaml, position

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
    addresses: dict = field(default_factory=dict)  # named addresses ($ha, $coa ...) given

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


def load_testbed(path: str | Path) -> Testbed:
    """A testbed file, checked against its schema (schemas/testbed.schema.json), then against
    itself: key files exist, links name real hosts and interfaces."""
    path = Path(path)
    data = load_yaml(path, TestbedError)
    model = validate(TestbedModel, data, path, TestbedError)

    def fail(loc: tuple, message: str, hint: str | None = None):
        raise TestbedError(path, dotted(loc), message,
                           *position(data, loc), hint=hint)
    base = path.parent
    hosts = {}
    for name, raw in model.hosts.items():
        m = raw.management
        for key in ("key_file", "known_hosts"):
            value = getattr(m, key)
            if value is not None and not (base / value).exists():
                fail(("hosts", name, "management", key), f"{value!r}: no such file",
                     "paths are relative to the testbed file")

        def resolve(p):
            return str((base / str(p)).resolve()) if p else None
        interfaces = {n: Interface(n, list(i.addresses), i.link)
                      for n, i in raw.interfaces.items()}
        hosts[name] = HostSpec(name, Management(
            m.address, m.port, m.user, resolve(m.key_file), resolve(m.known_hosts),
            m.password_env, m.passphrase_env), list(raw.roles), interfaces, raw.python,
            raw.workdir)
    links = {}
    for name, ends in model.links.items():
        if len(ends) < 2:
            fail(("links", name), "expected a list of at least two HOST:INTERFACE ends")
        parsed = []
        for i, end in enumerate(ends):
            host, _, ifname = end.partition(":")
            if host not in hosts:
                fail(("links", name, i), f"{end!r}: no host {host!r} in hosts",
                     f"one of {sorted(hosts)}")
            if ifname not in hosts[host].interfaces:
                fail(("links", name, i), f"{end!r}: host {host!r} has no interface "
                     f"{ifname!r}", f"one of {sorted(hosts[host].interfaces)}")
            parsed.append((host, ifname))
        links[name] = parsed
    pixit = {**DEFAULT_PIXIT, **model.testbed.pixit.model_dump()}
    return Testbed(str(path), model.testbed.name or path.stem, hosts, links, pixit,
                   model.builtin, dict(model.addresses))
