"""TLS 1.2 over loopback through the drop-in API: ferrotls against the stdlib `ssl`, same run.

What is measured is what the project's goals are stated in, nothing else. Both ends of every
connection run the same library, driven only through the standard API: `ssl.SSLSocket` (or asyncio
streams, i.e. `ssl.SSLObject`) from `ferrotls.SSLContext` or from the stdlib's `ssl.SSLContext`,
both limited to TLS 1.2 (benches/tls_peers.py builds both the same way). Two processes: the client
in this one, the server a fresh interpreter (tls_peers.py as a script). Every process runs with the
C library's default allocator, untouched.

- bulk (timed, pytest-benchmark): per round a new connection (handshake untimed, in the setup),
  then the client sends BULK_MIB (64) MiB as `sendall(write)` calls and the server reads them with
  `recv_into(read)`; a round is first byte sent -> the server's acknowledgement of the last byte
  received. ROUNDS (3) rounds, no warm-up round; MiB/s (2**20 bytes/s) from the median and from
  the fastest round. Writes of 16 KiB and 1 MiB, reads of 8 KiB and 1 MiB, every pairing (the rate
  is end to end, so a row is as fast as its slower side: the 2x2 grid shows which size costs);
  suites AES128-GCM-SHA256 (RSA key exchange), ECDHE-RSA-AES128-GCM-SHA256,
  ECDHE-RSA-CHACHA20-POLY1305, AES128-SHA256 (CBC; both clients offer encrypt-then-MAC, the summary
  shows what each pair negotiated, read off the ServerHello).
- asyncio streams (timed): `asyncio.open_connection(ssl=ctx)` writing 64 MiB as 64 KiB
  `write()` + `drain()`, an asyncio `start_server(ssl=ctx)` server reading with `read(64 KiB)`
  (64 KiB: the streams' own flow-control unit), ECDHE-RSA-AES128-GCM-SHA256, measured as bulk.
- memory (not timed, ECDHE-RSA-AES128-GCM-SHA256): the extra RSS of one 64 MiB `sendall` on the sender -- peak RSS during the
  call minus RSS before it, the payload already resident, in a fresh server process sending to this
  one; and the RSS per idle established connection -- a fresh process holding IDLE_CONNECTIONS
  (1000) established SSLSockets, (RSS - baseline) / N, the baseline taken after one connection
  has been opened and closed (so imports and other one-time costs are not counted per
  connection). Measured on both sides, each in its own fresh process (the client side by a
  `tls_peers.py hold` child). RSS read from /proc (Linux).
- handshakes (timed, goals in HS_GOALS): full TLS 1.2 handshakes on new TCP connections, no
  resumption, the client verifying chain and hostname; one case resumes with a session ticket.
  About HS_SECONDS (2) per library and case, sized by an untimed 0.3 s run; handshakes/s =
  1 / mean (throughput) and 1 / median.
- load_cert_chain (timed, goal: no slower than the stdlib): a new server SSLContext loading a
  PEM file with an RSA-3072 or ECDSA P-256 key and its certificate, 200 rounds each.

Nothing asserts on time or memory: the summary at the end of the session prints ferrotls, stdlib,
the ratio ferrotls / stdlib and the goal beside each, and whether it is met (from the medians).
The assertions check only that what was measured happened (the bytes arrived, the suite asked for
was negotiated, sessions resumed or not).

Run from the repository root (about 1.5 minutes on 2 cores; `pytest benches/`, about 2 minutes,
also runs the record and X.509 benchmarks):

    pytest benches/bench_tls.py

Environment: FERROTLS_BENCH_BULK_MIB (64), FERROTLS_BENCH_BULK_ROUNDS (3),
FERROTLS_BENCH_IDLE_CONNECTIONS (1000), FERROTLS_BENCH_HS_SECONDS (2).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import statistics
import time

import pytest

import tls_peers
from tls_peers import IMPLS, HoldProcess, ServerProcess

KIB, MIB = 1 << 10, 1 << 20
BULK_BYTES = int(os.environ.get("FERROTLS_BENCH_BULK_MIB", "64")) * MIB
ROUNDS = int(os.environ.get("FERROTLS_BENCH_BULK_ROUNDS", "3"))
IDLE_CONNECTIONS = int(os.environ.get("FERROTLS_BENCH_IDLE_CONNECTIONS", "1000"))
HS_SECONDS = float(os.environ.get("FERROTLS_BENCH_HS_SECONDS", "2"))

# openssl name -> goal for ferrotls / stdlib in bulk
BULK_GOALS = {
    "AES128-GCM-SHA256": 1.3,
    "ECDHE-RSA-AES128-GCM-SHA256": 1.3,
    "ECDHE-RSA-CHACHA20-POLY1305": 1.2,
    "AES128-SHA256": 1.0,
}
BULK_SIZES = [(w, r) for w in (16 * KIB, MIB) for r in (8 * KIB, MIB)]  # (sendall size, recv_into size)
ASYNC_SUITE, ASYNC_SIZE, ASYNC_GOAL = "ECDHE-RSA-AES128-GCM-SHA256", 64 * KIB, 1.0
MEMORY_SUITE = "ECDHE-RSA-AES128-GCM-SHA256"
SENDALL_BYTES, SENDALL_GOAL = 64 * MIB, 16 * MIB  # goal: extra RSS below 16 MiB
HS_CASES = [  # (suite, server mode)
    ("AES128-GCM-SHA256", "handshake"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "handshake"),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "handshake"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "resume"),
]
# goal for full handshakes/s and resumed ones (ferrotls / stdlib)
HS_GOALS = {
    ("AES128-GCM-SHA256", "handshake"): 1.3,
    ("ECDHE-RSA-AES128-GCM-SHA256", "handshake"): 1.5,
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "handshake"): 1.3,
    ("ECDHE-RSA-AES128-GCM-SHA256", "resume"): 2.0,
}
LOAD_KEYS = ("rsa3072", "ecdsa-p256")  # load_cert_chain goal: at most the stdlib's time

# What the tests measured, for the summary: (section, case...) -> impl -> {"value": ..., ...}
RESULTS: dict = {}


def _size(n: int) -> str:
    return f"{n // MIB}M" if n >= MIB else f"{n // KIB}K"


def _record(key: tuple, impl: str, value, **info) -> None:
    RESULTS.setdefault(key, {})[impl] = {"value": value, **info}


def _stats(benchmark):
    """pytest-benchmark's statistics of the timed rounds, or None (--benchmark-disable)."""
    stats = getattr(benchmark.stats, "stats", None) if benchmark.stats else None
    return stats if stats and stats.min > 0 else None


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return tls_peers.make_pki(tmp_path_factory.mktemp("tls-pki"))


