//! Calendly: webhook deliveries in, scheduled-event sync out.
//!
//! `payload` parses v2 webhook bodies (`invitee.created`, `invitee.canceled`,
//! `invitee_no_show.created` / `.deleted`) into [`CalendlyEvent`]s and computes their
//! deduplication key; `phone` normalises the invitee's phone to E.164; `client` is the
//! engine's [`BookingProvider`](actors::ports::providers::BookingProvider) port over
//! `GET /scheduled_events` and `/scheduled_events/{uuid}/invitees`; `errors` maps
//! Calendly's answers to [`ProviderError`](actors::ports::providers::ProviderError).
//! This file owns the `Calendly-Webhook-Signature` check.

pub mod client;
pub mod errors;
pub mod payload;
pub mod phone;

use chrono::{DateTime, Utc};

use crate::webhooks::signed_header::{self, SignatureError};

pub use client::{CalendlyBooking, CalendlySettings};
pub use payload::{
    dedup_key, parse, parse_invitee, CalendlyEvent, CalendlyPayloadError, CalendlyWebhook, Invitee,
};
pub use phone::{normalize_phone, PhoneSource};

/// Calendly's replay window: deliveries signed more than 3 minutes away from now are
/// refused (SPEC §6).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 180;

/// Verifies a `Calendly-Webhook-Signature: t=…,v1=…` header (HMAC-SHA256 of `t.body`
/// under the subscription's signing key) over the raw body, within 180 s.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    signing_key: &str,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    signed_header::verify(
        header,
        body,
        signing_key.as_bytes(),
        SIGNATURE_TOLERANCE_SECS,
        now,
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::signed_header::sign;
    use chrono::TimeZone;

    const KEY: &str = "kQ3v9_calendly_signing_key";
    const BODY: &[u8] =
        br#"{"event":"invitee.created","created_at":"2026-03-01T10:00:00.000000Z","payload":{}}"#;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_772_359_200, 0).single().expect("time")
    }

    #[test]
    fn signed_deliveries_verify_within_three_minutes() {
        for offset in [0, -180, 180] {
            let header = sign(KEY.as_bytes(), now().timestamp() + offset, BODY);
            assert_eq!(
                verify_signature(Some(&header), BODY, KEY, now()),
                Ok(()),
                "{offset}"
            );
        }
        for offset in [-181, 181, -300] {
            let header = sign(KEY.as_bytes(), now().timestamp() + offset, BODY);
            assert_eq!(
                verify_signature(Some(&header), BODY, KEY, now()),
                Err(SignatureError::Stale),
                "{offset}"
            );
        }
    }

    #[test]
    fn tampered_wrong_key_missing_and_rolled_keys() {
        let header = sign(KEY.as_bytes(), now().timestamp(), BODY);
        assert_eq!(
            verify_signature(Some(&header), b"{}", KEY, now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&header), BODY, "other", now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(None, BODY, KEY, now()),
            Err(SignatureError::Missing)
        );
        let old = sign(b"old-key", now().timestamp(), BODY);
        let v1 = |h: &str| h.split("v1=").nth(1).map(str::to_string).expect("v1");
        let both = format!("t={},v1={},v1={}", now().timestamp(), v1(&old), v1(&header));
        assert_eq!(verify_signature(Some(&both), BODY, KEY, now()), Ok(()));
    }
}
