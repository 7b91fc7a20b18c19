"""The engine's I/O semantics, pinned to the stdlib's (DESIGN.md principle 4).

Every test runs twice: the side under test is a stdlib `ssl` context ("stdlib", which proves the
reference behaviour) or a `ferrotls.SSLContext` ("ferrotls", which must match it); the peer is
always the stdlib (OpenSSL), over 127.0.0.1. What OpenSSL does, and what these tests pin:

- It reads exactly one record at a time from the socket (no read-ahead): whatever the peer sent
  after the record an operation needed stays in the kernel, so select() reports it, pending()
  does not count it, and bytes after a close_notify are still there for the plain socket.
- A non-blocking SSL_write that cannot finish raises SSLWantWriteError and must be retried with
  the same data; the retry that finishes returns the full length. A read never pushes the rest.
- Receiving close_notify does not answer it: recv() returns b"" and the application may still
  write until it calls unwrap()/close(). Over MemoryBIOs, read() returns b"" while only the peer
  has closed and raises SSLZeroReturnError once both have.

Peers that need to choose exactly which bytes share one TCP segment (a Finished and the first
application data, a close_notify and the plaintext after it) are stdlib SSLObjects over
MemoryBIOs (`BIOPeer`). Every socket has a timeout, every thread a bounded join (a failing peer
thread hangs up at once), and "all the peer's bytes are here" is read from the kernel's
counters (FIONREAD, TIOCOUTQ), never guessed with a sleep.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import os
import random
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import termios
import threading
import time
from typing import Optional

import pytest

from dropin_async_helpers import HOST, IO_TIMEOUT, client_context, server_context

GNUTLS_CLI = shutil.which("gnutls-cli") or "gnutls-cli"
IMPLS = ["stdlib", "ferrotls"]
# The data select() waits for is already in the socket's receive buffer: it must wake at once.
# The timeout only turns a select() that lies into a failure instead of a hang.
SELECT_TIMEOUT = 5.0
# Small kernel buffers make a 4 MiB non-blocking send() block for sure (autotuning could
# otherwise absorb several MiB on loopback).
SMALL_BUFFER = 64 * 1024


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def client_ctx(impl: str, pki) -> ssl.SSLContext:
    """A client context of the given implementation trusting the test server CA."""
    return client_context(impl, pki.server_ca_path)


def server_ctx(impl: str, pki) -> ssl.SSLContext:
    """A server context of the given implementation with the RSA server certificate."""
    return server_context(impl, pki.server.cert_path, pki.server.key_path)


def unread_bytes(sock) -> int:
    """Bytes in the socket's kernel receive buffer (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def unsent_bytes(sock) -> int:
    """Bytes in the socket's kernel send queue not yet acknowledged by the peer (TIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def wait_for_unread(sock, nbytes: int) -> None:
    """Waits until at least nbytes are in the socket's receive buffer (without reading them)."""
    deadline = time.monotonic() + IO_TIMEOUT
    while unread_bytes(sock) < nbytes:
        assert time.monotonic() < deadline, f"only {unread_bytes(sock)} of {nbytes} bytes arrived"
        time.sleep(0.001)


@contextlib.contextmanager
def hang_up_on_error(sock: socket.socket, errors: Optional[list] = None):
    """For a peer thread: if the block fails, shuts the connection down (through a duplicate
    descriptor, which survives wrap_socket's detach) so the other end sees EOF at once instead
    of waiting for its timeout. The error is appended to `errors` first."""
    spare = sock.dup()
    try:
        yield
    except BaseException as e:
        if errors is not None:
            errors.append(e)
        with contextlib.suppress(OSError):
            spare.shutdown(socket.SHUT_RDWR)
        raise
    finally:
        spare.close()


def outcome(fn, *args):
    """("ok", result) or the exception's class name: for comparing step by step."""
    try:
        return ("ok", fn(*args))
    except Exception as e:
        return type(e).__name__


class Sockets:
    """Loopback TCP connections; every socket is shut down and closed at teardown (shutdown
    wakes a peer thread blocked on it)."""

    def __init__(self):
        self._all = []

    def track(self, sock):
        self._all.append(sock)
        return sock

    def listener(self, small_buffers: bool = False) -> socket.socket:
        sock = self.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        if small_buffers:  # inherited by accepted sockets; set before listen() for the window
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        sock.bind((HOST, 0))
        sock.listen()
        sock.settimeout(IO_TIMEOUT)
        return sock

    def pair(self, small_buffers: bool = False):
        """(client socket, server socket), connected, with timeouts."""
        listener = self.listener(small_buffers)
        client = self.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        if small_buffers:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        client.settimeout(IO_TIMEOUT)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
        listener.close()
        server.settimeout(IO_TIMEOUT)
        return client, self.track(server)

    def close_all(self):
        for sock in self._all:
            if sock.fileno() == -1:
                continue
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
            socket.socket.close(sock)


@pytest.fixture
def sockets():
    s = Sockets()
    yield s
    s.close_all()


