//! The only module with `unsafe`: the few aws-lc calls that aws-lc-rs's safe API lacks.
//!
//! - raw AES-CBC (TLS CBC suites build their own MAC-then-encrypt around it),
//! - the bare SHA-1/SHA-256/SHA-512 compression functions (for the constant-time CBC MAC check),
//! - private keys of every kind behind one type: signing with any digest (ECDSA P-384 with
//!   SHA-256 included, which aws-lc-rs lacks) and RSA decryption without padding (the premaster
//!   is unpadded in constant time by `rsa_kx`).

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

/// What a private key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    /// ECDSA on a named curve: its NID (`NID_X9_62_prime256v1`, `NID_secp384r1`, `NID_secp521r1`).
    Ec(i32),
    Ed25519,
}

/// The digest a signature is made over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

/// How RSA pads a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaPadding {
    Pkcs1,
    /// RSASSA-PSS with MGF1 of the same digest and a salt as long as the digest (RFC 8446 4.2.3).
    Pss,
}

/// A private key (RSA, ECDSA P-256/P-384/P-521, Ed25519), parsed and checked once. aws-lc frees
/// its key material through OPENSSL_free, which overwrites it first.
pub struct PrivateKey {
    pkey: *mut sys::EVP_PKEY,
    kind: KeyKind,
}

// SAFETY: a parsed EVP_PKEY is never modified; aws-lc's private-key operations build their
// own contexts, and an RSA key's lazily built Montgomery and blinding state is guarded by the
// RSA's own lock.
unsafe impl Send for PrivateKey {}
unsafe impl Sync for PrivateKey {}

impl PrivateKey {
    /// Parses PKCS#8 PrivateKeyInfo DER; `None` if it is malformed, inconsistent or of another
    /// kind. aws-lc's parsers check consistency themselves: RSA_check_key (the CRT values
    /// belong to the modulus) and EC_KEY_check_key (the public point is the private scalar's).
    pub fn from_pkcs8(der: &[u8]) -> Option<Self> {
        // SAFETY: the CBS borrows `der` only during the parse; every pointer is checked for
        // NULL; a rejected key is freed here, an accepted one by Drop.
        unsafe {
            let mut cbs = MaybeUninit::<sys::CBS>::zeroed();
            sys::CBS_init(cbs.as_mut_ptr(), der.as_ptr(), der.len());
            let pkey = sys::EVP_parse_private_key(cbs.as_mut_ptr());
            if pkey.is_null() {
                sys::ERR_clear_error();
                return None;
            }
            let key = PrivateKey { pkey, kind: KeyKind::Rsa };
            let kind = match sys::EVP_PKEY_id(pkey) {
                sys::EVP_PKEY_RSA => KeyKind::Rsa,
                sys::EVP_PKEY_EC => {
                    let ec = sys::EVP_PKEY_get0_EC_KEY(pkey);
                    let curve = sys::EC_GROUP_get_curve_name(sys::EC_KEY_get0_group(ec));
                    if ![sys::NID_X9_62_prime256v1, sys::NID_secp384r1, sys::NID_secp521r1].contains(&curve) {
                        return None;
                    }
                    KeyKind::Ec(curve)
                }
                sys::EVP_PKEY_ED25519 => KeyKind::Ed25519,
                _ => {
                    sys::ERR_clear_error();
                    return None;
                }
            };
            let mut key = key;
            key.kind = kind;
            Some(key)
        }
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key's size in bits (the modulus for RSA, the curve's order for EC).
    pub fn bits(&self) -> usize {
        // SAFETY: self.pkey is a valid key for the lifetime of self.
        unsafe { sys::EVP_PKEY_bits(self.pkey) as usize }
    }

    /// Signs `message` (hashing it with `digest`; Ed25519 takes no digest), with `padding` for
    /// RSA. `None` if aws-lc refuses (the kind and the parameters do not go together).
    pub fn sign(&self, digest: Option<Digest>, padding: RsaPadding, message: &[u8]) -> Option<Vec<u8>> {
        let md = match digest {
            // SAFETY: these return pointers to static EVP_MD tables.
            Some(Digest::Sha256) => unsafe { sys::EVP_sha256() },
            Some(Digest::Sha384) => unsafe { sys::EVP_sha384() },
            Some(Digest::Sha512) => unsafe { sys::EVP_sha512() },
            None => std::ptr::null(),
        };
        // SAFETY: the context is created, used and freed here; EVP_DigestSign first reports the
        // maximum signature length, then writes at most that many bytes into `sig`.
        unsafe {
            let ctx = sys::EVP_MD_CTX_new();
            if ctx.is_null() {
                return None;
            }
            let mut pctx: *mut sys::EVP_PKEY_CTX = std::ptr::null_mut();
            let mut ok = sys::EVP_DigestSignInit(ctx, &mut pctx, md, std::ptr::null_mut(), self.pkey) == 1;
            if ok && self.kind == KeyKind::Rsa && padding == RsaPadding::Pss {
                ok = sys::EVP_PKEY_CTX_set_rsa_padding(pctx, sys::RSA_PKCS1_PSS_PADDING) == 1
                    && sys::EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1) == 1; // -1: the digest's length
            }
            let mut len = 0usize;
            ok = ok && sys::EVP_DigestSign(ctx, std::ptr::null_mut(), &mut len, message.as_ptr(), message.len()) == 1;
            let mut sig = vec![0u8; len];
            ok = ok && sys::EVP_DigestSign(ctx, sig.as_mut_ptr(), &mut len, message.as_ptr(), message.len()) == 1;
            sys::EVP_MD_CTX_free(ctx);
            if !ok {
                sys::ERR_clear_error();
                return None;
            }
            sig.truncate(len);
            Some(sig)
        }
    }

    /// The RSA modulus length in bytes (0 for other kinds).
    pub fn rsa_size(&self) -> usize {
        if self.kind != KeyKind::Rsa {
            return 0;
        }
        // SAFETY: an RSA EVP_PKEY holds a valid RSA for the lifetime of self.
        unsafe { sys::RSA_size(sys::EVP_PKEY_get0_RSA(self.pkey)) as usize }
    }

    /// `c^d mod n` as `rsa_size()` big-endian bytes (blinded, constant time in aws-lc);
    /// `None` when the key is not RSA or `ciphertext` is not `rsa_size()` bytes or not below
    /// the modulus.
    pub fn rsa_decrypt_raw(&self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let k = self.rsa_size();
        if k == 0 || ciphertext.len() != k {
            return None;
        }
        let mut out = vec![0u8; k];
        let mut out_len = 0usize;
        // SAFETY: `out` has room for k bytes, which is all RSA_NO_PADDING ever writes; the input
        // is k readable bytes; the key is a valid RSA key.
        let ok = unsafe {
            sys::RSA_decrypt(
                sys::EVP_PKEY_get0_RSA(self.pkey),
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

impl Drop for PrivateKey {
    fn drop(&mut self) {
        // SAFETY: self.pkey came from aws-lc with one reference that we own.
        unsafe { sys::EVP_PKEY_free(self.pkey) }
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
