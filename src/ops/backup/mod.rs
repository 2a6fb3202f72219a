//! Encrypted backup and restore (SPEC §9, ADR 0006).
//!
//! A backup is one file, `aro-backup-<UTC time>.arobak`: the sealed container
//! (`container`) around a gzip tar (`archive`) of `manifest.json` (`manifest`) and a
//! consistent snapshot of the database, taken online while the daemon writes: `VACUUM
//! INTO` on SQLite (`sqlite`), `pg_dump` of an exported snapshot on PostgreSQL
//! (`postgres`). `retention` names the files and prunes old ones; `progress` draws bars
//! for the command line.
//!
//! Verifying and restoring read the whole file first: magic, key id, every chunk's
//! authentication tag, the snapshot's SHA-256 against the manifest, `PRAGMA
//! integrity_check` and the per-table row counts and checksums (SQLite) or `pg_restore
//! --list` (PostgreSQL). Only a file that passes all of that is restored: on SQLite into
//! a new file beside the live one, renamed over it; on PostgreSQL in one transaction.
//! Restoring needs the daemon stopped, and checks that it is.

mod archive;
mod container;
mod manifest;
mod postgres;
mod progress;
mod retention;
mod sqlite;

use std::fs;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use chrono::Utc;

pub use container::{CHUNK_SIZE, FORMAT_VERSION, HEADER_LEN, MAGIC};
pub use manifest::{Manifest, SnapshotBackend, SnapshotInfo, TableStat, MANIFEST_FORMAT};
pub use progress::Progress;
pub use retention::{backup_file_name, list_backups, prune_backups, FILE_PREFIX, FILE_SUFFIX};

use crate::config::{Config, DatabaseConfig, DatabaseUrl, Secret};
use crate::crypto::{CryptoError, MasterKey};
use crate::store::{migrations, Database, StoreError};
use container::{OpenReader, SealWriter};

/// How many backups the daily schedule keeps (SPEC §9: 30 days of daily backups).
pub const DEFAULT_KEEP: usize = 30;

/// Everything that can go wrong taking, verifying or restoring a backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Key(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not an ARO backup (the file does not start with the backup magic bytes)")]
    NotABackup,
    #[error("backup format version {0} is not supported by this aro (it reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    #[error(
        "the backup was sealed with a different master key (key id {file}, ours {ours}), \
         or its header is damaged"
    )]
    WrongKey { file: String, ours: String },
    #[error("the backup is damaged: {0}")]
    Malformed(String),
    #[error("the backup is truncated: it ends before its final chunk")]
    Truncated,
    #[error("chunk {chunk} of the backup failed authentication: the file was altered or damaged")]
    Tampered { chunk: u64 },
    #[error("the backup has data after its final chunk")]
    TrailingData,
    #[error("the snapshot does not match the manifest: expected {expected}, got {actual}")]
    ChecksumMismatch { expected: String, actual: String },
    #[error("the snapshot does not match the manifest: {}", .0.join("; "))]
    ManifestMismatch(Vec<String>),
    #[error("the snapshot fails its integrity check: {0}")]
    Integrity(String),
    #[error("the backup is of a {backup} database but this aro is configured for {configured}")]
    BackendMismatch { backup: String, configured: String },
    #[error(
        "the backup's schema has migration(s) {0} that this aro does not know; restore it \
         with the aro version that made it ({1}) or newer"
    )]
    SchemaTooNew(String, String),
    #[error("refusing to restore: {0}")]
    DatabaseInUse(String),
    #[error("{0} was not found; install the PostgreSQL client tools matching the server")]
    ToolMissing(String),
    #[error(
        "{tool} {found} is too old for this PostgreSQL (major version {needed}); install \
         postgresql-client-{needed} and put its bin directory first in PATH"
    )]
    ToolVersion {
        tool: String,
        found: String,
        needed: u32,
    },
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    #[error(
        "the restored database differs from the backup: {}; the previous contents are gone, \
         restore again or from another backup",
        .0.join("; ")
    )]
    RestoredMismatch(Vec<String>),
    #[error("{0} exists already; choose another name")]
    Exists(PathBuf),
    #[error("restore cancelled; nothing was changed")]
    Cancelled,
    #[error("backup task failed: {0}")]
    Task(String),
}

