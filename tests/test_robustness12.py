"""Robustness of the TLS 1.2 protocol core against broken, hostile and stalled peers.

Mostly in memory: a client and a server Connection wired directly, the bytes between them
captured, split into records and handshake messages, and tampered with. What each side sends is
decoded here independently (the record framing, and records after its ChangeCipherSpec opened
with its own write keys taken from the key block), so an alert is checked on the wire, not only
as an exception. The wire formats are written out from RFC 5246 rather than taken from
ferrotls.protocol.messages.

The rules (RFC 5246 section 7.2.2, RFC 7627, RFC 5746, RFC 5077):
  - a malformed message body -> decode_error; a message that is not expected now ->
    unexpected_message; a record that fails its MAC/tag -> bad_record_mac; a record too long ->
    record_overflow; every fatal alert is queued in data_to_send before TLSAlert is raised;
  - a fatal alert from the peer raises PeerAlert and sends nothing back;
  - close_notify is answered with close_notify; renegotiation is refused with a warning
    no_renegotiation and the connection carries on.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ferrotls import _core
from ferrotls.engine import TLSError
from ferrotls.protocol import (
    TLS12_SUITES,
    AlertDescription,
    AlertReceived,
    ApplicationData,
    Connection,
    ConnectionClosed,
    HandshakeComplete,
    PeerAlert,
    Session,
    TLSAlert,
    TLSConfig,
)

AD = AlertDescription

# Record content types (RFC 5246 6.2.1).
CCS, ALERT, HANDSHAKE, APPDATA = 20, 21, 22, 23
# Handshake types (RFC 5246 7.4, RFC 5077 3.3).
HELLO_REQUEST, CLIENT_HELLO, SERVER_HELLO, NEW_SESSION_TICKET = 0, 1, 2, 4
CERTIFICATE, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST, SERVER_HELLO_DONE = 11, 12, 13, 14
CERTIFICATE_VERIFY, CLIENT_KEY_EXCHANGE, FINISHED = 15, 16, 20
TYPE_NAMES = {
    HELLO_REQUEST: "HelloRequest", CLIENT_HELLO: "ClientHello", SERVER_HELLO: "ServerHello",
    NEW_SESSION_TICKET: "NewSessionTicket", CERTIFICATE: "Certificate", SERVER_KEY_EXCHANGE: "ServerKeyExchange",
    CERTIFICATE_REQUEST: "CertificateRequest", SERVER_HELLO_DONE: "ServerHelloDone",
    CERTIFICATE_VERIFY: "CertificateVerify", CLIENT_KEY_EXCHANGE: "ClientKeyExchange", FINISHED: "Finished",
    8: "EncryptedExtensions(1.3)", 99: "type99",
}
# Extension types.
EXT_SERVER_NAME, EXT_SIGNATURE_ALGORITHMS, EXT_PADDING = 0, 13, 21
EXT_ETM, EXT_EMS, EXT_SESSION_TICKET, EXT_SUPPORTED_VERSIONS, EXT_RENEGOTIATION_INFO = 22, 23, 35, 43, 0xFF01
TLS10, TLS11, TLS12, TLS13 = 0x0301, 0x0302, 0x0303, 0x0304
MAX_FRAGMENT = 1 << 14
BY_NAME = {s.openssl_name: s for s in TLS12_SUITES}
GCM128 = BY_NAME["AES128-GCM-SHA256"]
# RSA key exchange (RFC 5246 7.4.7.1): no ServerKeyExchange, the premaster encrypted to the
# server's RSA key.
RSA_KX = [s for s in TLS12_SUITES if s.kx == "RSA"]


# --------------------------------------------------------------------------------------------
# Wire format, from RFC 5246
# --------------------------------------------------------------------------------------------


def record(content_type: int, payload: bytes, version: int = TLS12) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def vec(data: bytes, len_size: int) -> bytes:
    return len(data).to_bytes(len_size, "big") + data


def extension(ext_type: int, data: bytes = b"") -> bytes:
    return struct.pack("!H", ext_type) + vec(data, 2)


def split_records(data: bytes):
    """[(content type, version, payload)] of complete plaintext-framed records."""
    out, pos = [], 0
    while pos < len(data):
        assert len(data) - pos >= 5, "partial record header"
        content_type, version, length = struct.unpack("!BHH", data[pos : pos + 5])
        assert len(data) - pos - 5 >= length, "partial record"
        out.append((content_type, version, data[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    return out


def split_records_loose(data: bytes):
    """Record boundaries by the header lengths (for protected records too)."""
    out, pos = [], 0
    while pos < len(data):
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        out.append(data[pos : pos + 5 + length])
        pos += 5 + length
    return out


def split_handshake(payload: bytes):
    """[(msg_type, body)] of the complete handshake messages in a record payload."""
    out, pos = [], 0
    while pos < len(payload):
        length = int.from_bytes(payload[pos + 1 : pos + 4], "big")
        assert pos + 4 + length <= len(payload), "message continues in another record"
        out.append((payload[pos], payload[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return out


def client_hello_body(version=TLS12, suites=(GCM128.code,), extensions=(), session_id=b"", compression=b"\x00",
                      with_extensions=True) -> bytes:
    body = struct.pack("!H", version) + os.urandom(32) + vec(session_id, 1)
    body += vec(b"".join(struct.pack("!H", s) for s in suites), 2) + vec(compression, 1)
    if with_extensions:
        body += vec(b"".join(extensions), 2)
    return body


SIGALGS = extension(EXT_SIGNATURE_ALGORITHMS, vec(struct.pack("!HHH", 0x0804, 0x0401, 0x0403), 2))
RENEGOTIATION_INFO = extension(EXT_RENEGOTIATION_INFO, b"\x00")


def parse_server_hello(body: bytes):
    """(fixed part up to the compression method, [(type, data)] extensions, trailing bytes)."""
    sid_len = body[34]
    fixed_end = 35 + sid_len + 3
    fixed = body[:fixed_end]
    exts, pos = [], fixed_end
    if pos < len(body):
        block_len = int.from_bytes(body[pos : pos + 2], "big")
        block, pos = body[pos + 2 : pos + 2 + block_len], pos + 2 + block_len
        i = 0
        while i < len(block):
            ext_type, length = struct.unpack("!HH", block[i : i + 4])
            exts.append((ext_type, block[i + 4 : i + 4 + length]))
            i += 4 + length
    return fixed, exts, body[pos:]


def build_server_hello(fixed: bytes, exts) -> bytes:
    return fixed + vec(b"".join(extension(t, d) for t, d in exts), 2)


def alert_records(records):
    return [tuple(payload) for content_type, payload in records if content_type == ALERT]


# --------------------------------------------------------------------------------------------
# Keys: each direction's record protection from the key block (RFC 5246 6.3)
# --------------------------------------------------------------------------------------------


def direction_keys(conn: Connection, writer_is_client: bool):
    suite = conn.suite
    block = _core.key_block(suite.prf_hash, conn.master_secret, conn.server_random, conn.client_random,
                            suite.key_block_len)
    m, k, n = suite.mac_key_len, suite.key_len, suite.fixed_iv_len
    client_mac, server_mac = block[:m], block[m : 2 * m]
    client_key, server_key = block[2 * m : 2 * m + k], block[2 * m + k : 2 * m + 2 * k]
    client_iv, server_iv = block[2 * m + 2 * k : 2 * m + 2 * k + n], block[2 * m + 2 * k + n : 2 * m + 2 * k + 2 * n]
    if writer_is_client:
        return suite.cipher, client_key, client_iv, client_mac
    return suite.cipher, server_key, server_iv, server_mac


def _etm(conn: Connection) -> bool:
    return conn.encrypt_then_mac and conn.suite.is_cbc


def sealer_as(conn: Connection, sequence_number: int = 0) -> _core.RecordSealer:
    """Seals records as `conn` would (its write direction)."""
    return _core.RecordSealer(*direction_keys(conn, conn.is_client), encrypt_then_mac=_etm(conn),
                              sequence_number=sequence_number)


def opener_of(conn: Connection, sequence_number: int = 0) -> _core.RecordOpener:
    """Opens the records `conn` writes."""
    return _core.RecordOpener(*direction_keys(conn, conn.is_client), encrypt_then_mac=_etm(conn),
                              sequence_number=sequence_number)


def decode_stream(conn: Connection, stream: bytes):
    """Every record `conn` wrote, as (content type, plaintext): framed in the clear up to its
    ChangeCipherSpec, opened with its write keys after it."""
    out, buf, opener = [], bytes(stream), None
    while buf:
        if opener is None:
            content_type, _, length = struct.unpack("!BHH", buf[:5])
            out.append((content_type, buf[5 : 5 + length]))
            buf = buf[5 + length :]
            if content_type == CCS:
                opener = opener_of(conn)
        else:
            records, used = opener.open(buf)
            assert used, "an incomplete record in what the connection sent"
            out += records
            buf = buf[used:]
    return out


def records_after_ccs(conn_records) -> int:
    seen = False
    count = 0
    for content_type, _ in conn_records:
        if seen:
            count += 1
        elif content_type == CCS:
            seen = True
    return count


# --------------------------------------------------------------------------------------------
# Two connections wired together
# --------------------------------------------------------------------------------------------


class Pair:
    def __init__(self, client_config: TLSConfig, server_config: TLSConfig, hostname="localhost", session=None):
        self.client = Connection(client_config, True, server_hostname=hostname, session=session)
        self.server = Connection(server_config, False)
        self.sent = {True: bytearray(), False: bytearray()}  # by is_client: all each side wrote
        self.events = {True: [], False: []}  # by is_client: all each side reported

    def peer(self, conn: Connection) -> Connection:
        return self.server if conn is self.client else self.client

    def take(self, conn: Connection) -> bytes:
        data = conn.data_to_send()
        self.sent[conn.is_client] += data
        return data

    def feed(self, conn: Connection, data: bytes, step: int = 0) -> list:
        events = []
        if step:
            for i in range(0, len(data), step):
                events += conn.receive_data(data[i : i + step])
        else:
            events += conn.receive_data(data)
        self.events[conn.is_client] += events
        return events

    def run(self, rewrite=None, step: int = 0, max_rounds: int = 20) -> None:
        """Moves bytes both ways until neither side has anything to send."""
        for _ in range(max_rounds):
            moved = False
            for sender in (self.client, self.server):
                data = self.take(sender)
                if data:
                    moved = True
                    if rewrite is not None:
                        data = rewrite(sender, data)
                    self.feed(self.peer(sender), data, step)
            if not moved:
                return
        raise AssertionError("the connections never went quiet")

    def handshake(self, rewrite=None, step: int = 0) -> "Pair":
        self.client.start_handshake()
        self.run(rewrite, step)
        assert self.client.handshake_complete and self.server.handshake_complete
        return self

    def records(self, conn: Connection):
        return decode_stream(conn, bytes(self.sent[conn.is_client]))

    def new_records(self, conn: Connection, before: int):
        """Records `conn` wrote after the first `before` of them."""
        return self.records(conn)[before:]

    def app_roundtrip(self, payload: bytes = b"ping") -> None:
        """Application data both ways; checks it arrives."""
        for sender in (self.client, self.server):
            receiver = self.peer(sender)
            sender.send_application_data(payload + (b" from client" if sender.is_client else b" from server"))
            events = self.feed(receiver, self.take(sender))
            data = b"".join(e.data for e in events if isinstance(e, ApplicationData))
            assert data == payload + (b" from client" if sender.is_client else b" from server")


def inject(conn: Connection, content_type: int, payload: bytes) -> None:
    """Makes `conn` write an arbitrary record through its own record layer (so it is protected
    with its keys and sequence number, as a misbehaving peer implementation would send it)."""
    conn._write_record(content_type, payload)


@pytest.fixture
def configs(pki):
    """Fresh (client config, server config) for a plain handshake: the library defaults and the
    RSA server certificate (they agree on ECDHE-RSA-AES256-GCM-SHA384 with x25519). For tests
    that do not depend on the key exchange or the record protection."""
    return pki.client_config(), pki.server_config()


@pytest.fixture
def pair(configs):
    return Pair(*configs)


@pytest.fixture
def rsa_pair(pki):
    """A pair that can only agree on RSA key exchange."""
    return Pair(pki.client_config(cipher_suites=RSA_KX), pki.server_config())


@pytest.fixture
def gcm_pair(pki):
    """A pair that agrees on TLS_RSA_WITH_AES_128_GCM_SHA256 (records sealed by hand below)."""
    return Pair(pki.client_config(cipher_suites=[GCM128]), pki.server_config())


def expect_alert(pair: Pair, receiver: Connection, data: bytes, description: AlertDescription) -> TLSAlert:
    """Feeds `data` to `receiver`, which must fail with `description`, queue exactly that fatal
    alert and nothing else, and stay failed."""
    pair.take(receiver)
    before = len(pair.records(receiver))
    with pytest.raises(TLSAlert) as info:
        pair.feed(receiver, data)
    assert info.value.description == description, str(info.value)
    pair.take(receiver)
    written = pair.new_records(receiver, before)
    assert written == [(ALERT, bytes([2, description]))], written
    assert receiver.failed is info.value
    with pytest.raises(TLSAlert):
        receiver.receive_data(b"")
    assert receiver.data_to_send() == b""
    return info.value


# --------------------------------------------------------------------------------------------
# Handshake scenarios and every message of them tampered with
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resumable(pki):
    """A server config and a ticket-bearing session from a first full handshake with it."""
    server_config = pki.server_config()
    first = Pair(pki.client_config(), server_config).handshake()
    assert first.client.session is not None and first.client.session.ticket
    return server_config, first.client.session


def _client_auth_server_config(pki, **kwargs) -> TLSConfig:
    return pki.server_config(verify_peer=True, require_peer_certificate=True, trust_store=pki.client_trust_store,
                             **kwargs)


def make_pair(scenario: str, pki, resumable) -> Pair:
    # RSA key exchange, explicitly.
    if scenario == "full":
        return Pair(pki.client_config(cipher_suites=RSA_KX), pki.server_config())
    if scenario == "client-auth":
        return Pair(pki.client_config(cipher_suites=RSA_KX, credentials=[pki.client.credential]),
                    _client_auth_server_config(pki))
    # ECDHE: the default configuration; with both server certificates the server's order puts
    # ECDHE-ECDSA first, and the client authenticates with its ECDSA (P-256) certificate.
    if scenario == "full-ecdhe":
        return Pair(pki.client_config(), pki.server_config())
    if scenario == "client-auth-ecdhe":
        credentials = [pki.server.credential, pki.server_ec.credential]
        return Pair(pki.client_config(credentials=[pki.client_p256.credential]),
                    _client_auth_server_config(pki, credentials=credentials))
    if scenario == "resumed":
        server_config, session = resumable
        return Pair(pki.client_config(), server_config, session=session)
    raise ValueError(scenario)


# The suite each scenario negotiates.
SCENARIO_SUITES = {
    "full": GCM128,
    "client-auth": GCM128,
    "full-ecdhe": BY_NAME["ECDHE-RSA-AES256-GCM-SHA384"],
    "client-auth-ecdhe": BY_NAME["ECDHE-ECDSA-AES256-GCM-SHA384"],
    "resumed": BY_NAME["ECDHE-RSA-AES256-GCM-SHA384"],
}
# What each side sends, and what the receiving state accepts at that point (besides the message).
FLIGHTS = {
    "full": {
        "client": [CLIENT_HELLO, CLIENT_KEY_EXCHANGE, FINISHED],
        "server": [SERVER_HELLO, CERTIFICATE, SERVER_HELLO_DONE, NEW_SESSION_TICKET, FINISHED],
    },
    "client-auth": {
        "client": [CLIENT_HELLO, CERTIFICATE, CLIENT_KEY_EXCHANGE, CERTIFICATE_VERIFY, FINISHED],
        "server": [SERVER_HELLO, CERTIFICATE, CERTIFICATE_REQUEST, SERVER_HELLO_DONE, NEW_SESSION_TICKET, FINISHED],
    },
    "full-ecdhe": {
        "client": [CLIENT_HELLO, CLIENT_KEY_EXCHANGE, FINISHED],
        "server": [SERVER_HELLO, CERTIFICATE, SERVER_KEY_EXCHANGE, SERVER_HELLO_DONE, NEW_SESSION_TICKET, FINISHED],
    },
    "client-auth-ecdhe": {
        "client": [CLIENT_HELLO, CERTIFICATE, CLIENT_KEY_EXCHANGE, CERTIFICATE_VERIFY, FINISHED],
        "server": [SERVER_HELLO, CERTIFICATE, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST, SERVER_HELLO_DONE,
                   NEW_SESSION_TICKET, FINISHED],
    },
    "resumed": {
        "client": [CLIENT_HELLO, FINISHED],
        "server": [SERVER_HELLO, NEW_SESSION_TICKET, FINISHED],
    },
}
ALSO_ACCEPTED = {
    ("full", "server", 2): {CERTIFICATE_REQUEST},
    ("client-auth", "server", 2): {SERVER_HELLO_DONE},
    ("full-ecdhe", "server", 3): {CERTIFICATE_REQUEST},
    ("client-auth-ecdhe", "server", 3): {SERVER_HELLO_DONE},
}
# Types a message is replaced with: every TLS 1.2 type but HelloRequest (which a client ignores
# during a handshake, RFC 5246 7.4.1.1), a TLS 1.3 type and an unassigned one.
RETYPES = [CLIENT_HELLO, SERVER_HELLO, NEW_SESSION_TICKET, CERTIFICATE, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST,
           SERVER_HELLO_DONE, CERTIFICATE_VERIFY, CLIENT_KEY_EXCHANGE, FINISHED, 8, 99]


def _mutation_cases():
    cases = []
    for scenario, sides in FLIGHTS.items():
        for side, types in sides.items():
            for index, msg_type in enumerate(types):
                where = f"{scenario}-{side}-{index}-{TYPE_NAMES[msg_type]}"
                if msg_type != SERVER_HELLO_DONE:
                    for how in ("minus-last-byte", "first-4-bytes", "empty"):
                        cases.append(pytest.param(scenario, side, index, how, AD.decode_error, id=f"{where}-{how}"))
                cases.append(pytest.param(scenario, side, index, "plus-one-byte", AD.decode_error, id=f"{where}-plus-one-byte"))
                accepted = {msg_type} | ALSO_ACCEPTED.get((scenario, side, index), set())
                for new_type in RETYPES:
                    if new_type not in accepted:
                        cases.append(pytest.param(scenario, side, index, new_type, AD.unexpected_message,
                                                  id=f"{where}-as-{TYPE_NAMES[new_type]}"))
    return cases


class MessageRewriter:
    """Rewrites the handshake messages one side sends: ``change(index, msg_type, body)`` returns
    the replacement bytes (whole messages) or None. Records after the sender's ChangeCipherSpec
    are opened and sealed again with the sender's keys, so encrypted messages (Finished) can be
    changed too; record boundaries are kept."""

    def __init__(self, client_side: bool, change):
        self.client_side = client_side
        self.change = change
        self.count = 0
        self.opener = None
        self.sealer = None
        self.types = []

    def __call__(self, sender: Connection, data: bytes) -> bytes:
        if sender.is_client != self.client_side:
            return data
        out = bytearray()
        for content_type, version, payload in split_records(data):
            if self.opener is not None:
                opened, used = self.opener.open(record(content_type, payload, version))
                ((plain_type, plain),) = opened
                if plain_type == HANDSHAKE:
                    plain = self._messages(plain)
                out += self.sealer.seal(plain_type, plain)
            elif content_type == HANDSHAKE:
                out += record(HANDSHAKE, self._messages(payload), version)
            else:
                out += record(content_type, payload, version)
                if content_type == CCS:
                    self.opener, self.sealer = opener_of(sender), sealer_as(sender)
        return bytes(out)

    def _messages(self, payload: bytes) -> bytes:
        new = bytearray()
        for msg_type, body in split_handshake(payload):
            self.types.append(msg_type)
            replacement = self.change(self.count, msg_type, body)
            self.count += 1
            new += handshake(msg_type, body) if replacement is None else replacement
        return bytes(new)


def _mutate(how, msg_type: int, body: bytes) -> bytes:
    if how == "minus-last-byte":
        return handshake(msg_type, body[:-1])
    if how == "first-4-bytes":
        return handshake(msg_type, body[:4])
    if how == "empty":
        return handshake(msg_type, b"")
    if how == "plus-one-byte":
        return handshake(msg_type, body + b"\x00")
    return handshake(how, body)  # another message type, same body


@pytest.mark.parametrize("scenario", list(FLIGHTS))
def test_scenarios_send_the_expected_messages(scenario, pki, resumable):
    """The captured flights the tampering tests rely on."""
    pair = make_pair(scenario, pki, resumable)
    client_side = MessageRewriter(True, lambda *a: None)
    server_side = MessageRewriter(False, lambda *a: None)
    pair.handshake(rewrite=lambda sender, data: server_side(sender, client_side(sender, data)))
    assert client_side.types == FLIGHTS[scenario]["client"]
    assert server_side.types == FLIGHTS[scenario]["server"]
    assert pair.client.suite == pair.server.suite == SCENARIO_SUITES[scenario]
    assert pair.client.resumed == pair.server.resumed == (scenario == "resumed")
    pair.app_roundtrip()


@pytest.mark.parametrize("scenario, side, index, how, expected", _mutation_cases())
def test_tampered_handshake_message(scenario, side, index, how, expected, pki, resumable):
    pair = make_pair(scenario, pki, resumable)
    rewriter = MessageRewriter(side == "client", lambda i, t, body: _mutate(how, t, body) if i == index else None)
    receiver = pair.server if side == "client" else pair.client
    before = {}

    def rewrite(sender, data):
        new = rewriter(sender, data)
        if new != data:  # (the receiver has nothing pending here: run() alternates)
            before["records"] = len(pair.records(receiver))
        return new

    with pytest.raises(TLSAlert) as info:
        pair.client.start_handshake()
        pair.run(rewrite=rewrite)
    assert rewriter.types[index] == FLIGHTS[scenario][side][index]
    assert info.value.description == expected, str(info.value)
    assert receiver.failed is info.value
    pair.take(receiver)
    written = pair.new_records(receiver, before["records"])
    assert written == [(ALERT, bytes([2, expected]))], written
    assert not receiver.handshake_complete
    with pytest.raises(TLSAlert):
        receiver.receive_data(b"\x16\x03\x03\x00\x00")
    assert receiver.data_to_send() == b""


def test_certificate_verify_with_an_empty_signature(pki, resumable):
    """digitally-signed allows an empty signature (RFC 5246 4.7): the CertificateVerify parses
    and fails to verify: decrypt_error, not decode_error."""
    pair = make_pair("client-auth", pki, resumable)
    index = FLIGHTS["client-auth"]["client"].index(CERTIFICATE_VERIFY)
    rewriter = MessageRewriter(True, lambda i, t, body: handshake(t, body[:2] + b"\x00\x00") if i == index else None)
    with pytest.raises(TLSAlert) as info:
        pair.client.start_handshake()
        pair.run(rewrite=rewriter)
    assert info.value.description == AD.decrypt_error and pair.server.failed is info.value


def test_hello_request_from_a_client_with_a_body(pair):
    """Only a server sends HelloRequest (RFC 5246 7.4.1.1): from a client it is
    unexpected_message, whatever its body holds."""
    pair.handshake()
    inject(pair.client, HANDSHAKE, handshake(HELLO_REQUEST, b"\x01\x02"))
    expect_alert(pair, pair.server, pair.take(pair.client), AD.unexpected_message)


# --------------------------------------------------------------------------------------------
# Fragmentation and coalescing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(FLIGHTS))
def test_handshake_one_byte_at_a_time(scenario, pki, resumable):
    pair = make_pair(scenario, pki, resumable)
    pair.handshake(step=1)
    assert pair.events[True].count(HandshakeComplete()) == 1
    assert pair.events[False].count(HandshakeComplete()) == 1
    for sender in (pair.client, pair.server):
        receiver = pair.peer(sender)
        payload = os.urandom(300)
        sender.send_application_data(payload)
        events = pair.feed(receiver, pair.take(sender), step=1)
        assert b"".join(e.data for e in events if isinstance(e, ApplicationData)) == payload
    pair.client.close()
    events = pair.feed(pair.server, pair.take(pair.client), step=1)
    assert ConnectionClosed() in events
    # Half-closed, as with OpenSSL: the server answers when its application closes.
    assert pair.take(pair.server) == b""
    pair.server.close()
    events = pair.feed(pair.client, pair.take(pair.server), step=1)
    assert ConnectionClosed() in events


def test_many_records_in_one_receive(pair):
    pair.handshake()
    pieces = [f"record {i:03d};".encode() for i in range(100)]
    for piece in pieces:
        pair.client.send_application_data(piece)
    pair.client.close()
    data = pair.take(pair.client)
    assert len(split_records_loose(data)) == 101
    events = pair.feed(pair.server, data)
    assert b"".join(e.data for e in events if isinstance(e, ApplicationData)) == b"".join(pieces)
    assert events[-2:] == [AlertReceived(1, 0), ConnectionClosed()]


def test_flights_and_data_in_one_receive(pair):
    """The server's last flight and application data right behind it, in one read."""
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    pair.feed(pair.client, pair.take(pair.server))
    pair.feed(pair.server, pair.take(pair.client))
    assert pair.server.handshake_complete
    pair.server.send_application_data(b"early words from the server")
    events = pair.feed(pair.client, pair.take(pair.server))
    assert events[0] == HandshakeComplete()
    assert events[1:] == [ApplicationData(b"early words from the server")]


