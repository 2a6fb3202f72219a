//! `aro dlq list | replay ID | archive ID` (SPEC §9): the dead-letter queue from the
//! command line, for the operator on the box — the same queue the Admin API, the
//! Command API and the dashboard show.
//!
//! It works on the database directly, so it needs no credentials and no running daemon:
//! - `list` prints the open (or `--status replayed|archived`) dead letters, oldest
//!   first, their payloads not at all (they may hold a customer's words);
//! - `replay` puts a dead-lettered outbox row back in its queue from attempt zero (a
//!   running daemon sends it within a minute, on its next look at the queue), or records
//!   dead-lettered inbound work in the inbox again (applied within 30 s);
//! - `archive` closes a dead letter without retrying it.
//!
//! Replay and archive take the Command API's own queries
//! (`api::command_queries::{replay_dead_letter, archive_dead_letter}`) and write an
//! audit entry (`dead_letter.replayed` / `dead_letter.archived`, actor `cli`) in the
//! same transaction.

use actors::engine::InboxWork;
use actors::ports::store::NewInbox;
use anyhow::{anyhow, Context};
use chrono::Utc;
use clap::{Args, Subcommand};
use diesel::Connection;
use serde_json::json;

use crate::api::admin::queries::dead_letters::{self, DeadLetterFilter, ARCHIVED, OPEN, REPLAYED};
use crate::api::command_queries;
use crate::audit::{self, Actor, NewEntry};
use crate::config::Config;
use crate::store::inbox_queries;
use crate::store::tenant_queries::DEFAULT_TENANT;

/// Who a change made here is recorded as, on the dead letter.
const BY: &str = "cli";
/// The inbox source of replayed inbound work.
const INBOX_SOURCE: &str = "dlq";
/// Longest error text printed per line.
const ERROR_CHARS: usize = 80;

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub action: DlqAction,
    /// The tenant whose queue to work on.
    #[arg(long, global = true, default_value = DEFAULT_TENANT, value_name = "ID")]
    pub tenant: String,
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// List dead letters, oldest first.
    List {
        #[arg(long, default_value = OPEN, value_parser = [OPEN, REPLAYED, ARCHIVED])]
        status: String,
        /// Only this provider domain (messaging, payment, inbox, …).
        #[arg(long)]
        domain: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
    },
    /// Send an open dead letter's work again, from attempt zero.
    Replay { id: String },
    /// Close an open dead letter without retrying it.
    Archive { id: String },
}

pub fn run(config: Config, args: DlqArgs) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    let mut conn = super::admin_cmd::open_database(&config)?;
    let tenant = args.tenant;
    match args.action {
        DlqAction::List {
            status,
            domain,
            limit,
        } => {
            let filter = DeadLetterFilter {
                tenant_id: tenant,
                status: Some(status),
                domain,
                after: None,
                limit,
            };
            let page = dead_letters::list(&mut conn, &filter).map_err(|e| anyhow!("{e}"))?;
            if page.items.is_empty() {
                println!("no dead letters");
            }
            for letter in &page.items {
                let error: String = letter.error.chars().take(ERROR_CHARS).collect();
                println!(
                    "{}  {}  {}/{}  attempts {}  {}  {}",
                    letter.id,
                    letter.status,
                    letter.domain,
                    letter.kind,
                    letter.attempts,
                    letter.created_at.format("%Y-%m-%d %H:%M UTC"),
                    error
                );
            }
            if page.next_cursor.is_some() {
                println!("(more: raise --limit)");
            }
            Ok(())
        }
        DlqAction::Replay { id } => {
            let domain = conn.transaction(|conn| -> anyhow::Result<String> {
                let now = Utc::now();
                let letter = command_queries::replay_dead_letter(conn, &tenant, &id, BY, now)?;
                if letter.outbox_id.is_none() {
                    let work: InboxWork = serde_json::from_str(&letter.payload)
                        .context("the dead letter's inbound work cannot be read")?;
                    let item = NewInbox {
                        id: uuid::Uuid::now_v7().to_string(),
                        tenant_id: tenant.clone(),
                        source: INBOX_SOURCE.to_string(),
                        dedup_key: letter.id.clone(),
                        payload: serde_json::to_value(&work)?,
                        received_at: now,
                    };
                    inbox_queries::accept(conn, &item)?;
                }
                let entry = NewEntry::new(tenant.as_str(), Actor::cli(), "dead_letter.replayed")
                    .subject("dead_letter", letter.id.as_str())
                    .details(json!({"outboxId": letter.outbox_id, "domain": letter.domain}));
                audit::record(conn, &entry)?;
                Ok(letter.domain)
            })?;
            println!("replayed {id} ({domain}): a running daemon takes it up within a minute");
            Ok(())
        }
        DlqAction::Archive { id } => {
            conn.transaction(|conn| -> anyhow::Result<()> {
                command_queries::archive_dead_letter(conn, &tenant, &id, BY, Utc::now())?;
                let entry = NewEntry::new(tenant.as_str(), Actor::cli(), "dead_letter.archived")
                    .subject("dead_letter", id.as_str());
                audit::record(conn, &entry)?;
                Ok(())
            })?;
            println!("archived {id}");
            Ok(())
        }
    }
}
