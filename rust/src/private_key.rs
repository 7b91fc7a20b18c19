//! `PrivateKey`: a credential's private key, parsed and checked once when the credential is
//! loaded, held by it, and used for every signature and RSA decryption of its handshakes with
//! the GIL released. Nothing is cached elsewhere; aws-lc overwrites the key material when the
//! object goes.

use crate::ffi::{self, KeyKind};
use crate::{rsa_kx, sig};
use aws_lc_rs::hmac;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(frozen, module = "ferrotls._core")]
pub struct PrivateKey {
    key: ffi::PrivateKey,
    /// RSA only: the key of implicit rejection's substitutes (see rsa_kx).
    rejection: Option<hmac::Key>,
}

#[pymethods]
impl PrivateKey {
    /// Parses PKCS#8 PrivateKeyInfo DER (RSA, ECDSA P-256/P-384/P-521, Ed25519) and checks its
    /// consistency; ValueError if it is malformed, inconsistent or of another kind.
    #[new]
    fn new(py: Python<'_>, pkcs8: &[u8]) -> PyResult<Self> {
        let key = py
            .detach(|| ffi::PrivateKey::from_pkcs8(pkcs8))
            .ok_or_else(|| PyValueError::new_err("not a valid RSA, ECDSA (P-256, P-384, P-521) or Ed25519 PKCS#8 private key"))?;
        let rejection = (key.kind() == KeyKind::Rsa).then(|| rsa_kx::rejection_key(pkcs8));
        Ok(PrivateKey { key, rejection })
    }

    /// "rsa", "ec" or "ed25519".
    #[getter]
    fn kind(&self) -> &'static str {
        match self.key.kind() {
            KeyKind::Rsa => "rsa",
            KeyKind::Ec(_) => "ec",
            KeyKind::Ed25519 => "ed25519",
        }
    }

    /// The curve of an ECDSA key ("secp256r1", "secp384r1", "secp521r1"), else None.
    #[getter]
    fn curve(&self) -> Option<&'static str> {
        match self.key.kind() {
            KeyKind::Ec(aws_lc_sys::NID_X9_62_prime256v1) => Some("secp256r1"),
            KeyKind::Ec(aws_lc_sys::NID_secp384r1) => Some("secp384r1"),
            KeyKind::Ec(_) => Some("secp521r1"),
            _ => None,
        }
    }

    #[getter]
    fn bits(&self) -> usize {
        self.key.bits()
    }

    /// Signs `message` under a TLS SignatureScheme name; ValueError for an unknown scheme or
    /// one this key cannot sign under.
    fn sign<'py>(&self, py: Python<'py>, scheme: &str, message: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let signature = py.detach(|| sig::sign(scheme, &self.key, message)).map_err(sig::to_py_err)?;
        Ok(PyBytes::new(py, &signature))
    }

    /// The premaster secret of an RSA ClientKeyExchange (RFC 5246 7.4.7.1): always 48 bytes,
    /// never an error for a malformed ciphertext of any length (implicit rejection);
    /// ValueError only for a key that is not RSA.
    fn rsa_premaster<'py>(&self, py: Python<'py>, ciphertext: &[u8], client_version: u16) -> PyResult<Bound<'py, PyBytes>> {
        let not_rsa = || PyValueError::new_err("the private key is not a usable RSA key");
        let kdk = self.rejection.as_ref().ok_or_else(not_rsa)?;
        let secret = py.detach(|| rsa_kx::premaster(&self.key, kdk, ciphertext, client_version)).map_err(|_| not_rsa())?;
        Ok(PyBytes::new(py, &secret))
    }
}
