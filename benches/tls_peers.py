"""Both ends of a TLS 1.2 connection over loopback, for benches/bench_tls.py: ferrotls
(protocol.Connection + engine.SocketEngine) or the stdlib `ssl` module, same library at both ends.

The server runs in its own interpreter (this file as a script, started by `ServerProcess`), so
neither side's GIL throttles the other; the client runs in the calling process.

    server: python benches/tls_peers.py serve --impl ferrotls --mode bulk --cipher AES128-GCM-SHA256 \
                --cert leaf.pem --key leaf.key --ec-cert ec.pem --ec-key ec.key [--nbytes N] [--profile out.prof]
            prints "PORT <n>" on stdout once listening, then serves until SIGTERM/SIGINT.

Modes:
  bulk       per connection: handshake, read application data (recv with 1 MiB buffers) until
             `nbytes` have arrived, reply with one JSON line (negotiated suite, EtM, EMS, the
             receiver's elapsed time, CPU time and minor page faults), then read until the
             client closes. A connection that sends nothing is a probe and just closed.
  handshake  per connection: full handshake, then close (no close_notify, no data).

Neither side resumes: ferrotls TLSConfig(session_tickets=False, session_cache=None); stdlib
OP_NO_TICKET on both contexts and the client never passes a session (OpenSSL's server-side
session cache stays on, there is no stdlib switch for it, but nothing ever looks a session up).

At SIGTERM the server prints "STATS {json}" (connections, handshakes, CPU seconds, page faults
after its first connection); ServerProcess.stats holds it after the `with` block.

Profiling (not used by the benchmark):
  python benches/tls_peers.py profile --impl ferrotls --mode bulk --cipher AES128-SHA256 \
      [--profiler cprofile|pyinstrument] --client-profile /tmp/c.prof --server-profile /tmp/s.prof
  python benches/tls_peers.py profile --impl ferrotls --mode handshake --seconds 4 ...
runs one server (profiled when --server-profile is given) and a client loop (profiled when
--client-profile is given), then prints rates, CPU per GiB / per handshake and page faults.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

CHUNK = 1 << 20  # one sendall / recv buffer
HOSTNAME = "localhost"
# ferrotls: protocol.Connection + engine.SocketEngine; ferrotls-ssl: ferrotls.SSLContext behind the
# standard ssl.SSLSocket (the drop-in path); stdlib: the ssl module on OpenSSL.
IMPLS = ("ferrotls", "ferrotls-ssl", "stdlib")
TIMEOUT = 60.0  # the same socket timeout on both sides and for both libraries


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PKI:
    ca: str  # PEM of the root CA the client trusts
    cert: str  # PEM of the server's leaf certificate (RSA-2048, "localhost"), issued by the root
    key: str  # PEM of its private key
    ec_cert: str  # an ECDSA P-256 leaf for "localhost" from the same root, for ECDHE-ECDSA suites
    ec_key: str


def make_pki(directory: os.PathLike) -> PKI:
    import trustme

    d = Path(directory)
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    leaf = ca.issue_cert(HOSTNAME, key_type=trustme.KeyType.RSA)  # RSA-2048
    ec_leaf = ca.issue_cert(HOSTNAME, key_type=trustme.KeyType.ECDSA)  # P-256
    pki = PKI(*(str(d / name) for name in ("ca.pem", "leaf.pem", "leaf.key", "ec-leaf.pem", "ec-leaf.key")))
    ca.cert_pem.write_to_path(pki.ca)
    leaf.cert_chain_pems[0].write_to_path(pki.cert)
    leaf.private_key_pem.write_to_path(pki.key)
    ec_leaf.cert_chain_pems[0].write_to_path(pki.ec_cert)
    ec_leaf.private_key_pem.write_to_path(pki.ec_key)
    return pki


# --- the allocator ---------------------------------------------------------------------------


def warm_allocator() -> bool:
    """Puts glibc malloc in the state of a process that has once freed a big buffer: freeing a
    4 MiB mmap()ed block raises the dynamic mmap threshold to 4 MiB (and the trim threshold to
    8 MiB), so 1 MiB buffers come from the heap and are reused instead of being mmap()ed,
    page-faulted in and munmap()ed on every call. Without it, what a fresh process measures
    depends on which of its earlier frees happened to raise the threshold (stdlib's
    recv(1 MiB) allocates 1 MiB and shrinks it to one record, 4+ faults per 16 KiB; ferrotls's
    first ~256 MiB fault in every 1 MiB buffer). Both libraries get the same treatment, in both
    processes. FERROTLS_BENCH_COLD_MALLOC=1 skips it (the page-fault columns then show the cost).
    Returns whether it warmed."""
    if os.environ.get("FERROTLS_BENCH_COLD_MALLOC", "") not in ("", "0"):
        return False
    block = bytes(4 << 20)
    del block
    return True


# --- configuration of each library -------------------------------------------------------------


def context_class(impl: str):
    if impl == "ferrotls-ssl":
        import ferrotls

        return ferrotls.SSLContext
    return ssl.SSLContext


def stdlib_context(server: bool, cipher: str, pki: PKI, cls=ssl.SSLContext, tickets: bool = False) -> ssl.SSLContext:
    """An ssl.SSLContext (or ferrotls' drop-in one) set up the same way for either library;
    session tickets only when a benchmark resumes."""
    ctx = cls(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    if server:
        ctx.load_cert_chain(pki.cert, pki.key)
        ctx.load_cert_chain(pki.ec_cert, pki.ec_key)  # both libraries hold both kinds
    else:
        ctx.load_verify_locations(pki.ca)  # CERT_REQUIRED + check_hostname (PROTOCOL_TLS_CLIENT)
    return ctx


def ferrotls_config(server: bool, cipher: str, pki: PKI, tickets: bool = False):
    from ferrotls.protocol import TicketKeys, TLSConfig, parse_cipher_list

    cfg = TLSConfig(
        cipher_suites=parse_cipher_list(cipher),
        session_tickets=tickets,
        session_cache=None,
        ticket_keys=TicketKeys() if tickets else None,
        encrypt_then_mac=True,
    )
    if server:
        from ferrotls.x509 import load_credential

        cfg.credentials = [load_credential(pki.cert, pki.key), load_credential(pki.ec_cert, pki.ec_key)]
    else:
        from ferrotls.x509 import TrustStore

        store = TrustStore()
        store.load_file(pki.ca)
        cfg.trust_store = store
        cfg.verify_peer = True  # chain and hostname, like the stdlib client
        cfg.check_hostname = True
    return cfg


# --- one TLS connection, the same few operations for both libraries -----------------------------


class Peer:
    """A connected, handshaken TLS socket: sendall / recv / close / negotiated()."""

    def sendall(self, data) -> None: ...
    def recv(self, n: int) -> bytes: ...
    def close(self) -> None: ...
    def negotiated(self) -> dict: ...


class FerroPeer(Peer):
    def __init__(self, sock: socket.socket, cfg, server: bool, session=None):
        from ferrotls.engine import SocketEngine
        from ferrotls.protocol import Connection

        self.sock = sock
        conn = Connection(cfg, not server, server_hostname=None if server else HOSTNAME, session=session)
        self.engine = SocketEngine(sock, conn)
        self.engine.do_handshake()
        self.sendall = self.engine.sendall
        self.recv = self.engine.recv

    def close(self) -> None:
        try:
            self.engine.close()
        finally:
            self.sock.close()

    def negotiated(self) -> dict:
        c = self.engine.conn
        return {"cipher": c.suite.openssl_name, "etm": c.encrypt_then_mac, "ems": c.extended_master_secret,
                "resumed": c.resumed}


class StdlibPeer(Peer):
    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, server: bool):
        self.ssock = ctx.wrap_socket(sock, server_side=server, server_hostname=None if server else HOSTNAME)
        self.sendall = self.ssock.sendall
        self.recv = self.ssock.recv

    def close(self) -> None:
        self.ssock.close()

    def negotiated(self) -> dict:
        # EtM/EMS are not exposed by `ssl`; probe_stdlib_extensions() finds them for OpenSSL.
        conn = getattr(self.ssock._sslobj, "conn", None)  # ferrotls' engine
        return {"cipher": self.ssock.cipher()[0], "etm": conn and conn.encrypt_then_mac,
                "ems": conn and conn.extended_master_secret, "resumed": self.ssock.session_reused}


def probe_stdlib_extensions(cipher: str, pki: PKI, port: int) -> dict:
    """Which of encrypt_then_mac (22) and extended_master_secret (23) the stdlib server echoed in
    its ServerHello, read with the (private, debug) message callback on a throwaway connection
    configured like the benchmark's client (a separate context: the callback would otherwise
    run for every record of the timed connections)."""
    found: dict = {}

    def callback(conn, direction, version, content_type, msg_type, data):
        if direction == "read" and content_type == ssl._TLSContentType.HANDSHAKE and data[:1] == b"\x02":
            found.update(_server_hello_extensions(bytes(data)))

    probe = stdlib_context(False, cipher, pki)
    probe._msg_callback = callback  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        probe.wrap_socket(s, server_hostname=HOSTNAME).close()  # no data: the server takes it as a probe
    return found


def _server_hello_extensions(msg: bytes) -> dict:
    """{"etm": bool, "ems": bool} from a raw ServerHello handshake message (RFC 5246 7.4.1.3)."""
    pos = 4 + 2 + 32  # header, server_version, random
    pos += 1 + msg[pos]  # session_id
    pos += 2 + 1  # cipher_suite, compression_method
    exts = set()
    if pos + 2 <= len(msg):
        end = pos + 2 + int.from_bytes(msg[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            typ, length = int.from_bytes(msg[pos : pos + 2], "big"), int.from_bytes(msg[pos + 2 : pos + 4], "big")
            exts.add(typ)
            pos += 4 + length
    return {"etm": 22 in exts, "ems": 23 in exts}


class Client:
    """The client side in this process: connect() -> Peer."""

    def __init__(self, impl: str, cipher: str, pki: PKI, resume: bool = False):
        self.impl, self.cipher, self.pki, self.resume = impl, cipher, pki, resume
        self.session = None  # with resume: the session every handshake offers
        if impl == "ferrotls":
            self.cfg = ferrotls_config(False, cipher, pki, tickets=resume)
        elif impl in IMPLS:
            self.ctx = stdlib_context(False, cipher, pki, context_class(impl), tickets=resume)
        else:
            raise ValueError(impl)

    def connect(self, port: int) -> Peer:
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        try:
            if self.impl == "ferrotls":
                return FerroPeer(sock, self.cfg, server=False)
            return StdlibPeer(sock, self.ctx, server=False)
        except BaseException:
            sock.close()
            raise

    def handshake(self, port: int) -> bool:
        """One handshake on a new TCP connection (resuming the first session with `resume`),
        then close without close_notify; returns whether it resumed."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        try:
            if self.impl == "ferrotls":
                peer = FerroPeer(sock, self.cfg, server=False, session=self.session)
                resumed, session = peer.engine.conn.resumed, peer.engine.conn.session
            else:
                ssock = self.ctx.wrap_socket(sock, server_hostname=HOSTNAME, session=self.session)
                resumed, session = ssock.session_reused, ssock.session
                ssock.close()
            if self.resume and self.session is None:
                self.session = session
            return resumed
        finally:
            sock.close()

    def negotiated(self, port: int) -> dict:
        """What a connection to the server negotiates: one connection without data (a bulk server
        takes it as a probe), closed before the stdlib's probe (the server is serial)."""
        peer = self.connect(port)
        try:
            info = peer.negotiated()
        finally:
            peer.close()
        if self.impl == "stdlib":
            info.update(probe_stdlib_extensions(self.cipher, self.pki, port))
        return info


