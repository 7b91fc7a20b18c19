"""Runs a protocol Connection over a socket or a pair of MemoryBIOs.

SSLEngine is what ssl.SSLSocket and ssl.SSLObject wrap; SocketEngine is the plain blocking
interface the command line, the tests and the benchmarks use. Every wait honours the socket's
timeout, the handshake's too.
"""

from __future__ import annotations

import collections
import socket
import ssl
from typing import Deque, List, Optional, Tuple

from . import sslerrors
from .protocol import AlertDescription, ApplicationData, Connection, ConnectionClosed, PeerAlert, Session, TLSAlert

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
            raise TLSError(str(e), e.description.name, sent=e.send) from e
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


# ---------------------------------------------------------------------------------------------
# The engine behind ssl.SSLSocket and ssl.SSLObject (what ssl.SSLContext._wrap_socket and
# _wrap_bio return in CPython's _ssl module), over a socket or a pair of MemoryBIOs.
# ---------------------------------------------------------------------------------------------


class SocketTransport:
    """Raw I/O on the socket itself, bypassing SSLSocket's own send and recv; the socket's
    timeout applies to each operation, as in the stdlib."""

    is_bio = False

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def timeout(self) -> Optional[float]:
        return self.sock.gettimeout()

    def recv(self, n: int, operation: str) -> bytes:
        try:
            return socket.socket.recv(self.sock, n)
        except BlockingIOError:
            raise sslerrors.want_read() from None
        except TimeoutError:
            raise TimeoutError(f"The {operation} operation timed out") from None

    def send(self, data: bytes, operation: str) -> int:
        """Sends all of `data` on a blocking socket; as much as fits on a non-blocking one."""
        try:
            if self.sock.gettimeout() == 0.0:
                return socket.socket.send(self.sock, data)
            socket.socket.sendall(self.sock, data)
            return len(data)
        except BlockingIOError:
            return 0
        except TimeoutError:
            raise TimeoutError(f"The {operation} operation timed out") from None


class BIOTransport:
    """ssl.MemoryBIO in and out: reading an empty BIO means "want read" until it is at EOF."""

    is_bio = True

    def __init__(self, incoming, outgoing):
        self.incoming = incoming
        self.outgoing = outgoing

    def timeout(self) -> Optional[float]:
        return 0.0

    def recv(self, n: int, operation: str) -> bytes:
        data = self.incoming.read(n)
        if not data and not self.incoming.eof:
            raise sslerrors.want_read()
        return data

    def send(self, data: bytes, operation: str) -> int:
        return self.outgoing.write(data)


class SSLSession:
    """What ssl.SSLSocket.session gives: a resumable session (tickets or session IDs)."""

    def __init__(self, session: Session):
        self._session = session

    id = property(lambda self: self._session.session_id)
    time = property(lambda self: int(self._session.created))
    timeout = property(lambda self: self._session.lifetime_hint or 7200)
    ticket_lifetime_hint = property(lambda self: self._session.lifetime_hint)
    has_ticket = property(lambda self: bool(self._session.ticket))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SSLSession) and other._session.encode() == self._session.encode()

    def __hash__(self) -> int:
        return hash(self._session.master_secret)


