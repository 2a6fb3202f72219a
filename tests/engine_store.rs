//! The engine's `Store` port on real SQLite and PostgreSQL (`DieselStore`): a commit
//! is all or nothing, stale versions conflict, grouped commits fail independently,
//! outbox outcomes and breaker state round-trip — and the engine itself runs on it,
//! through a restart.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::{Booking, Engine, EngineOptions, EnginePorts, EngineSettings};
use actors::ports::clock::VirtualClock;
use actors::ports::ids::UuidV7;
use actors::ports::store::*;
use actors::resilience::breaker::{BreakerSnapshot, BreakerState};
use actors::testing::fixtures::sample_booking;
use actors::testing::wait::{eventually, settle};
use actors::testing::ScriptedMessaging;
use aro::store::{Database, DieselStore};
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{migrated_database, Kind, TestDb};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn store_on(db: &Database, clock: &VirtualClock) -> DieselStore {
    DieselStore::start(db.clone(), Arc::new(clock.clone())).expect("store writer starts")
}

fn appointment(id: &str, customer_id: &str, version: i64) -> AppointmentRecord {
    AppointmentRecord {
        deposit: Default::default(),
        id: id.into(),
        tenant_id: "default".into(),
        customer_id: customer_id.into(),
        source: "booking".into(),
        external_id: format!("ext-{id}"),
        status: AppointmentStatus::Booked,
        starts_at: t0() + Duration::days(3),
        ends_at: t0() + Duration::days(3) + Duration::minutes(30),
        timezone: "America/New_York".into(),
        service_type: Some("Cleaning".into()),
        cancel_url: None,
        reschedule_url: None,
        service_cost_cents: None,
        version,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn customer(id: &str, phone: &str) -> CustomerRecord {
    CustomerRecord {
        id: id.into(),
        tenant_id: "default".into(),
        phone_e164: Some(phone.into()),
        name: Some("Jane".into()),
        email: None,
        timezone: None,
        opted_out: false,
        history: Default::default(),
    }
}

fn event(id: &str, aggregate: &str, version: i64) -> NewEvent {
    NewEvent {
        event_id: id.into(),
        tenant_id: "default".into(),
        event_type: "appointment.booked".into(),
        aggregate_type: "appointment".into(),
        aggregate_id: aggregate.into(),
        aggregate_version: version,
        occurred_at: t0(),
        profile: "healthcare".into(),
        payload: json!({"n": version}),
        workflow_id: None,
        correlation_id: None,
        causation_id: None,
    }
}

fn timer(key: &str, owner: &str, due_at: DateTime<Utc>) -> TimerSpec {
    TimerSpec {
        tenant_id: "default".into(),
        key: key.into(),
        owner_type: "appointment".into(),
        owner_id: owner.into(),
        kind: "reminder_48h".into(),
        due_at,
        payload: json!({"startsAt": t0() + Duration::days(3)}),
    }
}

fn outbox_item(id: &str, owner: &str, key: &str) -> NewOutbox {
    NewOutbox {
        id: id.into(),
        tenant_id: "default".into(),
        domain: ProviderDomain::Messaging,
        kind: "reminder_48h".into(),
        owner_type: "appointment".into(),
        owner_id: owner.into(),
        idempotency_key: key.into(),
        payload: json!({"to": "+15551230001", "body": "See you soon"}),
        not_before: t0(),
    }
}

fn booking_commit(n: usize) -> Commit {
    let a = format!("a{n}");
    let c = format!("c{n}");
    Commit {
        customer: Some(CustomerWrite::Upsert(customer(
            &c,
            &format!("+1555123{n:04}"),
        ))),
        appointment: Some(Versioned {
            record: appointment(&a, &c, 1),
            expected_version: None,
        }),
        events: vec![event(&format!("e{n}"), &a, 1)],
        set_timers: vec![timer(
            &format!("appointment:{a}:reminder_48h"),
            &a,
            t0() + Duration::days(1),
        )],
        outbox: vec![outbox_item(
            &format!("o{n}"),
            &a,
            &format!("{a}:booking_confirmation"),
        )],
        ..Commit::default()
    }
}

async fn engine_store_commits_read_back(kind: Kind) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    let clock = VirtualClock::new(t0());
    let store = store_on(&database, &clock);
    store.commit(booking_commit(1)).await.expect("commit");

    let stored = store
        .load_appointment("a1".into())
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored, appointment("a1", "c1", 1));
    let found = store
        .find_appointment("default".into(), "booking".into(), "ext-a1".into())
        .await
        .expect("read");
    assert_eq!(found.map(|a| a.id), Some("a1".to_string()));
    let by_phone = store
        .find_customer_by_phone("default".into(), "+15551230001".into())
        .await
        .expect("read");
    assert_eq!(by_phone, Some(customer("c1", "+15551230001")));
    let timers = store
        .timers_of("appointment".into(), "a1".into())
        .await
        .expect("read");
    assert_eq!(timers.len(), 1);
    assert_eq!(timers[0].status, TimerStatus::Scheduled);
    assert!(store
        .due_timers(None, t0(), 10)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        store
            .due_timers(None, t0() + Duration::days(1), 10)
            .await
            .expect("read")
            .len(),
        1
    );
    let ready = store
        .ready_outbox(ProviderDomain::Messaging, t0(), 10, true)
        .await
        .expect("read");
    assert_eq!(ready.len(), 1);
    assert_eq!(
        ready[0].item.payload,
        json!({"to": "+15551230001", "body": "See you soon"})
    );
    assert_eq!(
        store
            .next_outbox_due(ProviderDomain::Messaging)
            .await
            .expect("read"),
        Some(t0())
    );

    // Moving a timer by key, then settling it.
    let moved = Commit {
        set_timers: vec![timer(
            "appointment:a1:reminder_48h",
            "a1",
            t0() + Duration::days(2),
        )],
        ..Commit::default()
    };
    store.commit(moved).await.expect("move");
    let timers = store
        .timers_of("appointment".into(), "a1".into())
        .await
        .expect("read");
    assert_eq!(timers.len(), 1, "moved, not duplicated");
    assert_eq!(timers[0].spec.due_at, t0() + Duration::days(2));
    let fired = Commit {
        fired_timers: vec![("default".into(), "appointment:a1:reminder_48h".into())],
        ..Commit::default()
    };
    store.commit(fired).await.expect("fire");
    assert!(store
        .due_timers(None, t0() + Duration::days(9), 10)
        .await
        .expect("read")
        .is_empty());

    // An outbox row with a key already queued is ignored, not duplicated.
    let again = Commit {
        outbox: vec![outbox_item("o-dup", "a1", "a1:booking_confirmation")],
        ..Commit::default()
    };
    store
        .commit(again)
        .await
        .expect("duplicate key is not an error");
    assert_eq!(
        store
            .ready_outbox(ProviderDomain::Messaging, t0(), 10, true)
            .await
            .expect("read")
            .len(),
        1
    );
}

