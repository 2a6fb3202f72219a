//! The messaging supervisor (SMS / WhatsApp through a `MessagingProvider`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::domain::message_cap;
use crate::engine::commands::AppointmentCommand;
use crate::engine::decide::{gate_outbox, is_gated, EngineSettings, OutboxGate};
use crate::engine::directory::{Directory, Peek, Route};
use crate::engine::error::EngineError;
use crate::engine::origin::Origin;
use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::providers::{
    Channel, MessagingProvider, OutboundMessage, ProviderError, SendReceipt,
};
use crate::ports::store::{
    Commit, NewEscalation, OutboxRecord, OutboxStatus, OutboxUpdate, ProviderDomain, SentBy, Store,
};
use crate::resilience::backoff::{ErrorClass, RetryPolicy};
use crate::resilience::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use crate::resilience::token_bucket::TokenBucket;

/// Message kinds that may go to an opted-out customer (SPEC §5: the one opt-out
/// confirmation). None is queued yet: the templates come with the profile packs.
const SENT_AFTER_OPT_OUT: &[&str] = &["opt_out_confirmation"];

/// The customer a message goes to, when the opt-out rule applies to its kind.
fn customer_of(row: &OutboxRecord) -> Option<&str> {
    if SENT_AFTER_OPT_OUT.contains(&row.item.kind.as_str()) {
        return None;
    }
    row.item.payload.get("customerId").and_then(Value::as_str)
}

/// Rows fetched per poll.
const BATCH: usize = 512;
/// Calls in flight at once.
const MAX_IN_FLIGHT: usize = 256;
/// With more work waiting, the outbox is read again once fewer calls than this are in
/// flight (not after every outcome: one read then fills many slots).
const LOW_WATER: usize = MAX_IN_FLIGHT / 2;
/// Rows left in flight (by a crash, or a write that failed) are looked for at start and
/// then this often (seconds): their outcome must be reconciled.
const SWEEP_EVERY: i64 = 60;
/// While the breaker is open, work is deferred by this much (SPEC §6: 5 min).
const DEFERRAL: i64 = 300;
/// `last_error` prefix marking an attempt whose outcome is unknown.
const UNKNOWN: &str = "outcome_unknown: ";

/// New outbox work was committed: look now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OutboxChanged;

/// Puts a dead-lettered message back in the queue (the admin's "replay"); answers
/// whether it was dead-lettered.
#[derive(Message)]
#[rtype(result = "Result<bool, crate::ports::store::StoreError>")]
pub struct ReplayDeadLetter(pub String);

/// Asks for the supervisor's state (for the admin API).
#[derive(Message)]
#[rtype(result = "SupervisorSnapshot")]
pub struct GetSnapshot;

#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorSnapshot {
    pub domain: ProviderDomain,
    pub breaker: BreakerState,
    pub tokens: f64,
    /// Outbox rows waiting to be sent (pending or in flight).
    pub queue_depth: u64,
    pub in_flight: usize,
    pub sent: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub reconciled: u64,
}

pub struct MessagingSupervisor {
    tenant_id: String,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    provider: Arc<dyn MessagingProvider>,
    directory: Option<Addr<Directory>>,
    /// The rules a reminder is re-checked against just before it is sent.
    settings: Arc<EngineSettings>,
    breaker: CircuitBreaker,
    breaker_config: BreakerConfig,
    bucket: TokenBucket,
    policy: RetryPolicy,
    rng: StdRng,
    in_flight: HashSet<String>,
    /// Rows in flight that count against their customer's cap: row id → customer.
    in_flight_customer: HashMap<String, String>,
    /// Per customer, how many of those.
    capped_in_flight: HashMap<String, u32>,
    /// Counts recorded outcomes; with `settled`, tells a stale read from a fresh one.
    epoch: u64,
    /// Rows whose outcome was recorded after the running poll read the outbox (by the
    /// epoch of the recording): that read may still show them in flight, so they are
    /// skipped until the next poll.
    settled: HashMap<String, u64>,
    polling: bool,
    poll_again: bool,
    /// Due rows were left unread (the window was full, or a read came back full).
    want_more: bool,
    /// When rows in flight were last looked for (`None`: not yet since start).
    swept_at: Option<DateTime<Utc>>,
    sleeper: Option<SpawnHandle>,
    staff_told_at: Option<DateTime<Utc>>,
    breaker_saving: bool,
    breaker_dirty: bool,
    stats: SupervisorSnapshot,
}

