//! The optional LLM reply classifier against a fake OpenAI-compatible API over real
//! HTTP: each outcome of a request (a valid intent; content that is not the asked-for
//! JSON; an unknown intent; a confidence out of range; a 500; a 429; a wrong key; a hang
//! past the 4 s timeout) gives the chain's answer from the right `source` — `llm`, or the
//! local classifier's as fallback — with requests of the right shape that carry only the
//! text; the monthly budget stops requests after N, persists, is exact under
//! concurrency and starts again each month (both backends); and on the real daemon
//! (both backends) a reply the fake classifies as `confirm` confirms the appointment,
//! while a failing LLM leaves the local classifier in charge.

// Both fakes include `fakes/server.rs`, each as its own module.
#![allow(clippy::duplicate_mod)]

mod common;
#[path = "fakes/llm.rs"]
mod fake_llm;
#[path = "fakes/twilio.rs"]
mod fake_twilio;

use std::time::{Duration as StdDuration, Instant};

use actors::classify::LocalClassifier;
use actors::ports::providers::{Classification, Intent};
use aro::providers::llm::{
    LlmBudget, LlmClient, LlmSettings, ReplyClassifier, LLM_TIMEOUT, SYSTEM_PROMPT,
};
use aro::providers::twilio::signature::expected_signature;
use aro::store::schema::{appointments, messages};
use aro::store::Database;
use aro::webhooks::signed_header::sign;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use common::credentials::create_token;
use common::{client, migrated_database, spawn_app_with, Kind, TestApp, TestDb};
use diesel::prelude::*;
use fake_llm::{FakeLlm, Reply};
use fake_twilio::FakeTwilio;
use serde_json::json;

const KEY: &str = "sk-test-llm-key-0123456789";
const MODEL: &str = "gpt-test-mini";
/// A reply the local classifier cannot place, so only the LLM can make it a confirm.
const TEXT: &str = "my sister will drive me over";

fn settings(fake: &FakeLlm, key: &str, timeout: StdDuration) -> LlmSettings {
    LlmSettings {
        api_base: url::Url::parse(&fake.base_url()).expect("url"),
        api_key: Some(key.to_string()),
        model: MODEL.to_string(),
        timeout,
    }
}

fn chain(fake: &FakeLlm, db: &Database, budget: u64) -> ReplyClassifier {
    ReplyClassifier::with_llm(
        LlmClient::new(settings(fake, KEY, LLM_TIMEOUT)),
        LlmBudget::new(db.clone(), "default", budget),
    )
}

fn local(text: &str) -> Classification {
    LocalClassifier::new().classify_text(text)
}

#[test]
fn the_test_text_is_not_a_confirm_for_the_local_classifier() {
    let c = local(TEXT);
    assert_ne!(c.intent, Intent::Confirm, "{c:?}");
    assert_eq!(c.source, "local");
}

