"""The peers of benches/bench_tls.py: TLS 1.2 over loopback through the standard `ssl` API only.

Both libraries are driven the same way, through `ssl.SSLContext.wrap_socket` (ssl.SSLSocket) or
asyncio streams (ssl.SSLObject); only the context class differs: `ferrotls.SSLContext` (the
drop-in, whose SSLSocket/SSLObject run ferrotls' engine) or the stdlib's `ssl.SSLContext`
(OpenSSL). Both ends of a connection run the same library. Nothing here touches the allocator:
every process runs with the C library's default malloc.

This file is also the script of the child processes (a fresh interpreter each, so neither side's
GIL throttles the other and memory is measured in a process that did nothing else):

    python benches/tls_peers.py serve --impl ferrotls|stdlib --mode MODE --cipher NAME --pki DIR
        [--nbytes N] [--read-size N] [--connections N]
    prints "PORT <n>" once listening, then serves connections one after the other until SIGTERM
    (the socket modes also end after TIMEOUT seconds without a new connection). Modes:
      bulk       read with recv_into(read-size) until nbytes have arrived, answer
                 "<count> <cpu>\\n" (cpu: this process's CPU seconds from the first byte on),
                 then read until the client closes (a connection that sends nothing is a probe);
      asyncio    the same with an asyncio `start_server(ssl=ctx)` server, reader.read(read-size);
      handshake  the handshake, then close; resume: the same with session tickets on;
      sendall    one sendall() of nbytes random bytes; prints "REPORT {"extra_rss": bytes}", the
                 peak RSS during the call minus the RSS before it (the payload already resident);
      idle       serves one connection to the end (so one-time costs, imports and first
                 allocations, are in the baseline), then holds `connections` established ones and
                 prints "REPORT {"rss_per_connection": bytes}": (RSS holding them - baseline) / N.

    python benches/tls_peers.py hold --impl ferrotls|stdlib --cipher NAME --pki DIR --port P
        --connections N
    the client side of `idle`: one connection opened and closed, then N established client
    SSLSockets held; prints "REPORT {"rss_per_connection": bytes}" the same way, then waits for
    SIGTERM.

Sessions are not resumed (OP_NO_TICKET on both contexts, no session passed) except in `resume`.
RSS is read from /proc/self/status (VmRSS; VmHWM, reset through /proc/self/clear_refs, for the
peak), so the memory figures need Linux.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
from typing import Optional

HOSTNAME = "localhost"
IMPLS = ("ferrotls", "stdlib")
TIMEOUT = 60.0  # every socket operation, both sides, both libraries; also the server's idle limit


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PKI:
    """PEM files in one directory (written by make_pki): "ca" the root, "leaf" an RSA-2048 and
    "ec-leaf" an ECDSA P-256 certificate for HOSTNAME issued by it, "leaf-key", "ec-leaf-key"."""

    directory: str

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name + ".pem")


def make_pki(directory: os.PathLike) -> PKI:
    import trustme

    pki = PKI(str(directory))
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    ca.cert_pem.write_to_path(pki.path("ca"))
    for key_type, name in ((trustme.KeyType.RSA, "leaf"), (trustme.KeyType.ECDSA, "ec-leaf")):
        leaf = ca.issue_cert(HOSTNAME, key_type=key_type)
        leaf.cert_chain_pems[0].write_to_path(pki.path(name))
        leaf.private_key_pem.write_to_path(pki.path(name + "-key"))
    return pki


# --- the same configuration for either library -------------------------------------------------


def context_class(impl: str) -> type:
    """ferrotls.SSLContext or the stdlib's ssl.SSLContext."""
    if impl == "ferrotls":
        from ferrotls import SSLContext

        return SSLContext
    if impl == "stdlib":
        return ssl.SSLContext
    raise ValueError(impl)


def context(impl: str, server: bool, cipher: str, pki: PKI, tickets: bool = False) -> ssl.SSLContext:
    """A TLS 1.2-only context of `impl`'s class limited to `cipher`; a server holds both leaves,
    a client verifies chain and hostname (PROTOCOL_TLS_CLIENT's defaults). Session tickets only
    when asked for."""
    ctx = context_class(impl)(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher)
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    if server:
        ctx.load_cert_chain(pki.path("leaf"), pki.path("leaf-key"))
        ctx.load_cert_chain(pki.path("ec-leaf"), pki.path("ec-leaf-key"))
    else:
        ctx.load_verify_locations(pki.path("ca"))
    return ctx


