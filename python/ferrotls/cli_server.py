"""`ferrotls s_server`: a TLS 1.2 test server in the manner of `openssl s_server`.

It serves many connections at once (a thread each); a connection that fails or stalls is
reported and dropped, and the server goes on. Modes:
- default: echoes back whatever the client sends (openssl prints it and sends its stdin instead);
- -rev: answers each line with the line reversed; a line "CLOSE" ends the connection;
- -www: answers an HTTP request with a status page naming the protocol, the cipher, whether the
  session was resumed and the client's certificate, then closes.

Differences from openssl, on purpose: it listens on 127.0.0.1 unless -accept_host says otherwise,
prints "ACCEPT host:port" (useful with -accept 0), follows the client's cipher order unless
-serverpref (as openssl does), and with -verify/-Verify a client certificate that is presented
must verify (the verify depth is not enforced). -ticket_key_file (not in openssl) shares session
ticket keys with other servers, so they resume each other's sessions.
"""

from __future__ import annotations

import argparse
import html
import socket
import threading
from typing import List

from .cli_common import (
    CLIError,
    Printer,
    error,
    failure_text,
    load_chain,
    load_our_credential,
    load_trust_store,
    outcome_line,
    parse_password,
    renegotiation_line,
    session_lines,
    subject_lines,
)
from .engine import SocketEngine, TLSError
from .protocol import Connection, SessionCache, TicketKeys, TLSConfig, parse_cipher_list
from .x509 import describe_chain

