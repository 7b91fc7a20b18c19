"""Certificate path validation (being rewritten in Python: issue 5)."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Callable, Optional, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification as v
from cryptography.x509.oid import ExtendedKeyUsageOID

from .store import TrustStore

# X509_V_ERR code -> (OpenSSL's message, the TLS alert OpenSSL sends for it).
VERIFY_ERRORS: dict[int, tuple[str, str]] = {
    1: ("unspecified certificate verification error", "bad_certificate"),
    2: ("unable to get issuer certificate", "unknown_ca"),
    7: ("certificate signature failure", "decrypt_error"),
    9: ("certificate is not yet valid", "bad_certificate"),
    10: ("certificate has expired", "certificate_expired"),
    18: ("self-signed certificate", "unknown_ca"),
    19: ("self-signed certificate in certificate chain", "unknown_ca"),
    20: ("unable to get local issuer certificate", "unknown_ca"),
    25: ("path length constraint exceeded", "unknown_ca"),
    26: ("unsuitable certificate purpose", "unsupported_certificate"),
    32: ("key usage does not include certificate signing", "certificate_unknown"),
    34: ("unhandled critical extension", "certificate_unknown"),
    37: ("invalid non-CA certificate (has CA markings)", "certificate_unknown"),
    47: ("permitted subtree violation", "certificate_unknown"),
    48: ("excluded subtree violation", "certificate_unknown"),
    62: ("hostname mismatch", "bad_certificate"),
    64: ("IP address mismatch", "bad_certificate"),
    79: ("invalid CA certificate", "unknown_ca"),
}

# Fragments of cryptography's VerificationError text -> X509_V_ERR code, first match wins.
# Codes 10, 20 and 62 are refined below (9; 18/19; 64) by looking at the chain itself.
_MESSAGE_CODES: list[tuple[str, int]] = [
    ("not valid at validation time", 10),
    ("signature does not match", 7),
    ("unsupported certificate purpose", 26),
    ("no matching subjectAltName", 62),
    ("leaf server certificate has no subjectAltName", 62),
    ("must not be asserted in an EE certificate", 37),
    ("CA certificate has no basicConstraints", 79),
    ("does not include certificate signing", 32),
    ("unaccounted-for critical extensions", 34),
    ("path length constraint", 25),
    ("excluded name constraint matched", 48),
    ("no permitted name constraints matched", 47),
    ("candidates exhausted", 20),  # the issuer is known by name only
]


class CertificateVerifyError(Exception):
    """Path validation failed; fields mirror ``ssl.SSLCertVerificationError`` plus the TLS alert."""

    def __init__(self, code: int, depth: int = 0, detail: str = "", message: Optional[str] = None) -> None:
        text, alert = VERIFY_ERRORS.get(code, (message or "certificate verify failed", "bad_certificate"))
        self.verify_code = code
        self.verify_message = message or text
        self.depth = depth
        self.alert = alert
        self.detail = detail
        super().__init__(f"certificate verify failed: {self.verify_message}" + (f" ({detail})" if detail else ""))


_EkuValidator = Callable[[v.Policy, x509.Certificate, Optional[x509.ExtendedKeyUsage]], None]


def _purpose_check(purpose: x509.ObjectIdentifier) -> _EkuValidator:
    """An extendedKeyUsage validator: if present it must allow ``purpose`` (or any purpose)."""

    def check(policy: v.Policy, cert: x509.Certificate, eku: Optional[x509.ExtendedKeyUsage]) -> None:
        if eku is not None and purpose not in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
            raise ValueError("unsupported certificate purpose")

    return check


def _ca_key_usage(policy: v.Policy, cert: x509.Certificate, usage: Optional[x509.KeyUsage]) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("key usage does not include certificate signing")


# Web PKI CA rules, except that keyUsage may be absent (as OpenSSL and `openssl req -x509` allow).
_CA_POLICY = v.ExtensionPolicy.webpki_defaults_ca().may_be_present(x509.KeyUsage, v.Criticality.AGNOSTIC, _ca_key_usage)


def _ee_policy(purpose: x509.ObjectIdentifier, need_san: bool) -> v.ExtensionPolicy:
    agnostic = v.Criticality.AGNOSTIC
    policy = v.ExtensionPolicy.webpki_defaults_ee()
    policy = policy.may_be_present(x509.ExtendedKeyUsage, agnostic, _purpose_check(purpose))
    if need_san:
        return policy.require_present(x509.SubjectAlternativeName, agnostic, None)
    return policy.may_be_present(x509.SubjectAlternativeName, agnostic, None)


def _subject(hostname: str) -> Optional[Union[v.DNSName, v.IPAddress]]:
    """The name to match: an IP address, else a DNS name (IDNA-encoded); None if it is neither."""
    try:
        return v.IPAddress(ipaddress.ip_address(hostname.strip("[]")))
    except ValueError:
        pass
    try:
        return v.DNSName(hostname if hostname.isascii() else hostname.encode("idna").decode("ascii"))
    except (ValueError, UnicodeError):
        return None


def _parse_chain(chain_der: list[bytes]) -> list[x509.Certificate]:
    if not chain_der:
        raise CertificateVerifyError(1, 0, message="no certificate presented")
    chain = []
    for depth, der in enumerate(chain_der):
        try:
            chain.append(x509.load_der_x509_certificate(bytes(der)))
        except ValueError as exc:
            raise CertificateVerifyError(1, depth, str(exc), message="unable to parse certificate") from None
    return chain


def _utc(moment: datetime.datetime) -> datetime.datetime:
    """Naive datetimes are taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _builder(store: TrustStore, now: Optional[datetime.datetime], ee: v.ExtensionPolicy) -> v.PolicyBuilder:
    builder = v.PolicyBuilder().store(v.Store(store.certificates))
    builder = builder.extension_policies(ca_policy=_CA_POLICY, ee_policy=ee)
    if now is not None:
        builder = builder.time(_utc(now))
    return builder


