"""Unit tests of certificate path building and validation (ferrotls.x509.path) and of the name
rules behind it (names.py, publicsuffix.py, der.py): the public API of verify_chain, RFC 6125 host
names, common names (CABF 7.1.4.3), path building with backtracking and budgets, name
constraints (RFC 5280 4.2.1.10), Policy options, keys and signature algorithms (CABF 6.1.5,
7.1.3) and key usage.

Certificates come from a small local factory on cryptography's CertificateBuilder that makes
profile-compliant roots, intermediates and leaves (SKI, AKI, KU, EKU, SAN); every case changes one
thing. Validation runs at a fixed moment (AT) inside every certificate's validity.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import ipaddress
import ssl
import time
from typing import Optional, Sequence, Union

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ferrotls.x509 import CertificateVerifyError, Policy, TrustStore, verify_chain
from ferrotls.x509 import der, names, path, publicsuffix

import der_surgery as surgery

DER = serialization.Encoding.DER
UTC = datetime.timezone.utc
NOT_BEFORE = datetime.datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime.datetime(2026, 1, 1, tzinfo=UTC)
AT = datetime.datetime(2025, 1, 1, tzinfo=UTC)
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
PRIVATE_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.1")  # a private PKI's own purpose
PREFIX = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
DEFAULT = object()  # "the factory's usual value" where None means "leave the extension out"


# --------------------------------------------------------------------------------------------
# Keys: EC keys are cheap and fresh per certificate; RSA keys are made once per module
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def rsa_key(bits: int, slot: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, bits)


def ec_key(curve: ec.EllipticCurve = ec.SECP256R1()) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve)


# --------------------------------------------------------------------------------------------
# The certificate factory
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Made:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: object

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(DER)

    @property
    def subject(self) -> x509.Name:
        return self.cert.subject


def dn(text: str) -> x509.Name:
    """``"CN=leaf"`` or ``"O=Good,CN=leaf"`` (RDNs in certificate order) as a Name."""
    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "C": NameOID.COUNTRY_NAME,
            "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "emailAddress": NameOID.EMAIL_ADDRESS}
    attributes = []
    for part in filter(None, text.split(",")):
        kind, _, value = part.partition("=")
        attributes.append(x509.NameAttribute(oids[kind.strip()], value))
    return x509.Name(attributes)


def general_name(value: Union[str, x509.GeneralName]) -> x509.GeneralName:
    """A SAN entry: an IP address, ``mail:`` an rfc822Name, ``dir:`` a directoryName, else a dNSName."""
    if isinstance(value, x509.GeneralName):
        return value
    if value.startswith("mail:"):
        return x509.RFC822Name(value[5:])
    if value.startswith("dir:"):
        return x509.DirectoryName(dn(value[4:]))
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def subtree(value: Union[str, x509.GeneralName]) -> x509.GeneralName:
    """A name constraint: an IP network, ``mail:``, ``dir:``, else a DNS subtree."""
    if isinstance(value, x509.GeneralName):
        return value
    try:
        return x509.IPAddress(ipaddress.ip_network(value))
    except ValueError:
        return general_name(value)


def constraints(permitted: Sequence = (), excluded: Sequence = ()) -> x509.NameConstraints:
    return x509.NameConstraints(permitted_subtrees=[subtree(p) for p in permitted] or None,
                                excluded_subtrees=[subtree(e) for e in excluded] or None)


def key_usage(*bits: str) -> x509.KeyUsage:
    fields = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
              "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{f: f in bits for f in fields})


_serial = iter(range(0x1000, 1 << 30))


def make(subject: Union[str, x509.Name], issuer: Optional[Made] = None, *, key=None, ca: bool = False,
         path_len: Optional[int] = None, san=DEFAULT, eku=DEFAULT, ku=DEFAULT, nc=None,
         not_before: datetime.datetime = NOT_BEFORE, not_after: datetime.datetime = NOT_AFTER,
         aki=DEFAULT, ski=DEFAULT, algorithm=DEFAULT, rsa_padding=None, san_critical: bool = False,
         issuer_name: Optional[x509.Name] = None) -> Made:
    """A certificate for ``subject`` signed by ``issuer`` (self-signed when None).

    CAs get basicConstraints (critical), keyUsage keyCertSign+cRLSign (critical) and no EKU;
    leaves get keyUsage digitalSignature, EKU serverAuth+clientAuth and a dNSName SAN equal to
    their common name. ``aki``/``ski`` may be a key identifier (bytes) or None to leave it out."""
    name = dn(subject) if isinstance(subject, str) else subject
    key = key if key is not None else ec_key()
    signer = issuer.key if issuer is not None else key
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer_name or (issuer.subject if issuer is not None else name))
         .public_key(key.public_key()).serial_number(next(_serial))
         .not_valid_before(not_before).not_valid_after(not_after))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
    if ku is DEFAULT:
        ku = key_usage("key_cert_sign", "crl_sign") if ca else key_usage("digital_signature")
    if ku is not None:
        b = b.add_extension(ku, critical=True)
    if eku is DEFAULT:
        eku = None if ca else [SERVER_AUTH, CLIENT_AUTH]
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san is DEFAULT:
        cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        san = None if ca or not cns else [cns[0].value]
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName([general_name(s) for s in san]), critical=san_critical)
    if ski is DEFAULT:
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    if ski is not None:
        b = b.add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
    if aki is DEFAULT and issuer is not None:
        aki = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    if aki is not DEFAULT and aki is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
    if nc is not None:
        b = b.add_extension(nc, critical=True)
    if algorithm is DEFAULT:
        algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Made(b.sign(signer, algorithm, rsa_padding=rsa_padding), key)


def store_of(*anchors: Made) -> TrustStore:
    store = TrustStore()
    for anchor in anchors:
        store.add(anchor.cert)
    return store


def verify(leaf: Made, *intermediates: Made, roots: Sequence[Made], **kwargs) -> list[x509.Certificate]:
    kwargs.setdefault("at", AT)
    return verify_chain(leaf.cert, [i.cert for i in intermediates], store_of(*roots), **kwargs)


def fails(code: int, leaf: Made, *intermediates: Made, roots: Sequence[Made], **kwargs) -> CertificateVerifyError:
    with pytest.raises(CertificateVerifyError) as info:
        verify(leaf, *intermediates, roots=roots, **kwargs)
    assert info.value.verify_code == code, (info.value.verify_code, str(info.value))
    return info.value


# --- DER surgery: what cryptography's builder will not write (SHA-1, GeneralizedTime before 2050)


SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")  # sha1WithRSAEncryption
ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def resign(cert: x509.Certificate, signer, *, algorithm: Optional[bytes] = None, validity: Optional[bytes] = None
           ) -> x509.Certificate:
    """``cert`` with its TBSCertificate changed (the signature AlgorithmIdentifier, the Validity)
    and signed again: SHA-1 with an RSA ``signer``, ECDSA-SHA256 otherwise."""
    tbs = surgery.elements(cert.tbs_certificate_bytes)
    first = 2 if tbs[0][0] == 0xA0 else 1  # [0] version, serialNumber, signature, issuer, validity
    sha1 = isinstance(signer, rsa.RSAPrivateKey)
    tbs[first] = algorithm or (SHA1_RSA if sha1 else ECDSA_SHA256)
    if validity is not None:
        tbs[first + 2] = validity
    body = surgery.der(0x30, b"".join(tbs))
    if sha1:
        signature = signer.sign(body, padding.PKCS1v15(), hashes.SHA1())
    else:
        signature = signer.sign(body, ec.ECDSA(hashes.SHA256()))
    return x509.load_der_x509_certificate(surgery.der(0x30, body + tbs[first] + surgery.der(0x03, b"\x00" + signature)))


# --------------------------------------------------------------------------------------------
# A shared PKI: a root, an intermediate and a leaf for www.example.com
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root() -> Made:
    return make("CN=Test Root", ca=True)


@pytest.fixture(scope="module")
def inter(root: Made) -> Made:
    return make("CN=Test Intermediate", root, ca=True)


@pytest.fixture(scope="module")
def leaf(inter: Made) -> Made:
    return make("CN=www.example.com", inter)


def server(inter: Made, *san, **kwargs) -> Made:
    """A leaf under ``inter`` with these SAN entries (and no common name unless given)."""
    kwargs.setdefault("san", list(san))
    return make(kwargs.pop("subject", "O=Test"), inter, **kwargs)


# ============================================================================================
# 1. The public API contract
# ============================================================================================


@pytest.mark.parametrize("form", ["certificate", "bytes", "bytearray", "memoryview"])
def test_certificates_accepted_as_objects_or_der(form: str, root: Made, inter: Made, leaf: Made) -> None:
    convert = {"certificate": lambda m: m.cert, "bytes": lambda m: m.der,
               "bytearray": lambda m: bytearray(m.der), "memoryview": lambda m: memoryview(m.der)}[form]
    chain = verify_chain(convert(leaf), [convert(inter)], store_of(root), server_name="www.example.com", at=AT)
    assert chain == [leaf.cert, inter.cert, root.cert]
    assert all(isinstance(c, x509.Certificate) for c in chain)


def test_intermediates_in_any_order_with_extras_and_duplicates(root: Made, inter: Made, leaf: Made) -> None:
    second = make("CN=Second Intermediate", inter, ca=True)
    deep = make("CN=deep.example.com", second)
    unrelated = make("CN=Unrelated", make("CN=Other Root", ca=True), ca=True)
    bundle = [unrelated, inter, root, unrelated, inter, second, second]  # root first, leaf's issuer last
    chain = verify(deep, *bundle, roots=[root], server_name="deep.example.com")
    assert chain == [deep.cert, second.cert, inter.cert, root.cert]
    assert verify(deep, *reversed(bundle), roots=[root]) == chain
    # From a generator too: intermediates is any iterable.
    assert verify_chain(deep.cert, (m.der for m in bundle), store_of(root), at=AT) == chain


def test_path_is_leaf_first_and_ends_at_the_store_anchor(root: Made, inter: Made, leaf: Made) -> None:
    store = store_of(root)
    chain = verify_chain(leaf.der, [inter.der, root.der], store, at=AT)
    assert [c.subject for c in chain] == [leaf.subject, inter.subject, root.subject]
    assert chain[-1] in store and chain[0] not in store
    assert chain[-1] == store.certificates[0]
    # A trusted intermediate ends the path: nothing above it is needed.
    assert verify(leaf, inter, roots=[inter, root]) == [leaf.cert, inter.cert]


@pytest.mark.parametrize("purpose", ["both", "Server", "", "serverAuth"])
def test_unknown_purpose_is_a_value_error(purpose: str, root: Made, inter: Made, leaf: Made) -> None:
    with pytest.raises(ValueError, match="purpose"):
        verify(leaf, inter, roots=[root], purpose=purpose)


def test_client_purpose(root: Made, inter: Made) -> None:
    client = make("CN=alice", inter, san=None, eku=[CLIENT_AUTH])
    assert len(verify(client, inter, roots=[root], purpose="client")) == 3
    fails(26, client, inter, roots=[root], purpose="server")


def test_validation_time_forms(root: Made, inter: Made, leaf: Made, monkeypatch: pytest.MonkeyPatch) -> None:
    last = NOT_AFTER  # every certificate's notAfter: 2026-01-01 00:00:00Z
    second = datetime.timedelta(seconds=1)
    eastern = datetime.timezone(datetime.timedelta(hours=-5))

    def ok(at) -> bool:
        try:
            verify(leaf, inter, roots=[root], at=at)
            return True
        except CertificateVerifyError as exc:
            assert exc.verify_code == 10 and exc.depth == 2, exc  # the root's notAfter is checked first
            return False

    assert ok(last) and not ok(last + second)
    # Aware datetimes in any zone denote the instant they name.
    assert ok(last.astimezone(eastern)) and not ok((last + second).astimezone(eastern))
    # Float and int timestamps.
    assert ok(last.timestamp()) and not ok(last.timestamp() + 1) and ok(int(last.timestamp()))
    # Validity has whole seconds: 0.5 s after notAfter is still that second.
    assert ok(last + datetime.timedelta(microseconds=500_000)) and ok(last.timestamp() + 0.5)
    # A naive datetime is UTC, whatever the local time zone.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        naive = last.replace(tzinfo=None)
        assert ok(naive) and ok(naive + datetime.timedelta(microseconds=999_999)) and not ok(naive + second)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_default_time_is_now() -> None:
    now = datetime.datetime.now(UTC)
    day = datetime.timedelta(days=1)
    anchor = make("CN=Now Root", ca=True, not_before=now - 3 * day, not_after=now + 3 * day)
    current = make("CN=now.example", anchor, not_before=now - day, not_after=now + day)
    stale = make("CN=now.example", anchor, not_before=now - 3 * day, not_after=now - 2 * day)
    assert len(verify_chain(current.cert, [], store_of(anchor))) == 2
    with pytest.raises(CertificateVerifyError) as info:
        verify_chain(stale.cert, [], store_of(anchor))
    assert info.value.verify_code == 10


def test_error_is_an_ssl_verification_error(root: Made, inter: Made, leaf: Made) -> None:
    err = fails(62, leaf, inter, roots=[root], server_name="other.example.com")
    assert isinstance(err, ssl.SSLCertVerificationError) and isinstance(err, ssl.SSLError)
    assert isinstance(err, ValueError)  # as ssl.CertificateError is
    assert err.library == "SSL" and err.reason == "CERTIFICATE_VERIFY_FAILED"
    assert str(err).startswith(PREFIX)
    assert str(err) == PREFIX + "hostname mismatch (certificate is not valid for other.example.com)"
    assert err.args[0] == 1 and err.args[1] == str(err)
    assert (err.verify_message, err.depth, err.alert) == ("hostname mismatch", 0, "bad_certificate")
    assert "other.example.com" in err.detail
    # Without a detail the message ends with OpenSSL's text.
    assert str(CertificateVerifyError(20, 1)) == PREFIX + "unable to get local issuer certificate"


# ============================================================================================
# 2. Host names (RFC 6125)
# ============================================================================================


@pytest.mark.parametrize("given, expected", [
    ("www.example.com", "www.example.com"),
    ("WWW.Example.COM", "www.example.com"),
    ("www.example.com.", "www.example.com"),  # a fully qualified name: one trailing dot
    ("bücher.example", "xn--bcher-kva.example"),
    ("Bücher.Example.", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("localhost", "localhost"),
    ("127.0.0.1", ipaddress.IPv4Address("127.0.0.1")),
    ("::1", ipaddress.IPv6Address("::1")),
    ("[2001:DB8::1]", ipaddress.IPv6Address("2001:db8::1")),
    ("a..b", None),
    ("", None),
    (".", None),
    ("www.example.com..", None),
    ("-www.example.com", None),
    ("www-.example.com", None),
    ("under_score.example.com", None),
    ("*.example.com", None),
    ("a" * 64 + ".example", None),
    ("a" * 63 + ".example", "a" * 63 + ".example"),
    (".".join(["abcdefgh"] * 29), None),  # 260 characters
])
def test_reference_name(given: str, expected) -> None:
    assert names.reference_name(given) == expected


@pytest.mark.parametrize("pattern, name, matches", [
    ("www.example.com", "www.example.com", True),
    ("WWW.Example.Com", "www.example.com", True),
    ("www.example.com", "example.com", False),
    ("*.example.com", "www.example.com", True),
    ("*.EXAMPLE.com", "www.example.com", True),
    ("*.example.com", "example.com", False),             # not the bare parent
    ("*.example.com", "a.b.example.com", False),         # one label deep only
    ("*.example.com", "xn--bcher-kva.example.com", False),  # not over an A-label
    ("*.xn--bcher-kva.example", "www.xn--bcher-kva.example", True),
    ("*.com", "example.com", False),                     # not over a public suffix
    ("*", "localhost", False),
    ("*.*.example.com", "a.b.example.com", False),
    ("f*.example.com", "foo.example.com", False),       # no partial wildcards
    ("*foo.example.com", "xfoo.example.com", False),
    ("*oo.example.com", "foo.example.com", False),
    ("w*w.example.com", "www.example.com", False),
    ("www.*.com", "www.example.com", False),            # only the left-most label
    ("www.example.com.", "www.example.com", False),      # not a preferred-syntax name
    ("", "www.example.com", False),
])
def test_dns_pattern_matches(pattern: str, name: str, matches: bool) -> None:
    assert names.dns_pattern_matches(pattern, name) is matches


def test_wildcard_over_a_multi_label_public_suffix() -> None:
    assert names.dns_pattern_matches("*.example.co.uk", "www.example.co.uk")
    if not publicsuffix.available():
        pytest.skip("no Public Suffix List: only one-label suffixes are known")
    assert publicsuffix.is_public_suffix("co.uk") and not publicsuffix.is_public_suffix("example.co.uk")
    assert not names.dns_pattern_matches("*.co.uk", "example.co.uk")


def test_san_matches_by_name_type() -> None:
    dns_ip = [x509.DNSName("127.0.0.1"), x509.DNSName("::1")]
    real_ip = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    for reference in ("127.0.0.1", "::1", "[::1]"):
        address = names.reference_name(reference)
        assert not names.san_matches(dns_ip, address)
        assert names.san_matches(real_ip, address)
    assert not names.san_matches(real_ip, names.reference_name("localhost"))
    # IPv4 and its IPv4-mapped IPv6 form are different identifiers.
    assert not names.san_matches(real_ip, names.reference_name("::ffff:127.0.0.1"))
    assert names.san_matches([x509.DNSName("Example.COM")], "example.com")


@pytest.mark.parametrize("san, reference", [
    ("WWW.Example.com", "www.EXAMPLE.com"),
    ("www.example.com", "www.example.com."),
    ("xn--bcher-kva.example", "bücher.example"),
    ("xn--bcher-kva.example", "BÜCHER.example."),
    ("*.example.com", "anything.example.com"),
    ("*.example.co.uk", "www.example.co.uk"),
])
def test_host_name_matches(san: str, reference: str, root: Made, inter: Made) -> None:
    assert len(verify(server(inter, san), inter, roots=[root], server_name=reference)) == 3


@pytest.mark.parametrize("san, reference", [
    ("www.example.com", "example.com"),
    ("*.example.com", "example.com"),
    ("*.example.com", "a.b.example.com"),
    ("*.example.com", "xn--bcher-kva.example.com"),
    ("*.example.com", "bücher.example.com"),
    ("*.com", "example.com"),
    ("f*.example.com", "foo.example.com"),
    ("*foo.example.com", "xfoo.example.com"),
    ("xn--bcher-kva.example", "bucher.example"),
])
def test_host_name_mismatches(san: str, reference: str, root: Made, inter: Made) -> None:
    err = fails(62, server(inter, san), inter, roots=[root], server_name=reference)
    assert (err.verify_message, err.depth, err.alert) == ("hostname mismatch", 0, "bad_certificate")


def test_wildcard_over_public_suffix_rejected(root: Made, inter: Made) -> None:
    if not publicsuffix.available():
        pytest.skip("no Public Suffix List")
    fails(62, server(inter, "*.co.uk"), inter, roots=[root], server_name="example.co.uk")


def test_ip_references(root: Made, inter: Made) -> None:
    ips = server(inter, "127.0.0.1", "2001:db8::1", "www.example.com")
    for reference in ("127.0.0.1", "2001:db8::1", "2001:DB8:0:0:0:0:0:1", "[2001:db8::1]"):
        assert len(verify(ips, inter, roots=[root], server_name=reference)) == 3
    for reference in ("127.0.0.2", "::1", "[::1]", "::ffff:127.0.0.1"):
        err = fails(64, ips, inter, roots=[root], server_name=reference)
        assert (err.verify_message, err.alert) == ("IP address mismatch", "bad_certificate")
    # An IP reference never matches a dNSName that looks like one.
    looks_like_ip = server(inter, x509.DNSName("127.0.0.1"), x509.DNSName("::1"))
    fails(64, looks_like_ip, inter, roots=[root], server_name="127.0.0.1")
    fails(64, looks_like_ip, inter, roots=[root], server_name="[::1]")
    # A DNS reference never matches an iPAddress entry.
    fails(62, ips, inter, roots=[root], server_name="localhost")


@pytest.mark.parametrize("reference", ["a..b", "", "bad_name.example", "*.example.com", "www.example.com.."])
def test_invalid_reference_name_fails_with_62(reference: str, root: Made, inter: Made, leaf: Made) -> None:
    err = fails(62, leaf, inter, roots=[root], server_name=reference)
    assert "not a valid host name" in err.detail


def test_no_server_name_skips_the_name_check(root: Made, inter: Made) -> None:
    assert len(verify(server(inter, "www.example.com"), inter, roots=[root])) == 3
    # A client certificate's names are not checked against anything.
    assert len(verify(server(inter, "www.example.com"), inter, roots=[root], purpose="client")) == 3


# ============================================================================================
# 3. Common names
# ============================================================================================


def test_common_name_ignored_by_default(root: Made, inter: Made) -> None:
    cn_only = make("CN=www.example.com", inter, san=None)
    err = fails(62, cn_only, inter, roots=[root], server_name="www.example.com")
    assert "no subjectAltName" in err.detail
    assert len(verify(cn_only, inter, roots=[root], server_name="www.example.com", check_common_name=True)) == 3
    assert len(verify(cn_only, inter, roots=[root], server_name="WWW.example.com.", check_common_name=True)) == 3
    fails(62, cn_only, inter, roots=[root], server_name="other.example.com", check_common_name=True)


def test_common_name_not_used_when_a_san_is_present(root: Made, inter: Made) -> None:
    both = make("CN=www.example.com", inter, san=["api.example.com"])
    fails(62, both, inter, roots=[root], server_name="www.example.com", check_common_name=True)
    assert len(verify(both, inter, roots=[root], server_name="api.example.com", check_common_name=True)) == 3


def test_common_name_never_matches_an_ip_reference(root: Made, inter: Made) -> None:
    ip_cn = make("CN=127.0.0.1", inter, san=None)
    fails(64, ip_cn, inter, roots=[root], server_name="127.0.0.1", check_common_name=True)


def test_wildcard_common_name(root: Made, inter: Made) -> None:
    wildcard = make("CN=*.example.com", inter, san=None)
    assert len(verify(wildcard, inter, roots=[root], server_name="www.example.com", check_common_name=True)) == 3
    fails(62, wildcard, inter, roots=[root], server_name="example.com", check_common_name=True)


@pytest.mark.parametrize("cn, san, problem", [
    ("192.168.001.001", ["192.168.1.1"], "canonical"),      # RFC 3986 text required
    ("0xC0.168.1.1", ["192.168.1.1"], "canonical"),
    ("192.168.1.1", ["192.168.1.1"], None),
    ("2001:DB8::1", ["2001:db8::1"], "canonical"),           # RFC 5952: lower case, compressed
    ("2001:db8:0:0:0:0:0:1", ["2001:db8::1"], "canonical"),
    ("2001:db8::1", ["2001:db8::1"], None),
    ("WWW.example.com", ["www.example.com"], "character-for-character"),
    ("www.example.com.", ["www.example.com"], "character-for-character"),
    ("*.Example.com", ["*.example.com"], "character-for-character"),
    ("www.example.com", ["WWW.example.com"], "character-for-character"),
    ("www.example.com", ["www.example.com"], None),
    ("*.example.com", ["*.example.com"], None),
    ("bücher.example", ["xn--bcher-kva.example"], "U-labels"),
    ("bücher.example", [], "U-labels"),
    ("xn--bcher-kva.example", ["xn--bcher-kva.example"], None),
    # Naming nothing in the SAN is tolerated: BetterTLS's valid chains carry such common names.
    ("bad.example.com", ["test.localhost"], None),
    ("1.1.1.1", ["127.0.0.1"], None),
    ("Test Server", ["www.example.com"], None),
])
def test_common_name_problem(cn: str, san: list, problem: Optional[str]) -> None:
    found = names.common_name_problem(cn, [general_name(s) for s in san])
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_common_name_spelling_checked_through_verify_chain(root: Made, inter: Made) -> None:
    bad_ip = make("CN=192.168.001.001", inter, san=["192.168.1.1"])
    err = fails(62, bad_ip, inter, roots=[root], server_name="192.168.1.1")
    assert "7.1.4.3" in err.detail
    fails(62, make("CN=WWW.example.com", inter, san=["www.example.com"]), inter, roots=[root],
          server_name="www.example.com")
    fails(62, make("CN=bücher.example", inter, san=["xn--bcher-kva.example"]), inter, roots=[root])
    # BetterTLS: an unrelated common name next to the SAN is accepted.
    unrelated = make("CN=bad.example.com", inter, san=["test.localhost"])
    assert len(verify(unrelated, inter, roots=[root], server_name="test.localhost")) == 3
    fails(62, unrelated, inter, roots=[root], server_name="bad.example.com", check_common_name=True)


# ============================================================================================
# 4. Path building
# ============================================================================================


def test_backtracks_past_an_expired_cross_certificate(root: Made) -> None:
    key = ec_key()
    old = make("CN=Cross", root, key=key, ca=True, not_before=datetime.datetime(2020, 1, 1, tzinfo=UTC),
               not_after=datetime.datetime(2024, 6, 1, tzinfo=UTC))
    new = make("CN=Cross", root, key=key, ca=True)
    end = make("CN=www.example.com", new)
    assert verify(end, old, new, roots=[root]) == [end.cert, new.cert, root.cert]
    assert verify(end, new, old, roots=[root]) == [end.cert, new.cert, root.cert]
    err = fails(10, end, old, roots=[root])
    assert err.depth == 1


def test_backtracks_past_an_untrusted_root(root: Made) -> None:
    other = make("CN=Other Root", ca=True)
    key = ec_key()
    via_other = make("CN=Cross", other, key=key, ca=True)
    via_root = make("CN=Cross", root, key=key, ca=True)
    end = make("CN=www.example.com", via_root)
    assert verify(end, via_other, other, via_root, roots=[root]) == [end.cert, via_root.cert, root.cert]
    # Trusting the other root instead picks the other path.
    assert verify(end, via_root, via_other, other, roots=[other]) == [end.cert, via_other.cert, other.cert]
    fails(19, end, via_other, other, roots=[root])


def test_aki_mismatch_candidate_tried_last_but_usable(root: Made) -> None:
    claimed = b"\x01" * 20
    decoy = make("CN=Issuer", root, ca=True, ski=claimed)  # what the leaf's AKI names, but another key
    real = make("CN=Issuer", root, ca=True, ski=b"\x02" * 20)
    end = make("CN=www.example.com", real, aki=claimed)
    assert verify(end, decoy, real, roots=[root]) == [end.cert, real.cert, root.cert]
    assert verify(end, real, roots=[root]) == [end.cert, real.cert, root.cert]
    search = path._Validation(store=store_of(root), pool=[path._parse(decoy.cert), path._parse(real.cert)],
                              purpose="server", reference=None, check_common_name=False, moment=AT, max_depth=8,
                              key_usage=(), policy=path.DEFAULT_POLICY)
    ranked = search.candidates(path._parse(end.cert))
    assert [c.cert for c in ranked] == [decoy.cert, real.cert]
    fails(7, end, decoy, roots=[root])


@pytest.fixture(scope="module")
def rollover(root: Made) -> tuple[Made, Made, Made]:
    """An intermediate with pathLenConstraint 0, a self-issued certificate of its new key
    (subject = issuer, RFC 5280 6.1), and a leaf under the new key."""
    old = make("CN=Rollover CA", root, ca=True, path_len=0)
    new = make("CN=Rollover CA", old, ca=True)
    assert new.cert.subject == new.cert.issuer
    return old, new, make("CN=www.example.com", new)


def test_self_issued_intermediates_not_counted(root: Made, rollover: tuple[Made, Made, Made]) -> None:
    old, new, end = rollover
    # RFC 5280 6.1.4 (l): pathLenConstraint 0 on `old` still admits its self-issued certificate.
    assert verify(end, new, old, roots=[root]) == [end.cert, new.cert, old.cert, root.cert]
    # ... and only one intermediate counts towards max_chain_depth.
    assert len(verify(end, new, old, roots=[root], max_chain_depth=1)) == 4
    fails(22, end, new, old, roots=[root], max_chain_depth=0)
    # A certificate that is not self-issued does count for both.
    other = make("CN=Not Self Issued", old, ca=True)
    below = make("CN=www.example.com", other)
    err = fails(25, below, other, old, roots=[root])
    assert err.depth == 2
    plain = make("CN=Plain CA", root, ca=True)
    sub = make("CN=Sub CA", plain, ca=True)
    sub_rolled = make("CN=Sub CA", sub, ca=True)
    under = make("CN=www.example.com", sub_rolled)
    assert len(verify(under, sub_rolled, sub, plain, roots=[root], max_chain_depth=2)) == 5
    fails(22, under, sub_rolled, sub, plain, roots=[root], max_chain_depth=1)


def test_max_chain_depth_zero(root: Made, inter: Made, leaf: Made) -> None:
    direct = make("CN=www.example.com", root)
    assert verify(direct, roots=[root], max_chain_depth=0) == [direct.cert, root.cert]
    err = fails(22, leaf, inter, roots=[root], max_chain_depth=0)
    assert err.verify_message == "certificate chain too long"
    assert len(verify(leaf, inter, roots=[root], max_chain_depth=1)) == 3


def test_default_max_chain_depth(root: Made) -> None:
    chain = [root]
    for i in range(path.DEFAULT_MAX_CHAIN_DEPTH + 1):
        chain.append(make(f"CN=Level {i}", chain[-1], ca=True))
    deepest = make("CN=www.example.com", chain[-1])
    fails(22, deepest, *chain[1:], roots=[root])
    fine = make("CN=www.example.com", chain[-2])
    assert len(verify(fine, *chain[1:-1], roots=[root])) == path.DEFAULT_MAX_CHAIN_DEPTH + 2


def test_cycle_of_cross_signed_cas_terminates(root: Made) -> None:
    keys = [ec_key() for _ in range(3)]
    cas = {n: Made(make(f"CN={n}", ca=True, key=k).cert, k) for n, k in zip("XYZ", keys)}  # self-signed, untrusted
    cross = [make(f"CN={a}", cas[b], key=cas[a].key, ca=True) for a in "XYZ" for b in "XYZ" if a != b]
    end = make("CN=www.example.com", cas["X"])
    with pytest.raises(CertificateVerifyError) as info:
        verify(end, *cross, roots=[root])
    assert info.value.verify_code in (19, 20)  # no path reaches a trust anchor
    with pytest.raises(CertificateVerifyError) as info:
        verify(end, *cross, *cas.values(), roots=[root])
    assert info.value.verify_code in (19, 20)
    # Trusting one member of the cycle ends it.
    assert verify(end, *cross, roots=[cas["Z"]])[-1] == cas["Z"].cert


def test_signature_budget_stops_a_hostile_bundle(root: Made, monkeypatch: pytest.MonkeyPatch) -> None:
    """200 CAs with one subject name and different keys: each is a candidate issuer of the leaf,
    none verifies. The search gives up after SIGNATURE_BUDGET signatures, and the diagnosis (with
    a budget of its own) names the first failure of the obvious chain from the top: the
    impostor's signature, which the root's key does not verify (7 at depth 1)."""
    assert path.SIGNATURE_BUDGET < 200
    stranger = ec_key()
    impostors = [make("CN=Popular CA", Made(root.cert, stranger), ca=True) for _ in range(200)]
    end = make("CN=www.example.com", Made(impostors[0].cert, ec_key()))  # signed by none of them
    checked = []
    signed_by = path._signed_by
    monkeypatch.setattr(path, "_signed_by", lambda child, issuer: checked.append(1) or signed_by(child, issuer))
    err = fails(7, end, *impostors, roots=[root])
    assert err.depth == 1
    assert len(checked) <= 2 * path.SIGNATURE_BUDGET + 1


def test_diagnosis_stays_within_the_signature_budget(root: Made, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same hostile bundle, but each impostor fails a cheap check (expired) before its
    signature is ever tried: the search spends no budget, and the diagnosis of the failure, which
    would check every impostor's signature at every level of the chain it builds (~18 x 200),
    has a budget of its own."""
    shared = b"\x42" * 20
    expired = datetime.datetime(2024, 6, 1, tzinfo=UTC)
    impostors = [make("CN=Popular CA", Made(root.cert, ec_key()), issuer_name=dn("CN=Popular CA"), ca=True,
                      ski=shared, aki=shared, not_after=expired) for _ in range(200)]
    end = make("CN=www.example.com", Made(impostors[0].cert, ec_key()), aki=shared)
    checked = []
    signed_by = path._signed_by

    def counting(child, issuer):
        if (child.digest, issuer.digest) not in path._SIGNED:
            checked.append(1)
        return signed_by(child, issuer)

    monkeypatch.setattr(path, "_signed_by", counting)
    with pytest.raises(CertificateVerifyError):
        verify(end, *impostors, roots=[root])
    assert len(checked) <= 2 * path.SIGNATURE_BUDGET