class BIOPeer:
    """A stdlib ssl.SSLObject over MemoryBIOs on a plain socket: the peer decides which TLS
    bytes leave together, in one send()."""

    def __init__(self, ctx: ssl.SSLContext, sock: socket.socket, server_side: bool, session=None):
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        hostname = None if server_side else "localhost"
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                server_hostname=hostname, session=session)

    def receive(self) -> None:
        data = self.sock.recv(65536)
        if data:
            self.incoming.write(data)
        else:
            assert not self.incoming.eof, "the SSLObject asks for more input after EOF"
            self.incoming.write_eof()

    def flush(self, plain_after: bytes = b"") -> None:
        """Sends everything the SSLObject produced, then plain_after, in one sendall()."""
        self.sock.sendall(self.outgoing.read() + plain_after)

    def call(self, fn, *args):
        """fn(*args) on the SSLObject, sending its output and reading whenever it wants more."""
        while True:
            try:
                result = fn(*args)
                self.flush()
                return result
            except ssl.SSLWantReadError:
                self.flush()
                self.receive()

    def handshake(self, send_last_flight: bool = True) -> None:
        """The handshake; with send_last_flight=False the last flight stays in the outgoing BIO
        to leave together with what is written next."""
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.receive()
        if send_last_flight:
            self.flush()

    def send_close_notify(self, plain_after: bytes = b"") -> None:
        """unwrap() without waiting for the peer's close_notify (SSLWantReadError), then sends
        what was written, the close_notify and plain_after in one segment."""
        with pytest.raises(ssl.SSLWantReadError):
            self.obj.unwrap()
        self.flush(plain_after)

    def read_until_close_notify(self) -> bytes:
        """Application data until the peer's close_notify (read() gives b"" or, once we have
        sent ours too, raises SSLZeroReturnError)."""
        data = bytearray()
        while True:
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                self.receive()
                continue
            except ssl.SSLZeroReturnError:
                return bytes(data)
            if not chunk:
                return bytes(data)
            data += chunk


def handshake_both(background, client: ssl.SSLContext, server: ssl.SSLContext, client_sock, server_sock):
    """Wraps both ends (the server's handshake in a thread); returns (client, server) SSLSockets."""
    server_future = background(server.wrap_socket, server_sock, server_side=True)
    client_tls = client.wrap_socket(client_sock, server_hostname="localhost")
    return client_tls, server_future.result(IO_TIMEOUT)


def select_readable(sock, timeout: float = SELECT_TIMEOUT) -> bool:
    readable, _, _ = select.select([sock], [], [], timeout)
    return bool(readable)


# --------------------------------------------------------------------------------------------
# 1. Reading no more than needed: select() tells the truth
# --------------------------------------------------------------------------------------------


def _banner_after_handshake(impl, pki, sockets, background):
    """A client of `impl` against a stdlib server whose last handshake flight and a banner
    leave in one segment; returns (client SSLSocket after do_handshake, server future)."""
    client_sock, server_sock = sockets.pair()

    def serve():
        with hang_up_on_error(server_sock):
            peer = BIOPeer(server_ctx("stdlib", pki), server_sock, server_side=True)
            peer.handshake(send_last_flight=False)
            peer.obj.write(b"banner")
            peer.flush()  # ChangeCipherSpec, Finished and the banner together
            rest = peer.read_until_close_notify()
            peer.call(peer.obj.unwrap)
            return rest

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost",
                                                          do_handshake_on_connect=False))
    tls.do_handshake()
    return tls, future


@pytest.mark.parametrize("impl", IMPLS)
def test_select_wakes_for_banner_after_client_handshake(impl, pki, sockets, background):
    """The stdlib's do_handshake() reads the server's Finished record and stops: the banner
    record sent in the same segment stays in the kernel, so select() reports it at once."""
    tls, server = _banner_after_handshake(impl, pki, sockets, background)
    assert select_readable(tls), f"select() says not readable, pending()={tls.pending()}"
    assert tls.recv(1024) == b"banner"
    tls.unwrap()
    assert server.result(IO_TIMEOUT) == b""


@pytest.mark.parametrize("impl", IMPLS)
def test_pending_is_zero_after_handshake_with_banner(impl, pki, sockets, background):
    """pending() counts only decrypted bytes held by the SSL object: right after the handshake
    the stdlib has not read the banner record yet, so it reports 0."""
    tls, server = _banner_after_handshake(impl, pki, sockets, background)
    assert tls.pending() == 0
    assert tls.recv(1024) == b"banner"
    assert tls.pending() == 0
    tls.unwrap()
    assert server.result(IO_TIMEOUT) == b""


@pytest.mark.parametrize("impl", IMPLS)
def test_select_wakes_for_request_after_resumed_server_handshake(impl, pki, sockets, background):
    """In an abbreviated handshake the client's Finished is the last flight; a client that
    sends its first request in the same segment: the stdlib server's do_handshake() stops after
    Finished, so select() reports the request at once."""
    ctx = server_ctx(impl, pki)
    stdlib_client = client_ctx("stdlib", pki)

    # A first, full handshake gives the client a session (closed cleanly, so it stays resumable).
    client_sock, server_sock = sockets.pair()

    def first_client():
        with hang_up_on_error(client_sock):
            peer = BIOPeer(stdlib_client, client_sock, server_side=False)
            peer.handshake()
            session = peer.obj.session
            peer.call(peer.obj.unwrap)
            return session

    future = background(first_client)
    tls = sockets.track(ctx.wrap_socket(server_sock, server_side=True))
    tls.unwrap()
    session = future.result(IO_TIMEOUT)

    # The resumption: the client's ChangeCipherSpec, Finished and request in one segment.
    client_sock, server_sock = sockets.pair()

    def resuming_client():
        with hang_up_on_error(client_sock):
            peer = BIOPeer(stdlib_client, client_sock, server_side=False, session=session)
            peer.handshake(send_last_flight=False)
            assert peer.obj.session_reused
            peer.obj.write(b"request")
            peer.flush()  # ChangeCipherSpec, Finished and the request together
            rest = peer.read_until_close_notify()
            peer.call(peer.obj.unwrap)
            return rest

    future = background(resuming_client)
    tls = sockets.track(ctx.wrap_socket(server_sock, server_side=True, do_handshake_on_connect=False))
    tls.do_handshake()
    assert tls.session_reused
    assert select_readable(tls), f"select() says not readable, pending()={tls.pending()}"
    assert tls.recv(1024) == b"request"
    tls.unwrap()
    assert future.result(IO_TIMEOUT) == b""


