"""Key derivation in ferrotls._core: the TLS 1.2 PRF (RFC 5246 section 5), master secret (8.1),
extended master secret (RFC 7627 section 4), key block (6.3), and the TLS 1.3 key schedule on
HKDF (RFC 5869, RFC 8446 section 7.1).

Oracles, none of them computed by the code under test:
  - the TLS 1.2 PRF vectors circulated on the IETF TLS list (P_SHA256 and P_SHA384, "test label"),
    also recomputed here with a plain-Python HMAC implementation of P_hash;
  - RFC 5869 appendix A, test cases 1-3 (the SHA-256 ones), through hkdf_extract;
  - RFC 8448 section 3 ("Simple 1-RTT Handshake"): every secret, key and IV of the key schedule,
    with transcript hashes computed here from the handshake messages printed in the RFC;
  - a plain-Python P_hash / HKDF-Expand-Label for the differential (hypothesis) tests.
"""

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrotls import _core

HASHES = ["sha256", "sha384"]
HASH_LEN = {"sha256": 32, "sha384": 48}
MAX_OUTPUT = 1 << 16  # the longest PRF output _core hands out in one call

SETTINGS = settings(max_examples=50, deadline=None, database=None)


def h(text):
    """Bytes from a hex dump, ignoring whitespace."""
    return bytes.fromhex("".join(text.split()))


# --------------------------------------------------------------------------------------------
# Plain-Python references
# --------------------------------------------------------------------------------------------


def ref_p_hash(hash_name, secret, seed, length):
    """P_hash(secret, seed) of RFC 5246 section 5, truncated to length bytes."""
    out = b""
    a = seed  # A(0)
    while len(out) < length:
        a = hmac.new(secret, a, hash_name).digest()  # A(i) = HMAC(secret, A(i-1))
        out += hmac.new(secret, a + seed, hash_name).digest()
    return out[:length]


def ref_prf(hash_name, secret, label, seed, length):
    return ref_p_hash(hash_name, secret, label + seed, length)


def ref_hkdf_extract(hash_name, salt, ikm):
    if not salt:
        salt = bytes(HASH_LEN[hash_name])
    return hmac.new(salt, ikm, hash_name).digest()


def ref_hkdf_expand(hash_name, prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hash_name).digest()
        out += t
        i += 1
    return out[:length]


def ref_hkdf_expand_label(hash_name, secret, label, context, length):
    full_label = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full_label)]) + full_label + bytes([len(context)]) + context
    return ref_hkdf_expand(hash_name, secret, info, length)


# --------------------------------------------------------------------------------------------
# TLS 1.2 PRF: published known answers
# --------------------------------------------------------------------------------------------

# https://www.ietf.org/mail-archive/web/tls/current/msg03416.html
PRF_VECTORS = [
    (
        "sha256",
        "9bbe436ba940f017b17652849a71db35",
        "a0ba9f936cda311827a6f796ffd5198c",
        """e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a
        6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab
        4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
        87347b66""",
    ),
    (
        "sha384",
        "b80b733d6ceefcdc71566ea48e5567df",
        "cd665cf6a8447dd6ff8b27555edb7465",
        """7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd
        e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd
        8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425
        9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6
        91c8f3a26854308d5eaa3be85e0990703d73e56f""",
    ),
]


@pytest.mark.parametrize("hash_name, secret, seed, expected", PRF_VECTORS, ids=["sha256", "sha384"])
def test_prf_published_vectors(hash_name, secret, seed, expected):
    secret, seed, expected = h(secret), h(seed), h(expected)
    assert len(expected) == {"sha256": 100, "sha384": 148}[hash_name]
    # The vector itself agrees with the plain-Python reference...
    assert ref_prf(hash_name, secret, b"test label", seed, len(expected)) == expected
    # ...and the core reproduces it.
    got = _core.tls12_prf(hash_name, secret, b"test label", seed, len(expected))
    assert isinstance(got, bytes)
    assert got == expected


@pytest.mark.parametrize("hash_name, secret, seed, expected", PRF_VECTORS, ids=["sha256", "sha384"])
def test_prf_every_shorter_length_is_a_prefix(hash_name, secret, seed, expected):
    secret, seed, expected = h(secret), h(seed), h(expected)
    for n in range(len(expected) + 1):
        assert _core.tls12_prf(hash_name, secret, b"test label", seed, n) == expected[:n], n


