"""Property-based fuzzing of everything a peer controls (issue 12).

- The sans-I/O core in both roles: a fresh client and server Connection run a real handshake
  (one of several scenarios: ECDHE-RSA, RSA key exchange, ECDHE-ECDSA, CBC with
  encrypt-then-MAC or MAC-then-encrypt, client certificates, resumption with a ticket, a client
  that does not validate the server's chain) up to one
  flight, which is mutated on its way (bit flips, truncation, a length field overwritten,
  bytes inserted or cut, handshake messages refragmented across records, records of
  zero length or unknown type inserted, a record duplicated), and then the pair runs on. Every
  call must either make progress or raise TLSAlert/PeerAlert, the core's own failures; after a
  failure the connection stays failed.
- Path validation: a real chain's leaf or intermediate DER mutated the same way through
  x509.verify_chain, which may only accept or raise CertificateVerifyError.
- The Rust record openers: random buffers, and real records mutated, into
  RecordOpener.open_in_place and open for every cipher, which may only return or raise
  RecordError.

Hypothesis runs derandomized (the same examples every run: the seed is the code), with
FERROTLS_FUZZ_EXAMPLES examples a test (default 120, which keeps CI within seconds);
FERROTLS_FUZZ_EXAMPLES=100000 FERROTLS_FUZZ_RANDOM=1 is the long, randomized run (see
fuzz/README.md). A failure found that way is added below as an @example.
"""

from __future__ import annotations

import os
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ferrotls import _core
from ferrotls.protocol import TLS12_SUITES, Connection, PeerAlert, TLSAlert
from ferrotls.x509 import TrustStore, verify_chain
from ferrotls.x509.path import CertificateVerifyError

