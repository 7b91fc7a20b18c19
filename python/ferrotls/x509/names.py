"""Names in certificates: how OpenSSL prints them, how a peer's name matches its certificate
(RFC 6125) and how names match name constraints (RFC 5280 4.2.1.10)."""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from typing import Optional, Union

from cryptography import x509
from cryptography.x509.oid import NameOID

from .publicsuffix import is_public_suffix

__all__ = ["oneline_name", "describe_chain", "reference_name", "san_matches", "Subtrees"]


# OpenSSL's short names (as ``X509_NAME_print_ex`` shows them) where they differ from RFC 4514.
_SHORT_NAMES = {
    NameOID.COMMON_NAME: "CN", NameOID.COUNTRY_NAME: "C", NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.STREET_ADDRESS: "street",
    NameOID.SERIAL_NUMBER: "serialNumber", NameOID.SURNAME: "SN", NameOID.GIVEN_NAME: "GN",
    NameOID.TITLE: "title", NameOID.INITIALS: "initials", NameOID.GENERATION_QUALIFIER: "generationQualifier",
    NameOID.DN_QUALIFIER: "dnQualifier", NameOID.PSEUDONYM: "pseudonym", NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.DOMAIN_COMPONENT: "DC", NameOID.USER_ID: "UID", NameOID.BUSINESS_CATEGORY: "businessCategory",
    NameOID.POSTAL_CODE: "postalCode", NameOID.JURISDICTION_COUNTRY_NAME: "jurisdictionC",
    NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME: "jurisdictionST",
    NameOID.JURISDICTION_LOCALITY_NAME: "jurisdictionL", NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}


def _escape(value: str) -> str:
    """OpenSSL's "oneline" value escaping: RFC 2253 specials force quotes, ``"`` and ``\\`` get a
    backslash, control characters and every non-ASCII UTF-8 byte become ``\\XX``."""
    quote = any(ch in ',+<>;' for ch in value) or value[:1] in ("#", " ") or value.endswith(" ")
    out = []
    for byte in value.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif byte < 0x20 or byte >= 0x7F:
            out.append(f"\\{byte:02X}")
        else:
            out.append(ch)
    text = "".join(out)
    return f'"{text}"' if quote else text


def oneline_name(name: x509.Name) -> str:
    """A Name as OpenSSL 3 prints it by default: ``C = US, O = Org, CN = host`` (RDNs in
    certificate order, `` + `` between the parts of a multi-valued RDN)."""
    rdns = []
    for rdn in name.rdns:
        parts = []
        for attr in rdn:
            label = _SHORT_NAMES.get(attr.oid, attr.oid.dotted_string)
            value = attr.value if isinstance(attr.value, str) else "#" + attr.value.hex().upper()
            parts.append(f"{label} = {_escape(value)}")
        rdns.append(" + ".join(parts))
    return ", ".join(rdns)


def describe_chain(chain: list[x509.Certificate]) -> list[str]:
    """The lines ``openssl s_client`` prints for a verified chain (leaf first in ``chain``):
    ``depth=N <subject>`` then ``verify return:1``, from the trust anchor down to the leaf."""
    lines = []
    for depth in range(len(chain) - 1, -1, -1):
        lines += [f"depth={depth} {oneline_name(chain[depth].subject)}", "verify return:1"]
    return lines


# --- Reference identifiers and subjectAltName matching (RFC 6125) ---------------------------------

_LABEL = r"(?!-)[a-zA-Z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def is_dns_name(name: str) -> bool:
    """A preferred-syntax host name (RFC 1034 3.5, RFC 1123 2.1): LDH labels, no empty label,
    at most 253 characters."""
    return len(name) <= 253 and _HOST_NAME.fullmatch(name) is not None


def reference_name(server_name: str) -> Union[str, ipaddress.IPv4Address, ipaddress.IPv6Address, None]:
    """The identifier a client looks for: an IP address, or a DNS name as lower-case A-labels
    without a trailing dot; None for something that can never match (RFC 6125 6.2.1, 6.4.1)."""
    try:
        return ipaddress.ip_address(server_name.strip("[]"))
    except ValueError:
        pass
    name = server_name[:-1] if server_name.endswith(".") else server_name
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    name = name.lower()
    # RFC 1123 2.1: a host name never ends in an all-numeric label (that would be an address).
    return name if is_dns_name(name) and not name.rpartition(".")[2].isdigit() else None


