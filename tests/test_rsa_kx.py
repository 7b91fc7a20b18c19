"""RSA key exchange in ferrotls._core: rsa_premaster (RFC 5246 section 7.4.7.1).

Good premasters are encrypted here with `cryptography` (PKCS#1 v1.5). Malformed blocks are built
byte by byte and encrypted raw (m^e mod n), each breaking exactly one rule of the block
    EM = 0x00 || 0x02 || PS (nonzero, at least 8 bytes) || 0x00 || client_version(2) || random(46)
while leaving the rest well formed, so that only that one check can reject it. Every malformed
block must yield 48 bytes starting with client_version (implicit rejection), never an error,
the same substitute for the same ciphertext, different substitutes for different ciphertexts.
"""

import os
import random

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519

from ferrotls import _core

CLIENT_VERSION = 0x0303
CV = CLIENT_VERSION.to_bytes(2, "big")


def pkcs8(key):
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture(scope="module")
def rsa_keys():
    return {bits: rsa.generate_private_key(65537, bits) for bits in (2048, 3072, 4096)}


@pytest.fixture(scope="module")
def key2048(rsa_keys):
    return rsa_keys[2048]


def modulus(key):
    n = key.public_key().public_numbers().n
    return n, (n.bit_length() + 7) // 8


def raw_encrypt(key, em):
    """m^e mod n of a block given as bytes (no padding added)."""
    n, k = modulus(key)
    m = int.from_bytes(em, "big")
    assert len(em) == k and m < n
    return pow(m, key.public_key().public_numbers().e, n).to_bytes(k, "big")


# --------------------------------------------------------------------------------------------
# Well-formed premasters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_good_premaster_decrypts(rsa_keys, bits):
    key = rsa_keys[bits]
    der = pkcs8(key)
    _, k = modulus(key)
    for client_version in (0x0303, 0x0302, 0x0301):
        for _ in range(3):
            premaster = client_version.to_bytes(2, "big") + os.urandom(46)
            ct = key.public_key().encrypt(premaster, padding.PKCS1v15())
            assert len(ct) == k
            assert _core.PrivateKey(der).rsa_premaster(ct, client_version) == premaster


def test_good_premaster_from_a_hand_built_block(key2048):
    # The same thing with a block built here: the shortest and a typical PS both work.
    _, k = modulus(key2048)
    der = pkcs8(key2048)
    premaster = CV + os.urandom(46)
    ps = bytes(random.Random(1).randrange(1, 256) for _ in range(k - 3 - 48))
    em = b"\x00\x02" + ps + b"\x00" + premaster
    assert _core.PrivateKey(der).rsa_premaster(raw_encrypt(key2048, em), CLIENT_VERSION) == premaster


# --------------------------------------------------------------------------------------------
# Malformed blocks: implicit rejection
# --------------------------------------------------------------------------------------------


def nonzero(rng, n):
    return bytes(rng.randrange(1, 256) for _ in range(n))


