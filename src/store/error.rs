//! The storage layer's error type.

/// Everything that can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had: the database is down, unreachable or locked out.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Applying or reverting a migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The schema is behind the binary (pending migrations).
    #[error("{0} migration(s) pending; run `aro migrate up`")]
    MigrationsPending(usize),
    /// The data directory or database file could not be prepared.
    #[error("cannot prepare {path}: {reason}")]
    Filesystem { path: String, reason: String },
    /// The blocking task running the query died.
    #[error("database task failed: {0}")]
    Task(String),
    /// A stored row does not make sense (or an engine write was refused) — a bug or a
    /// hand edit, not something a retry fixes.
    #[error("stored data: {0}")]
    Inconsistent(String),
}

impl From<super::engine_queries::QueryError> for StoreError {
    fn from(err: super::engine_queries::QueryError) -> Self {
        match err {
            super::engine_queries::QueryError::Diesel(e) => StoreError::Query(e),
            other => StoreError::Inconsistent(other.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(err.to_string())
    }
}
