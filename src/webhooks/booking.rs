//! The normalized booking webhook (SPEC §6), for booking systems without a native
//! adapter: its JSON shape, the checks it must pass, and the engine work it becomes.
//!
//! ```json
//! {"event": "appointment.created", "id": "delivery-unique-id", "timestamp": "…",
//!  "data": {"appointment_id": "ext-123", "scheduled_at": "2026-03-20T15:00:00Z",
//!           "duration": 30, "timezone": "America/New_York", "service_type": "…",
//!           "service_cost": 150.0, "customer": {"name": "…", "phone": "+1…",
//!           "email": "…", "sms_consent": true}}}
//! ```
//! `appointment.created` and `appointment.updated` carry the whole appointment (an
//! update with a new time is a reschedule); `appointment.cancelled` needs only
//! `appointment_id`. The delivery `id` is the idempotency key.

use std::str::FromStr;

use actors::domain::appointment_status::AppointmentStatus;
use actors::engine::InboxWork;
use actors::engine::{appointment_id_for, AppointmentCommand, Booking, ChangedBy, CustomerInfo};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::values::is_e164;

/// The `source` of appointments and inbox items from this webhook.
pub const SOURCE: &str = "booking";

/// Longest appointment accepted, in minutes (a week).
const MAX_DURATION_MINUTES: i64 = 7 * 24 * 60;

#[derive(Debug, Deserialize)]
struct Delivery {
    event: String,
    id: String,
    #[serde(default)]
    #[allow(dead_code)]
    timestamp: Option<String>,
    data: Data,
}

#[derive(Debug, Deserialize)]
struct Data {
    appointment_id: String,
    scheduled_at: Option<String>,
    duration: Option<i64>,
    timezone: Option<String>,
    service_type: Option<String>,
    service_cost: Option<f64>,
    customer: Option<Customer>,
    cancelled_by: Option<String>,
    cancellation_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Customer {
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    sms_consent: Option<bool>,
}

/// A delivery that passed every check: its idempotency key and the work it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingDelivery {
    pub delivery_id: String,
    pub work: InboxWork,
}

/// Why a delivery was refused: the field and the reason, for the error envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidDelivery {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidDelivery {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }

    /// The envelope's details.
    pub fn details(&self) -> Value {
        json!({"field": self.field, "reason": self.reason})
    }
}

/// Parses and checks a delivery's raw body for `tenant_id`.
pub fn parse(tenant_id: &str, body: &[u8]) -> Result<BookingDelivery, InvalidDelivery> {
    let delivery: Delivery = serde_json::from_slice(body)
        .map_err(|e| InvalidDelivery::new("body", format!("malformed: {e}")))?;
    let delivery_id = non_empty("id", &delivery.id)?;
    let external_id = non_empty("data.appointment_id", &delivery.data.appointment_id)?;
    let appointment_id = appointment_id_for(tenant_id, SOURCE, &external_id);
    let command = match delivery.event.as_str() {
        "appointment.created" | "appointment.updated" => {
            AppointmentCommand::Book(booking(tenant_id, external_id, delivery.data)?)
        }
        "appointment.cancelled" => AppointmentCommand::Transition {
            to: AppointmentStatus::Cancelled,
            by: ChangedBy::BookingSystem,
            reason: cancellation_reason(&delivery.data),
        },
        other => {
            return Err(InvalidDelivery::new(
                "event",
                format!(
                    "unknown event {other:?}; expected appointment.created, \
                     appointment.updated or appointment.cancelled"
                ),
            ))
        }
    };
    Ok(BookingDelivery {
        delivery_id,
        work: InboxWork::new(appointment_id, command),
    })
}

/// The booking a delivery's `data` object describes, for `tenant_id`: the same checks
/// as [`parse`], with fields named as in the webhook (`data.…`). The Command API's
/// `appointment.upsert` takes this shape as its payload.
pub fn booking_from_data(tenant_id: &str, data: &Value) -> Result<Booking, InvalidDelivery> {
    let data = Data::deserialize(data)
        .map_err(|e| InvalidDelivery::new("data", format!("malformed: {e}")))?;
    let external_id = non_empty("data.appointment_id", &data.appointment_id)?;
    booking(tenant_id, external_id, data)
}

