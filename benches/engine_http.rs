//! The engine bench of `aro bench engine`, with the real Twilio adapter sending over
//! HTTP to the fake Twilio server the tests use (SPEC §10: reminders through timers →
//! outbox → a local fake messaging HTTP server, with firing lag).
//!
//! `cargo bench --bench engine_http` (release build); `BENCH_APPOINTMENTS` (default
//! 20,000) and `BENCH_RATE` (reminders offered per second, default 5,000) tune it. It
//! uses a scratch SQLite database in a temporary directory.

#[path = "../tests/fakes/twilio.rs"]
mod fake_twilio;

use std::sync::Arc;
use std::time::Duration;

use aro::bench::{engine_with, Arrivals};
use aro::config::{Config, ConfigSources};
use aro::providers::{TwilioMessaging, TwilioSettings};
use chrono::{DateTime, Utc};
use fake_twilio::FakeTwilio;

const SID: &str = "AC00000000000000000000000000000b37";
const TOKEN: &str = "bench-token";

/// What the fake received. Each bench customer gets exactly two messages: the booking
/// confirmation during the ingest, then the 48 h reminder the bench times — so a
/// recipient's second message is its reminder.
struct FakeArrivals<'a>(&'a FakeTwilio);

impl FakeArrivals<'_> {
    fn reminders(&self) -> Vec<(String, DateTime<Utc>)> {
        let mut by_recipient: std::collections::HashMap<String, Vec<DateTime<Utc>>> =
            std::collections::HashMap::new();
        for m in self.0.accepted() {
            by_recipient.entry(m.to).or_default().push(m.received_at);
        }
        by_recipient
            .into_iter()
            .filter(|(_, times)| times.len() >= 2)
            .filter_map(|(to, times)| times.into_iter().max().map(|at| (to, at)))
            .collect()
    }
}

impl Arrivals for FakeArrivals<'_> {
    fn count(&self) -> usize {
        self.reminders().len()
    }

    fn arrivals(&self) -> Vec<(String, DateTime<Utc>)> {
        self.reminders()
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let appointments: usize = env_or("BENCH_APPOINTMENTS", 20_000);
    let rate: f64 = env_or("BENCH_RATE", 5_000.0);
    let dir = tempfile::tempdir()?;
    let sources = ConfigSources {
        file: None,
        env: vec![
            ("ARO_DATA_DIR".into(), dir.path().display().to_string()),
            ("ARO_LOG_LEVEL".into(), "warn".into()),
        ],
    };
    let config: Config = Config::load(&sources)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .config;
    let fake = FakeTwilio::start(SID, TOKEN);
    let twilio = TwilioMessaging::new(TwilioSettings {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        from: "+15550001111".into(),
        api_base: fake.base_url().parse()?,
        status_callback: None,
        timeout: Duration::from_secs(10),
    });
    println!("engine → Twilio adapter → fake Twilio over HTTP, {appointments} appointments");
    actix_web::rt::System::new().block_on(async {
        engine_with(
            &config,
            appointments,
            512,
            rate,
            Arc::new(twilio),
            &FakeArrivals(&fake),
        )
        .await
    })?;
    Ok(())
}
