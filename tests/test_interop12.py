"""TLS 1.2 interop: ferrotls against `openssl s_server` / `openssl s_client` and the stdlib `ssl`
module (OpenSSL 3), both directions, every cipher suite of protocol/suites.py (an ECDHE-ECDSA
suite with the ECDSA server certificate, the others with the RSA one; ECDHE groups, curl and the
default negotiation are in test_interop_ecdhe.py).

What the peer saw is read from the peer itself:
  - `s_server -state` logs "SSL3 alert read:warning:close notify" for our close_notify (its
    "CONNECTION CLOSED" line also appears on a bare TCP EOF, so it proves nothing) and
    "SSL3 alert write:..." for what it sends;
  - `s_client` prints "closed" only for SSL_ERROR_ZERO_RETURN, i.e. the server's close_notify,
    and exits 0; its summary names the cipher, "Extended master secret: yes/no", "New"/"Reused";
  - `-tlsextdebug` lists the hello extensions the peer received;
  - a stdlib peer with suppress_ragged_eofs=False returns b"" from recv() only for close_notify
    (a TCP EOF raises SSLEOFError).
On our side, `conn.peer_closed` is set only by the peer's close_notify (engine.eof alone is
also set by a TCP EOF).
"""

from __future__ import annotations

import hashlib
import random
import re
import socket
import ssl

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ferrotls.engine import TLSError
from ferrotls.protocol import TLS12_SUITES, TLSConfig, parse_cipher_list

SUITES = TLS12_SUITES
CBC_SUITES = [s for s in TLS12_SUITES if s.is_cbc]
AEAD_SUITES = [s for s in TLS12_SUITES if not s.is_cbc]
BY_NAME = {s.openssl_name: s for s in TLS12_SUITES}
# The suite two peers with the default configuration agree on, given only an RSA certificate.
DEFAULT_RSA_SUITE = BY_NAME["ECDHE-RSA-AES256-GCM-SHA384"]
# The extended master secret hashes a different transcript for each key exchange.
EMS_KX = pytest.mark.parametrize("kx_suite", ["ECDHE-RSA-AES256-GCM-SHA384", "AES128-GCM-SHA256"], ids=["ecdhe", "rsa-kx"])


def suite_id(suite) -> str:
    return suite.openssl_name


def message_for(what: str) -> bytes:
    return f"hello from ferrotls interop ({what})\n".encode()


def client_roundtrip(tlsutil, engine, message: bytes) -> bytes:
    """Our client's side of the line exchange with a reversing peer: handshake, send a line,
    read the answer, send close_notify first, then expect the peer's close_notify."""
    engine.do_handshake()
    engine.sendall(message)
    reply = tlsutil.read_line(engine)
    engine.close()
    assert engine.recv() == b""
    assert engine.eof
    assert engine.conn.peer_closed, "the peer did not answer our close_notify with its own"
    return reply


def assert_s_server_saw_clean_close(out: str) -> None:
    assert "SSL3 alert read:warning:close notify" in out, out
    assert "SSL3 alert write:warning:close notify" in out, out


def s_client_cipher(stdout: str) -> str:
    match = re.search(r"^\s*Cipher\s*: (\S+)", stdout, re.M)
    assert match, stdout
    return match.group(1)


def s_client_closed_cleanly(run) -> bool:
    return run.returncode == 0 and re.search(r"^closed$", run.stdout, re.M) is not None


def stdlib_reverse_server(listener, ctx: ssl.SSLContext, timeout: float) -> dict:
    """A stdlib ssl server for one connection: reads a line, answers it reversed, then expects
    the client's close_notify (recv() == b"") and answers it (unwrap)."""
    raw, _ = listener.accept()
    with raw:
        raw.settimeout(timeout)
        tls = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        line = b""
        while not line.endswith(b"\n"):
            chunk = tls.recv(4096)
            if not chunk:
                break
            line += chunk
        tls.sendall(line.rstrip(b"\n")[::-1] + b"\n")
        after = tls.recv(4096)
        cipher, version = tls.cipher()[0], tls.version()
        tls.unwrap()
        return {"line": line, "after_close": after, "cipher": cipher, "version": version}


# --------------------------------------------------------------------------------------------
# Every suite, both directions, two peers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES, ids=suite_id)
def test_client_vs_openssl_server(suite, pki, openssl_server, tlsutil):
    server = openssl_server("-cipher", suite.openssl_name, "-state", identity=pki.server_for(suite))
    message = message_for(suite.openssl_name)
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config())
    with sock:
        reply = client_roundtrip(tlsutil, engine, message)
    assert reply == tlsutil.reverse_line(message)
    assert engine.conn.suite == suite
    out = server.finish()
    assert server.returncode == 0, out
    assert f"Ciphersuite: {suite.openssl_name}" in out
    assert "Protocol version: TLSv1.2" in out
    assert_s_server_saw_clean_close(out)


@pytest.mark.parametrize("suite", SUITES, ids=suite_id)
def test_client_vs_stdlib_server(suite, pki, tlsutil, listener, background):
    ctx = tlsutil.stdlib_server_context(pki.server_for(suite), suite.openssl_name)
    peer = background(stdlib_reverse_server, listener, ctx, tlsutil.IO_TIMEOUT)
    message = message_for(suite.openssl_name)
    sock, engine = tlsutil.ferro_client(listener.getsockname()[1], pki.client_config())
    with sock:
        reply = client_roundtrip(tlsutil, engine, message)
    seen = peer.result(tlsutil.IO_TIMEOUT)
    assert reply == tlsutil.reverse_line(message)
    assert seen["line"] == message
    assert seen["after_close"] == b"", "the stdlib server did not see our close_notify"
    assert (seen["cipher"], seen["version"]) == (suite.openssl_name, "TLSv1.2")
    assert engine.conn.suite == suite
    assert engine.conn.peer_chain[0] == pki.server_for(suite).leaf_der


