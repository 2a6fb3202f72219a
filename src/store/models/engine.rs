//! Rows of the engine's tables — appointments, customers, workflow instances, events,
//! timers, outbox, dead letters, escalations, breaker state — and their conversions to
//! and from the records of `actors::ports::store`.
//!
//! Instants are stored as UTC `TIMESTAMP`s; JSON documents as text.

use actors::domain::appointment_status::AppointmentStatus;
use actors::domain::workflow_state::WorkflowState;
use actors::ports::store::{
    AppointmentRecord, CustomerHistory, CustomerRecord, DepositState, DepositStatus, NewEscalation,
    NewEvent, NewOutbox, OutboxRecord, OutboxStatus, ProviderDomain, TimerRecord, TimerSpec,
    TimerStatus, WorkflowRecord,
};
use actors::resilience::breaker::{BreakerSnapshot, BreakerState};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::store::schema::{
    appointments, breaker_state, customers, dead_letters, escalations, events, outbox, timers,
    workflow_instances,
};

/// A stored value that does not parse as what its column holds.
#[derive(Debug, thiserror::Error)]
#[error("corrupt {column}: {reason}")]
pub struct CorruptRow {
    pub column: &'static str,
    pub reason: String,
}

pub(crate) fn corrupt(column: &'static str, reason: impl ToString) -> CorruptRow {
    CorruptRow {
        column,
        reason: reason.to_string(),
    }
}

pub fn to_naive(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc()
}

pub fn to_utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

pub(crate) fn json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

pub(crate) fn parse_json(
    column: &'static str,
    text: &str,
) -> Result<serde_json::Value, CorruptRow> {
    serde_json::from_str(text).map_err(|e| corrupt(column, e))
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = appointments)]
pub struct AppointmentRow {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub source: String,
    pub external_id: String,
    pub status: String,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub timezone: String,
    #[diesel(treat_none_as_null = true)]
    pub service_type: Option<String>,
    #[diesel(treat_none_as_null = true)]
    pub cancel_url: Option<String>,
    #[diesel(treat_none_as_null = true)]
    pub reschedule_url: Option<String>,
    #[diesel(treat_none_as_null = true)]
    pub service_cost_cents: Option<i64>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deposit_status: String,
    #[diesel(treat_none_as_null = true)]
    pub deposit_amount_cents: Option<i64>,
    #[diesel(treat_none_as_null = true)]
    pub deposit_link: Option<String>,
    pub deposit_steps: i64,
}

impl From<&AppointmentRecord> for AppointmentRow {
    fn from(r: &AppointmentRecord) -> Self {
        Self {
            id: r.id.clone(),
            tenant_id: r.tenant_id.clone(),
            customer_id: r.customer_id.clone(),
            source: r.source.clone(),
            external_id: r.external_id.clone(),
            status: r.status.as_str().to_string(),
            starts_at: to_naive(r.starts_at),
            ends_at: to_naive(r.ends_at),
            timezone: r.timezone.clone(),
            service_type: r.service_type.clone(),
            cancel_url: r.cancel_url.clone(),
            reschedule_url: r.reschedule_url.clone(),
            service_cost_cents: r.service_cost_cents,
            version: r.version,
            created_at: to_naive(r.created_at),
            updated_at: to_naive(r.updated_at),
            deposit_status: r.deposit.status.as_str().to_string(),
            deposit_amount_cents: r.deposit.amount_cents,
            deposit_link: r.deposit.link.clone(),
            deposit_steps: r.deposit.steps,
        }
    }
}

impl TryFrom<AppointmentRow> for AppointmentRecord {
    type Error = CorruptRow;