PROG = "ferrotls s_server"
HANDSHAKE_TIMEOUT = 10.0  # a peer that stalls the handshake is dropped after this
IDLE_TIMEOUT = 120.0  # and one that goes quiet afterwards, after this
CLOSE_WAIT = 2.0
MAX_REQUEST_HEAD = 1 << 16


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-accept", metavar="port", type=int, default=4433, help="port to listen on; 0 picks a free one (default 4433)")
    p.add_argument("-accept_host", metavar="host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("-cert", metavar="file", default="server.pem", help="certificate chain, PEM, leaf first (default server.pem)")
    p.add_argument("-key", metavar="file", help="its private key, PEM (default: in -cert)")
    p.add_argument("-pass", dest="passarg", metavar="arg", help="private key pass phrase: pass:, env:, file:, fd:, stdin")
    p.add_argument("-CAfile", metavar="file", help="PEM file of CAs trusted for client certificates")
    p.add_argument("-CApath", metavar="dir", help="directory of CA files trusted for client certificates")
    verify = p.add_mutually_exclusive_group()
    verify.add_argument("-verify", metavar="depth", type=int, help="ask for a client certificate")
    verify.add_argument("-Verify", metavar="depth", type=int, help="ask for a client certificate and require it")
    p.add_argument("-cipher", metavar="list", help="cipher suites to accept (openssl or IANA names, ':'-separated)")
    p.add_argument("-serverpref", action="store_true", help="choose the suite by the server's order, not the client's")
    p.add_argument("-state", action="store_true", help="print the handshake states")
    p.add_argument("-quiet", action="store_true", help="print only the ACCEPT line and errors")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-rev", action="store_true", help="answer each line reversed")
    mode.add_argument("-www", action="store_true", help="answer HTTP requests with a status page")
    p.add_argument("-naccept", metavar="n", type=int, help="exit after n connections")
    p.add_argument("-no_ticket", action="store_true", help="issue no session tickets")
    p.add_argument("-ticket_key_file", metavar="file", help="session ticket keys shared with other servers: 48-byte entries "
                   "(16-byte name, 32-byte AES-256-GCM key), newest first; re-read when it changes")
    p.add_argument("-no_cache", action="store_true", help="keep no session cache (no resumption by session ID)")
    p.add_argument("-no_etm", action="store_true", help="refuse encrypt-then-MAC")
    p.add_argument("-no_ems", action="store_true", help="refuse the extended master secret")
    p.add_argument("-tls1_2", action="store_true", help="TLS 1.2 only (the only version; accepted for openssl's sake)")


class Server:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Printer(enabled=not args.quiet)
        password = parse_password(args.passarg)
        credential = load_our_credential(args.cert, args.key, password)
        if credential.key_type != "rsa":
            raise CLIError(f"{args.cert}: RSA key exchange needs an RSA certificate, not {credential.key_type}")
        verify_depth = args.Verify if args.Verify is not None else args.verify
        store = None
        if verify_depth is not None:
            store = load_trust_store(args.CAfile, args.CApath, defaults=False)
            if not len(store):
                raise CLIError("-verify/-Verify need -CAfile or -CApath to check client certificates with")
        try:
            suites = parse_cipher_list(args.cipher)
        except ValueError as e:
            raise CLIError(str(e)) from None
        ticket_keys = TicketKeys()
        if args.ticket_key_file is not None:
            try:
                ticket_keys = TicketKeys.from_file(args.ticket_key_file)
            except OSError as e:
                raise CLIError(f"cannot read {args.ticket_key_file}: {e.strerror or e}") from None
            except ValueError as e:
                raise CLIError(str(e)) from None
        self.config = TLSConfig(
            cipher_suites=suites,
            credentials=[credential],
            trust_store=store,
            verify_peer=verify_depth is not None,
            require_peer_certificate=args.Verify is not None,
            prefer_client_ciphers=not args.serverpref,
            extended_master_secret=not args.no_ems,
            encrypt_then_mac=not args.no_etm,
            session_tickets=not args.no_ticket,
            ticket_keys=ticket_keys,
            session_cache=None if args.no_cache else SessionCache(),
            info_callback=self.out if args.state else None,
        )
        self.suites = suites
        self.count_lock = threading.Lock()
        self.accepted = 0

    def run(self) -> int:
        host = self.args.accept_host
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listener = socket.create_server((host, self.args.accept), family=family)
        except OSError as e:
            raise CLIError(f"cannot listen on {host}:{self.args.accept}: {e.strerror or e}") from None
        port = listener.getsockname()[1]
        Printer()(f"ACCEPT {host}:{port}")  # even with -quiet: callers need the port
        threads: List[threading.Thread] = []
        try:
            while self.args.naccept is None or self.accepted < self.args.naccept:
                try:
                    sock, peer = listener.accept()
                except OSError as e:
                    error(PROG, f"accept: {e.strerror or e}")
                    continue
                self.accepted += 1
                t = threading.Thread(target=self.serve, args=(sock, peer, self.accepted), name=f"connection {self.accepted}", daemon=True)
                t.start()
                threads = [x for x in threads if x.is_alive()] + [t]
            for t in threads:
                t.join()
        except KeyboardInterrupt:
            pass
        finally:
            listener.close()
        return 0

    # One connection, in its own thread: nothing in it may stop the server.

    def serve(self, sock: socket.socket, peer, number: int) -> None:
        where = f"connection {number} from {peer[0]}:{peer[1]}"
        engine = SocketEngine(sock, Connection(self.config, False))
        step = "handshake"
        try:
            sock.settimeout(HANDSHAKE_TIMEOUT)
            engine.do_handshake()
            sock.settimeout(IDLE_TIMEOUT)
            self.report(engine.conn, where)
            step = "connection"
            if self.args.www:
                self.www(engine)
            elif self.args.rev:
                self.reverse(engine)
            else:
                self.echo(engine)
            engine.close(wait_for_peer=True, timeout=CLOSE_WAIT)
            self.out(f"{where}: CONNECTION CLOSED")
        except (TLSError, OSError) as e:
            error(PROG, f"ERROR {where}: {step} failed: {failure_text(e, engine.conn)}")
        except Exception as e:  # a bug must not take the server down either
            error(PROG, f"ERROR {where}: {type(e).__name__}: {e}")
        finally:
            sock.close()

    def report(self, conn: Connection, where: str) -> None:
        lines = [f"{where}:"]
        if conn.verified_chain:
            lines += describe_chain(conn.verified_chain)
        chain = load_chain(conn.peer_chain)
        if chain:
            lines += ["Client certificate", *subject_lines(chain[0])]
        lines += [f"CIPHER is {conn.suite.openssl_name}", outcome_line(conn), renegotiation_line(conn)]
        self.out.lines(lines)

    @staticmethod
    def echo(engine: SocketEngine) -> None:
        while True:
            data = engine.recv()
            if not data:
                return
            engine.sendall(data)

    @staticmethod
    def reverse(engine: SocketEngine) -> None:
        """openssl's -rev: each line comes back reversed (without its line end), "\\n"-terminated."""
        pending = bytearray()
        while True:
            data = engine.recv()
            if not data:
                return
            pending += data
            answer = bytearray()
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending = bytearray(rest)
                line = line.rstrip(b"\r")
                if line == b"CLOSE":
                    if answer:
                        engine.sendall(bytes(answer))
                    return
                answer += line[::-1] + b"\n"
            if answer:
                engine.sendall(bytes(answer))

    def www(self, engine: SocketEngine) -> None:
        head = bytearray()
        while b"\r\n\r\n" not in head and b"\n\n" not in head and len(head) < MAX_REQUEST_HEAD:
            data = engine.recv()
            if not data:
                return
            head += data
        engine.sendall(b"HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n" + self.page(engine.conn).encode())

    def page(self, conn: Connection) -> str:
        lines = ["ferrotls s_server -www", renegotiation_line(conn), "Ciphers supported in ferrotls s_server"]
        names = [s.openssl_name for s in self.suites]
        lines += [f"TLSv1.2    :{name}" for name in names]
        lines += ["---", outcome_line(conn), *session_lines(conn), "---"]
        cache = self.config.session_cache
        lines.append(f"{len(cache) if cache is not None else 0:4} items in the session cache")
        chain = load_chain(conn.peer_chain)
        if chain:
            lines += ["Client certificate", *subject_lines(chain[0])]
        else:
            lines.append("no client certificate available")
        body = "\n".join(html.escape(line, quote=False) for line in lines)
        return f'<HTML><BODY BGCOLOR="#ffffff">\n<pre>\n\n{body}\n</pre></BODY></HTML>\n\r\n'


def run(args: argparse.Namespace) -> int:
    try:
        return Server(args).run()
    except CLIError as e:
        error(PROG, str(e))
        return 1
