//! The service units and the daemon's side of them (SPEC §9): the launchd job parses
//! as a property list with the keys launchd needs; the systemd units carry the
//! directives we rely on (and pass `systemd-analyze verify` where that tool exists);
//! `aro serve` speaks the notify protocol — `READY=1` once `/ready` answers,
//! `WATCHDOG=1` at half the asked interval only while healthy, `STOPPING=1` on SIGTERM;
//! and SIGTERM in the middle of a stream of signed bookings exits 0 within 10 s
//! without losing a single acknowledged booking.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use aro::store::schema::{appointments, inbox};
use aro::webhooks::signed_header::sign;
use chrono::Utc;
use common::{http_get, Daemon, Kind, TestDb};
use diesel::prelude::*;
use serde_json::json;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

// ---------------------------------------------------------------------------------
// launchd

#[test]
fn the_launchd_job_is_a_valid_property_list_with_what_launchd_needs() {
    let path = repo_file("launchd/com.aro.daemon.plist");
    let value = plist::Value::from_file(&path).expect("the launchd job parses as a plist");
    let job = value
        .as_dictionary()
        .expect("the top level is a dictionary");
    let string = |key: &str| -> &str {
        job.get(key)
            .and_then(plist::Value::as_string)
            .unwrap_or_else(|| panic!("{key} is a string"))
    };

    assert_eq!(string("Label"), "com.aro.daemon");
    let args: Vec<&str> = job
        .get("ProgramArguments")
        .and_then(plist::Value::as_array)
        .expect("ProgramArguments is an array")
        .iter()
        .map(|v| v.as_string().expect("each argument is a string"))
        .collect();
    assert!(args[0].starts_with('/'), "absolute program path: {args:?}");
    assert!(args[0].ends_with("/aro"), "{args:?}");
    assert_eq!(args[1], "serve", "{args:?}");
    let config = args
        .iter()
        .position(|a| *a == "--config")
        .and_then(|i| args.get(i + 1))
        .expect("--config FILE");
    assert!(
        config.starts_with('/') && config.ends_with(".toml"),
        "{config}"
    );
    assert_cli_accepts(&args[1..]);

    assert_eq!(
        job.get("RunAtLoad").and_then(plist::Value::as_boolean),
        Some(true)
    );
    match job.get("KeepAlive").expect("KeepAlive") {
        plist::Value::Boolean(keep) => assert!(keep),
        plist::Value::Dictionary(keep) => assert_eq!(
            keep.get("SuccessfulExit")
                .and_then(plist::Value::as_boolean),
            Some(false),
            "restart after a failure, not after a clean stop"
        ),
        other => panic!("KeepAlive is a boolean or a dictionary, got {other:?}"),
    }
    for key in ["StandardOutPath", "StandardErrorPath", "WorkingDirectory"] {
        assert!(string(key).starts_with('/'), "{key} is an absolute path");
    }
    let env = job
        .get("EnvironmentVariables")
        .and_then(plist::Value::as_dictionary)
        .expect("EnvironmentVariables is a dictionary");
    let data_dir = env
        .get("ARO_DATA_DIR")
        .and_then(plist::Value::as_string)
        .expect("ARO_DATA_DIR is set");
    assert!(data_dir.starts_with('/'), "{data_dir}");
    assert_eq!(string("WorkingDirectory"), data_dir);
    assert_eq!(string("UserName"), "_aro", "never as root");
    assert_eq!(
        job.get("Umask").and_then(plist::Value::as_unsigned_integer),
        Some(0o077)
    );
    let exit_timeout = job
        .get("ExitTimeOut")
        .and_then(plist::Value::as_unsigned_integer)
        .expect("ExitTimeOut");
    assert!(
        exit_timeout > default_drain_secs(),
        "SIGKILL only after the drain"
    );
}

// ---------------------------------------------------------------------------------
// systemd

/// A unit file: its sections, each a list of `Key=Value` entries in order (keys may
/// repeat; an empty value is kept, it resets a list in systemd).
struct Unit {
    sections: HashMap<String, Vec<(String, String)>>,
}

