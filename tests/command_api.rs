//! The Command API on the real daemon, both backends: idempotency (the same key and body
//! answer the first answer, another body is a conflict, twenty concurrent duplicates
//! make one command, one inbox item and one appointment), roles, validation that
//! records nothing, appointment commands reaching the database through the engine,
//! consent, risk, inbound messages, escalations and dead letters.

mod common;

use std::time::Duration as StdDuration;

use aro::auth::Role;
use aro::store::schema::{
    appointments, audit_log, commands, consents, customers, dead_letters, escalations,
    idempotency_keys, inbox, messages, outbox,
};
use aro::store::Database;
use chrono::{Duration, Utc};
use common::credentials::create_token;
use common::{spawn_app, Kind, TestApp};
use diesel::prelude::*;
use serde_json::{json, Value};

struct Ctx {
    app: TestApp,
    db: Database,
    staff: String,
    viewer: String,
}

struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn field(&self) -> &str {
        self.body["error"]["details"]["field"]
            .as_str()
            .unwrap_or("")
    }
}

async fn token(db: &Database, role: Role) -> String {
    create_token(db, role, None).await.1
}

async fn setup(kind: Kind) -> Ctx {
    let app = spawn_app(kind).await;
    let db = Database::open(&app.db.config(&[]).database).expect("open database");
    let staff = token(&db, Role::Staff).await;
    let viewer = token(&db, Role::Viewer).await;
    Ctx {
        app,
        db,
        staff,
        viewer,
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(StdDuration::from_secs(30))
        .finish()
}

/// A booking payload (no phone: no messages, so the events are few and predictable).
fn booking(external_id: &str, starts_at: &str) -> Value {
    json!({
        "appointment_id": external_id,
        "scheduled_at": starts_at,
        "duration": 30,
        "timezone": "America/New_York",
        "service_type": "Consultation",
        "customer": {"name": "Test Person", "sms_consent": true},
    })
}

fn upsert(external_id: &str) -> Value {
    json!({
        "commandType": "appointment.upsert",
        "aggregate": {"type": "appointment", "id": external_id},
        "payload": booking(external_id, "2031-03-20T15:00:00Z"),
        "metadata": {"source": "test"},
    })
}

impl Ctx {
    async fn command(&self, token: &str, key: Option<&str>, body: &Value) -> Answer {
        let mut request = client()
            .post(self.app.url("/v1/commands"))
            .insert_header(("Authorization", format!("Bearer {token}")));
        if let Some(key) = key {
            request = request.insert_header(("Idempotency-Key", key));
        }
        let mut response = request.send_json(body).await.expect("request");
        let bytes = response.body().await.expect("body");
        Answer {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, token: &str, path: &str) -> Answer {
        let mut response = client()
            .get(self.app.url(path))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .send()
            .await
            .expect("request");
        let bytes = response.body().await.expect("body");
        Answer {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn count<F>(&self, query: F) -> i64
    where
        F: FnOnce(&mut aro::store::DbConnection) -> QueryResult<i64> + Send + 'static,
    {
        self.db
            .run(move |conn| Ok(query(conn)?))
            .await
            .expect("count")
    }

    /// (commands, idempotency keys, inbox items, `command.accepted` audit entries)
    async fn recorded(&self) -> (i64, i64, i64, i64) {
        self.db
            .run(|conn| {
                Ok((
                    commands::table.count().get_result(conn)?,
                    idempotency_keys::table.count().get_result(conn)?,
                    inbox::table.count().get_result(conn)?,
                    audit_log::table
                        .filter(audit_log::action.eq("command.accepted"))
                        .count()
                        .get_result(conn)?,
                ))
            })
            .await
            .expect("counts")
    }

    /// Waits until `GET /v1/commands/{id}` says `want`.
    async fn wait_for_status(&self, id: &str, want: &str) -> Answer {
        let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
        loop {
            let answer = self.get(&self.viewer, &format!("/v1/commands/{id}")).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            if answer.body["status"] == want {
                return answer;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "command {id} never became {want}: {}",
                answer.body
            );
            actix_web::rt::time::sleep(StdDuration::from_millis(20)).await;
        }
    }

    async fn appointment_status(&self, id: &str) -> Option<String> {
        let id = id.to_string();
        self.db
            .run(move |conn| {
                Ok(appointments::table
                    .find(id)
                    .select(appointments::status)
                    .first(conn)
                    .optional()?)
            })
            .await
            .expect("read")
    }

    /// Books `external_id` through the API and waits until the engine applied it;
    /// answers the appointment's ARO id.
    async fn booked(&self, external_id: &str) -> String {
        let answer = self
            .command(
                &self.staff,
                Some(&format!("book-{external_id}")),
                &upsert(external_id),
            )
            .await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let id = answer.body["commandId"].as_str().expect("id").to_string();
        self.wait_for_status(&id, "completed").await;
        answer.body["aggregate"]["id"]
            .as_str()
            .expect("aggregate id")
            .to_string()
    }
}

async fn the_same_key_answers_the_first_answer(kind: Kind) {
    let ctx = setup(kind).await;
    let body = upsert("ext-1");
    let first = ctx.command(&ctx.staff, Some("key-1"), &body).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.body["status"], "accepted");
    assert!(first.body["commandId"].is_string());
    assert!(first.body["correlationId"].is_string());
    assert!(first.body.get("workflowId").is_some());
    assert_eq!(first.body["aggregate"]["type"], "appointment");

    // The same body again, and spelled differently (key order, whitespace): the same
    // answer, same status.
    let again = ctx.command(&ctx.staff, Some("key-1"), &body).await;
    assert_eq!((again.status, &again.body), (202, &first.body));
    let respelled: Value = serde_json::from_str(&format!(
        "{{\"metadata\": {},\n \"payload\": {}, \"aggregate\": {}, \"commandType\": \"appointment.upsert\"}}",
        body["metadata"], body["payload"], body["aggregate"]
    ))
    .expect("json");
    let again = ctx.command(&ctx.staff, Some("key-1"), &respelled).await;
    assert_eq!((again.status, &again.body), (202, &first.body));

    // Another body under the same key: a conflict, and nothing new.
    let other = ctx
        .command(&ctx.staff, Some("key-1"), &upsert("ext-2"))
        .await;
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(other.code(), "IDEMPOTENCY_CONFLICT");

    // No key at all.
    let missing = ctx.command(&ctx.staff, None, &body).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.code(), "VALIDATION_ERROR");
    assert_eq!(missing.field(), "Idempotency-Key");

    let (commands, keys, items, audited) = ctx.recorded().await;
    assert_eq!((commands, keys, items, audited), (1, 1, 1, 1));
    // The key is kept at least 72 hours.
    let (created, expires): (chrono::NaiveDateTime, chrono::NaiveDateTime) = ctx
        .db
        .run(|conn| {
            Ok(idempotency_keys::table
                .select((idempotency_keys::created_at, idempotency_keys::expires_at))
                .first(conn)?)
        })
        .await
        .expect("key");
    assert!(expires - created >= Duration::hours(72));
    let command_id = first.body["commandId"].as_str().expect("id");
    ctx.wait_for_status(command_id, "completed").await;
}

async fn concurrent_duplicates_take_effect_once(kind: Kind) {
    let ctx = setup(kind).await;
    let body = upsert("ext-race");
    let answers = futures_util::future::join_all(
        (0..20).map(|_| ctx.command(&ctx.staff, Some("race-key"), &body)),
    )
    .await;
    let first = &answers[0];
    for answer in &answers {
        assert_eq!(answer.status, 202, "{}", answer.body);
        assert_eq!(answer.body["commandId"], first.body["commandId"]);
    }
    let command_id = first.body["commandId"].as_str().expect("id").to_string();
    ctx.wait_for_status(&command_id, "completed").await;
    let (commands, keys, items, audited) = ctx.recorded().await;
    assert_eq!((commands, keys, items, audited), (1, 1, 1, 1));
    let booked = ctx
        .count(|conn| {
            aro::store::schema::events::table
                .filter(aro::store::schema::events::event_type.eq("appointment.booked"))
                .count()
                .get_result(conn)
        })
        .await;
    assert_eq!(booked, 1, "one effect");
    assert_eq!(
        ctx.count(|conn| appointments::table.count().get_result(conn))
            .await,
        1
    );
}

async fn roles_and_bad_requests_change_nothing(kind: Kind) {
    let ctx = setup(kind).await;
    let viewer = ctx
        .command(&ctx.viewer, Some("v-1"), &upsert("ext-v"))
        .await;
    assert_eq!(viewer.status, 403, "{}", viewer.body);
    assert_eq!(viewer.code(), "FORBIDDEN");
    let mut response = client()
        .post(ctx.app.url("/v1/commands"))
        .insert_header(("Idempotency-Key", "anon"))
        .send_json(&upsert("ext-v"))
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
    let _ = response.body().await;

    let unknown_appointment = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"commandType": "appointment.explode"}), "commandType"),
        (
            json!({"aggregate": {"type": "appointment", "id": "x"}}),
            "commandType",
        ),
        (
            json!({"commandType": "appointment.confirm"}),
            "aggregate.id",
        ),
        (
            json!({"commandType": "appointment.confirm",
                   "aggregate": {"type": "appointment", "id": unknown_appointment}}),
            "aggregate.id",
        ),
        (
            json!({"commandType": "appointment.upsert",
                   "payload": {"appointment_id": "ext-9", "scheduled_at": "tomorrow", "duration": 30,
                               "customer": {}}}),
            "payload.scheduled_at",
        ),
        (
            json!({"commandType": "appointment.reschedule",
                   "aggregate": {"type": "appointment", "id": "x"},
                   "payload": {"startsAt": "2031-01-01T10:00:00Z"}}),
            "payload.endsAt",
        ),
        (
            json!({"commandType": "message.inbound", "payload": {"from": "12345", "body": "hi"}}),
            "payload.from",
        ),
        (
            json!({"commandType": "escalation.resolve",
                   "aggregate": {"type": "escalation", "id": "nope"},
                   "payload": {"resolution": "called them"}}),
            "aggregate.id",
        ),
        (
            json!({"commandType": "customer.opt_out", "aggregate": {"type": "customer", "id": "nobody"}}),
            "aggregate.id",
        ),
        (
            json!({"commandType": "dlq.replay", "payload": {"deadLetterId": "none"}}),
            "aggregate.id",
        ),
        (
            json!({"commandType": "dlq.archive", "payload": {}}),
            "payload.deadLetterId",
        ),
        (
            json!({"commandType": "customer.opt_in", "payload": []}),
            "payload",
        ),
        (
            json!({"commandType": "customer.opt_in", "surprise": 1}),
            "surprise",
        ),
    ];
    for (n, (body, field)) in cases.into_iter().enumerate() {
        let answer = ctx
            .command(&ctx.staff, Some(&format!("bad-{n}")), &body)
            .await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(answer.code(), "VALIDATION_ERROR", "{body}");
        assert_eq!(answer.field(), field, "{body}: {}", answer.body);
    }
    let mut response = client()
        .post(ctx.app.url("/v1/commands"))
        .insert_header(("Authorization", format!("Bearer {}", ctx.staff)))
        .insert_header(("Idempotency-Key", "garbled"))
        .insert_header(("Content-Type", "application/json"))
        .send_body("{not json")
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    let _ = response.body().await;

    assert_eq!(ctx.recorded().await, (0, 0, 0, 0), "nothing recorded");
    let unknown = ctx.get(&ctx.viewer, "/v1/commands/nope").await;
    assert_eq!(unknown.status, 404);
}

