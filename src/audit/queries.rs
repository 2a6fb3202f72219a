//! Appending to, listing and verifying the `audit_log` table.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use regex::Regex;
use serde_json::Value;

use super::chain::{canonical_json, entry_hash, GENESIS};
use super::models::AuditRow;
use super::{AuditError, NewEntry};
use crate::store::schema::audit_log;
use crate::store::{Backend, DbConnection};

/// Rows read per query while verifying.
const VERIFY_BATCH: i64 = 1000;

/// Appends `entry` to the chain and returns the stored row. Runs in a transaction of
/// its own (a savepoint inside the caller's); see the module notes on lock order.
pub fn record(conn: &mut DbConnection, entry: &NewEntry) -> Result<AuditRow, AuditError> {
    if !entry.details.is_object() {
        return Err(AuditError::DetailsNotObject);
    }
    check_pseudonymous(&entry.details, "details")?;
    check_text(&entry.actor.actor_id, "actor_id")?;
    if let Some(subject) = &entry.subject_id {
        check_text(subject, "subject_id")?;
    }
    let details = canonical_json(&entry.details);
    let occurred_at = entry.stored_instant();
    conn.transaction(|conn| {
        lock_for_append(conn)?;
        let last: Option<(i64, String)> = audit_log::table
            .order(audit_log::seq.desc())
            .select((audit_log::seq, audit_log::hash))
            .first(conn)
            .optional()?;
        let last_seq = last.as_ref().map_or(0, |(seq, _)| *seq);
        let seq = last_seq.max(sqlite_high_water(conn)?) + 1;
        let prev_hash = last.map_or_else(|| GENESIS.to_string(), |(_, hash)| hash);
        let mut row = AuditRow {
            seq,
            tenant_id: entry.tenant_id.clone(),
            occurred_at,
            actor_type: entry.actor.actor_type.clone(),
            actor_id: entry.actor.actor_id.clone(),
            action: entry.action.clone(),
            subject_type: entry.subject_type.clone(),
            subject_id: entry.subject_id.clone(),
            details: details.clone(),
            prev_hash,
            hash: String::new(),
        };
        row.hash = entry_hash(&row.hash_input());
        diesel::insert_into(audit_log::table)
            .values(&row)
            .execute(conn)?;
        Ok(row)
    })
}

/// Serializes appends until the transaction ends: PostgreSQL locks the table against
/// other writers (readers go on); on SQLite a write statement (changing nothing) takes
/// the database's write lock, waiting `busy_timeout` for it, before the chain's head is
/// read.
fn lock_for_append(conn: &mut DbConnection) -> QueryResult<()> {
    match conn.backend() {
        Backend::Postgres => conn.batch_execute("LOCK TABLE audit_log IN EXCLUSIVE MODE"),
        Backend::Sqlite => conn.batch_execute("UPDATE audit_log SET seq = seq WHERE seq < 0"),
    }
}

#[derive(QueryableByName)]
struct HighWater {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// The highest `seq` SQLite ever handed out for `audit_log` (AUTOINCREMENT keeps it in
/// `sqlite_sequence`, and it does not go down when rows are deleted); 0 elsewhere.
fn sqlite_high_water(conn: &mut DbConnection) -> QueryResult<i64> {
    match conn {
        DbConnection::Sqlite(sqlite) => Ok(diesel::sql_query(
            "SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'",
        )
        .get_result::<HighWater>(sqlite)
        .optional()?
        .map_or(0, |h| h.seq)),
        DbConnection::Postgres(_) => Ok(0),
    }
}

/// A tenant's entries after `after` (a seq), oldest first, at most `limit`.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    audit_log::table
        .filter(audit_log::tenant_id.eq(tenant_id))
        .filter(audit_log::seq.gt(after))
        .order(audit_log::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

/// A head recorded earlier (`SEQ:HASH`): the chain must still contain it, unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

impl FromStr for Anchor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (seq, hash) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| "expected SEQ:HASH".to_string())?;
        let seq = seq
            .parse()
            .map_err(|_| format!("{seq:?} is not a sequence number"))?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the hash must be 64 hex digits".to_string());
        }
        Ok(Anchor { seq, hash })
    }
}

/// What is wrong with the first bad entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The entry with this seq is gone (a gap, or removed from the end).
    Missing,
    /// Its `prev_hash` is not the hash of the entry before it.
    BrokenLink,
    /// Its content (or its seq, or its hash) was changed.
    Altered,
    /// It is not the entry the anchor recorded.
    AnchorMismatch,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::Missing => "entry missing (removed)",
            Problem::BrokenLink => "broken link (prev_hash is not the previous entry's hash)",
            Problem::Altered => "entry altered (its hash does not match its content)",
            Problem::AnchorMismatch => "entry differs from the anchor recorded earlier",
        })
    }
}

/// The first entry that does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    pub seq: i64,
    pub problem: Problem,
}

