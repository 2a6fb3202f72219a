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

impl Handler<crate::engine::Shutdown> for Directory {
    type Result = ();

    fn handle(&mut self, _: crate::engine::Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
