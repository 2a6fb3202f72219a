//! The integration checks of `aro diagnose`: for each provider, sandbox (no
//! credentials) or configured; when configured, one cheap authenticated GET through the
//! adapters' HTTP plumbing (`providers::http`) tells reachability and whether the
//! credentials are accepted:
//!
//! - Twilio: `GET /2010-04-01/Accounts/{sid}.json`, basic auth (account SID, token);
//! - Stripe: `GET /v1/balance`, bearer secret key;
//! - Calendly: `GET /users/me`, bearer personal access token.
//!
//! A 401/403 is "credentials rejected" with the variable to set; the secret itself is
//! never shown. A provider's `Date` header is kept to compare clocks.

use std::time::{Duration, Instant};

use actix_web::http::header::ACCEPT;
use chrono::{DateTime, Utc};
use url::Url;

use super::host::ClockSample;
use super::Check;
use crate::config::Config;
use crate::providers::http::{http_client, Answer};

/// The longest one check may take, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One provider's check and, when it answered, its clock.
pub struct Probe {
    pub check: Check,
    pub clock: Option<ClockSample>,
}

/// How a request authenticates.
enum Auth<'a> {
    Basic { user: &'a str, password: &'a str },
    Bearer(&'a str),
}

/// One configured provider to call.
struct Target<'a> {
    id: &'static str,
    name: &'static str,
    url: Result<Url, String>,
    auth: Auth<'a>,
    /// The variables holding the credentials, for the recommendation.
    credential_vars: &'static str,
    /// The variable holding the API base.
    base_var: &'static str,
    /// Where the operator finds the right credentials.
    console: &'static str,
    clock_source: &'static str,
}

/// Checks Twilio, Stripe and Calendly, at the same time.
pub async fn check_all(config: &Config) -> Vec<Probe> {
    let twilio = async {
        match (&config.twilio.account_sid, &config.twilio.auth_token) {
            (Some(sid), Some(token)) => {
                probe(Target {
                    id: "integration.twilio",
                    name: "Twilio",
                    url: join(
                        &config.twilio.api_base,
                        &["2010-04-01", "Accounts", &format!("{sid}.json")],
                    ),
                    auth: Auth::Basic {
                        user: sid,
                        password: token.expose(),
                    },
                    credential_vars: "ARO_TWILIO_AUTH_TOKEN (and ARO_TWILIO_ACCOUNT_SID)",
                    base_var: "ARO_TWILIO_API_BASE",
                    console: "the Twilio console (Account → API keys & tokens)",
                    clock_source: "Twilio's clock",
                })
                .await
            }
            _ => sandbox(
                "integration.twilio",
                "sandbox (no ARO_TWILIO_AUTH_TOKEN): messages are only recorded, nothing reaches customers",
            ),
        }
    };
    let stripe = async {
        match &config.stripe.secret_key {
            Some(key) => {
                probe(Target {
                    id: "integration.stripe",
                    name: "Stripe",
                    url: join(&config.stripe.api_base, &["v1", "balance"]),
                    auth: Auth::Bearer(key.expose()),
                    credential_vars: "ARO_STRIPE_SECRET_KEY",
                    base_var: "ARO_STRIPE_API_BASE",
                    console: "the Stripe dashboard (Developers → API keys)",
                    clock_source: "Stripe's clock",
                })
                .await
            }
            None => sandbox(
                "integration.stripe",
                "sandbox (no ARO_STRIPE_SECRET_KEY): deposit links are not real",
            ),
        }
    };
    let calendly = async {
        match (&config.calendly.token, &config.calendly.signing_key) {
            (Some(token), _) => {
                probe(Target {
                    id: "integration.calendly",
                    name: "Calendly",
                    url: join(&config.calendly.api_base, &["users", "me"]),
                    auth: Auth::Bearer(token.expose()),
                    credential_vars: "ARO_CALENDLY_TOKEN",
                    base_var: "ARO_CALENDLY_API_BASE",
                    console: "Calendly (Integrations → API & Webhooks → personal access tokens)",
                    clock_source: "Calendly's clock",
                })
                .await
            }
            (None, Some(_)) => Probe {
                check: Check::ok(
                    "integration.calendly",
                    "webhooks configured (signing key set); no API token, so the API was not \
                     called (`aro sync calendly` needs ARO_CALENDLY_TOKEN)",
                ),
                clock: None,
            },
            (None, None) => sandbox(
                "integration.calendly",
                "sandbox (no ARO_CALENDLY_SIGNING_KEY / ARO_CALENDLY_TOKEN): no Calendly bookings arrive",
            ),
        }
    };
    let (a, b, c) = futures_util::future::join3(twilio, stripe, calendly).await;
    vec![a, b, c]
}