impl BackupError {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        BackupError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Whether the error means the backup file itself is unusable (damaged, tampered
    /// with, truncated, not a backup, or sealed under another key).
    pub fn is_bad_file(&self) -> bool {
        matches!(
            self,
            BackupError::NotABackup
                | BackupError::UnsupportedVersion(_)
                | BackupError::WrongKey { .. }
                | BackupError::Malformed(_)
                | BackupError::Truncated
                | BackupError::Tampered { .. }
                | BackupError::TrailingData
                | BackupError::ChecksumMismatch { .. }
                | BackupError::ManifestMismatch(_)
                | BackupError::Integrity(_)
        )
    }
}

/// Where `aro backup` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A directory: the file gets the standard name.
    Dir(PathBuf),
    /// This exact file (must not exist).
    File(PathBuf),
}

impl Destination {
    /// `--out`: a path ending in `.arobak` is a file, anything else a directory;
    /// nothing means `<data_dir>/backups`.
    pub fn from_arg(out: Option<PathBuf>, data_dir: &Path) -> Self {
        match out {
            None => Destination::Dir(default_dir(data_dir)),
            Some(path) if path.extension().is_some_and(|e| e == "arobak") && !path.is_dir() => {
                Destination::File(path)
            }
            Some(path) => Destination::Dir(path),
        }
    }

    /// The directory the backup lands in.
    pub fn dir(&self) -> PathBuf {
        match self {
            Destination::Dir(dir) => dir.clone(),
            Destination::File(file) => sqlite::parent_dir(file),
        }
    }
}

/// The default backup directory: `<data_dir>/backups`.
pub fn default_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

/// A backup written.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub path: PathBuf,
    /// Size of the backup file.
    pub bytes: u64,
    pub manifest: Manifest,
}

/// A restore done.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub manifest: Manifest,
    /// Where the replaced SQLite database was kept.
    pub previous: Option<PathBuf>,
    /// Things worth telling the operator.
    pub notes: Vec<String>,
}

/// A file removed when dropped (with SQLite's side files) unless kept.
struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    fn new(dir: &Path, label: &str) -> Self {
        Self {
            path: dir.join(format!(
                ".aro-{label}-{}.tmp",
                uuid::Uuid::new_v4().simple()
            )),
            armed: true,
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
            for suffix in ["-wal", "-shm", "-journal"] {
                let _ = fs::remove_file(sqlite::sidecar(&self.path, suffix));
            }
        }
    }
}

fn create_dir_private(dir: &Path) -> Result<(), BackupError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| BackupError::io(dir, e))
}

/// Takes a backup for the daemon's scheduler: same as `aro backup`, on the blocking
/// pool, without progress output. Does not prune; call [`prune_backups`] after.
pub async fn take_backup(
    db: &Database,
    database: &DatabaseConfig,
    key: &MasterKey,
    out_dir: &Path,
) -> Result<BackupReport, BackupError> {
    let db = db.clone();
    let database = database.clone();
    let key = key.clone();
    let dest = Destination::Dir(out_dir.to_path_buf());
    tokio::task::spawn_blocking(move || {
        create_backup(&db, &database, &key, &dest, &Progress::hidden())
    })
    .await
    .map_err(|e| BackupError::Task(e.to_string()))?
}

