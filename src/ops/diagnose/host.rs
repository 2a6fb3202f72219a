//! The checks of the machine ARO runs on: where the configuration came from, the data
//! directory, free disk space (from `df -Pk`, the portable POSIX output), the age of
//! the newest backup, and the clock compared with a provider's or the database's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::{human_duration, Check};
use crate::config::{Config, LoadedConfig};
use crate::ops::backup::default_dir;
use crate::ops::backup_schedule::newest_backup;
use crate::store::Backend;

/// Below this much free space on the data directory's file system: a warning.
const LOW_DISK_BYTES: u64 = 1 << 30;
/// A newest backup older than this: a failure (a day, plus slack for a slow backup).
const BACKUP_MAX_AGE_HOURS: i64 = 26;
/// A clock further off than this: a warning.
const MAX_SKEW_SECS: f64 = 5.0;

/// The configuration loaded (or `aro` would not have got here); says from where.
pub fn configuration(loaded: &LoadedConfig) -> Check {
    let shown = loaded.render_masked();
    let mut files: BTreeMap<String, usize> = BTreeMap::new();
    let mut env: Vec<String> = Vec::new();
    for line in shown.lines() {
        let Some((_, source)) = line.rsplit_once("  # ") else {
            continue;
        };
        if let Some(file) = source.strip_prefix("file ") {
            *files.entry(file.to_string()).or_default() += 1;
        } else if let Some(name) = source.strip_prefix("environment ") {
            env.push(name.to_string());
        }
    }
    let mut parts = Vec::new();
    for (file, n) in &files {
        parts.push(format!("{n} key(s) from file {file}"));
    }
    if !env.is_empty() {
        parts.push(format!(
            "{} from the environment ({})",
            env.len(),
            env.join(", ")
        ));
    }
    let origin = if parts.is_empty() {
        "built-in defaults only (no --config / ARO_CONFIG file, no ARO_* variables)".to_string()
    } else {
        format!("{}; defaults for the rest", parts.join(", "))
    };
    Check::ok(
        "configuration",
        format!(
            "valid: {origin}; profile {}, zone {}",
            loaded.config.profile, loaded.config.timezone
        ),
    )
}

/// The data directory exists and a file can be created in it.
pub fn data_dir(dir: &Path) -> Check {
    const ID: &str = "data_dir";
    let shown = dir.display();
    if !dir.exists() {
        return Check::fail(
            ID,
            format!("{shown} does not exist"),
            format!(
                "check data_dir (ARO_DATA_DIR); `aro serve` creates it on first start, or \
                 create it for the service user: install -d -m 0700 -o aro -g aro {shown}"
            ),
        );
    }
    if !dir.is_dir() {
        return Check::fail(
            ID,
            format!("{shown} is not a directory"),
            "point data_dir (ARO_DATA_DIR) at a directory",
        );
    }
    let probe = dir.join(format!(
        ".aro-diagnose-{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Check::ok(ID, format!("{shown} exists and is writable"))
        }
        Err(e) => Check::fail(
            ID,
            format!("{shown} is not writable: {e}"),
            format!(
                "run aro as the user that owns {shown} (the service user, e.g. `sudo -u aro`), \
                 or fix its ownership: chown -R aro:aro {shown}"
            ),
        ),
    }
}

/// Free space on the data directory's file system (or its nearest existing parent).
pub fn disk_space(dir: &Path) -> Check {
    const ID: &str = "disk_space";
    let target = nearest_existing(dir);
    let measured = Command::new("df")
        .arg("-Pk")
        .arg(&target)
        .output()
        .map_err(|e| format!("cannot run df: {e}"))
        .and_then(|out| {
            if out.status.success() {
                parse_df_available(&String::from_utf8_lossy(&out.stdout))
                    .ok_or_else(|| "cannot read df's output".to_string())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
            }
        });
    match measured {
        Ok(free) if free < LOW_DISK_BYTES => Check::warn(
            ID,
            format!("only {} free on {}", bytes(free), target.display()),
            "free space or grow the file system: SQLite needs room for its WAL, a backup needs \
             room for one compacted copy of the database, and a full disk stops webhooks from \
             being acknowledged; old backups in <data_dir>/backups can be moved elsewhere",
        ),
        Ok(free) => Check::ok(ID, format!("{} free on {}", bytes(free), target.display())),
        Err(why) => Check::warn(
            ID,
            format!(
                "could not measure free space on {}: {why}",
                target.display()
            ),
            format!("check by hand: df -h {}", target.display()),
        ),
    }
}

/// The directory itself, or the nearest parent that exists (so that a missing data
/// directory still gets its file system measured).
fn nearest_existing(dir: &Path) -> PathBuf {
    let mut current = Some(dir);
    while let Some(path) = current {
        if path.exists() {
            return path.to_path_buf();
        }
        current = path.parent().filter(|p| !p.as_os_str().is_empty());
    }
    PathBuf::from(".")
}

