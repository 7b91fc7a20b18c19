"""Trust stores: the CA certificates a peer's chain must lead to, indexed by subject so that
finding a certificate's candidate issuers is one dictionary lookup."""

from __future__ import annotations

import os
import re
import warnings
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .keystore import PEM_LIB, ssl_error

__all__ = ["TrustStore"]

PathLike = Union[str, "os.PathLike[str]"]
NO_CERTIFICATE_OR_CRL_FOUND = 136


class TrustStore:
    """The CA certificates we trust (the stdlib's cafile, capath and cadata)."""

    def __init__(self) -> None:
        self.certificates: list[x509.Certificate] = []
        self._der: set[bytes] = set()
        self._by_subject: dict[bytes, list[x509.Certificate]] = {}

    def __len__(self) -> int:
        return len(self.certificates)

    def __contains__(self, cert: x509.Certificate) -> bool:
        return cert.public_bytes(Encoding.DER) in self._der

    def by_subject(self, name_der: bytes) -> list[x509.Certificate]:
        """The trusted certificates whose subject is this DER Name."""
        return self._by_subject.get(name_der, [])

    def add(self, cert: x509.Certificate) -> None:
        der = cert.public_bytes(Encoding.DER)
        if der not in self._der:
            self._der.add(der)
            self.certificates.append(cert)
            self._by_subject.setdefault(cert.subject.public_bytes(), []).append(cert)

    def add_der(self, data: bytes) -> None:
        """Adds one DER certificate."""
        try:
            cert = x509.load_der_x509_certificate(bytes(data))
        except ValueError as exc:
            raise ssl_error(PEM_LIB, "X509", None, f"malformed certificate ({exc})") from None
        self.add(cert)

    def add_pem(self, data: Union[bytes, str], *, strict: bool = True) -> None:
        """Adds every PEM certificate in ``data``.

        A malformed block raises ``ssl.SSLError`` when ``strict``, and is skipped otherwise.
        Data without any certificate raises ``ssl.SSLError`` (``NO_CERTIFICATE_OR_CRL_FOUND``).
        """
        if isinstance(data, str):
            data = data.encode("ascii", "replace")
        blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", data, re.DOTALL)
        if not blocks:
            raise ssl_error(NO_CERTIFICATE_OR_CRL_FOUND, "X509", "NO_CERTIFICATE_OR_CRL_FOUND",
                            "no certificate or crl found")
        with warnings.catch_warnings():  # old roots with negative serial numbers still load
            warnings.simplefilter("ignore")
            for block in blocks:
                try:
                    self.add(x509.load_pem_x509_certificate(block))
                except ValueError as exc:
                    if strict:
                        raise ssl_error(PEM_LIB, "X509", None, f"PEM lib: malformed certificate ({exc})") from None

    def load_file(self, path: PathLike, *, strict: bool = True) -> None:
        """Adds the certificates of a PEM bundle (the stdlib's ``cafile``)."""
        with open(path, "rb") as f:
            self.add_pem(f.read(), strict=strict)

    def load_directory(self, path: PathLike) -> None:
        """Adds the certificates of every ``*.pem``, ``*.crt`` and hashed (``1a2b3c4d.0``) file in a
        directory (the stdlib's ``capath``); unreadable or malformed files are skipped."""
        try:
            entries = sorted(os.listdir(path))
        except OSError:  # like the stdlib's capath, a missing directory just adds nothing
            return
        for entry in entries:
            if not re.fullmatch(r".*\.(pem|crt)|[0-9a-f]{8}\.\d+", entry):
                continue
            try:
                self.load_file(os.path.join(path, entry), strict=False)
            except (OSError, ValueError):
                continue

    def subject_names_der(self) -> list[bytes]:
        """DER subject Name of each CA, without repeats (for CertificateRequest)."""
        return list(self._by_subject)
