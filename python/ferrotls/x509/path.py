"""Certificate path building and validation: RFC 5280 section 6 with the CA/Browser Forum's
Baseline Requirements profile, as pyca/cryptography's and rustls-webpki's verifiers apply it.
`cryptography` parses certificates and checks signatures; every decision is made here.

Building is a depth-first search from the leaf through every candidate issuer (the trust store's
and the peer's, matched by name, most likely first by AKI/SKI) with backtracking, bounded in
signatures checked and name-constraint comparisons. When no path is valid, `_diagnose` builds the
chain OpenSSL would build and names the first failure the way OpenSSL would, as an
``X509_V_ERR_*`` code in a `CertificateVerifyError` (an ``ssl.SSLCertVerificationError``).
"""

from __future__ import annotations

import datetime
import hashlib
import ssl
from dataclasses import dataclass
from typing import Iterable, Optional, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from . import names
from .der import GENERALIZED_TIME, UTC_TIME, RawFields, raw_fields
from .store import TrustStore

__all__ = ["verify_chain", "Policy", "CertificateVerifyError", "VERIFY_ERRORS", "verify_server_chain",
           "verify_client_chain"]

CertLike = Union[x509.Certificate, bytes, bytearray, memoryview]


# X509_V_ERR code -> (OpenSSL 3's message, the TLS alert OpenSSL sends for it: ssl_x509err2alert).
VERIFY_ERRORS: dict[int, tuple[str, str]] = {
    1: ("unspecified certificate verification error", "bad_certificate"),
    2: ("unable to get issuer certificate", "unknown_ca"),
    3: ("unable to get certificate CRL", "unknown_ca"),
    6: ("unable to decode issuer public key", "bad_certificate"),
    7: ("certificate signature failure", "decrypt_error"),
    9: ("certificate is not yet valid", "bad_certificate"),
    10: ("certificate has expired", "certificate_expired"),
    13: ("format error in certificate's notBefore field", "bad_certificate"),
    14: ("format error in certificate's notAfter field", "bad_certificate"),
    18: ("self-signed certificate", "unknown_ca"),
    19: ("self-signed certificate in certificate chain", "unknown_ca"),
    20: ("unable to get local issuer certificate", "unknown_ca"),
    22: ("certificate chain too long", "unknown_ca"),
    25: ("path length constraint exceeded", "unknown_ca"),
    26: ("unsuitable certificate purpose", "unsupported_certificate"),
    30: ("authority and subject key identifier mismatch", "certificate_unknown"),
    32: ("key usage does not include certificate signing", "certificate_unknown"),
    34: ("unhandled critical extension", "certificate_unknown"),
    37: ("invalid non-CA certificate (has CA markings)", "certificate_unknown"),
    39: ("key usage does not include digital signature", "certificate_unknown"),
    41: ("invalid or inconsistent certificate extension", "certificate_unknown"),
    47: ("permitted subtree violation", "certificate_unknown"),
    48: ("excluded subtree violation", "certificate_unknown"),
    51: ("unsupported name constraint type", "certificate_unknown"),
    52: ("unsupported or invalid name constraint syntax", "certificate_unknown"),
    53: ("unsupported or invalid name syntax", "certificate_unknown"),
    62: ("hostname mismatch", "bad_certificate"),
    64: ("IP address mismatch", "bad_certificate"),
    66: ("EE certificate key too weak", "bad_certificate"),
    67: ("CA certificate key too weak", "bad_certificate"),
    68: ("CA signature digest algorithm too weak", "bad_certificate"),
    78: ("cert info signature and signature algorithm mismatch", "certificate_unknown"),
    79: ("invalid CA certificate", "unknown_ca"),
    82: ("Key usage keyCertSign invalid for non-CA cert", "certificate_unknown"),
    83: ("Issuer name empty", "certificate_unknown"),
    85: ("Missing Authority Key Identifier", "certificate_unknown"),
    86: ("Missing Subject Key Identifier", "certificate_unknown"),
    87: ("Empty Subject Alternative Name extension", "certificate_unknown"),
    88: ("Subject empty and Subject Alt Name extension not critical", "certificate_unknown"),
    89: ("Basic Constraints of CA cert not marked critical", "certificate_unknown"),
    90: ("Authority Key Identifier marked critical", "certificate_unknown"),
    91: ("Subject Key Identifier marked critical", "certificate_unknown"),
    93: ("Using cert extension requires at least X509v3", "certificate_unknown"),
}


