"""ferrotls failures as the standard `ssl` exceptions, with the fields clients read: args[0]
(the SSL_ERROR_* code), reason and library as OpenSSL names them, and for verification failures
verify_code and verify_message (DESIGN.md principle 4)."""

from __future__ import annotations

import ssl

from .protocol import AlertDescription, PeerAlert, TLSAlert

# OpenSSL's reason for an alert received (SSL_R_SSLV3_ALERT_* / SSL_R_TLSV1_ALERT_*).
_SSLV3_ALERTS = {10, 20, 30, 40, 41, 42, 43, 44, 45, 46, 47}
_RECEIVED_NAMES = {
    AlertDescription.unrecognized_name: "TLSV1_UNRECOGNIZED_NAME",
    AlertDescription.unsupported_extension: "TLSV1_UNSUPPORTED_EXTENSION",
    AlertDescription.certificate_required: "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    AlertDescription.missing_extension: "TLSV13_ALERT_MISSING_EXTENSION",
    AlertDescription.bad_record_mac: "SSLV3_ALERT_BAD_RECORD_MAC",
}
# OpenSSL's reason for a failure detected here, where it differs from the alert's name.
_LOCAL_REASONS = {
    AlertDescription.bad_record_mac: "DECRYPTION_FAILED_OR_BAD_RECORD_MAC",
    AlertDescription.protocol_version: "UNSUPPORTED_PROTOCOL",
    AlertDescription.record_overflow: "ENCRYPTED_LENGTH_TOO_LONG",
    AlertDescription.decrypt_error: "DIGEST_CHECK_FAILED",
}


# The message of a TLSAlert raised for a refusing or failing server name callback.
CALLBACK_FAILED = "callback failed"


def _make(cls, code: int, reason: str, text: str) -> ssl.SSLError:
    err = cls(code, f"[SSL: {reason}] {text} (_ssl.c:1006)")
    err.library = "SSL"
    err.reason = reason
    return err


def received_alert_reason(description: int) -> str:
    try:
        desc = AlertDescription(description)
    except ValueError:
        return f"TLSV1_ALERT_UNKNOWN_{description}"
    if desc in _RECEIVED_NAMES:
        return _RECEIVED_NAMES[desc]
    prefix = "SSLV3_ALERT_" if desc in _SSLV3_ALERTS else "TLSV1_ALERT_"
    return prefix + desc.name.upper().replace("USER_CANCELED", "USER_CANCELLED")


def from_protocol_error(exc: Exception, hostname: str | None = None) -> ssl.SSLError:
    """The ssl exception for a TLSAlert (a failure detected here) or a PeerAlert."""
    if isinstance(exc, PeerAlert):
        reason = received_alert_reason(exc.description)
        return _make(ssl.SSLError, ssl.SSL_ERROR_SSL, reason, reason.lower().replace("_", " "))
    assert isinstance(exc, TLSAlert)
    verify = getattr(exc, "verify_error", None)
    if verify is not None:
        message = verify.verify_message
        # CPython words these two itself (Modules/_ssl.c fill_and_set_sslerror).
        if verify.verify_code == 62:
            message = f"Hostname mismatch, certificate is not valid for '{hostname}'."
        elif verify.verify_code == 64:
            message = f"IP address mismatch, certificate is not valid for '{hostname}'."
        err = _make(ssl.SSLCertVerificationError, ssl.SSL_ERROR_SSL, "CERTIFICATE_VERIFY_FAILED", f"certificate verify failed: {message}")
        err.verify_code = verify.verify_code
        err.verify_message = message
        return err
    if exc.reason is not None:
        reason = exc.reason
    elif exc.message == CALLBACK_FAILED:
        reason = "CALLBACK_FAILED"
    elif exc.description == AlertDescription.handshake_failure and "no shared cipher" in exc.message:
        reason = "NO_SHARED_CIPHER"
    elif exc.description == AlertDescription.handshake_failure and "did not return a certificate" in exc.message:
        reason = "PEER_DID_NOT_RETURN_A_CERTIFICATE"
    else:
        reason = _LOCAL_REASONS.get(exc.description, exc.description.name.upper())
    return _make(ssl.SSLError, ssl.SSL_ERROR_SSL, reason, exc.message)


def eof_error() -> ssl.SSLEOFError:
    return _make(ssl.SSLEOFError, ssl.SSL_ERROR_EOF, "UNEXPECTED_EOF_WHILE_READING", "EOF occurred in violation of protocol")


def zero_return() -> ssl.SSLZeroReturnError:
    err = ssl.SSLZeroReturnError(ssl.SSL_ERROR_ZERO_RETURN, "TLS/SSL connection has been closed (EOF) (_ssl.c:2578)")
    err.library = err.reason = None
    return err


def want_read() -> ssl.SSLWantReadError:
    err = ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "The operation did not complete (read) (_ssl.c:2578)")
    err.library = err.reason = None
    return err


def want_write() -> ssl.SSLWantWriteError:
    err = ssl.SSLWantWriteError(ssl.SSL_ERROR_WANT_WRITE, "The operation did not complete (write) (_ssl.c:2578)")
    err.library = err.reason = None
    return err


def no_protocols() -> ssl.SSLError:
    return _make(ssl.SSLError, ssl.SSL_ERROR_SSL, "NO_PROTOCOLS_AVAILABLE", "no protocols available")


def protocol_is_shutdown() -> ssl.SSLError:
    return _make(ssl.SSLError, ssl.SSL_ERROR_SSL, "PROTOCOL_IS_SHUTDOWN", "protocol is shutdown")


def wrong_ssl_version() -> ssl.SSLError:
    return _make(ssl.SSLError, ssl.SSL_ERROR_SSL, "WRONG_SSL_VERSION", "wrong ssl version")
