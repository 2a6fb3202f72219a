//! PostgreSQL: `pg_dump` for the snapshot, `pg_restore | psql` in one transaction to
//! restore, both run with `std::process::Command`.
//!
//! - Snapshot: a REPEATABLE READ transaction exports its snapshot
//!   (`pg_export_snapshot()`); the manifest's table facts are computed in that
//!   transaction and `pg_dump --snapshot` dumps the same snapshot, so both describe the
//!   database as of one instant while the daemon keeps writing. The dump is the custom
//!   format of the `public` schema, uncompressed (the payload is gzipped anyway).
//! - Restore (into the configured database): refused while other sessions are connected
//!   to it; then one `psql --single-transaction` drops the `public` schema, replays
//!   `pg_restore --no-owner --no-privileges` output (which recreates the schema), and
//!   checks every table's row count against the manifest before committing. Any error
//!   rolls everything back: the database is either the backup or untouched. After the
//!   commit the per-table content checksums are compared too.
//! - Tools: `/usr/lib/postgresql/<server major>/bin` (Debian layout) is preferred, then
//!   `PATH`; a `pg_dump` older than the server is refused with both versions named.
//! - The password never appears on a command line: it goes to the tools in `PGPASSWORD`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use diesel::connection::SimpleConnection;
use diesel::pg::PgRowByRowLoadingMode;
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::archive::create_private;
use super::manifest::{Manifest, TableStat};
use super::BackupError;
use crate::config::Secret;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// Session settings that make row text rendering independent of the server's defaults.
const DETERMINISTIC: &str = "SET LOCAL DateStyle = 'ISO, YMD';
SET LOCAL IntervalStyle = 'postgres';
SET LOCAL TimeZone = 'UTC';
SET LOCAL extra_float_digits = 1;
SET LOCAL bytea_output = 'hex';";

/// What a dump says about the database it was taken from.
#[derive(Debug, Clone)]
pub struct Facts {
    pub tables: BTreeMap<String, TableStat>,
    pub migrations: Vec<String>,
    pub server_version: String,
    pub dump_tool: String,
}

/// Where the tools connect: the URL without its password, and the password apart.
struct Target {
    url: String,
    password: Option<String>,
}

impl Target {
    fn new(url: &Secret<String>) -> Result<Self, BackupError> {
        let mut parsed = url::Url::parse(url.expose())
            .map_err(|e| BackupError::Connect(format!("the PostgreSQL URL does not parse: {e}")))?;
        let password = parsed.password().map(percent_decode);
        if password.is_some() {
            parsed
                .set_password(None)
                .map_err(|()| BackupError::Connect("cannot strip the URL's password".into()))?;
        }
        Ok(Self {
            url: parsed.to_string(),
            password,
        })
    }

