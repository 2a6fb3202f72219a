//! `aro install` on the real binary (SPEC §9): a non-interactive install into a
//! temporary prefix writes a 0600 configuration with the given answers and a systemd
//! unit that passes the same checks as the shipped one, starts the daemon, runs the
//! sandbox test booking and leaves an admin who can log in; missing answers are listed
//! and nothing is written; the interactive wizard, driven through a pseudo-terminal,
//! completes, and re-running it offers the previous answers as defaults and changes
//! neither the configuration nor the master key.

mod common;
#[path = "fakes/twilio.rs"]
mod fake_twilio;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aro::config::{Config, ConfigSources};
use aro::store::schema::messages;
use diesel::prelude::*;

const PASSWORD: &str = "Install-Test-Pass-42!";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Every file under `dir`, relative.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            out.push(path.strip_prefix(dir).expect("under").to_path_buf());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// Stops the daemon the installer started (its pid file), even when the test fails.
struct StopDaemon(PathBuf);

impl Drop for StopDaemon {
    fn drop(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.0) else {
            return;
        };
        let pid = text.trim().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn http_post_json(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

// ---------------------------------------------------------------------------------
// The unit checks of tests/service_units.rs, on the installed unit.

fn unit_entries(text: &str) -> HashMap<String, Vec<(String, String)>> {
    let mut sections: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').expect("Key=Value");
        sections
            .entry(current.clone())
            .or_default()
            .push((key.trim().to_string(), value.trim().to_string()));
    }
    sections
}

fn one<'a>(unit: &'a HashMap<String, Vec<(String, String)>>, section: &str, key: &str) -> &'a str {
    let values: Vec<&str> = unit[section]
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(values.len(), 1, "[{section}] {key}= {values:?}");
    values[0]
}

fn assert_installed_system_unit(path: &Path, config_file: &Path, data_dir: &Path) {
    let text = std::fs::read_to_string(path).expect("unit file");
    let unit = unit_entries(&text);
    for (key, value) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "always"),
        ("UMask", "0077"),
        ("NoNewPrivileges", "yes"),
        ("User", "aro"),
        ("Group", "aro"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
    ] {
        assert_eq!(one(&unit, "Service", key), value, "{key}");
    }
    assert!(one(&unit, "Service", "RestartPreventExitStatus")
        .split_whitespace()
        .any(|s| s == aro::cli::EXIT_CONFIG.to_string()));
    assert!(!one(&unit, "Service", "WatchdogSec").is_empty());
    assert!(!one(&unit, "Service", "TimeoutStopSec").is_empty());
    let exec = one(&unit, "Service", "ExecStart");
    assert_eq!(
        exec,
        format!(
            "{} serve --config {}",
            env!("CARGO_BIN_EXE_aro"),
            config_file.display()
        )
    );
    assert_eq!(
        one(&unit, "Service", "Environment"),
        format!("ARO_DATA_DIR={}", data_dir.display())
    );
    assert_eq!(
        one(&unit, "Service", "ReadWritePaths"),
        data_dir.display().to_string()
    );
    assert_eq!(
        one(&unit, "Service", "WorkingDirectory"),
        data_dir.display().to_string()
    );
    assert_eq!(one(&unit, "Install", "WantedBy"), "multi-user.target");

    let tool = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("systemd-analyze"))
            .find(|c| c.is_file())
    });
    match tool {
        Some(tool) => {
            let output = Command::new(tool)
                .arg("verify")
                .arg(path)
                .output()
                .expect("run systemd-analyze");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
            );
            let about: Vec<&str> = all.lines().filter(|l| l.contains("aro.service")).collect();
            assert!(
                output.status.success() && about.is_empty(),
                "systemd-analyze verify: {all}"
            );
        }
        None => eprintln!("systemd-analyze is not installed; checked the directives only"),
    }
}

// ---------------------------------------------------------------------------------

