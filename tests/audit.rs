//! The hash-chained audit log on both backends: an untouched chain verifies with the
//! real `aro audit verify`; editing any field of any entry, or deleting an entry, makes
//! it exit non-zero naming the first bad entry; concurrent appends keep the chain
//! whole; personal data is refused.

mod common;

use aro::audit::{self, Actor, AuditRow, NewEntry};
use aro::store::models::Tenant;
use aro::store::schema::audit_log;
use aro::store::{tenant_queries, Backend, Conn, Database};
use chrono::{Duration, Utc};
use common::{aro_command, migrated_database, Kind, TestDb};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::json;

const ENTRIES: i64 = 4;

/// Runs `aro audit verify` on the test database: (success, stdout, stderr).
fn verify_cli(db: &TestDb, extra: &[&str]) -> (bool, String, String) {
    let out = aro_command(db.data_dir())
        .args(["audit", "verify"])
        .args(extra)
        .env("ARO_DATABASE_URL", &db.url)
        .env("ARO_DATA_DIR", db.data_dir())
        .env("ARO_LOG_LEVEL", "warn")
        .output()
        .expect("run aro audit verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn seed(conn: &mut Conn) -> Vec<AuditRow> {
    let entries = [
        NewEntry::new("default", Actor::user("u-1"), "auth.login.succeeded")
            .subject("admin_user", "u-1")
            .details(json!({"address": "127.0.0.1", "role": "owner"})),
        NewEntry::new("default", Actor::cli(), "auth.token.created")
            .subject("api_token", "t-1")
            .details(json!({"role": "staff", "expiresAt": null})),
        NewEntry::new("default", Actor::system(), "appointment.override")
            .details(json!({"appointmentId": "a-9", "nested": {"b": [1, 2], "a": true}})),
        NewEntry::new("default", Actor::token("t-1"), "audit.viewed"),
    ];
    entries
        .iter()
        .map(|entry| audit::record(conn, entry).expect("record"))
        .collect()
}

async fn open(kind: Kind) -> (TestDb, Database) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    let other = Tenant {
        tenant_id: "other".into(),
        name: "Other".into(),
        profile: "salon".into(),
        timezone: "UTC".into(),
        phone: None,
        country: "US".into(),
        currency: "USD".into(),
        created_at: Utc::now().naive_utc(),
        updated_at: Utc::now().naive_utc(),
    };
    database
        .run(move |conn| tenant_queries::ensure(conn, &other))
        .await
        .expect("second tenant");
    (db, database)
}

/// Puts a row back exactly as it was (whatever was done to it).
fn restore(conn: &mut Conn, current_seq: i64, original: &AuditRow) {
    diesel::delete(audit_log::table.find(current_seq))
        .execute(&mut **conn)
        .expect("remove edited row");
    diesel::insert_into(audit_log::table)
        .values(original)
        .execute(&mut **conn)
        .expect("put the original back");
    if conn.backend() == Backend::Sqlite {
        conn.batch_execute(
            "UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM audit_log) \
             WHERE name = 'audit_log'",
        )
        .expect("reset the high-water mark");
    }
}

type Edit = fn(&mut Conn, i64) -> i64;

macro_rules! edit {
    ($conn:expr, $seq:expr, $change:expr) => {{
        let changed = diesel::update(audit_log::table.find($seq))
            .set($change)
            .execute(&mut **$conn)
            .expect("edit");
        assert_eq!(changed, 1);
        $seq
    }};
}

