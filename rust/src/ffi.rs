//! The only module with `unsafe`: the few aws-lc calls that aws-lc-rs's safe API lacks.
//!
//! - raw AES-CBC (TLS CBC suites build their own MAC-then-encrypt around it),
//! - the bare SHA-1/SHA-256/SHA-512 compression functions (for the constant-time CBC MAC check),
//! - RSA decryption without padding (the premaster is unpadded in constant time by `rsa_kx`).

use aws_lc_sys as sys;
use std::mem::MaybeUninit;

/// An AES key schedule for both CBC directions.
pub struct AesCbcKey {
    enc: sys::AES_KEY,
    dec: sys::AES_KEY,
}

impl AesCbcKey {
    /// `key` must be 16 or 32 bytes; returns `None` otherwise.
    pub fn new(key: &[u8]) -> Option<Self> {
        if key.len() != 16 && key.len() != 32 {
            return None;
        }
        let bits = (key.len() * 8) as u32;
        let mut enc = MaybeUninit::<sys::AES_KEY>::zeroed();
        let mut dec = MaybeUninit::<sys::AES_KEY>::zeroed();
        // SAFETY: `key` holds `bits / 8` readable bytes; both schedules are valid writable
        // AES_KEY structs, and AES_set_*_key initialises every field it reads later.
        unsafe {
            if sys::AES_set_encrypt_key(key.as_ptr(), bits, enc.as_mut_ptr()) != 0
                || sys::AES_set_decrypt_key(key.as_ptr(), bits, dec.as_mut_ptr()) != 0
            {
                return None;
            }
            Some(AesCbcKey { enc: enc.assume_init(), dec: dec.assume_init() })
        }
    }

    /// CBC-encrypts `buf` in place; `buf.len()` must be a multiple of 16.
    pub fn encrypt(&self, iv: &[u8; 16], buf: &mut [u8]) {
        assert_eq!(buf.len() % 16, 0);
        let mut ivec = *iv;
        // SAFETY: in and out are the same whole-block buffer (aws-lc allows in == out),
        // `ivec` is 16 writable bytes, and the key schedule is initialised.
        unsafe {
            sys::AES_cbc_encrypt(buf.as_ptr(), buf.as_mut_ptr(), buf.len(), &self.enc, ivec.as_mut_ptr(), sys::AES_ENCRYPT)
        }
    }

    /// CBC-decrypts `buf` in place; `buf.len()` must be a multiple of 16.
    pub fn decrypt(&self, iv: &[u8; 16], buf: &mut [u8]) {
        assert_eq!(buf.len() % 16, 0);
        let mut ivec = *iv;
        // SAFETY: as in `encrypt`.
        unsafe {
            sys::AES_cbc_encrypt(buf.as_ptr(), buf.as_mut_ptr(), buf.len(), &self.dec, ivec.as_mut_ptr(), sys::AES_DECRYPT)
        }
    }
}

/// A Merkle-Damgård hash fed whole blocks only: the caller does the padding.
#[derive(Clone, Copy)]
pub enum BlockHash {
    Sha1(sys::SHA_CTX),
    Sha256(sys::SHA256_CTX),
    Sha384(sys::SHA512_CTX),
}

impl BlockHash {
    pub fn sha1() -> Self {
        let mut ctx = MaybeUninit::<sys::SHA_CTX>::zeroed();
        // SAFETY: SHA1_Init fully initialises the context it is given.
        unsafe {
            sys::SHA1_Init(ctx.as_mut_ptr());
            BlockHash::Sha1(ctx.assume_init())
        }
    }

    pub fn sha256() -> Self {
        let mut ctx = MaybeUninit::<sys::SHA256_CTX>::zeroed();
        // SAFETY: SHA256_Init fully initialises the context it is given.
        unsafe {
            sys::SHA256_Init(ctx.as_mut_ptr());
            BlockHash::Sha256(ctx.assume_init())
        }
    }

    pub fn sha384() -> Self {
        let mut ctx = MaybeUninit::<sys::SHA512_CTX>::zeroed();
        // SAFETY: SHA384_Init fully initialises the context it is given.
        unsafe {
            sys::SHA384_Init(ctx.as_mut_ptr());
            BlockHash::Sha384(ctx.assume_init())
        }
    }