#[test]
fn a_non_interactive_install_writes_starts_books_and_lets_the_admin_log_in() {
    let prefix = tempfile::tempdir().expect("prefix");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let output = common::aro_command(prefix.path())
        .args([
            "install",
            "--non-interactive",
            "--service",
            "systemd-system",
        ])
        .arg("--prefix")
        .arg(prefix.path())
        .args(["--business-name", "Harbor Dental"])
        .args(["--business-phone", "+15551230000"])
        .args(["--timezone", "Europe/Berlin"])
        .args(["--profile", "healthcare"])
        .args(["--listen", &listen])
        .args(["--quiet-hours", "off"])
        .args(["--admin-user", "owner"])
        .args(["--admin-password-env", "INSTALL_TEST_PASSWORD"])
        .arg("--start")
        .env("INSTALL_TEST_PASSWORD", PASSWORD)
        .output()
        .expect("run aro install");
    let data_dir = prefix.path().join("var/lib/aro");
    let _stop = StopDaemon(data_dir.join("aro.pid"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "install failed:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));

    // The configuration: 0600, with the given answers.
    let config_file = prefix.path().join("etc/aro/aro.toml");
    let mode = std::fs::metadata(&config_file)
        .expect("config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let table: toml::Table = std::fs::read_to_string(&config_file)
        .expect("read")
        .parse()
        .expect("TOML");
    assert_eq!(table["business"]["name"].as_str(), Some("Harbor Dental"));
    assert_eq!(table["business"]["phone"].as_str(), Some("+15551230000"));
    assert_eq!(table["timezone"].as_str(), Some("Europe/Berlin"));
    assert_eq!(table["profile"].as_str(), Some("healthcare"));
    assert_eq!(table["listen"].as_str(), Some(listen.as_str()));
    assert_eq!(table["quiet_hours"].as_str(), Some("off"));
    assert_eq!(
        table["data_dir"].as_str(),
        Some(data_dir.to_str().expect("utf-8"))
    );
    // No credential in the file: the generated booking webhook secret is sealed in the
    // store, and the daemon signs its test booking check with it (below).
    assert!(table.get("booking").is_none(), "{table:?}");
    let written = Config::load(&ConfigSources {
        file: Some(config_file.clone()),
        env: Vec::new(),
    })
    .expect("the written configuration loads")
    .config;
    let sealed = aro::credentials::read_sealed(&written).expect("sealed credentials");
    let secret = sealed
        .iter()
        .find(|(key, _)| key == "booking.webhook_secret")
        .map(|(_, value)| value.clone())
        .expect("the booking webhook secret is sealed");
    assert_eq!(secret.len(), 64, "a generated booking webhook secret");
    assert!(!stdout.contains(&secret), "the secret is never printed");
    assert!(
        !std::fs::read_to_string(&config_file)
            .expect("read")
            .contains(&secret),
        "not in the file"
    );
    let key_mode = std::fs::metadata(data_dir.join("master.key"))
        .expect("master key")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    // The unit file.
    assert_installed_system_unit(
        &prefix.path().join("etc/systemd/system/aro.service"),
        &config_file,
        &data_dir,
    );

    // The daemon is up.
    let addr: SocketAddr = listen.parse().expect("addr");
    let (status, _) = common::http_get(addr, "/ready");
    assert_eq!(status, 200);
    assert!(stdout.contains(&format!("http://{listen}/")), "{stdout}");

    // The sandbox test booking went through: its confirmation is a sandbox message.
    let config = Config::load(&ConfigSources {
        file: Some(config_file.clone()),
        env: Vec::new(),
    })
    .expect("the written configuration loads")
    .config;
    let db = aro::store::Database::open(&config.database).expect("open");
    let mut conn = db.get().expect("conn");
    let sandbox_confirmations: i64 = messages::table
        .filter(messages::kind.eq("booking_confirmation"))
        .filter(messages::sandbox.eq(true))
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(sandbox_confirmations, 1, "{stdout}");

    // The admin logs in.
    let body = serde_json::json!({"username": "owner", "password": PASSWORD}).to_string();
    let (status, answer) = http_post_json(addr, "/v1/auth/login", &body);
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn missing_answers_are_listed_and_nothing_is_written() {
    let prefix = tempfile::tempdir().expect("prefix");
    let output = common::aro_command(prefix.path())
        .args([
            "install",
            "--non-interactive",
            "--service",
            "systemd-system",
        ])
        .arg("--prefix")
        .arg(prefix.path())
        .args(["--business-name", "Harbor Dental"])
        .args(["--admin-user", "owner"])
        .output()
        .expect("run aro install");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "--business-phone",
        "--timezone",
        "--profile",
        "--admin-password-env",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected} missing from: {stderr}"
        );
    }
    assert!(!stderr.contains("--business-name"), "{stderr}");
    assert!(
        files_under(prefix.path()).is_empty(),
        "nothing written: {:?}",
        files_under(prefix.path())
    );
}

// ---------------------------------------------------------------------------------
// The live connection test and the service user

const TWILIO_SID: &str = "AC000000000000000000000000000000a7";
const TWILIO_TOKEN: &str = "the-right-install-token-77";

/// `aro install --non-interactive` for a systemd system unit with Twilio answers
/// pointed at `twilio_base`, plus `extra` arguments.
fn install_with_twilio(
    prefix: &Path,
    twilio_base: &str,
    token: &str,
    extra: &[&str],
) -> std::process::Output {
    common::aro_command(prefix)
        .args([
            "install",
            "--non-interactive",
            "--service",
            "systemd-system",
        ])
        .arg("--prefix")
        .arg(prefix)
        .args(["--business-name", "Harbor Dental"])
        .args(["--business-phone", "+15551230000"])
        .args(["--timezone", "Europe/Berlin"])
        .args(["--profile", "healthcare"])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--twilio-account-sid", TWILIO_SID])
        .args(["--twilio-from", "+15550001111"])
        .args(["--twilio-api-base", twilio_base])
        .args(["--admin-user", "owner"])
        .args(["--admin-password-env", "INSTALL_TEST_PASSWORD"])
        .args(extra)
        .env("INSTALL_TEST_PASSWORD", PASSWORD)
        // A flag would show in the process list; the installer reads the variable.
        .env("ARO_TWILIO_AUTH_TOKEN", token)
        .output()
        .expect("run aro install")
}

#[test]
fn rejected_credentials_stop_the_install_before_anything_is_written() {
    let fake = fake_twilio::FakeTwilio::start(TWILIO_SID, TWILIO_TOKEN);
    let prefix = tempfile::tempdir().expect("prefix");
    let wrong = "a-wrong-install-token-13";
    let output = install_with_twilio(prefix.path(), &fake.base_url(), wrong, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("✗ Twilio: configured, credentials rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ARO_TWILIO_AUTH_TOKEN"),
        "the variable to fix: {stdout}"
    );
    assert!(
        stderr.contains("connection test failed for Twilio"),
        "{stderr}"
    );
    assert!(stderr.contains("--skip-connection-test"), "{stderr}");
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "the token is never shown"
    );
    assert!(
        fake.request_log()
            .iter()
            .any(|r| r.method == "GET"
                && r.path == format!("/2010-04-01/Accounts/{TWILIO_SID}.json")),
        "{:?}",
        fake.request_log()
    );
    assert!(fake.accepted().is_empty(), "the test sends no message");
    assert!(
        files_under(prefix.path()).is_empty(),
        "nothing written: {:?}",
        files_under(prefix.path())
    );

    // The operator's way out when the provider cannot be reached from here.
    let skipped = install_with_twilio(
        prefix.path(),
        &fake.base_url(),
        wrong,
        &["--skip-connection-test"],
    );
    assert!(
        skipped.status.success(),
        "{}",
        String::from_utf8_lossy(&skipped.stderr)
    );
    assert!(!String::from_utf8_lossy(&skipped.stdout).contains("Connection test"));
}