async fn a_stale_version_conflicts_and_changes_nothing(kind: Kind) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    let clock = VirtualClock::new(t0());
    let store = store_on(&database, &clock);
    store.commit(booking_commit(1)).await.expect("commit");
    let mut confirmed = appointment("a1", "c1", 2);
    confirmed.status = AppointmentStatus::Confirmed;
    let stale = Commit {
        appointment: Some(Versioned {
            record: confirmed,
            expected_version: Some(7),
        }),
        events: vec![event("e-stale", "a1", 2)],
        set_timers: vec![timer("appointment:a1:other", "a1", t0())],
        escalations: vec![],
        ..Commit::default()
    };
    let err = store
        .commit(stale.clone())
        .await
        .expect_err("stale version");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store
            .load_appointment("a1".into())
            .await
            .expect("read")
            .map(|a| a.status),
        Some(AppointmentStatus::Booked)
    );
    assert_eq!(
        store
            .timers_of("appointment".into(), "a1".into())
            .await
            .expect("read")
            .len(),
        1
    );
    // The same change at the right version goes through, event included.
    let mut fresh = stale;
    if let Some(v) = fresh.appointment.as_mut() {
        v.expected_version = Some(1);
    }
    store.commit(fresh).await.expect("current version");
    assert_eq!(
        store
            .load_appointment("a1".into())
            .await
            .expect("read")
            .map(|a| (a.status, a.version)),
        Some((AppointmentStatus::Confirmed, 2))
    );
    // A second booking of the same external id conflicts.
    let mut twin = booking_commit(2);
    if let Some(v) = twin.appointment.as_mut() {
        v.record.external_id = "ext-a1".into();
    }
    assert!(matches!(
        store.commit(twin).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .load_customer("c2".into())
            .await
            .expect("read")
            .is_none(),
        "nothing of it stays"
    );
}

