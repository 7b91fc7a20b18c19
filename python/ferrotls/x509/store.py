"""Trust stores: the CA certificates a peer's chain must lead to, indexed by subject and by subject
key identifier so that finding a certificate's candidate issuers is one dictionary lookup.

A PEM file read from disk is parsed once per process: its certificates are kept in a module-level
cache, keyed by the file's identity (device, inode) and checked against its mtime_ns and size, so
every context that loads the system bundle shares one parse of it.
"""

from __future__ import annotations

import binascii
import contextlib
import os
import re
import ssl
import threading
import warnings
from typing import Iterator, Mapping, NamedTuple, Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

from .der import RawFields, raw_fields
from .keystore import PEM_LIB, Password, check_password_type, open_pkcs12, ssl_error

__all__ = ["TrustStore", "default_verify_locations"]

PathLike = Union[str, "os.PathLike[str]"]
NO_CERTIFICATE_OR_CRL_FOUND = 136

# Where distributions keep their CA bundle, for a Python whose OpenSSL looks elsewhere (python.org
# and manylinux builds use OPENSSLDIR=/usr/local/ssl, which is usually empty). First found wins.
SYSTEM_CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL, CentOS
    "/etc/ssl/ca-bundle.pem",  # openSUSE, SLES
    "/etc/ssl/cert.pem",  # Alpine, macOS, OpenBSD
    "/usr/local/etc/ssl/cert.pem",  # FreeBSD
    "/usr/local/share/certs/ca-root-nss.crt",  # FreeBSD (ca_root_nss)
)

# Names load_directory reads: PEM files and OpenSSL's hashed names (`openssl rehash`: 1a2b3c4d.0).
_DIRECTORY_ENTRY = re.compile(r".*\.(pem|crt)|[0-9a-f]{8}\.\d+")
_BEGIN, _END = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"


def _certificate_blocks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Each CERTIFICATE block as (the whole block, its base64 body): the last BEGIN line before
    each END line. Each byte is looked at a bounded number of times, whatever the input."""
    pos = data.find(_BEGIN)
    while pos >= 0:
        end = data.find(_END, pos + len(_BEGIN))
        if end < 0:
            return
        start = data.rfind(_BEGIN, pos, end)  # BEGIN lines without an END before this one are skipped
        yield data[start : end + len(_END)], data[start + len(_BEGIN) : end]
        pos = data.find(_BEGIN, end + len(_END))


class _Anchor(NamedTuple):
    """A trusted certificate with the keys it is indexed by, computed once."""

    certificate: x509.Certificate
    der: bytes
    raw: RawFields  # its subject (DER Name) and what path validation reads without parsing
    key_id: Optional[bytes]  # SubjectKeyIdentifier


class _Parsed(NamedTuple):
    """What a PEM text holds."""

    anchors: tuple[_Anchor, ...]
    blocks: int  # CERTIFICATE blocks found, parsed or not
    error: Optional[str]  # why the first malformed block did not parse


def _key_id(cert: x509.Certificate) -> Optional[bytes]:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except Exception:  # noqa: BLE001 - absent, or extensions cryptography cannot read
        return None


def _anchor(cert: x509.Certificate, der: Optional[bytes] = None) -> _Anchor:
    der = der or cert.public_bytes(Encoding.DER)
    return _Anchor(cert, der, raw_fields(der), _key_id(cert))


def _known(body: bytes, known: Mapping[bytes, _Anchor]) -> Optional[_Anchor]:
    """The anchor already parsed from the same DER, if any (a directory repeats its bundle)."""
    if not known:
        return None
    try:
        return known.get(binascii.a2b_base64(body))
    except binascii.Error:
        return None


@contextlib.contextmanager
def _old_roots_allowed() -> Iterator[None]:
    """Old roots with negative serial numbers still load, without cryptography's warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def _parse_pem(data: bytes, known: Mapping[bytes, _Anchor]) -> _Parsed:
    anchors, blocks, error = [], 0, None
    with _old_roots_allowed():
        for block, body in _certificate_blocks(data):
            blocks += 1
            try:
                anchor = _known(body, known) or _anchor(x509.load_pem_x509_certificate(block))
                anchors.append(anchor)
            except Exception as exc:  # noqa: BLE001 - ValueError, InvalidVersion, unsupported names...
                error = error or str(exc)
    return _Parsed(tuple(anchors), blocks, error)


# (st_dev, st_ino) -> ((st_mtime_ns, st_size), parse). The file's identity rather than its real
# path: one stat instead of an lstat per path component, which made realpath most of the cost of
# rereading /etc/ssl/certs. One entry per file; the oldest is dropped past the limit.
_FILE_CACHE: dict[tuple[int, int], tuple[tuple[int, int], _Parsed]] = {}
_FILE_CACHE_LIMIT = 1024
_FILE_CACHE_LOCK = threading.Lock()


