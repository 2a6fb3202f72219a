//! The audit log: append-only and hash-chained (SPEC §8), in the `audit_log` table.
//!
//! Every entry carries `hash = SHA-256(canonical(prev_hash, seq, tenant, occurred_at,
//! actor_type, actor_id, action, subject_type, subject_id, details))` and the previous
//! entry's hash as `prev_hash` (the first entry links to [`chain::GENESIS`]), so editing
//! any field of any entry, or removing one, is found by [`verify`], which names the
//! first bad entry. The encoding is in [`chain`]; `aro audit verify` runs [`verify`].
//!
//! - [`record`] appends one entry. Appends are serialized: on PostgreSQL the table is
//!   locked (`EXCLUSIVE`) until the transaction ends, on SQLite the transaction starts
//!   with a write and so holds the database's write lock. Call it as the **last** write
//!   of a transaction (or on its own): every writer then takes the audit lock after its
//!   other locks, in the same order, and two of them cannot deadlock.
//! - Sequence numbers are contiguous (`seq` = the highest ever used + 1; on SQLite the
//!   high-water mark in `sqlite_sequence` survives deleting the newest entries, so a
//!   truncated tail is found too). On PostgreSQL a truncated tail is found by giving
//!   `verify` an anchor (`--anchor SEQ:HASH`, a head printed by an earlier run).
//!
//! **Pseudonymous ids only.** Entries name actors and subjects by opaque ids (user,
//! token, customer and appointment ids, secret names) and never hold phone numbers,
//! e-mail addresses, names or message bodies: a GDPR erasure deletes or rewrites the
//! personal data elsewhere while every audit entry stays as written, so the chain keeps
//! verifying. [`record`] refuses details that contain an E.164 number or an e-mail
//! address as a second line of defence.
//!
//! The chain is tamper-evident, not tamper-proof: someone with write access to the
//! database who recomputes every later hash is caught only by an anchor kept elsewhere.

pub mod chain;
mod models;
mod queries;

pub use models::AuditRow;
pub use queries::{list, record, verify, Anchor, BadEntry, Problem, VerifyReport};

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;

/// Everything that can go wrong appending to, reading or verifying the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// The details are not a JSON object.
    #[error("audit details must be a JSON object")]
    DetailsNotObject,
    /// The details hold something that looks like personal data.
    #[error("audit details at {path} look like personal data ({kind}); use a pseudonymous id")]
    PersonalData { path: String, kind: &'static str },
}

/// Who did it: a kind (`user`, `token`, `cli`, `system`, `anonymous`) and an opaque id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub actor_type: String,
    pub actor_id: String,
}

impl Actor {
    pub fn new(actor_type: impl Into<String>, actor_id: impl Into<String>) -> Self {
        Self {
            actor_type: actor_type.into(),
            actor_id: actor_id.into(),
        }
    }

    /// An admin user, by id.
    pub fn user(id: impl Into<String>) -> Self {
        Self::new("user", id)
    }

    /// An API token, by id.
    pub fn token(id: impl Into<String>) -> Self {
        Self::new("token", id)
    }

    /// Someone at the command line of this host.
    pub fn cli() -> Self {
        Self::new("cli", "local")
    }

    /// The daemon itself.
    pub fn system() -> Self {
        Self::new("system", "aro")
    }

    /// Someone not (yet) authenticated, by a pseudonym (e.g. a hash of what they typed).
    pub fn anonymous(pseudonym: impl Into<String>) -> Self {
        Self::new("anonymous", pseudonym)
    }
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub tenant_id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    /// Dotted, lower case: `auth.login.succeeded`, `secrets.set`, …
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    /// A JSON object of pseudonymous facts.
    pub details: Value,
}

impl NewEntry {
    /// An entry happening now, with no subject and empty details.
    pub fn new(tenant_id: impl Into<String>, actor: Actor, action: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            occurred_at: Utc::now(),
            actor,
            action: action.into(),
            subject_type: None,
            subject_id: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn subject(mut self, subject_type: impl Into<String>, id: impl Into<String>) -> Self {
        self.subject_type = Some(subject_type.into());
        self.subject_id = Some(id.into());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = at;
        self
    }

    /// The instant as stored: microseconds, which both backends keep exactly.
    pub(crate) fn stored_instant(&self) -> chrono::NaiveDateTime {
        self.occurred_at.trunc_subsecs(6).naive_utc()
    }
}
