//! Queries behind the engine's `Store` port: applying one `Commit` (inside a transaction
//! the caller owns), outbox and breaker updates, and the reads the actors, the timer
//! service and the supervisors make. Written once against `schema.rs` for both backends.

use actors::ports::store::{
    AppointmentRecord, Commit, CustomerRecord, CustomerWrite, OutboxRecord, OutboxStatus,
    OutboxUpdate, ProviderDomain, TimerCursor, TimerRecord, TimerSpec, TimerStatus, Versioned,
    WorkflowRecord,
};
use actors::resilience::breaker::BreakerSnapshot;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::connection::DbConnection;
use super::models::{
    to_naive, to_utc, AppointmentRow, BreakerRow, CorruptRow, CustomerView, NewCustomerRow,
    NewDeadLetterRow, NewEscalationRow, NewEventRow, NewTimerRow, OutboxRow, TimerRow, WorkflowRow,
};
use super::schema::{
    appointments, breaker_state, consents, customers, dead_letters, escalations, events, outbox,
    timers, workflow_instances,
};

/// How long dead letters are kept (SPEC §6: 30 days).
const DEAD_LETTER_DAYS: i64 = 30;

/// Why a query could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A version check failed or a unique key was taken.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Diesel(#[from] DieselError),
    #[error(transparent)]
    Corrupt(#[from] CorruptRow),
    #[error("no outbox row {0}")]
    MissingOutbox(String),
    /// An inbox item the commit applies was applied before.
    #[error("already applied: {0}")]
    AlreadyApplied(String),
}

impl QueryError {
    /// A unique-key violation is a conflict; anything else stays as it is.
    fn from_insert(err: DieselError, what: &str) -> Self {
        match err {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                QueryError::Conflict(format!("{what}: {}", info.message()))
            }
            other => QueryError::Diesel(other),
        }
    }
}

type QueryResult<T> = Result<T, QueryError>;

/// Applies one commit. The caller runs it inside a transaction (or a savepoint), so a
/// failure anywhere leaves nothing behind.
pub fn apply_commit(
    conn: &mut DbConnection,
    commit: &Commit,
    new_id: &mut dyn FnMut() -> String,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    super::inbox_queries::mark_processed(conn, &commit.inbox_processed, now)?;
    let now = to_naive(now);
    if let Some(write) = &commit.customer {
        write_customer(conn, write, now)?;
    }
    if let Some(versioned) = &commit.appointment {
        write_appointment(conn, versioned)?;
    }
    for versioned in &commit.workflows {
        write_workflow(conn, versioned)?;
    }
    if !commit.events.is_empty() {
        let rows: Vec<NewEventRow> = commit
            .events
            .iter()
            .map(|e| NewEventRow::new(e, now))
            .collect();
        for row in &rows {
            diesel::insert_into(events::table)
                .values(row)
                .execute(conn)
                .map_err(|e| QueryError::from_insert(e, "event"))?;
        }
    }
    // A new appointment's timers cannot exist yet: insert them without trying to move
    // each first. (One statement each: diesel's MultiConnection has no batch insert.)
    let created = commit
        .appointment
        .as_ref()
        .filter(|v| v.expected_version.is_none())
        .map(|v| v.record.id.as_str());
    let (fresh, maybe_moved): (Vec<&TimerSpec>, Vec<&TimerSpec>) =
        commit.set_timers.iter().partition(|spec| {
            spec.owner_type == "appointment" && Some(spec.owner_id.as_str()) == created
        });
    for spec in fresh {
        diesel::insert_into(timers::table)
            .values(NewTimerRow::new(new_id(), spec, now))
            .execute(conn)
            .map_err(|e| QueryError::from_insert(e, "timer"))?;
    }
    for spec in maybe_moved {
        let moved = diesel::update(
            timers::table
                .filter(timers::tenant_id.eq(&spec.tenant_id))
                .filter(timers::timer_key.eq(&spec.key)),
        )
        .set((
            timers::owner_type.eq(&spec.owner_type),
            timers::owner_id.eq(&spec.owner_id),
            timers::kind.eq(&spec.kind),
            timers::due_at.eq(to_naive(spec.due_at)),
            timers::payload.eq(spec.payload.to_string()),
            timers::status.eq(TimerStatus::Scheduled.as_str()),
            timers::fired_at.eq(None::<NaiveDateTime>),
            timers::updated_at.eq(now),
        ))
        .execute(conn)?;
        if moved == 0 {
            diesel::insert_into(timers::table)
                .values(NewTimerRow::new(new_id(), spec, now))
                .execute(conn)
                .map_err(|e| QueryError::from_insert(e, "timer"))?;
        }
    }
    settle_timers(
        conn,
        &commit.cancel_timers,
        TimerStatus::Cancelled,
        None,
        now,
    )?;
    settle_timers(
        conn,
        &commit.fired_timers,
        TimerStatus::Fired,
        Some(now),
        now,
    )?;
    settle_timers(
        conn,
        &commit.missed_timers,
        TimerStatus::Missed,
        Some(now),
        now,
    )?;
    for item in &commit.outbox {
        let exists: Option<String> = outbox::table
            .filter(outbox::tenant_id.eq(&item.tenant_id))
            .filter(outbox::idempotency_key.eq(&item.idempotency_key))
            .select(outbox::id)
            .first(conn)
            .optional()?;
        if exists.is_none() {
            diesel::insert_into(outbox::table)
                .values(OutboxRow::new(item, now))
                .execute(conn)
                .map_err(|e| QueryError::from_insert(e, "outbox"))?;
        }
    }
    for escalation in &commit.escalations {
        diesel::insert_into(escalations::table)
            .values(NewEscalationRow::from(escalation))
            .execute(conn)
            .map_err(|e| QueryError::from_insert(e, "escalation"))?;
    }
    Ok(())
}

