//! The payment supervisor: consumes the payment outbox (deposit payment links) through
//! the payment provider, behind its own circuit breaker (SPEC §6: 3 failures in 3 min →
//! open 30 s, 2 successes to close), token bucket (Stripe: 100/s, burst 5) and retry
//! policy (2 attempts, linear 2–5 s, retryable errors only). Exhausted work goes to the
//! dead-letter queue with an escalation.
//!
//! The result reaches the appointment through the durable inbox, recorded *before* the
//! outbox row is closed: a crash in between leaves the row open, and its next attempt
//! asks the provider again with the same idempotency key — the provider answers with
//! the link it created the first time (Stripe's `Idempotency-Key`), and the inbox
//! deduplicates the result. Nothing is lost and no second link is made.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use super::messaging::OutboxChanged;
use crate::engine::commands::AppointmentCommand;
use crate::engine::inbox::{InboxAccepted, InboxProcessor, InboxWork};
use crate::engine::origin::Origin;
use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::providers::{PaymentLink, PaymentLinkRequest, PaymentProvider, ProviderError};
use crate::ports::store::{
    InboxAccept, InboxRecord, InboxStatus, NewEscalation, NewInbox, OutboxRecord, OutboxUpdate,
    ProviderDomain, Store, StoreError,
};
use crate::resilience::backoff::{ErrorClass, RetryPolicy};
use crate::resilience::breaker::{BreakerConfig, CircuitBreaker};
use crate::resilience::token_bucket::TokenBucket;

/// Rows read per poll.
const BATCH: usize = 32;
/// The inbox source of payment results.
pub const INBOX_SOURCE: &str = "payments";
/// Longest idle wait between two looks at the outbox.
const LOOK_AGAIN_SECS: i64 = 60;

pub struct PaymentSupervisor {
    tenant_id: String,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    provider: Arc<dyn PaymentProvider>,
    inbox: Addr<InboxProcessor>,
    breaker: CircuitBreaker,
    bucket: TokenBucket,
    policy: RetryPolicy,
    rng: StdRng,
    in_flight: HashSet<String>,
    /// Counts recorded outcomes; with `settled`, tells a stale read from a fresh one.
    epoch: u64,
    /// Rows whose outcome was recorded after the running poll read the outbox (by the
    /// epoch of the recording): that read may still show them in flight or pending, so
    /// they are skipped until the next poll (as the messaging supervisor does).
    settled: HashMap<String, u64>,
    polling: bool,
    poll_again: bool,
    sleeper: Option<SpawnHandle>,
}

