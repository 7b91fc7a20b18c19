"""Shared fixtures: a test PKI made with trustme, and peers to talk to.

- ``pki``: a server CA with an RSA and an ECDSA (P-256) server certificate for localhost and
  127.0.0.1, a client CA with RSA and ECDSA client certificates, and an "other" CA (a server
  and a client certificate nobody trusts), as PEM files, ferrotls Credentials and TrustStores.
- ``openssl_server``: starts ``openssl s_server`` on 127.0.0.1 with an ephemeral port (it prints
  the port it got: ``ACCEPT 127.0.0.1:PORT``); every server started is stopped at teardown.
- ``s_client``: runs ``openssl s_client`` to completion (killed on timeout).
- ``ferro_server``: a ferrotls server in a thread, serving N connections with a handler.
- ``background``: runs a function in a thread (for stdlib ``ssl`` peers) and gives its result.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
from typing import Any, Callable, List, Optional

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ferrotls.engine import SocketEngine
from ferrotls.protocol import TLS12_SUITES, Connection, TLSConfig
from ferrotls.x509.keystore import Credential, load_credential
from ferrotls.x509.store import TrustStore
from process_output import OutputLines

OPENSSL = shutil.which("openssl") or "openssl"
HOST = "127.0.0.1"
# Every socket and subprocess in these tests has a deadline: nothing may hang the run.
IO_TIMEOUT = 10.0


# --------------------------------------------------------------------------------------------
# The PKI
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Identity:
    """A certificate (chain PEM file, leaf first) with its key file and ferrotls Credential."""

    cert_path: str
    key_path: str
    credential: Credential
    subject: str  # as OpenSSL prints it: "O = ..., OU = ..., CN = ..."

    @property
    def leaf_der(self) -> bytes:
        return self.credential.chain_der[0]


@dataclasses.dataclass
class PKI:
    directory: str
    server_ca: trustme.CA
    server_ca_path: str
    server_ca_subject: str
    client_ca: trustme.CA
    client_ca_path: str
    client_ca_subject: str
    other_ca: trustme.CA
    other_ca_path: str
    other_ca_subject: str
    server: Identity  # RSA, localhost + 127.0.0.1, from server_ca
    server_ec: Identity  # ECDSA P-256, localhost + 127.0.0.1, from server_ca
    client: Identity  # "client A", from client_ca
    client2: Identity  # "client A2", from client_ca
    client_p256: Identity  # ECDSA P-256 "client EC256", from client_ca
    client_p384: Identity  # ECDSA P-384 "client EC384", from client_ca
    other_server: Identity  # localhost + 127.0.0.1, from other_ca
    other_client: Identity  # "client B", from other_ca

    @property
    def server_ca_cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.server_ca.cert_pem.bytes())

    @property
    def client_ca_cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.client_ca.cert_pem.bytes())

    def trust_store(self, *paths: str) -> TrustStore:
        store = TrustStore()
        for path in paths or (self.server_ca_path,):
            store.load_file(path)
        return store

    @property
    def server_trust_store(self) -> TrustStore:
        """Trusts the server CA (what a client verifying our server needs)."""
        return self.trust_store(self.server_ca_path)

    @property
    def client_trust_store(self) -> TrustStore:
        """Trusts the client CA (what a server requiring client certificates needs)."""
        return self.trust_store(self.client_ca_path)

    def server_config(self, **kwargs) -> TLSConfig:
        """A ferrotls server config with our RSA server certificate."""
        kwargs.setdefault("credentials", [self.server.credential])
        return TLSConfig(**kwargs)

    def dual_server_config(self, **kwargs) -> TLSConfig:
        """A ferrotls server config holding both server certificates, RSA and ECDSA (P-256):
        it can serve every suite."""
        kwargs.setdefault("credentials", [self.server.credential, self.server_ec.credential])
        return TLSConfig(**kwargs)

    def server_for(self, suite) -> Identity:
        """The server certificate a suite needs: ECDSA for ECDHE-ECDSA suites, RSA otherwise."""
        return self.server_ec if suite.auth == "ECDSA" else self.server

    def client_config(self, **kwargs) -> TLSConfig:
        """A ferrotls client config that verifies the server against the server CA."""
        kwargs.setdefault("verify_peer", True)
        kwargs.setdefault("trust_store", self.server_trust_store)
        return TLSConfig(**kwargs)


_SHORT = {NameOID.ORGANIZATION_NAME: "O", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.COMMON_NAME: "CN"}


def _oneline(name) -> str:
    """A Name as OpenSSL 3 prints it ("O = ..., OU = ..., CN = ..."); our names only use these
    three attributes and plain values, so no escaping is needed."""
    return ", ".join(f"{_SHORT[a.oid]} = {a.value}" for a in name)


def _issue(ca: trustme.CA, directory: str, stem: str, *identities: str, common_name: Optional[str] = None,
           key_type: trustme.KeyType = trustme.KeyType.RSA) -> Identity:
    leaf = ca.issue_cert(*identities, common_name=common_name, key_type=key_type)
    cert_path = os.path.join(directory, f"{stem}.pem")
    key_path = os.path.join(directory, f"{stem}.key")
    with open(cert_path, "wb") as f:
        for blob in leaf.cert_chain_pems:
            f.write(blob.bytes())
    leaf.private_key_pem.write_to_path(key_path)
    credential = load_credential(cert_path, key_path)
    return Identity(cert_path, key_path, credential, _oneline(credential.chain[0].subject))


def issue_ec_leaf(ca: trustme.CA, curve, subject: x509.Name, names: List[x509.GeneralName], usage,
                  directory: str, stem: str, *, critical: bool = False) -> Identity:
    """A leaf on another curve than trustme's P-256, issued by ``ca`` as trustme issues its
    leaves (``usage``: its one extendedKeyUsage; ``critical``: its subjectAltName and EKU, as
    trustme marks them), written to ``directory`` as ``stem``.pem and ``stem``.key."""
    import datetime

    from cryptography.hazmat.primitives import hashes, serialization

    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    key = ec.generate_private_key(curve)
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=critical)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=critical)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, f"{stem}.pem")
    key_path = os.path.join(directory, f"{stem}.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    credential = load_credential(cert_path, key_path)
    return Identity(cert_path, key_path, credential, _oneline(cert.subject))


def _issue_ec(ca: trustme.CA, directory: str, stem: str, curve, email: str, common_name: str) -> Identity:
    """A client certificate on another curve than trustme's P-256."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ferrotls tests"),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return issue_ec_leaf(ca, curve, subject, [x509.RFC822Name(email)], ExtendedKeyUsageOID.CLIENT_AUTH,
                         directory, stem, critical=True)


