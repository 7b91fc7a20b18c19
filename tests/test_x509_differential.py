"""Differential tests of path validation: ``ferrotls.x509.verify_chain`` against pyca/cryptography's
verifier (``cryptography.x509.verification``), on chains made by trustme and on chains whose
extensions, keys, signatures and validity hypothesis varies.

Both implement the CA/Browser Forum (web PKI) profile, so their verdicts (accept or reject) must
agree, and when both accept they must return the same path. Where the two deliberately differ,
the difference is modelled explicitly rather than avoided, so the tests also check that ferrotls
applies its own rules:

Where ferrotls is more lenient, the pyca verifier used as the reference is relaxed by exactly that
rule (``pyca_verify``'s extension policy for end entities):

- subjectAltName and extendedKeyUsage may be critical in a leaf. CABF 7.1.2.7.10/7.1.2.7.12 want
  them non-critical (pyca enforces it), RFC 5280 4.2.1.6 only says SHOULD, and trustme marks both
  critical: ferrotls accepts them unless ``Policy(strict_criticality=True)``. An empty subject still
  needs a critical subjectAltName (RFC 5280 4.2.1.6 MUST): kept in the relaxed reference.
- a client certificate may carry anyExtendedKeyUsage instead of clientAuth (RFC 5280 4.2.1.12: the
  key may be used for any purpose; CABF does not govern client certificates; OpenSSL accepts it).
  pyca requires clientAuth itself.
- a client certificate may lack a subjectAltName when its subject is not empty (RFC 5280 4.2.1.6;
  client certificates commonly name their holder in the subject DN only; OpenSSL accepts them).
  pyca's client verifier requires one (it returns the SAN as the verified subjects).

Where ferrotls is stricter, ``ferrotls_extra_rules`` lists the rules a chain breaks, with their
source, and ferrotls must reject such a chain whatever pyca says:

- the subject CN of a server leaf, when it names one of the leaf's dNSName entries, must be a
  character-for-character copy of it: not another case, not U-labels, wildcard entries included
  (CABF 7.1.4.3 / 7.1.2.7.2). A CN naming nothing in the subjectAltName is tolerated (BetterTLS's
  valid chains carry such CNs; pyca and the browsers ignore the CN when there is a
  subjectAltName), although the BRs would have every CN be one of the subjectAltName values;
- a server leaf must not carry anyExtendedKeyUsage, even beside serverAuth (CABF 7.1.2.7.10:
  "MUST NOT be present"); pyca accepts it beside serverAuth;
- a CA certificate (trust anchor included) must carry a subjectKeyIdentifier (RFC 5280 4.2.1.2,
  CABF 7.1.2.1.x/7.1.2.2.x); pyca lets it be absent;
- every certificate but a self-signed one or a trust anchor must carry an authorityKeyIdentifier
  (RFC 5280 4.2.1.1); pyca requires it in the leaf only;
- a server leaf must carry an extendedKeyUsage (CABF 7.1.2.7.10); pyca treats absence as any;
- a root (self-signed trust anchor) must not carry an extendedKeyUsage (CABF 7.1.2.1.2);
- every key, the leaf's included, must be RSA of at least 2048 bits and a multiple of 8, or ECDSA
  on P-256/P-384/P-521 (CABF 6.1.5, 7.1.3.1). pyca checks only issuers' keys (its
  ``valid_issuer``) and does not check divisibility by 8;
- an ECDSA issuer signs with the hash of its curve: SHA-256 for P-256, SHA-384 for P-384, SHA-512
  for P-521 (CABF 7.1.3.2.2); pyca accepts any of the three.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import ipaddress
import ssl
from typing import List, Optional, Sequence, Tuple

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import verification as pv
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ferrotls.x509
from ferrotls.x509 import TrustStore

import der_surgery as surgery

DER = serialization.Encoding.DER
UTC = datetime.timezone.utc
T0 = datetime.datetime(2031, 3, 1, 12, 0, 0, tzinfo=UTC)  # the validation time of generated chains
DAY = datetime.timedelta(days=1)

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
ANY_EKU = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING
EKUS = {"serverAuth": SERVER_AUTH, "clientAuth": CLIENT_AUTH, "anyEKU": ANY_EKU, "codeSigning": CODE_SIGNING}
PURPOSE_EKU = {"server": "serverAuth", "client": "clientAuth"}

TLS_ALERTS = {"bad_certificate", "unsupported_certificate", "certificate_expired", "certificate_unknown",
              "unknown_ca", "decrypt_error", "internal_error", "handshake_failure", "illegal_parameter",
              "certificate_revoked", "access_denied"}

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------
# Keys: a small pool, made once per module (and only when first used)
# --------------------------------------------------------------------------------------------

GOOD_KEYS = ("p256", "rsa2048", "p384", "p521")
WEAK_KEYS = ("rsa1024", "rsa2052", "secp256k1", "ed25519")  # outside CABF 6.1.5 / 7.1.3.1


@functools.lru_cache(maxsize=None)
def key(kind: str, slot: int):
    """The key of ``kind`` for a position in the chain (0 root, 1-2 intermediates, 3 leaf, 4
    spare): distinct positions never share a key, so a certificate verifies only under its issuer."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    curve = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1, "secp256k1": ec.SECP256K1}[kind]
    return ec.generate_private_key(curve())


def key_is_weak(kind: str) -> bool:
    return kind in WEAK_KEYS


# --------------------------------------------------------------------------------------------
# SHA-1 signatures: cryptography's builder refuses them, so the TBSCertificate is re-signed
# --------------------------------------------------------------------------------------------


SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")  # sha1WithRSAEncryption, NULL parameters
SHA1_ECDSA = bytes.fromhex("300906072a8648ce3d0401")  # ecdsa-with-SHA1


