"""Hostile or broken input at the handshake, beside the stdlib (issue 12): malformed peer
certificates, a server name callback returning anything, a file descriptor where a path goes.

Malformed peer certificates go through real handshakes.
A certificate whose public key cannot be read (an unknown algorithm OID, a SubjectPublicKeyInfo
that is not valid DER) or whose version is unknown, correctly signed by a trusted CA, is sent by
a ferrotls peer whose credential has that certificate in place of its own. The side under test
is a stdlib context (the reference) or a ferrotls one; both must end the handshake with the same
ssl exception class and reason, and the peer must get an alert, not a reset or a timeout:

- validated (a server asking for client certificates, a client with CERT_REQUIRED):
  SSLCertVerificationError, and bad_certificate to the peer;
- not validated (a client with CERT_NONE): SSLError UNABLE_TO_FIND_PUBLIC_KEY_PARAMETERS, and
  internal_error to the peer.

A version-6 certificate is where the two differ: OpenSSL reads it and accepts it, cryptography
refuses to read it (RFC 5280 4.1.2.1 defines v1 to v3 only), so ferrotls refuses it the same
ways, deliberately.
"""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

import der_surgery as surgery
import ferrotls
from dropin_async_helpers import HOST, IO_TIMEOUT

IMPLS = ["stdlib", "ferrotls"]
VERSION, SPKI = 0, 6  # positions in TBSCertificate
UNKNOWN_ALGORITHM = surgery.der(0x30, surgery.der(0x30, surgery.der(0x06, bytes.fromhex("2b0601040182371501")) + b"\x05\x00")
                                + surgery.der(0x03, b"\x00\x01\x02\x03"))
RSA_KEY_NOT_DER = surgery.der(0x30, bytes.fromhex("300d06092a864886f70d0101010500") + surgery.der(0x03, b"\x00\x30\x03\x02\x01"))
BROKEN = {"unknown-key-algorithm": (SPKI, UNKNOWN_ALGORITHM), "key-not-der": (SPKI, RSA_KEY_NOT_DER)}
VERSION_6 = (VERSION, surgery.der(0xA0, surgery.der(0x02, b"\x05")))


def resigned(identity, ca, position: int, value: bytes) -> bytes:
    """The identity's leaf with one TBSCertificate element replaced, signed again by its CA."""
    leaf = x509.load_pem_x509_certificate(open(identity.cert_path, "rb").read()).public_bytes(serialization.Encoding.DER)
    parts = surgery.elements(leaf)
    tbs = surgery.elements(parts[0])
    tbs[position] = value
    body = surgery.der(0x30, b"".join(tbs))
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    signature = ca_key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return surgery.der(0x30, body + parts[1] + surgery.der(0x03, b"\x00" + signature))


def context(impl: str, server: bool) -> ssl.SSLContext:
    cls = ferrotls.SSLContext if impl == "ferrotls" else ssl.SSLContext
    ctx = cls(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def sending(ctx: ssl.SSLContext, identity, der: bytes) -> ssl.SSLContext:
    """A ferrotls context whose credential sends `der` as its leaf certificate."""
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    ctx._credentials[0].chain_der[0] = der
    return ctx


def outcome(fn):
    """"ok", or (exception class name, reason) of fn()."""
    try:
        fn()
        return "ok"
    except ssl.SSLError as e:
        return type(e).__name__, e.reason
    except Exception as e:  # the failure these tests exist for: anything else escaping
        return type(e).__name__, str(e)


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> dict:
    """Both ends' outcomes of one handshake (and one byte each way) over loopback."""
    listener = socket.create_server((HOST, 0))
    result = {}

    def serve():
        conn, _ = listener.accept()
        conn.settimeout(IO_TIMEOUT)

        def run():
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(tls.recv(1))

        result["server"] = outcome(run)
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    sock = socket.create_connection(listener.getsockname(), timeout=IO_TIMEOUT)

    def run():
        with client_ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"x")
            assert tls.recv(1) == b"x"

    result["client"] = outcome(run)
    sock.close()
    thread.join(IO_TIMEOUT)
    listener.close()
    return result


