//! Delivery guarantees of the running engine, as properties over random histories.
//!
//! Each case starts a real `Engine` (in-memory store, virtual clock, a recording
//! messaging provider built on `ScriptedMessaging`) with the default quiet hours
//! (21:00–08:00), then plays a random sequence of operations on 1–3 appointments
//! sharing 1–2 customer phones: bookings 1 h – 5 days ahead in UTC, New York or
//! Berlin, reschedules (the same external id booked again at a new time), cancellations,
//! customer confirmations, provider failures of every error class (some with an unknown
//! outcome, some "sent but the answer was lost"), and clock jumps from minutes to days,
//! around the 2026 DST changes of New York and Berlin. Then the clock is moved, event by
//! event, to well past every appointment, letting the engine settle at each step.
//!
//! Over every message the provider accepted, with the virtual time it was accepted and
//! the appointment as stored at that moment, it checks (SPEC §3–§5):
//! 1. nothing is delivered for an appointment once it is cancelled;
//! 2. no reminder is delivered for a superseded start time (its idempotency key
//!    `{appointment}:{kind}:{start_unix}` names the start it was written for);
//! 3. no idempotency key is delivered twice;
//! 4. nothing but an answer to the customer is delivered inside quiet hours in the
//!    appointment's zone;
//! 5. the unconfirmed-only reminder (`reminder_24h`) is not delivered once confirmed;
//! 6. no reminder is delivered later than start − 2 h, and no booking confirmation
//!    after the start.
//!
//! Every message kind is delivered and checked (confirmations, acknowledgements, the
//! messages after the visit); the injected provider failures hit the reminders, whose
//! retries the regressions below are about.
//!
//! Cases are reproducible: the proptest seed is fixed (override with
//! `PROPTEST_RNG_SEED`, widen with `PROPTEST_CASES`), ids are sequential and the
//! engine's retry jitter is seeded. Shrunk failures are kept below as plain tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration as StdDuration, Instant};

use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::messages::RESPONSE_KINDS;
use actors::engine::{
    AppointmentCommand, Booking, ChangedBy, CustomerInfo, Engine, EngineOptions, EnginePorts,
    EngineSettings,
};
use actors::ports::clock::{Clock, VirtualClock};
use actors::ports::ids::IdGen;
use actors::ports::providers::{MessagingProvider, OutboundMessage, ProviderError, SendReceipt};
use actors::ports::store::{AppointmentRecord, OutboxStatus, TimerStatus};
use actors::ports::BoxFuture;
use actors::resilience::backoff::ErrorClass;
use actors::supervisors::messaging::GetSnapshot;
use actors::testing::memory_store::MemoryState;
use actors::testing::{MemoryStore, ScriptedMessaging};
use actors::timers::GetTimerStats;
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

const TENANT: &str = "default";
const SOURCE: &str = "booking";
const ZONES: [&str; 3] = ["UTC", "America/New_York", "Europe/Berlin"];
const PHONES: [&str; 2] = ["+15550000001", "+15550000002"];

/// Where a case's clock starts: a few days before a 2026 DST change.
fn base(index: usize) -> DateTime<Utc> {
    let (m, d) = [
        (3, 6),   // New York springs forward on 2026-03-08
        (10, 29), // New York falls back on 2026-11-01
        (3, 26),  // Berlin springs forward on 2026-03-29
        (10, 22), // Berlin falls back on 2026-10-25
    ][index % 4];
    Utc.with_ymd_and_hms(2026, m, d, 0, 0, 0).unwrap()
}

// ---------------------------------------------------------------------------------
// The operations.

#[derive(Debug, Clone, PartialEq)]
enum Failure {
    /// The provider answers with this error (nothing was sent).
    Error {
        class: ErrorClass,
        outcome_unknown: bool,
    },
    /// The provider accepts the message but the answer is lost: a timeout whose outcome
    /// is unknown, so the engine must reconcile before any resend.
    AckLost,
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    /// Books appointment `appt` (or, when it exists, moves it: the booking system
    /// reports the same external id at a new time).
    Book {
        appt: usize,
        ahead_minutes: i64,
        zone: usize,
    },
    /// Staff cancel it.
    Cancel { appt: usize },
    /// The customer replied "yes".
    Confirm { appt: usize },
    /// The next provider calls fail like this, in order.
    Fail(Vec<Failure>),
    /// Time passes.
    Jump { minutes: i64 },
}

