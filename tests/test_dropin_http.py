"""ferrotls as a drop-in for the standard `ssl` module, under real HTTP clients and servers.

Everything runs over 127.0.0.1 with ephemeral ports and the trustme PKI of conftest.py:

- http.client, urllib.request, requests (an HTTPAdapter handing urllib3 our context), urllib3
  (fingerprints, assert_hostname, read timeouts) with a ferrotls client context, against a
  ferrotls http.server, a stdlib `ssl` http.server and ``openssl s_server -www``;
- ``ferrotls.inject_into_ssl()``: requests, urllib.request and httpx unchanged, really running on
  ferrotls; stdlib contexts made before the injection; ``extract_from_ssl()`` undoing it;
- http.server.ThreadingHTTPServer on a socket wrapped by a ferrotls server context, answering curl,
  ``openssl s_client`` and urlopen, and surviving clients that misbehave;
- mutual TLS with curl's client certificates.

ferrotls speaks TLS 1.2, with ECDHE and with RSA key exchange. By default it offers what the
stdlib does (ECDHE only), so its client and server choose ECDHE-RSA-AES256-GCM-SHA384 with our
RSA certificate; the RSA key exchange, when both sides ask for it (RSA_KX_CIPHERS: a stdlib
http.server, curl and s_client where named), is checked too.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from typing import Iterator, List, Optional

import httpx
import pytest
import requests
import trustme
import urllib3
import urllib3.util.ssl_
from requests.adapters import HTTPAdapter

import ferrotls
from ferrotls import sslobject
from ferrotls.sslobject import SSLEngine

HOST = "127.0.0.1"
TIMEOUT = 10.0
CURL = shutil.which("curl") or "curl"
# Suites with the RSA key exchange (a stdlib client or server offers none of them by default).
RSA_KX_CIPHERS = "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256"
# What ferrotls negotiates with our RSA certificate when nothing is restricted, as client or
# server, with itself, the stdlib, curl or openssl: the first ECDHE suite an RSA certificate serves
# (ECDHE-ECDSA-AES256-GCM-SHA384 comes before it but needs an ECDSA certificate).
DEFAULT_SUITE = "ECDHE-RSA-AES256-GCM-SHA384"

# The stdlib objects inject_into_ssl() replaces, as they were before any injection.
ORIGINALS = {
    "ssl.SSLContext": ssl.SSLContext,
    "ssl.create_default_context": ssl.create_default_context,
    "ssl._create_default_https_context": ssl._create_default_https_context,
    "urllib3.util.ssl_.SSLContext": urllib3.util.ssl_.SSLContext,
}


def current_patch_points() -> dict:
    return {
        "ssl.SSLContext": ssl.SSLContext,
        "ssl.create_default_context": ssl.create_default_context,
        "ssl._create_default_https_context": ssl._create_default_https_context,
        "urllib3.util.ssl_.SSLContext": urllib3.util.ssl_.SSLContext,
    }


# --------------------------------------------------------------------------------------------
# Contexts
# --------------------------------------------------------------------------------------------


def ferro_client_context(cafile: Optional[str] = None) -> ferrotls.SSLContext:
    ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile is not None:
        ctx.load_verify_locations(cafile)
    return ctx


def ferro_server_context(cert_path: str, key_path: str) -> ferrotls.SSLContext:
    ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def stdlib_server_context(cert_path: str, key_path: str, ciphers: Optional[str] = None) -> ssl.SSLContext:
    """TLS 1.2 with the given suites (None: the stdlib's default ones)."""
    ctx = ORIGINALS["ssl.SSLContext"](ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


# --------------------------------------------------------------------------------------------
# An https http.server: ThreadingHTTPServer whose listening socket is wrapped by a context
# --------------------------------------------------------------------------------------------


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Answers GET with "hello <path>" and records what the TLS connection looked like."""

    timeout = TIMEOUT  # StreamRequestHandler applies it to the accepted connection

    def do_GET(self) -> None:
        conn = self.connection
        self.server.seen.append({
            "path": self.path,
            "cipher": conn.cipher(),
            "version": conn.version(),
            "peercert": conn.getpeercert(),
            "ferrotls": isinstance(getattr(conn, "_sslobj", None), SSLEngine),
            "shared_ciphers": conn.shared_ciphers(),
        })
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args) -> None:
        self.server.log.append(fmt % args)


class RecordingHTTPServer(http.server.ThreadingHTTPServer):
    """Keeps what failed while accepting (the TLS handshake runs in accept()), then lets
    socketserver do what it always does with it (drop the connection, keep serving)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, *args, **kwargs):
        self.seen: List[dict] = []
        self.log: List[str] = []
        self.accept_errors: List[BaseException] = []
        super().__init__(*args, **kwargs)

    def get_request(self):
        try:
            return super().get_request()
        except OSError as e:
            self.accept_errors.append(e)
            raise


class HTTPSServer:
    def __init__(self, context: ssl.SSLContext):
        self.context = context
        self.httpd = RecordingHTTPServer((HOST, 0), RecordingHandler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    seen = property(lambda self: self.httpd.seen)
    accept_errors = property(lambda self: self.httpd.accept_errors)

    def url(self, path: str = "/", host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def wait_for_accept_errors(self, n: int, timeout: float = TIMEOUT) -> List[BaseException]:
        deadline = time.monotonic() + timeout
        while len(self.accept_errors) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.accept_errors)

    def stop(self) -> None:
        """Stops serve_forever (it must stop within a few seconds) and closes the listener."""
        stopper = threading.Thread(target=self.httpd.shutdown, daemon=True)
        stopper.start()
        stopper.join(TIMEOUT)
        self.httpd.server_close()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "serve_forever did not stop"


@pytest.fixture
def https_server():
    """https_server(context) starts an HTTPSServer; every one is stopped at teardown."""
    started: List[HTTPSServer] = []

    def start(context: ssl.SSLContext) -> HTTPSServer:
        server = HTTPSServer(context)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ferro_https(pki, https_server) -> HTTPSServer:
    """A ferrotls http.server with the RSA certificate for localhost and 127.0.0.1."""
    return https_server(ferro_server_context(pki.server.cert_path, pki.server.key_path))


@pytest.fixture
def ferro_rsa_kx_https(pki, https_server) -> HTTPSServer:
    """A ferrotls http.server that also allows the RSA key exchange (set_ciphers)."""
    ctx = ferro_server_context(pki.server.cert_path, pki.server.key_path)
    ctx.set_ciphers(f"ECDHE+AESGCM:{RSA_KX_CIPHERS}")
    return https_server(ctx)


@pytest.fixture
def stdlib_https(pki, https_server) -> HTTPSServer:
    """A stdlib `ssl` http.server (OpenSSL) with the stdlib's default suites (ECDHE only, for
    TLS 1.2); the tests count engines to see that the client side ran on ferrotls."""
    return https_server(stdlib_server_context(pki.server.cert_path, pki.server.key_path, None))


@pytest.fixture
def stdlib_rsa_kx_https(pki, https_server) -> HTTPSServer:
    """A stdlib `ssl` http.server limited to a suite with RSA key exchange."""
    return https_server(stdlib_server_context(pki.server.cert_path, pki.server.key_path, "AES128-GCM-SHA256"))


@pytest.fixture(scope="module")
def example_org_leaf(pki) -> trustme.LeafCert:
    """A certificate from the server CA for "example.org" only (not localhost, not 127.0.0.1)."""
    return pki.server_ca.issue_cert("example.org", key_type=trustme.KeyType.RSA)


@pytest.fixture
def example_org_https(example_org_leaf, https_server) -> HTTPSServer:
    ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    example_org_leaf.configure_cert(ctx)  # trustme calls our load_cert_chain
    return https_server(ctx)


@pytest.fixture
def mtls_https(pki, https_server) -> HTTPSServer:
    """A ferrotls http.server that requires a client certificate from the client CA."""
    ctx = ferro_server_context(pki.server.cert_path, pki.server.key_path)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(pki.client_ca_path)
    return https_server(ctx)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """exc and everything reachable through __cause__, __context__, args and urllib3's .reason."""
    seen = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)


def verification_errors(exc: BaseException) -> List[ssl.SSLCertVerificationError]:
    return [e for e in exception_chain(exc) if isinstance(e, ssl.SSLCertVerificationError)]


class ContextAdapter(HTTPAdapter):
    """A requests adapter whose urllib3 pool manager uses the given SSLContext."""

    def __init__(self, ssl_context, **kwargs):
        self.ssl_context = ssl_context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self.ssl_context
        return super().init_poolmanager(*args, **kwargs)


def session_with(ctx) -> requests.Session:
    session = requests.Session()
    session.mount("https://", ContextAdapter(ctx))
    return session


def run_curl(port: int, *args: str, path: str = "/curl",
             ciphers: Optional[str] = None) -> subprocess.CompletedProcess:
    """curl limited to TLS 1.2 and `ciphers` (None: curl's own list)."""
    cmd = [CURL, "-sS", "--max-time", str(int(TIMEOUT)), "--tls-max", "1.2", *(["--ciphers", ciphers] if ciphers else []),
           "--resolve", f"localhost:{port}:{HOST}", *args, f"https://localhost:{port}{path}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT + 5)


def good_urlopen(server: HTTPSServer, cafile: str, path: str) -> bytes:
    ctx = ferrotls.create_default_context(cafile=cafile)
    with urllib.request.urlopen(server.url(path), context=ctx, timeout=TIMEOUT) as resp:
        assert resp.status == 200
        return resp.read()


def client_hello_bytes() -> bytes:
    """A real ClientHello (stdlib ssl, over memory BIOs)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    ctx = ORIGINALS["ssl.SSLContext"](ssl.PROTOCOL_TLS_CLIENT)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"
    return hello


@pytest.fixture
def engine_count(monkeypatch):
    """Counts ferrotls SSLEngine creations (what every ferrotls connection starts with)."""
    created = []
    original = sslobject.SSLEngine.__init__

    def counting_init(self, *args, **kwargs):
        created.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(sslobject.SSLEngine, "__init__", counting_init)
    return created


@pytest.fixture
def inject():
    """inject() calls ferrotls.inject_into_ssl(); extraction always happens at teardown."""
    def do_inject() -> None:
        ferrotls.inject_into_ssl()

    try:
        yield do_inject
    finally:
        ferrotls.extract_from_ssl()
    assert current_patch_points() == ORIGINALS


# --------------------------------------------------------------------------------------------
# 1. http.client and urllib.request with a ferrotls client context
# --------------------------------------------------------------------------------------------


# What a ferrotls client with its defaults negotiates with each server (its defaults too), and
# with a stdlib server limited to the RSA key exchange once it allows that too.
NEGOTIATED = {"ferro": DEFAULT_SUITE, "stdlib": DEFAULT_SUITE, "stdlib_rsa_kx": "AES128-GCM-SHA256"}


def suited(ctx, server_kind: str):
    """ctx, allowing the RSA key exchange too for the server limited to it."""
    if server_kind == "stdlib_rsa_kx":
        ctx.set_ciphers(f"ECDHE+AESGCM:{RSA_KX_CIPHERS}")
    return ctx


@pytest.mark.parametrize("server_kind", ["ferro", "stdlib", "stdlib_rsa_kx"])
def test_http_client_get(server_kind, pki, request):
    server: HTTPSServer = request.getfixturevalue(f"{server_kind}_https")
    ctx = suited(ferro_client_context(pki.server_ca_path), server_kind)
    conn = http.client.HTTPSConnection("localhost", server.port, context=ctx, timeout=TIMEOUT)
    try:
        conn.request("GET", "/http-client")
        assert isinstance(conn.sock, ssl.SSLSocket)
        assert type(conn.sock._sslobj) is SSLEngine
        cipher = conn.sock.cipher()
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read() == b"hello /http-client"
    finally:
        conn.close()
    assert cipher[0] == NEGOTIATED[server_kind] and cipher[1] == "TLSv1.2"
    [seen] = server.seen
    assert seen["path"] == "/http-client"
    assert seen["cipher"] == cipher and seen["version"] == "TLSv1.2"
    assert seen["ferrotls"] is (server_kind == "ferro")


@pytest.mark.parametrize("server_kind", ["ferro", "stdlib", "stdlib_rsa_kx"])
def test_urlopen_with_context(server_kind, pki, request):
    server: HTTPSServer = request.getfixturevalue(f"{server_kind}_https")
    ctx = suited(ferrotls.create_default_context(cafile=pki.server_ca_path), server_kind)
    assert type(ctx) is ferrotls.SSLContext
    with urllib.request.urlopen(server.url("/urlopen"), context=ctx, timeout=TIMEOUT) as resp:
        assert resp.status == 200
        assert resp.read() == b"hello /urlopen"
    [seen] = server.seen
    assert seen["cipher"][0] == NEGOTIATED[server_kind]


def test_urlopen_with_context_rejects_unknown_ca(pki, ferro_https):
    ctx = ferrotls.create_default_context(cafile=pki.other_ca_path)
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(ferro_https.url("/x"), context=ctx, timeout=TIMEOUT)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
    assert info.value.reason.verify_code == 20
    assert ferro_https.seen == []


# --------------------------------------------------------------------------------------------
# 2. requests (HTTPAdapter with ssl_context) and urllib3
# --------------------------------------------------------------------------------------------


def test_requests_adapter_verify_ca(pki, ferro_https, engine_count):
    ctx = ferro_client_context()
    with session_with(ctx) as session:
        resp = session.get(ferro_https.url("/requests"), verify=pki.server_ca_path, timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.text == "hello /requests"
    assert any(e.context is ctx for e in engine_count), "requests did not use the adapter's context"
    assert ferro_https.seen[0]["cipher"][0] == DEFAULT_SUITE


def test_requests_adapter_unknown_ca(pki, ferro_https):
    with session_with(ferro_client_context()) as session:
        with pytest.raises(requests.exceptions.SSLError) as info:
            session.get(ferro_https.url("/unknown-ca"), verify=pki.other_ca_path, timeout=TIMEOUT)
    errors = verification_errors(info.value)
    assert errors, f"no ssl.SSLCertVerificationError in the chain of {info.value!r}"
    assert {e.verify_code for e in errors} == {20}
    assert errors[0].verify_message == "unable to get local issuer certificate"
    assert errors[0].reason == "CERTIFICATE_VERIFY_FAILED" and errors[0].library == "SSL"
    assert ferro_https.seen == []


def test_requests_adapter_wrong_hostname(pki, example_org_https):
    # The certificate is valid (the server CA is trusted) but only for example.org.
    with session_with(ferro_client_context()) as session:
        with pytest.raises(requests.exceptions.SSLError) as info:
            session.get(example_org_https.url("/wrong-name", host="localhost"), verify=pki.server_ca_path, timeout=TIMEOUT)
    errors = verification_errors(info.value)
    assert errors, f"no ssl.SSLCertVerificationError in the chain of {info.value!r}"
    assert {e.verify_code for e in errors} == {62}
    assert errors[0].verify_message == "Hostname mismatch, certificate is not valid for 'localhost'."
    assert example_org_https.seen == []


def test_urllib3_assert_fingerprint(example_org_https, example_org_leaf):
    der = ssl.PEM_cert_to_DER_cert(example_org_leaf.cert_chain_pems[0].bytes().decode())
    fingerprint = hashlib.sha256(der).hexdigest()

    def pool() -> urllib3.PoolManager:
        ctx = ferro_client_context()
        ctx.check_hostname = False  # as with a stdlib context: urllib3 then sets CERT_NONE on it
        return urllib3.PoolManager(ssl_context=ctx, cert_reqs="CERT_NONE", assert_fingerprint=fingerprint, retries=False)

    url = f"https://{HOST}:{example_org_https.port}/fingerprint"
    with pool() as pm:
        resp = pm.request("GET", url, timeout=TIMEOUT)
    assert resp.status == 200 and resp.data == b"hello /fingerprint"

    wrong = fingerprint[:-2] + ("00" if fingerprint[-2:] != "00" else "11")
    with pool() as pm:
        pm.connection_pool_kw["assert_fingerprint"] = wrong
        with pytest.raises(urllib3.exceptions.SSLError, match="Fingerprints did not match") as info:
            pm.request("GET", url, timeout=TIMEOUT)
    assert fingerprint in str(info.value)  # urllib3 read the certificate we got: getpeercert(True)


def test_urllib3_assert_hostname(pki, example_org_https):
    url = f"https://{HOST}:{example_org_https.port}/assert-hostname"
    with urllib3.PoolManager(ssl_context=ferro_client_context(), ca_certs=pki.server_ca_path,
                             assert_hostname="example.org", retries=False) as pm:
        resp = pm.request("GET", url, timeout=TIMEOUT)
    assert resp.status == 200 and resp.data == b"hello /assert-hostname"

    with urllib3.PoolManager(ssl_context=ferro_client_context(), ca_certs=pki.server_ca_path,
                             assert_hostname="other.example.org", retries=False) as pm:
        with pytest.raises(urllib3.exceptions.SSLError, match="doesn't match 'example.org'"):
            pm.request("GET", url, timeout=TIMEOUT)

    # Without assert_hostname ferrotls checks the name itself: 127.0.0.1 is not in the certificate.
    with urllib3.PoolManager(ssl_context=ferro_client_context(), ca_certs=pki.server_ca_path, retries=False) as pm:
        with pytest.raises(urllib3.exceptions.SSLError) as info:
            pm.request("GET", url, timeout=TIMEOUT)
    assert {e.verify_code for e in verification_errors(info.value)} == {64}  # IP address mismatch

    # ... and server_hostname names the host to check instead of the one in the URL.
    with urllib3.PoolManager(ssl_context=ferro_client_context(), ca_certs=pki.server_ca_path,
                             server_hostname="example.org", retries=False) as pm:
        resp = pm.request("GET", url, timeout=TIMEOUT)
    assert resp.status == 200
    assert len(example_org_https.seen) == 2


@pytest.fixture
def stalled_server(pki):
    """Accepts one connection, completes the TLS handshake (ferrotls), then never answers."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(TIMEOUT)
    ctx = ferro_server_context(pki.server.cert_path, pki.server.key_path)
    handshake_done = threading.Event()
    release = threading.Event()
    errors: List[BaseException] = []

    def serve() -> None:
        try:
            sock, _ = listener.accept()
            sock.settimeout(TIMEOUT)
            with ctx.wrap_socket(sock, server_side=True):
                handshake_done.set()
                release.wait(TIMEOUT)
        except BaseException as e:  # seen by the test
            errors.append(e)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], handshake_done, errors
    release.set()
    thread.join(TIMEOUT)
    listener.close()


def test_urllib3_read_timeout_on_stalled_server(pki, stalled_server):
    port, handshake_done, errors = stalled_server
    with urllib3.PoolManager(ssl_context=ferro_client_context(), ca_certs=pki.server_ca_path, retries=False) as pm:
        start = time.monotonic()
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            pm.request("GET", f"https://localhost:{port}/stalled", timeout=urllib3.Timeout(connect=TIMEOUT, read=0.5))
        elapsed = time.monotonic() - start
    assert handshake_done.is_set(), errors  # the handshake finished: the timeout hit the read
    assert 0.4 <= elapsed < 5


# --------------------------------------------------------------------------------------------
# 3. inject_into_ssl() / extract_from_ssl()
# --------------------------------------------------------------------------------------------


def test_inject_requests_get(pki, stdlib_https, inject, engine_count):
    inject()
    resp = requests.get(stdlib_https.url("/injected-requests"), verify=pki.server_ca_path, timeout=TIMEOUT)
    assert resp.status_code == 200 and resp.text == "hello /injected-requests"
    assert len(engine_count) == 1
    assert stdlib_https.seen[0]["cipher"][0] == DEFAULT_SUITE


def test_inject_urlopen(pki, stdlib_https, inject, engine_count):
    inject()
    ctx = ssl.create_default_context(cafile=pki.server_ca_path)
    assert isinstance(ctx, ferrotls.SSLContext) and isinstance(ctx, ssl.SSLContext)
    with urllib.request.urlopen(stdlib_https.url("/injected-context"), context=ctx, timeout=TIMEOUT) as resp:
        assert resp.read() == b"hello /injected-context"
    assert [e.context for e in engine_count] == [ctx]
    if sys.version_info < (3, 13):  # urlopen's cafile: deprecated in 3.6, removed in 3.13
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with urllib.request.urlopen(stdlib_https.url("/injected-cafile"), cafile=pki.server_ca_path,
                                        timeout=TIMEOUT) as resp:
                assert resp.read() == b"hello /injected-cafile"
        assert len(engine_count) == 2
        assert isinstance(engine_count[1].context, ferrotls.SSLContext)
    assert {s["cipher"][0] for s in stdlib_https.seen} == {DEFAULT_SUITE}


def test_inject_http_client_default_context(pki, stdlib_https, inject, engine_count, monkeypatch):
    """http.client without a context takes ssl._create_default_https_context(), which trusts
    the default verify paths (SSL_CERT_FILE names our CA here)."""
    monkeypatch.setenv("SSL_CERT_FILE", pki.server_ca_path)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    inject()
    conn = http.client.HTTPSConnection("localhost", stdlib_https.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/injected-http-client")
        assert conn.getresponse().read() == b"hello /injected-http-client"
    finally:
        conn.close()
    assert len(engine_count) == 1
    assert isinstance(engine_count[0].context, ferrotls.SSLContext)


def test_inject_httpx(pki, stdlib_https, inject, engine_count):
    inject()
    with pytest.warns(DeprecationWarning, match="verify=<str>"):
        resp = httpx.get(stdlib_https.url("/injected-httpx"), verify=pki.server_ca_path, timeout=TIMEOUT)
    assert resp.status_code == 200 and resp.text == "hello /injected-httpx"
    assert len(engine_count) == 1
    assert isinstance(engine_count[0].context, ferrotls.SSLContext)

    ctx = ssl.create_default_context(cafile=pki.server_ca_path)
    resp = httpx.get(stdlib_https.url("/injected-httpx-ctx"), verify=ctx, timeout=TIMEOUT)
    assert resp.status_code == 200 and resp.text == "hello /injected-httpx-ctx"
    assert engine_count[1].context is ctx
    assert {s["cipher"][0] for s in stdlib_https.seen} == {DEFAULT_SUITE}


def test_inject_httpx_unknown_ca(pki, stdlib_https, inject):
    inject()
    with pytest.raises(httpx.ConnectError) as info:
        httpx.get(stdlib_https.url("/x"), verify=ssl.create_default_context(cafile=pki.other_ca_path), timeout=TIMEOUT)
    assert {e.verify_code for e in verification_errors(info.value)} == {20}


def test_inject_preexisting_stdlib_context_is_still_a_stdlib_context(pki, ferro_https, inject, engine_count):
    before = ssl.create_default_context(cafile=pki.server_ca_path)  # the stdlib's defaults: ECDHE suites
    inject()
    assert isinstance(before, ssl.SSLContext)
    assert not isinstance(before, ferrotls.SSLContext)
    # It still runs on OpenSSL (ferrotls' engine is not involved) and talks to our server.
    with urllib.request.urlopen(ferro_https.url("/stdlib-ctx"), context=before, timeout=TIMEOUT) as resp:
        assert resp.read() == b"hello /stdlib-ctx"
    assert [e for e in engine_count if not e.server_side] == []
    assert ferro_https.seen[0]["cipher"][0] == DEFAULT_SUITE and ferro_https.seen[0]["version"] == "TLSv1.2"


@pytest.mark.parametrize("name, value", [
    pytest.param("minimum_version", ssl.TLSVersion.TLSv1_2, id="minimum_version"),
    pytest.param("maximum_version", ssl.TLSVersion.TLSv1_2, id="maximum_version"),
])
def test_inject_preexisting_stdlib_context_version_setters(name, value, inject):
    before = ssl.create_default_context()
    inject()
    setattr(before, name, value)
    assert getattr(before, name) == value


@pytest.mark.parametrize("name, flag", [
    pytest.param("options", ssl.OP_NO_TICKET, id="options"),
    pytest.param("verify_flags", ssl.VERIFY_X509_STRICT, id="verify_flags"),
])
def test_inject_preexisting_stdlib_context_flag_setters(name, flag, inject):
    before = ssl.create_default_context()
    assert not getattr(before, name) & flag
    inject()
    setattr(before, name, getattr(before, name) | flag)
    assert getattr(before, name) & flag, f"{name} |= {flag!r} was silently ignored"


def test_inject_preexisting_stdlib_context_verify_mode_setter(inject):
    before = ORIGINALS["ssl.SSLContext"](ssl.PROTOCOL_TLS_CLIENT)
    before.check_hostname = False
    inject()
    before.verify_mode = ssl.CERT_OPTIONAL
    assert before.verify_mode == ssl.CERT_OPTIONAL


def test_inject_preexisting_stdlib_context_msg_callback_setter(inject):
    """ssl.py's other super(SSLContext, SSLContext) setter: it must not recurse."""
    before = ssl.create_default_context()
    inject()

    def callback(*args):
        pass

    before._msg_callback = callback
    assert before._msg_callback is callback
    before._msg_callback = None
    assert before._msg_callback is None


def test_inject_new_context_setters(inject):
    """Contexts made after the injection are ferrotls' and their setters work too."""
    inject()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert isinstance(ctx, ferrotls.SSLContext)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_TICKET
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_TICKET


def test_extract_restores_originals(pki, stdlib_rsa_kx_https):
    stdlib_https = stdlib_rsa_kx_https
    try:
        ferrotls.inject_into_ssl()
        patched = current_patch_points()
        for name, original in ORIGINALS.items():
            assert patched[name] is not original, f"{name} was not replaced"
        assert ssl.create_default_context is ferrotls.create_default_context
        assert issubclass(urllib3.util.ssl_.SSLContext, ferrotls.SSLContext)
        assert isinstance(urllib3.util.ssl_.create_urllib3_context(), ferrotls.SSLContext)
    finally:
        ferrotls.extract_from_ssl()
    assert current_patch_points() == ORIGINALS
    for name, original in ORIGINALS.items():
        assert current_patch_points()[name] is original, name
    # Back on OpenSSL: a default stdlib client offers no RSA key exchange, so it cannot reach
    # this server (as a default ferrotls client cannot either).
    ctx = ssl.create_default_context(cafile=pki.server_ca_path)
    assert type(ctx) is ORIGINALS["ssl.SSLContext"]
    assert not isinstance(urllib3.util.ssl_.create_urllib3_context(), ferrotls.SSLContext)
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(stdlib_https.url("/after-extract"), context=ctx, timeout=TIMEOUT)
    assert isinstance(info.value.reason, ssl.SSLError)
    assert info.value.reason.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"  # OpenSSL's own: no shared cipher
    # extract_from_ssl() twice is harmless.
    ferrotls.extract_from_ssl()
    assert current_patch_points() == ORIGINALS


# --------------------------------------------------------------------------------------------
# 5. http.server on a ferrotls server context
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("server, ciphers, expected", [("ferro_rsa_kx_https", "AES128-GCM-SHA256", "AES128-GCM-SHA256"),
                                                      ("ferro_https", None, DEFAULT_SUITE)],
                         ids=["rsa-kx", "curl-defaults"])
def test_http_server_answers_curl(pki, request, server, ciphers, expected):
    https = request.getfixturevalue(server)
    run = run_curl(https.port, "--cacert", pki.server_ca_path, "-w", "\n%{http_code}", path="/by-curl",
                   ciphers=ciphers)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello /by-curl\n200"
    [seen] = https.seen
    assert seen["cipher"][0] == expected and seen["ferrotls"]
    assert seen["peercert"] is None  # no client certificate asked for


def test_http_server_answers_openssl_s_client(pki, ferro_rsa_kx_https, s_client):
    ferro_https = ferro_rsa_kx_https
    run = s_client(ferro_https.port, "-cipher", "AES128-GCM-SHA256", "-servername", "localhost",
                   "-verify_hostname", "localhost", "-verify_return_error", "-ign_eof",
                   input=b"GET /by-s-client HTTP/1.0\r\nHost: localhost\r\n\r\n")
    assert "Verify return code: 0 (ok)" in run.stdout, run.output
    assert "Cipher    : AES128-GCM-SHA256" in run.stdout
    assert "HTTP/1.0 200 OK\r\n" in run.stdout
    assert "Content-Length: 18\r\n" in run.stdout
    assert run.stdout.rstrip().endswith("hello /by-s-client")
    assert [s["path"] for s in ferro_https.seen] == ["/by-s-client"]


def test_http_server_answers_urlopen(pki, ferro_https):
    assert good_urlopen(ferro_https, pki.server_ca_path, "/by-urlopen") == b"hello /by-urlopen"


def test_http_server_survives_plaintext_request(pki, ferro_https):
    with socket.create_connection((HOST, ferro_https.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        # As OpenSSL: HTTP_REQUEST from the first record header, no alert, and the rest of the
        # request left unread, so closing resets the connection (the stdlib does the same).
        with pytest.raises(ConnectionResetError):
            sock.recv(4096)
    [err] = ferro_https.wait_for_accept_errors(1)
    assert isinstance(err, ssl.SSLError) and err.reason == "HTTP_REQUEST", err
    assert good_urlopen(ferro_https, pki.server_ca_path, "/after-plaintext") == b"hello /after-plaintext"
    assert ferro_https.thread.is_alive()


def test_http_server_survives_aborted_handshakes(pki, ferro_https):
    hello = client_hello_bytes()
    # Half a ClientHello, then a clean close.
    with socket.create_connection((HOST, ferro_https.port), timeout=TIMEOUT) as sock:
        sock.sendall(hello[: len(hello) // 2])
    ferro_https.wait_for_accept_errors(1)
    # A whole ClientHello, the ServerHello flight read, then a reset.
    with socket.create_connection((HOST, ferro_https.port), timeout=TIMEOUT) as sock:
        sock.sendall(hello)
        first = sock.recv(5)
        assert first[:1] == b"\x16", first  # the server's handshake flight
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Connected, then closed without a byte.
    socket.create_connection((HOST, ferro_https.port), timeout=TIMEOUT).close()
    errors = ferro_https.wait_for_accept_errors(3)
    assert len(errors) == 3, errors
    assert all(isinstance(e, OSError) for e in errors)
    assert isinstance(errors[0], ssl.SSLEOFError), errors[0]
    assert good_urlopen(ferro_https, pki.server_ca_path, "/after-abort") == b"hello /after-abort"
    assert [s["path"] for s in ferro_https.seen] == ["/after-abort"]


def test_http_server_survives_client_rejecting_its_certificate(pki, ferro_https):
    run = run_curl(ferro_https.port, "--cacert", pki.other_ca_path, path="/untrusted")
    assert run.returncode == 60, run  # CURLE_PEER_FAILED_VERIFICATION
    assert "unable to get local issuer certificate" in run.stderr
    [err] = ferro_https.wait_for_accept_errors(1)
    assert isinstance(err, ssl.SSLError)
    assert err.reason == "TLSV1_ALERT_UNKNOWN_CA", err
    run = run_curl(ferro_https.port, "--cacert", pki.server_ca_path, path="/after-reject")
    assert run.returncode == 0 and run.stdout == "hello /after-reject", run


# --------------------------------------------------------------------------------------------
# 6. Mutual TLS
# --------------------------------------------------------------------------------------------


def test_mtls_curl_with_client_certificate(pki, mtls_https):
    run = run_curl(mtls_https.port, "--cacert", pki.server_ca_path, "--cert", pki.client.cert_path,
                   "--key", pki.client.key_path, path="/mtls")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello /mtls"
    [seen] = mtls_https.seen
    cert = seen["peercert"]
    assert isinstance(cert, dict)
    subject = dict(rdn[0] for rdn in cert["subject"])
    assert subject["commonName"] == "client A"
    assert ("email", "client-a@example.org") in cert["subjectAltName"]
    issuer = dict(rdn[0] for rdn in cert["issuer"])
    assert issuer["organizationalUnitName"] == "client CA"


def test_mtls_curl_without_client_certificate(pki, mtls_https):
    run = run_curl(mtls_https.port, "--cacert", pki.server_ca_path, path="/no-cert")
    assert run.returncode != 0
    assert "alert handshake failure" in run.stderr, run.stderr
    [err] = mtls_https.wait_for_accept_errors(1)
    assert isinstance(err, ssl.SSLError)
    assert err.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE", err
    assert mtls_https.seen == []
    # Still serving.
    run = run_curl(mtls_https.port, "--cacert", pki.server_ca_path, "--cert", pki.client.cert_path,
                   "--key", pki.client.key_path, path="/after-no-cert")
    assert run.returncode == 0 and run.stdout == "hello /after-no-cert", run


def test_mtls_curl_with_untrusted_client_certificate(pki, mtls_https):
    run = run_curl(mtls_https.port, "--cacert", pki.server_ca_path, "--cert", pki.other_client.cert_path,
                   "--key", pki.other_client.key_path, path="/bad-cert")
    assert run.returncode != 0
    assert "alert unknown ca" in run.stderr, run.stderr
    [err] = mtls_https.wait_for_accept_errors(1)
    assert isinstance(err, ssl.SSLCertVerificationError), err
    assert err.verify_code == 20
    assert mtls_https.seen == []
    run = run_curl(mtls_https.port, "--cacert", pki.server_ca_path, "--cert", pki.client2.cert_path,
                   "--key", pki.client2.key_path, path="/after-bad-cert")
    assert run.returncode == 0 and run.stdout == "hello /after-bad-cert", run
    assert dict(r[0] for r in mtls_https.seen[0]["peercert"]["subject"])["commonName"] == "client A2"


def test_mtls_ferrotls_and_stdlib_clients(pki, mtls_https):
    # ferrotls client with a certificate, through http.client.
    ctx = ferro_client_context(pki.server_ca_path)
    ctx.load_cert_chain(pki.client.cert_path, pki.client.key_path)
    conn = http.client.HTTPSConnection("localhost", mtls_https.port, context=ctx, timeout=TIMEOUT)
    try:
        conn.request("GET", "/ferro-mtls")
        assert conn.getresponse().read() == b"hello /ferro-mtls"
    finally:
        conn.close()
    assert dict(r[0] for r in mtls_https.seen[0]["peercert"]["subject"])["commonName"] == "client A"
    # A stdlib client without one: the server's alert reaches it as an SSLError.
    std = ORIGINALS["ssl.SSLContext"](ssl.PROTOCOL_TLS_CLIENT)
    std.maximum_version = ssl.TLSVersion.TLSv1_2
    std.load_verify_locations(pki.server_ca_path)
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(mtls_https.url("/std-no-cert"), context=std, timeout=TIMEOUT)
    reason = info.value.reason
    assert isinstance(reason, ssl.SSLError), reason
    assert reason.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE", reason
    [err] = mtls_https.wait_for_accept_errors(1)
    assert err.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
    assert len(mtls_https.seen) == 1


# --------------------------------------------------------------------------------------------
# openssl s_server as the peer; get_server_certificate
# --------------------------------------------------------------------------------------------


def test_http_client_against_openssl_s_server_www(pki, openssl_server):
    server = openssl_server("-www", rev=False, naccept=1)
    ctx = ferrotls.create_default_context(cafile=pki.server_ca_path)
    conn = http.client.HTTPSConnection(HOST, server.port, context=ctx, timeout=TIMEOUT)
    try:
        conn.request("GET", "/")
        cipher = conn.sock.cipher()
        resp = conn.getresponse()
        body = resp.read().decode()
    finally:
        conn.close()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/html"
    assert f"New, TLSv1.2, Cipher is {cipher[0]}" in body, body
    assert cipher[0] == DEFAULT_SUITE  # openssl's order and ours agree: ECDHE, AES-256-GCM first
    server.finish()


def test_get_server_certificate(pki, openssl_server):
    server = openssl_server(naccept=3)
    pem = ferrotls.get_server_certificate((HOST, server.port))
    assert isinstance(pem, str) and pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert ssl.PEM_cert_to_DER_cert(pem) == pki.server.leaf_der
    # Verified against the right CA: the same certificate.
    pem = ferrotls.get_server_certificate((HOST, server.port), ca_certs=pki.server_ca_path)
    assert ssl.PEM_cert_to_DER_cert(pem) == pki.server.leaf_der
    # ... and against the wrong one: a verification error.
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        ferrotls.get_server_certificate((HOST, server.port), ca_certs=pki.other_ca_path, timeout=TIMEOUT)
    assert info.value.verify_code == 20
    server.finish()


def test_get_server_certificate_from_ferrotls_http_server(pki, ferro_https):
    pem = ferrotls.get_server_certificate((HOST, ferro_https.port), timeout=TIMEOUT)
    assert ssl.PEM_cert_to_DER_cert(pem) == pki.server.leaf_der
    assert good_urlopen(ferro_https, pki.server_ca_path, "/after-cert") == b"hello /after-cert"
