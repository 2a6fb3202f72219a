//! The directory: routes each command to its appointment's actor, activating the actor
//! on demand (under an actix `Supervisor`) and passivating it after an idle period.
//!
//! It is also where ownership of appointments would be split between several daemons
//! (by lease) later; today one directory owns every appointment of the process.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::appointment_actor::{ActorSnapshot, AppointmentActor, Deliver, Inspect, Passivate};
use super::commands::AppointmentCommand;
use super::error::EngineError;
use super::origin::Origin;
use super::EngineDeps;
use crate::domain::appointment_status::AppointmentStatus;
use crate::ports::store::{AppointmentRecord, TimerRecord, TimerStatus, WorkflowRecord};

/// Routes a command to the appointment `appointment_id`.
#[derive(Message)]
#[rtype(result = "Result<Option<AppointmentRecord>, EngineError>")]
pub struct Route {
    pub appointment_id: String,
    pub command: AppointmentCommand,
    /// The inbox item this command comes from: marked processed in the same commit.
    pub inbox_id: Option<String>,
    /// What caused it (its events' metadata).
    pub origin: Origin,
}

/// Lists live actors (for the admin API).
#[derive(Message)]
#[rtype(result = "Vec<LiveActor>")]
pub struct ListActors;

/// One live actor as the directory sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveActor {
    pub appointment_id: String,
    /// The status in its last answer (`None` until it has answered once).
    pub status: Option<AppointmentStatus>,
    /// Messages routed to it and not yet answered.
    pub in_flight: usize,
    pub idle_for: Duration,
}

/// Asks one actor for its state, activating it if needed, with its pending timers and
/// its workflows from the store.
#[derive(Message)]
#[rtype(result = "Result<AppointmentView, EngineError>")]
pub struct InspectActor(pub String);

/// Asks one appointment's actor for its committed state (activating it if needed): a
/// read that costs no query while the actor is live, ordered after the messages already
/// in its mailbox.
#[derive(Message)]
#[rtype(result = "Result<Option<AppointmentRecord>, EngineError>")]
pub struct Peek(pub String);

/// Stops the live actors of these appointments and forgets them, answering how many
/// were live. Each actor first finishes what is already in its mailbox (so nothing it
/// accepted is lost or half-committed); the next command for the appointment activates
/// a fresh actor from committed state. Used after personal data was changed or erased
/// under an actor that may still hold the old copy in memory.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Evict(pub Vec<String>);

/// One appointment as the admin API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentView {
    pub actor: ActorSnapshot,
    /// Timers still scheduled, soonest first.
    pub pending_timers: Vec<TimerRecord>,
    pub workflows: Vec<WorkflowRecord>,
}

struct Entry {
    addr: Addr<AppointmentActor>,
    status: Option<AppointmentStatus>,
    in_flight: usize,
    last_used: Instant,
}

pub struct Directory {
    deps: Arc<EngineDeps>,
    actors: HashMap<String, Entry>,
    idle_timeout: Duration,
}

impl Directory {
    pub fn new(deps: Arc<EngineDeps>, idle_timeout: Duration) -> Self {
        Self {
            deps,
            actors: HashMap::new(),
            idle_timeout,
        }
    }

    fn entry(&mut self, id: &str) -> &mut Entry {
        let deps = self.deps.clone();
        self.actors.entry(id.to_string()).or_insert_with(|| {
            let actor_id = id.to_string();
            let addr = Supervisor::start(move |_| AppointmentActor::new(actor_id, deps));
            Entry {
                addr,
                status: None,
                in_flight: 0,
                last_used: Instant::now(),
            }
        })
    }

    fn passivate_idle(&mut self) {
        let timeout = self.idle_timeout;
        let idle: Vec<String> = self
            .actors
            .iter()
            .filter(|(_, e)| e.in_flight == 0 && e.last_used.elapsed() >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            if let Some(entry) = self.actors.remove(&id) {
                entry.addr.do_send(Passivate);
            }
        }
    }
}

