"""Regression tests for the security review of certificate path validation (ferrotls.x509.path)
and trust stores (ferrotls.x509.store): hostile input a peer or a CA bundle can send.

1. The path search is bounded in work, however the candidates are arranged: self-issued
   certificates that all verify under each other, duplicated intermediates, and a signature cache
   filled by earlier validations.
2. Unreadable certificates, names and extensions end in a CertificateVerifyError, never in
   another exception.
3. Trust stores load bundles holding such certificates.
4. A malformed certificate's failure, cached with the certificate, does not grow per validation.
5. RSA public exponents (CABF 6.1.6).
6. directoryName constraints compare names prepared as RFC 4518 says.
7. IPv4-mapped IPv6 addresses under IPv4 subtrees.
8. A custom EKU in the Policy must be present in the leaf.
9. PEM scanning: one pass, whatever the markers.
10. The parsed-certificate cache is bounded in bytes.

Work is counted (calls of path._Validation.build, path._signed_by, bytes scanned), never timed.
Certificates come from a small local factory on cryptography's CertificateBuilder, in the style
of test_x509_path.py, plus DER surgery (der_surgery.py) for what the builder refuses to write.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import functools
import gc
import ipaddress
import ssl
import traceback
from typing import Optional, Sequence, Union

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from ferrotls.x509 import CertificateVerifyError, Policy, TrustStore, path, verify_chain

import der_surgery as surgery
from test_x509_path import Made

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
UTC = datetime.timezone.utc
NOT_BEFORE = datetime.datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime.datetime(2026, 1, 1, tzinfo=UTC)
AT = datetime.datetime(2025, 1, 1, tzinfo=UTC)
HOST = "www.example.com"
PRIVATE_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.1")
DEFAULT = object()  # "the factory's usual value" where None means "leave the extension out"

# Attribute types as they appear in a DER AttributeTypeAndValue (OID content octets).
CN, O, EMAIL = "550403", "55040a", "2a864886f70d010901"
UTF8_STRING, IA5_STRING, INTEGER, BIT_STRING, SEQUENCE = 0x0C, 0x16, 0x02, 0x03, 0x30


# --------------------------------------------------------------------------------------------
# The certificate factory
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def dn(text: str) -> x509.Name:
    """``"O=Good,CN=leaf"`` (RDNs in certificate order) as a Name."""
    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME}
    return x509.Name([x509.NameAttribute(oids[kind], value)
                      for kind, _, value in (part.partition("=") for part in text.split(","))])


_serial = iter(range(0x1000, 1 << 30))


def make(subject: Union[str, x509.Name], issuer: Optional[Made] = None, *, key=None, ca: bool = False,
         san=DEFAULT, eku=DEFAULT, nc: Optional[x509.NameConstraints] = None, extra: Sequence = ()) -> Made:
    """A certificate for ``subject`` signed by ``issuer`` (self-signed when None).

    CAs get basicConstraints and keyUsage keyCertSign+cRLSign (both critical); leaves get keyUsage
    digitalSignature, EKU serverAuth+clientAuth and a dNSName SAN equal to their common name. Both
    get a subjectKeyIdentifier, and an authorityKeyIdentifier when they have an issuer. ``extra``:
    more (extension, critical) pairs, such as UnrecognizedExtension to write raw values."""
    name = dn(subject) if isinstance(subject, str) else subject
    key = key if key is not None else ec_key()
    signer = issuer.key if issuer is not None else key
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer.cert.subject if issuer is not None else name)
         .public_key(key.public_key()).serial_number(next(_serial))
         .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        if eku is DEFAULT:
            eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        if san is DEFAULT:
            cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
            san = [x509.DNSName(cns[0].value)] if cns else None
    if eku not in (DEFAULT, None):
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san not in (DEFAULT, None):
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if nc is not None:
        b = b.add_extension(nc, critical=True)
    for extension, critical in extra:
        b = b.add_extension(extension, critical=critical)
    return Made(b.sign(signer, hashes.SHA256()), key)


def store_of(*anchors: Made) -> TrustStore:
    store = TrustStore()
    for anchor in anchors:
        store.add(anchor.cert)
    return store


def outcome(leaf, intermediates: Sequence, roots: Sequence[Made], **kwargs):
    """The path verify_chain returns, or the CertificateVerifyError it raises; any other exception
    propagates and fails the test."""
    kwargs.setdefault("at", AT)
    try:
        return verify_chain(leaf, list(intermediates), store_of(*roots), **kwargs)
    except CertificateVerifyError as err:
        return err


def fails(code: int, leaf, intermediates: Sequence, roots: Sequence[Made], depth: Optional[int] = None,
          **kwargs) -> CertificateVerifyError:
    err = outcome(leaf, intermediates, roots, **kwargs)
    assert isinstance(err, CertificateVerifyError), f"accepted: {err}"
    assert err.verify_code == code, (err.verify_code, err.depth, str(err))
    if depth is not None:
        assert err.depth == depth, (err.verify_code, err.depth, str(err))
    return err


def accepted(leaf, intermediates: Sequence, roots: Sequence[Made], **kwargs) -> list[x509.Certificate]:
    result = outcome(leaf, intermediates, roots, **kwargs)
    assert not isinstance(result, CertificateVerifyError), str(result)
    return result


# --- DER surgery ---------------------------------------------------------------------------------

# TBSCertificate elements of a v3 certificate, by position.
VERSION, ISSUER, SUBJECT, SPKI = 0, 3, 5, 6


def rebuilt(made: Made, signer, **fields: bytes) -> bytes:
    """``made`` with TBSCertificate elements replaced (``version=``, ``issuer=``, ``subject=``,
    ``spki=``: DER) and signed again by ``signer`` (ECDSA or RSA PKCS#1 v1.5, SHA-256, as the
    factory signs, so the signature AlgorithmIdentifiers stay valid)."""
    parts = surgery.elements(made.der)
    tbs = surgery.elements(parts[0])
    for field, value in fields.items():
        tbs[{"version": VERSION, "issuer": ISSUER, "subject": SUBJECT, "spki": SPKI}[field]] = value
    body = surgery.der(0x30, b"".join(tbs))
    if isinstance(signer, rsa.RSAPrivateKey):
        signature = signer.sign(body, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = signer.sign(body, ec.ECDSA(hashes.SHA256()))
    return surgery.der(0x30, body + parts[1] + surgery.der(0x03, b"\x00" + signature))


def version(number: int) -> bytes:
    """The [0] EXPLICIT version field holding INTEGER ``number`` (2 is v3)."""
    return surgery.der(0xA0, surgery.der(0x02, bytes([number])))


def rdn(oid_hex: str, tag: int, content: bytes) -> bytes:
    return surgery.der(0x31, surgery.der(0x30, surgery.der(0x06, bytes.fromhex(oid_hex)) + surgery.der(tag, content)))


def name_of(*rdns: bytes) -> bytes:
    return surgery.der(0x30, b"".join(rdns))


def integer(value: int) -> bytes:
    return surgery.der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def rsa_spki(n: int, e: int) -> bytes:
    """SubjectPublicKeyInfo of rsaEncryption (NULL parameters) with any modulus and exponent."""
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")
    return surgery.der(0x30, algorithm + surgery.der(0x03, b"\x00" + surgery.der(0x30, integer(n) + integer(e))))


# --------------------------------------------------------------------------------------------
# A shared PKI and work counters
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Pki:
    root: Made
    inter: Made

    def leaf(self, subject: Union[str, x509.Name] = f"CN={HOST}", **kwargs) -> Made:
        return make(subject, self.inter, **kwargs)


@pytest.fixture(scope="module")
def ca() -> Pki:
    root = make("CN=Hostile Test Root", ca=True)
    return Pki(root, make("CN=Hostile Test Intermediate", root, ca=True))


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per path._Validation.build call (the search's nodes), with the path's length."""
    calls: list[int] = []
    build = path._Validation.build

    def counting(self, chain):
        calls.append(len(chain))
        return build(self, chain)

    monkeypatch.setattr(path._Validation, "build", counting)
    return calls