def resign_sha1(cert: x509.Certificate, signer) -> x509.Certificate:
    """``cert`` with its TBSCertificate's signature algorithm changed to SHA-1 and signed again."""
    tbs = surgery.elements(cert.tbs_certificate_bytes)
    index = 2 if tbs[0][0] == 0xA0 else 1  # [0] version, serialNumber, signature, ...
    if isinstance(signer, rsa.RSAPrivateKey):
        algorithm = SHA1_RSA
        tbs[index] = algorithm
        body = surgery.der(0x30, b"".join(tbs))
        signature = signer.sign(body, padding.PKCS1v15(), hashes.SHA1())
    else:
        algorithm = SHA1_ECDSA
        tbs[index] = algorithm
        body = surgery.der(0x30, b"".join(tbs))
        signature = signer.sign(body, ec.ECDSA(hashes.SHA1()))
    der = surgery.der(0x30, body + algorithm + surgery.der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


# --------------------------------------------------------------------------------------------
# What a generated chain looks like
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class CertSpec:
    """One certificate. Times are days from T0; extension fields are None when absent."""

    key: str = "p256"
    hash: str = "sha256"  # the hash of the signature made on this certificate by its issuer
    pss: bool = False  # RSASSA-PSS (salt = digest length) when the issuer's key is RSA
    not_before: int = -30
    not_after: int = 30
    bc: Optional[Tuple[bool, Optional[int], bool]] = None  # (cA, pathLenConstraint, critical)
    ku: Optional[Tuple[str, ...]] = None  # KeyUsage bits asserted
    ku_critical: bool = True
    eku: Optional[Tuple[str, ...]] = None  # names of EKUS
    eku_critical: bool = False
    san: Optional[Tuple[str, ...]] = None  # DNS names, IP addresses or e-mail addresses
    san_critical: bool = False
    cn: Optional[str] = None
    empty_subject: bool = False
    nc: Optional[Tuple[Tuple[str, ...], Tuple[str, ...]]] = None  # (permitted, excluded)
    ski: bool = True
    aki: bool = True
    unknown_extension: Optional[bool] = None  # an unknown extension: None absent, else its criticality


@dataclasses.dataclass
class ChainSpec:
    root: CertSpec
    intermediates: List[CertSpec]  # the root's child first
    leaf: CertSpec
    purpose: str = "server"
    server_name: Optional[str] = None
    # How the chain is presented and trusted:
    reverse_intermediates: bool = False  # the intermediates top first
    anchor_intermediate: bool = False  # trust the root's child instead of the root
    omit_issuer: bool = False  # the leaf's issuer is not presented
    distractor: bool = False  # an unrelated CA certificate is presented too
    expired_twin: bool = False  # an expired copy of the leaf's issuer (same name and key) is presented first
    bad_signature: bool = False  # the leaf is signed by another key than its issuer's
    defects: List[str] = dataclasses.field(default_factory=list)  # what the generator changed

    def path_cas(self) -> List[CertSpec]:
        """The CA certificates a valid path would hold, the trust anchor first."""
        return self.intermediates if self.anchor_intermediate and self.intermediates else [self.root, *self.intermediates]


@dataclasses.dataclass
class Chain:
    spec: ChainSpec
    anchors: List[x509.Certificate]  # the trust store
    leaf: x509.Certificate
    presented: List[x509.Certificate]  # the intermediates as the peer sends them
    root: x509.Certificate
    intermediates: List[x509.Certificate]  # the leaf's issuer first


def _general_name(value: str) -> x509.GeneralName:
    if "@" in value:
        return x509.RFC822Name(value)
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def _subtree(value: str) -> x509.GeneralName:
    if "/" in value:
        return x509.IPAddress(ipaddress.ip_network(value))
    return x509.DNSName(value)


_KU_BITS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
            "key_agreement", "key_cert_sign", "crl_sign")


def _key_usage(bits: Sequence[str]) -> x509.KeyUsage:
    return x509.KeyUsage(**{b: b in bits for b in _KU_BITS}, encipher_only=False, decipher_only=False)


def _name(label: str, spec: CertSpec) -> x509.Name:
    if spec.empty_subject:
        return x509.Name([])
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ferrotls differential"),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, label)]
    if spec.cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, spec.cn))
    return x509.Name(attrs)


_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def make_cert(spec: CertSpec, subject: x509.Name, slot: int, issuer_name: x509.Name, issuer_key,
              signer=None) -> x509.Certificate:
    """``spec`` as a certificate of ``slot``'s key, issued by ``issuer_key`` (signed by ``signer``,
    the issuer's key unless a test wants a bad signature)."""
    subject_key = key(spec.key, slot)
    signer = signer or issuer_key
    public = subject_key.public_key()
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(public)
               .serial_number(x509.random_serial_number())
               .not_valid_before(T0 + spec.not_before * DAY).not_valid_after(T0 + spec.not_after * DAY))
    if spec.bc is not None:
        ca, path_length, critical = spec.bc
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=critical)
    if spec.ku is not None:
        builder = builder.add_extension(_key_usage(spec.ku), critical=spec.ku_critical)
    if spec.eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([EKUS[e] for e in spec.eku]), critical=spec.eku_critical)
    if spec.san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(n) for n in spec.san]),
                                        critical=spec.san_critical)
    if spec.nc is not None:
        permitted, excluded = spec.nc
        builder = builder.add_extension(
            x509.NameConstraints(permitted_subtrees=[_subtree(p) for p in permitted] or None,
                                 excluded_subtrees=[_subtree(e) for e in excluded] or None), critical=True)
    if spec.ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    if spec.aki:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                        critical=False)
    if spec.unknown_extension is not None:
        unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55738.666.1"), b"\x05\x00")
        builder = builder.add_extension(unknown, critical=spec.unknown_extension)
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return builder.sign(signer, None)
    if spec.hash == "sha1":
        return resign_sha1(builder.sign(signer, hashes.SHA256()), signer)
    algorithm = _HASHES[spec.hash]()
    # RSASSA-PSS with a salt as long as the digest (CABF 7.1.3.2.1); too long for RSA-1024 and SHA-512.
    if spec.pss and isinstance(signer, rsa.RSAPrivateKey) and signer.key_size // 8 >= 2 * algorithm.digest_size + 2:
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
        return builder.sign(signer, algorithm, rsa_padding=pss)
    return builder.sign(signer, algorithm)


