//! Record protection (RFC 5246 section 6.2, RFC 8446 section 5): one object per direction holds
//! the keys and the sequence number, seals a whole write into consecutive records in one call and
//! opens every complete record of a receive buffer in one call, with the GIL released.

use crate::buffer::Borrowed;
use crate::cbc::{CbcCipher, MacHash};
use crate::ffi::AeadSealingKey;
use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::ops::Range;

/// legacy_record_version of every protected record, TLS 1.2 and 1.3 alike.
pub const RECORD_VERSION: u16 = 0x0303;
pub const MAX_FRAGMENT: usize = 1 << 14;
pub const HEADER_LEN: usize = 5;
const TAG_LEN: usize = 16;
const CHANGE_CIPHER_SPEC: u8 = 20;
pub const APPLICATION_DATA: u8 = 23;

create_exception!(
    _core,
    RecordError,
    PyValueError,
    "A record could not be sealed or opened; args[0] names the TLS alert to send."
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Any decryption failure: bad tag, bad MAC, bad padding, impossible length.
    BadRecordMac,
    RecordOverflow,
    ProtocolVersion,
    /// TLS 1.3: a protected record without a content type, or a protected change_cipher_spec.
    UnexpectedMessage,
    SequenceExhausted,
}

impl Error {
    pub fn alert(self) -> &'static str {
        match self {
            Error::BadRecordMac => "bad_record_mac",
            Error::RecordOverflow => "record_overflow",
            Error::ProtocolVersion => "protocol_version",
            Error::UnexpectedMessage => "unexpected_message",
            Error::SequenceExhausted => "internal_error",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Error::BadRecordMac => "decryption failed or bad record mac",
            Error::RecordOverflow => "record too long",
            Error::ProtocolVersion => "wrong record version",
            Error::UnexpectedMessage => "protected record without a content type",
            Error::SequenceExhausted => "record sequence number exhausted",
        }
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        RecordError::new_err((e.alert(), e.message()))
    }
}

enum NonceKind {
    /// TLS 1.2 AES-GCM (RFC 5288 section 3): 4-byte salt || 8-byte explicit nonce, sent.
    Explicit([u8; 4]),
    /// ChaCha20-Poly1305 in TLS 1.2 (RFC 7905 section 2) and every TLS 1.3 AEAD (RFC 8446
    /// 5.3): the 12-byte IV XOR the padded sequence number, not sent.
    Xor([u8; 12]),
}

enum Protection {
    /// `key` opens; `sealer` seals from the caller's buffer straight into the output.
    Aead { key: LessSafeKey, sealer: AeadSealingKey, nonce: NonceKind },
    Cbc(Box<CbcCipher>),
}

/// The keys and sequence number of one direction.
pub struct RecordCipher {
    protection: Protection,
    tls13: bool,
    seq: u64,
}

fn fixed<const N: usize>(iv: &[u8], what: &str) -> Result<[u8; N], String> {
    iv.try_into().map_err(|_| format!("{what} must be {N} bytes, not {}", iv.len()))
}

impl RecordCipher {
    /// `cipher` is the bulk part of a suite name: AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305,
    /// or AES_{128,256}_CBC_{SHA,SHA256,SHA384} (TLS 1.2 only).
    pub fn new(cipher: &str, key: &[u8], iv: &[u8], mac_key: &[u8], tls13: bool, encrypt_then_mac: bool, seq: u64) -> Result<Self, String> {
        let aead_alg = match cipher {
            "AES_128_GCM" => Some(&aead::AES_128_GCM),
            "AES_256_GCM" => Some(&aead::AES_256_GCM),
            "CHACHA20_POLY1305" => Some(&aead::CHACHA20_POLY1305),
            _ => None,
        };
        let protection = if let Some(alg) = aead_alg {
            if !mac_key.is_empty() || encrypt_then_mac {
                return Err(format!("{cipher} takes no MAC key and no encrypt-then-MAC"));
            }
            let sealer = AeadSealingKey::new(cipher, key).ok_or_else(|| format!("{cipher} needs a {}-byte key", alg.key_len()))?;
            let key = UnboundKey::new(alg, key).map_err(|_| format!("{cipher} needs a {}-byte key", alg.key_len()))?;
            let nonce = if tls13 || cipher == "CHACHA20_POLY1305" {
                NonceKind::Xor(fixed(iv, "the IV")?)
            } else {
                NonceKind::Explicit(fixed(iv, "the GCM salt")?)
            };
            Protection::Aead { key: LessSafeKey::new(key), sealer, nonce }
        } else {
            let (aes, mac) = cipher
                .strip_prefix("AES_")
                .and_then(|rest| rest.split_once("_CBC_"))
                .ok_or_else(|| format!("unknown cipher {cipher:?}"))?;
            let mac = MacHash::from_name(mac).ok_or_else(|| format!("unknown MAC in {cipher:?}"))?;
            if tls13 {
                return Err("TLS 1.3 has no CBC ciphers".into());
            }
            let key_len = match aes {
                "128" => 16,
                "256" => 32,
                _ => return Err(format!("unknown cipher {cipher:?}")),
            };
            if key.len() != key_len || !iv.is_empty() || mac_key.len() != mac.mac_len() {
                return Err(format!(
                    "{cipher} needs a {key_len}-byte key, a {}-byte MAC key and no IV (each record carries its own)",
                    mac.mac_len()
                ));
            }
            Protection::Cbc(Box::new(CbcCipher::new(mac, key, mac_key, encrypt_then_mac).expect("lengths checked")))
        };
        Ok(RecordCipher { protection, tls13, seq })
    }

