"""`ferrotls s_client`: connect, handshake, report like `openssl s_client`, then relay stdin to the
connection and the connection to stdout.

Differences from openssl, on purpose:
- -state lines and the depth=/verify lines go to stdout (openssl writes them to stderr), and the
  chain is checked after the handshake, so its lines follow the state lines.
- The server's name is checked against the certificate when -servername is given (openssl needs
  -verify_hostname for that); otherwise only the chain is checked, as openssl does.
- Without -verify_return_error a verification failure is reported ("Verify return code: 20 ...")
  and the connection goes on, as in openssl; with it, the handshake fails with the alert.
- The summary never shows the master key, and shows the ticket's length instead of a hex dump.
- Lines typed on stdin are sent as they are: no "Q"/"R" commands; -quiet does not imply -ign_eof.
- Session files (-sess_out, -sess_in) hold ferrotls's own session encoding, PEM-armoured as
  "FERROTLS SESSION PARAMETERS" and readable by the owner only; openssl cannot read them.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from typing import List, Optional, Tuple

from cryptography.hazmat.primitives import serialization

from .cli_common import (
    CLIError,
    Printer,
    chain_lines,
    error,
    failure_text,
    is_ip,
    load_chain,
    load_our_credential,
    load_trust_store,
    outcome_line,
    parse_hostport,
    parse_password,
    read_session,
    renegotiation_line,
    session_lines,
    subject_lines,
    verify_error_of,
    write_session,
)
from .engine import SocketEngine, TLSError
from .protocol import Connection, Session, TLSConfig, parse_cipher_list
from .protocol.messages import GROUP_NAMES, SCHEME_NAMES, HandshakeType, ServerKeyExchange, split_messages
from .x509 import CertificateVerifyError, describe_chain, oneline_name, verify_server_chain

PROG = "ferrotls s_client"
CONNECT_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0
CLOSE_WAIT = 2.0
RECONNECTS = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-connect", metavar="host:port", default="localhost:4433", help="where to connect (default localhost:4433)")
    p.add_argument("-servername", metavar="name", help="the name sent in SNI (default: the -connect host unless an IP address); also checked against the certificate")
    p.add_argument("-noservername", action="store_true", help="send no SNI")
    p.add_argument("-CAfile", metavar="file", help="PEM file of trusted CAs (default: the system's)")
    p.add_argument("-CApath", metavar="dir", help="directory of trusted CA files")
    p.add_argument("-cert", metavar="file", help="client certificate chain (PEM), sent when the server asks")
    p.add_argument("-key", metavar="file", help="its private key (PEM; default: in -cert)")
    p.add_argument("-pass", dest="passarg", metavar="arg", help="private key pass phrase: pass:, env:, file:, fd:, stdin")
    p.add_argument("-cipher", metavar="list", help="cipher suites to offer, in order (openssl or IANA names, ':'-separated)")
    p.add_argument("-state", action="store_true", help="print the handshake states")
    p.add_argument("-quiet", action="store_true", help="no summary or state lines; just the data")
    p.add_argument("-ign_eof", action="store_true", help="at stdin EOF keep reading until the server closes")
    p.add_argument("-sess_out", metavar="file", help="save the session to a file")
    p.add_argument("-sess_in", metavar="file", help="resume the session saved in a file")
    p.add_argument("-reconnect", action="store_true", help=f"reconnect {RECONNECTS} times with the same session, then exit")
    p.add_argument("-no_ems", action="store_true", help="do not offer the extended master secret")
    p.add_argument("-no_etm", action="store_true", help="do not offer encrypt-then-MAC")
    p.add_argument("-no_ticket", action="store_true", help="do not ask for a session ticket")
    p.add_argument("-verify_return_error", action="store_true", help="fail the handshake when the chain does not verify")
    p.add_argument("-tls1_2", action="store_true", help="TLS 1.2 only (the only version; accepted for openssl's sake)")


class Client:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Printer(enabled=not args.quiet)
        self.host, self.port = parse_hostport(args.connect)
        host = self.host.strip("[]")
        self.sni: Optional[str] = None if args.noservername else (args.servername or (None if is_ip(host) else host))
        # The name checked against the certificate: only one asked for explicitly.
        self.check_name: Optional[str] = None if args.noservername else args.servername
        password = parse_password(args.passarg)
        credentials = [load_our_credential(args.cert, args.key, password)] if args.cert else []
        self.store = load_trust_store(args.CAfile, args.CApath, defaults=True)
        try:
            suites = parse_cipher_list(args.cipher)
        except ValueError as e:
            raise CLIError(str(e)) from None
        self.config = TLSConfig(
            cipher_suites=suites,
            credentials=credentials,
            trust_store=self.store,
            verify_peer=args.verify_return_error,
            check_hostname=self.check_name is not None,
            extended_master_secret=not args.no_ems,
            encrypt_then_mac=not args.no_etm,
            session_tickets=not args.no_ticket,
            session_cache=None,
            ticket_keys=None,
            info_callback=self.out if args.state else None,
        )

    # One connection.

    def connect(self, session: Optional[Session]) -> Tuple[socket.socket, SocketEngine]:
        try:
            sock = socket.create_connection((self.host.strip("[]"), self.port), timeout=CONNECT_TIMEOUT)
        except OSError as e:
            raise CLIError(f"connect:errno={e.errno} ({e.strerror or e})") from None
        self.out(f"CONNECTED({sock.fileno():08X})")
        sock.settimeout(HANDSHAKE_TIMEOUT)
        conn = Connection(self.config, True, server_hostname=self.sni, session=session)
        return sock, SocketEngine(sock, conn)

    def handshake(self, sock: socket.socket, engine: SocketEngine) -> bool:
        try:
            engine.do_handshake()
            return True
        except (TLSError, OSError) as e:
            verify = verify_error_of(e)
            if verify is not None:
                self._print_verify_failure(engine.conn.peer_chain, verify, fatal=True)
            error(PROG, f"handshake failed: {failure_text(e, engine.conn)}")
            sock.close()
            return False

    def verify(self, conn: Connection) -> Tuple[int, str]:
        """The chain check: done in the handshake with -verify_return_error, else here."""
        if conn.verified_chain:
            self.out.lines(describe_chain(conn.verified_chain))
            return 0, "ok"
        if not conn.peer_chain:
            return 0, "ok"
        try:
            path = verify_server_chain(self.store, conn.peer_chain, self.check_name)
        except CertificateVerifyError as e:
            if not conn.resumed:  # like openssl, a resumed session reports its result quietly
                self._print_verify_failure(conn.peer_chain, e, fatal=False)
            return e.verify_code, e.verify_message
        if not conn.resumed:
            self.out.lines(describe_chain(path))
        return 0, "ok"

    def _print_verify_failure(self, chain_der: List[bytes], e: CertificateVerifyError, fatal: bool) -> None:
        chain = load_chain(chain_der)
        subject = oneline_name(chain[e.depth].subject) if e.depth < len(chain) else ""
        lines = [f"depth={e.depth} {subject}".rstrip(), f"verify error:num={e.verify_code}:{e.verify_message}"]
        lines.append(f"verify return:{0 if fatal else 1}")
        if fatal:
            Printer(sys.stderr).lines(lines)
        else:
            self.out.lines(lines)

    def summary(self, engine: SocketEngine, verify: Tuple[int, str]) -> None:
        conn, counted = engine.conn, engine.transport
        chain = load_chain(conn.peer_chain)
        lines = ["---"]
        if chain and not conn.resumed:
            lines += chain_lines(chain) + ["---"]
        if chain:
            pem = chain[0].public_bytes(serialization.Encoding.PEM).decode("ascii").rstrip("\n")
            lines += ["Server certificate", *pem.split("\n"), *subject_lines(chain[0]), "---"]
        else:
            lines += ["no peer certificate available", "---"]
        if conn.local_credential is not None:
            lines += ["Client certificate sent", *subject_lines(conn.local_credential.chain[0]), "---"]
        lines += key_exchange_lines(conn)
        lines += [
            f"SSL handshake has read {counted.bytes_read} bytes and written {counted.bytes_written} bytes",
            "Verification: OK" if verify[0] == 0 else f"Verification error: {verify[1]}",
        ]
        if verify[0] == 0 and self.check_name and chain:
            lines.append(f"Verified peername: {self.check_name}")
        lines += ["---", outcome_line(conn)]
        if chain:
            lines.append(f"Server public key is {chain[0].public_key().key_size} bit")
        lines += [renegotiation_line(conn), "Compression: NONE", "Expansion: NONE", "No ALPN negotiated"]
        if conn.suite.is_cbc:
            lines.append(f"Encrypt-then-MAC: {'yes' if conn.encrypt_then_mac else 'no'}")
        lines += session_lines(conn, verify) + ["---"]
        self.out.lines(lines)

    def session_one(self, session: Optional[Session]):
        """Connects, handshakes and reports; (sock, engine) or None when it failed."""
        sock, engine = self.connect(session)
        if not self.handshake(sock, engine):
            return None
        conn = engine.conn
        verify = self.verify(conn)
        self.summary(engine, verify)
        if self.args.sess_out:
            try:
                write_session(self.args.sess_out, conn.session)
            except (CLIError, OSError) as e:
                error(PROG, str(e))  # the connection itself is fine: go on
        return sock, engine

    def run(self) -> int:
        session = read_session(self.args.sess_in) if self.args.sess_in else None
        if self.args.reconnect:
            for i in range(RECONNECTS + 1):
                if i:
                    self.out("drop connection and then reconnect")
                result = self.session_one(session)
                if result is None:
                    return 1
                sock, engine = result
                session = engine.conn.session or session
                _close(sock, engine)
            return 0
        result = self.session_one(session)
        if result is None:
            return 1
        sock, engine = result
        return Relay(sock, engine, ign_eof=self.args.ign_eof).run()


# How openssl s_client names the ECDHE groups ("Server Temp Key") and signature schemes.
TEMP_KEYS = {"x25519": "X25519, 253 bits", "secp256r1": "ECDH, prime256v1, 256 bits",
             "secp384r1": "ECDH, secp384r1, 384 bits"}
SIGNATURE_TYPES = {"rsa_pss_rsae": "RSA-PSS", "rsa_pkcs1": "RSA", "ecdsa": "ECDSA"}


def server_key_exchange(conn: Connection) -> Optional[ServerKeyExchange]:
    """The ServerKeyExchange of a full ECDHE handshake (read back from the transcript), or None."""
    if conn.resumed or conn.suite is None or conn.suite.kx != "ECDHE":
        return None
    for msg_type, body, _ in split_messages(bytearray(conn.transcript)):
        if msg_type == HandshakeType.server_key_exchange:
            return ServerKeyExchange.decode(body)
    return None


def key_exchange_lines(conn: Connection) -> List[str]:
    """openssl's "Peer signing digest", "Peer signature type" and "Server Temp Key" lines, for a
    full ECDHE handshake; nothing otherwise (as openssl: no ephemeral key, no signature)."""
    kx = server_key_exchange(conn)
    if kx is None:
        return []
    scheme = SCHEME_NAMES.get(kx.algorithm, "")
    kind, _, digest = scheme.rpartition("_")
    kind = next((name for prefix, name in SIGNATURE_TYPES.items() if kind.startswith(prefix)), kind)
    group = GROUP_NAMES.get(kx.named_group)
    return [f"Peer signing digest: {digest.upper()}", f"Peer signature type: {kind}",
            f"Server Temp Key: {TEMP_KEYS.get(group, group)}", "---"]


def _close(sock: socket.socket, engine: SocketEngine) -> None:
    try:
        engine.close(wait_for_peer=True, timeout=CLOSE_WAIT)
    except OSError:
        pass
    sock.close()


class Relay:
    """stdin -> connection and connection -> stdout after the handshake: a reader thread and a
    writer thread on the one engine, which lets both run at once (full duplex)."""

    def __init__(self, sock: socket.socket, engine: SocketEngine, ign_eof: bool):
        self.sock = sock
        self.engine = engine
        self.ign_eof = ign_eof
        self.peer_done = threading.Event()
        self.stdin_done = threading.Event()
        self.failure: Optional[BaseException] = None
        self.truncated = False
        self.closing = False

    def read_connection(self) -> None:
        out = sys.stdout.buffer
        try:
            while True:
                data = self.engine.recv(1 << 18)
                if not data:
                    self.truncated = not self.engine.conn.peer_closed
                    return
                out.write(data)
                out.flush()
        except (TLSError, OSError, ValueError) as e:
            if not self.closing:
                self.failure = e
        finally:
            self.peer_done.set()

    def read_stdin(self) -> None:
        fd = sys.stdin.fileno()
        try:
            while not self.peer_done.is_set():
                data = os.read(fd, 1 << 16)
                if not data:
                    return
                self.engine.sendall(data)
        except (TLSError, OSError, RuntimeError) as e:
            if not self.peer_done.is_set():
                self.failure = self.failure or e
                self.peer_done.set()
        finally:
            self.stdin_done.set()

    def run(self) -> int:
        sys.stdout.flush()
        self.sock.settimeout(None)
        reader = threading.Thread(target=self.read_connection, name="s_client connection", daemon=True)
        writer = threading.Thread(target=self.read_stdin, name="s_client stdin", daemon=True)
        reader.start()
        writer.start()
        try:
            while not (self.peer_done.is_set() or (self.stdin_done.is_set() and not self.ign_eof)):
                self.peer_done.wait(0.1)
            if not self.peer_done.is_set():
                # stdin ended: close_notify, then what the server still sends until its
                # close_notify, for CLOSE_WAIT seconds at most.
                self.engine.close()
                self.peer_done.wait(CLOSE_WAIT)
        except KeyboardInterrupt:
            pass
        self.closing = True
        conn = self.engine.conn
        if self.failure is None and conn.failed is None:
            self.engine.close()  # a no-op once close_notify went
        self.sock.close()
        reader.join(1.0)
        if self.failure is not None:
            error(PROG, f"connection failed: {failure_text(self.failure, conn)}")
            return 1
        if self.truncated:
            error(PROG, "the server closed the connection without close_notify")
        return 0


def run(args: argparse.Namespace) -> int:
    try:
        return Client(args).run()
    except CLIError as e:
        error(PROG, str(e))
        return 1