def _ca(directory: str, stem: str, unit: str):
    ca = trustme.CA(key_type=trustme.KeyType.RSA, organization_name="ferrotls tests", organization_unit_name=unit)
    path = os.path.join(directory, f"{stem}.pem")
    ca.cert_pem.write_to_path(path)
    subject = _oneline(x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject)
    return ca, path, subject


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> PKI:
    d = str(tmp_path_factory.mktemp("ferrotls-pki"))
    server_ca, server_ca_path, server_ca_subject = _ca(d, "server-ca", "server CA")
    client_ca, client_ca_path, client_ca_subject = _ca(d, "client-ca", "client CA")
    other_ca, other_ca_path, other_ca_subject = _ca(d, "other-ca", "other CA")
    return PKI(
        directory=d,
        server_ca=server_ca,
        server_ca_path=server_ca_path,
        server_ca_subject=server_ca_subject,
        client_ca=client_ca,
        client_ca_path=client_ca_path,
        client_ca_subject=client_ca_subject,
        other_ca=other_ca,
        other_ca_path=other_ca_path,
        other_ca_subject=other_ca_subject,
        server=_issue(server_ca, d, "server", "localhost", "127.0.0.1"),
        server_ec=_issue(server_ca, d, "server-ec", "localhost", "127.0.0.1", key_type=trustme.KeyType.ECDSA),
        client=_issue(client_ca, d, "client", "client-a@example.org", common_name="client A"),
        client2=_issue(client_ca, d, "client2", "client-a2@example.org", common_name="client A2"),
        client_p256=_issue(client_ca, d, "client-p256", "client-ec@example.org", common_name="client EC256",
                           key_type=trustme.KeyType.ECDSA),
        client_p384=_issue_ec(client_ca, d, "client-p384", ec.SECP384R1(), "client-ec384@example.org", "client EC384"),
        other_server=_issue(other_ca, d, "other-server", "localhost", "127.0.0.1"),
        other_client=_issue(other_ca, d, "other-client", "client-b@example.org", common_name="client B"),
    )


@pytest.fixture(scope="session")
def no_ems_openssl_env(tmp_path_factory):
    """An environment in which the openssl command neither offers nor accepts the extended
    master secret (RFC 7627): OpenSSL's SSL_CONF "Options = -ExtendedMasterSecret"."""
    path = tmp_path_factory.mktemp("openssl-conf") / "no-ems.cnf"
    path.write_text(
        "openssl_conf = default_conf\n"
        "[default_conf]\nssl_conf = ssl_sect\n"
        "[ssl_sect]\nsystem_default = system_default_sect\n"
        "[system_default_sect]\nOptions = -ExtendedMasterSecret\n"
    )
    return dict(os.environ, OPENSSL_CONF=str(path))


