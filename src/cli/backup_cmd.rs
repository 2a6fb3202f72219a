//! `aro backup [--out FILE_OR_DIR] [--keep N]`, `aro backup verify FILE` and
//! `aro restore FILE [--yes]`: the command-line face of `ops::backup`.
//!
//! `backup` runs while the daemon serves (the snapshot is online and consistent).
//! `restore` needs the daemon stopped and checks that it is; it verifies the whole file
//! before it asks for confirmation, and changes nothing when the file is refused.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};

use crate::config::{Config, DatabaseUrl};
use crate::crypto::{KeySource, MasterKey};
use crate::ops::backup::{
    create_backup, prune_backups, restore_backup, verify_backup, BackupError, Destination,
    Manifest, Progress, DEFAULT_KEEP,
};
use crate::store::Database;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub action: Option<BackupAction>,
    /// Where to write: a directory (default <data_dir>/backups), or a file name ending
    /// in .arobak.
    #[arg(long, value_name = "FILE_OR_DIR")]
    pub out: Option<PathBuf>,
    /// Keep the newest N backups in the output directory and delete older ones.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KEEP as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: u32,
}

#[derive(Debug, Subcommand)]
pub enum BackupAction {
    /// Decrypt and check a whole backup (authentication of every chunk, checksums,
    /// database integrity) without restoring it. Exits non-zero when it is unusable.
    Verify {
        /// The backup file (.arobak).
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (.arobak).
    pub file: PathBuf,
    /// Replace the database without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

pub fn run_backup(config: Config, args: BackupArgs) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    match args.action {
        Some(BackupAction::Verify { file }) => verify(&config, &file),
        None => backup(&config, args.out, args.keep as usize),
    }
}

fn backup(config: &Config, out: Option<PathBuf>, keep: usize) -> anyhow::Result<()> {
    if let Some(path) = config.sqlite_path() {
        if !path.is_file() {
            bail!(
                "there is no database at {} to back up (run `aro serve` or `aro migrate up` first)",
                path.display()
            );
        }
    }
    let key = MasterKey::load_or_create(config).context("cannot load the master key")?;
    if let KeySource::Created(path) = key.source() {
        eprintln!(
            "created a new master key in {}: keep a copy of it (or set ARO_MASTER_KEY) somewhere \
             other than this machine; no backup can be read without it",
            path.display()
        );
    }
    let db = Database::open(&config.database)?;
    let dest = Destination::from_arg(out, &config.data_dir);
    let report = create_backup(&db, &config.database, &key, &dest, &Progress::stderr())?;
    println!("backup written: {}", report.path.display());
    print_manifest(&report.manifest);
    println!("  file size: {} bytes", report.bytes);
    if let Destination::Dir(dir) = &dest {
        for removed in prune_backups(dir, keep)? {
            println!("removed old backup {}", removed.display());
        }
    }
    Ok(())
}

fn verify(config: &Config, file: &Path) -> anyhow::Result<()> {
    let key = MasterKey::load(config).context("cannot load the master key")?;
    let scratch = if config.data_dir.is_dir() {
        config.data_dir.clone()
    } else {
        std::env::temp_dir()
    };
    let report =
        verify_backup(file, &key, &scratch, &Progress::stderr()).map_err(|e| refused(file, e))?;
    println!("{}: OK", file.display());
    print_manifest(&report.manifest);
    for check in &report.checks {
        println!("  checked: {check}");
    }
    Ok(())
}

pub fn run_restore(config: Config, args: RestoreArgs) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    let interactive = std::io::stdin().is_terminal();
    if !args.yes && !interactive {
        bail!("restore replaces the database: pass --yes to confirm; nothing was changed");
    }
    let key = MasterKey::load(&config).context("cannot load the master key")?;
    let target = describe_target(&config);
    let yes = args.yes;
    let mut confirm = |manifest: &Manifest| -> bool {
        if yes {
            return true;
        }
        eprintln!("{} is a valid backup:", args.file.display());
        eprintln!(
            "  taken {} by aro {}, {} tables, {} rows",
            manifest.created_at.to_rfc3339(),
            manifest.aro_version,
            manifest.tables.len(),
            manifest.total_rows()
        );
        eprint!("Replace {target} with it? Everything written since is lost. Type \"yes\": ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let read = std::io::stdin().lock().read_line(&mut answer);
        read.is_ok() && answer.trim() == "yes"
    };
    let report = restore_backup(&args.file, &key, &config, &mut confirm, &Progress::stderr())
        .map_err(|e| refused(&args.file, e))?;
    println!("restored {} into {target}", args.file.display());
    print_manifest(&report.manifest);
    if let Some(previous) = &report.previous {
        println!("  the replaced database was kept as {}", previous.display());
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    println!("start the daemon again with `aro serve`; it applies any pending migrations");
    Ok(())
}

/// Adds what was and was not done to a failure (as text: the error's own message
/// already names its cause).
fn refused(file: &Path, err: BackupError) -> anyhow::Error {
    if err.is_bad_file() {
        anyhow!("{} is refused: {err}; nothing was changed", file.display())
    } else {
        anyhow!("{err}")
    }
}

/// The database a restore replaces, without any password.
fn describe_target(config: &Config) -> String {
    match &config.database.url {
        DatabaseUrl::Sqlite(path) => format!("the SQLite database {}", path.display()),
        DatabaseUrl::Postgres(url) => {
            let shown = url::Url::parse(url.expose())
                .map(|mut u| {
                    let _ = u.set_password(None);
                    u.to_string()
                })
                .unwrap_or_else(|_| "the configured PostgreSQL database".to_string());
            format!("the PostgreSQL database {shown}")
        }
    }
}

fn print_manifest(manifest: &Manifest) {
    println!(
        "  taken {} by aro {} ({} backend, schema {})",
        manifest.created_at.to_rfc3339(),
        manifest.aro_version,
        manifest.backend.as_str(),
        manifest.schema_version.as_deref().unwrap_or("empty")
    );
    println!(
        "  {} tables, {} rows; snapshot {} bytes, sha256 {}",
        manifest.tables.len(),
        manifest.total_rows(),
        manifest.snapshot.bytes,
        manifest.snapshot.sha256
    );
}
