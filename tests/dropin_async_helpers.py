"""Helpers for the drop-in tests (test_dropin_asyncio.py, test_dropin_context.py): contexts built
the same way for ferrotls and for the stdlib, and small peers in threads (a TLS server running a
handler per connection, a STARTTLS-speaking SMTP server).

The stdlib peers are limited to TLS 1.2 (what ferrotls speaks) and keep their default cipher
suites: ECDHE with AES-GCM, ChaCha20 or AES-CBC, which ferrotls speaks too. Tests that need the RSA
key exchange name it (RSA_KX_CIPHERS).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from typing import Any, Callable, List, Optional

import ferrotls

HOST = "127.0.0.1"
IO_TIMEOUT = 10.0
# What any pairing of these contexts negotiates with our RSA server certificate: ferrotls's first
# choice (its default order puts ECDHE-ECDSA first, which needs an ECDSA certificate), and the
# stdlib's too (its default order, server preference on).
OUR_SUITE = ("ECDHE-RSA-AES256-GCM-SHA384", "TLSv1.2", 256)
# Suites with the RSA key exchange, for the tests that want it (the stdlib offers none by default).
RSA_KX_CIPHERS = "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256"
RSA_KX_SUITE = ("AES128-GCM-SHA256", "TLSv1.2", 128)  # what RSA_KX_CIPHERS negotiates
# ferrotls's suites, by OpenSSL name, in its default order.
OUR_SUITE_NAMES = [
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256", "AES256-SHA256", "AES128-SHA", "AES256-SHA",
]
SSL_C_LOCATION = re.compile(r" \(_ssl\.c:\d+\)$|^_ssl\.c:\d+: ")


def without_location(message: str) -> str:
    """An ssl error message without CPython's "(_ssl.c:NNNN)" / "_ssl.c:NNN: " source location."""
    return SSL_C_LOCATION.sub("", message)


def client_context(kind: str, cafile: Optional[str] = None) -> ssl.SSLContext:
    """A verifying client context: kind "ferrotls" or "stdlib" (limited to TLS 1.2)."""
    if kind == "ferrotls":
        ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cafile is not None:
        ctx.load_verify_locations(cafile)
    return ctx


def server_context(kind: str, certfile: str, keyfile: Optional[str] = None) -> ssl.SSLContext:
    """A server context with the given certificate: kind "ferrotls" or "stdlib" (limited to TLS 1.2)."""
    if kind == "ferrotls":
        ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


def is_ferrotls_engine(sslobj: Any) -> bool:
    """Whether an ssl.SSLSocket / ssl.SSLObject runs on ferrotls's engine."""
    from ferrotls.sslobject import SSLEngine

    return isinstance(getattr(sslobj, "_sslobj", None), SSLEngine)


class ThreadServer:
    """Listens on 127.0.0.1 (ephemeral port); each accepted plain socket goes to handler(sock) in
    its own thread. Results and errors are kept in accept order; stop() ends everything."""

    def __init__(self, handler: Callable[[socket.socket], Any], timeout: float = IO_TIMEOUT):
        self.handler = handler
        self.timeout = timeout
        self.results: List[Any] = []
        self.errors: List[BaseException] = []
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.settimeout(self.timeout)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            result = self.handler(sock)
            with self._lock:
                self.results.append(result)
        except BaseException as e:  # kept for the test to look at
            with self._lock:
                self.errors.append(e)
        finally:
            sock.close()

    def wait(self, count: int, timeout: float = 20.0) -> List[Any]:
        """Waits until `count` connections were handled; raises the first handler error."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                with self._lock:
                    done = len(self.results) + len(self.errors)
                if done >= count:
                    break
                deadline.wait(0.01)
        finally:
            timer.cancel()
        if self.errors:
            raise self.errors[0]
        assert len(self.results) >= count, f"only {len(self.results)} of {count} connections were handled"
        return list(self.results)

    def stop(self) -> None:
        self._stopping.set()
        self._acceptor.join(5)
        self.listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)


class StartTLSSMTPServer:
    """Just enough of an SMTP server (RFC 5321, STARTTLS from RFC 3207) for smtplib: a 220
    greeting, EHLO (offering STARTTLS before TLS only), STARTTLS answered with 220 and then the
    socket wrapped with `context` (server side), NOOP, QUIT. One connection, in a thread."""

    def __init__(self, context: ssl.SSLContext, timeout: float = IO_TIMEOUT):
        self.context = context
        self.commands: List[str] = []
        self.tls: Optional[dict] = None  # what the server's side of TLS saw
        self.error: Optional[BaseException] = None
        self._server = ThreadServer(self._session, timeout)
        self.port = self._server.port

    def _session(self, sock: socket.socket) -> dict:
        sock.sendall(b"220 localhost ESMTP ferrotls-test\r\n")
        tls = None
        conn = sock
        while True:
            line = self._next(conn)
            if line is None:
                break
            self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                extensions = ["8BITMIME"] if tls else ["8BITMIME", "STARTTLS"]
                lines = ["localhost greets you"] + extensions
                reply = "".join(f"250-{x}\r\n" for x in lines[:-1]) + f"250 {lines[-1]}\r\n"
                conn.sendall(reply.encode())
            elif verb == "STARTTLS" and tls is None:
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                tls = self.context.wrap_socket(sock, server_side=True)
                self.tls = {"cipher": tls.cipher(), "version": tls.version(), "ferrotls": is_ferrotls_engine(tls)}
                conn = tls
            elif verb == "NOOP":
                conn.sendall(b"250 2.0.0 OK\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                break
            else:
                conn.sendall(b"502 5.5.2 Command not recognized\r\n")
        if tls is not None:
            tls.close()
        return {"commands": list(self.commands), "tls": self.tls}

    @staticmethod
    def _next(conn) -> Optional[str]:
        buf = b""
        while not buf.endswith(b"\r\n"):
            data = conn.recv(1)  # byte by byte: nothing may be read past STARTTLS
            if not data:
                return None
            buf += data
        return buf[:-2].decode("ascii")

    def wait(self, timeout: float = 20.0) -> dict:
        return self._server.wait(1, timeout)[0]

    def stop(self) -> None:
        self._server.stop()