    fn nonce(&self, nonce: &NonceKind) -> [u8; 12] {
        let seq = self.seq.to_be_bytes();
        let mut n = [0u8; 12];
        match nonce {
            NonceKind::Explicit(salt) => {
                n[..4].copy_from_slice(salt);
                n[4..].copy_from_slice(&seq);
            }
            NonceKind::Xor(iv) => {
                n = *iv;
                for (a, b) in n[4..].iter_mut().zip(seq) {
                    *a ^= b;
                }
            }
        }
        n
    }

    /// The additional data of a TLS 1.2 record: seq_num, type, version, length (RFC 5246 6.2.3.3).
    fn tls12_aad(&self, content_type: u8, length: usize) -> [u8; 13] {
        let mut ad = [0u8; 13];
        ad[..8].copy_from_slice(&self.seq.to_be_bytes());
        ad[8] = content_type;
        ad[9..11].copy_from_slice(&RECORD_VERSION.to_be_bytes());
        ad[11..].copy_from_slice(&(length as u16).to_be_bytes());
        ad
    }

    /// The length of the record sealed from a fragment of `len` bytes.
    fn record_len(&self, len: usize) -> usize {
        HEADER_LEN
            + match &self.protection {
                Protection::Aead { nonce: NonceKind::Explicit(_), .. } => 8 + len + TAG_LEN,
                Protection::Aead { .. } => len + usize::from(self.tls13) + TAG_LEN,
                Protection::Cbc(cbc) => cbc.body_len(len),
            }
    }

    /// The total length `seal` will produce, or an error if the sequence numbers would run out
    /// (they never wrap, RFC 5246 6.1; u64::MAX itself is never used).
    pub fn sealed_len(&self, data_len: usize, max_fragment: usize) -> Result<usize, Error> {
        let count = data_len.div_ceil(max_fragment);
        if self.seq.checked_add(count as u64).is_none() {
            return Err(Error::SequenceExhausted);
        }
        let full = data_len / max_fragment;
        let last = data_len % max_fragment;
        Ok(full * self.record_len(max_fragment) + if last > 0 { self.record_len(last) } else { 0 })
    }

    /// Seals `data` as records of at most `max_fragment` bytes of plaintext each into `out`,
    /// which is exactly `sealed_len(data.len(), max_fragment)` bytes.
    pub fn seal_into(&mut self, content_type: u8, data: &[u8], max_fragment: usize, out: &mut [u8]) {
        let mut pos = 0;
        for fragment in data.chunks(max_fragment) {
            let len = self.record_len(fragment.len());
            self.seal_record(content_type, fragment, &mut out[pos..pos + len]);
            pos += len;
            self.seq += 1;
        }
        debug_assert_eq!(pos, out.len());
    }

