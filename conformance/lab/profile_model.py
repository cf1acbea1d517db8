"""The typed shape of a device profile (schemas/profile.schema.json is generated from it)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

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
# Registration flags of RFC 3344 §3.3 the suite may set on the requests it sends.
FLAG_LETTERS = "SBDMGTrx"


class Meta(Strict):
    name: str = Field(min_length=1, description="the profile's name, shown in reports")
    vendor: str | None = None
    model: str | None = None
    version: str | int | float | None = None
    description: str | None = None


class ConfigFile(Strict):
    path: str = Field(description="where the rendered template is written on the device host")
    template: str = Field(description="the device's configuration; $name from parameters")


class CopiedFile(Strict):
    """A file prepared on the controller, copied to the device host over SFTP before
    `install` runs: a lab without access to a package registry can still install."""

    source: str = Field(description="path on the controller; relative to the profile's folder")
    dest: str = Field(description="path on the device host ($workdir allowed)")
    mode: int = Field(0o644, ge=0, le=0o7777)


class StateTable(Strict):
    command: str = Field(description="prints the table on the device host")
    format: Literal["json", "regex"] = "json"
    path: str | None = Field(None, description="json: the dotted key holding the row list "
                                               "('.' for one object)")
    pattern: str | None = Field(None, description="regex: one named-group pattern per row")
    empty: str | None = Field(None, description="regex: text that means 'no rows'")
    rows: dict[str, Literal[ROW_TYPES]] | None = Field(  # type: ignore[valid-type]
        None, description="the row schema: field -> type; every parsed row must satisfy it")

    @model_validator(mode="after")
    def _pattern(self):
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



class ProfileModel(Strict):
    profile: Meta
    role: Annotated[str, Field(description="mn, fa or ha (any case)")]
    host: str = Field(description="the testbed role whose host runs the device")
    extends: str | None = Field(None, description="a base profile this one overrides")
    files: list[CopiedFile] = Field(default_factory=list)
    install: str | None = None
    config: ConfigFile | None = None
    start: str
    stop: str | None = None
    reset: str | None = None
    health: str | None = Field(None, description="a command that exits 0 when the device "
                                                 "is ready")
    state: dict[str, StateTable] = Field(default_factory=dict)
    logs: Logs | None = None
    pics: dict[PicsItem, StrictBool] = Field(default_factory=dict)
    pixit: Pixit = Field(default_factory=Pixit)
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    faults: list[str] = Field(default_factory=list)

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value):
        role = str(value).lower()
        if role not in ROLES:
            raise ValueError(f"expected one of {list(ROLES)}")
        return role
