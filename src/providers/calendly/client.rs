//! The engine's [`BookingProvider`] port over Calendly's v2 API: one page of scheduled
//! events in a time range, each with its invitees.
//!
//! A call is `GET {api_base}/scheduled_events?user=…|organization=…&min_start_time=…
//! &max_start_time=…&count=100&sort=start_time:asc[&page_token=…]` (canceled events
//! included), then for each event `GET {api_base}/scheduled_events/{uuid}/invitees
//! ?count=100` (following its own pages). Invitee URLs are built from `api_base` and
//! the event's UUID rather than taken from the answer, so the token is never sent to a
//! host named by a response. Every request carries `Authorization: Bearer <token>`.
//!
//! Each invitee becomes one [`BookedEvent`]: `external_id` is the invitee URI (the
//! webhook's key too), `cancelled` is the event's or the invitee's `status ==
//! "canceled"`, and `payload` is the Invitee resource with the Scheduled Event embedded
//! as `scheduled_event`: exactly a webhook payload's shape, so
//! [`super::payload::parse_invitee`] builds the booking from either. The next page is
//! `pagination.next_page_token`.
//!
//! A page of 100 events costs 101 requests or more; Calendly's limits and ARO's (SPEC:
//! 100/h burst 20) apply per request: an adapter given a [`Pacer`]
//! ([`CalendlyBooking::with_pacer`]) waits for a token before every request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::ACCEPT;
use actors::ports::providers::{BookedEvent, BookedPage, BookingProvider, ProviderError};
use actors::ports::BoxFuture;
use actors::resilience::backoff::ErrorClass;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::errors;
use crate::providers::http::{self as transport, Answer};
use crate::providers::pacing::Pacer;

const PROVIDER: &str = "calendly";
/// Calendly's largest page.
const PAGE_SIZE: &str = "100";
/// Invitee pages followed per event before giving up (100 invitees each).
const MAX_INVITEE_PAGES: usize = 20;

/// Credentials and scope for one Calendly account.
#[derive(Clone)]
pub struct CalendlySettings {
    /// A personal access token or OAuth access token.
    pub token: String,
    /// `https://api.calendly.com` in production; a fake's address in tests.
    pub api_base: Url,
    /// `https://api.calendly.com/organizations/…` (all members' events; needs an admin
    /// token) or `https://api.calendly.com/users/…` (one user's).
    pub organization_or_user_uri: String,
    /// The longest one request may take.
    pub timeout: Duration,
}

impl fmt::Debug for CalendlySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CalendlySettings")
            .field("token", &"********")
            .field("api_base", &self.api_base.as_str())
            .field("organization_or_user_uri", &self.organization_or_user_uri)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl CalendlySettings {
    /// The query parameter naming the scope: `organization` or `user`.
    fn scope_param(&self) -> &'static str {
        if self.organization_or_user_uri.contains("/organizations/") {
            "organization"
        } else {
            "user"
        }
    }
}

/// `{api_base}/` followed by `segments`, each escaped.
fn endpoint(api_base: &Url, segments: &[&str]) -> Result<Url, ProviderError> {
    let mut url = api_base.clone();
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|()| ProviderError {
            class: ErrorClass::ClientError,
            message: format!("calendly api_base {api_base} cannot take a path"),
            outcome_unknown: false,
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The list URL for one page of events.
fn events_url(
    settings: &CalendlySettings,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    page: Option<&str>,
) -> Result<Url, ProviderError> {
    let mut url = endpoint(&settings.api_base, &["scheduled_events"])?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair(settings.scope_param(), &settings.organization_or_user_uri)
            .append_pair("min_start_time", &utc(from))
            .append_pair("max_start_time", &utc(to))
            .append_pair("count", PAGE_SIZE)
            .append_pair("sort", "start_time:asc");
        if let Some(token) = page {
            query.append_pair("page_token", token);
        }
    }
    Ok(url)
}

/// The invitees URL of the event whose URI is `event_uri`.
fn invitees_url(
    settings: &CalendlySettings,
    event_uri: &str,
    page: Option<&str>,
) -> Result<Url, ProviderError> {
    let uuid = event_uri
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|u| !u.is_empty() && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .ok_or_else(|| ProviderError {
            class: ErrorClass::ServerError,
            message: "calendly: an event without a usable uri".to_string(),
            outcome_unknown: false,
        })?;
    let mut url = endpoint(&settings.api_base, &["scheduled_events", uuid, "invitees"])?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("count", PAGE_SIZE);
        if let Some(token) = page {
            query.append_pair("page_token", token);
        }
    }
    Ok(url)
}

