"""Record protection in ferrotls._core: RecordSealer and RecordOpener.

Oracles, none of them computed by the code under test:
  - RFC 8448 section 3: the protected records of the "Simple 1-RTT Handshake" (TLS 1.3,
    AES_128_GCM) with their keys, IVs and plaintexts;
  - a reference record layer written here on `cryptography` primitives (AESGCM,
    ChaCha20Poly1305, AES-CBC, HMAC) straight from the RFCs:
      TLS 1.2 AES-GCM: RFC 5288 section 3 (nonce = salt(4) || explicit(8), explicit nonce sent);
      TLS 1.2 ChaCha20-Poly1305: RFC 7905 section 2 (nonce = iv XOR seq, nothing sent);
      TLS 1.2 AAD: RFC 5246 6.2.3.3 (seq || type || version || plaintext length);
      TLS 1.3: RFC 8446 5.2-5.4 (nonce = iv XOR seq, AAD = record header,
               inner plaintext = content || type || zeros);
      TLS 1.2 CBC, MAC-then-encrypt: RFC 5246 6.2.3.2; encrypt-then-MAC: RFC 7366 section 3.
"""

import hashlib
import hmac
import os
import random
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrotls import _core
from ferrotls._core import RecordError, RecordOpener, RecordSealer

MAX_FRAGMENT = 1 << 14
SEQ_MAX = 2**64 - 1
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
BAD_MAC = "bad_record_mac"
INCOMPLETE = "incomplete"

SETTINGS = settings(max_examples=30, deadline=None, database=None)


def h(text):
    return bytes.fromhex("".join(text.split()))


# --------------------------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------------------------

AEAD_KEY_LEN = {"AES_128_GCM": 16, "AES_256_GCM": 32, "CHACHA20_POLY1305": 32}
CBC_MAC = {"SHA": ("sha1", 20), "SHA256": ("sha256", 32), "SHA384": ("sha384", 48)}
CBC_CIPHERS = [f"AES_{bits}_CBC_{mac}" for bits in (128, 256) for mac in ("SHA", "SHA256", "SHA384")]


@dataclass(frozen=True)
class Suite:
    cipher: str
    tls13: bool = False
    etm: bool = False

    @property
    def cbc(self):
        return "_CBC_" in self.cipher

    @property
    def key_len(self):
        if self.cbc:
            return 16 if self.cipher.startswith("AES_128") else 32
        return AEAD_KEY_LEN[self.cipher]

    @property
    def iv_len(self):
        if self.cbc:
            return 0
        if self.tls13 or self.cipher == "CHACHA20_POLY1305":
            return 12
        return 4

    @property
    def mac_hash(self):
        return CBC_MAC[self.cipher.rsplit("_", 1)[1]][0] if self.cbc else None

    @property
    def mac_len(self):
        return CBC_MAC[self.cipher.rsplit("_", 1)[1]][1] if self.cbc else 0

    @property
    def max_length(self):
        """Longest TLSCiphertext.length accepted (RFC 5246 6.2.3, RFC 8446 5.2)."""
        return MAX_FRAGMENT + (256 if self.tls13 else 2048)

    def __str__(self):
        return self.cipher + ("-tls13" if self.tls13 else "-tls12") + ("-etm" if self.etm else "")


AEAD_SUITES = [Suite(c) for c in AEAD_KEY_LEN] + [Suite(c, tls13=True) for c in AEAD_KEY_LEN]
CBC_SUITES = [Suite(c, etm=etm) for c in CBC_CIPHERS for etm in (False, True)]
ALL_SUITES = AEAD_SUITES + CBC_SUITES
TLS13_SUITES = [s for s in AEAD_SUITES if s.tls13]
TLS12_SUITES = [s for s in ALL_SUITES if not s.tls13]

all_suites = pytest.mark.parametrize("suite", ALL_SUITES, ids=str)
aead_suites = pytest.mark.parametrize("suite", AEAD_SUITES, ids=str)
cbc_suites = pytest.mark.parametrize("suite", CBC_SUITES, ids=str)
tls13_suites = pytest.mark.parametrize("suite", TLS13_SUITES, ids=str)
tls12_suites = pytest.mark.parametrize("suite", TLS12_SUITES, ids=str)


@dataclass(frozen=True)
class Keys:
    key: bytes
    iv: bytes
    mac_key: bytes


def fixed_keys(suite, tag=b""):
    """Deterministic key material for a suite."""
    stream = hashlib.shake_256(str(suite).encode() + tag).digest(suite.key_len + suite.iv_len + suite.mac_len)
    return Keys(
        stream[: suite.key_len],
        stream[suite.key_len : suite.key_len + suite.iv_len],
        stream[suite.key_len + suite.iv_len :],
    )


def draw_keys(draw, suite):
    b = lambda n: draw(st.binary(min_size=n, max_size=n))  # noqa: E731
    return Keys(b(suite.key_len), b(suite.iv_len), b(suite.mac_len))


def make_sealer(suite, keys, seq=0):
    return RecordSealer(
        suite.cipher, keys.key, keys.iv, keys.mac_key, tls13=suite.tls13, encrypt_then_mac=suite.etm, sequence_number=seq
    )


def make_opener(suite, keys, seq=0):
    return RecordOpener(
        suite.cipher, keys.key, keys.iv, keys.mac_key, tls13=suite.tls13, encrypt_then_mac=suite.etm, sequence_number=seq
    )


# --------------------------------------------------------------------------------------------
# The reference record layer
# --------------------------------------------------------------------------------------------


class RefError(Exception):
    pass


def header(content_type, length, version=b"\x03\x03"):
    return bytes([content_type]) + version + length.to_bytes(2, "big")


def record(content_type, body, version=b"\x03\x03"):
    return header(content_type, len(body), version) + body


def split_records(buf):
    """The records of a buffer of whole records, as bytes objects."""
    out, pos = [], 0
    while pos < len(buf):
        length = int.from_bytes(buf[pos + 3 : pos + 5], "big")
        out.append(bytes(buf[pos : pos + 5 + length]))
        pos += 5 + length
    assert pos == len(buf)
    return out


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