def test_prf_label_and_seed_are_concatenated():
    # P_hash sees only label + seed: moving bytes between them changes nothing.
    secret = b"s" * 48
    a = _core.tls12_prf("sha256", secret, b"test label", b"xyz", 64)
    b = _core.tls12_prf("sha256", secret, b"test lab", b"elxyz", 64)
    c = _core.tls12_prf("sha256", secret, b"", b"test labelxyz", 64)
    assert a == b == c
    assert a != _core.tls12_prf("sha384", secret, b"test label", b"xyz", 64)


@pytest.mark.parametrize("hash_name", HASHES)
def test_prf_longest_output(hash_name):
    out = _core.tls12_prf(hash_name, b"secret", b"label", b"seed", MAX_OUTPUT)
    assert out == ref_prf(hash_name, b"secret", b"label", b"seed", MAX_OUTPUT)


# --------------------------------------------------------------------------------------------
# TLS 1.2 PRF and friends: differential against the reference
# --------------------------------------------------------------------------------------------

hash_names = st.sampled_from(HASHES)
blobs = st.binary(max_size=200)


@SETTINGS
@given(hash_name=hash_names, secret=blobs, label=st.binary(max_size=40), seed=blobs, length=st.integers(0, 400))
def test_prf_matches_reference(hash_name, secret, label, seed, length):
    assert _core.tls12_prf(hash_name, secret, label, seed, length) == ref_prf(hash_name, secret, label, seed, length)


@SETTINGS
@given(
    hash_name=hash_names,
    premaster=st.binary(min_size=0, max_size=132),
    client_random=st.binary(min_size=32, max_size=32),
    server_random=st.binary(min_size=32, max_size=32),
)
def test_master_secret_matches_reference(hash_name, premaster, client_random, server_random):
    # RFC 5246 8.1: PRF(pre_master_secret, "master secret", ClientHello.random + ServerHello.random)[0..47]
    expected = ref_prf(hash_name, premaster, b"master secret", client_random + server_random, 48)
    got = _core.master_secret(hash_name, premaster, client_random, server_random)
    assert got == expected
    if client_random != server_random:
        # The order of the randoms matters.
        assert _core.master_secret(hash_name, premaster, server_random, client_random) != got


@SETTINGS
@given(hash_name=hash_names, premaster=st.binary(max_size=132), session_hash=st.binary(min_size=0, max_size=64))
def test_extended_master_secret_matches_reference(hash_name, premaster, session_hash):
    # RFC 7627 section 4: PRF(pre_master_secret, "extended master secret", session_hash)[0..47]
    expected = ref_prf(hash_name, premaster, b"extended master secret", session_hash, 48)
    assert _core.extended_master_secret(hash_name, premaster, session_hash) == expected


@SETTINGS
@given(
    hash_name=hash_names,
    master=st.binary(min_size=48, max_size=48),
    server_random=st.binary(min_size=32, max_size=32),
    client_random=st.binary(min_size=32, max_size=32),
    length=st.integers(0, 300),
)
def test_key_block_matches_reference(hash_name, master, server_random, client_random, length):
    # RFC 5246 6.3: PRF(SecurityParameters.master_secret, "key expansion",
    #                   SecurityParameters.server_random + SecurityParameters.client_random)
    expected = ref_prf(hash_name, master, b"key expansion", server_random + client_random, length)
    assert _core.key_block(hash_name, master, server_random, client_random, length) == expected


def test_master_and_extended_master_differ():
    premaster = bytes(range(48))
    ms = _core.master_secret("sha256", premaster, b"c" * 32, b"s" * 32)
    ems = _core.extended_master_secret("sha256", premaster, b"c" * 32 + b"s" * 32)
    assert len(ms) == len(ems) == 48
    assert ms != ems


# --------------------------------------------------------------------------------------------
# HKDF-Extract: RFC 5869 appendix A (SHA-256 cases)
# --------------------------------------------------------------------------------------------

RFC5869 = [
    # (case, IKM, salt, PRK)
    (
        1,
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "000102030405060708090a0b0c",
        "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
    ),
    (
        2,
        bytes(range(0x00, 0x50)).hex(),
        bytes(range(0x60, 0xB0)).hex(),
        "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
    ),
    (
        3,
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "",  # "salt = (0 octets)": HashLen zeros
        "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
    ),
]


@pytest.mark.parametrize("case, ikm, salt, prk", RFC5869, ids=lambda v: str(v) if isinstance(v, int) else None)
def test_hkdf_extract_rfc5869(case, ikm, salt, prk):
    assert _core.hkdf_extract("sha256", h(salt), h(ikm)) == h(prk)


