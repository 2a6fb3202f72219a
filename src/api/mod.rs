//! The public HTTP APIs (SPEC §7).
//!
//! - [`commands`]: the Command API, `POST /v1/commands` (idempotent, durable) and
//!   `GET /v1/commands/{id}`; its queries in [`command_queries`].
//! - [`events`]: the Event API, `GET /v1/events` (pages after a cursor) and
//!   `GET /v1/events/stream` (server-sent events); the event log read in
//!   [`event_queries`].
//! - [`subscriptions`]: signed webhook sinks for events (`/v1/subscriptions`), their
//!   queries in [`subscription_queries`] and the background [`deliverer`].
//! - [`openapi`]: the OpenAPI document of all of it, `GET /v1/openapi.json`.
//! - [`admin`]: the Admin API under `/v1/admin` (registered on its own).

pub mod admin;
pub mod command_queries;
pub mod commands;
pub mod deliverer;
pub mod event_queries;
pub mod events;
pub mod openapi;
pub mod subscription_queries;
pub mod subscriptions;

use actix_web::web;

use crate::http::AppState;

/// Registers the Command API, the Event API and the subscription routes (not the
/// Admin API: see [`admin`]).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(commands::configure)
        .configure(events::configure)
        .configure(subscriptions::configure)
        .configure(openapi::configure);
}

/// Starts the APIs' background work on the current actix system: subscription
/// deliveries, the pruning of expired idempotency keys, and finishing commands whose
/// hand-on to the engine was interrupted.
pub fn start_background(state: web::Data<AppState>) {
    deliverer::start(state.config.clone(), state.db.clone());
    actix_web::rt::spawn(commands::resume_pending(state));
}