class Ref:
    def __init__(self, suite, keys):
        self.suite = suite
        self.keys = keys

    # -- AEAD ---------------------------------------------------------------------------------

    def _aead(self):
        if self.suite.cipher == "CHACHA20_POLY1305":
            return ChaCha20Poly1305(self.keys.key)
        return AESGCM(self.keys.key)

    def _xor_nonce(self, seq):
        return xor(self.keys.iv, seq.to_bytes(12, "big"))

    @staticmethod
    def _aad12(seq, content_type, length):
        return seq.to_bytes(8, "big") + bytes([content_type]) + b"\x03\x03" + length.to_bytes(2, "big")

    def seal_tls12_aead(self, seq, content_type, data, explicit=None):
        aad = self._aad12(seq, content_type, len(data))
        if self.suite.iv_len == 4:  # RFC 5288: salt || explicit nonce, the explicit part sent
            explicit = seq.to_bytes(8, "big") if explicit is None else explicit
            return record(content_type, explicit + self._aead().encrypt(self.keys.iv + explicit, data, aad))
        return record(content_type, self._aead().encrypt(self._xor_nonce(seq), data, aad))

    def seal_inner(self, seq, inner, outer_type=APPLICATION_DATA):
        """TLS 1.3: protect an arbitrary TLSInnerPlaintext."""
        hdr = header(outer_type, len(inner) + 16)
        return hdr + self._aead().encrypt(self._xor_nonce(seq), inner, hdr)

    def seal_tls13(self, seq, content_type, data, padding=0):
        return self.seal_inner(seq, data + bytes([content_type]) + bytes(padding))

    # -- CBC ----------------------------------------------------------------------------------

    def _mac(self, msg):
        return hmac.new(self.keys.mac_key, msg, self.suite.mac_hash).digest()

    def _cbc(self, iv):
        return Cipher(algorithms.AES(self.keys.key), modes.CBC(iv))

    def cbc_padding_choices(self, data_len):
        """Every legal padding length value for a record of data_len bytes."""
        covered = data_len + (0 if self.suite.etm else self.suite.mac_len)
        minimal = 15 - covered % 16
        return list(range(minimal, 256, 16))

    def seal_cbc(self, seq, content_type, data, iv=None, pad=None, bad_pad_at=None, plain=None):
        """MAC-then-encrypt (RFC 5246 6.2.3.2) or encrypt-then-MAC (RFC 7366).

        pad: the padding length value (pad + 1 bytes of value pad); minimal if None.
        bad_pad_at: index (0 .. pad-1) of a padding byte to corrupt.
        plain: the exact bytes to encrypt (MtE: data || mac || padding), overriding the rest.
        """
        iv = os.urandom(16) if iv is None else iv
        if plain is None:
            plain = data
            if not self.suite.etm:
                plain += self._mac(seq.to_bytes(8, "big") + header(content_type, len(data)) + data)
            pad = 15 - len(plain) % 16 if pad is None else pad
            assert (len(plain) + pad + 1) % 16 == 0 and 0 <= pad <= 255
            padding = bytearray([pad] * (pad + 1))
            if bad_pad_at is not None:
                padding[bad_pad_at] ^= 0x01
            plain += bytes(padding)
        enc = self._cbc(iv).encryptor()
        body = iv + enc.update(plain) + enc.finalize()
        if self.suite.etm:
            body += self._mac(seq.to_bytes(8, "big") + header(content_type, len(body)) + body)
        return record(content_type, body)

    # -- dispatch -----------------------------------------------------------------------------

    def seal(self, seq, content_type, data, **kw):
        if self.suite.cbc:
            return self.seal_cbc(seq, content_type, data, **kw)
        if self.suite.tls13:
            return self.seal_tls13(seq, content_type, data, **kw)
        return self.seal_tls12_aead(seq, content_type, data, **kw)

    def open(self, seq, rec):
        """(content type, data) of one whole record, or RefError."""
        content_type, version, length = rec[0], rec[1:3], int.from_bytes(rec[3:5], "big")
        body = rec[5:]
        if version != b"\x03\x03" or length != len(body):
            raise RefError("header")
        try:
            if self.suite.cbc:
                return content_type, self._open_cbc(seq, content_type, body)
            if self.suite.tls13:
                if content_type != APPLICATION_DATA:
                    raise RefError("outer type")
                inner = self._aead().decrypt(self._xor_nonce(seq), body, rec[:5]).rstrip(b"\x00")
                if not inner:
                    raise RefError("no content type")
                return inner[-1], inner[:-1]
            if self.suite.iv_len == 4:
                nonce, body = self.keys.iv + body[:8], body[8:]
            else:
                nonce = self._xor_nonce(seq)
            aad = self._aad12(seq, content_type, len(body) - 16)
            return content_type, self._aead().decrypt(nonce, body, aad)
        except InvalidTag:
            raise RefError("tag") from None

    def _open_cbc(self, seq, content_type, body):
        mac_len = self.suite.mac_len
        if self.suite.etm:
            body, tag = body[:-mac_len], body[-mac_len:]
            if not hmac.compare_digest(tag, self._mac(seq.to_bytes(8, "big") + header(content_type, len(body)) + body)):
                raise RefError("mac")
        if len(body) < 32 or len(body) % 16:
            raise RefError("length")
        dec = self._cbc(body[:16]).decryptor()
        plain = dec.update(body[16:]) + dec.finalize()
        pad = plain[-1]
        if pad + 1 + (0 if self.suite.etm else mac_len) > len(plain) or plain[-pad - 1 :] != bytes([pad]) * (pad + 1):
            raise RefError("padding")
        plain = plain[: -pad - 1]
        if self.suite.etm:
            return plain
        data, tag = plain[:-mac_len], plain[-mac_len:]
        if not hmac.compare_digest(tag, self._mac(seq.to_bytes(8, "big") + header(content_type, len(data)) + data)):
            raise RefError("mac")
        return data


_BAD_MAC_ERROR = []


def assert_bad_mac(error, context=None):
    """Every authentication failure is the same error: alert, message and all (no oracle)."""
    if not _BAD_MAC_ERROR:
        suite = AEAD_SUITES[0]
        keys = fixed_keys(suite)
        rec = make_sealer(suite, keys).seal(APPLICATION_DATA, b"reference failure")
        try:
            make_opener(suite, keys).open(rec[:-1] + bytes([rec[-1] ^ 1]))
        except RecordError as e:
            _BAD_MAC_ERROR.append((e.args, str(e)))
    assert isinstance(error, RecordError), context
    assert error.args[0] == BAD_MAC, context
    assert (error.args, str(error)) == _BAD_MAC_ERROR[0], context


# --------------------------------------------------------------------------------------------
# (a) RFC 8448 section 3 known answers
# --------------------------------------------------------------------------------------------

RFC8448_SERVER_FLIGHT_PLAINTEXT = h(
    # EncryptedExtensions
    """080000240022000a00140012001d00170018001901000101010201030104001c0002400100000000"""
    # Certificate
    """0b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06
    035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a060355
    0403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36
    c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0
    ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a80
    02c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0300d06
    092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594365417f2ea
    e8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c
    3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b42b4de10000"""
    # CertificateVerify
    """0f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f824cd484145ab3ff52f1fda8477b0b7abc90db78e2d33a
    5c141a078653fa6bef780c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671459e46445c9ea58c
    181e818e95b8c3fb0bf3278409d3be152a3da5043e063dda65cdf5aea20d53dfacd42f74f3"""
    # Finished
    """140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718"""
)
RFC8448_SERVER_FLIGHT_RECORD = h(
    """17 03 03 02 a2 d1 ff 33 4a 56 f5 bf f6 59 4a 07 cc 87 b5 80 23 3f 50 0f 45 e4 89 e7 f3 3a f3
    5e df 78 69 fc f4 0a a4 0a a2 b8 ea 73 f8 48 a7 ca 07 61 2e f9 f9 45 cb 96 0b 40 68 90 51 23 ea
    78 b1 11 b4 29 ba 91 91 cd 05 d2 a3 89 28 0f 52 61 34 aa dc 7f c7 8c 4b 72 9d f8 28 b5 ec f7 b1
    3b d9 ae fb 0e 57 f2 71 58 5b 8e a9 bb 35 5c 7c 79 02 07 16 cf b9 b1 18 3e f3 ab 20 e3 7d 57 a6
    b9 d7 47 76 09 ae e6 e1 22 a4 cf 51 42 73 25 25 0c 7d 0e 50 92 89 44 4c 9b 3a 64 8f 1d 71 03 5d
    2e d6 5b 0e 3c dd 0c ba e8 bf 2d 0b 22 78 12 cb b3 60 98 72 55 cc 74 41 10 c4 53 ba a4 fc d6 10
    92 8d 80 98 10 e4 b7 ed 1a 8f d9 91 f0 6a a6 24 82 04 79 7e 36 a6 a7 3b 70 a2 55 9c 09 ea d6 86
    94 5b a2 46 ab 66 e5 ed d8 04 4b 4c 6d e3 fc f2 a8 94 41 ac 66 27 2f d8 fb 33 0e f8 19 05 79 b3
    68 45 96 c9 60 bd 59 6e ea 52 0a 56 a8 d6 50 f5 63 aa d2 74 09 96 0d ca 63 d3 e6 88 61 1e a5 e2
    2f 44 15 cf 95 38 d5 1a 20 0c 27 03 42 72 96 8a 26 4e d6 54 0c 84 83 8d 89 f7 2c 24 46 1a ad 6d
    26 f5 9e ca ba 9a cb bb 31 7b 66 d9 02 f4 f2 92 a3 6a c1 b6 39 c6 37 ce 34 31 17 b6 59 62 22 45
    31 7b 49 ee da 0c 62 58 f1 00 d7 d9 61 ff b1 38 64 7e 92 ea 33 0f ae ea 6d fa 31 c7 a8 4d c3 bd
    7e 1b 7a 6c 71 78 af 36 87 90 18 e3 f2 52 10 7f 24 3d 24 3d c7 33 9d 56 84 c8 b0 37 8b f3 02 44
    da 8c 87 c8 43 f5 e5 6e b4 c5 e8 28 0a 2b 48 05 2c f9 3b 16 49 9a 66 db 7c ca 71 e4 59 94 26 f7
    d4 61 e6 6f 99 88 2b d8 9f c5 08 00 be cc a6 2d 6c 74 11 6d bd 29 72 fd a1 fa 80 f8 5d f8 81 ed
    be 5a 37 66 89 36 b3 35 58 3b 59 91 86 dc 5c 69 18 a3 96 fa 48 a1 81 d6 b6 fa 4f 9d 62 d5 13 af
    bb 99 2f 2b 99 2f 67 f8 af e6 7f 76 91 3f a3 88 cb 56 30 c8 ca 01 e0 c6 5d 11 c6 6a 1e 2a c4 c8
    59 77 b7 c7 a6 99 9b bf 10 dc 35 ae 69 f5 51 56 14 63 6c 0b 9b 68 c1 9e d2 e3 1c 0b 3b 66 76 30
    38 eb ba 42 f3 b3 8e dc 03 99 f3 a9 f2 3f aa 63 97 8c 31 7f c9 fa 66 a7 3f 60 f0 50 4d e9 3b 5b
    84 5e 27 55 92 c1 23 35 ee 34 0b bc 4f dd d5 02 78 40 16 e4 b3 be 7e f0 4d da 49 f4 b4 40 a3 0c
    b5 d2 af 93 98 28 fd 4a e3 79 4e 44 f9 4d f5 a6 31 ed e4 2c 17 19 bf da bf 02 53 fe 51 75 be 89
    8e 75 0e dc 53 37 0d 2b"""
)
RFC8448_CLIENT_FINISHED_PLAINTEXT = h("14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")
RFC8448_CLIENT_FINISHED_RECORD = h(
    """17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 a7 1e 21 9c 56 cc 77 b0 51 7f e9 b9 3c 7a 4b
    fc 44 d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c ae ac ab 68 67 d7 26 c4 05 46"""
)
RFC8448_APP_PLAINTEXT = bytes(range(0x32))  # "00 01 02 ... 31", sent by both sides
RFC8448_CLIENT_APP_RECORD = h(
    """17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab
    3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea
    e6 3a ee bb 21 69 49 15 e4"""
)
RFC8448_SERVER_APP_RECORD = h(
    """17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b
    36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32
    54 0d d0 32 e1 67 c2 95 5d"""
)

