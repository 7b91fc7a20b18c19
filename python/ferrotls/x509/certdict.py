"""``getpeercert()`` data: a certificate as the dict CPython's ``ssl`` module makes of it.

``peer_certificate_dict(cert)`` returns what ``ssl.SSLSocket.getpeercert()`` returns for the same
certificate under CPython 3.11 and OpenSSL 3.0 (``_decode_certificate`` in ``Modules/_ssl.c``):

- ``subject``, ``issuer``: a tuple of RDNs, each a tuple of ``(long_name, value)`` pairs; names are
  OpenSSL's long names (``OBJ_obj2txt(..., no_name=0)``), the dotted OID when OpenSSL has none.
  Values go through ``ASN1_STRING_to_UTF8``: one-byte string types (PrintableString, IA5String,
  T61String, ...) are read as Latin-1, so non-ASCII bytes become one character each; a BIT STRING
  value stays ``bytes`` (without the unused-bits octet; ``None`` when empty).
- ``version`` (X.509 version, 1 or 3), ``serialNumber`` (``i2a_ASN1_INTEGER``: uppercase hex of
  the magnitude, ``-`` for a negative one, broken with ``\\`` + newline after 35 octets and cut
  there, as ``BIO_gets`` reads one line), ``notBefore``/``notAfter`` (``ASN1_TIME_print``:
  ``'Jan  1 00:00:00 3000 GMT'``).
- ``subjectAltName`` (whenever the extension is present, even empty), ``OCSP`` and ``caIssuers``
  (URIs of authorityInfoAccess), ``crlDistributionPoints`` (URIs of the full names, duplicates
  kept): the last three only when they have at least one URI.

Not reproduced (``cryptography`` refuses these certificates or fields before we see them): X.509
v2, x400Address and ediPartyName names, duplicate or malformed extensions (``cert.extensions``
raises ``ValueError``, and so do we). A registered ID or attribute type outside the arcs of
``_LONG_NAMES`` is printed dotted, where OpenSSL may know a long name.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

__all__ = ["peer_certificate_dict", "peer_certificate_der"]

# OpenSSL's long names (crypto/objects/objects.txt, 3.0) for every attribute type it knows in the
# arcs names use: "arc: number name number name ...". tests/test_certdict.py checks this table
# against the running OpenSSL, arc by arc.
_LONG_NAMES_TABLE = """
2.5.4: 3 commonName 4 surname 5 serialNumber 6 countryName 7 localityName 8 stateOrProvinceName
  9 streetAddress 10 organizationName 11 organizationalUnitName 12 title 13 description
  14 searchGuide 15 businessCategory 16 postalAddress 17 postalCode 18 postOfficeBox
  19 physicalDeliveryOfficeName 20 telephoneNumber 21 telexNumber 22 teletexTerminalIdentifier
  23 facsimileTelephoneNumber 24 x121Address 25 internationaliSDNNumber 26 registeredAddress
  27 destinationIndicator 28 preferredDeliveryMethod 29 presentationAddress
  30 supportedApplicationContext 31 member 32 owner 33 roleOccupant 34 seeAlso 35 userPassword
  36 userCertificate 37 cACertificate 38 authorityRevocationList 39 certificateRevocationList
  40 crossCertificatePair 41 name 42 givenName 43 initials 44 generationQualifier
  45 x500UniqueIdentifier 46 dnQualifier 47 enhancedSearchGuide 48 protocolInformation
  49 distinguishedName 50 uniqueMember 51 houseIdentifier 52 supportedAlgorithms
  53 deltaRevocationList 54 dmdName 65 pseudonym 72 role 97 organizationIdentifier
  98 countryCode3c 99 countryCode3n 100 dnsName
1.2.840.113549.1.9: 1 emailAddress 2 unstructuredName 3 contentType 4 messageDigest 5 signingTime
  6 countersignature 7 challengePassword 8 unstructuredAddress 9 extendedCertificateAttributes
  14 Extension_Request 15 S/MIME_Capabilities 16 S/MIME 20 friendlyName 21 localKeyID
