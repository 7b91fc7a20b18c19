"""inject_into_ssl(): make every user of the stdlib `ssl` module run on ferrotls, and
extract_from_ssl() to undo it.

Three things need care. Libraries keep their own references (urllib3 imports SSLContext at
import time; http.client keeps ssl._create_default_https_context). Contexts made before the
injection must still pass isinstance(ctx, ssl.SSLContext). And ssl.py's property setters look
SSLContext up by name (super(SSLContext, SSLContext)), which after the swap would find
ferrotls' class: for stdlib contexts those properties go straight to the C base instead.
"""

from __future__ import annotations

import ssl
import sys
import threading
from typing import Dict, Tuple

from .context import SSLContext as _FerroContext

_ORIGINAL = ssl.SSLContext
_C_BASE = ssl.SSLContext.__mro__[1]  # _ssl._SSLContext
_lock = threading.Lock()
_saved: Dict[Tuple[str, str], object] = {}


class _AcceptsStdlibContexts(type):
    def __instancecheck__(cls, obj) -> bool:
        return type.__instancecheck__(cls, obj) or isinstance(obj, _ORIGINAL)

    def __subclasscheck__(cls, sub) -> bool:
        return type.__subclasscheck__(cls, sub) or issubclass(sub, _ORIGINAL)


def _either(name: str) -> property:
    """A property that is ferrotls' on ferrotls contexts and the C base's on stdlib ones."""
    ours = getattr(_FerroContext, name)
    theirs = getattr(_C_BASE, name)

    def get(self):
        return (ours if isinstance(self, _FerroContext) else theirs).__get__(self)

    def set_(self, value):
        (ours if isinstance(self, _FerroContext) else theirs).__set__(self, value)

    return property(get, set_)


# The properties ssl.py defines with super(SSLContext, SSLContext).
_BY_NAME = [n for n in ("minimum_version", "maximum_version", "options", "verify_flags", "verify_mode",
                        "hostname_checks_common_name", "_msg_callback") if hasattr(_C_BASE, n)]


class _Dispatch:
    """Comes right after InjectedSSLContext in its MRO, which is where ssl.py's
    super(SSLContext, SSLContext) lands once ssl.SSLContext is InjectedSSLContext."""


for _name in _BY_NAME:
    setattr(_Dispatch, _name, _either(_name))


class InjectedSSLContext(_Dispatch, _FerroContext, metaclass=_AcceptsStdlibContexts):
    """ssl.SSLContext while injected: ferrotls' context, and a stdlib one for isinstance."""


def _replacements() -> Dict[str, object]:
    import ferrotls

    return {
        "SSLContext": InjectedSSLContext,
        "create_default_context": ferrotls.create_default_context,
        "_create_default_https_context": ferrotls.create_default_context,
        "get_server_certificate": ferrotls.get_server_certificate,
    }


def _set(module, name: str, value) -> None:
    key = (module.__name__, name)
    if key not in _saved:
        _saved[key] = getattr(module, name)
    setattr(module, name, value)


def inject_into_ssl() -> None:
    """From now on ssl.SSLContext and ssl.create_default_context are ferrotls', in the ssl
    module and in the references urllib3 and http.client took from it."""
    with _lock:
        replacements = _replacements()
        originals = {name: getattr(ssl, name) for name in replacements}
        for name, value in replacements.items():
            _set(ssl, name, value)
        for module in list(sys.modules.values()):
            if module is None or module is ssl or not getattr(module, "__name__", "").startswith(("urllib3", "http.client", "requests", "httpx", "httpcore")):
                continue
            for name, original in originals.items():
                if getattr(module, name, None) is original:
                    _set(module, name, replacements[name])


def extract_from_ssl() -> None:
    """Undoes inject_into_ssl()."""
    with _lock:
        for (module_name, name), value in _saved.items():
            module = sys.modules.get(module_name)
            if module is not None:
                setattr(module, name, value)
        _saved.clear()
