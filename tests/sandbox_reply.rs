//! `aro sandbox reply` against the real `aro` binary in sandbox mode (both backends): a
//! booking's confirmation goes out through the sandbox, a typed "yes" takes the path of
//! a real Twilio reply — matched, classified, recorded as an inbound message, applied
//! by the engine — and confirms the appointment; a repeated MessageSid is a duplicate;
//! a bad number gets the error envelope. With Twilio credentials the command refuses
//! and the route answers 404.

mod common;

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use aro::store::schema::{appointments, messages};
use aro::store::Database;
use aro::webhooks::signed_header::sign;
use chrono::{SecondsFormat, Utc};
use common::{aro_command, client, spawn_app_with, Daemon, Kind, TestDb};
use diesel::prelude::*;
use serde_json::json;

const SECRET: &str = "sandbox-booking-secret";
const PHONE: &str = "+15559876543";

fn env(db: &TestDb) -> Vec<(String, String)> {
    vec![
        ("ARO_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        (
            "ARO_DATA_DIR".to_string(),
            db.data_dir().display().to_string(),
        ),
        ("ARO_DATABASE_URL".to_string(), db.url.clone()),
        ("ARO_DATABASE_POOL_SIZE".to_string(), "4".to_string()),
        ("ARO_BOOKING_WEBHOOK_SECRET".to_string(), SECRET.to_string()),
        ("ARO_QUIET_HOURS".to_string(), "off".to_string()),
    ]
}