0.9.2342.19200300.100.1: 1 userId 2 textEncodedORAddress 3 rfc822Mailbox 4 info 5 favouriteDrink
  6 roomNumber 7 photo 8 userClass 9 host 10 manager 11 documentIdentifier 12 documentTitle
  13 documentVersion 14 documentAuthor 15 documentLocation 20 homeTelephoneNumber 21 secretary
  22 otherMailbox 23 lastModifiedTime 24 lastModifiedBy 25 domainComponent 26 aRecord
  27 pilotAttributeType27 28 mXRecord 29 nSRecord 30 sOARecord 31 cNAMERecord
  37 associatedDomain 38 associatedName 39 homePostalAddress 40 personalTitle
  41 mobileTelephoneNumber 42 pagerTelephoneNumber 43 friendlyCountryName 44 uniqueIdentifier
  45 organizationalStatus 46 janetMailbox 47 mailPreferenceOption 48 buildingName 49 dSAQuality
  50 singleLevelQuality 51 subtreeMinimumQuality 52 subtreeMaximumQuality 53 personalSignature
  54 dITRedirect 55 audio 56 documentPublisher
1.3.6.1.4.1.311.60.2.1: 1 jurisdictionLocalityName 2 jurisdictionStateOrProvinceName
  3 jurisdictionCountryName