    fn seal_record(&self, content_type: u8, fragment: &[u8], out: &mut [u8]) {
        let body_len = out.len() - HEADER_LEN;
        let (header, body) = out.split_at_mut(HEADER_LEN);
        header[0] = if self.tls13 { APPLICATION_DATA } else { content_type };
        header[1..3].copy_from_slice(&RECORD_VERSION.to_be_bytes());
        header[3..5].copy_from_slice(&(body_len as u16).to_be_bytes());
        match &self.protection {
            Protection::Aead { sealer, nonce, .. } => {
                let explicit = if let NonceKind::Explicit(_) = nonce { 8 } else { 0 };
                body[..explicit].copy_from_slice(&self.seq.to_be_bytes()[..explicit]);
                let (sealed, tag_out) = body[explicit..].split_at_mut(fragment.len());
                if self.tls13 {
                    // TLSInnerPlaintext: content || type, no padding; the AAD is the header.
                    sealer.seal(&self.nonce(nonce), header, fragment, &[content_type], sealed, tag_out);
                } else {
                    let aad = self.tls12_aad(content_type, fragment.len());
                    sealer.seal(&self.nonce(nonce), &aad, fragment, &[], sealed, tag_out);
                }
            }
            Protection::Cbc(cbc) => cbc.seal_into(self.seq, content_type, RECORD_VERSION, fragment, body),
        }
    }

    #[cfg(test)]
    fn seal(&mut self, content_type: u8, data: &[u8], max_fragment: usize) -> Result<Vec<u8>, Error> {
        let mut out = vec![0u8; self.sealed_len(data.len(), max_fragment)?];
        self.seal_into(content_type, data, max_fragment, &mut out);
        Ok(out)
    }

    /// Opens the complete records at the start of `buf` in place. The plaintext of the first
    /// stays where it is, that of the records after it is moved up behind it, so the plaintext
    /// of consecutive application data records is one run, `buf[app_start..app_end]`. The
    /// batch ends after `want` bytes of it, at an incomplete record, or after the first record
    /// that is not application data (it may change the state), whose plaintext follows at
    /// `buf[app_end..end]`. A bad record after good ones ends the batch without an error: it is
    /// still there for the next call to report. `scratch` is reused by the CBC suites.
    pub fn open_in_place(&mut self, buf: &mut [u8], want: usize, scratch: &mut Vec<u8>) -> Result<Opened, Error> {
        let mut opened = Opened::default();
        while buf.len() - opened.used >= HEADER_LEN {
            let (content_type, (length, plain)) = match self.open_record(&mut buf[opened.used..], scratch) {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) if opened.used == 0 => return Err(e),
                Err(_) => break,
            };
            let range = opened.used + plain.start..opened.used + plain.end;
            let at = if opened.used == 0 { range.start } else { opened.end };
            if opened.used == 0 {
                opened.app_start = at;
            } else {
                buf.copy_within(range.clone(), at);
            }
            opened.end = at + range.len();
            opened.used += length;
            if content_type != APPLICATION_DATA {
                opened.app_end = at;
                opened.control = Some(content_type);
                break;
            }
            opened.app_end = opened.end;
            opened.app_records += 1;
            if opened.app_end - opened.app_start >= want {
                break;
            }
        }
        Ok(opened)
    }

    /// The longest protected record body: RFC 5246 6.2.3, 2^14 + 2048 bytes; RFC 8446 5.2,
    /// 2^14 + 256.
    pub fn max_record_length(&self) -> usize {
        MAX_FRAGMENT + if self.tls13 { 256 } else { 2048 }
    }

    /// Whether a record's header hides its content type (TLS 1.3, RFC 8446 5.2).
    pub fn hides_content_type(&self) -> bool {
        self.tls13
    }

    /// Opens the record at the start of `buf` in place: `None` if it is incomplete, else its
    /// content type, its length and where its plaintext now is.
    fn open_record(&mut self, buf: &mut [u8], scratch: &mut Vec<u8>) -> Result<Option<(u8, (usize, Range<usize>))>, Error> {
        let outer_type = buf[0];
        let version = u16::from_be_bytes([buf[1], buf[2]]);
        let length = u16::from_be_bytes([buf[3], buf[4]]) as usize;
        if version != RECORD_VERSION {
            return Err(Error::ProtocolVersion);
        }
        if length > self.max_record_length() {
            return Err(Error::RecordOverflow);
        }
        if buf.len() < HEADER_LEN + length {
            return Ok(None);
        }
        let used = HEADER_LEN + length;
        if self.tls13 && outer_type == CHANGE_CIPHER_SPEC {
            // RFC 8446 5: compatibility change_cipher_spec records are never protected;
            // the caller decides whether one is allowed here.
            return Ok(Some((CHANGE_CIPHER_SPEC, (used, HEADER_LEN..used))));
        }
        if self.tls13 && outer_type != APPLICATION_DATA {
            return Err(Error::UnexpectedMessage);
        }
        if self.seq == u64::MAX {
            return Err(Error::SequenceExhausted);
        }
        let (header, body) = buf[..used].split_at_mut(HEADER_LEN);
        let (content_type, plain) = self.open_body(header, body, scratch)?;
        if plain.len() > MAX_FRAGMENT {
            return Err(Error::RecordOverflow);
        }
        self.seq += 1;
        Ok(Some((content_type, (used, HEADER_LEN + plain.start..HEADER_LEN + plain.end))))
    }

    /// Decrypts one record body in place; returns its content type and where in `body` its
    /// plaintext is.
    fn open_body(&self, header: &[u8], body: &mut [u8], scratch: &mut Vec<u8>) -> Result<(u8, Range<usize>), Error> {
        let outer_type = header[0];
        match &self.protection {
            Protection::Aead { key, nonce, .. } => {
                let explicit = if let NonceKind::Explicit(_) = nonce { 8 } else { 0 };
                if body.len() < explicit + TAG_LEN {
                    return Err(Error::BadRecordMac);
                }
                let mut nonce_bytes = self.nonce(nonce);
                if explicit > 0 {
                    nonce_bytes[4..].copy_from_slice(&body[..8]);
                }
                let plain_len = body.len() - explicit - TAG_LEN;
                let opened = if self.tls13 {
                    key.open_in_place(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(header), &mut body[explicit..])
                } else {
                    let aad = self.tls12_aad(outer_type, plain_len);
                    key.open_in_place(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(aad), &mut body[explicit..])
                };
                opened.map_err(|_| Error::BadRecordMac)?;
                if !self.tls13 {
                    return Ok((outer_type, explicit..explicit + plain_len));
                }
                // TLSInnerPlaintext, padding included, is at most 2^14 + 1 bytes (RFC 8446 5.4).
                if plain_len > MAX_FRAGMENT + 1 {
                    return Err(Error::RecordOverflow);
                }
                // Strip the zero padding; the last nonzero byte is the type.
                let Some(type_at) = body[..plain_len].iter().rposition(|&b| b != 0) else {
                    return Err(Error::UnexpectedMessage);
                };
                let content_type = body[type_at];
                if content_type == CHANGE_CIPHER_SPEC {
                    return Err(Error::UnexpectedMessage); // never protected (RFC 8446 5)
                }
                Ok((content_type, 0..type_at))
            }
            Protection::Cbc(cbc) => {
                scratch.clear();
                cbc.open_into(self.seq, outer_type, RECORD_VERSION, body, scratch).map_err(|_| Error::BadRecordMac)?;
                body[..scratch.len()].copy_from_slice(scratch);
                Ok((outer_type, 0..scratch.len()))
            }
        }
    }
}