#[derive(Debug, Clone)]
struct Case {
    base: usize,
    offset_minutes: i64,
    appointments: usize,
    phones: usize,
    ops: Vec<Op>,
}

fn failure() -> impl Strategy<Value = Failure> {
    let class = prop_oneof![
        Just(ErrorClass::Timeout),
        Just(ErrorClass::Network),
        Just(ErrorClass::ServerError),
        Just(ErrorClass::ClientError),
        Just(ErrorClass::Final),
        Just(ErrorClass::RateLimited { retry_after: None }),
        (1u64..=3600).prop_map(|s| ErrorClass::RateLimited {
            retry_after: Some(StdDuration::from_secs(s))
        }),
    ];
    prop_oneof![
        4 => (class, any::<bool>()).prop_map(|(class, outcome_unknown)| Failure::Error {
            class,
            outcome_unknown
        }),
        1 => Just(Failure::AckLost),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 60i64..=5 * 24 * 60, 0..ZONES.len()).prop_map(
            |(appt, ahead_minutes, zone)| Op::Book { appt, ahead_minutes, zone }
        ),
        1 => (0..3usize).prop_map(|appt| Op::Cancel { appt }),
        2 => (0..3usize).prop_map(|appt| Op::Confirm { appt }),
        2 => prop::collection::vec(failure(), 1..6).prop_map(Op::Fail),
        3 => (1i64..=120).prop_map(|minutes| Op::Jump { minutes }),
        3 => (60i64..=3 * 24 * 60).prop_map(|minutes| Op::Jump { minutes }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..4usize,
        0i64..=2 * 24 * 60,
        1..=3usize,
        1..=2usize,
        (60i64..=5 * 24 * 60, 0..ZONES.len()),
        prop::collection::vec(op(), 1..30),
    )
        .prop_map(
            |(base, offset_minutes, appointments, phones, (ahead_minutes, zone), mut ops)| {
                // Every case has at least one booking to work on.
                ops.insert(
                    0,
                    Op::Book {
                        appt: 0,
                        ahead_minutes,
                        zone,
                    },
                );
                Case {
                    base,
                    offset_minutes,
                    appointments,
                    phones,
                    ops,
                }
            },
        )
}

// ---------------------------------------------------------------------------------
// The recording provider.

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One message the provider accepted.
#[derive(Debug, Clone)]
struct Delivery {
    at: DateTime<Utc>,
    message: OutboundMessage,
    /// The appointment as committed at the moment the provider was called.
    stored: Option<AppointmentRecord>,
}

/// `ScriptedMessaging` plus, for every accepted message, the virtual time and the
/// stored appointment at that moment; and "accepted, but the answer was lost".
#[derive(Clone)]
struct Recorder {
    /// Reminders: the injected failures apply here.
    inner: ScriptedMessaging,
    /// Every other kind.
    other: ScriptedMessaging,
    clock: VirtualClock,
    store: MemoryStore,
    log: Arc<Mutex<Vec<Delivery>>>,
    lose_acks: Arc<Mutex<u32>>,
}

