//! The `aro` command line: argument parsing and dispatch. Each subcommand lives in its
//! own module; this is the binary's edge, where errors become exit codes.

mod admin_cmd;
mod audit_cmd;
mod backup_cmd;
mod bench_cmd;
mod config_cmd;
mod diagnose_cmd;
mod dlq_cmd;
mod install_cmd;
mod migrate_cmd;
mod sandbox_cmd;
mod secrets_cmd;
mod serve_cmd;
mod sync_cmd;
mod test_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigSources, LoadedConfig, CONFIG_FILE_ENV};
use crate::credentials::{self, CredentialsError, Reach};

/// Exit code for invalid configuration (EX_CONFIG from sysexits.h); the systemd unit
/// does not restart on it.
pub const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "aro",
    version,
    about = "ARO — cuts appointment no-shows with reminders, reply handling, deposits and recovery",
    long_about = "ARO is a daemon that takes bookings from your booking system, reminds customers \
by SMS or WhatsApp, understands their replies, asks risky customers for a deposit, recovers \
no-shows and asks happy customers for a review. A person stays in charge: ARO never cancels \
an appointment or charges money on its own.\n\nWith no configuration it runs on SQLite in \
./data with every provider in sandbox mode: `aro serve`, then open http://127.0.0.1:8080.\n\n\
Configuration: built-in defaults, then the file given by --config (or ARO_CONFIG), then \
ARO_* environment variables. See docs/configuration.md."
)]
pub struct Cli {
    /// TOML configuration file layered over the built-in defaults.
    #[arg(long, short = 'c', env = CONFIG_FILE_ENV, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: migrate the database (unless disabled), then serve HTTP until
    /// SIGTERM or SIGINT.
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Validate or display the effective configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Measure the engine (SPEC §10) on the configured database. Use a scratch data
    /// directory: ARO_DATA_DIR=$(mktemp -d) aro bench engine
    Bench {
        #[command(subcommand)]
        action: BenchAction,
    },
    /// Fetch bookings from a booking system and record them as its webhooks would.
    Sync {
        #[command(subcommand)]
        action: SyncAction,
    },
    /// Try an integration with a real request through the configured provider (its
    /// sandbox when it has no credentials) and print the result.
    Test {
        #[command(subcommand)]
        action: TestAction,
    },
    /// Write an encrypted, consistent backup of the database (online: the daemon may
    /// be running), or verify one with `aro backup verify FILE`.
    Backup(backup_cmd::BackupArgs),
    /// Replace the database with a backup, after verifying all of it. Stop the daemon
    /// first.
    Restore(backup_cmd::RestoreArgs),
    /// Manage admin users and API tokens (the first owner is created here).
    Admin(admin_cmd::AdminArgs),
    /// Check the hash-chained audit log: `aro audit verify`.
    Audit {
        #[command(subcommand)]
        action: audit_cmd::AuditAction,
    },
    /// The dead-letter queue: `list`, `replay ID`, `archive ID` (no daemon or token
    /// needed; a running daemon takes replayed work up within a minute).
    Dlq(dlq_cmd::DlqArgs),
    /// Integration secrets sealed under the master key: set, list (never values),
    /// rotate-key.
    Secrets(secrets_cmd::SecretsArgs),
    /// Check the installation (configuration, data directory, disk, database,
    /// migrations, integrations, breakers, dead letters, backups, timers, clock) and say
    /// what to do about each problem; exit 1 when any check fails. --bundle FILE also
    /// writes a redacted support bundle.
    Diagnose(diagnose_cmd::DiagnoseArgs),
    /// Guided installation: configuration (0600), data directory, master key,
    /// migrations, the first admin user, a service unit; with --start, start the daemon
    /// and run a sandbox test booking. --non-interactive takes every answer from flags.
    /// Re-running keeps the answers, the master key and existing admin users.
    Install(Box<install_cmd::InstallArgs>),
    /// Sandbox tools: `aro sandbox reply --from +1… --body "yes"` types an inbound reply
    /// into the running daemon (only while messaging runs in the sandbox).
    Sandbox {
        #[command(subcommand)]
        action: sandbox_cmd::SandboxAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum TestAction {
    /// Send one message and print the provider's answer.
    Messaging {
        /// The recipient, E.164 (e.g. +15551234567).
        #[arg(long, value_name = "NUMBER")]
        to: String,
        /// The text to send.
        #[arg(
            long,
            default_value = "ARO test message: your reminders will come from this number."
        )]
        body: String,
        /// Send by WhatsApp instead of SMS.
        #[arg(long)]
        whatsapp: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncAction {
    /// Record the invitees of the Calendly events starting in [--from, --to) in the
    /// inbox, like the webhook (needs ARO_CALENDLY_TOKEN). Idempotent: a second run
    /// records nothing new. The daemon applies recorded work within 30 s (or when it
    /// starts).
    Calendly {
        /// First start time: RFC 3339, or a date (from its first instant, UTC).
        #[arg(long, value_name = "TIME|DATE")]
        from: String,
        /// End of the range: RFC 3339 (excluded), or a date (included, UTC).
        #[arg(long, value_name = "TIME|DATE")]
        to: String,
        /// The Calendly user or organization URI whose events to read, e.g.
        /// https://api.calendly.com/users/AAAA (organizations need an admin token).
        #[arg(long, value_name = "URI")]
        owner: String,
        /// Requests per hour to Calendly (burst 20): SPEC §6's 100 by default; raise it
        /// for a long backfill when the account's own limit allows.
        #[arg(long, default_value_t = 100.0, value_name = "N")]
        requests_per_hour: f64,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchAction {
    /// Book appointments through the engine (ingest rate with durable commits), then
    /// fire their reminders at a steady rate (throughput and firing lag).
    Engine {
        /// Appointments to book.
        #[arg(long, default_value_t = 20_000)]
        appointments: usize,
        /// Bookings in flight at once.
        #[arg(long, default_value_t = 512)]
        concurrency: usize,
        /// Reminders per second offered to the timers.
        #[arg(long, default_value_t = 5_000.0)]
        rate: f64,
    },
    /// Write N scheduled appointments with their timers straight into the database.
    Seed {
        #[arg(long, default_value_t = 1_000_000)]
        appointments: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the newest N applied migrations (default 1). Destroys the data in the
    /// tables they created.
    Down {
        /// How many migrations to revert.
        #[arg(default_value_t = 1)]
        count: usize,
    },
    /// List every migration and whether it is applied.
    Status,
    /// Revert the newest migration and apply it again.
    Redo,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration and report every problem; exit 78 when invalid.
    Check,
    /// Print the effective configuration with the source of each value; secrets masked.
    Show,
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Diagnose loads the configuration itself: an invalid one is one of its findings.
    if let Command::Diagnose(args) = &cli.command {
        return diagnose_cmd::main(cli.config.clone(), args);
    }
    // The installer writes the configuration; it does not load one.
    if let Command::Install(args) = &cli.command {
        return match install_cmd::run((**args).clone()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Commands that talk to providers (or show the configuration) see the credentials
    // sealed in the store; the others need only the file and the environment.
    let reach = match &cli.command {
        Command::Serve => Some(Reach::Required),
        Command::Config { .. } | Command::Sync { .. } | Command::Test { .. } => {
            Some(Reach::BestEffort)
        }
        _ => None,
    };
    let loaded = match load_config(cli.config.clone(), reach) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Serve => serve_cmd::run(loaded.config),
        Command::Migrate { action } => migrate_cmd::run(&loaded.config, action),
        Command::Config { action } => config_cmd::run(&loaded, action),
        Command::Bench { action } => bench_cmd::run(loaded.config, action),
        Command::Sync { action } => sync_cmd::run(loaded.config, action),
        Command::Test { action } => test_cmd::run(loaded.config, action),
        Command::Backup(args) => backup_cmd::run_backup(loaded.config, args),
        Command::Restore(args) => backup_cmd::run_restore(loaded.config, args),
        Command::Admin(args) => admin_cmd::run(loaded.config, args),
        Command::Audit { action } => audit_cmd::run(loaded.config, action),
        Command::Dlq(args) => dlq_cmd::run(loaded.config, args),
        Command::Secrets(args) => secrets_cmd::run(loaded.config, args),
        Command::Sandbox { action } => sandbox_cmd::run(loaded.config, action),
        // Handled above, before the configuration is loaded.
        Command::Diagnose(_) | Command::Install(_) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration; with the sealed credentials when `reach` says how to get them.
fn load_config(file: Option<PathBuf>, reach: Option<Reach>) -> Result<LoadedConfig, ExitCode> {
    let sources = ConfigSources::from_process(file);
    match reach {
        None => Config::load(&sources).map_err(|err| {
            eprint!("error: {err}");
            ExitCode::from(EXIT_CONFIG)
        }),
        Some(reach) => credentials::load(&sources, reach).map_err(|err| match err {
            CredentialsError::Config(err) => {
                eprint!("error: {err}");
                ExitCode::from(EXIT_CONFIG)
            }
            other => {
                eprintln!("error: {other}");
                ExitCode::FAILURE
            }
        }),
    }
}