def _read_pem_file(path: PathLike, known: Mapping[bytes, _Anchor], st: Optional[os.stat_result] = None) -> _Parsed:
    """The parse of a PEM file, from the cache while the file is unchanged.

    Like any stat-based cache, it misses a same-size rewrite in place within one mtime tick.
    """
    st = st or os.stat(path)
    with _FILE_CACHE_LOCK:
        cached = _FILE_CACHE.get((st.st_dev, st.st_ino))
    if cached is not None and cached[0] == (st.st_mtime_ns, st.st_size):
        return cached[1]
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())  # the file as read, should it have changed since
        parsed = _parse_pem(f.read(), known)
    with _FILE_CACHE_LOCK:
        _FILE_CACHE.pop((st.st_dev, st.st_ino), None)
        if len(_FILE_CACHE) >= _FILE_CACHE_LIMIT:
            del _FILE_CACHE[next(iter(_FILE_CACHE))]
        _FILE_CACHE[st.st_dev, st.st_ino] = ((st.st_mtime_ns, st.st_size), parsed)
    return parsed


def default_verify_locations() -> tuple[Optional[str], list[str]]:
    """The CA file and CA directories OpenSSL's default verify paths name, as
    ``X509_STORE_set_default_paths`` reads them.

    Each comes from its environment variable when that is set (``SSL_CERT_FILE``; ``SSL_CERT_DIR``, a
    list separated by ``os.pathsep``), else from OpenSSL's built-in paths. When neither variable is
    set and neither built-in path exists, the file is the first distribution bundle found
    (``SYSTEM_CA_FILES``). Locations may not exist; loading skips those.
    """
    paths = ssl.get_default_verify_paths()
    env_file = os.environ.get(paths.openssl_cafile_env)
    env_dir = os.environ.get(paths.openssl_capath_env)
    if (env_file is None and env_dir is None
            and not os.path.isfile(paths.openssl_cafile) and not os.path.isdir(paths.openssl_capath)):
        return next((p for p in SYSTEM_CA_FILES if os.path.isfile(p)), None), []
    cafile = env_file if env_file is not None else paths.openssl_cafile
    capaths = env_dir.split(os.pathsep) if env_dir is not None else [paths.openssl_capath]
    return cafile or None, [d for d in capaths if d]


