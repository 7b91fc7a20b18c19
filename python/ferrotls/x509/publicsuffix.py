"""The Public Suffix List, read from the copy the distribution ships (Debian, Ubuntu and Fedora
install it at the path below, as libpsl and browsers use it). CABF 3.2.2.6 forbids wildcard
certificates for a public suffix such as ``*.co.uk``; without the list only one-label suffixes
(``*.com``) are recognised, by the wildcard rule in names.py."""

from __future__ import annotations

import functools
import os
from typing import Optional

LIST_PATHS = ("/usr/share/publicsuffix/public_suffix_list.dat",)


@functools.lru_cache(maxsize=1)
def _rules() -> Optional[tuple[frozenset, frozenset, frozenset]]:
    """(plain rules, wildcard rules as their parent, exception rules), or None without a list."""
    path = next((p for p in LIST_PATHS if os.path.isfile(p)), None)
    if path is None:
        return None
    plain, wildcard, exception = set(), set(), set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            rule = line.split(None, 1)[0] if line.strip() else ""
            if not rule or rule.startswith("//"):
                continue
            try:
                rule = rule.encode("idna").decode("ascii").lower()
            except UnicodeError:
                continue
            if rule.startswith("!"):
                exception.add(rule[1:])
            elif rule.startswith("*."):
                wildcard.add(rule[2:])
            else:
                plain.add(rule)
    return frozenset(plain), frozenset(wildcard), frozenset(exception)


def available() -> bool:
    return _rules() is not None


def is_public_suffix(domain: str) -> bool:
    """Whether ``domain`` (lower-case A-labels) is itself a public suffix (publicsuffix.org's
    algorithm: exception rules win, then a wildcard rule covers one more label)."""
    rules = _rules()
    if "." not in domain or rules is None:
        return "." not in domain  # the implicit rule "*": every top-level label
    plain, wildcard, exception = rules
    if domain in exception:
        return False
    return domain in plain or domain.partition(".")[2] in wildcard
