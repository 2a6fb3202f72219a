//! Calendly over real HTTP and Calendly's webhook bodies: `CalendlyBooking` syncing
//! from the fake Calendly across pages, its error classes, and parsing signed,
//! realistic deliveries (bookings, cancellations, a reschedule's two halves, no-shows)
//! including phone normalisation.

#[path = "fakes/calendly.rs"]
mod fake_calendly;

use std::collections::HashSet;
use std::time::Duration;

use actors::ports::providers::{BookedEvent, BookingProvider, ProviderError};
use actors::resilience::backoff::ErrorClass;
use aro::providers::calendly::{
    parse, parse_invitee, verify_signature, CalendlyBooking, CalendlyEvent, CalendlySettings,
    PhoneSource,
};
use aro::webhooks::signed_header::SignatureError;
use chrono::{DateTime, Utc};
use fake_calendly::{signed_webhook, Failure, FakeCalendly, FakeEvent, FakeInvitee, CALENDLY_API};
use url::Url;

const TOKEN: &str = "eyJraWQiOiJmYWtlLXBhdCJ9.fake-personal-access-token";
const ORG: &str = "https://api.calendly.com/organizations/ORG0000000000001";
const SIGNING_KEY: &str = "calendly-webhook-signing-key-0001";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn client(fake: &FakeCalendly, token: &str) -> CalendlyBooking {
    CalendlyBooking::new(CalendlySettings {
        token: token.to_string(),
        api_base: Url::parse(&fake.base_url()).expect("base url"),
        organization_or_user_uri: ORG.to_string(),
        timeout: Duration::from_secs(5),
    })
}

/// Every page from `from` to `to`.
async fn sync_all(
    client: &CalendlyBooking,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<BookedEvent>, usize), ProviderError> {
    let mut events = Vec::new();
    let mut page = None;
    let mut pages = 0;
    loop {
        let answer = client.fetch_events(from, to, page).await?;
        pages += 1;
        events.extend(answer.events);
        page = answer.next_page;
        if page.is_none() {
            return Ok((events, pages));
        }
        assert!(pages < 50, "pagination does not end");
    }
}

#[actix_rt::test]
async fn sync_across_pages_fetches_every_event_exactly_once() {
    let fake = FakeCalendly::start(TOKEN, ORG);
    let seeded = fake.seed(250, at("2026-03-02T09:00:00Z"));
    // Outside the range: never returned.
    fake.add_event(FakeEvent::new(
        "EVLATE",
        at("2026-06-01T09:00:00Z"),
        FakeInvitee::new("INVLATE", "Late Client", None),
    ));
    let client = client(&fake, TOKEN);

    let (events, pages) = sync_all(
        &client,
        at("2026-03-01T00:00:00Z"),
        at("2026-05-01T00:00:00Z"),
    )
    .await
    .expect("synced");

    assert_eq!(pages, 3, "250 events at 100 a page");
    assert_eq!(events.len(), 250);
    let ids: HashSet<&str> = events.iter().map(|e| e.external_id.as_str()).collect();
    assert_eq!(ids.len(), 250, "no event twice");
    let base = fake.base_url();
    for event in &seeded {
        let uri = event.invitee_uri(&base, &event.invitees[0]);
        let booked = events
            .iter()
            .find(|b| b.external_id == uri)
            .unwrap_or_else(|| panic!("{uri} missing"));
        assert_eq!(booked.starts_at, event.start);
        assert_eq!(booked.ends_at, event.end);
        assert_eq!(booked.cancelled, event.status == "canceled", "{uri}");
    }
    assert_eq!(events.iter().filter(|e| e.cancelled).count(), 50);

    // The payload is a webhook-shaped invitee: the same parser builds the booking.
    let first = parse_invitee(&events[0].payload, "US").expect("parses");
    assert_eq!(first.invitee_uri, events[0].external_id);
    assert_eq!(first.name, "Client 1");
    assert_eq!(first.service, "30 Minute Consultation");
    assert_eq!(first.phone_e164.as_deref(), Some("+15552000001"));
    assert_eq!(first.starts_at, events[0].starts_at);

    // Every request carried the token; the lists named the scope, range and page size.
    let log = fake.requests();
    assert!(
        log.iter().all(|r| r.authorized),
        "bearer token on every request"
    );
    let lists: Vec<_> = log
        .iter()
        .filter(|r| r.path == "/scheduled_events")
        .collect();
    assert_eq!(lists.len(), 3);
    assert_eq!(lists[0].param("organization").as_deref(), Some(ORG));
    assert_eq!(
        lists[0].param("min_start_time").as_deref(),
        Some("2026-03-01T00:00:00.000000Z")
    );
    assert_eq!(
        lists[0].param("max_start_time").as_deref(),
        Some("2026-05-01T00:00:00.000000Z")
    );
    assert_eq!(lists[0].param("count").as_deref(), Some("100"));
    assert_eq!(lists[0].param("page_token"), None);
    assert!(lists[1].param("page_token").is_some());
    let invitee_requests = log.iter().filter(|r| r.path.ends_with("/invitees")).count();
    assert_eq!(invitee_requests, 250, "one invitee list per event");
}