VERIFY_FAILED = ("SSLCertVerificationError", "CERTIFICATE_VERIFY_FAILED")
BAD_CERTIFICATE_ALERT = ("SSLError", "SSLV3_ALERT_BAD_CERTIFICATE")
NO_KEY = ("SSLError", "UNABLE_TO_FIND_PUBLIC_KEY_PARAMETERS")
INTERNAL_ERROR_ALERT = ("SSLError", "TLSV1_ALERT_INTERNAL_ERROR")


@pytest.mark.parametrize("verify_mode", [ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED], ids=["optional", "required"])
@pytest.mark.parametrize("broken", list(BROKEN))
@pytest.mark.parametrize("impl", IMPLS)
def test_server_validating_a_client_certificate(impl, broken, verify_mode, pki):
    server = context(impl, server=True)
    server.load_cert_chain(pki.server.cert_path, pki.server.key_path)
    server.verify_mode = verify_mode
    server.load_verify_locations(pki.client_ca_path)
    client = context("ferrotls", server=False)
    client.load_verify_locations(pki.server_ca_path)
    sending(client, pki.client, resigned(pki.client, pki.client_ca, *BROKEN[broken]))
    assert handshake(server, client) == {"server": VERIFY_FAILED, "client": BAD_CERTIFICATE_ALERT}


@pytest.mark.parametrize("verify_mode", [ssl.CERT_NONE, ssl.CERT_REQUIRED], ids=["none", "required"])
@pytest.mark.parametrize("broken", list(BROKEN))
@pytest.mark.parametrize("impl", IMPLS)
def test_client_given_a_server_certificate(impl, broken, verify_mode, pki):
    server = sending(context("ferrotls", server=True), pki.server, resigned(pki.server, pki.server_ca, *BROKEN[broken]))
    client = context(impl, server=False)
    client.load_verify_locations(pki.server_ca_path)
    if verify_mode == ssl.CERT_NONE:
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        expected = {"client": NO_KEY, "server": INTERNAL_ERROR_ALERT}
    else:
        expected = {"client": VERIFY_FAILED, "server": BAD_CERTIFICATE_ALERT}
    assert handshake(server, client) == expected


def test_version_6_certificates_are_refused(pki):
    """OpenSSL accepts a version-6 certificate; ferrotls refuses it like the others (see the
    module's docstring), with an alert to the peer in each role."""
    client = sending(context("ferrotls", server=False), pki.client, resigned(pki.client, pki.client_ca, *VERSION_6))
    client.load_verify_locations(pki.server_ca_path)
    server = context("ferrotls", server=True)
    server.load_cert_chain(pki.server.cert_path, pki.server.key_path)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(pki.client_ca_path)
    assert handshake(server, client) == {"server": VERIFY_FAILED, "client": BAD_CERTIFICATE_ALERT}

    server = sending(context("ferrotls", server=True), pki.server, resigned(pki.server, pki.server_ca, *VERSION_6))
    unverified = context("ferrotls", server=False)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    assert handshake(server, unverified) == {"client": NO_KEY, "server": INTERNAL_ERROR_ALERT}


@pytest.mark.parametrize("impl", IMPLS)
def test_a_server_loop_survives_a_client_with_a_broken_certificate(impl, pki):
    """The one-packet denial of service: a server loop that catches ssl.SSLError and OSError
    (as socketserver does) serves the next client after one sending a broken certificate."""
    server = context(impl, server=True)
    server.load_cert_chain(pki.server.cert_path, pki.server.key_path)
    server.verify_mode = ssl.CERT_OPTIONAL
    server.load_verify_locations(pki.client_ca_path)
    listener = socket.create_server((HOST, 0))
    served = []

    def loop():
        for _ in range(2):
            conn, _ = listener.accept()
            conn.settimeout(IO_TIMEOUT)
            try:
                with server.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(tls.recv(5))
                    served.append(True)
            except (ssl.SSLError, OSError):
                served.append(False)
            finally:
                conn.close()

    thread = threading.Thread(target=loop)
    thread.start()
    broken = context("ferrotls", server=False)
    broken.load_verify_locations(pki.server_ca_path)
    sending(broken, pki.client, resigned(pki.client, pki.client_ca, *BROKEN["unknown-key-algorithm"]))
    good = context("ferrotls", server=False)
    good.load_verify_locations(pki.server_ca_path)
    for ctx in (broken, good):
        with socket.create_connection(listener.getsockname(), timeout=IO_TIMEOUT) as sock:
            try:
                with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
                    tls.sendall(b"hello")
                    assert tls.recv(5) == b"hello"
            except ssl.SSLError:
                assert ctx is broken
    thread.join(IO_TIMEOUT)
    listener.close()
    assert served == [False, True]


