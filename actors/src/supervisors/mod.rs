//! Provider supervisors: one per provider domain, consuming that domain's outbox.
//!
//! Each applies, in order: reconciliation of work whose outcome is unknown (a crash or
//! timeout after sending — the provider is asked before anything is resent), the
//! circuit breaker (work is deferred while it is open; its state is persisted and
//! restored at start), the token-bucket rate limit, the call itself, and then retry with
//! jittered backoff for retryable errors only, or the dead-letter queue plus an
//! escalation when attempts are exhausted or the error is final. The outcome goes back
//! to the owning appointment actor as a message.

pub mod messaging;
pub mod payments;

pub use messaging::{MessagingSupervisor, OutboxChanged, SupervisorSnapshot};
pub use payments::PaymentSupervisor;