def test_handshake_messages_fragmented_across_records(pair):
    """Each flight re-framed into records of 7 bytes of handshake data each."""

    def refragment(sender, data):
        out = bytearray()
        plaintext_done = False
        for content_type, version, payload in split_records(data):
            if content_type == HANDSHAKE and not plaintext_done:
                for i in range(0, len(payload), 7):
                    out += record(HANDSHAKE, payload[i : i + 7], version)
            else:
                out += record(content_type, payload, version)
                plaintext_done = plaintext_done or content_type == CCS
        return bytes(out)

    pair.handshake(rewrite=refragment)
    pair.app_roundtrip()


def test_change_cipher_spec_inside_a_fragmented_message(pair):
    """The ClientKeyExchange split around the ChangeCipherSpec: the CCS arrives while a
    handshake message is incomplete (RFC 5246 7.1 wants it right after a complete message)."""
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    pair.feed(pair.client, pair.take(pair.server))
    records = split_records_loose(pair.take(pair.client))
    cke = records[0][5:]
    data = record(HANDSHAKE, cke[:20]) + records[1] + record(HANDSHAKE, cke[20:]) + records[2]
    expect_alert(pair, pair.server, data, AD.unexpected_message)


def test_finished_split_across_protected_records(pair):
    """The client's Finished (protected) in two records of 5 and 11 bytes."""

    def split_finished(sender, data):
        if not sender.is_client:
            return data
        records = split_records_loose(data)
        if [r[0] for r in records] != [HANDSHAKE, CCS, HANDSHAKE]:
            return data
        ((_, finished),), _ = opener_of(sender).open(records[2])
        sealer = sealer_as(sender)
        return records[0] + records[1] + sealer.seal(HANDSHAKE, finished[:5]) + sealer.seal(HANDSHAKE, finished[5:])

    pair.handshake(rewrite=split_finished)
    pair.server.send_application_data(b"the server's direction is untouched")
    events = pair.feed(pair.client, pair.take(pair.server))
    assert events == [ApplicationData(b"the server's direction is untouched")]


