//! `aro diagnose` run as the real binary: a missing database is reported and not
//! created; an open breaker, open dead letters and late timers are found on both
//! backends; a stale or missing backup fails; a provider refusing the credentials names
//! the variable to set (and never the secret); an accepted key with a skewed provider
//! clock is a pass with a warning; and the support bundle holds what it should and no
//! secret or full phone number.

mod common;
#[path = "fakes/twilio.rs"]
mod fake_twilio;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration as StdDuration, SystemTime};

use aro::store::schema::{appointments, breaker_state, customers, dead_letters, timers};
use chrono::{Duration, Utc};
use common::{aro_command, migrated_database, Kind, TestDb};
use diesel::prelude::*;
use serde_json::Value;

const SID: &str = "AC000000000000000000000000000000d1";

/// Runs `aro diagnose ARGS` in `dir` with `env`; returns (exit code, stdout, stderr).
fn diagnose(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let out = aro_command(dir)
        .arg("diagnose")
        .args(args)
        .env("ARO_DATA_DIR", dir)
        .env("ARO_LOG_LEVEL", "error")
        .envs(env.iter().copied())
        .output()
        .expect("run aro diagnose");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `aro diagnose --json`: the exit code and the checks by id.
fn diagnose_json(dir: &Path, env: &[(&str, &str)]) -> (i32, BTreeMap<String, Value>) {
    let (code, stdout, stderr) = diagnose(dir, env, &["--json"]);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("--json prints JSON ({e}): {stdout}\nstderr: {stderr}"));
    let checks = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| (c["id"].as_str().expect("id").to_string(), c.clone()))
        .collect();
    (code, checks)
}

fn status(checks: &BTreeMap<String, Value>, id: &str) -> String {
    checks
        .get(id)
        .unwrap_or_else(|| panic!("no check {id}: {checks:?}"))["status"]
        .as_str()
        .expect("status")
        .to_string()
}

fn text(checks: &BTreeMap<String, Value>, id: &str, field: &str) -> String {
    checks[id][field].as_str().unwrap_or_default().to_string()
}

fn db_env(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("ARO_DATA_DIR", db.data_dir().display().to_string()),
        ("ARO_DATABASE_URL", db.url.clone()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A file named like a backup in `<data_dir>/backups`, last modified `age` ago.
fn fake_backup(data_dir: &Path, age: StdDuration) {
    let dir = data_dir.join("backups");
    std::fs::create_dir_all(&dir).expect("backups dir");
    let path = dir.join(format!(
        "aro-backup-{}.arobak",
        Utc::now().format("%Y%m%dT%H%M%S%fZ")
    ));
    std::fs::write(&path, b"not really a backup").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(SystemTime::now() - age))
        .expect("set mtime");
}

#[test]
fn a_missing_database_is_reported_and_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = diagnose(dir.path(), &[], &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains(" database "))
        .unwrap_or_else(|| panic!("no database line: {stdout}"));
    assert!(line.starts_with('✗'), "{line}");
    assert!(line.contains("does not exist"), "{line}");
    assert!(stdout.contains("run `aro migrate up`"), "{stdout}");
    assert!(
        stdout.contains("- migrations") && stdout.contains("not checked"),
        "{stdout}"
    );

    let (code, checks) = diagnose_json(dir.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&checks, "database"), "fail");
    assert!(text(&checks, "database", "recommendation").contains("aro migrate up"));
    assert_eq!(status(&checks, "data_dir"), "ok");

    let left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "diagnose created {left:?}");
}

#[test]
fn a_missing_data_dir_is_not_created_either() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_text = data.display().to_string();
    let (code, checks) = diagnose_json(dir.path(), &[("ARO_DATA_DIR", data_text.as_str())]);
    assert_eq!(code, 1);
    assert_eq!(status(&checks, "data_dir"), "fail");
    assert_eq!(status(&checks, "database"), "fail");
    assert!(!data.exists());
}

