"""ferrotls.SSLContext and the engine behind ssl.SSLSocket / ssl.SSLObject, member by member,
against the stdlib's behaviour (DESIGN.md principle 4).

Most tests run the same operation on `ssl.SSLContext` and on `ferrotls.SSLContext` (or a stdlib
and a ferrotls peer on the same connection) and compare. Stdlib peers are limited to TLS 1.2 (what
ferrotls speaks) and keep their default suites (ECDHE); certificates come from trustme (conftest's
`pki`).
"""

from __future__ import annotations

import concurrent.futures
import datetime
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

import ferrotls
from ferrotls.sslobject import SSLEngine

from dropin_async_helpers import (
    HOST,
    IO_TIMEOUT,
    OUR_SUITE,
    OUR_SUITE_NAMES,
    client_context,
    is_ferrotls_engine,
    server_context,
    without_location,
)

KINDS = ["stdlib", "ferrotls"]
CLASSES = {"stdlib": ssl.SSLContext, "ferrotls": ferrotls.SSLContext}
ALL_OURS = ":".join(OUR_SUITE_NAMES)
OPENSSL = shutil.which("openssl") or "openssl"


def both(fn):
    """fn(cls) for the stdlib's SSLContext and for ferrotls's: (stdlib result, ferrotls result)."""
    return fn(ssl.SSLContext), fn(ferrotls.SSLContext)


def outcome(fn, *args, **kwargs):
    """What fn did: ("ok", result) or (exception class, str(exception) without _ssl.c location)."""
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as e:
        return (type(e), without_location(str(e)))


def error_fields(exc: BaseException) -> dict:
    """What clients read from an ssl error."""
    return {
        "class": type(exc),
        "args0": exc.args[0] if exc.args else None,
        "message": without_location(str(exc)),
        "reason": getattr(exc, "reason", None),
        "library": getattr(exc, "library", None),
        "verify_code": getattr(exc, "verify_code", None),
        "verify_message": getattr(exc, "verify_message", None),
    }


def sort_certs(certs: list) -> list:
    return sorted(certs, key=lambda c: c["serialNumber"] if isinstance(c, dict) else c)


# --------------------------------------------------------------------------------------------
# More certificates: expired, another name (for SNI), an encrypted key, CA bundles
# --------------------------------------------------------------------------------------------


class Extra:
    pass


@pytest.fixture(scope="module")
def extra(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("dropin-context")
    e = Extra()
    now = datetime.datetime.now(datetime.timezone.utc)

    def issue(stem, *names, key_type=trustme.KeyType.RSA, **kwargs):
        leaf = pki.server_ca.issue_cert(*names, key_type=key_type, **kwargs)
        cert, key = d / f"{stem}.pem", d / f"{stem}.key"
        for blob in leaf.cert_chain_pems:
            blob.write_to_path(str(cert), append=True)
        leaf.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)

    e.expired = issue("expired", "localhost", "127.0.0.1", not_before=now - datetime.timedelta(days=30),
                      not_after=now - datetime.timedelta(days=1))
    e.alt = issue("alt", "alt.example")  # the certificate an SNI callback switches to
    # An ECDSA (P-256) certificate for the server's names, for the ECDHE-ECDSA suites.
    e.ecdsa = issue("server-ecdsa", "localhost", "127.0.0.1", key_type=trustme.KeyType.ECDSA)
    # The server key, encrypted with a password.
    key = serialization.load_pem_private_key(open(pki.server.key_path, "rb").read(), None)
    e.password = "s3cret pass"
    e.encrypted_key = str(d / "server-encrypted.key")
    with open(e.encrypted_key, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(e.password.encode())))
    # Three CAs as one PEM string and as concatenated DER; a bundle with a CA and a leaf.
    ca_paths = [pki.server_ca_path, pki.client_ca_path, pki.other_ca_path]
    e.ca_pems = [open(p).read() for p in ca_paths]
    e.ca_ders = [ssl.PEM_cert_to_DER_cert(p) for p in e.ca_pems]
    e.mixed_bundle = str(d / "ca-and-leaf.pem")
    with open(e.mixed_bundle, "w") as f:
        f.write(e.ca_pems[0] + open(pki.server.cert_path).read().split("-----END CERTIFICATE-----")[0]
                + "-----END CERTIFICATE-----\n")
    # A capath directory: the server CA under its OpenSSL subject hash.
    e.capath = d / "capath"
    e.capath.mkdir()
    subject_hash = subprocess.run([OPENSSL, "x509", "-hash", "-noout", "-in", pki.server_ca_path],
                                  capture_output=True, text=True, check=True).stdout.strip()
    shutil.copy(pki.server_ca_path, e.capath / f"{subject_hash}.0")
    e.capath = str(e.capath)
    e.garbage = str(d / "garbage.pem")
    with open(e.garbage, "w") as f:
        f.write("this is not a certificate\n")
    e.dir = d
    return e


# --------------------------------------------------------------------------------------------
# Connections: a client and a server on a socketpair or loopback, the server in a thread
# --------------------------------------------------------------------------------------------


class Pair:
    def __init__(self):
        self.client = self.server = None
        self.client_error = self.server_error = None

    def close(self):
        for tls in (self.client, self.server):
            if tls is not None:
                tls.close()


def handshake(client_ctx, server_ctx, server_hostname="localhost", loopback=False, **client_kwargs) -> Pair:
    """Wraps both ends (server in a thread) and runs the handshake; errors are kept, not raised."""
    if loopback:
        listener = socket.create_server((HOST, 0))
        a = socket.create_connection(listener.getsockname(), timeout=IO_TIMEOUT)
        b, _ = listener.accept()
        listener.close()
    else:
        a, b = socket.socketpair()
    a.settimeout(IO_TIMEOUT)
    b.settimeout(IO_TIMEOUT)
    pair = Pair()

    def serve():
        try:
            pair.server = server_ctx.wrap_socket(b, server_side=True)
        except Exception as e:
            pair.server_error = e
            b.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        pair.client = client_ctx.wrap_socket(a, server_hostname=server_hostname, **client_kwargs)
    except Exception as e:
        pair.client_error = e
        a.close()
    thread.join(IO_TIMEOUT)
    assert not thread.is_alive(), "the server's handshake did not end"
    return pair


def exchange(pair: Pair) -> None:
    """Application data both ways."""
    pair.client.sendall(b"ping")
    assert pair.server.recv(16) == b"ping"
    pair.server.sendall(b"pong")
    assert pair.client.recv(16) == b"pong"


# ============================================================================================
# The context: constructor defaults and settings
# ============================================================================================


@pytest.mark.parametrize("protocol,verify_mode,check_hostname", [
    (ssl.PROTOCOL_TLS_CLIENT, ssl.CERT_REQUIRED, True),
    (ssl.PROTOCOL_TLS_SERVER, ssl.CERT_NONE, False),
], ids=["client", "server"])
def test_constructor_defaults(protocol, verify_mode, check_hostname):
    def defaults(cls):
        ctx = cls(protocol)
        return {"protocol": ctx.protocol, "verify_mode": ctx.verify_mode, "check_hostname": ctx.check_hostname,
                "options": ctx.options, "verify_flags": ctx.verify_flags,
                "maximum_version": ctx.maximum_version, "post_handshake_auth": ctx.post_handshake_auth,
                "hostname_checks_common_name": ctx.hostname_checks_common_name,
                "security_level": ctx.security_level, "sni_callback": ctx.sni_callback,
                "keylog_filename": ctx.keylog_filename,
                "types": (type(ctx.verify_mode), type(ctx.options), type(ctx.verify_flags))}

    stdlib, ours = both(defaults)
    assert ours == stdlib
    assert (ours["verify_mode"], ours["check_hostname"]) == (verify_mode, check_hostname)
    assert isinstance(ferrotls.SSLContext(protocol), ssl.SSLContext)


@pytest.mark.parametrize("protocol", [ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLS_SERVER], ids=["client", "server"])
def test_minimum_and_maximum_version_defaults(protocol):
    stdlib, ours = both(lambda cls: (cls(protocol).minimum_version, cls(protocol).maximum_version))
    assert ours == stdlib  # the stdlib: (TLSv1_2, MAXIMUM_SUPPORTED)


