"""``getpeercert()`` dicts, checked against CPython's own decoder.

The oracle is ``ssl._ssl._test_decode_cert(path)``: the very ``_decode_certificate`` that
``ssl.SSLSocket.getpeercert()`` runs, on a PEM file. Every certificate here is decoded by both and
the dicts must be equal: certificates built with ``cryptography`` and ``trustme`` (a few edited as
DER where ``cryptography`` will not build them: v1, negative and over-long serial numbers), the
system CA bundle and a sample of the x509-limbo corpus.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import ssl
import warnings
from pathlib import Path
from typing import Callable, Iterable

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AuthorityInformationAccessOID as AIA
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ferrotls.x509.certdict import _LONG_NAMES, peer_certificate_der, peer_certificate_dict

PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER
KEY = ec.generate_private_key(ec.SECP256R1())
LIMBO = Path(__file__).resolve().parents[2] / "shared" / "x509-limbo" / "limbo.json.gz"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LIMBO_SAMPLE_EVERY = 60  # of ~30,000 distinct certificates: about 500

pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")


def oracle(cert: x509.Certificate, tmp_path: Path) -> dict:
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(PEM))
    return ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]


def assert_same(cert: x509.Certificate, tmp_path: Path) -> dict:
    want = oracle(cert, tmp_path)
    assert peer_certificate_dict(cert) == want
    return want


# --------------------------------------------------------------------------------------------
# Building certificates
# --------------------------------------------------------------------------------------------


def attr(oid: ObjectIdentifier, value, kind: _ASN1Type | None = None) -> x509.NameAttribute:
    return x509.NameAttribute(oid, value, _type=kind) if kind else x509.NameAttribute(oid, value)


def name(*rdns) -> x509.Name:
    """Each argument one RDN: a NameAttribute, or a list of them (a multi-valued RDN)."""
    return x509.Name([x509.RelativeDistinguishedName(r if isinstance(r, list) else [r])
                      for r in rdns])


CN_X = name(attr(NameOID.COMMON_NAME, "x"))


def build(subject: x509.Name = CN_X, issuer: x509.Name | None = None, serial: int = 0x1234,
          not_before=datetime.datetime(2020, 1, 1), not_after=datetime.datetime(3000, 1, 1),
          extensions: Iterable[x509.ExtensionType] = ()) -> x509.Certificate:
    builder = x509.CertificateBuilder(issuer or subject, subject, KEY.public_key(), serial,
                                      not_before, not_after)
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(KEY, hashes.SHA256())


# The few DER edits: a minimal TLV reader and writer.
def _tlv(der: bytes, at: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, end) of the TLV at ``at``."""
    length, start = der[at + 1], at + 2
    if length & 0x80:
        start += length & 0x7F
        length = int.from_bytes(der[at + 2:start], "big")
    return der[at], der[start:start + length], start + length


def _tlv_bytes(tag: int, content: bytes) -> bytes:
    n = len(content)
    size = (n.bit_length() + 7) // 8
    length = bytes([n]) if n < 0x80 else bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([tag]) + length + content


def edit_tbs(cert: x509.Certificate, edit: Callable[[bytes], bytes]) -> x509.Certificate:
    """The certificate with its TBSCertificate edited (the signature no longer verifies)."""
    _, body, _ = _tlv(cert.public_bytes(DER))
    _, tbs, end = _tlv(body)
    return x509.load_der_x509_certificate(_tlv_bytes(0x30, _tlv_bytes(0x30, edit(tbs)) + body[end:]))


def as_v1(cert: x509.Certificate) -> x509.Certificate:
    def drop_version(tbs: bytes) -> bytes:
        assert tbs[:5] == b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2 (v3)
        return tbs[5:]
    return edit_tbs(cert, drop_version)


def with_serial_content(cert: x509.Certificate, content: bytes) -> x509.Certificate:
    """The certificate with the serial number INTEGER's content octets replaced."""
    def replace(tbs: bytes) -> bytes:
        _, _, version_end = _tlv(tbs)
        tag, _, serial_end = _tlv(tbs, version_end)
        assert tag == 0x02
        return tbs[:version_end] + _tlv_bytes(0x02, content) + tbs[serial_end:]
    return edit_tbs(cert, replace)


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

UTF8, BMP, UNIVERSAL = _ASN1Type.UTF8String, _ASN1Type.BMPString, _ASN1Type.UniversalString
T61, IA5, PRINTABLE, BITS = (_ASN1Type.T61String, _ASN1Type.IA5String, _ASN1Type.PrintableString,
                             _ASN1Type.BitString)

