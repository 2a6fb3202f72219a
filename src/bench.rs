//! `aro bench`: the engine's throughput figures of SPEC §10 on the configured database
//! (use a scratch data directory — the bench refuses a database that holds real
//! appointments).
//!
//! `engine` books N appointments through the engine with durable commits (ingest rate),
//! then lets their 48 h reminders come due at a steady rate on a virtual clock that
//! follows real time, and measures how fast and how late they reach the messaging
//! provider (timers → actor → outbox → supervisor → provider). The provider here is an
//! in-process recorder, so the figure is the engine's and the store's, not a network's.
//!
//! `seed` writes N scheduled appointments (customer, appointment and four timers each)
//! straight into the database, for measuring start-up time and memory of a daemon
//! holding them (`scripts/bench-scheduled`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use actors::engine::{Booking, CustomerInfo, Engine, EngineOptions, EnginePorts, EngineSettings};
use actors::ports::clock::VirtualClock;
use actors::ports::ids::UuidV7;
use actors::ports::providers::{MessagingProvider, OutboundMessage, ProviderError, SendReceipt};
use actors::ports::BoxFuture;
use chrono::{DateTime, Duration, DurationRound, Utc};
use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};

use crate::app::prepare_database;
use crate::config::Config;
use crate::store::engine_store::WriterStats;
use crate::store::models::{to_naive, NewCustomerRow, NewTimerRow};
use crate::store::schema::{appointments, customers, timers};
use crate::store::{Database, DieselStore};

