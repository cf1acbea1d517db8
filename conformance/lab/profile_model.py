"""The typed shape of a device profile (schemas/profile.schema.json is generated from it)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator, model_validator

from conformance.schema import Strict, regex

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
    "mldv2": "MN: its listener reports are MLDv2 (RFC 3810); without it, MLDv1 (RFC 2710), "
             "which §3.3.3 allows too",
    "dynamic-tunnel-mtu": "the dynamic tunnel MTU method of RFC 4213 §3.2 (OPTIONAL)",
    "reverse-tunnel": "FA: reverse tunnelling (RFC 3024)",
    "fa-registration-timeout": "FA: denies with code 78 a relayed request the HA never "
                               "answers (RFC 3344 §3.7.1)",
    "fa-ha-authentication": "FA: a mobility security association with the HA; Foreign-Home "
                            "Authentication extensions (RFC 3344 §3.5.4)",
}
ROLES = ("mn", "fa", "ha")
PicsItem = Literal[tuple(PICS)]  # type: ignore[valid-type]
# Row field types a state table's `rows:` may declare (checked on every row a parser returns).
ROW_TYPES = ("str", "int", "bool", "ipv4", "ipv6", "prefix", "list")
# The device actions a case may ask for, with their abstract arguments: each profile maps each
# one it supports to its device's way of doing it (a config change and restart, commands).
ACTIONS = {
    "restart": ((), "stop the device and start it again with its configuration"),
    "attach_fa": (("fa",), "MN: move to a foreign link and register through the FA at $fa"),
    "attach_colocated": (("care_of_address",), "MN: move to a foreign link and register "
                                               "from the co-located CoA $care_of_address"),
    "go_home": ((), "MN: return to the home link and deregister (RFC 3344 §3.6.1.1)"),
    "deregister": ((), "MN: deregister, lifetime 0, staying where it is"),
    "register": ((), "MN: register again from where it is (a re-registration)"),
    "join_group": (("group",), "MN: join the IPv6 multicast group $group (MLD, §3.3.3)"),
    "leave_group": (("group",), "MN: leave the IPv6 multicast group $group"),
}
ActionName = Literal[tuple(ACTIONS)]  # type: ignore[valid-type]
# Registration flags of RFC 3344 §3.3 the suite may set on the requests it sends.
FLAG_LETTERS = "SBDMGTrx"


class Meta(Strict):
    name: str = Field(min_length=1, description="the profile's name, shown in reports")
    vendor: str | None = None
    model: str | None = None
    version: str | int | float | None = None
    description: str | None = None


class ConfigFile(Strict):
    """The device's configuration: a file written on its host (path and template), or lines
    entered in configuration mode on a CLI device (lines), after each start."""

    path: str | None = Field(None, description="where the rendered template is written on "
                                               "the device host")
    template: str | None = Field(None, description="the device's configuration; $name from "
                                                   "parameters")
    lines: list[str] = Field(default_factory=list, description="CLI device: configuration-"
                                                               "mode lines; $name allowed")

    @model_validator(mode="after")
    def _one_form(self):
        if bool(self.path) != bool(self.template):
            raise ValueError("a configuration file needs both path and template")
        if not (self.template or self.lines):
            raise ValueError("give path and template, or lines (a CLI device)")
        return self


class Connection(Strict):
    """How the suite talks to a device whose only interface is an interactive CLI over SSH
    (netmiko): state, action and reset commands go there; install, start and stop (when
    given) still run on the device host's shell."""

    type: Literal["cli"] = "cli"
    device_type: str = Field("cisco_ios", description="a netmiko device type: how its "
                                                      "prompts, paging and config mode work")
    port: int = Field(22, ge=1, le=65535)
    username: str
    password: str | None = None
    secret: str | None = Field(None, description="the enable secret, if privileged mode "
                                                 "needs one")
    timeout: float = Field(20.0, gt=0, description="seconds to connect and per command")

    @field_validator("device_type")
    @classmethod
    def _known(cls, value):
        from netmiko.ssh_dispatcher import CLASS_MAPPER

        if value not in CLASS_MAPPER:
            from conformance.schema import closest

            guess = closest(value, CLASS_MAPPER)
            raise ValueError(f"{value!r} is not a netmiko device type"
                             + (f" (did you mean {guess!r}?)" if guess else ""))
        return value


class HealthProbe(Strict):
    """When the device is ready: exactly one of a command that exits 0, a TCP port that
    accepts a connection, a UDP port bound on the device host, or (an HA) a registration
    probe: the suite deregisters mn1 from its co-located CoA and any reply will do."""

    command: str | None = None
    tcp: int | None = Field(None, ge=1, le=65535, description="a port on the device host's "
                                                              "management address")
    udp: int | None = Field(None, ge=1, le=65535, description="a UDP port the device binds "
                                                              "(434 for an HA or FA)")
    registration: StrictBool | None = Field(None, description="HA: a registration request "
                                                              "from mn1 gets a reply")

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in ("command", "tcp", "udp", "registration")
                 if getattr(self, k) not in (None, False)]
        if len(given) != 1:
            raise ValueError("give exactly one of command, tcp, udp, registration")
        return self


class CopiedFile(Strict):
    """A file prepared on the controller, copied to the device host over SFTP before
    `install` runs: a lab without access to a package registry can still install."""

    source: str = Field(description="path on the controller; relative to the profile's folder")
    dest: str = Field(description="path on the device host ($workdir allowed)")
    mode: int = Field(0o644, ge=0, le=0o7777)


