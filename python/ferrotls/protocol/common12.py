"""What the TLS 1.2 client and server states share: certificate checks and Finished."""

from __future__ import annotations

import hmac
from typing import List

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from .. import _core
from .alerts import AlertDescription, TLSAlert
from .keys import finished_verify_data
from .messages import SCHEME_NAMES, Finished

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def peer_public_key(chain: List[bytes]):
    """The public key of the peer's leaf certificate, once the chain has been validated (if it
    is). A leaf or key that cannot be read ends the handshake as in OpenSSL, which finds no key
    parameters in it: internal_error to the peer, UNABLE_TO_FIND_PUBLIC_KEY_PARAMETERS here."""
    try:
        return x509.load_der_x509_certificate(chain[0]).public_key()
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm):
        raise TLSAlert(AlertDescription.internal_error, "the peer's certificate holds no usable public key",
                       reason="UNABLE_TO_FIND_PUBLIC_KEY_PARAMETERS") from None


def verify_chain(conn, chain: List[bytes], server: bool) -> list:
    """Validates the peer's chain against the trust store; a failure becomes the alert the
    validator names, carrying the validator's error. A server's leaf must also allow the key
    exchange: digitalSignature for ECDHE, keyEncipherment for RSA (RFC 5280 4.2.1.3)."""
    from ..x509.path import DEFAULT_POLICY, CertificateVerifyError
    from ..x509.path import verify_chain as validate

    config = conn.config
    if config.trust_store is None:
        raise TLSAlert(AlertDescription.internal_error, "no trust store to verify the peer with")
    usage = ()
    if server:
        usage = ("digital_signature",) if conn.suite.kx == "ECDHE" else ("key_encipherment",)
    try:
        path = validate(chain[0], chain[1:], config.trust_store, purpose="server" if server else "client",
                        server_name=conn.server_hostname if server and config.check_hostname else None,
                        at=conn.now, max_chain_depth=config.max_chain_depth,
                        check_common_name=config.check_common_name, key_usage=usage,
                        policy=config.verify_policy or DEFAULT_POLICY)
        if config.check_revocation:  # no CRLs here: OpenSSL's answer when it has none for the leaf
            raise CertificateVerifyError(3, 0, "revocation checking (CRLs) is not supported")
        return path
    except CertificateVerifyError as e:
        alert = TLSAlert(AlertDescription[e.alert], f"certificate verify failed: {e.verify_message}")
        alert.verify_error = e  # type: ignore[attr-defined]
        raise alert from None


def check_finished(conn, body: bytes) -> None:
    """The peer's Finished covers every handshake message before it (RFC 5246 7.4.9)."""
    received = Finished.decode(body)
    expected = finished_verify_data(conn.suite, conn.master_secret, not conn.is_client, bytes(conn.transcript[: conn.transcript_mark]))
    if not hmac.compare_digest(received.verify_data, expected):
        raise TLSAlert(AlertDescription.decrypt_error, "Finished verify_data does not match")
    conn.info("read finished")
    conn.first_finished = conn.first_finished or received.verify_data


def send_finished(conn) -> None:
    verify_data = finished_verify_data(conn.suite, conn.master_secret, conn.is_client, bytes(conn.transcript))
    conn.send_handshake(Finished(verify_data), "finished")
    # RFC 5929 3.1: tls-unique is the first Finished of the handshake.
    conn.first_finished = conn.first_finished or verify_data


def check_signature(conn, algorithm: int, public_key_spki: bytes, signed: bytes, signature: bytes, what: str) -> None:
    """A peer's signature (ServerKeyExchange, CertificateVerify): under a scheme we offered
    (else illegal_parameter) and valid for its key (else decrypt_error, RFC 5246 7.2.2)."""
    scheme = SCHEME_NAMES.get(algorithm)
    if scheme not in conn.config.signature_schemes:
        raise TLSAlert(AlertDescription.illegal_parameter, f"{what} signed with a scheme we did not offer")
    try:
        good = _core.verify(scheme, public_key_spki, signed, signature)
    except ValueError:  # a key that does not suit the scheme
        good = False
    if not good:
        raise TLSAlert(AlertDescription.decrypt_error, f"{what} signature does not verify")