@pytest.mark.parametrize("broken", list(BROKEN))
def test_get_server_certificate_of_a_broken_certificate(broken, pki):
    """ferrotls.get_server_certificate (CERT_NONE) fails as the stdlib's does."""
    server = sending(context("ferrotls", server=True), pki.server, resigned(pki.server, pki.server_ca, *BROKEN[broken]))
    listener = socket.create_server((HOST, 0))
    results = []

    def serve():
        for _ in IMPLS:
            conn, _ = listener.accept()
            conn.settimeout(IO_TIMEOUT)
            try:
                server.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                pass
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    for get in (ssl.get_server_certificate, ferrotls.get_server_certificate):
        results.append(outcome(lambda: get(listener.getsockname())))  # (3.9's has no timeout)
    thread.join(IO_TIMEOUT)
    listener.close()
    assert results == [NO_KEY, NO_KEY]


@pytest.mark.parametrize("value", [ssl.ALERT_DESCRIPTION_ACCESS_DENIED, 115, 999, -1, "not an alert"],
                         ids=["access_denied", "unknown_psk_identity", "999", "-1", "str"])
@pytest.mark.parametrize("impl", IMPLS)
def test_sni_callback_returning_any_value(impl, value, pki):
    """A server name callback's return value: CALLBACK_FAILED here, and to the stdlib client
    the alert OpenSSL sends for it (that alert if OpenSSL knows it, none for 999 and -1,
    internal_error for a value that is not an int)."""
    server = context(impl, server=True)
    server.load_cert_chain(pki.server.cert_path, pki.server.key_path)
    server.sni_callback = lambda sock, name, ctx: value
    client = context("stdlib", server=False)
    client.load_verify_locations(pki.server_ca_path)
    result = handshake(server, client)
    # No alert for 999 and -1: the connection just ends, which the client's OpenSSL reports as
    # an EOF (3.0) or a clean close (1.1.1, under Python 3.9).
    ended = {("SSLEOFError", "UNEXPECTED_EOF_WHILE_READING"), ("SSLZeroReturnError", None)}
    expected_client = {
        ssl.ALERT_DESCRIPTION_ACCESS_DENIED: {("SSLError", "TLSV1_ALERT_ACCESS_DENIED")},
        115: {("SSLError", None)},  # a received unknown_psk_identity: CPython has no name for it
        999: ended,
        -1: ended,
        "not an alert": {INTERNAL_ERROR_ALERT},
    }[value]
    assert result["server"] == ("SSLError", "CALLBACK_FAILED")
    assert result["client"] in expected_client, result


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("where", ["certfile", "keyfile", "cafile", "capath"])
def test_a_file_descriptor_is_not_a_path(impl, where, pki):
    """An integer where a path goes is a TypeError worded as the stdlib's, and the descriptor
    (here a pipe whose writer stays open: reading it would block forever) is left alone."""
    import os

    read_end, write_end = os.pipe()
    try:
        ctx = context(impl, server=True)
        call = {
            "certfile": lambda: ctx.load_cert_chain(read_end),
            "keyfile": lambda: ctx.load_cert_chain(pki.server.cert_path, read_end),
            "cafile": lambda: ctx.load_verify_locations(read_end),
            "capath": lambda: ctx.load_verify_locations(capath=read_end),
        }[where]
        with pytest.raises(TypeError, match=f"^{where} should be a valid filesystem path$"):
            call()
        os.fstat(read_end)  # still open
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("length", [(1 << 18) + 1, 0xFFFFFF], ids=["256KiB+1", "16MiB-1"])
@pytest.mark.parametrize("impl", IMPLS)
def test_a_handshake_message_too_large_to_accept(impl, length, pki):
    """A ClientHello whose header claims more than ferrotls accepts (256 KiB, beyond OpenSSL's
    ClientHello limit too): the server fails at once with EXCESSIVE_MESSAGE_SIZE and an
    illegal_parameter alert, without waiting for (or buffering) the rest."""
    import struct

    server = context(impl, server=True)
    server.load_cert_chain(pki.server.cert_path, pki.server.key_path)
    listener = socket.create_server((HOST, 0))
    result = {}

    def serve():
        conn, _ = listener.accept()
        conn.settimeout(IO_TIMEOUT)
        result["server"] = outcome(lambda: server.wrap_socket(conn, server_side=True))
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    with socket.create_connection(listener.getsockname(), timeout=IO_TIMEOUT) as sock:
        body = bytes([1]) + length.to_bytes(3, "big") + bytes(1000)
        sock.sendall(struct.pack("!BHH", 22, 0x0301, len(body)) + body)
        alert = sock.recv(100)
    thread.join(IO_TIMEOUT)
    listener.close()
    assert result["server"] == ("SSLError", "EXCESSIVE_MESSAGE_SIZE")
    assert alert[:1] == b"\x15" and alert[-2:] == bytes([2, 47])  # fatal illegal_parameter