impl MessagingProvider for Recorder {
    fn send(
        &self,
        message: OutboundMessage,
    ) -> BoxFuture<'static, Result<SendReceipt, ProviderError>> {
        let scripted = if is_reminder(&message) {
            &self.inner
        } else {
            &self.other
        };
        let before = scripted.delivered().len();
        let answer = scripted.send(message.clone());
        if scripted.delivered().len() > before {
            let appointment_id = message
                .idempotency_key
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            let stored = self
                .store
                .snapshot()
                .appointments
                .get(&appointment_id)
                .cloned();
            lock(&self.log).push(Delivery {
                at: self.clock.now(),
                message,
                stored,
            });
            let mut lose = lock(&self.lose_acks);
            if *lose > 0 {
                *lose -= 1;
                return Box::pin(async {
                    Err(ProviderError {
                        class: ErrorClass::Timeout,
                        message: "timed out after sending".into(),
                        outcome_unknown: true,
                    })
                });
            }
        }
        answer
    }

    fn lookup(
        &self,
        message: OutboundMessage,
        provider_ref: Option<String>,
    ) -> BoxFuture<'static, Result<Option<SendReceipt>, ProviderError>> {
        if is_reminder(&message) {
            self.inner.lookup(message, provider_ref)
        } else {
            self.other.lookup(message, provider_ref)
        }
    }
}

fn kind_of(key: &str) -> &str {
    key.split(':').nth(1).unwrap_or_default()
}

fn is_reminder(message: &OutboundMessage) -> bool {
    kind_of(&message.idempotency_key).starts_with("reminder")
}

/// Sequential ids, so a case replays the same way every time.
#[derive(Default)]
struct SeqIds(AtomicU64);

impl IdGen for SeqIds {
    fn new_id(&self) -> String {
        format!(
            "00000000-0000-7000-8000-{:012x}",
            self.0.fetch_add(1, Ordering::Relaxed)
        )
    }
}

// ---------------------------------------------------------------------------------
// Running a case.

struct Harness {
    engine: Engine,
    store: MemoryStore,
    clock: VirtualClock,
    provider: Recorder,
}

/// What the test itself saw happen.
#[derive(Default)]
struct History {
    /// Appointment id → the virtual time its cancellation was committed.
    cancelled_at: HashMap<String, DateTime<Utc>>,
}

fn start(at: DateTime<Utc>) -> Harness {
    let store = MemoryStore::new();
    let clock = VirtualClock::new(at);
    let provider = Recorder {
        inner: ScriptedMessaging::new(),
        other: ScriptedMessaging::new(),
        clock: clock.clone(),
        store: store.clone(),
        log: Arc::default(),
        lose_acks: Arc::default(),
    };
    let engine = Engine::start(
        EnginePorts {
            store: Arc::new(store.clone()),
            clock: Arc::new(clock.clone()),
            ids: Arc::new(SeqIds::default()),
            messaging: Arc::new(provider.clone()),
        },
        EngineSettings::default(),
        EngineOptions {
            messaging_rate_per_sec: 1000.0,
            seed: 0x5eed,
            ..EngineOptions::default()
        },
    );
    Harness {
        engine,
        store,
        clock,
        provider,
    }
}

/// Everything that changes when the engine does work.
type Fingerprint = (
    u64,
    usize,
    usize,
    usize,
    Vec<(OutboxStatus, i32, DateTime<Utc>)>,
    usize,
);

impl Harness {
    fn fingerprint(&self) -> Fingerprint {
        let s = self.store.snapshot();
        (
            s.commits,
            s.events.len(),
            s.escalations.len(),
            s.dead_letters.len(),
            s.outbox
                .values()
                .map(|o| (o.status, o.attempts, o.next_attempt_at))
                .collect(),
            self.provider.inner.calls(),
        )
    }

    /// Lets the engine run until nothing changes and nothing is in flight. The engine
    /// only waits on the virtual clock, so yielding is enough to drive it.
    async fn quiesce(&self) {
        let deadline = Instant::now() + StdDuration::from_secs(10);
        let mut last = None;
        let mut stable = 0;
        loop {
            for _ in 0..16 {
                actix_rt::task::yield_now().await;
            }
            let timers = self
                .engine
                .timers
                .send(GetTimerStats)
                .await
                .expect("timers");
            let messaging = self.engine.messaging.send(GetSnapshot).await.expect("sup");
            let print = self.fingerprint();
            let idle = timers.in_flight == 0 && messaging.in_flight == 0;
            if idle && last.as_ref() == Some(&print) {
                stable += 1;
                if stable >= 3 {
                    return;
                }
            } else {
                stable = 0;
            }
            last = Some(print);
            assert!(Instant::now() < deadline, "the engine never settled");
        }
    }