RFC8448_VECTORS = {
    # name: (key, iv, sequence number, record, content type, plaintext)
    "server-handshake-flight": (
        h("3fce516009c21727d0f2e4e86ee403bc"),
        h("5d313eb2671276ee13000b30"),
        0,
        RFC8448_SERVER_FLIGHT_RECORD,
        HANDSHAKE,
        RFC8448_SERVER_FLIGHT_PLAINTEXT,
    ),
    "client-finished": (
        h("dbfaa693d1762c5b666af5d950258d01"),
        h("5bd3c71b836e0b76bb73265f"),
        0,
        RFC8448_CLIENT_FINISHED_RECORD,
        HANDSHAKE,
        RFC8448_CLIENT_FINISHED_PLAINTEXT,
    ),
    "client-application-data": (
        h("17422dda596ed5d9acd890e3c63f5051"),
        h("5b78923dee08579033e523d9"),
        0,
        RFC8448_CLIENT_APP_RECORD,
        APPLICATION_DATA,
        RFC8448_APP_PLAINTEXT,
    ),
    # The server's first record under its application key is the NewSessionTicket (sequence 0),
    # so its application data is sequence 1: the only vector with a nonzero nonce mask.
    "server-application-data": (
        h("9f02283b6c9c07efc26bb9f2ac92e356"),
        h("cf782b88dd83549aadf1e984"),
        1,
        RFC8448_SERVER_APP_RECORD,
        APPLICATION_DATA,
        RFC8448_APP_PLAINTEXT,
    ),
}


def test_rfc8448_vector_sanity():
    assert len(RFC8448_SERVER_FLIGHT_RECORD) == 679
    assert len(RFC8448_SERVER_FLIGHT_PLAINTEXT) == 657


@pytest.mark.parametrize("name", sorted(RFC8448_VECTORS))
def test_rfc8448_opener_opens_the_record(name):
    key, iv, seq, rec, content_type, plaintext = RFC8448_VECTORS[name]
    opener = RecordOpener("AES_128_GCM", key, iv, tls13=True, sequence_number=seq)
    records, consumed = opener.open(rec)
    assert records == [(content_type, plaintext)]
    assert consumed == len(rec)
    assert opener.sequence_number == seq + 1


@pytest.mark.parametrize("name", sorted(RFC8448_VECTORS))
def test_rfc8448_sealer_reproduces_the_record(name):
    key, iv, seq, rec, content_type, plaintext = RFC8448_VECTORS[name]
    sealer = RecordSealer("AES_128_GCM", key, iv, tls13=True, sequence_number=seq)
    assert sealer.seal(content_type, plaintext) == rec
    assert sealer.sequence_number == seq + 1


@pytest.mark.parametrize("name", sorted(RFC8448_VECTORS))
def test_rfc8448_record_does_not_open_at_another_sequence_number(name):
    key, iv, seq, rec, _, _ = RFC8448_VECTORS[name]
    for wrong in {0, 1, 2, 255, 256, 2**32, 2**64 - 2} - {seq}:
        opener = RecordOpener("AES_128_GCM", key, iv, tls13=True, sequence_number=wrong)
        with pytest.raises(RecordError) as e:
            opener.open(rec)
        assert_bad_mac(e.value)
        assert opener.sequence_number == wrong


def test_rfc8448_client_record_does_not_open_under_the_server_key():
    key, iv, _, _, _, _ = RFC8448_VECTORS["server-application-data"]
    with pytest.raises(RecordError) as e:
        RecordOpener("AES_128_GCM", key, iv, tls13=True).open(RFC8448_CLIENT_APP_RECORD)
    assert_bad_mac(e.value)


# --------------------------------------------------------------------------------------------
# (b) Differential against the reference, every suite
# --------------------------------------------------------------------------------------------


@aead_suites
@SETTINGS
@given(
    draw=st.data(),
    content_type=st.sampled_from([CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA]),
    data=st.binary(max_size=2500),
    max_fragment=st.integers(64, MAX_FRAGMENT),
)
def test_aead_seal_matches_reference_byte_for_byte(suite, draw, content_type, data, max_fragment):
    keys = draw_keys(draw.draw, suite)
    seq = draw.draw(st.integers(0, SEQ_MAX - 50))
    sealer = make_sealer(suite, keys, seq)
    sealed = sealer.seal(content_type, data, max_fragment)
    ref = Ref(suite, keys)
    fragments = [data[i : i + max_fragment] for i in range(0, len(data), max_fragment)]
    expected = b"".join(ref.seal(seq + i, content_type, f) for i, f in enumerate(fragments))
    assert sealed == expected
    for i, rec in enumerate(split_records(sealed)):
        assert ref.open(seq + i, rec) == (content_type, fragments[i])
        if suite.tls13:
            assert rec[0] == APPLICATION_DATA  # the true type is inside (RFC 8446 5.2)
    assert sealer.sequence_number == seq + len(fragments)


@aead_suites
@SETTINGS
@given(draw=st.data(), fragments=st.lists(st.binary(max_size=600), min_size=1, max_size=6))
def test_aead_opens_reference_records(suite, draw, fragments):
    keys = draw_keys(draw.draw, suite)
    seq = draw.draw(st.integers(0, SEQ_MAX - 10))
    ref = Ref(suite, keys)
    recs = []
    for i, f in enumerate(fragments):
        if suite.tls13:
            # any amount of zero padding (RFC 8446 5.4)
            recs.append(ref.seal(seq + i, APPLICATION_DATA, f, padding=draw.draw(st.integers(0, 40))))
        elif suite.iv_len == 4:
            # the explicit nonce is the sender's choice (RFC 5288 section 3)
            recs.append(ref.seal(seq + i, APPLICATION_DATA, f, explicit=draw.draw(st.binary(min_size=8, max_size=8))))
        else:
            recs.append(ref.seal(seq + i, APPLICATION_DATA, f))
    opener = make_opener(suite, keys, seq)
    buf = b"".join(recs)
    assert opener.open(buf) == ([(APPLICATION_DATA, b"".join(fragments))], len(buf))
    assert opener.sequence_number == seq + len(fragments)


