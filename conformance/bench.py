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


def run(target: str, seconds: float = 1.0, check: bool = False, runs: int = 0) -> int:
    if target == "ha":
        result = bench_ha(seconds)
        return result if check or result > 1 else 0
    if target == "tunnel":
        return bench_tunnel(seconds)
    if target == "memory":
        return bench_memory(runs, check)
    if target == "soak":
        result = bench_soak()
        return result if check else 0
    if target == "lab":
        result = bench_lab()
        return result if check else 0
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


# ---------------------------------------------------------------------------- HA
HA_TARGET_RATE = 10_000  # registrations/s end to end over a UDP socket, one core
HA_TARGET_BYTES = 2048  # memory per binding


def _ha_with(n: int):
    """An HA engine with n mobile nodes, each registered with three prefixes."""
    import ipaddress

    from conformance.codec import AuthExtension, PrefixRequest, RegistrationRequest, encode
    from conformance.codec.ntp import ntp_time
    from conformance.nodes.ha import HAConfig, HomeAgent, MobileNodeEntry

    def hoa(i):
        return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"

    def prefixes(i):
        return [f"2001:db8:{i >> 8:x}:{(i & 255) << 8 | k:x}::/64" for k in range(3)]

    entries = [MobileNodeEntry(hoa(i), 1000 + i, SAMPLE_KEY, [ipaddress.IPv6Network(
        f"2001:db8:{i >> 8:x}:{(i & 255) << 8:x}::/56")]) for i in range(n)]
    ha = HomeAgent(HAConfig("192.0.2.1", entries, max_lifetime=3600, replay_window=60))

    def request(i, now):
        req = RegistrationRequest(0, 3600, hoa(i), "192.0.2.1", "198.51.100.1", ntp_time(now),
                                  [PrefixRequest.of(p) for p in prefixes(i)]
                                  + [AuthExtension(32, 1000 + i)])
        return encode(req, {32: SAMPLE_KEY})
    return ha, request


def _populated(n: int, measure_memory: bool):
    """(ha, request builder, bytes per binding or None) with n MNs registered."""
    import gc
    import tracemalloc

    ha, request = _ha_with(n)
    if measure_memory:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    now = time.time()
    for i in range(n):
        ha.receive_udp(request(i, now), "127.0.0.1", 0, now)
    per = None
    if measure_memory:
        per = (tracemalloc.get_traced_memory()[0] - base) / n
        tracemalloc.stop()
    if len(ha.bindings) != n:
        raise AssertionError(f"only {len(ha.bindings)} of {n} registrations were accepted")
    return ha, request, per