    fn appointment_id(external: usize) -> String {
        actors::engine::appointment_id_for(TENANT, SOURCE, &format!("a{external}"))
    }

    async fn apply(&self, case: &Case, op: &Op, history: &mut History) {
        match op {
            Op::Book {
                appt,
                ahead_minutes,
                zone,
            } => {
                let appt = appt % case.appointments;
                let starts_at = self.clock.now() + Duration::minutes(*ahead_minutes);
                let booking = Booking {
                    tenant_id: TENANT.into(),
                    source: SOURCE.into(),
                    external_id: format!("a{appt}"),
                    starts_at,
                    ends_at: starts_at + Duration::minutes(30),
                    timezone: Some(ZONES[*zone].into()),
                    service_type: None,
                    cancel_url: None,
                    reschedule_url: None,
                    service_cost_cents: None,
                    customer: CustomerInfo {
                        phone_e164: Some(PHONES[appt % case.phones].into()),
                        name: None,
                        email: None,
                        timezone: None,
                    },
                };
                // A move of a cancelled (or otherwise finished) appointment is ignored.
                self.engine
                    .book(booking)
                    .await
                    .expect("a booking is accepted");
            }
            Op::Cancel { appt } => {
                let id = Self::appointment_id(appt % case.appointments);
                let answer = self
                    .engine
                    .route(
                        id.clone(),
                        AppointmentCommand::Transition {
                            to: AppointmentStatus::Cancelled,
                            by: ChangedBy::Staff("ann".into()),
                            reason: None,
                        },
                    )
                    .await;
                if answer.is_ok() {
                    history.cancelled_at.insert(id, self.clock.now());
                }
            }
            Op::Confirm { appt } => {
                // Not booked yet, or no longer unconfirmed: rejected, and that is fine.
                let _ = self
                    .engine
                    .route(
                        Self::appointment_id(appt % case.appointments),
                        AppointmentCommand::Transition {
                            to: AppointmentStatus::Confirmed,
                            by: ChangedBy::Customer,
                            reason: None,
                        },
                    )
                    .await;
            }
            Op::Fail(failures) => {
                for f in failures {
                    match f {
                        Failure::Error {
                            class,
                            outcome_unknown,
                        } => self.provider.inner.push(Err(ProviderError {
                            class: class.clone(),
                            message: format!("{class:?}"),
                            outcome_unknown: *outcome_unknown,
                        })),
                        Failure::AckLost => *lock(&self.provider.lose_acks) += 1,
                    }
                }
            }
            Op::Jump { minutes } => {
                self.clock.advance(Duration::minutes(*minutes));
            }
        }
        self.quiesce().await;
    }

