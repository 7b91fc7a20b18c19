//! The base of the engine (python/ferrotls/engine.py): its buffers and locks, and its hot
//! path. While only application data can come (the connection says so by handing over its
//! opener), `read` takes records straight from the socket and opens them in place; while
//! application data may be written (it hands over its sealer), `write` seals a write of up to
//! WRITE_PIECE bytes into the write buffer and sends it. Both run with the GIL released and
//! without a Python frame, so a call costs about what the stdlib's does. Anything else (a
//! record of another type, a socket that is not ready or would block, the end of the stream,
//! a large read while records arrive in bulk, output waiting, a signal) goes to the Python
//! engine's `_read` or `_write`, which finds the same state and does what the stdlib would.

use crate::buffer::Borrowed;
use crate::record::{RecordCipher, RecordOpener, RecordSealer, APPLICATION_DATA, HEADER_LEN, MAX_FRAGMENT, RECORD_VERSION};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyTuple};
use std::time::{Duration, Instant};

/// The most plaintext sealed and sent at a time: bounds the write buffer.
pub const WRITE_PIECE: usize = 1 << 18;

/// Where a hot path takes records from or sends them to: the socket (a weak reference to it),
/// and the opener or the sealer.
struct Armed<T: pyo3::PyClass> {
    socket: Py<PyAny>,
    protection: Py<T>,
}

/// The engine's state that the hot path shares with the Python engine: records arrive and are
/// opened in `_rbuf`; the plaintext not yet read is `_rbuf[_plain:_plain_end]`; the start of a
/// record still arriving is `_rbuf[_ahead:_ahead + _partial]`; `_single_reads` large reads are
/// still to take a record each; sealed records not yet sent are `_wbuf[_wstart:_wend]`;
/// `_written` bytes of the write in progress are sealed (a retry resumes there).
#[pyclass(subclass, module = "ferrotls._core")]
pub struct EngineBase {
    #[pyo3(get, set, name = "_rbuf")]
    rbuf: Py<PyByteArray>,
    #[pyo3(get, set, name = "_plain")]
    plain: usize,
    #[pyo3(get, set, name = "_plain_end")]
    plain_end: usize,
    #[pyo3(get, set, name = "_partial")]
    partial: usize,
    #[pyo3(get, set, name = "_ahead")]
    ahead: usize,
    #[pyo3(get, set, name = "_single_reads")]
    single_reads: usize,
    #[pyo3(get, set, name = "_wbuf")]
    wbuf: Py<PyByteArray>,
    #[pyo3(get, set, name = "_wstart")]
    wstart: usize,
    #[pyo3(get, set, name = "_wend")]
    wend: usize,
    #[pyo3(get, set, name = "_written")]
    written: usize,
    /// Serialise readers and writers (threading.Lock each): the hot path only tries them.
    #[pyo3(get, name = "_read_lock")]
    read_lock: Py<PyAny>,
    #[pyo3(get, name = "_write_lock")]
    write_lock: Py<PyAny>,
    reader: Option<Armed<RecordOpener>>,
    writer: Option<Armed<RecordSealer>>,
}

/// What taking a record from the socket came to.
enum Received {
    /// Application data is open at `_rbuf[_plain:_plain_end]` (possibly empty).
    Plaintext,
    /// The Python engine must go on from here.
    Elsewhere,
    /// The record could not be opened: the connection fails.
    Failed(crate::record::Error),
}

