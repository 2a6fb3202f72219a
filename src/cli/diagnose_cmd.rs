//! `aro diagnose [--json] [--bundle FILE]`: the command-line face of `ops::diagnose`.
//!
//! It loads the configuration itself, so that an invalid configuration is reported as
//! a failed check (and still gets a bundle) rather than stopping the command. Exit
//! status 0 when every check is ✓ or !, 1 when any is ✗ (or the bundle could not be
//! written). Output is redacted: no secret, no full phone number.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::config::{Config, ConfigSources};
use crate::credentials::{self, CredentialsError, Reach};
use crate::ops::diagnose::{self, Report};
use crate::telemetry::Redactor;

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write a redacted support bundle (tar.gz): the report, the configuration
    /// with secrets masked, recent logs from the data directory and row counts.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
}

/// Runs diagnose with the configuration file `file` (if any) and the environment.
pub fn main(file: Option<PathBuf>, args: &DiagnoseArgs) -> ExitCode {
    let sources = ConfigSources::from_process(file);
    // With the sealed credentials, so the integrations are checked with what the daemon
    // uses; when the store cannot give them, the database checks say why.
    let loaded = match credentials::load(&sources, Reach::BestEffort) {
        Ok(loaded) => Ok(loaded),
        Err(CredentialsError::Config(error)) => Err(error),
        Err(_) => Config::load(&sources),
    };
    let (report, snapshot, redactor) = match &loaded {
        Ok(loaded) => {
            let with_snapshot = args.bundle.is_some();
            let diagnosis =
                actix_web::rt::System::new().block_on(diagnose::run(loaded, with_snapshot));
            (
                diagnosis.report,
                diagnosis.snapshot,
                Redactor::new(loaded.config.secret_values()),
            )
        }
        Err(error) => (
            diagnose::invalid_configuration(error),
            None,
            Redactor::new(Vec::new()),
        ),
    };
    let mut ok = report.ok;
    print_report(&report, args.json, &redactor);
    if let Some(path) = &args.bundle {
        ok &= bundle(path, &report, loaded.as_ref().ok(), snapshot.as_ref());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_report(report: &Report, json: bool, redactor: &Redactor) {
    if json {
        match report.to_json() {
            Ok(text) => println!("{}", diagnose::redact(redactor, &text)),
            Err(e) => eprintln!("error: {e}"),
        }
    } else {
        print!("{}", diagnose::redact(redactor, &report.render_table()));
    }
}

fn bundle(
    path: &Path,
    report: &Report,
    loaded: Option<&crate::config::LoadedConfig>,
    snapshot: Option<&diagnose::Snapshot>,
) -> bool {
    match diagnose::write_bundle(path, report, loaded, snapshot) {
        Ok(written) => {
            eprintln!(
                "support bundle written: {} ({})",
                written.path.display(),
                written.members.join(", ")
            );
            true
        }
        Err(e) => {
            eprintln!("error: cannot write the support bundle: {e}");
            false
        }
    }
}
