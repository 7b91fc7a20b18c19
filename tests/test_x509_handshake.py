"""Certificate path validation inside real handshakes, in both roles, against real peers.

Our client (``ferrotls.create_default_context``: CERT_REQUIRED, check_hostname) connects to
``openssl s_server`` and to a stdlib ``ssl`` server presenting a bad chain; our server
(``ferrotls.SSLContext`` with CERT_REQUIRED) is offered bad client chains by ``openssl s_client``
and by a stdlib client. Each failure must be the ``ssl.SSLCertVerificationError`` (verify_code,
verify_message) the stdlib raises for it, and the peer must receive the alert OpenSSL sends for
that X509_V_ERR code (``ssl_x509err2alert``).

The expected values are one table per role. They are not taken on faith: the ``*_table_*``
tests check every row against OpenSSL alone (a stdlib client against a stdlib server; ``openssl
s_client -verify_return_error`` against a ferrotls server presenting the same chain, the
alert our server receives being the one OpenSSL sends; ``openssl s_server -Verify`` for client
chains). Every bad chain has a good twin made the same way but for the one defect, and that twin
must succeed with every peer, so no failure is accidental.

Certificates are made here with cryptography's CertificateBuilder (EC P-256 keys) under conftest's
trustme CAs. They follow the web PKI profile ferrotls checks (SKI on CAs, AKI below the root,
an EKU on every end entity, no subject CN outside the SAN), so that the one defect of each bad
chain is the only reason to reject it.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import re
import socket
import ssl
import subprocess
import types
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import ferrotls
from ferrotls.x509.keystore import load_credential

HOST = "127.0.0.1"
IO_TIMEOUT = 10.0
UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC)
DAY = datetime.timedelta(days=1)
SERVER_AUTH, CLIENT_AUTH = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
# OpenSSL's default verify depth (X509_VERIFY_PARAM "default"): at most 100 intermediates.
# pyca/cryptography's default max_chain_depth is 8. A chain with more intermediates than both is
# too long for every verifier here, whatever default ferrotls picks in between.
TOO_MANY_INTERMEDIATES = 101


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def trustme_issuer(ca) -> Issuer:
    return Issuer(x509.load_pem_x509_certificate(ca.cert_pem.bytes()),
                  serialization.load_pem_private_key(ca.private_key_pem.bytes(), None))


def _name(unit: str, cn: Optional[str] = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ferrotls tests"),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit)]
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _general_name(identity: str) -> x509.GeneralName:
    if "@" in identity:
        return x509.RFC822Name(identity)
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        return x509.DNSName(identity)


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign,
                         crl_sign=key_cert_sign, encipher_only=False, decipher_only=False)


def make_ca(issuer: Issuer, unit: str, *, basic_constraints: bool = True) -> Issuer:
    """An intermediate CA under ``issuer``; ``basic_constraints=False`` leaves out both
    basicConstraints and keyUsage: then nothing says it is a CA (OpenSSL's X509_check_ca is 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(unit)).issuer_name(issuer.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - DAY).not_valid_after(NOW + 60 * DAY)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                              critical=False))
    if basic_constraints:
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(_key_usage(key_cert_sign=True), critical=True))
    return Issuer(builder.sign(issuer.key, hashes.SHA256()), key)


def make_root(unit: str) -> Issuer:
    """A self-signed root CA without a path length limit (trustme's roots allow 9 intermediates)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(unit)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + 60 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(key_cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Issuer(cert, key)


def make_leaf(issuer: Optional[Issuer], identities: Sequence[str], *, eku: Sequence[x509.ObjectIdentifier],
              unit: str = "leaf", not_before: Optional[datetime.datetime] = None,
              not_after: Optional[datetime.datetime] = None) -> Issuer:
    """An end-entity certificate for ``identities`` (DNS names, IP addresses, e-mail addresses)
    issued by ``issuer``, or self-signed when ``issuer`` is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(unit)
    signer = issuer.key if issuer else key
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - DAY).not_valid_after(not_after or NOW + 30 * DAY)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                              critical=False)
               .add_extension(_key_usage(digital_signature=True), critical=True)
               .add_extension(x509.SubjectAlternativeName([_general_name(i) for i in identities]), critical=False)
               .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False))
    return Issuer(builder.sign(signer, hashes.SHA256()), key)


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclasses.dataclass
class ChainFiles:
    """A chain as files: the leaf alone, the intermediates (leaf's issuer first) and both
    together, and the leaf's key."""

    leaf: str
    chain: Optional[str]
    full: str
    key: str

    def chain_args(self) -> List[str]:
        """``-cert_chain`` for s_server and s_client: their -cert reads only one certificate."""
        return ["-cert_chain", self.chain] if self.chain else []

    def openssl_args(self) -> List[str]:
        return ["-cert", self.leaf, "-key", self.key, *self.chain_args()]

    @property
    def identity(self) -> types.SimpleNamespace:
        """What conftest's openssl_server fixture takes as ``identity``."""
        return types.SimpleNamespace(cert_path=self.leaf, key_path=self.key)


