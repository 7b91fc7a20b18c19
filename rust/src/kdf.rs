//! Key derivation: the TLS 1.2 PRF (RFC 5246 section 5), the master secret (8.1), the extended
//! master secret (RFC 7627 section 4), the key block (6.3), and the TLS 1.3 key schedule
//! (RFC 8446 section 7.1, on HKDF of RFC 5869).

use aws_lc_rs::hmac;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    pub fn from_name(name: &str) -> Option<Hash> {
        match name {
            "sha256" => Some(Hash::Sha256),
            "sha384" => Some(Hash::Sha384),
            _ => None,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha384 => hmac::HMAC_SHA384,
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// Longest output we hand out in one call: far beyond any key block, small enough to bound work.
pub const MAX_OUTPUT: usize = 1 << 16;

/// P_hash(secret, label + seed) of RFC 5246 section 5, truncated to `length` bytes.
pub fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], length: usize) -> Vec<u8> {
    let key = hmac::Key::new(hash.hmac(), secret);
    let mut out = Vec::with_capacity(length + hash.output_len());
    // A(1) = HMAC(secret, label + seed); A(i) = HMAC(secret, A(i-1)).
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    ctx.update(seed);
    let mut a = ctx.sign();
    while out.len() < length {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        ctx.update(seed);
        out.extend_from_slice(ctx.sign().as_ref());
        a = hmac::sign(&key, a.as_ref());
    }
    out.truncate(length);
    out
}

/// master_secret = PRF(pre_master_secret, "master secret", client_random + server_random)[0..47].
pub fn master_secret(hash: Hash, premaster: &[u8], client_random: &[u8], server_random: &[u8]) -> Vec<u8> {
    let seed = [client_random, server_random].concat();
    prf(hash, premaster, b"master secret", &seed, 48)
}

/// RFC 7627 section 4: PRF(pre_master_secret, "extended master secret", session_hash)[0..47].
pub fn extended_master_secret(hash: Hash, premaster: &[u8], session_hash: &[u8]) -> Vec<u8> {
    prf(hash, premaster, b"extended master secret", session_hash, 48)
}

/// key_block = PRF(master_secret, "key expansion", server_random + client_random).
pub fn key_block(hash: Hash, master: &[u8], server_random: &[u8], client_random: &[u8], length: usize) -> Vec<u8> {
    let seed = [server_random, client_random].concat();
    prf(hash, master, b"key expansion", &seed, length)
}

/// HKDF-Extract(salt, IKM) of RFC 5869 section 2.2; an empty salt means HashLen zeros.
pub fn hkdf_extract(hash: Hash, salt: &[u8], ikm: &[u8]) -> Vec<u8> {
    let zeros = [0u8; 48];
    let salt = if salt.is_empty() { &zeros[..hash.output_len()] } else { salt };
    hmac::sign(&hmac::Key::new(hash.hmac(), salt), ikm).as_ref().to_vec()
}

/// HKDF-Expand(PRK, info, L) of RFC 5869 section 2.3; `None` when L > 255 * HashLen.
pub fn hkdf_expand(hash: Hash, prk: &[u8], info: &[u8], length: usize) -> Option<Vec<u8>> {
    if length > 255 * hash.output_len() {
        return None;
    }
    let key = hmac::Key::new(hash.hmac(), prk);
    let mut out = Vec::with_capacity(length + hash.output_len());
    let mut t: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    while out.len() < length {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&t);
        ctx.update(info);
        ctx.update(&[counter]);
        t = ctx.sign().as_ref().to_vec();
        out.extend_from_slice(&t);
        counter = counter.wrapping_add(1);
    }
    out.truncate(length);
    Some(out)
}

