//! Inbound replies (SPEC §4): matching a sender to a customer and to the appointment
//! whose reminder was sent most recently, and recording the reply once — the message
//! row (deduplicated by the provider's message id) together with the customer-level
//! effects of its keyword (opt-out / opt-in consent, escalations) in one transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;

use actors::classify::KeywordAction;
use actors::ports::store::{NewEscalation, NewOutbox};

use super::connection::DbConnection;
use super::models::{to_naive, NewEscalationRow, OutboxRow};
use super::schema::{consents, customers, escalations, messages, outbox};

type QueryResult<T> = diesel::QueryResult<T>;

/// The customer a reply came from and the appointment it most likely answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyMatch {
    pub customer_id: String,
    pub opted_out: bool,
    /// The appointment of the newest outbound message to this customer, if any.
    pub appointment_id: Option<String>,
}

/// Whether the provider's message `provider_message_id` is in the log already.
pub fn is_recorded(
    conn: &mut DbConnection,
    provider: &str,
    provider_message_id: &str,
) -> QueryResult<bool> {
    let found: i64 = messages::table
        .filter(messages::provider.eq(provider))
        .filter(messages::provider_message_id.eq(provider_message_id))
        .count()
        .get_result(conn)?;
    Ok(found > 0)
}

/// The customer with phone `phone_e164` and the appointment whose message was sent to
/// them most recently.
pub fn match_reply(
    conn: &mut DbConnection,
    tenant_id: &str,
    phone_e164: &str,
) -> QueryResult<Option<ReplyMatch>> {
    let customer: Option<(String, bool)> = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(customers::phone_e164.eq(phone_e164))
        .filter(customers::erased_at.is_null())
        .order(customers::created_at.desc())
        .select((customers::id, customers::opted_out))
        .first(conn)
        .optional()?;
    let Some((customer_id, opted_out)) = customer else {
        return Ok(None);
    };
    let appointment_id: Option<Option<String>> = messages::table
        .filter(messages::tenant_id.eq(tenant_id))
        .filter(messages::customer_id.eq(&customer_id))
        .filter(messages::direction.eq("outbound"))
        .filter(messages::appointment_id.is_not_null())
        .filter(messages::sent_at.is_not_null())
        .order((messages::sent_at.desc(), messages::created_at.desc()))
        .select(messages::appointment_id)
        .first(conn)
        .optional()?;
    Ok(Some(ReplyMatch {
        customer_id,
        opted_out,
        appointment_id: appointment_id.flatten(),
    }))
}

/// A reply to record.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundReply {
    pub tenant_id: String,
    pub provider: String,
    pub provider_message_id: String,
    /// `sms` or `whatsapp`.
    pub channel: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub matched: Option<ReplyMatch>,
    /// The keyword the whole message is, if any.
    pub keyword: Option<KeywordAction>,
}

/// What recording a reply found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyRecorded {
    Recorded,
    /// The same provider message was recorded before: nothing was done.
    Duplicate,
}

/// Records the reply and its customer-level effects, once, in one transaction:
/// opt-out sets `customers.opted_out` and revokes consent (a bare CANCEL also raises a
/// high `possible_cancellation` escalation); opt-in grants it again; a reply that is not
/// a keyword and matches no appointment raises a medium `unmatched_message` escalation.
pub fn record_reply(
    conn: &mut DbConnection,
    reply: &InboundReply,
    answer: Option<&NewOutbox>,
    now: DateTime<Utc>,
) -> QueryResult<ReplyRecorded> {
    // The message row is written first and its unique key (provider, message id) is
    // the deduplication: a transaction that starts with a write takes SQLite's write
    // lock at once (waiting on `busy_timeout`), where a read first could not upgrade.
    let recorded = conn.transaction(|conn| {
        let at = to_naive(now);
        let customer_id = reply.matched.as_ref().map(|m| m.customer_id.clone());
        let appointment_id = reply
            .matched
            .as_ref()
            .and_then(|m| m.appointment_id.clone());
        diesel::insert_into(messages::table)
            .values((
                messages::id.eq(uuid::Uuid::now_v7().to_string()),
                messages::tenant_id.eq(&reply.tenant_id),
                messages::customer_id.eq(&customer_id),
                messages::appointment_id.eq(&appointment_id),
                messages::direction.eq("inbound"),
                messages::channel.eq(&reply.channel),
                messages::body.eq(&reply.body),
                messages::from_addr.eq(&reply.from),
                messages::to_addr.eq(&reply.to),
                messages::provider.eq(&reply.provider),
                messages::provider_message_id.eq(&reply.provider_message_id),
                messages::status.eq("received"),
                messages::sandbox.eq(false),
                messages::created_at.eq(at),
                messages::updated_at.eq(at),
            ))
            .execute(conn)?;
        let escalate = |reason: &str, priority: &str, details| NewEscalation {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: reply.tenant_id.clone(),
            appointment_id: appointment_id.clone(),
            customer_id: customer_id.clone(),
            reason: reason.to_string(),
            priority: priority.to_string(),
            details,
            created_at: now,
        };
        let mut raised = Vec::new();
        match (reply.keyword, &customer_id) {
            (Some(KeywordAction::OptOut { bare_cancel }), Some(customer)) => {
                set_consent(conn, reply, customer, false, now)?;
                if bare_cancel {
                    raised.push(escalate(
                        "possible_cancellation",
                        "high",
                        json!({"messageSid": reply.provider_message_id,
                               "note": "a bare CANCEL opts out; the customer may mean the appointment"}),
                    ));
                }
            }
            (Some(KeywordAction::OptIn), Some(customer)) => {
                set_consent(conn, reply, customer, true, now)?;
            }
            // HELP: the help reply needs the profile packs (issue 5). A keyword from an
            // unknown number changes nothing of ours.
            (Some(_), _) => {}
            (None, _) if appointment_id.is_none() => raised.push(escalate(
                "unmatched_message",
                "medium",
                json!({"messageSid": reply.provider_message_id,
                       "knownCustomer": customer_id.is_some()}),
            )),
            (None, _) => {}
        }
        for escalation in &raised {
            diesel::insert_into(escalations::table)
                .values(NewEscalationRow::from(escalation))
                .execute(conn)?;
        }
        if let Some(answer) = answer {
            diesel::insert_into(outbox::table)
                .values(OutboxRow::new(answer, at))
                .execute(conn)?;
        }
        Ok(ReplyRecorded::Recorded)
    });
    match recorded {
        // A concurrent copy of the same delivery won the message's unique key (the
        // only unique key written here besides fresh ids): nothing of ours was kept.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(ReplyRecorded::Duplicate)
        }
        other => other,
    }
}

/// Opts the customer out (`granted = false`) or back in, with a consent row whose
/// evidence is the provider's message id.
fn set_consent(
    conn: &mut DbConnection,
    reply: &InboundReply,
    customer_id: &str,
    granted: bool,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let at = to_naive(now);
    diesel::update(customers::table.find(customer_id))
        .set((
            customers::opted_out.eq(!granted),
            customers::updated_at.eq(at),
        ))
        .execute(conn)?;
    diesel::insert_into(consents::table)
        .values((
            consents::id.eq(uuid::Uuid::now_v7().to_string()),
            consents::tenant_id.eq(&reply.tenant_id),
            consents::customer_id.eq(customer_id),
            consents::channel.eq(&reply.channel),
            consents::status.eq(if granted { "granted" } else { "revoked" }),
            consents::source.eq("customer_reply"),
            consents::evidence.eq(&reply.provider_message_id),
            consents::recorded_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}
