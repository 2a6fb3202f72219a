//! Finding everything stored about one customer: the rows that name them by id (their
//! appointments and what hangs off those) and the documents that carry their phone
//! number, e-mail address or ids inside a JSON payload (inbox, commands, dead letters,
//! outbox, events). Export reads these rows; erasure rewrites them.
//!
//! Rows are found by exact ids first; payload searches use `LIKE` on values that cannot
//! occur by chance in another customer's data (UUIDs, E.164 numbers, e-mail addresses).

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::error::PrivacyError;
use super::scrub::Needles;
use crate::store::schema::{
    appointment_aliases, appointments, commands, customers, dead_letters, escalations, events,
    idempotency_keys, inbox, messages, outbox, timers, workflow_instances,
};
use crate::store::DbConnection;

/// Ids per `IN (…)` list: well under SQLite's limit on bound parameters.
const CHUNK: usize = 500;
/// The idempotency scope of the Command API, whose stored answers name commands.
const COMMAND_SCOPE: &str = "command";

/// The personal values known about a customer: what is searched for and replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The current number and every number their messages were exchanged with.
    pub phones: BTreeSet<String>,
    pub names: BTreeSet<String>,
    pub emails: BTreeSet<String>,
    /// The text of every message sent to or received from them.
    pub texts: BTreeSet<String>,
}

impl Identity {
    /// What to find and replace in their documents.
    pub fn needles(&self) -> Needles {
        Needles::new(
            self.phones.iter().map(String::as_str),
            self.names.iter().map(String::as_str),
            self.emails.iter().map(String::as_str),
            self.texts.iter().map(String::as_str),
        )
    }

    /// These values and `other`'s.
    pub fn merged(mut self, other: &Identity) -> Identity {
        self.phones.extend(other.phones.iter().cloned());
        self.names.extend(other.names.iter().cloned());
        self.emails.extend(other.emails.iter().cloned());
        self.texts.extend(other.texts.iter().cloned());
        self
    }
}

/// Where a customer's data is: ids per table.
#[derive(Debug, Clone, Default)]
pub struct Footprint {
    pub tenant_id: String,
    pub customer_id: String,
    pub erased_at: Option<NaiveDateTime>,
    pub identity: Identity,
    pub appointment_ids: Vec<String>,
    /// Booking-system ids of their appointments (and their aliases).
    pub external_ids: Vec<String>,
    pub message_ids: Vec<String>,
    pub escalation_ids: Vec<String>,
    pub workflow_ids: Vec<String>,
    pub timer_ids: Vec<String>,
    pub outbox_ids: Vec<String>,
    pub dead_letter_ids: Vec<String>,
    pub inbox_ids: Vec<String>,
    pub command_ids: Vec<String>,
    /// Keys of the Command API's stored answers for their commands.
    pub idempotency_keys: Vec<String>,
    pub event_seqs: Vec<i64>,
}

type CustomerRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<NaiveDateTime>,
);

/// Everything stored about customer `customer_id` of `tenant_id`; `None` when there is
/// no such customer.
pub fn locate(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
) -> Result<Option<Footprint>, PrivacyError> {
    let row: Option<CustomerRow> = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(customers::id.eq(customer_id))
        .select((
            customers::phone_e164,
            customers::name,
            customers::email,
            customers::erased_at,
        ))
        .first(conn)
        .optional()?;
    let Some((phone, name, email, erased_at)) = row else {
        return Ok(None);
    };
    let mut found = Footprint {
        tenant_id: tenant_id.to_string(),
        customer_id: customer_id.to_string(),
        erased_at,
        ..Footprint::default()
    };
    found.identity.phones.extend(phone);
    found.identity.names.extend(name);
    found.identity.emails.extend(email);
    appointments_of(conn, &mut found)?;
    messages_of(conn, &mut found)?;
    owned_rows(conn, &mut found)?;
    documents(conn, &mut found)?;
    Ok(Some(found))
}

fn appointments_of(conn: &mut DbConnection, found: &mut Footprint) -> Result<(), PrivacyError> {
    let rows: Vec<(String, String)> = appointments::table
        .filter(appointments::tenant_id.eq(&found.tenant_id))
        .filter(appointments::customer_id.eq(&found.customer_id))
        .order(appointments::id.asc())
        .select((appointments::id, appointments::external_id))
        .load(conn)?;
    let mut external: BTreeSet<String> = BTreeSet::new();
    for (id, external_id) in rows {
        found.appointment_ids.push(id);
        external.insert(external_id);
    }
    for chunk in found.appointment_ids.chunks(CHUNK) {
        let aliases: Vec<(String, Option<String>)> = appointment_aliases::table
            .filter(appointment_aliases::tenant_id.eq(&found.tenant_id))
            .filter(appointment_aliases::appointment_id.eq_any(chunk))
            .select((
                appointment_aliases::external_id,
                appointment_aliases::replaces,
            ))
            .load(conn)?;
        for (external_id, replaces) in aliases {
            external.insert(external_id);
            external.extend(replaces);
        }
    }
    found.external_ids = external.into_iter().collect();
    Ok(())
}