impl MessagingSupervisor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tenant_id: String,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        provider: Arc<dyn MessagingProvider>,
        directory: Option<Addr<Directory>>,
        settings: EngineSettings,
        bucket: TokenBucket,
        seed: u64,
    ) -> Self {
        let config = BreakerConfig::messaging();
        Self {
            tenant_id,
            store,
            clock,
            ids,
            provider,
            directory,
            settings: Arc::new(settings),
            breaker: CircuitBreaker::new(config.clone()),
            breaker_config: config,
            bucket,
            policy: RetryPolicy::messaging(),
            rng: StdRng::seed_from_u64(seed),
            in_flight: HashSet::new(),
            in_flight_customer: HashMap::new(),
            capped_in_flight: HashMap::new(),
            epoch: 0,
            settled: HashMap::new(),
            polling: false,
            poll_again: false,
            want_more: false,
            swept_at: None,
            sleeper: None,
            staff_told_at: None,
            breaker_saving: false,
            breaker_dirty: false,
            stats: SupervisorSnapshot {
                domain: ProviderDomain::Messaging,
                breaker: BreakerState::Closed,
                tokens: 0.0,
                queue_depth: 0,
                in_flight: 0,
                sent: 0,
                retried: 0,
                dead_lettered: 0,
                reconciled: 0,
            },
        }
    }

    fn poll(&mut self, ctx: &mut Context<Self>) {
        if self.polling {
            self.poll_again = true;
            return;
        }
        self.polling = true;
        let now = self.clock.now();
        let read_at_epoch = self.epoch;
        let sweep = self
            .swept_at
            .is_none_or(|at| now - at >= Duration::seconds(SWEEP_EVERY));
        if sweep {
            self.swept_at = Some(now);
        }
        let rows = self
            .store
            .ready_outbox(ProviderDomain::Messaging, now, BATCH, sweep);
        ctx.spawn(rows.into_actor(self).map(move |rows, sup, ctx| {
            sup.polling = false;
            sup.settled.retain(|_, epoch| *epoch > read_at_epoch);
            match rows {
                Ok(rows) => {
                    let full_page = rows.len() == BATCH;
                    let worked = sup.work(rows, ctx);
                    if sweep && (full_page || worked != Worked::All) {
                        // Rows left in flight may be among those not started: sweep
                        // again at the next read.
                        sup.swept_at = None;
                    }
                    if let Worked::Throttled(at) = worked {
                        // Out of tokens: nothing more until the bucket has one.
                        sup.poll_again = false;
                        sup.sleep_until(at, ctx);
                        return;
                    }
                    if full_page || worked == Worked::WindowFull {
                        sup.want_more = true;
                    }
                    if sup.want_more && sup.in_flight.len() < LOW_WATER {
                        sup.want_more = false;
                        sup.poll_again = true;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the messaging outbox; retrying in 1 s");
                    let at = sup.clock.now() + Duration::seconds(1);
                    sup.sleep_until(at, ctx);
                    return;
                }
            }
            if std::mem::take(&mut sup.poll_again) {
                sup.poll(ctx);
            } else {
                sup.arm(ctx);
            }
        }));
    }

    /// Starts what it can of `rows`, in order: claims them in one write, then calls
    /// the provider for each (see `Claimed`).
    fn work(&mut self, rows: Vec<OutboxRecord>, ctx: &mut Context<Self>) -> Worked {
        let mut starting = Vec::new();
        let mut worked = Worked::All;
        for row in rows {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                worked = Worked::WindowFull;
                break;
            }
            if self.in_flight.contains(&row.item.id) || self.settled.contains_key(&row.item.id) {
                continue;
            }
            let now = self.clock.now();
            if let Err(wait) = self.bucket.try_take(now) {
                let at = now + Duration::from_std(wait).unwrap_or_else(|_| Duration::seconds(1));
                worked = Worked::Throttled(at);
                break;
            }
            if let Err(open) = self.breaker.allow(now) {
                self.defer_while_open(row, open.retry_at, ctx);
                continue;
            }
            self.in_flight.insert(row.item.id.clone());
            starting.push(row);
        }
        if !starting.is_empty() {
            let claim = self
                .store
                .claim_outbox(starting.iter().map(|r| r.item.id.clone()).collect());
            // SPEC §5: no automated message after opt-out — checked for the whole batch
            // at send time, so an opt-out also stops what was queued before it.
            let customers: Vec<String> = starting
                .iter()
                .filter_map(|row| customer_of(row).map(str::to_string))
                .collect();
            let since = self.clock.now() - message_cap::window();
            let sent = self.store.sent_since_among(customers.clone(), since);
            let opted_out = self.store.opted_out_among(customers);
            let me = ctx.address();
            actix::spawn(async move {
                let result = match claim.await {
                    Ok(()) => match (opted_out.await, sent.await) {
                        (Ok(out), Ok(sent)) => Ok(Recipients {
                            opted_out: out.into_iter().collect(),
                            sent_in_window: sent.into_iter().collect(),
                        }),
                        (Err(error), _) | (_, Err(error)) => Err(error),
                    },
                    Err(error) => Err(error),
                };
                me.do_send(Claimed {
                    rows: starting,
                    result,
                });
            });
        }
        worked
    }

    /// Reconciles (when the last outcome is unknown), re-checks an appointment's
    /// reminder against its committed state (see [`gate_outbox`]), then sends one row.
    /// `opted_out`: the message's customer has opted out (read for the whole batch when
    /// it was claimed): it is dropped, never sent (SPEC §5).
    fn attempt(&mut self, row: OutboxRecord, opted_out: bool, ctx: &mut Context<Self>) {
        let reconcile_first = row.status == OutboxStatus::InFlight
            || row
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with(UNKNOWN));
        let attempts = row.attempts + 1;
        let store = self.store.clone();
        let provider = self.provider.clone();
        let message = match outbound(&row) {
            Ok(message) => message,
            Err(reason) => {
                self.settle_dead(row, reason, ctx);
                return;
            }
        };
        let key = row.item.idempotency_key.clone();
        let provider_ref = row.provider_ref.clone();
        let kind = row.item.kind.clone();
        let gated = (row.item.owner_type == "appointment" && is_gated(&kind))
            .then(|| row.item.owner_id.clone());
        let settings = self.settings.clone();
        let clock = self.clock.clone();
        let directory = self.directory.clone();
        let call = async move {
            if reconcile_first {
                if let Some(receipt) = provider.lookup(message.clone(), provider_ref).await? {
                    return Ok(Outcome::Reconciled(receipt));
                }
            }
            if opted_out {
                return Ok(Outcome::Dropped("the customer opted out".to_string()));
            }
            if let Some(appointment_id) = gated {
                // From the live actor when there is a directory (no query), else the store.
                let record = match &directory {
                    Some(directory) => directory
                        .send(Peek(appointment_id))
                        .await
                        .unwrap_or(Err(EngineError::ActorUnavailable)),
                    None => store
                        .load_appointment(appointment_id)
                        .await
                        .map_err(EngineError::from),
                };
                // Our own failure, not the provider's: try again shortly.
                let record = match record {
                    Ok(record) => record,
                    Err(error) => return Ok(Outcome::NotNow(format!("appointment: {error}"))),
                };
                match gate_outbox(record.as_ref(), &kind, &key, clock.now(), &settings) {
                    OutboxGate::Send => {}
                    OutboxGate::Hold(at) => return Ok(Outcome::Held(at)),
                    OutboxGate::Drop(reason) => return Ok(Outcome::Dropped(reason)),
                    OutboxGate::Missed(reason) => return Ok(Outcome::Missed(reason)),
                }
            }
            provider.send(message).await.map(Outcome::Sent)
        };
        // Awaited on its own task and answered by message (see `Attempted`), so the
        // context never polls a crowd of pending calls on every wake-up.
        let me = ctx.address();
        actix::spawn(async move {
            let result = call.await;
            me.do_send(Attempted {
                row,
                attempts,
                result,
            });
        });
    }

    /// SPEC §5: at most the pack's cap of automated messages per customer per rolling
    /// 24 h — those sent (from the store) plus those this supervisor has in flight.
    fn over_cap(
        &self,
        row: &OutboxRecord,
        customer: Option<&str>,
        recipients: &Recipients,
    ) -> bool {
        let Some(customer) = customer else {
            return false;
        };
        if message_cap::EXEMPT_KINDS.contains(&row.item.kind.as_str()) {
            return false;
        }
        let sent = recipients
            .sent_in_window
            .get(customer)
            .copied()
            .unwrap_or(0);
        let in_flight = self.capped_in_flight.get(customer).copied().unwrap_or(0);
        usize::try_from(sent + in_flight).unwrap_or(usize::MAX)
            >= self.settings.pack.policy.message_cap
    }

    /// Not sent: over the cap. The row is closed and staff are told (SPEC §5).
    fn settle_capped(&mut self, row: OutboxRecord, ctx: &mut Context<Self>) {
        let commit = Commit {
            escalations: vec![NewEscalation {
                id: self.ids.new_id(),
                tenant_id: row.item.tenant_id.clone(),
                appointment_id: (row.item.owner_type == "appointment")
                    .then(|| row.item.owner_id.clone()),
                customer_id: customer_of(&row).map(str::to_string),
                reason: "message_cap_reached".to_string(),
                priority: "medium".to_string(),
                details: json!({"kind": row.item.kind, "outboxId": row.item.id,
                                "cap": self.settings.pack.policy.message_cap}),
                created_at: self.clock.now(),
            }],
            ..Commit::default()
        };
        let store = self.store.clone();
        ctx.spawn(
            async move { store.commit(commit).await }
                .into_actor(self)
                .map(|r, _, _| {
                    if let Err(error) = r {
                        tracing::warn!(%error, "cannot record the message_cap_reached escalation");
                    }
                }),
        );
        let update = OutboxUpdate::Done {
            id: row.item.id.clone(),
            provider_ref: None,
            sent: None,
        };
        self.write(update, ctx);
        self.tell_owner(
            &row,
            None,
            Some("not sent: message cap reached".to_string()),
        );
    }

    fn settle_done(&mut self, row: OutboxRecord, receipt: SendReceipt, ctx: &mut Context<Self>) {
        let provider_ref = receipt.provider_ref;
        let update = OutboxUpdate::Done {
            id: row.item.id.clone(),
            provider_ref: Some(provider_ref.clone()),
            sent: Some(SentBy {
                provider: self.provider.name().to_string(),
                status: receipt.status,
                at: self.clock.now(),
            }),
        };
        self.write(update, ctx);
        self.tell_owner(&row, Some(provider_ref), None);
    }

    fn retry_or_dead(
        &mut self,
        row: OutboxRecord,
        attempts: i32,
        error: ProviderError,
        ctx: &mut Context<Self>,
    ) {
        let now = self.clock.now();
        let text = if error.outcome_unknown {
            format!("{UNKNOWN}{}", error.message)
        } else {
            error.message.clone()
        };
        match self.policy.next_delay(
            u32::try_from(attempts).unwrap_or(u32::MAX),
            &error.class,
            &mut self.rng,
        ) {
            Some(delay) => {
                self.stats.retried += 1;
                let at = now + Duration::from_std(delay).unwrap_or_else(|_| Duration::seconds(30));
                self.write(
                    OutboxUpdate::Retry {
                        id: row.item.id.clone(),
                        at,
                        error: text,
                    },
                    ctx,
                );
            }
            None => self.settle_dead(row, text, ctx),
        }
    }

    fn settle_dead(&mut self, row: OutboxRecord, error: String, ctx: &mut Context<Self>) {
        self.settle_dead_as(row, error, "delivery_failed", ctx);
    }

    fn settle_dead_as(
        &mut self,
        row: OutboxRecord,
        error: String,
        reason: &str,
        ctx: &mut Context<Self>,
    ) {
        self.stats.dead_lettered += 1;
        let escalation = NewEscalation {
            id: self.ids.new_id(),
            tenant_id: row.item.tenant_id.clone(),
            appointment_id: (row.item.owner_type == "appointment")
                .then(|| row.item.owner_id.clone()),
            customer_id: row
                .item
                .payload
                .get("customerId")
                .and_then(Value::as_str)
                .map(str::to_string),
            reason: reason.to_string(),
            priority: "medium".to_string(),
            details: json!({"kind": row.item.kind, "error": error, "outboxId": row.item.id}),
            created_at: self.clock.now(),
        };
        self.write(
            OutboxUpdate::Dead {
                id: row.item.id.clone(),
                error: error.clone(),
                escalation,
            },
            ctx,
        );
        self.tell_owner(&row, None, Some(error));
    }

    /// While the breaker is open: defer the row and tell staff once per open period.
    fn defer_while_open(
        &mut self,
        row: OutboxRecord,
        retry_at: DateTime<Utc>,
        ctx: &mut Context<Self>,
    ) {
        let now = self.clock.now();
        let deferred_to = (now + Duration::seconds(DEFERRAL)).max(retry_at);
        if row.status == OutboxStatus::Pending && row.next_attempt_at < deferred_to {
            self.write(
                OutboxUpdate::Retry {
                    id: row.item.id.clone(),
                    at: deferred_to,
                    error: row
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "deferred: messaging circuit breaker open".to_string()),
                },
                ctx,
            );
        }
        let told_recently = self
            .staff_told_at
            .is_some_and(|at| now - at < Duration::seconds(DEFERRAL));
        if !told_recently {
            self.staff_told_at = Some(now);
            let commit = Commit {
                escalations: vec![NewEscalation {
                    id: self.ids.new_id(),
                    tenant_id: self.tenant_id.clone(),
                    appointment_id: None,
                    customer_id: None,
                    reason: "messaging_unavailable".to_string(),
                    priority: "high".to_string(),
                    details: json!({"retryAt": retry_at, "deferredTo": deferred_to}),
                    created_at: now,
                }],
                ..Commit::default()
            };
            let store = self.store.clone();
            ctx.spawn(async move { store.commit(commit).await }.into_actor(self).map(|r, _, _| {
                if let Err(error) = r {
                    tracing::warn!(%error, "cannot record the messaging_unavailable escalation");
                }
            }));
        }
        self.sleep_until(retry_at, ctx);
    }

    /// Records an attempt's outcome, then releases the row and looks for more work.
    fn write(&mut self, update: OutboxUpdate, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let id = update.id().to_string();
        let me = ctx.address();
        actix::spawn(async move {
            let result = store.update_outbox(update).await;
            me.do_send(Written { id, result });
        });
    }

    fn tell_owner(&self, row: &OutboxRecord, provider_ref: Option<String>, error: Option<String>) {
        let (Some(directory), "appointment") = (&self.directory, row.item.owner_type.as_str())
        else {
            return;
        };
        directory.do_send(Route {
            appointment_id: row.item.owner_id.clone(),
            command: AppointmentCommand::SideEffectSettled {
                kind: row.item.kind.clone(),
                idempotency_key: row.item.idempotency_key.clone(),
                provider_ref,
                error,
            },
            inbox_id: None,
            origin: Origin::caused_by(format!("outbox:{}", row.item.id)),
        });
    }

    /// Persists the breaker. One save at a time, the latest state last: a save asked
    /// for while another is running is done after it, with the state of that moment.
    fn save_breaker(&mut self, ctx: &mut Context<Self>) {
        if self.breaker_saving {
            self.breaker_dirty = true;
            return;
        }
        self.breaker_saving = true;
        let snapshot = self.breaker.snapshot();
        let store = self.store.clone();
        let tenant = self.tenant_id.clone();
        let now = self.clock.now();
        ctx.spawn(
            async move {
                store
                    .save_breaker(tenant, ProviderDomain::Messaging, snapshot, now)
                    .await
            }
            .into_actor(self)
            .map(|r, sup, ctx| {
                if let Err(error) = r {
                    tracing::warn!(%error, "cannot persist the messaging breaker");
                }
                sup.breaker_saving = false;
                if std::mem::take(&mut sup.breaker_dirty) {
                    sup.save_breaker(ctx);
                }
            }),
        );
    }

    /// Sleeps until the next pending row is due or the next sweep for rows left in
    /// flight, whichever is first (or until a poke arrives).
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let next = self.store.next_outbox_due(ProviderDomain::Messaging);
        ctx.spawn(next.into_actor(self).map(|next, sup, ctx| match next {
            Ok(next) => {
                let sweep = sup
                    .swept_at
                    .map_or_else(|| sup.clock.now(), |at| at + Duration::seconds(SWEEP_EVERY));
                let wake = next.map_or(sweep, |at| at.min(sweep));
                sup.sleep_until(wake, ctx);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the next outbox time; retrying in 1 s");
                let at = sup.clock.now() + Duration::seconds(1);
                sup.sleep_until(at, ctx);
            }
        }));
    }

    fn sleep_until(&mut self, at: DateTime<Utc>, ctx: &mut Context<Self>) {
        if let Some(handle) = self.sleeper.take() {
            ctx.cancel_future(handle);
        }
        let sleep = self.clock.sleep_until(at);
        self.sleeper = Some(ctx.spawn(sleep.into_actor(self).map(|(), sup, ctx| {
            sup.sleeper = None;
            sup.poll(ctx);
        })));
    }
}

