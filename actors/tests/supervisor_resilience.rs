//! The messaging supervisor on a virtual clock: jittered, bounded retries of retryable
//! errors; the dead-letter queue when attempts run out; the circuit breaker opening on
//! provider failures, deferring work while open, probing when half-open and closing
//! after successes — with its state persisted.

use std::sync::Arc;

use actors::engine::{Booking, CustomerInfo, Engine, EngineOptions, EnginePorts, EngineSettings};
use actors::ports::clock::{Clock, VirtualClock};
use actors::ports::ids::UuidV7;
use actors::ports::providers::ProviderError;
use actors::ports::store::{OutboxStatus, ProviderDomain};
use actors::resilience::backoff::ErrorClass;
use actors::resilience::breaker::BreakerState;
use actors::supervisors::messaging::{GetSnapshot, ReplayDeadLetter};
use actors::testing::wait::{eventually, settle};
use actors::testing::{MemoryStore, ScriptedMessaging};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn server_error() -> Result<(), ProviderError> {
    Err(ProviderError {
        class: ErrorClass::ServerError,
        message: "HTTP 500".into(),
        outcome_unknown: false,
    })
}

struct Harness {
    engine: Engine,
    store: MemoryStore,
    clock: VirtualClock,
    provider: ScriptedMessaging,
}

