//! The engine runs inside `aro serve`: on the real system clock, a booked appointment's
//! reminder comes due, goes through the durable timer, the outbox and the messaging
//! supervisor, and lands in the sandbox provider's `messages` table; the lifecycle timer
//! moves a started appointment to `in_progress`.

mod common;

use std::time::{Duration as StdDuration, Instant};

use actors::engine::Booking;
use actors::testing::fixtures::sample_booking;
use aro::app::Application;
use aro::store::schema::{appointments, messages};
use chrono::{Duration, Utc};
use common::{Kind, TestDb};
use diesel::prelude::*;

fn booking(external_id: &str, starts_in: Duration) -> Booking {
    let mut booking = sample_booking(external_id, Utc::now() + starts_in);
    booking.timezone = Some("UTC".into());
    booking
}

async fn reminders_and_lifecycle_run_in_the_daemon(kind: Kind) {
    let db = TestDb::new(kind);
    let app =
        Application::build(db.config(&[("ARO_QUIET_HOURS", "off"), ("ARO_TWILIO_RATE", "50")]))
            .await
            .expect("application starts");
    let engine = app.engine().clone();
    let database = app.database().clone();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());

    // The 24 h reminder of this booking comes due two seconds from now.
    let reminded = engine
        .book(booking("soon", Duration::hours(24) + Duration::seconds(2)))
        .await
        .expect("booked")
        .expect("state");
    // This one started a minute ago: its start timer fires at once.
    let started = engine
        .book(booking("now", Duration::minutes(-1)))
        .await
        .expect("booked")
        .expect("state");

    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let reminded_id = reminded.id.clone();
        let started_id = started.id.clone();
        let (sent, status) = database
            .run(move |conn| {
                let sent: Vec<(String, bool, Option<String>)> = messages::table
                    .filter(messages::idempotency_key.like(format!("{reminded_id}:reminder%")))
                    .select((
                        messages::to_addr.assume_not_null(),
                        messages::sandbox,
                        messages::idempotency_key,
                    ))
                    .load(conn)?;
                let status: String = appointments::table
                    .find(&started_id)
                    .select(appointments::status)
                    .first(conn)?;
                Ok((sent, status))
            })
            .await
            .expect("read");
        if sent.len() == 1 && status == "in_progress" {
            assert_eq!(sent[0].0, "+15551230001");
            assert!(sent[0].1, "recorded as sandbox");
            assert!(sent[0]
                .2
                .as_deref()
                .is_some_and(|k| k.contains(":reminder_24h:")));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reminder sent: {sent:?}, started appointment status: {status}"
        );
        actix_web::rt::time::sleep(StdDuration::from_millis(100)).await;
    }
    handle.stop(true).await;
}

on_both_backends!(reminders_and_lifecycle_run_in_the_daemon);