class TrustStore:
    """The CA certificates we trust (the stdlib's cafile, capath and cadata)."""

    def __init__(self) -> None:
        self.certificates: list[x509.Certificate] = []
        self._der: dict[bytes, _Anchor] = {}  # by DER, so a file repeating them reuses their parse
        self._by_subject: dict[bytes, list[_Anchor]] = {}
        self._by_key_id: dict[bytes, list[x509.Certificate]] = {}

    def __len__(self) -> int:
        return len(self.certificates)

    def __contains__(self, cert: x509.Certificate) -> bool:
        return cert.public_bytes(Encoding.DER) in self._der

    def contains_der(self, der: bytes) -> bool:
        """Whether this DER certificate is trusted (path validation's test for a trust anchor)."""
        return der in self._der

    def by_subject(self, name_der: bytes) -> list[x509.Certificate]:
        """The trusted certificates whose subject is this DER Name."""
        return [a.certificate for a in self._by_subject.get(name_der, ())]

    def anchors(self, name_der: bytes) -> list[_Anchor]:
        """The same as by_subject, with each certificate's DER (for path building)."""
        return self._by_subject.get(name_der, [])

    def by_key_id(self, key_id: bytes) -> list[x509.Certificate]:
        """The trusted certificates whose SubjectKeyIdentifier is ``key_id``: the issuers a
        certificate's AuthorityKeyIdentifier points to (RFC 5280 section 4.2.1.1)."""
        return self._by_key_id.get(key_id, [])

    def add(self, cert: x509.Certificate) -> None:
        self._add(_anchor(cert))

    def _add(self, anchor: _Anchor) -> None:
        if anchor.der in self._der:
            return
        self._der[anchor.der] = anchor
        self.certificates.append(anchor.certificate)
        self._by_subject.setdefault(anchor.raw.subject, []).append(anchor)
        if anchor.key_id is not None:
            self._by_key_id.setdefault(anchor.key_id, []).append(anchor.certificate)

    def add_der(self, data: bytes) -> None:
        """Adds one DER certificate."""
        data = bytes(data)
        try:
            anchor = _anchor(x509.load_der_x509_certificate(data), data)
        except Exception as exc:  # noqa: BLE001 - ValueError, IndexError, InvalidVersion...
            raise ssl_error(PEM_LIB, "X509", None, f"malformed certificate ({exc})") from None
        self._add(anchor)

    def add_pem(self, data: Union[bytes, str], *, strict: bool = True) -> None:
        """Adds every PEM certificate in ``data``.

        A malformed block raises ``ssl.SSLError`` when ``strict`` (and nothing is added, as OpenSSL
        reads a whole file or none of it), and is skipped otherwise. Data without any certificate
        raises ``ssl.SSLError`` (``NO_CERTIFICATE_OR_CRL_FOUND``).
        """
        if isinstance(data, str):
            data = data.encode("ascii", "replace")
        self._add_parsed(_parse_pem(data, self._der), strict)

    def _add_parsed(self, parsed: _Parsed, strict: bool) -> None:
        if not parsed.blocks:
            raise ssl_error(NO_CERTIFICATE_OR_CRL_FOUND, "X509", "NO_CERTIFICATE_OR_CRL_FOUND",
                            "no certificate or crl found")
        if strict and parsed.error:
            raise ssl_error(PEM_LIB, "X509", None, f"PEM lib: malformed certificate ({parsed.error})")
        for anchor in parsed.anchors:
            self._add(anchor)

    def load_file(self, path: PathLike, *, strict: bool = True) -> None:
        """Adds the certificates of a PEM bundle (the stdlib's ``cafile``), parsed once per process
        while the file is unchanged."""
        self._add_parsed(_read_pem_file(path, self._der), strict)

    def load_directory(self, path: PathLike) -> None:
        """Adds the certificates of every ``*.pem``, ``*.crt`` and hashed (``1a2b3c4d.0``) file in a
        directory (the stdlib's ``capath``); unreadable or malformed files are skipped, and a file
        reached by several names (hash symlinks) is read once."""
        self._load_directory(path, set())

    def _load_directory(self, path: PathLike, seen: set[tuple[int, int]]) -> None:
        try:
            entries = sorted(os.listdir(path))
        except OSError:  # like the stdlib's capath, a missing directory just adds nothing
            return
        for entry in entries:
            if _DIRECTORY_ENTRY.fullmatch(entry):
                self._load_leniently(os.path.join(path, entry), seen)

    def _load_leniently(self, path: PathLike, seen: set[tuple[int, int]]) -> None:
        """load_file(strict=False) that never fails and skips files already in ``seen`` (by device
        and inode: a symlink and its target, or hard links, are one file)."""
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) in seen:
                return
            seen.add((st.st_dev, st.st_ino))
            self._add_parsed(_read_pem_file(path, self._der, st), strict=False)
        except OSError:  # missing, unreadable, a directory, or no certificate in it (ssl.SSLError)
            pass

    def load_default_verify_paths(self) -> None:
        """Adds the system's CA certificates from ``default_verify_locations()``: what OpenSSL's
        default verify paths load (``SSL_CERT_FILE``/``SSL_CERT_DIR`` first), else a distribution's
        bundle. Missing locations and malformed entries are skipped, never fatal; a bundle that
        also sits in the directory is read once."""
        cafile, capaths = default_verify_locations()
        seen: set[tuple[int, int]] = set()
        if cafile:
            self._load_leniently(cafile, seen)
        for capath in capaths:
            self._load_directory(capath, seen)

    def load_pkcs12(self, source: Union[bytes, bytearray, memoryview, PathLike], password: Password = None) -> None:
        """Adds every certificate of a PKCS#12 file (a path) or its contents (bytes): a Java-style
        truststore holding certificates only (``keytool -importcert -storetype PKCS12``,
        ``openssl pkcs12 -export -nokeys``) or a key store, whose private key is ignored.

        A wrong password or malformed data raises ``ssl.SSLError``, as does a file without any
        certificate; a missing file raises ``OSError``.
        """
        check_password_type(password)
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        else:
            with open(source, "rb") as f:
                data = f.read()
        with _old_roots_allowed():
            contents = open_pkcs12(data, password, "X509")
            certs = ([contents.cert] if contents.cert is not None else []) + contents.additional_certs
            if not certs:
                raise ssl_error(NO_CERTIFICATE_OR_CRL_FOUND, "X509", "NO_CERTIFICATE_OR_CRL_FOUND",
                                "no certificate or crl found in the PKCS#12 file")
            for cert in certs:
                self.add(cert.certificate)

    def subject_names_der(self) -> list[bytes]:
        """DER subject Name of each CA, without repeats (for CertificateRequest)."""
        return list(self._by_subject)
