//! `POST /webhooks/booking` on the real daemon (both backends): a signed delivery is
//! recorded before the 2xx and becomes an appointment; a repeat is acknowledged and
//! changes nothing; unsigned, tampered, stale, future, wrongly signed, malformed and
//! oversized requests get a 4xx envelope and leave no trace.

mod common;

use std::time::Duration as StdDuration;

use aro::store::schema::{appointments, events, inbox};
use aro::webhooks::signed_header::sign;
use chrono::Utc;
use common::{client, spawn_app_with, Kind, TestApp, TestDb};
use diesel::prelude::*;
use serde_json::{json, Value};

const SECRET: &str = "booking-secret-for-tests";

async fn app(kind: Kind) -> TestApp {
    spawn_app_with(TestDb::new(kind), &[("ARO_BOOKING_WEBHOOK_SECRET", SECRET)]).await
}

fn created(delivery_id: &str, external_id: &str, scheduled_at: &str) -> String {
    json!({
        "event": "appointment.created",
        "id": delivery_id,
        "timestamp": Utc::now().to_rfc3339(),
        "data": {
            "appointment_id": external_id,
            "scheduled_at": scheduled_at,
            "duration": 30,
            "timezone": "America/New_York",
            "service_type": "Consultation",
            "service_cost": 150.0,
            "customer": {"name": "Jane Smith", "phone": "+15559876543",
                         "email": "jane@example.com", "sms_consent": true}
        }
    })
    .to_string()
}

async fn post(app: &TestApp, body: &str, signature: Option<String>) -> (u16, Value) {
    let mut request = client()
        .post(app.url("/webhooks/booking"))
        .insert_header(("Content-Type", "application/json"));
    if let Some(signature) = signature {
        request = request.insert_header(("X-Aro-Signature", signature));
    }
    let mut response = request.send_body(body.to_string()).await.expect("sent");
    let status = response.status().as_u16();
    let body = response.body().limit(1 << 20).await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn signed(body: &str) -> Option<String> {
    Some(sign(
        SECRET.as_bytes(),
        Utc::now().timestamp(),
        body.as_bytes(),
    ))
}

async fn counts(app: &TestApp) -> (i64, i64, i64) {
    let db = aro::store::Database::open(&app.db.config(&[]).database).expect("open");
    db.run(|conn| {
        Ok((
            inbox::table.count().get_result(conn)?,
            appointments::table.count().get_result(conn)?,
            // Appointment events only: the sandbox sends the booking confirmation
            // (`message.*` events) on its own time.
            events::table
                .filter(events::event_type.like("appointment.%"))
                .count()
                .get_result(conn)?,
        ))
    })
    .await
    .expect("counted")
}

async fn wait_for_appointments(app: &TestApp, n: i64) {
    for _ in 0..500 {
        if counts(app).await.1 == n {
            return;
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("never reached {n} appointments: {:?}", counts(app).await);
}

async fn a_signed_delivery_is_recorded_then_applied_once(kind: Kind) {
    let app = app(kind).await;
    let body = created("d-1", "ext-1", "2031-03-20T15:00:00Z");
    let (status, answer) = post(&app, &body, signed(&body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"status": "accepted", "id": "d-1"}));
    wait_for_appointments(&app, 1).await;

    // The sender retries (say, it missed our answer): acknowledged, nothing new.
    let (status, answer) = post(&app, &body, signed(&body)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["status"], "duplicate");
    let before = counts(&app).await;
    actix_web::rt::time::sleep(StdDuration::from_millis(100)).await;
    assert_eq!(counts(&app).await, before);
    assert_eq!(before.0, 1, "one inbox item");

    // A new delivery about the same appointment with a new time moves it.
    let moved = created("d-2", "ext-1", "2031-03-21T15:00:00Z")
        .replace("appointment.created", "appointment.updated");
    let (status, _) = post(&app, &moved, signed(&moved)).await;
    assert_eq!(status, 200);
    let db = aro::store::Database::open(&app.db.config(&[]).database).expect("open");
    for _ in 0..500 {
        let starts: Vec<chrono::NaiveDateTime> = db
            .run(|conn| {
                Ok(appointments::table
                    .select(appointments::starts_at)
                    .load(conn)?)
            })
            .await
            .expect("read");
        if starts.len() == 1 && starts[0].and_utc().to_rfc3339() == "2031-03-21T15:00:00+00:00" {
            return;
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("the appointment never moved");
}

async fn bad_requests_get_an_envelope_and_change_nothing(kind: Kind) {
    let app = app(kind).await;
    let body = created("d-9", "ext-9", "2031-03-20T15:00:00Z");
    let now = Utc::now().timestamp();
    let wrong_secret = Some(sign(b"not-the-secret", now, body.as_bytes()));
    let stale = Some(sign(SECRET.as_bytes(), now - 330, body.as_bytes()));
    // Well past the 300 s window: the request takes time to reach the check.
    let future = Some(sign(SECRET.as_bytes(), now + 330, body.as_bytes()));
    let tampered = body.replace("2031-03-20", "2031-03-27");
    let two_values = {
        let good = sign(SECRET.as_bytes(), now, body.as_bytes());
        let digest = good.split("v1=").nth(1).expect("digest").to_string();
        Some(format!("t={now},v1={},v1={digest}", "00".repeat(32)))
    };
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        ("unsigned", body.clone(), None, 401, "signature_missing"),
        (
            "wrong secret",
            body.clone(),
            wrong_secret,
            401,
            "signature_mismatch",
        ),
        ("stale", body.clone(), stale, 401, "signature_stale"),
        ("future", body.clone(), future, 401, "signature_stale"),
        (
            "tampered",
            tampered,
            signed(&body),
            401,
            "signature_mismatch",
        ),
        (
            "malformed header",
            body.clone(),
            Some("v1=abc".into()),
            401,
            "signature_malformed",
        ),
        ("malformed json", "{nope".into(), signed("{nope"), 400, ""),
        (
            "bad phone",
            body.replace("+15559876543", "12345"),
            signed(&body.replace("+15559876543", "12345")),
            400,
            "",
        ),
    ];
    for (what, sent, signature, expected, reason) in cases {
        let (status, answer) = post(&app, &sent, signature).await;
        assert_eq!(status, expected, "{what}: {answer}");
        let code = if expected == 401 {
            "UNAUTHORIZED"
        } else {
            "VALIDATION_ERROR"
        };
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        if !reason.is_empty() {
            assert_eq!(answer["error"]["details"]["reason"], reason, "{what}");
        }
    }
    // Oversized: refused before anything is read into the inbox.
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let (status, answer) = post(&app, &huge, signed(&huge)).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "VALIDATION_ERROR");

    // Two v1 values, one of them right: accepted (a secret being rolled).
    let (status, _) = post(&app, &body, two_values).await;
    assert_eq!(status, 200);
    wait_for_appointments(&app, 1).await;
    assert_eq!(
        counts(&app).await.0,
        1,
        "only the good delivery left a trace"
    );
}

async fn the_route_is_disabled_without_a_secret(kind: Kind) {
    let app = spawn_app_with(TestDb::new(kind), &[]).await;
    let body = created("d-1", "ext-1", "2031-03-20T15:00:00Z");
    let (status, answer) = post(&app, &body, signed(&body)).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], "NOT_FOUND");
}

