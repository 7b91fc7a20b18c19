"""Cipher suites (RFC 5246 appendix A.5, RFC 5288, RFC 5289): what each one means for the key
exchange, the record protection and the PRF."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence


@dataclass(frozen=True)
class CipherSuite:
    code: int
    name: str  # the IANA name
    openssl_name: str
    cipher: str  # the bulk part, as _core.RecordSealer names it
    key_len: int
    fixed_iv_len: int  # the GCM salt; 0 for CBC (explicit per-record IVs)
    mac_key_len: int  # 0 for AEADs
    prf_hash: str  # "sha256" or "sha384"

    @property
    def is_cbc(self) -> bool:
        return self.mac_key_len > 0

    @property
    def key_block_len(self) -> int:
        """RFC 5246 6.3: two MAC keys, two encryption keys, two fixed IVs."""
        return 2 * (self.mac_key_len + self.key_len + self.fixed_iv_len)


TLS12_SUITES: List[CipherSuite] = [
    CipherSuite(0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", "AES_128_GCM", 16, 4, 0, "sha256"),
    CipherSuite(0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", "AES_256_GCM", 32, 4, 0, "sha384"),
    CipherSuite(0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256", "AES_128_CBC_SHA256", 16, 0, 32, "sha256"),
    CipherSuite(0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256", "AES_256_CBC_SHA256", 32, 0, 32, "sha256"),
    CipherSuite(0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", "AES_128_CBC_SHA", 16, 0, 20, "sha256"),
    CipherSuite(0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", "AES_256_CBC_SHA", 32, 0, 20, "sha256"),
]

BY_CODE: Dict[int, CipherSuite] = {s.code: s for s in TLS12_SUITES}

# RFC 5746 section 3.3: the signalling cipher suite value.
TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF


def parse_cipher_list(spec: Optional[str]) -> List[CipherSuite]:
    """Suites named in an OpenSSL-style list ("AES128-GCM-SHA256:AES256-SHA", IANA names work
    too), in the order given; None or "DEFAULT"/"ALL" means every suite in default order."""
    if not spec or spec.upper() in ("DEFAULT", "ALL"):
        return list(TLS12_SUITES)
    names = {s.openssl_name.upper(): s for s in TLS12_SUITES}
    names.update({s.name.upper(): s for s in TLS12_SUITES})
    chosen: List[CipherSuite] = []
    for part in spec.replace(",", ":").replace(" ", ":").split(":"):
        suite = names.get(part.strip().upper())
        if suite and suite not in chosen:
            chosen.append(suite)
    if not chosen:
        raise ValueError(f"no cipher can be selected from {spec!r}")
    return chosen


def choose(server_order: Sequence[CipherSuite], offered: Sequence[int], prefer_client: bool) -> Optional[CipherSuite]:
    """The suite the server picks (by its own preference unless told to follow the client's)."""
    if prefer_client:
        for code in offered:
            suite = BY_CODE.get(code)
            if suite in server_order:
                return suite
        return None
    offered_set = set(offered)
    for suite in server_order:
        if suite.code in offered_set:
            return suite
    return None
