//! `POST /webhooks/calendly` on the real daemon (both backends): signatures, the
//! created / canceled / no-show mapping, reschedule pairs in either order ending as one
//! moved appointment, duplicates causing one effect — and `aro sync calendly` against
//! the fake Calendly, run twice, then applied by the daemon.

mod common;
#[path = "fakes/calendly.rs"]
mod fake_calendly;

use std::time::Duration as StdDuration;

use aro::store::schema::{appointment_aliases, appointments, customers, events, inbox, timers};
use aro::store::Database;
use aro::webhooks::signed_header::sign;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use common::{client, spawn_app_with, Kind, TestApp, TestDb};
use diesel::prelude::*;
use fake_calendly::{signed_webhook, FakeCalendly, FakeEvent, FakeInvitee, CALENDLY_API};
use serde_json::Value;

const KEY: &str = "calendly-signing-key-for-tests";
const PHONE: &str = "+15551234567";

async fn app(kind: Kind) -> TestApp {
    spawn_app_with(TestDb::new(kind), &[("ARO_CALENDLY_SIGNING_KEY", KEY)]).await
}

fn db(app: &TestApp) -> Database {
    Database::open(&app.db.config(&[]).database).expect("open")
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

async fn post(app: &TestApp, body: &[u8], signature: Option<String>) -> (u16, Value) {
    let mut request = client()
        .post(app.url("/webhooks/calendly"))
        .insert_header(("Content-Type", "application/json"));
    if let Some(signature) = signature {
        request = request.insert_header(("Calendly-Webhook-Signature", signature));
    }
    let mut response = request.send_body(body.to_vec()).await.expect("sent");
    let status = response.status().as_u16();
    let body = response.body().limit(1 << 20).await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Sends `event_name` about `invitee` of `event`, created (and signed) at `sent`.
async fn deliver(
    app: &TestApp,
    event_name: &str,
    event: &FakeEvent,
    invitee: &FakeInvitee,
    sent: DateTime<Utc>,
) -> String {
    let (body, header) = signed_webhook(event_name, event, invitee, KEY, sent);
    let (status, answer) = post(app, &body, Some(header)).await;
    assert_eq!(status, 200, "{event_name}: {answer}");
    answer["status"].as_str().expect("a status").to_string()
}

fn invitee_uri(event: &FakeEvent, invitee: &FakeInvitee) -> String {
    event.invitee_uri(CALENDLY_API, invitee)
}

/// A booked invitee of a 30-minute event at `start`.
fn booked(event_uuid: &str, invitee_uuid: &str, start: &str) -> (FakeEvent, FakeInvitee) {
    let invitee = FakeInvitee::new(invitee_uuid, "Jane Smith", Some("+1 555-123-4567"));
    let event = FakeEvent::new(event_uuid, at(start), invitee.clone());
    (event, invitee)
}

/// The old and new halves of rescheduling `(old_event, old)` to `new_start`.
fn rescheduled(
    old_event: &FakeEvent,
    old: &FakeInvitee,
    new_event_uuid: &str,
    new_uuid: &str,
    new_start: &str,
) -> ((FakeEvent, FakeInvitee), (FakeEvent, FakeInvitee)) {
    let (mut new_event, mut new) = booked(new_event_uuid, new_uuid, new_start);
    new.old_invitee = Some(invitee_uri(old_event, old));
    new_event.invitees = vec![new.clone()];
    let mut canceled = old.clone();
    canceled.status = "canceled".into();
    canceled.rescheduled = true;
    canceled.new_invitee = Some(invitee_uri(&new_event, &new));
    canceled.cancellation = Some(("Jane Smith".into(), "invitee".into(), String::new()));
    let mut canceled_event = old_event.clone();
    canceled_event.status = "canceled".into();
    canceled_event.invitees = vec![canceled.clone()];
    ((canceled_event, canceled), (new_event, new))
}

/// An appointment as these tests look at it (the columns in `appointment_rows` order).
#[derive(Debug, Clone, PartialEq, Queryable)]
struct Row {
    id: String,
    external_id: String,
    status: String,
    starts_at: NaiveDateTime,
    timezone: String,
    service_type: Option<String>,
    cancel_url: Option<String>,
    reschedule_url: Option<String>,
    customer_id: String,
}

async fn appointment_rows(app: &TestApp) -> Vec<Row> {
    db(app)
        .run(|conn| {
            Ok(appointments::table
                .select((
                    appointments::id,
                    appointments::external_id,
                    appointments::status,
                    appointments::starts_at,
                    appointments::timezone,
                    appointments::service_type,
                    appointments::cancel_url,
                    appointments::reschedule_url,
                    appointments::customer_id,
                ))
                .order(appointments::created_at)
                .load(conn)?)
        })
        .await
        .expect("read appointments")
}

/// (inbox items, pending ones).
async fn inbox_counts(app: &TestApp) -> (i64, i64) {
    db(app)
        .run(|conn| {
            Ok((
                inbox::table.count().get_result(conn)?,
                inbox::table
                    .filter(inbox::status.eq("pending"))
                    .count()
                    .get_result(conn)?,
            ))
        })
        .await
        .expect("count inbox")
}

async fn event_types(app: &TestApp) -> Vec<String> {
    db(app)
        .run(|conn| {
            Ok(events::table
                .select(events::event_type)
                .order(events::seq)
                .load(conn)?)
        })
        .await
        .expect("read events")
}

/// Waits until every recorded item is applied (or refused).
async fn settle(app: &TestApp) {
    for _ in 0..1000 {
        if inbox_counts(app).await.1 == 0 {
            return;
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("the inbox never drained: {:?}", inbox_counts(app).await);
}

/// Waits until the single appointment matches `pred`.
async fn wait_for(app: &TestApp, what: &str, pred: impl Fn(&[Row]) -> bool) -> Vec<Row> {
    for _ in 0..1000 {
        let rows = appointment_rows(app).await;
        if pred(&rows) {
            return rows;
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("never {what}: {:?}", appointment_rows(app).await);
}

async fn scheduled_timers(app: &TestApp, appointment_id: &str) -> Vec<(String, NaiveDateTime)> {
    let id = appointment_id.to_string();
    db(app)
        .run(move |conn| {
            Ok(timers::table
                .filter(timers::owner_id.eq(id))
                .filter(timers::status.eq("scheduled"))
                .select((timers::kind, timers::due_at))
                .order(timers::due_at)
                .load(conn)?)
        })
        .await
        .expect("read timers")
}

fn naive(text: &str) -> NaiveDateTime {
    at(text).naive_utc()
}

async fn bad_signatures_get_401_and_leave_no_trace(kind: Kind) {
    let app = app(kind).await;
    let (event, invitee) = booked("EV1", "INV1", "2031-03-20T15:00:00Z");
    let now = Utc::now();
    let (body, good) = signed_webhook("invitee.created", &event, &invitee, KEY, now);
    let text = String::from_utf8(body.clone()).expect("utf-8");
    let t = now.timestamp();
    let digest = good.split("v1=").nth(1).expect("digest").to_string();
    let tampered = text.replace("2031-03-20", "2031-03-27").into_bytes();
    let cases: Vec<(&str, Vec<u8>, Option<String>, &str)> = vec![
        ("missing", body.clone(), None, "signature_missing"),
        (
            "wrong key",
            body.clone(),
            Some(sign(b"not-the-key", t, &body)),
            "signature_mismatch",
        ),
        (
            "tampered",
            tampered,
            Some(good.clone()),
            "signature_mismatch",
        ),
        // Past the 180 s window either way (with slack for the request's own time).
        (
            "stale",
            body.clone(),
            Some(sign(KEY.as_bytes(), t - 200, &body)),
            "signature_stale",
        ),
        (
            "future",
            body.clone(),
            Some(sign(KEY.as_bytes(), t + 200, &body)),
            "signature_stale",
        ),
        (
            "malformed",
            body.clone(),
            Some("v1=abc".into()),
            "signature_malformed",
        ),
        (
            "malformed t",
            body.clone(),
            Some(format!("t=soon,v1={digest}")),
            "signature_malformed",
        ),
        (
            "several v1, none right",
            body.clone(),
            Some(format!(
                "t={t},v1={},v1={}",
                "00".repeat(32),
                "ab".repeat(32)
            )),
            "signature_mismatch",
        ),
    ];
    for (what, sent, signature, reason) in cases {
        let (status, answer) = post(&app, &sent, signature).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "UNAUTHORIZED", "{what}");
        assert_eq!(answer["error"]["details"]["reason"], reason, "{what}");
    }
    // Signed but not a Calendly delivery: 400, nothing recorded.
    let junk = b"{\"event\": \"invitee.created\"}".to_vec();
    let (status, answer) = post(&app, &junk, Some(sign(KEY.as_bytes(), t, &junk))).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(inbox_counts(&app).await, (0, 0), "nothing recorded");

    // Several v1 values, one of them right (a key being rolled): accepted.
    let rolled = format!("t={t},v1={},v1={digest}", "00".repeat(32));
    let (status, answer) = post(&app, &body, Some(rolled)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted");
    // The valid signature once more: the same delivery, a duplicate.
    let (status, answer) = post(&app, &body, Some(good)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "duplicate");
    settle(&app).await;
    assert_eq!(inbox_counts(&app).await.0, 1);
    assert_eq!(appointment_rows(&app).await.len(), 1);
}

async fn the_route_is_disabled_without_a_signing_key(kind: Kind) {
    let app = spawn_app_with(TestDb::new(kind), &[]).await;
    let (event, invitee) = booked("EV1", "INV1", "2031-03-20T15:00:00Z");
    let (body, header) = signed_webhook("invitee.created", &event, &invitee, KEY, Utc::now());
    let (status, answer) = post(&app, &body, Some(header)).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], "NOT_FOUND");
}

async fn a_created_invitee_becomes_one_appointment(kind: Kind) {
    let app = app(kind).await;
    let (event, invitee) = booked("EV1", "INV1", "2031-03-20T15:00:00Z");
    let sent = Utc::now();
    assert_eq!(
        deliver(&app, "invitee.created", &event, &invitee, sent).await,
        "accepted"
    );
    assert_eq!(
        deliver(&app, "invitee.created", &event, &invitee, sent).await,
        "duplicate"
    );
    let rows = wait_for(&app, "booked", |rows| rows.len() == 1).await;
    settle(&app).await;
    let row = &rows[0];
    assert_eq!(row.external_id, invitee_uri(&event, &invitee));
    assert_eq!(row.status, "booked");
    assert_eq!(row.starts_at, naive("2031-03-20T15:00:00Z"));
    assert_eq!(row.timezone, "America/New_York");
    assert_eq!(row.service_type.as_deref(), Some("30 Minute Consultation"));
    assert_eq!(
        row.cancel_url.as_deref(),
        Some("https://calendly.com/cancellations/INV1")
    );
    assert_eq!(
        row.reschedule_url.as_deref(),
        Some("https://calendly.com/reschedulings/INV1")
    );
    let customer_id = row.customer_id.clone();
    let (phone, name): (Option<String>, Option<String>) = db(&app)
        .run(move |conn| {
            Ok(customers::table
                .find(customer_id)
                .select((customers::phone_e164, customers::name))
                .first(conn)?)
        })
        .await
        .expect("customer");
    assert_eq!(phone.as_deref(), Some(PHONE));
    assert_eq!(name.as_deref(), Some("Jane Smith"));
    assert_eq!(
        inbox_counts(&app).await,
        (1, 0),
        "one item for two deliveries"
    );
    // The sandbox may already have sent the confirmation by now.
    let types = event_types(&app).await;
    assert!(types.len() >= 2, "{types:?}");
    assert_eq!(
        types[..2],
        ["appointment.booked", "message.queued"],
        "booked, and its confirmation queued: {types:?}"
    );
    assert!(
        types[2..].iter().all(|t| t == "message.sent") && types.len() <= 3,
        "then at most its sending: {types:?}"
    );
}

/// Books INV1 at T1, then reschedules it to T2 with the two halves in the given order,
/// each delivered twice; then cancels the new invitee.
async fn reschedule(kind: Kind, cancel_first: bool) {
    let app = app(kind).await;
    let (event, invitee) = booked("EV1", "INV1", "2031-03-20T15:00:00Z");
    let base = Utc::now();
    deliver(&app, "invitee.created", &event, &invitee, base).await;
    wait_for(&app, "booked", |rows| rows.len() == 1).await;
    settle(&app).await;

    let ((old_event, old), (new_event, new)) =
        rescheduled(&event, &invitee, "EV2", "INV2", "2031-03-22T16:00:00Z");
    let cancel_at = base + Duration::seconds(1);
    let create_at = base + Duration::seconds(2);
    let halves: [(&str, &FakeEvent, &FakeInvitee, DateTime<Utc>); 2] = [
        ("invitee.canceled", &old_event, &old, cancel_at),
        ("invitee.created", &new_event, &new, create_at),
    ];
    let order: Vec<usize> = if cancel_first { vec![0, 1] } else { vec![1, 0] };
    for i in &order {
        let (name, ev, inv, sent) = halves[*i];
        assert_eq!(
            deliver(&app, name, ev, inv, sent).await,
            "accepted",
            "{name}"
        );
    }
    for i in &order {
        let (name, ev, inv, sent) = halves[*i];
        assert_eq!(
            deliver(&app, name, ev, inv, sent).await,
            "duplicate",
            "{name}"
        );
    }
    settle(&app).await;

    let rows = appointment_rows(&app).await;
    assert_eq!(rows.len(), 1, "one appointment: {rows:?}");
    let row = &rows[0];
    assert_eq!(row.status, "booked");
    assert_eq!(row.starts_at, naive("2031-03-22T16:00:00Z"));
    assert_eq!(row.external_id, invitee_uri(&new_event, &new));
    assert_eq!(
        row.cancel_url.as_deref(),
        Some("https://calendly.com/cancellations/INV2"),
        "the new invitee's links"
    );
    let timers = scheduled_timers(&app, &row.id).await;
    assert_eq!(
        timers,
        vec![
            ("reminder_48h".to_string(), naive("2031-03-20T16:00:00Z")),
            ("reminder_24h".to_string(), naive("2031-03-21T16:00:00Z")),
            (
                "unconfirmed_check".to_string(),
                naive("2031-03-22T10:00:00Z")
            ),
            ("lifecycle_start".to_string(), naive("2031-03-22T16:00:00Z")),
            (
                "lifecycle_complete".to_string(),
                naive("2031-03-22T18:30:00Z")
            ),
        ],
        "every timer recomputed from the new time"
    );
    let types = event_types(&app).await;
    assert!(
        !types.iter().any(|t| t == "appointment.cancelled"),
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "appointment.booked").count(),
        1,
        "{types:?}"
    );
    let customers: i64 = db(&app)
        .run(|conn| Ok(customers::table.count().get_result(conn)?))
        .await
        .expect("count");
    assert_eq!(customers, 1);
    // The new invitee names the appointment of the chain's first invitee.
    let aliases: Vec<(String, String)> = db(&app)
        .run(|conn| {
            Ok(appointment_aliases::table
                .select((
                    appointment_aliases::external_id,
                    appointment_aliases::appointment_id,
                ))
                .load(conn)?)
        })
        .await
        .expect("aliases");
    assert!(
        aliases
            .iter()
            .any(|(ext, id)| *ext == invitee_uri(&new_event, &new) && *id == row.id),
        "{aliases:?}"
    );

    // Later, the new invitee cancels (twice): the same appointment is cancelled once.
    let mut gone = new.clone();
    gone.status = "canceled".into();
    gone.cancellation = Some((
        "Jane Smith".into(),
        "invitee".into(),
        "Feeling better".into(),
    ));
    let mut gone_event = new_event.clone();
    gone_event.status = "canceled".into();
    gone_event.invitees = vec![gone.clone()];
    let sent = base + Duration::seconds(3);
    assert_eq!(
        deliver(&app, "invitee.canceled", &gone_event, &gone, sent).await,
        "accepted"
    );
    assert_eq!(
        deliver(&app, "invitee.canceled", &gone_event, &gone, sent).await,
        "duplicate"
    );
    settle(&app).await;
    let rows = appointment_rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "cancelled");
    assert_eq!(rows[0].id, row.id);
    let types = event_types(&app).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "appointment.cancelled")
            .count(),
        1,
        "{types:?}"
    );
    assert!(scheduled_timers(&app, &row.id).await.is_empty());
}

