"""Certificates for ferrotls: our credentials (keystore) and the peers' chains (store)."""

from .keystore import Credential, choose_credential, load_credential, load_pkcs12, ssl_error
from .store import (
    CertificateVerifyError,
    TrustStore,
    describe_chain,
    oneline_name,
    verify_client_chain,
    verify_server_chain,
)

__all__ = [
    "Credential", "load_credential", "load_pkcs12", "choose_credential", "ssl_error",
    "TrustStore", "CertificateVerifyError", "verify_server_chain", "verify_client_chain",
    "describe_chain", "oneline_name",
]
