//! The SPEC §3 lifecycle table, enforced by the running engine (not just by
//! `AppointmentStatus`): for every (from, to) pair of statuses, an appointment is
//! brought into `from` through the real `Engine` (in-memory store, virtual clock,
//! scripted messaging) and sent `Transition { to }`. Allowed pairs succeed and store
//! `to`; every other pair answers `EngineError::InvalidTransition` and leaves the store
//! exactly as it was (state, events, timers, outbox, escalations, commit count).
//!
//! How each `from` is reached:
//! - `booked`: the booking itself;
//! - `confirmed`, `no_show`, `cancelled`: one `Transition` from booked;
//! - `in_progress`: both ways the engine gets there — a `Transition` from booked, and
//!   the lifecycle timer firing when the virtual clock reaches the start;
//! - `completed`: booked → in_progress → completed by transitions;
//! - `rescheduled`: the engine's `Reschedule` command (and a booking update with a new
//!   time) never leaves an appointment in `rescheduled`: it commits booked/confirmed →
//!   rescheduled → booked as one change, so the transient state is never stored that
//!   way. The only way to *store* `rescheduled` is an explicit
//!   `Transition { to: Rescheduled }`, which the engine accepts from booked and
//!   confirmed (the table allows it); that is how this test reaches it.
//!
//! A second matrix checks the `Reschedule` command against the same table: it is the
//! move "from → rescheduled → booked", so it must succeed exactly where from →
//! rescheduled is allowed, or — for an appointment parked in `rescheduled` — where
//! rescheduled → booked is (SPEC §3: "the booking system reports a new time, or staff
//! move it"), and otherwise change nothing.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use actors::domain::appointment_status::AppointmentStatus::{self, *};
use actors::engine::{
    AppointmentCommand, Booking, ChangedBy, Engine, EngineError, EngineOptions, EnginePorts,
    EngineSettings,
};
use actors::ports::clock::VirtualClock;
use actors::ports::ids::UuidV7;
use actors::testing::fixtures::sample_booking;
use actors::testing::memory_store::MemoryState;
use actors::testing::wait::{eventually, settle};
use actors::testing::{MemoryStore, ScriptedMessaging};
use chrono::{DateTime, Duration, TimeZone, Utc};

/// SPEC §3, written out independently of `AppointmentStatus::can_transition_to`.
const ALLOWED: &[(AppointmentStatus, AppointmentStatus)] = &[
    (Booked, Confirmed),
    (Booked, Rescheduled),
    (Booked, Cancelled),
    (Booked, NoShow),
    (Booked, InProgress),
    (Confirmed, Rescheduled),
    (Confirmed, Cancelled),
    (Confirmed, InProgress),
    (Confirmed, NoShow),
    (Rescheduled, Booked),
    (InProgress, Completed),
    (InProgress, NoShow),
];

fn allowed(from: AppointmentStatus, to: AppointmentStatus) -> bool {
    ALLOWED.contains(&(from, to))
}

fn t0() -> DateTime<Utc> {
    // A Monday, 10:00 UTC.
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

struct Harness {
    engine: Engine,
    store: MemoryStore,
    clock: VirtualClock,
}

fn start() -> Harness {
    let store = MemoryStore::new();
    let clock = VirtualClock::new(t0());
    let engine = Engine::start(
        EnginePorts {
            store: Arc::new(store.clone()),
            clock: Arc::new(clock.clone()),
            ids: Arc::new(UuidV7),
            messaging: Arc::new(ScriptedMessaging::new()),
        },
        EngineSettings::default(),
        EngineOptions {
            messaging_rate_per_sec: 1000.0,
            idle_timeout: StdDuration::from_secs(60),
            ..EngineOptions::default()
        },
    );
    Harness {
        engine,
        store,
        clock,
    }
}

fn booking(starts_at: DateTime<Utc>) -> Booking {
    sample_booking("m1", starts_at)
}

fn transition(to: AppointmentStatus) -> AppointmentCommand {
    AppointmentCommand::Transition {
        to,
        by: ChangedBy::Staff("ann".into()),
        reason: None,
    }
}

/// How the appointment gets into its starting state.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    /// Transitions only (the clock stays at t0, three days before the start).
    Commands,
    /// `in_progress` by the lifecycle timer: the clock is moved to the start.
    Clock,
}