/// The numeric id and name `getent` gives for `database` and `key`.
fn getent(database: &str, key: &str) -> (u32, String) {
    let out = Command::new("getent")
        .args([database, key])
        .output()
        .expect("getent");
    assert!(out.status.success(), "{database} {key} exists");
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let fields: Vec<&str> = line.trim().split(':').collect();
    // passwd and group entries both hold the numeric id third.
    (
        fields[2].parse().expect("numeric id"),
        fields[0].to_string(),
    )
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[test]
fn accepted_credentials_pass_and_the_service_user_owns_what_the_service_writes() {
    let fake = fake_twilio::FakeTwilio::start(TWILIO_SID, TWILIO_TOKEN);
    let prefix = tempfile::tempdir().expect("prefix");
    // `nobody` exists everywhere, so the test creates no account on the machine.
    let output = install_with_twilio(
        prefix.path(),
        &fake.base_url(),
        TWILIO_TOKEN,
        &["--service-user", "nobody"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("✓ Twilio: configured, reachable, credentials accepted"),
        "{stdout}"
    );
    assert!(stdout.contains("✓ Stripe: sandbox"), "{stdout}");
    assert!(!stdout.contains(TWILIO_TOKEN) && !stderr.contains(TWILIO_TOKEN));

    let (gid, group) = {
        let out = Command::new("id")
            .args(["-g", "nobody"])
            .output()
            .expect("id -g");
        let gid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("gid");
        let (_, name) = getent("group", &gid.to_string());
        (gid, name)
    };
    let (uid, _) = getent("passwd", "nobody");
    let unit = std::fs::read_to_string(prefix.path().join("etc/systemd/system/aro.service"))
        .expect("unit");
    assert!(unit.contains("\nUser=nobody\n"), "{unit}");
    assert!(unit.contains(&format!("\nGroup={group}\n")), "{unit}");

    let config_file = prefix.path().join("etc/aro/aro.toml");
    let data_dir = prefix.path().join("var/lib/aro");
    if running_as_root() {
        let config = std::fs::metadata(&config_file).expect("config");
        assert_eq!(
            (config.uid(), config.gid()),
            (uid, gid),
            "the service reads its configuration"
        );
        assert_eq!(config.permissions().mode() & 0o777, 0o600);
        let config_dir = std::fs::metadata(prefix.path().join("etc/aro")).expect("dir");
        assert_eq!(
            (config_dir.uid(), config_dir.gid()),
            (0, gid),
            "root's, entered by the group"
        );
        let mut owned = 0;
        for relative in files_under(&data_dir) {
            let meta = std::fs::symlink_metadata(data_dir.join(&relative)).expect("meta");
            assert_eq!(
                (meta.uid(), meta.gid()),
                (uid, gid),
                "{}",
                relative.display()
            );
            owned += 1;
        }
        assert!(owned >= 2, "the database and the master key at least");
        assert!(stdout.contains("✓ service user nobody exists"), "{stdout}");
    } else {
        assert!(
            stdout.contains("! service user nobody: not created"),
            "{stdout}"
        );
    }
}

// ---------------------------------------------------------------------------------
// The interactive wizard through a pseudo-terminal

fn wizard(prefix: &Path) -> rexpect::session::PtySession {
    let mut cmd = common::aro_command(prefix);
    cmd.args(["install", "--service", "none"])
        .arg("--prefix")
        .arg(prefix)
        .env("TERM", "xterm");
    rexpect::session::spawn_command(cmd, Some(60_000)).expect("spawn in a pty")
}

fn answer(p: &mut rexpect::session::PtySession, prompt: &str, text: &str) {
    p.exp_string(prompt)
        .unwrap_or_else(|e| panic!("waiting for {prompt:?}: {e}"));
    p.send_line(text).expect("send");
}

fn finish(p: &mut rexpect::session::PtySession) -> String {
    let out = p.exp_eof().expect("the installer ends");
    let status = p.process.wait().expect("exit status");
    assert!(
        matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 0)),
        "{status:?}\n{out}"
    );
    out
}