def _usage() -> tuple[float, int]:
    """(CPU seconds of this process, minor page faults so far)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_minflt


def send_bulk(peer: Peer, buf, total: int) -> dict:
    """Sends `total` bytes as sendall(buf) calls; returns the receiver's JSON acknowledgement,
    with the sender's CPU seconds and minor page faults (send_cpu_s, send_faults) added."""
    cpu0, faults0 = _usage()
    for _ in range(total // len(buf)):
        peer.sendall(buf)
    cpu1, faults1 = _usage()
    ack = b""
    while not ack.endswith(b"\n"):
        data = peer.recv(CHUNK)
        if not data:
            raise ConnectionError("the server closed before acknowledging the bulk data")
        ack += data
    info = json.loads(ack)
    info.update(send_cpu_s=cpu1 - cpu0, send_faults=faults1 - faults0)
    return info


# --- the server process ------------------------------------------------------------------------


class ServerProcess:
    """`with ServerProcess(...) as server:` starts this file as a server script; `.port`."""

    def __init__(self, impl: str, mode: str, cipher: str, pki: PKI, nbytes: int = 0,
                 profile: Optional[str] = None, profiler: str = "cprofile"):
        self.args = [sys.executable, os.path.abspath(__file__), "serve", "--impl", impl, "--mode", mode,
                     "--cipher", cipher, "--cert", pki.cert, "--key", pki.key, "--ec-cert", pki.ec_cert,
                     "--ec-key", pki.ec_key, "--nbytes", str(nbytes)]
        if profile:
            self.args += ["--profile", profile, "--profiler", profiler]
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0

    def __enter__(self) -> "ServerProcess":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} (exit {self.proc.wait()})")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        out = ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                out = self.proc.communicate(timeout=30)[0] or ""
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        for line in out.splitlines():
            if line.startswith("STATS "):
                self.stats = json.loads(line[6:])

    stats: dict = {}  # the server's totals at exit: connections, handshakes, cpu_s, faults


