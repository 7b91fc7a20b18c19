"""The TLS 1.2 server handshake (RFC 5246 section 7.3), one class per state:

    ExpectClientHello -> (our flight) -> [ExpectClientCertificate] -> ExpectClientKeyExchange
      -> [ExpectCertificateVerify] -> ExpectChangeCipherSpec -> ExpectFinished -> (our flight)
    resumed: ExpectClientHello -> (ServerHello, [NewSessionTicket], CCS, Finished)
      -> ExpectChangeCipherSpec -> ExpectFinished
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .. import _core
from .alerts import AlertDescription, TLSAlert
from .common12 import SPKI, check_finished, check_signature, peer_public_key, send_finished, verify_chain
from .connection import Connection, Done, ExpectChangeCipherSpec, State
from .keys import derive_master_secret, record_protection, transcript_hash
from .messages import (
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
    Reader,
    ServerHello,
    ServerKeyExchange,
    UNCOMPRESSED,
    decode_alpn,
    decode_point_formats,
    decode_renegotiation_info,
    decode_server_name,
    encode_alpn,
    decode_u16_list,
    require_empty,
    vec,
)
from .sessions import Session
from .suites import BY_CODE, TLS_EMPTY_RENEGOTIATION_INFO_SCSV, choose

# ClientCertificateType (RFC 5246 7.4.4, RFC 8422 5.5): rsa_sign, ecdsa_sign.
CERTIFICATE_TYPES = bytes([1, 64])


class ExpectClientHello(State):
    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.client_hello:
            return super().handle(conn, msg_type, body)
        hello = ClientHello.decode(body)
        conn.info("read client hello")
        config = conn.config
        exts = hello.extensions
        if ExtensionType.supported_versions in exts:
            versions = _decode_versions(exts[ExtensionType.supported_versions])
            if TLS12 not in versions:
                raise TLSAlert(AlertDescription.protocol_version, "client does not offer TLS 1.2")
        elif hello.client_version < TLS12:
            raise TLSAlert(AlertDescription.protocol_version, f"client offers only {hello.client_version:#06x}")
        if 0 not in hello.compression_methods:
            raise TLSAlert(AlertDescription.illegal_parameter, "client does not offer null compression")
        if ExtensionType.renegotiation_info in exts:
            if decode_renegotiation_info(exts[ExtensionType.renegotiation_info]):
                raise TLSAlert(AlertDescription.handshake_failure, "renegotiation_info not empty")
            conn.secure_renegotiation = True
        if TLS_EMPTY_RENEGOTIATION_INFO_SCSV in hello.cipher_suites:
            conn.secure_renegotiation = True
        if ExtensionType.server_name in exts:
            conn.server_name = decode_server_name(exts[ExtensionType.server_name])
        if config.server_name_callback is not None:
            config = conn.config = config.server_name_callback(conn.server_name) or config
        conn.offered_suites = hello.cipher_suites
        # RFC 5246 7.4.1.4.1: without signature_algorithms only SHA-1 signatures would do, which
        # we do not make; ECDHE is then off and RSA key exchange (no signature) still works.
        client_schemes = []
        if ExtensionType.signature_algorithms in exts:
            codes = decode_u16_list(exts[ExtensionType.signature_algorithms], "signature_algorithms")
            client_schemes = [SCHEME_NAMES[c] for c in codes if c in SCHEME_NAMES]
        # RFC 8422 4: without supported_groups, any curve is fine; P-256 then.
        client_groups = [GROUPS["secp256r1"]]
        if ExtensionType.supported_groups in exts:
            client_groups = decode_u16_list(exts[ExtensionType.supported_groups], "supported_groups")
        if ExtensionType.ec_point_formats in exts and UNCOMPRESSED not in decode_point_formats(exts[ExtensionType.ec_point_formats]):
            client_groups = [g for g in client_groups if g == GROUPS["x25519"]]
        for flag in (ExtensionType.extended_master_secret, ExtensionType.encrypt_then_mac):
            if flag in exts:
                require_empty(exts[flag], flag.name)
        ems = config.extended_master_secret and ExtensionType.extended_master_secret in exts
        if config.require_extended_master_secret and not ems:
            raise TLSAlert(AlertDescription.handshake_failure, "client does not offer extended master secret")
        ticket = exts.get(ExtensionType.session_ticket) if config.session_tickets and config.ticket_keys else None
        conn.client_random = hello.random
        fresh = _core.random_bytes(64)  # server_random and a session ID, in one draw
        conn.server_random = fresh[:32]
        conn.extended_master_secret = ems
        conn.session_offered = bool(hello.session_id or ticket)
        session = _find_session(conn, hello, ticket)
        if session is not None and not ems:
            if ExtensionType.extended_master_secret not in exts:
                # RFC 7627 5.3: resuming an extended-master-secret session without the
                # extension aborts the handshake.
                raise TLSAlert(AlertDescription.handshake_failure, "resumption without extended master secret",
                               reason="INCONSISTENT_EXTMS")
            session = None  # ours is off: a full handshake
        def plan(suite):
            return _key_exchange_plan(config, suite, client_groups, client_schemes)

        suite = BY_CODE[session.cipher_suite] if session else choose(
            config.cipher_suites, hello.cipher_suites, config.prefer_client_ciphers, lambda s: plan(s) is not None
        )
        if suite is None:
            raise TLSAlert(AlertDescription.handshake_failure, "no shared cipher")
        conn.suite = suite
        conn.encrypt_then_mac = suite.is_cbc and config.encrypt_then_mac and ExtensionType.encrypt_then_mac in exts
        reply = {}
        if conn.secure_renegotiation:
            reply[ExtensionType.renegotiation_info] = vec(b"", 1)
        if ems:
            reply[ExtensionType.extended_master_secret] = b""
        if conn.encrypt_then_mac:
            reply[ExtensionType.encrypt_then_mac] = b""
        if suite.kx == "ECDHE" and ExtensionType.ec_point_formats in exts:
            reply[ExtensionType.ec_point_formats] = vec(bytes([UNCOMPRESSED]), 1)
        if ExtensionType.application_layer_protocol_negotiation in exts and config.alpn_protocols:
            offered = decode_alpn(exts[ExtensionType.application_layer_protocol_negotiation])
            # Our preference first (as OpenSSL's SSL_select_next_proto).
            conn.alpn_protocol = next((p for p in config.alpn_protocols if p in offered), None)
            if conn.alpn_protocol is None:
                raise TLSAlert(AlertDescription.no_application_protocol, "no ALPN protocol in common")  # RFC 7301 3.2
            reply[ExtensionType.application_layer_protocol_negotiation] = encode_alpn([conn.alpn_protocol])
        # Issue a ticket when asked for one and the session can be resumed (it has EMS).
        issue_ticket = ticket is not None and ems
        if issue_ticket:
            reply[ExtensionType.session_ticket] = b""
        if session is not None:
            return _resume(conn, hello, session, reply, issue_ticket)
        session_id = fresh[32:] if config.session_cache is not None and ems else b""
        conn.send_handshake(ServerHello(TLS12, conn.server_random, session_id, suite.code, 0, reply), "server hello")
        credential, group, scheme = plan(suite)
        conn.local_credential = credential
        conn.send_handshake(Certificate(credential.chain_der), "certificate")
        ephemeral = None
        if suite.kx == "ECDHE":
            ephemeral = _core.EphemeralKey(group)
            kx = ServerKeyExchange(GROUPS[group], ephemeral.public_bytes, SIGNATURE_SCHEMES[scheme])
            kx.signature = credential.key.sign(scheme, conn.client_random + conn.server_random + kx.params())
            conn.send_handshake(kx, "key exchange")
        if config.verify_peer:
            names = config.trust_store.subject_names_der() if config.trust_store is not None else []
            algorithms = [SIGNATURE_SCHEMES[s] for s in config.signature_schemes]
            conn.send_handshake(CertificateRequest(CERTIFICATE_TYPES, algorithms, names), "certificate request")
        conn.send_handshake(Empty(HandshakeType.server_hello_done), "server done")
        flight = ClientFlight(hello, session_id, issue_ticket, credential)
        flight.ephemeral = ephemeral
        return ExpectClientCertificate(flight) if config.verify_peer else ExpectClientKeyExchange(flight)


def _decode_versions(data: bytes):
    r = Reader(data, "supported_versions")
    versions = r.items(1, 2, minimum=2)
    r.done()
    return versions


def _key_exchange_plan(config, suite, client_groups, client_schemes):
    """(credential, group, signature scheme) to serve `suite` with, or None if we cannot: a
    certificate of the suite's kind, and for ECDHE a shared group and a scheme the client takes."""
    kind = "ec" if suite.auth == "ECDSA" else "rsa"
    credential = next((c for c in config.credentials if c.key_type == kind), None)
    if credential is None:
        return None
    if suite.kx != "ECDHE":
        return credential, None, None
    # RFC 8422 5.1: in TLS 1.2 the client's groups bound the ECDSA certificate's curve too.
    if kind == "ec" and GROUPS.get(credential.curve) not in client_groups:
        return None
    group = next((g for g in config.groups if GROUPS[g] in client_groups), None)
    scheme = next((s for s in credential.signature_schemes if s in client_schemes), None)
    if group is None or scheme is None:
        return None
    return credential, group, scheme


