//! Appointments as the Admin API shows them: the keyset-paginated list (by
//! `(starts_at, id)`) and one appointment with its timeline — events in log order,
//! messages with their delivery history, timers, workflows and escalations.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::super::error::AdminError;
use super::super::support::{mask_phone, Cursor};
use super::{json_or_text, utc, Page};
use crate::store::schema::{
    appointments, customers, escalations, events, message_status_history, messages, timers,
    workflow_instances,
};
use crate::store::DbConnection;

/// Most timeline rows of one kind an appointment's detail answers.
const TIMELINE_CAP: i64 = 1000;

/// Which appointments a list returns.
#[derive(Debug, Clone)]
pub struct AppointmentFilter {
    pub tenant_id: String,
    /// Any of these statuses (all when empty).
    pub statuses: Vec<String>,
    /// Starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Starting before.
    pub to: Option<DateTime<Utc>>,
    pub customer_id: Option<String>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

/// The customer of an appointment in a list: no full phone number.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRef {
    pub id: String,
    pub pseudonym: String,
    pub name: Option<String>,
    pub phone_masked: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentItem {
    pub id: String,
    pub status: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub service_type: Option<String>,
    pub source: String,
    pub external_id: String,
    pub deposit_status: String,
    pub customer: CustomerRef,
}

type ItemRow = (
    String,
    String,
    NaiveDateTime,
    NaiveDateTime,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn item(
    (
        id,
        status,
        starts_at,
        ends_at,
        timezone,
        service_type,
        source,
        external_id,
        deposit_status,
        customer_id,
        pseudonym,
        name,
        phone,
    ): ItemRow,
) -> AppointmentItem {
    AppointmentItem {
        id,
        status,
        starts_at: utc(starts_at),
        ends_at: utc(ends_at),
        timezone,
        service_type,
        source,
        external_id,
        deposit_status,
        customer: CustomerRef {
            id: customer_id,
            pseudonym,
            name,
            phone_masked: phone.as_deref().map(mask_phone),
        },
    }
}

macro_rules! item_columns {
    () => {
        (
            appointments::id,
            appointments::status,
            appointments::starts_at,
            appointments::ends_at,
            appointments::timezone,
            appointments::service_type,
            appointments::source,
            appointments::external_id,
            appointments::deposit_status,
            customers::id,
            customers::pseudonym,
            customers::name,
            customers::phone_e164,
        )
    };
}

/// One page of appointments, soonest first.
pub fn list(
    conn: &mut DbConnection,
    filter: &AppointmentFilter,
) -> Result<Page<AppointmentItem>, AdminError> {
    let mut query = appointments::table
        .inner_join(customers::table)
        .filter(appointments::tenant_id.eq(filter.tenant_id.clone()))
        .select(item_columns!())
        .order((appointments::starts_at.asc(), appointments::id.asc()))
        .limit(filter.limit + 1)
        .into_boxed();
    if !filter.statuses.is_empty() {
        query = query.filter(appointments::status.eq_any(filter.statuses.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(appointments::starts_at.ge(from.naive_utc()));
    }
    if let Some(to) = filter.to {
        query = query.filter(appointments::starts_at.lt(to.naive_utc()));
    }
    if let Some(customer_id) = &filter.customer_id {
        query = query.filter(appointments::customer_id.eq(customer_id.clone()));
    }
    if let Some(after) = &filter.after {
        query = query.filter(
            appointments::starts_at
                .gt(after.at)
                .or(appointments::starts_at
                    .eq(after.at)
                    .and(appointments::id.gt(after.id.clone()))),
        );
    }
    let rows: Vec<ItemRow> = query.load(conn)?;
    Ok(Page::from_rows(
        rows.into_iter().map(item).collect(),
        filter.limit,
        |a| Cursor {
            at: a.starts_at.naive_utc(),
            id: a.id.clone(),
        },
    ))
}

/// The appointments of one customer, soonest first (at most `limit`).
pub fn of_customer(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
    limit: i64,
) -> Result<Vec<AppointmentItem>, AdminError> {
    let rows: Vec<ItemRow> = appointments::table
        .inner_join(customers::table)
        .filter(appointments::tenant_id.eq(tenant_id))
        .filter(appointments::customer_id.eq(customer_id))
        .select(item_columns!())
        .order((appointments::starts_at.asc(), appointments::id.asc()))
        .limit(limit)
        .load(conn)?;
    Ok(rows.into_iter().map(item).collect())
}

/// The appointment's customer id and status, when it exists in `tenant_id`.
pub fn find_brief(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<AppointmentBrief>, AdminError> {
    Ok(appointments::table
        .filter(appointments::tenant_id.eq(tenant_id))
        .filter(appointments::id.eq(id))
        .select((
            appointments::id,
            appointments::customer_id,
            appointments::status,
            appointments::starts_at,
            appointments::ends_at,
        ))
        .first::<(String, String, String, NaiveDateTime, NaiveDateTime)>(conn)
        .optional()?
        .map(
            |(id, customer_id, status, starts_at, ends_at)| AppointmentBrief {
                id,
                customer_id,
                status,
                starts_at: utc(starts_at),
                ends_at: utc(ends_at),
            },
        ))
}

/// What a change needs to know of an appointment before asking the engine.
#[derive(Debug, Clone)]
pub struct AppointmentBrief {
    pub id: String,
    pub customer_id: String,
    pub status: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// One appointment with its timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentDetail {
    #[serde(flatten)]
    pub appointment: AppointmentItem,
    pub service_cost_cents: Option<i64>,
    pub currency: Option<String>,
    pub cancel_url: Option<String>,
    pub reschedule_url: Option<String>,
    pub deposit_amount_cents: Option<i64>,
    pub deposit_link: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub timeline: Timeline,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub events: Vec<EventView>,
    pub messages: Vec<MessageView>,
    pub timers: Vec<TimerView>,
    pub workflows: Vec<WorkflowView>,
    pub escalations: Vec<EscalationView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub aggregate_version: i64,
    pub occurred_at: DateTime<Utc>,
    pub payload: Value,
    pub workflow_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub id: String,
    pub direction: String,
    pub channel: String,
    pub kind: Option<String>,
    pub body: String,
    /// The other party's number, masked (the customer's full number is on the
    /// customer's own page).
    pub counterpart_masked: Option<String>,
    pub provider: String,
    pub provider_message_id: Option<String>,
    pub status: String,
    pub error_code: Option<String>,
    pub sandbox: bool,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub status_history: Vec<StatusView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub status: String,
    pub error_code: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimerView {
    pub key: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub status: String,
    pub fired_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowView {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub step: String,
    pub data: Value,
    pub retry_count: i32,
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EscalationView {
    pub id: String,
    pub appointment_id: Option<String>,
    pub customer_id: Option<String>,
    pub reason: String,
    pub priority: String,
    pub status: String,
    pub details: Value,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

pub type EscalationRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<String>,
    Option<String>,
);

pub fn escalation_view(
    (
        id,
        appointment_id,
        customer_id,
        reason,
        priority,
        status,
        details,
        created_at,
        resolved_at,
        resolved_by,
        resolution,
    ): EscalationRow,
) -> EscalationView {
    EscalationView {
        id,
        appointment_id,
        customer_id,
        reason,
        priority,
        status,
        details: json_or_text(&details),
        created_at: utc(created_at),
        resolved_at: resolved_at.map(utc),
        resolved_by,
        resolution,
    }
}

type DetailRow = (
    ItemRow,
    (
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        i64,
        NaiveDateTime,
        NaiveDateTime,
    ),
);

/// One appointment of `tenant_id` with its whole timeline.
pub fn detail(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<AppointmentDetail>, AdminError> {
    let row: Option<DetailRow> = appointments::table
        .inner_join(customers::table)
        .filter(appointments::tenant_id.eq(tenant_id))
        .filter(appointments::id.eq(id))
        .select((
            item_columns!(),
            (
                appointments::service_cost_cents,
                appointments::currency,
                appointments::cancel_url,
                appointments::reschedule_url,
                appointments::deposit_amount_cents,
                appointments::deposit_link,
                appointments::version,
                appointments::created_at,
                appointments::updated_at,
            ),
        ))
        .first(conn)
        .optional()?;
    let Some((
        item_row,
        (
            service_cost_cents,
            currency,
            cancel_url,
            reschedule_url,
            deposit_amount_cents,
            deposit_link,
            version,
            created_at,
            updated_at,
        ),
    )) = row
    else {
        return Ok(None);
    };
    let timeline = timeline(conn, tenant_id, id)?;
    Ok(Some(AppointmentDetail {
        appointment: item(item_row),
        service_cost_cents,
        currency,
        cancel_url,
        reschedule_url,
        deposit_amount_cents,
        deposit_link,
        version,
        created_at: utc(created_at),
        updated_at: utc(updated_at),
        timeline,
    }))
}

type EventRow = (
    i64,
    String,
    String,
    i64,
    NaiveDateTime,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

type MessageRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    Option<String>,
    bool,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

fn timeline(conn: &mut DbConnection, tenant_id: &str, id: &str) -> Result<Timeline, AdminError> {
    let events: Vec<EventRow> = events::table
        .filter(events::tenant_id.eq(tenant_id))
        .filter(events::aggregate_type.eq("appointment"))
        .filter(events::aggregate_id.eq(id))
        .order(events::seq.asc())
        .select((
            events::seq,
            events::event_id,
            events::event_type,
            events::aggregate_version,
            events::occurred_at,
            events::payload,
            events::workflow_id,
            events::correlation_id,
            events::causation_id,
        ))
        .limit(TIMELINE_CAP)
        .load(conn)?;
    let events = events
        .into_iter()
        .map(
            |(
                seq,
                event_id,
                event_type,
                version,
                at,
                payload,
                workflow,
                correlation,
                causation,
            )| {
                EventView {
                    seq,
                    event_id,
                    event_type,
                    aggregate_version: version,
                    occurred_at: utc(at),
                    payload: json_or_text(&payload),
                    workflow_id: workflow,
                    correlation_id: correlation,
                    causation_id: causation,
                }
            },
        )
        .collect();

    let message_rows: Vec<MessageRow> = messages::table
        .filter(messages::tenant_id.eq(tenant_id))
        .filter(messages::appointment_id.eq(id))
        .order((messages::created_at.asc(), messages::id.asc()))
        .select((
            messages::id,
            messages::direction,
            messages::channel,
            messages::kind,
            messages::body,
            messages::from_addr,
            messages::to_addr,
            messages::provider,
            messages::provider_message_id,
            messages::status,
            messages::error_code,
            messages::sandbox,
            messages::sent_at,
            messages::created_at,
        ))
        .limit(TIMELINE_CAP)
        .load(conn)?;
    let ids: Vec<String> = message_rows.iter().map(|m| m.0.clone()).collect();
    let mut history: HashMap<String, Vec<StatusView>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String, Option<String>, NaiveDateTime)> =
            message_status_history::table
                .filter(message_status_history::message_id.eq_any(chunk))
                .order((
                    message_status_history::occurred_at.asc(),
                    message_status_history::id.asc(),
                ))
                .select((
                    message_status_history::message_id,
                    message_status_history::status,
                    message_status_history::error_code,
                    message_status_history::occurred_at,
                ))
                .load(conn)?;
        for (message_id, status, error_code, at) in rows {
            history.entry(message_id).or_default().push(StatusView {
                status,
                error_code,
                occurred_at: utc(at),
            });
        }
    }
    let messages = message_rows
        .into_iter()
        .map(
            |(
                id,
                direction,
                channel,
                kind,
                body,
                from_addr,
                to_addr,
                provider,
                provider_message_id,
                status,
                error_code,
                sandbox,
                sent_at,
                created_at,
            )| {
                let counterpart = if direction == "inbound" {
                    from_addr
                } else {
                    to_addr
                };
                MessageView {
                    status_history: history.remove(&id).unwrap_or_default(),
                    id,
                    direction,
                    channel,
                    kind,
                    body,
                    counterpart_masked: counterpart.as_deref().map(mask_phone),
                    provider,
                    provider_message_id,
                    status,
                    error_code,
                    sandbox,
                    sent_at: sent_at.map(utc),
                    created_at: utc(created_at),
                }
            },
        )
        .collect();

    let timers: Vec<(String, String, NaiveDateTime, String, Option<NaiveDateTime>)> = timers::table
        .filter(timers::tenant_id.eq(tenant_id))
        .filter(timers::owner_type.eq("appointment"))
        .filter(timers::owner_id.eq(id))
        .order((timers::due_at.asc(), timers::timer_key.asc()))
        .select((
            timers::timer_key,
            timers::kind,
            timers::due_at,
            timers::status,
            timers::fired_at,
        ))
        .limit(TIMELINE_CAP)
        .load(conn)?;
    let timers = timers
        .into_iter()
        .map(|(key, kind, due_at, status, fired_at)| TimerView {
            key,
            kind,
            due_at: utc(due_at),
            status,
            fired_at: fired_at.map(utc),
        })
        .collect();

    type WorkflowRow = (
        String,
        String,
        String,
        String,
        String,
        i32,
        Option<String>,
        i64,
        NaiveDateTime,
        NaiveDateTime,
        Option<NaiveDateTime>,
    );
    let workflows: Vec<WorkflowRow> = workflow_instances::table
        .filter(workflow_instances::tenant_id.eq(tenant_id))
        .filter(workflow_instances::appointment_id.eq(id))
        .order((
            workflow_instances::created_at.asc(),
            workflow_instances::id.asc(),
        ))
        .select((
            workflow_instances::id,
            workflow_instances::kind,
            workflow_instances::state,
            workflow_instances::step,
            workflow_instances::data,
            workflow_instances::retry_count,
            workflow_instances::last_error,
            workflow_instances::version,
            workflow_instances::created_at,
            workflow_instances::updated_at,
            workflow_instances::completed_at,
        ))
        .limit(TIMELINE_CAP)
        .load(conn)?;
    let workflows = workflows
        .into_iter()
        .map(
            |(
                id,
                kind,
                state,
                step,
                data,
                retry_count,
                last_error,
                version,
                created_at,
                updated_at,
                completed_at,
            )| WorkflowView {
                id,
                kind,
                state,
                step,
                data: json_or_text(&data),
                retry_count,
                last_error,
                version,
                created_at: utc(created_at),
                updated_at: utc(updated_at),
                completed_at: completed_at.map(utc),
            },
        )
        .collect();

    let escalations: Vec<EscalationRow> = escalations::table
        .filter(escalations::tenant_id.eq(tenant_id))
        .filter(escalations::appointment_id.eq(id))
        .order((escalations::created_at.asc(), escalations::id.asc()))
        .select(escalation_columns!())
        .limit(TIMELINE_CAP)
        .load(conn)?;
    Ok(Timeline {
        events,
        messages,
        timers,
        workflows,
        escalations: escalations.into_iter().map(escalation_view).collect(),
    })
}