    fn try_from(r: AppointmentRow) -> Result<Self, CorruptRow> {
        Ok(Self {
            status: r
                .status
                .parse::<AppointmentStatus>()
                .map_err(|e| corrupt("appointments.status", e))?,
            id: r.id,
            tenant_id: r.tenant_id,
            customer_id: r.customer_id,
            source: r.source,
            external_id: r.external_id,
            starts_at: to_utc(r.starts_at),
            ends_at: to_utc(r.ends_at),
            timezone: r.timezone,
            service_type: r.service_type,
            cancel_url: r.cancel_url,
            reschedule_url: r.reschedule_url,
            service_cost_cents: r.service_cost_cents,
            version: r.version,
            created_at: to_utc(r.created_at),
            updated_at: to_utc(r.updated_at),
            deposit: DepositState {
                status: DepositStatus::parse(&r.deposit_status).ok_or_else(|| {
                    corrupt("appointments.deposit_status", r.deposit_status.clone())
                })?,
                amount_cents: r.deposit_amount_cents,
                link: r.deposit_link,
                steps: r.deposit_steps,
            },
        })
    }
}

/// The customer columns the engine reads.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customers)]
pub struct CustomerView {
    pub id: String,
    pub tenant_id: String,
    pub phone_e164: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub opted_out: bool,
    pub appointment_count: i32,
    pub confirmed_count: i32,
    pub no_show_count: i32,
    pub reschedule_count: i32,
    pub payment_past_due: bool,
    pub risk_score: i32,
    pub requires_deposit: bool,
    pub last_review_request_at: Option<NaiveDateTime>,
}

impl From<CustomerView> for CustomerRecord {
    fn from(c: CustomerView) -> Self {
        Self {
            id: c.id,
            tenant_id: c.tenant_id,
            phone_e164: c.phone_e164,
            name: c.name,
            email: c.email,
            timezone: c.timezone,
            opted_out: c.opted_out,
            history: CustomerHistory {
                appointments: c.appointment_count,
                confirmed: c.confirmed_count,
                no_shows: c.no_show_count,
                reschedules: c.reschedule_count,
                payment_past_due: c.payment_past_due,
                risk_score: c.risk_score,
                requires_deposit: c.requires_deposit,
                last_review_request_at: c.last_review_request_at.map(to_utc),
            },
        }
    }
}

