"""The typed shape of a reference node's configuration file (`dsmip4 ha|fa|mn --config FILE`):
schemas/node-config.schema.json is generated from it, and load_node_config checks a file
against it before reading its meaning (overlapping prefixes, key files, folders)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, TypeAdapter, model_validator

from conformance.schema import Strict


def _ipv4(value):
    if not isinstance(value, str):
        raise ValueError("expected an IPv4 address as text")
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


def _prefix(value):
    try:
        return str(ipaddress.IPv6Network(str(value), strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv6 prefix: {exc}") from None


def _within(low: int, high: int, message: str):
    def check(value):
        if not low <= (len(value) if isinstance(value, list) else value) <= high:
            raise ValueError(message)
        return value
    return AfterValidator(check)


IPv4 = Annotated[str, BeforeValidator(_ipv4)]
Prefix6 = Annotated[str, BeforeValidator(_prefix)]
# Ranges with the reader's own words (and RFC sections); the schema still states them.
Lifetime = Annotated[StrictInt, _within(1, 0xFFFF, "must be 1 to 65535 (the Lifetime field "
                                                   "has 16 bits, RFC 3344 §3.3)"),
                     Field(json_schema_extra={"minimum": 1, "maximum": 0xFFFF})]
Spi = Annotated[StrictInt, _within(0, 0xFFFFFFFF, "must fit in 32 bits (RFC 3344 §3.5.1)"),
                Field(json_schema_extra={"minimum": 0, "maximum": 0xFFFFFFFF})]
TunnelMtu = Annotated[StrictInt, Field(ge=1280, description="RFC 4213: at least 1280")]
LinkMtu = Annotated[StrictInt, Field(ge=1300, le=65535)]


class Runtime(Strict):
    """Adapter settings: where the node runs, not how the protocol behaves."""

    control_socket: str | None = None
    log: str | None = None
    tun: str | None = None
    tun_mtu: StrictInt = 1280
    multicast_interface: str | None = None
    install_routes: StrictBool = True
    interface: str | None = None
    foreign_interface: str | None = None


class _Keyed(Strict):
    """A mobility security association's key: exactly one of key (hex), key_file, key_env."""

    key: str | None = Field(None, description="the HMAC-MD5 key in hex")
    key_file: str | None = Field(None, description="a file holding the key in hex")
    key_env: str | None = Field(None, description="an environment variable holding it")

    @model_validator(mode="after")
    def _one_key(self):
        if sum(v is not None for v in (self.key, self.key_file, self.key_env)) != 1:
            raise ValueError("give exactly one of key, key_file, key_env")
        return self


class MobileNode(_Keyed):
    home_address: IPv4
    spi: Spi
    allowed_prefixes: list[Prefix6] = Field(default_factory=list)
    implicit_prefixes: list[Prefix6] = Field(default_factory=list)


class HomeAgent(_Keyed):
    address: IPv4
    spi: Spi


class HA(Strict):
    role: Literal["ha"]
    address: IPv4
    mobile_nodes: Annotated[list[MobileNode], _within(1, 1 << 30, "configure at least one "
                                                                  "mobile node"),
                            Field(json_schema_extra={"minItems": 1})]
    max_lifetime: Lifetime = 1800
    replay_window: float = Field(7.0, gt=0)
    dsmip: StrictBool = Field(True, description="false: a plain RFC 3344 home agent")
    gre: StrictBool = True
    ipip: StrictBool = True
    udp_tunnelling: StrictBool = True
    udp_keepalive: StrictInt = 110
    honour_tunneling_mode: StrictBool = True
    tunnel_mtu: TunnelMtu = 1280
    dynamic_tunnel_mtu: StrictBool = False
    link_mtu: LinkMtu = 1500
    max_groups: StrictInt = Field(64, gt=0)
    copy_dscp: StrictBool = True
    full_ecn: StrictBool = True
    delegation_pool: Prefix6 | None = None
    delegated_length: StrictInt = Field(56, le=128)
    home_ipv6: str | None = None
    faults: list[str] = Field(default_factory=list, description="self-test fault names")
    runtime: Runtime | None = None


class FA(Strict):
    role: Literal["fa"]
    address: IPv4
    home_agents: list[HomeAgent] = Field(default_factory=list)
    max_lifetime: Lifetime = 1800
    reverse_tunnel: StrictBool = True
    gre: StrictBool = True
    max_pending: StrictInt = Field(1024, gt=0)
    max_pending_per_mn: StrictInt = Field(8, gt=0)
    faults: list[str] = Field(default_factory=list)
    runtime: Runtime | None = None


class Attach(Strict):
    mode: Literal["home", "fa", "colocated"]
    fa: IPv4 | None = None
    care_of_address: IPv4 | None = None


class MN(_Keyed):
    role: Literal["mn"]
    home_address: IPv4
    home_agent: IPv4
    spi: Spi
    prefixes: list[Prefix6] = Field(default_factory=list)
    lifetime: Lifetime = 1800
    request_coa_tunnel: StrictBool = True
    dynamic_delegation: StrictBool = False
    reverse_tunnel: StrictBool = False
    gre: StrictBool = False
    udp_tunnelling: StrictBool = False
    groups: list[str] = Field(default_factory=list)
    implicit_prefixes: list[Prefix6] = Field(default_factory=list)
    tunnel_mtu: TunnelMtu = 1280
    dynamic_tunnel_mtu: StrictBool = False
    link_mtu: LinkMtu = 1500
    faults: list[str] = Field(default_factory=list)
    attach: Attach | None = None
    runtime: Runtime | None = None


MODELS = {"ha": HA, "fa": FA, "mn": MN}
NodeConfigFile = Annotated[Union[HA, FA, MN], Field(discriminator="role")]


def json_schema() -> dict:
    schema = TypeAdapter(NodeConfigFile).json_schema()
    schema.update({"$schema": "https://json-schema.org/draft/2020-12/schema",
                   "title": "dsmip4 reference node configuration",
                   "description": __doc__.split("\n\n")[0].replace("\n", " ")})
    return schema