/// Takes a consistent snapshot of the live database (online) and writes it, sealed
/// under `key`, to `dest`. Blocking; for the command line and blocking tasks.
pub fn create_backup(
    db: &Database,
    database: &DatabaseConfig,
    key: &MasterKey,
    dest: &Destination,
    progress: &Progress,
) -> Result<BackupReport, BackupError> {
    let created_at = Utc::now();
    let dir = dest.dir();
    create_dir_private(&dir)?;
    if let Destination::File(file) = dest {
        if file.exists() {
            return Err(BackupError::Exists(file.clone()));
        }
    }
    // The plaintext snapshot stays beside the live SQLite file (no new exposure; the
    // output directory may be a mounted disk); a PostgreSQL dump has nowhere better.
    let scratch_dir = match &database.url {
        DatabaseUrl::Sqlite(live) => sqlite::parent_dir(live),
        DatabaseUrl::Postgres(_) => dir.clone(),
    };
    let scratch = TempPath::new(&scratch_dir, "snapshot");
    let spinner = progress.spinner("taking a consistent snapshot");
    let (backend, tables, migrations, server_version, dump_tool) = match &database.url {
        DatabaseUrl::Sqlite(_) => {
            sqlite::snapshot(db, scratch.path())?;
            spinner.set_message("counting and hashing tables");
            let facts = sqlite::inspect(scratch.path())?;
            (
                SnapshotBackend::Sqlite,
                facts.tables,
                facts.migrations,
                facts.server_version,
                None,
            )
        }
        DatabaseUrl::Postgres(url) => {
            let facts = postgres::dump(url, scratch.path(), &spinner)?;
            (
                SnapshotBackend::Postgres,
                facts.tables,
                facts.migrations,
                facts.server_version,
                Some(facts.dump_tool),
            )
        }
    };
    spinner.finish_and_clear();
    let (bytes, sha256) = archive::hash_file(scratch.path())?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        created_at,
        aro_version: env!("CARGO_PKG_VERSION").to_string(),
        backend,
        schema_version: migrations.last().cloned(),
        migrations,
        snapshot: SnapshotInfo {
            file: backend.snapshot_file().to_string(),
            bytes,
            sha256,
        },
        tables,
        server_version,
        dump_tool,
    };

    let partial = TempPath::new(&dir, "backup");
    let file = archive::create_private(partial.path())?;
    let bar = progress.bytes(bytes, "compressing and sealing");
    let sealer = SealWriter::new(BufWriter::new(file), key)?;
    let sealer = archive::pack(sealer, &manifest, scratch.path(), &bar)?;
    let file = sealer
        .finish()
        .and_then(|buffered| buffered.into_inner().map_err(|e| e.into_error()))
        .map_err(|e| BackupError::io(partial.path(), e))?;
    file.sync_all()
        .map_err(|e| BackupError::io(partial.path(), e))?;
    bar.finish_and_clear();
    drop(scratch);

    let size = file
        .metadata()
        .map_err(|e| BackupError::io(partial.path(), e))?
        .len();
    let path = publish(partial, dest, created_at)?;
    tracing::info!(path = %path.display(), bytes = size, "backup written");
    Ok(BackupReport {
        path,
        bytes: size,
        manifest,
    })
}

/// Gives the finished file its final name without ever replacing an existing file.
fn publish(
    partial: TempPath,
    dest: &Destination,
    created_at: chrono::DateTime<Utc>,
) -> Result<PathBuf, BackupError> {
    let candidates: Vec<PathBuf> = match dest {
        Destination::File(file) => vec![file.clone()],
        Destination::Dir(dir) => (1..=1000)
            .map(|seq| dir.join(backup_file_name(created_at, seq)))
            .collect(),
    };
    for candidate in &candidates {
        if link_no_clobber(partial.path(), candidate)? {
            drop(partial);
            if let Ok(handle) = fs::File::open(sqlite::parent_dir(candidate)) {
                let _ = handle.sync_all();
            }
            return Ok(candidate.clone());
        }
    }
    Err(BackupError::Exists(
        candidates.last().cloned().unwrap_or_default(),
    ))
}

/// Makes `dst` name the file at `src`, unless `dst` exists. A hard link where the
/// file system has them (atomic no-clobber), else a rename after checking.
fn link_no_clobber(src: &Path, dst: &Path) -> Result<bool, BackupError> {
    match fs::hard_link(src, dst) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) if dst.exists() => Ok(false),
        Err(_) => fs::rename(src, dst)
            .map(|()| true)
            .map_err(|e| BackupError::io(dst, e)),
    }
}