#[actix_rt::test]
async fn events_with_several_invitees_yield_one_booking_each() {
    let fake = FakeCalendly::start(TOKEN, ORG);
    let mut group = FakeEvent::new(
        "EVGROUP",
        at("2026-03-05T17:00:00Z"),
        FakeInvitee::new("G1", "Ana Lopez", Some("+34 612 345 678")),
    );
    let mut left = FakeInvitee::new("G2", "Ben Ode", None);
    left.status = "canceled".to_string();
    group.invitees.push(left);
    fake.add_event(group);
    let (events, _) = sync_all(
        &client(&fake, TOKEN),
        at("2026-03-01T00:00:00Z"),
        at("2026-04-01T00:00:00Z"),
    )
    .await
    .expect("synced");
    assert_eq!(events.len(), 2);
    assert!(!events[0].cancelled);
    assert!(
        events[1].cancelled,
        "the invitee canceled, the event did not"
    );
}

/// A paced adapter waits for a token before every request: with a burst of 2 and 10
/// requests a second, the 4 requests of a page of 3 events take at least 0.2 s, and
/// still fetch everything.
#[actix_rt::test]
async fn a_paced_adapter_waits_its_turn_for_every_request() {
    use actors::resilience::token_bucket::TokenBucket;
    use aro::providers::pacing::Pacer;

    let fake = FakeCalendly::start(TOKEN, ORG);
    fake.seed(3, at("2026-03-02T09:00:00Z"));
    let paced =
        client(&fake, TOKEN).with_pacer(Pacer::new(TokenBucket::new(2.0, 10.0, Utc::now())));
    let started = std::time::Instant::now();
    let (events, pages) = sync_all(
        &paced,
        at("2026-03-01T00:00:00Z"),
        at("2026-05-01T00:00:00Z"),
    )
    .await
    .expect("sync");
    let elapsed = started.elapsed();
    assert_eq!((events.len(), pages), (3, 1));
    assert_eq!(
        fake.requests().len(),
        4,
        "one list, one invitee list per event"
    );
    assert!(elapsed >= Duration::from_millis(180), "{elapsed:?}");
}

#[actix_rt::test]
async fn wrong_token_is_a_client_error() {
    let fake = FakeCalendly::start(TOKEN, ORG);
    fake.seed(1, at("2026-03-02T09:00:00Z"));
    let err = client(&fake, "wrong-token")
        .fetch_events(at("2026-03-01T00:00:00Z"), at("2026-04-01T00:00:00Z"), None)
        .await
        .expect_err("refused");
    assert_eq!(err.class, ErrorClass::ClientError);
    assert!(!err.class.is_retryable());
    assert!(err.message.contains("Unauthenticated"), "{}", err.message);
    assert!(!err.message.contains("wrong-token"));
    assert!(!fake.requests()[0].authorized);
}

#[actix_rt::test]
async fn rate_limit_carries_the_reset_delay() {
    let fake = FakeCalendly::start(TOKEN, ORG);
    fake.seed(3, at("2026-03-02T09:00:00Z"));
    let client = client(&fake, TOKEN);
    let from = at("2026-03-01T00:00:00Z");
    let to = at("2026-04-01T00:00:00Z");
    // The list request is rate limited.
    fake.fail_next(1, Failure::RateLimited { reset_secs: 42 });
    let err = client
        .fetch_events(from, to, None)
        .await
        .expect_err("limited");
    assert_eq!(
        err.class,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(42))
        }
    );
    assert!(!err.outcome_unknown, "reads are safe");
    // The retry gets the whole page.
    let page = client.fetch_events(from, to, None).await.expect("retried");
    assert_eq!(page.events.len(), 3);
}

