//! ARO's core engine: appointment and workflow state machines, actors, supervisors,
//! timers, guardrails, and the ports (traits) through which it reaches storage,
//! providers and the clock.
//!
//! This crate performs no I/O of its own and must not depend on actix-web, awc or
//! diesel; `scripts/test` enforces that with `cargo tree`.

pub mod classify;
pub mod domain;
pub mod engine;
pub mod ports;
pub mod profile;
pub mod resilience;
pub mod supervisors;
pub mod testing;
pub mod timers;
