//! The per-table steps of an erasure, each one plain diesel on the caller's
//! transaction, each answering how many rows it changed. What each step keeps, and why,
//! is in `docs/security.md` ("GDPR").

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::footprint::{self, Footprint};
use super::scrub::{Needles, ERASED};
use crate::store::schema::{
    appointments, commands, consents, customers, dead_letters, escalations, events,
    idempotency_keys, inbox, message_status_history, messages, outbox, timers, workflow_instances,
};
use crate::store::DbConnection;

/// Ids per `IN (…)` list.
const CHUNK: usize = 500;
/// Who closes what an erasure closes (dead letters, escalations).
pub const CLOSED_BY: &str = "system:erasure";
/// Why an erasure dropped a pending outbox row or inbox item.
pub const DROPPED: &str = "dropped: the customer's data was erased";

type Result<T> = diesel::QueryResult<T>;

/// Takes the write lock (SQLite) and checks the customer exists: the first statement
/// of the erasure's transaction must be a write, or SQLite cannot wait for the lock.
pub fn touch_customer(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
    now: NaiveDateTime,
) -> Result<usize> {
    diesel::update(
        customers::table
            .filter(customers::tenant_id.eq(tenant_id))
            .filter(customers::id.eq(customer_id)),
    )
    .set(customers::updated_at.eq(now))
    .execute(conn)
}