@pytest.fixture
def signatures(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per path._signed_by call (cached or not)."""
    calls: list[int] = []
    signed_by = path._signed_by
    monkeypatch.setattr(path, "_signed_by", lambda child, issuer: calls.append(1) or signed_by(child, issuer))
    return calls


# ============================================================================================
# 1. The search is bounded
# ============================================================================================


def test_self_issued_certificates_verifying_under_each_other(builds: list, signatures: list) -> None:
    """Nine self-issued CAs with one subject and one key: each verifies under every other (only
    90 distinct signatures, fewer than the budget) and the search used to walk every ordering of
    them (~e*9! nodes). Every step of the search is now charged, cached signature or not."""
    stranger = make("CN=Unrelated Root", ca=True)
    shared = ec_key()
    first = make("CN=X", key=shared, ca=True)
    pool = [first] + [make("CN=X", first, key=shared, ca=True) for _ in range(8)]
    assert all(p.cert.subject == p.cert.issuer for p in pool)
    end = make(f"CN={HOST}", first)
    err = fails(19, end.der, [p.der for p in pool], [stranger], server_name=HOST)
    assert err.depth == 1
    assert len(builds) <= path.SIGNATURE_BUDGET + 1
    # The search and the diagnosis each have the budget; self-signature checks are per certificate.
    assert len(signatures) <= 2 * path.SIGNATURE_BUDGET + len(pool) + 1


def test_duplicate_intermediates_merged(builds: list) -> None:
    """A chain of 8 intermediates whose top nobody trusts, sent 6 times over: the duplicates are
    one candidate each, so the search does what it does for one copy (it used to explore 6^8
    identical paths)."""
    stranger = make("CN=Unrelated Root", ca=True)
    keys = [ec_key() for _ in range(9)]
    tops = [Made(make("CN=L8", key=keys[8], ca=True).cert, keys[8])]
    for i in range(7, -1, -1):  # L7 issued by L8 (absent), ..., L0 issued by L1
        tops.insert(0, make(f"CN=L{i}", tops[0], key=keys[i], ca=True))
    chain = [t.der for t in tops[:8]]
    end = make(f"CN={HOST}", tops[0])
    fails(20, end.der, chain, [stranger], depth=8, server_name=HOST)
    once = len(builds)
    builds.clear()
    fails(20, end.der, chain * 6, [stranger], depth=8, server_name=HOST)
    assert len(builds) == once <= len(chain) + 1


def test_signature_cache_does_not_lift_the_budget(builds: list, signatures: list) -> None:
    """8 layers of 6 interchangeable intermediates (6^8 paths, 258 distinct signatures). The
    budget used to charge only signatures missing from the process-wide cache, so repeating the
    validation filled the cache and then let the search walk every path. Each repetition now
    stays within the budget."""
    stranger = make("CN=Unrelated Root", ca=True)
    keys = [ec_key() for _ in range(9)]
    above = [Made(make("CN=L8", key=keys[8], ca=True).cert, keys[8])]
    pool: list[Made] = []
    for i in range(7, -1, -1):
        layer = [make(f"CN=L{i}", above[0], key=keys[i], ca=True) for _ in range(6)]
        pool += layer
        above = layer
    end = make(f"CN={HOST}", above[0])
    for _ in range(5):
        builds.clear()
        signatures.clear()
        err = fails(20, end.der, [p.der for p in pool], [stranger], server_name=HOST)
        assert err.depth == 8
        assert len(builds) <= path.SIGNATURE_BUDGET + 1
        assert len(signatures) <= 2 * path.SIGNATURE_BUDGET


# ============================================================================================
# 2. Nothing but CertificateVerifyError escapes verify_chain
# ============================================================================================


@pytest.mark.parametrize("number", [3, 5, 100])
def test_unknown_version_as_leaf_and_intermediate(number: int, ca: Pki) -> None:
    """cryptography refuses versions beyond v3 (InvalidVersion) when it loads the certificate."""
    bad_leaf = rebuilt(ca.leaf(), ca.inter.key, version=version(number))
    fails(1, bad_leaf, [ca.inter.der], [ca.root], depth=0, server_name=HOST)
    bad_inter = rebuilt(ca.inter, ca.root.key, version=version(number))
    fails(1, ca.leaf().der, [bad_inter], [ca.root], depth=1, server_name=HOST)


X400_ADDRESS = surgery.der(0xA3, surgery.der(0x30, b""))
EDI_PARTY_NAME = surgery.der(0xA5, surgery.der(0xA1, surgery.der(0x0C, b"x")))


@pytest.mark.parametrize("general_name", [X400_ADDRESS, EDI_PARTY_NAME], ids=["x400Address", "ediPartyName"])
def test_unsupported_general_names(general_name: bytes, ca: Pki) -> None:
    """x400Address and ediPartyName, which cryptography cannot represent
    (UnsupportedGeneralNameType), in a leaf's subjectAltName, in a nameConstraints subtree, and in
    a pool certificate that is never a candidate."""
    san = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
                                     surgery.der(0x30, general_name + surgery.der(0x82, HOST.encode())))
    odd = ca.leaf(san=None, extra=[(san, False)])
    fails(41, odd.der, [ca.inter.der], [ca.root], depth=0, server_name=HOST)
    fails(41, odd.der, [ca.inter.der], [ca.root], depth=0, purpose="client")
    # An unrelated certificate of the pool is parsed, never read: the good chain still validates.
    junk = make("CN=Junk", make("CN=Nobody", ca=True), ca=True, extra=[(san, False)])
    assert accepted(ca.leaf().der, [ca.inter.der, junk.der], [ca.root], server_name=HOST)[-1] == ca.root.cert
    # A nameConstraints extension with such a subtree.
    subtrees = surgery.der(0x30, surgery.der(0xA0, surgery.der(0x30, general_name)))
    constrained = make("CN=Constrained CA", ca.root, ca=True,
                       extra=[(x509.UnrecognizedExtension(ExtensionOID.NAME_CONSTRAINTS, subtrees), True)])
    fails(41, make(f"CN={HOST}", constrained).der, [constrained.der], [ca.root], depth=1, server_name=HOST)


UNREADABLE_COMMON_NAMES = {
    "SEQUENCE": rdn(CN, SEQUENCE, b""),
    "INTEGER": rdn(CN, INTEGER, b"\x01"),
    "[0]": rdn(CN, 0x80, b"x"),
    "invalid UTF-8": rdn(CN, UTF8_STRING, b"\xff\xfe"),
}


@pytest.mark.parametrize("label", list(UNREADABLE_COMMON_NAMES))
def test_unreadable_common_name_in_the_leaf(label: str, ca: Pki) -> None:
    """The subject is parsed lazily: reading the common name (CABF 7.1.4.3) fails with 53."""
    leaf = rebuilt(ca.leaf(san=[x509.DNSName(HOST)]), ca.inter.key, subject=name_of(UNREADABLE_COMMON_NAMES[label]))
    err = fails(53, leaf, [ca.inter.der], [ca.root], depth=0, server_name=HOST)
    assert err.verify_message == "unsupported or invalid name syntax"


@pytest.mark.parametrize("label", ["INTEGER", "invalid UTF-8"])
def test_unreadable_subject_of_an_intermediate(label: str) -> None:
    """Names match byte for byte, so such an intermediate is usable until a directoryName
    constraint has to read its subject: then 53."""
    bad_name = name_of(UNREADABLE_COMMON_NAMES[label])
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Good"),
                         x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    for nc, code in ((None, None),
                     (x509.NameConstraints([x509.DirectoryName(dn("O=Good"))], None), 53)):
        root = make("CN=Root", ca=True, nc=nc)
        inter = make("CN=Inter", root, ca=True)
        bad_inter = rebuilt(inter, root.key, subject=bad_name)
        leaf = rebuilt(make(subject, inter), inter.key, issuer=bad_name)
        if code is None:
            assert len(accepted(leaf, [bad_inter], [root], server_name=HOST)) == 3
        else:
            fails(code, leaf, [bad_inter], [root], server_name=HOST)


def test_common_name_with_an_embedded_nul(ca: Pki) -> None:
    """CN=1.2.3.4<NUL> beside a dNSName: looking for an IP address in it (inet_aton) used to raise
    ValueError. A common name naming nothing in the subjectAltName is tolerated."""
    leaf = ca.leaf(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "1.2.3.4\x00")]), san=[x509.DNSName(HOST)])
    result = outcome(leaf.der, [ca.inter.der], [ca.root], server_name=HOST)
    assert not isinstance(result, CertificateVerifyError) or result.verify_code == 62, str(result)


def test_non_ascii_email_address_under_an_email_constraint(ca: Pki) -> None:
    """An emailAddress in the subject (no subjectAltName) is an rfc822Name the constraints apply
    to (RFC 5280 4.2.1.10); one that is not ASCII cannot be checked: 53, not ValueError."""
    inter = make("CN=Mail CA", ca.root, ca=True, nc=x509.NameConstraints([x509.RFC822Name("example.com")], None))
    subject = name_of(rdn(CN, UTF8_STRING, b"leaf"), rdn(EMAIL, UTF8_STRING, "\u00fc@example.com".encode()))
    leaf = rebuilt(make("CN=leaf", inter, san=None), inter.key, subject=subject)
    fails(53, leaf, [inter.der], [ca.root], purpose="client")
    # The same in ASCII is checked, and permitted.
    plain = rebuilt(make("CN=leaf", inter, san=None), inter.key,
                    subject=name_of(rdn(CN, UTF8_STRING, b"leaf"), rdn(EMAIL, IA5_STRING, b"u@example.com")))
    assert len(accepted(plain, [inter.der], [ca.root], purpose="client")) == 3


def test_email_address_as_bit_string(ca: Pki) -> None:
    """cryptography refuses a BIT STRING for any attribute but x500UniqueIdentifier (TypeError
    when the subject is read): 53 wherever the subject is read."""
    inter = make("CN=Mail CA", ca.root, ca=True, nc=x509.NameConstraints(None, [x509.RFC822Name("evil.com")]))
    subject = name_of(rdn(CN, UTF8_STRING, b"leaf"), rdn(EMAIL, BIT_STRING, b"\x00a@evil.com"))
    leaf = rebuilt(make("CN=leaf", inter, san=None), inter.key, subject=subject)
    fails(53, leaf, [inter.der], [ca.root], purpose="client")
    served = rebuilt(make("CN=leaf", ca.inter), ca.inter.key, subject=subject)
    fails(53, served, [ca.inter.der], [ca.root], server_name="leaf")


# ============================================================================================
# 3. Trust stores
# ============================================================================================


def v6_root() -> tuple[Made, bytes]:
    root = make("CN=Version 6 Root", ca=True)
    return root, rebuilt(root, root.key, version=version(5))


def pem_of(der: bytes) -> bytes:
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"


def test_store_loads_a_root_with_an_unsupported_general_name(tmp_path) -> None:
    """cryptography parses extensions lazily: such a root loads every way, and a chain to it fails
    with a verify error (41), not UnsupportedGeneralNameType."""
    san = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, surgery.der(0x30, X400_ADDRESS))
    root = make("CN=X400 Root", ca=True, extra=[(san, False)])
    pem = root.cert.public_bytes(PEM)
    (tmp_path / "x400.pem").write_bytes(pem)
    loaders = [lambda s: s.add_pem(pem), lambda s: s.add_pem(pem, strict=False), lambda s: s.add_der(root.der),
               lambda s: s.load_file(tmp_path / "x400.pem", strict=False), lambda s: s.load_directory(tmp_path)]
    for load in loaders:
        store = TrustStore()
        load(store)
        assert len(store) == 1
    end = make(f"CN={HOST}", root)
    with pytest.raises(CertificateVerifyError) as info:
        verify_chain(end.der, [], store, server_name=HOST, at=AT)
    assert info.value.verify_code == 41


def test_strict_add_der_of_a_version_6_certificate() -> None:
    _, v6 = v6_root()
    store = TrustStore()
    with pytest.raises(ssl.SSLError) as info:
        store.add_der(v6)
    assert type(info.value) is ssl.SSLError and "malformed certificate" in str(info.value)
    assert len(store) == 0


def test_bundle_with_one_bad_certificate(tmp_path) -> None:
    """A bundle holding a version-6 certificate and a good root: strict=False loads the root,
    strict refuses the whole bundle (as OpenSSL reads a file), and neither crashes."""
    good = make("CN=Good Root", ca=True)
    _, v6 = v6_root()
    bundle = pem_of(v6) + good.cert.public_bytes(PEM)
    (tmp_path / "bundle.pem").write_bytes(bundle)
    for load in (lambda s: s.add_pem(bundle, strict=False), lambda s: s.add_pem(bundle.decode(), strict=False),
                 lambda s: s.load_file(tmp_path / "bundle.pem", strict=False), lambda s: s.load_directory(tmp_path)):
        store = TrustStore()
        load(store)
        assert store.certificates == [good.cert]
    for load in (lambda s: s.add_pem(bundle), lambda s: s.load_file(tmp_path / "bundle.pem")):
        store = TrustStore()
        with pytest.raises(ssl.SSLError):
            load(store)
        assert len(store) == 0


# ============================================================================================
# 4. A malformed certificate's failure does not accumulate
# ============================================================================================


def traceback_entries(err: BaseException) -> int:
    """Traceback entries of ``err`` and of every exception chained to it."""
    total, seen = 0, set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        total += len(traceback.extract_tb(err.__traceback__))
        err = err.__cause__ or err.__context__
    return total


def test_malformed_intermediate_failure_does_not_accumulate(ca: Pki) -> None:
    """An intermediate whose authorityInfoAccess cryptography cannot read fails with 41 on every
    validation. The failure used to be one exception object kept with the cached certificate and
    raised again each time: its traceback, and the frames (each holding a whole validation) it
    keeps alive, grew with every handshake."""
    aia = x509.UnrecognizedExtension(ExtensionOID.AUTHORITY_INFORMATION_ACCESS, b"\x05\x00")
    inter = make("CN=Malformed CA", ca.root, ca=True, extra=[(aia, False)])
    leaf = make(f"CN={HOST}", inter).der
    padding_certs = [make(f"CN=Pad {i}", make("CN=Nobody", ca=True), ca=True).der for i in range(5)]

    def live_validations() -> int:
        gc.collect()
        return sum(isinstance(o, path._Validation) for o in gc.get_objects())

    before = live_validations()
    errors = [fails(41, leaf, [inter.der, *padding_certs], [ca.root], depth=1, server_name=HOST) for _ in range(50)]
    assert traceback_entries(errors[-1]) == traceback_entries(errors[0])
    del errors[1:-1]
    # Only the two errors kept here hold validations (through their frames), not all 50.
    assert live_validations() <= before + 2


# ============================================================================================
# 5. RSA public exponents (CABF 6.1.6)
# ============================================================================================

BAD_EXPONENTS = [1, 2, 65536, 1 << 256, (1 << 256) + 1, (1 << 3000) + 1]
BAD_IDS = ["1", "2", "65536", "2^256", "2^256+1", "2^3000+1"]


@pytest.mark.parametrize("e", BAD_EXPONENTS, ids=BAD_IDS)
def test_rsa_exponent_of_a_leaf_refused(e: int, ca: Pki) -> None:
    n = rsa_key().public_key().public_numbers().n
    leaf = rebuilt(ca.leaf(key=rsa_key()), ca.inter.key, spki=rsa_spki(n, e))
    err = fails(66, leaf, [ca.inter.der], [ca.root], depth=0, server_name=HOST)
    assert err.verify_message == "EE certificate key too weak"


@pytest.mark.parametrize("e", [3, 65537, (1 << 256) - 1], ids=["3", "65537", "2^256-1"])
def test_rsa_exponent_of_a_leaf_accepted(e: int, ca: Pki) -> None:
    n = rsa_key().public_key().public_numbers().n
    leaf = rebuilt(ca.leaf(key=rsa_key()), ca.inter.key, spki=rsa_spki(n, e))
    assert len(accepted(leaf, [ca.inter.der], [ca.root], server_name=HOST)) == 3


@pytest.mark.parametrize("e", BAD_EXPONENTS + [65537], ids=BAD_IDS + ["65537"])
def test_rsa_exponent_of_a_ca(e: int, ca: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CA key with a bad exponent fails with 67 before any signature is checked under it (a
    huge exponent makes each check slow)."""
    key = rsa_key()
    n = key.public_key().public_numbers().n
    inter = make("CN=RSA CA", ca.root, ca=True, key=key)
    spki = rsa_spki(n, e)
    inter_der = rebuilt(inter, ca.root.key, spki=spki)
    assert (spki == surgery.elements(surgery.elements(inter.der)[0])[SPKI]) == (e == 65537)
    leaf = make(f"CN={HOST}", inter).der  # signed by the real key (e = 65537)
    verified_under = []
    verify = path._verify
    monkeypatch.setattr(path, "_verify", lambda cert, k: verified_under.append(k) or verify(cert, k))
    if e == 65537:
        assert len(accepted(leaf, [inter_der], [ca.root], server_name=HOST)) == 3
        return
    err = fails(67, leaf, [inter_der], [ca.root], depth=1, server_name=HOST)
    assert err.verify_message == "CA certificate key too weak"
    assert not any(isinstance(k, rsa.RSAPublicKey) for k in verified_under)


# ============================================================================================
# 6.-8. Name constraints and policy
# ============================================================================================


@pytest.mark.parametrize("organization", ["EVIL  corp ", "Evil \u00adCorp", "\uff25vil Corp", "Evil \u200bCorp",
                                          "evil corp", "Evil\u00a0Corp", "EVIL CORP\ufeff"],
                         ids=["case-spaces", "soft-hyphen", "fullwidth-E", "zero-width-space", "lower",
                              "no-break-space", "bom"])
def test_excluded_directory_name_after_rfc4518_preparation(organization: str, ca: Pki) -> None:
    inter = make("CN=DN CA", ca.root, ca=True,
                 nc=x509.NameConstraints(None, [x509.DirectoryName(dn("O=Evil Corp"))]))
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                         x509.NameAttribute(NameOID.COMMON_NAME, "leaf")])
    fails(48, make(subject, inter).der, [inter.der], [ca.root], depth=0, purpose="client")


