"""ECDHE, signatures and randomness in ferrotls._core: EphemeralKey, sign, verify, random_bytes.

The oracle is `cryptography` (OpenSSL): key agreement in both directions, signatures made here
and checked there and the reverse, and the RFC 7748 section 6.1 X25519 vector (which cannot be
loaded into an EphemeralKey, so it is used through cryptography on the other side).
"""

import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ferrotls import _core
from ferrotls._core import EphemeralKey

GROUPS = ["x25519", "secp256r1", "secp384r1"]
CURVES = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}
SECRET_LEN = {"x25519": 32, "secp256r1": 32, "secp384r1": 48}
PUBLIC_LEN = {"x25519": 32, "secp256r1": 65, "secp384r1": 97}


def h(text):
    return bytes.fromhex("".join(text.split()))


def raw_x25519_public(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def x962(key, form=serialization.PublicFormat.UncompressedPoint):
    return key.public_key().public_bytes(serialization.Encoding.X962, form)


def peer_private(group):
    if group == "x25519":
        return x25519.X25519PrivateKey.generate()
    return ec.generate_private_key(CURVES[group])


def peer_public_bytes(group, key):
    return raw_x25519_public(key) if group == "x25519" else x962(key)


def peer_exchange(group, key, our_public):
    """The shared secret as cryptography computes it from the peer's side."""
    if group == "x25519":
        return key.exchange(x25519.X25519PublicKey.from_public_bytes(our_public))
    return key.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(CURVES[group], our_public))


# --------------------------------------------------------------------------------------------
# ECDHE
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", GROUPS)
def test_public_key_format(group):
    publics = set()
    for _ in range(10):
        key = EphemeralKey(group)
        pub = key.public_bytes
        assert isinstance(pub, bytes)
        assert len(pub) == PUBLIC_LEN[group]
        if group == "x25519":
            x25519.X25519PublicKey.from_public_bytes(pub)
        else:
            assert pub[0] == 0x04  # uncompressed point (RFC 8446 4.2.8.2)
            point = ec.EllipticCurvePublicKey.from_encoded_point(CURVES[group], pub)  # on the curve
            assert x962_point(point) == pub
        assert key.public_bytes == pub  # stable
        publics.add(pub)
    assert len(publics) == 10  # a fresh key each time


def x962_point(public_key):
    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@pytest.mark.parametrize("group", GROUPS)
def test_exchange_agrees_with_cryptography_both_ways(group):
    for _ in range(10):
        ours = EphemeralKey(group)
        theirs = peer_private(group)
        secret = ours.exchange(peer_public_bytes(group, theirs))
        assert isinstance(secret, bytes)
        assert len(secret) == SECRET_LEN[group]
        assert secret == peer_exchange(group, theirs, ours.public_bytes)


@pytest.mark.parametrize("group", GROUPS)
def test_two_ephemeral_keys_agree(group):
    a, b = EphemeralKey(group), EphemeralKey(group)
    assert a.exchange(b.public_bytes) == b.exchange(a.public_bytes)
    c = EphemeralKey(group)
    assert a.exchange(b.public_bytes) != a.exchange(c.public_bytes)


# RFC 7748 section 6.1
ALICE_PRIVATE = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
RFC7748_SHARED = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_rfc7748_vector_through_cryptography():
    alice = x25519.X25519PrivateKey.from_private_bytes(ALICE_PRIVATE)
    bob = x25519.X25519PrivateKey.from_private_bytes(BOB_PRIVATE)
    # The oracle reproduces the RFC...
    assert raw_x25519_public(alice) == ALICE_PUBLIC
    assert raw_x25519_public(bob) == BOB_PUBLIC
    assert alice.exchange(x25519.X25519PublicKey.from_public_bytes(BOB_PUBLIC)) == RFC7748_SHARED
    # ...and our key agrees with each RFC key pair.
    for private, public in ((alice, ALICE_PUBLIC), (bob, BOB_PUBLIC)):
        ours = EphemeralKey("x25519")
        assert ours.exchange(public) == private.exchange(x25519.X25519PublicKey.from_public_bytes(ours.public_bytes))


def test_rfc7748_public_key_high_bit_is_ignored():
    # RFC 7748 section 5: the most significant bit of the u-coordinate is masked.
    ours = EphemeralKey("x25519")
    flipped = BOB_PUBLIC[:31] + bytes([BOB_PUBLIC[31] | 0x80])
    assert ours.exchange(flipped) == ours.exchange(BOB_PUBLIC)


