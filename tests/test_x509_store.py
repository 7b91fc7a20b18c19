"""Trust stores, path validation and its OpenSSL-style errors, checked against the openssl binary."""

from __future__ import annotations

import datetime
import re
import ssl
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ferrotls.x509 import (
    CertificateVerifyError,
    TrustStore,
    describe_chain,
    oneline_name,
    verify_client_chain,
    verify_server_chain,
)

PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER
UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC)
PAST = (datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1))  # validity of an expired leaf


def cert_of(blob: trustme.Blob) -> x509.Certificate:
    return x509.load_pem_x509_certificate(blob.bytes())


def ders(leaf: trustme.LeafCert) -> list[bytes]:
    return [cert_of(b).public_bytes(DER) for b in leaf.cert_chain_pems]


def store_of(*cas: trustme.CA) -> TrustStore:
    store = TrustStore()
    for ca in cas:
        store.add_pem(ca.cert_pem.bytes())
    return store


@pytest.fixture(scope="module")
def root() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def inter(root: trustme.CA) -> trustme.CA:
    return root.create_child_ca()


@pytest.fixture(scope="module")
def server(inter: trustme.CA) -> trustme.LeafCert:
    """localhost, 127.0.0.1 and ::1, issued by the intermediate; chain PEMs are leaf, intermediate."""
    return inter.issue_cert("localhost", "127.0.0.1", "::1")


