"""The typed shape of a testbed file (schemas/testbed.schema.json is generated from it).
Checks that need the file's folder (key files exist) stay in the loader."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StrictFloat, StrictInt, field_validator

from conformance.schema import Strict

Role = Literal["mn", "fa", "ha", "cn", "dut"]
Seconds = StrictInt | StrictFloat


class Pixit(Strict):
    reply_timeout: Seconds = Field(3.0, gt=0, description="seconds a step waits for an "
                                                          "expected message")
    negative_timeout: Seconds = Field(1.0, gt=0, description="seconds a step watches that "
                                                             "nothing arrives")
    registration_lifetime: StrictInt = Field(60, gt=0, le=65535, description="lifetime of "
                                             "the requests of cases that set none")
    ssh_timeout: Seconds = Field(10.0, gt=0)
    command_timeout: Seconds = Field(30.0, gt=0)


class Meta(Strict):
    name: str | None = None
    pixit: Pixit = Field(default_factory=Pixit)


class Management(Strict):
    address: str = Field(description="where the host's sshd listens")
    port: StrictInt = Field(22, ge=1, le=65535)
    user: str = "root"
    key_file: str | None = Field(None, description="private key, relative to the testbed")
    known_hosts: str = Field(description="host keys are always checked")
    password_env: str | None = Field(None, description="environment variable holding the "
                                                       "password (never the password)")
    passphrase_env: str | None = None

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value):
        try:
            return str(ipaddress.ip_address(str(value)))
        except ValueError:
            raise ValueError("expected an IP address") from None


class Interface(Strict):
    addresses: list[str] = Field(default_factory=list, description="ADDRESS/LENGTH each")
    link: str | None = None

    @field_validator("addresses", mode="before")
    @classmethod
    def _addresses(cls, value):
        values = value if isinstance(value, list) else [value]
        for a in values:
            try:
                ipaddress.ip_interface(str(a))
            except ValueError:
                raise ValueError(f"{a!r}: expected ADDRESS/LENGTH") from None
        return [str(a) for a in values]


class Host(Strict):
    management: Management
    roles: list[Role]
    interfaces: dict[str, Interface] = Field(default_factory=dict)
    python: str = "python3"
    workdir: str = "/tmp/dsmip4"

    @field_validator("roles", mode="before")
    @classmethod
    def _lower(cls, value):
        return [str(r).lower() for r in value] if isinstance(value, list) else value


# The addresses a case names ($ha, $coa, ...); by default each is taken from the interface
# addresses of the hosts (see conformance/suite/session.py); `addresses:` names them outright.
ADDRESS_NAMES = {
    "ha": "the HA's address (IPv4): where the MN registers",
    "fa": "the FA's address on the foreign link (IPv4)",
    "coa": "the MN's co-located care-of address (IPv4)",
    "cn6": "the correspondent node's IPv6 address",
    "ha_transit": "the HA's address on the transit link (IPv4)",
    "fa_transit": "the FA's address on the transit link (IPv4)",
    "ha6": "the HA's IPv6 address on the correspondent link",
}
AddressName = Literal[tuple(ADDRESS_NAMES)]  # type: ignore[valid-type]


def _ip_text(value) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


IPText = Annotated[str, BeforeValidator(_ip_text)]


class TestbedModel(Strict):
    __test__ = False
    testbed: Meta = Field(default_factory=Meta)
    hosts: dict[str, Host] = Field(min_length=1)
    addresses: dict[AddressName, IPText] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="addresses by name, overriding those taken from "
                                          "the hosts' interfaces (home addresses come from "
                                          "the device profile's PIXIT)")

    @field_validator("addresses", mode="before")
    @classmethod
    def _no_home_addresses(cls, value):
        if isinstance(value, dict) and {"hoa", "hoa2"} & set(value):
            raise ValueError("home addresses are the device profile's PIXIT "
                             "(pixit.mobile_nodes.mnN.home_address), not the testbed's")
        return value
    links: dict[str, list[str]] = Field(default_factory=dict)
    builtin: dict | None = Field(None, description="written by the built-in lab about itself")
