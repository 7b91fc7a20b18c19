"""`ferrotls demo`: a ferrotls client and a ferrotls server on 127.0.0.1 shake hands three times and
move 32 MiB, and the demo explains every step in plain words: a full handshake with both sides'
defaults (ECDHE with X25519, the server's ephemeral key signed by its RSA certificate), a short
full handshake with the RSA key exchange (a client that offers nothing else), then a resumption of
the first session with its ticket, which carries the bulk transfer.

The narration comes from both sides' info callbacks (the same strings `-state` prints), the values
each Connection has negotiated at that moment, and the handshake messages themselves (read back
from the transcript: public bytes). Secrets are never shown: only their names, sizes and how they
are derived. Nothing but the installed wheel is needed (certificates are made with
`cryptography`, a runtime dependency).
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
from typing import Callable, Dict, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .engine import SocketEngine
from .protocol import Connection, TLS12_SUITES, TLSConfig
from .protocol.messages import (
    GROUP_NAMES,
    SCHEME_NAMES,
    ClientECDHKeyExchange,
    ClientHello,
    ExtensionType,
    HandshakeType,
    ServerKeyExchange,
    decode_u16_list,
    split_messages,
)
from .x509 import TrustStore, load_credential, oneline_name

BULK_BYTES = 32 << 20
CHUNK = 1 << 20
TIMEOUT = 10.0
WIDTH = 100
INDENT = " " * 11  # under the message, past "  client → "

# The groups and signature schemes, as the narration names them.
GROUP_WORDS = {"x25519": "X25519", "secp256r1": "P-256", "secp384r1": "P-384"}
SCHEME_WORDS = {
    "rsa_pss_rsae_sha256": "RSA-PSS with SHA-256", "rsa_pss_rsae_sha384": "RSA-PSS with SHA-384",
    "rsa_pss_rsae_sha512": "RSA-PSS with SHA-512", "rsa_pkcs1_sha256": "RSA PKCS #1 v1.5 with SHA-256",
    "rsa_pkcs1_sha384": "RSA PKCS #1 v1.5 with SHA-384", "rsa_pkcs1_sha512": "RSA PKCS #1 v1.5 with SHA-512",
    "ecdsa_secp256r1_sha256": "ECDSA P-256 with SHA-256", "ecdsa_secp384r1_sha384": "ECDSA P-384 with SHA-384",
}
# What the ClientHello's extensions ask for, by name.
EXTENSION_WORDS = {
    ExtensionType.extended_master_secret: "extended_master_secret",
    ExtensionType.encrypt_then_mac: "encrypt_then_mac",
    ExtensionType.session_ticket: "session_ticket (empty: \"send me a ticket\")",
    ExtensionType.renegotiation_info: "renegotiation_info",
    ExtensionType.ec_point_formats: "ec_point_formats (uncompressed)",
}


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


# Reading the handshake messages back (public bytes: what went over the wire).

def handshake_messages(conn: Connection) -> List[Tuple[int, bytes]]:
    """Every handshake message of the connection so far, in order: (type, body)."""
    return [(msg_type, body) for msg_type, body, _ in split_messages(bytearray(conn.transcript))]


def last_message(conn: Connection, msg_type: int) -> Optional[bytes]:
    bodies = [body for t, body in handshake_messages(conn) if t == msg_type]
    return bodies[-1] if bodies else None


def names(items: List[str]) -> str:
    return ", ".join(items)


# The narration.

class Narrator:
    """Turns each side's info-callback steps into sentences. Both sides run in this process (the
    server in a thread); a step of one side can only follow the other side's bytes, so the lines
    come out in the order things happen on the wire. The connections in `brief` get a few key
    sentences only."""

    # The steps told for a brief connection.
    BRIEF_STEPS = {"client_write_client_hello", "server_write_server_hello", "server_write_server_done",
                   "client_write_client_key_exchange", "server_read_client_key_exchange", "client_read_finished"}

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conns: Dict[str, Optional[Connection]] = {"client": None, "server": None}
        self.brief: List[Connection] = []  # the connections told briefly

    def say(self, side: str, arrow: str, text: str) -> None:
        lead = f"  {side:<6} {arrow} "
        # Never split a name at its hyphens (ECDHE-RSA-AES256-GCM-SHA384, rsa_pss_rsae_sha256).
        lines = textwrap.wrap(text, WIDTH, initial_indent=lead, subsequent_indent=INDENT, break_on_hyphens=False,
                              break_long_words=False)
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
        brief = self.is_brief(conn)
        if where.startswith("SSL3 alert "):
            if not brief:
                kind, _, name = where[len("SSL3 alert "):].partition(":")
                name = name.split(":")[-1].replace(" ", "_")
                self.say(side, "→" if kind.startswith("write") else "←", f"alert {name}")
            return
        name = f"{side}_{where.replace(' ', '_')}"
        if brief and name not in self.BRIEF_STEPS:
            return
        handler = getattr(self, name, None)
        if handler is not None:
            handler(conn)

    def is_brief(self, conn: Connection) -> bool:
        return any(c is conn for c in self.brief)

    # The client's steps.

    def client_write_client_hello(self, conn: Connection) -> None:
        config = conn.config
        if conn.session is not None:
            self.say("client", "→", f"ClientHello asking to resume: the {len(conn.session.ticket)}-byte session ticket goes "
                     "back in the session_ticket extension, with a fresh random session ID that the server echoes "
                     "if it takes the ticket (RFC 5077 3.4); the same suites and extensions as before.")
            return
        suites = " ".join(s.openssl_name for s in config.cipher_suites)
        hello = ClientHello.decode(last_message(conn, HandshakeType.client_hello) or b"")
        exts = hello.extensions
        if self.is_brief(conn):
            groups = "" if ExtensionType.supported_groups in exts else " and no supported_groups: no ECDHE"
            self.say("client", "→", f"ClientHello from a client that offers the RSA key exchange only, as some old "
                     f"peers do: {len(config.cipher_suites)} suites ({suites}){groups}.")
            return
        ecdhe = sum(s.kx == "ECDHE" for s in config.cipher_suites)
        words = []
        if ExtensionType.server_name in exts:
            words.append(f"server_name \"{conn.server_hostname}\"")
        if ExtensionType.supported_groups in exts:
            codes = decode_u16_list(exts[ExtensionType.supported_groups], "supported_groups")
            words.append(f"supported_groups ({names([GROUP_NAMES.get(c, hex(c)) for c in codes])}: the curves "
                         "for ECDHE, best first)")
        if ExtensionType.signature_algorithms in exts:
            codes = decode_u16_list(exts[ExtensionType.signature_algorithms], "signature_algorithms")
            words.append(f"signature_algorithms ({len(codes)} schemes the client verifies, "
                         f"{SCHEME_NAMES.get(codes[0], hex(codes[0]))} first)")
        words += [text for ext, text in EXTENSION_WORDS.items() if ext in exts]
        self.say("client", "→", f"ClientHello: TLS 1.2, a 32-byte client_random and {len(config.cipher_suites)} cipher "
                 f"suites in the client's order of preference, {ecdhe} with ECDHE key exchange first, then "
                 f"{len(config.cipher_suites) - ecdhe} with RSA key exchange: {suites}. Extensions: {names(words)}.")

    def client_read_server_hello(self, conn: Connection) -> None:
        self.say("client", "←", "ServerHello")

    def client_read_server_certificate(self, conn: Connection) -> None:
        self.say("client", "←", "Certificate")

    def client_read_server_key_exchange(self, conn: Connection) -> None:
        self.chain_verified(conn)  # the Certificate was checked before this message was read
        kx = ServerKeyExchange.decode(last_message(conn, HandshakeType.server_key_exchange) or b"")
        group = GROUP_NAMES.get(kx.named_group, hex(kx.named_group))
        scheme = SCHEME_NAMES.get(kx.algorithm, hex(kx.algorithm))
        self.say("client", "←", f"ServerKeyExchange: the server's ephemeral {GROUP_WORDS.get(group, group)} public key "
                 f"({len(kx.public)} bytes) and a {len(kx.signature)}-byte {scheme} signature.")

    def client_read_server_done(self, conn: Connection) -> None:
        if conn.suite.kx == "ECDHE":
            kx = ServerKeyExchange.decode(last_message(conn, HandshakeType.server_key_exchange) or b"")
            scheme = SCHEME_NAMES.get(kx.algorithm, hex(kx.algorithm))
            self.say("client", "✓", f"the ServerKeyExchange signature verifies ({SCHEME_WORDS.get(scheme, scheme)}) "
                     "under the public key of the certificate just verified, over client_random + server_random + "
                     "the group and the ephemeral key: that key comes from the holder of the certificate's private "
                     "key, and from this handshake, not a replayed one.")
            self.say("client", "←", "ServerHelloDone")
            return
        self.say("client", "←", "ServerHelloDone")
        self.chain_verified(conn)

    def chain_verified(self, conn: Connection) -> None:
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
        if conn.suite.kx == "ECDHE":
            kx = ServerKeyExchange.decode(last_message(conn, HandshakeType.server_key_exchange) or b"")
            group = GROUP_NAMES.get(kx.named_group, hex(kx.named_group))
            ours = ClientECDHKeyExchange.decode(last_message(conn, HandshakeType.client_key_exchange) or b"")
            how = ("the X25519 function of its private key and the server's public key, 32 bytes (RFC 7748)"
                   if group == "x25519" else f"the x-coordinate of the {GROUP_WORDS.get(group, group)} point its "
                   "private key times the server's public key gives (RFC 8422 5.10)")
            self.say("client", "→", f"ClientKeyExchange: the client's own ephemeral {GROUP_WORDS.get(group, group)} "
                     f"public key ({len(ours.public)} bytes), made for this handshake. The premaster secret is {how}; "
                     "it never goes over the wire.")
            return
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
        if self.is_brief(conn):
            self.say("client", "✓", "master secret, keys, ChangeCipherSpec and Finished as above; both Finished "
                     "messages verify.")
            return
        self.say("client", "✓", "Finished verified: the server holds the same master secret and saw the same messages.")

    # The server's steps.

    def server_read_client_hello(self, conn: Connection) -> None:
        self.say("server", "←", "ClientHello")

    def server_write_server_hello(self, conn: Connection) -> None:
        suite = conn.suite.openssl_name
        if conn.resumed:
            self.say("server", "→", "ServerHello: the ticket opens under the server's ticket key, so it echoes the "
                     f"client's session ID and resumes the session: {suite} and its stored master secret. An "
                     "abbreviated handshake: no Certificate, no key exchange, no ECDHE or RSA operation, one round "
                     "trip.")
            return
        why = (f"Why: the server goes down its own preference order (ferrotls's default: ECDHE with AEADs first, "
               f"then ECDHE with CBC, then RSA key exchange) and takes the first suite the client offered that it "
               f"can serve{skipped_suites(conn)}")
        if self.is_brief(conn):
            self.say("server", "→", f"ServerHello: the cipher suite {suite}. {why}.")
            return
        agreed = ["extended master secret (RFC 7627)"] if conn.extended_master_secret else []
        agreed.append("a session ticket (RFC 5077)")
        if conn.secure_renegotiation:
            agreed.append("secure renegotiation signalling (RFC 5746)")
        if conn.encrypt_then_mac:
            agreed.append("encrypt-then-MAC (RFC 7366)")
        if conn.suite.kx == "ECDHE":
            agreed.append("uncompressed EC points (RFC 8422)")
        self.say("server", "→", f"ServerHello: TLS 1.2, a 32-byte server_random, a session ID, and the cipher suite "
                 f"{suite}. {why}. Agreed: {', '.join(agreed)}.")

    def server_write_certificate(self, conn: Connection) -> None:
        chain = conn.local_credential.chain
        listed = "; ".join(f"{oneline_name(c.subject)}, issued by {oneline_name(c.issuer)}" for c in chain)
        self.say("server", "→", f"Certificate: its chain of {len(chain)} certificate{'s' if len(chain) > 1 else ''} "
                 f"({listed}); the CA itself stays with the client.")

    def server_write_key_exchange(self, conn: Connection) -> None:
        kx = ServerKeyExchange.decode(last_message(conn, HandshakeType.server_key_exchange) or b"")
        group = GROUP_NAMES.get(kx.named_group, hex(kx.named_group))
        scheme = SCHEME_NAMES.get(kx.algorithm, hex(kx.algorithm))
        hello = ClientHello.decode(last_message(conn, HandshakeType.client_hello) or b"")
        offered = decode_u16_list(hello.extensions.get(ExtensionType.supported_groups, b"\x00\x00"), "supported_groups")
        offered_names = [GROUP_NAMES[c] for c in offered if c in GROUP_NAMES]
        self.say("server", "→", f"ServerKeyExchange: a fresh ephemeral {GROUP_WORDS.get(group, group)} key pair, made "
                 f"for this handshake only. The group is {group}: the first of the server's groups "
                 f"({names(conn.config.groups)}) among the client's ({names(offered_names)}). Its {len(kx.public)}-byte "
                 f"public key goes out signed with the certificate's RSA key: {scheme} ({SCHEME_WORDS.get(scheme, scheme)}, "
                 f"the first scheme of the certificate's key that the client accepts), {len(kx.signature)} bytes over "
                 "client_random + server_random + the group and the key.")

    def server_write_server_done(self, conn: Connection) -> None:
        if self.is_brief(conn):
            self.say("server", "→", "Certificate and ServerHelloDone: no ServerKeyExchange, since with the RSA key "
                     "exchange the server has no ephemeral key; the client will encrypt the premaster to the "
                     "certificate's key.")
            return
        self.say("server", "→", "ServerHelloDone: the server's first flight is complete.")

    def server_read_client_key_exchange(self, conn: Connection) -> None:
        if conn.suite.kx == "ECDHE":
            kx = ServerKeyExchange.decode(last_message(conn, HandshakeType.server_key_exchange) or b"")
            group = GROUP_WORDS.get(GROUP_NAMES.get(kx.named_group, ""), "ECDH")
            self.say("server", "←", f"ClientKeyExchange: the client's ephemeral public key. The server combines it "
                     f"with its own ephemeral private key ({group}) and gets the same premaster secret. Neither "
                     "side keeps its ephemeral private key past this handshake. That is forward secrecy: the "
                     "certificate's RSA key only signed, so someone who records this connection and steals that key "
                     "later still cannot compute the premaster or read the traffic.")
            return
        self.say("server", "←", "ClientKeyExchange: decrypted with the server's RSA key in constant time, with "
                 "implicit rejection: a malformed block would yield a random premaster instead of an error, so "
                 "neither the timing nor the reply can serve as a padding oracle (Bleichenbacher, ROBOT). No forward "
                 "secrecy here: whoever gets the server's RSA key later can decrypt a recorded ClientKeyExchange, "
                 "and with it the whole connection.")

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
                 "client carries it. (The ticket key now guards that master secret, which is why ticket keys "
                 "rotate.)")

    def server_write_change_cipher_spec(self, conn: Connection) -> None:
        self.say("server", "→", "ChangeCipherSpec: from here on the server's records are encrypted too.")

    def server_write_finished(self, conn: Connection) -> None:
        first = " (an abbreviated handshake: the server's Finished comes first)" if conn.resumed else ""
        self.say("server", "→", f"Finished, encrypted: verify_data = PRF(master_secret, \"server finished\", "
                 f"{conn.suite.prf_hash.upper()}(every handshake message so far))[0..11]{first}.")


def skipped_suites(conn: Connection) -> str:
    """Why the server passed over the suites it prefers to the one it chose: ": it skips ..." or ""."""
    kinds = {c.key_type for c in conn.config.credentials}
    reasons: Dict[str, List[str]] = {}
    for suite in conn.config.cipher_suites:
        if suite == conn.suite:
            break
        if suite.code not in conn.offered_suites:
            reason = "not offered by the client"
        elif ("ec" if suite.auth == "ECDSA" else "rsa") not in kinds:
            have = names(sorted(k.upper() for k in kinds))
            reason = f"it needs an {suite.auth} certificate and the server has only an {have} one"
        else:
            reason = "no group or signature scheme in common"
        reasons.setdefault(reason, []).append(suite.openssl_name)
    if not reasons:
        return ""
    parts = []
    for reason, skipped in reasons.items():
        listed = names(skipped) if len(skipped) <= 3 else f"{len(skipped)} suites"
        parts.append(f"{listed} ({reason})")
    return ": it skips " + "; ".join(parts)


def master_secret_text(conn: Connection) -> str:
    suite = conn.suite
    h = suite.prf_hash.upper()
    last = "ClientKeyExchange"
    if conn.extended_master_secret:
        text = ("derives the master secret: master_secret = PRF(premaster, \"extended master secret\", session_hash), "
                f"session_hash = {h}(ClientHello ... {last}), which ties it to this very handshake (RFC 7627).")
    else:
        text = "derives the master secret: master_secret = PRF(premaster, \"master secret\", client_random + server_random)."
    parts = []
    if suite.mac_key_len:
        parts.append(f"2 MAC keys of {suite.mac_key_len}")
    parts.append(f"2 {'ChaCha20' if suite.cipher == 'CHACHA20_POLY1305' else 'AES'} keys of {suite.key_len}")
    if suite.fixed_iv_len:
        parts.append(f"2 {'IVs' if suite.cipher == 'CHACHA20_POLY1305' else 'GCM salts'} of {suite.fixed_iv_len}")
    return (text + f" It is 48 bytes, with the PRF on HMAC-{h}; then key_block = PRF(master_secret, \"key expansion\", "
            f"server_random + client_random): {suite.key_block_len} bytes = {' + '.join(parts)} bytes. "
            "Secrets are never shown.")


def cipher_words(conn: Connection) -> str:
    suite = conn.suite
    bits = suite.key_len * 8
    if suite.cipher == "CHACHA20_POLY1305":
        return "ChaCha20-Poly1305, a fresh nonce per record"
    if suite.is_cbc:
        mac = "encrypt-then-MAC" if conn.encrypt_then_mac else "MAC-then-encrypt"
        return f"AES-{bits}-CBC with HMAC, {mac}"
    return f"AES-{bits}-GCM, a fresh nonce per record"


def key_exchange_words(conn: Connection) -> str:
    """"ECDHE (X25519), signed with rsa_pss_rsae_sha256" or "RSA"."""
    if conn.suite.kx != "ECDHE":
        return "RSA"
    body = last_message(conn, HandshakeType.server_key_exchange)
    if body is None:
        return "ECDHE"
    kx = ServerKeyExchange.decode(body)
    group = GROUP_NAMES.get(kx.named_group, hex(kx.named_group))
    return f"ECDHE ({GROUP_WORDS.get(group, group)}), signed with {SCHEME_NAMES.get(kx.algorithm, hex(kx.algorithm))}"


# The two peers.

class DemoServer(threading.Thread):
    """Serves the demo's three connections in turn: a full handshake, a full handshake told
    briefly (the client offers the RSA key exchange only), then a resumed one that receives the
    bulk data and answers with its SHA-256."""

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
            for number in (1, 2, 3):
                sock, _ = self.listener.accept()
                with sock:
                    sock.settimeout(TIMEOUT)
                    conn = Connection(self.config, False)
                    if number == 2:
                        self.narrator.brief.append(conn)
                    self.narrator.conns["server"] = conn
                    engine = SocketEngine(sock, conn)
                    try:
                        engine.do_handshake()
                    finally:
                        self.handshake_done.release()
                    self.resumed.append(conn.resumed)
                    if number == 3:
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


def client_connection(config: TLSConfig, narrator: Narrator, server: "DemoServer", session=None, brief: bool = False):
    """Connects and handshakes; returns once the server's side of the handshake is over too (so
    the narration of both sides is complete)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    conn = Connection(config, True, server_hostname="localhost", session=session)
    if brief:
        narrator.brief.append(conn)
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
    # Both sides keep ferrotls's defaults (suites, groups, signature schemes); the second client
    # offers the suites with RSA key exchange only.
    server_config = TLSConfig(credentials=[credential], info_callback=narrator.callback("server"))
    client_config = TLSConfig(trust_store=store, verify_peer=True, info_callback=narrator.callback("client"))
    rsa_kx_config = TLSConfig(cipher_suites=[s for s in TLS12_SUITES if s.kx == "RSA"], trust_store=store,
                              verify_peer=True, info_callback=narrator.callback("client"))
    server = DemoServer(server_config, narrator)
    server.start()
    leaf = credential.chain[0]
    show("Setup")
    show(f"  a throwaway CA \"{leaf.issuer.rfc4514_string()}\" (ECDSA P-256) signed an RSA-2048 certificate for "
          "\"localhost\";")
    show(f"  written as PEM ({files}) to {directory}, loaded with ferrotls.x509, then deleted;")
    show(f"  the server listens on 127.0.0.1:{server.port} with it; the client trusts that CA and nothing else;")
    show("  both sides keep ferrotls's defaults: ECDHE first, groups X25519, P-256, P-384.\n")

    show("Connection 1: a full handshake with ECDHE key exchange (two round trips)")
    sock, engine, seconds = client_connection(client_config, narrator, server)
    conn = engine.conn
    first_suite = conn.suite.openssl_name
    session = conn.session
    verified = bool(conn.verified_chain)
    forward_secret = conn.suite.kx == "ECDHE"
    show(f"  handshake complete in {seconds * 1000:.1f} ms: TLSv1.2, cipher {conn.suite.openssl_name}, "
          f"key exchange {key_exchange_words(conn)}, "
          f"extended master secret: {'yes' if conn.extended_master_secret else 'no'}, "
          f"resumed: {'yes' if conn.resumed else 'no'}, peer verified: {'yes' if conn.verified_chain else 'no'}")
    if session is not None and session.ticket:
        show(f"  the client keeps the session: a {len(session.ticket)}-byte ticket (lifetime hint {session.lifetime_hint} s)")
    clean = close_both_ways(sock, engine)
    show(f"  closed: close_notify both ways{'' if clean else ' (NOT clean)'}\n")

    show("Connection 2, briefly: a full handshake with RSA key exchange (a client that offers nothing else)")
    sock, engine, seconds = client_connection(rsa_kx_config, narrator, server, brief=True)
    conn = engine.conn
    rsa_kx = conn.suite.kx == "RSA" and not conn.resumed
    show(f"  handshake complete in {seconds * 1000:.1f} ms: TLSv1.2, cipher {conn.suite.openssl_name}, "
          f"key exchange {key_exchange_words(conn)}, resumed: {'yes' if conn.resumed else 'no'}")
    clean = close_both_ways(sock, engine) and clean
    show(f"  closed: close_notify both ways{'' if clean else ' (NOT clean)'}\n")

    show("Connection 3: resumption of connection 1 with its ticket (an abbreviated handshake, one round trip)")
    sock, engine, seconds = client_connection(client_config, narrator, server, session=session)
    conn = engine.conn
    show(f"  handshake complete in {seconds * 1000:.1f} ms: TLSv1.2, cipher {conn.suite.openssl_name}, "
          f"resumed: {'yes' if conn.resumed else 'no'}\n")

    mib = BULK_BYTES / (1 << 20)
    show(f"Bulk transfer: {mib:.0f} MiB from the client to the server over connection 3")
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
    clean = close_both_ways(sock, engine) and clean
    server.join(TIMEOUT)
    if server.error is not None:
        raise server.error
    clean = clean and all(server.closed_cleanly)
    show(f"  closed: close_notify both ways{'' if clean else ' (NOT clean)'}\n")

    ok = (verified and forward_secret and rsa_kx and match and clean and server.resumed == [False, False, True]
          and server.received == BULK_BYTES and conn.suite.openssl_name == first_suite)
    show(f"Summary: suite {conn.suite.openssl_name} (forward secret: {'yes' if forward_secret else 'NO'}), chain "
         f"{'verified' if verified else 'NOT verified'}, {'resumed' if conn.resumed else 'NOT resumed'} with a ticket, "
         f"RSA key exchange {'shown' if rsa_kx else 'NOT shown'}, {mib:.0f} MiB {'intact' if match else 'CORRUPTED'} "
         f"at {mib / elapsed:.0f} MiB/s; {time.perf_counter() - started:.1f} s in all. {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1
