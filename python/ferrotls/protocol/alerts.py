"""Alerts (RFC 5246 section 7.2, RFC 8446 section 6)."""

from __future__ import annotations

from typing import Optional

import enum


class AlertLevel(enum.IntEnum):
    warning = 1
    fatal = 2


class AlertDescription(enum.IntEnum):
    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    decryption_failed = 21
    record_overflow = 22
    decompression_failure = 30
    handshake_failure = 40
    bad_certificate = 42
    unsupported_certificate = 43
    certificate_revoked = 44
    certificate_expired = 45
    certificate_unknown = 46
    illegal_parameter = 47
    unknown_ca = 48
    access_denied = 49
    decode_error = 50
    decrypt_error = 51
    export_restriction = 60
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    inappropriate_fallback = 86
    user_canceled = 90
    no_renegotiation = 100
    missing_extension = 109
    unsupported_extension = 110
    certificate_unobtainable = 111
    unrecognized_name = 112
    bad_certificate_status_response = 113
    bad_certificate_hash_value = 114
    unknown_psk_identity = 115
    certificate_required = 116
    no_application_protocol = 120

    @property
    def text(self) -> str:
        """OpenSSL's words for it: "close notify", "bad record mac", ..."""
        return self.name.replace("_", " ")


class TLSAlert(Exception):
    """Raised inside the protocol core: the connection ends with this fatal alert to the peer."""

    def __init__(self, description: AlertDescription, message: str, *, send: bool = True,
                 reason: Optional[str] = None):
        super().__init__(f"{description.name}: {message}")
        self.description = description
        self.message = message
        self.send = send  # False: the connection ends without an alert, as OpenSSL ends some
        self.reason = reason  # OpenSSL's reason for the failure, where the alert does not name it


class PeerAlert(Exception):
    """The peer ended the connection with a fatal alert."""

    def __init__(self, description: int):
        try:
            name = AlertDescription(description).name
        except ValueError:
            name = f"alert {description}"
        super().__init__(f"peer sent fatal alert {name}")
        self.description = description
        self.name = name