/// Decrypts `file`, checks every chunk and the snapshot's checksum, and writes the
/// snapshot to `snapshot_dest` (which must not exist). Returns the manifest.
pub fn open_backup(
    file: &Path,
    key: &MasterKey,
    snapshot_dest: &Path,
    progress: &Progress,
) -> Result<Manifest, BackupError> {
    if snapshot_dest.exists() {
        return Err(BackupError::Exists(snapshot_dest.to_path_buf()));
    }
    let handle = fs::File::open(file).map_err(|e| BackupError::io(file, e))?;
    let len = handle
        .metadata()
        .map_err(|e| BackupError::io(file, e))?
        .len();
    let bar = progress.bytes(len, "decrypting and checking");
    let reader = OpenReader::new(bar.wrap_read(BufReader::new(handle)), key)?;
    let result = archive::unpack(reader, snapshot_dest);
    bar.finish_and_clear();
    if result.is_err() {
        let _ = fs::remove_file(snapshot_dest);
    }
    result
}

/// Everything `verify` found.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub manifest: Manifest,
    /// The checks that passed, in order.
    pub checks: Vec<String>,
}

/// Reads and checks a whole backup without restoring it. The snapshot is unpacked to a
/// temporary file in `scratch_dir` and removed afterwards.
pub fn verify_backup(
    file: &Path,
    key: &MasterKey,
    scratch_dir: &Path,
    progress: &Progress,
) -> Result<VerifyReport, BackupError> {
    create_dir_private(scratch_dir)?;
    let scratch = TempPath::new(scratch_dir, "verify");
    let manifest = open_backup(file, key, scratch.path(), progress)?;
    let mut checks = vec![
        "header, key id and every chunk's authentication tag".to_string(),
        format!(
            "snapshot SHA-256 and size ({} bytes) match the manifest",
            manifest.snapshot.bytes
        ),
    ];
    let spinner = progress.spinner("checking the snapshot");
    match manifest.backend {
        SnapshotBackend::Sqlite => {
            let facts = sqlite::inspect(scratch.path())?;
            checks.push("SQLite PRAGMA integrity_check: ok".to_string());
            check_tables(&manifest, &facts.tables)?;
            checks.push(format!(
                "{} tables, {} rows: counts and content checksums match the manifest",
                manifest.tables.len(),
                manifest.total_rows()
            ));
        }
        SnapshotBackend::Postgres => {
            let tool = postgres::check_archive(scratch.path(), &manifest)?;
            checks.push(format!(
                "pg_restore {} reads the dump's table of contents",
                tool.version
            ));
        }
    }
    spinner.finish_and_clear();
    Ok(VerifyReport { manifest, checks })
}

fn check_tables(
    manifest: &Manifest,
    actual: &std::collections::BTreeMap<String, TableStat>,
) -> Result<(), BackupError> {
    let diffs = manifest.table_differences(actual);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(BackupError::ManifestMismatch(diffs))
    }
}

/// The migration versions this build embeds for a backend.
fn known_migrations(backend: SnapshotBackend) -> Result<Vec<String>, BackupError> {
    use diesel::migration::MigrationSource;
    let err = |e: Box<dyn std::error::Error + Send + Sync>| {
        BackupError::Store(StoreError::Migration(e.to_string()))
    };
    Ok(match backend {
        SnapshotBackend::Sqlite => {
            MigrationSource::<diesel::sqlite::Sqlite>::migrations(&migrations::SQLITE)
                .map_err(err)?
                .iter()
                .map(|m| m.name().version().to_string())
                .collect()
        }
        SnapshotBackend::Postgres => {
            MigrationSource::<diesel::pg::Pg>::migrations(&migrations::POSTGRES)
                .map_err(err)?
                .iter()
                .map(|m| m.name().version().to_string())
                .collect()
        }
    })
}