def test_certificate_message_larger_than_a_record(pki):
    """A server chain of over 16 KiB: our Certificate message spans two records and the
    client puts it back together."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from ferrotls.x509.keystore import Credential

    with open(pki.server.key_path, "rb") as f:
        key = load_pem_private_key(f.read(), None)
    big = Credential(pki.server.credential.chain + [pki.server_ca_cert] * 20, key)
    assert sum(len(c) for c in big.chain_der) > MAX_FRAGMENT
    pair = Pair(pki.client_config(), pki.server_config(credentials=[big]))
    pair.handshake()
    server_records = [r for r in pair.records(pair.server) if r[0] == HANDSHAKE]
    assert len(server_records[0][1]) == MAX_FRAGMENT  # the first flight filled a whole record
    assert pair.client.peer_chain == big.chain_der
    pair.app_roundtrip()


def test_record_interleaved_in_a_fragmented_message(pair):
    pair.client.start_handshake()
    (content_type, version, payload), = split_records(pair.take(pair.client))
    data = record(HANDSHAKE, payload[:10]) + record(ALERT, bytes([1, AD.no_renegotiation])) + record(HANDSHAKE, payload[10:])
    expect_alert(pair, pair.server, data, AD.unexpected_message)


def test_oversized_handshake_message_refused_at_once(pair):
    """A header announcing a 16 MiB message fails at once instead of being buffered."""
    expect_alert(pair, pair.server, record(HANDSHAKE, bytes([CLIENT_HELLO]) + ((1 << 24) - 1).to_bytes(3, "big")),
                 AD.illegal_parameter)


# --------------------------------------------------------------------------------------------
# Stalled and vanishing peers, over real sockets
# --------------------------------------------------------------------------------------------


def _client_hello_bytes(pki) -> bytes:
    conn = Connection(pki.client_config(), True, server_hostname="localhost")
    conn.start_handshake()
    return conn.data_to_send()


@pytest.mark.parametrize("sends", ["nothing", "half-a-record", "client-hello"])
def test_server_handshake_times_out(sends, pki, ferro_server, tlsutil):
    server = ferro_server(pki.server_config(), lambda engine: "handshake finished?!", timeout=0.5)
    hello = _client_hello_bytes(pki)
    data = {"nothing": b"", "half-a-record": hello[: len(hello) // 2], "client-hello": hello}[sends]
    with socket.create_connection((tlsutil.HOST, server.port), timeout=5) as raw:
        raw.sendall(data)
        start = time.monotonic()
        (served,) = server.join(5)
        elapsed = time.monotonic() - start
    assert isinstance(served.error, TimeoutError), repr(served.error)
    assert elapsed < 3
    assert not served.conn.handshake_complete


@pytest.mark.parametrize("says", ["nothing", "half-a-server-hello"])
def test_client_handshake_times_out(says, pki, listener, tlsutil, background):
    def peer():
        raw, _ = listener.accept()
        with raw:
            raw.settimeout(5)
            hello = raw.recv(65536)
            if says != "nothing":
                server = Connection(pki.server_config(), False)
                server.receive_data(hello)
                flight = server.data_to_send()
                raw.sendall(flight[:60])
            raw.recv(65536)  # until the client gives up and closes

    future = background(peer)
    sock, engine = tlsutil.ferro_client(listener.getsockname()[1], pki.client_config(), timeout=0.5)
    start = time.monotonic()
    with sock, pytest.raises(TimeoutError):
        engine.do_handshake()
    assert time.monotonic() - start < 3
    future.result(5)


def test_client_peer_vanishes_mid_handshake(pki, listener, tlsutil, background):
    def peer():
        raw, _ = listener.accept()
        raw.recv(65536)
        raw.close()

    future = background(peer)
    sock, engine = tlsutil.ferro_client(listener.getsockname()[1], pki.client_config(), timeout=5)
    with sock, pytest.raises(TLSError) as info:
        engine.do_handshake()
    assert info.value.alert == "unexpected_eof" and not info.value.sent
    future.result(5)


# --------------------------------------------------------------------------------------------
# The record layer
# --------------------------------------------------------------------------------------------


def test_plaintext_record_overflow(pair):
    expect_alert(pair, pair.server, record(HANDSHAKE, b"\x01" * (MAX_FRAGMENT + 1), TLS10), AD.record_overflow)


def test_plaintext_record_overflow_mid_handshake(pair):
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    expect_alert(pair, pair.client, record(HANDSHAKE, b"\x0b" * (MAX_FRAGMENT + 1)), AD.record_overflow)


def test_plaintext_record_of_exactly_2_14_bytes_is_fine(pair, pki):
    """A ClientHello padded (RFC 7685) to fill a record of exactly 2^14 bytes is accepted."""
    head = client_hello_body(extensions=[SIGALGS, RENEGOTIATION_INFO, extension(EXT_EMS)])
    # record payload = 4 (message header) + body; the padding extension adds 4 + n bytes.
    n = MAX_FRAGMENT - 4 - len(head) - 4
    body = client_hello_body(extensions=[SIGALGS, RENEGOTIATION_INFO, extension(EXT_EMS), extension(EXT_PADDING, bytes(n))])
    payload = handshake(CLIENT_HELLO, body)
    assert len(payload) == MAX_FRAGMENT
    pair.feed(pair.server, record(HANDSHAKE, payload, TLS10))
    reply = split_records(pair.take(pair.server))
    assert [t for t, _, _ in reply] == [HANDSHAKE]
    assert split_handshake(reply[0][2])[0][0] == SERVER_HELLO


def gcm_record(pair: Pair, conn: Connection, content_type: int, plaintext: bytes) -> bytes:
    """A record sealed by hand as `conn` would seal its next one (AES-GCM, RFC 5288), with no
    limit on the plaintext length."""
    assert conn.suite == GCM128
    _, key, salt, _ = direction_keys(conn, conn.is_client)
    sequence = records_after_ccs(pair.records(conn))
    explicit = sequence.to_bytes(8, "big")
    aad = sequence.to_bytes(8, "big") + struct.pack("!BHH", content_type, TLS12, len(plaintext))
    return record(content_type, explicit + AESGCM(key).encrypt(salt + explicit, plaintext, aad))


def test_protected_record_overflow(gcm_pair):
    """A protected record whose plaintext is 2^14 + 1 bytes: record_overflow, even though it
    authenticates."""
    pair = gcm_pair.handshake()
    expect_alert(pair, pair.server, gcm_record(pair, pair.client, APPDATA, b"x" * (MAX_FRAGMENT + 1)),
                 AD.record_overflow)


def test_protected_record_of_exactly_2_14_bytes_is_fine(gcm_pair):
    pair = gcm_pair.handshake()
    events = pair.feed(pair.server, gcm_record(pair, pair.client, APPDATA, b"y" * MAX_FRAGMENT))
    assert events == [ApplicationData(b"y" * MAX_FRAGMENT)]


def test_zero_length_application_data_record(gcm_pair):
    """RFC 5246 6.2.1: zero-length application data fragments MAY be sent."""
    pair = gcm_pair.handshake()
    data = gcm_record(pair, pair.client, APPDATA, b"")
    events = pair.feed(pair.server, data)
    assert not [e for e in events if isinstance(e, ApplicationData) and e.data]
    # The sequence numbers stay in step: the client's next record (sealed by hand at the
    # following number) opens.
    pair.sent[True] += data
    events = pair.feed(pair.server, gcm_record(pair, pair.client, APPDATA, b"after the empty one"))
    assert events == [ApplicationData(b"after the empty one")]


def test_protected_record_too_long_for_any_plaintext(pair):
    """RFC 5246 6.2.3: TLSCiphertext.length MUST NOT exceed 2^14 + 2048."""
    pair.handshake()
    expect_alert(pair, pair.server, record(APPDATA, bytes(MAX_FRAGMENT + 2049)), AD.record_overflow)


BIT_FLIP_CASES = [
    pytest.param(suite, etm, id=f"{suite.openssl_name}{'-etm' if etm else ''}")
    for suite in TLS12_SUITES
    for etm in ((True, False) if suite.is_cbc else (False,))
]


@pytest.mark.parametrize("where", ["first-byte", "middle", "last-byte"])
@pytest.mark.parametrize("suite, etm", BIT_FLIP_CASES)
def test_flipped_bit_in_protected_record(suite, etm, where, pki):
    server_config = pki.server_config(credentials=[pki.server_for(suite).credential])
    pair = Pair(pki.client_config(cipher_suites=[suite], encrypt_then_mac=etm), server_config).handshake()
    assert pair.client.suite == suite and pair.client.encrypt_then_mac == etm
    pair.client.send_application_data(b"a record that will not survive the trip " * 3)
    data = bytearray(pair.take(pair.client))
    position = {"first-byte": 5, "middle": 5 + (len(data) - 5) // 2, "last-byte": len(data) - 1}[where]
    data[position] ^= 0x10
    expect_alert(pair, pair.server, bytes(data), AD.bad_record_mac)


def test_flipped_bit_in_finished_record(pair):
    def flip(sender, data):
        if sender.is_client and CCS in [t for t, _, _ in split_records(data)]:
            data = bytearray(data)
            data[-1] ^= 1
        return bytes(data)

    with pytest.raises(TLSAlert) as info:
        pair.handshake(rewrite=flip)
    assert info.value.description == AD.bad_record_mac
    pair.take(pair.server)
    assert alert_records(pair.records(pair.server)) == [(2, AD.bad_record_mac)]


def test_unknown_record_type(pair):
    expect_alert(pair, pair.server, record(24, b"\x01\x00\x00"), AD.unexpected_message)


# --------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("description", [AD.handshake_failure, AD.internal_error, 255], ids=["handshake_failure", "internal_error", "unassigned"])
def test_fatal_alert_during_handshake_raises_peer_alert(description, pair):
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    with pytest.raises(PeerAlert) as info:
        pair.feed(pair.client, record(ALERT, bytes([2, description])))
    assert info.value.description == description
    expected_name = AD(description).name if description in AD._value2member_map_ else f"alert {description}"
    assert info.value.name == expected_name
    assert expected_name in str(info.value)
    assert pair.client.data_to_send() == b""  # nothing is sent back for a fatal alert
    with pytest.raises(PeerAlert):
        pair.client.receive_data(b"")


def test_fatal_alert_after_handshake_raises_peer_alert(pair):
    pair.handshake()
    pair.server.send_alert(2, AD.internal_error)
    with pytest.raises(PeerAlert) as info:
        pair.feed(pair.client, pair.take(pair.server))
    assert (info.value.description, info.value.name) == (AD.internal_error, "internal_error")
    assert pair.client.data_to_send() == b""


def test_warning_alert_during_handshake_is_not_fatal(pair):
    """A warning such as unrecognized_name (which some servers send) does not end the handshake."""
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    flight = pair.take(pair.server)
    events = pair.feed(pair.client, record(ALERT, bytes([1, AD.unrecognized_name])) + flight)
    assert events == [AlertReceived(1, AD.unrecognized_name)]
    pair.run()
    assert pair.client.handshake_complete and pair.server.handshake_complete


def test_close_notify_half_closes(pair):
    """As with OpenSSL: close_notify received is not answered until the application closes,
    and the application may still write in between (RFC 5246 7.2.1 leaves it to it)."""
    pair.handshake()
    pair.app_roundtrip()
    pair.client.close()
    events = pair.feed(pair.server, pair.take(pair.client))
    assert events == [AlertReceived(1, AD.close_notify), ConnectionClosed()]
    assert pair.server.peer_closed and pair.take(pair.server) == b""
    pair.server.send_application_data(b"late reply")
    pair.server.close()
    answer = pair.take(pair.server)
    pair.server.close()  # once only
    assert pair.take(pair.server) == b""
    events = pair.feed(pair.client, answer)
    assert events == [ApplicationData(b"late reply"), AlertReceived(1, AD.close_notify), ConnectionClosed()]
    assert pair.take(pair.client) == b""  # we had sent ours already


def test_close_notify_from_server_first(pair):
    pair.handshake()
    pair.server.close()
    events = pair.feed(pair.client, pair.take(pair.server))
    assert events == [AlertReceived(1, AD.close_notify), ConnectionClosed()]
    pair.client.close()
    events = pair.feed(pair.server, pair.take(pair.client))
    assert events == [AlertReceived(1, AD.close_notify), ConnectionClosed()]


def test_malformed_alert(pair):
    expect_alert(pair, pair.server, record(ALERT, b"\x02"), AD.decode_error)


# --------------------------------------------------------------------------------------------
# Renegotiation is refused (RFC 5246 7.4.1.1, RFC 5746 4.2 / 4.4)
# --------------------------------------------------------------------------------------------


def test_hello_request_after_handshake_is_refused(pair):
    pair.handshake()
    inject(pair.server, HANDSHAKE, handshake(HELLO_REQUEST, b""))
    events = pair.feed(pair.client, pair.take(pair.server))
    assert events == []
    events = pair.feed(pair.server, pair.take(pair.client))
    assert events == [AlertReceived(1, AD.no_renegotiation)]
    pair.app_roundtrip(b"still talking")
    assert pair.client.failed is None and pair.server.failed is None


def test_hello_request_during_handshake_is_ignored(pair):
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    flight = pair.take(pair.server)
    pair.feed(pair.client, record(HANDSHAKE, handshake(HELLO_REQUEST, b"")) + flight)
    pair.run()
    assert pair.client.handshake_complete and pair.server.handshake_complete


def test_client_hello_after_handshake_is_refused(pair, pki):
    pair.handshake()
    again = Connection(pki.client_config(), True, server_hostname="localhost")
    again.start_handshake()
    ((_, _, hello),) = split_records(again.data_to_send())
    inject(pair.client, HANDSHAKE, hello)
    events = pair.feed(pair.server, pair.take(pair.client))
    assert events == []
    events = pair.feed(pair.client, pair.take(pair.server))
    assert events == [AlertReceived(1, AD.no_renegotiation)]
    pair.app_roundtrip(b"still talking")


def test_hello_request_with_a_body(pair):
    pair.handshake()
    inject(pair.server, HANDSHAKE, handshake(HELLO_REQUEST, b"\x00"))
    expect_alert(pair, pair.client, pair.take(pair.server), AD.decode_error)


def test_hello_request_to_server(pair):
    pair.handshake()
    inject(pair.client, HANDSHAKE, handshake(HELLO_REQUEST, b""))
    before = len(pair.records(pair.server))
    with pytest.raises(TLSAlert) as info:
        pair.feed(pair.server, pair.take(pair.client))
    assert info.value.description == AD.unexpected_message
    pair.take(pair.server)
    assert pair.new_records(pair.server, before) == [(ALERT, bytes([2, AD.unexpected_message]))]


# --------------------------------------------------------------------------------------------
# ChangeCipherSpec and application data at the wrong time
# --------------------------------------------------------------------------------------------


def test_change_cipher_spec_before_client_hello(pair):
    expect_alert(pair, pair.server, record(CCS, b"\x01"), AD.unexpected_message)


def test_change_cipher_spec_after_server_hello(pair):
    """CCS injected between ServerHello and Certificate."""
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    ((_, _, payload),) = split_records(pair.take(pair.server))
    messages = split_handshake(payload)
    data = record(HANDSHAKE, handshake(*messages[0])) + record(CCS, b"\x01")
    data += record(HANDSHAKE, b"".join(handshake(*m) for m in messages[1:]))
    expect_alert(pair, pair.client, data, AD.unexpected_message)


def test_early_change_cipher_spec_to_server(pair):
    """CCS before ClientKeyExchange (the CVE-2014-0224 pattern)."""
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    pair.feed(pair.client, pair.take(pair.server))
    records = split_records_loose(pair.take(pair.client))
    assert [r[0] for r in records] == [HANDSHAKE, CCS, HANDSHAKE]
    expect_alert(pair, pair.server, records[1] + records[0] + records[2], AD.unexpected_message)


def test_change_cipher_spec_before_new_session_ticket(pair):
    """The server announced a ticket (RFC 5077 3.3): its CCS may not come first."""
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    pair.feed(pair.client, pair.take(pair.server))
    pair.feed(pair.server, pair.take(pair.client))
    records = split_records_loose(pair.take(pair.server))
    assert [r[0] for r in records] == [HANDSHAKE, CCS, HANDSHAKE]
    expect_alert(pair, pair.client, records[1], AD.unexpected_message)


def test_change_cipher_spec_after_handshake(pair):
    pair.handshake()
    inject(pair.client, CCS, b"\x01")
    expect_alert(pair, pair.server, pair.take(pair.client), AD.unexpected_message)


def test_application_data_before_client_hello(pair):
    expect_alert(pair, pair.server, record(APPDATA, b"GET / HTTP/1.0\r\n\r\n"), AD.unexpected_message)


def test_application_data_to_client_mid_handshake(pair):
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    expect_alert(pair, pair.client, record(APPDATA, b"too early"), AD.unexpected_message)


def test_protected_application_data_before_finished(pair):
    """Encrypted application data between the client's ChangeCipherSpec and its Finished."""
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    pair.feed(pair.client, pair.take(pair.server))
    records = split_records_loose(pair.take(pair.client))
    assert [r[0] for r in records] == [HANDSHAKE, CCS, HANDSHAKE]
    opened, _ = opener_of(pair.client).open(records[2])
    ((_, finished),) = opened
    sealer = sealer_as(pair.client)
    data = records[0] + records[1] + sealer.seal(APPDATA, b"too early") + sealer.seal(HANDSHAKE, finished)
    expect_alert(pair, pair.server, data, AD.unexpected_message)


