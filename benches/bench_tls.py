"""TLS 1.2 over loopback, ferrotls against the stdlib `ssl` module, same library at both ends.

Two processes: the client in the pytest process, the server in its own interpreter
(benches/tls_peers.py run as a script), so neither side's GIL throttles the other.

- bulk: 256 MiB from client to server as 1 MiB `sendall` calls; the server reads with 1 MiB
  `recv` calls until it has every byte, then acknowledges with one small record. One round is
  first `sendall` -> acknowledgement received (the handshake is in the untimed setup); one
  warm-up round, then FERROTLS_BENCH_BULK_ROUNDS. Suites AES128-GCM-SHA256 and AES128-SHA256
  (CBC; encrypt-then-MAC offered by both clients and accepted by both servers -- the summary
  shows what was negotiated, for the stdlib read from its ServerHello). MiB/s = 2**20 bytes/s.
- handshakes: full TLS 1.2 handshakes (RSA key exchange, RSA-2048 server key, AES128-GCM-SHA256,
  extended master secret), a new TCP connection each, no resumption (no tickets, no session
  reuse), the client verifying chain and hostname; ~2.5 s per library, one client handshake
  after the other (latency-bound: client and server work in turn). Handshakes/s = 1 / mean
  time of connect + handshake + close.

Besides the rates, each side's CPU time (user+sys) per GiB or per handshake and its minor page
faults per MiB are recorded: they are less sensitive to other load on the machine than
wall-clock rates. Both processes start with glibc malloc "warmed" (tls_peers.warm_allocator);
FERROTLS_BENCH_COLD_MALLOC=1 measures fresh-process allocator behaviour instead.

Run (about 20 seconds):

    /tmp/venvA/bin/python -m pytest benches/bench_tls.py -p no:cacheprovider \
        --benchmark-columns=min,median,mean,rounds --benchmark-sort=name

Environment: FERROTLS_BENCH_BULK_MIB (256), FERROTLS_BENCH_BULK_ROUNDS (3),
FERROTLS_BENCH_HS_SECONDS (2.5), FERROTLS_BENCH_COLD_MALLOC (unset). The summary at the end of
the session gives ferrotls, stdlib and the ratio ferrotls / stdlib, with the goals (reported,
never asserted: GCM >= 1.0x, CBC >= 0.9x, handshakes >= 0.7x), then the per-side costs.

Profiling one side: `python benches/tls_peers.py profile --help`.
"""

from __future__ import annotations

import os
import time

import pytest

import tls_peers

MIB = 1 << 20
BULK_BYTES = int(os.environ.get("FERROTLS_BENCH_BULK_MIB", "256")) * MIB
BULK_ROUNDS = int(os.environ.get("FERROTLS_BENCH_BULK_ROUNDS", "3"))
HS_SECONDS = float(os.environ.get("FERROTLS_BENCH_HS_SECONDS", "2.5"))
# openssl name -> (goal ratio, stated stdlib figure on this machine, MiB/s)
BULK_SUITES = {
    "AES128-GCM-SHA256": (1.0, 670),
    "AES128-SHA256": (0.9, 340),
    "ECDHE-RSA-AES128-GCM-SHA256": (1.0, 560),
    "ECDHE-RSA-CHACHA20-POLY1305": (1.0, 580),
}
# (openssl name, server mode) -> stated stdlib handshakes/s on this machine (None: not stated)
HS_CASES = {
    ("AES128-GCM-SHA256", "handshake"): 630,
    ("ECDHE-RSA-AES128-GCM-SHA256", "handshake"): 340,
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "handshake"): None,
    ("ECDHE-RSA-AES128-GCM-SHA256", "resume"): None,
}
HS_GOAL = 0.7
_ALLOCATOR: list[str] = []


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return tls_peers.make_pki(tmp_path_factory.mktemp("tls-pki"))


@pytest.fixture(scope="session")
def payload():
    return os.urandom(tls_peers.CHUNK)


@pytest.fixture(scope="session", autouse=True)
def _session(request):
    _ALLOCATOR.append("warmed (4 MiB block freed at start, both processes)" if tls_peers.warm_allocator()
                      else "cold (FERROTLS_BENCH_COLD_MALLOC)")  # see warm_allocator; the servers do the same
    request.config.pluginmanager.register(_Summary(), "ferrotls-bench-tls-summary")
    yield


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


