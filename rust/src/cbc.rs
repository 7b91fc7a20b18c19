//! TLS 1.2 AES-CBC records: MAC-then-encrypt (RFC 5246 section 6.2.3.2) and encrypt-then-MAC
//! (RFC 7366), with an explicit random IV per record.
//!
//! Opening a MAC-then-encrypt record is the Lucky Thirteen hazard: the padding length is secret
//! until the MAC is checked, so the padding check, the MAC computation and the MAC comparison all
//! run in time that depends only on the record's length. The inner hash of the HMAC is computed
//! block by block with the bare compression function over every length the padding allows, and
//! the state at the true final block is picked out with masks (the method of BoringSSL's
//! `EVP_tls_cbc_digest_record`, written afresh here).

use crate::ct;
use crate::ffi::{AesCbcKey, BlockHash};
use aws_lc_rs::{constant_time, hmac, rand};

/// Sequence number, content type, version and length: the MAC's header (RFC 5246 6.2.3.1).
const MAC_HEADER_LEN: usize = 13;
const BLOCK: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacHash {
    Sha1,
    Sha256,
    Sha384,
}

impl MacHash {
    pub fn from_name(name: &str) -> Option<MacHash> {
        match name {
            "SHA" => Some(MacHash::Sha1),
            "SHA256" => Some(MacHash::Sha256),
            "SHA384" => Some(MacHash::Sha384),
            _ => None,
        }
    }

    pub fn mac_len(self) -> usize {
        match self {
            MacHash::Sha1 => 20,
            MacHash::Sha256 => 32,
            MacHash::Sha384 => 48,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            MacHash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            MacHash::Sha256 => hmac::HMAC_SHA256,
            MacHash::Sha384 => hmac::HMAC_SHA384,
        }
    }

    fn block_hash(self) -> BlockHash {
        match self {
            MacHash::Sha1 => BlockHash::sha1(),
            MacHash::Sha256 => BlockHash::sha256(),
            MacHash::Sha384 => BlockHash::sha384(),
        }
    }

    /// Bytes of the message-length field in the hash padding.
    fn length_field(self) -> usize {
        match self {
            MacHash::Sha384 => 16,
            _ => 8,
        }
    }
}

pub struct CbcCipher {
    aes: AesCbcKey,
    mac: MacHash,
    mac_key: hmac::Key,
    /// The HMAC key XOR ipad and XOR opad, one hash block each (RFC 2104).
    ipad: Vec<u8>,
    opad: Vec<u8>,
    encrypt_then_mac: bool,
}

fn mac_header(seq: u64, content_type: u8, version: u16, length: usize) -> [u8; MAC_HEADER_LEN] {
    let mut h = [0u8; MAC_HEADER_LEN];
    h[..8].copy_from_slice(&seq.to_be_bytes());
    h[8] = content_type;
    h[9..11].copy_from_slice(&version.to_be_bytes());
    h[11] = (length >> 8) as u8;
    h[12] = length as u8;
    h
}

impl CbcCipher {
    /// `mac_key` must be shorter than a hash block (TLS MAC keys are the hash's output length).
    pub fn new(mac: MacHash, enc_key: &[u8], mac_key: &[u8], encrypt_then_mac: bool) -> Option<Self> {
        let aes = AesCbcKey::new(enc_key)?;
        let block_len = mac.block_hash().block_len();
        if mac_key.len() > block_len {
            return None;
        }
        let mut ipad = vec![0x36u8; block_len];
        let mut opad = vec![0x5cu8; block_len];
        for (i, k) in mac_key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        Some(CbcCipher {
            aes,
            mac,
            mac_key: hmac::Key::new(mac.hmac(), mac_key),
            ipad,
            opad,
            encrypt_then_mac,
        })
    }