def write_chain(directory: str, stem: str, leaf: Issuer, intermediates: Sequence[Issuer] = ()) -> ChainFiles:
    def put(suffix: str, data: bytes) -> str:
        path = os.path.join(directory, f"{stem}{suffix}")
        with open(path, "wb") as f:
            f.write(data)
        return path

    inters = [i.cert for i in intermediates]
    key = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return ChainFiles(leaf=put(".pem", _pem(leaf.cert)), chain=put("-chain.pem", _pem(*inters)) if inters else None,
                      full=put("-full.pem", _pem(leaf.cert, *inters)), key=put(".key", key))


def identity_files(identity) -> ChainFiles:
    """conftest's Identity (a trustme leaf issued straight by its CA) as ChainFiles."""
    return ChainFiles(leaf=identity.cert_path, chain=None, full=identity.cert_path, key=identity.key_path)


def long_chain(root: Issuer, count: int, stem: str) -> Tuple[Issuer, List[Issuer]]:
    """A server leaf under ``count`` intermediates (no path length limits); intermediates are
    returned the leaf's issuer first."""
    inters: List[Issuer] = []
    issuer = root
    for i in range(count):
        issuer = make_ca(issuer, f"{stem} intermediate {i}")
        inters.append(issuer)
    return make_leaf(issuer, ["localhost", "127.0.0.1"], eku=[SERVER_AUTH]), inters[::-1]


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    """A bad chain and its good twin, with what rejecting the bad one must look like."""

    bad: ChainFiles
    good: ChainFiles
    code: int  # X509_V_ERR_*
    message: str  # verify_message as the stdlib words it
    alert: str  # the alert OpenSSL sends for ``code`` (ssl.AlertDescription name, lower case, no prefix)
    cafile: str  # the trust anchors of the verifying side
    good_cafile: Optional[str] = None
    host: str = "localhost"  # client side: the server_hostname asked for
    good_host: Optional[str] = None

    @property
    def twin_cafile(self) -> str:
        return self.good_cafile or self.cafile

    @property
    def twin_host(self) -> str:
        return self.good_host or self.host


SERVER_CASES = ["expired", "not-yet-valid", "wrong-host", "ip-mismatch", "client-auth-eku", "untrusted-ca",
                "self-signed", "chain-too-long", "issuer-not-a-ca"]
CLIENT_CASES = ["expired", "not-yet-valid", "server-auth-eku", "untrusted-ca", "self-signed"]


