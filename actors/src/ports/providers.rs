//! Provider ports, one per domain: messaging (SMS / WhatsApp), booking (Calendly-like
//! systems), payment (payment links) and classification (reply intent). Adapters in
//! `src/providers` speak each provider's wire format; the engine sees only these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::BoxFuture;
use crate::resilience::backoff::ErrorClass;

/// Why a provider call failed, classified for retry decisions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub class: ErrorClass,
    pub message: String,
    /// The request may have reached the provider (a timeout after sending): the outcome
    /// must be reconciled before any resend.
    pub outcome_unknown: bool,
}

/// The channel a message goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Whatsapp,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub idempotency_key: String,
    pub channel: Channel,
    pub to: String,
    pub body: String,
}

/// The provider's acknowledgement of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// The provider's id for it (e.g. a Twilio MessageSid).
    pub provider_ref: String,
    pub status: String,
}

pub trait MessagingProvider: Send + Sync + 'static {
    /// The provider's name in the message log (`twilio`, `sandbox`, …).
    fn name(&self) -> &'static str {
        "provider"
    }

    fn send(
        &self,
        message: OutboundMessage,
    ) -> BoxFuture<'static, Result<SendReceipt, ProviderError>>;

    /// Finds `message` if an earlier attempt delivered it to the provider — by
    /// `provider_ref` when one was recorded, else by what the provider lets us search
    /// (its idempotency key, or recipient and body): `None` means it never arrived and
    /// may be sent again.
    fn lookup(
        &self,
        message: OutboundMessage,
        provider_ref: Option<String>,
    ) -> BoxFuture<'static, Result<Option<SendReceipt>, ProviderError>>;
}

/// A payment link to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentLinkRequest {
    pub idempotency_key: String,
    pub amount_cents: i64,
    pub currency: String,
    pub description: String,
    pub appointment_id: String,
    pub customer_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentLink {
    pub provider_ref: String,
    pub url: String,
}

pub trait PaymentProvider: Send + Sync + 'static {
    fn create_payment_link(
        &self,
        request: PaymentLinkRequest,
    ) -> BoxFuture<'static, Result<PaymentLink, ProviderError>>;
}

/// An appointment as a booking system reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookedEvent {
    pub external_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub cancelled: bool,
    pub payload: serde_json::Value,
}

/// One page of a booking system's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookedPage {
    pub events: Vec<BookedEvent>,
    pub next_page: Option<String>,
}

pub trait BookingProvider: Send + Sync + 'static {
    fn fetch_events(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: Option<String>,
    ) -> BoxFuture<'static, Result<BookedPage, ProviderError>>;
}

/// What a reply means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Confirm,
    Reschedule,
    Cancel,
    Unclear,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub intent: Intent,
    pub confidence: f64,
    /// Which classifier answered: rules, local, llm.
    pub source: String,
}

pub trait Classifier: Send + Sync + 'static {
    fn classify(&self, text: String) -> BoxFuture<'static, Result<Classification, ProviderError>>;
}