/// Refuses a backup whose schema is newer than this build.
fn check_schema_known(manifest: &Manifest) -> Result<(), BackupError> {
    let known = known_migrations(manifest.backend)?;
    let unknown: Vec<&str> = manifest
        .migrations
        .iter()
        .filter(|v| !known.contains(v))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(BackupError::SchemaTooNew(
            unknown.join(", "),
            manifest.aro_version.clone(),
        ))
    }
}

/// Restores `file` into the configured database after checking all of it. `confirm`
/// is asked, with the verified manifest, before anything is changed; `false` cancels.
/// The daemon must be stopped: a SQLite database open elsewhere, or a PostgreSQL
/// database with other sessions, is refused.
pub fn restore_backup(
    file: &Path,
    key: &MasterKey,
    config: &Config,
    confirm: &mut dyn FnMut(&Manifest) -> bool,
    progress: &Progress,
) -> Result<RestoreReport, BackupError> {
    match &config.database.url {
        DatabaseUrl::Sqlite(live) => restore_sqlite(file, key, live, confirm, progress),
        DatabaseUrl::Postgres(url) => {
            restore_postgres(file, key, url, &config.data_dir, confirm, progress)
        }
    }
}

fn backend_matches(manifest: &Manifest, configured: SnapshotBackend) -> Result<(), BackupError> {
    if manifest.backend == configured {
        Ok(())
    } else {
        Err(BackupError::BackendMismatch {
            backup: manifest.backend.as_str().into(),
            configured: configured.as_str().into(),
        })
    }
}

fn restore_sqlite(
    file: &Path,
    key: &MasterKey,
    live: &Path,
    confirm: &mut dyn FnMut(&Manifest) -> bool,
    progress: &Progress,
) -> Result<RestoreReport, BackupError> {
    let dir = sqlite::parent_dir(live);
    create_dir_private(&dir)?;
    let fresh = TempPath::new(&dir, "restore");
    let manifest = open_backup(file, key, fresh.path(), progress)?;
    backend_matches(&manifest, SnapshotBackend::Sqlite)?;
    let spinner = progress.spinner("checking the snapshot");
    let facts = sqlite::inspect(fresh.path())?;
    check_tables(&manifest, &facts.tables)?;
    check_schema_known(&manifest)?;
    spinner.finish_and_clear();
    if !confirm(&manifest) {
        return Err(BackupError::Cancelled);
    }
    let mut notes = Vec::new();
    if let Some(note) = sqlite::ensure_not_in_use(live)? {
        notes.push(note);
    }
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let fresh_path = fresh.keep();
    let previous = match sqlite::swap_in(&fresh_path, live, &stamp) {
        Ok(previous) => previous,
        Err(e) => {
            let _ = fs::remove_file(&fresh_path);
            return Err(e);
        }
    };
    tracing::info!(file = %file.display(), "database restored from backup");
    Ok(RestoreReport {
        manifest,
        previous,
        notes,
    })
}

fn restore_postgres(
    file: &Path,
    key: &MasterKey,
    url: &Secret<String>,
    scratch_dir: &Path,
    confirm: &mut dyn FnMut(&Manifest) -> bool,
    progress: &Progress,
) -> Result<RestoreReport, BackupError> {
    create_dir_private(scratch_dir)?;
    let dump = TempPath::new(scratch_dir, "restore");
    let manifest = open_backup(file, key, dump.path(), progress)?;
    backend_matches(&manifest, SnapshotBackend::Postgres)?;
    let spinner = progress.spinner("checking the dump");
    postgres::check_archive(dump.path(), &manifest)?;
    check_schema_known(&manifest)?;
    spinner.finish_and_clear();
    if !confirm(&manifest) {
        return Err(BackupError::Cancelled);
    }
    postgres::ensure_not_in_use(url)?;
    let spinner = progress.spinner("restoring");
    postgres::restore(url, dump.path(), &manifest, &spinner)?;
    spinner.finish_and_clear();
    tracing::info!(file = %file.display(), "database restored from backup");
    Ok(RestoreReport {
        manifest,
        previous: None,
        notes: Vec::new(),
    })
}

