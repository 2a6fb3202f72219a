//! Inbound replies on the real daemon (both backends): after a booking's 48 h reminder
//! went out through the fake Twilio, signed replies to `/webhooks/twilio/sms` are
//! matched to the customer and the appointment, recorded once, and acted on — a confirm
//! confirms (and cancels the 24 h reminder), a cancel request is escalated without
//! cancelling, keywords opt out / in, a repeat delivery does nothing more, an unknown
//! number is escalated, and bad requests get a 4xx and record nothing.

mod common;
#[path = "fakes/twilio.rs"]
mod fake_twilio;

use std::time::Duration as StdDuration;

use aro::providers::twilio::signature::expected_signature;
use aro::store::schema::{appointments, consents, customers, escalations, messages, timers};
use aro::webhooks::signed_header::sign;
use chrono::{Duration, SecondsFormat, Utc};
use common::{client, spawn_app_with, Kind, TestApp, TestDb};
use diesel::prelude::*;
use fake_twilio::FakeTwilio;
use serde_json::json;

const SID: &str = "AC0000000000000000000000000000a1b2";
const TOKEN: &str = "inbound-test-token";
const PUBLIC: &str = "https://aro.example.com";
const SECRET: &str = "booking-secret";
const PHONE: &str = "+15559876543";
const OURS: &str = "+15550001111";

async fn app(kind: Kind, fake: &FakeTwilio) -> TestApp {
    let base = fake.base_url();
    spawn_app_with(
        TestDb::new(kind),
        &[
            ("ARO_PUBLIC_URL", PUBLIC),
            ("ARO_TWILIO_ACCOUNT_SID", SID),
            ("ARO_TWILIO_AUTH_TOKEN", TOKEN),
            ("ARO_TWILIO_FROM", OURS),
            ("ARO_TWILIO_API_BASE", base.as_str()),
            ("ARO_TWILIO_RATE", "50"),
            ("ARO_QUIET_HOURS", "off"),
            ("ARO_BOOKING_WEBHOOK_SECRET", SECRET),
        ],
    )
    .await
}

/// The state the tests look at.
#[derive(Debug, Default)]
struct Seen {
    appointment_status: Option<String>,
    timer_24h: Option<String>,
    opted_out: Option<bool>,
    consents: Vec<String>,
    escalations: Vec<String>,
    inbound: i64,
}

async fn seen(app: &TestApp) -> Seen {
    let db = aro::store::Database::open(&app.db.config(&[]).database).expect("open");
    db.run(|conn| {
        let appointment_status = appointments::table
            .select(appointments::status)
            .first(conn)
            .optional()?;
        let timer_24h = timers::table
            .filter(timers::kind.eq("reminder_24h"))
            .select(timers::status)
            .first(conn)
            .optional()?;
        let opted_out = customers::table
            .select(customers::opted_out)
            .first(conn)
            .optional()?;
        let consents = consents::table
            .filter(consents::source.eq("customer_reply"))
            .order(consents::recorded_at.asc())
            .select(consents::status)
            .load(conn)?;
        let escalations = escalations::table
            .order((escalations::created_at.asc(), escalations::id.asc()))
            .select(escalations::reason)
            .load(conn)?;
        let inbound = messages::table
            .filter(messages::direction.eq("inbound"))
            .count()
            .get_result(conn)?;
        Ok(Seen {
            appointment_status,
            timer_24h,
            opted_out,
            consents,
            escalations,
            inbound,
        })
    })
    .await
    .expect("read")
}