fn sandbox(id: &str, summary: &str) -> Probe {
    Probe {
        check: Check::ok(id, summary),
        clock: None,
    }
}

/// `base` with `segments` appended, each escaped.
fn join(base: &Url, segments: &[&str]) -> Result<Url, String> {
    let mut url = base.clone();
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|()| format!("{base} cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

async fn probe(target: Target<'_>) -> Probe {
    let id = target.id;
    let name = target.name;
    let base_hint = format!(
        "check the network path to {name} (DNS, firewall, proxy) and {}",
        target.base_var
    );
    let url = match target.url {
        Ok(url) => url,
        Err(why) => {
            return Probe {
                check: Check::fail(id, format!("configured, bad API base: {why}"), base_hint),
                clock: None,
            }
        }
    };
    let request = http_client(TIMEOUT)
        .get(url.as_str())
        .insert_header((ACCEPT, "application/json"));
    let request = match target.auth {
        Auth::Basic { user, password } => request.basic_auth(user, password),
        Auth::Bearer(token) => request.bearer_auth(token),
    };
    let started = Instant::now();
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            return Probe {
                check: Check::fail(
                    id,
                    format!("configured, not reachable at {}: {e}", host_of(&url)),
                    base_hint,
                ),
                clock: None,
            }
        }
    };
    let answer = Answer::read(response).await;
    let took = started.elapsed().as_millis();
    let clock = answer
        .header("date")
        .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
        .map(|d| ClockSample::now(target.clock_source, d.with_timezone(&Utc)));
    let status = answer.status;
    let check = match status {
        200..=299 => Check::ok(
            id,
            format!("configured, reachable, credentials accepted (HTTP {status}, {took} ms)"),
        ),
        401 | 403 => Check::fail(
            id,
            format!("configured, credentials rejected (HTTP {status})"),
            format!(
                "set {} to the values in {}; the current value is wrong, revoked or for \
                 another account",
                target.credential_vars, target.console
            ),
        ),
        300..=399 => Check::fail(
            id,
            format!("configured, answered with a redirect (HTTP {status})"),
            format!(
                "{} must be the API's own address (redirects are not followed: they would \
                 carry the credentials elsewhere)",
                target.base_var
            ),
        ),
        429 => Check::warn(
            id,
            "configured, reachable, rate limited (HTTP 429): credentials not verified",
            "run diagnose again in a minute",
        ),
        500..=599 => Check::warn(
            id,
            format!("configured, reachable, {name} answered HTTP {status}"),
            format!("a problem on {name}'s side: check its status page and try again later"),
        ),
        _ => Check::fail(
            id,
            format!("configured, unexpected answer HTTP {status}"),
            format!(
                "check {} and {}: the address or account is not what {name} expects",
                target.base_var, target.credential_vars
            ),
        ),
    };
    Probe { check, clock }
}

/// `scheme://host:port` of `url`, without any path (which might name an account).
fn host_of(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_path("");
    shown.set_query(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_appended_and_escaped() {
        let base = Url::parse("https://api.twilio.com").expect("url");
        assert_eq!(
            join(&base, &["2010-04-01", "Accounts", "AC1.json"])
                .expect("url")
                .as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC1.json"
        );
        let proxied = Url::parse("http://127.0.0.1:9/stripe/?x=1").expect("url");
        assert_eq!(
            join(&proxied, &["v1", "balance"]).expect("url").as_str(),
            "http://127.0.0.1:9/stripe/v1/balance"
        );
        assert_eq!(
            join(&base, &["users", "a/b"]).expect("url").as_str(),
            "https://api.twilio.com/users/a%2Fb"
        );
    }

    #[test]
    fn hosts_are_shown_without_path_or_credentials() {
        let url = Url::parse("https://u:p@api.example.com:8443/2010-04-01/Accounts/AC1.json?q=1")
            .expect("url");
        assert_eq!(host_of(&url), "https://api.example.com:8443/");
    }
}