def test_minimum_and_maximum_version_setters():
    values = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.MINIMUM_SUPPORTED]

    def run(cls):
        ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
        seen = []
        for v in values:
            ctx.minimum_version = v
            seen.append(("min", ctx.minimum_version))
        for v in [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.MAXIMUM_SUPPORTED]:
            ctx.maximum_version = v
            seen.append(("max", ctx.maximum_version))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            fixed = cls(ssl.PROTOCOL_TLSv1_2)
        seen.append(outcome(setattr, fixed, "minimum_version", ssl.TLSVersion.TLSv1_2))
        seen.append(outcome(setattr, fixed, "maximum_version", ssl.TLSVersion.TLSv1_2))
        return seen

    stdlib, ours = both(run)
    assert ours == stdlib


def test_version_limits_apply_to_the_handshake(pki):
    """maximum_version below TLS 1.2 leaves no protocol: the stdlib and ferrotls both refuse to
    start (NO_PROTOCOLS_AVAILABLE); maximum_version = TLSv1_2 works."""
    server = server_context("stdlib", pki.server.cert_path, pki.server.key_path)
    seen = {}
    for kind in KINDS:
        ctx = client_context(kind, pki.server_ca_path)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1 is deprecated
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        pair = handshake(ctx, server)
        seen[kind] = error_fields(pair.client_error)
        pair.close()
    assert seen["ferrotls"]["reason"] == seen["stdlib"]["reason"] == "NO_PROTOCOLS_AVAILABLE"
    assert seen["ferrotls"] == seen["stdlib"]
    ctx = client_context("ferrotls", pki.server_ca_path)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    pair = handshake(ctx, server)
    assert pair.client.version() == "TLSv1.2"
    pair.close()


def test_verify_mode_and_check_hostname_coupling():
    def run(cls):
        seen = []
        ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
        seen.append(outcome(setattr, ctx, "verify_mode", ssl.CERT_NONE))  # check_hostname is on
        seen.append((ctx.verify_mode, ctx.check_hostname))
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        seen.append((ctx.verify_mode, ctx.check_hostname))
        ctx.check_hostname = True  # upgrades CERT_NONE to CERT_REQUIRED
        seen.append((ctx.verify_mode, ctx.check_hostname))
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.check_hostname = True  # CERT_OPTIONAL stays
        seen.append((ctx.verify_mode, ctx.check_hostname))
        server = cls(ssl.PROTOCOL_TLS_SERVER)
        server.check_hostname = True
        seen.append((server.verify_mode, server.check_hostname))
        seen.append(outcome(setattr, server, "verify_mode", ssl.CERT_NONE))
        return seen

    stdlib, ours = both(run)
    assert stdlib[0] == (ValueError, "Cannot set verify_mode to CERT_NONE when check_hostname is enabled.")
    assert ours == stdlib


def test_invalid_verify_mode_is_a_value_error():
    stdlib, ours = both(lambda cls: outcome(setattr, cls(ssl.PROTOCOL_TLS_CLIENT), "verify_mode", 5))
    assert ours[0] is stdlib[0] is ValueError


def test_options_default_and_set():
    def run(cls):
        ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
        seen = [ctx.options, type(ctx.options)]
        ctx.options |= ssl.OP_NO_TICKET | ssl.OP_IGNORE_UNEXPECTED_EOF
        seen.append(ctx.options)
        ctx.options &= ~ssl.OP_NO_TICKET
        seen.append(ctx.options)
        seen.append(bool(ctx.options & ssl.OP_NO_COMPRESSION))
        return seen

    stdlib, ours = both(run)
    assert ours == stdlib


def test_verify_flags_get_and_set():
    def run(cls):
        ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
        seen = [ctx.verify_flags, type(ctx.verify_flags)]
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
        seen.append(ctx.verify_flags)
        ctx.verify_flags = ssl.VERIFY_DEFAULT
        seen.append(ctx.verify_flags)
        return seen

    stdlib, ours = both(run)
    assert ours == stdlib


def test_setters_refused_by_context_kind():
    def run(cls):
        client, server = cls(ssl.PROTOCOL_TLS_CLIENT), cls(ssl.PROTOCOL_TLS_SERVER)
        return [outcome(setattr, client, "sni_callback", lambda *a: None),
                outcome(setattr, client, "num_tickets", 1),
                outcome(setattr, server, "num_tickets", -1),
                server.num_tickets,
                outcome(setattr, server, "sni_callback", 42)]

    stdlib, ours = both(run)
    assert ours[:4] == stdlib[:4]
    assert ours[4][0] is stdlib[4][0] is TypeError


# ============================================================================================
# The context: trust anchors
# ============================================================================================


def test_load_verify_locations_cafile(pki, extra):
    def run(cls):
        ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(pki.server_ca_path)
        ctx.load_verify_locations(cafile=pki.client_ca_path)
        return sort_certs(ctx.get_ca_certs()), sort_certs(ctx.get_ca_certs(binary_form=True)), ctx.cert_store_stats()

    stdlib, ours = both(run)
    assert ours == stdlib
    assert ours[0][0]["subject"]  # real dicts, the stdlib's shape


def test_cert_store_stats_counts_leaves_and_cas(extra):
    def run(cls):
        ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(extra.mixed_bundle)  # a CA and a leaf
        return ctx.cert_store_stats(), sort_certs(ctx.get_ca_certs())

    stdlib, ours = both(run)
    assert stdlib[0] == {"x509": 2, "crl": 0, "x509_ca": 1}
    assert ours == stdlib


@pytest.mark.parametrize("form", ["pem-str", "der-bytes", "der-bytearray"])
def test_load_verify_locations_cadata(extra, form):
    if form == "pem-str":
        cadata = "".join(extra.ca_pems)
    else:
        cadata = b"".join(extra.ca_ders)
        if form == "der-bytearray":
            cadata = bytearray(cadata)

    def run(cls):
        ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=cadata)
        return sort_certs(ctx.get_ca_certs()), ctx.cert_store_stats()

    stdlib, ours = both(run)
    assert ours == stdlib
    assert ours[1]["x509_ca"] == 3


@pytest.mark.parametrize("peer_kind", KINDS)
def test_load_verify_locations_capath_verifies(pki, extra, peer_kind):
    """A hashed-directory capath: both contexts verify the server through it, and afterwards
    hold the same CA (the stdlib loads capath certificates when first used)."""
    server = server_context(peer_kind, pki.server.cert_path, pki.server.key_path)
    seen = {}
    for kind in KINDS:
        ctx = CLASSES[kind](ssl.PROTOCOL_TLS_CLIENT)
        if kind == "stdlib":
            ctx.set_ciphers(ALL_OURS)
        ctx.load_verify_locations(capath=extra.capath)
        pair = handshake(ctx, server)
        assert pair.client_error is None, pair.client_error
        seen[kind] = (pair.client.getpeercert(), ctx.get_ca_certs())
        pair.close()
    assert seen["ferrotls"] == seen["stdlib"]
    assert seen["ferrotls"][1] == [ssl._ssl._test_decode_cert(pki.server_ca_path)]


def test_load_verify_locations_errors(pki, extra):
    def run(cls):
        ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
        missing = outcome(ctx.load_verify_locations, str(extra.dir / "missing.pem"))[0]
        try:
            ctx.load_verify_locations(extra.garbage)
        except ssl.SSLError as e:
            garbage = error_fields(e)
        return {
            "missing": missing,
            "missing_errno": _errno(ctx, str(extra.dir / "missing.pem")),
            "garbage": garbage,
            "none": outcome(ctx.load_verify_locations),
            "wrong_type": outcome(ctx.load_verify_locations, cadata=42)[0],
            "cadata_garbage_str": outcome(ctx.load_verify_locations, cadata="not a certificate")[0],
            "cadata_garbage_der": outcome(ctx.load_verify_locations, cadata=b"\x30\x82\x01")[0],
            "missing_capath": outcome(ctx.load_verify_locations, capath=str(extra.dir / "no-such-dir")),
            "left_empty": ctx.cert_store_stats(),
        }

    stdlib, ours = both(run)
    assert stdlib["missing"] is FileNotFoundError and stdlib["missing_errno"] == 2
    assert stdlib["garbage"]["class"] is ssl.SSLError
    assert stdlib["cadata_garbage_str"] is stdlib["cadata_garbage_der"] is ssl.SSLError
    assert ours == stdlib