#[pymethods]
impl EngineBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(py: Python<'_>, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let lock = py.import("threading")?.getattr("Lock")?;
        Ok(EngineBase {
            rbuf: PyByteArray::new(py, &[]).unbind(),
            plain: 0,
            plain_end: 0,
            partial: 0,
            ahead: 0,
            single_reads: 0,
            wbuf: PyByteArray::new(py, &[]).unbind(),
            wstart: 0,
            wend: 0,
            written: 0,
            read_lock: lock.call0()?.unbind(),
            write_lock: lock.call0()?.unbind(),
            reader: None,
            writer: None,
        })
    }

    /// Lets `read` take application data records itself from `socket_ref()` (a weak reference
    /// to the socket) with `opener`, and `write` send them with `sealer`; None stops either.
    #[pyo3(signature = (socket_ref, opener, sealer))]
    fn _arm(&mut self, py: Python<'_>, socket_ref: Option<Py<PyAny>>, opener: Option<Py<RecordOpener>>, sealer: Option<Py<RecordSealer>>) {
        let socket = || socket_ref.as_ref().map(|socket| socket.clone_ref(py));
        self.reader = socket().zip(opener).map(|(socket, protection)| Armed { socket, protection });
        self.writer = socket().zip(sealer).map(|(socket, protection)| Armed { socket, protection });
    }

    /// Seals and sends all of `data`, returning its length (the Python engine's `_write` when
    /// the hot path cannot).
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if let Some(result) = fast_write(slf, data)? {
            return Ok(result);
        }
        Ok(slf.call_method1(intern!(slf.py(), "_write"), (data,))?.unbind())
    }

    /// Up to n bytes of application data (into `buffer` if given: returns the count); the
    /// Python engine's `_read` when the hot path cannot serve it.
    #[pyo3(signature = (n = 1024, buffer = None))]
    fn read(slf: &Bound<'_, Self>, n: isize, buffer: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        if let Some(result) = fast_read(slf, n, buffer)? {
            return Ok(result);
        }
        Ok(slf.call_method1(intern!(slf.py(), "_read"), (n, buffer))?.unbind())
    }
}

/// `read` without Python code, or None where the Python engine must take over.
fn fast_read(slf: &Bound<'_, EngineBase>, n: isize, buffer: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Py<PyAny>>> {
    let py = slf.py();
    let (socket, opener, lock) = {
        let this = slf.borrow();
        match &this.reader {
            Some(armed) if this.wstart == this.wend => (armed.socket.clone_ref(py), armed.protection.clone_ref(py), this.read_lock.clone_ref(py)),
            _ => return Ok(None),
        }
    };
    let mut target = match buffer.map(Borrowed::writable) {
        Some(Ok(target)) => Some(target),
        Some(Err(_)) => return Ok(None), // the Python engine says what is wrong with it
        None => None,
    };
    let n = match &target {
        Some(target) if n > 0 => (n as usize).min(target.as_slice().len()),
        Some(target) => target.as_slice().len(),
        None => n.max(0) as usize,
    };
    if n == 0 {
        return Ok(None);
    }
    let lock = lock.bind(py);
    if !lock.call_method1(intern!(py, "acquire"), (false,))?.is_truthy()? {
        return Ok(None); // another reader: wait for it in the Python engine
    }
    let result = locked_read(slf, &socket, &opener, n, target.as_mut());
    lock.call_method0(intern!(py, "release"))?;
    match result? {
        Ok(done) => Ok(done),
        Err(error) => {
            // The record is spent: the Python engine fails the connection and raises.
            slf.call_method1(intern!(py, "_open_failed"), (PyErr::from(error),))?;
            Ok(None)
        }
    }
}

/// The read with the lock held: the plaintext waiting, else the next application data record.
fn locked_read(
    slf: &Bound<'_, EngineBase>,
    socket: &Py<PyAny>,
    opener: &Py<RecordOpener>,
    n: usize,
    mut target: Option<&mut Borrowed>,
) -> PyResult<Result<Option<Py<PyAny>>, crate::record::Error>> {
    let py = slf.py();
    // Made at the first record: the deadline bounds the whole read, however many records.
    let mut sock: Option<Socket> = None;
    loop {
        {
            let mut this = slf.borrow_mut();
            if this.plain < this.plain_end {
                let start = this.plain;
                let count = n.min(this.plain_end - start);
                this.plain += count;
                // SAFETY: the read lock is held and no Python code runs during the copy, so
                // nothing resizes or writes the bytearray meanwhile.
                let plaintext = unsafe { &this.rbuf.bind(py).as_bytes()[start..start + count] };
                return Ok(Ok(Some(match target.as_deref_mut() {
                    Some(target) => {
                        target.as_mut_slice()[..count].copy_from_slice(plaintext);
                        count.into_pyobject(py)?.into_any().unbind()
                    }
                    None => PyBytes::new(py, plaintext).into_any().unbind(),
                })));
            }
        }
        if n > MAX_FRAGMENT {
            // While records arrive in bulk a large read takes many at once, in the Python
            // engine; while they trickle in, it takes one (see engine.BATCH_WORTH).
            let mut this = slf.borrow_mut();
            if this.single_reads == 0 {
                return Ok(Ok(None));
            }
            this.single_reads -= 1;
        }
        if sock.is_none() {
            sock = Socket::of(socket.bind(py))?;
            if sock.is_none() {
                return Ok(Ok(None));
            }
        }
        match receive_record(slf, sock.as_ref().expect("made above"), opener)? {
            Received::Plaintext => continue,
            Received::Elsewhere => return Ok(Ok(None)),
            Received::Failed(error) => return Ok(Err(error)),
        }
    }
}