async fn a_reschedule_cancel_first_moves_one_appointment(kind: Kind) {
    reschedule(kind, true).await;
}

async fn a_reschedule_create_first_moves_one_appointment(kind: Kind) {
    reschedule(kind, false).await;
}

async fn no_shows_and_other_events(kind: Kind) {
    let app = app(kind).await;
    let (event, invitee) = booked("EV1", "INV1", "2031-03-20T15:00:00Z");
    let base = Utc::now();
    deliver(&app, "invitee.created", &event, &invitee, base).await;
    wait_for(&app, "booked", |rows| rows.len() == 1).await;

    let marked = base + Duration::seconds(1);
    assert_eq!(
        deliver(&app, "invitee_no_show.created", &event, &invitee, marked).await,
        "accepted"
    );
    assert_eq!(
        deliver(&app, "invitee_no_show.created", &event, &invitee, marked).await,
        "duplicate"
    );
    settle(&app).await;
    let rows = appointment_rows(&app).await;
    assert_eq!(rows[0].status, "no_show");
    let items = inbox_counts(&app).await.0;

    // The mark removed in Calendly: acknowledged, nothing recorded, still a no-show.
    let unmarked = base + Duration::seconds(2);
    assert_eq!(
        deliver(&app, "invitee_no_show.deleted", &event, &invitee, unmarked).await,
        "ignored"
    );
    // An event ARO does not act on.
    let body = serde_json::json!({
        "event": "routing_form_submission.created",
        "created_at": Utc::now().to_rfc3339(),
        "payload": {"uri": format!("{CALENDLY_API}/routing_form_submissions/R1")},
    })
    .to_string()
    .into_bytes();
    let header = sign(KEY.as_bytes(), Utc::now().timestamp(), &body);
    let (status, answer) = post(&app, &body, Some(header)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "ignored");
    assert_eq!(inbox_counts(&app).await.0, items, "nothing recorded");
    assert_eq!(appointment_rows(&app).await[0].status, "no_show");
    let types = event_types(&app).await;
    assert_eq!(
        types.iter().filter(|t| *t == "appointment.no_show").count(),
        1,
        "{types:?}"
    );
}

