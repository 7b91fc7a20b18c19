"""Our own certificates and private keys: loading them and picking one for a peer.

The loaders behave like ``ssl.SSLContext.load_cert_chain``: missing files raise ``OSError``,
bad passwords, keys that do not match and files without a certificate raise ``ssl.SSLError``
with the stdlib's ``args[0]``, ``library`` and ``reason``.
"""

from __future__ import annotations

import os
import re
import ssl
from typing import Callable, Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from .. import _core

__all__ = ["Credential", "Password", "load_credential", "load_pkcs12", "choose_credential", "ssl_error"]

Password = Union[str, bytes, bytearray, Callable[[], Union[str, bytes, bytearray]], None]
PathLike = Union[str, "os.PathLike[str]"]

# Error codes CPython reports (args[0]) for the same failures.
PEM_LIB = 524297  # ERR_R_PEM_LIB
KEY_VALUES_MISMATCH = 116

RSA_SCHEMES = [
    "rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384", "rsa_pss_rsae_sha512",
    "rsa_pkcs1_sha256", "rsa_pkcs1_sha384", "rsa_pkcs1_sha512",
]
# The curve's own hash first; in TLS 1.2 an ECDSA code point names only the hash (RFC 5246
# 7.4.1.4.1), so the key signs under the other's too when the peer asks for it.
EC_SCHEMES = {
    "secp256r1": ["ecdsa_secp256r1_sha256", "ecdsa_secp384r1_sha384"],
    "secp384r1": ["ecdsa_secp384r1_sha384", "ecdsa_secp256r1_sha256"],
}

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}


def ssl_error(code: int, library: Optional[str], reason: Optional[str], text: str) -> ssl.SSLError:
    """An ``ssl.SSLError`` shaped like CPython's: ``args == (code, "[LIB: REASON] text")``."""
    tag = f"[{library}: {reason}] " if library and reason else f"[{library}] " if library else ""
    err = ssl.SSLError(code, tag + text)
    err.library = library  # type: ignore[attr-defined]
    err.reason = reason  # type: ignore[attr-defined]
    return err


class Credential:
    """A certificate chain (leaf first) with the private key of its leaf."""

    chain: list[x509.Certificate]
    chain_der: list[bytes]
    key: _core.PrivateKey  # parsed and checked once; signs and decrypts for every handshake
    key_type: str
    curve: Optional[str]  # the ECDSA key's curve
    signature_schemes: list[str]

    def __init__(self, chain: list[x509.Certificate], private_key: PrivateKeyTypes) -> None:
        if not chain:
            raise ssl_error(PEM_LIB, "SSL", None, "PEM lib: no certificate found")
        if isinstance(private_key, rsa.RSAPrivateKey):
            self.key_type, self.signature_schemes = "rsa", list(RSA_SCHEMES)
        elif isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.name in EC_SCHEMES:
            self.key_type, self.signature_schemes = "ec", list(EC_SCHEMES[private_key.curve.name])
        else:
            kind = getattr(getattr(private_key, "curve", None), "name", type(private_key).__name__)
            raise ssl_error(PEM_LIB, "SSL", None, f"unsupported private key type: {kind} (RSA, P-256 and P-384 only)")
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if private_key.public_key().public_bytes(der, spki) != chain[0].public_key().public_bytes(der, spki):
            raise ssl_error(KEY_VALUES_MISMATCH, "X509", "KEY_VALUES_MISMATCH",
                            "key values mismatch: the private key does not belong to the leaf certificate")
        self.chain = list(chain)
        self.chain_der = [c.public_bytes(der) for c in chain]
        try:
            self.key = _core.PrivateKey(private_key.private_bytes(der, serialization.PrivateFormat.PKCS8,
                                                                  serialization.NoEncryption()))
        except ValueError as exc:
            raise ssl_error(PEM_LIB, "SSL", None, f"PEM lib: cannot load the private key ({exc})") from None
        self.curve = self.key.curve

    def __repr__(self) -> str:
        return f"<Credential {self.key_type} {self.chain[0].subject.rfc4514_string()!r} chain={len(self.chain)}>"


def check_password_type(password: Password) -> None:
    if password is not None and not callable(password) and not isinstance(password, (str, bytes, bytearray)):
        raise TypeError("password should be a string or callable")


def _password_bytes(password: Password) -> Optional[bytes]:
    """Resolves the password (calling it if callable) to bytes, as load_cert_chain does."""
    if callable(password):
        password = password()
        if not isinstance(password, (str, bytes, bytearray)):
            raise TypeError("password callback must return a string")
    if isinstance(password, str):
        return password.encode("utf-8")
    return bytes(password) if password is not None else None