on_both_backends!(
    a_signed_delivery_is_recorded_then_applied_once,
    bad_requests_get_an_envelope_and_change_nothing,
    the_route_is_disabled_without_a_secret,
);

/// `http.webhook_rate_limit_per_minute` limits each source address: past the limit a
/// delivery gets 429 with `Retry-After` and is not recorded; another address, and the
/// admin routes, are counted apart.
#[actix_rt::test]
async fn webhooks_are_rate_limited_per_source_when_configured() {
    let app = spawn_app_with(
        TestDb::new(Kind::Sqlite),
        &[
            ("ARO_BOOKING_WEBHOOK_SECRET", SECRET),
            ("ARO_HTTP_WEBHOOK_RATE_LIMIT_PER_MINUTE", "3"),
        ],
    )
    .await;
    let from = |source: u8| {
        awc::Client::builder()
            .connector(awc::Connector::new().local_address(std::net::IpAddr::V4(
                std::net::Ipv4Addr::new(127, 0, 0, source),
            )))
            .finish()
    };
    let deliver = |source: u8, n: u32| {
        let body = created(
            &format!("d-{source}-{n}"),
            &format!("ext-{source}-{n}"),
            "2031-03-20T15:00:00Z",
        );
        let request = from(source)
            .post(app.url("/webhooks/booking"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Aro-Signature", signed(&body).expect("signature")));
        async move {
            let mut response = request.send_body(body).await.expect("sent");
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (response.status().as_u16(), body, retry_after)
        }
    };
    for n in 0..3 {
        let (status, body, _) = deliver(11, n).await;
        assert_eq!(status, 200, "delivery {n}: {body}");
    }
    let (status, body, retry_after) = deliver(11, 3).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(body["error"]["retryable"], true);
    assert!(
        retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{retry_after:?}"
    );
    assert_eq!(
        counts(&app).await.0,
        3,
        "the refused delivery is not recorded"
    );
    let (status, body, _) = deliver(12, 0).await;
    assert_eq!(status, 200, "another source address: {body}");
    let mut health = from(11).get(app.url("/health")).send().await.expect("sent");
    assert_eq!(health.status().as_u16(), 200, "{:?}", health.body().await);
    assert_eq!(counts(&app).await.0, 4);
}