@aead_suites
@SETTINGS
@given(draw=st.data(), content_type=st.sampled_from([ALERT, HANDSHAKE, 24, 99]), data=st.binary(max_size=600))
def test_aead_opens_reference_non_application_records(suite, draw, content_type, data):
    keys = draw_keys(draw.draw, suite)
    seq = draw.draw(st.integers(0, SEQ_MAX - 10))
    rec = Ref(suite, keys).seal(seq, content_type, data)
    opener = make_opener(suite, keys, seq)
    assert opener.open(rec) == ([(content_type, data)], len(rec))


@cbc_suites
@SETTINGS
@given(
    draw=st.data(),
    content_type=st.sampled_from([ALERT, HANDSHAKE, APPLICATION_DATA]),
    data=st.binary(max_size=2500),
    max_fragment=st.integers(64, MAX_FRAGMENT),
)
def test_cbc_sealed_records_open_with_reference(suite, draw, content_type, data, max_fragment):
    keys = draw_keys(draw.draw, suite)
    seq = draw.draw(st.integers(0, SEQ_MAX - 50))
    sealer = make_sealer(suite, keys, seq)
    recs = split_records(sealer.seal(content_type, data, max_fragment))
    fragments = [data[i : i + max_fragment] for i in range(0, len(data), max_fragment)]
    assert len(recs) == len(fragments)
    ref = Ref(suite, keys)
    for i, rec in enumerate(recs):
        assert rec[:3] == bytes([content_type, 3, 3])
        assert ref.open(seq + i, rec) == (content_type, fragments[i])
    ivs = [rec[5:21] for rec in recs]
    assert len(set(ivs)) == len(ivs)  # a fresh explicit IV per record
    assert sealer.sequence_number == seq + len(fragments)


@cbc_suites
@SETTINGS
@given(draw=st.data(), fragments=st.lists(st.binary(max_size=600), min_size=1, max_size=6))
def test_cbc_opens_reference_records_with_any_padding(suite, draw, fragments):
    keys = draw_keys(draw.draw, suite)
    seq = draw.draw(st.integers(0, SEQ_MAX - 10))
    ref = Ref(suite, keys)
    recs = []
    for i, f in enumerate(fragments):
        pad = draw.draw(st.sampled_from(ref.cbc_padding_choices(len(f))))
        iv = draw.draw(st.binary(min_size=16, max_size=16))
        recs.append(ref.seal(seq + i, APPLICATION_DATA, f, iv=iv, pad=pad))
    opener = make_opener(suite, keys, seq)
    buf = b"".join(recs)
    assert opener.open(buf) == ([(APPLICATION_DATA, b"".join(fragments))], len(buf))
    assert opener.sequence_number == seq + len(fragments)


@cbc_suites
@pytest.mark.parametrize("data_len", [0, 1, 15, 16, 17, 100, 255])
def test_cbc_every_padding_length_opens(suite, data_len):
    keys = fixed_keys(suite)
    ref = Ref(suite, keys)
    data = bytes(range(data_len))
    choices = ref.cbc_padding_choices(data_len)
    assert choices[-1] >= 240  # up to 255 bytes of padding (RFC 5246 6.2.3.2)
    for pad in choices:
        for content_type in (APPLICATION_DATA, HANDSHAKE):
            rec = ref.seal(7, content_type, data, pad=pad)
            assert make_opener(suite, keys, 7).open(rec) == ([(content_type, data)], len(rec)), pad


@cbc_suites
@pytest.mark.parametrize("base", [0, 320], ids=["short", "long"])
def test_cbc_every_padding_value_opens(suite, base):
    # Every padding value 0..255, so the MAC sits at every offset the constant-time check must
    # consider (for short records the candidates start at 0, for long ones 255 bytes back).
    keys = fixed_keys(suite)
    ref = Ref(suite, keys)
    opener = make_opener(suite, keys)
    mac_len = 0 if suite.etm else suite.mac_len
    for seq, pad in enumerate(range(256)):
        data_len = base + (-(base + mac_len + pad + 1)) % 16
        data = os.urandom(data_len)
        rec = ref.seal(seq, APPLICATION_DATA, data, pad=pad)
        assert opener.open(rec) == ([(APPLICATION_DATA, data)], len(rec)), pad
        if not suite.etm:
            # the same record with one byte of the MAC changed (a different byte each time) does not
            mac = bytearray(ref._mac((seq + 1).to_bytes(8, "big") + header(APPLICATION_DATA, data_len) + data))
            mac[pad % mac_len] ^= 0x40
            plain = data + bytes(mac) + bytes([pad]) * (pad + 1)
            bad = ref.seal_cbc(seq + 1, APPLICATION_DATA, b"", plain=plain)
            with pytest.raises(RecordError) as e:
                opener.open(bad)
            assert_bad_mac(e.value)
            assert opener.sequence_number == seq + 1


# --------------------------------------------------------------------------------------------
# (c) Fragmentation and partial buffers
# --------------------------------------------------------------------------------------------


