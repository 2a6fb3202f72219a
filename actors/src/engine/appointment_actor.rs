//! `AppointmentActor`: the one writer of one appointment.
//!
//! It loads its committed state when it starts (and again after a restart), handles one
//! command at a time (`AtomicResponse`: the next message waits until the current one is
//! committed), runs the pure [`decide`](super::decide::decide) under `catch_unwind`, and
//! commits state, events, timers and outbox rows in one store transaction. A panic or a
//! version conflict stops the actor; its `Supervisor` restarts it from committed state
//! and the caller gets a retryable error, so the message is retried by its source (the
//! timer service, the inbox) — never silently dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::commands::AppointmentCommand;
use super::decide::{decide, DecideContext, Decision, FRESH_CUSTOMER_TIMERS};
use super::error::EngineError;
use super::origin::Origin;
use super::EngineDeps;
use crate::ports::store::{
    AppointmentRecord, CustomerRecord, CustomerWrite, ProviderDomain, StoreError,
};

/// A command for the appointment, with the answer the caller gets.
#[derive(Message)]
#[rtype(result = "Result<Option<AppointmentRecord>, EngineError>")]
pub struct Deliver {
    pub command: AppointmentCommand,
    /// The inbox item the command comes from, marked processed with the change.
    pub inbox_id: Option<String>,
    /// What caused it (its events' metadata).
    pub origin: Origin,
}

/// Asks for the actor's state (for the admin API).
#[derive(Message)]
#[rtype(result = "ActorSnapshot")]
pub struct Inspect;

/// What the actor holds in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorSnapshot {
    pub appointment_id: String,
    pub state: Option<AppointmentRecord>,
    pub restarts: u32,
}

/// Tells the actor to stop for good (passivation); it is reactivated on demand.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Passivate;

/// Where a command's customer comes from, when not from the actor's memory.
enum CustomerLookup {
    /// A new booking: the customer with this phone, if any.
    ByPhone(String, String),
    /// The stored customer, read again.
    Fresh(String),
}

pub struct AppointmentActor {
    id: String,
    deps: Arc<EngineDeps>,
    state: Option<AppointmentRecord>,
    customer: Option<CustomerRecord>,
    restarts: u32,
    passivating: bool,
    pub(crate) last_used: Instant,
}

impl AppointmentActor {
    pub fn new(id: String, deps: Arc<EngineDeps>) -> Self {
        Self {
            id,
            deps,
            state: None,
            customer: None,
            restarts: 0,
            passivating: false,
            last_used: Instant::now(),
        }
    }

    fn load(&mut self, ctx: &mut Context<Self>) {
        let store = self.deps.store.clone();
        let id = self.id.clone();
        let load = async move { store.load_appointment_and_customer(id).await };
        // `wait`: no message is handled before the state is loaded.
        ctx.wait(load.into_actor(self).map(|loaded, actor, ctx| match loaded {
            Ok((record, customer)) => {
                actor.state = record;
                actor.customer = customer;
            }
            Err(error) => {
                tracing::warn!(appointment = %actor.id, %error, "cannot load appointment; restarting");
                ctx.stop();
            }
        }));
    }
}

impl Actor for AppointmentActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.load(ctx);
    }
}

impl Supervised for AppointmentActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        if self.passivating {
            return;
        }
        self.restarts += 1;
        self.state = None;
        self.customer = None;
        tracing::warn!(appointment = %self.id, restarts = self.restarts, "appointment actor restarting from committed state");
    }
}

impl Handler<Deliver> for AppointmentActor {
    type Result = AtomicResponse<Self, Result<Option<AppointmentRecord>, EngineError>>;

