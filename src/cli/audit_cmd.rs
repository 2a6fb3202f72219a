//! `aro audit verify [--anchor SEQ:HASH]`: walks the hash-chained audit log and exits 0
//! with `ok: N entries`, or non-zero naming the first bad entry (seq and reason).
//!
//! The head it prints (`SEQ:HASH`) can be kept elsewhere and given back as `--anchor`
//! later: then removing entries from the end of the log is found on PostgreSQL too.

use anyhow::anyhow;
use clap::Subcommand;

use crate::audit::{self, Anchor};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check every entry's hash and link; exit non-zero naming the first bad entry.
    Verify {
        /// A head printed by an earlier run (SEQ:HASH) that must still be in the log,
        /// unchanged.
        #[arg(long, value_name = "SEQ:HASH")]
        anchor: Option<Anchor>,
    },
}

pub fn run(config: Config, action: AuditAction) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    match action {
        AuditAction::Verify { anchor } => {
            let mut conn = super::admin_cmd::open_database(&config)?;
            let report = audit::verify(&mut conn, anchor.as_ref())?;
            match &report.first_bad {
                None => {
                    let head = report
                        .head
                        .as_ref()
                        .map(|(seq, hash)| format!("; head {seq}:{hash}"))
                        .unwrap_or_default();
                    println!("ok: {} entries{head}", report.entries);
                    Ok(())
                }
                Some(bad) => {
                    println!(
                        "FAILED: first bad entry {bad} ({} entries before it verified)",
                        report.entries
                    );
                    Err(anyhow!("the audit log does not verify: {bad}"))
                }
            }
        }
    }
}
