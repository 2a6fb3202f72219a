//! `customer.exported`: one JSON bundle of everything stored about a customer (GDPR
//! art. 15 and 20) — the customer row, consents, appointments and their aliases,
//! messages with their delivery history, the events of their appointments, escalations,
//! workflows, timers, outbox rows, dead letters, the inbox items (webhook payloads) and
//! Command API commands that concern them, and the Command API's stored answers for
//! those commands. Audited with counts only.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::error::PrivacyError;
use super::footprint::{self, Footprint};
use super::rows::{
    AliasRow, AppointmentRow, CommandRow, ConsentRow, CustomerRow, DeadLetterRow, EscalationRow,
    EventRow, IdempotencyRow, InboxRow, MessageExport, MessageRow, OutboxRow, StatusRow, TimerRow,
    WorkflowRow,
};
use crate::audit::{self, Actor, NewEntry};
use crate::store::schema::{
    appointment_aliases, appointments, commands, consents, customers, dead_letters, escalations,
    events, idempotency_keys, inbox, message_status_history, messages, outbox, timers,
    workflow_instances,
};
use crate::store::DbConnection;

/// The format of the bundle, for whoever reads it later.
pub const FORMAT: &str = "aro.customer-export.v1";

/// Ids per `IN (…)` list.
const CHUNK: usize = 500;

/// Everything stored about one customer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerExport {
    pub format: &'static str,
    pub exported_at: DateTime<Utc>,
    pub tenant_id: String,
    pub customer: CustomerRow,
    pub consents: Vec<ConsentRow>,
    pub appointments: Vec<AppointmentRow>,
    pub appointment_aliases: Vec<AliasRow>,
    pub messages: Vec<MessageExport>,
    pub events: Vec<EventRow>,
    pub escalations: Vec<EscalationRow>,
    pub workflows: Vec<WorkflowRow>,
    pub timers: Vec<TimerRow>,
    pub outbox: Vec<OutboxRow>,
    pub dead_letters: Vec<DeadLetterRow>,
    pub inbox: Vec<InboxRow>,
    pub commands: Vec<CommandRow>,
    pub idempotency_keys: Vec<IdempotencyRow>,
}

impl CustomerExport {
    /// Rows per part, for the audit entry.
    fn counts(&self) -> serde_json::Value {
        json!({
            "consents": self.consents.len(),
            "appointments": self.appointments.len(),
            "appointmentAliases": self.appointment_aliases.len(),
            "messages": self.messages.len(),
            "events": self.events.len(),
            "escalations": self.escalations.len(),
            "workflows": self.workflows.len(),
            "timers": self.timers.len(),
            "outbox": self.outbox.len(),
            "deadLetters": self.dead_letters.len(),
            "inbox": self.inbox.len(),
            "commands": self.commands.len(),
            "idempotencyKeys": self.idempotency_keys.len(),
        })
    }
}

/// Loads rows of `table` whose `column` is one of `ids`, in chunks.
macro_rules! by_ids {
    ($conn:expr, $tenant:expr, $ids:expr, $table:ident, $column:ident, $row:ty, $order:expr) => {{
        let mut rows: Vec<$row> = Vec::new();
        for chunk in $ids.chunks(CHUNK) {
            rows.extend(
                $table::table
                    .filter($table::tenant_id.eq($tenant))
                    .filter($table::$column.eq_any(chunk))
                    .order($order)
                    .select(<$row>::as_select())
                    .load::<$row>($conn)?,
            );
        }
        rows
    }};
}