/// A new customer row; counters and flags take their defaults.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = customers)]
pub struct NewCustomerRow {
    pub id: String,
    pub tenant_id: String,
    /// Shown instead of the name where personal data must not go (PHI filter).
    pub pseudonym: String,
    pub phone_e164: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl NewCustomerRow {
    pub fn new(c: &CustomerRecord, now: NaiveDateTime) -> Self {
        Self {
            id: c.id.clone(),
            tenant_id: c.tenant_id.clone(),
            pseudonym: pseudonym(&c.id),
            phone_e164: c.phone_e164.clone(),
            name: c.name.clone(),
            email: c.email.clone(),
            timezone: c.timezone.clone(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// `C-` and 16 hex digits of the customer id: stable, unique in practice, and free of
/// personal data.
pub fn pseudonym(customer_id: &str) -> String {
    let hex: String = customer_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let tail = hex.len().saturating_sub(16);
    format!("C-{}", hex[tail..].to_ascii_uppercase())
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = workflow_instances)]
pub struct WorkflowRow {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    #[diesel(treat_none_as_null = true)]
    pub appointment_id: Option<String>,
    #[diesel(treat_none_as_null = true)]
    pub customer_id: Option<String>,
    pub state: String,
    pub step: String,
    pub data: String,
    pub retry_count: i32,
    #[diesel(treat_none_as_null = true)]
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl From<&WorkflowRecord> for WorkflowRow {
    fn from(w: &WorkflowRecord) -> Self {
        Self {
            id: w.id.clone(),
            tenant_id: w.tenant_id.clone(),
            kind: w.kind.clone(),
            appointment_id: w.appointment_id.clone(),
            customer_id: w.customer_id.clone(),
            state: w.state.as_str().to_string(),
            step: w.step.clone(),
            data: json_text(&w.data),
            retry_count: w.retry_count,
            last_error: w.last_error.clone(),
            version: w.version,
            created_at: to_naive(w.created_at),
            updated_at: to_naive(w.updated_at),
        }
    }
}

impl TryFrom<WorkflowRow> for WorkflowRecord {
    type Error = CorruptRow;

    fn try_from(w: WorkflowRow) -> Result<Self, CorruptRow> {
        Ok(Self {
            state: w
                .state
                .parse::<WorkflowState>()
                .map_err(|e| corrupt("workflow_instances.state", e))?,
            data: parse_json("workflow_instances.data", &w.data)?,
            id: w.id,
            tenant_id: w.tenant_id,
            kind: w.kind,
            appointment_id: w.appointment_id,
            customer_id: w.customer_id,
            step: w.step,
            retry_count: w.retry_count,
            last_error: w.last_error,
            version: w.version,
            created_at: to_utc(w.created_at),
            updated_at: to_utc(w.updated_at),
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = events)]
pub struct NewEventRow {
    pub event_id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    pub occurred_at: NaiveDateTime,
    pub recorded_at: NaiveDateTime,
    pub profile: String,
    pub payload: String,
    pub workflow_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

impl NewEventRow {
    pub fn new(e: &NewEvent, recorded_at: NaiveDateTime) -> Self {
        Self {
            event_id: e.event_id.clone(),
            tenant_id: e.tenant_id.clone(),
            event_type: e.event_type.clone(),
            aggregate_type: e.aggregate_type.clone(),
            aggregate_id: e.aggregate_id.clone(),
            aggregate_version: e.aggregate_version,
            occurred_at: to_naive(e.occurred_at),
            recorded_at,
            profile: e.profile.clone(),
            payload: json_text(&e.payload),
            workflow_id: e.workflow_id.clone(),
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = timers)]
pub struct TimerRow {
    pub tenant_id: String,
    pub timer_key: String,
    pub owner_type: String,
    pub owner_id: String,
    pub kind: String,
    pub due_at: NaiveDateTime,
    pub payload: String,
    pub status: String,
}

pub fn timer_status(text: &str) -> Result<TimerStatus, CorruptRow> {
    [
        TimerStatus::Scheduled,
        TimerStatus::Fired,
        TimerStatus::Cancelled,
        TimerStatus::Missed,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .ok_or_else(|| corrupt("timers.status", text))
}

impl TryFrom<TimerRow> for TimerRecord {
    type Error = CorruptRow;

    fn try_from(t: TimerRow) -> Result<Self, CorruptRow> {
        Ok(Self {
            status: timer_status(&t.status)?,
            spec: TimerSpec {
                payload: parse_json("timers.payload", &t.payload)?,
                tenant_id: t.tenant_id,
                key: t.timer_key,
                owner_type: t.owner_type,
                owner_id: t.owner_id,
                kind: t.kind,
                due_at: to_utc(t.due_at),
            },
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = timers)]
pub struct NewTimerRow {
    pub id: String,
    pub tenant_id: String,
    pub timer_key: String,
    pub owner_type: String,
    pub owner_id: String,
    pub kind: String,
    pub due_at: NaiveDateTime,
    pub payload: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl NewTimerRow {
    pub fn new(id: String, t: &TimerSpec, now: NaiveDateTime) -> Self {
        Self {
            id,
            tenant_id: t.tenant_id.clone(),
            timer_key: t.key.clone(),
            owner_type: t.owner_type.clone(),
            owner_id: t.owner_id.clone(),
            kind: t.kind.clone(),
            due_at: to_naive(t.due_at),
            payload: json_text(&t.payload),
            status: TimerStatus::Scheduled.as_str().to_string(),
            created_at: now,
            updated_at: now,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub tenant_id: String,
    pub domain: String,
    pub kind: String,
    pub owner_type: String,
    pub owner_id: String,
    pub idempotency_key: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub provider_ref: Option<String>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl OutboxRow {
    pub fn new(o: &NewOutbox, now: NaiveDateTime) -> Self {
        Self {
            id: o.id.clone(),
            tenant_id: o.tenant_id.clone(),
            domain: o.domain.as_str().to_string(),
            kind: o.kind.clone(),
            owner_type: o.owner_type.clone(),
            owner_id: o.owner_id.clone(),
            idempotency_key: o.idempotency_key.clone(),
            payload: json_text(&o.payload),
            status: OutboxStatus::Pending.as_str().to_string(),
            attempts: 0,
            next_attempt_at: to_naive(o.not_before),
            provider_ref: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }
}

pub fn outbox_status(text: &str) -> Result<OutboxStatus, CorruptRow> {
    [
        OutboxStatus::Pending,
        OutboxStatus::InFlight,
        OutboxStatus::Done,
        OutboxStatus::Dead,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .ok_or_else(|| corrupt("outbox.status", text))
}

impl TryFrom<OutboxRow> for OutboxRecord {
    type Error = CorruptRow;

    fn try_from(o: OutboxRow) -> Result<Self, CorruptRow> {
        Ok(Self {
            status: outbox_status(&o.status)?,
            attempts: o.attempts,
            next_attempt_at: to_utc(o.next_attempt_at),
            provider_ref: o.provider_ref,
            last_error: o.last_error,
            item: NewOutbox {
                domain: ProviderDomain::parse(&o.domain)
                    .ok_or_else(|| corrupt("outbox.domain", &o.domain))?,
                payload: parse_json("outbox.payload", &o.payload)?,
                id: o.id,
                tenant_id: o.tenant_id,
                kind: o.kind,
                owner_type: o.owner_type,
                owner_id: o.owner_id,
                idempotency_key: o.idempotency_key,
                not_before: to_utc(o.created_at),
            },
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = dead_letters)]
pub struct NewDeadLetterRow {
    pub id: String,
    pub tenant_id: String,
    pub outbox_id: Option<String>,
    pub domain: String,
    pub kind: String,
    pub payload: String,
    pub error: String,
    pub attempts: i32,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = escalations)]
pub struct NewEscalationRow {
    pub id: String,
    pub tenant_id: String,
    pub appointment_id: Option<String>,
    pub customer_id: Option<String>,
    pub reason: String,
    pub priority: String,
    pub status: String,
    pub details: String,
    pub created_at: NaiveDateTime,
}

impl From<&NewEscalation> for NewEscalationRow {
    fn from(e: &NewEscalation) -> Self {
        Self {
            id: e.id.clone(),
            tenant_id: e.tenant_id.clone(),
            appointment_id: e.appointment_id.clone(),
            customer_id: e.customer_id.clone(),
            reason: e.reason.clone(),
            priority: e.priority.clone(),
            status: "open".to_string(),
            details: json_text(&e.details),
            created_at: to_naive(e.created_at),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = breaker_state)]
pub struct BreakerRow {
    pub tenant_id: String,
    pub domain: String,
    pub state: String,
    pub failure_count: i32,
    pub success_count: i32,
    #[diesel(treat_none_as_null = true)]
    pub window_started_at: Option<NaiveDateTime>,
    #[diesel(treat_none_as_null = true)]
    pub opened_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

impl BreakerRow {
    pub fn new(
        tenant_id: String,
        domain: ProviderDomain,
        s: &BreakerSnapshot,
        now: NaiveDateTime,
    ) -> Self {
        Self {
            tenant_id,
            domain: domain.as_str().to_string(),
            state: s.state.as_str().to_string(),
            failure_count: i32::try_from(s.failure_count).unwrap_or(i32::MAX),
            success_count: i32::try_from(s.success_count).unwrap_or(i32::MAX),
            window_started_at: s.window_started_at.map(to_naive),
            opened_at: s.opened_at.map(to_naive),
            updated_at: now,
        }
    }
}

impl TryFrom<BreakerRow> for BreakerSnapshot {
    type Error = CorruptRow;

    fn try_from(b: BreakerRow) -> Result<Self, CorruptRow> {
        Ok(Self {
            state: b
                .state
                .parse::<BreakerState>()
                .map_err(|e| corrupt("breaker_state.state", e))?,
            failure_count: u32::try_from(b.failure_count).unwrap_or(0),
            success_count: u32::try_from(b.success_count).unwrap_or(0),
            window_started_at: b.window_started_at.map(to_utc),
            opened_at: b.opened_at.map(to_utc),
        })
    }
}
