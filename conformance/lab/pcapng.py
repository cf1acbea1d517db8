"""Evidence captures as pcapng whose comments say what they are: a capture (tcpdump's or the
in-memory lab's classic pcap) rewritten with the case and the link in the section comment, the
interface named after the link, every packet kept with its timestamp (pcapng, IETF draft
draft-ietf-opsawg-pcapng: SHB, IDB, EPB blocks)."""

from __future__ import annotations

import struct

SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
OPT_END, OPT_COMMENT, SHB_USERAPPL, IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 0, 1, 4, 2, 3, 9
PCAP_MAGICS = {0xA1B2C3D4: ("<", 6), 0xD4C3B2A1: (">", 6),  # microsecond timestamps
               0xA1B23C4D: ("<", 9), 0x4D3CB2A1: (">", 9)}  # nanosecond timestamps


class NotAPcap(ValueError):
    pass


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _options(*pairs: tuple[int, bytes]) -> bytes:
    body = b"".join(_option(code, value) for code, value in pairs if value)
    return body + struct.pack("<HH", OPT_END, 0) if body else b""


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def packet_count(pcap: bytes) -> int:
    return len(pcap_packets(pcap)[3])


def pcap_packets(data: bytes):
    """(linktype, snaplen, tsresol digits, [(seconds, fraction, original length, bytes)])."""
    if len(data) < 24:
        raise NotAPcap("shorter than a pcap file header")
    magic = struct.unpack_from("<I", data)[0]
    if magic not in PCAP_MAGICS:
        raise NotAPcap(f"not a classic pcap file (magic {magic:#010x})")
    order, digits = PCAP_MAGICS[magic]
    _, _, _, _, snaplen, linktype = struct.unpack_from(order + "HHiIII", data, 4)
    packets, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from(order + "IIII", data, off)
        off += 16
        if off + incl > len(data):
            break  # a capture cut mid-packet (the capture was stopped): keep what is whole
        packets.append((sec, frac, orig, data[off:off + incl]))
        off += incl
    return linktype, snaplen, digits, packets


def to_pcapng(pcap: bytes, comment: str, link: str, link_description: str = "",
              application: str = "dsmip4-conformance", packet_comment=None) -> bytes:
    """`packet_comment(seconds)`, when given, names what each packet belongs to (the step of
    the case that was running when it was captured)."""
    linktype, snaplen, digits, packets = pcap_packets(pcap)
    out = [_block(SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _options(
               (OPT_COMMENT, comment.encode()), (SHB_USERAPPL, application.encode()))),
           _block(IDB, struct.pack("<HHI", linktype, 0, snaplen) + _options(
               (IF_NAME, link.encode()), (IF_DESCRIPTION, link_description.encode()),
               (IF_TSRESOL, bytes((digits,)))))]
    scale = 10 ** digits
    for sec, frac, orig, raw in packets:
        stamp = sec * scale + frac
        note = packet_comment(sec + frac / scale) if packet_comment else None
        out.append(_block(EPB, struct.pack("<IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF,
                                           len(raw), orig) + _pad(raw)
                          + (_options((OPT_COMMENT, note.encode())) if note else b"")))
    return b"".join(out)