@pytest.mark.parametrize("suite", SUITES, ids=suite_id)
def test_openssl_client_vs_server(suite, pki, ferro_server, s_client, tlsutil):
    """Our server holds both certificates and serves each suite with the one it needs."""
    server = ferro_server(pki.dual_server_config(), tlsutil.reverse_and_close_first)
    message = message_for(suite.openssl_name)
    run = s_client(server.port, "-cipher", suite.openssl_name, "-servername", "localhost",
                   "-verify_return_error", "-ign_eof", input=message)
    (served,) = server.join()
    result = served.check()
    assert s_client_closed_cleanly(run), run.output  # "closed": s_client read our close_notify
    assert s_client_cipher(run.stdout) == suite.openssl_name
    assert re.search(r"Protocol\s*: TLSv1\.2", run.stdout)
    assert "Verification: OK" in run.stdout
    assert tlsutil.reverse_line(message).decode() in run.stdout
    assert result["line"] == message
    assert result["suite"] == suite
    assert served.conn.local_credential is pki.server_for(suite).credential
    assert result["rest"] == b""
    assert result["peer_closed"], "s_client's close_notify did not reach us"


@pytest.mark.parametrize("suite", SUITES, ids=suite_id)
def test_stdlib_client_vs_server(suite, pki, ferro_server, tlsutil):
    server = ferro_server(pki.dual_server_config(), tlsutil.reverse_and_close_first)
    ctx = tlsutil.stdlib_client_context(pki.server_ca_path, suite.openssl_name)
    message = message_for(suite.openssl_name)
    with socket.create_connection((tlsutil.HOST, server.port), timeout=tlsutil.IO_TIMEOUT) as raw:
        tls = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        tls.sendall(message)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = tls.recv(4096)
            assert chunk, "EOF before the reply"
            reply += chunk
        after = tls.recv(4096)  # our close_notify (a bare TCP EOF would raise SSLEOFError)
        cipher, version = tls.cipher()[0], tls.version()
        peer_leaf = tls.getpeercert(binary_form=True)
        tls.unwrap()  # answers it
    (served,) = server.join()
    result = served.check()
    assert reply == tlsutil.reverse_line(message)
    assert after == b""
    assert (cipher, version) == (suite.openssl_name, "TLSv1.2")
    assert peer_leaf == pki.server_for(suite).leaf_der
    assert result["line"] == message and result["suite"] == suite
    assert result["peer_closed"], "the stdlib client's close_notify did not reach us"


def test_client_answers_stdlib_servers_close_notify(pki, tlsutil, listener, background):
    """The stdlib server closes first; unwrap() returns only once our close_notify arrives (a
    bare TCP close would make it raise). Our client never calls close(): the answer is automatic."""
    ctx = tlsutil.stdlib_server_context(pki.server)

    def peer():
        raw, _ = listener.accept()
        with raw:
            raw.settimeout(tlsutil.IO_TIMEOUT)
            tls = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
            tls.sendall(b"bye\n")
            tls.unwrap()
            return "unwrapped"

    future = background(peer)
    sock, engine = tlsutil.ferro_client(listener.getsockname()[1], pki.client_config())
    with sock:
        engine.do_handshake()
        assert tlsutil.read_line(engine) == b"bye\n"
        assert engine.recv() == b"" and engine.conn.peer_closed
        assert future.result(tlsutil.IO_TIMEOUT) == "unwrapped"


def test_server_answers_stdlib_clients_close_notify(pki, ferro_server, tlsutil):
    def handler(engine):
        data = tlsutil.drain(engine)  # no close() of our own
        return data, engine.conn.peer_closed

    server = ferro_server(pki.server_config(), handler)
    ctx = tlsutil.stdlib_client_context(pki.server_ca_path)
    with socket.create_connection((tlsutil.HOST, server.port), timeout=tlsutil.IO_TIMEOUT) as raw:
        tls = ctx.wrap_socket(raw, server_side=False, server_hostname="localhost", suppress_ragged_eofs=False)
        tls.sendall(b"last words\n")
        tls.unwrap()  # sends close_notify, then waits for ours
    (served,) = server.join()
    assert served.check() == (b"last words\n", True)


# --------------------------------------------------------------------------------------------
# Bulk: 64 MiB each way with a stdlib peer, checked with sha256 on both sides
# --------------------------------------------------------------------------------------------

BULK_SIZE = 64 << 20
BULK_SUITES = ["AES128-GCM-SHA256", "AES256-SHA"]


@pytest.fixture(scope="module")
def bulk():
    data = random.Random(20240612).randbytes(BULK_SIZE)
    return data, hashlib.sha256(data).hexdigest()


def _recv_exactly_hashed(recv, size: int) -> str:
    digest = hashlib.sha256()
    got = 0
    while got < size:
        chunk = recv()
        assert chunk, f"EOF after {got} of {size} bytes"
        digest.update(chunk)
        got += len(chunk)
    assert got == size, f"{got - size} bytes too many"
    return digest.hexdigest()


