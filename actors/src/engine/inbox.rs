//! The inbox processor: applies acknowledged inbound work to its appointment.
//!
//! A webhook handler records its normalized work as an inbox item (durably, before the
//! 2xx) and tells the processor with [`InboxAccepted`]. The processor routes each item
//! to its appointment's actor, one item per appointment at a time in arrival order, and
//! the actor marks the item processed in the same transaction as the change it causes —
//! so work takes effect exactly once even when it is delivered twice. At start, every
//! 30 s, and whenever it has room, the processor reloads pending items from the store:
//! work acknowledged before a crash, or recorded by another process, is applied.
//!
//! An item the appointment refuses (an invalid transition, an unknown appointment) is
//! recorded as rejected. One that keeps failing (its actor panics, the store is down)
//! is retried with backoff and, after [`MAX_ATTEMPTS`], dead-lettered with an
//! escalation — never silently dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::commands::AppointmentCommand;
use super::directory::{Directory, Route};
use super::error::EngineError;
use super::origin::Origin;
use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::store::{InboxRecord, InboxUpdate, NewEscalation, Store, StoreError};

/// Items loaded per recovery read.
const RECOVERY_PAGE: usize = 2048;
/// Recovery reads again once fewer than this many items are queued.
const LOW_WATER: usize = RECOVERY_PAGE / 4;
/// Attempts before an item is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 5;
/// Pending items are looked for this often even when nobody says so: work recorded by
/// another process (`aro sync calendly`) or whose outcome write failed is not stranded.
const RECOVER_EVERY: StdDuration = StdDuration::from_secs(30);
/// Applied items (and their dedup keys) are kept this long: SPEC §6 deduplicates
/// deliveries for 7 days.
pub const DEDUP_DAYS: i64 = 7;
/// How often old applied items are pruned.
const PRUNE_EVERY: StdDuration = StdDuration::from_secs(3600);

/// The normalized work an inbox item carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxWork {
    pub appointment_id: String,
    pub command: AppointmentCommand,
    /// What caused it (absent from items recorded before it was kept).
    #[serde(default, skip_serializing_if = "Origin::is_empty")]
    pub origin: Origin,
}

impl InboxWork {
    /// Work for `appointment_id`, its cause not named yet.
    pub fn new(appointment_id: impl Into<String>, command: AppointmentCommand) -> Self {
        Self {
            appointment_id: appointment_id.into(),
            command,
            origin: Origin::default(),
        }
    }

    /// The same work, caused by `origin`.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }
}

/// An item was recorded and acknowledged: apply it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct InboxAccepted(pub InboxRecord);

/// Asks for the processor's counters.
#[derive(Message)]
#[rtype(result = "InboxStats")]
pub struct GetInboxStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboxStats {
    /// Items waiting or being applied.
    pub queued: usize,
    pub applied: u64,
    pub rejected: u64,
    pub retried: u64,
    pub dead_lettered: u64,
}

struct Queued {
    record: InboxRecord,
    work: InboxWork,
    attempts: u32,
}

pub struct InboxProcessor {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    directory: Addr<Directory>,
    /// Per appointment, items in arrival order; the front one may be in flight.
    queues: HashMap<String, VecDeque<Queued>>,
    /// Appointments whose front item is in flight (or waiting for its retry).
    busy: HashSet<String>,
    /// Inbox ids queued or in flight, so a recovery read cannot queue one twice.
    known: HashSet<String>,
    recovering: bool,
    /// The last recovery read was a full page: there may be more.
    more_pending: bool,
    stats: InboxStats,
}