fn booking(tenant_id: &str, external_id: String, data: Data) -> Result<Booking, InvalidDelivery> {
    let scheduled_at = data
        .scheduled_at
        .as_deref()
        .ok_or_else(|| InvalidDelivery::new("data.scheduled_at", "required"))?;
    let starts_at = DateTime::parse_from_rfc3339(scheduled_at)
        .map_err(|e| {
            InvalidDelivery::new(
                "data.scheduled_at",
                format!("not an RFC 3339 time with offset: {e}"),
            )
        })?
        .with_timezone(&Utc);
    let duration = data
        .duration
        .ok_or_else(|| InvalidDelivery::new("data.duration", "required (minutes)"))?;
    if !(1..=MAX_DURATION_MINUTES).contains(&duration) {
        return Err(InvalidDelivery::new(
            "data.duration",
            format!("must be 1 to {MAX_DURATION_MINUTES} minutes"),
        ));
    }
    let timezone = match data.timezone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(zone) => Some(
            Tz::from_str(zone)
                .map_err(|_| {
                    InvalidDelivery::new("data.timezone", format!("unknown IANA zone {zone:?}"))
                })?
                .name()
                .to_string(),
        ),
    };
    let customer = data
        .customer
        .ok_or_else(|| InvalidDelivery::new("data.customer", "required"))?;
    let phone = match customer.phone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(phone) if is_e164(phone) => Some(phone.to_string()),
        Some(_) => {
            return Err(InvalidDelivery::new(
                "data.customer.phone",
                "not an E.164 number (+ and 8 to 15 digits)",
            ))
        }
    };
    // No consent, no automated messages (SPEC §5): the number is not kept for
    // messaging when the booking system says the customer declined.
    let phone = phone.filter(|_| customer.sms_consent != Some(false));
    Ok(Booking {
        tenant_id: tenant_id.to_string(),
        source: SOURCE.to_string(),
        external_id,
        starts_at,
        ends_at: starts_at + Duration::minutes(duration),
        timezone,
        service_type: data.service_type.filter(|s| !s.trim().is_empty()),
        cancel_url: None,
        reschedule_url: None,
        service_cost_cents: match data.service_cost {
            None => None,
            Some(cost) if cost.is_finite() && (0.0..1e10).contains(&cost) => {
                Some((cost * 100.0).round() as i64)
            }
            Some(_) => {
                return Err(InvalidDelivery::new(
                    "data.service_cost",
                    "must be a non-negative amount in the business currency",
                ))
            }
        },
        customer: CustomerInfo {
            phone_e164: phone,
            name: customer.name.filter(|s| !s.trim().is_empty()),
            email: customer.email.filter(|s| !s.trim().is_empty()),
            timezone: None,
        },
    })
}

fn cancellation_reason(data: &Data) -> Option<String> {
    match (&data.cancelled_by, &data.cancellation_reason) {
        (None, None) => None,
        (by, reason) => Some(
            [by.as_deref(), reason.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": "),
        ),
    }
}

fn non_empty(field: &'static str, value: &str) -> Result<String, InvalidDelivery> {
    let value = value.trim();
    if value.is_empty() {
        return Err(InvalidDelivery::new(field, "must not be empty"));
    }
    if value.len() > 200 {
        return Err(InvalidDelivery::new(field, "longer than 200 characters"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = r#"{"event": "appointment.created", "id": "delivery-unique-id", "timestamp": "2026-03-01T10:00:00Z",
 "data": {"appointment_id": "ext-123", "scheduled_at": "2026-03-20T15:00:00Z", "duration": 30,
          "timezone": "America/New_York", "service_type": "Consultation", "service_cost": 150.0,
          "customer": {"name": "Jane Smith", "phone": "+15559876543", "email": "jane@example.com",
                       "sms_consent": true}}}"#;

    #[test]
    fn the_spec_example_becomes_a_booking() {
        let parsed = parse("default", CREATED.as_bytes()).expect("valid");
        assert_eq!(parsed.delivery_id, "delivery-unique-id");
        assert_eq!(
            parsed.work.appointment_id,
            appointment_id_for("default", SOURCE, "ext-123")
        );
        let AppointmentCommand::Book(booking) = parsed.work.command else {
            panic!("a booking");
        };
        assert_eq!(booking.starts_at.to_rfc3339(), "2026-03-20T15:00:00+00:00");
        assert_eq!(booking.ends_at - booking.starts_at, Duration::minutes(30));
        assert_eq!(booking.timezone.as_deref(), Some("America/New_York"));
        assert_eq!(booking.customer.phone_e164.as_deref(), Some("+15559876543"));
        assert_eq!(booking.customer.name.as_deref(), Some("Jane Smith"));
        assert_eq!(booking.service_cost_cents, Some(15_000), "150.0 in cents");
    }

    #[test]
    fn a_cancellation_needs_only_the_appointment_id() {
        let body = r#"{"event":"appointment.cancelled","id":"d2","data":{"appointment_id":"ext-123","cancelled_by":"staff","cancellation_reason":"sick"}}"#;
        let parsed = parse("default", body.as_bytes()).expect("valid");
        assert_eq!(
            parsed.work.command,
            AppointmentCommand::Transition {
                to: AppointmentStatus::Cancelled,
                by: ChangedBy::BookingSystem,
                reason: Some("staff: sick".into()),
            }
        );
    }

    #[test]
    fn declined_consent_keeps_the_number_out_of_messaging() {
        let body = CREATED.replace("\"sms_consent\": true", "\"sms_consent\": false");
        let parsed = parse("default", body.as_bytes()).expect("valid");
        let AppointmentCommand::Book(booking) = parsed.work.command else {
            panic!("a booking");
        };
        assert_eq!(booking.customer.phone_e164, None);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("\"duration\": 30", "\"duration\": 0", "data.duration"),
            ("\"duration\": 30,", "", "data.duration"),
            ("America/New_York", "Mars/Olympus", "data.timezone"),
            ("+15559876543", "555-987-6543", "data.customer.phone"),
            (
                "\"service_cost\": 150.0",
                "\"service_cost\": -5",
                "data.service_cost",
            ),
            (
                "2026-03-20T15:00:00Z",
                "2026-03-20 15:00",
                "data.scheduled_at",
            ),
            ("appointment.created", "appointment.exploded", "event"),
            ("\"delivery-unique-id\"", "\"  \"", "id"),
            ("\"ext-123\"", "\"\"", "data.appointment_id"),
        ];
        for (from, to, field) in cases {
            let body = CREATED.replace(from, to);
            let err = parse("default", body.as_bytes()).expect_err(field);
            assert_eq!(err.field, field, "{body}");
        }
        let err = parse("default", b"{not json").expect_err("malformed");
        assert_eq!(err.field, "body");
    }
}