/// HKDF-Expand-Label(Secret, Label, Context, Length) of RFC 8446 section 7.1.
pub fn hkdf_expand_label(hash: Hash, secret: &[u8], label: &[u8], context: &[u8], length: usize) -> Option<Vec<u8>> {
    let full_label_len = 6 + label.len();
    if length > u16::MAX as usize || full_label_len > 255 || context.len() > 255 {
        return None;
    }
    let mut info = Vec::with_capacity(4 + full_label_len + context.len());
    info.extend_from_slice(&(length as u16).to_be_bytes());
    info.push(full_label_len as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    hkdf_expand(hash, secret, &info, length)
}

/// Derive-Secret(Secret, Label, Messages) of RFC 8446 section 7.1, given Transcript-Hash(Messages).
pub fn derive_secret(hash: Hash, secret: &[u8], label: &[u8], transcript_hash: &[u8]) -> Option<Vec<u8>> {
    hkdf_expand_label(hash, secret, label, transcript_hash, hash.output_len())
}

fn hash_arg(name: &str) -> PyResult<Hash> {
    Hash::from_name(name).ok_or_else(|| PyValueError::new_err(format!("hash_name must be 'sha256' or 'sha384', not {name:?}")))
}

fn length_arg(length: usize) -> PyResult<usize> {
    if length > MAX_OUTPUT {
        return Err(PyValueError::new_err(format!("length must be at most {MAX_OUTPUT}")));
    }
    Ok(length)
}

fn bytes_out(py: Python<'_>, v: Option<Vec<u8>>) -> PyResult<Bound<'_, PyBytes>> {
    let v = v.ok_or_else(|| PyValueError::new_err("output length or label too long for HKDF"))?;
    Ok(PyBytes::new(py, &v))
}

/// The TLS 1.2 PRF: P_hash(secret, label + seed) truncated to `length` bytes.
#[pyfunction]
pub fn tls12_prf<'py>(py: Python<'py>, hash_name: &str, secret: &[u8], label: &[u8], seed: &[u8], length: usize) -> PyResult<Bound<'py, PyBytes>> {
    let out = prf(hash_arg(hash_name)?, secret, label, seed, length_arg(length)?);
    Ok(PyBytes::new(py, &out))
}

#[pyfunction]
#[pyo3(name = "master_secret")]
pub fn py_master_secret<'py>(py: Python<'py>, hash_name: &str, premaster: &[u8], client_random: &[u8], server_random: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &master_secret(hash_arg(hash_name)?, premaster, client_random, server_random)))
}

#[pyfunction]
#[pyo3(name = "extended_master_secret")]
pub fn py_extended_master_secret<'py>(py: Python<'py>, hash_name: &str, premaster: &[u8], session_hash: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &extended_master_secret(hash_arg(hash_name)?, premaster, session_hash)))
}

#[pyfunction]
#[pyo3(name = "key_block")]
pub fn py_key_block<'py>(py: Python<'py>, hash_name: &str, master: &[u8], server_random: &[u8], client_random: &[u8], length: usize) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &key_block(hash_arg(hash_name)?, master, server_random, client_random, length_arg(length)?)))
}

#[pyfunction]
#[pyo3(name = "hkdf_extract")]
pub fn py_hkdf_extract<'py>(py: Python<'py>, hash_name: &str, salt: &[u8], ikm: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &hkdf_extract(hash_arg(hash_name)?, salt, ikm)))
}

#[pyfunction]
#[pyo3(name = "hkdf_expand_label")]
pub fn py_hkdf_expand_label<'py>(py: Python<'py>, hash_name: &str, secret: &[u8], label: &[u8], context: &[u8], length: usize) -> PyResult<Bound<'py, PyBytes>> {
    bytes_out(py, hkdf_expand_label(hash_arg(hash_name)?, secret, label, context, length))
}

#[pyfunction]
#[pyo3(name = "derive_secret")]
pub fn py_derive_secret<'py>(py: Python<'py>, hash_name: &str, secret: &[u8], label: &[u8], transcript_hash: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    bytes_out(py, derive_secret(hash_arg(hash_name)?, secret, label, transcript_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 5869 appendix A.1 (SHA-256).
    #[test]
    fn hkdf_rfc5869_case1() {
        let ikm = unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
        let salt = unhex("000102030405060708090a0b0c");
        let info = unhex("f0f1f2f3f4f5f6f7f8f9");
        let prk = hkdf_extract(Hash::Sha256, &salt, &ikm);
        assert_eq!(prk, unhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"));
        let okm = hkdf_expand(Hash::Sha256, &prk, &info, 42).unwrap();
        assert_eq!(
            okm,
            unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
        );
        assert!(hkdf_expand(Hash::Sha256, &prk, &info, 255 * 32 + 1).is_none());
    }
}
