//! ARO, the appointment no-show reducer: the daemon around the `actors` engine.
//!
//! `config` loads and validates configuration, `store` owns the database,
//! `engine_host` runs the engine on it, `providers` adapts the outside world, `http` the
//! HTTP surface, `auth` users, sessions, tokens and secrets, `audit` the hash-chained
//! audit log, `webhooks` the signed inbound routes, `telemetry` logging, `crypto` the
//! master key and sealing, `ops` backup and restore, `app` assembles the running daemon
//! and `cli` is the `aro` command line.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod dashboard;
pub mod engine_host;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod privacy;
pub mod providers;
pub mod service_notify;
pub mod store;
pub mod telemetry;
pub mod webhooks;
