//! Every inbound parser takes whatever the network sends without panicking: arbitrary
//! bytes, and real payloads mutated byte by byte (flipped, cut, spliced), always come
//! back as `Ok` or as an error value — never a panic. The route test sends mutated
//! signed bookings to the real daemon and expects a 200 or a 4xx envelope, never a 5xx.

mod common;
#[path = "fakes/calendly.rs"]
mod fake_calendly;

use aro::providers::calendly;
use aro::providers::stripe;
use aro::providers::twilio::inbound::{parse_inbound, parse_status};
use aro::webhooks::{booking, signed_header};
use chrono::{TimeZone, Utc};
use common::{client, spawn_app_with, Kind, TestDb};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestRunner};

const BOOKING: &str = r#"{"event": "appointment.created", "id": "delivery-unique-id", "timestamp": "2026-03-01T10:00:00Z",
 "data": {"appointment_id": "ext-123", "scheduled_at": "2026-03-20T15:00:00Z", "duration": 30,
          "timezone": "America/New_York", "service_type": "Consultation", "service_cost": 150.0,
          "customer": {"name": "Jane Smith", "phone": "+15559876543", "email": "jane@example.com",
                       "sms_consent": true}}}"#;

const STRIPE: &str = r#"{"id": "evt_1", "object": "event", "type": "checkout.session.completed",
 "created": 1772359100, "data": {"object": {"id": "cs_1", "object": "checkout.session",
 "amount_total": 5000, "currency": "usd", "payment_status": "paid", "payment_link": "plink_1",
 "payment_intent": "pi_1", "metadata": {"appointment_id": "a-1", "customer_id": "c-1"}}}}"#;

fn calendly_body() -> Vec<u8> {
    let invitee = fake_calendly::FakeInvitee::new("INV1", "Jane Smith", Some("+1 555 987 6543"));
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
    let event = fake_calendly::FakeEvent::new("EVT1", at, invitee.clone());
    fake_calendly::webhook_body("invitee.created", &event, &invitee, at)
        .to_string()
        .into_bytes()
}

/// A real payload with a few bytes flipped, cut or spliced in.
fn mutated(original: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = original.len();
    proptest::collection::vec((0..len.max(1), any::<u8>(), 0..3u8), 1..8).prop_map(move |edits| {
        let mut bytes = original.clone();
        for (at, byte, how) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match how {
                0 if !bytes.is_empty() => bytes[at] = byte,
                1 => bytes.truncate(at),
                _ => bytes.insert(at.min(bytes.len()), byte),
            }
        }
        bytes
    })
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(bytes).unwrap_or_default()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        rng_seed: RngSeed::Fixed(0xF022),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = booking::parse("default", &bytes);
        let _ = stripe::parse_event(&bytes);
        let _ = calendly::parse(&bytes, "US");
        let fields = form(&bytes);
        let _ = parse_inbound(&fields);
        let _ = parse_status(&fields);
        let text = String::from_utf8_lossy(&bytes);
        let _ = signed_header::parse(&text);
        let _ = signed_header::verify(Some(&text), &bytes, b"secret", 300, Utc::now());
    }

    #[test]
    fn mutated_bookings_never_panic(bytes in mutated(BOOKING.as_bytes().to_vec())) {
        let _ = booking::parse("default", &bytes);
    }

    #[test]
    fn mutated_stripe_events_never_panic(bytes in mutated(STRIPE.as_bytes().to_vec())) {
        let _ = stripe::parse_event(&bytes);
    }

    #[test]
    fn mutated_calendly_deliveries_never_panic(bytes in mutated(calendly_body())) {
        let _ = calendly::parse(&bytes, "US");
    }

    #[test]
    fn mutated_twilio_forms_never_panic(
        bytes in mutated(b"MessageSid=SM1&From=%2B15559876543&To=%2B15550001111&Body=Yes+%F0%9F%91%8D&NumMedia=0&MessageStatus=delivered".to_vec())
    ) {
        let fields = form(&bytes);
        let _ = parse_inbound(&fields);
        let _ = parse_status(&fields);
    }
}

#[test]
fn the_real_payloads_parse() {
    assert!(booking::parse("default", BOOKING.as_bytes()).is_ok());
    assert!(stripe::parse_event(STRIPE.as_bytes()).is_ok());
    assert!(calendly::parse(&calendly_body(), "US").is_ok());
}

/// Mutated, correctly signed bookings through the real route: 200 or a 4xx envelope.
async fn mutated_signed_bookings_get_200_or_a_4xx_envelope(kind: Kind) {
    const SECRET: &str = "fuzz-secret";
    let app = spawn_app_with(TestDb::new(kind), &[("ARO_BOOKING_WEBHOOK_SECRET", SECRET)]).await;
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(0xB00C),
        ..Config::default()
    });
    let strategy = mutated(BOOKING.as_bytes().to_vec());
    for _ in 0..60 {
        let body = strategy.new_tree(&mut runner).expect("a case").current();
        let signature = signed_header::sign(SECRET.as_bytes(), Utc::now().timestamp(), &body);
        let mut response = client()
            .post(app.url("/webhooks/booking"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Aro-Signature", signature))
            .send_body(body.clone())
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let answer = response.body().await.expect("body");
        let json: serde_json::Value = serde_json::from_slice(&answer).expect("JSON answer");
        match status {
            200 => assert!(json["status"].is_string(), "{json}"),
            400..=499 => assert!(json["error"]["code"].is_string(), "{json}"),
            other => panic!(
                "status {other} for {:?}: {json}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
}

on_both_backends!(mutated_signed_bookings_get_200_or_a_4xx_envelope);
