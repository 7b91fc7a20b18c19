"""Record protection and RSA premaster throughput: ferrotls._core against `cryptography`.

ferrotls side: the public batched calls, `RecordSealer.seal(23, data)` on a 1 MiB write (64
records of 16 KiB, one call) and `RecordOpener.open(records)` on the 64 records (one call).

cryptography side: what a Python record layer on `cryptography` does, one AEAD call per 16 KiB
record with the nonce and additional data built in Python exactly as TLS does (RFC 5246 6.2.3.3,
RFC 5288, RFC 7905, RFC 8446 5.2-5.3), the records joined into one bytes object. CBC suites use
Cipher(AES, CBC) and the stdlib `hmac` (OpenSSL's) per record; its MAC-then-encrypt open checks
padding and MAC with plain Python branches -- NOT constant time (Lucky Thirteen), unlike ferrotls.
It is the speed of an unsafe implementation, kept only as a yardstick.

Each comparison first checks that both sides interoperate (ferrotls seals, Python opens, and the
other way round), outside the timing. See conftest.py for the summary table and the command.
"""

from __future__ import annotations

import hmac
import os
import resource
import struct
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ferrotls import _core

WRITE = 1 << 20  # one 1 MiB write
FRAG = 16384  # TLS maximum fragment
APPLICATION_DATA = 23
VERSION = 0x0303
ROUNDS = int(os.environ.get("FERROTLS_BENCH_ROUNDS", "150"))
RSA_ROUNDS = int(os.environ.get("FERROTLS_BENCH_RSA_ROUNDS", "300"))

HEADER = struct.Struct("!BHH")  # type, version, length
MAC_HEADER = struct.Struct("!QBHH")  # seq, type, version, length (also the TLS 1.2 AEAD AAD)


@dataclass(frozen=True)
class Suite:
    name: str  # id in the tables
    cipher: str  # RecordSealer's cipher argument
    key_len: int
    iv_len: int
    mac_hash: str = ""  # CBC only: hashlib name
    mac_len: int = 0
    tls13: bool = False
    etm: bool = False

    @property
    def kind(self) -> str:
        if self.mac_hash:
            return "cbc"
        if self.tls13:
            return "tls13"
        return "chacha12" if self.cipher == "CHACHA20_POLY1305" else "gcm12"


SUITES = [
    Suite("AES_128_GCM", "AES_128_GCM", 16, 4),
    Suite("AES_256_GCM", "AES_256_GCM", 32, 4),
    Suite("CHACHA20_POLY1305", "CHACHA20_POLY1305", 32, 12),
    Suite("AES_128_GCM tls13", "AES_128_GCM", 16, 12, tls13=True),
    Suite("AES_128_CBC_SHA", "AES_128_CBC_SHA", 16, 0, "sha1", 20),
    Suite("AES_128_CBC_SHA256", "AES_128_CBC_SHA256", 16, 0, "sha256", 32),
    Suite("AES_256_CBC_SHA256", "AES_256_CBC_SHA256", 32, 0, "sha256", 32),
    Suite("AES_256_CBC_SHA384", "AES_256_CBC_SHA384", 32, 0, "sha384", 48),
    Suite("AES_128_CBC_SHA etm", "AES_128_CBC_SHA", 16, 0, "sha1", 20, etm=True),
]


@dataclass(frozen=True)
class Keys:
    key: bytes
    iv: bytes
    mac_key: bytes


def keys_for(suite: Suite) -> Keys:
    return Keys(os.urandom(suite.key_len), os.urandom(suite.iv_len), os.urandom(suite.mac_len))


def ferro(cls, suite: Suite, k: Keys):
    return cls(suite.cipher, k.key, k.iv, k.mac_key, tls13=suite.tls13, encrypt_then_mac=suite.etm)


# --- the Python record layer on `cryptography` -------------------------------------------------