impl Unit {
    /// Parses systemd's INI dialect: `[Section]`, `Key=Value`, `#`/`;` comments,
    /// trailing-backslash continuations.
    fn parse(text: &str) -> Unit {
        let mut sections: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut current: Option<String> = None;
        let mut pending = String::new();
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            if let Some(start) = line.strip_suffix('\\') {
                pending.push_str(start);
                pending.push(' ');
                continue;
            }
            let line = format!("{pending}{line}");
            pending.clear();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = Some(name.to_string());
                sections.entry(name.to_string()).or_default();
                continue;
            }
            let section = current
                .clone()
                .unwrap_or_else(|| panic!("line {}: entry outside a section", number + 1));
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("line {}: not Key=Value: {line:?}", number + 1));
            sections
                .entry(section)
                .or_default()
                .push((key.trim().to_string(), value.trim().to_string()));
        }
        assert!(pending.is_empty(), "the file ends in a continuation");
        Unit { sections }
    }

    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.sections
            .get(section)
            .unwrap_or_else(|| panic!("no [{section}] section"))
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of `key` in `section`.
    fn one(&self, section: &str, key: &str) -> &str {
        match self.all(section, key).as_slice() {
            [value] => value,
            [] => panic!("[{section}] has no {key}="),
            many => panic!("[{section}] has {key}= {} times: {many:?}", many.len()),
        }
    }
}

/// Seconds of a systemd time span such as `30`, `30s`, `2min`.
fn seconds(span: &str) -> u64 {
    let digits: String = span.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("a time span: {span}"));
    match &span[digits.len()..] {
        "" | "s" | "sec" => n,
        "min" | "m" => n * 60,
        unit => panic!("unexpected unit {unit:?} in {span}"),
    }
}

/// The default `http.shutdown_timeout_secs`: how long SIGTERM drains at most.
fn default_drain_secs() -> u64 {
    aro::config::Config::load(&aro::config::ConfigSources {
        file: None,
        env: Vec::new(),
    })
    .expect("the defaults are valid")
    .config
    .http
    .shutdown_timeout
    .as_secs()
}