# u-coordinates whose shared secret is zero whatever the scalar (small order, or non-canonical
# encodings of such points), checked against cryptography before use.
X25519_ZERO_SECRET = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "0100000000000000000000000000000000000000000000000000000000000080",
]


@pytest.mark.parametrize("point", X25519_ZERO_SECRET, ids=lambda p: p[:8] + "-" + p[-2:])
def test_x25519_peer_key_giving_a_zero_secret_is_value_error(point):
    point = h(point)
    with pytest.raises(ValueError):  # the oracle agrees that the secret would be all zeros
        x25519.X25519PrivateKey.generate().exchange(x25519.X25519PublicKey.from_public_bytes(point))
    for _ in range(3):
        with pytest.raises(ValueError):
            EphemeralKey("x25519").exchange(point)


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64, 65])
def test_x25519_wrong_length_is_value_error(length):
    key = EphemeralKey("x25519")
    with pytest.raises(ValueError):
        key.exchange(os.urandom(length))


def invalid_nist_keys(group):
    curve = CURVES[group]
    size = PUBLIC_LEN[group]
    coord = (size - 1) // 2
    pub = x962(ec.generate_private_key(curve))
    x, y = pub[1 : 1 + coord], pub[1 + coord :]
    p = {"secp256r1": 2**256 - 2**224 + 2**192 + 2**96 - 1, "secp384r1": 2**384 - 2**128 - 2**96 + 2**32 - 1}[group]
    bumped_y = ((int.from_bytes(y, "big") + 1) % p).to_bytes(coord, "big")
    other = "secp384r1" if group == "secp256r1" else "secp256r1"
    return {
        "empty": b"",
        "infinity": b"\x00",
        "truncated": pub[:-1],
        "extended": pub + b"\x00",
        "x-only": x,
        "not-on-curve": b"\x04" + x + bumped_y,
        "zeros": b"\x04" + bytes(size - 1),
        "x-equals-p": b"\x04" + p.to_bytes(coord, "big") + y,
        "bad-prefix-05": b"\x05" + x + y,
        "other-nist-curve": x962(ec.generate_private_key(CURVES[other])),
        "secp256k1-point": x962(ec.generate_private_key(ec.SECP256K1())) if group == "secp256r1" else pub[:-2],
    }


@pytest.mark.parametrize("group", ["secp256r1", "secp384r1"])
def test_nist_invalid_peer_keys_are_value_error(group):
    key = EphemeralKey(group)
    for name, bad in invalid_nist_keys(group).items():
        with pytest.raises(ValueError):
            key.exchange(bad)
            pytest.fail(name)


@pytest.mark.parametrize("group", ["secp256r1", "secp384r1"])
@pytest.mark.parametrize("form", ["compressed", "hybrid"])
def test_nist_peer_key_must_be_an_uncompressed_point(group, form):
    # RFC 8446 4.2.8.2: a secp256r1/secp384r1 key share is an UncompressedPointRepresentation
    # (legacy_form = 4); TLS 1.3 and RFC 8422 5.1.2 removed point format negotiation. Compressed
    # (02/03) and hybrid (06/07) encodings of a valid point are malformed key shares.
    peer = ec.generate_private_key(CURVES[group])
    if form == "compressed":
        encoded = x962(peer, serialization.PublicFormat.CompressedPoint)
    else:
        unc = x962(peer)
        encoded = bytes([6 | (unc[-1] & 1)]) + unc[1:]
    with pytest.raises(ValueError):
        EphemeralKey(group).exchange(encoded)


@pytest.mark.parametrize("group", ["x448", "secp521r1", "X25519", "P-256", "ffdhe2048", ""])
def test_unknown_group_is_value_error(group):
    with pytest.raises(ValueError):
        EphemeralKey(group)


# --------------------------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------------------------

HASH = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}

RSA_SCHEMES = [f"rsa_pkcs1_{h}" for h in ("sha256", "sha384", "sha512")] + [
    f"rsa_pss_rsae_{h}" for h in ("sha256", "sha384", "sha512")
]
ECDSA_SCHEMES = {"ecdsa_secp256r1_sha256": "secp256r1", "ecdsa_secp384r1_sha384": "secp384r1"}
SIGN_SCHEMES = RSA_SCHEMES + list(ECDSA_SCHEMES)