# --------------------------------------------------------------------------------------------
# RSA key exchange: a bad premaster fails at Finished, like a wrong key (RFC 5246 7.4.7.1)
# --------------------------------------------------------------------------------------------


def _bad_premasters(pki):
    public_key = pki.server.credential.chain[0].public_key()
    size = public_key.key_size // 8

    def encrypt(premaster):
        return public_key.encrypt(premaster, padding.PKCS1v15())

    return {
        "random-bytes": lambda: os.urandom(size),
        "zero-bytes": lambda: bytes(size),
        "above-modulus": lambda: b"\xff" * size,
        "other-premaster": lambda: encrypt(struct.pack("!H", TLS12) + os.urandom(46)),
        "wrong-version": lambda: encrypt(struct.pack("!H", TLS10) + os.urandom(46)),
        "short-premaster": lambda: encrypt(struct.pack("!H", TLS12) + os.urandom(45)),
        "long-premaster": lambda: encrypt(struct.pack("!H", TLS12) + os.urandom(47)),
        # A well-formed premaster encrypted to another RSA key (the other CA's server).
        "wrong-key": lambda: pki.other_server.credential.chain[0].public_key().encrypt(
            struct.pack("!H", TLS12) + os.urandom(46), padding.PKCS1v15()),
    }


@pytest.mark.parametrize("kind", ["random-bytes", "zero-bytes", "above-modulus", "other-premaster", "wrong-version",
                                  "short-premaster", "long-premaster", "wrong-key"])