def malformed_blocks(k, count=1000, seed=2024):
    """(category, EM) pairs, each EM breaking one rule."""
    rng = random.Random(seed)
    ps_len = k - 3 - 48

    def good_msg():
        return CV + rng.randbytes(46)

    builders = {
        "first-byte": lambda: bytes([rng.randrange(1, 0x80), 2]) + nonzero(rng, ps_len) + b"\x00" + good_msg(),
        "second-byte": lambda: bytes([0, rng.choice([0, 1] + list(range(3, 256)))]) + nonzero(rng, ps_len) + b"\x00" + good_msg(),
        # no zero byte anywhere after 00 02, the would-be premaster still starting with the version
        "no-separator": lambda: b"\x00\x02" + nonzero(rng, ps_len) + bytes([rng.randrange(1, 256)]) + CV + nonzero(rng, 46),
        # a zero inside the first 8 bytes of PS (RFC 8017 requires at least 8 nonzero bytes)
        "zero-in-ps8": lambda: (lambda ps, at: b"\x00\x02" + ps[:at] + b"\x00" + ps[at + 1 :] + b"\x00" + good_msg())(
            nonzero(rng, ps_len), rng.randrange(0, 8)
        ),
        # a zero later in PS: the block parses, but to a secret longer than 48 bytes
        "zero-later-in-ps": lambda: (lambda ps, at: b"\x00\x02" + ps[:at] + b"\x00" + ps[at + 1 :] + b"\x00" + good_msg())(
            nonzero(rng, ps_len), rng.randrange(8, ps_len)
        ),
        "secret-47": lambda: b"\x00\x02" + nonzero(rng, ps_len + 1) + b"\x00" + CV + rng.randbytes(45),
        # 49 bytes whose last 48 look exactly like a premaster: only the separator position tells
        "secret-49": lambda: b"\x00\x02" + nonzero(rng, ps_len - 1) + b"\x00" + nonzero(rng, 1) + CV + rng.randbytes(46),
        "wrong-version": lambda: b"\x00\x02"
        + nonzero(rng, ps_len)
        + b"\x00"
        + rng.choice([0x0300, 0x0301, 0x0302, 0x0304, 0x0203, 0x0000, 0xFFFF, 0x0103, 0x0313, rng.randrange(0x0304, 0x10000)]).to_bytes(2, "big")
        + rng.randbytes(46),
        "junk": lambda: bytes([rng.randrange(0, 0x80)]) + rng.randbytes(k - 1),
    }
    names = sorted(builders)
    out = []
    for i in range(count):
        name = names[i % len(names)]
        em = builders[name]()
        assert len(em) == k, name
        out.append((name, em))
    return out


def is_conforming(em, k, client_version):
    """The reference check: every position of the block is fixed for a 48-byte premaster."""
    sep = k - 49
    return (
        em[0] == 0
        and em[1] == 2
        and all(em[2:sep])
        and em[sep] == 0
        and em[sep + 1 : sep + 3] == client_version.to_bytes(2, "big")
    )


def test_a_thousand_malformed_blocks(key2048):
    der = pkcs8(key2048)
    _, k = modulus(key2048)
    blocks = malformed_blocks(k)
    results = {}
    categories = set()
    for name, em in blocks:
        assert not is_conforming(em, k, CLIENT_VERSION), name
        ct = raw_encrypt(key2048, em)
        assert ct not in results
        out = _core.PrivateKey(der).rsa_premaster(ct, CLIENT_VERSION)  # never raises
        assert isinstance(out, bytes) and len(out) == 48, name
        assert out[:2] == CV, name
        assert out != em[-48:], name  # not what a lax parser would have taken
        results[ct] = out
        categories.add(name)
    assert len(categories) == 9
    # Deterministic for a ciphertext...
    for ct, out in results.items():
        assert _core.PrivateKey(der).rsa_premaster(ct, CLIENT_VERSION) == out
    # ...and different across ciphertexts.
    assert len(set(results.values())) == len(results) == 1000


def test_malformed_blocks(key2048):
    key = _core.PrivateKey(pkcs8(key2048))
    _, k = modulus(key2048)
    for name, em in malformed_blocks(k, count=45, seed=7):
        out = key.rsa_premaster(raw_encrypt(key2048, em), CLIENT_VERSION)
        assert len(out) == 48 and out[:2] == CV and out != em[-48:], name


def test_substitute_follows_the_client_version(key2048):
    der = pkcs8(key2048)
    _, k = modulus(key2048)
    em = malformed_blocks(k, count=1)[0][1]
    ct = raw_encrypt(key2048, em)
    for client_version in (0x0300, 0x0301, 0x0302, 0x0303, 0xFEFD):
        out = _core.PrivateKey(der).rsa_premaster(ct, client_version)
        assert len(out) == 48
        assert out[:2] == client_version.to_bytes(2, "big")


def test_good_block_with_another_client_version_is_rejected_implicitly(key2048):
    # A perfectly padded block whose premaster starts with 03 01, checked against 03 03:
    # a substitute, not the encrypted premaster (RFC 5246 7.4.7.1 version check).
    der = pkcs8(key2048)
    premaster = b"\x03\x01" + os.urandom(46)
    ct = key2048.public_key().encrypt(premaster, padding.PKCS1v15())
    out = _core.PrivateKey(der).rsa_premaster(ct, CLIENT_VERSION)
    assert len(out) == 48 and out[:2] == CV and out[2:] != premaster[2:]
    assert _core.PrivateKey(der).rsa_premaster(ct, CLIENT_VERSION) == out
    assert _core.PrivateKey(der).rsa_premaster(ct, 0x0301) == premaster


