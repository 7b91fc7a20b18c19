//! Record protection (RFC 5246 section 6.2, RFC 8446 section 5): one object per direction holds
//! the keys and the sequence number, seals a whole write into consecutive records in one call and
//! opens every complete record of a receive buffer in one call, with the GIL released.

use crate::cbc::{CbcCipher, MacHash};
use crate::ffi::AeadSealingKey;
use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList, PyMemoryView};
use std::ops::Range;

/// legacy_record_version of every protected record, TLS 1.2 and 1.3 alike.
pub const RECORD_VERSION: u16 = 0x0303;
pub const MAX_FRAGMENT: usize = 1 << 14;
const HEADER_LEN: usize = 5;
const TAG_LEN: usize = 16;
const CHANGE_CIPHER_SPEC: u8 = 20;
const APPLICATION_DATA: u8 = 23;

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

/// Opened records: (content type, where its plaintext is in the output buffer) pairs.
pub type Segments = Vec<(u8, Range<usize>)>;

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

    /// Opens the complete records at the start of `buf`, their plaintexts into `out` (cleared
    /// first; reusing it across calls spares fresh pages). Returns (content type, range of
    /// `out`) pairs, consecutive application data merged into one, and the bytes consumed. It
    /// stops after the first record that is not application data, since that may change the
    /// state. A bad record after good ones ends the batch without an error; the next call
    /// reports it.
    pub fn open(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<(Segments, usize), Error> {
        out.clear();
        out.reserve(buf.len());
        let mut segments = Segments::new();
        let mut pos = 0;
        while buf.len() - pos >= HEADER_LEN {
            match self.open_record(&buf[pos..], out, &mut segments) {
                Ok(Some((used, content_type))) => {
                    pos += used;
                    if content_type != APPLICATION_DATA {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if segments.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok((segments, pos))
    }

    /// Opens one record at the start of `buf` onto `out`; `None` if it is incomplete.
    fn open_record(&mut self, buf: &[u8], out: &mut Vec<u8>, segments: &mut Segments) -> Result<Option<(usize, u8)>, Error> {
        let outer_type = buf[0];
        let version = u16::from_be_bytes([buf[1], buf[2]]);
        let length = u16::from_be_bytes([buf[3], buf[4]]) as usize;
        if version != RECORD_VERSION {
            return Err(Error::ProtocolVersion);
        }
        // RFC 5246 6.2.3: at most 2^14 + 2048 bytes; RFC 8446 5.2: at most 2^14 + 256.
        let max_length = MAX_FRAGMENT + if self.tls13 { 256 } else { 2048 };
        if length > max_length {
            return Err(Error::RecordOverflow);
        }
        if buf.len() < HEADER_LEN + length {
            return Ok(None);
        }
        let body = &buf[HEADER_LEN..HEADER_LEN + length];
        let used = HEADER_LEN + length;
        let start = out.len();
        if self.tls13 && outer_type == CHANGE_CIPHER_SPEC {
            // RFC 8446 5: compatibility change_cipher_spec records are never protected;
            // the caller decides whether one is allowed here.
            out.extend_from_slice(body);
            segments.push((CHANGE_CIPHER_SPEC, start..out.len()));
            return Ok(Some((used, CHANGE_CIPHER_SPEC)));
        }
        if self.tls13 && outer_type != APPLICATION_DATA {
            return Err(Error::UnexpectedMessage);
        }
        if self.seq == u64::MAX {
            return Err(Error::SequenceExhausted);
        }
        let content_type = match self.open_body(outer_type, body, out) {
            Ok(t) if out.len() - start <= MAX_FRAGMENT => t,
            failed => {
                out.truncate(start);
                return Err(failed.err().unwrap_or(Error::RecordOverflow));
            }
        };
        match segments.last_mut() {
            Some((APPLICATION_DATA, range)) if content_type == APPLICATION_DATA => range.end = out.len(),
            _ => segments.push((content_type, start..out.len())),
        }
        self.seq += 1;
        Ok(Some((used, content_type)))
    }

    /// TLS 1.2 AEAD: the plaintext lengths of the complete, well-formed application_data
    /// records at the start of `buf`, whose plaintext sizes the headers give exactly. Anything
    /// else ends the run and is left to `open`.
    pub fn application_data_run(&self, buf: &[u8]) -> Vec<usize> {
        let explicit = match &self.protection {
            Protection::Aead { nonce: NonceKind::Explicit(_), .. } => 8,
            Protection::Aead { .. } if !self.tls13 => 0,
            _ => return Vec::new(),
        };
        let mut run = Vec::new();
        let mut pos = 0;
        while buf.len() - pos >= HEADER_LEN {
            let header = &buf[pos..pos + HEADER_LEN];
            let length = u16::from_be_bytes([header[3], header[4]]) as usize;
            let complete = buf.len() - pos - HEADER_LEN >= length;
            let fits = length >= explicit + TAG_LEN && length - explicit - TAG_LEN <= MAX_FRAGMENT;
            let seq_left = u64::MAX - self.seq > run.len() as u64;
            if header[0] != APPLICATION_DATA || header[1..3] != RECORD_VERSION.to_be_bytes() || !complete || !fits || !seq_left {
                break;
            }
            run.push(length - explicit - TAG_LEN);
            pos += HEADER_LEN + length;
        }
        run
    }

    /// Opens the records `application_data_run` found, each straight from `buf` into its place
    /// in `out` (no copy in between). Stops at the first that fails to authenticate; returns
    /// how many opened and the bytes of `buf` they took.
    pub fn open_application_data_run(&mut self, buf: &[u8], run: &[usize], out: &mut [u8]) -> (usize, usize) {
        let Protection::Aead { key, nonce, .. } = &self.protection else { unreachable!("runs are AEAD only") };
        let explicit = if let NonceKind::Explicit(_) = nonce { 8 } else { 0 };
        let (mut pos, mut written) = (0, 0);
        for (opened, &plain_len) in run.iter().enumerate() {
            let body = &buf[pos + HEADER_LEN..pos + HEADER_LEN + explicit + plain_len + TAG_LEN];
            let mut nonce_bytes = self.nonce(nonce);
            if explicit > 0 {
                nonce_bytes[4..].copy_from_slice(&body[..explicit]);
            }
            let (ciphertext, tag) = body[explicit..].split_at(plain_len);
            let aad = self.tls12_aad(APPLICATION_DATA, plain_len);
            let target = &mut out[written..written + plain_len];
            if key.open_separate_gather(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(aad), ciphertext, tag, target).is_err() {
                return (opened, pos);
            }
            self.seq += 1;
            pos += HEADER_LEN + explicit + plain_len + TAG_LEN;
            written += plain_len;
        }
        (run.len(), pos)
    }

    /// Appends the plaintext of one record body to `out` and returns its content type.
    fn open_body(&self, outer_type: u8, body: &[u8], out: &mut Vec<u8>) -> Result<u8, Error> {
        let start = out.len();
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
                let aad: Vec<u8> = if self.tls13 {
                    let mut h = vec![outer_type];
                    h.extend_from_slice(&RECORD_VERSION.to_be_bytes());
                    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
                    h
                } else {
                    self.tls12_aad(outer_type, body.len() - explicit - TAG_LEN).to_vec()
                };
                out.extend_from_slice(&body[explicit..]);
                let plain_len = key
                    .open_in_place(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(aad), &mut out[start..])
                    .map_err(|_| Error::BadRecordMac)?
                    .len();
                out.truncate(start + plain_len);
                if !self.tls13 {
                    return Ok(outer_type);
                }
                // TLSInnerPlaintext, padding included, is at most 2^14 + 1 bytes (RFC 8446 5.4).
                if plain_len > MAX_FRAGMENT + 1 {
                    return Err(Error::RecordOverflow);
                }
                // Strip the zero padding; the last nonzero byte is the type.
                let inner = &out[start..];
                let Some(type_at) = inner.iter().rposition(|&b| b != 0) else {
                    return Err(Error::UnexpectedMessage);
                };
                let content_type = inner[type_at];
                if content_type == CHANGE_CIPHER_SPEC {
                    return Err(Error::UnexpectedMessage); // never protected (RFC 8446 5)
                }
                out.truncate(start + type_at);
                Ok(content_type)
            }
            Protection::Cbc(cbc) => {
                cbc.open_into(self.seq, outer_type, RECORD_VERSION, body, out).map_err(|_| Error::BadRecordMac)?;
                Ok(outer_type)
            }
        }
    }
}

/// A bytes-like argument, held so the GIL can be released while it is read.
struct Input(PyBackedBytes);

impl Input {
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(b) = obj.extract::<PyBackedBytes>() {
            return Ok(Input(b));
        }
        // memoryview and other buffers: bytes(obj) copies (the abi3 API has no buffer access
        // before Python 3.11).
        let view = PyMemoryView::from(obj)?; // TypeError for what is not a buffer
        let copied = obj.py().get_type::<PyBytes>().call1((view,))?;
        Ok(Input(copied.extract::<PyBackedBytes>()?))
    }

    fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

fn new_cipher(cipher: &str, key: &[u8], iv: &[u8], mac_key: &[u8], tls13: bool, encrypt_then_mac: bool, sequence_number: u64) -> PyResult<RecordCipher> {
    RecordCipher::new(cipher, key, iv, mac_key, tls13, encrypt_then_mac, sequence_number).map_err(PyValueError::new_err)
}

/// Protects outgoing records.
#[pyclass(module = "ferrotls._core")]
pub struct RecordSealer(RecordCipher);

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
        if max_fragment == 0 || max_fragment > MAX_FRAGMENT {
            return Err(PyValueError::new_err("max_fragment must be between 1 and 16384"));
        }
        let input = Input::new(data)?;
        let cipher = &mut self.0;
        let total = cipher.sealed_len(input.as_slice().len(), max_fragment)?;
        // The records are written straight into the new bytes object, with the GIL released:
        // the object is not yet visible to any other thread.
        PyBytes::new_with(py, total, |out| {
            py.detach(|| cipher.seal_into(content_type, input.as_slice(), max_fragment, out));
            Ok(())
        })
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
    /// Plaintext of the last batch, kept so its pages are reused.
    scratch: Vec<u8>,
}

#[pymethods]
impl RecordOpener {
    #[new]
    #[pyo3(signature = (cipher, key, iv, mac_key = b"".as_slice(), *, tls13 = false, encrypt_then_mac = false, sequence_number = 0))]
    fn new(cipher: &str, key: &[u8], iv: &[u8], mac_key: &[u8], tls13: bool, encrypt_then_mac: bool, sequence_number: u64) -> PyResult<Self> {
        let cipher = new_cipher(cipher, key, iv, mac_key, tls13, encrypt_then_mac, sequence_number)?;
        Ok(RecordOpener { cipher, scratch: Vec::new() })
    }

    /// ([(content_type, plaintext), ...], bytes consumed) for the complete records in
    /// `data[start:]` (an offset rather than a slice spares the caller a copy).
    #[pyo3(signature = (data, start = 0))]
    fn open<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyAny>, start: usize) -> PyResult<(Bound<'py, PyList>, usize)> {
        let input = Input::new(data)?;
        let buf = input.as_slice().get(start..).ok_or_else(|| PyValueError::new_err("start is past the end of data"))?;
        let RecordOpener { cipher, scratch } = self;
        let mut items = Vec::new();
        let mut used = 0;
        // The hot path: a run of TLS 1.2 AEAD application data decrypts straight into the bytes
        // object handed back, with the GIL released (the object is not yet visible elsewhere).
        let run = cipher.application_data_run(buf);
        if !run.is_empty() {
            let total: usize = run.iter().sum();
            let mut result = (0, 0);
            let plaintext = PyBytes::new_with(py, total, |out| {
                result = py.detach(|| cipher.open_application_data_run(buf, &run, out));
                Ok(())
            })?;
            let (opened, consumed) = result;
            if opened < run.len() {
                // A record failed: hand back the ones before it (the next call reports it).
                if opened == 0 {
                    return Err(Error::BadRecordMac.into());
                }
                let good: usize = run[..opened].iter().sum();
                let plaintext = PyBytes::new(py, &plaintext.as_bytes()[..good]);
                return Ok((PyList::new(py, [(APPLICATION_DATA, plaintext)])?, consumed));
            }
            items.push((APPLICATION_DATA, plaintext));
            used = consumed;
        }
        match py.detach(|| cipher.open(&buf[used..], scratch)) {
            Ok((segments, more)) => {
                items.extend(segments.into_iter().map(|(t, range)| (t, PyBytes::new(py, &scratch[range]))));
                used += more;
            }
            Err(e) if items.is_empty() => return Err(e.into()),
            Err(_) => {} // after good records: the next call reports it
        }
        Ok((PyList::new(py, items)?, used))
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
        let mut out = Vec::new();
        let (opened, used) = opener.open(&records, &mut out).unwrap();
        assert!(opened == vec![(23, 0..20000)] && out == vec![7; 20000] && used == records.len());
    }
}