def make_cert(issuer: trustme.CA, *, cn: str = "leaf", eku: list | None = None,  # type: ignore[type-arg]
              name: x509.Name | None = None, self_signed: bool = False) -> x509.Certificate:
    """A leaf made directly with cryptography, for cases trustme does not cover."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_cert = cert_of(issuer.cert_pem)
    issuer_key = key if self_signed else serialization.load_pem_private_key(issuer.private_key_pem.bytes(), None)
    subject = name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(subject if self_signed else issuer_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=30))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False))
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


# --- the store ------------------------------------------------------------------------------


def test_store_loading(tmp_path: Path, root: trustme.CA, inter: trustme.CA) -> None:
    other = trustme.CA()
    store = TrustStore()
    store.add_pem(root.cert_pem.bytes())
    store.add_pem(root.cert_pem.bytes().decode())  # str is accepted; duplicates are dropped
    store.add_der(cert_of(inter.cert_pem).public_bytes(DER))
    assert len(store) == 2
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"comment\n" + other.cert_pem.bytes() + root.cert_pem.bytes())
    store.load_file(bundle)
    assert store.certificates == [cert_of(root.cert_pem), cert_of(inter.cert_pem), cert_of(other.cert_pem)]
    subjects = [c.subject.public_bytes() for c in store.certificates]
    assert store.subject_names_der() == subjects


def test_store_subject_names_deduplicated(root: trustme.CA) -> None:
    store = store_of(root)
    twin = make_cert(root, name=cert_of(root.cert_pem).subject, self_signed=True)  # same name, new key
    store.add_der(twin.public_bytes(DER))
    assert len(store) == 2
    assert store.subject_names_der() == [cert_of(root.cert_pem).subject.public_bytes()]


def test_store_directory(tmp_path: Path, root: trustme.CA) -> None:
    others = [trustme.CA() for _ in range(3)]
    (tmp_path / "a.pem").write_bytes(root.cert_pem.bytes())
    (tmp_path / "b.crt").write_bytes(others[0].cert_pem.bytes())
    (tmp_path / "1a2b3c4d.0").write_bytes(others[1].cert_pem.bytes())  # c_rehash style name
    (tmp_path / "ignored.txt").write_bytes(others[2].cert_pem.bytes())
    (tmp_path / "junk.pem").write_bytes(b"not a certificate")
    (tmp_path / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    (tmp_path / "sub.pem").mkdir()
    store = TrustStore()
    store.load_directory(tmp_path)
    assert {c.subject for c in store.certificates} == {cert_of(ca.cert_pem).subject for ca in [root, *others[:2]]}
    store.load_directory(tmp_path / "missing")  # like the stdlib's capath: nothing added, no error
    assert len(store) == 3


def test_store_errors(tmp_path: Path) -> None:
    store = TrustStore()
    with pytest.raises(ssl.SSLError, match="no certificate or crl found") as excinfo:
        store.add_pem(b"nothing here")
    assert excinfo.value.args[0] == 136
    assert excinfo.value.reason == "NO_CERTIFICATE_OR_CRL_FOUND"  # type: ignore[attr-defined]
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    with pytest.raises(ssl.SSLError, match="malformed certificate"):
        store.add_pem(broken)
    store.add_pem(broken + trustme.CA().cert_pem.bytes(), strict=False)
    assert len(store) == 1
    with pytest.raises(ssl.SSLError, match="malformed certificate"):
        store.add_der(b"\x30\x03\x02\x01\x01")
    with pytest.raises(FileNotFoundError):
        store.load_file(tmp_path / "missing.pem")


# --- validation -----------------------------------------------------------------------------


def test_server_chain_with_intermediate(root: trustme.CA, inter: trustme.CA, server: trustme.LeafCert) -> None:
    path = verify_server_chain(store_of(root), ders(server), "localhost")
    assert path == [cert_of(server.cert_chain_pems[0]), cert_of(inter.cert_pem), cert_of(root.cert_pem)]
    assert verify_server_chain(store_of(root), ders(server), "LocalHost")[0] == path[0]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_ip_address_san(root: trustme.CA, server: trustme.LeafCert, address: str) -> None:
    assert len(verify_server_chain(store_of(root), ders(server), address)) == 3


def test_idna_hostname(root: trustme.CA) -> None:
    leaf = root.issue_cert("bücher.example")  # trustme stores the A-label xn--bcher-kva.example
    for name in ["bücher.example", "xn--bcher-kva.example"]:
        assert len(verify_server_chain(store_of(root), ders(leaf), name)) == 2


def test_no_hostname_skips_the_name_check(root: trustme.CA, server: trustme.LeafCert) -> None:
    assert len(verify_server_chain(store_of(root), ders(server), None)) == 3


def test_client_chain(root: trustme.CA, inter: trustme.CA) -> None:
    client = inter.issue_cert("client@example.org")
    path = verify_client_chain(store_of(root), ders(client))
    assert path[-1] == cert_of(root.cert_pem) and len(path) == 3


def expect(code: int, alert: str, depth: int, call, *args) -> CertificateVerifyError:  # type: ignore[no-untyped-def]
    with pytest.raises(CertificateVerifyError) as excinfo:
        call(*args)
    err = excinfo.value
    assert (err.verify_code, err.alert, err.depth) == (code, alert, depth), err
    assert str(err).startswith("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: " + err.verify_message)
    return err


def test_unknown_ca(server: trustme.LeafCert) -> None:
    err = expect(20, "unknown_ca", 1, verify_server_chain, store_of(trustme.CA()), ders(server), "localhost")
    assert err.verify_message == "unable to get local issuer certificate"
    # An empty store fails the same way.
    expect(20, "unknown_ca", 1, verify_server_chain, TrustStore(), ders(server), "localhost")


def test_missing_intermediate(root: trustme.CA, server: trustme.LeafCert) -> None:
    expect(20, "unknown_ca", 0, verify_server_chain, store_of(root), ders(server)[:1], "localhost")


def test_expired_and_not_yet_valid(root: trustme.CA, inter: trustme.CA) -> None:
    old = inter.issue_cert("localhost", not_before=PAST[0], not_after=PAST[1])
    err = expect(10, "certificate_expired", 0, verify_server_chain, store_of(root), ders(old), "localhost")
    assert err.verify_message == "certificate has expired"
    future = inter.issue_cert("localhost", not_before=NOW + datetime.timedelta(days=1))
    expect(9, "bad_certificate", 0, verify_client_chain, store_of(root), ders(future))
    # The validation time is an argument (naive means UTC): then the leaf is fine.
    later = (NOW + datetime.timedelta(days=2)).replace(tzinfo=None)
    assert len(verify_server_chain(store_of(root), ders(future), "localhost", now=later)) == 3


def test_hostname_mismatch(root: trustme.CA, server: trustme.LeafCert) -> None:
    err = expect(62, "bad_certificate", 0, verify_server_chain, store_of(root), ders(server), "example.com")
    assert err.verify_message == "hostname mismatch"
    expect(62, "bad_certificate", 0, verify_server_chain, store_of(root), ders(server), "not a host name!")
    expect(64, "bad_certificate", 0, verify_server_chain, store_of(root), ders(server), "10.0.0.1")


def test_self_signed(root: trustme.CA, inter: trustme.CA, server: trustme.LeafCert) -> None:
    other = store_of(trustme.CA())
    expect(18, "unknown_ca", 0, verify_server_chain, other, [cert_of(root.cert_pem).public_bytes(DER)], "localhost")
    full = ders(server) + [cert_of(root.cert_pem).public_bytes(DER)]
    expect(19, "unknown_ca", 2, verify_server_chain, other, full, "localhost")
    # ... and the same chain is fine once its root is trusted.
    assert len(verify_server_chain(store_of(root), full, "localhost")) == 3


def test_bad_signature(root: trustme.CA, server: trustme.LeafCert) -> None:
    chain = ders(server)
    tampered = bytearray(chain[0])
    tampered[-3] ^= 1  # inside the signature value
    expect(7, "decrypt_error", 0, verify_server_chain, store_of(root), [bytes(tampered), chain[1]], "localhost")


def test_purpose(root: trustme.CA) -> None:
    server_only = make_cert(root, eku=[ExtendedKeyUsageOID.SERVER_AUTH]).public_bytes(DER)
    client_only = make_cert(root, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]).public_bytes(DER)
    err = expect(26, "unsupported_certificate", 0, verify_client_chain, store_of(root), [server_only])
    assert err.verify_message == "unsuitable certificate purpose"
    expect(26, "unsupported_certificate", 0, verify_server_chain, store_of(root), [client_only], "localhost")
    assert len(verify_server_chain(store_of(root), [server_only], "localhost")) == 2


def test_alerts_are_tls_alerts() -> None:
    from ferrotls.protocol.alerts import AlertDescription
    from ferrotls.x509.path import VERIFY_ERRORS

    for code, (message, alert) in VERIFY_ERRORS.items():
        assert AlertDescription[alert] and message and CertificateVerifyError(code).alert == alert


def test_garbage_and_empty_chains(root: trustme.CA) -> None:
    expect(1, "bad_certificate", 0, verify_server_chain, store_of(root), [b"junk"], "localhost")
    expect(1, "bad_certificate", 0, verify_client_chain, store_of(root), [])


# --- against the openssl binary -------------------------------------------------------------


def openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=10)
    return done.stdout + done.stderr


def openssl_verify(tmp_path: Path, store: list[bytes], chain: list[bytes], *opts: str) -> tuple[int, int] | None:
    """``openssl verify``'s first (code, depth), or None when it verifies."""
    def pem(name: str, certs: list[bytes]) -> str:
        path = tmp_path / name
        path.write_bytes(b"".join(x509.load_der_x509_certificate(d).public_bytes(PEM) for d in certs))
        return str(path)

    args = ["verify", "-CAfile", pem("ca.pem", store), *opts]
    if chain[1:]:
        args += ["-untrusted", pem("untrusted.pem", chain[1:])]
    out = openssl(*args, pem("leaf.pem", chain[:1]))
    found = re.search(r"error (\d+) at (\d+) depth lookup", out)
    assert found or ": OK" in out, out
    return (int(found.group(1)), int(found.group(2))) if found else None


