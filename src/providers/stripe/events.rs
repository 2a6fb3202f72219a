//! Stripe webhook deliveries: the `Stripe-Signature` check and parsing an Event into
//! what ARO acts on. Pure: no I/O, the clock is passed in.
//!
//! An Event is `{"id": "evt_…", "object": "event", "type": "…", "created": …,
//! "data": {"object": {…}}}`. Two types matter (SPEC §6):
//! - `checkout.session.completed`: a Checkout Session, here one created by our payment
//!   link; `payment_link`, `payment_status` (`paid` / `unpaid` / `no_payment_required`),
//!   `amount_total`, `currency`, `payment_intent` and the link's `metadata`, which Stripe
//!   copies onto the sessions it creates.
//! - `payment_intent.succeeded`: the PaymentIntent, with `amount_received`, `currency`
//!   and the `metadata` from the link's `payment_intent_data`. For delayed payment
//!   methods the session completes `unpaid` and this event marks the payment.
//!
//! Every other type parses to [`StripeEvent::Ignored`] so the route can acknowledge it.
//! The Event `id` is the deduplication key: Stripe may deliver an event more than once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::webhooks::signed_header::{self, SignatureError};

/// Stripe's default signature tolerance (its libraries' `DEFAULT_TOLERANCE`).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Verifies a `Stripe-Signature: t=…,v1=…` header over the raw body under the
/// endpoint's signing secret (`whsec_…`, used as the HMAC key as is), within 300 s.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    webhook_secret: &str,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    signed_header::verify(
        header,
        body,
        webhook_secret.as_bytes(),
        SIGNATURE_TOLERANCE_SECS,
        now,
    )
    .map(|_| ())
}

/// The `metadata` ARO sets on its payment links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkMetadata {
    pub appointment_id: Option<String>,
    pub customer_id: Option<String>,
    /// Every key, ours included.
    pub all: BTreeMap<String, String>,
}

impl LinkMetadata {
    fn from_map(all: BTreeMap<String, String>) -> Self {
        let non_empty = |key: &str| all.get(key).filter(|v| !v.is_empty()).cloned();
        Self {
            appointment_id: non_empty("appointment_id"),
            customer_id: non_empty("customer_id"),
            all,
        }
    }
}

/// A completed Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutCompleted {
    /// The Event id (`evt_…`): the deduplication key.
    pub id: String,
    /// The Checkout Session id (`cs_…`).
    pub session_id: String,
    /// The payment link (`plink_…`) the session came from, if any.
    pub payment_link: Option<String>,
    /// `paid`, `unpaid` (a delayed method still pending) or `no_payment_required`.
    pub payment_status: String,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    /// The PaymentIntent (`pi_…`), when the session made one.
    pub payment_intent: Option<String>,
    pub metadata: LinkMetadata,
}

impl CheckoutCompleted {
    /// True when the money is in: `payment_status` is `paid`.
    pub fn is_paid(&self) -> bool {
        self.payment_status == "paid"
    }
}

/// A PaymentIntent that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSucceeded {
    /// The Event id (`evt_…`): the deduplication key.
    pub id: String,
    /// The PaymentIntent id (`pi_…`).
    pub payment_intent: String,
    pub amount_received: i64,
    pub currency: String,
    pub metadata: LinkMetadata,
}

/// A Stripe Event, reduced to what ARO acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeEvent {
    CheckoutCompleted(CheckoutCompleted),
    PaymentSucceeded(PaymentSucceeded),
    /// Any other type: acknowledge and do nothing.
    Ignored {
        id: String,
        event_type: String,
    },
}

impl StripeEvent {
    /// The Event id: the deduplication key.
    pub fn id(&self) -> &str {
        match self {
            Self::CheckoutCompleted(e) => &e.id,
            Self::PaymentSucceeded(e) => &e.id,
            Self::Ignored { id, .. } => id,
        }
    }
}

/// Why a body is not a usable Stripe Event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeEventError {
    #[error("the body is not a JSON Stripe event: {0}")]
    Malformed(String),
    #[error("the event has no {0}")]
    Missing(&'static str),
    #[error("a {event_type} event carries a {found} object")]
    WrongObject { event_type: String, found: String },
}

#[derive(Deserialize)]
struct Envelope {
    id: Option<String>,
    object: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    object: Value,
}