def test_leaf_in_the_trust_store_is_the_whole_path() -> None:
    untrusted = make("CN=Unknown CA", ca=True)
    end = make("CN=pinned.example", untrusted)
    assert verify(end, roots=[end], server_name="pinned.example") == [end.cert]
    assert verify(end, untrusted, roots=[end]) == [end.cert]
    # Still a leaf: its validity and name are checked.
    fails(10, end, roots=[end], at=NOT_AFTER + datetime.timedelta(days=1))
    fails(62, end, roots=[end], server_name="other.example")
    fails(7, end, roots=[make("CN=Unknown CA", ca=True)])  # the same name, another key
    fails(20, end, roots=[make("CN=Somebody Else", ca=True)])


# ============================================================================================
# 5. Name constraints (RFC 5280 4.2.1.10)
# ============================================================================================


def ip(text: str) -> x509.IPAddress:
    return x509.IPAddress(ipaddress.ip_address(text))


def test_subtrees_dns() -> None:
    permitted = names.Subtrees([x509.DNSName("example.com")])
    assert len(permitted) == 1
    assert permitted.contains(x509.DNSName("example.com"), False) is True
    assert permitted.contains(x509.DNSName("www.EXAMPLE.com"), False) is True
    assert permitted.contains(x509.DNSName("a.b.example.com"), False) is True
    assert permitted.contains(x509.DNSName("badexample.com"), False) is False  # whole labels only
    assert permitted.contains(x509.DNSName("example.org"), False) is False
    assert permitted.contains(ip("10.0.0.1"), False) is None  # no constraint of that type
    assert names.Subtrees(None).contains(x509.DNSName("example.com"), False) is None