@pytest.mark.parametrize("hash_name", HASHES)
def test_hkdf_extract_empty_salt_is_hashlen_zeros(hash_name):
    ikm = b"input keying material"
    zero_salt = bytes(HASH_LEN[hash_name])
    out = _core.hkdf_extract(hash_name, b"", ikm)
    assert len(out) == HASH_LEN[hash_name]
    assert out == _core.hkdf_extract(hash_name, zero_salt, ikm) == ref_hkdf_extract(hash_name, zero_salt, ikm)


@SETTINGS
@given(hash_name=hash_names, salt=blobs, ikm=blobs)
def test_hkdf_extract_matches_reference(hash_name, salt, ikm):
    assert _core.hkdf_extract(hash_name, salt, ikm) == ref_hkdf_extract(hash_name, salt, ikm)


# --------------------------------------------------------------------------------------------
# TLS 1.3 key schedule: RFC 8448 section 3, Simple 1-RTT Handshake (TLS_AES_128_GCM_SHA256)
# --------------------------------------------------------------------------------------------

# The handshake messages of the trace, so that the transcript hashes are computed here.
CLIENT_HELLO = h(
    """010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302
    010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400
    230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003
    020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001"""
)
SERVER_HELLO = h(
    """020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e0033002400
    1d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304"""
)
ENCRYPTED_EXTENSIONS = h("080000240022000a00140012001d00170018001901000101010201030104001c0002400100000000")
CERTIFICATE = h(
    """0b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06
    035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a060355
    0403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36
    c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0
    ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a80
    02c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0300d06
    092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594365417f2ea
    e8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c
    3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b42b4de10000"""
)
CERTIFICATE_VERIFY = h(
    """0f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f824cd484145ab3ff52f1fda8477b0b7abc90db78e2d33a
    5c141a078653fa6bef780c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671459e46445c9ea58c
    181e818e95b8c3fb0bf3278409d3be152a3da5043e063dda65cdf5aea20d53dfacd42f74f3"""
)
SERVER_FINISHED = h("140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718")
CLIENT_FINISHED = h("14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")

# {server} extract secret "handshake": the x25519 shared secret (IKM)
ECDHE_SHARED = h("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")

