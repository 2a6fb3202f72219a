//! `aro diagnose`: checks of a whole installation, each with a verdict (✓ ok, ! warning,
//! ✗ failure, - not checked) and, when not ok, what to do about it; and the redacted
//! support bundle (`bundle`).
//!
//! This module owns the report's shape, the order of the checks and their rendering
//! (a table for people, JSON for machines). The checks live beside it: `host`
//! (configuration, data directory, free disk space, last backup), `database`
//! (reachability, migrations, breakers, dead letters, timer lag, the database clock,
//! the counts of the bundle's metrics snapshot) and `integrations` (an authenticated
//! GET to each configured provider through the adapters' HTTP plumbing).
//!
//! Diagnose changes nothing: a missing SQLite database is reported, never created, and
//! nothing is migrated. Every text it produces passes through the log redactor, so no
//! configured secret and no full phone number reaches the output.

mod bundle;
mod database;
mod host;
pub(crate) mod integrations;

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{ConfigError, LoadedConfig};
use crate::telemetry::Redactor;

pub use bundle::{write_bundle, BundleReport};
pub use database::Snapshot;

/// Why a support bundle could not be written (the checks themselves never fail: a
/// problem they find is a ✗ in the report).
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// ✓
    Ok,
    /// ! — works, but needs attention.
    Warn,
    /// ✗ — broken; `aro diagnose` exits 1.
    Fail,
    /// - — not checked, because something it depends on failed.
    Skip,
}

impl Status {
    pub fn symbol(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "-",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `database`, `integration.twilio`.
    pub id: String,
    pub status: Status,
    /// What was found.
    pub summary: String,
    /// What to do, when the status is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
}

impl Check {
    pub fn ok(id: &str, summary: impl Into<String>) -> Self {
        Self::new(id, Status::Ok, summary, None)
    }

    pub fn warn(id: &str, summary: impl Into<String>, recommendation: impl Into<String>) -> Self {
        Self::new(id, Status::Warn, summary, Some(recommendation.into()))
    }

    pub fn fail(id: &str, summary: impl Into<String>, recommendation: impl Into<String>) -> Self {
        Self::new(id, Status::Fail, summary, Some(recommendation.into()))
    }

    pub fn skip(id: &str, why: impl Into<String>) -> Self {
        Self::new(
            id,
            Status::Skip,
            format!("not checked: {}", why.into()),
            None,
        )
    }

    fn new(id: &str, status: Status, summary: impl Into<String>, rec: Option<String>) -> Self {
        Self {
            id: id.to_string(),
            status,
            summary: summary.into(),
            recommendation: rec,
        }
    }
}

/// How many checks ended in each verdict.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
}

/// Everything `aro diagnose` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub aro_version: String,
    pub generated_at: DateTime<Utc>,
    /// No check failed (warnings allowed).
    pub ok: bool,
    pub counts: Counts,
    pub checks: Vec<Check>,
}

impl Report {
    fn new(checks: Vec<Check>) -> Self {
        let mut counts = Counts::default();
        for check in &checks {
            match check.status {
                Status::Ok => counts.ok += 1,
                Status::Warn => counts.warn += 1,
                Status::Fail => counts.fail += 1,
                Status::Skip => counts.skip += 1,
            }
        }
        Self {
            aro_version: env!("CARGO_PKG_VERSION").to_string(),
            generated_at: Utc::now(),
            ok: counts.fail == 0,
            counts,
            checks,
        }
    }

    /// The table people read.
    pub fn render_table(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| c.id.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = format!(
            "aro diagnose — aro {} at {}\n\n",
            self.aro_version,
            self.generated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        for check in &self.checks {
            let mut lines = check.summary.lines();
            let _ = writeln!(
                out,
                "{} {:<width$}  {}",
                check.status.symbol(),
                check.id,
                lines.next().unwrap_or_default()
            );
            for more in lines {
                let _ = writeln!(out, "  {:<width$}  {more}", "");
            }
            if let Some(rec) = &check.recommendation {
                let _ = writeln!(out, "  {:<width$}  → {rec}", "");
            }
        }
        let c = self.counts;
        let _ = writeln!(
            out,
            "\n{} ok, {} warning(s), {} failed, {} not checked",
            c.ok, c.warn, c.fail, c.skip
        );
        out
    }

    /// Pretty JSON for machines.
    pub fn to_json(&self) -> Result<String, DiagnoseError> {
        serde_json::to_string_pretty(self).map_err(|source| DiagnoseError::Json {
            what: "the report",
            source,
        })
    }
}

/// What one run found: the report and, when asked for, the database counts for a
/// support bundle.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub report: Report,
    pub snapshot: Option<Snapshot>,
}

