"""Resumption (RFC 5246 7.4.1.2 session IDs; RFC 5077 tickets): the session state, the server's
bounded session cache, and the server's rotating ticket keys."""

from __future__ import annotations

import collections
import os
import struct
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
    """Ticket protection (RFC 5077 section 4): key_name || nonce || AES-256-GCM(state), under a
    key that rotates every `rotation` seconds; tickets under the previous key still open."""

    NAME_LEN = 16

    def __init__(self, rotation: float = 3600.0, lifetime: int = 7200):
        self.rotation = rotation
        self.lifetime = lifetime
        self._keys: List[Tuple[bytes, AESGCM, float]] = []  # (name, key, created), newest first
        self._lock = threading.Lock()

    def _current(self, now: float) -> Tuple[bytes, AESGCM, float]:
        with self._lock:
            if not self._keys or now - self._keys[0][2] >= self.rotation:
                self._keys.insert(0, (os.urandom(self.NAME_LEN), AESGCM(AESGCM.generate_key(256)), now))
                del self._keys[2:]
            return self._keys[0]

    def seal(self, session: Session, now: float) -> bytes:
        name, key, _ = self._current(now)
        nonce = os.urandom(12)
        return name + nonce + key.encrypt(nonce, session.encode(), name)

    def open(self, ticket: bytes, now: float) -> Optional[Session]:
        """The session in a ticket, or None if it is not ours, tampered with, or too old."""
        name, nonce, sealed = ticket[: self.NAME_LEN], ticket[self.NAME_LEN : self.NAME_LEN + 12], ticket[self.NAME_LEN + 12 :]
        self._current(now)
        with self._lock:
            keys = [k for n, k, _ in self._keys if n == name]
        if not keys:
            return None
        try:
            session = Session.decode(keys[0].decrypt(nonce, sealed, name))
        except Exception:
            return None
        if not 0 <= now - session.created <= self.lifetime:
            return None
        return session