async fn grouped_commits_succeed_or_fail_on_their_own(kind: Kind) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    let clock = VirtualClock::new(t0());
    let store = store_on(&database, &clock);
    // Many commits at once: the writer groups them; one bad apple (a duplicate event id)
    // must fail alone.
    let mut commits: Vec<Commit> = (0..200).map(booking_commit).collect();
    commits[57].events[0].event_id = "e3".into();
    let results =
        futures_util::future::join_all(commits.into_iter().map(|c| store.commit(c))).await;
    let failed: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i)
        .collect();
    // e3 is taken by whichever of commits 3 and 57 ran second.
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0] == 3 || failed[0] == 57);
    for n in 0..200 {
        let present = store
            .load_appointment(format!("a{n}"))
            .await
            .expect("read")
            .is_some();
        assert_eq!(present, n != failed[0], "appointment a{n}");
    }
}

async fn outbox_outcomes_and_breaker_state_round_trip(kind: Kind) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    let clock = VirtualClock::new(t0());
    let store = store_on(&database, &clock);
    store.commit(booking_commit(1)).await.expect("commit");
    store
        .update_outbox(OutboxUpdate::Started {
            id: "o1".into(),
            attempts: 1,
        })
        .await
        .expect("started");
    // An in-flight row is handed out again (its outcome must be reconciled) even
    // before its next attempt time.
    let ready = store
        .ready_outbox(
            ProviderDomain::Messaging,
            t0() - Duration::days(1),
            10,
            true,
        )
        .await
        .expect("read");
    assert_eq!(
        ready
            .iter()
            .map(|r| (r.status, r.attempts))
            .collect::<Vec<_>>(),
        vec![(OutboxStatus::InFlight, 1)]
    );
    store
        .update_outbox(OutboxUpdate::Retry {
            id: "o1".into(),
            at: t0() + Duration::seconds(30),
            error: "HTTP 503".into(),
        })
        .await
        .expect("retry");
    assert!(store
        .ready_outbox(ProviderDomain::Messaging, t0(), 10, true)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        store
            .next_outbox_due(ProviderDomain::Messaging)
            .await
            .expect("read"),
        Some(t0() + Duration::seconds(30))
    );
    let escalation = NewEscalation {
        id: "esc1".into(),
        tenant_id: "default".into(),
        appointment_id: Some("a1".into()),
        customer_id: Some("c1".into()),
        reason: "delivery_failed".into(),
        priority: "medium".into(),
        details: json!({"error": "HTTP 503"}),
        created_at: t0(),
    };
    store
        .update_outbox(OutboxUpdate::Dead {
            id: "o1".into(),
            error: "HTTP 503".into(),
            escalation,
        })
        .await
        .expect("dead");
    assert!(store
        .ready_outbox(
            ProviderDomain::Messaging,
            t0() + Duration::days(1),
            10,
            true
        )
        .await
        .expect("read")
        .is_empty());
    let (dead, escalations) = database
        .run(|conn| {
            use aro::store::schema::{dead_letters, escalations};
            use diesel::prelude::*;
            let dead: Vec<(Option<String>, String, i32)> = dead_letters::table
                .select((
                    dead_letters::outbox_id,
                    dead_letters::error,
                    dead_letters::attempts,
                ))
                .load(conn)?;
            let esc: Vec<String> = escalations::table.select(escalations::reason).load(conn)?;
            Ok((dead, esc))
        })
        .await
        .expect("read");
    assert_eq!(
        dead,
        vec![(Some("o1".to_string()), "HTTP 503".to_string(), 1)]
    );
    assert_eq!(escalations, vec!["delivery_failed".to_string()]);

    // A replayed dead letter is back in the queue from attempt zero; only once.
    assert_eq!(store.replay_dead_letter("o1".into(), t0()).await, Ok(true));
    assert_eq!(store.replay_dead_letter("o1".into(), t0()).await, Ok(false));
    let ready = store
        .ready_outbox(ProviderDomain::Messaging, t0(), 10, false)
        .await
        .expect("read");
    let o1 = ready
        .iter()
        .find(|r| r.item.id == "o1")
        .expect("o1 pending again");
    assert_eq!((o1.status, o1.attempts), (OutboxStatus::Pending, 0));
    let replayed: Vec<String> = database
        .run(|conn| {
            use aro::store::schema::dead_letters;
            use diesel::prelude::*;
            Ok(dead_letters::table
                .select(dead_letters::status)
                .load(conn)?)
        })
        .await
        .expect("read");
    assert_eq!(replayed, vec!["replayed".to_string()]);
    let err = store
        .update_outbox(OutboxUpdate::Done {
            id: "missing".into(),
            provider_ref: None,
            sent: None,
        })
        .await
        .expect_err("no such row");
    assert!(matches!(err, StoreError::Failed(_)));

    assert_eq!(
        store
            .load_breaker("default".into(), ProviderDomain::Messaging)
            .await
            .expect("read"),
        None
    );
    let open = BreakerSnapshot {
        state: BreakerState::Open,
        failure_count: 5,
        success_count: 0,
        window_started_at: Some(t0()),
        opened_at: Some(t0() + Duration::seconds(40)),
    };
    for snapshot in [
        open.clone(),
        BreakerSnapshot {
            state: BreakerState::HalfOpen,
            success_count: 1,
            ..open
        },
    ] {
        store
            .save_breaker(
                "default".into(),
                ProviderDomain::Messaging,
                snapshot.clone(),
                t0(),
            )
            .await
            .expect("save");
        assert_eq!(
            store
                .load_breaker("default".into(), ProviderDomain::Messaging)
                .await
                .expect("read"),
            Some(snapshot)
        );
    }
}

