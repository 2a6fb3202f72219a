//! A dead letter replayed from the command line reaches the provider through the
//! running daemon (the harness of `e2e/harness.rs`: the real daemon on a virtual clock,
//! Stripe faked over HTTP), on SQLite and PostgreSQL.
//!
//! A customer with two no-shows books; Stripe answers 500 to both attempts of the
//! deposit link, so the work is dead-lettered and escalated. Stripe recovers, and
//! `aro dlq replay` — another process, which cannot poke the daemon — puts the row back
//! in the queue. Nothing is sent until the payment supervisor's next look at the
//! outbox, at most a minute later; then the link is made once and sent.

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
use aro::store::schema::dead_letters;
use aro::store::Database;
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{aro_command, Kind};
use diesel::prelude::*;
use e2e::World;
use fake_stripe::Failure;

const NY: &str = "America/New_York";
const JANE: &str = "+15557770001";

/// Monday 2031-06-02 10:00 EDT.
fn t0() -> DateTime<Utc> {
    chrono_tz::America::New_York
        .with_ymd_and_hms(2031, 6, 2, 10, 0, 0)
        .single()
        .expect("one instant")
        .with_timezone(&Utc)
}

async fn open_payment_letters(w: &World) -> Vec<String> {
    let database = Database::open(&w.db.config(&[]).database).expect("open");
    database
        .run(|conn| {
            Ok(dead_letters::table
                .filter(dead_letters::domain.eq("payment"))
                .filter(dead_letters::status.eq("open"))
                .select(dead_letters::id)
                .load(conn)?)
        })
        .await
        .expect("read")
}

async fn a_deposit_link_replayed_from_the_cli_is_sent_once(kind: Kind) {
    let mut w = World::start(kind, t0(), "healthcare", &[]).await;
    for (i, day) in [1, 8].into_iter().enumerate() {
        let start = t0() + Duration::days(day);
        w.book(&format!("ns{i}"), start, NY, JANE).await;
        w.walk_to(start + Duration::minutes(15), Duration::hours(12))
            .await;
        w.staff_marks(&format!("ns{i}"), AppointmentStatus::NoShow)
            .await;
    }
    w.advance_to(w.now() + Duration::days(1)).await;

    // Both attempts of the deposit link fail: dead letter and escalation.
    w.stripe.fail_next(2, Failure::Status500);
    w.book("dep1", w.now() + Duration::days(5), NY, JANE).await;
    w.walk_to(w.now() + Duration::seconds(30), Duration::seconds(1))
        .await;
    let letters = open_payment_letters(&w).await;
    assert_eq!(letters.len(), 1, "one dead letter");
    assert!(w
        .reasons()
        .await
        .contains(&"deposit_link_failed".to_string()));
    assert!(w.stripe.links().is_empty());
    assert_ne!(w.deposit("dep1").await, "awaiting_payment");

    // Replayed by another process: the daemon is not told.
    let replay = aro_command(w.db.data_dir())
        .args(["dlq", "replay", &letters[0]])
        .env("ARO_DATABASE_URL", &w.db.url)
        .env("ARO_DATA_DIR", w.db.data_dir())
        .output()
        .expect("run aro dlq");
    assert!(replay.status.success(), "{replay:?}");
    assert!(open_payment_letters(&w).await.is_empty());
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(w.stripe.links().is_empty(), "nothing before the next look");

    // One step past the supervisor's next look (the replayed row is due at once, so
    // the harness cannot settle in between).
    w.advance_to(w.now() + Duration::seconds(61)).await;
    assert_eq!(w.stripe.links().len(), 1, "the link is made once");
    assert_eq!(w.deposit("dep1").await, "awaiting_payment");
    assert!(w
        .kinds_to(JANE)
        .await
        .contains(&"deposit_request".to_string()));
    w.assert_nothing_twice().await;
    w.stop().await;
}

on_both_backends!(a_deposit_link_replayed_from_the_cli_is_sent_once);