/// Errors that say something about the provider's health (not about one message).
fn counts_against_provider(class: &ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Timeout
            | ErrorClass::Network
            | ErrorClass::ServerError
            | ErrorClass::RateLimited { .. }
    )
}

fn outbound(row: &OutboxRecord) -> Result<OutboundMessage, String> {
    let payload = &row.item.payload;
    let text = |field: &str| {
        payload
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let to = text("to").ok_or("outbox payload has no `to`")?;
    let body = text("body").ok_or("outbox payload has no `body`")?;
    let channel = match text("channel").as_deref() {
        Some("whatsapp") => Channel::Whatsapp,
        _ => Channel::Sms,
    };
    Ok(OutboundMessage {
        idempotency_key: row.item.idempotency_key.clone(),
        channel,
        to,
        body,
    })
}

impl Actor for MessagingSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let load = self
            .store
            .load_breaker(self.tenant_id.clone(), ProviderDomain::Messaging);
        ctx.wait(load.into_actor(self).map(|snapshot, sup, ctx| {
            match snapshot {
                Ok(Some(snapshot)) => {
                    sup.breaker = CircuitBreaker::restore(sup.breaker_config.clone(), snapshot);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "cannot load the messaging breaker; starting closed")
                }
            }
            sup.poll(ctx);
        }));
    }
}

