//! The Event API on the real daemon, both backends: paging after a cursor returns every
//! event once and in order; the server-sent-event stream pushes an event committed
//! after it opened; a subscription receives signed deliveries in order, is retried
//! after its receiver fails, and a replay delivers again from a cursor.

mod common;
#[path = "fakes/server.rs"]
mod server;

use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use aro::auth::Role;
use aro::store::schema::{events, integration_secrets, subscriptions};
use aro::store::Database;
use common::credentials::create_token;
use common::{spawn_app, Kind, TestApp};
use diesel::prelude::*;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use server::FakeServer;
use sha2::Sha256;

struct Ctx {
    app: TestApp,
    db: Database,
    owner: String,
    staff: String,
    viewer: String,
}

async fn token(db: &Database, role: Role) -> String {
    create_token(db, role, None).await.1
}

async fn setup(kind: Kind) -> Ctx {
    let app = spawn_app(kind).await;
    let db = Database::open(&app.db.config(&[]).database).expect("open database");
    Ctx {
        owner: token(&db, Role::Owner).await,
        staff: token(&db, Role::Staff).await,
        viewer: token(&db, Role::Viewer).await,
        app,
        db,
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(StdDuration::from_secs(30))
        .finish()
}

struct Answer {
    status: u16,
    body: Value,
}

impl Ctx {
    async fn send(
        &self,
        method: awc::http::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let request = client()
            .request(method, self.app.url(path))
            .insert_header(("Authorization", format!("Bearer {token}")));
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("request");
        let bytes = response.body().limit(16 << 20).await.expect("body");
        Answer {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(awc::http::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send(awc::http::Method::POST, path, token, Some(body))
            .await
    }

    /// Books an appointment through the Command API (no phone: no messages).
    async fn book(&self, external_id: &str) {
        let mut response = client()
            .post(self.app.url("/v1/commands"))
            .insert_header(("Authorization", format!("Bearer {}", self.staff)))
            .insert_header(("Idempotency-Key", format!("book-{external_id}")))
            .send_json(&json!({
                "commandType": "appointment.upsert",
                "payload": {"appointment_id": external_id, "scheduled_at": "2031-05-01T15:00:00Z",
                            "duration": 30, "customer": {"name": "Someone"}},
            }))
            .await
            .expect("request");
        let body = response.body().await.expect("body");
        assert_eq!(response.status().as_u16(), 202, "{body:?}");
    }

    /// Every event's (seq, event id), in order.
    async fn stored_events(&self) -> Vec<(i64, String)> {
        self.db
            .run(|conn| {
                Ok(events::table
                    .order(events::seq.asc())
                    .select((events::seq, events::event_id))
                    .load(conn)?)
            })
            .await
            .expect("events")
    }

    /// Waits until `n` events are stored.
    async fn wait_for_events(&self, n: usize) -> Vec<(i64, String)> {
        let deadline = Instant::now() + StdDuration::from_secs(20);
        loop {
            let stored = self.stored_events().await;
            if stored.len() >= n {
                return stored;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} events",
                stored.len()
            );
            actix_web::rt::time::sleep(StdDuration::from_millis(20)).await;
        }
    }
}

async fn paging_returns_every_event_once_in_order(kind: Kind) {
    let ctx = setup(kind).await;
    for n in 0..7 {
        ctx.book(&format!("ext-{n}")).await;
    }
    let stored = ctx.wait_for_events(7).await;

    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    let mut pages = 0;
    loop {
        let page = ctx
            .get(&format!("/v1/events?after={cursor}&limit=3"), &ctx.viewer)
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        pages += 1;
        let events = page.body["events"].as_array().expect("events").clone();
        assert!(events.len() <= 3);
        for event in &events {
            for key in [
                "eventId",
                "eventType",
                "occurredAt",
                "tenantId",
                "profile",
                "payload",
            ] {
                assert!(event.get(key).is_some(), "{key} missing: {event}");
            }
            assert_eq!(event["tenantId"], "default");
            assert_eq!(event["aggregate"]["type"], "appointment");
            assert!(event["aggregate"]["version"].is_i64());
            let metadata = &event["metadata"];
            for key in ["workflowId", "correlationId", "causationId"] {
                assert!(metadata.get(key).is_some(), "metadata.{key} missing");
            }
            seen.push(event["eventId"].as_str().expect("id").to_string());
        }
        let next = page.body["nextCursor"]
            .as_str()
            .expect("cursor")
            .to_string();
        if !page.body["hasMore"].as_bool().expect("hasMore") {
            assert_eq!(next, stored.last().expect("events").0.to_string());
            break;
        }
        assert_ne!(next, cursor, "the cursor moves");
        cursor = next;
        assert!(pages < 50, "paging never ends");
    }
    let expected: Vec<String> = stored.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(seen, expected, "every event once, in order");

    // From the end: nothing, and the cursor stays.
    let end = stored.last().expect("events").0.to_string();
    let page = ctx
        .get(&format!("/v1/events?after={end}"), &ctx.viewer)
        .await;
    assert_eq!(page.body["events"], json!([]));
    assert_eq!(page.body["nextCursor"], end.as_str());
    assert_eq!(page.body["hasMore"], false);

    for bad in [
        "/v1/events?after=abc",
        "/v1/events?after=-1",
        "/v1/events?limit=0",
        "/v1/events?limit=1001",
    ] {
        let answer = ctx.get(bad, &ctx.viewer).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], "VALIDATION_ERROR");
    }
    let mut anonymous = client()
        .get(ctx.app.url("/v1/events"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
    let _ = anonymous.body().await;
}

/// Reads the stream until `pred` holds for what was read, or the deadline passes.
async fn read_until<S>(stream: &mut S, text: &mut String, pred: impl Fn(&str) -> bool)
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while !pred(text) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the stream never delivered; read so far:\n{text}"
        );
        match actix_web::rt::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(other) => panic!("the stream ended: {other:?}; read so far:\n{text}"),
            Err(_) => panic!("the stream never delivered; read so far:\n{text}"),
        }
    }
}

