//! The MVP flows end to end (issue 5, SPEC §2–§5) on the harness of `e2e/harness.rs`:
//! the real daemon on SQLite and PostgreSQL, its engine on a virtual clock, Twilio
//! faked over HTTP (Twilio and Stripe), signed booking webhooks, signed customer replies
//! and signed payment events. Every scenario runs with each shipped profile pack on
//! both backends, restarts the daemon in its middle, and must still end with exactly
//! the expected messages, none twice.
//!
//! Times: the clock starts on Monday 2031-06-02 at 10:00 in New York (EDT), inside the
//! default allowed hours (08:00–21:00), and appointments start at 10:00 local, so
//! reminders, review requests and offers fall in allowed hours for every pack.

// Each fake brings its own copy of the shared HTTP server module.
#![allow(clippy::duplicate_mod)]

mod common;
#[path = "e2e/harness.rs"]
mod e2e;
#[path = "fakes/calendly.rs"]
mod fake_calendly;
#[path = "fakes/stripe.rs"]
mod fake_stripe;
#[path = "fakes/twilio.rs"]
mod fake_twilio;

use actors::domain::appointment_status::AppointmentStatus;
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::America::New_York;
use common::Kind;
use e2e::World;

const NY: &str = "America/New_York";
const JANE: &str = "+15557770001";
const OMAR: &str = "+15557770002";
const LEE: &str = "+15557770003";

/// `hour`:00 on that day in New York, as an instant.
fn ny(year: i32, month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    New_York
        .with_ymd_and_hms(year, month, day, hour, 0, 0)
        .single()
        .expect("a local time that exists once")
        .with_timezone(&Utc)
}

/// Monday 2031-06-02 10:00 EDT.
fn t0() -> DateTime<Utc> {
    ny(2031, 6, 2, 10)
}

fn kinds(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| k.to_string()).collect()
}

async fn happy_path(kind: Kind, pack: &str) {
    let mut w = World::start(kind, t0(), pack, &[]).await;
    let start = t0() + Duration::days(3);
    let end = start + Duration::minutes(30);
    w.book("h1", start, NY, JANE).await;
    assert_eq!(w.kinds_to(JANE).await, kinds(&["booking_confirmation"]));
    assert_eq!(
        w.consent_sources(JANE).await,
        ["booking_system"],
        "the number given for reminders is consent"
    );

    w.advance_to(start - Duration::hours(48)).await;
    assert_eq!(
        w.kinds_to(JANE).await,
        kinds(&["booking_confirmation", "reminder_48h"])
    );
    w.restart().await;

    w.reply(JANE, "yes 👍").await;
    assert_eq!(w.status("h1").await, "confirmed");
    assert_eq!(
        w.kinds_to(JANE).await,
        kinds(&["booking_confirmation", "reminder_48h", "confirm_ack"])
    );

    // Confirmed: no 24 h reminder, and nobody is told the customer is silent.
    w.advance_to(start - Duration::hours(24)).await;
    w.advance_to(start - Duration::hours(1)).await;
    assert_eq!(w.kinds_to(JANE).await.len(), 3, "no 24 h reminder");
    assert!(w.reasons().await.is_empty(), "{:?}", w.escalations().await);

    w.advance_to(start).await;
    assert_eq!(w.status("h1").await, "in_progress");
    w.advance_to(end + Duration::hours(2)).await;
    assert_eq!(w.status("h1").await, "completed");

    w.advance_to(end + Duration::hours(6) - Duration::minutes(1))
        .await;
    assert_eq!(w.kinds_to(JANE).await.len(), 3, "no review request yet");
    w.advance_to(end + Duration::hours(6)).await;
    w.advance_to(end + Duration::hours(30) - Duration::minutes(1))
        .await;
    assert_eq!(
        w.kinds_to(JANE).await,
        kinds(&[
            "booking_confirmation",
            "reminder_48h",
            "confirm_ack",
            "review_request"
        ])
    );
    w.advance_to(end + Duration::hours(30)).await;
    let sent = w.sent_to(JANE).await;
    assert_eq!(
        sent.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [
            "booking_confirmation",
            "reminder_48h",
            "confirm_ack",
            "review_request",
            "rebook_offer"
        ]
    );
    // On time, to the minute.
    assert_eq!(sent[1].1, start - Duration::hours(48));
    assert_eq!(sent[3].1, end + Duration::hours(6));
    assert_eq!(sent[4].1, end + Duration::hours(30));
    let bodies = w.bodies_to(JANE);
    assert!(bodies[3].contains(e2e::REVIEW_URL), "{}", bodies[3]);
    assert!(
        bodies
            .iter()
            .all(|b| b.contains("STOP") || b.contains("START")),
        "every automated SMS carries the opt-out footer: {bodies:?}"
    );
    w.assert_nothing_twice().await;
    w.stop().await;
}

