"""The `_sslobj` behind ssl.SSLSocket and ssl.SSLObject (what ssl.SSLContext._wrap_socket and
_wrap_bio return in CPython's _ssl module): the one engine, reporting as the stdlib does, and
what the handshake established."""

from __future__ import annotations

import ssl
import sys
import traceback
import types
import weakref
from typing import List, Optional, Tuple

from . import sslerrors
from .engine import Engine
from .protocol import AlertDescription, Connection, Session, TLSAlert


def _report_unraisable(exc: BaseException, obj) -> None:
    """An exception nobody can catch (raised by a callback during the handshake), reported as
    CPython's PyErr_WriteUnraisable does: to sys.unraisablehook, whose default prints it."""
    hook = sys.unraisablehook
    if hook is sys.__unraisablehook__:
        print(f"Exception ignored in: {obj!r}", file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    else:
        hook(types.SimpleNamespace(exc_type=type(exc), exc_value=exc, exc_traceback=exc.__traceback__,
                                   err_msg=None, object=obj))


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


class SSLEngine(Engine):
    """The `_sslobj` of ssl.SSLSocket / ssl.SSLObject, running a protocol Connection. Its
    construction does no I/O; the handshake starts with do_handshake, read or write."""

    def __init__(self, context, transport, server_side: bool, server_hostname: Optional[str], owner, session):
        if server_side and server_hostname:
            raise ValueError("server_hostname can only be specified in client mode")
        if not server_side and context.check_hostname and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        super().__init__(transport)
        self._context = context
        self.server_side = server_side
        self.server_hostname = server_hostname
        self.owner = owner
        self._session: Optional[SSLSession] = session
        self._counted = False  # handshake finished and accounted for

    # Properties the stdlib wrappers expose.

    @property
    def owner(self):
        return self._owner() if self._owner is not None else None

    @owner.setter
    def owner(self, owner) -> None:
        self._owner = weakref.ref(owner) if owner is not None else None

    @property
    def context(self):
        return self._context

    @context.setter
    def context(self, ctx) -> None:
        if not hasattr(ctx, "_tls_config"):  # what makes a ferrotls SSLContext
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

    # How the engine reports, as the stdlib does.

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

    def _protocol_error(self, exc: Exception) -> Exception:
        return sslerrors.from_protocol_error(exc, self.server_hostname)

    def _eof_error(self) -> Exception:
        return sslerrors.eof_error()

    def _failed_error(self) -> Exception:
        # OpenSSL takes nothing more from the peer after a fatal alert: a read ends at once as
        # at an EOF in violation of protocol, which SSLSocket turns into b"" unless
        # suppress_ragged_eofs is off.
        return sslerrors.eof_error()

    def _tolerate_eof(self) -> bool:
        return bool(self._context.options & ssl.OP_IGNORE_UNEXPECTED_EOF)

    def _read_at_eof(self, buffer):
        # CPython returns b"" while only the peer has closed, and raises SSLZeroReturnError
        # once both have (_ssl.c, SSLSocket.read and SSL_get_shutdown).
        if self.conn.close_sent and self.conn.peer_closed:
            raise sslerrors.zero_return()
        return super()._read_at_eof(buffer)

    def _check_writable(self) -> None:
        if self.conn.close_sent:
            raise sslerrors.protocol_is_shutdown()
        super()._check_writable()

    def _on_server_name(self, server_name: Optional[str]):
        """The context's sni_callback, given the SSLSocket/SSLObject, the name and the context;
        it may switch the context (a new certificate) or return an alert number."""
        callback = self._context.sni_callback
        before = self._context
        try:
            result = callback(self.owner, server_name, before) if callback is not None else None
        except Exception as e:
            _report_unraisable(e, callback)
            raise TLSAlert(AlertDescription.handshake_failure, sslerrors.CALLBACK_FAILED) from None
        if result is not None:
            # As CPython's _servername_callback: an int is the alert to send, which OpenSSL sends
            # only if it is one it knows (else none); anything else is reported and is
            # internal_error.
            if not isinstance(result, int):
                error = TypeError(f"'{type(result).__name__}' object cannot be interpreted as an integer")
                _report_unraisable(error, result)
                raise TLSAlert(AlertDescription.internal_error, sslerrors.CALLBACK_FAILED)
            try:
                description = AlertDescription(result)
            except ValueError:
                raise TLSAlert(AlertDescription.handshake_failure, sslerrors.CALLBACK_FAILED, send=False) from None
            raise TLSAlert(description, sslerrors.CALLBACK_FAILED)
        if self._context is not before:
            return self._context._tls_config(True, None)
        return None

    def _handshake_done(self) -> None:
        if self._counted:
            return
        self._counted = True
        conn = self.conn
        self._context._count("accept_good" if self.server_side else "connect_good")
        if self.server_side and conn.resumed:
            self._context._count("hits")
        elif self.server_side and conn.session_offered:
            self._context._count("misses")  # as OpenSSL: a session asked for and not found
        self._context._write_keylog(conn.client_random, conn.master_secret)

    def shutdown(self):
        """Sends close_notify and waits for the peer's; returns the socket (None for BIOs)."""
        super().shutdown()
        return self._transport.sock

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
