//! The few reads only the dashboard needs, beside the Admin API's queries it reuses:
//! a day's appointments counted by status, each listed appointment's next scheduled
//! timer and open escalations, short summaries of the appointments escalations are
//! about, the message log newest first, a customer's phone for staff, and a cheap
//! signature of the escalation inbox for live updates. Every read is scoped to the
//! tenant and bounded (page sizes, `IN` lists of one page's ids), on indexed columns:
//! `appointments (tenant_id, starts_at)`, `timers (owner_type, owner_id)`,
//! `escalations (appointment_id)` and `(tenant_id, status, …)`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::api::admin::queries::{utc, Page};
use crate::api::admin::support::{mask_phone, Cursor};
use crate::api::admin::AdminError;
use crate::store::schema::{appointments, customers, escalations, messages, timers};
use crate::store::DbConnection;

/// How many appointments of `tenant_id` start in `[from, to)`, by status.
pub fn status_counts(
    conn: &mut DbConnection,
    tenant_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, AdminError> {
    Ok(appointments::table
        .filter(appointments::tenant_id.eq(tenant_id))
        .filter(appointments::starts_at.ge(from.naive_utc()))
        .filter(appointments::starts_at.lt(to.naive_utc()))
        .group_by(appointments::status)
        .select((appointments::status, diesel::dsl::count_star()))
        .order(appointments::status.asc())
        .load(conn)?)
}

/// An appointment's next scheduled timer: what ARO will do next about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextTimer {
    pub kind: String,
    pub due_at: DateTime<Utc>,
}

/// The next scheduled timer of each of `ids` (those that have one).
pub fn next_timers(
    conn: &mut DbConnection,
    tenant_id: &str,
    ids: &[String],
) -> Result<HashMap<String, NextTimer>, AdminError> {
    let mut next: HashMap<String, NextTimer> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String, NaiveDateTime)> = timers::table
            .filter(timers::owner_type.eq("appointment"))
            .filter(timers::owner_id.eq_any(chunk))
            .filter(timers::tenant_id.eq(tenant_id))
            .filter(timers::status.eq("scheduled"))
            .select((timers::owner_id, timers::kind, timers::due_at))
            .load(conn)?;
        for (owner, kind, due_at) in rows {
            let due_at = utc(due_at);
            let sooner = next.get(&owner).is_none_or(|t| due_at < t.due_at);
            if sooner {
                next.insert(owner, NextTimer { kind, due_at });
            }
        }
    }
    Ok(next)
}

/// How many open escalations each of `ids` has (those that have any).
pub fn open_escalations(
    conn: &mut DbConnection,
    tenant_id: &str,
    ids: &[String],
) -> Result<HashMap<String, i64>, AdminError> {
    let mut open = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(Option<String>, i64)> = escalations::table
            .filter(escalations::appointment_id.eq_any(chunk))
            .filter(escalations::tenant_id.eq(tenant_id))
            .filter(escalations::status.eq("open"))
            .group_by(escalations::appointment_id)
            .select((escalations::appointment_id, diesel::dsl::count_star()))
            .load(conn)?;
        open.extend(rows.into_iter().filter_map(|(id, n)| id.map(|id| (id, n))));
    }
    Ok(open)
}

/// What an escalation row shows of its appointment.
#[derive(Debug, Clone)]
pub struct AppointmentSummary {
    pub status: String,
    pub starts_at: DateTime<Utc>,
    pub customer_name: Option<String>,
}

/// Summaries of the appointments `ids` of `tenant_id`.
pub fn appointment_summaries(
    conn: &mut DbConnection,
    tenant_id: &str,
    ids: &[String],
) -> Result<HashMap<String, AppointmentSummary>, AdminError> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String, NaiveDateTime, Option<String>)> = appointments::table
            .inner_join(customers::table)
            .filter(appointments::tenant_id.eq(tenant_id))
            .filter(appointments::id.eq_any(chunk))
            .select((
                appointments::id,
                appointments::status,
                appointments::starts_at,
                customers::name,
            ))
            .load(conn)?;
        for (id, status, starts_at, customer_name) in rows {
            found.insert(
                id,
                AppointmentSummary {
                    status,
                    starts_at: utc(starts_at),
                    customer_name,
                },
            );
        }
    }
    Ok(found)
}

