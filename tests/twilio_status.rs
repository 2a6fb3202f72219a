//! Twilio's status callbacks on the real daemon (both backends): a message the engine
//! sent through the Twilio adapter (to the fake Twilio) is in the message log with its
//! MessageSid; signed callbacks move its status forward and append to its history once
//! each; unsigned, tampered, wrongly signed or malformed callbacks get a 4xx envelope
//! and change nothing.

mod common;
#[path = "fakes/twilio.rs"]
mod fake_twilio;

use std::time::Duration as StdDuration;

use aro::providers::twilio::signature::expected_signature;
use aro::store::schema::{message_status_history, messages};
use aro::webhooks::signed_header::sign;
use chrono::{Duration, SecondsFormat, Utc};
use common::{client, spawn_app_with, Kind, TestApp, TestDb};
use diesel::prelude::*;
use fake_twilio::FakeTwilio;
use serde_json::{json, Value};

const SID: &str = "AC0000000000000000000000000000s7a7";
const TOKEN: &str = "status-test-token";
const PUBLIC: &str = "https://aro.example.com";
const SECRET: &str = "booking-secret";

async fn app(kind: Kind, fake: &FakeTwilio) -> TestApp {
    let base = fake.base_url();
    spawn_app_with(
        TestDb::new(kind),
        &[
            ("ARO_PUBLIC_URL", PUBLIC),
            ("ARO_TWILIO_ACCOUNT_SID", SID),
            ("ARO_TWILIO_AUTH_TOKEN", TOKEN),
            ("ARO_TWILIO_FROM", "+15550001111"),
            ("ARO_TWILIO_API_BASE", base.as_str()),
            ("ARO_TWILIO_RATE", "50"),
            ("ARO_QUIET_HOURS", "off"),
            ("ARO_BOOKING_WEBHOOK_SECRET", SECRET),
        ],
    )
    .await
}

fn params(sid: &str, status: &str) -> Vec<(String, String)> {
    [
        ("AccountSid", SID),
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("To", "+15559876543"),
        ("From", "+15550001111"),
        ("ApiVersion", "2010-04-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn callback(
    app: &TestApp,
    form: &[(String, String)],
    signature: Option<String>,
) -> (u16, Value) {
    let mut request = client()
        .post(app.url("/webhooks/twilio/status"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    if let Some(signature) = signature {
        request = request.insert_header(("X-Twilio-Signature", signature));
    }
    let body = serde_urlencoded::to_string(form).expect("form");
    let mut response = request.send_body(body).await.expect("sent");
    let status = response.status().as_u16();
    let bytes = response.body().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn signed(form: &[(String, String)]) -> Option<String> {
    Some(expected_signature(
        TOKEN,
        &format!("{PUBLIC}/webhooks/twilio/status"),
        form,
    ))
}

async fn log(app: &TestApp) -> (Vec<(String, Option<String>, String)>, Vec<String>) {
    let db = aro::store::Database::open(&app.db.config(&[]).database).expect("open");
    db.run(|conn| {
        let rows = messages::table
            .order(messages::created_at.asc())
            .select((
                messages::provider,
                messages::provider_message_id,
                messages::status,
            ))
            .load(conn)?;
        let history = message_status_history::table
            .order((
                message_status_history::occurred_at.asc(),
                message_status_history::id.asc(),
            ))
            .select(message_status_history::status)
            .load(conn)?;
        Ok((rows, history))
    })
    .await
    .expect("read")
}

async fn a_sent_reminder_is_logged_and_its_status_moves_forward(kind: Kind) {
    let fake = FakeTwilio::start(SID, TOKEN);
    let app = app(kind, &fake).await;
    // A booking whose 48 h reminder is due two seconds from now.
    let starts_at = Utc::now() + Duration::hours(48) + Duration::seconds(2);
    let body = json!({
        "event": "appointment.created", "id": "d-1",
        "data": {"appointment_id": "ext-1",
                 "scheduled_at": starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                 "duration": 30, "timezone": "UTC",
                 "customer": {"name": "Jane", "phone": "+15559876543", "sms_consent": true}}
    })
    .to_string();
    let signature = sign(SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes());
    let response = client()
        .post(app.url("/webhooks/booking"))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("X-Aro-Signature", signature))
        .send_body(body)
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    for _ in 0..1000 {
        if !fake.accepted().is_empty() && !log(&app).await.0.is_empty() {
            break;
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1, "the reminder reached Twilio");
    assert_eq!(
        accepted[0].status_callback.as_deref(),
        Some("https://aro.example.com/webhooks/twilio/status")
    );
    let sid = accepted[0].sid.clone();
    let (rows, history) = log(&app).await;
    assert_eq!(
        rows,
        vec![(
            "twilio".to_string(),
            Some(sid.clone()),
            "queued".to_string()
        )]
    );
    assert_eq!(history, vec!["queued"]);

    for status in ["sent", "delivered"] {
        let form = params(&sid, status);
        let (code, answer) = callback(&app, &form, signed(&form)).await;
        assert_eq!((code, answer["status"].as_str()), (200, Some("recorded")));
    }
    // A repeat is acknowledged and recorded once; a late earlier stage does not move the
    // message back.
    let form = params(&sid, "delivered");
    let (code, answer) = callback(&app, &form, signed(&form)).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("duplicate")));
    let form = params(&sid, "sending");
    let (code, _) = callback(&app, &form, signed(&form)).await;
    assert_eq!(code, 200);
    let (rows, history) = log(&app).await;
    assert_eq!(rows[0].2, "delivered");
    assert_eq!(history, vec!["queued", "sent", "delivered", "sending"]);
}

async fn bad_callbacks_get_an_envelope_and_change_nothing(kind: Kind) {
    let fake = FakeTwilio::start(SID, TOKEN);
    let app = app(kind, &fake).await;
    let form = params("SM00000000000000000000000000000001", "delivered");
    let mut tampered = form.clone();
    tampered[2].1 = "failed".into();
    let wrong_token = Some(expected_signature(
        "not-the-token",
        &format!("{PUBLIC}/webhooks/twilio/status"),
        &form,
    ));
    let wrong_url = Some(expected_signature(
        TOKEN,
        "https://elsewhere.example.com/webhooks/twilio/status",
        &form,
    ));
    let no_sid: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| k != "MessageSid")
        .cloned()
        .collect();
    let cases = vec![
        ("unsigned", form.clone(), None, 401),
        ("tampered", tampered, signed(&form), 401),
        ("wrong token", form.clone(), wrong_token, 401),
        ("wrong url", form.clone(), wrong_url, 401),
        ("garbled header", form.clone(), Some("%%%".into()), 401),
        ("no MessageSid", no_sid.clone(), signed(&no_sid), 400),
    ];
    for (what, sent, signature, expected) in cases {
        let (code, answer) = callback(&app, &sent, signature).await;
        assert_eq!(code, expected, "{what}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{what}: {answer}");
    }
    let (rows, history) = log(&app).await;
    assert!(
        rows.is_empty() && history.is_empty(),
        "{rows:?} {history:?}"
    );

    // A callback that beats the send's own record leaves a placeholder the send fills.
    let (code, _) = callback(&app, &form, signed(&form)).await;
    assert_eq!(code, 200);
    let (rows, history) = log(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(history, vec!["delivered"]);
}

on_both_backends!(
    a_sent_reminder_is_logged_and_its_status_moves_forward,
    bad_callbacks_get_an_envelope_and_change_nothing,
);