async fn silent_customer(kind: Kind, pack: &str) {
    let mut w = World::start(kind, t0(), pack, &[]).await;
    let start = t0() + Duration::days(3);
    w.book("s1", start, NY, JANE).await;
    w.advance_to(start - Duration::hours(48)).await;
    w.restart().await;
    w.advance_to(start - Duration::hours(24)).await;
    assert_eq!(
        w.kinds_to(JANE).await,
        kinds(&["booking_confirmation", "reminder_48h", "reminder_24h"])
    );
    w.advance_to(start - Duration::hours(20) - Duration::minutes(1))
        .await;
    assert!(w.reasons().await.is_empty());
    w.advance_to(start - Duration::hours(20)).await;
    assert_eq!(
        w.escalations().await,
        [("no_customer_response".to_string(), "medium".to_string())]
    );
    w.advance_to(start - Duration::hours(6)).await;
    assert_eq!(
        w.escalations().await,
        [
            ("no_customer_response".to_string(), "medium".to_string()),
            ("unconfirmed_before_start".to_string(), "high".to_string())
        ]
    );
    assert_eq!(w.status("s1").await, "booked", "never cancelled by itself");
    assert_eq!(w.kinds_to(JANE).await.len(), 3);
    w.assert_nothing_twice().await;
    w.stop().await;
}

async fn late_bookings_skip_reminders(kind: Kind, pack: &str) {
    let mut w = World::start(kind, t0(), pack, &[]).await;
    // 30 h ahead: no 48 h reminder. 1 h ahead: the confirmation only.
    let soon = t0() + Duration::hours(30);
    let now_ish = t0() + Duration::hours(1);
    w.book("l30", soon, NY, JANE).await;
    w.book("l1", now_ish, NY, OMAR).await;
    w.restart().await;
    // Up to 6 h later: JANE's 24 h reminder is due; OMAR's visit is over (its review
    // request, at end + 6 h, is not yet due).
    w.advance_to(now_ish).await;
    w.advance_to(soon - Duration::hours(24)).await;
    assert_eq!(
        w.kinds_to(JANE).await,
        kinds(&["booking_confirmation", "reminder_24h"])
    );
    assert_eq!(w.kinds_to(OMAR).await, kinds(&["booking_confirmation"]));
    w.assert_nothing_twice().await;
    w.stop().await;
}

/// A booking system moves the appointment across New York's fall-back (2031-11-02):
/// nothing is sent for the old time; the new time's reminders go at exact durations
/// before it — the 48 h one at 11:00 EDT, the 24 h one at 10:00 EST — and name its
/// local time.
async fn reschedule_across_dst(kind: Kind, pack: &str) {
    let booked_at = ny(2031, 10, 29, 10);
    let first = ny(2031, 11, 1, 10);
    let moved = ny(2031, 11, 3, 10);
    let mut w = World::start(kind, booked_at, pack, &[]).await;
    w.book("r1", first, NY, JANE).await;
    w.advance_to(booked_at + Duration::hours(2)).await;
    w.move_booking("r1", moved, NY, JANE).await;
    w.restart().await;
    w.advance_to(first - Duration::hours(48)).await;
    w.advance_to(moved - Duration::hours(48)).await;
    w.advance_to(first - Duration::hours(24)).await;
    w.advance_to(moved - Duration::hours(24)).await;
    w.advance_to(moved - Duration::hours(3)).await;
    let sent = w.sent_to(JANE).await;
    let reminders: Vec<&(String, DateTime<Utc>)> = sent
        .iter()
        .filter(|(k, _)| k.starts_with("reminder"))
        .collect();
    assert_eq!(reminders.len(), 2, "{sent:?}");
    assert_eq!(reminders[0].1, moved - Duration::hours(48));
    assert_eq!(reminders[1].1, moved - Duration::hours(24));
    // 48 h before 10:00 EST on Nov 3 is 11:00 EDT on Nov 1: the clocks fell back at
    // 02:00 on Nov 2. 24 h before is 10:00 EST.
    assert_eq!(
        reminders[0]
            .1
            .with_timezone(&New_York)
            .format("%H:%M %Z")
            .to_string(),
        "11:00 EDT"
    );
    assert_eq!(
        reminders[1]
            .1
            .with_timezone(&New_York)
            .format("%H:%M %Z")
            .to_string(),
        "10:00 EST"
    );
    let bodies = w.bodies_to(JANE);
    let reminder_bodies: Vec<&String> = bodies.iter().skip(1).collect();
    assert!(
        reminder_bodies
            .iter()
            .all(|b| b.contains("Mon, Nov 3") && b.contains("10:00 AM")),
        "local time of the new start: {reminder_bodies:?}"
    );
    w.assert_nothing_twice().await;
    w.stop().await;
}

