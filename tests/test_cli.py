"""The dsmip4 commands of the foundation: decode, requirements, bench codec."""

import json
import subprocess
import sys

from conformance.codec import AuthExtension, PrefixReply, PrefixRequest, RegistrationReply, encode
from conformance.bench import SAMPLE_KEY, sample_request


def dsmip4(*args):
    return subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True,
                          text=True, timeout=120)


def test_decode_request_with_valid_key():
    run = dsmip4("decode", sample_request().hex(), "--key", SAMPLE_KEY.hex())
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["message"] == "registration-request"
    assert out["home_address"] == "203.0.113.10" and out["lifetime"] == 1800
    assert out["auth"] == "valid"
    first = out["extensions"][0]
    assert (first["type"], first["subtype"], first["prefix_length"], first["prefix"]) == (
        152, 1, 48, "2001:db8:10::")


def test_decode_reply_shows_prefix_reply_code_and_invalid_auth():
    reply = RegistrationReply(0, 1800, "203.0.113.10", "203.0.113.1", 9, [
        PrefixReply.answering(PrefixRequest.of("2001:db8:10::/48"), 1), AuthExtension(32, 256)])
    run = dsmip4("decode", encode(reply, {32: SAMPLE_KEY}).hex(), "--key", "00" * 16)
    out = json.loads(run.stdout)
    assert out["message"] == "registration-reply" and out["auth"] == "invalid"
    assert out["extensions"][0]["code"] == 1 and out["extensions"][0]["subtype"] == 2


def test_decode_malformed_exits_2_with_one_line():
    data = sample_request()[:30]
    run = dsmip4("decode", data.hex())
    assert run.returncode == 2 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "offset 25" in lines[0] and "extensions[0].length" in lines[0]
    assert "RFC 3344 §1.9" in lines[0]


def test_decode_rejects_non_hex():
    run = dsmip4("decode", "zz")
    assert run.returncode == 2 and "not hex" in run.stderr


def test_requirements_json_and_plain():
    run = dsmip4("requirements", "--json")
    reqs = json.loads(run.stdout)
    ids = {r["id"] for r in reqs}
    assert "RFC5454-3.3-03" in ids and "RFC3344-1.9-01" in ids
    assert all({"id", "rfc", "section", "level", "roles", "text", "testable"} <= set(r)
               for r in reqs)
    plain = dsmip4("requirements").stdout
    assert "by level:" in plain and "by role:" in plain


def test_bench_codec_prints_its_figures():
    run = dsmip4("bench", "codec", "--seconds", "0.05")
    assert run.returncode == 0, run.stderr
    assert "msg/s" in run.stdout and "ratio codec/scapy" in run.stdout
