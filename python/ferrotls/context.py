"""`ferrotls.SSLContext`: the standard `ssl.SSLContext`, configured in Python and served by
ferrotls (DESIGN.md principle 4).

Every setting lives here; OpenSSL's context underneath is never configured or used. Only
`_wrap_socket` and `_wrap_bio` change what a connection runs on, so `ssl.SSLSocket` and
`ssl.SSLObject` wrap ferrotls' engine and every `isinstance` check in clients holds.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any, Callable, Dict, List, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .protocol import SessionCache, TicketKeys, TLSConfig
from .protocol.suites import CipherSuite, select_ciphers
from .x509.keystore import Credential, load_credential, ssl_error
from .x509.path import Policy
from .x509.store import TrustStore

_TLS12 = ssl.TLSVersion.TLSv1_2


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


# CPython's default cipher string (Modules/_ssl.c, PY_SSL_DEFAULT_CIPHER_STRING): forward-secret
# AEAD and SHA-2 suites only, no RSA key exchange, no SHA-1. set_ciphers() reaches the others.
DEFAULT_CIPHERS = "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"

class SSLContext(ssl.SSLContext):
    """A drop-in `ssl.SSLContext` whose connections run on ferrotls."""

    def __init__(self, protocol: Optional[int] = None, *args: Any, **kwargs: Any):
        protocol = self.protocol  # ssl.SSLContext.__new__ resolved the default
        client = protocol == ssl.PROTOCOL_TLS_CLIENT
        self._verify_mode = ssl.CERT_REQUIRED if client else ssl.CERT_NONE
        self._check_hostname = client
        self._options = ssl.Options(super().options)
        self._minimum_version = ssl.TLSVersion(super().minimum_version)
        self._maximum_version = ssl.TLSVersion(super().maximum_version)
        self._verify_flags = ssl.VerifyFlags(super().verify_flags)
        self._trust = TrustStore()
        self._credentials: List[Credential] = []
        self._suites: List[CipherSuite] = select_ciphers(DEFAULT_CIPHERS)
        self._alpn: List[bytes] = []
        self._sni_callback: Optional[Callable] = None
        self._keylog_filename: Optional[str] = None
        self._keylog_lock = threading.Lock()
        self._post_handshake_auth = False
        self._num_tickets = 2
        self._hostname_checks_common_name = True
        # Path validation beyond the ssl API: how many intermediates (None: the validator's 8)
        # and the options for private PKIs (ferrotls.x509.Policy).
        self.max_chain_depth: Optional[int] = None
        self.verify_policy: Optional[Policy] = None
        self._security_level = 2
        self._ticket_keys = TicketKeys()
        self._session_cache = SessionCache()
        self._stats_lock = threading.Lock()
        self._stats: Dict[str, int] = dict.fromkeys(
            ("number", "connect", "connect_good", "connect_renegotiate", "accept", "accept_good",
             "accept_renegotiate", "hits", "misses", "timeouts", "cache_full"), 0)

    # Verification.

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        return ssl.VerifyMode(self._verify_mode)

    @verify_mode.setter
    def verify_mode(self, value: int) -> None:
        value = ssl.VerifyMode(value)
        if value == ssl.CERT_NONE and self._check_hostname:
            raise ValueError("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.")
        self._verify_mode = value

    @property
    def check_hostname(self) -> bool:
        return self._check_hostname

    @check_hostname.setter
    def check_hostname(self, value: bool) -> None:
        value = bool(value)
        if value and self._verify_mode == ssl.CERT_NONE:
            self._verify_mode = ssl.CERT_REQUIRED  # as the stdlib does since 3.7
        self._check_hostname = value

    @property
    def verify_flags(self) -> ssl.VerifyFlags:
        return ssl.VerifyFlags(self._verify_flags)

    @verify_flags.setter
    def verify_flags(self, value: int) -> None:
        self._verify_flags = ssl.VerifyFlags(value)

    @property
    def hostname_checks_common_name(self) -> bool:
        return self._hostname_checks_common_name

    @hostname_checks_common_name.setter
    def hostname_checks_common_name(self, value: bool) -> None:
        self._hostname_checks_common_name = bool(value)

    @property
    def post_handshake_auth(self) -> bool:
        return self._post_handshake_auth

    @post_handshake_auth.setter
    def post_handshake_auth(self, value: bool) -> None:
        self._post_handshake_auth = bool(value)

    @property
    def security_level(self) -> int:
        return self._security_level

    # Versions and options.

    @property
    def options(self) -> ssl.Options:
        return ssl.Options(self._options)

    @options.setter
    def options(self, value: int) -> None:
        self._options = ssl.Options(value)

    @property
    def minimum_version(self) -> ssl.TLSVersion:
        return self._minimum_version

    @minimum_version.setter
    def minimum_version(self, value: ssl.TLSVersion) -> None:
        self._check_version_setter()
        self._minimum_version = ssl.TLSVersion(value)

    @property
    def maximum_version(self) -> ssl.TLSVersion:
        return self._maximum_version

    @maximum_version.setter
    def maximum_version(self, value: ssl.TLSVersion) -> None:
        self._check_version_setter()
        self._maximum_version = ssl.TLSVersion(value)

    def _check_version_setter(self) -> None:
        if self.protocol not in (ssl.PROTOCOL_TLS, ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLS_SERVER):
            raise ValueError("The context's protocol doesn't support modification of highest and lowest version.")

    def _tls12_enabled(self) -> bool:
        """Whether the versions and options leave TLS 1.2, the one version spoken so far."""
        lowest = ssl.TLSVersion.TLSv1 if self._minimum_version == ssl.TLSVersion.MINIMUM_SUPPORTED else self._minimum_version
        highest = ssl.TLSVersion.TLSv1_3 if self._maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED else self._maximum_version
        return lowest <= _TLS12 <= highest and not self._options & ssl.OP_NO_TLSv1_2

    @property
    def num_tickets(self) -> int:
        return self._num_tickets

    @num_tickets.setter
    def num_tickets(self, value: int) -> None:
        if value < 0:
            raise ValueError("value must be non-negative")
        if self.protocol != ssl.PROTOCOL_TLS_SERVER:
            raise ValueError("SSLContext is not a server context.")
        self._num_tickets = value

    # Keys and certificates.

    def load_cert_chain(self, certfile, keyfile=None, password=None) -> None:
        if password is not None and not callable(password) and not isinstance(password, (str, bytes, bytearray)):
            raise TypeError("password should be a string or callable")
        certfile = _filesystem_path(certfile, "certfile")
        keyfile = None if keyfile is None else _filesystem_path(keyfile, "keyfile")
        # One certificate per key type: a server may hold an RSA and an ECDSA one at once.
        credential = load_credential(certfile, keyfile, password)
        self._credentials = [c for c in self._credentials if c.key_type != credential.key_type] + [credential]

    def load_verify_locations(self, cafile=None, capath=None, cadata=None) -> None:
        if cafile is None and capath is None and cadata is None:
            raise TypeError("cafile, capath and cadata cannot be all omitted")
        if cafile is not None:
            self._trust.load_file(_filesystem_path(cafile, "cafile"))
        if capath is not None:
            self._trust.load_directory(_filesystem_path(capath, "capath"))
        if cadata is not None:
            if isinstance(cadata, str):
                self._trust.add_pem(cadata)
            elif isinstance(cadata, (bytes, bytearray, memoryview)):
                self._add_der_sequence(bytes(cadata))
            else:
                raise TypeError("cadata should be an ASCII string or a bytes-like object")

    def _add_der_sequence(self, data: bytes) -> None:
        """cadata as bytes: one or more DER certificates back to back."""
        pos = 0
        while pos < len(data):
            length = _der_length(data, pos)
            if length is None:
                raise ssl_error(ssl.SSL_ERROR_SSL, "X509", "NOT_ENOUGH_DATA", "not enough data")
            self._trust.add_der(data[pos : pos + length])
            pos += length
        if not data:
            raise ssl_error(ssl.SSL_ERROR_SSL, "X509", "NO_CERTIFICATE_OR_CRL_FOUND", "no certificate or crl found")

    def set_default_verify_paths(self) -> None:
        self._trust.load_default_verify_paths()

    def get_ca_certs(self, binary_form: bool = False) -> list:
        from .x509.certdict import peer_certificate_dict

        cas = [c for c in self._trust.certificates if _is_ca(c)]
        if binary_form:
            return [c.public_bytes(serialization.Encoding.DER) for c in cas]
        return [peer_certificate_dict(c) for c in cas]

    def cert_store_stats(self) -> Dict[str, int]:
        certs = self._trust.certificates
        return {"x509_ca": sum(1 for c in certs if _is_ca(c)), "crl": 0, "x509": len(certs)}

    def load_dh_params(self, path) -> None:
        if not os.path.exists(path):
            raise FileNotFoundError(2, "No such file or directory")

    def set_ecdh_curve(self, name) -> None:
        if name not in ("prime256v1", "secp384r1", "X25519", "x25519"):
            raise ValueError(f"unknown elliptic curve name {name!r}")

    # Ciphers, ALPN, SNI.

    def set_ciphers(self, spec: str) -> None:
        suites = select_ciphers(spec)
        if not suites:
            raise ssl.SSLError("No cipher can be selected.")
        self._suites = suites

    def get_ciphers(self) -> List[Dict[str, Any]]:
        return [s.describe() for s in self._suites]

    def _set_alpn_protocols(self, protos: bytes) -> None:
        names, pos = [], 0
        while pos < len(protos):
            n = protos[pos]
            names.append(bytes(protos[pos + 1 : pos + 1 + n]))
            pos += 1 + n
        self._alpn = names

    def _set_npn_protocols(self, protos: bytes) -> None:
        raise NotImplementedError("NPN is not supported; use ALPN")

    @property
    def sni_callback(self) -> Optional[Callable]:
        return self._sni_callback

    @sni_callback.setter
    def sni_callback(self, callback: Optional[Callable]) -> None:
        if self.protocol == ssl.PROTOCOL_TLS_CLIENT:
            raise ValueError("sni_callback cannot be set on TLS_CLIENT context")
        if callback is not None and not callable(callback):
            raise TypeError("not a callable object")
        self._sni_callback = callback

    @property
    def keylog_filename(self) -> Optional[str]:
        return self._keylog_filename

    @keylog_filename.setter
    def keylog_filename(self, path) -> None:
        if path is not None:
            path = os.fspath(path)
            with self._keylog_lock, open(path, "a") as f:  # fails now if unwritable, as the stdlib does
                if f.tell() == 0:  # CPython's header on a new file (Modules/_ssl/debughelpers.c)
                    f.write("# TLS secrets log file, generated by OpenSSL / Python\n")
        self._keylog_filename = path

    def _write_keylog(self, client_random: bytes, master_secret: bytes) -> None:
        """The NSS key log format: CLIENT_RANDOM <client_random> <master_secret>, hex."""
        if self._keylog_filename is None:
            return
        with self._keylog_lock, open(self._keylog_filename, "a") as f:
            f.write(f"CLIENT_RANDOM {client_random.hex()} {master_secret.hex()}\n")

    @property
    def _msg_callback(self):
        """ssl's debugging hook on OpenSSL's messages: accepted, never called."""
        return self.__dict__.get("_msg_cb")

    @_msg_callback.setter
    def _msg_callback(self, callback) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"{callback!r} is not callable.")
        self.__dict__["_msg_cb"] = callback

    # Statistics.

    def session_stats(self) -> Dict[str, int]:
        with self._stats_lock:
            stats = dict(self._stats)
        stats["number"] = len(self._session_cache)
        return stats

    def _count(self, *keys: str) -> None:
        with self._stats_lock:
            for key in keys:
                self._stats[key] += 1

    # Connections.

    def _tls_config(self, server_side: bool, engine=None) -> TLSConfig:
        """The protocol configuration for one connection, from the current settings."""
        verify = self._verify_mode != ssl.CERT_NONE
        config = TLSConfig(
            cipher_suites=list(self._suites),
            credentials=list(self._credentials),
            trust_store=self._trust,
            verify_peer=verify,
            require_peer_certificate=server_side and self._verify_mode == ssl.CERT_REQUIRED,
            check_hostname=self._check_hostname,
            check_common_name=self._hostname_checks_common_name,
            max_chain_depth=self.max_chain_depth,
            verify_policy=self.verify_policy,
            check_revocation=bool(self._verify_flags & (ssl.VERIFY_CRL_CHECK_LEAF | ssl.VERIFY_CRL_CHECK_CHAIN)),
            prefer_client_ciphers=server_side and not self._options & ssl.OP_CIPHER_SERVER_PREFERENCE,
            session_tickets=not self._options & ssl.OP_NO_TICKET and (not server_side or self._num_tickets > 0),
            session_cache=self._session_cache if server_side else None,
            ticket_keys=self._ticket_keys if server_side else None,
            alpn_protocols=list(self._alpn),
        )
        if server_side and engine is not None and self._sni_callback is not None:
            config.server_name_callback = engine._on_server_name
        return config

    def _wrap_socket(self, sock, server_side, server_hostname=None, *, owner=None, session=None):
        from .sslobject import SSLEngine
        from .transport import SocketTransport

        return SSLEngine(self, SocketTransport(sock), server_side, server_hostname, owner or sock, session)

    def _wrap_bio(self, incoming, outgoing, server_side, server_hostname=None, *, owner=None, session=None):
        from .sslobject import SSLEngine
        from .transport import BIOTransport

        if isinstance(server_hostname, bytes):
            server_hostname = server_hostname.decode("ascii")
        return SSLEngine(self, BIOTransport(incoming, outgoing), server_side, server_hostname, owner, session)

    # Session tickets shared by several servers (a ferrotls extension; not in ssl.SSLContext).

    def load_ticket_keys(self, path) -> None:
        """Seals and opens session tickets with the keys in the ticket key file at `path`, so that
        every server (process or machine) loading the same file resumes the others' sessions.

        The file is 48-byte entries, newest first: a 16-byte key name and a 32-byte AES-256-GCM
        key (`ferrotls.protocol.sessions.read_key_file`). The first entry seals new tickets, all
        of them open tickets. The file is re-read when it changes, so rotating it (for instance
        with `ferrotls.protocol.sessions.rotate_key_file(path, keep=2)`, which writes the new
        file atomically) rotates every server at once. Without it, each context has its own
        random keys, rotated hourly.

        Raises ValueError on a client context or a file that is not a key file, OSError if the
        file cannot be read.
        """
        if self.protocol == ssl.PROTOCOL_TLS_CLIENT:
            raise ValueError("SSLContext is not a server context.")
        self._ticket_keys = TicketKeys.from_file(path)


def _filesystem_path(value, name: str):
    """`value` as a path; TypeError for anything else, worded as CPython's (an integer is not
    taken for a file descriptor: it would be read to its end and closed)."""
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} should be a valid filesystem path")
    return os.fspath(value)


def _der_length(data: bytes, pos: int) -> Optional[int]:
    """The total length of the DER element at data[pos:], or None if it is cut short."""
    if len(data) - pos < 2:
        return None
    first = data[pos + 1]
    if first < 0x80:
        total = 2 + first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or len(data) - pos < 2 + n:
            return None
        total = 2 + n + int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
    return total if pos + total <= len(data) else None