type MessageRow = (String, String, String, Option<String>, Option<String>);

/// Their messages: by customer, by appointment, and unmatched ones from or to their
/// number. Collects the texts and the numbers they were exchanged with.
fn messages_of(conn: &mut DbConnection, found: &mut Footprint) -> Result<(), PrivacyError> {
    let columns = (
        messages::id,
        messages::direction,
        messages::body,
        messages::from_addr,
        messages::to_addr,
    );
    let mut rows: Vec<MessageRow> = messages::table
        .filter(messages::tenant_id.eq(&found.tenant_id))
        .filter(messages::customer_id.eq(&found.customer_id))
        .select(columns)
        .load(conn)?;
    for chunk in found.appointment_ids.chunks(CHUNK) {
        rows.extend(
            messages::table
                .filter(messages::tenant_id.eq(&found.tenant_id))
                .filter(messages::appointment_id.eq_any(chunk))
                .select(columns)
                .load::<MessageRow>(conn)?,
        );
    }
    let phones: Vec<String> = found.identity.phones.iter().cloned().collect();
    if !phones.is_empty() {
        rows.extend(
            messages::table
                .filter(messages::tenant_id.eq(&found.tenant_id))
                .filter(messages::customer_id.is_null())
                .filter(
                    messages::from_addr
                        .eq_any(&phones)
                        .or(messages::to_addr.eq_any(&phones)),
                )
                .select(columns)
                .load::<MessageRow>(conn)?,
        );
    }
    let mut ids = BTreeSet::new();
    for (id, direction, body, from, to) in rows {
        if !ids.insert(id) {
            continue;
        }
        found.identity.texts.insert(body);
        // The other party: the customer's number (or WhatsApp address) at the time.
        let theirs = if direction == "inbound" { from } else { to };
        found.identity.phones.extend(theirs.map(|a| {
            a.strip_prefix("whatsapp:")
                .map_or_else(|| a.clone(), str::to_string)
        }));
    }
    found.message_ids = ids.into_iter().collect();
    Ok(())
}

