"""The sans-I/O connection: bytes in, events and bytes out (DESIGN.md principle 1).

The record layer lives here: plaintext records until ChangeCipherSpec, then the Rust core's
batched sealer and opener. Handshake messages are reassembled and handed to the current
handshake state (client12.py, server12.py), which returns the next state.
"""

from __future__ import annotations

import collections
import struct
import time
from dataclasses import dataclass
from typing import Deque, List, Optional, Tuple, Union

from .. import _core
from .alerts import AlertDescription, AlertLevel, PeerAlert, TLSAlert
from .config import TLSConfig
from .messages import TLS12, ContentType, HandshakeType, frame, split_messages
from .sessions import Session
from .suites import CipherSuite

MAX_FRAGMENT = 1 << 14
# Largest handshake message accepted: certificate chains are the big ones.
MAX_HANDSHAKE_MESSAGE = 1 << 18


@dataclass
class HandshakeComplete:
    pass


@dataclass
class ApplicationData:
    data: bytes


@dataclass
class AlertReceived:
    level: int
    description: int


@dataclass
class ConnectionClosed:
    """The peer sent close_notify."""


Event = object


class State:
    """A handshake state: handles one message and returns the next state."""

    expects_ccs = False

    def handle(self, conn: "Connection", msg_type: int, body: bytes) -> "State":
        raise TLSAlert(AlertDescription.unexpected_message, f"{type(self).__name__} got {_msg_name(msg_type)}")

    def handle_ccs(self, conn: "Connection") -> "State":
        raise TLSAlert(AlertDescription.unexpected_message, f"{type(self).__name__} got ChangeCipherSpec")


class Done(State):
    """The handshake is over."""


class ExpectChangeCipherSpec(State):
    """Either side, before the peer's Finished: the peer's keys take effect (RFC 5246 7.1)."""

    def __init__(self, then: State):
        self.then = then

    def handle_ccs(self, conn: "Connection") -> State:
        conn.activate_pending_opener()
        return self.then


def _msg_name(msg_type: int) -> str:
    try:
        return HandshakeType(msg_type).name
    except ValueError:
        return f"handshake type {msg_type}"


def _refuse_plaintext_http(header: bytes) -> None:
    """A server's first bytes that are an HTTP request, not a TLS record: OpenSSL names them and
    closes without an alert (ssl3_get_record's HTTP_REQUEST / HTTPS_PROXY_REQUEST)."""
    if header.startswith((b"GET ", b"POST ", b"HEAD ", b"PUT ")):
        raise TLSAlert(AlertDescription.unexpected_message, "http request", send=False, reason="HTTP_REQUEST")
    if header.startswith(b"CONNE"):
        raise TLSAlert(AlertDescription.unexpected_message, "https proxy request", send=False,
                       reason="HTTPS_PROXY_REQUEST")


