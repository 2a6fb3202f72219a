//! Stripe: deposit payment links out, payment webhooks in.
//!
//! `client` is the engine's [`PaymentProvider`](actors::ports::providers::PaymentProvider)
//! port over `POST /v1/payment_links` (bearer auth, form body, `Idempotency-Key`: a
//! resend with the same key returns the link created the first time, which is how a
//! timed-out request is reconciled); `errors` maps Stripe's answers to
//! [`ProviderError`](actors::ports::providers::ProviderError); `events` verifies
//! `Stripe-Signature` (HMAC-SHA256 of `t.body`, 300 s tolerance, via
//! [`crate::webhooks::signed_header`]) and parses `checkout.session.completed` and
//! `payment_intent.succeeded`. The awc plumbing is shared, in
//! [`crate::providers::http`].

pub mod client;
pub mod errors;
pub mod events;

pub use client::{StripePayments, StripeSettings};
pub use events::{
    parse_event, verify_signature, CheckoutCompleted, LinkMetadata, PaymentSucceeded, StripeEvent,
    StripeEventError,
};