    fn record_mac(&self, header: &[u8], parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.mac_key);
        ctx.update(header);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign()
    }

    /// The record body's length for a fragment of `len` bytes: IV, then whole blocks of
    /// fragment, MAC (inside them unless encrypt-then-MAC) and at least one padding byte.
    pub fn body_len(&self, len: usize) -> usize {
        let mac_len = self.mac.mac_len();
        if self.encrypt_then_mac {
            BLOCK + (len + 1).div_ceil(BLOCK) * BLOCK + mac_len
        } else {
            BLOCK + (len + mac_len + 1).div_ceil(BLOCK) * BLOCK
        }
    }

    /// Writes the record body (IV, ciphertext and, for encrypt-then-MAC, the MAC) for
    /// `fragment` into `out`, which is exactly `body_len(fragment.len())` bytes.
    pub fn seal_into(&self, seq: u64, content_type: u8, version: u16, fragment: &[u8], out: &mut [u8]) {
        let mac_len = self.mac.mac_len();
        let (iv, rest) = out.split_at_mut(BLOCK);
        rand::fill(iv).expect("the system random generator failed");
        let iv: [u8; BLOCK] = (&*iv).try_into().unwrap();
        let (blocks, tag_out) = rest.split_at_mut(rest.len() - if self.encrypt_then_mac { mac_len } else { 0 });
        blocks[..fragment.len()].copy_from_slice(fragment);
        let mut filled = fragment.len();
        if !self.encrypt_then_mac {
            let tag = self.record_mac(&mac_header(seq, content_type, version, fragment.len()), &[fragment]);
            blocks[filled..filled + mac_len].copy_from_slice(tag.as_ref());
            filled += mac_len;
        }
        // Padding: pad+1 bytes each of value pad, to a whole block (RFC 5246 6.2.3.2).
        let pad = blocks.len() - filled - 1;
        blocks[filled..].fill(pad as u8);
        self.aes.encrypt(&iv, blocks);
        if self.encrypt_then_mac {
            // RFC 7366 section 3: the MAC covers IV and ciphertext, with their length in the header.
            let header = mac_header(seq, content_type, version, BLOCK + blocks.len());
            let tag = self.record_mac(&header, &[&iv, blocks]);
            tag_out.copy_from_slice(tag.as_ref());
        }
    }

    /// Appends the plaintext of a record body to `out`; `Err` (and `out` unchanged) if the record
    /// does not authenticate, whatever the reason.
    pub fn open_into(&self, seq: u64, content_type: u8, version: u16, body: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
        let mac_len = self.mac.mac_len();
        let start = out.len();
        if self.encrypt_then_mac {
            if body.len() < 2 * BLOCK + mac_len || (body.len() - mac_len) % BLOCK != 0 {
                return Err(());
            }
            let (authenticated, tag) = body.split_at(body.len() - mac_len);
            let expected = self.record_mac(&mac_header(seq, content_type, version, authenticated.len()), &[authenticated]);
            constant_time::verify_slices_are_equal(expected.as_ref(), tag).map_err(|_| ())?;
            let (iv, ciphertext) = authenticated.split_at(BLOCK);
            out.extend_from_slice(ciphertext);
            self.aes.decrypt(iv.try_into().unwrap(), &mut out[start..]);
            let (good, pad_total) = check_padding(&out[start..], 0);
            if good == 0 {
                out.truncate(start);
                return Err(());
            }
            out.truncate(out.len() - pad_total);
            return Ok(());
        }
        // MAC-then-encrypt: at least one block holding the MAC and a padding byte.
        let min = (mac_len + 1).div_ceil(BLOCK) * BLOCK;
        if body.len() < BLOCK + min || body.len() % BLOCK != 0 {
            return Err(());
        }
        let (iv, ciphertext) = body.split_at(BLOCK);
        out.extend_from_slice(ciphertext);
        self.aes.decrypt(iv.try_into().unwrap(), &mut out[start..]);
        let (data_len, good) = self.verify_mac_then_padding(seq, content_type, version, &out[start..]);
        if good == 0 {
            out.truncate(start);
            return Err(());
        }
        out.truncate(start + data_len);
        Ok(())
    }

    /// Checks padding and MAC of a decrypted MAC-then-encrypt record in time independent of the
    /// padding: returns the data length and a mask that is all ones if both are good.
    fn verify_mac_then_padding(&self, seq: u64, content_type: u8, version: u16, plain: &[u8]) -> (usize, usize) {
        let mac_len = self.mac.mac_len();
        let (pad_good, pad_total) = check_padding(plain, mac_len);
        // Longest possible data: one padding byte. With bad padding, check the MAC as if so.
        let hi = plain.len() - 1 - mac_len;
        let lo = hi.saturating_sub(255);
        let data_len = ct::select(pad_good, plain.len().wrapping_sub(pad_total + mac_len), hi);
        let header = mac_header(seq, content_type, version, data_len);
        let mut expected = [0u8; 64];
        self.constant_time_hmac(&header, plain, data_len, lo, hi, &mut expected);

        let mut received = [0u8; 64];
        copy_mac_at(plain, data_len, lo, hi, mac_len, &mut received);
        let mut diff = 0u8;
        for (r, e) in received[..mac_len].iter().zip(&expected[..mac_len]) {
            diff |= r ^ e;
        }
        (data_len, pad_good & ct::is_zero(diff as usize))
    }

    /// HMAC(mac_key, header || plain[..data_len]) for a secret `data_len` in `lo..=hi`, in time
    /// that depends only on `lo`, `hi` and the hash.
    fn constant_time_hmac(&self, header: &[u8; MAC_HEADER_LEN], plain: &[u8], data_len: usize, lo: usize, hi: usize, out: &mut [u8; 64]) {
        let mut inner = self.mac.block_hash();
        let b = inner.block_len();
        let len_field = self.mac.length_field();
        inner.compress(&self.ipad);

        // The hashed message is header || plain[..data_len]; `byte_at` reads it unmasked.
        let byte_at = |pos: usize| -> u8 {
            if pos < MAC_HEADER_LEN {
                header[pos]
            } else if pos - MAC_HEADER_LEN < plain.len() {
                plain[pos - MAC_HEADER_LEN]
            } else {
                0
            }
        };
        let mut block = [0u8; 128];
        let block = &mut block[..b];

        // Blocks wholly inside the shortest possible message hold no secret boundary.
        let public_blocks = (MAC_HEADER_LEN + lo) / b;
        for i in 0..public_blocks {
            if i == 0 {
                block[..MAC_HEADER_LEN].copy_from_slice(header);
                block[MAC_HEADER_LEN..].copy_from_slice(&plain[..b - MAC_HEADER_LEN]);
                inner.compress(block);
            } else {
                inner.compress(&plain[i * b - MAC_HEADER_LEN..(i + 1) * b - MAC_HEADER_LEN]);
            }
        }

        // The rest: every block that could hold the end of the message, its 0x80 or its length.
        let msg_len = MAC_HEADER_LEN + data_len;
        let final_block = (msg_len + len_field) / b;
        let last_possible = (MAC_HEADER_LEN + hi + len_field) / b;
        let bit_len = ((b + msg_len) as u128) * 8;
        let bit_len_bytes = bit_len.to_be_bytes();
        let mut digest = [0u8; 64];
        let mut state = [0u8; 64];
        let mut digest_len = 0;
        for i in public_blocks..=last_possible {
            let is_final = ct::eq(i, final_block);
            for (j, x) in block.iter_mut().enumerate() {
                let pos = i * b + j;
                let in_msg = ct::lt(pos, msg_len);
                let at_end = ct::eq(pos, msg_len);
                let mut v = ct::select_u8(in_msg, byte_at(pos), ct::select_u8(at_end, 0x80, 0));
                if j >= b - len_field {
                    v = ct::select_u8(is_final, bit_len_bytes[16 - (b - j)], v);
                }
                *x = v;
            }
            inner.compress(block);
            digest_len = inner.state_bytes(&mut state);
            for (d, s) in digest.iter_mut().zip(state.iter()) {
                *d = ct::select_u8(is_final, *s, *d);
            }
        }

        // Outer hash: opad block, then the inner digest padded in one block.
        let mut outer = self.mac.block_hash();
        outer.compress(&self.opad);
        block.fill(0);
        block[..digest_len].copy_from_slice(&digest[..digest_len]);
        block[digest_len] = 0x80;
        let outer_bits = (((b + digest_len) as u128) * 8).to_be_bytes();
        block[b - len_field..].copy_from_slice(&outer_bits[16 - len_field..]);
        outer.compress(block);
        outer.state_bytes(out);
    }
}

