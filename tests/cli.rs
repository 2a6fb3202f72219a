//! The `aro` binary as an operator runs it: zero-configuration start on an empty
//! directory, PostgreSQL by URL, invalid configuration refused before anything is
//! written, secrets masked, migrations driven from the command line, graceful stop.

mod common;

use std::time::Duration;

use common::{aro_command, http_get, Daemon, Kind, TestDb};

#[test]
fn zero_configuration_serve_creates_sqlite_and_becomes_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Everything default except the port, so parallel tests do not collide on 8080.
    let (mut daemon, addr) = Daemon::start(dir.path(), &[("ARO_LISTEN", "127.0.0.1:0")]);
    let (status, body) = http_get(addr, "/ready");
    assert_eq!(status, 200, "{body}");
    assert!(
        dir.path().join("data/aro.db").is_file(),
        "SQLite file in ./data"
    );
    daemon.signal("TERM");
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// The signal handlers are installed before the daemon says it is listening: a SIGTERM
/// sent the moment the line appears drains and exits 0 (it used to be able to hit the
/// default action and kill the process).
#[test]
fn sigterm_right_after_listening_exits_cleanly() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut daemon, _) = Daemon::start(dir.path(), &[("ARO_LISTEN", "127.0.0.1:0")]);
        daemon.signal("TERM");
        let status = daemon
            .wait_exit(Duration::from_secs(10))
            .expect("exits after SIGTERM");
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn postgres_by_url_becomes_ready() {
    let db = TestDb::new(Kind::Postgres);
    let (mut daemon, addr) = Daemon::start(
        db.data_dir(),
        &[("ARO_LISTEN", "127.0.0.1:0"), ("ARO_DATABASE_URL", &db.url)],
    );
    let (status, body) = http_get(addr, "/ready");
    assert_eq!(status, 200, "{body}");
    assert!(
        !db.data_dir().join("data/aro.db").exists(),
        "no SQLite file with PostgreSQL"
    );
    daemon.signal("INT");
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGINT");
    assert!(status.success(), "{status:?}");
}

#[test]
fn invalid_configuration_names_every_bad_key_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_file = dir.path().join("aro.toml");
    std::fs::write(
        &config_file,
        "timezone = \"Atlantis/Lost\"\nfavourite_colour = \"blue\"\n[twilio]\napi_base = \"not a url\"\n",
    )
    .expect("write config");
    let data_dir = dir.path().join("never-created");
    let output = aro_command(dir.path())
        .args(["--config", config_file.to_str().unwrap(), "serve"])
        .env("ARO_LISTEN", "127.0.0.1:70000")
        .env("ARO_DATA_DIR", &data_dir)
        .env("ARO_DATABASE_URL", "mysql://db/aro")
        .env("ARO_TWILLIO_FROM", "+15550001111")
        .output()
        .expect("run aro");
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in [
        "timezone (from file",
        "favourite_colour (from file",
        "twilio.api_base (from file",
        "listen (from environment ARO_LISTEN)",
        "database.url (from environment ARO_DATABASE_URL)",
        "ARO_TWILLIO_FROM (from environment",
    ] {
        assert!(stderr.contains(key), "stderr lacks {key:?}:\n{stderr}");
    }
    assert!(stderr.contains("6 problems"), "{stderr}");
    assert!(!data_dir.exists(), "nothing written when invalid");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("aro.toml")]);
}

#[test]
fn config_check_and_show() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = aro_command(dir.path())
        .args(["config", "check"])
        .env("ARO_TIMEZONE", "America/New_York")
        .output()
        .expect("run");
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("America/New_York"));

    let show = aro_command(dir.path())
        .args(["config", "show"])
        .env("ARO_STRIPE_SECRET_KEY", "sk_test_verysecret")
        .env("ARO_DATABASE_URL", "postgres://aro:hunter2pw@127.0.0.1/aro")
        .output()
        .expect("run");
    assert!(show.status.success());
    let out = String::from_utf8_lossy(&show.stdout);
    assert!(!out.contains("sk_test_verysecret"), "{out}");
    assert!(!out.contains("hunter2pw"), "{out}");
    assert!(
        out.contains("stripe.secret_key = \"********\"  # environment ARO_STRIPE_SECRET_KEY"),
        "{out}"
    );
    assert!(
        out.contains("listen = \"127.0.0.1:8080\"  # default"),
        "{out}"
    );
    // The output is TOML a file could hold.
    assert!(out.parse::<toml::Table>().is_ok(), "{out}");
    assert!(
        !dir.path().join("data").exists(),
        "config commands write nothing"
    );
}

#[test]
fn migrate_commands_drive_the_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = aro_command(dir.path())
            .args(args)
            .output()
            .expect("run aro");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Every migration the project ships, oldest first.
    let mut names: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .expect("migrations dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
    names.sort();
    let count = names.len();
    assert!(count >= 4, "{names:?}");
    let status = run(&["migrate", "status"]);
    assert_eq!(
        status.lines().filter(|l| l.starts_with("pending")).count(),
        count,
        "{status}"
    );
    let up = run(&["migrate", "up"]);
    assert_eq!(
        up.lines().filter(|l| l.starts_with("applied")).count(),
        count,
        "{up}"
    );
    assert!(run(&["migrate", "up"]).contains("nothing to apply"));
    // Down to the core migration: every later one is reverted, newest first.
    let keep = (count - 1).to_string();
    let down = run(&["migrate", "down", &keep]);
    for name in &names[1..] {
        assert!(down.contains(&format!("reverted  {name}")), "{down}");
    }
    let status = run(&["migrate", "status"]);
    assert!(
        status.contains("applied   2026-11-24-000001_core"),
        "{status}"
    );
    assert!(
        status.contains("pending   2026-11-24-000002_engine"),
        "{status}"
    );
    run(&["migrate", "up"]);
    let newest = names.last().expect("a migration");
    assert!(run(&["migrate", "redo"]).contains(&format!("redone    {newest}")));

    let too_many = aro_command(dir.path())
        .args(["migrate", "down", &(count + 5).to_string()])
        .output()
        .expect("run");
    assert!(!too_many.status.success());
    assert!(String::from_utf8_lossy(&too_many.stderr).contains(&format!("only {count} applied")));
}

#[test]
fn logs_are_json_and_carry_the_correlation_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut daemon, addr) = Daemon::start(
        dir.path(),
        &[
            ("ARO_LISTEN", "127.0.0.1:0"),
            ("ARO_STRIPE_SECRET_KEY", "sk_test_neverlogged"),
        ],
    );
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Correlation-Id: corr-77\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response
        .to_ascii_lowercase()
        .contains("x-correlation-id: corr-77"));
    let line = daemon
        .wait_for_line(|l| l.contains("corr-77"), Duration::from_secs(5))
        .expect("a log line names the correlation id");
    let json: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(json["span"]["correlation_id"], "corr-77");
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(10)).expect("exits");
    let log = daemon.drain_log().join("\n");
    assert!(!log.contains("sk_test_neverlogged"));
}

#[test]
fn help_describes_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = aro_command(dir.path()).arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "config", "ARO_CONFIG"] {
        assert!(text.contains(word), "{text}");
    }
    let out = aro_command(dir.path())
        .args(["migrate", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["up", "down", "status", "redo"] {
        assert!(text.contains(word), "{text}");
    }
}
