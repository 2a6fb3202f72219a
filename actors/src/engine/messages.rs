//! The appointment's outgoing messages: the values a template is rendered with (dates
//! and times in the appointment's zone), the rendering through the profile pack (its
//! opt-out footer and forbidden-content filter included), and the outbox row — or, when
//! the filter stops the body, a high escalation instead of a message.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::decide::{DecideContext, EngineSettings};
use crate::ports::providers::Channel;
use crate::ports::store::{
    AppointmentRecord, Commit, CustomerRecord, NewEscalation, NewEvent, NewOutbox, ProviderDomain,
};
use crate::profile::Variable;

/// The business as its messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessInfo {
    pub name: String,
    /// E.164; offered when the booking system gave no link.
    pub phone: Option<String>,
    pub review_url: Option<String>,
    /// Where a customer books again.
    pub booking_url: Option<String>,
    /// ISO 4217.
    pub currency: String,
}

impl Default for BusinessInfo {
    fn default() -> Self {
        Self {
            name: "My Practice".to_string(),
            phone: None,
            review_url: None,
            booking_url: None,
            currency: "USD".to_string(),
        }
    }
}

/// Kinds that answer what the customer just sent (a reply, a payment). They go out at
/// once: quiet hours protect customers from messages they did not ask for, and these
/// they did (the customer wrote first).
pub const RESPONSE_KINDS: [&str; 6] = [
    "confirm_ack",
    "reschedule_reply",
    "cancel_reply",
    "opt_out_confirmation",
    "help_reply",
    "deposit_receipt",
];

/// `5000, "USD"` → `50.00 USD`.
pub fn format_amount(cents: i64, currency: &str) -> String {
    format!("{}.{:02} {}", cents / 100, (cents % 100).abs(), currency)
}

/// Values every message may use: the business and the pack's words.
pub fn business_values(settings: &EngineSettings) -> BTreeMap<Variable, String> {
    let business = &settings.business;
    let phone = business.phone.clone().unwrap_or_default();
    BTreeMap::from([
        (Variable::BusinessName, business.name.clone()),
        (Variable::BusinessPhone, phone),
        (
            Variable::CustomerTerm,
            settings.pack.terminology.customer.clone(),
        ),
        (
            Variable::AppointmentTerm,
            settings.pack.terminology.appointment.clone(),
        ),
    ])
}

/// Values for a message about `record`, with its date and time in `zone`.
pub fn appointment_values(
    record: &AppointmentRecord,
    customer: Option<&CustomerRecord>,
    zone: Tz,
    settings: &EngineSettings,
) -> BTreeMap<Variable, String> {
    let mut values = business_values(settings);
    let business = &settings.business;
    let phone = business.phone.clone().unwrap_or_default();
    let local = record.starts_at.with_timezone(&zone);
    let first_name = customer
        .and_then(|c| c.name.as_deref())
        .and_then(|n| n.split_whitespace().next())
        .unwrap_or("there")
        .to_string();
    values.extend([
        (Variable::FirstName, first_name),
        (Variable::Date, local.format("%a, %b %-d").to_string()),
        (Variable::Time, local.format("%-I:%M %p").to_string()),
        (
            Variable::Service,
            record
                .service_type
                .clone()
                .unwrap_or_else(|| settings.pack.terminology.appointment.clone()),
        ),
        (
            Variable::CancelLink,
            record.cancel_url.clone().unwrap_or_else(|| phone.clone()),
        ),
        (
            Variable::RescheduleLink,
            record
                .reschedule_url
                .clone()
                .unwrap_or_else(|| phone.clone()),
        ),
        (
            Variable::BookingLink,
            business
                .booking_url
                .clone()
                .unwrap_or_else(|| phone.clone()),
        ),
        (
            Variable::ReviewLink,
            business.review_url.clone().unwrap_or_default(),
        ),
        (
            Variable::DepositAmount,
            format_amount(
                settings.pack.policy.deposit.amount_cents,
                &business.currency,
            ),
        ),
    ]);
    values
}

/// The answer to a keyword (the opt-out confirmation, the HELP reply): about no
/// appointment, owned by the customer (or, for an unknown number, by the number).
/// `Err` names the content-filter rule it broke.
#[allow(clippy::too_many_arguments)]
pub fn keyword_answer(
    settings: &EngineSettings,
    tenant_id: &str,
    kind: &str,
    to: &str,
    customer_id: Option<&str>,
    idempotency_key: String,
    now: DateTime<Utc>,
    id: String,
) -> Result<NewOutbox, String> {
    let message = settings
        .pack
        .render(kind, Channel::Sms, None, &business_values(settings))
        .map_err(|blocked| blocked.rule)?;
    Ok(NewOutbox {
        id,
        tenant_id: tenant_id.to_string(),
        domain: ProviderDomain::Messaging,
        kind: kind.to_string(),
        owner_type: "customer".to_string(),
        owner_id: customer_id.unwrap_or(to).to_string(),
        idempotency_key,
        payload: json!({
            "to": to,
            "channel": "sms",
            "body": message.body,
            "encoding": message.shape.encoding.as_str(),
            "segments": message.shape.segments,
            "customerId": customer_id,
            "kind": kind,
        }),
        not_before: now,
    })
}