@pytest.mark.parametrize("organization", ["Good Corp", "Evil Corporation", "EvilCorp", "Evil-Corp"])
def test_other_organisations_not_excluded(organization: str, ca: Pki) -> None:
    inter = make("CN=DN CA", ca.root, ca=True,
                 nc=x509.NameConstraints(None, [x509.DirectoryName(dn("O=Evil Corp"))]))
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                         x509.NameAttribute(NameOID.COMMON_NAME, "leaf")])
    assert len(accepted(make(subject, inter).der, [inter.der], [ca.root], purpose="client")) == 3


def test_ipv4_mapped_address_under_an_excluded_ipv4_subtree(ca: Pki) -> None:
    """::ffff:10.0.0.1 reaches the IPv4 host 10.0.0.1: an excluded 10.0.0.0/8 catches it."""
    inter = make("CN=IP CA", ca.root, ca=True,
                 nc=x509.NameConstraints(None, [x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))]))
    for address, code in (("::ffff:10.0.0.1", 48), ("10.0.0.1", 48), ("::ffff:11.0.0.1", None), ("11.0.0.1", None)):
        leaf = make("O=Test", inter, san=[x509.IPAddress(ipaddress.ip_address(address))]).der
        if code is None:
            assert len(accepted(leaf, [inter.der], [ca.root], server_name=address)) == 3
        else:
            fails(code, leaf, [inter.der], [ca.root], depth=0, server_name=address)