/// Delivers every (name, event, invitee, sent) at once, twice over.
async fn deliver_concurrently(
    app: &TestApp,
    deliveries: &[(&str, &FakeEvent, &FakeInvitee, DateTime<Utc>)],
) {
    let sends = deliveries
        .iter()
        .chain(deliveries.iter())
        .map(|(name, ev, inv, sent)| deliver(app, name, ev, inv, *sent));
    let answers = futures_util::future::join_all(sends).await;
    let accepted = answers.iter().filter(|a| *a == "accepted").count();
    assert_eq!(accepted, deliveries.len(), "{answers:?}");
}

async fn reschedules_delivered_concurrently_stay_one_appointment(kind: Kind) {
    let app = app(kind).await;
    let (event, invitee) = booked("EV1", "INV1", "2031-03-20T15:00:00Z");
    let base = Utc::now();
    deliver(&app, "invitee.created", &event, &invitee, base).await;
    wait_for(&app, "booked", |rows| rows.len() == 1).await;
    let id = appointment_rows(&app).await[0].id.clone();

    // INV1 → INV2, both halves (and their repeats) at once.
    let ((old_event, old), (mid_event, mid)) =
        rescheduled(&event, &invitee, "EV2", "INV2", "2031-03-22T16:00:00Z");
    deliver_concurrently(
        &app,
        &[
            (
                "invitee.canceled",
                &old_event,
                &old,
                base + Duration::seconds(1),
            ),
            (
                "invitee.created",
                &mid_event,
                &mid,
                base + Duration::seconds(2),
            ),
        ],
    )
    .await;
    settle(&app).await;
    // INV2 → INV3, the same way: the chain is followed through INV2's alias.
    let ((mid_old_event, mid_old), (new_event, new)) =
        rescheduled(&mid_event, &mid, "EV3", "INV3", "2031-03-25T09:00:00Z");
    deliver_concurrently(
        &app,
        &[
            (
                "invitee.created",
                &new_event,
                &new,
                base + Duration::seconds(3),
            ),
            (
                "invitee.canceled",
                &mid_old_event,
                &mid_old,
                base + Duration::seconds(4),
            ),
        ],
    )
    .await;
    settle(&app).await;
    let rows = appointment_rows(&app).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].id, id);
    assert_eq!(rows[0].status, "booked");
    assert_eq!(rows[0].starts_at, naive("2031-03-25T09:00:00Z"));
    assert_eq!(rows[0].external_id, invitee_uri(&new_event, &new));
    let types = event_types(&app).await;
    assert!(
        !types.iter().any(|t| t == "appointment.cancelled"),
        "{types:?}"
    );

    // A no-show mark on the newest invitee reaches the same appointment.
    deliver(
        &app,
        "invitee_no_show.created",
        &new_event,
        &new,
        base + Duration::seconds(5),
    )
    .await;
    settle(&app).await;
    let rows = appointment_rows(&app).await;
    assert_eq!((rows.len(), rows[0].status.as_str()), (1, "no_show"));
}