@pytest.mark.parametrize("suite_name", BULK_SUITES)
def test_bulk_client_vs_stdlib_server(suite_name, bulk, pki, tlsutil, listener, background):
    data, digest = bulk
    ctx = tlsutil.stdlib_server_context(pki.server, suite_name)

    def peer():
        raw, _ = listener.accept()
        with raw:
            raw.settimeout(30)
            tls = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
            received = _recv_exactly_hashed(lambda: tls.recv(1 << 20), BULK_SIZE)
            tls.sendall(data)
            after = tls.recv(1024)
            tls.unwrap()
            return received, after

    future = background(peer)
    sock, engine = tlsutil.ferro_client(listener.getsockname()[1], pki.client_config(), timeout=30)
    with sock:
        engine.do_handshake()
        assert engine.conn.suite == BY_NAME[suite_name]
        assert engine.conn.encrypt_then_mac == BY_NAME[suite_name].is_cbc
        engine.sendall(data)
        received = _recv_exactly_hashed(engine.recv, BULK_SIZE)
        engine.close()
        assert engine.recv() == b"" and engine.conn.peer_closed
    peer_received, peer_after = future.result(60)
    assert peer_received == digest, "the stdlib server received corrupted data"
    assert received == digest, "we received corrupted data"
    assert peer_after == b""


@pytest.mark.parametrize("suite_name", BULK_SUITES)
def test_bulk_stdlib_client_vs_server(suite_name, bulk, pki, tlsutil, ferro_server, background):
    data, digest = bulk

    def handler(engine):
        received = _recv_exactly_hashed(engine.recv, BULK_SIZE)
        engine.sendall(data)
        engine.close()
        rest = tlsutil.drain(engine)
        return received, rest, engine.conn.peer_closed, engine.conn.suite

    server = ferro_server(pki.server_config(), handler, timeout=30)
    ctx = tlsutil.stdlib_client_context(pki.server_ca_path, suite_name)

    def peer():
        with socket.create_connection((tlsutil.HOST, server.port), timeout=30) as raw:
            tls = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
            tls.sendall(data)
            received = _recv_exactly_hashed(lambda: tls.recv(1 << 20), BULK_SIZE)
            after = tls.recv(1024)
            tls.unwrap()
            return received, after

    peer_received, peer_after = background(peer).result(60)
    (served,) = server.join(60)
    received, rest, peer_closed, suite = served.check()
    assert suite == BY_NAME[suite_name]
    assert received == digest, "we received corrupted data"
    assert peer_received == digest, "the stdlib client received corrupted data"
    assert peer_after == b"" and rest == b"" and peer_closed


# --------------------------------------------------------------------------------------------
# Extended master secret (RFC 7627) and encrypt-then-MAC (RFC 7366)
# --------------------------------------------------------------------------------------------

EMS_CLIENT_EXT = 'TLS client extension "extended master secret" (id=23)'
EMS_SERVER_EXT = 'TLS server extension "extended master secret" (id=23)'
ETM_CLIENT_EXT = 'TLS client extension "encrypt-then-mac" (id=22)'
ETM_SERVER_EXT = 'TLS server extension "encrypt-then-mac" (id=22)'


@pytest.mark.parametrize("theirs", [True, False], ids=["openssl-ems", "openssl-no-ems"])
@pytest.mark.parametrize("ours", [True, False], ids=["ems", "no-ems"])
@EMS_KX
def test_client_extended_master_secret(kx_suite, ours, theirs, pki, openssl_server, tlsutil, no_ems_openssl_env):
    server = openssl_server("-tlsextdebug", "-state", "-cipher", kx_suite, env=None if theirs else no_ems_openssl_env)
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(extended_master_secret=ours))
    with sock:
        message = message_for("ems")
        assert client_roundtrip(tlsutil, engine, message) == tlsutil.reverse_line(message)
    assert engine.conn.suite == BY_NAME[kx_suite]
    assert engine.conn.extended_master_secret == (ours and theirs)
    # Resumption needs EMS (RFC 7627 5.3): without it there is no session to keep.
    assert (engine.conn.session is not None) == (ours and theirs)
    out = server.finish()
    assert (EMS_CLIENT_EXT in out) == ours, out
    assert_s_server_saw_clean_close(out)


@pytest.mark.parametrize("theirs", [True, False], ids=["openssl-ems", "openssl-no-ems"])
@pytest.mark.parametrize("ours", [True, False], ids=["ems", "no-ems"])
@EMS_KX
def test_server_extended_master_secret(kx_suite, ours, theirs, pki, ferro_server, s_client, tlsutil, no_ems_openssl_env):
    server = ferro_server(pki.server_config(extended_master_secret=ours), tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-tlsextdebug", "-ign_eof", "-cipher", kx_suite, input=message_for("ems"),
                   env=None if theirs else no_ems_openssl_env)
    (served,) = server.join()
    result = served.check()
    assert result["suite"] == BY_NAME[kx_suite]
    both = ours and theirs
    assert s_client_closed_cleanly(run), run.output
    assert f"Extended master secret: {'yes' if both else 'no'}" in run.stdout
    assert (EMS_SERVER_EXT in run.stdout) == both
    assert served.conn.extended_master_secret == both
    assert (served.conn.session is not None) == both
    assert result["peer_closed"]


def test_client_requires_extended_master_secret(pki, openssl_server, tlsutil, no_ems_openssl_env):
    server = openssl_server("-state", env=no_ems_openssl_env)
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(require_extended_master_secret=True))
    with sock, pytest.raises(TLSError) as info:
        engine.do_handshake()
    assert (info.value.alert, info.value.sent) == ("handshake_failure", True)
    out = server.finish()
    assert "SSL3 alert read:fatal:handshake failure" in out, out


