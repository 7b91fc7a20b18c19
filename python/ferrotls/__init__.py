"""ferrotls: TLS for Python with a Rust core, a drop-in for the standard `ssl` module.

    import ferrotls as ssl                 # or
    ferrotls.inject_into_ssl()             # every later user of `ssl` runs on ferrotls

The module offers everything `ssl` does (constants, exceptions, SSLSocket, SSLObject, MemoryBIO,
...), with SSLContext, create_default_context and get_server_certificate served by ferrotls.
"""

from __future__ import annotations

import os
import socket as _socket
import ssl as _ssl
from ssl import *  # noqa: F401,F403  the constants, exceptions and classes of the stdlib module
from ssl import Purpose, SSLObject, SSLSocket  # noqa: F401

from . import _core  # noqa: F401
from .context import SSLContext
from .sslobject import SSLSession  # noqa: F401
from .inject import extract_from_ssl, inject_into_ssl  # noqa: F401

__version__ = "0.1.0"

# What ferrotls speaks (the stdlib's own flags describe its OpenSSL): TLS 1.2, not yet TLS 1.3.
HAS_TLSv1_3 = False


def create_default_context(purpose=Purpose.SERVER_AUTH, *, cafile=None, capath=None, cadata=None) -> SSLContext:
    """As ssl.create_default_context: a client context that verifies the server and its name,
    or a server context; trusting the given CAs, or else the system's."""
    if not isinstance(purpose, _ssl._ASN1Object):
        raise TypeError(purpose)
    if purpose == Purpose.SERVER_AUTH:
        context = SSLContext(PROTOCOL_TLS_CLIENT)  # noqa: F405
    elif purpose == Purpose.CLIENT_AUTH:
        context = SSLContext(PROTOCOL_TLS_SERVER)  # noqa: F405
    else:
        raise ValueError(purpose)
    if cafile or capath or cadata:
        context.load_verify_locations(cafile, capath, cadata)
    elif context.verify_mode != CERT_NONE:  # noqa: F405
        context.load_default_certs(purpose)
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and hasattr(context, "keylog_filename"):
        context.keylog_filename = keylog
    return context


def get_server_certificate(addr, ssl_version=PROTOCOL_TLS_CLIENT, ca_certs=None, timeout=_socket._GLOBAL_DEFAULT_TIMEOUT) -> str:  # noqa: F405
    """The PEM certificate of the server at addr = (host, port); verified only with ca_certs."""
    host, port = addr
    context = SSLContext(ssl_version)
    if ca_certs is not None:
        context.load_verify_locations(ca_certs)
    else:
        context.check_hostname = False
        context.verify_mode = CERT_NONE  # noqa: F405
    with _socket.create_connection(addr, timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(True)
    return DER_cert_to_PEM_cert(der)  # noqa: F405


_create_default_https_context = create_default_context