class CertificateVerifyError(ssl.SSLCertVerificationError):
    """Path validation failed: ``verify_code`` and ``verify_message`` as OpenSSL names the cause,
    ``depth`` of the certificate at fault (0 is the leaf), the TLS ``alert`` to send and a
    ``detail`` for humans."""

    def __init__(self, code: int, depth: int = 0, detail: str = "", message: Optional[str] = None) -> None:
        text, alert = VERIFY_ERRORS.get(code, ("certificate verify failed", "certificate_unknown"))
        self.verify_code = code
        self.verify_message = message or text
        self.depth = depth
        self.alert = alert
        self.detail = detail
        self.library = "SSL"
        self.reason = "CERTIFICATE_VERIFY_FAILED"
        suffix = f" ({detail})" if detail else ""
        super().__init__(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {self.verify_message}{suffix}")

    def __str__(self) -> str:
        return self.args[1]


@dataclass(frozen=True)
class Policy:
    """What a validation accepts beyond the web PKI profile; every option is off by default.

    - ``extended_key_usage``: the EKU a leaf must carry instead of serverAuth/clientAuth (for a
      private PKI with its own purpose).
    - ``allow_ed25519``: Ed25519 keys and signatures (RFC 8410) besides RSA and ECDSA.
    - ``strict_criticality``: also enforce the CABF criticality rules that RFC 5280 leaves open:
      a leaf's extendedKeyUsage non-critical, its subjectAltName non-critical when the subject is
      not empty. Off by default because common test CAs (trustme) mark both critical.
    """

    extended_key_usage: Optional[x509.ObjectIdentifier] = None
    allow_ed25519: bool = False
    strict_criticality: bool = False


DEFAULT_POLICY = Policy()
DEFAULT_MAX_CHAIN_DEPTH = 8  # intermediates, not counting self-issued ones (as pyca's default)
SIGNATURE_BUDGET = 128       # signatures checked per validation (Go and rustls-webpki use 100)
NAME_BUDGET = 1 << 20        # name-constraint comparisons per validation

_PURPOSES = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}
_ANY_EKU = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE

# CABF 7.1.3.2: the signature AlgorithmIdentifiers allowed, byte for byte (RSA with NULL
# parameters, ECDSA without, RSASSA-PSS with matching MGF1 and salt length).
_RSA_PKCS1 = "300d06092a864886f70d0101{:02x}0500"
_ECDSA = "300a06082a8648ce3d0403{:02x}"
_PSS = ("304106092a864886f70d01010a3034a00f300d06096086480165030402{h:02x}0500a11c301a06092a864886f70d010108"
        "300d06096086480165030402{h:02x}0500a2030201{s:02x}")
_SIGNATURE_ALGORITHMS = frozenset(
    [bytes.fromhex(_RSA_PKCS1.format(n)) for n in (11, 12, 13)]
    + [bytes.fromhex(_ECDSA.format(n)) for n in (2, 3, 4)]
    + [bytes.fromhex(_PSS.format(h=h, s=s)) for h, s in ((1, 32), (2, 48), (3, 64))]
)
_ED25519_ALGORITHM = bytes.fromhex("300506032b6570")
# CABF 7.1.3.1: public key AlgorithmIdentifiers, byte for byte: rsaEncryption with NULL
# parameters, id-ecPublicKey with P-256, P-384 or P-521 by name (explicit curves are forbidden).
_KEY_ALGORITHMS = frozenset(bytes.fromhex(h) for h in (
    "300d06092a864886f70d0101010500",
    "301306072a8648ce3d020106082a8648ce3d030107",
    "301006072a8648ce3d020106052b81040022",
    "301006072a8648ce3d020106052b81040023",
))
_ED25519_KEY = bytes.fromhex("300506032b6570")
# CABF 7.1.3.2.2: an ECDSA key signs with the hash of its size.
_ECDSA_HASH = {
    bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107"): bytes.fromhex(_ECDSA.format(2)),
    bytes.fromhex("301006072a8648ce3d020106052b81040022"): bytes.fromhex(_ECDSA.format(3)),
    bytes.fromhex("301006072a8648ce3d020106052b81040023"): bytes.fromhex(_ECDSA.format(4)),
}

# Extensions this validator understands; any other critical one fails (RFC 5280 4.2).
_CN_OID = bytes.fromhex("0603550403")  # id-at-commonName as it appears in a DER Name

_KNOWN = frozenset([
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.NAME_CONSTRAINTS, ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
])


class _Fail(Exception):
    """One check failed: an X509_V_ERR code and what it was about."""

    def __init__(self, code: int, detail: str, depth: Optional[int] = None) -> None:
        super().__init__(detail)
        self.code, self.depth = code, depth  # depth: of the certificate at fault, when not the one checked


class _Exhausted(Exception):
    """The work budget ran out: validation stops at once."""