class SSLEngine:
    """The `_sslobj` of ssl.SSLSocket / ssl.SSLObject, running a protocol Connection. Its
    construction does no I/O; the handshake starts with do_handshake, read or write."""

    def __init__(self, context, transport, server_side: bool, server_hostname: Optional[str], owner, session):
        if server_side and server_hostname:
            raise ValueError("server_hostname can only be specified in client mode")
        if not server_side and context.check_hostname and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        self._context = context
        self._transport = transport
        self.server_side = server_side
        self.server_hostname = server_hostname
        self.owner = owner
        self._session: Optional[SSLSession] = session
        self.conn: Optional[Connection] = None
        self._plaintext: Deque[bytes] = collections.deque()
        self._pending = 0
        self._unsent = b""
        self._eof = False  # close_notify received (or a TCP EOF tolerated by the options)
        self._done = False  # handshake finished and accounted for

    # Properties the stdlib wrappers expose.

    @property
    def context(self):
        return self._context

    @context.setter
    def context(self, ctx) -> None:
        from .context import SSLContext

        if not isinstance(ctx, SSLContext):
            raise TypeError("The value must be a ferrotls SSLContext")
        self._context = ctx

    @property
    def session(self) -> Optional[SSLSession]:
        if self.conn is not None and self.conn.session is not None:
            return SSLSession(self.conn.session)
        return self._session

    @session.setter
    def session(self, session: Optional[SSLSession]) -> None:
        if self.server_side:
            raise ValueError("Cannot set session for server-side SSLSocket.")
        if self.conn is not None:
            raise ValueError("Cannot set session after handshake.")
        if session is not None and not isinstance(session, SSLSession):
            raise TypeError("Value is not a SSLSession.")
        self._session = session

    @property
    def session_reused(self) -> bool:
        return bool(self.conn is not None and self.conn.resumed)

    # The handshake.

    def _start(self) -> None:
        if not self._context._tls12_enabled():
            raise sslerrors.no_protocols()
        config = self._context._tls_config(self.server_side, self)
        self.conn = Connection(
            config,
            not self.server_side,
            server_hostname=self.server_hostname,
            session=self._session._session if self._session is not None else None,
        )
        self._context._count("accept" if self.server_side else "connect")
        self.conn.start_handshake()

    def _on_server_name(self, server_name: Optional[str]):
        """The context's sni_callback, given the SSLSocket/SSLObject, the name and the context;
        it may switch the context (a new certificate) or return an alert number."""
        callback = self._context.sni_callback
        before = self._context
        try:
            result = callback(self.owner, server_name, before) if callback is not None else None
        except Exception:
            raise TLSAlert(AlertDescription.handshake_failure, sslerrors.CALLBACK_FAILED) from None
        if result is not None:
            raise TLSAlert(AlertDescription(result), sslerrors.CALLBACK_FAILED)
        if self._context is not before:
            return self._context._tls_config(True, None)
        return None

    def do_handshake(self) -> None:
        if self.conn is None:
            self._start()
        conn = self.conn
        while True:
            self._flush("handshake")
            if conn.handshake_complete:
                break
            self._receive("handshake")
        if not self._done:
            self._done = True
            self._context._count("accept_good" if self.server_side else "connect_good")
            if self.server_side and conn.resumed:
                self._context._count("hits")
            elif self.server_side and conn.session_offered:
                self._context._count("misses")  # as OpenSSL: a session asked for and not found
            self._context._write_keylog(conn.client_random, conn.master_secret)

    # Reading and writing.

    def _feed(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except (TLSAlert, PeerAlert) as e:
            self._flush_quietly()
            raise sslerrors.from_protocol_error(e, self.server_hostname) from None
        for event in events:
            if isinstance(event, ApplicationData):
                self._plaintext.append(event.data)
                self._pending += len(event.data)
            elif isinstance(event, ConnectionClosed):
                self._eof = True
        self._flush_quietly()  # the answer to a close_notify, a no_renegotiation warning

    def _receive(self, operation: str) -> None:
        """Reads once from the transport and processes it; an error the connection held back
        behind data already delivered comes first."""
        if self.conn.pending_error is not None:
            self._feed(b"")
        data = self._transport.recv(RECV_SIZE, operation)
        if data:
            self._feed(data)
            return
        # EOF without close_notify: a truncation attack unless the options tolerate it.
        if self.conn.handshake_complete and self._context.options & ssl.OP_IGNORE_UNEXPECTED_EOF:
            self._eof = True
            return
        raise sslerrors.eof_error()

    def _flush(self, operation: str) -> None:
        """Sends what the connection has to send; on a non-blocking socket what does not fit
        waits, and "want write" is raised only while nothing new has been accepted."""
        data = self._unsent + self.conn.data_to_send() if self._unsent else self.conn.data_to_send()
        if not data:
            return
        sent = self._transport.send(data, operation)
        self._unsent = data[sent:]
        if self._unsent and operation == "handshake":
            raise sslerrors.want_write()

    def _flush_quietly(self) -> None:
        try:
            self._flush("write")
        except OSError:
            pass

    def read(self, n: int = 1024, buffer=None):
        if self.conn is None or not self.conn.handshake_complete:
            self.do_handshake()
        if n <= 0 and buffer is None:
            return b""
        while not self._plaintext:
            if self._eof:
                return 0 if buffer is not None else b""
            self._receive("read")
        chunk = self._plaintext.popleft()
        if buffer is not None:
            view = memoryview(buffer).cast("B")
            n = min(n, len(view)) if n > 0 else len(view)
        if len(chunk) > n:
            self._plaintext.appendleft(chunk[n:])
            chunk = chunk[:n]
        self._pending -= len(chunk)
        if buffer is not None:
            view[: len(chunk)] = chunk
            return len(chunk)
        return chunk

    def write(self, data) -> int:
        if self.conn is None or not self.conn.handshake_complete:
            self.do_handshake()
        if self.conn.close_sent:
            raise sslerrors.protocol_is_shutdown()
        if self._unsent:
            self._flush("write")
            if self._unsent:
                raise sslerrors.want_write()
        size = memoryview(data).nbytes
        self.conn.send_application_data(data)
        self._flush("write")
        return size

    def pending(self) -> int:
        return self._pending

    def shutdown(self):
        """Sends close_notify and waits for the peer's; returns the socket (None for BIOs)."""
        if self.conn is not None and self.conn.failed is None:
            self.conn.close()
            self._flush("write")
            while not self._eof:
                try:
                    self._receive("read")
                except ssl.SSLEOFError:
                    break  # the peer closed TCP without its close_notify: we are done anyway
            self._plaintext.clear()
            self._pending = 0
        return None if self._transport.is_bio else self._transport.sock

    # What the handshake established.

    def _established(self) -> Connection:
        if self.conn is None or not self.conn.handshake_complete:
            raise ValueError("handshake not done yet")
        return self.conn

    def getpeercert(self, binary_form: bool = False):
        conn = self._established()
        if not conn.peer_chain:
            return None
        if binary_form:
            return conn.peer_chain[0]
        if self._context.verify_mode == ssl.CERT_NONE:
            return {}
        from cryptography import x509

        from .x509.certdict import peer_certificate_dict

        return peer_certificate_dict(x509.load_der_x509_certificate(conn.peer_chain[0]))

    def get_unverified_chain(self) -> Optional[List[bytes]]:
        return list(self.conn.peer_chain) if self.conn is not None and self.conn.peer_chain else None

    def get_verified_chain(self) -> Optional[List[bytes]]:
        if self.conn is None or not self.conn.verified_chain:
            return None
        from cryptography.hazmat.primitives.serialization import Encoding

        return [c.public_bytes(Encoding.DER) for c in self.conn.verified_chain]

    def cipher(self) -> Optional[Tuple[str, str, int]]:
        if self.conn is None or self.conn.suite is None or not self.conn.handshake_complete:
            return None
        suite = self.conn.suite
        return (suite.openssl_name, suite.protocol, suite.bits)

    def shared_ciphers(self) -> Optional[List[Tuple[str, str, int]]]:
        if self.conn is None or not self.server_side or not self.conn.offered_suites:
            return None
        offered = set(self.conn.offered_suites)
        return [(s.openssl_name, s.protocol, s.bits) for s in self.conn.config.cipher_suites if s.code in offered]

    def version(self) -> Optional[str]:
        return "TLSv1.2" if self.conn is not None and self.conn.handshake_complete else None

    def compression(self) -> None:
        return None

    def selected_alpn_protocol(self) -> Optional[str]:
        if self.conn is None or self.conn.alpn_protocol is None:
            return None
        return self.conn.alpn_protocol.decode("ascii")

    def selected_npn_protocol(self) -> None:
        return None

    def get_channel_binding(self, cb_type: str = "tls-unique") -> Optional[bytes]:
        if cb_type != "tls-unique":
            raise ValueError(f"'{cb_type}' channel binding type not implemented")
        if self.conn is None or not self.conn.first_finished:
            return None
        return self.conn.first_finished

    def verify_client_post_handshake(self) -> None:
        raise sslerrors.wrong_ssl_version()
