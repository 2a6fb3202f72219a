//! The inbox: inbound work is recorded before it is acknowledged, applied to its
//! appointment exactly once (marked processed in the same commit), applied after a
//! restart when the process died in between, retried when its actor panics, and
//! dead-lettered with an escalation when it keeps failing — never dropped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::inbox::{GetInboxStats, MAX_ATTEMPTS};
use actors::engine::Origin;
use actors::engine::{
    appointment_id_for, AppointmentCommand, ChangedBy, Engine, EngineOptions, EnginePorts,
    EngineSettings, InboxAccepted, InboxWork, InspectActor,
};
use actors::ports::clock::VirtualClock;
use actors::ports::ids::IdGen;
use actors::ports::store::{InboxAccept, InboxStatus, NewInbox, Store};
use actors::testing::fixtures::sample_booking;
use actors::testing::wait::{eventually, settle};
use actors::testing::{MemoryStore, ScriptedMessaging};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

/// Ids that panic on the calls the test arms (a fault in the middle of a decision):
/// after `skip` more calls, the next `panics_left` calls panic.
#[derive(Default)]
struct FaultyIds {
    skip: AtomicU32,
    panics_left: AtomicU32,
    next: AtomicU32,
}

impl FaultyIds {
    /// Lets the next call through (the inbox item's own id), then panics `n` times.
    fn arm(&self, n: u32) {
        self.skip.store(1, Ordering::SeqCst);
        self.panics_left.store(n, Ordering::SeqCst);
    }
}

impl IdGen for FaultyIds {
    fn new_id(&self) -> String {
        let skipped = self
            .skip
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let armed = !skipped
            && self
                .panics_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if armed {
            panic!("injected fault in the middle of a decision");
        }
        format!("id-{:08}", self.next.fetch_add(1, Ordering::SeqCst))
    }
}

fn start(store: &MemoryStore, ids: Arc<FaultyIds>) -> Engine {
    Engine::start(
        EnginePorts {
            store: Arc::new(store.clone()),
            clock: Arc::new(VirtualClock::new(t0())),
            ids,
            messaging: Arc::new(ScriptedMessaging::new()),
        },
        EngineSettings::default(),
        EngineOptions {
            messaging_rate_per_sec: 1000.0,
            idle_timeout: StdDuration::from_secs(60),
            ..EngineOptions::default()
        },
    )
}

fn book_work(external_id: &str) -> InboxWork {
    let booking = sample_booking(external_id, t0() + Duration::days(3));
    InboxWork {
        appointment_id: appointment_id_for(&booking.tenant_id, &booking.source, external_id),
        command: AppointmentCommand::Book(booking),
        origin: Origin::new(
            Some(format!("req-{external_id}")),
            format!("delivery-{external_id}"),
        ),
    }
}

fn confirm_work(appointment_id: &str) -> InboxWork {
    InboxWork {
        appointment_id: appointment_id.to_string(),
        command: AppointmentCommand::Transition {
            to: AppointmentStatus::Confirmed,
            by: ChangedBy::BookingSystem,
            reason: None,
        },
        // No cause named: the inbox item itself is the cause.
        origin: Origin::default(),
    }
}

fn inbox_status(store: &MemoryStore, dedup_key: &str) -> Option<InboxStatus> {
    store
        .snapshot()
        .inbox
        .values()
        .find(|r| r.item.dedup_key == dedup_key)
        .map(|r| r.status)
}

fn status_of(store: &MemoryStore, id: &str) -> Option<AppointmentStatus> {
    store.snapshot().appointments.get(id).map(|a| a.status)
}

#[actix_rt::test]
async fn accepted_work_is_applied_once_and_duplicates_change_nothing() {
    let store = MemoryStore::new();
    let engine = start(&store, Arc::default());
    let work = book_work("w1");
    let id = work.appointment_id.clone();

    let first = engine
        .submit("default", "booking", "d-1", work.clone())
        .await;
    assert_eq!(first, Ok(InboxAccept::Accepted));
    eventually("the booking is applied", || {
        inbox_status(&store, "d-1") == Some(InboxStatus::Processed)
    })
    .await;
    assert_eq!(status_of(&store, &id), Some(AppointmentStatus::Booked));
    // Its events name the request and the delivery that caused them.
    let created = store
        .snapshot()
        .events
        .into_iter()
        .find(|e| e.event_type == "appointment.booked")
        .expect("appointment.booked");
    assert_eq!(created.correlation_id.as_deref(), Some("req-w1"));
    assert_eq!(created.causation_id.as_deref(), Some("delivery-w1"));

    let again = engine.submit("default", "booking", "d-1", work).await;
    assert_eq!(again, Ok(InboxAccept::Duplicate));
    settle().await;
    let state = store.snapshot();
    assert_eq!(state.inbox.len(), 1, "a duplicate records nothing");
    let booked = state
        .events
        .iter()
        .filter(|e| e.event_type == "appointment.booked")
        .count();
    assert_eq!(booked, 1);
}