#[derive(Debug, Default, Deserialize)]
struct Pagination {
    #[serde(default)]
    next_page_token: Option<String>,
}

/// A Calendly list answer.
#[derive(Debug, Deserialize)]
struct Collection {
    collection: Vec<Value>,
    #[serde(default)]
    pagination: Pagination,
}

/// The error for a non-2xx answer.
fn answer_error(answer: &Answer) -> ProviderError {
    if let Some(redirect) = answer.unexpected_redirect("calendly") {
        return redirect;
    }
    let parsed = answer
        .body
        .as_deref()
        .ok()
        .and_then(errors::CalendlyApiError::parse);
    let wait = answer
        .header("X-RateLimit-Reset")
        .and_then(|v| errors::parse_rate_limit_reset(v, Utc::now()))
        .or_else(|| transport::retry_after(&answer.headers));
    errors::from_response(answer.status, parsed.as_ref(), wait)
}

/// One authorised GET of a list, after its turn when paced.
async fn get_collection(
    client: &awc::Client,
    pacer: Option<&Pacer>,
    token: &str,
    url: &Url,
) -> Result<Collection, ProviderError> {
    if let Some(pacer) = pacer {
        pacer.wait_turn().await;
    }
    let response = client
        .get(url.as_str())
        .bearer_auth(token)
        .insert_header((ACCEPT, "application/json"))
        .send()
        .await
        .map_err(|e| transport::transport_error(PROVIDER, &e, false))?;
    let answer = Answer::read(response).await;
    if !answer.is_success() {
        return Err(answer_error(&answer));
    }
    answer.json::<Collection>(PROVIDER, false)
}

fn event_time(event: &Value, key: &str) -> Result<DateTime<Utc>, ProviderError> {
    event
        .get(key)
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ProviderError {
            class: ErrorClass::ServerError,
            message: format!("calendly: an event without a valid {key}"),
            outcome_unknown: false,
        })
}

fn is_canceled(resource: &Value) -> bool {
    resource.get("status").and_then(Value::as_str) == Some("canceled")
}

/// The invitees of one event as booked events.
async fn invitees_of(
    client: &awc::Client,
    pacer: Option<&Pacer>,
    settings: &CalendlySettings,
    event: &Value,
) -> Result<Vec<BookedEvent>, ProviderError> {
    let event_uri = event.get("uri").and_then(Value::as_str).unwrap_or("");
    let starts_at = event_time(event, "start_time")?;
    let ends_at = event_time(event, "end_time")?;
    let mut booked = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..MAX_INVITEE_PAGES {
        let url = invitees_url(settings, event_uri, page.as_deref())?;
        let invitees = get_collection(client, pacer, &settings.token, &url).await?;
        for mut invitee in invitees.collection {
            let Some(invitee_uri) = invitee
                .get("uri")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let cancelled = is_canceled(event) || is_canceled(&invitee);
            if let Value::Object(map) = &mut invitee {
                map.insert("scheduled_event".to_string(), event.clone());
            }
            booked.push(BookedEvent {
                external_id: invitee_uri,
                starts_at,
                ends_at,
                cancelled,
                payload: invitee,
            });
        }
        page = invitees.pagination.next_page_token;
        if page.is_none() {
            return Ok(booked);
        }
    }
    tracing::warn!(event = %event_uri, "calendly: invitee pages cut off");
    Ok(booked)
}

