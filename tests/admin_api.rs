//! The Admin API on the real daemon, both backends. Appointments come in through the
//! signed booking webhook; escalations and dead letters are inserted as the engine
//! would write them. Checked: every route refuses a request without credentials (401)
//! and a viewer's changes (403, nothing changes), cookie changes need the CSRF token;
//! lists paginate every row exactly once; the detail timeline holds the events,
//! messages with their delivery history, timers and workflows; overrides go through
//! the engine (an invalid one is 409 and changes nothing); resolving an escalation as
//! a confirmed cancellation cancels the appointment; a dead-letter replay puts the row
//! back to pending; the classifier; the supervisors, actors and metrics views; and the
//! audit log has an entry for every change and every view of a customer's data, with
//! no phone number in it.

mod common;

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use actors::engine::appointment_id_for;
use aro::auth::Role;
use aro::store::schema::{
    appointments, audit_log, dead_letters, escalations, events, message_status_history, messages,
    outbox,
};
use aro::store::{Conn, Database};
use aro::webhooks::signed_header::sign;
use awc::http::Method;
use chrono::{Duration, NaiveDateTime, Utc};
use common::credentials::{create_token, create_user, sign_in};
use common::{client, spawn_app_with, Kind, TestApp, TestDb};
use diesel::prelude::*;
use serde_json::{json, Value};

const SECRET: &str = "booking-secret-for-tests";

struct Ctx {
    app: TestApp,
    db: Database,
    viewer: String,
    staff: String,
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie {
        cookie: &'a str,
        csrf: Option<&'a str>,
    },
}

struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

async fn setup(kind: Kind) -> Ctx {
    let app = spawn_app_with(
        TestDb::new(kind),
        &[
            ("ARO_BOOKING_WEBHOOK_SECRET", SECRET),
            ("ARO_QUIET_HOURS", "off"),
            ("ARO_TIMEZONE", "America/New_York"),
        ],
    )
    .await;
    let db = Database::open(&app.db.config(&[]).database).expect("open database");
    let mut ctx = Ctx {
        app,
        db,
        viewer: String::new(),
        staff: String::new(),
    };
    ctx.viewer = ctx.token(Role::Viewer).await;
    ctx.staff = ctx.token(Role::Staff).await;
    ctx
}

fn signed(body: &str) -> String {
    sign(SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes())
}

/// `(external id, start, customer name, phone, email)`.
type Booking<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

impl Ctx {
    fn conn(&self) -> Conn {
        self.db.get().expect("connection")
    }