EXAMPLES = int(os.environ.get("FERROTLS_FUZZ_EXAMPLES", "120"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=not os.environ.get("FERROTLS_FUZZ_RANDOM"),
    deadline=None,  # a handshake with RSA is milliseconds; bounded time is checked by the pair's round limit
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    database=None,
)
BY_NAME = {s.openssl_name: s for s in TLS12_SUITES}
HANDSHAKE, CCS, ALERT, APPDATA = 22, 20, 21, 23

# ------------------------------------------------------------------------------------------
# Mutations
# ------------------------------------------------------------------------------------------


def records(data: bytes) -> list[tuple[int, bytes]]:
    """The records of `data` as (type, payload); a malformed tail becomes one raw record."""
    out, pos = [], 0
    while pos + 5 <= len(data):
        length = struct.unpack_from("!H", data, pos + 3)[0]
        if pos + 5 + length > len(data):
            break
        out.append((data[pos], data[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    if pos < len(data):
        out.append((-1, data[pos:]))
    return out


def frame(content_type: int, payload: bytes) -> bytes:
    if content_type == -1:
        return payload
    return struct.pack("!BHH", content_type, 0x0303, len(payload)) + payload


@st.composite
def mutations(draw):
    """A function bytes -> bytes, one of the mutations the module docstring names."""
    kind = draw(st.sampled_from(["flip", "truncate", "length", "insert", "cut", "refragment", "odd-record", "duplicate"]))
    if kind == "flip":
        flips = draw(st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), min_size=1, max_size=4))
        return kind, lambda data: bytes(_flip(bytearray(data), flips))
    if kind == "truncate":
        cut = draw(st.integers(0, 1 << 20))
        return kind, lambda data: data[: cut % (len(data) + 1)]
    if kind == "length":
        at, value = draw(st.integers(0, 1 << 20)), draw(st.sampled_from([0, 1, 0xFF, 0x100, 0x3FFF, 0x4000, 0x4801, 0xFFFF]))
        return kind, lambda data: _put16(data, at, value)
    if kind == "insert":
        at, extra = draw(st.integers(0, 1 << 20)), draw(st.binary(min_size=1, max_size=40))
        return kind, lambda data: data[: at % (len(data) + 1)] + extra + data[at % (len(data) + 1) :]
    if kind == "cut":
        at, size = draw(st.integers(0, 1 << 20)), draw(st.integers(1, 64))
        return kind, lambda data: data[: at % (len(data) + 1)] + data[at % (len(data) + 1) + size :]
    if kind == "refragment":
        sizes = draw(st.lists(st.integers(0, 300), min_size=1, max_size=8))
        return kind, lambda data: _refragment(data, sizes)
    if kind == "odd-record":
        at, content_type = draw(st.integers(0, 64)), draw(st.sampled_from([0, 19, ALERT, HANDSHAKE, APPDATA, 24, 255]))
        payload = draw(st.sampled_from([b"", b"\x01", b"\x02\x28", b"\x01\x00", bytes(20)]))
        return kind, lambda data: _insert_record(data, at, content_type, payload)
    at = draw(st.integers(0, 64))
    return kind, lambda data: _duplicate_record(data, at)


def _flip(data: bytearray, flips) -> bytearray:
    for pos, bit in flips:
        if data:
            data[pos % len(data)] ^= 1 << bit
    return data


def _put16(data: bytes, at: int, value: int) -> bytes:
    if len(data) < 2:
        return data
    at %= len(data) - 1
    return data[:at] + struct.pack("!H", value) + data[at + 2 :]


def _refragment(data: bytes, sizes) -> bytes:
    """The handshake records' payloads cut into records of the given sizes in turn (plaintext
    ones only: a protected record cannot be resized)."""
    out, stream, i = [], b"", 0
    for content_type, payload in records(data):
        if content_type != HANDSHAKE or stream is None:
            out.append(frame(content_type, payload))
            continue
        stream += payload
    while stream:
        size = sizes[i % len(sizes)] or 1
        out.insert(len(out) if i else 0, frame(HANDSHAKE, stream[:size]))
        stream, i = stream[size:], i + 1
    return b"".join(out)


def _insert_record(data: bytes, at: int, content_type: int, payload: bytes) -> bytes:
    recs = records(data)
    at %= len(recs) + 1
    return b"".join(frame(*r) for r in recs[:at]) + frame(content_type, payload) + b"".join(frame(*r) for r in recs[at:])


def _duplicate_record(data: bytes, at: int) -> bytes:
    recs = records(data)
    if not recs:
        return data
    at %= len(recs)
    return b"".join(frame(*r) for r in recs[: at + 1]) + frame(*recs[at]) + b"".join(frame(*r) for r in recs[at + 1 :])


# ------------------------------------------------------------------------------------------
# The sans-I/O core
# ------------------------------------------------------------------------------------------

SCENARIOS = ["ecdhe-rsa", "rsa-kx", "ecdhe-ecdsa", "cbc-etm", "cbc-mte", "client-auth", "resumption", "unverified"]


def scenario_pair(pki, name: str, tickets: dict):
    client_kw, server_kw = {}, {}
    if name == "rsa-kx":
        client_kw["cipher_suites"] = [BY_NAME["AES128-GCM-SHA256"]]
    elif name == "ecdhe-ecdsa":
        client_kw["cipher_suites"] = [BY_NAME["ECDHE-ECDSA-AES128-GCM-SHA256"]]
        server_kw["credentials"] = [pki.server_ec.credential]
    elif name in ("cbc-etm", "cbc-mte"):
        client_kw["cipher_suites"] = [BY_NAME["ECDHE-RSA-AES128-SHA256"]]
        client_kw["encrypt_then_mac"] = name == "cbc-etm"
    elif name == "unverified":  # the client reads the server's key without validating the chain
        client_kw["verify_peer"] = False
    elif name == "client-auth":
        client_kw["credentials"] = [pki.client.credential]
        server_kw.update(verify_peer=True, require_peer_certificate=True, trust_store=pki.client_trust_store)
    server_config = pki.server_config(ticket_keys=tickets.get("keys"), **server_kw) if name == "resumption" \
        else pki.server_config(**server_kw)
    client = Connection(pki.client_config(**client_kw), True, server_hostname="localhost",
                        session=tickets.get("session") if name == "resumption" else None)
    return client, Connection(server_config, False)


@pytest.fixture(scope="module")
def tickets(pki):
    """A ticket-bearing session and the server keys that made it, for the resumption scenario."""
    config = pki.server_config()
    client = Connection(pki.client_config(), True, server_hostname="localhost")
    server = Connection(config, False)
    client.start_handshake()
    for _ in range(10):
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
    assert client.handshake_complete and client.session is not None
    return {"keys": config.ticket_keys, "session": client.session}


def step(conn: Connection, data: bytes) -> bool:
    """Feeds data to conn; True if it made progress, False if it failed with a TLS failure.
    Anything else propagates, which is the failure this module looks for."""
    try:
        conn.receive_data(data)
        return True
    except (TLSAlert, PeerAlert):
        assert conn.failed is not None
        with pytest.raises((TLSAlert, PeerAlert)):
            conn.receive_data(b"")
        conn.data_to_send()  # the alert, or nothing
        return False


@SETTINGS
@given(scenario=st.sampled_from(SCENARIOS), flight=st.integers(0, 5), mutation=mutations())
@example(scenario="ecdhe-rsa", flight=0, mutation=("length", lambda data: _put16(data, 3, 0xFFFF)))
def test_mutated_flight(pki, tickets, scenario, flight, mutation):
    """Flights 0-3 are the handshake's (client, server, client, server), 4 application data
    from the client, 5 its close_notify."""
    client, server = scenario_pair(pki, scenario, tickets)
    client.start_handshake()
    _, mutate = mutation
    sides = [(client, server), (server, client)]
    for n in range(12):
        sender, receiver = sides[n % 2]
        if n == 4 and client.handshake_complete:
            client.send_application_data(b"GET / HTTP/1.1\r\n\r\n" * 3)
        if n == 5 and client.handshake_complete:
            client.close()
        data = sender.data_to_send()
        if n == flight:
            data = mutate(data)
        if not data:
            continue
        if not step(receiver, data):
            # The failed side's alert reaches the sender, which must take it as a TLS failure.
            step(sender, receiver.data_to_send())
            return


# ------------------------------------------------------------------------------------------
# Path validation
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain(pki):
    """(leaf DER, intermediate DER, trust store) of a real three-certificate chain."""
    import trustme

    root = trustme.CA()
    inter = root.create_child_ca()
    leaf = inter.issue_cert("fuzz.example")
    store = TrustStore()
    store.add_pem(root.cert_pem.bytes().decode())

    def der(pem: bytes) -> bytes:
        from cryptography import x509

        return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)

    leaf_der, inter_der = der(leaf.cert_chain_pems[0].bytes()), der(inter.cert_pem.bytes())
    assert len(verify_chain(leaf_der, [inter_der], store, server_name="fuzz.example")) == 3
    return leaf_der, inter_der, store


def _year_zero(der: bytes) -> bytes:
    """notAfter's GeneralizedTime 3000-01-01 made year 0000 (a flip a long run found)."""
    return der.replace(b"\x18\x0f30000101000000Z", b"\x18\x0f00000101000000Z", 1)


@SETTINGS
@given(which=st.sampled_from(["leaf", "intermediate"]), mutation=mutations())
# Found by a long run: a validity time of year 0 is well-formed DER that Python's datetime
# cannot hold; it raised ValueError out of verify_chain.
@example(which="leaf", mutation=("year-0", _year_zero))
@example(which="intermediate", mutation=("year-0", _year_zero))
def test_mutated_certificate_through_path_validation(chain, which, mutation):
    leaf, inter, store = chain
    _, mutate = mutation
    if which == "leaf":
        leaf = mutate(leaf)
    else:
        inter = mutate(inter)
    try:
        verify_chain(leaf, [inter], store, server_name="fuzz.example")
    except CertificateVerifyError:
        pass


# ------------------------------------------------------------------------------------------
# The Rust record openers
# ------------------------------------------------------------------------------------------

CIPHERS = [
    ("AES_128_GCM", 16, 4, 0), ("AES_256_GCM", 32, 4, 0), ("CHACHA20_POLY1305", 32, 12, 0),
    ("AES_128_CBC_SHA", 16, 0, 20), ("AES_128_CBC_SHA256", 16, 0, 32), ("AES_256_CBC_SHA384", 32, 0, 48),
]


def _pair_of(cipher, etm: bool, tls13: bool):
    name, key_len, iv_len, mac_len = cipher
    if tls13 and mac_len == 0:
        iv_len = 12  # RFC 8446 5.3: the whole nonce is the IV
    args = (name, bytes(range(key_len)), bytes(iv_len), bytes(mac_len))
    kwargs = {"tls13": tls13} if mac_len == 0 else {"encrypt_then_mac": etm}
    return _core.RecordSealer(*args, **kwargs), _core.RecordOpener(*args, **kwargs)


@SETTINGS
@given(cipher=st.sampled_from(CIPHERS), variant=st.booleans(), data=st.binary(max_size=20000),
       want=st.integers(0, 1 << 20))
def test_random_buffers_into_the_openers(cipher, variant, data, want):
    _, opener = _pair_of(cipher, etm=variant, tls13=variant)
    buf = bytearray(data)
    try:
        app_start, app_end, control, end, used = opener.open_in_place(buf, 0, len(buf), want)
        assert 0 <= app_start <= app_end <= end <= len(buf) and used <= len(buf)
    except _core.RecordError:
        pass


@SETTINGS
@given(cipher=st.sampled_from(CIPHERS), variant=st.booleans(), plaintext=st.binary(max_size=40000),
       content_type=st.sampled_from([ALERT, HANDSHAKE, APPDATA]), mutation=mutations())
# Found by a long run: a TLS 1.3 record whose outer type is flipped to change_cipher_spec comes
# back unopened, as the compatibility CCS it claims to be (RFC 8446 5); the caller refuses it.
@example(cipher=CIPHERS[0], variant=True, plaintext=b"\x00", content_type=ALERT,
         mutation=("flip", lambda data: bytes([data[0] ^ 3]) + data[1:]))
def test_mutated_records_into_the_openers(cipher, variant, plaintext, content_type, mutation):
    sealer, opener = _pair_of(cipher, etm=variant, tls13=variant)
    _, mutate = mutation
    sealed = mutate(sealer.seal(content_type, plaintext))
    try:
        items, used = opener.open(sealed)
        assert used <= len(sealed)
        for opened_type, data in items:
            assert len(data) <= len(plaintext) or (variant and opened_type == CCS), (opened_type, data)
    except _core.RecordError:
        pass