/// A Calendly reschedule (the new invitee's `invitee.created`, naming the old one,
/// arrives before the old one's `invitee.canceled` with `rescheduled: true`): one
/// appointment, moved; reminders go for the new time only.
async fn calendly_reschedule_moves_the_reminders(kind: Kind, pack: &str) {
    use fake_calendly::{FakeEvent, FakeInvitee, CALENDLY_API};
    let mut w = World::start(kind, t0(), pack, &[]).await;
    let phone = "+15551234567";
    let first = t0() + Duration::days(3);
    let moved = t0() + Duration::days(4);
    let invitee = FakeInvitee::new("INV1", "Jane Smith", Some("+1 555-123-4567"));
    let event = FakeEvent::new("EV1", first, invitee.clone());
    w.calendly("invitee.created", &event, &invitee).await;
    assert_eq!(w.kinds_to(phone).await, kinds(&["booking_confirmation"]));

    w.advance_to(t0() + Duration::hours(6)).await;
    let mut new = FakeInvitee::new("INV2", "Jane Smith", Some("+1 555-123-4567"));
    new.old_invitee = Some(event.invitee_uri(CALENDLY_API, &invitee));
    let mut new_event = FakeEvent::new("EV2", moved, new.clone());
    new_event.invitees = vec![new.clone()];
    let mut canceled = invitee.clone();
    canceled.status = "canceled".into();
    canceled.rescheduled = true;
    canceled.new_invitee = Some(new_event.invitee_uri(CALENDLY_API, &new));
    canceled.cancellation = Some(("Jane Smith".into(), "invitee".into(), String::new()));
    let mut canceled_event = event.clone();
    canceled_event.status = "canceled".into();
    canceled_event.invitees = vec![canceled.clone()];
    w.calendly("invitee.created", &new_event, &new).await;
    w.restart().await;
    w.calendly("invitee.canceled", &canceled_event, &canceled)
        .await;

    for at in [
        first - Duration::hours(48),
        moved - Duration::hours(48),
        first - Duration::hours(24),
        moved - Duration::hours(24),
        moved - Duration::hours(3),
    ] {
        w.advance_to(at).await;
    }
    let sent = w.sent_to(phone).await;
    let reminders: Vec<DateTime<Utc>> = sent
        .iter()
        .filter(|(k, _)| k.starts_with("reminder"))
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(
        reminders,
        [moved - Duration::hours(48), moved - Duration::hours(24)],
        "{sent:?}"
    );
    assert!(!w
        .reasons()
        .await
        .contains(&"reschedule_incomplete".to_string()));
    w.assert_nothing_twice().await;
    w.stop().await;
}

