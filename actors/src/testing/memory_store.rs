//! `MemoryStore`: the `Store` port in memory. Commits are atomic (applied to a copy,
//! swapped in only when every check passes), versions are checked, outbox rows are
//! unique by idempotency key, and failures can be injected.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};

use crate::ports::store::*;
use crate::ports::BoxFuture;
use crate::resilience::breaker::BreakerSnapshot;

#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    pub appointments: BTreeMap<String, AppointmentRecord>,
    pub customers: BTreeMap<String, CustomerRecord>,
    /// customer id → (appointments, confirmed, no_shows, reschedules)
    pub counters: BTreeMap<String, (i32, i32, i32, i32)>,
    pub workflows: BTreeMap<String, WorkflowRecord>,
    pub events: Vec<NewEvent>,
    /// (tenant, key) → timer
    pub timers: BTreeMap<(String, String), TimerRecord>,
    /// id → row
    pub outbox: BTreeMap<String, OutboxRecord>,
    pub dead_letters: Vec<(OutboxRecord, String)>,
    pub escalations: Vec<NewEscalation>,
    pub breakers: BTreeMap<(String, ProviderDomain), BreakerSnapshot>,
    /// id → inbox item
    pub inbox: BTreeMap<String, InboxRecord>,
    pub commits: u64,
    /// Messages providers accepted: (customer id, kind, when).
    pub sent_log: Vec<(String, String, DateTime<Utc>)>,
}

