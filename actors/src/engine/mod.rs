//! The engine: appointment actors behind a directory, driven by commands and durable
//! timers, deciding with the pure [`decide`] core and committing through the `Store`.

pub mod appointment_actor;
pub mod commands;
pub mod decide;
pub mod deposit;
pub mod directory;
pub mod error;
pub mod inbox;
pub mod messages;
pub mod origin;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::ports::clock::Clock;
use crate::ports::ids::IdGen;
use crate::ports::providers::{MessagingProvider, PaymentProvider};
use crate::ports::store::{AppointmentRecord, InboxAccept, NewInbox, Store};
use crate::resilience::token_bucket::TokenBucket;
use crate::supervisors::{MessagingSupervisor, OutboxChanged, PaymentSupervisor};
use crate::timers::{TimerService, TimersChanged};
pub use commands::{Actor as ChangedBy, AppointmentCommand, Booking, CustomerInfo};
pub use decide::{EngineSettings, ReminderRule};
pub use directory::{
    AppointmentView, Directory, Evict, InspectActor, ListActors, LiveActor, Route,
};
pub use error::EngineError;
pub use inbox::{InboxAccepted, InboxProcessor, InboxWork};
pub use origin::Origin;

/// Stops an engine component (the directory stops every appointment actor with it).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown;

/// What every engine component shares.
pub struct EngineDeps {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub settings: EngineSettings,
    /// Where actors report timer changes (absent in tests that drive timers by hand).
    pub timers: Option<Recipient<TimersChanged>>,
    /// Where actors report new messaging outbox work.
    pub messaging: Option<Recipient<OutboxChanged>>,
    /// Where actors report new payment outbox work (when payments are configured).
    pub payments: Option<Recipient<OutboxChanged>>,
}

/// The ports a running engine uses.
#[derive(Clone)]
pub struct EnginePorts {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub messaging: Arc<dyn MessagingProvider>,
}

/// Tunables of the running engine (not business rules).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The tenant whose provider accounts the supervisors use.
    pub tenant_id: String,
    /// Messages per second the sender number allows (`ARO_TWILIO_RATE`).
    pub messaging_rate_per_sec: f64,
    /// Seed of the retry jitter (fixed in tests for reproducibility).
    pub seed: u64,
    /// An actor idle this long (real time) is passivated.
    pub idle_timeout: Duration,
    /// Timers due within this window are held in memory.
    pub timer_window: chrono::Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            tenant_id: "default".to_string(),
            messaging_rate_per_sec: 1.0,
            seed: 0x5eed,
            idle_timeout: Duration::from_secs(300),
            timer_window: chrono::Duration::minutes(10),
        }
    }
}

/// A running engine: the directory, the timer service and the provider supervisors.
#[derive(Clone)]
pub struct Engine {
    pub directory: Addr<Directory>,
    pub timers: Addr<TimerService>,
    pub messaging: Addr<MessagingSupervisor>,
    /// Present when payments are configured.
    pub payments: Option<Addr<PaymentSupervisor>>,
    pub inbox: Addr<InboxProcessor>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    settings: Arc<EngineSettings>,
}

impl Engine {
    /// Starts the engine's actors on the current actix system.
    pub fn start(ports: EnginePorts, settings: EngineSettings, options: EngineOptions) -> Self {
        Self::start_with_payments(ports, None, settings, options)
    }

    /// [`Engine::start`], with a payment provider for deposits (SPEC §4).
    pub fn start_with_payments(
        ports: EnginePorts,
        payments: Option<Arc<dyn PaymentProvider>>,
        settings: EngineSettings,
        options: EngineOptions,
    ) -> Self {
        // The timer service and the supervisors need the directory, and the actors need
        // them: create their contexts first, start them once the directory exists.
        let timer_ctx = Context::<TimerService>::new();
        let messaging_ctx = Context::<MessagingSupervisor>::new();
        let payments_ctx = payments
            .as_ref()
            .map(|_| Context::<PaymentSupervisor>::new());
        let deps = Arc::new(EngineDeps {
            store: ports.store.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            settings: settings.clone(),
            timers: Some(timer_ctx.address().recipient()),
            messaging: Some(messaging_ctx.address().recipient()),
            payments: payments_ctx.as_ref().map(|c| c.address().recipient()),
        });
        let tenant_id = options.tenant_id.clone();
        let directory = Directory::new(deps, options.idle_timeout).start();
        let timers = timer_ctx.run(TimerService::new(
            ports.store.clone(),
            ports.clock.clone(),
            directory.clone(),
            options.timer_window,
        ));
        let inbox = InboxProcessor::new(
            ports.store.clone(),
            ports.clock.clone(),
            ports.ids.clone(),
            directory.clone(),
        )
        .start();
        let payments = match (payments_ctx, payments) {
            (Some(ctx), Some(provider)) => Some(ctx.run(PaymentSupervisor::new(
                tenant_id.clone(),
                ports.store.clone(),
                ports.clock.clone(),
                ports.ids.clone(),
                provider,
                inbox.clone(),
                options.seed,
            ))),
            _ => None,
        };
        let store = ports.store.clone();
        let clock = ports.clock.clone();
        let ids = ports.ids.clone();
        let bucket = TokenBucket::twilio(options.messaging_rate_per_sec, ports.clock.now());
        let shared_settings = Arc::new(settings.clone());
        let messaging = messaging_ctx.run(MessagingSupervisor::new(
            tenant_id,
            ports.store,
            ports.clock,
            ports.ids,
            ports.messaging,
            Some(directory.clone()),
            settings,
            bucket,
            options.seed,
        ));
        Self {
            directory,
            timers,
            messaging,
            payments,
            inbox,
            store,
            clock,
            ids,
            settings: shared_settings,
        }
    }

