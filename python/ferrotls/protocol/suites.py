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
    def bits(self) -> int:
        return self.key_len * 8

    @property
    def mac_name(self) -> str:
        """OpenSSL's digest name: AEAD, SHA1, SHA256, SHA384."""
        if not self.is_cbc:
            return "AEAD"
        return "SHA1" if self.mac_key_len == 20 else f"SHA{self.mac_key_len * 8}"

    @property
    def protocol(self) -> str:
        """The version OpenSSL says the suite came with (SSL_CIPHER_get_version)."""
        return "SSLv3" if self.mac_name == "SHA1" else "TLSv1.2"

    @property
    def aliases(self) -> frozenset:
        """The OpenSSL cipher-string words that select this suite."""
        words = {"ALL", "DEFAULT", "HIGH", "RSA", "kRSA", "aRSA", "AES", f"AES{self.bits}", self.protocol,
                 self.name, self.openssl_name}
        words.add("AESGCM" if not self.is_cbc else self.mac_name)
        if self.mac_name == "SHA1":
            words.add("SHA")
        return frozenset(words)

    def describe(self) -> dict:
        """The dict ssl.SSLContext.get_ciphers() gives for it."""
        enc = f"AESGCM({self.bits})" if not self.is_cbc else f"AES({self.bits})"
        mode = "gcm" if not self.is_cbc else "cbc"
        return {
            "id": 0x03000000 | self.code,
            "name": self.openssl_name,
            "protocol": self.protocol,
            "description": f"{self.openssl_name:<30} {self.protocol:<7} Kx=RSA      Au=RSA   Enc={enc:<22} Mac={self.mac_name}",
            "strength_bits": self.bits,
            "alg_bits": self.bits,
            "aead": not self.is_cbc,
            "symmetric": f"aes-{self.bits}-{mode}",
            "digest": None if not self.is_cbc else self.mac_name.lower(),
            "kea": "kx-rsa",
            "auth": "auth-rsa",
        }

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

# The order OpenSSL lists what an alias (HIGH, kRSA, AESGCM, ...) selects: AEAD before CBC,
# SHA-2 MACs before SHA-1, stronger first.
_OPENSSL_ORDER = sorted(TLS12_SUITES, key=lambda s: (s.is_cbc, s.mac_key_len == 20, -s.key_len))

# RFC 5746 section 3.3: the signalling cipher suite value.
TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF


def parse_cipher_list(spec: Optional[str]) -> List[CipherSuite]:
    """The suites an OpenSSL-style cipher list names (see select_ciphers); None means all."""
    if not spec:
        return list(TLS12_SUITES)
    chosen = select_ciphers(spec)
    if not chosen:
        raise ValueError(f"no cipher can be selected from {spec!r}")
    return chosen


def select_ciphers(spec: str) -> List[CipherSuite]:
    """The suites an OpenSSL cipher string selects, in order (openssl-ciphers(1)): names and
    aliases joined by ':', ',' or ' '; "A+B" for both; "!" bans, "-" removes, "+" moves to the
    end; "@STRENGTH" sorts by key size; "@SECLEVEL=n" is accepted. IANA names work too."""
    chosen: List[CipherSuite] = []
    banned: set = set()
    for token in spec.replace(",", ":").replace(" ", ":").split(":"):
        if not token or token.startswith("@SECLEVEL"):
            continue
        if token == "@STRENGTH":
            chosen.sort(key=lambda s: -s.bits)
            continue
        op, words = (token[0], token[1:]) if token[0] in "!-+" else ("", token)
        matching = [s for s in _OPENSSL_ORDER if all(w in s.aliases for w in words.split("+"))]
        if op == "!":
            banned.update(matching)
        if op in ("!", "-"):
            chosen = [s for s in chosen if s not in matching]
        elif op == "+":
            chosen = [s for s in chosen if s not in matching] + [s for s in chosen if s in matching]
        else:
            chosen += [s for s in matching if s not in chosen and s not in banned]
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