def test_server_requires_extended_master_secret(pki, ferro_server, s_client, tlsutil, no_ems_openssl_env):
    server = ferro_server(pki.server_config(require_extended_master_secret=True), tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-ign_eof", input=message_for("ems"), env=no_ems_openssl_env)
    (served,) = server.join()
    assert run.returncode != 0
    assert "alert handshake failure" in run.output and "SSL alert number 40" in run.output, run.output
    assert isinstance(served.error, TLSError)
    assert (served.error.alert, served.error.sent) == ("handshake_failure", True)


@pytest.mark.parametrize("theirs", [True, False], ids=["openssl-etm", "openssl-no_etm"])
@pytest.mark.parametrize("ours", [True, False], ids=["etm", "no-etm"])
@pytest.mark.parametrize("suite", CBC_SUITES, ids=suite_id)
def test_client_encrypt_then_mac(suite, ours, theirs, pki, openssl_server, tlsutil):
    args = ["-cipher", suite.openssl_name, "-tlsextdebug", "-state"] + ([] if theirs else ["-no_etm"])
    server = openssl_server(*args, identity=pki.server_for(suite))
    config = pki.client_config(encrypt_then_mac=ours, cipher_suites=[suite])
    sock, engine = tlsutil.ferro_client(server.port, config)
    with sock:
        message = message_for(f"etm {suite.openssl_name}")
        assert client_roundtrip(tlsutil, engine, message) == tlsutil.reverse_line(message)
    assert engine.conn.suite == suite
    assert engine.conn.encrypt_then_mac == (ours and theirs)
    out = server.finish()
    assert (ETM_CLIENT_EXT in out) == ours, out
    assert_s_server_saw_clean_close(out)


@pytest.mark.parametrize("theirs", [True, False], ids=["openssl-etm", "openssl-no_etm"])
@pytest.mark.parametrize("ours", [True, False], ids=["etm", "no-etm"])
@pytest.mark.parametrize("suite", CBC_SUITES, ids=suite_id)
def test_server_encrypt_then_mac(suite, ours, theirs, pki, ferro_server, s_client, tlsutil):
    server = ferro_server(pki.dual_server_config(encrypt_then_mac=ours), tlsutil.reverse_and_close_first)
    args = ["-cipher", suite.openssl_name, "-tlsextdebug", "-ign_eof"] + ([] if theirs else ["-no_etm"])
    message = message_for(f"etm {suite.openssl_name}")
    run = s_client(server.port, *args, input=message)
    (served,) = server.join()
    result = served.check()
    assert s_client_closed_cleanly(run), run.output
    assert s_client_cipher(run.stdout) == suite.openssl_name
    assert served.conn.suite == suite
    assert (ETM_SERVER_EXT in run.stdout) == (ours and theirs)
    assert served.conn.encrypt_then_mac == (ours and theirs)
    assert result["line"] == message and result["peer_closed"]


@pytest.mark.parametrize("suite", AEAD_SUITES, ids=suite_id)
def test_no_encrypt_then_mac_with_aead(suite, pki, openssl_server, ferro_server, s_client, tlsutil):
    """RFC 7366 section 3: encrypt-then-MAC is for CBC suites only; an AEAD suite never uses it
    even when both sides offer it."""
    server = openssl_server("-cipher", suite.openssl_name, "-tlsextdebug", "-state", identity=pki.server_for(suite))
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config())
    with sock:
        client_roundtrip(tlsutil, engine, message_for("aead"))
    assert engine.conn.suite == suite and not engine.conn.encrypt_then_mac
    server.finish()

    ours = ferro_server(pki.dual_server_config(), tlsutil.reverse_and_close_first)
    run = s_client(ours.port, "-cipher", suite.openssl_name, "-tlsextdebug", "-ign_eof", input=message_for("aead"))
    (served,) = ours.join()
    served.check()
    assert s_client_closed_cleanly(run), run.output
    assert ETM_SERVER_EXT not in run.stdout
    assert served.conn.suite == suite and not served.conn.encrypt_then_mac


# --------------------------------------------------------------------------------------------
# Client authentication
# --------------------------------------------------------------------------------------------


def _ca_names_section(stdout: str) -> list:
    """The lines s_client prints under "Acceptable client certificate CA names"."""
    match = re.search(r"^Acceptable client certificate CA names\n(.*?)^(?:Client Certificate Types|Requested Signature)",
                      stdout, re.M | re.S)
    assert match, stdout
    return [line for line in match.group(1).splitlines() if line.strip()]


def _client_auth_config(pki, **kwargs) -> TLSConfig:
    kwargs.setdefault("verify_peer", True)
    kwargs.setdefault("require_peer_certificate", True)
    kwargs.setdefault("trust_store", pki.client_trust_store)
    return pki.server_config(**kwargs)


def test_server_client_auth_with_openssl_client(pki, ferro_server, s_client, tlsutil):
    server = ferro_server(_client_auth_config(pki), tlsutil.reverse_and_close_first)
    message = message_for("client auth")
    run = s_client(server.port, "-cert", pki.client.cert_path, "-key", pki.client.key_path, "-ign_eof", input=message)
    (served,) = server.join()
    result = served.check()
    assert s_client_closed_cleanly(run), run.output
    # The CertificateRequest named exactly the CAs of our trust store.
    assert _ca_names_section(run.stdout) == [pki.client_ca_subject]
    assert result["line"] == message and result["peer_closed"]
    assert served.conn.peer_chain[0] == pki.client.leaf_der
    assert served.conn.verified_chain[-1].subject == pki.client_ca_cert.subject