class PyRecords:
    """One direction's keys; seal/open a whole buffer starting at sequence number 0."""

    def __init__(self, suite: Suite, k: Keys):
        self.suite, self.k = suite, k
        if suite.kind in ("gcm12", "tls13"):
            self.aead = AESGCM(k.key)
        elif suite.kind == "chacha12":
            self.aead = ChaCha20Poly1305(k.key)
        else:
            self.aes = algorithms.AES(k.key)
        self.iv_int = int.from_bytes(k.iv, "big") if len(k.iv) == 12 else 0

    def seal(self, data: bytes) -> bytes:
        return getattr(self, "_seal_" + self.suite.kind)(memoryview(data))

    def open(self, buf: bytes) -> bytes:
        return getattr(self, "_open_" + self.suite.kind)(memoryview(buf))

    def _xor_nonce(self, seq: int) -> bytes:
        # RFC 7905 2 / RFC 8446 5.3: IV XOR the sequence number, left-padded to 12 bytes.
        return (self.iv_int ^ seq).to_bytes(12, "big")

    # AES-GCM, TLS 1.2 (RFC 5288 3): nonce = salt || explicit 8 bytes (the seq), sent.
    def _seal_gcm12(self, data: memoryview) -> bytes:
        out, salt, enc = [], self.k.iv, self.aead.encrypt
        for seq, off in enumerate(range(0, len(data), FRAG)):
            frag = data[off : off + FRAG]
            explicit = seq.to_bytes(8, "big")
            ct = enc(salt + explicit, frag, MAC_HEADER.pack(seq, APPLICATION_DATA, VERSION, len(frag)))
            out += (HEADER.pack(APPLICATION_DATA, VERSION, 8 + len(ct)), explicit, ct)
        return b"".join(out)

    def _open_gcm12(self, buf: memoryview) -> bytes:
        out, salt, dec, pos, seq = [], self.k.iv, self.aead.decrypt, 0, 0
        while pos + 5 <= len(buf):
            typ, ver, length = HEADER.unpack_from(buf, pos)
            body = buf[pos + 5 : pos + 5 + length]
            out.append(dec(salt + bytes(body[:8]), body[8:], MAC_HEADER.pack(seq, typ, ver, length - 24)))
            pos, seq = pos + 5 + length, seq + 1
        return b"".join(out)

    # ChaCha20-Poly1305, TLS 1.2 (RFC 7905): XOR nonce, nothing explicit.
    def _seal_chacha12(self, data: memoryview) -> bytes:
        out, enc = [], self.aead.encrypt
        for seq, off in enumerate(range(0, len(data), FRAG)):
            frag = data[off : off + FRAG]
            ct = enc(self._xor_nonce(seq), frag, MAC_HEADER.pack(seq, APPLICATION_DATA, VERSION, len(frag)))
            out += (HEADER.pack(APPLICATION_DATA, VERSION, len(ct)), ct)
        return b"".join(out)

    def _open_chacha12(self, buf: memoryview) -> bytes:
        out, dec, pos, seq = [], self.aead.decrypt, 0, 0
        while pos + 5 <= len(buf):
            typ, ver, length = HEADER.unpack_from(buf, pos)
            body = buf[pos + 5 : pos + 5 + length]
            out.append(dec(self._xor_nonce(seq), body, MAC_HEADER.pack(seq, typ, ver, length - 16)))
            pos, seq = pos + 5 + length, seq + 1
        return b"".join(out)

    # TLS 1.3 (RFC 8446 5.2): inner plaintext = data || type; the AAD is the record header.
    def _seal_tls13(self, data: memoryview) -> bytes:
        out, enc = [], self.aead.encrypt
        for seq, off in enumerate(range(0, len(data), FRAG)):
            inner = bytes(data[off : off + FRAG]) + b"\x17"
            header = HEADER.pack(APPLICATION_DATA, VERSION, len(inner) + 16)
            out += (header, enc(self._xor_nonce(seq), inner, header))
        return b"".join(out)

    def _open_tls13(self, buf: memoryview) -> bytes:
        out, dec, pos, seq = [], self.aead.decrypt, 0, 0
        while pos + 5 <= len(buf):
            length = HEADER.unpack_from(buf, pos)[2]
            inner = dec(self._xor_nonce(seq), buf[pos + 5 : pos + 5 + length], buf[pos : pos + 5])
            stripped = inner.rstrip(b"\x00")
            assert stripped[-1] == APPLICATION_DATA
            out.append(stripped[:-1])
            pos, seq = pos + 5 + length, seq + 1
        return b"".join(out)

    # AES-CBC + HMAC, TLS 1.2 (RFC 5246 6.2.3.2; RFC 7366 for encrypt-then-MAC).
    def _seal_cbc(self, data: memoryview) -> bytes:
        out, h, mk, etm = [], self.suite.mac_hash, self.k.mac_key, self.suite.etm
        for seq, off in enumerate(range(0, len(data), FRAG)):
            frag = bytes(data[off : off + FRAG])
            iv = os.urandom(16)
            plain = frag if etm else frag + hmac.digest(mk, MAC_HEADER.pack(seq, APPLICATION_DATA, VERSION, len(frag)) + frag, h)
            pad = 15 - len(plain) % 16
            enc = Cipher(self.aes, modes.CBC(iv)).encryptor()
            body = iv + enc.update(plain + bytes([pad]) * (pad + 1)) + enc.finalize()
            if etm:
                body += hmac.digest(mk, MAC_HEADER.pack(seq, APPLICATION_DATA, VERSION, len(body)) + body, h)
            out += (HEADER.pack(APPLICATION_DATA, VERSION, len(body)), body)
        return b"".join(out)

    def _open_cbc(self, buf: memoryview) -> bytes:
        # Plain branches and early exits: NOT constant time (a padding oracle if used for real).
        out, h, mk, etm, n = [], self.suite.mac_hash, self.k.mac_key, self.suite.etm, self.suite.mac_len
        pos, seq = 0, 0
        while pos + 5 <= len(buf):
            typ, ver, length = HEADER.unpack_from(buf, pos)
            body = bytes(buf[pos + 5 : pos + 5 + length])
            if etm:
                body, tag = body[:-n], body[-n:]
                if not hmac.compare_digest(tag, hmac.digest(mk, MAC_HEADER.pack(seq, typ, ver, len(body)) + body, h)):
                    raise ValueError("bad_record_mac")
            dec = Cipher(self.aes, modes.CBC(body[:16])).decryptor()
            plain = dec.update(body[16:]) + dec.finalize()
            pad = plain[-1]
            if plain[-pad - 1 :] != bytes([pad]) * (pad + 1):
                raise ValueError("bad_record_mac")
            plain = plain[: -pad - 1]
            if not etm:
                plain, tag = plain[:-n], plain[-n:]
                if not hmac.compare_digest(tag, hmac.digest(mk, MAC_HEADER.pack(seq, typ, ver, len(plain)) + plain, h)):
                    raise ValueError("bad_record_mac")
            out.append(plain)
            pos, seq = pos + 5 + length, seq + 1
        return b"".join(out)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(WRITE)


