//! Settings, read-only: each integration in sandbox or live mode, the profile pack in
//! force, and the effective configuration with every secret masked (`Secret`'s display
//! is the mask `aro config show` prints; a PostgreSQL URL is not shown at all).
//!
//! `GET /dashboard/settings` (viewer).

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::error::DashboardError;
use super::layout::{badge, html_response, page, Flash, Frame, Nav};
use super::session::Viewer;
use crate::config::{Config, DatabaseUrl, QuietHours, Secret};
use crate::http::AppState;

/// One integration: name, mode and what it means.
struct Integration {
    name: &'static str,
    live: bool,
    live_text: &'static str,
    sandbox_text: &'static str,
}

fn integrations(config: &Config) -> Vec<Integration> {
    vec![
        Integration {
            name: "Twilio (messaging)",
            live: config.twilio.auth_token.is_some(),
            live_text: "messages are sent through Twilio",
            sandbox_text:
                "messages are recorded and shown under Messages; replies can be typed there",
        },
        Integration {
            name: "Stripe (deposits)",
            live: config.stripe.secret_key.is_some(),
            live_text: "payment links are created with Stripe",
            sandbox_text: "no payment links are created",
        },
        Integration {
            name: "Calendly (bookings)",
            live: config.calendly.signing_key.is_some() || config.calendly.token.is_some(),
            live_text: "webhooks verified, events synced",
            sandbox_text: "no Calendly account configured",
        },
        Integration {
            name: "Booking webhook",
            live: config.booking.webhook_secret.is_some(),
            live_text: "POST /webhooks/booking is open (signed)",
            sandbox_text: "POST /webhooks/booking is disabled",
        },
        Integration {
            name: "LLM classifier",
            live: config.llm.api_base.is_some(),
            live_text: "replies the local classifier is unsure of go to the LLM",
            sandbox_text: "replies are classified locally only",
        },
    ]
}

/// A secret as configuration output shows it: the mask when set, nothing otherwise.
fn secret(value: Option<&Secret<String>>) -> String {
    value.map_or_else(String::new, ToString::to_string)
}

/// The configuration as `key = value` rows, secrets masked.
fn settings(config: &Config) -> Vec<(&'static str, String)> {
    let database = match &config.database.url {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        DatabaseUrl::Postgres(url) => format!("postgres (URL {url})"),
    };
    let quiet = match &config.quiet_hours {
        QuietHours::PackDefault => "the pack's".to_string(),
        QuietHours::Off => "off".to_string(),
        QuietHours::Window { start, end } => {
            format!("{}-{}", start.format("%H:%M"), end.format("%H:%M"))
        }
    };
    let url = |u: Option<&url::Url>| u.map_or_else(String::new, ToString::to_string);
    vec![
        ("listen", config.listen.to_string()),
        ("public_url", config.public_url.to_string()),
        ("data_dir", config.data_dir.display().to_string()),
        ("database.url", database),
        ("database.pool_size", config.database.pool_size.to_string()),
        ("profile", config.profile.clone()),
        ("timezone", config.timezone.name().to_string()),
        ("quiet_hours", quiet),
        (
            "master_key",
            config.master_key.as_ref().map_or_else(
                || "key file in the data directory".to_string(),
                ToString::to_string,
            ),
        ),
        ("business.name", config.business.name.clone()),
        (
            "business.phone",
            config.business.phone.clone().unwrap_or_default(),
        ),
        ("business.country", config.business.country.clone()),
        ("business.currency", config.business.currency.clone()),
        (
            "business.review_url",
            url(config.business.review_url.as_ref()),
        ),
        (
            "business.booking_url",
            url(config.business.booking_url.as_ref()),
        ),
        (
            "twilio.account_sid",
            config.twilio.account_sid.clone().unwrap_or_default(),
        ),
        (
            "twilio.auth_token",
            secret(config.twilio.auth_token.as_ref()),
        ),
        (
            "twilio.from",
            config.twilio.from.clone().unwrap_or_default(),
        ),
        ("twilio.api_base", config.twilio.api_base.to_string()),
        ("twilio.rate", config.twilio.rate.to_string()),
        (
            "stripe.secret_key",
            secret(config.stripe.secret_key.as_ref()),
        ),
        (
            "stripe.webhook_secret",
            secret(config.stripe.webhook_secret.as_ref()),
        ),
        ("stripe.api_base", config.stripe.api_base.to_string()),
        (
            "calendly.signing_key",
            secret(config.calendly.signing_key.as_ref()),
        ),
        ("calendly.token", secret(config.calendly.token.as_ref())),
        ("calendly.api_base", config.calendly.api_base.to_string()),
        (
            "booking.webhook_secret",
            secret(config.booking.webhook_secret.as_ref()),
        ),
        ("llm.api_base", url(config.llm.api_base.as_ref())),
        ("llm.api_key", secret(config.llm.api_key.as_ref())),
        ("llm.model", config.llm.model.clone().unwrap_or_default()),
        ("llm.monthly_budget", config.llm.monthly_budget.to_string()),
        ("backup.daily", config.backup.daily.to_string()),
        (
            "http.max_body_bytes",
            config.http.max_body_bytes.to_string(),
        ),
        ("log.level", config.log.level.clone()),
    ]
}

