"""Session ticket keys shared through a key file (TicketKeys.from_file, rotate_key_file).

Unit tests of the key file (format, which entry seals, which open, reloading, rotation), then the
point of it all: two separate `ferrotls s_server` processes sharing one key file resume each
other's sessions for `openssl s_client -sess_out` / `-sess_in`, and two ferrotls.SSLContext
servers with load_ticket_keys on the same file do the same for a ferrotls client.
Every peer listens on 127.0.0.1 on an ephemeral port; every process is killed at teardown.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import stat
import subprocess
import sys
import threading
import time
from typing import List

import pytest

import ferrotls
from ferrotls.protocol import Connection, Session, TicketKeys
from ferrotls.protocol.sessions import read_key_file, rotate_key_file

from conftest import HOST, IO_TIMEOUT, OPENSSL

FERROTLS = [sys.executable, "-m", "ferrotls.cli"]
T0 = 1_700_000_000.0
ENTRY = 48


def write_keys(path, *entries: bytes) -> None:
    """Rewrites a key file the way an operator would: a new file moved over the old one."""
    temp = f"{path}.new"
    with open(temp, "wb") as f:
        f.write(b"".join(entries))
    os.replace(temp, path)


def session(created: float = T0) -> Session:
    return Session(cipher_suite=0x009C, master_secret=os.urandom(48), extended_master_secret=True, created=created)


# --------------------------------------------------------------------------------------------
# The key file
# --------------------------------------------------------------------------------------------


def test_format_is_48_byte_entries_name_then_key(tmp_path):
    a, b, c = (os.urandom(ENTRY) for _ in range(3))
    path = tmp_path / "ticket.key"
    path.write_bytes(a + b + c)
    assert read_key_file(path) == [(a[:16], a[16:]), (b[:16], b[16:]), (c[:16], c[16:])]
    assert TicketKeys.from_file(path).key_names() == [a[:16], b[:16], c[:16]]


@pytest.mark.parametrize("size", [0, 16, 32, 47, 49, 80, 95])
def test_a_file_that_is_not_whole_entries_is_refused(tmp_path, size):
    path = tmp_path / "ticket.key"
    path.write_bytes(os.urandom(size))
    for load in (read_key_file, TicketKeys.from_file):
        with pytest.raises(ValueError, match="not a ticket key file"):
            load(path)


def test_duplicate_names_and_missing_files_are_refused(tmp_path):
    path = tmp_path / "ticket.key"
    name = os.urandom(16)
    path.write_bytes(name + os.urandom(32) + name + os.urandom(32))
    with pytest.raises(ValueError, match="same name") as info:
        TicketKeys.from_file(path)
    assert name.hex() not in str(info.value)
    with pytest.raises(FileNotFoundError):
        TicketKeys.from_file(tmp_path / "missing.key")


def test_first_entry_seals_and_every_entry_opens(tmp_path):
    first, second = os.urandom(ENTRY), os.urandom(ENTRY)
    both = tmp_path / "both.key"
    both.write_bytes(first + second)
    only_first = tmp_path / "first.key"
    only_first.write_bytes(first)
    only_second = tmp_path / "second.key"
    only_second.write_bytes(second)

    s = session()
    ticket = TicketKeys.from_file(both).seal(s, T0)
    assert ticket[:16] == first[:16]
    assert TicketKeys.from_file(only_first).open(ticket, T0 + 1) == s  # another process, same key
    assert TicketKeys.from_file(only_second).open(ticket, T0 + 1) is None

    old = TicketKeys.from_file(only_second).seal(s, T0)  # sealed before `first` was added
    assert old[:16] == second[:16]
    assert TicketKeys.from_file(both).open(old, T0 + 1) == s
    assert TicketKeys.from_file(only_first).open(old, T0 + 1) is None


def test_lifetime_and_tampering_still_apply(tmp_path):
    path = tmp_path / "ticket.key"
    path.write_bytes(os.urandom(ENTRY))
    keys = TicketKeys.from_file(path, lifetime=100)
    s = session()
    ticket = keys.seal(s, T0)
    assert keys.open(ticket, T0 + 100) == s
    assert keys.open(ticket, T0 + 101) is None
    assert keys.open(ticket[:-1] + bytes([ticket[-1] ^ 1]), T0) is None
    assert keys.open(ticket[:10], T0) is None


def test_reload_when_the_file_changes_checked_at_most_every_interval(tmp_path):
    path = tmp_path / "ticket.key"
    old, new = os.urandom(ENTRY), os.urandom(ENTRY)
    path.write_bytes(old)
    keys = TicketKeys.from_file(path, check_interval=5.0)
    s = session()
    old_ticket = keys.seal(s, T0)
    assert old_ticket[:16] == old[:16]

    write_keys(path, new)  # the old key is gone
    assert keys.seal(s, T0 + 1)[:16] == old[:16]  # not looked at again yet
    assert keys.open(old_ticket, T0 + 1) == s
    assert keys.seal(s, T0 + 5)[:16] == new[:16]  # 5 s later: re-read
    assert keys.key_names() == [new[:16]]
    assert keys.open(old_ticket, T0 + 5) is None

    # Unchanged file: a look, no re-read.
    keys_before = keys._keys
    assert keys.seal(s, T0 + 20)[:16] == new[:16]
    assert keys._keys is keys_before


def test_a_ticket_under_an_unknown_name_makes_it_look_at_once(tmp_path):
    """Another process may have read a rotated file first and sealed under the new key."""
    path = tmp_path / "ticket.key"
    old, new = os.urandom(ENTRY), os.urandom(ENTRY)
    path.write_bytes(old)
    slow = TicketKeys.from_file(path, check_interval=3600.0)
    slow.seal(session(), T0)
    write_keys(path, new, old)
    fast = TicketKeys.from_file(path)
    s = session()
    ticket = fast.seal(s, T0 + 1)
    assert ticket[:16] == new[:16]
    assert slow.open(ticket, T0 + 1) == s
    assert slow.key_names() == [new[:16], old[:16]]


def test_a_broken_file_keeps_the_keys_in_use(tmp_path):
    path = tmp_path / "ticket.key"
    key = os.urandom(ENTRY)
    path.write_bytes(key)
    keys = TicketKeys.from_file(path, check_interval=0.0)
    s = session()
    ticket = keys.seal(s, T0)
    write_keys(path, os.urandom(ENTRY)[:40])  # a truncated file
    assert keys.open(ticket, T0 + 1) == s
    assert keys.load_error and "not a ticket key file" in keys.load_error
    assert key[16:].hex() not in keys.load_error
    path.unlink()
    assert keys.seal(s, T0 + 2)[:16] == key[:16]
    assert "FileNotFoundError" in keys.load_error
    write_keys(path, key)
    keys.seal(s, T0 + 3)
    assert keys.load_error is None


def test_keys_are_shared_across_threads(tmp_path):
    path = tmp_path / "ticket.key"
    rotate_key_file(path)
    keys = TicketKeys.from_file(path, check_interval=0.0)
    failures: List[str] = []

    def work():
        for i in range(200):
            s = session()
            if keys.open(keys.seal(s, T0 + i), T0 + i) != s:
                failures.append("lost")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(20):
        rotate_key_file(path, keep=30)  # no key leaves: this is about threads, not removal
    for t in threads:
        t.join()
    assert not failures


def test_rotate_key_file_creates_prepends_and_keeps_n(tmp_path):
    path = tmp_path / "ticket.key"
    first = rotate_key_file(path, keep=2)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [n for n, _ in read_key_file(path)] == [first]
    second = rotate_key_file(path, keep=2)
    assert [n for n, _ in read_key_file(path)] == [second, first]
    keys_of = dict(read_key_file(path))
    third = rotate_key_file(path, keep=2)
    entries = read_key_file(path)
    assert [n for n, _ in entries] == [third, second]
    assert entries[1][1] == keys_of[second]  # kept entries are kept as they were
    assert len({k for _, k in entries}) == 2
    fourth = rotate_key_file(path, keep=3)
    assert [n for n, _ in read_key_file(path)] == [fourth, third, second]
    fifth = rotate_key_file(path, keep=1)
    assert [n for n, _ in read_key_file(path)] == [fifth]
    with pytest.raises(ValueError):
        rotate_key_file(path, keep=0)
    assert sorted(os.listdir(tmp_path)) == ["ticket.key"]  # no temporary file left behind


def test_rotate_key_file_is_atomic_and_keeps_permissions(tmp_path):
    path = tmp_path / "ticket.key"
    rotate_key_file(path)
    os.chmod(path, 0o640)
    inode = os.stat(path).st_ino
    rotate_key_file(path)
    assert os.stat(path).st_ino != inode  # a new file moved over the old one, not rewritten
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640

    # A reader never sees a half-written file.
    stop = threading.Event()
    seen: List[int] = []
    errors: List[Exception] = []

    def reader():
        while not stop.is_set():
            try:
                seen.append(len(read_key_file(path)))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(50):
            rotate_key_file(path, keep=4)
    finally:
        stop.set()
        t.join()
    assert not errors and seen and set(seen) <= {2, 3, 4}

    # A file that is not a key file is not rotated (nor destroyed).
    path.write_bytes(b"not keys")
    with pytest.raises(ValueError):
        rotate_key_file(path)
    assert path.read_bytes() == b"not keys"


# --------------------------------------------------------------------------------------------
# The handshake: a ticket under a removed key means a full handshake
# --------------------------------------------------------------------------------------------


def handshake(pki, server_keys: TicketKeys, session_=None, now: float = None):
    """A ferrotls client and server Connection wired in memory; returns them after the handshake."""
    client = Connection(pki.client_config(), True, server_hostname="localhost", session=session_, now=now)
    server = Connection(pki.server_config(ticket_keys=server_keys, session_cache=None), False, now=now)
    client.start_handshake()
    for _ in range(20):
        moved = False
        for sender, receiver in ((client, server), (server, client)):
            data = sender.data_to_send()
            if data:
                moved = True
                receiver.receive_data(data)
        if not moved:
            break
    assert client.handshake_complete and server.handshake_complete
    return client, server


def test_a_ticket_from_a_removed_key_gets_a_full_handshake(pki, tmp_path):
    path = tmp_path / "ticket.key"
    rotate_key_file(path)
    now = time.time()
    server_keys = TicketKeys.from_file(path, check_interval=0.0)
    client, server = handshake(pki, server_keys, now=now)
    assert not server.resumed and client.session.ticket[:16] == read_key_file(path)[0][0]
    ticket_session = client.session

    # Another server (process) with the same file resumes it.
    client, server = handshake(pki, TicketKeys.from_file(path), ticket_session, now=now + 1)
    assert server.resumed and client.resumed

    rotate_key_file(path, keep=2)  # the old key still opens
    client, server = handshake(pki, server_keys, ticket_session, now=now + 2)
    assert server.resumed and client.resumed
    rotate_key_file(path, keep=2)  # now it is gone
    client, server = handshake(pki, server_keys, ticket_session, now=now + 3)
    assert not server.resumed and not client.resumed
    assert client.session.ticket[:16] == read_key_file(path)[0][0]  # a new ticket, under the newest key


# --------------------------------------------------------------------------------------------
# The ssl API: SSLContext.load_ticket_keys
# --------------------------------------------------------------------------------------------


def test_load_ticket_keys_is_for_server_contexts(pki, tmp_path):
    path = tmp_path / "ticket.key"
    rotate_key_file(path)
    with pytest.raises(ValueError, match="not a server context"):
        ferrotls.SSLContext(ferrotls.PROTOCOL_TLS_CLIENT).load_ticket_keys(path)
    server = ferrotls.SSLContext(ferrotls.PROTOCOL_TLS_SERVER)
    server.load_ticket_keys(path)
    assert server._ticket_keys.key_names() == [read_key_file(path)[0][0]]
    (tmp_path / "bad.key").write_bytes(b"x" * 50)
    with pytest.raises(ValueError):
        server.load_ticket_keys(tmp_path / "bad.key")
    with pytest.raises(OSError):
        server.load_ticket_keys(tmp_path / "missing.key")


class ContextServer:
    """A ferrotls.SSLContext server in a thread: each connection echoes one message; records
    whether the server side resumed."""

    def __init__(self, context: ferrotls.SSLContext):
        self.context = context
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.reused: List[bool] = []
        self.errors: List[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                raw.settimeout(IO_TIMEOUT)
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    self.reused.append(tls.session_reused)
                    tls.sendall(tls.recv(100))
            except Exception as e:  # noqa: BLE001
                self.errors.append(e)
            finally:
                raw.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(IO_TIMEOUT)
        self.listener.close()


def context_server(pki, key_file) -> ContextServer:
    context = ferrotls.SSLContext(ferrotls.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server.cert_path, pki.server.key_path)
    context.load_ticket_keys(key_file)
    return ContextServer(context)


def test_two_ssl_contexts_sharing_a_key_file_resume_each_other(pki, tmp_path):
    shared, other = tmp_path / "shared.key", tmp_path / "other.key"
    rotate_key_file(shared)
    rotate_key_file(other)
    client = ferrotls.SSLContext(ferrotls.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(pki.server_ca_path)

    def connect(server: ContextServer, session=None):
        with socket.create_connection((HOST, server.port), timeout=IO_TIMEOUT) as raw:
            with client.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                tls.sendall(b"ping")
                assert tls.recv(100) == b"ping"
                return tls.session, tls.session_reused

    servers = [context_server(pki, shared), context_server(pki, shared), context_server(pki, other)]
    first, second, third = servers
    try:
        sess, reused = connect(first)
        assert not reused and sess.has_ticket
        # The second server's session cache never saw this session: only the ticket can resume it.
        assert connect(second, sess)[1] is True
        assert connect(third, sess)[1] is False
        assert connect(first, sess)[1] is True
        assert first.reused == [False, True] and second.reused == [True] and third.reused == [False]
        assert not any(s.errors for s in servers)
    finally:
        for server in servers:
            server.stop()


# --------------------------------------------------------------------------------------------
# Two `ferrotls s_server` processes and `openssl s_client -sess_out / -sess_in`
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def s_servers(pki, *key_files):
    """One `ferrotls s_server -ticket_key_file F` process per key file, started together;
    yields their ports. All are killed at the end."""
    procs = [
        subprocess.Popen(
            [*FERROTLS, "s_server", "-accept", "0", "-quiet", "-cert", pki.server.cert_path, "-key", pki.server.key_path,
             "-ticket_key_file", str(key_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for key_file in key_files
    ]
    try:
        ports = []
        for proc in procs:
            ready, _, _ = select.select([proc.stdout], [], [], 15)
            line = proc.stdout.readline().decode() if ready else ""
            m = re.match(r"ACCEPT 127\.0\.0\.1:(\d+)$", line.strip())
            assert m, f"ferrotls s_server did not start: {line!r}"
            ports.append(int(m.group(1)))
        yield ports
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
            for stream in (proc.stdout, proc.stderr):
                stream.close()


def s_client(pki, port: int, *args) -> str:
    proc = subprocess.run(
        [OPENSSL, "s_client", "-tls1_2", "-connect", f"{HOST}:{port}", "-CAfile", pki.server_ca_path, *map(str, args)],
        input=b"", capture_output=True, timeout=20,
    )
    out = proc.stdout.decode("utf-8", "replace")
    assert ("New, TLSv1.2" in out) != ("Reused, TLSv1.2" in out), out + proc.stderr.decode("utf-8", "replace")
    return out


def reused(out: str) -> bool:
    return "Reused, TLSv1.2" in out


def ticket_name(out: str) -> bytes:
    """The first 16 bytes of the ticket in s_client's session printout: the key name."""
    block = out.split("TLS session ticket:", 1)[1]
    hexes = re.findall(r"^\s*[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){1,16})", block, re.M)
    return bytes.fromhex("".join(hexes).replace("-", " ").replace(" ", ""))[:16]