@pytest.fixture(scope="module", params=SUITES, ids=lambda s: s.name.replace(" ", "-"))
def suite_setup(request, data):
    """Keys for one suite, the 1 MiB write sealed by ferrotls, and an interop check."""
    suite: Suite = request.param
    k = keys_for(suite)
    records = ferro(_core.RecordSealer, suite, k).seal(APPLICATION_DATA, data)
    assert len(records) > WRITE
    py = PyRecords(suite, k)
    # Interop both ways, outside any timing: the two sides really do the same work.
    assert py.open(records) == data
    opened, used = ferro(_core.RecordOpener, suite, k).open(py.seal(data))
    assert opened == [(APPLICATION_DATA, data)] and used > WRITE
    return suite, k, records, py


def _info(benchmark, op: str, suite: Suite, impl: str) -> None:
    benchmark.group = f"{op} {suite.name}"
    benchmark.extra_info.update(kind="record", op=op, cipher=suite.name, impl=impl, bytes=WRITE)


def _pedantic(benchmark, target, **kw):
    """benchmark.pedantic, also recording the minor page faults per round (4 KiB pages:
    ~256 per call means a 1 MiB buffer came fresh from the kernel on every call)."""
    rounds = kw.setdefault("rounds", ROUNDS)
    warmup = kw.setdefault("warmup_rounds", 2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    result = benchmark.pedantic(target, **kw)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    benchmark.extra_info["faults_per_call"] = round(faults / (rounds + warmup))
    return result


# --- record benchmarks --------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["ferrotls", "cryptography"])
def test_seal(benchmark, suite_setup, data, impl):
    suite, k, _, py = suite_setup
    _info(benchmark, "seal", suite, impl)
    if impl == "ferrotls":
        sealer = ferro(_core.RecordSealer, suite, k)  # its sequence number just advances
        out = _pedantic(benchmark, sealer.seal, args=(APPLICATION_DATA, data))
    else:
        out = _pedantic(benchmark, py.seal, args=(data,))
    assert len(out) > WRITE


@pytest.mark.parametrize("impl", ["ferrotls", "cryptography"])
def test_open(benchmark, suite_setup, data, impl):
    suite, k, records, py = suite_setup
    _info(benchmark, "open", suite, impl)
    if impl == "ferrotls":
        # A fresh opener per round (built outside the timing): the records carry seq 0..63.
        def setup():
            return (ferro(_core.RecordOpener, suite, k),), {}

        opened, used = _pedantic(benchmark, lambda opener: opener.open(records), setup=setup)
        assert used == len(records) and opened[0][1] == data
    else:
        assert _pedantic(benchmark, py.open, args=(records,)) == data


# --- RSA premaster decryption -------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_setup():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    premaster = b"\x03\x03" + os.urandom(46)
    ciphertext = key.public_key().encrypt(premaster, padding.PKCS1v15())
    assert _core.rsa_premaster(der, ciphertext, VERSION) == premaster
    assert key.decrypt(ciphertext, padding.PKCS1v15()) == premaster
    return key, der, ciphertext, premaster


@pytest.mark.parametrize("impl", ["ferrotls", "cryptography"])
def test_rsa_premaster(benchmark, rsa_setup, impl):
    key, der, ciphertext, premaster = rsa_setup
    benchmark.group = "rsa-2048 premaster"
    benchmark.extra_info.update(kind="rsa", impl=impl)
    if impl == "ferrotls":
        out = benchmark.pedantic(_core.rsa_premaster, args=(der, ciphertext, VERSION), rounds=RSA_ROUNDS, warmup_rounds=5)
    else:
        pkcs1 = padding.PKCS1v15()
        out = benchmark.pedantic(key.decrypt, args=(ciphertext, pkcs1), rounds=RSA_ROUNDS, warmup_rounds=5)
    assert out == premaster

