//! `aro sync calendly --from … --to … --owner …`: fetches the invitees of the events
//! starting in a range from Calendly and records each in the inbox exactly as the
//! webhook would (same [`intent`] and [`plan`], so reschedule chains reach one
//! appointment), under a key made of the invitee URI, "sync", its state and the start
//! time: running it again records nothing new.
//!
//! It records durably and does not apply: the daemon applies pending inbox items (at
//! start, and within 30 s while running) through the one engine that owns the
//! appointments (two engines on one database would race on timers and actor state).
//!
//! Progress (pages and invitees) shows on stderr when it is a terminal.

use std::time::Duration;

use actors::ports::providers::{BookedEvent, BookedPage, BookingProvider};
use actors::ports::store::{InboxAccept, NewInbox};
use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use url::Url;

use super::SyncAction;
use crate::config::Config;
use crate::ops::backup::Progress;
use crate::providers::calendly::{
    dedup_key, parse_invitee, CalendlyBooking, CalendlyEvent, CalendlyPayloadError,
    CalendlySettings,
};
use crate::providers::pacing::Pacer;
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::store::{inbox_queries, Database};
use crate::webhooks::calendly::{intent, plan, Intent, Planned, SOURCE};
use actors::resilience::token_bucket::TokenBucket;

/// The longest one Calendly request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests Calendly may take at once before the hourly pace applies (SPEC §6).
const CALENDLY_BURST: f64 = 20.0;
/// Attempts per page (SPEC §6, booking: 3, exponential 1–60 s).
const ATTEMPTS: u32 = 3;
/// Pages followed before giving up (100 events each).
const MAX_PAGES: usize = 10_000;

pub fn run(config: Config, action: SyncAction) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    match action {
        SyncAction::Calendly {
            from,
            to,
            owner,
            requests_per_hour,
        } => {
            let from = parse_bound(&from, false).context("--from")?;
            let to = parse_bound(&to, true).context("--to")?;
            if from >= to {
                bail!("--from must be before --to");
            }
            if !(requests_per_hour.is_finite() && requests_per_hour > 0.0) {
                bail!("--requests-per-hour must be a positive number");
            }
            actix_web::rt::System::new().block_on(sync_calendly(
                config,
                from,
                to,
                owner,
                requests_per_hour,
            ))
        }
    }
}