def _find_session(conn: Connection, hello: ClientHello, ticket: Optional[bytes]) -> Optional[Session]:
    """The session the client asks to resume, if we still have it and it still fits."""
    config = conn.config
    session = None
    if ticket:
        session = config.ticket_keys.open(ticket, conn.now)
    if session is None and hello.session_id and config.session_cache is not None:
        session = config.session_cache.get(hello.session_id, conn.now)
    if session is None:
        return None
    suite = BY_CODE.get(session.cipher_suite)
    if (
        not session.extended_master_secret
        or suite is None
        or suite not in config.cipher_suites
        or session.cipher_suite not in hello.cipher_suites
        or session.server_name != (conn.server_name or "")
    ):
        return None
    return session


def _resume(conn: Connection, hello: ClientHello, session: Session, reply, issue_ticket: bool) -> State:
    """The abbreviated handshake: the server's Finished comes first (RFC 5246 7.3)."""
    conn.resumed = True
    conn.master_secret = session.master_secret
    conn.peer_chain = list(session.peer_chain)
    # RFC 5077 3.4: echo the client's session ID to accept its ticket.
    conn.send_handshake(ServerHello(TLS12, conn.server_random, hello.session_id, conn.suite.code, 0, reply), "server hello")
    conn.session = session
    if issue_ticket:
        renewed = dataclasses.replace(session, ticket=b"")
        conn.send_handshake(NewSessionTicket(conn.config.ticket_keys.lifetime, conn.config.ticket_keys.seal(renewed, conn.now)), "session ticket")
    sealer, conn.pending_opener = record_protection(
        conn.suite, conn.master_secret, conn.client_random, conn.server_random, False, conn.encrypt_then_mac
    )
    conn.send_change_cipher_spec(sealer)
    send_finished(conn)
    return ExpectChangeCipherSpec(ExpectFinished(None))


