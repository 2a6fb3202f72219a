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
use crate::providers::{SandboxMessaging, TwilioMessaging, TwilioSettings};
use crate::store::{tenant_queries::DEFAULT_TENANT, Database, DieselStore};
use actors::ports::providers::MessagingProvider;

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

/// How long one Twilio request may take before its outcome counts as unknown.
const TWILIO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Twilio when its credentials are configured, else the sandbox (SPEC §6).
pub fn messaging_provider(config: &Config, db: &Database) -> Arc<dyn MessagingProvider> {
    let twilio = &config.twilio;
    match (&twilio.account_sid, &twilio.auth_token, &twilio.from) {
        (Some(account_sid), Some(auth_token), Some(from)) => {
            let status_callback = config.public_url.join("webhooks/twilio/status").ok();
            tracing::info!(api_base = %twilio.api_base, "messaging: Twilio");
            Arc::new(TwilioMessaging::new(TwilioSettings {
                account_sid: account_sid.clone(),
                auth_token: auth_token.expose().clone(),
                from: from.clone(),
                api_base: twilio.api_base.clone(),
                status_callback,
                timeout: TWILIO_TIMEOUT,
            }))
        }
        _ => {
            tracing::info!("messaging: sandbox (no Twilio credentials)");
            Arc::new(SandboxMessaging::new(
                db.clone(),
                DEFAULT_TENANT.to_string(),
            ))
        }
    }
}

/// Starts the engine on the current actix system. Must run inside one.
pub fn start_engine(config: &Config, db: &Database) -> std::io::Result<Engine> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = DieselStore::start(db.clone(), clock.clone())?;
    let messaging = messaging_provider(config, db);
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
