"""Type stubs of ferrotls._core, the Rust crypto core (rust/src)."""

from typing import Any, Callable, List, Optional, Tuple, Union

Buffer = Union[bytes, bytearray, memoryview]

MAX_FRAGMENT: int
WRITE_PIECE: int

class RecordError(ValueError):
    """A record could not be sealed or opened; args[0] names the TLS alert to send
    ("bad_record_mac", "record_overflow", "protocol_version", "unexpected_message",
    "internal_error"), args[1] says what happened."""

class RecordSealer:
    """Protects outgoing records of one direction.

    cipher: AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305 or, for TLS 1.2,
    AES_{128,256}_CBC_{SHA,SHA256,SHA384}. iv: the 4-byte GCM salt (TLS 1.2), the 12-byte IV
    (ChaCha20-Poly1305, TLS 1.3), or b"" for CBC. mac_key: CBC suites only.
    """

    def __init__(
        self,
        cipher: str,
        key: bytes,
        iv: bytes,
        mac_key: bytes = b"",
        *,
        tls13: bool = False,
        encrypt_then_mac: bool = False,
        sequence_number: int = 0,
    ) -> None: ...
    def seal(self, content_type: int, data: Buffer, max_fragment: int = 16384) -> bytes:
        """All the records for `data` (fragments of at most max_fragment bytes), headers
        included, in one bytes object. Raises RecordError("internal_error", ...) rather than let
        the sequence number wrap."""
    def sealed_len(self, length: int, max_fragment: int = 16384) -> int:
        """How many bytes seal_into writes for `length` bytes of data."""
    def seal_into(self, content_type: int, data: Buffer, out: Union[bytearray, memoryview], at: int = 0,
                  max_fragment: int = 16384) -> int:
        """Seals `data` into the writable buffer `out` from offset `at`, with the GIL released;
        returns where the records end. ValueError if they do not fit."""
    @property
    def sequence_number(self) -> int: ...

class RecordOpener:
    """Opens incoming records of one direction; same arguments as RecordSealer."""

    def __init__(
        self,
        cipher: str,
        key: bytes,
        iv: bytes,
        mac_key: bytes = b"",
        *,
        tls13: bool = False,
        encrypt_then_mac: bool = False,
        sequence_number: int = 0,
    ) -> None: ...
    def open_in_place(self, buf: Union[bytearray, memoryview], start: int, end: int,
                      want: int) -> Tuple[int, int, int, int, int]:
        """Opens the complete records in `buf[start:end]` in place, with the GIL released, until
        `want` bytes of application data are open, an incomplete record, or a record that is not
        application data. Returns (app_start, app_end, content_type, end, used): the application
        data is `buf[app_start:app_end]` (the first record's plaintext where it lay, later ones
        moved up behind it); content_type is that of the record of another type that ended the
        batch (else 0), its plaintext `buf[app_end:end]`; `used` bytes were consumed. A bad record
        raises RecordError when it comes first; after good ones it ends the batch and the next
        call raises. In TLS 1.3 an unprotected change_cipher_spec record is passed through as
        type 20."""
    def open(self, data: Buffer, start: int = 0) -> Tuple[List[Tuple[int, bytes]], int]:
        """open_in_place on a copy of `data[start:]`, as (content type, plaintext) pairs: the
        application data merged, then the record of another type that ended the batch."""
    @property
    def sequence_number(self) -> int: ...

class EngineBase:
    """The base of ferrotls.engine.Engine: its buffers, their positions, its locks, and `read`
    and `write`, which move application data without Python code while armed and call the
    subclass's `_read` and `_write` (and `_open_failed` when a record does not open) for
    everything else."""

    _rbuf: bytearray
    _plain: int
    _plain_end: int
    _partial: int
    _ahead: int
    _single_reads: int
    _wbuf: bytearray
    _wstart: int
    _wend: int
    _written: int
    @property
    def _read_lock(self) -> Any: ...
    @property
    def _write_lock(self) -> Any: ...
    def _arm(self, socket_ref: Optional[Callable[[], Any]], opener: Optional[RecordOpener],
             sealer: Optional[RecordSealer]) -> None: ...
    def read(self, n: int = 1024, buffer: Any = None) -> Union[bytes, int]: ...
    def write(self, data: Buffer) -> int: ...

def tls12_prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """P_hash of RFC 5246 section 5; hash_name "sha256" or "sha384"."""

def master_secret(hash_name: str, premaster: bytes, client_random: bytes, server_random: bytes) -> bytes: ...
def extended_master_secret(hash_name: str, premaster: bytes, session_hash: bytes) -> bytes: ...
def key_block(hash_name: str, master: bytes, server_random: bytes, client_random: bytes, length: int) -> bytes: ...
def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes: ...
def hkdf_expand_label(hash_name: str, secret: bytes, label: bytes, context: bytes, length: int) -> bytes: ...
def derive_secret(hash_name: str, secret: bytes, label: bytes, transcript_hash: bytes) -> bytes: ...
class EphemeralKey:
    """An ECDHE key pair: group "x25519", "secp256r1" or "secp384r1"."""

    def __init__(self, group: str) -> None: ...
    @property
    def public_bytes(self) -> bytes: ...
    def exchange(self, peer_public: bytes) -> bytes: ...

class PrivateKey:
    """A private key (PKCS#8 DER: RSA, ECDSA P-256/P-384/P-521, Ed25519), parsed and checked
    once; ValueError if it is malformed, inconsistent or of another kind."""

    def __init__(self, pkcs8: bytes) -> None: ...
    @property
    def kind(self) -> str:
        """"rsa", "ec" or "ed25519"."""
    @property
    def curve(self) -> Optional[str]: ...
    @property
    def bits(self) -> int: ...
    def sign(self, scheme: str, message: bytes) -> bytes:
        """Signs under a TLS SignatureScheme name ("rsa_pss_rsae_sha256", "ecdsa_secp384r1_sha384",
        "ed25519", ...); in TLS 1.2's sense an ECDSA scheme names only the hash. ValueError for
        an unknown scheme or one the key cannot sign under."""
    def rsa_premaster(self, ciphertext: bytes, client_version: int) -> bytes:
        """Always 48 bytes: the premaster, or an indistinguishable substitute for a malformed
        ciphertext of any length (implicit rejection). ValueError only for a non-RSA key."""

def verify(scheme: str, public_key_der: bytes, message: bytes, signature: bytes) -> bool:
    """Checks a signature with a SubjectPublicKeyInfo DER key; "rsa_pkcs1_sha1" is accepted here.
    As in TLS 1.2, the ECDSA schemes name only the hash: a P-384 key verifies under
    "ecdsa_secp256r1_sha256" and a P-256 key under "ecdsa_secp384r1_sha384"."""

def random_bytes(n: int) -> bytes: ...
