"""Where the engine's bytes come from and go: a socket (read without taking more than asked,
peeked at, and discarded exactly) or a pair of ssl.MemoryBIOs."""

from __future__ import annotations

import os
import socket
import sys
import weakref

from . import sslerrors

# The largest record (RFC 5246 6.2.3): the scratch buffer for discarding needs no more.
MAX_RECORD = 5 + (1 << 14) + 2048




class SocketTransport:
    """Raw I/O on the socket itself, bypassing SSLSocket's own methods; the socket's timeout
    applies to each operation, as in the stdlib. The socket is held by weak reference."""

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

    def _recv_into(self, view: memoryview, n: int, flags: int, operation: str) -> int:
        try:
            return socket.socket.recv_into(self.sock, view, n, flags)
        except BlockingIOError:
            raise sslerrors.want_read() from None
        except socket.timeout:
            raise socket.timeout(f"The {operation} operation timed out") from None

    def peek_into(self, buf: bytearray, n: int, operation: str) -> int:
        """Copies up to n bytes that have arrived into buf, leaving them in the socket."""
        return self._recv_into(memoryview(buf), n, socket.MSG_PEEK, operation)

    def recv_into(self, buf: bytearray, at: int, n: int, operation: str) -> int:
        """Reads up to n bytes into buf[at:]. On a socket with a timeout (a non-blocking
        descriptor) the read is tried first and the wait comes only when nothing has arrived,
        as OpenSSL does: Python's recv would poll before every read."""
        sock = self.sock
        view = memoryview(buf)[at : at + n]
        timeout = sock.gettimeout()
        if timeout is None:
            got = self._recv_into(view, n, 0, operation)
        else:
            try:
                got = os.readv(sock.fileno(), [view])
            except BlockingIOError:
                if timeout == 0.0:
                    raise sslerrors.want_read() from None
                got = self._recv_into(view, n, 0, operation)
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

    def send(self, data: memoryview, operation: str) -> int:
        """Sends all of `data` on a blocking socket or one with a timeout (what fits at once
        first, without the poll Python's send does first, then the rest with the timeout); as
        much as fits on a non-blocking one."""
        sock = self.sock
        timeout = sock.gettimeout()
        sent = 0
        if timeout is not None:
            try:
                sent = os.writev(sock.fileno(), [data])
            except BlockingIOError:
                pass
        if timeout != 0.0 and sent < len(data):
            try:
                socket.socket.sendall(sock, data[sent:])
            except socket.timeout:
                raise socket.timeout(f"The {operation} operation timed out") from None
            sent = len(data)
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

    def _stage(self) -> int:
        if self._used == len(self._staged):
            self._staged, self._used = self.incoming.read(), 0
            if not self._staged and not self.incoming.eof:
                raise sslerrors.want_read()
        return len(self._staged) - self._used

    def peek_into(self, buf: bytearray, n: int, operation: str) -> int:
        n = min(n, self._stage())
        buf[:n] = memoryview(self._staged)[self._used : self._used + n]
        return n

    def recv_into(self, buf: bytearray, at: int, n: int, operation: str) -> int:
        with memoryview(buf)[at:] as view:
            n = self.peek_into(view, n, operation)  # type: ignore[arg-type]
        self._used += n
        return n

    def discard(self, buf: bytearray, n: int) -> None:
        self._used += n

    def send(self, data: memoryview, operation: str) -> int:
        return self.outgoing.write(data)