@pytest.mark.parametrize("impl", tls_peers.IMPLS)
@pytest.mark.parametrize("cipher", list(BULK_SUITES))
def test_bulk(benchmark, pki, payload, impl, cipher):
    benchmark.group = f"bulk {cipher}: {BULK_BYTES // MIB} MiB client -> server"
    acks: list[dict] = []
    with tls_peers.ServerProcess(impl, "bulk", cipher, pki, BULK_BYTES) as server:
        client = tls_peers.Client(impl, cipher, pki)
        negotiated = client.negotiated(server.port)  # outside the timing

        def setup():
            return (client.connect(server.port),), {}

        def one_round(peer):
            acks.append(tls_peers.send_bulk(peer, payload, BULK_BYTES))

        def teardown(peer):
            peer.close()

        benchmark.pedantic(one_round, setup=setup, teardown=teardown, rounds=BULK_ROUNDS, warmup_rounds=1)

    assert all(a["received"] == BULK_BYTES for a in acks)  # correctness only, never timings
    timed = acks[-BULK_ROUNDS:]  # without the warm-up round
    gib, mib = BULK_BYTES / 2**30, BULK_BYTES / MIB
    benchmark.extra_info.update(
        kind="tls-bulk",
        impl=impl,
        cipher=cipher,
        bytes=BULK_BYTES,
        negotiated=negotiated["cipher"],
        etm=negotiated.get("etm"),
        ems=negotiated.get("ems"),
        receiver_mib_s=[round(mib / a["recv_s"], 1) for a in timed if a["recv_s"]],
        # per timed round, medians: CPU seconds per GiB and minor page faults per MiB of each side
        send_cpu_s_per_gib=_median([a["send_cpu_s"] / gib for a in timed]),
        recv_cpu_s_per_gib=_median([a["recv_cpu_s"] / gib for a in timed]),
        send_faults_per_mib=_median([a["send_faults"] / mib for a in timed]),
        recv_faults_per_mib=_median([a["recv_faults"] / mib for a in timed]),
    )


@pytest.mark.parametrize("impl", tls_peers.IMPLS)
@pytest.mark.parametrize("cipher,mode", list(HS_CASES), ids=lambda v: v)
def test_handshakes(benchmark, pki, impl, cipher, mode):
    resume = mode == "resume"
    what = "resumed with a session ticket" if resume else "full"
    benchmark.group = f"{what} handshakes {cipher}, new TCP connection each"
    with tls_peers.ServerProcess(impl, mode, cipher, pki) as server:
        client = tls_peers.Client(impl, cipher, pki, resume=resume)
        port = server.port
        negotiated = client.negotiated(port)
        # Warm up (imports, caches, the server's first connections) and size the run to ~HS_SECONDS.
        n, start = 0, time.perf_counter()
        while n < 20 or time.perf_counter() - start < 0.3:
            client.handshake(port)
            n += 1
        rate = n / (time.perf_counter() - start)
        rounds = max(50, int(HS_SECONDS * rate))
        cpu0 = time.process_time()
        resumed = []
        benchmark.pedantic(lambda: resumed.append(client.handshake(port)), rounds=rounds, iterations=1)
        client_cpu = (time.process_time() - cpu0) / rounds
    assert all(resumed) if resume else not any(resumed)  # what was measured, not how fast
    st = server.stats
    benchmark.extra_info.update(
        kind="tls-handshake",
        impl=impl,
        cipher=cipher,
        mode=mode,
        negotiated=negotiated["cipher"],
        ems=negotiated.get("ems"),
        client_cpu_ms=client_cpu * 1e3,
        # the server's CPU over its connections after the first (warm-up and probes included)
        server_cpu_ms=st["cpu_s"] / st["handshakes"] * 1e3 if st.get("handshakes") else None,
        server_connections=st.get("connections"),
    )


# --- the summary --------------------------------------------------------------------------------


def _fmt(x, spec=".0f"):
    return "-" if x is None else format(x, spec)


