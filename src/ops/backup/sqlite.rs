//! SQLite: the online snapshot, what a snapshot file says about itself, and swapping a
//! restored file in for the live one.
//!
//! - Snapshot: `VACUUM INTO` on a connection of the daemon's own pool. It reads inside
//!   one read transaction, so the file is the database exactly as of one commit, while
//!   writers go on (WAL). The result is a compact single file in rollback-journal mode.
//! - Facts: `PRAGMA integrity_check`, the applied migrations and, per table, the row
//!   count and a SHA-256 over its rows in primary-key order, each row rendered with
//!   `quote()` column by column and hashed length-prefixed.
//! - Swap: refuse while any other connection has the live database open (switching it
//!   out of WAL mode needs it to be the only one; the daemon always holds one), keep
//!   the old file under `<name>.pre-restore-<time>` (a hard link, with its WAL moved
//!   beside it), then `rename` the restored file over the live name, atomically.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use diesel::connection::{DefaultLoadingMode, SimpleConnection};
use diesel::sql_types::{Integer, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use sha2::{Digest, Sha256};

use super::archive::create_private;
use super::manifest::TableStat;
use super::BackupError;
use crate::store::{Database, DbConnection};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

#[derive(QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = Text)]
    journal_mode: String,
}

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

/// What a snapshot file says about itself.
#[derive(Debug, Clone)]
pub struct Facts {
    pub tables: BTreeMap<String, TableStat>,
    pub migrations: Vec<String>,
    pub server_version: String,
}

/// Writes a consistent copy of the live database to `dest` (which must not exist),
/// mode 0600.
pub fn snapshot(db: &Database, dest: &Path) -> Result<(), BackupError> {
    let target = dest
        .to_str()
        .ok_or_else(|| BackupError::Malformed(format!("{} is not UTF-8", dest.display())))?;
    // VACUUM INTO fills an empty file: create it first, readable by its owner only.
    drop(create_private(dest)?);
    let mut conn = db.get()?;
    let conn: &mut DbConnection = &mut conn;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target)
        .execute(conn)?;
    Ok(())
}

fn open(path: &Path) -> Result<SqliteConnection, BackupError> {
    let url = path
        .to_str()
        .ok_or_else(|| BackupError::Malformed(format!("{} is not UTF-8", path.display())))?;
    SqliteConnection::establish(url).map_err(|e| BackupError::Connect(e.to_string()))
}

/// Checks a snapshot file's integrity and reads its facts.
pub fn inspect(path: &Path) -> Result<Facts, BackupError> {
    let mut conn = open(path)?;
    integrity_check(&mut conn)?;
    Ok(Facts {
        tables: table_stats(&mut conn)?,
        migrations: applied_migrations(&mut conn)?,
        server_version: format!(
            "SQLite {}",
            diesel::sql_query("SELECT sqlite_version() AS name")
                .get_result::<Name>(&mut conn)?
                .name
        ),
    })
}

/// The per-table facts of the SQLite file at `path` (for tools and tests).
pub fn table_stats_of(path: &Path) -> Result<BTreeMap<String, TableStat>, BackupError> {
    table_stats(&mut open(path)?)
}

fn integrity_check(conn: &mut SqliteConnection) -> Result<(), BackupError> {
    let rows: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(conn)
        .map_err(|e| BackupError::Integrity(e.to_string()))?;
    let problems: Vec<String> = rows
        .into_iter()
        .map(|r| r.integrity_check)
        .filter(|line| line != "ok")
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BackupError::Integrity(problems.join("; ")))
    }
}