async fn database_findings(kind: Kind) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    let now = Utc::now().naive_utc();
    database
        .run(move |conn| {
            diesel::insert_into(breaker_state::table)
                .values((
                    breaker_state::tenant_id.eq("default"),
                    breaker_state::domain.eq("messaging"),
                    breaker_state::state.eq("open"),
                    breaker_state::failure_count.eq(5),
                    breaker_state::success_count.eq(0),
                    breaker_state::opened_at.eq(Some(now - Duration::seconds(10))),
                    breaker_state::updated_at.eq(now),
                ))
                .execute(conn)?;
            diesel::insert_into(dead_letters::table)
                .values((
                    dead_letters::id.eq("dl-1"),
                    dead_letters::tenant_id.eq("default"),
                    dead_letters::domain.eq("messaging"),
                    dead_letters::kind.eq("reminder"),
                    dead_letters::payload.eq("{}"),
                    dead_letters::error.eq("refused"),
                    dead_letters::attempts.eq(5),
                    dead_letters::status.eq("open"),
                    dead_letters::created_at.eq(now),
                    dead_letters::expires_at.eq(now + Duration::days(30)),
                ))
                .execute(conn)?;
            diesel::insert_into(timers::table)
                .values((
                    timers::id.eq("t-1"),
                    timers::tenant_id.eq("default"),
                    timers::timer_key.eq("appt-1:reminder"),
                    timers::owner_type.eq("appointment"),
                    timers::owner_id.eq("appt-1"),
                    timers::kind.eq("reminder"),
                    timers::due_at.eq(now - Duration::minutes(30)),
                    timers::payload.eq("{}"),
                    timers::status.eq("scheduled"),
                    timers::created_at.eq(now),
                    timers::updated_at.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .expect("insert findings");
    fake_backup(db.data_dir(), StdDuration::from_secs(3600));

    let env = db_env(&db);
    let (code, checks) = diagnose_json(db.data_dir(), &pairs(&env));
    assert_eq!(code, 1, "{checks:?}");
    assert_eq!(status(&checks, "database"), "ok", "{checks:?}");
    assert_eq!(status(&checks, "migrations"), "ok", "{checks:?}");
    assert_eq!(status(&checks, "backups"), "ok", "{checks:?}");

    assert_eq!(status(&checks, "breakers"), "fail");
    let summary = text(&checks, "breakers", "summary");
    assert!(summary.contains("messaging breaker open"), "{summary}");
    assert!(summary.contains("half-opens at"), "{summary}");
    assert!(!text(&checks, "breakers", "recommendation").is_empty());

    assert_eq!(status(&checks, "dead_letters"), "warn");
    assert!(text(&checks, "dead_letters", "summary").contains("1 open"));
    assert!(text(&checks, "dead_letters", "recommendation").contains("replay"));

    assert_eq!(status(&checks, "timers"), "fail");
    let summary = text(&checks, "timers", "summary");
    assert!(summary.contains("1 timer(s) overdue"), "{summary}");
    assert!(summary.contains("30 min"), "{summary}");

    assert_eq!(status(&checks, "clock"), "ok", "{checks:?}");
}

on_both_backends!(database_findings);

#[test]
fn a_stale_or_missing_backup_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, checks) = diagnose_json(dir.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&checks, "backups"), "fail");
    assert!(text(&checks, "backups", "summary").contains("no backup"));
    assert!(text(&checks, "backups", "recommendation").contains("aro backup"));

    fake_backup(dir.path(), StdDuration::from_secs(3 * 86_400));
    let (_, checks) = diagnose_json(dir.path(), &[]);
    assert_eq!(status(&checks, "backups"), "fail");
    let summary = text(&checks, "backups", "summary");
    assert!(summary.contains("3 d 0 h old"), "{summary}");

    let (_, checks) = diagnose_json(dir.path(), &[("ARO_BACKUP_DAILY", "false")]);
    assert!(text(&checks, "backups", "recommendation").contains("backup.daily is off"));

    fake_backup(dir.path(), StdDuration::from_secs(60));
    let (_, checks) = diagnose_json(dir.path(), &[]);
    assert_eq!(status(&checks, "backups"), "ok", "{checks:?}");
}

