"""DER surgery for tests: take a certificate apart and put it back together, to write what
cryptography's builder refuses to (SHA-1 signatures, GeneralizedTime before 2050, ...)."""

from __future__ import annotations

from typing import List, Tuple


def tlv(data: bytes, pos: int) -> Tuple[int, int]:
    """(content start, element end) of the DER element at ``pos``."""
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        return pos, pos + first
    count = first & 0x7F
    return pos + count, pos + count + int.from_bytes(data[pos:pos + count], "big")


def elements(data: bytes) -> List[bytes]:
    """The elements inside the SEQUENCE ``data``."""
    start, end = tlv(data, 0)
    out, pos = [], start
    while pos < end:
        stop = tlv(data, pos)[1]
        out.append(data[pos:stop])
        pos = stop
    return out


def der(tag: int, content: bytes) -> bytes:
    """One DER element."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content