fn write_customer(
    conn: &mut DbConnection,
    write: &CustomerWrite,
    now: NaiveDateTime,
) -> QueryResult<()> {
    match write {
        CustomerWrite::Upsert(customer) => {
            let updated = diesel::update(customers::table.find(&customer.id))
                .set((
                    customers::phone_e164.eq(&customer.phone_e164),
                    customers::name.eq(&customer.name),
                    customers::email.eq(&customer.email),
                    customers::timezone.eq(&customer.timezone),
                    customers::updated_at.eq(now),
                ))
                .execute(conn)
                .map_err(|e| QueryError::from_insert(e, "customer phone"))?;
            if updated == 0 {
                diesel::insert_into(customers::table)
                    .values(NewCustomerRow::new(customer, now))
                    .execute(conn)
                    .map_err(|e| QueryError::from_insert(e, "customer"))?;
                // SPEC §4: a number given to the booking system for text reminders is
                // consent, by `booking_system` (a booking without consent carries no
                // number to the engine at all).
                if customer.phone_e164.is_some() {
                    diesel::insert_into(consents::table)
                        .values((
                            consents::id.eq(uuid::Uuid::now_v7().to_string()),
                            consents::tenant_id.eq(&customer.tenant_id),
                            consents::customer_id.eq(&customer.id),
                            consents::channel.eq("sms"),
                            consents::status.eq("granted"),
                            consents::source.eq("booking_system"),
                            consents::recorded_at.eq(now),
                        ))
                        .execute(conn)
                        .map_err(|e| QueryError::from_insert(e, "consent"))?;
                }
            }
        }
        CustomerWrite::Counters {
            customer_id,
            appointments,
            confirmed,
            no_shows,
            reschedules,
        } => {
            diesel::update(customers::table.find(customer_id))
                .set((
                    customers::appointment_count.eq(customers::appointment_count + *appointments),
                    customers::confirmed_count.eq(customers::confirmed_count + *confirmed),
                    customers::no_show_count.eq(customers::no_show_count + *no_shows),
                    customers::reschedule_count.eq(customers::reschedule_count + *reschedules),
                    customers::updated_at.eq(now),
                ))
                .execute(conn)?;
            recompute_risk(conn, customer_id)?;
        }
        CustomerWrite::Flags {
            customer_id,
            requires_deposit,
            last_review_request_at,
        } => {
            if let Some(flag) = requires_deposit {
                diesel::update(customers::table.find(customer_id))
                    .set(customers::requires_deposit.eq(*flag))
                    .execute(conn)?;
            }
            if let Some(at) = last_review_request_at {
                diesel::update(customers::table.find(customer_id))
                    .set(customers::last_review_request_at.eq(Some(to_naive(*at))))
                    .execute(conn)?;
            }
        }
    }
    Ok(())
}

/// Sets the customer's risk score from their counters (SPEC §4: recomputed after every
/// status change that moves them), inside the commit's transaction.
fn recompute_risk(conn: &mut DbConnection, customer_id: &str) -> QueryResult<()> {
    let Some(customer) = load_customer(conn, customer_id)? else {
        return Ok(());
    };
    let score = i32::from(customer.history.risk());
    if score != customer.history.risk_score {
        diesel::update(customers::table.find(customer_id))
            .set(customers::risk_score.eq(score))
            .execute(conn)?;
    }
    Ok(())
}