#[test]
fn rejected_twilio_credentials_name_the_variable_not_the_secret() {
    let fake = fake_twilio::FakeTwilio::start(SID, "the-right-token-123");
    let base = fake.base_url();
    let wrong = "wrong-token-DIAG-7781";
    let env = [
        ("ARO_TWILIO_ACCOUNT_SID", SID),
        ("ARO_TWILIO_AUTH_TOKEN", wrong),
        ("ARO_TWILIO_FROM", "+15550001111"),
        ("ARO_TWILIO_API_BASE", base.as_str()),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, checks) = diagnose_json(dir.path(), &env);
    assert_eq!(code, 1);
    assert_eq!(status(&checks, "integration.twilio"), "fail");
    let summary = text(&checks, "integration.twilio", "summary");
    assert!(summary.contains("credentials rejected"), "{summary}");
    assert!(summary.contains("401"), "{summary}");
    assert!(text(&checks, "integration.twilio", "recommendation").contains("ARO_TWILIO_AUTH_TOKEN"));
    assert_eq!(status(&checks, "integration.stripe"), "ok");
    assert!(text(&checks, "integration.stripe", "summary").starts_with("sandbox"));

    let requests = fake.request_log();
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.path == format!("/2010-04-01/Accounts/{SID}.json")
            && !r.authorized),
        "{requests:?}"
    );
    assert!(fake.accepted().is_empty(), "diagnose sends nothing");

    let (code, stdout, stderr) = diagnose(dir.path(), &env, &[]);
    assert_eq!(code, 1);
    assert!(stdout.contains("✗ integration.twilio"), "{stdout}");
    assert!(stdout.contains("credentials rejected"), "{stdout}");
    for output in [&stdout, &stderr] {
        assert!(!output.contains(wrong), "the token leaked: {output}");
        assert!(
            !output.contains("+15550001111"),
            "the number leaked: {output}"
        );
    }
}

/// A Stripe stand-in that accepts one key on `GET /v1/balance` and answers with a
/// `Date` header 30 s in the past (plain HTTP/1.1, one request per connection).
/// Returns its address; it serves until the test process ends.
fn skewed_stripe(key: &'static str) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let mut authorized = false;
            let mut line = String::new();
            let _ = reader.read_line(&mut request_line);
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "" {
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("authorization:") {
                    authorized = line.trim_end().ends_with(&format!("Bearer {key}"));
                }
                line.clear();
            }
            let (status, body) = if !request_line.starts_with("GET /v1/balance ") {
                ("404 Not Found", "{}")
            } else if authorized {
                ("200 OK", "{\"object\":\"balance\",\"available\":[]}")
            } else {
                (
                    "401 Unauthorized",
                    "{\"error\":{\"type\":\"invalid_request_error\"}}",
                )
            };
            let date = (Utc::now() - Duration::seconds(30)).format("%a, %d %b %Y %H:%M:%S GMT");
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[actix_rt::test]
async fn an_accepted_key_passes_and_a_skewed_provider_clock_warns() {
    const KEY: &str = "sk_test_DIAG_accepted_4242";
    let base = format!("http://{}", skewed_stripe(KEY));
    let db = TestDb::new(Kind::Sqlite);
    drop(migrated_database(&db).await);
    fake_backup(db.data_dir(), StdDuration::from_secs(60));
    let mut env = db_env(&db);
    env.push(("ARO_STRIPE_SECRET_KEY", KEY.to_string()));
    env.push(("ARO_STRIPE_API_BASE", base));
    let (code, checks) = diagnose_json(db.data_dir(), &pairs(&env));
    assert_eq!(status(&checks, "integration.stripe"), "ok", "{checks:?}");
    assert!(text(&checks, "integration.stripe", "summary").contains("credentials accepted"));
    assert_eq!(status(&checks, "clock"), "warn", "{checks:?}");
    let clock = text(&checks, "clock", "summary");
    assert!(clock.contains("ahead of Stripe's clock"), "{clock}");
    assert!(text(&checks, "clock", "recommendation").contains("timedatectl"));
    // Warnings alone do not fail diagnose.
    assert!(checks.values().all(|c| c["status"] != "fail"), "{checks:?}");
    assert_eq!(code, 0);
}

/// Every member of the gzip tar at `path`, as text.
fn bundle_members(path: &Path) -> BTreeMap<String, String> {
    let file = std::fs::File::open(path).expect("open bundle");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").display().to_string();
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("utf-8 member");
        out.insert(name, text);
    }
    out
}