def _errno(ctx, path):
    try:
        ctx.load_verify_locations(path)
    except OSError as e:
        return e.errno


@pytest.mark.parametrize("call", ["load_default_certs", "set_default_verify_paths", "create_default_context"])
def test_default_verify_paths_honour_ssl_cert_file(pki, extra, monkeypatch, call, tmp_path):
    monkeypatch.setenv("SSL_CERT_FILE", pki.server_ca_path)
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))  # empty: nothing from the system

    def run(cls):
        if call == "create_default_context":
            ctx = (ssl if cls is ssl.SSLContext else ferrotls).create_default_context()
        else:
            ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
            getattr(ctx, call)()
        return ctx

    stdlib, ours = both(run)
    assert isinstance(ours, ferrotls.SSLContext)
    assert ours.get_ca_certs() == stdlib.get_ca_certs() == [ssl._ssl._test_decode_cert(pki.server_ca_path)]
    assert ours.cert_store_stats() == stdlib.cert_store_stats()
    pair = handshake(ours, server_context("stdlib", pki.server.cert_path, pki.server.key_path))
    assert pair.client_error is None, pair.client_error
    assert pair.client.cipher() == OUR_SUITE
    pair.close()


# ============================================================================================
# The context: our certificate and key
# ============================================================================================


@pytest.mark.parametrize("password_kind", ["str", "bytes", "bytearray", "callable-str", "callable-bytes"])
def test_load_cert_chain_with_password(pki, extra, password_kind):
    pw = extra.password
    password = {"str": pw, "bytes": pw.encode(), "bytearray": bytearray(pw.encode()),
                "callable-str": lambda: pw, "callable-bytes": lambda: pw.encode()}[password_kind]
    stdlib = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    stdlib.load_cert_chain(pki.server.cert_path, extra.encrypted_key, password)  # the stdlib takes it too
    ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server.cert_path, extra.encrypted_key, password)
    # The key really is usable: serve a stdlib client with it.
    pair = handshake(client_context("stdlib", pki.server_ca_path), ctx)
    assert pair.client_error is None and pair.server_error is None, (pair.client_error, pair.server_error)
    assert is_ferrotls_engine(pair.server)
    exchange(pair)
    pair.close()


def test_load_cert_chain_errors(pki, extra):
    other_key = pki.other_server.key_path

    def run(cls):
        ctx = cls(ssl.PROTOCOL_TLS_SERVER)
        seen = {}
        for name, args in {"wrong-password": (pki.server.cert_path, extra.encrypted_key, "wrong"),
                           "wrong-password-callable": (pki.server.cert_path, extra.encrypted_key, lambda: b"wrong"),
                           "key-mismatch": (pki.server.cert_path, other_key)}.items():
            try:
                ctx.load_cert_chain(*args)
                seen[name] = "loaded"
            except ssl.SSLError as e:
                fields = error_fields(e)
                seen[name] = (fields["class"], fields["args0"], fields["library"], fields["reason"])
        seen["missing"] = outcome(ctx.load_cert_chain, str(extra.dir / "missing.pem"))[0]
        seen["bad-type"] = outcome(ctx.load_cert_chain, pki.server.cert_path, extra.encrypted_key, 42)
        seen["callback-type"] = outcome(ctx.load_cert_chain, pki.server.cert_path, extra.encrypted_key, lambda: 42)
        return seen

    stdlib, ours = both(run)
    assert stdlib["wrong-password"][0] is ssl.SSLError
    assert stdlib["missing"] is FileNotFoundError
    assert ours == stdlib


# ============================================================================================
# The context: cipher suites
# ============================================================================================


def _names(ctx) -> list:
    return [c["name"] for c in ctx.get_ciphers() if c["name"] in OUR_SUITE_NAMES]


# The stdlib's own default cipher string (CPython's _DEFAULT_CIPHERS, OpenSSL 3).
STDLIB_DEFAULT_CIPHERS = "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"


@pytest.mark.parametrize("spec", [
    "AES128-GCM-SHA256",
    "AES256-SHA:AES128-GCM-SHA256",
    "AES128-SHA256,AES256-GCM-SHA384",
    "AES128-SHA AES256-SHA",
    "AES256",
    "AES128",
    "ALL:@STRENGTH",
    "kRSA:-AES128:AES128",
    "kRSA:-AES128:AES128:-ECDHE",
    "kRSA:+AES256",
    "AES128-GCM-SHA256:@SECLEVEL=1",
    "AES128-GCM-SHA256:NOT-A-SUITE",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-CHACHA20-POLY1305:AES128-SHA",
    "ALL:!kRSA",
    "ALL:-AES",
    "CHACHA20",
    "CHACHA20:AESGCM",
    "AES256:CHACHA20",
    "ECDHE:@STRENGTH",
    "HIGH:!kRSA:+CHACHA20",
    "kRSA:ECDHE",
    STDLIB_DEFAULT_CIPHERS,
])
def test_set_ciphers_openssl_names_and_lists(spec):
    stdlib, ours = both(lambda cls: _names(_set(cls, spec)))
    assert ours == stdlib and ours


@pytest.mark.parametrize("spec", ["kRSA", "RSA", "aRSA", "AESGCM", "HIGH",
                                  "DEFAULT", "ALL", "kRSA+AESGCM", "RSA:!AESGCM",
                                  "SHA256", "SHA1", "SHA", "SHA384", "HIGH:!aNULL:!MD5", "TLSv1.2", "SSLv3",
                                  "TLSv1.0", "TLSv1", "ECDHE", "kECDHE",
                                  "EECDH", "kEECDH", "ECDH", "aECDSA", "ECDSA", "ECDHE+AESGCM", "AESGCM+ECDHE",
                                  "aRSA:!kRSA", "ALL:!ECDHE", "!kRSA:ALL"])
def test_set_ciphers_aliases_select_the_same_suites(spec):
    stdlib, ours = both(lambda cls: set(_names(_set(cls, spec))))
    assert ours == stdlib and ours


@pytest.mark.parametrize("spec", ["kRSA", "AESGCM", "HIGH", "SHA1", "ECDHE", "aRSA", "aECDSA", "ALL", "CHACHA20:AES"])
def test_set_ciphers_aliases_keep_the_stdlib_order(spec):
    """OpenSSL orders an alias's suites by its default preference (strongest first); the order is
    what a client offers and what a server prefers."""
    stdlib, ours = both(lambda cls: _names(_set(cls, spec)))
    assert ours == stdlib


@pytest.mark.parametrize("spec,expected", [
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", ["AES128-GCM-SHA256"]),
    ("TLS_RSA_WITH_AES_256_CBC_SHA:TLS_RSA_WITH_AES_128_CBC_SHA256", ["AES256-SHA", "AES128-SHA256"]),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384,AES128-SHA", ["AES256-GCM-SHA384", "AES128-SHA"]),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
     ["ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-SHA"]),
])
def test_set_ciphers_iana_names(spec, expected):
    ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(spec)
    assert [c["name"] for c in ctx.get_ciphers()] == expected


@pytest.mark.parametrize("spec", ["NOPE", "", "!ALL", "TLS_AES_128_GCM_SHA256", "NOPE:ALSO-NOPE", "!kRSA:!RSA",
                                  "!kRSA:!kECDHE"])
def test_set_ciphers_nothing_selected(spec):
    def run(cls):
        ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
        ctx.set_ciphers("AES128-SHA:ECDHE-RSA-AES128-SHA")
        try:
            ctx.set_ciphers(spec)
        except ssl.SSLError as e:
            return (type(e), e.args), _names(ctx)
        return "accepted", _names(ctx)

    stdlib, ours = both(run)
    assert ours[0] == stdlib[0] == (ssl.SSLError, ("No cipher can be selected.",))
    # What is left differs: OpenSSL installs the empty TLS 1.2 selection before it reports the
    # error (the stdlib context keeps only its TLS 1.3 suites); ferrotls, which speaks TLS 1.2
    # only, keeps its previous suites.
    assert stdlib[1] == []
    assert ours[1] == ["AES128-SHA", "ECDHE-RSA-AES128-SHA"]