impl Actor for Directory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = (self.idle_timeout / 2).max(Duration::from_millis(10));
        ctx.run_interval(every, |directory, _| directory.passivate_idle());
    }
}

/// Finished routing one message: update the in-flight count and the known status.
#[derive(Message)]
#[rtype(result = "()")]
struct Done(String, Option<AppointmentStatus>);

impl Handler<Done> for Directory {
    type Result = ();

    fn handle(&mut self, Done(id, status): Done, _ctx: &mut Self::Context) {
        if let Some(entry) = self.actors.get_mut(&id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.last_used = Instant::now();
            if status.is_some() {
                entry.status = status;
            }
        }
    }
}

impl Handler<Route> for Directory {
    type Result = ResponseFuture<Result<Option<AppointmentRecord>, EngineError>>;

    fn handle(&mut self, msg: Route, ctx: &mut Self::Context) -> Self::Result {
        let entry = self.entry(&msg.appointment_id);
        entry.in_flight += 1;
        entry.last_used = Instant::now();
        let addr = entry.addr.clone();
        let me = ctx.address();
        let id = msg.appointment_id;
        Box::pin(async move {
            let answer = addr
                .send(Deliver {
                    command: msg.command,
                    inbox_id: msg.inbox_id,
                    origin: msg.origin,
                })
                .await
                .unwrap_or(Err(EngineError::ActorUnavailable));
            let status = answer
                .as_ref()
                .ok()
                .and_then(|r| r.as_ref())
                .map(|r| r.status);
            me.do_send(Done(id, status));
            answer
        })
    }
}

impl Handler<ListActors> for Directory {
    type Result = MessageResult<ListActors>;

    fn handle(&mut self, _: ListActors, _ctx: &mut Self::Context) -> Self::Result {
        let mut live: Vec<LiveActor> = self
            .actors
            .iter()
            .map(|(id, e)| LiveActor {
                appointment_id: id.clone(),
                status: e.status,
                in_flight: e.in_flight,
                idle_for: e.last_used.elapsed(),
            })
            .collect();
        live.sort_by(|a, b| a.appointment_id.cmp(&b.appointment_id));
        MessageResult(live)
    }
}

impl Handler<InspectActor> for Directory {
    type Result = ResponseFuture<Result<AppointmentView, EngineError>>;

    fn handle(&mut self, InspectActor(id): InspectActor, _ctx: &mut Self::Context) -> Self::Result {
        let addr = self.entry(&id).addr.clone();
        let store = self.deps.store.clone();
        Box::pin(async move {
            let actor = addr
                .send(Inspect)
                .await
                .map_err(|_| EngineError::ActorUnavailable)?;
            let timers = store
                .timers_of("appointment".to_string(), id.clone())
                .await?;
            let workflows = store.workflows_of_appointment(id).await?;
            Ok(AppointmentView {
                actor,
                pending_timers: timers
                    .into_iter()
                    .filter(|t| t.status == TimerStatus::Scheduled)
                    .collect(),
                workflows,
            })
        })
    }
}

impl Handler<Peek> for Directory {
    type Result = ResponseFuture<Result<Option<AppointmentRecord>, EngineError>>;

    fn handle(&mut self, Peek(id): Peek, _ctx: &mut Self::Context) -> Self::Result {
        let entry = self.entry(&id);
        entry.last_used = Instant::now();
        let addr = entry.addr.clone();
        Box::pin(async move {
            addr.send(Inspect)
                .await
                .map(|snapshot| snapshot.state)
                .map_err(|_| EngineError::ActorUnavailable)
        })
    }
}

