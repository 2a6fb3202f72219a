//! Schema migrations, embedded in the binary: one set per backend, each migration with
//! a working `down`. Used by `aro migrate`, by `aro serve` at start and by `/ready`.

use diesel::backend::Backend as DieselBackend;
use diesel::migration::{Migration, MigrationSource};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::connection::DbConnection;
use super::error::StoreError;

pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One known migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's directory name, e.g. `2026-11-24-000001_core`.
    pub name: String,
    pub applied: bool,
}

/// The embedded migration set of one backend (the constants are not `Copy`).
type Source = fn() -> EmbeddedMigrations;

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Migration(e.to_string())
}

/// Applies every pending migration; returns the names applied.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    match conn {
        DbConnection::Sqlite(c) => apply(c, || SQLITE),
        DbConnection::Postgres(c) => apply(c, || POSTGRES),
    }
}

/// Reverts the last `count` applied migrations, newest first; returns their names.
pub fn revert(conn: &mut DbConnection, count: usize) -> Result<Vec<String>, StoreError> {
    match conn {
        DbConnection::Sqlite(c) => revert_n(c, || SQLITE, count),
        DbConnection::Postgres(c) => revert_n(c, || POSTGRES, count),
    }
}

/// Reverts the newest applied migration and applies it again.
pub fn redo(conn: &mut DbConnection) -> Result<Option<String>, StoreError> {
    let reverted = revert(conn, 1)?;
    run_pending(conn)?;
    Ok(reverted.into_iter().next())
}

/// Every migration this binary knows, oldest first, with its applied flag.
pub fn status(conn: &mut DbConnection) -> Result<Vec<MigrationState>, StoreError> {
    match conn {
        DbConnection::Sqlite(c) => state(c, || SQLITE),
        DbConnection::Postgres(c) => state(c, || POSTGRES),
    }
}

/// How many migrations are not applied yet.
pub fn pending_count(conn: &mut DbConnection) -> Result<usize, StoreError> {
    Ok(status(conn)?.iter().filter(|m| !m.applied).count())
}

fn apply<DB, C>(conn: &mut C, source: Source) -> Result<Vec<String>, StoreError>
where
    DB: DieselBackend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let applied = conn.run_pending_migrations(source()).map_err(err)?;
    let names = names_of(source)?;
    Ok(applied
        .iter()
        .map(|version| name_for(&names, &version.to_string()))
        .collect())
}

fn revert_n<DB, C>(conn: &mut C, source: Source, count: usize) -> Result<Vec<String>, StoreError>
where
    DB: DieselBackend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let names = names_of(source)?;
    let applied = conn.applied_migrations().map_err(err)?.len();
    if count > applied {
        return Err(StoreError::Migration(format!(
            "cannot revert {count} migration(s): only {applied} applied"
        )));
    }
    let mut reverted = Vec::with_capacity(count);
    for _ in 0..count {
        let version = conn.revert_last_migration(source()).map_err(err)?;
        reverted.push(name_for(&names, &version.to_string()));
    }
    Ok(reverted)
}

fn state<DB, C>(conn: &mut C, source: Source) -> Result<Vec<MigrationState>, StoreError>
where
    DB: DieselBackend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let applied: Vec<String> = conn
        .applied_migrations()
        .map_err(err)?
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(names_of(source)?
        .into_iter()
        .map(|(version, name)| MigrationState {
            applied: applied.contains(&version),
            name,
        })
        .collect())
}

/// (version, full name) of every embedded migration, oldest first.
fn names_of<DB>(source: Source) -> Result<Vec<(String, String)>, StoreError>
where
    DB: DieselBackend,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let migrations: Vec<Box<dyn Migration<DB>>> =
        MigrationSource::<DB>::migrations(&source()).map_err(err)?;
    let mut names: Vec<(String, String)> = migrations
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect();
    names.sort();
    Ok(names)
}

fn name_for(names: &[(String, String)], version: &str) -> String {
    names
        .iter()
        .find(|(v, _)| v == version)
        .map(|(_, name)| name.clone())
        .unwrap_or_else(|| version.to_string())
}