impl fmt::Display for BadEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.problem)
    }
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries read (up to the first bad one).
    pub entries: u64,
    /// The last good entry: its seq and hash (an anchor for a later run).
    pub head: Option<(i64, String)>,
    pub first_bad: Option<BadEntry>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Walks the whole chain in seq order and names the first bad entry: a gap in seq or a
/// removed tail ([`Problem::Missing`]), a `prev_hash` that is not the previous entry's
/// hash, a hash that does not match the entry's content, or a mismatch with `anchor`.
pub fn verify(
    conn: &mut DbConnection,
    anchor: Option<&Anchor>,
) -> Result<VerifyReport, AuditError> {
    // Read first: entries appended while walking only raise the head.
    let high_water = sqlite_high_water(conn)?;
    let mut report = VerifyReport {
        entries: 0,
        head: None,
        first_bad: None,
    };
    let mut expected = 1i64;
    let mut prev_hash = GENESIS.to_string();
    let mut cursor = i64::MIN;
    loop {
        let batch: Vec<AuditRow> = audit_log::table
            .filter(audit_log::seq.gt(cursor))
            .order(audit_log::seq.asc())
            .limit(VERIFY_BATCH)
            .select(AuditRow::as_select())
            .load(conn)?;
        let Some(last) = batch.last() else { break };
        cursor = last.seq;
        for row in &batch {
            let problem = if row.seq > expected {
                Some(BadEntry {
                    seq: expected,
                    problem: Problem::Missing,
                })
            } else if row.seq < expected {
                Some(BadEntry {
                    seq: row.seq,
                    problem: Problem::Altered,
                })
            } else if row.prev_hash != prev_hash {
                Some(BadEntry {
                    seq: row.seq,
                    problem: Problem::BrokenLink,
                })
            } else if entry_hash(&row.hash_input()) != row.hash {
                Some(BadEntry {
                    seq: row.seq,
                    problem: Problem::Altered,
                })
            } else if anchor.is_some_and(|a| a.seq == row.seq && a.hash != row.hash) {
                Some(BadEntry {
                    seq: row.seq,
                    problem: Problem::AnchorMismatch,
                })
            } else {
                None
            };
            if problem.is_some() {
                report.first_bad = problem;
                return Ok(report);
            }
            report.entries += 1;
            report.head = Some((row.seq, row.hash.clone()));
            prev_hash.clone_from(&row.hash);
            expected += 1;
        }
        if (batch.len() as i64) < VERIFY_BATCH {
            break;
        }
    }
    let anchored = anchor.map_or(0, |a| a.seq);
    if high_water >= expected || anchored >= expected {
        report.first_bad = Some(BadEntry {
            seq: expected,
            problem: Problem::Missing,
        });
    }
    Ok(report)
}

fn phone_pattern() -> &'static Regex {
    static PHONE: OnceLock<Regex> = OnceLock::new();
    PHONE.get_or_init(|| Regex::new(r"\+[1-9][0-9]{7,14}").expect("valid regex"))
}

fn email_pattern() -> &'static Regex {
    static EMAIL: OnceLock<Regex> = OnceLock::new();
    EMAIL.get_or_init(|| {
        Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
            .expect("valid regex")
    })
}

fn check_text(text: &str, path: &str) -> Result<(), AuditError> {
    let kind = if phone_pattern().is_match(text) {
        "phone number"
    } else if email_pattern().is_match(text) {
        "e-mail address"
    } else {
        return Ok(());
    };
    Err(AuditError::PersonalData {
        path: path.to_string(),
        kind,
    })
}

fn check_pseudonymous(value: &Value, path: &str) -> Result<(), AuditError> {
    match value {
        Value::String(text) => check_text(text, path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_pseudonymous(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(key, item)| check_pseudonymous(item, &format!("{path}.{key}"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn anchors_parse_from_seq_and_hash() {
        let hash = "ab".repeat(32);
        assert_eq!(
            format!("12:{hash}").parse::<Anchor>(),
            Ok(Anchor {
                seq: 12,
                hash: hash.clone()
            })
        );
        assert!("12".parse::<Anchor>().is_err());
        assert!("x:ab".parse::<Anchor>().is_err());
        assert!(format!("1:{}", "zz".repeat(32)).parse::<Anchor>().is_err());
    }

    #[test]
    fn personal_data_in_details_is_refused() {
        assert!(check_pseudonymous(&json!({"customerId": "c-123", "n": 5}), "details").is_ok());
        assert!(check_pseudonymous(&json!({"at": "2026-11-25T10:00:00Z"}), "details").is_ok());
        let err = check_pseudonymous(&json!({"to": ["+15551234567"]}), "details")
            .expect_err("phone refused");
        assert!(err.to_string().contains("details.to[0]"), "{err}");
        assert!(err.to_string().contains("phone"), "{err}");
        assert!(check_pseudonymous(&json!({"who": "ann@example.com"}), "details").is_err());
    }

    #[test]
    fn bad_entries_name_seq_and_reason() {
        let bad = BadEntry {
            seq: 7,
            problem: Problem::Missing,
        };
        assert_eq!(bad.to_string(), "seq 7: entry missing (removed)");
    }
}