fn start(store: MemoryStore, clock: VirtualClock, provider: ScriptedMessaging) -> Harness {
    let engine = Engine::start(
        EnginePorts {
            store: Arc::new(store.clone()),
            clock: Arc::new(clock.clone()),
            ids: Arc::new(UuidV7),
            messaging: Arc::new(provider.clone()),
        },
        EngineSettings {
            quiet_hours: None,
            ..EngineSettings::default()
        },
        EngineOptions {
            messaging_rate_per_sec: 1000.0,
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

async fn book(h: &Harness, external_id: &str, starts_at: DateTime<Utc>, phone: &str) {
    h.engine
        .book(Booking {
            tenant_id: "default".into(),
            source: "booking".into(),
            external_id: external_id.into(),
            starts_at,
            ends_at: starts_at + Duration::minutes(30),
            timezone: Some("UTC".into()),
            service_type: None,
            cancel_url: None,
            reschedule_url: None,
            service_cost_cents: None,
            customer: CustomerInfo {
                phone_e164: Some(phone.into()),
                name: None,
                email: None,
                timezone: None,
            },
        })
        .await
        .expect("booked");
}

async fn breaker(h: &Harness) -> BreakerState {
    h.engine
        .messaging
        .send(GetSnapshot)
        .await
        .expect("snapshot")
        .breaker
}

#[actix_rt::test]
async fn retries_are_jittered_and_bounded_then_dead_lettered() {
    let provider = ScriptedMessaging::reminders_only();
    for _ in 0..5 {
        provider.push(server_error());
    }
    let h = start(MemoryStore::new(), VirtualClock::new(t0()), provider);
    let starts = t0() + Duration::days(3);
    book(&h, "x1", starts, "+15550000001").await;
    h.clock.set(starts - Duration::hours(48));
    eventually("first attempt", || h.provider.calls() == 1).await;

    let mut delays = Vec::new();
    for attempt in 1..5 {
        eventually("retry recorded", || {
            h.store
                .snapshot()
                .outbox
                .values()
                .any(|o| o.attempts == attempt && o.status == OutboxStatus::Pending)
        })
        .await;
        let row = h
            .store
            .snapshot()
            .outbox
            .into_values()
            .find(|o| o.item.kind.starts_with("reminder"))
            .expect("row");
        let delay = row.next_attempt_at - h.clock.now();
        let cap = (500_i64 << (attempt - 1)).min(30_000);
        assert!(
            delay >= Duration::milliseconds(500) && delay <= Duration::milliseconds(cap),
            "attempt {attempt}: delay {delay} outside [0.5 s, {cap} ms]"
        );
        delays.push(delay);
        h.clock.set(row.next_attempt_at);
        eventually("next attempt", || {
            h.provider.calls() == attempt as usize + 1
        })
        .await;
    }
    eventually("dead-lettered", || {
        !h.store.snapshot().dead_letters.is_empty()
    })
    .await;
    let state = h.store.snapshot();
    assert_eq!(
        state
            .outbox
            .values()
            .find(|o| o.item.kind.starts_with("reminder"))
            .expect("row")
            .status,
        OutboxStatus::Dead
    );
    assert!(state
        .escalations
        .iter()
        .any(|e| e.reason == "delivery_failed"));
    assert_eq!(h.provider.delivered().len(), 0);
    assert_eq!(h.provider.calls(), 5, "exactly the policy's 5 attempts");
    // Five provider failures inside 5 minutes also opened the breaker.
    assert_eq!(breaker(&h).await, BreakerState::Open);

    // The provider is healthy again; staff replay the dead letter. It waits out the
    // open breaker (deferred, then a half-open probe) and is delivered once.
    let outbox_id = state
        .outbox
        .values()
        .find(|o| o.status == OutboxStatus::Dead)
        .expect("the dead row")
        .item
        .id
        .clone();
    let replayed = h
        .engine
        .messaging
        .send(ReplayDeadLetter(outbox_id.clone()))
        .await
        .expect("mailbox");
    assert_eq!(replayed, Ok(true));
    assert!(h.store.snapshot().dead_letters.is_empty());
    h.clock.advance(Duration::minutes(6));
    eventually("the replayed message is delivered", || {
        h.provider.delivered().len() == 1
    })
    .await;
    eventually("recorded as done", || {
        h.store.snapshot().outbox[&outbox_id].status == OutboxStatus::Done
    })
    .await;
    // Only a dead letter can be replayed.
    let again = h
        .engine
        .messaging
        .send(ReplayDeadLetter(outbox_id))
        .await
        .expect("mailbox");
    assert_eq!(again, Ok(false));
    assert_eq!(h.provider.delivered().len(), 1);
}

#[actix_rt::test]
async fn breaker_opens_defers_probes_and_closes() {
    let provider = ScriptedMessaging::reminders_only();
    for _ in 0..5 {
        provider.push(server_error());
    }
    let store = MemoryStore::new();
    let h = start(store.clone(), VirtualClock::new(t0()), provider);
    let starts = t0() + Duration::days(3);
    for i in 0..6 {
        book(&h, &format!("b{i}"), starts, &format!("+1555000010{i}")).await;
    }
    let opened_at = starts - Duration::hours(48);
    h.clock.set(opened_at);
    eventually("five failures", || h.provider.calls() >= 5).await;
    settle().await;
    assert_eq!(breaker(&h).await, BreakerState::Open);
    let calls_when_open = h.provider.calls();
    // All six went out together while the breaker was still closed: five failed.
    assert_eq!(calls_when_open, 6);
    assert_eq!(h.provider.delivered().len(), 1);

    // No calls while open, even as retries come due.
    h.clock.set(opened_at + Duration::seconds(59));
    settle().await;
    assert_eq!(h.provider.calls(), calls_when_open);
    assert!(
        store
            .snapshot()
            .escalations
            .iter()
            .any(|e| e.reason == "messaging_unavailable"),
        "staff are told"
    );
    // The breaker's state is persisted.
    let saved =
        store.snapshot().breakers[&("default".to_string(), ProviderDomain::Messaging)].clone();
    assert_eq!(saved.state, BreakerState::Open, "{saved:?}");

    // After 60 s it is half-open; the work deferred at +59 s comes due 5 min later:
    // successes close it and everything flows.
    h.clock
        .set(opened_at + Duration::seconds(59) + Duration::minutes(5) + Duration::seconds(1));
    eventually("all six delivered", || h.provider.delivered().len() == 6).await;
    assert_eq!(breaker(&h).await, BreakerState::Closed);
    assert_eq!(
        h.provider.calls(),
        11,
        "5 failures + 6 successes, nothing twice"
    );
}

#[actix_rt::test]
async fn breaker_state_is_restored_at_start() {
    let provider = ScriptedMessaging::reminders_only();
    for _ in 0..5 {
        provider.push(server_error());
    }
    let store = MemoryStore::new();
    let clock = VirtualClock::new(t0());
    let starts = t0() + Duration::days(3);
    {
        let h = start(store.clone(), clock.clone(), provider);
        for i in 0..5 {
            book(&h, &format!("s{i}"), starts, &format!("+1555000020{i}")).await;
        }
        h.clock.set(starts - Duration::hours(48));
        eventually("five failures", || h.provider.calls() == 5).await;
        settle().await;
        assert_eq!(breaker(&h).await, BreakerState::Open);
        h.engine.shutdown().await;
    }
    // A new process (same store) starts with the breaker open.
    let h = start(store, clock, ScriptedMessaging::reminders_only());
    settle().await;
    assert_eq!(breaker(&h).await, BreakerState::Open);
    assert_eq!(h.provider.calls(), 0);
}
