"""Device-under-test profiles (YAML): how to install, configure, start, stop, reset and
observe one device in one role, and which optional features (PICS) it claims."""

from __future__ import annotations

import functools

import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from conformance.yamlfile import YamlError, line_of, load_yaml

PICS = {
    "explicit-mode": "registers IPv6 prefixes with prefix request extensions (RFC 5454 §3.1)",
    "implicit-mode": "binds configured prefixes without extensions (§1.4)",
    "tunneling-mode-request": "MN: sends the tunnelling mode extension when co-located (§3.1)",
    "tunneling-mode-honoured": "HA: tunnels to the co-located CoA when asked (§3.3.2 case 2)",
    "tunneling-mode-ignored": "HA: ignores the tunnelling mode extension (§3.3.2 MAY)",
    "colocated-coa": "MN: registers from a co-located care-of address",
    "gre": "GRE encapsulation (RFC 3344 G bit)",
    "udp-tunnelling": "RFC 3519 UDP tunnelling (§3.9)",
    "dynamic-delegation": "DHCPv6 prefix delegation over the HoA tunnel (§3.7.1)",
    "mld": "MLD over the HoA tunnel and multicast forwarding (§3.3.2, §3.3.3)",
    "dynamic-tunnel-mtu": "the dynamic tunnel MTU method of RFC 4213 §3.2 (OPTIONAL)",
    "reverse-tunnel": "FA: reverse tunnelling (RFC 3024)",
    "fa-registration-timeout": "FA: denies with code 78 a relayed request the HA never "
                               "answers (RFC 3344 §3.7.1)",
    "fa-ha-authentication": "FA: a mobility security association with the HA; Foreign-Home "
                            "Authentication extensions (RFC 3344 §3.5.4)",
}
ROLES = ("mn", "fa", "ha")


class ProfileError(YamlError):
    pass


class StateParseError(ValueError):
    """The device's state output could not be read: not the same as an empty table."""


@dataclass
class StateReader:
    command: str
    format: str = "json"  # json | regex
    path: str | None = None  # json: the key holding the list
    pattern: str | None = None  # regex: one named-group pattern per row
    empty: str | None = None  # regex: text that means "no rows"

    def parse(self, text: str) -> list[dict]:
        if self.format == "json":
            import json

            try:
                data = json.loads(text)
            except ValueError as exc:
                raise StateParseError(f"not JSON: {exc}: {text[:200]!r}") from exc
            if self.path == ".":
                data = [data] if isinstance(data, dict) else data
            elif self.path:
                for part in self.path.split("."):
                    if not isinstance(data, dict) or part not in data:
                        raise StateParseError(f"no key {self.path!r} in {text[:200]!r}")
                    data = data[part]
            if not isinstance(data, list):
                raise StateParseError(f"{self.path or 'the output'} is not a list")
            return data
        rows = [m.groupdict() for m in re.finditer(self.pattern, text, re.MULTILINE)]
        if rows:
            return rows
        if self.empty is not None and re.search(self.empty, text, re.MULTILINE):
            return []
        raise StateParseError(f"no row matched and no empty-table marker: {text[:200]!r}")


@dataclass
class Profile:
    path: str
    name: str
    role: str
    host: str
    start: str
    config_path: str | None = None
    config_template: str | None = None
    install: str | None = None
    stop: str | None = None
    reset: str | None = None
    health: str | None = None
    state: dict[str, StateReader] = field(default_factory=dict)
    log_path: str | None = None
    security_exception: str | None = None
    pics: dict[str, bool] = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    identity: dict = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)

    def claims(self, feature: str) -> bool:
        """Whether the PICS claims `feature`; `!feature` asks that it does not."""
        if feature.startswith("!"):
            return not self.claims(feature[1:])
        return bool(self.pics.get(feature, False))

    def claims_all(self, features) -> bool:
        return all(self.claims(f) for f in features)

    def render(self, text: str, params: dict) -> str:
        try:
            return Template(text).substitute({**self.parameters, **params})
        except KeyError as exc:
            raise ProfileError(self.path, "template", f"parameter ${exc.args[0]} is not "
                               f"defined (give it under parameters)") from exc

    def to_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "host": self.host, "pics": self.pics,
                **self.identity}


_KEYS = {"profile", "role", "host", "install", "config", "start", "stop", "reset", "health",
         "state", "logs", "pics", "parameters", "faults", "extends"}
# Under `extends`, these mappings merge key by key with the base; any other key replaces it.
_MERGED = ("profile", "pics", "parameters")