# --------------------------------------------------------------------------------------------
# openssl s_server / s_client
# --------------------------------------------------------------------------------------------


class OpenSSLServer:
    """A running ``openssl s_server``; stdout and stderr are collected (merged) as it runs."""

    def __init__(self, args: List[str], env=None):
        self.args = args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self._output = OutputLines(self.proc.stdout, "s_server")
        self.port = int(self.wait_for(r"^ACCEPT .*:(\d+)\s*$").group(1))

    @property
    def output(self) -> str:
        return self._output.text

    def wait_for(self, pattern: str, timeout: float = IO_TIMEOUT) -> re.Match:
        """Waits until a line of output matches ``pattern``."""
        return self._output.wait_for(pattern, timeout)

    def finish(self, timeout: float = IO_TIMEOUT) -> str:
        """Waits for the server to exit by itself (-naccept) and returns all its output."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"s_server did not exit; output:\n{self.output}") from None
        self._output.join(timeout)
        return self.output

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._output.join(5)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def openssl_server(pki):
    """Starts ``openssl s_server -tls1_2`` (``-rev -naccept 1`` and our server certificate
    unless told otherwise); returns an OpenSSLServer whose ``port`` is ready. Stopped at teardown."""
    started: List[OpenSSLServer] = []

    def start(*args: str, identity: Optional[Identity] = None, naccept: int = 1, rev: bool = True, env=None,
              tls12: bool = True) -> OpenSSLServer:
        ident = identity or pki.server
        cmd = [OPENSSL, "s_server", "-accept", f"{HOST}:0", "-cert", ident.cert_path, "-key", ident.key_path]
        if tls12:
            cmd.append("-tls1_2")
        if rev:
            cmd.append("-rev")
        if naccept:
            cmd += ["-naccept", str(naccept)]
        cmd += list(args)
        server = OpenSSLServer(cmd, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclasses.dataclass
class ClientRun:
    args: List[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def s_client(pki):
    """Runs ``openssl s_client -connect 127.0.0.1:PORT -tls1_2 -CAfile <server CA>`` plus the
    given arguments to completion with ``input`` on stdin; returns a ClientRun."""

    def run(port: int, *args: str, input: bytes = b"", env=None, timeout: float = 20.0, tls12: bool = True,
            cafile: Optional[str] = None) -> ClientRun:
        cmd = [OPENSSL, "s_client", "-connect", f"{HOST}:{port}", "-CAfile", cafile or pki.server_ca_path]
        if tls12:
            cmd.append("-tls1_2")
        cmd += list(args)
        proc = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=env)
        return ClientRun(cmd, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))

    return run


# --------------------------------------------------------------------------------------------
# A ferrotls server in a thread
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Served:
    """One connection a FerroServer served."""

    conn: Optional[Connection] = None
    engine: Optional[SocketEngine] = None
    result: Any = None
    error: Optional[BaseException] = None

    def check(self) -> Any:
        """The handler's result; re-raises what went wrong on the server side."""
        if self.error is not None:
            raise self.error
        return self.result