    fn handle(
        &mut self,
        Deliver {
            command,
            inbox_id,
            origin,
        }: Deliver,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        self.last_used = Instant::now();
        let deps = self.deps.clone();
        // A new booking looks its customer up by phone first; steps that read the
        // customer's history (changed by their other appointments too) read it fresh.
        let lookup = match (&self.state, &command) {
            (None, AppointmentCommand::Book(booking)) => booking
                .customer
                .phone_e164
                .clone()
                .map(|phone| CustomerLookup::ByPhone(booking.tenant_id.clone(), phone)),
            (Some(state), AppointmentCommand::TimerFired { kind, .. })
                if FRESH_CUSTOMER_TIMERS.contains(&kind.as_str()) =>
            {
                Some(CustomerLookup::Fresh(state.customer_id.clone()))
            }
            _ => None,
        };
        let fresh = matches!(lookup, Some(CustomerLookup::Fresh(_)));
        let store = deps.store.clone();
        let find_customer = async move {
            match lookup {
                Some(CustomerLookup::ByPhone(tenant, phone)) => {
                    store.find_customer_by_phone(tenant, phone).await
                }
                Some(CustomerLookup::Fresh(id)) => store.load_customer(id).await,
                None => Ok(None),
            }
        };
        AtomicResponse::new(Box::pin(find_customer.into_actor(self).then(
            move |found, actor, ctx| {
                let decided = found.map_err(EngineError::from).and_then(|found| {
                    let customer = if fresh {
                        found.or_else(|| actor.customer.clone())
                    } else {
                        actor.customer.clone().or(found)
                    };
                    if fresh {
                        actor.customer = customer.clone();
                    }
                    actor.decide_safely(command, &origin, customer.as_ref(), ctx)
                });
                let store = actor.deps.store.clone();
                async move {
                    let mut decision = decided?;
                    decision.commit.inbox_processed.extend(inbox_id);
                    if !decision.commit.is_empty() {
                        store.commit(decision.commit.clone()).await?;
                    }
                    Ok(decision)
                }
                .into_actor(actor)
                .map(|committed: Result<Decision, EngineError>, actor, ctx| {
                    match committed {
                        Ok(decision) => Ok(actor.apply(decision)),
                        Err(error) => {
                            if matches!(error, EngineError::Store(StoreError::Conflict(_))) {
                                // Someone else wrote: reload before the next message.
                                // (`AlreadyApplied` wrote nothing: no reload needed.)
                                ctx.stop();
                            }
                            Err(error)
                        }
                    }
                })
            },
        )))
    }
}

impl AppointmentActor {
    /// Runs the pure decision; a panic stops the actor (the supervisor restarts it from
    /// committed state) and answers with a retryable error.
    fn decide_safely(
        &mut self,
        command: AppointmentCommand,
        origin: &Origin,
        customer: Option<&CustomerRecord>,
        ctx: &mut Context<Self>,
    ) -> Result<Decision, EngineError> {
        let now = self.deps.clock.now();
        let state = self.state.as_ref();
        let deps = &self.deps;
        let id = self.id.as_str();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let context = DecideContext {
                now,
                settings: &deps.settings,
                ids: deps.ids.as_ref(),
                appointment_id: id,
                correlation_id: origin.correlation_id.as_deref(),
                causation_id: origin.causation_id.as_deref(),
            };
            decide(state, customer, command, &context)
        }));
        match outcome {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(appointment = %self.id, "decision panicked; restarting from committed state");
                ctx.stop();
                Err(EngineError::ActorUnavailable)
            }
        }
    }

    /// Adopts a committed decision as the in-memory state and tells the timer service.
    fn apply(&mut self, decision: Decision) -> Option<AppointmentRecord> {
        if let Some(CustomerWrite::Upsert(customer)) = &decision.commit.customer {
            self.customer = Some(customer.clone());
        }
        if let Some(timers) = &self.deps.timers {
            let commit = &decision.commit;
            if !commit.set_timers.is_empty() || !commit.cancel_timers.is_empty() {
                timers.do_send(crate::timers::TimersChanged {
                    set: commit.set_timers.clone(),
                    removed: commit.cancel_timers.clone(),
                });
            }
        }
        let outbox = &decision.commit.outbox;
        let wakes = [
            (ProviderDomain::Messaging, &self.deps.messaging),
            (ProviderDomain::Payment, &self.deps.payments),
        ];
        for (domain, supervisor) in wakes {
            if let (true, Some(supervisor)) =
                (outbox.iter().any(|o| o.domain == domain), supervisor)
            {
                supervisor.do_send(crate::supervisors::OutboxChanged);
            }
        }
        if let Some(record) = decision.record {
            self.state = Some(record);
        }
        self.state.clone()
    }
}

impl Handler<Inspect> for AppointmentActor {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(ActorSnapshot {
            appointment_id: self.id.clone(),
            state: self.state.clone(),
            restarts: self.restarts,
        })
    }
}

impl Handler<Passivate> for AppointmentActor {
    type Result = ();

    fn handle(&mut self, _: Passivate, ctx: &mut Self::Context) {
        self.passivating = true;
        ctx.stop();
    }
}
