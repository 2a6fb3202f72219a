//! Login lockout (SPEC §8): 5 failed logins within 15 minutes for the pair (username,
//! client address) lock that pair for 15 minutes from the fifth failure; while it is
//! locked every attempt is refused, the right password included. A successful login
//! clears the count.
//!
//! Every attempt is first recorded as failed ([`begin`], in the same transaction as the
//! lock check) and marked successful once its password verified ([`mark_success`]):
//! attempts racing each other count against the limit before any of them is verified,
//! so concurrency cannot buy extra guesses. Refused attempts are not recorded, so they
//! do not extend the lock; they are audited by the caller.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::models::LoginAttemptRow;
use crate::store::schema::login_attempts;
use crate::store::DbConnection;

/// Failures within [`WINDOW`] that lock the pair.
pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::minutes(15);
pub const LOCK: Duration = Duration::minutes(15);
/// Attempts older than this are never needed again.
pub const KEEP: Duration = Duration::hours(24);
/// Longest username kept for an attempt.
const MAX_USERNAME: usize = 128;

/// Until when failures at these instants (ascending) lock the pair: the latest fifth
/// failure that came within [`WINDOW`] of the four before it, plus [`LOCK`].
pub fn locked_until(failures: &[NaiveDateTime]) -> Option<NaiveDateTime> {
    failures
        .windows(MAX_FAILURES)
        .filter(|run| run[MAX_FAILURES - 1] - run[0] <= WINDOW)
        .map(|run| run[MAX_FAILURES - 1] + LOCK)
        .max()
}

/// The key an attempt is recorded under: trimmed, lower case, bounded.
pub fn attempt_username(raw: &str) -> String {
    raw.trim()
        .to_lowercase()
        .chars()
        .take(MAX_USERNAME)
        .collect()
}

/// Until when the pair is locked, if it is at `now`; `except` leaves one attempt out.
pub fn current_lock(
    conn: &mut DbConnection,
    tenant_id: &str,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
    except: Option<&str>,
) -> QueryResult<Option<NaiveDateTime>> {
    let at = now.naive_utc();
    let horizon = at - WINDOW - LOCK;
    let pair = login_attempts::table
        .filter(login_attempts::tenant_id.eq(tenant_id))
        .filter(login_attempts::username.eq(username))
        .filter(login_attempts::address.eq(address))
        .filter(login_attempts::id.ne(except.unwrap_or("")));
    let last_success: Option<NaiveDateTime> = pair
        .filter(login_attempts::success.eq(true))
        .filter(login_attempts::attempted_at.gt(horizon))
        .select(diesel::dsl::max(login_attempts::attempted_at))
        .first(conn)?;
    let since = last_success.map_or(horizon, |success| success.max(horizon));
    let failures: Vec<NaiveDateTime> = pair
        .filter(login_attempts::success.eq(false))
        .filter(login_attempts::attempted_at.gt(since))
        .order(login_attempts::attempted_at.asc())
        .select(login_attempts::attempted_at)
        .load(conn)?;
    Ok(locked_until(&failures).filter(|until| *until > at))
}

/// How an attempt may go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Recorded (as failed until [`mark_success`]); check the password.
    Proceed { attempt_id: String },
    /// The pair is locked until then; nothing was recorded.
    Locked { until: NaiveDateTime },
}

enum TxError {
    Locked(NaiveDateTime),
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(err: diesel::result::Error) -> Self {
        TxError::Query(err)
    }
}

/// Records an attempt for the pair unless it is locked.
pub fn begin(
    conn: &mut DbConnection,
    tenant_id: &str,
    username: &str,
    address: &str,
    now: DateTime<Utc>,
) -> QueryResult<Begin> {
    let row = LoginAttemptRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant_id.to_string(),
        username: attempt_username(username),
        address: address.to_string(),
        success: false,
        attempted_at: now.naive_utc(),
    };
    let outcome = conn.transaction(|conn| {
        // Written first: on SQLite this takes the write lock before the count is read,
        // so two attempts cannot both see room for one more.
        diesel::insert_into(login_attempts::table)
            .values(&row)
            .execute(conn)?;
        match current_lock(conn, tenant_id, &row.username, address, now, Some(&row.id))? {
            Some(until) => Err(TxError::Locked(until)),
            None => Ok(()),
        }
    });
    match outcome {
        Ok(()) => Ok(Begin::Proceed { attempt_id: row.id }),
        Err(TxError::Locked(until)) => Ok(Begin::Locked { until }),
        Err(TxError::Query(err)) => Err(err),
    }
}

/// Marks an attempt successful (which clears the pair's failures).
pub fn mark_success(conn: &mut DbConnection, attempt_id: &str) -> QueryResult<()> {
    diesel::update(login_attempts::table.find(attempt_id))
        .set(login_attempts::success.eq(true))
        .execute(conn)
        .map(|_| ())
}

/// Deletes attempts older than [`KEEP`].
pub fn prune(conn: &mut DbConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(
        login_attempts::table.filter(login_attempts::attempted_at.lt(now.naive_utc() - KEEP)),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> NaiveDateTime {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0)
            .expect("valid")
            .naive_utc()
    }

    #[test]
    fn five_failures_within_fifteen_minutes_lock_for_fifteen() {
        let four: Vec<_> = (0..4).map(at).collect();
        assert_eq!(locked_until(&four), None);
        let five: Vec<_> = (0..5).map(at).collect();
        assert_eq!(locked_until(&five), Some(at(4) + LOCK));
        let spread = vec![at(0), at(4), at(8), at(12), at(15)];
        assert_eq!(
            locked_until(&spread),
            Some(at(30)),
            "exactly 15 minutes counts"
        );
        let too_spread = vec![at(0), at(4), at(8), at(12), at(16)];
        assert_eq!(locked_until(&too_spread), None);
    }

    #[test]
    fn the_latest_qualifying_failure_sets_the_end() {
        let failures = vec![at(0), at(1), at(2), at(3), at(4), at(20), at(21)];
        assert_eq!(locked_until(&failures), Some(at(4) + LOCK));
        let failures = vec![at(0), at(1), at(2), at(3), at(4), at(5)];
        assert_eq!(locked_until(&failures), Some(at(5) + LOCK));
    }

    #[test]
    fn usernames_are_keyed_case_insensitively() {
        assert_eq!(attempt_username("  Ann "), "ann");
        assert_eq!(attempt_username(&"x".repeat(500)).len(), 128);
    }
}
