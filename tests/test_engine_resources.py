"""The engine's use of threads, descriptors and memory, against the stdlib's (DESIGN.md principle 4).

Every test runs the side under test twice, on the stdlib's `ssl.SSLContext` (the reference: what
these tests ask of ferrotls is what CPython's `ssl` module on OpenSSL does) and on
`ferrotls.SSLContext`. The peer is always the stdlib `ssl` module, limited to TLS 1.2 (what
ferrotls speaks). Certificates come from conftest's `pki` (trustme).

- Threads: a reader thread in `recv()` and a writer thread in `sendall()` on one SSLSocket
  (websockets, proxies) move data both ways at once, intact; a close_notify arriving while the
  writer is inside a `sendall()` ends the reader with b"" and leaves the writer alone; writer
  threads that take turns under a lock do so beside a reader.
- Descriptors: an SSLSocket or SSLObject dropped without close() goes with its last reference
  (the stdlib's engine holds its owner by weak reference), not when the garbage collector runs.
- Memory: `sendall()` of 64 MiB and reading 64 MiB use bounded buffers, measured in a fresh
  process (the peak resident size, /proc/self/status VmHWM, reset before the transfer).

What the stdlib does NOT guarantee, and so is not tested (measured with CPython 3.11 and OpenSSL
3.0 while writing this module; OpenSSL says an SSL object may not be used by two threads at once,
and CPython 3.11 has no lock of its own around SSL_read/SSL_write):

- Two threads in `sendall()` at once on one SSLSocket: in most runs the peer fails with
  DECRYPTION_FAILED_OR_BAD_RECORD_MAC (the two writes race on the record sequence number and
  the write buffer) and the writers get SSLEOFError or SSLError BAD_LENGTH; sometimes it works;
  once the process aborted ("malloc(): unsorted double linked list corrupted"). Only writers
  serialised by the application are tested.
- A reader thread and a writer thread on a socket with a timeout: CPython then makes the
  descriptor non-blocking, and SSL_get_error reads the want-read/want-write state OpenSSL keeps
  per connection, which the other thread's call overwrites; a writer held up by a full socket
  buffer now and then fails with SSLEOFError "EOF occurred in violation of protocol" (16 of 100
  runs of the close_notify test below). On a blocking socket the same tests passed every time
  (360 runs): the threaded tests handshake with a timeout, then run their data phase with
  `settimeout(None)`, as a blocking client does.

Nothing may hang: every socket has a timeout or (the blocking data phases) a peer with a deadline
and an abort that shuts the client's socket down; every thread and child process has a deadline.
Nothing is timed.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import warnings
import weakref
from typing import Any, Callable, Dict, Optional, Sequence

import pytest

from dropin_async_helpers import HOST, IO_TIMEOUT, client_context, server_context

IMPLS = ["stdlib", "ferrotls"]
KiB, MiB = 1 << 10, 1 << 20
DEADLINE = 15.0  # seconds a test may wait for its threads or its child process in all
PROMPT = 5.0  # how long a peer waits for an EOF that should come at once
# Pieces of 16 KiB to 1 MiB, of sizes that do not line up with TLS records (16 KiB of plaintext).
WRITE_PIECES = [16 * KiB, 1 * MiB, 100_003, 512 * KiB, 16 * KiB + 1, 256 * KiB - 7, 64 * KiB]
READ_SIZES = [64 * KiB, 16 * KiB, 1 * MiB, 4 * KiB + 3, 1000]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def payload(size: int, seed: int = 0) -> bytes:
    """`size` pseudo-random bytes, none of it repeated: a lost, doubled or reordered piece
    changes the digest."""
    return hashlib.shake_256(b"ferrotls %d" % seed).digest(size)


def pieces(data, sizes: Sequence[int] = WRITE_PIECES):
    """`data` as memoryview slices of the given sizes, cycled."""
    view, offset, i = memoryview(data), 0, 0
    while offset < len(view):
        size = sizes[i % len(sizes)]
        yield view[offset : offset + size]
        offset, i = offset + size, i + 1


def sha256(data) -> str:
    return hashlib.sha256(data).hexdigest()


def listen(rcvbuf: Optional[int] = None) -> socket.socket:
    """A listening socket on 127.0.0.1 (ephemeral port); `rcvbuf` fixes the accepted sockets'
    receive buffer (no autotuning), so that a writer blocks soon after its reader stops."""
    listener = socket.create_server((HOST, 0))
    if rcvbuf:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    listener.settimeout(IO_TIMEOUT)
    return listener


def connect(impl: str, pki, port: int, sndbuf: Optional[int] = None) -> ssl.SSLSocket:
    """A client SSLSocket of `impl` ("stdlib" or "ferrotls") to 127.0.0.1:port, handshake done."""
    sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    tls = client_context(impl, pki.server_ca_path).wrap_socket(sock, server_hostname="localhost",
                                                              do_handshake_on_connect=False)
    tls.do_handshake()
    return tls


def stdlib_server_context(pki) -> ssl.SSLContext:
    return server_context("stdlib", pki.server.cert_path, pki.server.key_path)


class Thread(threading.Thread):
    """A daemon thread keeping its function's result or exception."""

    def __init__(self, fn: Callable[[], Any], name: str):
        super().__init__(name=name, daemon=True)
        self.fn, self.result, self.error = fn, None, None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as e:  # kept for the test to look at
            self.error = e

    def outcome(self, timeout: float = DEADLINE) -> Any:
        """The result once finished; re-raises the thread's exception."""
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"{self.name} still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result


