"""The one engine: runs a protocol Connection over a socket or a pair of MemoryBIOs with the
stdlib's I/O semantics (DESIGN.md principle 4).

- Reading takes from the kernel only what the current operation needs, as OpenSSL does
  without read-ahead: the handshake's records, then whole records up to the size the caller
  asked for, never a byte after close_notify, so select() tells the truth. The handshake and
  small reads take a record per system call (the next record's header comes with the end of
  each one, except after an alert); a large read peeks at what has arrived, opens the records
  it needs in place in a reused buffer and then takes exactly those from the socket.
- Writing seals a write in bounded pieces into a reused buffer and sends each; a count returned
  means the bytes are on their way. On a non-blocking socket what does not fit raises
  SSLWantWriteError and the same write() retried goes on where it stopped; any later call
  pushes what is waiting first.
- One reader and one writer may run at once on a connection (each serialised with others of
  its kind); the crypto runs with the GIL released.
- The socket and the owner are held by weak reference, as CPython's _ssl does, so an SSLSocket
  dropped without close() is closed at once.

Application data takes a hot path in the Rust base (_core.EngineBase, rust/src/engine.rs):
read() and write() move records between the socket and the caller without Python code while
the connection allows it, and hand everything else to _read and _write here, on the same state.

SocketEngine is the plain blocking interface of the command line, the tests and the
benchmarks; sslobject.SSLEngine, what ssl.SSLSocket and ssl.SSLObject wrap, is the other face of
the same engine.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Optional

from . import _core, sslerrors
from .protocol import Connection, PeerAlert, TLSAlert
from .transport import MAX_RECORD, Operation, SocketTransport

# The largest plaintext of a record.
MAX_FRAGMENT = 1 << 14
# The most plaintext one read takes from the kernel at once.
MAX_READ = 1 << 20
# A large read peeks at what has arrived when that is at least BATCH_WORTH bytes; after a
# smaller peek the next SINGLE_READS large reads take a record each (one system call, not two).
BATCH_WORTH = 1 << 16
SINGLE_READS = 16
# The plaintext sealed and sent at a time: bounds the write buffer.
WRITE_PIECE = _core.WRITE_PIECE


class TLSError(Exception):
    """The connection failed: `alert` names the TLS alert sent or received."""

    def __init__(self, message: str, alert: str, sent: bool):
        super().__init__(message)
        self.alert = alert
        self.sent = sent


class Engine(_core.EngineBase):
    """A protocol Connection over a transport. Subclasses say how failures are reported
    (`_protocol_error`, `_eof_error`) and how the connection starts (`_start`).

    The base, in _core, holds the buffers and their positions (_rbuf, _plain, _plain_end,
    _partial, _ahead, _single_reads; _wbuf, _wstart, _wend, _written), the two locks, and
    `read` and `write`: the hot path, which moves application data without Python code while
    `_arm_fast_paths` allows it and calls `_read` and `_write` for the rest. Whatever may change
    what the connection allows (a slow read or write, a failure, a close) arms again."""

    def __init__(self, transport, conn: Optional[Connection] = None):
        self._transport = transport
        self.conn = conn
        self._started = False
        self._tcp_eof = False
        self._arm_lock = threading.Lock()

    # What subclasses say.

    def _start(self) -> None:
        self.conn.start_handshake()

    def _protocol_error(self, exc: Exception) -> Exception:
        raise NotImplementedError

    def _eof_error(self) -> Exception:
        raise NotImplementedError

    def _failed_error(self) -> Exception:
        """What a read raises once the connection has failed."""
        return self._protocol_error(self.conn.failed)

    def _tolerate_eof(self) -> bool:
        """Whether a TCP EOF without close_notify after the handshake is the end of the data."""
        return False

    def _handshake_done(self) -> None:
        pass

    # State.

    @property
    def eof(self) -> bool:
        """The peer's data has ended (close_notify, or a TCP EOF that is tolerated)."""
        return self._tcp_eof or (self.conn is not None and self.conn.peer_closed)

    def pending(self) -> int:
        return self._plain_end - self._plain

    # The handshake.

    def do_handshake(self) -> None:
        with self._read_lock:
            if not self._started:
                try:
                    self._start()
                except (TLSAlert, PeerAlert) as e:
                    self._raise_failure(e)
                self._started = True
            operation = self._transport.operation("handshake")
            while True:
                self._flush(operation)
                if self.conn.handshake_complete:
                    break
                self._receive(0, operation)
            self._handshake_done()
            self._arm_fast_paths()

    # Reading.

    def _receive(self, want: int, operation: Operation) -> None:
        """Takes from the transport what the operation needs and processes it, once: a batch
        of whole records for a large read, else more of the record at the front of the
        buffer. Read lock held; called only when no plaintext is waiting."""
        if self.conn.failed is not None:
            raise self._failed_error()
        try:
            if self._ahead:
                # The next record's header came with the last record: to the front.
                self._rbuf[: self._partial] = self._rbuf[self._ahead : self._ahead + self._partial]
                self._ahead = 0
            if want <= MAX_FRAGMENT or not self.conn.handshake_complete:
                self._receive_record(want, operation)
            elif self._single_reads:
                # Records have been arriving one or two at a time: a batch would not pay.
                self._single_reads -= 1
                self._receive_record(want, operation)
            else:
                self._receive_batch(want, operation)
        except (TLSAlert, PeerAlert) as e:
            self._raise_failure(e)

    def _raise_failure(self, e: Exception) -> None:
        """Sends the alert the connection queued and raises its failure as this engine reports
        failures, chaining the original exception of an internal error for debugging."""
        self._push_quietly()
        raise self._protocol_error(e) from e.__cause__

    def _receive_record(self, want: int, operation: Operation) -> None:
        """Reads more of the record at the front of the buffer and processes it once it is
        whole: one system call a record, since the next record's header is read along with the
        end of this one (except after an alert: nothing after close_notify is ours)."""
        conn, partial = self.conn, self._partial
        size = conn.record_size(self._rbuf, 0, partial) if partial >= 5 else 5
        if partial < size:
            ahead = 5 if partial >= 5 and conn.may_read_past(self._rbuf[0]) else 0
            self._reserve(size + ahead)
            got = self._transport.recv_into(self._rbuf, partial, size + ahead - partial, operation)
            if not got:
                return self._end_of_input()
            self._partial = partial = partial + got
            if partial < size or size == 5:
                return  # more to come, or the header is complete and the body is next
        extra, self._partial = partial - size, 0
        self._plain, self._plain_end, _ = conn.receive_records(self._rbuf, 0, size, want)
        if extra:
            self._partial, self._ahead = extra, size

    def _receive_batch(self, want: int, operation: Operation) -> None:
        """Peeks at what has arrived (behind the start of a record already taken, if any),
        processes the whole records among it that the read needs and then takes exactly those
        from the transport: two system calls for many records."""
        conn, transport, partial = self.conn, self._transport, self._partial
        size = min(want, MAX_READ) + MAX_RECORD
        self._reserve(partial + size)
        buf = self._rbuf
        got = transport.peek_into(memoryview(buf)[partial:], size, operation)
        if not got:
            return self._end_of_input()
        if got < BATCH_WORTH:
            self._single_reads = SINGLE_READS
        arrived = partial + got
        start, end, used = conn.receive_records(buf, 0, arrived, want)
        self._partial, take = 0, max(used - partial, 0)
        if used < arrived and end == start and not conn.peer_closed and conn.failed is None:
            # The next record is needed and only part of it has come: take that part.
            buf[: arrived - used] = buf[used:arrived]
            self._partial, take = arrived - used, got
        transport.discard(buf, take)
        self._plain, self._plain_end = start, end

    def _end_of_input(self) -> None:
        """The transport ended without close_notify: a truncation attack unless tolerated."""
        if self.conn.handshake_complete and self._tolerate_eof():
            self._tcp_eof = True
            return
        raise self._eof_error()

    def _reserve(self, size: int) -> None:
        """Room for `size` bytes from the front of the receive buffer (the partial record
        being there)."""
        if len(self._rbuf) < size:
            grown = bytearray(size)
            grown[: self._partial] = self._rbuf[: self._partial]
            self._rbuf = grown

    def _read(self, n: int = 1024, buffer=None):
        """read() (in the base) where its hot path does not serve: up to n bytes of
        application data (into `buffer` if given: returns the count); b"" (0) once the peer's
        data has ended."""
        if buffer is None and n < 0:
            raise ValueError("size should not be negative")  # as CPython's _ssl
        if self.conn is None or not self.conn.handshake_complete:
            self.do_handshake()
        if buffer is not None:
            target = buffer if type(buffer) is bytearray else memoryview(buffer).cast("B")
            n = min(n, len(target)) if n > 0 else len(target)
        if n == 0:
            return 0 if buffer is not None else b""
        with self._read_lock:
            try:
                if self._wstart != self._wend or self.conn.has_output:
                    self._push_quietly()
                operation = self._transport.operation("read")
                while self._plain == self._plain_end:
                    if self.eof:
                        return self._read_at_eof(buffer)
                    self._receive(n, operation)
                    if self.conn.has_output:
                        self._push_quietly()  # an alert the records called for
                start = self._plain
                count = min(n, self._plain_end - start)
                self._plain = start + count
                if buffer is None:
                    return bytes(memoryview(self._rbuf)[start : start + count])
                target[:count] = memoryview(self._rbuf)[start : start + count]
                return count
            finally:
                self._arm_fast_paths()

    def _arm_fast_paths(self) -> None:
        """Lets read() take application data records straight from the socket while the
        connection says nothing else can come, and write() send them while it says application
        data may go and nothing waits to go first; otherwise they run in _read and _write."""
        if self._transport.is_bio:
            return
        # Deciding and arming at once: a reader and a writer arming side by side could
        # otherwise leave the decision made before the other's change of state.
        with self._arm_lock:
            opener = None if self._tcp_eof else self.conn.fast_opener()
            self._arm(self._transport.sock_ref, opener, self.conn.fast_sealer())

    def _open_failed(self, error: _core.RecordError) -> None:
        """read()'s hot path could not open a record: the connection fails as in _read."""
        with self._read_lock:
            try:
                self.conn.record_failed(error)
            except (TLSAlert, PeerAlert) as e:
                self._raise_failure(e)
            finally:
                self._arm_fast_paths()

    def _read_at_eof(self, buffer):
        return 0 if buffer is not None else b""

    # Writing.

    def _write(self, data) -> int:
        """write() (in the base) where its hot path does not serve: seals and sends all of
        `data`; returns its length."""
        if not self._started or not self.conn.handshake_complete:
            self.do_handshake()
        with self._write_lock, memoryview(data) as view, view.cast("B") as flat:
            self._check_writable()
            total = len(flat)
            if self._written > total:
                self._written = 0  # not a retry of the write that was interrupted
            operation = self._transport.operation("write")
            self._take_output()
            self._send_output(operation)
            while self._written < total:
                with flat[self._written : self._written + WRITE_PIECE] as piece:
                    self._reserve_output(self._wend + self.conn.sealed_len(len(piece)))
                    self._wend = self.conn.seal_application_data(piece, self._wbuf, self._wend)
                    self._written += len(piece)
                self._send_output(operation)
            self._written = 0
            self._arm_fast_paths()
            return total

    def _check_writable(self) -> None:
        self.conn.check_writable()

    def _take_output(self) -> None:
        """Moves what the connection has to send behind what waits. Write lock held."""
        if not self.conn.has_output:
            return
        data = self.conn.data_to_send()
        if self._wstart == self._wend:
            self._wstart = self._wend = 0
        end = self._wend + len(data)
        self._reserve_output(end)
        self._wbuf[self._wend : end] = data
        self._wend = end

    def _reserve_output(self, size: int) -> None:
        if len(self._wbuf) < size:
            grown = bytearray(size)
            grown[: self._wend] = self._wbuf[: self._wend]
            self._wbuf = grown

    def _send_output(self, operation: Operation) -> None:
        """Sends what waits; on a non-blocking transport raises "want write" with the rest
        kept for the next call. Write lock held."""
        while self._wstart < self._wend:
            with memoryview(self._wbuf)[self._wstart : self._wend] as waiting:
                sent = self._transport.send(waiting, operation)
            if not sent:
                raise sslerrors.want_write()
            self._wstart += sent
        self._wstart = self._wend = 0

    def _flush(self, operation: Operation) -> None:
        with self._write_lock:
            self._take_output()
            self._send_output(operation)

    def _push_quietly(self) -> None:
        """Sends what the connection queued (an alert, an answer) when no writer is busy;
        a writer sends it before its own records anyway."""
        if self.conn is None or (self._wstart == self._wend and not self.conn.has_output):
            return
        if not self._write_lock.acquire(blocking=False):
            self._arm_fast_paths()  # the next write takes the slow path, which sends it first
            return
        try:
            self._take_output()
            self._send_output(self._transport.operation("write"))
        except (OSError, ValueError):
            pass
        finally:
            self._write_lock.release()

    # Closing.

    def shutdown(self) -> None:
        """Sends close_notify and waits for the peer's; application data before it is dropped.
        Nothing after the peer's close_notify is taken from the transport."""
        if self.conn is None or self.conn.failed is not None:
            return
        with self._read_lock:
            try:
                with self._write_lock:
                    self.conn.close()
                    self._arm_fast_paths()  # no application data after our close_notify
                    self._take_output()
                    self._send_output(self._transport.operation("write"))
                operation = self._transport.operation("read")
                while not self.eof:
                    try:
                        self._receive(MAX_READ, operation)
                    except ssl.SSLEOFError:
                        break  # the peer closed TCP without its close_notify: we are done anyway
                    self._plain = self._plain_end = 0
            finally:
                self._arm_fast_paths()