fn pack(config: &Config) -> Markup {
    let pack = &config.pack;
    let policy = &pack.policy;
    html! {
        dl.facts {
            dt { "Pack" } dd #pack-name { (pack.name) }
            dt { "Customers are" } dd { (pack.terminology.customer) }
            dt { "Appointments are" } dd { (pack.terminology.appointment) }
            dt { "Message cap" } dd { (policy.message_cap) " per customer per 24 h" }
            dt { "Quiet hours" } dd { (if policy.quiet_hours.is_some() { "yes" } else { "none" }) }
            dt { "Opt-out footer" } dd { (policy.opt_out_footer) }
            dt { "Deposit" } dd {
                "risk ≥ " (policy.deposit.risk_threshold) " or "
                (policy.deposit.no_show_threshold) "+ no-shows: "
                (super::format::money(policy.deposit.amount_cents, Some(&config.business.currency)))
            }
        }
    }
}

/// `GET /dashboard/settings`.
pub async fn page_view(
    viewer: Viewer,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashboardError> {
    let config = &state.config;
    let body = html! {
        h2 { "Integrations" }
        table.list #integrations {
            thead { tr { th { "Integration" } th { "Mode" } th { "" } } }
            tbody {
                @for i in integrations(config) {
                    tr {
                        td data-label="Integration" { (i.name) }
                        td data-label="Mode" { (badge(if i.live { "live" } else { "sandbox" })) }
                        td data-label="Means" { (if i.live { i.live_text } else { i.sandbox_text }) }
                    }
                }
            }
        }
        h2 { "Profile pack" }
        section.panel { (pack(config)) }
        h2 { "Configuration" }
        p.muted { "Effective values (file, then environment, over the defaults). Secrets show as "
            code { (crate::config::MASK) } " when set; change them with " code { "aro secrets" }
            " or the environment." }
        table.list #configuration {
            thead { tr { th { "Key" } th { "Value" } } }
            tbody {
                @for (key, value) in settings(config) {
                    tr { td.mono data-label="Key" { (key) } td.mono data-label="Value" { (value) } }
                }
            }
        }
    };
    Ok(html_response(page(
        Frame {
            principal: &viewer,
            active: Nav::Settings,
            title: "Settings",
            flash: Flash::of(&req),
        },
        body,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSources;

    #[test]
    fn secrets_are_masked_and_modes_follow_credentials() {
        let env = [
            (
                "ARO_TWILIO_ACCOUNT_SID",
                "AC0123456789abcdef0123456789abcdef",
            ),
            ("ARO_TWILIO_AUTH_TOKEN", "twilio-token-value-xyz"),
            ("ARO_TWILIO_FROM", "+15550001111"),
            ("ARO_BOOKING_WEBHOOK_SECRET", "booking-secret-value"),
            ("ARO_DATA_DIR", "/tmp/aro-settings-test"),
        ];
        let sources = ConfigSources {
            file: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let config = Config::load(&sources).expect("valid").config;
        let rows = settings(&config);
        let text = format!("{rows:?}");
        assert!(!text.contains("twilio-token-value-xyz"), "{text}");
        assert!(!text.contains("booking-secret-value"), "{text}");
        let value = |key: &str| {
            rows.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .expect("key listed")
        };
        assert_eq!(value("twilio.auth_token"), crate::config::MASK);
        assert_eq!(value("stripe.secret_key"), "");
        let modes: Vec<(&str, bool)> = integrations(&config)
            .iter()
            .map(|i| (i.name, i.live))
            .collect();
        assert!(modes.contains(&("Twilio (messaging)", true)));
        assert!(modes.contains(&("Stripe (deposits)", false)));
    }
}
