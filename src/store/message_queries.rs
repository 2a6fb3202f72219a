//! The message log: an outbound message is recorded when its provider accepts it (with
//! the outcome of its outbox row, in the same transaction), and each delivery status a
//! provider reports is appended to its history once.
//!
//! A status report can arrive before the acceptance is recorded (the provider answers
//! the send and calls back at once): the report then creates a placeholder row keyed by
//! the provider's message id, which the acceptance fills in.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use actors::ports::store::SentBy;

use super::connection::DbConnection;
use super::engine_queries::QueryError;
use super::models::{to_naive, OutboxRow};
use super::schema::{message_status_history, messages};

type QueryResult<T> = Result<T, QueryError>;

/// What recording a status report found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRecorded {
    Recorded,
    /// The same report (provider event id) was recorded before.
    Duplicate,
}

/// How far along a status is: a late report of an earlier stage does not move a
/// message back (Twilio's callbacks may arrive out of order). Failures always count.
fn rank(status: &str) -> u8 {
    match status {
        "accepted" | "scheduled" | "queued" => 0,
        "sending" => 1,
        "sent" => 2,
        "delivered" => 3,
        "read" => 4,
        "undelivered" | "failed" | "canceled" => 5,
        _ => 0,
    }
}

fn text<'a>(payload: &'a Value, field: &str) -> Option<&'a str> {
    payload.get(field).and_then(Value::as_str)
}

/// Records the message of a messaging outbox row its provider accepted as
/// `provider_ref`. A row the provider itself logged (the sandbox) gets what only the
/// outbox knows: customer, appointment, kind, encoding, and the engine's send time.
pub fn record_sent(
    conn: &mut DbConnection,
    outbox: &OutboxRow,
    provider_ref: &str,
    sent: &SentBy,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let now = to_naive(now);
    let payload: Value = serde_json::from_str(&outbox.payload).unwrap_or(Value::Null);
    let segments = payload
        .get("segments")
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok());
    let logged: Option<String> = messages::table
        .filter(messages::tenant_id.eq(&outbox.tenant_id))
        .filter(messages::idempotency_key.eq(&outbox.idempotency_key))
        .select(messages::id)
        .first(conn)
        .optional()?;
    if let Some(id) = logged {
        diesel::update(messages::table.find(&id))
            .set((
                messages::customer_id.eq(text(&payload, "customerId")),
                messages::appointment_id.eq(text(&payload, "appointmentId")),
                messages::kind.eq(&outbox.kind),
                messages::encoding.eq(text(&payload, "encoding")),
                messages::segments.eq(segments),
                messages::sent_at.eq(Some(now)),
                messages::updated_at.eq(now),
            ))
            .execute(conn)?;
        return Ok(());
    }
    let placeholder: Option<(String, String)> = messages::table
        .filter(messages::provider.eq(&sent.provider))
        .filter(messages::provider_message_id.eq(provider_ref))
        .select((messages::id, messages::status))
        .first(conn)
        .optional()?;
    let fields = (
        messages::tenant_id.eq(&outbox.tenant_id),
        messages::customer_id.eq(text(&payload, "customerId")),
        messages::appointment_id.eq(text(&payload, "appointmentId")),
        messages::channel.eq(text(&payload, "channel").unwrap_or("sms")),
        messages::kind.eq(&outbox.kind),
        messages::encoding.eq(text(&payload, "encoding")),
        messages::segments.eq(segments),
        messages::body.eq(text(&payload, "body").unwrap_or_default()),
        messages::to_addr.eq(text(&payload, "to")),
        messages::idempotency_key.eq(&outbox.idempotency_key),
        messages::sent_at.eq(Some(now)),
        messages::updated_at.eq(now),
    );
    let message_id = match placeholder {
        Some((id, _)) => {
            diesel::update(messages::table.find(&id))
                .set(fields)
                .execute(conn)?;
            id
        }
        None => {
            let id = uuid::Uuid::now_v7().to_string();
            diesel::insert_into(messages::table)
                .values((
                    messages::id.eq(&id),
                    messages::direction.eq("outbound"),
                    messages::provider.eq(&sent.provider),
                    messages::provider_message_id.eq(provider_ref),
                    messages::status.eq(&sent.status),
                    messages::sandbox.eq(false),
                    messages::created_at.eq(now),
                    fields,
                ))
                .execute(conn)?;
            id
        }
    };
    append_history(
        conn,
        &outbox.tenant_id,
        &message_id,
        &sent.status,
        None,
        None,
        now,
    )?;
    Ok(())
}