/// Spring forward (2032-03-14): a 10:00 EDT appointment's 48 h reminder is 09:00 EST.
async fn reminders_across_spring_forward(kind: Kind, pack: &str) {
    let booked_at = ny(2032, 3, 10, 10);
    let start = ny(2032, 3, 15, 10);
    let mut w = World::start(kind, booked_at, pack, &[]).await;
    w.book("d1", start, NY, JANE).await;
    w.advance_to(start - Duration::hours(48)).await;
    w.restart().await;
    w.advance_to(start - Duration::hours(24)).await;
    let sent = w.sent_to(JANE).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(
        sent[1]
            .1
            .with_timezone(&New_York)
            .format("%H:%M %Z")
            .to_string(),
        "09:00 EST"
    );
    assert_eq!(
        sent[2]
            .1
            .with_timezone(&New_York)
            .format("%H:%M %Z")
            .to_string(),
        "10:00 EDT"
    );
    assert!(w.bodies_to(JANE)[1].contains("Mon, Mar 15 at 10:00 AM"));
    w.assert_nothing_twice().await;
    w.stop().await;
}

async fn stop_start_and_cancel(kind: Kind, pack: &str) {
    let mut w = World::start(kind, t0(), pack, &[]).await;
    let start = t0() + Duration::days(3);
    w.book("k1", start, NY, JANE).await;
    w.book("k2", start, NY, OMAR).await;
    w.book("k3", start, NY, LEE).await;
    w.advance_to(start - Duration::hours(48)).await;

    // STOP: opted out, one confirmation, nothing more.
    w.reply(JANE, "STOP").await;
    assert!(w.customer(JANE).await.0, "opted out");
    w.restart().await;
    w.advance_to(start - Duration::hours(24)).await;
    assert_eq!(
        w.kinds_to(JANE).await,
        kinds(&[
            "booking_confirmation",
            "reminder_48h",
            "opt_out_confirmation"
        ])
    );
    // START restores: the next booking is confirmed again.
    w.reply(JANE, "START").await;
    assert!(!w.customer(JANE).await.0, "opted back in");
    w.book("k1b", start + Duration::days(7), NY, JANE).await;
    assert_eq!(
        w.kinds_to(JANE).await.last().map(String::as_str),
        Some("booking_confirmation")
    );

    // A bare CANCEL opts out and is escalated: the customer may mean the appointment.
    w.reply(OMAR, "CANCEL").await;
    assert!(w.customer(OMAR).await.0);
    assert!(w
        .reasons()
        .await
        .contains(&"possible_cancellation".to_string()));

    // A sentence about cancelling is an intent, not an opt-out.
    w.reply(LEE, "I need to cancel my appointment").await;
    assert!(!w.customer(LEE).await.0, "not opted out");
    assert!(w
        .escalations()
        .await
        .contains(&("customer_wants_to_cancel".to_string(), "high".to_string())));
    assert_eq!(
        w.kinds_to(LEE).await.last().map(String::as_str),
        Some("cancel_reply")
    );
    // Nothing cancels an appointment by itself.
    for id in ["k1", "k2", "k3"] {
        assert_ne!(w.status(id).await, "cancelled", "{id}");
    }
    w.assert_nothing_twice().await;
    w.stop().await;
}

async fn quiet_hours_and_the_daily_cap(kind: Kind, pack: &str) {
    let mut w = World::start(kind, t0(), pack, &[]).await;
    // Starts at 23:00 local: its 48 h reminder falls at 23:00, inside quiet hours, and
    // moves to 08:00 the next morning (before start − 2 h).
    let late = ny(2031, 6, 5, 23);
    w.book("q1", late, NY, JANE).await;
    w.advance_to(late - Duration::hours(48)).await;
    assert_eq!(w.kinds_to(JANE).await.len(), 1, "held in quiet hours");
    w.restart().await;
    w.walk_to(late - Duration::hours(30), Duration::hours(1))
        .await;
    let sent = w.sent_to(JANE).await;
    assert_eq!(sent[1].0, "reminder_48h");
    assert_eq!(
        sent[1]
            .1
            .with_timezone(&New_York)
            .format("%H:%M")
            .to_string(),
        "08:00"
    );

    // Four bookings at once for one customer: the 4th confirmation in 24 h is not sent
    // and is escalated.
    for (i, days) in [10, 11, 12, 13].into_iter().enumerate() {
        w.book(&format!("c{i}"), t0() + Duration::days(days), NY, OMAR)
            .await;
    }
    assert_eq!(
        w.kinds_to(OMAR).await,
        kinds(&[
            "booking_confirmation",
            "booking_confirmation",
            "booking_confirmation"
        ])
    );
    assert!(w
        .reasons()
        .await
        .contains(&"message_cap_reached".to_string()));
    w.assert_nothing_twice().await;
    w.stop().await;
}