@pytest.mark.parametrize("tree, wildcard, permitted, excluded", [
    ("example.com", "*.example.com", True, True),
    ("a.example.com", "*.example.com", False, True),   # matches some names, not all
    ("a.b.example.com", "*.example.com", False, False),  # beyond one label
    ("example.org", "*.example.com", False, False),
    ("sub.example.com", "*.sub.example.com", True, True),
])
def test_subtrees_wildcard_dns(tree: str, wildcard: str, permitted: bool, excluded: bool) -> None:
    """A permitted subtree must hold every name the wildcard matches; an excluded one catches any."""
    assert bool(names.Subtrees([x509.DNSName(tree)]).contains(x509.DNSName(wildcard), False)) is permitted
    assert bool(names.Subtrees([x509.DNSName(tree)]).contains(x509.DNSName(wildcard), True)) is excluded


def test_subtrees_ip() -> None:
    trees = names.Subtrees([subtree("10.0.0.0/8"), subtree("2001:db8::/32")])
    assert trees.contains(ip("10.1.2.3"), False) is True
    assert trees.contains(ip("11.0.0.1"), False) is False
    assert trees.contains(ip("2001:db8::1"), False) is True
    assert trees.contains(ip("2001:db9::1"), False) is False
    # An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reaches the IPv4 host, so IPv4 subtrees hold it
    # too: an excluded IPv4 range excludes it (it would otherwise slip past the exclusion).
    v4 = names.Subtrees([subtree("10.0.0.0/8")])
    assert v4.contains(ip("::ffff:10.0.0.1"), True) is True
    assert v4.contains(ip("::ffff:11.0.0.1"), True) is False
    v6 = names.Subtrees([subtree("::/0")])
    assert v6.contains(ip("10.0.0.1"), True) is False