#[actix_rt::test]
async fn server_error_is_retryable() {
    let fake = FakeCalendly::start(TOKEN, ORG);
    fake.fail_next(1, Failure::Status500);
    let err = client(&fake, TOKEN)
        .fetch_events(at("2026-03-01T00:00:00Z"), at("2026-04-01T00:00:00Z"), None)
        .await
        .expect_err("failed");
    assert_eq!(err.class, ErrorClass::ServerError);
    assert!(err.class.is_retryable());
}

#[test]
fn port_futures_are_send_and_run_without_a_caller_runtime() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let fake = FakeCalendly::start(TOKEN, ORG);
    fake.seed(2, at("2026-03-02T09:00:00Z"));
    let fetch = client(&fake, TOKEN).fetch_events(
        at("2026-03-01T00:00:00Z"),
        at("2026-04-01T00:00:00Z"),
        None,
    );
    assert_send(&fetch);
    let page = actix_rt::System::new().block_on(fetch).expect("fetched");
    assert_eq!(page.events.len(), 2);
    assert_eq!(page.next_page, None);
}

// ---- webhook deliveries -------------------------------------------------------------

fn booking() -> (FakeEvent, FakeInvitee) {
    let invitee = FakeInvitee::new("INVNEW0000000001", "Jane Smith", Some("+1 (555) 123-4567"));
    let event = FakeEvent::new(
        "EVNEW00000000001",
        at("2026-03-20T15:00:00Z"),
        invitee.clone(),
    );
    (event, invitee)
}

/// Signs, verifies and parses a delivery as the route will.
fn deliver(
    event_name: &str,
    event: &FakeEvent,
    invitee: &FakeInvitee,
    country: &str,
) -> aro::providers::calendly::CalendlyWebhook {
    let now = at("2026-03-01T10:00:00Z");
    let (body, header) = signed_webhook(event_name, event, invitee, SIGNING_KEY, now);
    assert_eq!(
        verify_signature(Some(&header), &body, SIGNING_KEY, now),
        Ok(())
    );
    parse(&body, country).expect("parses")
}

#[test]
fn a_signed_booking_verifies_and_parses() {
    let (event, invitee) = booking();
    let hook = deliver("invitee.created", &event, &invitee, "US");
    let CalendlyEvent::InviteeCreated(inv) = &hook.event else {
        panic!("{hook:?}");
    };
    assert_eq!(inv.invitee_uri, event.invitee_uri(CALENDLY_API, &invitee));
    assert_eq!(inv.event_uri, event.uri(CALENDLY_API));
    assert_eq!(inv.old_invitee, None);
    assert_eq!(inv.starts_at, event.start);
    assert_eq!(inv.ends_at, event.end);
    assert_eq!(inv.timezone.as_deref(), Some("America/New_York"));
    assert_eq!(inv.service, "30 Minute Consultation");
    assert_eq!(inv.name, "Jane Smith");
    assert_eq!(inv.email.as_deref(), Some("jane.smith@example.com"));
    assert_eq!(inv.phone_e164.as_deref(), Some("+15551234567"));
    assert_eq!(inv.phone_source, Some(PhoneSource::TextReminderNumber));
    assert!(inv
        .cancel_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://calendly.com/cancellations/")));
    assert!(inv.reschedule_url.is_some());
    assert_eq!(hook.dedup_key().len(), 64);
}

#[test]
fn tampered_or_stale_deliveries_fail_verification() {
    let (event, invitee) = booking();
    let signed_at = at("2026-03-01T10:00:00Z");
    let (body, header) =
        signed_webhook("invitee.created", &event, &invitee, SIGNING_KEY, signed_at);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        verify_signature(Some(&header), &tampered, SIGNING_KEY, signed_at),
        Err(SignatureError::Mismatch)
    );
    let four_minutes_later = signed_at + chrono::Duration::minutes(4);
    assert_eq!(
        verify_signature(Some(&header), &body, SIGNING_KEY, four_minutes_later),
        Err(SignatureError::Stale)
    );
}

#[test]
fn a_plain_cancellation_parses() {
    let (event, mut invitee) = booking();
    invitee.status = "canceled".to_string();
    invitee.cancellation = Some((
        "Jane Smith".to_string(),
        "invitee".to_string(),
        "Feeling unwell".to_string(),
    ));
    let hook = deliver("invitee.canceled", &event, &invitee, "US");
    assert_eq!(
        hook.event,
        CalendlyEvent::InviteeCanceled {
            invitee_uri: event.invitee_uri(CALENDLY_API, &invitee),
            event_uri: event.uri(CALENDLY_API),
            rescheduled: false,
            new_invitee: None,
            canceled_by: Some("Jane Smith".to_string()),
            canceler_type: Some("invitee".to_string()),
            reason: Some("Feeling unwell".to_string()),
        }
    );
}

