//! Deposits on a trial install (SPEC §6 sandbox): with neither Stripe nor Twilio
//! credentials, a customer who must pay a deposit gets a sandbox link to the daemon's
//! own pay page (recorded in the sandbox outbox, the fakes reach nothing); the page
//! shows the pack's amount and its button takes the payment down Stripe's path — the
//! deposit is paid and the receipt recorded, once, however often it is pressed. The
//! page refuses appointments it did not link and deposits not awaiting payment, and
//! does not exist once payments go through Stripe.

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
use actors::engine::appointment_id_for;
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::Kind;
use e2e::World;

const NY: &str = "America/New_York";
const JANE: &str = "+15557770001";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 6, 2, 14, 0, 0)
        .single()
        .expect("instant")
}

/// Two no-shows, then a booking five days ahead: the deposit is asked for.
async fn deposit_asked_for(w: &mut World) -> String {
    for (i, day) in [1, 8].into_iter().enumerate() {
        let start = t0() + Duration::days(day);
        w.book(&format!("ns{i}"), start, NY, JANE).await;
        w.walk_to(start + Duration::minutes(15), Duration::hours(12))
            .await;
        w.staff_marks(&format!("ns{i}"), AppointmentStatus::NoShow)
            .await;
    }
    w.advance_to(w.now() + Duration::days(1)).await;
    w.book("dep1", w.now() + Duration::days(5), NY, JANE).await;
    assert_eq!(w.deposit("dep1").await, "awaiting_payment");
    appointment_id_for("default", "booking", "dep1")
}

async fn the_sandbox_pay_page_takes_a_deposit_once(kind: Kind) {
    let mut w = World::start_sandbox(kind, t0(), "salon").await;
    let id = deposit_asked_for(&mut w).await;
    let path = format!("/sandbox/pay/{id}");
    let bodies = w.stored_bodies_to(JANE).await;
    let request = bodies
        .iter()
        .find(|b| b.contains(&path))
        .unwrap_or_else(|| panic!("a message carries the sandbox link: {bodies:?}"));
    assert!(
        request.contains("https://aro.example.com/sandbox/pay/"),
        "{request}"
    );
    assert!(w.fake.accepted().is_empty(), "nothing reached Twilio");
    assert!(w.stripe.links().is_empty(), "nothing reached Stripe");

    let client = common::client();
    let mut page = client.get(w.url(&path)).send().await.expect("GET");
    assert_eq!(page.status().as_u16(), 200);
    let html = String::from_utf8(page.body().await.expect("body").to_vec()).expect("utf-8");
    let cents = actors::profile::ProfilePack::shipped("salon")
        .expect("pack")
        .policy
        .deposit
        .amount_cents;
    let amount = format!("{}.{:02}", cents / 100, cents % 100);
    assert!(html.contains(&amount), "the pack's amount {amount}: {html}");
    assert!(html.contains("<form method=\"post\""), "{html}");

    w.restart().await;
    let mut paid = client.post(w.url(&path)).send().await.expect("POST");
    assert_eq!(paid.status().as_u16(), 200, "{:?}", paid.body().await);
    w.settle().await;
    assert_eq!(w.deposit("dep1").await, "paid");
    // The deposit workflow's events name its instance.
    let workflows = w.workflow_ids_of("deposit.").await;
    assert!(!workflows.is_empty());
    assert!(
        workflows
            .iter()
            .all(|w| w.as_deref() == Some(&*format!("{id}-deposit"))),
        "{workflows:?}"
    );
    assert_eq!(
        w.kinds_to(JANE).await.last().map(String::as_str),
        Some("deposit_receipt")
    );

    // Pressed again: nothing more happens.
    let again = client.post(w.url(&path)).send().await.expect("POST");
    assert_eq!(again.status().as_u16(), 409);
    w.settle().await;
    let receipts = w
        .kinds_to(JANE)
        .await
        .iter()
        .filter(|k| *k == "deposit_receipt")
        .count();
    assert_eq!(receipts, 1);
    let shown = client.get(w.url(&path)).send().await.expect("GET");
    assert_eq!(shown.status().as_u16(), 200, "the page says it is paid");

    // An appointment the sandbox never linked, and one that does not exist.
    let other = appointment_id_for("default", "booking", "ns0");
    for unlinked in [other, "no-such-appointment".to_string()] {
        let answer = client
            .post(w.url(&format!("/sandbox/pay/{unlinked}")))
            .send()
            .await
            .expect("POST");
        assert_eq!(answer.status().as_u16(), 404, "{unlinked}");
    }
    w.assert_nothing_twice().await;
    w.stop().await;
}

/// With Stripe configured, deposits go through Stripe and the sandbox page is gone.
async fn with_stripe_the_page_does_not_exist(kind: Kind) {
    let mut w = World::start(kind, t0(), "salon", &[]).await;
    let id = deposit_asked_for(&mut w).await;
    assert_eq!(w.stripe.links().len(), 1);
    let answer = common::client()
        .post(w.url(&format!("/sandbox/pay/{id}")))
        .send()
        .await
        .expect("POST");
    assert_eq!(answer.status().as_u16(), 404);
    assert_eq!(w.deposit("dep1").await, "awaiting_payment");
    w.stop().await;
}

on_both_backends!(
    the_sandbox_pay_page_takes_a_deposit_once,
    with_stripe_the_page_does_not_exist
);
