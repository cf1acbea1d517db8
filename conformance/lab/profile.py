"""Device-under-test profiles (YAML): how to install, configure, start, stop, reset and
observe one device in one role, and which optional features (PICS) it claims."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from conformance.lab.profile_model import PICS, ROLES, MobileNode, ProfileModel
from conformance.schema import validate
from conformance.yamlfile import LineDict, YamlError, line_of, load_yaml

__all__ = ["PICS", "ROLES", "Profile", "ProfileError", "StateParseError", "StateReader",
           "load_profile", "reference_profile"]

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
    rows: dict[str, str] | None = None  # the row schema: field -> type
    template: str | None = None  # textfsm: the template file's path

    def parse(self, text: str) -> list[dict]:
        table = self._parse(text)
        for i, row in enumerate(table):
            problem = row_problem(row, self.rows) if self.rows else None
            if problem:
                raise StateParseError(f"row {i + 1} does not match the table's row schema: "
                                      f"{problem}: {row!r}"[:400])
        return table

    def _parse(self, text: str) -> list[dict]:
        if self.format == "textfsm":
            return parse_textfsm(self.template, text)
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


def parse_textfsm(template: str, text: str) -> list[dict]:
    """Rows of `text` by a TextFSM template (the ntc-templates convention), keys lower case."""
    import textfsm

    try:
        with open(template) as handle:
            fsm = textfsm.TextFSM(handle)
        rows = fsm.ParseText(text)
    except OSError as exc:
        raise StateParseError(f"TextFSM template {template}: {exc.strerror}") from exc
    except (textfsm.TextFSMTemplateError, textfsm.TextFSMError) as exc:
        raise StateParseError(f"TextFSM template {template}: {exc}: {text[:200]!r}") from exc
    header = [name.lower() for name in fsm.header]
    return [dict(zip(header, row)) for row in rows]


def _is(kind: str, value) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return not isinstance(value, bool) and (isinstance(value, int) or (
            isinstance(value, str) and value.strip().lstrip("-").isdigit()))
    if kind == "bool":
        return isinstance(value, bool) or str(value).lower() in ("true", "false", "yes", "no")
    if kind == "list":
        return isinstance(value, list)
    parse = {"ipv4": ipaddress.IPv4Address, "ipv6": ipaddress.IPv6Address,
             "prefix": lambda v: ipaddress.ip_network(v, strict=False)}[kind]
    try:
        parse(str(value))
    except ValueError:
        return False
    return True


def row_problem(row, schema: dict[str, str]) -> str | None:
    """What is wrong with one parsed state row against its declared schema, or None."""
    if not isinstance(row, dict):
        return "not a mapping"
    for name, kind in schema.items():
        if name not in row:
            return f"no field {name!r}"
        if row[name] is not None and not _is(kind, row[name]):
            return f"field {name!r} is not {kind}"
    return None


@dataclass
class Profile:
    path: str
    name: str
    role: str
    host: str
    start: str | None
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
    mobile_nodes: dict[str, MobileNode] = field(default_factory=dict)
    registration_flags: str = ""
    files: list = field(default_factory=list)  # CopiedFile: copied before install
    connection: object | None = None  # Connection: a CLI device's command line
    config_lines: list[str] = field(default_factory=list)  # CLI configuration mode
    health_probe: object | None = None  # HealthProbe other than a command
    actions: dict = field(default_factory=dict)  # action name -> DeviceAction

    @property
    def profile_dir(self) -> str:
        return str(Path(self.path).resolve().parent)

    def template_vars(self) -> dict:
        """What $name may name in the profile's commands and templates: the PIXIT (mn1_spi,
        mn2_home_address, ..., registration_flags), profile_dir, then the parameters."""
        out = {"profile_dir": self.profile_dir, "registration_flags": self.registration_flags}
        for name, mn in self.mobile_nodes.items():
            out.update({f"{name}_home_address": mn.home_address, f"{name}_spi": mn.spi,
                        f"{name}_key": mn.key, f"{name}_algorithm": mn.algorithm})
        return {**out, **self.parameters}

    def provides(self, action: str) -> bool:
        """Whether the device can do `action`; restart needs only the lifecycle."""
        return action in self.actions or action == "restart"

    def claims(self, feature: str) -> bool:
        """Whether the PICS claims `feature`; `!feature` asks that it does not."""
        if feature.startswith("!"):
            return not self.claims(feature[1:])
        return bool(self.pics.get(feature, False))

    def claims_all(self, features) -> bool:
        return all(self.claims(f) for f in features)

    def render(self, text: str, params: dict) -> str:
        try:
            return Template(text).substitute({**self.template_vars(), **params})
        except KeyError as exc:
            raise ProfileError(self.path, "template", f"parameter ${exc.args[0]} is not "
                               f"defined (give it under parameters)") from exc

    def to_dict(self) -> dict:
        """Identity, PICS and PIXIT as a report shows them (keys masked: a certificate names
        which association was used, never its secret)."""
        pixit = {name: {"home_address": mn.home_address, "spi": mn.spi,
                        "algorithm": mn.algorithm, "key": _masked(mn.key)}
                 for name, mn in self.mobile_nodes.items()}
        parameters = {k: _masked(v) if "key" in k.lower() else v
                      for k, v in self.parameters.items()}
        return {"name": self.name, "role": self.role, "host": self.host, "pics": self.pics,
                **self.identity, "pixit": {"mobile_nodes": pixit,
                                           "registration_flags": self.registration_flags},
                "parameters": parameters}


def _masked(secret) -> str:
    text = str(secret)
    return f"(set, {len(text) // 2} bytes)" if text else "(none)"


# Under `extends`, these mappings merge key by key with the base; any other key replaces it.
_MERGED = ("profile", "pics", "parameters", "pixit", "actions")


def _merge(base: dict, over: dict) -> LineDict:
    """`over` on top of `base`, keeping where each key was written (for error positions)."""
    out = LineDict({**base, **over})
    out.line = getattr(over, "line", None)
    out.keys_at = {**(getattr(base, "keys_at", None) or {}),
                   **(getattr(over, "keys_at", None) or {})}
    out.values_at = {**(getattr(base, "values_at", None) or {}),
                     **(getattr(over, "values_at", None) or {})}
    return out


def _load_data(path: Path, chain: tuple = ()) -> tuple[dict, dict]:
    """The profile's mapping with its `extends` chain resolved (a device with a configuration
    variant names its base profile and overrides what differs), and the file each top-level
    key came from."""
    data = load_yaml(path, ProfileError)
    if not isinstance(data, dict):
        raise ProfileError(path, "$", "expected a mapping (profile:, role:, host:, start:, ...)",
                           line_of(data))
    sources = {key: path for key in data}
    if "extends" not in data:
        return data, sources
    base_path = (path.parent / str(data["extends"])).resolve()
    line = (data.values_at or {}).get("extends", (None, None))
    if base_path in chain or base_path == path.resolve():
        raise ProfileError(path, "extends", f"circular: {base_path} extends itself", *line)
    if not base_path.is_file():
        raise ProfileError(path, "extends", f"no such profile: {base_path}", *line,
                           hint="give the base profile's path, relative to this file")
    base, base_sources = _load_data(base_path, chain + (path.resolve(),))
    merged = _merge(base, data)
    del merged["extends"]
    for key, value in data.items():
        if key in _MERGED and isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value)
    return merged, {**base_sources, **{k: path for k in data if k != "extends"}}


def load_profile(path: str | Path) -> Profile:
    """A profile file, checked against its schema (schemas/profile.schema.json): the first
    problem is a ProfileError with file, line, column and a fix hint."""
    path = Path(path)
    data, sources = _load_data(path)
    try:
        model = validate(ProfileModel, data, path, ProfileError)
    except ProfileError as exc:
        top = re.split(r"[.\[]", exc.yaml_path)[0]
        where = sources.get(top, path)
        if Path(where) != path:
            raise ProfileError(where, exc.yaml_path, exc.message, exc.line, exc.column,
                               exc.hint) from None
        raise
    folder = path.resolve().parent
    state = {name: StateReader(spec.command, spec.format, spec.path, spec.pattern, spec.empty,
                               spec.rows, spec.template and str(folder / spec.template))
             for name, spec in model.state.items()}
    logs = model.logs
    health, probe = model.health, None
    if health is not None and not isinstance(health, str):
        health, probe = health.command, (None if health.command else health)
    return Profile(path=str(path), name=model.profile.name, role=model.role, host=model.host,
                   start=model.start, config_path=model.config and model.config.path,
                   config_template=model.config and model.config.template,
                   install=model.install, stop=model.stop, reset=model.reset,
                   health=health, health_probe=probe, state=state, log_path=logs and logs.path,
                   security_exception=logs and logs.security_exception,
                   pics=dict(model.pics), parameters=dict(model.parameters),
                   identity=model.profile.model_dump(exclude_none=True),
                   faults=list(model.faults), mobile_nodes=dict(model.pixit.mobile_nodes),
                   registration_flags=model.pixit.registration_flags, files=list(model.files),
                   actions=dict(model.actions), connection=model.connection,
                   config_lines=list(model.config.lines) if model.config else [])


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