/// Contact details, zone and language gone; opted out (nothing automated is sent to
/// them again); marked erased. Counters, risk and the pseudonym stay. A row already in
/// that state is left alone (and not counted).
pub fn customer(conn: &mut DbConnection, found: &Footprint, now: NaiveDateTime) -> Result<usize> {
    diesel::update(
        customers::table
            .filter(customers::tenant_id.eq(&found.tenant_id))
            .filter(customers::id.eq(&found.customer_id))
            .filter(
                customers::phone_e164
                    .is_not_null()
                    .or(customers::name.is_not_null())
                    .or(customers::email.is_not_null())
                    .or(customers::timezone.is_not_null())
                    .or(customers::language.is_not_null())
                    .or(customers::opted_out.eq(false))
                    .or(customers::erased_at.is_null()),
            ),
    )
    .set((
        customers::phone_e164.eq(None::<String>),
        customers::name.eq(None::<String>),
        customers::email.eq(None::<String>),
        customers::timezone.eq(None::<String>),
        customers::language.eq(None::<String>),
        customers::opted_out.eq(true),
        customers::erased_at.eq(Some(found.erased_at.unwrap_or(now))),
        customers::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Consent records: removed (they name the customer's number and replies).
pub fn consents(conn: &mut DbConnection, found: &Footprint) -> Result<usize> {
    diesel::delete(
        consents::table
            .filter(consents::tenant_id.eq(&found.tenant_id))
            .filter(consents::customer_id.eq(&found.customer_id)),
    )
    .execute(conn)
}

/// Booking fields that can name the customer: links and notes.
pub fn appointments(conn: &mut DbConnection, found: &Footprint) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.appointment_ids.chunks(CHUNK) {
        changed += diesel::update(
            appointments::table
                .filter(appointments::tenant_id.eq(&found.tenant_id))
                .filter(appointments::id.eq_any(chunk))
                .filter(
                    appointments::cancel_url
                        .is_not_null()
                        .or(appointments::reschedule_url.is_not_null())
                        .or(appointments::notes.is_not_null())
                        .or(appointments::deposit_link.is_not_null()),
                ),
        )
        .set((
            appointments::cancel_url.eq(None::<String>),
            appointments::reschedule_url.eq(None::<String>),
            appointments::notes.eq(None::<String>),
            appointments::deposit_link.eq(None::<String>),
        ))
        .execute(conn)?;
    }
    Ok(changed)
}

/// Message bodies and the customer's side of each message; the rows stay (kind,
/// direction, status, segments, times: the metrics).
pub fn messages(conn: &mut DbConnection, found: &Footprint, now: NaiveDateTime) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.message_ids.chunks(CHUNK) {
        let scope = messages::table
            .filter(messages::tenant_id.eq(&found.tenant_id))
            .filter(messages::id.eq_any(chunk));
        changed += diesel::update(scope.clone().filter(messages::body.ne(ERASED)))
            .set((messages::body.eq(ERASED), messages::updated_at.eq(now)))
            .execute(conn)?;
        diesel::update(
            scope
                .clone()
                .filter(messages::direction.eq("outbound"))
                .filter(messages::to_addr.is_not_null()),
        )
        .set(messages::to_addr.eq(None::<String>))
        .execute(conn)?;
        diesel::update(
            scope
                .filter(messages::direction.eq("inbound"))
                .filter(messages::from_addr.is_not_null()),
        )
        .set(messages::from_addr.eq(None::<String>))
        .execute(conn)?;
    }
    Ok(changed)
}

/// The delivery reports of their messages: removed.
pub fn status_history(conn: &mut DbConnection, found: &Footprint) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.message_ids.chunks(CHUNK) {
        changed += diesel::delete(
            message_status_history::table
                .filter(message_status_history::tenant_id.eq(&found.tenant_id))
                .filter(message_status_history::message_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(changed)
}

/// Event payloads scrubbed; the events stay (type, aggregate, version, time: the
/// metrics and the Event API's order).
pub fn events(conn: &mut DbConnection, found: &Footprint, needles: &Needles) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.event_seqs.chunks(CHUNK) {
        let rows: Vec<(i64, String)> = events::table
            .filter(events::tenant_id.eq(&found.tenant_id))
            .filter(events::seq.eq_any(chunk))
            .select((events::seq, events::payload))
            .load(conn)?;
        for (seq, payload) in rows {
            let scrubbed = needles.document(&payload);
            if scrubbed != payload {
                changed += diesel::update(events::table.filter(events::seq.eq(seq)))
                    .set(events::payload.eq(scrubbed))
                    .execute(conn)?;
            }
        }
    }
    Ok(changed)
}

/// Inbox payloads (normalized webhook deliveries and commands) scrubbed; items not yet
/// applied are refused, so nothing about the customer is applied after the erasure.
pub fn inbox(
    conn: &mut DbConnection,
    found: &Footprint,
    needles: &Needles,
    now: NaiveDateTime,
) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.inbox_ids.chunks(CHUNK) {
        let rows: Vec<(String, String, String, Option<String>)> = inbox::table
            .filter(inbox::tenant_id.eq(&found.tenant_id))
            .filter(inbox::id.eq_any(chunk))
            .select((inbox::id, inbox::status, inbox::payload, inbox::last_error))
            .load(conn)?;
        for (id, status, payload, last_error) in rows {
            let pending = status == "pending";
            let scrubbed = needles.document(&payload);
            let error = if pending {
                Some(DROPPED.to_string())
            } else {
                needles.optional(last_error.as_deref())
            };
            if !pending && scrubbed == payload && error == last_error {
                continue;
            }
            changed += diesel::update(inbox::table.find(&id))
                .set((
                    inbox::payload.eq(scrubbed),
                    inbox::last_error.eq(error),
                    inbox::status.eq(if pending { "rejected" } else { status.as_str() }),
                    inbox::processed_at.eq(pending.then_some(now)),
                ))
                .execute(conn)?;
        }
    }
    Ok(changed)
}

/// Command API commands: payload, result and error scrubbed.
pub fn commands(conn: &mut DbConnection, found: &Footprint, needles: &Needles) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.command_ids.chunks(CHUNK) {
        type Row = (String, String, Option<String>, Option<String>);
        let rows: Vec<Row> = commands::table
            .filter(commands::tenant_id.eq(&found.tenant_id))
            .filter(commands::id.eq_any(chunk))
            .select((
                commands::id,
                commands::payload,
                commands::result,
                commands::error,
            ))
            .load(conn)?;
        for (id, payload, result, error) in rows {
            let new = (
                needles.document(&payload),
                needles.optional(result.as_deref()),
                needles.optional(error.as_deref()),
            );
            if new != (payload, result, error) {
                changed += diesel::update(commands::table.find(&id))
                    .set((
                        commands::payload.eq(new.0),
                        commands::result.eq(new.1),
                        commands::error.eq(new.2),
                    ))
                    .execute(conn)?;
            }
        }
    }
    Ok(changed)
}

/// The Command API's stored answers for their commands, scrubbed (the keys stay, so a
/// retried request is still answered instead of applied twice).
pub fn idempotency_keys(
    conn: &mut DbConnection,
    found: &Footprint,
    needles: &Needles,
) -> Result<usize> {
    let mut changed = 0;
    let scope = footprint::command_scope();
    for chunk in found.idempotency_keys.chunks(CHUNK) {
        let rows: Vec<(String, Option<String>)> = idempotency_keys::table
            .filter(idempotency_keys::tenant_id.eq(&found.tenant_id))
            .filter(idempotency_keys::scope.eq(scope))
            .filter(idempotency_keys::key.eq_any(chunk))
            .select((idempotency_keys::key, idempotency_keys::response_body))
            .load(conn)?;
        for (key, body) in rows {
            let scrubbed = needles.optional(body.as_deref());
            if scrubbed != body {
                changed += diesel::update(
                    idempotency_keys::table
                        .filter(idempotency_keys::tenant_id.eq(&found.tenant_id))
                        .filter(idempotency_keys::scope.eq(scope))
                        .filter(idempotency_keys::key.eq(&key)),
                )
                .set(idempotency_keys::response_body.eq(scrubbed))
                .execute(conn)?;
            }
        }
    }
    Ok(changed)
}

/// Workflow data and errors scrubbed.
pub fn workflows(conn: &mut DbConnection, found: &Footprint, needles: &Needles) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.workflow_ids.chunks(CHUNK) {
        let rows: Vec<(String, String, Option<String>)> = workflow_instances::table
            .filter(workflow_instances::tenant_id.eq(&found.tenant_id))
            .filter(workflow_instances::id.eq_any(chunk))
            .select((
                workflow_instances::id,
                workflow_instances::data,
                workflow_instances::last_error,
            ))
            .load(conn)?;
        for (id, data, last_error) in rows {
            let new = (
                needles.document(&data),
                needles.optional(last_error.as_deref()),
            );
            if new != (data, last_error) {
                changed += diesel::update(workflow_instances::table.find(&id))
                    .set((
                        workflow_instances::data.eq(new.0),
                        workflow_instances::last_error.eq(new.1),
                    ))
                    .execute(conn)?;
            }
        }
    }
    Ok(changed)
}