@pytest.mark.parametrize("impl", IMPLS)
def test_asyncio_server_handshake_timeout(impl, pki):
    """asyncio.start_server(ssl=..., ssl_handshake_timeout=0.5) and a client that connects and
    then trickles its ClientHello too slowly: the server drops it at about 0.5 s."""
    import asyncio
    import time

    server_ctx = context(impl, server=True)
    server_ctx.load_cert_chain(pki.server.cert_path, pki.server.key_path)
    c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    hello_side = context("stdlib", server=False).wrap_bio(c_in, c_out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        hello_side.do_handshake()
    hello = c_out.read()

    async def main():
        handled = []

        async def handle(reader, writer):
            handled.append(True)
            writer.close()

        server = await asyncio.start_server(handle, HOST, 0, ssl=server_ctx, ssl_handshake_timeout=0.5)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(HOST, port)
        started = time.monotonic()
        for byte in hello:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
            if reader.at_eof() or writer.is_closing():
                break
            try:
                if await asyncio.wait_for(reader.read(1), 0.001) == b"":
                    break
            except asyncio.TimeoutError:
                pass
        took = time.monotonic() - started
        writer.close()
        server.close()
        await server.wait_closed()
        return took, handled

    took, handled = asyncio.run(main())
    assert not handled and 0.4 < took < 2.0, took


@pytest.mark.parametrize("behaviour", ["raises", "returns-a-str"])
@pytest.mark.parametrize("impl", IMPLS)
def test_sni_callback_failure_goes_to_the_unraisable_hook(impl, behaviour, pki, monkeypatch):
    """An exception from the server name callback, or a return value that is not an int, is
    reported to sys.unraisablehook (exception type and object as CPython gives them), and the
    handshake fails with CALLBACK_FAILED."""
    import sys

    def callback(sock, name, ctx):
        if behaviour == "raises":
            raise ZeroDivisionError("in the callback")
        return "not an alert"

    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: reported.append(unraisable))
    server = context(impl, server=True)
    server.load_cert_chain(pki.server.cert_path, pki.server.key_path)
    server.sni_callback = callback
    client = context("stdlib", server=False)
    client.load_verify_locations(pki.server_ca_path)
    assert handshake(server, client)["server"] == ("SSLError", "CALLBACK_FAILED")
    (unraisable,) = reported
    if behaviour == "raises":
        assert unraisable.exc_type is ZeroDivisionError and unraisable.object is callback
    else:
        assert unraisable.exc_type is TypeError and unraisable.object == "not an alert"