def test_bad_premaster_fails_at_finished(kind, rsa_pair, pki):
    pair = rsa_pair
    pair.client.start_handshake()
    pair.feed(pair.server, pair.take(pair.client))
    pair.feed(pair.client, pair.take(pair.server))
    records = split_records_loose(pair.take(pair.client))
    assert [r[0] for r in records] == [HANDSHAKE, CCS, HANDSHAKE]
    ((msg_type, _),) = split_handshake(records[0][5:])
    assert msg_type == CLIENT_KEY_EXCHANGE
    forged = record(HANDSHAKE, handshake(CLIENT_KEY_EXCHANGE, vec(_bad_premasters(pki)[kind](), 2)))
    # Nothing happens at the ClientKeyExchange itself, nor at the ChangeCipherSpec.
    assert pair.feed(pair.server, forged + records[1]) == []
    assert pair.take(pair.server) == b""
    assert not pair.server.failed
    # The client's Finished, protected with keys from the real premaster, does not open.
    expect_alert(pair, pair.server, records[2], AD.bad_record_mac)


@pytest.mark.parametrize("delta", [-1, 1, -200])
def test_premaster_of_wrong_length(rsa_pair, pki, delta):
    """An EncryptedPreMasterSecret of the wrong length is a malformed premaster like any other
    (RFC 5246 7.4.7.1): the server goes on with a substitute and fails at the client's
    Finished, which does not open under the keys it derived: bad_record_mac."""
    pair = rsa_pair
    size = pki.server.credential.chain[0].public_key().key_size // 8
    rewriter = MessageRewriter(True, lambda i, msg_type, body: handshake(msg_type, vec(os.urandom(size + delta), 2))
                               if msg_type == CLIENT_KEY_EXCHANGE else None)
    with pytest.raises(TLSAlert) as info:
        pair.client.start_handshake()
        pair.run(rewrite=rewriter)
    assert info.value.description == AD.bad_record_mac and pair.server.failed is info.value
    pair.take(pair.server)
    assert alert_records(pair.records(pair.server)) == [(2, AD.bad_record_mac)]