def scheme_hash(scheme):
    return HASH[scheme.rsplit("_", 1)[1]]()


def rsa_padding(scheme):
    if "_pss_" in scheme:
        # RFC 8446 4.2.3: MGF1 with the same hash, salt as long as the digest
        return padding.PSS(mgf=padding.MGF1(scheme_hash(scheme)), salt_length=scheme_hash(scheme).digest_size)
    return padding.PKCS1v15()


@pytest.fixture(scope="module")
def keys():
    return {
        "rsa2048": rsa.generate_private_key(65537, 2048),
        "rsa3072": rsa.generate_private_key(65537, 3072),
        "secp256r1": ec.generate_private_key(ec.SECP256R1()),
        "secp384r1": ec.generate_private_key(ec.SECP384R1()),
    }


def private_der(key):
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def keys_for(scheme, keys):
    if scheme in ECDSA_SCHEMES:
        return [keys[ECDSA_SCHEMES[scheme]]]
    return [keys["rsa2048"], keys["rsa3072"]]


def oracle_verify(scheme, key, message, signature):
    try:
        if scheme in ECDSA_SCHEMES:
            key.public_key().verify(signature, message, ec.ECDSA(scheme_hash(scheme)))
        else:
            key.public_key().verify(signature, message, rsa_padding(scheme), scheme_hash(scheme))
    except InvalidSignature:
        return False
    return True


def oracle_sign(scheme, key, message):
    if scheme in ECDSA_SCHEMES:
        return key.sign(message, ec.ECDSA(scheme_hash(scheme)))
    return key.sign(message, rsa_padding(scheme), scheme_hash(scheme))


MESSAGES = [b"", b"m", b"TLS 1.3, server CertificateVerify" + bytes(64), os.urandom(5000)]


@pytest.mark.parametrize("scheme", SIGN_SCHEMES)
def test_sign_here_verify_there(scheme, keys):
    for key in keys_for(scheme, keys):
        for message in MESSAGES:
            sig = _core.PrivateKey(private_der(key)).sign(scheme, message)
            assert isinstance(sig, bytes)
            if scheme in RSA_SCHEMES:
                assert len(sig) == key.key_size // 8
            else:
                decode_dss_signature(sig)  # DER ECDSA-Sig-Value
            assert oracle_verify(scheme, key, message, sig)
            assert _core.verify(scheme, spki(key), message, sig) is True


@pytest.mark.parametrize("scheme", SIGN_SCHEMES)
def test_sign_there_verify_here(scheme, keys):
    for key in keys_for(scheme, keys):
        for message in MESSAGES:
            sig = oracle_sign(scheme, key, message)
            assert _core.verify(scheme, spki(key), message, sig) is True


@pytest.mark.parametrize("scheme", [s for s in RSA_SCHEMES if "pkcs1" in s])
def test_rsa_pkcs1_signatures_are_the_deterministic_ones(scheme, keys):
    key = keys["rsa2048"]
    message = b"deterministic"
    assert _core.PrivateKey(private_der(key)).sign(scheme, message) == oracle_sign(scheme, key, message)


@pytest.mark.parametrize("scheme", [s for s in SIGN_SCHEMES if "pkcs1" not in s])
def test_randomized_schemes_give_fresh_signatures(scheme, keys):
    key = keys_for(scheme, keys)[0]
    sigs = {_core.PrivateKey(private_der(key)).sign(scheme, b"same message") for _ in range(5)}
    assert len(sigs) == 5


@pytest.mark.parametrize("scheme", [s for s in RSA_SCHEMES if "pss" in s])
def test_pss_salt_must_be_the_digest_length(scheme, keys):
    key = keys["rsa2048"]
    digest = scheme_hash(scheme)
    for salt in (0, 20, digest.digest_size - 1, digest.digest_size + 1, padding.PSS.MAX_LENGTH):
        sig = key.sign(b"msg", padding.PSS(mgf=padding.MGF1(digest), salt_length=salt), digest)
        assert _core.verify(scheme, spki(key), b"msg", sig) is False
    # MGF1 with another hash is not rsa_pss_rsae_* either
    sig = key.sign(b"msg", padding.PSS(mgf=padding.MGF1(hashes.SHA1()), salt_length=digest.digest_size), digest)
    assert _core.verify(scheme, spki(key), b"msg", sig) is False