impl InboxProcessor {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        directory: Addr<Directory>,
    ) -> Self {
        Self {
            store,
            clock,
            ids,
            directory,
            queues: HashMap::new(),
            busy: HashSet::new(),
            known: HashSet::new(),
            recovering: false,
            more_pending: false,
            stats: InboxStats::default(),
        }
    }

    fn recover(&mut self, ctx: &mut Context<Self>) {
        if self.recovering {
            return;
        }
        self.recovering = true;
        let read = self.store.pending_inbox(RECOVERY_PAGE);
        ctx.spawn(read.into_actor(self).map(|rows, processor, ctx| {
            processor.recovering = false;
            match rows {
                Ok(rows) => {
                    processor.more_pending = rows.len() == RECOVERY_PAGE;
                    if !rows.is_empty() {
                        tracing::info!(items = rows.len(), "applying pending inbox items");
                    }
                    for row in rows {
                        processor.enqueue(row, ctx);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the inbox; retrying in 1 s");
                    ctx.run_later(StdDuration::from_secs(1), |p, ctx| p.recover(ctx));
                }
            }
        }));
    }

    /// Forgets applied items older than the dedup window.
    fn prune(&mut self, _ctx: &mut Context<Self>) {
        let before = self.clock.now() - chrono::Duration::days(DEDUP_DAYS);
        let prune = self.store.prune_inbox(before);
        actix::spawn(async move {
            match prune.await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::info!(removed, "pruned applied inbox items past the dedup window")
                }
                Err(error) => tracing::warn!(%error, "cannot prune the inbox"),
            }
        });
    }

    fn enqueue(&mut self, record: InboxRecord, ctx: &mut Context<Self>) {
        if !self.known.insert(record.item.id.clone()) {
            return;
        }
        let work: InboxWork = match serde_json::from_value(record.item.payload.clone()) {
            Ok(work) => work,
            Err(error) => {
                // Written by this daemon, so unreadable work is a bug: keep it visible.
                let error = format!("unreadable inbox payload: {error}");
                self.dead_letter(&record, None, error, ctx);
                self.known.remove(&record.item.id);
                return;
            }
        };
        let appointment = work.appointment_id.clone();
        self.queues
            .entry(appointment.clone())
            .or_default()
            .push_back(Queued {
                attempts: record.attempts.max(0) as u32,
                record,
                work,
            });
        self.stats.queued = self.known.len();
        self.dispatch(&appointment, ctx);
    }

    /// Sends the front item of `appointment` when none of its items is in flight.
    fn dispatch(&mut self, appointment: &str, ctx: &mut Context<Self>) {
        if self.busy.contains(appointment) {
            return;
        }
        let Some(front) = self.queues.get(appointment).and_then(|q| q.front()) else {
            self.queues.remove(appointment);
            return;
        };
        self.busy.insert(appointment.to_string());
        // Caused by the recorded delivery unless the work names its own cause.
        let mut origin = front.work.origin.clone();
        if origin.causation_id.is_none() {
            origin.causation_id = Some(front.record.item.id.clone());
        }
        let sent = self.directory.send(Route {
            appointment_id: appointment.to_string(),
            command: front.work.command.clone(),
            inbox_id: Some(front.record.item.id.clone()),
            origin,
        });
        let me = ctx.address();
        let appointment = appointment.to_string();
        // Awaited on its own task and answered by message (see the timer service).
        actix::spawn(async move {
            let answer = sent
                .await
                .unwrap_or(Err(EngineError::ActorUnavailable))
                .map(|_| ());
            me.do_send(Applied {
                appointment,
                answer,
            });
        });
    }

    /// The front item of `appointment` is finished with: move on.
    fn finish(&mut self, appointment: &str, ctx: &mut Context<Self>) {
        if let Some(queue) = self.queues.get_mut(appointment) {
            if let Some(done) = queue.pop_front() {
                self.known.remove(&done.record.item.id);
            }
        }
        self.busy.remove(appointment);
        self.stats.queued = self.known.len();
        self.dispatch(appointment, ctx);
        if self.more_pending && self.known.len() < LOW_WATER {
            self.recover(ctx);
        }
    }

    fn dead_letter(
        &mut self,
        record: &InboxRecord,
        appointment_id: Option<String>,
        error: String,
        ctx: &mut Context<Self>,
    ) {
        self.stats.dead_lettered += 1;
        tracing::error!(inbox = %record.item.id, source = %record.item.source, %error, "inbox item dead-lettered");
        let escalation = NewEscalation {
            id: self.ids.new_id(),
            tenant_id: record.item.tenant_id.clone(),
            appointment_id,
            customer_id: None,
            reason: "inbound_failed".to_string(),
            priority: "high".to_string(),
            details: json!({"inboxId": record.item.id, "source": record.item.source, "error": error}),
            created_at: self.clock.now(),
        };
        self.write(
            InboxUpdate::Dead {
                id: record.item.id.clone(),
                error,
                escalation,
            },
            ctx,
        );
    }

    /// Records an outcome; a failed write is retried (the item stays pending meanwhile,
    /// so a restart would apply it again — harmlessly, see `AlreadyApplied`).
    fn write(&mut self, update: InboxUpdate, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let me = ctx.address();
        actix::spawn(async move {
            if let Err(error) = store.update_inbox(update.clone()).await {
                tracing::warn!(%error, inbox = update.id(), "cannot record an inbox outcome; retrying in 1 s");
                actix::clock::sleep(StdDuration::from_secs(1)).await;
                me.do_send(RetryWrite(update));
            }
        });
    }
}