def test_server_client_auth_optional(pki, ferro_server, s_client, tlsutil):
    server = ferro_server(_client_auth_config(pki, require_peer_certificate=False), tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-ign_eof", input=message_for("optional client auth"))
    (served,) = server.join()
    served.check()
    assert s_client_closed_cleanly(run), run.output
    assert _ca_names_section(run.stdout) == [pki.client_ca_subject]
    assert served.conn.peer_chain == []


def test_server_client_auth_missing_certificate(pki, ferro_server, s_client, tlsutil):
    server = ferro_server(_client_auth_config(pki), tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-ign_eof", input=message_for("no client cert"))
    (served,) = server.join()
    assert run.returncode != 0
    assert "alert handshake failure" in run.output and "SSL alert number 40" in run.output, run.output
    assert isinstance(served.error, TLSError)
    assert (served.error.alert, served.error.sent) == ("handshake_failure", True)


def test_server_client_auth_untrusted_certificate(pki, ferro_server, s_client, tlsutil):
    server = ferro_server(_client_auth_config(pki), tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-cert", pki.other_client.cert_path, "-key", pki.other_client.key_path, "-ign_eof",
                   input=message_for("untrusted client cert"))
    (served,) = server.join()
    assert run.returncode != 0
    assert "alert unknown ca" in run.output and "SSL alert number 48" in run.output, run.output
    assert isinstance(served.error, TLSError)
    assert (served.error.alert, served.error.sent) == ("unknown_ca", True)


def _peer_certificate_line(out: str) -> str:
    match = re.search(r"^Peer certificate: (.*)$", out, re.M)
    assert match, out
    return match.group(1).strip()


@pytest.mark.parametrize("order", ["other-first", "named-first"])
def test_client_picks_credential_of_named_ca(order, pki, openssl_server, tlsutil):
    credentials = [pki.other_client.credential, pki.client.credential]
    if order == "named-first":
        credentials.reverse()
    server = openssl_server("-Verify", "1", "-CAfile", pki.client_ca_path, "-state")
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(credentials=credentials))
    with sock:
        message = message_for("client cert")
        assert client_roundtrip(tlsutil, engine, message) == tlsutil.reverse_line(message)
    assert engine.conn.local_credential is pki.client.credential
    out = server.finish()
    assert server.returncode == 0, out
    assert _peer_certificate_line(out) == pki.client.subject
    assert "Verification: OK" in out
    assert_s_server_saw_clean_close(out)


def test_client_choose_certificate_callback(pki, openssl_server, tlsutil):
    calls = []

    def choose(candidates, ca_names):
        calls.append((list(candidates), list(ca_names)))
        return candidates[1]

    credentials = [pki.client.credential, pki.other_client.credential, pki.client2.credential]
    server = openssl_server("-Verify", "1", "-CAfile", pki.client_ca_path, "-state")
    config = pki.client_config(credentials=credentials, choose_certificate=choose)
    sock, engine = tlsutil.ferro_client(server.port, config)
    with sock:
        client_roundtrip(tlsutil, engine, message_for("choose_certificate"))
    assert len(calls) == 1
    candidates, ca_names = calls[0]
    # Only the credentials the server's CA list fits, in our order.
    assert candidates == [pki.client.credential, pki.client2.credential]
    assert ca_names == [pki.client_ca_cert.subject.public_bytes()]
    assert engine.conn.local_credential is pki.client2.credential
    out = server.finish()
    assert _peer_certificate_line(out) == pki.client2.subject


# (scheme, identity in the PKI, what s_server prints as "Hash used" and "Signature type").
CERTIFICATE_VERIFY_SCHEMES = [
    ("rsa_pkcs1_sha256", "client", "SHA256", "RSA"),
    ("rsa_pkcs1_sha384", "client", "SHA384", "RSA"),
    ("rsa_pkcs1_sha512", "client", "SHA512", "RSA"),
    ("rsa_pss_rsae_sha256", "client", "SHA256", "RSA-PSS"),
    ("rsa_pss_rsae_sha384", "client", "SHA384", "RSA-PSS"),
    ("rsa_pss_rsae_sha512", "client", "SHA512", "RSA-PSS"),
    ("ecdsa_secp256r1_sha256", "client_p256", "SHA256", "ECDSA"),
    ("ecdsa_secp384r1_sha384", "client_p384", "SHA384", "ECDSA"),
]
SCHEME_CODES = {
    "rsa_pkcs1_sha256": 0x0401, "rsa_pkcs1_sha384": 0x0501, "rsa_pkcs1_sha512": 0x0601,
    "rsa_pss_rsae_sha256": 0x0804, "rsa_pss_rsae_sha384": 0x0805, "rsa_pss_rsae_sha512": 0x0806,
    "ecdsa_secp256r1_sha256": 0x0403, "ecdsa_secp384r1_sha384": 0x0503,
}


def certificate_verify_scheme(transcript: bytes) -> int:
    """The SignatureScheme of the CertificateVerify in a handshake transcript."""
    pos = 0
    while pos < len(transcript):
        msg_type, length = transcript[pos], int.from_bytes(transcript[pos + 1 : pos + 4], "big")
        if msg_type == 15:
            return int.from_bytes(transcript[pos + 4 : pos + 6], "big")
        pos += 4 + length
    raise AssertionError("no CertificateVerify in the transcript")


@pytest.mark.parametrize("scheme, who, digest, kind", CERTIFICATE_VERIFY_SCHEMES, ids=[c[0] for c in CERTIFICATE_VERIFY_SCHEMES])
def test_client_certificate_verify_schemes(scheme, who, digest, kind, pki, openssl_server, tlsutil):
    """Our CertificateVerify in the one scheme s_server asks for (-client_sigalgs)."""
    identity = getattr(pki, who)
    server = openssl_server("-Verify", "1", "-CAfile", pki.client_ca_path, "-client_sigalgs", scheme, "-state")
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(credentials=[identity.credential]))
    with sock:
        client_roundtrip(tlsutil, engine, message_for(scheme))
    assert certificate_verify_scheme(bytes(engine.conn.transcript)) == SCHEME_CODES[scheme]
    out = server.finish()
    assert _peer_certificate_line(out) == identity.subject
    assert f"Hash used: {digest}" in out and f"Signature type: {kind}" in out, out
    assert "Verification: OK" in out