def verify_server_chain(store: TrustStore, chain_der: list[bytes], hostname: Optional[str],
                        now: Optional[datetime.datetime] = None) -> list[x509.Certificate]:
    """Validates a server's chain (leaf first) for ``hostname`` (a DNS name or an IP address;
    None skips the name check). Returns the verified path, leaf first and trust anchor last."""
    chain = _parse_chain(chain_der)
    subject = _subject(hostname) if hostname is not None else None
    try:
        if not store.certificates:
            raise v.VerificationError("candidates exhausted: empty trust store")
        builder = _builder(store, now, _ee_policy(ExtendedKeyUsageOID.SERVER_AUTH, hostname is not None))
        if hostname is None:
            return list(builder.build_client_verifier().verify(chain[0], chain[1:]).chain)
        try:
            verifier = builder.build_server_verifier(subject)  # type: ignore[arg-type]
        except (TypeError, ValueError):  # None or not a valid DNS name: nothing can match it
            raise v.VerificationError(f"leaf certificate has no matching subjectAltName for {hostname!r}") from None
        return list(verifier.verify(chain[0], chain[1:]))
    except v.VerificationError as exc:
        raise _translate(exc, store, chain, now, isinstance(subject, v.IPAddress)) from None


def verify_client_chain(store: TrustStore, chain_der: list[bytes],
                        now: Optional[datetime.datetime] = None) -> list[x509.Certificate]:
    """Validates a client's chain (leaf first) for client authentication; returns the verified
    path, leaf first and trust anchor last."""
    chain = _parse_chain(chain_der)
    try:
        if not store.certificates:
            raise v.VerificationError("candidates exhausted: empty trust store")
        builder = _builder(store, now, _ee_policy(ExtendedKeyUsageOID.CLIENT_AUTH, False))
        return list(builder.build_client_verifier().verify(chain[0], chain[1:]).chain)
    except v.VerificationError as exc:
        raise _translate(exc, store, chain, now, False) from None


def _translate(exc: Exception, store: TrustStore, chain: list[x509.Certificate],
               now: Optional[datetime.datetime], ip: bool) -> CertificateVerifyError:
    """Maps cryptography's error text to the nearest OpenSSL verify code, and finds the depth."""
    detail = str(exc).removeprefix("validation failed: ")
    path, anchored = _walk(store, chain)
    if not anchored:  # OpenSSL builds the chain before any other check, so this error comes first
        self_issued = path[-1].issuer == path[-1].subject
        depth = len(path) - 1
        return CertificateVerifyError((18 if depth == 0 else 19) if self_issued else 20, depth)
    code = next((c for fragment, c in _MESSAGE_CODES if fragment in detail), 1)
    # The failing certificate is named in the text by its repr; a trust anchor sits above the path.
    depth = next((i for i, c in enumerate(chain) if repr(c) in detail),
                 len(path) if any(repr(c) in detail for c in store.certificates) else 0)
    if code == 10:
        code, depth = _out_of_time(store, path, _utc(now or datetime.datetime.now(datetime.timezone.utc)))
    elif code == 7:
        depth = _bad_signature_depth(store, chain)
    elif code == 62 and ip:
        code = 64
    elif code == 20:
        depth = len(path) - 1
    elif code == 79:
        depth = next((i for i, c in enumerate(chain[1:], 1) if not _is_ca(c)), len(chain))
    return CertificateVerifyError(code, depth, detail if code == 1 else "")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _out_of_time(store: TrustStore, path: list[x509.Certificate], moment: datetime.datetime) -> tuple[int, int]:
    """10 (expired) or 9 (not yet valid) at the highest depth out of its validity period, the trust
    anchor included: OpenSSL checks times from the top of the chain down."""
    anchors = [c for c in store.certificates if c.subject == path[-1].issuer and c.subject != path[-1].subject]
    full = [*path, *anchors[:1]]
    for depth in range(len(full) - 1, -1, -1):
        if moment < full[depth].not_valid_before_utc:
            return 9, depth
        if moment > full[depth].not_valid_after_utc:
            return 10, depth
    return 10, 0


def _bad_signature_depth(store: TrustStore, chain: list[x509.Certificate]) -> int:
    """Depth of the first certificate whose issuer (by name) does not vouch for its signature."""
    for depth, cert in enumerate(chain):
        issuers = [c for c in [*chain[depth + 1:], *store.certificates] if c.subject == cert.issuer]
        for issuer in issuers:
            try:
                cert.verify_directly_issued_by(issuer)
            except (InvalidSignature, ValueError, TypeError):
                return depth
    return 0


def _walk(store: TrustStore, chain: list[x509.Certificate]) -> tuple[list[x509.Certificate], bool]:
    """Follows the presented chain by issuer name from the leaf, as OpenSSL builds it, until a
    certificate is trusted or has a trusted issuer (anchored) or no issuer is found."""
    subjects = {c.subject for c in store.certificates}
    path, pool = [chain[0]], list(chain[1:])
    while True:
        top = path[-1]
        if top.public_bytes(Encoding.DER) in store._der or top.issuer in subjects:
            return path, True
        nxt = next((c for c in pool if c.subject == top.issuer), None) if top.issuer != top.subject else None
        if nxt is None:
            return path, False
        pool.remove(nxt)
        path.append(nxt)