@pytest.fixture(scope="module")
def server_cases(pki, tmp_path_factory) -> Dict[str, Case]:
    """Server chains our client must reject (and their twins it must accept), under the server CA."""
    d = str(tmp_path_factory.mktemp("x509-handshake-server"))
    ca = trustme_issuer(pki.server_ca)
    names = ["localhost", "127.0.0.1"]

    def leaf_files(stem: str, issuer: Optional[Issuer] = ca, eku=(SERVER_AUTH,), **kwargs) -> ChainFiles:
        return write_chain(d, stem, make_leaf(issuer, names, eku=eku, unit=stem, **kwargs))

    good = leaf_files("good")
    server = identity_files(pki.server)
    # Under a root of their own: its path length is unlimited, so length is the only defect.
    long_root = make_root("root of long chains")
    long_root_path = os.path.join(d, "long-root.pem")
    with open(long_root_path, "wb") as f:
        f.write(_pem(long_root.cert))
    long_leaf, long_inters = long_chain(long_root, TOO_MANY_INTERMEDIATES, "long")
    short_leaf, short_inters = long_chain(long_root, 3, "short")
    loose = make_ca(ca, "no basicConstraints", basic_constraints=False)
    strict = make_ca(ca, "with basicConstraints")
    return {
        "expired": Case(leaf_files("expired", not_before=NOW - 60 * DAY, not_after=NOW - DAY), good,
                        10, "certificate has expired", "certificate_expired", pki.server_ca_path),
        "not-yet-valid": Case(leaf_files("not-yet-valid", not_before=NOW + DAY, not_after=NOW + 60 * DAY), good,
                              9, "certificate is not yet valid", "bad_certificate", pki.server_ca_path),
        # CPython words these two itself (Modules/_ssl.c fill_and_set_sslerror).
        "wrong-host": Case(server, server, 62, "Hostname mismatch, certificate is not valid for 'wrong.example'.",
                           "bad_certificate", pki.server_ca_path, host="wrong.example", good_host="localhost"),
        "ip-mismatch": Case(server, server, 64, "IP address mismatch, certificate is not valid for '127.0.0.2'.",
                            "bad_certificate", pki.server_ca_path, host="127.0.0.2", good_host="127.0.0.1"),
        "client-auth-eku": Case(leaf_files("client-auth-eku", eku=[CLIENT_AUTH]),
                                leaf_files("server-auth-eku", eku=[SERVER_AUTH]),
                                26, "unsuitable certificate purpose", "unsupported_certificate", pki.server_ca_path),
        # The same chain, once trusted, is fine.
        "untrusted-ca": Case(identity_files(pki.other_server), identity_files(pki.other_server), 20,
                             "unable to get local issuer certificate", "unknown_ca", pki.server_ca_path,
                             good_cafile=pki.other_ca_path),
        # The twin is made the same way, only issued by the CA.
        "self-signed": Case(leaf_files("self-signed", issuer=None), good, 18, "self-signed certificate", "unknown_ca",
                            pki.server_ca_path),
        "chain-too-long": Case(write_chain(d, "long", long_leaf, long_inters),
                               write_chain(d, "short", short_leaf, short_inters),
                               22, "certificate chain too long", "unknown_ca", long_root_path),
        # An issuer with neither basicConstraints nor keyUsage (RFC 5280 6.1.4 (k)).
        "issuer-not-a-ca": Case(write_chain(d, "loose", make_leaf(loose, names, eku=[SERVER_AUTH]), [loose]),
                                write_chain(d, "strict", make_leaf(strict, names, eku=[SERVER_AUTH]), [strict]),
                                79, "invalid CA certificate", "unknown_ca", pki.server_ca_path),
    }


@pytest.fixture(scope="module")
def client_cases(pki, tmp_path_factory) -> Dict[str, Case]:
    """Client chains our server must reject (and their twins it must accept), under the client CA."""
    d = str(tmp_path_factory.mktemp("x509-handshake-client"))
    ca = trustme_issuer(pki.client_ca)
    other = trustme_issuer(pki.other_ca)

    def leaf_files(stem: str, issuer: Optional[Issuer] = ca, eku=(CLIENT_AUTH,), **kwargs) -> ChainFiles:
        return write_chain(d, stem, make_leaf(issuer, [f"{stem}@example.org"], eku=eku, unit=stem, **kwargs))

    good = leaf_files("good-client")
    return {
        "expired": Case(leaf_files("expired", not_before=NOW - 60 * DAY, not_after=NOW - DAY), good,
                        10, "certificate has expired", "certificate_expired", pki.client_ca_path),
        "not-yet-valid": Case(leaf_files("not-yet-valid", not_before=NOW + DAY, not_after=NOW + 60 * DAY), good,
                              9, "certificate is not yet valid", "bad_certificate", pki.client_ca_path),
        "server-auth-eku": Case(leaf_files("server-auth-eku", eku=[SERVER_AUTH]),
                                leaf_files("client-auth-eku", eku=[CLIENT_AUTH]),
                                26, "unsuitable certificate purpose", "unsupported_certificate", pki.client_ca_path),
        "untrusted-ca": Case(leaf_files("other-ca", issuer=other), leaf_files("other-ca-twin", issuer=other),
                             20, "unable to get local issuer certificate", "unknown_ca", pki.client_ca_path,
                             good_cafile=pki.other_ca_path),
        "self-signed": Case(leaf_files("self-signed", issuer=None), good, 18, "self-signed certificate",
                            "unknown_ca", pki.client_ca_path),
    }