@pytest.mark.parametrize("spec", ["ECDHE-PSK-AES128-CBC-SHA", "aNULL", "eNULL", "CAMELLIA", "ARIA", "AESCCM", "PSK",
                                  "kDHE", "DHE-RSA-AES128-GCM-SHA256", "ALL:!kRSA:!ECDHE"])
def test_set_ciphers_selecting_none_of_our_suites(spec):
    """Strings the stdlib accepts for suites ferrotls does not speak: ferrotls refuses them with
    the stdlib's own error for an empty selection, and keeps its previous suites."""
    ctx = ferrotls.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("AES128-SHA")
    with pytest.raises(ssl.SSLError) as info:
        ctx.set_ciphers(spec)
    assert info.value.args == ("No cipher can be selected.",)
    assert _names(ctx) == ["AES128-SHA"]
    stdlib = _set(ssl.SSLContext, spec)  # the stdlib selects other suites ...
    assert stdlib.get_ciphers() and _names(stdlib) == []  # ... none of them ours


def test_get_ciphers_entries_equal_the_stdlib(pki):
    stdlib, ours = both(lambda cls: {c["name"]: c for c in _set(cls, ALL_OURS).get_ciphers()})
    assert list(ours) == OUR_SUITE_NAMES
    for name in OUR_SUITE_NAMES:
        assert ours[name] == stdlib[name], name
    assert set(ours[OUR_SUITE_NAMES[0]]) == {"id", "name", "protocol", "description", "strength_bits", "alg_bits",
                                            "aead", "symmetric", "digest", "kea", "auth"}


def _set(cls, spec):
    ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(spec)
    return ctx


@pytest.mark.parametrize("direction", ["ferrotls-client", "ferrotls-server"])
@pytest.mark.parametrize("suite", OUR_SUITE_NAMES)
def test_cipher_and_version_agree_with_the_stdlib_peer(pki, extra, suite, direction):
    """set_ciphers restricts the handshake; both ends report the same cipher() and version().
    The server holds an RSA and an ECDSA certificate and serves each suite with the right one."""
    client_kind, server_kind = ("ferrotls", "stdlib") if direction == "ferrotls-client" else ("stdlib", "ferrotls")
    client = client_context(client_kind, pki.server_ca_path)
    client.set_ciphers(suite)
    server = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
    server.load_cert_chain(*extra.ecdsa)
    server.set_ciphers(ALL_OURS)
    pair = handshake(client, server)
    assert pair.client_error is None and pair.server_error is None, (pair.client_error, pair.server_error)
    assert pair.client.cipher() == pair.server.cipher()
    assert pair.client.cipher()[0] == suite
    assert pair.client.version() == pair.server.version() == "TLSv1.2"
    leaf = pair.client.getpeercert(True)
    assert leaf == (pki.server.leaf_der if "-ECDSA-" not in suite else ssl.PEM_cert_to_DER_cert(open(extra.ecdsa[0]).read()))
    exchange(pair)
    pair.close()


# ============================================================================================
# The engine: what a connection reports
# ============================================================================================


@pytest.mark.parametrize("server_kind", KINDS)
def test_getpeercert_equals_the_stdlib_clients(pki, server_kind):
    """A stdlib client and a ferrotls client against the same server see the same certificate."""
    server = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
    seen = {}
    for kind in KINDS:
        pair = handshake(client_context(kind, pki.server_ca_path), server)
        assert pair.client_error is None, pair.client_error
        seen[kind] = (pair.client.getpeercert(), pair.client.getpeercert(True), pair.server.getpeercert())
        pair.close()
    assert seen["ferrotls"] == seen["stdlib"]
    assert seen["ferrotls"][0] == ssl._ssl._test_decode_cert(pki.server.cert_path)
    assert seen["ferrotls"][1] == pki.server.leaf_der
    assert seen["ferrotls"][2] is None  # the client sent no certificate


def test_getpeercert_without_verification_is_empty(pki):
    server = server_context("stdlib", pki.server.cert_path, pki.server.key_path)
    seen = {}
    for kind in KINDS:
        ctx = client_context(kind)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        pair = handshake(ctx, server)
        seen[kind] = (pair.client.getpeercert(), pair.client.getpeercert(True))
        pair.close()
    assert seen["ferrotls"] == seen["stdlib"] == ({}, pki.server.leaf_der)


def test_client_certificate_as_the_server_sees_it(pki):
    """A server requiring client certificates: ferrotls's server reports the client's
    certificate as the stdlib's server does."""
    seen = {}
    for kind in KINDS:
        server = server_context(kind, pki.server.cert_path, pki.server.key_path)
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_verify_locations(pki.client_ca_path)
        client = client_context("stdlib", pki.server_ca_path)
        client.load_cert_chain(pki.client.cert_path, pki.client.key_path)
        pair = handshake(client, server)
        assert pair.server_error is None, pair.server_error
        seen[kind] = (pair.server.getpeercert(), pair.server.getpeercert(True))
        pair.close()
    assert seen["ferrotls"] == seen["stdlib"]
    assert seen["ferrotls"][1] == pki.client.leaf_der


def test_shared_ciphers_equal_the_stdlib_servers(pki):
    """The same client offer to a stdlib and a ferrotls server (same suite list): the same
    shared_ciphers() on the server; None on the client, as in the stdlib."""
    seen = {}
    for kind in KINDS:
        client = client_context("stdlib", pki.server_ca_path)
        client.set_ciphers("AES256-GCM-SHA384:AES128-SHA:AES128-GCM-SHA256")
        server = server_context(kind, pki.server.cert_path, pki.server.key_path)
        server.set_ciphers(ALL_OURS)
        pair = handshake(client, server)
        seen[kind] = ([c for c in pair.server.shared_ciphers() if c[0] in OUR_SUITE_NAMES], pair.client.shared_ciphers(),
                      pair.server.cipher())
        pair.close()
    assert seen["ferrotls"] == seen["stdlib"]
    assert [c[0] for c in seen["ferrotls"][0]] == ["AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA"]
    ferro_client = client_context("ferrotls", pki.server_ca_path)
    pair = handshake(ferro_client, server_context("stdlib", pki.server.cert_path, pki.server.key_path))
    assert pair.client.shared_ciphers() is None
    pair.close()


@pytest.mark.parametrize("client_protocols,server_protocols", [
    (["h2", "http/1.1"], ["http/1.1", "h2"]),
    (["h2", "http/1.1"], ["h2"]),
    (["h2"], None),
    (None, ["h2"]),
])
def test_selected_alpn_protocol(pki, client_protocols, server_protocols):
    """Every pairing of stdlib and ferrotls ends chooses what two stdlib ends choose."""
    seen = {}
    for client_kind in KINDS:
        for server_kind in KINDS:
            client = client_context(client_kind, pki.server_ca_path)
            server = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
            if client_protocols:
                client.set_alpn_protocols(client_protocols)
            if server_protocols:
                server.set_alpn_protocols(server_protocols)
            pair = handshake(client, server)
            assert pair.client_error is None and pair.server_error is None, (pair.client_error, pair.server_error)
            seen[client_kind, server_kind] = (pair.client.selected_alpn_protocol(), pair.server.selected_alpn_protocol())
            pair.close()
    expected = seen["stdlib", "stdlib"]
    assert seen == dict.fromkeys(seen, expected)