/// Per-table row counts and content checksums of a SQLite database file, computed as
/// the manifest computes them (for tests and tools).
pub fn sqlite_table_stats(
    path: &Path,
) -> Result<std::collections::BTreeMap<String, TableStat>, BackupError> {
    sqlite::table_stats_of(path)
}

/// Per-table row counts and content checksums of a PostgreSQL database now, computed
/// as the manifest computes them (for tests and tools).
pub fn postgres_table_stats(
    url: &Secret<String>,
) -> Result<std::collections::BTreeMap<String, TableStat>, BackupError> {
    postgres::table_stats_of(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSources;
    use crate::crypto::Key;
    use diesel::connection::SimpleConnection;

    fn config(dir: &Path) -> Config {
        let env = vec![(
            "ARO_DATA_DIR".to_string(),
            dir.join("data").display().to_string(),
        )];
        Config::load(&ConfigSources { file: None, env })
            .expect("valid")
            .config
    }

    #[test]
    fn out_paths_ending_in_arobak_are_files() {
        let data = Path::new("/var/lib/aro");
        assert_eq!(
            Destination::from_arg(None, data),
            Destination::Dir(PathBuf::from("/var/lib/aro/backups"))
        );
        assert_eq!(
            Destination::from_arg(Some("/mnt/x.arobak".into()), data),
            Destination::File(PathBuf::from("/mnt/x.arobak"))
        );
        assert_eq!(
            Destination::from_arg(Some("/mnt/usb".into()), data),
            Destination::Dir(PathBuf::from("/mnt/usb"))
        );
        assert_eq!(
            Destination::File(PathBuf::from("x.arobak")).dir(),
            PathBuf::from(".")
        );
    }

    #[test]
    fn sqlite_round_trip_and_refusals_without_a_daemon() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        let db = Database::open(&cfg.database).expect("open");
        {
            let mut conn = db.get().expect("conn");
            migrations::run_pending(&mut conn).expect("migrate");
            conn.batch_execute(
                "INSERT INTO tenants VALUES ('default', 'Clinic', 'healthcare', 'UTC', NULL, \
                 'US', 'USD', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            )
            .expect("tenant");
        }
        let key = MasterKey::from_key(Key::from_bytes([3; 32]));
        let out = dir.path().join("out");
        let report = create_backup(
            &db,
            &cfg.database,
            &key,
            &Destination::Dir(out.clone()),
            &Progress::hidden(),
        )
        .expect("backup");
        assert_eq!(report.manifest.tables["tenants"].rows, 1);
        assert_eq!(list_backups(&out).expect("list"), vec![report.path.clone()]);

        let scratch = dir.path().join("scratch");
        let verified =
            verify_backup(&report.path, &key, &scratch, &Progress::hidden()).expect("verifies");
        assert_eq!(verified.manifest, report.manifest);
        assert_eq!(fs::read_dir(&scratch).expect("scratch").count(), 0);

        // In use while the pool holds connections; the confirmation can cancel.
        let mut yes = |_: &Manifest| true;
        let err = restore_backup(&report.path, &key, &cfg, &mut yes, &Progress::hidden())
            .expect_err("in use");
        assert!(matches!(err, BackupError::DatabaseInUse(_)), "{err}");
        drop(db);
        let mut no = |_: &Manifest| false;
        let err = restore_backup(&report.path, &key, &cfg, &mut no, &Progress::hidden())
            .expect_err("cancelled");
        assert!(matches!(err, BackupError::Cancelled));

        let restored = restore_backup(&report.path, &key, &cfg, &mut yes, &Progress::hidden())
            .expect("restores");
        let live = cfg.sqlite_path().expect("sqlite");
        assert_eq!(
            sqlite_table_stats(live).expect("stats"),
            report.manifest.tables
        );
        assert!(restored.previous.is_some_and(|p| p.exists()));

        let other = MasterKey::from_key(Key::from_bytes([4; 32]));
        let err = verify_backup(&report.path, &other, &scratch, &Progress::hidden())
            .expect_err("wrong key");
        assert!(matches!(err, BackupError::WrongKey { .. }) && err.is_bad_file());
    }
}