/// The arguments after the program name are ones `aro` accepts (checked with
/// `--help`, which clap answers before any configuration is read).
fn assert_cli_accepts(args: &[&str]) {
    let output = common::aro_command(&std::env::temp_dir())
        .args(args)
        .arg("--help")
        .output()
        .expect("run aro");
    assert!(
        output.status.success(),
        "aro rejects {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The settings both units share: notify, watchdog, restart policy, stop timeout.
fn assert_supervision(unit: &Unit) {
    assert_eq!(unit.one("Service", "Type"), "notify");
    assert_eq!(unit.one("Service", "NotifyAccess"), "main");
    let watchdog = seconds(unit.one("Service", "WatchdogSec"));
    assert!((10..=120).contains(&watchdog), "WatchdogSec={watchdog}");
    assert_eq!(unit.one("Service", "Restart"), "always");
    let prevent = unit.one("Service", "RestartPreventExitStatus");
    assert!(
        prevent
            .split_whitespace()
            .any(|s| s == aro::cli::EXIT_CONFIG.to_string()),
        "no restart on invalid configuration: {prevent}"
    );
    let stop = seconds(unit.one("Service", "TimeoutStopSec"));
    assert!(
        stop > default_drain_secs(),
        "TimeoutStopSec={stop} leaves the drain time"
    );
    assert_eq!(unit.one("Service", "UMask"), "0077");
    assert_eq!(unit.one("Service", "NoNewPrivileges"), "yes");
    let exec: Vec<&str> = unit
        .one("Service", "ExecStart")
        .split_whitespace()
        .collect();
    assert!(exec[0].ends_with("/aro"), "{exec:?}");
    assert_eq!(exec[1], "serve", "{exec:?}");
    assert!(exec.contains(&"--config"), "{exec:?}");
}

#[test]
fn the_system_unit_has_notify_watchdog_restart_and_sandboxing() {
    let text = std::fs::read_to_string(repo_file("systemd/aro.service")).expect("unit file");
    let unit = Unit::parse(&text);
    assert_supervision(&unit);

    let exec: Vec<&str> = unit
        .one("Service", "ExecStart")
        .split_whitespace()
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/aro");
    assert_cli_accepts(&exec[1..]);

    assert_eq!(unit.one("Service", "User"), "aro");
    assert_eq!(unit.one("Service", "Group"), "aro");
    assert!(unit.all("Service", "DynamicUser").is_empty());
    assert_eq!(
        unit.one("Service", "Environment"),
        "ARO_DATA_DIR=/var/lib/aro"
    );
    assert_eq!(unit.one("Service", "StateDirectory"), "aro");
    assert_eq!(unit.one("Service", "ReadWritePaths"), "/var/lib/aro");
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
    ] {
        assert_eq!(unit.one("Service", key), value, "{key}");
    }
    assert_eq!(unit.one("Install", "WantedBy"), "multi-user.target");

    match systemd_analyze() {
        Some(tool) => {
            let dir = tempfile::tempdir().expect("temp dir");
            let copy = dir.path().join("aro.service");
            let text = text.replace("/usr/local/bin/aro", env!("CARGO_BIN_EXE_aro"));
            std::fs::write(&copy, text).expect("write the unit copy");
            verify(&tool, &copy, &[], &[]);
        }
        None => eprintln!("systemd-analyze is not installed; checked the directives only"),
    }
}

#[test]
fn the_user_unit_has_notify_watchdog_and_restart() {
    let text = std::fs::read_to_string(repo_file("systemd/aro-user.service")).expect("unit file");
    let unit = Unit::parse(&text);
    assert_supervision(&unit);
    assert!(
        unit.all("Service", "User").is_empty(),
        "a user manager runs it as the user"
    );
    assert_eq!(unit.one("Service", "Environment"), "ARO_DATA_DIR=%S/aro");
    assert_eq!(unit.one("Install", "WantedBy"), "default.target");
    let exec: Vec<&str> = unit
        .one("Service", "ExecStart")
        .split_whitespace()
        .collect();
    assert_cli_accepts(&exec[1..]);

    if let Some(tool) = systemd_analyze() {
        let dir = tempfile::tempdir().expect("temp dir");
        let copy = dir.path().join("aro-user.service");
        let text = text.replace("%h/.local/bin/aro", env!("CARGO_BIN_EXE_aro"));
        std::fs::write(&copy, text).expect("write the unit copy");
        // A user manager needs a runtime directory, which a test runner may not have.
        let runtime = dir.path().join("runtime");
        std::fs::create_dir(&runtime).expect("runtime dir");
        let runtime = runtime.to_str().expect("utf-8 path");
        verify(&tool, &copy, &["--user"], &[("XDG_RUNTIME_DIR", runtime)]);
    }
}

fn systemd_analyze() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("systemd-analyze"))
        .find(|candidate| candidate.is_file())
}

/// `systemd-analyze verify` exits 0 even for unknown keys or bad values (it only warns),
/// so any line it prints about the unit fails the test too.
fn verify(tool: &Path, unit: &Path, args: &[&str], env: &[(&str, &str)]) {
    let output = Command::new(tool)
        .args(args)
        .arg("verify")
        .arg(unit)
        .envs(env.iter().copied())
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let name = unit
        .file_name()
        .and_then(|n| n.to_str())
        .expect("unit name");
    let about_unit: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| l.contains(name))
        .collect();
    assert!(
        output.status.success() && about_unit.is_empty(),
        "systemd-analyze verify {} failed ({}):\n{stderr}{stdout}",
        unit.display(),
        output.status
    );
}

// ---------------------------------------------------------------------------------
// The notify protocol on the real daemon