    /// Moves the clock from one due timer or outbox retry to the next until well past
    /// every appointment, settling at each step.
    async fn run_out(&self) {
        let end = self
            .store
            .snapshot()
            .appointments
            .values()
            .map(|a| a.ends_at + Duration::days(1))
            .max()
            .unwrap_or_else(|| self.clock.now())
            .max(self.clock.now());
        for _ in 0..5_000 {
            self.quiesce().await;
            let s = self.store.snapshot();
            let now = self.clock.now();
            let next_timer = s
                .timers
                .values()
                .filter(|t| t.status == TimerStatus::Scheduled)
                .map(|t| t.spec.due_at)
                .min();
            let next_retry = s
                .outbox
                .values()
                .filter(|o| o.status == OutboxStatus::Pending)
                .map(|o| o.next_attempt_at)
                .min();
            let next = match (next_timer, next_retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let target = match next {
                None if now >= end => return,
                None => end,
                // Something due but waiting (rate limit, open breaker): let time pass.
                Some(at) => at.max(now + Duration::seconds(1)),
            };
            self.clock.set(target.min(now + Duration::hours(12)));
        }
        panic!("the engine still had work after 5000 steps");
    }
}

/// What a case left behind.
struct Outcome {
    /// Every property violation found (empty when all hold).
    violations: Vec<String>,
    deliveries: Vec<Delivery>,
    store: MemoryState,
}

/// Runs one case to the end and checks it.
fn run(case: &Case) -> Outcome {
    actix_rt::System::new().block_on(async {
        let at = base(case.base) + Duration::minutes(case.offset_minutes);
        let h = start(at);
        let mut history = History::default();
        h.quiesce().await;
        for op in &case.ops {
            h.apply(case, op, &mut history).await;
        }
        h.run_out().await;
        let outcome = Outcome {
            violations: check(&h, &history),
            deliveries: lock(&h.provider.log).clone(),
            store: h.store.snapshot(),
        };
        h.engine.shutdown().await;
        outcome
    })
}

fn check(h: &Harness, history: &History) -> Vec<String> {
    let quiet_start = NaiveTime::from_hms_opt(21, 0, 0).expect("time");
    let quiet_end = NaiveTime::from_hms_opt(8, 0, 0).expect("time");
    let deliveries = lock(&h.provider.log).clone();
    let mut violations = Vec::new();
    // The recorder saw exactly what the scripted provider accepted.
    let mut accepted: Vec<String> = h
        .provider
        .inner
        .delivered()
        .into_iter()
        .chain(h.provider.other.delivered())
        .map(|m| m.idempotency_key)
        .collect();
    let mut recorded: Vec<String> = deliveries
        .iter()
        .map(|d| d.message.idempotency_key.clone())
        .collect();
    accepted.sort();
    recorded.sort();
    assert_eq!(accepted, recorded, "the recorder missed a delivery");

    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &deliveries {
        let key = d.message.idempotency_key.as_str();
        *seen.entry(key).or_default() += 1;
        let parts: Vec<&str> = key.split(':').collect();
        let (id, kind) = (parts[0], kind_of(key));
        let reminder = kind.starts_with("reminder");
        let start = match (reminder, parts.get(2)) {
            (true, Some(start)) if parts.len() == 3 => Some(*start),
            (true, _) => {
                violations.push(format!("{key}: not an `id:kind:start` key"));
                continue;
            }
            (false, _) => None,
        };
        let Some(stored) = &d.stored else {
            violations.push(format!("{key}: delivered for an unknown appointment"));
            continue;
        };
        let zone: Tz = stored.timezone.parse().unwrap_or(Tz::UTC);
        let local = d.at.with_timezone(&zone);
        let sent = format!("sent {} ({} local)", d.at, local.format("%F %T %Z"));
        // 1. Cancelled.
        if stored.status == AppointmentStatus::Cancelled {
            violations.push(format!("{key}: {sent} for a cancelled appointment"));
        }
        if let Some(cancelled) = history.cancelled_at.get(id) {
            if d.at > *cancelled {
                violations.push(format!("{key}: {sent}, after the cancel at {cancelled}"));
            }
        }
        // 2. Superseded start.
        if start.is_some_and(|start| start != stored.starts_at.timestamp().to_string()) {
            violations.push(format!(
                "{key}: {sent} for a superseded start; the start then was {}",
                stored.starts_at
            ));
        }
        // 4. Quiet hours, in the appointment's zone (answers to the customer go at once).
        let answer = RESPONSE_KINDS.contains(&kind);
        if !answer && (local.time() >= quiet_start || local.time() < quiet_end) {
            violations.push(format!("{key}: {sent}, inside quiet hours in {zone}"));
        }
        // 5. The unconfirmed-only reminder.
        if kind == "reminder_24h" && stored.status != AppointmentStatus::Booked {
            violations.push(format!(
                "{key}: {sent} while the appointment was {}",
                stored.status
            ));
        }
        // 6. Not later than start − 2 h.
        if reminder && d.at > stored.starts_at - Duration::hours(2) {
            violations.push(format!(
                "{key}: {sent}, later than start − 2 h (start {})",
                stored.starts_at
            ));
        }
        if kind == "booking_confirmation" && d.at > stored.starts_at {
            violations.push(format!(
                "{key}: {sent}, after the start {}",
                stored.starts_at
            ));
        }
    }
    // 3. No key twice.
    for (key, n) in seen {
        if n > 1 {
            violations.push(format!("{key}: delivered {n} times"));
        }
    }
    violations
}

fn config() -> ProptestConfig {
    let defaults = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            defaults.cases
        } else {
            256
        },
        rng_seed: match defaults.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0xA40_5EED),
            fixed => fixed,
        },
        // Shrunk failures are kept as the regression tests below, not in a file.
        failure_persistence: None,
        max_shrink_iters: 512,
        ..defaults
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn deliveries_respect_cancellation_reschedules_idempotency_and_quiet_hours(case in case()) {
        let violations = run(&case).violations;
        prop_assert!(violations.is_empty(), "{}", violations.join("\n"));
    }
}

