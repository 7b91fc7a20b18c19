"""What one side of a connection is configured with; shared by many connections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, List, Optional

from .sessions import SessionCache, TicketKeys
from .suites import TLS12_SUITES, CipherSuite

if TYPE_CHECKING:
    from ..x509.keystore import Credential
    from ..x509.path import Policy
    from ..x509.store import TrustStore

# What we accept in CertificateVerify, best first (RFC 5246 7.4.1.4.1, RFC 8446 4.2.3 names).
DEFAULT_SIGNATURE_SCHEMES = [
    "ecdsa_secp256r1_sha256",
    "ecdsa_secp384r1_sha384",
    "rsa_pss_rsae_sha256",
    "rsa_pss_rsae_sha384",
    "rsa_pss_rsae_sha512",
    "rsa_pkcs1_sha256",
    "rsa_pkcs1_sha384",
    "rsa_pkcs1_sha512",
]


@dataclass
class TLSConfig:
    cipher_suites: List[CipherSuite] = field(default_factory=lambda: list(TLS12_SUITES))
    # Server: its certificate chain and key. Client: the candidates for client authentication.
    credentials: List["Credential"] = field(default_factory=list)
    trust_store: Optional["TrustStore"] = None
    # Client: check the server's chain. Server: request a client certificate.
    verify_peer: bool = False
    # Server: fail the handshake when the client sends no certificate.
    require_peer_certificate: bool = False
    check_hostname: bool = True
    # Client: match the server's common name when its certificate has no subjectAltName.
    check_common_name: bool = False
    # Path validation: intermediates allowed (None: the validator's default) and its options.
    max_chain_depth: Optional[int] = None
    verify_policy: Optional["Policy"] = None
    # Revocation checking asked for (ssl.VERIFY_CRL_CHECK_*): not implemented, so it fails closed.
    check_revocation: bool = False
    prefer_client_ciphers: bool = False
    extended_master_secret: bool = True
    require_extended_master_secret: bool = False
    encrypt_then_mac: bool = True
    session_tickets: bool = True
    session_cache: Optional[SessionCache] = field(default_factory=SessionCache)
    ticket_keys: Optional[TicketKeys] = field(default_factory=TicketKeys)
    signature_schemes: List[str] = field(default_factory=lambda: list(DEFAULT_SIGNATURE_SCHEMES))
    # ECDHE groups, best first (RFC 8422 supported_groups).
    groups: List[str] = field(default_factory=lambda: ["x25519", "secp256r1", "secp384r1"])
    # Client: picks one of several fitting credentials, given them and the server's CA names.
    choose_certificate: Optional[Callable[[List["Credential"], List[bytes]], Optional["Credential"]]] = None
    # Called with each handshake step, worded like OpenSSL's info callback.
    info_callback: Optional[Callable[[str], None]] = None
    # ALPN (RFC 7301): the protocols offered (client) or accepted in preference order (server).
    alpn_protocols: List[bytes] = field(default_factory=list)
    # Server: called with the client's server_name (or None) before the server answers; may
    # return another configuration to use (another certificate), or raise TLSAlert.
    server_name_callback: Optional[Callable[[Optional[str]], Optional["TLSConfig"]]] = None
