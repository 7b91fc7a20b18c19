"""ferrotls as a drop-in for `ssl` under asyncio, httpx and smtplib (issue acceptance 4 and 7).

asyncio's SSL transport drives an ssl.SSLObject over MemoryBIOs; with a ferrotls context that
SSLObject wraps ferrotls's engine (ferrotls.SSLContext._wrap_bio). Every exchange below runs over
127.0.0.1 with trustme certificates (conftest's `pki`), against ferrotls and stdlib peers, curl
and `openssl s_client`; every peer is stopped at teardown and asyncio must log nothing.
"""

from __future__ import annotations

import asyncio
import http.server
import logging
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import threading

import httpx
import pytest

from ferrotls.sslobject import SSLEngine

from dropin_async_helpers import (
    HOST,
    IO_TIMEOUT,
    OUR_SUITE,
    RSA_KX_SUITE,
    StartTLSSMTPServer,
    client_context,
    is_ferrotls_engine,
    server_context,
)

OPENSSL = shutil.which("openssl") or "openssl"
CURL = shutil.which("curl") or "curl"
BODY = b"hello from an asyncio server on ferrotls\n"
LINE = b"a line for the server\n"


def reverse(line: bytes) -> bytes:
    return line.rstrip(b"\n")[::-1] + b"\n"


def run(coro, timeout: float = 30.0):
    """Runs a coroutine on a fresh event loop in debug mode (asyncio then logs the SSL errors it
    otherwise swallows, "Fatal error on SSL protocol" among them), with a deadline."""

    async def main():
        asyncio.get_running_loop().slow_callback_duration = 5.0  # no "Executing ... took" noise
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(main(), debug=True)


@pytest.fixture
def quiet_asyncio(caplog):
    """Captures asyncio's logger; the test calls the returned function to assert it logged no
    warning or error ("Fatal error on SSL transport", "SSL error in data received", ...)."""
    caplog.set_level(logging.DEBUG, logger="asyncio")
    failure = re.compile(r"(?i)error|exception|fail|abort|reset|timed? ?out")

    def check() -> None:
        records = [r for r in caplog.records if r.name.startswith("asyncio")]
        bad = [r for r in records if r.levelno >= logging.WARNING or failure.search(r.getMessage())]
        assert not bad, "asyncio logged:\n" + "\n".join(f"{r.levelname}: {r.getMessage()}" for r in bad)

    return check


# --------------------------------------------------------------------------------------------
# Servers: an asyncio line server (ferrotls or stdlib context) and a threaded stdlib one.
# --------------------------------------------------------------------------------------------


class AsyncServer:
    """asyncio.start_server(ssl=context) running ``answer`` for each connection, then closing it
    (the transport sends close_notify). Errors are kept for the test; ``settle`` waits until the
    handlers have finished closing."""

    def __init__(self, context: ssl.SSLContext):
        self.context = context
        self.errors: list = []
        self.finished = 0

    async def answer(self, reader, writer) -> None:
        raise NotImplementedError

    async def handler(self, reader, writer) -> None:
        try:
            await self.answer(reader, writer)
        except Exception as e:  # kept for the test
            self.errors.append(e)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except Exception as e:
                self.errors.append(e)
            self.finished += 1

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handler, HOST, 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def settle(self, count: int = 1) -> None:
        """Waits until `count` handlers have finished closing their connection."""
        for _ in range(200):
            if self.finished >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the server finished {self.finished} of {count} connections")

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


class AsyncLineServer(AsyncServer):
    """Reads a line, answers it reversed; records each connection's TLS view."""

    def __init__(self, context: ssl.SSLContext):
        super().__init__(context)
        self.seen: list = []

    async def answer(self, reader, writer) -> None:
        sslobj = writer.get_extra_info("ssl_object")
        self.seen.append({
            "cipher": writer.get_extra_info("cipher"),
            "version": sslobj.version(),
            "server_side": sslobj.server_side,
            "ferrotls": is_ferrotls_engine(sslobj),
            "tls_unique": sslobj.get_channel_binding("tls-unique"),
        })
        line = await reader.readline()
        writer.write(reverse(line))
        await writer.drain()


