"""`ferrotls selfcheck`: a quick check of every primitive in the Rust core, against published
vectors and against the `cryptography` package, on the machine it runs on."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import sys
from typing import Callable, List, Tuple

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import _core


def _prf_vector() -> None:
    # The TLS 1.2 PRF-SHA256 vector published on the IETF TLS list.
    out = _core.tls12_prf(
        "sha256",
        bytes.fromhex("9bbe436ba940f017b17652849a71db35"),
        b"test label",
        bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c"),
        100,
    )
    assert out[:16] == bytes.fromhex("e3f229ba727be17b8d122620557cd453"), out.hex()


def _hkdf_vector() -> None:
    # RFC 5869 appendix A.1.
    prk = _core.hkdf_extract("sha256", bytes.fromhex("000102030405060708090a0b0c"), b"\x0b" * 22)
    assert prk == bytes.fromhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")


def _gcm_against_cryptography() -> None:
    key, salt, data = os.urandom(16), os.urandom(4), os.urandom(40000)
    records = _core.RecordSealer("AES_128_GCM", key, salt).seal(23, data)
    aead, pos, seq, plain = AESGCM(key), 0, 0, b""
    while pos < len(records):
        ctype, _version, length = struct.unpack("!BHH", records[pos : pos + 5])
        body = records[pos + 5 : pos + 5 + length]
        aad = struct.pack("!QBHH", seq, ctype, 0x0303, length - 24)
        plain += aead.decrypt(salt + body[:8], body[8:], aad)
        pos, seq = pos + 5 + length, seq + 1
    assert plain == data and seq == 3


def _record_round_trips() -> None:
    suites = [
        ("AES_256_GCM", 32, 4, 0),
        ("CHACHA20_POLY1305", 32, 12, 0),
        ("AES_128_CBC_SHA", 16, 0, 20),
        ("AES_256_CBC_SHA256", 32, 0, 32),
        ("AES_256_CBC_SHA384", 32, 0, 48),
    ]
    for cipher, key_len, iv_len, mac_len in suites:
        args = (cipher, os.urandom(key_len), os.urandom(iv_len), os.urandom(mac_len))
        data = os.urandom(20000)
        records = _core.RecordSealer(*args).seal(23, data)
        opened, used = _core.RecordOpener(*args).open(records)
        assert opened == [(23, data)] and used == len(records), cipher
        tampered = bytearray(_core.RecordSealer(*args).seal(23, b"attack at dawn"))
        tampered[-1] ^= 1
        try:
            _core.RecordOpener(*args).open(bytes(tampered))
        except _core.RecordError as e:
            assert e.args[0] == "bad_record_mac"
        else:
            raise AssertionError(f"{cipher}: a tampered record opened")


def _rsa_premaster() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    premaster = b"\x03\x03" + os.urandom(46)
    ciphertext = key.public_key().encrypt(premaster, padding.PKCS1v15())
    assert _core.PrivateKey(der).rsa_premaster(ciphertext, 0x0303) == premaster
    wrong = _core.PrivateKey(der).rsa_premaster(ciphertext, 0x0302)  # a version mismatch is a bad block
    assert len(wrong) == 48 and wrong != premaster and wrong == _core.PrivateKey(der).rsa_premaster(ciphertext, 0x0302)


def _ecdhe() -> None:
    for group in ("x25519", "secp256r1", "secp384r1"):
        a, b = _core.EphemeralKey(group), _core.EphemeralKey(group)
        assert a.exchange(b.public_bytes) == b.exchange(a.public_bytes), group


def _signatures() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    sig = _core.PrivateKey(der).sign("ecdsa_secp256r1_sha256", b"message")
    key.public_key().verify(sig, b"message", ec.ECDSA(hashes.SHA256()))
    assert _core.verify("ecdsa_secp256r1_sha256", spki, b"message", sig)
    assert not _core.verify("ecdsa_secp256r1_sha256", spki, b"massage", sig)


def _prf_against_hmac() -> None:
    secret, seed = os.urandom(48), os.urandom(64)
    a, out = b"label" + seed, b""
    while len(out) < 104:
        a = hmac.new(secret, a, hashlib.sha384).digest()
        out += hmac.new(secret, a + b"label" + seed, hashlib.sha384).digest()
    assert _core.tls12_prf("sha384", secret, b"label", seed, 104) == out[:104]


CHECKS: List[Tuple[str, Callable[[], None]]] = [
    ("TLS 1.2 PRF, published SHA-256 vector", _prf_vector),
    ("TLS 1.2 PRF-SHA384 against hmac", _prf_against_hmac),
    ("HKDF-Extract, RFC 5869 A.1", _hkdf_vector),
    ("AES-128-GCM records opened by cryptography", _gcm_against_cryptography),
    ("record round trips and tamper (GCM, ChaCha20, CBC)", _record_round_trips),
    ("RSA premaster with implicit rejection", _rsa_premaster),
    ("ECDHE X25519, P-256, P-384", _ecdhe),
    ("ECDSA P-256 against cryptography", _signatures),
]


def run(out=sys.stdout) -> int:
    failed = 0
    for name, check in CHECKS:
        try:
            check()
        except Exception as e:  # report every failure, then the count
            failed += 1
            print(f"FAIL {name}: {e!r}", file=out)
        else:
            print(f"ok   {name}", file=out)
    print(f"ferrotls {__import__('ferrotls').__version__}: {len(CHECKS) - failed}/{len(CHECKS)} checks passed", file=out)
    return 1 if failed else 0