/// Copies the `mac_len` bytes at the secret offset `data_len` (somewhere in `lo..=hi`) out of
/// `plain` in time independent of `data_len`: one masked pass collects them rotated by
/// `(data_len - lo) % mac_len`, then a rotation by each bit of that amount, masked, undoes it.
fn copy_mac_at(plain: &[u8], data_len: usize, lo: usize, hi: usize, mac_len: usize, out: &mut [u8; 64]) {
    let mut rotated = [0u8; 64];
    let mut j = 0;
    for (i, &b) in plain.iter().enumerate().take(hi + mac_len).skip(lo) {
        let in_mac = ct::ge(i, data_len) & ct::lt(i, data_len + mac_len);
        rotated[j] |= b & in_mac as u8;
        j += 1;
        if j == mac_len {
            j = 0;
        }
    }
    // A division by a constant compiles to a multiplication, which takes constant time.
    let offset = data_len - lo;
    let rotation = match mac_len {
        20 => offset % 20,
        32 => offset % 32,
        48 => offset % 48,
        _ => unreachable!("TLS MACs are 20, 32 or 48 bytes"),
    };
    // out[m] = rotated[(m + rotation) % mac_len], built one bit of `rotation` at a time.
    let mut shift = 1;
    while shift < mac_len {
        let take = ct::is_zero(rotation & shift) ^ usize::MAX;
        let mut next = [0u8; 64];
        for (m, n) in next[..mac_len].iter_mut().enumerate() {
            *n = ct::select_u8(take, rotated[(m + shift) % mac_len], rotated[m]);
        }
        rotated = next;
        shift <<= 1;
    }
    out[..mac_len].copy_from_slice(&rotated[..mac_len]);
}

