//! The Command API's queries: idempotency keys (claimed first, on their unique key, in
//! the command's own transaction), command rows, the checks a command must pass against
//! the current data, and the commands that take effect right here in that transaction
//! (consent, risk, escalations, dead letters).
//!
//! Every function takes the caller's connection and is meant to run inside
//! [`claim`]'s transaction or on its own; none of them logs personal data.

use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::appointment_id_for;
use actors::ports::store::{CustomerHistory, InboxStatus};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::{json, Value};

use super::commands::CommandError;
use crate::store::engine_queries;
use crate::store::models::to_naive;
use crate::store::schema::{
    appointments, commands, consents, customers, dead_letters, escalations, idempotency_keys, inbox,
};
use crate::store::DbConnection;
use crate::webhooks::booking;

/// The idempotency scope of `POST /v1/commands`.
pub const SCOPE: &str = "command";
/// The inbox source of work a command hands to the engine (its dedup key is the
/// command's id).
pub const INBOX_SOURCE: &str = "command";
/// How long an idempotency key is remembered (SPEC §7: at least 72 h).
pub const KEY_TTL_HOURS: i64 = 72;

/// Command row statuses.
pub mod status {
    /// Recorded; its work is queued for the engine.
    pub const ACCEPTED: &str = "accepted";
    /// Its work took effect.
    pub const COMPLETED: &str = "completed";
    /// The engine refused its work (e.g. an invalid transition by then).
    pub const FAILED: &str = "failed";
}

/// Idempotency key statuses: `pending` until the command's work has been handed on
/// (a retry of the same request finishes the handing on), then `completed`.
mod key_status {
    pub const PENDING: &str = "pending";
    pub const COMPLETED: &str = "completed";
}

/// A row of `commands`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = commands)]
pub struct CommandRow {
    pub id: String,
    pub tenant_id: String,
    pub command_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub status: String,
    /// `{"payload", "metadata", "effect"}` as JSON text.
    pub payload: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub correlation_id: String,
    pub workflow_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A row of `idempotency_keys`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct KeyRow {
    pub tenant_id: String,
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    pub status: String,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub resource_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

impl KeyRow {
    /// A fresh claim of `key` for the command `command_id`, answering `answer`.
    pub fn new(
        tenant_id: &str,
        key: &str,
        request_hash: &str,
        command_id: &str,
        answer: &Value,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.to_string(),
            scope: SCOPE.to_string(),
            key: key.to_string(),
            request_hash: request_hash.to_string(),
            status: key_status::PENDING.to_string(),
            response_status: Some(202),
            response_body: Some(answer.to_string()),
            resource_id: Some(command_id.to_string()),
            created_at: to_naive(now),
            expires_at: to_naive(now + Duration::hours(KEY_TTL_HOURS)),
        }
    }

    /// Whether the command's work was handed on.
    pub fn is_completed(&self) -> bool {
        self.status == key_status::COMPLETED
    }
}

/// What claiming an idempotency key found.
#[derive(Debug)]
pub enum Claim {
    /// The key is ours now (inside the caller's transaction).
    Fresh,
    /// The same request was made before: its key row.
    Repeat(KeyRow),
}

/// Claims `row.key` by inserting it (the table's primary key decides between
/// concurrent claims: a second claimer waits for the first one's transaction and then
/// finds its row). A key used before with another body is a conflict; an expired one is
/// replaced.
pub fn claim(conn: &mut DbConnection, row: &KeyRow) -> Result<Claim, CommandError> {
    for _ in 0..3 {
        // A savepoint of its own: on PostgreSQL a failed statement would otherwise
        // abort the enclosing transaction.
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(idempotency_keys::table)
                .values(row)
                .execute(conn)
        });
        match inserted {
            Ok(_) => return Ok(Claim::Fresh),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
            Err(other) => return Err(other.into()),
        }
        let Some(existing) = find_key(conn, &row.tenant_id, &row.key)? else {
            continue; // removed meanwhile: try again
        };
        if existing.expires_at <= row.created_at {
            diesel::delete(key_filter(&row.tenant_id, &row.key))
                .filter(idempotency_keys::expires_at.le(row.created_at))
                .execute(conn)?;
            continue;
        }
        if existing.request_hash != row.request_hash {
            return Err(CommandError::IdempotencyConflict);
        }
        return Ok(Claim::Repeat(existing));
    }
    Err(CommandError::Internal(
        "could not claim the idempotency key".to_string(),
    ))
}

