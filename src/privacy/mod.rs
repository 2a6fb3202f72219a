//! GDPR rights per customer (SPEC §7 Admin API, §8): **export** everything stored about
//! a customer as one JSON bundle, **erase** their personal data everywhere in one
//! transaction, **rectify** their contact details. The Admin API's handlers
//! (`api::admin::gdpr`) only parse, call these and answer.
//!
//! - [`footprint`] finds every row that concerns a customer: by id (their appointments
//!   and what hangs off those) and by content (inbox items, commands, dead letters,
//!   outbox rows and events carrying their number, address or ids).
//! - [`export`] reads those rows into a [`CustomerExport`](export::CustomerExport).
//! - [`erase`] rewrites them with the steps of [`rewrite`], using [`scrub`] to remove
//!   personal values from documents, and makes the engine let go of them.
//! - [`rectify`] checks and applies a correction.
//!
//! Each operation writes one audit entry (`customer.exported`, `customer.erased`,
//! `customer.rectified`) naming the customer by id with counts or field names only: the
//! audit log is append-only and hash-chained, so it must never need erasing.
//! What erasure keeps, and why, is in `docs/security.md` ("GDPR").

pub mod erase;
pub mod error;
pub mod export;
pub mod footprint;
pub mod rectify;
pub mod rewrite;
pub mod rows;
pub mod scrub;

pub use erase::Erasure;
pub use error::PrivacyError;
pub use export::CustomerExport;
pub use rectify::{Rectification, Rectified, RectifyRequest};