# --------------------------------------------------------------------------------------------
# Peers and what they report
# --------------------------------------------------------------------------------------------


def alert_name(number: int) -> str:
    """certificate_expired for 45: the stdlib's AlertDescription, without its prefix."""
    return ssl.AlertDescription(number).name.removeprefix("ALERT_DESCRIPTION_").lower()


# The reason an OpenSSL peer's SSLError gives for a fatal alert it received.
_SSLV3_ALERTS = {"bad_certificate", "unsupported_certificate", "certificate_expired", "certificate_unknown",
                 "handshake_failure"}


def received_reason(alert: str) -> str:
    return ("SSLV3_ALERT_" if alert in _SSLV3_ALERTS else "TLSV1_ALERT_") + alert.upper()


def alert_in_output(output: str) -> Optional[str]:
    """The alert an openssl command says it received ("...:SSL alert number 45"), by name."""
    found = re.findall(r"SSL alert number (\d+)", output)
    return alert_name(int(found[0])) if found else None


def verify_errors_in_output(output: str) -> List[int]:
    """The X509_V_ERR codes an openssl command printed ("verify error:num=10:...")."""
    return [int(n) for n in re.findall(r"verify error:num=(\d+):", output)]


def openssl_name_check(host: str) -> List[str]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return ["-verify_hostname", host]
    return ["-verify_ip", host]


def read_line(tls: ssl.SSLSocket, limit: int = 1 << 16) -> bytes:
    buf = b""
    while b"\n" not in buf and len(buf) < limit:
        data = tls.recv(4096)
        if not data:
            break
        buf += data
    return buf


def reverse(line: bytes) -> bytes:
    """What ``openssl s_server -rev`` answers."""
    return line.rstrip(b"\r\n")[::-1] + b"\n"


def serve_one(listener: socket.socket, ctx: ssl.SSLContext) -> Optional[BaseException]:
    """Accepts one connection, handshakes as a server, answers one line reversed; returns the
    handshake's exception (None when it succeeded)."""
    conn, _ = listener.accept()
    conn.settimeout(IO_TIMEOUT)
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        conn.close()
        return e
    with tls:
        tls.sendall(reverse(read_line(tls)))
    return None


def stdlib_server(files: ChainFiles, cafile: Optional[str] = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.full, files.key)
    if cafile:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile)
    return ctx


def stdlib_client(cafile: str, files: Optional[ChainFiles] = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile)
    if files:
        ctx.load_cert_chain(files.full, files.key)
    return ctx


def ferro_client(cafile: str) -> ssl.SSLContext:
    ctx = ferrotls.create_default_context(cafile=cafile)
    assert isinstance(ctx, ferrotls.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    return ctx


def ferro_server(files: ChainFiles, cafile: str) -> ssl.SSLContext:
    ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.full, files.key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile)
    return ctx


def connect(ctx: ssl.SSLContext, port: int, host: str, line: bytes = b"ping\n") -> Tuple[Optional[bytes], Optional[BaseException]]:
    """Handshakes with 127.0.0.1:port as ``host``, sends a line and reads the answer:
    (answer, None), or (None, the handshake's exception)."""
    sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    try:
        tls = ctx.wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, OSError) as e:
        sock.close()
        return None, e
    with tls:
        tls.sendall(line)
        return read_line(tls), None


def run_openssl(args: List[str], input: bytes = b"", timeout: float = 20.0) -> str:
    proc = subprocess.run(args, input=input, capture_output=True, timeout=timeout)
    return proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")


def expect_verify_error(err: Optional[BaseException], case: Case) -> None:
    assert isinstance(err, ssl.SSLCertVerificationError), repr(err)
    assert (err.verify_code, err.verify_message) == (case.code, case.message), err
    assert err.reason == "CERTIFICATE_VERIFY_FAILED"
    assert f"certificate verify failed: {case.message}" in str(err)