// ---------------------------------------------------------------------------------
// Regressions: failures the property found (each shrunk, then trimmed by hand to the
// few operations that matter). All had one cause: a reminder queued while it was valid
// went to the provider later — after a retry, an open breaker or a clock jump — without
// being checked again against the appointment and the clock.

/// Runs a case that must hold every property, and returns what it left behind.
fn clean(case: Case) -> Outcome {
    let outcome = run(&case);
    assert!(
        outcome.violations.is_empty(),
        "{}\n{case:#?}",
        outcome.violations.join("\n")
    );
    outcome
}

fn single(base: usize, ops: Vec<Op>) -> Case {
    Case {
        base,
        offset_minutes: 0,
        appointments: 1,
        phones: 1,
        ops,
    }
}

fn timeout() -> Failure {
    Failure::Error {
        class: ErrorClass::Timeout,
        outcome_unknown: false,
    }
}

/// The reminders delivered, in order.
fn reminders(outcome: &Outcome) -> Vec<&Delivery> {
    outcome
        .deliveries
        .iter()
        .filter(|d| is_reminder(&d.message))
        .collect()
}

fn escalations(outcome: &Outcome, reason: &str) -> usize {
    outcome
        .store
        .escalations
        .iter()
        .filter(|e| e.reason == reason)
        .count()
}

/// Shrunk by proptest: the 48 h reminder's first attempt timed out at 10:00 in Berlin;
/// its retry, due a second later, was sent when the clock next moved — at 21:00
/// local, inside quiet hours. Now it is held until 08:00 the next morning.
#[test]
fn regression_a_retry_after_a_clock_jump_waits_for_quiet_hours_to_end() {
    // 2026-03-06 00:00 UTC; the appointment 2026-03-08 09:00 UTC (10:00 CET).
    let outcome = clean(single(
        0,
        vec![
            Op::Book {
                appt: 0,
                ahead_minutes: 57 * 60,
                zone: 2,
            },
            Op::Fail(vec![timeout()]),
            Op::Jump { minutes: 9 * 60 }, // 10:00 CET: the reminder fails
            Op::Jump { minutes: 11 * 60 }, // 21:00 CET: the retry is due
        ],
    ));
    let first = reminders(&outcome)[0];
    assert!(first.message.idempotency_key.contains(":reminder_48h:"));
    assert_eq!(
        first.at,
        Utc.with_ymd_and_hms(2026, 3, 7, 7, 0, 0).unwrap(),
        "08:00 CET the next morning"
    );
}