def test_codes_match_openssl(tmp_path: Path, root: trustme.CA, inter: trustme.CA, server: trustme.LeafCert) -> None:
    root_der = cert_of(root.cert_pem).public_bytes(DER)
    other_der = cert_of(trustme.CA().cert_pem).public_bytes(DER)
    expired = inter.issue_cert("localhost", not_before=PAST[0], not_after=PAST[1])
    cases = [  # (trusted, presented chain, hostname, (code, depth) expected from both)
        ([root_der], ders(server), "localhost", None),
        ([root_der], ders(server), "example.com", (62, 0)),
        ([root_der], ders(server), "127.0.0.2", (64, 0)),
        ([other_der], ders(server), "localhost", (20, 1)),
        ([root_der], ders(server)[:1], "localhost", (20, 0)),
        ([root_der], ders(expired), "localhost", (10, 0)),
        ([other_der], [root_der], "localhost", (18, 0)),
        ([other_der], ders(server) + [root_der], "localhost", (19, 2)),
    ]
    for trusted, chain, host, expected in cases:
        store = TrustStore()
        for der in trusted:
            store.add_der(der)
        try:
            verify_server_chain(store, chain, host)
            ours = None
        except CertificateVerifyError as err:
            ours = (err.verify_code, err.depth)
        flag = "-verify_ip" if re.fullmatch(r"[\d.]+", host) else "-verify_hostname"
        assert ours == expected == openssl_verify(tmp_path, trusted, chain, "-purpose", "sslserver", flag, host), host


