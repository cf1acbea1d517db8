"""Evidence captures as pcapng: every packet and timestamp of the classic pcap kept, the
comment naming the case and link readable by Wireshark's tools."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from scapy.all import IP, UDP, Ether, PcapWriter, rdpcap

from conformance.lab.pcapng import NotAPcap, to_pcapng


def _pcap(tmp_path, n=3):
    path = tmp_path / "in.pcap"
    writer = PcapWriter(str(path), linktype=1)
    for i in range(n):
        pkt = Ether() / IP(src="203.0.113.65", dst="203.0.113.1") / UDP(sport=434, dport=434) \
            / (bytes([1]) * (i + 1))
        pkt.time = 1795500000 + i + 0.123456
        writer.write(pkt)
    writer.close()
    return path


def test_packets_and_times_survive_and_the_comment_is_there(tmp_path):
    source = _pcap(tmp_path)
    out = tmp_path / "out.pcapng"
    out.write_bytes(to_pcapng(source.read_bytes(), "case HA-1, link transit", "transit",
                              "ha eth0"))
    before, after = rdpcap(str(source)), rdpcap(str(out))
    assert [bytes(p) for p in after] == [bytes(p) for p in before]
    assert [round(float(p.time), 6) for p in after] == [round(float(p.time), 6) for p in before]
    if shutil.which("capinfos"):
        info = subprocess.run(["capinfos", "-k", str(out)], capture_output=True, text=True)
        assert "case HA-1, link transit" in info.stdout


def test_an_empty_capture_is_a_valid_pcapng_and_garbage_is_refused(tmp_path):
    empty = _pcap(tmp_path, 0).read_bytes()
    data = to_pcapng(empty, "no traffic", "foreign")
    assert struct.unpack_from("<I", data)[0] == 0x0A0D0D0A
    assert len(rdpcap_bytes(tmp_path, data)) == 0
    with pytest.raises(NotAPcap):
        to_pcapng(b"not a capture at all", "x", "y")


def rdpcap_bytes(tmp_path, data):
    path = tmp_path / "x.pcapng"
    path.write_bytes(data)
    return rdpcap(str(path))


def test_each_packet_can_carry_the_step_it_belongs_to(tmp_path):
    if not shutil.which("tshark"):
        pytest.skip("tshark is not installed")
    source = _pcap(tmp_path)
    out = tmp_path / "steps.pcapng"
    out.write_bytes(to_pcapng(source.read_bytes(), "c", "transit",
                              packet_comment=lambda t: f"step {int(t) - 1795500000 + 1}"))
    done = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.comment"],
                          capture_output=True, text=True)
    assert done.stdout.split() == ["step", "1", "step", "2", "step", "3"]