SPARE = 4  # the key slot of certificates outside the chain (and of bad signatures)


def build_chain(spec: ChainSpec) -> Chain:
    root_name = _name("root", dataclasses.replace(spec.root, empty_subject=False))
    root_key = key(spec.root.key, 0)
    root = make_cert(spec.root, root_name, 0, root_name, root_key)
    issuer_name, issuer_key, issuer_kind, inters = root_name, root_key, spec.root.key, []
    for depth, inter_spec in enumerate(spec.intermediates, 1):
        name = _name(f"intermediate {depth}", dataclasses.replace(inter_spec, empty_subject=False))
        inters.append(make_cert(inter_spec, name, depth, issuer_name, issuer_key))
        issuer_name, issuer_key, issuer_kind = name, key(inter_spec.key, depth), inter_spec.key
    signer = key(issuer_kind, SPARE) if spec.bad_signature else None
    leaf = make_cert(spec.leaf, _name("leaf", spec.leaf), 3, issuer_name, issuer_key, signer)
    inters.reverse()  # the leaf's issuer first
    presented = inters[1:] if spec.omit_issuer else list(inters)
    if spec.reverse_intermediates:
        presented.reverse()
    if spec.distractor:
        other = CertSpec(not_before=-3650, not_after=3650, bc=(True, None, True), ku=("key_cert_sign",))
        presented.insert(0, make_cert(other, _name("distractor", other), SPARE, root_name, root_key))
    if spec.expired_twin and spec.intermediates:  # path building must backtrack past it
        twin = dataclasses.replace(spec.intermediates[-1], not_before=-3650, not_after=-1)
        parent = spec.intermediates[-2] if len(spec.intermediates) > 1 else spec.root
        parent_name = inters[1].subject if len(inters) > 1 else root_name
        parent_key = key(parent.key, len(spec.intermediates) - 1)
        presented.insert(0, make_cert(twin, inters[0].subject, len(spec.intermediates), parent_name, parent_key))
    anchors = [inters[-1]] if spec.anchor_intermediate and inters else [root]
    return Chain(spec, anchors, leaf, presented, root, inters)


# --------------------------------------------------------------------------------------------
# The two verdicts
# --------------------------------------------------------------------------------------------


def _reference(server_name: str):
    try:
        return pv.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        return pv.DNSName(server_name)


def _eku_validator(policy, cert: x509.Certificate, eku: Optional[x509.ExtendedKeyUsage]) -> None:
    """pyca's check of a leaf's EKU, criticality aside; a client certificate may also say any."""
    if eku is None:
        return
    allowed = {policy.extended_key_usage}
    if policy.extended_key_usage == CLIENT_AUTH:
        allowed.add(ANY_EKU)
    if not allowed.intersection(eku):
        raise ValueError("required EKU not found")


def _san_validator(policy, cert: x509.Certificate, san: Optional[x509.SubjectAlternativeName]) -> None:
    """pyca's check of a leaf's SAN criticality, reduced to RFC 5280 4.2.1.6's MUST."""
    if san is None:
        return
    critical = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    if len(cert.subject) == 0 and not critical:
        raise ValueError("EE subjectAltName MUST be critical when subject is empty")


_AGNOSTIC = pv.Criticality.AGNOSTIC
REFERENCE_EE_POLICY = {
    "server": (pv.ExtensionPolicy.webpki_defaults_ee()
               .require_present(x509.SubjectAlternativeName, _AGNOSTIC, _san_validator)
               .may_be_present(x509.ExtendedKeyUsage, _AGNOSTIC, _eku_validator)),
    "client": (pv.ExtensionPolicy.webpki_defaults_ee()
               .may_be_present(x509.SubjectAlternativeName, _AGNOSTIC, _san_validator)
               .may_be_present(x509.ExtendedKeyUsage, _AGNOSTIC, _eku_validator)),
}
REFERENCE_CA_POLICY = pv.ExtensionPolicy.webpki_defaults_ca()


def pyca_verify(roots: Sequence[x509.Certificate], leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                purpose: str, server_name: Optional[str], at: datetime.datetime,
                relaxed: bool = True) -> Tuple[Optional[List[bytes]], str]:
    """pyca's verdict: (the path as DER, leaf first; "") or (None, why)."""
    builder = pv.PolicyBuilder().store(pv.Store(list(roots))).time(at)
    if relaxed:
        builder = builder.extension_policies(ca_policy=REFERENCE_CA_POLICY, ee_policy=REFERENCE_EE_POLICY[purpose])
    try:
        if purpose == "server":
            path = builder.build_server_verifier(_reference(server_name)).verify(leaf, list(intermediates))
        else:
            path = builder.build_client_verifier().verify(leaf, list(intermediates)).chain
    except pv.VerificationError as exc:
        return None, str(exc)
    return [c.public_bytes(DER) for c in path], ""


def ferrotls_verify(roots: Sequence[x509.Certificate], leaf: x509.Certificate,
                    intermediates: Sequence[x509.Certificate], purpose: str, server_name: Optional[str],
                    at: datetime.datetime) -> Tuple[Optional[List[bytes]], str]:
    """ferrotls's verdict, in the same shape; a failure must be a well-formed CertificateVerifyError."""
    store = TrustStore()
    for root in roots:
        store.add_der(root.public_bytes(DER))
    try:
        path = ferrotls.x509.verify_chain(leaf, list(intermediates), store, purpose=purpose, server_name=server_name,
                                          at=at)
    except ferrotls.x509.CertificateVerifyError as err:
        assert isinstance(err, ssl.SSLCertVerificationError), type(err).__mro__
        assert isinstance(err.verify_code, int) and err.verify_code > 0, err.verify_code
        assert err.verify_message and isinstance(err.verify_message, str)
        assert err.alert in TLS_ALERTS, err.alert
        assert isinstance(err.depth, int) and err.depth >= 0
        return None, f"{err.verify_code} {err.verify_message} at depth {err.depth}: {err}"
    return [c.public_bytes(DER) for c in path], ""