def _overlap_rate(ha, n: int, seconds: float) -> float:
    table = ha.table
    probe = [(64, (0x20010DB8 << 32 | (i >> 8) << 16 | ((i & 255) << 8 | 1)))
             for i in range(0, n, max(1, n // 1000))]
    j = [0]

    def one():
        length, value = probe[j[0] % len(probe)]
        j[0] += 1
        table.conflict(length, value, "nobody")
    return _rate(one, seconds)


def _serve(ha, sock, stop_after: int):
    """HA side of the UDP bench: receive, process, reply, until stop_after requests."""
    for _ in range(stop_after):
        data, (src, sport) = sock.recvfrom(2048)
        for action in ha.receive_udp(data, src, sport, time.time()):
            if type(action).__name__ == "SendUDP":
                sock.sendto(action.payload, (action.dst, action.dport))


def _udp_rate(ha, request, n_mns: int, count: int) -> float:
    import multiprocessing
    import socket

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    port = server.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_serve, args=(ha, server, count), daemon=True)
    proc.start()
    try:
        os_affinity(proc.pid, 0)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(5)
        # Pre-built requests with fresh identifications (timestamps the HA accepts).
        later = time.time() + 1
        payloads = [request(i % n_mns, later + i * 1e-6) for i in range(count)]
        window, sent, received = 32, 0, 0
        start = time.perf_counter()
        while received < count:
            while sent < count and sent - received < window:
                client.sendto(payloads[sent], ("127.0.0.1", port))
                sent += 1
            client.recv(2048)
            received += 1
        return count / (time.perf_counter() - start)
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


def os_affinity(pid: int, core: int) -> None:
    import os

    try:
        if len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(pid, {core})
    except (AttributeError, OSError):
        pass


def bench_ha(seconds: float) -> int:
    count = max(2000, int(20000 * seconds))
    print("HA bench: authenticated requests with three prefix requests (HMAC-MD5), one core")
    ok, per = True, None
    for n in (1_000, 100_000):
        ha, request, measured = _populated(n, measure_memory=n == 100_000)
        per = measured or per
        rate = _udp_rate(ha, request, n, count)
        overlap = _overlap_rate(ha, n, seconds / 2)
        met = rate >= HA_TARGET_RATE
        ok &= met
        print(f"  {n:>7,} MNs: {rate:>9,.0f} registrations/s over UDP "
              f"(target >= {HA_TARGET_RATE:,}: {'met' if met else 'MISSED'}); "
              f"prefix overlap check {overlap:>11,.0f}/s")
    met = per <= HA_TARGET_BYTES
    ok &= met
    print(f"  memory per binding at 100,000 MNs: {per:,.0f} bytes "
          f"(target <= {HA_TARGET_BYTES:,}: {'met' if met else 'MISSED'})")
    return 0 if ok else 1


# ---------------------------------------------------------------------------- tunnel
def bench_tunnel(seconds: float) -> int:
    """IPv6-in-IPv4 forwarding through the HA engine and adapter vs a bare raw-socket relay."""
    import ipaddress
    import os
    import socket

    from conformance.codec.packets import IPv6, addr6, ipv4_packet, parse_ipv4
    from conformance.nodes.actions import SendIPv4
    from conformance.nodes.ha import Binding, HAConfig, HomeAgent, MobileNodeEntry

    if os.geteuid() != 0:
        print("tunnel bench: needs root for raw sockets", file=sys.stderr)
        return 2
    ha = HomeAgent(HAConfig("127.0.0.1", [MobileNodeEntry("127.0.0.10", 1, SAMPLE_KEY, [
        ipaddress.IPv6Network("2001:db8:10::/48")])]))
    binding = Binding("127.0.0.10", "127.0.0.20", 1, 3600, time.time() + 3600, 0, True, False,
                      "ipip", ("127.0.0.20", 434), None, {(64, 0x20010DB80010_0001): "coa"})
    ha._install(binding, None)
    sink = socket.socket(socket.AF_INET, socket.SOCK_RAW, 41)  # drains what we send
    sink.setblocking(False)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    packet = IPv6(addr6("2001:db8:ff::1"), addr6("2001:db8:10:1::5"), 59, bytes(1000)).to_bytes()

    def drain():
        try:
            while True:
                sink.recv(65535)
        except BlockingIOError:
            pass

    def through_ha():
        for action in ha.receive_ipv6(packet, 0.0):
            if type(action) is SendIPv4:
                raw.sendto(action.packet, (parse_ipv4(action.packet).dst, 0))

    def bare():
        out = ipv4_packet("127.0.0.1", "127.0.0.20", 41, packet)
        raw.sendto(out, ("127.0.0.20", 0))

    rates = {}
    for name, fn in (("HA engine + adapter", through_ha), ("bare raw-socket relay", bare)):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(200):
                fn()
            count += 200
            drain()
        rates[name] = count / (time.perf_counter() - start)
    print("tunnel bench: 1040-byte IPv6 packets into IPv6-in-IPv4 (protocol 41), one core")
    for name, rate in rates.items():
        print(f"  {name:<22}: {rate:>10,.0f} packets/s")
    print(f"  HA path / bare relay : {rates['HA engine + adapter'] / rates['bare raw-socket relay']:.2f}")
    return 0


import sys  # noqa: E402


# ---------------------------------------------------------------------------- lab
LAB_TARGET_SECONDS = 3.0


def bench_lab(rounds: int = 3) -> int:
    """Built-in lab up, SSH connect (host keys checked) to every host, down."""
    from conformance.lab.builtin import BuiltinLab
    from conformance.lab.ssh import SSHHost
    from conformance.lab.testbed import load_testbed

    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        lab = BuiltinLab().up()
        try:
            up = time.perf_counter()
            testbed = load_testbed(lab.testbed_path)
            hosts = [SSHHost(spec).connect() for spec in testbed.hosts.values()]
            for host in hosts:
                host.run("true", 5, check=True)
                host.close()
            connected = time.perf_counter()
        finally:
            lab.down()
        done = time.perf_counter()
        times.append((up - start, connected - up, done - connected, done - start))
    best = min(times, key=lambda t: t[3])
    worst = max(t[3] for t in times)
    met = worst < LAB_TARGET_SECONDS
    print(f"lab bench: {rounds} rounds of built-in lab up + SSH to 4 hosts + down")
    print(f"  best : up {best[0]:.2f} s, connect {best[1]:.2f} s, down {best[2]:.2f} s, "
          f"total {best[3]:.2f} s")
    print(f"  worst total {worst:.2f} s (target < {LAB_TARGET_SECONDS:.0f} s: "
          f"{'met' if met else 'MISSED'})")
    return 0 if met else 1


# ---------------------------------------------------------------------------- in memory
MEMORY_TARGET_SECONDS = 20.0  # the whole suite, every role, against the reference in memory


def _memory_round(epoch: float) -> list[str]:
    """One whole-suite in-memory run at a simulated epoch: every verdict that is not PASS or
    NOT-APPLICABLE, as 'CASE VERDICT: message'."""
    from conformance.suite.inmemory import load_cases, run_in_memory

    records = run_in_memory(load_cases(), start=epoch)
    return [f"{r['id']} {r['verdict']}: {r['message'][:300]}" for r in records
            if r["verdict"] not in ("PASS", "NOT-APPLICABLE")]


def bench_memory(runs: int, check: bool) -> int:
    """The whole suite in memory once (timed), then `runs` more at different simulated epochs
    (the timestamps in identifications change every byte that depends on them): a verdict
    that changes between clean runs is a flaky case."""
    import multiprocessing
    import os
    import random

    started = time.perf_counter()
    bad = _memory_round(time.time())
    elapsed = time.perf_counter() - started
    met = elapsed <= MEMORY_TARGET_SECONDS
    print(f"in-memory suite, every role, reference devices: {elapsed:.1f} s "
          f"(target <= {MEMORY_TARGET_SECONDS:.0f} s: {'met' if met else 'MISSED'}); "
          f"non-PASS verdicts: {len(bad)}")
    for line in bad:
        print(f"  {line}")
    failures = len(bad)
    if runs:
        rng = random.Random()
        epochs = [time.time() + rng.uniform(-3e7, 3e7) for _ in range(runs)]
        started = time.perf_counter()
        with multiprocessing.Pool(max(1, os.cpu_count() or 1)) as pool:
            rounds = pool.map(_memory_round, epochs, chunksize=1)
        flaky = [(epoch, line) for epoch, lines in zip(epochs, rounds) for line in lines]
        failures += len(flaky)
        print(f"{runs} clean runs at random simulated epochs: "
              f"{sum(1 for r in rounds if r)} with a non-PASS verdict, {len(flaky)} non-PASS "
              f"verdicts in all ({time.perf_counter() - started:.0f} s)")
        for epoch, line in flaky[:20]:
            print(f"  epoch {epoch:.3f}: {line}  (again: dsmip4 run --memory "
                  f"--memory-epoch {epoch:.3f} --case {line.split()[0]})")
    return 1 if check and (failures or not met) else 0


# ---------------------------------------------------------------------------- soak
SOAK_RSS_TARGET = 5 * 1024 * 1024  # end within 5 MiB of start once the load stops


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def bench_soak(messages: int = 1_000_000, reregistrations: int = 100_000) -> int:
    """The reference HA and FA engines, with the node's logger, fed `messages` mixed valid
    and malformed messages (registrations, garbled and truncated requests, requests the FA
    relays and nobody answers, MLD reports full of unicast and multicast groups) and
    `reregistrations` re-registrations of one MN; RSS at start, at its peak, and at the end
    once every lifetime and pending deadline has passed."""
    import gc
    import ipaddress
    import os
    import random

    from conformance.adapters.runner import Logger
    from conformance.codec import AuthExtension, RegistrationRequest, encode
    from conformance.codec.mld import mldv2_report
    from conformance.codec.ntp import ntp_time
    from conformance.codec.packets import tunnel_link_local
    from conformance.codec.tunnel import encapsulate
    from conformance.nodes.actions import Event
    from conformance.nodes.fa import FAConfig, ForeignAgent
    from conformance.nodes.ha import HAConfig, HomeAgent, MobileNodeEntry

    ha_addr, fa_addr, coa = "192.0.2.1", "198.51.100.1", "198.51.100.70"
    hoas = [f"203.0.113.{10 + i}" for i in range(8)]
    ha = HomeAgent(HAConfig(ha_addr, [MobileNodeEntry(h, 256 + i, SAMPLE_KEY, [
        ipaddress.IPv6Network(f"2001:db8:{i + 1:x}::/48")]) for i, h in enumerate(hoas)],
        max_lifetime=600, replay_window=60))
    fa = ForeignAgent(FAConfig(fa_addr))
    log = Logger("soak", os.devnull)
    rng = random.Random(5454)
    now = 1_800_000_000.0

    def request(hoa, i, via=coa):
        return encode(RegistrationRequest(0, 600, hoa, ha_addr, via, ntp_time(now),
                                          [AuthExtension(32, 256 + i)]), {32: SAMPLE_KEY})

    def logged(actions):
        for action in actions:
            if isinstance(action, Event):
                log.write(action.name, action.level, **action.data)

    def mld_report():
        groups = [rng.getrandbits(128).to_bytes(16, "big") for _ in range(35)]
        groups += [b"\xff\x0e" + rng.getrandbits(112).to_bytes(14, "big") for _ in range(35)]
        report = mldv2_report(tunnel_link_local(hoas[0]), joins=groups)
        _, middle = encapsulate(report, True, hoas[0], ha_addr, "ipip")
        return encapsulate(middle, False, coa, ha_addr, "ipip")[1]

    def tick():
        logged(ha.handle_timer(now))
        logged(fa.handle_timer(now))

    logged(ha.receive_udp(request(hoas[0], 0), coa, 434, now))  # the MN the reports come from
    gc.collect()
    start_rss = peak = _rss()
    started = time.perf_counter()
    for n in range(reregistrations):
        now += 0.001
        logged(ha.receive_udp(request(hoas[1], 1), coa, 434, now))
        if n % 10_000 == 0:
            tick()
            peak = max(peak, _rss())
    valid = request(hoas[2], 2)
    for n in range(messages):
        now += 0.0001
        kind = n % 10
        if kind == 0:
            logged(ha.receive_udp(request(hoas[2 + n % 6], 2 + n % 6), coa, 434, now))
        elif kind <= 5:  # garbled: a byte changed, or cut short
            data = bytearray(valid)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            logged(ha.receive_udp(bytes(data[:rng.randrange(1, len(data) + 1)]), coa, 434,
                                  now))
        elif kind <= 7:  # relayed by the FA, never answered
            logged(fa.receive_udp(request(f"203.0.113.{64 + n % 50}", 0, fa_addr), coa,
                                  434, now))
        elif kind == 8:
            logged(ha.receive_ipv4(mld_report(), now))
        else:
            logged(fa.receive_udp(rng.randbytes(rng.randrange(1, 80)), coa, 434, now))
        if n % 10_000 == 0:
            tick()
            peak = max(peak, _rss())
    loaded = time.perf_counter() - started
    now += 3600  # the load has stopped: every lifetime and pending deadline passes
    tick()
    log.flush_suppressed()
    gc.collect()
    end_rss = _rss()
    ok = end_rss - start_rss <= SOAK_RSS_TARGET
    mib = 1024 * 1024
    print(f"soak bench: {messages:,} mixed messages and {reregistrations:,} re-registrations "
          f"in {loaded:.1f} s (reference HA and FA engines with the node logger)")
    print(f"  RSS start {start_rss / mib:7.1f} MiB   peak {peak / mib:7.1f} MiB   "
          f"end {end_rss / mib:7.1f} MiB")
    print(f"  end - start {(end_rss - start_rss) / mib:+.1f} MiB (target <= +5.0 MiB: "
          f"{'met' if ok else 'MISSED'})")
    print(f"  left: {len(ha.bindings)} bindings, {len(ha._timers)} HA timers, "
          f"{len(fa.pending)} pending requests, groups "
          f"{sum(len(b.groups) for b in ha.bindings.values())}")
    return 0 if ok else 1