def _wildcard_base(pattern: str) -> Optional[str]:
    """For ``*.rest``, ``rest`` if the pattern is a valid wildcard (RFC 6125 6.4.3: the whole
    left-most label, nothing else; CABF 3.2.2.6: not over a public suffix); None otherwise."""
    if not pattern.startswith("*."):
        return None
    rest = pattern[2:]
    return rest if is_dns_name(rest) and not is_public_suffix(rest) else None


def dns_pattern_matches(pattern: str, name: str) -> bool:
    """Does a dNSName from a certificate match a reference name (lower-case A-labels)?"""
    pattern = pattern.lower()
    if pattern.startswith("*."):
        base = _wildcard_base(pattern)
        if base is None or "." not in name:
            return False
        first, _, rest = name.partition(".")
        return rest == base and not first.startswith("xn--")
    return is_dns_name(pattern) and pattern == name


def san_matches(names: list[x509.GeneralName], reference) -> bool:
    """RFC 6125 6.4: a DNS reference matches a dNSName entry, an IP reference an iPAddress entry."""
    if isinstance(reference, str):
        return any(isinstance(n, x509.DNSName) and dns_pattern_matches(n.value, reference) for n in names)
    return any(isinstance(n, x509.IPAddress) and n.value == reference for n in names)


def common_names(name: x509.Name) -> list[str]:
    return [a.value for a in name.get_attributes_for_oid(NameOID.COMMON_NAME) if isinstance(a.value, str)]