/// Scheduled timers cancelled (nothing fires for the customer again), payloads
/// scrubbed. Answers the rows changed and the `(tenant, key)` of every timer cancelled.
pub fn timers(
    conn: &mut DbConnection,
    found: &Footprint,
    needles: &Needles,
    now: NaiveDateTime,
) -> Result<(usize, Vec<(String, String)>)> {
    let mut changed = 0;
    let mut cancelled = Vec::new();
    for chunk in found.timer_ids.chunks(CHUNK) {
        let rows: Vec<(String, String, String, String)> = timers::table
            .filter(timers::tenant_id.eq(&found.tenant_id))
            .filter(timers::id.eq_any(chunk))
            .select((
                timers::id,
                timers::timer_key,
                timers::status,
                timers::payload,
            ))
            .load(conn)?;
        for (id, key, status, payload) in rows {
            let scheduled = status == "scheduled";
            let scrubbed = needles.document(&payload);
            if !scheduled && scrubbed == payload {
                continue;
            }
            changed += diesel::update(timers::table.find(&id))
                .set((
                    timers::payload.eq(scrubbed),
                    timers::status.eq(if scheduled {
                        "cancelled"
                    } else {
                        status.as_str()
                    }),
                    timers::updated_at.eq(now),
                ))
                .execute(conn)?;
            if scheduled {
                cancelled.push((found.tenant_id.clone(), key));
            }
        }
    }
    Ok((changed, cancelled))
}