def test_ipv4_mapped_address_under_a_permitted_ipv4_subtree(ca: Pki) -> None:
    inter = make("CN=IP CA", ca.root, ca=True,
                 nc=x509.NameConstraints([x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))], None))
    for address, code in (("::ffff:10.0.0.1", None), ("::ffff:11.0.0.1", 47), ("2001:db8::1", 47)):
        leaf = make("O=Test", inter, san=[x509.IPAddress(ipaddress.ip_address(address))]).der
        if code is None:
            assert len(accepted(leaf, [inter.der], [ca.root], server_name=address)) == 3
        else:
            fails(code, leaf, [inter.der], [ca.root], depth=0, server_name=address)


@pytest.mark.parametrize("purpose", ["server", "client"])
def test_policy_extended_key_usage_must_be_present(purpose: str, ca: Pki) -> None:
    policy = Policy(extended_key_usage=PRIVATE_EKU)
    server_name = HOST if purpose == "server" else None
    for eku, code in ((None, 26), ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], 26),
                      ([PRIVATE_EKU], None)):
        leaf = ca.leaf(eku=eku).der
        if code is None:
            assert len(accepted(leaf, [ca.inter.der], [ca.root], purpose=purpose, server_name=server_name,
                                policy=policy)) == 3
        else:
            fails(code, leaf, [ca.inter.der], [ca.root], depth=0, purpose=purpose, server_name=server_name,
                  policy=policy)