async fn appointment_commands_reach_the_database(kind: Kind) {
    let ctx = setup(kind).await;
    let appointment = ctx.booked("ext-a").await;
    assert_eq!(
        ctx.appointment_status(&appointment).await.as_deref(),
        Some("booked")
    );

    let confirm = json!({"commandType": "appointment.confirm",
                         "aggregate": {"type": "appointment", "id": appointment},
                         "payload": {"reason": "called the office"}});
    let answer = ctx.command(&ctx.staff, Some("confirm-1"), &confirm).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let id = answer.body["commandId"].as_str().expect("id").to_string();
    let done = ctx.wait_for_status(&id, "completed").await;
    assert_eq!(done.body["commandType"], "appointment.confirm");
    assert_eq!(
        ctx.appointment_status(&appointment).await.as_deref(),
        Some("confirmed")
    );

    // Not allowed from here: 409, nothing recorded.
    let before = ctx.recorded().await;
    let complete = json!({"commandType": "appointment.complete",
                          "aggregate": {"type": "appointment", "id": appointment}});
    let answer = ctx.command(&ctx.staff, Some("complete-1"), &complete).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(answer.code(), "INVALID_TRANSITION");
    assert_eq!(ctx.recorded().await, before);

    // Moved by staff, addressed by the booking system's id.
    let reschedule = json!({"commandType": "appointment.reschedule",
                            "aggregate": {"type": "appointment", "id": "ext-a"},
                            "payload": {"startsAt": "2031-03-22T15:00:00Z", "endsAt": "2031-03-22T15:45:00Z"}});
    let answer = ctx.command(&ctx.staff, Some("move-1"), &reschedule).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body["aggregate"]["id"], appointment.as_str());
    ctx.wait_for_status(answer.body["commandId"].as_str().expect("id"), "completed")
        .await;
    let starts: chrono::NaiveDateTime = {
        let id = appointment.clone();
        ctx.db
            .run(move |conn| {
                Ok(appointments::table
                    .find(id)
                    .select(appointments::starts_at)
                    .first(conn)?)
            })
            .await
            .expect("read")
    };
    assert_eq!(starts.and_utc().to_rfc3339(), "2031-03-22T15:00:00+00:00");

    // A person cancels it.
    let cancel = json!({"commandType": "appointment.cancel",
                        "aggregate": {"type": "appointment", "id": appointment}});
    let answer = ctx.command(&ctx.staff, Some("cancel-1"), &cancel).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    ctx.wait_for_status(answer.body["commandId"].as_str().expect("id"), "completed")
        .await;
    assert_eq!(
        ctx.appointment_status(&appointment).await.as_deref(),
        Some("cancelled")
    );

    // Every accepted command is audited, by pseudonymous ids only.
    let details: Vec<String> = ctx
        .db
        .run(|conn| {
            Ok(audit_log::table
                .filter(audit_log::action.eq("command.accepted"))
                .select(audit_log::details)
                .load(conn)?)
        })
        .await
        .expect("audit");
    assert_eq!(details.len(), 4);
    assert!(details.iter().all(|d| !d.contains("Test Person")));
}

