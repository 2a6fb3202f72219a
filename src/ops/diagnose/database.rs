//! The database checks of `aro diagnose`: reachable (a missing SQLite file is reported,
//! never created), migrations applied, no open circuit breaker, no unresolved dead
//! letter, no timer firing late; the database's clock; and the row counts of a support
//! bundle's metrics snapshot. Everything here only reads.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use serde::Serialize;

use super::host::ClockSample;
use super::{human_duration, Check};
use crate::config::{Config, DatabaseUrl};
use crate::store::schema::{appointments, breaker_state, dead_letters, escalations, inbox};
use crate::store::schema::{outbox, timers};
use crate::store::{migrations, Backend, Database, DbConnection, StoreError};

/// Timers due longer ago than this count as late.
const TIMER_GRACE_SECS: i64 = 60;
/// The oldest late timer beyond this: a failure rather than a warning.
const TIMER_FAIL_MINUTES: i64 = 15;

/// Opens the configured database without creating anything: a SQLite file that does
/// not exist is a ✗, and no pool is opened for it.
pub async fn open(config: &Config) -> (Check, Option<Database>) {
    const ID: &str = "database";
    let described = match &config.database.url {
        DatabaseUrl::Sqlite(path) => {
            if !path.is_file() {
                return (
                    Check::fail(
                        ID,
                        format!("SQLite database {} does not exist", path.display()),
                        "run `aro migrate up` or start `aro serve` once to create it; if it \
                         should exist, check data_dir / database.url (ARO_DATA_DIR, \
                         ARO_DATABASE_URL) and restore the newest backup with `aro restore`",
                    ),
                    None,
                );
            }
            format!("SQLite at {}", path.display())
        }
        DatabaseUrl::Postgres(url) => match url::Url::parse(url.expose()) {
            Ok(mut shown) => {
                let _ = shown.set_password(None);
                shown.set_query(None);
                format!("PostgreSQL {shown}")
            }
            Err(_) => "PostgreSQL".to_string(),
        },
    };
    let unreachable = |why: String| {
        let recommendation = match config.database.url {
            DatabaseUrl::Sqlite(_) => {
                "check the file's owner and permissions (run aro as the service user) and that \
                 it is a SQLite database; restore the newest backup with `aro restore` if it \
                 is damaged"
            }
            DatabaseUrl::Postgres(_) => {
                "check that PostgreSQL runs and accepts connections from this host, and that \
                 ARO_DATABASE_URL names the right host, port, database, user and password"
            }
        };
        Check::fail(
            ID,
            format!("{described} is not reachable: {why}"),
            recommendation,
        )
    };
    let db = match Database::open(&config.database) {
        Ok(db) => db,
        Err(e) => return (unreachable(e.to_string()), None),
    };
    match db.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await {
        Ok(()) => (Check::ok(ID, format!("{described} answers")), Some(db)),
        Err(e) => (unreachable(e.to_string()), None),
    }
}

/// Every migration this binary knows is applied. Returns the pending count when it
/// could be read.
pub async fn migrations(db: &Database) -> (Check, Option<usize>) {
    const ID: &str = "migrations";
    match db.run(migrations::status).await {
        Ok(states) => {
            let pending: Vec<String> = states
                .iter()
                .filter(|m| !m.applied)
                .map(|m| m.name.clone())
                .collect();
            let check = if pending.is_empty() {
                Check::ok(ID, format!("all {} applied", states.len()))
            } else {
                Check::fail(
                    ID,
                    format!("{} pending: {}", pending.len(), pending.join(", ")),
                    "run `aro migrate up` as the service user (or restart `aro serve` with \
                     database.migrate_on_start = true); back up first",
                )
            };
            (check, Some(pending.len()))
        }
        Err(e) => (
            Check::fail(
                ID,
                format!("cannot read the applied migrations: {e}"),
                "check the database user's permissions; `aro migrate status` shows the same",
            ),
            None,
        ),
    }
}

/// A query that failed: a ✗, or not checked when the schema is behind (the table may
/// simply not exist yet).
fn query_failed(id: &str, what: &str, error: &StoreError, schema_behind: bool) -> Check {
    if schema_behind {
        Check::skip(id, "migrations are pending")
    } else {
        Check::fail(
            id,
            format!("cannot read {what}: {error}"),
            "check the database (see the database check) and `aro migrate status`",
        )
    }
}

#[derive(Debug, Clone, Queryable)]
struct BreakerRow {
    domain: String,
    state: String,
    opened_at: Option<NaiveDateTime>,
}

/// How long a breaker of `domain` stays open (SPEC §6), when the engine has one.
fn open_for(domain: &str) -> Option<chrono::Duration> {
    use actors::resilience::breaker::BreakerConfig;
    match domain {
        "messaging" => Some(BreakerConfig::messaging().open_for),
        "booking" => Some(BreakerConfig::booking().open_for),
        "payment" => Some(BreakerConfig::payment().open_for),
        _ => None,
    }
}