class ClientFlight:
    """What the full handshake carries from ClientHello to the client's Finished."""

    def __init__(self, hello: ClientHello, session_id: bytes, issue_ticket: bool, credential):
        self.hello = hello
        self.session_id = session_id
        self.issue_ticket = issue_ticket
        self.credential = credential
        self.client_key_spki: Optional[bytes] = None
        self.sealer: Optional[_core.RecordSealer] = None
        self.ephemeral: Optional[_core.EphemeralKey] = None  # ECDHE


class ExpectClientCertificate(State):
    def __init__(self, flight: ClientFlight):
        self.flight = flight

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.certificate:
            return super().handle(conn, msg_type, body)
        chain = Certificate.decode(body).certificate_list
        conn.info("read client certificate")
        if not chain:
            if conn.config.require_peer_certificate:
                raise TLSAlert(AlertDescription.handshake_failure, "peer did not return a certificate")
            return ExpectClientKeyExchange(self.flight)
        conn.verified_chain = verify_chain(conn, chain, server=False)
        key = peer_public_key(chain)
        if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
            raise TLSAlert(AlertDescription.unsupported_certificate, "client key is neither RSA nor ECDSA")
        conn.peer_chain = chain
        self.flight.client_key_spki = key.public_bytes(*SPKI)
        return ExpectClientKeyExchange(self.flight)