/// Runs `aro ARGS` with `env`, pointed at the daemon listening on `addr`.
fn aro(db: &TestDb, env: &[(String, String)], addr: SocketAddr, args: &[&str]) -> Output {
    aro_command(db.data_dir())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("ARO_LISTEN", addr.to_string())
        .args(args)
        .output()
        .expect("run aro")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Posts a signed booking starting in two days for `PHONE`.
fn book(addr: SocketAddr) {
    let starts_at = Utc::now() + chrono::Duration::hours(48);
    let body = json!({
        "event": "appointment.created", "id": "sbx-d-1",
        "timestamp": Utc::now().to_rfc3339(),
        "data": {"appointment_id": "ext-sbx-1",
                 "scheduled_at": starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                 "duration": 30, "timezone": "UTC",
                 "customer": {"name": "Jane", "phone": PHONE, "sms_consent": true}}
    })
    .to_string();
    let signature = sign(SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes());
    let status = actix_rt::System::new().block_on(async move {
        client()
            .post(format!("http://{addr}/webhooks/booking"))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Aro-Signature", signature))
            .send_body(body)
            .await
            .expect("sent")
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
}

/// Polls `check` on a connection for up to 10 s.
fn until<T>(
    db: &Database,
    what: &str,
    check: impl Fn(&mut aro::store::DbConnection) -> Option<T>,
) -> T {
    for _ in 0..1000 {
        let mut conn = db.get().expect("connection");
        if let Some(found) = check(&mut conn) {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// The inbound messages: (from, body, provider message id, appointment id).
type Inbound = (Option<String>, String, Option<String>, Option<String>);

fn inbound(conn: &mut aro::store::DbConnection) -> Vec<Inbound> {
    messages::table
        .filter(messages::direction.eq("inbound"))
        .order(messages::created_at.asc())
        .select((
            messages::from_addr,
            messages::body,
            messages::provider_message_id,
            messages::appointment_id,
        ))
        .load(conn)
        .expect("read inbound")
}

fn a_typed_yes_confirms_the_appointment(kind: Kind) {
    let test_db = TestDb::new(kind);
    let env = env(&test_db);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (_daemon, addr) = Daemon::start(test_db.data_dir(), &pairs);
    let db = Database::open(&test_db.config(&[]).database).expect("open");

    book(addr);
    // The booking confirmation goes out at once through the sandbox.
    let appointment_id: String = until(&db, "the sandbox confirmation", |conn| {
        messages::table
            .filter(messages::direction.eq("outbound"))
            .filter(messages::sandbox.eq(true))
            .filter(messages::sent_at.is_not_null())
            .filter(messages::appointment_id.is_not_null())
            .select(messages::appointment_id)
            .first::<Option<String>>(conn)
            .optional()
            .expect("read")
            .flatten()
    });

    let out = aro(
        &test_db,
        &env,
        addr,
        &["sandbox", "reply", "--from", PHONE, "--body", "yes"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("recorded: reply SBX"), "{}", text(&out));
    assert!(!stdout.contains(PHONE), "the number is masked: {stdout}");

    until(&db, "the confirmation", |conn| {
        let status: String = appointments::table
            .find(&appointment_id)
            .select(appointments::status)
            .first(conn)
            .expect("read");
        (status == "confirmed").then_some(())
    });
    let mut conn = db.get().expect("connection");
    let replies = inbound(&mut conn);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let (from, body, sid, matched) = &replies[0];
    assert_eq!(from.as_deref(), Some(PHONE));
    assert_eq!(body, "yes");
    assert!(
        sid.as_deref().is_some_and(|s| s.starts_with("SBX")),
        "{sid:?}"
    );
    assert_eq!(matched.as_deref(), Some(appointment_id.as_str()));
    drop(conn);

    // A repeated MessageSid is acknowledged as a duplicate and changes nothing.
    let args = [
        "sandbox",
        "reply",
        "--from",
        PHONE,
        "--body",
        "see you",
        "--message-sid",
        "SBXrepeat1",
    ];
    let first = aro(&test_db, &env, addr, &args);
    assert!(first.status.success(), "{}", text(&first));
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("recorded"));
    let second = aro(&test_db, &env, addr, &args);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stdout).starts_with("duplicate: SBXrepeat1"),
        "{}",
        text(&second)
    );
    let mut conn = db.get().expect("connection");
    assert_eq!(inbound(&mut conn).len(), 2);
    drop(conn);

    // A bad number: the daemon's error envelope, a failure exit, nothing recorded.
    let bad = aro(
        &test_db,
        &env,
        addr,
        &["sandbox", "reply", "--from", "5551234", "--body", "yes"],
    );
    assert!(!bad.status.success(), "{}", text(&bad));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("\"error\""), "{}", text(&bad));
    assert!(stderr.contains("E.164"), "{}", text(&bad));
    assert!(stderr.contains("HTTP 400"), "{}", text(&bad));
    let mut conn = db.get().expect("connection");
    assert_eq!(inbound(&mut conn).len(), 2);
}

#[test]
fn a_typed_yes_confirms_the_appointment_sqlite() {
    a_typed_yes_confirms_the_appointment(Kind::Sqlite);
}

#[test]
fn a_typed_yes_confirms_the_appointment_postgres() {
    a_typed_yes_confirms_the_appointment(Kind::Postgres);
}

#[test]
fn with_twilio_credentials_the_command_refuses() {
    let test_db = TestDb::new(Kind::Sqlite);
    let mut env = env(&test_db);
    env.extend(
        [
            (
                "ARO_TWILIO_ACCOUNT_SID",
                "AC00000000000000000000000000000001",
            ),
            ("ARO_TWILIO_AUTH_TOKEN", "a-real-token"),
            ("ARO_TWILIO_FROM", "+15550001111"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let out = aro(
        &test_db,
        &env,
        addr,
        &["sandbox", "reply", "--from", PHONE, "--body", "yes"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Twilio has credentials"),
        "{}",
        text(&out)
    );
}

#[test]
fn without_a_daemon_the_command_says_so() {
    let test_db = TestDb::new(Kind::Sqlite);
    let env = env(&test_db);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let out = aro(
        &test_db,
        &env,
        addr,
        &["sandbox", "reply", "--from", PHONE, "--body", "yes"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is `aro serve` running?"),
        "{}",
        text(&out)
    );
}

#[actix_rt::test]
async fn with_twilio_credentials_the_route_is_off() {
    let app = spawn_app_with(
        TestDb::new(Kind::Sqlite),
        &[
            (
                "ARO_TWILIO_ACCOUNT_SID",
                "AC00000000000000000000000000000001",
            ),
            ("ARO_TWILIO_AUTH_TOKEN", "a-real-token"),
            ("ARO_TWILIO_FROM", "+15550001111"),
        ],
    )
    .await;
    let response = client()
        .post(app.url("/sandbox/replies"))
        .send_json(&json!({"from": PHONE, "body": "yes"}))
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 404);
}