EARLY_SECRET = h("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
DERIVED_FOR_HANDSHAKE = h("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba")
HANDSHAKE_SECRET = h("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac")
CLIENT_HS_TRAFFIC = h("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
SERVER_HS_TRAFFIC = h("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
DERIVED_FOR_MASTER = h("43de77e0c77713859a944db9db2590b53190a65b3ee2e4f12dd7a0bb7ce254b4")
MASTER_SECRET = h("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919")
SERVER_HS_KEY = h("3fce516009c21727d0f2e4e86ee403bc")
SERVER_HS_IV = h("5d313eb2671276ee13000b30")
CLIENT_HS_KEY = h("dbfaa693d1762c5b666af5d950258d01")
CLIENT_HS_IV = h("5bd3c71b836e0b76bb73265f")
SERVER_FINISHED_KEY = h("008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8")
CLIENT_AP_TRAFFIC = h("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
SERVER_AP_TRAFFIC = h("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
EXPORTER_MASTER = h("fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50")
SERVER_AP_KEY = h("9f02283b6c9c07efc26bb9f2ac92e356")
SERVER_AP_IV = h("cf782b88dd83549aadf1e984")
CLIENT_AP_KEY = h("17422dda596ed5d9acd890e3c63f5051")
CLIENT_AP_IV = h("5b78923dee08579033e523d9")
RESUMPTION_MASTER = h("7df235f2031d2a051287d02b0241b0bfdaf86cc856231f2d5aba46c434ec196c")
# {server} generate resumption secret "tls13 resumption", ticket nonce 00 00
TICKET_PSK = h("4ecd0eb6ec3b4d87f5d6028f922ca4c5851a277fd41311c9e62d2c9492e1c4f3")


def transcript(*messages):
    return hashlib.sha256(b"".join(messages)).digest()


def test_rfc8448_transcript_hash_sanity():
    # Not the core: a check that the messages above were transcribed correctly (the trace's
    # server Finished verify_data is HMAC(finished_key, Transcript-Hash(CH..CV))).
    th = transcript(CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY)
    assert hmac.new(SERVER_FINISHED_KEY, th, "sha256").digest() == SERVER_FINISHED[4:]


def test_rfc8448_early_and_handshake_secrets():
    early = _core.hkdf_extract("sha256", b"", bytes(32))  # salt 0, IKM 32 zero octets (no PSK)
    assert early == EARLY_SECRET
    derived = _core.derive_secret("sha256", early, b"derived", hashlib.sha256(b"").digest())
    assert derived == DERIVED_FOR_HANDSHAKE
    assert _core.hkdf_expand_label("sha256", early, b"derived", hashlib.sha256(b"").digest(), 32) == derived
    handshake = _core.hkdf_extract("sha256", derived, ECDHE_SHARED)
    assert handshake == HANDSHAKE_SECRET


def test_rfc8448_handshake_traffic_secrets_keys_and_ivs():
    th = transcript(CLIENT_HELLO, SERVER_HELLO)
    c_hs = _core.derive_secret("sha256", HANDSHAKE_SECRET, b"c hs traffic", th)
    s_hs = _core.derive_secret("sha256", HANDSHAKE_SECRET, b"s hs traffic", th)
    assert c_hs == CLIENT_HS_TRAFFIC
    assert s_hs == SERVER_HS_TRAFFIC
    assert _core.hkdf_expand_label("sha256", s_hs, b"key", b"", 16) == SERVER_HS_KEY
    assert _core.hkdf_expand_label("sha256", s_hs, b"iv", b"", 12) == SERVER_HS_IV
    assert _core.hkdf_expand_label("sha256", c_hs, b"key", b"", 16) == CLIENT_HS_KEY
    assert _core.hkdf_expand_label("sha256", c_hs, b"iv", b"", 12) == CLIENT_HS_IV
    finished_key = _core.hkdf_expand_label("sha256", s_hs, b"finished", b"", 32)
    assert finished_key == SERVER_FINISHED_KEY


def test_rfc8448_master_and_application_secrets():
    derived = _core.derive_secret("sha256", HANDSHAKE_SECRET, b"derived", hashlib.sha256(b"").digest())
    assert derived == DERIVED_FOR_MASTER
    master = _core.hkdf_extract("sha256", derived, bytes(32))
    assert master == MASTER_SECRET

    th = transcript(CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY, SERVER_FINISHED)
    c_ap = _core.derive_secret("sha256", master, b"c ap traffic", th)
    s_ap = _core.derive_secret("sha256", master, b"s ap traffic", th)
    assert c_ap == CLIENT_AP_TRAFFIC
    assert s_ap == SERVER_AP_TRAFFIC
    assert _core.derive_secret("sha256", master, b"exp master", th) == EXPORTER_MASTER
    assert _core.hkdf_expand_label("sha256", s_ap, b"key", b"", 16) == SERVER_AP_KEY
    assert _core.hkdf_expand_label("sha256", s_ap, b"iv", b"", 12) == SERVER_AP_IV
    assert _core.hkdf_expand_label("sha256", c_ap, b"key", b"", 16) == CLIENT_AP_KEY
    assert _core.hkdf_expand_label("sha256", c_ap, b"iv", b"", 12) == CLIENT_AP_IV

    # The client's Finished: HMAC(finished_key, Transcript-Hash(CH..server Finished)).
    client_finished_key = _core.hkdf_expand_label("sha256", CLIENT_HS_TRAFFIC, b"finished", b"", 32)
    assert hmac.new(client_finished_key, th, "sha256").digest() == CLIENT_FINISHED[4:]

    th_full = transcript(
        CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY, SERVER_FINISHED, CLIENT_FINISHED
    )
    res_master = _core.derive_secret("sha256", master, b"res master", th_full)
    assert res_master == RESUMPTION_MASTER
    assert _core.hkdf_expand_label("sha256", res_master, b"resumption", b"\x00\x00", 32) == TICKET_PSK


# --------------------------------------------------------------------------------------------
# HKDF-Expand-Label / Derive-Secret: differential
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(
    hash_name=hash_names,
    secret=st.binary(min_size=1, max_size=64),
    label=st.binary(max_size=40),
    context=st.binary(max_size=64),
    length=st.integers(0, 600),
)
def test_hkdf_expand_label_matches_reference(hash_name, secret, label, context, length):
    expected = ref_hkdf_expand_label(hash_name, secret, label, context, length)
    assert _core.hkdf_expand_label(hash_name, secret, label, context, length) == expected


@SETTINGS
@given(hash_name=hash_names, secret=st.binary(min_size=1, max_size=64), label=st.binary(max_size=40), data=st.binary())
def test_derive_secret_matches_reference(hash_name, secret, label, data):
    th = hashlib.new(hash_name, data).digest()
    expected = ref_hkdf_expand_label(hash_name, secret, label, th, HASH_LEN[hash_name])
    assert _core.derive_secret(hash_name, secret, label, th) == expected


@pytest.mark.parametrize("hash_name", HASHES)
def test_hkdf_expand_label_limits(hash_name):
    n = HASH_LEN[hash_name]
    secret = b"k" * n
    # Largest output HKDF allows (255 * HashLen), longest label (255 - len("tls13 ")), longest context.
    longest = _core.hkdf_expand_label(hash_name, secret, b"l", b"", 255 * n)
    assert longest == ref_hkdf_expand_label(hash_name, secret, b"l", b"", 255 * n)
    assert _core.hkdf_expand_label(hash_name, secret, b"x" * 249, b"", 16) == ref_hkdf_expand_label(
        hash_name, secret, b"x" * 249, b"", 16
    )
    assert _core.hkdf_expand_label(hash_name, secret, b"l", b"c" * 255, 16) == ref_hkdf_expand_label(
        hash_name, secret, b"l", b"c" * 255, 16
    )
    with pytest.raises(ValueError):
        _core.hkdf_expand_label(hash_name, secret, b"l", b"", 255 * n + 1)
    with pytest.raises(ValueError):
        _core.hkdf_expand_label(hash_name, secret, b"x" * 250, b"", 16)
    with pytest.raises(ValueError):
        _core.hkdf_expand_label(hash_name, secret, b"l", b"c" * 256, 16)
    with pytest.raises(ValueError):
        _core.derive_secret(hash_name, secret, b"x" * 250, b"")
    with pytest.raises(ValueError):
        _core.derive_secret(hash_name, secret, b"l", b"c" * 256)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

BAD_HASH_NAMES = ["sha1", "md5", "sha512", "SHA256", "sha-256", "", "sha256 "]

CALLS = {
    "tls12_prf": lambda name: _core.tls12_prf(name, b"s", b"l", b"seed", 16),
    "master_secret": lambda name: _core.master_secret(name, b"p" * 48, b"c" * 32, b"s" * 32),
    "extended_master_secret": lambda name: _core.extended_master_secret(name, b"p" * 48, b"h" * 32),
    "key_block": lambda name: _core.key_block(name, b"m" * 48, b"s" * 32, b"c" * 32, 40),
    "hkdf_extract": lambda name: _core.hkdf_extract(name, b"salt", b"ikm"),
    "hkdf_expand_label": lambda name: _core.hkdf_expand_label(name, b"k" * 32, b"key", b"", 16),
    "derive_secret": lambda name: _core.derive_secret(name, b"k" * 32, b"derived", b""),
}


@pytest.mark.parametrize("function", sorted(CALLS))
@pytest.mark.parametrize("name", BAD_HASH_NAMES)
def test_unknown_hash_name_is_value_error(function, name):
    with pytest.raises(ValueError):
        CALLS[function](name)


@pytest.mark.parametrize("function", sorted(CALLS))
def test_known_hash_names_work(function):
    outs = {name: CALLS[function](name) for name in HASHES}
    assert all(isinstance(v, bytes) and v for v in outs.values())


@pytest.mark.parametrize("length", [MAX_OUTPUT + 1, 10**6, 10**9, 2**63 - 1])
def test_huge_length_is_value_error(length):
    with pytest.raises(ValueError):
        _core.tls12_prf("sha256", b"s", b"l", b"seed", length)
    with pytest.raises(ValueError):
        _core.key_block("sha384", b"m" * 48, b"s" * 32, b"c" * 32, length)
    with pytest.raises(ValueError):
        _core.hkdf_expand_label("sha256", b"k" * 32, b"key", b"", length)


@pytest.mark.parametrize("length", [2**64, -1])
def test_out_of_range_length_is_rejected(length):
    # Not representable as a length at all: rejected before any work (OverflowError is how the
    # binding reports an int that does not fit; either is an error the caller can catch).
    with pytest.raises((ValueError, OverflowError)):
        _core.tls12_prf("sha256", b"s", b"l", b"seed", length)
    with pytest.raises((ValueError, OverflowError)):
        _core.hkdf_expand_label("sha256", b"k" * 32, b"key", b"", length)


def test_zero_length_is_empty():
    assert _core.tls12_prf("sha256", b"s", b"l", b"seed", 0) == b""
    assert _core.key_block("sha256", b"m" * 48, b"s" * 32, b"c" * 32, 0) == b""
    assert _core.hkdf_expand_label("sha256", b"k" * 32, b"key", b"", 0) == b""