@pytest.mark.parametrize("tree, mailbox, inside", [
    ("bob@example.com", "bob@example.com", True),       # a mailbox: exactly that one
    ("bob@example.com", "bob@EXAMPLE.com", True),       # domains compare without case
    ("bob@example.com", "alice@example.com", False),
    ("bob@example.com", "Bob@example.com", False),      # local parts compare with case
    ("example.com", "anyone@example.com", True),        # a host: every mailbox there
    ("example.com", "bob@mail.example.com", False),
    (".example.com", "bob@mail.example.com", True),     # .host: every host below it
    (".example.com", "bob@example.com", False),
    (".example.com", "bob@badexample.com", False),
])
def test_subtrees_email(tree: str, mailbox: str, inside: bool) -> None:
    assert names.Subtrees([x509.RFC822Name(tree)]).contains(x509.RFC822Name(mailbox), False) is inside


def test_subtrees_directory_name() -> None:
    trees = names.Subtrees([x509.DirectoryName(dn("C=US,O=Good  Corp"))])
    assert trees.contains(x509.DirectoryName(dn("C=US,O=Good Corp,CN=leaf")), False) is True
    assert trees.contains(x509.DirectoryName(dn("C=US,O=good corp")), False) is True  # caseIgnoreMatch
    assert trees.contains(x509.DirectoryName(dn("C=US,O=Evil,CN=leaf")), False) is False
    assert trees.contains(x509.DirectoryName(dn("O=Good Corp,C=US")), False) is False  # RDN order matters
    assert trees.contains(x509.DirectoryName(dn("C=US")), False) is False  # shorter than the subtree