impl Handler<Evict> for Directory {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, Evict(ids): Evict, _ctx: &mut Self::Context) -> Self::Result {
        // Queued behind each mailbox's earlier messages. The addresses are dropped at
        // once, as passivation does, so a stopped actor is not restarted for them.
        let stopping: Vec<_> = ids
            .iter()
            .filter_map(|id| self.actors.remove(id))
            .map(|entry| entry.addr.send(Passivate))
            .collect();
        Box::pin(async move {
            let evicted = stopping.len();
            for stopped in stopping {
                // An actor that had already stopped holds nothing either.
                let _ = stopped.await;
            }
            evicted
        })
    }
}

impl Handler<crate::engine::Shutdown> for Directory {
    type Result = ();

    fn handle(&mut self, _: crate::engine::Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration as StdDuration;

    use chrono::{Duration, TimeZone, Utc};

    use crate::domain::appointment_status::AppointmentStatus;
    use crate::engine::{AppointmentCommand, ChangedBy, Engine, EngineOptions, EnginePorts};
    use crate::engine::{EngineSettings, ListActors};
    use crate::ports::clock::VirtualClock;
    use crate::ports::ids::UuidV7;
    use crate::testing::fixtures::sample_booking;
    use crate::testing::{MemoryStore, ScriptedMessaging};

    fn engine() -> Engine {
        let clock = VirtualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap());
        Engine::start(
            EnginePorts {
                store: Arc::new(MemoryStore::new()),
                clock: Arc::new(clock),
                ids: Arc::new(UuidV7),
                messaging: Arc::new(ScriptedMessaging::reminders_only()),
            },
            EngineSettings {
                quiet_hours: None,
                ..EngineSettings::default()
            },
            EngineOptions {
                // Long enough that only eviction stops an actor during the test.
                idle_timeout: StdDuration::from_secs(600),
                ..EngineOptions::default()
            },
        )
    }

    async fn live(engine: &Engine) -> Vec<String> {
        let actors = engine.directory.send(ListActors).await.expect("list");
        actors.into_iter().map(|a| a.appointment_id).collect()
    }

    #[actix_rt::test]
    async fn evicted_actors_drain_stop_and_come_back_from_committed_state() {
        let engine = engine();
        let starts = Utc.with_ymd_and_hms(2026, 3, 5, 15, 0, 0).unwrap();
        let kept = engine
            .book(sample_booking("kept", starts))
            .await
            .expect("booked")
            .expect("state")
            .id;
        let evicted = engine
            .book(sample_booking("evicted", starts + Duration::hours(1)))
            .await
            .expect("booked")
            .expect("state")
            .id;
        assert_eq!(live(&engine).await.len(), 2);

        // A command already routed is applied before the actor stops.
        let confirm = engine.route(
            evicted.clone(),
            AppointmentCommand::Transition {
                to: AppointmentStatus::Confirmed,
                by: ChangedBy::Staff("ann".into()),
                reason: None,
            },
        );
        let (confirmed, count) = tokio::join!(confirm, engine.evict(vec![evicted.clone()]));
        assert_eq!(count, 1);
        let confirmed = confirmed.expect("applied").expect("state");
        assert_eq!(confirmed.status, AppointmentStatus::Confirmed);
        assert_eq!(live(&engine).await, vec![kept.clone()]);

        // Nothing live to evict: nothing happens.
        assert_eq!(engine.evict(vec!["no-such-appointment".into()]).await, 0);
        assert_eq!(engine.evict(vec![evicted.clone()]).await, 0);

        // The next command reactivates it from what was committed.
        let snapshot = engine
            .directory
            .send(super::InspectActor(evicted.clone()))
            .await
            .expect("mailbox")
            .expect("inspect");
        assert_eq!(
            snapshot.actor.state.map(|s| s.status),
            Some(AppointmentStatus::Confirmed)
        );
        assert_eq!(snapshot.actor.restarts, 0, "a fresh actor, not a restart");
        let mut now_live = live(&engine).await;
        now_live.sort();
        let mut want = vec![kept, evicted];
        want.sort();
        assert_eq!(now_live, want);
    }
}
