//! The `.arobak` container: a fixed header, then the payload sealed in chunks.
//!
//! ```text
//! header (40 bytes, big-endian integers)
//!   magic      8   "ARO-BAK\0"
//!   version    2   1
//!   flags      2   0 (anything else is refused)
//!   key id     8   Key::id() of the master key (tells "wrong key" from "damaged")
//!   file id   16   random; salt of this file's key
//!   chunk size 4   plaintext bytes per chunk (1 MiB)
//! frames, until the final one
//!   kind       1   0 = more follow, 1 = final
//!   length     4   bytes of the sealed chunk
//!   sealed     n   crypto::seal(file key, plaintext, aad = header ‖ index u64 ‖ kind)
//! ```
//!
//! The file key is `master.derive("aro backup v1", file id)`, so no two files share a
//! key and nonces never repeat under one key in practice. Every chunk authenticates the
//! whole header, its own index and whether it is the last: a changed header byte,
//! reordered, dropped, duplicated or spliced chunks, a truncated file (no final chunk)
//! and bytes after the final chunk are all refused. Memory use is one chunk, whatever
//! the database size.

use std::io::{self, Read, Write};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;

use super::BackupError;
use crate::crypto::{self, CryptoError, Key, MasterKey, KEY_ID_LEN, SEAL_OVERHEAD};

/// The first bytes of every backup file.
pub const MAGIC: [u8; 8] = *b"ARO-BAK\0";
/// The container version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Plaintext bytes per sealed chunk.
pub const CHUNK_SIZE: u32 = 1 << 20;
/// The largest chunk size a reader accepts (bounds memory for a damaged header).
const MAX_CHUNK_SIZE: u32 = 64 << 20;
/// Length of the header.
pub const HEADER_LEN: usize = 8 + 2 + 2 + KEY_ID_LEN + 16 + 4;
/// HKDF purpose of the per-file key.
const KEY_PURPOSE: &str = "aro backup v1";

const KIND_MORE: u8 = 0;
const KIND_FINAL: u8 = 1;

/// The parsed header.
#[derive(Debug, Clone)]
struct Header {
    bytes: [u8; HEADER_LEN],
    chunk_size: u32,
}

impl Header {
    fn new(master: &MasterKey, chunk_size: u32) -> (Self, [u8; 16]) {
        let mut file_id = [0u8; 16];
        OsRng.fill_bytes(&mut file_id);
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        bytes[10..12].copy_from_slice(&0u16.to_be_bytes());
        bytes[12..20].copy_from_slice(&master.id());
        bytes[20..36].copy_from_slice(&file_id);
        bytes[36..40].copy_from_slice(&chunk_size.to_be_bytes());
        (Self { bytes, chunk_size }, file_id)
    }

    fn parse(bytes: [u8; HEADER_LEN], master: &MasterKey) -> Result<(Self, Key), BackupError> {
        if bytes[..8] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if version != FORMAT_VERSION {
            return Err(BackupError::UnsupportedVersion(version));
        }
        let flags = u16::from_be_bytes([bytes[10], bytes[11]]);
        if flags != 0 {
            return Err(BackupError::Malformed(format!(
                "unknown header flags {flags:#06x}"
            )));
        }
        let ours = master.id();
        if bytes[12..20] != ours {
            return Err(BackupError::WrongKey {
                file: hex::encode(&bytes[12..20]),
                ours: hex::encode(ours),
            });
        }
        let chunk_size = u32::from_be_bytes([bytes[36], bytes[37], bytes[38], bytes[39]]);
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(BackupError::Malformed(format!(
                "implausible chunk size {chunk_size}"
            )));
        }
        let key = master.derive(KEY_PURPOSE, &bytes[20..36]);
        Ok((Self { bytes, chunk_size }, key))
    }

    fn aad(&self, index: u64, kind: u8) -> Vec<u8> {
        let mut aad = Vec::with_capacity(HEADER_LEN + 9);
        aad.extend_from_slice(&self.bytes);
        aad.extend_from_slice(&index.to_be_bytes());
        aad.push(kind);
        aad
    }
}

/// Seals everything written to it into `inner`; call [`SealWriter::finish`] at the end
/// (a writer dropped without it leaves a file every reader refuses as truncated).
pub struct SealWriter<W: Write> {
    inner: W,
    header: Header,
    key: Key,
    buffer: Vec<u8>,
    index: u64,
}

