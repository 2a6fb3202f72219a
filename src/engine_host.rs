//! Hosts the `actors` engine inside the daemon: builds its ports from the daemon's parts
//! (the diesel store with group commit, the system clock, UUIDv7 ids, the messaging
//! provider the configuration selects) and its settings from the configuration.

use std::sync::Arc;

use actors::domain::quiet_hours::QuietWindow;
use actors::engine::{Engine, EngineOptions, EnginePorts, EngineSettings};
use actors::ports::clock::{Clock, SystemClock};
use actors::ports::ids::UuidV7;
use chrono::NaiveTime;

use crate::config::{Config, QuietHours};
use crate::providers::SandboxMessaging;
use crate::store::{tenant_queries::DEFAULT_TENANT, Database, DieselStore};

/// The quiet window when neither the configuration nor a profile pack sets one
/// (SPEC §5: messages only between 08:00 and 21:00).
fn default_quiet_window() -> QuietWindow {
    QuietWindow {
        start: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
        end: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
    }
}

/// The engine's business rules as configured.
pub fn engine_settings(config: &Config) -> EngineSettings {
    let quiet_hours = match config.quiet_hours {
        QuietHours::PackDefault => Some(default_quiet_window()),
        QuietHours::Off => None,
        QuietHours::Window { start, end } => Some(QuietWindow { start, end }),
    };
    EngineSettings {
        profile: config.profile.clone(),
        business_timezone: config.timezone,
        quiet_hours,
        ..EngineSettings::default()
    }
}

/// Starts the engine on the current actix system. Must run inside one.
pub fn start_engine(config: &Config, db: &Database) -> std::io::Result<Engine> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = DieselStore::start(db.clone(), clock.clone())?;
    let messaging = Arc::new(SandboxMessaging::new(
        db.clone(),
        DEFAULT_TENANT.to_string(),
    ));
    Ok(Engine::start(
        EnginePorts {
            store: Arc::new(store),
            clock,
            ids: Arc::new(UuidV7),
            messaging,
        },
        engine_settings(config),
        EngineOptions {
            tenant_id: DEFAULT_TENANT.to_string(),
            messaging_rate_per_sec: config.twilio.rate,
            ..EngineOptions::default()
        },
    ))
}