/// Runs every check against a loaded configuration. Must run inside an actix system
/// (the provider checks use the adapters' awc plumbing). `with_snapshot`: also count
/// rows for the bundle's metrics snapshot.
pub async fn run(loaded: &LoadedConfig, with_snapshot: bool) -> Diagnosis {
    let config = &loaded.config;
    let mut checks = vec![host::configuration(loaded)];
    checks.push(host::data_dir(&config.data_dir));
    checks.push(host::disk_space(&config.data_dir));

    let (db_check, db) = database::open(config).await;
    checks.push(db_check);
    let pending = match &db {
        Some(db) => {
            let (check, pending) = database::migrations(db).await;
            checks.push(check);
            pending
        }
        None => {
            checks.push(Check::skip("migrations", "the database is not reachable"));
            None
        }
    };

    let probes = integrations::check_all(config).await;
    let provider_clock = probes.iter().find_map(|p| p.clock);
    checks.extend(probes.into_iter().map(|p| p.check));

    let now = Utc::now();
    let mut db_clock = None;
    let mut snapshot = None;
    match &db {
        Some(db) => {
            let schema_behind = pending.is_none_or(|n| n > 0);
            checks.push(database::breakers(db, now, schema_behind).await);
            checks.push(database::dead_letters(db, schema_behind).await);
            checks.push(host::last_backup(config, now));
            checks.push(database::timers(db, now, schema_behind).await);
            if provider_clock.is_none() {
                db_clock = database::clock(db).await;
            }
            if with_snapshot {
                snapshot = database::snapshot(db).await.ok();
            }
        }
        None => {
            let why = "the database is not reachable";
            checks.push(Check::skip("breakers", why));
            checks.push(Check::skip("dead_letters", why));
            checks.push(host::last_backup(config, now));
            checks.push(Check::skip("timers", why));
        }
    }
    checks.push(host::clock_skew(
        provider_clock,
        db_clock,
        db.as_ref().map(|d| d.backend()),
    ));
    Diagnosis {
        report: Report::new(checks),
        snapshot,
    }
}

/// The report when the configuration did not load: one ✗ naming every problem (the
/// problems never quote a secret), every other check not run.
pub fn invalid_configuration(error: &ConfigError) -> Report {
    let mut checks = vec![Check::fail(
        "configuration",
        error.to_string().trim_end().to_string(),
        "fix the keys named above in the configuration file or the ARO_* environment \
         variables (docs/configuration.md); `aro config check` shows the same list",
    )];
    for id in [
        "data_dir",
        "disk_space",
        "database",
        "migrations",
        "integration.twilio",
        "integration.stripe",
        "integration.calendly",
        "breakers",
        "dead_letters",
        "backups",
        "timers",
        "clock",
    ] {
        checks.push(Check::skip(id, "the configuration is invalid"));
    }
    Report::new(checks)
}

/// Masks every configured secret and every phone number in `text`.
pub fn redact(redactor: &Redactor, text: &str) -> String {
    redactor.redact(text).into_owned()
}

/// Shows a duration as a person would say it: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub(crate) fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_and_renders_every_verdict() {
        let report = Report::new(vec![
            Check::ok("database", "SQLite at /x/aro.db answers"),
            Check::warn("dead_letters", "2 open", "replay them"),
            Check::fail("backups", "none", "run `aro backup`"),
            Check::skip("timers", "the database is not reachable"),
        ]);
        assert!(!report.ok);
        assert_eq!(
            (
                report.counts.ok,
                report.counts.warn,
                report.counts.fail,
                report.counts.skip
            ),
            (1, 1, 1, 1)
        );
        let table = report.render_table();
        assert!(
            table.contains("✓ database      SQLite at /x/aro.db answers"),
            "{table}"
        );
        assert!(table.contains("✗ backups       none\n"), "{table}");
        assert!(table.contains("→ run `aro backup`"), "{table}");
        assert!(table.contains("- timers        not checked"), "{table}");
        let json: serde_json::Value =
            serde_json::from_str(&report.to_json().expect("json")).expect("parses");
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][2]["status"], "fail");
        assert!(json["checks"][0].get("recommendation").is_none());
    }

    #[test]
    fn warnings_alone_are_ok() {
        let report = Report::new(vec![Check::warn("clock", "7 s ahead", "sync")]);
        assert!(report.ok);
    }

    #[test]
    fn durations_read_naturally() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(45)), "45 s");
        assert_eq!(human_duration(d(750)), "12 min");
        assert_eq!(human_duration(d(3 * 3600 + 300)), "3 h 5 min");
        assert_eq!(human_duration(d(3 * 86_400 + 7200)), "3 d 2 h");
        assert_eq!(human_duration(d(-5)), "0 s");
    }
}