class _Summary:
    """Prints the comparison at the end of the session (registered by the `_session` fixture)."""

    @pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        bs = getattr(config, "_benchmarksession", None)
        rows: dict = {}
        for b in getattr(bs, "benchmarks", []):
            info = getattr(b, "extra_info", None) or {}
            if info.get("kind") not in ("tls-bulk", "tls-handshake"):
                continue
            stats = getattr(b, "stats", None)
            if not stats or stats.min <= 0:
                continue
            if info["kind"] == "tls-bulk":
                key = (0, f"bulk {info['cipher']}", "MiB/s")
                per = info["bytes"] / MIB
                vals = (per / stats.median, per / stats.min)  # MiB/s: median round, fastest round
            else:
                resumed = " resumed" if info.get("mode") == "resume" else ""
                key = (1, f"handshakes{resumed} {info['cipher']}", "hs/s")
                vals = (1.0 / stats.mean, 1.0 / stats.median)  # handshakes/s: throughput, 1/median
            rows.setdefault(key, {})[info["impl"]] = (vals, info)
        if not rows:
            return
        # The drop-in path (ferrotls.SSLContext behind ssl.SSLSocket) gets rows of its own.
        for (order, label, unit), row in list(rows.items()):
            if "ferrotls-ssl" in row:
                rows[(order, label + " (ssl API)", unit)] = {"ferrotls": row.pop("ferrotls-ssl"), "stdlib": row.get("stdlib")}
        tr = terminalreporter
        tr.write_sep("=", "ferrotls vs stdlib ssl: TLS 1.2 over loopback, client and server in two processes")
        tr.write_line(f"{'case':<29} {'unit':<6} {'ferrotls':>8} {'stdlib':>8} {'ratio':>6}   {'ferrotls':>8} {'stdlib':>8}"
                      f" {'ratio':>6}   {'goal':<14} negotiated: ferrotls | stdlib")
        tr.write_line(f"{'':<29} {'':<6} {'main':>8} {'main':>8} {'':>6}   {'alt':>8} {'alt':>8} {'':>6}")
        for (_, label, unit), row in sorted(rows.items()):
            f, s = row.get("ferrotls"), row.get("stdlib")
            ratio = f[0][0] / s[0][0] if f and s else None
            ratio_alt = f[0][1] / s[0][1] if f and s else None
            info = (f or s)[1]
            if unit == "MiB/s":
                goal, stated = BULK_SUITES.get(info["cipher"], (None, None))
            else:
                goal, stated = HS_GOAL, HS_CASES.get((info["cipher"], info.get("mode", "handshake")))
            verdict = "-" if ratio is None or goal is None else f">={goal:.1f}x {'met' if ratio >= goal else 'NOT met'}"
            tr.write_line(
                f"{label:<29} {unit:<6} {_fmt(f and f[0][0]):>8} {_fmt(s and s[0][0]):>8} {_fmt(ratio, '.2f'):>6}"
                f"   {_fmt(f and f[0][1]):>8} {_fmt(s and s[0][1]):>8} {_fmt(ratio_alt, '.2f'):>6}   {verdict:<14}"
                f" {_negotiated(f)} | {_negotiated(s)}"
            )
            if stated and s:
                tr.write_line(f"{'':<29} {'':<6} {'':>8} {f'(~{stated})':>8}  <- stated stdlib figure for this machine;"
                              f" measured {s[0][0] / stated:.2f}x of it")
        tr.write_line("main/alt: bulk = median round / fastest round; handshakes = 1/mean (throughput)"
                      " / 1/median.")
        tr.write_line("ratio = ferrotls / stdlib; goals reported, never asserted. Other load on the machine slows both;"
                      " compare ratios within one run, and the CPU costs below.")

        tr.write_line("")
        tr.write_line(f"{'cost per side':<29} {'unit':<22} {'ferrotls':>15} {'stdlib':>15}")
        for (_, label, unit), row in sorted(rows.items()):
            f, s = (row.get(i, (None, {}))[1] for i in ("ferrotls", "stdlib"))
            if unit == "MiB/s":
                cells = [("CPU s/GiB send / recv", "send_cpu_s_per_gib", "recv_cpu_s_per_gib", ".2f"),
                         ("page faults/MiB s / r", "send_faults_per_mib", "recv_faults_per_mib", ".0f")]
            else:
                cells = [("CPU ms/hs client / srv", "client_cpu_ms", "server_cpu_ms", ".2f")]
            for name, a, b, spec in cells:
                pair = lambda i: f"{_fmt(i.get(a), spec)} / {_fmt(i.get(b), spec)}" if i else "-"  # noqa: E731
                tr.write_line(f"{label:<29} {name:<22} {pair(f):>15} {pair(s):>15}")
        tr.write_line("CPU: user+sys of each process (sender = client, receiver = server), median of the timed rounds;"
                      " server CPU per handshake: all but its first connection.")
        tr.write_line(f"allocator: {_ALLOCATOR[0] if _ALLOCATOR else '?'}; page faults/MiB ~256 = every 1 MiB buffer"
                      " came fresh from the kernel.")


def _negotiated(entry) -> str:
    if not entry:
        return "-"
    info = entry[1]
    parts = [info.get("negotiated", "?")]
    if info.get("kind") == "tls-bulk" and "SHA256" in info.get("cipher", "") and "GCM" not in info.get("cipher", ""):
        parts.append("EtM" if info.get("etm") else ("MtE" if info.get("etm") is False else "EtM?"))
    if info.get("ems") is not None:
        parts.append("EMS" if info["ems"] else "no EMS")
    return " ".join(parts)