    pub fn block_len(&self) -> usize {
        match self {
            BlockHash::Sha384(_) => 128,
            _ => 64,
        }
    }

    /// Runs the compression function on one block of `block_len()` bytes.
    pub fn compress(&mut self, block: &[u8]) {
        assert_eq!(block.len(), self.block_len());
        // SAFETY: each context was initialised by its *_Init, and `block` holds exactly one
        // block; *_Transform reads one block and updates only the chaining state.
        unsafe {
            match self {
                BlockHash::Sha1(c) => sys::SHA1_Transform(c, block.as_ptr()),
                BlockHash::Sha256(c) => sys::SHA256_Transform(c, block.as_ptr()),
                BlockHash::Sha384(c) => sys::SHA512_Transform(c, block.as_ptr()),
            }
        }
    }

    /// The chaining state as big-endian bytes (the digest, once the padding is in): 20, 32 or 48.
    pub fn state_bytes(&self, out: &mut [u8; 64]) -> usize {
        match self {
            BlockHash::Sha1(c) => {
                for (i, w) in c.h.iter().enumerate() {
                    out[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
                }
                20
            }
            BlockHash::Sha256(c) => {
                for (i, w) in c.h.iter().enumerate() {
                    out[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
                }
                32
            }
            BlockHash::Sha384(c) => {
                for (i, w) in c.h.iter().enumerate() {
                    out[8 * i..8 * i + 8].copy_from_slice(&w.to_be_bytes());
                }
                48
            }
        }
    }
}

/// An RSA private key for raw (unpadded) decryption.
pub struct RsaPrivateKey(*mut sys::RSA);

// SAFETY: aws-lc's RSA objects are safe to share between threads for private-key operations:
// the lazily built Montgomery contexts and blinding state are guarded by the RSA's own lock.
unsafe impl Send for RsaPrivateKey {}
unsafe impl Sync for RsaPrivateKey {}

impl RsaPrivateKey {
    /// Parses PKCS#8 PrivateKeyInfo or PKCS#1 RSAPrivateKey DER; `None` if it is neither or not RSA.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        // SAFETY: the CBS borrows `der` only for the duration of the parse; every returned
        // pointer is checked for NULL, and the EVP_PKEY is freed after taking a new RSA reference.
        unsafe {
            let mut cbs = MaybeUninit::<sys::CBS>::zeroed();
            sys::CBS_init(cbs.as_mut_ptr(), der.as_ptr(), der.len());
            let pkey = sys::EVP_parse_private_key(cbs.as_mut_ptr());
            let rsa = if pkey.is_null() {
                sys::ERR_clear_error();
                sys::RSA_private_key_from_bytes(der.as_ptr(), der.len())
            } else {
                let rsa = if sys::EVP_PKEY_id(pkey) == sys::EVP_PKEY_RSA {
                    sys::EVP_PKEY_get1_RSA(pkey)
                } else {
                    std::ptr::null_mut()
                };
                sys::EVP_PKEY_free(pkey);
                rsa
            };
            if rsa.is_null() {
                sys::ERR_clear_error();
                return None;
            }
            if sys::RSA_check_key(rsa) != 1 {
                sys::ERR_clear_error();
                sys::RSA_free(rsa);
                return None;
            }
            Some(RsaPrivateKey(rsa))
        }
    }

    /// The modulus length in bytes.
    pub fn size(&self) -> usize {
        // SAFETY: self.0 is a valid RSA key for the lifetime of self.
        unsafe { sys::RSA_size(self.0) as usize }
    }

    /// `c^d mod n` as `size()` big-endian bytes (blinded, constant time in aws-lc);
    /// `None` when `ciphertext` is not `size()` bytes or not below the modulus.
    pub fn decrypt_raw(&self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let k = self.size();
        if ciphertext.len() != k {
            return None;
        }
        let mut out = vec![0u8; k];
        let mut out_len = 0usize;
        // SAFETY: `out` has room for k bytes, which is all RSA_NO_PADDING ever writes; the input
        // is k readable bytes; the key is valid.
        let ok = unsafe {
            sys::RSA_decrypt(
                self.0,
                &mut out_len,
                out.as_mut_ptr(),
                k,
                ciphertext.as_ptr(),
                k,
                sys::RSA_NO_PADDING,
            )
        };
        if ok != 1 || out_len != k {
            // SAFETY: clears this thread's aws-lc error queue; no pointers involved.
            unsafe { sys::ERR_clear_error() };
            return None;
        }
        Some(out)
    }
}

impl Drop for RsaPrivateKey {
    fn drop(&mut self) {
        // SAFETY: self.0 came from aws-lc with one reference that we own.
        unsafe { sys::RSA_free(self.0) }
    }
}

/// An AEAD key for sealing from one buffer into another (aws-lc-rs only seals in place, which
/// would cost the record layer a copy of every plaintext).
pub struct AeadSealingKey(Box<sys::EVP_AEAD_CTX>);

// SAFETY: an initialised EVP_AEAD_CTX is only read by EVP_AEAD_CTX_seal_scatter (it takes a
// const pointer), so sharing it between threads is sound.
unsafe impl Send for AeadSealingKey {}
unsafe impl Sync for AeadSealingKey {}

pub const AEAD_TAG_LEN: usize = 16;

impl AeadSealingKey {
    /// `cipher`: "AES_128_GCM", "AES_256_GCM" or "CHACHA20_POLY1305"; `None` for a bad key.
    pub fn new(cipher: &str, key: &[u8]) -> Option<Self> {
        // SAFETY: each EVP_aead_* returns a pointer to a static method table.
        let aead = unsafe {
            match cipher {
                "AES_128_GCM" => sys::EVP_aead_aes_128_gcm(),
                "AES_256_GCM" => sys::EVP_aead_aes_256_gcm(),
                "CHACHA20_POLY1305" => sys::EVP_aead_chacha20_poly1305(),
                _ => return None,
            }
        };
        // SAFETY: an all-zero EVP_AEAD_CTX is the state EVP_AEAD_CTX_zero gives, which init
        // expects; the context is boxed so it never moves after init (its state is aligned in
        // place); the key is key.len() readable bytes.
        unsafe {
            let mut ctx: Box<sys::EVP_AEAD_CTX> = Box::new(MaybeUninit::zeroed().assume_init());
            if sys::EVP_AEAD_CTX_init(&mut *ctx, aead, key.as_ptr(), key.len(), AEAD_TAG_LEN, std::ptr::null_mut()) != 1 {
                sys::ERR_clear_error();
                return None;
            }
            Some(AeadSealingKey(ctx))
        }
    }