/// Checks the TLS padding at the end of `plain`, leaving room for `mac_len` bytes before it, in
/// time that depends only on `plain.len()`. Returns (all-ones mask if good, padding bytes incl.
/// the length byte).
fn check_padding(plain: &[u8], mac_len: usize) -> (usize, usize) {
    let len = plain.len();
    let pad = plain[len - 1] as usize;
    let mut good = ct::ge(len, pad + 1 + mac_len);
    // The padding is at most 256 bytes: check every byte that could be one.
    for i in 0..len.min(256) {
        let in_padding = ct::lt(i, pad + 1);
        good &= !(in_padding & !ct::eq(plain[len - 1 - i] as usize, pad));
    }
    (good, pad + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_hmac_matches_hmac_for_every_length() {
        for mac in [MacHash::Sha1, MacHash::Sha256, MacHash::Sha384] {
            let key: Vec<u8> = (0..mac.mac_len() as u8).collect();
            let cipher = CbcCipher::new(mac, &[7u8; 16], &key, false).unwrap();
            let plain: Vec<u8> = (0..700u32).map(|i| (i * 31 % 251) as u8).collect();
            for total in [mac.mac_len() + 1, 64, 300, 700] {
                let plain = &plain[..total];
                let hi = total - 1 - mac.mac_len();
                let lo = hi.saturating_sub(255);
                for data_len in lo..=hi {
                    let header = mac_header(42, 23, 0x0303, data_len);
                    let mut got = [0u8; 64];
                    cipher.constant_time_hmac(&header, plain, data_len, lo, hi, &mut got);
                    let want = cipher.record_mac(&header, &[&plain[..data_len]]);
                    assert_eq!(&got[..mac.mac_len()], want.as_ref(), "{mac:?} total={total} len={data_len}");
                }
            }
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 2202 test case 3 (HMAC-SHA-1) and RFC 4231 test cases 3 and 4, through the masked
    /// HMAC with the secret length anywhere in 0..=37 past the 13-byte header.
    #[test]
    fn constant_time_hmac_known_answers() {
        let cases = [
            (MacHash::Sha1, vec![0xaa; 20], vec![0xdd; 50], "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
            (MacHash::Sha256, vec![0xaa; 20], vec![0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (
                MacHash::Sha384,
                vec![0xaa; 20],
                vec![0xdd; 50],
                "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
            ),
            (MacHash::Sha256, (1..=25).collect(), vec![0xcd; 50], "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            (
                MacHash::Sha384,
                (1..=25).collect(),
                vec![0xcd; 50],
                "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
            ),
        ];
        for (mac, key, data, want) in cases {
            let cipher = CbcCipher::new(mac, &[0u8; 16], &key, false).unwrap();
            let header: [u8; MAC_HEADER_LEN] = data[..MAC_HEADER_LEN].try_into().unwrap();
            let mut got = [0u8; 64];
            cipher.constant_time_hmac(&header, &data[MAC_HEADER_LEN..], data.len() - MAC_HEADER_LEN, 0, 37, &mut got);
            assert_eq!(got[..mac.mac_len()], unhex(want)[..], "{mac:?}");
        }
    }

    #[test]
    fn seal_open_round_trip_and_every_padding_byte_matters() {
        for etm in [false, true] {
            for mac in [MacHash::Sha1, MacHash::Sha256, MacHash::Sha384] {
                let cipher = CbcCipher::new(mac, &[9u8; 32], &vec![3u8; mac.mac_len()], etm).unwrap();
                for n in [0usize, 1, 15, 16, 17, 100] {
                    let data: Vec<u8> = (0..n as u8).collect();
                    let mut body = vec![0u8; cipher.body_len(n)];
                    cipher.seal_into(5, 23, 0x0303, &data, &mut body);
                    let mut out = vec![0xAA];
                    cipher.open_into(5, 23, 0x0303, &body, &mut out).unwrap();
                    assert_eq!(&out[1..], &data[..]);
                    let mut out = Vec::new();
                    assert!(cipher.open_into(6, 23, 0x0303, &body, &mut out).is_err());
                    assert!(out.is_empty());
                }
            }
        }
    }

    #[test]
    fn copy_mac_at_every_offset() {
        let plain: Vec<u8> = (0..400u32).map(|i| (i * 7 % 256) as u8).collect();
        for mac_len in [20, 32, 48] {
            let hi = plain.len() - 1 - mac_len;
            let lo = hi - 255;
            for data_len in lo..=hi {
                let mut out = [0u8; 64];
                copy_mac_at(&plain, data_len, lo, hi, mac_len, &mut out);
                assert_eq!(&out[..mac_len], &plain[data_len..data_len + mac_len], "{mac_len} {data_len}");
            }
        }
    }

    #[test]
    fn padding_check() {
        let mut p = vec![0u8; 48];
        p[47] = 3;
        p[44..47].fill(3);
        assert_eq!(check_padding(&p, 20), (usize::MAX, 4));
        p[44] = 2;
        assert_eq!(check_padding(&p, 20).0, 0);
        p[47] = 40; // longer than the room left by the MAC
        assert_eq!(check_padding(&p, 20).0, 0);
    }
}