def connect(ctx: ssl.SSLContext, port: int, session=None) -> ssl.SSLSocket:
    """A new TCP connection to 127.0.0.1:port, handshaken as a client."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        return ctx.wrap_socket(sock, server_hostname=HOSTNAME, session=session)
    except BaseException:
        sock.close()
        raise


def drain(ssock: ssl.SSLSocket) -> None:
    """Reads until the peer closes, however it closes."""
    buf = bytearray(1 << 16)
    try:
        while ssock.recv_into(buf):
            pass
    except OSError:  # ssl.SSLError included: a close without close_notify
        pass


def negotiated(ctx: ssl.SSLContext, port: int) -> dict:
    """What a client with `ctx` negotiates with the server at `port`: {"cipher", "etm", "ems"}.

    A throwaway connection (no application data, closed with close_notify) driven through
    ctx.wrap_bio (ssl.SSLObject) over a plain socket, so the server's bytes can be read as they
    arrive: encrypt_then_mac and extended_master_secret are read off its ServerHello, which no
    `ssl` API exposes. The same code for either library."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=HOSTNAME)
    wire = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                data = sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("the server closed during the handshake") from None
                wire += data
                incoming.write(data)
        try:
            tls.unwrap()
        except ssl.SSLWantReadError:  # the server's close_notify is not waited for
            pass
        try:
            sock.sendall(outgoing.read())
        except OSError:  # a handshake-only server may have closed already
            pass
    return {"cipher": tls.cipher()[0], **_server_hello_extensions(_first_handshake_message(bytes(wire)))}


def _first_handshake_message(wire: bytes) -> bytes:
    """The first handshake message in a TLS record stream (RFC 5246 6.2.1, 7.4)."""
    body, pos = b"", 0
    while pos + 5 <= len(wire):
        content_type, length = wire[pos], int.from_bytes(wire[pos + 3 : pos + 5], "big")
        if content_type == 22:
            body += wire[pos + 5 : pos + 5 + length]
        if len(body) >= 4 and len(body) >= 4 + int.from_bytes(body[1:4], "big"):
            return body[: 4 + int.from_bytes(body[1:4], "big")]
        pos += 5 + length
    raise ValueError("no complete handshake message from the server")