/// Reads the rest of the record at the front of `_rbuf` (and the next record's header with
/// it, as the Python engine does) and opens it, with the GIL released.
fn receive_record(slf: &Bound<'_, EngineBase>, socket: &Socket, opener: &Py<RecordOpener>) -> PyResult<Received> {
    let py = slf.py();
    let (rbuf, mut partial, ahead) = {
        let this = slf.borrow();
        (this.rbuf.clone_ref(py), this.partial, this.ahead)
    };
    let mut buffer = Borrowed::writable(rbuf.bind(py))?;
    let buf = buffer.as_mut_slice();
    if ahead > 0 {
        buf.copy_within(ahead..ahead + partial, 0);
    }
    let mut opener = opener.bind(py).borrow_mut();
    let (cipher, scratch) = opener.parts();
    let outcome = py.detach(|| take_record(socket, buf, &mut partial, cipher, scratch));
    let mut this = slf.borrow_mut();
    this.ahead = 0;
    this.partial = partial;
    Ok(match outcome {
        Taken::Open { app, size } => {
            (this.plain, this.plain_end) = (app.start, app.end);
            if partial > size {
                (this.partial, this.ahead) = (partial - size, size);
            } else {
                this.partial = 0;
            }
            Received::Plaintext
        }
        Taken::NotHere => Received::Elsewhere,
        Taken::TimedOut => return Err(timeout_error(py, "read")?),
        Taken::Failed(error) => {
            this.partial = 0;
            Received::Failed(error)
        }
    })
}

/// The socket of an operation: its descriptor, and when it has a timeout the time by which
/// the whole operation must be done (as in the stdlib, which bounds each SSL_read/SSL_write).
struct Socket {
    fd: i32,
    /// None: a blocking socket. Some(None): a non-blocking one, which never waits.
    deadline: Option<Option<Instant>>,
}

/// What a system call on the socket came to.
enum Io {
    Done(usize),
    TimedOut,
    /// EOF, "would block" on a non-blocking socket, a signal or an error: the Python engine's
    /// own call tells which.
    Elsewhere,
}

impl Socket {
    /// The socket behind `socket_ref()`, or None if it is gone, closed or detached.
    fn of(socket_ref: &Bound<'_, PyAny>) -> PyResult<Option<Socket>> {
        let py = socket_ref.py();
        let socket = socket_ref.call0()?;
        if socket.is_none() {
            return Ok(None);
        }
        let fd: i32 = socket.call_method0(intern!(py, "fileno"))?.extract()?;
        let timeout: Option<f64> = socket.call_method0(intern!(py, "gettimeout"))?.extract()?;
        let deadline = timeout.map(|t| (t > 0.0).then(|| Instant::now() + Duration::from_secs_f64(t)));
        Ok((fd >= 0).then_some(Socket { fd, deadline }))
    }

    fn recv(&self, room: &mut [u8]) -> Io {
        self.call(sys::POLLIN, || sys::recv(self.fd, room))
    }

    fn send(&self, data: &[u8]) -> Io {
        self.call(sys::POLLOUT, || sys::send(self.fd, data))
    }

    /// `io` until it does something; on a socket with a timeout, "would block" waits for
    /// `events` until the deadline.
    fn call(&self, events: i16, mut io: impl FnMut() -> sys::Outcome) -> Io {
        loop {
            match io() {
                sys::Outcome::Done(count) => return Io::Done(count),
                sys::Outcome::WouldBlock => {
                    let Some(Some(deadline)) = self.deadline else {
                        return Io::Elsewhere;
                    };
                    let left = deadline.saturating_duration_since(Instant::now());
                    match sys::wait(self.fd, events, left) {
                        sys::Waited::Ready => continue,
                        sys::Waited::TimedOut => return Io::TimedOut,
                        sys::Waited::Elsewhere => return Io::Elsewhere,
                    }
                }
                sys::Outcome::Elsewhere => return Io::Elsewhere,
            }
        }
    }
}