/// The events a command causes carry, in the Event API's metadata, the command's id as
/// their cause and the request's `X-Correlation-Id` (SPEC §7).
async fn events_name_the_command_that_caused_them(kind: Kind) {
    let ctx = setup(kind).await;
    let appointment = ctx.booked("ext-m").await;
    let confirm = json!({"commandType": "appointment.confirm",
                         "aggregate": {"type": "appointment", "id": appointment}});
    let mut response = client()
        .post(ctx.app.url("/v1/commands"))
        .insert_header(("Authorization", format!("Bearer {}", ctx.staff)))
        .insert_header(("Idempotency-Key", "confirm-m"))
        .insert_header(("X-Correlation-Id", "corr-front-desk-7"))
        .send_json(&confirm)
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 202);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["correlationId"], "corr-front-desk-7");
    let command_id = answer["commandId"].as_str().expect("id").to_string();
    ctx.wait_for_status(&command_id, "completed").await;

    let events = ctx.get(&ctx.viewer, "/v1/events?limit=200").await;
    assert_eq!(events.status, 200, "{}", events.body);
    let mine: Vec<&Value> = events.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["aggregate"]["id"] == appointment.as_str())
        .collect();
    let caused: Vec<&&Value> = mine
        .iter()
        .filter(|e| e["metadata"]["causationId"] == command_id.as_str())
        .collect();
    assert!(!caused.is_empty(), "no event names the command: {mine:#?}");
    for event in caused {
        assert_eq!(
            event["metadata"]["correlationId"], "corr-front-desk-7",
            "{event}"
        );
    }
    // The booking before it: caused by its own command, correlated with its request.
    let booked = mine
        .iter()
        .find(|e| e["eventType"] == "appointment.booked")
        .expect("appointment.booked");
    assert!(booked["metadata"]["causationId"].is_string(), "{booked}");
    assert!(booked["metadata"]["correlationId"].is_string(), "{booked}");
    assert_ne!(booked["metadata"]["causationId"], command_id.as_str());
}