def _is_encrypted(block: bytes) -> bool:
    return block.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") or b"Proc-Type: 4,ENCRYPTED" in block


def _load_key(data: bytes, password: Password) -> PrivateKeyTypes:
    """The first private key PEM block in ``data``; the password is asked for only if needed."""
    block = next((m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) in _KEY_LABELS), None)
    if block is None:
        raise ssl_error(PEM_LIB, "SSL", None, "PEM lib: no private key found")
    secret = _password_bytes(password) if _is_encrypted(block) else None
    if _is_encrypted(block) and not secret:
        raise ssl_error(PEM_LIB, "SSL", None, "PEM lib: the private key is encrypted and no password was given")
    try:
        # The core checks the key's consistency when the credential is made (as OpenSSL does on
        # load), in a fraction of the time cryptography's own RSA check takes.
        return serialization.load_pem_private_key(block, secret, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        why = "bad decrypt: wrong password for the private key" if secret else f"cannot load the private key ({exc})"
        raise ssl_error(PEM_LIB, "SSL", None, "PEM lib: " + why) from None


def _load_certificates(data: bytes) -> list[x509.Certificate]:
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) == b"CERTIFICATE"]
    if not blocks:
        raise ssl_error(PEM_LIB, "SSL", None, "PEM lib: no certificate found")
    try:
        return [x509.load_pem_x509_certificate(b) for b in blocks]
    except ValueError as exc:
        raise ssl_error(PEM_LIB, "SSL", None, f"PEM lib: malformed certificate ({exc})") from None


def _read(path: PathLike) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def load_credential(certfile: PathLike, keyfile: Optional[PathLike] = None, password: Password = None) -> Credential:
    """Loads a PEM chain (leaf first) and its PEM private key, like ``load_cert_chain``.

    The key may sit in ``certfile`` when ``keyfile`` is None. PKCS#1, PKCS#8, SEC1,
    encrypted PKCS#8 and legacy encrypted PEM keys are accepted.
    """
    check_password_type(password)
    chain = _load_certificates(_read(certfile))
    key = _load_key(_read(keyfile if keyfile is not None else certfile), password)
    return Credential(chain, key)


def _order_chain(leaf: x509.Certificate, others: list[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf, then each certificate's issuer found among ``others``; unrelated ones are dropped."""
    chain, pool = [leaf], list(others)
    while chain[-1].issuer != chain[-1].subject:
        nxt = next((c for c in pool if c.subject == chain[-1].issuer), None)
        if nxt is None:
            break
        pool.remove(nxt)
        chain.append(nxt)
    return chain


def open_pkcs12(data: bytes, password: Password, library: str) -> pkcs12.PKCS12KeyAndCertificates:
    """Decrypts PKCS#12 contents; a wrong password or corrupt data raises ``ssl.SSLError``
    (reported under ``library``, "SSL" for our credentials, "X509" for trust stores)."""
    check_password_type(password)
    try:
        return pkcs12.load_pkcs12(data, _password_bytes(password))
    except ValueError:
        raise ssl_error(PEM_LIB, library, None,
                        "PKCS12 lib: cannot decrypt the PKCS#12 file: wrong password or corrupt data") from None


def load_pkcs12(path: PathLike, password: Password = None) -> Credential:
    """Loads a PKCS#12 file: its key, its certificate, and the extra certificates as a chain."""
    check_password_type(password)
    contents = open_pkcs12(_read(path), password, "SSL")
    if contents.cert is None or contents.key is None:
        raise ssl_error(PEM_LIB, "SSL", None, "PKCS12 lib: the PKCS#12 file lacks a certificate or a private key")
    extra = [c.certificate for c in contents.additional_certs]
    return Credential(_order_chain(contents.cert.certificate, extra), contents.key)


def choose_credential(credentials: list[Credential], ca_names: list[bytes]) -> list[Credential]:
    """The credentials whose chain names one of ``ca_names`` (DER X.509 Names) as issuer or subject.

    An empty ``ca_names`` means the peer accepts any CA (RFC 5246 section 7.4.4). Order is kept.
    """
    if not ca_names:
        return list(credentials)
    wanted = set(ca_names)

    def fits(cred: Credential) -> bool:
        return any(c.issuer.public_bytes() in wanted or c.subject.public_bytes() in wanted for c in cred.chain)

    return [c for c in credentials if fits(c)]
