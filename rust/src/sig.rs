//! Signatures for CertificateVerify and ServerKeyExchange, named by their TLS SignatureScheme
//! (RFC 8446 section 4.2.3). Private keys are `ffi::PrivateKey`s, parsed once; public keys
//! arrive as SubjectPublicKeyInfo DER.

use crate::ffi::{Digest, KeyKind, PrivateKey, RsaPadding};
use aws_lc_rs::signature;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    UnknownScheme,
    BadKey,
    SigningFailed,
}

/// What signing under a scheme takes: the kind of key, the digest and the RSA padding.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    Ecdsa,
    Ed25519,
}

fn signer(scheme: &str) -> Option<(Family, Option<Digest>, RsaPadding)> {
    use Digest::*;
    Some(match scheme {
        "rsa_pkcs1_sha256" => (Family::Rsa, Some(Sha256), RsaPadding::Pkcs1),
        "rsa_pkcs1_sha384" => (Family::Rsa, Some(Sha384), RsaPadding::Pkcs1),
        "rsa_pkcs1_sha512" => (Family::Rsa, Some(Sha512), RsaPadding::Pkcs1),
        "rsa_pss_rsae_sha256" => (Family::Rsa, Some(Sha256), RsaPadding::Pss),
        "rsa_pss_rsae_sha384" => (Family::Rsa, Some(Sha384), RsaPadding::Pss),
        "rsa_pss_rsae_sha512" => (Family::Rsa, Some(Sha512), RsaPadding::Pss),
        // In TLS 1.2 (RFC 5246 7.4.1.4.1) the ECDSA code points name only the hash: any curve
        // signs under any of them. TLS 1.3 ties the curve, which the handshake checks.
        "ecdsa_secp256r1_sha256" => (Family::Ecdsa, Some(Sha256), RsaPadding::Pkcs1),
        "ecdsa_secp384r1_sha384" => (Family::Ecdsa, Some(Sha384), RsaPadding::Pkcs1),
        "ecdsa_secp521r1_sha512" => (Family::Ecdsa, Some(Sha512), RsaPadding::Pkcs1),
        "ed25519" => (Family::Ed25519, None, RsaPadding::Pkcs1),
        _ => return None,
    })
}

/// Signs `message` with `key` under `scheme`.
pub fn sign(scheme: &str, key: &PrivateKey, message: &[u8]) -> Result<Vec<u8>, Error> {
    let (family, digest, padding) = signer(scheme).ok_or(Error::UnknownScheme)?;
    let fits = match key.kind() {
        KeyKind::Rsa => family == Family::Rsa,
        KeyKind::Ec(_) => family == Family::Ecdsa,
        KeyKind::Ed25519 => family == Family::Ed25519,
    };
    if !fits {
        return Err(Error::BadKey);
    }
    key.sign(digest, padding, message).ok_or(Error::SigningFailed)
}

/// The algorithms a signature under `scheme` may verify with. In TLS 1.2 (RFC 5246
/// 7.4.1.4.1) the ECDSA code points name only the hash: the curve is the key's.
fn verifiers(scheme: &str) -> Option<Vec<&'static dyn signature::VerificationAlgorithm>> {
    Some(match scheme {
        "ecdsa_secp256r1_sha256" => vec![&signature::ECDSA_P256_SHA256_ASN1, &signature::ECDSA_P384_SHA256_ASN1, &signature::ECDSA_P521_SHA256_ASN1],
        "ecdsa_secp384r1_sha384" => vec![&signature::ECDSA_P384_SHA384_ASN1, &signature::ECDSA_P256_SHA384_ASN1, &signature::ECDSA_P521_SHA384_ASN1],
        "ecdsa_secp521r1_sha512" => vec![&signature::ECDSA_P521_SHA512_ASN1, &signature::ECDSA_P256_SHA512_ASN1, &signature::ECDSA_P384_SHA512_ASN1],
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

/// Whether `signature` over `message` verifies under the SubjectPublicKeyInfo and `scheme`.
pub fn verify(scheme: &str, public_key_der: &[u8], message: &[u8], sig: &[u8]) -> Result<bool, Error> {
    let algs = verifiers(scheme).ok_or(Error::UnknownScheme)?;
    Ok(algs.into_iter().any(|alg| signature::UnparsedPublicKey::new(alg, public_key_der).verify(message, sig).is_ok()))
}

pub fn to_py_err(e: Error) -> PyErr {
    PyValueError::new_err(match e {
        Error::UnknownScheme => "unknown signature scheme",
        Error::BadKey => "the private key does not suit the signature scheme",
        Error::SigningFailed => "signing failed",
    })
}

/// Whether `signature` is valid for `message` under a SubjectPublicKeyInfo DER public key.
#[pyfunction]
#[pyo3(name = "verify")]
pub fn py_verify(py: Python<'_>, scheme: &str, public_key_der: &[u8], message: &[u8], signature: &[u8]) -> PyResult<bool> {
    py.detach(|| verify(scheme, public_key_der, message, signature)).map_err(to_py_err)
}