def _serve_bulk(peer: Peer, nbytes: int) -> None:
    got = 0
    first = None
    recv = peer.recv
    cpu0, faults0 = _usage()
    while got < nbytes:
        data = recv(CHUNK)
        if not data:
            if got == 0:  # a probe connection (handshake only)
                return
            raise ConnectionError(f"client closed after {got} of {nbytes} bytes")
        if first is None:
            first = time.perf_counter()
        got += len(data)
    last = time.perf_counter()
    cpu1, faults1 = _usage()
    info = peer.negotiated()
    # recv_s: first to last byte as the receiver saw it; recv_cpu_s, recv_faults: the receiver's
    # CPU time and minor page faults for the whole transfer (less sensitive to other load).
    info.update(received=got, recv_s=last - first, recv_cpu_s=cpu1 - cpu0, recv_faults=faults1 - faults0)
    peer.sendall(json.dumps(info).encode() + b"\n")
    try:
        while peer.recv(CHUNK):  # until close_notify / EOF
            pass
    except (OSError, ConnectionError):
        pass


def serve(impl: str, mode: str, cipher: str, pki: PKI, nbytes: int) -> None:
    warm_allocator()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    tickets = mode == "resume"  # handshakes that resume with a session ticket
    if impl == "ferrotls":
        cfg = ferrotls_config(True, cipher, pki, tickets=tickets)
        accept = lambda sock: FerroPeer(sock, cfg, server=True)  # noqa: E731
    else:
        ctx = stdlib_context(True, cipher, pki, context_class(impl), tickets=tickets)
        accept = lambda sock: StdlibPeer(sock, ctx, server=True)  # noqa: E731
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    # Totals from the end of the first connection on: it pays one-time costs (aws-lc's RNG
    # start-up alone is ~60 ms) that would inflate the per-handshake CPU of short runs.
    totals = {"connections": 0, "handshakes": 0}
    sock, _ = listener.accept()
    _serve_one(sock, accept, mode, nbytes, dict(totals))
    cpu0, faults0 = _usage()
    try:
        while True:
            sock, _ = listener.accept()
            totals["connections"] += 1
            _serve_one(sock, accept, mode, nbytes, totals)
    finally:
        cpu1, faults1 = _usage()
        totals.update(cpu_s=cpu1 - cpu0, faults=faults1 - faults0)
        print("STATS " + json.dumps(totals), flush=True)


