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
}

impl Manager {
    pub fn new(target: Target) -> Self {
        Self { target }
    }
}

/// Why a connection could not be opened or checked.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Connection(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
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