fn write_appointment(
    conn: &mut DbConnection,
    versioned: &Versioned<AppointmentRecord>,
) -> QueryResult<()> {
    let row = AppointmentRow::from(&versioned.record);
    match versioned.expected_version {
        None => {
            diesel::insert_into(appointments::table)
                .values(&row)
                .execute(conn)
                .map_err(|e| QueryError::from_insert(e, "appointment"))?;
        }
        Some(expected) => {
            let updated = diesel::update(
                appointments::table
                    .filter(appointments::id.eq(&row.id))
                    .filter(appointments::version.eq(expected)),
            )
            .set(&row)
            .execute(conn)?;
            if updated != 1 {
                return Err(QueryError::Conflict(format!(
                    "appointment {} is not at version {expected}",
                    row.id
                )));
            }
        }
    }
    Ok(())
}

fn write_workflow(
    conn: &mut DbConnection,
    versioned: &Versioned<WorkflowRecord>,
) -> QueryResult<()> {
    let row = WorkflowRow::from(&versioned.record);
    match versioned.expected_version {
        None => {
            diesel::insert_into(workflow_instances::table)
                .values(&row)
                .execute(conn)
                .map_err(|e| QueryError::from_insert(e, "workflow"))?;
        }
        Some(expected) => {
            let updated = diesel::update(
                workflow_instances::table
                    .filter(workflow_instances::id.eq(&row.id))
                    .filter(workflow_instances::version.eq(expected)),
            )
            .set(&row)
            .execute(conn)?;
            if updated != 1 {
                return Err(QueryError::Conflict(format!(
                    "workflow {} is not at version {expected}",
                    row.id
                )));
            }
        }
    }
    Ok(())
}

