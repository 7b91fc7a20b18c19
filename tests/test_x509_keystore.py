"""Loading our own certificate chains and keys, and picking one for a CertificateRequest."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.hazmat.primitives.serialization import pkcs12

from ferrotls.x509 import Credential, choose_credential, load_credential, load_pkcs12

PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER
PKCS1, PKCS8 = serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8
PLAIN = serialization.NoEncryption()
PASSWORD = b"s3cret"
RSA_SCHEMES = [
    "rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384", "rsa_pss_rsae_sha512",
    "rsa_pkcs1_sha256", "rsa_pkcs1_sha384", "rsa_pkcs1_sha512",
]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def rsa_leaf(ca: trustme.CA) -> trustme.LeafCert:
    """An RSA leaf issued by an intermediate: chain PEM is leaf, intermediate."""
    return ca.create_child_ca().issue_cert("localhost", key_type=trustme.KeyType.RSA)


@pytest.fixture(scope="module")
def ec_leaf(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost")


def _key(leaf: trustme.LeafCert) -> Any:
    return serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)


def _chain_pem(leaf: trustme.LeafCert) -> bytes:
    return b"".join(blob.bytes() for blob in leaf.cert_chain_pems)


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _files(tmp_path: Path, leaf: trustme.LeafCert, key_pem: bytes) -> tuple[str, str]:
    return _write(tmp_path, "chain.pem", _chain_pem(leaf)), _write(tmp_path, "key.pem", key_pem)


def _stdlib_load(certfile: str, keyfile: str | None, password: Any = None) -> None:
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile, password)


def _check_rsa_credential(cred: Credential, leaf: trustme.LeafCert) -> None:
    assert cred.key_type == "rsa"
    assert cred.signature_schemes == RSA_SCHEMES
    assert len(cred.chain) == 2 and len(cred.chain_der) == 2
    assert cred.chain_der == [x509.load_pem_x509_certificate(b.bytes()).public_bytes(DER) for b in leaf.cert_chain_pems]
    assert cred.chain[0].public_bytes(DER) == cred.chain_der[0]
    # The key the Rust core holds is the leaf's: it signs, cryptography verifies.
    assert (cred.key.kind, cred.key.bits, cred.curve) == ("rsa", _key(leaf).key_size, None)
    msg = b"ServerKeyExchange params"
    sig = cred.key.sign("rsa_pss_rsae_sha256", msg)
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    cred.chain[0].public_key().verify(sig, msg, pss, hashes.SHA256())


@pytest.mark.parametrize("fmt", ["pkcs1", "pkcs8"])
def test_rsa_key_unencrypted(tmp_path: Path, rsa_leaf: trustme.LeafCert, fmt: str) -> None:
    key_pem = _key(rsa_leaf).private_bytes(PEM, PKCS1 if fmt == "pkcs1" else PKCS8, PLAIN)
    assert key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY" if fmt == "pkcs1" else b"-----BEGIN PRIVATE KEY")
    certfile, keyfile = _files(tmp_path, rsa_leaf, key_pem)
    _check_rsa_credential(load_credential(certfile, keyfile), rsa_leaf)
    _stdlib_load(certfile, keyfile)  # the stdlib accepts the same files


@pytest.mark.parametrize("fmt", ["pkcs8", "legacy"])
@pytest.mark.parametrize("password", [PASSWORD, PASSWORD.decode(), lambda: PASSWORD, lambda: PASSWORD.decode()])
def test_rsa_key_encrypted(tmp_path: Path, rsa_leaf: trustme.LeafCert, fmt: str, password: Any) -> None:
    enc = serialization.BestAvailableEncryption(PASSWORD)
    key_pem = _key(rsa_leaf).private_bytes(PEM, PKCS8 if fmt == "pkcs8" else PKCS1, enc)
    marker = b"ENCRYPTED PRIVATE KEY" if fmt == "pkcs8" else b"Proc-Type: 4,ENCRYPTED"
    assert marker in key_pem
    certfile, keyfile = _files(tmp_path, rsa_leaf, key_pem)
    _check_rsa_credential(load_credential(certfile, keyfile, password=password), rsa_leaf)
    _stdlib_load(certfile, keyfile, password)


@pytest.mark.parametrize(("curve", "scheme"), [
    (ec.SECP256R1(), "ecdsa_secp256r1_sha256"),
    (ec.SECP384R1(), "ecdsa_secp384r1_sha384"),
])
@pytest.mark.parametrize("fmt", ["sec1", "pkcs8"])
def test_ec_keys(tmp_path: Path, ca: trustme.CA, curve: Any, scheme: str, fmt: str) -> None:
    # trustme only makes P-256 leaves, so issue the leaf ourselves for both curves.
    key = ec.generate_private_key(curve)
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "ec leaf")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(ca_cert.not_valid_before_utc).not_valid_after(ca_cert.not_valid_after_utc)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(PEM, PKCS1 if fmt == "sec1" else PKCS8, PLAIN)
    assert key_pem.startswith(b"-----BEGIN EC PRIVATE KEY" if fmt == "sec1" else b"-----BEGIN PRIVATE KEY")
    certfile = _write(tmp_path, "cert.pem", cert.public_bytes(PEM))
    keyfile = _write(tmp_path, "key.pem", key_pem)
    cred = load_credential(certfile, keyfile)
    assert cred.key_type == "ec"
    assert cred.signature_schemes[0] == scheme and cred.curve == curve.name
    assert cred.chain == [cert]
    # The curve's own hash, and in TLS 1.2 the other one as well (P-384 with SHA-256 included).
    for other_scheme in cred.signature_schemes:
        other_digest = hashes.SHA256() if other_scheme.endswith("sha256") else hashes.SHA384()
        sig = cred.key.sign(other_scheme, b"CertificateVerify")
        cert.public_key().verify(sig, b"CertificateVerify", ec.ECDSA(other_digest))
    _stdlib_load(certfile, keyfile)


@pytest.mark.parametrize("key_first", [False, True])
def test_key_inside_certfile(tmp_path: Path, ec_leaf: trustme.LeafCert, key_first: bool) -> None:
    key_pem = ec_leaf.private_key_pem.bytes()
    combined = key_pem + _chain_pem(ec_leaf) if key_first else _chain_pem(ec_leaf) + key_pem
    certfile = _write(tmp_path, "combined.pem", combined)
    cred = load_credential(certfile)
    assert cred.key_type == "ec" and len(cred.chain) == 1
    assert cred.chain_der[0] == x509.load_pem_x509_certificate(ec_leaf.cert_chain_pems[0].bytes()).public_bytes(DER)
    _stdlib_load(certfile, None)


def test_password_callback_not_called_for_plain_key(tmp_path: Path, ec_leaf: trustme.LeafCert) -> None:
    certfile, keyfile = _files(tmp_path, ec_leaf, ec_leaf.private_key_pem.bytes())
    calls = []
    load_credential(certfile, keyfile, password=lambda: calls.append(1) or b"x")
    assert calls == []


def _assert_same_error_as_stdlib(excinfo: Any, certfile: str, keyfile: str | None, password: Any) -> None:
    with pytest.raises(type(excinfo.value)) as std:
        _stdlib_load(certfile, keyfile, password)
    assert excinfo.value.args[0] == std.value.args[0]
    assert getattr(excinfo.value, "library", None) == getattr(std.value, "library", None)
    assert getattr(excinfo.value, "reason", None) == getattr(std.value, "reason", None)


@pytest.mark.parametrize("password", [b"wrong", "wrong", lambda: b"wrong"])
def test_wrong_password(tmp_path: Path, rsa_leaf: trustme.LeafCert, password: Any) -> None:
    key_pem = _key(rsa_leaf).private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(PASSWORD))
    certfile, keyfile = _files(tmp_path, rsa_leaf, key_pem)
    with pytest.raises(ssl.SSLError, match="wrong password") as excinfo:
        load_credential(certfile, keyfile, password=password)
    _assert_same_error_as_stdlib(excinfo, certfile, keyfile, password)


def test_missing_password(tmp_path: Path, rsa_leaf: trustme.LeafCert) -> None:
    key_pem = _key(rsa_leaf).private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(PASSWORD))
    certfile, keyfile = _files(tmp_path, rsa_leaf, key_pem)
    with pytest.raises(ssl.SSLError, match="encrypted and no password") as excinfo:
        load_credential(certfile, keyfile)
    assert excinfo.value.args[0] == 524297  # what the stdlib reports for PEM failures


def test_bad_password_types(tmp_path: Path, rsa_leaf: trustme.LeafCert) -> None:
    key_pem = _key(rsa_leaf).private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(PASSWORD))
    certfile, keyfile = _files(tmp_path, rsa_leaf, key_pem)
    for password, message in [(3, "password should be a string or callable"),
                              (lambda: 3, "password callback must return a string")]:
        with pytest.raises(TypeError, match=message):
            load_credential(certfile, keyfile, password=password)
        with pytest.raises(TypeError, match=message):
            _stdlib_load(certfile, keyfile, password)


def test_key_mismatch(tmp_path: Path, ca: trustme.CA, ec_leaf: trustme.LeafCert) -> None:
    certfile, keyfile = _files(tmp_path, ec_leaf, ca.private_key_pem.bytes())
    with pytest.raises(ssl.SSLError, match="key values mismatch") as excinfo:
        load_credential(certfile, keyfile)
    assert excinfo.value.args[0] == 116
    assert excinfo.value.reason == "KEY_VALUES_MISMATCH"  # type: ignore[attr-defined]
    _assert_same_error_as_stdlib(excinfo, certfile, keyfile, None)


def test_no_certificate_in_file(tmp_path: Path, ec_leaf: trustme.LeafCert) -> None:
    keyfile = _write(tmp_path, "key.pem", ec_leaf.private_key_pem.bytes())
    with pytest.raises(ssl.SSLError, match="no certificate") as excinfo:
        load_credential(keyfile, keyfile)
    _assert_same_error_as_stdlib(excinfo, keyfile, keyfile, None)


def test_no_key_in_file(tmp_path: Path, ec_leaf: trustme.LeafCert) -> None:
    certfile = _write(tmp_path, "chain.pem", _chain_pem(ec_leaf))
    with pytest.raises(ssl.SSLError, match="no private key") as excinfo:
        load_credential(certfile)
    _assert_same_error_as_stdlib(excinfo, certfile, None, None)


def test_missing_files(tmp_path: Path, ec_leaf: trustme.LeafCert) -> None:
    certfile, keyfile = _files(tmp_path, ec_leaf, ec_leaf.private_key_pem.bytes())
    missing = str(tmp_path / "nope.pem")
    for args in [(missing, keyfile), (certfile, missing)]:
        with pytest.raises(FileNotFoundError) as excinfo:
            load_credential(*args)
        assert excinfo.value.errno == 2
        with pytest.raises(FileNotFoundError):
            _stdlib_load(*args)


def test_unsupported_key_type(tmp_path: Path, ca: trustme.CA) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    cert = (x509.CertificateBuilder().subject_name(ca_cert.subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(ca_cert.not_valid_before_utc).not_valid_after(ca_cert.not_valid_after_utc)
            .sign(ca_key, hashes.SHA256()))
    certfile = _write(tmp_path, "c.pem", cert.public_bytes(PEM) + key.private_bytes(PEM, PKCS8, PLAIN))
    with pytest.raises(ssl.SSLError, match="unsupported private key type"):
        load_credential(certfile)


def _p12(tmp_path: Path, leaf: trustme.LeafCert, extra: list[x509.Certificate], password: bytes | None) -> str:
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    enc = serialization.BestAvailableEncryption(password) if password else PLAIN
    data = pkcs12.serialize_key_and_certificates(b"me", _key(leaf), cert, extra or None, enc)
    return _write(tmp_path, "me.p12", data)


def test_pkcs12_orders_the_chain(tmp_path: Path) -> None:
    root = trustme.CA()
    inter = root.create_child_ca()
    leaf = inter.issue_cert("localhost", key_type=trustme.KeyType.RSA)
    root_cert = x509.load_pem_x509_certificate(root.cert_pem.bytes())
    inter_cert = x509.load_pem_x509_certificate(inter.cert_pem.bytes())
    stranger = x509.load_pem_x509_certificate(trustme.CA().cert_pem.bytes())
    path = _p12(tmp_path, leaf, [stranger, root_cert, inter_cert], PASSWORD)
    cred = load_pkcs12(path, PASSWORD.decode())
    assert cred.chain[1:] == [inter_cert, root_cert]  # issuer order; the unrelated CA is dropped
    _check_rsa_credential(Credential(cred.chain[:2], _key(leaf)), leaf)
    assert load_pkcs12(path, lambda: PASSWORD).chain_der == cred.chain_der


def test_pkcs12_unencrypted_and_errors(tmp_path: Path, ec_leaf: trustme.LeafCert) -> None:
    plain = _p12(tmp_path, ec_leaf, [], None)
    assert load_pkcs12(plain).key_type == "ec"
    locked = _p12(tmp_path, ec_leaf, [], PASSWORD)
    for password in (None, b"wrong"):
        with pytest.raises(ssl.SSLError, match="wrong password"):
            load_pkcs12(locked, password)
    with pytest.raises(FileNotFoundError):
        load_pkcs12(str(tmp_path / "nope.p12"))


def test_choose_credential(tmp_path: Path) -> None:
    ca_a, ca_b = trustme.CA(), trustme.CA()
    inter_a = ca_a.create_child_ca()
    creds = []
    for i, issuer in enumerate([ca_a, ca_b, inter_a]):
        leaf = issuer.issue_cert("client@example.org")
        creds.append(load_credential(_write(tmp_path, f"c{i}.pem", _chain_pem(leaf) + leaf.private_key_pem.bytes())))
    cred_a, cred_b, cred_inter = creds
    name = lambda ca: x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject.public_bytes()  # noqa: E731

    assert choose_credential(creds, []) == creds  # RFC 5246 7.4.4: no names, any certificate
    assert choose_credential(creds, [name(ca_b)]) == [cred_b]
    # The intermediate's chain ends at A's root, so naming the root selects it too (order kept).
    assert choose_credential(creds, [name(ca_a)]) == [cred_a, cred_inter]
    assert choose_credential(creds, [name(inter_a)]) == [cred_inter]
    assert choose_credential(creds, [name(ca_b), name(inter_a)]) == [cred_b, cred_inter]
    assert choose_credential(creds, [name(trustme.CA())]) == []
    assert choose_credential([], [name(ca_a)]) == []
