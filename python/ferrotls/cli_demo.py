"""`ferrotls demo`: a ferrotls client and a ferrotls server on 127.0.0.1 shake hands, resume with a
session ticket and move 32 MiB, and the demo explains every step in plain words.

The narration comes from both sides' info callbacks (the same strings `-state` prints) plus the
values each Connection has negotiated at that moment. Secrets are never shown: only their names,
sizes and how they are derived. Nothing but the installed wheel is needed (certificates are made
with `cryptography`, a runtime dependency).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import socket
import struct
import sys
import tempfile
import textwrap
import threading
import time
from typing import Callable, Dict, List, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .engine import SocketEngine
from .protocol import Connection, TLS12_SUITES, TLSConfig
from .x509 import TrustStore, load_credential, oneline_name

BULK_BYTES = 32 << 20
CHUNK = 1 << 20
TIMEOUT = 10.0
WIDTH = 100
INDENT = " " * 11  # under the message, past "  client → "

# The server decides by its own order (a strongest-first one), whatever order the client lists.
SERVER_ORDER = ["AES256-GCM-SHA384", "AES128-GCM-SHA256", "AES256-SHA256", "AES128-SHA256", "AES256-SHA", "AES128-SHA"]


# Arrows and ticks where the terminal can show them, ASCII where it cannot.
_ASCII = {"→": "->", "←": "<-", "✓": "ok", "—": "-", "…": "..."}


def show(text: str = "") -> None:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        for symbol, plain in _ASCII.items():
            text = text.replace(symbol, plain)
        text = text.encode("ascii", "replace").decode("ascii")
    print(text, flush=True)


# Throwaway certificates.

def make_certificates(directory: str) -> Dict[str, str]:
    """A CA (ECDSA P-256) and an RSA-2048 certificate for "localhost" it signed, as PEM files."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferrotls demo CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {name: os.path.join(directory, name) for name in ("ca.pem", "localhost.pem", "localhost.key")}
    pem = serialization.Encoding.PEM
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["localhost.pem"], "wb") as f:
        f.write(leaf.public_bytes(pem))
    with open(paths["localhost.key"], "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def _key_usage(**true: bool) -> x509.KeyUsage:
    names = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"]
    return x509.KeyUsage(**{n: true.get(n, False) for n in names})


# The narration.

class Narrator:
    """Turns each side's info-callback steps into sentences. Both sides run in this process (the
    server in a thread); a step of one side can only follow the other side's bytes, so the lines
    come out in the order things happen on the wire."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conns: Dict[str, Optional[Connection]] = {"client": None, "server": None}

    def say(self, side: str, arrow: str, text: str) -> None:
        lead = f"  {side:<6} {arrow} "
        lines = textwrap.wrap(text, WIDTH, initial_indent=lead, subsequent_indent=INDENT)
        with self.lock:
            show("\n".join(lines))

    def callback(self, side: str) -> Callable[[str], None]:
        def info(where: str) -> None:
            conn = self.conns[side]
            if conn is not None:
                self.step(side, conn, where)

        return info

    def step(self, side: str, conn: Connection, where: str) -> None:
        where = where.split(":", 1)[1] if where.startswith(("SSL_connect:", "SSL_accept:")) else where
        where = where[len("SSLv3/TLS "):] if where.startswith("SSLv3/TLS ") else where
        if where.startswith("SSL3 alert "):
            kind, _, name = where[len("SSL3 alert "):].partition(":")
            name = name.split(":")[-1].replace(" ", "_")
            self.say(side, "→" if kind.startswith("write") else "←", f"alert {name}")
            return
        handler = getattr(self, f"{side}_{where.replace(' ', '_')}", None)
        if handler is not None:
            handler(conn)

    # The client's steps.

    def client_write_client_hello(self, conn: Connection) -> None:
        config = conn.config
        if conn.session is not None:
            self.say("client", "→", f"ClientHello asking to resume: the {len(conn.session.ticket)}-byte session ticket goes "
                     "back in the session_ticket extension, with a fresh random session ID that the server echoes "
                     "if it takes the ticket (RFC 5077 3.4); the same suites and extensions as before.")
            return
        suites = " ".join(s.openssl_name for s in config.cipher_suites)
        self.say("client", "→", f"ClientHello: TLS 1.2, a 32-byte client_random and {len(config.cipher_suites)} cipher "
                 f"suites in the client's order of preference: {suites}. Extensions: server_name "
                 f"\"{conn.server_hostname}\", extended_master_secret, encrypt_then_mac, session_ticket (empty: "
                 "\"send me a ticket\"), renegotiation_info, signature_algorithms.")

    def client_read_server_hello(self, conn: Connection) -> None:
        self.say("client", "←", "ServerHello")

    def client_read_server_certificate(self, conn: Connection) -> None:
        self.say("client", "←", "Certificate")

    def client_read_server_done(self, conn: Connection) -> None:
        self.say("client", "←", "ServerHelloDone")
        chain = conn.verified_chain
        if not chain:
            return
        parts = []
        for depth, cert in enumerate(chain):
            what = f"depth {depth}: {oneline_name(cert.subject)}"
            key = cert.public_key()
            if isinstance(key, rsa.RSAPublicKey):
                what += f" (RSA {key.key_size}-bit key)"
            what += " — a trust anchor in the client's store" if depth == len(chain) - 1 else f", signed by {oneline_name(cert.issuer)}"
            parts.append(what)
        leaf = chain[0]
        until = leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
        self.say("client", "✓", f"verified the server's chain, depth {len(chain) - 1}: " + "; ".join(parts) +
                 f". The name \"{conn.server_hostname}\" matches the certificate's subjectAltName, it is valid until "
                 f"{until}, and its extendedKeyUsage allows serverAuth.")

    def client_write_client_key_exchange(self, conn: Connection) -> None:
        key = x509.load_der_x509_certificate(conn.peer_chain[0]).public_key()
        bits = key.key_size
        self.say("client", "→", "ClientKeyExchange: a fresh 48-byte premaster secret (the version 0x0303 and 46 "
                 f"random bytes), RSA-encrypted (PKCS #1 v1.5) to the server's {bits}-bit public key: {bits // 8} "
                 "bytes on the wire.")

    def client_write_change_cipher_spec(self, conn: Connection) -> None:
        if not conn.resumed:
            self.say("client", "=", master_secret_text(conn))
        self.say("client", "→", f"ChangeCipherSpec: from here on the client's records are encrypted ({cipher_words(conn)}).")

    def client_write_finished(self, conn: Connection) -> None:
        self.say("client", "→", f"Finished, encrypted: verify_data = PRF(master_secret, \"client finished\", "
                 f"{conn.suite.prf_hash.upper()}(every handshake message so far))[0..11], 12 bytes.")

    def client_read_server_session_ticket(self, conn: Connection) -> None:
        self.say("client", "←", "NewSessionTicket")

    def client_read_change_cipher_spec(self, conn: Connection) -> None:
        self.say("client", "←", "ChangeCipherSpec")

    def client_read_finished(self, conn: Connection) -> None:
        self.say("client", "✓", "Finished verified: the server holds the same master secret and saw the same messages.")

    # The server's steps.

    def server_read_client_hello(self, conn: Connection) -> None:
        self.say("server", "←", "ClientHello")

    def server_write_server_hello(self, conn: Connection) -> None:
        suite = conn.suite.openssl_name
        if conn.resumed:
            self.say("server", "→", "ServerHello: the ticket opens under the server's ticket key, so it echoes the "
                     f"client's session ID and resumes the session: {suite} and its stored master secret. An "
                     "abbreviated handshake: no Certificate, no key exchange, no RSA operation, one round trip.")
            return
        order = " ".join(s.openssl_name for s in conn.config.cipher_suites)
        agreed = ["extended master secret (RFC 7627)"] if conn.extended_master_secret else []
        agreed.append("a session ticket (RFC 5077)")
        if conn.secure_renegotiation:
            agreed.append("secure renegotiation signalling (RFC 5746)")
        if conn.encrypt_then_mac:
            agreed.append("encrypt-then-MAC (RFC 7366)")
        self.say("server", "→", f"ServerHello: TLS 1.2, a 32-byte server_random, a session ID, and the cipher suite "
                 f"{suite}. Why: the server goes down its own preference order ({order}) and takes the first suite "
                 f"the client offered, whatever order the client listed them in. Agreed: {', '.join(agreed)}.")

    def server_write_certificate(self, conn: Connection) -> None:
        chain = conn.local_credential.chain
        names = "; ".join(f"{oneline_name(c.subject)}, issued by {oneline_name(c.issuer)}" for c in chain)
        self.say("server", "→", f"Certificate: its chain of {len(chain)} certificate{'s' if len(chain) > 1 else ''} "
                 f"({names}); the CA itself stays with the client.")

    def server_write_server_done(self, conn: Connection) -> None:
        self.say("server", "→", "ServerHelloDone: the server's first flight is complete.")

    def server_read_client_key_exchange(self, conn: Connection) -> None:
        self.say("server", "←", "ClientKeyExchange: decrypted with the server's RSA key in constant time, with "
                 "implicit rejection: a malformed block would yield a random premaster instead of an error, so "
                 "neither the timing nor the reply can serve as a padding oracle (Bleichenbacher, ROBOT).")

    def server_read_change_cipher_spec(self, conn: Connection) -> None:
        if not conn.resumed:
            self.say("server", "=", "the same premaster and transcript give the server the same master secret and keys.")
        self.say("server", "←", "ChangeCipherSpec")

    def server_read_finished(self, conn: Connection) -> None:
        self.say("server", "✓", "Finished verified: the client holds the same master secret and saw the same messages.")

    def server_write_session_ticket(self, conn: Connection) -> None:
        lifetime = conn.config.ticket_keys.lifetime
        self.say("server", "→", "NewSessionTicket: the session state (suite, master secret, peer chain) sealed with "
                 f"the server's ticket key (AES-256-GCM); lifetime {lifetime} s. The server keeps nothing: the "
                 "client carries it.")

    def server_write_change_cipher_spec(self, conn: Connection) -> None:
        self.say("server", "→", "ChangeCipherSpec: from here on the server's records are encrypted too.")

    def server_write_finished(self, conn: Connection) -> None:
        first = " (an abbreviated handshake: the server's Finished comes first)" if conn.resumed else ""
        self.say("server", "→", f"Finished, encrypted: verify_data = PRF(master_secret, \"server finished\", "
                 f"{conn.suite.prf_hash.upper()}(every handshake message so far))[0..11]{first}.")


def master_secret_text(conn: Connection) -> str:
    suite = conn.suite
    h = suite.prf_hash.upper()
    if conn.extended_master_secret:
        text = ("derives the master secret: master_secret = PRF(premaster, \"extended master secret\", session_hash), "
                f"session_hash = {h}(ClientHello ... ClientKeyExchange), which ties it to this very handshake "
                "(RFC 7627).")
    else:
        text = "derives the master secret: master_secret = PRF(premaster, \"master secret\", client_random + server_random)."
    parts = []
    if suite.mac_key_len:
        parts.append(f"2 MAC keys of {suite.mac_key_len}")
    parts.append(f"2 AES keys of {suite.key_len}")
    if suite.fixed_iv_len:
        parts.append(f"2 GCM salts of {suite.fixed_iv_len}")
    return (text + f" It is 48 bytes, with the PRF on HMAC-{h}; then key_block = PRF(master_secret, \"key expansion\", "
            f"server_random + client_random): {suite.key_block_len} bytes = {' + '.join(parts)} bytes. "
            "Secrets are never shown.")


def cipher_words(conn: Connection) -> str:
    suite = conn.suite
    bits = suite.key_len * 8
    if suite.is_cbc:
        mac = "encrypt-then-MAC" if conn.encrypt_then_mac else "MAC-then-encrypt"
        return f"AES-{bits}-CBC with HMAC, {mac}"
    return f"AES-{bits}-GCM, a fresh nonce per record"


# The two peers.

class DemoServer(threading.Thread):
    """Serves the demo's two connections in turn: a handshake, then a resumed one that receives
    the bulk data and answers with its SHA-256."""

    def __init__(self, config: TLSConfig, narrator: Narrator):
        super().__init__(name="demo server", daemon=True)
        self.config = config
        self.narrator = narrator
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.error: Optional[BaseException] = None
        self.resumed: List[bool] = []
        self.received = 0
        self.closed_cleanly: List[bool] = []
        self.handshake_done = threading.Semaphore(0)  # released once per completed handshake

    def run(self) -> None:
        try:
            self.listener.settimeout(TIMEOUT)
            for number in (1, 2):
                sock, _ = self.listener.accept()
                with sock:
                    sock.settimeout(TIMEOUT)
                    conn = Connection(self.config, False)
                    self.narrator.conns["server"] = conn
                    engine = SocketEngine(sock, conn)
                    try:
                        engine.do_handshake()
                    finally:
                        self.handshake_done.release()
                    self.resumed.append(conn.resumed)
                    if number == 2:
                        self.receive_bulk(engine)
                    while engine.recv():  # until the client's close_notify (answered by ours)
                        pass
                    self.closed_cleanly.append(engine.eof and conn.peer_closed and conn.close_sent)
        except BaseException as e:  # reported by the main thread
            self.error = e
        finally:
            self.listener.close()

    def receive_bulk(self, engine: SocketEngine) -> None:
        head = b""
        while len(head) < 8:
            data = engine.recv(8 - len(head))
            if not data:
                raise ConnectionError("the client closed before the data")
            head += data
        (size,) = struct.unpack("!Q", head)
        digest = hashlib.sha256()
        while self.received < size:
            data = engine.recv(min(size - self.received, 1 << 20))
            if not data:
                raise ConnectionError(f"the client closed after {self.received} of {size} bytes")
            digest.update(data)
            self.received += len(data)
        engine.sendall(digest.digest())


def client_connection(config: TLSConfig, narrator: Narrator, server: "DemoServer", session=None):
    """Connects and handshakes; returns once the server's side of the handshake is over too (so
    the narration of both sides is complete)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    conn = Connection(config, True, server_hostname="localhost", session=session)
    narrator.conns["client"] = conn
    engine = SocketEngine(sock, conn)
    started = time.perf_counter()
    engine.do_handshake()
    elapsed = time.perf_counter() - started
    server.handshake_done.acquire(timeout=TIMEOUT)
    return sock, engine, elapsed


