//! `ferrotls._core`: the cryptography under ferrotls' TLS. This file only registers.

mod buffer;
mod cbc;
mod ct;
mod engine;
mod ffi;
mod kdf;
mod kx;
mod private_key;
mod record;
mod rsa_kx;
mod sig;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// `n` bytes from aws-lc's OS-seeded generator.
#[pyfunction]
fn random_bytes(py: Python<'_>, n: usize) -> PyResult<Bound<'_, PyBytes>> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| pyo3::exceptions::PyOSError::new_err("random generator failed"))?;
    Ok(PyBytes::new(py, &buf))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::EngineBase>()?;
    m.add_class::<record::RecordSealer>()?;
    m.add_class::<record::RecordOpener>()?;
    m.add("RecordError", m.py().get_type::<record::RecordError>())?;
    m.add("MAX_FRAGMENT", record::MAX_FRAGMENT)?;
    m.add("WRITE_PIECE", engine::WRITE_PIECE)?;
    m.add_function(wrap_pyfunction!(kdf::tls12_prf, m)?)?;
    m.add_function(wrap_pyfunction!(kdf::py_master_secret, m)?)?;
    m.add_function(wrap_pyfunction!(kdf::py_extended_master_secret, m)?)?;
    m.add_function(wrap_pyfunction!(kdf::py_key_block, m)?)?;
    m.add_function(wrap_pyfunction!(kdf::py_hkdf_extract, m)?)?;
    m.add_function(wrap_pyfunction!(kdf::py_hkdf_expand_label, m)?)?;
    m.add_function(wrap_pyfunction!(kdf::py_derive_secret, m)?)?;
    m.add_class::<private_key::PrivateKey>()?;
    m.add_class::<kx::PyEphemeralKey>()?;
    m.add_function(wrap_pyfunction!(sig::py_verify, m)?)?;
    m.add_function(wrap_pyfunction!(random_bytes, m)?)?;
    Ok(())
}