impl PaymentSupervisor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tenant_id: String,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        provider: Arc<dyn PaymentProvider>,
        inbox: Addr<InboxProcessor>,
        seed: u64,
    ) -> Self {
        let now = clock.now();
        Self {
            tenant_id,
            store,
            clock,
            ids,
            provider,
            inbox,
            breaker: CircuitBreaker::new(BreakerConfig::payment()),
            bucket: TokenBucket::stripe(now),
            policy: RetryPolicy::payment(),
            rng: StdRng::seed_from_u64(seed),
            in_flight: HashSet::new(),
            epoch: 0,
            settled: HashMap::new(),
            polling: false,
            poll_again: false,
            sleeper: None,
        }
    }

    /// Reads due rows (rows left in flight by a crash included) and starts them.
    fn poll(&mut self, ctx: &mut Context<Self>) {
        if self.polling {
            self.poll_again = true;
            return;
        }
        self.polling = true;
        let store = self.store.clone();
        let now = self.clock.now();
        let read_at_epoch = self.epoch;
        let read = async move {
            let rows = store
                .ready_outbox(ProviderDomain::Payment, now, BATCH, true)
                .await?;
            let next = store.next_outbox_due(ProviderDomain::Payment).await?;
            Ok::<_, StoreError>((rows, next))
        };
        ctx.spawn(read.into_actor(self).map(move |read, sup, ctx| {
            sup.polling = false;
            sup.settled.retain(|_, epoch| *epoch > read_at_epoch);
            match read {
                Ok((rows, next)) => {
                    let mut limited_until = None;
                    for row in rows {
                        if let Some(at) = sup.start(row, ctx) {
                            limited_until = Some(at);
                            break;
                        }
                    }
                    // Rate-limited: wake when a token is back (the rows left are due
                    // already). Else at the next row due later — a row due now that was
                    // not started is in flight, and its outcome polls again — and at
                    // least every minute, so work queued by another process (`aro dlq
                    // replay`) is found.
                    let now = sup.clock.now();
                    let look_again = now + Duration::seconds(LOOK_AGAIN_SECS);
                    let later = next.filter(|next| *next > now);
                    let wake = limited_until
                        .unwrap_or_else(|| later.map_or(look_again, |next| next.min(look_again)));
                    sup.sleep_until(wake, ctx);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the payment outbox; retrying in 5 s");
                    let at = sup.clock.now() + Duration::seconds(5);
                    sup.sleep_until(at, ctx);
                }
            }
            if std::mem::take(&mut sup.poll_again) {
                sup.poll(ctx);
            }
        }));
    }

    fn sleep_until(&mut self, at: DateTime<Utc>, ctx: &mut Context<Self>) {
        if let Some(handle) = self.sleeper.take() {
            ctx.cancel_future(handle);
        }
        let wait = self.clock.sleep_until(at);
        self.sleeper = Some(ctx.spawn(wait.into_actor(self).map(|(), sup, ctx| {
            sup.sleeper = None;
            sup.poll(ctx);
        })));
    }

    /// Starts the provider call for `row` (or defers it while the breaker is open);
    /// `Some(instant)` when the rate limit stops it until then.
    fn start(&mut self, row: OutboxRecord, ctx: &mut Context<Self>) -> Option<DateTime<Utc>> {
        if self.in_flight.contains(&row.item.id) || self.settled.contains_key(&row.item.id) {
            return None;
        }
        let now = self.clock.now();
        if let Err(open) = self.breaker.allow(now) {
            let update = OutboxUpdate::Retry {
                id: row.item.id.clone(),
                at: open.retry_at,
                error: "deferred: payment circuit breaker open".to_string(),
            };
            self.in_flight.insert(row.item.id.clone());
            self.write(update, ctx);
            return None;
        }
        if let Err(wait) = self.bucket.try_take(now) {
            return Some(now + Duration::from_std(wait).unwrap_or_else(|_| Duration::seconds(1)));
        }
        let request = match link_request(&row) {
            Ok(request) => request,
            Err(reason) => {
                self.in_flight.insert(row.item.id.clone());
                self.dead(row, reason, ctx);
                return None;
            }
        };
        self.in_flight.insert(row.item.id.clone());
        let attempts = row.attempts + 1;
        let store = self.store.clone();
        let provider = self.provider.clone();
        let id = row.item.id.clone();
        let call = async move {
            store
                .update_outbox(OutboxUpdate::Started { id, attempts })
                .await
                .map_err(|e| ProviderError {
                    class: ErrorClass::Network,
                    message: format!("store: {e}"),
                    outcome_unknown: false,
                })?;
            provider.create_payment_link(request).await
        };
        ctx.spawn(call.into_actor(self).map(move |result, sup, ctx| {
            sup.settle(row, attempts, result, ctx);
        }));
        None
    }

    fn settle(
        &mut self,
        row: OutboxRecord,
        attempts: i32,
        result: Result<PaymentLink, ProviderError>,
        ctx: &mut Context<Self>,
    ) {
        let now = self.clock.now();
        match result {
            Ok(link) => {
                self.breaker.on_success(now);
                self.deliver(row, link, ctx);
            }
            Err(error) => {
                if error.class.is_retryable() {
                    self.breaker.on_failure(now);
                }
                let delay = self.policy.next_delay(
                    u32::try_from(attempts).unwrap_or(u32::MAX),
                    &error.class,
                    &mut self.rng,
                );
                match delay {
                    Some(delay) => {
                        let at = now
                            + Duration::from_std(delay).unwrap_or_else(|_| Duration::seconds(5));
                        let update = OutboxUpdate::Retry {
                            id: row.item.id.clone(),
                            at,
                            error: error.message,
                        };
                        self.write(update, ctx);
                    }
                    None => self.dead(row, error.message, ctx),
                }
            }
        }
    }

    /// Records the link for its appointment in the inbox, then closes the row.
    fn deliver(&mut self, row: OutboxRecord, link: PaymentLink, ctx: &mut Context<Self>) {
        let work = InboxWork {
            appointment_id: row.item.owner_id.clone(),
            command: AppointmentCommand::DepositLinkCreated {
                url: link.url.clone(),
                link_ref: link.provider_ref.clone(),
            },
            origin: Origin::caused_by(format!("outbox:{}", row.item.id)),
        };
        let item = NewInbox {
            id: self.ids.new_id(),
            tenant_id: row.item.tenant_id.clone(),
            source: INBOX_SOURCE.to_string(),
            dedup_key: row.item.idempotency_key.clone(),
            payload: serde_json::to_value(&work).unwrap_or(Value::Null),
            received_at: self.clock.now(),
        };
        let store = self.store.clone();
        let inbox = self.inbox.clone();
        let id = row.item.id.clone();
        let recorded = async move {
            let accepted = store.accept_inbox(item.clone()).await?;
            store
                .update_outbox(OutboxUpdate::Done {
                    id: id.clone(),
                    provider_ref: Some(link.provider_ref),
                    sent: None,
                })
                .await?;
            if accepted == InboxAccept::Accepted {
                inbox.do_send(InboxAccepted(InboxRecord {
                    item,
                    status: InboxStatus::Pending,
                    attempts: 0,
                    last_error: None,
                }));
            }
            Ok::<_, StoreError>(())
        };
        ctx.spawn(recorded.into_actor(self).map(move |result, sup, ctx| {
            if let Err(error) = result {
                // The row stays open; the next attempt asks again with the same key.
                tracing::warn!(%error, outbox = %row.item.id, "cannot record a payment link; retrying");
                let at = sup.clock.now() + Duration::seconds(5);
                sup.recorded(&row.item.id);
                sup.sleep_until(at, ctx);
                return;
            }
            sup.recorded(&row.item.id);
            // Rows beyond the last read's batch may be waiting.
            sup.poll(ctx);
        }));
    }

    fn dead(&mut self, row: OutboxRecord, error: String, ctx: &mut Context<Self>) {
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
            reason: "deposit_link_failed".to_string(),
            priority: "high".to_string(),
            details: json!({"kind": row.item.kind, "error": error, "outboxId": row.item.id}),
            created_at: self.clock.now(),
        };
        let update = OutboxUpdate::Dead {
            id: row.item.id.clone(),
            error,
            escalation,
        };
        self.write(update, ctx);
    }

    /// The outcome of row `id` is recorded (or given up for now): it is no longer in
    /// flight, and a poll whose read predates this ignores it.
    fn recorded(&mut self, id: &str) {
        self.epoch += 1;
        self.settled.insert(id.to_string(), self.epoch);
        self.in_flight.remove(id);
    }

    fn write(&mut self, update: OutboxUpdate, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let id = update.id().to_string();
        ctx.spawn(
            async move { store.update_outbox(update).await }
                .into_actor(self)
                .map(move |result, sup, ctx| {
                    if let Err(error) = result {
                        tracing::warn!(%error, "cannot record a payment outcome");
                    }
                    sup.recorded(&id);
                    sup.poll(ctx);
                }),
        );
    }
}

/// The provider request an outbox row describes.
fn link_request(row: &OutboxRecord) -> Result<PaymentLinkRequest, String> {
    let payload = &row.item.payload;
    let text = |field: &str| {
        payload
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("payment outbox payload has no `{field}`"))
    };
    Ok(PaymentLinkRequest {
        idempotency_key: row.item.idempotency_key.clone(),
        amount_cents: payload
            .get("amountCents")
            .and_then(Value::as_i64)
            .ok_or("payment outbox payload has no `amountCents`")?,
        currency: text("currency")?,
        description: text("description")?,
        appointment_id: text("appointmentId")?,
        customer_id: text("customerId")?,
    })
}

impl Actor for PaymentSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::debug!(tenant = %self.tenant_id, "payment supervisor started");
        self.poll(ctx);
    }
}

impl Handler<OutboxChanged> for PaymentSupervisor {
    type Result = ();

    fn handle(&mut self, _: OutboxChanged, ctx: &mut Self::Context) {
        self.poll(ctx);
    }
}

impl Handler<crate::engine::Shutdown> for PaymentSupervisor {
    type Result = ();

    fn handle(&mut self, _: crate::engine::Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