def expect_received_alert(err: Optional[BaseException], alert: str) -> None:
    """An ssl peer's handshake failed on receiving ``alert``."""
    assert isinstance(err, ssl.SSLError) and not isinstance(err, ssl.SSLCertVerificationError), repr(err)
    assert err.reason == received_reason(alert), err


# --------------------------------------------------------------------------------------------
# The tables, checked against OpenSSL alone
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVER_CASES)
def test_server_table_matches_stdlib(name, server_cases, listener, background):
    """A stdlib client against a stdlib server presenting the bad chain: the stdlib client's
    error and the alert the stdlib server receives are the table's."""
    case = server_cases[name]
    served = background(serve_one, listener, stdlib_server(case.bad))
    answer, err = connect(stdlib_client(case.cafile), listener.getsockname()[1], case.host)
    expect_verify_error(err, case)
    expect_received_alert(served.result(IO_TIMEOUT), case.alert)


@pytest.mark.parametrize("name", SERVER_CASES)
def test_server_table_alert_is_what_openssl_s_client_sends(name, server_cases, pki, ferro_server, s_client, tlsutil):
    """Ground truth for the alert: ``openssl s_client -verify_return_error`` against a ferrotls
    server presenting the bad chain reports the table's code, and our server receives the table's
    alert from it."""
    case = server_cases[name]
    server = ferro_server(pki.server_config(credentials=[load_credential(case.bad.full, case.bad.key)]),
                          tlsutil.serve_until_closed)
    run = s_client(server.port, "-verify_return_error", *openssl_name_check(case.host), cafile=case.cafile)
    (served,) = server.join()
    assert run.returncode != 0, run.output
    assert case.code in verify_errors_in_output(run.output), run.output
    assert served.error is not None, "the handshake succeeded"
    assert (getattr(served.error, "alert", None), getattr(served.error, "sent", None)) == (case.alert, False), \
        repr(served.error)


@pytest.mark.parametrize("name", CLIENT_CASES)
def test_client_table_matches_openssl(name, client_cases, pki, openssl_server, s_client, listener, background):
    """``openssl s_server -Verify 1 -verify_return_error`` given the bad client chain prints the
    table's code and s_client receives the table's alert; a stdlib server raises the table's
    error and a stdlib client receives the table's alert."""
    case = client_cases[name]
    server = openssl_server("-Verify", "1", "-verify_return_error", "-CAfile", case.cafile)
    run = s_client(server.port, *case.bad.openssl_args(), "-verify_return_error", "-ign_eof", input=b"ping\n")
    out = server.finish()
    assert case.code in verify_errors_in_output(out), out
    assert alert_in_output(run.output) == case.alert, run.output

    served = background(serve_one, listener, stdlib_server(identity_files(pki.server), case.cafile))
    answer, err = connect(stdlib_client(pki.server_ca_path, case.bad), listener.getsockname()[1], "localhost")
    expect_verify_error(served.result(IO_TIMEOUT), case)
    expect_received_alert(err, case.alert)


# --------------------------------------------------------------------------------------------
# Our client
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVER_CASES)
def test_client_rejects_openssl_server(name, server_cases, openssl_server):
    case = server_cases[name]
    server = openssl_server(*case.bad.chain_args(), identity=case.bad.identity)
    answer, err = connect(ferro_client(case.cafile), server.port, case.host)
    expect_verify_error(err, case)
    out = server.finish()
    assert alert_in_output(out) == case.alert, out


@pytest.mark.parametrize("name", SERVER_CASES)
def test_client_rejects_stdlib_server(name, server_cases, listener, background):
    case = server_cases[name]
    served = background(serve_one, listener, stdlib_server(case.bad))
    answer, err = connect(ferro_client(case.cafile), listener.getsockname()[1], case.host)
    expect_verify_error(err, case)
    expect_received_alert(served.result(IO_TIMEOUT), case.alert)