async fn customer_message_and_escalation_commands(kind: Kind) {
    let ctx = setup(kind).await;
    let appointment = ctx.booked("ext-c").await;
    let customer: String = {
        let id = appointment.clone();
        ctx.db
            .run(move |conn| {
                Ok(appointments::table
                    .find(id)
                    .select(appointments::customer_id)
                    .first(conn)?)
            })
            .await
            .expect("read")
    };
    let opted_out = |ctx: &Ctx, id: String| {
        let db = ctx.db.clone();
        async move {
            db.run(move |conn| {
                Ok(customers::table
                    .find(id)
                    .select(customers::opted_out)
                    .first::<bool>(conn)?)
            })
            .await
            .expect("read")
        }
    };
    let out = json!({"commandType": "customer.opt_out", "aggregate": {"type": "customer", "id": customer}});
    let answer = ctx.command(&ctx.staff, Some("out-1"), &out).await;
    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (202, Some("completed"))
    );
    assert!(opted_out(&ctx, customer.clone()).await);
    let back_in = json!({"commandType": "customer.opt_in", "aggregate": {"type": "customer", "id": customer}});
    let answer = ctx.command(&ctx.staff, Some("in-1"), &back_in).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert!(!opted_out(&ctx, customer.clone()).await);
    let sources: Vec<(String, String)> = ctx
        .db
        .run(|conn| {
            Ok(consents::table
                .filter(consents::source.eq("staff"))
                .order(consents::recorded_at.asc())
                .select((consents::status, consents::source))
                .load(conn)?)
        })
        .await
        .expect("consents");
    assert_eq!(
        sources.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        vec!["revoked", "granted"]
    );

    // Risk from the counters (a stored score that drifted is repaired).
    {
        let id = customer.clone();
        ctx.db
            .run(move |conn| {
                diesel::update(customers::table.find(id))
                    .set((customers::no_show_count.eq(2), customers::risk_score.eq(3)))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .expect("update");
    }
    let risk = json!({"commandType": "customer.recalculate_risk", "aggregate": {"type": "customer", "id": customer}});
    let answer = ctx.command(&ctx.staff, Some("risk-1"), &risk).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let state = ctx
        .get(
            &ctx.viewer,
            &format!(
                "/v1/commands/{}",
                answer.body["commandId"].as_str().expect("id")
            ),
        )
        .await;
    assert_eq!(state.body["status"], "completed");
    assert_eq!(state.body["result"]["previousRiskScore"], 3);
    let score: i32 = {
        let id = customer.clone();
        ctx.db
            .run(move |conn| {
                Ok(customers::table
                    .find(id)
                    .select(customers::risk_score)
                    .first(conn)?)
            })
            .await
            .expect("read")
    };
    assert_eq!(json!(score), state.body["result"]["riskScore"]);
    assert!(score >= 40, "two no-shows weigh 40: {score}");

    // An inbound message from an unknown number: logged like an SMS, escalated as
    // unmatched; then a person resolves the escalation.
    let inbound = json!({"commandType": "message.inbound",
                         "payload": {"from": "+15550009999", "body": "hello, who is this?"}});
    let answer = ctx.command(&ctx.staff, Some("inbound-1"), &inbound).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let command_id = answer.body["commandId"].as_str().expect("id").to_string();
    ctx.wait_for_status(&command_id, "completed").await;
    let sid = format!("api:{command_id}");
    let logged = ctx
        .count(move |conn| {
            messages::table
                .filter(messages::provider_message_id.eq(sid))
                .filter(messages::direction.eq("inbound"))
                .count()
                .get_result(conn)
        })
        .await;
    assert_eq!(logged, 1);
    let escalation: String = ctx
        .db
        .run(|conn| {
            Ok(escalations::table
                .filter(escalations::reason.eq("unmatched_message"))
                .select(escalations::id)
                .first(conn)?)
        })
        .await
        .expect("escalation");
    let resolve = json!({"commandType": "escalation.resolve",
                         "aggregate": {"type": "escalation", "id": escalation},
                         "payload": {"resolution": "wrong number"}});
    let answer = ctx.command(&ctx.staff, Some("resolve-1"), &resolve).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let (status, resolution, by): (String, Option<String>, Option<String>) = {
        let id = escalation.clone();
        ctx.db
            .run(move |conn| {
                Ok(escalations::table
                    .find(id)
                    .select((
                        escalations::status,
                        escalations::resolution,
                        escalations::resolved_by,
                    ))
                    .first(conn)?)
            })
            .await
            .expect("read")
    };
    assert_eq!(
        (status.as_str(), resolution.as_deref()),
        ("resolved", Some("wrong number"))
    );
    assert!(by.is_some_and(|b| b.starts_with("token:")));
    let again = ctx.command(&ctx.staff, Some("resolve-2"), &resolve).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.code(), "INVALID_TRANSITION");
    // Audit entries never carry the phone number.
    let phone_in_audit = ctx
        .count(|conn| {
            audit_log::table
                .filter(audit_log::details.like("%5550009999%"))
                .count()
                .get_result(conn)
        })
        .await;
    assert_eq!(phone_in_audit, 0);
}

