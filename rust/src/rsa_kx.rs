//! RSA key exchange: decrypting the EncryptedPreMasterSecret (RFC 5246 section 7.4.7.1).
//!
//! Bleichenbacher and Marvin attacks turn any observable difference between good and bad PKCS#1
//! v1.5 padding into a decryption oracle. So the block is decrypted raw (blinded, constant-time
//! modular exponentiation in aws-lc), checked with masks only, and a bad block is replaced by a
//! substitute premaster derived from the ciphertext under a key derived from the private key
//! (implicit rejection): the same bad ciphertext always gives the same substitute, and the
//! handshake then fails at Finished exactly as it would with a wrong key.

use crate::ct;
use crate::ffi::PrivateKey;
use aws_lc_rs::hmac;

pub const PREMASTER_LEN: usize = 48;

/// The key-derivation key for substitutes: HMAC-SHA256 keyed by a hash of the private key's
/// PKCS#8 encoding, made once with the key.
pub fn rejection_key(private_key_der: &[u8]) -> hmac::Key {
    let seed = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"ferrotls implicit rejection"), private_key_der);
    hmac::Key::new(hmac::HMAC_SHA256, seed.as_ref())
}

/// The key is not RSA, or too small to carry a PKCS#1 v1.5 premaster block.
#[derive(Debug, PartialEq, Eq)]
pub struct NotRsa;

/// The 48-byte premaster for `ciphertext`, or its substitute when the block is malformed.
pub fn premaster(key: &PrivateKey, kdk: &hmac::Key, ciphertext: &[u8], client_version: u16) -> Result<[u8; PREMASTER_LEN], NotRsa> {
    let k = key.rsa_size();
    if k < PREMASTER_LEN + 11 {
        return Err(NotRsa);
    }

    // The substitute: client_version, then 46 bytes from HMAC(kdk, ciphertext), as RFC 5246
    // 7.4.7.1 builds its random one.
    let mut substitute = [0u8; PREMASTER_LEN];
    let t1 = hmac::sign(kdk, &[ciphertext, b"\x01"].concat());
    let t2 = hmac::sign(kdk, &[ciphertext, b"\x02"].concat());
    substitute[..2].copy_from_slice(&client_version.to_be_bytes());
    substitute[2..34].copy_from_slice(t1.as_ref());
    substitute[34..].copy_from_slice(&t2.as_ref()[..14]);

    // A ciphertext of the wrong length, or not below the modulus, is public information: it
    // gets the substitute too, and the handshake fails at Finished (RFC 5246 7.4.7.1).
    if ciphertext.len() != k {
        return Ok(substitute);
    }
    let Some(em) = key.rsa_decrypt_raw(ciphertext) else {
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