/// No provider's circuit breaker is open.
pub async fn breakers(db: &Database, now: DateTime<Utc>, schema_behind: bool) -> Check {
    const ID: &str = "breakers";
    let rows = db
        .run(|conn| {
            Ok(breaker_state::table
                .select((
                    breaker_state::domain,
                    breaker_state::state,
                    breaker_state::opened_at,
                ))
                .order(breaker_state::domain)
                .load::<BreakerRow>(conn)?)
        })
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return query_failed(ID, "breaker_state", &e, schema_behind),
    };
    let mut open = Vec::new();
    let mut half_open = Vec::new();
    for row in &rows {
        match row.state.as_str() {
            "open" => {
                let when = match (row.opened_at, open_for(&row.domain)) {
                    (Some(at), Some(period)) => {
                        let half = at.and_utc() + period;
                        if half > now {
                            format!(
                                "half-opens at {} (in {})",
                                half.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                                human_duration(half - now)
                            )
                        } else {
                            "half-opens at its next call (open period over)".to_string()
                        }
                    }
                    _ => "half-opens at its next call after its open period".to_string(),
                };
                open.push(format!("{} breaker open, {when}", row.domain));
            }
            "half_open" => half_open.push(row.domain.clone()),
            _ => {}
        }
    }
    if !open.is_empty() {
        return Check::fail(
            ID,
            open.join("; "),
            "the provider behind it failed repeatedly and calls to it are paused: see the \
             integration checks above and the provider's status page, and look for its \
             errors in the log (journalctl -u aro); it closes by itself after trial calls \
             succeed",
        );
    }
    if !half_open.is_empty() {
        return Check::warn(
            ID,
            format!(
                "{} half-open (trial calls going through)",
                half_open.join(", ")
            ),
            "recovering from provider failures; run diagnose again in a few minutes",
        );
    }
    Check::ok(ID, format!("all closed ({} recorded)", rows.len()))
}

/// Dead letters nobody replayed or archived yet.
pub async fn dead_letters(db: &Database, schema_behind: bool) -> Check {
    const ID: &str = "dead_letters";
    let open = db
        .run(|conn| {
            Ok(dead_letters::table
                .filter(dead_letters::status.eq("open"))
                .select(count_star())
                .first::<i64>(conn)?)
        })
        .await;
    match open {
        Ok(0) => Check::ok(ID, "none open"),
        Ok(n) => Check::warn(
            ID,
            format!("{n} open dead letter(s): work that failed for good"),
            "read their errors and replay or archive them with the admin API / dashboard, \
             after fixing the cause (often credentials or a provider refusing a number)",
        ),
        Err(e) => query_failed(ID, "dead_letters", &e, schema_behind),
    }
}

/// Timers that should have fired more than a minute ago.
pub async fn timers(db: &Database, now: DateTime<Utc>, schema_behind: bool) -> Check {
    const ID: &str = "timers";
    let cutoff = (now - chrono::Duration::seconds(TIMER_GRACE_SECS)).naive_utc();
    let late = db
        .run(move |conn| {
            Ok(timers::table
                .filter(timers::status.eq("scheduled"))
                .filter(timers::due_at.lt(cutoff))
                .select((count_star(), min(timers::due_at)))
                .first::<(i64, Option<NaiveDateTime>)>(conn)?)
        })
        .await;
    match late {
        Ok((0, _)) | Ok((_, None)) => Check::ok(ID, "no timer overdue"),
        Ok((n, Some(oldest))) => {
            let lag = now - oldest.and_utc();
            let summary = format!(
                "{n} timer(s) overdue by more than {TIMER_GRACE_SECS} s, the oldest by {}",
                human_duration(lag)
            );
            let recommendation = "if `aro serve` is stopped, start it (overdue reminders are \
                                  re-checked and sent, or skipped when too late); if it runs, \
                                  the engine is behind: check CPU, disk and database latency \
                                  and the log for errors";
            if lag > chrono::Duration::minutes(TIMER_FAIL_MINUTES) {
                Check::fail(ID, summary, recommendation)
            } else {
                Check::warn(ID, summary, recommendation)
            }
        }
        Err(e) => query_failed(ID, "timers", &e, schema_behind),
    }
}

/// The database's clock (`CURRENT_TIMESTAMP`), read now.
pub async fn clock(db: &Database) -> Option<ClockSample> {
    let now = db
        .run(|conn| Ok(diesel::select(diesel::dsl::now).get_result::<NaiveDateTime>(conn)?))
        .await
        .ok()?;
    let source = match db.backend() {
        Backend::Sqlite => "the SQLite clock",
        Backend::Postgres => "the PostgreSQL server's clock",
    };
    Some(ClockSample::now(source, now.and_utc()))
}

/// The counts a support bundle carries: no names, numbers or message text.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub taken_at: DateTime<Utc>,
    pub appointments_by_status: BTreeMap<String, i64>,
    pub outbox_by_status: BTreeMap<String, i64>,
    pub inbox_pending: i64,
    pub escalations_open: i64,
    pub dead_letters_open: i64,
    pub timers_scheduled: i64,
}

/// Counts rows for the bundle's metrics snapshot.
pub async fn snapshot(db: &Database) -> Result<Snapshot, StoreError> {
    db.run(|conn| Ok(count(conn)?)).await
}

fn count(conn: &mut DbConnection) -> QueryResult<Snapshot> {
    let appointments_by_status = appointments::table
        .group_by(appointments::status)
        .select((appointments::status, count_star()))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect();
    let outbox_by_status = outbox::table
        .group_by(outbox::status)
        .select((outbox::status, count_star()))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect();
    let inbox_pending = inbox::table
        .filter(inbox::status.eq("pending"))
        .select(count_star())
        .first(conn)?;
    let escalations_open = escalations::table
        .filter(escalations::status.eq("open"))
        .select(count_star())
        .first(conn)?;
    let dead_letters_open = dead_letters::table
        .filter(dead_letters::status.eq("open"))
        .select(count_star())
        .first(conn)?;
    let timers_scheduled = timers::table
        .filter(timers::status.eq("scheduled"))
        .select(count_star())
        .first(conn)?;
    Ok(Snapshot {
        taken_at: Utc::now(),
        appointments_by_status,
        outbox_by_status,
        inbox_pending,
        escalations_open,
        dead_letters_open,
        timers_scheduled,
    })
}
