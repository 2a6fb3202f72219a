//! Provider adapters: the engine's provider ports implemented over HTTP (awc) in each
//! provider's wire format, and the sandbox implementations a new install runs with
//! until credentials are configured.

pub mod calendly;
pub(crate) mod http;
pub mod llm;
pub mod pacing;
pub mod sandbox_messaging;
pub mod sandbox_payments;
pub mod stripe;
pub mod twilio;

pub use sandbox_messaging::SandboxMessaging;
pub use sandbox_payments::SandboxPayments;
pub use twilio::{TwilioMessaging, TwilioSettings};