/// The available bytes in `df -Pk` output: the field before the capacity (`NN%`) on
/// the first data line (the file system name may contain spaces; the mount point too).
pub fn parse_df_available(output: &str) -> Option<u64> {
    let line = output.lines().nth(1)?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let capacity = fields.iter().position(|f| {
        f.strip_suffix('%')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    })?;
    let kib: u64 = fields.get(capacity.checked_sub(1)?)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let n = n as f64;
    if n >= GIB {
        format!("{:.1} GiB", n / GIB)
    } else {
        format!("{:.0} MiB", n / MIB)
    }
}

/// The newest `*.arobak` in `<data_dir>/backups` is at most 26 hours old.
pub fn last_backup(config: &Config, now: DateTime<Utc>) -> Check {
    const ID: &str = "backups";
    let dir = default_dir(&config.data_dir);
    let how = if config.backup.daily {
        "the daemon takes one daily at 02:00 (backup.daily): check that `aro serve` runs and \
         look for \"daily backup failed\" in its log; take one now with `aro backup`"
    } else {
        "backup.daily is off: turn it on (ARO_BACKUP_DAILY=true) or run `aro backup` from a \
         daily timer; take one now with `aro backup`"
    };
    match newest_backup(&dir) {
        None => Check::fail(ID, format!("no backup in {}", dir.display()), how),
        Some((path, modified)) => {
            let at: DateTime<Utc> = DateTime::<Utc>::from(modified);
            let age = now.signed_duration_since(at);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let summary = format!("newest is {name}, {} old", human_duration(age));
            if age > chrono::Duration::hours(BACKUP_MAX_AGE_HOURS) {
                Check::fail(ID, summary, how)
            } else {
                Check::ok(ID, summary)
            }
        }
    }
}

/// Where a reference time came from, and the local clock when it was read.
#[derive(Debug, Clone, Copy)]
pub struct ClockSample {
    pub source: &'static str,
    pub theirs: DateTime<Utc>,
    pub ours: DateTime<Utc>,
}

impl ClockSample {
    pub fn now(source: &'static str, theirs: DateTime<Utc>) -> Self {
        Self {
            source,
            theirs,
            ours: DateTime::<Utc>::from(SystemTime::now()),
        }
    }
}

/// The local clock against a provider's `Date` header, else the database's clock.
pub fn clock_skew(
    provider: Option<ClockSample>,
    database: Option<ClockSample>,
    backend: Option<Backend>,
) -> Check {
    const ID: &str = "clock";
    let Some(sample) = provider.or(database) else {
        return Check::skip(ID, "no provider answered and the database is not reachable");
    };
    // HTTP dates and SQLite's CURRENT_TIMESTAMP have whole seconds: allow for that.
    let skew = (sample.ours - sample.theirs).num_milliseconds() as f64 / 1000.0;
    let same_machine = provider.is_none() && backend == Some(Backend::Sqlite);
    let direction = if skew >= 0.0 { "ahead of" } else { "behind" };
    let summary = format!("{:.1} s {direction} {}", skew.abs(), sample.source);
    if skew.abs() > MAX_SKEW_SECS {
        Check::warn(
            ID,
            summary,
            "synchronise the clock (timedatectl set-ntp true, or chrony / systemd-timesyncd): \
             webhook signatures more than 5 minutes old are refused and reminders fire at the \
             wrong time",
        )
    } else if same_machine {
        Check::ok(
            ID,
            format!(
                "{summary} (SQLite uses this machine's clock; configure a provider to compare \
                 with an outside one)"
            ),
        )
    } else {
        Check::ok(ID, summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_is_read_from_the_capacity_column() {
        let linux = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n\
                     /dev/nvme0n1p2   491134000 201234000 264883000      44% /\n";
        assert_eq!(parse_df_available(linux), Some(264_883_000 * 1024));
        let spaces = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                      map auto home 0 0 512 100% /System/Volumes/Data/home dir\n";
        assert_eq!(parse_df_available(spaces), Some(512 * 1024));
        assert_eq!(parse_df_available("Filesystem\n"), None);
        assert_eq!(parse_df_available("header\nnothing here\n"), None);
    }

    #[test]
    fn the_nearest_existing_parent_is_measured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("a/b/c");
        assert_eq!(nearest_existing(&missing), dir.path());
        assert_eq!(nearest_existing(dir.path()), dir.path());
    }

    #[test]
    fn clock_skew_warns_beyond_five_seconds() {
        let theirs = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let sample = |secs: i64| ClockSample {
            source: "twilio's Date header",
            theirs,
            ours: theirs + chrono::Duration::seconds(secs),
        };
        let check = clock_skew(Some(sample(2)), None, None);
        assert_eq!(check.status, super::super::Status::Ok);
        assert!(
            check.summary.contains("2.0 s ahead of twilio"),
            "{}",
            check.summary
        );
        let check = clock_skew(Some(sample(-9)), None, None);
        assert_eq!(check.status, super::super::Status::Warn);
        assert!(check.summary.contains("9.0 s behind"), "{}", check.summary);
        assert_eq!(
            clock_skew(None, None, None).status,
            super::super::Status::Skip
        );
    }

    #[test]
    fn a_missing_data_dir_fails_and_is_not_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let check = data_dir(&missing);
        assert_eq!(check.status, super::super::Status::Fail);
        assert!(!missing.exists());
        assert_eq!(data_dir(dir.path()).status, super::super::Status::Ok);
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            0,
            "the write probe is removed"
        );
    }
}
