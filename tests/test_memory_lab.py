"""The in-memory lab behaves as the built-in lab's hosts do, and fails as a lab would."""

from __future__ import annotations

import struct

from conformance.adapters.memory_net import MemoryNet, fragments6
from conformance.codec.packets import (
    IPv6, PROTO_UDP, addr6, checksum, ipv4_packet, parse_ipv4, udp_packet,
)
from conformance.nodes.ha import HomeAgent
from conformance.suite.inmemory import load_cases, run_in_memory

CASES = {c.id: c for c in load_cases()}


def test_a_router_on_the_path_lowers_the_ttl_and_keeps_the_checksum_valid():
    net = MemoryNet(start=1_790_000_000.0)
    packet = ipv4_packet("203.0.113.10", "203.0.113.1", PROTO_UDP,
                         udp_packet("203.0.113.10", "203.0.113.1", 434, 434, b"\x01"), ttl=9)
    net.originate("mn", packet)
    on_foreign = net.links["foreign"].packets[-1][2]
    on_transit = net.links["transit"].packets[-1][2]
    assert parse_ipv4(on_foreign).ttl == 9 and parse_ipv4(on_transit).ttl == 8
    assert checksum(on_transit[:20]) == 0


def test_an_ipv6_packet_above_the_mtu_leaves_in_fragments_that_rebuild_it():
    packet = IPv6(addr6("2001:db8:10:1::1"), addr6("2001:db8:ff::1"), 58, bytes(1308),
                  64).to_bytes()
    pieces = fragments6(packet, 1280, 7)
    assert len(pieces) == 2 and all(len(p) <= 1280 for p in pieces)
    rebuilt = b""
    for piece in pieces:
        assert piece[6] == 44
        offset_flags = struct.unpack_from("!H", piece, 42)[0]
        assert offset_flags & ~7 == len(rebuilt)
        rebuilt += piece[48:]
    assert rebuilt == packet[40:] and fragments6(packet, 1500, 7) == [packet]


def test_an_engine_that_raises_on_the_cases_request_is_a_crashed_device_and_a_fail(monkeypatch):
    """The device died answering what the case sent and the wire shows it (no reply): its
    FAIL, with the crash in the message and its last log lines in the evidence."""
    def explode(self, *args):
        raise ZeroDivisionError("planted")
    monkeypatch.setattr(HomeAgent, "receive_udp", explode)
    record = run_in_memory([CASES["HA-3.3-001"]])[0]
    assert record["verdict"] == "FAIL"
    assert "died" in record["message"] and "planted" in record["evidence"]["device_crash"]


def test_a_crash_no_check_shows_is_an_error(monkeypatch):
    """Died after every check passed: nothing on the wire ties it to the case, an ERROR."""
    from conformance.adapters.memory import MemoryDevice

    original = MemoryDevice.ensure_running

    def died_once_registered(self):
        if self.node is not None and getattr(self.node.engine, "bindings", None):
            return {"time": 0.0, "last_log": ["ZeroDivisionError: planted"]}
        return original(self)
    monkeypatch.setattr(MemoryDevice, "ensure_running", died_once_registered)
    record = run_in_memory([CASES["HA-3344-008[maximum]"]])[0]
    assert record["verdict"] == "ERROR"
    assert "died" in record["message"] and "planted" in record["message"]


def test_each_case_leaves_a_pcap_of_every_link(tmp_path):
    record = run_in_memory([CASES["HA-3.3-001"]], out=tmp_path)[0]
    pcap = tmp_path / "evidence" / "HA-3.3-001" / "transit.pcapng"
    assert record["verdict"] == "PASS" and pcap.exists()
    data = pcap.read_bytes()
    # pcapng: a section header whose comment names the case and the link, then packets.
    assert struct.unpack_from("<I", data)[0] == 0x0A0D0D0A
    assert b"case HA-3.3-001" in data[:400] and b"link transit" in data[:400]
    assert data.count(struct.pack("<I", 6)) >= 2  # enhanced packet blocks


def test_a_link_that_saw_nothing_leaves_no_file_but_is_recorded(tmp_path):
    record = run_in_memory([CASES["HA-3.3-001"]], out=tmp_path)[0]
    folder = tmp_path / "evidence" / "HA-3.3-001"
    assert record["evidence"]["silent_links"] == ["correspondent"]
    assert not list(folder.glob("correspondent.*"))
    assert all(path.stat().st_size > 200 for path in folder.glob("*.pcapng"))