/// The server-sent events in `text`: (id, event, data).
fn sse_events(text: &str) -> Vec<(String, String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut id = None;
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).ok();
                }
            }
            Some((id?, event?, data?))
        })
        .collect()
}

async fn the_stream_pushes_new_events(kind: Kind) {
    let ctx = setup(kind).await;
    ctx.book("before").await;
    let before = ctx.wait_for_events(1).await;

    let mut response = client()
        .get(ctx.app.url("/v1/events/stream"))
        .insert_header(("Authorization", format!("Bearer {}", ctx.viewer)))
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream")));
    let mut text = String::new();
    read_until(&mut response, &mut text, |t| t.contains("\n\n")).await;
    assert!(
        sse_events(&text).is_empty(),
        "nothing old without a cursor: {text}"
    );

    // Committed after the stream opened: pushed.
    ctx.book("after").await;
    read_until(&mut response, &mut text, |t| {
        t.contains("event: appointment.booked")
    })
    .await;
    let pushed = sse_events(&text);
    let (id, event_type, data) = pushed.first().expect("an event");
    assert_eq!(event_type, "appointment.booked");
    assert_eq!(data["eventType"], "appointment.booked");
    let id: i64 = id.parse().expect("numeric id");
    assert!(id > before.last().expect("event").0);
    let stored = ctx.stored_events().await;
    assert!(stored
        .iter()
        .any(|(seq, event_id)| *seq == id && data["eventId"] == event_id.as_str()));
    drop(response);

    // Resuming with Last-Event-ID: everything after it, the old event included.
    let mut resumed = client()
        .get(ctx.app.url("/v1/events/stream"))
        .insert_header(("Authorization", format!("Bearer {}", ctx.viewer)))
        .insert_header(("Last-Event-ID", "0"))
        .send()
        .await
        .expect("stream");
    let mut text = String::new();
    let first = before[0].1.clone();
    read_until(&mut resumed, &mut text, |t| t.contains(&first)).await;
    drop(resumed);

    let mut bad = client()
        .get(ctx.app.url("/v1/events/stream?after=nope"))
        .insert_header(("Authorization", format!("Bearer {}", ctx.viewer)))
        .send()
        .await
        .expect("stream");
    assert_eq!(bad.status().as_u16(), 400);
    let _ = bad.body().await;
}

/// One request the receiver got, and how it answered.
#[derive(Debug, Clone)]
struct Delivery {
    signature: String,
    cursor: i64,
    body: String,
    answered: u16,
    at: Instant,
}

#[derive(Default)]
struct Receiver {
    deliveries: Vec<Delivery>,
    /// Answer 500 to this many requests first.
    fail_next: usize,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<Receiver>>>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut receiver = state.lock().expect("lock");
    let answered = if receiver.fail_next > 0 {
        receiver.fail_next -= 1;
        500
    } else {
        204
    };
    receiver.deliveries.push(Delivery {
        signature: header("x-aro-signature"),
        cursor: header("x-aro-cursor").parse().unwrap_or(-1),
        body: String::from_utf8_lossy(&body).to_string(),
        answered,
        at: Instant::now(),
    });
    if answered == 500 {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::NoContent().finish()
    }
}

fn verify(secret: &str, delivery: &Delivery) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in delivery.signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_string()),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{}", delivery.body).as_bytes());
    mac.verify_slice(&v1).is_ok()
}