"""


def _parse_table(text: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for block in text.replace("\n  ", " ").strip().splitlines():
        arc, _, pairs = block.partition(": ")
        words = pairs.split()
        for number, name in zip(words[::2], words[1::2]):
            names[f"{arc}.{number}"] = name.replace("_", " ")
    return names


_LONG_NAMES = _parse_table(_LONG_NAMES_TABLE)

# otherName forms GENERAL_NAME_print (OpenSSL 3.0) spells out: type id -> (label, ASN.1 tag);
# any other type id, or a value of another type, prints as "<unsupported>".
_OTHER_NAMES = {
    "1.3.6.1.5.5.7.8.9": ("SmtpUTF8Mailbox", 0x0C),
    "1.3.6.1.5.5.7.8.5": ("XmppAddr", 0x0C),
    "1.3.6.1.5.5.7.8.7": ("SRVName", 0x16),
    "1.3.6.1.4.1.311.20.2.3": ("UPN", 0x0C),
    "1.3.6.1.5.5.7.8.8": ("NAIRealm", 0x0C),
}

# ASN1_STRING_to_UTF8 converts these from UTF-8/UCS-2/UCS-4; every other string type is taken
# one byte per character (cryptography decoded those bytes as UTF-8 or refused them).
_WIDE_STRING_TYPES = {_ASN1Type.UTF8String, _ASN1Type.BMPString, _ASN1Type.UniversalString}
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_BIO_GETS_MAX = 2046  # CPython reads printed values with BIO_gets(bio, buf[2048], 2047)

AttributeValue = Union[str, bytes, None]
NameTuple = tuple[tuple[tuple[str, AttributeValue], ...], ...]


def _long_name(oid: x509.ObjectIdentifier) -> str:
    return _LONG_NAMES.get(oid.dotted_string, oid.dotted_string)


def _attribute_value(attr: x509.NameAttribute) -> AttributeValue:
    value = attr.value
    if isinstance(value, bytes):  # BIT STRING: unused-bits octet, then the bits
        if len(value) < 2:
            return None
        unused = value[0] & 0x07
        return value[1:-1] + bytes([value[-1] & (0xFF << unused) & 0xFF])
    if attr._type in _WIDE_STRING_TYPES:
        return value
    return value.encode("utf-8").decode("latin-1")


def _name(name: x509.Name) -> NameTuple:
    return tuple(
        tuple((_long_name(attr.oid), _attribute_value(attr)) for attr in rdn) for rdn in name.rdns
    )


def _serial_number(n: int) -> str:
    magnitude = abs(n).to_bytes(max(1, (abs(n).bit_length() + 7) // 8), "big")
    text = ("-" if n < 0 else "") + magnitude[:35].hex().upper()
    return text + "\\\n" if len(magnitude) > 35 else text


def _time(t: Any) -> str:
    return f"{_MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S} {t.year} GMT"


def _ip_address(ip: Any) -> str:
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        return ":".join("%X" % int(group, 16) for group in ip.exploded.split(":"))
    return "<invalid>"  # an address with a mask: not 4 or 16 octets


def _other_name(name: x509.OtherName) -> str:
    label, tag = _OTHER_NAMES.get(name.type_id.dotted_string, (None, None))
    der = name.value
    if label is None or len(der) < 2 or der[0] != tag:
        return "<unsupported>"
    length, start = der[1], 2
    if length & 0x80:
        start += length & 0x7F
        length = int.from_bytes(der[2:start], "big")
    # BIO_printf("othername:%s:%.*s") stops at a NUL; BIO_gets then returns one line.
    line = (b"othername:" + label.encode() + b":" + der[start:start + length].split(b"\0")[0])
    line = line[:_BIO_GETS_MAX]
    if b"\n" in line:
        line = line[: line.index(b"\n") + 1]
    return line[len(b"othername:"):].decode("utf-8")


def _general_name(name: x509.GeneralName) -> tuple[str, Any]:
    if isinstance(name, x509.DNSName):
        return ("DNS", name.value)
    if isinstance(name, x509.IPAddress):
        return ("IP Address", _ip_address(name.value))
    if isinstance(name, x509.RFC822Name):
        return ("email", name.value)
    if isinstance(name, x509.UniformResourceIdentifier):
        return ("URI", name.value)
    if isinstance(name, x509.DirectoryName):
        return ("DirName", _name(name.value))
    if isinstance(name, x509.RegisteredID):
        return ("Registered ID", _long_name(name.value))
    if isinstance(name, x509.OtherName):
        return ("othername", _other_name(name))
    raise ValueError(f"unsupported general name {name!r}")


def _uris(names: Any) -> list[str]:
    return [n.value for n in names if isinstance(n, x509.UniformResourceIdentifier)]


def peer_certificate_dict(cert: x509.Certificate) -> dict[str, Any]:
    """The dict ``ssl.SSLSocket.getpeercert()`` gives for ``cert``."""
    result: dict[str, Any] = {
        "subject": _name(cert.subject),
        "issuer": _name(cert.issuer),
        "version": cert.version.value + 1,
        "serialNumber": _serial_number(cert.serial_number),
        "notBefore": _time(cert.not_valid_before_utc),
        "notAfter": _time(cert.not_valid_after_utc),
    }
    extensions = {ext.oid: ext.value for ext in cert.extensions}
    san: Optional[x509.SubjectAlternativeName] = extensions.get(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if san is not None:
        result["subjectAltName"] = tuple(_general_name(n) for n in san)
    aia = extensions.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS, [])
    for key, method in (("OCSP", AuthorityInformationAccessOID.OCSP),
                        ("caIssuers", AuthorityInformationAccessOID.CA_ISSUERS)):
        uris = _uris(d.access_location for d in aia if d.access_method == method)
        if uris:
            result[key] = tuple(uris)
    # A distribution point named relative to the CRL issuer has no URIs (CPython skips it).
    dps = extensions.get(ExtensionOID.CRL_DISTRIBUTION_POINTS, [])
    uris = [uri for dp in dps for uri in _uris(dp.full_name or ())]
    if uris:
        result["crlDistributionPoints"] = tuple(uris)
    return result


def peer_certificate_der(cert: x509.Certificate) -> bytes:
    """``getpeercert(binary_form=True)``: the certificate's DER."""
    return cert.public_bytes(Encoding.DER)
