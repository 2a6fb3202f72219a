//! The backup manifest (`manifest.json` inside the sealed payload): what was backed up,
//! from which backend and schema, and the facts a restore checks the snapshot against:
//! its size and SHA-256, and per table the row count and a SHA-256 over every row
//! (rendered as text, in primary-key order). The table facts are computed from the
//! snapshot itself (the `VACUUM INTO` file, or inside the exported PostgreSQL snapshot
//! that `pg_dump` reads), never from the live database, which keeps moving.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::BackupError;

/// The manifest version this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// Which backend a snapshot is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotBackend {
    /// A SQLite database file made by `VACUUM INTO`.
    Sqlite,
    /// A `pg_dump` custom-format archive of the `public` schema.
    Postgres,
}

impl SnapshotBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotBackend::Sqlite => "sqlite",
            SnapshotBackend::Postgres => "postgres",
        }
    }

    /// The snapshot's name inside the payload.
    pub fn snapshot_file(self) -> &'static str {
        match self {
            SnapshotBackend::Sqlite => "database.sqlite3",
            SnapshotBackend::Postgres => "database.pgdump",
        }
    }
}

/// The snapshot file inside the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub file: String,
    pub bytes: u64,
    /// Hex SHA-256 of the snapshot file.
    pub sha256: String,
}

/// One table of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStat {
    pub rows: i64,
    /// Hex SHA-256 over the table's rows in primary-key order (see `sqlite.rs` and
    /// `postgres.rs` for the rendering; comparable within one backend).
    pub sha256: String,
}

/// Everything a backup says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: DateTime<Utc>,
    /// The `aro` version that wrote the backup.
    pub aro_version: String,
    pub backend: SnapshotBackend,
    /// The newest applied migration's version, if any.
    pub schema_version: Option<String>,
    /// Every applied migration version, oldest first.
    pub migrations: Vec<String>,
    pub snapshot: SnapshotInfo,
    pub tables: BTreeMap<String, TableStat>,
    /// The database server's version (PostgreSQL) or the SQLite library's.
    pub server_version: String,
    /// The dump tool and its version (PostgreSQL only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_tool: Option<String>,
}

impl Manifest {
    /// Parses and checks a manifest read from a backup.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BackupError> {
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| BackupError::Malformed(format!("manifest.json: {e}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(BackupError::Malformed(format!(
                "manifest format {} is not supported (this build reads {MANIFEST_FORMAT})",
                manifest.format
            )));
        }
        if manifest.snapshot.file != manifest.backend.snapshot_file() {
            return Err(BackupError::Malformed(format!(
                "manifest names snapshot {:?} for a {} backup",
                manifest.snapshot.file,
                manifest.backend.as_str()
            )));
        }
        Ok(manifest)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, BackupError> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| BackupError::Malformed(format!("manifest.json: {e}")))
    }

    /// Total rows over every table.
    pub fn total_rows(&self) -> i64 {
        self.tables.values().map(|t| t.rows).sum()
    }

    /// Checks the snapshot's size and SHA-256 against the manifest.
    pub fn check_snapshot(&self, bytes: u64, sha256: &str) -> Result<(), BackupError> {
        if bytes != self.snapshot.bytes || !sha256.eq_ignore_ascii_case(&self.snapshot.sha256) {
            return Err(BackupError::ChecksumMismatch {
                expected: format!(
                    "{} bytes, sha256 {}",
                    self.snapshot.bytes, self.snapshot.sha256
                ),
                actual: format!("{bytes} bytes, sha256 {sha256}"),
            });
        }
        Ok(())
    }

    /// The differences between the manifest's tables and `actual`, one line each
    /// (empty when they match).
    pub fn table_differences(&self, actual: &BTreeMap<String, TableStat>) -> Vec<String> {
        let mut out = Vec::new();
        for (name, want) in &self.tables {
            match actual.get(name) {
                None => out.push(format!("table {name} is missing")),
                Some(got) if got.rows != want.rows => out.push(format!(
                    "table {name} has {} rows, the backup {}",
                    got.rows, want.rows
                )),
                Some(got) if got.sha256 != want.sha256 => {
                    out.push(format!("table {name}: content checksum differs"))
                }
                Some(_) => {}
            }
        }
        for name in actual.keys() {
            if !self.tables.contains_key(name) {
                out.push(format!("table {name} is not in the backup"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let mut tables = BTreeMap::new();
        tables.insert(
            "appointments".to_string(),
            TableStat {
                rows: 3,
                sha256: "aa".repeat(32),
            },
        );
        tables.insert(
            "inbox".to_string(),
            TableStat {
                rows: 5,
                sha256: "bb".repeat(32),
            },
        );
        Manifest {
            format: MANIFEST_FORMAT,
            created_at: Utc::now(),
            aro_version: "0.1.0".into(),
            backend: SnapshotBackend::Sqlite,
            schema_version: Some("20261125000006".into()),
            migrations: vec!["20261124000001".into(), "20261125000006".into()],
            snapshot: SnapshotInfo {
                file: "database.sqlite3".into(),
                bytes: 4096,
                sha256: "cc".repeat(32),
            },
            tables,
            server_version: "SQLite 3.46.0".into(),
            dump_tool: None,
        }
    }

    #[test]
    fn json_round_trip() {
        let m = manifest();
        let json = m.to_json().expect("json");
        let text = String::from_utf8(json.clone()).expect("utf8");
        assert!(text.contains("\"backend\": \"sqlite\""), "{text}");
        assert!(!text.contains("dump_tool"));
        assert_eq!(Manifest::from_json(&json).expect("parses"), m);
        assert_eq!(m.total_rows(), 8);
    }

    #[test]
    fn unknown_format_and_inconsistent_snapshot_name_are_refused() {
        let mut m = manifest();
        m.format = 2;
        let err = Manifest::from_json(&m.to_json().expect("json")).expect_err("format");
        assert!(err.to_string().contains("format 2"), "{err}");
        let mut m = manifest();
        m.snapshot.file = "../../etc/passwd".into();
        assert!(Manifest::from_json(&m.to_json().expect("json")).is_err());
        assert!(Manifest::from_json(b"{not json").is_err());
    }

    #[test]
    fn snapshot_checksum_and_size_are_checked() {
        let m = manifest();
        m.check_snapshot(4096, &"CC".repeat(32)).expect("matches");
        assert!(matches!(
            m.check_snapshot(4096, &"cd".repeat(32)),
            Err(BackupError::ChecksumMismatch { .. })
        ));
        assert!(matches!(
            m.check_snapshot(4095, &"cc".repeat(32)),
            Err(BackupError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn table_differences_name_every_mismatch() {
        let m = manifest();
        assert!(m.table_differences(&m.tables).is_empty());
        let mut actual = m.tables.clone();
        actual.get_mut("inbox").expect("inbox").rows = 6;
        actual.get_mut("appointments").expect("appts").sha256 = "00".repeat(32);
        actual.insert(
            "extra".into(),
            TableStat {
                rows: 0,
                sha256: String::new(),
            },
        );
        let diffs = m.table_differences(&actual);
        assert_eq!(
            diffs,
            vec![
                "table appointments: content checksum differs",
                "table inbox has 6 rows, the backup 5",
                "table extra is not in the backup",
            ]
        );
        actual.remove("inbox");
        assert!(m
            .table_differences(&actual)
            .contains(&"table inbox is missing".to_string()));
    }
}