/// Everything stored about customer `customer_id`, and the audit entry saying `actor`
/// exported it (written before the bundle is returned).
pub fn export(
    conn: &mut DbConnection,
    tenant_id: &str,
    customer_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<CustomerExport, PrivacyError> {
    let found = footprint::locate(conn, tenant_id, customer_id)?
        .ok_or_else(|| PrivacyError::NotFound(customer_id.to_string()))?;
    let bundle = load(conn, &found, now)?;
    audit::record(
        conn,
        &NewEntry::new(tenant_id, actor.clone(), "customer.exported")
            .subject("customer", customer_id)
            .details(bundle.counts())
            .at(now),
    )?;
    Ok(bundle)
}

fn load(
    conn: &mut DbConnection,
    found: &Footprint,
    now: DateTime<Utc>,
) -> Result<CustomerExport, PrivacyError> {
    let tenant = found.tenant_id.as_str();
    let customer: CustomerRow = customers::table
        .filter(customers::tenant_id.eq(tenant))
        .filter(customers::id.eq(&found.customer_id))
        .select(CustomerRow::as_select())
        .first(conn)?;
    let consents: Vec<ConsentRow> = consents::table
        .filter(consents::tenant_id.eq(tenant))
        .filter(consents::customer_id.eq(&found.customer_id))
        .order((consents::recorded_at.asc(), consents::id.asc()))
        .select(ConsentRow::as_select())
        .load(conn)?;
    let appointments = by_ids!(
        conn,
        tenant,
        found.appointment_ids,
        appointments,
        id,
        AppointmentRow,
        appointments::starts_at.asc()
    );
    let appointment_aliases = by_ids!(
        conn,
        tenant,
        found.appointment_ids,
        appointment_aliases,
        appointment_id,
        AliasRow,
        appointment_aliases::created_at.asc()
    );
    let messages = messages_with_history(conn, found)?;
    let events = by_ids!(
        conn,
        tenant,
        found.event_seqs,
        events,
        seq,
        EventRow,
        events::seq.asc()
    );
    let escalations = by_ids!(
        conn,
        tenant,
        found.escalation_ids,
        escalations,
        id,
        EscalationRow,
        escalations::created_at.asc()
    );
    let workflows = by_ids!(
        conn,
        tenant,
        found.workflow_ids,
        workflow_instances,
        id,
        WorkflowRow,
        workflow_instances::created_at.asc()
    );
    let timers = by_ids!(
        conn,
        tenant,
        found.timer_ids,
        timers,
        id,
        TimerRow,
        timers::due_at.asc()
    );
    let outbox = by_ids!(
        conn,
        tenant,
        found.outbox_ids,
        outbox,
        id,
        OutboxRow,
        outbox::created_at.asc()
    );
    let dead_letters = by_ids!(
        conn,
        tenant,
        found.dead_letter_ids,
        dead_letters,
        id,
        DeadLetterRow,
        dead_letters::created_at.asc()
    );
    let inbox = by_ids!(
        conn,
        tenant,
        found.inbox_ids,
        inbox,
        id,
        InboxRow,
        inbox::received_at.asc()
    );
    let commands = by_ids!(
        conn,
        tenant,
        found.command_ids,
        commands,
        id,
        CommandRow,
        commands::created_at.asc()
    );
    let mut idempotency_keys: Vec<IdempotencyRow> = Vec::new();
    for chunk in found.idempotency_keys.chunks(CHUNK) {
        idempotency_keys.extend(
            idempotency_keys::table
                .filter(idempotency_keys::tenant_id.eq(tenant))
                .filter(idempotency_keys::scope.eq(footprint::command_scope()))
                .filter(idempotency_keys::key.eq_any(chunk))
                .order(idempotency_keys::created_at.asc())
                .select(IdempotencyRow::as_select())
                .load::<IdempotencyRow>(conn)?,
        );
    }
    Ok(CustomerExport {
        format: FORMAT,
        exported_at: now,
        tenant_id: tenant.to_string(),
        customer,
        consents,
        appointments,
        appointment_aliases,
        messages,
        events,
        escalations,
        workflows,
        timers,
        outbox,
        dead_letters,
        inbox,
        commands,
        idempotency_keys,
    })
}

/// The customer's messages, oldest first, each with its delivery reports.
fn messages_with_history(
    conn: &mut DbConnection,
    found: &Footprint,
) -> Result<Vec<MessageExport>, PrivacyError> {
    let tenant = found.tenant_id.as_str();
    let mut rows = by_ids!(
        conn,
        tenant,
        found.message_ids,
        messages,
        id,
        MessageRow,
        messages::created_at.asc()
    );
    rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let reports = by_ids!(
        conn,
        tenant,
        found.message_ids,
        message_status_history,
        message_id,
        StatusRow,
        message_status_history::occurred_at.asc()
    );
    let mut history: HashMap<String, Vec<StatusRow>> = HashMap::new();
    for report in reports {
        history
            .entry(report.message_id.clone())
            .or_default()
            .push(report);
    }
    Ok(rows
        .into_iter()
        .map(|message| {
            let mut status_history = history.remove(&message.id).unwrap_or_default();
            status_history.sort_by_key(|s| s.occurred_at);
            MessageExport {
                message,
                status_history,
            }
        })
        .collect())
}
