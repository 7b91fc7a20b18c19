"""What `ferrotls s_client` and `ferrotls s_server` share: openssl-style arguments (passwords,
host:port), trust stores, session files, certificate and connection summaries, error text."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import socket
import ssl
import sys
import threading
from typing import Iterable, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .engine import TLSError
from .protocol import AlertDescription, Connection, PeerAlert, Session
from .x509 import TrustStore, oneline_name

SESSION_LABEL = "FERROTLS SESSION PARAMETERS"
# Also read under OpenSSL's label, for files someone renamed; the contents are ours either way.
SESSION_LABELS = (SESSION_LABEL, "SSL SESSION PARAMETERS")
PROTOCOL = "TLSv1.2"


class CLIError(Exception):
    """A usage or setup problem: printed as one line, exit status 1."""


class Printer:
    """Line output shared by threads: each call prints whole lines, flushed at once."""

    def __init__(self, stream=None, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stdout
        self.enabled = enabled
        self.lock = threading.Lock()

    def __call__(self, *lines: str) -> None:
        if not self.enabled:
            return
        with self.lock:
            for line in lines:
                self.stream.write(line + "\n")
            self.stream.flush()

    def lines(self, lines: Iterable[str]) -> None:
        self(*lines)


def error(prog: str, message: str) -> None:
    sys.stderr.write(f"{prog}: {message}\n")
    sys.stderr.flush()


# Arguments.

def parse_password(arg: Optional[str]) -> Optional[bytes]:
    """An openssl pass phrase argument: pass:TEXT, env:VAR, file:PATH (first line), fd:N, stdin."""
    if arg is None:
        return None
    kind, _, rest = arg.partition(":")
    if kind == "pass":
        return rest.encode()
    if kind == "env":
        if rest not in os.environ:
            raise CLIError(f"-pass env:{rest}: no such environment variable")
        return os.environ[rest].encode()
    if kind == "file":
        try:
            with open(rest, "rb") as f:
                return f.readline().rstrip(b"\r\n")
        except OSError as e:
            raise CLIError(f"-pass file:{rest}: {e.strerror}") from None
    if kind == "fd":
        try:
            with os.fdopen(int(rest), "rb", closefd=False) as f:
                return f.readline().rstrip(b"\r\n")
        except (OSError, ValueError) as e:
            raise CLIError(f"-pass fd:{rest}: {e}") from None
    if arg == "stdin":
        return sys.stdin.buffer.readline().rstrip(b"\r\n")
    raise CLIError(f"-pass {arg!r}: expected pass:, env:, file:, fd: or stdin")


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def parse_hostport(text: str, default_host: str = "localhost") -> Tuple[str, int]:
    """host:port, [v6]:port, :port or port."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.lstrip(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" not in text and text.isdigit():
        host, port_text = "", text
    else:
        host, port_text = text, ""
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise CLIError(f"{text!r}: expected host:port") from None
    return host or default_host, port


def load_trust_store(cafile: Optional[str], capath: Optional[str], defaults: bool) -> TrustStore:
    """-CAfile and -CApath; without either (and with `defaults`), the system's CA certificates,
    as OpenSSL's default verify paths name them."""
    store = TrustStore()
    if cafile:
        try:
            store.load_file(cafile)
        except OSError as e:
            raise CLIError(f"-CAfile {cafile}: {e.strerror}") from None
        except ssl.SSLError as e:
            raise CLIError(f"-CAfile {cafile}: {e}") from None
    if capath:
        store.load_directory(capath)
    if defaults and not cafile and not capath:
        store.load_default_verify_paths()
    return store


def load_our_credential(cert: str, key: Optional[str], password: Optional[bytes]):
    from .x509 import load_credential

    try:
        return load_credential(cert, key, password)
    except OSError as e:
        raise CLIError(f"cannot load {e.filename or cert}: {e.strerror}") from None
    except (ssl.SSLError, ValueError, TypeError) as e:
        raise CLIError(f"cannot load the certificate {cert} and key {key or cert}: {e}") from None


# Session files (-sess_out / -sess_in): base64 of Session.encode() in PEM armour. They hold the
# master secret, so they are written readable by the owner only.

def session_to_pem(session: Session) -> str:
    body = base64.encodebytes(session.encode()).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {SESSION_LABEL}-----", *lines, f"-----END {SESSION_LABEL}-----", ""])


def session_from_pem(text: str) -> Session:
    for label in SESSION_LABELS:
        begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
        if begin in text:
            body = text.split(begin, 1)[1].split(end, 1)[0]
            try:
                return Session.decode(base64.b64decode("".join(body.split()), validate=True))
            except (ValueError, binascii.Error) as e:
                raise CLIError(f"not a ferrotls session: {e}") from None
    raise CLIError(f"no -----BEGIN {SESSION_LABEL}----- block")