NAMES = {
    "plain": name(
        attr(NameOID.COUNTRY_NAME, "US"), attr(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        attr(NameOID.LOCALITY_NAME, "San Francisco"), attr(NameOID.ORGANIZATION_NAME, "Example, Inc."),
        attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "Web"), attr(NameOID.COMMON_NAME, "www.example.com")),
    "multi-valued-rdn": name(
        attr(NameOID.DOMAIN_COMPONENT, "com"),
        [attr(NameOID.COMMON_NAME, "zeta"), attr(NameOID.ORGANIZATION_NAME, "alpha"),
         attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "mid")],
        [attr(NameOID.USER_ID, "u1"), attr(NameOID.EMAIL_ADDRESS, "a@example.com")],
        attr(NameOID.COMMON_NAME, "last")),
    "repeated-types": name(
        attr(NameOID.DOMAIN_COMPONENT, "com"), attr(NameOID.DOMAIN_COMPONENT, "example"),
        attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "a"), attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "b"),
        attr(NameOID.COMMON_NAME, "x"), attr(NameOID.COMMON_NAME, "y")),
    "ev-and-personal": name(
        attr(NameOID.JURISDICTION_COUNTRY_NAME, "DE"),
        attr(NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME, "Bayern"),
        attr(NameOID.JURISDICTION_LOCALITY_NAME, "München"),
        attr(NameOID.BUSINESS_CATEGORY, "Private Organization"),
        attr(NameOID.SERIAL_NUMBER, "HRB 12345"), attr(NameOID.ORGANIZATION_IDENTIFIER, "VATDE-1"),
        attr(NameOID.STREET_ADDRESS, "Hauptstraße 1"), attr(NameOID.POSTAL_CODE, "80331"),
        attr(NameOID.GIVEN_NAME, "Ada"), attr(NameOID.SURNAME, "Lovelace"),
        attr(NameOID.TITLE, "Dr."), attr(NameOID.INITIALS, "A.L."), attr(NameOID.PSEUDONYM, "al"),
        attr(NameOID.GENERATION_QUALIFIER, "III"), attr(NameOID.DN_QUALIFIER, "q"),
        attr(NameOID.UNSTRUCTURED_NAME, "box-1"), attr(NameOID.EMAIL_ADDRESS, "ada@example.org")),
    "unknown-oids": name(
        attr(ObjectIdentifier("1.2.3.4.5"), "private"),
        attr(ObjectIdentifier("1.3.6.1.4.1.99999.1.2"), "enterprise"),
        attr(ObjectIdentifier("2.5.4.200"), "unassigned X.520"),
        attr(NameOID.COMMON_NAME, "x")),
    "unicode-utf8": name(
        attr(NameOID.ORGANIZATION_NAME, "Zürich Straße GmbH"), attr(NameOID.LOCALITY_NAME, "東京"),
        attr(NameOID.COMMON_NAME, "snow ☃ and 🐍"), attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "a\x00b\nc")),
    # ASN1_STRING_to_UTF8 reads the one-byte types as Latin-1: UTF-8 "é" becomes "Ã©".
    "string-types": name(
        attr(NameOID.COMMON_NAME, "bmp é€ ☃", BMP), attr(NameOID.COMMON_NAME, "univ é€ 🐍", UNIVERSAL),
        attr(NameOID.ORGANIZATION_NAME, "t61 é", T61), attr(NameOID.EMAIL_ADDRESS, "ia5é@x", IA5),
        attr(NameOID.COUNTRY_NAME, "FR", PRINTABLE), attr(NameOID.LOCALITY_NAME, "plain", UTF8)),
    # BIT STRING values stay bytes: no unused-bits octet, unused bits cleared, empty is None.
    "bit-strings": name(
        attr(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x01\x02", BITS),
        attr(NameOID.X500_UNIQUE_IDENTIFIER, b"\x03\xff", BITS),
        attr(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x00\x00", BITS),
        attr(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00", BITS)),
    "empty": x509.Name([]),
}


@pytest.mark.parametrize("which", sorted(NAMES))
def test_names(which: str, tmp_path: Path) -> None:
    issuer = name(attr(NameOID.ORGANIZATION_NAME, "Issuer Ltd"), attr(NameOID.COMMON_NAME, "CA"))
    assert_same(build(subject=NAMES[which], issuer=issuer), tmp_path)
    assert_same(build(subject=CN_X, issuer=NAMES[which]), tmp_path)


def test_multi_valued_rdn_shape(tmp_path: Path) -> None:
    got = assert_same(build(NAMES["multi-valued-rdn"]), tmp_path)["subject"]
    assert [len(rdn) for rdn in got] == [1, 3, 2, 1]
    assert got[0] == (("domainComponent", "com"),)


def test_every_table_name_against_openssl(tmp_path: Path) -> None:
    """One attribute of each OID in the long-name table, all in one subject."""
    subject = name(*(attr(ObjectIdentifier(oid), "US") for oid in sorted(_LONG_NAMES)))
    got = assert_same(build(subject), tmp_path)["subject"]
    assert len(got) == len(_LONG_NAMES) > 100


def _arcs() -> list[str]:
    return sorted({oid.rsplit(".", 1)[0] for oid in _LONG_NAMES})


@pytest.mark.parametrize("arc", _arcs())
def test_long_name_table_is_complete(arc: str) -> None:
    """Within each arc of the table, it knows exactly the names the running OpenSSL knows."""
    for number in range(0, 160):
        oid = f"{arc}.{number}"
        try:
            openssl_name = ssl._ssl.txt2obj(oid, name=False)[2]  # type: ignore[attr-defined]
        except ValueError:
            openssl_name = oid
        assert _LONG_NAMES.get(oid, oid) == openssl_name


# --------------------------------------------------------------------------------------------
# Extensions
# --------------------------------------------------------------------------------------------


def other(oid: str, der: bytes) -> x509.OtherName:
    return x509.OtherName(ObjectIdentifier(oid), der)


def utf8(text: str) -> bytes:
    return _tlv_bytes(0x0C, text.encode())


def ip(text: str) -> x509.IPAddress:
    return x509.IPAddress(ipaddress.ip_address(text))


UPN, XMPP, SRV, NAI, SMTP = ("1.3.6.1.4.1.311.20.2.3", "1.3.6.1.5.5.7.8.5", "1.3.6.1.5.5.7.8.7",
                             "1.3.6.1.5.5.7.8.8", "1.3.6.1.5.5.7.8.9")
URI = x509.UniformResourceIdentifier

EXTENSIONS: dict[str, list[x509.ExtensionType]] = {
    "none": [],
    "san-dns-ip-email-uri": [x509.SubjectAlternativeName([
        x509.DNSName("example.com"), x509.DNSName("*.example.com"), x509.DNSName("xn--bcher-kva.de"),
        ip("127.0.0.1"), ip("0.0.0.0"), ip("255.255.255.255"),
        ip("::1"), ip("::"), ip("2001:db8::1"), ip("fe80::abcd:ef01"), ip("::ffff:1.2.3.4"),
        ip("2001:db8:85a3:8d3:1319:8a2e:370:7348"),
        x509.RFC822Name("user@example.com"), x509.RFC822Name("example.org"),
        URI("https://example.com/path?q=1#frag"), URI("spiffe://trust/domain")])],
    "san-dirname-rid": [x509.SubjectAlternativeName([
        x509.DirectoryName(NAMES["multi-valued-rdn"]), x509.DirectoryName(x509.Name([])),
        x509.RegisteredID(ObjectIdentifier("1.2.3.4")),
        x509.RegisteredID(ObjectIdentifier("2.5.4.3")),
        x509.RegisteredID(ObjectIdentifier("0.9.2342.19200300.100.1.25"))])],
    "san-othernames": [x509.SubjectAlternativeName([
        other(UPN, utf8("alice@corp.example")), other(XMPP, utf8("juliet@im.example")),
        other(SRV, _tlv_bytes(0x16, b"_xmpp.im.example")), other(SRV, utf8("_wrong.type")),
        other(NAI, utf8("example.net")), other(SMTP, utf8("θσερ@example.gr")),
        other(UPN, _tlv_bytes(0x13, b"printable")), other("1.2.3.4", utf8("private")),
        other("1.3.6.1.5.5.7.8.3", _tlv_bytes(0x30, utf8("x"))),
        other(UPN, utf8("cut at\nnewline")), other(XMPP, utf8("cut at\x00NUL")),
        other(UPN, utf8("long" * 600))])],
    "san-empty": [x509.SubjectAlternativeName([])],
    "aia": [x509.AuthorityInformationAccess([
        x509.AccessDescription(AIA.OCSP, URI("http://ocsp1.example")),
        x509.AccessDescription(AIA.CA_ISSUERS, URI("http://ca.example/ca.crt")),
        x509.AccessDescription(AIA.OCSP, x509.DNSName("ocsp-not-uri.example")),
        x509.AccessDescription(AIA.OCSP, URI("http://ocsp2.example")),
        x509.AccessDescription(ObjectIdentifier("1.3.6.1.5.5.7.48.5"), URI("rsync://repo")),
        x509.AccessDescription(AIA.CA_ISSUERS, URI("ldap://ca.example/cn=CA")),
        x509.AccessDescription(AIA.CA_ISSUERS, URI("http://ca.example/ca.crt"))])],
    "aia-ocsp-only": [x509.AuthorityInformationAccess([
        x509.AccessDescription(AIA.OCSP, URI("http://ocsp.example"))])],
    "aia-no-uris": [x509.AuthorityInformationAccess([
        x509.AccessDescription(AIA.CA_ISSUERS, x509.DirectoryName(CN_X))])],
    "crl-dps": [x509.CRLDistributionPoints([
        x509.DistributionPoint([URI("http://crl1.example/a.crl"), x509.DNSName("not-a-uri"),
                                URI("ldap://crl1.example/cn=a")], None, None, None),
        x509.DistributionPoint(None, x509.RelativeDistinguishedName([attr(NameOID.COMMON_NAME, "r")]),
                               None, [x509.DirectoryName(CN_X)]),
        x509.DistributionPoint(None, None, None, [x509.DirectoryName(CN_X)]),
        x509.DistributionPoint([URI("http://crl2.example/b.crl")],
                               None, frozenset({x509.ReasonFlags.key_compromise}), None),
        x509.DistributionPoint([URI("http://crl1.example/a.crl")], None, None, None)])],
    "crl-dps-no-uris": [x509.CRLDistributionPoints([
        x509.DistributionPoint([x509.DirectoryName(CN_X)], None, None, None)])],
    "unrelated": [x509.BasicConstraints(ca=False, path_length=None),
                  x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]),
                  x509.SubjectKeyIdentifier(b"\x01" * 20),
                  x509.FreshestCRL([x509.DistributionPoint([URI("http://delta")], None, None, None)])],
}
EXTENSIONS["all"] = [exts[0] for key, exts in EXTENSIONS.items()
                     if key in ("san-dns-ip-email-uri", "aia", "crl-dps")]


@pytest.mark.parametrize("which", sorted(EXTENSIONS))
def test_extensions(which: str, tmp_path: Path) -> None:
    assert_same(build(extensions=EXTENSIONS[which]), tmp_path)


def test_extension_formats(tmp_path: Path) -> None:
    got = assert_same(build(extensions=EXTENSIONS["all"]), tmp_path)
    assert ("IP Address", "2001:DB8:0:0:0:0:0:1") in got["subjectAltName"]
    assert got["OCSP"] == ("http://ocsp1.example", "http://ocsp2.example")
    assert got["crlDistributionPoints"] == (
        "http://crl1.example/a.crl", "ldap://crl1.example/cn=a", "http://crl2.example/b.crl",
        "http://crl1.example/a.crl")
    empty = assert_same(build(extensions=EXTENSIONS["san-empty"]), tmp_path)
    assert empty["subjectAltName"] == ()
    none = assert_same(build(extensions=EXTENSIONS["aia-no-uris"] + EXTENSIONS["crl-dps-no-uris"]),
                       tmp_path)
    assert not {"OCSP", "caIssuers", "crlDistributionPoints", "subjectAltName"} & set(none)


# --------------------------------------------------------------------------------------------
# Version, serial number, validity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("serial", [
    0, 1, 0x7F, 0x80, 0xFF, 0x0100, 0xFF00, 0x00ABCDEF, 0x1234567890ABCDEF,
    2 ** 64, 2 ** 159 - 1, 2 ** 158, int("0f" * 19, 16),
])
def test_serial_numbers(serial: int, tmp_path: Path) -> None:
    assert_same(build(serial=serial), tmp_path)