/// How many automated outbound messages each of `customer_ids` was sent after
/// `since`, leaving out the kinds in `exempt` (the rolling cap of SPEC §5).
pub fn sent_since_among(
    conn: &mut DbConnection,
    customer_ids: &[String],
    since: DateTime<Utc>,
    exempt: &[&str],
) -> QueryResult<Vec<(String, u32)>> {
    let since = to_naive(since);
    let mut counts = Vec::new();
    for chunk in customer_ids.chunks(500) {
        let rows: Vec<(Option<String>, i64)> = messages::table
            .filter(messages::customer_id.eq_any(chunk))
            .filter(messages::direction.eq("outbound"))
            .filter(messages::sent_at.gt(since))
            .filter(messages::kind.is_null().or(messages::kind.ne_all(exempt)))
            .group_by(messages::customer_id)
            .select((messages::customer_id, diesel::dsl::count_star()))
            .load(conn)?;
        counts.extend(rows.into_iter().filter_map(|(customer, n)| {
            customer.map(|c| (c, u32::try_from(n).unwrap_or(u32::MAX)))
        }));
    }
    Ok(counts)
}

/// One row of a message's status history.
fn append_history(
    conn: &mut DbConnection,
    tenant_id: &str,
    message_id: &str,
    status: &str,
    error_code: Option<&str>,
    event_id: Option<&str>,
    at: chrono::NaiveDateTime,
) -> diesel::QueryResult<()> {
    diesel::insert_into(message_status_history::table)
        .values((
            message_status_history::id.eq(uuid::Uuid::now_v7().to_string()),
            message_status_history::tenant_id.eq(tenant_id),
            message_status_history::message_id.eq(message_id),
            message_status_history::status.eq(status),
            message_status_history::error_code.eq(error_code),
            message_status_history::provider_event_id.eq(event_id),
            message_status_history::occurred_at.eq(at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// One status report from a provider about its message `provider_message_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub tenant_id: String,
    pub provider: String,
    pub provider_message_id: String,
    pub status: String,
    pub error_code: Option<String>,
    /// Unique per report (Twilio: MessageSid and status): a repeat is a duplicate.
    pub event_id: String,
    /// The channel, when the report tells it (used only for a placeholder row).
    pub channel: String,
}

/// Appends a status report to its message's history (once) and moves the message's
/// status forward.
pub fn record_status(
    conn: &mut DbConnection,
    report: &StatusReport,
    now: DateTime<Utc>,
) -> diesel::QueryResult<StatusRecorded> {
    conn.transaction(|conn| {
        // Write first: this runs on a pooled connection beside the store's writer, and
        // on SQLite a transaction that reads before it writes cannot wait for the write
        // lock (it fails at once with "database is locked"); one that starts by writing
        // waits its turn (busy_timeout).
        diesel::update(
            messages::table
                .filter(messages::provider.eq(&report.provider))
                .filter(messages::provider_message_id.eq(&report.provider_message_id)),
        )
        .set(messages::updated_at.eq(messages::updated_at))
        .execute(conn)?;
        let seen: i64 = message_status_history::table
            .filter(message_status_history::tenant_id.eq(&report.tenant_id))
            .filter(message_status_history::provider_event_id.eq(&report.event_id))
            .count()
            .get_result(conn)?;
        if seen > 0 {
            return Ok(StatusRecorded::Duplicate);
        }
        let now = to_naive(now);
        let found: Option<(String, String)> = messages::table
            .filter(messages::provider.eq(&report.provider))
            .filter(messages::provider_message_id.eq(&report.provider_message_id))
            .select((messages::id, messages::status))
            .first(conn)
            .optional()?;
        let message_id = match found {
            Some((id, current)) => {
                if rank(&report.status) >= rank(&current) {
                    diesel::update(messages::table.find(&id))
                        .set((
                            messages::status.eq(&report.status),
                            messages::error_code.eq(&report.error_code),
                            messages::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                }
                id
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                diesel::insert_into(messages::table)
                    .values((
                        messages::id.eq(&id),
                        messages::tenant_id.eq(&report.tenant_id),
                        messages::direction.eq("outbound"),
                        messages::channel.eq(&report.channel),
                        messages::body.eq(""),
                        messages::provider.eq(&report.provider),
                        messages::provider_message_id.eq(&report.provider_message_id),
                        messages::status.eq(&report.status),
                        messages::error_code.eq(&report.error_code),
                        messages::sandbox.eq(false),
                        messages::created_at.eq(now),
                        messages::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                id
            }
        };
        append_history(
            conn,
            &report.tenant_id,
            &message_id,
            &report.status,
            report.error_code.as_deref(),
            Some(&report.event_id),
            now,
        )?;
        Ok(StatusRecorded::Recorded)
    })
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn statuses_only_move_forward_and_failures_always_count() {
        assert!(rank("delivered") > rank("sent"));
        assert!(rank("sent") > rank("queued"));
        assert!(rank("failed") > rank("delivered"));
        assert!(rank("undelivered") >= rank("read"));
    }
}