def _fold(name: str) -> str:
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return name.lower()


def cn_miscopies_san(cn: Optional[str], sans: Sequence[str]) -> bool:
    """A CN naming one of the dNSName entries without being a character-for-character copy of it."""
    if cn is None:
        return False
    dns = [s for s in sans if "@" not in s and not _is_ip(s)]
    return cn not in dns and _fold(cn) in {d.lower() for d in dns}


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def ferrotls_extra_rules(spec: ChainSpec) -> List[str]:
    """The ferrotls-only rules (module docstring) that ``spec`` breaks."""
    broken = []
    leaf, cas = spec.leaf, spec.path_cas()
    anchored_at_root = cas[0] is spec.root
    if spec.purpose == "server" and not leaf.empty_subject and cn_miscopies_san(leaf.cn, leaf.san or ()):
        broken.append("CABF 7.1.4.3: the leaf's CN spells one of its dNSName entries differently")
    if spec.purpose == "server" and leaf.eku is not None and "anyEKU" in leaf.eku:
        broken.append("CABF 7.1.2.7.10: a server leaf with anyExtendedKeyUsage")
    if any(not ca.ski for ca in cas):
        broken.append("RFC 5280 4.2.1.2: a CA certificate without subjectKeyIdentifier")
    if any(not c.aki for c in [*spec.intermediates, leaf]):
        broken.append("RFC 5280 4.2.1.1: a certificate below the root without authorityKeyIdentifier")
    if spec.purpose == "server" and leaf.eku is None:
        broken.append("CABF 7.1.2.7.10: a server leaf without extendedKeyUsage")
    if anchored_at_root and spec.root.eku is not None:
        broken.append("CABF 7.1.2.1.2: a root with extendedKeyUsage")
    if any(key_is_weak(c.key) for c in [*cas, leaf]):
        broken.append("CABF 6.1.5 / 7.1.3.1: a key that is not RSA >= 2048 (multiple of 8) or P-256/384/521")
    curve_hash = {"p256": "sha256", "p384": "sha384", "p521": "sha512"}
    signed = list(zip([*cas, leaf][:-1], [*cas, leaf][1:]))
    if any(curve_hash.get(parent.key, child.hash) != child.hash for parent, child in signed):
        broken.append("CABF 7.1.3.2.2: an ECDSA issuer signing with another hash than its curve's")
    return broken


def compare(chain: Chain, at: datetime.datetime = T0) -> None:
    spec = chain.spec
    args = (chain.anchors, chain.leaf, chain.presented, spec.purpose, spec.server_name, at)
    reference, why_not = pyca_verify(*args)
    ours, our_error = ferrotls_verify(*args)
    extra = ferrotls_extra_rules(spec)
    expected = None if extra else reference
    context = (f"\n  defects: {spec.defects}\n  spec: {spec}"
               f"\n  pyca (relaxed as documented): {'accepts' if reference else 'rejects: ' + why_not}"
               f"\n  ferrotls-only rules broken: {extra}\n  ferrotls: {'accepts' if ours else 'rejects: ' + our_error}")
    if expected is None:
        assert ours is None, "ferrotls accepts a chain it must reject" + context
    else:
        assert ours is not None, "ferrotls rejects a chain pyca accepts" + context
        assert ours == expected, "both accept, by different paths" + context


# --------------------------------------------------------------------------------------------
# Hypothesis strategies: a compliant chain (varied within the profile), then up to two defects
# --------------------------------------------------------------------------------------------


def weighted(*pairs):
    """``sampled_from`` with weights; the first value is where shrinking goes, so put the
    plainest value first."""
    return st.sampled_from([value for weight, value in pairs for _ in range(weight)])


SERVER_NAMES = ["www.example.com", "example.com", "a.b.example.com", "foo.example.net", "xn--bcher-kva.example",
                "192.0.2.1", "2001:db8::1"]
# SAN entries that match each server name (wildcards included; matching is case-insensitive).
MATCHING = {
    "www.example.com": ["www.example.com", "*.example.com", "WWW.Example.COM"],
    "example.com": ["example.com"],
    "a.b.example.com": ["a.b.example.com", "*.b.example.com"],
    "foo.example.net": ["foo.example.net", "*.example.net"],
    "xn--bcher-kva.example": ["xn--bcher-kva.example"],
    "192.0.2.1": ["192.0.2.1"],
    "2001:db8::1": ["2001:db8::1"],
}
OTHER_SANS = ["example.com", "*.example.com", "w*.example.com", "*.b.example.com", "example.net", "*.example.net",
              "b.example.com", "localhost", "192.0.2.200", "198.51.100.7", "2001:db8::2", "::1"]
CLIENT_SANS = ["alice@example.com", "bob@mail.example.net", "client.example.com", "192.0.2.9"]
# Name constraints that every name above satisfies, and ones that may exclude some.
BROAD_NC = (("example.com", "example.net", "xn--bcher-kva.example", "localhost", "192.0.2.0/24", "198.51.100.0/24",
             "2001:db8::/32", "::1/128"), ())
PERMITTED = ["example.com", "b.example.com", "example.net", ".example.com", "192.0.2.0/24", "198.51.100.0/24",
             "2001:db8::/32", "192.0.2.0/31"]
EXCLUDED = ["bad.example.com", "b.example.com", "example.net", "www.example.com", "192.0.2.1/32", "198.51.100.0/24",
            "2001:db8::/64"]


def good_keys():
    return weighted((6, "p256"), (3, "rsa2048"), (2, "p384"), (1, "p521"))


