"""Resumption (RFC 5246 7.4.1.2 session IDs; RFC 5077 tickets): the session state, the server's
bounded session cache, and the server's ticket keys: rotating in memory, or shared through a key file
by several server processes (`TicketKeys.from_file`, `rotate_key_file`)."""

from __future__ import annotations

import collections
import contextlib
import os
import stat
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .messages import Reader, vec

_FIXED = struct.Struct("!HB?dI")  # suite, master length, EMS, created, lifetime hint


@dataclass
class Session:
    """What a resumed handshake needs; resumption is only offered for sessions with an extended
    master secret (RFC 7627 section 5.3)."""

    cipher_suite: int
    master_secret: bytes
    extended_master_secret: bool
    created: float
    session_id: bytes = b""
    ticket: bytes = b""
    lifetime_hint: int = 0
    server_name: str = ""
    peer_chain: List[bytes] = field(default_factory=list)

    def encode(self) -> bytes:
        """A self-contained byte string (for -sess_out files and ticket contents)."""
        return (
            b"FTS1"
            + _FIXED.pack(self.cipher_suite, len(self.master_secret), self.extended_master_secret, self.created, self.lifetime_hint)
            + self.master_secret
            + vec(self.session_id, 1)
            + vec(self.ticket, 2)
            + vec(self.server_name.encode("ascii"), 1)
            + vec(b"".join(vec(c, 3) for c in self.peer_chain), 3)
        )

    @classmethod
    def decode(cls, data: bytes) -> "Session":
        r = Reader(data, "session")
        if r.take(4) != b"FTS1":
            raise ValueError("not a ferrotls session")
        suite, ms_len, ems, created, hint = _FIXED.unpack(r.take(_FIXED.size))
        master = r.take(ms_len)
        session_id = r.vector(1)
        ticket = r.vector(2)
        server_name = r.vector(1).decode("ascii")
        chain_r = Reader(r.vector(3), "session")
        r.done()
        chain = []
        while chain_r.remaining():
            chain.append(chain_r.vector(3))
        return cls(suite, master, ems, created, session_id, ticket, hint, server_name, chain)


class SessionCache:
    """Server-side sessions by ID, least recently used dropped beyond `size`."""

    def __init__(self, size: int = 1024, timeout: float = 7200.0):
        self.size = size
        self.timeout = timeout
        self._sessions: "collections.OrderedDict[bytes, Session]" = collections.OrderedDict()
        self._lock = threading.Lock()

    def put(self, session: Session) -> None:
        if not session.session_id or self.size <= 0:
            return
        with self._lock:
            self._sessions[session.session_id] = session
            self._sessions.move_to_end(session.session_id)
            while len(self._sessions) > self.size:
                self._sessions.popitem(last=False)

    def get(self, session_id: bytes, now: float) -> Optional[Session]:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.created > self.timeout:
                del self._sessions[session_id]
                return None
            self._sessions.move_to_end(session_id)
            return session

    def __len__(self) -> int:
        return len(self._sessions)