async fn no_shows_recompute_risk_and_choose_the_offer(kind: Kind, pack: &str) {
    let mut w = World::start(kind, t0(), pack, &[]).await;
    let first = t0() + Duration::days(3);
    w.book("n1", first, NY, JANE).await;
    w.advance_to(first + Duration::minutes(15)).await;
    w.staff_marks("n1", AppointmentStatus::NoShow).await;
    assert_eq!(w.status("n1").await, "no_show");
    let (_, no_shows, risk, deposit) = w.customer(JANE).await;
    assert_eq!((no_shows, risk, deposit), (1, 50, false));
    assert_eq!(
        w.kinds_to(JANE).await.last().map(String::as_str),
        Some("rebook_offer")
    );
    w.restart().await;

    // A second no-show: risk 70, deposits from now on, the offer says so.
    let second = first + Duration::days(7);
    w.book("n2", second, NY, JANE).await;
    w.walk_to(second + Duration::minutes(15), Duration::hours(12))
        .await;
    w.staff_marks("n2", AppointmentStatus::NoShow).await;
    let (_, no_shows, risk, deposit) = w.customer(JANE).await;
    assert_eq!((no_shows, risk, deposit), (2, 70, true));
    assert_eq!(
        w.kinds_to(JANE).await.last().map(String::as_str),
        Some("rebook_with_deposit")
    );
    assert!(w.reasons().await.contains(&"deposit_required".to_string()));
    w.assert_nothing_twice().await;
    w.stop().await;
}

/// A customer with two no-shows (so risk ≥ 70): the next booking asks for a deposit
/// through a Stripe payment link; Stripe's signed payment webhook marks it paid and a
/// receipt goes out. The unpaid path: one reminder after 24 h, then a high
/// `deposit_not_paid` escalation 12 h later — never a charge or a cancellation.
async fn deposits_paid_and_unpaid(kind: Kind, pack: &str) {
    let mut w = World::start(kind, t0(), pack, &[]).await;
    // Two no-shows, a week apart.
    for (i, day) in [1, 8].into_iter().enumerate() {
        let start = t0() + Duration::days(day);
        w.book(&format!("ns{i}"), start, NY, JANE).await;
        w.walk_to(start + Duration::minutes(15), Duration::hours(12))
            .await;
        w.staff_marks(&format!("ns{i}"), AppointmentStatus::NoShow)
            .await;
    }
    assert_eq!(w.customer(JANE).await.1, 2);
    assert!(w.stripe.links().is_empty(), "no deposit asked for yet");

    // The next booking, five days ahead: confirmation and deposit request.
    w.advance_to(w.now() + Duration::days(1)).await;
    let paid_start = w.now() + Duration::days(5);
    w.book("dep1", paid_start, NY, JANE).await;
    assert_eq!(w.deposit("dep1").await, "awaiting_payment");
    let links = w.stripe.links();
    assert_eq!(links.len(), 1);
    let amount = actors::profile::ProfilePack::shipped(pack)
        .expect("pack")
        .policy
        .deposit
        .amount_cents;
    assert_eq!(links[0].unit_amount, amount, "the pack's deposit");
    let kinds_now = w.kinds_to(JANE).await;
    assert_eq!(
        kinds_now[kinds_now.len() - 2..],
        kinds(&["booking_confirmation", "deposit_request"])
    );
    assert!(w
        .bodies_to(JANE)
        .last()
        .is_some_and(|b| b.contains(&links[0].url)));
    w.restart().await;
    w.pay("dep1").await;
    assert_eq!(w.deposit("dep1").await, "paid");
    assert_eq!(
        w.kinds_to(JANE).await.last().map(String::as_str),
        Some("deposit_receipt")
    );
    // The waits are over: no deposit reminder, no escalation.
    w.advance_to(w.now() + Duration::hours(48)).await;
    assert!(!w
        .kinds_to(JANE)
        .await
        .contains(&"deposit_reminder".to_string()));
    assert!(!w.reasons().await.contains(&"deposit_not_paid".to_string()));

    // Unpaid: a booking for the same customer, who never pays.
    let unpaid_start = w.now() + Duration::days(5);
    w.book("dep2", unpaid_start, NY, JANE).await;
    let asked_at = w.now();
    assert_eq!(w.deposit("dep2").await, "awaiting_payment");
    w.advance_to(asked_at + Duration::hours(24)).await;
    assert_eq!(w.deposit("dep2").await, "reminded");
    assert!(
        w.kinds_to(JANE)
            .await
            .contains(&"deposit_reminder".to_string()),
        "{:?}",
        w.kinds_to(JANE).await
    );
    w.advance_to(asked_at + Duration::hours(36) - Duration::minutes(1))
        .await;
    assert!(!w.reasons().await.contains(&"deposit_not_paid".to_string()));
    w.advance_to(asked_at + Duration::hours(36)).await;
    assert!(w
        .escalations()
        .await
        .contains(&("deposit_not_paid".to_string(), "high".to_string())));
    assert_eq!(w.deposit("dep2").await, "not_paid");
    assert_eq!(w.status("dep2").await, "booked", "never cancelled");
    assert_eq!(w.stripe.links().len(), 2, "one link per deposit, no charge");
    w.assert_nothing_twice().await;
    w.stop().await;
}