/// An RFC 3339 instant, or a date (`2026-03-01`): its first instant (UTC) as a start,
/// the next day's as an end, so `--to` includes the whole day it names.
pub fn parse_bound(text: &str, end: bool) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(at.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .with_context(|| format!("{text:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"))?;
    let date = if end {
        date.succ_opt().context("a date past the calendar's end")?
    } else {
        date
    };
    Ok(date.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    fetched: usize,
    accepted: usize,
    duplicate: usize,
    ignored: usize,
    invalid: usize,
}

async fn sync_calendly(
    config: Config,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    owner: String,
    requests_per_hour: f64,
) -> anyhow::Result<()> {
    let Some(token) = config.calendly.token.as_ref() else {
        bail!("calendly.token is not set: set ARO_CALENDLY_TOKEN");
    };
    Url::parse(&owner).context("--owner must be a Calendly user or organization URI")?;
    let provider = CalendlyBooking::new(CalendlySettings {
        token: token.expose().clone(),
        api_base: config.calendly.api_base.clone(),
        organization_or_user_uri: owner,
        timeout: REQUEST_TIMEOUT,
    })
    .with_pacer(Pacer::new(TokenBucket::new(
        CALENDLY_BURST,
        requests_per_hour / 3600.0,
        Utc::now(),
    )));
    let db = crate::app::prepare_database(&config).await?;
    let country = config.business.country.clone();
    let mut counts = Counts::default();
    let mut page = None;
    let bar = Progress::stderr().spinner("Calendly: page 1");
    for number in 1..=MAX_PAGES {
        bar.set_message(format!(
            "Calendly: page {number}, {} invitees",
            counts.fetched
        ));
        let fetched = fetch_page(&provider, from, to, page.take()).await?;
        for event in &fetched.events {
            counts.fetched += 1;
            bar.set_message(format!(
                "Calendly: page {number}, {} invitees",
                counts.fetched
            ));
            match normalize(event, &country) {
                Ok((key, intent)) => match record(&db, &key, intent).await? {
                    Some(InboxAccept::Accepted) => counts.accepted += 1,
                    Some(InboxAccept::Duplicate) => counts.duplicate += 1,
                    None => counts.ignored += 1,
                },
                Err(error) => {
                    tracing::warn!(%error, "calendly sync: an invitee cannot be read; skipped");
                    counts.invalid += 1;
                }
            }
        }
        page = fetched.next_page;
        if page.is_none() {
            break;
        }
    }
    bar.finish_and_clear();
    println!(
        "fetched {}, accepted {}, duplicate {}, ignored {}, invalid {}",
        counts.fetched, counts.accepted, counts.duplicate, counts.ignored, counts.invalid
    );
    if counts.accepted > 0 {
        println!(
            "recorded in the inbox: a running daemon applies it within 30 s, \
             a stopped one when it starts"
        );
    }
    Ok(())
}

/// One page, retried on timeouts, network errors, 429 (after its wait) and 5xx.
async fn fetch_page(
    provider: &CalendlyBooking,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    page: Option<String>,
) -> anyhow::Result<BookedPage> {
    let mut attempt = 1;
    loop {
        match provider.fetch_events(from, to, page.clone()).await {
            Ok(fetched) => return Ok(fetched),
            Err(error) if error.class.is_retryable() && attempt < ATTEMPTS => {
                let backoff = Duration::from_secs(1 << (attempt - 1));
                let wait = match &error.class {
                    actors::resilience::backoff::ErrorClass::RateLimited {
                        retry_after: Some(after),
                    } => (*after).max(backoff),
                    _ => backoff,
                }
                .min(Duration::from_secs(60));
                tracing::warn!(%error, attempt, wait_secs = wait.as_secs(), "calendly sync: retrying a page");
                actix_web::rt::time::sleep(wait).await;
                attempt += 1;
            }
            Err(error) => bail!("calendly: {error}"),
        }
    }
}

/// The deduplication key and intent of one fetched invitee: an active one is created,
/// a canceled one (or one of a canceled event) canceled — or, when it was rescheduled,
/// replaced by its `new_invitee`.
fn normalize(event: &BookedEvent, country: &str) -> Result<(String, Intent), CalendlyPayloadError> {
    let invitee = parse_invitee(&event.payload, country)?;
    let (state, calendly_event) = if event.cancelled {
        let payload = &event.payload;
        let cancellation = payload
            .get("cancellation")
            .filter(|c| c.is_object())
            .or_else(|| {
                payload
                    .get("scheduled_event")
                    .and_then(|e| e.get("cancellation"))
            });
        let text = |value: Option<&Value>, key: &str| {
            value
                .and_then(|v| v.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let canceled = CalendlyEvent::InviteeCanceled {
            invitee_uri: invitee.invitee_uri,
            event_uri: invitee.event_uri,
            rescheduled: payload.get("rescheduled").and_then(Value::as_bool) == Some(true),
            new_invitee: text(Some(payload), "new_invitee"),
            canceled_by: text(cancellation, "canceled_by"),
            canceler_type: text(cancellation, "canceler_type"),
            reason: text(cancellation, "reason"),
        };
        ("sync:invitee.canceled", canceled)
    } else {
        (
            "sync:invitee.created",
            CalendlyEvent::InviteeCreated(invitee),
        )
    };
    let key = dedup_key(state, &event.external_id, event.starts_at);
    Ok((key, intent(DEFAULT_TENANT, calendly_event)))
}

/// Records an intent's inbox items; `None` when it asks for nothing.
async fn record(db: &Database, key: &str, intent: Intent) -> anyhow::Result<Option<InboxAccept>> {
    if matches!(intent, Intent::Ignore(_)) {
        return Ok(None);
    }
    let key = key.to_string();
    let planned: Vec<Planned> = db
        .run(move |conn| Ok(plan(conn, DEFAULT_TENANT, &key, intent, Utc::now())?))
        .await?;
    let mut outcome = InboxAccept::Duplicate;
    for item in planned {
        let new = NewInbox {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: DEFAULT_TENANT.to_string(),
            source: SOURCE.to_string(),
            dedup_key: item.dedup_key,
            payload: serde_json::to_value(&item.work)?,
            received_at: Utc::now(),
        };
        let accepted = db
            .run(move |conn| Ok(inbox_queries::accept(conn, &new)))
            .await??;
        if accepted == InboxAccept::Accepted {
            outcome = InboxAccept::Accepted;
        }
    }
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_instants_or_whole_days() {
        assert_eq!(
            parse_bound("2026-03-01T10:00:00+01:00", false).expect("instant"),
            DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z").expect("time")
        );
        assert_eq!(
            parse_bound("2026-03-01", false).expect("date").to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_bound("2026-03-31", true).expect("date").to_rfc3339(),
            "2026-04-01T00:00:00+00:00"
        );
        assert!(parse_bound("yesterday", false).is_err());
    }
}