/// What `RecordCipher::open_in_place` did (offsets into the buffer it was given).
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Opened {
    pub app_start: usize,
    pub app_end: usize,
    pub app_records: usize,
    /// The content type of the record that ended the batch, if it is not application data.
    pub control: Option<u8>,
    pub end: usize,
    pub used: usize,
}

fn new_cipher(cipher: &str, key: &[u8], iv: &[u8], mac_key: &[u8], tls13: bool, encrypt_then_mac: bool, sequence_number: u64) -> PyResult<RecordCipher> {
    RecordCipher::new(cipher, key, iv, mac_key, tls13, encrypt_then_mac, sequence_number).map_err(PyValueError::new_err)
}

fn check_fragment(max_fragment: usize) -> PyResult<()> {
    if max_fragment == 0 || max_fragment > MAX_FRAGMENT {
        return Err(PyValueError::new_err("max_fragment must be between 1 and 16384"));
    }
    Ok(())
}

/// Protects outgoing records.
#[pyclass(module = "ferrotls._core")]
pub struct RecordSealer(RecordCipher);

impl RecordSealer {
    /// The cipher, for a writer that seals records itself.
    pub fn cipher(&mut self) -> &mut RecordCipher {
        &mut self.0
    }
}

#[pymethods]
impl RecordSealer {
    #[new]
    #[pyo3(signature = (cipher, key, iv, mac_key = b"".as_slice(), *, tls13 = false, encrypt_then_mac = false, sequence_number = 0))]
    fn new(cipher: &str, key: &[u8], iv: &[u8], mac_key: &[u8], tls13: bool, encrypt_then_mac: bool, sequence_number: u64) -> PyResult<Self> {
        Ok(RecordSealer(new_cipher(cipher, key, iv, mac_key, tls13, encrypt_then_mac, sequence_number)?))
    }