#[test]
fn a_reschedule_is_a_linked_cancel_and_create() {
    // The old booking is canceled with `rescheduled: true` naming the new invitee; the
    // new booking (another event, another time) names the old invitee.
    let (old_event, mut old) = booking();
    let mut new = FakeInvitee::new("INVNEW0000000002", "Jane Smith", Some("+1 (555) 123-4567"));
    let new_event = FakeEvent::new("EVNEW00000000002", at("2026-03-22T18:00:00Z"), new.clone());
    let old_uri = old_event.invitee_uri(CALENDLY_API, &old);
    let new_uri = new_event.invitee_uri(CALENDLY_API, &new);
    old.status = "canceled".to_string();
    old.rescheduled = true;
    old.new_invitee = Some(new_uri.clone());
    old.cancellation = Some((
        "Jane Smith".to_string(),
        "invitee".to_string(),
        String::new(),
    ));
    new.old_invitee = Some(old_uri.clone());
    let new_event = FakeEvent {
        invitees: vec![new.clone()],
        ..new_event
    };

    let canceled = deliver("invitee.canceled", &old_event, &old, "US");
    let CalendlyEvent::InviteeCanceled {
        invitee_uri,
        rescheduled,
        new_invitee,
        reason,
        ..
    } = &canceled.event
    else {
        panic!("{canceled:?}");
    };
    assert_eq!(invitee_uri, &old_uri);
    assert!(*rescheduled);
    assert_eq!(new_invitee.as_deref(), Some(new_uri.as_str()));
    assert_eq!(reason, &None, "an empty reason is no reason");

    let created = deliver("invitee.created", &new_event, &new, "US");
    let CalendlyEvent::InviteeCreated(inv) = &created.event else {
        panic!("{created:?}");
    };
    assert_eq!(inv.invitee_uri, new_uri);
    assert_eq!(inv.old_invitee.as_deref(), Some(old_uri.as_str()));
    assert_eq!(inv.starts_at, at("2026-03-22T18:00:00Z"));
    assert_ne!(canceled.dedup_key(), created.dedup_key());
}

#[test]
fn no_show_marks_parse() {
    let (event, invitee) = booking();
    let uri = event.invitee_uri(CALENDLY_API, &invitee);
    let created = deliver("invitee_no_show.created", &event, &invitee, "US");
    assert_eq!(
        created.event,
        CalendlyEvent::NoShowCreated {
            invitee_uri: uri.clone()
        }
    );
    let deleted = deliver("invitee_no_show.deleted", &event, &invitee, "US");
    assert_eq!(
        deleted.event,
        CalendlyEvent::NoShowDeleted { invitee_uri: uri }
    );
    assert_ne!(created.dedup_key(), deleted.dedup_key());
}

#[test]
fn phone_comes_from_text_reminder_number_then_a_phone_question() {
    // A national number with the business's default country.
    let (event, mut invitee) = booking();
    invitee.text_reminder_number = Some("07911 123456".to_string());
    let hook = deliver("invitee.created", &event, &invitee, "GB");
    let CalendlyEvent::InviteeCreated(inv) = hook.event else {
        panic!("not created");
    };
    assert_eq!(inv.phone_e164.as_deref(), Some("+447911123456"));
    assert_eq!(inv.phone_source, Some(PhoneSource::TextReminderNumber));

    // No text-reminder number: the answer to a phone question, in Spanish.
    invitee.text_reminder_number = None;
    invitee.questions = vec![
        (
            "¿Motivo de la consulta?".to_string(),
            "Revisión 2024".to_string(),
        ),
        ("Número de teléfono".to_string(), "612 34 56 78".to_string()),
    ];
    let event = FakeEvent {
        invitees: vec![invitee.clone()],
        ..event
    };
    let hook = deliver("invitee.created", &event, &invitee, "ES");
    let CalendlyEvent::InviteeCreated(inv) = hook.event else {
        panic!("not created");
    };
    assert_eq!(inv.phone_e164.as_deref(), Some("+34612345678"));
    assert_eq!(inv.phone_source, Some(PhoneSource::Question));

    // Nothing usable: no phone, the booking still parses.
    invitee.questions = vec![("Phone".to_string(), "ask my assistant".to_string())];
    let hook = deliver("invitee.created", &event, &invitee, "US");
    let CalendlyEvent::InviteeCreated(inv) = hook.event else {
        panic!("not created");
    };
    assert_eq!(inv.phone_e164, None);
    assert_eq!(inv.phone_source, None);
}