@pytest.mark.parametrize("scheme, who, digest, kind", CERTIFICATE_VERIFY_SCHEMES, ids=[c[0] for c in CERTIFICATE_VERIFY_SCHEMES])
def test_server_verifies_certificate_verify_schemes(scheme, who, digest, kind, pki, ferro_server, s_client, tlsutil):
    """s_client signs its CertificateVerify with one scheme (-client_sigalgs); we verify it."""
    identity = getattr(pki, who)
    server = ferro_server(_client_auth_config(pki), tlsutil.reverse_and_close_first)
    message = message_for(scheme)
    run = s_client(server.port, "-cert", identity.cert_path, "-key", identity.key_path, "-client_sigalgs", scheme,
                   "-ign_eof", input=message)
    (served,) = server.join()
    result = served.check()
    assert s_client_closed_cleanly(run), run.output
    assert certificate_verify_scheme(bytes(served.conn.transcript)) == SCHEME_CODES[scheme]
    assert served.conn.peer_chain[0] == identity.leaf_der
    assert result["line"] == message and result["peer_closed"]


def test_client_without_fitting_credential(pki, openssl_server, tlsutil):
    """Only a credential from another CA: we send an empty Certificate and OpenSSL (-Verify)
    fails the handshake with handshake_failure."""
    server = openssl_server("-Verify", "1", "-CAfile", pki.client_ca_path, "-state")
    config = pki.client_config(credentials=[pki.other_client.credential])
    sock, engine = tlsutil.ferro_client(server.port, config)
    with sock, pytest.raises(TLSError) as info:
        engine.do_handshake()
    assert (info.value.alert, info.value.sent) == ("handshake_failure", False)
    assert engine.conn.local_credential is None
    out = server.finish()
    assert "peer did not return a certificate" in out, out


def test_client_certificate_with_stdlib_server(pki, tlsutil, listener, background):
    """CPython's ssl sends an empty certificate_authorities list (it never sets a client CA
    list), which means any CA (RFC 5246 7.4.4): the callback sees no names and its choice is sent."""
    ctx = tlsutil.stdlib_server_context(pki.server)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(pki.client_ca_path)

    def peer():
        raw, _ = listener.accept()
        with raw:
            raw.settimeout(tlsutil.IO_TIMEOUT)
            tls = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
            line = tls.recv(4096)
            tls.sendall(line.rstrip(b"\n")[::-1] + b"\n")
            after = tls.recv(4096)
            tls.unwrap()
            return subject, after

    calls = []

    def choose(candidates, ca_names):
        calls.append((list(candidates), list(ca_names)))
        return pki.client2.credential

    future = background(peer)
    credentials = [pki.other_client.credential, pki.client.credential, pki.client2.credential]
    config = pki.client_config(credentials=credentials, choose_certificate=choose)
    sock, engine = tlsutil.ferro_client(listener.getsockname()[1], config)
    with sock:
        client_roundtrip(tlsutil, engine, message_for("stdlib client auth"))
    subject, after = future.result(tlsutil.IO_TIMEOUT)
    assert calls == [(credentials, [])]
    assert subject["commonName"] == "client A2"
    assert after == b""


# --------------------------------------------------------------------------------------------
# Resumption
# --------------------------------------------------------------------------------------------

RESUMPTION = pytest.mark.parametrize("mode", ["tickets", "session-ids"])


def _ticket_args(mode):
    return ["-no_ticket"] if mode == "session-ids" else []


def _new_reused(stdout: str) -> list:
    return re.findall(r"^(New|Reused), (?:TLSv1\.2|SSLv3)", stdout, re.M)


@pytest.mark.parametrize("suite_name", ["AES128-GCM-SHA256", "AES256-SHA"])
@RESUMPTION
def test_openssl_client_reconnect_resumes(mode, suite_name, pki, ferro_server, s_client, tlsutil):
    server = ferro_server(pki.server_config(), tlsutil.serve_until_closed, connections=6)
    run = s_client(server.port, "-reconnect", "-cipher", suite_name, *_ticket_args(mode))
    served = server.join()
    for s in served:
        s.check()
    assert _new_reused(run.stdout) == ["New"] + ["Reused"] * 5, run.output
    assert [s.conn.resumed for s in served] == [False] + [True] * 5
    assert all(s.conn.suite == BY_NAME[suite_name] for s in served)
    assert ("TLS session ticket:" in run.stdout) == (mode == "tickets")


def test_openssl_client_reconnect_with_client_certificate(pki, ferro_server, s_client, tlsutil):
    """Resumed sessions keep the client's certificate chain."""
    server = ferro_server(_client_auth_config(pki), tlsutil.serve_until_closed, connections=6)
    run = s_client(server.port, "-reconnect", "-cert", pki.client.cert_path, "-key", pki.client.key_path)
    served = server.join()
    for s in served:
        s.check()
    assert _new_reused(run.stdout) == ["New"] + ["Reused"] * 5, run.output
    assert [s.conn.resumed for s in served] == [False] + [True] * 5
    assert all(s.conn.suite == DEFAULT_RSA_SUITE for s in served)
    assert all(s.conn.peer_chain[:1] == [pki.client.leaf_der] for s in served)


@RESUMPTION
def test_openssl_client_sess_out_sess_in(mode, pki, ferro_server, s_client, tlsutil, tmp_path):
    server = ferro_server(pki.server_config(), tlsutil.serve_until_closed, connections=2)
    session_file = str(tmp_path / "session.pem")
    first = s_client(server.port, "-sess_out", session_file, *_ticket_args(mode))
    second = s_client(server.port, "-sess_in", session_file, *_ticket_args(mode))
    served = server.join()
    for s in served:
        s.check()
    assert _new_reused(first.stdout) == ["New"], first.output
    assert _new_reused(second.stdout) == ["Reused"], second.output
    assert [s.conn.resumed for s in served] == [False, True]
    assert [s.conn.suite for s in served] == [DEFAULT_RSA_SUITE] * 2