@pytest.mark.parametrize("content", [
    b"\xff", b"\x80", b"\xff\x01", b"\x80\x00",  # negative
    b"\x00\x80", b"\x00\xff\xff",  # positive with the sign octet
    bytes(range(1, 36)), bytes(range(1, 37)), bytes(range(1, 41)), b"\x7f" + b"\xff" * 70,
])
def test_serial_number_encodings(content: bytes, tmp_path: Path) -> None:
    """OpenSSL breaks the hex after 35 octets with a backslash and newline; CPython keeps line 1."""
    got = assert_same(with_serial_content(build(), content), tmp_path)
    assert got["serialNumber"].endswith("\\\n") == (len(content.lstrip(b"\x00")) > 35)


VALIDITY = {
    "year-3000": (datetime.datetime(2020, 1, 1), datetime.datetime(3000, 1, 1)),
    "single-digit-days": (datetime.datetime(2021, 2, 3, 4, 5, 6), datetime.datetime(2031, 9, 9, 9, 9, 9)),
    "two-digit-days": (datetime.datetime(2019, 10, 31, 23, 59, 59), datetime.datetime(2049, 12, 31, 23, 59, 59)),
    "utctime-edges": (datetime.datetime(1950, 1, 1), datetime.datetime(2050, 1, 1)),
    "late-utctime": (datetime.datetime(1999, 5, 17), datetime.datetime(2049, 12, 31, 23, 59, 59)),
    "year-9999": (datetime.datetime(2000, 2, 29, 12, 0, 0), datetime.datetime(9999, 12, 31, 23, 59, 59)),
}