/// Moves scheduled timers to `status`; timers already settled are left alone.
fn settle_timers(
    conn: &mut DbConnection,
    keys: &[(String, String)],
    status: TimerStatus,
    fired_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    for (tenant_id, key) in keys {
        diesel::update(
            timers::table
                .filter(timers::tenant_id.eq(tenant_id))
                .filter(timers::timer_key.eq(key))
                .filter(timers::status.eq(TimerStatus::Scheduled.as_str())),
        )
        .set((
            timers::status.eq(status.as_str()),
            timers::fired_at.eq(fired_at),
            timers::updated_at.eq(now),
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// Puts a dead-lettered outbox row back in the queue and marks its dead letter replayed;
/// `false` when the row is not dead-lettered.
pub fn replay_dead_letter(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let now = to_naive(now);
    let revived = diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::status.eq(OutboxStatus::Dead.as_str())),
    )
    .set((
        outbox::status.eq(OutboxStatus::Pending.as_str()),
        outbox::attempts.eq(0),
        outbox::next_attempt_at.eq(now),
        outbox::last_error.eq(None::<String>),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)?;
    if revived == 0 {
        return Ok(false);
    }
    diesel::update(
        dead_letters::table
            .filter(dead_letters::outbox_id.eq(id))
            .filter(dead_letters::status.eq("open")),
    )
    .set((
        dead_letters::status.eq("replayed"),
        dead_letters::resolved_at.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(true)
}

/// Marks pending (or in-flight) rows as in flight with one more attempt each, in one
/// statement.
pub fn claim_outbox(
    conn: &mut DbConnection,
    ids: &[String],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    for chunk in ids.chunks(500) {
        diesel::update(outbox::table.filter(outbox::id.eq_any(chunk)).filter(
            outbox::status.eq_any([
                OutboxStatus::Pending.as_str(),
                OutboxStatus::InFlight.as_str(),
            ]),
        ))
        .set((
            outbox::status.eq(OutboxStatus::InFlight.as_str()),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::updated_at.eq(to_naive(now)),
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// Records how an attempt on an outbox row ended.
pub fn apply_outbox_update(
    conn: &mut DbConnection,
    update: &OutboxUpdate,
    new_id: &mut dyn FnMut() -> String,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let now_naive = to_naive(now);
    let row = outbox::table.find(update.id());
    let changed = match update {
        OutboxUpdate::Started { attempts, .. } => diesel::update(row)
            .set((
                outbox::status.eq(OutboxStatus::InFlight.as_str()),
                outbox::attempts.eq(*attempts),
                outbox::updated_at.eq(now_naive),
            ))
            .execute(conn)?,
        OutboxUpdate::Done {
            id,
            provider_ref: Some(provider_ref),
            sent: Some(sent),
        } => {
            let current: Option<OutboxRow> = outbox::table
                .find(id)
                .select(OutboxRow::as_select())
                .first(conn)
                .optional()?;
            if let Some(current) = &current {
                if current.domain == ProviderDomain::Messaging.as_str() {
                    super::message_queries::record_sent(conn, current, provider_ref, sent, now)?;
                }
            }
            diesel::update(row)
                .set((
                    outbox::status.eq(OutboxStatus::Done.as_str()),
                    outbox::provider_ref.eq(Some(provider_ref)),
                    outbox::last_error.eq(None::<String>),
                    outbox::updated_at.eq(now_naive),
                ))
                .execute(conn)?
        }
        OutboxUpdate::Done { provider_ref, .. } => diesel::update(row)
            .set((
                outbox::status.eq(OutboxStatus::Done.as_str()),
                outbox::provider_ref.eq(provider_ref),
                outbox::last_error.eq(None::<String>),
                outbox::updated_at.eq(now_naive),
            ))
            .execute(conn)?,
        OutboxUpdate::Retry { at, error, .. } => diesel::update(row)
            .set((
                outbox::status.eq(OutboxStatus::Pending.as_str()),
                outbox::next_attempt_at.eq(to_naive(*at)),
                outbox::last_error.eq(error),
                outbox::updated_at.eq(now_naive),
            ))
            .execute(conn)?,
        OutboxUpdate::Dead {
            id,
            error,
            escalation,
        } => {
            let current: OutboxRow = outbox::table
                .find(id)
                .select(OutboxRow::as_select())
                .first(conn)
                .optional()?
                .ok_or_else(|| QueryError::MissingOutbox(id.clone()))?;
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::status.eq(OutboxStatus::Dead.as_str()),
                    outbox::last_error.eq(error),
                    outbox::updated_at.eq(now_naive),
                ))
                .execute(conn)?;
            diesel::insert_into(dead_letters::table)
                .values(NewDeadLetterRow {
                    id: new_id(),
                    tenant_id: current.tenant_id.clone(),
                    outbox_id: Some(current.id.clone()),
                    domain: current.domain.clone(),
                    kind: current.kind.clone(),
                    payload: current.payload.clone(),
                    error: error.clone(),
                    attempts: current.attempts,
                    status: "open".to_string(),
                    created_at: now_naive,
                    expires_at: to_naive(now + Duration::days(DEAD_LETTER_DAYS)),
                })
                .execute(conn)?;
            diesel::insert_into(escalations::table)
                .values(NewEscalationRow::from(escalation))
                .execute(conn)
                .map_err(|e| QueryError::from_insert(e, "escalation"))?;
            1
        }
    };
    if changed == 0 {
        return Err(QueryError::MissingOutbox(update.id().to_string()));
    }
    Ok(())
}

pub fn save_breaker(conn: &mut DbConnection, row: &BreakerRow) -> QueryResult<()> {
    let updated = diesel::update(breaker_state::table.find((&row.tenant_id, &row.domain)))
        .set(row)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(breaker_state::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn load_breaker(
    conn: &mut DbConnection,
    tenant_id: &str,
    domain: ProviderDomain,
) -> QueryResult<Option<BreakerSnapshot>> {
    let row: Option<BreakerRow> = breaker_state::table
        .find((tenant_id, domain.as_str()))
        .select(BreakerRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(BreakerSnapshot::try_from).transpose()?)
}

pub fn load_appointment(
    conn: &mut DbConnection,
    id: &str,
) -> QueryResult<Option<AppointmentRecord>> {
    let row: Option<AppointmentRow> = appointments::table
        .find(id)
        .select(AppointmentRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(AppointmentRecord::try_from).transpose()?)
}

pub fn find_appointment(
    conn: &mut DbConnection,
    tenant_id: &str,
    source: &str,
    external_id: &str,
) -> QueryResult<Option<AppointmentRecord>> {
    let row: Option<AppointmentRow> = appointments::table
        .filter(appointments::tenant_id.eq(tenant_id))
        .filter(appointments::source.eq(source))
        .filter(appointments::external_id.eq(external_id))
        .select(AppointmentRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(AppointmentRecord::try_from).transpose()?)
}

/// Which of `ids` are customers who opted out.
pub fn opted_out_among(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<String>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        out.extend(
            customers::table
                .filter(customers::id.eq_any(chunk))
                .filter(customers::opted_out.eq(true))
                .select(customers::id)
                .load::<String>(conn)?,
        );
    }
    Ok(out)
}

pub fn load_customer(conn: &mut DbConnection, id: &str) -> QueryResult<Option<CustomerRecord>> {
    let row: Option<CustomerView> = customers::table
        .find(id)
        .select(CustomerView::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(CustomerRecord::from))
}

pub fn find_customer_by_phone(
    conn: &mut DbConnection,
    tenant_id: &str,
    phone_e164: &str,
) -> QueryResult<Option<CustomerRecord>> {
    let row: Option<CustomerView> = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(customers::phone_e164.eq(phone_e164))
        .select(CustomerView::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(CustomerRecord::from))
}

pub fn workflows_of_appointment(
    conn: &mut DbConnection,
    appointment_id: &str,
) -> QueryResult<Vec<WorkflowRecord>> {
    let rows: Vec<WorkflowRow> = workflow_instances::table
        .filter(workflow_instances::appointment_id.eq(appointment_id))
        .order(workflow_instances::created_at.asc())
        .select(WorkflowRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(WorkflowRecord::try_from)
        .collect::<Result<_, _>>()?)
}

pub fn due_timers(
    conn: &mut DbConnection,
    after: Option<&TimerCursor>,
    until: DateTime<Utc>,
    limit: usize,
) -> QueryResult<Vec<TimerRecord>> {
    // Keyset continuation: strictly after (due, key) of the cursor.
    let (from, key, from_key) = match after {
        None => (DateTime::<Utc>::UNIX_EPOCH, String::new(), false),
        Some(cursor) => (
            cursor.due_at,
            cursor.key.clone().unwrap_or_default(),
            cursor.key.is_some(),
        ),
    };
    let after_cursor = timers::due_at.gt(to_naive(from)).or(timers::due_at
        .eq(to_naive(from))
        .and(from_key.into_sql::<diesel::sql_types::Bool>())
        .and(timers::timer_key.gt(key)));
    let rows: Vec<TimerRow> = timers::table
        .filter(timers::status.eq(TimerStatus::Scheduled.as_str()))
        .filter(timers::due_at.le(to_naive(until)))
        .filter(after_cursor)
        .order((timers::due_at.asc(), timers::timer_key.asc()))
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .select(TimerRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(TimerRecord::try_from)
        .collect::<Result<_, _>>()?)
}

pub fn timers_of(
    conn: &mut DbConnection,
    owner_type: &str,
    owner_id: &str,
) -> QueryResult<Vec<TimerRecord>> {
    let rows: Vec<TimerRow> = timers::table
        .filter(timers::owner_type.eq(owner_type))
        .filter(timers::owner_id.eq(owner_id))
        .order(timers::due_at.asc())
        .select(TimerRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(TimerRecord::try_from)
        .collect::<Result<_, _>>()?)
}

pub fn ready_outbox(
    conn: &mut DbConnection,
    domain: ProviderDomain,
    now: DateTime<Utc>,
    limit: usize,
    include_in_flight: bool,
) -> QueryResult<Vec<OutboxRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Two queries, each served by `outbox_due (domain, status, next_attempt_at, id)`.
    let mut rows: Vec<OutboxRow> = if include_in_flight {
        outbox::table
            .filter(outbox::domain.eq(domain.as_str()))
            .filter(outbox::status.eq(OutboxStatus::InFlight.as_str()))
            .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
            .limit(limit)
            .select(OutboxRow::as_select())
            .load(conn)?
    } else {
        Vec::new()
    };
    let room = limit - i64::try_from(rows.len()).unwrap_or(0);
    if room > 0 {
        rows.extend(
            outbox::table
                .filter(outbox::domain.eq(domain.as_str()))
                .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
                .filter(outbox::next_attempt_at.le(to_naive(now)))
                .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
                .limit(room)
                .select(OutboxRow::as_select())
                .load::<OutboxRow>(conn)?,
        );
    }
    Ok(rows
        .into_iter()
        .map(OutboxRecord::try_from)
        .collect::<Result<_, _>>()?)
}

pub fn next_outbox_due(
    conn: &mut DbConnection,
    domain: ProviderDomain,
) -> QueryResult<Option<DateTime<Utc>>> {
    let next: Option<NaiveDateTime> = outbox::table
        .filter(outbox::domain.eq(domain.as_str()))
        .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
        .select(diesel::dsl::min(outbox::next_attempt_at))
        .first(conn)?;
    Ok(next.map(to_utc))
}

pub fn outbox_depth(conn: &mut DbConnection, domain: ProviderDomain) -> QueryResult<u64> {
    let depth: i64 = outbox::table
        .filter(outbox::domain.eq(domain.as_str()))
        .filter(outbox::status.eq_any([
            OutboxStatus::Pending.as_str(),
            OutboxStatus::InFlight.as_str(),
        ]))
        .count()
        .get_result(conn)?;
    Ok(u64::try_from(depth).unwrap_or(0))
}