@pytest.mark.parametrize("who", ["ours", "openssl"])
def test_server_never_resumes_without_ems(who, pki, ferro_server, s_client, tlsutil, no_ems_openssl_env):
    config = pki.server_config(extended_master_secret=(who != "ours"))
    server = ferro_server(config, tlsutil.serve_until_closed, connections=6)
    run = s_client(server.port, "-reconnect", env=no_ems_openssl_env if who == "openssl" else None)
    served = server.join()
    for s in served:
        s.check()
    assert [s.conn.resumed for s in served] == [False] * 6
    assert _new_reused(run.stdout) == ["New"] * 6, run.output
    assert "Extended master secret: no" in run.stdout


@pytest.mark.parametrize("suite_name", ["AES128-GCM-SHA256", "AES256-SHA"])
@RESUMPTION
def test_client_resumes_against_openssl_server(mode, suite_name, pki, openssl_server, tlsutil):
    server = openssl_server("-state", "-cipher", suite_name, *_ticket_args(mode), naccept=2)
    config = pki.client_config()
    sock, engine = tlsutil.ferro_client(server.port, config)
    with sock:
        client_roundtrip(tlsutil, engine, message_for("first"))
    first = engine.conn
    assert not first.resumed
    session = first.session
    assert session is not None and session.extended_master_secret
    if mode == "tickets":
        assert session.ticket
    else:
        assert not session.ticket and len(session.session_id) == 32

    sock, engine = tlsutil.ferro_client(server.port, config, session=session)
    with sock:
        message = message_for("resumed")
        assert client_roundtrip(tlsutil, engine, message) == tlsutil.reverse_line(message)
    assert engine.conn.resumed
    assert engine.conn.suite == first.suite == BY_NAME[suite_name]
    assert engine.conn.encrypt_then_mac == first.encrypt_then_mac == BY_NAME[suite_name].is_cbc
    assert engine.conn.master_secret == first.master_secret
    assert engine.conn.session is not None
    out = server.finish()
    assert server.returncode == 0, out
    assert re.search(r"^\s*1 session cache hits", out, re.M), out
    # Only the first connection had a full handshake.
    assert out.count("SSL_accept:SSLv3/TLS read client key exchange") == 1, out
    assert out.count("SSL_accept:SSLv3/TLS write server hello") == 2, out


def test_client_with_ems_disabled_and_an_ems_session(pki, openssl_server, tlsutil):
    """A session from a connection with EMS, offered by a config with EMS off: RFC 7627 5.3
    wants the extension whenever a session is offered; OpenSSL aborts otherwise
    ("inconsistent extms"). Either a full handshake or a resumption with EMS is fine."""
    server = openssl_server("-state", naccept=2)
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config())
    with sock:
        client_roundtrip(tlsutil, engine, message_for("ems session"))
    session = engine.conn.session
    assert session is not None
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(extended_master_secret=False), session=session)
    with sock:
        message = message_for("ems off now")
        assert client_roundtrip(tlsutil, engine, message) == tlsutil.reverse_line(message)
    out = server.finish()
    assert "inconsistent extms" not in out, out


def test_client_without_ems_does_not_resume(pki, openssl_server, tlsutil):
    server = openssl_server("-state", naccept=2)
    config = pki.client_config(extended_master_secret=False)
    sock, engine = tlsutil.ferro_client(server.port, config)
    with sock:
        client_roundtrip(tlsutil, engine, message_for("no ems"))
    assert not engine.conn.extended_master_secret
    assert engine.conn.session is None  # nothing to resume: no resumption offered
    sock, engine = tlsutil.ferro_client(server.port, config, session=engine.conn.session)
    with sock:
        client_roundtrip(tlsutil, engine, message_for("no ems again"))
    assert not engine.conn.resumed
    out = server.finish()
    assert out.count("SSL_accept:SSLv3/TLS read client key exchange") == 2, out
    assert re.search(r"^\s*0 session cache hits", out, re.M), out


# --------------------------------------------------------------------------------------------
# Cipher suite order
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefer_client", [False, True], ids=["server-order", "client-order"])
def test_server_cipher_order(prefer_client, pki, ferro_server, s_client, tlsutil):
    ours = parse_cipher_list("AES256-SHA256:AES128-GCM-SHA256:AES256-SHA")
    config = pki.server_config(cipher_suites=ours, prefer_client_ciphers=prefer_client)
    server = ferro_server(config, tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-cipher", "AES256-SHA:AES128-GCM-SHA256:AES256-SHA256", "-ign_eof",
                   input=message_for("order"))
    (served,) = server.join()
    served.check()
    expected = "AES256-SHA" if prefer_client else "AES256-SHA256"
    assert s_client_closed_cleanly(run), run.output
    assert s_client_cipher(run.stdout) == expected
    assert served.conn.suite == BY_NAME[expected]