@pytest.mark.parametrize("name", SERVER_CASES)
def test_client_accepts_good_twin_from_openssl_server(name, server_cases, openssl_server):
    case = server_cases[name]
    server = openssl_server(*case.good.chain_args(), identity=case.good.identity)
    answer, err = connect(ferro_client(case.twin_cafile), server.port, case.twin_host, line=b"good twin\n")
    assert err is None, repr(err)
    assert answer == b"niwt doog\n"
    out = server.finish()
    assert alert_in_output(out) is None, out


@pytest.mark.parametrize("name", SERVER_CASES)
def test_client_accepts_good_twin_from_stdlib_server(name, server_cases, listener, background):
    case = server_cases[name]
    served = background(serve_one, listener, stdlib_server(case.good))
    answer, err = connect(ferro_client(case.twin_cafile), listener.getsockname()[1], case.twin_host,
                          line=b"good twin\n")
    assert err is None, repr(err)
    assert answer == b"niwt doog\n"
    assert served.result(IO_TIMEOUT) is None


def test_client_verified_chain_of_a_long_but_allowed_chain(server_cases, listener, background):
    """The chain-too-long twin (three intermediates) is accepted and its whole chain is seen."""
    case = server_cases["chain-too-long"]
    served = background(serve_one, listener, stdlib_server(case.good))
    sock = socket.create_connection((HOST, listener.getsockname()[1]), timeout=IO_TIMEOUT)
    with ferro_client(case.cafile).wrap_socket(sock, server_hostname="localhost") as tls:
        assert tls.getpeercert()["subjectAltName"] == (("DNS", "localhost"), ("IP Address", "127.0.0.1"))
        tls.sendall(b"x\n")
        assert read_line(tls) == b"x\n"
    assert served.result(IO_TIMEOUT) is None


def test_context_max_chain_depth(server_cases, listener, background):
    """SSLContext.max_chain_depth (a ferrotls extension) bounds the intermediates: the good
    twin's three pass with 3 and fail with 2 as OpenSSL's "certificate chain too long" (22),
    which the stdlib server receives as unknown_ca."""
    case = server_cases["chain-too-long"]
    for depth, accepted in ((3, True), (2, False)):
        served = background(serve_one, listener, stdlib_server(case.good))
        ctx = ferro_client(case.cafile)
        ctx.max_chain_depth = depth
        answer, err = connect(ctx, listener.getsockname()[1], "localhost")
        if accepted:
            assert err is None and answer == b"gnip\n", repr(err)
            assert served.result(IO_TIMEOUT) is None
        else:
            assert isinstance(err, ssl.SSLCertVerificationError) and err.verify_code == 22, repr(err)
            expect_received_alert(served.result(IO_TIMEOUT), "unknown_ca")


@pytest.mark.parametrize("client", ["ferrotls", "stdlib"])
def test_crl_checking_fails_closed(client, server_cases, listener, background):
    """VERIFY_CRL_CHECK_LEAF without CRLs: OpenSSL fails with "unable to get certificate CRL" (3)
    and sends unknown_ca. ferrotls has no CRL support and fails the same way rather than skip
    the check it was asked for."""
    case = server_cases["expired"]
    served = background(serve_one, listener, stdlib_server(case.good))
    ctx = ferro_client(case.twin_cafile) if client == "ferrotls" else stdlib_client(case.twin_cafile)
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    _, err = connect(ctx, listener.getsockname()[1], case.twin_host)
    assert isinstance(err, ssl.SSLCertVerificationError), repr(err)
    assert (err.verify_code, err.verify_message) == (3, "unable to get certificate CRL")
    expect_received_alert(served.result(IO_TIMEOUT), "unknown_ca")


def test_context_verify_policy_custom_eku(listener, background, tmp_path):
    """A private PKI whose server certificates carry only their own extendedKeyUsage: refused by
    default as OpenSSL refuses it (26), accepted with SSLContext.verify_policy naming that EKU."""
    private_eku = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.1")
    root = make_root("private pki root")
    files = write_chain(str(tmp_path), "private", make_leaf(root, ["localhost"], eku=[private_eku]))
    cafile = str(tmp_path / "private-root.pem")
    with open(cafile, "wb") as f:
        f.write(_pem(root.cert))
    for policy in (None, ferrotls.x509.Policy(extended_key_usage=private_eku)):
        served = background(serve_one, listener, stdlib_server(files))
        ctx = ferro_client(cafile)
        ctx.verify_policy = policy
        answer, err = connect(ctx, listener.getsockname()[1], "localhost")
        if policy is None:
            assert isinstance(err, ssl.SSLCertVerificationError) and err.verify_code == 26, repr(err)
            expect_received_alert(served.result(IO_TIMEOUT), "unsupported_certificate")
        else:
            assert err is None and answer == b"gnip\n", repr(err)
            assert served.result(IO_TIMEOUT) is None