impl<W: Write> SealWriter<W> {
    pub fn new(inner: W, master: &MasterKey) -> Result<Self, BackupError> {
        Self::with_chunk_size(inner, master, CHUNK_SIZE)
    }

    fn with_chunk_size(
        mut inner: W,
        master: &MasterKey,
        chunk_size: u32,
    ) -> Result<Self, BackupError> {
        let (header, file_id) = Header::new(master, chunk_size);
        let key = master.derive(KEY_PURPOSE, &file_id);
        inner
            .write_all(&header.bytes)
            .map_err(|e| BackupError::io("the backup file", e))?;
        Ok(Self {
            inner,
            key,
            buffer: Vec::with_capacity(chunk_size as usize),
            header,
            index: 0,
        })
    }

    fn emit(&mut self, kind: u8) -> io::Result<()> {
        let sealed = crypto::seal(&self.key, &self.buffer, &self.header.aad(self.index, kind))
            .map_err(io::Error::other)?;
        let len = u32::try_from(sealed.len()).map_err(io::Error::other)?;
        self.inner.write_all(&[kind])?;
        self.inner.write_all(&len.to_be_bytes())?;
        self.inner.write_all(&sealed)?;
        self.buffer.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the last chunk and returns the inner writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit(KIND_FINAL)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.header.chunk_size as usize - self.buffer.len();
        if room == 0 {
            self.emit(KIND_MORE)?;
            return self.write(data);
        }
        let taken = room.min(data.len());
        self.buffer.extend_from_slice(&data[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Opens a container read from `inner`, yielding the authenticated payload. Nothing is
/// returned from a chunk before it authenticates. The first failure is kept:
/// [`OpenReader::take_fault`] gives it back typed after the layers above (gzip, tar)
/// turned it into an `io::Error` of their own.
pub struct OpenReader<R: Read> {
    inner: R,
    header: Header,
    key: Key,
    plain: Vec<u8>,
    pos: usize,
    index: u64,
    finished: bool,
    fault: Option<BackupError>,
}

impl<R: Read> OpenReader<R> {
    /// Reads and checks the header: magic, version, flags, key id.
    pub fn new(mut inner: R, master: &MasterKey) -> Result<Self, BackupError> {
        let mut bytes = [0u8; HEADER_LEN];
        read_full(&mut inner, &mut bytes).map_err(|e| match e {
            Short::Eof(0) => BackupError::NotABackup,
            Short::Eof(_) => BackupError::Truncated,
            Short::Io(e) => BackupError::io("the backup file", e),
        })?;
        let (header, key) = Header::parse(bytes, master)?;
        Ok(Self {
            inner,
            header,
            key,
            plain: Vec::new(),
            pos: 0,
            index: 0,
            finished: false,
            fault: None,
        })
    }

    /// The failure that stopped reading, if any.
    pub fn take_fault(&mut self) -> Option<BackupError> {
        self.fault.take()
    }

    /// Whether the final chunk was read and nothing followed it.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn fail(&mut self, fault: BackupError) -> io::Error {
        let err = io::Error::new(io::ErrorKind::InvalidData, fault.to_string());
        self.fault.get_or_insert(fault);
        err
    }

    /// Reads, authenticates and decrypts the next chunk into `plain`.
    fn next_chunk(&mut self) -> Result<(), BackupError> {
        let mut frame = [0u8; 5];
        read_full(&mut self.inner, &mut frame).map_err(short_to_error)?;
        let kind = frame[0];
        if kind != KIND_MORE && kind != KIND_FINAL {
            return Err(BackupError::Malformed(format!(
                "chunk {} has unknown kind {kind}",
                self.index
            )));
        }
        let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        let max = self.header.chunk_size as usize + SEAL_OVERHEAD;
        if !(SEAL_OVERHEAD..=max).contains(&len) {
            return Err(BackupError::Malformed(format!(
                "chunk {} claims {len} bytes",
                self.index
            )));
        }
        let mut sealed = vec![0u8; len];
        read_full(&mut self.inner, &mut sealed).map_err(short_to_error)?;
        let plain =
            crypto::open(&self.key, &sealed, &self.header.aad(self.index, kind)).map_err(|e| {
                match e {
                    CryptoError::Authentication | CryptoError::UnsupportedVersion(_) => {
                        BackupError::Tampered { chunk: self.index }
                    }
                    other => BackupError::Key(other),
                }
            })?;
        if kind == KIND_MORE && plain.len() != self.header.chunk_size as usize {
            return Err(BackupError::Malformed(format!(
                "chunk {} is short",
                self.index
            )));
        }
        self.index += 1;
        self.plain = plain;
        self.pos = 0;
        if kind == KIND_FINAL {
            let mut probe = [0u8; 1];
            loop {
                match self.inner.read(&mut probe) {
                    Ok(0) => break,
                    Ok(_) => return Err(BackupError::TrailingData),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(BackupError::io("the backup file", e)),
                }
            }
            self.finished = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(fault) = &self.fault {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                fault.to_string(),
            ));
        }
        while self.pos == self.plain.len() {
            if self.finished {
                return Ok(0);
            }
            if let Err(fault) = self.next_chunk() {
                return Err(self.fail(fault));
            }
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

enum Short {
    /// End of input after this many bytes.
    Eof(usize),
    Io(io::Error),
}

fn short_to_error(short: Short) -> BackupError {
    match short {
        Short::Eof(_) => BackupError::Truncated,
        Short::Io(e) => BackupError::io("the backup file", e),
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), Short> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Err(Short::Eof(filled)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Short::Io(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_key(Key::from_bytes([byte; 32]))
    }

    fn sealed(payload: &[u8], chunk: u32) -> Vec<u8> {
        let mut writer = SealWriter::with_chunk_size(Vec::new(), &master(1), chunk).expect("new");
        writer.write_all(payload).expect("write");
        writer.finish().expect("finish")
    }

    fn open_all(file: &[u8], key: &MasterKey) -> Result<Vec<u8>, BackupError> {
        let mut reader = OpenReader::new(file, key)?;
        let mut out = Vec::new();
        match reader.read_to_end(&mut out) {
            Ok(_) if reader.is_finished() => Ok(out),
            Ok(_) => Err(BackupError::Truncated),
            Err(e) => Err(reader
                .take_fault()
                .unwrap_or_else(|| BackupError::io("test", e))),
        }
    }

    #[test]
    fn round_trips_across_chunk_boundaries() {
        for len in [0usize, 1, 63, 64, 65, 640, 1000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let file = sealed(&payload, 64);
            assert_eq!(&file[..8], &MAGIC);
            assert_eq!(
                open_all(&file, &master(1)).expect("opens"),
                payload,
                "{len}"
            );
        }
    }

    #[test]
    fn another_key_is_reported_as_such() {
        let file = sealed(b"payload", 64);
        assert!(matches!(
            open_all(&file, &master(2)),
            Err(BackupError::WrongKey { .. })
        ));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let payload: Vec<u8> = (0..300u32).map(|i| (i * 7 % 256) as u8).collect();
        let file = sealed(&payload, 100);
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x04;
            let err = open_all(&bad, &master(1)).expect_err("tampering must be refused");
            if i < 8 {
                assert!(matches!(err, BackupError::NotABackup), "byte {i}: {err}");
            }
        }
    }

    #[test]
    fn truncation_reordering_and_trailing_bytes_are_refused() {
        let payload = vec![9u8; 250];
        let file = sealed(&payload, 100);
        for cut in [HEADER_LEN, HEADER_LEN + 3, file.len() - 1] {
            assert!(
                matches!(
                    open_all(&file[..cut], &master(1)),
                    Err(BackupError::Truncated)
                ),
                "cut at {cut}"
            );
        }
        // Drop the final chunk exactly at a frame boundary: still truncated.
        let frame = 5 + 100 + SEAL_OVERHEAD;
        let two_frames = &file[..HEADER_LEN + 2 * frame];
        assert!(matches!(
            open_all(two_frames, &master(1)),
            Err(BackupError::Truncated)
        ));
        // Swap the first two chunks.
        let mut swapped = file[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(&file[HEADER_LEN + frame..HEADER_LEN + 2 * frame]);
        swapped.extend_from_slice(&file[HEADER_LEN..HEADER_LEN + frame]);
        swapped.extend_from_slice(&file[HEADER_LEN + 2 * frame..]);
        assert!(matches!(
            open_all(&swapped, &master(1)),
            Err(BackupError::Tampered { chunk: 0 })
        ));
        let mut longer = file.clone();
        longer.push(0);
        assert!(matches!(
            open_all(&longer, &master(1)),
            Err(BackupError::TrailingData)
        ));
        assert!(matches!(
            open_all(b"", &master(1)),
            Err(BackupError::NotABackup)
        ));
    }
}