# ============================================================================================
# 9. PEM scanning
# ============================================================================================


class Scanned(bytes):
    """Bytes that count how many bytes ``find``/``rfind`` look at: the work of a scan."""

    def __new__(cls, data: bytes) -> "Scanned":
        self = super().__new__(cls, data)
        self.looked = 0
        return self

    def find(self, sub, start=0, end=None):  # type: ignore[override]
        stop = len(self) if end is None else end
        at = super().find(sub, start, stop)
        self.looked += (stop if at < 0 else at + len(sub)) - start
        return at

    def rfind(self, sub, start=0, end=None):  # type: ignore[override]
        stop = len(self) if end is None else end
        at = super().rfind(sub, start, stop)
        self.looked += stop - (start if at < 0 else at)
        return at


UNTERMINATED = b"-----BEGIN CERTIFICATE-----\nAAAA\n" * 8000


def test_unterminated_begin_lines() -> None:
    """8000 BEGIN lines without an END: no certificate, found in one pass (a regex used to
    rescan to the end from each BEGIN: quadratic)."""
    for strict in (True, False):
        data = Scanned(UNTERMINATED)
        with pytest.raises(ssl.SSLError) as info:
            TrustStore().add_pem(data, strict=strict)
        assert info.value.reason == "NO_CERTIFICATE_OR_CRL_FOUND"
        assert data.looked <= 3 * len(data)