@st.composite
def good_ca(draw, root: bool, below: int, purpose: str) -> CertSpec:
    """A CA within the profile (and within ferrotls's extra rules), ``below`` intermediates above the leaf."""
    mine, other = PURPOSE_EKU[purpose], PURPOSE_EKU["client" if purpose == "server" else "server"]
    eku = None if root else draw(weighted((6, None), (2, (mine,)), (1, (mine, other)), (1, ("anyEKU",))))
    window = draw(weighted((8, (-3650, 3650)), (1, (0, 3650)), (1, (-3650, 0))))
    return CertSpec(
        key=draw(good_keys()), hash=draw(weighted((6, "sha256"), (2, "sha384"), (2, "sha512"))),
        pss=draw(weighted((4, False), (1, True))), not_before=window[0], not_after=window[1],
        bc=(True, draw(weighted((3, None), (2, below), (1, below + 2))), True),
        ku=draw(weighted((3, ("key_cert_sign", "crl_sign")), (1, ("digital_signature", "key_cert_sign", "crl_sign")))),
        ku_critical=draw(weighted((3, True), (1, False))), eku=eku,
        nc=None if root else draw(weighted((4, None), (1, BROAD_NC))),
        aki=draw(weighted((3, False), (1, True))) if root else True,
        unknown_extension=draw(weighted((8, None), (1, False))),
    )


def _dns_sans(san: Optional[Sequence[str]]) -> List[str]:
    return [s for s in san or () if "@" not in s and not _is_ip(s)]


@st.composite
def good_leaf(draw, purpose: str, server_name: Optional[str]) -> CertSpec:
    mine, other = PURPOSE_EKU[purpose], PURPOSE_EKU["client" if purpose == "server" else "server"]
    if purpose == "server":
        first = draw(st.sampled_from(MATCHING[server_name]))
        extra = draw(st.lists(st.sampled_from(OTHER_SANS), max_size=2, unique=True))
        san: Optional[Tuple[str, ...]] = tuple(dict.fromkeys([first, *extra]))
        eku = draw(weighted((5, (mine,)), (1, (mine, other)), (1, (mine, "codeSigning"))))
    else:  # RFC 5280 lets a client certificate name its holder in the subject only, or say any purpose
        san = draw(weighted((4, True), (1, False))) and tuple(
            draw(st.lists(st.sampled_from(CLIENT_SANS), min_size=1, max_size=2, unique=True))) or None
        eku = draw(weighted((5, (mine,)), (1, (mine, other)), (1, ("anyEKU",)), (1, None)))
    empty_subject = san is not None and draw(weighted((8, False), (1, True)))
    choice = draw(weighted((4, None), (2, "copy"), (1, "unrelated")))
    dns = _dns_sans(san)
    cn = None if empty_subject else {"copy": dns[0] if dns else None, "unrelated": "unrelated.example.org",
                                     None: None}[choice]
    window = draw(weighted((8, (-30, 60)), (1, (0, 60)), (1, (-30, 0)), (1, (-200, 190))))
    return CertSpec(
        key=draw(good_keys()), hash=draw(weighted((6, "sha256"), (2, "sha384"), (2, "sha512"))),
        pss=draw(weighted((4, False), (1, True))), not_before=window[0], not_after=window[1],
        bc=draw(weighted((3, (False, None, True)), (2, None), (1, (False, None, False)))),
        ku=draw(weighted((3, ("digital_signature",)), (2, None), (1, ("digital_signature", "key_encipherment")))),
        ku_critical=draw(weighted((3, True), (1, False))),
        eku=eku, eku_critical=draw(weighted((4, False), (1, True))),
        san=san, san_critical=empty_subject or draw(weighted((4, False), (1, True))),
        cn=cn, empty_subject=empty_subject, ski=draw(weighted((3, True), (1, False))),
        unknown_extension=draw(weighted((8, None), (1, False))),
    )


# Defects: each changes one thing, which may or may not make the chain invalid (both verifiers decide).


def _any_cert(spec: ChainSpec) -> List[CertSpec]:
    return [spec.root, *spec.intermediates, spec.leaf]


def _a_ca(draw, spec: ChainSpec) -> CertSpec:
    return draw(st.sampled_from([spec.root, *spec.intermediates]))


def weak_key(draw, spec):
    draw(st.sampled_from(_any_cert(spec))).key = draw(st.sampled_from(WEAK_KEYS))


def sha1_signature(draw, spec):  # on the root, it is only its self-signature: allowed
    draw(st.sampled_from(_any_cert(spec))).hash = "sha1"


def leaf_validity(draw, spec):
    spec.leaf.not_before, spec.leaf.not_after = draw(st.sampled_from([(-60, -1), (1, 60), (-60, 0), (0, 0)]))


def ca_validity(draw, spec):
    ca = _a_ca(draw, spec)
    ca.not_before, ca.not_after = draw(st.sampled_from([(-3650, -1), (1, 3650), (0, 0)]))


def ca_basic_constraints(draw, spec):
    _a_ca(draw, spec).bc = draw(st.sampled_from([None, (False, None, True), (True, None, False), (True, 0, True),
                                                 (True, 1, True)]))


def ca_key_usage(draw, spec):
    ca = _a_ca(draw, spec)
    ca.ku = draw(st.sampled_from([None, ("digital_signature", "crl_sign"), ("crl_sign",)]))


def ca_eku(draw, spec):
    _a_ca(draw, spec).eku = draw(st.sampled_from([("clientAuth",), ("serverAuth",), ("codeSigning",), ("anyEKU",)]))


def leaf_is_a_ca(draw, spec):
    spec.leaf.bc = draw(st.sampled_from([(True, None, True), (True, 0, False)]))


def leaf_key_usage(draw, spec):
    spec.leaf.ku = draw(st.sampled_from([("digital_signature", "key_cert_sign"), ("key_cert_sign",),
                                         ("key_encipherment",)]))


def leaf_eku(draw, spec):
    spec.leaf.eku = draw(st.sampled_from([("clientAuth",), ("serverAuth",), ("anyEKU",), ("serverAuth", "anyEKU"),
                                          ("clientAuth", "anyEKU"), ("codeSigning",), None]))