#[derive(Deserialize)]
struct Session {
    id: String,
    #[serde(default)]
    payment_link: Option<String>,
    payment_status: String,
    #[serde(default)]
    amount_total: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
    /// A string id, or the expanded object.
    #[serde(default)]
    payment_intent: Option<Value>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Intent {
    id: String,
    amount_received: i64,
    currency: String,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

/// An expandable field: the id, whether Stripe sent the id or the object.
fn expandable_id(value: Option<Value>) -> Option<String> {
    match value? {
        Value::String(id) => Some(id),
        Value::Object(map) => map.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn object_of(data: Data, event_type: &str, expected: &str) -> Result<Value, StripeEventError> {
    let found = data
        .object
        .get("object")
        .and_then(Value::as_str)
        .unwrap_or("untyped");
    if found != expected {
        return Err(StripeEventError::WrongObject {
            event_type: event_type.to_string(),
            found: found.to_string(),
        });
    }
    Ok(data.object)
}

/// Parses a webhook body (after [`verify_signature`]).
pub fn parse_event(body: &[u8]) -> Result<StripeEvent, StripeEventError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| StripeEventError::Malformed(e.to_string()))?;
    if envelope.object.as_deref().is_some_and(|o| o != "event") {
        return Err(StripeEventError::Malformed(
            "the object is not an event".to_string(),
        ));
    }
    let id = envelope
        .id
        .filter(|id| !id.is_empty())
        .ok_or(StripeEventError::Missing("id"))?;
    let event_type = envelope
        .event_type
        .ok_or(StripeEventError::Missing("type"))?;
    let detail = |e: serde_json::Error| StripeEventError::Malformed(format!("{event_type}: {e}"));
    match event_type.as_str() {
        "checkout.session.completed" => {
            let data = envelope.data.ok_or(StripeEventError::Missing("data"))?;
            let object = object_of(data, &event_type, "checkout.session")?;
            let session: Session = serde_json::from_value(object).map_err(detail)?;
            Ok(StripeEvent::CheckoutCompleted(CheckoutCompleted {
                id,
                session_id: session.id,
                payment_link: session.payment_link,
                payment_status: session.payment_status,
                amount_total: session.amount_total,
                currency: session.currency,
                payment_intent: expandable_id(session.payment_intent),
                metadata: LinkMetadata::from_map(session.metadata.unwrap_or_default()),
            }))
        }
        "payment_intent.succeeded" => {
            let data = envelope.data.ok_or(StripeEventError::Missing("data"))?;
            let object = object_of(data, &event_type, "payment_intent")?;
            let intent: Intent = serde_json::from_value(object).map_err(detail)?;
            Ok(StripeEvent::PaymentSucceeded(PaymentSucceeded {
                id,
                payment_intent: intent.id,
                amount_received: intent.amount_received,
                currency: intent.currency,
                metadata: LinkMetadata::from_map(intent.metadata.unwrap_or_default()),
            }))
        }
        _ => Ok(StripeEvent::Ignored { id, event_type }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::signed_header::sign;
    use chrono::TimeZone;

    const SECRET: &str = "whsec_5f3b1c8e2a7d4f6b9c0e1a2b3c4d5e6f";

    /// Shaped like the event Stripe sends when a payment link is paid by card.
    const CHECKOUT_COMPLETED: &str = r#"{
      "id": "evt_1PqT8rLkdIwHu7ix3mZgXb2Q",
      "object": "event",
      "api_version": "2024-06-20",
      "created": 1772359200,
      "data": {
        "object": {
          "id": "cs_live_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ",
          "object": "checkout.session",
          "after_expiration": null,
          "amount_subtotal": 5000,
          "amount_total": 5000,
          "cancel_url": null,
          "client_reference_id": null,
          "created": 1772359100,
          "currency": "usd",
          "customer": null,
          "customer_creation": "if_required",
          "customer_details": {"email": "jane@example.com", "name": "Jane Smith", "phone": null, "tax_exempt": "none", "tax_ids": []},
          "livemode": true,
          "metadata": {"appointment_id": "3f0c2a5e-7b1d-4e8a-9c6f-2d4b8a1e5f70", "customer_id": "c-81"},
          "mode": "payment",
          "payment_intent": "pi_3PqT8pLkdIwHu7ix0Y5bKc1d",
          "payment_link": "plink_1PqT5xLkdIwHu7ixQd9Fh0aR",
          "payment_method_types": ["card"],
          "payment_status": "paid",
          "status": "complete",
          "success_url": "https://stripe.com",
          "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
        }
      },
      "livemode": true,
      "pending_webhooks": 1,
      "request": {"id": null, "idempotency_key": null},
      "type": "checkout.session.completed"
    }"#;

    const PAYMENT_SUCCEEDED: &str = r#"{
      "id": "evt_3PqT8pLkdIwHu7ix0dKq4B9m",
      "object": "event",
      "api_version": "2024-06-20",
      "created": 1772359199,
      "data": {
        "object": {
          "id": "pi_3PqT8pLkdIwHu7ix0Y5bKc1d",
          "object": "payment_intent",
          "amount": 5000,
          "amount_capturable": 0,
          "amount_received": 5000,
          "capture_method": "automatic",
          "client_secret": "pi_3PqT8pLkdIwHu7ix0Y5bKc1d_secret_x",
          "confirmation_method": "automatic",
          "created": 1772359150,
          "currency": "usd",
          "customer": null,
          "description": null,
          "latest_charge": "ch_3PqT8pLkdIwHu7ix0Fj2aQ7c",
          "livemode": true,
          "metadata": {"appointment_id": "3f0c2a5e-7b1d-4e8a-9c6f-2d4b8a1e5f70", "customer_id": "c-81"},
          "payment_method": "pm_1PqT8oLkdIwHu7ixvZ3y6TgU",
          "payment_method_types": ["card"],
          "status": "succeeded"
        }
      },
      "livemode": true,
      "pending_webhooks": 2,
      "request": {"id": null, "idempotency_key": "a1c5e9c4-4a7e-4cb3-9c41-b0a1d0e3f2a7"},
      "type": "payment_intent.succeeded"
    }"#;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_772_359_200, 0).single().expect("time")
    }

    #[test]
    fn checkout_session_completed_parses() {
        let event = parse_event(CHECKOUT_COMPLETED.as_bytes()).expect("parses");
        let StripeEvent::CheckoutCompleted(done) = &event else {
            panic!("{event:?}");
        };
        assert_eq!(event.id(), "evt_1PqT8rLkdIwHu7ix3mZgXb2Q");
        assert_eq!(
            done.session_id,
            "cs_live_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ"
        );
        assert_eq!(
            done.payment_link.as_deref(),
            Some("plink_1PqT5xLkdIwHu7ixQd9Fh0aR")
        );
        assert!(done.is_paid());
        assert_eq!(done.amount_total, Some(5000));
        assert_eq!(done.currency.as_deref(), Some("usd"));
        assert_eq!(
            done.payment_intent.as_deref(),
            Some("pi_3PqT8pLkdIwHu7ix0Y5bKc1d")
        );
        assert_eq!(
            done.metadata.appointment_id.as_deref(),
            Some("3f0c2a5e-7b1d-4e8a-9c6f-2d4b8a1e5f70")
        );
        assert_eq!(done.metadata.customer_id.as_deref(), Some("c-81"));
    }

    #[test]
    fn unpaid_and_expanded_sessions() {
        let body = CHECKOUT_COMPLETED
            .replace(
                r#""payment_status": "paid""#,
                r#""payment_status": "unpaid""#,
            )
            .replace(
                r#""payment_intent": "pi_3PqT8pLkdIwHu7ix0Y5bKc1d""#,
                r#""payment_intent": {"id": "pi_x", "object": "payment_intent"}"#,
            )
            .replace(
                r#""payment_link": "plink_1PqT5xLkdIwHu7ixQd9Fh0aR""#,
                r#""payment_link": null"#,
            );
        let StripeEvent::CheckoutCompleted(done) = parse_event(body.as_bytes()).expect("parses")
        else {
            panic!("not a checkout");
        };
        assert!(!done.is_paid());
        assert_eq!(done.payment_intent.as_deref(), Some("pi_x"));
        assert_eq!(done.payment_link, None);
    }

    #[test]
    fn payment_intent_succeeded_parses() {
        let event = parse_event(PAYMENT_SUCCEEDED.as_bytes()).expect("parses");
        let StripeEvent::PaymentSucceeded(paid) = &event else {
            panic!("{event:?}");
        };
        assert_eq!(event.id(), "evt_3PqT8pLkdIwHu7ix0dKq4B9m");
        assert_eq!(paid.payment_intent, "pi_3PqT8pLkdIwHu7ix0Y5bKc1d");
        assert_eq!(paid.amount_received, 5000);
        assert_eq!(paid.currency, "usd");
        assert_eq!(
            paid.metadata.appointment_id.as_deref(),
            Some("3f0c2a5e-7b1d-4e8a-9c6f-2d4b8a1e5f70")
        );
        assert_eq!(paid.metadata.all.len(), 2);
    }

    #[test]
    fn missing_metadata_is_empty_not_an_error() {
        let body = PAYMENT_SUCCEEDED.replace(
            r#""metadata": {"appointment_id": "3f0c2a5e-7b1d-4e8a-9c6f-2d4b8a1e5f70", "customer_id": "c-81"},"#,
            r#""metadata": {},"#,
        );
        let StripeEvent::PaymentSucceeded(paid) = parse_event(body.as_bytes()).expect("parses")
        else {
            panic!("not a payment");
        };
        assert_eq!(paid.metadata, LinkMetadata::default());
    }

    #[test]
    fn other_types_are_ignored_with_their_id() {
        let body = br#"{"id": "evt_1Ab", "object": "event", "type": "charge.refunded", "data": {"object": {"id": "ch_1", "object": "charge"}}}"#;
        assert_eq!(
            parse_event(body).expect("parses"),
            StripeEvent::Ignored {
                id: "evt_1Ab".to_string(),
                event_type: "charge.refunded".to_string()
            }
        );
    }

    #[test]
    fn malformed_events_are_refused() {
        assert!(matches!(
            parse_event(b"not json"),
            Err(StripeEventError::Malformed(_))
        ));
        assert_eq!(
            parse_event(br#"{"object": "event", "type": "x"}"#),
            Err(StripeEventError::Missing("id"))
        );
        assert_eq!(
            parse_event(br#"{"id": "evt_1", "object": "event"}"#),
            Err(StripeEventError::Missing("type"))
        );
        assert_eq!(
            parse_event(
                br#"{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}"#
            ),
            Err(StripeEventError::Missing("data"))
        );
        assert!(matches!(
            parse_event(br#"{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "cs_1", "object": "checkout.session"}}}"#),
            Err(StripeEventError::WrongObject { .. })
        ));
        assert!(matches!(
            parse_event(br#"{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", "object": "payment_intent"}}}"#),
            Err(StripeEventError::Malformed(_))
        ));
        assert!(matches!(
            parse_event(br#"{"id": "cs_1", "object": "checkout.session", "type": "x"}"#),
            Err(StripeEventError::Malformed(_))
        ));
    }

    #[test]
    fn a_payload_signed_by_sign_verifies() {
        let body = CHECKOUT_COMPLETED.as_bytes();
        let header = sign(SECRET.as_bytes(), now().timestamp(), body);
        assert_eq!(verify_signature(Some(&header), body, SECRET, now()), Ok(()));
    }

    #[test]
    fn tampered_body_and_wrong_secret_fail() {
        let body = CHECKOUT_COMPLETED.as_bytes();
        let header = sign(SECRET.as_bytes(), now().timestamp(), body);
        let tampered = CHECKOUT_COMPLETED.replace("5000", "1");
        assert_eq!(
            verify_signature(Some(&header), tampered.as_bytes(), SECRET, now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&header), body, "whsec_other", now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(None, body, SECRET, now()),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn stale_and_future_signatures_fail_at_300_seconds() {
        let body = PAYMENT_SUCCEEDED.as_bytes();
        let at = |offset: i64| sign(SECRET.as_bytes(), now().timestamp() + offset, body);
        assert_eq!(
            verify_signature(Some(&at(-300)), body, SECRET, now()),
            Ok(())
        );
        assert_eq!(
            verify_signature(Some(&at(300)), body, SECRET, now()),
            Ok(())
        );
        assert_eq!(
            verify_signature(Some(&at(-301)), body, SECRET, now()),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(Some(&at(301)), body, SECRET, now()),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn any_of_several_v1_values_may_match() {
        // While a secret is being rolled Stripe signs with both: `t=…,v1=old,v1=new`,
        // and test-mode headers carry a `v0=` as well.
        let body = PAYMENT_SUCCEEDED.as_bytes();
        let t = now().timestamp();
        let ours = sign(SECRET.as_bytes(), t, body);
        let other = sign(b"whsec_previous", t, body);
        let digest = |h: &str| h.split("v1=").nth(1).map(str::to_string).expect("v1");
        let header = format!("t={t},v1={},v1={},v0=abc123", digest(&other), digest(&ours));
        assert_eq!(verify_signature(Some(&header), body, SECRET, now()), Ok(()));
        let neither = format!("t={t},v1={}", digest(&other));
        assert_eq!(
            verify_signature(Some(&neither), body, SECRET, now()),
            Err(SignatureError::Mismatch)
        );
    }
}