/// One edit per column; each answers the row's seq after the edit.
fn edits() -> Vec<(&'static str, Edit)> {
    vec![
        ("tenant_id", |c, s| {
            edit!(c, s, audit_log::tenant_id.eq("other"))
        }),
        ("occurred_at", |c, s| {
            let at: chrono::NaiveDateTime = audit_log::table
                .find(s)
                .select(audit_log::occurred_at)
                .first(&mut **c)
                .expect("row");
            edit!(c, s, audit_log::occurred_at.eq(at + Duration::seconds(1)))
        }),
        ("actor_type", |c, s| {
            edit!(c, s, audit_log::actor_type.eq("intruder"))
        }),
        ("actor_id", |c, s| {
            edit!(c, s, audit_log::actor_id.eq("someone-else"))
        }),
        ("action", |c, s| {
            edit!(c, s, audit_log::action.eq("nothing.happened"))
        }),
        ("subject_type", |c, s| {
            edit!(c, s, audit_log::subject_type.eq(Some("customer")))
        }),
        ("subject_id", |c, s| {
            edit!(c, s, audit_log::subject_id.eq(Some("c-42")))
        }),
        ("details", |c, s| {
            edit!(c, s, audit_log::details.eq(r#"{"edited":true}"#))
        }),
        ("prev_hash", |c, s| {
            edit!(c, s, audit_log::prev_hash.eq("f".repeat(64)))
        }),
        ("hash", |c, s| {
            edit!(c, s, audit_log::hash.eq("e".repeat(64)))
        }),
        ("seq", |c, s| {
            edit!(c, s, audit_log::seq.eq(1000));
            1000
        }),
    ]
}

async fn an_untouched_chain_verifies(kind: Kind) {
    let (db, database) = open(kind).await;
    let empty = verify_cli(&db, &[]);
    assert!(empty.0, "{empty:?}");
    assert!(empty.1.starts_with("ok: 0 entries"), "{}", empty.1);

    let rows = seed(&mut database.get().expect("conn"));
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(rows[0].prev_hash, audit::chain::GENESIS);
    for pair in rows.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert_eq!(
        rows[2].details, r#"{"appointmentId":"a-9","nested":{"a":true,"b":[1,2]}}"#,
        "canonical JSON"
    );
    let (ok, stdout, stderr) = verify_cli(&db, &[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: 4 entries"), "{stdout}");
    let head = format!("4:{}", rows[3].hash);
    assert!(stdout.contains(&head), "{stdout}");
    // The printed head works as an anchor.
    let anchored = verify_cli(&db, &["--anchor", &head]);
    assert!(anchored.0, "{anchored:?}");
    // Stored rows read back exactly as written (timestamps keep their precision).
    let stored: Vec<AuditRow> = audit_log::table
        .order(audit_log::seq.asc())
        .select(AuditRow::as_select())
        .load(&mut *database.get().expect("conn"))
        .expect("rows");
    assert_eq!(stored, rows);
}

async fn editing_any_field_of_any_entry_is_found(kind: Kind) {
    let (db, database) = open(kind).await;
    let mut conn = database.get().expect("conn");
    let rows = seed(&mut conn);
    for seq in 1..=ENTRIES {
        let original = rows[(seq - 1) as usize].clone();
        for (field, edit) in edits() {
            let now_at = edit(&mut conn, seq);
            let (ok, stdout, stderr) = verify_cli(&db, &[]);
            assert!(!ok, "editing {field} of seq {seq} went unnoticed: {stdout}");
            assert!(
                stdout.contains(&format!("first bad entry seq {seq}:")),
                "editing {field} of seq {seq}: {stdout}"
            );
            assert!(
                stderr.contains(&format!("seq {seq}:")),
                "{field}/{seq}: {stderr}"
            );
            restore(&mut conn, now_at, &original);
            let report = audit::verify(&mut conn, None).expect("verify");
            assert!(report.is_ok(), "restored after {field}/{seq}: {report:?}");
        }
    }
    // The reason is named.
    edits()[7].1(&mut conn, 2);
    let (_, stdout, _) = verify_cli(&db, &[]);
    assert!(stdout.contains("seq 2: entry altered"), "{stdout}");
    restore(&mut conn, 2, &rows[1]);
    edits()[8].1(&mut conn, 3);
    let (_, stdout, _) = verify_cli(&db, &[]);
    assert!(stdout.contains("seq 3: broken link"), "{stdout}");
    assert!(
        stdout.contains("(2 entries before it verified)"),
        "{stdout}"
    );
}

async fn deleting_an_entry_is_found(kind: Kind) {
    let (db, database) = open(kind).await;
    let mut conn = database.get().expect("conn");
    let rows = seed(&mut conn);
    for seq in [1, 2, 3] {
        diesel::delete(audit_log::table.find(seq))
            .execute(&mut *conn)
            .expect("delete");
        let (ok, stdout, _) = verify_cli(&db, &[]);
        assert!(!ok, "deleting seq {seq} went unnoticed: {stdout}");
        assert!(
            stdout.contains(&format!("first bad entry seq {seq}: entry missing")),
            "{stdout}"
        );
        restore(&mut conn, seq, &rows[(seq - 1) as usize]);
    }
    assert!(audit::verify(&mut conn, None).expect("verify").is_ok());

    // The newest entry: SQLite's high-water mark shows it; on either backend an anchor
    // taken before does.
    let anchor = format!("4:{}", rows[3].hash);
    diesel::delete(audit_log::table.find(4))
        .execute(&mut *conn)
        .expect("delete newest");
    let anchored = verify_cli(&db, &["--anchor", &anchor]);
    assert!(!anchored.0, "{anchored:?}");
    assert!(
        anchored.1.contains("first bad entry seq 4: entry missing"),
        "{}",
        anchored.1
    );
    if kind == Kind::Sqlite {
        let plain = verify_cli(&db, &[]);
        assert!(!plain.0, "{plain:?}");
        assert!(plain.1.contains("seq 4: entry missing"), "{}", plain.1);
        // Appending after the removal does not hide it.
        audit::record(&mut conn, &NewEntry::new("default", Actor::cli(), "later")).expect("append");
        let plain = verify_cli(&db, &[]);
        assert!(
            !plain.0 && plain.1.contains("seq 4: entry missing"),
            "{plain:?}"
        );
    }
}

async fn concurrent_appends_keep_the_chain_whole(kind: Kind) {
    let (db, _) = open(kind).await;
    // A pool wide enough for every thread to hold a connection at once.
    let database = Database::open(&db.config(&[("ARO_DATABASE_POOL_SIZE", "8")]).database)
        .expect("open database");
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let database = database.clone();
            std::thread::spawn(move || {
                for i in 0..15 {
                    let mut conn = database.get().expect("conn");
                    audit::record(
                        &mut conn,
                        &NewEntry::new("default", Actor::user(format!("u-{t}")), "concurrent")
                            .details(json!({"i": i})),
                    )
                    .expect("append");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    let (ok, stdout, stderr) = verify_cli(&db, &[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: 90 entries"), "{stdout}");
}

async fn personal_data_is_refused(kind: Kind) {
    let (_db, database) = open(kind).await;
    let mut conn = database.get().expect("conn");
    for entry in [
        NewEntry::new("default", Actor::cli(), "x").details(json!({"to": "+15551234567"})),
        NewEntry::new("default", Actor::cli(), "x").details(json!({"who": "ann@example.com"})),
        NewEntry::new("default", Actor::cli(), "x").subject("customer", "+15551234567"),
        NewEntry::new("default", Actor::cli(), "x").details(json!(["not an object"])),
    ] {
        assert!(audit::record(&mut conn, &entry).is_err(), "{entry:?}");
    }
    let count: i64 = audit_log::table
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(count, 0);
}

on_both_backends!(
    an_untouched_chain_verifies,
    editing_any_field_of_any_entry_is_found,
    deleting_an_entry_is_found,
    concurrent_appends_keep_the_chain_whole,
    personal_data_is_refused,
);