def leaf_san(draw, spec):
    spec.leaf.san = draw(st.one_of(st.none(), st.lists(st.sampled_from(OTHER_SANS + CLIENT_SANS), min_size=1,
                                                       max_size=3, unique=True).map(tuple)))
    if spec.leaf.san is None:
        spec.leaf.empty_subject = False
    if spec.leaf.cn is not None and spec.leaf.cn != "unrelated.example.org":
        spec.leaf.cn = None  # a CN copied from the former SAN would now name nothing


def leaf_empty_subject(draw, spec):
    spec.leaf.empty_subject, spec.leaf.cn = True, None
    spec.leaf.san_critical = draw(st.booleans())  # RFC 5280 4.2.1.6: MUST be critical


def leaf_cn_spelling(draw, spec):
    dns = _dns_sans(spec.leaf.san)
    if dns and not spec.leaf.empty_subject:
        spec.leaf.cn = draw(st.sampled_from([dns[0].swapcase(), dns[0].upper(), dns[0]]))


def missing_ski(draw, spec):
    _a_ca(draw, spec).ski = False


def missing_aki(draw, spec):
    draw(st.sampled_from([*spec.intermediates, spec.leaf])).aki = False


def critical_unknown_extension(draw, spec):
    draw(st.sampled_from(_any_cert(spec))).unknown_extension = True


def name_constraints(draw, spec):
    if spec.intermediates:
        permitted = tuple(draw(st.lists(st.sampled_from(PERMITTED), max_size=2, unique=True)))
        excluded = tuple(draw(st.lists(st.sampled_from(EXCLUDED), min_size=0 if permitted else 1, max_size=2,
                                       unique=True)))
        draw(st.sampled_from(spec.intermediates)).nc = (permitted, excluded)


def path_length(draw, spec):
    _a_ca(draw, spec).bc = (True, draw(st.integers(0, 2)), True)


def bad_signature(draw, spec):
    spec.bad_signature = True


def omit_issuer(draw, spec):
    spec.omit_issuer = bool(spec.intermediates)


def distractor(draw, spec):  # harmless
    spec.distractor = True


def expired_twin(draw, spec):  # harmless: the valid issuer is presented too
    spec.expired_twin = bool(spec.intermediates)


def anchor_intermediate(draw, spec):  # harmless
    spec.anchor_intermediate = bool(spec.intermediates)


def validation_by_name(draw, spec):
    if spec.purpose == "server":
        spec.server_name = draw(st.sampled_from(SERVER_NAMES))


DEFECTS = [weak_key, sha1_signature, leaf_validity, ca_validity, ca_basic_constraints, ca_key_usage, ca_eku,
           leaf_is_a_ca, leaf_key_usage, leaf_eku, leaf_san, leaf_empty_subject, leaf_cn_spelling, missing_ski,
           missing_aki, critical_unknown_extension, name_constraints, path_length, bad_signature, omit_issuer,
           distractor, expired_twin, anchor_intermediate, validation_by_name]


@st.composite
def chain_specs(draw) -> ChainSpec:
    purpose = draw(weighted((3, "server"), (1, "client")))
    server_name = draw(st.sampled_from(SERVER_NAMES)) if purpose == "server" else None
    depth = draw(weighted((3, 1), (2, 0), (2, 2)))
    root = draw(good_ca(True, depth, purpose))
    inters = [draw(good_ca(False, depth - i, purpose)) for i in range(1, depth + 1)]
    spec = ChainSpec(root, inters, draw(good_leaf(purpose, server_name)), purpose, server_name,
                     reverse_intermediates=draw(st.booleans()))
    for _ in range(draw(weighted((4, 0), (5, 1), (3, 2)))):
        defect = draw(st.sampled_from(DEFECTS))
        defect(draw, spec)
        spec.defects.append(defect.__name__)
    return spec


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(chain_specs())
def test_generated_chains_agree_with_pyca(spec: ChainSpec) -> None:
    compare(build_chain(spec))


@pytest.fixture(scope="module")
def trustme_cas():
    """Roots and intermediates of both key types, made once (trustme's RSA keys are slow)."""
    roots = {kind: trustme.CA(key_type=getattr(trustme.KeyType, kind)) for kind in ("RSA", "ECDSA")}
    children = {(root, kind): roots[root].create_child_ca(key_type=getattr(trustme.KeyType, kind))
                for root in roots for kind in ("RSA", "ECDSA")}
    return roots, children


TRUSTME_IDENTITIES = ["example.com", "www.example.com", "*.example.com", "127.0.0.1", "::1", "bücher.example",
                      "client@example.org"]
TRUSTME_NAMES = ["example.com", "www.example.com", "other.example.com", "a.b.example.com", "127.0.0.1", "::1",
                 "xn--bcher-kva.example", "example.org"]


@settings(SETTINGS, max_examples=60)
@given(root_kind=st.sampled_from(["RSA", "ECDSA"]), child_kind=st.sampled_from([None, "RSA", "ECDSA"]),
       leaf_kind=st.sampled_from(["ECDSA", "RSA"]),
       identities=st.lists(st.sampled_from(TRUSTME_IDENTITIES), min_size=1, max_size=3, unique=True),
       common_name=st.sampled_from([None, "first-identity", "www.example.com", "Some Name"]),
       purpose=st.sampled_from(["server", "client"]), server_name=st.sampled_from(TRUSTME_NAMES),
       window=st.sampled_from([(-1, 30), (-30, -1), (1, 30), (0, 0)]), with_root=st.booleans())