@pytest.mark.parametrize("client_kind", KINDS)
def test_alpn_without_a_common_protocol_is_no_application_protocol(pki, client_kind):
    """RFC 7301 3.2: a ferrotls server that shares no protocol with the client ends the
    handshake with no_application_protocol (the stdlib's server would carry on without ALPN)."""
    client = client_context(client_kind, pki.server_ca_path)
    client.set_alpn_protocols(["h2"])
    server = server_context("ferrotls", pki.server.cert_path, pki.server.key_path)
    server.set_alpn_protocols(["spdy/3"])
    pair = handshake(client, server)
    assert isinstance(pair.server_error, ssl.SSLError) and pair.server_error.reason == "NO_APPLICATION_PROTOCOL"
    assert isinstance(pair.client_error, ssl.SSLError)
    assert "alert no application protocol" in str(pair.client_error)  # OpenSSL 3.0 gives no reason here
    if client_kind == "ferrotls":
        assert pair.client_error.reason == "TLSV1_ALERT_NO_APPLICATION_PROTOCOL", pair.client_error
    pair.close()


@pytest.mark.parametrize("peer_kind", KINDS)
def test_channel_binding_compression_pending(pki, peer_kind):
    client = client_context("ferrotls", pki.server_ca_path)
    server = server_context(peer_kind, pki.server.cert_path, pki.server.key_path)
    a, b = socket.socketpair()
    before = client.wrap_socket(a, server_hostname="localhost", do_handshake_on_connect=False)
    assert before.get_channel_binding("tls-unique") is None  # as the stdlib: nothing before the handshake
    assert before.cipher() is None and before.version() is None and before.session_reused is False
    with pytest.raises(ValueError, match="handshake not done yet"):
        before.getpeercert()
    before.close()
    b.close()

    pair = handshake(client, server)
    c, s = pair.client, pair.server
    assert is_ferrotls_engine(c)
    cb = c.get_channel_binding("tls-unique")
    assert cb == c.get_channel_binding() == s.get_channel_binding("tls-unique")
    assert isinstance(cb, bytes) and len(cb) == 12  # a TLS 1.2 Finished verify_data
    assert c.compression() is None and s.compression() is None
    s.sendall(b"0123456789")
    assert c.recv(4) == b"0123"
    assert c.pending() == 6
    assert c.recv(100) == b"456789"
    assert c.pending() == 0
    pair.close()


def test_channel_binding_unknown_type_message(pki):
    seen = {}
    for kind in KINDS:
        pair = handshake(client_context(kind, pki.server_ca_path),
                         server_context("stdlib", pki.server.cert_path, pki.server.key_path))
        seen[kind] = outcome(pair.client.get_channel_binding, "tls-server-end-point")
        pair.close()
    assert seen["stdlib"] == (ValueError, "'tls-server-end-point' channel binding type not implemented")
    assert seen["ferrotls"] == seen["stdlib"]


def test_channel_binding_equals_the_stdlib_peers_across_modes(pki):
    """tls-unique is the first Finished: the client's on a full handshake. Both ends agree,
    whichever end is ferrotls."""
    for client_kind, server_kind in [("ferrotls", "stdlib"), ("stdlib", "ferrotls"), ("ferrotls", "ferrotls")]:
        pair = handshake(client_context(client_kind, pki.server_ca_path),
                         server_context(server_kind, pki.server.cert_path, pki.server.key_path))
        assert pair.client.get_channel_binding() == pair.server.get_channel_binding(), (client_kind, server_kind)
        pair.close()


@pytest.mark.parametrize("client_kind,server_kind", [("ferrotls", "stdlib"), ("ferrotls", "ferrotls"),
                                                     ("stdlib", "ferrotls")])
def test_session_resumption(pki, client_kind, server_kind):
    client = client_context(client_kind, pki.server_ca_path)
    server = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
    first = handshake(client, server, loopback=True)
    exchange(first)
    session = first.client.session
    assert first.client.session_reused is False and first.server.session_reused is False
    assert session is not None and session.has_ticket
    first_cb = first.client.get_channel_binding()
    first.close()

    second = handshake(client, server, loopback=True, session=session)
    assert second.client_error is None, second.client_error
    exchange(second)
    assert second.client.session_reused is True
    assert second.server.session_reused is True
    assert second.client.cipher() == second.server.cipher()
    # tls-unique on a resumed handshake is the server's Finished; both ends still agree.
    assert second.client.get_channel_binding() == second.server.get_channel_binding() != first_cb
    third = handshake(client, server, loopback=True, session=second.client.session)
    assert third.client.session_reused and third.server.session_reused
    second.close()
    third.close()


@pytest.mark.parametrize("request_line", [b"GET / HTTP/1.1", b"POST /x HTTP/1.1", b"HEAD / HTTP/1.0",
                                          b"PUT /x HTTP/1.1", b"CONNECT example.com:443 HTTP/1.1", b"OPTIONS * HTTP/1.1"])
def test_plaintext_http_to_a_server_fails_as_in_the_stdlib(pki, thread_servers, request_line):
    """A plain HTTP request to a TLS server: OpenSSL's HTTP_REQUEST or HTTPS_PROXY_REQUEST, and no
    alert back, for the methods OpenSSL recognises; other bytes get its usual failure."""
    seen = {}
    for kind in KINDS:
        ctx = server_context(kind, pki.server.cert_path, pki.server.key_path)

        def handle(sock, ctx=ctx):
            sock.settimeout(IO_TIMEOUT)
            try:
                ctx.wrap_socket(sock, server_side=True)
            except ssl.SSLError as e:
                return type(e).__name__, e.reason, str(e)

        server = thread_servers(handle)
        with socket.create_connection((HOST, server.port), timeout=IO_TIMEOUT) as sock:
            sock.sendall(request_line + b"\r\nHost: localhost\r\n\r\n")
            try:  # both libraries leave the request unread: closing may reset the connection
                sock.shutdown(socket.SHUT_WR)
                answer = sock.recv(100)
            except (ConnectionResetError, OSError):
                answer = b""
        seen[kind] = (server.wait(1)[0], answer[:1])
    assert seen["ferrotls"] == seen["stdlib"], seen


def test_client_to_a_plaintext_server_fails_as_in_the_stdlib(pki):
    """A TLS client talking to a plain HTTP server reads "HTTP/1.1 400 ...": OpenSSL's famous
    WRONG_VERSION_NUMBER, without an alert to the server."""
    seen = {}
    for kind in KINDS:
        listener = socket.create_server((HOST, 0))
        received = []

        def plain_http():
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(IO_TIMEOUT)
                received.append(conn.recv(4096))
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                try:
                    received.append(conn.recv(4096))  # what the client sent after our answer
                except OSError:  # the client is gone already
                    received.append(b"")

        thread = threading.Thread(target=plain_http)
        thread.start()
        ctx = client_context(kind, pki.server_ca_path)
        with socket.create_connection(listener.getsockname(), timeout=IO_TIMEOUT) as sock:
            err = outcome(ctx.wrap_socket, sock, server_hostname="localhost")
        thread.join(IO_TIMEOUT)
        listener.close()
        assert received[0][:1] == b"\x16"  # a ClientHello record
        seen[kind] = (err, received[1])
    assert seen["ferrotls"] == seen["stdlib"] == ((ssl.SSLError, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), b""), seen


@pytest.mark.parametrize("server_kind", KINDS)
def test_session_id_names_the_ticket(pki, server_kind):
    """As OpenSSL's client does, a session that came with a ticket is named by the ticket's
    SHA-256 (so a ticket-only server still gives the session an ID), for both clients alike."""
    import hashlib

    server = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
    ids = {}
    for client_kind in KINDS:
        pair = handshake(client_context(client_kind, pki.server_ca_path), server, loopback=True)
        exchange(pair)
        session = pair.client.session
        assert session.has_ticket and len(session.id) == 32, (client_kind, session.id)
        ids[client_kind] = session
        pair.close()
    assert ids["ferrotls"].id == hashlib.sha256(ids["ferrotls"]._session.ticket).digest()


def test_session_setter_errors_match_the_stdlib(pki):
    def run(kind):
        client = client_context(kind, pki.server_ca_path)
        a, b = socket.socketpair()
        fresh = client.wrap_socket(a, server_hostname="localhost", do_handshake_on_connect=False)
        seen = [outcome(setattr, fresh, "session", "not a session")]
        fresh.close()
        b.close()
        pair = handshake(client, server_context("stdlib", pki.server.cert_path, pki.server.key_path))
        seen.append(outcome(setattr, pair.client, "session", pair.client.session))  # after the handshake
        pair.close()
        return seen

    stdlib, ours = run("stdlib"), run("ferrotls")
    assert stdlib == [(TypeError, "Value is not a SSLSession."), (ValueError, "Cannot set session after handshake.")]
    assert ours == stdlib