class _Cert:
    """A certificate with what validation reads from it, parsed once."""

    def __init__(self, cert: x509.Certificate, der: bytes, raw: RawFields) -> None:
        self.cert, self.der, self.raw = cert, der, raw
        self.digest = hashlib.sha256(der).digest()  # what the signature cache keeps, not the DER
        self.malformed: Optional[tuple[int, str]] = None  # (code, detail): a fresh _Fail per raise
        self.ext: dict[x509.ObjectIdentifier, x509.Extension] = {}
        self.subject, self.issuer = self.raw.subject, self.raw.issuer  # DER: names match byte for byte
        self.self_issued = self.subject == self.issuer
        try:
            self.ext = {e.oid: e for e in cert.extensions}
        except x509.DuplicateExtension as exc:
            self.malformed = (41, f"duplicate extension {exc.oid.dotted_string}")
        except Exception as exc:  # noqa: BLE001 - whatever cryptography raises for what it cannot read
            self.malformed = (41, f"malformed extension: {exc}")
        ski = self.value(x509.SubjectKeyIdentifier)
        self.ski = ski.digest if ski is not None else None
        aki = self.value(x509.AuthorityKeyIdentifier)
        self.aki = aki.key_identifier if aki is not None else None
        nc = self.value(x509.NameConstraints)
        self.subtrees = None if nc is None else (names.Subtrees(nc.permitted_subtrees),
                                                 names.Subtrees(nc.excluded_subtrees))
        self._self_signed: Optional[bool] = None
        self._san: Optional[list[x509.GeneralName]] = None

    @property
    def name(self) -> x509.Name:
        """The subject, parsed (names are compared as DER; this is for reading attributes)."""
        try:
            return self.cert.subject
        except Exception as exc:  # noqa: BLE001 - cryptography parses names lazily
            raise _Fail(53, f"unreadable subject name: {exc}") from None

    def value(self, kind):
        ext = self.ext.get(kind.oid)
        return ext.value if ext is not None else None

    def self_signed(self) -> bool:
        """Self-issued and verifying under its own key (RFC 5280 3.3)."""
        if self._self_signed is None:
            self._self_signed = self.self_issued and _signed_by(self, self)
        return self._self_signed

    def san(self) -> list[x509.GeneralName]:
        if self._san is None:
            san = self.value(x509.SubjectAlternativeName)
            self._san = list(san) if san is not None else []
        return self._san


_PARSED: dict[bytes, _Cert] = {}
_BY_OBJECT: dict[int, _Cert] = {}  # id(Certificate) -> its _Cert, which keeps the object alive
_SIGNED: dict[tuple[bytes, bytes], bool] = {}  # (child's SHA-256, issuer's SHA-256) -> verdict
_CACHE_LIMIT = 4096  # certificates, and at most _CACHE_BYTES of them
_CACHE_BYTES = 16 << 20
_PARSED_BYTES = 0


def _parse(item: Union[CertLike, _Cert], depth: int = 0, der: Optional[bytes] = None,
           raw: Optional[RawFields] = None) -> _Cert:
    """The _Cert of a certificate object or DER (``der``, ``raw``: the object's, when known)."""
    if isinstance(item, _Cert):
        return item
    if isinstance(item, x509.Certificate):
        known = _BY_OBJECT.get(id(item))
        if known is not None and known.cert is item:
            return known
        der = der or item.public_bytes(Encoding.DER)
    else:
        der = bytes(item)
    parsed = _PARSED.get(der)
    if parsed is None:
        try:
            raw = raw or raw_fields(der)
            if not isinstance(item, x509.Certificate):
                if raw.serial[:1] >= b"\x80" or not any(raw.serial):  # refused before the parser warns
                    raise ValueError("serial number not positive (RFC 5280 4.1.2.2)")
                item = x509.load_der_x509_certificate(der)
        except Exception as exc:  # noqa: BLE001 - ValueError, IndexError, InvalidVersion...
            raise CertificateVerifyError(1, depth, f"unable to parse certificate: {exc}") from None
        parsed = _Cert(item, der, raw)
        if len(der) > _CACHE_BYTES // 16:  # a giant is not worth evicting everything else for
            return parsed
        global _PARSED_BYTES
        if len(_PARSED) >= _CACHE_LIMIT or _PARSED_BYTES + len(der) > _CACHE_BYTES:
            _PARSED.clear()
            _BY_OBJECT.clear()
            _PARSED_BYTES = 0
        _PARSED[der] = parsed
        _PARSED_BYTES += len(der)
    _BY_OBJECT[id(parsed.cert)] = parsed
    return parsed


def _verify(cert: x509.Certificate, key) -> None:
    """Checks ``cert``'s signature under ``key``, an issuer's public key object (which
    `cryptography` keeps with its certificate, so a trust anchor's key is decoded once)."""
    scheme = cert.signature_algorithm_parameters  # PKCS1v15 or PSS, ECDSA(hash), None for Ed25519
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, scheme, cert.signature_hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(scheme, ec.ECDSA):
        key.verify(cert.signature, cert.tbs_certificate_bytes, scheme)
    elif isinstance(key, ed25519.Ed25519PublicKey) and scheme is None:
        key.verify(cert.signature, cert.tbs_certificate_bytes)
    else:
        raise TypeError("the signature algorithm does not suit the issuer's key")


def _signed_by(child: _Cert, issuer: _Cert) -> bool:
    key = (child.digest, issuer.digest)
    good = _SIGNED.get(key)
    if good is None:
        try:
            _verify(child.cert, issuer.cert.public_key())
            good = True
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
            good = False
        if len(_SIGNED) >= _CACHE_LIMIT:
            _SIGNED.clear()
        _SIGNED[key] = good
    return good