def close_both_ways(sock: socket.socket, engine: SocketEngine) -> bool:
    engine.close(wait_for_peer=True, timeout=TIMEOUT)
    sock.close()
    return engine.eof and engine.conn.peer_closed


def run() -> int:
    try:
        return _run()
    except Exception as e:
        print(f"ferrotls demo failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def _run() -> int:
    started = time.perf_counter()
    narrator = Narrator()
    show("ferrotls demo: a TLS 1.2 client and server, both ferrotls, on 127.0.0.1; every step explained.\n")
    with tempfile.TemporaryDirectory(prefix="ferrotls-demo-") as directory:
        paths = make_certificates(directory)
        credential = load_credential(paths["localhost.pem"], paths["localhost.key"])
        store = TrustStore()
        store.load_file(paths["ca.pem"])
        files = ", ".join(os.path.basename(p) for p in paths.values())
    by_name = {s.openssl_name: s for s in TLS12_SUITES}
    server_config = TLSConfig(
        cipher_suites=[by_name[n] for n in SERVER_ORDER],
        credentials=[credential],
        info_callback=narrator.callback("server"),
    )
    client_config = TLSConfig(trust_store=store, verify_peer=True, info_callback=narrator.callback("client"))
    server = DemoServer(server_config, narrator)
    server.start()
    leaf = credential.chain[0]
    show("Setup")
    show(f"  a throwaway CA \"{leaf.issuer.rfc4514_string()}\" (ECDSA P-256) signed an RSA-2048 certificate for "
          "\"localhost\";")
    show(f"  written as PEM ({files}) to {directory}, loaded with ferrotls.x509, then deleted;")
    show(f"  the server listens on 127.0.0.1:{server.port} with it; the client trusts that CA and nothing else.\n")

    show("Connection 1: a full handshake (two round trips)")
    sock, engine, seconds = client_connection(client_config, narrator, server)
    conn = engine.conn
    session = conn.session
    verified = bool(conn.verified_chain)
    show(f"  handshake complete in {seconds * 1000:.1f} ms: TLSv1.2, cipher {conn.suite.openssl_name}, "
          f"extended master secret: {'yes' if conn.extended_master_secret else 'no'}, "
          f"resumed: {'yes' if conn.resumed else 'no'}, peer verified: {'yes' if conn.verified_chain else 'no'}")
    if session is not None and session.ticket:
        show(f"  the client keeps the session: a {len(session.ticket)}-byte ticket (lifetime hint {session.lifetime_hint} s)")
    clean = close_both_ways(sock, engine)
    show(f"  closed: close_notify both ways{'' if clean else ' (NOT clean)'}\n")

    show("Connection 2: resumption with the ticket (an abbreviated handshake, one round trip)")
    sock, engine, seconds = client_connection(client_config, narrator, server, session=session)
    conn = engine.conn
    show(f"  handshake complete in {seconds * 1000:.1f} ms: TLSv1.2, cipher {conn.suite.openssl_name}, "
          f"resumed: {'yes' if conn.resumed else 'no'}\n")

    mib = BULK_BYTES / (1 << 20)
    show(f"Bulk transfer: {mib:.0f} MiB from the client to the server over connection 2")
    data = memoryview(os.urandom(BULK_BYTES))
    digest = hashlib.sha256(data)  # the client's checksum, taken before the clock starts
    t0 = time.perf_counter()
    engine.sendall(struct.pack("!Q", BULK_BYTES))
    for offset in range(0, BULK_BYTES, CHUNK):
        engine.sendall(data[offset : offset + CHUNK])
    answer = b""
    while len(answer) < 32:
        data = engine.recv(32 - len(answer))
        if not data:
            raise ConnectionError("the server closed before answering")
        answer += data
    elapsed = time.perf_counter() - t0
    match = answer == digest.digest()
    show(f"  SHA-256 sent     {digest.hexdigest()[:32]}…")
    show(f"  SHA-256 received {answer.hex()[:32]}…  {'checksums match' if match else 'CHECKSUMS DIFFER'}")
    show(f"  {mib:.0f} MiB in {elapsed:.3f} s: {mib / elapsed:.0f} MiB/s (sealed, sent, opened and hashed by the server; "
          "both ends in this one process)\n")

    show("Closing")
    clean = close_both_ways(sock, engine)
    server.join(TIMEOUT)
    if server.error is not None:
        raise server.error
    clean = clean and all(server.closed_cleanly)
    show(f"  closed: close_notify both ways{'' if clean else ' (NOT clean)'}\n")

    ok = verified and match and clean and server.resumed == [False, True] and server.received == BULK_BYTES
    show(f"Summary: suite {conn.suite.openssl_name}, chain {'verified' if verified else 'NOT verified'}, "
         f"{'resumed' if conn.resumed else 'NOT resumed'} with a ticket, {mib:.0f} MiB "
          f"{'intact' if match else 'CORRUPTED'} at {mib / elapsed:.0f} MiB/s; {time.perf_counter() - started:.1f} s "
          f"in all. {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1