async fn subscriptions_deliver_signed_events_in_order(kind: Kind) {
    let ctx = setup(kind).await;
    let receiver = Arc::new(Mutex::new(Receiver {
        fail_next: 1,
        ..Receiver::default()
    }));
    let shared = receiver.clone();
    let sink = FakeServer::start(
        "subscriber",
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(web::Data::new(shared.clone()))
                .route("/hook", web::post().to(receive));
        },
        None,
    );
    ctx.book("old").await;
    let old = ctx.wait_for_events(1).await;

    let secret = "a-shared-secret-of-the-receiver";
    let url = format!("http://{}/hook", sink.addr);
    let forbidden = ctx
        .post(
            "/v1/subscriptions",
            &ctx.staff,
            json!({"url": url, "secret": secret}),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    let created = ctx
        .post(
            "/v1/subscriptions",
            &ctx.owner,
            json!({"url": url, "secret": secret}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(
        created.body.get("secret").is_none(),
        "a chosen secret is not echoed"
    );
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(
        created.body["cursor"],
        old.last().expect("event").0.to_string()
    );

    for n in 0..3 {
        ctx.book(&format!("new-{n}")).await;
    }
    let stored = ctx.wait_for_events(old.len() + 3).await;
    let expected: Vec<i64> = stored
        .iter()
        .map(|(seq, _)| *seq)
        .filter(|seq| *seq > old.last().expect("event").0)
        .collect();

    // Every new event arrives, in order, the first one twice (its first attempt got a
    // 500 and was retried after the backoff).
    let deadline = Instant::now() + StdDuration::from_secs(30);
    let delivered = loop {
        let got = receiver.lock().expect("lock").deliveries.clone();
        let ok: Vec<i64> = got
            .iter()
            .filter(|d| d.answered == 204)
            .map(|d| d.cursor)
            .collect();
        if ok.len() >= expected.len() {
            break got;
        }
        assert!(Instant::now() < deadline, "deliveries so far: {got:?}");
        actix_web::rt::time::sleep(StdDuration::from_millis(50)).await;
    };
    assert_eq!(delivered[0].answered, 500);
    assert_eq!(delivered[0].cursor, expected[0]);
    assert_eq!(
        delivered[1].cursor, expected[0],
        "the failed event is retried first"
    );
    let waited = delivered[1].at - delivered[0].at;
    assert!(
        waited >= StdDuration::from_millis(900),
        "retried after the 1 s backoff, not {waited:?}"
    );
    let ok: Vec<i64> = delivered
        .iter()
        .filter(|d| d.answered == 204)
        .map(|d| d.cursor)
        .collect();
    assert_eq!(ok, expected);
    for delivery in &delivered {
        assert!(verify(secret, delivery), "signature of {delivery:?}");
        let envelope: Value = serde_json::from_str(&delivery.body).expect("json");
        let seq_id = stored
            .iter()
            .find(|(seq, _)| *seq == delivery.cursor)
            .expect("stored")
            .1
            .clone();
        assert_eq!(envelope["eventId"], seq_id.as_str());
    }
    assert!(!verify("another secret", &delivered[0]));

    // The list shows the cursor, never the secret; the secret is sealed at rest.
    let list = ctx.get("/v1/subscriptions", &ctx.owner).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let shown = &list.body["subscriptions"][0];
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(
        shown["cursor"],
        expected.last().expect("events").to_string()
    );
    assert!(!list.body.to_string().contains(secret));
    let (sealed, row_secret): (Vec<u8>, Vec<u8>) = {
        let id = id.clone();
        ctx.db
            .run(move |conn| {
                let sealed = integration_secrets::table
                    .filter(integration_secrets::name.eq(format!("subscription.{id}")))
                    .select(integration_secrets::ciphertext)
                    .first(conn)?;
                let row = subscriptions::table
                    .find(id)
                    .select(subscriptions::secret_ciphertext)
                    .first(conn)?;
                Ok((sealed, row))
            })
            .await
            .expect("read")
    };
    assert!(!sealed.is_empty() && !sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert!(row_secret.is_empty());

    // A replay from the first new event's cursor delivers the later ones again, in order.
    let from = expected[0];
    let before = receiver.lock().expect("lock").deliveries.len();
    let replayed = ctx
        .post(
            &format!("/v1/subscriptions/{id}/replay"),
            &ctx.owner,
            json!({"after": from.to_string()}),
        )
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    let again: Vec<i64> = expected.iter().copied().filter(|seq| *seq > from).collect();
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let got: Vec<i64> = receiver.lock().expect("lock").deliveries[before..]
            .iter()
            .map(|d| d.cursor)
            .collect();
        if got.len() >= again.len() {
            assert_eq!(got[..again.len()], again[..]);
            break;
        }
        assert!(Instant::now() < deadline, "redelivered so far: {got:?}");
        actix_web::rt::time::sleep(StdDuration::from_millis(50)).await;
    }
    let missing = ctx
        .post(
            "/v1/subscriptions/nope/replay",
            &ctx.owner,
            json!({"after": "0"}),
        )
        .await;
    assert_eq!(missing.status, 404);
    let bad = ctx
        .post(
            "/v1/subscriptions",
            &ctx.owner,
            json!({"url": "ftp://example.com/x"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["details"]["field"].as_str()),
        (400, Some("url"))
    );
    drop(sink);
}

on_both_backends!(
    paging_returns_every_event_once_in_order,
    the_stream_pushes_new_events,
    subscriptions_deliver_signed_events_in_order,
);
