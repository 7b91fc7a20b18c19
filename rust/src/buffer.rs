//! Python buffers (bytes, bytearray, memoryview, array) borrowed without a copy.
//!
//! The abi3 API gained the buffer protocol only in Python 3.11, but `PyObject_GetBuffer`,
//! `PyBuffer_Release` and the `Py_buffer` layout have not changed since Python 3.3: declared
//! here, they serve every Python the wheel supports on Linux and macOS, where an extension takes
//! its symbols from the interpreter. A borrowed buffer pins its memory: a bytearray cannot be
//! resized while it is exported, so the GIL may be released while the bytes are used.

use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use std::os::raw::{c_char, c_int, c_void};

/// `Py_buffer` (Include/pybuffer.h), unchanged since Python 3.3.
#[repr(C)]
struct RawBuffer {
    buf: *mut c_void,
    obj: *mut pyo3::ffi::PyObject,
    len: isize,
    itemsize: isize,
    readonly: c_int,
    ndim: c_int,
    format: *mut c_char,
    shape: *mut isize,
    strides: *mut isize,
    suboffsets: *mut isize,
    internal: *mut c_void,
}

const PYBUF_SIMPLE: c_int = 0;
const PYBUF_WRITABLE: c_int = 1;

extern "C" {
    fn PyObject_GetBuffer(obj: *mut pyo3::ffi::PyObject, view: *mut RawBuffer, flags: c_int) -> c_int;
    fn PyBuffer_Release(view: *mut RawBuffer);
}

/// A C-contiguous buffer held until dropped (with the GIL, as `PyBuffer_Release` needs it).
pub struct Borrowed(Box<RawBuffer>);


impl Borrowed {
    fn get(obj: &Bound<'_, PyAny>, flags: c_int) -> PyResult<Self> {
        let mut raw = Box::new(RawBuffer {
            buf: std::ptr::null_mut(),
            obj: std::ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: std::ptr::null_mut(),
            shape: std::ptr::null_mut(),
            strides: std::ptr::null_mut(),
            suboffsets: std::ptr::null_mut(),
            internal: std::ptr::null_mut(),
        });
        // SAFETY: `obj` is a live object and `raw` a writable Py_buffer; with PYBUF_SIMPLE the
        // exporter gives one contiguous block of `len` bytes or fails with an exception set.
        if unsafe { PyObject_GetBuffer(obj.as_ptr(), &mut *raw, flags) } != 0 {
            return Err(PyErr::take(obj.py()).unwrap_or_else(|| PyBufferError::new_err("not a buffer")));
        }
        Ok(Borrowed(raw))
    }

    /// Any bytes-like object, read-only.
    pub fn readable(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::get(obj, PYBUF_SIMPLE)
    }

    /// A writable bytes-like object (bytearray, a writable memoryview, array).
    pub fn writable(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::get(obj, PYBUF_WRITABLE)
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.0.len == 0 {
            return &[];
        }
        // SAFETY: the exporter guarantees `len` readable bytes at `buf` while the view is held.
        unsafe { std::slice::from_raw_parts(self.0.buf as *const u8, self.0.len as usize) }
    }

    /// The bytes, writable: only for a buffer borrowed with `writable`.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        assert_eq!(self.0.readonly, 0, "a read-only buffer");
        if self.0.len == 0 {
            return &mut [];
        }
        // SAFETY: as in `as_slice`, and the exporter granted PYBUF_WRITABLE.
        unsafe { std::slice::from_raw_parts_mut(self.0.buf as *mut u8, self.0.len as usize) }
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        // SAFETY: the view was filled by a successful PyObject_GetBuffer. Release needs the
        // GIL: attach (a no-op when it is already held, as it always is here).
        Python::attach(|_| unsafe { PyBuffer_Release(&mut *self.0) });
    }
}
