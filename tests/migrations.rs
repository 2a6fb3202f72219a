//! Migrations on both backends: every migration runs up → down → up; the schema has
//! `tenant_id` on every table; `schema.rs` names only columns that exist.

mod common;

use aro::config::DatabaseConfig;
use aro::store::{migrations, Database, DbConnection};
use common::{Kind, TestDb};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

fn open(db: &TestDb) -> Database {
    let config = db.config(&[]);
    let database: &DatabaseConfig = &config.database;
    Database::open(database).expect("open database")
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// User tables, sorted.
fn tables(conn: &mut DbConnection) -> Vec<String> {
    let sql = match conn {
        DbConnection::Sqlite(_) => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations' ORDER BY name"
        }
        DbConnection::Postgres(_) => {
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
             ORDER BY table_name"
        }
    };
    diesel::sql_query(sql)
        .load::<Name>(conn)
        .expect("list tables")
        .into_iter()
        .map(|n| n.name)
        .collect()
}

fn columns(conn: &mut DbConnection, table: &str) -> Vec<String> {
    let sql = match conn {
        DbConnection::Sqlite(_) => format!("SELECT name FROM pragma_table_info('{table}')"),
        DbConnection::Postgres(_) => format!(
            "SELECT column_name::text AS name FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = '{table}'"
        ),
    };
    diesel::sql_query(sql)
        .load::<Name>(conn)
        .expect("list columns")
        .into_iter()
        .map(|n| n.name)
        .collect()
}

async fn up_down_up(kind: Kind) {
    let test_db = TestDb::new(kind);
    let db = open(&test_db);
    let mut conn = db.get().expect("connection");
    let all = migrations::status(&mut conn).expect("status");
    assert!(all.len() >= 3, "migrations are embedded");
    assert!(all.iter().all(|m| !m.applied));

    let applied = migrations::run_pending(&mut conn).expect("up");
    assert_eq!(applied.len(), all.len());
    let full_schema = tables(&mut conn);
    assert!(full_schema.len() >= 24, "{full_schema:?}");

    let reverted = migrations::revert(&mut conn, all.len()).expect("down all");
    let mut expected: Vec<String> = all.iter().map(|m| m.name.clone()).collect();
    expected.reverse();
    assert_eq!(reverted, expected, "reverted newest first");
    assert!(
        tables(&mut conn).is_empty(),
        "every down drops what its up made"
    );

    migrations::run_pending(&mut conn).expect("up again");
    assert_eq!(tables(&mut conn), full_schema);
    assert_eq!(migrations::pending_count(&mut conn).expect("pending"), 0);

    // Each migration on its own: down one, up one.
    for _ in 0..all.len() {
        let redone = migrations::redo(&mut conn).expect("redo");
        assert!(redone.is_some());
    }
    assert!(
        migrations::revert(&mut conn, all.len() + 1).is_err(),
        "cannot revert more than applied"
    );
    assert_eq!(tables(&mut conn), full_schema);
}

async fn every_table_carries_tenant_id(kind: Kind) {
    let test_db = TestDb::new(kind);
    let db = open(&test_db);
    let mut conn = db.get().expect("connection");
    migrations::run_pending(&mut conn).expect("up");
    for table in tables(&mut conn) {
        let cols = columns(&mut conn, &table);
        assert!(
            cols.iter().any(|c| c == "tenant_id"),
            "{table} lacks tenant_id: {cols:?}"
        );
    }
}

/// Runs `SELECT <every schema.rs column> FROM <table> WHERE 1 = 0` for each table, so a
/// column named in `schema.rs` but missing from a backend's migrations fails here.
macro_rules! select_all_columns {
    ($conn:expr, $($table:ident),+ $(,)?) => {{
        use aro::store::schema::*;
        let mut checked = Vec::new();
        $(
            let query = $table::table
                .select($table::all_columns)
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
            let (sql, quote) = match $conn {
                DbConnection::Sqlite(_) => (diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query).to_string(), '`'),
                DbConnection::Postgres(_) => (diesel::debug_query::<diesel::pg::Pg, _>(&query).to_string(), '"'),
            };
            $conn.batch_execute(&sql).unwrap_or_else(|e| panic!("{}: {e}\n{sql}", stringify!($table)));
            let select_list = sql.split(" FROM ").next().unwrap_or_default();
            let prefix = format!("{quote}{}{quote}.", stringify!($table));
            checked.push((stringify!($table).to_string(), select_list.matches(&prefix).count()));
        )+
        checked
    }};
}

