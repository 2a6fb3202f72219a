//! `customer.erased`: a customer's personal data removed everywhere it is stored (GDPR
//! art. 17), in one transaction, keeping the rows the metrics and the engine's
//! bookkeeping need under the customer's random id.
//!
//! 1. **The erasure** (one transaction, audited as `customer.erased` with counts
//!    only): every step of [`rewrite`](super::rewrite) — contact details gone and the
//!    customer opted out and marked erased; consents and delivery reports removed;
//!    message bodies and addresses, booking links and notes, and every payload,
//!    answer, error and escalation text that concerns them scrubbed; pending outbox
//!    rows dropped, scheduled timers cancelled, pending inbox items refused, open dead
//!    letters archived, open escalations resolved. On SQLite the connection runs with
//!    `PRAGMA secure_delete = ON`, so the old content is overwritten in the database
//!    file rather than left in free space, and the write-ahead log is checkpointed
//!    and truncated afterwards.
//! 2. **The engine lets go.** The cancelled timers leave the timer service's wheel;
//!    sends already in flight for the customer are waited for (bounded); the live
//!    actors of their appointments are evicted — each finishes what is in its mailbox
//!    and stops, so none keeps the old data in memory or commits it back.
//! 3. **A second pass** of the same rewrite (with the values found by the first)
//!    scrubs whatever those last in-flight steps wrote.
//!
//! After that nothing is sent to the customer: the number is gone (the engine has no
//! one to write to), the customer is opted out (the messaging supervisor drops
//! anything still queued), and nothing is pending or scheduled for them.
//!
//! Repeating an erasure is harmless and scrubs whatever arrived since; so is an error
//! after the first transaction committed (the erasure stands, audited): asking again
//! finishes the sweep.

use std::collections::BTreeMap;
use std::time::Duration;

use actors::engine::Engine;
use actors::timers::TimersChanged;
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Integer;
use serde::Serialize;
use serde_json::json;

use super::error::PrivacyError;
use super::footprint::{self, Footprint, Identity};
use super::rewrite;
use crate::audit::{self, Actor, NewEntry};
use crate::store::schema::outbox;
use crate::store::{Database, DbConnection};

/// Attempts of a transaction that a deadlock or a busy database undid.
const ATTEMPTS: u32 = 3;
/// How long the erasure waits for the customer's sends already in flight.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(15);
const IN_FLIGHT_POLL: Duration = Duration::from_millis(50);

/// What an erasure did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    pub customer_id: String,
    pub erased_at: DateTime<Utc>,
    /// Whether the customer had been erased before (an erasure may be repeated: it
    /// scrubs whatever arrived since).
    pub already_erased: bool,
    /// Rows changed or removed, per table.
    pub changed: BTreeMap<&'static str, usize>,
    /// Timers cancelled.
    pub timers_cancelled: usize,
    /// Live appointment actors stopped.
    pub actors_evicted: usize,
}

/// Erases customer `customer_id` of `tenant_id` (see the module notes); `actor` is who
/// asked, for the audit log.
pub async fn run(
    db: &Database,
    engine: &Engine,
    tenant_id: &str,
    customer_id: &str,
    actor: &Actor,
) -> Result<Erasure, PrivacyError> {
    let now = engine.now();
    let first =
        pass_with_retries(db, tenant_id, customer_id, None, Some(actor.clone()), now).await?;
    if !first.cancelled_timers.is_empty() {
        engine.timers.do_send(TimersChanged {
            set: Vec::new(),
            removed: first.cancelled_timers.clone(),
        });
    }
    wait_for_sends(db, &first.found).await?;
    let evicted = engine.evict(first.found.appointment_ids.clone()).await;
    let second = pass_with_retries(
        db,
        tenant_id,
        customer_id,
        Some(first.found.identity.clone()),
        None,
        now,
    )
    .await?;
    if !second.cancelled_timers.is_empty() {
        engine.timers.do_send(TimersChanged {
            set: Vec::new(),
            removed: second.cancelled_timers.clone(),
        });
    }
    let mut changed = first.changed;
    for (table, count) in second.changed {
        *changed.entry(table).or_default() += count;
    }
    changed.retain(|_, count| *count > 0);
    checkpoint(db).await;
    Ok(Erasure {
        customer_id: customer_id.to_string(),
        erased_at: first.found.erased_at.map_or(now, |at| at.and_utc()),
        already_erased: first.found.erased_at.is_some(),
        changed,
        timers_cancelled: first.cancelled_timers.len() + second.cancelled_timers.len(),
        actors_evicted: evicted,
    })
}

/// What one pass found and changed.
#[derive(Debug)]
struct Pass {
    /// The footprint, its identity merged with the earlier pass's.
    found: Footprint,
    changed: BTreeMap<&'static str, usize>,
    cancelled_timers: Vec<(String, String)>,
}

