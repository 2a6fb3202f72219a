//! Storage: diesel on SQLite (embedded default) or PostgreSQL, behind one pooled
//! [`Database`] handle. Queries run on the blocking thread pool, never on the async
//! executor. `schema.rs` holds the tables, `models.rs` the row types, and each
//! `*_queries.rs` module the queries for one area.

pub mod alias_queries;
mod connection;
pub mod engine_queries;
pub mod engine_store;
mod error;
pub mod inbox_queries;
pub mod message_queries;
pub mod migrations;
pub mod models;
pub mod reply_queries;
pub mod risk_queries;
pub mod schema;
pub mod tenant_queries;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{Pool, PooledConnection};

pub use connection::{Backend, DbConnection};
pub use engine_store::DieselStore;
pub use error::StoreError;

use crate::config::{DatabaseConfig, DatabaseUrl};
use connection::{Manager, Target};

/// A pooled connection checked out of a [`Database`].
pub type Conn = PooledConnection<Manager>;

/// How long `/ready` waits for a connection before calling the database unreachable.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// The pooled database handle shared by the whole daemon. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool<Manager>,
    backend: Backend,
    sqlite_path: Option<PathBuf>,
    /// One permit per pooled connection: queries wait here, on the async side, rather
    /// than as hundreds of blocking threads contending for the pool's lock.
    permits: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("sqlite_path", &self.sqlite_path)
            .finish()
    }
}

/// The URL with `gssencmode=disable` added unless it sets `gssencmode` itself. libpq's
/// default (`prefer`) loads Kerberos on every connection, and a short-lived command that
/// exits while a pool thread is inside it aborts in Kerberos's exit handler
/// (`k5_mutex_lock … Assertion failed`, seen on `aro audit verify`). GSS-encrypted
/// PostgreSQL connections stay available by asking for them in the URL.
fn without_gss_by_default(url: &str) -> String {
    if url.contains("gssencmode") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}gssencmode=disable")
}

/// Initialises OpenSSL the way libpq needs it in a multi-threaded process: without
/// OpenSSL's `atexit` cleanup, which would free TLS state while a pool thread is still
/// using it and crash the process as it exits (openssl/openssl#3505). Must run before
/// the first PostgreSQL connection; idempotent.
pub fn init_postgres_client() {
    openssl_sys::init();
}

impl Database {
    /// Prepares the pool. For SQLite, creates the database file's directory. No
    /// connection is opened yet, so a database that is down does not stop this.
    pub fn open(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let (target, backend, sqlite_path) = match &config.url {
            DatabaseUrl::Sqlite(path) => {
                prepare_sqlite_dir(path)?;
                (
                    Target::Sqlite(path.clone()),
                    Backend::Sqlite,
                    Some(path.clone()),
                )
            }
            DatabaseUrl::Postgres(url) => {
                init_postgres_client();
                (
                    Target::Postgres(crate::config::Secret::new(without_gss_by_default(
                        url.expose(),
                    ))),
                    Backend::Postgres,
                    None,
                )
            }
        };
        let pool = Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(config.connect_timeout)
            .error_handler(Box::new(LogPoolErrors))
            .build_unchecked(Manager::new(target));
        Ok(Self {
            pool,
            backend,
            sqlite_path,
            permits: Arc::new(tokio::sync::Semaphore::new(config.pool_size as usize)),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite file, when that is the backend.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    /// Checks a connection out, blocking. For CLI commands and blocking tasks only.
    pub fn get(&self) -> Result<Conn, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Runs `work` with a pooled connection on the blocking thread pool.
    pub async fn run<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut DbConnection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.pool.clone();
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Ready means: the database file is where it should be (SQLite), a connection
    /// answers within two seconds, and no migration is pending.
    pub async fn readiness(&self) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let sqlite_path = self.sqlite_path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(path) = &sqlite_path {
                if !path.is_file() {
                    return Err(StoreError::Unavailable(format!(
                        "database file {} is missing",
                        path.display()
                    )));
                }
            }
            let mut conn = pool.get_timeout(READINESS_TIMEOUT)?;
            conn.batch_execute("SELECT 1")?;
            match migrations::pending_count(&mut conn)? {
                0 => Ok(()),
                n => Err(StoreError::MigrationsPending(n)),
            }
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn prepare_sqlite_dir(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Filesystem {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// Sends the pool's background connection errors to the log instead of dropping them.
#[derive(Debug)]
struct LogPoolErrors;

impl diesel::r2d2::HandleError<connection::ConnectError> for LogPoolErrors {
    fn handle_error(&self, error: connection::ConnectError) {
        tracing::warn!(%error, "database connection failed");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_urls_skip_kerberos_unless_they_ask_for_it() {
        assert_eq!(
            super::without_gss_by_default("postgres://u@h/db"),
            "postgres://u@h/db?gssencmode=disable"
        );
        assert_eq!(
            super::without_gss_by_default("postgres://u@h/db?sslmode=require"),
            "postgres://u@h/db?sslmode=require&gssencmode=disable"
        );
        let chosen = "postgres://u@h/db?gssencmode=require";
        assert_eq!(super::without_gss_by_default(chosen), chosen);
    }
}