/// Rows that name the customer or one of their appointments by id.
fn owned_rows(conn: &mut DbConnection, found: &mut Footprint) -> Result<(), PrivacyError> {
    let tenant = found.tenant_id.clone();
    let customer = found.customer_id.clone();
    let mut escalation_ids: BTreeSet<String> = escalations::table
        .filter(escalations::tenant_id.eq(&tenant))
        .filter(escalations::customer_id.eq(&customer))
        .select(escalations::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut workflow_ids: BTreeSet<String> = workflow_instances::table
        .filter(workflow_instances::tenant_id.eq(&tenant))
        .filter(workflow_instances::customer_id.eq(&customer))
        .select(workflow_instances::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut timer_ids: BTreeSet<String> = timers::table
        .filter(timers::tenant_id.eq(&tenant))
        .filter(timers::owner_type.eq("customer"))
        .filter(timers::owner_id.eq(&customer))
        .select(timers::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut owners: Vec<String> = vec![customer.clone()];
    owners.extend(found.identity.phones.iter().cloned());
    let mut outbox_ids: BTreeSet<String> = outbox::table
        .filter(outbox::tenant_id.eq(&tenant))
        .filter(outbox::owner_type.eq("customer"))
        .filter(outbox::owner_id.eq_any(&owners))
        .select(outbox::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut event_seqs: BTreeSet<i64> = events::table
        .filter(events::tenant_id.eq(&tenant))
        .filter(events::aggregate_id.eq(&customer))
        .select(events::seq)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    for chunk in found.appointment_ids.chunks(CHUNK) {
        escalation_ids.extend(
            escalations::table
                .filter(escalations::tenant_id.eq(&tenant))
                .filter(escalations::appointment_id.eq_any(chunk))
                .select(escalations::id)
                .load::<String>(conn)?,
        );
        workflow_ids.extend(
            workflow_instances::table
                .filter(workflow_instances::tenant_id.eq(&tenant))
                .filter(workflow_instances::appointment_id.eq_any(chunk))
                .select(workflow_instances::id)
                .load::<String>(conn)?,
        );
        timer_ids.extend(
            timers::table
                .filter(timers::tenant_id.eq(&tenant))
                .filter(timers::owner_type.eq("appointment"))
                .filter(timers::owner_id.eq_any(chunk))
                .select(timers::id)
                .load::<String>(conn)?,
        );
        outbox_ids.extend(
            outbox::table
                .filter(outbox::tenant_id.eq(&tenant))
                .filter(outbox::owner_type.eq("appointment"))
                .filter(outbox::owner_id.eq_any(chunk))
                .select(outbox::id)
                .load::<String>(conn)?,
        );
        event_seqs.extend(
            events::table
                .filter(events::tenant_id.eq(&tenant))
                .filter(events::aggregate_id.eq_any(chunk))
                .select(events::seq)
                .load::<i64>(conn)?,
        );
    }
    found.escalation_ids = escalation_ids.into_iter().collect();
    found.workflow_ids = workflow_ids.into_iter().collect();
    found.timer_ids = timer_ids.into_iter().collect();
    found.outbox_ids = outbox_ids.into_iter().collect();
    found.event_seqs = event_seqs.into_iter().collect();
    Ok(())
}

/// `%text%` for LIKE, its wildcards escaped (escape character `\`).
fn containing(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Documents found by what they contain: dead letters, inbox items, commands and their
/// stored answers, and events or outbox rows that carry the customer's id or number.
fn documents(conn: &mut DbConnection, found: &mut Footprint) -> Result<(), PrivacyError> {
    let tenant = found.tenant_id.clone();
    // Values that identify this customer inside a payload, and no one else.
    let mut markers: Vec<String> = vec![found.customer_id.clone()];
    markers.extend(found.appointment_ids.iter().cloned());
    markers.extend(found.identity.phones.iter().cloned());
    markers.extend(found.identity.emails.iter().cloned());
    let mut outbox_ids: BTreeSet<String> = found.outbox_ids.iter().cloned().collect();
    let mut event_seqs: BTreeSet<i64> = found.event_seqs.iter().copied().collect();
    let mut dead_letter_ids: BTreeSet<String> = BTreeSet::new();
    let mut inbox_ids: BTreeSet<String> = BTreeSet::new();
    let mut command_ids: BTreeSet<String> = BTreeSet::new();
    for marker in &markers {
        let pattern = containing(marker);
        outbox_ids.extend(
            outbox::table
                .filter(outbox::tenant_id.eq(&tenant))
                .filter(outbox::payload.like(&pattern).escape('\\'))
                .select(outbox::id)
                .load::<String>(conn)?,
        );
        event_seqs.extend(
            events::table
                .filter(events::tenant_id.eq(&tenant))
                .filter(events::payload.like(&pattern).escape('\\'))
                .select(events::seq)
                .load::<i64>(conn)?,
        );
        dead_letter_ids.extend(
            dead_letters::table
                .filter(dead_letters::tenant_id.eq(&tenant))
                .filter(dead_letters::payload.like(&pattern).escape('\\'))
                .select(dead_letters::id)
                .load::<String>(conn)?,
        );
        inbox_ids.extend(
            inbox::table
                .filter(inbox::tenant_id.eq(&tenant))
                .filter(inbox::payload.like(&pattern).escape('\\'))
                .select(inbox::id)
                .load::<String>(conn)?,
        );
        command_ids.extend(
            commands::table
                .filter(commands::tenant_id.eq(&tenant))
                .filter(commands::payload.like(&pattern).escape('\\'))
                .select(commands::id)
                .load::<String>(conn)?,
        );
    }
    let outbox_list: Vec<String> = outbox_ids.iter().cloned().collect();
    for chunk in outbox_list.chunks(CHUNK) {
        dead_letter_ids.extend(
            dead_letters::table
                .filter(dead_letters::tenant_id.eq(&tenant))
                .filter(dead_letters::outbox_id.eq_any(chunk))
                .select(dead_letters::id)
                .load::<String>(conn)?,
        );
    }
    // Commands addressed to the customer, their appointments, escalations or dead
    // letters.
    let mut aggregates: Vec<String> = vec![found.customer_id.clone()];
    aggregates.extend(found.appointment_ids.iter().cloned());
    aggregates.extend(found.external_ids.iter().cloned());
    aggregates.extend(found.escalation_ids.iter().cloned());
    aggregates.extend(dead_letter_ids.iter().cloned());
    for chunk in aggregates.chunks(CHUNK) {
        command_ids.extend(
            commands::table
                .filter(commands::tenant_id.eq(&tenant))
                .filter(commands::aggregate_id.eq_any(chunk))
                .select(commands::id)
                .load::<String>(conn)?,
        );
    }
    let command_list: Vec<String> = command_ids.iter().cloned().collect();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for chunk in command_list.chunks(CHUNK) {
        keys.extend(
            idempotency_keys::table
                .filter(idempotency_keys::tenant_id.eq(&tenant))
                .filter(idempotency_keys::scope.eq(COMMAND_SCOPE))
                .filter(idempotency_keys::resource_id.eq_any(chunk))
                .select(idempotency_keys::key)
                .load::<String>(conn)?,
        );
    }
    found.outbox_ids = outbox_list;
    found.event_seqs = event_seqs.into_iter().collect();
    found.dead_letter_ids = dead_letter_ids.into_iter().collect();
    found.inbox_ids = inbox_ids.into_iter().collect();
    found.command_ids = command_list;
    found.idempotency_keys = keys.into_iter().collect();
    Ok(())
}

/// The command scope of [`Footprint::idempotency_keys`].
pub fn command_scope() -> &'static str {
    COMMAND_SCOPE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(containing("a_b%c\\"), "%a\\_b\\%c\\\\%");
        assert_eq!(containing("+15557770001"), "%+15557770001%");
    }

    #[test]
    fn identities_merge() {
        let mut a = Identity::default();
        a.phones.insert("+1".into());
        let mut b = Identity::default();
        b.names.insert("Jane".into());
        let merged = a.merged(&b);
        assert!(merged.phones.contains("+1") && merged.names.contains("Jane"));
    }
}