/// A 429 with `Retry-After: 40 min` on a reminder sent at 20:30 in New York: the retry
/// came due at 21:10 local — no clock jump needed.
#[test]
fn regression_a_rate_limited_retry_waits_for_quiet_hours_to_end() {
    // 2026-03-06 00:00 UTC; the appointment 2026-03-09 01:30 UTC (21:30 EDT on the 8th,
    // after the spring-forward); its 48 h reminder at 20:30 EST on the 6th.
    let outcome = clean(single(
        0,
        vec![
            Op::Book {
                appt: 0,
                ahead_minutes: 3 * 24 * 60 + 90,
                zone: 1,
            },
            Op::Fail(vec![Failure::Error {
                class: ErrorClass::RateLimited {
                    retry_after: Some(StdDuration::from_secs(40 * 60)),
                },
                outcome_unknown: false,
            }]),
            Op::Jump {
                minutes: 24 * 60 + 90,
            },
        ],
    ));
    let first = reminders(&outcome)[0];
    assert!(first.message.idempotency_key.contains(":reminder_48h:"));
    assert_eq!(
        first.at,
        Utc.with_ymd_and_hms(2026, 3, 7, 13, 0, 0).unwrap(),
        "08:00 EST the next morning"
    );
}

/// Shrunk by proptest: a reminder waiting for its retry was sent after staff had
/// cancelled the appointment.
#[test]
fn regression_a_pending_retry_is_not_sent_after_a_cancel() {
    let outcome = clean(single(
        0,
        vec![
            Op::Book {
                appt: 0,
                ahead_minutes: 60 * 60,
                zone: 0,
            },
            Op::Fail(vec![Failure::Error {
                class: ErrorClass::RateLimited { retry_after: None },
                outcome_unknown: false,
            }]),
            Op::Jump { minutes: 12 * 60 }, // the 48 h reminder fails
            Op::Cancel { appt: 0 },
        ],
    ));
    assert!(reminders(&outcome).is_empty());
    assert_eq!(escalations(&outcome, "delivery_failed"), 0, "not a failure");
}

/// Shrunk by proptest: a reminder waiting for its retry was sent after the booking
/// system had moved the appointment — for the old time.
#[test]
fn regression_a_pending_retry_is_not_sent_for_a_superseded_start() {
    let outcome = clean(single(
        0,
        vec![
            Op::Book {
                appt: 0,
                ahead_minutes: 60 * 60,
                zone: 0,
            },
            Op::Fail(vec![timeout()]),
            Op::Jump { minutes: 12 * 60 }, // the 48 h reminder fails
            Op::Book {
                appt: 0,
                ahead_minutes: 3 * 24 * 60,
                zone: 0,
            },
        ],
    ));
    // Only the new time's reminders went out.
    let start = outcome
        .store
        .appointments
        .values()
        .next()
        .expect("appt")
        .starts_at;
    let kinds: Vec<&str> = reminders(&outcome)
        .into_iter()
        .map(|d| d.message.idempotency_key.as_str())
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds
        .iter()
        .all(|k| k.ends_with(&format!(":{}", start.timestamp()))));
}

/// Shrunk by proptest: the unconfirmed-only 24 h reminder, waiting for its retry, was
/// sent after the customer had confirmed.
#[test]
fn regression_a_pending_24h_reminder_is_not_sent_once_confirmed() {
    let outcome = clean(single(
        0,
        vec![
            Op::Book {
                appt: 0,
                ahead_minutes: 36 * 60,
                zone: 0,
            },
            Op::Fail(vec![timeout()]),
            Op::Jump { minutes: 12 * 60 }, // the 24 h reminder fails
            Op::Confirm { appt: 0 },
        ],
    ));
    assert!(reminders(&outcome).is_empty());
}

/// Shrunk by proptest: a reminder waiting for its retry over a long clock jump was sent
/// after start − 2 h. Now it is recorded as missed and escalated (SPEC §4).
#[test]
fn regression_a_pending_retry_past_start_minus_2h_is_missed_and_escalated() {
    let outcome = clean(single(
        0,
        vec![
            Op::Book {
                appt: 0,
                ahead_minutes: 36 * 60,
                zone: 0,
            },
            Op::Fail(vec![timeout()]),
            Op::Jump { minutes: 12 * 60 }, // the 24 h reminder fails
            Op::Jump { minutes: 23 * 60 }, // 1 h before the start
        ],
    ));
    assert!(reminders(&outcome).is_empty());
    assert_eq!(escalations(&outcome, "reminder_missed"), 1);
}
