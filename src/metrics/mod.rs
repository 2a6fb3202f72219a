//! Business metrics computed from the event log (SPEC §7). Not the Prometheus
//! endpoint (that is `http::metrics`).

pub mod business;
