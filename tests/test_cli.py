"""The `ferrotls` command line against the `openssl` and `curl` commands, and against itself.

Every peer listens on 127.0.0.1 on an ephemeral port; every subprocess is killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time

import pytest

trustme = pytest.importorskip("trustme")

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
needs_curl = pytest.mark.skipif(CURL is None, reason="needs the curl command")

FERROTLS = [sys.executable, "-m", "ferrotls.cli"]
TIMEOUT = 20

CONNECT_STATES = [
    "SSL_connect:before SSL initialization",
    "SSL_connect:SSLv3/TLS write client hello",
    "SSL_connect:SSLv3/TLS read server hello",
    "SSL_connect:SSLv3/TLS read server certificate",
    "SSL_connect:SSLv3/TLS read server done",
    "SSL_connect:SSLv3/TLS write client key exchange",
    "SSL_connect:SSLv3/TLS write change cipher spec",
    "SSL_connect:SSLv3/TLS write finished",
    "SSL_connect:SSLv3/TLS read server session ticket",
    "SSL_connect:SSLv3/TLS read change cipher spec",
    "SSL_connect:SSLv3/TLS read finished",
]
# With ECDHE the server's signed ephemeral key comes between its certificate and its done.
ECDHE_CONNECT_STATES = [*CONNECT_STATES[:4], "SSL_connect:SSLv3/TLS read server key exchange", *CONNECT_STATES[4:]]
# What ferrotls offers first and an RSA certificate can serve (ECDHE-ECDSA-... needs an ECDSA one).
DEFAULT_SUITE = "ECDHE-RSA-AES256-GCM-SHA384"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", key_type=trustme.KeyType.RSA)
    ec_server = ca.issue_cert("localhost", key_type=trustme.KeyType.ECDSA)
    client = ca.issue_cert("client.example", key_type=trustme.KeyType.RSA)
    other_ca = trustme.CA()
    files = {
        "ca": d / "ca.pem",
        "other_ca": d / "other_ca.pem",
        "cert": d / "server.pem",
        "key": d / "server.key",
        "ec_cert": d / "server-ec.pem",
        "ec_key": d / "server-ec.key",
        "client_cert": d / "client.pem",
        "client_key": d / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    other_ca.cert_pem.write_to_path(str(files["other_ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    ec_server.cert_chain_pems[0].write_to_path(str(files["ec_cert"]))
    ec_server.private_key_pem.write_to_path(str(files["ec_key"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    return {k: str(v) for k, v in files.items()}


def ferrotls(*args, input=b"", timeout=TIMEOUT):
    return subprocess.run([*FERROTLS, *map(str, args)], input=input, capture_output=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()


@contextlib.contextmanager
def openssl_server(pki, *args):
    """`openssl s_server -tls1_2` on a free port; yields the port."""
    port = _free_port()
    proc = subprocess.Popen(
        [OPENSSL, "s_server", "-tls1_2", "-accept", str(port), "-cert", pki["cert"], "-key", pki["key"], *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("openssl s_server did not start")
                time.sleep(0.05)
        yield port
    finally:
        _stop(proc)


class FerroServer:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc = proc
        self.port = port

    def output(self):
        """Stops the server; (stdout, stderr) as text."""
        if self.proc.poll() is None:
            self.proc.kill()
        out, err = self.proc.communicate(timeout=5)
        return out.decode(), err.decode()


@contextlib.contextmanager
def ferrotls_server(pki, *args):
    """`ferrotls s_server -accept 0 ...`; yields a FerroServer once it printed "ACCEPT host:port"."""
    proc = subprocess.Popen(
        [*FERROTLS, "s_server", "-accept", "0", "-cert", pki["cert"], "-key", pki["key"], *map(str, args)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline().decode() if ready else ""
        m = re.match(r"ACCEPT 127\.0\.0\.1:(\d+)$", line.strip())
        if not m:
            proc.kill()
            raise RuntimeError(f"ferrotls s_server did not start: {line!r} {proc.stderr.read().decode()}")
        yield FerroServer(proc, int(m.group(1)))
    finally:
        _stop(proc)


def openssl_client(port, *args, input=b""):
    return subprocess.run(
        [OPENSSL, "s_client", "-tls1_2", "-connect", f"127.0.0.1:{port}", *map(str, args)],
        input=input, capture_output=True, timeout=TIMEOUT,
    )


def states(stdout: str):
    return [line for line in stdout.splitlines() if line.startswith("SSL_connect:")]


# s_client against openssl s_server.


@needs_openssl
@pytest.mark.parametrize("cipher", ["AES128-GCM-SHA256", "AES256-SHA256", "AES128-SHA", "ECDHE-RSA-AES256-GCM-SHA384",
                                    "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA"])
def test_s_client_state_lines_and_cipher(pki, cipher):
    with openssl_server(pki, "-rev", "-cipher", cipher) as port:
        r = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", "-CAfile", pki["ca"],
                     "-state", "-cipher", cipher, input=b"hello\n")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert out.startswith("CONNECTED(")
    ecdhe = cipher.startswith("ECDHE-")
    assert states(out) == (ECDHE_CONNECT_STATES if ecdhe else CONNECT_STATES)
    # As openssl s_client: the ServerKeyExchange's signature and ephemeral key, for ECDHE only.
    kx_lines = "Peer signing digest: SHA256\nPeer signature type: RSA-PSS\nServer Temp Key: X25519, 253 bits\n---\n"
    assert (kx_lines in out) is ecdhe
    assert ("Server Temp Key" in out) is ecdhe
    assert f"New, TLSv1.2, Cipher is {cipher}" in out
    assert f"    Cipher    : {cipher}" in out
    assert "Verify return code: 0 (ok)" in out
    assert "Verified peername: localhost" in out
    assert "Extended master secret: yes" in out
    assert re.search(r"^depth=1 .*\nverify return:1\ndepth=0 .*\nverify return:1$", out, re.M)
    assert "Master-Key" not in out
    assert "\nolleh\n" in out  # openssl -rev answered
    assert "SSL3 alert write:warning:close notify" in out


@needs_openssl
@pytest.mark.parametrize("groups, temp_key", [("P-256", "ECDH, prime256v1, 256 bits"),
                                              ("P-384", "ECDH, secp384r1, 384 bits"),
                                              ("X25519:P-256", "X25519, 253 bits")])
def test_s_client_ecdhe_groups_and_ecdsa(pki, groups, temp_key):
    """openssl s_server with an RSA and an ECDSA certificate, limited to some groups: ferrotls
    offers ECDHE-ECDSA first, verifies the ECDSA signature over the ephemeral key and reports it
    as openssl s_client does; limited to RSA authentication, the RSA certificate serves."""
    with openssl_server(pki, "-rev", "-dcert", pki["ec_cert"], "-dkey", pki["ec_key"], "-groups", groups) as port:
        ecdsa = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", "-CAfile", pki["ca"],
                         "-state", input=b"hello\n")
        rsa = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", "-CAfile", pki["ca"],
                       "-cipher", "aRSA", input=b"hello\n")
    for r, suite, signature in [(ecdsa, "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDSA"), (rsa, DEFAULT_SUITE, "RSA-PSS")]:
        out = r.stdout.decode()
        assert r.returncode == 0, r.stderr.decode()
        assert f"New, TLSv1.2, Cipher is {suite}\n" in out
        assert f"Peer signature type: {signature}\nServer Temp Key: {temp_key}\n" in out
        assert "Verify return code: 0 (ok)" in out and "\nolleh\n" in out
    assert states(ecdsa.stdout.decode()) == ECDHE_CONNECT_STATES
    assert "Peer signing digest: SHA256\n" in ecdsa.stdout.decode()  # ecdsa_secp256r1_sha256, a P-256 key


@needs_openssl
def test_s_client_quiet_relays_through_openssl_rev(pki):
    with openssl_server(pki, "-rev") as port:
        r = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-quiet", input=b"hello world\nsecond line\n")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b"dlrow olleh\nenil dnoces\n"


@needs_openssl
def test_s_client_sess_out_then_sess_in_resumes(pki, tmp_path):
    session_file = tmp_path / "session.pem"
    with openssl_server(pki, "-rev") as port:
        first = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", pki["ca"], "-sess_out", session_file)
        second = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", pki["ca"], "-sess_in", session_file)
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    assert f"New, TLSv1.2, Cipher is {DEFAULT_SUITE}" in first.stdout.decode()
    text = session_file.read_text()
    assert text.startswith("-----BEGIN FERROTLS SESSION PARAMETERS-----\n")
    assert os.stat(session_file).st_mode & 0o077 == 0  # it holds the master secret
    out = second.stdout.decode()
    assert f"Reused, TLSv1.2, Cipher is {DEFAULT_SUITE}" in out
    assert "SSL_connect" not in out and "Certificate chain" not in out
    assert "Server Temp Key" not in out  # resumed: no key exchange


@needs_openssl
@pytest.mark.parametrize("cipher", [DEFAULT_SUITE, "AES128-GCM-SHA256"], ids=["ecdhe", "rsa-kx"])
@pytest.mark.parametrize("tickets", [True, False], ids=["ticket", "session-id"])
def test_s_client_reconnect_reuses(pki, tickets, cipher):
    extra = [] if cipher == DEFAULT_SUITE else ["-cipher", cipher]  # ferrotls's default, or limited
    with openssl_server(pki, "-rev") as port:
        r = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", pki["ca"], "-reconnect",
                     *([] if tickets else ["-no_ticket"]), *extra)
    assert r.returncode == 0, r.stderr.decode()
    outcomes = re.findall(r"^(New|Reused), TLSv1\.2, Cipher is (\S+)$", r.stdout.decode(), re.M)
    assert outcomes == [("New", cipher)] + [("Reused", cipher)] * 5
    assert r.stdout.decode().count("drop connection and then reconnect") == 5


@needs_openssl
def test_s_client_handshake_failure_names_the_alert(pki):
    with openssl_server(pki, "-rev", "-cipher", "AES128-SHA") as port:
        r = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-cipher", "AES256-SHA")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "handshake failed" in err and "handshake_failure" in err and "SSL alert number 40" in err


@needs_openssl
def test_s_client_verify_error_reported_or_fatal(pki):
    with openssl_server(pki, "-rev") as port:
        lenient = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", pki["other_ca"], input=b"hi\n")
        strict = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", pki["other_ca"], "-verify_return_error")
        wrong_name = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", pki["ca"], "-servername", "example.com")
    out = lenient.stdout.decode()
    assert lenient.returncode == 0
    assert "verify error:num=20:unable to get local issuer certificate" in out
    assert "Verify return code: 20 (unable to get local issuer certificate)" in out
    assert "\nih\n" in out  # the connection went on
    assert strict.returncode == 1
    assert "unknown_ca" in strict.stderr.decode() and "SSL alert number 48" in strict.stderr.decode()
    assert "Verify return code: 62 (hostname mismatch)" in wrong_name.stdout.decode()


def test_s_client_usage_errors(pki, tmp_path):
    port = _free_port()  # nothing listens there
    refused = ferrotls("s_client", "-connect", f"127.0.0.1:{port}")
    assert refused.returncode == 1 and "connect:errno=" in refused.stderr.decode()
    bad_cipher = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-cipher", "RC4-MD5")
    assert bad_cipher.returncode == 1 and "no cipher" in bad_cipher.stderr.decode()
    junk = tmp_path / "junk.pem"
    junk.write_text("not a session\n")
    bad_session = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-sess_in", junk)
    assert bad_session.returncode == 1 and "-sess_in" in bad_session.stderr.decode()
    assert ferrotls("s_client", "-help").returncode == 0


@needs_openssl
def test_s_client_no_ems_no_etm(pki, tmp_path):
    with openssl_server(pki, "-rev") as port:
        r = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-cipher", "AES128-SHA256", "-no_ems", "-no_etm",
                     "-sess_out", tmp_path / "s.pem")
        etm = ferrotls("s_client", "-connect", f"127.0.0.1:{port}", "-cipher", "AES128-SHA256")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "Extended master secret: no" in out and "Encrypt-then-MAC: no" in out
    assert "cannot be resumed" in r.stderr.decode() and not (tmp_path / "s.pem").exists()
    assert "Extended master secret: yes" in etm.stdout.decode() and "Encrypt-then-MAC: yes" in etm.stdout.decode()


# s_server against openssl s_client and curl.


@needs_openssl
def test_s_server_www_to_openssl_client(pki):
    with ferrotls_server(pki, "-www", "-state") as server:
        r = openssl_client(server.port, "-servername", "localhost", "-CAfile", pki["ca"], "-ign_eof",
                           "-cipher", "AES256-SHA256", input=b"GET / HTTP/1.0\r\n\r\n")
        out, _ = server.output()
    page = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "Verify return code: 0 (ok)" in page
    assert "HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n" in page
    assert "Protocol  : TLSv1.2" in page and "New, TLSv1.2, Cipher is AES256-SHA256" in page
    assert "no client certificate available" in page
    assert "SSL_accept:SSLv3/TLS write server hello" in out and "CIPHER is AES256-SHA256" in out


@needs_openssl
def test_s_server_ecdhe_to_openssl_client(pki):
    """Both sides' defaults: ECDHE with X25519, the ephemeral key signed with RSA-PSS; -state
    shows the ServerKeyExchange being written."""
    with ferrotls_server(pki, "-www", "-state") as server:
        r = openssl_client(server.port, "-servername", "localhost", "-CAfile", pki["ca"], "-ign_eof",
                           input=b"GET / HTTP/1.0\r\n\r\n")
        out, _ = server.output()
    page = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "Verify return code: 0 (ok)" in page
    assert f"New, TLSv1.2, Cipher is {DEFAULT_SUITE}" in page
    assert "Peer signature type: RSA-PSS\nServer Temp Key: X25519, 253 bits\n" in page
    accept = [line for line in out.splitlines() if line.startswith("SSL_accept:")]
    written = accept.index("SSL_accept:SSLv3/TLS write certificate")
    assert accept[written + 1] == "SSL_accept:SSLv3/TLS write key exchange"
    assert f"CIPHER is {DEFAULT_SUITE}" in out


@needs_openssl
@pytest.mark.parametrize("serverpref, expected", [(False, "AES256-GCM-SHA384"), (True, "AES128-SHA")])
def test_s_server_cipher_choice(pki, serverpref, expected):
    """openssl's rule: the client's order unless -serverpref (the client prefers GCM to CBC)."""
    with ferrotls_server(pki, "-www", "-cipher", "AES128-SHA:AES256-GCM-SHA384", *(["-serverpref"] if serverpref else [])) as server:
        r = openssl_client(server.port, "-ign_eof", input=b"GET / HTTP/1.0\r\n\r\n")
    assert f"New, TLSv1.2, Cipher is {expected}" in r.stdout.decode()


@needs_openssl
@pytest.mark.parametrize("flags, reused", [([], 5), (["-no_ticket"], 5), (["-no_ticket", "-no_cache"], 0)])
def test_s_server_resumption_to_openssl_reconnect(pki, flags, reused):
    with ferrotls_server(pki, "-rev", *flags) as server:
        r = openssl_client(server.port, "-reconnect", input=b"")
    out = r.stdout.decode()
    assert out.count("Reused, TLSv1.2") == reused
    assert out.count("New, TLSv1.2") == 6 - reused


@needs_openssl
def test_s_server_encrypted_key_with_pass(pki, tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(open(pki["key"], "rb").read(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"s3cret")))
    wrong = ferrotls("s_server", "-accept", "0", "-cert", pki["cert"], "-key", encrypted, "-pass", "pass:nope")
    assert wrong.returncode == 1 and "cannot load" in wrong.stderr.decode()
    proc = subprocess.Popen([*FERROTLS, "s_server", "-accept", "0", "-cert", pki["cert"], "-key", str(encrypted),
                             "-pass", "env:FERROTLS_TEST_PASS", "-rev"],
                            env={**os.environ, "FERROTLS_TEST_PASS": "s3cret"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        port = int(proc.stdout.readline().decode().rsplit(":", 1)[1]) if ready else 0
        r = openssl_client(port, "-quiet", input=b"abc\nCLOSE\n")
        assert r.stdout == b"cba\n"
    finally:
        _stop(proc)


@needs_curl
def test_s_server_www_to_curl(pki):
    with ferrotls_server(pki, "-www") as server:
        r = subprocess.run(
            [CURL, "-sS", "--max-time", "10", "--cacert", pki["ca"], "--resolve", f"localhost:{server.port}:127.0.0.1",
             f"https://localhost:{server.port}/"],
            capture_output=True, timeout=TIMEOUT,
        )
    page = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "Protocol  : TLSv1.2" in page
    # s_server follows the client's order (as openssl's): curl (OpenSSL) offers
    # ECDHE-ECDSA-AES256-GCM-SHA384 first, then this one, which our RSA certificate serves.
    m = re.search(r"^New, TLSv1\.2, Cipher is (\S+)$", page, re.M)
    assert m and m.group(1) == DEFAULT_SUITE


@needs_openssl
def test_s_server_rev(pki):
    # openssl s_client -quiet waits for the server to close: "CLOSE" asks it to, as with openssl -rev.
    with ferrotls_server(pki, "-rev", "-naccept", 1) as server:
        rev = openssl_client(server.port, "-quiet", input=b"hello\r\nworld\nCLOSE\n")
        assert server.proc.wait(10) == 0  # -naccept 1: done after one connection
    assert rev.returncode == 0, rev.stderr.decode()
    assert rev.stdout == b"olleh\ndlrow\n"


@needs_openssl
def test_s_server_Verify_requires_a_client_certificate(pki):
    with ferrotls_server(pki, "-www", "-Verify", "1", "-CAfile", pki["ca"]) as server:
        with_cert = openssl_client(server.port, "-CAfile", pki["ca"], "-cert", pki["client_cert"],
                                   "-key", pki["client_key"], "-ign_eof", input=b"GET / HTTP/1.0\r\n\r\n")
        without = openssl_client(server.port, "-CAfile", pki["ca"], "-ign_eof", input=b"GET / HTTP/1.0\r\n\r\n")
        again = openssl_client(server.port, "-CAfile", pki["ca"], "-cert", pki["client_cert"],
                               "-key", pki["client_key"], "-ign_eof", input=b"GET / HTTP/1.0\r\n\r\n")
        out, err = server.output()
    assert with_cert.returncode == 0, with_cert.stderr.decode()
    page = with_cert.stdout.decode()
    assert "Client certificate\nsubject=" in page and "HTTP/1.0 200 ok" in page
    assert without.returncode != 0
    assert "alert handshake failure" in without.stderr.decode()
    assert "peer did not return a certificate" in err  # reported, and the server went on:
    assert again.returncode == 0 and "HTTP/1.0 200 ok" in again.stdout.decode()
    assert out.count("verify return:1") >= 4


@needs_openssl
def test_s_server_survives_a_stalled_peer(pki):
    with ferrotls_server(pki, "-rev") as server:
        stalled = socket.create_connection(("127.0.0.1", server.port))
        try:
            started = time.monotonic()
            r = openssl_client(server.port, "-quiet", input=b"abc\nCLOSE\n")
            assert r.stdout == b"cba\n"
            assert time.monotonic() - started < 5
        finally:
            stalled.close()


def test_s_client_against_s_server(pki, tmp_path):
    """Both ends ours: -state on both, resumption by ticket and by session ID, and a few MiB
    echoed through while both directions run at once."""
    with ferrotls_server(pki) as server:
        args = ["s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", "localhost", "-CAfile", pki["ca"]]
        r = ferrotls(*args, "-reconnect")
        r2 = ferrotls(*args, "-reconnect", "-no_ticket")
        blob = os.urandom(3 << 20)
        echoed = ferrotls(*args, "-quiet", input=blob)
    assert r.returncode == 0 and r2.returncode == 0, (r.stderr, r2.stderr)
    assert r.stdout.decode().count("Reused, TLSv1.2") == 5
    assert r2.stdout.decode().count("Reused, TLSv1.2") == 5
    assert echoed.returncode == 0, echoed.stderr.decode()
    assert echoed.stdout == blob


def test_s_server_usage_errors(pki):
    r = ferrotls("s_server", "-accept", "0", "-cert", pki["cert"], "-key", pki["key"], "-Verify", "1")
    assert r.returncode == 1 and "-CAfile" in r.stderr.decode()
    r = ferrotls("s_server", "-accept", "0", "-cert", pki["cert"], "-key", pki["client_key"])
    assert r.returncode == 1 and "cannot load" in r.stderr.decode()


# The demo.


def test_demo():
    started = time.monotonic()
    r = ferrotls("demo", timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert time.monotonic() - started < 30
    assert r.stderr == b""
    flat = " ".join(out.split())  # the narration wraps lines
    first, rest = flat.split("Connection 2, briefly:", 1)
    second, third = rest.split("Connection 3:", 1)
    # Connection 1: both sides' defaults, an ECDHE handshake with the RSA certificate.
    assert "→ ClientHello" in first or "-> ClientHello" in first
    assert "supported_groups (x25519, secp256r1, secp384r1" in first and "ec_point_formats" in first
    assert re.search(r"ServerHello: .*the cipher suite ECDHE-RSA-AES256-GCM-SHA384\. Why: the server goes down its own "
                     r"preference order .* it skips ECDHE-ECDSA-AES256-GCM-SHA384 \(it needs an ECDSA certificate", first)
    assert re.search(r"ServerKeyExchange: a fresh ephemeral X25519 key pair.* group is x25519.* 32-byte public key goes "
                     r"out signed with the certificate's RSA key: rsa_pss_rsae_sha256", first)
    assert "verified the server's chain, depth 1" in first and 'The name "localhost" matches' in first
    assert "the ServerKeyExchange signature verifies (RSA-PSS with SHA-256)" in first
    assert "the client's own ephemeral X25519 public key (32 bytes)" in first
    assert "The premaster secret is the X25519 function of its private key and the server's public key" in first
    assert "forward secrecy" in first
    assert 'PRF(premaster, "extended master secret", session_hash)' in first
    assert "key exchange ECDHE (X25519), signed with rsa_pss_rsae_sha256" in first and "resumed: no" in first
    assert "NewSessionTicket" in first
    # Connection 2: a client offering RSA key exchange only; no ServerKeyExchange.
    assert "the cipher suite AES128-GCM-SHA256" in second and "no ServerKeyExchange" in second
    assert "RSA-encrypted (PKCS #1 v1.5) to the server's 2048-bit public key" in second
    assert "constant time, with implicit rejection" in second and "No forward secrecy here" in second
    assert "key exchange RSA, resumed: no" in second
    assert "X25519" not in second and "alert" not in second  # told briefly
    # Connection 3: connection 1 resumed with its ticket; the bulk transfer.
    assert "ClientHello asking to resume" in third and "ServerKeyExchange" not in third
    assert "cipher ECDHE-RSA-AES256-GCM-SHA384, resumed: yes" in third
    assert "checksums match" in third
    assert re.search(r"32 MiB in [\d.]+ s: \d+ MiB/s", third)
    assert "forward secret: yes" in third and "RSA key exchange shown" in third
    # Never a secret: no key material, no long hex (the checksums are shown cut to 32 digits).
    assert "Master-Key" not in flat
    assert not re.search(r"[0-9a-fA-F]{33,}", out)
    assert out.rstrip().endswith("OK")


def test_s_server_drops_a_stalled_handshake(pki, monkeypatch, capsys):
    """In-process: a peer that never finishes its handshake is dropped after the handshake
    timeout, reported, and the serving thread returns."""
    from ferrotls import cli, cli_server

    monkeypatch.setattr(cli_server, "HANDSHAKE_TIMEOUT", 0.3)
    args = cli.build_parser().parse_args(["s_server", "-cert", pki["cert"], "-key", pki["key"], "-quiet"])
    server = cli_server.Server(args)
    ours, peer = socket.socketpair()
    try:
        peer.sendall(b"\x16\x03\x01")  # the start of a record, and then nothing
        started = time.monotonic()
        server.serve(ours, ("127.0.0.1", 9), 1)
        assert time.monotonic() - started < 3
    finally:
        peer.close()
    err = capsys.readouterr().err
    assert "ERROR connection 1 from 127.0.0.1:9: handshake failed: timed out" in err