impl Harness {
    async fn route(
        &self,
        id: &str,
        command: AppointmentCommand,
    ) -> Result<Option<actors::ports::store::AppointmentRecord>, EngineError> {
        self.engine.route(id.to_string(), command).await
    }

    async fn must(&self, id: &str, to: AppointmentStatus) {
        let record = self
            .route(id, transition(to))
            .await
            .unwrap_or_else(|e| panic!("setting up: transition to {to} failed: {e:?}"))
            .expect("a state");
        assert_eq!(record.status, to, "setting up");
    }

    /// Books an appointment and brings it into `from`; returns its id and start.
    async fn reach(&self, from: AppointmentStatus, via: Via) -> (String, DateTime<Utc>) {
        let starts = match via {
            Via::Commands => t0() + Duration::days(3),
            // Booked 1 h ahead: no reminders, only the lifecycle timers.
            Via::Clock => t0() + Duration::hours(1),
        };
        let id = self
            .engine
            .book(booking(starts))
            .await
            .expect("booked")
            .expect("state")
            .id;
        match (from, via) {
            (Booked, _) => {}
            (Confirmed | Rescheduled | NoShow | Cancelled, Via::Commands) => {
                self.must(&id, from).await
            }
            (InProgress, Via::Commands) => self.must(&id, InProgress).await,
            (InProgress, Via::Clock) => {
                self.clock.set(starts);
                eventually("in progress at the start", || {
                    self.store.snapshot().appointments[&id].status == InProgress
                })
                .await;
            }
            (Completed, Via::Commands) => {
                self.must(&id, InProgress).await;
                self.must(&id, Completed).await;
            }
            (other, Via::Clock) => unreachable!("{other} is not reached by the clock here"),
        }
        // Let the timer service and the supervisor take in what was committed, so the
        // snapshot below cannot change under the command being checked.
        settle().await;
        assert_eq!(self.store.snapshot().appointments[&id].status, from);
        (id, starts)
    }
}

/// The whole store, field by field, so a failure names what changed.
fn assert_unchanged(before: &MemoryState, after: &MemoryState, what: &str) {
    assert_eq!(
        before.appointments, after.appointments,
        "{what}: appointments"
    );
    assert_eq!(before.customers, after.customers, "{what}: customers");
    assert_eq!(before.counters, after.counters, "{what}: counters");
    assert_eq!(before.workflows, after.workflows, "{what}: workflows");
    assert_eq!(before.events, after.events, "{what}: events");
    assert_eq!(before.timers, after.timers, "{what}: timers");
    assert_eq!(before.outbox, after.outbox, "{what}: outbox");
    assert_eq!(before.escalations, after.escalations, "{what}: escalations");
    assert_eq!(
        before.dead_letters.len(),
        after.dead_letters.len(),
        "{what}: dead letters"
    );
    assert_eq!(before.commits, after.commits, "{what}: commit count");
    // And everything else, whatever it is.
    assert_eq!(
        format!("{before:?}"),
        format!("{after:?}"),
        "{what}: store snapshot"
    );
}

async fn check_every_target_from(from: AppointmentStatus, via: Via) {
    for to in AppointmentStatus::ALL {
        let h = start();
        let (id, _) = h.reach(from, via).await;
        let before = h.store.snapshot();
        let answer = h.route(&id, transition(to)).await;
        let what = format!("{from} -> {to} (reached via {via:?})");
        if allowed(from, to) {
            let record = answer
                .unwrap_or_else(|e| panic!("{what} must be allowed, got {e:?}"))
                .unwrap_or_else(|| panic!("{what}: no state returned"));
            assert_eq!(record.status, to, "{what}: returned status");
            let after = h.store.snapshot();
            let stored = &after.appointments[&id];
            assert_eq!(stored.status, to, "{what}: stored status");
            assert_eq!(
                stored.version,
                before.appointments[&id].version + 1,
                "{what}: version"
            );
            // The change is one commit; a no-show then starts its recovery (risk, the
            // rebooking offer) as a step of its own, which may already have run.
            let change = after
                .events
                .iter()
                .skip(before.events.len())
                .find(|e| e.aggregate_version == stored.version)
                .expect("the change's event");
            assert_eq!(
                change.event_type,
                format!("appointment.{}", to.as_str()),
                "{what}: event"
            );
            if to == AppointmentStatus::NoShow {
                assert!(after.commits > before.commits, "{what}: committed");
            } else {
                assert_eq!(after.commits, before.commits + 1, "{what}: one commit");
            }
        } else {
            match answer {
                Err(EngineError::InvalidTransition(err)) => {
                    assert_eq!(
                        (err.from, err.to),
                        (from, to),
                        "{what}: error names the move"
                    )
                }
                other => panic!("{what} must be rejected as INVALID_TRANSITION, got {other:?}"),
            }
            // The engine may still be finishing unrelated work; give it the same chance
            // to (wrongly) write something before comparing.
            settle().await;
            assert_unchanged(&before, &h.store.snapshot(), &what);
            // The actor's in-memory state was not changed either.
            let view = h
                .engine
                .directory
                .send(actors::engine::InspectActor(id.clone()))
                .await
                .expect("mailbox")
                .expect("inspect");
            assert_eq!(
                view.actor.state.as_ref().map(|r| r.status),
                Some(from),
                "{what}: actor state"
            );
        }
        h.engine.shutdown().await;
    }
}

