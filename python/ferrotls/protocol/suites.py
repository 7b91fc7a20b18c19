"""Cipher suites (RFC 5246 appendix A.5, RFC 5288, RFC 5289): what each one means for the key
exchange, the record protection and the PRF."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence


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
    kx: str = "RSA"  # the key exchange: "RSA" or "ECDHE"
    auth: str = "RSA"  # the server certificate's key: "RSA" or "ECDSA"

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
        if self.mac_name != "SHA1":
            return "TLSv1.2"
        return "TLSv1.0" if self.kx == "ECDHE" else "SSLv3"

    @property
    def aliases(self) -> frozenset:
        """The OpenSSL cipher-string words that select this suite."""
        words = {"ALL", "DEFAULT", "HIGH", f"a{self.auth}", self.protocol, self.name, self.openssl_name}
        if self.auth == "ECDSA":
            words.add("ECDSA")  # = aECDSA; the bare "RSA", though, means kRSA
        if self.kx == "ECDHE":
            words |= {"kECDHE", "ECDHE", "EECDH", "kEECDH", "ECDH"}
        else:
            words |= {"kRSA", "RSA"}
        if self.cipher == "CHACHA20_POLY1305":
            words |= {"CHACHA20"}
        else:
            words |= {"AES", f"AES{self.bits}", "AESGCM" if not self.is_cbc else self.mac_name}
        if self.mac_name == "SHA1":
            words.add("SHA")
        if self.protocol == "TLSv1.0":
            words.add("TLSv1")  # OpenSSL's name for the same alias
        return frozenset(words)

    def describe(self) -> dict:
        """The dict ssl.SSLContext.get_ciphers() gives for it."""
        if self.cipher == "CHACHA20_POLY1305":
            enc, symmetric = "CHACHA20/POLY1305(256)", "chacha20-poly1305"
        else:
            mode = "gcm" if not self.is_cbc else "cbc"
            enc = f"AESGCM({self.bits})" if not self.is_cbc else f"AES({self.bits})"
            symmetric = f"aes-{self.bits}-{mode}"
        kx = "ECDH" if self.kx == "ECDHE" else "RSA"
        proto = self.protocol.replace("TLSv1.0", "TLSv1")
        return {
            "id": 0x03000000 | self.code,
            "name": self.openssl_name,
            "protocol": self.protocol,
            "description": f"{self.openssl_name:<30} {proto:<7} Kx={kx:<8} Au={self.auth:<5} Enc={enc:<22} Mac={self.mac_name}",
            "strength_bits": self.bits,
            "alg_bits": self.bits,
            "aead": not self.is_cbc,
            "symmetric": symmetric,
            "digest": None if not self.is_cbc else self.mac_name.lower(),
            "kea": "kx-ecdhe" if self.kx == "ECDHE" else "kx-rsa",
            "auth": f"auth-{self.auth.lower()}",
        }

    @property
    def key_block_len(self) -> int:
        """RFC 5246 6.3: two MAC keys, two encryption keys, two fixed IVs."""
        return 2 * (self.mac_key_len + self.key_len + self.fixed_iv_len)


# Key and IV sizes of each bulk cipher: (key, fixed IV, MAC key).
_BULK = {
    "AES_128_GCM": (16, 4, 0),
    "AES_256_GCM": (32, 4, 0),
    "CHACHA20_POLY1305": (32, 12, 0),
    "AES_128_CBC_SHA": (16, 0, 20),
    "AES_256_CBC_SHA": (32, 0, 20),
    "AES_128_CBC_SHA256": (16, 0, 32),
    "AES_256_CBC_SHA256": (32, 0, 32),
    "AES_256_CBC_SHA384": (32, 0, 48),
}


def _suite(code: int, name: str, openssl_name: str) -> CipherSuite:
    """A suite described by its IANA name: TLS_{kx}_WITH_{bulk}_{PRF hash, or MAC for CBC}."""
    exchange, bulk = name[len("TLS_"):].split("_WITH_")
    kx, auth = ("ECDHE", exchange.split("_")[1]) if exchange.startswith("ECDHE_") else ("RSA", "RSA")
    cipher = bulk if "_CBC_" in bulk else bulk.rsplit("_", 1)[0]
    prf = "sha384" if bulk.endswith("SHA384") else "sha256"
    return CipherSuite(code, name, openssl_name, cipher, *_BULK[cipher], prf, kx, auth)


# The default order: ECDHE with AEADs, ECDHE with CBC, then RSA key exchange (for the peers
# that need it); stronger first, ECDSA before RSA.
TLS12_SUITES: List[CipherSuite] = [
    _suite(0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    _suite(0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    _suite(0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"),
    _suite(0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
    _suite(0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    _suite(0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    _suite(0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384"),
    _suite(0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384"),
    _suite(0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"),
    _suite(0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"),
    _suite(0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"),
    _suite(0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"),
    _suite(0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"),
    _suite(0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"),
    _suite(0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
    _suite(0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"),
    _suite(0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"),
    _suite(0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256"),
    _suite(0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"),
    _suite(0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"),
]

BY_CODE: Dict[int, CipherSuite] = {s.code: s for s in TLS12_SUITES}

# The order OpenSSL lists what an alias (HIGH, kRSA, AESGCM, ...) selects: AEAD before CBC,
# SHA-2 MACs before SHA-1, stronger first.
_OPENSSL_ORDER = sorted(
    TLS12_SUITES,
    key=lambda s: (s.kx != "ECDHE", s.is_cbc, s.mac_key_len == 20, -s.key_len, s.cipher == "CHACHA20_POLY1305", s.auth != "ECDSA"),
)

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
    """The suites an OpenSSL cipher string selects, in OpenSSL's order (openssl-ciphers(1)):
    names and aliases joined by ':', ',' or ' '; "A+B" for both; "!" bans, "-" removes, "+"
    moves to the end; "@STRENGTH" sorts by key size; "@SECLEVEL=n" is accepted. As in OpenSSL
    every suite keeps a place in one list: adding moves a suite to the end, removing moves it
    to the front (so a later add brings it back first). IANA names work too."""
    order = list(_OPENSSL_ORDER)
    active: set = set()
    banned: set = set()
    for token in spec.replace(",", ":").replace(" ", ":").split(":"):
        if not token or token.startswith("@SECLEVEL"):
            continue
        if token == "@STRENGTH":
            order.sort(key=lambda s: -s.bits)
            continue
        op, words = (token[0], token[1:]) if token[0] in "!-+" else ("", token)
        matching = [s for s in order if all(w in s.aliases for w in words.split("+"))]
        if op == "!":
            banned.update(matching)
            active.difference_update(matching)
        elif op == "-":
            removed = [s for s in matching if s in active]
            active.difference_update(removed)
            order = removed + [s for s in order if s not in removed]
        elif op == "+":
            moved = [s for s in matching if s in active]
            order = [s for s in order if s not in moved] + moved
        else:
            added = [s for s in matching if s not in active and s not in banned]
            active.update(added)
            order = [s for s in order if s not in added] + added
    return [s for s in order if s in active]


def choose(server_order: Sequence[CipherSuite], offered: Sequence[int], prefer_client: bool,
           usable: Callable[[CipherSuite], bool] = lambda suite: True) -> Optional[CipherSuite]:
    """The suite the server picks (by its own preference unless told to follow the client's),
    among those `usable` says it can serve (a certificate, a group, a signature scheme)."""
    offered_set = set(offered)
    if prefer_client:
        ours = set(server_order)
        candidates = [BY_CODE[c] for c in offered if c in BY_CODE and BY_CODE[c] in ours]
    else:
        candidates = [s for s in server_order if s.code in offered_set]
    return next((s for s in candidates if usable(s)), None)