fn booking(external_id: &str, starts_at: DateTime<Utc>) -> Booking {
    sample_booking(external_id, starts_at)
}

fn start_engine(store: &DieselStore, clock: &VirtualClock, provider: &ScriptedMessaging) -> Engine {
    Engine::start(
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
            idle_timeout: StdDuration::from_millis(200),
            ..EngineOptions::default()
        },
    )
}

/// Polls the database (real time) until `check` holds.
async fn eventually_db(what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        actix_rt::time::sleep(StdDuration::from_millis(10)).await;
    }
}

async fn the_engine_runs_on_the_database_across_a_restart(kind: Kind) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    let clock = VirtualClock::new(t0());
    let starts = t0() + Duration::days(3);
    {
        let store = store_on(&database, &clock);
        let provider = ScriptedMessaging::reminders_only();
        let engine = start_engine(&store, &clock, &provider);
        let booked = engine
            .book(booking("x1", starts))
            .await
            .expect("booked")
            .expect("state");
        assert_eq!(booked.status, AppointmentStatus::Booked);
        // The 48 h reminder fires and is delivered through the outbox.
        clock.set(starts - Duration::hours(48));
        eventually("48h reminder delivered", || provider.delivered().len() == 1).await;
        engine.shutdown().await;
        settle().await;
    }
    // Down through the 24 h reminder's time; back 1 h later: it is still sent (start −
    // 2 h has not passed), by the new process, exactly once.
    clock.set(starts - Duration::hours(23));
    let store = store_on(&database, &clock);
    let provider = ScriptedMessaging::reminders_only();
    let _engine = start_engine(&store, &clock, &provider);
    eventually_db("overdue 24h reminder delivered after restart", || {
        provider.delivered().len() == 1
    })
    .await;
    let key = &provider.delivered()[0].idempotency_key;
    assert!(key.contains(":reminder_24h:"), "{key}");
    settle().await;
    assert_eq!(provider.delivered().len(), 1);
    let done = store
        .ready_outbox(ProviderDomain::Messaging, clock_now(&clock), 10, true)
        .await
        .expect("read");
    assert!(done.is_empty(), "nothing left to send: {done:?}");
}

fn inbox_item(id: &str, dedup_key: &str) -> NewInbox {
    NewInbox {
        id: id.into(),
        tenant_id: "default".into(),
        source: "booking".into(),
        dedup_key: dedup_key.into(),
        payload: json!({"appointmentId": "a1", "command": {"type": "timer_fired"}}),
        received_at: t0(),
    }
}