def test_server_side_server_hostname_and_context_setter(pki):
    client = client_context("ferrotls", pki.server_ca_path)
    server = server_context("ferrotls", pki.server.cert_path, pki.server.key_path)
    pair = handshake(client, server)
    c, s = pair.client, pair.server
    assert isinstance(c, ssl.SSLSocket) and isinstance(c._sslobj, SSLEngine)
    assert (c.server_side, c.server_hostname) == (False, "localhost")
    assert (s.server_side, s.server_hostname) == (True, None)
    assert c.context is client and s.context is server
    other = client_context("ferrotls", pki.server_ca_path)
    c.context = other
    assert c.context is other and c._sslobj.context is other
    exchange(pair)
    pair.close()
    # The same attributes on SSLObject (BIO mode), against the stdlib's.
    for kind in KINDS:
        obj = client_context(kind, pki.server_ca_path).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
        srv = server_context(kind, pki.server.cert_path, pki.server.key_path).wrap_bio(
            ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
        assert (obj.server_side, obj.server_hostname, srv.server_side, srv.server_hostname) == (False, "localhost", True, None)
    with pytest.raises(ValueError, match="check_hostname requires server_hostname"):
        client_context("ferrotls", pki.server_ca_path).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())


# ============================================================================================
# The engine: non-blocking sockets, BIOs, timeouts, EOFs
# ============================================================================================


@pytest.mark.parametrize("client_kind,server_kind", [("ferrotls", "stdlib"), ("stdlib", "ferrotls"),
                                                     ("ferrotls", "ferrotls")])
def test_non_blocking_handshake_with_select(pki, client_kind, server_kind):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    c = client_context(client_kind, pki.server_ca_path).wrap_socket(a, server_hostname="localhost",
                                                                   do_handshake_on_connect=False)
    s = server_context(server_kind, pki.server.cert_path, pki.server.key_path).wrap_socket(
        b, server_side=True, do_handshake_on_connect=False)
    wants = {"client": [], "server": []}
    done = {"client": False, "server": False}
    deadline = time.monotonic() + IO_TIMEOUT
    while not all(done.values()):
        assert time.monotonic() < deadline, "the non-blocking handshake did not finish"
        for name, tls in (("client", c), ("server", s)):
            if done[name]:
                continue
            try:
                tls.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError as e:
                wants[name].append(e.args[0])
                assert isinstance(e, ssl.SSLError) and e.args[0] == ssl.SSL_ERROR_WANT_READ == 2
        select.select([c, s], [], [], 0.5)
    ours = "client" if client_kind == "ferrotls" else "server"
    assert wants[ours] and set(wants[ours]) == {2}
    assert c.cipher() == s.cipher() == OUR_SUITE
    with pytest.raises(ssl.SSLWantReadError) as info:
        (c if ours == "client" else s).recv(10)  # nothing there yet
    assert info.value.args[0] == 2
    c.sendall(b"abc")
    select.select([s], [], [], IO_TIMEOUT)
    assert s.recv(10) == b"abc"
    c.close()
    s.close()


def pump(*bios) -> bool:
    """Moves what each (outgoing, incoming) pair holds; True if anything moved."""
    moved = False
    for outgoing, incoming in bios:
        data = outgoing.read()
        if data:
            incoming.write(data)
            moved = True
    return moved


