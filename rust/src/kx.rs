//! Ephemeral ECDHE key exchange over X25519, P-256 and P-384 (RFC 8422, RFC 8446 4.2.8.2).
//! Peer public keys are validated by aws-lc (on the curve; for X25519 a zero shared secret is
//! refused).

use aws_lc_rs::agreement;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

pub struct EphemeralKey {
    private: agreement::PrivateKey,
    algorithm: &'static agreement::Algorithm,
    public: Vec<u8>,
}

#[derive(Debug)]
pub enum Error {
    UnknownGroup,
    BadPeerKey,
}

fn algorithm(group: &str) -> Option<&'static agreement::Algorithm> {
    match group {
        "x25519" => Some(&agreement::X25519),
        "secp256r1" => Some(&agreement::ECDH_P256),
        "secp384r1" => Some(&agreement::ECDH_P384),
        _ => None,
    }
}

impl EphemeralKey {
    /// A fresh key pair in `group` ("x25519", "secp256r1", "secp384r1").
    pub fn generate(group: &str) -> Result<Self, Error> {
        let algorithm = algorithm(group).ok_or(Error::UnknownGroup)?;
        let private = agreement::PrivateKey::generate(algorithm).map_err(|_| Error::UnknownGroup)?;
        // X25519: 32 bytes; NIST curves: the uncompressed point (RFC 8446 4.2.8.2).
        let public = private.compute_public_key().map_err(|_| Error::UnknownGroup)?.as_ref().to_vec();
        Ok(EphemeralKey { private, algorithm, public })
    }

    pub fn public_bytes(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret with `peer_public` (the x-coordinate for NIST curves).
    pub fn exchange(&self, peer_public: &[u8]) -> Result<Vec<u8>, Error> {
        // NIST curves: only the uncompressed form, 0x04 || x || y (RFC 8446 4.2.8.2, RFC 8422
        // 5.1.2); aws-lc would also take compressed and hybrid points.
        if self.algorithm != &agreement::X25519 && (peer_public.len() != self.public.len() || peer_public.first() != Some(&4)) {
            return Err(Error::BadPeerKey);
        }
        let peer = agreement::UnparsedPublicKey::new(self.algorithm, peer_public);
        agreement::agree(&self.private, peer, Error::BadPeerKey, |secret| Ok(secret.to_vec()))
    }
}

/// An ephemeral ECDHE key pair ("x25519", "secp256r1" or "secp384r1"), used for one exchange.
#[pyclass(name = "EphemeralKey", module = "ferrotls._core", frozen)]
pub struct PyEphemeralKey(EphemeralKey);

#[pymethods]
impl PyEphemeralKey {
    #[new]
    fn new(group: &str) -> PyResult<Self> {
        EphemeralKey::generate(group)
            .map(PyEphemeralKey)
            .map_err(|_| PyValueError::new_err(format!("unknown group {group:?}")))
    }

    /// The public key as sent in a key share: 32 bytes for X25519, an uncompressed point otherwise.
    #[getter]
    fn public_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.public_bytes())
    }

    /// The shared secret; `ValueError` if the peer's key is invalid.
    fn exchange<'py>(&self, py: Python<'py>, peer_public: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let secret = self.0.exchange(peer_public).map_err(|_| PyValueError::new_err("invalid peer public key"))?;
        Ok(PyBytes::new(py, &secret))
    }
}
