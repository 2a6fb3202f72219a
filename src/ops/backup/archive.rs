//! The payload inside the sealed container: a gzip-compressed tar holding exactly two
//! regular files, `manifest.json` first and then the snapshot it describes. Unpacking
//! streams the snapshot to a file while hashing it, checks it against the manifest,
//! then reads the payload to its very end so that every sealed chunk (and the final
//! one) has been authenticated before the caller uses anything.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::container::OpenReader;
use super::manifest::Manifest;
use super::BackupError;

/// The manifest's name inside the payload.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The largest manifest accepted.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// SHA-256 (hex) and length of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = BufReader::new(File::open(path).map_err(|e| BackupError::io(path, e))?);
    let mut hasher = HashingWriter::new(io::sink());
    let bytes = io::copy(&mut file, &mut hasher).map_err(|e| BackupError::io(path, e))?;
    Ok((bytes, hasher.hex()))
}

/// Writes the payload (gzip of tar: manifest, snapshot) into `out` and returns it.
pub fn pack<W: Write>(
    out: W,
    manifest: &Manifest,
    snapshot: &Path,
    progress: &ProgressBar,
) -> Result<W, BackupError> {
    let json = manifest.to_json()?;
    let mtime = u64::try_from(manifest.created_at.timestamp()).unwrap_or(0);
    let mut builder = tar::Builder::new(GzEncoder::new(out, Compression::default()));
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_size(json.len() as u64);
    builder
        .append_data(&mut header, MANIFEST_FILE, json.as_slice())
        .map_err(|e| BackupError::io("the backup payload", e))?;

    let file = File::open(snapshot).map_err(|e| BackupError::io(snapshot, e))?;
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_size(manifest.snapshot.bytes);
    let reader = progress.wrap_read(BufReader::new(file));
    builder
        .append_data(&mut header, &manifest.snapshot.file, reader)
        .map_err(|e| BackupError::io(snapshot, e))?;
    let gz = builder
        .into_inner()
        .map_err(|e| BackupError::io("the backup payload", e))?;
    gz.finish()
        .map_err(|e| BackupError::io("the backup payload", e))
}

/// Reads the whole payload from `reader`: returns the manifest after writing the
/// snapshot to `dest` (created, mode 0600) and checking its size and SHA-256. Any
/// failure of the container (tampering, truncation, wrong key) is returned as such.
pub fn unpack<R: Read>(reader: OpenReader<R>, dest: &Path) -> Result<Manifest, BackupError> {
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let outcome = read_entries(&mut archive, dest);
    let mut gz = archive.into_inner();
    let outcome = outcome.and_then(|manifest| {
        io::copy(&mut gz, &mut io::sink()).map_err(payload_error)?;
        Ok(manifest)
    });
    let mut reader = gz.into_inner();
    let outcome = outcome.and_then(|manifest| {
        let extra = io::copy(&mut reader, &mut io::sink()).map_err(payload_error)?;
        if extra > 0 {
            return Err(BackupError::Malformed(format!(
                "{extra} bytes follow the archive in the payload"
            )));
        }
        if !reader.is_finished() {
            return Err(BackupError::Truncated);
        }
        Ok(manifest)
    });
    match reader.take_fault() {
        Some(fault) => Err(fault),
        None => outcome,
    }
}

fn payload_error(e: io::Error) -> BackupError {
    BackupError::Malformed(format!("the payload is not a valid archive: {e}"))
}

fn read_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    dest: &Path,
) -> Result<Manifest, BackupError> {
    let mut manifest: Option<Manifest> = None;
    let mut snapshot_seen = false;
    for entry in archive.entries().map_err(payload_error)? {
        let mut entry = entry.map_err(payload_error)?;
        let name = entry
            .path()
            .map_err(payload_error)?
            .to_string_lossy()
            .into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BackupError::Malformed(format!(
                "payload entry {name:?} is not a regular file"
            )));
        }
        match &manifest {
            None if name == MANIFEST_FILE => {
                if entry.size() > MAX_MANIFEST_BYTES {
                    return Err(BackupError::Malformed("manifest.json is too large".into()));
                }
                let mut json = Vec::new();
                entry.read_to_end(&mut json).map_err(payload_error)?;
                manifest = Some(Manifest::from_json(&json)?);
            }
            Some(m) if name == m.snapshot.file && !snapshot_seen => {
                let (bytes, sha256) = write_hashed(&mut entry, dest)?;
                m.check_snapshot(bytes, &sha256)?;
                snapshot_seen = true;
            }
            _ => {
                return Err(BackupError::Malformed(format!(
                    "unexpected payload entry {name:?}"
                )))
            }
        }
    }
    match manifest {
        Some(m) if snapshot_seen => Ok(m),
        Some(_) => Err(BackupError::Malformed("the payload has no snapshot".into())),
        None => Err(BackupError::Malformed("the payload has no manifest".into())),
    }
}

fn write_hashed(source: &mut impl Read, dest: &Path) -> Result<(u64, String), BackupError> {
    let file = create_private(dest)?;
    let mut writer = HashingWriter::new(BufWriter::new(file));
    let bytes = io::copy(source, &mut writer).map_err(payload_error)?;
    let sha256 = writer.hex();
    let file = writer
        .inner
        .into_inner()
        .map_err(|e| BackupError::io(dest, e.into_error()))?;
    file.sync_all().map_err(|e| BackupError::io(dest, e))?;
    Ok((bytes, sha256))
}

/// Creates a new file only its owner may read (it holds the business's data).
pub fn create_private(path: &Path) -> Result<File, BackupError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| BackupError::io(path, e))
}

/// Passes writes through while hashing them.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
