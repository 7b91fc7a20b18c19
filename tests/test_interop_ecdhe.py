"""ECDHE in TLS 1.2 (RFC 8422, RFC 7748): ferrotls against real clients and servers
(`openssl s_server` / `s_client`, curl, the stdlib `ssl` module) for every ECDHE suite and every
group, the server's choice between an RSA and an ECDSA certificate, ECDSA client certificates,
resumption, the default negotiation, and tampered key exchange messages in memory.

What was negotiated is read independently of the library's own bookkeeping where possible:
  - the group from the ServerKeyExchange in our side's handshake transcript (decoded here from
    RFC 8422 5.4), or from s_client's "Server Temp Key" line;
  - the server's key from s_client's "Server public key is N bit" and "Peer signature type";
  - the suite from the peer ("Cipher is", "Ciphersuite:", curl's "SSL connection using").
"""

from __future__ import annotations

import re
import socket
import ssl
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, x25519

from conftest import issue_ec_leaf
from ferrotls.engine import TLSError
from ferrotls.protocol import TLS12_SUITES, Connection, TLSAlert

BY_NAME = {s.openssl_name: s for s in TLS12_SUITES}
ECDHE_SUITES = [s for s in TLS12_SUITES if s.kx == "ECDHE"]
RSA_KX = [s for s in TLS12_SUITES if s.kx == "RSA"]

# NamedGroup code points (RFC 8422 5.1.1, RFC 7748), OpenSSL's names for -groups, and how
# s_client prints the server's ephemeral key.
GROUP_CODES = {"x25519": 29, "secp256r1": 23, "secp384r1": 24}
OPENSSL_GROUP = {"x25519": "X25519", "secp256r1": "P-256", "secp384r1": "P-384"}
TEMP_KEY = {"x25519": "X25519, 253 bits", "secp256r1": "ECDH, prime256v1, 256 bits",
            "secp384r1": "ECDH, secp384r1, 384 bits"}
GROUP_NAMES = list(GROUP_CODES)

# Handshake and record types (RFC 5246).
HANDSHAKE, ALERT, CCS = 22, 21, 20
SERVER_KEY_EXCHANGE, CERTIFICATE_VERIFY, CLIENT_KEY_EXCHANGE = 12, 15, 16
# Alert descriptions (RFC 5246 7.2).
ILLEGAL_PARAMETER, DECRYPT_ERROR = 47, 51


def suite_id(suite) -> str:
    return suite.openssl_name


def key_type(suite) -> str:
    """The server key a suite needs, as Credential.key_type names it."""
    return "ec" if suite.auth == "ECDSA" else "rsa"


# --------------------------------------------------------------------------------------------
# Decoding what was sent, from RFC 5246 / RFC 8422
# --------------------------------------------------------------------------------------------


def handshake_messages(transcript: bytes):
    """[(msg_type, body)] of a handshake transcript."""
    out, pos = [], 0
    while pos < len(transcript):
        length = int.from_bytes(transcript[pos + 1 : pos + 4], "big")
        out.append((transcript[pos], bytes(transcript[pos + 4 : pos + 4 + length])))
        pos += 4 + length
    return out


def ske_group(transcript: bytes):
    """The named group of the ServerKeyExchange in a transcript (None without one)."""
    for msg_type, body in handshake_messages(transcript):
        if msg_type == SERVER_KEY_EXCHANGE:
            assert body[0] == 3, "not a named_curve ServerECDHParams"
            code = int.from_bytes(body[1:3], "big")
            return {v: k for k, v in GROUP_CODES.items()}.get(code, code)
    return None


def certificate_verify_scheme(transcript: bytes) -> int:
    (body,) = [b for t, b in handshake_messages(transcript) if t == CERTIFICATE_VERIFY]
    return int.from_bytes(body[:2], "big")


def record(content_type: int, payload: bytes) -> bytes:
    return struct.pack("!BHH", content_type, 0x0303, len(payload)) + payload