@all_suites
@pytest.mark.parametrize("n", [0, 1, MAX_FRAGMENT, MAX_FRAGMENT + 1, 1 << 20])
def test_fragmentation(suite, n):
    keys = fixed_keys(suite)
    data = random.Random(n).randbytes(n)
    sealer = make_sealer(suite, keys)
    buf = sealer.seal(APPLICATION_DATA, data)
    recs = split_records(buf)
    count = -(-n // MAX_FRAGMENT)
    assert len(recs) == count
    assert sealer.sequence_number == count
    ref = Ref(suite, keys)
    for i, rec in enumerate(recs):
        assert len(rec) - 5 <= suite.max_length
        assert ref.open(i, rec) == (APPLICATION_DATA, data[i * MAX_FRAGMENT : (i + 1) * MAX_FRAGMENT])
    opener = make_opener(suite, keys)
    records, consumed = opener.open(buf)
    assert records == ([(APPLICATION_DATA, data)] if n else [])
    assert consumed == len(buf)
    assert opener.sequence_number == count


@all_suites
@pytest.mark.parametrize("max_fragment", [1, 7, 16, 1000, MAX_FRAGMENT - 1, MAX_FRAGMENT])
def test_max_fragment_is_honoured(suite, max_fragment):
    keys = fixed_keys(suite)
    data = os.urandom(3000)
    buf = make_sealer(suite, keys).seal(HANDSHAKE, data, max_fragment)
    recs = split_records(buf)
    fragments = [data[i : i + max_fragment] for i in range(0, len(data), max_fragment)]
    assert len(recs) == len(fragments)
    ref = Ref(suite, keys)
    for i, rec in enumerate(recs):
        assert ref.open(i, rec) == (HANDSHAKE, fragments[i])
    # Handshake records are not merged: each open() stops after one.
    opener = make_opener(suite, keys)
    pos = 0
    for f in fragments[:20]:
        records, consumed = opener.open(buf[pos:])
        assert records == [(HANDSHAKE, f)]
        pos += consumed
    assert pos == sum(len(r) for r in recs[:20])


@pytest.mark.parametrize("max_fragment", [0, MAX_FRAGMENT + 1, 1 << 20])
def test_bad_max_fragment_is_value_error(max_fragment):
    suite = AEAD_SUITES[0]
    sealer = make_sealer(suite, fixed_keys(suite))
    with pytest.raises(ValueError):
        sealer.seal(APPLICATION_DATA, b"data", max_fragment)
    assert sealer.sequence_number == 0


def test_max_fragment_constant():
    assert _core.MAX_FRAGMENT == MAX_FRAGMENT


@all_suites
def test_partial_buffers_return_only_complete_records(suite):
    keys = fixed_keys(suite)
    data = bytes(range(50))
    buf = make_sealer(suite, keys).seal(APPLICATION_DATA, data, 10)
    recs = split_records(buf)
    assert len(recs) == 5
    ends = [sum(len(r) for r in recs[: i + 1]) for i in range(5)]
    for cut in range(len(buf) + 1):
        opener = make_opener(suite, keys)
        records, consumed = opener.open(buf[:cut])
        k = sum(1 for e in ends if e <= cut)
        assert consumed == (ends[k - 1] if k else 0), cut
        assert records == ([(APPLICATION_DATA, data[: 10 * k])] if k else []), cut
        assert opener.sequence_number == k


@all_suites
def test_one_byte_at_a_time(suite):
    keys = fixed_keys(suite)
    data = os.urandom(2500)
    buf = make_sealer(suite, keys).seal(APPLICATION_DATA, data, 700)
    opener = make_opener(suite, keys)
    pending = b""
    got = []
    total = 0
    for i in range(len(buf)):
        pending += buf[i : i + 1]
        records, consumed = opener.open(pending)
        total += consumed
        pending = pending[consumed:]
        for content_type, plaintext in records:
            assert content_type == APPLICATION_DATA
            got.append(plaintext)
    assert pending == b""
    assert total == len(buf)
    assert b"".join(got) == data
    assert len(got) == 4  # one complete record at a time
    assert opener.sequence_number == 4


@all_suites
def test_trailing_partial_header_is_not_consumed(suite):
    keys = fixed_keys(suite)
    rec = make_sealer(suite, keys).seal(APPLICATION_DATA, b"hello")
    for extra in (b"\x17", b"\x17\x03\x03", b"\x17\x03\x03\x00"):
        assert make_opener(suite, keys).open(rec + extra) == ([(APPLICATION_DATA, b"hello")], len(rec))


# --------------------------------------------------------------------------------------------
# (d) Tampering
# --------------------------------------------------------------------------------------------


def expected_for_header_change(suite, rec, tampered):
    """The one right answer for a record whose header was changed (the body untouched)."""
    if tampered[0] != rec[0]:
        # TLS 1.2: the type is authenticated. TLS 1.3: protected records have outer type 23
        # (a single bit flip cannot make it 20), anything else is an unexpected record type.
        return "unexpected_message" if suite.tls13 else BAD_MAC
    if tampered[1:3] != rec[1:3]:
        return "protocol_version"
    length = int.from_bytes(tampered[3:5], "big")
    if length > suite.max_length:
        return "record_overflow"
    if length > len(rec) - 5:
        return INCOMPLETE
    return BAD_MAC


@all_suites
@pytest.mark.parametrize("data_len", [0, 13, 40])
def test_every_bit_flip_is_rejected(suite, data_len):
    keys = fixed_keys(suite)
    data = bytes(range(data_len))
    if data:
        rec = make_sealer(suite, keys, 3).seal(APPLICATION_DATA, data)
    else:  # seal() makes no record for no data; an empty record is still legal to receive
        rec = Ref(suite, keys).seal(3, APPLICATION_DATA, b"")
    opener = make_opener(suite, keys, 3)
    bad_mac_count = 0
    for pos in range(len(rec)):
        for bit in range(8):
            tampered = bytearray(rec)
            tampered[pos] ^= 1 << bit
            tampered = bytes(tampered)
            expected = expected_for_header_change(suite, rec, tampered) if pos < 5 else BAD_MAC
            try:
                records, consumed = opener.open(tampered)
            except RecordError as e:
                assert e.args[0] == expected, (pos, bit, e.args)
                assert isinstance(e.args[1], str) and e.args[1]
                if expected == BAD_MAC:
                    assert_bad_mac(e, (pos, bit))
                    bad_mac_count += 1
            else:
                assert expected == INCOMPLETE, (pos, bit, records)
                assert (records, consumed) == ([], 0)
            assert opener.sequence_number == 3
    assert bad_mac_count >= 8 * (len(rec) - 5)
    # The failures left the opener as it was.
    assert opener.open(rec) == ([(APPLICATION_DATA, data)], len(rec))


@cbc_suites
def test_every_wrong_padding_byte_is_rejected(suite):
    keys = fixed_keys(suite)
    ref = Ref(suite, keys)
    checked = 0
    for data_len in (0, 21):
        data = os.urandom(data_len)
        for pad in ref.cbc_padding_choices(data_len):
            if pad == 0:
                continue
            good = ref.seal(9, APPLICATION_DATA, data, pad=pad)
            assert make_opener(suite, keys, 9).open(good) == ([(APPLICATION_DATA, data)], len(good))
            for at in range(pad):  # every byte of the padding but the length byte itself
                bad = ref.seal(9, APPLICATION_DATA, data, pad=pad, bad_pad_at=at)
                with pytest.raises(RefError):
                    ref.open(9, bad)
                with pytest.raises(RecordError) as e:
                    make_opener(suite, keys, 9).open(bad)
                assert_bad_mac(e.value, (pad, at))
                checked += 1
    assert checked > 500


@cbc_suites
def test_padding_length_beyond_the_record_is_rejected(suite):
    keys = fixed_keys(suite)
    ref = Ref(suite, keys)
    mac_len = 0 if suite.etm else suite.mac_len
    for blocks in (2, 3, 4, 5):
        size = 16 * blocks
        if size < mac_len + 1:
            continue
        for pad in range(size - mac_len, 256):
            # a plaintext whose every byte is the padding value: the padding claims more bytes
            # than there are beside the MAC
            plain = bytes([pad]) * size
            rec = ref.seal_cbc(0, APPLICATION_DATA, b"", plain=plain)
            with pytest.raises(RecordError) as e:
                make_opener(suite, keys).open(rec)
            assert_bad_mac(e.value)


@all_suites
def test_every_truncation_is_rejected(suite):
    keys = fixed_keys(suite)
    rec = make_sealer(suite, keys).seal(APPLICATION_DATA, os.urandom(70))
    body = rec[5:]
    for cut in range(len(body)):
        # the header follows the cut: a complete, shorter record
        short = header(rec[0], cut) + body[:cut]
        with pytest.raises(RecordError) as e:
            make_opener(suite, keys).open(short)
        assert_bad_mac(e.value, cut)
        # the header unchanged: an incomplete record, nothing consumed
        assert make_opener(suite, keys).open(rec[: 5 + cut]) == ([], 0)
    # and one byte too many
    for extra in (b"\x00", b"\x01" * 16):
        longer = header(rec[0], len(body) + len(extra)) + body + extra
        with pytest.raises(RecordError) as e:
            make_opener(suite, keys).open(longer)
        assert_bad_mac(e.value)


@all_suites
def test_record_under_other_keys_is_rejected(suite):
    keys = fixed_keys(suite)
    rec = make_sealer(suite, keys).seal(APPLICATION_DATA, b"secret data")
    for field in ("key", "iv", "mac_key"):
        value = getattr(keys, field)
        if not value or (suite.etm and field == "key"):
            # (encrypt-then-MAC authenticates the ciphertext, not the key that made it: a wrong
            # AES key only shows, by chance, as bad padding)
            continue
        other = Keys(**{**keys.__dict__, field: bytes([value[0] ^ 1]) + value[1:]})
        with pytest.raises(RecordError) as e:
            make_opener(suite, other).open(rec)
        assert_bad_mac(e.value, field)
    if suite.cbc:
        other = Suite(suite.cipher, etm=not suite.etm)
        with pytest.raises(RecordError) as e:
            make_opener(other, keys).open(rec)
        assert_bad_mac(e.value)


# --------------------------------------------------------------------------------------------
# (e) Record header rules
# --------------------------------------------------------------------------------------------

WRONG_VERSIONS = [b"\x03\x01", b"\x03\x02", b"\x03\x04", b"\x03\x00", b"\x02\x03", b"\x00\x00", b"\xff\xff", b"\x13\x03"]


@all_suites
@pytest.mark.parametrize("version", WRONG_VERSIONS, ids=lambda v: v.hex())
def test_wrong_version_is_protocol_version(suite, version):
    keys = fixed_keys(suite)
    rec = make_sealer(suite, keys).seal(APPLICATION_DATA, b"data")
    wrong = rec[:1] + version + rec[3:]
    for buf in (wrong, wrong[:5], wrong[:5] + b"\x00"):  # also before the body has arrived
        opener = make_opener(suite, keys)
        with pytest.raises(RecordError) as e:
            opener.open(buf)
        assert e.value.args[0] == "protocol_version"
        assert opener.sequence_number == 0


@all_suites
def test_declared_length_over_the_limit_is_record_overflow_before_the_body(suite):
    keys = fixed_keys(suite)
    limit = suite.max_length
    assert limit == (2**14 + 256 if suite.tls13 else 2**14 + 2048)
    for length in (limit + 1, limit + 2, 0xFFFF):
        for content_type in (APPLICATION_DATA, HANDSHAKE):
            if suite.tls13 and content_type != APPLICATION_DATA:
                continue
            opener = make_opener(suite, keys)
            with pytest.raises(RecordError) as e:
                opener.open(header(content_type, length))
            assert e.value.args[0] == "record_overflow"
    # exactly at the limit, the record is merely incomplete
    assert make_opener(suite, keys).open(header(APPLICATION_DATA, limit)) == ([], 0)
    assert make_opener(suite, keys).open(header(APPLICATION_DATA, limit) + bytes(1000)) == ([], 0)


@tls12_suites
def test_tls12_plaintext_over_2_14_is_record_overflow(suite):
    keys = fixed_keys(suite)
    ref = Ref(suite, keys)
    full = os.urandom(MAX_FRAGMENT)
    rec = ref.seal(0, APPLICATION_DATA, full)
    assert make_opener(suite, keys).open(rec) == ([(APPLICATION_DATA, full)], len(rec))
    for extra in (1, 100):
        rec = ref.seal(0, APPLICATION_DATA, full + bytes(extra))
        assert len(rec) - 5 <= suite.max_length  # the header alone is acceptable
        opener = make_opener(suite, keys)
        with pytest.raises(RecordError) as e:
            opener.open(rec)
        assert e.value.args[0] == "record_overflow"
        assert opener.sequence_number == 0


@tls13_suites
def test_tls13_content_over_2_14_is_record_overflow(suite):
    keys = fixed_keys(suite)
    ref = Ref(suite, keys)
    full = os.urandom(MAX_FRAGMENT)
    rec = ref.seal(0, APPLICATION_DATA, full)
    assert make_opener(suite, keys).open(rec) == ([(APPLICATION_DATA, full)], len(rec))
    for extra in (1, 100):
        rec = ref.seal(0, APPLICATION_DATA, full + bytes([0x41] * extra))
        opener = make_opener(suite, keys)
        with pytest.raises(RecordError) as e:
            opener.open(rec)
        assert e.value.args[0] == "record_overflow"
        assert opener.sequence_number == 0


@tls13_suites
@pytest.mark.parametrize("padding", [1, 16, 200])
def test_tls13_inner_plaintext_over_2_14_plus_1_is_record_overflow(suite, padding):
    # RFC 8446 5.4: "The presence of padding does not change the overall record size
    # limitations: the full encoded TLSInnerPlaintext MUST NOT exceed 2^14 + 1 octets."
    # Content of 2^14 bytes, its type and `padding` zeros: within the 2^14 + 256 ciphertext
    # limit, but over the inner plaintext limit.
    keys = fixed_keys(suite)
    rec = Ref(suite, keys).seal(0, APPLICATION_DATA, bytes([0x42]) * MAX_FRAGMENT, padding=padding)
    assert len(rec) - 5 <= suite.max_length
    with pytest.raises(RecordError) as e:
        make_opener(suite, keys).open(rec)
    assert e.value.args[0] == "record_overflow"


@tls13_suites
@pytest.mark.parametrize("padding", [1, 100, 239])
def test_tls13_padding_is_stripped(suite, padding):
    keys = fixed_keys(suite)
    data = b"padded content"
    for content_type in (APPLICATION_DATA, HANDSHAKE, ALERT):
        rec = Ref(suite, keys).seal(0, content_type, data, padding=padding)
        assert make_opener(suite, keys).open(rec) == ([(content_type, data)], len(rec))


# --------------------------------------------------------------------------------------------
# (f) open() semantics
# --------------------------------------------------------------------------------------------


@all_suites
def test_consecutive_application_data_is_merged(suite):
    keys = fixed_keys(suite)
    sealer = make_sealer(suite, keys)
    parts = [b"first", b"", b"second", os.urandom(1000)]
    buf = b"".join(sealer.seal(APPLICATION_DATA, p) for p in parts if p) + sealer.seal(APPLICATION_DATA, b"x" * 40, 7)
    opener = make_opener(suite, keys)
    records, consumed = opener.open(buf)
    assert records == [(APPLICATION_DATA, b"".join(parts) + b"x" * 40)]
    assert consumed == len(buf)
    assert all(isinstance(p, bytes) for _, p in records)


@all_suites
def test_open_stops_after_a_non_application_record(suite):
    keys = fixed_keys(suite)
    sealer = make_sealer(suite, keys)
    r1 = sealer.seal(APPLICATION_DATA, b"before")
    r2 = sealer.seal(APPLICATION_DATA, b" the alert")
    alert = sealer.seal(ALERT, b"\x01\x00")  # close_notify
    r3 = sealer.seal(APPLICATION_DATA, b"after")
    buf = r1 + r2 + alert + r3
    opener = make_opener(suite, keys)
    records, consumed = opener.open(buf)
    assert records == [(APPLICATION_DATA, b"before the alert"), (ALERT, b"\x01\x00")]
    assert consumed == len(r1 + r2 + alert)
    assert opener.sequence_number == 3
    assert opener.open(buf[consumed:]) == ([(APPLICATION_DATA, b"after")], len(r3))


@all_suites
def test_handshake_record_first_is_returned_alone(suite):
    keys = fixed_keys(suite)
    sealer = make_sealer(suite, keys)
    hs = sealer.seal(HANDSHAKE, b"\x14\x00\x00\x0c" + bytes(12))
    app = sealer.seal(APPLICATION_DATA, b"app")
    opener = make_opener(suite, keys)
    assert opener.open(hs + app) == ([(HANDSHAKE, b"\x14\x00\x00\x0c" + bytes(12))], len(hs))
    assert opener.open(app) == ([(APPLICATION_DATA, b"app")], len(app))


def _corrupt(rec):
    return rec[:-1] + bytes([rec[-1] ^ 0x80])


@all_suites
@pytest.mark.parametrize("damage", ["bad_mac", "version", "overflow"])
def test_bad_record_after_good_ones_ends_the_batch(suite, damage):
    keys = fixed_keys(suite)
    sealer = make_sealer(suite, keys)
    good = [sealer.seal(APPLICATION_DATA, b"one"), sealer.seal(APPLICATION_DATA, b"two")]
    third = sealer.seal(APPLICATION_DATA, b"three")
    bad, alert = {
        "bad_mac": (_corrupt(third), BAD_MAC),
        "version": (third[:1] + b"\x03\x01" + third[3:], "protocol_version"),
        "overflow": (header(APPLICATION_DATA, suite.max_length + 1), "record_overflow"),
    }[damage]
    buf = b"".join(good) + bad + sealer.seal(APPLICATION_DATA, b"four")
    opener = make_opener(suite, keys)
    records, consumed = opener.open(buf)
    assert records == [(APPLICATION_DATA, b"onetwo")]
    assert consumed == len(b"".join(good))
    assert opener.sequence_number == 2
    with pytest.raises(RecordError) as e:
        opener.open(buf[consumed:])
    assert e.value.args[0] == alert
    assert opener.sequence_number == 2


@tls13_suites
def test_tls13_unprotected_change_cipher_spec_passes_through(suite):
    keys = fixed_keys(suite)
    sealer = make_sealer(suite, keys)
    ccs = record(CHANGE_CIPHER_SPEC, b"\x01")
    hs = sealer.seal(HANDSHAKE, b"encrypted extensions")
    opener = make_opener(suite, keys)
    assert opener.open(ccs + hs) == ([(CHANGE_CIPHER_SPEC, b"\x01")], len(ccs))
    assert opener.sequence_number == 0  # not a protected record: no sequence number used
    assert opener.open(hs) == ([(HANDSHAKE, b"encrypted extensions")], len(hs))
    # Between application data it ends the batch too; its body is the caller's to judge.
    app = sealer.seal(APPLICATION_DATA, b"data")
    odd_ccs = record(CHANGE_CIPHER_SPEC, b"\x01\x02")
    assert opener.open(app + odd_ccs + app) == ([(APPLICATION_DATA, b"data"), (CHANGE_CIPHER_SPEC, b"\x01\x02")], len(app + odd_ccs))
    assert opener.sequence_number == 2


@tls13_suites
def test_tls13_protected_change_cipher_spec_is_unexpected_message(suite):
    # RFC 8446 section 5: "An implementation which receives any other change_cipher_spec value
    # or which receives a protected change_cipher_spec record MUST abort the handshake with an
    # "unexpected_message" alert." A protected record with inner type 20 must not come out as
    # the same (20, body) pair as the unprotected compatibility record.
    keys = fixed_keys(suite)
    rec = Ref(suite, keys).seal(0, CHANGE_CIPHER_SPEC, b"\x01")
    with pytest.raises(RecordError) as e:
        make_opener(suite, keys).open(rec)
    assert e.value.args[0] == "unexpected_message"


@tls13_suites
@pytest.mark.parametrize("outer_type", [ALERT, HANDSHAKE, 24, 0, 255])
def test_tls13_other_outer_types_are_unexpected_message(suite, outer_type):
    keys = fixed_keys(suite)
    rec = make_sealer(suite, keys).seal(APPLICATION_DATA, b"data")
    with pytest.raises(RecordError) as e:
        make_opener(suite, keys).open(bytes([outer_type]) + rec[1:])
    assert e.value.args[0] == "unexpected_message"


@tls13_suites
@pytest.mark.parametrize("zeros", [0, 1, 5, 300])
def test_tls13_inner_plaintext_of_only_zeros_is_unexpected_message(suite, zeros):
    keys = fixed_keys(suite)
    ref = Ref(suite, keys)
    rec = ref.seal_inner(0, bytes(zeros))
    opener = make_opener(suite, keys)
    with pytest.raises(RecordError) as e:
        opener.open(rec)
    assert e.value.args[0] == "unexpected_message"
    assert opener.sequence_number == 0
    # After a good record: the batch ends, the next call raises.
    good = ref.seal(0, APPLICATION_DATA, b"ok")
    bad = ref.seal_inner(1, bytes(zeros))
    opener = make_opener(suite, keys)
    assert opener.open(good + bad) == ([(APPLICATION_DATA, b"ok")], len(good))
    with pytest.raises(RecordError) as e:
        opener.open(bad)
    assert e.value.args[0] == "unexpected_message"


@all_suites
def test_open_of_nothing(suite):
    keys = fixed_keys(suite)
    opener = make_opener(suite, keys)
    for buf in (b"", b"\x17", b"\x17\x03\x03\x00"):
        assert opener.open(buf) == ([], 0)


# --------------------------------------------------------------------------------------------
# (g) Sequence numbers
# --------------------------------------------------------------------------------------------


@all_suites
def test_sequence_numbers_advance_by_the_number_of_records(suite):
    keys = fixed_keys(suite)
    sealer, opener = make_sealer(suite, keys), make_opener(suite, keys)
    assert sealer.sequence_number == opener.sequence_number == 0
    expected = 0
    for n, max_fragment in [(0, MAX_FRAGMENT), (1, MAX_FRAGMENT), (100, 10), (40000, MAX_FRAGMENT), (5, 1)]:
        buf = sealer.seal(APPLICATION_DATA, bytes(n), max_fragment)
        expected += -(-n // max_fragment)
        assert sealer.sequence_number == expected
        opener.open(buf)
        assert opener.sequence_number == expected


@all_suites
def test_sealer_refuses_to_wrap_the_sequence_number(suite):
    keys = fixed_keys(suite)
    start = SEQ_MAX - 2  # 2**64 - 3: two more records, then the end
    sealer = make_sealer(suite, keys, start)
    with pytest.raises(RecordError) as e:
        sealer.seal(APPLICATION_DATA, bytes(30), 10)  # three records: refused whole
    assert e.value.args[0] == "internal_error"
    assert sealer.sequence_number == start
    buf = sealer.seal(APPLICATION_DATA, bytes(20), 10)
    assert sealer.sequence_number == SEQ_MAX
    recs = split_records(buf)
    assert len(recs) == 2
    ref = Ref(suite, keys)
    assert ref.open(start, recs[0]) == (APPLICATION_DATA, bytes(10))
    assert ref.open(start + 1, recs[1]) == (APPLICATION_DATA, bytes(10))
    for _ in range(2):
        with pytest.raises(RecordError) as e:
            sealer.seal(APPLICATION_DATA, b"x")
        assert e.value.args[0] == "internal_error"
        assert sealer.sequence_number == SEQ_MAX


@all_suites
def test_opener_refuses_to_wrap_the_sequence_number(suite):
    keys = fixed_keys(suite)
    start = SEQ_MAX - 2
    ref = Ref(suite, keys)
    recs = [ref.seal(start + i, APPLICATION_DATA, bytes([i]) * 5) for i in range(3)]
    opener = make_opener(suite, keys, start)
    records, consumed = opener.open(b"".join(recs))
    assert records == [(APPLICATION_DATA, bytes(5) + bytes([1]) * 5)]
    assert consumed == len(recs[0]) + len(recs[1])
    assert opener.sequence_number == SEQ_MAX
    with pytest.raises(RecordError) as e:
        opener.open(recs[2])
    assert e.value.args[0] == "internal_error"
    assert opener.sequence_number == SEQ_MAX
    # An opener created at the last value opens nothing either.
    with pytest.raises(RecordError) as e:
        make_opener(suite, keys, SEQ_MAX).open(recs[2])
    assert e.value.args[0] == "internal_error"


@all_suites
def test_no_replay_no_reordering(suite):
    keys = fixed_keys(suite)
    sealer = make_sealer(suite, keys)
    r0, r1, r2 = (sealer.seal(APPLICATION_DATA, b"record %d" % i) for i in range(3))
    opener = make_opener(suite, keys)
    assert opener.open(r0) == ([(APPLICATION_DATA, b"record 0")], len(r0))
    for wrong in (r0, r2):  # replayed, reordered
        with pytest.raises(RecordError) as e:
            opener.open(wrong)
        assert_bad_mac(e.value)
    assert opener.open(r1 + r2) == ([(APPLICATION_DATA, b"record 1record 2")], len(r1 + r2))
    for seq in (1, 2, 5, 2**32, SEQ_MAX - 1):
        with pytest.raises(RecordError) as e:
            make_opener(suite, keys, seq).open(r0)
        assert_bad_mac(e.value)


@pytest.mark.parametrize("seq", [-1, 2**64])
def test_sequence_number_out_of_range(seq):
    suite = AEAD_SUITES[0]
    keys = fixed_keys(suite)
    with pytest.raises((OverflowError, ValueError)):
        make_sealer(suite, keys, seq)
    with pytest.raises((OverflowError, ValueError)):
        make_opener(suite, keys, seq)


# --------------------------------------------------------------------------------------------
# (h) Buffer types
# --------------------------------------------------------------------------------------------


@all_suites
def test_bytearray_and_memoryview_inputs(suite):
    keys = fixed_keys(suite)
    data = os.urandom(20000)
    for wrap in (bytes, bytearray, memoryview, lambda b: memoryview(bytearray(b"xx" + b + b"yy"))[2:-2]):
        sealer = make_sealer(suite, keys)
        buf = sealer.seal(APPLICATION_DATA, wrap(data))
        assert sealer.sequence_number == 2
        if not suite.cbc:  # deterministic: the same bytes as from bytes input
            assert buf == make_sealer(suite, keys).seal(APPLICATION_DATA, data)
        for wrap_in in (bytes, bytearray, memoryview):
            opener = make_opener(suite, keys)
            assert opener.open(wrap_in(buf)) == ([(APPLICATION_DATA, data)], len(buf))
        opener = make_opener(suite, keys)
        padded = bytearray(b"..." + buf + b"...")
        assert opener.open(memoryview(padded)[3:-3]) == ([(APPLICATION_DATA, data)], len(buf))


def test_threads_each_with_their_own_objects():
    # The GIL is released around the crypto: concurrent connections must not disturb each other.
    import threading

    errors = []

    def work(suite, tag):
        try:
            keys = fixed_keys(suite, tag)
            sealer, opener = make_sealer(suite, keys), make_opener(suite, keys)
            for i in range(20):
                data = hashlib.shake_256(tag + bytes([i])).digest(70000)
                buf = sealer.seal(APPLICATION_DATA, data)
                assert opener.open(buf) == ([(APPLICATION_DATA, data)], len(buf))
            assert sealer.sequence_number == opener.sequence_number == 20 * 5
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [
        threading.Thread(target=work, args=(suite, b"thread %d" % i))
        for i, suite in enumerate(ALL_SUITES[:: len(ALL_SUITES) // 6] * 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("value", [16, "text", None, 1.5])
def test_non_buffer_data_is_type_error(value):
    # The data argument is a Buffer (bytes, bytearray, memoryview). An int must not be taken
    # for bytes(int), i.e. that many zero bytes.
    suite = AEAD_SUITES[0]
    keys = fixed_keys(suite)
    sealer = make_sealer(suite, keys)
    with pytest.raises(TypeError):
        sealer.seal(APPLICATION_DATA, value)
    assert sealer.sequence_number == 0
    with pytest.raises(TypeError):
        make_opener(suite, keys).open(value)


# --------------------------------------------------------------------------------------------
# (i) Constructor arguments
# --------------------------------------------------------------------------------------------


def _bad_arguments():
    k16, k32 = bytes(16), bytes(32)
    iv4, iv12 = bytes(4), bytes(12)
    cases = []
    for cipher, key_len in AEAD_KEY_LEN.items():
        iv = iv4 if cipher != "CHACHA20_POLY1305" else iv12
        for n in (0, 15, 17, 24, 31, 33, 64):
            if n != key_len:
                cases.append((f"{cipher}-key{n}", (cipher, bytes(n), iv), {}))
        cases.append((f"{cipher}-mac-key", (cipher, bytes(key_len), iv, bytes(20)), {}))
        cases.append((f"{cipher}-etm", (cipher, bytes(key_len), iv), {"encrypt_then_mac": True}))
        for tls13 in (False, True):
            good_iv = 12 if (tls13 or cipher == "CHACHA20_POLY1305") else 4
            for n in (0, 4, 8, 12, 16):
                if n != good_iv:
                    cases.append((f"{cipher}-tls13={tls13}-iv{n}", (cipher, bytes(key_len), bytes(n)), {"tls13": tls13}))
    for cipher in CBC_CIPHERS:
        key_len = 16 if "128" in cipher else 32
        mac_len = CBC_MAC[cipher.rsplit("_", 1)[1]][1]
        good = (cipher, bytes(key_len), b"", bytes(mac_len))
        cases.append((f"{cipher}-tls13", good, {"tls13": True}))
        cases.append((f"{cipher}-iv16", (cipher, bytes(key_len), bytes(16), bytes(mac_len)), {}))
        cases.append((f"{cipher}-key-len", (cipher, bytes(48 - key_len), b"", bytes(mac_len)), {}))
        cases.append((f"{cipher}-mac-len", (cipher, bytes(key_len), b"", bytes(mac_len + 1)), {}))
        cases.append((f"{cipher}-no-mac-key", (cipher, bytes(key_len), b""), {}))
    for cipher in ["AES_192_GCM", "aes_128_gcm", "AES_128_CCM", "AES_128_CBC_MD5", "AES_192_CBC_SHA",
                   "AES_128_CBC", "RC4_128_SHA", "3DES_EDE_CBC_SHA", "CHACHA20", ""]:
        cases.append((f"unknown-{cipher}", (cipher, k16, iv4, bytes(20)), {}))
        cases.append((f"unknown13-{cipher}", (cipher, k32, iv12), {"tls13": True}))
    return cases


BAD_ARGUMENTS = _bad_arguments()


@pytest.mark.parametrize("cls", [RecordSealer, RecordOpener], ids=lambda c: c.__name__)
@pytest.mark.parametrize("args, kwargs", [c[1:] for c in BAD_ARGUMENTS], ids=[c[0] for c in BAD_ARGUMENTS])
def test_bad_constructor_arguments_are_value_error(cls, args, kwargs):
    with pytest.raises(ValueError):
        cls(*args, **kwargs)


@all_suites
def test_good_constructor_arguments(suite):
    keys = fixed_keys(suite)
    for cls in (RecordSealer, RecordOpener):
        obj = cls(suite.cipher, keys.key, keys.iv, keys.mac_key, tls13=suite.tls13, encrypt_then_mac=suite.etm)
        assert obj.sequence_number == 0


def test_record_error_is_a_value_error_with_alert_and_message():
    assert issubclass(RecordError, ValueError)
    suite = AEAD_SUITES[0]
    keys = fixed_keys(suite)
    rec = make_sealer(suite, keys).seal(APPLICATION_DATA, b"x")
    with pytest.raises(ValueError) as e:
        make_opener(suite, keys).open(_corrupt(rec))
    assert isinstance(e.value, RecordError)
    assert len(e.value.args) == 2
    assert_bad_mac(e.value)
    assert isinstance(e.value.args[1], str) and e.value.args[1]


# --------------------------------------------------------------------------------------------
# The engine's calls: sealing into and opening inside a caller's buffer
# --------------------------------------------------------------------------------------------


@all_suites
def test_seal_into_writes_what_seal_returns(suite):
    """seal_into at an offset of a bytearray gives the records seal gives (CBC IVs are random:
    compared by opening), sealed_len says how many bytes, and the rest of the buffer is
    untouched."""
    keys = fixed_keys(suite)
    data = bytes(range(256)) * 100  # two records
    out = bytearray(b"\xee" * (7 + make_sealer(suite, keys).sealed_len(len(data)) + 9))
    end = make_sealer(suite, keys, 5).seal_into(23, memoryview(data), out, 7)
    assert end == len(out) - 9 and out[:7] == b"\xee" * 7 and out[end:] == b"\xee" * 9
    if not suite.cbc:
        assert bytes(out[7:end]) == make_sealer(suite, keys, 5).seal(23, data)
    assert make_opener(suite, keys, 5).open(bytes(out[7:end])) == ([(23, data)], end - 7)
    with pytest.raises(ValueError):
        make_sealer(suite, keys).seal_into(23, data, bytearray(end - 8))


@all_suites
def test_open_in_place_packs_application_data_and_stops_at_control_records(suite):
    """Three application data records, an alert, one more: the first call opens the three into
    one run where the first record's plaintext lay, then the alert behind it, and stops; `want`
    stops it after the record that reaches it; the region's offsets are honoured."""
    keys = fixed_keys(suite)
    sealer = make_sealer(suite, keys)
    pieces = [b"a" * 1000, b"b" * 16384, b"c" * 5]
    wire = b"".join(sealer.seal(23, p) for p in pieces) + sealer.seal(21, b"\x01\x00") + sealer.seal(23, b"after")
    buf = bytearray(b"\x00" * 3 + wire + b"\x16\x03")  # the tail: an incomplete header

    opener = make_opener(suite, keys)
    app_start, app_end, content_type, end, used = opener.open_in_place(buf, 3, len(buf), 1 << 30)
    assert bytes(buf[app_start:app_end]) == b"".join(pieces)
    explicit_nonce = 8 if suite.cipher.endswith("GCM") and not suite.tls13 else 0  # RFC 5288 3
    assert app_start == 3 + 5 + explicit_nonce
    assert (content_type, bytes(buf[app_end:end])) == (21, b"\x01\x00")
    rest = 3 + used
    assert opener.open_in_place(buf, rest, len(buf), 1 << 30)[4] == len(buf) - 2 - rest
    assert opener.sequence_number == 5

    buf = bytearray(wire)  # opened in place above: the records again
    opener = make_opener(suite, keys)
    app_start, app_end, content_type, end, used = opener.open_in_place(buf, 0, len(buf), 1001)
    assert bytes(buf[app_start:app_end]) == b"".join(pieces)[: app_end - app_start] and content_type == 0
    assert app_end - app_start == 1000 + 16384 and opener.sequence_number == 2
