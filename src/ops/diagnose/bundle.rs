//! The support bundle of `aro diagnose --bundle FILE`: a gzip tar (mode 0600) holding
//!
//! - `diagnose.json` — the report;
//! - `config.toml` — the effective configuration as `aro config show` renders it
//!   (secrets masked, a PostgreSQL password hidden), each line with its source;
//! - `metrics.json` — row counts: appointments and outbox by status, pending inbox,
//!   open escalations and dead letters, scheduled timers;
//! - `logs/…` — the last 1,000 lines of each `*.log` file in the data directory and in
//!   `<data_dir>/logs`.
//!
//! Every member passes through the log redactor (configured secrets, E.164 numbers)
//! before it is written, so the bundle can be sent to support as it is.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::{redact, DiagnoseError, Report, Snapshot};
use crate::config::LoadedConfig;
use crate::telemetry::Redactor;

/// Lines kept from the end of each log file.
const LOG_TAIL_LINES: usize = 1000;
/// At most this much is read from the end of a log file to find those lines.
const LOG_TAIL_BYTES: u64 = 4 << 20;

/// What went into a bundle.
#[derive(Debug, Clone)]
pub struct BundleReport {
    pub path: PathBuf,
    pub members: Vec<String>,
}

/// Writes the bundle to `path` (replacing a file there). `loaded` is `None` when the
/// configuration did not load: then only the report goes in.
pub fn write_bundle(
    path: &Path,
    report: &Report,
    loaded: Option<&LoadedConfig>,
    snapshot: Option<&Snapshot>,
) -> Result<BundleReport, DiagnoseError> {
    let secrets = loaded.map(|l| l.config.secret_values()).unwrap_or_default();
    let redactor = Redactor::new(secrets);
    let mut members: Vec<(String, String)> = vec![("diagnose.json".into(), report.to_json()?)];
    if let Some(loaded) = loaded {
        members.push((
            "config.toml".into(),
            format!(
                "# The effective configuration, secrets masked (as `aro config show`).\n{}",
                loaded.render_masked()
            ),
        ));
        let metrics = match snapshot {
            Some(snapshot) => {
                serde_json::to_string_pretty(snapshot).map_err(|source| DiagnoseError::Json {
                    what: "the metrics snapshot",
                    source,
                })?
            }
            None => "{\"unavailable\": \"the database could not be read\"}".to_string(),
        };
        members.push(("metrics.json".into(), metrics));
        members.extend(log_tails(&loaded.config.data_dir));
    }

    let file = create_private(path)?;
    let io = |source| DiagnoseError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    let mtime = chrono::Utc::now().timestamp().max(0) as u64;
    let mut names = Vec::with_capacity(members.len());
    for (name, text) in &members {
        let data = redact(&redactor, text);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(mtime);
        header.set_cksum();
        tar.append_data(&mut header, name, data.as_bytes())
            .map_err(io)?;
        names.push(name.clone());
    }
    let gz = tar.into_inner().map_err(io)?;
    let mut file = gz.finish().map_err(io)?;
    file.flush().map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(BundleReport {
        path: path.to_path_buf(),
        members: names,
    })
}

fn create_private(path: &Path) -> Result<File, DiagnoseError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|source| DiagnoseError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `(member name, last lines)` of every `*.log` in the data directory and its `logs`
/// subdirectory; unreadable files are noted in place of their lines.
fn log_tails(data_dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for dir in [data_dir.to_path_buf(), data_dir.join("logs")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "log"))
            .collect();
        found.sort();
        files.extend(found);
    }
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for file in files {
        let base = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "log".to_string());
        let mut name = format!("logs/{base}");
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("logs/{n}-{base}");
            n += 1;
        }
        let text = tail(&file, LOG_TAIL_LINES)
            .unwrap_or_else(|e| format!("(cannot read {}: {e})\n", file.display()));
        out.push((name, text));
    }
    out
}

/// The last `lines` lines of `path`, reading at most [`LOG_TAIL_BYTES`] from its end.
fn tail(path: &Path, lines: usize) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(LOG_TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        // The first line read is probably cut: drop it.
        all.remove(0);
    }
    let keep = &all[all.len().saturating_sub(lines)..];
    let mut joined = keep.join("\n");
    joined.push('\n');
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aro.log");
        let text: String = (1..=1500).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).expect("write");
        let tail = tail(&path, 1000).expect("tail");
        assert!(tail.starts_with("line 501\n"), "{}", &tail[..20]);
        assert!(tail.ends_with("line 1500\n"));
        assert_eq!(tail.lines().count(), 1000);
    }

    #[test]
    fn logs_in_both_places_are_found_with_distinct_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
        std::fs::write(dir.path().join("aro.log"), "top\n").expect("write");
        std::fs::write(dir.path().join("logs/aro.log"), "nested\n").expect("write");
        std::fs::write(dir.path().join("logs/notes.txt"), "x\n").expect("write");
        let names: Vec<String> = log_tails(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["logs/aro.log", "logs/2-aro.log"]);
    }
}