async fn fetch_now(
    settings: Arc<CalendlySettings>,
    pacer: Option<Arc<Pacer>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    page: Option<String>,
) -> Result<BookedPage, ProviderError> {
    let client = transport::http_client(settings.timeout);
    let url = events_url(&settings, from, to, page.as_deref())?;
    let pacer = pacer.as_deref();
    let events = get_collection(&client, pacer, &settings.token, &url).await?;
    let mut booked = Vec::new();
    for event in &events.collection {
        booked.extend(invitees_of(&client, pacer, &settings, event).await?);
    }
    tracing::debug!(
        events = events.collection.len(),
        invitees = booked.len(),
        more = events.pagination.next_page_token.is_some(),
        "calendly: fetched a page"
    );
    Ok(BookedPage {
        events: booked,
        next_page: events.pagination.next_page_token,
    })
}

/// The Calendly booking adapter. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct CalendlyBooking {
    settings: Arc<CalendlySettings>,
    pacer: Option<Arc<Pacer>>,
}

impl CalendlyBooking {
    pub fn new(settings: CalendlySettings) -> Self {
        Self {
            settings: Arc::new(settings),
            pacer: None,
        }
    }

    /// Every request waits for its turn with `pacer` (shared by the clones).
    pub fn with_pacer(mut self, pacer: Pacer) -> Self {
        self.pacer = Some(Arc::new(pacer));
        self
    }

    pub fn settings(&self) -> &CalendlySettings {
        &self.settings
    }
}

impl BookingProvider for CalendlyBooking {
    /// One page of events starting in `[from, to)` with their invitees; `page` is the
    /// previous answer's `next_page`.
    fn fetch_events(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: Option<String>,
    ) -> BoxFuture<'static, Result<BookedPage, ProviderError>> {
        let settings = Arc::clone(&self.settings);
        let pacer = self.pacer.clone();
        transport::on_local_set(
            PROVIDER,
            move || fetch_now(settings, pacer, from, to, page),
            false,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(scope: &str) -> CalendlySettings {
        CalendlySettings {
            token: "secret-token".to_string(),
            api_base: Url::parse("https://api.calendly.com").expect("url"),
            organization_or_user_uri: scope.to_string(),
            timeout: Duration::from_secs(10),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn list_url_names_the_scope_range_and_page() {
        let s = settings("https://api.calendly.com/organizations/ORG1");
        let url = events_url(
            &s,
            at("2026-03-01T00:00:00Z"),
            at("2026-04-01T00:00:00Z"),
            Some("tok 1"),
        )
        .expect("url");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(url.path(), "/scheduled_events");
        assert_eq!(
            get("organization"),
            Some("https://api.calendly.com/organizations/ORG1")
        );
        assert_eq!(get("user"), None);
        assert_eq!(get("min_start_time"), Some("2026-03-01T00:00:00.000000Z"));
        assert_eq!(get("max_start_time"), Some("2026-04-01T00:00:00.000000Z"));
        assert_eq!(get("count"), Some("100"));
        assert_eq!(get("page_token"), Some("tok 1"));

        let user = settings("https://api.calendly.com/users/U1");
        let url = events_url(
            &user,
            at("2026-03-01T00:00:00Z"),
            at("2026-03-02T00:00:00Z"),
            None,
        )
        .expect("url");
        assert!(url.query_pairs().any(|(k, _)| k == "user"));
        assert!(!url.query_pairs().any(|(k, _)| k == "page_token"));
    }

    #[test]
    fn invitees_url_uses_the_base_not_the_answers_host() {
        let s = settings("https://api.calendly.com/users/U1");
        let url =
            invitees_url(&s, "https://evil.example/scheduled_events/ABC-123", None).expect("url");
        assert_eq!(
            url.as_str(),
            "https://api.calendly.com/scheduled_events/ABC-123/invitees?count=100"
        );
        assert!(
            invitees_url(&s, "https://api.calendly.com/scheduled_events/../x?y", None).is_err()
        );
        assert!(invitees_url(&s, "", None).is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let shown = format!("{:?}", settings("https://api.calendly.com/users/U1"));
        assert!(!shown.contains("secret-token"));
    }
}