/// Why a bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Start(#[from] crate::app::StartError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the database already holds {0} appointments; run the bench on a scratch data directory (ARO_DATA_DIR=$(mktemp -d))")]
    NotEmpty(i64),
    #[error("engine: {0}")]
    Engine(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Where a bench sees its reminders arrive: the in-process recorder, or a provider's
/// fake at the other end of HTTP (`benches/engine_http.rs`).
pub trait Arrivals {
    /// Messages received so far.
    fn count(&self) -> usize;
    /// Each message received: its recipient and when it arrived.
    fn arrivals(&self) -> Vec<(String, DateTime<Utc>)>;
}

/// Idempotency key → (recipient, when it arrived).
type Received = HashMap<String, (String, DateTime<Utc>)>;

/// Whether a message is one of the 48 h reminders the bench times (its idempotency key
/// is `{appointment}:reminder_48h:{start}`); the booking confirmations sent during the
/// ingest are counted apart.
pub fn is_timed_reminder(idempotency_key: &str) -> bool {
    idempotency_key.contains(":reminder_48h:")
}

/// Records when each 48 h reminder reached "the provider" (in process, no network), and
/// how many other messages (the booking confirmations) did.
#[derive(Clone, Default)]
pub struct RecordingProvider {
    received: Arc<Mutex<Received>>,
    others: Arc<std::sync::atomic::AtomicUsize>,
}

impl RecordingProvider {
    /// Messages other than the timed reminders (booking confirmations).
    pub fn others(&self) -> usize {
        self.others.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Arrivals for RecordingProvider {
    fn count(&self) -> usize {
        self.received.lock().map(|r| r.len()).unwrap_or(0)
    }

    fn arrivals(&self) -> Vec<(String, DateTime<Utc>)> {
        self.received
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl MessagingProvider for RecordingProvider {
    fn send(
        &self,
        message: OutboundMessage,
    ) -> BoxFuture<'static, Result<SendReceipt, ProviderError>> {
        if !is_timed_reminder(&message.idempotency_key) {
            self.others
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else if let Ok(mut received) = self.received.lock() {
            received
                .entry(message.idempotency_key)
                .or_insert_with(|| (message.to, Utc::now()));
        }
        Box::pin(async {
            Ok(SendReceipt {
                provider_ref: "bench".to_string(),
                status: "queued".to_string(),
            })
        })
    }

    fn lookup(
        &self,
        _message: OutboundMessage,
        _provider_ref: Option<String>,
    ) -> BoxFuture<'static, Result<Option<SendReceipt>, ProviderError>> {
        Box::pin(async { Ok(None) })
    }
}

async fn refuse_non_empty(db: &Database) -> Result<(), BenchError> {
    let count: i64 = db
        .run(|conn| Ok(appointments::table.count().get_result(conn)?))
        .await?;
    if count > 0 {
        return Err(BenchError::NotEmpty(count));
    }
    Ok(())
}

fn booking(i: usize, starts_at: DateTime<Utc>) -> Booking {
    Booking {
        tenant_id: "default".to_string(),
        source: "bench".to_string(),
        external_id: format!("bench-{i}"),
        starts_at,
        ends_at: starts_at + Duration::minutes(30),
        timezone: Some("UTC".to_string()),
        service_type: Some("Consultation".to_string()),
        cancel_url: None,
        reschedule_url: None,
        service_cost_cents: None,
        customer: CustomerInfo {
            phone_e164: Some(bench_phone(i)),
            name: Some(format!("Customer {i}")),
            email: None,
            timezone: None,
        },
    }
}

fn percentile(sorted: &[StdDuration], p: f64) -> StdDuration {
    if sorted.is_empty() {
        return StdDuration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The phone number of bench booking `i`, and back.
pub fn bench_phone(i: usize) -> String {
    format!("+1555{i:07}")
}

fn bench_index(phone: &str) -> Option<usize> {
    phone.strip_prefix("+1555")?.parse().ok()
}

/// `aro bench engine`: the engine with the in-process recording provider.
pub async fn engine(
    config: &Config,
    appointments: usize,
    concurrency: usize,
    rate: f64,
) -> Result<(), BenchError> {
    let provider = RecordingProvider::default();
    engine_with(
        config,
        appointments,
        concurrency,
        rate,
        Arc::new(provider.clone()),
        &provider,
    )
    .await?;
    println!("booking confirmations sent: {}", provider.others());
    Ok(())
}

/// The engine bench against any messaging provider; `arrivals` tells when its messages
/// arrived. The first reminder of booking `i` goes to [`bench_phone`]`(i)`.
pub async fn engine_with(
    config: &Config,
    appointments: usize,
    concurrency: usize,
    rate: f64,
    messaging: Arc<dyn MessagingProvider>,
    arrivals: &dyn Arrivals,
) -> Result<(), BenchError> {
    let db = prepare_database(config).await?;
    refuse_non_empty(&db).await?;
    let t0 = Utc::now()
        .duration_trunc(Duration::hours(1))
        .unwrap_or_else(|_| Utc::now());
    let clock = VirtualClock::new(t0);
    let store = DieselStore::start(db.clone(), Arc::new(clock.clone()))
        .map_err(|e| BenchError::Engine(e.to_string()))?;
    let engine = Engine::start(
        EnginePorts {
            store: Arc::new(store.clone()),
            clock: Arc::new(clock.clone()),
            ids: Arc::new(UuidV7),
            messaging,
        },
        EngineSettings {
            quiet_hours: None,
            ..EngineSettings::default()
        },
        EngineOptions {
            messaging_rate_per_sec: 1e9,
            idle_timeout: StdDuration::from_secs(5),
            ..EngineOptions::default()
        },
    );

    // (a) Ingest. Appointment i starts at t0 + 72 h + i / rate, so its 48 h reminder is
    // due at t0 + 24 h + i / rate: a steady stream of `rate` reminders per second.
    let spacing = |i: usize| Duration::microseconds((i as f64 * 1e6 / rate) as i64);
    let started = Instant::now();
    let results: Vec<_> = stream::iter(0..appointments)
        .map(|i| {
            let engine = engine.clone();
            async move {
                engine
                    .book(booking(i, t0 + Duration::hours(72) + spacing(i)))
                    .await
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let ingest = started.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed > 0 {
        return Err(BenchError::Engine(format!("{failed} bookings failed")));
    }
    println!(
        "ingest: {appointments} appointments in {:.2} s = {:.0} appointments/s (concurrency {concurrency}, durable commit)",
        ingest.as_secs_f64(),
        appointments as f64 / ingest.as_secs_f64()
    );
    print_writer("ingest", &store.writer_stats(), ingest);

    // (b) Reminders. The virtual clock follows real time from t0 + 24 h.
    tokio::time::sleep(StdDuration::from_secs(6)).await; // let idle actors passivate
    let base = t0 + Duration::hours(24);
    let began = Instant::now();
    let began_wall = Utc::now();
    clock.set(base);
    let ticker_clock = clock.clone();
    let ticker = actix_web::rt::spawn(async move {
        loop {
            tokio::time::sleep(StdDuration::from_millis(1)).await;
            let elapsed = Duration::from_std(began.elapsed()).unwrap_or_default();
            ticker_clock.set(base + elapsed);
        }
    });
    let deadline = Instant::now() + StdDuration::from_secs(600);
    while arrivals.count() < appointments {
        if Instant::now() > deadline {
            ticker.abort();
            return Err(BenchError::Timeout(format!(
                "{} of {appointments} reminders after 600 s",
                arrivals.count()
            )));
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    ticker.abort();
    let mut lags = Vec::with_capacity(appointments);
    let mut last = began_wall;
    for (to, at) in arrivals.arrivals() {
        let Some(i) = bench_index(&to) else {
            continue;
        };
        let due = began_wall + spacing(i);
        lags.push((at - due).to_std().unwrap_or_default());
        last = last.max(at);
    }
    lags.sort();
    let span = (last - began_wall)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64();
    println!(
        "reminders: {appointments} fired in {span:.2} s = {:.0} reminders/s (offered at {rate:.0}/s); firing lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        appointments as f64 / span,
        percentile(&lags, 50.0).as_secs_f64() * 1e3,
        percentile(&lags, 99.0).as_secs_f64() * 1e3,
        lags.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    let total = store.writer_stats();
    print_writer("whole run", &total, started.elapsed());
    engine.shutdown().await;
    Ok(())
}

/// The store writer's share of a phase: group commits, writes per commit, and where
/// its time went (statements vs. `COMMIT`, i.e. the fsync on SQLite).
fn print_writer(phase: &str, stats: &WriterStats, wall: StdDuration) {
    let commits = stats.commits.max(1) as f64;
    println!(
        "  writer ({phase}): {} commits, {:.1} writes each; statements {:.1} s, COMMIT {:.1} s ({:.2} ms each) of {:.1} s",
        stats.commits,
        stats.writes as f64 / commits,
        stats.statements_us as f64 / 1e6,
        stats.commit_us as f64 / 1e6,
        stats.commit_us as f64 / 1e3 / commits,
        wall.as_secs_f64(),
    );
}

/// `aro bench seed`: N appointments scheduled days ahead, with their timers.
pub async fn seed(config: &Config, count: usize) -> Result<(), BenchError> {
    let db = prepare_database(config).await?;
    refuse_non_empty(&db).await?;
    let started = Instant::now();
    let now = Utc::now();
    const CHUNK: usize = 5_000;
    for chunk_start in (0..count).step_by(CHUNK) {
        let end = (chunk_start + CHUNK).min(count);
        db.run(move |conn| {
            conn.transaction::<_, diesel::result::Error, _>(|conn| {
                let naive_now = to_naive(now);
                for i in chunk_start..end {
                    let booking = booking(
                        i,
                        now + Duration::days(3) + Duration::seconds((i % 86_400) as i64),
                    );
                    let id = actors::engine::appointment_id_for(
                        "default",
                        "bench",
                        &booking.external_id,
                    );
                    let customer_id = uuid::Uuid::now_v7().to_string();
                    let customer = actors::ports::store::CustomerRecord {
                        id: customer_id.clone(),
                        tenant_id: "default".to_string(),
                        phone_e164: booking.customer.phone_e164.clone(),
                        name: booking.customer.name.clone(),
                        email: None,
                        timezone: None,
                        opted_out: false,
                        history: Default::default(),
                    };
                    diesel::insert_into(customers::table)
                        .values(NewCustomerRow::new(&customer, naive_now))
                        .execute(conn)?;
                    diesel::insert_into(appointments::table)
                        .values((
                            appointments::id.eq(&id),
                            appointments::tenant_id.eq("default"),
                            appointments::customer_id.eq(&customer_id),
                            appointments::source.eq("bench"),
                            appointments::external_id.eq(&booking.external_id),
                            appointments::status.eq("booked"),
                            appointments::starts_at.eq(to_naive(booking.starts_at)),
                            appointments::ends_at.eq(to_naive(booking.ends_at)),
                            appointments::timezone.eq("UTC"),
                            appointments::version.eq(1_i64),
                            appointments::created_at.eq(naive_now),
                            appointments::updated_at.eq(naive_now),
                        ))
                        .execute(conn)?;
                    let payload = serde_json::json!({"startsAt": booking.starts_at});
                    for (kind, due) in [
                        ("reminder_48h", booking.starts_at - Duration::hours(48)),
                        ("reminder_24h", booking.starts_at - Duration::hours(24)),
                        ("lifecycle_start", booking.starts_at),
                        ("lifecycle_complete", booking.ends_at + Duration::hours(2)),
                    ] {
                        let spec = actors::ports::store::TimerSpec {
                            tenant_id: "default".to_string(),
                            key: format!("appointment:{id}:{kind}"),
                            owner_type: "appointment".to_string(),
                            owner_id: id.clone(),
                            kind: kind.to_string(),
                            due_at: due,
                            payload: payload.clone(),
                        };
                        diesel::insert_into(timers::table)
                            .values(NewTimerRow::new(
                                uuid::Uuid::now_v7().to_string(),
                                &spec,
                                naive_now,
                            ))
                            .execute(conn)?;
                    }
                }
                Ok(())
            })
            .map_err(crate::store::StoreError::from)
        })
        .await?;
    }
    println!(
        "seeded {count} appointments (4 timers each) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