def split_records(data: bytes):
    """[(content type, payload)] by the record headers."""
    out, pos = [], 0
    while pos < len(data):
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        out.append((data[pos], data[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    return out


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def vec(data: bytes, len_size: int) -> bytes:
    return len(data).to_bytes(len_size, "big") + data


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------


def client_roundtrip(tlsutil, engine, message: bytes) -> bytes:
    """Handshake, a line to a reversing peer and its answer, then close_notify both ways."""
    engine.do_handshake()
    engine.sendall(message)
    reply = tlsutil.read_line(engine)
    engine.close()
    assert engine.recv() == b"" and engine.conn.peer_closed
    return reply


def s_client_field(stdout: str, pattern: str) -> str:
    match = re.search(pattern, stdout, re.M)
    assert match, f"{pattern!r} not in:\n{stdout}"
    return match.group(1)


def s_client_closed_cleanly(run) -> bool:
    return run.returncode == 0 and re.search(r"^closed$", run.stdout, re.M) is not None


def assert_s_client_saw_key(stdout: str, kind: str) -> None:
    """The server's certificate key as s_client saw it: our P-256 ECDSA key or our RSA key."""
    if kind == "ec":
        assert "Server public key is 256 bit" in stdout and "Peer signature type: ECDSA" in stdout, stdout
    else:
        assert "Server public key is 2048 bit" in stdout and "Peer signature type: RSA-PSS" in stdout, stdout


def suite_groups(suite, group: str):
    """(s_server -groups, our client's groups) to get `group` for the ECDHE exchange: with an
    ECDSA (P-256) certificate both lists must also hold P-256 (RFC 8422 5.1: the client's
    supported_groups bound the certificate's curve in TLS 1.2; OpenSSL checks its own list too),
    and `group` goes first so that both sides' preferences pick it."""
    ours = [group]
    if suite.auth == "ECDSA" and group != "secp256r1":
        ours.append("secp256r1")
    return ":".join(OPENSSL_GROUP[g] for g in ours), ours


# --------------------------------------------------------------------------------------------
# Every ECDHE suite and every group, both directions, against OpenSSL
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", GROUP_NAMES)
@pytest.mark.parametrize("suite", ECDHE_SUITES, ids=suite_id)
def test_client_vs_openssl_server(suite, group, pki, openssl_server, tlsutil):
    theirs, ours = suite_groups(suite, group)
    server = openssl_server("-cipher", suite.openssl_name, "-groups", theirs, "-state", identity=pki.server_for(suite))
    message = f"ferrotls client, {suite.openssl_name} over {group}\n".encode()
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(groups=ours))
    with sock:
        reply = client_roundtrip(tlsutil, engine, message)
    assert reply == tlsutil.reverse_line(message)  # data both ways
    assert engine.conn.suite == suite
    assert ske_group(engine.conn.transcript) == group
    assert engine.conn.peer_chain[0] == pki.server_for(suite).leaf_der
    out = server.finish()
    assert server.returncode == 0, out
    assert f"Ciphersuite: {suite.openssl_name}" in out, out
    assert "SSL3 alert read:warning:close notify" in out, out


@pytest.mark.parametrize("group", GROUP_NAMES)
@pytest.mark.parametrize("suite", ECDHE_SUITES, ids=suite_id)
def test_openssl_client_vs_dual_certificate_server(suite, group, pki, ferro_server, s_client, tlsutil):
    """Our server holds an RSA and an ECDSA certificate; it serves each suite with the right one
    and the group it prefers (`group` first in its TLSConfig.groups)."""
    theirs, _ = suite_groups(suite, group)
    preference = [group] + [g for g in GROUP_NAMES if g != group]
    server = ferro_server(pki.dual_server_config(groups=preference), tlsutil.reverse_and_close_first)
    message = f"s_client, {suite.openssl_name} over {group}\n".encode()
    run = s_client(server.port, "-cipher", suite.openssl_name, "-groups", theirs, "-servername", "localhost",
                   "-verify_return_error", "-ign_eof", input=message)
    (served,) = server.join()
    result = served.check()
    assert s_client_closed_cleanly(run), run.output
    assert s_client_field(run.stdout, r"Cipher is (\S+)") == suite.openssl_name
    assert s_client_field(run.stdout, r"^Server Temp Key: (.*)$") == TEMP_KEY[group]
    assert "Verification: OK" in run.stdout
    assert_s_client_saw_key(run.stdout, key_type(suite))
    assert tlsutil.reverse_line(message).decode() in run.stdout  # data both ways
    assert result["line"] == message and result["peer_closed"]
    assert result["suite"] == suite
    assert served.conn.local_credential.key_type == key_type(suite)
    assert served.conn.local_credential is pki.server_for(suite).credential
    assert ske_group(served.conn.transcript) == group


# --------------------------------------------------------------------------------------------
# curl
# --------------------------------------------------------------------------------------------


def http_hello(engine) -> dict:
    """Server handler: reads an HTTP request head, answers "hello", closes."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = engine.recv()
        if not chunk:
            break
        request += chunk
    engine.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello")
    engine.close()
    return {"request": request, "suite": engine.conn.suite}


@pytest.mark.parametrize("suite_name", [s.openssl_name for s in TLS12_SUITES if s.kx == "ECDHE"])
def test_curl_against_server(suite_name, pki, ferro_server, tlsutil):
    suite = BY_NAME[suite_name]
    server = ferro_server(pki.dual_server_config(), http_hello)
    url = f"https://localhost:{server.port}/ecdhe"
    cmd = ["curl", "-sS", "-v", "--max-time", "20", "--tlsv1.2", "--tls-max", "1.2", "--ciphers", suite_name,
           "--cacert", pki.server_ca_path, "--resolve", f"localhost:{server.port}:{tlsutil.HOST}", url]
    proc = subprocess.run(cmd, capture_output=True, timeout=30)
    (served,) = server.join()
    result = served.check()
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr
    assert proc.stdout == b"hello"
    assert f"SSL connection using TLSv1.2 / {suite_name}" in stderr, stderr
    assert result["request"].startswith(b"GET /ecdhe HTTP/1.1\r\n")
    assert result["suite"] == suite
    assert served.conn.local_credential.key_type == key_type(suite)


@pytest.mark.parametrize("curl_flag, expected", [("--http1.1", b"http/1.1"), ("--http2", b"h2")])
def test_curl_alpn(curl_flag, expected, pki, ferro_server, tlsutil):
    """curl offers ALPN (h2 and http/1.1, or http/1.1 alone); our server takes its own first
    choice among them and curl reports it."""
    config = pki.dual_server_config()
    config.alpn_protocols = [b"h2", b"http/1.1"]
    server = ferro_server(config, http_hello)
    url = f"https://localhost:{server.port}/alpn"
    cmd = ["curl", "-sS", "-v", "--max-time", "20", "--tlsv1.2", "--tls-max", "1.2", curl_flag,
           "--cacert", pki.server_ca_path, "--resolve", f"localhost:{server.port}:{tlsutil.HOST}", url]
    proc = subprocess.run(cmd, capture_output=True, timeout=30)
    (served,) = server.join()
    served.check()
    stderr = proc.stderr.decode("utf-8", "replace")
    assert served.conn.alpn_protocol == expected
    assert f"ALPN: server accepted {expected.decode()}" in stderr or f"ALPN, server accepted to use {expected.decode()}" in stderr, stderr


# --------------------------------------------------------------------------------------------
# The dual-certificate server's choice
# --------------------------------------------------------------------------------------------


# (s_client arguments, the suite and the certificate key our server must pick).
CERTIFICATE_CHOICES = [
    pytest.param(["-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-SHA"], "ECDHE-ECDSA-AES128-GCM-SHA256",
                 "ec", id="ecdsa-suites-only"),
    pytest.param(["-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA"], "ECDHE-RSA-AES128-GCM-SHA256",
                 "rsa", id="ecdhe-rsa-suites-only"),
    pytest.param(["-cipher", "AES128-GCM-SHA256:AES256-SHA"], "AES128-GCM-SHA256", "rsa", id="rsa-kx-suites-only"),
    # OpenSSL's default list offers both: our order puts ECDSA first.
    pytest.param([], "ECDHE-ECDSA-AES256-GCM-SHA384", "ec", id="both-default-list"),
    # Both offered, but P-256 (our ECDSA certificate's curve) is not in the client's groups.
    pytest.param(["-groups", "X25519:P-384"], "ECDHE-RSA-AES256-GCM-SHA384", "rsa", id="both-without-p256"),
    # Both offered, but the client takes no ECDSA signature.
    pytest.param(["-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"], "ECDHE-RSA-AES256-GCM-SHA384", "rsa",
                 id="both-without-ecdsa-sigalgs"),
]


@pytest.mark.parametrize("args, suite_name, kind", CERTIFICATE_CHOICES)
def test_dual_certificate_server_choice(args, suite_name, kind, pki, ferro_server, s_client, tlsutil):
    server = ferro_server(pki.dual_server_config(), tlsutil.reverse_and_close_first)
    run = s_client(server.port, *args, "-servername", "localhost", "-verify_return_error", "-ign_eof",
                   input=b"which certificate?\n")
    (served,) = server.join()
    served.check()
    assert s_client_closed_cleanly(run), run.output
    assert s_client_field(run.stdout, r"Cipher is (\S+)") == suite_name
    if BY_NAME[suite_name].kx == "ECDHE":
        assert_s_client_saw_key(run.stdout, kind)
    else:
        assert "Server public key is 2048 bit" in run.stdout and "Peer signature type" not in run.stdout
    assert served.conn.suite == BY_NAME[suite_name]
    assert served.conn.local_credential.key_type == kind
    assert served.conn.local_credential is (pki.server_ec if kind == "ec" else pki.server).credential


@pytest.mark.parametrize("suites, kind", [
    ([s for s in ECDHE_SUITES if s.auth == "ECDSA"], "ec"),
    ([s for s in ECDHE_SUITES if s.auth == "RSA"], "rsa"),
    (RSA_KX, "rsa"),
], ids=["ecdsa-suites", "ecdhe-rsa-suites", "rsa-kx-suites"])
def test_dual_certificate_server_choice_with_ferrotls_client(suites, kind, pki, ferro_server, tlsutil):
    server = ferro_server(pki.dual_server_config(), tlsutil.reverse_and_close_first)
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(cipher_suites=suites))
    with sock:
        client_roundtrip(tlsutil, engine, b"which certificate?\n")
    (served,) = server.join()
    served.check()
    assert engine.conn.suite == suites[0] == served.conn.suite
    assert served.conn.local_credential.key_type == kind
    assert engine.conn.peer_chain[0] == (pki.server_ec if kind == "ec" else pki.server).leaf_der


# --------------------------------------------------------------------------------------------
# The default negotiation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dual, suite_name", [(False, "ECDHE-RSA-AES256-GCM-SHA384"),
                                              (True, "ECDHE-ECDSA-AES256-GCM-SHA384")],
                         ids=["rsa-certificate", "both-certificates"])
def test_default_negotiation_between_ferrotls_peers(dual, suite_name, pki, ferro_server, tlsutil):
    config = pki.dual_server_config() if dual else pki.server_config()
    server = ferro_server(config, tlsutil.reverse_and_close_first)
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config())
    with sock:
        message = b"defaults\n"
        assert client_roundtrip(tlsutil, engine, message) == tlsutil.reverse_line(message)
    (served,) = server.join()
    served.check()
    for conn in (engine.conn, served.conn):
        assert conn.suite == BY_NAME[suite_name]
        assert ske_group(conn.transcript) == "x25519"
        assert conn.extended_master_secret and not conn.encrypt_then_mac


def _stdlib_default_server(listener, ctx: ssl.SSLContext, timeout: float) -> dict:
    raw, _ = listener.accept()
    with raw:
        raw.settimeout(timeout)
        tls = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        line = tls.recv(4096)
        tls.sendall(line.rstrip(b"\n")[::-1] + b"\n")
        after = tls.recv(4096)
        cipher = tls.cipher()
        tls.unwrap()
        return {"line": line, "after": after, "cipher": cipher}


@pytest.mark.parametrize("which, suite_name", [("server", "ECDHE-RSA-AES256-GCM-SHA384"),
                                               ("server_ec", "ECDHE-ECDSA-AES256-GCM-SHA384")],
                         ids=["rsa-certificate", "ecdsa-certificate"])
def test_client_vs_stdlib_server_default_ciphers(which, suite_name, pki, tlsutil, listener, background):
    """The stdlib server's default cipher list (ECDHE only in TLS 1.2) and our default client."""
    identity = getattr(pki, which)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    peer = background(_stdlib_default_server, listener, ctx, tlsutil.IO_TIMEOUT)
    sock, engine = tlsutil.ferro_client(listener.getsockname()[1], pki.client_config())
    with sock:
        message = b"stdlib defaults\n"
        assert client_roundtrip(tlsutil, engine, message) == tlsutil.reverse_line(message)
    seen = peer.result(tlsutil.IO_TIMEOUT)
    assert seen["cipher"][:2] == (suite_name, "TLSv1.2")
    assert seen["line"] == message and seen["after"] == b""
    assert engine.conn.suite == BY_NAME[suite_name]
    assert ske_group(engine.conn.transcript) == "x25519"


@pytest.mark.parametrize("dual, suite_name", [(False, "ECDHE-RSA-AES256-GCM-SHA384"),
                                              (True, "ECDHE-ECDSA-AES256-GCM-SHA384")],
                         ids=["rsa-certificate", "both-certificates"])
def test_stdlib_client_default_ciphers_vs_server(dual, suite_name, pki, ferro_server, tlsutil):
    """The drop-in case: a stdlib client with its default cipher list (which has no RSA key
    exchange) and TLS 1.2 at most gets ECDHE from our server."""
    config = pki.dual_server_config() if dual else pki.server_config()
    server = ferro_server(config, tlsutil.reverse_and_close_first)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(pki.server_ca_path)
    assert not [c for c in ctx.get_ciphers() if c["kea"] == "kx-rsa"]
    with socket.create_connection((tlsutil.HOST, server.port), timeout=tlsutil.IO_TIMEOUT) as raw:
        tls = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        tls.sendall(b"stdlib client defaults\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = tls.recv(4096)
            assert chunk, "EOF before the reply"
            reply += chunk
        after = tls.recv(4096)
        cipher = tls.cipher()
        tls.unwrap()
    (served,) = server.join()
    result = served.check()
    assert reply == b"stluafed tneilc bildts\n" and after == b""
    assert cipher[:2] == (suite_name, "TLSv1.2")
    assert result["suite"] == BY_NAME[suite_name] and result["peer_closed"]
    assert ske_group(served.conn.transcript) == "x25519"


# --------------------------------------------------------------------------------------------
# ECDSA client certificates
# --------------------------------------------------------------------------------------------

# (client identity in the PKI, its CertificateVerify scheme code, s_server's "Hash used").
EC_CLIENTS = [("client_p256", 0x0403, "SHA256"), ("client_p384", 0x0503, "SHA384")]


@pytest.mark.parametrize("suite_name", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-SHA384"])
@pytest.mark.parametrize("who, scheme, digest", EC_CLIENTS, ids=[c[0] for c in EC_CLIENTS])
def test_client_ecdsa_certificate_with_openssl_server(who, scheme, digest, suite_name, pki, openssl_server, tlsutil):
    identity = getattr(pki, who)
    suite = BY_NAME[suite_name]
    server = openssl_server("-Verify", "1", "-CAfile", pki.client_ca_path, "-cipher", suite_name, "-state",
                            identity=pki.server_for(suite))
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(credentials=[identity.credential]))
    with sock:
        message = b"an ECDSA client certificate\n"
        assert client_roundtrip(tlsutil, engine, message) == tlsutil.reverse_line(message)
    assert engine.conn.suite == suite
    assert engine.conn.local_credential is identity.credential
    assert certificate_verify_scheme(engine.conn.transcript) == scheme
    out = server.finish()
    assert server.returncode == 0, out
    assert s_client_field(out, r"^Peer certificate: (.*)$").strip() == identity.subject
    assert f"Hash used: {digest}" in out and "Signature type: ECDSA" in out, out
    assert "Verification: OK" in out


@pytest.mark.parametrize("suite_name", ["ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-GCM-SHA256"])
@pytest.mark.parametrize("who, scheme, digest", EC_CLIENTS, ids=[c[0] for c in EC_CLIENTS])
def test_server_verifies_ecdsa_client_certificate(who, scheme, digest, suite_name, pki, ferro_server, s_client,
                                                  tlsutil):
    identity = getattr(pki, who)
    config = pki.dual_server_config(verify_peer=True, require_peer_certificate=True, trust_store=pki.client_trust_store)
    server = ferro_server(config, tlsutil.reverse_and_close_first)
    message = b"s_client with an ECDSA certificate\n"
    run = s_client(server.port, "-cipher", suite_name, "-cert", identity.cert_path, "-key", identity.key_path,
                   "-ign_eof", input=message)
    (served,) = server.join()
    result = served.check()
    assert s_client_closed_cleanly(run), run.output
    assert s_client_field(run.stdout, r"Cipher is (\S+)") == suite_name
    assert result["line"] == message and result["peer_closed"]
    assert served.conn.peer_chain[0] == identity.leaf_der
    assert served.conn.verified_chain[-1].subject == pki.client_ca_cert.subject
    # OpenSSL signs with the first ECDSA scheme we list, ecdsa_secp256r1_sha256, whatever its
    # curve: in TLS 1.2 the code point names only the hash (RFC 5246 7.4.1.4.1).
    assert certificate_verify_scheme(served.conn.transcript) == 0x0403


# --------------------------------------------------------------------------------------------
# A P-384 ECDSA server certificate
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_p384(pki, tmp_path_factory):
    """A P-384 ECDSA server certificate for localhost, issued by the server CA: (cert path, key
    path, Credential)."""
    import ipaddress

    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost P-384")])
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    made = issue_ec_leaf(pki.server_ca, ec.SECP384R1(), subject, names, ExtendedKeyUsageOID.SERVER_AUTH,
                         str(tmp_path_factory.mktemp("p384")), "server-p384")
    return made.cert_path, made.key_path, made.credential


def ske_scheme(transcript: bytes) -> int:
    (body,) = [b for t, b in handshake_messages(transcript) if t == SERVER_KEY_EXCHANGE]
    return int.from_bytes(body[4 + body[3] : 6 + body[3]], "big")


@pytest.mark.parametrize("sigalgs, scheme", [([], 0x0403), (["-sigalgs", "ECDSA+SHA384"], 0x0503)],
                         ids=["openssl-default-sigalg", "openssl-signs-sha384"])
def test_client_vs_openssl_server_with_p384_certificate(sigalgs, scheme, pki, server_p384, openssl_server, tlsutil):
    """In TLS 1.2, ecdsa_secp256r1_sha256 (0x0403) is "ECDSA with SHA-256" on any curve (RFC 5246
    7.4.1.4.1; RFC 8446 4.2.3: "the old semantics did not constrain the signing curve"), and it
    is what OpenSSL signs its ServerKeyExchange with when the client lists it first, as we do."""
    import types

    cert_path, key_path, _ = server_p384
    identity = types.SimpleNamespace(cert_path=cert_path, key_path=key_path)
    server = openssl_server("-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384", *sigalgs, "-state", identity=identity)
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config())
    with sock:
        message = b"P-384 server\n"
        reply = client_roundtrip(tlsutil, engine, message)
    assert reply == tlsutil.reverse_line(message)
    assert engine.conn.suite == BY_NAME["ECDHE-ECDSA-AES256-GCM-SHA384"]
    assert ske_scheme(engine.conn.transcript) == scheme
    server.finish()


def test_openssl_client_vs_server_with_p384_certificate(pki, server_p384, ferro_server, s_client, tlsutil):
    *_, credential = server_p384
    server = ferro_server(pki.server_config(credentials=[credential]), tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-servername", "localhost", "-verify_return_error", "-ign_eof", input=b"P-384\n")
    (served,) = server.join()
    served.check()
    assert s_client_closed_cleanly(run), run.output
    assert s_client_field(run.stdout, r"Cipher is (\S+)") == "ECDHE-ECDSA-AES256-GCM-SHA384"
    assert "Server public key is 384 bit" in run.stdout and "Peer signature type: ECDSA" in run.stdout
    assert ske_scheme(served.conn.transcript) == 0x0503  # what a P-384 credential signs with


def test_openssl_client_asking_sha256_of_a_p384_server(pki, server_p384, ferro_server, s_client, tlsutil):
    """The mirror of the test above: an OpenSSL client that offers only ECDSA+SHA256 gets a
    ServerKeyExchange signed by our P-384 key with SHA-256 (0x0403), and verifies it."""
    *_, credential = server_p384
    server = ferro_server(pki.server_config(credentials=[credential]), tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-servername", "localhost", "-verify_return_error", "-ign_eof",
                   "-sigalgs", "ECDSA+SHA256", input=b"P-384 SHA-256\n")
    (served,) = server.join()
    served.check()
    assert s_client_closed_cleanly(run), run.output
    assert "Server public key is 384 bit" in run.stdout and "Peer signing digest: SHA256" in run.stdout
    assert ske_scheme(served.conn.transcript) == 0x0403


# --------------------------------------------------------------------------------------------
# Resumption with ECDHE suites
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tickets", "session-ids"])
@pytest.mark.parametrize("suite_name", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"])
def test_openssl_client_reconnect_resumes(suite_name, mode, pki, ferro_server, s_client, tlsutil):
    server = ferro_server(pki.dual_server_config(), tlsutil.serve_until_closed, connections=6)
    run = s_client(server.port, "-reconnect", "-cipher", suite_name, *(["-no_ticket"] if mode == "session-ids" else []))
    served = server.join()
    for s in served:
        s.check()
    assert re.findall(r"^(New|Reused), TLSv1\.2", run.stdout, re.M) == ["New"] + ["Reused"] * 5, run.output
    assert [s.conn.resumed for s in served] == [False] + [True] * 5
    assert all(s.conn.suite == BY_NAME[suite_name] for s in served)
    # Only the full handshake had a key exchange.
    assert [ske_group(s.conn.transcript) for s in served] == ["x25519"] + [None] * 5
    assert ("TLS session ticket:" in run.stdout) == (mode == "tickets")


@pytest.mark.parametrize("mode", ["tickets", "session-ids"])
@pytest.mark.parametrize("suite_name", ["ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"])
def test_client_resumes_against_openssl_server(suite_name, mode, pki, openssl_server, tlsutil):
    suite = BY_NAME[suite_name]
    server = openssl_server("-state", "-cipher", suite_name, *(["-no_ticket"] if mode == "session-ids" else []),
                            identity=pki.server_for(suite), naccept=2)
    config = pki.client_config()
    sock, engine = tlsutil.ferro_client(server.port, config)
    with sock:
        client_roundtrip(tlsutil, engine, b"first\n")
    first = engine.conn
    assert not first.resumed and first.session is not None
    assert bool(first.session.ticket) == (mode == "tickets")
    sock, engine = tlsutil.ferro_client(server.port, config, session=first.session)
    with sock:
        assert client_roundtrip(tlsutil, engine, b"resumed\n") == b"demuser\n"
    assert engine.conn.resumed
    assert engine.conn.suite == first.suite == suite
    assert engine.conn.master_secret == first.master_secret
    assert ske_group(engine.conn.transcript) is None
    out = server.finish()
    assert out.count("SSL_accept:SSLv3/TLS write key exchange") == 1, out
    assert re.search(r"^\s*1 session cache hits", out, re.M), out


# --------------------------------------------------------------------------------------------
# Tampered key exchange messages, in memory
# --------------------------------------------------------------------------------------------


class Pair:
    """A client and a server Connection; the server's first flight held for tampering."""

    def __init__(self, client_config, server_config):
        self.client = Connection(client_config, True, server_hostname="localhost")
        self.server = Connection(server_config, False)
        self.client.start_handshake()
        self.server.receive_data(self.client.data_to_send())
        self.server_flight = self.server.data_to_send()

    def server_messages(self):
        """The server's first flight as handshake messages (it is in plaintext records)."""
        payload = b"".join(p for t, p in split_records(self.server_flight) if t == HANDSHAKE)
        return handshake_messages(payload)


def expect_alert_sent(conn: Connection, data: bytes, description: int) -> None:
    """`conn` fails on `data` with `description` and writes exactly that fatal alert."""
    with pytest.raises(TLSAlert) as info:
        conn.receive_data(data)
    assert info.value.description == description, str(info.value)
    assert split_records(conn.data_to_send()) == [(ALERT, bytes([2, description]))]
    assert conn.failed is info.value and not conn.handshake_complete


def flight_with(messages) -> bytes:
    return record(HANDSHAKE, b"".join(handshake(t, b) for t, b in messages))


def replace_ske(messages, new_body: bytes):
    assert SERVER_KEY_EXCHANGE in [t for t, _ in messages]
    return [(t, new_body if t == SERVER_KEY_EXCHANGE else b) for t, b in messages]


def signed_ske(pair: Pair, identity, group_code: int, public: bytes) -> bytes:
    """A ServerKeyExchange body (RFC 8422 5.4) with a valid signature by the server's key, made
    here with `cryptography`: rsa_pss_rsae_sha256 or ecdsa_secp256r1_sha256."""
    params = struct.pack("!BH", 3, group_code) + vec(public, 1)
    signed = pair.server.client_random + pair.server.server_random + params
    with open(identity.key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        scheme, signature = 0x0403, key.sign(signed, ec.ECDSA(hashes.SHA256()))
    else:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        scheme, signature = 0x0804, key.sign(signed, pss, hashes.SHA256())
    return params + struct.pack("!H", scheme) + vec(signature, 2)


def p256_public() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def p384_public() -> bytes:
    return ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def off_curve(point: bytes) -> bytes:
    """An uncompressed point with y changed by one: not on the curve."""
    n = (len(point) - 1) // 2
    y = (int.from_bytes(point[1 + n :], "big") ^ 1).to_bytes(n, "big")
    return point[: 1 + n] + y


SERVERS = pytest.mark.parametrize("server_key", ["rsa", "ecdsa"])


def _pair_for(pki, server_key: str, groups=None):
    identity = pki.server_ec if server_key == "ecdsa" else pki.server
    client_config = pki.client_config(groups=groups) if groups else pki.client_config()
    return Pair(client_config, pki.server_config(credentials=[identity.credential])), identity


@SERVERS
@pytest.mark.parametrize("where", ["signature-last-byte", "signature-first-byte", "public-key-byte", "group"])
def test_server_key_exchange_tampered_after_signing(where, server_key, pki):
    """Anything changed in a signed ServerKeyExchange fails its signature: decrypt_error
    (RFC 5246 7.2.2). ("group": x25519 renamed secp256r1 on a client offering both.)"""
    pair, _ = _pair_for(pki, server_key)
    messages = pair.server_messages()
    (body,) = [b for t, b in messages if t == SERVER_KEY_EXCHANGE]
    assert body[:3] == struct.pack("!BH", 3, GROUP_CODES["x25519"])
    body = bytearray(body)
    if where == "signature-last-byte":
        body[-1] ^= 0x01
    elif where == "signature-first-byte":
        body[4 + body[3] + 4] ^= 0x80  # after params (4 + key), scheme (2), length (2)
    elif where == "public-key-byte":
        body[4 + 7] ^= 0x01
    else:
        body[1:3] = struct.pack("!H", GROUP_CODES["secp256r1"])
    expect_alert_sent(pair.client, flight_with(replace_ske(messages, bytes(body))), DECRYPT_ERROR)


@SERVERS
def test_server_key_exchange_with_an_empty_signature(server_key, pki):
    """digitally-signed allows an empty signature (RFC 5246 4.7: <0..2^16-1>): it parses, and
    fails to verify: decrypt_error, not decode_error."""
    pair, _ = _pair_for(pki, server_key)
    messages = pair.server_messages()
    (body,) = [b for t, b in messages if t == SERVER_KEY_EXCHANGE]
    params_end = 4 + body[3]
    empty = body[: params_end + 2] + b"\x00\x00"  # params, scheme, a zero-length signature
    expect_alert_sent(pair.client, flight_with(replace_ske(messages, empty)), DECRYPT_ERROR)


# (server key, the one group the client offers, the group the forged ServerKeyExchange names).
GROUP_NOT_OFFERED = [
    (server_key, offered, named)
    for server_key, offered in (("rsa", "x25519"), ("ecdsa", "secp256r1"))  # P-256: the ECDSA certificate's curve
    for named in ("x25519", "secp256r1", "secp384r1", "secp521r1", "ffdhe2048")
    if named != offered
]


@pytest.mark.parametrize("server_key, offered, named", GROUP_NOT_OFFERED,
                         ids=[f"{k}-offers-{o}-gets-{n}" for k, o, n in GROUP_NOT_OFFERED])
def test_server_key_exchange_with_group_not_offered(server_key, offered, named, pki):
    """A correctly signed ServerKeyExchange naming a group the client did not offer (a known
    one, or one we do not implement): illegal_parameter."""
    pair, identity = _pair_for(pki, server_key, groups=[offered])
    code = {**GROUP_CODES, "secp521r1": 25, "ffdhe2048": 0x0100}[named]
    public = {"x25519": x25519.X25519PrivateKey.generate().public_key().public_bytes_raw(),
              "secp384r1": p384_public()}.get(named, p256_public())
    forged = signed_ske(pair, identity, code, public)
    expect_alert_sent(pair.client, flight_with(replace_ske(pair.server_messages(), forged)), ILLEGAL_PARAMETER)


@pytest.mark.parametrize("group, public", [
    ("x25519", bytes(32)),
    ("x25519", b"\x01" + bytes(31)),  # u = 1: a low-order point, all-zero shared secret
    ("secp256r1", "off-curve"),
    ("secp256r1", "compressed"),
    ("secp384r1", "off-curve"),
], ids=["x25519-all-zero", "x25519-low-order", "secp256r1-off-curve", "secp256r1-compressed", "secp384r1-off-curve"])
def test_server_key_exchange_with_invalid_point(group, public, pki):
    """A correctly signed ServerKeyExchange whose public key is not a valid point: the client
    sends illegal_parameter."""
    pair, identity = _pair_for(pki, "rsa", groups=[group])
    if public == "off-curve":
        public = off_curve(p256_public() if group == "secp256r1" else p384_public())
    elif public == "compressed":
        point = p256_public()
        public = bytes([2 + (point[-1] & 1)]) + point[1:33]
    forged = signed_ske(pair, identity, GROUP_CODES[group], public)
    expect_alert_sent(pair.client, flight_with(replace_ske(pair.server_messages(), forged)), ILLEGAL_PARAMETER)


@pytest.mark.parametrize("group, public", [
    ("x25519", bytes(32)),
    ("x25519", b"\x01" + bytes(31)),
    ("x25519", bytes(30) + b"\x09"),  # 31 bytes
    ("secp256r1", "off-curve"),
    ("secp256r1", "compressed"),
    ("secp256r1", "infinity"),
    ("secp256r1", "p384-point"),
    ("secp384r1", "off-curve"),
], ids=["x25519-all-zero", "x25519-low-order", "x25519-31-bytes", "secp256r1-off-curve", "secp256r1-compressed",
        "secp256r1-infinity", "secp256r1-given-p384-point", "secp384r1-off-curve"])
def test_client_key_exchange_with_invalid_point(group, public, pki):
    """The client's ECDHE public key is not a valid point of the group: our server sends
    illegal_parameter (RFC 8422 5.10 / RFC 7748 6.1 for the all-zero X25519 result)."""
    pair, _ = _pair_for(pki, "rsa", groups=[group])
    pair.client.receive_data(pair.server_flight)
    records = split_records(pair.client.data_to_send())
    assert [t for t, _ in records] == [HANDSHAKE, CCS, HANDSHAKE]
    ((msg_type, body),) = handshake_messages(records[0][1])
    assert msg_type == CLIENT_KEY_EXCHANGE and ske_group(pair.server.transcript) == group
    if public == "off-curve":
        public = off_curve(p256_public() if group == "secp256r1" else p384_public())
    elif public == "compressed":
        point = p256_public()
        public = bytes([2 + (point[-1] & 1)]) + point[1:33]
    elif public == "infinity":
        public = b"\x00"
    elif public == "p384-point":
        public = p384_public()
    expect_alert_sent(pair.server, record(HANDSHAKE, handshake(CLIENT_KEY_EXCHANGE, vec(public, 1))), ILLEGAL_PARAMETER)


def test_untampered_pair_completes(pki):
    """The in-memory pair the tampering tests start from completes when left alone."""
    pair, _ = _pair_for(pki, "ecdsa")
    pair.client.receive_data(pair.server_flight)
    pair.server.receive_data(pair.client.data_to_send())
    pair.client.receive_data(pair.server.data_to_send())
    assert pair.client.handshake_complete and pair.server.handshake_complete
    assert pair.client.suite == BY_NAME["ECDHE-ECDSA-AES256-GCM-SHA384"]


def test_ferrotls_client_reports_decrypt_error_over_a_socket(pki, listener, tlsutil, background):
    """A server whose ServerKeyExchange signature is broken on the wire: our client's handshake
    fails naming decrypt_error, and the alert reaches the peer."""

    def peer():
        raw, _ = listener.accept()
        with raw:
            raw.settimeout(tlsutil.IO_TIMEOUT)
            server = Connection(pki.server_config(), False)
            server.receive_data(raw.recv(65536))
            flight = bytearray(server.data_to_send())
            # One record; it ends with the ServerKeyExchange's signature and the ServerHelloDone.
            assert flight[-4:] == b"\x0e\x00\x00\x00"
            flight[-5] ^= 0x01
            raw.sendall(bytes(flight))
            return split_records(raw.recv(65536))

    future = background(peer)
    sock, engine = tlsutil.ferro_client(listener.getsockname()[1], pki.client_config())
    with sock, pytest.raises(TLSError) as info:
        engine.do_handshake()
    assert (info.value.alert, info.value.sent) == ("decrypt_error", True)
    assert future.result(tlsutil.IO_TIMEOUT) == [(ALERT, bytes([2, DECRYPT_ERROR]))]