@pytest.mark.parametrize("which", sorted(VALIDITY))
def test_validity(which: str, tmp_path: Path) -> None:
    not_before, not_after = VALIDITY[which]
    assert_same(build(not_before=not_before, not_after=not_after), tmp_path)


def test_time_format(tmp_path: Path) -> None:
    got = assert_same(build(not_before=datetime.datetime(2021, 2, 3, 4, 5, 6)), tmp_path)
    assert (got["notBefore"], got["notAfter"]) == ("Feb  3 04:05:06 2021 GMT",
                                                    "Jan  1 00:00:00 3000 GMT")


def test_version_1(tmp_path: Path) -> None:
    cert = as_v1(build(NAMES["plain"]))
    assert cert.version == x509.Version.v1
    assert assert_same(cert, tmp_path)["version"] == 1


def test_der() -> None:
    cert = build()
    assert x509.load_der_x509_certificate(peer_certificate_der(cert)) == cert


# --------------------------------------------------------------------------------------------
# trustme chains, the system CA bundle, x509-limbo
# --------------------------------------------------------------------------------------------


def test_trustme_chain(tmp_path: Path) -> None:
    ca = trustme.CA(organization_name="Testing CA Ltd", organization_unit_name="Certs")
    intermediate = ca.create_child_ca()
    leaves = [
        intermediate.issue_cert("localhost", "127.0.0.1", "::1", "user@example.org",
                                common_name="server.example", organization_name="Ünïcødé Org",
                                organization_unit_name="Unit 1"),
        ca.issue_cert("*.example.net", "10.0.0.0"),
        ca.issue_cert("client@example.com", not_after=datetime.datetime(3000, 1, 1)),
    ]
    blobs = [ca.cert_pem, intermediate.cert_pem] + [b for leaf in leaves for b in leaf.cert_chain_pems]
    for blob in blobs:
        assert_same(x509.load_pem_x509_certificate(blob.bytes()), tmp_path)