def _serve_one(sock: socket.socket, accept, mode: str, nbytes: int, totals: dict) -> None:
    sock.settimeout(TIMEOUT)
    try:
        peer = accept(sock)  # the handshake
        totals["handshakes"] += 1
        if mode == "bulk":
            _serve_bulk(peer, nbytes)
        peer_sock_close(peer, sock)
    except Exception as e:  # OSError, ssl.SSLError, ferrotls's TLSError: say so, keep serving
        _report(e)
        sock.close()


def peer_sock_close(peer: Peer, sock: socket.socket) -> None:
    # Handshake mode: close right after the handshake, without close_notify, like the client.
    if isinstance(peer, FerroPeer):
        sock.close()
    else:
        peer.ssock.close()


_errors = 0


def _report(e: BaseException) -> None:
    global _errors
    _errors += 1
    if _errors <= 5:
        print(f"tls_peers server: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


def _stop(signum, frame):
    raise SystemExit(0)


def _run_profiled(profile: Optional[str], profiler: str, fn, *args) -> None:
    if not profile:
        fn(*args)
        return
    if profiler == "pyinstrument":
        from pyinstrument import Profiler

        p = Profiler(interval=0.0005)
        p.start()
        try:
            fn(*args)
        finally:
            p.stop()
            with open(profile, "w") as f:
                f.write(p.output_text(unicode=False, color=False, show_all=False))
        return
    import cProfile

    p = cProfile.Profile()
    p.enable()
    try:
        fn(*args)
    finally:
        p.disable()
        p.dump_stats(profile)


# --- profiling driver (not used by the benchmark) ----------------------------------------------


def profile_main(a) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        warm_allocator()
        pki = make_pki(d)
        nbytes = a.mib << 20
        with ServerProcess(a.impl, a.mode, a.cipher, pki, nbytes, a.server_profile, a.profiler) as server:
            client = Client(a.impl, a.cipher, pki)
            buf = os.urandom(CHUNK)

            def client_loop():
                if a.mode == "bulk":
                    for _ in range(a.rounds):
                        peer = client.connect(server.port)
                        t = time.perf_counter()
                        ack = send_bulk(peer, buf, nbytes)
                        dt = time.perf_counter() - t
                        peer.close()
                        gib = nbytes / 2**30
                        print(f"bulk {a.impl} {ack['cipher']} etm={ack['etm']}: {nbytes / dt / 2**20:.0f} MiB/s"
                              f" (receiver {nbytes / ack['recv_s'] / 2**20:.0f} MiB/s); CPU s/GiB: send"
                              f" {ack['send_cpu_s'] / gib:.2f} recv {ack['recv_cpu_s'] / gib:.2f}; page faults/MiB:"
                              f" send {ack['send_faults'] * 2**20 / nbytes:.0f} recv {ack['recv_faults'] * 2**20 / nbytes:.0f}",
                              flush=True)
                else:
                    n, t, (cpu0, _) = 0, time.perf_counter(), _usage()
                    while time.perf_counter() - t < a.seconds:
                        client.handshake(server.port)
                        n += 1
                    cpu = _usage()[0] - cpu0
                    print(f"handshake {a.impl}: {n / (time.perf_counter() - t):.0f}/s ({n}); client CPU"
                          f" {cpu / n * 1e3:.2f} ms/handshake", flush=True)

            _run_profiled(a.client_profile, a.profiler, client_loop)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--impl", choices=IMPLS, required=True)
    s.add_argument("--mode", choices=("bulk", "handshake", "resume"), required=True)
    s.add_argument("--cipher", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--ec-cert", required=True)
    s.add_argument("--ec-key", required=True)
    s.add_argument("--nbytes", type=int, default=0)
    s.add_argument("--profile")
    s.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    q = sub.add_parser("profile")
    q.add_argument("--impl", choices=IMPLS, default="ferrotls")
    q.add_argument("--mode", choices=("bulk", "handshake", "resume"), required=True)
    q.add_argument("--cipher", default="AES128-GCM-SHA256")
    q.add_argument("--mib", type=int, default=256)
    q.add_argument("--rounds", type=int, default=3)
    q.add_argument("--seconds", type=float, default=3.0)
    q.add_argument("--client-profile")
    q.add_argument("--server-profile")
    q.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    a = p.parse_args(argv)
    if a.cmd == "serve":
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        pki = PKI("", a.cert, a.key, a.ec_cert, a.ec_key)
        _run_profiled(a.profile, a.profiler, serve, a.impl, a.mode, a.cipher, pki, a.nbytes)
    else:
        profile_main(a)


if __name__ == "__main__":
    main()
