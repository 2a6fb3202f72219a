//! Hosts the `actors` engine inside the daemon: builds its ports from the daemon's parts
//! (the diesel store with group commit, the system clock, UUIDv7 ids, the messaging
//! provider the configuration selects) and its settings from the configuration.

use std::sync::Arc;

use actors::domain::quiet_hours::QuietWindow;
use actors::engine::messages::BusinessInfo;
use actors::engine::{Engine, EngineOptions, EnginePorts, EngineSettings};
use actors::ports::clock::Clock;
use actors::ports::ids::UuidV7;

use crate::config::{Config, QuietHours};
use crate::providers::stripe::{StripePayments, StripeSettings};
use crate::providers::{SandboxMessaging, SandboxPayments, TwilioMessaging, TwilioSettings};
use crate::store::{tenant_queries::DEFAULT_TENANT, Database, DieselStore};
use actors::ports::providers::{MessagingProvider, PaymentProvider};

/// The engine's business rules: the profile pack's, with the configuration's quiet
/// hours (when set) and the business's details.
pub fn engine_settings(config: &Config) -> EngineSettings {
    let quiet_hours = match config.quiet_hours {
        QuietHours::PackDefault => None,
        QuietHours::Off => Some(None),
        QuietHours::Window { start, end } => Some(Some(QuietWindow { start, end })),
    };
    let business = BusinessInfo {
        name: config.business.name.clone(),
        phone: config.business.phone.clone(),
        review_url: config.business.review_url.as_ref().map(|u| u.to_string()),
        booking_url: config.business.booking_url.as_ref().map(|u| u.to_string()),
        currency: config.business.currency.clone(),
    };
    EngineSettings::from_pack(
        (*config.pack).clone(),
        business,
        config.timezone,
        quiet_hours,
    )
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

/// How long one Stripe request may take before its outcome counts as unknown.
const STRIPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How deposits are paid, if they are asked for at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentsMode {
    /// Stripe payment links.
    Stripe,
    /// Links to the daemon's own sandbox pay page: the whole install is a trial (no
    /// Stripe key and messaging in the sandbox too), so the deposit flow can be tried.
    Sandbox,
    /// No deposits: messaging reaches real customers but there is no Stripe key, and a
    /// made-up link must never reach a real customer (SPEC §4: deposits "when payments
    /// are configured").
    Off,
}

/// Which [`PaymentsMode`] `config` means.
pub fn payments_mode(config: &Config) -> PaymentsMode {
    if config.stripe.secret_key.is_some() {
        PaymentsMode::Stripe
    } else if config.twilio.auth_token.is_none() {
        PaymentsMode::Sandbox
    } else {
        PaymentsMode::Off
    }
}

/// The payment provider of [`payments_mode`]; `None` when deposits are off.
pub fn payment_provider(config: &Config) -> Option<Arc<dyn PaymentProvider>> {
    let stripe = &config.stripe;
    match payments_mode(config) {
        PaymentsMode::Stripe => {
            let key = stripe.secret_key.as_ref()?;
            tracing::info!(api_base = %stripe.api_base, "payments: Stripe");
            Some(Arc::new(StripePayments::new(StripeSettings {
                secret_key: key.expose().clone(),
                api_base: stripe.api_base.clone(),
                timeout: STRIPE_TIMEOUT,
            })))
        }
        PaymentsMode::Sandbox => {
            tracing::info!(
                "payments: sandbox (no Stripe key): deposit links point at /sandbox/pay"
            );
            Some(Arc::new(SandboxPayments::new(config.public_url.clone())))
        }
        PaymentsMode::Off => {
            tracing::warn!(
                "payments: off — messaging is live but ARO_STRIPE_SECRET_KEY is not set, so \
                 no deposit is asked for"
            );
            None
        }
    }
}

/// Starts the engine on the current actix system, on `clock`. Must run inside one.
pub fn start_engine(
    config: &Config,
    db: &Database,
    clock: Arc<dyn Clock>,
) -> std::io::Result<Engine> {
    let store = DieselStore::start(db.clone(), clock.clone())?;
    let messaging = messaging_provider(config, db);
    let payments = payment_provider(config);
    let mut settings = engine_settings(config);
    settings.deposits_enabled = payments.is_some();
    Ok(Engine::start_with_payments(
        EnginePorts {
            store: Arc::new(store),
            clock,
            ids: Arc::new(UuidV7),
            messaging,
        },
        payments,
        settings,
        EngineOptions {
            tenant_id: DEFAULT_TENANT.to_string(),
            messaging_rate_per_sec: config.twilio.rate,
            ..EngineOptions::default()
        },
    ))
}