#[actix_rt::test]
async fn from_booked() {
    check_every_target_from(Booked, Via::Commands).await;
}

#[actix_rt::test]
async fn from_confirmed() {
    check_every_target_from(Confirmed, Via::Commands).await;
}

#[actix_rt::test]
async fn from_rescheduled() {
    check_every_target_from(Rescheduled, Via::Commands).await;
}

#[actix_rt::test]
async fn from_in_progress_by_transition() {
    check_every_target_from(InProgress, Via::Commands).await;
}

#[actix_rt::test]
async fn from_in_progress_by_the_start_timer() {
    check_every_target_from(InProgress, Via::Clock).await;
}

#[actix_rt::test]
async fn from_completed() {
    check_every_target_from(Completed, Via::Commands).await;
}

#[actix_rt::test]
async fn from_no_show() {
    check_every_target_from(NoShow, Via::Commands).await;
}

#[actix_rt::test]
async fn from_cancelled() {
    check_every_target_from(Cancelled, Via::Commands).await;
}

/// The `Reschedule` command (what the booking system's new time and a person's move
/// become) is "from → rescheduled → booked" in one commit.
#[actix_rt::test]
async fn reschedule_command_follows_the_table() {
    for from in AppointmentStatus::ALL {
        let h = start();
        let (id, starts) = h.reach(from, Via::Commands).await;
        let before = h.store.snapshot();
        let new_start = starts + Duration::days(1);
        let answer = h
            .route(
                &id,
                AppointmentCommand::Reschedule {
                    starts_at: new_start,
                    ends_at: new_start + Duration::minutes(30),
                    by: ChangedBy::Staff("ann".into()),
                },
            )
            .await;
        let what = format!("reschedule from {from}");
        let may = allowed(from, Rescheduled) || (from == Rescheduled && allowed(from, Booked));
        if may {
            let record = answer
                .unwrap_or_else(|e| panic!("{what} must be allowed, got {e:?}"))
                .expect("state");
            assert_eq!(record.status, Booked, "{what}: back to booked");
            assert_eq!(record.starts_at, new_start, "{what}: new start");
            let after = h.store.snapshot();
            assert_eq!(after.appointments[&id].status, Booked, "{what}: stored");
            assert_eq!(after.appointments[&id].starts_at, new_start, "{what}");
            // Every pending timer follows the new time.
            let moved: Vec<_> = after
                .timers
                .values()
                .filter(|t| t.status == actors::ports::store::TimerStatus::Scheduled)
                .map(|t| t.spec.payload["startsAt"].as_str().map(str::to_string))
                .collect();
            assert!(!moved.is_empty(), "{what}: timers scheduled");
            assert!(
                moved
                    .iter()
                    .all(|s| s.as_deref() == Some(new_start.to_rfc3339().as_str())),
                "{what}: timers recomputed from the new time: {moved:?}"
            );
        } else {
            match answer {
                Err(EngineError::InvalidTransition(_)) => {}
                other => panic!("{what} must be rejected as INVALID_TRANSITION, got {other:?}"),
            }
            settle().await;
            assert_unchanged(&before, &h.store.snapshot(), &what);
        }
        h.engine.shutdown().await;
    }
}
