//! RSA key exchange: decrypting the EncryptedPreMasterSecret (RFC 5246 section 7.4.7.1).
//!
//! Bleichenbacher and Marvin attacks turn any observable difference between good and bad PKCS#1
//! v1.5 padding into a decryption oracle. So the block is decrypted raw (blinded, constant-time
//! modular exponentiation in aws-lc), checked with masks only, and a bad block is replaced by a
//! substitute premaster derived from the ciphertext under a key derived from the private key
//! (implicit rejection): the same bad ciphertext always gives the same substitute, and the
//! handshake then fails at Finished exactly as it would with a wrong key.

use crate::ct;
use crate::ffi::RsaPrivateKey;
use aws_lc_rs::hmac;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::{Arc, Mutex};

pub const PREMASTER_LEN: usize = 48;

struct DecryptionKey {
    rsa: RsaPrivateKey,
    /// The key-derivation key for substitutes, HMAC-SHA256 keyed by a hash of the private key.
    kdk: hmac::Key,
}

/// Parsed keys, most recent last: parsing and the first Montgomery set-up cost more than a
/// decryption, and a server uses one or a few keys.
static KEYS: Mutex<Vec<(Vec<u8>, Arc<DecryptionKey>)>> = Mutex::new(Vec::new());
const KEY_CACHE_SIZE: usize = 8;

fn decryption_key(der: &[u8]) -> Option<Arc<DecryptionKey>> {
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = keys.iter().position(|(d, _)| d == der) {
        let entry = keys.remove(i);
        let key = entry.1.clone();
        keys.push(entry);
        return Some(key);
    }
    let rsa = RsaPrivateKey::from_der(der)?;
    let seed = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"ferrotls implicit rejection"), der);
    let key = Arc::new(DecryptionKey { rsa, kdk: hmac::Key::new(hmac::HMAC_SHA256, seed.as_ref()) });
    if keys.len() == KEY_CACHE_SIZE {
        keys.remove(0);
    }
    keys.push((der.to_vec(), key.clone()));
    Some(key)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    NotRsa,
    WrongLength,
}

/// The 48-byte premaster for `ciphertext`, or its substitute when the block is malformed.
pub fn premaster(private_key_der: &[u8], ciphertext: &[u8], client_version: u16) -> Result<[u8; PREMASTER_LEN], Error> {
    let key = decryption_key(private_key_der).ok_or(Error::NotRsa)?;
    let k = key.rsa.size();
    if k < PREMASTER_LEN + 11 {
        return Err(Error::NotRsa); // too small to carry a PKCS#1 v1.5 premaster block
    }
    if ciphertext.len() != k {
        return Err(Error::WrongLength);
    }

    // The substitute: client_version, then 46 bytes from HMAC(kdk, ciphertext), as RFC 5246
    // 7.4.7.1 builds its random one.
    let mut substitute = [0u8; PREMASTER_LEN];
    let t1 = hmac::sign(&key.kdk, &[ciphertext, b"\x01"].concat());
    let t2 = hmac::sign(&key.kdk, &[ciphertext, b"\x02"].concat());
    substitute[..2].copy_from_slice(&client_version.to_be_bytes());
    substitute[2..34].copy_from_slice(t1.as_ref());
    substitute[34..].copy_from_slice(&t2.as_ref()[..14]);

    // A ciphertext not below the modulus is public information: it gets the substitute too.
    let Some(em) = key.rsa.decrypt_raw(ciphertext) else {
        return Ok(substitute);
    };

    // EM = 0x00 || 0x02 || PS (at least 8 nonzero bytes) || 0x00 || M, with M 48 bytes long
    // and starting with client_version: every position is fixed, so check them all with masks.
    let separator = k - PREMASTER_LEN - 1;
    let mut good = ct::is_zero(em[0] as usize) & ct::eq(em[1] as usize, 2);
    for &b in &em[2..separator] {
        good &= !ct::is_zero(b as usize);
    }
    good &= ct::is_zero(em[separator] as usize);
    good &= ct::eq(em[separator + 1] as usize, (client_version >> 8) as usize);
    good &= ct::eq(em[separator + 2] as usize, (client_version & 0xff) as usize);

    let mut out = [0u8; PREMASTER_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = ct::select_u8(good, em[separator + 1 + i], substitute[i]);
    }
    Ok(out)
}

/// The premaster secret of an RSA ClientKeyExchange: always 48 bytes, never an error for bad
/// padding; `ValueError` only for a ciphertext of the wrong length or a key that is not RSA.
#[pyfunction]
pub fn rsa_premaster<'py>(py: Python<'py>, private_key_der: &[u8], ciphertext: &[u8], client_version: u16) -> PyResult<Bound<'py, PyBytes>> {
    let secret = py.detach(|| premaster(private_key_der, ciphertext, client_version)).map_err(|e| {
        PyValueError::new_err(match e {
            Error::NotRsa => "the private key is not a usable RSA key",
            Error::WrongLength => "the ciphertext length is not the modulus length",
        })
    })?;
    Ok(PyBytes::new(py, &secret))
}