@pytest.mark.parametrize("impl", IMPLS)
def test_select_wakes_for_each_of_ten_records(impl, pki, sockets, background):
    """Ten 1000-byte records already in the kernel: the stdlib's recv(1000) takes one record,
    so select() wakes before each of the ten reads and pending() stays 0."""
    client_sock, server_sock = sockets.pair()
    records = [bytes([65 + i]) * 1000 for i in range(10)]
    ready = threading.Event()

    def serve():
        with hang_up_on_error(server_sock):
            peer = BIOPeer(server_ctx("stdlib", pki), server_sock, server_side=True)
            peer.handshake()
            assert ready.wait(IO_TIMEOUT)
            for record in records:
                peer.obj.write(record)
            wire = peer.outgoing.read()
            server_sock.sendall(wire)
            return len(wire), peer

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    ready.set()
    wire_length, peer = future.result(IO_TIMEOUT)
    wait_for_unread(tls, wire_length)  # all ten records are in our receive buffer

    received = []
    for i in range(10):
        assert select_readable(tls), (f"select() says not readable before record {i + 1} of 10; "
                                      f"pending()={tls.pending()}, received {len(b''.join(received))} bytes")
        received.append(tls.recv(1000))
        assert tls.pending() == 0
    assert received == records


# --------------------------------------------------------------------------------------------
# 2. Non-blocking writes: SSLWantWriteError, and the retry returns the full count
# --------------------------------------------------------------------------------------------


def _nonblocking_pair(impl, pki, sockets, background):
    """A client of `impl` and a stdlib server, small kernel buffers, both non-blocking after a
    blocking handshake."""
    client_sock, server_sock = sockets.pair(small_buffers=True)
    tls, peer = handshake_both(background, client_ctx(impl, pki), server_ctx("stdlib", pki),
                               client_sock, server_sock)
    sockets.track(tls)
    sockets.track(peer)
    tls.setblocking(False)
    peer.setblocking(False)
    return tls, peer


def _drain(peer, sender, into: bytearray) -> None:
    """The peer reads until the wire is quiet: nothing unacknowledged in the sender's queue,
    nothing unread in the peer's buffer, and the peer's SSL object wants more."""
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        try:
            into += peer.recv(1 << 20)
            continue
        except ssl.SSLWantReadError:
            pass
        if unsent_bytes(sender) == 0 and unread_bytes(peer) == 0:
            return
        assert time.monotonic() < deadline, "the wire did not become quiet"
        select.select([peer], [], [], 0.05)


def _send_until_done(tls, peer, data: bytes, received: bytearray) -> int:
    """Retries tls.send(data) with the same data (the peer reads in between) until it returns
    a count; returns it."""
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        try:
            return tls.send(data)
        except ssl.SSLWantWriteError:
            _drain(peer, tls, received)
        assert time.monotonic() < deadline, "send() never completed"


@pytest.mark.parametrize("impl", IMPLS)
def test_nonblocking_send_raises_want_write_then_retry_sends_everything(impl, pki, sockets, background):
    """The stdlib's non-blocking send(4 MiB) to a peer that does not read raises
    SSLWantWriteError (nothing is reported as sent); retried with the same data while the peer
    reads, it returns the full length once, and the peer gets every byte once, in order."""
    tls, peer = _nonblocking_pair(impl, pki, sockets, background)
    data = os.urandom(4 << 20)

    first = outcome(tls.send, data)
    assert first == "SSLWantWriteError", f"send(4 MiB) to a full socket gave {first!r}"
    received = bytearray()
    assert _send_until_done(tls, peer, data, received) == len(data)
    _drain(peer, tls, received)
    assert len(received) == len(data)
    assert received == data


@pytest.mark.parametrize("impl", IMPLS)
def test_nonblocking_sends_of_16k_until_want_write(impl, pki, sockets, background):
    """Non-blocking send() of distinct 16 KiB pieces to a peer that does not read: each returns
    16384 until one raises SSLWantWriteError; that piece retried (the peer reading in between)
    returns 16384, and the peer gets every piece once, in order."""
    tls, peer = _nonblocking_pair(impl, pki, sockets, background)
    pieces = [os.urandom(16384) for _ in range(200)]
    received = bytearray()
    wants = 0
    for piece in pieces:
        result = outcome(tls.send, piece)
        if result != ("ok", 16384):
            assert result == "SSLWantWriteError", f"send(16 KiB) gave {result!r}"
            wants += 1
            assert _send_until_done(tls, peer, piece, received) == 16384
    assert wants, "the socket never filled up"
    _drain(peer, tls, received)
    assert received == b"".join(pieces)