#[actix_rt::test]
async fn an_item_delivered_twice_takes_effect_once() {
    let store = MemoryStore::new();
    let engine = start(&store, Arc::default());
    let booking = book_work("w2");
    let id = booking.appointment_id.clone();
    engine
        .submit("default", "booking", "b-2", booking)
        .await
        .expect("submitted");
    let moved = t0() + Duration::days(4);
    let reschedule = InboxWork {
        appointment_id: id.clone(),
        command: AppointmentCommand::Reschedule {
            starts_at: moved,
            ends_at: moved + Duration::minutes(30),
            by: ChangedBy::BookingSystem,
        },
        origin: Origin::default(),
    };
    engine
        .submit("default", "booking", "r-2", reschedule)
        .await
        .expect("submitted");
    eventually("the reschedule is applied", || {
        inbox_status(&store, "r-2") == Some(InboxStatus::Processed)
    })
    .await;
    // The same stored item handed to the processor again (as a recovery read racing
    // the live path could): the store refuses to apply it a second time.
    let record = store
        .snapshot()
        .inbox
        .values()
        .find(|r| r.item.dedup_key == "r-2")
        .cloned()
        .expect("stored");
    let mut stale = record.clone();
    stale.status = InboxStatus::Pending;
    engine.inbox.do_send(InboxAccepted(stale));
    let mut stats = engine.inbox.send(GetInboxStats).await.expect("stats");
    for _ in 0..500 {
        if stats.applied == 3 {
            break;
        }
        settle().await;
        stats = engine.inbox.send(GetInboxStats).await.expect("stats");
    }
    assert_eq!(
        stats.applied, 3,
        "booking, reschedule, and the repeat found applied"
    );
    assert_eq!(stats.queued, 0);
    let state = store.snapshot();
    let rescheduled = state
        .events
        .iter()
        .filter(|e| e.event_type == "appointment.rescheduled")
        .count();
    assert_eq!(rescheduled, 1, "the reschedule took effect once");
    let customer = &state.appointments[&id].customer_id;
    assert_eq!(state.counters[customer].3, 1, "one reschedule counted");
}

#[actix_rt::test]
async fn work_acknowledged_before_a_crash_is_applied_at_the_next_start() {
    let store = MemoryStore::new();
    // Recorded (acknowledged) by a process that died before applying anything.
    for n in 0..3 {
        let work = book_work(&format!("c{n}"));
        let accepted = store
            .accept_inbox(NewInbox {
                id: format!("inbox-{n}"),
                tenant_id: "default".into(),
                source: "booking".into(),
                dedup_key: format!("c-{n}"),
                payload: serde_json::to_value(&work).expect("json"),
                received_at: t0(),
            })
            .await;
        assert_eq!(accepted, Ok(InboxAccept::Accepted));
    }
    let _engine = start(&store, Arc::default());
    eventually("every pending item is applied", || {
        let state = store.snapshot();
        state.appointments.len() == 3
            && state
                .inbox
                .values()
                .all(|r| r.status == InboxStatus::Processed)
    })
    .await;
}

#[actix_rt::test]
async fn a_panicking_actor_gets_the_item_again_from_committed_state() {
    let store = MemoryStore::new();
    let ids = Arc::new(FaultyIds::default());
    let engine = start(&store, ids.clone());
    let booking = book_work("p1");
    let id = booking.appointment_id.clone();
    engine
        .submit("default", "booking", "p-book", booking)
        .await
        .expect("submitted");
    eventually("booked", || status_of(&store, &id).is_some()).await;

    ids.arm(1);
    engine
        .submit("default", "booking", "p-confirm", confirm_work(&id))
        .await
        .expect("submitted");
    eventually("the retried item is applied", || {
        inbox_status(&store, "p-confirm") == Some(InboxStatus::Processed)
    })
    .await;
    assert_eq!(status_of(&store, &id), Some(AppointmentStatus::Confirmed));
    let view = engine
        .directory
        .send(InspectActor(id))
        .await
        .expect("mailbox")
        .expect("inspect");
    assert_eq!(
        view.actor.restarts, 1,
        "restarted once, from committed state"
    );
}

#[actix_rt::test]
async fn an_item_that_keeps_failing_is_dead_lettered_and_escalated() {
    let store = MemoryStore::new();
    let ids = Arc::new(FaultyIds::default());
    let engine = start(&store, ids.clone());
    let booking = book_work("p2");
    let id = booking.appointment_id.clone();
    engine
        .submit("default", "booking", "k-book", booking)
        .await
        .expect("submitted");
    eventually("booked", || status_of(&store, &id).is_some()).await;
    let events_before = store.snapshot().events.len();

    // Every attempt panics (then the ids work again, for the escalation).
    ids.arm(MAX_ATTEMPTS);
    engine
        .submit("default", "booking", "k-confirm", confirm_work(&id))
        .await
        .expect("submitted");
    eventually("dead-lettered", || {
        inbox_status(&store, "k-confirm") == Some(InboxStatus::Dead)
    })
    .await;
    ids.panics_left.store(0, Ordering::SeqCst);
    let state = store.snapshot();
    assert_eq!(state.appointments[&id].status, AppointmentStatus::Booked);
    assert_eq!(state.events.len(), events_before, "nothing half-written");
    let escalation = state
        .escalations
        .iter()
        .find(|e| e.reason == "inbound_failed")
        .expect("an escalation for staff");
    assert_eq!(escalation.priority, "high");
    assert_eq!(escalation.appointment_id.as_deref(), Some(id.as_str()));
    let row = state
        .inbox
        .values()
        .find(|r| r.item.dedup_key == "k-confirm")
        .expect("kept");
    assert!(row
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("attempts failed"));
}

#[actix_rt::test]
async fn refused_work_is_recorded_as_rejected_and_changes_nothing() {
    let store = MemoryStore::new();
    let engine = start(&store, Arc::default());
    // Confirming an appointment nobody booked.
    engine
        .submit("default", "booking", "x-1", confirm_work("nobody"))
        .await
        .expect("submitted");
    eventually("rejected", || {
        inbox_status(&store, "x-1") == Some(InboxStatus::Rejected)
    })
    .await;
    let state = store.snapshot();
    assert!(state.appointments.is_empty());
    assert!(state.events.is_empty());
}