def test_subtrees_unusable_constraints_fail_only_for_their_type() -> None:
    unsupported = names.Subtrees([x509.UniformResourceIdentifier("example.com")])
    assert unsupported.contains(x509.DNSName("example.com"), False) is None
    with pytest.raises(names.ConstraintError, match="unsupported"):
        unsupported.contains(x509.UniformResourceIdentifier("https://example.com/"), False)
    malformed = names.Subtrees([x509.DNSName(".example.com")])
    assert malformed.contains(ip("10.0.0.1"), False) is None
    with pytest.raises(names.ConstraintError, match="malformed"):
        malformed.contains(x509.DNSName("www.example.com"), False)


def test_constraints_on_root_and_intermediate_both_apply() -> None:
    top = make("CN=Constrained Root", ca=True, nc=constraints(["example.com"]))
    mid = make("CN=Constrained Intermediate", top, ca=True, nc=constraints(excluded=["bad.example.com"]))
    assert len(verify(server(mid, "www.example.com"), mid, roots=[top])) == 3
    err = fails(48, server(mid, "www.bad.example.com"), mid, roots=[top])
    assert (err.depth, err.verify_message) == (0, "excluded subtree violation")
    err = fails(47, server(mid, "www.example.org"), mid, roots=[top])
    assert (err.depth, err.verify_message) == (0, "permitted subtree violation")
    # Every SAN entry is checked, not just the first.
    fails(47, server(mid, "www.example.com", "www.example.org"), mid, roots=[top])


