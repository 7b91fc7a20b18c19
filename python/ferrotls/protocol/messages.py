"""The handshake message codec of TLS 1.2 (RFC 5246 section 7.4), strict: every length is
checked, trailing bytes are a decode_error, duplicate extensions are refused, unknown ones kept
as opaque bytes for the caller to ignore."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .alerts import AlertDescription, TLSAlert

TLS12 = 0x0303


class ContentType(enum.IntEnum):
    change_cipher_spec = 20
    alert = 21
    handshake = 22
    application_data = 23


class HandshakeType(enum.IntEnum):
    hello_request = 0
    client_hello = 1
    server_hello = 2
    new_session_ticket = 4
    certificate = 11
    server_key_exchange = 12
    certificate_request = 13
    server_hello_done = 14
    certificate_verify = 15
    client_key_exchange = 16
    finished = 20


class ExtensionType(enum.IntEnum):
    server_name = 0
    supported_groups = 10
    ec_point_formats = 11
    signature_algorithms = 13
    application_layer_protocol_negotiation = 16
    encrypt_then_mac = 22
    extended_master_secret = 23
    session_ticket = 35
    supported_versions = 43
    renegotiation_info = 0xFF01


# SignatureScheme code points (RFC 8446 4.2.3; the TLS 1.2 ones are hash || signature pairs).
SIGNATURE_SCHEMES: Dict[str, int] = {
    "rsa_pss_rsae_sha256": 0x0804,
    "rsa_pss_rsae_sha384": 0x0805,
    "rsa_pss_rsae_sha512": 0x0806,
    "ecdsa_secp256r1_sha256": 0x0403,
    "ecdsa_secp384r1_sha384": 0x0503,
    "rsa_pkcs1_sha256": 0x0401,
    "rsa_pkcs1_sha384": 0x0501,
    "rsa_pkcs1_sha512": 0x0601,
    "rsa_pkcs1_sha1": 0x0201,
}
SCHEME_NAMES: Dict[int, str] = {v: k for k, v in SIGNATURE_SCHEMES.items()}

# NamedGroup code points (RFC 8422 5.1.1, RFC 7748).
GROUPS: Dict[str, int] = {"x25519": 29, "secp256r1": 23, "secp384r1": 24}
GROUP_NAMES: Dict[int, str] = {v: k for k, v in GROUPS.items()}
NAMED_CURVE = 3  # ECCurveType named_curve (RFC 8422 5.4)
UNCOMPRESSED = 0  # ECPointFormat uncompressed


def decode_error(what: str) -> TLSAlert:
    return TLSAlert(AlertDescription.decode_error, what)


class Reader:
    """Reads the wire's big-endian integers and length-prefixed vectors, checking every bound."""

    def __init__(self, data: bytes, what: str = "message"):
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise decode_error(f"{self.what} is truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, len_size: int, minimum: int = 0) -> bytes:
        n = self.uint(len_size)
        if n < minimum:
            raise decode_error(f"{self.what} has a vector below its minimum length")
        return self.take(n)

    def items(self, len_size: int, item_size: int, minimum: int = 0) -> List[int]:
        raw = self.vector(len_size, minimum)
        if len(raw) % item_size:
            raise decode_error(f"{self.what} has a ragged list")
        return [int.from_bytes(raw[i : i + item_size], "big") for i in range(0, len(raw), item_size)]

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def done(self) -> None:
        if self.pos != len(self.data):
            raise decode_error(f"{self.what} has trailing bytes")


def vec(data: bytes, len_size: int) -> bytes:
    return len(data).to_bytes(len_size, "big") + data


def u16_list(values: List[int], len_size: int = 2) -> bytes:
    return vec(b"".join(struct.pack("!H", v) for v in values), len_size)


Extensions = Dict[int, bytes]


def decode_extensions(r: Reader) -> Extensions:
    """The optional extensions block at the end of a hello: absent means none."""
    exts: Extensions = {}
    if r.remaining() == 0:
        return exts
    block = Reader(r.vector(2), "extensions")
    while block.remaining():
        ext_type = block.uint(2)
        data = block.vector(2)
        if ext_type in exts:
            raise TLSAlert(AlertDescription.illegal_parameter, f"duplicate extension {ext_type}")
        exts[ext_type] = data
    return exts


def encode_extensions(exts: Extensions) -> bytes:
    if not exts:
        return b""
    return vec(b"".join(struct.pack("!H", t) + vec(d, 2) for t, d in exts.items()), 2)


@dataclass
class ClientHello:
    client_version: int
    random: bytes
    session_id: bytes
    cipher_suites: List[int]
    compression_methods: bytes = b"\x00"
    extensions: Extensions = field(default_factory=dict)
    msg_type = HandshakeType.client_hello

    def encode(self) -> bytes:
        return (
            struct.pack("!H", self.client_version)
            + self.random
            + vec(self.session_id, 1)
            + u16_list(self.cipher_suites)
            + vec(self.compression_methods, 1)
            + encode_extensions(self.extensions)
        )

    @classmethod
    def decode(cls, body: bytes) -> "ClientHello":
        r = Reader(body, "ClientHello")
        version, random = r.uint(2), r.take(32)
        session_id = r.vector(1)
        if len(session_id) > 32:
            raise decode_error("ClientHello session_id is longer than 32 bytes")
        suites = r.items(2, 2, minimum=2)
        compression = r.vector(1, minimum=1)
        exts = decode_extensions(r)
        r.done()
        return cls(version, random, session_id, suites, compression, exts)


@dataclass
class ServerHello:
    server_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int = 0
    extensions: Extensions = field(default_factory=dict)
    msg_type = HandshakeType.server_hello

    def encode(self) -> bytes:
        return (
            struct.pack("!H", self.server_version)
            + self.random
            + vec(self.session_id, 1)
            + struct.pack("!HB", self.cipher_suite, self.compression_method)
            + encode_extensions(self.extensions)
        )

    @classmethod
    def decode(cls, body: bytes) -> "ServerHello":
        r = Reader(body, "ServerHello")
        version, random = r.uint(2), r.take(32)
        session_id = r.vector(1)
        if len(session_id) > 32:
            raise decode_error("ServerHello session_id is longer than 32 bytes")
        suite, compression = r.uint(2), r.uint(1)
        exts = decode_extensions(r)
        r.done()
        return cls(version, random, session_id, suite, compression, exts)


@dataclass
class Certificate:
    certificate_list: List[bytes]
    msg_type = HandshakeType.certificate

    def encode(self) -> bytes:
        return vec(b"".join(vec(c, 3) for c in self.certificate_list), 3)

    @classmethod
    def decode(cls, body: bytes) -> "Certificate":
        r = Reader(body, "Certificate")
        chain = Reader(r.vector(3), "Certificate")
        r.done()
        certs = []
        while chain.remaining():
            certs.append(chain.vector(3, minimum=1))
        return cls(certs)


@dataclass
class CertificateRequest:
    certificate_types: bytes
    signature_algorithms: List[int]
    certificate_authorities: List[bytes]
    msg_type = HandshakeType.certificate_request

    def encode(self) -> bytes:
        cas = b"".join(vec(n, 2) for n in self.certificate_authorities)
        return vec(self.certificate_types, 1) + u16_list(self.signature_algorithms) + vec(cas, 2)

    @classmethod
    def decode(cls, body: bytes) -> "CertificateRequest":
        r = Reader(body, "CertificateRequest")
        types = r.vector(1, minimum=1)
        algs = r.items(2, 2, minimum=2)
        names_r = Reader(r.vector(2), "CertificateRequest")
        r.done()
        names = []
        while names_r.remaining():
            names.append(names_r.vector(2, minimum=1))
        return cls(types, algs, names)


@dataclass
class Empty:
    """ServerHelloDone and HelloRequest: no body."""

    msg_type: HandshakeType

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode_as(cls, msg_type: HandshakeType, body: bytes) -> "Empty":
        if body:
            raise decode_error(f"{msg_type.name} has a body")
        return cls(msg_type)


@dataclass
class ClientKeyExchange:
    """RSA key exchange: the EncryptedPreMasterSecret (RFC 5246 7.4.7.1)."""

    encrypted_premaster: bytes
    msg_type = HandshakeType.client_key_exchange

    def encode(self) -> bytes:
        return vec(self.encrypted_premaster, 2)

    @classmethod
    def decode(cls, body: bytes) -> "ClientKeyExchange":
        r = Reader(body, "ClientKeyExchange")
        secret = r.vector(2, minimum=1)
        r.done()
        return cls(secret)


@dataclass
class ServerKeyExchange:
    """ECDHE (RFC 8422 5.4): ServerECDHParams, then a signature over client_random +
    server_random + params under one of the client's signature_algorithms."""

    named_group: int
    public: bytes
    algorithm: int = 0
    signature: bytes = b""
    msg_type = HandshakeType.server_key_exchange

    def params(self) -> bytes:
        return struct.pack("!BH", NAMED_CURVE, self.named_group) + vec(self.public, 1)

    def encode(self) -> bytes:
        return self.params() + struct.pack("!H", self.algorithm) + vec(self.signature, 2)

    @classmethod
    def decode(cls, body: bytes) -> "ServerKeyExchange":
        r = Reader(body, "ServerKeyExchange")
        if r.uint(1) != NAMED_CURVE:
            raise TLSAlert(AlertDescription.illegal_parameter, "ServerKeyExchange without a named curve")
        group = r.uint(2)
        public = r.vector(1, minimum=1)
        algorithm = r.uint(2)
        signature = r.vector(2)  # RFC 5246 4.7: <0..2^16-1>; an empty one fails to verify
        r.done()
        return cls(group, public, algorithm, signature)


@dataclass
class ClientECDHKeyExchange:
    """ECDHE: the client's ephemeral public key (RFC 8422 5.7)."""

    public: bytes
    msg_type = HandshakeType.client_key_exchange

    def encode(self) -> bytes:
        return vec(self.public, 1)

    @classmethod
    def decode(cls, body: bytes) -> "ClientECDHKeyExchange":
        r = Reader(body, "ClientKeyExchange")
        public = r.vector(1, minimum=1)
        r.done()
        return cls(public)


@dataclass
class CertificateVerify:
    algorithm: int
    signature: bytes
    msg_type = HandshakeType.certificate_verify

    def encode(self) -> bytes:
        return struct.pack("!H", self.algorithm) + vec(self.signature, 2)

    @classmethod
    def decode(cls, body: bytes) -> "CertificateVerify":
        r = Reader(body, "CertificateVerify")
        alg = r.uint(2)
        sig = r.vector(2)  # RFC 5246 4.7: <0..2^16-1>; an empty one fails to verify
        r.done()
        return cls(alg, sig)


@dataclass
class Finished:
    verify_data: bytes
    msg_type = HandshakeType.finished

    def encode(self) -> bytes:
        return self.verify_data

    @classmethod
    def decode(cls, body: bytes) -> "Finished":
        if len(body) != 12:
            raise decode_error("Finished verify_data is not 12 bytes")
        return cls(body)


@dataclass
class NewSessionTicket:
    lifetime_hint: int
    ticket: bytes
    msg_type = HandshakeType.new_session_ticket

    def encode(self) -> bytes:
        return struct.pack("!I", self.lifetime_hint) + vec(self.ticket, 2)

    @classmethod
    def decode(cls, body: bytes) -> "NewSessionTicket":
        r = Reader(body, "NewSessionTicket")
        hint = r.uint(4)
        ticket = r.vector(2)
        r.done()
        return cls(hint, ticket)


def frame(msg_type: int, body: bytes) -> bytes:
    """A handshake message on the wire: type, 24-bit length, body."""
    if len(body) >= 1 << 24:
        raise ValueError("handshake message too long")
    return struct.pack("!B", msg_type) + len(body).to_bytes(3, "big") + body


def split_messages(buf: bytearray) -> List[Tuple[int, bytes, bytes]]:
    """Takes every complete handshake message off the front of `buf`: (type, body, raw)."""
    out = []
    while len(buf) >= 4:
        length = int.from_bytes(buf[1:4], "big")
        if len(buf) < 4 + length:
            break
        raw = bytes(buf[: 4 + length])
        del buf[: 4 + length]
        out.append((raw[0], raw[4:], raw))
    return out


# Extension bodies the handshake uses.


def encode_server_name(host: str) -> bytes:
    name = host.encode("ascii")
    return vec(b"\x00" + vec(name, 2), 2)


# A DNS host name's characters: letters, digits, hyphens, and the underscores real names carry.
_HOST_NAME_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def decode_server_name(data: bytes) -> Optional[str]:
    """The host_name of a server_name extension (RFC 6066 section 3): one name of each type; a
    host_name is an ASCII DNS name without a trailing dot, labels of 1 to 63 letters, digits or
    hyphens. Anything else is illegal_parameter."""
    r = Reader(data, "server_name")
    names = Reader(r.vector(2, minimum=1), "server_name")
    r.done()
    host = None
    seen = set()
    while names.remaining():
        name_type = names.uint(1)
        name = names.vector(2, minimum=1)
        if name_type in seen:
            raise TLSAlert(AlertDescription.illegal_parameter, "server_name lists a name type twice")
        seen.add(name_type)
        if name_type == 0:
            labels = name.split(b".")
            if len(name) > 253 or not all(0 < len(label) <= 63 and _HOST_NAME_BYTES.issuperset(label) for label in labels):
                raise TLSAlert(AlertDescription.illegal_parameter, "server_name host_name is not a DNS host name")
            host = name.decode("ascii")
    return host


def decode_u16_list(data: bytes, what: str) -> List[int]:
    r = Reader(data, what)
    items = r.items(2, 2, minimum=2)
    r.done()
    return items


def decode_renegotiation_info(data: bytes) -> bytes:
    r = Reader(data, "renegotiation_info")
    out = r.vector(1)
    r.done()
    return out


def require_empty(data: bytes, what: str) -> None:
    if data:
        raise decode_error(f"{what} extension is not empty")


def encode_alpn(protocols: List[bytes]) -> bytes:
    return vec(b"".join(vec(p, 1) for p in protocols), 2)


def decode_alpn(data: bytes) -> List[bytes]:
    """ProtocolNameList (RFC 7301 section 3.1): non-empty, of non-empty names."""
    r = Reader(data, "application_layer_protocol_negotiation")
    names = Reader(r.vector(2, minimum=2), "application_layer_protocol_negotiation")
    r.done()
    out = []
    while names.remaining():
        out.append(names.vector(1, minimum=1))
    return out


def decode_point_formats(data: bytes) -> bytes:
    r = Reader(data, "ec_point_formats")
    formats = r.vector(1, minimum=1)
    r.done()
    return formats