impl Handler<OutboxChanged> for MessagingSupervisor {
    type Result = ();

    fn handle(&mut self, _: OutboxChanged, ctx: &mut Self::Context) {
        self.poll(ctx);
    }
}

impl Handler<GetSnapshot> for MessagingSupervisor {
    type Result = ResponseActFuture<Self, SupervisorSnapshot>;

    fn handle(&mut self, _: GetSnapshot, _ctx: &mut Self::Context) -> Self::Result {
        let depth = self.store.outbox_depth(ProviderDomain::Messaging);
        Box::pin(depth.into_actor(self).map(|depth, sup, _| {
            let now = sup.clock.now();
            SupervisorSnapshot {
                breaker: sup.breaker.state(now),
                tokens: sup.bucket.available(now),
                queue_depth: depth.unwrap_or_default(),
                in_flight: sup.in_flight.len(),
                ..sup.stats.clone()
            }
        }))
    }
}

impl Handler<crate::engine::Shutdown> for MessagingSupervisor {
    type Result = ();

    fn handle(&mut self, _: crate::engine::Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// A provider call ended. The row stays in `in_flight` until its outcome is written
/// (see `Written`), so a poll in between cannot pick it up again.
#[derive(Message)]
#[rtype(result = "()")]
struct Attempted {
    row: OutboxRecord,
    attempts: i32,
    result: Result<Outcome, ProviderError>,
}

/// Rows were claimed (marked in flight in the store): their calls may start.
#[derive(Message)]
#[rtype(result = "()")]
struct Claimed {
    rows: Vec<OutboxRecord>,
    result: Result<Recipients, crate::ports::store::StoreError>,
}

/// What the send-time guardrails need to know of a batch's customers.
struct Recipients {
    /// Who opted out.
    opted_out: HashSet<String>,
    /// Automated messages each was sent in the cap's window.
    sent_in_window: HashMap<String, u32>,
}

impl Handler<ReplayDeadLetter> for MessagingSupervisor {
    type Result = ResponseActFuture<Self, Result<bool, crate::ports::store::StoreError>>;

    fn handle(
        &mut self,
        ReplayDeadLetter(id): ReplayDeadLetter,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        let replay = self.store.replay_dead_letter(id, self.clock.now());
        Box::pin(replay.into_actor(self).map(|replayed, sup, ctx| {
            if matches!(replayed, Ok(true)) {
                sup.poll(ctx);
            }
            replayed
        }))
    }
}

impl Handler<Claimed> for MessagingSupervisor {
    type Result = ();

    fn handle(&mut self, Claimed { rows, result }: Claimed, ctx: &mut Self::Context) {
        match result {
            Ok(recipients) => {
                for row in rows {
                    let customer = customer_of(&row).map(str::to_string);
                    let out = customer
                        .as_deref()
                        .is_some_and(|c| recipients.opted_out.contains(c));
                    if !out && self.over_cap(&row, customer.as_deref(), &recipients) {
                        self.settle_capped(row, ctx);
                        continue;
                    }
                    if let (Some(customer), false) = (customer, out) {
                        if !message_cap::EXEMPT_KINDS.contains(&row.item.kind.as_str()) {
                            *self.capped_in_flight.entry(customer.clone()).or_default() += 1;
                            self.in_flight_customer
                                .insert(row.item.id.clone(), customer);
                        }
                    }
                    self.attempt(row, out, ctx);
                }
            }
            Err(error) => {
                // Nothing was sent: release the rows and read again shortly.
                tracing::warn!(%error, rows = rows.len(), "cannot claim outbox rows; retrying in 1 s");
                for row in &rows {
                    self.in_flight.remove(&row.item.id);
                }
                let at = self.clock.now() + Duration::seconds(1);
                self.sleep_until(at, ctx);
            }
        }
    }
}

/// How far a read's rows were started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Worked {
    /// Every row was started (or skipped as already known).
    All,
    /// The window of calls in flight filled up first.
    WindowFull,
    /// The rate limit ran out of tokens; the next one comes at this instant.
    Throttled(DateTime<Utc>),
}

/// How an attempt ended when the provider did not fail.
enum Outcome {
    /// Sent now.
    Sent(SendReceipt),
    /// Found at the provider by reconciliation: it had been sent before.
    Reconciled(SendReceipt),
    /// Not sent, by the reminder's gate: quiet hours until this instant.
    Held(DateTime<Utc>),
    /// Not sent, by the reminder's gate: it no longer applies.
    Dropped(String),
    /// Not sent, by the reminder's gate: no allowed time is left.
    Missed(String),
    /// Not attempted: the engine's own store or actor failed (the provider was not
    /// called, so neither the attempt count nor the breaker changes). Retried shortly.
    NotNow(String),
}

impl Handler<Attempted> for MessagingSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Attempted, ctx: &mut Self::Context) {
        let Attempted {
            row,
            attempts,
            result,
        } = msg;
        let now = self.clock.now();
        match result {
            Ok(Outcome::Sent(receipt)) => {
                self.breaker.on_success(now);
                self.stats.sent += 1;
                self.settle_done(row, receipt, ctx);
            }
            Ok(Outcome::Reconciled(receipt)) => {
                self.stats.reconciled += 1;
                self.settle_done(row, receipt, ctx);
            }
            // Gated: the provider was not called, so the breaker learns nothing.
            Ok(Outcome::Held(at)) => {
                let update = OutboxUpdate::Retry {
                    id: row.item.id.clone(),
                    at,
                    error: "held: quiet hours".to_string(),
                };
                self.write(update, ctx);
            }
            Ok(Outcome::Dropped(reason)) => {
                let update = OutboxUpdate::Done {
                    id: row.item.id.clone(),
                    provider_ref: None,
                    sent: None,
                };
                self.write(update, ctx);
                self.tell_owner(&row, None, Some(format!("not sent: {reason}")));
            }
            Ok(Outcome::NotNow(reason)) => {
                tracing::warn!(outbox = %row.item.id, %reason, "outbox row not attempted; retrying in 1 s");
                let update = OutboxUpdate::Retry {
                    id: row.item.id.clone(),
                    at: now + Duration::seconds(1),
                    error: format!("not attempted: {reason}"),
                };
                self.write(update, ctx);
            }
            Ok(Outcome::Missed(reason)) => {
                self.settle_dead_as(row, format!("missed: {reason}"), "reminder_missed", ctx)
            }
            Err(error) => {
                if counts_against_provider(&error.class) {
                    self.breaker.on_failure(now);
                }
                self.retry_or_dead(row, attempts, error, ctx);
            }
        }
        self.save_breaker(ctx);
    }
}