def test_rsa_pkcs1_sha1_is_verify_only(keys):
    for key in (keys["rsa2048"], keys["rsa3072"]):
        sig = key.sign(b"legacy", padding.PKCS1v15(), hashes.SHA1())
        assert _core.verify("rsa_pkcs1_sha1", spki(key), b"legacy", sig) is True
        assert _core.verify("rsa_pkcs1_sha1", spki(key), b"legacy!", sig) is False
        with pytest.raises(ValueError):
            _core.PrivateKey(private_der(key)).sign("rsa_pkcs1_sha1", b"legacy")


@pytest.mark.parametrize("scheme", SIGN_SCHEMES)
def test_tampered_signature_or_message_is_false(scheme, keys):
    key = keys_for(scheme, keys)[0]
    pub = spki(key)
    message = b"the signed content"
    sig = _core.PrivateKey(private_der(key)).sign(scheme, message)
    assert _core.verify(scheme, pub, message, sig) is True
    for i in range(len(sig)):
        for bit in (0, 3, 7):
            bad = bytearray(sig)
            bad[i] ^= 1 << bit
            assert _core.verify(scheme, pub, message, bytes(bad)) is False, (i, bit)
    for bad in (b"", sig[:-1], sig + b"\x00", b"\x00" + sig, bytes(len(sig))):
        assert _core.verify(scheme, pub, message, bad) is False
    for other in (b"", message[:-1], message + b"\x00", b"The signed content"):
        assert _core.verify(scheme, pub, other, sig) is False


@pytest.mark.parametrize("scheme", SIGN_SCHEMES)
def test_signature_under_another_scheme_is_false(scheme, keys):
    key = keys_for(scheme, keys)[0]
    sig = _core.PrivateKey(private_der(key)).sign(scheme, b"content")
    for other in SIGN_SCHEMES + ["rsa_pkcs1_sha1"]:
        if other != scheme:
            assert _core.verify(other, spki(key), b"content", sig) is False, other


@pytest.mark.parametrize("scheme", ["nonsense", "", "RSA_PKCS1_SHA256", "rsa_pkcs1_md5", "ecdsa_sha256", "rsa_pss_rsae_sha1"])
def test_unknown_scheme_is_value_error(scheme, keys):
    key = keys["rsa2048"]
    with pytest.raises(ValueError):
        _core.PrivateKey(private_der(key)).sign(scheme, b"m")
    with pytest.raises(ValueError):
        _core.verify(scheme, spki(key), b"m", bytes(256))


def test_sign_with_a_key_that_does_not_fit_the_scheme_is_value_error(keys):
    rsa_der = private_der(keys["rsa2048"])
    p256_der = private_der(keys["secp256r1"])
    p384_der = private_der(keys["secp384r1"])
    ed_der = private_der(ed25519.Ed25519PrivateKey.generate())
    cases = [
        ("ecdsa_secp256r1_sha256", rsa_der),
        ("ed25519", rsa_der),
        ("rsa_pkcs1_sha256", p256_der),
        ("rsa_pss_rsae_sha256", p384_der),
        ("ed25519", p256_der),
        ("rsa_pkcs1_sha256", ed_der),
        ("ecdsa_secp256r1_sha256", ed_der),
    ]
    for scheme, der in cases:
        key = _core.PrivateKey(der)
        with pytest.raises(ValueError):
            key.sign(scheme, b"m")


def test_what_is_not_a_pkcs8_private_key_is_value_error(keys):
    plain = serialization.NoEncryption()
    not_keys = [
        # PKCS#1 RSAPrivateKey and SEC 1 ECPrivateKey: load_cert_chain converts them first
        keys["rsa2048"].private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, plain),
        keys["secp256r1"].private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, plain),
        # a public key is not a private key
        spki(keys["rsa2048"]),
        spki(keys["secp256r1"]),
        b"",
        os.urandom(100),
        private_der(keys["rsa2048"])[:-1],
        # curves other than P-256, P-384 and P-521
        private_der(ec.generate_private_key(ec.SECP256K1())),
        private_der(ec.generate_private_key(ec.SECP224R1())),
    ]
    for der in not_keys:
        with pytest.raises(ValueError):
            _core.PrivateKey(der)


