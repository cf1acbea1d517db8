"""The typed shape of a testbed file (schemas/testbed.schema.json is generated from it).
Checks that need the file's folder (key files exist) stay in the loader."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, StrictFloat, StrictInt, field_validator

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


class TestbedModel(Strict):
    __test__ = False
    testbed: Meta = Field(default_factory=Meta)
    hosts: dict[str, Host] = Field(min_length=1)
    links: dict[str, list[str]] = Field(default_factory=dict)
    builtin: dict | None = Field(None, description="written by the built-in lab about itself")
