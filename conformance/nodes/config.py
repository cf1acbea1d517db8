"""Node configuration files (YAML) for `dsmip4 ha|fa|mn --config FILE`.

Every problem stops the node at start with the file, the YAML path of the key and what is
wrong with it: unknown keys, bad addresses, overlapping static prefixes, unreadable keys,
unknown fault names.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from conformance.nodes.config_model import MODELS, _ipv4
from conformance.nodes.fa import FAConfig
from conformance.nodes.faults import FA_FAULTS, HA_FAULTS, MN_FAULTS
from conformance.nodes.ha import HAConfig, MobileNodeEntry
from conformance.nodes.mn import MNConfig
from conformance.nodes.prefixes import PrefixTable, prefix_key
from conformance.schema import validate
from conformance.yamlfile import YamlError, line_of, load_yaml


class ConfigError(YamlError):
    pass


@dataclass
class Runtime:
    """Adapter settings: where the node runs, not how the protocol behaves."""

    control_socket: str | None = None
    log: str | None = None
    tun: str | None = None
    tun_mtu: int = 1280  # RFC 4213 §3.2 static tunnel MTU
    multicast_interface: str | None = None  # HA: the home-side link whose multicast it tunnels
    install_routes: bool = True
    interface: str | None = None  # MN: the interface facing the visited link
    foreign_interface: str | None = None  # FA: the visited link, for host routes to visitors


@dataclass
class NodeConfig:
    role: str
    engine: object  # HAConfig | FAConfig | MNConfig
    runtime: Runtime
    attach: dict = field(default_factory=dict)  # MN: where to register at start
    path: str = ""


class _Reader:
    """Typed access to one mapping, reporting errors with file, YAML path and line."""

    def __init__(self, path, node, where: str):
        self.path, self.node, self.where = path, node, where
        if not isinstance(node, dict):
            self.fail("", f"expected a mapping, got {type(node).__name__}")
        self.used: set[str] = set()

    def fail(self, key: str, message: str):
        where = ".".join(part for part in (self.where, key) if part)
        raise ConfigError(self.path, where or "$", message, line_of(self.node))

    def get(self, key, kind, default=..., check=None):
        self.used.add(key)
        if key not in self.node:
            if default is ...:
                self.fail(key, "missing")
            return default
        value = self.node[key]
        try:
            out = kind(value)
        except (ValueError, TypeError) as exc:
            self.fail(key, f"{value!r}: {exc}")
        if check:
            problem = check(out)
            if problem:
                self.fail(key, f"{value!r}: {problem}")
        return out

    def finish(self):
        unknown = sorted(set(self.node) - self.used)
        if unknown:
            self.fail(unknown[0], f"unknown key; expected one of {sorted(self.used)}")


def _networks(value) -> list[ipaddress.IPv6Network]:
    if not isinstance(value, list):
        raise ValueError("expected a list of IPv6 prefixes")
    return [ipaddress.IPv6Network(v, strict=True) for v in value]


def _bool(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    return value


def _faults(known: dict):
    def parse(value) -> frozenset[str]:
        if not isinstance(value, list):
            raise ValueError("expected a list of fault names")
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValueError(f"unknown fault {unknown[0]!r}; known: {sorted(known)}")
        return frozenset(value)
    return parse


def _key(reader: _Reader, base: Path) -> bytes:
    """The HMAC-MD5 key: `key` (hex), `key_file` (hex inside) or `key_env` (hex in $VAR)."""
    sources = [k for k in ("key", "key_file", "key_env") if k in reader.node]
    reader.used.update({"key", "key_file", "key_env"})
    if len(sources) != 1:
        reader.fail("key", "give exactly one of key, key_file, key_env")
    source = sources[0]
    raw = reader.node[source]
    if source == "key_file":
        try:
            raw = (base / str(raw)).read_text().strip()
        except OSError as exc:
            reader.fail("key_file", f"cannot read {raw!r}: {exc.strerror}")
    elif source == "key_env":
        if str(raw) not in os.environ:
            reader.fail("key_env", f"environment variable {raw!r} is not set")
        raw = os.environ[str(raw)]
    try:
        key = bytes.fromhex(str(raw))
    except ValueError:
        reader.fail(source, "the key is not hex")  # the value itself is a secret: not shown
    if not key:
        reader.fail(source, "the key is empty")
    return key


def _runtime(path, node, where) -> Runtime:
    if node is None:
        return Runtime()
    r = _Reader(path, node, where)
    rt = Runtime(control_socket=r.get("control_socket", str, None, _folder_exists),
                 log=r.get("log", str, None, _folder_exists),
                 tun=r.get("tun", str, None), tun_mtu=r.get("tun_mtu", _int, 1280),
                 multicast_interface=r.get("multicast_interface", str, None),
                 install_routes=r.get("install_routes", _bool, True),
                 interface=r.get("interface", str, None),
                 foreign_interface=r.get("foreign_interface", str, None))
    r.finish()
    return rt


def _folder_exists(value):
    folder = Path(value).parent
    return None if folder.is_dir() else f"its folder {folder} does not exist"


def _positive(value):
    return None if value > 0 else "must be positive"


def _lifetime(value):
    return None if 0 < value <= 0xFFFF else \
        "must be 1 to 65535 (the Lifetime field has 16 bits, RFC 3344 §3.3)"


def _spi(value):
    return None if 0 <= value <= 0xFFFFFFFF else \
        "must fit in 32 bits (RFC 3344 §3.5.1)"


def _distinct(value):
    dups = sorted({str(n) for n in value if value.count(n) > 1})
    return f"{', '.join(dups)} listed twice" if dups else None


def _tunnel_mtu(value):
    return None if value >= 1280 else "must be at least 1280 (RFC 4213)"


def _link_mtu(value):
    return None if 1300 <= value <= 65535 else "must be 1300 to 65535"


def _ha(path, r: _Reader, base) -> HAConfig:
    entries, seen_spi, seen_home = [], {}, {}
    nodes = r.get("mobile_nodes", list, check=lambda v: None if v else
                  "configure at least one mobile node")
    pool = r.get("delegation_pool", ipaddress.IPv6Network, None)
    static = PrefixTable()
    for i, raw in enumerate(nodes):
        m = _Reader(path, raw, f"mobile_nodes[{i}]")
        entry = MobileNodeEntry(m.get("home_address", _ipv4), m.get("spi", _int, check=_spi),
                                _key(m, base),
                                m.get("allowed_prefixes", _networks, [], _distinct),
                                m.get("implicit_prefixes", _networks, [], _distinct))
        for key, nets in (("allowed_prefixes", entry.allowed_prefixes),
                          ("implicit_prefixes", entry.implicit_prefixes)):
            inside = [str(n) for n in nets if pool is not None and n.overlaps(pool)]
            if inside:
                m.fail(key, f"{', '.join(inside)} overlaps the delegation pool {pool}, from "
                       "which the HA hands out prefixes dynamically")
        m.finish()
        if entry.spi in seen_spi:
            m.fail("spi", f"SPI {entry.spi} is already used by mobile_nodes[{seen_spi[entry.spi]}]")
        if entry.home_address in seen_home:
            m.fail("home_address", f"{entry.home_address} is already mobile_nodes"
                   f"[{seen_home[entry.home_address]}]")
        seen_spi[entry.spi], seen_home[entry.home_address] = i, i
        for net in entry.implicit_prefixes:
            length, value = prefix_key(net)
            other = static.conflict(length, value, i)
            if other is not None:
                m.fail("implicit_prefixes", f"{net} overlaps a static prefix of "
                       f"mobile_nodes[{other}]")
            static.add(length, value, i)
        entries.append(entry)
    cfg = HAConfig(
        address=r.get("address", _ipv4), mobile_nodes=entries,
        max_lifetime=r.get("max_lifetime", _int, 1800, _lifetime),
        replay_window=r.get("replay_window", float, 7.0, _positive),
        dsmip=r.get("dsmip", _bool, True), gre=r.get("gre", _bool, True),
        ipip=r.get("ipip", _bool, True),
        udp_tunnelling=r.get("udp_tunnelling", _bool, True),
        udp_keepalive=r.get("udp_keepalive", _int, 110),
        honour_tunneling_mode=r.get("honour_tunneling_mode", _bool, True),
        tunnel_mtu=r.get("tunnel_mtu", _int, 1280, _tunnel_mtu),
        dynamic_tunnel_mtu=r.get("dynamic_tunnel_mtu", _bool, False),
        link_mtu=r.get("link_mtu", _int, 1500, _link_mtu),
        max_groups=r.get("max_groups", _int, 64, _positive),
        copy_dscp=r.get("copy_dscp", _bool, True), full_ecn=r.get("full_ecn", _bool, True),
        delegation_pool=pool,
        delegated_length=r.get("delegated_length", _int, 56),
        home_ipv6=r.get("home_ipv6", lambda v: str(ipaddress.IPv6Address(v)), None),
        faults=r.get("faults", _faults(HA_FAULTS), frozenset()))
    if pool is not None and not pool.prefixlen < cfg.delegated_length <= 128:
        r.fail("delegated_length", f"must be longer than the pool's /{pool.prefixlen}")
    return cfg


def _fa(path, r: _Reader, base) -> FAConfig:
    associations = {}
    for i, raw in enumerate(r.get("home_agents", list, [])):
        h = _Reader(path, raw, f"home_agents[{i}]")
        address = h.get("address", _ipv4)
        if address in associations:
            h.fail("address", f"{address} already has a security association")
        associations[address] = (h.get("spi", _int), _key(h, base))
        h.finish()
    return FAConfig(address=r.get("address", _ipv4),
                    max_lifetime=r.get("max_lifetime", _int, 1800, _lifetime),
                    reverse_tunnel=r.get("reverse_tunnel", _bool, True),
                    gre=r.get("gre", _bool, True), home_agents=associations,
                    max_pending=r.get("max_pending", _int, 1024, _positive),
                    max_pending_per_mn=r.get("max_pending_per_mn", _int, 8, _positive),
                    faults=r.get("faults", _faults(FA_FAULTS), frozenset()))


def _mn(path, r: _Reader, base) -> MNConfig:
    return MNConfig(home_address=r.get("home_address", _ipv4),
                    home_agent=r.get("home_agent", _ipv4), spi=r.get("spi", _int),
                    key=_key(r, base), prefixes=r.get("prefixes", _networks, []),
                    lifetime=r.get("lifetime", _int, 1800, _lifetime),
                    request_coa_tunnel=r.get("request_coa_tunnel", _bool, True),
                    dynamic_delegation=r.get("dynamic_delegation", _bool, False),
                    reverse_tunnel=r.get("reverse_tunnel", _bool, False),
                    gre=r.get("gre", _bool, False),
                    udp_tunnelling=r.get("udp_tunnelling", _bool, False),
                    groups=[str(ipaddress.IPv6Address(g)) for g in r.get("groups", list, [])],
                    implicit_prefixes=r.get("implicit_prefixes", _networks, []),
                    tunnel_mtu=r.get("tunnel_mtu", _int, 1280, _tunnel_mtu),
                    dynamic_tunnel_mtu=r.get("dynamic_tunnel_mtu", _bool, False),
                    link_mtu=r.get("link_mtu", _int, 1500, _link_mtu),
                    faults=r.get("faults", _faults(MN_FAULTS), frozenset()))


def _attach(path, node) -> dict:
    if node is None:
        return {"mode": "home"}
    r = _Reader(path, node, "attach")
    mode = r.get("mode", str, check=lambda v: None if v in ("home", "fa", "colocated")
                  else "expected home, fa or colocated")
    out = {"mode": mode}
    if mode == "fa":
        out["fa"] = r.get("fa", _ipv4)
    elif mode == "colocated":
        out["care_of_address"] = r.get("care_of_address", _ipv4)
    r.finish()
    return out


def load_node_config(path: str | Path, role: str | None = None) -> NodeConfig:
    path = Path(path)
    data = load_yaml(path, ConfigError)
    if isinstance(data, dict) and data.get("role") in MODELS:
        # The published schema first (line, column, did-you-mean), then the meaning.
        validate(MODELS[data["role"]], data, path, ConfigError)
    r = _Reader(path, data, "")
    kind = r.get("role", str, check=lambda v: None if v in ("ha", "fa", "mn")
                 else "expected ha, fa or mn")
    if role and kind != role:
        r.fail("role", f"this file configures a {kind}, not a {role}")
    base = path.parent
    engine = {"ha": _ha, "fa": _fa, "mn": _mn}[kind](path, r, base)
    runtime = _runtime(path, r.get("runtime", dict, None), "runtime")
    attach = _attach(path, r.get("attach", dict, None)) if kind == "mn" else {}
    r.finish()
    return NodeConfig(kind, engine, runtime, attach, str(path))
