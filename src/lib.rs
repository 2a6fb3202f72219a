//! ARO, the appointment no-show reducer: the daemon around the `actors` engine.
//!
//! `config` loads and validates configuration, `store` owns the database, `http` the
//! HTTP surface, `telemetry` logging, `app` assembles the running daemon and `cli` is
//! the `aro` command line.

pub mod app;
pub mod cli;
pub mod config;
pub mod http;
pub mod store;
pub mod telemetry;