/// socket.timeout("The <operation> operation timed out"), as the stdlib raises it.
fn timeout_error(py: Python<'_>, operation: &str) -> PyResult<PyErr> {
    let error = py.import("socket")?.getattr("timeout")?.call1((format!("The {operation} operation timed out"),))?;
    Ok(PyErr::from_value(error))
}

enum Taken {
    /// The record `buf[..size]` is open; its plaintext is `buf[app]`.
    Open { app: std::ops::Range<usize>, size: usize },
    /// Not an application data record, or the socket has nothing (EOF, would block, a signal,
    /// an error): the Python engine's socket call tells which.
    NotHere,
    TimedOut,
    Failed(crate::record::Error),
}

/// Completes the record at the front of `buf`, of which `partial` bytes are there, with one
/// recv a record (its end and the next header), and opens it if it is application data.
fn take_record(socket: &Socket, buf: &mut [u8], partial: &mut usize, cipher: &mut RecordCipher, scratch: &mut Vec<u8>) -> Taken {
    if cipher.hides_content_type() {
        // This path tells application data by the record header, which TLS 1.3 hides: a
        // record may be a ticket or a KeyUpdate that the connection must see.
        return Taken::NotHere;
    }
    loop {
        let size = if *partial >= HEADER_LEN {
            let length = u16::from_be_bytes([buf[3], buf[4]]) as usize;
            let version = u16::from_be_bytes([buf[1], buf[2]]);
            if buf[0] != APPLICATION_DATA || version != RECORD_VERSION || length > cipher.max_record_length() {
                return Taken::NotHere; // the Python engine processes or refuses it
            }
            HEADER_LEN + length
        } else {
            HEADER_LEN
        };
        if *partial >= size {
            return match cipher.open_in_place(&mut buf[..size], usize::MAX, scratch) {
                Ok(opened) => Taken::Open { app: opened.app_start..opened.app_end, size },
                Err(error) => Taken::Failed(error),
            };
        }
        let end = if size > HEADER_LEN { size + HEADER_LEN } else { size };
        if end > buf.len() {
            return Taken::NotHere; // the Python engine grows the buffer
        }
        match socket.recv(&mut buf[*partial..end]) {
            Io::Done(got) => *partial += got,
            Io::TimedOut => return Taken::TimedOut,
            Io::Elsewhere => return Taken::NotHere,
        }
    }
}

/// `write` without Python code, or None where the Python engine must take over (having been
/// left what is sealed and not yet sent).
fn fast_write(slf: &Bound<'_, EngineBase>, data: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
    let py = slf.py();
    let (socket, sealer, lock) = {
        let this = slf.borrow();
        match &this.writer {
            Some(armed) if this.wstart == this.wend && this.written == 0 => {
                (armed.socket.clone_ref(py), armed.protection.clone_ref(py), this.write_lock.clone_ref(py))
            }
            _ => return Ok(None),
        }
    };
    let Ok(input) = Borrowed::readable(data) else {
        return Ok(None); // the Python engine says what is wrong with it
    };
    let length = input.as_slice().len();
    if length == 0 || length > WRITE_PIECE {
        return Ok(None); // a large write goes in pieces, in the Python engine
    }
    let lock = lock.bind(py);
    if !lock.call_method1(intern!(py, "acquire"), (false,))?.is_truthy()? {
        return Ok(None);
    }
    let result = locked_write(slf, &socket, &sealer, &input);
    lock.call_method0(intern!(py, "release"))?;
    Ok(match result? {
        true => Some(length.into_pyobject(py)?.into_any().unbind()),
        false => None,
    })
}