def _memoized(check):
    """A check run at most once per validation for the same arguments: path building and
    `_diagnose` ask the same questions."""

    def run(self: "_Validation", c: _Cert, *args):
        key = (check.__name__, c.der, args)
        if key not in self.memo:
            try:
                check(self, c, *args)
                self.memo[key] = None
            except _Fail as failure:
                self.memo[key] = (failure.code, str(failure), failure.depth)
        if self.memo[key] is not None:
            raise _Fail(*self.memo[key])

    return run


class _Validation:
    """One call of verify_chain: its parameters, its budget and the checks it applies."""

    def __init__(self, store: TrustStore, pool: list[_Cert], purpose: str, reference, check_common_name: bool,
                 moment: datetime.datetime, max_depth: int, key_usage: tuple[str, ...], policy: Policy) -> None:
        self.store, self.pool, self.purpose, self.reference = store, pool, purpose, reference
        self.check_common_name, self.moment, self.max_depth = check_common_name, moment, max_depth
        self.key_usage, self.policy = key_usage, policy
        self.eku = policy.extended_key_usage or _PURPOSES[purpose]
        self.signatures = SIGNATURE_BUDGET
        self.comparisons = NAME_BUDGET
        self.last: Optional[tuple[_Fail, int]] = None  # the failure found deepest in the search
        self.memo: dict[tuple, Optional[_Fail]] = {}

    # --- checks every certificate gets (RFC 5280 4.1, CABF 7.1) ---------------------------------

    def basic(self, c: _Cert, anchor: bool) -> None:
        if c.malformed:
            raise _Fail(*c.malformed)
        if c.cert.version != x509.Version.v3:
            raise _Fail(93, "not an X.509 v3 certificate (CABF 7.1.1)")
        if c.raw.signature_algorithm != c.raw.tbs_signature:
            raise _Fail(78, "signatureAlgorithm differs from the TBSCertificate's signature (RFC 5280 4.1.1.2)")
        serial = c.raw.serial
        if not 1 <= len(serial) <= 21 or serial[0] & 0x80 or (not anchor and not any(serial)):
            # RFC 5280 4.1.2.2: positive, at most 20 octets (21 with the sign octet, as CAs
            # drawing 20 random octets produce). Some trusted roots have serial 0.
            raise _Fail(1, "serial number not a positive integer of at most 20 octets (RFC 5280 4.1.2.2)")
        if not c.issuer[2:]:
            raise _Fail(83, "empty issuer name (RFC 5280 4.1.2.4)")
        unknown = [e.oid.dotted_string for e in c.ext.values() if e.critical and e.oid not in _KNOWN]
        if unknown:
            raise _Fail(34, f"unhandled critical extension {unknown[0]}")
        ski, aki = c.ext.get(ExtensionOID.SUBJECT_KEY_IDENTIFIER), c.ext.get(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
        if ski is not None and ski.critical:
            raise _Fail(91, "subjectKeyIdentifier marked critical (RFC 5280 4.2.1.2)")
        if aki is not None:
            if aki.critical:
                raise _Fail(90, "authorityKeyIdentifier marked critical (RFC 5280 4.2.1.1)")
        elif not anchor and not c.self_signed():  # a trust anchor is trusted as it is
            raise _Fail(85, "no authorityKeyIdentifier (RFC 5280 4.2.1.1)")
        aia = c.ext.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
        if aia is not None and aia.critical:
            raise _Fail(41, "authorityInformationAccess marked critical (RFC 5280 4.2.2.1)")
        pc = c.ext.get(ExtensionOID.POLICY_CONSTRAINTS)
        if pc is not None and not pc.critical:
            raise _Fail(41, "policyConstraints not marked critical (RFC 5280 4.2.1.11)")

    def validity(self, c: _Cert) -> None:
        for (tag, text), code in ((c.raw.not_before, 13), (c.raw.not_after, 14)):
            # RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, seconds, Zulu.
            generalized = tag == GENERALIZED_TIME
            if tag not in (UTC_TIME, GENERALIZED_TIME) or len(text) != (15 if generalized else 13) \
                    or (generalized and 1950 <= int(text[:4]) < 2050):
                raise _Fail(code, "validity time not encoded as RFC 5280 4.1.2.5 requires")
        bounds = []
        for field, code in (("not_valid_before_utc", 13), ("not_valid_after_utc", 14)):
            try:
                bounds.append(getattr(c.cert, field))
            except ValueError:  # a well-formed time Python cannot hold: year 0
                raise _Fail(code, "validity time out of range") from None
        not_before, not_after = bounds
        if self.moment < not_before:
            raise _Fail(9, f"not valid before {not_before:%Y-%m-%d %H:%M:%S} UTC")
        if self.moment > not_after:
            raise _Fail(10, f"expired at {not_after:%Y-%m-%d %H:%M:%S} UTC")

    def public_key(self, c: _Cert, ca: bool) -> None:
        """CABF 6.1.5 and 7.1.3.1: RSA of at least 2048 bits, a multiple of 8, or ECDSA on P-256,
        P-384 or P-521 by named curve (or Ed25519 when the policy allows it)."""
        code = 67 if ca else 66
        algorithm = c.raw.spki_algorithm
        if algorithm not in _KEY_ALGORITHMS and not (self.policy.allow_ed25519 and algorithm == _ED25519_KEY):
            raise _Fail(code, "public key algorithm not allowed (CABF 7.1.3.1)")
        try:
            key = c.cert.public_key()
        except (ValueError, TypeError) as exc:
            raise _Fail(code, f"unusable public key: {exc}") from None
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < 2048 or key.key_size % 8:
                raise _Fail(code, f"RSA key of {key.key_size} bits")
            exponent = key.public_numbers().e  # CABF 6.1.6; a huge one makes each check slow
            if not 3 <= exponent < 1 << 256 or not exponent & 1:
                raise _Fail(code, "RSA public exponent not odd, at least 3 and below 2^256")

    # --- the leaf (CABF 7.1.2.7) --------------------------------------------------------------------

    @_memoized
    def end_entity(self, c: _Cert, anchor: bool) -> None:
        self.public_key(c, ca=False)  # first: basic() may check a self-signature under this key
        self.basic(c, anchor)
        bc = c.value(x509.BasicConstraints)
        if bc is not None and bc.ca:
            raise _Fail(37, "a CA certificate in the leaf position (CABF 7.1.2.7.8)")
        if ExtensionOID.NAME_CONSTRAINTS in c.ext:
            raise _Fail(41, "nameConstraints in a leaf (RFC 5280 4.2.1.10)")
        ku = c.value(x509.KeyUsage)
        if ku is not None:
            if ku.key_cert_sign:
                raise _Fail(82, "keyUsage keyCertSign in a leaf (CABF 7.1.2.7.11)")
            for usage in self.key_usage:
                if not _allows(ku, usage):
                    raise _Fail(39 if usage == "digital_signature" else 26, f"keyUsage lacks {usage}")
        eku_ext = c.ext.get(ExtensionOID.EXTENDED_KEY_USAGE)
        if eku_ext is None:
            if self.policy.extended_key_usage is not None:
                raise _Fail(26, f"no extendedKeyUsage, where the policy requires {self.eku.dotted_string}")
            if self.purpose == "server":
                raise _Fail(26, "no extendedKeyUsage (CABF 7.1.2.7.10)")
        else:
            usages = set(eku_ext.value)
            if self.eku not in usages and (self.purpose == "server" or _ANY_EKU not in usages):
                raise _Fail(26, f"extendedKeyUsage lacks {self.eku._name}")
            if self.purpose == "server" and _ANY_EKU in usages:
                raise _Fail(26, "anyExtendedKeyUsage in a server certificate (CABF 7.1.2.7.10)")
            if eku_ext.critical and self.policy.strict_criticality:
                raise _Fail(26, "extendedKeyUsage marked critical (CABF 7.1.2.7.10)")
        san_ext = c.ext.get(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        if san_ext is not None:
            subject_empty = not c.subject[2:]
            if not list(san_ext.value):
                raise _Fail(87, "empty subjectAltName (RFC 5280 4.2.1.6)")
            if subject_empty and not san_ext.critical:
                raise _Fail(88, "empty subject and a non-critical subjectAltName (RFC 5280 4.2.1.6)")
            if not subject_empty and san_ext.critical and self.policy.strict_criticality:
                raise _Fail(41, "subjectAltName critical with a subject (CABF 7.1.2.7.12)")
        if self.purpose == "server":
            self.peer_name(c, san_ext)

    def peer_name(self, c: _Cert, san_ext: Optional[x509.Extension]) -> None:
        """RFC 6125 matching of the reference name, and CABF 7.1.4.3: a common name, if any, is a
        copy of a subjectAltName value."""
        cns = names.common_names(c.name) if _CN_OID in c.subject else []
        if san_ext is None:
            if self.reference is None:
                return
            if self.check_common_name and isinstance(self.reference, str) \
                    and any(names.dns_pattern_matches(cn, self.reference) for cn in cns):
                return
            raise _Fail(62 if isinstance(self.reference, str) else 64, "no subjectAltName (CABF 7.1.2.7.12)")
        sans = list(san_ext.value)
        for cn in cns:
            problem = names.common_name_problem(cn, sans)
            if problem:
                raise _Fail(62, f"common name {cn!r} {problem} (CABF 7.1.4.3)")
        if self.reference is not None and not names.san_matches(sans, self.reference):
            kind = 62 if isinstance(self.reference, str) else 64
            raise _Fail(kind, f"certificate is not valid for {self.reference}")

    # --- issuers (RFC 5280 6.1.4, CABF 7.1.2.1-7.1.2.6) ---------------------------------------------

    @_memoized
    def issuer(self, c: _Cert, below: int, anchor: bool) -> None:
        """``c`` issues a certificate with ``below`` non-self-issued intermediates under it."""
        self.public_key(c, ca=True)
        self.basic(c, anchor)
        bc_ext = c.ext.get(ExtensionOID.BASIC_CONSTRAINTS)
        if bc_ext is None or not bc_ext.value.ca:
            raise _Fail(79, "not a CA: basicConstraints cA is not asserted (RFC 5280 4.2.1.9)")
        if not bc_ext.critical:
            raise _Fail(89, "basicConstraints of a CA not marked critical (RFC 5280 4.2.1.9)")
        if bc_ext.value.path_length is not None and below > bc_ext.value.path_length:
            raise _Fail(25, f"pathLenConstraint {bc_ext.value.path_length} with {below} intermediates below")
        ku = c.value(x509.KeyUsage)
        if ku is None or not ku.key_cert_sign:  # RFC 5280 4.2.1.3, CABF 7.1.2.1.2 and 7.1.2.10.7
            raise _Fail(32, "keyUsage lacks keyCertSign" if ku else "a CA without keyUsage")
        if c.ski is None:
            raise _Fail(86, "a CA without subjectKeyIdentifier (RFC 5280 4.2.1.2)")
        eku = c.value(x509.ExtendedKeyUsage)
        if eku is not None:
            if c.self_signed():
                raise _Fail(26, "a root with extendedKeyUsage (CABF 7.1.2.1.2)")
            if self.eku not in eku and _ANY_EKU not in eku:
                raise _Fail(26, f"issuer's extendedKeyUsage lacks {self.eku._name}")
        aki = c.value(x509.AuthorityKeyIdentifier)
        if aki is not None and (aki.key_identifier is None or aki.authority_cert_issuer is not None
                                or aki.authority_cert_serial_number is not None):
            raise _Fail(41, "a CA's authorityKeyIdentifier must hold only keyIdentifier (CABF 7.1.2.11.1)")
        if c.aki is not None and c.aki != c.ski and c.self_signed():
            raise _Fail(30, "a root whose authorityKeyIdentifier is not its subjectKeyIdentifier")
        nc = c.value(x509.NameConstraints)
        if nc is not None and not nc.permitted_subtrees and not nc.excluded_subtrees:
            raise _Fail(41, "nameConstraints without any subtree (RFC 5280 4.2.1.10)")

    def signature(self, child: _Cert, issuer: _Cert) -> None:
        """CABF 7.1.3.2: an allowed algorithm; then the signature itself."""
        algorithm = child.raw.signature_algorithm
        if algorithm not in _SIGNATURE_ALGORITHMS and not (self.policy.allow_ed25519 and algorithm == _ED25519_ALGORITHM):
            raise _Fail(68, f"signature algorithm {child.cert.signature_algorithm_oid._name} not allowed")
        paired = _ECDSA_HASH.get(issuer.raw.spki_algorithm)
        if paired is not None and algorithm != paired:
            raise _Fail(68, f"{child.cert.signature_algorithm_oid._name} with the issuer's curve (CABF 7.1.3.2.2)")
        if not self.signed(child, issuer):
            raise _Fail(7, "signature does not verify under the issuer's key")

    def usable_key(self, c: _Cert) -> bool:
        """Whether ``c``'s key may sign certificates under the profile (checked before any
        signature is verified under it: a huge RSA exponent makes each check slow)."""
        try:
            self.public_key(c, ca=True)
            return True
        except _Fail:
            return False

    def signed(self, child: _Cert, issuer: _Cert) -> bool:
        """_signed_by, counted against the signature budget whether cached or not: the budget
        bounds the search itself (each step of it checks one signature)."""
        self.signatures -= 1
        if self.signatures < 0:
            raise _Exhausted("too many signatures to check")
        return _signed_by(child, issuer)

    # --- name constraints (RFC 5280 4.2.1.10, 6.1.3 b-c) -----------------------------------------------

    def constrained_names(self, c: _Cert, position: int, types: set[type]) -> list[x509.GeneralName]:
        """The names of ``c`` (at ``position`` in the path) that subtrees of these ``types``
        constrain: its subjectAltName entries, its subject, and for a leaf matched by common name,
        that name."""
        try:
            return self._constrained_names(c, position == 0, types)
        except _Fail as failure:
            raise _Fail(failure.code, str(failure), position) from None

    def _constrained_names(self, c: _Cert, leaf: bool, types: set[type]) -> list[x509.GeneralName]:
        found = [name for name in c.san() if type(name) in types]
        if x509.DirectoryName in types and c.subject[2:]:
            found.append(x509.DirectoryName(c.name))
        if x509.DNSName in types and leaf and not c.san() and self.check_common_name:
            found += [x509.DNSName(cn) for cn in names.common_names(c.name)
                      if names.is_dns_name(cn.removeprefix("*."))]
        if x509.RFC822Name in types and not c.san():  # emailAddress in the subject: 4.2.1.10 MUST
            for attribute in c.name.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
                if not isinstance(attribute.value, str) or not attribute.value.isascii():
                    raise _Fail(53, f"emailAddress {attribute.value!r} cannot be checked against the constraints")
                found.append(x509.RFC822Name(attribute.value))
        return found

    def name_constraints(self, ca: _Cert, below: list[_Cert]) -> None:
        if ca.subtrees is None:
            return
        permitted, excluded = ca.subtrees
        for position, c in enumerate(below):
            if position and c.self_issued:  # self-issued intermediates are exempt (6.1.3 b)
                continue
            for name in self.constrained_names(c, position, permitted.types | excluded.types):
                # The budget counts name/subtree pairs as a plain RFC 5280 check would compare
                # them, so a quadratic certificate fails here as it does elsewhere.
                self.comparisons -= len(permitted) + len(excluded)
                if self.comparisons < 0:
                    raise _Exhausted("too many name constraint comparisons")
                try:
                    if permitted.contains(name, False) is False:
                        raise _Fail(47, f"{_show(name)} is outside the permitted subtrees", position)
                    if excluded.contains(name, True):
                        raise _Fail(48, f"{_show(name)} is in an excluded subtree", position)
                except names.ConstraintError as exc:
                    raise _Fail(51 if "unsupported" in str(exc) else 52, str(exc), position) from None

    # --- path building --------------------------------------------------------------------------

    def candidates(self, c: _Cert) -> list[_Cert]:
        """Possible issuers: trusted ones first, each group ordered by AKI/SKI agreement."""
        found = [_parse(a.certificate, der=a.der, raw=a.raw) for a in self.store.anchors(c.issuer)]
        found += [p for p in self.pool if p.subject == c.issuer]

        def likeliness(candidate: _Cert) -> int:
            if c.aki is None or candidate.ski is None:
                return 1
            return 0 if c.aki == candidate.ski else 2

        return sorted(found, key=likeliness)

    def trusted(self, c: _Cert) -> bool:
        return self.store.contains_der(c.der)

    def build(self, path: list[_Cert]) -> Optional[list[_Cert]]:
        top = path[-1]
        if self.trusted(top):
            return path
        intermediates = sum(1 for c in path[1:] if not c.self_issued)
        if intermediates > self.max_depth or len(path) > 2 * self.max_depth + 2:
            self._note(_Fail(22, "certificate chain too long"), len(path) - 1)
            return None
        seen = {c.der for c in path}
        for candidate in self.candidates(top):
            if candidate.der in seen:
                continue
            try:
                anchor = self.trusted(candidate)
                self.issuer(candidate, intermediates, anchor)
                self.validity(candidate)
                self.signature(top, candidate)
                self.name_constraints(candidate, path)
            except _Fail as failure:
                self._note(failure, len(path))
                continue
            found = self.build(path + [candidate])
            if found is not None:
                return found
        return None

    def _note(self, failure: _Fail, depth: int) -> None:
        if self.last is None or depth >= self.last[1]:
            self.last = (failure, depth)


KEY_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
              "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")


def _allows(ku: x509.KeyUsage, usage: str) -> bool:
    try:
        return getattr(ku, usage)
    except ValueError:  # encipher_only / decipher_only mean nothing without keyAgreement
        return False


def _show(name: x509.GeneralName) -> str:
    value = name.value
    return names.oneline_name(value) if isinstance(value, x509.Name) else str(value)


def verify_chain(leaf: CertLike, intermediates: Iterable[CertLike], trust_store: TrustStore, *,
                 purpose: str = "server", server_name: Optional[str] = None,
                 at: Union[datetime.datetime, float, None] = None, max_chain_depth: Optional[int] = None,
                 check_common_name: bool = False, key_usage: Iterable[str] = (),
                 policy: Policy = DEFAULT_POLICY) -> list[x509.Certificate]:
    """Validates ``leaf`` for ``purpose`` ("server" or "client") through ``intermediates`` (in any
    order, possibly with extra or missing certificates) to a certificate of ``trust_store``.

    ``server_name`` (a DNS name, U-labels allowed, or an IP address) must match the leaf's
    subjectAltName (RFC 6125); its common name counts only with ``check_common_name`` and no
    subjectAltName. ``at`` is the validation time (default: now), ``max_chain_depth`` the number of
    intermediates allowed (self-issued ones not counted; default 8), ``key_usage`` keyUsage bits
    the leaf must allow (such as "digital_signature" or "key_encipherment"). Returns the path,
    leaf first and trust anchor last; raises CertificateVerifyError.
    """
    if purpose not in _PURPOSES:
        raise ValueError(f"purpose must be 'server' or 'client', not {purpose!r}")
    key_usage = tuple(key_usage)
    unknown = [u for u in key_usage if u not in KEY_USAGES]
    if unknown:
        raise ValueError(f"unknown key usage {unknown[0]!r}; expected one of {', '.join(KEY_USAGES)}")
    moment = _moment(at)
    reference = None
    if server_name is not None:
        reference = names.reference_name(server_name)
        if reference is None:
            raise CertificateVerifyError(62, 0, f"{server_name!r} is not a valid host name")
    first = _parse(leaf)
    pool = list({p.der: p for p in (_parse(c, depth) for depth, c in enumerate(intermediates, 1))}.values())
    v = _Validation(trust_store, pool, purpose, reference, check_common_name, moment,
                    DEFAULT_MAX_CHAIN_DEPTH if max_chain_depth is None else max_chain_depth,
                    key_usage, policy)
    try:
        v.end_entity(first, v.trusted(first))
        v.validity(first)
        path = v.build([first])
    except _Fail:
        path = None
    except _Exhausted as exc:  # no path within the budget: say why the obvious chain fails
        v.last, path = (_Fail(1, str(exc)), 1 << 30), None
    if path is None:
        raise _diagnose(v, first)
    return [c.cert for c in path]


def _moment(at: Union[datetime.datetime, float, None]) -> datetime.datetime:
    if at is None:
        at = datetime.datetime.now(datetime.timezone.utc)
    elif isinstance(at, (int, float)):
        at = datetime.datetime.fromtimestamp(at, datetime.timezone.utc)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=datetime.timezone.utc)
    return at.replace(microsecond=0)  # validity has whole seconds: compare at that granularity


