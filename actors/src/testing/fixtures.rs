//! Sample inputs shared by the engine's tests and the daemon's integration tests.

use chrono::{DateTime, Duration, Utc};

use crate::engine::commands::{Booking, CustomerInfo};

/// A 30-minute cleaning in New York for Jane (+15551230001), from the booking system
/// `booking`, under the default tenant.
pub fn sample_booking(external_id: &str, starts_at: DateTime<Utc>) -> Booking {
    Booking {
        tenant_id: "default".into(),
        source: "booking".into(),
        external_id: external_id.into(),
        starts_at,
        ends_at: starts_at + Duration::minutes(30),
        timezone: Some("America/New_York".into()),
        service_type: Some("Cleaning".into()),
        cancel_url: None,
        reschedule_url: None,
        service_cost_cents: None,
        customer: CustomerInfo {
            phone_e164: Some("+15551230001".into()),
            name: Some("Jane".into()),
            email: None,
            timezone: None,
        },
    }
}