def _lenient_ip(text: str):
    """An IP address in any of the spellings resolvers accept (hex, octal-looking leading zeros,
    upper case, uncompressed IPv6), or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None


def common_name_problem(cn: str, sans: list[x509.GeneralName]) -> Optional[str]:
    """What is wrong with how a leaf's common name is written (CABF 7.1.4.3), or None: an IP
    address must be RFC 3986 (IPv4) or RFC 5952 (IPv6) text, and a domain name that is one of the
    dNSName entries must be a character-for-character copy of it (not in another case, nor in
    U-labels). A common name naming nothing in the subjectAltName is tolerated: BetterTLS's valid chains
    carry unrelated ones (CN=bad.example.com with a dNSName test.localhost, CN=1.1.1.1 with an
    iPAddress 127.0.0.1), and clients ignore the common name when a subjectAltName is present."""
    ip = _lenient_ip(cn)
    if ip is not None:
        return None if str(ip) == cn else "is not an IP address in canonical form"
    wildcard = cn.startswith("*.")
    folded = reference_name(cn[2:] if wildcard else cn)
    if folded is not None and not cn.isascii():
        return "is a domain name in U-labels, where a dNSName holds A-labels"
    if wildcard and folded is not None:
        folded = "*." + folded
    dns = {n.value for n in sans if isinstance(n, x509.DNSName)}
    if cn not in dns and folded is not None and any(d.lower() == folded for d in dns):
        return "is not a character-for-character copy of its dNSName entry"
    return None


# --- Name constraints (RFC 5280 4.2.1.10) ----------------------------------------------------------


class ConstraintError(ValueError):
    """A name or a constraint that cannot be evaluated: malformed, or of an unsupported type."""


def _suffixes(name: str) -> set[str]:
    """``a.b.c`` -> {a.b.c, b.c, c}: the subtrees a DNS name lies in, one per label boundary."""
    labels = name.split(".")
    return {".".join(labels[i:]) for i in range(len(labels))}


_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")


def _mailbox(value: str) -> tuple[str, str]:
    """An RFC 5321 mailbox with a dot-atom local part: (local part, lower-case domain)."""
    local, at, domain = value.rpartition("@")
    if not at or not all(_ATEXT.fullmatch(atom) for atom in local.split(".")) or not is_dns_name(domain):
        raise ConstraintError(f"malformed email address {value!r}")
    return local, domain.lower()


# RFC 4518 2.2: characters mapped to nothing (soft hyphen, joiners, variation selectors, ...).
_MAPPED_TO_NOTHING = dict.fromkeys([0xAD, 0x34F, 0x1806, 0x180B, 0x180C, 0x180D, 0x200B, 0x200C, 0x200D, 0x2060,
                                    0xFEFF, 0xFFFC, *range(0xFE00, 0xFE10)])


def _prepared(value: str) -> str:
    """RFC 4518 string preparation for caseIgnoreMatch, as RFC 5280 7.1 asks of name comparison:
    map to nothing, NFKC, case fold, and insignificant spaces collapsed."""
    value = unicodedata.normalize("NFKC", value.translate(_MAPPED_TO_NOTHING)).casefold()
    return " ".join(value.split())


def _rdn_key(rdn: x509.RelativeDistinguishedName) -> frozenset:
    """An RDN as RFC 5280 7.1 compares it: strings prepared, anything else byte for byte."""
    return frozenset((a.oid, _prepared(a.value) if isinstance(a.value, str) else a.value) for a in rdn)


class Subtrees:
    """The permitted or the excluded subtrees of a nameConstraints extension, prepared so that
    checking a name costs a few set lookups for DNS names and one pass over the subtrees of its
    type otherwise. Malformed subtrees and unsupported types fail only when a name of that type
    has to be checked against them (RFC 5280 4.2.1.10: constraints apply per name form)."""

    def __init__(self, subtrees: Optional[list[x509.GeneralName]]) -> None:
        self.types: set[type] = set()
        self.dns: set[str] = set()
        self.dns_parents: set[str] = set()  # for excluded subtrees that one wildcard label can reach
        self.networks: list = []
        self.emails: list[str] = []
        self.directories: list[list[frozenset]] = []
        self.broken: dict[type, str] = {}
        self.count = len(subtrees or ())
        for tree in subtrees or ():
            kind = type(tree)
            self.types.add(kind)
            if kind is x509.DNSName:
                value = tree.value.lower()
                if not is_dns_name(value):  # no wildcards, no leading period
                    self.broken[kind] = f"malformed DNS name constraint {tree.value!r}"
                self.dns.add(value)
                self.dns_parents.add(value.partition(".")[2])
            elif kind is x509.IPAddress:
                if not isinstance(tree.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                    self.broken[kind] = "malformed IP address constraint"
                self.networks.append(tree.value)
            elif kind is x509.RFC822Name:
                try:
                    self.emails.append(self._email_constraint(tree.value))
                except ConstraintError as exc:
                    self.broken[kind] = str(exc)
            elif kind is x509.DirectoryName:
                self.directories.append([_rdn_key(rdn) for rdn in tree.value.rdns])
            else:
                self.broken[kind] = f"unsupported name constraint type {kind.__name__}"

    @staticmethod
    def _email_constraint(value: str) -> str:
        if "@" in value:
            local, domain = _mailbox(value)
            return f"{local}@{domain}"
        if not is_dns_name(value.removeprefix(".")):
            raise ConstraintError(f"malformed email constraint {value!r}")
        return value.lower()

    def __len__(self) -> int:
        return self.count

    def contains(self, name: x509.GeneralName, excluded: bool) -> Optional[bool]:
        """Whether ``name`` lies in one of these subtrees; None when none is of its type. A wildcard
        dNSName stands for every name it matches: a permitted subtree must hold all of them, an
        excluded one catches any of them."""
        kind = type(name)
        if kind not in self.types:
            return None
        if kind in self.broken:
            raise ConstraintError(self.broken[kind])
        if kind is x509.DNSName:
            value = name.value.lower()
            base = value[2:] if value.startswith("*.") else value
            if not is_dns_name(base) or (base is not value and "." not in base):
                raise ConstraintError(f"malformed DNS name {name.value!r}")
            if self.dns & _suffixes(base):
                return True
            return base is not value and excluded and base in self.dns_parents
        if kind is x509.IPAddress:
            address = name.value
            if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                raise ConstraintError("malformed IP address")
            # An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reaches the IPv4 host: it is both.
            forms = [address, *([address.ipv4_mapped] if getattr(address, "ipv4_mapped", None) else [])]
            return any(a.version == n.version and a in n for a in forms for n in self.networks)
        if kind is x509.RFC822Name:
            local, domain = _mailbox(name.value)
            mailbox = f"{local}@{domain}"
            # A mailbox matches exactly, a host every mailbox there, ``.host`` every host below it.
            return any(mailbox == c if "@" in c else (domain.endswith(c) if c.startswith(".") else domain == c)
                       for c in self.emails)
        rdns = [_rdn_key(rdn) for rdn in name.value.rdns]  # a directoryName: the subtree's RDNs lead
        return any(len(base) <= len(rdns) and rdns[: len(base)] == base for base in self.directories)