@pytest.mark.parametrize("impl", IMPLS)
def test_recv_after_want_write_does_not_complete_the_write(impl, pki, sockets, background):
    """After SSLWantWriteError the stdlib's recv() raises SSLWantReadError (no reply yet) and
    does not finish the write: the peer, which answers only once it has everything, stays short
    of the data whatever the program reads. The write completes only when send() is retried
    with the same data (returning the full length); then the peer's reply arrives.

    One deliberate difference: ferrotls' recv() first pushes the records of the interrupted
    write it had already sealed (at most one 256 KiB piece), so that they are on their way
    without another send; OpenSSL keeps them for the retried SSL_write. Either way the peer
    has a prefix of the data until the retry completes it."""
    tls, peer = _nonblocking_pair(impl, pki, sockets, background)
    data = os.urandom(4 << 20)

    first = outcome(tls.send, data)
    assert first == "SSLWantWriteError", f"send(4 MiB) to a full socket gave {first!r}"
    received = bytearray()
    _drain(peer, tls, received)  # the socket has room again
    assert outcome(tls.recv, 1024) == "SSLWantReadError"
    _drain(peer, tls, received)
    assert len(received) < len(data)

    assert _send_until_done(tls, peer, data, received) == len(data)
    _drain(peer, tls, received)
    assert received == data
    peer.send(b"got it all")
    assert select_readable(tls, IO_TIMEOUT)
    assert tls.recv(1024) == b"got it all"


# --------------------------------------------------------------------------------------------
# 3. unwrap() leaves what follows the close_notify on the socket (STARTTLS downgrade)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_client_unwrap_keeps_plaintext_after_close_notify(impl, pki, sockets, background):
    """A stdlib server sends data, its close_notify and plain bytes in one segment. The stdlib
    client's recv() reads the data record only and unwrap() reads up to the close_notify only:
    the plain bytes are there to read from the socket unwrap() returns."""
    client_sock, server_sock = sockets.pair()

    def serve():
        with hang_up_on_error(server_sock):
            peer = BIOPeer(server_ctx("stdlib", pki), server_sock, server_side=True)
            peer.handshake()
            peer.obj.write(b"last TLS data")
            peer.send_close_notify(plain_after=b"PLAIN AFTER TLS")
            peer.call(peer.obj.unwrap)  # the client's close_notify

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    assert tls.recv(1024) == b"last TLS data"
    plain = tls.unwrap()
    future.result(IO_TIMEOUT)
    # The plain bytes came in the segment of the close_notify: they are here or were swallowed.
    assert select_readable(plain), "the bytes after the close_notify are gone"
    got = b""
    while len(got) < len(b"PLAIN AFTER TLS"):
        chunk = plain.recv(1024)
        if not chunk:
            break
        got += chunk
    assert got == b"PLAIN AFTER TLS"


# --------------------------------------------------------------------------------------------
# 4. Half-close: the peer's close_notify is not answered for the application
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_write_after_peer_close_notify_until_unwrap(impl, pki, sockets, background):
    """A stdlib server sends a request and its close_notify (one segment) and keeps reading.
    The stdlib client's recv() gives the request, then b"" (close_notify, not answered); its
    sendall() still works, and unwrap() then sends its close_notify: the server reads the late
    reply and then the close_notify (SSLZeroReturnError)."""
    client_sock, server_sock = sockets.pair()

    def serve():
        with hang_up_on_error(server_sock):
            peer = BIOPeer(server_ctx("stdlib", pki), server_sock, server_side=True)
            peer.handshake()
            peer.obj.write(b"request")
            peer.send_close_notify()  # the request and the close_notify in one segment
            late = peer.read_until_close_notify()
            peer.obj.unwrap()  # both close_notify seen: returns at once
            return late

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    assert tls.recv(1024) == b"request"
    assert tls.recv(1024) == b""
    assert tls.recv(1024) == b""
    tls.sendall(b"late reply")
    tls.unwrap()
    assert future.result(IO_TIMEOUT) == b"late reply"