class SocketEngine(Engine):
    """The plain blocking interface (command line, tests, benchmarks) on the one engine;
    failures are TLSError. Like openssl s_client and s_server, recv answers the peer's
    close_notify with ours."""

    def __init__(self, sock: socket.socket, conn: Connection):
        super().__init__(SocketTransport(sock), conn)
        self.sock = sock
        self.transport = self._transport

    def _protocol_error(self, exc: Exception) -> Exception:
        if isinstance(exc, TLSAlert):
            return TLSError(str(exc), exc.description.name, sent=exc.send)
        return TLSError(str(exc), exc.name, sent=False)

    def _eof_error(self) -> Exception:
        return TLSError("the peer closed the connection during the handshake", "unexpected_eof", sent=False)

    def _tolerate_eof(self) -> bool:
        return True

    def sendall(self, data) -> None:
        self.write(data)

    def recv(self, bufsize: int = MAX_READ) -> bytes:
        """Up to bufsize bytes of application data; b"" after close_notify or TCP EOF."""
        data = self.read(bufsize)
        if not data and self.conn.peer_closed and not self.conn.close_sent:
            self.conn.close()
            self._arm_fast_paths()
            self._push_quietly()
        return data

    def close(self, wait_for_peer: bool = False, timeout: Optional[float] = 2.0) -> None:
        """Sends close_notify; optionally waits for the peer's."""
        self.conn.close()
        self._arm_fast_paths()
        try:
            self._flush(self._transport.operation("write"))
        except OSError:
            pass
        if wait_for_peer and not self.eof:
            self.sock.settimeout(timeout)
            try:
                while not self.eof:
                    self.read(MAX_READ)
            except (OSError, TLSError):
                pass