def test_client_certificate_without_certificate_verify(pki, resumable):
    """A client certificate with no proof of possession of its key."""
    pair = make_pair("client-auth", pki, resumable)
    rewriter = MessageRewriter(True, lambda i, msg_type, body: b"" if msg_type == CERTIFICATE_VERIFY else None)
    with pytest.raises(TLSAlert) as info:
        pair.handshake(rewrite=rewriter)
    assert info.value.description == AD.unexpected_message
    pair.take(pair.server)
    assert alert_records(pair.records(pair.server)) == [(2, AD.unexpected_message)]
    assert not pair.server.handshake_complete


def test_client_sends_no_certificate_when_required(pki, resumable):
    pair = make_pair("client-auth", pki, resumable)
    rewriter = MessageRewriter(True, lambda i, msg_type, body: handshake(CERTIFICATE, vec(b"", 3))
                               if msg_type == CERTIFICATE else (b"" if msg_type == CERTIFICATE_VERIFY else None))
    with pytest.raises(TLSAlert) as info:
        pair.handshake(rewrite=rewriter)
    assert info.value.description == AD.handshake_failure
    pair.take(pair.server)
    assert alert_records(pair.records(pair.server)) == [(2, AD.handshake_failure)]


def test_wrong_finished_verify_data(pair):
    def corrupt(i, msg_type, body):
        if msg_type == FINISHED:
            return handshake(FINISHED, bytes([body[0] ^ 1]) + body[1:])
        return None

    with pytest.raises(TLSAlert) as info:
        pair.handshake(rewrite=MessageRewriter(True, corrupt))
    assert info.value.description == AD.decrypt_error
    pair.take(pair.server)
    assert alert_records(pair.records(pair.server)) == [(2, AD.decrypt_error)]


def test_bad_certificate_verify_signature(pki, resumable):
    pair = make_pair("client-auth", pki, resumable)

    def corrupt(i, msg_type, body):
        if msg_type == CERTIFICATE_VERIFY:
            return handshake(msg_type, body[:-1] + bytes([body[-1] ^ 1]))
        return None

    with pytest.raises(TLSAlert) as info:
        pair.handshake(rewrite=MessageRewriter(True, corrupt))
    assert info.value.description == AD.decrypt_error
    pair.take(pair.server)
    assert alert_records(pair.records(pair.server)) == [(2, AD.decrypt_error)]


# --------------------------------------------------------------------------------------------
# Hellos the server must refuse
# --------------------------------------------------------------------------------------------


def hello_record(body: bytes, version: int = TLS12) -> bytes:
    return record(HANDSHAKE, handshake(CLIENT_HELLO, body), version)


@pytest.mark.parametrize("client_version, record_version", [(TLS10, TLS10), (TLS11, TLS10), (0x0300, 0x0300)],
                         ids=["tls1.0", "tls1.1", "ssl3"])
def test_client_hello_with_old_version(client_version, record_version, pair):
    body = client_hello_body(version=client_version, suites=[s.code for s in TLS12_SUITES],
                             extensions=[SIGALGS, RENEGOTIATION_INFO])
    expect_alert(pair, pair.server, hello_record(body, record_version), AD.protocol_version)


def test_client_hello_supported_versions_without_tls12(pair):
    versions = extension(EXT_SUPPORTED_VERSIONS, vec(struct.pack("!HH", TLS11, TLS10), 1))
    body = client_hello_body(extensions=[SIGALGS, versions])
    expect_alert(pair, pair.server, hello_record(body), AD.protocol_version)


def test_client_hello_offering_tls13_and_tls12_gets_tls12(pair):
    versions = extension(EXT_SUPPORTED_VERSIONS, vec(struct.pack("!HH", TLS13, TLS12), 1))
    pair.feed(pair.server, hello_record(client_hello_body(extensions=[SIGALGS, versions])))
    ((_, _, payload),) = split_records(pair.take(pair.server))
    msg_type, body = split_handshake(payload)[0]
    assert msg_type == SERVER_HELLO and body[:2] == struct.pack("!H", TLS12)