    /// All the records for `data`, in one bytes object.
    #[pyo3(signature = (content_type, data, max_fragment = MAX_FRAGMENT))]
    fn seal<'py>(&mut self, py: Python<'py>, content_type: u8, data: &Bound<'py, PyAny>, max_fragment: usize) -> PyResult<Bound<'py, PyBytes>> {
        check_fragment(max_fragment)?;
        let input = Borrowed::readable(data)?;
        let cipher = &mut self.0;
        let total = cipher.sealed_len(input.as_slice().len(), max_fragment)?;
        // The records are written straight into the new bytes object, with the GIL released:
        // the object is not yet visible to any other thread.
        let data = input.as_slice();
        PyBytes::new_with(py, total, |out| {
            py.detach(|| cipher.seal_into(content_type, data, max_fragment, out));
            Ok(())
        })
    }

    /// How many bytes `seal_into` writes for `length` bytes of data.
    #[pyo3(signature = (length, max_fragment = MAX_FRAGMENT))]
    fn sealed_len(&self, length: usize, max_fragment: usize) -> PyResult<usize> {
        check_fragment(max_fragment)?;
        Ok(self.0.sealed_len(length, max_fragment)?)
    }

    /// Seals `data` into the writable buffer `out` from offset `at`, with the GIL released;
    /// returns where the records end. ValueError if they do not fit.
    #[pyo3(signature = (content_type, data, out, at = 0, max_fragment = MAX_FRAGMENT))]
    fn seal_into(&mut self, py: Python<'_>, content_type: u8, data: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>, at: usize, max_fragment: usize) -> PyResult<usize> {
        check_fragment(max_fragment)?;
        let input = Borrowed::readable(data)?;
        let mut output = Borrowed::writable(out)?;
        let cipher = &mut self.0;
        let end = at.checked_add(cipher.sealed_len(input.as_slice().len(), max_fragment)?);
        let target = end.and_then(|end| output.as_mut_slice().get_mut(at..end)).ok_or_else(|| PyValueError::new_err("the output buffer is too small"))?;
        let data = input.as_slice();
        py.detach(|| cipher.seal_into(content_type, data, max_fragment, target));
        Ok(end.unwrap_or_default())
    }

    #[getter]
    fn sequence_number(&self) -> u64 {
        self.0.seq
    }
}

/// Opens incoming records.
#[pyclass(module = "ferrotls._core")]
pub struct RecordOpener {
    cipher: RecordCipher,
    /// Reused by the CBC suites and by `open`.
    scratch: Vec<u8>,
    copy: Vec<u8>,
}

impl RecordOpener {
    /// The cipher and its scratch space, for a reader that opens records itself.
    pub fn parts(&mut self) -> (&mut RecordCipher, &mut Vec<u8>) {
        (&mut self.cipher, &mut self.scratch)
    }
}

#[pymethods]
impl RecordOpener {
    #[new]
    #[pyo3(signature = (cipher, key, iv, mac_key = b"".as_slice(), *, tls13 = false, encrypt_then_mac = false, sequence_number = 0))]
    fn new(cipher: &str, key: &[u8], iv: &[u8], mac_key: &[u8], tls13: bool, encrypt_then_mac: bool, sequence_number: u64) -> PyResult<Self> {
        let cipher = new_cipher(cipher, key, iv, mac_key, tls13, encrypt_then_mac, sequence_number)?;
        Ok(RecordOpener { cipher, scratch: Vec::new(), copy: Vec::new() })
    }

    /// Opens the complete records in the writable buffer `buf[start:end]` in place, with the
    /// GIL released, stopping once `want` bytes of application data are open. Returns
    /// (app_start, app_end, content_type, end, used): the application data is
    /// `buf[app_start:app_end]`; if a record of another type ended the batch, content_type is
    /// its type (else 0) and its plaintext is `buf[app_end:end]`; `used` bytes of records were
    /// consumed.
    fn open_in_place(&mut self, py: Python<'_>, buf: &Bound<'_, PyAny>, start: usize, end: usize, want: usize) -> PyResult<(usize, usize, u8, usize, usize)> {
        let mut buffer = Borrowed::writable(buf)?;
        let region = buffer.as_mut_slice().get_mut(start..end).ok_or_else(|| PyValueError::new_err("start:end is outside the buffer"))?;
        let RecordOpener { cipher, scratch, .. } = self;
        let opened = py.detach(|| cipher.open_in_place(region, want, scratch))?;
        Ok((start + opened.app_start, start + opened.app_end, opened.control.unwrap_or(0), start + opened.end, opened.used))
    }

