"""Where the engine's bytes come from and go: a socket (read without taking more than asked,
peeked at, and discarded exactly) or a pair of ssl.MemoryBIOs."""

from __future__ import annotations

import os
import select
import socket
import sys
import time
import weakref
from typing import Optional

from . import sslerrors

# The largest record (RFC 5246 6.2.3): the scratch buffer for discarding needs no more.
MAX_RECORD = 5 + (1 << 14) + 2048


class Operation:
    """A handshake, read or write: its name, for the stdlib's timeout message, and on a socket
    with a timeout the monotonic time by which all of it must be done. As in the stdlib, the
    timeout bounds the whole operation, not each system call: a peer that trickles bytes cannot
    stretch it."""

    __slots__ = ("name", "deadline")

    def __init__(self, name: str, deadline: Optional[float] = None):
        self.name = name
        self.deadline = deadline

    def timed_out(self) -> socket.timeout:
        return socket.timeout(f"The {self.name} operation timed out")


def _wait(sock: socket.socket, writing: bool, operation: Operation) -> None:
    """Waits until `sock` is ready, or raises the operation's timeout at its deadline."""
    left = operation.deadline - time.monotonic()
    if left > 0:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLOUT if writing else select.POLLIN)
            ready = poller.poll(left * 1000)
        else:
            ready = select.select([], [sock], [], left)[1] if writing else select.select([sock], [], [], left)[0]
        if ready:
            return
    raise operation.timed_out()


class SocketTransport:
    """Raw I/O on the socket itself, bypassing SSLSocket's own methods. On a socket with a
    timeout the engine's operation bounds the wait; a non-blocking one raises "want read" or
    "want write". The socket is held by weak reference."""

    is_bio = False

    def __init__(self, sock: socket.socket):
        self.sock_ref = weakref.ref(sock)
        # Linux discards TCP data with MSG_TRUNC without copying it; elsewhere, and on other
        # socket types, discarded bytes are read into a scratch buffer.
        self._truncates = (sys.platform == "linux" and sock.type == socket.SOCK_STREAM
                           and sock.family in (socket.AF_INET, socket.AF_INET6))
        self._scratch = b""
        self.bytes_read = 0
        self.bytes_written = 0

    @property
    def sock(self) -> socket.socket:
        sock = self.sock_ref()
        if sock is None:
            raise ValueError("the socket is gone")
        return sock

    def operation(self, name: str) -> Operation:
        """A new operation; its deadline is the socket's timeout from now."""
        timeout = self.sock.gettimeout()
        return Operation(name, time.monotonic() + timeout if timeout else None)

    def peek_into(self, buf: bytearray, n: int, operation: Operation) -> int:
        """Copies up to n bytes that have arrived into buf, leaving them in the socket."""
        sock = self.sock
        if sock.gettimeout() is None:
            return socket.socket.recv_into(sock, memoryview(buf), n, socket.MSG_PEEK)
        if operation.deadline is not None:
            _wait(sock, False, operation)  # then Python's recv finds it ready at once
        try:
            return socket.socket.recv_into(sock, memoryview(buf), n, socket.MSG_PEEK)
        except BlockingIOError:
            raise sslerrors.want_read() from None

    def recv_into(self, buf: bytearray, at: int, n: int, operation: Operation) -> int:
        """Reads up to n bytes into buf[at:]. On a socket with a timeout (a non-blocking
        descriptor) the read is tried first and the wait comes only when nothing has arrived,
        as OpenSSL does: Python's recv would poll before every read."""
        sock = self.sock
        view = memoryview(buf)[at : at + n]
        if sock.gettimeout() is None:
            got = socket.socket.recv_into(sock, view, n)
        else:
            while True:
                try:
                    got = os.readv(sock.fileno(), [view])
                    break
                except BlockingIOError:
                    if operation.deadline is None:  # a non-blocking socket
                        raise sslerrors.want_read() from None
                    _wait(sock, False, operation)
        self.bytes_read += got
        return got

    def discard(self, buf: bytearray, n: int) -> None:
        """Takes n bytes that peek_into saw out of the socket."""
        self.bytes_read += n
        if self._truncates:
            while n:
                n -= socket.socket.recv_into(self.sock, buf, n, socket.MSG_TRUNC)
            return
        if len(self._scratch) < min(n, MAX_RECORD):
            self._scratch = bytearray(min(n, MAX_RECORD))
        while n:
            n -= socket.socket.recv_into(self.sock, self._scratch, min(n, len(self._scratch)))

    def send(self, data: memoryview, operation: Operation) -> int:
        """Sends all of `data` on a blocking socket or one with a timeout (by its deadline); as
        much as fits on a non-blocking one."""
        sock = self.sock
        if sock.gettimeout() is None:
            socket.socket.sendall(sock, data)
            sent = len(data)
        else:
            sent = 0
            while sent < len(data):
                try:
                    sent += os.writev(sock.fileno(), [data[sent:]])
                except BlockingIOError:
                    if operation.deadline is None:  # a non-blocking socket: what fits went
                        break
                    _wait(sock, True, operation)
        self.bytes_written += sent
        return sent


class BIOTransport:
    """ssl.MemoryBIO in and out: reading an empty BIO means "want read" until it is at EOF.
    A MemoryBIO cannot be peeked at: what was read from it and not yet used waits here."""

    is_bio = True
    sock = None

    def __init__(self, incoming, outgoing):
        self.incoming = incoming
        self.outgoing = outgoing
        self._staged = b""
        self._used = 0

    def operation(self, name: str) -> Operation:
        return Operation(name)  # a BIO never waits

    def _stage(self) -> int:
        if self._used == len(self._staged):
            self._staged, self._used = self.incoming.read(), 0
            if not self._staged and not self.incoming.eof:
                raise sslerrors.want_read()
        return len(self._staged) - self._used

    def peek_into(self, buf: bytearray, n: int, operation: Operation) -> int:
        n = min(n, self._stage())
        buf[:n] = memoryview(self._staged)[self._used : self._used + n]
        return n

    def recv_into(self, buf: bytearray, at: int, n: int, operation: Operation) -> int:
        with memoryview(buf)[at:] as view:
            n = self.peek_into(view, n, operation)  # type: ignore[arg-type]
        self._used += n
        return n

    def discard(self, buf: bytearray, n: int) -> None:
        self._used += n

    def send(self, data: memoryview, operation: Operation) -> int:
        return self.outgoing.write(data)
