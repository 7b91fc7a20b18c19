"""Names in certificates: how OpenSSL prints them."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

__all__ = ["oneline_name", "describe_chain"]


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