/// An attempt's outcome is recorded: release the row and look for more work.
#[derive(Message)]
#[rtype(result = "()")]
struct Written {
    id: String,
    result: crate::ports::store::StoreResult<()>,
}

impl Handler<Written> for MessagingSupervisor {
    type Result = ();

    fn handle(&mut self, Written { id, result }: Written, ctx: &mut Self::Context) {
        if let Err(error) = result {
            // The row stays in flight or pending; the next attempt reconciles it.
            tracing::warn!(%error, "cannot record an outbox outcome");
        }
        self.epoch += 1;
        self.settled.insert(id.clone(), self.epoch);
        self.in_flight.remove(&id);
        if let Some(customer) = self.in_flight_customer.remove(&id) {
            if let Some(count) = self.capped_in_flight.get_mut(&customer) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.capped_in_flight.remove(&customer);
                }
            }
        }
        // Read again when the window has room for a batch and work was left unread, or
        // when nothing is in flight (the read also arms the wake-up for retries).
        let room = self.in_flight.len() <= LOW_WATER && self.want_more;
        if room || self.in_flight.is_empty() {
            self.want_more = false;
            self.poll(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use crate::engine::{Booking, Engine, EngineOptions, EnginePorts};
    use crate::ports::clock::VirtualClock;
    use crate::ports::ids::UuidV7;
    use crate::testing::fixtures::sample_booking;
    use crate::testing::wait::eventually;
    use crate::testing::{MemoryStore, ScriptedMessaging};

    use super::*;

    fn booking(external_id: &str, starts_at: DateTime<Utc>, phone: &str) -> Booking {
        let mut booking = sample_booking(external_id, starts_at);
        booking.timezone = Some("UTC".into());
        booking.customer.phone_e164 = Some(phone.into());
        booking
    }

    #[actix_rt::test]
    async fn an_opted_out_customer_is_sent_no_reminder() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .expect("t0");
        let store = MemoryStore::new();
        let clock = VirtualClock::new(t0);
        let provider = ScriptedMessaging::new();
        let engine = Engine::start(
            EnginePorts {
                store: Arc::new(store.clone()),
                clock: Arc::new(clock.clone()),
                ids: Arc::new(UuidV7),
                messaging: Arc::new(provider.clone()),
            },
            EngineSettings {
                quiet_hours: None,
                ..EngineSettings::default()
            },
            EngineOptions {
                messaging_rate_per_sec: 1000.0,
                ..EngineOptions::default()
            },
        );
        let starts = t0 + Duration::days(3);
        let stopped = engine
            .book(booking("x1", starts, "+15550000001"))
            .await
            .expect("booked")
            .expect("created");
        engine
            .book(booking("x2", starts, "+15550000002"))
            .await
            .expect("booked");
        // The first customer replies STOP before the 48 h reminder goes out.
        store.set_opted_out(&stopped.customer_id, true);
        clock.set(starts - Duration::hours(48));

        eventually("both reminders settled", || {
            let outbox = store.snapshot().outbox;
            let reminders: Vec<_> = outbox
                .values()
                .filter(|o| o.item.kind == "reminder_48h")
                .collect();
            reminders.len() == 2 && reminders.iter().all(|o| o.status == OutboxStatus::Done)
        })
        .await;
        let delivered: Vec<_> = provider
            .delivered()
            .into_iter()
            .filter(|m| m.idempotency_key.contains(":reminder_48h:"))
            .collect();
        assert_eq!(delivered.len(), 1, "only the other customer's reminder");
        assert_eq!(delivered[0].to, "+15550000002");
        eventually("the drop is recorded on the appointment", || {
            store.snapshot().events.iter().any(|e| {
                e.aggregate_id == stopped.id
                    && e.event_type == "message.failed"
                    && e.payload["error"]
                        .as_str()
                        .is_some_and(|s| s.contains("opted out"))
            })
        })
        .await;
    }
}