/// Seals `input` into the write buffer and sends it: true if all went, false if the Python
/// engine must go on (with the records sealed and `_written` set when they were).
fn locked_write(slf: &Bound<'_, EngineBase>, socket: &Py<PyAny>, sealer: &Py<RecordSealer>, input: &Borrowed) -> PyResult<bool> {
    let py = slf.py();
    let Some(socket) = Socket::of(socket.bind(py))? else {
        return Ok(false);
    };
    let mut sealer = sealer.bind(py).borrow_mut();
    let cipher = sealer.cipher();
    let data = input.as_slice();
    let Ok(size) = cipher.sealed_len(data.len(), MAX_FRAGMENT) else {
        return Ok(false);
    };
    let wbuf = slf.borrow().wbuf.clone_ref(py);
    let mut buffer = Borrowed::writable(wbuf.bind(py))?;
    let Some(out) = buffer.as_mut_slice().get_mut(..size) else {
        return Ok(false); // the Python engine grows the buffer
    };
    let (sent, timed_out) = py.detach(|| {
        cipher.seal_into(APPLICATION_DATA, data, MAX_FRAGMENT, out);
        send_all(&socket, out)
    });
    let mut this = slf.borrow_mut();
    if sent == size {
        return Ok(true);
    }
    // The rest goes with the next call (a retry of this write resumes behind it).
    (this.wstart, this.wend, this.written) = (sent, size, data.len());
    if timed_out {
        return Err(timeout_error(py, "write")?);
    }
    Ok(false)
}

/// Sends `out` until all of it went, the socket would block (non-blocking), the deadline
/// passed, a signal came or an error: (the count sent, whether the deadline passed).
fn send_all(socket: &Socket, out: &[u8]) -> (usize, bool) {
    let mut sent = 0;
    while sent < out.len() {
        match socket.send(&out[sent..]) {
            Io::Done(count) => sent += count,
            Io::TimedOut => return (sent, true),
            Io::Elsewhere => break,
        }
    }
    (sent, false)
}

/// The system calls, on descriptors the Python socket owns.
#[cfg(unix)]
mod sys {
    use std::time::Duration;

    pub use libc::{POLLIN, POLLOUT};

    pub enum Outcome {
        Done(usize),
        WouldBlock,
        Elsewhere,
    }

    pub enum Waited {
        Ready,
        TimedOut,
        Elsewhere,
    }

    fn outcome(count: isize) -> Outcome {
        if count > 0 {
            return Outcome::Done(count as usize);
        }
        let error = std::io::Error::last_os_error().raw_os_error();
        if count < 0 && (error == Some(libc::EAGAIN) || error == Some(libc::EWOULDBLOCK)) {
            Outcome::WouldBlock
        } else {
            Outcome::Elsewhere
        }
    }

    pub fn recv(fd: i32, room: &mut [u8]) -> Outcome {
        // SAFETY: `room` is writable memory of the given length; recv writes at most that.
        outcome(unsafe { libc::recv(fd, room.as_mut_ptr().cast(), room.len(), 0) })
    }

    pub fn send(fd: i32, data: &[u8]) -> Outcome {
        // SAFETY: `data` is readable memory of the given length.
        outcome(unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), 0) })
    }

    /// Waits up to `left` for `events` on `fd`.
    pub fn wait(fd: i32, events: i16, left: Duration) -> Waited {
        let mut entry = libc::pollfd { fd, events, revents: 0 };
        // Round up, so that a wait never ends before the deadline.
        let millis = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut entry, 1, millis) } {
            0 => Waited::TimedOut,
            n if n > 0 => Waited::Ready,
            _ => Waited::Elsewhere,
        }
    }
}

/// Elsewhere the Python engine does the I/O.
#[cfg(not(unix))]
mod sys {
    use std::time::Duration;

    pub const POLLIN: i16 = 1;
    pub const POLLOUT: i16 = 4;

    #[allow(dead_code)]
    pub enum Outcome {
        Done(usize),
        WouldBlock,
        Elsewhere,
    }

    #[allow(dead_code)]
    pub enum Waited {
        Ready,
        TimedOut,
        Elsewhere,
    }

    pub fn recv(_fd: i32, _room: &mut [u8]) -> Outcome {
        Outcome::Elsewhere
    }

    pub fn send(_fd: i32, _data: &[u8]) -> Outcome {
        Outcome::Elsewhere
    }

    pub fn wait(_fd: i32, _events: i16, _left: Duration) -> Waited {
        Waited::Elsewhere
    }
}