/// Two reschedules whose deliveries arrive in the wrong order across the two steps
/// (the second reschedule's before anything of the first): the chain splits. The newer
/// half carries on at the newest time; the appointment of the first invitee, which
/// Calendly no longer has, is cancelled with a reason naming where it continues.
async fn a_chain_split_by_late_deliveries_keeps_the_newest_time(kind: Kind) {
    let app = app(kind).await;
    let (event, invitee) = booked("EV1", "INV1", "2031-03-20T15:00:00Z");
    let base = Utc::now();
    deliver(&app, "invitee.created", &event, &invitee, base).await;
    wait_for(&app, "booked", |rows| rows.len() == 1).await;
    let first = appointment_rows(&app).await[0].id.clone();
    let ((old_event, old), (mid_event, mid)) =
        rescheduled(&event, &invitee, "EV2", "INV2", "2031-03-22T16:00:00Z");
    let ((mid_old_event, mid_old), (new_event, new)) =
        rescheduled(&mid_event, &mid, "EV3", "INV3", "2031-03-25T09:00:00Z");
    let late: [(&str, &FakeEvent, &FakeInvitee, i64); 4] = [
        ("invitee.created", &new_event, &new, 4),
        ("invitee.canceled", &mid_old_event, &mid_old, 3),
        ("invitee.created", &mid_event, &mid, 2),
        ("invitee.canceled", &old_event, &old, 1),
    ];
    for (name, ev, inv, secs) in late {
        deliver(&app, name, ev, inv, base + Duration::seconds(secs)).await;
        settle(&app).await;
    }
    let rows = appointment_rows(&app).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (retired, live): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| r.id == first);
    assert_eq!(retired[0].status, "cancelled");
    assert!(scheduled_timers(&app, &first).await.is_empty());
    assert_eq!(live[0].status, "booked");
    assert_eq!(live[0].starts_at, naive("2031-03-25T09:00:00Z"));
    assert_eq!(live[0].external_id, invitee_uri(&new_event, &new));
    let reason: String = db(&app)
        .run(move |conn| {
            Ok(events::table
                .filter(events::aggregate_id.eq(first))
                .filter(events::event_type.eq("appointment.cancelled"))
                .select(events::payload)
                .first(conn)?)
        })
        .await
        .expect("the cancellation");
    assert!(reason.contains(&live[0].id), "{reason}");
}