/// The service manager's end of `NOTIFY_SOCKET`: a datagram socket in a temp dir.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    /// Every datagram received, in order.
    received: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        NotifySocket {
            socket,
            path,
            received: Vec::new(),
        }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }

    /// Reads datagrams until one has the line `line`, for up to `timeout`; returns the
    /// whole datagram.
    fn wait_for(&mut self, line: &str, timeout: Duration) -> Option<String> {
        self.wait_for_match(|l| l == line, timeout)
    }

    fn wait_for_match(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.received.push(message.clone());
                    if message.lines().any(&pred) {
                        return Some(message);
                    }
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(err) => panic!("notify socket: {err}"),
            }
        }
        None
    }

    /// Every datagram that arrives within `window` (for asserting absence).
    fn collect_for(&mut self, window: Duration) -> Vec<String> {
        let before = self.received.len();
        self.wait_for_match(|_| false, window);
        self.received[before..].to_vec()
    }
}

/// How `aro serve` is started for the notify tests.
enum Launch {
    /// Directly, with `WATCHDOG_PID` unset.
    Direct,
    /// Through `sh -c 'WATCHDOG_PID=$$ exec aro serve'`: the PID systemd would pass.
    WithOwnWatchdogPid,
}

/// Starts `aro serve` on a fresh data directory with `env`, nothing about a service
/// manager inherited from the test's own environment, and waits until it listens.
fn start_serve(dir: &Path, launch: Launch, env: &[(&str, &str)]) -> (Daemon, SocketAddr) {
    let mut cmd = match launch {
        Launch::Direct => {
            let mut cmd = common::aro_command(dir);
            cmd.arg("serve");
            cmd
        }
        Launch::WithOwnWatchdogPid => {
            let mut cmd = Command::new("sh");
            cmd.current_dir(dir)
                .arg("-c")
                .arg("WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$0\" serve")
                .arg(env!("CARGO_BIN_EXE_aro"));
            for (name, _) in std::env::vars() {
                if name.starts_with("ARO_") {
                    cmd.env_remove(name);
                }
            }
            cmd
        }
    };
    let data_dir = dir.join("data");
    cmd.env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env("ARO_DATA_DIR", &data_dir)
        .env("ARO_LISTEN", "127.0.0.1:0")
        .env("ARO_HTTP_WORKERS", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn aro serve");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut daemon = Daemon {
        child,
        lines,
        log: Vec::new(),
    };
    let line = daemon
        .wait_for_line(
            |l| l.contains("\"message\":\"listening\""),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|| panic!("never listened; log:\n{}", daemon.log.join("\n")));
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    let addr = json["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("the listening line has addr");
    (daemon, addr)
}

fn watchdog_pings(messages: &[String]) -> usize {
    messages
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count()
}

#[test]
fn serve_sends_ready_then_watchdog_pings_then_stopping_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut notify = NotifySocket::bind(dir.path());
    let (mut daemon, addr) = start_serve(
        dir.path(),
        Launch::Direct,
        &[
            ("NOTIFY_SOCKET", notify.path()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );

    let ready = notify
        .wait_for("READY=1", Duration::from_secs(10))
        .expect("READY=1 arrives");
    assert_eq!(
        notify.received.len(),
        1,
        "READY=1 comes first: {:?}",
        notify.received
    );
    assert!(
        ready.contains(&format!("STATUS=serving on {addr}")),
        "{ready:?}"
    );
    let (status, body) = http_get(addr, "/ready");
    assert_eq!(status, 200, "ready means /ready answers: {body}");

    // 2 s watchdog: a ping every second, the first right away.
    let started = Instant::now();
    notify
        .wait_for("WATCHDOG=1", Duration::from_secs(10))
        .expect("a first WATCHDOG=1");
    notify
        .wait_for("WATCHDOG=1", Duration::from_secs(10))
        .expect("a second WATCHDOG=1");
    assert!(started.elapsed() < Duration::from_secs(4));

    daemon.signal("TERM");
    notify
        .wait_for("STOPPING=1", Duration::from_secs(5))
        .expect("STOPPING=1 after SIGTERM");
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert!(
        status.success(),
        "{status}; log:\n{}",
        daemon.drain_log().join("\n")
    );
    let stopping = notify
        .received
        .iter()
        .filter(|m| m.lines().any(|l| l == "STOPPING=1"))
        .count();
    assert_eq!(stopping, 1, "STOPPING=1 once: {:?}", notify.received);
}

#[test]
fn watchdog_pings_are_withheld_while_the_database_is_unhealthy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut notify = NotifySocket::bind(dir.path());
    // As systemd starts it: WATCHDOG_PID names the daemon's own process.
    let (mut daemon, _addr) = start_serve(
        dir.path(),
        Launch::WithOwnWatchdogPid,
        &[
            ("NOTIFY_SOCKET", notify.path()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    notify
        .wait_for("READY=1", Duration::from_secs(10))
        .expect("READY=1");
    notify
        .wait_for("WATCHDOG=1", Duration::from_secs(10))
        .expect("pings while healthy");

    // The database file disappears (say, a mistaken cleanup): /ready fails, so must
    // the watchdog, or systemd would never restart the daemon.
    let db_file = dir.path().join("data/aro.db");
    let moved = dir.path().join("data/aro.db.away");
    std::fs::rename(&db_file, &moved).expect("move the database away");
    let unhealthy = notify
        .wait_for_match(
            |l| l.starts_with("STATUS=unhealthy"),
            // Generous: on a loaded machine (the whole suite on 2 cores) the next
            // health check can be seconds late.
            Duration::from_secs(20),
        )
        .expect("the status says unhealthy");
    assert!(unhealthy.contains("missing"), "{unhealthy:?}");
    let meanwhile = notify.collect_for(Duration::from_millis(1_600));
    assert_eq!(
        watchdog_pings(&meanwhile),
        0,
        "no ping while unhealthy: {meanwhile:?}"
    );

    std::fs::rename(&moved, &db_file).expect("put the database back");
    notify
        .wait_for("WATCHDOG=1", Duration::from_secs(10))
        .expect("pings resume once healthy");

    daemon.signal("TERM");
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert!(
        status.success(),
        "{status}; log:\n{}",
        daemon.drain_log().join("\n")
    );
}

// ---------------------------------------------------------------------------------
// SIGTERM under load

const SECRET: &str = "sigterm-test-booking-secret";
const SENDERS: usize = 6;

fn booking(delivery_id: &str, external_id: &str, phone: &str) -> String {
    json!({
        "event": "appointment.created",
        "id": delivery_id,
        "timestamp": Utc::now().to_rfc3339(),
        "data": {
            "appointment_id": external_id,
            "scheduled_at": "2031-03-20T15:00:00Z",
            "duration": 30,
            "timezone": "UTC",
            "customer": {"name": "Load Test", "phone": phone, "sms_consent": true}
        }
    })
    .to_string()
}

/// One signed POST over a fresh connection; the response status, or `Err` when the
/// daemon is not listening (any more) or closed the connection.
fn post_booking(addr: SocketAddr, body: &str) -> std::io::Result<u16> {
    let signature = sign(SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes());
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST /webhooks/booking HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Aro-Signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    raw.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))
}

/// What the senders saw: every acknowledged (delivery id, appointment id).
#[derive(Default)]
struct Ledger {
    acknowledged: Mutex<Vec<(String, String)>>,
    /// Non-2xx answers (status, delivery id): a refusal is fine, a loss is not.
    refused: Mutex<Vec<(u16, String)>>,
    stop: AtomicBool,
}

fn daemon_env(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("ARO_DATA_DIR", db.data_dir().display().to_string()),
        ("ARO_DATABASE_URL", db.url.clone()),
        ("ARO_LISTEN", "127.0.0.1:0".to_string()),
        ("ARO_HTTP_WORKERS", "2".to_string()),
        ("ARO_BOOKING_WEBHOOK_SECRET", SECRET.to_string()),
    ]
}

fn start_loaded_daemon(db: &TestDb) -> (Daemon, SocketAddr) {
    let env = daemon_env(db);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Daemon::start(db.data_dir(), &env)
}

#[test]
fn sigterm_mid_stream_exits_cleanly_and_keeps_every_acknowledged_booking() {
    let db = TestDb::new(Kind::Sqlite);
    let (mut daemon, addr) = start_loaded_daemon(&db);
    let ledger = Arc::new(Ledger::default());

    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !ledger.stop.load(Ordering::SeqCst) {
                    let delivery = format!("term-{s}-{n}");
                    let external = format!("ext-term-{s}-{n}");
                    let phone = format!("+1555{:07}", s * 100_000 + n);
                    let body = booking(&delivery, &external, &phone);
                    match post_booking(addr, &body) {
                        Ok(status) if (200..300).contains(&status) => {
                            let mut acked = ledger.acknowledged.lock().expect("lock");
                            acked.push((delivery, external));
                        }
                        Ok(status) => {
                            let mut refused = ledger.refused.lock().expect("lock");
                            refused.push((status, delivery));
                        }
                        // Not listening any more, or cut off: unacknowledged, not lost.
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                    n += 1;
                }
            })
        })
        .collect();

    // Mid-stream: bookings are being acknowledged and more are on the wire.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ledger.acknowledged.lock().expect("lock").len() < 100 {
        assert!(
            Instant::now() < deadline,
            "bookings are not being acknowledged"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = ledger.acknowledged.lock().expect("lock").len();
    let signalled = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    let took = signalled.elapsed();
    ledger.stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.join().expect("sender thread");
    }
    let log = daemon.drain_log();
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running 10 s after SIGTERM; log tail:\n{}",
            log.iter()
                .rev()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert!(status.success(), "exit {status} after SIGTERM");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        log.iter()
            .any(|l| l.contains("shutdown requested; draining")),
        "the daemon drained"
    );
    let acknowledged = ledger.acknowledged.lock().expect("lock").clone();
    let refused = ledger.refused.lock().expect("lock").clone();
    eprintln!(
        "{} acknowledged ({} before SIGTERM), {} refused, stopped in {took:?}",
        acknowledged.len(),
        before,
        refused.len()
    );
    assert!(
        refused.iter().all(|(status, _)| *status == 503),
        "only `unavailable` while stopping: {refused:?}"
    );

    // Acknowledged means durable: each is in the inbox before anything restarts...
    let database = aro::store::Database::open(&db.config(&[]).database).expect("open the database");
    let recorded: BTreeSet<String> = {
        let mut conn = database.get().expect("connection");
        inbox::table
            .filter(inbox::source.eq("booking"))
            .select(inbox::dedup_key)
            .load::<String>(&mut conn)
            .expect("read the inbox")
            .into_iter()
            .collect()
    };
    let not_recorded: Vec<&String> = acknowledged
        .iter()
        .map(|(delivery, _)| delivery)
        .filter(|d| !recorded.contains(*d))
        .collect();
    assert!(
        not_recorded.is_empty(),
        "{} acknowledged deliveries missing from the inbox, e.g. {:?}",
        not_recorded.len(),
        &not_recorded[..not_recorded.len().min(5)]
    );

    // ...and after a restart on the same data every one of them is an appointment.
    let (mut daemon, _addr) = start_loaded_daemon(&db);
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let booked: BTreeSet<String> = {
            let mut conn = database.get().expect("connection");
            appointments::table
                .filter(appointments::source.eq("booking"))
                .select(appointments::external_id)
                .load::<String>(&mut conn)
                .expect("read appointments")
                .into_iter()
                .collect()
        };
        let missing: Vec<String> = acknowledged
            .iter()
            .map(|(_, external)| external)
            .filter(|e| !booked.contains(*e))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        missing.is_empty(),
        "{} acknowledged bookings never became appointments, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    daemon.signal("TERM");
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("the restarted daemon stops too");
    assert!(status.success(), "{status}");
}