    /// The business rules the engine runs with (the pack, timings, business details).
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The engine's time (the `Clock` port: virtual in tests).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// A new id from the engine's generator.
    pub fn new_id(&self) -> String {
        self.ids.new_id()
    }

    /// Tells the messaging supervisor that outbox rows were committed outside an actor.
    pub fn outbox_changed(&self) {
        self.messaging.do_send(OutboxChanged);
    }

    /// Stops the engine's actors: timers first (nothing new fires), then the
    /// supervisor and the directory. Committed state is untouched; pending outbox rows
    /// and timers are picked up by the next start.
    pub async fn shutdown(&self) {
        let _ = self.timers.send(Shutdown).await;
        let _ = self.inbox.send(Shutdown).await;
        let _ = self.messaging.send(Shutdown).await;
        if let Some(payments) = &self.payments {
            let _ = payments.send(Shutdown).await;
        }
        let _ = self.directory.send(Shutdown).await;
    }

    /// Stops the live actors of `appointment_ids` once their mailboxes are drained, so
    /// that none keeps an in-memory copy of data changed underneath it (a rectified or
    /// erased customer); answers how many were live. Later commands reactivate them from
    /// committed state.
    pub async fn evict(&self, appointment_ids: Vec<String>) -> usize {
        self.directory
            .send(Evict(appointment_ids))
            .await
            .unwrap_or(0)
    }

    /// Records inbound work durably, then has it applied. `Accepted` means it survives
    /// a crash from now on (acknowledge the sender only after this returns);
    /// `Duplicate` means the same (tenant, source, dedup key) was recorded before and
    /// nothing new happens.
    pub async fn submit(
        &self,
        tenant_id: &str,
        source: &str,
        dedup_key: &str,
        work: InboxWork,
    ) -> Result<InboxAccept, EngineError> {
        let payload = serde_json::to_value(&work)
            .map_err(|e| EngineError::Invalid(format!("unserializable work: {e}")))?;
        let item = NewInbox {
            id: self.ids.new_id(),
            tenant_id: tenant_id.to_string(),
            source: source.to_string(),
            dedup_key: dedup_key.to_string(),
            payload,
            received_at: self.clock.now(),
        };
        let accepted = self.store.accept_inbox(item.clone()).await?;
        if accepted == InboxAccept::Accepted {
            self.inbox
                .do_send(InboxAccepted(crate::ports::store::InboxRecord {
                    item,
                    status: crate::ports::store::InboxStatus::Pending,
                    attempts: 0,
                    last_error: None,
                }));
        }
        Ok(accepted)
    }

    /// Creates or updates the appointment a booking describes.
    pub async fn book(&self, booking: Booking) -> Result<Option<AppointmentRecord>, EngineError> {
        let appointment_id =
            appointment_id_for(&booking.tenant_id, &booking.source, &booking.external_id);
        self.route(appointment_id, AppointmentCommand::Book(booking))
            .await
    }

    /// Sends `command` to the appointment `appointment_id`.
    pub async fn route(
        &self,
        appointment_id: String,
        command: AppointmentCommand,
    ) -> Result<Option<AppointmentRecord>, EngineError> {
        self.route_from(appointment_id, command, Origin::default())
            .await
    }

    /// [`Engine::route`] with what caused the command, for its events' metadata.
    pub async fn route_from(
        &self,
        appointment_id: String,
        command: AppointmentCommand,
        origin: Origin,
    ) -> Result<Option<AppointmentRecord>, EngineError> {
        self.directory
            .send(Route {
                appointment_id,
                command,
                inbox_id: None,
                origin,
            })
            .await
            .unwrap_or(Err(EngineError::ActorUnavailable))
    }
}

/// The appointment id for a booking system's appointment: derived (UUIDv5), so that
/// concurrent deliveries about one appointment reach the same actor.
pub fn appointment_id_for(tenant_id: &str, source: &str, external_id: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a1f_7c52_93d4_4e0b_b1a8_0f3e_2d57_c9a4);
    uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("{tenant_id}\u{1f}{source}\u{1f}{external_id}").as_bytes(),
    )
    .to_string()
}