def stdlib_line_server(context: ssl.SSLContext):
    """A blocking stdlib handler: reads a line, answers it reversed, then unwrap(): sends
    close_notify and waits for the client's (an SSLError there means the client's was missing)."""

    def handle(sock: socket.socket) -> dict:
        tls = context.wrap_socket(sock, server_side=True, suppress_ragged_eofs=False)
        view = {"cipher": tls.cipher(), "tls_unique": tls.get_channel_binding("tls-unique")}
        line = b""
        while not line.endswith(b"\n"):
            data = tls.recv(1024)
            assert data, "the client closed before sending its line"
            line += data
        tls.sendall(reverse(line))
        tls.unwrap()  # our close_notify, then the client's
        view["clean_close"] = True
        return view

    return handle


# --------------------------------------------------------------------------------------------
# asyncio.open_connection with a ferrotls context
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("server_kind", ["ferrotls-asyncio", "stdlib-asyncio", "stdlib-thread"])
def test_open_connection_extras_and_close_notify(pki, thread_servers, quiet_asyncio, server_kind):
    ctx = client_context("ferrotls", pki.server_ca_path)
    expected_peercert = ssl._ssl._test_decode_cert(pki.server.cert_path)  # the stdlib's dict

    async def client(port):
        reader, writer = await asyncio.open_connection(HOST, port, ssl=ctx, server_hostname="localhost")
        sslobj = writer.get_extra_info("ssl_object")
        extras = {
            "ssl_object": sslobj,
            "sslcontext": writer.get_extra_info("sslcontext"),
            "peercert": writer.get_extra_info("peercert"),
            "cipher": writer.get_extra_info("cipher"),
        }
        writer.write(LINE)
        await writer.drain()
        reply = await reader.read()  # everything up to the server's close_notify
        eof = await reader.read()
        peer_closed = sslobj._sslobj.conn.peer_closed
        tls_unique = sslobj.get_channel_binding("tls-unique")
        writer.close()
        await writer.wait_closed()
        return extras, reply, eof, peer_closed, tls_unique

    async def main():
        if server_kind == "stdlib-thread":
            server = thread_servers(stdlib_line_server(server_context("stdlib", pki.server.cert_path, pki.server.key_path)))
            result = await client(server.port)
            view = (await asyncio.to_thread(server.wait, 1))[0]
            assert view["clean_close"]
            return result, view
        kind = server_kind.split("-")[0]
        async with AsyncLineServer(server_context(kind, pki.server.cert_path, pki.server.key_path)) as server:
            result = await client(server.port)
            await server.settle()
        assert not server.errors, server.errors
        assert len(server.seen) == 1
        if kind == "ferrotls":
            assert server.seen[0]["ferrotls"] and server.seen[0]["server_side"]
        return result, server.seen[0]

    (extras, reply, eof, peer_closed, tls_unique), view = run(main())
    sslobj = extras["ssl_object"]
    assert isinstance(sslobj, ssl.SSLObject)
    assert isinstance(sslobj._sslobj, SSLEngine)
    assert extras["sslcontext"] is ctx and sslobj.context is ctx
    assert sslobj.server_hostname == "localhost" and sslobj.server_side is False
    assert extras["peercert"] == expected_peercert
    assert extras["cipher"] == OUR_SUITE == sslobj.cipher() == view["cipher"]
    assert sslobj.version() == "TLSv1.2"
    assert tls_unique == view["tls_unique"] and len(tls_unique) == 12
    assert reply == reverse(LINE)
    assert eof == b""
    assert peer_closed, "read() returned b'' without the server's close_notify"
    quiet_asyncio()


def test_open_connection_stdlib_client_to_ferrotls_asyncio_server(pki, quiet_asyncio):
    """The other direction: a stdlib asyncio client; the server's transport runs on ferrotls."""
    ctx = client_context("stdlib", pki.server_ca_path)

    async def main():
        async with AsyncLineServer(server_context("ferrotls", pki.server.cert_path, pki.server.key_path)) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port, ssl=ctx, server_hostname="localhost")
            cipher = writer.get_extra_info("cipher")
            tls_unique = writer.get_extra_info("ssl_object").get_channel_binding("tls-unique")
            writer.write(LINE)
            await writer.drain()
            reply = await reader.read()
            writer.close()
            await writer.wait_closed()
            await server.settle()
        return server, cipher, tls_unique, reply

    server, cipher, tls_unique, reply = run(main())
    assert not server.errors, server.errors
    assert reply == reverse(LINE)
    assert server.seen[0]["ferrotls"]
    assert cipher == server.seen[0]["cipher"] == OUR_SUITE
    assert tls_unique == server.seen[0]["tls_unique"]
    quiet_asyncio()


