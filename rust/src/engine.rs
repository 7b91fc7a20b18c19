//! The base of the engine (python/ferrotls/engine.py): the positions in its buffers, and the
//! engine's hot path. Once only application data can come (the connection says so by handing
//! over its opener), `read` takes records straight from the socket and opens them in place
//! with the GIL released, without a Python frame: an 8 KiB read costs about what the stdlib's
//! does. Anything else (a record of another type, a socket that is not ready, the end of the
//! stream, a read larger than a record with nothing waiting, output waiting to be sent) goes to
//! the Python engine's `_read`, which finds the same state and does what the stdlib would.

use crate::buffer::Borrowed;
use crate::record::{RecordCipher, RecordOpener, APPLICATION_DATA, HEADER_LEN, MAX_FRAGMENT, RECORD_VERSION};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyTuple};

/// Where the hot path takes records from: the socket (a weak reference to it) and the opener.
struct Armed {
    socket: Py<PyAny>,
    opener: Py<RecordOpener>,
}

/// The engine's state that the hot path shares with the Python engine: records arrive and are
/// opened in `_rbuf`; the plaintext not yet read is `_rbuf[_plain:_plain_end]`; the start of a
/// record still arriving is `_rbuf[_ahead:_ahead + _partial]`; sealed records not yet sent are
/// the Python engine's `_wbuf[_wstart:_wend]`.
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
    #[pyo3(get, set, name = "_wstart")]
    wstart: usize,
    #[pyo3(get, set, name = "_wend")]
    wend: usize,
    /// Serialises readers (threading.Lock): the hot path only tries it.
    #[pyo3(get, name = "_read_lock")]
    read_lock: Py<PyAny>,
    armed: Option<Armed>,
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
        Ok(EngineBase {
            rbuf: PyByteArray::new(py, &[]).unbind(),
            plain: 0,
            plain_end: 0,
            partial: 0,
            ahead: 0,
            wstart: 0,
            wend: 0,
            read_lock: py.import("threading")?.getattr("Lock")?.call0()?.unbind(),
            armed: None,
        })
    }

    /// Lets `read` take application data records itself from `socket_ref()` (a weak reference
    /// to the socket) with `opener`; `_arm(None, None)` stops it. The caller holds the read lock.
    #[pyo3(signature = (socket_ref, opener))]
    fn _arm(&mut self, socket_ref: Option<Py<PyAny>>, opener: Option<Py<RecordOpener>>) {
        self.armed = socket_ref.zip(opener).map(|(socket, opener)| Armed { socket, opener });
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
        match &this.armed {
            Some(armed) if this.wstart == this.wend => (armed.socket.clone_ref(py), armed.opener.clone_ref(py), this.read_lock.clone_ref(py)),
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
            return Ok(Ok(None)); // a large read takes many records at once, in the Python engine
        }
        match receive_record(slf, socket, opener)? {
            Received::Plaintext => continue,
            Received::Elsewhere => return Ok(Ok(None)),
            Received::Failed(error) => return Ok(Err(error)),
        }
    }
}

/// Reads the rest of the record at the front of `_rbuf` (and the next record's header with
/// it, as the Python engine does) and opens it, with the GIL released.
fn receive_record(slf: &Bound<'_, EngineBase>, socket: &Py<PyAny>, opener: &Py<RecordOpener>) -> PyResult<Received> {
    let py = slf.py();
    let sock = socket.bind(py).call0()?;
    if sock.is_none() {
        return Ok(Received::Elsewhere);
    }
    let fd: i32 = sock.call_method0(intern!(py, "fileno"))?.extract()?;
    if fd < 0 {
        return Ok(Received::Elsewhere);
    }
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
    let outcome = py.detach(|| take_record(fd, buf, &mut partial, cipher, scratch));
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
        Taken::Failed(error) => {
            this.partial = 0;
            Received::Failed(error)
        }
    })
}

enum Taken {
    /// The record `buf[..size]` is open; its plaintext is `buf[app]`.
    Open { app: std::ops::Range<usize>, size: usize },
    /// Not an application data record, or the socket has nothing (EOF, would block, a signal,
    /// an error): the Python engine's socket call tells which.
    NotHere,
    Failed(crate::record::Error),
}

/// Completes the record at the front of `buf`, of which `partial` bytes are there, with one
/// recv a record (its end and the next header), and opens it if it is application data.
fn take_record(fd: i32, buf: &mut [u8], partial: &mut usize, cipher: &mut RecordCipher, scratch: &mut Vec<u8>) -> Taken {
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
        match recv(fd, &mut buf[*partial..end]) {
            Some(got) => *partial += got,
            None => return Taken::NotHere,
        }
    }
}

/// What recv put into `room`, or None for EOF, "would block", a signal or an error.
#[cfg(unix)]
fn recv(fd: i32, room: &mut [u8]) -> Option<usize> {
    // SAFETY: `room` is writable memory of the given length; recv writes at most that.
    let got = unsafe { libc::recv(fd, room.as_mut_ptr().cast(), room.len(), 0) };
    (got > 0).then_some(got as usize)
}

/// Elsewhere the Python engine reads the socket.
#[cfg(not(unix))]
fn recv(_fd: i32, _room: &mut [u8]) -> Option<usize> {
    None
}