def run_threads(named: Dict[str, Callable[[], Any]], peer: "StdlibPeer", tls: ssl.SSLSocket) -> Dict[str, Any]:
    """Runs each function of `named` in its own thread, using `tls`. As soon as one fails, or
    at the deadline, the connection is ended (the peer stops and closes; the client's socket is
    shut down with socket.socket's shutdown, SSLSocket's own would drop its engine under the
    running threads), which wakes up the others. Returns {name: result}, or raises an
    AssertionError with every thread's outcome and the peer's."""
    threads = [Thread(fn, name) for name, fn in named.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + DEADLINE
    while any(t.is_alive() for t in threads):
        if time.monotonic() > deadline or any(t.error is not None for t in threads):
            peer.abort()
            with contextlib.suppress(OSError):
                socket.socket.shutdown(tls, socket.SHUT_RDWR)
            for t in threads:
                t.join(2.0)
            break
        for t in threads:
            t.join(0.05)
    if all(not t.is_alive() and t.error is None for t in threads):
        return {t.name: t.result for t in threads}
    report = {t.name: "still running" if t.is_alive() else repr(t.error) if t.error else f"returned {t.result!r}"
              for t in threads}
    try:
        seen = peer.result()
        report["the peer"] = f"returned { {k: v for k, v in seen.items() if k != 'data'} }"
    except BaseException as e:
        report["the peer"] = repr(e)
    raise AssertionError(f"the threads failed: {report}") from next((t.error for t in threads if t.error), None)


@contextlib.contextmanager
def gc_disabled():
    """No cyclic garbage collection inside; afterwards what the test dropped is collected
    (quietly: an SSLSocket kept alive by a cycle warns that it was never closed)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


class StdlibPeer:
    """The reference peer: the stdlib's ssl as a TLS 1.2 server for one connection, full duplex
    in one thread (an ssl.SSLObject over MemoryBIOs, pumped with select() on a non-blocking
    socket), so the peer never shares an OpenSSL object between threads.

    It sends `send` (in pieces of WRITE_PIECES) while it reads everything the client sends
    (digest and count kept; the bytes too with `keep`). After all of `send` went out and
    `close_notify_after` bytes came in, it sends close_notify; with `resume` it then stops
    reading until that event is set. It ends when the client closes (close_notify or TCP EOF),
    on `abort()`, or at the deadline. `result()` gives what it saw or raises what went wrong."""

    def __init__(self, pki, send: bytes = b"", close_notify_after: Optional[int] = None,
                 resume: Optional[threading.Event] = None, keep: bool = False, rcvbuf: Optional[int] = None):
        self.context = stdlib_server_context(pki)
        self.send = send
        self.close_notify_after = close_notify_after
        self.resume = resume
        self.keep = keep
        self.listener = listen(rcvbuf)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = Thread(self._serve, "the stdlib peer")
        self._thread.start()

    def abort(self) -> None:
        self._stop.set()

    def result(self) -> dict:
        try:
            return self._thread.outcome()
        finally:
            self.abort()

    def _serve(self) -> dict:
        deadline = time.monotonic() + DEADLINE
        with self.listener:
            sock, _ = self.listener.accept()
        with sock:
            sock.settimeout(IO_TIMEOUT)
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = self.context.wrap_bio(incoming, outgoing, server_side=True)
            while True:  # the handshake, blocking
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(outgoing.read())
                    data = sock.recv(256 * KiB)
                    if not data:
                        raise ConnectionError("the client closed during the handshake")
                    incoming.write(data)
            sock.sendall(outgoing.read())
            sock.setblocking(False)
            return self._pump(sock, tls, incoming, outgoing, deadline)

    def _pump(self, sock, tls, incoming, outgoing, deadline) -> dict:
        digest, received, kept = hashlib.sha256(), 0, bytearray()
        to_send = pieces(self.send)
        sent, all_sent, close_sent = 0, not self.send, False
        ciphertext = bytearray()
        client_closed = None  # "close_notify" or "eof"
        while client_closed is None:
            if self._stop.is_set():
                raise ConnectionAbortedError(f"aborted by the test: sent {sent}, received {received}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stdlib peer is still running: sent {sent}, received {received}")
            while not all_sent and len(ciphertext) < MiB:  # plaintext in as the socket takes it
                piece = next(to_send, None)
                if piece is None:
                    all_sent = True
                else:
                    tls.write(piece)
                    sent += len(piece)
                    ciphertext += outgoing.read()
            if (all_sent and not close_sent and self.close_notify_after is not None
                    and received >= self.close_notify_after):
                try:
                    tls.unwrap()  # sends close_notify; the client's comes later, or not
                except ssl.SSLWantReadError:
                    pass
                close_sent = True
                ciphertext += outgoing.read()
            reading = not (close_sent and self.resume is not None and not self.resume.is_set())
            readable, writable, _ = select.select([sock] if reading else [], [sock] if ciphertext else [], [], 0.05)
            if writable:
                with contextlib.suppress(BlockingIOError):
                    del ciphertext[: sock.send(ciphertext)]
            if not readable:
                continue
            try:
                data = sock.recv(256 * KiB)
            except BlockingIOError:
                continue
            if not data:
                client_closed = "eof"
                break
            incoming.write(data)
            while True:
                try:
                    plain = tls.read(MiB)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:  # the client's close_notify, after ours
                    plain = b""
                if not plain:
                    client_closed = "close_notify"
                    break
                digest.update(plain)
                received += len(plain)
                if self.keep:
                    kept += plain
            ciphertext += outgoing.read()
        if ciphertext:  # the rest, in case the client still reads
            with contextlib.suppress(OSError):
                sock.settimeout(1.0)
                sock.sendall(ciphertext)
        return {"sent": sent, "received": received, "sha256": digest.hexdigest(), "data": bytes(kept),
                "client_closed": client_closed, "close_notify_sent": close_sent}


def read_until_eof(tls: ssl.SSLSocket, sizes: Sequence[int] = READ_SIZES) -> dict:
    """recv() with the given sizes, cycled, until b"": count and digest of what came."""
    digest, received, i = hashlib.sha256(), 0, 0
    while True:
        data = tls.recv(sizes[i % len(sizes)])
        i += 1
        if not data:
            return {"received": received, "sha256": digest.hexdigest()}
        digest.update(data)
        received += len(data)


# Length-prefixed messages, to see whether whole sendall() calls arrive whole.
HEADER = struct.Struct(">IHI")  # body length, writer, sequence number


def message(writer: int, seq: int, size: int) -> bytes:
    return HEADER.pack(size, writer, seq) + payload(size, writer * 1_000_003 + seq)


def parse_messages(stream: bytes) -> dict:
    """The whole messages in a stream, as (writer, seq) in arrival order, and the offset of
    the first thing that is not a whole message (None when there is none)."""
    offset, order = 0, []
    while offset < len(stream):
        if offset + HEADER.size > len(stream):
            break
        size, writer, seq = HEADER.unpack_from(stream, offset)
        end = offset + HEADER.size + size
        if end > len(stream) or stream[offset:end] != message(writer, seq, size):
            break
        order.append((writer, seq))
        offset = end
    return {"order": order, "broken_at": None if offset == len(stream) else offset}


# --------------------------------------------------------------------------------------------
# 5. Threads: a reader and a writer on one SSLSocket
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("close_after", ["everything", "half"])
@pytest.mark.parametrize("impl", IMPLS)
def test_reader_and_writer_threads_move_data_both_ways(impl, close_after, pki):
    """A reader thread in recv() and a writer thread in sendall() on one (blocking) SSLSocket,
    32 MiB each way at once, in pieces of 16 KiB to 1 MiB: everything arrives intact both ways,
    no exception. The peer, done sending, sends close_notify once it has received everything,
    or half of it (the writer most likely still at work, the peer still reading): the reader
    ends with b"" and the writer, untroubled, finishes.

    The stdlib releases the GIL in SSL_read and SSL_write, so the two threads really run at once
    on one OpenSSL object; in TLS 1.2 reading and writing keep apart (keys, sequence numbers,
    buffers), which is what makes this work on a blocking socket (see the module docstring for
    a socket with a timeout). SSL_read does not answer a close_notify (the stdlib's close() sends
    none either), so nothing is written behind the writer's back: the peer sees plain TCP EOF."""
    size = 32 * MiB
    up, down = payload(size, 1), payload(size, 2)
    peer = StdlibPeer(pki, send=down, close_notify_after=size if close_after == "everything" else size // 2)
    tls = connect(impl, pki, peer.port)
    tls.settimeout(None)
    try:
        def writer():
            for piece in pieces(up):
                tls.sendall(piece)

        done = run_threads({"reader": lambda: read_until_eof(tls), "writer": writer}, peer, tls)
    finally:
        tls.close()
    seen = peer.result()
    assert done["reader"] == {"received": size, "sha256": sha256(down)}
    assert (seen["received"], seen["sha256"]) == (size, sha256(up))
    assert (seen["sent"], seen["close_notify_sent"], seen["client_closed"]) == (size, True, "eof")


@pytest.mark.parametrize("impl", IMPLS)
def test_close_notify_while_the_writer_is_in_sendall(impl, pki):
    """The peer sends 4 MiB and then close_notify while the writer thread is inside one
    sendall() of 32 MiB, and stops reading until the reader thread has seen b"" (so that
    sendall is provably unfinished then: small socket buffers, a peer not reading). The reader
    gets the 4 MiB intact and then b""; the writer's sendall completes without error; the
    peer, reading again, gets all 32 MiB intact.

    The stdlib: SSL_read returns 0 at the close_notify (recv() gives b""), and OpenSSL refuses
    to write only once close_notify was *sent* (PROTOCOL_IS_SHUTDOWN), not once one came in, so
    the writer goes on: a half-closed connection, in TLS 1.2 as well."""
    size, back = 32 * MiB, 4 * MiB
    up, down = payload(size, 3), payload(back, 4)
    reader_saw_eof, writer_done = threading.Event(), threading.Event()
    peer = StdlibPeer(pki, send=down, close_notify_after=back, resume=reader_saw_eof, rcvbuf=256 * KiB)
    tls = connect(impl, pki, peer.port, sndbuf=256 * KiB)
    tls.settimeout(None)
    try:
        def reader():
            got = read_until_eof(tls)
            got["writer_done_at_eof"] = writer_done.is_set()
            reader_saw_eof.set()
            return got

        def writer():
            tls.sendall(up)
            writer_done.set()

        done = run_threads({"reader": reader, "writer": writer}, peer, tls)
    finally:
        tls.close()
    seen = peer.result()
    assert done["reader"] == {"received": back, "sha256": sha256(down), "writer_done_at_eof": False}
    assert (seen["received"], seen["sha256"]) == (size, sha256(up))
    assert (seen["close_notify_sent"], seen["client_closed"]) == (True, "eof")


@pytest.mark.parametrize("impl", IMPLS)
def test_writers_taking_turns_beside_a_reader(impl, pki):
    """Two writer threads that take turns under the application's lock (the stdlib needs it:
    unlocked, two sendall() at once corrupt the stream, see the module docstring), each
    sendall() one whole length-prefixed message of 100 B to 300 KiB, while a reader thread
    receives 8 MiB: every message arrives whole, each writer's in order, none lost, and the
    reader's 8 MiB intact."""
    sizes, count = [100, 5000, 16 * KiB, 100_000, 300 * KiB], 40
    messages = {w: [message(w, i, sizes[i % len(sizes)]) for i in range(count)] for w in (1, 2)}
    total = sum(len(m) for batch in messages.values() for m in batch)
    down = payload(8 * MiB, 5)
    peer = StdlibPeer(pki, send=down, close_notify_after=total, keep=True)
    tls = connect(impl, pki, peer.port)
    tls.settimeout(None)
    lock = threading.Lock()
    try:
        def writer(w: int):
            for m in messages[w]:
                with lock:
                    tls.sendall(m)

        done = run_threads({"reader": lambda: read_until_eof(tls), "writer 1": lambda: writer(1),
                            "writer 2": lambda: writer(2)}, peer, tls)
    finally:
        tls.close()
    seen = peer.result()
    assert done["reader"] == {"received": len(down), "sha256": sha256(down)}
    stream = parse_messages(seen["data"])
    assert (stream["broken_at"], seen["received"]) == (None, total)
    for w in (1, 2):
        assert [seq for writer, seq in stream["order"] if writer == w] == list(range(count))


# --------------------------------------------------------------------------------------------
# 6. Descriptors: what is dropped goes with its last reference
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_dropped_sslsocket_closes_its_connection(impl, pki):
    """A client SSLSocket, handshake done, dropped without close() while the garbage collector
    is off: no weak reference to it survives the `del`, and the peer sees the connection end at
    once (recv() gives b"" or raises; it must not wait out its timeout).

    The stdlib: the C engine (_ssl._SSLSocket) holds the SSLSocket (its owner) and the socket
    by weak reference, so no cycle keeps them; the last reference closes the descriptor."""
    listener = listen()
    context = stdlib_server_context(pki)

    def serve():
        return accept_tls(listener, context)  # handshake included

    server = Thread(serve, "the stdlib server")
    server.start()
    tls = connect(impl, pki, listener.getsockname()[1])
    with server.outcome() as peer, gc_disabled():
        alive = weakref.ref(tls)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # "unclosed <ssl.SSLSocket ...>": on purpose
            del tls
        peer.settimeout(PROMPT)
        try:
            seen = "eof" if peer.recv(1024) == b"" else "data"
        except TimeoutError:
            seen = f"nothing within {PROMPT} s"
        except OSError:  # reset, or a TLS EOF error
            seen = "eof"
        assert {"sslsocket_alive": alive() is not None, "peer_saw": seen} == {
            "sslsocket_alive": False, "peer_saw": "eof"}


@pytest.mark.parametrize("impl", IMPLS)
def test_dropped_sslobject_goes_with_its_last_reference(impl, pki):
    """A client SSLObject (wrap_bio), handshake done and a record sent, dropped while the
    garbage collector is off: no weak reference to it survives the `del` (asyncio's leak tests
    count on this). The stdlib: the C engine holds its owner, the SSLObject, by weak reference."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context(impl, pki.server_ca_path).wrap_bio(c_in, c_out, server_hostname="localhost")
    server = stdlib_server_context(pki).wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    assert done == {"client": True, "server": True}
    client.write(b"ping")
    s_in.write(c_out.read())
    assert server.read(4) == b"ping"
    with gc_disabled():
        alive = weakref.ref(client)
        del client
        assert alive() is None, "the SSLObject outlived its last reference (a reference cycle)"


# --------------------------------------------------------------------------------------------
# 7. Memory: bounded buffers for big writes and reads
# --------------------------------------------------------------------------------------------

# Run in a fresh interpreter: connects to the peer, handshakes, moves 1 MiB first (what lives
# per connection is allocated then), measures, moves `size` bytes, measures again, prints JSON.
RSS_CHILD = r'''
import json, socket, ssl, sys

impl, port, cafile, mode, size = json.loads(sys.argv[1])
WARM = PIECE = 1 << 20


def memory():
    """Current and peak resident size in bytes (/proc/self/status VmRSS, VmHWM)."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(value.split()[0]) * 1024
    return values


def reset_peak():
    """VmHWM back to the current size ("5" into clear_refs, Linux 4.0 and later)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


if impl == "ferrotls":
    import ferrotls
    context = ferrotls.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
else:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
context.load_verify_locations(cafile)
tls = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost")


def receive(n, buffer):
    got = 0
    while got < n:
        if buffer is None:
            k = len(tls.recv(min(PIECE, n - got)))
        else:
            k = tls.recv_into(buffer, min(len(buffer), n - got))
        if not k:
            raise EOFError(f"EOF after {got} of {n} bytes")
        got += k


if mode.startswith("sendall"):
    data = bytes(range(256)) * (size // 256)  # every page touched: resident before measuring
    if mode == "sendall_memoryview":
        data = memoryview(data)
    tls.sendall(data[:WARM])
    before = memory()
    peak_reset = reset_peak()
    tls.sendall(data)
    after = memory()
    assert tls.recv(1) == b"k", "the peer did not get everything"
else:
    buffer = bytearray(PIECE) if mode == "recv_into" else None
    receive(WARM, buffer)
    before = memory()
    peak_reset = reset_peak()
    receive(size, buffer)
    after = memory()
    tls.sendall(b"k")
tls.close()
print(json.dumps({"before": before, "after": after, "peak_reset": peak_reset}))
'''

MEMORY_SIZE = 64 * MiB
MEMORY_BOUND = 16 * MiB


def accept_tls(listener, context):
    """The one connection `listener` takes, wrapped by the stdlib `context` (handshake done)."""
    with listener:
        raw, _ = listener.accept()
    raw.settimeout(IO_TIMEOUT)
    return context.wrap_socket(raw, server_side=True)


def memory_peer(pki, peer_sends: bool, size: int):
    """A stdlib server in a thread for the child: it reads `size` bytes (recv_into one 1 MiB
    buffer) and answers b"k", or sends `size` bytes (one 1 MiB buffer over and over) and waits
    for b"k". Returns (port, thread)."""
    listener = listen()
    context = stdlib_server_context(pki)

    def serve():
        with accept_tls(listener, context) as tls:
            buffer = bytearray(MiB)
            if peer_sends:
                for offset in range(0, size, MiB):
                    tls.sendall(memoryview(buffer)[: min(MiB, size - offset)])
                return tls.recv(1)
            got = 0
            while got < size:
                k = tls.recv_into(buffer, min(MiB, size - got))
                if not k:
                    raise EOFError(f"the child closed after {got} of {size} bytes")
                got += k
            tls.sendall(b"k")
            return got

    thread = Thread(serve, "the stdlib peer")
    thread.start()
    return listener.getsockname()[1], thread


def measure_in_child(impl: str, pki, mode: str) -> dict:
    """Runs RSS_CHILD for `mode` against a memory_peer; its JSON, plus the peak and current
    growth over the resident size before the transfer."""
    port, peer = memory_peer(pki, not mode.startswith("sendall"), 1 * MiB + MEMORY_SIZE)
    args = json.dumps([impl, port, pki.server_ca_path, mode, MEMORY_SIZE])
    try:
        child = subprocess.run([sys.executable, "-c", RSS_CHILD, args], capture_output=True, text=True,
                               timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the child ({impl}, {mode}) did not finish within {DEADLINE} s") from None
    finally:
        peer.join(DEADLINE)
    assert child.returncode == 0, child.stderr[-3000:]
    peer.outcome()
    figures = json.loads(child.stdout.splitlines()[-1])
    assert figures["peak_reset"], "could not reset VmHWM (/proc/self/clear_refs)"
    figures["peak_growth"] = figures["after"]["VmHWM"] - figures["before"]["VmRSS"]
    figures["rss_growth"] = figures["after"]["VmRSS"] - figures["before"]["VmRSS"]
    return figures


@pytest.mark.parametrize("mode", ["sendall_bytes", "sendall_memoryview"])
@pytest.mark.parametrize("impl", IMPLS)
def test_sendall_of_64_mib_uses_bounded_memory(impl, mode, pki):
    """sendall() of 64 MiB (one bytes object, or a memoryview of it), allocated before
    measuring, to a peer that reads and discards: the sender's peak resident size grows by less
    than 16 MiB. The stdlib: SSL_write seals record by record into the connection's write
    buffer (one record's worth), so the growth is about nil."""
    figures = measure_in_child(impl, pki, mode)
    print(f"{impl} {mode}: peak +{figures['peak_growth'] / KiB:.0f} KiB, "
          f"resident +{figures['rss_growth'] / KiB:.0f} KiB")
    assert figures["peak_growth"] < MEMORY_BOUND, figures


@pytest.mark.parametrize("mode", ["recv", "recv_into"])
@pytest.mark.parametrize("impl", IMPLS)
def test_reading_64_mib_uses_bounded_memory(impl, mode, pki):
    """Reading 64 MiB with recv(1 MiB) (each piece dropped at once) or recv_into() a reused
    1 MiB bytearray: the reader's peak resident size grows by less than 16 MiB. The stdlib:
    SSL_read opens one record at a time into one connection buffer."""
    figures = measure_in_child(impl, pki, mode)
    print(f"{impl} {mode}: peak +{figures['peak_growth'] / KiB:.0f} KiB, "
          f"resident +{figures['rss_growth'] / KiB:.0f} KiB")
    assert figures["peak_growth"] < MEMORY_BOUND, figures


NON_READING_CHILD = r"""
import gc, json, os, socket, ssl, sys, threading, time
impl, cert, key, cafile, clients = json.loads(sys.argv[1])
if impl == "ferrotls":
    import ferrotls
    server_ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_SERVER)
else:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain(cert, key)
client_ctx = ssl.create_default_context(cafile=cafile)

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))

payload = os.urandom(16 << 20)
listener = socket.create_server(("127.0.0.1", 0))
held = []

def serve(conn):
    try:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(payload)
    except OSError:
        pass  # the client closed without reading: expected

gc.collect()
before = rss()
threads = []
for _ in range(clients):
    sock = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    conn.settimeout(30)
    thread = threading.Thread(target=serve, args=(conn,))
    thread.start()
    threads.append(thread)
    held.append(client_ctx.wrap_socket(sock, server_hostname="localhost"))
time.sleep(1.0)  # every server is blocked in sendall with the socket buffers full
during = rss()
for tls in held:
    tls.close()
for thread in threads:
    thread.join(30)
gc.collect()
print(json.dumps({"during": during - before, "after": rss() - before}))
"""


@pytest.mark.parametrize("impl", IMPLS)
def test_writing_to_clients_that_never_read_uses_bounded_memory(impl, pki):
    """A server in one process writing 16 MiB to each of 20 clients that never read (each
    server thread blocked in sendall): the process grows by less than 1 MiB a connection while
    they are stuck, and keeps less than 8 MiB of it once the clients have gone (before the
    engine wrote in bounded pieces, this held hundreds of MiB)."""
    args = json.dumps([impl, pki.server.cert_path, pki.server.key_path, pki.server_ca_path, 20])
    child = subprocess.run([sys.executable, "-c", NON_READING_CHILD, args], capture_output=True, text=True,
                           timeout=60)
    assert child.returncode == 0, child.stderr[-3000:]
    figures = json.loads(child.stdout.splitlines()[-1])
    print(f"{impl}: +{figures['during'] / MiB:.1f} MiB while stuck, +{figures['after'] / MiB:.1f} MiB after")
    assert figures["during"] < 20 * MiB, figures
    assert figures["after"] < 8 * MiB, figures