# --------------------------------------------------------------------------------------------
# StreamWriter.start_tls (Python 3.11+): upgrading a plaintext connection
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_kind,server_kind", [("ferrotls", "ferrotls"), ("ferrotls", "stdlib"), ("stdlib", "ferrotls")])
def test_writer_start_tls_upgrades_plaintext(pki, quiet_asyncio, client_kind, server_kind):
    assert sys.version_info >= (3, 11)
    client_ctx = client_context(client_kind, pki.server_ca_path)
    server_ctx = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
    server_seen = {}
    handled = asyncio.Event()

    async def handler(reader, writer):
        try:
            assert await reader.readline() == b"STARTTLS\n"
            assert writer.get_extra_info("ssl_object") is None
            writer.write(b"GO AHEAD\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            sslobj = writer.get_extra_info("ssl_object")
            server_seen.update(cipher=writer.get_extra_info("cipher"), ferrotls=is_ferrotls_engine(sslobj),
                               tls_unique=sslobj.get_channel_binding("tls-unique"))
            line = await reader.readline()
            writer.write(reverse(line))
            await writer.drain()
        except Exception as e:
            server_seen["error"] = e
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except Exception as e:
                server_seen["close_error"] = e
            handled.set()

    async def main():
        server = await asyncio.start_server(handler, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(b"STARTTLS\n")
            await writer.drain()
            assert await reader.readline() == b"GO AHEAD\n"
            assert writer.get_extra_info("ssl_object") is None
            await writer.start_tls(client_ctx, server_hostname="localhost")
            sslobj = writer.get_extra_info("ssl_object")
            seen = {"cipher": writer.get_extra_info("cipher"), "peercert": writer.get_extra_info("peercert"),
                    "ferrotls": is_ferrotls_engine(sslobj), "tls_unique": sslobj.get_channel_binding("tls-unique")}
            writer.write(LINE)
            await writer.drain()
            seen["reply"] = await reader.readline()
            seen["eof"] = await reader.read()
            writer.close()
            await writer.wait_closed()
            await asyncio.wait_for(handled.wait(), IO_TIMEOUT)
            return seen
        finally:
            server.close()
            await server.wait_closed()

    seen = run(main())
    assert "error" not in server_seen and "close_error" not in server_seen, server_seen
    assert seen["ferrotls"] == (client_kind == "ferrotls")
    assert server_seen["ferrotls"] == (server_kind == "ferrotls")
    assert seen["cipher"] == server_seen["cipher"] == OUR_SUITE
    assert seen["peercert"] == ssl._ssl._test_decode_cert(pki.server.cert_path)
    assert seen["tls_unique"] == server_seen["tls_unique"]
    assert seen["reply"] == reverse(LINE)
    assert seen["eof"] == b""
    quiet_asyncio()


# --------------------------------------------------------------------------------------------
# asyncio.start_server(ssl=ferrotls context) answering curl, openssl s_client, a stdlib client
# --------------------------------------------------------------------------------------------


class AsyncHTTPServer(AsyncServer):
    """A one-route HTTP/1.1 server. The body is delimited by the connection's close (no
    Content-Length): the client reads up to the server's close_notify."""

    def __init__(self, context: ssl.SSLContext):
        super().__init__(context)
        self.requests: list = []

    async def answer(self, reader, writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append({"head": head, "cipher": writer.get_extra_info("cipher"),
                              "ferrotls": is_ferrotls_engine(writer.get_extra_info("ssl_object"))})
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" + BODY)
        await writer.drain()


async def _subprocess(*args: str, input: bytes = b"", timeout: float = 20.0):
    proc = await asyncio.create_subprocess_exec(*args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


@pytest.mark.parametrize("ciphers, suite", [(None, OUR_SUITE), ("AES128-GCM-SHA256", RSA_KX_SUITE)],
                         ids=["curl-defaults", "rsa-kx"])
def test_start_server_answers_curl(pki, quiet_asyncio, ciphers, suite):
    """curl with its own cipher list (ECDHE first: the server's first choice wins), and limited
    to a suite with the RSA key exchange, which the server then allows too (set_ciphers)."""
    ctx = server_context("ferrotls", pki.server.cert_path, pki.server.key_path)
    if ciphers:
        ctx.set_ciphers(f"ECDHE+AESGCM:{ciphers}")

    async def main():
        async with AsyncHTTPServer(ctx) as server:
            result = await _subprocess(
                CURL, "-sS", "-v", "--cacert", pki.server_ca_path, "--resolve", f"localhost:{server.port}:{HOST}",
                "--tls-max", "1.2", *(["--ciphers", ciphers] if ciphers else []), f"https://localhost:{server.port}/hello")
            await server.settle()
        return server, result

    server, (code, out, err) = run(main())
    assert not server.errors, server.errors
    assert code == 0, err
    assert out.encode() == BODY
    # curl reads the close-delimited body to the end; -v shows the server's close_notify (a bare
    # TCP EOF ends the body too, but without this line) and curl's answer.
    assert "TLSv1.2 (IN), TLS alert, close notify" in err, err
    assert "TLSv1.2 (OUT), TLS alert, close notify" in err, err
    assert f"SSL connection using TLSv1.2 / {suite[0]}" in err
    assert "SSL certificate verify ok" in err
    assert server.requests[0]["head"].startswith(b"GET /hello HTTP/1.1\r\n")
    assert server.requests[0]["ferrotls"] and server.requests[0]["cipher"] == suite
    quiet_asyncio()


@pytest.mark.parametrize("ciphers, suite", [(None, OUR_SUITE), ("AES128-GCM-SHA256", RSA_KX_SUITE)],
                         ids=["s_client-defaults", "rsa-kx"])
def test_start_server_answers_openssl_s_client(pki, quiet_asyncio, ciphers, suite):
    ctx = server_context("ferrotls", pki.server.cert_path, pki.server.key_path)
    if ciphers:
        ctx.set_ciphers(f"ECDHE+AESGCM:{ciphers}")  # the RSA key exchange, allowed when asked for

    async def main():
        async with AsyncHTTPServer(ctx) as server:
            result = await _subprocess(
                OPENSSL, "s_client", "-connect", f"{HOST}:{server.port}", "-servername", "localhost", "-tls1_2",
                *(["-cipher", ciphers] if ciphers else []), "-CAfile", pki.server_ca_path, "-verify_return_error",
                "-ign_eof", "-state", input=b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            await server.settle()
        return server, result

    server, (code, out, err) = run(main())
    assert not server.errors, server.errors
    assert code == 0, out + err
    assert "Verify return code: 0 (ok)" in out
    assert re.search(rf"^\s*Cipher\s*: {suite[0]}$", out, re.M), out
    assert server.requests[0]["cipher"] == suite
    # The ECDHE handshake has a ServerKeyExchange (X25519, our first group); RSA key exchange none.
    ecdhe = suite[0].startswith("ECDHE-")
    assert ("SSL_connect:SSLv3/TLS read server key exchange" in err) is ecdhe, err
    assert ("Server Temp Key: X25519, 253 bits" in out) is ecdhe, out
    assert "HTTP/1.1 200 OK" in out and BODY.decode() in out
    # s_client prints "closed" only for SSL_ERROR_ZERO_RETURN: the server's close_notify.
    assert re.search(r"^closed$", out, re.M), out
    assert "SSL3 alert read:warning:close notify" in err
    assert "alert read:fatal" not in err and "alert write:fatal" not in err
    quiet_asyncio()


def test_start_server_answers_stdlib_client(pki, quiet_asyncio):
    ctx = server_context("ferrotls", pki.server.cert_path, pki.server.key_path)
    client_ctx = client_context("stdlib", pki.server_ca_path)

    def fetch(port: int) -> dict:
        raw = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        with client_ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while True:
                chunk = tls.recv(4096)  # b"" only for close_notify (a bare TCP EOF raises)
                if not chunk:
                    break
                data += chunk
            cipher = tls.cipher()
            tls.unwrap()  # answers the server's close_notify
        return {"data": data, "cipher": cipher}

    async def main():
        async with AsyncHTTPServer(ctx) as server:
            results = [await asyncio.to_thread(fetch, server.port) for _ in range(3)]
            await server.settle(3)
        return server, results

    server, results = run(main())
    assert not server.errors, server.errors
    for result in results:
        assert result["data"].endswith(b"\r\n\r\n" + BODY) and result["data"].startswith(b"HTTP/1.1 200 OK\r\n")
        assert result["cipher"] == OUR_SUITE
    assert [r["cipher"] for r in server.requests] == [OUR_SUITE] * 3
    quiet_asyncio()


# --------------------------------------------------------------------------------------------
# httpx.AsyncClient(verify=ferrotls context)
# --------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: both requests go over one connection

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
        self.server.seen.append({"cipher": self.request.cipher(), "ferrotls": is_ferrotls_engine(self.request)})

    def log_message(self, *args):
        pass


@pytest.fixture
def threaded_https_server(pki):
    """http.server.ThreadingHTTPServer whose listening socket is wrapped by a ferrotls server
    context (the classic `httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)`)."""
    httpd = http.server.ThreadingHTTPServer((HOST, 0), _Handler)
    httpd.seen = []
    ctx = server_context("ferrotls", pki.server.cert_path, pki.server.key_path)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.mark.parametrize("server_kind", ["asyncio", "threaded"])
def test_httpx_async_client_get(pki, threaded_https_server, quiet_asyncio, server_kind):
    ctx = client_context("ferrotls", pki.server_ca_path)

    async def fetch(port: int):
        async with httpx.AsyncClient(verify=ctx, timeout=IO_TIMEOUT) as client:
            responses = []
            for _ in range(2):
                response = await client.get(f"https://localhost:{port}/x")
                stream = response.extensions["network_stream"]
                responses.append((response.status_code, response.content, response.http_version,
                                  stream.get_extra_info("ssl_object")))
            return responses

    async def main():
        if server_kind == "threaded":
            return await fetch(threaded_https_server.server_address[1]), threaded_https_server.seen
        async with AsyncHTTPServer(server_context("ferrotls", pki.server.cert_path, pki.server.key_path)) as server:
            responses = await fetch(server.port)
            await server.settle(2)
        assert not server.errors, server.errors
        return responses, server.requests

    responses, served = run(main())
    for status, content, version, sslobj in responses:
        assert status == 200
        assert content == BODY
        assert version == "HTTP/1.1"
        assert isinstance(sslobj, ssl.SSLObject) and isinstance(sslobj._sslobj, SSLEngine)
        assert sslobj.context is ctx
        assert sslobj.server_hostname == "localhost"  # httpx passes it to wrap_bio as bytes
        assert sslobj.cipher() == OUR_SUITE
        assert sslobj.getpeercert() == ssl._ssl._test_decode_cert(pki.server.cert_path)
    assert served and all(s["ferrotls"] and s["cipher"] == OUR_SUITE for s in served)
    quiet_asyncio()


def test_httpx_wrap_bio_with_bytes_hostname(pki):
    """What httpx (anyio) does: wrap_bio(incoming, outgoing, False, b"localhost") positionally."""
    ctx = client_context("ferrotls", pki.server_ca_path)
    obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), False, b"localhost")
    std = client_context("stdlib", pki.server_ca_path).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), False, b"localhost")
    assert obj.server_hostname == std.server_hostname == "localhost"
    assert obj.server_side is std.server_side is False
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()


# --------------------------------------------------------------------------------------------
# smtplib STARTTLS
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("server_kind", ["ferrotls", "stdlib"])
def test_smtplib_starttls(pki, server_kind):
    server = StartTLSSMTPServer(server_context(server_kind, pki.server.cert_path, pki.server.key_path))
    ctx = client_context("ferrotls", pki.server_ca_path)
    try:
        with smtplib.SMTP(HOST, server.port, local_hostname="client.test", timeout=IO_TIMEOUT) as smtp:
            code, _ = smtp.ehlo()
            assert code == 250 and smtp.has_extn("starttls")
            code, message = smtp.starttls(context=ctx)  # server_hostname is the IP literal we dialled
            assert (code, message) == (220, b"2.0.0 Ready to start TLS")
            assert isinstance(smtp.sock, ssl.SSLSocket) and is_ferrotls_engine(smtp.sock)
            assert smtp.sock.cipher() == OUR_SUITE
            assert smtp.sock.version() == "TLSv1.2"
            assert smtp.sock.getpeercert() == ssl._ssl._test_decode_cert(pki.server.cert_path)
            code, features = smtp.ehlo()  # EHLO again, over TLS
            assert code == 250
            assert b"8BITMIME" in features and b"STARTTLS" not in features
            assert not smtp.has_extn("starttls")
            assert smtp.noop()[0] == 250
            assert smtp.quit()[0] == 221
        result = server.wait()
    finally:
        server.stop()
    assert result["commands"] == ["ehlo client.test", "STARTTLS", "ehlo client.test", "noop", "quit"]
    assert result["tls"]["cipher"] == OUR_SUITE and result["tls"]["version"] == "TLSv1.2"
    assert result["tls"]["ferrotls"] == (server_kind == "ferrotls")