@pytest.mark.parametrize("client_version", [TLS13, 0x0305], ids=["0x0304", "0x0305"])
def test_client_hello_with_higher_legacy_version_gets_tls12(client_version, pair):
    """RFC 5246 E.1: a server answers a higher client_version with the highest it supports."""
    pair.feed(pair.server, hello_record(client_hello_body(version=client_version, extensions=[SIGALGS]), TLS10))
    ((_, _, payload),) = split_records(pair.take(pair.server))
    msg_type, body = split_handshake(payload)[0]
    assert msg_type == SERVER_HELLO and body[:2] == struct.pack("!H", TLS12)


SUPPORTED_GROUPS = extension(10, vec(struct.pack("!HHH", 29, 23, 24), 2))


@pytest.mark.parametrize("server, suites, extensions", [
    # DHE (RFC 5246) suites we do not implement.
    ("rsa", [0x009E, 0x009F, 0x0033], [SIGALGS, SUPPORTED_GROUPS]),
    # ECDHE-RSA offered to a server configured for RSA key exchange only.
    ("rsa-kx-only", [0xC02F, 0xCCA8], [SIGALGS, SUPPORTED_GROUPS]),
    # ECDHE-ECDSA offered to a server with only an RSA certificate.
    ("rsa", [0xC02B, 0xC02C, 0xCCA9], [SIGALGS, SUPPORTED_GROUPS]),
    # ECDHE-RSA without signature_algorithms (RFC 5246 7.4.1.4.1 would mean SHA-1, which we
    # do not sign with): ECDHE is not offered.
    ("rsa", [0xC02F, 0xCCA8], [SUPPORTED_GROUPS]),
    # ECDHE-RSA with only groups we do not have (ffdhe2048, secp521r1).
    ("rsa", [0xC02F, 0xCCA8], [SIGALGS, extension(10, vec(struct.pack("!HH", 0x0100, 25), 2))]),
    # ECDHE-RSA with only signature schemes an RSA key cannot make (ECDSA, ed25519).
    ("rsa", [0xC02F, 0xCCA8], [extension(EXT_SIGNATURE_ALGORITHMS, vec(struct.pack("!HH", 0x0403, 0x0807), 2)),
                               SUPPORTED_GROUPS]),
    # ECDHE-ECDSA with a P-256 certificate, but the client's groups exclude P-256 (RFC 8422 5.1).
    ("dual", [0xC02B, 0xC02C], [SIGALGS, extension(10, vec(struct.pack("!HH", 29, 24), 2))]),
], ids=["dhe-only", "ecdhe-to-rsa-kx-server", "ecdsa-to-rsa-certificate", "ecdhe-without-signature-algorithms",
        "ecdhe-without-shared-group", "ecdhe-without-rsa-scheme", "ecdsa-certificate-curve-not-offered"])
def test_no_shared_cipher_suite(server, suites, extensions, pki):
    server_config = {
        "rsa": pki.server_config(),
        "rsa-kx-only": pki.server_config(cipher_suites=RSA_KX),
        "dual": pki.dual_server_config(),
    }[server]
    pair = Pair(pki.client_config(), server_config)
    expect_alert(pair, pair.server, hello_record(client_hello_body(suites=suites, extensions=extensions)),
                 AD.handshake_failure)


def test_no_shared_cipher_suite_between_configs(pki):
    suites = BY_NAME
    pair = Pair(pki.client_config(cipher_suites=[suites["AES128-SHA"]]),
                pki.server_config(cipher_suites=[suites["AES128-GCM-SHA256"]]))
    pair.client.start_handshake()
    expect_alert(pair, pair.server, pair.take(pair.client), AD.handshake_failure)
    # expect_alert took the server's alert off the wire; the client gets it as sent.
    with pytest.raises(PeerAlert) as info:
        pair.feed(pair.client, record(ALERT, bytes([2, AD.handshake_failure])))
    assert info.value.name == "handshake_failure"


def test_duplicate_extension_in_client_hello(pair):
    body = client_hello_body(extensions=[SIGALGS, extension(EXT_EMS), RENEGOTIATION_INFO, extension(EXT_EMS)])
    expect_alert(pair, pair.server, hello_record(body), AD.illegal_parameter)


def test_client_hello_session_id_too_long(pair):
    body = client_hello_body(session_id=os.urandom(33), extensions=[SIGALGS])
    expect_alert(pair, pair.server, hello_record(body), AD.decode_error)


def test_client_hello_without_extensions_is_fine(pair):
    pair.feed(pair.server, hello_record(client_hello_body(with_extensions=False)))
    ((_, _, payload),) = split_records(pair.take(pair.server))
    assert split_handshake(payload)[0][0] == SERVER_HELLO


# --------------------------------------------------------------------------------------------
# ServerHellos the client must refuse
# --------------------------------------------------------------------------------------------


def _server_hello_rewriter(change):
    def rewrite(i, msg_type, body):
        if msg_type == SERVER_HELLO:
            return handshake(SERVER_HELLO, change(body))
        return None

    return MessageRewriter(False, rewrite)


def _client_fails_on_server_hello(pair, change, expected):
    with pytest.raises(TLSAlert) as info:
        pair.handshake(rewrite=_server_hello_rewriter(change))
    assert info.value.description == expected, str(info.value)
    pair.take(pair.client)
    assert alert_records(pair.records(pair.client)) == [(2, expected)]


def test_duplicate_extension_in_server_hello(pair):
    def duplicate(body):
        fixed, exts, trailing = parse_server_hello(body)
        return build_server_hello(fixed, exts + exts[:1]) + trailing

    _client_fails_on_server_hello(pair, duplicate, AD.illegal_parameter)


def test_trailing_bytes_in_server_hello(pair):
    _client_fails_on_server_hello(pair, lambda body: body + b"\x00", AD.decode_error)


def test_trailing_byte_in_server_hello_without_extensions(pair):
    def strip(body):
        fixed, exts, trailing = parse_server_hello(body)
        return fixed + b"\x00"

    _client_fails_on_server_hello(pair, strip, AD.decode_error)


def test_server_hello_with_unrequested_extension(pki):
    pair = Pair(pki.client_config(extended_master_secret=False), pki.server_config())

    def add_ems(body):
        fixed, exts, trailing = parse_server_hello(body)
        assert EXT_EMS not in [t for t, _ in exts]
        return build_server_hello(fixed, exts + [(EXT_EMS, b"")])

    _client_fails_on_server_hello(pair, add_ems, AD.unsupported_extension)


def test_server_hello_with_unoffered_suite(pki):
    suites = {s.openssl_name: s for s in TLS12_SUITES}
    pair = Pair(pki.client_config(cipher_suites=[suites["AES128-GCM-SHA256"]]), pki.server_config())

    def other_suite(body):
        sid_len = body[34]
        pos = 35 + sid_len
        return body[:pos] + struct.pack("!H", suites["AES256-SHA"].code) + body[pos + 2 :]

    _client_fails_on_server_hello(pair, other_suite, AD.illegal_parameter)


def test_server_hello_with_nonempty_renegotiation_info(pair):
    """RFC 5746 3.4: on an initial handshake renegotiated_connection must be empty."""

    def fill(body):
        fixed, exts, trailing = parse_server_hello(body)
        exts = [(t, vec(b"\x01" * 12, 1) if t == EXT_RENEGOTIATION_INFO else d) for t, d in exts]
        return build_server_hello(fixed, exts)

    _client_fails_on_server_hello(pair, fill, AD.handshake_failure)


def test_server_hello_with_old_version(pair):
    _client_fails_on_server_hello(pair, lambda body: struct.pack("!H", TLS11) + body[2:], AD.protocol_version)


# --------------------------------------------------------------------------------------------
# Resumption in memory (tickets and session IDs) and its EMS rule
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tickets", [True, False], ids=["tickets", "session-ids"])
def test_resumption_between_ferrotls_peers(tickets, pki):
    server_config = pki.server_config(session_tickets=tickets)
    client_config = pki.client_config(session_tickets=tickets)
    first = Pair(client_config, server_config).handshake()
    session = first.client.session
    assert session is not None and bool(session.ticket) == tickets
    second = Pair(client_config, server_config, session=session).handshake()
    assert second.client.resumed and second.server.resumed
    assert second.client.master_secret == first.client.master_secret
    second.app_roundtrip()


def test_resumed_server_hello_without_ems(pki, resumable):
    """RFC 7627 5.3: a server that resumes a session without echoing EMS is refused."""
    server_config, session = resumable
    pair = Pair(pki.client_config(), server_config, session=session)

    def drop_ems(body):
        fixed, exts, trailing = parse_server_hello(body)
        return build_server_hello(fixed, [(t, d) for t, d in exts if t != EXT_EMS])

    _client_fails_on_server_hello(pair, drop_ems, AD.handshake_failure)


