//! What can be asked of an appointment: the commands its actor handles.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::appointment_status::AppointmentStatus;
use crate::ports::providers::Intent;

/// Who asked for a change (recorded on events; the lifecycle limits what each may do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    BookingSystem,
    Staff(String),
    Customer,
    System,
}

/// The customer as the booking system gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerInfo {
    pub phone_e164: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub timezone: Option<String>,
}

/// A booking as reported by a booking system (create or update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub tenant_id: String,
    pub source: String,
    pub external_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// IANA zone of the appointment, if the booking system gave one.
    pub timezone: Option<String>,
    pub service_type: Option<String>,
    pub cancel_url: Option<String>,
    pub reschedule_url: Option<String>,
    pub customer: CustomerInfo,
    /// The service's price in the currency's minor unit, when the booking system says
    /// (the "revenue protected" metric sums it).
    #[serde(default)]
    pub service_cost_cents: Option<i64>,
}

/// A command for one appointment. Serializable: inbound work is stored in the inbox in
/// this form before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppointmentCommand {
    /// Create the appointment, or apply the booking system's update (a new time is a
    /// reschedule; so is any update of an appointment waiting in `rescheduled`). A
    /// booking whose external id is not the one the appointment follows now is refused:
    /// it was replaced (see [`AppointmentCommand::Replaced`]).
    Book(Booking),
    /// Move the lifecycle (confirm, cancel, mark no-show, start, complete).
    Transition {
        to: AppointmentStatus,
        by: Actor,
        reason: Option<String>,
    },
    /// A person or the booking system moves the appointment to a new time.
    Reschedule {
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        by: Actor,
    },
    /// The booking system replaced the booking this appointment follows with another
    /// one: a Calendly reschedule cancels the old invitee and creates a new one, and
    /// the two deliveries arrive in either order. When the appointment still follows
    /// one of `replaced`, it follows `replacement` from now on and, if booked or
    /// confirmed, waits in `rescheduled` (no reminder for the old time) until the new
    /// booking's time arrives as a [`AppointmentCommand::Book`]. Otherwise — it moved
    /// on already, or it is over — nothing changes.
    Replaced {
        /// The replaced booking's external id, then the ones it replaced in turn.
        replaced: Vec<String>,
        /// The replacing booking's external id, when known.
        replacement: Option<String>,
        by: Actor,
    },
    /// A side effect of this appointment reached its end at the provider.
    SideEffectSettled {
        kind: String,
        idempotency_key: String,
        /// The provider's id when delivered; `None` when dead-lettered.
        provider_ref: Option<String>,
        error: Option<String>,
    },
    /// A durable timer of this appointment came due.
    TimerFired {
        tenant_id: String,
        key: String,
        kind: String,
        due_at: DateTime<Utc>,
        payload: Value,
    },
    /// The payment supervisor created the deposit's payment link.
    DepositLinkCreated {
        url: String,
        /// The provider's id for the link.
        link_ref: String,
    },
    /// The payment provider reports the deposit paid.
    DepositPaid {
        /// The provider's id for the payment (checkout session or payment intent).
        payment_ref: String,
    },
    /// The customer replied to this appointment's messages (SPEC §4, after the keyword
    /// rules): the classified intent. Confirms a booked appointment when confident;
    /// otherwise escalates. Never cancels (SPEC §3).
    ReplyReceived {
        intent: Intent,
        confidence: f64,
        /// The provider's message id (Twilio's MessageSid).
        message_sid: String,
        /// The start of the text, at most [`REPLY_EXCERPT_CHARS`] characters.
        excerpt: String,
    },
}

/// The longest excerpt of a reply kept in events and escalations.
pub const REPLY_EXCERPT_CHARS: usize = 160;

/// The first [`REPLY_EXCERPT_CHARS`] characters of a reply.
pub fn reply_excerpt(text: &str) -> String {
    text.trim().chars().take(REPLY_EXCERPT_CHARS).collect()
}