@pytest.fixture(scope="session", autouse=True)
def _summary(request):
    request.config.pluginmanager.register(_Summary(), "ferrotls-bench-tls-summary")


# --- bulk over SSLSocket -----------------------------------------------------------------------


def send_bulk(ssock, payload: bytes, total: int):
    """sendall(payload) until `total` bytes are sent; returns (the count the server
    acknowledges, the sender's CPU seconds, the receiver's)."""
    started = time.process_time()
    for _ in range(total // len(payload)):
        ssock.sendall(payload)
    sender_cpu = time.process_time() - started
    line = b""
    while not line.endswith(b"\n"):
        data = ssock.recv(64)
        if not data:
            raise ConnectionError("the server closed before acknowledging")
        line += data
    count, receiver_cpu = line.split()
    return int(count), sender_cpu, float(receiver_cpu)


def _mib_per_second(benchmark):
    """MiB/s of a bulk benchmark: (at the median round, at the fastest round)."""
    stats = _stats(benchmark)
    return (BULK_BYTES / MIB / stats.median, BULK_BYTES / MIB / stats.min) if stats else None


def timed_rounds(benchmark, connect, one_round, close) -> None:
    """ROUNDS rounds of one_round(connection), each on a new connection made (and handshaken) by
    connect() and closed by close(connection) outside the timing."""
    benchmark.pedantic(one_round, setup=lambda: ((connect(),), {}), teardown=close, rounds=ROUNDS, iterations=1)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("write,read", BULK_SIZES, ids=lambda n: _size(n))
@pytest.mark.parametrize("suite", list(BULK_GOALS))
def test_bulk(benchmark, pki, impl, suite, write, read):
    benchmark.group = f"bulk {suite}, sendall {_size(write)} -> recv_into {_size(read)}"
    payload = os.urandom(write)
    acks = []
    with ServerProcess(impl, "bulk", suite, pki, nbytes=BULK_BYTES, read_size=read) as server:
        ctx = tls_peers.context(impl, False, suite, pki)
        info = tls_peers.negotiated(ctx, server.port)
        timed_rounds(benchmark, lambda: tls_peers.connect(ctx, server.port),
                     lambda ssock: acks.append(send_bulk(ssock, payload, BULK_BYTES)), lambda ssock: ssock.close())
    assert info["cipher"] == suite and acks and {count for count, _, _ in acks} == {BULK_BYTES}
    benchmark.extra_info.update(impl=impl, suite=suite, write=write, read=read, bytes=BULK_BYTES, **info)
    _record(("bulk", suite, write, read), impl, _mib_per_second(benchmark), negotiated=info)
    # CPU per MiB of each side (median over the rounds): steadier than wall time on a shared
    # machine, a diagnostic beside the throughput.
    per_mib = BULK_BYTES / MIB / 1000
    _record(("bulk-cpu", suite, write, read), impl, tuple(statistics.median(a[i] for a in acks) / per_mib for i in (1, 2)))


# --- bulk over asyncio streams (SSLObject) -------------------------------------------------------


async def _send_streams(stream, payload: bytes, total: int) -> int:
    reader, writer = stream
    for _ in range(total // len(payload)):
        writer.write(payload)
        await writer.drain()
    return int(await reader.readline())


async def _close_stream(stream) -> None:
    stream[1].close()
    try:
        await stream[1].wait_closed()
    except OSError:  # ssl.SSLError included: the server may close first
        pass


@pytest.mark.parametrize("impl", IMPLS)
def test_asyncio_bulk(benchmark, pki, impl):
    benchmark.group = f"asyncio streams {ASYNC_SUITE}, write {_size(ASYNC_SIZE)} -> read {_size(ASYNC_SIZE)}"
    payload = os.urandom(ASYNC_SIZE)
    acks = []
    loop = asyncio.new_event_loop()
    try:
        with ServerProcess(impl, "asyncio", ASYNC_SUITE, pki, nbytes=BULK_BYTES, read_size=ASYNC_SIZE) as server:
            ctx = tls_peers.context(impl, False, ASYNC_SUITE, pki)
            info = tls_peers.negotiated(ctx, server.port)

            def open_stream():
                return loop.run_until_complete(
                    asyncio.open_connection("127.0.0.1", server.port, ssl=ctx, server_hostname=tls_peers.HOSTNAME))

            timed_rounds(benchmark, open_stream,
                         lambda stream: acks.append(loop.run_until_complete(_send_streams(stream, payload, BULK_BYTES))),
                         lambda stream: loop.run_until_complete(_close_stream(stream)))
    finally:
        loop.close()
    assert info["cipher"] == ASYNC_SUITE and acks and set(acks) == {BULK_BYTES}
    benchmark.extra_info.update(impl=impl, suite=ASYNC_SUITE, write=ASYNC_SIZE, read=ASYNC_SIZE, bytes=BULK_BYTES, **info)
    _record(("asyncio", ASYNC_SUITE), impl, _mib_per_second(benchmark), negotiated=info)


# --- memory --------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_sendall_memory(pki, impl):
    """The server process sends SENDALL_BYTES in one sendall() and reports its extra peak RSS."""
    with ServerProcess(impl, "sendall", MEMORY_SUITE, pki, nbytes=SENDALL_BYTES) as server:
        with tls_peers.connect(tls_peers.context(impl, False, MEMORY_SUITE, pki), server.port) as ssock:
            buf, got = bytearray(MIB), 0
            while got < SENDALL_BYTES:
                n = ssock.recv_into(buf)
                assert n, f"the server closed after {got} bytes"
                got += n
            extra = server.report()["extra_rss"]
    _record(("sendall",), impl, extra / MIB)


@pytest.mark.parametrize("impl", IMPLS)
def test_idle_connection_memory(pki, impl):
    """IDLE_CONNECTIONS established connections, each side held (and measured) by a fresh process."""
    with ServerProcess(impl, "idle", MEMORY_SUITE, pki, connections=IDLE_CONNECTIONS) as server:
        with HoldProcess(impl, MEMORY_SUITE, pki, server.port, IDLE_CONNECTIONS) as client:
            for side, child in (("client", client), ("server", server)):
                _record(("idle", side), impl, child.report()["rss_per_connection"] / KIB)


# --- handshakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("suite,mode", HS_CASES, ids=lambda v: v)
def test_handshakes(benchmark, pki, impl, suite, mode):
    resume = mode == "resume"
    benchmark.group = f"{'resumed (session ticket)' if resume else 'full'} handshakes {suite}, new TCP connection each"
    resumed = []
    with ServerProcess(impl, mode, suite, pki) as server:
        ctx = tls_peers.context(impl, False, suite, pki, tickets=resume)
        info = tls_peers.negotiated(ctx, server.port)
        session = None
        if resume:
            with tls_peers.connect(ctx, server.port) as first:
                session = first.session

        def handshake():
            with tls_peers.connect(ctx, server.port, session) as ssock:
                resumed.append(ssock.session_reused)

        # Sizing, untimed: the rate over >= 0.3 s sets the number of rounds for ~HS_SECONDS.
        n, start = 0, time.perf_counter()
        while n < 10 or time.perf_counter() - start < 0.3:
            handshake()
            n += 1
        rounds = max(50, int(HS_SECONDS * n / (time.perf_counter() - start)))
        benchmark.pedantic(handshake, rounds=rounds, iterations=1)
    assert info["cipher"] == suite and all(r == resume for r in resumed)
    benchmark.extra_info.update(impl=impl, suite=suite, mode=mode, **info)
    stats = _stats(benchmark)
    _record(("handshake", suite, mode), impl, (1 / stats.mean, 1 / stats.median) if stats else None, negotiated=info)


# --- load_cert_chain ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def load_files(tmp_path_factory):
    """PEM files holding a private key and its self-signed certificate, per entry of LOAD_KEYS."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    directory = tmp_path_factory.mktemp("load")
    now = datetime.datetime.now(datetime.timezone.utc)
    files = {}
    for name, key in (("rsa3072", rsa.generate_private_key(65537, 3072)), ("ecdsa-p256", ec.generate_private_key(ec.SECP256R1()))):
        subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, tls_peers.HOSTNAME)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .sign(key, hashes.SHA256()))
        path = directory / f"{name}.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
        files[name] = str(path)
    return files


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("key", LOAD_KEYS)
def test_load_cert_chain(benchmark, load_files, impl, key):
    benchmark.group = f"load_cert_chain {key}"
    cls = tls_peers.context_class(impl)

    def load():
        cls(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(load_files[key])

    benchmark.pedantic(load, rounds=200, iterations=1, warmup_rounds=0)
    stats = _stats(benchmark)
    _record(("load", key), impl, (stats.median * 1e3, stats.min * 1e3) if stats else None)


# --- the summary ---------------------------------------------------------------------------------


def _fmt(x, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def _negotiated(info) -> str:
    if not info:
        return "-"
    cbc = "GCM" not in info["cipher"] and "CHACHA" not in info["cipher"]
    return " ".join([info["cipher"], *(["EtM" if info["etm"] else "MtE"] if cbc else []),
                     "EMS" if info["ems"] else "no EMS"])


class _Summary:
    """Prints the comparison at the end of the session (registered by the `_summary` fixture)."""

    @pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
    def pytest_terminal_summary(self, terminalreporter):
        if not RESULTS:
            return
        tr = terminalreporter
        tr.write_sep("=", "ferrotls vs stdlib ssl: TLS 1.2 over loopback, drop-in API at both ends, two processes")
        import ferrotls

        tr.write_line(f"ferrotls from {os.path.dirname(ferrotls.__file__)}")
        tuned = sorted(k for k in os.environ if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD")))
        tr.write_line("allocator: the C library's default" if not tuned else
                      f"WARNING: {', '.join(tuned)} set: these are not default-allocator figures")
        tr.write_line("ratio = ferrotls / stdlib; goals are reported, never asserted; 'met' is judged on the median.")
        self._rates(tr)
        self._memory(tr)
        self._handshakes(tr)
        self._loads(tr)

    @staticmethod
    def _rate_row(tr, label: str, row: dict, goal: float | None) -> None:
        f, s = (row.get(impl, {}).get("value") for impl in IMPLS)
        ratios = [f[i] / s[i] if f and s else None for i in (0, 1)]
        verdict = "" if goal is None else f">= {goal:.1f}x" + ("" if ratios[0] is None else
                                                               (" met" if ratios[0] >= goal else " NOT met"))
        tr.write_line(f"{label:<44} {_fmt(f and f[0]):>7} {_fmt(f and f[1]):>6} {_fmt(s and s[0]):>7}"
                      f" {_fmt(s and s[1]):>6} {_fmt(ratios[0], '.2f'):>7} {_fmt(ratios[1], '.2f'):>6}   {verdict}")

    @staticmethod
    def _rate_header(tr, title: str, unit: str, columns=("median", "best")) -> None:
        tr.write_line("")
        tr.write_line(title)
        tr.write_line(f"{unit:<44} {'ferrotls':>14} {'stdlib':>14} {'ratio':>14}   goal")
        tr.write_line(f"{'':<44}" + f" {columns[0]:>7} {columns[1]:>6}" * 3)

    def _rates(self, tr) -> None:
        bulk = sorted((k for k in RESULTS if k[0] == "bulk"), key=lambda k: (list(BULK_GOALS).index(k[1]), k[2], k[3]))
        if bulk:
            self._rate_header(tr, f"bulk: client sendall(write) -> server recv_into(read), {BULK_BYTES // MIB} MiB a round,"
                                  f" first byte sent -> acknowledgement; {ROUNDS} rounds: median and fastest",
                              "MiB/s (2^20 bytes/s)   suite, write -> read")
            for key in bulk:
                self._rate_row(tr, f"{key[1]:<29} {_size(key[2]):>4} -> {_size(key[3]):<4}", RESULTS[key], BULK_GOALS[key[1]])
        cpu = sorted((k for k in RESULTS if k[0] == "bulk-cpu"), key=lambda k: (list(BULK_GOALS).index(k[1]), k[2], k[3]))
        if cpu:
            self._rate_header(tr, "bulk, diagnostic: CPU milliseconds per MiB of each process (median round); ratio = stdlib / ferrotls",
                              "ms/MiB                 suite, write -> read", columns=("send", "recv"))
            for key in cpu:
                f, s = (RESULTS[key].get(impl, {}).get("value") for impl in IMPLS)
                ratios = [s[i] / f[i] if f and s and f[i] else None for i in (0, 1)]
                tr.write_line(f"{key[1]:<29} {_size(key[2]):>4} -> {_size(key[3]):<4}   "
                              f" {_fmt(f and f[0], '.3f'):>7} {_fmt(f and f[1], '.3f'):>6} {_fmt(s and s[0], '.3f'):>7}"
                              f" {_fmt(s and s[1], '.3f'):>6} {_fmt(ratios[0], '.2f'):>7} {_fmt(ratios[1], '.2f'):>6}")
        for key in (k for k in RESULTS if k[0] == "asyncio"):
            self._rate_header(tr, f"asyncio streams: open_connection(ssl=) write+drain {_size(ASYNC_SIZE)} -> start_server(ssl=)"
                                  f" read({_size(ASYNC_SIZE)}), {BULK_BYTES // MIB} MiB a round; {ROUNDS} rounds", "MiB/s")
            self._rate_row(tr, key[1], RESULTS[key], ASYNC_GOAL)
        self._negotiated(tr, bulk + [k for k in RESULTS if k[0] == "asyncio"])

    @staticmethod
    def _memory(tr) -> None:
        rows = [(("sendall",), f"extra RSS of one {SENDALL_BYTES // MIB} MiB sendall, sender, MiB",
                 lambda f, s: f"< {SENDALL_GOAL // MIB} MiB" + ("" if f is None else (" met" if f < SENDALL_GOAL / MIB else " NOT met")))]
        for side in ("client", "server"):
            rows.append((("idle", side), f"RSS per idle connection ({IDLE_CONNECTIONS}), {side}, KiB",
                         lambda f, s: "<= stdlib" + ("" if f is None or s is None else (" met" if f <= s else " NOT met"))))
        rows = [r for r in rows if r[0] in RESULTS]
        if not rows:
            return
        tr.write_line("")
        tr.write_line(f"memory ({MEMORY_SUITE}; RSS of a fresh process, /proc)")
        tr.write_line(f"{'':<44} {'ferrotls':>14} {'stdlib':>14} {'ratio':>14}   goal")
        for key, label, goal in rows:
            f, s = (RESULTS[key].get(impl, {}).get("value") for impl in IMPLS)
            ratio = f / s if f is not None and s else None
            tr.write_line(f"{label:<44} {_fmt(f, '.1f'):>14} {_fmt(s, '.1f'):>14} {_fmt(ratio, '.2f'):>14}   {goal(f, s)}")

    def _handshakes(self, tr) -> None:
        keys = [k for k in RESULTS if k[0] == "handshake"]
        if not keys:
            return
        self._rate_header(tr, "handshakes, TLS 1.2, a new TCP connection each, client verifying chain and hostname",
                              "handshakes/s", ("1/mean", "1/med"))
        for key in keys:
            label = f"{'resumed' if key[2] == 'resume' else 'full'} {key[1]}"
            self._rate_row(tr, label, RESULTS[key], HS_GOALS.get(key[1:]))
        self._negotiated(tr, keys)

    @staticmethod
    def _loads(tr) -> None:
        keys = [k for k in RESULTS if k[0] == "load"]
        if not keys:
            return
        tr.write_line("")
        tr.write_line("load_cert_chain (a new SSLContext each), ms; ratio = ferrotls time / stdlib time")
        tr.write_line(f"{'key':<44} {'ferrotls':>14} {'stdlib':>14} {'ratio':>14}   goal")
        tr.write_line(f"{'':<44}" + f" {'median':>7} {'best':>6}" * 3)
        for key in keys:
            f, s = (RESULTS[key].get(impl, {}).get("value") for impl in IMPLS)
            ratio = f[0] / s[0] if f and s else None
            verdict = "<= 1.0x" + ("" if ratio is None else (" met" if ratio <= 1.0 else " NOT met"))
            tr.write_line(f"{key[1]:<44} {_fmt(f and f[0], '.3f'):>7} {_fmt(f and f[1], '.3f'):>6}"
                          f" {_fmt(s and s[0], '.3f'):>7} {_fmt(s and s[1], '.3f'):>6}"
                          f" {_fmt(ratio, '.2f'):>7} {_fmt(f and s and f[1] / s[1], '.2f'):>6}   {verdict}")

    @staticmethod
    def _negotiated(tr, keys) -> None:
        """One line per suite of `keys` (section, suite, ...): what each library's pair negotiated."""
        by_suite = {}
        for key in keys:
            by_suite.setdefault(key[1], RESULTS[key])
        if by_suite:
            tr.write_line("negotiated (ferrotls | stdlib):")
        for suite, row in by_suite.items():
            tr.write_line(f"  {suite:<29} " + " | ".join(_negotiated(row.get(impl, {}).get("negotiated")) for impl in IMPLS))
