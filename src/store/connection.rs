//! One connection type for both backends, and the pool manager that opens it.
//!
//! `DbConnection` is a diesel `MultiConnection`: queries written once against
//! `schema.rs` run on SQLite and PostgreSQL alike. The manager knows from the
//! configuration which backend to open (rather than guessing from the URL), and sets
//! SQLite up for durable, concurrent use on every new connection.

use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::r2d2::ManageConnection;
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::config::Secret;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Which database engine a [`DbConnection`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Sqlite(_) => Backend::Sqlite,
            DbConnection::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Set on every SQLite connection: wait rather than fail on a locked database, write
/// ahead log for concurrent readers, fsync on every commit (an acknowledged write
/// survives power loss), and enforce foreign keys. Reads go through a memory map
/// (no copy per page read, and nothing to re-read when another connection's commit
/// invalidates this one's page cache) and a larger page cache.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA mmap_size = 1073741824;
PRAGMA cache_size = -16384;
PRAGMA temp_store = MEMORY;";

/// What the pool connects to.
#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres(Secret<String>),
}

/// An r2d2 manager for [`DbConnection`].
#[derive(Debug, Clone)]
pub struct Manager {
    target: Target,
    /// The SQLite file existed at a connect: from then on a missing file is an outage,
    /// not a new database — reconnecting must not create an empty one in its place
    /// (which would hide the loss from `/ready` and the watchdog).
    sqlite_file_seen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Manager {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            sqlite_file_seen: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }
}

/// Why a connection could not be opened or checked.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Connection(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("the SQLite database file {0} is missing")]
    SqliteFileMissing(String),
}

/// A SQLite URI that opens `path` read-write without creating it (`mode=rw`). The
/// characters URI filenames reserve (`%`, `?`, `#`) are percent-encoded.
fn sqlite_uri_existing(path: &std::path::Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3F"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=rw");
    uri
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        match &self.target {
            Target::Sqlite(path) => {
                use std::sync::atomic::Ordering;
                // Once the file has been seen, open it with `mode=rw`: SQLite then
                // refuses a missing file atomically, so a rename between a check and
                // the open cannot leave an empty database in the file's place.
                let uri = if path.exists() || self.sqlite_file_seen.load(Ordering::Relaxed) {
                    sqlite_uri_existing(path)
                } else {
                    path.to_string_lossy().into_owned()
                };
                let mut conn = SqliteConnection::establish(&uri).map_err(|e| {
                    if self.sqlite_file_seen.load(Ordering::Relaxed) && !path.exists() {
                        ConnectError::SqliteFileMissing(path.display().to_string())
                    } else {
                        ConnectError::from(e)
                    }
                })?;
                self.sqlite_file_seen.store(true, Ordering::Relaxed);
                conn.batch_execute(SQLITE_PRAGMAS)?;
                Ok(DbConnection::Sqlite(conn))
            }
            Target::Postgres(url) => Ok(DbConnection::Postgres(PgConnection::establish(
                url.expose(),
            )?)),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1").map_err(ConnectError::from)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vanished_file_is_not_recreated_once_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("odd %name? #1.db");
        let manager = Manager::new(Target::Sqlite(path.clone()));
        let first = manager
            .connect()
            .expect("creates the database the first time");
        drop(first);
        assert!(path.is_file(), "the reserved characters were encoded");
        manager.connect().expect("reopens the existing file");

        std::fs::rename(&path, dir.path().join("away.db")).expect("move away");
        let error = match manager.connect() {
            Ok(_) => panic!("opened a vanished database"),
            Err(error) => error,
        };
        assert!(
            matches!(error, ConnectError::SqliteFileMissing(_)),
            "{error}"
        );
        assert!(!path.exists(), "no empty database in its place");
    }

    #[test]
    fn an_existing_file_is_opened_read_write_from_the_first_connect() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aro.db");
        drop(
            Manager::new(Target::Sqlite(path.clone()))
                .connect()
                .expect("create"),
        );
        let fresh = Manager::new(Target::Sqlite(path.clone()));
        let mut conn = fresh.connect().expect("opens");
        conn.batch_execute("CREATE TABLE t (x INTEGER)")
            .expect("writable");
    }
}
