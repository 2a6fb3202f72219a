//! `aro sandbox reply --from +15551234567 --body "yes"`: types an inbound reply into the
//! running daemon while messaging runs in the sandbox (no Twilio credentials, SPEC §6).
//!
//! It posts `{"from", "body"}` to the daemon's `POST /sandbox/replies` at the configured
//! `listen` address (an unspecified address such as `0.0.0.0` means this machine), and
//! the daemon handles it exactly as a Twilio reply — match by phone, keyword rules, the
//! classifier chain, the durable inbox, the message log — under a MessageSid `SBX…`.
//! It prints `recorded` or `duplicate` with the MessageSid, or the daemon's error
//! envelope. With Twilio credentials configured it refuses: replies then come from
//! Twilio itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::config::Config;
use crate::telemetry::redact::mask_phone;

/// How long the daemon gets to answer: matching and classification (the LLM's 4 s at
/// most) and two commits.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Subcommand)]
pub enum SandboxAction {
    /// Type an inbound reply, as if the customer had texted it to the business: it is
    /// matched, classified and acted on like a real one. Needs `aro serve` running with
    /// messaging in the sandbox (no Twilio credentials).
    Reply {
        /// The customer's number, E.164 (e.g. +15551234567); `whatsapp:+…` for WhatsApp.
        #[arg(long, value_name = "NUMBER")]
        from: String,
        /// The reply's text.
        #[arg(long)]
        body: String,
        /// Reuse a MessageSid (letters and digits) to see how a repeated delivery is
        /// handled; a fresh `SBX…` id by default.
        #[arg(long, value_name = "SID")]
        message_sid: Option<String>,
    },
}

pub fn run(config: Config, action: SandboxAction) -> anyhow::Result<()> {
    match action {
        SandboxAction::Reply {
            from,
            body,
            message_sid,
        } => reply(&config, from, body, message_sid),
    }
}

/// Where this machine reaches the daemon that binds `listen`.
fn daemon_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

fn reply(
    config: &Config,
    from: String,
    body: String,
    message_sid: Option<String>,
) -> anyhow::Result<()> {
    if config.twilio.auth_token.is_some() {
        bail!(
            "Twilio has credentials, so replies come from Twilio: `aro sandbox reply` works \
             only while messaging runs in the sandbox"
        );
    }
    if config.listen.port() == 0 {
        bail!("listen has port 0: set ARO_LISTEN to the daemon's address");
    }
    let url = format!("http://{}/sandbox/replies", daemon_address(config.listen));
    let mut request = json!({"from": from, "body": body});
    if let Some(sid) = message_sid {
        request["message_sid"] = Value::String(sid);
    }
    let shown = mask_phone(from.trim());
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder().timeout(REQUEST_TIMEOUT).finish();
        let mut response = client
            .post(url.as_str())
            .send_json(&request)
            .await
            .map_err(|e| {
                anyhow!("cannot reach the daemon at {url} ({e}): is `aro serve` running?")
            })?;
        let status = response.status();
        let bytes = response
            .body()
            .limit(1 << 20)
            .await
            .context("reading the daemon's answer")?;
        let answer: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if !status.is_success() {
            let envelope = serde_json::to_string_pretty(&answer).unwrap_or_default();
            eprintln!("{envelope}");
            bail!("the daemon refused the reply (HTTP {})", status.as_u16());
        }
        let outcome = answer["status"].as_str().unwrap_or("unknown");
        let sid = answer["message_sid"].as_str().unwrap_or("?");
        match outcome {
            "recorded" => println!(
                "recorded: reply {sid} from {shown}; the daemon matches and acts on it now"
            ),
            "duplicate" => println!("duplicate: {sid} was recorded before; nothing changed"),
            other => println!("{other}: {sid}"),
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_means_this_machine() {
        let at = |s: &str| daemon_address(s.parse().expect("address")).to_string();
        assert_eq!(at("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(at("[::]:8080"), "[::1]:8080");
        assert_eq!(at("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(at("192.168.1.5:80"), "192.168.1.5:80");
    }
}