def test_resumed_server_hello_with_another_suite(pki, resumable):
    server_config, session = resumable
    pair = Pair(pki.client_config(), server_config, session=session)
    other = next(s for s in TLS12_SUITES if s.code != session.cipher_suite)

    def other_suite(body):
        pos = 35 + body[34]
        return body[:pos] + struct.pack("!H", other.code) + body[pos + 2 :]

    _client_fails_on_server_hello(pair, other_suite, AD.illegal_parameter)


def test_tampered_ticket_falls_back_to_full_handshake(pki, resumable):
    server_config, session = resumable
    ticket = bytearray(session.ticket)
    ticket[-1] ^= 1
    # Without the session ID (the server also caches the session under it, which would be a
    # legitimate way to resume).
    forged = Session(**{**session.__dict__, "ticket": bytes(ticket), "session_id": b""})
    pair = Pair(pki.client_config(), server_config, session=forged).handshake()
    assert not pair.client.resumed and not pair.server.resumed
    pair.app_roundtrip()


def test_session_for_another_server_name_is_not_resumed(pki, resumable):
    server_config, session = resumable
    pair = Pair(pki.client_config(check_hostname=False), server_config, hostname="other.example",
                session=session).handshake()
    assert not pair.server.resumed and not pair.client.resumed


def _client_hello_extensions(client: Connection):
    """(session_id, {extension type: data}) of the ClientHello a client just wrote."""
    ((_, _, payload),) = split_records(client.data_to_send())
    ((msg_type, body),) = split_handshake(payload)
    assert msg_type == CLIENT_HELLO
    session_id = body[35 : 35 + body[34]]
    pos = 35 + body[34]
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
    pos += 1 + body[pos]
    block = body[pos + 2 :]
    exts, i = {}, 0
    while i < len(block):
        ext_type, length = struct.unpack("!HH", block[i : i + 4])
        exts[ext_type] = block[i + 4 : i + 4 + length]
        i += 4 + length
    return session_id, exts


@pytest.mark.parametrize("session_ems, config_ems", [(False, True), (True, False)],
                         ids=["session-without-ems", "ems-disabled-in-config"])
def test_client_never_offers_resumption_without_ems(session_ems, config_ems, pki):
    """RFC 7627 5.3: a session without an extended master secret is not offered, and "when
    offering an abbreviated handshake, the client MUST send the extended_master_secret
    extension" (OpenSSL aborts with "inconsistent extms" otherwise)."""
    session = Session(cipher_suite=GCM128.code, master_secret=os.urandom(48), extended_master_secret=session_ems,
                      created=time.time(), session_id=os.urandom(32), ticket=os.urandom(100))
    client = Connection(pki.client_config(extended_master_secret=config_ems), True, server_hostname="localhost",
                        session=session)
    client.start_handshake()
    session_id, exts = _client_hello_extensions(client)
    offered = session.session_id in (session_id,) or exts.get(EXT_SESSION_TICKET) == session.ticket
    if offered:
        assert EXT_EMS in exts, "a session offered for resumption without the extended_master_secret extension"
    if not session_ems:
        assert not offered
        assert exts[EXT_SESSION_TICKET] == b""  # asks for a ticket, offers none


def test_server_without_ems_issues_nothing_resumable(pki):
    server_config = pki.server_config(extended_master_secret=False)
    first = Pair(pki.client_config(), server_config).handshake()
    assert not first.client.extended_master_secret
    assert first.client.session is None and first.server.session is None
    assert len(server_config.session_cache) == 0


def test_a_bug_in_a_state_becomes_internal_error(pair, monkeypatch):
    """Any exception that is not a TLS failure (here an IndexError from the server's
    ClientHello state, standing for a bug or a library's exception on peer bytes) ends the
    connection with internal_error to the peer, as a TLSAlert that chains the original."""
    from ferrotls.protocol import server12

    def broken(self, conn, msg_type, body):
        raise IndexError("a bug")

    monkeypatch.setattr(server12.ExpectClientHello, "handle", broken)
    pair.client.start_handshake()
    alert = expect_alert(pair, pair.server, pair.take(pair.client), AD.internal_error)
    assert isinstance(alert.__cause__, IndexError)


def test_a_bug_in_the_handshake_reaches_the_caller_as_sslerror(pki, monkeypatch):
    """The same through ssl.SSLSocket: the caller gets ssl.SSLError (the bug chained as its
    __cause__), and the peer (the stdlib) gets an internal_error alert, not a hang."""
    import socket
    import ssl
    import threading

    import ferrotls
    from ferrotls.protocol import server12

    def broken(self, conn, msg_type, body):
        raise IndexError("a bug")

    monkeypatch.setattr(server12.ExpectClientHello, "handle", broken)
    server = ferrotls.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.server.cert_path, pki.server.key_path)
    client = ssl.create_default_context(cafile=pki.server_ca_path)
    listener = socket.create_server(("127.0.0.1", 0))
    raised = []

    def serve():
        conn, _ = listener.accept()
        conn.settimeout(10)
        try:
            server.wrap_socket(conn, server_side=True)
        except Exception as e:
            raised.append(e)
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    with socket.create_connection(listener.getsockname(), timeout=10) as sock:
        with pytest.raises(ssl.SSLError) as peer:
            client.wrap_socket(sock, server_hostname="localhost")
    thread.join(10)
    listener.close()
    assert peer.value.reason == "TLSV1_ALERT_INTERNAL_ERROR"
    (error,) = raised
    assert isinstance(error, ssl.SSLError) and isinstance(error.__cause__, IndexError)


# --------------------------------------------------------------------------------------------
# ClientHello extensions a server must refuse (RFC 6066 3, RFC 7627 5.3)
# --------------------------------------------------------------------------------------------


def client_hello_with_extensions(body: bytes, change) -> bytes:
    """A ClientHello body whose extensions list [(type, data)] is replaced by change(list)."""
    pos = 2 + 32
    pos += 1 + body[pos]  # session_id
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher_suites
    pos += 1 + body[pos]  # compression_methods
    exts, at, end = [], pos + 2, pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
    while at < end:
        ext_type, length = struct.unpack_from("!HH", body, at)
        exts.append((ext_type, body[at + 4 : at + 4 + length]))
        at += 4 + length
    encoded = b"".join(struct.pack("!HH", t, len(d)) + d for t, d in change(exts))
    return body[:pos] + vec(encoded, 2)


def server_name_extension(*names: tuple) -> bytes:
    return vec(b"".join(bytes([name_type]) + vec(name, 2) for name_type, name in names), 2)


BAD_HOST_NAMES = {
    "nul": [(0, b"local\x00host")],
    "control": [(0, b"local\x07host")],
    "space": [(0, b"local host")],
    "utf-8": [(0, "bücher.example".encode())],
    "trailing-dot": [(0, b"localhost.")],
    "empty-label": [(0, b"a..example")],
    "long-label": [(0, b"a" * 64 + b".example")],
    "two-host-names": [(0, b"localhost"), (0, b"other.example")],
}


def _with_server_name(pair, extension: bytes):
    pair.client.start_handshake()
    ((msg_type, body),) = split_handshake(b"".join(p for t, _, p in split_records(pair.take(pair.client))))
    new = client_hello_with_extensions(body, lambda exts: [(t, extension if t == 0 else d) for t, d in exts])
    return record(HANDSHAKE, handshake(msg_type, new))


@pytest.mark.parametrize("names", list(BAD_HOST_NAMES.values()), ids=list(BAD_HOST_NAMES))
def test_server_name_that_is_not_a_host_name(pki, names):
    pair = Pair(pki.client_config(), pki.server_config())
    expect_alert(pair, pair.server, _with_server_name(pair, server_name_extension(*names)), AD.illegal_parameter)


@pytest.mark.parametrize("name", [b"localhost", b"a-b.example", b"_acme.example", b"x" * 63 + b".example", b"127.0.0.1"])
def test_server_name_that_is_a_host_name(pki, name):
    pair = Pair(pki.client_config(), pki.server_config())
    pair.feed(pair.server, _with_server_name(pair, server_name_extension((0, name))))
    assert pair.server.server_name == name.decode() and pair.server.failed is None


def test_resumption_without_extended_master_secret_is_refused(pki, resumable):
    """RFC 7627 5.3: a ClientHello resuming a session that had the extended master secret
    without offering it again must abort the handshake (handshake_failure)."""
    server_config, session = resumable
    pair = Pair(pki.client_config(), server_config, session=session)
    pair.client.start_handshake()
    ((msg_type, body),) = split_handshake(b"".join(p for t, _, p in split_records(pair.take(pair.client))))
    stripped = client_hello_with_extensions(body, lambda exts: [(t, d) for t, d in exts if t != 23])
    expect_alert(pair, pair.server, record(HANDSHAKE, handshake(msg_type, stripped)), AD.handshake_failure)
