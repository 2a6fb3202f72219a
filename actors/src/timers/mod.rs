//! Durable timers: rows in the store, the near window in memory (`TimerWheel`), and the
//! `TimerService` actor that fires them.
//!
//! The service loads every scheduled timer due before `now + window` (overdue ones
//! included: after downtime they fire at once and the appointment applies the SPEC §4
//! catch-up rule), sleeps on the `Clock` until the next one is due or the window ends —
//! never polling — and delivers each as a command to its owner. A timer stays
//! `scheduled` in the store until its owner commits the outcome, so a crash re-delivers
//! it; a failed delivery is retried with backoff, never dropped.

pub mod wheel;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};

use crate::engine::commands::AppointmentCommand;
use crate::engine::directory::{Directory, Route};
use crate::engine::error::EngineError;
use crate::engine::origin::Origin;
use crate::ports::clock::Clock;
use crate::ports::store::{Store, TimerCursor, TimerSpec};
use wheel::{full_key, TimerWheel};

/// Most timers loaded per window query.
const PAGE: usize = 10_000;
/// Longest wait between retries of a timer whose delivery failed.
const MAX_RETRY_DELAY_SECS: i64 = 300;

/// Timers an owner just committed: set / moved, and cancelled.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct TimersChanged {
    pub set: Vec<TimerSpec>,
    pub removed: Vec<(String, String)>,
}

/// Asks for the service's counters (for the admin API and tests).
#[derive(Message)]
#[rtype(result = "TimerStats")]
pub struct GetTimerStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimerStats {
    /// Timers held in memory.
    pub in_memory: usize,
    /// Deliveries awaiting their owner's answer.
    pub in_flight: usize,
    pub fired: u64,
    pub failed_deliveries: u64,
}

pub struct TimerService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    directory: Addr<Directory>,
    window: Duration,
    wheel: TimerWheel,
    /// Every scheduled timer due at or before this is in the wheel (or in flight).
    window_end: DateTime<Utc>,
    /// How far the store has been read, in (due, key) order.
    loaded: Option<TimerCursor>,
    in_flight: HashSet<String>,
    /// Recently delivered keys, so a window query racing a commit cannot fire one twice.
    recently_fired: HashMap<String, DateTime<Utc>>,
    attempts: HashMap<String, u32>,
    sleeper: Option<SpawnHandle>,
    stats: TimerStats,
}

impl TimerService {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        directory: Addr<Directory>,
        window: Duration,
    ) -> Self {
        let now = clock.now();
        Self {
            store,
            clock,
            directory,
            window,
            wheel: TimerWheel::default(),
            window_end: now,
            loaded: None,
            in_flight: HashSet::new(),
            recently_fired: HashMap::new(),
            attempts: HashMap::new(),
            sleeper: None,
            stats: TimerStats::default(),
        }
    }

    /// Loads the next window from the store, then arms the wake-up.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.sleeper.take() {
            ctx.cancel_future(handle);
        }
        let now = self.clock.now();
        let until = now + self.window;
        // Only what is not loaded yet: timers up to the cursor are in the wheel, in
        // flight, or fired; changes to them arrive as `TimersChanged`.
        let query = self.store.due_timers(self.loaded.clone(), until, PAGE);
        ctx.wait(
            query
                .into_actor(self)
                .map(move |loaded, service, ctx| match loaded {
                    Ok(rows) => {
                        let full_page = rows.len() == PAGE;
                        let reached = match (full_page, rows.last()) {
                            (true, Some(last)) => TimerCursor {
                                due_at: last.spec.due_at,
                                key: Some(last.spec.key.clone()),
                            },
                            _ => TimerCursor {
                                due_at: until,
                                key: None,
                            },
                        };
                        let keep_after = now - service.window;
                        service.recently_fired.retain(|_, at| *at >= keep_after);
                        for row in rows {
                            let key = full_key(&row.spec.tenant_id, &row.spec.key);
                            if service.in_flight.contains(&key)
                                || service.recently_fired.contains_key(&key)
                            {
                                continue;
                            }
                            let wake = row.spec.due_at;
                            service.wheel.insert(row.spec, wake);
                        }
                        // Never backwards (the clock may have jumped back).
                        let loaded = match service.loaded.take() {
                            Some(before) if before > reached => before,
                            _ => reached,
                        };
                        service.window_end = loaded.due_at;
                        service.loaded = Some(loaded);
                        service.arm(ctx);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot load due timers; retrying in 1 s");
                        ctx.run_later(std::time::Duration::from_secs(1), |service, ctx| {
                            service.reload(ctx)
                        });
                    }
                }),
        );
    }

    /// Sleeps until the next timer is due or the window ends, whichever is first.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.sleeper.take() {
            ctx.cancel_future(handle);
        }
        let wake = match self.wheel.next_wake() {
            Some(next) => next.min(self.window_end),
            None => self.window_end,
        };
        let sleep = self.clock.sleep_until(wake);
        self.sleeper = Some(ctx.spawn(sleep.into_actor(self).map(|(), service, ctx| {
            service.sleeper = None;
            service.tick(ctx);
        })));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        for spec in self.wheel.pop_due(now) {
            self.deliver(spec, ctx);
        }
        if now >= self.window_end {
            self.reload(ctx);
        } else {
            self.arm(ctx);
        }
    }

    fn deliver(&mut self, spec: TimerSpec, ctx: &mut Context<Self>) {
        let key = full_key(&spec.tenant_id, &spec.key);
        if !self.in_flight.insert(key.clone()) {
            return;
        }
        let route = match spec.owner_type.as_str() {
            "appointment" => Route {
                appointment_id: spec.owner_id.clone(),
                command: AppointmentCommand::TimerFired {
                    tenant_id: spec.tenant_id.clone(),
                    key: spec.key.clone(),
                    kind: spec.kind.clone(),
                    due_at: spec.due_at,
                    payload: spec.payload.clone(),
                },
                inbox_id: None,
                origin: Origin::caused_by(format!("timer:{}", spec.key)),
            },
            other => {
                tracing::error!(owner_type = other, key = %spec.key, "timer of an unknown owner type; left scheduled");
                self.in_flight.remove(&key);
                return;
            }
        };
        // Awaited on its own task, answered by message: the actor's context then never
        // holds thousands of pending deliveries (actix polls every spawned future of a
        // context on each wake-up).
        let sent = self.directory.send(route);
        let me = ctx.address();
        actix::spawn(async move {
            let answer = sent.await.unwrap_or(Err(EngineError::ActorUnavailable));
            me.do_send(Delivered { key, spec, answer });
        });
    }
}

