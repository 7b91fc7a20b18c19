"""The sans-I/O TLS protocol core: bytes in, events and bytes out."""

from .alerts import AlertDescription, AlertLevel, PeerAlert, TLSAlert
from .config import TLSConfig
from .connection import AlertReceived, ApplicationData, Connection, ConnectionClosed, HandshakeComplete
from .sessions import Session, SessionCache, TicketKeys
from .suites import TLS12_SUITES, CipherSuite, parse_cipher_list

__all__ = [
    "AlertDescription",
    "AlertLevel",
    "AlertReceived",
    "ApplicationData",
    "CipherSuite",
    "Connection",
    "ConnectionClosed",
    "HandshakeComplete",
    "PeerAlert",
    "Session",
    "SessionCache",
    "TLS12_SUITES",
    "TLSAlert",
    "TLSConfig",
    "TicketKeys",
    "parse_cipher_list",
]