class Connection:
    def __init__(self, config: TLSConfig, is_client: bool, *, server_hostname: Optional[str] = None,
                 session: Optional[Session] = None, now: Optional[float] = None):
        self.config = config
        self.is_client = is_client
        self.server_hostname = server_hostname
        self.now = time.time() if now is None else now
        self._in = bytearray()  # receive_data's incomplete record
        # Records to send: framed bytes, or (content type, data) to seal in data_to_send.
        self._out: Deque[Union[bytes, Tuple[int, bytes]]] = collections.deque()
        self._hs_in = bytearray()
        self._hs_out = bytearray()
        self._sealer: Optional[_core.RecordSealer] = None
        self._opener: Optional[_core.RecordOpener] = None
        self.pending_opener: Optional[_core.RecordOpener] = None
        # Every handshake message so far; `transcript_mark` is its length before the message
        # being handled, for the MACs and signatures that cover what came before it.
        self.transcript = bytearray()
        self._received = False  # any record from the peer yet
        self.transcript_mark = 0
        self.handshake_complete = False
        self.close_sent = False
        self.peer_closed = False
        self.failed: Optional[Exception] = None
        # Negotiated.
        self.suite: Optional[CipherSuite] = None
        self.client_random = b""
        self.server_random = b""
        self.master_secret = b""
        self.extended_master_secret = False
        self.encrypt_then_mac = False
        self.secure_renegotiation = False
        self.resumed = False
        self.session: Optional[Session] = session
        self.server_name: Optional[str] = server_hostname
        self.peer_chain: List[bytes] = []
        self.verified_chain: list = []
        self.local_credential = None
        self.alpn_protocol: Optional[bytes] = None
        self.offered_suites: List[int] = []  # the client's cipher_suites
        self.first_finished = b""  # tls-unique (RFC 5929)
        self.session_offered = False  # server: the client asked to resume (by ID or ticket)
        from .client12 import ClientStart
        from .server12 import ExpectClientHello

        self.state: State = ClientStart() if is_client else ExpectClientHello()

    # The caller's side.

    def start_handshake(self) -> None:
        """Client: send the ClientHello. Server: nothing to do until it arrives."""
        self.info("before SSL initialization")
        if self.is_client:
            self._guard(lambda: setattr(self, "state", self.state.start(self)))  # type: ignore[attr-defined]

    def receive_records(self, buf: bytearray, start: int, end: int, want: int,
                        events: Optional[List[Event]] = None) -> Tuple[int, int, int]:
        """Processes the whole records in `buf[start:end]`, opening protected ones in place.

        Returns (app_start, app_end, used): the application data is `buf[app_start:app_end]`
        and `used` bytes were consumed. It stops at an incomplete record, once the handshake
        completes, after close_notify, and once application data is open (at least `want`
        bytes if the records hold them), so that a caller reading from a socket takes no more
        than the current operation needs. Control events are appended to `events`. Raises
        TLSAlert (after queueing the alert to send) or PeerAlert when the connection fails;
        a failure found after application data is raised by the next call instead."""
        if self.failed is not None:
            raise self.failed
        found = [start, start, 0]
        try:
            self._guard(self._take_records, buf, start, end, want, [] if events is None else events, found)
        except (TLSAlert, PeerAlert):
            if found[1] == found[0]:
                raise
        return found[0], found[1], found[2]

    def receive_data(self, data: bytes) -> List[Event]:
        """The plain sans-I/O interface: feeds bytes from the peer, keeps an incomplete record
        for the next call and returns what happened."""
        if self.failed is not None:
            raise self.failed
        self._in += data
        events: List[Event] = []
        pos = 0
        try:
            while pos < len(self._in):
                control: List[Event] = []
                try:
                    app_start, app_end, used = self.receive_records(self._in, pos, len(self._in), 1 << 30, control)
                finally:
                    events += control
                if app_end > app_start:
                    events.insert(len(events) - len(control), ApplicationData(bytes(self._in[app_start:app_end])))
                if not used:
                    break
                pos += used
        except (TLSAlert, PeerAlert):
            if not any(isinstance(e, ApplicationData) for e in events):
                raise
        finally:
            del self._in[:pos]
        return events

    def record_size(self, buf: bytearray, start: int, end: int) -> int:
        """The size of the record starting at `buf[start]`, header included, once its header is
        in `buf[start:end]` (5 until then); the header is checked first."""
        try:
            return self._record_size(buf, start, end)
        except TLSAlert as e:
            self._fail(e)
            raise

    def _record_size(self, buf: bytearray, start: int, end: int) -> int:
        if end - start < 5:
            return 5
        length = int.from_bytes(buf[start + 3 : start + 5], "big")
        if self._opener is None:
            self._check_plaintext_header(bytes(buf[start : start + 5]))
        elif length > MAX_FRAGMENT + 2048:
            # RFC 5246 6.2.3: a protected record is at most 2^14 + 2048 bytes; the opener checks
            # the rest, but this catches an oversized one before its body arrives.
            raise TLSAlert(AlertDescription.record_overflow, "record too long")
        return 5 + length

    def fast_opener(self) -> Optional[_core.RecordOpener]:
        """The opener for a reader that opens application data records itself, while nothing
        else can come: TLS 1.2 (a record's type is in its header) after the handshake, with no
        handshake message half received, neither closed by the peer nor failed. Records of
        other types must still come here."""
        if not self.handshake_complete or self.failed is not None or self.peer_closed or self._hs_in:
            return None
        return self._opener

    def fast_sealer(self) -> Optional[_core.RecordSealer]:
        """The sealer for a writer that seals application data records itself, while
        application data may be written (check_writable) and nothing queued must go first."""
        if not self.handshake_complete or self.close_sent or self.failed is not None or self._out:
            return None
        return self._sealer

    def record_failed(self, error: _core.RecordError) -> None:
        """Such a reader could not open a record: fails as receive_records would (raises)."""

        def reraise() -> None:
            raise error

        self._guard(reraise)

    def may_read_past(self, content_type: int) -> bool:
        """Whether the bytes after a record of this (outer) type may be taken before it is
        opened: not after an alert, since nothing after close_notify belongs to TLS."""
        return content_type != ContentType.alert

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    def data_to_send(self) -> bytes:
        """The records to send, protected records sealed now: whoever calls this and
        seal_application_data must serialise the calls, so records leave in sequence."""
        out, parts = self._out, []
        while out:  # popped one by one: a record queued meanwhile by another thread stays queued
            item = out.popleft()
            parts.append(item if isinstance(item, bytes) else self._sealer.seal(*item))
        return b"".join(parts)

    def seal_application_data(self, data, out: bytearray, at: int) -> int:
        """Seals `data` (a bytes-like object) as application data records into `out` from
        offset `at`, which must have room for sealed_len(len(data)) bytes; returns the end.
        The caller has made sure with check_writable that the connection may write."""
        return self._sealer.seal_into(ContentType.application_data, data, out, at)

    def sealed_len(self, length: int) -> int:
        return self._sealer.sealed_len(length)

    def send_application_data(self, data) -> None:
        """Queues `data` as application data records for data_to_send."""
        self.check_writable()
        self._out.append((ContentType.application_data, bytes(data)))

    def check_writable(self) -> None:
        """RuntimeError unless application data may be written now."""
        if not self.handshake_complete or self._sealer is None:
            raise RuntimeError("the handshake is not complete")
        if self.close_sent or self.failed is not None:
            raise RuntimeError("the connection is closed")

    def close(self) -> None:
        """Sends close_notify (once)."""
        if not self.close_sent and self.failed is None:
            self.send_alert(AlertLevel.warning, AlertDescription.close_notify)
            self.close_sent = True

    @property
    def cipher_suite(self) -> Optional[CipherSuite]:
        return self.suite

    # The record layer.

    def _guard(self, step, *args) -> None:
        try:
            step(*args)
        except _core.RecordError as e:
            self._fail(TLSAlert(AlertDescription[e.args[0]], e.args[1]))
        except TLSAlert as e:
            self._fail(e)
        except PeerAlert as e:
            self.failed = e
            raise
        except Exception as e:
            # Anything else is a bug here, or a library's exception on peer bytes that a check
            # missed: internal_error to the peer, and the original chained for debugging.
            alert = TLSAlert(AlertDescription.internal_error, f"{type(e).__name__}: {e}")
            alert.__cause__ = e
            self._fail(alert)
        finally:
            if self._hs_out:
                self._flush_handshake()

    def _fail(self, alert: TLSAlert) -> None:
        self._hs_out.clear()
        if alert.send:
            self.send_alert(AlertLevel.fatal, alert.description)
        self.failed = alert
        raise alert

    def _check_plaintext_header(self, header: bytes) -> None:
        content_type, version, length = struct.unpack_from("!BHH", header)
        if version >> 8 != 3:
            # As OpenSSL's ssl3_get_record: first bytes that are not TLS at all (a plaintext
            # peer) end the connection without an alert, with HTTP named when it is HTTP.
            if not self._received:
                if not self.is_client:
                    _refuse_plaintext_http(header)
                raise TLSAlert(AlertDescription.protocol_version, "wrong version number", send=False,
                               reason="WRONG_VERSION_NUMBER")
            raise TLSAlert(AlertDescription.protocol_version, f"record version {version:#06x}",
                           reason="WRONG_VERSION_NUMBER")
        if content_type not in (20, 21, 22, 23):
            raise TLSAlert(AlertDescription.unexpected_message, f"unknown record type {content_type}")
        if length > MAX_FRAGMENT:
            raise TLSAlert(AlertDescription.record_overflow, "plaintext record too long")

    def _take_records(self, buf: bytearray, start: int, end: int, want: int, events: List[Event], found: list) -> None:
        """receive_records' loop; `found` is [app_start, app_end, used], kept current so that
        what was consumed before a failure is known."""
        pos = start
        negotiating = not self.handshake_complete
        while pos < end and not self.peer_closed:
            if self._opener is None:
                size = self._record_size(buf, pos, end)
                if end - pos < size:
                    return
                content_type = buf[pos]
                pos += size
                found[2] = pos - start
                self._dispatch(content_type, bytes(buf[pos - size + 5 : pos]), events)
            else:
                app_start, app_end, content_type, control_end, used = self._opener.open_in_place(buf, pos, end, want)
                if not used:
                    return
                pos += used
                found[2] = pos - start
                if app_end > app_start:
                    if not self.handshake_complete or self._hs_in:
                        raise TLSAlert(AlertDescription.unexpected_message, "application data in the handshake")
                    found[0], found[1] = app_start, app_end
                if content_type:
                    self._dispatch(content_type, bytes(buf[app_end:control_end]), events)
                if app_end > app_start:
                    return
            if negotiating and self.handshake_complete:
                return

    def _dispatch(self, content_type: int, data: bytes, events: List[Event]) -> None:
        self._received = True
        if content_type != ContentType.handshake and self._hs_in:
            raise TLSAlert(AlertDescription.unexpected_message, "record interleaved with a handshake message")
        if content_type == ContentType.handshake:
            if not data:
                raise TLSAlert(AlertDescription.decode_error, "empty handshake record")
            self._hs_in += data
            for msg_type, body, raw in split_messages(self._hs_in):
                self._handle_handshake(msg_type, body, raw, events)
            if len(self._hs_in) >= 4 and int.from_bytes(self._hs_in[1:4], "big") > MAX_HANDSHAKE_MESSAGE:
                raise TLSAlert(AlertDescription.illegal_parameter, "excessive handshake message size",
                               reason="EXCESSIVE_MESSAGE_SIZE")
        elif content_type == ContentType.change_cipher_spec:
            if data != b"\x01":
                raise TLSAlert(AlertDescription.unexpected_message, "malformed ChangeCipherSpec")
            self.state = self.state.handle_ccs(self)
        elif content_type == ContentType.alert:
            self._handle_alert(data, events)
        elif content_type == ContentType.application_data:
            if not self.handshake_complete:
                raise TLSAlert(AlertDescription.unexpected_message, "application data before the handshake ended")
            if data:
                events.append(ApplicationData(data))
        else:
            raise TLSAlert(AlertDescription.unexpected_message, f"record type {content_type}")

    def _handle_handshake(self, msg_type: int, body: bytes, raw: bytes, events: List[Event]) -> None:
        if msg_type == HandshakeType.hello_request:
            # RFC 5246 7.4.1.1: ignored while negotiating; afterwards we refuse renegotiation.
            # Only a server sends it, whatever its body.
            if not self.is_client:
                raise TLSAlert(AlertDescription.unexpected_message, "HelloRequest sent to a server")
            if body:
                raise TLSAlert(AlertDescription.decode_error, "HelloRequest has a body")
            if self.handshake_complete:
                self.send_alert(AlertLevel.warning, AlertDescription.no_renegotiation)
            return
        if self.handshake_complete:
            if not self.is_client and msg_type == HandshakeType.client_hello:
                self.send_alert(AlertLevel.warning, AlertDescription.no_renegotiation)
                return
            raise TLSAlert(AlertDescription.unexpected_message, f"{_msg_name(msg_type)} after the handshake")
        self.transcript_mark = len(self.transcript)
        self.transcript += raw
        self.state = self.state.handle(self, msg_type, body)
        if isinstance(self.state, Done) and not self.handshake_complete:
            self.handshake_complete = True
            events.append(HandshakeComplete())

    def _handle_alert(self, data: bytes, events: List[Event]) -> None:
        if len(data) != 2:
            raise TLSAlert(AlertDescription.decode_error, "malformed alert")
        level, description = data[0], data[1]
        self.info(f"alert read:{_level_text(level)}:{_alert_text(description)}", prefix="SSL3 ")
        if level != AlertLevel.warning:
            raise PeerAlert(description)
        events.append(AlertReceived(level, description))
        if description == AlertDescription.close_notify:
            # The application answers with its own close_notify when it closes (as OpenSSL
            # lets it): until then it may still write (a half-closed connection).
            self.peer_closed = True
            events.append(ConnectionClosed())

    # Used by the handshake states.

    def info(self, where: str, prefix: Optional[str] = None) -> None:
        callback = self.config.info_callback
        if callback is not None:
            if prefix is None:
                prefix = "SSL_connect:" if self.is_client else "SSL_accept:"
                where = where if where.startswith("before") else "SSLv3/TLS " + where
            callback(prefix + where)

    def send_handshake(self, message, step: str) -> None:
        raw = frame(message.msg_type, message.encode())
        self.transcript += raw
        self._hs_out += raw
        self.info(f"write {step}")

    def _flush_handshake(self) -> None:
        if self._hs_out:
            data = bytes(self._hs_out)
            self._hs_out.clear()
            self._write_record(ContentType.handshake, data)

    def send_change_cipher_spec(self, sealer: _core.RecordSealer) -> None:
        self._flush_handshake()
        self._write_record(ContentType.change_cipher_spec, b"\x01")
        self._sealer = sealer
        self.info("write change cipher spec")

    def activate_pending_opener(self) -> None:
        """ChangeCipherSpec received: everything after it is protected (RFC 5246 7.1)."""
        assert self.pending_opener is not None
        self._opener, self.pending_opener = self.pending_opener, None
        self.info("read change cipher spec")

    def send_alert(self, level: AlertLevel, description: AlertDescription) -> None:
        self._flush_handshake()
        self._write_record(ContentType.alert, bytes([level, description]))
        self.info(f"alert write:{_level_text(level)}:{_alert_text(description)}", prefix="SSL3 ")

    def _write_record(self, content_type: int, data: bytes) -> None:
        if self._sealer is not None:
            self._out.append((content_type, data))
            return
        for i in range(0, len(data), MAX_FRAGMENT):
            chunk = data[i : i + MAX_FRAGMENT]
            self._out.append(struct.pack("!BHH", content_type, TLS12, len(chunk)) + chunk)


def _level_text(level: int) -> str:
    return {1: "warning", 2: "fatal"}.get(level, "unknown")


def _alert_text(description: int) -> str:
    try:
        return AlertDescription(description).text
    except ValueError:
        return "unknown"