    /// ([(content_type, plaintext), ...], bytes consumed) for the complete records in
    /// `data[start:]`: the application data merged, then the record of another type that ended
    /// the batch, if any.
    #[pyo3(signature = (data, start = 0))]
    fn open<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyAny>, start: usize) -> PyResult<(Bound<'py, PyList>, usize)> {
        let input = Borrowed::readable(data)?;
        let source = input.as_slice().get(start..).ok_or_else(|| PyValueError::new_err("start is past the end of data"))?;
        let RecordOpener { cipher, scratch, copy } = self;
        copy.clear();
        copy.extend_from_slice(source);
        let opened = py.detach(|| cipher.open_in_place(copy, usize::MAX, scratch))?;
        let mut items = Vec::new();
        if opened.app_records > 0 {
            items.push((APPLICATION_DATA, PyBytes::new(py, &copy[opened.app_start..opened.app_end])));
        }
        if let Some(content_type) = opened.control {
            items.push((content_type, PyBytes::new(py, &copy[opened.app_end..opened.end])));
        }
        Ok((PyList::new(py, items)?, opened.used))
    }

    #[getter]
    fn sequence_number(&self) -> u64 {
        self.cipher.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The AEADs the record layer runs on: NIST GCM test cases 4 and 16 (McGrew and Viega) and
    /// RFC 8439 section 2.8.2.
    #[test]
    fn aead_known_answers() {
        let gcm_p = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
        let cases: [(&'static aead::Algorithm, String, &str, &str, String, &str, &str); 3] = [
            (
                &aead::AES_128_GCM,
                "feffe9928665731c6d6a8f9467308308".into(),
                "cafebabefacedbaddecaf888",
                "feedfacedeadbeeffeedfacedeadbeefabaddad2",
                gcm_p.into(),
                "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
                "5bc94fbc3221a5db94fae95ae7121a47",
            ),
            (
                &aead::AES_256_GCM,
                "feffe9928665731c6d6a8f9467308308".repeat(2),
                "cafebabefacedbaddecaf888",
                "feedfacedeadbeeffeedfacedeadbeefabaddad2",
                gcm_p.into(),
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
                "76fc6ece0f4e1768cddf8853bb2d551b",
            ),
            (
                &aead::CHACHA20_POLY1305,
                "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f".into(),
                "070000004041424344454647",
                "50515253c0c1c2c3c4c5c6c7",
                b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
                "1ae10b594f09e26a7e902ecbd0600691",
            ),
        ];
        for (alg, key, nonce, aad, plain, cipher, tag) in cases {
            let key = LessSafeKey::new(UnboundKey::new(alg, &unhex(&key)).unwrap());
            let nonce: [u8; 12] = unhex(nonce).try_into().unwrap();
            let mut buf = unhex(&plain);
            let got = key
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(unhex(aad)), &mut buf)
                .unwrap();
            assert_eq!(buf, unhex(cipher));
            assert_eq!(got.as_ref(), &unhex(tag)[..]);
        }
    }

    #[test]
    fn sequence_numbers_never_wrap() {
        let mut sealer = RecordCipher::new("AES_128_GCM", &[1; 16], &[2; 4], b"", false, false, u64::MAX - 2).unwrap();
        let mut opener = RecordCipher::new("AES_128_GCM", &[1; 16], &[2; 4], b"", false, false, u64::MAX - 2).unwrap();
        assert!(matches!(sealer.seal(23, &[0; 40000], MAX_FRAGMENT), Err(Error::SequenceExhausted)));
        assert_eq!(sealer.seq, u64::MAX - 2);
        let records = sealer.seal(23, &[7; 20000], MAX_FRAGMENT).unwrap();
        assert_eq!(sealer.seq, u64::MAX);
        assert!(matches!(sealer.seal(23, b"x", MAX_FRAGMENT), Err(Error::SequenceExhausted)));
        let mut buf = records.clone();
        let opened = opener.open_in_place(&mut buf, usize::MAX, &mut Vec::new()).unwrap();
        let start = 5 + 8;
        assert_eq!(opened, Opened { app_start: start, app_end: start + 20000, app_records: 2, control: None, end: start + 20000, used: records.len() });
        assert_eq!(buf[start..start + 20000], [7; 20000]);
    }
}
