//! ARO, the appointment no-show reducer: the daemon around the `actors` engine.
//!
//! `config` loads and validates configuration, `store` owns the database,
//! `engine_host` runs the engine on it, `providers` adapts the outside world, `http` the
//! HTTP surface, `webhooks` the signed inbound routes, `telemetry` logging, `app` assembles the running daemon and `cli` is
//! the `aro` command line.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod engine_host;
pub mod http;
pub mod providers;
pub mod store;
pub mod telemetry;
pub mod webhooks;