/// Outbox payloads (rendered messages, addresses) and errors scrubbed; rows still
/// pending are dropped unsent (`done` with no provider reference, as the messaging
/// supervisor drops a message for an opted-out customer). A row in flight is being
/// sent right now: its outcome is recorded by the supervisor, and the erasure's second
/// pass scrubs what that records.
pub fn outbox(
    conn: &mut DbConnection,
    found: &Footprint,
    needles: &Needles,
    now: NaiveDateTime,
) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.outbox_ids.chunks(CHUNK) {
        let rows: Vec<(String, String, String, Option<String>)> = outbox::table
            .filter(outbox::tenant_id.eq(&found.tenant_id))
            .filter(outbox::id.eq_any(chunk))
            .select((
                outbox::id,
                outbox::status,
                outbox::payload,
                outbox::last_error,
            ))
            .load(conn)?;
        for (id, status, payload, last_error) in rows {
            let pending = status == "pending";
            let scrubbed = needles.document(&payload);
            let error = if pending {
                Some(DROPPED.to_string())
            } else {
                needles.optional(last_error.as_deref())
            };
            if !pending && scrubbed == payload && error == last_error {
                continue;
            }
            changed += diesel::update(outbox::table.find(&id))
                .set((
                    outbox::payload.eq(scrubbed),
                    outbox::last_error.eq(error),
                    outbox::status.eq(if pending { "done" } else { status.as_str() }),
                    outbox::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
    }
    Ok(changed)
}

/// Dead letters: payload and error scrubbed; open ones archived (never replayed to the
/// customer).
pub fn dead_letters(
    conn: &mut DbConnection,
    found: &Footprint,
    needles: &Needles,
    now: NaiveDateTime,
) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.dead_letter_ids.chunks(CHUNK) {
        let rows: Vec<(String, String, String, String)> = dead_letters::table
            .filter(dead_letters::tenant_id.eq(&found.tenant_id))
            .filter(dead_letters::id.eq_any(chunk))
            .select((
                dead_letters::id,
                dead_letters::status,
                dead_letters::payload,
                dead_letters::error,
            ))
            .load(conn)?;
        for (id, status, payload, error) in rows {
            let open = status == "open";
            let new = (needles.document(&payload), needles.text(&error));
            if !open && new == (payload.clone(), error.clone()) {
                continue;
            }
            let update = diesel::update(dead_letters::table.find(&id));
            changed += if open {
                update
                    .set((
                        dead_letters::payload.eq(new.0),
                        dead_letters::error.eq(new.1),
                        dead_letters::status.eq("archived"),
                        dead_letters::resolved_at.eq(Some(now)),
                        dead_letters::resolved_by.eq(Some(CLOSED_BY)),
                    ))
                    .execute(conn)?
            } else {
                update
                    .set((
                        dead_letters::payload.eq(new.0),
                        dead_letters::error.eq(new.1),
                    ))
                    .execute(conn)?
            };
        }
    }
    Ok(changed)
}

/// Escalations: details (excerpts, notes, links) scrubbed; open ones resolved as
/// `customer_erased` (there is no one left to contact).
pub fn escalations(
    conn: &mut DbConnection,
    found: &Footprint,
    needles: &Needles,
    now: NaiveDateTime,
) -> Result<usize> {
    let mut changed = 0;
    for chunk in found.escalation_ids.chunks(CHUNK) {
        type Row = (String, String, String, Option<String>);
        let rows: Vec<Row> = escalations::table
            .filter(escalations::tenant_id.eq(&found.tenant_id))
            .filter(escalations::id.eq_any(chunk))
            .select((
                escalations::id,
                escalations::status,
                escalations::details,
                escalations::resolution,
            ))
            .load(conn)?;
        for (id, status, details, resolution) in rows {
            let open = status == "open";
            let new = (
                needles.document(&details),
                needles.optional(resolution.as_deref()),
            );
            if !open && new == (details.clone(), resolution.clone()) {
                continue;
            }
            let update = diesel::update(escalations::table.find(&id));
            changed += if open {
                update
                    .set((
                        escalations::details.eq(new.0),
                        escalations::status.eq("resolved"),
                        escalations::resolution.eq(Some("customer_erased")),
                        escalations::resolved_at.eq(Some(now)),
                        escalations::resolved_by.eq(Some(CLOSED_BY)),
                    ))
                    .execute(conn)?
            } else {
                update
                    .set((
                        escalations::details.eq(new.0),
                        escalations::resolution.eq(new.1),
                    ))
                    .execute(conn)?
            };
        }
    }
    Ok(changed)
}