def _pem_blocks(text: str) -> list[bytes]:
    end = "-----END CERTIFICATE-----"
    return [(block[block.index("-----BEGIN"):] + end + "\n").encode()
            for block in text.split(end)[:-1]]


def _compare_corpus(pems: Iterable[bytes], tmp_path: Path) -> int:
    """Compares every certificate both OpenSSL and cryptography (extensions included) can read."""
    path, compared, mismatches = tmp_path / "corpus.pem", 0, []
    for pem in pems:
        path.write_bytes(pem)
        try:
            want = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cert = x509.load_pem_x509_certificate(pem)
                cert.extensions
        except (ssl.SSLError, ValueError):
            continue
        compared += 1
        if peer_certificate_dict(cert) != want:
            mismatches.append(pem.decode())
    assert not mismatches, f"{len(mismatches)} mismatches, the first:\n{mismatches[0]}"
    return compared


def test_system_ca_bundle(tmp_path: Path) -> None:
    if not CA_BUNDLE.exists():
        pytest.skip(f"no {CA_BUNDLE}")
    assert _compare_corpus(_pem_blocks(CA_BUNDLE.read_text()), tmp_path) > 50


def test_x509_limbo_sample(tmp_path: Path) -> None:
    if not LIMBO.exists():
        pytest.skip(f"no {LIMBO}")
    pems: set[str] = set()
    for case in json.loads(gzip.decompress(LIMBO.read_bytes()))["testcases"]:
        pems.update(case["trusted_certs"], case["untrusted_intermediates"], [case["peer_certificate"]])
    sample = sorted(pems)[::LIMBO_SAMPLE_EVERY]
    assert _compare_corpus((p.encode() for p in sample), tmp_path) > len(sample) * 0.9
