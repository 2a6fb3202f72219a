//! The daemon's daily backup (SPEC §9): every day at 02:00 in the business's zone
//! (`timezone`) an encrypted backup is written into `<data_dir>/backups` with
//! [`take_backup`], then the directory is pruned to the newest [`DEFAULT_KEEP`].
//!
//! This module owns the schedule: [`next_slot`], the pure computation of the next
//! 02:00 local instant (correct across daylight-saving changes), and
//! [`BackupScheduler`], the task `app` starts after the engine and stops at shutdown.
//! A failed backup is logged (without secrets) and tried again at the next slot. The
//! gauge `aro_last_backup_timestamp_seconds` holds the time of the newest backup in the
//! directory (set at start from the files there, then after every success).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Duration as ChronoDuration, LocalResult, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::Config;
use crate::crypto::{CryptoError, KeySource, MasterKey};
use crate::ops::backup::{default_dir, prune_backups, take_backup, BackupError, DEFAULT_KEEP};
use crate::store::Database;

/// The local time of day the daily backup runs.
pub const DAILY_AT: NaiveTime = match NaiveTime::from_hms_opt(2, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// The gauge holding the Unix time of the newest backup.
pub const LAST_BACKUP_GAUGE: &str = "aro_last_backup_timestamp_seconds";

/// The longest single sleep: the wall clock is read again after each, so a suspended
/// machine or a corrected clock delays a backup by at most this much.
const MAX_SLEEP: Duration = Duration::from_secs(300);

/// Why one scheduled backup failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("cannot load the master key: {0}")]
    Key(#[from] CryptoError),
    #[error(transparent)]
    Backup(#[from] BackupError),
}

/// The first instant strictly after `after` at which the local time in `zone` is `at`.
///
/// When `at` does not exist on a day (the clocks jump over it), that day's slot is the
/// first instant after the gap; when it occurs twice (the clocks go back over it), the
/// first of the two. So there is exactly one slot per local day.
pub fn next_slot(after: DateTime<Utc>, zone: Tz, at: NaiveTime) -> DateTime<Utc> {
    let today = after.with_timezone(&zone).date_naive();
    let mut day = today.pred_opt().unwrap_or(today);
    // The slot of a local day is within that day (±1 day of offset), so a few days
    // from yesterday always find one; the fallback is never reached in practice.
    for _ in 0..5 {
        if let Some(slot) = slot_on(zone, day, at) {
            if slot > after {
                return slot;
            }
        }
        day = match day.succ_opt() {
            Some(next) => next,
            None => break,
        };
    }
    after + ChronoDuration::days(1)
}

/// The instant of local `day` + `at` in `zone`: the earlier of two when the local time
/// repeats, the first instant after the gap when it does not exist.
fn slot_on(zone: Tz, day: chrono::NaiveDate, at: NaiveTime) -> Option<DateTime<Utc>> {
    let local = day.and_time(at);
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Some(first.min(second).with_timezone(&Utc)),
        LocalResult::None => {
            // Walk forward a minute at a time to the end of the gap (gaps are whole
            // minutes, and at most a day long — Samoa skipped 30 December 2011).
            let mut probe = local;
            for _ in 0..(2 * 24 * 60) {
                probe += ChronoDuration::minutes(1);
                if let Some(t) = zone.from_local_datetime(&probe).earliest() {
                    return Some(t.with_timezone(&Utc));
                }
            }
            None
        }
    }
}

/// The daily backup task. Dropping it (or [`BackupScheduler::stop`]) stops the
/// schedule; a backup already being written finishes on the blocking pool.
#[derive(Debug)]
pub struct BackupScheduler {
    task: tokio::task::JoinHandle<()>,
}

impl BackupScheduler {
    /// Starts the schedule on the current runtime when `backup.daily` is on. Must run
    /// inside the actix system (or a tokio runtime).
    pub fn start(config: &Config, db: &Database) -> Option<Self> {
        let dir = default_dir(&config.data_dir);
        publish_newest(&dir);
        if !config.backup.daily {
            tracing::info!("daily backups are off (backup.daily = false)");
            return None;
        }
        let job = Job {
            config: config.clone(),
            db: db.clone(),
            dir,
            zone: config.timezone,
        };
        let next = next_slot(Utc::now(), job.zone, DAILY_AT);
        tracing::info!(
            next = %next.to_rfc3339(),
            zone = %job.zone,
            dir = %job.dir.display(),
            "daily backups scheduled"
        );
        let task = tokio::task::spawn(job.run());
        Some(Self { task })
    }

    /// Stops the schedule.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for BackupScheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Job {
    config: Config,
    db: Database,
    dir: PathBuf,
    zone: Tz,
}

impl Job {
    async fn run(self) {
        loop {
            let slot = next_slot(Utc::now(), self.zone, DAILY_AT);
            sleep_until(slot).await;
            match self.backup_once().await {
                Ok(()) => {}
                Err(error) => {
                    let next = next_slot(Utc::now(), self.zone, DAILY_AT);
                    tracing::error!(
                        error = %error,
                        next = %next.to_rfc3339(),
                        "daily backup failed; it is tried again at the next slot"
                    );
                }
            }
        }
    }

    async fn backup_once(&self) -> Result<(), ScheduleError> {
        let key = MasterKey::load_or_create(&self.config)?;
        if let KeySource::Created(path) = key.source() {
            tracing::warn!(
                path = %path.display(),
                "created a new master key for backups: keep a copy of it (or set ARO_MASTER_KEY) \
                 somewhere other than this machine; no backup can be read without it"
            );
        }
        let report = take_backup(&self.db, &self.config.database, &key, &self.dir).await?;
        metrics::gauge!(LAST_BACKUP_GAUGE).set(unix_seconds(SystemTime::now()));
        let dir = self.dir.clone();
        let removed = tokio::task::spawn_blocking(move || prune_backups(&dir, DEFAULT_KEEP))
            .await
            .map_err(|e| BackupError::Task(e.to_string()))??;
        tracing::info!(
            path = %report.path.display(),
            bytes = report.bytes,
            removed = removed.len(),
            "daily backup written"
        );
        Ok(())
    }
}

/// Sleeps until the wall clock reaches `at`, re-reading it at least every [`MAX_SLEEP`].
pub(crate) async fn sleep_until(at: DateTime<Utc>) {
    loop {
        let left = at.signed_duration_since(Utc::now());
        let Ok(left) = left.to_std() else {
            return;
        };
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(MAX_SLEEP)).await;
    }
}