impl Actor for InboxProcessor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.recover(ctx);
        ctx.run_interval(RECOVER_EVERY, |processor, ctx| processor.recover(ctx));
        ctx.run_interval(PRUNE_EVERY, |processor, ctx| processor.prune(ctx));
    }
}

impl Handler<InboxAccepted> for InboxProcessor {
    type Result = ();

    fn handle(&mut self, InboxAccepted(record): InboxAccepted, ctx: &mut Self::Context) {
        self.enqueue(record, ctx);
    }
}

/// The appointment answered the front item of its queue.
#[derive(Message)]
#[rtype(result = "()")]
struct Applied {
    appointment: String,
    answer: Result<(), EngineError>,
}

impl Handler<Applied> for InboxProcessor {
    type Result = ();

    fn handle(&mut self, msg: Applied, ctx: &mut Self::Context) {
        let Applied {
            appointment,
            answer,
        } = msg;
        match answer {
            // Applied now, or by an earlier delivery of the same item.
            Ok(()) | Err(EngineError::Store(StoreError::AlreadyApplied(_))) => {
                self.stats.applied += 1;
                self.finish(&appointment, ctx);
            }
            Err(
                error @ (EngineError::InvalidTransition(_)
                | EngineError::NotFound(_)
                | EngineError::Invalid(_)),
            ) => {
                self.stats.rejected += 1;
                if let Some(front) = self.queues.get(&appointment).and_then(|q| q.front()) {
                    tracing::info!(inbox = %front.record.item.id, %error, "inbound work refused by its appointment");
                    let update = InboxUpdate::Rejected {
                        id: front.record.item.id.clone(),
                        error: error.to_string(),
                    };
                    self.write(update, ctx);
                }
                self.finish(&appointment, ctx);
            }
            Err(error) => {
                let Some(front) = self
                    .queues
                    .get_mut(&appointment)
                    .and_then(|q| q.front_mut())
                else {
                    self.busy.remove(&appointment);
                    return;
                };
                front.attempts += 1;
                if front.attempts >= MAX_ATTEMPTS {
                    let record = front.record.clone();
                    let message = format!("{} attempts failed; last: {error}", front.attempts);
                    self.dead_letter(&record, Some(appointment.clone()), message, ctx);
                    self.finish(&appointment, ctx);
                    return;
                }
                self.stats.retried += 1;
                let update = InboxUpdate::Retry {
                    id: front.record.item.id.clone(),
                    error: error.to_string(),
                };
                let delay = StdDuration::from_millis(50 << front.attempts.min(8));
                self.write(update, ctx);
                ctx.run_later(delay, move |processor, ctx| {
                    processor.busy.remove(&appointment);
                    processor.dispatch(&appointment, ctx);
                });
            }
        }
    }
}

/// An outcome write failed earlier: try it again.
#[derive(Message)]
#[rtype(result = "()")]
struct RetryWrite(InboxUpdate);

impl Handler<RetryWrite> for InboxProcessor {
    type Result = ();

    fn handle(&mut self, RetryWrite(update): RetryWrite, ctx: &mut Self::Context) {
        self.write(update, ctx);
    }
}

impl Handler<GetInboxStats> for InboxProcessor {
    type Result = MessageResult<GetInboxStats>;

    fn handle(&mut self, _: GetInboxStats, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats)
    }
}

impl Handler<super::Shutdown> for InboxProcessor {
    type Result = ();

    fn handle(&mut self, _: super::Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