def test_ciphertext_not_below_the_modulus(key2048):
    der = pkcs8(key2048)
    n, k = modulus(key2048)
    outs = set()
    for c in (n, n + 1, n + 12345, 2 ** (8 * k) - 1):
        ct = c.to_bytes(k, "big")
        out = _core.PrivateKey(der).rsa_premaster(ct, CLIENT_VERSION)
        assert len(out) == 48 and out[:2] == CV
        assert _core.PrivateKey(der).rsa_premaster(ct, CLIENT_VERSION) == out
        outs.add(out)
    assert len(outs) == 4


def test_substitutes_belong_to_the_key(rsa_keys, key2048):
    """Each PrivateKey object holds its own key (no cache shared between them): a bad block
    gets the same substitute from every object of the same key and another from every other
    key, and many keys used in turn never mix up."""
    others = [rsa.generate_private_key(65537, 2048) for _ in range(6)] + list(rsa_keys.values())
    objects = [(key, _core.PrivateKey(pkcs8(key))) for key in others]
    _, k = modulus(key2048)
    bad_ct = raw_encrypt(key2048, malformed_blocks(k, count=1, seed=99)[0][1])
    first = _core.PrivateKey(pkcs8(key2048)).rsa_premaster(bad_ct, CLIENT_VERSION)
    for _ in range(2):
        for key, obj in objects:
            premaster = CV + os.urandom(46)
            ct = key.public_key().encrypt(premaster, padding.PKCS1v15())
            assert obj.rsa_premaster(ct, CLIENT_VERSION) == premaster
            if key.key_size == 2048 and key is not key2048:
                assert obj.rsa_premaster(bad_ct, CLIENT_VERSION) != first
        assert _core.PrivateKey(pkcs8(key2048)).rsa_premaster(bad_ct, CLIENT_VERSION) == first


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_wrong_ciphertext_length_gets_a_substitute(key2048):
    """A ciphertext of the wrong length is malformed like any other (RFC 5246 7.4.7.1): a
    substitute premaster (client_version first, the same for the same bytes), no error."""
    key = _core.PrivateKey(pkcs8(key2048))
    _, k = modulus(key2048)
    good = key2048.public_key().encrypt(CV + bytes(46), padding.PKCS1v15())
    substitutes = set()
    for ct in (b"", good[1:], good[:-1], b"\x00" + good, good + b"\x00", bytes(2 * k), bytes(k - 128)):
        out = key.rsa_premaster(ct, CLIENT_VERSION)
        assert len(out) == 48 and out[:2] == CV and out != CV + bytes(46)
        assert key.rsa_premaster(ct, CLIENT_VERSION) == out
        substitutes.add(out)
    assert len(substitutes) == 7


@pytest.mark.parametrize(
    "make_der",
    [
        lambda: pkcs8(ec.generate_private_key(ec.SECP256R1())),
        lambda: pkcs8(ec.generate_private_key(ec.SECP384R1())),
        lambda: ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
        lambda: pkcs8(ed25519.Ed25519PrivateKey.generate()),
        lambda: pkcs8(x25519.X25519PrivateKey.generate()),
        # an RSA *public* key is not a private key
        lambda: rsa.generate_private_key(65537, 2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        lambda: b"",
        lambda: b"\x30\x03\x02\x01\x00",
        lambda: os.urandom(300),
    ],
    ids=["ec-p256", "ec-p384", "ec-sec1", "ed25519", "x25519", "rsa-public", "empty", "tiny-der", "junk"],
)
def test_non_rsa_private_key_is_value_error(make_der):
    der = make_der()
    for ct in (bytes(256), os.urandom(256), bytes(32)):
        with pytest.raises(ValueError):
            _core.PrivateKey(der).rsa_premaster(ct, CLIENT_VERSION)