    /// Encrypts `input` into `out` (the same length), then `extra` (a TLS 1.3 content type)
    /// and the tag into `tag_out` (extra.len() + AEAD_TAG_LEN bytes).
    pub fn seal(&self, nonce: &[u8; 12], aad: &[u8], input: &[u8], extra: &[u8], out: &mut [u8], tag_out: &mut [u8]) {
        assert!(out.len() == input.len() && tag_out.len() == extra.len() + AEAD_TAG_LEN);
        let mut tag_len = 0usize;
        // SAFETY: `out` has input.len() writable bytes and does not overlap `input` (distinct
        // borrows); `tag_out` has room for the encrypted `extra` and the tag, the most this
        // context writes; nonce, AAD and `extra` are readable for their lengths.
        let ok = unsafe {
            sys::EVP_AEAD_CTX_seal_scatter(
                &*self.0,
                out.as_mut_ptr(),
                tag_out.as_mut_ptr(),
                &mut tag_len,
                tag_out.len(),
                nonce.as_ptr(),
                nonce.len(),
                input.as_ptr(),
                input.len(),
                extra.as_ptr(),
                extra.len(),
                aad.as_ptr(),
                aad.len(),
            )
        };
        assert!(ok == 1 && tag_len == tag_out.len(), "AEAD sealing of a bounded record cannot fail");
    }
}

impl Drop for AeadSealingKey {
    fn drop(&mut self) {
        // SAFETY: the context was initialised by EVP_AEAD_CTX_init and is cleaned up once.
        unsafe { sys::EVP_AEAD_CTX_cleanup(&mut *self.0) }
    }
}