def test_an_inconsistent_rsa_key_is_refused(keys):
    """A PKCS#8 RSA key whose private exponent does not belong to its modulus (one byte of d
    changed): RSA_check_key refuses it when it is loaded, before any signature."""
    numbers = keys["rsa2048"].private_numbers()
    bad = rsa.RSAPrivateNumbers(numbers.p, numbers.q, numbers.d ^ (1 << 100), numbers.dmp1, numbers.dmq1,
                                numbers.iqmp, numbers.public_numbers)
    der = bad.private_key(unsafe_skip_rsa_key_validation=True).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ValueError):
        _core.PrivateKey(der)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()], ids=lambda c: c.name)
@pytest.mark.parametrize("scheme", ["ecdsa_secp256r1_sha256", "ecdsa_secp384r1_sha384", "ecdsa_secp521r1_sha512"])
def test_tls12_ecdsa_any_curve_with_any_hash(curve, scheme):
    """In TLS 1.2 an ECDSA code point names only the hash (RFC 5246 7.4.1.4.1): every curve
    signs under every one, P-384 with SHA-256 included; cryptography and the core verify."""
    key = ec.generate_private_key(curve)
    core_key = _core.PrivateKey(private_der(key))
    assert (core_key.kind, core_key.curve, core_key.bits) == ("ec", curve.name, curve.key_size)
    sig = core_key.sign(scheme, b"ServerKeyExchange")
    key.public_key().verify(sig, b"ServerKeyExchange", ec.ECDSA(scheme_hash(scheme)))
    assert _core.verify(scheme, spki(key), b"ServerKeyExchange", sig) is True


def test_ed25519_signs_for_tls13():
    key = ed25519.Ed25519PrivateKey.generate()
    core_key = _core.PrivateKey(private_der(key))
    assert (core_key.kind, core_key.curve) == ("ed25519", None)
    sig = core_key.sign("ed25519", b"CertificateVerify")
    assert sig == key.sign(b"CertificateVerify")  # Ed25519 is deterministic
    key.public_key().verify(sig, b"CertificateVerify")


def test_verify_with_a_key_that_does_not_fit_the_scheme_is_false(keys):
    rsa_sig = _core.PrivateKey(private_der(keys["rsa2048"])).sign("rsa_pkcs1_sha256", b"m")
    ec_sig = _core.PrivateKey(private_der(keys["secp256r1"])).sign("ecdsa_secp256r1_sha256", b"m")
    assert _core.verify("rsa_pkcs1_sha256", spki(keys["secp256r1"]), b"m", rsa_sig) is False
    assert _core.verify("ecdsa_secp256r1_sha256", spki(keys["rsa2048"]), b"m", ec_sig) is False
    assert _core.verify("ecdsa_secp384r1_sha384", spki(keys["secp256r1"]), b"m", ec_sig) is False
    assert _core.verify("ecdsa_secp256r1_sha256", spki(keys["secp384r1"]), b"m", ec_sig) is False
    assert _core.verify("rsa_pkcs1_sha256", b"", b"m", rsa_sig) is False
    assert _core.verify("rsa_pkcs1_sha256", os.urandom(294), b"m", rsa_sig) is False
    # a signature is only good under the key that made it
    other = rsa.generate_private_key(65537, 2048)
    assert _core.verify("rsa_pkcs1_sha256", spki(other), b"m", rsa_sig) is False


# --------------------------------------------------------------------------------------------
# Randomness
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 16, 32, 48, 1000, 1 << 16, 1 << 20])
def test_random_bytes_length(n):
    out = _core.random_bytes(n)
    assert isinstance(out, bytes)
    assert len(out) == n


def test_random_bytes_do_not_repeat():
    outs = [_core.random_bytes(16) for _ in range(2000)]
    assert len(set(outs)) == len(outs)
    assert bytes(16) not in outs
    assert len({_core.random_bytes(1) for _ in range(2000)}) > 200


def test_random_bytes_look_uniform():
    data = _core.random_bytes(1 << 17)
    ones = sum(bin(b).count("1") for b in data)
    assert abs(ones / (8 * len(data)) - 0.5) < 0.01
    counts = [0] * 256
    for b in data:
        counts[b] += 1
    expected = len(data) / 256
    assert all(abs(c - expected) < 0.25 * expected for c in counts)


def test_random_bytes_negative_is_rejected():
    with pytest.raises((ValueError, OverflowError)):
        _core.random_bytes(-1)