def write_session(path: str, session: Optional[Session]) -> None:
    if session is None:
        raise CLIError(f"-sess_out {path}: the session cannot be resumed (no extended master secret), not saved")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # also when the file was there before
        with os.fdopen(fd, "w") as f:
            f.write(session_to_pem(session))
    except OSError as e:
        raise CLIError(f"-sess_out {path}: {e.strerror}") from None


def read_session(path: str) -> Session:
    try:
        with open(path) as f:
            return session_from_pem(f.read())
    except OSError as e:
        raise CLIError(f"-sess_in {path}: {e.strerror}") from None
    except CLIError as e:
        raise CLIError(f"-sess_in {path}: {e}") from None


# Describing certificates and connections, in openssl's words.

def key_description(key) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsaEncryption, {key.key_size} (bit)"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"id-ecPublicKey, {key.key_size} (bit)"
    return type(key).__name__


def _sigalg(cert: x509.Certificate) -> str:
    name = getattr(cert.signature_algorithm_oid, "_name", None) or cert.signature_algorithm_oid.dotted_string
    return name


def _openssl_time(moment) -> str:
    return moment.strftime("%b %e %H:%M:%S %Y GMT")


def load_chain(chain_der: List[bytes]) -> List[x509.Certificate]:
    out = []
    for der in chain_der:
        try:
            out.append(x509.load_der_x509_certificate(bytes(der)))
        except ValueError:
            break
    return out


def chain_lines(chain: List[x509.Certificate]) -> List[str]:
    """openssl s_client's "Certificate chain" block."""
    lines = ["Certificate chain"]
    for i, cert in enumerate(chain):
        lines += [
            f" {i} s:{oneline_name(cert.subject)}",
            f"   i:{oneline_name(cert.issuer)}",
            f"   a:PKEY: {key_description(cert.public_key())}; sigalg: {_sigalg(cert)}",
            f"   v:NotBefore: {_openssl_time(cert.not_valid_before_utc)}; NotAfter: {_openssl_time(cert.not_valid_after_utc)}",
        ]
    return lines


def subject_lines(cert: x509.Certificate) -> List[str]:
    return [f"subject={oneline_name(cert.subject)}", f"issuer={oneline_name(cert.issuer)}"]


def outcome_line(conn: Connection) -> str:
    """"New, TLSv1.2, Cipher is AES128-GCM-SHA256" or "Reused, ..."."""
    return f"{'Reused' if conn.resumed else 'New'}, {PROTOCOL}, Cipher is {conn.suite.openssl_name}"


def session_lines(conn: Connection, verify_code: Optional[Tuple[int, str]] = None) -> List[str]:
    """openssl's SSL-Session block, without the master key: ferrotls never prints secrets."""
    session = conn.session
    lines = [
        "SSL-Session:",
        f"    Protocol  : {PROTOCOL}",
        f"    Cipher    : {conn.suite.openssl_name}",
        f"    Session-ID: {session.session_id.hex().upper() if session else ''}",
        "    Session-ID-ctx: ",
    ]
    if session is not None and session.ticket:
        lines += [
            f"    TLS session ticket lifetime hint: {session.lifetime_hint} (seconds)",
            f"    TLS session ticket: {len(session.ticket)} bytes",
        ]
    if session is not None:
        lines += [f"    Start Time: {int(session.created)}", f"    Timeout   : {session.lifetime_hint or 7200} (sec)"]
    if verify_code is not None:
        lines.append(f"    Verify return code: {verify_code[0]} ({verify_code[1]})")
    lines.append(f"    Extended master secret: {'yes' if conn.extended_master_secret else 'no'}")
    return lines


def renegotiation_line(conn: Connection) -> str:
    return f"Secure Renegotiation IS{'' if conn.secure_renegotiation else ' NOT'} supported"


def failure_text(exc: BaseException, conn: Optional[Connection] = None) -> str:
    """A failed connection, worded like openssl's error line: what happened, then the alert."""
    if isinstance(exc, TLSError) and exc.alert == "unexpected_eof" and conn is not None:
        # A fatal alert that came with the connection's last bytes is kept by the Connection
        # (`failed`) while the engine goes on to read the TCP EOF: report the alert.
        if isinstance(conn.failed, PeerAlert):
            exc = TLSError(str(conn.failed), conn.failed.name, sent=False)
    if isinstance(exc, TLSError):
        number = alert_number(exc.alert)
        tail = f":SSL alert number {number}" if number is not None else ""
        if exc.sent:
            return f"{exc} (we sent alert {exc.alert}){tail}"
        return f"{exc}{tail}"
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def alert_number(name: str) -> Optional[int]:
    try:
        return int(AlertDescription[name])
    except KeyError:
        return None


def verify_error_of(exc: BaseException):
    """The CertificateVerifyError behind a handshake that failed certificate validation."""
    cause = exc.__cause__
    return getattr(cause, "verify_error", None)