/// The healthcare pack's PHI filter: a reminder template that mentions a diagnosis is
/// never sent, and staff are told.
async fn phi_filter_blocks_and_escalates(kind: Kind) {
    let dir = tempfile::tempdir().expect("dir");
    let pack = actors::profile::SHIPPED_PACKS[0].1.replace(
        "Hi {first_name}, a reminder of your",
        "Hi {first_name}, about your diagnosis: a reminder of your",
    );
    assert!(pack.contains("diagnosis"));
    std::fs::write(dir.path().join("clinic.toml"), pack).expect("write");
    let dir_text = dir.path().display().to_string();
    let mut w = World::start(
        kind,
        t0(),
        "clinic",
        &[("ARO_PROFILES_DIR", dir_text.as_str())],
    )
    .await;
    let start = t0() + Duration::days(3);
    w.book("p1", start, NY, JANE).await;
    w.restart().await;
    w.advance_to(start - Duration::hours(48)).await;
    assert_eq!(w.kinds_to(JANE).await, kinds(&["booking_confirmation"]));
    assert!(w
        .escalations()
        .await
        .contains(&("content_blocked".to_string(), "high".to_string())));
    assert!(w.bodies_to(JANE).iter().all(|b| !b.contains("diagnosis")));
    w.assert_nothing_twice().await;
    w.stop().await;
}

/// Generates, for each scenario `$name(Kind, pack)`, a module with one test per shipped
/// pack and backend: the same suite passes with every pack.
macro_rules! on_every_pack {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use super::Kind;
                #[actix_rt::test]
                async fn healthcare_sqlite() { super::$name(Kind::Sqlite, "healthcare").await }
                #[actix_rt::test]
                async fn healthcare_postgres() { super::$name(Kind::Postgres, "healthcare").await }
                #[actix_rt::test]
                async fn salon_sqlite() { super::$name(Kind::Sqlite, "salon").await }
                #[actix_rt::test]
                async fn salon_postgres() { super::$name(Kind::Postgres, "salon").await }
                #[actix_rt::test]
                async fn legal_sqlite() { super::$name(Kind::Sqlite, "legal").await }
                #[actix_rt::test]
                async fn legal_postgres() { super::$name(Kind::Postgres, "legal").await }
                #[actix_rt::test]
                async fn coaching_sqlite() { super::$name(Kind::Sqlite, "coaching").await }
                #[actix_rt::test]
                async fn coaching_postgres() { super::$name(Kind::Postgres, "coaching").await }
            }
        )+
    };
}

on_every_pack!(
    happy_path,
    silent_customer,
    late_bookings_skip_reminders,
    reschedule_across_dst,
    calendly_reschedule_moves_the_reminders,
    reminders_across_spring_forward,
    stop_start_and_cancel,
    quiet_hours_and_the_daily_cap,
    no_shows_recompute_risk_and_choose_the_offer,
    deposits_paid_and_unpaid,
);

// The PHI filter is the healthcare pack's own.
on_both_backends!(phi_filter_blocks_and_escalates);