@pytest.mark.parametrize("impl", IMPLS)
def test_gnutls_cli_half_close(impl, pki, sockets, background):
    """gnutls-cli sends its stdin, and at stdin's EOF a close_notify (gnutls_bye(GNUTLS_SHUT_WR),
    no TCP FIN), then prints what it reads until the server's close_notify. A server that reads
    the request until recv() gives b"", then answers and unwraps: gnutls-cli prints the answer."""
    listener = sockets.listener()
    port = listener.getsockname()[1]
    ctx = server_ctx(impl, pki)

    def serve():
        sock, _ = listener.accept()
        sock.settimeout(IO_TIMEOUT)
        with hang_up_on_error(sockets.track(sock)):
            tls = sockets.track(ctx.wrap_socket(sock, server_side=True))
            request = b""
            while True:
                chunk = tls.recv(1024)
                if not chunk:
                    break
                request += chunk
            tls.sendall(b"answer to " + request)
            tls.unwrap().close()
            return request

    future = background(serve)
    stdin, feed = os.pipe()  # b"hello\n" then EOF, at which gnutls-cli sends its close_notify
    os.write(feed, b"hello\n")
    os.close(feed)
    cli = subprocess.Popen([GNUTLS_CLI, "--x509cafile", pki.server_ca_path, "-p", str(port), HOST],
                           stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(stdin)
    try:
        request = future.result(IO_TIMEOUT)  # a server failure ends the test (and gnutls-cli) at once
        stdout, stderr = cli.communicate(timeout=IO_TIMEOUT)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    output = stdout.decode(errors="replace") + stderr.decode(errors="replace")
    assert request == b"hello\n", output
    assert "answer to hello" in stdout.decode(errors="replace"), output
    assert "Peer has closed the GnuTLS connection" in output
    assert cli.returncode == 0, output


def _bio_pair(client: ssl.SSLContext, server: ssl.SSLContext):
    """Two SSLObjects over MemoryBIOs, handshake done in memory: (client, server, pump), where
    pump() carries each side's output to the other."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server.wrap_bio(s_in, s_out, server_side=True)

    def pump():
        s_in.write(c_out.read())
        c_in.write(s_out.read())

    for _ in range(10):
        done = 0
        for obj in (c, s):
            try:
                obj.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        pump()
        if done == 2:
            return c, s, pump
    raise AssertionError("the in-memory handshake did not finish")


@pytest.mark.parametrize("impl", IMPLS)
def test_bio_read_after_peer_close_notify(impl, pki):
    """Over MemoryBIOs, after the peer's close_notify the stdlib's read() returns b"" (only the
    peer has shut down: CPython maps SSL_ERROR_ZERO_RETURN to b"" when SSL_get_shutdown() is
    SSL_RECEIVED_SHUTDOWN), write() still works, unwrap() returns at once, and from then on
    read() raises SSLZeroReturnError and write() SSLError (PROTOCOL_IS_SHUTDOWN)."""
    ours, peer, pump = _bio_pair(client_ctx(impl, pki), server_ctx("stdlib", pki))
    steps = [("read, nothing yet", outcome(ours.read, 1024))]
    peer.write(b"data")
    with pytest.raises(ssl.SSLWantReadError):
        peer.unwrap()
    pump()
    steps += [
        ("read", outcome(ours.read, 1024)),
        ("read after close_notify", outcome(ours.read, 1024)),
        ("read again", outcome(ours.read, 1024)),
        ("pending", outcome(ours.pending)),
        ("write", outcome(ours.write, b"late")),
        ("unwrap", outcome(ours.unwrap)),
        ("read after own unwrap", outcome(ours.read, 1024)),
        ("write after own unwrap", outcome(ours.write, b"x")),
    ]
    pump()
    steps += [
        ("peer read", outcome(peer.read, 1024)),
        ("peer read after close_notify", outcome(peer.read, 1024)),
        ("peer unwrap", outcome(peer.unwrap)),
    ]
    assert steps == [
        ("read, nothing yet", "SSLWantReadError"),
        ("read", ("ok", b"data")),
        ("read after close_notify", ("ok", b"")),
        ("read again", ("ok", b"")),
        ("pending", ("ok", 0)),
        ("write", ("ok", 4)),
        ("unwrap", ("ok", None)),
        ("read after own unwrap", "SSLZeroReturnError"),
        ("write after own unwrap", "SSLError"),
        ("peer read", ("ok", b"late")),
        ("peer read after close_notify", "SSLZeroReturnError"),
        ("peer unwrap", ("ok", None)),
    ]


# --------------------------------------------------------------------------------------------
# 4b. asyncio: test_remote_shutdown_receives_trailing_data (CPython's test_asyncio/test_ssl.py)
# --------------------------------------------------------------------------------------------

CHUNK = 128 * 1024
CHUNKS = 32


def _remote_shutdown_with_trailing_data(server_context_: ssl.SSLContext, client_context_: ssl.SSLContext,
                                        sockets, background) -> None:
    """CPython's test, with an event instead of its sleep: a MemoryBIO server reads b"ping",
    answers b"pong", waits until the asyncio client has 4 MiB in its SSL write backlog, sends
    close_notify without waiting (unwrap() raises SSLWantReadError) and reads everything until
    the client's close_notify (SSLZeroReturnError), then unwrap() returns. The client's
    SSLProtocol sees the close_notify as read() == b"", writes its backlog, then unwraps."""
    listener = sockets.listener()
    backlog_filled = threading.Event()
    server_errors: list = []

    def serve() -> int:
        sock, _ = listener.accept()
        sock.settimeout(IO_TIMEOUT)
        with hang_up_on_error(sockets.track(sock), server_errors):
            return exchange(BIOPeer(server_context_, sock, server_side=True))

    def exchange(peer: BIOPeer) -> int:
        peer.handshake()
        assert peer.call(peer.obj.read, 4) == b"ping"
        peer.obj.write(b"pong")
        peer.flush()
        assert backlog_filled.wait(IO_TIMEOUT)
        peer.send_close_notify()
        total = 0
        while True:
            try:
                chunk = peer.obj.read(16384)
            except ssl.SSLWantReadError:
                peer.receive()
                continue
            except ssl.SSLZeroReturnError:
                break
            assert chunk, f"read() gave b'' after {total} bytes instead of raising SSLZeroReturnError"
            total += len(chunk)
        peer.obj.unwrap()  # the client's close_notify was received
        return total

    server = background(serve)

    async def client():
        reader, writer = await asyncio.open_connection(*listener.getsockname(), ssl=client_context_,
                                                       server_hostname="localhost")
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"pong"
        for _ in range(CHUNKS):  # plaintext the SSL protocol has not written yet
            writer.transport._test__append_write_backlog(b"x" * CHUNK)
        backlog_filled.set()
        try:
            assert await reader.read() == b""
        except (BrokenPipeError, ConnectionResetError):
            pass
        total = await asyncio.wait_for(asyncio.wrap_future(server), IO_TIMEOUT)
        writer.close()
        try:
            await writer.wait_closed()
        except (ssl.SSLError, OSError):
            pass
        return total

    async def main():
        return await asyncio.wait_for(client(), 2 * IO_TIMEOUT)

    try:
        total = asyncio.run(main())
    except BaseException as client_error:
        # A server failure (recorded before it hung up) says more than the EOF the client saw.
        backlog_filled.set()
        if server_errors:
            raise server_errors[0] from client_error
        raise
    assert total == CHUNK * CHUNKS


# CPython's test drives the SSL protocol asyncio has had since 3.11 (its write backlog).
ASYNCIO_311 = pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio's SSL protocol of Python 3.11 and later")


@ASYNCIO_311
@pytest.mark.parametrize("impl", IMPLS)
def test_asyncio_remote_shutdown_bio_server_receives_trailing_data(impl, pki, sockets, background):
    """The side under test is the MemoryBIO server: after its own close_notify (unwrap() raising
    SSLWantReadError) its read() still returns the client's data, then raises
    SSLZeroReturnError at the client's close_notify; the client is the stdlib's asyncio."""
    _remote_shutdown_with_trailing_data(server_ctx(impl, pki), client_ctx("stdlib", pki), sockets, background)


@ASYNCIO_311
@pytest.mark.parametrize("impl", IMPLS)
def test_asyncio_remote_shutdown_client_flushes_backlog(impl, pki, sockets, background):
    """The side under test is the asyncio client (its SSLObject): after the server's
    close_notify its read() gives b"" and write() still works, so the 4 MiB backlog reaches
    the server before the client's close_notify; the server is a stdlib MemoryBIO server."""
    _remote_shutdown_with_trailing_data(server_ctx("stdlib", pki), client_ctx(impl, pki), sockets, background)


# --------------------------------------------------------------------------------------------
# Whatever the sizes, the stream arrives whole (small reads a record at a time, large ones in
# batches, and every switch between the two)
# --------------------------------------------------------------------------------------------

STREAM_SEED = 20261202


def _stream_plan(seed: int):
    """(record sizes the peer writes, read sizes the side under test asks for), repeatable."""
    rng = random.Random(seed)
    writes = [rng.choice((1, 7, 100, 4096, 16383, 16384, 16385, 40000, 300000)) for _ in range(120)]
    reads = [rng.choice((1, 5, 1000, 8192, 16384, 16389, 65536, 1 << 20, 3 << 20)) for _ in range(4000)]
    return writes, reads


@pytest.mark.parametrize("timeout", [IO_TIMEOUT, None], ids=["timeout", "blocking"])
@pytest.mark.parametrize("impl", IMPLS)
def test_random_write_and_read_sizes_keep_the_stream_whole(impl, timeout, pki, sockets, background):
    """A stdlib server writes records of mixed sizes; the client under test reads with mixed
    sizes through recv and recv_into, on a socket with a timeout and on a blocking one (where
    ferrotls' hot path waits in recv itself): every byte arrives once, in order."""
    writes, reads = _stream_plan(STREAM_SEED)
    payload = random.Random(STREAM_SEED).randbytes(sum(writes))
    client_sock, server_sock = sockets.pair()
    client_sock.settimeout(timeout)

    def serve():
        with hang_up_on_error(server_sock):
            tls = server_ctx("stdlib", pki).wrap_socket(server_sock, server_side=True)
            at = 0
            for size in writes:
                tls.sendall(payload[at : at + size])
                at += size
            return tls.recv(1)

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    received = bytearray()
    buffer = bytearray(max(reads))
    for i, size in enumerate(reads):
        if len(received) == len(payload):
            break
        if i % 2:
            received += tls.recv(size)
        else:
            received += buffer[: tls.recv_into(buffer, size)]
    assert received == payload
    tls.sendall(b"!")
    assert future.result(IO_TIMEOUT) == b"!"


@pytest.mark.parametrize("impl", IMPLS)
def test_random_write_and_read_sizes_over_memory_bios(impl, pki):
    """The same through SSLObject: the ciphertext reaches the client's MemoryBIO in pieces of
    mixed sizes, cutting records anywhere; SSLWantReadError only when the BIO has run dry."""
    writes, reads = _stream_plan(STREAM_SEED + 1)
    rng = random.Random(STREAM_SEED)
    payload = rng.randbytes(sum(writes))
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client_ctx(impl, pki).wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server_ctx("stdlib", pki).wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for obj in (c, s):
            with contextlib.suppress(ssl.SSLWantReadError):
                obj.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    at = 0
    for size in writes:
        s.write(payload[at : at + size])
        at += size
    wire = s_out.read()
    received = bytearray()
    fed = 0
    for size in reads:
        if len(received) == len(payload):
            break
        try:
            received += c.read(size)
        except ssl.SSLWantReadError:
            assert fed < len(wire), "SSLWantReadError with the whole stream fed"
            piece = rng.choice((1, 3, 5, 6, 100, 16389, 70000))
            c_in.write(wire[fed : fed + piece])
            fed += piece
    assert received == payload


# --------------------------------------------------------------------------------------------
# 6. The hot path: application data read without Python code, everything else as before
# --------------------------------------------------------------------------------------------


def _reason(fn, *args):
    """The SSLError's reason (or "ok") of fn(*args)."""
    try:
        fn(*args)
        return "ok"
    except ssl.SSLError as e:
        return e.reason


@pytest.mark.parametrize("impl", IMPLS)
def test_tampered_application_data_record_fails_with_bad_record_mac(impl, pki, sockets, background):
    """After a good record, the stdlib server's next application data record has a bit
    flipped: recv raises SSLError DECRYPTION_FAILED_OR_BAD_RECORD_MAC, the server gets a
    bad_record_mac alert, and the next read ends at once."""
    client_sock, server_sock = sockets.pair()

    def serve():
        with hang_up_on_error(server_sock):
            peer = BIOPeer(server_ctx("stdlib", pki), server_sock, server_side=True)
            peer.handshake()
            peer.obj.write(b"a good record")
            peer.flush()
            peer.obj.write(b"a record that will not survive the trip")
            record = bytearray(peer.outgoing.read())
            record[len(record) // 2] ^= 0x10
            server_sock.sendall(record)
            return _reason(peer.call, peer.obj.read, 100)

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    tls.settimeout(None)  # ferrotls' hot path then waits for both records itself
    if impl == "ferrotls":
        slow_reads = []
        engine = tls._sslobj
        engine._read = lambda *args: slow_reads.append(args) or type(engine)._read(engine, *args)
    assert tls.recv(1024) == b"a good record"
    assert _reason(tls.recv, 1024) == "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"
    if impl == "ferrotls":
        assert not slow_reads, "the records did not go through the hot path"
    assert future.result(IO_TIMEOUT) in ("SSLV3_ALERT_BAD_RECORD_MAC", "TLSV1_ALERT_BAD_RECORD_MAC")
    # OpenSSL reads nothing more after a fatal alert: the next read ends at once, as at EOF.
    assert outcome(tls.recv, 1024) == ("ok", b"")


@pytest.mark.parametrize("impl", IMPLS)
def test_blocking_recv_interrupted_by_a_signal(impl, pki, sockets, background):
    """A blocking recv() waiting for data: a signal handler that raises ends it with that
    exception, a handler that returns lets it go on waiting (PEP 475), and nothing of the
    stream is lost either way."""
    if not hasattr(signal, "setitimer"):
        pytest.skip("needs setitimer")
    client_sock, server_sock = sockets.pair()
    go_on = threading.Event()

    def serve():
        with hang_up_on_error(server_sock):
            tls = server_ctx("stdlib", pki).wrap_socket(server_sock, server_side=True)
            go_on.wait(IO_TIMEOUT)
            tls.sendall(b"after the first signal")
            go_on.clear()
            go_on.wait(IO_TIMEOUT)
            time.sleep(0.3)  # the second signal comes while the client waits
            tls.sendall(b"after the second signal")
            return tls.recv(1)

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    tls.settimeout(None)
    calls = []
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            tls.recv(1024)
        go_on.set()
        assert tls.recv(1024) == b"after the first signal"
        signal.signal(signal.SIGALRM, lambda *args: calls.append(args))
        go_on.set()
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        assert tls.recv(1024) == b"after the second signal"
        assert calls, "the handler did not run"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    tls.sendall(b"!")
    assert future.result(IO_TIMEOUT) == b"!"


@pytest.mark.parametrize("impl", IMPLS)
def test_recv_into_every_kind_of_buffer(impl, pki, sockets, background):
    """recv_into into a bytearray, a memoryview slice, an array of ints and with nbytes 0
    (the whole buffer) or larger than the buffer: the same counts and bytes as the stdlib."""
    payload = random.Random(STREAM_SEED + 2).randbytes(200_000)
    client_sock, server_sock = sockets.pair()

    def serve():
        with hang_up_on_error(server_sock):
            tls = server_ctx("stdlib", pki).wrap_socket(server_sock, server_side=True)
            tls.sendall(payload)
            return tls.recv(1)

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    received = bytearray()
    backing = bytearray(30_000)
    ints = array.array("i", bytes(4000))
    targets = [
        (bytearray(5000), 0),
        (memoryview(backing)[1000:9000], 3000),
        (ints, 0),
        (bytearray(100), 1 << 20),
        (memoryview(backing)[:20000], 20000),
    ]
    while len(received) < len(payload):
        for target, nbytes in targets:
            count = tls.recv_into(target, nbytes)
            assert 0 < count <= (min(nbytes, memoryview(target).nbytes) if nbytes else memoryview(target).nbytes)
            received += memoryview(target).cast("B")[:count]
            if len(received) == len(payload):
                break
    assert received == payload
    tls.sendall(b"!")
    assert future.result(IO_TIMEOUT) == b"!"


@pytest.mark.parametrize("impl", IMPLS)
def test_timeouts_of_a_read_and_a_write_after_the_handshake(impl, pki, sockets, background):
    """With a 0.3 s timeout, recv() from a quiet peer and sendall() to a peer that does not read
    raise socket.timeout with the stdlib's messages, after about the timeout (not twice it)."""
    client_sock, server_sock = sockets.pair(small_buffers=True)
    done = threading.Event()

    def serve():
        with hang_up_on_error(server_sock):
            tls = server_ctx("stdlib", pki).wrap_socket(server_sock, server_side=True)
            done.wait(IO_TIMEOUT)
            return tls

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    tls.settimeout(0.3)
    results = []
    for call in (lambda: tls.recv(1024), lambda: tls.sendall(bytes(16384) * 256)):
        started = time.monotonic()
        with pytest.raises(socket.timeout) as raised:
            call()
        results.append((str(raised.value), time.monotonic() - started))
    done.set()
    future.result(IO_TIMEOUT)
    assert [message for message, _ in results] == ["The read operation timed out", "The write operation timed out"]
    for _, took in results:
        assert 0.25 < took < 0.6 + 0.3 * 255, took  # a sendall may wait once per piece that went
    assert results[0][1] < 0.6


# --------------------------------------------------------------------------------------------
# 7. A timeout bounds the whole handshake or read, however slowly the peer trickles
# --------------------------------------------------------------------------------------------

TRICKLE_TIMEOUT = 1.0


def _trickle(sock: socket.socket, data: bytes, stop: threading.Event, gap: float = 0.05) -> None:
    """Sends `data` a byte at a time, `gap` seconds apart, until done or `stop` is set."""
    for i in range(len(data)):
        if stop.wait(gap):
            return
        try:
            sock.sendall(data[i : i + 1])
        except OSError:
            return


def _timed_out_within(call) -> float:
    """Runs call(), which must raise socket.timeout; returns how long it took."""
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        call()
    return time.monotonic() - started


@pytest.mark.parametrize("impl", IMPLS)
def test_trickling_client_hello_times_out_the_server_handshake(impl, pki, sockets, background):
    """A client sending its ClientHello a byte every 50 ms (each recv gets something, well
    within the timeout): the server's handshake with a 1 s timeout ends at about 1 s, as the
    stdlib's does, not when the last byte comes."""
    client_sock, server_sock = sockets.pair()
    c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    hello_side = client_ctx("stdlib", pki).wrap_bio(c_in, c_out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        hello_side.do_handshake()
    stop = threading.Event()
    future = background(_trickle, client_sock, c_out.read() * 4, stop)
    server_sock.settimeout(TRICKLE_TIMEOUT)
    try:
        took = _timed_out_within(lambda: server_ctx(impl, pki).wrap_socket(server_sock, server_side=True))
    finally:
        stop.set()
        future.result(IO_TIMEOUT)
    assert TRICKLE_TIMEOUT * 0.9 < took < TRICKLE_TIMEOUT * 1.5, took


@pytest.mark.parametrize("impl", IMPLS)
def test_trickling_server_flight_times_out_the_client_handshake(impl, pki, sockets, background):
    """The same for a client (timeout=1 s) whose server sends its flight a byte at a time."""
    client_sock, server_sock = sockets.pair()
    stop = threading.Event()

    def serve():
        s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = server_ctx("stdlib", pki).wrap_bio(s_in, s_out, server_side=True)
        while True:
            with pytest.raises(ssl.SSLWantReadError):
                obj.do_handshake()
            if s_out.pending:
                break
            s_in.write(server_sock.recv(65536))
        _trickle(server_sock, s_out.read(), stop)

    future = background(serve)
    client_sock.settimeout(TRICKLE_TIMEOUT)
    ctx = client_ctx(impl, pki)
    try:
        took = _timed_out_within(lambda: ctx.wrap_socket(client_sock, server_hostname="localhost"))
    finally:
        stop.set()
        future.result(IO_TIMEOUT)
    assert TRICKLE_TIMEOUT * 0.9 < took < TRICKLE_TIMEOUT * 1.5, took


@pytest.mark.parametrize("impl", IMPLS)
def test_trickling_record_times_out_a_read(impl, pki, sockets, background):
    """After the handshake, a 16 KiB record trickled a byte every 50 ms: recv() with a 1 s
    timeout raises socket.timeout at about 1 s, as the stdlib's does."""
    client_sock, server_sock = sockets.pair()
    stop = threading.Event()

    def serve():
        peer = BIOPeer(server_ctx("stdlib", pki), server_sock, server_side=True)
        peer.handshake()
        peer.obj.write(bytes(16384))
        _trickle(server_sock, peer.outgoing.read(), stop)

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    tls.settimeout(TRICKLE_TIMEOUT)
    try:
        took = _timed_out_within(lambda: tls.recv(16384))
    finally:
        stop.set()
        future.result(IO_TIMEOUT)
    assert TRICKLE_TIMEOUT * 0.9 < took < TRICKLE_TIMEOUT * 1.5, took


@pytest.mark.parametrize("impl", IMPLS)
def test_reads_of_nothing_and_negative_sizes(impl, pki, sockets, background):
    """recv(0) is b"", recv_into an empty buffer is 0, both at once, without waiting for data;
    recv(-1) is ValueError: as the stdlib."""
    client_sock, server_sock = sockets.pair()

    def serve():
        with hang_up_on_error(server_sock):
            tls = server_ctx("stdlib", pki).wrap_socket(server_sock, server_side=True)
            return tls.recv(1)

    future = background(serve)
    tls = sockets.track(client_ctx(impl, pki).wrap_socket(client_sock, server_hostname="localhost"))
    assert tls.recv(0) == b""
    assert tls.recv_into(bytearray()) == 0
    assert tls.recv_into(bytearray(), 0) == 0
    with pytest.raises(ValueError, match="size should not be negative"):
        tls.recv(-1)
    tls.sendall(b"!")
    assert future.result(IO_TIMEOUT) == b"!"