    async fn token(&self, role: Role) -> String {
        create_token(&self.db, role, None).await.1
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = client().request(method, self.app.url(path));
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => {
                request = request.insert_header(("Authorization", format!("Bearer {token}")));
            }
            Auth::Cookie { cookie, csrf } => {
                request = request.insert_header(("Cookie", format!("aro_session={cookie}")));
                if let Some(csrf) = csrf {
                    request = request.insert_header(("X-CSRF-Token", csrf.to_string()));
                }
            }
        }
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("request");
        let bytes = response.body().limit(8 << 20).await.expect("body");
        Answer {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, Auth::Bearer(&self.viewer), None)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Auth::Bearer(&self.staff), Some(body))
            .await
    }

    /// Books through the signed webhook and waits until every booking is applied.
    async fn book(&self, bookings: &[Booking<'_>]) -> Vec<String> {
        let before = self.count_appointments();
        for (n, (external, start, name, phone, email)) in bookings.iter().enumerate() {
            let body = json!({
                "event": "appointment.created",
                "id": format!("delivery-{external}-{n}"),
                "timestamp": Utc::now().to_rfc3339(),
                "data": {
                    "appointment_id": external,
                    "scheduled_at": start,
                    "duration": 30,
                    "timezone": "America/New_York",
                    "service_type": "Consultation",
                    "service_cost": 150.0,
                    "customer": {"name": name, "phone": phone, "email": email,
                                 "sms_consent": true}
                }
            })
            .to_string();
            // A 503 is retryable (the store was busy): a booking system sends again.
            let mut delivered = false;
            for _ in 0..50 {
                let mut response = client()
                    .post(self.app.url("/webhooks/booking"))
                    .insert_header(("Content-Type", "application/json"))
                    .insert_header(("X-Aro-Signature", signed(&body)))
                    .send_body(body.clone())
                    .await
                    .expect("sent");
                match response.status().as_u16() {
                    200 => {
                        delivered = true;
                        break;
                    }
                    503 => actix_web::rt::time::sleep(StdDuration::from_millis(50)).await,
                    other => panic!("booking answered {other}: {:?}", response.body().await),
                }
            }
            assert!(delivered, "the booking webhook kept refusing");
        }
        let want = before + i64::try_from(bookings.len()).expect("small");
        for _ in 0..1000 {
            if self.count_appointments() == want {
                return bookings
                    .iter()
                    .map(|b| appointment_id_for("default", "booking", b.0))
                    .collect();
            }
            actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
        }
        panic!("the bookings were never applied");
    }

    fn count_appointments(&self) -> i64 {
        appointments::table
            .count()
            .get_result(&mut *self.conn())
            .expect("count")
    }

    fn status_of(&self, id: &str) -> (String, i64) {
        appointments::table
            .find(id)
            .select((appointments::status, appointments::version))
            .first(&mut *self.conn())
            .expect("appointment")
    }

    /// The appointment's lifecycle events (message events arrive on their own time).
    fn event_count(&self, id: &str) -> i64 {
        events::table
            .filter(events::aggregate_id.eq(id))
            .filter(events::event_type.like("appointment.%"))
            .count()
            .get_result(&mut *self.conn())
            .expect("count")
    }

    fn audit(&self) -> Vec<(String, Option<String>, String)> {
        audit_log::table
            .order(audit_log::seq.asc())
            .select((audit_log::action, audit_log::subject_id, audit_log::details))
            .load(&mut *self.conn())
            .expect("audit")
    }

    fn customer_of(&self, appointment: &str) -> String {
        appointments::table
            .find(appointment)
            .select(appointments::customer_id)
            .first(&mut *self.conn())
            .expect("appointment")
    }

    fn escalation(&self, id: &str, appointment: Option<&str>, reason: &str, priority: &str) {
        let customer = appointment.map(|a| self.customer_of(a));
        diesel::insert_into(escalations::table)
            .values((
                escalations::id.eq(id),
                escalations::tenant_id.eq("default"),
                escalations::appointment_id.eq(appointment),
                escalations::customer_id.eq(customer),
                escalations::reason.eq(reason),
                escalations::priority.eq(priority),
                escalations::status.eq("open"),
                escalations::details.eq(r#"{"excerpt":"cancel please"}"#),
                escalations::created_at.eq(Utc::now().naive_utc()),
            ))
            .execute(&mut *self.conn())
            .expect("escalation");
    }

    /// A dead-lettered outbox row (when `domain` is not `inbox`) and its dead letter.
    fn dead_letter(&self, id: &str, domain: &str, appointment: &str) {
        let now = Utc::now().naive_utc();
        // A complete payment-link request, so a replay can really go through.
        let payload = json!({"to": "+15550001111", "body": "Deposit link",
                             "appointmentId": appointment,
                             "customerId": self.customer_of(appointment),
                             "amountCents": 5000, "currency": "usd",
                             "description": "Deposit"})
        .to_string();
        let outbox_id = (domain != "inbox").then(|| format!("ob-{id}"));
        if let Some(outbox_id) = &outbox_id {
            diesel::insert_into(outbox::table)
                .values((
                    outbox::id.eq(outbox_id),
                    outbox::tenant_id.eq("default"),
                    outbox::domain.eq(domain),
                    outbox::kind.eq("deposit_link"),
                    outbox::owner_type.eq("appointment"),
                    outbox::owner_id.eq(appointment),
                    outbox::idempotency_key.eq(format!("key-{id}")),
                    outbox::payload.eq(&payload),
                    outbox::status.eq("dead"),
                    outbox::attempts.eq(2),
                    outbox::next_attempt_at.eq(now),
                    outbox::last_error.eq(Some("HTTP 400")),
                    outbox::created_at.eq(now),
                    outbox::updated_at.eq(now),
                ))
                .execute(&mut *self.conn())
                .expect("outbox");
        }
        diesel::insert_into(dead_letters::table)
            .values((
                dead_letters::id.eq(id),
                dead_letters::tenant_id.eq("default"),
                dead_letters::outbox_id.eq(outbox_id),
                dead_letters::domain.eq(domain),
                dead_letters::kind.eq("deposit_link"),
                dead_letters::payload.eq(&payload),
                dead_letters::error.eq("HTTP 400"),
                dead_letters::attempts.eq(2),
                dead_letters::status.eq("open"),
                dead_letters::created_at.eq(now),
                dead_letters::expires_at.eq(now + Duration::days(30)),
            ))
            .execute(&mut *self.conn())
            .expect("dead letter");
    }

    /// Every page of `path` (which has a query string) with `limit`, in order.
    async fn all_pages(&self, path: &str, limit: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let url = match &cursor {
                Some(c) => format!("{path}&limit={limit}&cursor={c}"),
                None => format!("{path}&limit={limit}"),
            };
            let page = self.get(&url).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let got = page.body["items"].as_array().expect("items").clone();
            assert!(got.len() <= limit);
            items.extend(got);
            match page.body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return items,
            }
        }
        panic!("pagination never ended");
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

async fn every_route_needs_credentials_and_changes_need_staff(kind: Kind) {
    let ctx = setup(kind).await;
    let booked = ctx
        .book(&[(
            "ext-1",
            "2031-03-20T15:00:00Z",
            "Jane Smith",
            "+15559876543",
            "jane@example.com",
        )])
        .await;
    let appointment = &booked[0];
    let customer = ctx.customer_of(appointment);
    ctx.escalation("esc-1", Some(appointment), "possible_cancellation", "high");
    ctx.dead_letter("dl-1", "payment", appointment);

    let reads = [
        "/v1/admin/appointments".to_string(),
        format!("/v1/admin/appointments/{appointment}"),
        "/v1/admin/customers".to_string(),
        format!("/v1/admin/customers/{customer}"),
        "/v1/admin/escalations".to_string(),
        "/v1/admin/dead-letters".to_string(),
        "/v1/admin/supervisors".to_string(),
        "/v1/admin/actors".to_string(),
        format!("/v1/admin/actors/{appointment}"),
        "/v1/admin/metrics".to_string(),
    ];
    let changes = [
        (
            format!("/v1/admin/appointments/{appointment}/override"),
            json!({"action": "cancel", "reason": "asked by phone"}),
        ),
        (
            "/v1/admin/escalations/esc-1/resolve".to_string(),
            json!({"resolution": "confirmed_cancellation"}),
        ),
        ("/v1/admin/dead-letters/dl-1/replay".to_string(), json!({})),
        ("/v1/admin/dead-letters/dl-1/archive".to_string(), json!({})),
        ("/v1/admin/classify".to_string(), json!({"text": "yes"})),
    ];
    for path in &reads {
        let answer = ctx.send(Method::GET, path, Auth::None, None).await;
        assert_eq!(answer.status, 401, "{path}: {}", answer.body);
        assert_eq!(answer.code(), "UNAUTHORIZED", "{path}");
        let answer = ctx.get(path).await;
        assert_eq!(answer.status, 200, "viewer reads {path}: {}", answer.body);
    }
    for (path, body) in &changes {
        let answer = ctx
            .send(Method::POST, path, Auth::None, Some(body.clone()))
            .await;
        assert_eq!(answer.status, 401, "{path}: {}", answer.body);
        assert_eq!(answer.code(), "UNAUTHORIZED");
        let answer = ctx
            .send(
                Method::POST,
                path,
                Auth::Bearer(&ctx.viewer),
                Some(body.clone()),
            )
            .await;
        assert_eq!(answer.status, 403, "viewer changes {path}: {}", answer.body);
        assert_eq!(answer.code(), "FORBIDDEN");
        assert_eq!(answer.body["error"]["details"]["reason"], "role");
    }
    // Nothing changed.
    assert_eq!(ctx.status_of(appointment).0, "booked");
    let (esc_status, dl_status): (String, String) = {
        let mut conn = ctx.conn();
        (
            escalations::table
                .find("esc-1")
                .select(escalations::status)
                .first(&mut *conn)
                .expect("escalation"),
            dead_letters::table
                .find("dl-1")
                .select(dead_letters::status)
                .first(&mut *conn)
                .expect("dead letter"),
        )
    };
    assert_eq!((esc_status.as_str(), dl_status.as_str()), ("open", "open"));
    let actions: Vec<String> = ctx.audit().into_iter().map(|a| a.0).collect();
    for change in [
        "appointment.override",
        "escalation.resolved",
        "dead_letter.replayed",
        "dead_letter.archived",
    ] {
        assert!(!actions.iter().any(|a| a == change), "{change} was audited");
    }

    // A staff member's browser session: changes need the CSRF token.
    create_user(&ctx.db, "ann", Role::Staff).await;
    let (cookie, csrf) = sign_in(&ctx.app.url("/v1/auth/login"), "ann").await;
    let path = format!("/v1/admin/appointments/{appointment}/override");
    let confirm = json!({"action": "confirm", "reason": "called the patient"});
    let refused = ctx
        .send(
            Method::POST,
            &path,
            Auth::Cookie {
                cookie: &cookie,
                csrf: None,
            },
            Some(confirm.clone()),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.body["error"]["details"]["reason"], "csrf");
    assert_eq!(ctx.status_of(appointment).0, "booked");
    let done = ctx
        .send(
            Method::POST,
            &path,
            Auth::Cookie {
                cookie: &cookie,
                csrf: Some(&csrf),
            },
            Some(confirm),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(ctx.status_of(appointment).0, "confirmed");
    // The session's username is who the engine records.
    let by: Vec<String> = events::table
        .filter(events::aggregate_id.eq(appointment))
        .filter(events::event_type.eq("appointment.confirmed"))
        .select(events::payload)
        .load(&mut *ctx.conn())
        .expect("events");
    assert_eq!(by.len(), 1);
    let payload: Value = serde_json::from_str(&by[0]).expect("json");
    assert_eq!(payload["by"], json!({"type": "staff", "id": "ann"}));
}

async fn appointments_paginate_and_show_their_timeline(kind: Kind) {
    let ctx = setup(kind).await;
    let booked = ctx
        .book(&[
            (
                "p-1",
                "2031-03-20T15:00:00Z",
                "Ann One",
                "+15550000001",
                "a1@example.com",
            ),
            (
                "p-2",
                "2031-03-18T15:00:00Z",
                "Bob Two",
                "+15550000002",
                "b2@example.com",
            ),
            // Two at the same instant: the id breaks the tie.
            (
                "p-3",
                "2031-03-19T15:00:00Z",
                "Cy Three",
                "+15550000003",
                "c3@example.com",
            ),
            (
                "p-4",
                "2031-03-19T15:00:00Z",
                "Di Four",
                "+15550000004",
                "d4@example.com",
            ),
            (
                "p-5",
                "2031-03-22T15:00:00Z",
                "Ed Five",
                "+15550000005",
                "e5@example.com",
            ),
            (
                "p-6",
                "2031-03-21T15:00:00Z",
                "Flo Six",
                "+15550000006",
                "f6@example.com",
            ),
            (
                "p-7",
                "2031-03-17T15:00:00Z",
                "Gus Seven",
                "+15550000007",
                "g7@example.com",
            ),
        ])
        .await;

    for limit in [1, 3, 7, 50] {
        let items = ctx.all_pages("/v1/admin/appointments?", limit).await;
        let got = ids(&items);
        assert_eq!(got.len(), 7, "limit {limit}");
        assert_eq!(
            got.iter().collect::<HashSet<_>>().len(),
            7,
            "each row once, limit {limit}"
        );
        let keys: Vec<(String, String)> = items
            .iter()
            .map(|i| {
                (
                    i["startsAt"].as_str().expect("startsAt").to_string(),
                    i["id"].as_str().expect("id").to_string(),
                )
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "ordered by (startsAt, id)");
    }
    // Lists show no full phone number.
    let page = ctx.get("/v1/admin/appointments?limit=50").await;
    let text = page.body.to_string();
    assert!(!text.contains("+1555"), "{text}");
    assert!(text.contains("*******0001"));

    // Filters: a date range in the business zone, status, customer.
    let range = ctx
        .all_pages("/v1/admin/appointments?from=2031-03-19&to=2031-03-20", 2)
        .await;
    assert_eq!(range.len(), 3, "19th (two) and 20th");
    let none = ctx.get("/v1/admin/appointments?status=cancelled").await;
    assert_eq!(none.body["items"], json!([]));
    let customer = ctx.customer_of(&booked[0]);
    let mine = ctx
        .get(&format!("/v1/admin/appointments?customerId={customer}"))
        .await;
    assert_eq!(
        ids(mine.body["items"].as_array().expect("items")),
        vec![booked[0].clone()]
    );
    let bad = ctx.get("/v1/admin/appointments?status=lost").await;
    assert_eq!((bad.status, bad.code()), (400, "VALIDATION_ERROR"));
    let bad = ctx.get("/v1/admin/appointments?cursor=garbage").await;
    assert_eq!((bad.status, bad.code()), (400, "VALIDATION_ERROR"));
    let bad = ctx.get("/v1/admin/appointments?limit=0").await;
    assert_eq!(bad.status, 400);
    let bad = ctx.get("/v1/admin/appointments?colour=red").await;
    assert_eq!((bad.status, bad.code()), (400, "VALIDATION_ERROR"));

    // The timeline: the booking confirmation is sent (sandbox, quiet hours off); add a
    // delivery report to its history as the provider would.
    let appointment = &booked[0];
    let mut sent = None;
    for _ in 0..500 {
        let found: Option<String> = messages::table
            .filter(messages::appointment_id.eq(appointment))
            .select(messages::id)
            .first(&mut *ctx.conn())
            .optional()
            .expect("messages");
        if found.is_some() {
            sent = found;
            break;
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    let message_id = sent.expect("the booking confirmation was sent");
    diesel::insert_into(message_status_history::table)
        .values((
            message_status_history::id.eq("h-delivered"),
            message_status_history::tenant_id.eq("default"),
            message_status_history::message_id.eq(&message_id),
            message_status_history::status.eq("delivered"),
            message_status_history::provider_event_id.eq("SMx:delivered"),
            message_status_history::occurred_at.eq(Utc::now().naive_utc()),
        ))
        .execute(&mut *ctx.conn())
        .expect("history");
    // The message.sent event follows the message row: wait for it too.
    for _ in 0..500 {
        let n: i64 = events::table
            .filter(events::aggregate_id.eq(appointment))
            .filter(events::event_type.eq("message.sent"))
            .count()
            .get_result(&mut *ctx.conn())
            .expect("count");
        if n > 0 {
            break;
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
    }

    let detail = ctx
        .get(&format!("/v1/admin/appointments/{appointment}"))
        .await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let d = &detail.body;
    assert_eq!(d["id"], appointment.as_str());
    assert_eq!(d["status"], "booked");
    assert_eq!(d["customer"]["phoneMasked"], "*******0001");
    let events = d["timeline"]["events"].as_array().expect("events");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().expect("type"))
        .collect();
    assert_eq!(types.first(), Some(&"appointment.booked"), "{types:?}");
    assert!(types.contains(&"message.queued"), "{types:?}");
    assert!(types.contains(&"message.sent"), "{types:?}");
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in log order: {seqs:?}"
    );
    let message = d["timeline"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["id"] == message_id.as_str())
        .expect("the confirmation in the timeline");
    assert_eq!(message["kind"], "booking_confirmation");
    assert_eq!(message["counterpartMasked"], "*******0001");
    let history: Vec<&str> = message["statusHistory"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["status"].as_str().expect("status"))
        .collect();
    assert!(history.contains(&"delivered"), "{history:?}");
    let timers: Vec<&str> = d["timeline"]["timers"]
        .as_array()
        .expect("timers")
        .iter()
        .map(|t| t["kind"].as_str().expect("kind"))
        .collect();
    assert!(timers.contains(&"reminder_48h"), "{timers:?}");
    assert!(timers.contains(&"reminder_24h"), "{timers:?}");
    assert!(d["timeline"]["workflows"].is_array());
    assert!(d["timeline"]["escalations"].is_array());

    let missing = ctx.get("/v1/admin/appointments/nope").await;
    assert_eq!((missing.status, missing.code()), (404, "NOT_FOUND"));

    let audit = ctx.audit();
    let viewed: Vec<_> = audit
        .iter()
        .filter(|(action, _, _)| action == "appointment.viewed")
        .collect();
    assert_eq!(viewed.len(), 1, "one detail view, audited once");
    assert_eq!(viewed[0].1.as_deref(), Some(appointment.as_str()));
    assert!(viewed[0].2.contains(&customer));
}

async fn overrides_go_through_the_engine(kind: Kind) {
    let ctx = setup(kind).await;
    let booked = ctx
        .book(&[(
            "o-1",
            "2031-03-20T15:00:00Z",
            "Jane Smith",
            "+15559876543",
            "jane@example.com",
        )])
        .await;
    let id = &booked[0];
    let path = format!("/v1/admin/appointments/{id}/override");

    let confirmed = ctx
        .post(&path, json!({"action": "confirm", "reason": "called her"}))
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "confirmed");
    assert_eq!(confirmed.body["previousStatus"], "booked");
    let (status, version) = ctx.status_of(id);
    assert_eq!(status, "confirmed");
    let events_before = ctx.event_count(id);

    // confirmed → completed is not in the lifecycle: 409, nothing changes.
    let refused = ctx
        .post(&path, json!({"action": "complete", "reason": "oops"}))
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.code(), "INVALID_TRANSITION");
    assert_eq!(refused.body["error"]["details"]["from"], "confirmed");
    assert_eq!(refused.body["error"]["details"]["to"], "completed");
    assert_eq!(ctx.status_of(id), ("confirmed".to_string(), version));
    assert_eq!(ctx.event_count(id), events_before);

    for (body, why) in [
        (
            json!({"action": "teleport", "reason": "x"}),
            "unknown action",
        ),
        (json!({"action": "confirm", "reason": "  "}), "empty reason"),
        (json!({"action": "confirm"}), "no reason"),
        (
            json!({"action": "reschedule", "reason": "x"}),
            "no startsAt",
        ),
        (
            json!({"action": "cancel", "reason": "x", "startsAt": "2031-03-21T15:00:00Z"}),
            "startsAt on a cancel",
        ),
    ] {
        let answer = ctx.post(&path, body).await;
        assert_eq!(answer.status, 400, "{why}: {}", answer.body);
        assert_eq!(answer.code(), "VALIDATION_ERROR", "{why}");
    }
    assert_eq!(ctx.status_of(id), ("confirmed".to_string(), version));

    let moved = ctx
        .post(
            &path,
            json!({"action": "reschedule", "reason": "patient asked",
                   "startsAt": "2031-03-21T16:00:00Z"}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["status"], "booked");
    let starts: NaiveDateTime = appointments::table
        .find(id)
        .select(appointments::starts_at)
        .first(&mut *ctx.conn())
        .expect("appointment");
    assert_eq!(starts.and_utc().to_rfc3339(), "2031-03-21T16:00:00+00:00");
    let ends: NaiveDateTime = appointments::table
        .find(id)
        .select(appointments::ends_at)
        .first(&mut *ctx.conn())
        .expect("appointment");
    assert_eq!(ends - starts, Duration::minutes(30), "the duration is kept");

    let missing = ctx
        .post(
            "/v1/admin/appointments/nope/override",
            json!({"action": "confirm", "reason": "x"}),
        )
        .await;
    assert_eq!(missing.status, 404);

    let overrides: Vec<_> = ctx
        .audit()
        .into_iter()
        .filter(|(action, _, _)| action == "appointment.override")
        .collect();
    assert_eq!(overrides.len(), 2, "the confirm and the reschedule");
    let details: Value = serde_json::from_str(&overrides[0].2).expect("json");
    assert_eq!(details["action"], "confirm");
    assert_eq!(details["from"], "booked");
    assert_eq!(details["to"], "confirmed");
    for (_, _, details) in &overrides {
        assert!(
            !details.contains("called her"),
            "no free text in the audit log"
        );
    }
}

async fn escalations_resolve_through_the_engine(kind: Kind) {
    let ctx = setup(kind).await;
    let booked = ctx
        .book(&[
            (
                "e-1",
                "2031-03-20T15:00:00Z",
                "Jane Smith",
                "+15559876543",
                "jane@example.com",
            ),
            (
                "e-2",
                "2031-03-21T15:00:00Z",
                "John Doe",
                "+15551234567",
                "john@example.com",
            ),
        ])
        .await;
    ctx.escalation(
        "esc-cancel",
        Some(&booked[0]),
        "possible_cancellation",
        "high",
    );
    ctx.escalation(
        "esc-confirm",
        Some(&booked[1]),
        "no_customer_response",
        "medium",
    );
    ctx.escalation("esc-other", None, "unmatched_message", "medium");

    let open = ctx.get("/v1/admin/escalations?status=open").await;
    assert_eq!(open.body["items"].as_array().expect("items").len(), 3);
    let high = ctx
        .get("/v1/admin/escalations?status=open&priority=high")
        .await;
    assert_eq!(
        ids(high.body["items"].as_array().expect("items")),
        vec!["esc-cancel"]
    );
    let paged = ctx.all_pages("/v1/admin/escalations?", 1).await;
    assert_eq!(paged.len(), 3);
    let bad = ctx.get("/v1/admin/escalations?priority=urgent").await;
    assert_eq!(bad.status, 400);

    let resolved = ctx
        .post(
            "/v1/admin/escalations/esc-cancel/resolve",
            json!({"resolution": "confirmed_cancellation",
                   "note": "She called: cancel, number +15559876543"}),
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    assert_eq!(resolved.body["appointmentStatus"], "cancelled");
    assert_eq!(resolved.body["escalation"]["status"], "resolved");
    assert_eq!(
        resolved.body["escalation"]["resolution"],
        "confirmed_cancellation"
    );
    assert_eq!(
        resolved.body["escalation"]["resolvedBy"],
        "token:staff token"
    );
    assert_eq!(ctx.status_of(&booked[0]).0, "cancelled");
    let cancel: Vec<String> = events::table
        .filter(events::aggregate_id.eq(&booked[0]))
        .filter(events::event_type.eq("appointment.cancelled"))
        .select(events::payload)
        .load(&mut *ctx.conn())
        .expect("events");
    assert_eq!(cancel.len(), 1, "cancelled once, as a person's decision");
    let payload: Value = serde_json::from_str(&cancel[0]).expect("json");
    assert_eq!(payload["by"]["type"], "staff");

    let again = ctx
        .post(
            "/v1/admin/escalations/esc-cancel/resolve",
            json!({"resolution": "dismissed"}),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "INVALID_TRANSITION"));

    let confirmed = ctx
        .post(
            "/v1/admin/escalations/esc-confirm/resolve",
            json!({"resolution": "marked_confirmed"}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(ctx.status_of(&booked[1]).0, "confirmed");

    let no_appointment = ctx
        .post(
            "/v1/admin/escalations/esc-other/resolve",
            json!({"resolution": "marked_confirmed"}),
        )
        .await;
    assert_eq!(no_appointment.status, 400, "{}", no_appointment.body);
    let dismissed = ctx
        .post(
            "/v1/admin/escalations/esc-other/resolve",
            json!({"resolution": "dismissed"}),
        )
        .await;
    assert_eq!(dismissed.status, 200);
    let unknown = ctx
        .post(
            "/v1/admin/escalations/esc-x/resolve",
            json!({"resolution": "dismissed"}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let bad = ctx
        .post(
            "/v1/admin/escalations/esc-other/resolve",
            json!({"resolution": "shrug"}),
        )
        .await;
    assert_eq!(bad.status, 400);

    let resolved_list = ctx.get("/v1/admin/escalations?status=resolved").await;
    assert_eq!(
        resolved_list.body["items"].as_array().expect("items").len(),
        3
    );
    let note: String = escalations::table
        .find("esc-cancel")
        .select(escalations::details)
        .first(&mut *ctx.conn())
        .expect("escalation");
    assert!(note.contains("resolutionNote"));

    let audit: Vec<_> = ctx
        .audit()
        .into_iter()
        .filter(|(action, _, _)| action == "escalation.resolved")
        .collect();
    assert_eq!(audit.len(), 3);
    for (_, _, details) in &audit {
        assert!(!details.contains("+1555"), "no phone number: {details}");
        assert!(!details.contains("She called"), "no note text: {details}");
    }
}

async fn dead_letters_replay_and_archive(kind: Kind) {
    let ctx = setup(kind).await;
    let booked = ctx
        .book(&[(
            "d-1",
            "2031-03-20T15:00:00Z",
            "Jane Smith",
            "+15559876543",
            "jane@example.com",
        )])
        .await;
    // Payment rows: on this trial install (no Stripe key, messaging in the sandbox) the
    // payment supervisor runs against the sandbox pay page (ADR 0009), so a replayed row
    // is really sent again.
    ctx.dead_letter("dl-replay", "payment", &booked[0]);
    ctx.dead_letter("dl-archive", "payment", &booked[0]);
    ctx.dead_letter("dl-inbox", "inbox", &booked[0]);

    let list = ctx.all_pages("/v1/admin/dead-letters?status=open", 2).await;
    assert_eq!(list.len(), 3);
    let text = serde_json::to_string(&list).expect("json");
    assert!(!text.contains("+15550001111"), "phones masked: {text}");
    assert!(text.contains("*******1111"));

    let replayed = ctx
        .post("/v1/admin/dead-letters/dl-replay/replay", json!({}))
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert_eq!(replayed.body["deadLetter"]["status"], "replayed");
    assert_eq!(
        replayed.body["deadLetter"]["resolvedBy"],
        "token:staff token"
    );
    // Back in the queue from attempt zero, then delivered once by the payment supervisor.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    let (status, attempts) = loop {
        let (status, attempts): (String, i32) = outbox::table
            .find("ob-dl-replay")
            .select((outbox::status, outbox::attempts))
            .first(&mut *ctx.conn())
            .expect("outbox");
        if status == "done" || std::time::Instant::now() > deadline {
            break (status, attempts);
        }
        actix_rt::time::sleep(StdDuration::from_millis(50)).await;
    };
    // Delivered by one call: a poll whose read predates the outcome does not start it
    // again (it did before the payment supervisor kept settled rows: attempts 2).
    assert_eq!(
        (status.as_str(), attempts),
        ("done", 1),
        "replayed row delivered once"
    );
    let again = ctx
        .post("/v1/admin/dead-letters/dl-replay/replay", json!({}))
        .await;
    assert_eq!((again.status, again.code()), (409, "INVALID_TRANSITION"));

    let inbox = ctx
        .post("/v1/admin/dead-letters/dl-inbox/replay", json!({}))
        .await;
    assert_eq!((inbox.status, inbox.code()), (400, "VALIDATION_ERROR"));

    let archived = ctx
        .post("/v1/admin/dead-letters/dl-archive/archive", json!({}))
        .await;
    assert_eq!(archived.status, 200, "{}", archived.body);
    assert_eq!(archived.body["deadLetter"]["status"], "archived");
    let outbox_status: String = outbox::table
        .find("ob-dl-archive")
        .select(outbox::status)
        .first(&mut *ctx.conn())
        .expect("outbox");
    assert_eq!(outbox_status, "dead", "archiving does not retry");
    let again = ctx
        .post("/v1/admin/dead-letters/dl-archive/archive", json!({}))
        .await;
    assert_eq!(again.status, 409);
    let replay_archived = ctx
        .post("/v1/admin/dead-letters/dl-archive/replay", json!({}))
        .await;
    assert_eq!(replay_archived.status, 409);
    let missing = ctx
        .post("/v1/admin/dead-letters/nope/archive", json!({}))
        .await;
    assert_eq!(missing.status, 404);

    let open = ctx.get("/v1/admin/dead-letters?status=open").await;
    assert_eq!(
        ids(open.body["items"].as_array().expect("items")),
        vec!["dl-inbox"]
    );

    let actions: Vec<(String, Option<String>)> = ctx
        .audit()
        .into_iter()
        .map(|(action, subject, _)| (action, subject))
        .collect();
    assert!(actions.contains(&("dead_letter.replayed".into(), Some("dl-replay".into()))));
    assert!(actions.contains(&("dead_letter.archived".into(), Some("dl-archive".into()))));
}

async fn customers_are_searched_masked_and_viewed_with_an_audit_entry(kind: Kind) {
    let ctx = setup(kind).await;
    let booked = ctx
        .book(&[
            (
                "c-1",
                "2031-03-20T15:00:00Z",
                "Jane Smith",
                "+15559876543",
                "jane@example.com",
            ),
            (
                "c-2",
                "2031-03-21T15:00:00Z",
                "John Doe",
                "+15551234567",
                "john@example.org",
            ),
            (
                "c-3",
                "2031-03-22T15:00:00Z",
                "Mary_Jane 100%",
                "+447700900123",
                "mj@example.net",
            ),
        ])
        .await;
    let jane = ctx.customer_of(&booked[0]);

    let all = ctx.all_pages("/v1/admin/customers?", 2).await;
    assert_eq!(all.len(), 3);
    assert_eq!(
        all.iter().map(|c| &c["id"]).collect::<HashSet<_>>().len(),
        3
    );
    let text = serde_json::to_string(&all).expect("json");
    assert!(!text.contains("+1555") && !text.contains("+4477"), "{text}");
    assert!(!text.contains("jane@example.com"), "{text}");
    assert!(text.contains("*******6543"));

    let search = |q: &str| format!("/v1/admin/customers?q={q}");
    for (q, expected) in [
        ("6543", vec![jane.clone()]),
        ("jane", vec![jane.clone(), ctx.customer_of(&booked[2])]),
        ("JANE%40EXAMPLE", vec![jane.clone()]),
        ("doe", vec![ctx.customer_of(&booked[1])]),
        ("100%25", vec![ctx.customer_of(&booked[2])]),
        ("y_j", vec![ctx.customer_of(&booked[2])]),
        ("nobody", vec![]),
    ] {
        let found = ctx.get(&search(q)).await;
        assert_eq!(found.status, 200, "{q}: {}", found.body);
        let mut got = ids(found.body["items"].as_array().expect("items"));
        let mut want = expected.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "q={q}");
    }
    let low = ctx.get("/v1/admin/customers?risk=low").await;
    assert_eq!(low.body["items"].as_array().expect("items").len(), 3);
    let high = ctx.get("/v1/admin/customers?risk=high").await;
    assert_eq!(high.body["items"], json!([]));
    let bad = ctx.get("/v1/admin/customers?risk=extreme").await;
    assert_eq!(bad.status, 400);

    let detail = ctx.get(&format!("/v1/admin/customers/{jane}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.body["phoneE164"], "+15559876543");
    assert_eq!(detail.body["email"], "jane@example.com");
    assert_eq!(detail.body["riskLevel"], "low");
    assert!(!detail.body["consents"]
        .as_array()
        .expect("consents")
        .is_empty());
    assert_eq!(
        ids(detail.body["appointments"]
            .as_array()
            .expect("appointments")),
        vec![booked[0].clone()]
    );
    let missing = ctx.get("/v1/admin/customers/nope").await;
    assert_eq!(missing.status, 404);

    let viewed: Vec<_> = ctx
        .audit()
        .into_iter()
        .filter(|(action, _, _)| action == "customer.viewed")
        .collect();
    assert_eq!(viewed.len(), 1);
    assert_eq!(viewed[0].1.as_deref(), Some(jane.as_str()));
    assert!(!viewed[0].2.contains("+1555") && !viewed[0].2.contains("example.com"));
}

async fn engine_views_classifier_and_metrics(kind: Kind) {
    let ctx = setup(kind).await;
    let booked = ctx
        .book(&[(
            "v-1",
            "2031-03-20T15:00:00Z",
            "Jane Smith",
            "+15559876543",
            "jane@example.com",
        )])
        .await;
    let id = &booked[0];

    let supervisors = ctx.get("/v1/admin/supervisors").await;
    assert_eq!(supervisors.status, 200, "{}", supervisors.body);
    let messaging = &supervisors.body["supervisors"][0];
    assert_eq!(messaging["domain"], "messaging");
    assert_eq!(messaging["breaker"], "closed");
    assert!(messaging["tokens"].is_number());
    assert!(messaging["queueDepth"].is_number());
    let payment = &supervisors.body["supervisors"][1];
    assert_eq!(payment["domain"], "payment");
    // No Stripe key and messaging in the sandbox: a trial install, deposits go to the
    // daemon's own pay page (ADR 0009).
    assert_eq!(payment["configured"], false);
    assert_eq!(payment["mode"], "sandbox");
    assert_eq!(payment["running"], true);

    let actors = ctx.get("/v1/admin/actors").await;
    assert_eq!(actors.status, 200);
    let live: Vec<&str> = actors.body["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .map(|a| a["appointmentId"].as_str().expect("id"))
        .collect();
    assert!(
        live.contains(&id.as_str()),
        "the booked appointment's actor is live"
    );

    let inspected = ctx.get(&format!("/v1/admin/actors/{id}")).await;
    assert_eq!(inspected.status, 200, "{}", inspected.body);
    assert_eq!(inspected.body["state"]["status"], "booked");
    assert!(inspected.body["mailbox"]["inFlight"].is_number());
    let timers: Vec<&str> = inspected.body["pendingTimers"]
        .as_array()
        .expect("timers")
        .iter()
        .map(|t| t["kind"].as_str().expect("kind"))
        .collect();
    assert!(timers.contains(&"reminder_48h"), "{timers:?}");
    let missing = ctx.get("/v1/admin/actors/not-an-appointment").await;
    assert_eq!(missing.status, 404);

    for (text, intent, source) in [
        ("yes 👍", "confirm", "local"),
        ("STOP", "opt_out", "rules"),
        ("Can we move it to Friday?", "reschedule", "local"),
        ("help", "help", "rules"),
    ] {
        let answer = ctx.post("/v1/admin/classify", json!({"text": text})).await;
        assert_eq!(answer.status, 200, "{text}: {}", answer.body);
        assert_eq!(answer.body["intent"], intent, "{text}: {}", answer.body);
        assert_eq!(answer.body["source"], source, "{text}");
        let confidence = answer.body["confidence"].as_f64().expect("confidence");
        assert!((0.7..=1.0).contains(&confidence), "{text}: {confidence}");
    }
    let opt_in = ctx
        .post(
            "/v1/admin/classify",
            json!({"text": "YES", "optedOut": true}),
        )
        .await;
    assert_eq!(opt_in.body["intent"], "opt_in");
    let empty = ctx.post("/v1/admin/classify", json!({"text": "  "})).await;
    assert_eq!((empty.status, empty.code()), (400, "VALIDATION_ERROR"));

    let metrics = ctx
        .get("/v1/admin/metrics?period=day&from=2031-03-19&to=2031-03-21")
        .await;
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert_eq!(metrics.body["timezone"], "America/New_York");
    let days = metrics.body["periods"].as_array().expect("periods");
    assert_eq!(days.len(), 3);
    assert_eq!(days[1]["start"], "2031-03-20");
    assert_eq!(days[1]["appointments"], 1);
    assert_eq!(metrics.body["totals"]["appointments"], 1);
    let weeks = ctx.get("/v1/admin/metrics?period=week").await;
    assert_eq!(weeks.body["periods"].as_array().expect("periods").len(), 12);
    for bad in [
        "/v1/admin/metrics?period=year",
        "/v1/admin/metrics?from=2031-03-21&to=2031-03-19",
        "/v1/admin/metrics?from=yesterday",
        "/v1/admin/metrics?from=2000-01-01&to=2031-01-01",
    ] {
        let answer = ctx.get(bad).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "VALIDATION_ERROR"),
            "{bad}"
        );
    }
}

on_both_backends!(
    every_route_needs_credentials_and_changes_need_staff,
    appointments_paginate_and_show_their_timeline,
    overrides_go_through_the_engine,
    escalations_resolve_through_the_engine,
    dead_letters_replay_and_archive,
    customers_are_searched_masked_and_viewed_with_an_audit_entry,
    engine_views_classifier_and_metrics,
);
