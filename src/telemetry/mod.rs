//! Logging: structured JSON (or pretty) lines on stderr through `tracing`, every line
//! passed through the [`redact::Redactor`]. Request spans carry the request id and the
//! correlation id, so every line logged while handling a request names both.

pub mod redact;

use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};
pub use redact::{mask_phone, Redactor};

/// Installs the global subscriber for `config`. Safe to call more than once: later
/// calls (tests starting several servers in one process) keep the first subscriber.
pub fn init(config: &Config) {
    let redactor = Arc::new(Redactor::new(config.secret_values()));
    let writer = redact::RedactingMakeWriter::new(std::io::stderr, redactor);
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(true);
    let result = match config.log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    // An existing global subscriber is fine: it was installed by an earlier call.
    drop(result);
}