class FerroServer:
    """Listens on 127.0.0.1 (ephemeral port) and serves ``connections`` connections one after
    the other: for each, a server Connection over a SocketEngine, ``do_handshake()`` (unless
    ``handshake=False``), then ``handler(engine)``. Errors are kept per connection."""

    def __init__(self, config: TLSConfig, handler: Callable[[SocketEngine], Any], connections: int = 1,
                 timeout: float = IO_TIMEOUT, handshake: bool = True):
        self.config = config
        self.handler = handler
        self.connections = connections
        self.timeout = timeout
        self.handshake = handshake
        self.served: List[Served] = []
        self._stopping = threading.Event()
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while len(self.served) < self.connections and not self._stopping.is_set():
                try:
                    sock, _ = self.listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    break
                served = Served()
                self.served.append(served)
                with sock:
                    sock.settimeout(self.timeout)
                    served.conn = Connection(self.config, False)
                    served.engine = SocketEngine(sock, served.conn)
                    try:
                        if self.handshake:
                            served.engine.do_handshake()
                        served.result = self.handler(served.engine)
                    except BaseException as e:  # kept for the test to look at
                        served.error = e
        finally:
            self.listener.close()

    def join(self, timeout: float = 20.0) -> List[Served]:
        """Waits until every connection was served; returns them."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.stop()
            raise AssertionError(f"the ferrotls server did not finish serving {self.connections} connection(s)")
        return self.served

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)


@pytest.fixture
def ferro_server():
    """Starts a FerroServer(config, handler, connections=1, ...); stopped at teardown."""
    started: List[FerroServer] = []

    def start(config: TLSConfig, handler: Callable[[SocketEngine], Any], **kwargs) -> FerroServer:
        server = FerroServer(config, handler, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# Handlers for FerroServer, and the same exchange for a ferrotls client.


def read_line(engine: SocketEngine, limit: int = 1 << 16) -> bytes:
    """Application data up to and including the first newline (b"" ends early at EOF)."""
    buf = bytearray()
    while b"\n" not in buf and len(buf) < limit:
        data = engine.recv()
        if not data:
            break
        buf += data
    return bytes(buf)


def drain(engine: SocketEngine) -> bytes:
    """Everything until the peer's close_notify (or TCP EOF)."""
    buf = bytearray()
    while True:
        data = engine.recv()
        if not data:
            return bytes(buf)
        buf += data


def reverse_line(line: bytes) -> bytes:
    """What ``openssl s_server -rev`` answers to a line."""
    return line.rstrip(b"\r\n")[::-1] + b"\n"


def reverse_and_close_first(engine: SocketEngine) -> dict:
    """Server handler: reads one line, answers it reversed (like ``s_server -rev``), sends
    close_notify first, then reads until the peer's close_notify."""
    line = read_line(engine)
    engine.sendall(reverse_line(line))
    engine.close()
    rest = drain(engine)
    return {"line": line, "rest": rest, "peer_closed": engine.conn.peer_closed, "eof": engine.eof,
            "suite": engine.conn.suite}


def serve_until_closed(engine: SocketEngine) -> dict:
    """Server handler: reads until the peer closes, then closes (if not already answered)."""
    data = drain(engine)
    engine.close()
    return {"data": data, "peer_closed": engine.conn.peer_closed, "resumed": engine.conn.resumed}


def ferro_client(port: int, config: TLSConfig, server_hostname: Optional[str] = "localhost", session=None,
                 timeout: float = IO_TIMEOUT):
    """Connects a ferrotls client to 127.0.0.1:port; returns (socket, engine) before the handshake."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.settimeout(timeout)
    conn = Connection(config, True, server_hostname=server_hostname, session=session)
    return sock, SocketEngine(sock, conn)


# --------------------------------------------------------------------------------------------
# stdlib ssl peers
# --------------------------------------------------------------------------------------------


# The stdlib's default cipher string has no RSA key exchange: name ferrotls's suites.
ALL_SUITES = ":".join(s.openssl_name for s in TLS12_SUITES)


def stdlib_server_context(identity: Identity, cipher: Optional[str] = None, options: int = 0) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher or ALL_SUITES)
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    ctx.options |= options
    return ctx


def stdlib_client_context(cafile: str, cipher: Optional[str] = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher or ALL_SUITES)
    ctx.load_verify_locations(cafile)
    return ctx


@pytest.fixture
def background():
    """``background(fn, *args)`` runs fn in a thread and returns a Future (``.result(timeout)``
    re-raises the thread's exception)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)

    def submit(fn, *args, **kwargs) -> concurrent.futures.Future:
        return pool.submit(fn, *args, **kwargs)

    yield submit
    pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def listener():
    """A plain TCP listening socket on 127.0.0.1 (closed at teardown)."""
    sock = socket.create_server((HOST, 0))
    sock.settimeout(IO_TIMEOUT)
    yield sock
    sock.close()


@pytest.fixture(scope="session")
def tlsutil():
    """The helpers above, for test modules (importing conftest is not reliable)."""
    import types

    return types.SimpleNamespace(
        read_line=read_line,
        drain=drain,
        reverse_line=reverse_line,
        reverse_and_close_first=reverse_and_close_first,
        serve_until_closed=serve_until_closed,
        ferro_client=ferro_client,
        stdlib_server_context=stdlib_server_context,
        stdlib_client_context=stdlib_client_context,
        IO_TIMEOUT=IO_TIMEOUT,
        HOST=HOST,
    )


@pytest.fixture
def thread_servers():
    """Starts dropin_async_helpers.ThreadServer(handler) peers; all stopped at teardown."""
    from dropin_async_helpers import ThreadServer

    started = []

    def start(handler):
        server = ThreadServer(handler)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