def _load_data(path: Path, chain: tuple = ()) -> dict:
    """The profile's mapping with its `extends` chain resolved: a device with a configuration
    variant (another PICS set) names its base profile and overrides what differs."""
    data = load_yaml(path, ProfileError)
    if not isinstance(data, dict) or "extends" not in data:
        return data
    base_path = (path.parent / str(data["extends"])).resolve()
    if base_path in chain or base_path == path.resolve():
        raise ProfileError(path, "extends", f"circular: {base_path} extends itself",
                           line_of(data))
    if not base_path.is_file():
        raise ProfileError(path, "extends", f"no such profile: {base_path}", line_of(data))
    base = _load_data(base_path, chain + (path.resolve(),))
    if not isinstance(base, dict):
        raise ProfileError(base_path, "$", "expected a mapping")
    merged = dict(base)
    for key, value in data.items():
        if key == "extends":
            continue
        if key in _MERGED and isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    data = _load_data(path)

    def fail(where, message, node=data):
        raise ProfileError(path, where, message, line_of(node))

    if not isinstance(data, dict):
        fail("$", "expected a mapping")
    for key in data:
        if key not in _KEYS:
            fail(key, f"unknown key; expected one of {sorted(_KEYS)}")
    for key in ("profile", "role", "host", "start"):
        if key not in data:
            fail(key, "missing")
    if data["role"] not in ROLES:
        fail("role", f"{data['role']!r}; expected one of {list(ROLES)}")
    meta = data["profile"]
    if not isinstance(meta, dict) or "name" not in meta:
        fail("profile.name", "missing")
    pics = data.get("pics") or {}
    for feature, value in pics.items():
        if feature not in PICS:
            fail(f"pics.{feature}", f"unknown PICS item; known: {sorted(PICS)}")
        if not isinstance(value, bool):
            fail(f"pics.{feature}", f"{value!r}: expected true or false")
    state = {}
    for name, spec in (data.get("state") or {}).items():
        if not isinstance(spec, dict) or "command" not in spec:
            fail(f"state.{name}.command", "missing")
        fmt = spec.get("format", "json")
        if fmt not in ("json", "regex"):
            fail(f"state.{name}.format", f"{fmt!r}; expected json or regex")
        if fmt == "regex":
            if "pattern" not in spec:
                fail(f"state.{name}.pattern", "missing for format regex")
            try:
                re.compile(spec["pattern"])
            except re.error as exc:
                fail(f"state.{name}.pattern", f"bad regular expression: {exc}")
        state[name] = StateReader(spec["command"], fmt, spec.get("path"), spec.get("pattern"),
                                  spec.get("empty"))
    config = data.get("config") or {}
    logs = data.get("logs") or {}
    if logs.get("security_exception"):
        try:
            re.compile(logs["security_exception"])
        except re.error as exc:
            fail("logs.security_exception", f"bad regular expression: {exc}")
    return Profile(path=str(path), name=str(meta["name"]), role=data["role"],
                   host=str(data["host"]), start=data["start"], config_path=config.get("path"),
                   config_template=config.get("template"), install=data.get("install"),
                   stop=data.get("stop"), reset=data.get("reset"), health=data.get("health"),
                   state=state, log_path=logs.get("path"),
                   security_exception=logs.get("security_exception"), pics=pics,
                   parameters=dict(data.get("parameters") or {}),
                   identity={k: v for k, v in meta.items()}, faults=list(data.get("faults")
                                                                         or []))


REFERENCE_PROFILES = Path(__file__).resolve().parents[2] / "fixtures" / "profiles"


def reference_configurations() -> dict[str, list[Profile]]:
    """role -> [the shipped reference profile, then its configuration variants (other PICS
    sets) from fixtures/profiles/variants/]."""
    out = {role: [load_profile(REFERENCE_PROFILES / f"reference-{role}.yaml")] for role in ROLES}
    for path in sorted((REFERENCE_PROFILES / "variants").glob("*.yaml")):
        profile = load_profile(path)
        out[profile.role].append(profile)
    return out


def claiming(configurations: dict[str, list[Profile]], role: str, pics) -> Profile | None:
    """The first configuration of `role` whose PICS claims every item of `pics`."""
    return next((p for p in configurations[role] if p.claims_all(pics)), None)


@functools.lru_cache(maxsize=None)
def reference_profile(role: str) -> Profile:
    """The shipped profile of the reference implementation in `role` (parsed once)."""
    return load_profile(REFERENCE_PROFILES / f"reference-{role}.yaml")