def test_unterminated_begin_lines_before_a_complete_block() -> None:
    good = make("CN=Good Root", ca=True)
    data = Scanned(UNTERMINATED + good.cert.public_bytes(PEM) + UNTERMINATED)
    store = TrustStore()
    store.add_pem(data)
    assert store.certificates == [good.cert]
    assert data.looked <= 3 * len(data)


def test_many_complete_blocks_all_load() -> None:
    roots = [make(f"CN=Root {i}", ca=True) for i in range(60)]
    noise = b"-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n"  # a stray END, a BEGIN without END
    data = Scanned(b"".join(noise + r.cert.public_bytes(PEM) for r in roots))
    store = TrustStore()
    store.add_pem(data)
    assert store.certificates == [r.cert for r in roots]
    assert data.looked <= 3 * len(data)


# ============================================================================================
# 10. The parsed-certificate cache is bounded in bytes
# ============================================================================================


def test_parsed_cache_bounded_in_bytes(ca: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    """Junk certificates of 20 KB in each chain: the cache of parsed certificates holds at most
    _CACHE_BYTES of DER (it used to be bounded only in entries: 4096 x 250 KB)."""
    monkeypatch.setattr(path, "_CACHE_BYTES", 64 << 10)
    monkeypatch.setattr(path, "_PARSED", {})
    monkeypatch.setattr(path, "_BY_OBJECT", {})
    monkeypatch.setattr(path, "_PARSED_BYTES", 0)
    blob = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), surgery.der(0x04, bytes(20_000)))
    nobody = make("CN=Nobody", ca=True)
    leaf = ca.leaf().der
    total = 0
    for _ in range(12):
        junk = make("CN=Junk", nobody, ca=True, extra=[(blob, False)]).der
        total += len(junk)
        assert len(accepted(leaf, [ca.inter.der, junk], [ca.root], server_name=HOST)) == 3
        held = sum(len(der) for der in path._PARSED)
        assert held <= path._CACHE_BYTES
        assert held == path._PARSED_BYTES
    assert total > 3 * path._CACHE_BYTES