#[test]
fn the_interactive_wizard_completes_and_a_rerun_keeps_everything() {
    let prefix = tempfile::tempdir().expect("prefix");
    let config_file = prefix.path().join("etc/aro/aro.toml");
    let key_file = prefix.path().join("var/lib/aro/master.key");

    let mut p = wizard(prefix.path());
    answer(&mut p, "Business name", "Pty Salon");
    answer(&mut p, "Business phone", "+15557654321");
    answer(&mut p, "Time zone", "America/Chicago");
    answer(&mut p, "Profile pack", "salon");
    answer(&mut p, "Listen address", "127.0.0.1:18181");
    answer(&mut p, "Booking system", "webhook");
    answer(&mut p, "Messaging", "sandbox");
    answer(&mut p, "Payments", "none");
    answer(&mut p, "Quiet hours", "21:00-08:00");
    answer(&mut p, "Admin username", "maria");
    answer(&mut p, "Admin password", PASSWORD);
    answer(&mut p, "Repeat the password", PASSWORD);
    let out = finish(&mut p);
    assert!(out.contains("admin user maria created"), "{out}");
    assert!(!out.contains(PASSWORD), "the password is never echoed");

    let first = std::fs::read_to_string(&config_file).expect("config written");
    let table: toml::Table = first.parse().expect("TOML");
    assert_eq!(table["business"]["name"].as_str(), Some("Pty Salon"));
    assert_eq!(table["timezone"].as_str(), Some("America/Chicago"));
    assert_eq!(table["quiet_hours"].as_str(), Some("21:00-08:00"));
    assert_eq!(
        std::fs::metadata(&config_file)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let key_before = std::fs::read(&key_file).expect("master key");
    let sealed = || {
        let config = Config::load(&ConfigSources {
            file: Some(config_file.clone()),
            env: Vec::new(),
        })
        .expect("loads")
        .config;
        aro::credentials::read_sealed(&config).expect("sealed")
    };
    let sealed_before = sealed();
    assert_eq!(
        sealed_before.len(),
        1,
        "the generated booking webhook secret"
    );
    let key_inode = std::fs::metadata(&key_file).expect("meta").ino();

    // Again: every previous answer is the default; Enter accepts it.
    let mut p = wizard(prefix.path());
    answer(&mut p, "Business name [Pty Salon]", "");
    answer(
        &mut p,
        "Business phone (E.164, e.g. +15551234567) [+15557654321]",
        "",
    );
    answer(&mut p, "[America/Chicago]", "");
    answer(&mut p, "[salon]", "");
    answer(&mut p, "[127.0.0.1:18181]", "");
    answer(&mut p, "Booking system (webhook/calendly) [webhook]", "");
    answer(&mut p, "Messaging (sandbox/twilio) [sandbox]", "");
    answer(&mut p, "Payments (none/stripe) [none]", "");
    answer(&mut p, "[21:00-08:00]", "");
    p.exp_string("Admin user maria exists").expect("admin kept");
    let out = finish(&mut p);
    assert!(out.contains("unchanged"), "{out}");
    assert!(out.contains("master key exists, kept"), "{out}");

    assert_eq!(
        std::fs::read_to_string(&config_file).expect("config"),
        first,
        "the configuration is unchanged"
    );
    assert_eq!(std::fs::read(&key_file).expect("key"), key_before);
    assert_eq!(sealed(), sealed_before, "the sealed credentials are kept");
    assert_eq!(std::fs::metadata(&key_file).expect("meta").ino(), key_inode);
}

#[test]
fn the_wizard_tests_credentials_live_and_asks_again_when_they_are_rejected() {
    let fake = fake_twilio::FakeTwilio::start(TWILIO_SID, TWILIO_TOKEN);
    let prefix = tempfile::tempdir().expect("prefix");
    let mut cmd = common::aro_command(prefix.path());
    cmd.args(["install", "--service", "none"])
        .arg("--prefix")
        .arg(prefix.path())
        .args(["--twilio-api-base", &fake.base_url()])
        .env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).expect("spawn in a pty");
    answer(&mut p, "Business name", "Pty Clinic");
    answer(&mut p, "Business phone", "+15557654321");
    answer(&mut p, "Time zone", "UTC");
    answer(&mut p, "Profile pack", "healthcare");
    answer(
        &mut p,
        "Listen address",
        &format!("127.0.0.1:{}", free_port()),
    );
    answer(&mut p, "Booking system", "webhook");
    answer(&mut p, "Messaging", "twilio");
    answer(&mut p, "Twilio account SID", TWILIO_SID);
    answer(&mut p, "Twilio auth token", "a-mistyped-token-99");
    answer(&mut p, "Twilio sender", "+15550001111");
    answer(&mut p, "Payments", "none");
    // rexpect compares bytes as Latin-1 characters: match the ASCII part of the line.
    p.exp_string("Twilio: configured, credentials rejected")
        .expect("the rejection is shown");
    // The first choice, the default: enter the integration answers again.
    answer(&mut p, "The connection test failed", "");
    answer(&mut p, "Booking system (webhook/calendly) [webhook]", "");
    answer(&mut p, "Messaging (sandbox/twilio) [twilio]", "");
    answer(&mut p, &format!("[{TWILIO_SID}]"), "");
    answer(&mut p, "(Enter keeps the current one)", TWILIO_TOKEN);
    answer(&mut p, "[+15550001111]", "");
    answer(&mut p, "Payments (none/stripe) [none]", "");
    p.exp_string("Twilio: configured, reachable, credentials accepted")
        .expect("accepted the second time");
    answer(&mut p, "Quiet hours", "off");
    answer(&mut p, "Admin username", "maria");
    answer(&mut p, "Admin password", PASSWORD);
    answer(&mut p, "Repeat the password", PASSWORD);
    let out = finish(&mut p);
    assert!(
        !out.contains(TWILIO_TOKEN),
        "secrets are typed without echo"
    );

    let config_file = prefix.path().join("etc/aro/aro.toml");
    let text = std::fs::read_to_string(&config_file).expect("config written");
    assert!(
        !text.contains(TWILIO_TOKEN),
        "no plaintext credential at rest: {text}"
    );
    let config = Config::load(&ConfigSources {
        file: Some(config_file),
        env: Vec::new(),
    })
    .expect("loads")
    .config;
    let sealed = aro::credentials::read_sealed(&config).expect("sealed");
    assert!(
        sealed.contains(&("twilio.auth_token".to_string(), TWILIO_TOKEN.to_string())),
        "the accepted token is sealed in the store"
    );
    let checks = fake
        .request_log()
        .iter()
        .filter(|r| r.path == format!("/2010-04-01/Accounts/{TWILIO_SID}.json"))
        .map(|r| r.authorized)
        .collect::<Vec<_>>();
    assert_eq!(checks, vec![false, true], "one test per answer");
}