def test_wildcard_san_under_constraints(root: Made) -> None:
    narrow = make("CN=Narrow", root, ca=True, nc=constraints(["a.example.com"]))
    fails(47, server(narrow, "*.example.com"), narrow, roots=[root])
    assert len(verify(server(narrow, "*.a.example.com"), narrow, roots=[root])) == 3
    excluding = make("CN=Excluding", root, ca=True, nc=constraints(excluded=["a.example.com"]))
    fails(48, server(excluding, "*.example.com"), excluding, roots=[root])
    assert len(verify(server(excluding, "*.other.example.com"), excluding, roots=[root])) == 3


def test_ip_constraints_through_verify_chain(root: Made) -> None:
    ca = make("CN=IP CA", root, ca=True, nc=constraints(["10.0.0.0/8", "2001:db8::/32", "example.com"],
                                                          ["10.66.0.0/16"]))
    assert len(verify(server(ca, "10.1.2.3", "2001:db8::5", "www.example.com"), ca, roots=[root],
                      server_name="10.1.2.3")) == 3
    fails(47, server(ca, "192.168.0.1"), ca, roots=[root])
    fails(47, server(ca, "2001:db9::1"), ca, roots=[root])
    fails(48, server(ca, "10.66.1.1"), ca, roots=[root])
    only_excluded_v4 = make("CN=IPv4 Exclusion", root, ca=True, nc=constraints(excluded=["10.0.0.0/8"]))
    fails(48, server(only_excluded_v4, "::ffff:10.0.0.1"), only_excluded_v4, roots=[root])
    assert len(verify(server(only_excluded_v4, "::ffff:11.0.0.1"), only_excluded_v4, roots=[root])) == 3


def test_email_constraints_through_verify_chain(root: Made) -> None:
    ca = make("CN=Mail CA", root, ca=True, nc=constraints(["mail:example.com"]))
    alice = make("CN=alice", ca, san=["mail:alice@example.com"], eku=[CLIENT_AUTH])
    assert len(verify(alice, ca, roots=[root], purpose="client")) == 3
    fails(47, make("CN=mallory", ca, san=["mail:mallory@mail.example.com"], eku=[CLIENT_AUTH]), ca, roots=[root],
          purpose="client")
    below = make("CN=Mail Sub CA", root, ca=True, nc=constraints(["mail:.example.com"]))
    fails(47, make("CN=alice", below, san=["mail:alice@example.com"], eku=[CLIENT_AUTH]), below, roots=[root],
          purpose="client")


def test_email_constraints_apply_to_the_subject_email_address(root: Made) -> None:
    ca = make("CN=Mail CA", root, ca=True, nc=constraints(["mail:example.com"]))
    outsider = make("CN=bob,emailAddress=bob@evil.example", ca, san=None, eku=[CLIENT_AUTH])
    fails(47, outsider, ca, roots=[root], purpose="client")


def test_directory_name_constraints(root: Made) -> None:
    ca = make("CN=DN CA", root, ca=True, nc=constraints(["dir:O=Good"], ["dir:O=Good,OU=Bad"]))
    assert len(verify(server(ca, "www.example.com", subject="O=Good,CN=www.example.com"), ca, roots=[root])) == 3
    fails(47, server(ca, "www.example.com", subject="O=Evil,CN=www.example.com"), ca, roots=[root])
    fails(48, server(ca, "www.example.com", subject="O=Good,OU=Bad,CN=x"), ca, roots=[root])
    # directoryName SAN entries are names too.
    fails(47, server(ca, "www.example.com", "dir:O=Evil", subject="O=Good,CN=x"), ca, roots=[root])
    # An empty subject (with a critical SAN) has no directoryName to check.
    empty = make(x509.Name([]), ca, san=["www.example.com"], san_critical=True)
    assert len(verify(empty, ca, roots=[root])) == 3


