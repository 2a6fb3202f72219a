//! `aro dlq list | replay | archive` as a child process against a real database (both
//! backends): a dead-lettered outbox row goes back to its queue from attempt zero, a
//! dead-lettered inbound item is recorded in the inbox again, an archived one stays
//! dead; each change is audited (actor `cli`) and the audit chain still verifies; a
//! second replay, an unknown id and a bad status are refused with a non-zero exit and
//! change nothing.

mod common;

use std::process::Output;

use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::{AppointmentCommand, ChangedBy, InboxWork, Origin};
use aro::store::schema::{audit_log, dead_letters, inbox, outbox};
use aro::store::Database;
use chrono::{Duration, Utc};
use common::{aro_command, migrated_database, Kind, TestDb};
use diesel::prelude::*;

fn aro(db: &TestDb, args: &[&str]) -> Output {
    aro_command(db.data_dir())
        .args(args)
        .env("ARO_DATABASE_URL", &db.url)
        .env("ARO_DATA_DIR", db.data_dir())
        .output()
        .expect("run aro")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A dead letter `id` of `domain`, with its dead outbox row unless it is inbound work.
async fn dead_letter(database: &Database, id: &str, domain: &str) {
    let (id, domain) = (id.to_string(), domain.to_string());
    database
        .run(move |conn| {
            let now = Utc::now().naive_utc();
            let outbox_id = (domain != "inbox").then(|| format!("ob-{id}"));
            let payload = if domain == "inbox" {
                serde_json::to_string(&InboxWork {
                    appointment_id: "a-1".into(),
                    command: AppointmentCommand::Transition {
                        to: AppointmentStatus::Confirmed,
                        by: ChangedBy::Staff("front desk".into()),
                        reason: None,
                    },
                    origin: Origin::default(),
                })
                .expect("work")
            } else {
                r#"{"to":"+15550001111","body":"Reminder"}"#.to_string()
            };
            if let Some(outbox_id) = &outbox_id {
                diesel::insert_into(outbox::table)
                    .values((
                        outbox::id.eq(outbox_id),
                        outbox::tenant_id.eq("default"),
                        outbox::domain.eq(&domain),
                        outbox::kind.eq("reminder_48h"),
                        outbox::owner_type.eq("appointment"),
                        outbox::owner_id.eq("a-1"),
                        outbox::idempotency_key.eq(format!("key-{id}")),
                        outbox::payload.eq(&payload),
                        outbox::status.eq("dead"),
                        outbox::attempts.eq(5),
                        outbox::next_attempt_at.eq(now),
                        outbox::last_error.eq(Some("HTTP 503")),
                        outbox::created_at.eq(now),
                        outbox::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            diesel::insert_into(dead_letters::table)
                .values((
                    dead_letters::id.eq(&id),
                    dead_letters::tenant_id.eq("default"),
                    dead_letters::outbox_id.eq(&outbox_id),
                    dead_letters::domain.eq(&domain),
                    dead_letters::kind.eq("reminder_48h"),
                    dead_letters::payload.eq(&payload),
                    dead_letters::error.eq("HTTP 503 after 5 attempts"),
                    dead_letters::attempts.eq(5),
                    dead_letters::status.eq("open"),
                    dead_letters::created_at.eq(now),
                    dead_letters::expires_at.eq(now + Duration::days(30)),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .expect("dead letter");
}

async fn dlq_commands_replay_archive_and_audit(kind: Kind) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    dead_letter(&database, "dl-send", "messaging").await;
    dead_letter(&database, "dl-inbound", "inbox").await;
    dead_letter(&database, "dl-drop", "messaging").await;

    let list = aro(&db, &["dlq", "list"]);
    assert!(list.status.success(), "{list:?}");
    let text = stdout(&list);
    for id in ["dl-send", "dl-inbound", "dl-drop"] {
        assert!(text.contains(id), "{id} listed: {text}");
    }
    assert!(!text.contains("+1555"), "no payloads printed: {text}");

    let replay = aro(&db, &["dlq", "replay", "dl-send"]);
    assert!(replay.status.success(), "{replay:?}");
    let replay = aro(&db, &["dlq", "replay", "dl-inbound"]);
    assert!(replay.status.success(), "{replay:?}");
    let archive = aro(&db, &["dlq", "archive", "dl-drop"]);
    assert!(archive.status.success(), "{archive:?}");

    for refused in [
        vec!["dlq", "replay", "dl-send"],
        vec!["dlq", "archive", "dl-inbound"],
        vec!["dlq", "replay", "no-such-letter"],
        vec!["dlq", "list", "--status", "lost"],
    ] {
        let out = aro(&db, &refused);
        assert!(!out.status.success(), "{refused:?} must fail: {out:?}");
    }
    let open = aro(&db, &["dlq", "list"]);
    assert!(stdout(&open).contains("no dead letters"), "{open:?}");
    let archived = aro(&db, &["dlq", "list", "--status", "archived"]);
    assert!(stdout(&archived).contains("dl-drop"), "{archived:?}");

    let (rows, letters, inbound, actions) = database
        .run(|conn| {
            let rows: Vec<(String, String, i32)> = outbox::table
                .order(outbox::id.asc())
                .select((outbox::id, outbox::status, outbox::attempts))
                .load(conn)?;
            let letters: Vec<(String, String, Option<String>)> = dead_letters::table
                .order(dead_letters::id.asc())
                .select((
                    dead_letters::id,
                    dead_letters::status,
                    dead_letters::resolved_by,
                ))
                .load(conn)?;
            let inbound: Vec<(String, String)> = inbox::table
                .select((inbox::source, inbox::dedup_key))
                .load(conn)?;
            let actions: Vec<(String, String)> = audit_log::table
                .order(audit_log::seq.asc())
                .select((audit_log::action, audit_log::actor_type))
                .load(conn)?;
            Ok((rows, letters, inbound, actions))
        })
        .await
        .expect("read");
    assert_eq!(
        rows,
        vec![
            ("ob-dl-drop".to_string(), "dead".to_string(), 5),
            ("ob-dl-send".to_string(), "pending".to_string(), 0),
        ]
    );
    assert_eq!(
        letters,
        vec![
            ("dl-drop".into(), "archived".into(), Some("cli".into())),
            ("dl-inbound".into(), "replayed".into(), Some("cli".into())),
            ("dl-send".into(), "replayed".into(), Some("cli".into())),
        ]
    );
    assert_eq!(inbound, vec![("dlq".to_string(), "dl-inbound".to_string())]);
    let dlq_actions: Vec<&(String, String)> = actions
        .iter()
        .filter(|(action, _)| action.starts_with("dead_letter."))
        .collect();
    assert_eq!(
        dlq_actions,
        vec![
            &("dead_letter.replayed".to_string(), "cli".to_string()),
            &("dead_letter.replayed".to_string(), "cli".to_string()),
            &("dead_letter.archived".to_string(), "cli".to_string()),
        ]
    );
    let verify = aro(&db, &["audit", "verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

on_both_backends!(dlq_commands_replay_archive_and_audit);