/// Sets the gauge from the newest backup file in `dir`, if there is one.
fn publish_newest(dir: &Path) {
    // The recorder must exist before the gauge is set, or the value is dropped.
    let _ = crate::http::metrics_recorder();
    if let Some(modified) = newest_backup(dir).map(|(_, at)| at) {
        metrics::gauge!(LAST_BACKUP_GAUGE).set(unix_seconds(modified));
    }
}

/// The newest `*.arobak` file in `dir` by modification time, with that time.
pub fn newest_backup(dir: &Path) -> Option<(PathBuf, SystemTime)> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "arobak"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file()
                .then(|| meta.modified().ok())
                .flatten()
                .map(|at| (e.path(), at))
        })
        .max_by_key(|(_, at)| *at)
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    fn two() -> NaiveTime {
        DAILY_AT
    }

    #[test]
    fn an_ordinary_day_runs_at_two_local() {
        let zone: Tz = "America/New_York".parse().expect("zone");
        // 2026-06-10 12:00 UTC = 08:00 EDT: the next 02:00 EDT is tomorrow 06:00 UTC.
        assert_eq!(
            next_slot(utc("2026-06-10T12:00:00Z"), zone, two()),
            utc("2026-06-11T06:00:00Z")
        );
        // 01:59 EDT: today's slot is still ahead.
        assert_eq!(
            next_slot(utc("2026-06-10T05:59:00Z"), zone, two()),
            utc("2026-06-10T06:00:00Z")
        );
        // Exactly at the slot: the next one, a day later (strictly after).
        assert_eq!(
            next_slot(utc("2026-06-10T06:00:00Z"), zone, two()),
            utc("2026-06-11T06:00:00Z")
        );
        assert_eq!(
            next_slot(utc("2026-06-10T12:00:00Z"), Tz::UTC, two()),
            utc("2026-06-11T02:00:00Z")
        );
    }

    #[test]
    fn new_york_spring_forward_uses_the_first_instant_after_the_gap() {
        let zone: Tz = "America/New_York".parse().expect("zone");
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:00 does not exist. The first
        // instant after the gap is 03:00 EDT = 07:00 UTC.
        let slot = next_slot(utc("2026-03-07T12:00:00Z"), zone, two());
        assert_eq!(slot, utc("2026-03-08T07:00:00Z"));
        // And the day after is back to 02:00 EDT = 06:00 UTC.
        assert_eq!(next_slot(slot, zone, two()), utc("2026-03-09T06:00:00Z"));
        // The day before was 02:00 EST = 07:00 UTC.
        assert_eq!(
            next_slot(utc("2026-03-06T12:00:00Z"), zone, two()),
            utc("2026-03-07T07:00:00Z")
        );
    }

    #[test]
    fn new_york_fall_back_runs_once() {
        let zone: Tz = "America/New_York".parse().expect("zone");
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 02:00 itself occurs once
        // (02:00 EST = 07:00 UTC), the hour 01:00–02:00 twice.
        let slot = next_slot(utc("2026-10-31T12:00:00Z"), zone, two());
        assert_eq!(slot, utc("2026-11-01T07:00:00Z"));
        assert_eq!(next_slot(slot, zone, two()), utc("2026-11-02T07:00:00Z"));
        // A time inside the repeated hour takes the first occurrence (EDT), once.
        let half_past_one = NaiveTime::from_hms_opt(1, 30, 0).expect("time");
        let first = next_slot(utc("2026-10-31T12:00:00Z"), zone, half_past_one);
        assert_eq!(first, utc("2026-11-01T05:30:00Z"));
        assert_eq!(
            next_slot(first, zone, half_past_one),
            utc("2026-11-02T06:30:00Z"),
            "the second 01:30 (06:30 UTC) the same day is not a slot"
        );
    }

    #[test]
    fn berlin_spring_forward_uses_the_first_instant_after_the_gap() {
        let zone: Tz = "Europe/Berlin".parse().expect("zone");
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST = 01:00 UTC.
        let slot = next_slot(utc("2026-03-28T12:00:00Z"), zone, two());
        assert_eq!(slot, utc("2026-03-29T01:00:00Z"));
        assert_eq!(next_slot(slot, zone, two()), utc("2026-03-30T00:00:00Z"));
    }

    #[test]
    fn berlin_fall_back_takes_the_first_two_oclock_once() {
        let zone: Tz = "Europe/Berlin".parse().expect("zone");
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:00 occurs at 00:00 UTC
        // (CEST) and 01:00 UTC (CET). The first is the slot, and only it.
        let slot = next_slot(utc("2026-10-24T12:00:00Z"), zone, two());
        assert_eq!(slot, utc("2026-10-25T00:00:00Z"));
        let after = next_slot(slot, zone, two());
        assert_eq!(after, utc("2026-10-26T01:00:00Z"));
        // Between the two 02:00s, the next slot is tomorrow's.
        assert_eq!(
            next_slot(utc("2026-10-25T00:30:00Z"), zone, two()),
            utc("2026-10-26T01:00:00Z")
        );
    }

    #[test]
    fn a_skipped_day_still_gets_a_slot() {
        // Samoa skipped 30 December 2011 entirely (UTC-10 → UTC+14).
        let zone: Tz = "Pacific/Apia".parse().expect("zone");
        let slot = next_slot(utc("2011-12-29T20:00:00Z"), zone, two());
        assert!(slot > utc("2011-12-29T20:00:00Z"));
        assert!(slot <= utc("2011-12-31T00:00:00Z"), "{slot}");
    }

    #[actix_rt::test]
    async fn a_scheduled_run_writes_a_backup_and_prunes_to_thirty() {
        use crate::config::ConfigSources;
        use crate::ops::backup::{backup_file_name, list_backups};

        let dir = tempfile::tempdir().expect("tempdir");
        let env = vec![
            ("ARO_DATA_DIR".to_string(), dir.path().display().to_string()),
            ("ARO_MASTER_KEY".to_string(), "ab".repeat(32)),
        ];
        let config = Config::load(&ConfigSources { file: None, env })
            .expect("valid")
            .config;
        let db = Database::open(&config.database).expect("open");
        db.run(crate::store::migrations::run_pending)
            .await
            .expect("migrate");
        let backups = default_dir(&config.data_dir);
        std::fs::create_dir_all(&backups).expect("dir");
        for day in 1..=31 {
            let at = Utc
                .with_ymd_and_hms(2020, 1, day, 2, 0, 0)
                .single()
                .expect("time");
            std::fs::write(backups.join(backup_file_name(at, 1)), b"old").expect("write");
        }
        let job = Job {
            config: config.clone(),
            db,
            dir: backups.clone(),
            zone: config.timezone,
        };
        job.backup_once().await.expect("backup");
        let left = list_backups(&backups).expect("list");
        assert_eq!(left.len(), DEFAULT_KEEP);
        let newest = left.last().expect("newest");
        assert!(
            std::fs::metadata(newest).expect("meta").len() > 100,
            "the newest is the real backup: {}",
            newest.display()
        );
        assert!(!backups
            .join(backup_file_name(
                Utc.with_ymd_and_hms(2020, 1, 2, 2, 0, 0)
                    .single()
                    .expect("time"),
                1
            ))
            .exists());
        assert!(
            !dir.path().join("master.key").exists(),
            "the configured key is used"
        );
    }

    #[test]
    fn newest_backup_is_by_modification_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(newest_backup(dir.path()).is_none());
        assert!(newest_backup(&dir.path().join("missing")).is_none());
        let old = dir.path().join("aro-backup-20260101T020000Z.arobak");
        let new = dir.path().join("manual.arobak");
        std::fs::write(&old, b"x").expect("write");
        std::fs::write(&new, b"x").expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"x").expect("write");
        let day_ago = SystemTime::now() - Duration::from_secs(86_400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .and_then(|f| f.set_modified(day_ago))
            .expect("set mtime");
        let (path, _) = newest_backup(dir.path()).expect("found");
        assert_eq!(path, new);
    }
}