fn applied_migrations(conn: &mut SqliteConnection) -> Result<Vec<String>, BackupError> {
    let exists: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_schema WHERE type = 'table' \
         AND name = '__diesel_schema_migrations'",
    )
    .load(conn)?;
    if exists.is_empty() {
        return Ok(Vec::new());
    }
    Ok(
        diesel::sql_query(
            "SELECT version AS name FROM __diesel_schema_migrations ORDER BY version",
        )
        .load::<Name>(conn)?
        .into_iter()
        .map(|n| n.name)
        .collect(),
    )
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn table_stats(conn: &mut SqliteConnection) -> Result<BTreeMap<String, TableStat>, BackupError> {
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_schema WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .load(conn)?;
    let mut out = BTreeMap::new();
    for table in tables {
        let mut columns: Vec<Column> =
            diesel::sql_query("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid")
                .bind::<Text, _>(&table.name)
                .load(conn)?;
        let line = columns
            .iter()
            .map(|c| format!("quote({})", quote_ident(&c.name)))
            .collect::<Vec<_>>()
            .join(" || char(31) || ");
        columns.retain(|c| c.pk > 0);
        columns.sort_by_key(|c| c.pk);
        let order = if columns.is_empty() {
            "1".to_string()
        } else {
            columns
                .iter()
                .map(|c| format!("{} COLLATE BINARY", quote_ident(&c.name)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let query = format!(
            "SELECT {line} AS line FROM {} ORDER BY {order}",
            quote_ident(&table.name)
        );
        let mut hasher = Sha256::new();
        let mut rows = 0i64;
        for row in diesel::sql_query(query).load_iter::<Line, DefaultLoadingMode>(conn)? {
            let row = row?;
            hasher.update((row.line.len() as u64).to_be_bytes());
            hasher.update(row.line.as_bytes());
            rows += 1;
        }
        out.insert(
            table.name,
            TableStat {
                rows,
                sha256: hex::encode(hasher.finalize()),
            },
        );
    }
    Ok(out)
}

/// Refuses when another connection has the live database open; otherwise leaves it
/// checkpointed in rollback-journal mode (no WAL beside it). Returns a note when the
/// live file could not be examined (say, it is corrupt), which does not stop a restore.
pub fn ensure_not_in_use(live: &Path) -> Result<Option<String>, BackupError> {
    if !live.exists() {
        return Ok(None);
    }
    let mut conn = match open(live) {
        Ok(conn) => conn,
        Err(e) => return Ok(Some(format!("the live database could not be opened: {e}"))),
    };
    let probe = conn
        .batch_execute("PRAGMA busy_timeout = 0")
        .and_then(|()| {
            diesel::sql_query("PRAGMA journal_mode = DELETE").load::<JournalMode>(&mut conn)
        });
    match probe {
        Ok(rows)
            if rows
                .iter()
                .any(|r| r.journal_mode.eq_ignore_ascii_case("delete")) =>
        {
            Ok(None)
        }
        Ok(_) => Err(in_use(live)),
        Err(e) => {
            let text = e.to_string();
            if text.contains("locked") || text.contains("busy") {
                Err(in_use(live))
            } else {
                Ok(Some(format!(
                    "the live database could not be examined: {text}"
                )))
            }
        }
    }
}

fn in_use(live: &Path) -> BackupError {
    BackupError::DatabaseInUse(format!(
        "{} is open in another process (is `aro serve` running?)",
        live.display()
    ))
}

/// Puts `restored` in place of `live` with one atomic rename, keeping the previous file
/// (and its WAL, if any) as `<live>.pre-restore-<stamp>`; returns that path.
pub fn swap_in(restored: &Path, live: &Path, stamp: &str) -> Result<Option<PathBuf>, BackupError> {
    let dir = parent_dir(live);
    let name = live
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "aro.db".to_string());
    let mut kept = None;
    if live.exists() {
        let keep = dir.join(format!("{name}.pre-restore-{stamp}"));
        if fs::hard_link(live, &keep).is_err() {
            fs::copy(live, &keep).map_err(|e| BackupError::io(&keep, e))?;
        }
        for suffix in ["-wal", "-journal"] {
            let side = sidecar(live, suffix);
            if side.exists() {
                let target = sidecar(&keep, suffix);
                fs::rename(&side, &target).map_err(|e| BackupError::io(&side, e))?;
            }
        }
        let shm = sidecar(live, "-shm");
        if shm.exists() {
            fs::remove_file(&shm).map_err(|e| BackupError::io(&shm, e))?;
        }
        kept = Some(keep);
    }
    fs::rename(restored, live).map_err(|e| BackupError::io(live, e))?;
    if let Ok(handle) = fs::File::open(&dir) {
        let _ = handle.sync_all();
    }
    Ok(kept)
}

/// `path` with `suffix` appended to its file name (`aro.db` → `aro.db-wal`).
pub fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_follow_content_not_storage_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.db");
        let b = dir.path().join("b.db");
        let mut ca = open(&a).expect("a");
        let mut cb = open(&b).expect("b");
        ca.batch_execute(
            "CREATE TABLE t (id TEXT PRIMARY KEY, v INTEGER, note TEXT);
             INSERT INTO t VALUES ('x', 1, NULL), ('y', 2, 'it''s');",
        )
        .expect("a");
        cb.batch_execute(
            "CREATE TABLE t (id TEXT PRIMARY KEY, v INTEGER, note TEXT);
             INSERT INTO t VALUES ('y', 2, 'it''s'), ('x', 1, NULL);",
        )
        .expect("b");
        let sa = table_stats(&mut ca).expect("stats");
        let sb = table_stats(&mut cb).expect("stats");
        assert_eq!(sa, sb);
        assert_eq!(sa["t"].rows, 2);
        cb.batch_execute("UPDATE t SET note = 'its' WHERE id = 'y'")
            .expect("update");
        assert_ne!(table_stats(&mut cb).expect("stats")["t"], sa["t"]);
        integrity_check(&mut ca).expect("healthy");
    }

    #[test]
    fn an_open_wal_database_is_in_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("live.db");
        let mut daemon = open(&live).expect("open");
        daemon
            .batch_execute(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
            )
            .expect("setup");
        assert!(matches!(
            ensure_not_in_use(&live),
            Err(BackupError::DatabaseInUse(_))
        ));
        drop(daemon);
        assert_eq!(ensure_not_in_use(&live).expect("free"), None);
        assert!(!sidecar(&live, "-wal").exists());
        assert_eq!(
            ensure_not_in_use(&dir.path().join("none.db")).expect("absent"),
            None
        );
    }
}
