"""NTP timestamps as Mobile IPv4 identifications (RFC 3344 §5.7.1)."""

from __future__ import annotations

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


def ntp_time(now: float) -> int:
    """64-bit NTP timestamp for a Unix time: seconds in the high 32 bits (RFC 3344 §5.7.1)."""
    seconds = int(now) + NTP_EPOCH_OFFSET
    fraction = int((now - int(now)) * (1 << 32)) & 0xFFFFFFFF
    return (seconds & 0xFFFFFFFF) << 32 | fraction


def ntp_seconds(identification: int) -> int:
    return identification >> 32
