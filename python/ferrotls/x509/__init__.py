"""Certificates for ferrotls: our credentials (keystore), trust stores (store), path validation
(path) and names (names)."""

from .keystore import Credential, choose_credential, load_credential, load_pkcs12, ssl_error
from .names import describe_chain, oneline_name
from .path import CertificateVerifyError, Policy, verify_chain, verify_client_chain, verify_server_chain
from .store import TrustStore

__all__ = [
    "Credential", "load_credential", "load_pkcs12", "choose_credential", "ssl_error",
    "TrustStore", "verify_chain", "Policy", "CertificateVerifyError", "verify_server_chain", "verify_client_chain",
    "describe_chain", "oneline_name",
]