class ExpectClientKeyExchange(State):
    def __init__(self, flight: ClientFlight):
        self.flight = flight

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.client_key_exchange:
            return super().handle(conn, msg_type, body)
        if self.flight.ephemeral is not None:
            public = ClientECDHKeyExchange.decode(body).public
            conn.info("read client key exchange")
            try:
                premaster = self.flight.ephemeral.exchange(public)
            except ValueError:
                raise TLSAlert(AlertDescription.illegal_parameter, "client's ECDHE public key is invalid") from None
        else:
            exchange = ClientKeyExchange.decode(body)
            conn.info("read client key exchange")
            # Never fails: a malformed block, of any length, yields a substitute premaster, and
            # the handshake fails at Finished like any wrong key (RFC 5246 7.4.7.1).
            premaster = self.flight.credential.key.rsa_premaster(exchange.encrypted_premaster, self.flight.hello.client_version)
        suite = conn.suite
        session_hash = transcript_hash(suite, bytes(conn.transcript)) if conn.extended_master_secret else b""
        conn.master_secret = derive_master_secret(suite, premaster, conn.client_random, conn.server_random, session_hash)
        self.flight.sealer, conn.pending_opener = record_protection(
            suite, conn.master_secret, conn.client_random, conn.server_random, False, conn.encrypt_then_mac
        )
        then = ExpectFinished(self.flight)
        if self.flight.client_key_spki is not None:
            return ExpectCertificateVerify(self.flight, then)
        return ExpectChangeCipherSpec(then)


class ExpectCertificateVerify(State):
    def __init__(self, flight: ClientFlight, then: State):
        self.flight = flight
        self.then = then

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.certificate_verify:
            return super().handle(conn, msg_type, body)
        verify = CertificateVerify.decode(body)
        signed = bytes(conn.transcript[: conn.transcript_mark])
        check_signature(conn, verify.algorithm, self.flight.client_key_spki, signed, verify.signature, "CertificateVerify")
        conn.info("read certificate verify")
        return ExpectChangeCipherSpec(self.then)


class ExpectFinished(State):
    """The client's Finished; after a full handshake, then our ticket, CCS and Finished."""

    def __init__(self, flight: Optional[ClientFlight]):
        self.flight = flight

    def handle(self, conn: Connection, msg_type: int, body: bytes) -> State:
        if msg_type != HandshakeType.finished:
            return super().handle(conn, msg_type, body)
        check_finished(conn, body)
        flight = self.flight
        if flight is None:  # resumed: our Finished went first
            return Done()
        config = conn.config
        if conn.extended_master_secret:
            conn.session = Session(
                cipher_suite=conn.suite.code,
                master_secret=conn.master_secret,
                extended_master_secret=True,
                created=conn.now,
                session_id=flight.session_id,
                server_name=conn.server_name or "",
                peer_chain=list(conn.peer_chain),
            )
            if config.session_cache is not None:
                config.session_cache.put(conn.session)
            if flight.issue_ticket:
                ticket = config.ticket_keys.seal(conn.session, conn.now)
                conn.send_handshake(NewSessionTicket(config.ticket_keys.lifetime, ticket), "session ticket")
        conn.send_change_cipher_spec(flight.sealer)
        send_finished(conn)
        return Done()