def _server_hello_extensions(msg: bytes) -> dict:
    """{"etm": bool, "ems": bool}: encrypt_then_mac (22) and extended_master_secret (23) in a
    ServerHello (RFC 5246 7.4.1.3)."""
    if msg[0] != 2:
        raise ValueError(f"the server's first handshake message is of type {msg[0]}, not ServerHello")
    pos = 4 + 2 + 32  # header, server_version, random
    pos += 1 + msg[pos]  # session_id
    pos += 2 + 1  # cipher_suite, compression_method
    exts = set()
    if pos + 2 <= len(msg):
        end = pos + 2 + int.from_bytes(msg[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            exts.add(int.from_bytes(msg[pos : pos + 2], "big"))
            pos += 4 + int.from_bytes(msg[pos + 2 : pos + 4], "big")
    return {"etm": 22 in exts, "ems": 23 in exts}


# --- memory -------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss() -> int:
    """The resident set size of this process, bytes."""
    return _status_kib("VmRSS") * 1024


def reset_peak_rss() -> None:
    """Sets the peak RSS (VmHWM) to the current RSS (Linux 4.0+)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss() -> int:
    """The peak RSS since the last reset_peak_rss(), bytes."""
    return _status_kib("VmHWM") * 1024


def settled_rss() -> int:
    """RSS after a full garbage collection."""
    gc.collect()
    return rss()


def raise_fd_limit(n: int) -> None:
    """Lets this process hold n sockets and some (RLIMIT_NOFILE's soft limit up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


# --- child processes ---------------------------------------------------------------------------


class Child:
    """`with Child(args) as c:` runs this file as a script with `args`; `c.report()` reads its next
    "REPORT {json}" line; leaving the block sends SIGTERM."""

    def __init__(self, args: list):
        self.args = [sys.executable, os.path.abspath(__file__), *map(str, args)]
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        return self

    def line(self, prefix: str) -> str:
        """The rest of the child's next stdout line starting with `prefix`."""
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise RuntimeError(f"{self.args[2]} exited ({self.proc.wait()}) without a {prefix.strip()} line")

    def report(self) -> dict:
        return json.loads(self.line("REPORT "))

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class ServerProcess(Child):
    """A `serve` child; `.port` once it listens."""

    def __init__(self, impl: str, mode: str, cipher: str, pki: PKI, **options):
        args = ["serve", "--impl", impl, "--mode", mode, "--cipher", cipher, "--pki", pki.directory]
        for name, value in options.items():
            args += ["--" + name.replace("_", "-"), value]
        super().__init__(args)
        self.port = 0

    def __enter__(self):
        super().__enter__()
        try:
            self.port = int(self.line("PORT "))
        except BaseException:
            self.__exit__()
            raise
        return self


class HoldProcess(Child):
    """A `hold` child: `connections` idle client connections to the server at `port`."""

    def __init__(self, impl: str, cipher: str, pki: PKI, port: int, connections: int):
        super().__init__(["hold", "--impl", impl, "--cipher", cipher, "--pki", pki.directory,
                          "--port", port, "--connections", connections])


# --- the child processes' side -----------------------------------------------------------------


def _report(**values) -> None:
    print("REPORT " + json.dumps(values), flush=True)


_errors = 0


def _log(e: BaseException) -> None:
    """A failed connection: said on stderr (the first few), the server keeps serving."""
    global _errors
    _errors += 1
    if _errors <= 5:
        print(f"tls_peers: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


def _serve_bulk(ssock: ssl.SSLSocket, a) -> None:
    buf = bytearray(a.read_size)
    got = 0
    started = None
    while got < a.nbytes:
        n = ssock.recv_into(buf)
        if not n:
            if got == 0:  # a probe (negotiated()): handshake only
                return
            raise ConnectionError(f"the client closed after {got} of {a.nbytes} bytes")
        if started is None:
            started = time.process_time()
        got += n
    ssock.sendall(b"%d %.6f\n" % (got, time.process_time() - started))
    drain(ssock)


def _serve_sendall(ssock: ssl.SSLSocket, a) -> None:
    payload = os.urandom(a.nbytes)  # resident before the baseline
    gc.collect()
    reset_peak_rss()
    before = rss()
    ssock.sendall(payload)
    _report(extra_rss=peak_rss() - before)
    drain(ssock)


_HANDLERS = {
    "bulk": _serve_bulk,
    "sendall": _serve_sendall,
    "handshake": lambda ssock, a: None,  # the handshake is all
    "resume": lambda ssock, a: None,
}


def _listen() -> socket.socket:
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    listener.settimeout(TIMEOUT)  # a server nobody talks to any more ends
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    return listener


def _server_socket(ctx: ssl.SSLContext, sock: socket.socket) -> ssl.SSLSocket:
    """An accepted socket, handshaken as a server."""
    sock.settimeout(TIMEOUT)
    try:
        return ctx.wrap_socket(sock, server_side=True)
    except BaseException:
        sock.close()
        raise


def serve(a) -> None:
    ctx = context(a.impl, True, a.cipher, PKI(a.pki), tickets=a.mode == "resume")
    if a.mode == "asyncio":
        asyncio.run(_serve_asyncio(ctx, a))
        return
    listener = _listen()
    if a.mode == "idle":
        _serve_idle(listener, ctx, a.connections)
        return
    handler = _HANDLERS[a.mode]
    while True:
        sock, _ = listener.accept()  # its timeout ends the server
        try:
            with _server_socket(ctx, sock) as ssock:
                handler(ssock, a)
        except OSError as e:  # ssl.SSLError included: say so, serve the next one
            _log(e)


def _hold_idle(open_connection, n: int) -> None:
    """Reports the RSS per connection of n more connections from open_connection(), measured
    from the RSS before them; then holds them until SIGTERM."""
    baseline = settled_rss()
    held = [open_connection() for _ in range(n)]
    _report(rss_per_connection=(settled_rss() - baseline) / n)
    signal.pause()
    del held


def _serve_idle(listener: socket.socket, ctx: ssl.SSLContext, n: int) -> None:
    raise_fd_limit(n)
    with _server_socket(ctx, listener.accept()[0]) as first:  # hold()'s first connection
        drain(first)
    _hold_idle(lambda: _server_socket(ctx, listener.accept()[0]), n)


async def _serve_asyncio(ctx: ssl.SSLContext, a) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            got = 0
            while got < a.nbytes:
                data = await reader.read(a.read_size)
                if not data:
                    break
                got += len(data)
            if got:  # else a probe
                writer.write(b"%d\n" % got)
                await writer.drain()
                while await reader.read(1 << 16):
                    pass
        except (OSError, asyncio.IncompleteReadError) as e:
            _log(e)
        finally:
            writer.close()

    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set_result, None)
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx, backlog=128)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop


def hold(a) -> None:
    raise_fd_limit(a.connections)
    ctx = context(a.impl, False, a.cipher, PKI(a.pki))
    connect(ctx, a.port).close()  # one-time costs before the baseline, as the server's
    _hold_idle(lambda: connect(ctx, a.port), a.connections)


def _stop(signum, frame):
    raise SystemExit(0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("serve", "hold"):
        s = sub.add_parser(name)
        s.add_argument("--impl", choices=IMPLS, required=True)
        s.add_argument("--cipher", required=True)
        s.add_argument("--pki", required=True, help="the directory make_pki() wrote")
        s.add_argument("--connections", type=int, default=1000)
    s = sub.choices["serve"]
    s.add_argument("--mode", choices=("bulk", "asyncio", "handshake", "resume", "sendall", "idle"), required=True)
    s.add_argument("--nbytes", type=int, default=0)
    s.add_argument("--read-size", type=int, default=1 << 20)
    sub.choices["hold"].add_argument("--port", type=int, required=True)
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    {"serve": serve, "hold": hold}[a.cmd](a)


if __name__ == "__main__":
    main()
