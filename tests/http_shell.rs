//! The HTTP shell of the real daemon, on a random port, against each backend:
//! `/health`, `/ready`, `/metrics`, the error envelope for unknown routes and wrong
//! methods, and request / correlation ids.

mod common;

use common::{client, spawn_app, Kind};
use serde_json::Value;

async fn health_answers_ok(kind: Kind) {
    let app = spawn_app(kind).await;
    let mut res = client()
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

async fn ready_on_a_fresh_database(kind: Kind) {
    let app = spawn_app(kind).await;
    let mut res = client()
        .get(app.url("/ready"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
}

async fn unknown_route_gets_404_envelope(kind: Kind) {
    let app = spawn_app(kind).await;
    let mut res = client()
        .get(app.url("/no/such/thing"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/json"
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert_eq!(body["error"]["retryable"], false);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/no/such/thing"));
    assert!(body["error"]["details"].is_object());
}

async fn wrong_method_gets_405_envelope(kind: Kind) {
    let app = spawn_app(kind).await;
    let mut res = client()
        .post(app.url("/health"))
        .send_body("x")
        .await
        .expect("request");
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert_eq!(body["error"]["details"]["reason"], "method_not_allowed");
    assert_eq!(body["error"]["details"]["method"], "POST");
}

async fn every_response_carries_request_and_correlation_ids(kind: Kind) {
    let app = spawn_app(kind).await;
    let res = client()
        .get(app.url("/health"))
        .insert_header(("X-Correlation-Id", "booking-42"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.headers().get("x-correlation-id").unwrap(), "booking-42");
    let first = res.headers().get("x-request-id").unwrap().clone();
    let res = client()
        .get(app.url("/missing"))
        .send()
        .await
        .expect("request");
    let second = res.headers().get("x-request-id").unwrap().clone();
    assert_ne!(first, second, "each request gets its own id");
    // Without a caller id, the correlation id is the request id.
    assert_eq!(res.headers().get("x-correlation-id").unwrap(), &second);
    // An unsafe caller id is replaced, not echoed.
    let res = client()
        .get(app.url("/health"))
        .insert_header(("X-Correlation-Id", "bad id with spaces"))
        .send()
        .await
        .expect("request");
    assert_ne!(
        res.headers().get("x-correlation-id").unwrap(),
        "bad id with spaces"
    );
}

async fn metrics_speak_prometheus(kind: Kind) {
    let app = spawn_app(kind).await;
    client()
        .get(app.url("/ready"))
        .send()
        .await
        .expect("request");
    let mut res = client()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(res.body().await.expect("body").to_vec()).expect("utf8");
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/ready",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("aro_build_info"), "{text}");
}

on_both_backends!(
    health_answers_ok,
    ready_on_a_fresh_database,
    unknown_route_gets_404_envelope,
    wrong_method_gets_405_envelope,
    every_response_carries_request_and_correlation_ids,
    metrics_speak_prometheus,
);