type KeyFilter<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            idempotency_keys::table,
            diesel::dsl::Eq<idempotency_keys::tenant_id, &'a str>,
        >,
        diesel::dsl::Eq<idempotency_keys::scope, &'static str>,
    >,
    diesel::dsl::Eq<idempotency_keys::key, &'a str>,
>;

fn key_filter<'a>(tenant_id: &'a str, key: &'a str) -> KeyFilter<'a> {
    idempotency_keys::table
        .filter(idempotency_keys::tenant_id.eq(tenant_id))
        .filter(idempotency_keys::scope.eq(SCOPE))
        .filter(idempotency_keys::key.eq(key))
}

/// The key row of (tenant, `key`), if any.
pub fn find_key(
    conn: &mut DbConnection,
    tenant_id: &str,
    key: &str,
) -> Result<Option<KeyRow>, CommandError> {
    Ok(key_filter(tenant_id, key)
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Stores the answer of a freshly claimed key (known once the command was checked).
pub fn store_answer(conn: &mut DbConnection, row: &KeyRow) -> Result<(), CommandError> {
    diesel::update(key_filter(&row.tenant_id, &row.key))
        .set((
            idempotency_keys::response_status.eq(row.response_status),
            idempotency_keys::response_body.eq(&row.response_body),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks the key's work handed on, and the command's status when it changed with it.
pub fn complete_key(
    conn: &mut DbConnection,
    tenant_id: &str,
    key: &str,
    command: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    conn.transaction(|conn| {
        diesel::update(key_filter(tenant_id, key))
            .set(idempotency_keys::status.eq(key_status::COMPLETED))
            .execute(conn)?;
        if let Some((command_id, new_status)) = command {
            set_status(conn, tenant_id, command_id, new_status, None, now)?;
        }
        Ok(())
    })
}

/// Keys still `pending` that were claimed before `before`, oldest first: commands
/// recorded whose hand-on never finished.
pub fn stale_keys(
    conn: &mut DbConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<KeyRow>, CommandError> {
    Ok(idempotency_keys::table
        .filter(idempotency_keys::scope.eq(SCOPE))
        .filter(idempotency_keys::status.eq(key_status::PENDING))
        .filter(idempotency_keys::created_at.lt(to_naive(before)))
        .order(idempotency_keys::created_at.asc())
        .limit(limit)
        .select(KeyRow::as_select())
        .load(conn)?)
}

/// Forgets idempotency keys past their expiry; answers how many.
pub fn prune_keys(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize, CommandError> {
    Ok(diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::scope.eq(SCOPE))
            .filter(idempotency_keys::expires_at.lt(to_naive(now))),
    )
    .execute(conn)?)
}

/// Records a new command.
pub fn insert_command(conn: &mut DbConnection, row: &CommandRow) -> Result<(), CommandError> {
    diesel::insert_into(commands::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The command `id` of `tenant_id`.
pub fn find_command(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<CommandRow>, CommandError> {
    Ok(commands::table
        .filter(commands::tenant_id.eq(tenant_id))
        .filter(commands::id.eq(id))
        .select(CommandRow::as_select())
        .first(conn)
        .optional()?)
}

/// Moves a command to `new_status` (with an error text when it failed).
pub fn set_status(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    new_status: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    diesel::update(
        commands::table
            .filter(commands::tenant_id.eq(tenant_id))
            .filter(commands::id.eq(id)),
    )
    .set((
        commands::status.eq(new_status),
        commands::error.eq(error),
        commands::updated_at.eq(to_naive(now)),
    ))
    .execute(conn)?;
    Ok(())
}

/// Where the engine is with the inbox item a command handed it: `None` while pending
/// (or when it is gone), else the command's final status and the engine's error.
pub fn inbox_outcome(
    conn: &mut DbConnection,
    tenant_id: &str,
    command_id: &str,
) -> Result<Option<(&'static str, Option<String>)>, CommandError> {
    let row: Option<(String, Option<String>)> = inbox::table
        .filter(inbox::tenant_id.eq(tenant_id))
        .filter(inbox::source.eq(INBOX_SOURCE))
        .filter(inbox::dedup_key.eq(command_id))
        .select((inbox::status, inbox::last_error))
        .first(conn)
        .optional()?;
    let processed = InboxStatus::Processed.as_str();
    let refused = [InboxStatus::Rejected.as_str(), InboxStatus::Dead.as_str()];
    Ok(match row {
        Some((s, _)) if s == processed => Some((status::COMPLETED, None)),
        Some((s, error)) if refused.contains(&s.as_str()) => Some((status::FAILED, error)),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------
// Checks against the current data.

fn unknown(kind: &str, id: &str) -> CommandError {
    CommandError::invalid("aggregate.id", format!("no {kind} {id:?} in this tenant"))
}

/// The appointment `id` names — ARO's id, or the booking system's id of an appointment
/// that came through the booking webhook or `appointment.upsert` — and its status.
pub fn find_appointment(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<(String, AppointmentStatus), CommandError> {
    let derived = appointment_id_for(tenant_id, booking::SOURCE, id);
    for candidate in [id, derived.as_str()] {
        let found: Option<String> = appointments::table
            .filter(appointments::tenant_id.eq(tenant_id))
            .filter(appointments::id.eq(candidate))
            .select(appointments::status)
            .first(conn)
            .optional()?;
        if let Some(found) = found {
            let current = found.parse::<AppointmentStatus>().map_err(|_| {
                CommandError::Internal(format!("appointment {candidate} has status {found:?}"))
            })?;
            return Ok((candidate.to_string(), current));
        }
    }
    Err(unknown("appointment", id))
}

/// Checks that the appointment may move to `to` now (the engine checks again when it
/// applies the command).
pub fn check_transition(
    from: AppointmentStatus,
    to: AppointmentStatus,
) -> Result<(), CommandError> {
    if from.can_transition_to(to) {
        Ok(())
    } else {
        Err(CommandError::InvalidTransition {
            from: from.as_str().to_string(),
            to: to.as_str().to_string(),
        })
    }
}

/// A customer that exists and was not erased.
fn live_customer(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<CustomerHistory, CommandError> {
    type Row = (i32, i32, i32, i32, bool, i32);
    let row: Option<Row> = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(customers::id.eq(id))
        .filter(customers::erased_at.is_null())
        .select((
            customers::appointment_count,
            customers::confirmed_count,
            customers::no_show_count,
            customers::reschedule_count,
            customers::payment_past_due,
            customers::risk_score,
        ))
        .first(conn)
        .optional()?;
    let (appointments, confirmed, no_shows, reschedules, payment_past_due, risk_score) =
        row.ok_or_else(|| unknown("customer", id))?;
    Ok(CustomerHistory {
        appointments,
        confirmed,
        no_shows,
        reschedules,
        payment_past_due,
        risk_score,
        ..CustomerHistory::default()
    })
}

// ---------------------------------------------------------------------------------
// Commands that take effect in the command's transaction.

/// Stops (or resumes) automated messages to a customer: `customers.opted_out` and a
/// consent row whose source is `staff` and whose evidence is the command.
pub fn set_consent(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
    granted: bool,
    command_id: &str,
    now: DateTime<Utc>,
) -> Result<Value, CommandError> {
    live_customer(conn, tenant_id, customer_id)?;
    let at = to_naive(now);
    diesel::update(customers::table.find(customer_id))
        .set((
            customers::opted_out.eq(!granted),
            customers::updated_at.eq(at),
        ))
        .execute(conn)?;
    diesel::insert_into(consents::table)
        .values((
            consents::id.eq(uuid::Uuid::now_v7().to_string()),
            consents::tenant_id.eq(tenant_id),
            consents::customer_id.eq(customer_id),
            consents::channel.eq("sms"),
            consents::status.eq(if granted { "granted" } else { "revoked" }),
            consents::source.eq("staff"),
            consents::evidence.eq(format!("command:{command_id}")),
            consents::recorded_at.eq(at),
        ))
        .execute(conn)?;
    Ok(json!({"optedOut": !granted}))
}

/// Recomputes a customer's risk score from their counters (SPEC §4).
pub fn recalculate_risk(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<Value, CommandError> {
    let history = live_customer(conn, tenant_id, customer_id)?;
    let score = i32::from(history.risk());
    diesel::update(customers::table.find(customer_id))
        .set((
            customers::risk_score.eq(score),
            customers::updated_at.eq(to_naive(now)),
        ))
        .execute(conn)?;
    Ok(json!({"riskScore": score, "previousRiskScore": history.risk_score}))
}

/// Resolves an open escalation.
pub fn resolve_escalation(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    resolution: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Value, CommandError> {
    let current: Option<String> = escalations::table
        .filter(escalations::tenant_id.eq(tenant_id))
        .filter(escalations::id.eq(id))
        .select(escalations::status)
        .first(conn)
        .optional()?;
    let current = current.ok_or_else(|| unknown("escalation", id))?;
    if current != "open" {
        return Err(CommandError::InvalidTransition {
            from: current,
            to: "resolved".to_string(),
        });
    }
    diesel::update(escalations::table.find(id))
        .set((
            escalations::status.eq("resolved"),
            escalations::resolved_at.eq(Some(to_naive(now))),
            escalations::resolved_by.eq(Some(by)),
            escalations::resolution.eq(Some(resolution)),
        ))
        .execute(conn)?;
    Ok(json!({"status": "resolved"}))
}

/// A dead letter as a replay or an archive needs it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: String,
    pub outbox_id: Option<String>,
    pub domain: String,
    pub payload: String,
}

/// The open dead letter `id`, or why it cannot be acted on.
fn open_dead_letter(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    to: &str,
) -> Result<DeadLetter, CommandError> {
    type Row = (String, Option<String>, String, String, String);
    let row: Option<Row> = dead_letters::table
        .filter(dead_letters::tenant_id.eq(tenant_id))
        .filter(dead_letters::id.eq(id))
        .select((
            dead_letters::id,
            dead_letters::outbox_id,
            dead_letters::domain,
            dead_letters::payload,
            dead_letters::status,
        ))
        .first(conn)
        .optional()?;
    let (id, outbox_id, domain, payload, current) =
        row.ok_or_else(|| unknown("dead letter", id))?;
    if current != "open" {
        return Err(CommandError::InvalidTransition {
            from: current,
            to: to.to_string(),
        });
    }
    Ok(DeadLetter {
        id,
        outbox_id,
        domain,
        payload,
    })
}

fn close_dead_letter(
    conn: &mut DbConnection,
    id: &str,
    new_status: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    diesel::update(dead_letters::table.find(id))
        .set((
            dead_letters::status.eq(new_status),
            dead_letters::resolved_at.eq(Some(to_naive(now))),
            dead_letters::resolved_by.eq(Some(by)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Archives an open dead letter: kept (until it expires) but no longer open.
pub fn archive_dead_letter(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Value, CommandError> {
    let letter = open_dead_letter(conn, tenant_id, id, "archived")?;
    close_dead_letter(conn, &letter.id, "archived", by, now)?;
    Ok(json!({"status": "archived"}))
}

/// Replays an open dead letter. A dead-lettered outbox row goes back in its queue from
/// attempt zero (the query `ReplayDeadLetter` runs, here inside the command's
/// transaction); dead-lettered inbound work is answered with its payload, for the
/// caller to hand to the engine again.
pub fn replay_dead_letter(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<DeadLetter, CommandError> {
    let letter = open_dead_letter(conn, tenant_id, id, "replayed")?;
    match &letter.outbox_id {
        Some(outbox_id) => {
            let revived = engine_queries::replay_dead_letter(conn, outbox_id, now)
                .map_err(|e| CommandError::Internal(e.to_string()))?;
            if !revived {
                return Err(CommandError::InvalidTransition {
                    from: "outbox row no longer dead-lettered".to_string(),
                    to: "replayed".to_string(),
                });
            }
        }
        None if letter.domain == "inbox" => {}
        None => {
            return Err(CommandError::invalid(
                "aggregate.id",
                format!(
                    "a dead letter of domain {:?} cannot be replayed",
                    letter.domain
                ),
            ))
        }
    }
    close_dead_letter(conn, &letter.id, "replayed", by, now)?;
    Ok(letter)
}