async fn schema_rs_matches_the_migrations(kind: Kind) {
    let test_db = TestDb::new(kind);
    let db = open(&test_db);
    let mut conn = db.get().expect("connection");
    migrations::run_pending(&mut conn).expect("up");
    let conn: &mut DbConnection = &mut conn;
    let mut checked = select_all_columns!(
        conn,
        tenants,
        business_config,
        customers,
        consents,
        appointments,
        appointment_aliases,
        messages,
        message_status_history,
        events,
        inbox,
        commands,
        idempotency_keys,
        workflow_instances,
        timers,
        outbox,
        dead_letters,
        escalations,
        breaker_state,
        subscriptions,
        integration_secrets,
        audit_log,
        admin_users,
        sessions,
        login_attempts,
        api_tokens,
    );
    checked.sort();
    let names: Vec<String> = checked.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(
        names,
        tables(conn),
        "schema.rs and the migrations list the same tables"
    );
    for (table, schema_rs_columns) in &checked {
        // Nothing in the database that schema.rs lacks.
        assert_eq!(
            *schema_rs_columns,
            columns(conn, table).len(),
            "column count of {table}"
        );
    }
}

async fn event_cursor_is_monotonic(kind: Kind) {
    let test_db = TestDb::new(kind);
    let db = open(&test_db);
    let mut conn = db.get().expect("connection");
    migrations::run_pending(&mut conn).expect("up");
    conn.batch_execute(
        "INSERT INTO tenants (tenant_id, name, profile, timezone, country, currency, created_at, updated_at) \
         VALUES ('t1', 'T', 'healthcare', 'UTC', 'US', 'USD', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    )
    .expect("tenant");
    for i in 0..5 {
        conn.batch_execute(&format!(
            "INSERT INTO events (event_id, tenant_id, event_type, aggregate_type, aggregate_id, \
             aggregate_version, occurred_at, recorded_at, profile, payload) VALUES \
             ('e{i}', 't1', 'appointment.booked', 'appointment', 'a1', {i}, \
             '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'healthcare', '{{}}')"
        ))
        .expect("event");
    }
    use aro::store::schema::events::dsl::*;
    let seqs: Vec<i64> = events
        .select(seq)
        .order(seq.asc())
        .load(&mut *conn)
        .expect("seqs");
    assert_eq!(seqs.len(), 5);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // A duplicate event id is refused: the log never holds one event twice.
    assert!(conn
        .batch_execute(
            "INSERT INTO events (event_id, tenant_id, event_type, aggregate_type, aggregate_id, \
             aggregate_version, occurred_at, recorded_at, profile, payload) VALUES \
             ('e1', 't1', 'x', 'appointment', 'a1', 9, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'healthcare', '{}')"
        )
        .is_err());
}

on_both_backends!(
    up_down_up,
    every_table_carries_tenant_id,
    schema_rs_matches_the_migrations,
    event_cursor_is_monotonic,
);

/// The two migration sets are the same DDL apart from the two spellings ADR 0002
/// allows, so the backends cannot drift apart.
#[test]
fn sqlite_and_postgres_migrations_differ_only_in_agreed_spellings() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let list = |backend: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(backend))
            .expect("read migrations")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let names = list("postgres");
    assert_eq!(names, list("sqlite"), "same migrations on both backends");
    for name in &names {
        for file in ["up.sql", "down.sql"] {
            let read = |backend: &str| {
                std::fs::read_to_string(root.join(backend).join(name).join(file)).expect("read sql")
            };
            let translated = read("postgres")
                .replace(
                    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                    "INTEGER PRIMARY KEY AUTOINCREMENT",
                )
                .replace("BYTEA", "BLOB");
            assert_eq!(
                translated,
                read("sqlite"),
                "{name}/{file} drifted between backends"
            );
        }
    }
}
