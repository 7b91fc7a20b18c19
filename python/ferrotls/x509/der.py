"""The few raw DER fields of a certificate that `cryptography` does not expose: the signature and
public key AlgorithmIdentifiers as encoded, the serial number's octets and the validity times'
ASN.1 types."""

from __future__ import annotations

from typing import NamedTuple

UTC_TIME, GENERALIZED_TIME = 0x17, 0x18


class RawFields(NamedTuple):
    signature_algorithm: bytes  # Certificate.signatureAlgorithm, DER
    tbs_signature: bytes        # TBSCertificate.signature, DER
    serial: bytes               # the INTEGER's content octets
    not_before: tuple[int, bytes]  # (tag, content)
    not_after: tuple[int, bytes]
    spki_algorithm: bytes       # SubjectPublicKeyInfo.algorithm, DER
    issuer: bytes               # the issuer Name, DER
    subject: bytes              # the subject Name, DER


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the element at ``pos``; ValueError when truncated."""
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def raw_fields(cert_der: bytes) -> RawFields:
    """RFC 5280 4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }."""
    _, pos, _ = _tlv(cert_der, 0)
    _, tbs, tbs_end = _tlv(cert_der, pos)
    sig_alg = cert_der[tbs_end : _tlv(cert_der, tbs_end)[2]]
    tag, start, end = _tlv(cert_der, tbs)
    if tag == 0xA0:  # [0] EXPLICIT version
        tag, start, end = _tlv(cert_der, end)
    serial = cert_der[start:end]
    _, _, alg_end = _tlv(cert_der, end)
    tbs_sig = cert_der[end:alg_end]
    _, _, issuer_end = _tlv(cert_der, alg_end)
    _, validity, validity_end = _tlv(cert_der, issuer_end)
    nb_tag, nb_start, nb_end = _tlv(cert_der, validity)
    na_tag, na_start, na_end = _tlv(cert_der, nb_end)
    _, _, subject_end = _tlv(cert_der, validity_end)
    issuer, subject = cert_der[alg_end:issuer_end], cert_der[validity_end:subject_end]
    _, spki, _ = _tlv(cert_der, subject_end)
    spki_alg = cert_der[spki : _tlv(cert_der, spki)[2]]
    return RawFields(sig_alg, tbs_sig, serial, (nb_tag, cert_der[nb_start:nb_end]), (na_tag, cert_der[na_start:na_end]),
                     spki_alg, issuer, subject)