def test_trustme_chains_agree_with_pyca(trustme_cas, root_kind, child_kind, leaf_kind, identities, common_name,
                                        purpose, server_name, window, with_root) -> None:
    """trustme's certificates: a leaf under a root or an intermediate, its names, key types and
    validity varied. trustme marks the leaf's subjectAltName and extendedKeyUsage critical (the
    documented relaxation of the reference); its leaves carry serverAuth, clientAuth and
    codeSigning."""
    roots, children = trustme_cas
    issuer = roots[root_kind] if child_kind is None else children[(root_kind, child_kind)]
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    cn = identities[0] if common_name == "first-identity" else common_name
    leaf = issuer.issue_cert(*identities, common_name=cn, key_type=getattr(trustme.KeyType, leaf_kind),
                             not_before=now + window[0] * DAY, not_after=now + window[1] * DAY)
    certs = [x509.load_pem_x509_certificate(blob.bytes()) for blob in leaf.cert_chain_pems]
    if with_root:  # a peer may send the root too
        certs.append(x509.load_pem_x509_certificate(roots[root_kind].cert_pem.bytes()))
    root = x509.load_pem_x509_certificate(roots[root_kind].cert_pem.bytes())
    name = server_name if purpose == "server" else None
    args = ([root], certs[0], certs[1:], purpose, name, now)
    reference, why_not = pyca_verify(*args)
    ours, our_error = ferrotls_verify(*args)
    # The one ferrotls-only rule trustme certificates can break: a CN spelling a dNSName entry
    # differently (trustme stores IDNs as A-labels in the SAN, the CN as given).
    sans = [str(n.value) for n in certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value]
    cn_breaks = purpose == "server" and cn_miscopies_san(cn, sans)
    context = f"\n  {args[3:]} identities={identities} cn={cn!r} window={window} pyca: {why_not or 'accepts'}" \
              f"\n  ferrotls: {our_error or 'accepts'}"
    if reference is None or cn_breaks:
        assert ours is None, "ferrotls accepts a chain it must reject" + context
    else:
        assert ours == reference, "verdicts or paths differ" + context


# --- each documented difference, shown once (pyca, unrelaxed where that is the point) -------


def baseline(purpose: str = "server") -> ChainSpec:
    """A compliant root -> intermediate -> leaf chain for www.example.com (or a client)."""
    root = CertSpec(not_before=-3650, not_after=3650, bc=(True, None, True), ku=("key_cert_sign", "crl_sign"),
                    aki=False)
    inter = CertSpec(key="rsa2048", not_before=-3650, not_after=3650, bc=(True, 0, True),
                     ku=("key_cert_sign", "crl_sign"))
    if purpose == "server":
        leaf = CertSpec(key="p384", bc=(False, None, True), ku=("digital_signature",), eku=("serverAuth",),
                        san=("www.example.com", "192.0.2.1"))
        return ChainSpec(root, [inter], leaf, "server", "www.example.com")
    leaf = CertSpec(key="p384", ku=("digital_signature",), eku=("clientAuth",), san=("alice@example.com",))
    return ChainSpec(root, [inter], leaf, "client")


def verdicts(spec: ChainSpec, relaxed: bool = True) -> Tuple[bool, bool]:
    chain = build_chain(spec)
    args = (chain.anchors, chain.leaf, chain.presented, spec.purpose, spec.server_name, T0)
    return pyca_verify(*args, relaxed=relaxed)[0] is not None, ferrotls_verify(*args)[0] is not None


@pytest.mark.parametrize("purpose", ["server", "client"])
def test_baseline_accepted_by_both(purpose):
    assert verdicts(baseline(purpose)) == (True, True)
    assert verdicts(baseline(purpose), relaxed=False) == (True, True)


def _with(spec: ChainSpec, part: str, **changes) -> ChainSpec:
    if part == "chain":
        return dataclasses.replace(spec, **changes)
    if part == "root":
        spec.root = dataclasses.replace(spec.root, **changes)
    elif part == "intermediate":
        spec.intermediates[0] = dataclasses.replace(spec.intermediates[0], **changes)
    else:
        spec.leaf = dataclasses.replace(spec.leaf, **changes)
    return spec


STRICTER = {  # ferrotls rejects, pyca (even relaxed) accepts
    "cn-in-other-case": ("leaf", {"cn": "WWW.example.com"}),
    "server-leaf-with-any-eku-too": ("leaf", {"eku": ("serverAuth", "anyEKU")}),
    "intermediate-without-ski": ("intermediate", {"ski": False}),
    "root-without-ski": ("root", {"ski": False}),
    "intermediate-without-aki": ("intermediate", {"aki": False}),
    "server-leaf-without-eku": ("leaf", {"eku": None}),
    "root-with-eku": ("root", {"eku": ("serverAuth",)}),
    "root-with-any-eku": ("root", {"eku": ("anyEKU",)}),
    "wildcard-cn-in-other-case": ("leaf", {"cn": "*.EXAMPLE.COM", "san": ("*.example.com",)}),
    "leaf-rsa-1024": ("leaf", {"key": "rsa1024"}),
    "leaf-rsa-2052": ("leaf", {"key": "rsa2052"}),
    "intermediate-rsa-2052": ("intermediate", {"key": "rsa2052"}),
    "leaf-secp256k1": ("leaf", {"key": "secp256k1"}),
    "leaf-ed25519": ("leaf", {"key": "ed25519"}),
}


@pytest.mark.parametrize("case", sorted(STRICTER))
def test_ferrotls_stricter(case):
    spec = _with(baseline(), *STRICTER[case][:1], **STRICTER[case][1])
    assert ferrotls_extra_rules(spec), "the model does not know this rule"
    assert verdicts(spec) == (True, False)


LENIENT = {  # ferrotls accepts, unrelaxed pyca rejects (the reference is relaxed by these)
    "leaf-san-critical": ("server", "leaf", {"san_critical": True}),
    "leaf-eku-critical": ("server", "leaf", {"eku_critical": True}),
    "client-leaf-any-eku": ("client", "leaf", {"eku": ("anyEKU",)}),
    "client-leaf-without-san": ("client", "leaf", {"san": None}),
}


@pytest.mark.parametrize("case", sorted(LENIENT))
def test_ferrotls_more_lenient(case):
    purpose, part, changes = LENIENT[case]
    spec = _with(baseline(purpose), part, **changes)
    assert verdicts(spec, relaxed=False) == (False, True)
    assert verdicts(spec) == (True, True)