@pytest.mark.parametrize("serverpref", [False, True], ids=["openssl-follows-client", "openssl-serverpref"])
def test_client_cipher_order_offered(serverpref, pki, openssl_server, tlsutil):
    """Our ClientHello lists the suites in our configured order: OpenSSL (which follows the
    client's order unless -serverpref) picks our first one."""
    args = ["-cipher", "AES128-GCM-SHA256:AES256-SHA", "-state"] + (["-serverpref"] if serverpref else [])
    server = openssl_server(*args)
    config = pki.client_config(cipher_suites=parse_cipher_list("AES256-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256"))
    sock, engine = tlsutil.ferro_client(server.port, config)
    with sock:
        client_roundtrip(tlsutil, engine, message_for("client order"))
    expected = "AES128-GCM-SHA256" if serverpref else "AES256-SHA"
    assert engine.conn.suite == BY_NAME[expected]
    out = server.finish()
    assert "Client cipher list: AES256-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256" in out, out


def test_no_shared_cipher_with_openssl(pki, ferro_server, s_client, tlsutil, openssl_server):
    server = ferro_server(pki.server_config(cipher_suites=parse_cipher_list("AES128-GCM-SHA256")),
                          tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-cipher", "AES256-SHA", "-ign_eof")
    (served,) = server.join()
    assert run.returncode != 0 and "SSL alert number 40" in run.output, run.output
    assert (served.error.alert, served.error.sent) == ("handshake_failure", True)

    theirs = openssl_server("-cipher", "AES256-SHA", "-state")
    sock, engine = tlsutil.ferro_client(theirs.port, pki.client_config(cipher_suites=parse_cipher_list("AES128-SHA")))
    with sock, pytest.raises(TLSError) as info:
        engine.do_handshake()
    assert (info.value.alert, info.value.sent) == ("handshake_failure", False)


def test_tls10_client_gets_protocol_version(pki, ferro_server, s_client, tlsutil):
    server = ferro_server(pki.server_config(), tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-tls1", "-cipher", "AES128-SHA@SECLEVEL=0", "-ign_eof", tls12=False)
    (served,) = server.join()
    assert run.returncode != 0
    assert "alert protocol version" in run.output and "SSL alert number 70" in run.output, run.output
    assert (served.error.alert, served.error.sent) == ("protocol_version", True)


# --------------------------------------------------------------------------------------------
# Verifying the server's certificate
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_client_verifies_server(hostname, pki, openssl_server, tlsutil):
    server = openssl_server("-state", "-tlsextdebug")
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(), server_hostname=hostname)
    with sock:
        client_roundtrip(tlsutil, engine, message_for("verified"))
    assert engine.conn.verified_chain[0].public_bytes(Encoding.DER) == pki.server.leaf_der
    assert engine.conn.verified_chain[-1].subject == pki.server_ca_cert.subject
    out = server.finish()
    # SNI carries host names only, never IP addresses (RFC 6066 section 3).
    assert ('TLS client extension "server name"' in out) == (hostname == "localhost"), out


def test_client_rejects_unknown_ca(pki, openssl_server, tlsutil):
    server = openssl_server("-state", identity=pki.other_server)
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config())
    with sock, pytest.raises(TLSError) as info:
        engine.do_handshake()
    assert (info.value.alert, info.value.sent) == ("unknown_ca", True)
    out = server.finish()
    assert "SSL3 alert read:fatal:unknown CA" in out, out


def test_server_reports_the_alert_of_a_rejecting_client(pki, ferro_server, s_client, tlsutil):
    """s_client does not trust our server (another CA) and says so with unknown_ca: our server's
    handshake fails naming the alert it received."""
    server = ferro_server(pki.server_config(), tlsutil.reverse_and_close_first)
    run = s_client(server.port, "-verify_return_error", "-ign_eof", cafile=pki.other_ca_path)
    (served,) = server.join()
    assert run.returncode != 0
    assert isinstance(served.error, TLSError)
    assert (served.error.alert, served.error.sent) == ("unknown_ca", False)


def test_client_rejects_expired_certificate(pki, openssl_server, tlsutil, tmp_path):
    import datetime
    import types

    import trustme

    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    leaf = pki.server_ca.issue_cert("localhost", not_before=past, not_after=past + datetime.timedelta(days=30),
                                    key_type=trustme.KeyType.RSA)
    cert, key = tmp_path / "expired.pem", tmp_path / "expired.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    server = openssl_server("-state", identity=types.SimpleNamespace(cert_path=str(cert), key_path=str(key)))
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config())
    with sock, pytest.raises(TLSError) as info:
        engine.do_handshake()
    assert (info.value.alert, info.value.sent) == ("certificate_expired", True)
    out = server.finish()
    assert "SSL3 alert read:fatal:certificate expired" in out, out


@pytest.mark.parametrize("hostname", ["wrong.example", "127.0.0.2"])
def test_client_rejects_wrong_hostname(hostname, pki, openssl_server, tlsutil):
    server = openssl_server("-state")
    sock, engine = tlsutil.ferro_client(server.port, pki.client_config(), server_hostname=hostname)
    with sock, pytest.raises(TLSError) as info:
        engine.do_handshake()
    assert (info.value.alert, info.value.sent) == ("bad_certificate", True)  # what OpenSSL sends too
    out = server.finish()
    assert "SSL3 alert read:fatal:bad certificate" in out, out


def test_client_check_hostname_off(pki, openssl_server, tlsutil):
    server = openssl_server("-state")
    config = pki.client_config(check_hostname=False)
    sock, engine = tlsutil.ferro_client(server.port, config, server_hostname="wrong.example")
    with sock:
        client_roundtrip(tlsutil, engine, message_for("no hostname check"))
    assert engine.conn.verified_chain


def test_client_without_verification_accepts_unknown_ca(pki, openssl_server, tlsutil):
    server = openssl_server("-state", identity=pki.other_server)
    sock, engine = tlsutil.ferro_client(server.port, TLSConfig(verify_peer=False))
    with sock:
        client_roundtrip(tlsutil, engine, message_for("unverified"))
    assert engine.conn.peer_chain[0] == pki.other_server.leaf_der
