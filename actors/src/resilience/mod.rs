//! Provider resilience primitives (SPEC §6): circuit breakers, token buckets and retry
//! backoff. Pure state machines over instants handed in by the caller.

pub mod backoff;
pub mod breaker;
pub mod token_bucket;
