//! Starting the installed daemon and proving it works: without a service manager (or
//! under a test prefix) `aro serve --config FILE` runs as a detached child (its own
//! process group, the log in `<data_dir>/aro.log`, its pid in `<data_dir>/aro.pid`);
//! then `GET /ready` is polled for up to 30 s, and a sandbox test booking goes through
//! the whole flow: a signed `POST /webhooks/booking` with the generated secret, then the
//! booking confirmation must appear in the messages table as a sandbox message. The
//! test appointment is cancelled afterwards so that no reminders follow.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, Timelike, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::config::Config;
use crate::store::schema::{appointments, messages};
use crate::store::Database;
use crate::webhooks::signed_header::sign;

use super::InstallError;

/// How long the daemon gets to answer `/ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the test booking's confirmation may take.
const CONFIRMATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The pid file of a daemon started by the installer.
pub const PID_FILE: &str = "aro.pid";
/// The log of a daemon started by the installer.
pub const LOG_FILE: &str = "aro.log";
/// The test booking's customer: a fictional number (555-01xx).
const TEST_PHONE: &str = "+12025550143";

/// The address to reach a daemon listening on `listen` (any-address → loopback).
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// Starts `bin serve --config config_file` detached, with no inherited `ARO_*`
/// variables (the file is the whole configuration); returns its pid.
pub fn spawn_detached(
    bin: &Path,
    config_file: &Path,
    data_dir: &Path,
) -> Result<u32, InstallError> {
    let log_path = data_dir.join(LOG_FILE);
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| InstallError::io("open", &log_path, e))?;
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--config")
        .arg(config_file)
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        // Its own process group: the terminal's Ctrl-C does not reach it.
        .process_group(0);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ARO_") {
            cmd.env_remove(name);
        }
    }
    let child = cmd
        .spawn()
        .map_err(|e| InstallError::Daemon(format!("cannot start {}: {e}", bin.display())))?;
    let pid = child.id();
    // The daemon outlives the installer on purpose: its handle is dropped without a
    // wait (it is re-parented when the installer exits).
    drop(child);
    let pid_path = data_dir.join(PID_FILE);
    fs::write(&pid_path, format!("{pid}\n"))
        .map_err(|e| InstallError::io("write", &pid_path, e))?;
    Ok(pid)
}

/// The last lines of the started daemon's log, for an error message.
pub fn log_tail(data_dir: &Path) -> String {
    let path: PathBuf = data_dir.join(LOG_FILE);
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Polls `GET /ready` until it answers 200 or `timeout` passes.
pub fn wait_ready(addr: SocketAddr, timeout: Duration) -> Result<(), InstallError> {
    let url = format!("http://{addr}/ready");
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(2))
            .finish();
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match client.get(&url).send().await {
                Ok(response) if response.status().as_u16() == 200 => return Ok(()),
                Ok(response) => last = format!("HTTP {}", response.status()),
                Err(err) => last = err.to_string(),
            }
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
        Err(InstallError::Daemon(format!(
            "{url} did not answer 200 within {} s (last: {last})",
            timeout.as_secs()
        )))
    })
}

/// The test booking's result.
#[derive(Debug, Clone)]
pub struct TestBooking {
    pub appointment_id: String,
    pub message_status: String,
}

/// Books a test appointment through the signed booking webhook, waits for its sandbox
/// confirmation in the messages table, then cancels it.
pub fn sandbox_test_booking(
    config: &Config,
    addr: SocketAddr,
) -> Result<TestBooking, InstallError> {
    let Some(secret) = config.booking.webhook_secret.as_ref() else {
        return Err(InstallError::Daemon(
            "booking.webhook_secret is not set: no test booking".to_string(),
        ));
    };
    let secret = secret.expose().clone();
    let external_id = format!("aro-install-test-{}", uuid::Uuid::new_v4().simple());
    let starts = (Utc::now() + ChronoDuration::days(3))
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or_else(|| Utc::now() + ChronoDuration::days(3));
    let created = json!({
        "event": "appointment.created",
        "id": format!("{external_id}-created"),
        "timestamp": Utc::now().to_rfc3339(),
        "data": {
            "appointment_id": external_id,
            "scheduled_at": starts.to_rfc3339(),
            "duration": 30,
            "timezone": config.timezone.name(),
            "customer": {"name": "ARO Install Test", "phone": TEST_PHONE, "sms_consent": true}
        }
    })
    .to_string();
    let cancelled = json!({
        "event": "appointment.cancelled",
        "id": format!("{external_id}-cancelled"),
        "timestamp": Utc::now().to_rfc3339(),
        "data": {"appointment_id": external_id, "cancelled_by": "staff",
                 "cancellation_reason": "aro install test booking"}
    })
    .to_string();
    let url = format!("http://{addr}/webhooks/booking");
    let db = Database::open(&config.database)?;
    actix_web::rt::System::new().block_on(async move {
        post_signed(&url, &secret, &created).await?;
        let deadline = Instant::now() + CONFIRMATION_TIMEOUT;
        let ext = external_id.clone();
        loop {
            let ext = ext.clone();
            let found: Option<(String, String)> = db
                .run(move |conn| {
                    Ok(messages::table
                        .inner_join(
                            appointments::table
                                .on(messages::appointment_id.eq(appointments::id.nullable())),
                        )
                        .filter(appointments::external_id.eq(ext))
                        .filter(messages::kind.eq("booking_confirmation"))
                        .filter(messages::sandbox.eq(true))
                        .select((appointments::id, messages::status))
                        .first(conn)
                        .optional()?)
                })
                .await?;
            if let Some((appointment_id, message_status)) = found {
                post_signed(&url, &secret, &cancelled).await?;
                return Ok(TestBooking {
                    appointment_id,
                    message_status,
                });
            }
            if Instant::now() > deadline {
                return Err(InstallError::Daemon(format!(
                    "the test booking's confirmation was not recorded within {} s \
                     (inside quiet hours it waits until they end; `aro diagnose` checks the rest)",
                    CONFIRMATION_TIMEOUT.as_secs()
                )));
            }
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

async fn post_signed(url: &str, secret: &str, body: &str) -> Result<(), InstallError> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let signature = sign(secret.as_bytes(), Utc::now().timestamp(), body.as_bytes());
    let response = client
        .post(url)
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("X-Aro-Signature", signature))
        .send_body(body.to_string())
        .await
        .map_err(|e| InstallError::Daemon(format!("POST {url}: {e}")))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(InstallError::Daemon(format!(
            "POST {url} answered {}",
            response.status()
        )))
    }
}