def test_constraints_apply_to_intermediates_below(root: Made) -> None:
    ca = make("CN=DN CA", root, ca=True, nc=constraints(["dir:O=Good"]))
    bad_sub = make("O=Evil,CN=Sub CA", ca, ca=True)
    good_sub = make("O=Good,CN=Sub CA", ca, ca=True)
    err = fails(47, make("O=Good,CN=www.example.com", bad_sub), bad_sub, ca, roots=[root])
    assert err.depth == 1
    assert len(verify(make("O=Good,CN=www.example.com", good_sub), good_sub, ca, roots=[root])) == 4


def test_self_issued_intermediate_exempt_from_constraints(root: Made) -> None:
    """RFC 5280 6.1.3 (b): a self-issued intermediate's names are not checked; the CA's own
    name lies outside its permitted subtree, so a key rollover certificate would fail."""
    ca = make("CN=DN CA", root, ca=True, nc=constraints(["dir:O=Good"]))
    rolled = make("CN=DN CA", ca, ca=True)
    end = make("O=Good,CN=www.example.com", rolled)
    assert verify(end, rolled, ca, roots=[root]) == [end.cert, rolled.cert, ca.cert, root.cert]
    fails(47, make("CN=www.example.com", rolled), rolled, ca, roots=[root])  # the leaf still is


def test_unsupported_constraint_type(root: Made) -> None:
    ca = make("CN=URI CA", root, ca=True, nc=constraints([x509.UniformResourceIdentifier("example.com")]))
    assert len(verify(server(ca, "www.example.com"), ca, roots=[root])) == 3
    err = fails(51, server(ca, "www.example.com", x509.UniformResourceIdentifier("https://example.com/")), ca,
                roots=[root])
    assert err.verify_message == "unsupported name constraint type"


def test_malformed_dns_constraint(root: Made) -> None:
    ca = make("CN=Dot CA", root, ca=True, nc=constraints([".example.com"]))
    err = fails(52, server(ca, "www.example.com"), ca, roots=[root])
    assert err.verify_message == "unsupported or invalid name constraint syntax"
    assert len(verify(server(ca, "10.0.0.1"), ca, roots=[root])) == 3  # no DNS name to check


def test_common_name_used_as_host_name_is_constrained(root: Made) -> None:
    ca = make("CN=Constrained", root, ca=True, nc=constraints(["example.com"]))
    outside = make("CN=www.evil.example", ca, san=None)
    assert len(verify(outside, ca, roots=[root], server_name=None)) == 3  # the CN names no host here
    fails(47, outside, ca, roots=[root], server_name="www.evil.example", check_common_name=True)


def test_wildcard_common_name_used_as_host_name_is_constrained(root: Made) -> None:
    ca = make("CN=Constrained", root, ca=True, nc=constraints(["example.com"]))
    outside = make("CN=*.evil.example", ca, san=None)
    fails(47, outside, ca, roots=[root], server_name="www.evil.example", check_common_name=True)


def test_name_budget_rejects_a_quadratic_certificate(root: Made) -> None:
    trees = [f"zone{i}.example" for i in range(1000)]
    ca = make("CN=Many Subtrees", root, ca=True, nc=constraints(trees))
    # 1000 names (and the subject) x 1000 subtrees: within NAME_BUDGET.
    assert 1001 * 1000 <= path.NAME_BUDGET
    fine = server(ca, *[f"host{i}.zone{i}.example" for i in range(1000)])
    assert len(verify(fine, ca, roots=[root])) == 3
    assert 1101 * 1000 > path.NAME_BUDGET
    quadratic = server(ca, *[f"host{i}.zone{i % 1000}.example" for i in range(1100)])
    err = fails(1, quadratic, ca, roots=[root])
    assert "name constraint" in err.detail


# ============================================================================================
# 6. Policy options
# ============================================================================================


def test_policy_extended_key_usage(root: Made, inter: Made) -> None:
    private = Policy(extended_key_usage=PRIVATE_EKU)
    custom = make("CN=svc.internal", inter, eku=[PRIVATE_EKU])
    assert len(verify(custom, inter, roots=[root], policy=private)) == 3
    assert len(verify(custom, inter, roots=[root], policy=private, purpose="client")) == 3
    fails(26, custom, inter, roots=[root])
    web = make("CN=svc.internal", inter, eku=[SERVER_AUTH])
    fails(26, web, inter, roots=[root], policy=private)
    # An intermediate's EKU must allow the policy's purpose as well.
    web_ca = make("CN=Web Only CA", root, ca=True, eku=[SERVER_AUTH])
    fails(26, make("CN=svc.internal", web_ca, eku=[PRIVATE_EKU]), web_ca, roots=[root], policy=private)


def test_policy_allow_ed25519() -> None:
    ed_root = make("CN=Ed Root", ca=True, key=ed25519.Ed25519PrivateKey.generate())
    ed_leaf = make("CN=ed.example", ed_root, key=ed25519.Ed25519PrivateKey.generate())
    fails(66, ed_leaf, roots=[ed_root])
    ec_leaf = make("CN=ed.example", ed_root)  # an ECDSA key signed with Ed25519
    fails(67, ec_leaf, roots=[ed_root])
    allow = Policy(allow_ed25519=True)
    assert len(verify(ed_leaf, roots=[ed_root], policy=allow, server_name="ed.example")) == 2
    assert len(verify(ec_leaf, roots=[ed_root], policy=allow)) == 2


def test_policy_strict_criticality() -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("localhost")  # trustme: critical SAN with a subject, critical EKU
    end = x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes())
    assert end.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical and end.subject
    store = TrustStore()
    store.add_pem(ca.cert_pem.bytes())
    assert len(verify_chain(end, [], store, server_name="localhost")) == 2
    with pytest.raises(CertificateVerifyError) as info:
        verify_chain(end, [], store, server_name="localhost", policy=Policy(strict_criticality=True))
    assert info.value.verify_code in (26, 41)


def test_policy_strict_criticality_critical_san(root: Made, inter: Made) -> None:
    critical_san = make("CN=www.example.com", inter, san_critical=True)
    assert len(verify(critical_san, inter, roots=[root])) == 3
    err = fails(41, critical_san, inter, roots=[root], policy=Policy(strict_criticality=True))
    assert "7.1.2.7.12" in err.detail
    # An empty subject requires it critical, strict or not.
    empty = make(x509.Name([]), inter, san=["www.example.com"], san_critical=True)
    assert len(verify(empty, inter, roots=[root], policy=Policy(strict_criticality=True))) == 3
    fails(88, make(x509.Name([]), inter, san=["www.example.com"]), inter, roots=[root])


def test_policy_defaults_are_off() -> None:
    assert Policy() == path.DEFAULT_POLICY
    assert (Policy().extended_key_usage, Policy().allow_ed25519, Policy().strict_criticality) == (None, False, False)


# ============================================================================================
# 7. Keys, signature algorithms and validity encodings
# ============================================================================================


@pytest.fixture(scope="module")
def rsa_root() -> Made:
    return make("CN=RSA Root", ca=True, key=rsa_key(2048))


