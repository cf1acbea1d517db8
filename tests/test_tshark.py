"""Cross-check with an independent decoder: tshark reads generated messages as the codec does."""

import random
import shutil
import subprocess

import pytest

from conformance.codec import AuthExtension, LongExtension, TunnelData, decode, encode
from msggen import KEY, random_message
from required_tools import require

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.tshark
FIELDS = ["frame.number", "mip.type", "mip.flags", "mip.code", "mip.life", "mip.homeaddr",
          "mip.haaddr", "mip.coa", "mip.ext.type", "mip.ext.len", "mip.auth.spi",
          "mip.auth.auth", "mip.nattt.nexthdr", "_ws.malformed", "_ws.expert.severity"]


def _require_tshark():
    require("tshark")


def _expected(msg) -> dict:
    out = {"mip.type": str(msg.type)}
    if isinstance(msg, TunnelData):
        out["mip.nattt.nexthdr"] = str(msg.next_header)
        return out
    if msg.type == 1:
        out.update({"mip.flags": f"0x{msg.flags:02x}", "mip.coa": msg.care_of_address})
    else:
        out["mip.code"] = str(msg.code)
    out.update({"mip.life": str(msg.lifetime), "mip.homeaddr": msg.home_address,
                "mip.haaddr": msg.home_agent})
    types, lengths, spis, auths = [], [], [], []
    data = encode(msg)
    for i, ext in enumerate(msg.extensions):
        types.append(str(ext.type))
        end = msg.extensions[i + 1].offset if i + 1 < len(msg.extensions) else len(data)
        header = 4 if isinstance(ext, LongExtension) else 2
        lengths.append(str(end - ext.offset - header))
        if isinstance(ext, AuthExtension):
            spis.append(f"0x{ext.spi:08x}")
            auths.append(ext.authenticator.hex())
        elif isinstance(ext, LongExtension) and ext.type == 36:
            spis.append(f"0x{int.from_bytes(ext.body[:4], 'big'):08x}")
            auths.append(ext.body[4:].hex())
    out.update({"mip.ext.type": ",".join(types), "mip.ext.len": ",".join(lengths),
                "mip.auth.spi": ",".join(spis), "mip.auth.auth": ",".join(auths)})
    return out


def test_tshark_agrees_with_codec(tmp_path):
    _require_tshark()
    from conformance.scapy_layers import IP, UDP
    from scapy.utils import wrpcap

    rng = random.Random(5454)
    payloads = [encode(random_message(rng, dissectable=True), {32: KEY}) for _ in range(300)]
    pcap = tmp_path / "generated.pcap"
    wrpcap(str(pcap), [IP(src="203.0.113.65", dst="203.0.113.1") / UDP(sport=434, dport=434)
                       / p for p in payloads])
    cmd = [TSHARK, "-n", "-r", str(pcap), "-T", "fields", "-E", "occurrence=a",
           "-E", "aggregator=,", "-E", "separator=\t"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [dict(zip(FIELDS, line.split("\t"))) for line in out.splitlines()]
    assert len(rows) == len(payloads)
    mismatches = []
    for payload, row in zip(payloads, rows):
        msg = decode(payload)
        if row["_ws.malformed"] or row["_ws.expert.severity"]:
            mismatches.append(f"frame {row['frame.number']}: tshark calls it malformed "
                              f"({row['_ws.malformed']} {row['_ws.expert.severity']}): "
                              f"{payload.hex()}")
        for key, value in _expected(msg).items():
            if row[key] != value:
                mismatches.append(f"frame {row['frame.number']}: {key}: tshark {row[key]!r}, "
                                  f"codec {value!r}: {payload.hex()}")
    assert not mismatches, "\n".join(mismatches[:20])