    fn command(&self, tool: &Tool) -> Command {
        let mut cmd = Command::new(&tool.path);
        if let Some(password) = &self.password {
            cmd.env("PGPASSWORD", password);
        }
        cmd
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|pair| pair.iter().all(u8::is_ascii_hexdigit))
            .and_then(|pair| u8::from_str_radix(&String::from_utf8_lossy(pair), 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn connect(url: &Secret<String>) -> Result<PgConnection, BackupError> {
    crate::store::init_postgres_client();
    PgConnection::establish(url.expose()).map_err(|e| BackupError::Connect(e.to_string()))
}

/// A PostgreSQL client program and its major version.
#[derive(Debug, Clone)]
pub struct Tool {
    pub path: PathBuf,
    pub major: u32,
    pub version: String,
}

/// The major version in `pg_dump (PostgreSQL) 15.20 (Debian …)` or `16devel`.
fn parse_major(text: &str) -> Option<(u32, String)> {
    let version = text
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?
        .to_string();
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    Some((digits.parse().ok()?, version))
}

fn probe(path: &Path) -> Option<Tool> {
    let output = Command::new(path).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let (major, version) = parse_major(&String::from_utf8_lossy(&output.stdout))?;
    Some(Tool {
        path: path.to_path_buf(),
        major,
        version,
    })
}

/// Finds `name` with a major version of at least `min_major`: first in `prefer` (a
/// directory), then in the Debian layout for `min_major`, then on `PATH`.
fn find_tool(name: &str, min_major: u32, prefer: Option<&Path>) -> Result<Tool, BackupError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = prefer {
        candidates.push(dir.join(name));
    }
    if min_major > 0 {
        candidates.push(PathBuf::from(format!(
            "/usr/lib/postgresql/{min_major}/bin/{name}"
        )));
    }
    candidates.push(PathBuf::from(name));
    let found: Vec<Tool> = candidates.iter().filter_map(|p| probe(p)).collect();
    if let Some(tool) = found.iter().find(|t| t.major >= min_major) {
        return Ok(tool.clone());
    }
    match found.first() {
        Some(tool) => Err(BackupError::ToolVersion {
            tool: name.to_string(),
            found: tool.version.clone(),
            needed: min_major,
        }),
        None => Err(BackupError::ToolMissing(name.to_string())),
    }
}

fn server_major(conn: &mut PgConnection) -> Result<u32, BackupError> {
    let num = diesel::sql_query("SELECT current_setting('server_version_num') AS name")
        .get_result::<Name>(conn)?
        .name;
    Ok(num.trim().parse::<u32>().unwrap_or(0) / 10_000)
}

/// Dumps the configured database to `dest` (created 0600) and returns its facts, both
/// taken from one exported snapshot.
pub fn dump(
    url: &Secret<String>,
    dest: &Path,
    spinner: &ProgressBar,
) -> Result<Facts, BackupError> {
    let target = Target::new(url)?;
    let mut conn = connect(url)?;
    let major = server_major(&mut conn)?;
    let tool = find_tool("pg_dump", major, None)?;
    drop(create_private(dest)?);
    conn.build_transaction().repeatable_read().read_only().run(
        |conn| -> Result<Facts, BackupError> {
            let snapshot = diesel::sql_query("SELECT pg_export_snapshot() AS name")
                .get_result::<Name>(conn)?
                .name;
            conn.batch_execute(DETERMINISTIC)?;
            spinner.set_message("counting and hashing tables");
            let tables = table_stats(conn)?;
            let migrations = applied_migrations(conn)?;
            let server_version = diesel::sql_query("SELECT version() AS name")
                .get_result::<Name>(conn)?
                .name;
            spinner.set_message(format!("pg_dump {}", tool.version));
            let output = target
                .command(&tool)
                .arg("--format=custom")
                .arg("--compress=0")
                .arg("--schema=public")
                .arg("--no-owner")
                .arg("--no-privileges")
                .arg(format!("--snapshot={snapshot}"))
                .arg(format!("--file={}", dest.display()))
                .arg(format!("--dbname={}", target.url))
                .stdin(Stdio::null())
                .output()
                .map_err(|e| BackupError::Tool {
                    tool: tool.path.display().to_string(),
                    detail: e.to_string(),
                })?;
            if !output.status.success() {
                return Err(BackupError::Tool {
                    tool: format!("pg_dump {}", tool.version),
                    detail: stderr_tail(&output.stderr),
                });
            }
            Ok(Facts {
                tables,
                migrations,
                server_version,
                dump_tool: format!("pg_dump {}", tool.version),
            })
        },
    )
}

fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(8);
    lines[start..].join("\n")
}

fn applied_migrations(conn: &mut PgConnection) -> Result<Vec<String>, BackupError> {
    let exists: Vec<Name> = diesel::sql_query(
        "SELECT 'yes' AS name WHERE to_regclass('public.__diesel_schema_migrations') IS NOT NULL",
    )
    .load(conn)?;
    if exists.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(
        "SELECT version AS name FROM public.__diesel_schema_migrations ORDER BY version COLLATE \"C\"",
    )
    .load::<Name>(conn)?
    .into_iter()
    .map(|n| n.name)
    .collect())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Row counts and content checksums of every table in `public`. Rows are rendered as
/// the record's text (`row::text`) under [`DETERMINISTIC`] settings and ordered by
/// their primary key columns compared as text in the "C" collation, so the result does
/// not depend on the server's locale.
fn table_stats(conn: &mut PgConnection) -> Result<BTreeMap<String, TableStat>, BackupError> {
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT c.relname AS name FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .load(conn)?;
    let mut out = BTreeMap::new();
    for table in tables {
        let keys: Vec<Name> = diesel::sql_query(
            "SELECT a.attname::text AS name FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indisprimary AND i.indrelid = ( \
               SELECT c.oid FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
               WHERE n.nspname = 'public' AND c.relname = $1) \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
        )
        .bind::<Text, _>(&table.name)
        .load(conn)?;
        let order = if keys.is_empty() {
            "1".to_string()
        } else {
            keys.iter()
                .map(|k| format!("({})::text COLLATE \"C\"", quote_ident(&k.name)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let query = format!(
            "SELECT aro_row::text AS line FROM public.{} AS aro_row ORDER BY {order}",
            quote_ident(&table.name)
        );
        let mut hasher = Sha256::new();
        let mut rows = 0i64;
        for row in diesel::sql_query(query).load_iter::<Line, PgRowByRowLoadingMode>(conn)? {
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

/// The per-table facts of the database at `url` now (for tools and tests).
pub fn table_stats_of(url: &Secret<String>) -> Result<BTreeMap<String, TableStat>, BackupError> {
    let mut conn = connect(url)?;
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(|conn| {
            conn.batch_execute(DETERMINISTIC)?;
            table_stats(conn)
        })
}

/// The dump tool's major version a manifest names (`pg_dump 15.20` → 15).
fn dump_major(manifest: &Manifest) -> u32 {
    manifest
        .dump_tool
        .as_deref()
        .and_then(|t| t.split_whitespace().nth(1))
        .map(|v| {
            v.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// Checks that `pg_restore` reads the archive's table of contents.
pub fn check_archive(dump: &Path, manifest: &Manifest) -> Result<Tool, BackupError> {
    let tool = find_tool("pg_restore", dump_major(manifest), None)?;
    let output = Command::new(&tool.path)
        .arg("--list")
        .arg(dump)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BackupError::Tool {
            tool: tool.path.display().to_string(),
            detail: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(BackupError::Integrity(format!(
            "pg_restore {} cannot read the dump: {}",
            tool.version,
            stderr_tail(&output.stderr)
        )));
    }
    Ok(tool)
}

/// Refuses while other client sessions are connected to the configured database.
pub fn ensure_not_in_use(url: &Secret<String>) -> Result<(), BackupError> {
    let mut conn = connect(url)?;
    let others: Vec<Name> = diesel::sql_query(
        "SELECT coalesce(nullif(application_name, ''), 'unnamed client') || ' from ' || \
         coalesce(host(client_addr), 'local socket') AS name \
         FROM pg_catalog.pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend'",
    )
    .load(&mut conn)?;
    if others.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = others.into_iter().map(|n| n.name).collect();
    Err(BackupError::DatabaseInUse(format!(
        "{} other session(s) are connected to the database ({}); stop `aro serve` and \
         other clients first",
        names.len(),
        names.join(", ")
    )))
}

/// A table name the restore's check block may embed: the schema's own names only.
fn plain_name(name: &str) -> Result<&str, BackupError> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(name)
    } else {
        Err(BackupError::Malformed(format!(
            "unexpected table name {name:?} in the manifest"
        )))
    }
}

/// The SQL run after the dump, inside the restore's transaction: every table's row
/// count and the set of tables must match the manifest, or the transaction aborts.
fn check_block(manifest: &Manifest) -> Result<String, BackupError> {
    let mut sql = String::from("DO $aro_check$\nDECLARE n bigint;\nBEGIN\n");
    for (name, stat) in &manifest.tables {
        let name = plain_name(name)?;
        sql.push_str(&format!(
            "  SELECT count(*) INTO n FROM public.\"{name}\";\n  IF n <> {rows} THEN RAISE \
             EXCEPTION 'aro restore: table {name} has % rows, the backup {rows}', n; END IF;\n",
            rows = stat.rows
        ));
    }
    sql.push_str(&format!(
        "  SELECT count(*) INTO n FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s \
         ON s.oid = c.relnamespace WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p');\n  \
         IF n <> {count} THEN RAISE EXCEPTION 'aro restore: % tables restored, the backup has \
         {count}', n; END IF;\nEND\n$aro_check$;\n",
        count = manifest.tables.len()
    ));
    Ok(sql)
}

/// Replaces the configured database's `public` schema with the dump, in one
/// transaction, then compares the content checksums with the manifest.
pub fn restore(
    url: &Secret<String>,
    dump: &Path,
    manifest: &Manifest,
    spinner: &ProgressBar,
) -> Result<(), BackupError> {
    let target = Target::new(url)?;
    let major = {
        let mut conn = connect(url)?;
        server_major(&mut conn)?
    };
    let pg_restore = find_tool("pg_restore", dump_major(manifest).max(major), None)?;
    let psql = find_tool("psql", 0, pg_restore.path.parent())?;
    let check = check_block(manifest)?;

    spinner.set_message(format!("pg_restore {} | psql", pg_restore.version));
    let mut producer = Command::new(&pg_restore.path)
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--file=-")
        .arg(dump)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BackupError::Tool {
            tool: pg_restore.path.display().to_string(),
            detail: e.to_string(),
        })?;
    let consumer = target
        .command(&psql)
        .arg("--no-psqlrc")
        .arg("--quiet")
        .arg("--set=ON_ERROR_STOP=1")
        .arg("--single-transaction")
        .arg("--file=-")
        .arg(format!("--dbname={}", target.url))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut consumer = match consumer {
        Ok(child) => child,
        Err(e) => {
            let _ = producer.kill();
            let _ = producer.wait();
            return Err(BackupError::Tool {
                tool: psql.path.display().to_string(),
                detail: e.to_string(),
            });
        }
    };
    let script = producer.stdout.take();
    let mut producer_err = producer.stderr.take();
    let mut input = consumer.stdin.take();
    // Feeds psql: the prelude, pg_restore's script, then — only if pg_restore succeeded
    // — the check block; otherwise a statement that aborts the transaction, so a
    // failed or partial script can never commit.
    let feeder = std::thread::spawn(move || {
        let copied = (|| -> std::io::Result<()> {
            let (Some(mut script), Some(input)) = (script, input.as_mut()) else {
                return Err(std::io::Error::other("the tools' pipes are missing"));
            };
            input.write_all(
                b"SET client_min_messages = warning;\nSET lock_timeout = '30s';\n\
                  DROP SCHEMA IF EXISTS public CASCADE;\n",
            )?;
            std::io::copy(&mut script, input)?;
            Ok(())
        })();
        let status = producer.wait().ok();
        let succeeded = copied.is_ok() && status.is_some_and(|s| s.success());
        let tail = (|| -> std::io::Result<()> {
            let Some(input) = input.as_mut() else {
                return Ok(());
            };
            if succeeded {
                input.write_all(b"\n")?;
                input.write_all(check.as_bytes())?;
            } else {
                input.write_all(
                    b"\nDO $aro_abort$ BEGIN RAISE EXCEPTION 'aro restore: pg_restore failed'; \
                      END $aro_abort$;\n",
                )?;
            }
            input.flush()
        })();
        drop(input);
        (copied.and(tail), status)
    });
    let producer_stderr = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(err) = producer_err.as_mut() {
            let _ = err.read_to_end(&mut text);
        }
        text
    });
    let psql_output = consumer.wait_with_output().map_err(|e| BackupError::Tool {
        tool: psql.path.display().to_string(),
        detail: e.to_string(),
    })?;
    let (fed, producer_status) = feeder.join().map_err(|_| BackupError::Tool {
        tool: format!("pg_restore {}", pg_restore.version),
        detail: "the thread feeding psql panicked".into(),
    })?;
    let producer_stderr = producer_stderr.join().unwrap_or_default();
    let psql_stderr = String::from_utf8_lossy(&psql_output.stderr);
    let producer_failed = !producer_status.is_some_and(|s| s.success());
    // psql failing on its own is the cause; psql stopped by our abort statement means
    // pg_restore's failure is.
    let aborted_by_us = producer_failed && psql_stderr.contains("aro restore: pg_restore failed");
    if !psql_output.status.success() && !aborted_by_us {
        return Err(BackupError::Tool {
            tool: format!("psql {}", psql.version),
            detail: format!(
                "{} (the transaction was rolled back; the database was not changed)",
                stderr_tail(&psql_output.stderr)
            ),
        });
    }
    if producer_failed {
        return Err(BackupError::Tool {
            tool: format!("pg_restore {}", pg_restore.version),
            detail: format!(
                "{} (the transaction was rolled back; the database was not changed)",
                stderr_tail(&producer_stderr)
            ),
        });
    }
    if fed.is_err() {
        return Err(BackupError::Tool {
            tool: format!("psql {}", psql.version),
            detail: "the restore script could not be passed to psql".into(),
        });
    }
    spinner.set_message("comparing content checksums");
    let actual = table_stats_of(url)?;
    let diffs = manifest.table_differences(&actual);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(BackupError::RestoredMismatch(diffs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n"),
            Some((15, "15.20".to_string()))
        );
        assert_eq!(
            parse_major("psql (PostgreSQL) 17devel"),
            Some((17, "17devel".to_string()))
        );
        assert_eq!(parse_major("something else"), None);
    }

    #[test]
    fn a_tool_older_than_the_server_is_named_with_both_versions() {
        let err = find_tool("pg_dump", 99, None).expect_err("no pg_dump 99 here");
        match &err {
            BackupError::ToolVersion { needed: 99, .. } => {
                assert!(err.to_string().contains("postgresql-client-99"), "{err}")
            }
            BackupError::ToolMissing(tool) => assert_eq!(tool, "pg_dump"),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn the_password_is_kept_off_the_command_line() {
        let target = Target::new(&Secret::new(
            "postgres://aro:p%40ss@db.example:5432/aro?sslmode=require".to_string(),
        ))
        .expect("parses");
        assert_eq!(
            target.url,
            "postgres://aro@db.example:5432/aro?sslmode=require"
        );
        assert_eq!(target.password.as_deref(), Some("p@ss"));
        let bare = Target::new(&Secret::new("postgres://postgres@127.0.0.1/x".to_string()))
            .expect("parses");
        assert_eq!(bare.password, None);
    }

    #[test]
    fn check_block_refuses_odd_table_names() {
        let mut tables = BTreeMap::new();
        tables.insert(
            "bad\"; DROP".to_string(),
            TableStat {
                rows: 1,
                sha256: String::new(),
            },
        );
        let manifest = Manifest {
            format: 1,
            created_at: chrono::Utc::now(),
            aro_version: "0".into(),
            backend: super::super::manifest::SnapshotBackend::Postgres,
            schema_version: None,
            migrations: vec![],
            snapshot: super::super::manifest::SnapshotInfo {
                file: "database.pgdump".into(),
                bytes: 0,
                sha256: String::new(),
            },
            tables,
            server_version: String::new(),
            dump_tool: Some("pg_dump 15.20".into()),
        };
        assert!(check_block(&manifest).is_err());
        assert_eq!(dump_major(&manifest), 15);
    }
}