/// A timer's owner answered (or could not be reached).
#[derive(Message)]
#[rtype(result = "()")]
struct Delivered {
    key: String,
    spec: TimerSpec,
    answer: Result<Option<crate::ports::store::AppointmentRecord>, EngineError>,
}

impl Handler<Delivered> for TimerService {
    type Result = ();

    fn handle(&mut self, msg: Delivered, ctx: &mut Self::Context) {
        let Delivered { key, spec, answer } = msg;
        let service = self;
        service.in_flight.remove(&key);
        match answer {
            Ok(_) => {
                service.stats.fired += 1;
                service.attempts.remove(&key);
                service.recently_fired.insert(key, service.clock.now());
            }
            Err(error) => {
                service.stats.failed_deliveries += 1;
                let attempts = service.attempts.entry(key).or_insert(0);
                *attempts += 1;
                let delay =
                    Duration::seconds((1_i64 << (*attempts).min(9)).min(MAX_RETRY_DELAY_SECS));
                tracing::warn!(key = %spec.key, attempts = *attempts, %error, "timer delivery failed; retrying");
                let wake = service.clock.now() + delay;
                service.wheel.insert(spec, wake);
                service.arm(ctx);
            }
        }
    }
}

impl Actor for TimerService {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.reload(ctx);
    }
}

impl Handler<TimersChanged> for TimerService {
    type Result = ();

    fn handle(&mut self, msg: TimersChanged, ctx: &mut Self::Context) {
        for (tenant_id, key) in &msg.removed {
            self.wheel.remove(tenant_id, key);
        }
        for spec in msg.set {
            let full = full_key(&spec.tenant_id, &spec.key);
            // Re-set keys are live again, even if they fired before (moved timers).
            self.recently_fired.remove(&full);
            if spec.due_at <= self.window_end {
                let wake = spec.due_at;
                self.wheel.insert(spec, wake);
            } else {
                self.wheel.remove(&spec.tenant_id, &spec.key);
            }
        }
        self.arm(ctx);
    }
}

impl Handler<GetTimerStats> for TimerService {
    type Result = MessageResult<GetTimerStats>;

    fn handle(&mut self, _: GetTimerStats, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(TimerStats {
            in_memory: self.wheel.len(),
            in_flight: self.in_flight.len(),
            ..self.stats
        })
    }
}

impl Handler<crate::engine::Shutdown> for TimerService {
    type Result = ();

    fn handle(&mut self, _: crate::engine::Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