/// One message to queue for an appointment.
pub struct Outgoing {
    pub kind: String,
    pub idempotency_key: String,
    /// Not sent before this instant (quiet hours already applied by the caller).
    pub not_before: DateTime<Utc>,
    /// Values beyond the appointment's (a payment link…).
    pub extra: Vec<(Variable, String)>,
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    Queued,
    /// The customer has no number to write to: escalated as `no_contact`.
    NoContact,
    /// The content filter stopped it: escalated as `content_blocked`.
    Blocked,
}

/// Renders `out` and adds its outbox row and `message.queued` event to `commit`; or,
/// when there is no number or the body breaks the pack's content filter, an escalation.
pub fn queue(
    commit: &mut Commit,
    record: &AppointmentRecord,
    customer: Option<&CustomerRecord>,
    zone: Tz,
    out: Outgoing,
    ctx: &DecideContext<'_>,
) -> Queued {
    let settings = ctx.settings;
    let Some(phone) = customer.and_then(|c| c.phone_e164.clone()) else {
        commit.escalations.push(escalation(
            record,
            "no_contact",
            "medium",
            json!({"kind": out.kind}),
            ctx,
        ));
        return Queued::NoContact;
    };
    let mut values = appointment_values(record, customer, zone, settings);
    values.extend(out.extra);
    match settings.pack.render(&out.kind, Channel::Sms, None, &values) {
        Ok(message) => {
            commit.outbox.push(NewOutbox {
                id: ctx.ids.new_id(),
                tenant_id: record.tenant_id.clone(),
                domain: ProviderDomain::Messaging,
                kind: out.kind.clone(),
                owner_type: "appointment".to_string(),
                owner_id: record.id.clone(),
                idempotency_key: out.idempotency_key.clone(),
                payload: json!({
                    "to": phone,
                    "channel": "sms",
                    "body": message.body,
                    "encoding": message.shape.encoding.as_str(),
                    "segments": message.shape.segments,
                    "appointmentId": record.id,
                    "customerId": record.customer_id,
                    "kind": out.kind,
                }),
                not_before: out.not_before,
            });
            commit.events.push(event(
                record,
                "message.queued",
                json!({
                    "kind": out.kind,
                    "idempotencyKey": out.idempotency_key,
                    "notBefore": out.not_before,
                    "encoding": message.shape.encoding.as_str(),
                    "segments": message.shape.segments,
                }),
                ctx,
            ));
            Queued::Queued
        }
        Err(blocked) => {
            // The body is not kept anywhere: it may hold what the filter protects.
            commit.escalations.push(escalation(
                record,
                "content_blocked",
                "high",
                json!({"kind": blocked.kind, "rule": blocked.rule}),
                ctx,
            ));
            commit.events.push(event(
                record,
                "message.blocked",
                json!({"kind": blocked.kind, "rule": blocked.rule}),
                ctx,
            ));
            Queued::Blocked
        }
    }
}

pub(crate) fn event(
    record: &AppointmentRecord,
    event_type: &str,
    payload: serde_json::Value,
    ctx: &DecideContext<'_>,
) -> NewEvent {
    NewEvent {
        event_id: ctx.ids.new_id(),
        tenant_id: record.tenant_id.clone(),
        event_type: event_type.to_string(),
        aggregate_type: "appointment".to_string(),
        aggregate_id: record.id.clone(),
        aggregate_version: record.version,
        occurred_at: ctx.now,
        profile: ctx.settings.profile.clone(),
        payload,
        workflow_id: event_type
            .starts_with("deposit.")
            .then(|| super::deposit::workflow_id(&record.id)),
        correlation_id: ctx.correlation_id.map(str::to_string),
        causation_id: ctx.causation_id.map(str::to_string),
    }
}

pub(crate) fn escalation(
    record: &AppointmentRecord,
    reason: &str,
    priority: &str,
    details: serde_json::Value,
    ctx: &DecideContext<'_>,
) -> NewEscalation {
    NewEscalation {
        id: ctx.ids.new_id(),
        tenant_id: record.tenant_id.clone(),
        appointment_id: Some(record.id.clone()),
        customer_id: Some(record.customer_id.clone()),
        reason: reason.to_string(),
        priority: priority.to_string(),
        details,
        created_at: ctx.now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_render_with_two_decimals_and_the_currency() {
        assert_eq!(format_amount(5_000, "USD"), "50.00 USD");
        assert_eq!(format_amount(5_005, "EUR"), "50.05 EUR");
    }
}