/// An outbox row dead-lettered after failing, and its dead letter.
async fn dead_letter(ctx: &Ctx, n: u32) -> (String, String) {
    let outbox_id = format!("ob-{n}");
    let letter_id = format!("dl-{n}");
    let (o, l) = (outbox_id.clone(), letter_id.clone());
    ctx.db
        .run(move |conn| {
            let now = Utc::now().naive_utc();
            diesel::insert_into(outbox::table)
                .values((
                    outbox::id.eq(&o),
                    outbox::tenant_id.eq("default"),
                    // A domain no supervisor runs (payments run in the sandbox on a
                    // trial install): the row stays where the replay puts it.
                    outbox::domain.eq("booking"),
                    outbox::kind.eq("deposit_link"),
                    outbox::owner_type.eq("appointment"),
                    outbox::owner_id.eq("a-1"),
                    outbox::idempotency_key.eq(format!("key-{o}")),
                    outbox::payload.eq("{}"),
                    outbox::status.eq("dead"),
                    outbox::attempts.eq(3),
                    outbox::next_attempt_at.eq(now),
                    outbox::last_error.eq(Some("HTTP 503")),
                    outbox::created_at.eq(now),
                    outbox::updated_at.eq(now),
                ))
                .execute(conn)?;
            diesel::insert_into(dead_letters::table)
                .values((
                    dead_letters::id.eq(&l),
                    dead_letters::tenant_id.eq("default"),
                    dead_letters::outbox_id.eq(Some(&o)),
                    dead_letters::domain.eq("payment"),
                    dead_letters::kind.eq("deposit_link"),
                    dead_letters::payload.eq("{}"),
                    dead_letters::error.eq("HTTP 503"),
                    dead_letters::attempts.eq(3),
                    dead_letters::status.eq("open"),
                    dead_letters::created_at.eq(now),
                    dead_letters::expires_at.eq(now + Duration::days(30)),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .expect("insert dead letter");
    (outbox_id, letter_id)
}

async fn dead_letters_are_replayed_and_archived(kind: Kind) {
    let ctx = setup(kind).await;
    let (outbox_id, letter) = dead_letter(&ctx, 1).await;
    let replay = json!({"commandType": "dlq.replay", "payload": {"deadLetterId": letter}});
    let answer = ctx.command(&ctx.staff, Some("replay-1"), &replay).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body["status"], "completed");
    assert_eq!(
        answer.body["aggregate"],
        json!({"type": "dead_letter", "id": letter})
    );
    let read = |ctx: &Ctx, outbox_id: String, letter: String| {
        let db = ctx.db.clone();
        async move {
            db.run(move |conn| {
                let row: (String, i32) = outbox::table
                    .find(outbox_id)
                    .select((outbox::status, outbox::attempts))
                    .first(conn)?;
                let letter: (String, Option<String>) = dead_letters::table
                    .find(letter)
                    .select((dead_letters::status, dead_letters::resolved_by))
                    .first(conn)?;
                Ok((row, letter))
            })
            .await
            .expect("read")
        }
    };
    let ((status, attempts), (letter_status, by)) =
        read(&ctx, outbox_id.clone(), letter.clone()).await;
    assert_eq!((status.as_str(), attempts), ("pending", 0));
    assert_eq!(letter_status, "replayed");
    assert!(by.is_some());
    // Only once.
    let again = ctx.command(&ctx.staff, Some("replay-2"), &replay).await;
    assert_eq!(again.status, 409, "{}", again.body);

    let (other_outbox, other) = dead_letter(&ctx, 2).await;
    let archive =
        json!({"commandType": "dlq.archive", "aggregate": {"type": "dead_letter", "id": other}});
    let answer = ctx.command(&ctx.staff, Some("archive-1"), &archive).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let ((status, _), (letter_status, _)) = read(&ctx, other_outbox, other).await;
    assert_eq!(
        (status.as_str(), letter_status.as_str()),
        ("dead", "archived")
    );
}

async fn an_interrupted_hand_on_is_finished_by_a_retry(kind: Kind) {
    let ctx = setup(kind).await;
    let inbound = json!({"commandType": "message.inbound",
                         "payload": {"from": "+15550001234", "body": "running late"}});
    let first = ctx.command(&ctx.staff, Some("late-1"), &inbound).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let command_id = first.body["commandId"].as_str().expect("id").to_string();
    ctx.wait_for_status(&command_id, "completed").await;

    // As if the daemon had stopped after recording the command, before handing it on:
    // the key is pending and the message was never handled.
    let sid = format!("api:{command_id}");
    ctx.db
        .run(move |conn| {
            diesel::update(idempotency_keys::table)
                .set(idempotency_keys::status.eq("pending"))
                .execute(conn)?;
            diesel::delete(escalations::table).execute(conn)?;
            diesel::delete(messages::table.filter(messages::provider_message_id.eq(sid)))
                .execute(conn)?;
            Ok(())
        })
        .await
        .expect("rewind");

    // The client's retry gets the first answer and finishes the work, once.
    let retry = ctx.command(&ctx.staff, Some("late-1"), &inbound).await;
    assert_eq!((retry.status, &retry.body), (202, &first.body));
    let retry = ctx.command(&ctx.staff, Some("late-1"), &inbound).await;
    assert_eq!((retry.status, &retry.body), (202, &first.body));
    let logged = ctx
        .count(|conn| {
            messages::table
                .filter(messages::direction.eq("inbound"))
                .count()
                .get_result(conn)
        })
        .await;
    assert_eq!(logged, 1);
    let status: String = ctx
        .db
        .run(|conn| {
            Ok(idempotency_keys::table
                .select(idempotency_keys::status)
                .first(conn)?)
        })
        .await
        .expect("key");
    assert_eq!(status, "completed");
    assert_eq!(ctx.recorded().await.0, 1, "still one command");
}

on_both_backends!(
    events_name_the_command_that_caused_them,
    the_same_key_answers_the_first_answer,
    concurrent_duplicates_take_effect_once,
    roles_and_bad_requests_change_nothing,
    appointment_commands_reach_the_database,
    customer_message_and_escalation_commands,
    dead_letters_are_replayed_and_archived,
    an_interrupted_hand_on_is_finished_by_a_retry,
);
