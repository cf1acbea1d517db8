"""Benchmarks that print their figures (`dsmip4 bench ...`)."""

from __future__ import annotations

import time

CODEC_TARGET_RATE = 100_000  # messages/s on one core
CODEC_TARGET_RATIO = 5.0  # times scapy's dissection rate of the same bytes
SAMPLE_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def sample_request() -> bytes:
    """A Registration Request with three prefix requests and an MN-HA extension."""
    from conformance.codec import AuthExtension, PrefixRequest, RegistrationRequest, encode

    request = RegistrationRequest(
        flags=RegistrationRequest.flags_of("T"), lifetime=1800, home_address="203.0.113.10",
        home_agent="203.0.113.1", care_of_address="203.0.113.65", identification=0x1234,
        extensions=[PrefixRequest.of("2001:db8:10::/48"), PrefixRequest.of("2001:db8:11::/48"),
                    PrefixRequest.of("2001:db8:12::/56"), AuthExtension(32, 256)])
    return encode(request, {32: SAMPLE_KEY})


def _rate(fn, seconds: float) -> float:
    """Calls per second of fn, measured in batches for at least `seconds`."""
    batch, count = 1000, 0
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        count += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def bench_codec(seconds: float) -> dict:
    from conformance.codec import decode, verify_authenticator

    data = sample_request()

    def ours():
        if not verify_authenticator(data, decode(data), SAMPLE_KEY):
            raise AssertionError("benchmark message failed authentication")

    ours()
    codec_rate = _rate(ours, seconds)
    from conformance.scapy_layers import MobileIP

    if len(MobileIP(data).extensions) != 4:
        raise AssertionError("scapy did not dissect the four extensions")
    scapy_rate = _rate(lambda: MobileIP(data), seconds)
    return {"message_bytes": len(data), "codec_rate": codec_rate, "scapy_rate": scapy_rate,
            "ratio": codec_rate / scapy_rate}


def run(target: str, seconds: float = 1.0, check: bool = False) -> int:
    if target != "codec":
        raise ValueError(target)
    r = bench_codec(seconds)
    ok_rate = r["codec_rate"] >= CODEC_TARGET_RATE
    ok_ratio = r["ratio"] >= CODEC_TARGET_RATIO
    print(f"codec bench: Registration Request, {r['message_bytes']} bytes, 3 prefix requests "
          f"+ MN-HA (HMAC-MD5), one core")
    print(f"  codec decode+auth : {r['codec_rate']:>12,.0f} msg/s   "
          f"(target >= {CODEC_TARGET_RATE:,}: {'met' if ok_rate else 'MISSED'})")
    print(f"  scapy dissect     : {r['scapy_rate']:>12,.0f} msg/s")
    print(f"  ratio codec/scapy : {r['ratio']:>12.1f} x     "
          f"(target >= {CODEC_TARGET_RATIO:.0f}x: {'met' if ok_ratio else 'MISSED'})")
    return 1 if check and not (ok_rate and ok_ratio) else 0
