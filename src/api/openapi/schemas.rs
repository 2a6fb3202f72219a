//! Shapes of the public API that are built or parsed by hand in the handlers (the error
//! envelope, the Command and Event API envelopes, the normalized booking webhook), written
//! down here as types so the OpenAPI document can show them. Request bodies that are real
//! structs derive their schema where they are defined.

use serde::Serialize;
use utoipa::ToSchema;

/// Every error answer: `{"error": {...}}` (SPEC §7).
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The body of an error answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// VALIDATION_ERROR, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, INVALID_TRANSITION,
    /// IDEMPOTENCY_CONFLICT, RATE_LIMIT_EXCEEDED, CIRCUIT_BREAKER_OPEN, INTERNAL_ERROR (and
    /// PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, METHOD_NOT_ALLOWED, SERVICE_UNAVAILABLE
    /// for transport-level refusals).
    #[schema(example = "VALIDATION_ERROR")]
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// Machine-readable specifics (the field and reason of a validation error, the
    /// states of an invalid transition, the reason of a 403).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Whether the same request may succeed later.
    pub retryable: bool,
    /// Seconds to wait, on RATE_LIMIT_EXCEEDED.
    #[schema(nullable = false)]
    pub retry_after: Option<u64>,
}

/// A command (`POST /v1/commands`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandEnvelope {
    /// appointment.upsert, appointment.confirm, appointment.cancel,
    /// appointment.reschedule, appointment.mark_no_show, appointment.complete,
    /// customer.opt_out, customer.opt_in, customer.recalculate_risk, message.inbound,
    /// escalation.resolve, dlq.replay, dlq.archive.
    #[schema(example = "appointment.confirm")]
    pub command_type: String,
    pub aggregate: Aggregate,
    /// The command's data; its fields depend on the command type (docs/api.md).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Free-form metadata kept with the command.
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
}

/// What a command or an event is about.
#[derive(Serialize, ToSchema)]
pub struct Aggregate {
    /// `appointment`, `customer`, `escalation` or `dead_letter`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// The answer to an accepted command (202), and its later status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandAccepted {
    pub command_id: String,
    /// `accepted`, `completed` or `failed`.
    pub status: String,
    pub workflow_id: Option<String>,
    pub correlation_id: String,
    pub aggregate: Aggregate,
}

/// One event of the log (SPEC §7's canonical envelope).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// Also a cursor: page or replay after it.
    pub event_id: String,
    #[schema(example = "appointment.confirmed")]
    pub event_type: String,
    pub occurred_at: String,
    pub tenant_id: String,
    pub profile: String,
    pub aggregate: EventAggregate,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub metadata: EventMetadata,
}

/// What an event is about, and its version (events are ordered per aggregate).
#[derive(Serialize, ToSchema)]
pub struct EventAggregate {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub version: i64,
}

/// What caused an event.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    pub workflow_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

/// A page of events.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub events: Vec<EventEnvelope>,
    /// Pass as `after` for the next page.
    pub next_cursor: String,
    pub has_more: bool,
}

/// The normalized booking webhook (SPEC §6), signed with `X-Aro-Signature: t=…,v1=…`.
#[derive(Serialize, ToSchema)]
pub struct BookingWebhook {
    /// `appointment.created`, `appointment.updated` or `appointment.cancelled`.
    pub event: String,
    /// The delivery's idempotency key.
    pub id: String,
    pub timestamp: String,
    pub data: BookingData,
}

/// The appointment a booking webhook describes.
#[derive(Serialize, ToSchema)]
pub struct BookingData {
    pub appointment_id: String,
    pub scheduled_at: Option<String>,
    /// Minutes.
    pub duration: Option<u32>,
    pub timezone: Option<String>,
    pub service_type: Option<String>,
    pub service_cost: Option<f64>,
    pub customer: Option<BookingCustomer>,
    pub cancelled_by: Option<String>,
    pub cancellation_reason: Option<String>,
}

/// The customer of a booking webhook.
#[derive(Serialize, ToSchema)]
pub struct BookingCustomer {
    pub name: String,
    /// E.164.
    pub phone: String,
    pub email: Option<String>,
    pub sms_consent: bool,
}