/// A booking whose 48 h reminder was sent (through the fake Twilio) and logged.
async fn reminded(kind: Kind) -> (FakeTwilio, TestApp) {
    let fake = FakeTwilio::start(SID, TOKEN);
    let app = app(kind, &fake).await;
    let starts_at = Utc::now() + Duration::hours(48) + Duration::seconds(2);
    let body = json!({
        "event": "appointment.created", "id": "d-1",
        "data": {"appointment_id": "ext-1",
                 "scheduled_at": starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                 "duration": 30, "timezone": "UTC",
                 "customer": {"name": "Jane", "phone": PHONE, "sms_consent": true}}
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
    let db = aro::store::Database::open(&app.db.config(&[]).database).expect("open");
    for _ in 0..1000 {
        let logged: i64 = db
            .run(|conn| {
                Ok(messages::table
                    .filter(messages::direction.eq("outbound"))
                    .filter(messages::appointment_id.is_not_null())
                    .count()
                    .get_result(conn)?)
            })
            .await
            .expect("read");
        if logged > 0 {
            return (fake, app);
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("the reminder was not sent");
}

fn form(message_sid: &str, from: &str, body: &str) -> Vec<(String, String)> {
    [
        ("AccountSid", SID),
        ("MessageSid", message_sid),
        ("From", from),
        ("To", OURS),
        ("Body", body),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn signed(form: &[(String, String)]) -> Option<String> {
    Some(expected_signature(
        TOKEN,
        &format!("{PUBLIC}/webhooks/twilio/sms"),
        form,
    ))
}

/// Posts a form; the status, content type and body.
async fn post(
    app: &TestApp,
    form: &[(String, String)],
    signature: Option<String>,
) -> (u16, String, String) {
    let mut request = client()
        .post(app.url("/webhooks/twilio/sms"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    if let Some(signature) = signature {
        request = request.insert_header(("X-Twilio-Signature", signature));
    }
    let body = serde_urlencoded::to_string(form).expect("form");
    let mut response = request.send_body(body).await.expect("sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = response.body().await.expect("body");
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).to_string(),
    )
}

async fn reply(app: &TestApp, message_sid: &str, from: &str, body: &str) {
    let sent = form(message_sid, from, body);
    let (code, content_type, answer) = post(app, &sent, signed(&sent)).await;
    assert_eq!(code, 200, "{answer}");
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    assert_eq!(
        answer,
        r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
    );
}

/// Polls until `check` holds (the engine applies inbox work asynchronously).
async fn until(app: &TestApp, what: &str, check: impl Fn(&Seen) -> bool) -> Seen {
    for _ in 0..500 {
        let now = seen(app).await;
        if check(&now) {
            return now;
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("{what}: {:?}", seen(app).await);
}

async fn a_confirm_reply_confirms_and_cancels_the_24h_reminder(kind: Kind) {
    let (_fake, app) = reminded(kind).await;
    reply(&app, "SM0000000000000000000000000000c001", PHONE, "yes 👍").await;
    let now = until(&app, "confirmed", |s| {
        s.appointment_status.as_deref() == Some("confirmed")
    })
    .await;
    assert_eq!(now.timer_24h.as_deref(), Some("cancelled"));
    assert_eq!(now.inbound, 1);
    assert!(now.escalations.is_empty(), "{:?}", now.escalations);
    assert_eq!(now.opted_out, Some(false));
}

async fn a_cancel_request_is_escalated_and_nothing_is_cancelled(kind: Kind) {
    let (_fake, app) = reminded(kind).await;
    reply(
        &app,
        "SM0000000000000000000000000000c002",
        PHONE,
        "I need to cancel my appointment",
    )
    .await;
    let now = until(&app, "escalated", |s| !s.escalations.is_empty()).await;
    assert_eq!(now.escalations, vec!["customer_wants_to_cancel"]);
    assert_eq!(now.appointment_status.as_deref(), Some("booked"));
    assert_eq!(now.opted_out, Some(false), "not a keyword: no opt-out");
    assert!(now.consents.is_empty());
}

async fn a_bare_cancel_opts_out_and_escalates(kind: Kind) {
    let (_fake, app) = reminded(kind).await;
    reply(&app, "SM0000000000000000000000000000c003", PHONE, "CANCEL").await;
    // Durable before the 2xx: no waiting.
    let now = seen(&app).await;
    assert_eq!(now.opted_out, Some(true));
    assert_eq!(now.consents, vec!["revoked"]);
    assert_eq!(now.escalations, vec!["possible_cancellation"]);
    assert_eq!(now.appointment_status.as_deref(), Some("booked"));
}

async fn stop_then_start_opts_out_then_in_and_repeats_do_nothing(kind: Kind) {
    let (_fake, app) = reminded(kind).await;
    let stop = "SM0000000000000000000000000000c004";
    reply(&app, stop, PHONE, "STOP").await;
    let now = seen(&app).await;
    assert_eq!((now.opted_out, now.consents.len()), (Some(true), 1));
    // Twilio retries the same MessageSid: acknowledged, one effect.
    reply(&app, stop, PHONE, "STOP").await;
    reply(&app, "SM0000000000000000000000000000c005", PHONE, "START").await;
    reply(&app, "SM0000000000000000000000000000c005", PHONE, "START").await;
    let now = seen(&app).await;
    assert_eq!(now.opted_out, Some(false));
    assert_eq!(now.consents, vec!["revoked", "granted"]);
    assert_eq!(now.inbound, 2);
    assert!(now.escalations.is_empty(), "{:?}", now.escalations);
}

async fn a_repeated_reply_takes_effect_once(kind: Kind) {
    let (_fake, app) = reminded(kind).await;
    let sid = "SM0000000000000000000000000000c006";
    for _ in 0..3 {
        reply(&app, sid, PHONE, "can we do another day?").await;
    }
    until(&app, "escalated", |s| !s.escalations.is_empty()).await;
    actix_web::rt::time::sleep(StdDuration::from_millis(300)).await;
    let now = seen(&app).await;
    assert_eq!(now.inbound, 1);
    assert_eq!(now.escalations.len(), 1, "{:?}", now.escalations);
}

async fn an_unknown_number_is_escalated_as_unmatched(kind: Kind) {
    let (_fake, app) = reminded(kind).await;
    reply(
        &app,
        "SM0000000000000000000000000000c007",
        "+15550009999",
        "yes",
    )
    .await;
    let now = seen(&app).await;
    assert_eq!(now.escalations, vec!["unmatched_message"]);
    assert_eq!(now.inbound, 1);
    assert_eq!(now.appointment_status.as_deref(), Some("booked"));
}

async fn bad_requests_get_a_4xx_and_record_nothing(kind: Kind) {
    let (_fake, app) = reminded(kind).await;
    let good = form("SM0000000000000000000000000000c008", PHONE, "STOP");
    let mut tampered = good.clone();
    tampered[4].1 = "START".into();
    let wrong_url = Some(expected_signature(
        TOKEN,
        &format!("{PUBLIC}/webhooks/twilio/status"),
        &good,
    ));
    let wrong_token = Some(expected_signature(
        "not-the-auth-token",
        &format!("{PUBLIC}/webhooks/twilio/sms"),
        &good,
    ));
    let no_from: Vec<(String, String)> =
        good.iter().filter(|(k, _)| k != "From").cloned().collect();
    let bad_sid = form("SM-not-a-sid!", PHONE, "STOP");
    let cases = vec![
        ("unsigned", good.clone(), None, 401),
        ("tampered", tampered, signed(&good), 401),
        ("wrong url", good.clone(), wrong_url, 401),
        ("wrong token", good.clone(), wrong_token, 401),
        ("garbled header", good.clone(), Some("%%%".into()), 401),
        ("empty header", good.clone(), Some(String::new()), 401),
        ("no From", no_from.clone(), signed(&no_from), 400),
        ("bad sid", bad_sid.clone(), signed(&bad_sid), 400),
    ];
    for (what, sent, signature, expected) in cases {
        let (code, _, answer) = post(&app, &sent, signature).await;
        assert_eq!(code, expected, "{what}: {answer}");
    }
    let now = seen(&app).await;
    assert_eq!(now.inbound, 0);
    assert_eq!(now.opted_out, Some(false));
    assert!(now.consents.is_empty() && now.escalations.is_empty());
}

on_both_backends!(
    a_confirm_reply_confirms_and_cancels_the_24h_reminder,
    a_cancel_request_is_escalated_and_nothing_is_cancelled,
    a_bare_cancel_opts_out_and_escalates,
    stop_then_start_opts_out_then_in_and_repeats_do_nothing,
    a_repeated_reply_takes_effect_once,
    an_unknown_number_is_escalated_as_unmatched,
    bad_requests_get_a_4xx_and_record_nothing,
);
