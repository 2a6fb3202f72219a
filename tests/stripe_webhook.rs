//! `POST /webhooks/stripe` on the real daemon (both backends): a signed paid checkout
//! session naming an appointment, and a succeeded PaymentIntent, are each recorded once
//! in the inbox (a repeat is a
//! duplicate, and several `v1=` signatures pass when one matches, as during a secret
//! roll); other event types are acknowledged and ignored; unsigned, tampered, stale,
//! future-dated, wrongly keyed, v0-only, malformed-header, oversized and malformed-body
//! deliveries get a 4xx envelope and record nothing; without a
//! webhook secret the route does not exist.

mod common;

use aro::store::schema::inbox;
use aro::webhooks::signed_header::sign;
use chrono::Utc;
use common::{client, spawn_app_with, Kind, TestApp, TestDb};
use diesel::prelude::*;
use serde_json::json;

const SECRET: &str = "whsec_route_test";

async fn app(kind: Kind) -> TestApp {
    spawn_app_with(
        TestDb::new(kind),
        &[
            ("ARO_STRIPE_WEBHOOK_SECRET", SECRET),
            ("ARO_STRIPE_SECRET_KEY", "sk_test_route"),
            ("ARO_STRIPE_API_BASE", "http://127.0.0.1:9"),
        ],
    )
    .await
}

fn event(id: &str, event_type: &str, status: &str) -> String {
    json!({
        "id": id, "object": "event", "type": event_type, "created": 1_760_000_000,
        "data": {"object": {
            "id": "cs_test_1", "object": "checkout.session", "payment_link": "plink_1",
            "payment_status": status, "amount_total": 5000, "currency": "usd",
            "payment_intent": "pi_1",
            "metadata": {"appointment_id": "appt-1", "customer_id": "cust-1"}
        }}
    })
    .to_string()
}

async fn post(app: &TestApp, body: &str, signature: Option<String>) -> (u16, serde_json::Value) {
    let mut request = client()
        .post(app.url("/webhooks/stripe"))
        .insert_header(("Content-Type", "application/json"));
    if let Some(signature) = signature {
        request = request.insert_header(("Stripe-Signature", signature));
    }
    let mut response = request.send_body(body.to_string()).await.expect("sent");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

fn signed(body: &str) -> Option<String> {
    Some(sign(
        SECRET.as_bytes(),
        Utc::now().timestamp(),
        body.as_bytes(),
    ))
}

async fn inbox_rows(app: &TestApp) -> i64 {
    let db = aro::store::Database::open(&app.db.config(&[]).database).expect("open");
    db.run(|conn| {
        Ok(inbox::table
            .filter(inbox::source.eq("stripe"))
            .count()
            .get_result(conn)?)
    })
    .await
    .expect("read")
}

async fn payments_are_recorded_once_and_bad_deliveries_refused(kind: Kind) {
    let app = app(kind).await;
    let paid = event("evt_1", "checkout.session.completed", "paid");

    let (status, body) = post(&app, &paid, None).await;
    assert_eq!(status, 401, "unsigned: {body}");
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let tampered = paid.replace("5000", "1");
    let (status, _) = post(&app, &tampered, signed(&paid)).await;
    assert_eq!(status, 401, "tampered");
    let stale = Some(sign(
        SECRET.as_bytes(),
        Utc::now().timestamp() - 600,
        paid.as_bytes(),
    ));
    let (status, _) = post(&app, &paid, stale).await;
    assert_eq!(status, 401, "outside the 300 s tolerance");
    let wrong_secret = Some(sign(
        b"whsec_someone_else",
        Utc::now().timestamp(),
        paid.as_bytes(),
    ));
    let (status, _) = post(&app, &paid, wrong_secret).await;
    assert_eq!(status, 401, "signed with another endpoint's secret");
    let future = Some(sign(
        SECRET.as_bytes(),
        Utc::now().timestamp() + 600,
        paid.as_bytes(),
    ));
    let (status, _) = post(&app, &paid, future).await;
    assert_eq!(status, 401, "a timestamp 10 minutes ahead");
    let good = signed(&paid).expect("header");
    let (t, v1) = good.split_once(',').expect("t=…,v1=…");
    // Stripe's own scheme v0 is not accepted in place of v1.
    let (status, _) = post(
        &app,
        &paid,
        Some(format!("{t},{}", v1.replace("v1=", "v0="))),
    )
    .await;
    assert_eq!(status, 401, "v0 only");
    for malformed in [
        "garbage".to_string(),
        format!("t=soon,{v1}"),
        t.to_string(),
        v1.to_string(),
        String::new(),
    ] {
        let (status, body) = post(&app, &paid, Some(malformed.clone())).await;
        assert_eq!(status, 401, "malformed header {malformed:?}: {body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{malformed:?}");
    }
    let oversized = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (status, _) = post(&app, &oversized, signed(&oversized)).await;
    assert_eq!(status, 413, "oversized");
    let (status, body) = post(&app, "{not json", signed("{not json")).await;
    assert_eq!(status, 400, "malformed: {body}");
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(inbox_rows(&app).await, 0, "nothing recorded");

    // During a secret roll Stripe signs with both secrets: one matching v1 is enough.
    let now = Utc::now().timestamp();
    let old = sign(b"whsec_old_secret", now, paid.as_bytes());
    let current = sign(SECRET.as_bytes(), now, paid.as_bytes());
    let (_, current_v1) = current.split_once(',').expect("t=…,v1=…");
    let rolled = format!("{old},{current_v1}");
    let (status, body) = post(&app, &paid, Some(rolled)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    let (status, body) = post(&app, &paid, signed(&paid)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    let unpaid = event("evt_2", "checkout.session.completed", "unpaid");
    let (_, body) = post(&app, &unpaid, signed(&unpaid)).await;
    assert_eq!(
        body["status"], "ignored",
        "an unpaid session is not a payment"
    );
    let other = event("evt_3", "customer.created", "paid");
    let (status, body) = post(&app, &other, signed(&other)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ignored")));
    assert_eq!(inbox_rows(&app).await, 1);

    // A delayed payment method: the PaymentIntent's success is the payment. Delivered
    // twice, it is recorded once.
    let intent = json!({
        "id": "evt_4", "object": "event", "type": "payment_intent.succeeded",
        "created": 1_760_000_100,
        "data": {"object": {
            "id": "pi_2", "object": "payment_intent", "amount_received": 5000,
            "currency": "usd", "status": "succeeded",
            "metadata": {"appointment_id": "appt-2", "customer_id": "cust-2"}
        }}
    })
    .to_string();
    let (status, body) = post(&app, &intent, signed(&intent)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("accepted")),
        "{body}"
    );
    let (status, body) = post(&app, &intent, signed(&intent)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    assert_eq!(
        inbox_rows(&app).await,
        2,
        "one row per payment event, not per delivery"
    );
    app.handle.stop(true).await;
}

async fn the_route_is_off_without_a_secret(kind: Kind) {
    let app = spawn_app_with(TestDb::new(kind), &[]).await;
    let paid = event("evt_1", "checkout.session.completed", "paid");
    let (status, _) = post(&app, &paid, signed(&paid)).await;
    assert_eq!(status, 404);
    app.handle.stop(true).await;
}

on_both_backends!(
    payments_are_recorded_once_and_bad_deliveries_refused,
    the_route_is_off_without_a_secret,
);