SHARED = {  # both reject: a defect of each kind the generator varies, checked once by name
    "ca-without-key-usage": ("intermediate", {"ku": None}),  # CABF 7.1.2.1.2 / 7.1.2.10.7
    "sha1-leaf-signature": ("leaf", {"hash": "sha1"}),
    "sha1-intermediate-signature": ("intermediate", {"hash": "sha1"}),
    "intermediate-rsa-1024": ("intermediate", {"key": "rsa1024"}),
    "intermediate-secp256k1": ("intermediate", {"key": "secp256k1"}),
    "leaf-is-a-ca": ("leaf", {"bc": (True, None, True)}),
    "leaf-key-cert-sign": ("leaf", {"ku": ("digital_signature", "key_cert_sign")}),
    "leaf-client-eku-only": ("leaf", {"eku": ("clientAuth",)}),
    "leaf-any-eku-only": ("leaf", {"eku": ("anyEKU",)}),
    "leaf-code-signing-only": ("leaf", {"eku": ("codeSigning",)}),
    "leaf-without-aki": ("leaf", {"aki": False}),
    "leaf-without-san": ("leaf", {"san": None}),
    "leaf-wrong-name": ("leaf", {"san": ("example.com",)}),
    "leaf-partial-wildcard": ("leaf", {"san": ("w*.example.com",)}),
    "leaf-expired": ("leaf", {"not_before": -60, "not_after": -1}),
    "leaf-not-yet-valid": ("leaf", {"not_before": 1, "not_after": 60}),
    "intermediate-expired": ("intermediate", {"not_before": -3650, "not_after": -1}),
    "root-expired": ("root", {"not_before": -3650, "not_after": -1}),
    "intermediate-not-a-ca": ("intermediate", {"bc": (False, None, True)}),
    "intermediate-without-bc": ("intermediate", {"bc": None}),
    "intermediate-bc-not-critical": ("intermediate", {"bc": (True, None, False)}),
    "intermediate-ku-without-cert-sign": ("intermediate", {"ku": ("digital_signature", "crl_sign")}),
    "root-path-length-0": ("root", {"bc": (True, 0, True)}),
    "intermediate-client-eku": ("intermediate", {"eku": ("clientAuth",)}),
    "critical-unknown-extension-leaf": ("leaf", {"unknown_extension": True}),
    "critical-unknown-extension-intermediate": ("intermediate", {"unknown_extension": True}),
    "excluded-subtree": ("intermediate", {"nc": ((), ("www.example.com",))}),
    "outside-permitted-subtree": ("intermediate", {"nc": (("example.net",), ())}),
    "ip-outside-permitted-subtree": ("intermediate", {"nc": (("example.com", "198.51.100.0/24"), ())}),
    "empty-subject-san-not-critical": ("leaf", {"empty_subject": True, "san_critical": False}),
    "issuer-not-presented": ("chain", {"omit_issuer": True}),
    "bad-signature": ("chain", {"bad_signature": True}),
}


@pytest.mark.parametrize("case", sorted(SHARED))
def test_both_reject(case):
    part, changes = SHARED[case]
    assert verdicts(_with(baseline(), part, **changes)) == (False, False)


ALSO_ACCEPTED = {  # both accept: the compliant variations the generator relies on
    "wildcard": ("leaf", {"san": ("*.example.com",)}),
    "uppercase-san": ("leaf", {"san": ("WWW.EXAMPLE.COM",)}),
    "cn-equal-to-san": ("leaf", {"cn": "www.example.com"}),
    "cn-naming-nothing-in-san": ("leaf", {"cn": "unrelated.example.org"}),
    "pss-signature": ("leaf", {"pss": True}),  # signed by the RSA intermediate
    "sha512-signature": ("leaf", {"hash": "sha512"}),
    "p521-leaf": ("leaf", {"key": "p521"}),
    "rsa2048-leaf": ("leaf", {"key": "rsa2048"}),
    "leaf-without-ski": ("leaf", {"ski": False}),
    "leaf-without-key-usage": ("leaf", {"ku": None}),
    "leaf-without-bc": ("leaf", {"bc": None}),
    "root-with-aki": ("root", {"aki": True}),
    "validity-edges": ("leaf", {"not_before": 0, "not_after": 0}),
    "permitted-subtree": ("intermediate", {"nc": (("example.com", "192.0.2.0/24"), ())}),
    "intermediate-server-eku": ("intermediate", {"eku": ("serverAuth",)}),
    "intermediate-any-eku": ("intermediate", {"eku": ("anyEKU",)}),
    "noncritical-unknown-extension": ("leaf", {"unknown_extension": False}),
    "empty-subject-san-critical": ("leaf", {"empty_subject": True, "san_critical": True}),
    "intermediates-top-first": ("chain", {"reverse_intermediates": True}),
    "expired-twin-of-the-issuer": ("chain", {"expired_twin": True}),
    "anchored-at-the-intermediate": ("chain", {"anchor_intermediate": True}),
    "unrelated-ca-presented": ("chain", {"distractor": True}),
}


@pytest.mark.parametrize("case", sorted(ALSO_ACCEPTED))
def test_both_accept(case):
    part, changes = ALSO_ACCEPTED[case]
    spec = _with(baseline(), part, **changes)
    assert not ferrotls_extra_rules(spec)
    assert verdicts(spec) == (True, True)


def test_sha1_resigning_is_sound():
    """The SHA-1 re-signing helper makes certificates that verify (so a rejection is about SHA-1)."""
    spec = _with(baseline(), "leaf", hash="sha1")
    chain = build_chain(spec)
    assert chain.leaf.signature_hash_algorithm.name == "sha1"
    # cryptography's verify_directly_issued_by refuses SHA-1: check the signature by hand.
    chain.intermediates[0].public_key().verify(chain.leaf.signature, chain.leaf.tbs_certificate_bytes,
                                               padding.PKCS1v15(), hashes.SHA1())
    assert chain.leaf.issuer == chain.intermediates[0].subject