/// The in-memory store. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<MemoryState>>,
    fail_next_commits: Arc<Mutex<u32>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> MemoryState {
        self.lock().clone()
    }

    /// Opts a customer out (or back in), as a reply handled outside the engine does.
    pub fn set_opted_out(&self, customer_id: &str, opted_out: bool) {
        if let Some(customer) = self.lock().customers.get_mut(customer_id) {
            customer.opted_out = opted_out;
        }
    }

    /// The next `n` commits fail with `Unavailable` and change nothing.
    pub fn fail_next_commits(&self, n: u32) {
        *self
            .fail_next_commits
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = n;
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply(state: &mut MemoryState, commit: Commit, now: DateTime<Utc>) -> StoreResult<()> {
        for id in &commit.inbox_processed {
            match state.inbox.get_mut(id) {
                Some(row) if row.status == InboxStatus::Pending => {
                    row.status = InboxStatus::Processed;
                    row.attempts += 1;
                }
                Some(_) => return Err(StoreError::AlreadyApplied(format!("inbox {id}"))),
                None => return Err(StoreError::Failed(format!("no inbox item {id}"))),
            }
        }
        if let Some(write) = commit.customer {
            match write {
                CustomerWrite::Upsert(customer) => {
                    let phone_taken = state.customers.values().any(|c| {
                        c.id != customer.id
                            && c.tenant_id == customer.tenant_id
                            && c.phone_e164.is_some()
                            && c.phone_e164 == customer.phone_e164
                    });
                    if phone_taken {
                        return Err(StoreError::Conflict("customer phone taken".into()));
                    }
                    state.counters.entry(customer.id.clone()).or_default();
                    // Like the database: an upsert changes the contact details, never
                    // the history or the opt-out.
                    let customer = match state.customers.get(&customer.id) {
                        Some(existing) => CustomerRecord {
                            history: existing.history.clone(),
                            opted_out: existing.opted_out,
                            ..customer
                        },
                        None => customer,
                    };
                    state.customers.insert(customer.id.clone(), customer);
                }
                CustomerWrite::Flags {
                    customer_id,
                    requires_deposit,
                    last_review_request_at,
                } => {
                    if let Some(c) = state.customers.get_mut(&customer_id) {
                        if let Some(flag) = requires_deposit {
                            c.history.requires_deposit = flag;
                        }
                        if let Some(at) = last_review_request_at {
                            c.history.last_review_request_at = Some(at);
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
                    let c = state.counters.entry(customer_id.clone()).or_default();
                    c.0 += appointments;
                    c.1 += confirmed;
                    c.2 += no_shows;
                    c.3 += reschedules;
                    if let Some(customer) = state.customers.get_mut(&customer_id) {
                        let h = &mut customer.history;
                        h.appointments += appointments;
                        h.confirmed += confirmed;
                        h.no_shows += no_shows;
                        h.reschedules += reschedules;
                        h.risk_score = i32::from(h.risk());
                    }
                }
            }
        }
        if let Some(Versioned {
            record,
            expected_version,
        }) = commit.appointment
        {
            let existing = state.appointments.get(&record.id);
            match (existing, expected_version) {
                (None, None) => {
                    let duplicate = state.appointments.values().any(|a| {
                        a.tenant_id == record.tenant_id
                            && a.source == record.source
                            && a.external_id == record.external_id
                    });
                    if duplicate {
                        return Err(StoreError::Conflict("external id taken".into()));
                    }
                }
                (Some(current), Some(expected)) if current.version == expected => {}
                _ => return Err(StoreError::Conflict(format!("appointment {}", record.id))),
            }
            state.appointments.insert(record.id.clone(), record);
        }
        for Versioned {
            record,
            expected_version,
        } in commit.workflows
        {
            let current = state.workflows.get(&record.id).map(|w| w.version);
            if current != expected_version {
                return Err(StoreError::Conflict(format!("workflow {}", record.id)));
            }
            state.workflows.insert(record.id.clone(), record);
        }
        for event in commit.events {
            if state.events.iter().any(|e| e.event_id == event.event_id) {
                return Err(StoreError::Conflict(format!("event {}", event.event_id)));
            }
            state.events.push(event);
        }
        for spec in commit.set_timers {
            state.timers.insert(
                (spec.tenant_id.clone(), spec.key.clone()),
                TimerRecord {
                    spec,
                    status: TimerStatus::Scheduled,
                },
            );
        }
        let mut mark = |keys: Vec<(String, String)>, status: TimerStatus| {
            for key in keys {
                if let Some(timer) = state.timers.get_mut(&key) {
                    if timer.status == TimerStatus::Scheduled {
                        timer.status = status;
                    }
                }
            }
        };
        mark(commit.cancel_timers, TimerStatus::Cancelled);
        mark(commit.fired_timers, TimerStatus::Fired);
        mark(commit.missed_timers, TimerStatus::Missed);
        for item in commit.outbox {
            let exists = state.outbox.values().any(|o| {
                o.item.tenant_id == item.tenant_id && o.item.idempotency_key == item.idempotency_key
            });
            if exists {
                continue;
            }
            state.outbox.insert(
                item.id.clone(),
                OutboxRecord {
                    next_attempt_at: item.not_before,
                    item,
                    status: OutboxStatus::Pending,
                    attempts: 0,
                    provider_ref: None,
                    last_error: None,
                },
            );
        }
        state.escalations.extend(commit.escalations);
        let _ = now;
        state.commits += 1;
        Ok(())
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(async move { value })
}

impl Store for MemoryStore {
    fn commit(&self, commit: Commit) -> BoxFuture<'static, StoreResult<()>> {
        {
            let mut failures = self
                .fail_next_commits
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *failures > 0 {
                *failures -= 1;
                return ready(Err(StoreError::Unavailable("injected failure".into())));
            }
        }
        let mut state = self.lock();
        let mut next = state.clone();
        let result = Self::apply(&mut next, commit, Utc::now());
        if result.is_ok() {
            *state = next;
        }
        ready(result)
    }

    fn load_appointment(
        &self,
        id: String,
    ) -> BoxFuture<'static, StoreResult<Option<AppointmentRecord>>> {
        ready(Ok(self.lock().appointments.get(&id).cloned()))
    }

    fn find_appointment(
        &self,
        tenant_id: String,
        source: String,
        external_id: String,
    ) -> BoxFuture<'static, StoreResult<Option<AppointmentRecord>>> {
        let found = self
            .lock()
            .appointments
            .values()
            .find(|a| {
                a.tenant_id == tenant_id && a.source == source && a.external_id == external_id
            })
            .cloned();
        ready(Ok(found))
    }

    fn load_customer(&self, id: String) -> BoxFuture<'static, StoreResult<Option<CustomerRecord>>> {
        ready(Ok(self.lock().customers.get(&id).cloned()))
    }

    fn sent_since_among(
        &self,
        customer_ids: Vec<String>,
        since: DateTime<Utc>,
    ) -> BoxFuture<'static, StoreResult<Vec<(String, u32)>>> {
        let state = self.lock();
        let counts = customer_ids
            .into_iter()
            .map(|customer| {
                let sent = state
                    .sent_log
                    .iter()
                    .filter(|(c, kind, at)| {
                        *c == customer
                            && *at > since
                            && !crate::domain::message_cap::EXEMPT_KINDS.contains(&kind.as_str())
                    })
                    .count();
                (customer, u32::try_from(sent).unwrap_or(u32::MAX))
            })
            .collect();
        ready(Ok(counts))
    }

    fn opted_out_among(
        &self,
        customer_ids: Vec<String>,
    ) -> BoxFuture<'static, StoreResult<Vec<String>>> {
        let state = self.lock();
        let out = customer_ids
            .into_iter()
            .filter(|id| state.customers.get(id).is_some_and(|c| c.opted_out))
            .collect();
        ready(Ok(out))
    }

    fn load_appointment_and_customer(
        &self,
        id: String,
    ) -> BoxFuture<'static, StoreResult<(Option<AppointmentRecord>, Option<CustomerRecord>)>> {
        let state = self.lock();
        let appointment = state.appointments.get(&id).cloned();
        let customer = appointment
            .as_ref()
            .and_then(|a| state.customers.get(&a.customer_id).cloned());
        ready(Ok((appointment, customer)))
    }

    fn find_customer_by_phone(
        &self,
        tenant_id: String,
        phone_e164: String,
    ) -> BoxFuture<'static, StoreResult<Option<CustomerRecord>>> {
        let found = self
            .lock()
            .customers
            .values()
            .find(|c| {
                c.tenant_id == tenant_id && c.phone_e164.as_deref() == Some(phone_e164.as_str())
            })
            .cloned();
        ready(Ok(found))
    }

    fn workflows_of_appointment(
        &self,
        appointment_id: String,
    ) -> BoxFuture<'static, StoreResult<Vec<WorkflowRecord>>> {
        let mut found: Vec<WorkflowRecord> = self
            .lock()
            .workflows
            .values()
            .filter(|w| w.appointment_id.as_deref() == Some(appointment_id.as_str()))
            .cloned()
            .collect();
        found.sort_by_key(|w| w.created_at);
        ready(Ok(found))
    }

    fn due_timers(
        &self,
        after: Option<TimerCursor>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'static, StoreResult<Vec<TimerRecord>>> {
        let mut due: Vec<TimerRecord> = self
            .lock()
            .timers
            .values()
            .filter(|t| t.status == TimerStatus::Scheduled && t.spec.due_at <= until)
            .filter(|t| {
                after
                    .as_ref()
                    .is_none_or(|c| c.is_before(t.spec.due_at, &t.spec.key))
            })
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.spec.due_at, &a.spec.key).cmp(&(b.spec.due_at, &b.spec.key)));
        due.truncate(limit);
        ready(Ok(due))
    }

    fn timers_of(
        &self,
        owner_type: String,
        owner_id: String,
    ) -> BoxFuture<'static, StoreResult<Vec<TimerRecord>>> {
        let mut found: Vec<TimerRecord> = self
            .lock()
            .timers
            .values()
            .filter(|t| t.spec.owner_type == owner_type && t.spec.owner_id == owner_id)
            .cloned()
            .collect();
        found.sort_by_key(|t| t.spec.due_at);
        ready(Ok(found))
    }

    fn ready_outbox(
        &self,
        domain: ProviderDomain,
        now: DateTime<Utc>,
        limit: usize,
        include_in_flight: bool,
    ) -> BoxFuture<'static, StoreResult<Vec<OutboxRecord>>> {
        let mut found: Vec<OutboxRecord> = self
            .lock()
            .outbox
            .values()
            .filter(|o| {
                o.item.domain == domain
                    && ((include_in_flight && o.status == OutboxStatus::InFlight)
                        || (o.status == OutboxStatus::Pending && o.next_attempt_at <= now))
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.next_attempt_at, &a.item.id).cmp(&(b.next_attempt_at, &b.item.id)));
        found.truncate(limit);
        ready(Ok(found))
    }

    fn next_outbox_due(
        &self,
        domain: ProviderDomain,
    ) -> BoxFuture<'static, StoreResult<Option<DateTime<Utc>>>> {
        let next = self
            .lock()
            .outbox
            .values()
            .filter(|o| o.item.domain == domain && o.status == OutboxStatus::Pending)
            .map(|o| o.next_attempt_at)
            .min();
        ready(Ok(next))
    }

    fn outbox_depth(&self, domain: ProviderDomain) -> BoxFuture<'static, StoreResult<u64>> {
        let depth = self
            .lock()
            .outbox
            .values()
            .filter(|o| {
                o.item.domain == domain
                    && matches!(o.status, OutboxStatus::Pending | OutboxStatus::InFlight)
            })
            .count();
        ready(Ok(depth as u64))
    }

    fn replay_dead_letter(
        &self,
        outbox_id: String,
        now: DateTime<Utc>,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        let mut state = self.lock();
        let Some(row) = state.outbox.get_mut(&outbox_id) else {
            return ready(Ok(false));
        };
        if row.status != OutboxStatus::Dead {
            return ready(Ok(false));
        }
        row.status = OutboxStatus::Pending;
        row.attempts = 0;
        row.next_attempt_at = now;
        row.last_error = None;
        state
            .dead_letters
            .retain(|(dead, _)| dead.item.id != outbox_id);
        ready(Ok(true))
    }

    fn claim_outbox(&self, ids: Vec<String>) -> BoxFuture<'static, StoreResult<()>> {
        let mut state = self.lock();
        for id in ids {
            if let Some(row) = state.outbox.get_mut(&id) {
                if matches!(row.status, OutboxStatus::Pending | OutboxStatus::InFlight) {
                    row.status = OutboxStatus::InFlight;
                    row.attempts += 1;
                }
            }
        }
        ready(Ok(()))
    }

    fn update_outbox(&self, update: OutboxUpdate) -> BoxFuture<'static, StoreResult<()>> {
        let mut state = self.lock();
        let id = match &update {
            OutboxUpdate::Started { id, .. }
            | OutboxUpdate::Done { id, .. }
            | OutboxUpdate::Retry { id, .. }
            | OutboxUpdate::Dead { id, .. } => id.clone(),
        };
        let Some(row) = state.outbox.get_mut(&id) else {
            return ready(Err(StoreError::Failed(format!("no outbox row {id}"))));
        };
        let mut dead = None;
        let mut state_sent = Vec::new();
        match update {
            OutboxUpdate::Started { attempts, .. } => {
                row.status = OutboxStatus::InFlight;
                row.attempts = attempts;
            }
            OutboxUpdate::Done {
                provider_ref, sent, ..
            } => {
                if let (Some(sent), Some(customer)) = (
                    sent,
                    row.item.payload.get("customerId").and_then(|v| v.as_str()),
                ) {
                    let entry = (customer.to_string(), row.item.kind.clone(), sent.at);
                    state_sent.push(entry);
                }
                row.status = OutboxStatus::Done;
                row.provider_ref = provider_ref;
                row.last_error = None;
            }
            OutboxUpdate::Retry { at, error, .. } => {
                row.status = OutboxStatus::Pending;
                row.next_attempt_at = at;
                row.last_error = Some(error);
            }
            OutboxUpdate::Dead {
                error, escalation, ..
            } => {
                row.status = OutboxStatus::Dead;
                row.last_error = Some(error.clone());
                dead = Some((row.clone(), error, escalation));
            }
        }
        state.sent_log.append(&mut state_sent);
        if let Some((row, error, escalation)) = dead {
            state.dead_letters.push((row, error));
            state.escalations.push(escalation);
        }
        ready(Ok(()))
    }

    fn accept_inbox(&self, item: NewInbox) -> BoxFuture<'static, StoreResult<InboxAccept>> {
        let mut state = self.lock();
        let duplicate = state.inbox.values().any(|r| {
            r.item.tenant_id == item.tenant_id
                && r.item.source == item.source
                && r.item.dedup_key == item.dedup_key
        });
        if duplicate {
            return ready(Ok(InboxAccept::Duplicate));
        }
        state.inbox.insert(
            item.id.clone(),
            InboxRecord {
                item,
                status: InboxStatus::Pending,
                attempts: 0,
                last_error: None,
            },
        );
        ready(Ok(InboxAccept::Accepted))
    }

    fn pending_inbox(&self, limit: usize) -> BoxFuture<'static, StoreResult<Vec<InboxRecord>>> {
        let mut rows: Vec<InboxRecord> = self
            .lock()
            .inbox
            .values()
            .filter(|r| r.status == InboxStatus::Pending)
            .cloned()
            .collect();
        rows.sort_by(|a, b| {
            (a.item.received_at, &a.item.id).cmp(&(b.item.received_at, &b.item.id))
        });
        rows.truncate(limit);
        ready(Ok(rows))
    }

    fn prune_inbox(&self, before: DateTime<Utc>) -> BoxFuture<'static, StoreResult<u64>> {
        let mut state = self.lock();
        let size = state.inbox.len();
        state
            .inbox
            .retain(|_, r| r.status == InboxStatus::Pending || r.item.received_at >= before);
        ready(Ok((size - state.inbox.len()) as u64))
    }

    fn update_inbox(&self, update: InboxUpdate) -> BoxFuture<'static, StoreResult<()>> {
        let mut state = self.lock();
        let Some(row) = state.inbox.get_mut(update.id()) else {
            return ready(Err(StoreError::Failed(format!(
                "no inbox item {}",
                update.id()
            ))));
        };
        if row.status != InboxStatus::Pending {
            // Applied meanwhile (a repeated delivery): the first outcome stands.
            return ready(Ok(()));
        }
        row.attempts += 1;
        match update {
            InboxUpdate::Rejected { error, .. } => {
                row.status = InboxStatus::Rejected;
                row.last_error = Some(error);
            }
            InboxUpdate::Retry { error, .. } => row.last_error = Some(error),
            InboxUpdate::Dead {
                error, escalation, ..
            } => {
                row.status = InboxStatus::Dead;
                row.last_error = Some(error);
                state.escalations.push(escalation);
            }
        }
        ready(Ok(()))
    }

    fn load_breaker(
        &self,
        tenant_id: String,
        domain: ProviderDomain,
    ) -> BoxFuture<'static, StoreResult<Option<BreakerSnapshot>>> {
        ready(Ok(self.lock().breakers.get(&(tenant_id, domain)).cloned()))
    }

    fn save_breaker(
        &self,
        tenant_id: String,
        domain: ProviderDomain,
        snapshot: BreakerSnapshot,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        self.lock().breakers.insert((tenant_id, domain), snapshot);
        ready(Ok(()))
    }
}

/// How long dead letters are kept (SPEC §6).
pub fn dead_letter_retention() -> Duration {
    Duration::days(30)
}