class TicketKeys:
    """Ticket protection (RFC 5077 section 4): key_name || nonce || AES-256-GCM(state), the key
    name as associated data.

    By default the keys live in memory: a fresh random key every `rotation` seconds, the previous
    one kept so that its tickets still open. Such keys die with the process, and no other process
    can open its tickets.

    `TicketKeys.from_file(path)` takes the keys from a key file instead, so that several server
    processes (or machines behind a load balancer) that share it resume each other's sessions; see
    `read_key_file` for the format. The first entry seals new tickets, every entry opens them, and
    nothing is generated in the process: the file is rotated from outside (`rotate_key_file`, from
    cron or a deployment tool), and every process notices by itself. The file is looked at again
    (one stat) at most every `check_interval` seconds of the `now` passed to `seal`/`open`, and at
    once when a ticket names a key we do not know (another process may have read a newer file
    first). If a re-read fails (the file is missing or malformed), the keys in use stay in use.
    Key bytes are never logged, printed or put in an exception message.
    """

    NAME_LEN = 16
    KEY_LEN = 32
    ENTRY_LEN = NAME_LEN + KEY_LEN

    def __init__(self, rotation: float = 3600.0, lifetime: int = 7200):
        self.rotation = rotation
        self.lifetime = lifetime
        self._keys: List[Tuple[bytes, AESGCM]] = []  # (name, key), newest first; [0] seals
        self._created = 0.0  # in-memory keys: when _keys[0] was made
        self._lock = threading.Lock()
        # Key file mode.
        self.path: Optional[str] = None
        self.check_interval = 1.0
        self.load_error: Optional[str] = None  # why the last re-read failed, if it did (no key bytes)
        self._file_state: Optional[Tuple[int, int, int, int]] = None  # what the keys in use were read from
        self._checked: Optional[float] = None  # `now` when the file was last looked at

    @classmethod
    def from_file(cls, path: "os.PathLike[str] | str", lifetime: int = 7200, check_interval: float = 1.0) -> "TicketKeys":
        """Ticket keys shared through the key file at `path` (format: `read_key_file`).

        Raises OSError if it cannot be read and ValueError if it is not a key file. Tickets stay
        good for `lifetime` seconds (the lifetime hint sent to clients), as long as their key is
        still in the file: with the file rotated every R seconds keeping N entries, a key opens
        tickets for (N - 1) * R to N * R seconds after it stopped sealing them.
        """
        keys = cls(rotation=float("inf"), lifetime=lifetime)
        keys.path = os.fspath(path)
        keys.check_interval = check_interval
        with open(keys.path, "rb") as f:
            state = _file_state(os.fstat(f.fileno()))
            keys._keys = _parse_key_file(f.read(), keys.path)
        keys._file_state = state
        return keys

    def _refresh(self, now: float, force: bool = False) -> None:
        """Brings the keys up to date; called with the lock held."""
        if self.path is None:
            if not self._keys or now - self._created >= self.rotation:
                self._keys.insert(0, (os.urandom(self.NAME_LEN), AESGCM(AESGCM.generate_key(256))))
                del self._keys[2:]
                self._created = now
            return
        if not force and self._checked is not None and 0 <= now - self._checked < self.check_interval:
            return
        self._checked = now
        try:
            if _file_state(os.stat(self.path)) == self._file_state:
                return
            with open(self.path, "rb") as f:
                state = _file_state(os.fstat(f.fileno()))
                keys = _parse_key_file(f.read(), self.path)
        except (OSError, ValueError) as e:  # keep serving with the keys we have
            self.load_error = f"{type(e).__name__}: {e}"
            return
        self._keys, self._file_state, self.load_error = keys, state, None

    def seal(self, session: Session, now: float) -> bytes:
        with self._lock:
            self._refresh(now)
            name, key = self._keys[0]
        nonce = os.urandom(12)
        return name + nonce + key.encrypt(nonce, session.encode(), name)

    def open(self, ticket: bytes, now: float) -> Optional[Session]:
        """The session in a ticket, or None if it is not ours, tampered with, or too old."""
        name, nonce, sealed = ticket[: self.NAME_LEN], ticket[self.NAME_LEN : self.NAME_LEN + 12], ticket[self.NAME_LEN + 12 :]
        with self._lock:
            self._refresh(now)
            key = next((k for n, k in self._keys if n == name), None)
            if key is None and self.path is not None:
                self._refresh(now, force=True)
                key = next((k for n, k in self._keys if n == name), None)
        if key is None:
            return None
        try:
            session = Session.decode(key.decrypt(nonce, sealed, name))
        except Exception:
            return None
        if not 0 <= now - session.created <= self.lifetime:
            return None
        return session

    def key_names(self) -> List[bytes]:
        """The names of the keys in use, newest (the sealing key) first; never the keys."""
        with self._lock:
            return [name for name, _ in self._keys]


# Key files.


def _file_state(st: os.stat_result) -> Tuple[int, int, int, int]:
    """What tells a rewritten key file apart (os.replace gives it a new inode as well)."""
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _parse_key_file(data: bytes, path: str) -> List[Tuple[bytes, AESGCM]]:
    n = TicketKeys.ENTRY_LEN
    if not data or len(data) % n:
        raise ValueError(f"{path}: not a ticket key file: {len(data)} bytes, not a positive multiple of {n}")
    entries = [(data[i : i + TicketKeys.NAME_LEN], data[i + TicketKeys.NAME_LEN : i + n]) for i in range(0, len(data), n)]
    names = [name for name, _ in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: two ticket keys have the same name")
    return [(name, AESGCM(key)) for name, key in entries]


def read_key_file(path: "os.PathLike[str] | str") -> List[Tuple[bytes, bytes]]:
    """The (name, key) entries of a ticket key file, newest first.

    The format: a binary file of one or more 48-byte entries, newest first, nothing else; each is
    a 16-byte key name (sent in the clear at the start of every ticket) followed by a 32-byte
    AES-256-GCM key. The first entry seals new tickets; every entry opens tickets. It is the shape
    of nginx's `ssl_session_ticket_key` files (48 or 80 random bytes: name, HMAC key, AES key),
    with one AEAD key in place of the HMAC and AES-CBC keys, and several entries per file.
    `openssl rand 48 > ticket.key` makes a one-key file; `rotate_key_file` rotates one.
    Keep it readable by the servers only: whoever has it can read every ticket's master secret.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    _parse_key_file(data, path)
    n, m = TicketKeys.ENTRY_LEN, TicketKeys.NAME_LEN
    return [(data[i : i + m], data[i + m : i + n]) for i in range(0, len(data), n)]


def rotate_key_file(path: "os.PathLike[str] | str", keep: int = 2) -> bytes:
    """Puts a fresh random key first in the ticket key file at `path` (creating the file if need
    be) and keeps the `keep` newest entries; returns the new key's name.

    The new file is written beside the old one and moved over it with os.replace, so a server
    reads either the old file or the new one, never a mix. A new file is made readable by its
    owner only; an existing file keeps its permission bits. Run one rotator per file: two at once
    can each write a file without the other's new key.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    path = os.fspath(path)
    try:
        old = read_key_file(path)
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        old, mode = [], 0o600
    names = {name for name, _ in old}
    while True:
        name = os.urandom(TicketKeys.NAME_LEN)
        if name not in names:
            break
    entries = [(name, os.urandom(TicketKeys.KEY_LEN))] + old
    directory, base = os.path.split(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(b"".join(n + k for n, k in entries[:keep]))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return name