/// The customer's full phone number (detail pages, staff only).
pub fn customer_phone(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
) -> Result<Option<String>, AdminError> {
    Ok(customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(customers::id.eq(customer_id))
        .select(customers::phone_e164)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// Which messages a list shows.
#[derive(Debug, Clone)]
pub struct MessageFilter {
    pub tenant_id: String,
    /// Only the sandbox's (recorded, never sent).
    pub sandbox_only: bool,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// The page after this one (newest first).
    pub before: Option<Cursor>,
    pub limit: i64,
}

/// One message in the list: the other party's number masked.
#[derive(Debug, Clone)]
pub struct MessageItem {
    pub id: String,
    pub customer_id: Option<String>,
    pub appointment_id: Option<String>,
    pub direction: String,
    pub channel: String,
    pub kind: Option<String>,
    pub body: String,
    pub counterpart_masked: Option<String>,
    pub provider: String,
    pub status: String,
    pub error_code: Option<String>,
    pub sandbox: bool,
    pub created_at: DateTime<Utc>,
}

type MessageRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    bool,
    NaiveDateTime,
);

fn message_item(
    (
        id,
        customer_id,
        appointment_id,
        direction,
        channel,
        kind,
        body,
        from_addr,
        to_addr,
        provider,
        status,
        error_code,
        sandbox,
        created_at,
    ): MessageRow,
) -> MessageItem {
    let counterpart = if direction == "inbound" {
        from_addr
    } else {
        to_addr
    };
    MessageItem {
        id,
        customer_id,
        appointment_id,
        direction,
        channel,
        kind,
        body,
        counterpart_masked: counterpart.as_deref().map(mask_phone),
        provider,
        status,
        error_code,
        sandbox,
        created_at: utc(created_at),
    }
}

/// One page of the message log, newest first (keyset on `(created_at, id)`).
pub fn messages_page(
    conn: &mut DbConnection,
    filter: &MessageFilter,
) -> Result<Page<MessageItem>, AdminError> {
    let mut query = messages::table
        .filter(messages::tenant_id.eq(filter.tenant_id.clone()))
        .select((
            messages::id,
            messages::customer_id,
            messages::appointment_id,
            messages::direction,
            messages::channel,
            messages::kind,
            messages::body,
            messages::from_addr,
            messages::to_addr,
            messages::provider,
            messages::status,
            messages::error_code,
            messages::sandbox,
            messages::created_at,
        ))
        .order((messages::created_at.desc(), messages::id.desc()))
        .limit(filter.limit + 1)
        .into_boxed();
    if filter.sandbox_only {
        query = query.filter(messages::sandbox.eq(true));
    }
    if let Some(direction) = &filter.direction {
        query = query.filter(messages::direction.eq(direction.clone()));
    }
    if let Some(before) = &filter.before {
        query = query.filter(
            messages::created_at.lt(before.at).or(messages::created_at
                .eq(before.at)
                .and(messages::id.lt(before.id.clone()))),
        );
    }
    let rows: Vec<MessageRow> = query.load(conn)?;
    Ok(Page::from_rows(
        rows.into_iter().map(message_item).collect(),
        filter.limit,
        |m| Cursor {
            at: m.created_at.naive_utc(),
            id: m.id.clone(),
        },
    ))
}

/// A short text that changes whenever an escalation of `tenant_id` is raised or
/// resolved: the open count and the newest creation and resolution instants.
pub fn escalation_signature(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> Result<String, AdminError> {
    let open: i64 = escalations::table
        .filter(escalations::tenant_id.eq(tenant_id))
        .filter(escalations::status.eq("open"))
        .count()
        .get_result(conn)?;
    let (created, resolved): (Option<NaiveDateTime>, Option<NaiveDateTime>) = escalations::table
        .filter(escalations::tenant_id.eq(tenant_id))
        .select((
            diesel::dsl::max(escalations::created_at),
            diesel::dsl::max(escalations::resolved_at),
        ))
        .first(conn)?;
    let stamp = |at: Option<NaiveDateTime>| at.map_or(0, |at| at.and_utc().timestamp_micros());
    Ok(format!("{open}.{}.{}", stamp(created), stamp(resolved)))
}
