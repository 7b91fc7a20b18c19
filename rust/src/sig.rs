//! Signatures for CertificateVerify and ServerKeyExchange, named by their TLS SignatureScheme
//! (RFC 8446 section 4.2.3). Private keys arrive as PKCS#8 DER, public keys as
//! SubjectPublicKeyInfo DER.

use aws_lc_rs::{rand, signature};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    UnknownScheme,
    BadKey,
    SigningFailed,
}

enum Signer {
    Rsa(&'static dyn signature::RsaEncoding),
    Ecdsa(&'static signature::EcdsaSigningAlgorithm),
}

fn signer(scheme: &str) -> Option<Signer> {
    Some(match scheme {
        "rsa_pkcs1_sha256" => Signer::Rsa(&signature::RSA_PKCS1_SHA256),
        "rsa_pkcs1_sha384" => Signer::Rsa(&signature::RSA_PKCS1_SHA384),
        "rsa_pkcs1_sha512" => Signer::Rsa(&signature::RSA_PKCS1_SHA512),
        "rsa_pss_rsae_sha256" => Signer::Rsa(&signature::RSA_PSS_SHA256),
        "rsa_pss_rsae_sha384" => Signer::Rsa(&signature::RSA_PSS_SHA384),
        "rsa_pss_rsae_sha512" => Signer::Rsa(&signature::RSA_PSS_SHA512),
        "ecdsa_secp256r1_sha256" => Signer::Ecdsa(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        "ecdsa_secp384r1_sha384" => Signer::Ecdsa(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        _ => return None,
    })
}

/// The algorithms a signature under `scheme` may verify with. In TLS 1.2 (RFC 5246
/// 7.4.1.4.1) the ECDSA code points name only the hash: the curve is the key's.
fn verifiers(scheme: &str) -> Option<Vec<&'static dyn signature::VerificationAlgorithm>> {
    Some(match scheme {
        "ecdsa_secp256r1_sha256" => vec![&signature::ECDSA_P256_SHA256_ASN1, &signature::ECDSA_P384_SHA256_ASN1],
        "ecdsa_secp384r1_sha384" => vec![&signature::ECDSA_P384_SHA384_ASN1, &signature::ECDSA_P256_SHA384_ASN1],
        _ => vec![verifier(scheme)?],
    })
}

fn verifier(scheme: &str) -> Option<&'static dyn signature::VerificationAlgorithm> {
    Some(match scheme {
        "rsa_pkcs1_sha1" => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        "rsa_pkcs1_sha256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "rsa_pkcs1_sha384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "rsa_pkcs1_sha512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "rsa_pss_rsae_sha256" => &signature::RSA_PSS_2048_8192_SHA256,
        "rsa_pss_rsae_sha384" => &signature::RSA_PSS_2048_8192_SHA384,
        "rsa_pss_rsae_sha512" => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// Signs `message` with the PKCS#8 key under `scheme`.
pub fn sign(scheme: &str, private_key_der: &[u8], message: &[u8]) -> Result<Vec<u8>, Error> {
    let rng = rand::SystemRandom::new();
    match signer(scheme).ok_or(Error::UnknownScheme)? {
        Signer::Rsa(encoding) => {
            let key = signature::RsaKeyPair::from_pkcs8(private_key_der).map_err(|_| Error::BadKey)?;
            let mut sig = vec![0u8; key.public_modulus_len()];
            key.sign(encoding, &rng, message, &mut sig).map_err(|_| Error::SigningFailed)?;
            Ok(sig)
        }
        Signer::Ecdsa(alg) => {
            let key = signature::EcdsaKeyPair::from_pkcs8(alg, private_key_der).map_err(|_| Error::BadKey)?;
            let sig = key.sign(&rng, message).map_err(|_| Error::SigningFailed)?;
            Ok(sig.as_ref().to_vec())
        }
    }
}

/// Whether `signature` over `message` verifies under the SubjectPublicKeyInfo and `scheme`.
pub fn verify(scheme: &str, public_key_der: &[u8], message: &[u8], sig: &[u8]) -> Result<bool, Error> {
    let algs = verifiers(scheme).ok_or(Error::UnknownScheme)?;
    Ok(algs.into_iter().any(|alg| signature::UnparsedPublicKey::new(alg, public_key_der).verify(message, sig).is_ok()))
}

fn to_py_err(e: Error) -> PyErr {
    PyValueError::new_err(match e {
        Error::UnknownScheme => "unknown signature scheme",
        Error::BadKey => "the private key does not suit the signature scheme",
        Error::SigningFailed => "signing failed",
    })
}

/// Signs `message` with a PKCS#8 DER private key under a TLS SignatureScheme name.
#[pyfunction]
#[pyo3(name = "sign")]
pub fn py_sign<'py>(py: Python<'py>, scheme: &str, private_key_der: &[u8], message: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let sig = py.detach(|| sign(scheme, private_key_der, message)).map_err(to_py_err)?;
    Ok(PyBytes::new(py, &sig))
}

/// Whether `signature` is valid for `message` under a SubjectPublicKeyInfo DER public key.
#[pyfunction]
#[pyo3(name = "verify")]
pub fn py_verify(py: Python<'_>, scheme: &str, public_key_der: &[u8], message: &[u8], signature: &[u8]) -> PyResult<bool> {
    py.detach(|| verify(scheme, public_key_der, message, signature)).map_err(to_py_err)
}
