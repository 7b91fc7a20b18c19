"""The TLS 1.2 client handshake (RFC 5246 section 7.3), one class per state:

    ClientStart -> ExpectServerHello -> ExpectCertificate -> ExpectCertificateRequestOrDone
      [-> ExpectServerHelloDone] -> (our flight) -> ExpectTicketOrChangeCipherSpec -> ExpectFinished
    resumed: ExpectServerHello -> ExpectTicketOrChangeCipherSpec -> ExpectFinished -> (our CCS, Finished)
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from typing import Optional

from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .. import _core
from .alerts import AlertDescription, TLSAlert
from .common12 import SPKI, check_finished, check_signature, peer_public_key, send_finished, verify_chain
from .connection import Connection, Done, ExpectChangeCipherSpec, State
from .keys import derive_master_secret, record_protection, transcript_hash
from .messages import (
    GROUP_NAMES,
    GROUPS,
    SCHEME_NAMES,
    SIGNATURE_SCHEMES,
    TLS12,
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    ClientECDHKeyExchange,
    ClientKeyExchange,
    Empty,
    ExtensionType,
    HandshakeType,
    NewSessionTicket,
    ServerHello,
    ServerKeyExchange,
    UNCOMPRESSED,
    decode_alpn,
    decode_point_formats,
    decode_renegotiation_info,
    encode_alpn,
    encode_server_name,
    require_empty,
    u16_list,
    vec,
)
from .sessions import Session
from .suites import BY_CODE


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class ClientStart(State):
    def start(self, conn: Connection) -> State:
        config = conn.config
        # One draw for the handshake's randomness (each aws-lc call pays for prediction
        # resistance): client_random, then the premaster's 46 random bytes.
        fresh = _core.random_bytes(32 + 46)
        conn.client_random = fresh[:32]
        session = conn.session
        # Resumption needs the extended master secret, on the session and offered now
        # (RFC 7627 5.3).
        if session is not None and not (
            config.extended_master_secret
            and session.extended_master_secret
            and any(s.code == session.cipher_suite for s in config.cipher_suites)
        ):
            session = None
        exts = {}
        if conn.server_hostname and not _is_ip(conn.server_hostname):
            exts[ExtensionType.server_name] = encode_server_name(conn.server_hostname)
        exts[ExtensionType.signature_algorithms] = u16_list([SIGNATURE_SCHEMES[s] for s in config.signature_schemes])
        if config.extended_master_secret:
            exts[ExtensionType.extended_master_secret] = b""
        if config.encrypt_then_mac and any(s.is_cbc for s in config.cipher_suites):
            exts[ExtensionType.encrypt_then_mac] = b""
        if config.session_tickets:
            exts[ExtensionType.session_ticket] = session.ticket if session is not None else b""
        if any(s.kx == "ECDHE" for s in config.cipher_suites):
            exts[ExtensionType.supported_groups] = u16_list([GROUPS[g] for g in config.groups])
            exts[ExtensionType.ec_point_formats] = vec(bytes([0]), 1)  # uncompressed only
        if config.alpn_protocols:
            exts[ExtensionType.application_layer_protocol_negotiation] = encode_alpn(config.alpn_protocols)
        exts[ExtensionType.renegotiation_info] = vec(b"", 1)
        # A session ID to resume by; with a ticket, a fresh one tells us whether the server took
        # it (RFC 5077 3.4).
        session_id = b""
        if session is not None:
            session_id = session.session_id or _core.random_bytes(32)
        hello = ClientHello(TLS12, conn.client_random, session_id, [s.code for s in config.cipher_suites], b"\x00", exts)
        conn.send_handshake(hello, "client hello")
        return ExpectServerHello(hello, session, fresh[32:])


class ExpectServerHello(State):
    def __init__(self, hello: ClientHello, session: Optional[Session], premaster_random: bytes):
        self.hello = hello
        self.session = session
        self.premaster_random = premaster_random

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.server_hello:
            return super().handle(conn, msg_type, body)
        sh = ServerHello.decode(body)
        conn.info("read server hello")
        if sh.server_version != TLS12:
            raise TLSAlert(AlertDescription.protocol_version, f"server chose version {sh.server_version:#06x}")
        suite = BY_CODE.get(sh.cipher_suite)
        if suite is None or sh.cipher_suite not in self.hello.cipher_suites:
            raise TLSAlert(AlertDescription.illegal_parameter, "server chose a cipher suite we did not offer")
        if sh.compression_method != 0:
            raise TLSAlert(AlertDescription.illegal_parameter, "server chose compression")
        exts = sh.extensions
        for ext in exts:
            if ext not in self.hello.extensions:
                raise TLSAlert(AlertDescription.unsupported_extension, f"server sent extension {ext} unasked")
        if ExtensionType.renegotiation_info in exts:
            if decode_renegotiation_info(exts[ExtensionType.renegotiation_info]):
                raise TLSAlert(AlertDescription.handshake_failure, "renegotiation_info not empty")
            conn.secure_renegotiation = True
        for flag in (ExtensionType.extended_master_secret, ExtensionType.encrypt_then_mac, ExtensionType.session_ticket):
            if flag in exts:
                require_empty(exts[flag], flag.name)
        if ExtensionType.ec_point_formats in exts and UNCOMPRESSED not in decode_point_formats(exts[ExtensionType.ec_point_formats]):
            raise TLSAlert(AlertDescription.illegal_parameter, "server does not take uncompressed points")
        if ExtensionType.application_layer_protocol_negotiation in exts:
            chosen = decode_alpn(exts[ExtensionType.application_layer_protocol_negotiation])
            # RFC 7301 3.1: exactly one name, one we offered.
            if len(chosen) != 1 or chosen[0] not in conn.config.alpn_protocols:
                raise TLSAlert(AlertDescription.illegal_parameter, "server chose an ALPN protocol we did not offer")
            conn.alpn_protocol = chosen[0]
        conn.suite = suite
        conn.server_random = sh.random
        conn.extended_master_secret = ExtensionType.extended_master_secret in exts
        if conn.config.require_extended_master_secret and not conn.extended_master_secret:
            raise TLSAlert(AlertDescription.handshake_failure, "server does not support extended master secret")
        conn.encrypt_then_mac = ExtensionType.encrypt_then_mac in exts
        if conn.encrypt_then_mac and not suite.is_cbc:
            raise TLSAlert(AlertDescription.illegal_parameter, "encrypt_then_mac with an AEAD suite")
        ticket_expected = ExtensionType.session_ticket in exts
        session = self.session
        if session is not None and sh.session_id and sh.session_id == self.hello.session_id:
            # Abbreviated handshake (RFC 5246 7.3; RFC 7627 5.3 for the EMS rule).
            if session.cipher_suite != suite.code:
                raise TLSAlert(AlertDescription.illegal_parameter, "resumed session with another cipher suite")
            if not conn.extended_master_secret:
                raise TLSAlert(AlertDescription.handshake_failure, "resumption without extended master secret")
            conn.resumed = True
            conn.master_secret = session.master_secret
            conn.peer_chain = list(session.peer_chain)
            sealer, conn.pending_opener = record_protection(
                suite, conn.master_secret, conn.client_random, conn.server_random, True, conn.encrypt_then_mac
            )
            return ExpectTicketOrChangeCipherSpec(ticket_expected, sh.session_id, sealer)
        return ExpectCertificate(ticket_expected, sh.session_id, self.premaster_random)


class ExpectCertificate(State):
    def __init__(self, ticket_expected: bool, session_id: bytes, premaster_random: bytes):
        self.ticket_expected = ticket_expected
        self.session_id = session_id
        self.premaster_random = premaster_random

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.certificate:
            return super().handle(conn, msg_type, body)
        chain = Certificate.decode(body).certificate_list
        conn.info("read server certificate")
        if not chain:
            raise TLSAlert(AlertDescription.decode_error, "server sent no certificate")
        conn.peer_chain = chain
        if conn.config.verify_peer:
            conn.verified_chain = verify_chain(conn, chain, server=True)
        key = peer_public_key(chain)
        wanted = ec.EllipticCurvePublicKey if conn.suite.auth == "ECDSA" else rsa.RSAPublicKey
        if not isinstance(key, wanted):
            raise TLSAlert(AlertDescription.unsupported_certificate, f"{conn.suite.openssl_name} needs an {conn.suite.auth} server key")
        if conn.suite.kx == "ECDHE":
            return ExpectServerKeyExchange(self, key)
        return ExpectCertificateRequestOrDone(self, key)


class ExpectServerKeyExchange(State):
    """ECDHE: the server's ephemeral key, signed by its certificate's key (RFC 8422 5.4)."""

    def __init__(self, prev: ExpectCertificate, server_key):
        self.prev = prev
        self.server_key = server_key

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.server_key_exchange:
            return super().handle(conn, msg_type, body)
        kx = ServerKeyExchange.decode(body)
        conn.info("read server key exchange")
        group = GROUP_NAMES.get(kx.named_group)
        if group not in conn.config.groups:
            raise TLSAlert(AlertDescription.illegal_parameter, "server chose a group we did not offer")
        signed = conn.client_random + conn.server_random + kx.params()
        check_signature(conn, kx.algorithm, self.server_key.public_bytes(*SPKI), signed, kx.signature, "ServerKeyExchange")
        state = ExpectCertificateRequestOrDone(self.prev, None)
        state.ecdhe = (group, kx.public)
        return state


class ExpectCertificateRequestOrDone(State):
    def __init__(self, prev: ExpectCertificate, server_key: Optional[rsa.RSAPublicKey]):
        self.prev = prev
        self.server_key = server_key  # RSA key exchange: the premaster is encrypted to it
        self.ecdhe: Optional[tuple] = None  # ECDHE: (group, server's public key)
        self.request: Optional[CertificateRequest] = None

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type == HandshakeType.certificate_request and self.request is None:
            self.request = CertificateRequest.decode(body)
            conn.info("read server certificate request")
            return self
        if msg_type != HandshakeType.server_hello_done:
            return super().handle(conn, msg_type, body)
        Empty.decode_as(HandshakeType.server_hello_done, body)
        conn.info("read server done")
        return self._send_flight(conn)

    def _send_flight(self, conn: Connection) -> State:
        suite = conn.suite
        credential = None
        scheme = None
        if self.request is not None:
            credential, scheme = _choose_credential(conn, self.request)
            conn.local_credential = credential
            chain = credential.chain_der if credential is not None else []
            conn.send_handshake(Certificate(chain), "client certificate")
        if self.ecdhe is not None:
            group, server_public = self.ecdhe
            ephemeral = _core.EphemeralKey(group)
            try:
                premaster = ephemeral.exchange(server_public)
            except ValueError:
                raise TLSAlert(AlertDescription.illegal_parameter, "server's ECDHE public key is invalid") from None
            conn.send_handshake(ClientECDHKeyExchange(ephemeral.public_bytes), "client key exchange")
        else:
            # RFC 5246 7.4.7.1: client_version, then 46 random bytes, encrypted to the server's key.
            premaster = struct.pack("!H", TLS12) + self.prev.premaster_random
            encrypted = self.server_key.encrypt(premaster, padding.PKCS1v15())
            conn.send_handshake(ClientKeyExchange(encrypted), "client key exchange")
        session_hash = transcript_hash(suite, bytes(conn.transcript)) if conn.extended_master_secret else b""
        conn.master_secret = derive_master_secret(suite, premaster, conn.client_random, conn.server_random, session_hash)
        if credential is not None and scheme is not None:
            signature = credential.key.sign(scheme, bytes(conn.transcript))
            conn.send_handshake(CertificateVerify(SIGNATURE_SCHEMES[scheme], signature), "certificate verify")
        sealer, conn.pending_opener = record_protection(
            suite, conn.master_secret, conn.client_random, conn.server_random, True, conn.encrypt_then_mac
        )
        conn.send_change_cipher_spec(sealer)
        send_finished(conn)
        return ExpectTicketOrChangeCipherSpec(self.prev.ticket_expected, self.prev.session_id, None)


def _choose_credential(conn: Connection, request: CertificateRequest):
    """The client certificate whose chain ends at a CA the server named (RFC 5246 7.4.6), and
    a signature scheme both sides support; (None, None) when none fits."""
    from ..x509.keystore import choose_credential

    offered = {SCHEME_NAMES[c] for c in request.signature_algorithms if c in SCHEME_NAMES}
    fitting = [
        c
        for c in choose_credential(conn.config.credentials, request.certificate_authorities)
        if any(s in offered for s in c.signature_schemes)
    ]
    if not fitting:
        return None, None
    chooser = conn.config.choose_certificate
    credential = chooser(fitting, request.certificate_authorities) if chooser else fitting[0]
    if credential is None:
        return None, None
    scheme = next(s for s in credential.signature_schemes if s in offered)
    return credential, scheme


class ExpectTicketOrChangeCipherSpec(State):
    """RFC 5077 3.3: a server that sent an empty session_ticket extension sends NewSessionTicket
    before its ChangeCipherSpec."""

    def __init__(self, ticket_expected: bool, session_id: bytes, resumed_sealer):
        self.ticket_expected = ticket_expected
        self.session_id = session_id
        self.resumed_sealer = resumed_sealer
        self.ticket: Optional[NewSessionTicket] = None

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.new_session_ticket or not self.ticket_expected or self.ticket is not None:
            return super().handle(conn, msg_type, body)
        self.ticket = NewSessionTicket.decode(body)
        conn.info("read server session ticket")
        return self

    def handle_ccs(self, conn: Connection) -> State:
        if self.ticket_expected and self.ticket is None:
            raise TLSAlert(AlertDescription.unexpected_message, "NewSessionTicket missing")
        return ExpectChangeCipherSpec(ExpectFinished(self)).handle_ccs(conn)


class ExpectFinished(State):
    def __init__(self, prev: ExpectTicketOrChangeCipherSpec):
        self.prev = prev

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.finished:
            return super().handle(conn, msg_type, body)
        check_finished(conn, body)
        if self.prev.resumed_sealer is not None:
            conn.send_change_cipher_spec(self.prev.resumed_sealer)
            send_finished(conn)
        _remember_session(conn, self.prev)
        return Done()


def _remember_session(conn: Connection, prev: ExpectTicketOrChangeCipherSpec) -> None:
    """Keeps what resumption needs; only sessions with an extended master secret qualify."""
    old = conn.session if conn.resumed else None
    ticket = prev.ticket.ticket if prev.ticket is not None else (old.ticket if old is not None else b"")
    if not conn.extended_master_secret or not (ticket or prev.session_id):
        conn.session = None
        return
    # As OpenSSL: a session with a new ticket is named by the ticket's SHA-256, which the client
    # then offers as its session ID, and which the server echoes when it takes the ticket.
    session_id = hashlib.sha256(ticket).digest() if prev.ticket is not None else prev.session_id
    conn.session = Session(
        cipher_suite=conn.suite.code,
        master_secret=conn.master_secret,
        extended_master_secret=True,
        created=old.created if old is not None else conn.now,
        session_id=session_id,
        ticket=ticket,
        lifetime_hint=prev.ticket.lifetime_hint if prev.ticket is not None else (old.lifetime_hint if old else 0),
        server_name=conn.server_hostname or "",
        peer_chain=list(conn.peer_chain),
    )