async fn bundle_has_no_secret_and_no_phone_number(kind: Kind) {
    const CUSTOMER_PHONE: &str = "+15551230987";
    const BUSINESS_PHONE: &str = "+15557654321";
    const SENDER: &str = "+15550001111";
    let secrets = [
        ("ARO_TWILIO_AUTH_TOKEN", "tw-secret-DIAG-31337"),
        ("ARO_STRIPE_SECRET_KEY", "sk_test_DIAG_secret_5678"),
        ("ARO_STRIPE_WEBHOOK_SECRET", "whsec_DIAG_secret_9999"),
        ("ARO_CALENDLY_TOKEN", "cal-DIAG-token-9012"),
        ("ARO_CALENDLY_SIGNING_KEY", "cal-DIAG-signing-3456"),
        ("ARO_BOOKING_WEBHOOK_SECRET", "booking-DIAG-secret-7777"),
        (
            "ARO_MASTER_KEY",
            "d1a6d1a6d1a6d1a6d1a6d1a6d1a6d1a6d1a6d1a6d1a6d1a6d1a6d1a6d1a6d1a6",
        ),
    ];
    let fake = fake_twilio::FakeTwilio::start(SID, "tw-secret-DIAG-31337");
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    let now = Utc::now().naive_utc();
    database
        .run(move |conn| {
            diesel::insert_into(customers::table)
                .values((
                    customers::id.eq("cust-1"),
                    customers::tenant_id.eq("default"),
                    customers::pseudonym.eq("C-0001"),
                    customers::phone_e164.eq(Some(CUSTOMER_PHONE)),
                    customers::name.eq(Some("Dana Diagnose")),
                    customers::created_at.eq(now),
                    customers::updated_at.eq(now),
                ))
                .execute(conn)?;
            diesel::insert_into(appointments::table)
                .values((
                    appointments::id.eq("appt-1"),
                    appointments::tenant_id.eq("default"),
                    appointments::customer_id.eq("cust-1"),
                    appointments::source.eq("booking"),
                    appointments::external_id.eq("ext-1"),
                    appointments::status.eq("scheduled"),
                    appointments::starts_at.eq(now + Duration::days(2)),
                    appointments::ends_at.eq(now + Duration::days(2) + Duration::hours(1)),
                    appointments::timezone.eq("UTC"),
                    appointments::deposit_status.eq("none"),
                    appointments::version.eq(1_i64),
                    appointments::created_at.eq(now),
                    appointments::updated_at.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .expect("insert a customer");
    drop(database);

    // A log file in the data directory that names the customer's number and, by
    // mistake, a secret; more lines than the tail keeps.
    let logs = db.data_dir().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let mut log = String::new();
    for i in 0..1200 {
        log.push_str(&format!(
            "{{\"level\":\"INFO\",\"message\":\"line {i}\",\"to\":\"{CUSTOMER_PHONE}\"}}\n"
        ));
    }
    log.push_str("{\"level\":\"WARN\",\"message\":\"token tw-secret-DIAG-31337 for whatsapp:+15551230987\"}\n");
    std::fs::write(logs.join("aro.log"), log).expect("write log");

    let base = fake.base_url();
    let mut env = db_env(&db);
    for (k, v) in secrets {
        env.push((k, v.to_string()));
    }
    env.push(("ARO_TWILIO_ACCOUNT_SID", SID.to_string()));
    env.push(("ARO_TWILIO_FROM", SENDER.to_string()));
    env.push(("ARO_TWILIO_API_BASE", base));
    env.push(("ARO_BUSINESS_PHONE", BUSINESS_PHONE.to_string()));
    // Nothing listens there: the check fails fast, and the bundle is still written.
    env.push(("ARO_STRIPE_API_BASE", "http://127.0.0.1:1".to_string()));
    env.push(("ARO_CALENDLY_API_BASE", "http://127.0.0.1:1".to_string()));
    let bundle = db.data_dir().join("support.tar.gz");
    let bundle_arg = bundle.display().to_string();
    let (code, stdout, stderr) = diagnose(
        db.data_dir(),
        &pairs(&env),
        &["--bundle", bundle_arg.as_str()],
    );
    assert_eq!(
        code, 1,
        "the unreachable providers fail: {stdout}\n{stderr}"
    );
    assert!(stderr.contains("support bundle written"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&bundle)
            .expect("bundle")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the bundle is private: {mode:o}");
    }

    let members = bundle_members(&bundle);
    let names: Vec<&str> = members.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "config.toml",
            "diagnose.json",
            "logs/aro.log",
            "metrics.json"
        ]
    );

    let report: Value = serde_json::from_str(&members["diagnose.json"]).expect("report");
    assert_eq!(report["ok"], false);
    assert!(report["checks"].as_array().expect("checks").len() >= 10);

    let config = &members["config.toml"];
    assert!(
        config.contains("twilio.auth_token = \"********\"  # environment ARO_TWILIO_AUTH_TOKEN"),
        "{config}"
    );
    assert!(
        config.contains(&format!("twilio.account_sid = \"{SID}\"")),
        "{config}"
    );

    let metrics: Value = serde_json::from_str(&members["metrics.json"]).expect("metrics");
    assert_eq!(
        metrics["appointments_by_status"]["scheduled"], 1,
        "{metrics}"
    );
    assert_eq!(metrics["dead_letters_open"], 0, "{metrics}");
    assert!(metrics["outbox_by_status"].is_object(), "{metrics}");

    let log_tail = &members["logs/aro.log"];
    assert_eq!(log_tail.lines().count(), 1000);
    assert!(log_tail.contains("line 1199"));
    assert!(
        log_tail.contains("whatsapp:+15"),
        "{}",
        &log_tail[log_tail.len() - 200..]
    );

    let forbidden: Vec<&str> = secrets
        .iter()
        .map(|(_, v)| *v)
        .chain([CUSTOMER_PHONE, BUSINESS_PHONE, SENDER])
        .chain(["5551230987", "5557654321", "5550001111"])
        .collect();
    let mut outputs = members.clone();
    outputs.insert("stdout".to_string(), stdout);
    outputs.insert("stderr".to_string(), stderr);
    for (name, text) in &outputs {
        for value in &forbidden {
            assert!(!text.contains(value), "{name} contains {value}");
        }
    }
}

on_both_backends!(bundle_has_no_secret_and_no_phone_number);

#[test]
fn an_invalid_configuration_is_a_failed_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("b.tgz");
    let bundle_arg = bundle.display().to_string();
    let (code, stdout, stderr) = diagnose(
        dir.path(),
        &[
            ("ARO_TIMEZONE", "Mars/Olympus"),
            ("ARO_STRIPE_SECRET_KEY", "sk_test_never_shown_1234"),
        ],
        &["--bundle", bundle_arg.as_str()],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("✗ configuration"), "{stdout}");
    assert!(stdout.contains("timezone"), "{stdout}");
    assert!(stdout.contains("- database"), "{stdout}");
    let members = bundle_members(&bundle);
    assert_eq!(members.keys().collect::<Vec<_>>(), vec!["diagnose.json"]);
    assert!(!members["diagnose.json"].contains("sk_test_never_shown_1234"));
}