async fn pass_with_retries(
    db: &Database,
    tenant_id: &str,
    customer_id: &str,
    earlier: Option<Identity>,
    audit_as: Option<Actor>,
    now: DateTime<Utc>,
) -> Result<Pass, PrivacyError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (tenant, customer) = (tenant_id.to_string(), customer_id.to_string());
        let (earlier, audit_as) = (earlier.clone(), audit_as.clone());
        let outcome = db
            .run(move |conn| {
                Ok(with_secure_delete(conn, |conn| {
                    erase_pass(
                        conn,
                        &tenant,
                        &customer,
                        earlier.as_ref(),
                        audit_as.as_ref(),
                        now,
                    )
                }))
            })
            .await?;
        match outcome {
            Err(err) if err.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(attempt, error = %err, "erasure retried");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

/// One pass of the erasure in one transaction (see the module notes). With
/// `audit_as`, the pass is the erasure itself and is audited; without, it is the sweep.
fn erase_pass(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
    earlier: Option<&Identity>,
    audit_as: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<Pass, PrivacyError> {
    let at = now.naive_utc();
    conn.transaction(|conn| {
        if rewrite::touch_customer(conn, tenant_id, customer_id, at)? == 0 {
            return Err(PrivacyError::NotFound(customer_id.to_string()));
        }
        let mut found = footprint::locate(conn, tenant_id, customer_id)?
            .ok_or_else(|| PrivacyError::NotFound(customer_id.to_string()))?;
        if let Some(earlier) = earlier {
            found.identity = found.identity.clone().merged(earlier);
        }
        let needles = found.identity.needles();
        let mut changed = BTreeMap::new();
        changed.insert("customers", rewrite::customer(conn, &found, at)?);
        changed.insert("consents", rewrite::consents(conn, &found)?);
        changed.insert("appointments", rewrite::appointments(conn, &found)?);
        changed.insert(
            "workflow_instances",
            rewrite::workflows(conn, &found, &needles)?,
        );
        changed.insert("events", rewrite::events(conn, &found, &needles)?);
        let (timers, cancelled_timers) = rewrite::timers(conn, &found, &needles, at)?;
        changed.insert("timers", timers);
        changed.insert("outbox", rewrite::outbox(conn, &found, &needles, at)?);
        changed.insert(
            "escalations",
            rewrite::escalations(conn, &found, &needles, at)?,
        );
        changed.insert("inbox", rewrite::inbox(conn, &found, &needles, at)?);
        changed.insert("commands", rewrite::commands(conn, &found, &needles)?);
        changed.insert(
            "idempotency_keys",
            rewrite::idempotency_keys(conn, &found, &needles)?,
        );
        changed.insert(
            "dead_letters",
            rewrite::dead_letters(conn, &found, &needles, at)?,
        );
        changed.insert("messages", rewrite::messages(conn, &found, at)?);
        changed.insert(
            "message_status_history",
            rewrite::status_history(conn, &found)?,
        );
        if let Some(actor) = audit_as {
            // Counts and ids only: the audit log is never rewritten, so it must not
            // hold what was just erased.
            audit::record(
                conn,
                &NewEntry::new(tenant_id, actor.clone(), "customer.erased")
                    .subject("customer", customer_id)
                    .details(json!({
                        "appointments": found.appointment_ids.len(),
                        "alreadyErased": found.erased_at.is_some(),
                        "changed": changed,
                        "timersCancelled": cancelled_timers.len(),
                    })),
            )?;
        }
        Ok(Pass {
            found,
            changed,
            cancelled_timers,
        })
    })
}

/// Waits (bounded) until none of the customer's outbox rows is being sent: the
/// supervisor records a send's outcome in the message log, and the second pass must
/// come after that.
async fn wait_for_sends(db: &Database, found: &Footprint) -> Result<(), PrivacyError> {
    if found.outbox_ids.is_empty() {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + IN_FLIGHT_WAIT;
    loop {
        let ids = found.outbox_ids.clone();
        let tenant = found.tenant_id.clone();
        let in_flight: i64 = db
            .run(move |conn| {
                let mut total = 0;
                for chunk in ids.chunks(500) {
                    total += outbox::table
                        .filter(outbox::tenant_id.eq(&tenant))
                        .filter(outbox::id.eq_any(chunk))
                        .filter(outbox::status.eq("in_flight"))
                        .count()
                        .get_result::<i64>(conn)?;
                }
                Ok(total)
            })
            .await?;
        if in_flight == 0 || tokio::time::Instant::now() >= deadline {
            if in_flight > 0 {
                tracing::warn!(in_flight, "erasure: sends still in flight; sweeping anyway");
            }
            return Ok(());
        }
        tokio::time::sleep(IN_FLIGHT_POLL).await;
    }
}

#[derive(QueryableByName)]
struct SecureDelete {
    #[diesel(sql_type = Integer)]
    secure_delete: i32,
}

/// Runs `work` with SQLite's `secure_delete` on (deleted and overwritten content is
/// zeroed in the file, not left in free pages), then restores the setting. Other
/// backends run `work` as it is.
fn with_secure_delete<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, PrivacyError>,
) -> Result<T, PrivacyError> {
    if !matches!(conn, DbConnection::Sqlite(_)) {
        return work(conn);
    }
    let before = diesel::sql_query("PRAGMA secure_delete")
        .get_result::<SecureDelete>(conn)
        .map(|s| s.secure_delete)
        .unwrap_or(0);
    conn.batch_execute("PRAGMA secure_delete = ON")?;
    let outcome = work(conn);
    let restore = format!("PRAGMA secure_delete = {}", i32::from(before != 0));
    if let Err(error) = conn.batch_execute(&restore) {
        tracing::warn!(%error, "could not restore secure_delete");
    }
    outcome
}

/// SQLite: copies the write-ahead log into the database and truncates it, so the
/// pages holding the erased values do not linger in the `-wal` file. Best effort (a
/// long reader can keep part of the log alive until the next checkpoint).
async fn checkpoint(db: &Database) {
    if db.sqlite_path().is_none() {
        return;
    }
    let done = db
        .run(|conn| Ok(conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")))
        .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "erasure: WAL checkpoint did not complete"),
        Err(error) => tracing::warn!(%error, "erasure: WAL checkpoint did not run"),
    }
}