def _diagnose(v: _Validation, leaf: _Cert) -> CertificateVerifyError:
    """Why no path is valid, in OpenSSL's words: build the chain OpenSSL would (by name, trusted
    issuers first, preferring one whose signature verifies), then apply the checks in OpenSSL's
    order (X509_verify_cert: the chain, extensions and purpose, name constraints, the host name,
    then signatures and validity from the top down)."""
    v.signatures = SIGNATURE_BUDGET  # a budget of its own, as large as the search's
    try:
        return _diagnosis(v, leaf)
    except _Exhausted as exc:
        return CertificateVerifyError(1, 0, str(exc))


def _diagnosis(v: _Validation, leaf: _Cert) -> CertificateVerifyError:
    chain = [leaf]
    while not v.trusted(chain[-1]) and not chain[-1].self_signed() and len(chain) <= 2 * v.max_depth + 2:
        seen = {c.der for c in chain}
        options = [c for c in v.candidates(chain[-1]) if c.der not in seen]
        if not options:
            break
        # Like X509_check_issued: by name and key identifiers; signatures only to break a tie.
        likely = [c for c in options if c.ski is None or chain[-1].aki in (None, c.ski)] or options
        signers = (c for c in likely if v.usable_key(c) and v.signed(chain[-1], c))
        chain.append(likely[0] if len(likely) == 1 else next(signers, likely[0]))
    top = len(chain) - 1
    if not v.trusted(chain[-1]) and len(chain) > 2 * v.max_depth + 2:
        return CertificateVerifyError(22, top)
    if not v.trusted(chain[-1]):
        if chain[-1].self_signed():
            return CertificateVerifyError(18 if top == 0 else 19, top)
        return CertificateVerifyError(20, top)
    stages = [
        lambda i, c: v.end_entity(c, v.trusted(c)) if i == 0 else
        v.issuer(c, sum(1 for x in chain[1:i] if not x.self_issued), v.trusted(c)),
        lambda i, c: v.name_constraints(c, chain[:i]) if i else None,
        lambda i, c: v.signature(chain[i - 1], c) if i else None,  # fails at the child's depth
        lambda i, c: v.validity(c),
    ]
    intermediates = sum(1 for c in chain[1:-1] if not c.self_issued)
    for number, stage in enumerate(stages):
        if number == 2 and intermediates > v.max_depth:
            return CertificateVerifyError(22, top)
        order = range(len(chain)) if number < 2 else range(top, -1, -1)
        for i in order:
            try:
                stage(i, chain[i])
            except _Fail as failure:
                depth = failure.depth if failure.depth is not None else i - 1 if number == 2 else i
                return CertificateVerifyError(failure.code, depth, str(failure))
    failure, depth = v.last or (_Fail(1, "no valid certification path"), 0)
    return CertificateVerifyError(failure.code, depth, str(failure))


def verify_server_chain(store: TrustStore, chain_der: list[bytes], hostname: Optional[str],
                        now: Optional[datetime.datetime] = None, check_common_name: bool = False,
                        max_chain_depth: Optional[int] = None) -> list[x509.Certificate]:
    """A server's chain as it came in its Certificate message (leaf first)."""
    if not chain_der:
        raise CertificateVerifyError(1, 0, message="no certificate presented")
    return verify_chain(chain_der[0], chain_der[1:], store, purpose="server", server_name=hostname, at=now,
                        check_common_name=check_common_name, max_chain_depth=max_chain_depth)


def verify_client_chain(store: TrustStore, chain_der: list[bytes], now: Optional[datetime.datetime] = None,
                        max_chain_depth: Optional[int] = None) -> list[x509.Certificate]:
    """A client's chain as it came in its Certificate message (leaf first)."""
    if not chain_der:
        raise CertificateVerifyError(1, 0, message="no certificate presented")
    return verify_chain(chain_der[0], chain_der[1:], store, purpose="client", at=now, max_chain_depth=max_chain_depth)
