"""The shipped Wireshark dissector (conformance/wireshark/dsmip4.lua) read through tshark: the
DSMIPv4 fields of each subtype, and a warning for a reserved field that is not zero."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest
from scapy.all import IP, UDP, PcapWriter

from conformance.codec import AuthExtension, PrefixReply, PrefixRequest, encode
from conformance.codec.messages import RegistrationReply, RegistrationRequest, TunnelingMode
from conformance.wireshark import LUA, install
from required_tools import require

pytestmark = pytest.mark.tshark
TSHARK = shutil.which("tshark")


def _require_tshark():
    require("tshark")


def _prefix(text: str) -> bytes:
    return ipaddress.IPv6Network(text, strict=False).network_address.packed


def _capture(tmp_path):
    key = {32: bytes(16)}
    request = RegistrationRequest(0, 1800, "203.0.113.10", "203.0.113.1", "203.0.113.70", 7,
                                  [PrefixRequest(64, _prefix("2001:db8:10:1::/64")),
                                   TunnelingMode(), AuthExtension(32, 256)])
    reply = RegistrationReply(0, 1800, "203.0.113.10", "203.0.113.1", 7,
                              [PrefixReply(1, 64, _prefix("2001:db8:10:1::/64")),
                               PrefixReply(8, 48, _prefix("2001:db8:20::/48"), reserved=5),
                               AuthExtension(32, 256)])
    path = tmp_path / "dsmip.pcap"
    writer = PcapWriter(str(path), linktype=101)  # raw IP
    for src, dst, message in (("203.0.113.70", "203.0.113.1", request),
                              ("203.0.113.1", "203.0.113.70", reply)):
        writer.write(IP(src=src, dst=dst) / UDP(sport=434, dport=434) / encode(message, key))
    writer.close()
    return path


def _fields(path, lua, *fields):
    done = subprocess.run([TSHARK, "-X", f"lua_script:{lua}", "-r", str(path), "-T", "fields",
                           "-E", "separator=|", *[a for f in fields for a in ("-e", f)]],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.split("|") for line in done.stdout.splitlines()]


def test_tshark_shows_the_rfc5454_fields(tmp_path):
    _require_tshark()
    rows = _fields(_capture(tmp_path), LUA, "dsmip4.subtype", "dsmip4.prefix",
                   "dsmip4.prefix_length", "dsmip4.code", "dsmip4.reserved",
                   "_ws.expert.message")
    request, reply = rows
    assert request[:3] == ["1,3", "2001:db8:10:1::", "64"]
    assert request[4] == "0x00"  # the tunnelling mode extension's reserved field
    assert reply[0] == "2,2" and reply[1] == "2001:db8:10:1::,2001:db8:20::"
    assert reply[2] == "64,48" and reply[3] == "1,8" and reply[4] == "0x00,0x05"
    assert "Reserved field is not zero" in reply[5] and "Reserved" not in request[5]


def test_the_installed_copy_is_the_shipped_one(tmp_path):
    path = install(tmp_path / "plugins")
    assert path.read_bytes() == LUA.read_bytes()


def test_on_the_suites_own_captures(tmp_path):
    """The captures a run leaves as evidence: the prefix reply's fields, and IPv6 in RFC 3519
    tunnel data named as such."""
    _require_tshark()
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--role", "ha",
                           "--case", "HA-3.3-003", "--case", "HA-3.9-001", "--out", str(out)],
                          capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = _fields(out / "evidence" / "HA-3.3-003" / "foreign.pcapng", LUA, "mip.type",
                   "dsmip4.subtype", "dsmip4.prefix", "dsmip4.prefix_length", "dsmip4.code")
    reply = next(r for r in rows if r[0] == "3")
    assert reply[1] == "2" and reply[2] == "2001:db8:10:1::" and reply[3] == "64"
    assert reply[4] == "0"
    rows = _fields(out / "evidence" / "HA-3.9-001" / "foreign.pcapng", LUA,
                   "dsmip4.tunnel.next_header", "dsmip4.tunnel.ipv6", "ipv6.dst")
    tunnelled = [r for r in rows if r[0]]
    assert tunnelled and all(r[0] == "41" and r[1] == "1" and r[2] for r in tunnelled)