async fn inbox_items_are_recorded_once_and_applied_once(kind: Kind) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    let clock = VirtualClock::new(t0());
    let store = store_on(&database, &clock);

    assert_eq!(
        store.accept_inbox(inbox_item("i1", "d-1")).await,
        Ok(InboxAccept::Accepted)
    );
    assert_eq!(
        store.accept_inbox(inbox_item("i2", "d-1")).await,
        Ok(InboxAccept::Duplicate),
        "same tenant, source and dedup key"
    );
    let mut other_source = inbox_item("i3", "d-1");
    other_source.source = "calendly".into();
    assert_eq!(
        store.accept_inbox(other_source).await,
        Ok(InboxAccept::Accepted)
    );
    let pending = store.pending_inbox(10).await.expect("read");
    let ids: Vec<&str> = pending.iter().map(|r| r.item.id.as_str()).collect();
    assert_eq!(ids, ["i1", "i3"]);
    assert_eq!(pending[0].item.payload["appointmentId"], "a1");

    // Applied with the booking it carries, in one commit.
    let mut commit = booking_commit(1);
    commit.inbox_processed = vec!["i1".into()];
    store.commit(commit).await.expect("applied");
    // A second application of the same item writes nothing at all.
    let mut again = booking_commit(2);
    again.inbox_processed = vec!["i1".into()];
    assert!(matches!(
        store.commit(again).await,
        Err(StoreError::AlreadyApplied(_))
    ));
    assert_eq!(store.load_appointment("a2".into()).await, Ok(None));
    // A late outcome for an applied item does not overwrite it.
    store
        .update_inbox(InboxUpdate::Rejected {
            id: "i1".into(),
            error: "late".into(),
        })
        .await
        .expect("recorded");
    let pending = store.pending_inbox(10).await.expect("read");
    assert_eq!(pending.len(), 1, "only i3 is left: {pending:?}");

    store
        .update_inbox(InboxUpdate::Retry {
            id: "i3".into(),
            error: "store busy".into(),
        })
        .await
        .expect("recorded");
    let pending = store.pending_inbox(10).await.expect("read");
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].last_error.as_deref(), Some("store busy"));
    store
        .update_inbox(InboxUpdate::Dead {
            id: "i3".into(),
            error: "5 attempts failed".into(),
            escalation: NewEscalation {
                id: "esc-1".into(),
                tenant_id: "default".into(),
                appointment_id: None,
                customer_id: None,
                reason: "inbound_failed".into(),
                priority: "high".into(),
                details: json!({}),
                created_at: t0(),
            },
        })
        .await
        .expect("dead-lettered");
    assert!(store.pending_inbox(10).await.expect("read").is_empty());
    let (dead, escalated) = database
        .run(|conn| {
            use aro::store::schema::{dead_letters, escalations};
            use diesel::prelude::*;
            let dead: i64 = dead_letters::table
                .filter(dead_letters::domain.eq("inbox"))
                .count()
                .get_result(conn)?;
            let escalated: i64 = escalations::table
                .filter(escalations::reason.eq("inbound_failed"))
                .count()
                .get_result(conn)?;
            Ok((dead, escalated))
        })
        .await
        .expect("counted");
    assert_eq!((dead, escalated), (1, 1));

    // Past the dedup window, applied and dead items are forgotten; pending ones never.
    assert_eq!(
        store.accept_inbox(inbox_item("i4", "d-4")).await,
        Ok(InboxAccept::Accepted)
    );
    let removed = store
        .prune_inbox(t0() + Duration::days(8))
        .await
        .expect("pruned");
    assert_eq!(removed, 2, "i1 (processed) and i3 (dead)");
    let pending = store.pending_inbox(10).await.expect("read");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].item.id, "i4");
    assert_eq!(
        store.accept_inbox(inbox_item("i5", "d-1")).await,
        Ok(InboxAccept::Accepted),
        "a key forgotten after the window is new again"
    );
}

fn clock_now(clock: &VirtualClock) -> DateTime<Utc> {
    use actors::ports::clock::Clock;
    clock.now()
}

on_both_backends!(
    engine_store_commits_read_back,
    a_stale_version_conflicts_and_changes_nothing,
    grouped_commits_succeed_or_fail_on_their_own,
    outbox_outcomes_and_breaker_state_round_trip,
    the_engine_runs_on_the_database_across_a_restart,
    inbox_items_are_recorded_once_and_applied_once,
);