async fn each_outcome_answers_from_the_right_source(kind: Kind) {
    let test_db = TestDb::new(kind);
    let db = migrated_database(&test_db).await;
    let fake = FakeLlm::start(KEY, MODEL);
    let chain = chain(&fake, &db, 100);
    assert!(chain.llm_enabled());

    fake.answer_with(Reply::intent("reschedule", 0.91));
    let c = chain.classify(TEXT).await;
    assert_eq!(
        (c.intent, c.confidence, c.source.as_str()),
        (Intent::Reschedule, 0.91, "llm")
    );
    fake.answer_with(Reply::intent("confirm", 0.4));
    let c = chain.classify(TEXT).await;
    assert_eq!(
        (c.intent, c.source.as_str()),
        (Intent::Unclear, "llm"),
        "below the floor"
    );

    let fallback = local(TEXT);
    for reply in [
        Reply::Content("Sure! They will attend.".to_string()),
        Reply::Content(r#"{"intent": "maybe", "confidence": 0.9}"#.to_string()),
        Reply::intent("confirm", 1.7),
        Reply::Status(500),
        Reply::Status(429),
    ] {
        fake.answer_with(reply.clone());
        let c = chain.classify(TEXT).await;
        assert_eq!(c, fallback, "{reply:?}");
    }

    let log = fake.log();
    assert_eq!(log.len(), 7);
    for request in &log {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/chat/completions");
        assert!(request.authorized, "bearer key sent");
        assert!(request.problems.is_empty(), "{:?}", request.problems);
        assert_eq!(request.body["messages"][0]["content"], SYSTEM_PROMPT);
        assert_eq!(request.user_text(), Some(TEXT));
    }
    assert_eq!(
        LlmBudget::new(db.clone(), "default", 100)
            .used(Utc::now())
            .await
            .expect("used"),
        7,
        "every request sent counts"
    );

    // A wrong key: 401, the local classifier answers.
    let wrong = ReplyClassifier::with_llm(
        LlmClient::new(settings(&fake, "sk-wrong", LLM_TIMEOUT)),
        LlmBudget::new(db.clone(), "default", 100),
    );
    fake.answer_with(Reply::intent("confirm", 0.99));
    assert_eq!(wrong.classify(TEXT).await, fallback);
    assert!(!fake.log()[7].authorized);
}

async fn the_budget_stops_requests_after_n_and_persists(kind: Kind) {
    let test_db = TestDb::new(kind);
    let db = migrated_database(&test_db).await;
    let fake = FakeLlm::start(KEY, MODEL);
    let chain = chain(&fake, &db, 3);
    let mut sources = Vec::new();
    for _ in 0..5 {
        sources.push(chain.classify(TEXT).await.source);
    }
    assert_eq!(sources, ["llm", "llm", "llm", "local", "local"]);
    assert_eq!(fake.requests(), 3, "no request past the budget");

    // Persisted: a restarted daemon (a new budget over the same database) sees it.
    let now = Utc::now();
    let again = LlmBudget::new(db.clone(), "default", 3);
    assert_eq!(again.used(now).await.expect("used"), 3);
    assert!(!again.reserve(now).await.expect("reserve"));
    // A raised budget allows the difference.
    let raised = LlmBudget::new(db.clone(), "default", 4);
    assert!(raised.reserve(now).await.expect("reserve"));
    assert!(!raised.reserve(now).await.expect("reserve"));

    // Zero never calls.
    let none = ReplyClassifier::with_llm(
        LlmClient::new(settings(&fake, KEY, LLM_TIMEOUT)),
        LlmBudget::new(db.clone(), "default", 0),
    );
    assert_eq!(none.classify(TEXT).await.source, "local");
    assert_eq!(fake.requests(), 3);
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("date")
        .with_timezone(&Utc)
}

async fn the_budget_is_exact_under_concurrency_and_monthly(kind: Kind) {
    let test_db = TestDb::new(kind);
    let db = migrated_database(&test_db).await;
    let budget = LlmBudget::new(db.clone(), "default", 5);
    let november = at("2026-11-30T23:59:00Z");
    let reserves = (0..12).map(|_| {
        let budget = budget.clone();
        async move { budget.reserve(november).await.expect("reserve") }
    });
    let granted = futures_util::future::join_all(reserves)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    assert_eq!(granted, 5);
    assert_eq!(budget.used(november).await.expect("used"), 5);
    let december = at("2026-12-01T00:00:00Z");
    assert_eq!(budget.used(december).await.expect("used"), 0);
    assert!(
        budget.reserve(december).await.expect("reserve"),
        "a new month"
    );
    assert_eq!(budget.used(november).await.expect("used"), 5);
}

#[actix_rt::test]
async fn a_hang_falls_back_to_local_within_the_4_s_timeout() {
    let test_db = TestDb::new(Kind::Sqlite);
    let db = migrated_database(&test_db).await;
    let fake = FakeLlm::start(KEY, MODEL);
    fake.answer_with(Reply::Hang(StdDuration::from_secs(6)));
    let chain = chain(&fake, &db, 10);
    let started = Instant::now();
    let c = chain.classify("yes 👍").await;
    let took = started.elapsed();
    assert_eq!(c.source, "local");
    assert_eq!(c.intent, Intent::Confirm);
    assert!(took >= StdDuration::from_millis(3900), "{took:?}");
    assert!(took < StdDuration::from_millis(4800), "{took:?}");
    assert_eq!(fake.requests(), 1);
}

#[actix_rt::test]
async fn an_unreachable_llm_falls_back_to_local() {
    let test_db = TestDb::new(Kind::Sqlite);
    let db = migrated_database(&test_db).await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let chain = ReplyClassifier::with_llm(
        LlmClient::new(LlmSettings {
            api_base: url::Url::parse(&format!("http://127.0.0.1:{port}/v1")).expect("url"),
            api_key: None,
            model: MODEL.to_string(),
            timeout: LLM_TIMEOUT,
        }),
        LlmBudget::new(db, "default", 10),
    );
    let c = chain.classify("see you then").await;
    assert_eq!(c, local("see you then"));
}

#[test]
fn without_llm_settings_the_chain_is_local() {
    let test_db = TestDb::new(Kind::Sqlite);
    let config = test_db.config(&[]);
    let db = Database::open(&config.database).expect("open");
    assert!(!ReplyClassifier::from_config(&config, &db).llm_enabled());
    let config = test_db.config(&[
        ("ARO_LLM_API_BASE", "http://127.0.0.1:9/v1"),
        ("ARO_LLM_MODEL", MODEL),
    ]);
    assert!(ReplyClassifier::from_config(&config, &db).llm_enabled());
}

// ---- On the real daemon -------------------------------------------------------------

const SID: &str = "AC0000000000000000000000000000llm1";
const TOKEN: &str = "llm-test-token";
const PUBLIC: &str = "https://aro.example.com";
const SECRET: &str = "booking-secret";
const PHONE: &str = "+15559876543";
const OURS: &str = "+15550001111";

/// A daemon with the fake Twilio and the fake LLM, and a booking whose message went
/// out (so a reply from `PHONE` matches it).
async fn booked(kind: Kind, llm: &FakeLlm) -> (FakeTwilio, TestApp) {
    let twilio = FakeTwilio::start(SID, TOKEN);
    let twilio_base = twilio.base_url();
    let llm_base = llm.base_url();
    let app = spawn_app_with(
        TestDb::new(kind),
        &[
            ("ARO_PUBLIC_URL", PUBLIC),
            ("ARO_TWILIO_ACCOUNT_SID", SID),
            ("ARO_TWILIO_AUTH_TOKEN", TOKEN),
            ("ARO_TWILIO_FROM", OURS),
            ("ARO_TWILIO_API_BASE", twilio_base.as_str()),
            ("ARO_TWILIO_RATE", "50"),
            ("ARO_QUIET_HOURS", "off"),
            ("ARO_BOOKING_WEBHOOK_SECRET", SECRET),
            ("ARO_LLM_API_BASE", llm_base.as_str()),
            ("ARO_LLM_API_KEY", KEY),
            ("ARO_LLM_MODEL", MODEL),
        ],
    )
    .await;
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
    for _ in 0..1000 {
        let sent: i64 = database(&app)
            .run(|conn| {
                Ok(messages::table
                    .filter(messages::direction.eq("outbound"))
                    .filter(messages::appointment_id.is_not_null())
                    .count()
                    .get_result(conn)?)
            })
            .await
            .expect("read");
        if sent > 0 {
            return (twilio, app);
        }
        actix_rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("no message was sent for the booking");
}

fn database(app: &TestApp) -> Database {
    Database::open(&app.db.config(&[]).database).expect("open")
}

/// Posts a signed inbound SMS.
async fn reply(app: &TestApp, message_sid: &str, body: &str) {
    let form: Vec<(String, String)> = [
        ("AccountSid", SID),
        ("MessageSid", message_sid),
        ("From", PHONE),
        ("To", OURS),
        ("Body", body),
        ("NumMedia", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signature = expected_signature(TOKEN, &format!("{PUBLIC}/webhooks/twilio/sms"), &form);
    let response = client()
        .post(app.url("/webhooks/twilio/sms"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .insert_header(("X-Twilio-Signature", signature))
        .send_body(serde_urlencoded::to_string(&form).expect("form"))
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
}

async fn status(app: &TestApp) -> Option<String> {
    database(app)
        .run(|conn| {
            Ok(appointments::table
                .select(appointments::status)
                .first(conn)
                .optional()?)
        })
        .await
        .expect("read")
}

async fn until_confirmed(app: &TestApp) {
    for _ in 0..500 {
        if status(app).await.as_deref() == Some("confirmed") {
            return;
        }
        actix_rt::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("not confirmed: {:?}", status(app).await);
}

async fn a_reply_the_llm_calls_confirm_confirms_on_the_daemon(kind: Kind) {
    let llm = FakeLlm::start(KEY, MODEL);
    llm.answer_with(Reply::intent("confirm", 0.97));
    let (_twilio, app) = booked(kind, &llm).await;
    reply(&app, "SM00000000000000000000000000001101", TEXT).await;
    until_confirmed(&app).await;
    let log = llm.log();
    assert_eq!(log.len(), 1);
    assert!(log[0].authorized && log[0].problems.is_empty(), "{log:?}");
    assert_eq!(log[0].user_text(), Some(TEXT));
    let sent = log[0].body.to_string();
    assert!(
        !sent.contains(&PHONE[1..]),
        "the phone number never leaves: {sent}"
    );
}

async fn a_failing_llm_leaves_the_local_classifier_in_charge(kind: Kind) {
    let llm = FakeLlm::start(KEY, MODEL);
    llm.answer_with(Reply::Status(500));
    let (_twilio, app) = booked(kind, &llm).await;
    reply(&app, "SM00000000000000000000000000001102", "yes 👍").await;
    until_confirmed(&app).await;
    assert_eq!(llm.requests(), 1);
}

/// `POST /v1/admin/classify` tries a text on the daemon's own chain: the LLM's answer
/// while it works, the local classifier's when it fails; the carrier keywords before
/// either (the LLM never sees a STOP).
async fn the_admin_try_out_runs_the_same_chain(kind: Kind) {
    use aro::auth::Role;

    let llm = FakeLlm::start(KEY, MODEL);
    llm.answer_with(Reply::intent("confirm", 0.91));
    let (_twilio, app) = booked(kind, &llm).await;
    let db = database(&app);
    let (_, token) = create_token(&db, Role::Staff, None).await;
    let classify = |text: &str| {
        let request = client()
            .post(app.url("/v1/admin/classify"))
            .insert_header(("Authorization", format!("Bearer {token}")));
        let body = json!({ "text": text });
        async move {
            let mut response = request.send_json(&body).await.expect("sent");
            assert_eq!(response.status().as_u16(), 200);
            response.json::<serde_json::Value>().await.expect("JSON")
        }
    };
    let answer = classify(TEXT).await;
    assert_eq!(
        (answer["intent"].as_str(), answer["source"].as_str()),
        (Some("confirm"), Some("llm")),
        "{answer}"
    );
    assert!((answer["confidence"].as_f64().expect("confidence") - 0.91).abs() < 1e-9);
    let stop = classify("STOP").await;
    assert_eq!(stop["source"], "rules");
    assert_eq!(llm.requests(), 1, "keywords never reach the LLM");

    llm.answer_with(Reply::Status(500));
    let fallback = classify(TEXT).await;
    assert_eq!(fallback["source"], "local", "{fallback}");
    assert_eq!(fallback["intent"], json!(local(TEXT).intent));
}

on_both_backends!(
    the_admin_try_out_runs_the_same_chain,
    each_outcome_answers_from_the_right_source,
    the_budget_stops_requests_after_n_and_persists,
    the_budget_is_exact_under_concurrency_and_monthly,
    a_reply_the_llm_calls_confirm_confirms_on_the_daemon,
    a_failing_llm_leaves_the_local_classifier_in_charge,
);