@pytest.mark.parametrize("ferro_side", ["client", "server"])
def test_bio_pair_with_a_stdlib_sslobject(pki, ferro_side):
    client_kind, server_kind = ("ferrotls", "stdlib") if ferro_side == "client" else ("stdlib", "ferrotls")
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client_context(client_kind, pki.server_ca_path).wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server_context(server_kind, pki.server.cert_path, pki.server.key_path).wrap_bio(s_in, s_out, server_side=True)
    ours = c if ferro_side == "client" else s
    assert isinstance(ours, ssl.SSLObject) and isinstance(ours._sslobj, SSLEngine)
    links = ((c_out, s_in), (s_out, c_in))

    with pytest.raises(ssl.SSLWantReadError) as info:
        c.do_handshake()  # the ClientHello is written; the answer is not there yet
    assert info.value.args[0] == 2
    done = {"c": False, "s": False}
    for _ in range(10):
        for name, obj in (("s", s), ("c", c)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            pump(*links)
        if all(done.values()):
            break
    assert all(done.values())
    assert c.cipher() == s.cipher() == OUR_SUITE and c.version() == s.version() == "TLSv1.2"
    assert c.get_channel_binding() == s.get_channel_binding()
    assert c.getpeercert() == ssl._ssl._test_decode_cert(pki.server.cert_path)

    c.write(b"from the client")
    pump(*links)
    assert s.read(1024) == b"from the client"
    s.write(b"from the server" * 100)
    pump(*links)
    assert c.read(5) == b"from "
    assert c.pending() == 1495
    assert c.read(2000) == b"the server" + b"from the server" * 99
    with pytest.raises(ssl.SSLWantReadError):
        c.read(10)

    # unwrap: our close_notify goes out; until the peer's arrives, SSLWantReadError.
    with pytest.raises(ssl.SSLWantReadError) as info:
        ours.unwrap()
    assert info.value.args[0] == 2
    with pytest.raises(ssl.SSLWantReadError):
        ours.unwrap()
    peer = s if ours is c else c
    pump(*links)
    assert peer.read(10) == b""  # the close_notify
    peer.unwrap()
    pump(*links)
    assert ours.unwrap() is None
    with pytest.raises(ssl.SSLZeroReturnError):  # both have closed: as the stdlib
        ours.read(10)


@pytest.mark.parametrize("role", ["client", "server"])
def test_handshake_timeout_message_matches_the_stdlib(pki, role):
    """A peer that never answers: the handshake ends in TimeoutError after the socket's timeout,
    with the stdlib's message."""
    seen = {}
    for kind in KINDS:
        a, b = socket.socketpair()  # b stays silent
        a.settimeout(0.3)
        start = time.monotonic()
        try:
            if role == "client":
                client_context(kind, pki.server_ca_path).wrap_socket(a, server_hostname="localhost")
            else:
                server_context(kind, pki.server.cert_path, pki.server.key_path).wrap_socket(a, server_side=True)
        except Exception as e:
            seen[kind] = (type(e), without_location(str(e)), isinstance(e, socket.timeout))
        elapsed = time.monotonic() - start
        a.close()
        b.close()
        assert 0.25 < elapsed < 5
    assert seen["stdlib"] == (TimeoutError, "The handshake operation timed out", True)
    assert seen["ferrotls"] == seen["stdlib"]


def test_read_timeout_message_matches_the_stdlib(pki):
    seen = {}
    for kind in KINDS:
        pair = handshake(client_context(kind, pki.server_ca_path),
                         server_context("stdlib", pki.server.cert_path, pki.server.key_path))
        pair.client.settimeout(0.2)
        seen[kind] = outcome(pair.client.recv, 10)
        pair.close()
    assert seen["stdlib"] == (TimeoutError, "The read operation timed out")
    assert seen["ferrotls"] == seen["stdlib"]


def _eof_after_handshake(client_kind, pki, options=0):
    """The server (stdlib) sends b"x", then closes TCP without close_notify; what the client's
    second recv (suppress_ragged_eofs=False) does."""
    client = client_context(client_kind, pki.server_ca_path)
    client.options |= options
    pair = handshake(client, server_context("stdlib", pki.server.cert_path, pki.server.key_path),
                     suppress_ragged_eofs=False)
    pair.server.sendall(b"x")
    socket.socket.shutdown(pair.server, socket.SHUT_RDWR)  # TCP EOF, no close_notify
    pair.server.close()
    assert pair.client.recv(10) == b"x"
    try:
        return pair.client.recv(10)
    except Exception as e:
        return e
    finally:
        pair.client.close()


def test_tcp_eof_without_close_notify_raises_ssleoferror(pki):
    seen = {kind: _eof_after_handshake(kind, pki) for kind in KINDS}
    for kind in KINDS:
        assert isinstance(seen[kind], ssl.SSLEOFError), seen[kind]
        assert seen[kind].args[0] == ssl.SSL_ERROR_EOF == 8
    assert seen["ferrotls"].reason == seen["stdlib"].reason == "UNEXPECTED_EOF_WHILE_READING"
    assert seen["ferrotls"].library == seen["stdlib"].library


def test_tcp_eof_message_matches_the_stdlib(pki):
    seen = {kind: error_fields(_eof_after_handshake(kind, pki)) for kind in KINDS}
    assert seen["stdlib"]["message"] == "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol"
    assert seen["ferrotls"] == seen["stdlib"]


def test_tcp_eof_is_a_clean_close_with_op_ignore_unexpected_eof(pki):
    seen = {kind: _eof_after_handshake(kind, pki, ssl.OP_IGNORE_UNEXPECTED_EOF) for kind in KINDS}
    assert seen == {"stdlib": b"", "ferrotls": b""}


def test_tcp_eof_during_the_handshake(pki):
    """The server reads the ClientHello and closes its side without an answer."""
    seen = {}
    for kind in KINDS:
        a, b = socket.socketpair()
        a.settimeout(IO_TIMEOUT)
        b.shutdown(socket.SHUT_WR)  # EOF for the client; its ClientHello can still be sent
        try:
            client_context(kind, pki.server_ca_path).wrap_socket(a, server_hostname="localhost")
        except Exception as e:
            seen[kind] = (type(e), e.args[0], getattr(e, "reason", None), getattr(e, "library", None))
        assert b.recv(5)[:1] == b"\x16"  # a handshake record did arrive
        a.close()
        b.close()
    assert seen["stdlib"] == (ssl.SSLEOFError, 8, "UNEXPECTED_EOF_WHILE_READING", "SSL")
    assert seen["ferrotls"] == seen["stdlib"]


@pytest.mark.parametrize("peer_kind", KINDS)
def test_close_notify_makes_read_return_empty(pki, peer_kind):
    pair = handshake(client_context("ferrotls", pki.server_ca_path),
                     server_context(peer_kind, pki.server.cert_path, pki.server.key_path),
                     suppress_ragged_eofs=False)
    pair.server.sendall(b"last words")
    unwrapped = {}

    def server_unwrap():
        unwrapped["sock"] = pair.server.unwrap()  # sends close_notify, waits for ours

    thread = threading.Thread(target=server_unwrap)
    thread.start()
    assert pair.client.recv(100) == b"last words"
    assert pair.client.recv(100) == b""  # b"" only for close_notify: suppress_ragged_eofs=False
    assert pair.client.recv(100) == b""
    raw = pair.client.unwrap()
    thread.join(IO_TIMEOUT)
    assert raw is pair.client  # as the stdlib: the socket object, now without TLS
    assert pair.client._sslobj is None
    assert "sock" in unwrapped
    raw.close()
    unwrapped["sock"].close()


# ============================================================================================
# The engine: alerts and verification failures
# ============================================================================================


@pytest.mark.parametrize("case", ["unknown-ca", "expired", "hostname", "ip-address"])
def test_verification_failure_matches_the_stdlib(pki, extra, case):
    """The same failing setup with a stdlib client and a ferrotls client: the same
    SSLCertVerificationError (verify_code, verify_message, message), and the same alert
    reported by the (stdlib) server."""
    cert, key, cafile, hostname = {
        "unknown-ca": (pki.server.cert_path, pki.server.key_path, pki.other_ca_path, "localhost"),
        "expired": (extra.expired[0], extra.expired[1], pki.server_ca_path, "localhost"),
        "hostname": (pki.server.cert_path, pki.server.key_path, pki.server_ca_path, "example.com"),
        "ip-address": (pki.server.cert_path, pki.server.key_path, pki.server_ca_path, "127.0.0.2"),
    }[case]
    expected_code = {"unknown-ca": 20, "expired": 10, "hostname": 62, "ip-address": 64}[case]
    seen = {}
    for kind in KINDS:
        pair = handshake(client_context(kind, cafile), server_context("stdlib", cert, key), server_hostname=hostname)
        seen[kind] = (error_fields(pair.client_error), error_fields(pair.server_error))
        pair.close()
    assert seen["stdlib"][0]["class"] is ssl.SSLCertVerificationError
    assert seen["stdlib"][0]["verify_code"] == expected_code
    assert seen["ferrotls"][0] == seen["stdlib"][0]
    assert seen["ferrotls"][1] == seen["stdlib"][1]  # the alert we sent, as the server reports it


@pytest.mark.parametrize("case", ["unknown-ca", "expired"])
def test_peer_alert_reason_matches_the_stdlib(pki, extra, case):
    """A stdlib client rejects the server's certificate and sends a fatal alert: a ferrotls
    server raises the SSLError a stdlib server raises (reason TLSV1_ALERT_UNKNOWN_CA, ...)."""
    cert, key, cafile = {
        "unknown-ca": (pki.server.cert_path, pki.server.key_path, pki.other_ca_path),
        "expired": (extra.expired[0], extra.expired[1], pki.server_ca_path),
    }[case]
    seen = {}
    for kind in KINDS:
        pair = handshake(client_context("stdlib", cafile), server_context(kind, cert, key))
        assert isinstance(pair.client_error, ssl.SSLCertVerificationError)
        seen[kind] = error_fields(pair.server_error)
        pair.close()
    assert seen["stdlib"]["reason"] == {"unknown-ca": "TLSV1_ALERT_UNKNOWN_CA",
                                        "expired": "SSLV3_ALERT_CERTIFICATE_EXPIRED"}[case]
    assert seen["ferrotls"] == seen["stdlib"]


# ============================================================================================
# The engine: SNI
# ============================================================================================


@pytest.mark.parametrize("server_kind", KINDS)
def test_no_sni_for_ip_literals(pki, server_kind):
    """server_hostname="127.0.0.1" is verified against the IP SAN but not sent as SNI; a name is."""
    seen = {}
    for client_kind in KINDS:
        names = []
        server = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
        server.sni_callback = lambda sock, name, ctx: names.append(name)
        for host in ("127.0.0.1", "localhost"):
            pair = handshake(client_context(client_kind, pki.server_ca_path), server, server_hostname=host)
            assert pair.client_error is None, pair.client_error
            pair.close()
        seen[client_kind] = names
    assert seen["stdlib"] == [None, "localhost"]
    assert seen["ferrotls"] == seen["stdlib"]


@pytest.mark.parametrize("client_kind", KINDS)
def test_sni_callback_switches_the_context(pki, extra, client_kind):
    """Setting sslobj.context in the callback serves the other context's certificate."""
    seen = {}
    for server_kind in KINDS:
        server = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
        alt = server_context(server_kind, *extra.alt)
        calls = []

        def callback(sock, name, ctx, server=server, alt=alt, calls=calls):
            calls.append((type(sock), name, ctx is server))
            if name == "alt.example":
                sock.context = alt

        server.sni_callback = callback
        results = []
        for host in ("alt.example", "localhost"):
            pair = handshake(client_context(client_kind, pki.server_ca_path), server, server_hostname=host)
            assert pair.client_error is None and pair.server_error is None, (pair.client_error, pair.server_error)
            results.append((pair.client.getpeercert()["subjectAltName"], pair.server.context is alt))
            exchange(pair)
            pair.close()
        seen[server_kind] = (results, calls)
    assert seen["stdlib"][0] == [((("DNS", "alt.example"),), True),
                                 ((("DNS", "localhost"), ("IP Address", "127.0.0.1")), False)]
    assert seen["ferrotls"] == seen["stdlib"]


def test_sni_callback_alert_reaches_the_client(pki):
    """A callback returning an alert number: the client gets that alert (as from a stdlib server)."""
    seen = {}
    for server_kind in KINDS:
        server = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
        server.sni_callback = lambda sock, name, ctx: ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        pair = handshake(client_context("ferrotls", pki.server_ca_path), server)
        seen[server_kind] = error_fields(pair.client_error)
        assert isinstance(pair.server_error, ssl.SSLError)
        pair.close()
    assert seen["stdlib"]["reason"] == "TLSV1_UNRECOGNIZED_NAME"
    assert seen["ferrotls"] == seen["stdlib"]


def test_sni_callback_alert_as_the_server_reports_it(pki):
    """The server's own error when its callback refused the name: the stdlib reports OpenSSL's
    CALLBACK_FAILED."""
    seen = {}
    for server_kind in KINDS:
        server = server_context(server_kind, pki.server.cert_path, pki.server.key_path)
        server.sni_callback = lambda sock, name, ctx: ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        pair = handshake(client_context("stdlib", pki.server_ca_path), server)
        seen[server_kind] = error_fields(pair.server_error)
        pair.close()
    assert seen["stdlib"]["reason"] == "CALLBACK_FAILED"
    assert seen["ferrotls"] == seen["stdlib"]


# ============================================================================================
# The engine: key log, session statistics, threads
# ============================================================================================


NSS_LINE = re.compile(r"^CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}$")


def _keylog_lines(path) -> list:
    """The CLIENT_RANDOM lines of an NSS key log (an OpenSSL client also logs "RSA <encrypted
    premaster prefix> <premaster>" lines for RSA key exchange; comments start with "#")."""
    with open(path) as f:
        return [line.strip() for line in f if line.startswith("CLIENT_RANDOM ")]


def test_keylog_file_header_as_the_stdlib_writes_it(tmp_path):
    """Setting keylog_filename starts a new file with CPython's comment line, once."""
    for kind in ("stdlib", "ferrotls"):
        path = tmp_path / f"{kind}.log"
        for _ in range(2):
            client_context(kind, None).keylog_filename = str(path)
    assert (tmp_path / "ferrotls.log").read_text() == (tmp_path / "stdlib.log").read_text()
    assert (tmp_path / "ferrotls.log").read_text().startswith("# TLS secrets log file")


def test_keylog_client_matches_openssl_s_server(pki, openssl_server, tmp_path):
    ours, theirs = tmp_path / "ours.log", tmp_path / "theirs.log"
    server = openssl_server("-keylogfile", str(theirs))
    ctx = client_context("ferrotls", pki.server_ca_path)
    ctx.keylog_filename = str(ours)
    assert ctx.keylog_filename == str(ours)
    with ctx.wrap_socket(socket.create_connection((HOST, server.port), timeout=IO_TIMEOUT),
                         server_hostname="localhost") as tls:
        tls.sendall(b"keylog\n")
        assert tls.recv(100) == b"golyek\n"
    server.finish()
    assert len(_keylog_lines(ours)) == 1 and NSS_LINE.match(_keylog_lines(ours)[0])
    assert _keylog_lines(ours) == _keylog_lines(theirs)


def test_keylog_server_matches_openssl_s_client(pki, s_client, thread_servers, tmp_path):
    ours, theirs = tmp_path / "ours.log", tmp_path / "theirs.log"
    ctx = server_context("ferrotls", pki.server.cert_path, pki.server.key_path)
    ctx.keylog_filename = str(ours)

    def handle(sock):
        with ctx.wrap_socket(sock, server_side=True) as tls:
            line = tls.recv(100)
            tls.sendall(line.upper())
            tls.unwrap()  # close_notify both ways: s_client -ign_eof exits cleanly
            return line

    server = thread_servers(handle)
    for _ in range(2):
        run = s_client(server.port, "-servername", "localhost", "-keylogfile", str(theirs), "-ign_eof",
                       input=b"hello\n")
        assert run.returncode == 0 and "HELLO" in run.stdout, run.output
    server.wait(2)
    assert len(_keylog_lines(ours)) == 2 and all(NSS_LINE.match(line) for line in _keylog_lines(ours))
    assert _keylog_lines(ours) == _keylog_lines(theirs)


def _stats_run(kind, pki, options=0):
    """Three connections from one stdlib client context: a full handshake, then two resumed."""
    server = server_context(kind, pki.server.cert_path, pki.server.key_path)
    server.options |= options
    client = client_context("stdlib", pki.server_ca_path)
    session = None
    for _ in range(3):
        pair = handshake(client, server, loopback=True, session=session)
        exchange(pair)
        session = pair.client.session
        pair.close()
    keys = ("accept", "accept_good", "hits", "misses", "connect", "connect_good", "timeouts", "cache_full")
    return {k: server.session_stats()[k] for k in keys}, {k: client.session_stats()[k] for k in ("connect", "connect_good")}


def test_session_stats_accept_and_hits(pki):
    stdlib, ours = _stats_run("stdlib", pki), _stats_run("ferrotls", pki)
    for stats in (stdlib, ours):
        assert stats[0]["accept"] == stats[0]["accept_good"] == 3
        assert stats[0]["hits"] == 2
        assert stats[1] == {"connect": 3, "connect_good": 3}


def test_session_stats_equal_the_stdlib(pki):
    """OpenSSL counts a miss only for a session a client proposed that the server could not
    find; a client proposing nothing is no miss."""
    stdlib, ours = _stats_run("stdlib", pki), _stats_run("ferrotls", pki)
    assert stdlib[0]["misses"] == 0
    assert ours == stdlib


def test_contexts_shared_by_many_threads(pki, thread_servers):
    """10 client threads x 5 connections through one ferrotls client context, served by one
    ferrotls server context from a thread per connection; each thread resumes its sessions."""
    server_ctx = server_context("ferrotls", pki.server.cert_path, pki.server.key_path)
    client_ctx = client_context("ferrotls", pki.server_ca_path)

    def handle(sock):
        with server_ctx.wrap_socket(sock, server_side=True) as tls:
            data = b""
            while not data.endswith(b"\n"):
                chunk = tls.recv(1024)
                assert chunk
                data += chunk
            tls.sendall(data[::-1])
            return tls.session_reused

    server = thread_servers(handle)

    def client(n):
        session = None
        results = []
        for i in range(5):
            raw = socket.create_connection((HOST, server.port), timeout=IO_TIMEOUT)
            with client_ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                message = f"thread {n} connection {i} ".encode() * 50 + b"\n"
                tls.sendall(message)
                reply = b""
                while len(reply) < len(message):
                    chunk = tls.recv(4096)
                    assert chunk
                    reply += chunk
                assert reply == message[::-1]
                results.append((tls.session_reused, tls.cipher()))
                session = tls.session
        return results

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(client, range(10), timeout=60))
    reused = server.wait(50)
    for per_thread in results:
        assert [r[0] for r in per_thread] == [False, True, True, True, True]
        assert all(r[1] == OUR_SUITE for r in per_thread)
    assert sorted(reused) == [False] * 10 + [True] * 40
    stats = server_ctx.session_stats()
    assert (stats["accept"], stats["accept_good"], stats["hits"]) == (50, 50, 40)
    assert client_ctx.session_stats()["connect_good"] == 50


@pytest.mark.parametrize("protocol", [ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLS_SERVER], ids=["client", "server"])
def test_default_ciphers_are_the_stdlibs(protocol):
    """By default a context offers the stdlib's TLS 1.2 suites in the stdlib's order (forward
    secret, no RSA key exchange, no SHA-1), less the finite-field DHE ones ferrotls does not
    implement; set_ciphers() reaches the RSA key exchange."""
    stdlib = [c["name"] for c in ssl.SSLContext(protocol).get_ciphers()
              if c["protocol"] == "TLSv1.2" and not c["name"].startswith("DHE-")]
    ours = ferrotls.SSLContext(protocol)
    assert [c["name"] for c in ours.get_ciphers()] == stdlib
    ours.set_ciphers("AES128-GCM-SHA256")
    assert [c["name"] for c in ours.get_ciphers()] == ["AES128-GCM-SHA256"]


def test_has_tlsv1_3_tells_the_truth():
    """ferrotls speaks TLS 1.2 only for now: its HAS_TLSv1_3 says so (the stdlib's describes
    the stdlib's OpenSSL), and TLS 1.2 is there."""
    assert ferrotls.HAS_TLSv1_3 is False
    assert ferrotls.HAS_TLSv1_2 is True