def test_two_s_server_processes_sharing_a_key_file_resume_each_other(pki, tmp_path):
    shared, other = tmp_path / "shared.key", tmp_path / "other.key"
    k0 = rotate_key_file(shared, keep=2)
    rotate_key_file(other)
    s0, s1 = tmp_path / "s0.pem", tmp_path / "s1.pem"
    with s_servers(pki, shared, shared, other) as (p1, p2, p3):
        out = s_client(pki, p1, "-sess_out", s0)
        assert not reused(out) and ticket_name(out) == k0

        # Process 2 never saw the session: its session cache cannot resume it, the ticket does.
        assert reused(s_client(pki, p2, "-sess_in", s0))
        assert not reused(s_client(pki, p2, "-sess_in", s0, "-no_ticket"))
        # Another key file: a full handshake.
        assert not reused(s_client(pki, p3, "-sess_in", s0))

        # Rotated once (keep=2): new tickets under the new key, the old ticket still resumes.
        k1 = rotate_key_file(shared, keep=2)
        time.sleep(1.2)  # TicketKeys.from_file's check interval is 1 s
        out = s_client(pki, p2, "-sess_out", s1)
        assert not reused(out) and ticket_name(out) == k1
        assert reused(s_client(pki, p1, "-sess_in", s1))
        assert reused(s_client(pki, p1, "-sess_in", s0))
        assert reused(s_client(pki, p2, "-sess_in", s0))

        # Rotated twice: k0 is gone from the file, and from both processes.
        rotate_key_file(shared, keep=2)
        time.sleep(1.2)
        assert not reused(s_client(pki, p1, "-sess_in", s0))
        assert not reused(s_client(pki, p2, "-sess_in", s0))
        assert reused(s_client(pki, p1, "-sess_in", s1))
        assert reused(s_client(pki, p2, "-sess_in", s1))


def test_s_server_refuses_a_bad_key_file(pki, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"z" * 47)
    proc = subprocess.run(
        [*FERROTLS, "s_server", "-accept", "0", "-cert", pki.server.cert_path, "-key", pki.server.key_path,
         "-ticket_key_file", str(bad)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
    )
    assert proc.returncode == 1
    assert "not a ticket key file" in proc.stderr.decode()
    assert b"ACCEPT" not in proc.stdout
