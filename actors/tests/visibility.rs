//! The visibility primitives the admin API is built on: live actors with their status
//! and mailbox depth; one appointment's state, pending timers and workflows; the
//! messaging supervisor's breaker, tokens and queue depth.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::{
    AppointmentCommand, Booking, ChangedBy, Engine, EngineOptions, EnginePorts, EngineSettings,
    InspectActor, ListActors,
};
use actors::ports::clock::VirtualClock;
use actors::ports::ids::UuidV7;
use actors::ports::providers::ProviderError;
use actors::resilience::backoff::ErrorClass;
use actors::resilience::breaker::BreakerState;
use actors::supervisors::messaging::GetSnapshot;
use actors::testing::fixtures::sample_booking;
use actors::testing::wait::eventually;
use actors::testing::{MemoryStore, ScriptedMessaging};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn booking(external_id: &str, starts_at: DateTime<Utc>) -> Booking {
    sample_booking(external_id, starts_at)
}

#[actix_rt::test]
async fn actors_appointments_and_supervisors_can_be_inspected() {
    let store = MemoryStore::new();
    let clock = VirtualClock::new(t0());
    let provider = ScriptedMessaging::reminders_only();
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
            idle_timeout: StdDuration::from_secs(60),
            ..EngineOptions::default()
        },
    );
    let starts = t0() + Duration::days(3);
    let a = engine
        .book(booking("a", starts))
        .await
        .expect("book")
        .expect("state");
    let b = engine
        .book(booking("bb", starts))
        .await
        .expect("book")
        .expect("state");
    engine
        .route(
            b.id.clone(),
            AppointmentCommand::Transition {
                to: AppointmentStatus::Confirmed,
                by: ChangedBy::Staff("ann".into()),
                reason: None,
            },
        )
        .await
        .expect("confirmed");

    let live = engine.directory.send(ListActors).await.expect("list");
    let mut seen: Vec<(String, Option<AppointmentStatus>, usize)> = live
        .into_iter()
        .map(|l| (l.appointment_id, l.status, l.in_flight))
        .collect();
    seen.sort();
    let mut expected = vec![
        (a.id.clone(), Some(AppointmentStatus::Booked), 0),
        (b.id.clone(), Some(AppointmentStatus::Confirmed), 0),
    ];
    expected.sort();
    assert_eq!(seen, expected);

    let view = engine
        .directory
        .send(InspectActor(a.id.clone()))
        .await
        .expect("mailbox")
        .expect("view");
    assert_eq!(
        view.actor.state.as_ref().map(|s| s.status),
        Some(AppointmentStatus::Booked)
    );
    let mut kinds: Vec<String> = view
        .pending_timers
        .iter()
        .map(|t| t.spec.kind.clone())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "lifecycle_complete",
            "lifecycle_start",
            "reminder_24h",
            "reminder_48h",
            "unconfirmed_check"
        ]
    );
    assert!(view
        .pending_timers
        .windows(2)
        .all(|w| w[0].spec.due_at <= w[1].spec.due_at));

    // Provider failing: the supervisor shows retries queued and then an open breaker.
    for _ in 0..5 {
        provider.push(Err(ProviderError {
            class: ErrorClass::ServerError,
            message: "HTTP 503".into(),
            outcome_unknown: false,
        }));
    }
    let idle = engine.messaging.send(GetSnapshot).await.expect("snapshot");
    assert_eq!(
        (idle.breaker, idle.queue_depth, idle.in_flight),
        (BreakerState::Closed, 0, 0)
    );
    clock.set(starts - Duration::hours(48));
    eventually("both reminders attempted", || provider.calls() >= 2).await;
    let busy = engine.messaging.send(GetSnapshot).await.expect("snapshot");
    assert_eq!(busy.queue_depth, 2, "both 48 h reminders wait for a retry");
    assert!(busy.tokens < 10.0);
    assert_eq!(busy.retried, 2, "each tried once so far: {busy:?}");
    assert_eq!(
        provider.calls(),
        2,
        "a row is never sent again before its outcome is recorded"
    );
}
