"""Real clients against ferrotls: headless Chromium, and Wireshark's tshark reading the NSS key log.

- Chromium (Debian's ``chromium``) loads a page from http.server.ThreadingHTTPServer whose listening
  socket is wrapped by a ferrotls server context, with TLS 1.2 as the browser's maximum
  (``--ssl-version-max=tls1.2``). Trust is a real decision: the browser accepts the server only
  because the SHA-256 of its certificate's SubjectPublicKeyInfo is pinned
  (``--ignore-certificate-errors-spki-list``); with another key pinned it refuses the page. The
  page's token must be in the dumped DOM, the server must have seen a TLS 1.2 ECDHE suite of its
  certificate's kind, and ferrotls' key log must agree with the browser's (``SSLKEYLOGFILE``).
- tshark captures a whole connection on ``lo`` (capture filter: the server's port), then decrypts
  it with the key log ferrotls wrote (``-o tls.keylog_file:...``) and must find the request's
  unique token in the decrypted HTTP, for each kind of suite: ECDHE-RSA and ECDHE-ECDSA with
  AES-GCM and ChaCha20-Poly1305, ECDHE with AES-CBC (encrypt-then-MAC and MAC-then-encrypt) and
  RSA key exchange. Without the key log, or with a tampered one, the token must not be visible.
  Peers: ferrotls on both sides (both key logs must be equal), and ferrotls against the stdlib's
  OpenSSL on either side (ferrotls' key log must equal OpenSSL's).

These tools are not optional: .ci/run installs them, and a missing one fails (it is not skipped).
Every subprocess runs in its own session and is killed with its children at teardown.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import ferrotls
from ferrotls.protocol import TLS12_SUITES
from process_output import OutputLines

HOST = "127.0.0.1"
TIMEOUT = 10.0
CHROMIUM_TIMEOUT = 60.0
SUITE_CODES = {s.openssl_name: s.code for s in TLS12_SUITES}
EXT_ENCRYPT_THEN_MAC = 22  # RFC 7366
EXT_EXTENDED_MASTER_SECRET = 23  # RFC 7627
OP_NO_ENCRYPT_THEN_MAC = 0x80000  # OpenSSL 3's SSL_OP_NO_ENCRYPT_THEN_MAC (not exported by ssl)


def require(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is not installed: apt-get install {tool} (.ci/run installs it)"
    return path


def new_token(what: str) -> str:
    return f"ferrotls-{what}-{os.urandom(8).hex()}"


# --------------------------------------------------------------------------------------------
# Processes in their own session, killed with everything they started
# --------------------------------------------------------------------------------------------


def _session_members(sid: int) -> List[int]:
    """The processes of session ``sid`` (a session our Popen created: its id is our child's pid)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session
        if int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


def kill_tree(proc: subprocess.Popen) -> None:
    """Kills a process started with start_new_session=True and everything in its session."""
    for pid in [proc.pid] + _session_members(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


@pytest.fixture
def processes():
    """``processes(args, **popen_kwargs)`` starts a process in a new session; all are killed
    with their children at teardown."""
    started: List[subprocess.Popen] = []

    def start(args: List[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        kill_tree(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()


# --------------------------------------------------------------------------------------------
# Certificates: the RSA server certificate of conftest's PKI, and an ECDSA one from the same CA
# --------------------------------------------------------------------------------------------


class Cert:
    def __init__(self, cert_path: str, key_path: str):
        self.cert_path = cert_path
        self.key_path = key_path
        with open(cert_path, "rb") as f:
            self.leaf = x509.load_pem_x509_certificate(f.read())

    @property
    def spki_sha256_b64(self) -> str:
        """What --ignore-certificate-errors-spki-list takes: base64(SHA-256(SubjectPublicKeyInfo))."""
        spki = self.leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def certs(pki, tmp_path_factory) -> Dict[str, Cert]:
    d = tmp_path_factory.mktemp("real-clients-certs")
    leaf = pki.server_ca.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.ECDSA)
    with open(d / "ecdsa.pem", "wb") as f:
        for blob in leaf.cert_chain_pems:
            f.write(blob.bytes())
    leaf.private_key_pem.write_to_path(str(d / "ecdsa.key"))
    return {
        "rsa": Cert(pki.server.cert_path, pki.server.key_path),
        "ecdsa": Cert(str(d / "ecdsa.pem"), str(d / "ecdsa.key")),
        "other": Cert(pki.other_server.cert_path, pki.other_server.key_path),  # another RSA key
    }


def ferro_server_context(*certs: Cert, keylog: Optional[str] = None) -> ssl.SSLContext:
    ctx = ferrotls.SSLContext(ferrotls.PROTOCOL_TLS_SERVER)
    for cert in certs:
        ctx.load_cert_chain(cert.cert_path, cert.key_path)
    if keylog:
        ctx.keylog_filename = keylog
    return ctx


# --------------------------------------------------------------------------------------------
# An https http.server that answers every GET with a page naming the token in its path
# --------------------------------------------------------------------------------------------


class TokenHandler(http.server.BaseHTTPRequestHandler):
    timeout = TIMEOUT

    def do_GET(self) -> None:
        self.server.seen.append({"path": self.path, "cipher": self.request.cipher(), "version": self.request.version()})
        if self.path == "/favicon.ico":
            self.send_error(404)
            return
        token = self.server.token or self.path.lstrip("/")
        body = f'<html><body><p id="token">reply {token}</p></body></html>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args) -> None:
        pass


class TokenHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, context: ssl.SSLContext, token: Optional[str] = None):
        self.seen: List[dict] = []
        self.accept_errors: List[BaseException] = []
        self.token = token
        super().__init__((HOST, 0), TokenHandler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def get_request(self):
        try:
            return super().get_request()
        except OSError as e:  # the handshake runs in accept(): keep what failed, serve on
            self.accept_errors.append(e)
            raise

    def pages(self) -> List[dict]:
        return [s for s in self.seen if s["path"] != "/favicon.ico"]

    def stop(self) -> None:
        stopper = threading.Thread(target=self.shutdown, daemon=True)
        stopper.start()
        stopper.join(TIMEOUT)
        self.server_close()
        self.thread.join(TIMEOUT)


@pytest.fixture
def https_server():
    started: List[TokenHTTPServer] = []

    def start(context: ssl.SSLContext, token: Optional[str] = None) -> TokenHTTPServer:
        server = TokenHTTPServer(context, token)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def https_get(ctx: ssl.SSLContext, port: int, path: str) -> Tuple[bytes, tuple, str]:
    """GET path over a socket wrapped by ctx (ferrotls or stdlib); returns (response, cipher(), version())."""
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            # Read now: OpenSSL reports no version() once the server's plain FIN (http.server
            # closes without close_notify) has made it fail the connection.
            cipher, version = tls.cipher(), tls.version()
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            response = b""
            while True:
                data = tls.recv(65536)
                if not data:
                    break
                response += data
            return response, cipher, version


def keylog_lines(path: str) -> List[str]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def assert_nss_keylog(lines: List[str]) -> None:
    assert lines, "the key log is empty"
    for line in lines:
        assert re.fullmatch(r"CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}", line), line


# --------------------------------------------------------------------------------------------
# Chromium
# --------------------------------------------------------------------------------------------


def chromium_stderr_summary(stderr: str) -> str:
    """Chromium's stderr without the D-Bus noise of a machine that has no session bus."""
    return "\n".join(line for line in stderr.splitlines() if "dbus" not in line.lower())[-3000:]


def run_chromium(processes, tmp_path, url: str, spki: str) -> Tuple[int, str, str, List[str]]:
    """Headless Chromium, TLS 1.2 at most, trusting exactly the pinned SPKI; dumps the DOM.
    Every host name but localhost fails to resolve, so the browser talks to nobody else.
    Returns (exit code, DOM, stderr, the browser's own key log lines)."""
    chromium = require("chromium")
    profile = tmp_path / "chromium-profile"
    keylog = tmp_path / "chromium-keys.log"
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--ssl-version-max=tls1.2",
        f"--user-data-dir={profile}",
        f"--ignore-certificate-errors-spki-list={spki}",
        "--host-resolver-rules=MAP localhost 127.0.0.1, MAP * ~NOTFOUND",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-dev-shm-usage",
        "--dump-dom",
        url,
    ]
    env = dict(os.environ, SSLKEYLOGFILE=str(keylog))
    proc = processes(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        out, err = proc.communicate(timeout=5)
        raise AssertionError(f"chromium did not finish within {CHROMIUM_TIMEOUT} s:\n"
                             f"{chromium_stderr_summary(err.decode('utf-8', 'replace'))}")
    kill_tree(proc)  # helpers it may have left behind
    lines = keylog_lines(str(keylog)) if keylog.exists() else []
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), lines


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_chromium_loads_page_over_tls12_ecdhe(kind, certs, https_server, processes, tmp_path):
    cert = certs[kind]
    token = new_token(f"chromium-{kind}")
    server_keylog = str(tmp_path / "server-keys.log")
    server = https_server(ferro_server_context(cert, keylog=server_keylog), token=token)

    code, dom, stderr, browser_keylog = run_chromium(processes, tmp_path, f"https://localhost:{server.port}/",
                                                     cert.spki_sha256_b64)

    diagnostics = f"exit {code}\nDOM: {dom[:2000]}\nstderr:\n{chromium_stderr_summary(stderr)}\n" \
                  f"server accept errors: {server.accept_errors}"
    assert code == 0, diagnostics
    assert f'<p id="token">reply {token}</p>' in dom, diagnostics
    pages = server.pages()
    assert pages and all(p["path"] == "/" for p in pages), (pages, diagnostics)
    auth = {"rsa": "RSA", "ecdsa": "ECDSA"}[kind]
    for page in pages:
        name = page["cipher"][0]  # cipher()[1] is the version that introduced the suite
        assert page["version"] == "TLSv1.2", page
        assert name.startswith(f"ECDHE-{auth}-"), page
        assert SUITE_CODES[name] in {s.code for s in TLS12_SUITES if s.kx == "ECDHE" and s.auth == auth}
    # Both ends derived the same master secret: every handshake ferrotls logged, BoringSSL logged.
    server_lines = keylog_lines(server_keylog)
    assert_nss_keylog(server_lines)
    assert set(server_lines) <= set(browser_keylog), (server_lines, browser_keylog)


def test_chromium_refuses_server_whose_key_is_not_pinned(certs, https_server, processes, tmp_path):
    """The same page with another key's SPKI pinned: the browser must not trust our server."""
    token = new_token("chromium-unpinned")
    server = https_server(ferro_server_context(certs["rsa"]), token=token)

    code, dom, stderr, _ = run_chromium(processes, tmp_path, f"https://localhost:{server.port}/",
                                        certs["other"].spki_sha256_b64)

    assert token not in dom, dom
    assert "ERR_CERT_AUTHORITY_INVALID" in stderr, chromium_stderr_summary(stderr)
    assert server.pages() == []


# --------------------------------------------------------------------------------------------
# tshark and the NSS key log
# --------------------------------------------------------------------------------------------


def pcapng_tcp_packets(data: bytes) -> List[Tuple[int, int, int]]:
    """(source port, destination port, TCP flags) of each IPv4/TCP packet of a pcapng file on an
    Ethernet-framed interface (Linux's lo); a block still being written at the end is left out."""
    packets: List[Tuple[int, int, int]] = []
    endian, linktypes, pos = "<", [], 0
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":  # Section Header Block: its byte order
            endian = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            linktypes = []
        block_type, block_len = struct.unpack_from(endian + "II", data, pos)
        if block_len < 12 or pos + block_len > len(data):
            break
        if block_type == 1:  # Interface Description Block
            linktypes.append(struct.unpack_from(endian + "H", data, pos + 8)[0])
        elif block_type == 6:  # Enhanced Packet Block
            interface, _, _, caplen = struct.unpack_from(endian + "IIII", data, pos + 8)
            frame = data[pos + 28 : pos + 28 + caplen]
            assert linktypes[interface] == 1, f"link type {linktypes[interface]} (expected Ethernet, 1)"
            if frame[12:14] == b"\x08\x00" and frame[23] == 6:  # IPv4, TCP
                tcp = frame[14 + (frame[14] & 15) * 4 :]
                sport, dport = struct.unpack_from(">HH", tcp)
                packets.append((sport, dport, tcp[13]))
        pos += block_len
    return packets


TCP_FIN, TCP_RST = 0x01, 0x04


class Capture:
    """``tshark -i lo -f "tcp port PORT" -w FILE``, live once tshark logs "Capture started."
    ("Capturing on 'lo'" comes earlier, before packets are seen). Packets reach the file late:
    the kernel hands dumpcap a block of them when the block times out, and dumpcap flushes the
    file every half second, so stop() first waits until the file holds the end of the connection."""

    def __init__(self, processes, port: int, path: str):
        self.path = path
        self.port = port
        self.proc = processes([require("tshark"), "-i", "lo", "-f", f"tcp port {port}", "-w", path],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._stderr = OutputLines(self.proc.stderr, "tshark")
        self._stderr.wait_for("Capture started", TIMEOUT)

    @property
    def stderr(self) -> str:
        return self._stderr.text

    def wait_for_end(self, timeout: float = TIMEOUT) -> List[Tuple[int, int, int]]:
        """Waits until the file holds the end of the connection, a FIN each way or a RST (an
        OpenSSL client answers http.server's close without close_notify with a fatal alert, and
        the closed server socket answers that with a RST); returns the packets."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.path, "rb") as f:
                packets = pcapng_tcp_packets(f.read())
            fins = {sport == self.port for sport, _, flags in packets if flags & TCP_FIN}
            if fins == {True, False} or any(flags & TCP_RST for _, _, flags in packets):
                return packets
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"the capture never showed the end of the connection on port {self.port} "
                                     f"({len(packets)} packets so far):\n{self.stderr}")
            time.sleep(0.05)

    def stop(self) -> int:
        """Once the connection's end is in the file, stops the capture (SIGTERM lets tshark and
        dumpcap finish the file); returns the number of packets tshark says it captured."""
        self.wait_for_end()
        self.proc.terminate()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"tshark did not stop:\n{self.stderr}") from None
        self._stderr.join(TIMEOUT)
        match = re.search(r"^(\d+) packets? captured", self.stderr, re.M)
        assert self.proc.returncode == 0 and match, f"tshark exited {self.proc.returncode}:\n{self.stderr}"
        return int(match.group(1))

    def read(self, *args: str, keylog: Optional[str] = None) -> str:
        """``tshark -r FILE`` with the server's port decoded as TLS (and the key log, if any)."""
        cmd = [require("tshark"), "-r", self.path, "-d", f"tcp.port=={self.port},tls",
               "-o", f"tls.keylog_file:{keylog or ''}", *args]
        run = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        assert run.returncode == 0, f"{cmd} exited {run.returncode}:\n{run.stderr.decode('utf-8', 'replace')}"
        return run.stdout.decode("utf-8", "replace")


# The fields one tshark pass reads: the ServerHello's suite and extensions, the decrypted HTTP.
FIELDS = ["frame.number", "tls.handshake.type", "tls.handshake.ciphersuite", "tls.handshake.extension.type",
          "http.request.uri", "http.file_data"]


def read_fields(capture: Capture, keylog: Optional[str]) -> List[Dict[str, str]]:
    args = ["-Y", "tls.handshake.type == 2 or http or tls.app_data", "-T", "fields", "-E", "occurrence=a",
            "-E", "aggregator=,"]
    for field in FIELDS:
        args += ["-e", field]
    out = capture.read(*args, keylog=keylog)
    return [dict(zip(FIELDS, line.split("\t"))) for line in out.splitlines() if line.strip()]


def server_hello(rows: List[Dict[str, str]]) -> Dict[str, str]:
    hellos = [r for r in rows if "2" in r["tls.handshake.type"].split(",")]
    assert len(hellos) == 1, rows
    return hellos[0]


# (suite, client, server): ferrotls on both sides for every kind of suite, then ferrotls against
# OpenSSL (the stdlib) in each direction; "stdlib-no-etm" refuses encrypt-then-MAC (RFC 7366).
KEYLOG_CASES = [
    ("ECDHE-RSA-AES128-GCM-SHA256", "ferrotls", "ferrotls"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "ferrotls", "ferrotls"),
    ("ECDHE-RSA-AES256-SHA384", "ferrotls", "ferrotls"),  # CBC, encrypt-then-MAC
    ("AES128-GCM-SHA256", "ferrotls", "ferrotls"),  # RSA key exchange
    ("ECDHE-ECDSA-AES128-SHA", "ferrotls", "stdlib-no-etm"),  # CBC, MAC-then-encrypt
    ("ECDHE-RSA-AES256-GCM-SHA384", "stdlib", "ferrotls"),
]


def client_context(kind: str, suite: str, cafile: str, keylog: str) -> ssl.SSLContext:
    cls = ferrotls.SSLContext if kind == "ferrotls" else ssl.SSLContext
    ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(suite)
    ctx.load_verify_locations(cafile)
    ctx.keylog_filename = keylog
    return ctx


def server_context(kind: str, suite: str, certs: Dict[str, Cert], keylog: str) -> ssl.SSLContext:
    if kind == "ferrotls":
        ctx = ferro_server_context(certs["rsa"], certs["ecdsa"])
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        for cert in (certs["rsa"], certs["ecdsa"]):
            ctx.load_cert_chain(cert.cert_path, cert.key_path)
        if kind == "stdlib-no-etm":
            ctx.options |= OP_NO_ENCRYPT_THEN_MAC
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(suite)
    ctx.keylog_filename = keylog
    return ctx


@pytest.mark.parametrize("suite,client,server_kind", KEYLOG_CASES,
                         ids=[f"{c[0]}-{c[1]}-to-{c[2]}" for c in KEYLOG_CASES])
def test_tshark_decrypts_with_nss_keylog(suite, client, server_kind, pki, certs, https_server, processes, tmp_path):
    by_name = {s.openssl_name: s for s in TLS12_SUITES}[suite]
    etm_expected = by_name.is_cbc and server_kind != "stdlib-no-etm"
    client_keylog, server_keylog = str(tmp_path / "client-keys.log"), str(tmp_path / "server-keys.log")
    server = https_server(server_context(server_kind, suite, certs, server_keylog))
    client_ctx = client_context(client, suite, pki.server_ca_path, client_keylog)
    token = new_token(suite)

    capture = Capture(processes, server.port, str(tmp_path / "capture.pcapng"))
    response, cipher, version = https_get(client_ctx, server.port, f"/{token}")
    packets = capture.stop()

    # The exchange itself.
    assert response.startswith(b"HTTP/1.0 200") and f"reply {token}".encode() in response, response
    assert cipher[0] == suite and version == "TLSv1.2", (cipher, version)
    assert [(p["cipher"][0], p["version"]) for p in server.pages()] == [(suite, "TLSv1.2")], server.seen
    assert packets >= 8, capture.stderr  # handshake, request, response, closes

    # Both ends logged the same single line; the one ferrotls wrote is what tshark gets.
    ferro_keylog = client_keylog if client == "ferrotls" else server_keylog
    lines = keylog_lines(ferro_keylog)
    assert_nss_keylog(lines)
    assert len(lines) == 1, lines
    assert keylog_lines(client_keylog) == keylog_lines(server_keylog), (client_keylog, server_keylog)

    # Decrypted with the key log: the request and the page carry the token.
    rows = read_fields(capture, ferro_keylog)
    hello = server_hello(rows)
    assert int(hello["tls.handshake.ciphersuite"], 0) == by_name.code, hello
    extensions = {int(e) for e in hello["tls.handshake.extension.type"].split(",") if e}
    assert EXT_EXTENDED_MASTER_SECRET in extensions, hello
    assert (EXT_ENCRYPT_THEN_MAC in extensions) == etm_expected, hello
    uris = [r["http.request.uri"] for r in rows if r["http.request.uri"]]
    bodies = [r["http.file_data"] for r in rows if r["http.file_data"]]
    assert uris == [f"/{token}"], rows
    assert any(f"reply {token}" in body for body in bodies), rows

    # Without the key log, and with a key log whose master secret is wrong, nothing is readable.
    with open(capture.path, "rb") as f:
        assert token.encode() not in f.read(), "the token is in the capture in clear"
    random_hex, secret_hex = lines[0].split()[1:]
    wrong_keylog = str(tmp_path / "wrong-keys.log")
    with open(wrong_keylog, "w") as f:
        f.write(f"CLIENT_RANDOM {random_hex} {'%096x' % (int(secret_hex, 16) ^ 1)}\n")
    for keylog in (None, wrong_keylog):
        rows = read_fields(capture, keylog)
        assert len([r for r in rows if r["frame.number"]]) >= 2, rows  # the encrypted records are there
        assert not any(r["http.request.uri"] or r["http.file_data"] for r in rows), (keylog, rows)
        assert token not in "\n".join("\t".join(r.values()) for r in rows), (keylog, rows)
