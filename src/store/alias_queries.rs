//! Queries for `appointment_aliases`: the other names a booking system gives one
//! appointment. A Calendly reschedule replaces the old invitee with a new one; the new
//! invitee's URI is bound to the appointment the chain started with, so deliveries that
//! name it reach that appointment.
//!
//! A binding is written once and never changed: [`bind`] inserts, and when the external
//! id is bound already (a concurrent delivery, a retry) answers the binding that holds.
//! Each statement runs on its own (no enclosing transaction), so two deliveries racing
//! to bind one id both see the same winner on SQLite and PostgreSQL alike.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::connection::DbConnection;
use super::models::to_naive;
use super::schema::appointment_aliases;

/// One binding: `external_id` (of `source`) names the appointment `appointment_id`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = appointment_aliases)]
pub struct Alias {
    pub tenant_id: String,
    pub source: String,
    pub external_id: String,
    pub appointment_id: String,
    /// The external id this one replaced (a reschedule's old booking), if any.
    pub replaces: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = appointment_aliases)]
struct NewAliasRow<'a> {
    tenant_id: &'a str,
    source: &'a str,
    external_id: &'a str,
    appointment_id: &'a str,
    replaces: Option<&'a str>,
    created_at: chrono::NaiveDateTime,
}

/// The binding of `external_id`, if there is one.
pub fn find(
    conn: &mut DbConnection,
    tenant_id: &str,
    source: &str,
    external_id: &str,
) -> QueryResult<Option<Alias>> {
    appointment_aliases::table
        .find((tenant_id, source, external_id))
        .select(Alias::as_select())
        .first(conn)
        .optional()
}

/// Binds `alias.external_id` to `alias.appointment_id` unless it is bound already, and
/// answers the binding that holds (the one just written, or the earlier one).
pub fn bind(conn: &mut DbConnection, alias: &Alias, now: DateTime<Utc>) -> QueryResult<Alias> {
    let inserted = diesel::insert_into(appointment_aliases::table)
        .values(NewAliasRow {
            tenant_id: &alias.tenant_id,
            source: &alias.source,
            external_id: &alias.external_id,
            appointment_id: &alias.appointment_id,
            replaces: alias.replaces.as_deref(),
            created_at: to_naive(now),
        })
        .execute(conn);
    match inserted {
        Ok(_) => Ok(alias.clone()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            find(conn, &alias.tenant_id, &alias.source, &alias.external_id)?
                .ok_or(DieselError::NotFound)
        }
        Err(other) => Err(other),
    }
}