# --------------------------------------------------------------------------------------------
# Our server, demanding client certificates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIENT_CASES)
def test_server_rejects_openssl_client(name, client_cases, pki, s_client, listener, background):
    """``openssl s_client -verify_return_error`` (which verifies our server and finds it good)
    presents the bad client chain: our server fails with the table's SSLCertVerificationError and
    s_client names the table's alert (unknown_ca for an untrusted CA, ...)."""
    case = client_cases[name]
    served = background(serve_one, listener, ferro_server(identity_files(pki.server), case.cafile))
    run = s_client(listener.getsockname()[1], *case.bad.openssl_args(), "-verify_return_error", "-ign_eof",
                   "-verify_hostname", "localhost", input=b"ping\n")
    expect_verify_error(served.result(IO_TIMEOUT), case)
    assert run.returncode != 0, run.output
    assert verify_errors_in_output(run.output) == [], run.output  # s_client found our server good
    assert alert_in_output(run.output) == case.alert, run.output
    assert f"alert {case.alert.replace('_', ' ')}" in run.output, run.output  # "tlsv1 alert unknown ca"


@pytest.mark.parametrize("name", CLIENT_CASES)
def test_server_rejects_stdlib_client(name, client_cases, pki, listener, background):
    case = client_cases[name]
    served = background(serve_one, listener, ferro_server(identity_files(pki.server), case.cafile))
    answer, err = connect(stdlib_client(pki.server_ca_path, case.bad), listener.getsockname()[1], "localhost")
    expect_verify_error(served.result(IO_TIMEOUT), case)
    expect_received_alert(err, case.alert)


@pytest.mark.parametrize("name", CLIENT_CASES)
def test_server_accepts_good_twin_from_openssl_client(name, client_cases, pki, s_client, listener, background):
    case = client_cases[name]
    served = background(serve_one, listener, ferro_server(identity_files(pki.server), case.twin_cafile))
    run = s_client(listener.getsockname()[1], *case.good.openssl_args(), "-verify_return_error", "-ign_eof",
                   "-verify_hostname", "localhost", input=b"good twin\n")
    assert served.result(IO_TIMEOUT) is None
    assert "niwt doog" in run.stdout, run.output
    assert alert_in_output(run.output) is None, run.output


@pytest.mark.parametrize("name", CLIENT_CASES)
def test_server_accepts_good_twin_from_stdlib_client(name, client_cases, pki, listener, background):
    case = client_cases[name]
    served = background(serve_one, listener, ferro_server(identity_files(pki.server), case.twin_cafile))
    answer, err = connect(stdlib_client(pki.server_ca_path, case.good), listener.getsockname()[1], "localhost",
                          line=b"good twin\n")
    assert err is None, repr(err)
    assert answer == b"niwt doog\n"
    assert served.result(IO_TIMEOUT) is None


def test_server_sees_the_verified_client_chain(client_cases, pki, listener, background):
    """After a good client handshake our server's getpeercert() shows the client's SAN."""
    case = client_cases["expired"]  # its twin is the plain good client certificate

    def serve(listener, ctx):
        conn, _ = listener.accept()
        conn.settimeout(IO_TIMEOUT)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            cert = tls.getpeercert()
            tls.sendall(reverse(read_line(tls)))
        return cert

    served = background(serve, listener, ferro_server(identity_files(pki.server), case.cafile))
    answer, err = connect(stdlib_client(pki.server_ca_path, case.good), listener.getsockname()[1], "localhost")
    assert err is None and answer == b"gnip\n", repr(err)
    assert served.result(IO_TIMEOUT)["subjectAltName"] == (("email", "good-client@example.org"),)
