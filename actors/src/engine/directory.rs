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
use crate::ports::store::AppointmentRecord;

/// Routes a command to the appointment `appointment_id`.
#[derive(Message)]
#[rtype(result = "Result<Option<AppointmentRecord>, EngineError>")]
pub struct Route {
    pub appointment_id: String,
    pub command: AppointmentCommand,
}

/// Lists live actors (for the admin API).
#[derive(Message)]
#[rtype(result = "Vec<LiveActor>")]
pub struct ListActors;

/// One live actor as the directory sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveActor {
    pub appointment_id: String,
    /// Messages routed to it and not yet answered.
    pub in_flight: usize,
    pub idle_for: Duration,
}

/// Asks one actor for its state, activating it if needed.
#[derive(Message)]
#[rtype(result = "Result<ActorSnapshot, EngineError>")]
pub struct InspectActor(pub String);

struct Entry {
    addr: Addr<AppointmentActor>,
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

/// Finished routing one message: update the in-flight count.
#[derive(Message)]
#[rtype(result = "()")]
struct Done(String);

impl Handler<Done> for Directory {
    type Result = ();

    fn handle(&mut self, Done(id): Done, _ctx: &mut Self::Context) {
        if let Some(entry) = self.actors.get_mut(&id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.last_used = Instant::now();
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
            let answer = addr.send(Deliver(msg.command)).await;
            me.do_send(Done(id));
            answer.unwrap_or(Err(EngineError::ActorUnavailable))
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
                in_flight: e.in_flight,
                idle_for: e.last_used.elapsed(),
            })
            .collect();
        live.sort_by(|a, b| a.appointment_id.cmp(&b.appointment_id));
        MessageResult(live)
    }
}

impl Handler<InspectActor> for Directory {
    type Result = ResponseFuture<Result<ActorSnapshot, EngineError>>;

    fn handle(&mut self, InspectActor(id): InspectActor, _ctx: &mut Self::Context) -> Self::Result {
        let addr = self.entry(&id).addr.clone();
        Box::pin(async move {
            addr.send(Inspect)
                .await
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