class StateTable(Strict):
    command: str = Field(description="prints the table on the device host")
    format: Literal["json", "regex", "textfsm"] = "json"
    path: str | None = Field(None, description="json: the dotted key holding the row list "
                                               "('.' for one object)")
    pattern: str | None = Field(None, description="regex: one named-group pattern per row")
    empty: str | None = Field(None, description="regex: text that means 'no rows'")
    template: str | None = Field(None, description="textfsm: the template file, relative to "
                                                   "the profile's folder")
    rows: dict[str, Literal[ROW_TYPES]] | None = Field(  # type: ignore[valid-type]
        None, description="the row schema: field -> type; every parsed row must satisfy it")

    @model_validator(mode="after")
    def _pattern(self):
        if (self.format == "textfsm") != bool(self.template):
            raise ValueError("format textfsm, and only it, takes a template")
        if self.format == "regex":
            if not self.pattern:
                raise ValueError("format regex needs a pattern")
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from None
            if self.rows:
                missing = sorted(set(self.rows) - set(compiled.groupindex))
                if missing:
                    raise ValueError(f"rows {missing} have no named group in the pattern")
        return self


class Logs(Strict):
    path: str | None = Field(None, description="the device's log file on its host")
    security_exception: str | None = Field(None, description="regular expression matching "
                                                             "the log line of a security "
                                                             "exception")

    _regex = field_validator("security_exception")(classmethod(lambda cls, value: regex(value)))


class MobileNode(Strict):
    """One mobile node the device knows (HA, FA) or is (MN): its mobility security
    association with the home agent (RFC 3344 §3.5)."""

    home_address: str
    spi: int = Field(ge=256, le=0xFFFFFFFF, description="SPIs 0-255 are reserved "
                                                        "(RFC 3344 §1.6)")
    key: str = Field(pattern=r"^([0-9a-fA-F]{2})+$", description="the shared key, in hex")
    algorithm: Literal["hmac-md5"] = Field("hmac-md5", description="RFC 3344 §5.1 default "
                                                                   "(the suite's only one)")

    @field_validator("home_address", mode="before")
    @classmethod
    def _ipv4(cls, value):
        try:
            return str(ipaddress.IPv4Address(str(value)))
        except ValueError:
            raise ValueError("expected an IPv4 home address") from None

    @field_validator("key", mode="before")
    @classmethod
    def _key_text(cls, value):
        return str(value)


class Pixit(Strict):
    """What the suite puts on the wire about this device (PIXIT): the credentials of the
    mobile nodes and the registration flags it requires."""

    mobile_nodes: dict[str, MobileNode] = Field(
        default_factory=dict, description="by name: mn1 is the first MN the cases use, mn2 "
                                          "the second")
    registration_flags: str = Field(
        "", pattern=f"^[{FLAG_LETTERS}]*$",
        description="flags (RFC 3344 §3.3: S B D M G T r x) set on every registration "
                    "request the suite sends, e.g. G for a device that requires GRE")



class DeviceAction(Strict):
    """How this device does one abstract action: parameters for its configuration template
    (then a restart), and/or commands run on its host (CLI lines on a CLI device). The
    action's arguments ($fa, $care_of_address, $group) may appear in both."""

    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="configuration parameters set before the restart")
    restart: StrictBool = Field(False, description="stop, reconfigure and start the device "
                                                   "(implied by params)")
    commands: list[str] = Field(default_factory=list, description="run in order on the "
                                                                  "device, after any restart")
    config: list[str] = Field(default_factory=list, description="CLI device: lines entered "
                                                                "in configuration mode")

    @model_validator(mode="after")
    def _does_something(self):
        if not (self.params or self.restart or self.commands or self.config):
            raise ValueError("an action needs params, restart, commands or config")
        return self


class ProfileModel(Strict):
    # start, unless the device is always on behind a CLI connection (_startable below)
    model_config = ConfigDict(**Strict.model_config, json_schema_extra={
        "anyOf": [{"required": ["start"]}, {"required": ["connection"]}]})

    profile: Meta
    role: Annotated[str, Field(description="mn, fa or ha (any case)")]
    host: str = Field(description="the testbed role whose host runs the device")
    extends: str | None = Field(None, description="a base profile this one overrides")
    files: list[CopiedFile] = Field(default_factory=list)
    install: str | None = None
    config: ConfigFile | None = None
    connection: Connection | None = Field(None, description="a CLI device: where its "
                                                            "command line is")
    start: str | None = Field(None, description="starts the device on its host (none: a "
                                                "device that is always on)")
    stop: str | None = None
    reset: str | None = Field(None, description="back to a clean state between cases; on a "
                                                "CLI device, CLI lines")
    health: str | HealthProbe | None = Field(None, description="when the device is ready: "
                                                               "a command, or a probe")
    state: dict[str, StateTable] = Field(default_factory=dict)
    logs: Logs | None = None
    pics: dict[PicsItem, StrictBool] = Field(default_factory=dict)
    pixit: Pixit = Field(default_factory=Pixit)
    actions: dict[ActionName, DeviceAction] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="how the device does each abstract action a case "
                                          "may ask for (restart is built in)")
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    faults: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _startable(self):
        if self.start is None and self.connection is None:
            raise ValueError("start is needed unless the device is always on behind a CLI "
                             "connection")
        return self

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value):
        role = str(value).lower()
        if role not in ROLES:
            raise ValueError(f"expected one of {list(ROLES)}")
        return role
