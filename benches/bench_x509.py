"""Certificate path validation: ferrotls.x509.verify_chain against pyca/cryptography's verifier
(its Rust `PolicyBuilder`), on a root -> intermediate -> leaf chain of the web PKI profile.

- warm: the same chain again, as a client reconnecting to a server sees it; ferrotls has the
  certificates parsed and the signatures checked from the last time (both caches are keyed by DER).
- cold: a chain never seen before; ferrotls's caches are emptied before each call and both sides
  start from DER (pyca parses the two certificates in the timed call too).

Both validate the same chain under the same name and time, and must accept it; that is checked
before timing. See conftest.py for the summary table.
"""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ferrotls.x509 import TrustStore, path, verify_chain

NAME = "www.example.com"
NOW = datetime.datetime.now(datetime.timezone.utc)
DER = serialization.Encoding.DER


def _key(kind: str):
    return ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa" else rsa.generate_private_key(65537, 2048)


def _certificate(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool) -> x509.Certificate:
    public = key.public_key()
    usage = dict(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                 encipher_only=False, decipher_only=False)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if issuer_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module", params=["ecdsa", "rsa"])
def chain(request):
    root_key, inter_key, leaf_key = (_key(request.param) for _ in range(3))
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench root")])
    root = _certificate("bench root", root_key, root_name, root_key, ca=True)
    inter = _certificate("bench intermediate", inter_key, root.subject, root_key, ca=True)
    leaf = _certificate(NAME, leaf_key, inter.subject, inter_key, ca=False)
    store = TrustStore()
    store.add(root)
    pyca = verification.PolicyBuilder().store(verification.Store([root])).time(NOW).build_server_verifier(
        verification.DNSName(NAME))
    ders = [leaf.public_bytes(DER), inter.public_bytes(DER)]
    assert len(verify_chain(ders[0], ders[1:], store, server_name=NAME, at=NOW)) == 3
    assert len(pyca.verify(leaf, [inter])) == 3
    return request.param, store, pyca, ders


def _info(benchmark, key: str, case: str, impl: str) -> None:
    benchmark.extra_info.update(kind="x509", case=f"{case} {key}", impl=impl)


def test_ferrotls_warm(benchmark, chain):
    key, store, _, ders = chain
    _info(benchmark, key, "warm", "ferrotls")
    benchmark(verify_chain, ders[0], ders[1:], store, server_name=NAME, at=NOW)


def test_pyca_warm(benchmark, chain):
    key, _, pyca, ders = chain
    leaf, inter = (x509.load_der_x509_certificate(d) for d in ders)
    _info(benchmark, key, "warm", "pyca")
    benchmark(pyca.verify, leaf, [inter])


def test_ferrotls_cold(benchmark, chain):
    key, store, _, ders = chain
    _info(benchmark, key, "cold", "ferrotls")

    def forget() -> None:  # the chain's certificates and signatures, not the trust store's parse
        path._PARSED.clear()
        path._BY_OBJECT.clear()
        path._SIGNED.clear()
        path._parse(store.certificates[0])

    benchmark.pedantic(verify_chain, args=(ders[0], ders[1:], store), kwargs=dict(server_name=NAME, at=NOW),
                       setup=forget, rounds=300)


def test_pyca_cold(benchmark, chain):
    key, _, pyca, ders = chain
    _info(benchmark, key, "cold", "pyca")

    def run():
        pyca.verify(x509.load_der_x509_certificate(ders[0]), [x509.load_der_x509_certificate(ders[1])])

    benchmark.pedantic(run, rounds=300)
