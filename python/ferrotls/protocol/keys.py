"""The TLS 1.2 key schedule (RFC 5246 sections 6.3, 7.4.9 and 8.1; RFC 7627): from the
premaster to the master secret, the record protection of each direction, and Finished."""

from __future__ import annotations

import hashlib
from typing import Tuple

from .. import _core
from .suites import CipherSuite


def transcript_hash(suite: CipherSuite, transcript: bytes) -> bytes:
    return hashlib.new(suite.prf_hash, transcript).digest()


def derive_master_secret(
    suite: CipherSuite, premaster: bytes, client_random: bytes, server_random: bytes, ems_session_hash: bytes = b""
) -> bytes:
    """master_secret, or with a session hash the extended master secret (RFC 7627 section 4)."""
    if ems_session_hash:
        return _core.extended_master_secret(suite.prf_hash, premaster, ems_session_hash)
    return _core.master_secret(suite.prf_hash, premaster, client_random, server_random)


def record_protection(
    suite: CipherSuite, master: bytes, client_random: bytes, server_random: bytes, is_client: bool, encrypt_then_mac: bool
) -> Tuple[_core.RecordSealer, _core.RecordOpener]:
    """This side's sealer and opener, from the key block (RFC 5246 6.3)."""
    block = _core.key_block(suite.prf_hash, master, server_random, client_random, suite.key_block_len)
    m, k, iv = suite.mac_key_len, suite.key_len, suite.fixed_iv_len
    pos = 0
    parts = []
    for size in (m, m, k, k, iv, iv):
        parts.append(block[pos : pos + size])
        pos += size
    client_mac, server_mac, client_key, server_key, client_iv, server_iv = parts
    etm = encrypt_then_mac and suite.is_cbc
    client = (suite.cipher, client_key, client_iv, client_mac)
    server = (suite.cipher, server_key, server_iv, server_mac)
    mine, theirs = (client, server) if is_client else (server, client)
    return (
        _core.RecordSealer(*mine, encrypt_then_mac=etm),
        _core.RecordOpener(*theirs, encrypt_then_mac=etm),
    )


def finished_verify_data(suite: CipherSuite, master: bytes, from_client: bool, transcript: bytes) -> bytes:
    """verify_data = PRF(master_secret, finished_label, Hash(handshake_messages))[0..11]."""
    label = b"client finished" if from_client else b"server finished"
    return _core.tls12_prf(suite.prf_hash, master, label, transcript_hash(suite, transcript), 12)