def test_rsa_1024_keys(root: Made, inter: Made) -> None:
    weak = rsa_key(1024)
    err = fails(66, make("CN=www.example.com", inter, key=weak), inter, roots=[root])
    assert err.verify_message == "EE certificate key too weak"
    weak_ca = make("CN=Weak CA", root, ca=True, key=weak)
    err = fails(67, make("CN=www.example.com", weak_ca), weak_ca, roots=[root])
    assert (err.verify_message, err.depth) == ("CA certificate key too weak", 1)


def test_rsa_2048_accepted(rsa_root: Made) -> None:
    assert len(verify(make("CN=www.example.com", rsa_root), roots=[rsa_root])) == 2


@pytest.mark.parametrize("curve", [ec.SECP192R1, ec.SECP256K1, ec.SECP224R1])
def test_curves_outside_the_profile_rejected(curve, root: Made, inter: Made) -> None:
    try:
        key = ec_key(curve())
    except Exception as exc:  # a backend without the curve
        pytest.skip(f"{curve.name} unavailable: {exc}")
    fails(66, make("CN=www.example.com", inter, key=key), inter, roots=[root])


@pytest.mark.parametrize("curve", [ec.SECP384R1, ec.SECP521R1])
def test_profile_curves_accepted(curve, root: Made) -> None:
    ca = make("CN=Big Curve CA", root, ca=True, key=ec_key(curve()))
    digest = {"secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}[curve.name]
    end = make("CN=www.example.com", ca, key=ec_key(curve()), algorithm=digest())
    assert len(verify(end, ca, roots=[root])) == 3


def test_sha1_signature_rejected(rsa_root: Made) -> None:
    end = make("CN=www.example.com", rsa_root)
    sha1 = resign(end.cert, rsa_root.key)
    assert der.raw_fields(sha1.public_bytes(DER)).signature_algorithm == SHA1_RSA
    rsa_root.key.public_key().verify(sha1.signature, sha1.tbs_certificate_bytes, padding.PKCS1v15(),
                                     hashes.SHA1())  # a good signature, an unacceptable algorithm
    with pytest.raises(CertificateVerifyError) as info:
        verify_chain(sha1, [], store_of(rsa_root), at=AT)
    assert (info.value.verify_code, info.value.depth) == (68, 0)


def test_rsa_pss_signatures(rsa_root: Made) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    end = make("CN=www.example.com", rsa_root, rsa_padding=pss)
    assert end.cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSASSA_PSS
    assert len(verify(end, roots=[rsa_root], server_name="www.example.com")) == 2
    pss384 = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    assert len(verify(make("CN=a.example", rsa_root, rsa_padding=pss384, algorithm=hashes.SHA384()),
                      roots=[rsa_root])) == 2
    # CABF 7.1.3.2: the salt is as long as the hash.
    short_salt = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20)
    fails(68, make("CN=www.example.com", rsa_root, rsa_padding=short_salt), roots=[rsa_root])


def test_ecdsa_hash_must_match_the_issuer_curve(root: Made) -> None:
    """CABF 7.1.3.2.2: a P-384 key signs with SHA-384, a P-256 key with SHA-256."""
    p384 = make("CN=P-384 CA", root, ca=True, key=ec_key(ec.SECP384R1()))
    err = fails(68, make("CN=www.example.com", p384, algorithm=hashes.SHA256()), p384, roots=[root])
    assert "7.1.3.2.2" in err.detail and err.depth == 0
    assert len(verify(make("CN=www.example.com", p384, algorithm=hashes.SHA384()), p384, roots=[root])) == 3
    fails(68, make("CN=www.example.com", root, algorithm=hashes.SHA384()), roots=[root])


def _validity(not_before: tuple[int, bytes], not_after: tuple[int, bytes]) -> bytes:
    return surgery.der(0x30, surgery.der(*not_before) + surgery.der(*not_after))


def test_validity_encodings(root: Made) -> None:
    utc = make("CN=www.example.com", root)
    fields = der.raw_fields(utc.der)
    assert fields.not_before == (der.UTC_TIME, b"240101000000Z")
    assert fields.not_after == (der.UTC_TIME, b"260101000000Z")
    assert fields.serial == utc.cert.serial_number.to_bytes(len(fields.serial), "big")
    assert fields.subject == utc.subject.public_bytes() and fields.issuer == root.subject.public_bytes()
    assert fields.signature_algorithm == fields.tbs_signature == ECDSA_SHA256
    # From 2050 on, GeneralizedTime (RFC 5280 4.1.2.5).
    far = make("CN=www.example.com", root, not_after=datetime.datetime(2050, 1, 1, tzinfo=UTC))
    assert der.raw_fields(far.der).not_after == (der.GENERALIZED_TIME, b"20500101000000Z")
    far_root = make("CN=Test Root", ca=True, key=root.key, not_after=datetime.datetime(2051, 1, 1, tzinfo=UTC))
    assert len(verify(far, roots=[far_root])) == 2
    # GeneralizedTime before 2050 is a format error of that field.
    general = resign(utc.cert, root.key, validity=_validity((der.UTC_TIME, b"240101000000Z"),
                                                             (der.GENERALIZED_TIME, b"20260101000000Z")))
    assert der.raw_fields(general.public_bytes(DER)).not_after == (der.GENERALIZED_TIME, b"20260101000000Z")
    with pytest.raises(CertificateVerifyError) as info:
        verify_chain(general, [], store_of(root), at=AT)
    assert info.value.verify_code == 14
    early = resign(utc.cert, root.key, validity=_validity((der.GENERALIZED_TIME, b"20240101000000Z"),
                                                           (der.UTC_TIME, b"260101000000Z")))
    with pytest.raises(CertificateVerifyError) as info:
        verify_chain(early, [], store_of(root), at=AT)
    assert info.value.verify_code == 13


# ============================================================================================
# 8. Key usage required of the leaf
# ============================================================================================


def test_key_usage_requirements(root: Made, inter: Made) -> None:
    signing = make("CN=www.example.com", inter, ku=key_usage("digital_signature"))
    assert len(verify(signing, inter, roots=[root], key_usage=("digital_signature",))) == 3
    err = fails(26, signing, inter, roots=[root], key_usage=("key_encipherment",))
    assert "key_encipherment" in err.detail
    encrypting = make("CN=www.example.com", inter, ku=key_usage("key_encipherment"))
    assert len(verify(encrypting, inter, roots=[root], key_usage=("key_encipherment",))) == 3
    err = fails(39, encrypting, inter, roots=[root], key_usage=("digital_signature",))
    assert err.verify_message == "key usage does not include digital signature"
    # Without a keyUsage extension every usage is allowed (RFC 5280 4.2.1.3).
    unrestricted = make("CN=www.example.com", inter, ku=None)
    assert len(verify(unrestricted, inter, roots=[root], key_usage=("key_encipherment", "digital_signature"))) == 3


@pytest.mark.parametrize("ku", [key_usage("digital_signature"), None])
def test_unknown_key_usage_name_is_a_value_error(ku, root: Made, inter: Made) -> None:
    end = make("CN=www.example.com", inter, ku=ku)
    with pytest.raises(ValueError):
        verify(end, inter, roots=[root], key_usage=("digitalSignature",))