TRICKY = x509.Name([
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Acme, "Inc" + <x>; a\\b=c')]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#lead "),
                                    x509.NameAttribute(NameOID.COMMON_NAME, " multi")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "Zoë 日本 tab\there")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.example")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.SERIAL_NUMBER, "1234")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.STREET_ADDRESS, "1 Main St")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.SURNAME, "Doe"),
                                    x509.NameAttribute(NameOID.GIVEN_NAME, "Jo")]),
    x509.RelativeDistinguishedName([x509.NameAttribute(x509.ObjectIdentifier("1.2.3.4.5"), "private oid")]),
])


def test_oneline_name_matches_openssl(tmp_path: Path, root: trustme.CA) -> None:
    for cert in [make_cert(root, name=TRICKY), cert_of(root.cert_pem)]:
        path = tmp_path / "c.pem"
        path.write_bytes(cert.public_bytes(PEM))
        expected = openssl("x509", "-in", str(path), "-noout", "-subject").strip().removeprefix("subject=")
        assert oneline_name(cert.subject) == expected


def test_describe_chain_matches_openssl(tmp_path: Path, root: trustme.CA, inter: trustme.CA,
                                        server: trustme.LeafCert) -> None:
    path = verify_server_chain(store_of(root), ders(server), "localhost")
    lines = describe_chain(path)
    assert lines[1::2] == ["verify return:1"] * 3
    (tmp_path / "ca.pem").write_bytes(root.cert_pem.bytes())
    (tmp_path / "inter.pem").write_bytes(inter.cert_pem.bytes())
    (tmp_path / "leaf.pem").write_bytes(server.cert_chain_pems[0].bytes())
    out = openssl("verify", "-show_chain", "-CAfile", str(tmp_path / "ca.pem"),
                  "-untrusted", str(tmp_path / "inter.pem"), str(tmp_path / "leaf.pem"))
    # openssl verify prints "depth=N: <subject>[ (untrusted)]" leaf first; s_client prints
    # "depth=N <subject>" root first, which is what describe_chain returns.
    shown = re.findall(r"^depth=(\d+): (.*?)(?: \(untrusted\))?$", out, re.MULTILINE)
    assert len(shown) == 3, out
    assert lines[0::2] == [f"depth={d} {name}" for d, name in reversed(shown)]
    assert lines[0].startswith("depth=2 O = trustme v") and ", OU = Testing CA #" in lines[0]
