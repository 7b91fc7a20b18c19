"""Runs a protocol Connection over a blocking socket: handshake, send, receive, close.

This is the path the command line, the tests and the benchmarks use; the ssl-compatible
SSLSocket/SSLObject grow from it. Every wait honours the socket's timeout, the handshake's too.
"""

from __future__ import annotations

import collections
import socket
from typing import Deque, Optional

from .protocol import ApplicationData, Connection, ConnectionClosed, PeerAlert, TLSAlert

RECV_SIZE = 1 << 18


class TLSError(Exception):
    """The connection failed: `alert` names the TLS alert sent or received."""

    def __init__(self, message: str, alert: str, sent: bool):
        super().__init__(message)
        self.alert = alert
        self.sent = sent


class SocketEngine:
    def __init__(self, sock: socket.socket, conn: Connection):
        self.sock = sock
        self.conn = conn
        self._plaintext: Deque[bytes] = collections.deque()
        self.eof = False  # close_notify received

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def _feed(self, data: bytes) -> None:
        try:
            self._take(self.conn.receive_data(data))
        except TLSAlert as e:
            self._flush_quietly()
            raise TLSError(str(e), e.description.name, sent=True) from e
        except PeerAlert as e:
            raise TLSError(str(e), e.name, sent=False) from e
        finally:
            self._flush_quietly()

    def _take(self, events) -> None:
        for event in events:
            if isinstance(event, ApplicationData):
                self._plaintext.append(event.data)
            elif isinstance(event, ConnectionClosed):
                self.eof = True

    def _flush_quietly(self) -> None:
        try:
            self._flush()
        except OSError:
            pass

    def _read_more(self) -> bool:
        """Reads from the socket and processes it; False at TCP EOF. An error the connection
        held back behind data already delivered is raised first."""
        if self.conn.pending_error is not None:
            self._feed(b"")
        data = self.sock.recv(RECV_SIZE)
        if not data:
            return False
        self._feed(data)
        return True

    def do_handshake(self) -> None:
        self.conn.start_handshake()
        self._flush()
        while not self.conn.handshake_complete:
            if not self._read_more():
                raise TLSError("the peer closed the connection during the handshake", "unexpected_eof", sent=False)

    def sendall(self, data) -> None:
        self.conn.send_application_data(data)
        self._flush()

    def recv(self, bufsize: int = RECV_SIZE) -> bytes:
        """Up to bufsize bytes of application data; b"" after close_notify or TCP EOF."""
        while not self._plaintext and not self.eof:
            if not self._read_more():
                self.eof = True
        if not self._plaintext:
            return b""
        chunk = self._plaintext.popleft()
        if len(chunk) > bufsize:
            self._plaintext.appendleft(chunk[bufsize:])
            chunk = chunk[:bufsize]
        return chunk

    def close(self, wait_for_peer: bool = False, timeout: Optional[float] = 2.0) -> None:
        """Sends close_notify; optionally waits for the peer's."""
        self.conn.close()
        self._flush_quietly()
        if wait_for_peer and not self.eof:
            self.sock.settimeout(timeout)
            try:
                while not self.eof and self._read_more():
                    pass
            except (OSError, TLSError):
                pass