on_both_backends!(
    bad_signatures_get_401_and_leave_no_trace,
    the_route_is_disabled_without_a_signing_key,
    a_created_invitee_becomes_one_appointment,
    a_reschedule_cancel_first_moves_one_appointment,
    a_reschedule_create_first_moves_one_appointment,
    no_shows_and_other_events,
    reschedules_delivered_concurrently_stay_one_appointment,
    a_chain_split_by_late_deliveries_keeps_the_newest_time,
);

/// `aro sync calendly` as a child process against the fake: the first run records every
/// invitee, the second nothing new; the daemon then applies the work, a rescheduled
/// booking as one appointment at its new time.
fn sync_is_idempotent_and_applied_by_the_daemon(kind: Kind) {
    const TOKEN: &str = "calendly-token-for-tests";
    let db = TestDb::new(kind);
    let fake = FakeCalendly::start(TOKEN, &format!("{CALENDLY_API}/users/HOST000000000001"));
    let owner = format!("{CALENDLY_API}/users/HOST000000000001");
    let base = fake.base_url();
    // Four plain events (the fifth is canceled) and a reschedule pair.
    fake.seed(5, at("2031-03-02T15:00:00Z"));
    let (event, old) = booked("EVR1", "INVR1", "2031-03-10T15:00:00Z");
    let (mut new_event, mut new) = booked("EVR2", "INVR2", "2031-03-12T16:00:00Z");
    new.old_invitee = Some(event.invitee_uri(&base, &old));
    new_event.invitees = vec![new.clone()];
    let mut replaced = old.clone();
    replaced.status = "canceled".into();
    replaced.rescheduled = true;
    replaced.new_invitee = Some(new_event.invitee_uri(&base, &new));
    replaced.cancellation = Some(("Jane Smith".into(), "invitee".into(), String::new()));
    let mut old_event = event.clone();
    old_event.status = "canceled".into();
    old_event.invitees = vec![replaced];
    fake.add_event(old_event);
    fake.add_event(new_event);

    let env = [
        ("ARO_DATA_DIR", db.data_dir().display().to_string()),
        ("ARO_DATABASE_URL", db.url.clone()),
        ("ARO_CALENDLY_TOKEN", TOKEN.to_string()),
        ("ARO_CALENDLY_API_BASE", base.clone()),
    ];
    let run = || {
        let out = common::aro_command(db.data_dir())
            .args([
                "sync",
                "calendly",
                "--from",
                "2031-03-01",
                "--to",
                "2031-03-31",
                "--owner",
                &owner,
            ])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("ARO_LOG_LEVEL", "warn")
            .output()
            .expect("run aro sync");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(!stderr.contains(TOKEN), "the token is never logged");
        stdout
    };
    let first = run();
    assert!(
        first.contains("fetched 7, accepted 7, duplicate 0, ignored 0, invalid 0"),
        "{first}"
    );
    let second = run();
    assert!(
        second.contains("fetched 7, accepted 0, duplicate 7, ignored 0, invalid 0"),
        "{second}"
    );

    // The daemon applies what was recorded when it starts.
    let (mut daemon, _addr) = common::Daemon::start(
        db.data_dir(),
        &env.iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain([("ARO_LISTEN", "127.0.0.1:0")])
            .collect::<Vec<_>>(),
    );
    let rt = actix_rt::System::new();
    let database = Database::open(&db.config(&[]).database).expect("open");
    let read = || {
        rt.block_on(database.run(|conn| {
            let pending: i64 = inbox::table
                .filter(inbox::status.eq("pending"))
                .count()
                .get_result(conn)?;
            let rows: Vec<(String, String, NaiveDateTime)> = appointments::table
                .select((
                    appointments::external_id,
                    appointments::status,
                    appointments::starts_at,
                ))
                .order(appointments::starts_at)
                .load(conn)?;
            Ok((pending, rows))
        }))
        .expect("read")
    };
    let mut state = read();
    for _ in 0..1000 {
        if state.0 == 0 {
            break;
        }
        std::thread::sleep(StdDuration::from_millis(20));
        state = read();
    }
    let (pending, rows) = state;
    assert_eq!(pending, 0, "{rows:?}");
    // Four active seeded events (the canceled one was never booked here) and the
    // rescheduled booking, once, at its new time.
    assert_eq!(rows.len(), 5, "{rows:?}");
    let moved: Vec<_> = rows
        .iter()
        .filter(|(ext, _, _)| ext.contains("INVR"))
        .collect();
    assert_eq!(moved.len(), 1, "{rows:?}");
    assert_eq!(
        moved[0].0,
        format!("{base}/scheduled_events/EVR2/invitees/INVR2")
    );
    assert_eq!(moved[0].1, "booked");
    assert_eq!(moved[0].2, naive("2031-03-12T16:00:00Z"));
    daemon.signal("TERM");
    daemon.wait_exit(StdDuration::from_secs(20));
}

#[test]
fn sync_calendly_sqlite() {
    sync_is_idempotent_and_applied_by_the_daemon(Kind::Sqlite);
}

#[test]
fn sync_calendly_postgres() {
    sync_is_idempotent_and_applied_by_the_daemon(Kind::Postgres);
}
