//! The engine end to end on a virtual clock, with the in-memory store and a scripted
//! messaging provider: booking → timers → reminders → provider, confirmation,
//! reschedule, lifecycle timers, restarts, panics and quiet hours.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::{
    appointment_id_for, AppointmentCommand, Booking, ChangedBy, Engine, EngineError, EngineOptions,
    EnginePorts, EngineSettings,
};
use actors::ports::clock::{Clock, VirtualClock};
use actors::ports::ids::{IdGen, UuidV7};
use actors::ports::store::{OutboxStatus, TimerStatus};
use actors::testing::fixtures::sample_booking;
use actors::testing::wait::{eventually, settle};
use actors::testing::{MemoryStore, ScriptedMessaging};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn t0() -> DateTime<Utc> {
    // A Monday, 10:00 UTC.
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

struct Harness {
    engine: Engine,
    store: MemoryStore,
    clock: VirtualClock,
    provider: ScriptedMessaging,
}

fn settings() -> EngineSettings {
    EngineSettings {
        quiet_hours: None,
        ..EngineSettings::default()
    }
}

fn start_with(
    store: MemoryStore,
    clock: VirtualClock,
    settings: EngineSettings,
    ids: Arc<dyn IdGen>,
) -> Harness {
    let provider = ScriptedMessaging::reminders_only();
    let engine = Engine::start(
        EnginePorts {
            store: Arc::new(store.clone()),
            clock: Arc::new(clock.clone()),
            ids,
            messaging: Arc::new(provider.clone()),
        },
        settings,
        EngineOptions {
            messaging_rate_per_sec: 1000.0,
            idle_timeout: StdDuration::from_millis(200),
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

fn start() -> Harness {
    start_with(
        MemoryStore::new(),
        VirtualClock::new(t0()),
        settings(),
        Arc::new(UuidV7),
    )
}

fn booking(external_id: &str, starts_at: DateTime<Utc>) -> Booking {
    sample_booking(external_id, starts_at)
}

impl Harness {
    async fn advance_to(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        settle().await;
    }

    /// The reminders the provider accepted (these tests are about them; other kinds
    /// are covered by the decision tests and the end-to-end suite).
    fn reminders(&self) -> Vec<actors::ports::providers::OutboundMessage> {
        self.provider
            .delivered()
            .into_iter()
            .filter(|m| m.idempotency_key.contains(":reminder_"))
            .collect()
    }

    fn sent_kinds(&self) -> Vec<String> {
        self.reminders()
            .iter()
            .map(|m| {
                m.idempotency_key
                    .split(':')
                    .nth(1)
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }
}

#[actix_rt::test]
async fn booking_schedules_reminders_and_lifecycle_and_sends_on_time() {
    let h = start();
    let starts = t0() + Duration::days(3);
    let record = h
        .engine
        .book(booking("b1", starts))
        .await
        .expect("booked")
        .expect("state");
    assert_eq!(record.status, AppointmentStatus::Booked);
    assert_eq!(record.id, appointment_id_for("default", "booking", "b1"));
    let timers = h.store.snapshot().timers;
    let kinds: Vec<&str> = timers.values().map(|t| t.spec.kind.as_str()).collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    for kind in [
        "reminder_48h",
        "reminder_24h",
        "unconfirmed_check",
        "lifecycle_start",
        "lifecycle_complete",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }

    // The booking confirmation goes at once.
    eventually("booking confirmation sent", || {
        h.provider
            .others()
            .iter()
            .any(|m| m.idempotency_key == format!("{}:booking_confirmation", record.id))
    })
    .await;
    // Nothing before its time.
    h.advance_to(starts - Duration::hours(48) - Duration::seconds(1))
        .await;
    assert!(h.reminders().is_empty());
    // The 48 h reminder, once.
    h.advance_to(starts - Duration::hours(48)).await;
    eventually("48h reminder sent", || h.reminders().len() == 1).await;
    assert_eq!(h.sent_kinds(), vec!["reminder_48h"]);
    assert_eq!(h.reminders()[0].to, "+15551230001");
    assert!(h.reminders()[0].body.contains("Reply STOP"));
    // Still unconfirmed at 24 h: the urgent reminder too.
    h.advance_to(starts - Duration::hours(24)).await;
    eventually("24h reminder sent", || h.reminders().len() == 2).await;
    // Start and end: in progress, then completed at end + 2 h.
    h.advance_to(starts).await;
    eventually("in progress", || {
        h.store.snapshot().appointments[&record.id].status == AppointmentStatus::InProgress
    })
    .await;
    h.advance_to(starts + Duration::minutes(30) + Duration::hours(2))
        .await;
    eventually("completed", || {
        h.store.snapshot().appointments[&record.id].status == AppointmentStatus::Completed
    })
    .await;
    settle().await;
    assert_eq!(h.provider.calls(), 2, "no message sent twice");
    let state = h.store.snapshot();
    assert!(state
        .outbox
        .values()
        .all(|o| o.status == OutboxStatus::Done));
    let types: Vec<&str> = state.events.iter().map(|e| e.event_type.as_str()).collect();
    assert!(types.contains(&"message.sent"), "{types:?}");
    assert!(types.contains(&"appointment.completed"), "{types:?}");
}

#[actix_rt::test]
async fn confirmation_cancels_the_24h_reminder() {
    let h = start();
    let starts = t0() + Duration::days(3);
    let id = h
        .engine
        .book(booking("b2", starts))
        .await
        .expect("booked")
        .expect("state")
        .id;
    h.advance_to(starts - Duration::hours(48)).await;
    eventually("48h reminder", || h.reminders().len() == 1).await;
    h.engine
        .route(
            id.clone(),
            AppointmentCommand::Transition {
                to: AppointmentStatus::Confirmed,
                by: ChangedBy::Customer,
                reason: None,
            },
        )
        .await
        .expect("confirmed");
    h.advance_to(starts - Duration::hours(3)).await;
    settle().await;
    assert_eq!(
        h.sent_kinds(),
        vec!["reminder_48h"],
        "no 24 h reminder once confirmed"
    );
    let timer = h
        .store
        .snapshot()
        .timers
        .into_values()
        .find(|t| t.spec.kind == "reminder_24h")
        .expect("24h timer row");
    assert_eq!(timer.status, TimerStatus::Cancelled);
}

#[actix_rt::test]
async fn invalid_transition_is_rejected_and_changes_nothing() {
    let h = start();
    let starts = t0() + Duration::days(3);
    let id = h
        .engine
        .book(booking("b3", starts))
        .await
        .expect("booked")
        .expect("state")
        .id;
    let before = h.store.snapshot();
    let err = h
        .engine
        .route(
            id,
            AppointmentCommand::Transition {
                to: AppointmentStatus::Completed,
                by: ChangedBy::Staff("ann".into()),
                reason: None,
            },
        )
        .await
        .expect_err("booked → completed is not allowed");
    assert!(matches!(err, EngineError::InvalidTransition(_)), "{err:?}");
    let after = h.store.snapshot();
    assert_eq!(before.appointments, after.appointments);
    assert_eq!(before.events.len(), after.events.len());
    assert_eq!(before.commits, after.commits);
}

#[actix_rt::test]
async fn booking_30h_ahead_skips_the_48h_reminder_and_1h_ahead_gets_none() {
    let h = start();
    h.engine
        .book(booking("soon", t0() + Duration::hours(30)))
        .await
        .expect("booked");
    h.engine
        .book(booking("now", t0() + Duration::hours(1)))
        .await
        .expect("booked");
    let kinds: Vec<String> = h
        .store
        .snapshot()
        .timers
        .values()
        .filter(|t| t.spec.kind.starts_with("reminder"))
        .map(|t| t.spec.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        vec!["reminder_24h".to_string()],
        "only the 30 h booking's 24 h reminder"
    );
}

#[actix_rt::test]
async fn reschedule_moves_reminders_and_never_sends_for_the_old_time() {
    let h = start();
    let first = t0() + Duration::days(3);
    h.engine.book(booking("r1", first)).await.expect("booked");
    h.advance_to(first - Duration::hours(48)).await;
    eventually("first 48h reminder", || h.reminders().len() == 1).await;
    // The booking system moves it two days later.
    let second = first + Duration::days(2);
    let moved = h
        .engine
        .book(booking("r1", second))
        .await
        .expect("moved")
        .expect("state");
    assert_eq!(moved.starts_at, second);
    assert_eq!(moved.status, AppointmentStatus::Booked);
    // The old 24 h moment passes: nothing.
    h.advance_to(first - Duration::hours(24)).await;
    settle().await;
    assert_eq!(h.reminders().len(), 1);
    // The new times: 48 h and 24 h before the new start.
    h.advance_to(second - Duration::hours(48)).await;
    eventually("new 48h reminder", || h.reminders().len() == 2).await;
    h.advance_to(second - Duration::hours(24)).await;
    eventually("new 24h reminder", || h.reminders().len() == 3).await;
    let keys: Vec<String> = h
        .provider
        .delivered()
        .into_iter()
        .map(|m| m.idempotency_key)
        .collect();
    let mut unique = keys.clone();
    unique.dedup();
    assert_eq!(keys, unique);
    assert!(keys[1].ends_with(&second.timestamp().to_string()));
}

#[actix_rt::test]
async fn timers_survive_a_restart_and_overdue_ones_follow_the_catch_up_rule() {
    let store = MemoryStore::new();
    let clock = VirtualClock::new(t0());
    let starts_a = t0() + Duration::days(3);
    let starts_b = t0() + Duration::hours(26);
    {
        let h = start_with(store.clone(), clock.clone(), settings(), Arc::new(UuidV7));
        h.engine.book(booking("a", starts_a)).await.expect("booked");
        h.engine.book(booking("b", starts_b)).await.expect("booked");
        // The daemon goes down here.
        h.engine.shutdown().await;
    }
    // Downtime: we come back 1 h after a's 48 h reminder time (still before start − 2 h:
    // it is sent) and after b's 24 h reminder time and b's start − 2 h (missed and
    // escalated). b was booked 26 h ahead, so it never had a 48 h reminder.
    let back = starts_a - Duration::hours(47);
    clock.set(back);
    assert!(back > starts_b - Duration::hours(2));
    let h = start_with(store.clone(), clock.clone(), settings(), Arc::new(UuidV7));
    eventually("a's overdue 48h reminder sent", || h.reminders().len() == 1).await;
    eventually("b's reminders recorded missed", || {
        store
            .snapshot()
            .timers
            .values()
            .filter(|t| t.spec.kind.starts_with("reminder") && t.status == TimerStatus::Missed)
            .count()
            == 1
    })
    .await;
    let reasons: Vec<String> = store
        .snapshot()
        .escalations
        .iter()
        .map(|e| e.reason.clone())
        .collect();
    // b, still unconfirmed 6 h before its start, is escalated too.
    let mut reasons = reasons;
    reasons.sort();
    assert_eq!(reasons, vec!["reminder_missed", "unconfirmed_before_start"]);
    settle().await;
    assert_eq!(h.reminders().len(), 1);
}

/// An id generator that panics once, on its first call after being armed.
struct PanicOnce {
    armed: AtomicBool,
}

impl IdGen for PanicOnce {
    fn new_id(&self) -> String {
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("injected fault in the middle of a decision");
        }
        uuid::Uuid::now_v7().to_string()
    }
}

#[actix_rt::test]
async fn a_panicking_actor_restarts_from_committed_state() {
    let ids = Arc::new(PanicOnce {
        armed: AtomicBool::new(false),
    });
    let h = start_with(
        MemoryStore::new(),
        VirtualClock::new(t0()),
        settings(),
        ids.clone(),
    );
    let starts = t0() + Duration::days(3);
    let id = h
        .engine
        .book(booking("p1", starts))
        .await
        .expect("booked")
        .expect("state")
        .id;
    let commits = h.store.snapshot().commits;
    ids.armed.store(true, Ordering::SeqCst);
    let confirm = || AppointmentCommand::Transition {
        to: AppointmentStatus::Confirmed,
        by: ChangedBy::Customer,
        reason: None,
    };
    let err = h
        .engine
        .route(id.clone(), confirm())
        .await
        .expect_err("the decision panicked");
    assert_eq!(
        err,
        EngineError::ActorUnavailable,
        "a retryable error, not silence"
    );
    assert_eq!(h.store.snapshot().commits, commits, "nothing half-written");
    // The same message, retried, succeeds against the restarted actor.
    let state = h
        .engine
        .route(id.clone(), confirm())
        .await
        .expect("retried")
        .expect("state");
    assert_eq!(state.status, AppointmentStatus::Confirmed);
    let snapshot = h
        .engine
        .directory
        .send(actors::engine::InspectActor(id))
        .await
        .expect("mailbox")
        .expect("inspect");
    assert_eq!(snapshot.actor.restarts, 1);
}

#[actix_rt::test]
async fn idle_actors_are_passivated_and_reactivated_on_demand() {
    let h = start();
    let starts = t0() + Duration::days(3);
    let id = h
        .engine
        .book(booking("idle", starts))
        .await
        .expect("booked")
        .expect("state")
        .id;
    let live = h
        .engine
        .directory
        .send(actors::engine::ListActors)
        .await
        .expect("list");
    assert_eq!(live.len(), 1);
    eventually_async_empty(&h).await;
    let state = h
        .engine
        .route(
            id,
            AppointmentCommand::Transition {
                to: AppointmentStatus::Confirmed,
                by: ChangedBy::Staff("ann".into()),
                reason: None,
            },
        )
        .await
        .expect("reactivated")
        .expect("state");
    assert_eq!(
        state.status,
        AppointmentStatus::Confirmed,
        "state reloaded from the store"
    );
}

async fn eventually_async_empty(h: &Harness) {
    let deadline = Instant::now() + StdDuration::from_secs(5);
    loop {
        let live = h
            .engine
            .directory
            .send(actors::engine::ListActors)
            .await
            .expect("list");
        if live.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "actor never passivated");
        actix_rt::time::sleep(StdDuration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn a_reminder_due_in_quiet_hours_moves_out_of_them() {
    // Quiet 21:00–08:00 in New York. Start Thursday 2026-03-05 21:30 New York
    // (= 02:30 UTC on the 6th), so the 48 h reminder falls at 21:30 local: quiet.
    let settings = EngineSettings::default();
    let clock = VirtualClock::new(t0());
    let h = start_with(MemoryStore::new(), clock, settings, Arc::new(UuidV7));
    let starts = Utc.with_ymd_and_hms(2026, 3, 6, 2, 30, 0).unwrap();
    h.engine.book(booking("q1", starts)).await.expect("booked");
    let due = starts - Duration::hours(48);
    h.advance_to(due).await;
    settle().await;
    assert!(h.reminders().is_empty(), "nothing inside quiet hours");
    let moved = h
        .store
        .snapshot()
        .timers
        .into_values()
        .find(|t| t.spec.kind == "reminder_48h")
        .expect("timer");
    assert_eq!(moved.status, TimerStatus::Scheduled);
    // The nearest allowed time is 20:59 local the same evening (before quiet began),
    // already past; so the next one: 08:00 local the next morning = 13:00 UTC.
    assert_eq!(
        moved.spec.due_at,
        Utc.with_ymd_and_hms(2026, 3, 4, 13, 0, 0).unwrap()
    );
    h.advance_to(moved.spec.due_at).await;
    eventually("sent at 08:00 local", || h.reminders().len() == 1).await;
    let _ = h.clock.now();
}
