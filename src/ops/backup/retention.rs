//! Backup file names and retention: `aro-backup-<UTC timestamp>.arobak`
//! (`aro-backup-20261125T020000Z.arobak`; a second backup within the same second gets
//! `-2`, `-3`, …), and pruning a directory down to its newest N backups. Only files
//! with exactly that name shape are ever listed or removed.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::BackupError;

/// Backup file names start with this.
pub const FILE_PREFIX: &str = "aro-backup-";
/// Backup file names end with this.
pub const FILE_SUFFIX: &str = ".arobak";
const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// The file name for a backup taken at `at`; `seq` > 1 disambiguates backups taken
/// within the same second.
pub fn backup_file_name(at: DateTime<Utc>, seq: u32) -> String {
    let stamp = at.format(STAMP);
    if seq > 1 {
        format!("{FILE_PREFIX}{stamp}-{seq}{FILE_SUFFIX}")
    } else {
        format!("{FILE_PREFIX}{stamp}{FILE_SUFFIX}")
    }
}

/// The (time, sequence) a backup file name encodes, if it is one.
fn parse_file_name(name: &str) -> Option<(NaiveDateTime, u32)> {
    let middle = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    let (stamp, seq) = match middle.split_once("Z-") {
        Some((stamp, seq)) => (format!("{stamp}Z"), seq.parse::<u32>().ok()?),
        None => (middle.to_string(), 1),
    };
    let at = NaiveDateTime::parse_from_str(&stamp, STAMP).ok()?;
    Some((at, seq))
}

/// The backups in `dir`, oldest first (by the time in their names).
pub fn list_backups(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| BackupError::io(dir, e))? {
        let entry = entry.map_err(|e| BackupError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(key) = parse_file_name(&name) {
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                found.push((key, entry.path()));
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// Deletes all but the newest `keep` backups in `dir` (at least one is always kept);
/// returns the deleted files. Other files in the directory are left alone.
pub fn prune_backups(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let keep = keep.max(1);
    let backups = list_backups(dir)?;
    let excess = backups.len().saturating_sub(keep);
    let mut removed = Vec::with_capacity(excess);
    for path in backups.into_iter().take(excess) {
        fs::remove_file(&path).map_err(|e| BackupError::io(&path, e))?;
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, secs: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 2, 0, secs)
            .single()
            .expect("valid time")
    }

    #[test]
    fn names_round_trip_and_sort_by_time_then_sequence() {
        assert_eq!(
            backup_file_name(at(25, 0), 1),
            "aro-backup-20261125T020000Z.arobak"
        );
        assert_eq!(
            backup_file_name(at(25, 0), 2),
            "aro-backup-20261125T020000Z-2.arobak"
        );
        let (t, seq) = parse_file_name("aro-backup-20261125T020000Z-12.arobak").expect("parses");
        assert_eq!((t, seq), (at(25, 0).naive_utc(), 12));
        for other in [
            "aro-backup-20261125T020000Z.arobak.partial",
            ".aro-backup-20261125T020000Z.arobak",
            "aro-backup-latest.arobak",
            "aro-backup-20261125T020000Z-x.arobak",
            "notes.txt",
        ] {
            assert!(parse_file_name(other).is_none(), "{other}");
        }
    }

    #[test]
    fn prune_keeps_the_newest_and_ignores_other_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut names = Vec::new();
        for day in 1..=20 {
            names.push(backup_file_name(at(day, 0), 1));
        }
        names.push(backup_file_name(at(20, 0), 2));
        names.push(backup_file_name(at(20, 0), 10));
        for name in &names {
            fs::write(dir.path().join(name), b"x").expect("write");
        }
        fs::write(dir.path().join("keep-me.txt"), b"x").expect("write");
        fs::write(dir.path().join(".aro-backup-tmp.partial"), b"x").expect("write");

        let removed = prune_backups(dir.path(), 5).expect("prune");
        assert_eq!(removed.len(), 17);
        let left: Vec<String> = list_backups(dir.path())
            .expect("list")
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(
            left,
            vec![
                "aro-backup-20261118T020000Z.arobak",
                "aro-backup-20261119T020000Z.arobak",
                "aro-backup-20261120T020000Z.arobak",
                "aro-backup-20261120T020000Z-2.arobak",
                "aro-backup-20261120T020000Z-10.arobak",
            ]
        );
        assert!(dir.path().join("keep-me.txt").exists());
        assert!(dir.path().join(".aro-backup-tmp.partial").exists());

        // Nothing to do, and never below one.
        assert!(prune_backups(dir.path(), 30).expect("prune").is_empty());
        assert_eq!(prune_backups(dir.path(), 0).expect("prune").len(), 4);
        assert_eq!(list_backups(dir.path()).expect("list").len(), 1);
    }
}
